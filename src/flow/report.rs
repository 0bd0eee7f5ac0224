//! The report of a run, as typed values: totals derived from the counters,
//! the units' busy and stall cycles, energy and area, per-inference
//! figures, and for a compiled model the per-layer figures. [`Report`]
//! serializes to the JSON that `docs/schema/report.schema.json` describes
//! (`schema_version` [`SCHEMA_VERSION`]); the command line prints the same
//! values as text.
//!
//! One meaning per key: `dram_bus_*` are what the DRAM bus carried (whole
//! beats, instruction fetch included: what the device counts), a layer's
//! `dram_data_bytes` the data its DMAs move; instruction ranges are
//! `[instr_first, instr_end_exclusive)`; a figure that does not exist is
//! `null`.

use isa::{Counter, Counters, HwConfig};
use serde::Serialize;
use sim::energy::EnergyReport;
use std::collections::BTreeMap;

/// The version of the report's JSON layout; bumped on any change of a
/// key's name or meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// `part / whole`, 0 when `whole` is 0.
pub fn fraction(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        part / whole
    } else {
        0.0
    }
}

/// Busy and stall counters of the units, in report order; the array, the
/// post-processor and the vector unit are parts of compute and have no
/// stall counter.
pub const UNITS: [(&str, Counter, Option<Counter>); 6] = [
    ("load", Counter::LoadBusy, Some(Counter::LoadStall)),
    ("compute", Counter::ComputeBusy, Some(Counter::ComputeStall)),
    ("array", Counter::ArrayBusy, None),
    ("ppu", Counter::PpuBusy, None),
    ("vector", Counter::VectorBusy, None),
    ("store", Counter::StoreBusy, Some(Counter::StoreStall)),
];

/// Figures of a whole run (or of a batch of runs), derived from the
/// counters and the energy model.
#[derive(Clone, Debug, Serialize)]
pub struct Totals {
    pub clock_mhz: f64,
    pub total_cycles: u64,
    pub time_us: f64,
    /// Instructions executed.
    pub instructions: u64,
    pub macs: u64,
    pub peak_macs_per_cycle: u64,
    pub mac_utilization: f64,
    pub dram_bus_bytes: u64,
    pub dram_bus_read_bytes: u64,
    pub dram_bus_write_bytes: u64,
    pub dram_bus_bytes_per_cycle: f64,
    pub dram_bus_gb_per_s: f64,
    pub dram_bus_peak_gb_per_s: f64,
    pub energy_pj: f64,
    pub energy_uj: f64,
    pub energy_dynamic_pj: f64,
    pub energy_static_pj: f64,
    /// Null without MACs.
    pub energy_per_mac_pj: Option<f64>,
}

impl Totals {
    pub fn of(cfg: &HwConfig, c: &Counters, energy: &EnergyReport) -> Totals {
        let mhz = cfg.clock.mhz;
        let cycles = c.get(Counter::Cycles);
        let macs = c.get(Counter::Macs);
        let peak = cfg.peak_macs_per_cycle();
        let (read, write) = (c.get(Counter::DramReadBytes), c.get(Counter::DramWriteBytes));
        let per_cycle = fraction((read + write) as f64, cycles as f64);
        Totals {
            clock_mhz: mhz,
            total_cycles: cycles,
            time_us: cycles as f64 / mhz,
            instructions: c.get(Counter::Instructions),
            macs,
            peak_macs_per_cycle: peak,
            mac_utilization: fraction(macs as f64, cycles as f64 * peak as f64),
            dram_bus_bytes: read + write,
            dram_bus_read_bytes: read,
            dram_bus_write_bytes: write,
            dram_bus_bytes_per_cycle: per_cycle,
            // bytes/cycle × cycles/s (mhz × 1e6) / 1e9.
            dram_bus_gb_per_s: per_cycle * mhz / 1e3,
            dram_bus_peak_gb_per_s: cfg.dram.bytes_per_cycle as f64 * mhz / 1e3,
            energy_pj: energy.total_pj,
            energy_uj: energy.total_pj / 1e6,
            energy_dynamic_pj: energy.dynamic_total(),
            energy_static_pj: energy.static_pj,
            energy_per_mac_pj: (macs > 0).then(|| energy.total_pj / macs as f64),
        }
    }
}

/// Per-inference figures of `inferences` runs of one model.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct PerInference {
    pub inferences: u64,
    pub cycles_mean: f64,
    pub cycles_min: u64,
    pub cycles_max: u64,
    /// Mean latency at the configured clock (of a run: a batched
    /// program's inferences finish together).
    pub latency_us: f64,
    /// Back-to-back inferences per second at the mean latency.
    pub inferences_per_s: f64,
    pub energy_uj: f64,
    /// 2 operations per MAC over the energy: (2 · MACs / s) / W = 2 · MACs
    /// / pJ. Null without energy.
    pub tops_per_w: Option<f64>,
}

impl PerInference {
    /// From the totals of the runs and each run's cycles.
    pub fn of(t: &Totals, per_run_cycles: &[u64]) -> PerInference {
        PerInference::of_batched(t, per_run_cycles, 1)
    }

    /// [`PerInference::of`] for a program that makes `per_run` inferences
    /// in each run (`compile --batch`): cycles (min and max rounded),
    /// energy and throughput per inference, a run's cycles shared by its
    /// `per_run` inferences; the latency is a run's (the batch's results
    /// come together).
    pub fn of_batched(t: &Totals, per_run_cycles: &[u64], per_run: u64) -> PerInference {
        let per_run = per_run.max(1);
        let n = per_run_cycles.len().max(1) as u64 * per_run;
        let mean = t.total_cycles as f64 / n as f64;
        // An inference's result is there when its run ends.
        let latency_us = mean * per_run as f64 / t.clock_mhz;
        let per = |c: u64| (c + per_run / 2) / per_run;
        PerInference {
            inferences: n,
            cycles_mean: mean,
            cycles_min: per(per_run_cycles.iter().copied().min().unwrap_or(t.total_cycles)),
            cycles_max: per(per_run_cycles.iter().copied().max().unwrap_or(t.total_cycles)),
            latency_us,
            inferences_per_s: if latency_us > 0.0 { 1e6 * per_run as f64 / latency_us } else { 0.0 },
            energy_uj: t.energy_uj / n as f64,
            tops_per_w: (t.energy_pj > 0.0).then(|| 2.0 * t.macs as f64 / t.energy_pj),
        }
    }
}

/// A unit's busy (and, for the queues, stall) cycles.
#[derive(Clone, Debug, Serialize)]
pub struct UnitFigures {
    pub busy_cycles: u64,
    pub busy_fraction: f64,
    /// Null for the array and the post-processor (parts of compute).
    pub stall_cycles: Option<u64>,
    pub stall_fraction: Option<f64>,
}

pub fn units(c: &Counters) -> BTreeMap<String, UnitFigures> {
    let cycles = c.get(Counter::Cycles) as f64;
    UNITS
        .iter()
        .map(|&(name, busy, stall)| {
            let b = c.get(busy);
            let s = stall.map(|s| c.get(s));
            let u = UnitFigures {
                busy_cycles: b,
                busy_fraction: fraction(b as f64, cycles),
                stall_cycles: s,
                stall_fraction: s.map(|s| fraction(s as f64, cycles)),
            };
            (name.to_string(), u)
        })
        .collect()
}

/// The analytical area, mm².
#[derive(Clone, Debug, Serialize)]
pub struct Area {
    pub pe_array: f64,
    pub scratchpad: f64,
    pub accumulator: f64,
    pub logic: f64,
    pub vector: f64,
    pub total: f64,
}

impl Area {
    pub fn of(e: &EnergyReport) -> Area {
        let a = &e.area;
        Area {
            pe_array: a.pe_array,
            scratchpad: a.scratchpad,
            accumulator: a.accumulator,
            logic: a.logic,
            vector: a.vector,
            total: a.total,
        }
    }

    /// `(part, mm²)` in report order, the total last.
    pub fn parts(&self) -> [(&'static str, f64); 6] {
        [
            ("pe_array", self.pe_array),
            ("scratchpad", self.scratchpad),
            ("accumulator", self.accumulator),
            ("logic", self.logic),
            ("vector", self.vector),
            ("total", self.total),
        ]
    }
}

/// Whether a layer's MACs or its DRAM data take longer at peak rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bound {
    Compute,
    Bandwidth,
}

impl Bound {
    pub fn name(self) -> &'static str {
        match self {
            Bound::Compute => "compute",
            Bound::Bandwidth => "bandwidth",
        }
    }
}

/// One layer's figures, summed over the runs (see [`super::layers`]).
#[derive(Clone, Debug, Serialize)]
pub struct LayerFigures {
    pub name: String,
    /// Null for the `(other)` row.
    pub op: Option<String>,
    /// The layer's instructions are `[instr_first, instr_end_exclusive)`;
    /// null when it has none (and for `(other)`).
    pub instr_first: Option<usize>,
    pub instr_end_exclusive: Option<usize>,
    pub cycles: u64,
    pub cycles_per_inference: f64,
    pub macs: u64,
    pub mac_utilization: f64,
    /// What its `load`s and `store`s move: rows x cols x element bytes.
    pub dram_data_bytes: u64,
    /// What the bus carried for it: whole beats, and instruction fetch.
    pub dram_bus_bytes: u64,
    pub weight_rows: u64,
    /// The bytes its weights take in the program's data (once, not per
    /// inference; 0 without packed weights).
    pub weight_bytes: u64,
    /// The format of its weights (`layers::reported_format`): `i8`, `i4`,
    /// `i8s24` (2:4-sparse) or `i8-mask` (a compressed stream); null when it
    /// loads none.
    pub weight_format: Option<&'static str>,
    /// Null when the layer has neither MACs nor DRAM data.
    pub bound: Option<Bound>,
    pub energy_pj: f64,
    /// For a layer on 2:4 tiles: what they saved against the same layer
    /// compiled dense (`compile --weights dense`), on the same inputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved_vs_dense: Option<Saved>,
}

/// What a layer's weight format saved against dense int8 tiles: the dense
/// figure minus this one (summed over the inferences; negative if it cost).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Saved {
    pub cycles: i64,
    pub dram_bus_bytes: i64,
    pub energy_pj: f64,
}

/// What `--check` found (it fails the command otherwise).
#[derive(Clone, Debug, Serialize)]
pub struct CheckSummary {
    pub passed: bool,
    pub layers: usize,
    pub views_skipped: usize,
    pub runs: u64,
}

/// A file and the tensor it holds.
#[derive(Clone, Debug, Serialize)]
pub struct TensorFile {
    pub file: String,
    pub tensor: String,
    pub shape: Vec<u64>,
}

/// What only `run` (a compiled model on inputs) reports.
#[derive(Clone, Debug, Serialize)]
pub struct ModelRun {
    pub input: TensorFile,
    pub output: TensorFile,
    pub layers: Vec<LayerFigures>,
    /// What no layer accounts for, so that layers + other = the totals.
    pub other: LayerFigures,
    pub layer_energy_attribution: &'static str,
    /// Null without `--check`.
    pub check: Option<CheckSummary>,
}

/// The whole report, as `--json` writes it.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub schema_version: u32,
    /// `sim` or `run`.
    pub command: &'static str,
    /// The program file, as named on the command line.
    pub program: String,
    /// `sim`, `rtl` or `both`.
    pub backend: &'static str,
    pub outcome: &'static str,
    /// The hardware configuration, with its fingerprint.
    pub config: serde_json::Value,
    #[serde(flatten)]
    pub totals: Totals,
    pub per_inference: PerInference,
    pub units: BTreeMap<String, UnitFigures>,
    /// Dynamic energy by class, and `static`, pJ.
    pub energy_breakdown: BTreeMap<String, f64>,
    pub energy_table: String,
    pub area_mm2: Area,
    /// Every performance counter, by name.
    pub counters: BTreeMap<String, u64>,
    /// Present for `run`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelRun>,
}

impl Report {
    /// The report of runs with these total `counters` (each run's cycles in
    /// `per_run_cycles`) on `cfg`, with `energy` from the energy model.
    pub fn new(
        command: &'static str,
        program: &str,
        backend: &'static str,
        cfg: &HwConfig,
        counters: &Counters,
        energy: &EnergyReport,
        per_run_cycles: &[u64],
    ) -> Report {
        let totals = Totals::of(cfg, counters, energy);
        let mut config = serde_json::to_value(cfg).unwrap_or_else(|_| serde_json::json!({ "name": cfg.name }));
        if let serde_json::Value::Object(m) = &mut config {
            m.insert("fingerprint".into(), format!("{:#018x}", cfg.fingerprint()).into());
        }
        let mut breakdown: BTreeMap<String, f64> = energy.dynamic_pj.iter().cloned().collect();
        breakdown.insert("static".into(), energy.static_pj);
        Report {
            schema_version: SCHEMA_VERSION,
            command,
            program: program.to_string(),
            backend,
            outcome: "done",
            config,
            per_inference: PerInference::of(&totals, per_run_cycles),
            totals,
            units: units(counters),
            energy_breakdown: breakdown,
            energy_table: energy.table.clone(),
            area_mm2: Area::of(energy),
            counters: counters.iter().map(|(c, v)| (c.name().to_string(), v)).collect(),
            model: None,
        }
    }

    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}
