//! `systole run`: run a compiled model on float inputs through the driver,
//! as a host program would: one inference per input (or per entry of a
//! batch), outputs back as float `.npy`, a report of the whole run with a
//! per-layer table, and optionally a bit-exact check of every layer against
//! the reference interpreter (`--check`). The flow is `systole::flow`; this
//! module reads the files, calls it, and writes and prints the results.

use super::error::{CliError, Result};
use super::files::{check_destinations, print_stdout, Outputs};
use super::npy::{self, Array, Elem};
use super::progress::Progress;
use super::regress::RegressArgs;
use super::report::{self, RunSummary};
use super::spec::shape_text;
use super::table::group;
use super::{layers, load, trace};
use clap::Args;
use driver::Driver;
use isa::program::{Program, TensorInfo, TensorRole};
use isa::HwConfig;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use systole::flow::backend::{self, Backend};
use systole::flow::check::{recorded_graph, Checker};
use systole::flow::infer::{Batch, HostData};
use systole::flow::layers::{from_program, ATTRIBUTION};
use systole::flow::regression::{self, Baseline, Command as Regressed, Entry, Metrics, Subject};
use systole::flow::report::TensorFile;
use systole::flow::{hosted, run, Compiled};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Compiled model (from `systole compile`).
    #[arg(value_name = "MODEL.sbin")]
    pub program: PathBuf,
    /// Input: a float32 .npy of the model input's shape (one inference), or
    /// with one more leading dimension (a batch of independent inferences).
    /// A model with an int8/uint8 input also takes an array of that type,
    /// already quantized. `NAME=X.npy` names the input (repeated for a model
    /// with several; a compiled program has one). Without it, one inference
    /// runs on generated inputs (uniform over the input's quantized range,
    /// ChaCha8 with seed 0: the same on every machine), for performance
    /// measurements.
    #[arg(long = "input", value_name = "[NAME=]X.npy")]
    pub inputs: Vec<InputArg>,
    /// Directory for the outputs, `DIR/<output name>.npy` (float32, stacked
    /// along a leading dimension for a batch); created if missing. Without
    /// it no output is written (its SHA-256 is still printed).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
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
    #[command(flatten)]
    pub regress: RegressArgs,
    /// Write the run's timing as a Chrome/Perfetto trace (open in
    /// ui.perfetto.dev): every instruction on its unit's track, the layers,
    /// the dependency tokens as arrows, DRAM bandwidth and queue counters.
    /// Of one inference (the last; timing does not depend on the data).
    #[arg(long, value_name = "TRACE.json")]
    pub trace: Option<PathBuf>,
    /// Threads the inferences of a batch are spread over (`--backend sim`;
    /// results are the same for any number) [default: the cores available].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
}

/// One `--input`: `FILE`, or `NAME=FILE` naming the model input it feeds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputArg {
    pub name: Option<String>,
    pub path: PathBuf,
}

impl std::str::FromStr for InputArg {
    type Err = String;

    /// `NAME=FILE` when the text has an `=` and is not itself an existing
    /// file; the whole text is the file otherwise.
    fn from_str(s: &str) -> std::result::Result<InputArg, String> {
        match s.split_once('=') {
            Some((name, path)) if !Path::new(s).exists() => {
                if name.is_empty() || path.is_empty() {
                    return Err(format!("`{s}`: expected FILE.npy or NAME=FILE.npy"));
                }
                Ok(InputArg { name: Some(name.to_string()), path: PathBuf::from(path) })
            }
            _ => Ok(InputArg { name: None, path: PathBuf::from(s) }),
        }
    }
}

/// The one `--input` of a compiled program (None: none given), checked
/// against its input tensor's name when named.
fn single_input<'a>(inputs: &'a [InputArg], tin: &TensorInfo, prog_name: &str) -> Result<Option<&'a Path>> {
    let one = match inputs {
        [] => return Ok(None),
        [one] => one,
        _ => {
            return Err(CliError::input(format!(
                "{prog_name}: {} --input arrays for a compiled program, which has one input `{}`",
                inputs.len(),
                tin.name
            )))
        }
    };
    match &one.name {
        Some(n) if *n != tin.name => Err(CliError::input(format!(
            "--input {n}=...: the program's input is `{}`, it has no input `{n}`",
            tin.name
        ))),
        _ => Ok(Some(&one.path)),
    }
}

/// The device configuration: `--hw`, or the one recorded in the program.
fn device_config(args: &RunArgs, prog: &Program, prog_name: &str) -> Result<HwConfig> {
    if let Some(path) = &args.hw {
        return load::config(path);
    }
    // `Program::from_bytes` validated it and checked its fingerprint.
    prog.meta.config.clone().ok_or_else(|| {
        CliError::input(format!("{prog_name}: the program records no hardware configuration; give one with --hw"))
    })
}

/// Reads the input array and checks it against the input tensor; returns
/// it with the SHA-256 of its data.
fn read_batch(path: &Path, t: &TensorInfo) -> Result<(Batch, String)> {
    let a: Array = npy::read(path)?;
    let what = format!("--input {}", path.display());
    let sha = regression::sha256(&a.data);
    Ok((Batch::new(&a.shape, host_data(a.elem, a.data, &what)?, t, &what)?, sha))
}

/// The seed of the inputs `run` generates without `--input`.
const GENERATED_SEED: u64 = 0;

/// How the report names generated inputs.
fn generated_name() -> String {
    format!("(generated: uniform over the quantized input range, ChaCha8 seed {GENERATED_SEED})")
}

/// One inference's input for a run without `--input`: quantized values
/// drawn uniformly from the input type's range, given as the float values
/// they stand for (so `--check` sees them too); a float input draws from
/// [-1, 1). Returns it with the SHA-256 of its float32 data.
fn generated_batch(t: &TensorInfo) -> Result<(Batch, String)> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(GENERATED_SEED);
    let n = t.checked_elements().unwrap_or(0) as usize;
    let (scale, zero) = (t.scale.unwrap_or(1.0), t.zero_point.unwrap_or(0));
    let values: Vec<f32> = match t.dtype {
        isa::program::DType::I8 => (0..n).map(|_| scale * (rng.gen_range(-128..=127) - zero) as f32).collect(),
        isa::program::DType::U8 => (0..n).map(|_| scale * (rng.gen_range(0..=255) - zero) as f32).collect(),
        _ => (0..n).map(|_| rng.gen_range(-1.0f32..1.0)).collect(),
    };
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let batch = Batch::new(&t.shape, HostData::F32(values), t, "the generated input")?;
    Ok((batch, regression::sha256(&bytes)))
}

/// What a baseline of this run is of: the model (its name and tensors),
/// the input data and the configuration.
fn subject(prog: &Program, tin: &TensorInfo, tout: &TensorInfo, input: &str, sha: String, cfg: &HwConfig) -> Subject {
    let tensor = |t: &TensorInfo| format!("`{}` {} {}", t.name, shape_text(&t.shape), t.dtype);
    Subject {
        model: format!("{} (input {}, output {})", prog.meta.source, tensor(tin), tensor(tout)),
        input: input.to_string(),
        input_sha256: sha,
        config: serde_json::to_value(cfg).unwrap_or_default(),
        swept: Vec::new(),
    }
}

/// An array's elements as the flow takes them: float32, or int8 / uint8
/// (already quantized).
pub fn host_data(elem: Elem, data: Vec<u8>, what: &str) -> Result<HostData> {
    Ok(match elem {
        Elem::F32 => {
            HostData::F32(data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect())
        }
        Elem::I8 => HostData::I8(data.into_iter().map(|b| b as i8).collect()),
        Elem::U8 => HostData::U8(data),
        other => {
            return Err(CliError::input(format!(
                "{what}: the array is {}; the model takes float32 (quantized on the host) or, already quantized, \
                 i8 or u8 (the model input's own type)",
                other.name()
            )))
        }
    })
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

/// Checks the destination of `flag`: its directory exists (or is --out,
/// which is created), it is not a directory.
fn check_destination(path: &Path, flag: &str, out: Option<&Path>) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if out.is_some_and(|out| parent == out && !out.exists()) {
        return Ok(());
    }
    check_destinations([(path, flag)])
}

pub fn run(args: &RunArgs) -> Result<()> {
    if let Some(out) = args.out.as_deref().filter(|o| o.exists() && !o.is_dir()) {
        return Err(CliError::input(format!("--out {}: exists and is not a directory", out.display())));
    }
    if let Some(j) = &args.json {
        check_destination(j, "--json", args.out.as_deref())?;
    }
    if let Some(t) = &args.trace {
        check_destination(t, "--trace", args.out.as_deref())?;
    }
    check_destinations(args.regress.destinations())?;

    let prog_name = args.program.display().to_string();
    let (prog, _) = load::program(&args.program)?;
    let cfg = device_config(args, &prog, &prog_name)?;
    let table = load::energy_table(args.energy_table.as_deref())?;
    // A transformer's program runs with host preprocessing (its graph says
    // so); a graph that does not decode is `--check`'s business below.
    if let Some(graph) = (!prog.meta.graph.is_empty()).then(|| recorded_graph(&prog, &prog_name).ok()).flatten() {
        if hosted::is_hosted(&graph) {
            return run_hosted(args, &prog, &prog_name, &cfg, &table, &graph);
        }
    }
    let tin = run::tensor_with_role(&prog, &prog_name, TensorRole::Input)?.clone();
    let tout = run::tensor_with_role(&prog, &prog_name, TensorRole::Output)?.clone();
    let layers = from_program(&prog);
    let (batch, input_sha) = match single_input(&args.inputs, &tin, &prog_name)? {
        Some(path) => read_batch(path, &tin)?,
        None => generated_batch(&tin)?,
    };
    let input_name = match args.inputs.as_slice() {
        [one] => one.path.display().to_string(),
        _ => generated_name(),
    };
    let subject = subject(&prog, &tin, &tout, &input_name, input_sha, &cfg);
    let loaded = args.regress.load(Regressed::Run, &subject)?;
    let checker = match args.check {
        true => Some(Checker::new(recorded_graph(&prog, &prog_name)?, &prog_name, &layers)?),
        false => None,
    };
    let out_file = args.out.as_ref().map(|o| o.join(format!("{}.npy", file_stem(&tout.name))));
    if let Some(f) = out_file.as_deref().filter(|f| f.is_dir()) {
        return Err(CliError::input(format!("--out: {} is a directory", f.display())));
    }
    let named = [out_file.as_deref(), args.json.as_deref(), args.trace.as_deref()];
    for (k, a) in named.iter().enumerate() {
        if let Some(a) = a.filter(|a| named[k + 1..].contains(&Some(*a))) {
            return Err(CliError::input(format!("{} is named as an output twice", a.display())));
        }
    }

    let progress = Progress::bar("systole run", batch.runs as u64, "inferences");
    let tick = || progress.inc(1);
    let model = Compiled { prog: &prog, layers: &layers, cfg: &cfg };
    let how = run::Execution {
        threads: args.threads.map_or_else(run::available_threads, |n| n as usize),
        trace: args.trace.is_some(),
    };
    let result = run::execute(model, &prog_name, args.backend, &batch, checker.as_ref(), how, tick);
    progress.finish(&format!("{} inferences", batch.runs));
    let run::Executed { measured, trace: timeline } = result?;

    // Outputs: float32, with the batch dimension when the input had one.
    let shape = run::output_shape(&batch, &tout);
    let bytes: Vec<u8> = measured.outputs.iter().flat_map(|v| v.to_le_bytes()).collect();
    let output_sha = regression::output_hash(&measured.outputs);
    let mut files = match (&args.out, &out_file) {
        (Some(dir), Some(file)) => {
            let mut files = Outputs::in_dir(dir);
            files.add(file, npy::encode(Elem::F32, &shape, &bytes)?);
            files
        }
        _ => Outputs::new(),
    };
    let out_name = out_file.as_ref().map_or_else(|| "(not written: no --out)".to_string(), |f| f.display().to_string());

    let runs = batch.runs as u64;
    let counters = &measured.counters;
    let energy = sim::energy::energy(&cfg, model.prog, counters, &table);
    let named = run::RunFiles {
        input: TensorFile { file: input_name.clone(), tensor: tin.name.clone(), shape: tin.shape.clone() },
        output: TensorFile { file: out_name.clone(), tensor: tout.name.clone(), shape: shape.clone() },
    };
    let mut rep = run::report(model, &prog_name, args.backend, &table, &measured, named, checker.as_ref());
    // Layers on 2:4 tiles: what they saved against the dense program.
    run::with_dense_savings(model, &batch, &table, &mut rep)?;
    let per = rep.per_inference.clone();
    if let Some(path) = &args.json {
        files.add(path, rep.to_json().into_bytes());
    }
    if let (Some(path), Some(timeline)) = (&args.trace, &timeline) {
        let t = trace::chrome_trace(&prog, timeline, &cfg, &prog_name);
        files.add(path, serde_json::to_vec(&t).unwrap_or_default());
    }
    let metrics = Metrics {
        cycles: counters.get(isa::Counter::Cycles),
        energy_pj: energy.total_pj,
        dram_bus_bytes: rep.totals.dram_bus_bytes,
        output_hash: output_sha.clone(),
    };
    let entry = Entry {
        name: "run".into(),
        params: Default::default(),
        status: "ok".into(),
        metrics: Some(metrics),
        error: None,
    };
    let mut comparison = String::new();
    let regressed = args.regress.finish(
        loaded,
        &Baseline::new(Regressed::Run, subject, vec![entry]),
        &mut files,
        &mut comparison,
    )?;
    files.commit()?;

    let plural = |n: u64| if n == 1 { "" } else { "s" };
    let check_text = checker.as_ref().map(|c| {
        let mut s = format!(
            "{} layer{} x {} run{} agree with the reference interpreter bit for bit, and so does the output",
            c.layers(),
            plural(c.layers() as u64),
            runs,
            plural(runs)
        );
        if c.views() > 0 {
            let _ =
                write!(s, " ({} view{} not checked: the buffer is its input's)", c.views(), plural(c.views() as u64));
        }
        s
    });
    // A batched program (`compile --batch N`) makes N inferences a run.
    let inferences = if per.inferences == runs {
        format!("{runs} inference{}", plural(runs))
    } else {
        format!("{} inferences ({runs} run{} of {})", per.inferences, plural(runs), per.inferences / runs.max(1))
    };
    let mut out = String::new();
    out.push_str(&run_header(&prog_name, &cfg, args.backend));
    let _ = writeln!(out, "input         {input_name}: {inferences} of `{}` {}", tin.name, shape_text(&tin.shape));
    let _ = writeln!(out, "output        {out_name}: `{}` {} f32, {output_sha}", tout.name, shape_text(&shape));
    let _ = writeln!(
        out,
        "per inference {} cycles {} (mean of {}; min {}, max {}); {:.1} inferences/s, {:.6} µJ, {}",
        group(per.cycles_mean.round() as u64),
        if per.inferences == runs {
            format!("= {:.3} µs", per.latency_us)
        } else {
            format!("in runs of {} of {:.3} µs", per.inferences / runs.max(1), per.latency_us)
        },
        per.inferences,
        group(per.cycles_min),
        group(per.cycles_max),
        per.inferences_per_s,
        per.energy_uj,
        per.tops_per_w.map_or_else(|| "- TOPS/W".to_string(), |v| format!("{v:.3} TOPS/W"))
    );
    if let Some(t) = &check_text {
        let _ = writeln!(out, "check         {t}");
    }
    out.push('\n');
    let _ = writeln!(out, "totals over the {inferences}:");
    let summary = RunSummary { program: &prog_name, cfg: &cfg, outcome: "done", counters, energy: &energy };
    let total = report::text(&summary);
    // The totals report without its `systole sim:` title line.
    out.push_str(total.split_once('\n').map_or(total.as_str(), |(_, rest)| rest));
    out.push('\n');
    let model = rep.model.as_ref().expect("set above");
    if layers.is_empty() {
        let _ = writeln!(out, "per layer: the program records no layers (meta `layers`)");
    } else {
        let _ = writeln!(out, "per layer (summed over the {inferences}):");
        out.push_str(&layers::text(&model.layers, &model.other, &cfg, counters, &energy));
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
        let _ = writeln!(out, "  energy: {ATTRIBUTION}.");
    }
    out.push_str(&comparison);
    for (path, what) in [(&args.regress.write_baseline, "baseline"), (&args.regress.junit, "junit")] {
        if let Some(p) = path {
            let _ = writeln!(out, "wrote {what:<9}{}", p.display());
        }
    }
    print_stdout(&out)?;
    regressed.map_or(Ok(()), Err)
}

/// The inputs of a hosted run without `--input`: token ids uniform over the
/// rows of the embedding that reads them (ChaCha8, seed 0), every other
/// int64 input (masks) ones, float inputs uniform in [-1, 1).
fn generated_named(graph: &compiler::ir::Graph) -> Vec<(String, Array)> {
    use compiler::ir::{ElemType, Op};
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(GENERATED_SEED);
    // The rows of the table an id value selects from, through int64 moves.
    let rows_of = |v: usize| -> Option<usize> {
        let mut frontier = vec![v];
        while let Some(x) = frontier.pop() {
            for n in graph.nodes.iter().filter(|n| n.inputs.contains(&x)) {
                match &n.op {
                    Op::Embedding(e) => return Some(e.rows),
                    _ if graph.values[n.outputs[0]].ty == ElemType::I64 => frontier.push(n.outputs[0]),
                    _ => {}
                }
            }
        }
        None
    };
    graph
        .inputs
        .iter()
        .map(|&i| {
            let v = &graph.values[i];
            let n = v.elements();
            let (elem, data): (Elem, Vec<u8>) = match (v.ty, rows_of(i)) {
                (ElemType::I64, Some(rows)) => {
                    (Elem::I64, (0..n).flat_map(|_| (rng.gen_range(0..rows) as i64).to_le_bytes()).collect())
                }
                (ElemType::I64, None) => (Elem::I64, (0..n).flat_map(|_| 1i64.to_le_bytes()).collect()),
                _ => (Elem::F32, (0..n).flat_map(|_| rng.gen_range(-1.0f32..1.0).to_le_bytes()).collect()),
            };
            (v.name.clone(), Array { elem, shape: v.shape.iter().map(|&d| d as u64).collect(), data })
        })
        .collect()
}

/// `run` of a program with host preprocessing (a transformer): inputs by
/// name, the host's ops before each run, every output by name.
fn run_hosted(
    args: &RunArgs,
    prog: &Program,
    prog_name: &str,
    cfg: &HwConfig,
    table: &sim::energy::EnergyTable,
    graph: &compiler::ir::Graph,
) -> Result<()> {
    if args.trace.is_some() || args.regress.baseline.is_some() || !args.regress.destinations().is_empty() {
        return Err(CliError::input(format!(
            "{prog_name}: --trace and regression baselines are not supported yet for programs with host preprocessing"
        )));
    }
    let (inputs, input_name) = if args.inputs.is_empty() {
        (
            generated_named(graph),
            "(generated: token ids uniform over the vocabulary, masks all ones, ChaCha8 seed 0)".to_string(),
        )
    } else {
        let mut named = Vec::new();
        for a in &args.inputs {
            let name = match (&a.name, graph.inputs.as_slice()) {
                (Some(n), _) => n.clone(),
                (None, [one]) => graph.values[*one].name.clone(),
                (None, _) => {
                    return Err(CliError::input(format!(
                        "--input {}: the model has {} inputs; name each as --input NAME=FILE.npy",
                        a.path.display(),
                        graph.inputs.len()
                    )))
                }
            };
            named.push((name, npy::read(&a.path)?));
        }
        let files = args.inputs.iter().map(|a| a.path.display().to_string()).collect::<Vec<_>>().join(", ");
        (named, files)
    };
    let layers = from_program(prog);
    let model = Compiled { prog, layers: &layers, cfg };
    let (device, _comparison) = backend::open(args.backend, cfg, None)?;
    let mut drv = Driver::new(device);
    drv.load(prog).map_err(|e| CliError::input(format!("{prog_name}: {e}")))?;
    let result = hosted::run(&mut drv, model, graph, &inputs, args.check)?;
    let measured = &result.measured;
    let runs = measured.run_cycles.len() as u64;
    let mut files = match &args.out {
        Some(dir) => Outputs::in_dir(dir),
        None => Outputs::new(),
    };
    let mut out_lines = Vec::new();
    for o in &result.outputs {
        let bytes: Vec<u8> = o.data.iter().flat_map(|v| v.to_le_bytes()).collect();
        let file = args.out.as_ref().map(|d| d.join(format!("{}.npy", file_stem(&o.name))));
        if let Some(f) = &file {
            files.add(f, npy::encode(Elem::F32, &o.shape, &bytes)?);
        }
        let shown = file.map_or_else(|| "(not written: no --out)".to_string(), |f| f.display().to_string());
        out_lines.push(format!(
            "output        {shown}: `{}` {} f32, {}",
            o.name,
            shape_text(&o.shape),
            regression::output_hash(&o.data)
        ));
    }
    let first_out = result.outputs.first();
    let named = run::RunFiles {
        input: TensorFile {
            file: input_name.clone(),
            tensor: graph.inputs.iter().map(|&i| graph.values[i].name.clone()).collect::<Vec<_>>().join(", "),
            shape: graph
                .inputs
                .first()
                .map_or_else(Vec::new, |&i| graph.values[i].shape.iter().map(|&d| d as u64).collect()),
        },
        output: TensorFile {
            file: args.out.as_ref().map_or_else(|| "(not written: no --out)".to_string(), |d| d.display().to_string()),
            tensor: first_out.map_or_else(String::new, |o| o.name.clone()),
            shape: first_out.map_or_else(Vec::new, |o| o.shape.clone()),
        },
    };
    let mut rep = run::report(model, prog_name, args.backend, table, measured, named, None);
    // Layers on 2:4 tiles: what they saved against the dense program.
    run::with_dense_savings_hosted(model, graph, &inputs, table, &mut rep)?;
    if let Some(path) = &args.json {
        files.add(path, rep.to_json().into_bytes());
    }
    files.commit()?;
    let counters = &measured.counters;
    let energy = sim::energy::energy(cfg, model.prog, counters, table);
    let per = rep.per_inference.clone();
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    let mut out = String::new();
    out.push_str(&run_header(prog_name, cfg, args.backend));
    let _ = writeln!(out, "input         {input_name}: {runs} inference{}", plural(runs));
    let host = &result.host;
    let ops: Vec<String> = host.nodes.iter().map(|(n, op)| format!("`{n}` ({op})")).collect();
    if ops.is_empty() {
        let _ = writeln!(
            out,
            "host          no op ran on the host: the inputs as given, {} bytes, written to the device",
            group(host.bytes)
        );
    } else {
        let _ = writeln!(
            out,
            "host          {} op{} ran on the host before the device (input preprocessing): {}; {} bytes written to \
             the device, {:.1} µs",
            ops.len(),
            plural(ops.len() as u64),
            ops.join(", "),
            group(host.bytes),
            host.micros
        );
    }
    for l in out_lines {
        let _ = writeln!(out, "{l}");
    }
    let _ = writeln!(
        out,
        "per inference {} cycles = {:.3} µs (mean of {runs}; min {}, max {}); {:.1} inferences/s, {:.6} µJ",
        group(per.cycles_mean.round() as u64),
        per.latency_us,
        group(per.cycles_min),
        group(per.cycles_max),
        per.inferences_per_s,
        per.energy_uj,
    );
    if args.check {
        let views = layers.iter().filter(|l| l.is_view()).count();
        let _ = writeln!(
            out,
            "check         {} layer{} x {runs} run{} agree with the reference interpreter bit for bit ({} view{} not \
             checked: their buffers hold another order)",
            result.checked_layers,
            plural(result.checked_layers as u64),
            plural(runs),
            views,
            plural(views as u64)
        );
    }
    out.push('\n');
    let _ = writeln!(out, "totals over the {runs} inference{}:", plural(runs));
    let summary = RunSummary { program: prog_name, cfg, outcome: "done", counters, energy: &energy };
    let total = report::text(&summary);
    out.push_str(total.split_once('\n').map_or(total.as_str(), |(_, rest)| rest));
    out.push('\n');
    let model_rep = rep.model.as_ref().expect("set by run::report");
    // Shares by role: cycles, MACs, DRAM data per role of the layers.
    let roles = hosted::roles(&layers);
    let mut by_role = [(0u64, 0u64, 0u64); hosted::ROLES.len()];
    for (row, &r) in model_rep.layers.iter().zip(&roles) {
        by_role[r].0 += row.cycles;
        by_role[r].1 += row.macs;
        by_role[r].2 += row.dram_data_bytes;
    }
    let layer_cycles: u64 = by_role.iter().map(|r| r.0).sum::<u64>().max(1);
    let pct = |c: u64| 100.0 * c as f64 / layer_cycles as f64;
    let _ = writeln!(out, "by role (layer cycles, MACs, DRAM data bytes; shares of the layers' cycles):");
    for (name, (c, m, d)) in hosted::ROLES.iter().zip(by_role) {
        let _ = writeln!(
            out,
            "  {name:<13} {:>12} cycles {:>5.1}%  {:>13} MACs  {:>11} B",
            group(c),
            pct(c),
            group(m),
            group(d)
        );
    }
    let attention: u64 = by_role[hosted::ATTENTION_ROLES].iter().map(|r| r.0).sum();
    let vector_busy = counters.get(isa::Counter::VectorBusy);
    let _ = writeln!(
        out,
        "  attention {:.1}%, FFN {:.1}%, LayerNorm {:.1}%, other {:.1}%; the vector unit busy {:.1}% of the run",
        pct(attention),
        pct(by_role[hosted::FFN_ROLE].0),
        pct(by_role[hosted::LAYER_NORM_ROLE].0),
        pct(by_role[hosted::OTHER_ROLES].iter().map(|r| r.0).sum()),
        100.0 * vector_busy as f64 / counters.get(isa::Counter::Cycles).max(1) as f64
    );
    out.push('\n');
    let _ = writeln!(out, "per layer (summed over the {runs} inference{}):", plural(runs));
    out.push_str(&layers::text(&model_rep.layers, &model_rep.other, cfg, counters, &energy));
    print_stdout(&out)
}

/// The summary's first line: what ran, on which configuration and backend.
fn run_header(prog_name: &str, cfg: &HwConfig, backend: Backend) -> String {
    format!(
        "systole run: {prog_name} on config `{}` ({}x{} array, {} MHz), backend {}\n",
        cfg.name,
        cfg.array.rows,
        cfg.array.cols,
        cfg.clock.mhz,
        backend.name()
    )
}
