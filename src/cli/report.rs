//! The report of a run as readable text: the totals of
//! `systole::flow::report` (the same figures `--json` writes).

use super::table::{cells, group, table, Align};
use isa::{Counter, Counters, HwConfig};
use sim::energy::EnergyReport;
use std::fmt::Write as _;
use systole::flow::report::{fraction, Area, Totals, UNITS};

/// What a report is made of.
pub struct RunSummary<'a> {
    /// The program file, as named on the command line.
    pub program: &'a str,
    pub cfg: &'a HwConfig,
    pub outcome: &'a str,
    pub counters: &'a Counters,
    pub energy: &'a EnergyReport,
}

pub fn percent(f: f64) -> String {
    format!("{:.1}%", 100.0 * f)
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
    let d = Totals::of(s.cfg, s.counters, s.energy);
    let cfg = s.cfg;
    let e = s.energy;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "systole sim: {} on config `{}` ({}x{} array, {} MHz)",
        s.program, cfg.name, cfg.array.rows, cfg.array.cols, cfg.clock.mhz
    );
    let _ = writeln!(out, "outcome       {}", s.outcome);
    let _ =
        writeln!(out, "time          {} cycles = {:.3} µs at {} MHz", group(d.total_cycles), d.time_us, cfg.clock.mhz);
    let _ = writeln!(out, "instructions  {}", group(s.counters.get(Counter::Instructions)));
    out.push('\n');

    let mut rows = vec![cells(&["unit", "busy", "", "stall", ""])];
    for (name, busy, stall) in UNITS {
        let b = s.counters.get(busy);
        let label = if matches!(name, "array" | "ppu" | "vector") { format!("  {name}") } else { name.to_string() };
        let (st, stp) = match stall {
            Some(c) => {
                let v = s.counters.get(c);
                (group(v), percent(fraction(v as f64, d.total_cycles as f64)))
            }
            None => ("-".to_string(), String::new()),
        };
        rows.push(vec![label, group(b), percent(fraction(b as f64, d.total_cycles as f64)), st, stp]);
    }
    out.push_str(&table("", &rows, &[Align::Left, Align::Right, Align::Right, Align::Right, Align::Right]));
    out.push('\n');

    let _ = writeln!(
        out,
        "MACs          {}, utilization {} of the {} MACs/cycle peak",
        group(d.macs),
        percent(d.mac_utilization),
        d.peak_macs_per_cycle
    );
    let _ = writeln!(
        out,
        "DRAM          {} B read, {} B written; {:.3} B/cycle = {:.3} GB/s (peak {} B/cycle = {:.3} GB/s)",
        group(d.dram_bus_read_bytes),
        group(d.dram_bus_write_bytes),
        d.dram_bus_bytes_per_cycle,
        d.dram_bus_gb_per_s,
        cfg.dram.bytes_per_cycle,
        d.dram_bus_peak_gb_per_s
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
    for (part, v) in Area::of(e).parts() {
        rows.push(vec![part.to_string(), format!("{v:.4}"), percent(fraction(v, a.total))]);
    }
    out.push_str(&table("  ", &rows, &[Align::Left, Align::Right, Align::Right]));
    out
}
