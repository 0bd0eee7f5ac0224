//! A model run in the reference interpreter with its inputs by name: what
//! `systole run` does on the device, for graphs that have several inputs
//! (a transformer's token ids, attention mask and token types) or that the
//! accelerator cannot run yet. Each input is an array of its graph input's
//! shape (one inference) or with one more leading dimension (a batch,
//! which every batched input must agree on); int64 arrays feed int64
//! inputs, float32 arrays float inputs, int8/uint8 arrays quantized ones.
//! Each output comes back by name as float32 (a quantized output
//! dequantized), stacked along the batch dimension when there is one.

use super::{shape_text, FlowError, Result};
use compiler::interp::{run_named_with_lanes, Tensor, TensorData};
use compiler::ir::{ElemType, Graph};
use compiler::npy::{Array, Elem};

/// One output of [`run_named`]: its name, shape (with the batch dimension
/// when the inputs had one) and float32 elements.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedOutput {
    pub name: String,
    pub shape: Vec<u64>,
    pub data: Vec<f32>,
}

/// An array's elements as the interpreter holds its input type.
fn elements(a: &Array, ty: ElemType, what: &str) -> Result<TensorData> {
    let bytes = &a.data;
    Ok(match (a.elem, ty) {
        (Elem::F32, ElemType::F32) => TensorData::Float(
            bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect(),
        ),
        (Elem::I64, ElemType::I64) => {
            let mut v = Vec::with_capacity(bytes.len() / 8);
            for (i, c) in bytes.chunks_exact(8).enumerate() {
                let x = i64::from_le_bytes(c.try_into().expect("8 bytes"));
                v.push(i32::try_from(x).map_err(|_| {
                    FlowError::input(format!(
                        "{what}: element {i} is {x}, outside the int32 range (and so outside any table or mask the \
                         model indexes)"
                    ))
                })?);
            }
            TensorData::Quant(v)
        }
        (Elem::I8, ElemType::I8) => TensorData::Quant(bytes.iter().map(|&b| b as i8 as i32).collect()),
        (Elem::U8, ElemType::U8) => TensorData::Quant(bytes.iter().map(|&b| b as i32).collect()),
        (e, t) => {
            return Err(FlowError::input(format!(
                "{what}: the array is {}, the model's input is {}",
                e.name(),
                t.name()
            )))
        }
    })
}

/// The runs `inputs` (name, array) make for `graph`: one, or one per
/// entry of a batch (every batched input agreeing on its size); each run's
/// inputs by name, as the interpreter takes them.
pub fn named_runs(graph: &Graph, inputs: &[(String, Array)]) -> Result<Vec<Vec<(String, Tensor)>>> {
    let mut runs: Option<usize> = None;
    let mut per_input = Vec::new();
    for &id in &graph.inputs {
        let v = &graph.values[id];
        let given: Vec<&(String, Array)> = inputs.iter().filter(|(n, _)| *n == v.name).collect();
        let [(_, a)] = given[..] else {
            return Err(FlowError::input(format!(
                "the model's input `{}` is given {} times; give it once as --input {}=FILE.npy",
                v.name,
                given.len(),
                v.name
            )));
        };
        let what = format!("--input {}", v.name);
        let want: Vec<u64> = v.shape.iter().map(|&d| d as u64).collect();
        let batch = if a.shape == want {
            None
        } else if a.shape.len() == want.len() + 1 && a.shape[1..] == want[..] {
            Some(a.shape[0] as usize)
        } else {
            return Err(FlowError::input(format!(
                "{what}: the array's shape is {}, the input's is {} (or N x that, a batch)",
                shape_text(&a.shape),
                shape_text(&want)
            )));
        };
        if let Some(n) = batch {
            if runs.is_some_and(|r| r != n) {
                return Err(FlowError::input(format!(
                    "{what}: a batch of {n}, another input has {}",
                    runs.unwrap_or(0)
                )));
            }
            runs = Some(n);
        }
        per_input.push((v.name.clone(), v.shape.clone(), batch.is_some(), elements(a, v.ty, &what)?));
    }
    if let Some((n, _)) = inputs.iter().find(|(n, _)| !graph.inputs.iter().any(|&i| graph.values[i].name == *n)) {
        return Err(FlowError::input(format!("--input {n}: the model has no input of that name")));
    }
    let count = runs.unwrap_or(1);
    if count == 0 {
        return Err(FlowError::input("the batch is empty"));
    }
    Ok((0..count)
        .map(|k| {
            per_input
                .iter()
                .map(|(name, shape, batched, data)| {
                    let n: usize = shape.iter().product();
                    let range = if *batched { k * n..(k + 1) * n } else { 0..n };
                    let data = match data {
                        TensorData::Float(v) => TensorData::Float(v[range].to_vec()),
                        TensorData::Quant(v) => TensorData::Quant(v[range].to_vec()),
                    };
                    (name.clone(), Tensor { shape: shape.clone(), data })
                })
                .collect()
        })
        .collect())
}

/// Runs `graph` on `inputs` (name, array) in the reference interpreter
/// with the vector unit's `lanes`; every graph input must be given once.
pub fn run_named(graph: &Graph, inputs: &[(String, Array)], lanes: usize) -> Result<Vec<NamedOutput>> {
    let all = named_runs(graph, inputs)?;
    let batched = inputs.iter().any(|(n, a)| {
        graph.inputs.iter().any(|&i| graph.values[i].name == *n && a.shape.len() == graph.values[i].shape.len() + 1)
    });
    let count = all.len();
    let mut outs: Vec<NamedOutput> = graph
        .outputs
        .iter()
        .map(|&o| {
            let v = &graph.values[o];
            let mut shape: Vec<u64> = v.shape.iter().map(|&d| d as u64).collect();
            if batched {
                shape.insert(0, count as u64);
            }
            NamedOutput { name: v.name.clone(), shape, data: Vec::new() }
        })
        .collect();
    for (k, named) in all.iter().enumerate() {
        let named: Vec<(&str, Tensor)> = named.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
        let vals = run_named_with_lanes(graph, &named, lanes)
            .map_err(|e| FlowError::input(if batched { format!("run {k}: {e}") } else { e.to_string() }))?;
        for (out, &o) in outs.iter_mut().zip(&graph.outputs) {
            let v = &graph.values[o];
            match (&vals[o].data, v.quant) {
                (TensorData::Float(x), _) => out.data.extend_from_slice(x),
                (TensorData::Quant(x), Some(q)) => {
                    out.data.extend(x.iter().map(|&i| isa::numerics::dequantize(i, q.scale, q.zero_point)))
                }
                (TensorData::Quant(x), None) => out.data.extend(x.iter().map(|&i| i as f32)),
            }
        }
    }
    Ok(outs)
}
