//! `systole sweep`: a design-space sweep (the engine is
//! `systole::flow::sweep`): reads the model, the base configuration and the
//! input, runs the sweep (on every core, or one shard of it, resuming an
//! earlier run), and prints the points as a table and writes them as JSON
//! and CSV. [`write_outputs`] is shared with `systole merge`, so that the
//! merged shards print and write what the unsharded run does.

use super::compile::import;
use super::error::{CliError, Result};
use super::files::{check_destinations, print_stdout, read_input, write_atomic, InputKind, Outputs};
use super::load;
use super::progress::Progress;
use super::regress::{Loaded, RegressArgs};
use super::run::host_data;
use super::table::{cells, group, table, Align};
use clap::{Args, ValueEnum};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use systole::flow::regression::{self, Baseline, Subject};
use systole::flow::sweep::{self, AreaSource, Info, Job, Options, Shard, Sweep, SweepReport};

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
    /// Points measured at once [default: the cores available]. The results
    /// do not depend on it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub jobs: Option<u32>,
    /// Measure only shard I of N (0 <= I < N): the points whose number
    /// modulo N is I. `systole merge` joins the N shards' --json files into
    /// the unsharded sweep.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Keep the points the --json file already holds (of this sweep and
    /// shard) and measure the rest; the file is kept up to date as points
    /// finish, so a killed run resumes where it stopped.
    #[arg(long, requires = "json")]
    pub resume: bool,
    /// Where each point's area comes from (`rtl`: yosys synthesis as
    /// `systole area`, cached per configuration, --jobs at a time; needs
    /// yosys).
    #[arg(long, value_enum, default_value_t = AreaArg::Model)]
    pub area: AreaArg,
    /// Regression baselines, per point (see `systole run --help`).
    #[command(flatten)]
    pub regress: RegressArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AreaArg {
    /// The model's analytical estimate.
    Model,
    /// The RTL synthesized by yosys (as `systole area`).
    Rtl,
}

/// At most one checkpoint of a resumable run per this interval.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

pub(super) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The points the --json file of an earlier run holds, if it exists and
/// `--resume` is given; an error if it is not this sweep's and shard's.
fn resumed(args: &SweepArgs, info: &Info) -> Result<Vec<sweep::Point>> {
    let Some(path) = args.json.as_deref().filter(|p| args.resume && p.exists()) else {
        return Ok(Vec::new());
    };
    let what = format!("--resume: {}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| CliError::input(format!("{what}: {e}")))?;
    let before = Sweep::from_json(&text, &what).map_err(|e| {
        CliError::input(format!(
            "{e}; it is written whole or not at all, so something else changed it: remove it to start again"
        ))
    })?;
    if before.info.sweep_id != info.sweep_id {
        return Err(CliError::input(format!(
            "{what}: holds another sweep (sweep_id {} against {}: the model, the input, the base configuration, \
             the energy table, the area source or the swept values differ); remove it or write elsewhere",
            before.info.sweep_id, info.sweep_id
        )));
    }
    if before.info.shard != info.shard {
        let name = |s: Option<Shard>| s.map_or_else(|| "the whole sweep".to_string(), |s| format!("shard {s}"));
        return Err(CliError::input(format!(
            "{what}: holds {} of this sweep, not {} (a shard's points are those whose number modulo N is I)",
            name(before.info.shard),
            name(info.shard)
        )));
    }
    Ok(before.points)
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
    let shard = args.shard.as_deref().map(Shard::parse).transpose()?;
    let base = load::config(&args.hw)?;
    let etable = load::energy_table(args.energy_table.as_deref())?;
    let (params, total) = sweep::params(&args.set, &base)?;
    let graph = import(&args.model)?;
    let model_bytes = read_input(&args.model, InputKind::Onnx)?;
    let input_bytes = read_input(&args.input, InputKind::Npy)?;
    let array =
        compiler::npy::decode(&input_bytes).map_err(|e| CliError::input(format!("{}: {e}", args.input.display())))?;
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
    let area = match args.area {
        AreaArg::Model => AreaSource::Model,
        AreaArg::Rtl => AreaSource::Rtl,
    };
    let info = Info {
        model: args.model.display().to_string(),
        model_name: graph.name.clone(),
        hw: args.hw.display().to_string(),
        base_config: base.name.clone(),
        input: args.input.display().to_string(),
        energy_table: etable.name.clone(),
        area_source: area,
        sweep_id: sweep::sweep_id(&model_bytes, &input_bytes, &base, &etable, area, &params),
        points_total: total,
        shard,
    };
    let done = resumed(args, &info)?;
    let jobs = args.jobs.map_or_else(systole::flow::run::available_threads, |n| n as usize);
    let opts = Options { jobs, shard, area };
    let job = Job { graph: &graph, base: &base, table: &etable, shape: &array.shape, data: &data, what: &what };

    let mine = (0..total).filter(|&i| shard.is_none_or(|s| s.holds(i))).count();
    let progress = Progress::bar("systole sweep", (mine - done.len()) as u64, "points");
    let checkpoint = args.json.as_deref().filter(|_| args.resume);
    let mut last_checkpoint = Instant::now();
    let s = sweep::run(&job, info.clone(), params.clone(), &opts, done, &mut |points| {
        progress.inc(1);
        if let Some(path) = checkpoint.filter(|_| last_checkpoint.elapsed() >= CHECKPOINT_EVERY) {
            last_checkpoint = Instant::now();
            let so_far = Sweep::new(info.clone(), params.clone(), points.to_vec());
            // Best effort: the final write reports a destination that fails.
            let _ = write_atomic(path, SweepReport::new(&so_far).to_json().into_bytes());
        }
    });
    progress.finish("points measured");
    let regress = Regress { args: &args.regress, loaded, subject };
    write_outputs(&s?, args.json.as_deref(), args.csv.as_deref(), Some(regress))
}

/// A sweep's regression check against `--baseline` (and the files it writes).
pub struct Regress<'a> {
    args: &'a RegressArgs,
    loaded: Option<Loaded>,
    subject: Subject,
}

/// Prints the sweep's table and writes its --json and --csv files (and,
/// with `regress`, compares with the baseline and writes its files).
pub fn write_outputs(s: &Sweep, json: Option<&Path>, csv: Option<&Path>, regress: Option<Regress>) -> Result<()> {
    let mut out = text(s);
    let mut files = Outputs::new();
    if let Some(path) = json {
        files.add(path, SweepReport::new(s).to_json().into_bytes());
    }
    if let Some(path) = csv {
        files.add(path, csv_text(s).into_bytes());
    }
    let mut written = Vec::new();
    let mut regressed = None;
    if let Some(r) = regress {
        let current = Baseline::new(regression::Command::Sweep, r.subject, regression::sweep_entries(s));
        written = [(&r.args.write_baseline, "baseline"), (&r.args.junit, "junit")]
            .into_iter()
            .filter_map(|(p, what)| p.clone().map(|p| (p, what)))
            .collect();
        regressed = r.args.finish(r.loaded, &current, &mut files, &mut out)?;
    }
    files.commit()?;
    for (path, what) in [(json, "json"), (csv, "csv")] {
        if let Some(p) = path {
            let _ = writeln!(out, "wrote {what:<8}{}", p.display());
        }
    }
    for (p, what) in written {
        let _ = writeln!(out, "wrote {what:<9}{}", p.display());
    }
    print_stdout(&out)?;
    regressed.map_or(Ok(()), Err)
}

/// The sweep as a text table, with a header and a summary.
fn text(s: &Sweep) -> String {
    let (params, points, info) = (&s.params, &s.points, &s.info);
    let rtl = info.area_source == AreaSource::Rtl;
    let mut header: Vec<String> = vec!["#".into()];
    header.extend(params.iter().map(|p| p.key.clone()));
    header.extend(cells(&[
        "cycles",
        "time µs",
        "MAC util",
        "DRAM bus B",
        "energy µJ",
        "pJ/MAC",
        if rtl { "RTL area mm²" } else { "area mm²" },
        "Pareto",
        "output",
        "note",
    ]));
    let mut rows = vec![header];
    let mut align = vec![Align::Right];
    align.extend(params.iter().map(|_| Align::Right));
    align.extend([Align::Right; 7]);
    align.extend([Align::Left; 3]);
    let dash = || "-".to_string();
    for p in points {
        let i = p.index;
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
        row.push(if p.pareto { "*".into() } else { String::new() });
        row.push(match p.same_output {
            None => dash(),
            Some(_) if Some(i) == s.reference => "reference".into(),
            Some(true) => "same".into(),
            Some(false) => "DIFFERS!".into(),
        });
        let mut notes = Vec::new();
        if Some(i) == s.fastest {
            notes.push("<- fastest".to_string());
        }
        if Some(i) == s.lowest_energy {
            notes.push(if notes.is_empty() { "<- lowest energy" } else { "lowest energy" }.to_string());
        }
        if let Some(e) = p.status.error() {
            notes.push(format!("{}: {e}", p.status.name().replace('_', " ")));
        }
        row.push(notes.join(", "));
        rows.push(row);
    }

    let mut out = String::new();
    let name = if info.model_name.is_empty() { "(unnamed)" } else { info.model_name.as_str() };
    let total = info.points_total;
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let _ = writeln!(
        out,
        "systole sweep: model `{name}` ({}) on config `{}` ({}) with {}, {total} point{}{}",
        info.model,
        info.base_config,
        info.hw,
        info.input,
        plural(total),
        info.shard.map_or_else(String::new, |sh| format!(", shard {sh} ({} of them)", points.len()))
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
        "{ok} of {} point{} ran; time at each point's clock; energy and area from table `{}`{}",
        points.len(),
        plural(points.len()),
        info.energy_table,
        if rtl { ", area from the RTL synthesized by yosys" } else { "" }
    );
    if let Some(sh) = info.shard {
        let _ = writeln!(
            out,
            "{:<14}fastest, lowest energy, Pareto and the output reference compare this shard's points; \
             `systole merge` compares all",
            format!("shard {sh}")
        );
    }
    let front = points.iter().filter(|p| p.pareto).count();
    if front > 0 {
        let _ = writeln!(
            out,
            "Pareto        * marks the {front} point{} no other point beats in cycles, energy and area at once",
            plural(front)
        );
    }
    let differ: Vec<String> = s.differing().iter().map(usize::to_string).collect();
    if let Some(r) = s.reference {
        if differ.is_empty() {
            let _ = writeln!(out, "outputs       every point's output equals point {r}'s bit for bit");
        } else {
            let _ = writeln!(
                out,
                "WARNING       the output of point{} {} differs from point {r}'s: quantized results must not depend \
                 on the hardware configuration",
                plural(differ.len()),
                differ.join(", ")
            );
        }
    }
    out
}

/// The sweep as CSV: a header and one line per point.
fn csv_text(s: &Sweep) -> String {
    let mut text = String::new();
    let mut head = vec!["point".to_string()];
    head.extend(s.params.iter().map(|p| p.key.clone()));
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
            "pareto",
            "error",
        ]
        .map(String::from),
    );
    text.push_str(&head.iter().map(|h| csv_field(h)).collect::<Vec<_>>().join(","));
    text.push('\n');
    for p in &s.points {
        let m = p.status.metrics();
        let mut f = vec![p.index.to_string()];
        f.extend(s.params.iter().zip(&p.choice).map(|(q, &c)| q.values[c].0.clone()));
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
        f.push((Some(p.index) == s.fastest).to_string());
        f.push((Some(p.index) == s.lowest_energy).to_string());
        f.push(p.pareto.to_string());
        f.push(p.status.error().unwrap_or_default().to_string());
        text.push_str(&f.iter().map(|s| csv_field(s)).collect::<Vec<_>>().join(","));
        text.push('\n');
    }
    text
}
