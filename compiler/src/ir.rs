//! The quantized graph IR: what every importer (ONNX QOperator, ONNX QDQ,
//! the text model format) produces and what the reference interpreter and
//! the lowering consume.
//!
//! Conventions:
//! - Activations are NCHW (or N x features) as in ONNX, quantized per
//!   tensor: `real = scale * (q - zero_point)`, `q` int8 or uint8.
//! - Weights are int8, symmetric (zero point 0), with one scale per output
//!   channel (a single scale is stored repeated). Biases are int32 in the
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
}

impl ElemType {
    /// The integer range of a quantized type.
    pub fn range(self) -> Option<(i32, i32)> {
        match self {
            ElemType::I8 => Some((-128, 127)),
            ElemType::U8 => Some((0, 255)),
            ElemType::F32 => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ElemType::I8 => "i8",
            ElemType::U8 => "u8",
            ElemType::F32 => "f32",
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
        }
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
                Op::Add { .. } => 2,
                Op::Concat { .. } => ins.len().max(1),
                _ => 1,
            };
            if ins.len() != arity || outs.len() != 1 {
                return Err(err(format!("takes {arity} input(s) and 1 output, has {} and {}", ins.len(), outs.len())));
            }
            let (x, y) = (ins[0], outs[0]);
            let quantized = |v: &Value| v.ty != ElemType::F32 && v.quant.is_some();
            match &n.op {
                Op::Quantize => {
                    if x.ty != ElemType::F32 || !quantized(y) {
                        return Err(err("quantizes a float tensor into a quantized one".into()));
                    }
                }
                Op::Dequantize => {
                    if !quantized(x) || y.ty != ElemType::F32 {
                        return Err(err("dequantizes a quantized tensor into a float one".into()));
                    }
                }
                _ => {
                    if !ins.iter().all(|v| quantized(v)) || !quantized(y) {
                        return Err(err("operates on quantized tensors only".into()));
                    }
                }
            }
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

fn conv_out(size: usize, k: usize, stride: usize, pad: usize, dil: usize) -> Option<usize> {
    let eff = dil * (k - 1) + 1;
    (size + pad >= eff && stride > 0).then(|| (size + pad - eff) / stride + 1)
}

/// The output shape an op gives its inputs, None if they do not fit.
pub fn infer_shape(op: &Op, ins: &[&Value]) -> Option<Vec<usize>> {
    let x = &ins.first()?.shape;
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
