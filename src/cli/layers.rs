//! The per-layer table of `systole run`: the figures of
//! `systole::flow::layers` (see there for how energy is attributed) as
//! text.

use super::report::{energy_text, percent};
use super::table::{cells, group, table, Align};
use isa::{Counter, Counters, HwConfig};
use sim::energy::EnergyReport;
use systole::flow::report::{fraction, LayerFigures};

/// The per-layer table, with the `(other)` and total rows.
pub fn text(
    rows: &[LayerFigures],
    other: &LayerFigures,
    cfg: &HwConfig,
    counters: &Counters,
    energy: &EnergyReport,
) -> String {
    let total_cycles = counters.get(Counter::Cycles);
    let mut t = vec![cells(&[
        "layer",
        "op",
        "instrs",
        "cycles",
        "share",
        "MACs",
        "util",
        "DRAM B",
        "bus B",
        "weights B",
        "bound",
        "energy",
        "share",
    ])];
    let dash = || "-".to_string();
    let row = |r: &LayerFigures| {
        vec![
            r.name.clone(),
            r.op.clone().unwrap_or_default(),
            match (r.instr_first, r.instr_end_exclusive) {
                (Some(a), Some(b)) => format!("{a}..{b}"),
                _ => dash(),
            },
            group(r.cycles),
            percent(fraction(r.cycles as f64, total_cycles as f64)),
            group(r.macs),
            percent(r.mac_utilization),
            group(r.dram_data_bytes),
            group(r.dram_bus_bytes),
            // 2:4 weights are stored raw (no packed bytes): their format only.
            match (r.weight_format, r.weight_bytes) {
                (Some(f), 0) if f != "i8" => f.to_string(),
                (Some(f), b) if b > 0 => format!("{} {f}", group(b)),
                _ => dash(),
            },
            r.bound.map_or_else(dash, |b| b.name().to_string()),
            energy_text(r.energy_pj),
            percent(fraction(r.energy_pj, energy.total_pj)),
        ]
    };
    t.extend(rows.iter().map(row));
    if other.cycles > 0 || other.macs > 0 || other.dram_bus_bytes > 0 || other.energy_pj.abs() > 1e-6 {
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
        group(rows.iter().map(|r| r.dram_data_bytes).sum()),
        group(total_bus),
        group(rows.iter().map(|r| r.weight_bytes).sum()),
        String::new(),
        energy_text(energy.total_pj),
        percent(1.0),
    ]);
    let (l, r) = (Align::Left, Align::Right);
    let mut align = vec![l, l, l, r, r, r, r, r, r, r, l, r, r];
    // With 2:4 layers: what each saved against the dense program.
    if rows.iter().any(|x| x.weight_format == Some("i8s24")) {
        let saved = |x: &LayerFigures, f: &dyn Fn(&systole::flow::report::Saved) -> String| {
            x.saved_vs_dense.as_ref().map_or_else(dash, f)
        };
        t[0].extend(cells(&["saved cycles", "saved bus B", "saved energy"]));
        for (row, x) in t[1..].iter_mut().zip(rows) {
            row.push(saved(x, &|s| signed(s.cycles)));
            row.push(saved(x, &|s| signed(s.dram_bus_bytes)));
            row.push(saved(x, &|s| energy_text(s.energy_pj)));
        }
        for row in t.iter_mut().skip(rows.len() + 1) {
            row.extend([String::new(), String::new(), String::new()]);
        }
        align.extend([r, r, r]);
    }
    table("  ", &t, &align)
}

fn signed(v: i64) -> String {
    if v < 0 {
        format!("-{}", group(v.unsigned_abs()))
    } else {
        group(v as u64)
    }
}
