//! `compare` as a library: a base model and its variants (quantized,
//! pruned, distilled — any architecture with the same output shape) run on
//! the same inputs, tabulated side by side: accuracy (top-1 against labels,
//! and agreement with the base: top-1 match rate and mean cosine of the
//! outputs), weight bytes, peak device memory, cycles, latency, energy and
//! DRAM traffic per inference. `systole compare` and the Python package's
//! `compare` call [`compare`]; the JSON is `docs/schema/compare.schema.json`.
//!
//! A quantized model (ONNX QOperator / QDQ, or `.stm`) is compiled for the
//! configuration and runs on the cycle-accurate model through the flow
//! ([`super::compile`], [`super::run::execute`]), as `systole run` runs it.
//! A float ONNX model ([`compiler::onnx::float::is_float_model`]) runs on
//! the host in the float reference ([`compiler::onnx::float`]): its row has
//! accuracy and weight bytes, no hardware figures.
//!
//! Inputs: one float32 array `[N, ...]`, N samples; each model takes a
//! sample reshaped to its own input shape, which must hold as many elements
//! (a CNN's `[1, 1, 8, 8]` and an MLP's `[1, 64]` both take `[N, 64]`).
//! Every model is imported and compiled, and every shape checked, before
//! anything runs, so a bad variant fails at once and names its file.

use super::backend::Backend;
use super::compile;
use super::files::{read_input, InputKind};
use super::infer::{Batch, HostData};
use super::layers::{self, LayerMeta};
use super::report::{PerInference, Totals};
use super::run::{execute, tensor_with_role, Execution};
use super::{shape_text, Compiled, FlowError, Result};
use compiler::ir::{Graph, Op};
use compiler::onnx::float::{is_float_model, FloatModel};
use isa::program::{Program, TensorRole};
use isa::HwConfig;
use serde::Serialize;
use sim::energy::EnergyTable;
use std::path::Path;

/// The version of the comparison's JSON layout.
pub const SCHEMA_VERSION: u32 = 1;

/// Where a model ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunsOn {
    /// The float reference on the host (a float model: no hardware figures).
    Host,
    /// The accelerator's cycle-accurate model.
    Accelerator,
}

/// What a model computes with, ready to run.
enum Runner {
    Host(FloatModel),
    Device { prog: Box<Program>, layers: Vec<LayerMeta> },
}

/// A model of the comparison, imported (and compiled) but not yet run.
struct Prepared {
    name: String,
    runner: Runner,
    weight_bytes: u64,
    /// One sample's input and output shapes.
    input_shape: Vec<u64>,
    output_shape: Vec<u64>,
}

/// The comparison's input: `[N, ...]` float32 samples.
pub struct Samples<'a> {
    pub shape: &'a [u64],
    pub data: &'a [f32],
    /// Names the array in messages (`--input x.npy`).
    pub what: &'a str,
}

/// The labels of the samples (class indices), and what names them.
pub struct Labels<'a> {
    pub values: &'a [i64],
    pub shape: &'a [u64],
    pub what: &'a str,
}

/// What to compare: the models (the base first), the configuration the
/// quantized ones are compiled for, the energy table, the inputs, the
/// labels if any.
pub struct Job<'a> {
    pub models: &'a [&'a Path],
    pub cfg: &'a HwConfig,
    pub table: &'a EnergyTable,
    pub samples: Samples<'a>,
    pub labels: Option<Labels<'a>>,
}

/// A model's figures on the accelerator, per inference (means over the N
/// samples).
#[derive(Clone, Debug, Serialize)]
pub struct DeviceFigures {
    /// The device memory the program uses: the window `[0, mem_bytes)`
    /// (code, constant data, every buffer).
    pub peak_memory_bytes: u64,
    /// The program's constant data (packed weights, biases, tables) as
    /// placed in device memory.
    pub program_data_bytes: u64,
    pub cycles_per_inference: f64,
    pub latency_us: f64,
    pub energy_uj_per_inference: f64,
    /// What the DRAM bus carried per inference (whole beats, instruction
    /// fetch included).
    pub dram_bus_bytes_per_inference: f64,
    pub macs_per_inference: f64,
    pub mac_utilization: f64,
}

/// One model's row.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The model file, as given.
    pub model: String,
    /// True for the first model, the one the others are compared with.
    pub base: bool,
    pub runs_on: RunsOn,
    pub input_shape: Vec<u64>,
    pub output_shape: Vec<u64>,
    /// Top-1 accuracy against the labels; null without labels.
    pub top1_accuracy: Option<f64>,
    /// The fraction of samples whose top-1 class is the base's.
    pub top1_agreement: f64,
    /// The mean over the samples of the cosine between this model's and
    /// the base's outputs.
    pub cosine_mean: f64,
    /// The model's parameters as it stores them: a float model's float
    /// initializers at 4 bytes, a quantized model's conv and dense weights
    /// as the compiled program stores them (int8 1 byte, int4 ½, 2:4-sparse
    /// ⅝: kept values and positions) and biases at 4 (int32).
    pub weight_bytes: u64,
    /// `weight_bytes` over the base's.
    pub weight_bytes_vs_base: f64,
    /// Null for a model that ran on the host.
    pub device: Option<DeviceFigures>,
}

/// The comparison, as `--json` writes it.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub schema_version: u32,
    pub command: &'static str,
    /// The configuration's name and fingerprint.
    pub config: String,
    pub config_fingerprint: String,
    pub energy_table: String,
    pub input: String,
    pub labels: Option<String>,
    pub samples: u64,
    pub rows: Vec<Row>,
}

impl Comparison {
    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// Runs every model of `job` on its samples and compares them with the
/// first; `progress` is called after each inference (N per model).
pub fn compare(job: &Job<'_>, progress: &(dyn Fn() + Sync)) -> Result<Comparison> {
    let [base_path, ..] = job.models else {
        return Err(FlowError::input("compare: no model given (the base model comes first, then its variants)"));
    };
    let (n, per_sample) = samples_of(&job.samples)?;
    let labels = job.labels.as_ref().map(|l| check_labels(l, n, job.samples.what)).transpose()?;
    let models = job.models.iter().map(|p| prepare(p, job.cfg)).collect::<Result<Vec<_>>>()?;
    let base = &models[0];
    for m in &models {
        let elements: u64 = m.input_shape.iter().product();
        if elements != per_sample as u64 {
            return Err(FlowError::input(format!(
                "{}: its input has shape {} ({elements} elements a sample); {} has {} elements a sample (shape {}): \
                 the models of a comparison take the same samples, each reshaped to the model's input",
                m.name,
                shape_text(&m.input_shape),
                job.samples.what,
                per_sample,
                shape_text(job.samples.shape)
            )));
        }
        if squeezed(&m.output_shape) != squeezed(&base.output_shape) {
            return Err(FlowError::input(format!(
                "{}: its output has shape {}, the base model {}'s {}: variants must give outputs of the base's shape",
                m.name,
                shape_text(&m.output_shape),
                base_path.display(),
                shape_text(&base.output_shape)
            )));
        }
        if let Some(labels) = &labels {
            let classes: u64 = m.output_shape.iter().product();
            if let Some((i, l)) = labels.iter().enumerate().find(|(_, &l)| l < 0 || l as u64 >= classes) {
                return Err(FlowError::input(format!(
                    "{}: label {l} of sample {i} is not a class of the models' {classes} outputs",
                    job.labels.as_ref().map_or("", |l| l.what)
                )));
            }
        }
    }

    let mut runs = Vec::with_capacity(models.len());
    for m in &models {
        runs.push(run_model(m, job, n, progress)?);
    }
    let base_out = &runs[0].0;
    let out_len = base_out.len() / n;
    let rows = models
        .iter()
        .zip(&runs)
        .enumerate()
        .map(|(k, (m, (out, device)))| {
            let samples =
                || (0..n).map(|i| (&out[i * out_len..(i + 1) * out_len], &base_out[i * out_len..(i + 1) * out_len]));
            let agree = samples().filter(|(o, b)| argmax(o) == argmax(b)).count();
            let cosine = samples().map(|(o, b)| cosine(o, b)).sum::<f64>() / n as f64;
            let top1 = labels.as_ref().map(|l| {
                (0..n).filter(|&i| argmax(&out[i * out_len..(i + 1) * out_len]) as i64 == l[i]).count() as f64
                    / n as f64
            });
            Row {
                model: m.name.clone(),
                base: k == 0,
                runs_on: if device.is_some() { RunsOn::Accelerator } else { RunsOn::Host },
                input_shape: m.input_shape.clone(),
                output_shape: m.output_shape.clone(),
                top1_accuracy: top1,
                top1_agreement: agree as f64 / n as f64,
                cosine_mean: cosine,
                weight_bytes: m.weight_bytes,
                weight_bytes_vs_base: super::report::fraction(m.weight_bytes as f64, base.weight_bytes as f64),
                device: device.clone(),
            }
        })
        .collect();
    Ok(Comparison {
        schema_version: SCHEMA_VERSION,
        command: "compare",
        config: job.cfg.name.clone(),
        config_fingerprint: format!("{:#018x}", job.cfg.fingerprint()),
        energy_table: job.table.name.clone(),
        input: job.samples.what.to_string(),
        labels: job.labels.as_ref().map(|l| l.what.to_string()),
        samples: n as u64,
        rows,
    })
}

/// The number of samples and the elements of one: the array is `[N, ...]`.
fn samples_of(s: &Samples<'_>) -> Result<(usize, usize)> {
    let Some((&n, rest)) = s.shape.split_first() else {
        return Err(FlowError::input(format!(
            "{}: a scalar; compare takes samples along the first dimension, [N, ...]",
            s.what
        )));
    };
    if n == 0 {
        return Err(FlowError::input(format!("{}: no samples (shape {})", s.what, shape_text(s.shape))));
    }
    let per = rest.iter().product::<u64>() as usize;
    // A NaN would make every accuracy figure meaningless (and is no JSON number).
    if let Some(i) = s.data.iter().position(|v| !v.is_finite()) {
        // There is an element, so a sample holds at least one: `per` > 0.
        let at = format!("sample {} element {}", i / per, i % per);
        return Err(FlowError::input(format!("{}: {at} is {} (samples must be finite)", s.what, s.data[i])));
    }
    Ok((n as usize, per))
}

/// The labels as class indices, one per sample (`[N]`, or `[N, 1]`).
fn check_labels(l: &Labels<'_>, n: usize, input: &str) -> Result<Vec<i64>> {
    let fits = match l.shape {
        [m] | [m, 1] => *m as usize == n,
        _ => false,
    };
    if !fits {
        return Err(FlowError::input(format!(
            "{}: labels of shape {}; {input} has {n} samples, so the labels are [{n}] (one class index a sample)",
            l.what,
            shape_text(l.shape)
        )));
    }
    Ok(l.values.to_vec())
}

/// A shape without its leading 1s: `[1, 10]` and `[10]` are one output shape.
fn squeezed(shape: &[u64]) -> &[u64] {
    let ones = shape.iter().take_while(|&&d| d == 1).count();
    &shape[ones.min(shape.len().saturating_sub(1))..]
}

/// Reads a model; a float ONNX model is loaded for the host, anything else
/// imported and compiled for `cfg`. Errors name the file.
fn prepare(path: &Path, cfg: &HwConfig) -> Result<Prepared> {
    let name = path.display().to_string();
    if compile::format_of(path)? == compile::Format::Onnx {
        let bytes = read_input(path, InputKind::Onnx)?;
        if is_float_model(&bytes) {
            let m = FloatModel::load(&bytes).map_err(|e| FlowError::input(format!("{name}: float model: {e}")))?;
            let dims = |s: &[usize]| s.iter().map(|&d| d as u64).collect::<Vec<_>>();
            return Ok(Prepared {
                input_shape: dims(m.input_shape()),
                output_shape: dims(m.output_shape()),
                weight_bytes: m.parameter_bytes(),
                runner: Runner::Host(m),
                name,
            });
        }
        let graph = compile::import_onnx(&bytes, &name)?;
        return compiled(name, &graph, cfg);
    }
    compiled(name, &compile::import(path)?, cfg)
}

fn compiled(name: String, graph: &Graph, cfg: &HwConfig) -> Result<Prepared> {
    let lowered = compile::lower(graph, cfg, 1, false, &name)?;
    let prog = lowered.program;
    let tin = tensor_with_role(&prog, &name, TensorRole::Input)?.shape.clone();
    let tout = tensor_with_role(&prog, &name, TensorRole::Output)?.shape.clone();
    let layers = layers::from_program(&prog);
    Ok(Prepared {
        name,
        weight_bytes: stored_weight_bytes(graph, &prog),
        input_shape: tin,
        output_shape: tout,
        runner: Runner::Device { prog: Box::new(prog), layers },
    })
}

/// The bytes of a quantized graph's parameters as the model stores them:
/// int8 weights and tables 1 byte an element, int32 biases and float
/// constants 4.
pub fn weight_bytes(g: &Graph) -> u64 {
    g.nodes
        .iter()
        .map(|node| {
            let bytes = match &node.op {
                Op::Conv(p) => p.weights.len() + 4 * p.bias.len(),
                Op::Dense(p) | Op::DenseF32(p) => p.weights.len() + 4 * p.bias.len(),
                Op::Embedding(p) => p.table.len(),
                Op::LayerNorm { gamma, beta, .. } => 4 * (gamma.len() + beta.len()),
                Op::Constant { data, .. } => 4 * data.len(),
                _ => 0,
            };
            bytes as u64
        })
        .sum()
}

/// [`weight_bytes`] as the compiled program stores them: a conv or dense
/// layer's weights in the format its tiles have (int4 two a byte, 2:4 the
/// kept half and their positions: `layers::stored_weight_bytes`).
pub fn stored_weight_bytes(g: &Graph, prog: &isa::program::Program) -> u64 {
    let format = |name: &str| {
        prog.meta.layers.iter().find(|l| l.name == name).and_then(|l| layers::weight_format(prog, l.first, l.last))
    };
    let saved: u64 = g
        .nodes
        .iter()
        .map(|node| {
            let n = match &node.op {
                Op::Conv(p) => p.weights.len(),
                Op::Dense(p) | Op::DenseF32(p) => p.weights.len(),
                _ => return 0,
            } as u64;
            n - layers::stored_weight_bytes(format(&node.name), n)
        })
        .sum();
    weight_bytes(g) - saved
}

/// Runs `m` on the `n` samples: the outputs, one after the other, and the
/// accelerator's figures (none on the host).
fn run_model(
    m: &Prepared,
    job: &Job<'_>,
    n: usize,
    progress: &(dyn Fn() + Sync),
) -> Result<(Vec<f32>, Option<DeviceFigures>)> {
    let data = job.samples.data;
    match &m.runner {
        Runner::Host(f) => {
            let per = data.len() / n;
            let mut out = Vec::with_capacity(n * f.output_shape().iter().product::<usize>());
            for i in 0..n {
                let y = f.run(&data[i * per..(i + 1) * per]).map_err(|e| {
                    FlowError::input(format!("{}: sample {} of {n} on the float reference: {e}", m.name, i + 1))
                })?;
                out.extend(y);
                progress();
            }
            Ok((out, None))
        }
        Runner::Device { prog, layers } => {
            let tin = tensor_with_role(prog, &m.name, TensorRole::Input)?;
            let mut shape = vec![n as u64];
            shape.extend_from_slice(&tin.shape);
            let what = format!("{} for {}", job.samples.what, m.name);
            let batch = Batch::new(&shape, HostData::F32(data.to_vec()), tin, &what)?;
            let model = Compiled { prog, layers, cfg: job.cfg };
            let measured =
                execute(model, &m.name, Backend::Sim, &batch, None, Execution::all_cores(), progress)?.measured;
            let energy = sim::energy::energy(job.cfg, prog, &measured.counters, job.table);
            let totals = Totals::of(job.cfg, &measured.counters, &energy);
            let per = PerInference::of(&totals, &measured.run_cycles);
            let device = DeviceFigures {
                peak_memory_bytes: prog.mem_bytes,
                program_data_bytes: prog.data.len() as u64,
                cycles_per_inference: per.cycles_mean,
                latency_us: per.latency_us,
                energy_uj_per_inference: per.energy_uj,
                dram_bus_bytes_per_inference: totals.dram_bus_bytes as f64 / n as f64,
                macs_per_inference: totals.macs as f64 / n as f64,
                mac_utilization: totals.mac_utilization,
            };
            Ok((measured.outputs, Some(device)))
        }
    }
}

/// The index of the largest element (the first of equals), as NumPy's argmax.
pub fn argmax(v: &[f32]) -> usize {
    (0..v.len()).fold(0, |best, i| if v[i] > v[best] { i } else { best })
}

/// The cosine of two vectors: 1 for two zero vectors, 0 for a zero and a
/// non-zero one.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(&p, &q)| f64::from(p) * f64::from(q)).sum::<f64>();
    let (ab, aa, bb) = (dot(a, b), dot(a, a), dot(b, b));
    match (aa > 0.0, bb > 0.0) {
        (false, false) => 1.0,
        (true, true) => (ab / (aa.sqrt() * bb.sqrt())).clamp(-1.0, 1.0),
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_cosine_and_squeeze() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(cosine(&[1.0, 0.0], &[2.0, 0.0]), 1.0);
        assert_eq!(cosine(&[1.0, 0.0], &[0.0, 1.0]), 0.0);
        assert_eq!(cosine(&[0.0, 0.0], &[0.0, 0.0]), 1.0);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
        assert!((cosine(&[1.0, 1.0], &[1.0, 0.0]) - 0.5f64.sqrt()).abs() < 1e-12);
        assert_eq!(squeezed(&[1, 10]), [10]);
        assert_eq!(squeezed(&[10]), [10]);
        assert_eq!(squeezed(&[1, 1]), [1]);
        assert_eq!(squeezed(&[1, 2, 5]), [2, 5]);
    }
}
