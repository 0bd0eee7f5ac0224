//! The float reference: an fp32 ONNX model (the one a quantized model was
//! made from) run on the host, so `systole compare` has the float baseline
//! the quantized variants are judged against.
//!
//! The quantized IR has no float arithmetic, so this is a separate, small
//! interpreter over the ONNX nodes themselves (decoded with the importer's
//! `proto` types): one float input, one float output, nodes in their
//! (topological) order, every shape static (a symbolic leading batch
//! dimension is taken as 1, as the importer does). Ops: `Conv` (2-D NCHW,
//! groups, pads, strides, dilations), `Gemm`, `MatMul`, `Add` / `Sub` /
//! `Mul` / `Div` (NumPy broadcasting), `Relu`, `Clip`, `Sigmoid`, `Tanh`,
//! `Softmax`, `BatchNormalization` (inference), `MaxPool`, `AveragePool`,
//! `GlobalAveragePool`, `Flatten`, `Reshape`, `Transpose`, `Identity`,
//! `Dropout` (inference: the identity) and `Constant`. Anything else is
//! [`ImportError::UnsupportedOp`] naming the node.
//!
//! Sums of products (Conv, Gemm, MatMul) accumulate in f64 and round once
//! to f32, so the result is within an ulp or two of the exact value; ONNX
//! Runtime's blocked f32 kernels differ from it by their own rounding
//! (`compiler/tests/float_ref.rs` bounds the difference on the digits
//! models). [`FloatModel::load`] runs the model once on zeros, so every
//! shape is checked (and the output's known) before any input runs.

use std::collections::HashMap;
use std::rc::Rc;

use prost::Message;

use super::import::{attr_float, attr_int, attr_ints, input_name, unique_attrs, who_of, Who};
use super::proto::{tensor_proto::DataType, type_proto, ModelProto, NodeProto};
use super::tensor::{checked_elements, dtype_name, Data, Tensor};
use super::ImportError;

type Result<T> = std::result::Result<T, ImportError>;

/// Ops that make a model quantized: such a model is compiled for the
/// accelerator, never run here.
const QUANTIZED_OPS: &[&str] = &[
    "QuantizeLinear",
    "DequantizeLinear",
    "DynamicQuantizeLinear",
    "MatMulInteger",
    "ConvInteger",
    "QLinearConv",
    "QLinearMatMul",
];

/// Whether an ONNX model is a float model (no quantization op, no
/// `QLinear*` / `com.microsoft` quantized op): what `systole compare`
/// runs on the host. Bytes that do not decode are not a float model (the
/// importer then says why).
pub fn is_float_model(bytes: &[u8]) -> bool {
    let Ok(model) = ModelProto::decode(bytes) else { return false };
    let Some(graph) = model.graph.as_ref() else { return false };
    !graph.node.iter().any(|n| {
        let op = n.op_type();
        QUANTIZED_OPS.contains(&op) || op.starts_with("QLinear") || op.starts_with("QGemm")
    })
}

/// A float tensor, row-major.
#[derive(Clone, Debug, PartialEq)]
struct F {
    shape: Vec<usize>,
    data: Vec<f32>,
}

/// What an ONNX name holds while the model runs.
#[derive(Clone, Debug)]
enum V {
    F(Rc<F>),
    /// An integer constant (a `Reshape` shape, `Constant` int64).
    I(Rc<Vec<i64>>),
}

/// A float ONNX model ready to run on the host.
#[derive(Debug)]
pub struct FloatModel {
    name: String,
    nodes: Vec<NodeProto>,
    /// Initializers and `Constant` outputs are decoded on first use.
    inits: HashMap<String, Rc<Tensor>>,
    opset: i64,
    input: String,
    input_shape: Vec<usize>,
    output: String,
    output_shape: Vec<usize>,
}

impl FloatModel {
    /// Decodes an fp32 ONNX model and checks it by one run on zeros.
    pub fn load(bytes: &[u8]) -> Result<FloatModel> {
        let model = ModelProto::decode(bytes)?;
        let opset = model.opset_import.iter().find(|o| matches!(o.domain(), "" | "ai.onnx")).map_or(1, |o| o.version());
        let graph = model.graph.ok_or(ImportError::NoGraph)?;
        let mut inits = HashMap::new();
        for t in &graph.initializer {
            let who = Who { node: t.name().to_string(), op: "initializer".into() };
            let tensor = Tensor::from_proto(t).map_err(|e| super::import::tensor_error(&who, "the tensor", e))?;
            inits.insert(t.name().to_string(), Rc::new(tensor));
        }
        let inputs: Vec<_> = graph.input.iter().filter(|vi| !inits.contains_key(vi.name())).collect();
        let [input] = inputs.as_slice() else {
            return Err(ImportError::Unsupported {
                node: "(graph)".into(),
                op: "graph input".into(),
                what: format!("{} inputs; the float reference runs models with one input", inputs.len()),
            });
        };
        let [output] = graph.output.as_slice() else {
            return Err(ImportError::Unsupported {
                node: "(graph)".into(),
                op: "graph output".into(),
                what: format!("{} outputs; the float reference runs models with one output", graph.output.len()),
            });
        };
        let input_shape = float_input_shape(input)?;
        let mut m = FloatModel {
            name: graph.name().to_string(),
            nodes: graph.node,
            inits,
            opset,
            input: input.name().to_string(),
            input_shape,
            output: output.name().to_string(),
            output_shape: Vec::new(),
        };
        let zeros = vec![0.0; m.input_elements()];
        m.output_shape = m.eval(&zeros)?.shape;
        Ok(m)
    }

    /// The graph's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn input_name(&self) -> &str {
        &self.input
    }

    /// The input's shape (a symbolic batch dimension as 1).
    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    pub fn input_elements(&self) -> usize {
        self.input_shape.iter().product()
    }

    pub fn output_name(&self) -> &str {
        &self.output
    }

    pub fn output_shape(&self) -> &[usize] {
        &self.output_shape
    }

    /// The bytes of the model's float parameters (every float initializer
    /// and `Constant`, 4 bytes an element).
    pub fn parameter_bytes(&self) -> u64 {
        let constants = self.nodes.iter().filter(|n| n.op_type() == "Constant").filter_map(|n| {
            n.attribute
                .iter()
                .find(|a| a.name() == "value")
                .and_then(|a| a.t.as_ref())
                .map(|t| (t.data_type(), &t.dims))
        });
        let inits = self.inits.values().filter(|t| matches!(t.data, Data::F32(_))).map(|t| t.len() as u64);
        let consts = constants
            .filter(|(ty, _)| *ty == DataType::Float as i32)
            .map(|(_, dims)| dims.iter().map(|&d| d.max(0) as u64).product::<u64>());
        4 * (inits.sum::<u64>() + consts.sum::<u64>())
    }

    /// Runs one inference: `x` holds the input's elements (row-major).
    pub fn run(&self, x: &[f32]) -> Result<Vec<f32>> {
        if x.len() != self.input_elements() {
            return Err(ImportError::Invalid {
                node: self.input.clone(),
                op: "graph input".into(),
                what: format!(
                    "{} elements given, the input's shape {:?} holds {}",
                    x.len(),
                    self.input_shape,
                    self.input_elements()
                ),
            });
        }
        Ok(self.eval(x)?.data)
    }

    fn eval(&self, x: &[f32]) -> Result<F> {
        let mut vals: HashMap<&str, V> = HashMap::new();
        vals.insert(&self.input, V::F(Rc::new(F { shape: self.input_shape.clone(), data: x.to_vec() })));
        for (i, n) in self.nodes.iter().enumerate() {
            let who = who_of(n, i);
            unique_attrs(&who, n)?;
            let out = self.node(&who, n, &vals)?;
            let name = n.output.first().map(String::as_str).filter(|s| !s.is_empty());
            let name = name.ok_or_else(|| who.invalid("the node has no output"))?;
            vals.insert(name, out);
        }
        match vals.remove(self.output.as_str()) {
            Some(V::F(f)) => Ok(Rc::unwrap_or_clone(f)),
            Some(V::I(_)) => Err(ImportError::Unsupported {
                node: self.output.clone(),
                op: "graph output".into(),
                what: "an integer output (the float reference computes float outputs)".into(),
            }),
            None => Err(ImportError::Invalid {
                node: self.output.clone(),
                op: "graph output".into(),
                what: "no node computes it".into(),
            }),
        }
    }

    fn value(&self, who: &Who, name: &str, vals: &HashMap<&str, V>) -> Result<V> {
        if let Some(v) = vals.get(name) {
            return Ok(v.clone());
        }
        let t = self.inits.get(name).ok_or_else(|| {
            who.invalid(format!("input `{name}` is not defined before the node (nodes must be in topological order)"))
        })?;
        tensor_value(who, t)
    }

    fn node(&self, who: &Who, n: &NodeProto, vals: &HashMap<&str, V>) -> Result<V> {
        if !matches!(n.domain(), "" | "ai.onnx") {
            return Err(ImportError::UnsupportedOp { node: who.node.clone(), op: who.op.clone() });
        }
        let input = |i: usize| -> Result<V> {
            let name = input_name(n, i).ok_or_else(|| who.invalid(format!("missing input {i}")))?;
            self.value(who, name, vals)
        };
        let float = |i: usize| -> Result<Rc<F>> {
            match input(i)? {
                V::F(f) => Ok(f),
                V::I(_) => Err(who.unsupported(format!("input {i} is an integer tensor; the op takes float"))),
            }
        };
        let opt_float = |i: usize| -> Result<Option<Rc<F>>> { input_name(n, i).map(|_| float(i)).transpose() };
        let f = |t: F| -> Result<V> { Ok(V::F(Rc::new(t))) };
        match n.op_type() {
            "Constant" => {
                let t = n.attribute.iter().find(|a| a.name() == "value").and_then(|a| a.t.as_ref());
                let t = t.ok_or_else(|| who.unsupported("a Constant without a `value` tensor"))?;
                let t = Tensor::from_proto(t).map_err(|e| super::import::tensor_error(who, "value", e))?;
                tensor_value(who, &t)
            }
            "Identity" | "Dropout" => input(0),
            "Relu" => f(map(&*float(0)?, |v| v.max(0.0))),
            "Sigmoid" => f(map(&*float(0)?, |v| 1.0 / (1.0 + (-v).exp()))),
            "Tanh" => f(map(&*float(0)?, f32::tanh)),
            "Clip" => {
                let (mut lo, mut hi) =
                    (attr_float(who, n, "min")?.unwrap_or(f32::MIN), attr_float(who, n, "max")?.unwrap_or(f32::MAX));
                if let Some(t) = opt_float(1)? {
                    lo = scalar(who, &t, "min")?;
                }
                if let Some(t) = opt_float(2)? {
                    hi = scalar(who, &t, "max")?;
                }
                f(map(&*float(0)?, |v| v.max(lo).min(hi)))
            }
            op @ ("Add" | "Sub" | "Mul" | "Div") => {
                let g: fn(f32, f32) -> f32 = match op {
                    "Add" => |a, b| a + b,
                    "Sub" => |a, b| a - b,
                    "Mul" => |a, b| a * b,
                    _ => |a, b| a / b,
                };
                f(broadcast(who, &*float(0)?, &*float(1)?, g)?)
            }
            "Gemm" => f(gemm(who, n, &*float(0)?, &*float(1)?, opt_float(2)?.as_deref())?),
            "MatMul" => f(matmul(who, &*float(0)?, &*float(1)?)?),
            "Conv" => f(conv(who, n, &*float(0)?, &*float(1)?, opt_float(2)?.as_deref())?),
            "MaxPool" => f(pool(who, n, &*float(0)?, Pool::Max)?),
            "AveragePool" => f(pool(who, n, &*float(0)?, Pool::Avg)?),
            "GlobalAveragePool" => f(pool(who, n, &*float(0)?, Pool::GlobalAvg)?),
            "BatchNormalization" => {
                let [x, s, b, mean, var] = [float(0)?, float(1)?, float(2)?, float(3)?, float(4)?];
                f(batch_norm(who, n, &x, [&*s, &*b, &*mean, &*var])?)
            }
            "Flatten" => {
                let x = float(0)?;
                // Flatten's axis may be the rank itself (everything in the outer dimension).
                let (axis, rank) = (attr_int(who, n, "axis")?.unwrap_or(1), x.shape.len() as i64);
                let axis = if axis < 0 { axis + rank } else { axis };
                if !(0..=rank).contains(&axis) {
                    return Err(who.invalid(format!("axis {axis} is out of range for rank {rank}")));
                }
                let axis = axis as usize;
                let outer = x.shape[..axis].iter().product();
                f(F { shape: vec![outer, x.shape[axis..].iter().product()], data: x.data.clone() })
            }
            "Reshape" => {
                let x = float(0)?;
                let V::I(spec) = input(1)? else {
                    return Err(who.unsupported("a shape that is not an int64 constant"));
                };
                let allowzero = attr_int(who, n, "allowzero")?.unwrap_or(0) != 0;
                let shape = super::import::reshape_target(who, &x.shape, &spec, allowzero)?;
                f(F { shape, data: x.data.clone() })
            }
            "Transpose" => {
                let x = float(0)?;
                let perm = match attr_ints(who, n, "perm")? {
                    Some(p) => p.iter().map(|&a| axis_in(who, a, x.shape.len())).collect::<Result<Vec<_>>>()?,
                    None => (0..x.shape.len()).rev().collect(),
                };
                f(transpose(who, &x, &perm)?)
            }
            "Softmax" => {
                let x = float(0)?;
                let default = if self.opset >= 13 { -1 } else { 1 };
                let axis = axis_in(who, attr_int(who, n, "axis")?.unwrap_or(default), x.shape.len())?;
                f(softmax(&x, axis, self.opset >= 13))
            }
            _ => Err(ImportError::UnsupportedOp { node: who.node.clone(), op: who.op.clone() }),
        }
    }
}

/// The graph input's shape; it must be float.
fn float_input_shape(vi: &super::proto::ValueInfoProto) -> Result<Vec<usize>> {
    use super::proto::tensor_shape_proto::dimension::Value as D;
    let who = Who { node: vi.name().to_string(), op: "graph input".into() };
    let Some(type_proto::Value::TensorType(tt)) = vi.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Err(who.unsupported("an input that is not a tensor"));
    };
    if tt.elem_type() != DataType::Float as i32 {
        return Err(
            who.unsupported(format!("element type {} (the float reference takes float)", dtype_name(tt.elem_type())))
        );
    }
    let shape = tt.shape.as_ref().ok_or_else(|| who.unsupported("an input without a static shape"))?;
    let mut dims = Vec::new();
    for (i, d) in shape.dim.iter().enumerate() {
        match &d.value {
            Some(D::DimValue(v)) if (1..=i64::from(u32::MAX)).contains(v) => dims.push(*v as usize),
            Some(D::DimValue(v)) => return Err(who.unsupported(format!("dimension {i} of size {v}"))),
            // A symbolic batch dimension is taken as 1, as the importer does.
            _ if i == 0 => dims.push(1),
            _ => {
                return Err(who.unsupported(format!(
                    "a symbolic dimension at axis {i} (only the leading batch dimension may be symbolic)"
                )))
            }
        }
    }
    checked_elements(&dims).ok_or_else(|| who.unsupported(format!("shape {dims:?} is too large")))?;
    Ok(dims)
}

fn tensor_value(who: &Who, t: &Tensor) -> Result<V> {
    match &t.data {
        Data::F32(v) => Ok(V::F(Rc::new(F { shape: t.dims.clone(), data: v.clone() }))),
        Data::I64(v) => Ok(V::I(Rc::new(v.clone()))),
        _ => Err(who.unsupported(format!("a {} tensor (the float reference computes in float)", t.type_name()))),
    }
}

fn axis_in(who: &Who, axis: i64, rank: usize) -> Result<usize> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    if (0..rank as i64).contains(&a) {
        Ok(a as usize)
    } else {
        Err(who.invalid(format!("axis {axis} is out of range for rank {rank}")))
    }
}

fn scalar(who: &Who, t: &F, what: &str) -> Result<f32> {
    match t.data.as_slice() {
        [v] => Ok(*v),
        _ => Err(who.invalid(format!("`{what}` must be a scalar, it has shape {:?}", t.shape))),
    }
}

fn map(x: &F, g: impl Fn(f32) -> f32) -> F {
    F { shape: x.shape.clone(), data: x.data.iter().map(|&v| g(v)).collect() }
}

/// Row-major strides of `shape`, 0 where a dimension is broadcast (size 1
/// against a larger one in `out`).
fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let pad = out.len() - shape.len();
    let mut strides = vec![0; out.len()];
    let mut s = 1;
    for i in (0..shape.len()).rev() {
        strides[pad + i] = if shape[i] == 1 && out[pad + i] != 1 { 0 } else { s };
        s *= shape[i];
    }
    strides
}

/// `g(a, b)` element-wise under NumPy broadcasting.
fn broadcast(who: &Who, a: &F, b: &F, g: impl Fn(f32, f32) -> f32) -> Result<F> {
    let rank = a.shape.len().max(b.shape.len());
    let dim = |s: &[usize], i: usize| if i + s.len() < rank { 1 } else { s[i + s.len() - rank] };
    let mut shape = Vec::with_capacity(rank);
    for i in 0..rank {
        let (x, y) = (dim(&a.shape, i), dim(&b.shape, i));
        shape.push(match (x, y) {
            _ if x == y => x,
            (1, _) => y,
            (_, 1) => x,
            _ => return Err(who.invalid(format!("shapes {:?} and {:?} do not broadcast", a.shape, b.shape))),
        });
    }
    let (sa, sb) = (broadcast_strides(&a.shape, &shape), broadcast_strides(&b.shape, &shape));
    let n: usize = shape.iter().product();
    let mut data = Vec::with_capacity(n);
    let mut idx = vec![0usize; rank];
    for _ in 0..n {
        let (ia, ib) = idx.iter().enumerate().fold((0, 0), |(p, q), (d, &i)| (p + i * sa[d], q + i * sb[d]));
        data.push(g(a.data[ia], b.data[ib]));
        for d in (0..rank).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Ok(F { shape, data })
}

/// `[rows, cols]` of a 2-D tensor.
fn matrix(who: &Who, t: &F, what: &str) -> Result<(usize, usize)> {
    match t.shape.as_slice() {
        &[r, c] => Ok((r, c)),
        s => Err(who.unsupported(format!("{what} of shape {s:?} (Gemm takes 2-D matrices)"))),
    }
}

fn gemm(who: &Who, n: &NodeProto, a: &F, b: &F, c: Option<&F>) -> Result<F> {
    let alpha = f64::from(attr_float(who, n, "alpha")?.unwrap_or(1.0));
    let beta = attr_float(who, n, "beta")?.unwrap_or(1.0);
    let (ta, tb) = (attr_int(who, n, "transA")?.unwrap_or(0) != 0, attr_int(who, n, "transB")?.unwrap_or(0) != 0);
    let (ar, ac) = matrix(who, a, "A")?;
    let (br, bc) = matrix(who, b, "B")?;
    let (m, k) = if ta { (ac, ar) } else { (ar, ac) };
    let (kb, nn) = if tb { (bc, br) } else { (br, bc) };
    if k != kb {
        return Err(
            who.invalid(format!("A {:?} and B {:?} do not multiply (transA {ta}, transB {tb})", a.shape, b.shape))
        );
    }
    let at = |i: usize, p: usize| f64::from(if ta { a.data[p * ac + i] } else { a.data[i * ac + p] });
    let bt = |p: usize, j: usize| f64::from(if tb { b.data[j * bc + p] } else { b.data[p * bc + j] });
    let mut data = Vec::with_capacity(m * nn);
    for i in 0..m {
        for j in 0..nn {
            data.push((alpha * (0..k).map(|p| at(i, p) * bt(p, j)).sum::<f64>()) as f32);
        }
    }
    let y = F { shape: vec![m, nn], data };
    match c {
        None => Ok(y),
        Some(c) => {
            let out = broadcast(who, &y, c, |y, c| y + beta * c)?;
            if out.shape != y.shape {
                return Err(who.invalid(format!("C of shape {:?} does not broadcast to [{m}, {nn}]", c.shape)));
            }
            Ok(out)
        }
    }
}

/// `[..., M, K] x [K, N]`, or both `[B, M, K] x [B, K, N]` with the same
/// leading dimensions.
fn matmul(who: &Who, a: &F, b: &F) -> Result<F> {
    let (ra, rb) = (a.shape.len(), b.shape.len());
    if ra < 2 || rb < 2 || (rb > 2 && a.shape[..ra - 2] != b.shape[..rb - 2]) {
        return Err(who.unsupported(format!(
            "MatMul of shapes {:?} and {:?} (the float reference multiplies [..., M, K] by [K, N] or by [..., K, N] \
             of the same leading dimensions)",
            a.shape, b.shape
        )));
    }
    let (m, k) = (a.shape[ra - 2], a.shape[ra - 1]);
    let (kb, nn) = (b.shape[rb - 2], b.shape[rb - 1]);
    if k != kb {
        return Err(who.invalid(format!("shapes {:?} and {:?} do not multiply", a.shape, b.shape)));
    }
    let batches: usize = a.shape[..ra - 2].iter().product();
    let mut data = Vec::with_capacity(batches * m * nn);
    for t in 0..batches {
        let (ao, bo) = (t * m * k, if rb > 2 { t * k * nn } else { 0 });
        for i in 0..m {
            for j in 0..nn {
                let s: f64 =
                    (0..k).map(|p| f64::from(a.data[ao + i * k + p]) * f64::from(b.data[bo + p * nn + j])).sum();
                data.push(s as f32);
            }
        }
    }
    let mut shape = a.shape[..ra - 2].to_vec();
    shape.extend([m, nn]);
    Ok(F { shape, data })
}

/// The 2-D window geometry of a Conv or pooling node on NCHW input.
struct Window {
    kernel: [usize; 2],
    strides: [usize; 2],
    dilations: [usize; 2],
    /// `[top, left, bottom, right]`.
    pads: [usize; 4],
    out: [usize; 2],
}

/// Reads kernel (or `kernel` from the weights), strides, dilations, pads,
/// auto_pad and ceil_mode, and computes the output size.
fn window(who: &Who, n: &NodeProto, input: &[usize], kernel: Option<[usize; 2]>) -> Result<Window> {
    if input.len() != 4 {
        return Err(who.unsupported(format!("input of shape {input:?} (2-D NCHW only)")));
    }
    let pair = |name: &str, default: usize| -> Result<[usize; 2]> {
        match attr_ints(who, n, name)? {
            None => Ok([default; 2]),
            Some(v) if v.len() == 2 && v.iter().all(|&x| (1..=1 << 20).contains(&x)) => {
                Ok([v[0] as usize, v[1] as usize])
            }
            Some(v) => Err(who.unsupported(format!("`{name}` = {v:?} (2-D, values in [1, 2^20])"))),
        }
    };
    let kernel = match (attr_ints(who, n, "kernel_shape")?, kernel) {
        (None, Some(k)) => k,
        (Some(_), _) => pair("kernel_shape", 1)?,
        (None, None) => return Err(who.invalid("no `kernel_shape`")),
    };
    let (strides, dilations) = (pair("strides", 1)?, pair("dilations", 1)?);
    let auto_pad =
        n.attribute.iter().find(|a| a.name() == "auto_pad").map(|a| String::from_utf8_lossy(a.s()).into_owned());
    let pads = match (auto_pad.as_deref(), attr_ints(who, n, "pads")?) {
        (None | Some("NOTSET"), Some(p)) if p.len() == 4 && p.iter().all(|&x| (0..=1 << 20).contains(&x)) => {
            [p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize]
        }
        (None | Some("NOTSET"), Some(p)) => return Err(who.unsupported(format!("`pads` = {p:?} (2-D, 4 values)"))),
        (None | Some("NOTSET" | "VALID"), None) => [0; 4],
        (Some(other), _) => {
            return Err(who.unsupported(format!("auto_pad = {other} (only NOTSET with explicit pads, or VALID)")))
        }
    };
    let ceil = attr_int(who, n, "ceil_mode")?.unwrap_or(0) != 0;
    let mut out = [0; 2];
    for d in 0..2 {
        let span = dilations[d] * (kernel[d] - 1) + 1;
        let padded = input[2 + d] + pads[d] + pads[d + 2];
        if padded < span {
            return Err(who.invalid(format!("the window ({span}) is larger than the padded input ({padded})")));
        }
        let steps = padded - span;
        out[d] = if ceil { steps.div_ceil(strides[d]) } else { steps / strides[d] } + 1;
        // ceil_mode never starts a window in the end padding.
        if ceil && (out[d] - 1) * strides[d] >= input[2 + d] + pads[d] {
            out[d] -= 1;
        }
    }
    Ok(Window { kernel, strides, dilations, pads, out })
}

fn conv(who: &Who, n: &NodeProto, x: &F, w: &F, bias: Option<&F>) -> Result<F> {
    let &[co, cig, kh, kw] = w.shape.as_slice() else {
        return Err(who.unsupported(format!("weights of shape {:?} (2-D convolution only)", w.shape)));
    };
    if w.data.is_empty() {
        return Err(who.invalid(format!("weights of shape {:?} hold nothing", w.shape)));
    }
    let win = window(who, n, &x.shape, Some([kh, kw]))?;
    if win.kernel != [kh, kw] {
        return Err(who.invalid(format!("`kernel_shape` {:?} differs from the weights' {:?}", win.kernel, [kh, kw])));
    }
    let groups = attr_int(who, n, "group")?.unwrap_or(1);
    let (nb, ci, h, wi) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
    if groups < 1 || ci % groups as usize != 0 || co % groups as usize != 0 || ci / groups as usize != cig {
        return Err(who.invalid(format!("group {groups} does not fit input {:?} and weights {:?}", x.shape, w.shape)));
    }
    let groups = groups as usize;
    if let Some(b) = bias.filter(|b| b.data.len() != co) {
        return Err(who.invalid(format!("bias of shape {:?} for {co} output channels", b.shape)));
    }
    let [oh, ow] = win.out;
    let (cog, mut data) = (co / groups, Vec::with_capacity(nb * co * oh * ow));
    for b in 0..nb {
        for o in 0..co {
            let g = o / cog;
            for y in 0..oh {
                for xo in 0..ow {
                    let mut s = bias.map_or(0.0, |b| f64::from(b.data[o]));
                    for c in 0..cig {
                        let plane = ((b * ci) + g * cig + c) * h * wi;
                        for i in 0..kh {
                            let iy = (y * win.strides[0] + i * win.dilations[0]).wrapping_sub(win.pads[0]);
                            if iy >= h {
                                continue;
                            }
                            for j in 0..kw {
                                let ix = (xo * win.strides[1] + j * win.dilations[1]).wrapping_sub(win.pads[1]);
                                if ix < wi {
                                    let wv = w.data[((o * cig + c) * kh + i) * kw + j];
                                    s += f64::from(x.data[plane + iy * wi + ix]) * f64::from(wv);
                                }
                            }
                        }
                    }
                    data.push(s as f32);
                }
            }
        }
    }
    Ok(F { shape: vec![nb, co, oh, ow], data })
}

#[derive(Clone, Copy, PartialEq)]
enum Pool {
    Max,
    Avg,
    GlobalAvg,
}

fn pool(who: &Who, n: &NodeProto, x: &F, kind: Pool) -> Result<F> {
    let win = match kind {
        Pool::GlobalAvg if x.shape.len() == 4 => {
            Window { kernel: [x.shape[2], x.shape[3]], strides: [1; 2], dilations: [1; 2], pads: [0; 4], out: [1, 1] }
        }
        _ => window(who, n, &x.shape, None)?,
    };
    let count_pad = attr_int(who, n, "count_include_pad")?.unwrap_or(0) != 0;
    let (nc, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3]);
    let [oh, ow] = win.out;
    let mut data = Vec::with_capacity(nc * oh * ow);
    for p in 0..nc {
        let plane = &x.data[p * h * w..(p + 1) * h * w];
        for y in 0..oh {
            for xo in 0..ow {
                let (mut max, mut sum, mut inside, mut padded) = (f32::NEG_INFINITY, 0.0f64, 0usize, 0usize);
                for i in 0..win.kernel[0] {
                    let iy = y * win.strides[0] + i * win.dilations[0];
                    for j in 0..win.kernel[1] {
                        let ix = xo * win.strides[1] + j * win.dilations[1];
                        // Within the padded input (ceil_mode windows may run past it).
                        if iy < h + win.pads[0] + win.pads[2] && ix < w + win.pads[1] + win.pads[3] {
                            padded += 1;
                        }
                        let (iy, ix) = (iy.wrapping_sub(win.pads[0]), ix.wrapping_sub(win.pads[1]));
                        if iy < h && ix < w {
                            let v = plane[iy * w + ix];
                            max = max.max(v);
                            sum += f64::from(v);
                            inside += 1;
                        }
                    }
                }
                data.push(match kind {
                    Pool::Max => max,
                    _ => (sum / (if count_pad { padded } else { inside }).max(1) as f64) as f32,
                });
            }
        }
    }
    Ok(F { shape: vec![x.shape[0], x.shape[1], oh, ow], data })
}

fn batch_norm(who: &Who, n: &NodeProto, x: &F, [s, b, mean, var]: [&F; 4]) -> Result<F> {
    let eps = attr_float(who, n, "epsilon")?.unwrap_or(1e-5);
    let c = *x.shape.get(1).ok_or_else(|| who.invalid(format!("input of shape {:?} has no channels", x.shape)))?;
    if [s, b, mean, var].iter().any(|t| t.data.len() != c) {
        return Err(who.invalid(format!("scale, bias, mean and var must hold {c} values (one per channel)")));
    }
    let inner: usize = x.shape[2..].iter().product();
    let data = x
        .data
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let k = (i / inner) % c;
            s.data[k] * (v - mean.data[k]) / (var.data[k] + eps).sqrt() + b.data[k]
        })
        .collect();
    Ok(F { shape: x.shape.clone(), data })
}

fn transpose(who: &Who, x: &F, perm: &[usize]) -> Result<F> {
    let rank = x.shape.len();
    let mut seen = vec![false; rank];
    if perm.len() != rank || perm.iter().any(|&p| std::mem::replace(&mut seen[p], true)) {
        return Err(who.invalid(format!("perm {perm:?} is not a permutation of {rank} axes")));
    }
    let shape: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
    let in_strides = broadcast_strides(&x.shape, &x.shape);
    let mut data = Vec::with_capacity(x.data.len());
    let mut idx = vec![0usize; rank];
    for _ in 0..x.data.len() {
        data.push(x.data[idx.iter().enumerate().map(|(d, &i)| i * in_strides[perm[d]]).sum::<usize>()]);
        for d in (0..rank).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Ok(F { shape, data })
}

/// Softmax along `axis` (opset 13 on), or over everything from `axis` on
/// (the coerced 2-D form before opset 13).
fn softmax(x: &F, axis: usize, single_axis: bool) -> F {
    let (len, inner) = if single_axis {
        (x.shape[axis], x.shape[axis + 1..].iter().product())
    } else {
        (x.shape[axis..].iter().product(), 1)
    };
    let mut data = x.data.clone();
    for outer in 0..x.data.len() / (len * inner).max(1) {
        for i in 0..inner {
            let at = |k: usize| outer * len * inner + k * inner + i;
            let max = (0..len).map(|k| x.data[at(k)]).fold(f32::NEG_INFINITY, f32::max);
            let sum: f64 = (0..len).map(|k| f64::from((x.data[at(k)] - max).exp())).sum();
            for k in 0..len {
                data[at(k)] = (f64::from((x.data[at(k)] - max).exp()) / sum) as f32;
            }
        }
    }
    F { shape: x.shape.clone(), data }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(shape: &[usize], data: &[f32]) -> F {
        F { shape: shape.to_vec(), data: data.to_vec() }
    }

    fn who() -> Who {
        Who { node: "n".into(), op: "Op".into() }
    }

    #[test]
    fn broadcasting_follows_numpy() {
        let a = f(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        let b = f(&[3], &[10., 20., 30.]);
        assert_eq!(broadcast(&who(), &a, &b, |x, y| x + y).unwrap(), f(&[2, 3], &[11., 22., 33., 14., 25., 36.]));
        let c = f(&[2, 1], &[1., 2.]);
        assert_eq!(broadcast(&who(), &a, &c, |x, y| x * y).unwrap(), f(&[2, 3], &[1., 2., 3., 8., 10., 12.]));
        let e = broadcast(&who(), &a, &f(&[2], &[1., 2.]), |x, _| x).unwrap_err().to_string();
        assert!(e.contains("do not broadcast"), "{e}");
    }

    #[test]
    fn transpose_and_softmax() {
        let a = f(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        assert_eq!(transpose(&who(), &a, &[1, 0]).unwrap(), f(&[3, 2], &[1., 4., 2., 5., 3., 6.]));
        let s = softmax(&f(&[1, 2], &[0., 0.]), 1, true);
        assert_eq!(s.data, [0.5, 0.5]);
    }

    /// A node with integer-list attributes (and `ceil_mode`, `group`,
    /// `count_include_pad` as ints).
    fn node(op: &str, attrs: &[(&str, &[i64])]) -> NodeProto {
        use super::super::proto::{attribute_proto::AttributeType, AttributeProto};
        let attribute = attrs
            .iter()
            .map(|&(name, v)| {
                let single = matches!(name, "ceil_mode" | "group" | "count_include_pad");
                AttributeProto {
                    name: Some(name.into()),
                    r#type: Some(if single { AttributeType::Int } else { AttributeType::Ints } as i32),
                    i: single.then(|| v[0]),
                    ints: if single { Vec::new() } else { v.to_vec() },
                    ..Default::default()
                }
            })
            .collect();
        NodeProto { op_type: Some(op.into()), attribute, ..Default::default() }
    }

    fn nine() -> F {
        f(&[1, 1, 3, 3], &[1., 2., 3., 4., 5., 6., 7., 8., 9.])
    }

    #[test]
    fn conv_pads_strides_and_groups() {
        let n = node("Conv", &[("pads", &[1, 1, 0, 0]), ("strides", &[2, 2])]);
        let y = conv(&who(), &n, &nine(), &f(&[1, 1, 2, 2], &[1.; 4]), Some(&f(&[1], &[0.5]))).unwrap();
        // Windows from (-1, -1) by 2: {1}, {2, 3}, {4, 7}, {5, 6, 8, 9}.
        assert_eq!(y, f(&[1, 1, 2, 2], &[1.5, 5.5, 11.5, 28.5]));
        // Two groups of one channel: each output channel sees its own input.
        let two = f(&[1, 2, 1, 2], &[1., 2., 3., 4.]);
        let n = node("Conv", &[("group", &[2])]);
        let y = conv(&who(), &n, &two, &f(&[2, 1, 1, 1], &[10., 100.]), None).unwrap();
        assert_eq!(y, f(&[1, 2, 1, 2], &[10., 20., 300., 400.]));
        let e = conv(&who(), &node("Conv", &[("group", &[3])]), &two, &f(&[2, 1, 1, 1], &[1.; 2]), None);
        assert!(e.unwrap_err().to_string().contains("group 3 does not fit"));
    }

    #[test]
    fn pooling_with_ceil_mode_and_padding() {
        let k2s2 = [("kernel_shape", &[2i64, 2][..]), ("strides", &[2, 2]), ("ceil_mode", &[1])];
        let y = pool(&who(), &node("MaxPool", &k2s2), &nine(), Pool::Max).unwrap();
        assert_eq!(y, f(&[1, 1, 2, 2], &[5., 6., 8., 9.]));
        // Averages over the elements inside (count_include_pad = 0).
        let y = pool(&who(), &node("AveragePool", &k2s2), &nine(), Pool::Avg).unwrap();
        assert_eq!(y, f(&[1, 1, 2, 2], &[3., 4.5, 7.5, 9.]));
        // With padding counted: the window at (-1, -1) holds 1 of 4 inside.
        let padded = [("kernel_shape", &[2i64, 2][..]), ("pads", &[1, 1, 0, 0]), ("count_include_pad", &[1])];
        let y = pool(&who(), &node("AveragePool", &padded), &nine(), Pool::Avg).unwrap();
        assert_eq!(y.data[0], 0.25);
        assert_eq!(y.shape, [1, 1, 3, 3]);
        let y = pool(&who(), &node("GlobalAveragePool", &[]), &nine(), Pool::GlobalAvg).unwrap();
        assert_eq!(y, f(&[1, 1, 1, 1], &[5.]));
    }

    #[test]
    fn gemm_transposes_and_adds_c() {
        let n = node("Gemm", &[]);
        let mut n_t = n.clone();
        n_t.attribute.push(super::super::proto::AttributeProto {
            name: Some("transB".into()),
            r#type: Some(super::super::proto::attribute_proto::AttributeType::Int as i32),
            i: Some(1),
            ..Default::default()
        });
        let a = f(&[1, 2], &[1., 2.]);
        let y = gemm(&who(), &n, &a, &f(&[2, 2], &[1., 2., 3., 4.]), Some(&f(&[2], &[10., 20.]))).unwrap();
        assert_eq!(y, f(&[1, 2], &[17., 30.]));
        let y = gemm(&who(), &n_t, &a, &f(&[2, 2], &[1., 2., 3., 4.]), None).unwrap();
        assert_eq!(y, f(&[1, 2], &[5., 11.]));
    }

    #[test]
    fn matmul_batches_over_leading_dimensions() {
        let a = f(&[2, 1, 2], &[1., 2., 3., 4.]);
        let b = f(&[2, 1], &[10., 1.]);
        assert_eq!(matmul(&who(), &a, &b).unwrap(), f(&[2, 1, 1], &[12., 34.]));
    }
}
