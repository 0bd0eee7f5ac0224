//! `systole compare`: a base model against its variants on the same inputs
//! (the flow is `systole::flow::compare`): reads the models' paths, the
//! configuration, the inputs and the labels, and prints the comparison as
//! a table and writes it as JSON (docs/schema/compare.schema.json) and CSV.

use super::error::{CliError, Result};
use super::files::{check_destinations, print_stdout, Outputs};
use super::load;
use super::npy::{self, Elem};
use super::progress::Progress;
use super::sweep::csv_field;
use super::table::{cells, group, table, Align};
use clap::Args;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use systole::flow::compare::{self, Comparison, Job, Labels, Row, Samples};

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// The base model, then its variants (quantized, pruned, or another
    /// architecture with outputs of the base's shape): a quantized .onnx
    /// (or .stm) is compiled for --hw and runs on the cycle-accurate model,
    /// a float32 .onnx on the host's float reference.
    #[arg(value_name = "BASE.onnx VARIANT.onnx", num_args = 1.., required = true)]
    pub models: Vec<PathBuf>,
    /// Hardware configuration (TOML, or a preset: default, tiny, large).
    #[arg(long, value_name = "HW.toml")]
    pub hw: PathBuf,
    /// Samples: a float32 .npy `[N, ...]`; every model takes each sample
    /// reshaped to its input shape, which must hold as many elements (a
    /// CNN's [1,1,8,8] and an MLP's [1,64] both take [N, 64]).
    #[arg(long, value_name = "X.npy")]
    pub input: PathBuf,
    /// Class labels of the samples (an integer .npy `[N]`): adds top-1
    /// accuracy; without it, accuracy is agreement with the base.
    #[arg(long, value_name = "Y.npy")]
    pub labels: Option<PathBuf>,
    /// Write the comparison as JSON (docs/schema/compare.schema.json).
    #[arg(long, value_name = "OUT.json")]
    pub json: Option<PathBuf>,
    /// Write the comparison as CSV: a header and one line per model.
    #[arg(long, value_name = "OUT.csv")]
    pub csv: Option<PathBuf>,
    /// Energy and area table (TOML) [default: the built-in 45 nm table].
    #[arg(long, value_name = "TABLE.toml")]
    pub energy_table: Option<PathBuf>,
}

/// The samples as float32; compare quantizes them per model.
fn read_samples(path: &Path) -> Result<(Vec<u64>, Vec<f32>)> {
    let a = npy::read(path)?;
    if a.elem != Elem::F32 {
        return Err(CliError::input(format!(
            "--input {}: the array is {}; compare takes float32 samples (each model quantizes them with its own \
             input parameters)",
            path.display(),
            a.elem.name()
        )));
    }
    let data = a.data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
    Ok((a.shape, data))
}

/// Labels of any integer type, as i64.
fn read_labels(path: &Path) -> Result<(Vec<u64>, Vec<i64>)> {
    let a = npy::read(path)?;
    let values = match a.elem {
        Elem::I8 => a.data.iter().map(|&b| i64::from(b as i8)).collect(),
        Elem::U8 => a.data.iter().map(|&b| i64::from(b)).collect(),
        Elem::I16 => a.data.chunks_exact(2).map(|c| i64::from(i16::from_le_bytes([c[0], c[1]]))).collect(),
        Elem::I32 => a.data.chunks_exact(4).map(|c| i64::from(i32::from_le_bytes(c.try_into().expect("4")))).collect(),
        Elem::I64 => a.data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8"))).collect(),
        Elem::F32 => {
            return Err(CliError::input(format!(
                "--labels {}: the array is f32; labels are integer class indices (int64, as numpy writes them)",
                path.display()
            )))
        }
    };
    Ok((a.shape, values))
}

pub fn run(args: &CompareArgs) -> Result<()> {
    let mut outs: Vec<(&Path, &str)> = Vec::new();
    if let Some(p) = &args.json {
        outs.push((p, "--json"));
    }
    if let Some(p) = &args.csv {
        outs.push((p, "--csv"));
    }
    check_destinations(outs)?;
    let cfg = load::config(&args.hw)?;
    let table = load::energy_table(args.energy_table.as_deref())?;
    let (shape, data) = read_samples(&args.input)?;
    let labels = args.labels.as_deref().map(read_labels).transpose()?;
    let input_what = format!("--input {}", args.input.display());
    let labels_what = args.labels.as_ref().map(|p| format!("--labels {}", p.display()));
    let models: Vec<&Path> = args.models.iter().map(PathBuf::as_path).collect();
    let job = Job {
        models: &models,
        cfg: &cfg,
        table: &table,
        samples: Samples { shape: &shape, data: &data, what: &input_what },
        labels: labels.as_ref().zip(labels_what.as_deref()).map(|((shape, values), what)| Labels {
            values,
            shape,
            what,
        }),
    };
    let n = shape.first().copied().unwrap_or(0);
    let progress = Progress::bar("systole compare", n * models.len() as u64, "inferences");
    let result = compare::compare(&job, &|| progress.inc(1));
    progress.finish(&format!("{} models x {n} samples", models.len()));
    let c = result?;

    let mut files = Outputs::new();
    if let Some(path) = &args.json {
        files.add(path, c.to_json().into_bytes());
    }
    if let Some(path) = &args.csv {
        files.add(path, csv_text(&c).into_bytes());
    }
    files.commit()?;
    let mut out = text(&c, &cfg);
    for (path, what) in [(&args.json, "json"), (&args.csv, "csv")] {
        if let Some(p) = path {
            let _ = writeln!(out, "wrote {what:<5}{}", p.display());
        }
    }
    print_stdout(&out)
}

fn percent(v: f64) -> String {
    format!("{:.2}%", 100.0 * v)
}

/// The comparison as a text table with a title and the columns' meaning.
fn text(c: &Comparison, cfg: &isa::HwConfig) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "systole compare: {} models on {} samples of {}{}; config `{}` ({}x{} array, {} MHz)",
        c.rows.len(),
        c.samples,
        c.input,
        c.labels.as_ref().map_or_else(String::new, |l| format!(", {l}")),
        cfg.name,
        cfg.array.rows,
        cfg.array.cols,
        cfg.clock.mhz
    );
    let labels = c.labels.is_some();
    let mut head = vec!["model", "runs on"];
    if labels {
        head.push("top-1");
    }
    head.extend([
        "agree",
        "cosine",
        "weight B",
        "vs base",
        "device mem B",
        "cycles/inf",
        "latency µs",
        "energy µJ/inf",
        "DRAM B/inf",
    ]);
    let mut rows = vec![cells(&head)];
    for r in &c.rows {
        let mut f = vec![if r.base { format!("{} (base)", r.model) } else { r.model.clone() }];
        f.push(match r.device {
            Some(_) => "accel".into(),
            None => "host".into(),
        });
        if labels {
            f.push(r.top1_accuracy.map_or_else(|| "-".into(), percent));
        }
        f.push(percent(r.top1_agreement));
        f.push(format!("{:.4}", r.cosine_mean));
        f.push(group(r.weight_bytes));
        f.push(format!("{:.3}x", r.weight_bytes_vs_base));
        match &r.device {
            Some(d) => f.extend([
                group(d.peak_memory_bytes),
                group(d.cycles_per_inference.round() as u64),
                format!("{:.3}", d.latency_us),
                format!("{:.4}", d.energy_uj_per_inference),
                group(d.dram_bus_bytes_per_inference.round() as u64),
            ]),
            None => f.extend(std::iter::repeat_n("host".to_string(), 5)),
        }
        rows.push(f);
    }
    let mut align = vec![Align::Left, Align::Left];
    align.extend(std::iter::repeat_n(Align::Right, head.len() - 2));
    out.push_str(&table("  ", &rows, &align));
    if labels {
        let _ = writeln!(out, "  top-1: the largest output is the label's class;");
    }
    let _ = writeln!(
        out,
        "  agree: the largest output is the base's; cosine: mean over the samples of the cosine with the base's outputs;"
    );
    let _ = writeln!(
        out,
        "  weight B: parameters as stored (float 4 B; weights int8 1 B, int4 1/2, 2:4 5/8; int32 biases 4 B); device mem B: the \
         program's window of device memory;"
    );
    let _ = writeln!(
        out,
        "  per inference (mean over the samples): cycles, latency at {} MHz, energy, DRAM B (what the bus carried); \
         host: run on the float reference, no hardware figures.",
        cfg.clock.mhz
    );
    out
}

/// The comparison as CSV: a header and one line per model (host rows leave
/// the hardware fields empty).
fn csv_text(c: &Comparison) -> String {
    let head = [
        "model",
        "base",
        "runs_on",
        "top1_accuracy",
        "top1_agreement",
        "cosine_mean",
        "weight_bytes",
        "weight_bytes_vs_base",
        "peak_memory_bytes",
        "program_data_bytes",
        "cycles_per_inference",
        "latency_us",
        "energy_uj_per_inference",
        "dram_bus_bytes_per_inference",
        "macs_per_inference",
        "mac_utilization",
    ];
    let mut text = head.join(",");
    text.push('\n');
    for r in &c.rows {
        let fields = csv_fields(r);
        text.push_str(&fields.iter().map(|s| csv_field(s)).collect::<Vec<_>>().join(","));
        text.push('\n');
    }
    text
}

fn csv_fields(r: &Row) -> Vec<String> {
    let runs_on = if r.device.is_some() { "accelerator" } else { "host" };
    let mut f = vec![
        r.model.clone(),
        r.base.to_string(),
        runs_on.to_string(),
        r.top1_accuracy.map_or_else(String::new, |v| v.to_string()),
        r.top1_agreement.to_string(),
        r.cosine_mean.to_string(),
        r.weight_bytes.to_string(),
        r.weight_bytes_vs_base.to_string(),
    ];
    match &r.device {
        Some(d) => f.extend([
            d.peak_memory_bytes.to_string(),
            d.program_data_bytes.to_string(),
            d.cycles_per_inference.to_string(),
            d.latency_us.to_string(),
            d.energy_uj_per_inference.to_string(),
            d.dram_bus_bytes_per_inference.to_string(),
            d.macs_per_inference.to_string(),
            d.mac_utilization.to_string(),
        ]),
        None => f.extend(std::iter::repeat_n(String::new(), 8)),
    }
    f
}
