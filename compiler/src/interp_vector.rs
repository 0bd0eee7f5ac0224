//! The reference interpreter's transformer ops (`Op::is_transformer_op`)
//! and data movement of float and int64 values. All float arithmetic goes
//! through the vector unit's numerics (`isa::numerics::vector`), element by
//! element in row-major order, reductions over a row in `lanes`-wide
//! partial sums; integer products (act × act matmul, dense to float)
//! accumulate in wrapping int32 as the array does.
//!
//! Semantics, op by op (`x`, `y` as in `interp`):
//! - **Constant**: its data.
//! - **MaskSelect**: `y[i] = if x[index[i]] == 0 { if_zero[i] } else { if_nonzero[i] }`.
//! - **Embedding**: `y[p, :] = table[x[p], :]`; an id outside `0..rows`
//!   is an error naming its position.
//! - **DenseF32**: `acc = bias[n] + Σ_k (x − zx)·w[n][k]` (wrapping int32),
//!   `y = dequantize(acc, mul(s_x, s_w[n]), 0)`.
//! - **MatMul**: `acc = Σ_k (a − za)(b − zb)` per leading index; float out
//!   `dequantize(acc, mul(s_a, s_b), 0)`; quantized out
//!   `requantize(acc, requant_scale(s_a, s_b, s_y), zy, type range)`.
//! - **Binary / Unary / Gelu**: the vector function per element, inputs
//!   broadcast as numpy does.
//! - **LayerNorm**: `layer_norm_row` on every last-axis row.
//! - **Softmax**: `softmax_row` on every last-axis row.
//! - **ReduceSum**: `sum_row` over the axis (the elements along it, in order).
//! - **Slice / Flatten / Reshape / Transpose / Concat** on float or int64
//!   values: the same data movement as on quantized ones.

use isa::numerics::{dequantize, requant_scale, requantize, vector};

use crate::interp::{Tensor, TensorData};
use crate::ir::{broadcast, BinaryOp, ElemType, GeluForm, Graph, Node, Op, UnaryOp, Value};
use crate::strided::{broadcast_index, transpose_index};

/// Whether `eval` here handles the node (rather than the quantized ops').
pub(crate) fn handles(g: &Graph, n: &Node) -> bool {
    let y = &g.values[n.outputs[0]];
    n.op.is_transformer_op()
        || (matches!(y.ty, ElemType::F32 | ElemType::I64)
            && matches!(n.op, Op::Flatten { .. } | Op::Reshape { .. } | Op::Transpose { .. } | Op::Concat { .. }))
}

fn floats<'t>(t: &'t Tensor, v: &Value) -> Result<&'t [f32], String> {
    t.as_float().ok_or_else(|| format!("`{}` should hold floats", v.name))
}

fn ints<'t>(t: &'t Tensor, v: &Value) -> Result<&'t [i32], String> {
    t.as_quant().ok_or_else(|| format!("`{}` should hold integers", v.name))
}

struct Qz {
    scale: f32,
    zp: i32,
}

fn qz(v: &Value) -> Result<Qz, String> {
    let q = v.quant.ok_or_else(|| format!("value `{}` has no quantization", v.name))?;
    if !(q.scale.is_finite() && q.scale > 0.0) {
        return Err(format!("value `{}` has scale {}, it must be finite and positive", v.name, q.scale));
    }
    Ok(Qz { scale: q.scale, zp: q.zero_point })
}

/// Evaluates a node `handles` accepts on its input tensors.
pub(crate) fn eval(g: &Graph, n: &Node, ins: &[&Tensor], lanes: usize) -> Result<TensorData, String> {
    let iv: Vec<&Value> = n.inputs.iter().map(|&i| &g.values[i]).collect();
    let yv = &g.values[n.outputs[0]];
    Ok(match &n.op {
        Op::Constant { data, .. } => TensorData::Float(data.clone()),
        Op::MaskSelect { index, if_zero, if_nonzero, .. } => {
            let m = ints(ins[0], iv[0])?;
            TensorData::Float(
                index.iter().enumerate().map(|(i, &k)| if m[k] == 0 { if_zero[i] } else { if_nonzero[i] }).collect(),
            )
        }
        Op::Embedding(e) => {
            let ids = ints(ins[0], iv[0])?;
            let mut out = Vec::with_capacity(ids.len() * e.cols);
            for (p, &id) in ids.iter().enumerate() {
                if id < 0 || id as usize >= e.rows {
                    return Err(format!(
                        "id {id} at position {p} of `{}` is outside the table's {} rows",
                        iv[0].name, e.rows
                    ));
                }
                let r = id as usize * e.cols;
                out.extend(e.table[r..r + e.cols].iter().map(|&w| w as i32));
            }
            TensorData::Quant(out)
        }
        Op::DenseF32(d) => {
            let xq = qz(iv[0])?;
            let xs = ints(ins[0], iv[0])?;
            if d.weights.len() != d.n * d.k || d.w_scale.len() != d.n || d.bias.len() != d.n {
                return Err(format!("weights, scales or biases do not fit {} x {}", d.n, d.k));
            }
            let scales: Vec<f32> = d.w_scale.iter().map(|&s| vector::mul(xq.scale, s)).collect();
            let mut out = Vec::with_capacity(xs.len() / d.k * d.n);
            for row in xs.chunks_exact(d.k) {
                for ((w, &b), &s) in d.weights.chunks_exact(d.k).zip(&d.bias).zip(&scales) {
                    let acc =
                        row.iter().zip(w).fold(b, |a, (&x, &w)| a.wrapping_add((x - xq.zp).wrapping_mul(w as i32)));
                    out.push(dequantize(acc, s, 0));
                }
            }
            TensorData::Float(out)
        }
        Op::MatMul => matmul(&iv, yv, ins)?,
        Op::Binary(op) => {
            let (a, b) = (floats(ins[0], iv[0])?, floats(ins[1], iv[1])?);
            let f = match op {
                BinaryOp::Add => vector::add,
                BinaryOp::Sub => vector::sub,
                BinaryOp::Mul => vector::mul,
                BinaryOp::Div => vector::div,
                BinaryOp::Max => vector::max,
            };
            let shape = broadcast(&iv[0].shape, &iv[1].shape).ok_or("the inputs do not broadcast")?;
            let (ia, ib) = (broadcast_index(&iv[0].shape, &shape), broadcast_index(&iv[1].shape, &shape));
            TensorData::Float(ia.iter().zip(&ib).map(|(&i, &j)| f(a[i], b[j])).collect())
        }
        Op::Unary(u) => {
            let f = match u {
                UnaryOp::Erf => vector::erf,
                UnaryOp::Tanh => vector::tanh,
            };
            TensorData::Float(floats(ins[0], iv[0])?.iter().map(|&x| f(x)).collect())
        }
        Op::Gelu(form) => {
            let f = match form {
                GeluForm::Erf => vector::gelu_erf,
                GeluForm::Tanh => vector::gelu_tanh,
            };
            TensorData::Float(floats(ins[0], iv[0])?.iter().map(|&x| f(x)).collect())
        }
        Op::LayerNorm { gamma, beta, eps } => {
            let xs = floats(ins[0], iv[0])?;
            let row = gamma.len().max(1);
            TensorData::Float(
                xs.chunks(row).flat_map(|r| vector::layer_norm_row(r, gamma, beta, *eps, lanes)).collect(),
            )
        }
        Op::Softmax => {
            let xs = floats(ins[0], iv[0])?;
            let row = iv[0].shape.last().copied().unwrap_or(1).max(1);
            TensorData::Float(xs.chunks(row).flat_map(|r| vector::softmax_row(r, lanes)).collect())
        }
        Op::ReduceSum { axis, .. } => {
            let xs = floats(ins[0], iv[0])?;
            let s = &iv[0].shape;
            let (outer, len): (usize, usize) = (s[..*axis].iter().product(), s[*axis]);
            let inner: usize = s[axis + 1..].iter().product();
            let mut out = Vec::with_capacity(outer * inner);
            let mut col = Vec::with_capacity(len);
            for o in 0..outer {
                for i in 0..inner {
                    col.clear();
                    col.extend((0..len).map(|k| xs[(o * len + k) * inner + i]));
                    out.push(vector::sum_row(&col, lanes));
                }
            }
            TensorData::Float(out)
        }
        Op::Slice { axis, start, end } => {
            let s = &iv[0].shape;
            let (outer, len): (usize, usize) = (s[..*axis].iter().product(), s[*axis]);
            let inner: usize = s[axis + 1..].iter().product();
            let pick = |o: usize| (o * len + start) * inner..(o * len + end) * inner;
            match &ins[0].data {
                TensorData::Float(v) => TensorData::Float((0..outer).flat_map(|o| v[pick(o)].to_vec()).collect()),
                TensorData::Quant(v) => TensorData::Quant((0..outer).flat_map(|o| v[pick(o)].to_vec()).collect()),
            }
        }
        Op::Flatten { .. } | Op::Reshape { .. } => ins[0].data.clone(),
        Op::Transpose { perm } => {
            let idx = transpose_index(&iv[0].shape, perm);
            match &ins[0].data {
                TensorData::Float(v) => TensorData::Float(idx.iter().map(|&i| v[i]).collect()),
                TensorData::Quant(v) => TensorData::Quant(idx.iter().map(|&i| v[i]).collect()),
            }
        }
        Op::Concat { axis } => {
            let oshape = &yv.shape;
            let outer: usize = oshape[..*axis].iter().product();
            let mut fl = Vec::new();
            let mut qu = Vec::new();
            for o in 0..outer {
                for (t, v) in ins.iter().zip(&iv) {
                    let chunk: usize = v.shape[*axis..].iter().product();
                    match &t.data {
                        TensorData::Float(d) => fl.extend_from_slice(&d[o * chunk..(o + 1) * chunk]),
                        TensorData::Quant(d) => qu.extend_from_slice(&d[o * chunk..(o + 1) * chunk]),
                    }
                }
            }
            if yv.ty == ElemType::F32 {
                TensorData::Float(fl)
            } else {
                TensorData::Quant(qu)
            }
        }
        other => return Err(format!("internal: {} is not a transformer op", other.name())),
    })
}

fn matmul(iv: &[&Value], yv: &Value, ins: &[&Tensor]) -> Result<TensorData, String> {
    let (aq, bq) = (qz(iv[0])?, qz(iv[1])?);
    let (a, b) = (ints(ins[0], iv[0])?, ints(ins[1], iv[1])?);
    let (sa, sb) = (&iv[0].shape, &iv[1].shape);
    let r = sa.len();
    let (m, k, nn) = (sa[r - 2], sa[r - 1], sb[r - 1]);
    let batch: usize = sa[..r - 2].iter().product();
    let mut accs = Vec::with_capacity(batch * m * nn);
    for bi in 0..batch {
        let (ab, bb) = (&a[bi * m * k..(bi + 1) * m * k], &b[bi * k * nn..(bi + 1) * k * nn]);
        for i in 0..m {
            for j in 0..nn {
                let acc = (0..k)
                    .fold(0i32, |s, t| s.wrapping_add((ab[i * k + t] - aq.zp).wrapping_mul(bb[t * nn + j] - bq.zp)));
                accs.push(acc);
            }
        }
    }
    Ok(match yv.ty.range() {
        None => {
            let s = vector::mul(aq.scale, bq.scale);
            TensorData::Float(accs.into_iter().map(|acc| dequantize(acc, s, 0)).collect())
        }
        Some((lo, hi)) => {
            let y = qz(yv)?;
            let s = requant_scale(aq.scale, bq.scale, y.scale);
            TensorData::Quant(accs.into_iter().map(|acc| requantize(acc, s, y.zp, lo, hi)).collect())
        }
    })
}
