//! Import of transformer graphs as the transformers exporter and ONNX
//! Runtime's QDQ quantizer write them (BERT- and GPT-2-class encoders and
//! decoders): int64 token and mask inputs, shape and mask subgraphs folded
//! at compile time ([`super::fold`]), rank-3 `[batch, seq, hidden]`
//! values, quantized Linear layers (`DequantizeLinear` → `MatMul`/`Gemm`),
//! activation × activation products, float LayerNormalization, Softmax,
//! GELU and residual arithmetic, and embeddings gathered from quantized
//! tables.
//!
//! One pass over the nodes in order keeps, for every ONNX tensor name,
//! what it stands for ([`Sym`]): an IR value, the float view of a
//! quantized IR value, a compile-time [`Folded`] tensor (constants and
//! attention-mask functions), a quantized constant (weights, tables,
//! biases), or a matrix product waiting to learn whether a
//! `QuantizeLinear` requantizes it (`Op::Dense` / `Op::MatMul` with an int8
//! output) or a float op reads it (dequantized: `Op::DenseF32` /
//! `Op::MatMul` with a float output). A GELU written out element by element
//! (the Erf and the tanh form) becomes one `Op::Gelu` afterwards.
//!
//! Anything the pass cannot fold or express is refused naming the node
//! and the reason (a shape that depends on run-time data, an op on
//! run-time tensors the device does not have, float weights).

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use super::fold::{self, FTy, Folded};
use super::import::{attr_float, attr_int, attr_ints, input_name, unique_attrs, who_of, Who};
use super::proto::{tensor_proto::DataType, type_proto, GraphProto, NodeProto, TensorProto};
use super::{ImportError, Imported};
use crate::ir::{
    BinaryOp, DenseParams, ElemType, EmbeddingParams, Graph, Node, Op, Quant, UnaryOp, Value, ValueId, WeightType,
};

type Result<T> = std::result::Result<T, ImportError>;

/// Ops only transformer graphs use here: a graph with one of them, or
/// with an int64 input, is imported by this module.
const TRANSFORMER_OPS: &[&str] = &[
    "LayerNormalization",
    "Softmax",
    "Erf",
    "Gather",
    "Shape",
    "Where",
    "ConstantOfShape",
    "Expand",
    "Split",
    "Pow",
    "ReduceSum",
];

/// Relative difference allowed between an int32 bias scale and `s_x · s_w`.
const BIAS_SCALE_TOLERANCE: f64 = 1.0 / (1u64 << 20) as f64;

pub(super) fn wanted(g: &GraphProto) -> bool {
    let int64_input = g.input.iter().any(|vi| {
        matches!(
            vi.r#type.as_ref().and_then(|t| t.value.as_ref()),
            Some(type_proto::Value::TensorType(tt)) if tt.elem_type() == DataType::Int64 as i32
        )
    });
    int64_input || g.node.iter().any(|n| TRANSFORMER_OPS.contains(&n.op_type()))
}

/// `DequantizeLinear` of a constant: integers, per-channel scales and
/// zero points along `axis`.
#[derive(Debug)]
struct QConst {
    q: Folded,
    scale: Vec<f32>,
    zp: Vec<i64>,
    axis: usize,
    name: String,
}

impl QConst {
    fn channel(&self, i: usize) -> usize {
        if self.scale.len() == 1 {
            return 0;
        }
        let inner: usize = self.q.dims[self.axis + 1..].iter().product();
        (i / inner) % self.q.dims[self.axis]
    }

    fn dequantized(&self) -> Folded {
        let v = (0..self.q.len())
            .map(|i| {
                let c = self.channel(i);
                isa::numerics::dequantize(self.q.lo[i] as i32, self.scale[c], self.zp[c] as i32) as f64
            })
            .collect();
        Folded::constant(self.q.dims.clone(), FTy::F32, v)
    }

    fn per_tensor(&self) -> Option<Quant> {
        (self.scale.len() == 1).then(|| Quant { scale: self.scale[0], zero_point: self.zp[0] as i32 })
    }
}

/// A matrix product whose output's form (float or requantized) its
/// reader decides.
#[derive(Debug)]
struct PendingMm {
    who: Who,
    op: Op,
    inputs: Vec<ValueId>,
    name: String,
}

#[derive(Clone, Debug)]
enum Sym {
    /// An IR value (float, int64 or quantized).
    Val(ValueId),
    /// The float view of a quantized IR value.
    Deq(ValueId),
    /// Known at compile time.
    K(Rc<Folded>),
    /// A quantized constant.
    QK(Rc<QConst>),
    /// A quantized constant's float view.
    DeqK(Rc<QConst>),
    Pending(Rc<PendingMm>),
}

struct Ctx<'m> {
    inits: HashMap<&'m str, &'m TensorProto>,
    syms: HashMap<String, Sym>,
    g: Graph,
    names: HashSet<String>,
    dequantized: HashMap<ValueId, ValueId>,
}

pub(super) fn run(graph: &GraphProto) -> Result<Imported> {
    let mut cx = Ctx {
        inits: graph.initializer.iter().map(|t| (t.name(), t)).collect(),
        syms: HashMap::new(),
        g: Graph { name: graph.name().to_string(), ..Graph::default() },
        names: HashSet::new(),
        dequantized: HashMap::new(),
    };
    for vi in &graph.input {
        if !cx.inits.contains_key(vi.name()) {
            cx.graph_input(vi)?;
        }
    }
    for (i, n) in graph.node.iter().enumerate() {
        let who = who_of(n, i);
        unique_attrs(&who, n)?;
        cx.node(n, &who)?;
    }
    for o in &graph.output {
        let who = Who { node: o.name().to_string(), op: "graph output".into() };
        let v = cx.float(&who, o.name())?;
        // An output that only reshapes to the same shape is its producer's
        // value: give it the model's output name.
        if cx.g.values[v].name != o.name() && !cx.g.inputs.contains(&v) && !cx.names.contains(o.name()) {
            cx.names.insert(o.name().to_string());
            cx.g.values[v].name = o.name().to_string();
        }
        cx.g.outputs.push(v);
    }
    let mut g = cx.g;
    super::gelu::fuse(&mut g);
    g.validate()?;
    Ok(Imported { graph: g, cut: Vec::new() })
}

fn fold_err(who: &Who, e: String) -> ImportError {
    who.unsupported(e)
}

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
        use super::proto::tensor_shape_proto::dimension::Value as D;
        let who = Who { node: vi.name().to_string(), op: "graph input".into() };
        let Some(type_proto::Value::TensorType(tt)) = vi.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
            return Err(who.unsupported("an input that is not a tensor"));
        };
        let ty = match DataType::try_from(tt.elem_type()) {
            Ok(DataType::Float) => ElemType::F32,
            Ok(DataType::Int64) => ElemType::I64,
            _ => {
                return Err(who.unsupported(format!(
                    "element type {} (transformer inputs are float or int64)",
                    super::tensor::dtype_name(tt.elem_type())
                )))
            }
        };
        let shape = tt.shape.as_ref().ok_or_else(|| who.unsupported("an input without a static shape"))?;
        let mut dims = Vec::new();
        for (i, d) in shape.dim.iter().enumerate() {
            match &d.value {
                Some(D::DimValue(v)) if (1..=1 << 24).contains(v) => dims.push(*v as usize),
                _ if i == 0 => dims.push(1),
                other => {
                    return Err(who.unsupported(format!(
                        "dimension {i} is {other:?}: the device needs static shapes (re-export with a fixed \
                         sequence length)"
                    )))
                }
            }
        }
        let name = self.unique(vi.name());
        let id = self.g.add_value(Value { name, shape: dims, ty, quant: None });
        self.g.inputs.push(id);
        self.syms.insert(vi.name().to_string(), Sym::Val(id));
        Ok(())
    }

    fn lookup(&mut self, who: &Who, name: &str) -> Result<Sym> {
        if let Some(s) = self.syms.get(name) {
            return Ok(s.clone());
        }
        if let Some(t) = self.inits.get(name) {
            let f = fold::from_proto(t).map_err(|e| who.unsupported(format!("initializer `{name}`: {e}")))?;
            let s = Sym::K(Rc::new(f));
            self.syms.insert(name.to_string(), s.clone());
            return Ok(s);
        }
        Err(who.invalid(format!("input `{name}` is not defined before the node")))
    }

    fn input(&mut self, who: &Who, n: &NodeProto, i: usize) -> Result<Sym> {
        let name = input_name(n, i).ok_or_else(|| who.invalid(format!("missing input {i}")))?;
        self.lookup(who, name)
    }

    fn known(&mut self, who: &Who, n: &NodeProto, i: usize, what: &str) -> Result<Rc<Folded>> {
        match self.input(who, n, i)? {
            Sym::K(f) if f.is_const() => Ok(f),
            Sym::DeqK(q) => Ok(Rc::new(q.dequantized())),
            _ => Err(who.unsupported(format!(
                "{what} `{}` is computed at run time; the device needs it known at compile time",
                input_name(n, i).unwrap_or_default()
            ))),
        }
    }

    fn opt_known(&mut self, who: &Who, n: &NodeProto, i: usize, what: &str) -> Result<Option<Rc<Folded>>> {
        match input_name(n, i) {
            Some(_) => self.known(who, n, i, what).map(Some),
            None => Ok(None),
        }
    }

    fn out<'n>(&self, who: &Who, n: &'n NodeProto) -> Result<&'n str> {
        match n.output.iter().filter(|s| !s.is_empty()).count() {
            1 if !n.output[0].is_empty() => Ok(&n.output[0]),
            0 => Err(who.invalid("the node has no output")),
            k => Err(who.unsupported(format!("{k} outputs (only the first, main output is supported)"))),
        }
    }

    fn set(&mut self, name: &str, s: Sym) {
        self.syms.insert(name.to_string(), s);
    }

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
        let shape = crate::ir::infer_shape(&op, &ins).ok_or_else(|| {
            who.invalid(format!(
                "input shapes {:?} do not fit the op {}",
                ins.iter().map(|v| v.shape.clone()).collect::<Vec<_>>(),
                op.name()
            ))
        })?;
        let name = self.unique(out);
        let id = self.g.add_value(Value { name, shape, ty, quant });
        self.g.nodes.push(Node { name: who.node.clone(), op, inputs, outputs: vec![id] });
        Ok(id)
    }

    fn dims_of(&self, s: &Sym) -> Vec<usize> {
        match s {
            Sym::Val(v) | Sym::Deq(v) => self.g.values[*v].shape.clone(),
            Sym::K(f) => f.dims.clone(),
            Sym::QK(q) | Sym::DeqK(q) => q.q.dims.clone(),
            Sym::Pending(p) => {
                let ins: Vec<&Value> = p.inputs.iter().map(|&i| &self.g.values[i]).collect();
                crate::ir::infer_shape(&p.op, &ins).unwrap_or_default()
            }
        }
    }

    /// The ONNX tensor `name` as a float IR value, materializing what it
    /// stands for.
    fn float(&mut self, who: &Who, name: &str) -> Result<ValueId> {
        let s = self.lookup(who, name)?;
        self.float_of(who, name, s)
    }

    fn float_of(&mut self, who: &Who, name: &str, s: Sym) -> Result<ValueId> {
        match s {
            Sym::Val(v) if self.g.values[v].ty == ElemType::F32 => Ok(v),
            Sym::Val(v) => Err(who.unsupported(format!(
                "`{}` is {} where a float tensor is needed",
                self.g.values[v].name,
                self.g.values[v].ty.name()
            ))),
            Sym::Deq(v) => {
                if let Some(&d) = self.dequantized.get(&v) {
                    return Ok(d);
                }
                let d = self.emit(who, Op::Dequantize, vec![v], name, ElemType::F32, None)?;
                self.dequantized.insert(v, d);
                Ok(d)
            }
            Sym::K(f) => {
                let f = if f.ty == FTy::F32 { (*f).clone() } else { f.cast(FTy::F32) };
                let v = self.materialize(who, name, &f)?;
                self.set(name, Sym::Val(v));
                Ok(v)
            }
            Sym::DeqK(q) => {
                let f = q.dequantized();
                let v = self.materialize(who, name, &f)?;
                self.set(name, Sym::Val(v));
                Ok(v)
            }
            Sym::QK(_) => {
                Err(who.unsupported(format!("`{name}` is a quantized constant where a float tensor is needed")))
            }
            Sym::Pending(p) => {
                let op = match &p.op {
                    Op::DenseF32(_) | Op::MatMul => p.op.clone(),
                    other => return Err(who.invalid(format!("internal: pending {}", other.name()))),
                };
                let v = self.emit(&p.who, op, p.inputs.clone(), &p.name, ElemType::F32, None)?;
                self.set(&p.name, Sym::Val(v));
                Ok(v)
            }
        }
    }

    /// A folded float tensor as a `Constant` or (reading a mask input) a
    /// `MaskSelect`.
    fn materialize(&mut self, who: &Who, name: &str, f: &Folded) -> Result<ValueId> {
        let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
        match &f.src {
            None => self.emit(
                who,
                Op::Constant { shape: f.dims.clone(), data: f32s(&f.lo) },
                vec![],
                name,
                ElemType::F32,
                None,
            ),
            Some((id, src)) => {
                let op = Op::MaskSelect {
                    shape: f.dims.clone(),
                    index: src.iter().map(|s| s.unwrap_or(0)).collect(),
                    if_zero: f32s(&f.lo),
                    if_nonzero: f32s(&f.hi),
                };
                self.emit(who, op, vec![*id], name, ElemType::F32, None)
            }
        }
    }

    /// The quantized IR value behind a dequantized input of a product.
    fn quantized(&mut self, who: &Who, n: &NodeProto, i: usize) -> Result<ValueId> {
        match self.input(who, n, i)? {
            Sym::Deq(v) => Ok(v),
            _ => Err(who.unsupported(format!(
                "input `{}` is not a dequantized int8 tensor: the array multiplies int8 activations (quantize the \
                 model statically, QDQ)",
                input_name(n, i).unwrap_or_default()
            ))),
        }
    }

    fn node(&mut self, n: &NodeProto, who: &Who) -> Result<()> {
        if !matches!(n.domain(), "" | "ai.onnx") {
            return Err(ImportError::UnsupportedOp { node: who.node.clone(), op: who.op.clone() });
        }
        let op = n.op_type();
        match op {
            "Constant" => self.constant(who, n),
            "Identity" => {
                let s = self.input(who, n, 0)?;
                let o = self.out(who, n)?;
                self.set(o, s);
                Ok(())
            }
            "QuantizeLinear" => self.quantize_linear(who, n),
            "DequantizeLinear" => self.dequantize_linear(who, n),
            "Cast" => self.cast(who, n),
            "Shape" => {
                let s = self.input(who, n, 0)?;
                let dims = self.dims_of(&s);
                let r = dims.len() as i64;
                let clampi = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
                let start = clampi(attr_int(who, n, "start")?.unwrap_or(0));
                let end = clampi(attr_int(who, n, "end")?.unwrap_or(r));
                let v: Vec<f64> = dims[start..end.max(start)].iter().map(|&d| d as f64).collect();
                let o = self.out(who, n)?;
                self.set(o, Sym::K(Rc::new(Folded::constant(vec![v.len()], FTy::I64, v))));
                Ok(())
            }
            "ConstantOfShape" => {
                let shape = self.known(who, n, 0, "shape")?.ints("shape").map_err(|e| fold_err(who, e))?;
                let fill = match n.attribute.iter().find(|a| a.name() == "value").and_then(|a| a.t.as_ref()) {
                    Some(t) => fold::from_proto(t).map_err(|e| fold_err(who, e))?,
                    None => Folded::constant(vec![1], FTy::F32, vec![0.0]),
                };
                let dims: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
                let nel: usize = dims.iter().product();
                let f = Folded::constant(dims, fill.ty, vec![fill.lo.first().copied().unwrap_or(0.0); nel]);
                let o = self.out(who, n)?;
                self.set(o, Sym::K(Rc::new(f)));
                Ok(())
            }
            "Equal" | "Less" | "LessOrEqual" | "Greater" | "GreaterOrEqual" | "And" | "Or" => {
                let (a, b) = (self.folded(who, n, 0)?, self.folded(who, n, 1)?);
                let f = fold::binary(op, &a, &b).map_err(|e| fold_err(who, e))?;
                self.set_folded(who, n, f)
            }
            "Not" => {
                let a = self.folded(who, n, 0)?;
                let f = fold::elementwise(&[&a], FTy::Bool, |v| (v[0] == 0.0) as u8 as f64)
                    .map_err(|e| fold_err(who, e))?;
                self.set_folded(who, n, f)
            }
            "Where" => {
                let (c, a, b) = (self.folded(who, n, 0)?, self.folded(who, n, 1)?, self.folded(who, n, 2)?);
                if a.ty != b.ty {
                    return Err(who.invalid("Where of two types"));
                }
                let f = fold::elementwise(&[&c, &a, &b], a.ty, |v| if v[0] != 0.0 { v[1] } else { v[2] })
                    .map_err(|e| fold_err(who, e))?;
                self.set_folded(who, n, f)
            }
            "Add" | "Sub" | "Mul" | "Div" => self.arith(who, n),
            "Pow" => self.pow(who, n),
            "Erf" | "Tanh" => {
                let x = self.float(who, input_name(n, 0).unwrap_or_default())?;
                let u = if op == "Erf" { UnaryOp::Erf } else { UnaryOp::Tanh };
                let o = self.out(who, n)?;
                let v = self.emit(who, Op::Unary(u), vec![x], o, ElemType::F32, None)?;
                self.set(o, Sym::Val(v));
                Ok(())
            }
            "Unsqueeze" | "Squeeze" | "Flatten" | "Reshape" => self.reshape_like(who, n),
            "Expand" => {
                let x = self.folded(who, n, 0)?;
                let shape = self.known(who, n, 1, "shape")?.ints("shape").map_err(|e| fold_err(who, e))?;
                let f = fold::expand(&x, &shape).map_err(|e| fold_err(who, e))?;
                self.set_folded(who, n, f)
            }
            "Concat" => {
                let axis = attr_int(who, n, "axis")?.ok_or_else(|| who.invalid("Concat without `axis`"))?;
                let parts: Vec<Rc<Folded>> =
                    (0..n.input.len()).map(|i| self.folded(who, n, i)).collect::<Result<_>>()?;
                let refs: Vec<&Folded> = parts.iter().map(|p| &**p).collect();
                let ax = fold::norm_axis(axis, refs[0].dims.len()).map_err(|e| fold_err(who, e))?;
                let f = fold::concat(&refs, ax).map_err(|e| fold_err(who, e))?;
                self.set_folded(who, n, f)
            }
            "Range" => {
                let s = self.known(who, n, 0, "start")?;
                let l = self.known(who, n, 1, "limit")?;
                let d = self.known(who, n, 2, "delta")?;
                let (s0, l0, d0) = (s.lo[0], l.lo[0], d.lo[0]);
                if d0 == 0.0 {
                    return Err(who.invalid("Range with delta 0"));
                }
                let count = ((l0 - s0) / d0).ceil().max(0.0) as usize;
                let v: Vec<f64> = (0..count).map(|i| s.ty.cast(s0 + i as f64 * d0)).collect();
                self.set_folded(who, n, Folded::constant(vec![count], s.ty, v))
            }
            "Slice" => {
                let x = self.folded(who, n, 0)?;
                let starts = self.known(who, n, 1, "starts")?.ints("starts").map_err(|e| fold_err(who, e))?;
                let ends = self.known(who, n, 2, "ends")?.ints("ends").map_err(|e| fold_err(who, e))?;
                let axes = match self.opt_known(who, n, 3, "axes")? {
                    Some(a) => a.ints("axes").map_err(|e| fold_err(who, e))?,
                    None => (0..starts.len() as i64).collect(),
                };
                let steps = match self.opt_known(who, n, 4, "steps")? {
                    Some(a) => a.ints("steps").map_err(|e| fold_err(who, e))?,
                    None => vec![1; starts.len()],
                };
                let axes: Vec<usize> = axes
                    .iter()
                    .map(|&a| fold::norm_axis(a, x.dims.len()))
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|e| fold_err(who, e))?;
                let f = fold::slice(&x, &starts, &ends, &axes, &steps).map_err(|e| fold_err(who, e))?;
                self.set_folded(who, n, f)
            }
            "Gather" => self.gather(who, n),
            "Transpose" => self.transpose(who, n),
            "Split" => self.split(who, n),
            "MatMul" => self.matmul(who, n),
            "Gemm" => self.gemm(who, n),
            "LayerNormalization" => self.layer_norm(who, n),
            "Softmax" => {
                let x = self.float(who, input_name(n, 0).unwrap_or_default())?;
                let rank = self.g.values[x].shape.len();
                let axis = attr_int(who, n, "axis")?.unwrap_or(-1);
                if fold::norm_axis(axis, rank).ok() != Some(rank - 1) {
                    return Err(who.unsupported(format!("Softmax over axis {axis} (only the last axis)")));
                }
                let o = self.out(who, n)?;
                let v = self.emit(who, Op::Softmax, vec![x], o, ElemType::F32, None)?;
                self.set(o, Sym::Val(v));
                Ok(())
            }
            "ReduceSum" => {
                let x = self.float(who, input_name(n, 0).unwrap_or_default())?;
                let rank = self.g.values[x].shape.len();
                let axes = match self.opt_known(who, n, 1, "axes")? {
                    Some(a) => a.ints("axes").map_err(|e| fold_err(who, e))?,
                    None => attr_ints(who, n, "axes")?.unwrap_or_default(),
                };
                let [axis] = axes[..] else {
                    return Err(who.unsupported(format!("ReduceSum over axes {axes:?} (one axis)")));
                };
                let axis = fold::norm_axis(axis, rank).map_err(|e| fold_err(who, e))?;
                let keepdims = attr_int(who, n, "keepdims")?.unwrap_or(1) != 0;
                let o = self.out(who, n)?;
                let v = self.emit(who, Op::ReduceSum { axis, keepdims }, vec![x], o, ElemType::F32, None)?;
                self.set(o, Sym::Val(v));
                Ok(())
            }
            "Clip" => {
                let x = self.float(who, input_name(n, 0).unwrap_or_default())?;
                let lo = self.opt_known(who, n, 1, "min")?;
                if self.opt_known(who, n, 2, "max")?.is_some() {
                    return Err(who.unsupported("Clip with an upper bound on floats"));
                }
                let o = self.out(who, n)?;
                let v = match lo {
                    None => x,
                    Some(lo) => {
                        let c = self.materialize(who, &format!("{o}_min"), &lo)?;
                        self.emit(who, Op::Binary(BinaryOp::Max), vec![x, c], o, ElemType::F32, None)?
                    }
                };
                self.set(o, Sym::Val(v));
                Ok(())
            }
            _ => Err(ImportError::UnsupportedOp { node: who.node.clone(), op: who.op.clone() }),
        }
    }

    /// An input as a folded tensor: constants, folded values, and an int64
    /// graph input read as a mask.
    fn folded(&mut self, who: &Who, n: &NodeProto, i: usize) -> Result<Rc<Folded>> {
        match self.input(who, n, i)? {
            Sym::K(f) => Ok(f),
            Sym::DeqK(q) => Ok(Rc::new(q.dequantized())),
            _ => Err(who.unsupported(format!(
                "{} on the run-time tensor `{}`: only shapes, constants and attention masks are folded; the \
                 device has no such op on activations",
                n.op_type(),
                input_name(n, i).unwrap_or_default()
            ))),
        }
    }

    fn set_folded(&mut self, who: &Who, n: &NodeProto, f: Folded) -> Result<()> {
        let o = self.out(who, n)?;
        self.set(o, Sym::K(Rc::new(f)));
        Ok(())
    }

    fn constant(&mut self, who: &Who, n: &NodeProto) -> Result<()> {
        let o = self.out(who, n)?;
        let [a] = &n.attribute[..] else { return Err(who.invalid("a Constant node needs exactly one attribute")) };
        let f = match a.name() {
            "value" => {
                let t = a.t.as_ref().ok_or_else(|| who.invalid("`value` holds no tensor"))?;
                fold::from_proto(t).map_err(|e| fold_err(who, e))?
            }
            "value_float" => Folded::constant(vec![], FTy::F32, vec![a.f() as f64]),
            "value_floats" => {
                Folded::constant(vec![a.floats.len()], FTy::F32, a.floats.iter().map(|&x| x as f64).collect())
            }
            "value_int" => Folded::constant(vec![], FTy::I64, vec![a.i() as f64]),
            "value_ints" => Folded::constant(vec![a.ints.len()], FTy::I64, a.ints.iter().map(|&x| x as f64).collect()),
            other => return Err(who.unsupported(format!("attribute `{other}`"))),
        };
        self.set(o, Sym::K(Rc::new(f)));
        Ok(())
    }

    /// Per-tensor (scale, zero point, type) of a Q/DQ node's inputs 1, 2.
    fn qparams(&mut self, who: &Who, n: &NodeProto) -> Result<(Vec<f32>, Vec<i64>, ElemType)> {
        let s = self.known(who, n, 1, "scale")?.floats("scale").map_err(|e| fold_err(who, e))?;
        if let Some(x) = s.iter().find(|x| !(x.is_finite() && **x > 0.0)) {
            return Err(who.unsupported(format!("scale {x}; scales must be finite and positive")));
        }
        let (zp, ty) = match input_name(n, 2) {
            None => (vec![0; s.len()], ElemType::I8),
            Some(zn) => {
                let ty = match self.inits.get(zn).map(|t| t.data_type()) {
                    Some(c) if c == DataType::Uint8 as i32 => ElemType::U8,
                    _ => ElemType::I8,
                };
                let z = self.known(who, n, 2, "zero point")?.ints("zero point").map_err(|e| fold_err(who, e))?;
                (z, ty)
            }
        };
        if zp.len() != s.len() {
            return Err(who.invalid(format!("{} scales and {} zero points", s.len(), zp.len())));
        }
        Ok((s, zp, ty))
    }

    fn quantize_linear(&mut self, who: &Who, n: &NodeProto) -> Result<()> {
        let (s, z, ty) = self.qparams(who, n)?;
        let o = self.out(who, n)?;
        let x = self.input(who, n, 0)?;
        if s.len() != 1 {
            return Err(who.unsupported("per-channel quantization of an activation"));
        }
        let q = Quant { scale: s[0], zero_point: z[0] as i32 };
        let same = |v: &Value| {
            v.ty == ty
                && v.quant.is_some_and(|h| h.scale.to_bits() == q.scale.to_bits() && h.zero_point == q.zero_point)
        };
        let sym = match x {
            Sym::Deq(v) if same(&self.g.values[v]) => Sym::Val(v),
            Sym::Pending(p) => {
                let (lo, hi) = ty.range().unwrap_or((-128, 127));
                let op = match &p.op {
                    Op::DenseF32(d) => Op::Dense(DenseParams { qmin: lo, qmax: hi, ..d.clone() }),
                    other => other.clone(),
                };
                Sym::Val(self.emit(&p.who, op, p.inputs.clone(), o, ty, Some(q))?)
            }
            Sym::DeqK(c) if c.per_tensor().is_some_and(|h| h == q) => Sym::QK(c),
            Sym::K(f) if f.is_const() => {
                let (lo, hi) = ty.range().unwrap_or((-128, 127));
                let v =
                    f.lo.iter()
                        .map(|&x| isa::numerics::quantize(x as f32, q.scale, q.zero_point, lo, hi) as f64)
                        .collect();
                Sym::QK(Rc::new(QConst {
                    q: Folded::constant(f.dims.clone(), FTy::I64, v),
                    scale: vec![q.scale],
                    zp: vec![q.zero_point as i64],
                    axis: 0,
                    name: o.to_string(),
                }))
            }
            Sym::DeqK(c) => {
                let f = c.dequantized();
                let (lo, hi) = ty.range().unwrap_or((-128, 127));
                let v =
                    f.lo.iter()
                        .map(|&x| isa::numerics::quantize(x as f32, q.scale, q.zero_point, lo, hi) as f64)
                        .collect();
                Sym::QK(Rc::new(QConst {
                    q: Folded::constant(f.dims.clone(), FTy::I64, v),
                    scale: vec![q.scale],
                    zp: vec![q.zero_point as i64],
                    axis: 0,
                    name: o.to_string(),
                }))
            }
            other => {
                let name = input_name(n, 0).unwrap_or_default().to_string();
                let f = self.float_of(who, &name, other)?;
                Sym::Val(self.emit(who, Op::Quantize, vec![f], o, ty, Some(q))?)
            }
        };
        self.set(o, sym);
        Ok(())
    }

    fn dequantize_linear(&mut self, who: &Who, n: &NodeProto) -> Result<()> {
        let (s, z, ty) = self.qparams(who, n)?;
        let o = self.out(who, n)?;
        let sym = match self.input(who, n, 0)? {
            Sym::Val(v) => {
                let val = &self.g.values[v];
                let want = Quant { scale: s[0], zero_point: z[0] as i32 };
                if s.len() != 1 || val.ty != ty || val.quant != Some(want) {
                    return Err(who.unsupported(format!(
                        "dequantizes `{}` with scale {:?}, zero point {:?}; it was quantized with {:?}",
                        val.name, s, z, val.quant
                    )));
                }
                Sym::Deq(v)
            }
            Sym::K(f) if f.is_const() && f.ty == FTy::I64 => {
                let axis = attr_int(who, n, "axis")?.unwrap_or(1);
                let axis =
                    if s.len() == 1 { 0 } else { fold::norm_axis(axis, f.dims.len()).map_err(|e| fold_err(who, e))? };
                if s.len() != 1 && f.dims.get(axis) != Some(&s.len()) {
                    return Err(who.invalid(format!("{} scales for axis {axis} of {:?}", s.len(), f.dims)));
                }
                let name = input_name(n, 0).unwrap_or_default().to_string();
                Sym::DeqK(Rc::new(QConst { q: (*f).clone(), scale: s, zp: z, axis, name }))
            }
            Sym::QK(c) => Sym::DeqK(c),
            _ => return Err(who.unsupported("DequantizeLinear of a tensor that is not quantized")),
        };
        self.set(o, sym);
        Ok(())
    }

    fn cast(&mut self, who: &Who, n: &NodeProto) -> Result<()> {
        let to = attr_int(who, n, "to")?.ok_or_else(|| who.invalid("Cast without `to`"))?;
        let ty = FTy::of_code(to)
            .ok_or_else(|| who.unsupported(format!("Cast to {}", super::tensor::dtype_name(to as i32))))?;
        let o = self.out(who, n)?;
        let sym = match self.input(who, n, 0)? {
            Sym::K(f) => Sym::K(Rc::new(f.cast(ty))),
            Sym::Val(v) if self.g.values[v].ty == ElemType::I64 => {
                if ty == FTy::I64 {
                    Sym::Val(v)
                } else {
                    // An int64 input turned into a bool or float mask.
                    Sym::K(Rc::new(Folded::mask_input(v, self.g.values[v].shape.clone()).cast(ty)))
                }
            }
            s @ (Sym::Val(_) | Sym::Deq(_) | Sym::DeqK(_) | Sym::Pending(_)) if ty == FTy::F32 => s,
            _ => return Err(who.unsupported(format!("Cast to {} of a run-time tensor", ty.name()))),
        };
        self.set(o, sym);
        Ok(())
    }

    fn arith(&mut self, who: &Who, n: &NodeProto) -> Result<()> {
        let op = n.op_type();
        let (a, b) = (self.input(who, n, 0)?, self.input(who, n, 1)?);
        let o = self.out(who, n)?;
        if let (Sym::K(x), Sym::K(y)) = (&a, &b) {
            let f = fold::binary(op, x, y).map_err(|e| fold_err(who, e))?;
            self.set(o, Sym::K(Rc::new(f)));
            return Ok(());
        }
        let bop = match op {
            "Add" => BinaryOp::Add,
            "Sub" => BinaryOp::Sub,
            "Mul" => BinaryOp::Mul,
            _ => BinaryOp::Div,
        };
        let (an, bn) =
            (input_name(n, 0).unwrap_or_default().to_string(), input_name(n, 1).unwrap_or_default().to_string());
        let x = self.float_of(who, &an, a)?;
        let y = self.float_of(who, &bn, b)?;
        let v = self.emit(who, Op::Binary(bop), vec![x, y], o, ElemType::F32, None)?;
        self.set(o, Sym::Val(v));
        Ok(())
    }

    fn pow(&mut self, who: &Who, n: &NodeProto) -> Result<()> {
        let e = self.known(who, n, 1, "exponent")?;
        let o = self.out(who, n)?;
        let k = match e.floats("exponent").map_err(|e| fold_err(who, e))?[..] {
            [k] if k == 2.0 || k == 3.0 => k as usize,
            ref other => {
                return Err(who.unsupported(format!("Pow with exponent {other:?} (only 2 and 3, as repeated products)")))
            }
        };
        let x = self.float(who, input_name(n, 0).unwrap_or_default())?;
        let mut p = self.emit(who, Op::Binary(BinaryOp::Mul), vec![x, x], &format!("{o}_sq"), ElemType::F32, None)?;
        if k == 3 {
            p = self.emit(who, Op::Binary(BinaryOp::Mul), vec![p, x], o, ElemType::F32, None)?;
        }
        self.set(o, Sym::Val(p));
        Ok(())
    }

    /// Unsqueeze, Squeeze, Flatten, Reshape: folded, or a Reshape of the
    /// value (the quantized one for a dequantized view).
    fn reshape_like(&mut self, who: &Who, n: &NodeProto) -> Result<()> {
        let x = self.input(who, n, 0)?;
        let from = self.dims_of(&x);
        let dims = match n.op_type() {
            "Reshape" => {
                let shape = self.known(who, n, 1, "shape")?.ints("shape").map_err(|e| fold_err(who, e))?;
                fold::reshape_dims(&from, &shape, attr_int(who, n, "allowzero")?.unwrap_or(0) != 0)
            }
            "Flatten" => {
                let axis = attr_int(who, n, "axis")?.unwrap_or(1);
                let a = if axis < 0 { axis + from.len() as i64 } else { axis }.clamp(0, from.len() as i64) as usize;
                Ok(vec![from[..a].iter().product(), from[a..].iter().product()])
            }
            op => {
                let axes = match self.opt_known(who, n, 1, "axes")? {
                    Some(a) => Some(a.ints("axes").map_err(|e| fold_err(who, e))?),
                    None => attr_ints(who, n, "axes")?,
                };
                if op == "Unsqueeze" {
                    fold::unsqueeze_dims(&from, &axes.unwrap_or_default())
                } else {
                    fold::squeeze_dims(&from, axes.as_deref())
                }
            }
        }
        .map_err(|e| fold_err(who, e))?;
        let o = self.out(who, n)?;
        let sym = match x {
            Sym::K(f) => Sym::K(Rc::new(f.reshaped(dims).map_err(|e| fold_err(who, e))?)),
            Sym::QK(c) | Sym::DeqK(c) => {
                let f = Rc::new(c.dequantized().reshaped(dims).map_err(|e| fold_err(who, e))?);
                Sym::K(f)
            }
            Sym::Val(v) | Sym::Deq(v) if self.g.values[v].shape == dims => x,
            Sym::Val(v) => {
                let ty = self.g.values[v].ty;
                Sym::Val(self.emit(who, Op::Reshape { shape: dims }, vec![v], o, ty, self.g.values[v].quant)?)
            }
            Sym::Deq(v) => {
                let val = &self.g.values[v];
                let (ty, q) = (val.ty, val.quant);
                Sym::Deq(self.emit(who, Op::Reshape { shape: dims }, vec![v], o, ty, q)?)
            }
            Sym::Pending(_) => {
                let name = input_name(n, 0).unwrap_or_default().to_string();
                let v = self.float_of(who, &name, x)?;
                Sym::Val(self.emit(who, Op::Reshape { shape: dims }, vec![v], o, ElemType::F32, None)?)
            }
        };
        self.set(o, sym);
        Ok(())
    }

    fn transpose(&mut self, who: &Who, n: &NodeProto) -> Result<()> {
        let x = self.input(who, n, 0)?;
        let rank = self.dims_of(&x).len();
        let perm: Vec<usize> = match attr_ints(who, n, "perm")? {
            Some(p) => p
                .iter()
                .map(|&a| fold::norm_axis(a, rank))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| fold_err(who, e))?,
            None => (0..rank).rev().collect(),
        };
        let o = self.out(who, n)?;
        let sym = match x {
            Sym::K(f) => Sym::K(Rc::new(fold::transpose(&f, &perm))),
            Sym::Deq(v) => {
                let val = &self.g.values[v];
                let (ty, q) = (val.ty, val.quant);
                Sym::Deq(self.emit(who, Op::Transpose { perm }, vec![v], o, ty, q)?)
            }
            other => {
                let name = input_name(n, 0).unwrap_or_default().to_string();
                let v = match other {
                    Sym::Val(v) => v,
                    s => self.float_of(who, &name, s)?,
                };
                let ty = self.g.values[v].ty;
                let q = self.g.values[v].quant;
                Sym::Val(self.emit(who, Op::Transpose { perm }, vec![v], o, ty, q)?)
            }
        };
        self.set(o, sym);
        Ok(())
    }

    fn split(&mut self, who: &Who, n: &NodeProto) -> Result<()> {
        let x = self.input(who, n, 0)?;
        let dims = self.dims_of(&x);
        let axis = fold::norm_axis(attr_int(who, n, "axis")?.unwrap_or(0), dims.len()).map_err(|e| fold_err(who, e))?;
        let outs: Vec<&String> = n.output.iter().collect();
        let sizes: Vec<usize> = match self.opt_known(who, n, 1, "split")? {
            Some(s) => s.ints("split").map_err(|e| fold_err(who, e))?.iter().map(|&v| v.max(0) as usize).collect(),
            None => match attr_ints(who, n, "split")? {
                Some(s) => s.iter().map(|&v| v.max(0) as usize).collect(),
                None => vec![dims[axis] / outs.len().max(1); outs.len()],
            },
        };
        if sizes.len() != outs.len() || sizes.iter().sum::<usize>() != dims[axis] {
            return Err(who.invalid(format!(
                "split sizes {sizes:?} do not cut axis {axis} of {dims:?} into {} parts",
                outs.len()
            )));
        }
        let (v, deq) = match x {
            Sym::Deq(v) => (v, true),
            Sym::Val(v) => (v, false),
            other => {
                let name = input_name(n, 0).unwrap_or_default().to_string();
                (self.float_of(who, &name, other)?, false)
            }
        };
        let (ty, q) = (self.g.values[v].ty, self.g.values[v].quant);
        let mut start = 0;
        for (o, &len) in outs.iter().zip(&sizes) {
            let s = self.emit(who, Op::Slice { axis, start, end: start + len }, vec![v], o, ty, q)?;
            start += len;
            if !o.is_empty() {
                self.set(o, if deq { Sym::Deq(s) } else { Sym::Val(s) });
            }
        }
        Ok(())
    }

    fn gather(&mut self, who: &Who, n: &NodeProto) -> Result<()> {
        let data = self.input(who, n, 0)?;
        let idx = self.input(who, n, 1)?;
        let rank = self.dims_of(&data).len();
        let axis = fold::norm_axis(attr_int(who, n, "axis")?.unwrap_or(0), rank).map_err(|e| fold_err(who, e))?;
        let o = self.out(who, n)?;
        let sym = match (data, idx) {
            (Sym::K(d), Sym::K(i)) => {
                let ii = i.ints("indices").map_err(|e| fold_err(who, e))?;
                Sym::K(Rc::new(fold::gather(&d, &ii, &i.dims, axis).map_err(|e| fold_err(who, e))?))
            }
            (Sym::DeqK(t), Sym::K(i)) if t.per_tensor().is_some() => {
                let ii = i.ints("indices").map_err(|e| fold_err(who, e))?;
                let q = fold::gather(&t.q, &ii, &i.dims, axis).map_err(|e| fold_err(who, e))?;
                Sym::DeqK(Rc::new(QConst {
                    q,
                    scale: t.scale.clone(),
                    zp: t.zp.clone(),
                    axis: 0,
                    name: t.name.clone(),
                }))
            }
            (Sym::DeqK(t), Sym::Val(ids)) if self.g.values[ids].ty == ElemType::I64 => {
                let quant =
                    t.per_tensor().ok_or_else(|| who.unsupported("an embedding table quantized per channel"))?;
                let [rows, cols] = t.q.dims[..] else {
                    return Err(who.unsupported(format!("an embedding table of shape {:?} (2-D tables)", t.q.dims)));
                };
                if axis != 0 {
                    return Err(who.unsupported("Gather from a table along axis 1"));
                }
                let table: Vec<i8> = t.q.lo.iter().map(|&v| v as i8).collect();
                if t.q.lo.iter().any(|&v| !(-128.0..=127.0).contains(&v)) {
                    return Err(who.unsupported(format!("embedding table `{}` is not int8", t.name)));
                }
                let op = Op::Embedding(EmbeddingParams { table, rows, cols });
                Sym::Deq(self.emit(who, op, vec![ids], o, ElemType::I8, Some(quant))?)
            }
            _ => {
                return Err(who.unsupported(
                    "Gather of a run-time tensor (only embedding rows from a quantized table by int64 ids, and \
                     shapes and constants at compile time)",
                ))
            }
        };
        self.set(o, sym);
        Ok(())
    }

    /// Weights `[K, N]` (`kn`) or `[N, K]` as the IR's `[n, k]`, with
    /// per-output-channel scales.
    fn dense_params(&self, who: &Who, w: &QConst, kn: bool) -> Result<DenseParams> {
        let [r, c] = w.q.dims[..] else {
            return Err(who.unsupported(format!("weights `{}` of shape {:?} (only 2-D)", w.name, w.q.dims)));
        };
        if w.zp.iter().any(|&z| z != 0) {
            return Err(who.unsupported(format!("weights `{}` with a non-zero zero point (symmetric only)", w.name)));
        }
        if w.q.lo.iter().any(|&v| !(-128.0..=127.0).contains(&v)) {
            return Err(who.unsupported(format!("weights `{}` are not int8", w.name)));
        }
        let (n, k) = if kn { (c, r) } else { (r, c) };
        let out_axis = if kn { 1 } else { 0 };
        if w.scale.len() != 1 && w.axis != out_axis {
            return Err(who.unsupported(format!("weights `{}` quantized per channel along the input axis", w.name)));
        }
        let mut weights = vec![0i8; n * k];
        for kk in 0..k {
            for nn in 0..n {
                let i = if kn { kk * n + nn } else { nn * k + kk };
                weights[nn * k + kk] = w.q.lo[i] as i8;
            }
        }
        let w_scale = if w.scale.len() == 1 { vec![w.scale[0]; n] } else { w.scale.clone() };
        Ok(DenseParams { weights, n, k, w_scale, bias: vec![0; n], qmin: -128, qmax: 127, w_type: WeightType::I8 })
    }

    fn pending(&mut self, who: &Who, n: &NodeProto, op: Op, inputs: Vec<ValueId>) -> Result<()> {
        let o = self.out(who, n)?;
        let p = PendingMm { who: who.clone(), op, inputs, name: o.to_string() };
        self.set(o, Sym::Pending(Rc::new(p)));
        Ok(())
    }

    fn matmul(&mut self, who: &Who, n: &NodeProto) -> Result<()> {
        let b = self.input(who, n, 1)?;
        let a = self.quantized(who, n, 0)?;
        match b {
            Sym::DeqK(w) => {
                let d = self.dense_params(who, &w, true)?;
                self.pending(who, n, Op::DenseF32(d), vec![a])
            }
            Sym::Deq(bv) => self.pending(who, n, Op::MatMul, vec![a, bv]),
            _ => Err(who.unsupported(format!(
                "float operand `{}`: the array multiplies int8 tensors (quantize the model statically, QDQ)",
                input_name(n, 1).unwrap_or_default()
            ))),
        }
    }

    fn gemm(&mut self, who: &Who, n: &NodeProto) -> Result<()> {
        if attr_int(who, n, "transA")?.unwrap_or(0) != 0 || attr_float(who, n, "alpha")?.unwrap_or(1.0) != 1.0 {
            return Err(who.unsupported("Gemm with transA or alpha ≠ 1"));
        }
        if attr_float(who, n, "beta")?.unwrap_or(1.0) != 1.0 {
            return Err(who.unsupported("Gemm with beta ≠ 1"));
        }
        let trans_b = attr_int(who, n, "transB")?.unwrap_or(0) != 0;
        let a = self.quantized(who, n, 0)?;
        let Sym::DeqK(w) = self.input(who, n, 1)? else {
            return Err(who.unsupported("Gemm with float or run-time weights (quantize the model statically, QDQ)"));
        };
        let mut d = self.dense_params(who, &w, !trans_b)?;
        let s_x = self.g.values[a].quant.map(|q| q.scale).unwrap_or(1.0);
        match input_name(n, 2).map(|_| self.input(who, n, 2)).transpose()? {
            None => {}
            Some(Sym::DeqK(b)) if b.zp.iter().all(|&z| z == 0) && b.q.len() == d.n => {
                for c in 0..d.n {
                    let want = s_x * d.w_scale[c];
                    let have = b.scale[if b.scale.len() == 1 { 0 } else { c }];
                    if ((have as f64 - want as f64) / want as f64).abs() > BIAS_SCALE_TOLERANCE {
                        return Err(who.unsupported(format!(
                            "bias `{}`[{c}] has scale {have:e}, not input × weight scale {want:e}",
                            b.name
                        )));
                    }
                }
                d.bias = b.q.lo.iter().map(|&v| v as i32).collect();
            }
            Some(_) => return Err(who.unsupported("a Gemm bias that is not int32 in the accumulator's scale")),
        }
        self.pending(who, n, Op::DenseF32(d), vec![a])
    }

    fn layer_norm(&mut self, who: &Who, n: &NodeProto) -> Result<()> {
        if n.output.iter().skip(1).any(|o| !o.is_empty()) {
            return Err(who.unsupported("LayerNormalization's mean and inverse-deviation outputs"));
        }
        let x = self.float(who, input_name(n, 0).unwrap_or_default())?;
        let rank = self.g.values[x].shape.len();
        let axis = attr_int(who, n, "axis")?.unwrap_or(-1);
        if fold::norm_axis(axis, rank).ok() != Some(rank - 1) {
            return Err(who.unsupported(format!("LayerNormalization over axis {axis} (only the last axis)")));
        }
        let eps = attr_float(who, n, "epsilon")?.unwrap_or(1e-5);
        let gamma = self.known(who, n, 1, "scale")?.floats("scale").map_err(|e| fold_err(who, e))?;
        let last = self.g.values[x].shape[rank - 1];
        let beta = match self.opt_known(who, n, 2, "bias")? {
            Some(b) => b.floats("bias").map_err(|e| fold_err(who, e))?,
            None => vec![0.0; last],
        };
        let o = self.out(who, n)?;
        let v = self.emit(who, Op::LayerNorm { gamma, beta, eps }, vec![x], o, ElemType::F32, None)?;
        self.set(o, Sym::Val(v));
        Ok(())
    }
}
