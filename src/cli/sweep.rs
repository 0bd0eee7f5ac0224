//! `systole sweep`: a design-space sweep (the engine is
//! `systole::flow::sweep`): reads the model, the base configuration and the
//! input, runs the sweep, and prints the points as a table and writes them
//! as JSON and CSV.

use super::compile::import;
use super::error::Result;
use super::files::{check_destinations, print_stdout, Outputs};
use super::load;
use super::npy;
use super::regress::RegressArgs;
use super::run::host_data;
use super::table::{cells, group, table, Align};
use clap::Args;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use systole::flow::regression::{self, Baseline};
use systole::flow::sweep::{self, SweepReport};

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
    /// Write the results as JSON (docs/schema/sweep.schema.json): the swept
    /// keys and one object per point.
    #[arg(long, value_name = "OUT.json")]
    pub json: Option<PathBuf>,
    /// Write the results as CSV: a header and one line per point.
    #[arg(long, value_name = "OUT.csv")]
    pub csv: Option<PathBuf>,
    /// Energy and area table (TOML) [default: the built-in 45 nm table].
    #[arg(long, value_name = "TABLE.toml")]
    pub energy_table: Option<PathBuf>,
    /// Regression baselines, per point (see `systole run --help`).
    #[command(flatten)]
    pub regress: RegressArgs,
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
    outs.extend(args.regress.destinations());
    check_destinations(outs)?;
    let base = load::config(&args.hw)?;
    let etable = load::energy_table(args.energy_table.as_deref())?;
    let (params, total) = sweep::params(&args.set, &base)?;
    let graph = import(&args.model)?;
    let array = npy::read(&args.input)?;
    let what = format!("--input {}", args.input.display());
    let subject = regression::sweep_subject(
        &graph,
        &base,
        &params,
        &args.input.display().to_string(),
        regression::sha256(&array.data),
    );
    let loaded = args.regress.load(regression::Command::Sweep, &subject)?;
    let data = host_data(array.elem, array.data, &what)?;
    let s = sweep::run(&graph, &base, params, &etable, (&array.shape, &data), &what)?;
    let (params, points) = (&s.params, &s.points);
    let (fastest, lowest, reference_at) = (s.fastest, s.lowest_energy, s.reference);

    // Text table.
    let mut header: Vec<String> = vec!["#".into()];
    header.extend(params.iter().map(|p| p.key.clone()));
    header.extend(cells(&[
        "cycles",
        "time µs",
        "MAC util",
        "DRAM bus B",
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
                row.push(group(m.dram_bus_bytes));
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
    let differ: Vec<String> = s.differing().iter().map(usize::to_string).collect();
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
        let report = SweepReport::new(&s, &args.model.display().to_string(), &base, &etable);
        files.add(path, report.to_json().into_bytes());
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
                "dram_bus_bytes",
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
            f.push(m.map_or_else(String::new, |m| m.dram_bus_bytes.to_string()));
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
    let current = Baseline::new(regression::Command::Sweep, subject, regression::sweep_entries(&s));
    let regressed = args.regress.finish(loaded, &current, &mut files, &mut out)?;
    files.commit()?;
    for (path, what) in [(&args.json, "json"), (&args.csv, "csv")] {
        if let Some(p) = path {
            let _ = writeln!(out, "wrote {what:<8}{}", p.display());
        }
    }
    for (path, what) in [(&args.regress.write_baseline, "baseline"), (&args.regress.junit, "junit")] {
        if let Some(p) = path {
            let _ = writeln!(out, "wrote {what:<9}{}", p.display());
        }
    }
    print_stdout(&out)?;
    regressed.map_or(Ok(()), Err)
}
