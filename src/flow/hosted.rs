//! Programs with named inputs (a transformer's): the inputs by name (int64
//! token ids and masks, which the device's gathers read as they are), the
//! ops the device cannot run computed on the host by the reference
//! interpreter before each run (`compiler::lower::transformer::sites`
//! decides which; none in the bundled transformers, whose embeddings and
//! masks run on the device), the program's input tensors written, the
//! program run, every output read back by name, and, with `--check`, every
//! layer's buffer (int8 or float32) and every output compared with the
//! reference interpreter bit for bit. What ran on the host (if anything),
//! the bytes written to the device and the host's time are part of the
//! result.

use super::infer::{run_error, BatchRun};
use super::layers::{self, LayerMeta};
use super::reference::NamedOutput;
use super::{shape_text, Compiled, FlowError, Result, RunNumber};
use compiler::interp::{run_with_lanes, Tensor, TensorData};
use compiler::ir::{Graph, ValueId};
use compiler::npy::Array;
use driver::{Driver, Outcome};
use isa::program::{DType, TensorRole};
use isa::Device;
use std::time::Instant;

/// What ran on the host, summed over the runs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostWork {
    /// The host nodes: name and op.
    pub nodes: Vec<(String, String)>,
    /// Bytes written to the device's input tensors (the graph's inputs
    /// themselves when no op ran on the host).
    pub bytes: u64,
    /// Wall time of the host ops, in microseconds (0 when there are none).
    pub micros: f64,
}

/// A hosted run: the device's figures, the outputs by name and the host's work.
#[derive(Clone, Debug)]
pub struct HostedRun {
    pub measured: BatchRun,
    pub outputs: Vec<NamedOutput>,
    pub host: HostWork,
    /// Layers compared per run (0 without a check).
    pub checked_layers: usize,
}

/// Whether a program's recorded graph needs host preprocessing (it takes
/// int64 inputs or has transformer ops): such programs run through [`run`].
pub fn is_hosted(graph: &Graph) -> bool {
    compiler::lower::transformer::is_transformer(graph)
}

/// The subgraph of `g` the host runs: its host nodes, with the values the
/// program reads as outputs.
fn host_graph(g: &Graph, device_inputs: &[ValueId]) -> Result<Graph> {
    let nodes = compiler::lower::transformer::host_nodes(g).map_err(|e| FlowError::input(e.to_string()))?;
    Ok(Graph {
        name: format!("{} (host)", g.name),
        values: g.values.clone(),
        nodes: nodes.iter().map(|&i| g.nodes[i].clone()).collect(),
        inputs: g.inputs.clone(),
        outputs: device_inputs.to_vec(),
    })
}

/// A host value's bytes as the device tensor holds them: int64 ids (the
/// interpreter holds them as int32, `reference::named_runs` having refused
/// any outside that range) as 8 bytes each, float32 as 4, int8 as 1.
fn tensor_bytes(t: &Tensor, dtype: DType) -> Vec<u8> {
    match (&t.data, dtype) {
        (TensorData::Float(v), _) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        (TensorData::Quant(v), DType::I64) => v.iter().flat_map(|&q| i64::from(q).to_le_bytes()).collect(),
        (TensorData::Quant(v), _) => v.iter().map(|&q| q as u8).collect(),
    }
}

/// Runs the loaded program `model` (recorded graph `graph`) on the named
/// input arrays: one run, or one per entry of a batch (one extra leading
/// dimension on every array). With `check`, every layer and output is
/// compared with the reference interpreter after each run.
pub fn run<D: Device>(
    drv: &mut Driver<D>,
    model: Compiled<'_>,
    graph: &Graph,
    inputs: &[(String, Array)],
    check: bool,
) -> Result<HostedRun> {
    let prog = model.prog;
    let lanes = model.cfg.vector_lanes() as usize;
    let runs = super::reference::named_runs(graph, inputs)?;
    let device_in: Vec<(ValueId, &isa::program::TensorInfo)> = prog
        .tensors
        .iter()
        .filter(|t| t.role == TensorRole::Input)
        .map(|t| {
            graph.value(&t.name).map(|v| (v, t)).ok_or_else(|| {
                FlowError::input(format!("the program's input `{}` is not a value of its recorded graph", t.name))
            })
        })
        .collect::<Result<_>>()?;
    let ids: Vec<ValueId> = device_in.iter().map(|(v, _)| *v).collect();
    let host = host_graph(graph, &ids)?;
    let mut work = HostWork {
        nodes: host.nodes.iter().map(|n| (n.name.clone(), n.op.name().to_string())).collect(),
        ..HostWork::default()
    };
    let outs: Vec<&isa::program::TensorInfo> = prog.tensors.iter().filter(|t| t.role == TensorRole::Output).collect();
    let batched = runs.len() > 1
        || inputs.iter().any(|(n, a)| graph.value(n).is_some_and(|v| a.shape.len() == graph.values[v].shape.len() + 1));
    let mut outputs: Vec<NamedOutput> = outs
        .iter()
        .map(|t| {
            let mut shape = t.shape.clone();
            if batched {
                shape.insert(0, runs.len() as u64);
            }
            NamedOutput { name: t.name.clone(), shape, data: Vec::new() }
        })
        .collect();
    let mut measured = BatchRun { layer_cycles: vec![0; model.layers.len()], ..BatchRun::default() };
    let mut checked_layers = 0;
    for (k, named) in runs.iter().enumerate() {
        let number = RunNumber { index: k, of: runs.len() };
        let ordered: Vec<Tensor> = graph
            .inputs
            .iter()
            .map(|&i| {
                named.iter().find(|(n, _)| *n == graph.values[i].name).expect("named_runs names every input").1.clone()
            })
            .collect();
        let start = Instant::now();
        let vals = run_with_lanes(&host, &ordered, lanes)
            .map_err(|e| FlowError::input(format!("{number}: host preprocessing: {e}")))?;
        if !host.nodes.is_empty() {
            work.micros += start.elapsed().as_secs_f64() * 1e6;
        }
        for (v, t) in &device_in {
            let bytes = tensor_bytes(&vals[*v], t.dtype);
            work.bytes += bytes.len() as u64;
            drv.write_tensor(t, &bytes).map_err(|e| FlowError::input(format!("{number}: {e}")))?;
        }
        let report = drv.run().map_err(|e| FlowError::input(format!("{number}: {e}")))?;
        if let Outcome::Fault { code, pc } = report.outcome {
            let e = run_error(driver::DriverError::Fault { code, pc }, drv.device_mut(), prog, model.layers, number);
            return Err(match mask_layer(graph, model.layers, pc as usize) {
                Some(mask) if code == isa::ErrorCode::IndexOutOfRange => {
                    FlowError::input(format!("{e} (`{mask}` is a mask: its elements must be 0 or 1)"))
                }
                _ => e,
            });
        }
        for (out, t) in outputs.iter_mut().zip(&outs) {
            let bytes = drv.read_tensor(t).map_err(|e| FlowError::input(format!("{number}: {e}")))?;
            out.data.extend(decode(&bytes, t));
        }
        if check {
            checked_layers = check_run(drv, model, graph, &ordered, lanes, number)?;
        }
        for (c, v) in report.counters.iter() {
            measured.counters.add(c, v);
        }
        let cycles = layers::layer_cycles(&report.trace, model.layers);
        measured.layer_cycles.iter_mut().zip(cycles).for_each(|(s, c)| *s += c);
        measured.run_cycles.push(report.cycles());
    }
    for o in &outputs {
        measured.outputs.extend_from_slice(&o.data);
    }
    Ok(HostedRun { measured, outputs, host: work, checked_layers })
}

/// The mask input a MaskSelect layer at instruction `pc` gathers by, if
/// that is where the device stopped (a mask value other than 0 or 1 is
/// outside its 2-row table).
fn mask_layer<'g>(graph: &'g Graph, layers: &[LayerMeta], pc: usize) -> Option<&'g str> {
    let l = layers::layer_of(layers, pc)?;
    let node = graph.nodes.iter().find(|n| n.name == l.name)?;
    if !matches!(node.op, compiler::ir::Op::MaskSelect { .. }) {
        return None;
    }
    // Through the views (an Unsqueeze) to the value the host wrote.
    let mut v = node.inputs[0];
    while let Some(view) = graph.nodes.iter().find(|n| {
        n.outputs == [v] && matches!(n.op, compiler::ir::Op::Reshape { .. } | compiler::ir::Op::Flatten { .. })
    }) {
        v = view.inputs[0];
    }
    Some(graph.values[v].name.as_str())
}

/// A tensor's bytes as float32 (a quantized one dequantized).
fn decode(bytes: &[u8], t: &isa::program::TensorInfo) -> Vec<f32> {
    let (s, z) = (t.scale.unwrap_or(1.0), t.zero_point.unwrap_or(0));
    match t.dtype {
        DType::F32 => bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect(),
        DType::I8 => bytes.iter().map(|&b| isa::numerics::dequantize(b as i8 as i32, s, z)).collect(),
        DType::U8 => bytes.iter().map(|&b| isa::numerics::dequantize(b as i32, s, z)).collect(),
        DType::I32 => {
            bytes.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")) as f32).collect()
        }
        DType::I64 => {
            bytes.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as f32).collect()
        }
    }
}

/// One value's device elements, as the reference holds them.
enum Elems {
    F32(Vec<u32>),
    Int(Vec<i32>),
}

fn device_elems(image: &[u8], l: &LayerMeta) -> Elems {
    let offsets = l.layout.offsets();
    match l.dtype {
        DType::F32 => Elems::F32(
            offsets.iter().map(|&o| u32::from_le_bytes(image[4 * o..4 * o + 4].try_into().expect("4 bytes"))).collect(),
        ),
        DType::U8 => Elems::Int(offsets.iter().map(|&o| image[o] as i32).collect()),
        _ => Elems::Int(offsets.iter().map(|&o| image[o] as i8 as i32).collect()),
    }
}

/// Every non-view layer's buffer and the outputs against the interpreter;
/// returns the layers compared.
fn check_run<D: Device>(
    drv: &mut Driver<D>,
    model: Compiled<'_>,
    graph: &Graph,
    inputs: &[Tensor],
    lanes: usize,
    run: RunNumber,
) -> Result<usize> {
    let vals = run_with_lanes(graph, inputs, lanes)
        .map_err(|e| FlowError::input(format!("--check: the reference interpreter failed on {run}: {e}")))?;
    let mut compared = 0;
    for l in model.layers.iter().filter(|l| !l.is_view()) {
        let id = graph.value(&l.value).ok_or_else(|| {
            FlowError::input(format!(
                "--check: layer `{}` writes `{}`, which the recorded graph does not have",
                l.name, l.value
            ))
        })?;
        let size = l.dtype.size_bytes() as usize;
        let image = drv
            .read_mem(l.addr, l.layout.bytes() * size)
            .map_err(|e| FlowError::input(format!("--check: reading layer `{}`'s buffer: {e}", l.name)))?;
        let want = &vals[id];
        let diff = match (device_elems(&image, l), &want.data) {
            (Elems::F32(got), TensorData::Float(w)) => first_diff(got.len(), w.len(), |i| {
                (got[i] != w[i].to_bits()).then(|| {
                    (
                        format!("{:?} ({:#010x})", f32::from_bits(got[i]), got[i]),
                        format!("{:?} ({:#010x})", w[i], w[i].to_bits()),
                    )
                })
            }),
            (Elems::Int(got), TensorData::Quant(w)) => {
                first_diff(got.len(), w.len(), |i| (got[i] != w[i]).then(|| (got[i].to_string(), w[i].to_string())))
            }
            _ => {
                return Err(FlowError::input(format!(
                    "--check: layer `{}`: the device holds {}, the reference another type",
                    l.name, l.dtype
                )))
            }
        };
        compared += 1;
        if let Some((i, count, got, w)) = diff {
            let cols = *l.shape.last().unwrap_or(&1) as usize;
            return Err(FlowError::check(format!(
                "check failed: {run}, layer `{}` ({}, instructions {}..{}), value `{}` {}: element {i} [row={}, col={}]: \
                 device {got}, reference {w}; {count} of {} elements differ",
                l.name,
                l.op,
                l.first,
                l.last,
                l.value,
                shape_text(&l.shape),
                i / cols.max(1),
                i % cols.max(1),
                want.len()
            )));
        }
    }
    Ok(compared)
}

/// The first differing element (index, how many differ, device, reference).
fn first_diff(
    got: usize,
    want: usize,
    mut differs: impl FnMut(usize) -> Option<(String, String)>,
) -> Option<(usize, usize, String, String)> {
    if got != want {
        return Some((0, want, format!("{got} elements"), format!("{want} elements")));
    }
    let mut first = None;
    let mut count = 0;
    for i in 0..got {
        if let Some((g, w)) = differs(i) {
            count += 1;
            first.get_or_insert((i, g, w));
        }
    }
    first.map(|(i, g, w)| (i, count, g, w))
}

/// A transformer's layers by role, for the report's shares: attention's
/// projections (Linear layers named `attention`/`attn`), scores and context
/// (activation × activation MatMuls lowered one by one, alternating),
/// softmax, fused attention (Q·Kᵀ, Softmax and P·V as one phase: one
/// record, `LayerOp::Attention`), FFN (the other Linear layers and GELU),
/// LayerNorm, other vector work (bias and residual adds,
/// quantize/dequantize, sums) and copies (with the embedding and mask
/// gathers: data movement, no arithmetic).
pub const ROLES: [&str; 9] =
    ["projections", "scores", "softmax", "context", "attention", "FFN", "LayerNorm", "other vector", "copies"];

/// The indices into [`ROLES`] of attention's roles, and of FFN, LayerNorm
/// and the rest, for the report's shares.
pub const ATTENTION_ROLES: std::ops::Range<usize> = 0..5;
pub const FFN_ROLE: usize = 5;
pub const LAYER_NORM_ROLE: usize = 6;
pub const OTHER_ROLES: std::ops::Range<usize> = 7..9;

/// The role (an index into [`ROLES`]) of each of a program's layers.
pub fn roles(layers: &[LayerMeta]) -> Vec<usize> {
    use isa::program::LayerOp as L;
    let mut matmuls = 0;
    layers
        .iter()
        .map(|l| {
            let attention = l.name.contains("attention") || l.name.contains("attn");
            match l.op {
                L::Dense | L::DenseF32 if attention => 0,
                L::MatMul => {
                    matmuls += 1;
                    if matmuls % 2 == 1 {
                        1
                    } else {
                        3
                    }
                }
                L::Softmax => 2,
                L::Attention => 4,
                L::Dense | L::DenseF32 | L::Gelu => FFN_ROLE,
                L::LayerNorm => LAYER_NORM_ROLE,
                L::Copy | L::Reshape | L::Flatten | L::Concat | L::Gather => 8,
                _ => 7,
            }
        })
        .collect()
}
