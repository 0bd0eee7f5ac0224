//! The design-space sweep engine: one model and one input, a base
//! hardware configuration and lists of values for configuration keys; every
//! point of the lists' cartesian product is lowered, run once on the
//! cycle-accurate model through the driver, and measured (cycles, time,
//! MAC utilization, DRAM traffic, energy, area). The quantized output must
//! not depend on the hardware, so each point's output is compared with the
//! first one's (by a hash of its bits, so that points measured apart —
//! other shards, an earlier run — compare too).
//!
//! Keys are dotted paths into the configuration (`dram.latency_cycles`,
//! `tech.node_nm`, ...; `array` sets both `array.rows` and `array.cols`).
//! They are applied to the base configuration as a tree (all fields present,
//! defaults filled in), which is then deserialized and validated, so any
//! field can be swept and an invalid combination becomes a point with its
//! validation error rather than a failure of the whole sweep.
//!
//! Points are measured independently, on [`Options::jobs`] threads, and
//! everything that compares points (the reference output, fastest, lowest
//! energy, the Pareto front) is derived afterwards from the points alone
//! ([`Sweep::new`]), so the result does not depend on the thread count, and
//! the points of a sweep can be measured in shards ([`Shard`]: point `i`
//! belongs to shard `i mod N`), each written as a [`SweepReport`], and
//! joined ([`merge`]) into the sweep the unsharded run gives. The
//! [`SweepReport`] is the JSON of `docs/schema/sweep.schema.json`; it
//! reads back ([`Sweep::from_json`]) for merging and resuming.

use super::infer::{Batch, HostData, Inputs};
use super::report::PerInference;
use super::{FlowError, Result};
use compiler::ir::Graph;
use driver::Driver;
use isa::program::TensorRole;
use isa::{Counter, HwConfig};
use rtl::sources::{fnv1a64, FNV_START};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sim::energy::{AreaReport, EnergyTable};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

/// At most this many points per sweep.
pub const MAX_POINTS: usize = 256;

/// The version of the sweep JSON's layout.
pub const SCHEMA_VERSION: u32 = 1;

/// One swept key: the key as given, the configuration fields it sets, and
/// its values (as the table writes them, and as configuration values).
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
    /// FNV-1a (64 bits) of the quantized output's and the float output's
    /// bits ([`output_hash`]).
    pub output_hash: u64,
}

/// The hash by which points' outputs are compared: FNV-1a over the
/// quantized output (i32, little-endian), then the float output's bits.
pub fn output_hash(output_q: &[i32], output: &[f32]) -> u64 {
    let h = output_q.iter().fold(FNV_START, |h, v| fnv1a64(&v.to_le_bytes(), h));
    output.iter().fold(h, |h, v| fnv1a64(&v.to_bits().to_le_bytes(), h))
}

/// One point of the sweep.
#[derive(Clone, Debug)]
pub struct Point {
    /// The point's number in the whole sweep (mixed radix over the keys'
    /// values, the last key varying fastest).
    pub index: usize,
    /// Index into each parameter's values.
    pub choice: Vec<usize>,
    pub status: Status,
    /// Output equal to the reference (the first run point's): None if not run.
    pub same_output: Option<bool>,
    /// On the Pareto front over (cycles, energy, area) ([`pareto_front`]).
    pub pareto: bool,
}

/// Where a point's area comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AreaSource {
    /// The model's analytical estimate ([`sim::energy::area`]).
    Model,
    /// The RTL synthesized with yosys ([`rtl::area`], cached per
    /// configuration); its logic area also sets the leakage energy.
    Rtl,
}

impl AreaSource {
    pub fn name(self) -> &'static str {
        match self {
            AreaSource::Model => "model",
            AreaSource::Rtl => "rtl",
        }
    }
}

/// One of N shards of a sweep: the points `i` with `i mod of == index`.
/// Round-robin rather than in blocks, so that the shards of a sweep whose
/// costly points are together (a large array key varying slowest) share
/// them out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub of: usize,
}

impl Shard {
    /// Parses `I/N` (0 <= I < N).
    pub fn parse(text: &str) -> Result<Shard> {
        let bad =
            |why: &str| FlowError::input(format!("--shard {text}: {why} (expected I/N with 0 <= I < N, e.g. 0/4)"));
        let (i, n) = text.split_once('/').ok_or_else(|| bad("no `/`"))?;
        let index: usize = i.trim().parse().map_err(|_| bad("I is not a number"))?;
        let of: usize = n.trim().parse().map_err(|_| bad("N is not a number"))?;
        if of == 0 {
            return Err(bad("N must be at least 1"));
        }
        if index >= of {
            return Err(bad(&format!("I must be below N: the shards of {of} are numbered 0 to {}", of - 1)));
        }
        Ok(Shard { index, of })
    }

    pub fn holds(self, point: usize) -> bool {
        point % self.of == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.of)
    }
}

/// What a sweep is of, for its reports and to tell sweeps apart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Info {
    /// The model's path as given, and its graph's name.
    pub model: String,
    pub model_name: String,
    /// The base configuration's path as given, and its name.
    pub hw: String,
    pub base_config: String,
    /// The input's path as given.
    pub input: String,
    pub energy_table: String,
    pub area_source: AreaSource,
    /// [`sweep_id`]: equal for the shards (and runs) of one sweep.
    pub sweep_id: String,
    /// Points in the whole sweep.
    pub points_total: usize,
    /// The shard these points are, if not the whole sweep.
    pub shard: Option<Shard>,
}

/// What makes one sweep: FNV-1a (64 bits) of the model's and the input's
/// bytes, the base configuration, the energy table, the area source and the
/// swept keys and values. Shards and resumed runs must agree on it.
pub fn sweep_id(
    model: &[u8],
    input: &[u8],
    base: &HwConfig,
    table: &EnergyTable,
    area: AreaSource,
    params: &[Param],
) -> String {
    let mut h = fnv1a64(&SCHEMA_VERSION.to_le_bytes(), FNV_START);
    // Lengths first, so that the parts cannot run into each other.
    for part in [model, input] {
        h = fnv1a64(&(part.len() as u64).to_le_bytes(), h);
        h = fnv1a64(part, h);
    }
    let text = |v: serde_json::Result<String>| v.unwrap_or_default();
    for part in [text(serde_json::to_string(base)), text(serde_json::to_string(table)), area.name().to_string()] {
        h = fnv1a64(&(part.len() as u64).to_le_bytes(), h);
        h = fnv1a64(part.as_bytes(), h);
    }
    for p in params {
        let part = text(serde_json::to_string(&(&p.key, p.values.iter().map(|v| &v.1).collect::<Vec<_>>())));
        h = fnv1a64(&(part.len() as u64).to_le_bytes(), h);
        h = fnv1a64(part.as_bytes(), h);
    }
    format!("{h:016x}")
}

/// How to run a sweep.
#[derive(Clone, Debug)]
pub struct Options {
    /// Points measured at once (threads), at least 1.
    pub jobs: usize,
    /// Only this shard's points.
    pub shard: Option<Shard>,
    pub area: AreaSource,
}

/// A whole sweep, or the points of it one file holds (a shard, a run
/// stopped early).
#[derive(Clone, Debug)]
pub struct Sweep {
    pub info: Info,
    pub params: Vec<Param>,
    /// By index.
    pub points: Vec<Point>,
    /// The point (index) with the least time, and the one with the least
    /// energy, among these points.
    pub fastest: Option<usize>,
    pub lowest_energy: Option<usize>,
    /// The first point that ran: the others' outputs are compared with its.
    pub reference: Option<usize>,
}

impl Sweep {
    /// The sweep of these points: sorts them and derives what compares
    /// them (the reference output and who matches it, fastest, lowest
    /// energy, the Pareto front) from the points alone.
    pub fn new(info: Info, params: Vec<Param>, mut points: Vec<Point>) -> Sweep {
        points.sort_by_key(|p| p.index);
        let reference = points.iter().find_map(|p| Some((p.index, p.status.metrics()?.output_hash)));
        for p in &mut points {
            p.same_output = p.status.metrics().map(|m| reference.is_some_and(|(_, h)| h == m.output_hash));
        }
        let front = pareto_front(&points);
        for (p, on) in points.iter_mut().zip(front) {
            p.pareto = on;
        }
        let fastest = best(&points, |m| m.time_us).map(|k| points[k].index);
        let lowest_energy = best(&points, |m| m.energy_pj).map(|k| points[k].index);
        Sweep { info, params, points, fastest, lowest_energy, reference: reference.map(|r| r.0) }
    }

    /// Points whose output differs from the reference's.
    pub fn differing(&self) -> Vec<usize> {
        self.points.iter().filter(|p| p.same_output == Some(false)).map(|p| p.index).collect()
    }

    /// Reads a sweep back from its JSON ([`SweepReport::to_json`]); `what`
    /// names the file in errors. The points are checked against the
    /// swept keys and the shard, the comparisons derived again.
    pub fn from_json(text: &str, what: &str) -> Result<Sweep> {
        let bad = |why: String| FlowError::input(format!("{what}: not a systole sweep JSON: {why}"));
        let r: SweepReport = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        if r.schema_version != SCHEMA_VERSION || r.command != "sweep" {
            return Err(bad(format!(
                "schema_version {} of command `{}` (expected {SCHEMA_VERSION} of `sweep`)",
                r.schema_version, r.command
            )));
        }
        let params: Vec<Param> = r
            .swept
            .iter()
            .map(|k| Param {
                key: k.key.clone(),
                paths: key_paths(&k.key),
                values: k.values.iter().map(|v| (value_text(v), v.clone())).collect(),
            })
            .collect();
        let total = params.iter().try_fold(1usize, |n, p| n.checked_mul(p.values.len()));
        if params.is_empty() || total != Some(r.info.points_total) {
            return Err(bad(format!("points_total {} does not match the swept keys", r.info.points_total)));
        }
        let mut points: Vec<Point> = Vec::with_capacity(r.points.len());
        for q in r.points {
            let at = |why: String| bad(format!("point {}: {why}", q.point));
            if q.point >= r.info.points_total {
                return Err(at(format!("beyond the sweep's {} points", r.info.points_total)));
            }
            if let Some(s) = r.info.shard.filter(|s| !s.holds(q.point)) {
                return Err(at(format!("not a point of shard {s}")));
            }
            if points.iter().any(|p| p.index == q.point) {
                return Err(at("listed twice".into()));
            }
            let choice = choice(&params, q.point);
            let expected: Map<String, Value> =
                params.iter().zip(&choice).map(|(p, &c)| (p.key.clone(), p.values[c].1.clone())).collect();
            if q.params != expected {
                return Err(at(format!("its values {} are not point {}'s", Value::Object(q.params), q.point)));
            }
            let status = q.status().map_err(at)?;
            points.push(Point { index: q.point, choice, status, same_output: None, pareto: false });
        }
        Ok(Sweep::new(r.info, params, points))
    }
}

/// Point `index`'s value of each key (an index into its values): mixed
/// radix, the first key varying slowest.
pub fn choice(params: &[Param], index: usize) -> Vec<usize> {
    let mut choice = vec![0; params.len()];
    let mut rest = index;
    for (k, p) in params.iter().enumerate().rev() {
        choice[k] = rest % p.values.len();
        rest /= p.values.len();
    }
    choice
}

/// The Pareto front over (cycles, energy, area), all minimized, among the
/// points that ran ([`super::pareto::front`]). Points equal in all three
/// are all on it (or all off). Points that did not run are never on it.
pub fn pareto_front(points: &[Point]) -> Vec<bool> {
    let key = |p: &Point| p.status.metrics().map(|m| [m.cycles as f64, m.energy_pj, m.area_mm2]);
    super::pareto::front(&points.iter().map(key).collect::<Vec<_>>())
}

/// Joins the points of one sweep's files (shards, in any order) into the
/// whole sweep, as the unsharded run gives it. Refuses files of different
/// sweeps, a point in two files, and a point in none. `names` name the
/// files in errors.
pub fn merge(parts: Vec<Sweep>, names: &[String]) -> Result<Sweep> {
    let first = parts.first().ok_or_else(|| FlowError::input("merge: no sweep files given"))?;
    let info = Info { shard: None, ..first.info.clone() };
    let params = first.params.clone();
    let mut owner: BTreeMap<usize, usize> = BTreeMap::new();
    let mut points = Vec::new();
    for (k, part) in parts.into_iter().enumerate() {
        if part.info.sweep_id != info.sweep_id {
            return Err(FlowError::input(format!(
                "{} is of another sweep than {} (sweep_id {} against {}: the model, the input, the base \
                 configuration, the energy table, the area source or the swept values differ)",
                names[k], names[0], part.info.sweep_id, info.sweep_id
            )));
        }
        for p in part.points {
            if let Some(&j) = owner.get(&p.index) {
                return Err(FlowError::input(format!(
                    "point {} is in both {} and {}: merge takes each point from one file (the shards of one \
                     sweep, each once)",
                    p.index, names[j], names[k]
                )));
            }
            owner.insert(p.index, k);
            points.push(p);
        }
    }
    let missing: Vec<usize> = (0..info.points_total).filter(|i| !owner.contains_key(i)).collect();
    if !missing.is_empty() {
        let shown: Vec<String> = missing.iter().take(12).map(usize::to_string).collect();
        let more = if missing.len() > shown.len() {
            format!(" and {} more", missing.len() - shown.len())
        } else {
            String::new()
        };
        return Err(FlowError::input(format!(
            "{} of the sweep's {} points {} in none of the files: point{} {}{more} (a shard missing, or one \
             that stopped early: run it again with --resume)",
            missing.len(),
            info.points_total,
            if missing.len() == 1 { "is" } else { "are" },
            if missing.len() == 1 { "" } else { "s" },
            shown.join(", ")
        )));
    }
    Ok(Sweep::new(info, params, points))
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

/// What a sweep measures: the model, the base configuration and the input
/// array (`shape`, `data`: one input of the model's, or a batch whose first
/// is run; `what` names it in errors).
pub struct Job<'a> {
    pub graph: &'a Graph,
    pub base: &'a HwConfig,
    pub table: &'a EnergyTable,
    pub shape: &'a [u64],
    pub data: &'a HostData,
    pub what: &'a str,
}

/// Measures the points of `info.shard` (all without one) not in `done`
/// (points an earlier run measured), `opts.jobs` at a time, and returns the
/// sweep of these and `done`'s points. `on_point` is called on this thread
/// after each point, with the points so far (unsorted) — for progress and
/// checkpoints. `Err` is an error of the whole sweep (the input does not
/// fit the model, yosys is missing): the one of the lowest point.
pub fn run(
    job: &Job,
    info: Info,
    params: Vec<Param>,
    opts: &Options,
    done: Vec<Point>,
    on_point: &mut dyn FnMut(&[Point]),
) -> Result<Sweep> {
    if opts.area == AreaSource::Rtl {
        rtl::area::yosys_version(&job.base.name).map_err(|e| FlowError::input(format!("--area rtl: {e}")))?;
    }
    let tree = config_tree(job.base)?;
    let locks = SynthesisLocks::default();
    let todo: Vec<usize> = (0..info.points_total)
        .filter(|&i| opts.shard.is_none_or(|s| s.holds(i)) && !done.iter().any(|p| p.index == i))
        .collect();
    let mut points = done;
    let mut errors: Vec<(usize, FlowError)> = Vec::new();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.clamp(1, todo.len().max(1)) {
            let tx = tx.clone();
            let (next, stop, todo, tree, params, locks) = (&next, &stop, &todo, &tree, &params, &locks);
            s.spawn(move || {
                // Points are taken in order, and a whole-sweep error stops
                // the taking: every point below the first error is measured.
                while !stop.load(Ordering::Relaxed) {
                    let Some(&i) = todo.get(next.fetch_add(1, Ordering::Relaxed)) else { break };
                    let status = point(job, tree, params, i, (opts.area, locks));
                    if status.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    if tx.send((i, status)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (i, status) in rx {
            match status {
                Ok(status) => {
                    points.push(Point {
                        index: i,
                        choice: choice(&params, i),
                        status,
                        same_output: None,
                        pareto: false,
                    });
                    on_point(&points);
                }
                Err(e) => errors.push((i, e)),
            }
        }
    });
    if let Some((_, e)) = errors.into_iter().min_by_key(|(i, _)| *i) {
        return Err(e);
    }
    Ok(Sweep::new(info, params, points))
}

/// One lock per set of RTL parameters: points whose configurations build
/// the same RTL (they differ in DRAM latency, clock, technology...) wait for
/// one yosys run and then read its result from `rtl`'s cache, rather than
/// synthesizing it side by side.
#[derive(Default)]
struct SynthesisLocks(Mutex<BTreeMap<String, Arc<Mutex<()>>>>);

impl SynthesisLocks {
    fn of(&self, cfg: &HwConfig) -> Arc<Mutex<()>> {
        let key = format!("{:?}", rtl::sources::parameters(cfg));
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key).or_default().clone()
    }
}

/// Builds, validates and measures point `index`.
fn point(
    job: &Job,
    tree: &Value,
    params: &[Param],
    index: usize,
    area: (AreaSource, &SynthesisLocks),
) -> Result<Status> {
    let choice = choice(params, index);
    let mut v = tree.clone();
    for (p, &c) in params.iter().zip(&choice) {
        for path in &p.paths {
            *lookup_mut(&mut v, path).expect("checked when parsed") = p.values[c].1.clone();
        }
    }
    Ok(match serde_json::from_value::<HwConfig>(v) {
        Err(e) => Status::Invalid(
            culprit(tree, params, &choice, &e.to_string()).map_or_else(|| e.to_string(), |k| format!("{k}: {e}")),
        ),
        Ok(cfg) => match cfg.validate() {
            Err(e) => Status::Invalid(e.to_string()),
            Ok(()) => measure(job, &cfg, area)?,
        },
    })
}

/// The area of a valid configuration.
fn area_of(cfg: &HwConfig, table: &EnergyTable, (source, locks): (AreaSource, &SynthesisLocks)) -> Result<AreaReport> {
    match source {
        AreaSource::Model => Ok(sim::energy::area(cfg, table)),
        AreaSource::Rtl => {
            let lock = locks.of(cfg);
            let _one_at_a_time = lock.lock().unwrap_or_else(|e| e.into_inner());
            let opts = rtl::area::Options { fpga: None, cache: true };
            rtl::area::area(cfg, table, &opts, &mut |_| {})
                .map(|r| r.synthesized)
                .map_err(|e| FlowError::input(format!("--area rtl: {e}")))
        }
    }
}

/// Lowers, runs and measures one valid configuration. `Err` is an error
/// of the whole sweep (the input does not fit the model, synthesis failed).
fn measure(job: &Job, cfg: &HwConfig, source: (AreaSource, &SynthesisLocks)) -> Result<Status> {
    let area = area_of(cfg, job.table, source)?;
    let total_area = area.total;
    let lowered = match compiler::lower::lower(job.graph, cfg) {
        Ok(l) => l,
        Err(e) => return Ok(Status::CompileError(format!("cannot compile: {e}"), total_area)),
    };
    let prog = &lowered.program;
    if let Err(e) = prog.check_config(cfg) {
        return Ok(Status::CompileError(format!("the compiled program is invalid: {e}"), total_area));
    }
    let t = prog.tensors.iter().find(|t| t.role == TensorRole::Input).ok_or_else(|| {
        FlowError::input(format!(
            "the compiled model has no input tensor in its tensor map ({} cannot be placed)",
            job.what
        ))
    })?;
    let batch = Batch::new(job.shape, job.data.clone(), t, job.what)?;
    let model = match sim::Model::new(cfg) {
        Ok(m) => m,
        Err(e) => return Ok(Status::RunError(format!("cannot build the model: {e}"), total_area)),
    };
    let mut drv = Driver::new(model);
    if let Err(e) = drv.load(prog) {
        return Ok(Status::RunError(format!("cannot load: {e}"), total_area));
    }
    let inf = match &batch.inputs {
        Inputs::Float(x) => drv.infer(prog, &x[..batch.per_run]),
        Inputs::Quant(q) => drv.infer_quantized(prog, &q[..batch.per_run]),
    };
    let inf = match inf {
        Ok(i) => i,
        Err(e) => {
            let layers = super::layers::from_program(prog);
            let e = super::infer::run_error(e, drv.device_mut(), prog, &layers, super::RunNumber { index: 0, of: 1 });
            return Ok(Status::RunError(format!("the run failed: {e}"), total_area));
        }
    };
    let c = &inf.report.counters;
    let macs = sim::energy::MacFormats::of_program(prog, c);
    let energy = sim::energy::energy_with_area(cfg, &macs, c, job.table, area);
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
        output_hash: output_hash(&inf.output_q, &inf.output),
    }))
}

/// One point as the JSON has it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PointReport {
    /// Counted from 0, as the text table numbers the points.
    pub point: usize,
    pub params: Map<String, Value>,
    /// `ok`, `invalid`, `compile_error` or `run_error`.
    pub status: String,
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
    /// [`output_hash`], 16 hex digits.
    pub output_hash: Option<String>,
    pub output_identical: Option<bool>,
    pub fastest: bool,
    pub lowest_energy: bool,
    pub pareto: bool,
}

impl PointReport {
    /// The point's status back from its JSON.
    fn status(&self) -> std::result::Result<Status, String> {
        let error = || self.error.clone().ok_or_else(|| format!("status `{}` without an error", self.status));
        let area = || self.area_mm2.ok_or_else(|| format!("status `{}` without area_mm2", self.status));
        Ok(match self.status.as_str() {
            "ok" => {
                let need = |what: &str| format!("status `ok` without {what}");
                let hash = self.output_hash.as_deref().ok_or_else(|| need("output_hash"))?;
                Status::Ok(Metrics {
                    cycles: self.cycles.ok_or_else(|| need("cycles"))?,
                    time_us: self.time_us.ok_or_else(|| need("time_us"))?,
                    macs: self.macs.ok_or_else(|| need("macs"))?,
                    mac_utilization: self.mac_utilization.ok_or_else(|| need("mac_utilization"))?,
                    dram_bus_bytes: self.dram_bus_bytes.ok_or_else(|| need("dram_bus_bytes"))?,
                    energy_pj: self.energy_pj.ok_or_else(|| need("energy_pj"))?,
                    energy_per_mac_pj: self.energy_per_mac_pj,
                    area_mm2: area()?,
                    per_inference: self.per_inference.clone().ok_or_else(|| need("per_inference"))?,
                    output_hash: u64::from_str_radix(hash, 16)
                        .map_err(|_| format!("output_hash `{hash}` is not 16 hex digits"))?,
                })
            }
            "invalid" => Status::Invalid(error()?),
            "compile_error" => Status::CompileError(error()?, area()?),
            "run_error" => Status::RunError(error()?, area()?),
            other => return Err(format!("unknown status `{other}`")),
        })
    }
}

/// The sweep as `sweep --json` writes it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SweepReport {
    pub schema_version: u32,
    pub command: String,
    #[serde(flatten)]
    pub info: Info,
    /// The swept keys and their values, in sweep order.
    pub swept: Vec<SweptKey>,
    pub points: Vec<PointReport>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SweptKey {
    pub key: String,
    pub values: Vec<Value>,
}

impl SweepReport {
    pub fn new(s: &Sweep) -> SweepReport {
        let points = s
            .points
            .iter()
            .map(|p| {
                let params = s.params.iter().zip(&p.choice).map(|(q, &c)| (q.key.clone(), q.values[c].1.clone()));
                let m = p.status.metrics();
                PointReport {
                    point: p.index,
                    params: params.collect(),
                    status: p.status.name().to_string(),
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
                    output_hash: m.map(|m| format!("{:016x}", m.output_hash)),
                    output_identical: p.same_output,
                    fastest: Some(p.index) == s.fastest,
                    lowest_energy: Some(p.index) == s.lowest_energy,
                    pareto: p.pareto,
                }
            })
            .collect();
        SweepReport {
            schema_version: SCHEMA_VERSION,
            command: "sweep".to_string(),
            info: s.info.clone(),
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

/// A value as the table and the CSV write it: a list as `a+b` (as
/// `--set` takes it), a string unquoted.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(value_text).collect::<Vec<_>>().join("+"),
        other => other.to_string(),
    }
}

/// The configuration fields a key sets.
fn key_paths(key: &str) -> Vec<Vec<String>> {
    let split = |k: &str| k.split('.').map(str::to_string).collect::<Vec<String>>();
    if key == "array" {
        vec![split("array.rows"), split("array.cols")]
    } else {
        vec![split(key)]
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
    let paths = key_paths(key);
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
        values.push((value_text(&v), v));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A point that ran with these (cycles, energy pJ, area mm²), or did not.
    fn pt(index: usize, m: Option<(u64, f64, f64)>) -> Point {
        let status = match m {
            None => Status::Invalid("no".into()),
            Some((cycles, energy_pj, area_mm2)) => Status::Ok(Metrics {
                cycles,
                time_us: cycles as f64,
                macs: 1,
                mac_utilization: 0.5,
                dram_bus_bytes: 0,
                energy_pj,
                energy_per_mac_pj: None,
                area_mm2,
                per_inference: PerInference {
                    inferences: 1,
                    cycles_mean: cycles as f64,
                    cycles_min: cycles,
                    cycles_max: cycles,
                    latency_us: 1.0,
                    inferences_per_s: 1.0,
                    energy_uj: energy_pj / 1e6,
                    tops_per_w: None,
                },
                output_hash: 7,
            }),
        };
        Point { index, choice: vec![index], status, same_output: None, pareto: false }
    }

    #[test]
    fn pareto_front_by_hand() {
        let points = vec![
            pt(0, Some((100, 10.0, 1.0))), // on: nothing is as fast
            pt(1, Some((200, 5.0, 1.0))),  // on: the least energy
            pt(2, Some((300, 8.0, 0.5))),  // on: the least area
            pt(3, Some((200, 5.0, 1.0))),  // on: equal to 1 in all three, neither beats the other
            pt(4, Some((200, 6.0, 1.0))),  // off: 1 is as fast, as small, and uses less energy
            pt(5, None),                   // off: did not run
            pt(6, Some((100, 10.0, 1.5))), // off: 0 is equal but smaller
            pt(7, Some((400, 9.0, 0.5))),  // off: 2 beats it in cycles and energy, ties in area
            pt(8, Some((250, 4.0, 2.0))),  // on: the least energy of all
        ];
        let front = pareto_front(&points);
        assert_eq!(front, [true, true, true, true, false, false, false, false, true]);
        // One point alone is its own front; none that ran, none.
        assert_eq!(pareto_front(&[pt(0, Some((1, 1.0, 1.0)))]), [true]);
        assert_eq!(pareto_front(&[pt(0, None)]), [false]);
    }

    #[test]
    fn sweep_new_marks_the_front_and_the_best_whatever_the_order() {
        let a = vec![pt(2, Some((300, 8.0, 0.5))), pt(0, Some((100, 10.0, 1.0))), pt(1, Some((200, 12.0, 1.0)))];
        let info = Info {
            model: "m".into(),
            model_name: String::new(),
            hw: "h".into(),
            base_config: "b".into(),
            input: "x".into(),
            energy_table: "t".into(),
            area_source: AreaSource::Model,
            sweep_id: "0".into(),
            points_total: 3,
            shard: None,
        };
        let params = vec![Param { key: "k".into(), paths: key_paths("k"), values: vec![] }];
        let s = Sweep::new(info, params, a);
        assert_eq!(s.points.iter().map(|p| p.index).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(s.points.iter().map(|p| p.pareto).collect::<Vec<_>>(), [true, false, true]);
        assert_eq!((s.fastest, s.lowest_energy, s.reference), (Some(0), Some(2), Some(0)));
    }

    #[test]
    fn shards_parse_and_split_round_robin() {
        assert_eq!(Shard::parse("1/3").unwrap(), Shard { index: 1, of: 3 });
        for (bad, why) in [("3/3", "must be below N"), ("0/0", "at least 1"), ("1", "no `/`"), ("a/2", "I is not")] {
            let e = Shard::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains(bad), "{bad}: {e}");
        }
        let s = Shard { index: 1, of: 3 };
        assert_eq!((0..8).filter(|&i| s.holds(i)).collect::<Vec<_>>(), [1, 4, 7]);
    }
}
