//! The import proper: one pass over the ONNX nodes in order, keeping for
//! every ONNX tensor name what it stands for in the IR ([`Sym`]), then the
//! graph outputs, a pass that fuses standalone clamps into their producer,
//! and validation.
//!
//! QOperator nodes become IR nodes at once. In QDQ form a float op reading
//! dequantized tensors becomes a [`Pending`] op that the `QuantizeLinear`
//! after it (and any ReLU/Clip between) completes with the output's
//! quantization and clamp.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use prost::Message;

use super::proto::{attribute_proto::AttributeType, tensor_proto::DataType, type_proto, ModelProto, NodeProto};
use super::tensor::{checked_elements, dtype_name, Data, Tensor, TensorError};
use super::{CutOutput, FloatTail, ImportError, ImportOptions, Imported};
use crate::ir::{
    infer_shape, ConvParams, DenseParams, ElemType, Graph, Node, Op, PoolParams, Quant, Value, ValueId, WeightType,
};
use crate::lut::UnaryFn;

type Result<T> = std::result::Result<T, ImportError>;

/// Largest attribute value (stride, pad, dilation, kernel size, group)
/// accepted: keeps shape arithmetic far from overflow.
const ATTR_LIMIT: i64 = 1 << 20;

/// Relative difference allowed between a QDQ bias scale and `s_in * s_w`.
const BIAS_SCALE_TOLERANCE: f64 = 1.0 / (1u64 << 20) as f64;

/// Ops whose presence means the model is dynamically quantized.
const DYNAMIC_OPS: &[&str] = &[
    "DynamicQuantizeLinear",
    "MatMulInteger",
    "ConvInteger",
    "DynamicQuantizeMatMul",
    "MatMulIntegerToFloat",
    "DynamicQuantizeLSTM",
    "QAttention",
];

/// The node being imported, for error messages.
#[derive(Clone, Debug)]
pub(super) struct Who {
    pub(super) node: String,
    pub(super) op: String,
}

impl Who {
    pub(super) fn unsupported(&self, what: impl Into<String>) -> ImportError {
        ImportError::Unsupported { node: self.node.clone(), op: self.op.clone(), what: what.into() }
    }
    pub(super) fn invalid(&self, what: impl Into<String>) -> ImportError {
        ImportError::Invalid { node: self.node.clone(), op: self.op.clone(), what: what.into() }
    }
    fn desc(&self) -> String {
        format!("{} ({})", self.node, self.op)
    }
}

/// A dequantized tensor that a float tail reads, named after the
/// `DequantizeLinear` that produced it.
#[derive(Clone, Debug)]
struct Source {
    v: ValueId,
    node: String,
    out: String,
}

/// What an ONNX tensor name stands for.
#[derive(Clone, Debug)]
enum Sym {
    /// A float IR value (a graph input).
    Float(ValueId),
    /// A quantized IR value.
    Quant(ValueId),
    /// The dequantization of a quantized IR value, not materialized.
    Deq(Source),
    /// A constant.
    Const(Rc<Tensor>),
    /// `DequantizeLinear` of a constant (a QDQ weight or bias).
    ConstDeq(Rc<ConstDeq>),
    /// The float result of a quantizable op, waiting for `QuantizeLinear`.
    Pending(Rc<Pending>),
    /// Float arithmetic after dequantization (only with `FloatTail::Cut`).
    Tail(Rc<Tail>),
}

#[derive(Debug)]
struct ConstDeq {
    q: Rc<Tensor>,
    q_name: String,
    scale: Rc<Tensor>,
    scale_name: String,
    zp: Option<(Rc<Tensor>, String)>,
    axis: i64,
}

#[derive(Clone, Debug)]
struct Pending {
    who: Who,
    /// The op with the output type's full range as its clamp.
    op: Op,
    inputs: Vec<Source>,
    /// Float clamp bounds (ReLU / Clip) applied before quantization.
    lo: f32,
    hi: f32,
}

#[derive(Debug)]
struct Tail {
    sources: Vec<Source>,
    nodes: Vec<String>,
}

struct Ctx<'m> {
    opts: ImportOptions,
    inits: HashMap<&'m str, &'m super::proto::TensorProto>,
    syms: HashMap<String, Sym>,
    g: Graph,
    names: HashSet<String>,
    dequantized: HashMap<ValueId, ValueId>,
    /// The tensors ONNX Runtime holds channels-last (NHWC) when it runs
    /// the model: see [`Ctx::ort_channels_last`].
    channels_last: HashSet<String>,
}

pub(super) fn run(bytes: &[u8], opts: &ImportOptions) -> Result<Imported> {
    let model = ModelProto::decode(bytes)?;
    let graph = model.graph.as_ref().ok_or(ImportError::NoGraph)?;
    if super::transformer::wanted(graph) {
        return super::transformer::run(graph);
    }

    // Dynamic quantization first: it is the one thing to tell such a user.
    for (i, n) in graph.node.iter().enumerate() {
        if DYNAMIC_OPS.contains(&n.op_type()) {
            let who = who_of(n, i);
            return Err(ImportError::DynamicQuantization { node: who.node, op: who.op });
        }
    }

    let mut cx = Ctx {
        opts: *opts,
        inits: graph.initializer.iter().map(|t| (t.name(), t)).collect(),
        syms: HashMap::new(),
        g: Graph { name: graph.name().to_string(), ..Graph::default() },
        names: HashSet::new(),
        dequantized: HashMap::new(),
        channels_last: HashSet::new(),
    };
    for vi in &graph.input {
        if cx.inits.contains_key(vi.name()) {
            continue; // an initializer listed as input (IR version < 4)
        }
        cx.graph_input(vi)?;
    }
    for (i, n) in graph.node.iter().enumerate() {
        cx.node(n, &who_of(n, i))?;
    }
    let mut cut = Vec::new();
    for o in &graph.output {
        cx.graph_output(o.name(), &mut cut)?;
    }
    for &i in &cx.g.inputs {
        let v = &cx.g.values[i];
        if v.ty != ElemType::F32 && v.quant.is_none() {
            return Err(ImportError::Unsupported {
                node: v.name.clone(),
                op: "graph input".into(),
                what: "a quantized input whose scale and zero point no node states (no QLinear op or \
                       DequantizeLinear reads it directly)"
                    .into(),
            });
        }
    }
    let mut g = cx.g;
    fuse_clamps(&mut g);
    compact(&mut g);
    g.validate()?;
    Ok(Imported { graph: g, cut })
}

pub(super) fn tensor_error(who: &Who, what: &str, e: TensorError) -> ImportError {
    match e {
        TensorError::Unsupported(m) => who.unsupported(format!("{what}: {m}")),
        TensorError::Invalid(m) => who.invalid(format!("{what}: {m}")),
    }
}

pub(super) fn who_of(n: &NodeProto, index: usize) -> Who {
    let op = match n.domain() {
        "" | "ai.onnx" => n.op_type().to_string(),
        d => format!("{d}::{}", n.op_type()),
    };
    let node = if n.name().is_empty() { format!("{}#{index}", n.op_type()) } else { n.name().to_string() };
    Who { node, op }
}

pub(super) fn input_name(n: &NodeProto, i: usize) -> Option<&str> {
    n.input.get(i).map(String::as_str).filter(|s| !s.is_empty())
}

fn same_quant(a: Quant, b: Quant) -> bool {
    a.scale.to_bits() == b.scale.to_bits() && a.zero_point == b.zero_point
}

/// `QuantizeLinear` of one float as ONNX Runtime computes it: f32 division,
/// round half to even, add the zero point, saturate.
fn quantize_f32(x: f32, q: Quant, ty: ElemType) -> i32 {
    let (lo, hi) = ty.range().unwrap_or((i32::MIN, i32::MAX));
    let r = (x / q.scale).round_ties_even() as f64 + q.zero_point as f64;
    r.clamp(lo as f64, hi as f64) as i32
}

fn elem_of_code(code: i32) -> Option<ElemType> {
    match DataType::try_from(code).ok()? {
        DataType::Float => Some(ElemType::F32),
        DataType::Int8 => Some(ElemType::I8),
        DataType::Uint8 => Some(ElemType::U8),
        _ => None,
    }
}

// ---------------------------------------------------------------- attributes

fn attr<'n>(n: &'n NodeProto, name: &str) -> Option<&'n super::proto::AttributeProto> {
    n.attribute.iter().find(|a| a.name() == name)
}

/// ONNX gives each attribute once per node; a second one is ambiguous.
pub(super) fn unique_attrs(who: &Who, n: &NodeProto) -> Result<()> {
    for (i, a) in n.attribute.iter().enumerate() {
        if n.attribute[..i].iter().any(|b| b.name() == a.name()) {
            return Err(who.invalid(format!("attribute `{}` is given more than once", a.name())));
        }
    }
    Ok(())
}

/// The most inputs the ONNX (or com.microsoft) schema of a supported op
/// has; `None` for variadic ops and ops the importer does not know.
fn max_inputs(op: &str, standard: bool, ms: bool) -> Option<usize> {
    let max = match op {
        "Constant" => 0,
        "Identity" | "AveragePool" | "GlobalAveragePool" | "MaxPool" | "Flatten" | "Transpose" | "Relu" => 1,
        "Sigmoid" | "Tanh" | "HardSigmoid" | "HardSwish" | "LeakyRelu" => 1,
        "Resize" => 4,
        "QLinearSigmoid" | "QLinearLeakyRelu" if ms => 5,
        "MatMul" | "Add" | "Reshape" => 2,
        "QuantizeLinear" | "DequantizeLinear" | "Conv" | "Gemm" | "Clip" => 3,
        "QLinearMatMul" => 8,
        "QLinearConv" => 9,
        "QGemm" if ms => 9,
        "QLinearAdd" if ms => 8,
        "QLinearAveragePool" | "QLinearGlobalAveragePool" if ms => 5,
        _ => return None,
    };
    (standard || ms).then_some(max)
}

fn known_attrs(who: &Who, n: &NodeProto, known: &[&str]) -> Result<()> {
    for a in &n.attribute {
        if !known.contains(&a.name()) {
            return Err(who.unsupported(format!("attribute `{}`", a.name())));
        }
        if a.ref_attr_name.is_some() {
            return Err(who.unsupported(format!("attribute `{}` refers to a function attribute", a.name())));
        }
    }
    Ok(())
}

fn attr_is(a: &super::proto::AttributeProto, t: AttributeType, set: bool) -> bool {
    a.r#type() == t || (a.r#type() == AttributeType::Undefined && set)
}

pub(super) fn attr_int(who: &Who, n: &NodeProto, name: &str) -> Result<Option<i64>> {
    match attr(n, name) {
        None => Ok(None),
        Some(a) if attr_is(a, AttributeType::Int, a.i.is_some()) => Ok(Some(a.i())),
        Some(_) => Err(who.invalid(format!("attribute `{name}` is not an integer"))),
    }
}

/// A 0/1 integer attribute (ONNX's booleans), `false` when absent.
fn attr_flag(who: &Who, n: &NodeProto, name: &str) -> Result<bool> {
    match attr_int(who, n, name)? {
        None | Some(0) => Ok(false),
        Some(1) => Ok(true),
        Some(v) => Err(who.invalid(format!("attribute `{name}` = {v}; it must be 0 or 1"))),
    }
}

pub(super) fn attr_ints(who: &Who, n: &NodeProto, name: &str) -> Result<Option<Vec<i64>>> {
    match attr(n, name) {
        None => Ok(None),
        Some(a) if attr_is(a, AttributeType::Ints, !a.ints.is_empty()) => Ok(Some(a.ints.clone())),
        Some(_) => Err(who.invalid(format!("attribute `{name}` is not a list of integers"))),
    }
}

pub(super) fn attr_float(who: &Who, n: &NodeProto, name: &str) -> Result<Option<f32>> {
    match attr(n, name) {
        None => Ok(None),
        Some(a) if attr_is(a, AttributeType::Float, a.f.is_some()) => Ok(Some(a.f())),
        Some(_) => Err(who.invalid(format!("attribute `{name}` is not a float"))),
    }
}

fn attr_str(who: &Who, n: &NodeProto, name: &str) -> Result<Option<String>> {
    match attr(n, name) {
        None => Ok(None),
        Some(a) if attr_is(a, AttributeType::String, a.s.is_some()) => {
            Ok(Some(String::from_utf8_lossy(a.s()).into_owned()))
        }
        Some(_) => Err(who.invalid(format!("attribute `{name}` is not a string"))),
    }
}

/// An integer attribute list as sizes in `[min, ATTR_LIMIT]` of length `len`.
fn sizes(who: &Who, name: &str, vals: &[i64], len: usize, min: i64) -> Result<Vec<usize>> {
    if vals.len() != len {
        return Err(who.unsupported(format!("`{name}` = {vals:?}: expected {len} values (2-D NCHW)")));
    }
    vals.iter()
        .map(|&v| {
            if (min..=ATTR_LIMIT).contains(&v) {
                Ok(v as usize)
            } else {
                Err(who.invalid(format!("`{name}` = {vals:?}: values must lie in [{min}, {ATTR_LIMIT}]")))
            }
        })
        .collect()
}

fn axis_in(who: &Who, name: &str, axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if (0..r).contains(&a) {
        Ok(a as usize)
    } else {
        Err(who.invalid(format!("`{name}` = {axis} is out of range for rank {rank}")))
    }
}

fn auto_pad_valid(who: &Who, n: &NodeProto) -> Result<bool> {
    match attr_str(who, n, "auto_pad")?.as_deref() {
        None | Some("NOTSET") => Ok(false),
        Some("VALID") => Ok(true),
        Some(other) => Err(who.unsupported(format!(
            "auto_pad = {other} (only NOTSET with explicit pads, or VALID; re-export with explicit padding)"
        ))),
    }
}

// --------------------------------------------------------- constant helpers

fn f32_data<'t>(who: &Who, t: &'t Tensor, name: &str) -> Result<&'t [f32]> {
    match &t.data {
        Data::F32(v) => Ok(v),
        _ => Err(who.invalid(format!("`{name}` must be float, it is {}", t.type_name()))),
    }
}

/// A per-output-channel scale vector: one element (repeated) or `channels`.
fn channel_scales(who: &Who, t: &Tensor, name: &str, channels: usize) -> Result<Vec<f32>> {
    let s = f32_data(who, t, name)?;
    let v = match s.len() {
        1 => vec![s[0]; channels],
        l if l == channels => s.to_vec(),
        l => return Err(who.invalid(format!("scale `{name}` has {l} elements for {channels} output channels"))),
    };
    if let Some(x) = v.iter().find(|x| !(x.is_finite() && **x > 0.0)) {
        return Err(who.unsupported(format!("scale `{name}` holds {x}; scales must be finite and positive")));
    }
    Ok(v)
}

#[derive(Clone, Copy)]
enum Kind {
    Weight,
    Bias,
}

/// Weight or bias zero points must all be 0.
fn check_zero(who: &Who, zp: Option<(&Tensor, &str)>, what: Kind) -> Result<()> {
    let (what, whats) = match what {
        Kind::Weight => ("weight", "weights"),
        Kind::Bias => ("bias", "biases"),
    };
    let Some((t, name)) = zp else { return Ok(()) };
    let vals = t.as_i64().ok_or_else(|| who.invalid(format!("zero point `{name}` is float")))?;
    if let Some((c, z)) = vals.iter().enumerate().find(|(_, z)| **z != 0) {
        return Err(who.unsupported(format!(
            "{what} zero point `{name}` is {z} (element {c}): only symmetric {whats} (zero point 0) are supported"
        )));
    }
    Ok(())
}

/// A layer's weights and their precision: int8, or ONNX's INT4 (unpacked
/// one value per i8), each layer as the model declares it.
fn weights_i8<'t>(who: &Who, t: &'t Tensor, name: &str) -> Result<(&'t [i8], WeightType)> {
    match &t.data {
        Data::I8(v) => Ok((v, WeightType::I8)),
        Data::I4(v) => Ok((v, WeightType::I4)),
        _ => Err(who.unsupported(format!("weights `{name}` of type {} (only int8 and int4 weights)", t.type_name()))),
    }
}

fn bias_i32(who: &Who, t: &Tensor, name: &str, channels: usize) -> Result<Vec<i32>> {
    let Data::I32(v) = &t.data else {
        return Err(who.unsupported(format!("bias `{name}` of type {} (only int32 biases)", t.type_name())));
    };
    match v.len() {
        l if l == channels => Ok(v.clone()),
        1 => Ok(vec![v[0]; channels]),
        l => Err(who.invalid(format!("bias `{name}` has {l} elements for {channels} output channels"))),
    }
}

/// The QDQ bias must be in the accumulator's scale `s_in * s_w[c]`.
fn check_bias_scale(who: &Who, cd: &ConstDeq, s_in: f32, w_scale: &[f32]) -> Result<()> {
    let bs = channel_scales(who, &cd.scale, &cd.scale_name, w_scale.len())?;
    for (c, (&b, &w)) in bs.iter().zip(w_scale).enumerate() {
        let want = s_in * w;
        if ((b as f64 - want as f64) / want as f64).abs() > BIAS_SCALE_TOLERANCE {
            return Err(who.unsupported(format!(
                "bias scale `{}`[{c}] = {b:e} is not input scale × weight scale = {want:e}: the bias must be \
                 quantized in the accumulator's scale",
                cd.scale_name
            )));
        }
    }
    Ok(())
}

impl ConstDeq {
    fn zp(&self) -> Option<(&Tensor, &str)> {
        self.zp.as_ref().map(|(t, n)| (&**t, n.as_str()))
    }

    /// Per-channel weight scales along `axis` of the weight (which has
    /// `channels` entries there).
    fn weight_scales(&self, who: &Who, channels: usize, axis: usize) -> Result<Vec<f32>> {
        check_zero(who, self.zp(), Kind::Weight)?;
        let s = channel_scales(who, &self.scale, &self.scale_name, channels)?;
        if self.scale.len() > 1 {
            let a = axis_in(who, "axis", self.axis, self.q.dims.len())?;
            if a != axis {
                return Err(who.unsupported(format!(
                    "weights `{}` are quantized per channel along axis {a}; the op's output channels are axis {axis}",
                    self.q_name
                )));
            }
        }
        Ok(s)
    }
}

// ----------------------------------------------------------------- the pass

impl<'m> Ctx<'m> {
    fn unique(&mut self, name: &str) -> String {
        let mut n = name.to_string();
        let mut k = 1;
        while !self.names.insert(n.clone()) {
            n = format!("{name}#{k}");
            k += 1;
        }
        n
    }

    fn graph_input(&mut self, vi: &super::proto::ValueInfoProto) -> Result<()> {
        let who = Who { node: vi.name().to_string(), op: "graph input".into() };
        let Some(type_proto::Value::TensorType(tt)) = vi.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
            return Err(who.unsupported("an input that is not a tensor"));
        };
        let ty = elem_of_code(tt.elem_type()).ok_or_else(|| {
            who.unsupported(format!("element type {} (inputs are float, int8 or uint8)", dtype_name(tt.elem_type())))
        })?;
        let Some(shape) = &tt.shape else {
            return Err(who.unsupported("an input without a static shape"));
        };
        let mut dims = Vec::new();
        for (i, d) in shape.dim.iter().enumerate() {
            use super::proto::tensor_shape_proto::dimension::Value as D;
            match &d.value {
                Some(D::DimValue(v)) if (1..=i64::from(u32::MAX)).contains(v) => dims.push(*v as usize),
                Some(D::DimValue(v)) => return Err(who.unsupported(format!("dimension {i} of size {v}"))),
                // A symbolic batch dimension is taken as 1.
                _ if i == 0 => dims.push(1),
                Some(D::DimParam(p)) => {
                    return Err(who.unsupported(format!(
                        "symbolic dimension `{p}` at axis {i} (only the leading batch dimension may be symbolic)"
                    )))
                }
                None => return Err(who.unsupported(format!("unknown dimension at axis {i}"))),
            }
        }
        if checked_elements(&dims).is_none() {
            return Err(who.unsupported(format!("shape {dims:?} is too large")));
        }
        let name = self.unique(vi.name());
        let id = self.g.add_value(Value { name, shape: dims, ty, quant: None });
        self.g.inputs.push(id);
        let sym = if ty == ElemType::F32 { Sym::Float(id) } else { Sym::Quant(id) };
        self.syms.insert(vi.name().to_string(), sym);
        Ok(())
    }

    fn lookup(&mut self, who: &Who, name: &str) -> Result<Sym> {
        if let Some(s) = self.syms.get(name) {
            return Ok(s.clone());
        }
        if let Some(t) = self.inits.get(name) {
            let t = Tensor::from_proto(t).map_err(|e| tensor_error(who, &format!("initializer `{name}`"), e))?;
            let s = Sym::Const(Rc::new(t));
            self.syms.insert(name.to_string(), s.clone());
            return Ok(s);
        }
        Err(who.invalid(format!("input `{name}` is not defined before the node (nodes must be in topological order)")))
    }

    fn input(&mut self, who: &Who, n: &NodeProto, i: usize) -> Result<Sym> {
        let name = input_name(n, i).ok_or_else(|| who.invalid(format!("missing input {i}")))?;
        self.lookup(who, name)
    }

    fn opt_input(&mut self, who: &Who, n: &NodeProto, i: usize) -> Result<Option<Sym>> {
        match input_name(n, i) {
            Some(name) => self.lookup(who, name).map(Some),
            None => Ok(None),
        }
    }

    /// A constant input (`what` says which, for the message).
    fn konst(&mut self, who: &Who, n: &NodeProto, i: usize, what: &str) -> Result<(Rc<Tensor>, String)> {
        let name = input_name(n, i).ok_or_else(|| who.invalid(format!("missing input {i} ({what})")))?;
        match self.lookup(who, name)? {
            Sym::Const(t) => Ok((t, name.to_string())),
            _ => Err(who.unsupported(format!("{what} `{name}` is not a constant initializer"))),
        }
    }

    fn opt_konst(&mut self, who: &Who, n: &NodeProto, i: usize, what: &str) -> Result<Option<(Rc<Tensor>, String)>> {
        match input_name(n, i) {
            Some(_) => self.konst(who, n, i, what).map(Some),
            None => Ok(None),
        }
    }

    /// The single output name of a node.
    fn output<'n>(&self, who: &Who, n: &'n NodeProto) -> Result<&'n str> {
        let outs: Vec<&String> = n.output.iter().filter(|s| !s.is_empty()).collect();
        match (n.output.first().map(String::as_str), outs.len()) {
            (Some(o), 1) if !o.is_empty() => Ok(o),
            (_, 0) => Err(who.invalid("the node has no output")),
            _ => Err(who.unsupported(format!("{} outputs (only the first, main output is supported)", outs.len()))),
        }
    }

    fn set(&mut self, name: &str, s: Sym) {
        self.syms.insert(name.to_string(), s);
    }

    /// Per-tensor activation quantization from a (scale, zero point) input
    /// pair; `default_ty` when the zero point is omitted.
    fn quant_params(
        &mut self,
        who: &Who,
        n: &NodeProto,
        si: usize,
        zi: usize,
        default_ty: ElemType,
    ) -> Result<(Quant, ElemType)> {
        let (s, s_name) = self.konst(who, n, si, "scale")?;
        let sv = f32_data(who, &s, &s_name)?;
        if sv.len() != 1 {
            return Err(who.unsupported(format!(
                "per-channel quantization of an activation (scale `{s_name}` has {} elements); activations are \
                 quantized per tensor",
                sv.len()
            )));
        }
        let scale = sv[0];
        if !(scale.is_finite() && scale > 0.0) {
            return Err(who.unsupported(format!("scale `{s_name}` = {scale}; scales must be finite and positive")));
        }
        let (zero_point, ty) = match self.opt_konst(who, n, zi, "zero point")? {
            None => (0, default_ty),
            Some((z, z_name)) => {
                let (v, ty) = match &z.data {
                    Data::I8(v) if v.len() == 1 => (v[0] as i32, ElemType::I8),
                    Data::U8(v) if v.len() == 1 => (v[0] as i32, ElemType::U8),
                    Data::I8(_) | Data::U8(_) => {
                        return Err(who.unsupported(format!(
                            "per-channel quantization of an activation (zero point `{z_name}` has {} elements)",
                            z.len()
                        )))
                    }
                    _ => {
                        return Err(who.unsupported(format!(
                            "zero point `{z_name}` of type {} (activations are int8 or uint8)",
                            z.type_name()
                        )))
                    }
                };
                (v, ty)
            }
        };
        Ok((Quant { scale, zero_point }, ty))
    }

    /// Checks that a node reads value `v` with the quantization it has
    /// (a quantized graph input takes it from its first reader).
    fn expect_quant(&mut self, who: &Who, v: ValueId, q: Quant, ty: ElemType) -> Result<()> {
        let val = &mut self.g.values[v];
        if val.ty != ty {
            return Err(who.invalid(format!(
                "`{}` is {} but the node's zero point is {}",
                val.name,
                val.ty.name(),
                ty.name()
            )));
        }
        match val.quant {
            None => {
                val.quant = Some(q);
                Ok(())
            }
            Some(have) if same_quant(have, q) => Ok(()),
            Some(have) => Err(who.unsupported(format!(
                "the node reads `{}` as scale {:e}, zero point {}, but it was produced with scale {:e}, zero point \
                 {}: requantization between ops is not expressible",
                val.name, q.scale, q.zero_point, have.scale, have.zero_point
            ))),
        }
    }

    fn known_quant(&self, who: &Who, v: ValueId) -> Result<Quant> {
        let val = &self.g.values[v];
        val.quant.ok_or_else(|| {
            who.unsupported(format!(
                "quantized input `{}` is used before any node states its scale and zero point",
                val.name
            ))
        })
    }

    /// A quantized input of a QOperator node, checked against the (scale,
    /// zero point) inputs at `si`, `si + 1`.
    fn quant_input(&mut self, who: &Who, n: &NodeProto, i: usize, si: usize) -> Result<(ValueId, Quant)> {
        let name = input_name(n, i).unwrap_or_default().to_string();
        let v = match self.input(who, n, i)? {
            Sym::Quant(v) => v,
            Sym::Const(_) => {
                return Err(who.unsupported(format!("input `{name}` is a constant; the IR's op inputs are tensors")))
            }
            _ => return Err(who.invalid(format!("input `{name}` is not a quantized tensor"))),
        };
        let ty = self.g.values[v].ty;
        let (q, qty) = self.quant_params(who, n, si, si + 1, ty)?;
        self.expect_quant(who, v, q, qty)?;
        Ok((v, q))
    }

    /// Adds a node and its output value; the shape comes from `infer_shape`.
    fn emit(
        &mut self,
        who: &Who,
        op: Op,
        inputs: Vec<ValueId>,
        out: &str,
        ty: ElemType,
        quant: Option<Quant>,
    ) -> Result<ValueId> {
        let ins: Vec<&Value> = inputs.iter().map(|&i| &self.g.values[i]).collect();
        let shape = infer_shape(&op, &ins).ok_or_else(|| {
            who.invalid(format!(
                "input shapes {:?} do not fit the op",
                ins.iter().map(|v| v.shape.clone()).collect::<Vec<_>>()
            ))
        })?;
        if checked_elements(&shape).is_none() {
            return Err(who.unsupported(format!("output shape {shape:?} is too large")));
        }
        let name = self.unique(out);
        let id = self.g.add_value(Value { name, shape, ty, quant });
        self.g.nodes.push(Node { name: who.node.clone(), op, inputs, outputs: vec![id] });
        Ok(id)
    }

    /// An op on quantized data that keeps the input's quantization.
    fn emit_same(&mut self, who: &Who, op: Op, inputs: Vec<ValueId>, out: &str) -> Result<ValueId> {
        let q = self.known_quant(who, inputs[0])?;
        let ty = self.g.values[inputs[0]].ty;
        self.emit(who, op, inputs, out, ty, Some(q))
    }

    fn dequantize(&mut self, s: &Source) -> Result<ValueId> {
        if let Some(&d) = self.dequantized.get(&s.v) {
            return Ok(d);
        }
        let who = Who { node: s.node.clone(), op: "DequantizeLinear".into() };
        let d = self.emit(&who, Op::Dequantize, vec![s.v], &s.out, ElemType::F32, None)?;
        self.dequantized.insert(s.v, d);
        Ok(d)
    }

    fn node(&mut self, n: &NodeProto, who: &Who) -> Result<()> {
        let standard = matches!(n.domain(), "" | "ai.onnx");
        let ms = n.domain() == "com.microsoft";
        unique_attrs(who, n)?;
        if let Some(max) = max_inputs(n.op_type(), standard, ms) {
            if n.input.len() > max {
                return Err(who.invalid(format!(
                    "{} inputs (`{}` and after are extra); {} takes at most {max}",
                    n.input.len(),
                    n.input[max],
                    n.op_type()
                )));
            }
        }
        let channels_last = self.ort_channels_last(n, standard, ms);
        self.dispatch(n, who, standard, ms)?;
        if channels_last {
            self.channels_last.extend(n.output.iter().filter(|o| !o.is_empty()).cloned());
        }
        Ok(())
    }

    /// Whether ONNX Runtime (CPU, 1.32) computes this node's output
    /// channels-last. Its NHWC transformer makes every QLinearConv NHWC,
    /// wrapped in Transposes, and its transpose optimizer then pushes the
    /// Transpose after it down through the nodes that follow — for the ops
    /// here only while every data input arrives channels-last (a mixed
    /// QLinearAdd keeps NCHW). Found by saving ORT's optimized models of
    /// small QOperator graphs (`tools/ort-fixtures/resize_fixtures.py`'s
    /// docs): pushed through MaxPool, QLinearAdd, QLinearConcat,
    /// QLinearGlobalAveragePool and a linear Resize on int8/uint8 (ORT's
    /// cost check pushes there for its NHWC integer kernel); stopped by
    /// QLinearAveragePool, QLinearSigmoid, QLinearLeakyRelu, Clip and a
    /// nearest Resize. What matters is the linear Resize: channels-last it
    /// runs another kernel ([`crate::resize::LinearRounding::NhwcInteger`]).
    fn ort_channels_last(&self, n: &NodeProto, standard: bool, ms: bool) -> bool {
        let nhwc = |i: usize| n.input.get(i).is_some_and(|x| self.channels_last.contains(x));
        match n.op_type() {
            "QLinearConv" if standard => true,
            "MaxPool" | "Identity" if standard => nhwc(0),
            "QLinearAdd" if ms => nhwc(0) && nhwc(3),
            "QLinearConcat" if ms => n.input.len() > 2 && (2..n.input.len()).step_by(3).all(nhwc),
            "QLinearGlobalAveragePool" if ms => nhwc(0),
            "Resize" if standard => {
                let linear = attr(n, "mode").is_some_and(|a| a.s() == b"linear");
                linear && nhwc(0) && matches!(self.syms.get(&n.input[0]), Some(Sym::Quant(_)))
            }
            _ => false,
        }
    }

    fn dispatch(&mut self, n: &NodeProto, who: &Who, standard: bool, ms: bool) -> Result<()> {
        match n.op_type() {
            "QuantizeLinear" if standard => self.quantize_linear(who, n),
            "DequantizeLinear" if standard => self.dequantize_linear(who, n),
            "Constant" if standard => self.constant(who, n),
            "Identity" if standard => {
                known_attrs(who, n, &[])?;
                let s = self.input(who, n, 0)?;
                let out = self.output(who, n)?;
                self.set(out, s);
                Ok(())
            }
            "QLinearConv" if standard => self.qlinear_conv(who, n),
            "QLinearMatMul" if standard => self.qlinear_matmul(who, n),
            "QGemm" if ms => self.qgemm(who, n),
            "QLinearAdd" if ms => self.qlinear_add(who, n),
            "QLinearAveragePool" if ms => self.qlinear_avgpool(who, n, false),
            "QLinearGlobalAveragePool" if ms => self.qlinear_avgpool(who, n, true),
            "QLinearConcat" if ms => self.qlinear_concat(who, n),
            "QLinearSigmoid" | "QLinearLeakyRelu" if ms => self.qlinear_lookup(who, n),
            "Sigmoid" | "Tanh" | "HardSigmoid" | "HardSwish" | "LeakyRelu" if standard => self.float_unary(who, n),
            "Resize" if standard => self.resize(who, n),
            "Conv" | "Gemm" | "MatMul" | "Add" | "AveragePool" | "GlobalAveragePool" if standard => {
                self.float_compute(who, n)
            }
            "MaxPool" | "Flatten" | "Reshape" | "Transpose" | "Concat" if standard => self.movement(who, n),
            "Relu" | "Clip" if standard => self.clamp(who, n),
            _ => {
                // In cut mode anything that only reads dequantized data is
                // part of the float tail.
                if self.opts.float_tail == FloatTail::Cut {
                    if let Some(t) = self.tail_of(who, n)? {
                        let out = self.output(who, n)?;
                        self.set(out, Sym::Tail(t));
                        return Ok(());
                    }
                }
                Err(ImportError::UnsupportedOp { node: who.node.clone(), op: who.op.clone() })
            }
        }
    }

    // -------------------------------------------------------- Q, DQ, consts

    fn quantize_linear(&mut self, who: &Who, n: &NodeProto) -> Result<()> {
        known_attrs(who, n, &["axis", "saturate", "block_size", "output_dtype"])?;
        if attr_int(who, n, "block_size")?.unwrap_or(0) != 0 {
            return Err(who.unsupported("blocked quantization (block_size)"));
        }
        let default_ty = match attr_int(who, n, "output_dtype")? {
            None | Some(0) => ElemType::U8,
            Some(c) => match elem_of_code(c as i32) {
                Some(t @ (ElemType::I8 | ElemType::U8)) => t,
                _ => return Err(who.unsupported(format!("output_dtype {}", dtype_name(c as i32)))),
            },
        };
        let (q, ty) = self.quant_params(who, n, 1, 2, default_ty)?;
        let out = self.output(who, n)?;
        let x = self.input(who, n, 0)?;
        let sym = match x {
            Sym::Float(v) => Sym::Quant(self.emit(who, Op::Quantize, vec![v], out, ty, Some(q))?),
            Sym::Pending(p) => Sym::Quant(self.finish(who, &p, out, ty, q)?),
            Sym::Deq(s) => {
                let val = &self.g.values[s.v];
                let same = val.ty == ty && val.quant.is_some_and(|h| same_quant(h, q));
                if same {
                    Sym::Quant(s.v)
                } else {
                    // DequantizeLinear -> QuantizeLinear into another scale,
                    // zero point or type: a requantization table.
                    Sym::Quant(self.emit(who, Op::Lut(UnaryFn::Identity), vec![s.v], out, ty, Some(q))?)
                }
            }
            Sym::Tail(t) => {
                return Err(who.unsupported(format!(
                    "quantizes the result of float arithmetic after dequantization ({}): float ops between \
                     quantized ops are not expressible in the IR",
                    t.nodes.join(", ")
                )))
            }
            Sym::Quant(_) => return Err(who.invalid("QuantizeLinear of a tensor that is already quantized")),
            Sym::Const(_) | Sym::ConstDeq(_) => return Err(who.unsupported("QuantizeLinear of a constant")),
        };
        self.set(out, sym);
        Ok(())
    }

    /// Completes a QDQ group: the pending op with the output's quantization
    /// and the ReLU/Clip bounds as its clamp.
    fn finish(&mut self, q_who: &Who, p: &Pending, out: &str, ty: ElemType, q: Quant) -> Result<ValueId> {
        let (tmin, tmax) = ty.range().unwrap_or((i32::MIN, i32::MAX));
        let qmin = if p.lo == f32::NEG_INFINITY { tmin } else { quantize_f32(p.lo, q, ty) };
        let qmax = if p.hi == f32::INFINITY { tmax } else { quantize_f32(p.hi, q, ty) };
        if qmin > qmax {
            return Err(p.who.unsupported(format!("a clamp to the empty range [{}, {}]", p.lo, p.hi)));
        }
        let ins: Vec<ValueId> = p.inputs.iter().map(|s| s.v).collect();
        let who = &p.who;
        match p.op.clone() {
            Op::Conv(mut c) => {
                (c.qmin, c.qmax) = (qmin, qmax);
                self.emit(who, Op::Conv(c), ins, out, ty, Some(q))
            }
            Op::Dense(mut d) => {
                (d.qmin, d.qmax) = (qmin, qmax);
                self.emit(who, Op::Dense(d), ins, out, ty, Some(q))
            }
            Op::Add { .. } => self.emit(who, Op::Add { qmin, qmax }, ins, out, ty, Some(q)),
            Op::AvgPool(pp) => {
                if (qmin, qmax) == (tmin, tmax) {
                    self.emit(who, Op::AvgPool(pp), ins, out, ty, Some(q))
                } else {
                    let pooled = format!("{out}_unclamped");
                    let a = self.emit(who, Op::AvgPool(pp), ins, &pooled, ty, Some(q))?;
                    self.emit(who, Op::Clamp { qmin, qmax }, vec![a], out, ty, Some(q))
                }
            }
            Op::Clamp { .. } => {
                let x = ins[0];
                let val = &self.g.values[x];
                if val.ty != ty || !val.quant.is_some_and(|h| same_quant(h, q)) {
                    // Into another quantization: the float clip, then Q, as a table.
                    let f = UnaryFn::Clip { min: p.lo, max: p.hi };
                    return self.emit(who, Op::Lut(f), ins, out, ty, Some(q));
                }
                if (qmin, qmax) == (tmin, tmax) {
                    Ok(x)
                } else {
                    self.emit(who, Op::Clamp { qmin, qmax }, ins, out, ty, Some(q))
                }
            }
            op @ (Op::Lut(_) | Op::Concat { .. } | Op::ResizeLinear(_)) => {
                if (p.lo, p.hi) != (f32::NEG_INFINITY, f32::INFINITY) {
                    return Err(q_who.unsupported(format!(
                        "a Relu/Clip between {} and its QuantizeLinear (clamp [{}, {}])",
                        who.desc(),
                        p.lo,
                        p.hi
                    )));
                }
                self.emit(who, op, ins, out, ty, Some(q))
            }
            other => Err(who.invalid(format!("internal: pending {}", other.name()))),
        }
    }

    fn dequantize_linear(&mut self, who: &Who, n: &NodeProto) -> Result<()> {
        known_attrs(who, n, &["axis", "block_size", "output_dtype"])?;
        if attr_int(who, n, "block_size")?.unwrap_or(0) != 0 {
            return Err(who.unsupported("blocked quantization (block_size)"));
        }
        if let Some(c) = attr_int(who, n, "output_dtype")? {
            if c != 0 && c != DataType::Float as i64 {
                return Err(who.unsupported(format!("output_dtype {} (only float)", dtype_name(c as i32))));
            }
        }
        let out = self.output(who, n)?;
        let sym = match self.input(who, n, 0)? {
            Sym::Quant(v) => {
                let ty = self.g.values[v].ty;
                let (q, qty) = self.quant_params(who, n, 1, 2, ty)?;
                self.expect_quant(who, v, q, qty)?;
                Sym::Deq(Source { v, node: who.node.clone(), out: out.to_string() })
            }
            Sym::Const(t) => {
                let (scale, scale_name) = self.konst(who, n, 1, "scale")?;
                let zp = self.opt_konst(who, n, 2, "zero point")?;
                Sym::ConstDeq(Rc::new(ConstDeq {
                    q: t,
                    q_name: input_name(n, 0).unwrap_or_default().to_string(),
                    scale,
                    scale_name,
                    zp,
                    axis: attr_int(who, n, "axis")?.unwrap_or(1),
                }))
            }
            _ => return Err(who.invalid("DequantizeLinear of a tensor that is not quantized")),
        };
        self.set(out, sym);
        Ok(())
    }

    fn constant(&mut self, who: &Who, n: &NodeProto) -> Result<()> {
        let out = self.output(who, n)?;
        let [a] = &n.attribute[..] else {
            return Err(who.invalid("a Constant node needs exactly one attribute"));
        };
        let t = match a.name() {
            "value" => {
                let p = a.t.as_ref().ok_or_else(|| who.invalid("`value` holds no tensor"))?;
                Tensor::from_proto(p).map_err(|e| tensor_error(who, "`value`", e))?
            }
            "value_float" => Tensor { dims: vec![], data: Data::F32(vec![a.f()]) },
            "value_floats" => Tensor { dims: vec![a.floats.len()], data: Data::F32(a.floats.clone()) },
            "value_int" => Tensor { dims: vec![], data: Data::I64(vec![a.i()]) },
            "value_ints" => Tensor { dims: vec![a.ints.len()], data: Data::I64(a.ints.clone()) },
            other => return Err(who.unsupported(format!("attribute `{other}`"))),
        };
        self.set(out, Sym::Const(Rc::new(t)));
        Ok(())
    }

    // ------------------------------------------------------ shared builders

    fn conv_params(&self, who: &Who, n: &NodeProto, x: ValueId, w: &Tensor, w_name: &str) -> Result<ConvParams> {
        known_attrs(who, n, &["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"])?;
        let xs = &self.g.values[x].shape;
        if xs.len() != 4 {
            return Err(who.unsupported(format!("only 2-D convolution of NCHW tensors (input shape {xs:?})")));
        }
        let (weights, w_type) = weights_i8(who, w, w_name)?;
        let weights = weights.to_vec();
        let [m, cg, kh, kw] = w.dims[..] else {
            return Err(
                who.invalid(format!("weights `{w_name}` have shape {:?}, expected [M, C/group, kh, kw]", w.dims))
            );
        };
        if w.dims.iter().any(|&d| d == 0 || d as i64 > ATTR_LIMIT) {
            return Err(who.invalid(format!("weights `{w_name}` have shape {:?}", w.dims)));
        }
        if let Some(k) = attr_ints(who, n, "kernel_shape")? {
            if k != [kh as i64, kw as i64] {
                return Err(who.invalid(format!("kernel_shape {k:?} differs from the weights' {:?}", [kh, kw])));
            }
        }
        let valid = auto_pad_valid(who, n)?;
        let strides = sizes(who, "strides", &attr_ints(who, n, "strides")?.unwrap_or(vec![1, 1]), 2, 1)?;
        let dilations = sizes(who, "dilations", &attr_ints(who, n, "dilations")?.unwrap_or(vec![1, 1]), 2, 1)?;
        let pads = sizes(who, "pads", &attr_ints(who, n, "pads")?.unwrap_or(vec![0; 4]), 4, 0)?;
        let pads = if valid { vec![0; 4] } else { pads };
        let groups = attr_int(who, n, "group")?.unwrap_or(1);
        if !(1..=ATTR_LIMIT).contains(&groups) {
            return Err(who.invalid(format!("group = {groups}")));
        }
        let groups = groups as usize;
        if xs[1] != cg * groups || m % groups != 0 {
            return Err(
                who.invalid(format!("{} input channels do not fit weights {:?} with {groups} group(s)", xs[1], w.dims))
            );
        }
        let (lo, hi) = self.g.values[x].ty.range().unwrap_or((-128, 127));
        Ok(ConvParams {
            weights,
            w_shape: [m, cg, kh, kw],
            w_scale: vec![],
            bias: vec![0; m],
            strides: [strides[0], strides[1]],
            pads: [pads[0], pads[1], pads[2], pads[3]],
            dilations: [dilations[0], dilations[1]],
            groups,
            qmin: lo,
            qmax: hi,
            w_type,
        })
    }

    /// A Dense layer from a 2-D int8 weight stored `[N, K]` (`kn` false)
    /// or `[K, N]` (`kn` true; transposed to the IR's `[n, k]`).
    fn dense_params(who: &Who, w: &Tensor, w_name: &str, kn: bool) -> Result<DenseParams> {
        let (data, w_type) = weights_i8(who, w, w_name)?;
        let [r, c] = w.dims[..] else {
            return Err(who.unsupported(format!("weights `{w_name}` of shape {:?} (only 2-D weights)", w.dims)));
        };
        let (n, k) = if kn { (c, r) } else { (r, c) };
        if n == 0 || k == 0 {
            return Err(who.invalid(format!("weights `{w_name}` have shape {:?}", w.dims)));
        }
        let weights = if kn {
            let mut t = vec![0i8; n * k];
            for kk in 0..k {
                for nn in 0..n {
                    t[nn * k + kk] = data[kk * n + nn];
                }
            }
            t
        } else {
            data.to_vec()
        };
        Ok(DenseParams { weights, n, k, w_scale: vec![], bias: vec![0; n], qmin: -128, qmax: 127, w_type })
    }

    fn pool_params(&self, who: &Who, n: &NodeProto, x: ValueId, kind: Pool) -> Result<PoolParams> {
        let xs = self.g.values[x].shape.clone();
        if xs.len() != 4 {
            return Err(who.unsupported(format!("only 2-D pooling of NCHW tensors (input shape {xs:?})")));
        }
        let mut known = vec!["channels_last"];
        if kind.global {
            known_attrs(who, n, &known)?;
        } else {
            known.extend(["auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "strides"]);
            if kind.avg {
                known.push("count_include_pad");
            } else {
                known.push("storage_order");
            }
            known_attrs(who, n, &known)?;
        }
        if attr_flag(who, n, "channels_last")? {
            return Err(who.unsupported("channels_last = 1 (NHWC); the IR is NCHW"));
        }
        if kind.global {
            return Ok(PoolParams { kernel: [xs[2], xs[3]], strides: [1, 1], pads: [0; 4], count_include_pad: false });
        }
        let k = attr_ints(who, n, "kernel_shape")?.ok_or_else(|| who.invalid("missing kernel_shape"))?;
        let k = sizes(who, "kernel_shape", &k, 2, 1)?;
        let strides = sizes(who, "strides", &attr_ints(who, n, "strides")?.unwrap_or(vec![1, 1]), 2, 1)?;
        let pads = sizes(who, "pads", &attr_ints(who, n, "pads")?.unwrap_or(vec![0; 4]), 4, 0)?;
        let pads = if auto_pad_valid(who, n)? { vec![0; 4] } else { pads };
        if let Some(d) = attr_ints(who, n, "dilations")? {
            if d.iter().any(|&v| v != 1) {
                return Err(who.unsupported(format!("dilations {d:?} in pooling")));
            }
        }
        let mut pads = pads;
        if attr_flag(who, n, "ceil_mode")? {
            // Ceil mode adds a last, partial window where the windows do not
            // end on the padded edge: the same pooling with that much more
            // padding at the end (ORT clips windows to the input, and with
            // `count_include_pad` divides by the kernel size either way).
            for d in 0..2 {
                let span = (xs[2 + d] + pads[d] + pads[d + 2]).checked_sub(k[d]);
                let extra = span.map_or(0, |s| (strides[d] - s % strides[d]) % strides[d]);
                if pads[d + 2] + extra >= k[d] {
                    return Err(who.unsupported(format!(
                        "ceil_mode = 1 adds a window that lies entirely in the padding (axis {}, kernel {}, stride {}, pads {:?})",
                        2 + d,
                        k[d],
                        strides[d],
                        pads
                    )));
                }
                pads[d + 2] += extra;
            }
        }
        let count_include_pad = kind.avg && attr_flag(who, n, "count_include_pad")?;
        Ok(PoolParams {
            kernel: [k[0], k[1]],
            strides: [strides[0], strides[1]],
            pads: [pads[0], pads[1], pads[2], pads[3]],
            count_include_pad,
        })
    }

    // ------------------------------------------------------- QOperator ops

    fn qlinear_conv(&mut self, who: &Who, n: &NodeProto) -> Result<()> {
        let (x, _) = self.quant_input(who, n, 0, 1)?;
        let (w, w_name) = self.konst(who, n, 3, "weights")?;
        let mut c = self.conv_params(who, n, x, &w, &w_name)?;
        let m = c.w_shape[0];
        let (ws, ws_name) = self.konst(who, n, 4, "weight scale")?;
        c.w_scale = channel_scales(who, &ws, &ws_name, m)?;
        let wz = self.opt_konst(who, n, 5, "weight zero point")?;
        check_zero(who, wz.as_ref().map(|(t, s)| (&**t, s.as_str())), Kind::Weight)?;
        let (qy, ty) = self.quant_params(who, n, 6, 7, self.g.values[x].ty)?;
        if let Some((b, b_name)) = self.opt_konst(who, n, 8, "bias")? {
            c.bias = bias_i32(who, &b, &b_name, m)?;
        }
        (c.qmin, c.qmax) = ty.range().unwrap_or((-128, 127));
        let out = self.output(who, n)?;
        let y = self.emit(who, Op::Conv(c), vec![x], out, ty, Some(qy))?;
        self.set(out, Sym::Quant(y));
        Ok(())
    }

    fn qlinear_matmul(&mut self, who: &Who, n: &NodeProto) -> Result<()> {
        known_attrs(who, n, &[])?;
        if !matches!(self.input(who, n, 3)?, Sym::Const(_)) {
            return Err(who.unsupported("QLinearMatMul of two activations (input `b` is not a constant weight)"));
        }
        let (x, _) = self.quant_input(who, n, 0, 1)?;
        let (w, w_name) = self.konst(who, n, 3, "weights")?;
        let mut d = Self::dense_params(who, &w, &w_name, true)?;
        let (ws, ws_name) = self.konst(who, n, 4, "weight scale")?;
        d.w_scale = channel_scales(who, &ws, &ws_name, d.n)?;
        let wz = self.opt_konst(who, n, 5, "weight zero point")?;
        check_zero(who, wz.as_ref().map(|(t, s)| (&**t, s.as_str())), Kind::Weight)?;
        let (qy, ty) = self.quant_params(who, n, 6, 7, self.g.values[x].ty)?;
        (d.qmin, d.qmax) = ty.range().unwrap_or((-128, 127));
        let out = self.output(who, n)?;
        let y = self.emit(who, Op::Dense(d), vec![x], out, ty, Some(qy))?;
        self.set(out, Sym::Quant(y));
        Ok(())
    }

    fn qgemm(&mut self, who: &Who, n: &NodeProto) -> Result<()> {
        known_attrs(who, n, &["alpha", "transA", "transB"])?;
        let trans_b = gemm_checks(who, n)?;
        let (x, _) = self.quant_input(who, n, 0, 1)?;
        if self.g.values[x].shape.len() != 2 {
            return Err(who.invalid(format!("input A has shape {:?}; Gemm takes a matrix", self.g.values[x].shape)));
        }
        let (w, w_name) = self.konst(who, n, 3, "weights")?;
        let mut d = Self::dense_params(who, &w, &w_name, !trans_b)?;
        let (ws, ws_name) = self.konst(who, n, 4, "weight scale")?;
        d.w_scale = channel_scales(who, &ws, &ws_name, d.n)?;
        let wz = self.opt_konst(who, n, 5, "weight zero point")?;
        check_zero(who, wz.as_ref().map(|(t, s)| (&**t, s.as_str())), Kind::Weight)?;
        if let Some((b, b_name)) = self.opt_konst(who, n, 6, "bias")? {
            d.bias = bias_i32(who, &b, &b_name, d.n)?;
        }
        if input_name(n, 7).is_none() {
            return Err(who.unsupported("QGemm with a float output (no y_scale); the IR's Dense is quantized"));
        }
        let (qy, ty) = self.quant_params(who, n, 7, 8, self.g.values[x].ty)?;
        (d.qmin, d.qmax) = ty.range().unwrap_or((-128, 127));
        let out = self.output(who, n)?;
        let y = self.emit(who, Op::Dense(d), vec![x], out, ty, Some(qy))?;
        self.set(out, Sym::Quant(y));
        Ok(())
    }

    fn qlinear_add(&mut self, who: &Who, n: &NodeProto) -> Result<()> {
        known_attrs(who, n, &[])?;
        let (a, _) = self.quant_input(who, n, 0, 1)?;
        let (b, _) = self.quant_input(who, n, 3, 4)?;
        self.check_same_shape(who, a, b)?;
        let (qy, ty) = self.quant_params(who, n, 6, 7, self.g.values[a].ty)?;
        let (qmin, qmax) = ty.range().unwrap_or((-128, 127));
        let out = self.output(who, n)?;
        let y = self.emit(who, Op::Add { qmin, qmax }, vec![a, b], out, ty, Some(qy))?;
        self.set(out, Sym::Quant(y));
        Ok(())
    }

    fn check_same_shape(&self, who: &Who, a: ValueId, b: ValueId) -> Result<()> {
        let (sa, sb) = (&self.g.values[a].shape, &self.g.values[b].shape);
        if sa != sb {
            return Err(who.unsupported(format!("broadcasting Add of shapes {sa:?} and {sb:?} (same shapes only)")));
        }
        Ok(())
    }

    fn qlinear_avgpool(&mut self, who: &Who, n: &NodeProto, global: bool) -> Result<()> {
        let (x, _) = self.quant_input(who, n, 0, 1)?;
        let p = self.pool_params(who, n, x, Pool { avg: true, global })?;
        let (qy, ty) = self.quant_params(who, n, 3, 4, self.g.values[x].ty)?;
        let out = self.output(who, n)?;
        let y = self.emit(who, Op::AvgPool(p), vec![x], out, ty, Some(qy))?;
        self.set(out, Sym::Quant(y));
        Ok(())
    }

    fn qlinear_concat(&mut self, who: &Who, n: &NodeProto) -> Result<()> {
        known_attrs(who, n, &["axis"])?;
        let axis = attr_int(who, n, "axis")?.ok_or_else(|| who.invalid("missing axis"))?;
        if n.input.len() < 5 || !(n.input.len() - 2).is_multiple_of(3) {
            return Err(
                who.invalid(format!("{} inputs; QLinearConcat takes Y_scale, Y_zp, then triples", n.input.len()))
            );
        }
        let first = match self.input(who, n, 2)? {
            Sym::Quant(v) => self.g.values[v].ty,
            _ => return Err(who.invalid("input 2 is not a quantized tensor")),
        };
        let (qy, ty) = self.quant_params(who, n, 0, 1, first)?;
        let mut ins = Vec::new();
        for i in (2..n.input.len()).step_by(3) {
            // An input in another quantization is requantized (the IR's
            // Concat does, through its identity table, as ORT does).
            let (v, _) = self.quant_input(who, n, i, i + 1)?;
            ins.push(v);
        }
        let axis = axis_in(who, "axis", axis, self.g.values[ins[0]].shape.len())?;
        let out = self.output(who, n)?;
        let y = self.emit(who, Op::Concat { axis }, ins, out, ty, Some(qy))?;
        self.set(out, Sym::Quant(y));
        Ok(())
    }

    /// com.microsoft QLinearSigmoid / QLinearLeakyRelu (X, X_scale, X_zp,
    /// Y_scale, Y_zp): ORT computes these through a 256-entry table, which
    /// is `Op::Lut`.
    fn qlinear_lookup(&mut self, who: &Who, n: &NodeProto) -> Result<()> {
        let f = if n.op_type() == "QLinearSigmoid" {
            known_attrs(who, n, &[])?;
            UnaryFn::Sigmoid
        } else {
            known_attrs(who, n, &["alpha"])?;
            UnaryFn::LeakyRelu { alpha: attr_float(who, n, "alpha")?.unwrap_or(0.01) }
        };
        let (x, _) = self.quant_input(who, n, 0, 1)?;
        let (qy, ty) = self.quant_params(who, n, 3, 4, self.g.values[x].ty)?;
        let out = self.output(who, n)?;
        let y = self.emit(who, Op::Lut(f), vec![x], out, ty, Some(qy))?;
        self.set(out, Sym::Quant(y));
        Ok(())
    }

    /// Sigmoid, Tanh, HardSigmoid, HardSwish, LeakyRelu on a dequantized
    /// tensor: pending until the QuantizeLinear after it gives the output's
    /// quantization, then `Op::Lut` (what ORT computes in float between DQ
    /// and Q, or fuses into its QLinear lookup ops: the same table).
    fn float_unary(&mut self, who: &Who, n: &NodeProto) -> Result<()> {
        let f = match n.op_type() {
            "Sigmoid" => {
                known_attrs(who, n, &[])?;
                UnaryFn::Sigmoid
            }
            "Tanh" => {
                known_attrs(who, n, &[])?;
                UnaryFn::Tanh
            }
            "HardSwish" => {
                known_attrs(who, n, &[])?;
                UnaryFn::HardSwish
            }
            "HardSigmoid" => {
                known_attrs(who, n, &["alpha", "beta"])?;
                UnaryFn::HardSigmoid {
                    alpha: attr_float(who, n, "alpha")?.unwrap_or(0.2),
                    beta: attr_float(who, n, "beta")?.unwrap_or(0.5),
                }
            }
            _ => {
                known_attrs(who, n, &["alpha"])?;
                UnaryFn::LeakyRelu { alpha: attr_float(who, n, "alpha")?.unwrap_or(0.01) }
            }
        };
        match self.input(who, n, 0)? {
            Sym::Deq(src) => {
                self.known_quant(who, src.v)?;
                let p = Pending {
                    who: who.clone(),
                    op: Op::Lut(f),
                    inputs: vec![src],
                    lo: f32::NEG_INFINITY,
                    hi: f32::INFINITY,
                };
                let out = self.output(who, n)?;
                self.set(out, Sym::Pending(Rc::new(p)));
                Ok(())
            }
            _ => self.not_quantized(who, n),
        }
    }

    /// Resize (opset 11 and later), nearest, of H and W: the source index of
    /// every output row and column computed as ONNX Runtime's CPU kernel
    /// does (binary32 coordinate transform, then the nearest mode, clamped).
    /// On a quantized tensor, or a dequantized one (QDQ: it commutes with
    /// dequantization; a QuantizeLinear into another quantization after it
    /// becomes a requantization table).
    fn resize(&mut self, who: &Who, n: &NodeProto) -> Result<()> {
        known_attrs(
            who,
            n,
            &[
                "mode",
                "coordinate_transformation_mode",
                "nearest_mode",
                "cubic_coeff_a",
                "exclude_outside",
                "extrapolation_value",
                "antialias",
                "keep_aspect_ratio_policy",
            ],
        )?;
        let mode = attr_str(who, n, "mode")?.unwrap_or_else(|| "nearest".into());
        if mode != "nearest" && mode != "linear" {
            return Err(who.unsupported(format!("Resize mode `{mode}` (nearest and linear are supported)")));
        }
        if n.input.len() < 3 {
            return Err(who.unsupported("Resize without its roi/scales/sizes inputs (opset 10)"));
        }
        if attr_int(who, n, "antialias")?.unwrap_or(0) != 0 {
            return Err(who.unsupported("Resize with antialias"));
        }
        let policy = attr_str(who, n, "keep_aspect_ratio_policy")?.unwrap_or_else(|| "stretch".into());
        if policy != "stretch" {
            return Err(who.unsupported(format!("Resize keep_aspect_ratio_policy `{policy}`")));
        }
        let coord = attr_str(who, n, "coordinate_transformation_mode")?.unwrap_or_else(|| "half_pixel".into());
        let nearest = attr_str(who, n, "nearest_mode")?.unwrap_or_else(|| "round_prefer_floor".into());
        let (src, deq) = match self.input(who, n, 0)? {
            Sym::Quant(v) => (v, None),
            Sym::Deq(s) => (s.v, Some(s)),
            _ => return self.not_quantized(who, n),
        };
        let shape = self.g.values[src].shape.clone();
        let [nb, c, h, w] = shape[..] else {
            return Err(who.unsupported(format!("Resize of a rank-{} tensor (only NCHW)", shape.len())));
        };
        let sizes = if n.input.len() > 3 && !n.input[3].is_empty() {
            let (t, name) = self.konst(who, n, 3, "sizes")?;
            Some(t.as_i64().ok_or_else(|| who.invalid(format!("sizes `{name}` is not an integer tensor")))?)
        } else {
            None
        };
        let (oh, ow, sh, sw) = match sizes {
            Some(s) => {
                if s.len() != 4 || s[0] != nb as i64 || s[1] != c as i64 || s[2] < 1 || s[3] < 1 {
                    return Err(who.unsupported(format!("Resize sizes {s:?} (only H and W of NCHW change)")));
                }
                let (oh, ow) = (s[2] as usize, s[3] as usize);
                (oh, ow, oh as f32 / h as f32, ow as f32 / w as f32)
            }
            None => {
                let (t, name) = self.konst(who, n, 2, "scales")?;
                let sc = match &t.data {
                    Data::F32(v) if v.len() == 4 => v.clone(),
                    _ => return Err(who.invalid(format!("scales `{name}` must be 4 floats"))),
                };
                if sc[0] != 1.0 || sc[1] != 1.0 || !(sc[2] > 0.0 && sc[3] > 0.0) {
                    return Err(who.unsupported(format!("Resize scales {sc:?} (only H and W of NCHW change)")));
                }
                // ORT: static_cast<int64_t>(scale * input_dim), in binary32.
                let (oh, ow) = ((sc[2] * h as f32) as usize, (sc[3] * w as f32) as usize);
                if oh == 0 || ow == 0 || oh > 1 << 16 || ow > 1 << 16 {
                    return Err(who.unsupported(format!("Resize to {oh} x {ow}")));
                }
                (oh, ow, sc[2], sc[3])
            }
        };
        if mode == "linear" {
            return self.resize_linear(who, n, (src, deq), &coord, ([oh, ow], [sh, sw]));
        }
        let rows = nearest_indices(who, oh, h, sh, &coord, &nearest)?;
        let cols = nearest_indices(who, ow, w, sw, &coord, &nearest)?;
        let out = self.output(who, n)?;
        let y = self.emit_same(who, Op::Resize { rows, cols }, vec![src], out)?;
        let sym = match deq {
            Some(_) => Sym::Deq(Source { v: y, node: who.node.clone(), out: out.to_string() }),
            None => Sym::Quant(y),
        };
        self.set(out, sym);
        Ok(())
    }

    /// A linear Resize (`crate::resize`): on a quantized tensor (QOperator)
    /// ORT interpolates the integers and truncates; on a dequantized one
    /// (QDQ) it interpolates the floats and the QuantizeLinear after it
    /// rounds (pending until that QuantizeLinear names the quantization).
    fn resize_linear(
        &mut self,
        who: &Who,
        n: &NodeProto,
        (src, deq): (ValueId, Option<Source>),
        coord: &str,
        (out_size, scales): ([usize; 2], [f32; 2]),
    ) -> Result<()> {
        use crate::resize::{CoordMode, LinearResize, LinearRounding};
        let mode = CoordMode::parse(coord).ok_or_else(|| {
            who.unsupported(format!(
                "linear Resize with coordinate_transformation_mode `{coord}` (half_pixel, pytorch_half_pixel, \
                 align_corners and asymmetric are supported)"
            ))
        })?;
        let out = self.output(who, n)?;
        let rounding = match deq {
            Some(_) => LinearRounding::Requantize,
            None if self.channels_last.contains(&n.input[0]) => {
                // Channels-last, ORT's dispatch (upsample.cc) takes a 4-D
                // linear Resize for NCHW when its second scale is 1 — here
                // H's: it then runs its float kernel over W and C, which
                // no meaning here models (ORT's outputs differ from both).
                if scales[0] == 1.0 && out_size[1] != self.g.values[src].shape[3] {
                    return Err(who.unsupported(
                        "a linear Resize after a QLinearConv that keeps H and changes W (ONNX Runtime runs it \
                         channels-last in its float kernel over W and C)",
                    ));
                }
                LinearRounding::NhwcInteger
            }
            None => LinearRounding::Trunc,
        };
        let op = Op::ResizeLinear(LinearResize { mode, scales, out: out_size, rounding });
        match deq {
            None => {
                let y = self.emit_same(who, op, vec![src], out)?;
                self.set(out, Sym::Quant(y));
            }
            Some(s) => {
                self.known_quant(who, s.v)?;
                let p = Pending { who: who.clone(), op, inputs: vec![s], lo: f32::NEG_INFINITY, hi: f32::INFINITY };
                self.set(out, Sym::Pending(Rc::new(p)));
            }
        }
        Ok(())
    }

    // ------------------------------------------- float ops (QDQ, float tail)

    /// Conv, Gemm, MatMul, Add, AveragePool, GlobalAveragePool: in a QDQ
    /// group they become a pending quantized op; otherwise they are float
    /// arithmetic.
    fn float_compute(&mut self, who: &Who, n: &NodeProto) -> Result<()> {
        let op = n.op_type();
        let x = self.input(who, n, 0)?;
        let Sym::Deq(xs) = x else { return self.not_quantized(who, n) };
        let qx = self.known_quant(who, xs.v)?;
        let second = self.opt_input(who, n, 1)?;
        let pending = match (op, second) {
            ("Conv", Some(Sym::ConstDeq(w))) => {
                let mut c = self.conv_params(who, n, xs.v, &w.q, &w.q_name)?;
                let m = c.w_shape[0];
                c.w_scale = w.weight_scales(who, m, 0)?;
                if let Some(b) = self.qdq_bias(who, n, 2, qx.scale, &c.w_scale)? {
                    c.bias = b;
                }
                Op::Conv(c)
            }
            ("Gemm", Some(Sym::ConstDeq(w))) => {
                known_attrs(who, n, &["alpha", "beta", "transA", "transB"])?;
                let trans_b = gemm_checks(who, n)?;
                if attr_float(who, n, "beta")?.unwrap_or(1.0) != 1.0 && input_name(n, 2).is_some() {
                    return Err(who.unsupported("Gemm with beta ≠ 1"));
                }
                if self.g.values[xs.v].shape.len() != 2 {
                    return Err(who.invalid(format!("input A has shape {:?}", self.g.values[xs.v].shape)));
                }
                let mut d = Self::dense_params(who, &w.q, &w.q_name, !trans_b)?;
                d.w_scale = w.weight_scales(who, d.n, if trans_b { 0 } else { 1 })?;
                if let Some(b) = self.qdq_bias(who, n, 2, qx.scale, &d.w_scale)? {
                    d.bias = b;
                }
                Op::Dense(d)
            }
            ("MatMul", Some(Sym::ConstDeq(w))) => {
                known_attrs(who, n, &[])?;
                let mut d = Self::dense_params(who, &w.q, &w.q_name, true)?;
                d.w_scale = w.weight_scales(who, d.n, 1)?;
                Op::Dense(d)
            }
            ("Add", Some(Sym::Deq(b))) => {
                known_attrs(who, n, &[])?;
                self.known_quant(who, b.v)?;
                self.check_same_shape(who, xs.v, b.v)?;
                let p = Pending {
                    who: who.clone(),
                    op: Op::Add { qmin: 0, qmax: 0 },
                    inputs: vec![xs, b],
                    lo: f32::NEG_INFINITY,
                    hi: f32::INFINITY,
                };
                let out = self.output(who, n)?;
                self.set(out, Sym::Pending(Rc::new(p)));
                return Ok(());
            }
            ("AveragePool" | "GlobalAveragePool", None) => {
                let global = op == "GlobalAveragePool";
                Op::AvgPool(self.pool_params(who, n, xs.v, Pool { avg: true, global })?)
            }
            ("Conv" | "Gemm" | "MatMul", Some(Sym::Const(_))) => {
                return Err(who.unsupported(format!(
                    "float weights `{}` (not quantized): the model is not fully statically quantized",
                    input_name(n, 1).unwrap_or_default()
                )))
            }
            _ => return self.not_quantized(who, n),
        };
        let p = Pending { who: who.clone(), op: pending, inputs: vec![xs], lo: f32::NEG_INFINITY, hi: f32::INFINITY };
        let out = self.output(who, n)?;
        self.set(out, Sym::Pending(Rc::new(p)));
        Ok(())
    }

    /// The int32 bias of a QDQ Conv/Gemm from `DequantizeLinear(bias)`.
    fn qdq_bias(&mut self, who: &Who, n: &NodeProto, i: usize, s_in: f32, w_scale: &[f32]) -> Result<Option<Vec<i32>>> {
        match self.opt_input(who, n, i)? {
            None => Ok(None),
            Some(Sym::ConstDeq(b)) => {
                check_zero(who, b.zp(), Kind::Bias)?;
                check_bias_scale(who, &b, s_in, w_scale)?;
                bias_i32(who, &b.q, &b.q_name, w_scale.len()).map(Some)
            }
            Some(_) => Err(who.unsupported(format!(
                "bias `{}` is not an int32 initializer behind a DequantizeLinear",
                input_name(n, i).unwrap_or_default()
            ))),
        }
    }

    /// MaxPool, Flatten, Reshape, Transpose, Concat: data movement on a
    /// quantized tensor, or (in QDQ form) on a dequantized one, which
    /// commutes with dequantization.
    fn movement(&mut self, who: &Who, n: &NodeProto) -> Result<()> {
        let op_type = n.op_type();
        let count = if op_type == "Concat" { n.input.len() } else { 1 };
        if count == 0 {
            return Err(who.invalid("Concat without inputs"));
        }
        let mut ins = Vec::new();
        let mut deq = None;
        for i in 0..count {
            match self.input(who, n, i)? {
                Sym::Quant(v) if deq != Some(true) => {
                    deq = Some(false);
                    ins.push(v)
                }
                Sym::Deq(s) if deq != Some(false) => {
                    deq = Some(true);
                    ins.push(s.v)
                }
                _ => return self.not_quantized(who, n),
            }
        }
        let x = ins[0];
        let q = self.known_quant(who, x)?;
        for &v in &ins[1..] {
            let same =
                self.g.values[v].ty == self.g.values[x].ty && self.g.values[v].quant.is_some_and(|h| same_quant(h, q));
            if !same && deq == Some(true) {
                // DQ -> Concat -> Q of differently quantized inputs: each is
                // requantized into the QuantizeLinear's quantization.
                known_attrs(who, n, &["axis"])?;
                let a = attr_int(who, n, "axis")?.ok_or_else(|| who.invalid("missing axis"))?;
                let axis = axis_in(who, "axis", a, self.g.values[x].shape.len())?;
                let mut inputs = Vec::new();
                for i in 0..count {
                    match self.input(who, n, i)? {
                        Sym::Deq(src) => inputs.push(src),
                        _ => return self.not_quantized(who, n),
                    }
                }
                let p = Pending {
                    who: who.clone(),
                    op: Op::Concat { axis },
                    inputs,
                    lo: f32::NEG_INFINITY,
                    hi: f32::INFINITY,
                };
                let out = self.output(who, n)?;
                self.set(out, Sym::Pending(Rc::new(p)));
                return Ok(());
            }
            if !same {
                return Err(who.unsupported(format!(
                    "Concat of tensors in different quantizations (`{}` and `{}`)",
                    self.g.values[x].name, self.g.values[v].name
                )));
            }
        }
        let rank = self.g.values[x].shape.len();
        let op = match op_type {
            "MaxPool" => Op::MaxPool(self.pool_params(who, n, x, Pool { avg: false, global: false })?),
            "Flatten" => {
                known_attrs(who, n, &["axis"])?;
                let a = attr_int(who, n, "axis")?.unwrap_or(1);
                let axis = if a == rank as i64 { rank } else { axis_in(who, "axis", a, rank)? };
                Op::Flatten { axis }
            }
            "Reshape" => {
                known_attrs(who, n, &["allowzero", "shape"])?;
                let spec = match attr_ints(who, n, "shape")? {
                    Some(s) => s,
                    None => {
                        let (t, name) = self.konst(who, n, 1, "shape")?;
                        t.as_i64().ok_or_else(|| who.invalid(format!("shape `{name}` is not an integer tensor")))?
                    }
                };
                let allowzero = attr_flag(who, n, "allowzero")?;
                Op::Reshape { shape: reshape_target(who, &self.g.values[x].shape, &spec, allowzero)? }
            }
            "Transpose" => {
                known_attrs(who, n, &["perm"])?;
                let perm = match attr_ints(who, n, "perm")? {
                    Some(p) => p.iter().map(|&a| axis_in(who, "perm", a, rank)).collect::<Result<Vec<_>>>()?,
                    None => (0..rank).rev().collect(),
                };
                Op::Transpose { perm }
            }
            _ => {
                known_attrs(who, n, &["axis"])?;
                let a = attr_int(who, n, "axis")?.ok_or_else(|| who.invalid("missing axis"))?;
                Op::Concat { axis: axis_in(who, "axis", a, rank)? }
            }
        };
        let out = self.output(who, n)?;
        let y = self.emit_same(who, op, ins, out)?;
        let sym = if deq == Some(true) {
            Sym::Deq(Source { v: y, node: who.node.clone(), out: out.to_string() })
        } else {
            Sym::Quant(y)
        };
        self.set(out, sym);
        Ok(())
    }

    /// Relu and Clip: on an integer tensor a clamp of the stored integers
    /// (ONNX semantics); in a QDQ group the clamp of the pending op.
    fn clamp(&mut self, who: &Who, n: &NodeProto) -> Result<()> {
        let relu = n.op_type() == "Relu";
        known_attrs(who, n, if relu { &[] } else { &["min", "max"] })?;
        let out = self.output(who, n)?;
        match self.input(who, n, 0)? {
            Sym::Quant(v) => {
                let ty = self.g.values[v].ty;
                let (tmin, tmax) = ty.range().unwrap_or((-128, 127));
                let (lo, hi) = if relu {
                    (0, tmax)
                } else {
                    if attr(n, "min").is_some() || attr(n, "max").is_some() {
                        return Err(who.invalid("Clip with float min/max attributes on an integer tensor"));
                    }
                    let lo = self.int_bound(who, n, 1)?.unwrap_or(tmin as i64);
                    let hi = self.int_bound(who, n, 2)?.unwrap_or(tmax as i64);
                    (lo.clamp(tmin as i64, tmax as i64) as i32, hi.clamp(tmin as i64, tmax as i64) as i32)
                };
                let (qmin, qmax) = (lo.max(tmin), hi.min(tmax));
                if qmin > qmax {
                    return Err(who.unsupported(format!("a clamp to the empty range [{lo}, {hi}]")));
                }
                let y = if (qmin, qmax) == (tmin, tmax) {
                    v
                } else {
                    self.emit_same(who, Op::Clamp { qmin, qmax }, vec![v], out)?
                };
                self.set(out, Sym::Quant(y));
                Ok(())
            }
            s @ (Sym::Deq(_) | Sym::Pending(_)) => {
                let (lo, hi) = if relu {
                    (0.0, f32::INFINITY)
                } else {
                    let lo = attr_float(who, n, "min")?.map_or_else(|| self.float_bound(who, n, 1), |v| Ok(Some(v)))?;
                    let hi = attr_float(who, n, "max")?.map_or_else(|| self.float_bound(who, n, 2), |v| Ok(Some(v)))?;
                    (lo.unwrap_or(f32::NEG_INFINITY), hi.unwrap_or(f32::INFINITY))
                };
                if lo.is_nan() || hi.is_nan() {
                    return Err(who.invalid("NaN clip bound"));
                }
                let p = match s {
                    Sym::Deq(src) => {
                        self.known_quant(who, src.v)?;
                        Pending { who: who.clone(), op: Op::Clamp { qmin: 0, qmax: 0 }, inputs: vec![src], lo, hi }
                    }
                    Sym::Pending(p) => {
                        let mut p = (*p).clone();
                        (p.lo, p.hi) = (p.lo.max(lo), p.hi.min(hi));
                        p
                    }
                    _ => unreachable!(),
                };
                self.set(out, Sym::Pending(Rc::new(p)));
                Ok(())
            }
            _ => self.not_quantized(who, n),
        }
    }

    fn int_bound(&mut self, who: &Who, n: &NodeProto, i: usize) -> Result<Option<i64>> {
        let Some((t, name)) = self.opt_konst(who, n, i, "clip bound")? else { return Ok(None) };
        match (t.as_i64(), t.len()) {
            (Some(v), 1) => Ok(Some(v[0])),
            _ => Err(who.invalid(format!("clip bound `{name}` must be one integer like the clipped tensor"))),
        }
    }

    fn float_bound(&mut self, who: &Who, n: &NodeProto, i: usize) -> Result<Option<f32>> {
        let Some((t, name)) = self.opt_konst(who, n, i, "clip bound")? else { return Ok(None) };
        match (&t.data, t.len()) {
            (Data::F32(v), 1) => Ok(Some(v[0])),
            _ => Err(who.invalid(format!("clip bound `{name}` must be one float"))),
        }
    }

    // ------------------------------------------------------- float tails

    /// The node as part of a float tail: it reads dequantized data (or a
    /// float tail, or a float result not quantized) and constants only.
    fn tail_of(&mut self, who: &Who, n: &NodeProto) -> Result<Option<Rc<Tail>>> {
        let mut sources: Vec<Source> = Vec::new();
        let mut nodes = Vec::new();
        let mut any = false;
        for i in 0..n.input.len() {
            match self.opt_input(who, n, i)? {
                None | Some(Sym::Const(_)) | Some(Sym::ConstDeq(_)) => {}
                Some(Sym::Deq(s)) => {
                    any = true;
                    sources.push(s);
                }
                Some(Sym::Tail(t)) => {
                    any = true;
                    sources.extend(t.sources.iter().cloned());
                    nodes.extend(t.nodes.iter().cloned());
                }
                Some(Sym::Pending(p)) => {
                    any = true;
                    sources.extend(p.inputs.iter().cloned());
                    nodes.push(p.who.desc());
                }
                Some(Sym::Float(_)) | Some(Sym::Quant(_)) => return Ok(None),
            }
        }
        if !any {
            return Ok(None);
        }
        let mut seen = HashSet::new();
        sources.retain(|s| seen.insert(s.v));
        let mut seen = HashSet::new();
        nodes.retain(|d| seen.insert(d.clone()));
        nodes.push(who.desc());
        Ok(Some(Rc::new(Tail { sources, nodes })))
    }

    /// A float op whose inputs do not form a quantized pattern: a float
    /// tail in cut mode, else an error that says what the inputs are.
    fn not_quantized(&mut self, who: &Who, n: &NodeProto) -> Result<()> {
        if self.opts.float_tail == FloatTail::Cut {
            if let Some(t) = self.tail_of(who, n)? {
                let out = self.output(who, n)?;
                self.set(out, Sym::Tail(t));
                return Ok(());
            }
        }
        let op = n.op_type();
        if matches!(op, "Conv" | "Gemm" | "MatMul") {
            let deq = |s: Option<Sym>| matches!(s, Some(Sym::Deq(_)));
            if deq(self.opt_input(who, n, 0)?) && deq(self.opt_input(who, n, 1)?) {
                let what = if op == "Conv" { "run-time weights" } else { "two activation inputs" };
                return Err(who.unsupported(format!(
                    "{op} `{}` with {what} (`{}` × `{}`, activation × activation) is not supported yet; its second \
                     input must be constant weights",
                    who.node,
                    input_name(n, 0).unwrap_or_default(),
                    input_name(n, 1).unwrap_or_default(),
                )));
            }
        }
        for i in 0..n.input.len() {
            let name = input_name(n, i).unwrap_or_default().to_string();
            let what = match self.opt_input(who, n, i)? {
                None | Some(Sym::Const(_)) | Some(Sym::ConstDeq(_)) => continue,
                Some(Sym::Quant(_))
                    if matches!(op, "Conv" | "Gemm" | "MatMul" | "Add" | "AveragePool" | "GlobalAveragePool") =>
                {
                    return Err(who.invalid(format!(
                        "{op} reads the quantized tensor `{name}`: ONNX's {op} is float; quantized models use the \
                         QLinear ops or DequantizeLinear → {op} → QuantizeLinear"
                    )))
                }
                Some(Sym::Quant(_)) => continue,
                Some(Sym::Float(_)) => format!(
                    "float {op} on `{name}`, which is not quantized: the model must quantize its float inputs \
                     (QuantizeLinear) before any other op"
                ),
                Some(Sym::Pending(p)) => format!(
                    "{op} reads `{name}`, the float output of {}, which no QuantizeLinear quantizes",
                    p.who.desc()
                ),
                Some(Sym::Deq(_)) | Some(Sym::Tail(_)) => format!(
                    "float {op} on the dequantized tensor `{name}` outside a DequantizeLinear → op → \
                     QuantizeLinear group: the IR has no float arithmetic (ONNX Runtime's standard-ops QOperator \
                     export adds the last bias so); `onnx::import_with` with `FloatTail::Cut` imports the model \
                     up to its last DequantizeLinear"
                ),
            };
            return Err(who.unsupported(what));
        }
        Err(who.unsupported(format!(
            "{op} without a dequantized activation input (inputs {:?}): not a quantized pattern",
            n.input
        )))
    }

    fn graph_output(&mut self, name: &str, cut: &mut Vec<CutOutput>) -> Result<()> {
        let who = Who { node: name.to_string(), op: "graph output".into() };
        let sym = self.lookup(&who, name)?;
        let push = |g: &mut Graph, v: ValueId| {
            if !g.outputs.contains(&v) {
                g.outputs.push(v)
            }
        };
        match sym {
            Sym::Quant(v) | Sym::Float(v) => push(&mut self.g, v),
            Sym::Deq(s) => {
                let d = self.dequantize(&s)?;
                push(&mut self.g, d)
            }
            Sym::Pending(p) if self.opts.float_tail == FloatTail::Reject => {
                return Err(p.who.unsupported(format!(
                    "its float output `{name}` is a graph output without a QuantizeLinear: the IR computes \
                     quantized ops only"
                )))
            }
            Sym::Tail(_) | Sym::Pending(_) => {
                let (sources, nodes) = match &sym {
                    Sym::Tail(t) => (t.sources.clone(), t.nodes.clone()),
                    Sym::Pending(p) => (p.inputs.clone(), vec![p.who.desc()]),
                    _ => unreachable!(),
                };
                let mut replaced_by = Vec::new();
                for s in &sources {
                    let d = self.dequantize(s)?;
                    replaced_by.push(self.g.values[d].name.clone());
                    push(&mut self.g, d);
                }
                cut.push(CutOutput { output: name.to_string(), nodes, replaced_by });
            }
            Sym::Const(_) | Sym::ConstDeq(_) => return Err(who.unsupported("a constant graph output")),
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
struct Pool {
    avg: bool,
    global: bool,
}

/// Gemm / QGemm attributes the IR's Dense can take; returns transB.
fn gemm_checks(who: &Who, n: &NodeProto) -> Result<bool> {
    if attr_flag(who, n, "transA")? {
        return Err(who.unsupported("transA = 1"));
    }
    let alpha = attr_float(who, n, "alpha")?.unwrap_or(1.0);
    if alpha != 1.0 {
        return Err(who.unsupported(format!("alpha = {alpha} (only 1)")));
    }
    match attr_int(who, n, "transB")?.unwrap_or(0) {
        0 => Ok(false),
        1 => Ok(true),
        t => Err(who.invalid(format!("transB = {t}"))),
    }
}

/// Reshape's target: `0` copies the input's dimension (unless
/// `allowzero`), one `-1` takes what is left.
pub(super) fn reshape_target(who: &Who, input: &[usize], spec: &[i64], allowzero: bool) -> Result<Vec<usize>> {
    let total = checked_elements(input).unwrap_or(usize::MAX);
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1)
            }
            0 if allowzero => return Err(who.unsupported("zero-size dimensions (allowzero = 1 with a 0)")),
            0 => out.push(
                *input.get(i).ok_or_else(|| who.invalid(format!("shape {spec:?}: 0 at axis {i} copies nothing")))?,
            ),
            d if d > 0 && d <= i64::from(u32::MAX) => out.push(d as usize),
            _ => return Err(who.invalid(format!("shape {spec:?} for input shape {input:?}"))),
        }
    }
    let known = checked_elements(&out).ok_or_else(|| who.invalid(format!("shape {spec:?} is too large")))?;
    if let Some(i) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(who.invalid(format!("shape {spec:?} does not fit input shape {input:?}")));
        }
        out[i] = total / known;
    } else if known != total {
        return Err(who.invalid(format!("shape {spec:?} does not fit input shape {input:?}")));
    }
    Ok(out)
}

/// Folds each standalone clamp into the Conv / Dense / Add / Clamp that
/// produces its input when nothing else reads that input.
fn fuse_clamps(g: &mut Graph) {
    let mut uses = vec![0usize; g.values.len()];
    for n in &g.nodes {
        for &i in &n.inputs {
            uses[i] += 1;
        }
    }
    for &o in &g.outputs {
        uses[o] += 1;
    }
    let mut producer: HashMap<ValueId, usize> = HashMap::new();
    let mut removed = vec![false; g.nodes.len()];
    for i in 0..g.nodes.len() {
        for &o in &g.nodes[i].outputs {
            producer.insert(o, i);
        }
        let Op::Clamp { qmin: lo, qmax: hi } = g.nodes[i].op else { continue };
        let x = g.nodes[i].inputs[0];
        let Some(&p) = producer.get(&x) else { continue };
        if uses[x] != 1 || removed[p] {
            continue;
        }
        let bounds = match &mut g.nodes[p].op {
            Op::Conv(c) => Some((&mut c.qmin, &mut c.qmax)),
            Op::Dense(d) => Some((&mut d.qmin, &mut d.qmax)),
            Op::Add { qmin, qmax } | Op::Clamp { qmin, qmax } => Some((qmin, qmax)),
            _ => None,
        };
        let Some((pmin, pmax)) = bounds else { continue };
        let (nmin, nmax) = ((*pmin).max(lo), (*pmax).min(hi));
        if nmin > nmax {
            continue;
        }
        (*pmin, *pmax) = (nmin, nmax);
        let y = g.nodes[i].outputs[0];
        g.nodes[p].outputs = vec![y];
        producer.insert(y, p);
        removed[i] = true;
    }
    let mut k = 0;
    g.nodes.retain(|_| {
        k += 1;
        !removed[k - 1]
    });
}

/// Drops values no node, input or output refers to, renumbering the rest.
fn compact(g: &mut Graph) {
    let mut used = vec![false; g.values.len()];
    for &v in g.inputs.iter().chain(&g.outputs) {
        used[v] = true;
    }
    for n in &g.nodes {
        for &v in n.inputs.iter().chain(&n.outputs) {
            used[v] = true;
        }
    }
    let mut map = vec![usize::MAX; g.values.len()];
    let mut values = Vec::new();
    for (i, v) in std::mem::take(&mut g.values).into_iter().enumerate() {
        if used[i] {
            map[i] = values.len();
            values.push(v);
        }
    }
    g.values = values;
    for v in g.inputs.iter_mut().chain(g.outputs.iter_mut()) {
        *v = map[*v];
    }
    for n in &mut g.nodes {
        for v in n.inputs.iter_mut().chain(n.outputs.iter_mut()) {
            *v = map[*v];
        }
    }
}

/// The source index of each of `out` positions along an axis of `inp`, as
/// ONNX Runtime's CPU Resize computes it for nearest mode: the coordinate
/// transform in binary32, the nearest mode, then clamped to the input.
fn nearest_indices(who: &Who, out: usize, inp: usize, scale: f32, coord: &str, nearest: &str) -> Result<Vec<usize>> {
    let (lr, lo) = (out as f32, inp as f32);
    let mut v = Vec::with_capacity(out);
    for o in 0..out {
        let xr = o as f32;
        let x: f32 = match coord {
            "half_pixel" => (xr + 0.5) / scale - 0.5,
            "asymmetric" => xr / scale,
            "pytorch_half_pixel" => {
                if lr > 1.0 {
                    (xr + 0.5) / scale - 0.5
                } else {
                    0.0
                }
            }
            "tf_half_pixel_for_nn" => (xr + 0.5) / scale,
            "align_corners" => {
                if lr == 1.0 {
                    0.0
                } else {
                    xr * (lo - 1.0) / (lr - 1.0)
                }
            }
            other => return Err(who.unsupported(format!("Resize coordinate_transformation_mode `{other}`"))),
        };
        let i = match nearest {
            "round_prefer_floor" => {
                if x == (x as i64) as f32 + 0.5 {
                    x.floor()
                } else {
                    x.round()
                }
            }
            "round_prefer_ceil" => x.round(),
            "floor" => x.floor(),
            "ceil" => x.ceil(),
            other => return Err(who.unsupported(format!("Resize nearest_mode `{other}`"))),
        };
        v.push((i as i64).clamp(0, inp as i64 - 1) as usize);
    }
    Ok(v)
}
