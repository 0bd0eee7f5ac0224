//! `systole run`: run a compiled model on float inputs through the driver,
//! as a host program would: one inference per input (or per entry of a
//! batch), outputs back as float `.npy`, a report of the whole run with a
//! per-layer table, and optionally a bit-exact check of every layer against
//! the reference interpreter (`--check`).

use super::backend::{self, Backend};
use super::error::{CliError, Result};
use super::files::{check_destinations, print_stdout, Outputs};
use super::layers::{self, LayerMeta};
use super::load;
use super::npy::{self, Array, Elem};
use super::report::{self, RunSummary};
use super::spec::shape_text;
use super::table::group;
use clap::Args;
use compiler::interp::{self, Tensor};
use compiler::ir::{ElemType, Graph, ValueId};
use driver::{Driver, DriverError, Inference};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use isa::program::{DType, Program, TensorInfo, TensorRole};
use isa::{Counter, Counters, HwConfig};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Compiled model (from `systole compile`).
    #[arg(value_name = "MODEL.sbin")]
    pub program: PathBuf,
    /// Input: a float32 .npy of the model input's shape (one inference), or
    /// with one more leading dimension (a batch of independent inferences).
    /// A model with an int8/uint8 input also takes an array of that type,
    /// already quantized.
    #[arg(long, value_name = "X.npy")]
    pub input: PathBuf,
    /// Directory for the outputs, `DIR/<output name>.npy` (float32, stacked
    /// along a leading dimension for a batch); created if missing.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Hardware configuration to simulate [default: the one recorded in the
    /// program]. Only timing may differ: the configuration must have the
    /// fingerprint the program was compiled for.
    #[arg(long, value_name = "HW.toml")]
    pub hw: Option<PathBuf>,
    /// Where to run: the Rust model, the verilated RTL, or both compared
    /// (outputs, cycles, counters, every instruction's start and finish).
    #[arg(long, value_enum, default_value_t = Backend::Sim)]
    pub backend: Backend,
    /// Compare every layer's output buffer, and the final output, with the
    /// reference interpreter after each inference; the first difference
    /// fails the command (exit 1) and says where it is.
    #[arg(long)]
    pub check: bool,
    /// Also write the report as JSON.
    #[arg(long, value_name = "REPORT.json")]
    pub json: Option<PathBuf>,
    /// Energy and area table (TOML) [default: the built-in 45 nm table].
    #[arg(long, value_name = "TABLE.toml")]
    pub energy_table: Option<PathBuf>,
}

/// The inputs of the runs, in the input tensor's logical order.
enum Inputs {
    Float(Vec<f32>),
    /// Already quantized (an int8 / uint8 array for a quantized model input).
    Quant(Vec<i32>),
}

/// A checked input array: `runs` inferences of `per_run` elements.
struct Batch {
    inputs: Inputs,
    runs: usize,
    per_run: usize,
    /// True when the array has the extra leading (batch) dimension.
    batched: bool,
}

impl Batch {
    fn float(&self, k: usize) -> Option<&[f32]> {
        match &self.inputs {
            Inputs::Float(v) => Some(&v[k * self.per_run..(k + 1) * self.per_run]),
            Inputs::Quant(_) => None,
        }
    }

    fn quant(&self, k: usize) -> Option<&[i32]> {
        match &self.inputs {
            Inputs::Quant(v) => Some(&v[k * self.per_run..(k + 1) * self.per_run]),
            Inputs::Float(_) => None,
        }
    }
}

fn tensor_with_role<'a>(prog: &'a Program, prog_name: &str, role: TensorRole) -> Result<&'a TensorInfo> {
    prog.tensors.iter().find(|t| t.role == role).ok_or_else(|| {
        CliError::input(format!(
            "{prog_name}: the program has no {role} tensor in its tensor map (is it a compiled model? \
             `systole compile` writes one; for programs from `systole asm` use `systole sim`)"
        ))
    })
}

/// The device configuration: `--hw`, or the one recorded in the program.
fn device_config(args: &RunArgs, prog: &Program, prog_name: &str) -> Result<HwConfig> {
    if let Some(path) = &args.hw {
        return load::config(path);
    }
    let text = prog.meta.get("hw").and_then(Value::as_str).ok_or_else(|| {
        CliError::input(format!(
            "{prog_name}: the program records no hardware configuration (meta `hw`); give one with --hw"
        ))
    })?;
    HwConfig::from_toml(text).map_err(|e| {
        CliError::input(format!("{prog_name}: the recorded hardware configuration (meta `hw`) is invalid: {e}"))
    })
}

/// Reads the input array and checks it against the input tensor.
fn read_batch(path: &Path, t: &TensorInfo) -> Result<Batch> {
    let a: Array = npy::read(path)?;
    let what = format!("--input {}", path.display());
    let per_run = t.shape.iter().product::<u64>() as usize;
    match (a.elem, t.dtype) {
        (Elem::F32, _) | (Elem::I8, DType::I8) | (Elem::U8, DType::U8) => {}
        (e, d) => {
            return Err(CliError::input(format!(
                "{what}: the array is {}; the model takes float32 (quantized on the host) or, already \
                 quantized, {d}",
                e.name()
            )))
        }
    }
    let batched = if a.shape == t.shape {
        false
    } else if a.shape.len() == t.shape.len() + 1 && a.shape[1..] == t.shape[..] {
        true
    } else {
        let mut batch = vec![32];
        batch.extend_from_slice(&t.shape);
        return Err(CliError::input(format!(
            "{what}: the array's shape is {}, the model's input `{}` has shape {}; give an array of shape {} \
             (one inference) or N x that, e.g. {} (a batch of N)",
            shape_text(&a.shape),
            t.name,
            shape_text(&t.shape),
            shape_text(&t.shape),
            shape_text(&batch)
        )));
    };
    let runs = if batched { a.shape[0] as usize } else { 1 };
    if runs == 0 {
        return Err(CliError::input(format!("{what}: the batch is empty (shape {})", shape_text(&a.shape))));
    }
    let inputs = match (a.elem, t.dtype) {
        (Elem::F32, _) => {
            Inputs::Float(a.data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect())
        }
        (Elem::I8, DType::I8) => Inputs::Quant(a.data.iter().map(|&b| b as i8 as i32).collect()),
        _ => Inputs::Quant(a.data.iter().map(|&b| b as i32).collect()),
    };
    Ok(Batch { inputs, runs, per_run, batched })
}

/// A file name for a tensor: its name with characters other than letters,
/// digits, `_`, `-` and `.` replaced by `_`.
fn file_stem(name: &str) -> String {
    let s: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') { c } else { '_' }).collect();
    if s.is_empty() || s.chars().all(|c| c == '.') {
        "output".to_string()
    } else {
        s
    }
}

/// What `--check` compares with: the graph, and for each layer (views
/// excepted) the value it writes and its device layout.
struct Checker {
    graph: Graph,
    /// For already quantized inputs to a float-input graph: the graph from
    /// its input QuantizeLinear's output on.
    from_quantized: Option<Graph>,
    layers: Vec<(usize, ValueId, isa::layout::Layout)>,
    views: usize,
}

impl Checker {
    fn new(prog: &Program, prog_name: &str, layers: &[LayerMeta]) -> Result<Checker> {
        let text = prog.meta.get("graph").and_then(Value::as_str).ok_or_else(|| {
            CliError::input(format!(
                "--check: {prog_name} records no graph (meta `graph`) for the reference interpreter; \
                 recompile it with `systole compile`"
            ))
        })?;
        let graph = compiler::text::parse(text).map_err(|e| {
            CliError::input(format!("--check: {prog_name}: the recorded graph (meta `graph`) does not parse: {e}"))
        })?;
        if graph.inputs.len() != 1 || graph.outputs.len() != 1 {
            return Err(CliError::input(format!(
                "--check: {prog_name}: the recorded graph has {} inputs and {} outputs; one of each is supported",
                graph.inputs.len(),
                graph.outputs.len()
            )));
        }
        let mut checked = Vec::new();
        let mut views = 0;
        for (k, l) in layers.iter().enumerate() {
            if l.is_view() {
                views += 1;
                continue;
            }
            let id = graph.value(&l.value).ok_or_else(|| {
                CliError::input(format!(
                    "--check: {prog_name}: layer `{}` writes `{}`, which the recorded graph does not have",
                    l.name, l.value
                ))
            })?;
            let layout = l.device_layout().map_err(|e| CliError::input(format!("--check: {prog_name}: {e}")))?;
            if layout.offsets().len() != graph.values[id].elements() {
                return Err(CliError::input(format!(
                    "--check: {prog_name}: layer `{}`: the layout of `{}` does not hold its {} elements",
                    l.name,
                    l.value,
                    graph.values[id].elements()
                )));
            }
            checked.push((k, id, layout));
        }
        let from_quantized = quantized_entry(&graph);
        Ok(Checker { graph, from_quantized, layers: checked, views })
    }

    /// Runs the interpreter on run `k`'s input: the float input through the
    /// whole graph (so the host's quantization is checked too), or the
    /// device's quantized input from the graph's quantized entry on.
    /// Value ids are the same in both graphs.
    fn reference(&self, batch: &Batch, k: usize, inf: &Inference) -> Result<Vec<Tensor>> {
        let x = &self.graph.values[self.graph.inputs[0]];
        let (graph, t) = match (x.ty, batch.float(k), &self.from_quantized) {
            (ElemType::F32, Some(f), _) => (&self.graph, Tensor::float(x.shape.clone(), f.to_vec())),
            (ElemType::F32, None, Some(g)) => (g, Tensor::quant(x.shape.clone(), inf.input_q.clone())),
            (ElemType::F32, None, None) => {
                return Err(CliError::input(
                    "--check: the model's float input does not feed a QuantizeLinear; give a float32 array",
                ))
            }
            _ => (&self.graph, Tensor::quant(x.shape.clone(), inf.input_q.clone())),
        };
        interp::run(graph, &[t])
            .map_err(|e| CliError::input(format!("--check: the reference interpreter failed on run {k}: {e}")))
    }
}

/// A float-input graph cut after its input's QuantizeLinear: the
/// quantized value becomes the graph input (None if there is no such node).
fn quantized_entry(g: &Graph) -> Option<Graph> {
    let x = *g.inputs.first()?;
    if g.values[x].ty != ElemType::F32 {
        return None;
    }
    let k = g.nodes.iter().position(|n| n.inputs == [x] && matches!(n.op, compiler::ir::Op::Quantize))?;
    let mut q = g.clone();
    let node = q.nodes.remove(k);
    q.inputs = vec![node.outputs[0]];
    q.validate().is_ok().then_some(q)
}

/// Where an element of a value is: `[c, h, w]` for NCHW, `[row, col]` for 2-D.
fn position(shape: &[u64], idx: usize) -> (String, usize) {
    let idx = idx as u64;
    match shape[..] {
        [1, _, h, w] => {
            let (ch, y, x) = (idx / (h * w), idx / w % h, idx % w);
            (format!("[c={ch}, h={y}, w={x}]"), ch as usize)
        }
        [_, cols] => (format!("[row={}, col={}]", idx / cols, idx % cols), (idx % cols) as usize),
        [_] => (format!("[{idx}]"), idx as usize),
        _ => (format!("(flat index {idx})"), 0),
    }
}

/// Compares every checked layer's device buffer, and the final output, with
/// the reference; the first difference is the error (exit 1).
#[allow(clippy::too_many_arguments)]
fn check_run<D: isa::Device>(
    chk: &Checker,
    drv: &mut Driver<D>,
    layers: &[LayerMeta],
    cfg: &HwConfig,
    batch: &Batch,
    k: usize,
    inf: &Inference,
) -> Result<()> {
    let vals = chk.reference(batch, k, inf)?;
    let run = if batch.batched {
        format!("run {} of {} (batch index {k})", k + 1, batch.runs)
    } else {
        "the run".to_string()
    };
    // The host's quantization of a float input.
    if let (Some(g), Some(_)) = (&chk.from_quantized, batch.float(k)) {
        let xq = g.inputs[0];
        if let Some(want) = vals[xq].as_quant() {
            if let Some(i) = (0..want.len()).find(|&i| inf.input_q.get(i) != Some(&want[i])) {
                return Err(CliError::check(format!(
                    "check failed: {run}, the host's quantization of the input into `{}`: element {i}: device input \
                     {}, reference {}",
                    g.values[xq].name,
                    inf.input_q.get(i).map_or_else(|| "missing".to_string(), |v| v.to_string()),
                    want[i]
                )));
            }
        }
    }
    for (li, id, layout) in &chk.layers {
        let l = &layers[*li];
        let want = vals[*id].as_quant().ok_or_else(|| {
            CliError::input(format!("--check: layer `{}`: the reference value `{}` is not quantized", l.name, l.value))
        })?;
        let image = drv
            .read_mem(l.addr, layout.bytes())
            .map_err(|e| CliError::input(format!("--check: reading layer `{}`'s buffer: {e}", l.name)))?;
        let offsets = layout.offsets();
        for (idx, (&off, &r)) in offsets.iter().zip(want).enumerate() {
            let b = image[off];
            let got = if l.elem == "u8" { b as i32 } else { b as i8 as i32 };
            if got != r {
                let (pos, channel) = position(&l.shape, idx);
                let tile = if matches!(l.op.as_str(), "conv" | "dense") {
                    // Output channels are the GEMM's columns, `array.cols` to an n-tile;
                    // they are dimension 1 of both [1, C, H, W] and [rows, N].
                    let cols = cfg.array.cols as usize;
                    let t = channel / cols;
                    let channels = l.shape.get(1).map_or(channel + 1, |&c| c as usize);
                    format!(", n-tile {t} (output channels {}..{})", t * cols, ((t + 1) * cols).min(channels))
                } else {
                    String::new()
                };
                let mismatches = offsets
                    .iter()
                    .zip(want)
                    .filter(|(&o, &w)| (if l.elem == "u8" { image[o] as i32 } else { image[o] as i8 as i32 }) != w)
                    .count();
                return Err(CliError::check(format!(
                    "check failed: {run}, layer `{}` ({}, instructions {}..{}), value `{}` {}: element {idx} {pos}{tile}: \
                     device {got}, reference {r} (device address {:#x}); {mismatches} of {} elements differ",
                    l.name,
                    l.op,
                    l.first,
                    l.last,
                    l.value,
                    shape_text(&l.shape),
                    l.addr + off as u64,
                    want.len()
                )));
            }
        }
    }
    // The final output, bit for bit.
    let out = &chk.graph.values[chk.graph.outputs[0]];
    let reference = &vals[chk.graph.outputs[0]];
    match (reference.as_float(), reference.as_quant()) {
        (Some(want), _) => {
            for (i, (g, w)) in inf.output.iter().zip(want).enumerate() {
                if g.to_bits() != w.to_bits() {
                    return Err(CliError::check(format!(
                        "check failed: {run}, output `{}` element {i}: device {g:?} ({:#010x}), reference {w:?} ({:#010x})",
                        out.name,
                        g.to_bits(),
                        w.to_bits()
                    )));
                }
            }
        }
        (None, Some(want)) => {
            for (i, (g, w)) in inf.output_q.iter().zip(want).enumerate() {
                if g != w {
                    return Err(CliError::check(format!(
                        "check failed: {run}, output `{}` element {i}: device {g}, reference {w}",
                        out.name
                    )));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// A driver error during run `k`, naming the instruction and its layer.
fn run_error(
    e: DriverError,
    prog: &Program,
    layers: &[LayerMeta],
    batch: &Batch,
    k: usize,
    overwritten: Option<String>,
) -> CliError {
    let run = if batch.batched { format!("run {k} (batch index {k}): ") } else { String::new() };
    match e {
        DriverError::Fault { code, pc } => {
            let instr =
                prog.code.get(pc as usize).map_or_else(|| "past the end of the code".to_string(), |i| format!("`{i}`"));
            let layer = layers::layer_of(layers, pc as usize)
                .map_or_else(String::new, |l| format!(" in layer `{}` ({})", l.name, l.op));
            let why = overwritten.map_or_else(String::new, |o| format!("; {o}"));
            CliError::input(format!(
                "{run}the device faulted at instruction {pc} ({instr}){layer}: {}{why}",
                code.name()
            ))
        }
        other => CliError::input(format!("{run}{other}")),
    }
}

fn progress_bar(runs: usize) -> Option<ProgressBar> {
    if runs <= 1 {
        return None;
    }
    let pb = ProgressBar::with_draw_target(Some(runs as u64), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{prefix} [{bar:32}] {pos}/{len} inferences, {elapsed} (eta {eta})")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_prefix("systole run");
    Some(pb)
}

/// Checks the --json destination: its directory exists (or is --out, which
/// is created), it is not a directory.
fn check_json_destination(json: &Path, out: &Path) -> Result<()> {
    let parent = match json.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if parent == out && !out.exists() {
        return Ok(());
    }
    check_destinations([(json, "--json")])
}

pub fn run(args: &RunArgs) -> Result<()> {
    if args.out.exists() && !args.out.is_dir() {
        return Err(CliError::input(format!("--out {}: exists and is not a directory", args.out.display())));
    }
    if let Some(j) = &args.json {
        check_json_destination(j, &args.out)?;
    }

    let prog_name = args.program.display().to_string();
    let (prog, _) = load::program(&args.program)?;
    let cfg = device_config(args, &prog, &prog_name)?;
    let table = load::energy_table(args.energy_table.as_deref())?;
    let tin = tensor_with_role(&prog, &prog_name, TensorRole::Input)?.clone();
    let tout = tensor_with_role(&prog, &prog_name, TensorRole::Output)?.clone();
    let layers = layers::from_meta(&prog, &prog_name)?;
    let batch = read_batch(&args.input, &tin)?;
    let checker = if args.check { Some(Checker::new(&prog, &prog_name, &layers)?) } else { None };
    let out_file = args.out.join(format!("{}.npy", file_stem(&tout.name)));
    if out_file.is_dir() {
        return Err(CliError::input(format!("--out: {} is a directory", out_file.display())));
    }
    if args.json.as_deref() == Some(out_file.as_path()) {
        return Err(CliError::input(format!("{} is named as an output twice", out_file.display())));
    }

    let (device, comparison) = backend::open(args.backend, &cfg, None)?;
    let mut drv = Driver::new(device);
    drv.load(&prog).map_err(|e| CliError::input(format!("{prog_name}: {e}")))?;

    let pb = progress_bar(batch.runs);
    let result = (|| -> Result<_> {
        let mut outputs: Vec<f32> = Vec::with_capacity(batch.runs * tout.shape.iter().product::<u64>() as usize);
        let mut counters = Counters::default();
        let mut layer_cycles = vec![0u64; layers.len()];
        let mut per_run = Vec::with_capacity(batch.runs);
        for k in 0..batch.runs {
            let inf = match (batch.float(k), batch.quant(k)) {
                (Some(x), _) => drv.infer(&prog, x),
                (_, Some(q)) => drv.infer_quantized(&prog, q),
                _ => unreachable!("a batch holds float or quantized inputs"),
            }
            .map_err(|e| {
                let overwritten = match &e {
                    DriverError::Fault { pc, .. } => driver::fault::overwritten_code(drv.device_mut(), &prog, *pc),
                    _ => None,
                };
                comparison.mismatch().unwrap_or_else(|| run_error(e, &prog, &layers, &batch, k, overwritten))
            })?;
            if let Some(chk) = &checker {
                check_run(chk, &mut drv, &layers, &cfg, &batch, k, &inf)?;
            }
            for (c, v) in inf.report.counters.iter() {
                counters.add(c, v);
            }
            for (sum, l) in layer_cycles.iter_mut().zip(&layers) {
                *sum += layers::layer_cycles(&inf.report.trace, l);
            }
            per_run.push(inf.report.cycles());
            outputs.extend_from_slice(&inf.output);
            if let Some(pb) = &pb {
                pb.inc(1);
            }
        }
        Ok((outputs, counters, layer_cycles, per_run))
    })();
    if let Some(pb) = &pb {
        pb.finish_and_clear();
    }
    let (outputs, counters, layer_cycles, per_run) = result?;

    // Outputs: float32, with the batch dimension when the input had one.
    let mut shape = Vec::new();
    if batch.batched {
        shape.push(batch.runs as u64);
    }
    shape.extend_from_slice(&tout.shape);
    let bytes: Vec<u8> = outputs.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut files = Outputs::in_dir(&args.out);
    files.add(&out_file, npy::encode(Elem::F32, &shape, &bytes)?);

    let runs = batch.runs as u64;
    let energy = sim::energy::energy(&cfg, &counters, &table);
    let (rows, other) = layers::rows(&prog, &layers, &layer_cycles, runs, &cfg, &counters, &energy);
    let summary = RunSummary { program: &prog_name, cfg: &cfg, outcome: "done", counters: &counters, energy: &energy };
    let mean = counters.get(Counter::Cycles) as f64 / runs as f64;
    let (min, max) = (per_run.iter().copied().min().unwrap_or(0), per_run.iter().copied().max().unwrap_or(0));
    let check_text = checker.as_ref().map(|c| {
        let mut s = format!(
            "{} layer{} x {} run{} agree with the reference interpreter bit for bit, and so does the output",
            c.layers.len(),
            if c.layers.len() == 1 { "" } else { "s" },
            runs,
            if runs == 1 { "" } else { "s" }
        );
        if c.views > 0 {
            let _ = write!(
                s,
                " ({} view{} not checked: the buffer is its input's)",
                c.views,
                if c.views == 1 { "" } else { "s" }
            );
        }
        s
    });

    if let Some(path) = &args.json {
        let mut j = report::json(&summary);
        if let Value::Object(m) = &mut j {
            m.insert("command".into(), Value::from("run"));
            m.insert("backend".into(), Value::from(args.backend.name()));
            m.insert("inferences".into(), Value::from(runs));
            m.insert("cycles_per_inference".into(), Value::from(mean));
            m.insert("cycles_per_inference_min".into(), Value::from(min));
            m.insert("cycles_per_inference_max".into(), Value::from(max));
            m.insert(
                "input".into(),
                json!({ "file": args.input.display().to_string(), "tensor": tin.name, "shape": tin.shape }),
            );
            m.insert(
                "output".into(),
                json!({ "file": out_file.display().to_string(), "tensor": tout.name, "shape": shape }),
            );
            let (layer_values, other_value) = layers::json(&rows, &other, runs);
            m.insert("layers".into(), Value::from(layer_values));
            // What no layer accounts for, so that layers + other = the totals.
            m.insert("other".into(), other_value);
            m.insert("layer_energy_attribution".into(), Value::from(layers::ATTRIBUTION));
            m.insert(
                "check".into(),
                checker.as_ref().map_or(
                    Value::Null,
                    |c| json!({ "passed": true, "layers": c.layers.len(), "views_skipped": c.views, "runs": runs }),
                ),
            );
        }
        let mut text = serde_json::to_string_pretty(&j).unwrap_or_default();
        text.push('\n');
        files.add(path, text.into_bytes());
    }
    files.commit()?;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "systole run: {prog_name} on config `{}` ({}x{} array, {} MHz), backend {}",
        cfg.name,
        cfg.array.rows,
        cfg.array.cols,
        cfg.clock.mhz,
        args.backend.name()
    );
    let _ = writeln!(
        out,
        "input         {}: {} inference{} of `{}` {}",
        args.input.display(),
        runs,
        if runs == 1 { "" } else { "s" },
        tin.name,
        shape_text(&tin.shape)
    );
    let _ = writeln!(out, "output        {}: `{}` {} f32", out_file.display(), tout.name, shape_text(&shape));
    let _ = writeln!(
        out,
        "per inference {} cycles = {:.3} µs (mean of {runs}; min {}, max {})",
        group(mean.round() as u64),
        mean / cfg.clock.mhz,
        group(min),
        group(max)
    );
    if let Some(t) = &check_text {
        let _ = writeln!(out, "check         {t}");
    }
    out.push('\n');
    let _ = writeln!(out, "totals over the {runs} inference{}:", if runs == 1 { "" } else { "s" });
    let total = report::text(&summary);
    // The totals report without its `systole sim:` title line.
    out.push_str(total.split_once('\n').map_or(total.as_str(), |(_, rest)| rest));
    out.push('\n');
    if layers.is_empty() {
        let _ = writeln!(out, "per layer: the program records no layers (meta `layers`)");
    } else {
        let _ = writeln!(out, "per layer (summed over the {runs} inference{}):", if runs == 1 { "" } else { "s" });
        out.push_str(&layers::text(&rows, &other, &cfg, &counters, &energy));
        let _ = writeln!(
            out,
            "  cycles: first start to last finish of the layer's instructions; util: MACs / (cycles x {} MACs/cycle);",
            cfg.peak_macs_per_cycle()
        );
        let _ = writeln!(
            out,
            "  DRAM B: data of its loads and stores; bus B: what the bus carried for it (whole {}-byte beats, and \
             instruction fetch);",
            cfg.dram.bytes_per_cycle
        );
        let _ = writeln!(
            out,
            "  bound: compute if MACs / {} >= DRAM B / {} B/cycle, else bandwidth;",
            cfg.peak_macs_per_cycle(),
            cfg.dram.bytes_per_cycle
        );
        let _ = writeln!(out, "  energy: {}.", layers::ATTRIBUTION);
    }
    print_stdout(&out)
}
