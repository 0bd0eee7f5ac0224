//! Per-layer facts of a compiled model: the `layers` entry of a program's
//! meta (written by the compiler), what the program's code says about each
//! layer (DRAM traffic, weight rows), and the per-layer report of a run:
//! cycles from the instruction trace, MAC utilization, DRAM bytes, whether
//! the layer is compute- or bandwidth-bound, and an attribution of the
//! measured energy.
//!
//! # Energy attribution
//!
//! The energy model charges a whole run (counters in, energy out); it has
//! no per-layer counters. The per-layer energy is therefore an
//! *attribution* of the measured total, class by class:
//! - `mac` and `pe_registers` by the layer's share of the MACs;
//! - `weight_load` by its share of the weight rows loaded into the array
//!   (the `k` of its `ldw` and preloading `matmul` instructions);
//! - `dram` by its share of the DRAM bus bytes, as the device counts them:
//!   its `load`s and `store`s in whole beats of `dram.bytes_per_cycle`,
//!   plus fetching its instructions;
//! - everything else (scratchpad and accumulator accesses, the
//!   post-processor, static leakage) by its share of the cycles.
//!
//! What no layer accounts for (cycles outside every layer's instruction
//! range, fetching the final `finish`) is reported as `(other)`, so the
//! column adds up to the measured total.
//!
//! The `DRAM B` column is the layer's data, rows x cols x element bytes of
//! its `load`s and `store`s; the `bus B` column what the bus carried for it
//! (the data rounded out to whole beats, plus instruction fetch), which is
//! what the device's counters and the energy model count. A layer is
//! compute-bound when its MACs at peak rate (MACs / (rows x cols)) take at
//! least as long as its data at peak bandwidth (DRAM B / bytes_per_cycle),
//! bandwidth-bound otherwise.

use super::error::Result;
use super::report::energy_text;
use super::table::{cells, group, table, Align};
use isa::instr::{Instr, BUF_ACC, INSTR_BYTES};
use isa::legal::DmaBlock;
use isa::program::Program;
use isa::{Counter, Counters, HwConfig, InstrTrace};
use serde_json::{json, Map, Value};
use sim::dma::BurstPlan;
use sim::energy::EnergyReport;

/// How the per-layer energy is attributed (for the report and the JSON).
pub const ATTRIBUTION: &str = "an attribution of the measured total: mac and pe_registers energy by the layer's \
     share of the MACs, weight_load by its share of the weight rows, dram by its share of the DRAM bus bytes, \
     the rest (scratchpad, accumulator, ppu, static) by its share of the cycles";

/// Energy classes attributed by MACs and by weight rows; `dram` by bytes;
/// every other class (and static energy) by cycles.
const BY_MACS: [&str; 2] = ["mac", "pe_registers"];
const BY_WEIGHT_ROWS: &str = "weight_load";
const BY_BYTES: &str = "dram";

/// One of the program's per-layer records, as the compiler wrote it.
pub use isa::program::LayerMeta;

/// The program's per-layer facts (none for a program from `systole asm`);
/// `Program::from_bytes` checked them against the code and the window.
pub fn from_meta(prog: &Program, _prog_name: &str) -> Result<Vec<LayerMeta>> {
    Ok(prog.meta.layers.clone())
}

/// The layer an instruction belongs to.
pub fn layer_of(layers: &[LayerMeta], pc: usize) -> Option<&LayerMeta> {
    layers.iter().find(|l| (l.first..l.last).contains(&pc))
}

/// What the code says about a layer: the data bytes its `load`s and
/// `store`s move (rows x cols x element bytes); the bytes the DRAM bus
/// carries for it, as the device counts them (its DMAs in whole beats of
/// `dram.bytes_per_cycle`, plus fetching its instructions); and the weight
/// rows loaded into the array (its `ldw`s and preloading `matmul`s).
#[derive(Clone, Copy, Debug, Default)]
pub struct CodeFacts {
    pub dram_bytes: u64,
    pub bus_bytes: u64,
    pub weight_rows: u64,
}

pub fn code_facts(prog: &Program, l: &LayerMeta, cfg: &HwConfig) -> CodeFacts {
    let mut f = CodeFacts::default();
    let elem = |buf: u8| if buf == BUF_ACC { 4 } else { 1 };
    let w = cfg.dram.bytes_per_cycle as u64;
    let beats = |b: &DmaBlock| BurstPlan::of(b, w).total_beats() * w;
    f.bus_bytes = ((l.last - l.first) * INSTR_BYTES) as u64;
    for i in &prog.code[l.first..l.last] {
        match i {
            Instr::Load(x) => {
                f.dram_bytes += x.rows as u64 * x.cols as u64 * elem(x.buf);
                f.bus_bytes += beats(&DmaBlock::of_load(x));
            }
            Instr::Store(x) => {
                f.dram_bytes += x.rows as u64 * x.cols as u64 * elem(x.buf);
                f.bus_bytes += beats(&DmaBlock::of_store(x));
            }
            Instr::Ldw(x) => f.weight_rows += x.k as u64,
            Instr::Matmul(x) if x.preload != 0 => f.weight_rows += x.k as u64,
            _ => {}
        }
    }
    f
}

/// Cycles a layer took in one run: from the first start to the last finish
/// of its instructions.
pub fn layer_cycles(trace: &[InstrTrace], l: &LayerMeta) -> u64 {
    let mut span: Option<(u64, u64)> = None;
    for t in trace.iter().filter(|t| (l.first..l.last).contains(&(t.index as usize))) {
        span = Some(match span {
            None => (t.start, t.finish),
            Some((s, f)) => (s.min(t.start), f.max(t.finish)),
        });
    }
    span.map_or(0, |(s, f)| f.saturating_sub(s))
}

/// One row of the per-layer report; every figure summed over the runs.
#[derive(Clone, Debug)]
pub struct LayerRow {
    pub name: String,
    pub op: String,
    pub instructions: Option<(usize, usize)>,
    pub cycles: u64,
    pub macs: u64,
    pub mac_utilization: f64,
    pub dram_bytes: u64,
    /// DRAM bus bytes as the device counts them (see [`CodeFacts`]).
    pub bus_bytes: u64,
    pub weight_rows: u64,
    /// "compute", "bandwidth" or "-" (neither MACs nor DRAM traffic).
    pub bound: &'static str,
    pub energy_pj: f64,
}

fn fraction(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        part / whole
    } else {
        0.0
    }
}

/// Whether a layer's MACs or its DRAM traffic take longer at peak rate.
fn bound(cfg: &HwConfig, macs: u64, bytes: u64) -> &'static str {
    if macs == 0 && bytes == 0 {
        return "-";
    }
    let compute = macs as f64 / cfg.peak_macs_per_cycle() as f64;
    let transfer = bytes as f64 / cfg.dram.bytes_per_cycle as f64;
    if compute >= transfer {
        "compute"
    } else {
        "bandwidth"
    }
}

/// The per-layer report of `runs` runs: `cycles[k]` is layer `k`'s cycles
/// summed over the runs, `counters` and `energy` the runs' totals. Returns
/// the layers' rows and the `(other)` row (what no layer accounts for).
pub fn rows(
    prog: &Program,
    layers: &[LayerMeta],
    cycles: &[u64],
    runs: u64,
    cfg: &HwConfig,
    counters: &Counters,
    energy: &EnergyReport,
) -> (Vec<LayerRow>, LayerRow) {
    let total_cycles = counters.get(Counter::Cycles) as f64;
    let total_macs = counters.get(Counter::Macs) as f64;
    let total_bytes = (counters.get(Counter::DramReadBytes) + counters.get(Counter::DramWriteBytes)) as f64;
    let total_wrows = counters.get(Counter::WeightRows) as f64;
    // Energy pools by what they are attributed by.
    let mut by_macs = 0.0;
    let mut by_wrows = 0.0;
    let mut by_bytes = 0.0;
    let mut by_cycles = energy.static_pj;
    for (class, pj) in &energy.dynamic_pj {
        match class.as_str() {
            c if BY_MACS.contains(&c) => by_macs += pj,
            BY_WEIGHT_ROWS => by_wrows += pj,
            BY_BYTES => by_bytes += pj,
            _ => by_cycles += pj,
        }
    }
    let peak = cfg.peak_macs_per_cycle() as f64;
    let mut out = Vec::with_capacity(layers.len());
    for (l, &cyc) in layers.iter().zip(cycles) {
        let facts = code_facts(prog, l, cfg);
        let macs = l.macs * runs;
        let bytes = facts.dram_bytes * runs;
        let bus = facts.bus_bytes * runs;
        let wrows = facts.weight_rows * runs;
        let energy_pj = by_macs * fraction(macs as f64, total_macs)
            + by_wrows * fraction(wrows as f64, total_wrows)
            + by_bytes * fraction(bus as f64, total_bytes)
            + by_cycles * fraction(cyc as f64, total_cycles);
        out.push(LayerRow {
            name: l.name.clone(),
            op: l.op.to_string(),
            instructions: (l.first < l.last).then_some((l.first, l.last)),
            cycles: cyc,
            macs,
            mac_utilization: fraction(macs as f64, cyc as f64 * peak),
            dram_bytes: bytes,
            bus_bytes: bus,
            weight_rows: wrows,
            bound: bound(cfg, l.macs, facts.dram_bytes),
            energy_pj,
        });
    }
    let sum = |f: fn(&LayerRow) -> u64| out.iter().map(f).sum::<u64>();
    let (cyc, macs, bus, wrows) = (sum(|r| r.cycles), sum(|r| r.macs), sum(|r| r.bus_bytes), sum(|r| r.weight_rows));
    let other_cycles = counters.get(Counter::Cycles).saturating_sub(cyc);
    let other_macs = counters.get(Counter::Macs).saturating_sub(macs);
    let other_bus = (total_bytes as u64).saturating_sub(bus);
    let other = LayerRow {
        name: "(other)".into(),
        op: String::new(),
        instructions: None,
        cycles: other_cycles,
        macs: other_macs,
        mac_utilization: fraction(other_macs as f64, other_cycles as f64 * peak),
        dram_bytes: 0,
        bus_bytes: other_bus,
        weight_rows: (total_wrows as u64).saturating_sub(wrows),
        bound: "-",
        energy_pj: energy.total_pj - out.iter().map(|r| r.energy_pj).sum::<f64>(),
    };
    (out, other)
}

fn percent(f: f64) -> String {
    format!("{:.1}%", 100.0 * f)
}

/// The per-layer table, with the `(other)` and total rows.
pub fn text(rows: &[LayerRow], other: &LayerRow, cfg: &HwConfig, counters: &Counters, energy: &EnergyReport) -> String {
    let total_cycles = counters.get(Counter::Cycles);
    let mut t = vec![cells(&[
        "layer", "op", "instrs", "cycles", "share", "MACs", "util", "DRAM B", "bus B", "bound", "energy", "share",
    ])];
    let row = |r: &LayerRow| {
        vec![
            r.name.clone(),
            r.op.clone(),
            r.instructions.map_or_else(|| "-".to_string(), |(a, b)| format!("{a}..{b}")),
            group(r.cycles),
            percent(fraction(r.cycles as f64, total_cycles as f64)),
            group(r.macs),
            percent(r.mac_utilization),
            group(r.dram_bytes),
            group(r.bus_bytes),
            r.bound.to_string(),
            energy_text(r.energy_pj),
            percent(fraction(r.energy_pj, energy.total_pj)),
        ]
    };
    t.extend(rows.iter().map(row));
    if other.cycles > 0 || other.macs > 0 || other.bus_bytes > 0 || other.energy_pj.abs() > 1e-6 {
        t.push(row(other));
    }
    let total_macs = counters.get(Counter::Macs);
    let total_bus = counters.get(Counter::DramReadBytes) + counters.get(Counter::DramWriteBytes);
    t.push(vec![
        "total".into(),
        String::new(),
        String::new(),
        group(total_cycles),
        percent(1.0),
        group(total_macs),
        percent(fraction(total_macs as f64, total_cycles as f64 * cfg.peak_macs_per_cycle() as f64)),
        group(rows.iter().map(|r| r.dram_bytes).sum()),
        group(total_bus),
        String::new(),
        energy_text(energy.total_pj),
        percent(1.0),
    ]);
    let (l, r) = (Align::Left, Align::Right);
    table("  ", &t, &[l, l, l, r, r, r, r, r, r, l, r, r])
}

/// The per-layer rows as JSON objects, and the `(other)` row.
pub fn json(rows: &[LayerRow], other: &LayerRow, runs: u64) -> (Vec<Value>, Value) {
    let one = |r: &LayerRow| {
        let mut m = Map::new();
        m.insert("name".into(), Value::from(r.name.clone()));
        m.insert("op".into(), Value::from(r.op.clone()));
        m.insert("instructions".into(), r.instructions.map_or(Value::Null, |(a, b)| json!({ "first": a, "last": b })));
        m.insert("cycles".into(), Value::from(r.cycles));
        m.insert("cycles_per_inference".into(), Value::from(fraction(r.cycles as f64, runs as f64)));
        m.insert("macs".into(), Value::from(r.macs));
        m.insert("mac_utilization".into(), Value::from(r.mac_utilization));
        m.insert("dram_bytes".into(), Value::from(r.dram_bytes));
        m.insert("dram_bus_bytes".into(), Value::from(r.bus_bytes));
        m.insert("weight_rows".into(), Value::from(r.weight_rows));
        m.insert("bound".into(), Value::from(r.bound));
        m.insert("energy_pj".into(), Value::from(r.energy_pj));
        Value::Object(m)
    };
    (rows.iter().map(one).collect(), one(other))
}
