//! The verilated accelerator as a `Device` (docs/DESIGN.md §7): registers through
//! its AXI4-Lite slave, memory behind its AXI4 master answered from the
//! same DRAM timing model the Rust model uses (`sim::dram`), and the
//! per-instruction trace read from its trace ports.
//!
//! The harness owns device memory (a host writes it directly, as a host
//! shares DRAM with an accelerator) and the DRAM timing: in each cycle it
//! tells the RTL whether a request slot is free, accepts the request the
//! RTL's arbiter presents, and moves the beat the model's bus moves in that
//! cycle (read data in, or write data out with its strobes). A register
//! access is a real AXI4-Lite transaction: its cycles pass on the device
//! like any others (a run in progress advances meanwhile).

use crate::ffi::bridge::{accel_open, AccelSim};
use crate::waves::Waves;
use isa::regs;
use isa::{Device, DeviceError, HwConfig, InstrTrace};
use sim::dram::Dram;
use sim::memory::Memory;
use std::collections::VecDeque;

use crate::abi::*;

/// A register transaction gives up after this many cycles (a hung slave).
const AXI_LITE_TIMEOUT: u32 = 64;

/// An accepted DRAM request: its beats move in cycles `[data_start, data_start + beats)`.
#[derive(Clone, Copy, Debug)]
struct Transfer {
    write: bool,
    id: u32,
    beat0: u64,
    beats: u64,
    data_start: u64,
}

/// The verilated accelerator for one configuration.
pub struct RtlDevice {
    cfg: HwConfig,
    sim: cxx::UniquePtr<AccelSim>,
    mem: Memory,
    dram: Dram,
    transfers: VecDeque<Transfer>,
    /// Device cycles since creation; `run_start` is cycle 0 of the run.
    now: u64,
    run_start: u64,
    running: bool,
    prog_len: u32,
    trace: Vec<InstrTrace>,
    inp: [u32; IN_WORDS],
    out: [u32; OUT_WORDS],
    /// The first harness-detected problem (protocol, staging overflow).
    broken: Option<String>,
    /// The waveform being written, and the device cycle of run cycle 0
    /// of the first run (waveform time 0).
    waves: Option<Waves>,
    waves_origin: Option<u64>,
    /// Whether the library is dumping the cycles now.
    dumping: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RtlError {
    #[error(transparent)]
    Build(#[from] crate::verilate::BuildError),
    #[error("loading the verilated accelerator: {0}")]
    Load(String),
    #[error("{0}")]
    Unsupported(String),
}

impl RtlDevice {
    /// Builds (or finds in the cache) the RTL of `cfg` and loads it.
    pub fn new(cfg: &HwConfig) -> Result<RtlDevice, RtlError> {
        Self::with_options(cfg, None)
    }

    /// Like `new`, writing the waveforms of the runs (`crate::waves`: from
    /// run cycle 0 of the first run, or the window's cycles).
    pub fn with_options(cfg: &HwConfig, waves: Option<&Waves>) -> Result<RtlDevice, RtlError> {
        if cfg.array.dataflow != isa::config::Dataflow::WeightStationary {
            return Err(RtlError::Unsupported(
                "array.dataflow = \"output-stationary\" is not implemented by the RTL; use \"weight-stationary\""
                    .into(),
            ));
        }
        // The vector unit has one lane per column (vec_unit.sv): another lane
        // count changes the reductions' order and the beats.
        if cfg.vector_lanes() != cfg.array.cols {
            return Err(RtlError::Unsupported(format!(
                "vector_lanes = {} is not implemented by the RTL, whose vector unit has one lane per array column \
                 ({}); leave vector_lanes unset",
                cfg.vector_lanes(),
                cfg.array.cols
            )));
        }
        let lib = crate::verilate::library(cfg, waves.map(|w| w.format))?;
        let mut sim = accel_open(&lib.to_string_lossy()).map_err(|e| RtlError::Load(e.to_string()))?;
        crate::abi::check_table(&sim.abi_table()).map_err(|e| RtlError::Load(format!("{}: {e}", lib.display())))?;
        if let Some(w) = waves {
            let (resolution, half_period) = crate::waves::timescale(cfg.clock.mhz);
            if !sim.pin_mut().waves_open(&w.path.to_string_lossy(), half_period, resolution) {
                return Err(RtlError::Load(format!("cannot open the waveform file {}", w.path.display())));
            }
        }
        let mut dev = RtlDevice {
            cfg: cfg.clone(),
            sim,
            mem: Memory::new(cfg.dram_bytes()),
            dram: Dram::from_config(cfg),
            transfers: VecDeque::new(),
            now: 0,
            run_start: 0,
            running: false,
            prog_len: 0,
            trace: Vec::new(),
            inp: [0; IN_WORDS],
            out: [0; OUT_WORDS],
            broken: None,
            waves: waves.cloned(),
            waves_origin: None,
            dumping: false,
        };
        // Two cycles of reset.
        for _ in 0..2 {
            dev.inp = [0; IN_WORDS];
            dev.cycle_raw();
        }
        dev.inp[IN_FLAGS] = I_RST_N;
        Ok(dev)
    }

    /// The loaded library's compiled-in copy of the interface table
    /// (checked against [`crate::abi::table`] when loading).
    pub fn abi_table(&self) -> Vec<u32> {
        self.sim.abi_table()
    }

    /// Tells the library whether the coming cycle is dumped, when that
    /// changes: the run cycles of the window, counted from the first run.
    fn waves_before_cycle(&mut self) {
        let (Some(w), Some(origin)) = (&self.waves, self.waves_origin) else { return };
        let t = self.now - origin;
        let dump = w.dumps(t);
        if dump != self.dumping {
            self.dumping = dump;
            self.sim.pin_mut().waves_at(if dump { t as i64 } else { -1 });
        }
    }

    fn cycle_raw(&mut self) {
        self.waves_before_cycle();
        // The C++ side only fails on wrong slice lengths, fixed here.
        self.sim.pin_mut().cycle(&self.inp, &mut self.out).expect("fixed word counts");
        self.now += 1;
    }

    /// One device cycle: the DRAM side of the harness around one RTL cycle.
    /// `lite` holds this cycle's AXI4-Lite input flags and words.
    fn cycle(&mut self, lite: u32, lite_words: [u32; 3]) {
        let t = self.now.wrapping_sub(self.run_start);
        let w = self.dram.bytes_per_cycle;
        let mut flags = I_RST_N | lite;
        if self.running && self.dram.can_accept(t) {
            flags |= I_M_READY;
        }
        // The beat the bus moves in this cycle, if any.
        let mut beat: Option<(Transfer, u64)> = None;
        if self.running {
            if let Some(tr) = self.transfers.front().copied() {
                if tr.data_start <= t {
                    let k = t - tr.data_start;
                    beat = Some((tr, k));
                    if !tr.write {
                        flags |= I_RVALID | (tr.id << I_RID_SHIFT);
                        if k + 1 == tr.beats {
                            flags |= I_RLAST;
                        }
                        let mut beat = [0u8; 64];
                        self.mem.read((tr.beat0 + k) * w, &mut beat[..w as usize]);
                        let mut words = [0u32; 16];
                        for (i, b) in beat[..w as usize].iter().enumerate() {
                            words[i / 4] |= (*b as u32) << (8 * (i % 4));
                        }
                        self.inp[IN_RDATA..IN_RDATA + 16].copy_from_slice(&words);
                    } else {
                        flags |= I_WREADY;
                    }
                }
            }
        }
        self.inp[IN_FLAGS] = flags;
        self.inp[IN_S_AWADDR] = lite_words[0];
        self.inp[IN_S_WDATA] = lite_words[1];
        self.inp[IN_S_ARADDR] = lite_words[2];
        self.waves_before_cycle();
        self.sim.pin_mut().cycle(&self.inp, &mut self.out).expect("fixed word counts");
        let o = self.out[OUT_FLAGS];
        if self.running {
            self.observe(t, o, beat);
        }
        self.now += 1;
        self.running = o & O_RUNNING != 0 && self.running;
    }

    /// The DRAM requests, write data and trace events of run cycle `t`.
    fn observe(&mut self, t: u64, o: u32, beat: Option<(Transfer, u64)>) {
        let w = self.dram.bytes_per_cycle;
        if let Some((tr, k)) = beat {
            if tr.write {
                if o & O_WVALID == 0 || (o & O_WLAST != 0) != (k + 1 == tr.beats) {
                    self.fail(format!(
                        "AXI write protocol: at run cycle {t} the DRAM takes beat {k} of a {}-beat burst but the \
                         accelerator presents {}",
                        tr.beats,
                        if o & O_WVALID == 0 { "no data" } else { "a misplaced WLAST" }
                    ));
                } else {
                    let strb = self.out[OUT_WSTRB] as u64 | (self.out[OUT_WSTRB + 1] as u64) << 32;
                    let a = (tr.beat0 + k) * w;
                    let beat: [u8; 64] = std::array::from_fn(|i| (self.out[OUT_WDATA + i / 4] >> (8 * (i % 4))) as u8);
                    // Each run of strobed bytes in one write (a whole beat, as a rule).
                    let strobed = |i: usize| strb >> i & 1 != 0;
                    let mut i = 0;
                    while i < w as usize {
                        let start = i;
                        while i < w as usize && strobed(i) {
                            i += 1;
                        }
                        if i > start {
                            self.mem.write(a + start as u64, &beat[start..i]);
                        } else {
                            i += 1;
                        }
                    }
                }
            }
            if k + 1 == tr.beats {
                self.transfers.pop_front();
            }
        }
        let (ar, aw) = (o & O_ARVALID != 0, o & O_AWVALID != 0);
        if (ar || aw) && self.dram.can_accept(t) {
            let (addr, len) = if ar {
                (self.out[OUT_ARADDR], self.out[OUT_ARLEN])
            } else {
                (self.out[OUT_AWADDR], self.out[OUT_AWLEN])
            };
            let beats = len as u64 + 1;
            let beat0 = addr as u64 / w;
            if !(addr as u64).is_multiple_of(w) || (beat0 + beats) * w > self.mem.size() {
                self.fail(format!(
                    "AXI request at run cycle {t}: address {addr:#x} + {beats} beats is not a valid burst"
                ));
            } else {
                let g = self.dram.accept(t, beats);
                self.transfers.push_back(Transfer {
                    write: aw,
                    id: (o >> O_ARID_SHIFT) & 3,
                    beat0,
                    beats,
                    data_start: g.data_start,
                });
            }
        }
        let starts = self.out[OUT_TR_START];
        for i in 0..4 {
            if starts >> i & 1 != 0 {
                let pc = self.out[OUT_TR_START_PC + i] as usize;
                if let Some(e) = self.trace.get_mut(pc) {
                    e.start = t;
                    if i == 3 {
                        e.finish = t + 1; // finish: done in its dispatch cycle
                    }
                }
            }
        }
        let fins = self.out[OUT_TR_FIN];
        for i in 0..6 {
            if fins >> i & 1 != 0 {
                let pc = self.out[OUT_TR_FIN_PC + i] as usize;
                if let Some(e) = self.trace.get_mut(pc) {
                    e.finish = t + 1;
                }
            }
        }
        let overflow = (o >> O_OVERFLOW_SHIFT) & 3;
        if overflow != 0 {
            let (unit, bytes) = if overflow & 1 != 0 {
                ("LOAD", crate::verilate::LOAD_STAGE_BYTES)
            } else {
                ("STORE", crate::verilate::STORE_STAGE_BYTES)
            };
            self.fail(format!(
                "the RTL's {unit} staging buffer ({bytes} bytes) overflowed at run cycle {t}: the program keeps more \
                 DRAM data in flight than the hardware buffers (the model's timing assumes an unbounded buffer)"
            ));
        }
    }

    fn fail(&mut self, msg: String) {
        if self.broken.is_none() {
            self.broken = Some(msg);
        }
    }

    /// Reports a harness-detected problem once, after resetting the
    /// accelerator (its run cannot go on meaningfully) so the device can run
    /// the next program.
    fn check_broken(&mut self) -> Result<(), DeviceError> {
        match self.broken.take() {
            Some(m) => {
                for _ in 0..2 {
                    self.inp = [0; IN_WORDS];
                    self.cycle_raw();
                }
                self.inp[IN_FLAGS] = I_RST_N;
                self.running = false;
                self.transfers.clear();
                Err(DeviceError::Backend(m))
            }
            None => Ok(()),
        }
    }

    /// An AXI4-Lite write; returns BRESP.
    fn lite_write(&mut self, addr: u32, value: u32) -> Result<u32, DeviceError> {
        let mut n = 0;
        loop {
            self.cycle(I_S_AWVALID | I_S_WVALID, [addr, value, 0]);
            if self.out[OUT_FLAGS] & O_S_AWREADY != 0 {
                break;
            }
            n += 1;
            if n > AXI_LITE_TIMEOUT {
                return Err(DeviceError::Backend(format!("AXI4-Lite write to {addr:#x}: no AWREADY")));
            }
        }
        if addr == regs::CTRL && value & regs::CTRL_START != 0 && !self.running {
            // The write's cycle is the one before run cycle 0.
            self.begin_run();
        }
        for _ in 0..AXI_LITE_TIMEOUT {
            self.cycle(I_S_BREADY, [0; 3]);
            let o = self.out[OUT_FLAGS];
            if o & O_S_BVALID != 0 {
                return Ok((o >> O_S_BRESP_SHIFT) & 3);
            }
        }
        Err(DeviceError::Backend(format!("AXI4-Lite write to {addr:#x}: no BVALID")))
    }

    /// An AXI4-Lite read; returns (data, RRESP).
    fn lite_read(&mut self, addr: u32) -> Result<(u32, u32), DeviceError> {
        let mut n = 0;
        loop {
            self.cycle(I_S_ARVALID, [0, 0, addr]);
            if self.out[OUT_FLAGS] & O_S_ARREADY != 0 {
                break;
            }
            n += 1;
            if n > AXI_LITE_TIMEOUT {
                return Err(DeviceError::Backend(format!("AXI4-Lite read of {addr:#x}: no ARREADY")));
            }
        }
        for _ in 0..AXI_LITE_TIMEOUT {
            self.cycle(I_S_RREADY, [0; 3]);
            let o = self.out[OUT_FLAGS];
            if o & O_S_RVALID != 0 {
                return Ok((self.out[OUT_S_RDATA], (o >> O_S_RRESP_SHIFT) & 3));
            }
        }
        Err(DeviceError::Backend(format!("AXI4-Lite read of {addr:#x}: no RVALID")))
    }

    fn begin_run(&mut self) {
        self.run_start = self.now; // `now` was advanced past the write's cycle
        self.waves_origin.get_or_insert(self.now);
        self.running = true;
        self.dram = Dram::from_config(&self.cfg);
        self.transfers.clear();
        self.trace = (0..self.prog_len).map(|index| InstrTrace { index, start: 0, finish: 0 }).collect();
    }
}

impl Device for RtlDevice {
    fn config(&self) -> &HwConfig {
        &self.cfg
    }

    fn read_reg(&mut self, addr: u32) -> Result<u32, DeviceError> {
        self.check_broken()?;
        let (v, resp) = self.lite_read(addr)?;
        self.check_broken()?;
        match resp {
            0 => Ok(v),
            _ => Err(DeviceError::NoRegister(addr)),
        }
    }

    fn write_reg(&mut self, addr: u32, value: u32) -> Result<(), DeviceError> {
        self.check_broken()?;
        if addr == regs::PROG_LEN {
            self.prog_len = value;
        }
        let resp = self.lite_write(addr, value)?;
        self.check_broken()?;
        match resp {
            0 => Ok(()),
            2 => Err(DeviceError::ReadOnly(addr)),
            _ => Err(DeviceError::NoRegister(addr)),
        }
    }

    fn read_mem(&mut self, addr: u64, len: usize) -> Result<Vec<u8>, DeviceError> {
        if !self.mem.contains(addr, len as u64) {
            return Err(DeviceError::MemoryRange { addr, len: len as u64, size: self.mem.size() });
        }
        Ok(self.mem.to_vec(addr, len))
    }

    fn write_mem(&mut self, addr: u64, data: &[u8]) -> Result<(), DeviceError> {
        if !self.mem.contains(addr, data.len() as u64) {
            return Err(DeviceError::MemoryRange { addr, len: data.len() as u64, size: self.mem.size() });
        }
        self.mem.write(addr, data);
        Ok(())
    }

    fn advance(&mut self, max_cycles: u64) -> Result<u32, DeviceError> {
        self.check_broken()?;
        let mut n = 0;
        while self.running && n < max_cycles {
            self.cycle(0, [0; 3]);
            n += 1;
            self.check_broken()?;
        }
        if self.running {
            Ok(regs::STATUS_RUNNING)
        } else {
            self.read_reg(regs::STATUS)
        }
    }

    fn trace(&self) -> Vec<InstrTrace> {
        self.trace.clone()
    }
}
