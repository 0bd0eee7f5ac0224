//! The host runtime: what a host program does to run a compiled program on
//! an accelerator, through nothing but the `Device` trait (docs/DESIGN.md §7). It
//! places the program and tensors in device memory, grants the memory
//! window, writes the registers, starts, waits, and reads the counters back.

pub mod compare;
pub mod fault;
mod lockstep;

pub use lockstep::{DifferenceSlot, Lockstep};

use isa::layout::Layout;
use isa::numerics;
use isa::program::{DType, Program, TensorInfo, TensorRole};
use isa::regs::{self, Counter, Counters, ErrorCode};
use isa::{Device, DeviceError, InstrTrace, INSTR_BYTES};

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("device: {0}")]
    Device(#[from] DeviceError),
    #[error(
        "the program was compiled for config `{program_config}` (fingerprint {program:#018x}), \
         the device is `{device_config}` ({device:#018x}); recompile for this config"
    )]
    Fingerprint { program: u64, program_config: String, device: u64, device_config: String },
    #[error("the program needs {need} bytes of device memory, the device has {have}")]
    Memory { need: u64, have: u64 },
    #[error("tensor `{name}`: {why}")]
    Tensor { name: String, why: String },
    #[error("the device did not stop within {0} cycles")]
    Timeout(u64),
    #[error("the device faulted at instruction {pc}: {}", code.name())]
    Fault { code: ErrorCode, pc: u32 },
}

/// The result of one inference of a compiled model.
#[derive(Clone, Debug)]
pub struct Inference {
    /// The quantized input as the device saw it (logical order).
    pub input_q: Vec<i32>,
    /// The quantized output the device wrote (logical order).
    pub output_q: Vec<i32>,
    /// The output dequantized with its scale and zero point.
    pub output: Vec<f32>,
    pub report: RunReport,
}

fn tensor_with_role(prog: &Program, role: TensorRole) -> Result<&TensorInfo, DriverError> {
    prog.tensors.iter().find(|t| t.role == role).ok_or_else(|| DriverError::Tensor {
        name: format!("({role})"),
        why: "the program's tensor map has none".into(),
    })
}

fn quant_params(t: &TensorInfo) -> Result<(f32, i32, (i32, i32)), DriverError> {
    let range = match t.dtype {
        DType::I8 => numerics::I8_RANGE,
        DType::U8 => numerics::U8_RANGE,
        other => {
            return Err(DriverError::Tensor { name: t.name.clone(), why: format!("{other} is not a quantized type") })
        }
    };
    match (t.scale, t.zero_point) {
        (Some(s), Some(z)) => Ok((s, z, range)),
        _ => Err(DriverError::Tensor { name: t.name.clone(), why: "has no scale and zero point".into() }),
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Fault { code: ErrorCode, pc: u32 },
}

/// What a run reports: outcome, counters and per-instruction timing.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub outcome: Outcome,
    pub counters: Counters,
    pub trace: Vec<InstrTrace>,
}

impl RunReport {
    pub fn cycles(&self) -> u64 {
        self.counters.get(Counter::Cycles)
    }
}

/// A host's handle on one device.
pub struct Driver<D: Device> {
    dev: D,
    /// Cycles a run may take before the driver gives up.
    pub cycle_limit: u64,
}

impl<D: Device> Driver<D> {
    pub fn new(dev: D) -> Driver<D> {
        Driver { dev, cycle_limit: 1 << 40 }
    }

    pub fn device(&self) -> &D {
        &self.dev
    }

    pub fn device_mut(&mut self) -> &mut D {
        &mut self.dev
    }

    /// The device's configuration fingerprint, read from its registers.
    pub fn fingerprint(&mut self) -> Result<u64, DriverError> {
        let lo = self.dev.read_reg(regs::FINGERPRINT_LO)? as u64;
        let hi = self.dev.read_reg(regs::FINGERPRINT_HI)? as u64;
        Ok(hi << 32 | lo)
    }

    /// Places code and constants, sets the program registers and grants the
    /// window `[0, mem_bytes)`.
    pub fn load(&mut self, prog: &Program) -> Result<(), DriverError> {
        let device = self.fingerprint()?;
        if device != prog.fingerprint {
            return Err(DriverError::Fingerprint {
                program: prog.fingerprint,
                program_config: prog.config_name.clone(),
                device,
                device_config: self.dev.config().name.clone(),
            });
        }
        let have = self.dev.config().dram_bytes();
        if prog.mem_bytes > have || prog.mem_bytes > u32::MAX as u64 {
            return Err(DriverError::Memory { need: prog.mem_bytes, have });
        }
        let code: Vec<u8> = prog.code.iter().flat_map(|i| i.encode()).collect();
        self.dev.write_mem(prog.code_addr, &code)?;
        if !prog.data.is_empty() {
            self.dev.write_mem(prog.data_addr, &prog.data)?;
        }
        self.dev.write_reg(regs::PROG_ADDR, prog.code_addr as u32)?;
        self.dev.write_reg(regs::PROG_LEN, (code.len() / INSTR_BYTES) as u32)?;
        self.dev.write_reg(regs::WIN_BASE, 0)?;
        self.dev.write_reg(regs::WIN_LIMIT, prog.mem_bytes as u32)?;
        Ok(())
    }

    /// Writes a tensor's bytes (logical order, C order) at its address in
    /// its device layout (`tensor_layout`), checking the length; a halo is
    /// filled with the tensor's zero point.
    pub fn write_tensor(&mut self, t: &TensorInfo, bytes: &[u8]) -> Result<(), DriverError> {
        if bytes.len() as u64 != t.byte_len() {
            return Err(DriverError::Tensor {
                name: t.name.clone(),
                why: format!("{} bytes given, shape {:?} of {} needs {}", bytes.len(), t.shape, t.dtype, t.byte_len()),
            });
        }
        match tensor_layout(t)? {
            None => self.dev.write_mem(t.addr, bytes)?,
            Some(l) => self.dev.write_mem(t.addr, &l.pack(bytes, t.zero_point.unwrap_or(0) as u8))?,
        }
        Ok(())
    }

    /// A tensor's bytes in logical order, read from its device layout.
    pub fn read_tensor(&mut self, t: &TensorInfo) -> Result<Vec<u8>, DriverError> {
        match tensor_layout(t)? {
            None => Ok(self.dev.read_mem(t.addr, t.byte_len() as usize)?),
            Some(l) => Ok(l.unpack(&self.dev.read_mem(t.addr, l.bytes())?)),
        }
    }

    pub fn write_mem(&mut self, addr: u64, bytes: &[u8]) -> Result<(), DriverError> {
        Ok(self.dev.write_mem(addr, bytes)?)
    }

    pub fn read_mem(&mut self, addr: u64, len: usize) -> Result<Vec<u8>, DriverError> {
        Ok(self.dev.read_mem(addr, len)?)
    }

    /// Starts the loaded program and waits for it to stop.
    pub fn run(&mut self) -> Result<RunReport, DriverError> {
        self.run_with_progress(|_| {})
    }

    /// Like `run`, calling `progress(cycles so far)` between slices.
    pub fn run_with_progress(&mut self, mut progress: impl FnMut(u64)) -> Result<RunReport, DriverError> {
        const SLICE: u64 = 1 << 20;
        self.dev.write_reg(regs::CTRL, regs::CTRL_START)?;
        let mut elapsed = 0u64;
        loop {
            let status = self.dev.advance(SLICE)?;
            if status != regs::STATUS_RUNNING {
                break;
            }
            elapsed += SLICE;
            progress(self.read_counter(Counter::Cycles)?);
            if elapsed >= self.cycle_limit {
                return Err(DriverError::Timeout(self.cycle_limit));
            }
        }
        Ok(read_report(&mut self.dev)?)
    }

    /// Runs a compiled model (already `load`ed) on one float input in the
    /// input tensor's logical order: quantizes it with the model's input
    /// QuantizeLinear parameters, places it, runs, reads and dequantizes the
    /// output. A device fault is an error.
    pub fn infer(&mut self, prog: &Program, input: &[f32]) -> Result<Inference, DriverError> {
        let t = tensor_with_role(prog, TensorRole::Input)?;
        let (scale, zp, (lo, hi)) = quant_params(t)?;
        let q: Vec<i32> = input.iter().map(|&x| numerics::quantize(x, scale, zp, lo, hi)).collect();
        self.infer_quantized(prog, &q)
    }

    /// Like `infer`, from an already quantized input.
    pub fn infer_quantized(&mut self, prog: &Program, input_q: &[i32]) -> Result<Inference, DriverError> {
        let t = tensor_with_role(prog, TensorRole::Input)?.clone();
        let (_, zp, _) = quant_params(&t)?;
        let layout = &t.layout;
        let want = t.shape.iter().product::<u64>() as usize;
        if input_q.len() != want {
            return Err(DriverError::Tensor {
                name: t.name.clone(),
                why: format!("{} values given, shape {:?} needs {want}", input_q.len(), t.shape),
            });
        }
        let bytes: Vec<u8> = input_q.iter().map(|&v| v as u8).collect();
        self.dev.write_mem(t.addr, &layout.pack(&bytes, zp as u8))?;
        let report = self.run()?;
        if let Outcome::Fault { code, pc } = report.outcome {
            return Err(DriverError::Fault { code, pc });
        }
        let o = tensor_with_role(prog, TensorRole::Output)?.clone();
        let (oscale, ozp, _) = quant_params(&o)?;
        let olayout = &o.layout;
        let image = self.dev.read_mem(o.addr, olayout.bytes())?;
        let output_q: Vec<i32> = olayout
            .unpack(&image)
            .into_iter()
            .map(|b| if o.dtype == DType::U8 { b as i32 } else { b as i8 as i32 })
            .collect();
        let output = output_q.iter().map(|&q| numerics::dequantize(q, oscale, ozp)).collect();
        Ok(Inference { input_q: input_q.to_vec(), output_q, output, report })
    }

    fn read_counter(&mut self, c: Counter) -> Result<u64, DriverError> {
        Ok(read_counter(&mut self.dev, c)?)
    }
}

/// How a tensor lies in device memory: None for plain row-major (C
/// order, what `systole asm` programs and GEMMs use), else its layout
/// (`isa::layout`, one byte per element, as a compiled model's
/// activations: e.g. `nhwc-halo1`).
pub fn tensor_layout(t: &TensorInfo) -> Result<Option<Layout>, DriverError> {
    let err = |why: String| DriverError::Tensor { name: t.name.clone(), why };
    if matches!(t.layout, Layout::Flat { perm: None, .. }) {
        return Ok(None);
    }
    if t.dtype.size_bytes() != 1 {
        return Err(err(format!(
            "layout `{}` holds one-byte elements, the tensor is {}",
            t.layout.describe(),
            t.dtype
        )));
    }
    Ok(Some(t.layout.clone()))
}

/// The bytes a tensor occupies in device memory (its layout's, halo
/// included).
pub fn tensor_device_bytes(t: &TensorInfo) -> Result<u64, DriverError> {
    Ok(match tensor_layout(t)? {
        None => t.byte_len(),
        Some(l) => l.bytes() as u64,
    })
}

fn read_counter<D: Device + ?Sized>(dev: &mut D, c: Counter) -> Result<u64, DeviceError> {
    let lo = dev.read_reg(c.addr())? as u64;
    let hi = dev.read_reg(c.addr() + 4)? as u64;
    Ok(hi << 32 | lo)
}

/// The report of a device's last run, read through its registers: status,
/// fault code and instruction, every counter, the trace.
pub fn read_report<D: Device + ?Sized>(dev: &mut D) -> Result<RunReport, DeviceError> {
    let outcome = match dev.read_reg(regs::STATUS)? {
        regs::STATUS_DONE => Outcome::Done,
        _ => {
            let code = dev.read_reg(regs::ERROR_CODE)?;
            let pc = dev.read_reg(regs::ERROR_PC)?;
            Outcome::Fault { code: ErrorCode::from_u32(code).unwrap_or(ErrorCode::IllegalInstruction), pc }
        }
    };
    let mut counters = Counters::default();
    for &c in Counter::ALL {
        counters.set(c, read_counter(dev, c)?);
    }
    Ok(RunReport { outcome, counters, trace: dev.trace() })
}
