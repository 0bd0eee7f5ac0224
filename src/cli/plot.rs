//! `systole plot`: draws a report as SVG with plotters (its SVG backend
//! only). A `run` report gives `layers.svg` (per-layer cycles and energy
//! bars) and `roofline.svg` (every layer with MACs at its operational
//! intensity and achieved MACs per cycle, under the configuration's compute
//! peak and DRAM bandwidth); a `sweep` report gives `pareto.svg` (cycles
//! against energy, area as colour, the Pareto-optimal points ringed).

use super::error::{CliError, Result};
use super::files::{check_destinations, print_stdout, read_input_text, InputKind, Outputs};
use clap::Args;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct PlotArgs {
    /// A report: `systole run --json` or `systole sweep --json`.
    #[arg(value_name = "REPORT.json")]
    pub report: PathBuf,
    /// Directory for the SVG files (it must exist).
    #[arg(short = 'o', long = "out", value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
}

/// The bars of per-layer cycles and of per-layer energy.
pub const CYCLES_COLOR: RGBColor = RGBColor(31, 119, 180);
pub const ENERGY_COLOR: RGBColor = RGBColor(255, 127, 14);

const FONT: &str = "sans-serif";

/// One layer of a run report.
struct Layer {
    name: String,
    cycles: f64,
    energy_nj: f64,
    macs: f64,
    dram_bytes: f64,
}

/// What a roofline needs of the configuration.
struct Roof {
    peak_macs_per_cycle: f64,
    dram_bytes_per_cycle: f64,
    clock_mhz: f64,
}

/// One point of a sweep report that ran.
struct Point {
    index: u64,
    cycles: f64,
    energy_uj: f64,
    area_mm2: f64,
    pareto: bool,
}

fn field<'a>(v: &'a Value, key: &str, file: &str, at: &str) -> Result<&'a Value> {
    v.get(key)
        .ok_or_else(|| CliError::input(format!("{file}: {at} has no `{key}`; is it a report of systole run or sweep?")))
}

fn number(v: &Value, key: &str, file: &str, at: &str) -> Result<f64> {
    field(v, key, file, at)?.as_f64().ok_or_else(|| {
        CliError::input(format!("{file}: {at}: `{key}` is {}, not a number", field(v, key, file, at).unwrap()))
    })
}

pub fn run(args: &PlotArgs) -> Result<()> {
    let file = args.report.display().to_string();
    if !args.out.is_dir() {
        return Err(CliError::input(format!("-o {}: not a directory", args.out.display())));
    }
    let text = read_input_text(&args.report, InputKind::Json)?;
    let report: Value =
        serde_json::from_str(&text).map_err(|e| CliError::input(format!("{file}: not a JSON report: {e}")))?;
    let command = report.get("command").and_then(Value::as_str).unwrap_or("");
    let mut svgs: Vec<(&str, String, String)> = Vec::new();
    match command {
        "run" => {
            let layers = run_layers(&report, &file)?;
            let cfg = field(&report, "config", &file, "the report")?;
            let dram = field(cfg, "dram", &file, "`config`")?;
            let roof = Roof {
                peak_macs_per_cycle: number(&report, "peak_macs_per_cycle", &file, "the report")?,
                dram_bytes_per_cycle: number(dram, "bytes_per_cycle", &file, "`config.dram`")?,
                clock_mhz: number(&report, "clock_mhz", &file, "the report")?,
            };
            let name = file_name(report.get("program").and_then(Value::as_str).unwrap_or(&file));
            let (bars, roofline) = (layer_bars(&name, &layers), roofline(&name, &layers, &roof));
            let fail = |what: &str, e: Box<dyn std::error::Error>| CliError::input(format!("cannot draw {what}: {e}"));
            svgs.push(("layers.svg", bars.map_err(|e| fail("the layer bars", e))?, format!("{} layers", layers.len())));
            let (svg, placed) = roofline.map_err(|e| fail("the roofline", e))?;
            svgs.push(("roofline.svg", svg, format!("{placed} of {} layers placed (the others have no MACs)", layers.len())));
        }
        "sweep" => {
            let points = sweep_points(&report, &file)?;
            let name = file_name(report.get("model").and_then(Value::as_str).unwrap_or(&file));
            let svg = pareto(&name, &points)
                .map_err(|e| CliError::input(format!("cannot draw the Pareto scatter: {e}")))?;
            let front = points.iter().filter(|p| p.pareto).count();
            svgs.push(("pareto.svg", svg, format!("{} points, {front} Pareto-optimal", points.len())));
        }
        "sim" => {
            return Err(CliError::input(format!(
                "{file}: a `systole sim` report has no layers or points to plot; plot a `run --json` or `sweep --json` report"
            )))
        }
        _ => {
            return Err(CliError::input(format!(
                "{file}: not a report of `systole run --json` or `systole sweep --json` (its `command` is {})",
                report.get("command").map_or_else(|| "missing".to_string(), Value::to_string)
            )))
        }
    }
    let paths: Vec<PathBuf> = svgs.iter().map(|(n, ..)| args.out.join(n)).collect();
    check_destinations(paths.iter().map(|p| (p.as_path(), "-o")))?;
    let mut files = Outputs::new();
    let mut out = String::new();
    for ((_, svg, what), path) in svgs.into_iter().zip(&paths) {
        files.add(path, svg.into_bytes());
        let _ = writeln!(out, "wrote {} ({what})", path.display());
    }
    files.commit()?;
    print_stdout(&out)
}

fn run_layers(report: &Value, file: &str) -> Result<Vec<Layer>> {
    let layers = field(report, "layers", file, "the run report")?
        .as_array()
        .ok_or_else(|| CliError::input(format!("{file}: `layers` is not a list")))?;
    if layers.is_empty() {
        return Err(CliError::input(format!("{file}: the report has no layers to plot (the program records none)")));
    }
    layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let at = format!("layers[{i}]");
            Ok(Layer {
                name: l.get("name").and_then(Value::as_str).unwrap_or("?").to_string(),
                cycles: number(l, "cycles", file, &at)?,
                energy_nj: number(l, "energy_pj", file, &at)? / 1e3,
                macs: number(l, "macs", file, &at)?,
                dram_bytes: number(l, "dram_data_bytes", file, &at)?,
            })
        })
        .collect()
}

/// The points that ran, with the report's `pareto` flag where it has one,
/// else the front over (cycles, energy, area) (`systole::flow::pareto`).
fn sweep_points(report: &Value, file: &str) -> Result<Vec<Point>> {
    let all = field(report, "points", file, "the sweep report")?
        .as_array()
        .ok_or_else(|| CliError::input(format!("{file}: `points` is not a list")))?;
    let mut points = Vec::new();
    for (i, p) in all.iter().enumerate() {
        if p.get("status").and_then(Value::as_str) != Some("ok") {
            continue;
        }
        let at = format!("points[{i}]");
        points.push(Point {
            index: p.get("point").and_then(Value::as_u64).unwrap_or(i as u64),
            cycles: number(p, "cycles", file, &at)?,
            energy_uj: number(p, "energy_uj", file, &at)?,
            area_mm2: number(p, "area_mm2", file, &at)?,
            pareto: p.get("pareto").and_then(Value::as_bool).unwrap_or(false),
        });
    }
    if points.is_empty() {
        return Err(CliError::input(format!("{file}: no point of the sweep ran; nothing to plot")));
    }
    let flagged = all.iter().any(|p| p.get("pareto").is_some());
    if !flagged {
        let objectives: Vec<Option<[f64; 3]>> =
            points.iter().map(|p| Some([p.cycles, p.energy_uj, p.area_mm2])).collect();
        for (p, on) in points.iter_mut().zip(systole::flow::pareto::front(&objectives)) {
            p.pareto = on;
        }
    }
    Ok(points)
}

/// Per-layer cycles (left) and energy (right) as horizontal bars, one row per layer.
fn layer_bars(name: &str, layers: &[Layer]) -> std::result::Result<String, Box<dyn std::error::Error>> {
    let n = layers.len();
    let height = (120 + 22 * n) as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1200, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let (left, right) = root.split_horizontally(600);
        let label = |v: &SegmentValue<usize>| match v {
            // The first layer on top.
            SegmentValue::CenterOf(i) if *i < n => short(&layers[n - 1 - i].name, 24),
            _ => String::new(),
        };
        type Bar<'a> = (&'a str, &'a str, RGBColor, fn(&Layer) -> f64);
        let panels: [(&DrawingArea<SVGBackend, plotters::coord::Shift>, Bar); 2] = [
            (&left, ("cycles per layer", "cycles", CYCLES_COLOR, |l| l.cycles)),
            (&right, ("energy per layer", "nJ", ENERGY_COLOR, |l| l.energy_nj)),
        ];
        for (area, (title, unit, color, value)) in panels {
            let max = layers.iter().map(value).fold(0.0, f64::max).max(1e-9) * 1.05;
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{title}: {}", short(name, 40)), (FONT, 16))
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(170)
                .build_cartesian_2d(0.0..max, (0..n).into_segmented())?;
            chart.configure_mesh().y_labels(n).y_label_formatter(&label).x_desc(unit).disable_y_mesh().draw()?;
            chart.draw_series(layers.iter().enumerate().map(|(k, l)| {
                let i = n - 1 - k;
                let mut bar = Rectangle::new(
                    [(0.0, SegmentValue::Exact(i)), (value(l), SegmentValue::Exact(i + 1))],
                    color.filled(),
                );
                bar.set_margin(3, 3, 0, 0);
                bar
            }))?;
        }
        root.present()?;
    }
    Ok(svg)
}

/// The last component of a path, as titles name a model.
fn file_name(path: &str) -> String {
    std::path::Path::new(path).file_name().map_or_else(|| path.to_string(), |n| n.to_string_lossy().into_owned())
}

/// A name cut to `max` characters (the end kept: layer names differ there).
fn short(name: &str, max: usize) -> String {
    let n = name.chars().count();
    if n <= max {
        name.to_string()
    } else {
        format!("…{}", name.chars().skip(n - max + 1).collect::<String>())
    }
}

/// The roofline in MACs per cycle against MACs per DRAM byte (log-log):
/// every layer with MACs is a point; returns the SVG and how many were placed.
fn roofline(
    name: &str,
    layers: &[Layer],
    roof: &Roof,
) -> std::result::Result<(String, usize), Box<dyn std::error::Error>> {
    // A layer without DRAM data sits at the right edge.
    let placed: Vec<(&Layer, f64, f64)> = layers
        .iter()
        .filter(|l| l.macs > 0.0 && l.cycles > 0.0)
        .map(|l| (l, if l.dram_bytes > 0.0 { l.macs / l.dram_bytes } else { f64::INFINITY }, l.macs / l.cycles))
        .collect();
    let ridge = roof.peak_macs_per_cycle / roof.dram_bytes_per_cycle.max(1e-9);
    let finite = placed.iter().map(|p| p.1).filter(|x| x.is_finite());
    let (lo, hi) = finite.fold((ridge, ridge), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let (x0, x1) = (lo / 4.0, hi * 4.0);
    let y_lo = placed.iter().map(|p| p.2).fold(roof.peak_macs_per_cycle, f64::min).min(x0 * roof.dram_bytes_per_cycle);
    let (y0, y1) = (y_lo / 2.0, roof.peak_macs_per_cycle * 2.0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 630)).into_drawing_area();
        root.fill(&WHITE)?;
        let (plot, note) = root.split_vertically(600);
        let mut chart = ChartBuilder::on(&plot)
            .caption(
                format!(
                    "roofline: {}, peak {} MAC/cycle = {:.3e} MAC/s, DRAM {} B/cycle = {:.1} GB/s",
                    short(name, 30),
                    roof.peak_macs_per_cycle,
                    roof.peak_macs_per_cycle * roof.clock_mhz * 1e6,
                    roof.dram_bytes_per_cycle,
                    roof.dram_bytes_per_cycle * roof.clock_mhz / 1e3
                ),
                (FONT, 15),
            )
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("operational intensity (MACs per DRAM data byte)")
            .y_desc("achieved MACs per cycle")
            .draw()?;
        // The roof: bandwidth-bound up to the ridge point, then the compute peak.
        let roof_line =
            [(x0, x0 * roof.dram_bytes_per_cycle), (ridge, roof.peak_macs_per_cycle), (x1, roof.peak_macs_per_cycle)];
        chart.draw_series(LineSeries::new(roof_line, BLACK.stroke_width(2)))?;
        for &(l, x, y) in &placed {
            let x = if x.is_finite() { x } else { x1 / 1.5 };
            let mark = EmptyElement::at((x, y))
                + Circle::new((0, 0), 5, CYCLES_COLOR.filled())
                + Text::new(short(&l.name, 24), (8, -4), (FONT, 12));
            chart.draw_series(std::iter::once(mark))?;
        }
        let skipped: Vec<String> =
            layers.iter().filter(|l| l.macs == 0.0 || l.cycles == 0.0).map(|l| short(&l.name, 24)).collect();
        if !skipped.is_empty() {
            note.draw(&Text::new(format!("not placed (no MACs): {}", skipped.join(", ")), (15, 8), (FONT, 12)))?;
        }
        root.present()?;
    }
    Ok((svg, placed.len()))
}

/// Cycles against energy, each point coloured by its area (viridis, small
/// to large), the Pareto-optimal ones ringed in black.
fn pareto(name: &str, points: &[Point]) -> std::result::Result<String, Box<dyn std::error::Error>> {
    let span = |f: fn(&Point) -> f64| {
        let (lo, hi) = points.iter().map(f).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
        let pad = ((hi - lo) * 0.08).max(hi.abs() * 0.02).max(1e-9);
        (lo - pad, hi + pad, lo, hi)
    };
    let (cx0, cx1, ..) = span(|p| p.cycles);
    let (ey0, ey1, ..) = span(|p| p.energy_uj);
    let (.., a_lo, a_hi) = span(|p| p.area_mm2);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 630)).into_drawing_area();
        root.fill(&WHITE)?;
        let (plot, note) = root.split_vertically(600);
        let mut chart = ChartBuilder::on(&plot)
            .caption(format!("sweep of {}: cycles vs energy", short(name, 40)), (FONT, 16))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(cx0..cx1, ey0..ey1)?;
        chart.configure_mesh().x_desc("cycles (one inference)").y_desc("energy (µJ)").draw()?;
        for p in points {
            let color =
                ViridisRGB.get_color_normalized(p.area_mm2 as f32, a_lo as f32, (a_hi as f32).max(a_lo as f32 + 1e-6));
            let at = (p.cycles, p.energy_uj);
            chart.draw_series(std::iter::once(Circle::new(at, 6, color.filled())))?;
            if p.pareto {
                chart.draw_series(std::iter::once(Circle::new(at, 10, BLACK.stroke_width(2))))?;
            }
            let label = EmptyElement::at(at) + Text::new(p.index.to_string(), (11, -14), (FONT, 11));
            chart.draw_series(std::iter::once(label))?;
        }
        let text = format!(
            "point numbers as in the sweep's table; colour: area {a_lo:.3} mm² (purple) to {a_hi:.3} mm² (yellow); \
             ringed: Pareto-optimal in cycles, energy and area"
        );
        note.draw(&Text::new(text, (15, 8), (FONT, 12)))?;
        root.present()?;
    }
    Ok(svg)
}
