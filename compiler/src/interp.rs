//! The reference interpreter: what a quantized graph computes, bit for bit.
//!
//! Every op is defined in terms of `isa::numerics` (docs/DESIGN.md §2), the one
//! definition of the arithmetic that the accelerator, its Rust model and the
//! RTL also implement, so a lowered graph must reproduce these integers
//! exactly. For QLinearConv, QLinearMatMul / QGemm and MaxPool they are also
//! ONNX Runtime's integers, bit for bit; for average pooling and element-wise
//! add the accelerator has its own integer definitions (below), whose
//! agreement with ORT is measured, not assumed.
//!
//! Quantized values are carried as `i32` in their type's range
//! (`-128..=127` for int8, `0..=255` for uint8), floats as `f32`; tensors are
//! row-major, activations NCHW.
//!
//! # Semantics, op by op
//!
//! Below, `x` is the (first) input with scale `s_x` and zero point `zx`, `y`
//! the output with `s_y`, `zy`; "the type range" is the output type's
//! `(qmin, qmax)`.
//!
//! - **Quantize** (float → quantized): `numerics::quantize(x, s_y, zy, qmin,
//!   qmax)` with the type range (ONNX QuantizeLinear).
//! - **Dequantize** (quantized → float): `vector::dequantize(q, s_x, zx)`.
//! - **Conv** (NCHW, groups, strides, dilations, pads `[top, left, bottom,
//!   right]`): the input is padded with its zero point `zx`, as ONNX Runtime
//!   does. Output channel `m` of group `g` reduces over the receptive field in
//!   the order `(kh, kw, cin)` (docs/DESIGN.md §2), starting from the folded bias:
//!   `acc = fold_zero_point(bias[m], zx, Σ w[m])`, then `acc += x·w` with the
//!   raw integer `x` (padding reads `zx`), all in wrapping int32. This equals
//!   `bias[m] + Σ (x − zx)·w` over the unpadded input exactly (padding
//!   contributes `(zx − zx)·w = 0`). Then
//!   `q = requantize(acc, requant_scale(s_x, s_w[m], s_y), zy, qmin, qmax)`
//!   with the node's clamp `(qmin, qmax)` (fused ReLU/Clip).
//! - **Dense**: the same for `out[.., n] = Σ_k x[.., k]·w[n][k]`, over every
//!   leading index of `x`.
//! - **MaxPool**: the maximum over the window positions that lie inside the
//!   input; padding never wins (ONNX Runtime's semantics). Pads must be
//!   smaller than the kernel (ORT enforces this), so no window is empty. The
//!   integer passes through when the output's type and quantization equal
//!   the input's; otherwise the maximum is *rescaled* (see below), which
//!   commutes with the maximum because it is monotone.
//! - **AvgPool**: ONNX Runtime's definitions, bit for bit (its source:
//!   `contrib_ops/cpu/quantization/qlinear_pool.cc`; pinned by
//!   `tests/ort_pool.rs` on over a million outputs). `count` = the kernel
//!   size `kh·kw` if `count_include_pad`, otherwise the number of window
//!   positions inside the input.
//!   - Global (the window is the whole unpadded input, where ORT's
//!     QLinearAveragePool falls back to MLAS's QLinearGlobalAveragePool):
//!     `s = Σ (x − zx)` in wrapping int32, then
//!     `q = requantize(s, avgpool_scale(s_x, s_y, count), zy, qmin, qmax)`
//!     with `avgpool_scale = f32(s_x / f32(s_y · f32(count)))` (MLAS's x86
//!     and portable paths; its ARM path uses a fixed-point multiplier).
//!   - Windowed: in binary32 (`numerics::vector`), `acc = 0`, then
//!     `acc += f32(x − zx) · s_x` over the window positions inside the
//!     input in row-major order, `v = acc / f32(count) / s_y + f32(zy)`,
//!     `q = clamp(round_half_even(v), type range)`. ORT converts with
//!     `static_cast<int32_t>(nearbyintf(v))`, undefined from 2^31, so
//!     scales whose ratio could reach it are refused
//!     (`check_avgpool_range`).
//! - **Add**: `numerics::qadd(a, b, qadd_params(s_a, s_b, s_o, za, zb, zo),
//!   qmin, qmax)` with the node's clamp: exactly what the accelerator's VADD
//!   computes, which is ONNX Runtime's QLinearAdd bit for bit (pinned by
//!   `isa/tests/ort_qlinear_add.rs`).
//! - **Clamp**: `min(max(q, qmin), qmax)` (after rescaling, if the output's
//!   quantization differs from the input's).
//! - **Flatten / Reshape**: the same row-major data under the output's shape.
//! - **Transpose**: `y[i_0, .., i_r] = x[j]` with `j[perm[d]] = i_d`.
//! - **Concat**: the inputs' data, concatenated along the axis, each input
//!   through the identity's table to the output's quantization (below):
//!   ONNX Runtime's QLinearConcat bit for bit.
//! - **Resize** (nearest): `y[n, c, oy, ox] = x[n, c, rows[oy], cols[ox]]`
//!   through the identity's table (the output may be quantized differently).
//! - **ResizeLinear**: ONNX Runtime's bilinear Resize (`crate::resize`):
//!   the binary32 interpolation of the four neighbours, truncated toward
//!   zero on the integers (QOperator; the output keeps the input's
//!   quantization), or of the dequantized neighbours then `quantize` into
//!   the output's quantization (QDQ); or, where ORT runs it channels-last
//!   (a QOperator Resize after a QLinearConv), its integer kernel: 2^10
//!   integer weights, the int32 sum / 2^20 toward zero.
//! - **Lut** (Sigmoid, Tanh, HardSigmoid, HardSwish, LeakyRelu, Clip and
//!   requantization): each value through the 256-entry table
//!   `lut::table(f, x's type and quantization, y's)`: dequantize, the op in
//!   binary32 as ORT's CPU kernels compute it, quantize as MLAS does —
//!   ORT's QLinearSigmoid / QLinearLeakyRelu and DQ -> op -> Q bit for bit
//!   (`tests/lut_ort.rs`).
//!
//! **Rescaling** (an integer moved to another scale / zero point / type, for
//! the data-movement ops above): the accelerator's VADD with the second
//! operand switched off (`rb = 0`): `qadd(v, 0, p, qmin, qmax)` with
//! `p = qadd_fold(f32(s_x / s_y), 0, zx, 0, zy)` (see [`rescale_params`]) and
//! the type range, i.e. `cvt_rne(fma(v, f32(s_x/s_y), zy − f32(f32(s_x/s_y)·zx)))`.
//! Equal scales give `clamp(v − zx + zy)` exactly. An op whose
//! output has the same type, scale (same bits) and zero point as its input
//! passes the integers through unchanged.
//!
//! # Errors
//!
//! [`run`] first checks the graph ([`Graph::validate`]: arity, types,
//! shapes, order) and the op parameters it relies on (weight, scale and bias
//! lengths, non-zero kernels, strides and dilations, pads smaller than pooling
//! kernels, scales finite and positive, zero points and clamps within the
//! type range), and the inputs (count, kind, shape, values in range). Every
//! failure is an [`InterpError`] naming the node or input; nothing panics.

use std::collections::HashSet;

use isa::numerics::vector;
use isa::numerics::{
    self, fold_zero_point, qadd, qadd_fold, qadd_params, quantize, requant_scale, requantize, QaddParams,
};

use crate::ir::{ConvParams, DenseParams, ElemType, Graph, GraphError, Node, Op, PoolParams, Quant, Value, ValueId};
use crate::lut::{self, UnaryFn};

/// The data of a tensor.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    /// Quantized values, each in its type's integer range.
    Quant(Vec<i32>),
    Float(Vec<f32>),
}

/// A row-major tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: TensorData,
}

impl Tensor {
    pub fn quant(shape: Vec<usize>, data: Vec<i32>) -> Tensor {
        Tensor { shape, data: TensorData::Quant(data) }
    }

    pub fn float(shape: Vec<usize>, data: Vec<f32>) -> Tensor {
        Tensor { shape, data: TensorData::Float(data) }
    }

    pub fn from_i8(shape: Vec<usize>, data: &[i8]) -> Tensor {
        Tensor::quant(shape, data.iter().map(|&v| v as i32).collect())
    }

    pub fn from_u8(shape: Vec<usize>, data: &[u8]) -> Tensor {
        Tensor::quant(shape, data.iter().map(|&v| v as i32).collect())
    }

    /// What [`run`] returns for a value it never computed: no shape, no data.
    pub fn empty() -> Tensor {
        Tensor::quant(Vec::new(), Vec::new())
    }

    /// Number of elements held.
    pub fn len(&self) -> usize {
        match &self.data {
            TensorData::Quant(v) => v.len(),
            TensorData::Float(v) => v.len(),
        }
    }

    /// True for a tensor without data (e.g. a value [`run`] never computed).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn as_quant(&self) -> Option<&[i32]> {
        match &self.data {
            TensorData::Quant(v) => Some(v),
            TensorData::Float(_) => None,
        }
    }

    pub fn as_float(&self) -> Option<&[f32]> {
        match &self.data {
            TensorData::Float(v) => Some(v),
            TensorData::Quant(_) => None,
        }
    }
}

/// Why a graph could not be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpError {
    /// The graph itself is inconsistent (see [`Graph::validate`]).
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error("the graph has {expected} input(s), {given} tensor(s) were given")]
    InputCount { expected: usize, given: usize },
    /// A tensor given for a graph input does not fit it.
    #[error("graph input `{name}`: {why}")]
    Input { name: String, why: String },
    /// A node's parameters or inputs do not fit its op.
    #[error("node `{node}` ({op}): {why}")]
    Node { node: String, op: &'static str, why: String },
}

/// The parameters of the VADD that moves a quantized value from scale `s_x`,
/// zero point `zx` to scale `s_y`, zero point `zy` (second operand off,
/// `rb = 0`): `qadd_fold(f32(s_x / s_y), 0, zx, 0, zy)`.
pub fn rescale_params(s_x: f32, s_y: f32, zx: i32, zy: i32) -> QaddParams {
    qadd_fold(s_x / s_y, 0.0, zx, 0, zy)
}

/// The requantization scale of an average over `count` elements:
/// `f32(s_x / f32(s_y · f32(count)))` — three f32 operations in this order,
/// as ONNX Runtime's QLinearGlobalAveragePool computes it.
pub fn avgpool_scale(s_x: f32, s_y: f32, count: usize) -> f32 {
    s_x / (s_y * count as f32)
}

/// Runs `graph` on `inputs` (in `graph.inputs` order) and returns the tensor
/// of every value, indexed by `ValueId`; values no node computes (and that
/// are not inputs) are [`Tensor::empty`].
pub fn run(graph: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>, InterpError> {
    run_with_lanes(graph, inputs, DEFAULT_VECTOR_LANES)
}

/// The vector unit's lane count when no configuration says otherwise (the
/// default array's 16 columns): reductions over a row run this many
/// partial sums.
pub const DEFAULT_VECTOR_LANES: usize = 16;

/// [`run`] with the vector unit's lane count (`HwConfig`'s vector lanes),
/// which fixes the order of the transformer ops' row reductions.
pub fn run_with_lanes(graph: &Graph, inputs: &[Tensor], lanes: usize) -> Result<Vec<Tensor>, InterpError> {
    if lanes == 0 {
        let why = "the vector unit needs at least one lane".to_string();
        return Err(GraphError { node: "(graph)".into(), op: "config", why }.into());
    }
    precheck(graph)?;
    graph.validate()?;
    if inputs.len() != graph.inputs.len() {
        return Err(InterpError::InputCount { expected: graph.inputs.len(), given: inputs.len() });
    }
    let mut vals = vec![Tensor::empty(); graph.values.len()];
    for (&id, t) in graph.inputs.iter().zip(inputs) {
        let v = &graph.values[id];
        check_input(v, t).map_err(|why| InterpError::Input { name: v.name.clone(), why })?;
        vals[id] = t.clone();
    }
    for node in &graph.nodes {
        let out = eval(graph, node, vals.as_slice(), lanes).map_err(|why| node_err(node, why))?;
        vals[node.outputs[0]] = out;
    }
    Ok(vals)
}

/// Why [`run_streaming`] stopped.
#[derive(Debug)]
pub enum StreamError<E> {
    /// The graph, a given value or a node is wrong (as for [`run`]).
    Interp(InterpError),
    /// The visitor stopped the run.
    Visit(E),
}

/// [`run`] without keeping every value: memory is the values still to be
/// read, not all of them. `given` seeds values — the graph's inputs, or
/// any value, in which case the nodes computing given values are skipped
/// (e.g. a quantized input given in place of its QuantizeLinear). Each
/// computed value is handed to `visit` as soon as it exists and freed
/// after the last node that reads it; `visit` returning `Err` stops the
/// run.
pub fn run_streaming<E>(
    graph: &Graph,
    given: Vec<(ValueId, Tensor)>,
    mut visit: impl FnMut(ValueId, &Tensor) -> Result<(), E>,
) -> Result<(), StreamError<E>> {
    let interp = StreamError::Interp;
    precheck(graph).map_err(interp)?;
    graph.validate().map_err(|e| interp(e.into()))?;
    let mut vals: Vec<Option<Tensor>> = vec![None; graph.values.len()];
    for (id, t) in given {
        let Some(v) = graph.values.get(id) else {
            let why = "is not a value of the graph".to_string();
            return Err(interp(InterpError::Input { name: format!("#{id}"), why }));
        };
        check_input(v, &t).map_err(|why| interp(InterpError::Input { name: v.name.clone(), why }))?;
        vals[id] = Some(t);
    }
    let skipped: Vec<bool> = graph.nodes.iter().map(|n| vals[n.outputs[0]].is_some()).collect();
    // The index of the last node reading each value.
    let mut last_use: Vec<Option<usize>> = vec![None; graph.values.len()];
    for (k, n) in graph.nodes.iter().enumerate().filter(|(k, _)| !skipped[*k]) {
        for &i in &n.inputs {
            last_use[i] = Some(k);
        }
    }
    for (id, v) in vals.iter_mut().enumerate() {
        if last_use[id].is_none() {
            *v = None;
        }
    }
    for (k, node) in graph.nodes.iter().enumerate().filter(|(k, _)| !skipped[*k]) {
        if let Some(&i) = node.inputs.iter().find(|&&i| vals[i].is_none()) {
            let why = format!("its input `{}` is neither given nor computed", graph.values[i].name);
            return Err(interp(node_err(node, why)));
        }
        let out =
            eval(graph, node, vals.as_slice(), DEFAULT_VECTOR_LANES).map_err(|why| interp(node_err(node, why)))?;
        for &i in &node.inputs {
            if last_use[i] == Some(k) {
                vals[i] = None;
            }
        }
        let id = node.outputs[0];
        visit(id, &out).map_err(StreamError::Visit)?;
        if last_use[id].is_some() {
            vals[id] = Some(out);
        }
    }
    Ok(())
}

/// [`run`] with the inputs given by name; every graph input must be named
/// exactly once.
pub fn run_named(graph: &Graph, inputs: &[(&str, Tensor)]) -> Result<Vec<Tensor>, InterpError> {
    run_named_with_lanes(graph, inputs, DEFAULT_VECTOR_LANES)
}

/// [`run_named`] with the vector unit's lane count.
pub fn run_named_with_lanes(
    graph: &Graph,
    inputs: &[(&str, Tensor)],
    lanes: usize,
) -> Result<Vec<Tensor>, InterpError> {
    let input_err = |name: &str, why: &str| InterpError::Input { name: name.to_string(), why: why.to_string() };
    let mut seen = HashSet::new();
    for (name, _) in inputs {
        if !graph.inputs.iter().any(|&i| graph.values.get(i).is_some_and(|v| v.name == *name)) {
            return Err(input_err(name, "is not an input of the graph"));
        }
        if !seen.insert(*name) {
            return Err(input_err(name, "is given more than once"));
        }
    }
    let mut ordered = Vec::with_capacity(graph.inputs.len());
    for &i in &graph.inputs {
        let Some(v) = graph.values.get(i) else {
            return Err(input_err(&format!("#{i}"), "does not exist"));
        };
        match inputs.iter().find(|(n, _)| *n == v.name) {
            Some((_, t)) => ordered.push(t.clone()),
            None => return Err(input_err(&v.name, "is not given")),
        }
    }
    run_with_lanes(graph, &ordered, lanes)
}

/// The values a node reads, by id: all of them ([`run`]) or the live ones
/// ([`run_streaming`]; a freed value reads as empty).
trait Values {
    fn value(&self, id: ValueId) -> &Tensor;
}

impl Values for [Tensor] {
    fn value(&self, id: ValueId) -> &Tensor {
        &self[id]
    }
}

static NO_TENSOR: Tensor = Tensor { shape: Vec::new(), data: TensorData::Quant(Vec::new()) };

impl Values for [Option<Tensor>] {
    fn value(&self, id: ValueId) -> &Tensor {
        self[id].as_ref().unwrap_or(&NO_TENSOR)
    }
}

fn node_err(node: &Node, why: String) -> InterpError {
    InterpError::Node { node: node.name.clone(), op: node.op.name(), why }
}

/// Checks what `Graph::validate` and the ops assume without checking
/// (indices in range, non-zero kernel sizes), so that neither panics.
fn precheck(graph: &Graph) -> Result<(), InterpError> {
    for &i in &graph.inputs {
        if i >= graph.values.len() {
            return Err(
                GraphError { node: "(graph)".into(), op: "input", why: format!("input {i} does not exist") }.into()
            );
        }
    }
    for n in &graph.nodes {
        let why = match &n.op {
            Op::Conv(c) => {
                let [_, _, kh, kw] = c.w_shape;
                if kh == 0 || kw == 0 {
                    Some(format!("kernel {kh}x{kw} is empty"))
                } else if c.dilations.contains(&0) || c.strides.contains(&0) || c.groups == 0 {
                    Some(format!(
                        "strides {:?}, dilations {:?} and groups {} must be at least 1",
                        c.strides, c.dilations, c.groups
                    ))
                } else {
                    None
                }
            }
            Op::MaxPool(p) | Op::AvgPool(p) => {
                if p.kernel.contains(&0) || p.strides.contains(&0) {
                    Some(format!("kernel {:?} and strides {:?} must be at least 1", p.kernel, p.strides))
                } else if (0..4).any(|i| p.pads[i] >= p.kernel[i % 2]) {
                    Some(format!("pads {:?} must be smaller than the kernel {:?}", p.pads, p.kernel))
                } else {
                    None
                }
            }
            _ => None,
        };
        if let Some(why) = why {
            return Err(node_err(n, why));
        }
    }
    Ok(())
}

fn check_input(v: &Value, t: &Tensor) -> Result<(), String> {
    if t.shape != v.shape {
        return Err(format!("shape is {:?}, the graph says {:?}", t.shape, v.shape));
    }
    let n: usize = v.shape.iter().product();
    if t.len() != n {
        return Err(format!("holds {} values, its shape {:?} has {n}", t.len(), t.shape));
    }
    match (&t.data, v.ty.range()) {
        (TensorData::Float(_), None) if v.ty == ElemType::F32 => Ok(()),
        (TensorData::Quant(d), Some((lo, hi))) => match d.iter().position(|q| !(lo..=hi).contains(q)) {
            Some(i) => Err(format!("value {} at {i} is outside the {} range {lo}..={hi}", d[i], v.ty.name())),
            None => Ok(()),
        },
        (TensorData::Float(_), Some(_)) => Err(format!("is {}, a float tensor was given", v.ty.name())),
        (TensorData::Quant(_), None) if v.ty == ElemType::I64 => Ok(()),
        (TensorData::Float(_), None) => Err("is i64, a float tensor was given".into()),
        (TensorData::Quant(_), None) => Err("is f32, a quantized tensor was given".into()),
    }
}

/// Quantization of a value as the ops use it.
#[derive(Clone, Copy, Debug)]
struct Q {
    scale: f32,
    zp: i32,
    /// The type's range.
    qmin: i32,
    qmax: i32,
}

fn q_of(v: &Value) -> Result<Q, String> {
    let Some((qmin, qmax)) = v.ty.range() else {
        return Err(format!("value `{}` is f32, a quantized one is needed", v.name));
    };
    let Some(q) = v.quant else {
        return Err(format!("value `{}` has no quantization", v.name));
    };
    if !(q.scale.is_finite() && q.scale > 0.0) {
        return Err(format!("value `{}` has scale {}, it must be finite and positive", v.name, q.scale));
    }
    if !(qmin..=qmax).contains(&q.zero_point) {
        return Err(format!("value `{}` has zero point {} outside the {} range", v.name, q.zero_point, v.ty.name()));
    }
    Ok(Q { scale: q.scale, zp: q.zero_point, qmin, qmax })
}

/// A node's output clamp must lie in the output type's range.
fn check_clamp(qmin: i32, qmax: i32, y: &Q) -> Result<(), String> {
    if qmin > qmax || qmin < y.qmin || qmax > y.qmax {
        return Err(format!("clamp {qmin}..={qmax} is not a range within the output type's {}..={}", y.qmin, y.qmax));
    }
    Ok(())
}

/// [`Op::ResizeLinear`] on NCHW data (see the module docs).
fn resize_linear(r: &crate::resize::LinearResize, xs: &[i32], xv: &Value, yv: &Value) -> Result<Vec<i32>, String> {
    use crate::resize::{interpolate, interpolate_integer, LinearRounding};
    let (qx, qy) = (q_of(xv)?, q_of(yv)?);
    let [n, c, h, w] = xv.shape[..] else { return Err("resize of a value that is not NCHW".into()) };
    let [ty, tx] = r.taps([h, w]);
    let value = |q: i32| match r.rounding {
        LinearRounding::Trunc | LinearRounding::NhwcInteger => q as f32,
        LinearRounding::Requantize => vector::dequantize(q, qx.scale, qx.zp),
    };
    if r.rounding != LinearRounding::Requantize && (xv.ty != yv.ty || xv.quant != yv.quant) {
        return Err("a truncating linear resize keeps its input's type and quantization".into());
    }
    let mut out = Vec::with_capacity(n * c * ty.len() * tx.len());
    if r.rounding == LinearRounding::NhwcInteger {
        for p in xs.chunks_exact(h * w).take(n * c) {
            for &a in &ty {
                for &b in &tx {
                    let nb = [p[a.i1 * w + b.i1], p[a.i1 * w + b.i2], p[a.i2 * w + b.i1], p[a.i2 * w + b.i2]];
                    out.push(interpolate_integer(nb, a, b).clamp(qy.qmin, qy.qmax));
                }
            }
        }
        return Ok(out);
    }
    for plane in xs.chunks_exact(h * w).take(n * c) {
        let f: Vec<f32> = plane.iter().map(|&q| value(q)).collect();
        for &a in &ty {
            for &b in &tx {
                let nb = [f[a.i1 * w + b.i1], f[a.i1 * w + b.i2], f[a.i2 * w + b.i1], f[a.i2 * w + b.i2]];
                let v = interpolate(nb, a, b);
                out.push(match r.rounding {
                    // A C++ cast: toward zero (in range by construction).
                    LinearRounding::Trunc => (v as i32).clamp(qy.qmin, qy.qmax),
                    LinearRounding::Requantize => quantize(v, qy.scale, qy.zp, qy.qmin, qy.qmax),
                    LinearRounding::NhwcInteger => unreachable!("handled above"),
                });
            }
        }
    }
    Ok(out)
}

fn quant_data(t: &Tensor) -> Result<&[i32], String> {
    t.as_quant().ok_or_else(|| "a float tensor reached an op on quantized tensors".to_string())
}

/// Moves integers from one quantization to another (see the module docs).
#[derive(Clone, Copy, Debug)]
struct Rescale {
    pass: bool,
    p: QaddParams,
    y: Q,
}

impl Rescale {
    fn new(x: Q, y: Q) -> Rescale {
        let pass = x.scale.to_bits() == y.scale.to_bits() && x.zp == y.zp && (x.qmin, x.qmax) == (y.qmin, y.qmax);
        Rescale { pass, p: rescale_params(x.scale, y.scale, x.zp, y.zp), y }
    }

    #[inline]
    fn apply(&self, v: i32) -> i32 {
        if self.pass {
            v
        } else {
            qadd(v, 0, self.p, self.y.qmin, self.y.qmax)
        }
    }
}

/// Wrapping int32 dot product of two equally long slices.
#[inline]
fn dot(x: &[i32], w: &[i32]) -> i32 {
    x.iter().zip(w).fold(0i32, |s, (&a, &b)| s.wrapping_add(a.wrapping_mul(b)))
}

fn eval<V: Values + ?Sized>(g: &Graph, n: &Node, vals: &V, lanes: usize) -> Result<Tensor, String> {
    if crate::interp_vector::handles(g, n) {
        let ins: Vec<&Tensor> = n.inputs.iter().map(|&i| vals.value(i)).collect();
        let yv = &g.values[n.outputs[0]];
        let data = crate::interp_vector::eval(g, n, &ins, lanes)?;
        let t = Tensor { shape: yv.shape.clone(), data };
        if t.len() != yv.elements() {
            return Err(format!("computed {} values for shape {:?}", t.len(), yv.shape));
        }
        return Ok(t);
    }
    let xv = &g.values[n.inputs[0]];
    let yv = &g.values[n.outputs[0]];
    let x = vals.value(n.inputs[0]);
    let out_shape = yv.shape.clone();
    let data = match &n.op {
        Op::Quantize => {
            let y = q_of(yv)?;
            let xs = x.as_float().ok_or("quantize reads a float tensor")?;
            TensorData::Quant(xs.iter().map(|&f| quantize(f, y.scale, y.zp, y.qmin, y.qmax)).collect())
        }
        Op::Dequantize => {
            let xq = q_of(xv)?;
            let xs = quant_data(x)?;
            TensorData::Float(xs.iter().map(|&q| vector::dequantize(q, xq.scale, xq.zp)).collect())
        }
        Op::Conv(c) => TensorData::Quant(conv(c, quant_data(x)?, &xv.shape, q_of(xv)?, &yv.shape, q_of(yv)?)?),
        Op::Dense(d) => TensorData::Quant(dense(d, quant_data(x)?, &xv.shape, q_of(xv)?, q_of(yv)?)?),
        Op::MaxPool(p) => TensorData::Quant(maxpool(p, quant_data(x)?, &xv.shape, q_of(xv)?, &yv.shape, q_of(yv)?)),
        Op::AvgPool(p) => TensorData::Quant(avgpool(p, quant_data(x)?, &xv.shape, q_of(xv)?, &yv.shape, q_of(yv)?)?),
        Op::Add { qmin, qmax } => {
            let (a, b, y) = (q_of(xv)?, q_of(&g.values[n.inputs[1]])?, q_of(yv)?);
            check_clamp(*qmin, *qmax, &y)?;
            let p = qadd_params(a.scale, b.scale, y.scale, a.zp, b.zp, y.zp);
            let (xa, xb) = (quant_data(x)?, quant_data(vals.value(n.inputs[1]))?);
            TensorData::Quant(xa.iter().zip(xb).map(|(&va, &vb)| qadd(va, vb, p, *qmin, *qmax)).collect())
        }
        Op::Clamp { qmin, qmax } => {
            let y = q_of(yv)?;
            check_clamp(*qmin, *qmax, &y)?;
            let r = Rescale::new(q_of(xv)?, y);
            TensorData::Quant(quant_data(x)?.iter().map(|&v| r.apply(v).max(*qmin).min(*qmax)).collect())
        }
        Op::Flatten { .. } | Op::Reshape { .. } => {
            let r = Rescale::new(q_of(xv)?, q_of(yv)?);
            TensorData::Quant(quant_data(x)?.iter().map(|&v| r.apply(v)).collect())
        }
        Op::Transpose { perm } => {
            let r = Rescale::new(q_of(xv)?, q_of(yv)?);
            TensorData::Quant(transpose(quant_data(x)?, &xv.shape, perm).into_iter().map(|v| r.apply(v)).collect())
        }
        Op::Concat { axis } => {
            let parts = n
                .inputs
                .iter()
                .map(|&i| {
                    Ok((
                        quant_data(vals.value(i))?,
                        &g.values[i].shape,
                        Lut::new(&UnaryFn::Identity, &g.values[i], yv)?,
                    ))
                })
                .collect::<Result<Vec<_>, String>>()?;
            TensorData::Quant(concat(&parts, &out_shape, *axis))
        }
        Op::Resize { rows, cols } => {
            let t = Lut::new(&UnaryFn::Identity, xv, yv)?;
            let xs = quant_data(x)?;
            let [n, c, h, w] = xv.shape[..] else { return Err("resize of a value that is not NCHW".into()) };
            let mut out = Vec::with_capacity(n * c * rows.len() * cols.len());
            for plane in 0..n * c {
                for &r in rows {
                    out.extend(cols.iter().map(|&q| t.apply(xs[(plane * h + r) * w + q])));
                }
            }
            TensorData::Quant(out)
        }
        Op::ResizeLinear(r) => TensorData::Quant(resize_linear(r, quant_data(x)?, xv, yv)?),
        Op::Lut(f) => {
            let t = Lut::new(f, xv, yv)?;
            TensorData::Quant(quant_data(x)?.iter().map(|&v| t.apply(v)).collect())
        }
        other => return Err(format!("internal: {} reached the quantized ops", other.name())),
    };
    let t = Tensor { shape: out_shape, data };
    if t.len() != yv.elements() {
        // Unreachable for a validated graph; never hand out a tensor that
        // contradicts its shape.
        return Err(format!("computed {} values for shape {:?}", t.len(), yv.shape));
    }
    Ok(t)
}

fn check_len(what: &str, len: usize, want: usize) -> Result<(), String> {
    if len != want {
        return Err(format!("{what} has {len} values, {want} expected"));
    }
    Ok(())
}

/// Per-output-channel requantization scales; every weight scale must be
/// finite and positive.
fn channel_scales(w_scale: &[f32], x: Q, y: Q) -> Result<Vec<f32>, String> {
    w_scale
        .iter()
        .map(|&s| {
            if s.is_finite() && s > 0.0 {
                Ok(requant_scale(x.scale, s, y.scale))
            } else {
                Err(format!("weight scale {s} must be finite and positive"))
            }
        })
        .collect()
}

fn conv(c: &ConvParams, xs: &[i32], xshape: &[usize], xq: Q, yshape: &[usize], yq: Q) -> Result<Vec<i32>, String> {
    let [n, ch, h, w] = xshape[..] else { return Err(format!("input shape {xshape:?} is not NCHW")) };
    let [_, _, oh, ow] = yshape[..] else { return Err(format!("output shape {yshape:?} is not NCHW")) };
    let [m, cg, kh, kw] = c.w_shape;
    let kk = cg * kh * kw;
    check_len("weights", c.weights.len(), m * kk)?;
    check_len("weight scales", c.w_scale.len(), m)?;
    check_len("bias", c.bias.len(), m)?;
    check_clamp(c.qmin, c.qmax, &yq)?;
    let scale = channel_scales(&c.w_scale, xq, yq)?;
    let mg = m / c.groups;
    // Per output channel: the folded bias, and the weights in (kh, kw, cin) order.
    let acc0: Vec<i32> =
        (0..m).map(|o| fold_zero_point(c.bias[o], xq.zp, numerics::weight_sum(&c.weights[o * kk..][..kk]))).collect();
    let mut wr = vec![0i32; m * kk];
    for o in 0..m {
        for ci in 0..cg {
            for ky in 0..kh {
                for kx in 0..kw {
                    wr[o * kk + (ky * kw + kx) * cg + ci] = c.weights[o * kk + (ci * kh + ky) * kw + kx] as i32;
                }
            }
        }
    }
    // One image at a time, padded with the input zero point, channels last,
    // so that each (ky, kx) tap reads `cg` consecutive input channels.
    let [pt, pl, pb, pr] = c.pads;
    let (hp, wp) = (h + pt + pb, w + pl + pr);
    let [sh, sw] = c.strides;
    let [dh, dw] = c.dilations;
    let mut xp = vec![xq.zp; hp * wp * ch];
    let mut out = vec![0i32; n * m * oh * ow];
    for b in 0..n {
        for ci in 0..ch {
            for iy in 0..h {
                for ix in 0..w {
                    xp[((iy + pt) * wp + ix + pl) * ch + ci] = xs[((b * ch + ci) * h + iy) * w + ix];
                }
            }
        }
        for o in 0..m {
            let c0 = (o / mg) * cg;
            let wo = &wr[o * kk..][..kk];
            let ob = &mut out[(b * m + o) * oh * ow..][..oh * ow];
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = acc0[o];
                    for ky in 0..kh {
                        let row = (oy * sh + ky * dh) * wp;
                        for kx in 0..kw {
                            let px = (row + ox * sw + kx * dw) * ch + c0;
                            acc = acc.wrapping_add(dot(&xp[px..px + cg], &wo[(ky * kw + kx) * cg..][..cg]));
                        }
                    }
                    ob[oy * ow + ox] = requantize(acc, scale[o], yq.zp, c.qmin, c.qmax);
                }
            }
        }
    }
    Ok(out)
}

fn dense(d: &DenseParams, xs: &[i32], xshape: &[usize], xq: Q, yq: Q) -> Result<Vec<i32>, String> {
    let (n, k) = (d.n, d.k);
    check_len("weights", d.weights.len(), n * k)?;
    check_len("weight scales", d.w_scale.len(), n)?;
    check_len("bias", d.bias.len(), n)?;
    check_clamp(d.qmin, d.qmax, &yq)?;
    let scale = channel_scales(&d.w_scale, xq, yq)?;
    let rows: usize = xshape[..xshape.len().saturating_sub(1)].iter().product();
    let acc0: Vec<i32> =
        (0..n).map(|j| fold_zero_point(d.bias[j], xq.zp, numerics::weight_sum(&d.weights[j * k..][..k]))).collect();
    let w: Vec<i32> = d.weights.iter().map(|&v| v as i32).collect();
    let mut out = vec![0i32; rows * n];
    for r in 0..rows {
        let xr = &xs[r * k..][..k];
        for j in 0..n {
            let acc = acc0[j].wrapping_add(dot(xr, &w[j * k..][..k]));
            out[r * n + j] = requantize(acc, scale[j], yq.zp, d.qmin, d.qmax);
        }
    }
    Ok(out)
}

/// Calls `f(plane, out_index, y0..y1, x0..x1)` for every output position of
/// a pooling window over NCHW `x`, with the window clipped to the input.
fn pool_windows(
    p: &PoolParams,
    xshape: &[usize],
    yshape: &[usize],
    mut f: impl FnMut(usize, usize, std::ops::Range<usize>, std::ops::Range<usize>),
) {
    let (planes, h, w) = (xshape[0] * xshape[1], xshape[2], xshape[3]);
    let (oh, ow) = (yshape[2], yshape[3]);
    let [kh, kw] = p.kernel;
    let [sh, sw] = p.strides;
    let [pt, pl, _, _] = p.pads;
    // Window start in padded coordinates, clipped to the input.
    let clip = |start: usize, pad: usize, k: usize, size: usize| start.saturating_sub(pad)..(start + k - pad).min(size);
    for plane in 0..planes {
        for oy in 0..oh {
            let ys = clip(oy * sh, pt, kh, h);
            for ox in 0..ow {
                f(plane, (plane * oh + oy) * ow + ox, ys.clone(), clip(ox * sw, pl, kw, w));
            }
        }
    }
}

fn maxpool(p: &PoolParams, xs: &[i32], xshape: &[usize], xq: Q, yshape: &[usize], yq: Q) -> Vec<i32> {
    let (h, w) = (xshape[2], xshape[3]);
    let r = Rescale::new(xq, yq);
    let mut out = vec![0i32; yshape.iter().product()];
    pool_windows(p, xshape, yshape, |plane, o, ys, xr| {
        let mut best = i32::MIN;
        for iy in ys {
            for ix in xr.clone() {
                best = best.max(xs[(plane * h + iy) * w + ix]);
            }
        }
        out[o] = r.apply(best);
    });
    out
}

fn avgpool(p: &PoolParams, xs: &[i32], xshape: &[usize], xq: Q, yshape: &[usize], yq: Q) -> Result<Vec<i32>, String> {
    let (h, w) = (xshape[2], xshape[3]);
    let mut out = vec![0i32; yshape.iter().product()];
    if avgpool_is_global(p, h, w) {
        // The scale depends only on the count; cache the last one.
        let mut last: Option<(usize, f32)> = None;
        pool_windows(p, xshape, yshape, |plane, o, ys, xr| {
            let count = ys.len() * xr.len();
            let mut s = 0i32;
            for iy in ys {
                for ix in xr.clone() {
                    s = s.wrapping_add(xs[(plane * h + iy) * w + ix].wrapping_sub(xq.zp));
                }
            }
            let scale = match last {
                Some((c, sc)) if c == count => sc,
                _ => {
                    let sc = avgpool_scale(xq.scale, yq.scale, count);
                    last = Some((count, sc));
                    sc
                }
            };
            out[o] = requantize(s, scale, yq.zp, yq.qmin, yq.qmax);
        });
        return Ok(out);
    }
    check_avgpool_range(xq.scale, yq.scale)?;
    let zy = yq.zp as f32;
    pool_windows(p, xshape, yshape, |plane, o, ys, xr| {
        let count = if p.count_include_pad { p.kernel[0] * p.kernel[1] } else { ys.len() * xr.len() };
        let mut s = 0.0f32;
        for iy in ys {
            for ix in xr.clone() {
                s = vector::add(s, vector::dequantize(xs[(plane * h + iy) * w + ix], xq.scale, xq.zp));
            }
        }
        let v = vector::add(vector::div(vector::div(s, count as f32), yq.scale), zy);
        out[o] = vector::quantize(v, 1.0, 0, yq.qmin, yq.qmax);
    });
    Ok(out)
}

/// Whether ONNX Runtime computes an average pooling over an `h x w` input
/// as global pooling (MLAS's integer QLinearGlobalAveragePool, which
/// QLinearAveragePool falls back to when its window is the whole unpadded
/// input): then the integer definition is ORT's, else the float one.
pub fn avgpool_is_global(p: &PoolParams, h: usize, w: usize) -> bool {
    p.kernel == [h, w] && p.pads == [0; 4]
}

/// The windowed average's float sequence stays exact against ORT only while
/// `|avg / s_y + zy|` is below 2^31: beyond, ORT's float-to-int32
/// conversion is undefined (x86 gives `INT_MIN`, so the lowest output),
/// where `vquant` saturates. An average is at most 255 input steps.
pub fn check_avgpool_range(s_x: f32, s_y: f32) -> Result<(), String> {
    let bound = 255.0 * (s_x as f64 / s_y as f64) * 1.01 + 256.0;
    if bound >= 2f64.powi(31) {
        return Err(format!(
            "input scale {s_x} over output scale {s_y}: an average could reach 2^31 output steps, where ONNX \
             Runtime's conversion to int32 is undefined"
        ));
    }
    Ok(())
}

fn transpose(xs: &[i32], shape: &[usize], perm: &[usize]) -> Vec<i32> {
    crate::strided::transpose_index(shape, perm).into_iter().map(|i| xs[i]).collect()
}

/// A unary op's table (`crate::lut::table`) between two quantized values.
struct Lut {
    table: [u8; 256],
    out: ElemType,
}

impl Lut {
    fn new(f: &UnaryFn, x: &Value, y: &Value) -> Result<Lut, String> {
        let (qx, qy) = (q_of(x)?, q_of(y)?);
        let q = |q: Q| Quant { scale: q.scale, zero_point: q.zp };
        Ok(Lut { table: lut::table(f, x.ty, q(qx), y.ty, q(qy)), out: y.ty })
    }

    /// The entry of `v`'s byte (an int8 value selects entry `v & 0xff`).
    fn apply(&self, v: i32) -> i32 {
        lut::byte_value(self.out, self.table[v as u8 as usize])
    }
}

fn concat(parts: &[(&[i32], &Vec<usize>, Lut)], oshape: &[usize], axis: usize) -> Vec<i32> {
    let outer: usize = oshape[..axis].iter().product();
    let inner: usize = oshape[axis + 1..].iter().product();
    let mut out = Vec::with_capacity(oshape.iter().product());
    for o in 0..outer {
        for (data, shape, r) in parts {
            let chunk = shape[axis] * inner;
            out.extend(data[o * chunk..][..chunk].iter().map(|&v| r.apply(v)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qval(g: &mut Graph, name: &str, shape: &[usize], ty: ElemType, scale: f32, zp: i32) -> usize {
        g.add_value(Value {
            name: name.into(),
            shape: shape.to_vec(),
            ty,
            quant: Some(Quant { scale, zero_point: zp }),
        })
    }

    fn fval(g: &mut Graph, name: &str, shape: &[usize]) -> usize {
        g.add_value(Value { name: name.into(), shape: shape.to_vec(), ty: ElemType::F32, quant: None })
    }

    fn node(g: &mut Graph, name: &str, op: Op, inputs: &[usize], output: usize) {
        g.nodes.push(Node { name: name.into(), op, inputs: inputs.to_vec(), outputs: vec![output] });
    }

    /// x (i8) -> clamp -> y, one node.
    fn unary(op: Op, xs: &[usize], ys: &[usize], xq: (f32, i32), yq: (f32, i32)) -> Graph {
        let mut g = Graph::default();
        let x = qval(&mut g, "x", xs, ElemType::I8, xq.0, xq.1);
        let y = qval(&mut g, "y", ys, ElemType::I8, yq.0, yq.1);
        node(&mut g, "n", op, &[x], y);
        g.inputs = vec![x];
        g.outputs = vec![y];
        g
    }

    #[test]
    fn identity_conv_1x1() {
        let c = ConvParams::plain(vec![1], [1, 1, 1, 1]);
        let g = unary(Op::Conv(c), &[1, 1, 2, 2], &[1, 1, 2, 2], (0.5, 3), (0.5, 3));
        let x = Tensor::quant(vec![1, 1, 2, 2], vec![-128, 0, 3, 127]);
        let vals = run(&g, std::slice::from_ref(&x)).unwrap();
        assert_eq!(vals[1], x);
    }

    #[test]
    fn padding_holds_the_zero_point() {
        // 1x1 input, 3x3 kernel of ones, pad 1: only the centre is real.
        let c = ConvParams { pads: [1; 4], ..ConvParams::plain(vec![1; 9], [1, 1, 3, 3]) };
        let g = unary(Op::Conv(c), &[1, 1, 1, 1], &[1, 1, 1, 1], (1.0, -100), (1.0, 0));
        let vals = run(&g, &[Tensor::quant(vec![1, 1, 1, 1], vec![-90])]).unwrap();
        assert_eq!(vals[1].as_quant().unwrap(), &[10]);
    }

    #[test]
    fn rescale_equal_scales_is_exact_shift() {
        let q = |scale, zp| Q { scale, zp, qmin: -128, qmax: 127 };
        let r = Rescale::new(q(0.1, 5), q(0.1, -7));
        assert!(!r.pass);
        for v in -128..=127 {
            assert_eq!(r.apply(v), (v - 5 - 7).clamp(-128, 127));
        }
        let u = Rescale::new(q(0.1, 0), Q { scale: 0.1, zp: 0, qmin: 0, qmax: 255 });
        assert_eq!((u.apply(-3), u.apply(100)), (0, 100));
        assert!(Rescale::new(q(0.1, 5), q(0.1, 5)).pass);
    }

    #[test]
    fn maxpool_padding_never_wins() {
        let p = PoolParams { kernel: [2, 2], strides: [1, 1], pads: [1, 1, 0, 0], count_include_pad: false };
        let g = unary(Op::MaxPool(p), &[1, 1, 2, 2], &[1, 1, 2, 2], (0.1, 50), (0.1, 50));
        let vals = run(&g, &[Tensor::quant(vec![1, 1, 2, 2], vec![-5, -6, -7, -8])]).unwrap();
        assert_eq!(vals[1].as_quant().unwrap(), &[-5, -5, -5, -5]);
    }

    #[test]
    fn transpose_2x3() {
        let x = [1, 2, 3, 4, 5, 6];
        assert_eq!(transpose(&x, &[2, 3], &[1, 0]), vec![1, 4, 2, 5, 3, 6]);
        assert_eq!(transpose(&x, &[2, 3], &[0, 1]), x.to_vec());
        assert_eq!(transpose(&[7], &[], &[]), vec![7]);
        assert_eq!(transpose(&[], &[0, 3], &[1, 0]), Vec::<i32>::new());
    }

    #[test]
    fn quantize_dequantize() {
        let mut g = Graph::default();
        let x = fval(&mut g, "x", &[4]);
        let q = qval(&mut g, "q", &[4], ElemType::U8, 0.5, 10);
        let y = fval(&mut g, "y", &[4]);
        node(&mut g, "quant", Op::Quantize, &[x], q);
        node(&mut g, "dequant", Op::Dequantize, &[q], y);
        g.inputs = vec![x];
        g.outputs = vec![y];
        let vals = run_named(&g, &[("x", Tensor::float(vec![4], vec![0.0, 1.25, -100.0, 1000.0]))]).unwrap();
        assert_eq!(vals[q].as_quant().unwrap(), &[10, 12, 0, 255]);
        assert_eq!(vals[y].as_float().unwrap(), &[0.0, 1.0, -5.0, 122.5]);
    }

    #[test]
    fn streaming_visits_what_run_computes_and_can_start_past_a_node() {
        let mut g = Graph::default();
        let x = fval(&mut g, "x", &[4]);
        let q = qval(&mut g, "q", &[4], ElemType::U8, 0.5, 10);
        let c = qval(&mut g, "c", &[4], ElemType::U8, 0.5, 10);
        let y = fval(&mut g, "y", &[4]);
        node(&mut g, "quant", Op::Quantize, &[x], q);
        node(&mut g, "clamp", Op::Clamp { qmin: 12, qmax: 200 }, &[q], c);
        node(&mut g, "dequant", Op::Dequantize, &[c], y);
        g.inputs = vec![x];
        g.outputs = vec![y];
        let input = Tensor::float(vec![4], vec![0.0, 1.25, -100.0, 1000.0]);
        let all = run(&g, std::slice::from_ref(&input)).unwrap();
        let mut seen = Vec::new();
        run_streaming(&g, vec![(x, input)], |id, t| {
            seen.push((id, t.clone()));
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(seen, vec![(q, all[q].clone()), (c, all[c].clone()), (y, all[y].clone())]);

        // From the quantized value on: the QuantizeLinear is skipped.
        let mut seen = Vec::new();
        run_streaming(&g, vec![(q, all[q].clone())], |id, _| {
            seen.push(id);
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(seen, vec![c, y]);
        // The visitor stops the run.
        let r = run_streaming(&g, vec![(q, all[q].clone())], |id, _| if id == c { Err("stop") } else { Ok(()) });
        assert!(matches!(r, Err(StreamError::Visit("stop"))));
    }

    #[test]
    fn errors_name_the_culprit() {
        let g = unary(Op::Clamp { qmin: 0, qmax: 127 }, &[2], &[2], (1.0, 0), (1.0, 0));
        let t = |d: Vec<i32>| Tensor::quant(vec![2], d);
        assert!(matches!(run(&g, &[]), Err(InterpError::InputCount { expected: 1, given: 0 })));
        let e = run(&g, &[t(vec![0, 200])]).unwrap_err();
        assert!(matches!(&e, InterpError::Input { name, .. } if name == "x"), "{e}");
        let e = run(&g, &[Tensor::float(vec![2], vec![0.0, 1.0])]).unwrap_err();
        assert!(e.to_string().contains("float"), "{e}");
        let e = run(&g, &[Tensor::quant(vec![1, 2], vec![0, 1])]).unwrap_err();
        assert!(e.to_string().contains("shape"), "{e}");
        let e = run_named(&g, &[("z", t(vec![0, 1]))]).unwrap_err();
        assert!(e.to_string().contains("`z`"), "{e}");
        let e = run_named(&g, &[]).unwrap_err();
        assert!(e.to_string().contains("not given"), "{e}");
        assert_eq!(run(&g, &[t(vec![-3, 4])]).unwrap()[1].as_quant().unwrap(), &[0, 4]);

        let bad = unary(Op::Clamp { qmin: 0, qmax: 200 }, &[2], &[2], (1.0, 0), (1.0, 0));
        let e = run(&bad, &[t(vec![0, 1])]).unwrap_err();
        assert!(matches!(&e, InterpError::Node { node, op: "clamp", .. } if node == "n"), "{e}");
    }

    #[test]
    fn bad_params_are_errors_not_panics() {
        let conv = |f: &dyn Fn(&mut ConvParams)| {
            let mut c = ConvParams::plain(vec![1; 4], [1, 1, 2, 2]);
            f(&mut c);
            let g = unary(Op::Conv(c), &[1, 1, 3, 3], &[1, 1, 2, 2], (1.0, 0), (1.0, 0));
            run(&g, &[Tensor::quant(vec![1, 1, 3, 3], vec![0; 9])])
        };
        assert!(conv(&|_| {}).is_ok());
        type Mutation = Box<dyn Fn(&mut ConvParams)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("weights", Box::new(|c| c.weights.truncate(3))),
            ("weight scales", Box::new(|c| c.w_scale.push(1.0))),
            ("bias", Box::new(|c| c.bias.clear())),
            ("kernel", Box::new(|c| c.w_shape = [1, 1, 0, 2])),
            ("dilations", Box::new(|c| c.dilations = [0, 1])),
            ("groups", Box::new(|c| c.groups = 0)),
            ("weight scale", Box::new(|c| c.w_scale[0] = f32::NAN)),
            ("clamp", Box::new(|c| c.qmax = 128)),
        ];
        for (what, f) in &cases {
            let e = conv(f.as_ref()).unwrap_err();
            assert!(e.to_string().contains(what), "{what}: {e}");
        }
        let pool = |pads| {
            let p = PoolParams { kernel: [2, 2], strides: [1, 1], pads, count_include_pad: false };
            let g = unary(Op::AvgPool(p), &[1, 1, 2, 2], &[1, 1, 1, 3], (1.0, 0), (1.0, 0));
            run(&g, &[Tensor::quant(vec![1, 1, 2, 2], vec![0; 4])])
        };
        assert!(pool([0, 2, 0, 0]).unwrap_err().to_string().contains("smaller than the kernel"));
        let bad_scale = unary(Op::Reshape { shape: vec![2] }, &[2], &[2], (1.0, 0), (0.0, 0));
        let e = run(&bad_scale, &[Tensor::quant(vec![2], vec![0, 0])]).unwrap_err();
        assert!(e.to_string().contains("finite and positive"), "{e}");
        let mut g = unary(Op::Clamp { qmin: 0, qmax: 1 }, &[2], &[2], (1.0, 0), (1.0, 0));
        g.inputs = vec![7];
        assert!(matches!(run(&g, &[]), Err(InterpError::Graph(_))));
    }

    #[test]
    fn uncomputed_values_are_empty() {
        let mut g = unary(Op::Clamp { qmin: 0, qmax: 127 }, &[1], &[1], (1.0, 0), (1.0, 0));
        let unused = qval(&mut g, "unused", &[3], ElemType::I8, 1.0, 0);
        let vals = run(&g, &[Tensor::quant(vec![1], vec![5])]).unwrap();
        assert_eq!(vals.len(), 3);
        assert!(vals[unused].is_empty());
        assert_eq!(vals[unused], Tensor::empty());
    }
}
