//! The quantized graph IR: what every importer (ONNX QOperator, ONNX QDQ,
//! the text model format) produces and what the reference interpreter and
//! the lowering consume.
//!
//! Conventions:
//! - Activations are NCHW (or N x features) as in ONNX, quantized per
//!   tensor: `real = scale * (q - zero_point)`, `q` int8 or uint8.
//! - Weights are int8 or int4 (`WeightType`, per layer), symmetric (zero
//!   point 0), with one scale per output channel (a single scale is stored
//!   repeated). Biases are int32 in the
//!   accumulator's scale `s_in * s_w[c]`, as ONNX Runtime's quantizer
//!   writes them.
//! - A fused ReLU/Clip is the `qmin`/`qmax` clamp of the op that produces
//!   the tensor, as ONNX Runtime folds it.
//! - Every value has a static shape; batch is the leading dimension.

use std::fmt;

/// Element type of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ElemType {
    I8,
    U8,
    F32,
    /// Integer indices and masks (token ids, attention masks) as ONNX's
    /// int64; the interpreter holds them as `i32` and refuses inputs outside
    /// that range.
    I64,
}

impl ElemType {
    /// The integer range of a quantized type.
    pub fn range(self) -> Option<(i32, i32)> {
        match self {
            ElemType::I8 => Some((-128, 127)),
            ElemType::U8 => Some((0, 255)),
            ElemType::F32 | ElemType::I64 => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ElemType::I8 => "i8",
            ElemType::U8 => "u8",
            ElemType::F32 => "f32",
            ElemType::I64 => "i64",
        }
    }
}

/// Per-tensor quantization of an activation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quant {
    pub scale: f32,
    pub zero_point: i32,
}

/// Index of a value in `Graph::values`.
pub type ValueId = usize;

/// A tensor flowing between nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub name: String,
    pub shape: Vec<usize>,
    pub ty: ElemType,
    /// Present exactly when `ty` is I8 or U8.
    pub quant: Option<Quant>,
}

impl Value {
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Quantized convolution (QLinearConv, or DQ -> Conv -> Q).
#[derive(Clone, Debug, PartialEq)]
pub struct ConvParams {
    /// `[out_channels, in_channels / groups, kh, kw]`, row-major.
    pub weights: Vec<i8>,
    pub w_shape: [usize; 4],
    /// One per output channel.
    pub w_scale: Vec<f32>,
    /// One per output channel (zeros when the model has none).
    pub bias: Vec<i32>,
    /// `[h, w]`.
    pub strides: [usize; 2],
    /// `[top, left, bottom, right]`, filled with the input's zero point.
    pub pads: [usize; 4],
    /// `[h, w]`.
    pub dilations: [usize; 2],
    pub groups: usize,
    /// Output clamp (fused ReLU/Clip), in the output type's range.
    pub qmin: i32,
    pub qmax: i32,
    /// The weights' precision as the model declares it.
    pub w_type: WeightType,
}

impl ConvParams {
    /// A plain convolution with `weights` of shape `w_shape`: unit weight
    /// scales, no bias, stride and dilation 1, no padding, one group, the
    /// full int8 output range. Set the other fields as needed.
    pub fn plain(weights: Vec<i8>, w_shape: [usize; 4]) -> ConvParams {
        ConvParams {
            weights,
            w_shape,
            w_scale: vec![1.0; w_shape[0]],
            bias: vec![0; w_shape[0]],
            strides: [1, 1],
            pads: [0; 4],
            dilations: [1, 1],
            groups: 1,
            qmin: -128,
            qmax: 127,
            w_type: WeightType::I8,
        }
    }
}

/// Quantized fully-connected layer (QGemm, QLinearMatMul, DQ -> Gemm/MatMul -> Q):
/// `out[.., n] = sum_k x[.., k] * w[n][k] + bias[n]`, requantized.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseParams {
    /// `[n, k]` row-major (output-major, like Gemm with transB = 1).
    pub weights: Vec<i8>,
    pub n: usize,
    pub k: usize,
    /// One per output column.
    pub w_scale: Vec<f32>,
    /// One per output column (zeros when the model has none).
    pub bias: Vec<i32>,
    pub qmin: i32,
    pub qmax: i32,
    /// The weights' precision as the model declares it.
    pub w_type: WeightType,
}

/// The precision of a conv or dense layer's weights, as the model declares
/// it (per layer, so a model mixes them): int8, or int4 — ONNX's INT4,
/// symmetric, values in -8..=7, held here one per `i8` like int8 weights,
/// so the interpreter's arithmetic is the same; the lowering stores them
/// two per byte where the configuration has int4 weights.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum WeightType {
    #[default]
    I8,
    I4,
}

impl WeightType {
    /// The values a weight of this type may take.
    pub fn range(self) -> (i8, i8) {
        match self {
            WeightType::I8 => (-128, 127),
            WeightType::I4 => (-8, 7),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            WeightType::I8 => "int8",
            WeightType::I4 => "int4",
        }
    }
}

/// Pooling window over the two innermost (H, W) dimensions of NCHW.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolParams {
    /// `[kh, kw]`; for global pooling the input's H and W.
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    /// `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    /// AveragePool: whether padding counts in the divisor.
    pub count_include_pad: bool,
}

/// A float element-wise binary op (numpy broadcasting of the two inputs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Max,
}

impl BinaryOp {
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "fadd",
            BinaryOp::Sub => "fsub",
            BinaryOp::Mul => "fmul",
            BinaryOp::Div => "fdiv",
            BinaryOp::Max => "fmax",
        }
    }
}

/// A float element-wise unary op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    Erf,
    Tanh,
}

impl UnaryOp {
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Erf => "erf",
            UnaryOp::Tanh => "tanh",
        }
    }
}

/// Which GELU: `0.5·x·(1 + erf(x/√2))` or GPT-2's
/// `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GeluForm {
    Erf,
    Tanh,
}

/// An embedding table: int8 rows `[rows, cols]`, quantized per tensor with
/// the output value's scale and zero point.
#[derive(Clone, Debug, PartialEq)]
pub struct EmbeddingParams {
    pub table: Vec<i8>,
    pub rows: usize,
    pub cols: usize,
}

/// One operation of the graph.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// float -> quantized with the output value's quantization (QuantizeLinear).
    Quantize,
    /// quantized -> float with the input value's quantization (DequantizeLinear).
    Dequantize,
    Conv(ConvParams),
    Dense(DenseParams),
    /// Max pooling on quantized values (exact; scale and zero point pass through).
    MaxPool(PoolParams),
    /// Average pooling (AveragePool, GlobalAveragePool, QLinearAveragePool,
    /// QLinearGlobalAveragePool); requantized to the output's quantization.
    AvgPool(PoolParams),
    /// Quantized element-wise add of two tensors of one shape (QLinearAdd,
    /// DQ+DQ -> Add -> Q), with output clamp.
    Add {
        qmin: i32,
        qmax: i32,
    },
    /// A standalone ReLU/Clip on a quantized tensor that could not be fused.
    Clamp {
        qmin: i32,
        qmax: i32,
    },
    /// Reshape to `[d0 * .. * d(axis-1), rest]`.
    Flatten {
        axis: usize,
    },
    Reshape {
        shape: Vec<usize>,
    },
    Transpose {
        perm: Vec<usize>,
    },
    Concat {
        axis: usize,
    },
    /// An element-wise unary op in float between dequantization and
    /// quantization (QLinearSigmoid, DQ -> Tanh -> Q, ...; the identity
    /// requantizes): a 256-entry table of the input's and output's
    /// quantization (`crate::lut`).
    Lut(crate::lut::UnaryFn),
    /// Nearest-neighbour resize of NCHW's H and W: `y[n, c, oy, ox] =
    /// x[n, c, rows[oy], cols[ox]]`, requantized (identity table) when the
    /// output's quantization differs. The importer computes the source
    /// indices as ONNX Runtime does for the node's modes.
    Resize {
        rows: Vec<usize>,
        cols: Vec<usize>,
    },
    /// Linear (bilinear) resize of NCHW's H and W, exactly as ONNX Runtime
    /// computes it (`crate::resize`): truncated on the integers (QOperator)
    /// or requantized from the dequantized input (QDQ).
    ResizeLinear(crate::resize::LinearResize),

    // ---- Transformer ops (float vector math, int64 indices), lowered by
    // `lower::transformer` (embeddings and masks on the host); the
    // reference interpreter runs them with the vector unit's numerics.
    /// A float constant of the given shape (no inputs).
    Constant {
        shape: Vec<usize>,
        data: Vec<f32>,
    },
    /// A float tensor chosen element by element by an integer mask input
    /// (what a model's attention-mask subgraph folds to):
    /// `y[i] = if x[index[i]] == 0 { if_zero[i] } else { if_nonzero[i] }`.
    MaskSelect {
        shape: Vec<usize>,
        index: Vec<usize>,
        if_zero: Vec<f32>,
        if_nonzero: Vec<f32>,
    },
    /// Rows of an int8 table selected by int64 ids: `y[.., :] =
    /// table[ids[..], :]`, quantized as the table (output value's quant).
    /// An id outside `0..rows` is a run-time error naming its position.
    Embedding(EmbeddingParams),
    /// A Linear layer whose int32 accumulator is dequantized to float
    /// instead of requantized: `y[.., n] = f32(acc) · f32(s_x · s_w[n])`,
    /// `acc = bias[n] + Σ_k (x[.., k] − zx)·w[n][k]` (`qmin`/`qmax` unused).
    DenseF32(DenseParams),
    /// Activation × activation matrix product of two quantized tensors
    /// `a [.., M, K]` and `b [.., K, N]` (equal leading dims):
    /// `acc = Σ_k (a − za)(b − zb)` in int32, then dequantized to float
    /// (`f32(acc) · f32(s_a · s_b)`) when the output is f32, requantized
    /// (`requantize(acc, requant_scale(s_a, s_b, s_y), zy, type range)`)
    /// when it is int8/uint8.
    MatMul,
    /// Float element-wise binary op with numpy broadcasting.
    Binary(BinaryOp),
    /// Float element-wise unary op.
    Unary(UnaryOp),
    /// GELU on floats.
    Gelu(GeluForm),
    /// Layer normalization over the last axis (ONNX LayerNormalization,
    /// axis −1): `(x − mean) · rsqrt(var + eps) · gamma + beta`.
    LayerNorm {
        gamma: Vec<f32>,
        beta: Vec<f32>,
        eps: f32,
    },
    /// Softmax over the last axis. The additive attention mask, if any, is
    /// a `Binary(Add)` before it.
    Softmax,
    /// Float sum over one axis, which is removed (`keepdims = 0`) or kept
    /// with size 1.
    ReduceSum {
        axis: usize,
        keepdims: bool,
    },
    /// `x[.., start..end, ..]` along `axis` (a Split output), any type.
    Slice {
        axis: usize,
        start: usize,
        end: usize,
    },
}

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::Quantize => "quantize",
            Op::Dequantize => "dequantize",
            Op::Conv(_) => "conv",
            Op::Dense(_) => "dense",
            Op::MaxPool(_) => "maxpool",
            Op::AvgPool(_) => "avgpool",
            Op::Add { .. } => "add",
            Op::Clamp { .. } => "clamp",
            Op::Flatten { .. } => "flatten",
            Op::Reshape { .. } => "reshape",
            Op::Transpose { .. } => "transpose",
            Op::Concat { .. } => "concat",
            Op::Lut(f) => f.name(),
            Op::Resize { .. } => "resize",
            Op::ResizeLinear(_) => "resize_linear",
            Op::Constant { .. } => "constant",
            Op::MaskSelect { .. } => "mask_select",
            Op::Embedding(_) => "embedding",
            Op::DenseF32(_) => "dense_f32",
            Op::MatMul => "matmul",
            Op::Binary(b) => b.name(),
            Op::Unary(u) => u.name(),
            Op::Gelu(GeluForm::Erf) => "gelu_erf",
            Op::Gelu(GeluForm::Tanh) => "gelu_tanh",
            Op::LayerNorm { .. } => "layernorm",
            Op::Softmax => "softmax",
            Op::ReduceSum { .. } => "reduce_sum",
            Op::Slice { .. } => "slice",
        }
    }

    /// A transformer op (float vector math, int64 indices): a graph with
    /// one takes the transformer path of the lowering (`lower::transformer`).
    pub fn is_transformer_op(&self) -> bool {
        matches!(
            self,
            Op::Constant { .. }
                | Op::MaskSelect { .. }
                | Op::Embedding(_)
                | Op::DenseF32(_)
                | Op::MatMul
                | Op::Binary(_)
                | Op::Unary(_)
                | Op::Gelu(_)
                | Op::LayerNorm { .. }
                | Op::Softmax
                | Op::ReduceSum { .. }
                | Op::Slice { .. }
        )
    }
}

/// A node: one op reading and writing values.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The source node's name (for messages and reports).
    pub name: String,
    pub op: Op,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
}

/// A quantized model: values, nodes in topological order, graph inputs
/// (float or quantized) and outputs.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Graph {
    pub name: String,
    pub values: Vec<Value>,
    pub nodes: Vec<Node>,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
}

/// An inconsistency in a graph (wrong arity, shapes, types, order).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("node `{node}` ({op}): {why}")]
pub struct GraphError {
    pub node: String,
    pub op: &'static str,
    pub why: String,
}

impl Graph {
    pub fn value(&self, name: &str) -> Option<ValueId> {
        self.values.iter().position(|v| v.name == name)
    }

    /// Adds a value and returns its id.
    pub fn add_value(&mut self, v: Value) -> ValueId {
        self.values.push(v);
        self.values.len() - 1
    }

    /// Checks arity, types, shapes and topological order of every node.
    pub fn validate(&self) -> Result<(), GraphError> {
        let mut defined = vec![false; self.values.len()];
        for &i in &self.inputs {
            defined[i] = true;
        }
        for n in &self.nodes {
            let err = |why: String| GraphError { node: n.name.clone(), op: n.op.name(), why };
            for &i in &n.inputs {
                if i >= self.values.len() || !defined[i] {
                    return Err(err(format!("input {i} is not defined before the node")));
                }
            }
            for &o in &n.outputs {
                if o >= self.values.len() {
                    return Err(err(format!("output {o} does not exist")));
                }
                defined[o] = true;
            }
            let ins: Vec<&Value> = n.inputs.iter().map(|&i| &self.values[i]).collect();
            let outs: Vec<&Value> = n.outputs.iter().map(|&o| &self.values[o]).collect();
            let arity = match n.op {
                Op::Add { .. } | Op::MatMul | Op::Binary(_) => 2,
                Op::Concat { .. } => ins.len().max(1),
                Op::Constant { .. } => 0,
                _ => 1,
            };
            if ins.len() != arity || outs.len() != 1 {
                return Err(err(format!("takes {arity} input(s) and 1 output, has {} and {}", ins.len(), outs.len())));
            }
            let y = outs[0];
            check_types(&n.op, &ins, y).map_err(|why| err(why.into()))?;
            check_weight_range(&n.op).map_err(err)?;
            if let Some(shape) = infer_shape(&n.op, &ins) {
                if shape != y.shape {
                    return Err(err(format!("output shape is {:?}, the op gives {:?}", y.shape, shape)));
                }
            } else {
                return Err(err(format!(
                    "input shapes {:?} do not fit the op",
                    ins.iter().map(|v| &v.shape).collect::<Vec<_>>()
                )));
            }
        }
        for &o in &self.outputs {
            if o >= self.values.len() || !defined[o] {
                return Err(GraphError {
                    node: "(graph)".into(),
                    op: "output",
                    why: format!("output {o} is never computed"),
                });
            }
        }
        Ok(())
    }
}

/// A conv or dense layer's weights lie in its weight type's range (an
/// int4 layer's in -8..=7).
fn check_weight_range(op: &Op) -> Result<(), String> {
    let (weights, ty) = match op {
        Op::Conv(c) => (&c.weights, c.w_type),
        Op::Dense(d) | Op::DenseF32(d) => (&d.weights, d.w_type),
        _ => return Ok(()),
    };
    if ty == WeightType::I8 {
        return Ok(());
    }
    let (lo, hi) = ty.range();
    match weights.iter().position(|&w| w < lo || w > hi) {
        Some(i) => Err(format!("{} weight {i} is {}, outside {lo}..={hi}", ty.name(), weights[i])),
        None => Ok(()),
    }
}

fn conv_out(size: usize, k: usize, stride: usize, pad: usize, dil: usize) -> Option<usize> {
    let eff = dil * (k - 1) + 1;
    (size + pad >= eff && stride > 0).then(|| (size + pad - eff) / stride + 1)
}

/// The element types an op accepts and gives, as a reason when they do
/// not fit.
fn check_types(op: &Op, ins: &[&Value], y: &Value) -> Result<(), &'static str> {
    use ElemType::{F32, I64};
    let quantized = |v: &Value| v.ty.range().is_some() && v.quant.is_some();
    let all = |f: &dyn Fn(&Value) -> bool| ins.iter().all(|v| f(v)) && f(y);
    let ok = match op {
        Op::Quantize => ins[0].ty == F32 && quantized(y),
        Op::Dequantize => quantized(ins[0]) && y.ty == F32,
        Op::Constant { .. } => y.ty == F32,
        Op::MaskSelect { .. } => ins[0].ty == I64 && y.ty == F32,
        Op::Embedding(_) => ins[0].ty == I64 && quantized(y),
        Op::DenseF32(_) => quantized(ins[0]) && y.ty == F32,
        Op::MatMul => quantized(ins[0]) && quantized(ins[1]) && (y.ty == F32 || quantized(y)),
        Op::Binary(_) | Op::Unary(_) | Op::Gelu(_) | Op::LayerNorm { .. } | Op::Softmax | Op::ReduceSum { .. } => {
            all(&|v| v.ty == F32)
        }
        // Data movement keeps the element type; quantized data keeps (or,
        // for the QOperator forms, requantizes into) a quantization.
        Op::Flatten { .. } | Op::Reshape { .. } | Op::Transpose { .. } | Op::Concat { .. } | Op::Slice { .. }
            if matches!(y.ty, F32 | I64) =>
        {
            ins.iter().all(|v| v.ty == y.ty)
        }
        Op::Slice { .. } => quantized(ins[0]) && ins[0].ty == y.ty && ins[0].quant == y.quant,
        _ => all(&|v| quantized(v)),
    };
    if ok {
        return Ok(());
    }
    Err(match op {
        Op::Quantize => "quantizes a float tensor into a quantized one",
        Op::Dequantize => "dequantizes a quantized tensor into a float one",
        Op::Constant { .. } | Op::MaskSelect { .. } => "gives a float tensor (from an int64 mask)",
        Op::Embedding(_) => "reads int64 ids and gives the table's quantized rows",
        Op::DenseF32(_) => "reads a quantized tensor and gives a float one",
        Op::MatMul => "reads two quantized tensors and gives a float or quantized one",
        Op::Flatten { .. } | Op::Reshape { .. } | Op::Transpose { .. } | Op::Concat { .. } | Op::Slice { .. } => {
            "moves data of one element type (quantized ones keep a quantization)"
        }
        op if op.is_transformer_op() => "operates on float tensors only",
        _ => "operates on quantized tensors only",
    })
}

/// Numpy broadcasting of two shapes.
pub fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| if i + s.len() >= r { s[i + s.len() - r] } else { 1 };
    (0..r)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// The output shape an op gives its inputs, None if they do not fit.
pub fn infer_shape(op: &Op, ins: &[&Value]) -> Option<Vec<usize>> {
    match op {
        Op::Constant { shape, data } => return (shape.iter().product::<usize>() == data.len()).then(|| shape.clone()),
        Op::MaskSelect { shape, index, if_zero, if_nonzero } => {
            let n = shape.iter().product::<usize>();
            let src = ins.first()?.elements();
            let inside = index.iter().all(|&i| i < src);
            return (n == index.len() && n == if_zero.len() && n == if_nonzero.len() && inside).then(|| shape.clone());
        }
        _ => {}
    }
    let x = &ins.first()?.shape;
    match op {
        Op::Constant { .. } | Op::MaskSelect { .. } => None,
        Op::Embedding(e) => {
            (e.table.len() == e.rows * e.cols && e.cols > 0).then(|| x.iter().copied().chain([e.cols]).collect())
        }
        Op::DenseF32(d) => {
            let (last, lead) = x.split_last()?;
            (*last == d.k).then(|| lead.iter().copied().chain([d.n]).collect())
        }
        Op::MatMul => {
            let b = &ins.get(1)?.shape;
            let r = x.len();
            if r < 2 || b.len() != r || x[..r - 2] != b[..r - 2] || x[r - 1] != b[r - 2] {
                return None;
            }
            Some(x[..r - 1].iter().copied().chain([b[r - 1]]).collect())
        }
        Op::Binary(_) => broadcast(x, &ins.get(1)?.shape),
        Op::Unary(_) | Op::Gelu(_) | Op::Softmax => (!x.is_empty()).then(|| x.clone()),
        Op::LayerNorm { gamma, beta, .. } => {
            let last = *x.last()?;
            (gamma.len() == last && beta.len() == last).then(|| x.clone())
        }
        Op::ReduceSum { axis, keepdims } => {
            if *axis >= x.len() {
                return None;
            }
            let mut out = x.clone();
            if *keepdims {
                out[*axis] = 1;
            } else {
                out.remove(*axis);
            }
            Some(out)
        }
        Op::Slice { axis, start, end } => {
            if *axis >= x.len() || start >= end || *end > x[*axis] {
                return None;
            }
            let mut out = x.clone();
            out[*axis] = end - start;
            Some(out)
        }
        _ => infer_legacy_shape(op, x, ins),
    }
}

fn infer_legacy_shape(op: &Op, x: &Vec<usize>, ins: &[&Value]) -> Option<Vec<usize>> {
    match op {
        Op::Quantize | Op::Dequantize | Op::Clamp { .. } | Op::Lut(_) => Some(x.clone()),
        Op::Add { .. } => (ins.len() == 2 && ins[1].shape == *x).then(|| x.clone()),
        Op::Conv(c) => {
            let [n, ch, h, w] = x[..] else { return None };
            let [m, cg, kh, kw] = c.w_shape;
            if c.groups == 0 || ch != cg * c.groups || m % c.groups != 0 {
                return None;
            }
            let oh = conv_out(h, kh, c.strides[0], c.pads[0] + c.pads[2], c.dilations[0])?;
            let ow = conv_out(w, kw, c.strides[1], c.pads[1] + c.pads[3], c.dilations[1])?;
            Some(vec![n, m, oh, ow])
        }
        Op::Dense(d) => {
            let (last, lead) = x.split_last()?;
            (*last == d.k).then(|| lead.iter().copied().chain([d.n]).collect())
        }
        Op::MaxPool(p) | Op::AvgPool(p) => {
            let [n, ch, h, w] = x[..] else { return None };
            let oh = conv_out(h, p.kernel[0], p.strides[0], p.pads[0] + p.pads[2], 1)?;
            let ow = conv_out(w, p.kernel[1], p.strides[1], p.pads[1] + p.pads[3], 1)?;
            Some(vec![n, ch, oh, ow])
        }
        Op::Flatten { axis } => {
            if *axis > x.len() {
                return None;
            }
            Some(vec![x[..*axis].iter().product(), x[*axis..].iter().product()])
        }
        Op::Reshape { shape } => {
            (shape.iter().product::<usize>() == x.iter().product::<usize>()).then(|| shape.clone())
        }
        Op::Transpose { perm } => {
            let mut seen = vec![false; x.len()];
            for &p in perm {
                if p >= x.len() || std::mem::replace(&mut seen[p], true) {
                    return None;
                }
            }
            (perm.len() == x.len()).then(|| perm.iter().map(|&p| x[p]).collect())
        }
        Op::Resize { rows, cols } => {
            let [n, c, h, w] = x[..] else { return None };
            let inside = rows.iter().all(|&r| r < h) && cols.iter().all(|&q| q < w);
            (inside && !rows.is_empty() && !cols.is_empty()).then(|| vec![n, c, rows.len(), cols.len()])
        }
        Op::ResizeLinear(r) => {
            let [n, c, _, _] = x[..] else { return None };
            let ok =
                r.out.iter().all(|&o| (1..=1 << 16).contains(&o)) && r.scales.iter().all(|s| s.is_finite() && *s > 0.0);
            ok.then(|| vec![n, c, r.out[0], r.out[1]])
        }
        Op::Concat { axis } => {
            let mut out = x.clone();
            if *axis >= out.len() {
                return None;
            }
            for v in &ins[1..] {
                if v.shape.len() != out.len() || (0..out.len()).any(|d| d != *axis && v.shape[d] != out[d]) {
                    return None;
                }
                out[*axis] += v.shape[*axis];
            }
            Some(out)
        }
        _ => None,
    }
}

impl fmt::Display for Graph {
    /// A one-line-per-node summary: `name: op(inputs) -> output [shape] type`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "graph {}", self.name)?;
        for &i in &self.inputs {
            let v = &self.values[i];
            writeln!(f, "  input {} {:?} {}", v.name, v.shape, v.ty.name())?;
        }
        for n in &self.nodes {
            let ins: Vec<&str> = n.inputs.iter().map(|&i| self.values[i].name.as_str()).collect();
            let y = &self.values[n.outputs[0]];
            write!(f, "  {}: {}({}) -> {} {:?} {}", n.name, n.op.name(), ins.join(", "), y.name, y.shape, y.ty.name())?;
            if let Some(q) = y.quant {
                write!(f, " scale={} zp={}", q.scale, q.zero_point)?;
            }
            writeln!(f)?;
        }
        for &o in &self.outputs {
            writeln!(f, "  output {}", self.values[o].name)?;
        }
        Ok(())
    }
}
