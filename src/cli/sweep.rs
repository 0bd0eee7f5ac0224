//! `systole sweep`: a design-space sweep. One model and one input, a base
//! hardware configuration and `--set KEY=V1,V2,...` lists; every point of
//! the lists' cartesian product is lowered, run once on the cycle-accurate
//! model through the driver, and measured (cycles, time, MAC utilization,
//! DRAM traffic, energy, area). The quantized output must not depend on the
//! hardware, so each point's output is compared with the first one's.
//!
//! Keys are dotted paths into the configuration (`dram.latency_cycles`,
//! `tech.node_nm`, ...; `array` sets both `array.rows` and `array.cols`).
//! They are applied to the base configuration as a tree (all fields present,
//! defaults filled in), which is then deserialized and validated, so any
//! field can be swept and an invalid combination becomes a row with its
//! validation error rather than a failure of the whole sweep.

use super::compile::import;
use super::error::{CliError, Result};
use super::files::{check_destinations, print_stdout, Outputs};
use super::load;
use super::npy::{self, Elem};
use super::spec::shape_text;
use super::table::{cells, group, table, Align};
use clap::Args;
use compiler::ir::Graph;
use driver::Driver;
use isa::program::{DType, TensorRole};
use isa::{Counter, HwConfig};
use serde_json::{json, Map, Value};
use sim::energy::EnergyTable;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// At most this many points per sweep.
pub const MAX_POINTS: usize = 256;

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// Model to sweep: a statically quantized ONNX model (.onnx) or a text
    /// model (.stm), as for `systole compile`.
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
    /// Base hardware configuration (TOML); `--set` changes fields of it.
    #[arg(long, value_name = "BASE.toml")]
    pub hw: PathBuf,
    /// A configuration key (dotted, e.g. `dram.latency_cycles`; `array` sets
    /// both `array.rows` and `array.cols`) and the comma-separated values to
    /// sweep it over. Repeat for more keys: their cartesian product is swept
    /// (the first key varies slowest). A list value is written `a+b`.
    #[arg(long = "set", value_name = "KEY=V1,V2,...", required = true)]
    pub set: Vec<String>,
    /// Input: a float32 .npy of the model input's shape, or a batch of them
    /// (only the first is run). An int8/uint8 array is taken as already
    /// quantized.
    #[arg(long, value_name = "X.npy")]
    pub input: PathBuf,
    /// Write the results as JSON: an array of one object per point.
    #[arg(long, value_name = "OUT.json")]
    pub json: Option<PathBuf>,
    /// Write the results as CSV: a header and one line per point.
    #[arg(long, value_name = "OUT.csv")]
    pub csv: Option<PathBuf>,
    /// Energy and area table (TOML) [default: the built-in 45 nm table].
    #[arg(long, value_name = "TABLE.toml")]
    pub energy_table: Option<PathBuf>,
}

/// One `--set`: the key as given, the configuration fields it sets, and its
/// values (as written, and as configuration values).
struct Param {
    key: String,
    paths: Vec<Vec<String>>,
    values: Vec<(String, Value)>,
}

/// What happened at one point.
enum Status {
    Ok(Metrics),
    /// The configuration does not deserialize or validate.
    Invalid(String),
    /// Valid, but the model does not compile for it (area still known).
    CompileError(String, f64),
    /// Compiled, but the run failed (area still known).
    RunError(String, f64),
}

impl Status {
    fn name(&self) -> &'static str {
        match self {
            Status::Ok(_) => "ok",
            Status::Invalid(_) => "invalid",
            Status::CompileError(..) => "compile_error",
            Status::RunError(..) => "run_error",
        }
    }

    fn error(&self) -> Option<&str> {
        match self {
            Status::Ok(_) => None,
            Status::Invalid(e) | Status::CompileError(e, _) | Status::RunError(e, _) => Some(e),
        }
    }

    fn metrics(&self) -> Option<&Metrics> {
        match self {
            Status::Ok(m) => Some(m),
            _ => None,
        }
    }

    fn area(&self) -> Option<f64> {
        match self {
            Status::Ok(m) => Some(m.area_mm2),
            Status::CompileError(_, a) | Status::RunError(_, a) => Some(*a),
            Status::Invalid(_) => None,
        }
    }
}

struct Metrics {
    cycles: u64,
    time_us: f64,
    macs: u64,
    mac_utilization: f64,
    dram_bytes: u64,
    energy_pj: f64,
    energy_per_mac_pj: Option<f64>,
    area_mm2: f64,
    /// The quantized output and the float output's bits.
    output_q: Vec<i32>,
    output_bits: Vec<u32>,
}

struct Point {
    /// Index into each parameter's values.
    choice: Vec<usize>,
    status: Status,
    /// Output equal to the reference (the first run point's): None if not run.
    same_output: Option<bool>,
}

/// The input array, checked on first use against the program's input.
enum Input {
    Float(Vec<f32>),
    Quant(Vec<i32>),
}

fn usage(message: impl std::fmt::Display) -> CliError {
    CliError::input(message)
}

/// Every leaf key of a configuration tree, dotted.
fn leaf_keys(v: &Value, prefix: &str, out: &mut Vec<String>) {
    if let Value::Object(m) = v {
        for (k, child) in m {
            let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
            if child.is_object() {
                leaf_keys(child, &key, out);
            } else {
                out.push(key);
            }
        }
    }
}

/// The value at a dotted path, if present.
fn lookup<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, seg| v.as_object()?.get(seg))
}

fn lookup_mut<'a>(v: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, seg| v.as_object_mut()?.get_mut(seg))
}

/// A scalar as written on the command line: an integer, a float, a
/// boolean, or else a string (optionally quoted).
fn scalar(text: &str) -> Value {
    if let Ok(i) = text.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(u) = text.parse::<u64>() {
        return Value::from(u);
    }
    if let Ok(f) = text.parse::<f64>() {
        if f.is_finite() {
            return Value::from(f);
        }
    }
    match text {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    let unquoted = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .or_else(|| text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')))
        .unwrap_or(text);
    Value::from(unquoted)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a table",
    }
}

/// Parses one value of `key` for a field whose base value is `base`.
fn parse_value(key: &str, text: &str, base: &Value) -> Result<Value> {
    let v = match base {
        // A list field (e.g. `array.weight_precisions=int8+int4`).
        Value::Array(_) => Value::Array(text.split('+').map(|t| scalar(t.trim())).collect()),
        // Any text is a valid string (e.g. `name=...`).
        Value::String(_) => match scalar(text) {
            Value::String(s) => Value::String(s),
            _ => Value::from(text),
        },
        _ => scalar(text),
    };
    let compatible = matches!(
        (base, &v),
        (Value::Number(_), Value::Number(_))
            | (Value::Bool(_), Value::Bool(_))
            | (Value::String(_), Value::String(_))
            | (Value::Array(_), Value::Array(_))
    );
    if !compatible {
        return Err(usage(format!(
            "--set {key}: `{text}` is {}, but `{key}` takes {} (the base configuration has {base})",
            kind(&v),
            kind(base)
        )));
    }
    Ok(v)
}

/// Parses one `--set KEY=V1,V2,...` against the base configuration tree.
fn parse_set(spec: &str, base: &Value) -> Result<Param> {
    let (key, list) = spec.split_once('=').ok_or_else(|| {
        usage(format!("--set {spec}: expected KEY=V1,V2,... (e.g. --set dram.latency_cycles=50,100)"))
    })?;
    let key = key.trim();
    if key.is_empty() {
        return Err(usage(format!("--set {spec}: the key is empty (expected KEY=V1,V2,...)")));
    }
    let split = |k: &str| k.split('.').map(str::to_string).collect::<Vec<String>>();
    let paths = if key == "array" { vec![split("array.rows"), split("array.cols")] } else { vec![split(key)] };
    let mut bases = Vec::new();
    for path in &paths {
        let found = lookup(base, path).ok_or_else(|| {
            let mut keys = Vec::new();
            leaf_keys(base, "", &mut keys);
            usage(format!(
                "--set {spec}: unknown configuration key `{key}`; the keys are `array` (rows and cols together), {}",
                keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
            ))
        })?;
        if found.is_object() {
            let mut keys = Vec::new();
            leaf_keys(found, key, &mut keys);
            return Err(usage(format!(
                "--set {spec}: `{key}` is a table, not a value; set one of its keys: {}",
                keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
            )));
        }
        bases.push(found);
    }
    let mut values = Vec::new();
    for text in list.split(',') {
        let text = text.trim();
        if text.is_empty() {
            return Err(usage(format!("--set {spec}: an empty value in the list (expected KEY=V1,V2,...)")));
        }
        let v = parse_value(key, text, bases[0])?;
        for b in &bases[1..] {
            parse_value(key, text, b)?;
        }
        values.push((text.to_string(), v));
    }
    Ok(Param { key: key.to_string(), paths, values })
}

/// The first input of the array, checked against the program's input tensor.
fn first_input(array: &npy::Array, t: &isa::program::TensorInfo, what: &str) -> Result<Input> {
    match (array.elem, t.dtype) {
        (Elem::F32, _) | (Elem::I8, DType::I8) | (Elem::U8, DType::U8) => {}
        (e, d) => {
            return Err(usage(format!(
                "{what}: the array is {}; the model takes float32 (quantized on the host) or, already quantized, {d}",
                e.name()
            )))
        }
    }
    let fits = array.shape == t.shape
        || (array.shape.len() == t.shape.len() + 1 && array.shape[1..] == t.shape[..] && array.shape[0] > 0);
    if !fits {
        return Err(usage(format!(
            "{what}: the array's shape is {}, the model's input `{}` has shape {}; give one input of that shape \
             or a batch of them (the first is run)",
            shape_text(&array.shape),
            t.name,
            shape_text(&t.shape)
        )));
    }
    let n = t.shape.iter().product::<u64>() as usize;
    let size = array.elem.size();
    let data = &array.data[..n * size];
    Ok(match (array.elem, t.dtype) {
        (Elem::F32, _) => {
            Input::Float(data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect())
        }
        (Elem::I8, _) => Input::Quant(data.iter().map(|&b| b as i8 as i32).collect()),
        _ => Input::Quant(data.iter().map(|&b| b as i32).collect()),
    })
}

/// Lowers, runs and measures one valid configuration. `Err` is a usage
/// error of the whole sweep (the input does not fit the model).
fn measure(
    graph: &Graph,
    cfg: &HwConfig,
    table: &EnergyTable,
    array: &npy::Array,
    what: &str,
    input: &mut Option<Input>,
) -> Result<Status> {
    let area = sim::energy::area(cfg, table).total;
    let lowered = match compiler::lower::lower(graph, cfg) {
        Ok(l) => l,
        Err(e) => return Ok(Status::CompileError(format!("cannot compile: {e}"), area)),
    };
    let prog = &lowered.program;
    if let Err(e) = prog.check_config(cfg) {
        return Ok(Status::CompileError(format!("the compiled program is invalid: {e}"), area));
    }
    if input.is_none() {
        let t = prog.tensors.iter().find(|t| t.role == TensorRole::Input).ok_or_else(|| {
            usage(format!("the compiled model has no input tensor in its tensor map ({what} cannot be placed)"))
        })?;
        *input = Some(first_input(array, t, what)?);
    }
    let model = match sim::Model::new(cfg) {
        Ok(m) => m,
        Err(e) => return Ok(Status::RunError(format!("cannot build the model: {e}"), area)),
    };
    let mut drv = Driver::new(model);
    if let Err(e) = drv.load(prog) {
        return Ok(Status::RunError(format!("cannot load: {e}"), area));
    }
    let inf = match input.as_ref().expect("set above") {
        Input::Float(x) => drv.infer(prog, x),
        Input::Quant(q) => drv.infer_quantized(prog, q),
    };
    let inf = match inf {
        Ok(i) => i,
        Err(e) => return Ok(Status::RunError(format!("the run failed: {e}"), area)),
    };
    let c = &inf.report.counters;
    let energy = sim::energy::energy(cfg, c, table);
    let cycles = c.get(Counter::Cycles);
    let macs = c.get(Counter::Macs);
    let peak = cfg.peak_macs_per_cycle() as f64 * cycles as f64;
    Ok(Status::Ok(Metrics {
        cycles,
        time_us: cycles as f64 / cfg.clock.mhz,
        macs,
        mac_utilization: if peak > 0.0 { macs as f64 / peak } else { 0.0 },
        dram_bytes: c.get(Counter::DramReadBytes) + c.get(Counter::DramWriteBytes),
        energy_pj: energy.total_pj,
        energy_per_mac_pj: (macs > 0).then(|| energy.total_pj / macs as f64),
        area_mm2: energy.area.total,
        output_q: inf.output_q,
        output_bits: inf.output.iter().map(|v| v.to_bits()).collect(),
    }))
}

/// `KEY = VALUE` of the swept value that makes the configuration fail to
/// deserialize with `error` (serde's message does not name the field): the
/// one that alone fails with the same message, else the first that alone
/// fails.
fn culprit(tree: &Value, params: &[Param], choice: &[usize], error: &str) -> Option<String> {
    let mut first = None;
    for (p, &c) in params.iter().zip(choice) {
        let mut v = tree.clone();
        for path in &p.paths {
            *lookup_mut(&mut v, path)? = p.values[c].1.clone();
        }
        if let Err(e) = serde_json::from_value::<HwConfig>(v) {
            let name = format!("{} = {}", p.key, p.values[c].0);
            if e.to_string() == error {
                return Some(name);
            }
            first.get_or_insert(name);
        }
    }
    first
}

/// The index of the best point by `key` (lowest; the first on ties).
fn best(points: &[Point], key: impl Fn(&Metrics) -> f64) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, p) in points.iter().enumerate() {
        if let Some(m) = p.status.metrics() {
            let v = key(m);
            if !matches!(best, Some((_, b)) if v >= b) {
                best = Some((i, v));
            }
        }
    }
    best.map(|(i, _)| i)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(value_text).collect::<Vec<_>>().join("+"),
        other => other.to_string(),
    }
}

pub fn run(args: &SweepArgs) -> Result<()> {
    let mut outs: Vec<(&Path, &str)> = Vec::new();
    if let Some(p) = &args.json {
        outs.push((p, "--json"));
    }
    if let Some(p) = &args.csv {
        outs.push((p, "--csv"));
    }
    check_destinations(outs)?;
    let base = load::config(&args.hw)?;
    let etable = load::energy_table(args.energy_table.as_deref())?;
    let tree = serde_json::to_value(&base).map_err(|e| usage(format!("{}: {e}", args.hw.display())))?;

    let mut params: Vec<Param> = Vec::new();
    for spec in &args.set {
        let p = parse_set(spec, &tree)?;
        for q in &params {
            if let Some(path) = p.paths.iter().find(|path| q.paths.contains(path)) {
                return Err(usage(format!("--set {}: `{}` is already set by --set {}", p.key, path.join("."), q.key)));
            }
        }
        params.push(p);
    }
    let total = params.iter().try_fold(1usize, |n, p| n.checked_mul(p.values.len())).unwrap_or(usize::MAX);
    if total > MAX_POINTS {
        let sizes: Vec<String> = params.iter().map(|p| format!("{} ({})", p.values.len(), p.key)).collect();
        return Err(usage(format!(
            "the sweep has {} points ({}), more than the {MAX_POINTS} allowed; sweep fewer values",
            if total == usize::MAX { "too many".to_string() } else { group(total as u64) },
            sizes.join(" x ")
        )));
    }

    let graph = import(&args.model)?;
    let array = npy::read(&args.input)?;
    let what = format!("--input {}", args.input.display());
    let mut input = None;

    let mut points = Vec::with_capacity(total);
    let mut reference: Option<(Vec<i32>, Vec<u32>)> = None;
    for n in 0..total {
        // Mixed radix, the last key varying fastest.
        let mut choice = vec![0; params.len()];
        let mut rest = n;
        for (k, p) in params.iter().enumerate().rev() {
            choice[k] = rest % p.values.len();
            rest /= p.values.len();
        }
        let mut v = tree.clone();
        for (p, &c) in params.iter().zip(&choice) {
            for path in &p.paths {
                *lookup_mut(&mut v, path).expect("checked when parsed") = p.values[c].1.clone();
            }
        }
        let status = match serde_json::from_value::<HwConfig>(v) {
            Err(e) => Status::Invalid(
                culprit(&tree, &params, &choice, &e.to_string()).map_or_else(|| e.to_string(), |k| format!("{k}: {e}")),
            ),
            Ok(cfg) => match cfg.validate() {
                Err(e) => Status::Invalid(e.to_string()),
                Ok(()) => measure(&graph, &cfg, &etable, &array, &what, &mut input)?,
            },
        };
        let same_output = status.metrics().map(|m| match &reference {
            None => {
                reference = Some((m.output_q.clone(), m.output_bits.clone()));
                true
            }
            Some((q, bits)) => *q == m.output_q && *bits == m.output_bits,
        });
        points.push(Point { choice, status, same_output });
    }

    let fastest = best(&points, |m| m.time_us);
    let lowest = best(&points, |m| m.energy_pj);
    let reference_at = points.iter().position(|p| p.status.metrics().is_some());

    // Text table.
    let mut header: Vec<String> = vec!["#".into()];
    header.extend(params.iter().map(|p| p.key.clone()));
    header.extend(cells(&[
        "cycles",
        "time µs",
        "MAC util",
        "DRAM B",
        "energy µJ",
        "pJ/MAC",
        "area mm²",
        "output",
        "note",
    ]));
    let mut rows = vec![header];
    let mut align = vec![Align::Right];
    align.extend(params.iter().map(|_| Align::Right));
    align.extend([Align::Right; 7]);
    align.extend([Align::Left, Align::Left]);
    let dash = || "-".to_string();
    for (i, p) in points.iter().enumerate() {
        let mut row = vec![i.to_string()];
        row.extend(params.iter().zip(&p.choice).map(|(q, &c)| q.values[c].0.clone()));
        match p.status.metrics() {
            Some(m) => {
                row.push(group(m.cycles));
                row.push(format!("{:.3}", m.time_us));
                row.push(format!("{:.1}%", 100.0 * m.mac_utilization));
                row.push(group(m.dram_bytes));
                row.push(format!("{:.4}", m.energy_pj / 1e6));
                row.push(m.energy_per_mac_pj.map_or_else(dash, |v| format!("{v:.3}")));
            }
            None => row.extend((0..6).map(|_| dash())),
        }
        row.push(p.status.area().map_or_else(dash, |a| format!("{a:.4}")));
        row.push(match p.same_output {
            None => dash(),
            Some(_) if Some(i) == reference_at => "reference".into(),
            Some(true) => "same".into(),
            Some(false) => "DIFFERS!".into(),
        });
        let mut notes = Vec::new();
        if Some(i) == fastest {
            notes.push("<- fastest".to_string());
        }
        if Some(i) == lowest {
            notes.push(if notes.is_empty() { "<- lowest energy" } else { "lowest energy" }.to_string());
        }
        if let Some(e) = p.status.error() {
            notes.push(format!("{}: {e}", p.status.name().replace('_', " ")));
        }
        row.push(notes.join(", "));
        rows.push(row);
    }

    let mut out = String::new();
    let model = args.model.display();
    let name = if graph.name.is_empty() { "(unnamed)" } else { graph.name.as_str() };
    let _ = writeln!(
        out,
        "systole sweep: model `{name}` ({model}) on config `{}` ({}) with {}, {} point{}",
        base.name,
        args.hw.display(),
        args.input.display(),
        total,
        if total == 1 { "" } else { "s" }
    );
    let set: Vec<String> = params
        .iter()
        .map(|p| format!("{} = {}", p.key, p.values.iter().map(|v| v.0.as_str()).collect::<Vec<_>>().join(", ")))
        .collect();
    let _ = writeln!(out, "swept         {}", set.join("; "));
    out.push('\n');
    out.push_str(&table("  ", &rows, &align));
    out.push('\n');
    let ok = points.iter().filter(|p| p.status.metrics().is_some()).count();
    let _ = writeln!(
        out,
        "{ok} of {total} point{} ran; time at each point's clock; energy and area from table `{}`",
        if total == 1 { "" } else { "s" },
        etable.name
    );
    let differ: Vec<String> =
        points.iter().enumerate().filter(|(_, p)| p.same_output == Some(false)).map(|(i, _)| i.to_string()).collect();
    if let Some(r) = reference_at {
        if differ.is_empty() {
            let _ = writeln!(out, "outputs       every point's output equals point {r}'s bit for bit");
        } else {
            let _ = writeln!(
                out,
                "WARNING       the output of point{} {} differs from point {r}'s: quantized results must not depend \
                 on the hardware configuration",
                if differ.len() == 1 { "" } else { "s" },
                differ.join(", ")
            );
        }
    }

    // Files.
    let mut files = Outputs::new();
    if let Some(path) = &args.json {
        let entries: Vec<Value> = points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut params_obj = Map::new();
                for (q, &c) in params.iter().zip(&p.choice) {
                    params_obj.insert(q.key.clone(), q.values[c].1.clone());
                }
                let m = p.status.metrics();
                json!({
                    "point": i,
                    "params": params_obj,
                    "status": p.status.name(),
                    "error": p.status.error(),
                    "cycles": m.map(|m| m.cycles),
                    "time_us": m.map(|m| m.time_us),
                    "macs": m.map(|m| m.macs),
                    "mac_utilization": m.map(|m| m.mac_utilization),
                    "dram_bytes": m.map(|m| m.dram_bytes),
                    "energy_pj": m.map(|m| m.energy_pj),
                    "energy_uj": m.map(|m| m.energy_pj / 1e6),
                    "energy_per_mac_pj": m.and_then(|m| m.energy_per_mac_pj),
                    "area_mm2": p.status.area(),
                    "output_identical": p.same_output,
                    "fastest": Some(i) == fastest,
                    "lowest_energy": Some(i) == lowest,
                })
            })
            .collect();
        let mut text = serde_json::to_string_pretty(&Value::Array(entries)).unwrap_or_default();
        text.push('\n');
        files.add(path, text.into_bytes());
    }
    if let Some(path) = &args.csv {
        let mut text = String::new();
        let mut head = vec!["point".to_string()];
        head.extend(params.iter().map(|p| p.key.clone()));
        head.extend(
            [
                "status",
                "cycles",
                "time_us",
                "macs",
                "mac_utilization",
                "dram_bytes",
                "energy_uj",
                "energy_per_mac_pj",
                "area_mm2",
                "output_identical",
                "fastest",
                "lowest_energy",
                "error",
            ]
            .map(String::from),
        );
        text.push_str(&head.iter().map(|h| csv_field(h)).collect::<Vec<_>>().join(","));
        text.push('\n');
        for (i, p) in points.iter().enumerate() {
            let m = p.status.metrics();
            let mut f = vec![i.to_string()];
            f.extend(params.iter().zip(&p.choice).map(|(q, &c)| value_text(&q.values[c].1)));
            f.push(p.status.name().to_string());
            f.push(m.map_or_else(String::new, |m| m.cycles.to_string()));
            f.push(m.map_or_else(String::new, |m| m.time_us.to_string()));
            f.push(m.map_or_else(String::new, |m| m.macs.to_string()));
            f.push(m.map_or_else(String::new, |m| m.mac_utilization.to_string()));
            f.push(m.map_or_else(String::new, |m| m.dram_bytes.to_string()));
            f.push(m.map_or_else(String::new, |m| (m.energy_pj / 1e6).to_string()));
            f.push(m.and_then(|m| m.energy_per_mac_pj).map_or_else(String::new, |v| v.to_string()));
            f.push(p.status.area().map_or_else(String::new, |a| a.to_string()));
            f.push(p.same_output.map_or_else(String::new, |b| b.to_string()));
            f.push((Some(i) == fastest).to_string());
            f.push((Some(i) == lowest).to_string());
            f.push(p.status.error().unwrap_or_default().to_string());
            text.push_str(&f.iter().map(|s| csv_field(s)).collect::<Vec<_>>().join(","));
            text.push('\n');
        }
        files.add(path, text.into_bytes());
    }
    files.commit()?;
    for (path, what) in [(&args.json, "json"), (&args.csv, "csv")] {
        if let Some(p) = path {
            let _ = writeln!(out, "wrote {what:<8}{}", p.display());
        }
    }
    print_stdout(&out)
}
