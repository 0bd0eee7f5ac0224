//! The design-space sweep engine: one model and one input, a base
//! hardware configuration and lists of values for configuration keys; every
//! point of the lists' cartesian product is lowered, run once on the
//! cycle-accurate model through the driver, and measured (cycles, time,
//! MAC utilization, DRAM traffic, energy, area). The quantized output must
//! not depend on the hardware, so each point's output is compared with the
//! first one's.
//!
//! Keys are dotted paths into the configuration (`dram.latency_cycles`,
//! `tech.node_nm`, ...; `array` sets both `array.rows` and `array.cols`).
//! They are applied to the base configuration as a tree (all fields present,
//! defaults filled in), which is then deserialized and validated, so any
//! field can be swept and an invalid combination becomes a point with its
//! validation error rather than a failure of the whole sweep.
//! [`SweepReport`] is the JSON of `docs/schema/sweep.schema.json`.

use super::infer::{Batch, HostData, Inputs};
use super::report::PerInference;
use super::{FlowError, Result};
use compiler::ir::Graph;
use driver::Driver;
use isa::program::TensorRole;
use isa::{Counter, HwConfig};
use serde::Serialize;
use serde_json::{Map, Value};
use sim::energy::EnergyTable;

/// At most this many points per sweep.
pub const MAX_POINTS: usize = 256;

/// The version of the sweep JSON's layout.
pub const SCHEMA_VERSION: u32 = 1;

/// One swept key: the key as given, the configuration fields it sets, and
/// its values (as written, and as configuration values).
#[derive(Clone, Debug)]
pub struct Param {
    pub key: String,
    pub paths: Vec<Vec<String>>,
    pub values: Vec<(String, Value)>,
}

/// What happened at one point.
#[derive(Clone, Debug)]
pub enum Status {
    Ok(Metrics),
    /// The configuration does not deserialize or validate.
    Invalid(String),
    /// Valid, but the model does not compile for it (area still known).
    CompileError(String, f64),
    /// Compiled, but the run failed (area still known).
    RunError(String, f64),
}

impl Status {
    pub fn name(&self) -> &'static str {
        match self {
            Status::Ok(_) => "ok",
            Status::Invalid(_) => "invalid",
            Status::CompileError(..) => "compile_error",
            Status::RunError(..) => "run_error",
        }
    }

    pub fn error(&self) -> Option<&str> {
        match self {
            Status::Ok(_) => None,
            Status::Invalid(e) | Status::CompileError(e, _) | Status::RunError(e, _) => Some(e),
        }
    }

    pub fn metrics(&self) -> Option<&Metrics> {
        match self {
            Status::Ok(m) => Some(m),
            _ => None,
        }
    }

    pub fn area(&self) -> Option<f64> {
        match self {
            Status::Ok(m) => Some(m.area_mm2),
            Status::CompileError(_, a) | Status::RunError(_, a) => Some(*a),
            Status::Invalid(_) => None,
        }
    }
}

/// What one point measured (one inference).
#[derive(Clone, Debug)]
pub struct Metrics {
    pub cycles: u64,
    pub time_us: f64,
    pub macs: u64,
    pub mac_utilization: f64,
    pub dram_bus_bytes: u64,
    pub energy_pj: f64,
    pub energy_per_mac_pj: Option<f64>,
    pub area_mm2: f64,
    pub per_inference: PerInference,
    /// The quantized output and the float output's bits.
    pub output_q: Vec<i32>,
    pub output_bits: Vec<u32>,
}

/// One point of the sweep.
#[derive(Clone, Debug)]
pub struct Point {
    /// Index into each parameter's values.
    pub choice: Vec<usize>,
    pub status: Status,
    /// Output equal to the reference (the first run point's): None if not run.
    pub same_output: Option<bool>,
}

/// A whole sweep.
#[derive(Clone, Debug)]
pub struct Sweep {
    pub params: Vec<Param>,
    pub points: Vec<Point>,
    /// The point with the least time, and the one with the least energy.
    pub fastest: Option<usize>,
    pub lowest_energy: Option<usize>,
    /// The first point that ran: the others' outputs are compared with its.
    pub reference: Option<usize>,
}

impl Sweep {
    /// Points whose output differs from the reference's.
    pub fn differing(&self) -> Vec<usize> {
        self.points.iter().enumerate().filter(|(_, p)| p.same_output == Some(false)).map(|(i, _)| i).collect()
    }
}

/// The swept keys, each `KEY=V1,V2,...`, against the base configuration;
/// returns them and the number of points.
pub fn params(specs: &[String], base: &HwConfig) -> Result<(Vec<Param>, usize)> {
    let tree = config_tree(base)?;
    let mut params: Vec<Param> = Vec::new();
    for spec in specs {
        let p = parse_set(spec, &tree)?;
        for q in &params {
            if let Some(path) = p.paths.iter().find(|path| q.paths.contains(path)) {
                return Err(FlowError::input(format!(
                    "--set {}: `{}` is already set by --set {}",
                    p.key,
                    path.join("."),
                    q.key
                )));
            }
        }
        params.push(p);
    }
    let total = params.iter().try_fold(1usize, |n, p| n.checked_mul(p.values.len())).unwrap_or(usize::MAX);
    if total > MAX_POINTS {
        let sizes: Vec<String> = params.iter().map(|p| format!("{} ({})", p.values.len(), p.key)).collect();
        return Err(FlowError::input(format!(
            "the sweep has {} points ({}), more than the {MAX_POINTS} allowed; sweep fewer values",
            if total == usize::MAX { "too many".to_string() } else { total.to_string() },
            sizes.join(" x ")
        )));
    }
    Ok((params, total))
}

fn config_tree(base: &HwConfig) -> Result<Value> {
    serde_json::to_value(base).map_err(|e| FlowError::input(format!("config `{}`: {e}", base.name)))
}

/// Sweeps `graph` over the points of `params` around `base`, on the input
/// array (`shape`, `data`: one input of the model's, or a batch whose first
/// is run). `Err` is an error of the whole sweep (the input does not fit
/// the model); a point's own failure is its status.
pub fn run(
    graph: &Graph,
    base: &HwConfig,
    params: Vec<Param>,
    table: &EnergyTable,
    (shape, data): (&[u64], &HostData),
    what: &str,
) -> Result<Sweep> {
    let tree = config_tree(base)?;
    let total: usize = params.iter().map(|p| p.values.len()).product();
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
                Ok(()) => measure(graph, &cfg, table, (shape, data), what, &mut input)?,
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
    let lowest_energy = best(&points, |m| m.energy_pj);
    let reference = points.iter().position(|p| p.status.metrics().is_some());
    Ok(Sweep { params, points, fastest, lowest_energy, reference })
}

/// Lowers, runs and measures one valid configuration. `Err` is an error
/// of the whole sweep (the input does not fit the model).
fn measure(
    graph: &Graph,
    cfg: &HwConfig,
    table: &EnergyTable,
    (shape, data): (&[u64], &HostData),
    what: &str,
    input: &mut Option<Inputs>,
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
            FlowError::input(format!(
                "the compiled model has no input tensor in its tensor map ({what} cannot be placed)"
            ))
        })?;
        let batch = Batch::new(shape, data.clone(), t, what)?;
        *input = Some(match batch.inputs {
            Inputs::Float(v) => Inputs::Float(v[..batch.per_run].to_vec()),
            Inputs::Quant(v) => Inputs::Quant(v[..batch.per_run].to_vec()),
        });
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
        Inputs::Float(x) => drv.infer(prog, x),
        Inputs::Quant(q) => drv.infer_quantized(prog, q),
    };
    let inf = match inf {
        Ok(i) => i,
        Err(e) => {
            let layers = super::layers::from_program(prog);
            let e = super::infer::run_error(e, drv.device_mut(), prog, &layers, super::RunNumber { index: 0, of: 1 });
            return Ok(Status::RunError(format!("the run failed: {e}"), area));
        }
    };
    let c = &inf.report.counters;
    let energy = sim::energy::energy(cfg, c, table);
    let totals = super::report::Totals::of(cfg, c, &energy);
    Ok(Status::Ok(Metrics {
        cycles: totals.total_cycles,
        time_us: totals.time_us,
        macs: totals.macs,
        mac_utilization: totals.mac_utilization,
        dram_bus_bytes: totals.dram_bus_bytes,
        energy_pj: energy.total_pj,
        energy_per_mac_pj: totals.energy_per_mac_pj,
        area_mm2: energy.area.total,
        per_inference: PerInference::of(&totals, &[c.get(Counter::Cycles)]),
        output_q: inf.output_q,
        output_bits: inf.output.iter().map(|v| v.to_bits()).collect(),
    }))
}

/// One point as the JSON has it.
#[derive(Clone, Debug, Serialize)]
pub struct PointReport {
    /// Counted from 0, as the text table numbers the points.
    pub point: usize,
    pub params: Map<String, Value>,
    /// `ok`, `invalid`, `compile_error` or `run_error`.
    pub status: &'static str,
    pub error: Option<String>,
    pub cycles: Option<u64>,
    pub time_us: Option<f64>,
    pub macs: Option<u64>,
    pub mac_utilization: Option<f64>,
    pub dram_bus_bytes: Option<u64>,
    pub energy_pj: Option<f64>,
    pub energy_uj: Option<f64>,
    pub energy_per_mac_pj: Option<f64>,
    pub area_mm2: Option<f64>,
    pub per_inference: Option<PerInference>,
    pub output_identical: Option<bool>,
    pub fastest: bool,
    pub lowest_energy: bool,
}

/// The sweep as `sweep --json` writes it.
#[derive(Clone, Debug, Serialize)]
pub struct SweepReport {
    pub schema_version: u32,
    pub command: &'static str,
    pub model: String,
    pub base_config: String,
    pub energy_table: String,
    /// The swept keys and their values, in sweep order.
    pub swept: Vec<SweptKey>,
    pub points: Vec<PointReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SweptKey {
    pub key: String,
    pub values: Vec<Value>,
}

impl SweepReport {
    pub fn new(s: &Sweep, model: &str, base: &HwConfig, table: &EnergyTable) -> SweepReport {
        let points = s
            .points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let params = s.params.iter().zip(&p.choice).map(|(q, &c)| (q.key.clone(), q.values[c].1.clone()));
                let m = p.status.metrics();
                PointReport {
                    point: i,
                    params: params.collect(),
                    status: p.status.name(),
                    error: p.status.error().map(str::to_string),
                    cycles: m.map(|m| m.cycles),
                    time_us: m.map(|m| m.time_us),
                    macs: m.map(|m| m.macs),
                    mac_utilization: m.map(|m| m.mac_utilization),
                    dram_bus_bytes: m.map(|m| m.dram_bus_bytes),
                    energy_pj: m.map(|m| m.energy_pj),
                    energy_uj: m.map(|m| m.energy_pj / 1e6),
                    energy_per_mac_pj: m.and_then(|m| m.energy_per_mac_pj),
                    area_mm2: p.status.area(),
                    per_inference: m.map(|m| m.per_inference.clone()),
                    output_identical: p.same_output,
                    fastest: Some(i) == s.fastest,
                    lowest_energy: Some(i) == s.lowest_energy,
                }
            })
            .collect();
        SweepReport {
            schema_version: SCHEMA_VERSION,
            command: "sweep",
            model: model.to_string(),
            base_config: base.name.clone(),
            energy_table: table.name.clone(),
            swept: s
                .params
                .iter()
                .map(|p| SweptKey { key: p.key.clone(), values: p.values.iter().map(|v| v.1.clone()).collect() })
                .collect(),
            points,
        }
    }

    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
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
        return Err(FlowError::input(format!(
            "--set {key}: `{text}` is {}, but `{key}` takes {} (the base configuration has {base})",
            kind(&v),
            kind(base)
        )));
    }
    Ok(v)
}

/// Parses one `--set KEY=V1,V2,...` against the base configuration tree.
pub fn parse_set(spec: &str, base: &Value) -> Result<Param> {
    let (key, list) = spec.split_once('=').ok_or_else(|| {
        FlowError::input(format!("--set {spec}: expected KEY=V1,V2,... (e.g. --set dram.latency_cycles=50,100)"))
    })?;
    let key = key.trim();
    if key.is_empty() {
        return Err(FlowError::input(format!("--set {spec}: the key is empty (expected KEY=V1,V2,...)")));
    }
    let split = |k: &str| k.split('.').map(str::to_string).collect::<Vec<String>>();
    let paths = if key == "array" { vec![split("array.rows"), split("array.cols")] } else { vec![split(key)] };
    let mut bases = Vec::new();
    for path in &paths {
        let found = lookup(base, path).ok_or_else(|| {
            let mut keys = Vec::new();
            leaf_keys(base, "", &mut keys);
            FlowError::input(format!(
                "--set {spec}: unknown configuration key `{key}`; the keys are `array` (rows and cols together), {}",
                keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
            ))
        })?;
        if found.is_object() {
            let mut keys = Vec::new();
            leaf_keys(found, key, &mut keys);
            return Err(FlowError::input(format!(
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
            return Err(FlowError::input(format!("--set {spec}: an empty value in the list (expected KEY=V1,V2,...)")));
        }
        let v = parse_value(key, text, bases[0])?;
        for b in &bases[1..] {
            parse_value(key, text, b)?;
        }
        values.push((text.to_string(), v));
    }
    Ok(Param { key: key.to_string(), paths, values })
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
pub fn best(points: &[Point], key: impl Fn(&Metrics) -> f64) -> Option<usize> {
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
