//! `systole sim`: run a program on the cycle-accurate model through the
//! driver, as a host program would on hardware; move tensors in and out as
//! `.npy` (a program's tensors in their device layout, as `driver::infer`
//! places them); report cycles, utilization, traffic, energy and area.

use super::error::{CliError, Result};
use super::files::{check_destinations, print_stdout, Outputs};
use super::npy::{self, Elem};
use super::progress::Progress;
use super::report::{self, RunSummary};
use super::spec::{self, shape_text, DumpSpec, LoadSpec, NamedSpec};
use super::{load, trace};
use clap::Args;
use driver::{tensor_device_bytes, Driver, Outcome};
use isa::program::{Program, TensorInfo};
use isa::HwConfig;
use rtl::waves::{WaveFormat, Waves};
use std::path::{Path, PathBuf};
use systole::flow::backend::{self, Backend};
use systole::flow::infer::run_error;
use systole::flow::report::Report;

#[derive(Args, Debug)]
pub struct SimArgs {
    /// Program to run (from `systole asm` or the compiler).
    #[arg(value_name = "PROG.sbin")]
    pub program: PathBuf,
    /// Hardware configuration of the simulated device (TOML); must be the one
    /// the program was built for.
    #[arg(long, value_name = "HW.toml")]
    pub hw: PathBuf,
    /// Before the run, place a .npy array's elements (little-endian, C order;
    /// i8, u8, i16, i32 or f32) at a device byte address (decimal or 0x hex).
    /// Repeatable; applied in order, before the --input arrays.
    #[arg(long = "load", value_name = "ADDR=FILE.npy", value_parser = spec::parse_load)]
    pub load: Vec<LoadSpec>,
    /// Before the run, write a .npy array into the program's tensor NAME
    /// (the dtype and element count must match the tensor), in the
    /// tensor's device layout (e.g. NHWC with a halo). Repeatable.
    #[arg(long = "input", value_name = "NAME=FILE.npy", value_parser = spec::parse_named)]
    pub input: Vec<NamedSpec>,
    /// After the run, save prod(SHAPE) elements of DTYPE (i8, u8, i16, i32,
    /// f32) read from device address ADDR as a .npy file; SHAPE is like
    /// `16x16` or `64`. Repeatable.
    #[arg(long = "dump", value_name = "ADDR:DTYPE:SHAPE=FILE.npy", value_parser = spec::parse_dump)]
    pub dump: Vec<DumpSpec>,
    /// After the run, save the program's tensor NAME (its own dtype and
    /// shape, read from its device layout) as a .npy file. Repeatable.
    #[arg(long = "output", value_name = "NAME=FILE.npy", value_parser = spec::parse_named)]
    pub output: Vec<NamedSpec>,
    /// Also write the report as JSON.
    #[arg(long, value_name = "REPORT.json")]
    pub json: Option<PathBuf>,
    /// Energy and area table (TOML) [default: the built-in 45 nm table,
    /// examples/energy/default-45nm.toml].
    #[arg(long, value_name = "TABLE.toml")]
    pub energy_table: Option<PathBuf>,
    /// Write per-instruction start and finish times as a Chrome/Perfetto
    /// trace (open in ui.perfetto.dev or chrome://tracing).
    #[arg(long, value_name = "TRACE.json")]
    pub trace: Option<PathBuf>,
    /// Where to run: the Rust model, the verilated RTL, or both compared
    /// (outputs, cycles, counters, every instruction's start and finish).
    #[arg(long, value_enum, default_value_t = Backend::Sim)]
    pub backend: Backend,
    /// Write the RTL's waveforms (opens in GTKWave or Surfer); --backend rtl
    /// or both. A `.fst` file is FST (compressed; its library is built once
    /// per configuration on first use), anything else VCD. Time is the
    /// run's: run cycle N begins at N clock periods of the configured clock.
    #[arg(long, visible_alias = "waves", value_name = "WAVES.vcd|WAVES.fst")]
    pub vcd: Option<PathBuf>,
    /// Dump only run cycles START <= cycle < END to the waveform (the
    /// cycles of `--trace` and the report).
    #[arg(long, value_name = "START:END", value_parser = rtl::waves::parse_window, requires = "vcd")]
    pub vcd_window: Option<(u64, u64)>,
}

/// Bytes to place in device memory before the run, and where they came
/// from: raw at an address, or a tensor's logical elements (placed in its
/// device layout, `len` bytes).
struct Placement {
    addr: u64,
    len: u64,
    data: Vec<u8>,
    tensor: Option<TensorInfo>,
    what: String,
}

/// Checks `[addr, addr + len)` lies in device memory.
fn check_range(what: &str, addr: u64, len: Option<u64>, cfg: &HwConfig) -> Result<()> {
    let size = cfg.dram_bytes();
    match len.and_then(|l| addr.checked_add(l)) {
        Some(end) if end <= size => Ok(()),
        _ => Err(CliError::input(format!(
            "{what}: bytes [{addr:#x}, {}) are outside the device memory [0, {size:#x}) of config `{}`",
            len.and_then(|l| addr.checked_add(l)).map_or_else(|| "overflow".to_string(), |e| format!("{e:#x}")),
            cfg.name
        ))),
    }
}

fn tensor<'a>(prog: &'a Program, prog_name: &str, option: &str, name: &str) -> Result<&'a TensorInfo> {
    prog.tensor(name).ok_or_else(|| {
        let known: Vec<&str> = prog.tensors.iter().map(|t| t.name.as_str()).collect();
        let known = if known.is_empty() { "it has none".to_string() } else { format!("it has {}", known.join(", ")) };
        CliError::input(format!("{option} {name}: {prog_name} has no tensor `{name}` ({known})"))
    })
}

/// Reads the --load and --input arrays and checks where they go.
fn placements(args: &SimArgs, prog: &Program, prog_name: &str, cfg: &HwConfig) -> Result<Vec<Placement>> {
    let code = (prog.code_addr, prog.code_addr + prog.code_bytes());
    let mut out = Vec::new();
    for l in &args.load {
        let what = format!("--load {:#x}={}", l.addr, l.file.display());
        let a = npy::read(&l.file)?;
        check_range(&what, l.addr, Some(a.data.len() as u64), cfg)?;
        out.push(Placement { addr: l.addr, len: a.data.len() as u64, data: a.data, tensor: None, what });
    }
    for i in &args.input {
        let what = format!("--input {}={}", i.name, i.file.display());
        let t = tensor(prog, prog_name, "--input", &i.name)?;
        let a = npy::read(&i.file)?;
        let want = npy::elem_of(t.dtype);
        if a.elem != want {
            return Err(CliError::input(format!(
                "{what}: the array is {}, tensor `{}` is {}",
                a.elem.name(),
                t.name,
                want.name()
            )));
        }
        if Some(a.elements()) != t.checked_elements() {
            return Err(CliError::input(format!(
                "{what}: the array has {} elements (shape {}), tensor `{}` has {} (shape {})",
                a.elements(),
                shape_text(&a.shape),
                t.name,
                t.checked_elements().map_or_else(|| "too many".to_string(), |n| n.to_string()),
                shape_text(&t.shape)
            )));
        }
        let len = tensor_device_bytes(t).map_err(|e| CliError::input(format!("{what}: {e}")))?;
        check_range(&what, t.addr, Some(len), cfg)?;
        out.push(Placement { addr: t.addr, len, data: a.data, tensor: Some(t.clone()), what });
    }
    for p in &out {
        let end = p.addr + p.len;
        if p.len > 0 && p.addr < code.1 && code.0 < end {
            return Err(CliError::input(format!(
                "{}: bytes [{:#x}, {end:#x}) would overwrite the program's code at [{:#x}, {:#x})",
                p.what, p.addr, code.0, code.1
            )));
        }
    }
    Ok(out)
}

/// An output array to read from device memory after the run: raw bytes
/// at an address, or a tensor (from its device layout).
struct Readback {
    addr: u64,
    elem: Elem,
    shape: Vec<u64>,
    len: usize,
    tensor: Option<TensorInfo>,
    file: PathBuf,
}

fn readbacks(args: &SimArgs, prog: &Program, prog_name: &str, cfg: &HwConfig) -> Result<Vec<Readback>> {
    let mut out = Vec::new();
    for d in &args.dump {
        let what = format!("--dump {:#x}:{}:{}", d.addr, d.elem.name(), shape_text(&d.shape));
        check_range(&what, d.addr, d.byte_len(), cfg)?;
        let len = d.byte_len().unwrap_or(0) as usize;
        out.push(Readback {
            addr: d.addr,
            elem: d.elem,
            shape: d.shape.clone(),
            len,
            tensor: None,
            file: d.file.clone(),
        });
    }
    for o in &args.output {
        let t = tensor(prog, prog_name, "--output", &o.name)?;
        let what = format!("--output {}", o.name);
        let len = tensor_device_bytes(t).map_err(|e| CliError::input(format!("{what}: {e}")))?;
        check_range(&what, t.addr, Some(len), cfg)?;
        out.push(Readback {
            addr: t.addr,
            elem: npy::elem_of(t.dtype),
            shape: t.shape.clone(),
            len: len as usize,
            tensor: Some(t.clone()),
            file: o.file.clone(),
        });
    }
    Ok(out)
}

fn device_err(e: driver::DriverError) -> CliError {
    CliError::input(e)
}

pub fn run(args: &SimArgs) -> Result<()> {
    let mut dests: Vec<(&Path, &str)> = Vec::new();
    dests.extend(args.dump.iter().map(|d| (d.file.as_path(), "--dump")));
    dests.extend(args.output.iter().map(|o| (o.file.as_path(), "--output")));
    dests.extend(args.json.iter().map(|p| (p.as_path(), "--json")));
    dests.extend(args.trace.iter().map(|p| (p.as_path(), "--trace")));
    dests.extend(args.vcd.iter().map(|p| (p.as_path(), "--vcd")));
    check_destinations(dests)?;

    let prog_name = args.program.display().to_string();
    let (prog, _) = load::program(&args.program)?;
    let cfg = load::config(&args.hw)?;
    let table = load::energy_table(args.energy_table.as_deref())?;
    let places = placements(args, &prog, &prog_name, &cfg)?;
    let reads = readbacks(args, &prog, &prog_name, &cfg)?;

    // The waveform goes to a side file renamed into place after a good run,
    // so a failed run leaves no partial output.
    let waves = args.vcd.as_ref().map(|p| {
        let format = WaveFormat::of_path(p);
        Waves { path: p.with_extension(format!("{}.partial", format.name())), format, window: args.vcd_window }
    });
    let vcd_tmp = waves.as_ref().map(|w| w.path.clone());
    let (device, comparison) = backend::open(args.backend, &cfg, waves.as_ref())?;
    let mut drv = Driver::new(device);
    drv.load(&prog).map_err(|e| CliError::input(format!("{prog_name}: {e}")))?;
    for p in &places {
        match &p.tensor {
            None => drv.write_mem(p.addr, &p.data),
            Some(t) => drv.write_tensor(t, &p.data),
        }
        .map_err(|e| CliError::input(format!("{}: {e}", p.what)))?;
    }
    let progress = Progress::count("systole sim", "cycles");
    let rep = drv
        .run_with_progress(|cycles| progress.set_position(cycles))
        .map_err(|e| comparison.mismatch().map_or_else(|| device_err(e), CliError::from));
    // A fault is an error: no `done` line (dropping the progress ends it).
    if let Ok(r @ driver::RunReport { outcome: Outcome::Done, .. }) = &rep {
        progress.finish(&format!("{} cycles", r.cycles()));
    }
    let rep = match rep {
        Ok(r) => r,
        Err(e) => {
            drop(drv);
            if let Some(t) = &vcd_tmp {
                let _ = std::fs::remove_file(t);
            }
            return Err(e);
        }
    };
    if let Outcome::Fault { code, pc } = rep.outcome {
        let layers = systole::flow::layers::from_program(&prog);
        let single = systole::flow::RunNumber { index: 0, of: 1 };
        let e = run_error(driver::DriverError::Fault { code, pc }, drv.device_mut(), &prog, &layers, single);
        drop(drv);
        if let Some(t) = &vcd_tmp {
            let _ = std::fs::remove_file(t);
        }
        return Err(e.into());
    }

    let mut outputs = Outputs::new();
    for r in &reads {
        let bytes = match &r.tensor {
            None => drv.read_mem(r.addr, r.len),
            Some(t) => drv.read_tensor(t),
        }
        .map_err(device_err)?;
        outputs.add(&r.file, npy::encode(r.elem, &r.shape, &bytes)?);
    }
    let energy = sim::energy::energy(&cfg, &prog, &rep.counters, &table);
    let summary =
        RunSummary { program: &prog_name, cfg: &cfg, outcome: "done", counters: &rep.counters, energy: &energy };
    if let Some(path) = &args.json {
        let cycles = [rep.cycles()];
        let json = Report::new("sim", &prog_name, args.backend.name(), &cfg, &rep.counters, &energy, &cycles);
        outputs.add(path, json.to_json().into_bytes());
    }
    if let Some(path) = &args.trace {
        let t = trace::chrome_trace(&prog, &rep.trace, &cfg, &prog_name);
        outputs.add(path, serde_json::to_vec(&t).unwrap_or_default());
    }
    outputs.commit()?;
    drop(drv); // closes the waveform
    if let (Some(tmp), Some(vcd)) = (&vcd_tmp, &args.vcd) {
        std::fs::rename(tmp, vcd).map_err(|e| CliError::input(format!("--vcd {}: {e}", vcd.display())))?;
    }
    let mut text = report::text(&summary);
    if let (Some(w), Some(path)) = (&waves, &args.vcd) {
        let (step, half) = rtl::waves::timescale(cfg.clock.mhz);
        let cycles = w.window.map_or_else(|| "all run cycles".to_string(), |(a, b)| format!("run cycles [{a}, {b})"));
        text.push_str(&format!(
            "waves: {} ({}, {cycles}; run cycle N starts at N x {} {} steps)\n",
            path.display(),
            w.format.name().to_uppercase(),
            2 * half,
            step.trim_start_matches('1')
        ));
    }
    match args.backend {
        Backend::Sim => {}
        Backend::Rtl => text.push_str("backend: the verilated RTL\n"),
        Backend::Both => text.push_str(&format!(
            "backend: both: the model and the RTL agree on the memory, {} cycles, all {} counters and the start and \
             finish cycle of all {} instructions\n",
            rep.cycles(),
            isa::Counter::ALL.len(),
            rep.trace.len()
        )),
    }
    print_stdout(&text)
}
