//! The report of a run: figures derived from the counters, the energy and
//! area model, printed as a readable text and as JSON.

use super::table::{cells, group, table, Align};
use isa::{Counter, Counters, HwConfig};
use serde_json::{json, Map, Value};
use sim::energy::EnergyReport;
use std::fmt::Write as _;

/// What a report is made of.
pub struct RunSummary<'a> {
    /// The program file, as named on the command line.
    pub program: &'a str,
    pub cfg: &'a HwConfig,
    pub outcome: &'a str,
    pub counters: &'a Counters,
    pub energy: &'a EnergyReport,
}

/// `part / whole`, 0 when `whole` is 0.
fn fraction(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        part / whole
    } else {
        0.0
    }
}

fn percent(f: f64) -> String {
    format!("{:.1}%", 100.0 * f)
}

/// Busy and stall counters of the units, in report order; the array and
/// the post-processor are parts of compute and have no stall counter.
const UNITS: [(&str, Counter, Option<Counter>); 5] = [
    ("load", Counter::LoadBusy, Some(Counter::LoadStall)),
    ("compute", Counter::ComputeBusy, Some(Counter::ComputeStall)),
    ("array", Counter::ArrayBusy, None),
    ("ppu", Counter::PpuBusy, None),
    ("store", Counter::StoreBusy, Some(Counter::StoreStall)),
];

/// Figures derived from the counters.
struct Derived {
    cycles: u64,
    time_us: f64,
    macs: u64,
    peak_macs: u64,
    mac_utilization: f64,
    dram_read: u64,
    dram_write: u64,
    bytes_per_cycle: f64,
    gb_per_s: f64,
    peak_gb_per_s: f64,
    energy_per_mac_pj: Option<f64>,
}

impl Derived {
    fn of(s: &RunSummary<'_>) -> Derived {
        let c = s.counters;
        let mhz = s.cfg.clock.mhz;
        let cycles = c.get(Counter::Cycles);
        let macs = c.get(Counter::Macs);
        let peak_macs = s.cfg.peak_macs_per_cycle();
        let dram_read = c.get(Counter::DramReadBytes);
        let dram_write = c.get(Counter::DramWriteBytes);
        let bytes_per_cycle = fraction((dram_read + dram_write) as f64, cycles as f64);
        Derived {
            cycles,
            time_us: cycles as f64 / mhz,
            macs,
            peak_macs,
            mac_utilization: fraction(macs as f64, cycles as f64 * peak_macs as f64),
            dram_read,
            dram_write,
            bytes_per_cycle,
            // bytes/cycle × cycles/s (mhz × 1e6) / 1e9.
            gb_per_s: bytes_per_cycle * mhz / 1e3,
            peak_gb_per_s: s.cfg.dram.bytes_per_cycle as f64 * mhz / 1e3,
            energy_per_mac_pj: (macs > 0).then(|| s.energy.total_pj / macs as f64),
        }
    }
}

/// Energy with a unit chosen for readability.
pub fn energy_text(pj: f64) -> String {
    let a = pj.abs();
    if a >= 1e9 {
        format!("{:.3} mJ", pj / 1e9)
    } else if a >= 1e6 {
        format!("{:.3} µJ", pj / 1e6)
    } else if a >= 1e3 {
        format!("{:.3} nJ", pj / 1e3)
    } else {
        format!("{pj:.3} pJ")
    }
}

/// The readable report.
pub fn text(s: &RunSummary<'_>) -> String {
    let d = Derived::of(s);
    let cfg = s.cfg;
    let e = s.energy;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "systole sim: {} on config `{}` ({}x{} array, {} MHz)",
        s.program, cfg.name, cfg.array.rows, cfg.array.cols, cfg.clock.mhz
    );
    let _ = writeln!(out, "outcome       {}", s.outcome);
    let _ = writeln!(out, "time          {} cycles = {:.3} µs at {} MHz", group(d.cycles), d.time_us, cfg.clock.mhz);
    let _ = writeln!(out, "instructions  {}", group(s.counters.get(Counter::Instructions)));
    out.push('\n');

    let mut rows = vec![cells(&["unit", "busy", "", "stall", ""])];
    for (name, busy, stall) in UNITS {
        let b = s.counters.get(busy);
        let label = if matches!(name, "array" | "ppu") { format!("  {name}") } else { name.to_string() };
        let (st, stp) = match stall {
            Some(c) => {
                let v = s.counters.get(c);
                (group(v), percent(fraction(v as f64, d.cycles as f64)))
            }
            None => ("-".to_string(), String::new()),
        };
        rows.push(vec![label, group(b), percent(fraction(b as f64, d.cycles as f64)), st, stp]);
    }
    out.push_str(&table("", &rows, &[Align::Left, Align::Right, Align::Right, Align::Right, Align::Right]));
    out.push('\n');

    let _ = writeln!(
        out,
        "MACs          {}, utilization {} of the {} MACs/cycle peak",
        group(d.macs),
        percent(d.mac_utilization),
        d.peak_macs
    );
    let _ = writeln!(
        out,
        "DRAM          {} B read, {} B written; {:.3} B/cycle = {:.3} GB/s (peak {} B/cycle = {:.3} GB/s)",
        group(d.dram_read),
        group(d.dram_write),
        d.bytes_per_cycle,
        d.gb_per_s,
        cfg.dram.bytes_per_cycle,
        d.peak_gb_per_s
    );
    let _ = writeln!(
        out,
        "scratchpad    {} row reads, {} row writes",
        group(s.counters.get(Counter::SpadReadRows)),
        group(s.counters.get(Counter::SpadWriteRows))
    );
    let _ = writeln!(
        out,
        "accumulator   {} row reads, {} row writes",
        group(s.counters.get(Counter::AccReadRows)),
        group(s.counters.get(Counter::AccWriteRows))
    );
    out.push('\n');

    let _ = writeln!(
        out,
        "energy        {:.6} µJ = {:.1} pJ (table `{}`, {} nm)",
        e.total_pj / 1e6,
        e.total_pj,
        e.table,
        cfg.tech.node_nm
    );
    match d.energy_per_mac_pj {
        Some(v) => {
            let _ = writeln!(out, "per MAC       {v:.3} pJ");
        }
        None => {
            let _ = writeln!(out, "per MAC       - (no MACs)");
        }
    }
    let mut rows = vec![cells(&["class", "energy", "share"])];
    for (class, pj) in &e.dynamic_pj {
        rows.push(vec![class.clone(), energy_text(*pj), percent(fraction(*pj, e.total_pj))]);
    }
    let dynamic = e.dynamic_total();
    rows.push(vec!["dynamic".into(), energy_text(dynamic), percent(fraction(dynamic, e.total_pj))]);
    rows.push(vec!["static".into(), energy_text(e.static_pj), percent(fraction(e.static_pj, e.total_pj))]);
    rows.push(vec!["total".into(), energy_text(e.total_pj), percent(fraction(e.total_pj, e.total_pj))]);
    out.push_str(&table("  ", &rows, &[Align::Left, Align::Right, Align::Right]));
    out.push('\n');

    let a = &e.area;
    let _ =
        writeln!(out, "area          {:.4} mm² (analytical, table `{}`, {} nm)", a.total, a.table, cfg.tech.node_nm);
    let mut rows = vec![cells(&["part", "mm²", "share"])];
    for (part, v) in area_parts(e) {
        rows.push(vec![part.to_string(), format!("{v:.4}"), percent(fraction(v, a.total))]);
    }
    out.push_str(&table("  ", &rows, &[Align::Left, Align::Right, Align::Right]));
    out
}

fn area_parts(e: &EnergyReport) -> [(&'static str, f64); 5] {
    let a = &e.area;
    [
        ("pe_array", a.pe_array),
        ("scratchpad", a.scratchpad),
        ("accumulator", a.accumulator),
        ("logic", a.logic),
        ("total", a.total),
    ]
}

/// The report as JSON.
pub fn json(s: &RunSummary<'_>) -> Value {
    let d = Derived::of(s);
    let e = s.energy;
    let c = s.counters;
    let mut config = serde_json::to_value(s.cfg).unwrap_or_else(|_| json!({ "name": s.cfg.name }));
    if let Value::Object(m) = &mut config {
        m.insert("fingerprint".into(), Value::from(format!("{:#018x}", s.cfg.fingerprint())));
    }
    let counters: Map<String, Value> = c.iter().map(|(k, v)| (k.name().to_string(), Value::from(v))).collect();
    let mut breakdown: Map<String, Value> =
        e.dynamic_pj.iter().map(|(class, pj)| (class.clone(), Value::from(*pj))).collect();
    breakdown.insert("static".into(), Value::from(e.static_pj));
    let area: Map<String, Value> = area_parts(e).iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect();
    let mut units = Map::new();
    for (name, busy, stall) in UNITS {
        let b = c.get(busy);
        let mut u = Map::new();
        u.insert("busy_cycles".into(), Value::from(b));
        u.insert("busy_fraction".into(), Value::from(fraction(b as f64, d.cycles as f64)));
        if let Some(st) = stall {
            let v = c.get(st);
            u.insert("stall_cycles".into(), Value::from(v));
            u.insert("stall_fraction".into(), Value::from(fraction(v as f64, d.cycles as f64)));
        }
        units.insert(name.into(), Value::Object(u));
    }
    json!({
        "program": s.program,
        "outcome": s.outcome,
        "config": config,
        "clock_mhz": s.cfg.clock.mhz,
        "total_cycles": d.cycles,
        "time_us": d.time_us,
        "instructions": c.get(Counter::Instructions),
        "units": units,
        "macs": d.macs,
        "peak_macs_per_cycle": d.peak_macs,
        "mac_utilization": d.mac_utilization,
        "dram_bytes": d.dram_read + d.dram_write,
        "dram_read_bytes": d.dram_read,
        "dram_write_bytes": d.dram_write,
        "dram_bytes_per_cycle": d.bytes_per_cycle,
        "dram_gb_per_s": d.gb_per_s,
        "energy_pj": e.total_pj,
        "energy_uj": e.total_pj / 1e6,
        "energy_dynamic_pj": e.dynamic_total(),
        "energy_static_pj": e.static_pj,
        "energy_per_mac_pj": d.energy_per_mac_pj,
        "energy_breakdown": breakdown,
        "energy_table": e.table,
        "area_mm2": area,
        "counters": counters,
    })
}
