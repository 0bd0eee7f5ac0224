//! Transformer graphs (`Op::is_transformer_op`) to programs: every value
//! row-major `[rows, cols]` in device memory (`place::Place`: int8/uint8
//! one byte an element, float32 four; a `[batch, seq, hidden]` value is
//! `batch · seq` rows), or a strided view of another value's buffer
//! (Reshape of a contiguous buffer, Transpose, Slice: no copy). One step
//! per node:
//! - Linear layers: `Dense` (requantized) as a `gemm::GemmJob` with the
//!   sequence as GEMM rows streaming past stationary weights; `DenseF32`
//!   and the activation × activation `MatMul` through `linear`; attention
//!   (Q·Kᵀ, its vector chain and P·V) as one on-chip phase (`attention`);
//! - float math on the vector unit (`vector_ops`): Quantize, Dequantize,
//!   Binary, Unary, Gelu, LayerNorm, Softmax; ReduceSum over rows;
//! - a view a consumer cannot read as matrices is copied (`copy`).
//!
//! - Embedding and MaskSelect as indexed gathers (`embedding`) reading the
//!   int64 token ids or mask the host writes as a program input.
//!
//! Where each node runs is decided in one place, [`sites`]: ops the
//! device cannot run that depend only on graph inputs (anything else
//! reading or giving int64) run on the host before the program, as input
//! preprocessing; the values of theirs the device reads are the program's
//! input tensors, written by the host.

use super::memory::{Buffer, MemoryPlan};
use super::package::{self, Code, LayerInfo, Lowered};
use super::place::{Mat, Place};
use super::unsupported;
use super::vector_ops::{self, Kind, Operand};
use super::{linear, steps};
use crate::gemm::{self, ASource, Dataflow, GemmJob, GemmOut, LowerError, OutRows, PackedWeights, WeightChoice};
use crate::ir::{BinaryOp, ElemType, GeluForm, Graph, Node, Op, UnaryOp, ValueId};
use crate::ir_codec::PackedRef;
use isa::instr::{self as ins, Instr};
use isa::layout::Layout;
use isa::numerics::{self, vector as v};
use isa::program::{LayerOp, TensorRole};
use isa::HwConfig;

/// Where a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    /// On the host, before the program (input preprocessing).
    Host,
    /// A constant: the program's data, no code.
    Const,
    /// On the device.
    Device,
}

/// Whether a node runs on the host: the device computes no int64, so
/// whatever reads or gives an int64 value does, except Embedding and
/// MaskSelect, which the device runs as indexed gathers (`embedding`)
/// reading their int64 ids from a program input the host writes; one
/// whose table the gather's fields cannot hold runs on the host too.
fn host_op(g: &Graph, n: &Node) -> bool {
    match n.op {
        Op::Embedding(_) | Op::MaskSelect { .. } => !super::embedding::on_device(&n.op),
        // A view of ids that only device gathers read (an Unsqueeze of the
        // mask): no code, on the device.
        Op::Reshape { .. } | Op::Flatten { .. }
            if n.inputs.iter().chain(&n.outputs).all(|&v| g.values[v].ty == ElemType::I64) =>
        {
            g.nodes.iter().filter(|m| m.inputs.contains(&n.outputs[0])).any(|m| host_op(g, m))
        }
        _ => n.inputs.iter().chain(&n.outputs).any(|&v| g.values[v].ty == ElemType::I64),
    }
}

/// Where each node of `g` runs, the one place that decides it. A host
/// node must depend on graph inputs and host nodes only.
pub fn sites(g: &Graph) -> Result<Vec<Site>, LowerError> {
    let mut on_host = vec![false; g.values.len()];
    for &i in &g.inputs {
        on_host[i] = true;
    }
    let mut out = Vec::with_capacity(g.nodes.len());
    for n in &g.nodes {
        let site = if matches!(n.op, Op::Constant { .. }) {
            Site::Const
        } else if host_op(g, n) {
            if let Some(&d) = n.inputs.iter().find(|&&i| !on_host[i]) {
                return Err(unsupported(
                    &n.name,
                    n.op.name(),
                    format!(
                        "runs on the host as input preprocessing, but its input `{}` is computed on the device",
                        g.values[d].name
                    ),
                ));
            }
            n.outputs.iter().for_each(|&o| on_host[o] = true);
            Site::Host
        } else {
            Site::Device
        };
        out.push(site);
    }
    Ok(out)
}

/// The nodes that run on the host (indices into `g.nodes`).
pub fn host_nodes(g: &Graph) -> Result<Vec<usize>, LowerError> {
    Ok(sites(g)?.iter().enumerate().filter(|(_, s)| **s == Site::Host).map(|(i, _)| i).collect())
}

/// Whether `g` takes the transformer path of the lowering.
pub fn is_transformer(g: &Graph) -> bool {
    g.nodes.iter().any(|n| n.op.is_transformer_op()) || g.inputs.iter().any(|&i| g.values[i].ty == ElemType::I64)
}

struct XCtx<'a> {
    g: &'a Graph,
    cfg: &'a HwConfig,
    dim: usize,
    dataflow: Dataflow,
    mem: MemoryPlan,
    code: Code,
    places: Vec<Option<Place>>,
    /// Float data of constants (for immediates).
    consts: Vec<Option<Vec<f32>>>,
    /// Host values the device reads: the program's inputs.
    host_inputs: Vec<ValueId>,
    on_host: Vec<bool>,
    /// The nodes reading each value (a node once per input it reads it as).
    readers: Vec<Vec<usize>>,
    /// The weight formats Linear layers may use (`--weights`).
    weights: WeightChoice,
}

fn esize(ty: ElemType) -> usize {
    match ty {
        ElemType::F32 => 4,
        ElemType::I64 => 8,
        _ => 1,
    }
}

fn f32_bytes(xs: &[f32]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect()
}

fn i32_bytes(xs: &[i32]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Per-column values as rows of `dim` (zero padded), one per n-tile.
fn tile_rows<T: Copy + Default>(v: &[T], dim: usize) -> Vec<T> {
    let mut out = vec![T::default(); v.len().div_ceil(dim) * dim];
    out[..v.len()].copy_from_slice(v);
    out
}

impl XCtx<'_> {
    /// The value's place; a host value the device reads becomes a program
    /// input.
    fn place(&mut self, v: ValueId, node: &str) -> Result<Place, LowerError> {
        if let Some(p) = &self.places[v] {
            return Ok(p.clone());
        }
        if !self.on_host[v] {
            let name = &self.g.values[v].name;
            return Err(unsupported(node, "input", format!("value `{name}` has no device buffer")));
        }
        // An int64 host value (token ids, a mask) is a program input only
        // the gathers read (the host writes it 8 bytes an element).
        let p = self.alloc(v);
        self.host_inputs.push(v);
        Ok(p)
    }

    /// A contiguous buffer for `v`.
    fn alloc(&mut self, v: ValueId) -> Place {
        let val = &self.g.values[v];
        let e = esize(val.ty);
        let addr = self.mem.alloc(val.elements() * e, 0);
        let p = Place::contiguous(addr, &val.shape, e);
        let cols = val.shape.last().copied().unwrap_or(1);
        let rows = val.elements() / cols.max(1);
        self.mem.set_buffer(v, Buffer { addr, layout: Layout::Flat { rows, cols, perm: None } });
        self.places[v] = Some(p.clone());
        p
    }

    /// A buffer of `base_shape` for `v`, whose place is that buffer's view
    /// in the dimension order `order` (`place::Place::unpermuted`). Its
    /// layer record is a view (its buffer is not in the value's order).
    fn alloc_view(&mut self, v: ValueId, base_shape: &[usize], order: &[usize]) -> Place {
        let val = &self.g.values[v];
        let e = esize(val.ty);
        let addr = self.mem.alloc(val.elements() * e, 0);
        let base = Place::contiguous(addr, base_shape, e);
        let mut inverse = vec![0; order.len()];
        order.iter().enumerate().for_each(|(i, &d)| inverse[d] = i);
        let p = base.transposed(&inverse);
        let cols = val.shape.last().copied().unwrap_or(1);
        let perm = Some((0..cols).collect());
        self.mem.set_buffer(v, Buffer { addr, layout: Layout::Flat { rows: val.elements() / cols, cols, perm } });
        self.places[v] = Some(p);
        base
    }

    /// The value as one matrix, copied into a contiguous buffer first when
    /// its view does not fold into one (`node` names the error).
    fn matrix(&mut self, v: ValueId, node: &str) -> Result<Mat, LowerError> {
        let p = self.place(v, node)?;
        if let Some(m) = p.matrix().filter(Mat::rows_contiguous) {
            return Ok(m);
        }
        let q = self.copy(v, &p, node)?;
        Ok(q.matrix().expect("contiguous"))
    }

    /// Materializes a strided view of `v` into a contiguous buffer (a copy
    /// phase through the scratchpad, one matrix of the view at a time).
    fn copy(&mut self, v: ValueId, src: &Place, node: &str) -> Result<Place, LowerError> {
        let e = src.esize;
        let addr = self.mem.alloc(src.elements() * e, 0);
        let dst = Place::contiguous(addr, &src.shape, e);
        let mats: Vec<(Mat, Mat)> = if src.shape.len() >= 2 {
            src.batch().into_iter().zip(dst.batch()).collect()
        } else {
            vec![(src.matrix().expect("rank 1"), dst.matrix().expect("rank 1"))]
        };
        if mats.iter().any(|(m, _)| !m.rows_contiguous()) {
            return Err(unsupported(node, "copy", "a view whose last axis is strided is not copied"));
        }
        let (buf, width) = if e == 4 { (ins::BUF_ACC, self.dim) } else { (ins::BUF_SPAD, self.dim) };
        let cap = if e == 4 { self.cfg.acc_rows() } else { self.cfg.spad_rows() } as usize / 2;
        let mut st = Vec::new();
        for (s, d) in mats {
            let nb = s.cols.div_ceil(width);
            let r = (cap / nb.max(1)).clamp(1, 65535);
            for r0 in (0..s.rows).step_by(r) {
                let rr = r.min(s.rows - r0);
                let at = ((st.len() % 2) * cap) as u16;
                let load = Instr::from(ins::Load {
                    buf,
                    dram: s.at(r0, 0) as u32,
                    stride: s.row_bytes() as u32,
                    rows: rr as u16,
                    cols: s.cols as u16,
                    addr: at,
                    ..Default::default()
                });
                let store = Instr::from(ins::Store {
                    buf,
                    dram: d.at(r0, 0) as u32,
                    stride: d.row_bytes() as u32,
                    rows: rr as u16,
                    cols: s.cols as u16,
                    addr: at,
                    ..Default::default()
                });
                st.push((vec![load], vec![store]));
            }
        }
        self.code.phase(steps::chain_moves(st));
        // Later readers take the copy.
        self.places[v] = Some(dst.clone());
        let val = &self.g.values[v];
        let cols = val.shape.last().copied().unwrap_or(1);
        self.mem.set_buffer(v, Buffer { addr, layout: Layout::Flat { rows: val.elements() / cols, cols, perm: None } });
        Ok(dst)
    }

    /// The address and count of int64 ids `v` (a program input), which a
    /// gather reads contiguously.
    fn ids(&mut self, v: ValueId, node: &str) -> Result<(u64, usize), LowerError> {
        let p = self.place(v, node)?;
        if self.g.values[v].ty != ElemType::I64 || !p.is_contiguous() {
            let why = format!("ids `{}` are not contiguous int64 in device memory", self.g.values[v].name);
            return Err(unsupported(node, "gather", why));
        }
        Ok((p.addr, p.elements()))
    }

    fn constant_f32(&mut self, data: &[f32]) -> u64 {
        self.mem.alloc_bytes(&f32_bytes(data))
    }

    /// A Linear layer's B `[k, n]` packed for the array: 2:4-sparse when
    /// `--weights` and the configuration allow it and B is exactly 2:4,
    /// dense int8 otherwise.
    fn pack(&self, b: &[i8], k: usize, n: usize) -> PackedWeights {
        self.dataflow.pack_stationary(b, k, n, self.cfg, self.weights)
    }
}

/// Lowers a transformer graph for `cfg`.
pub fn lower(g: &Graph, cfg: &HwConfig) -> Result<Lowered, LowerError> {
    lower_with(g, cfg, WeightChoice::Auto)
}

/// [`lower`] with the weight formats `weights` allows (`--weights`).
pub fn lower_with(g: &Graph, cfg: &HwConfig, weights: WeightChoice) -> Result<Lowered, LowerError> {
    g.validate().map_err(|e| unsupported(&e.node, e.op, e.why))?;
    let sites = sites(g)?;
    let mut on_host = vec![false; g.values.len()];
    for &i in &g.inputs {
        on_host[i] = true;
    }
    for (n, s) in g.nodes.iter().zip(&sites) {
        if *s == Site::Host {
            n.outputs.iter().for_each(|&o| on_host[o] = true);
        }
    }
    let mut readers = vec![Vec::new(); g.values.len()];
    for (i, n) in g.nodes.iter().enumerate() {
        n.inputs.iter().for_each(|&v| readers[v].push(i));
    }
    let mut cx = XCtx {
        g,
        cfg,
        dim: cfg.array.cols as usize,
        dataflow: Dataflow::for_config(cfg)?,
        mem: MemoryPlan::new(g.values.len()),
        code: Code::for_config(cfg),
        places: vec![None; g.values.len()],
        consts: vec![None; g.values.len()],
        host_inputs: Vec::new(),
        on_host,
        readers,
        weights,
    };
    let mut layers = Vec::new();
    let mut packed = vec![None; g.nodes.len()];
    // Nodes lowered as part of an earlier node's fused chain.
    let mut fused = vec![false; g.nodes.len()];
    // Constants first: a fused chain reads them wherever they are defined.
    for (node, site) in g.nodes.iter().zip(&sites) {
        if *site == Site::Const {
            let Op::Constant { data, .. } = &node.op else { unreachable!("a constant site") };
            let y = node.outputs[0];
            let addr = cx.constant_f32(data);
            cx.places[y] = Some(Place::contiguous(addr, &g.values[y].shape, 4));
            cx.consts[y] = Some(data.clone());
        }
    }
    for (index, (node, site)) in g.nodes.iter().zip(&sites).enumerate() {
        match site {
            Site::Host => continue,
            Site::Const => continue,
            Site::Device => {}
        }
        if fused[index] {
            continue;
        }
        if let Some(view) = view_of(&mut cx, node)? {
            cx.places[node.outputs[0]] = Some(view);
            continue;
        }
        let first = cx.code.next_index();
        let (op, macs, y) = match lower_chain(&mut cx, index, &sites, &mut fused, &mut packed[index])? {
            Some(done) => done,
            None => {
                let (op, macs) = lower_node(&mut cx, node, &mut packed[index])?;
                (op, macs, node.outputs[0])
            }
        };
        let val = &g.values[y];
        let b = cx.mem.buffer(y).expect("the node wrote its output").clone();
        let q = val.quant;
        layers.push(LayerInfo {
            name: node.name.clone(),
            op,
            first,
            last: cx.code.next_index(),
            macs,
            value: val.name.clone(),
            addr: b.addr,
            layout: b.layout,
            shape: val.shape.iter().map(|&d| d as u64).collect(),
            dtype: package::dtype_of(val.ty),
            scale: q.map_or(1.0, |q| q.scale),
            zero_point: q.map_or(0, |q| q.zero_point),
        });
    }
    let mut tensors = Vec::new();
    for &v in &cx.host_inputs {
        tensors.push((v, TensorRole::Input, g.values[v].name.clone()));
    }
    for &o in &g.outputs {
        if cx.mem.buffer(o).is_none() {
            return Err(unsupported(
                "(graph)",
                "output",
                format!("output `{}` is not computed on the device", g.values[o].name),
            ));
        }
        tensors.push((o, TensorRole::Output, g.values[o].name.clone()));
    }
    package::package_tensors((g, cfg), cx.code, cx.mem, layers, &packed, &tensors)
}

/// A node that is a view of its input's buffer: its place, no code.
fn view_of(cx: &mut XCtx<'_>, node: &Node) -> Result<Option<Place>, LowerError> {
    let (x, y) = (node.inputs[0], node.outputs[0]);
    let shape = &cx.g.values[y].shape;
    Ok(match &node.op {
        Op::Reshape { .. } | Op::Flatten { .. } => {
            let p = cx.place(x, &node.name)?;
            match p.reshaped(shape) {
                Some(v) => Some(v),
                // A non-contiguous view: copy, then reshape the copy.
                None => Some(cx.copy(x, &p, &node.name)?.reshaped(shape).expect("contiguous")),
            }
        }
        Op::Transpose { perm } => Some(cx.place(x, &node.name)?.transposed(perm)),
        Op::Slice { axis, start, end } => Some(cx.place(x, &node.name)?.sliced(*axis, *start, *end)),
        _ => None,
    })
}

fn vop_of(op: BinaryOp) -> u8 {
    match op {
        BinaryOp::Add => ins::VOP_ADD,
        BinaryOp::Sub => ins::VOP_SUB,
        BinaryOp::Mul => ins::VOP_MUL,
        BinaryOp::Div => ins::VOP_DIV,
        BinaryOp::Max => ins::VOP_MAX,
    }
}

/// Lowers one device node; returns its layer op and MACs.
fn lower_node(cx: &mut XCtx<'_>, node: &Node, packed: &mut Option<PackedRef>) -> Result<(LayerOp, u64), LowerError> {
    let name = node.name.as_str();
    let (x, y) = (node.inputs[0], node.outputs[0]);
    let g = cx.g;
    match &node.op {
        Op::Dense(d) => {
            let a = cx.matrix(x, name)?;
            let ym = cx.alloc(y).matrix().expect("contiguous");
            let (qx, qy) = (g.values[x].quant.expect("validated"), g.values[y].quant.expect("validated"));
            let b = super::gemm_layers::dense_b(&d.weights, d.k, d.n, None);
            let sums = column_sums(&b, d.k, d.n);
            let folded: Vec<i32> =
                (0..d.n).map(|c| numerics::fold_zero_point(d.bias[c], qx.zero_point, sums[c])).collect();
            let scale: Vec<f32> = (0..d.n).map(|c| numerics::requant_scale(qx.scale, d.w_scale[c], qy.scale)).collect();
            let weights = cx.pack(&b, d.k, d.n);
            let weights_addr = cx.mem.alloc_bytes(weights.bytes());
            let params_addr = cx.mem.alloc_bytes(&gemm::pack_params(&folded, &scale, cx.dim));
            let job = GemmJob {
                m: a.rows,
                a: ASource::Matrix { addr: a.addr, stride: a.row_bytes() },
                a_unsigned: g.values[x].ty == ElemType::U8,
                weights: &weights,
                weights_addr,
                out: GemmOut::Int8 {
                    params_addr,
                    zero_point: qy.zero_point,
                    qmin: d.qmin,
                    qmax: d.qmax,
                    unsigned: g.values[y].ty == ElemType::U8,
                },
                c: OutRows::dense(ym.addr, ym.row_bytes()),
            };
            let instrs = cx.dataflow.emit(&job, cx.cfg)?;
            cx.code.phase(instrs);
            *packed = Some(packed_ref(cx, &weights, weights_addr));
            Ok((LayerOp::Dense, weights.macs(a.rows)))
        }
        Op::DenseF32(d) => {
            let a = cx.matrix(x, name)?;
            let ym = cx.alloc(y).matrix().expect("contiguous");
            let qx = g.values[x].quant.expect("validated");
            let b = super::gemm_layers::dense_b(&d.weights, d.k, d.n, None);
            let sums = column_sums(&b, d.k, d.n);
            let folded: Vec<i32> =
                (0..d.n).map(|c| numerics::fold_zero_point(d.bias[c], qx.zero_point, sums[c])).collect();
            let scales: Vec<f32> = d.w_scale.iter().map(|&s| v::mul(qx.scale, s)).collect();
            let weights = cx.pack(&b, d.k, d.n);
            let addr = cx.mem.alloc_bytes(weights.bytes());
            let init = cx.mem.alloc_bytes(&i32_bytes(&tile_rows(&folded, cx.dim)));
            let scale_rows = cx.mem.alloc_bytes(&f32_bytes(&tile_rows(&scales, cx.dim)));
            let product = linear::Product {
                a,
                a_unsigned: g.values[x].ty == ElemType::U8,
                b: linear::BSource::Packed { w: &weights, addr },
                k: d.k,
                n: d.n,
                init,
                post: linear::Post::F32PerColumn(scale_rows),
                y: ym,
            };
            let (code, macs) = linear::emit(&[product], &linear::Cross::default(), cx.cfg, name)?;
            cx.code.phase(code);
            *packed = Some(packed_ref(cx, &weights, addr));
            Ok((LayerOp::DenseF32, macs))
        }
        Op::MatMul => lower_matmul(cx, node),
        Op::Quantize
        | Op::Dequantize
        | Op::Unary(_)
        | Op::Gelu(_)
        | Op::Softmax
        | Op::LayerNorm { .. }
        | Op::Binary(_) => {
            unreachable!("vector ops are lowered as chains (lower_chain)")
        }
        Op::ReduceSum { axis, .. } => lower_reduce_sum(cx, node, *axis),
        Op::Embedding(e) => {
            let ids = cx.ids(x, name)?;
            let out = cx.alloc(y).addr;
            let code = super::embedding::embedding_code(&mut cx.mem, e, ids, out, cx.cfg, name)?;
            cx.code.phase(code);
            Ok((LayerOp::Gather, 0))
        }
        Op::MaskSelect { index, if_zero, if_nonzero, .. } => {
            let (mask, _) = cx.ids(x, name)?;
            let out = cx.alloc(y).addr;
            let selects = (&index[..], &if_zero[..], &if_nonzero[..]);
            for phase in super::embedding::mask_select_phases(&mut cx.mem, selects, mask, out, cx.cfg, name)? {
                cx.code.phase(phase);
            }
            Ok((LayerOp::Gather, 0))
        }
        other => Err(unsupported(name, other.name(), "not lowered to the accelerator yet")),
    }
}

/// The node reading `v`, when exactly one node reads it once and it is
/// not a graph output: only then can `v` stay on chip.
fn sole_reader(cx: &XCtx<'_>, v: ValueId) -> Option<usize> {
    match cx.readers[v].as_slice() {
        [only] if !cx.g.outputs.contains(&v) => Some(*only),
        _ => None,
    }
}

/// A vector node as a stage: the operand it transforms (a), its stage
/// and layer op; None when it is not a vector node, or when its other
/// operand is not `placed` yet.
fn stage_of(
    cx: &mut XCtx<'_>,
    node: &Node,
    placed: &dyn Fn(&XCtx<'_>, ValueId) -> bool,
) -> Result<Option<(ValueId, Kind, LayerOp)>, LowerError> {
    let g = cx.g;
    let (x, y) = (node.inputs[0], node.outputs[0]);
    Ok(Some(match &node.op {
        Op::Quantize => {
            let q = g.values[y].quant.expect("validated");
            let unsigned = g.values[y].ty == ElemType::U8;
            (x, Kind::Quantize { scale: q.scale, zp: q.zero_point, unsigned }, LayerOp::Quantize)
        }
        Op::Dequantize => {
            let q = g.values[x].quant.expect("validated");
            let unsigned = g.values[x].ty == ElemType::U8;
            (x, Kind::Dequantize { scale: q.scale, zp: q.zero_point, unsigned }, LayerOp::Dequantize)
        }
        Op::Unary(u) => {
            let op = match u {
                UnaryOp::Erf => ins::VOP_ERF,
                UnaryOp::Tanh => ins::VOP_TANH,
            };
            (x, Kind::Unary(op), LayerOp::Elementwise)
        }
        Op::Gelu(GeluForm::Erf) => (x, Kind::GeluErf, LayerOp::Gelu),
        Op::Gelu(GeluForm::Tanh) => (x, Kind::GeluTanh, LayerOp::Gelu),
        Op::Softmax => (x, Kind::Softmax, LayerOp::Softmax),
        Op::LayerNorm { gamma, beta, eps } => {
            let (gamma, beta) = (cx.constant_f32(gamma), cx.constant_f32(beta));
            (x, Kind::LayerNorm { gamma, beta, eps: *eps }, LayerOp::LayerNorm)
        }
        Op::Binary(op) => match binary_stage(cx, node, *op, placed)? {
            Some((a, kind)) => (a, kind, LayerOp::Elementwise),
            None => return Ok(None),
        },
        _ => return Ok(None),
    }))
}

/// A buffer's base shape and the order of a view's dimensions in it.
type BaseOrder = (Vec<usize>, Vec<usize>);

/// View nodes, the Quantize after them, and its buffer's base shape and
/// order (`views_to_quantize`).
type ViewsToQuantize = (Vec<usize>, usize, Vec<usize>, Vec<usize>);

/// From `v` read by view node `c`: views (Reshape, Transpose) down to a
/// Quantize that reads a permutation of `v`'s buffer. Returns the view
/// nodes, the Quantize, and the base shape and order of its output's
/// buffer (`XCtx::alloc_view`), which then holds `v`'s order.
fn views_to_quantize(cx: &XCtx<'_>, sites: &[Site], v: ValueId, mut c: usize) -> Option<ViewsToQuantize> {
    let g = cx.g;
    let mut p = Place::contiguous(0, &g.values[v].shape, 4);
    let mut views = Vec::new();
    loop {
        if sites[c] != Site::Device {
            return None;
        }
        let n = &g.nodes[c];
        match &n.op {
            Op::Reshape { .. } | Op::Flatten { .. } => p = p.reshaped(&g.values[n.outputs[0]].shape)?,
            Op::Transpose { perm } => p = p.transposed(perm),
            Op::Quantize if !views.is_empty() => {
                let (base, order) = p.unpermuted()?;
                return Some((views, c, base.shape, order));
            }
            _ => return None,
        }
        views.push(c);
        c = sole_reader(cx, n.outputs[0])?;
    }
}

/// A vector node and the vector nodes after it that only it feeds, as
/// one phase (`vector_ops::Job` stages): their intermediate values never
/// leave the chip. A chain ends at a value read twice or by the graph, at
/// a binary op whose other operand is not computed yet, and after a
/// Quantize (reached through views when it reads a permutation of the
/// chain's value). Returns the layer op and the value written; None when
/// `index` is not a vector node.
fn lower_chain(
    cx: &mut XCtx<'_>,
    index: usize,
    sites: &[Site],
    fused: &mut [bool],
    packed: &mut Option<PackedRef>,
) -> Result<Option<(LayerOp, u64, ValueId)>, LowerError> {
    let g = cx.g;
    let node = &g.nodes[index];
    let name = node.name.as_str();
    let mut covered = Vec::new();
    // A requantized Linear layer read only by a Dequantize heads a chain
    // run as its GEMM's epilogue.
    let dense_head = match &node.op {
        Op::Dense(_) => match sole_reader(cx, node.outputs[0]) {
            Some(dq) if sites[dq] == Site::Device && matches!(g.nodes[dq].op, Op::Dequantize) => Some(dq),
            _ => return Ok(None),
        },
        _ => None,
    };
    // A float activation × activation MatMul (attention scores) read only
    // by a vector node heads a chain run on its rows in the accumulator
    // (`attention::emit`): the scores never leave the chip.
    // An int8-out one read only by its Dequantize too (requantized on
    // chip, dequantized back).
    let matmul_head = match &node.op {
        Op::MatMul => match (sole_reader(cx, node.outputs[0]), g.values[node.outputs[0]].quant) {
            (Some(c), q) if sites[c] == Site::Device && matches!(g.nodes[c].op, Op::Dequantize) == q.is_some() => {
                Some(c)
            }
            _ => return Ok(None),
        },
        _ => None,
    };
    // A float Linear layer heads a chain of the vector nodes after it, or
    // is one alone (`lower_dense_f32_chain`).
    let f32_head = matches!(node.op, Op::DenseF32(_));
    let placed = |cx: &XCtx<'_>, v: ValueId| cx.places[v].is_some() || cx.on_host[v];
    let head = match (dense_head, matmul_head) {
        (Some(dq), _) => &g.nodes[dq],
        (_, Some(c)) => &g.nodes[c],
        _ => node,
    };
    // A fused head's other operand may come later in the graph.
    let head_placed: &dyn Fn(&XCtx<'_>, ValueId) -> bool = if matmul_head.is_some() { &placed } else { &|_, _| true };
    let (x, mut kinds, mut ops) = if f32_head {
        (node.inputs[0], Vec::new(), Vec::new())
    } else {
        let Some((x, kind, op)) = stage_of(cx, head, head_placed)? else { return Ok(None) };
        if matmul_head.is_some() && x != node.outputs[0] {
            return Ok(None);
        }
        (x, vec![kind], vec![op])
    };
    covered.extend(dense_head);
    covered.extend(matmul_head);
    let mut y = head.outputs[0];
    let mut view_out = None;
    while !matches!(kinds.last(), Some(Kind::Quantize { .. })) {
        let Some(c) = sole_reader(cx, y) else { break };
        let cn = &g.nodes[c];
        if sites[c] != Site::Device || matches!(cn.op, Op::Dequantize) {
            break;
        }
        let keeps_rows = |v: ValueId| g.values[v].shape.last() == g.values[y].shape.last();
        if matches!(cn.op, Op::Reshape { .. } | Op::Flatten { .. }) && keeps_rows(cn.outputs[0]) {
            // The same matrix (a Gemm's `[rows, n]` as `[1, rows, n]`):
            // the chain goes on through it.
            covered.push(c);
            y = cn.outputs[0];
            continue;
        }
        if matches!(cn.op, Op::Reshape { .. } | Op::Flatten { .. } | Op::Transpose { .. }) {
            if let Some((views, q, base, order)) = views_to_quantize(cx, sites, y, c) {
                let (_, kind, op) = stage_of(cx, &g.nodes[q], &placed)?.expect("a quantize");
                kinds.push(kind);
                ops.push(op);
                covered.extend(views);
                covered.push(q);
                y = g.nodes[q].outputs[0];
                view_out = Some((base, order));
            }
            break;
        }
        let row_wise = matches!(cn.op, Op::LayerNorm { .. } | Op::Softmax);
        if (dense_head.is_some() || f32_head) && row_wise {
            break;
        }
        match stage_of(cx, cn, &placed)? {
            Some((_, Kind::Binary(_, Operand::RowScalar(_)), _)) if dense_head.is_some() || f32_head => break,
            Some((a, kind, op)) if a == y => {
                kinds.push(kind);
                ops.push(op);
                covered.push(c);
                y = cn.outputs[0];
            }
            _ => break,
        }
    }
    if f32_head {
        return lower_dense_f32_chain(cx, node, kinds, (y, view_out), covered, fused, packed);
    }
    if dense_head.is_some() {
        return lower_dense_chain(cx, node, kinds, (y, view_out), covered, fused, packed);
    }
    if matmul_head.is_some() {
        return lower_scores_chain(cx, node, kinds, (y, view_out), (covered, sites), fused);
    }
    let elementwise = kinds.iter().all(|k| match k {
        Kind::LayerNorm { .. } | Kind::Softmax => false,
        Kind::Binary(_, b) => matches!(b, Operand::Imm(_)),
        _ => true,
    });
    let xp = cx.place(x, name)?;
    let job = match view_out {
        None if elementwise && xp.matrix().filter(Mat::rows_contiguous).is_none() && xp.unpermuted().is_some() => {
            // Element by element on the buffer's own order: the output
            // is the same view of a buffer of its own (no copy).
            let (base, order) = xp.unpermuted().expect("checked");
            let yb = cx.alloc_view(y, &base.shape, &order);
            vector_ops::Job { x: base.matrix().expect("contiguous"), y: yb.matrix().expect("contiguous"), kinds }
        }
        None => {
            let xm = cx.matrix(x, name)?;
            let ym = cx.alloc(y).matrix().expect("contiguous");
            vector_ops::Job { x: xm, y: ym, kinds }
        }
        Some((base, order)) => {
            // The quantized value is a view of a buffer in the chain's order.
            let xm = cx.matrix(x, name)?;
            let yb = cx.alloc_view(y, &base, &order);
            let ym = Mat { addr: yb.addr, rows: xm.rows, cols: xm.cols, row_stride: xm.cols, col_stride: 1, esize: 1 };
            vector_ops::Job { x: xm, y: ym, kinds }
        }
    };
    let code = vector_ops::emit(&job, cx.cfg, name)?;
    cx.code.phase(code);
    for c in covered {
        fused[c] = true;
    }
    let op =
        [LayerOp::LayerNorm, LayerOp::Softmax, LayerOp::Gelu].into_iter().find(|o| ops.contains(o)).unwrap_or(ops[0]);
    Ok(Some((op, 0, y)))
}

/// A Dense node and its chain (`lower_chain`) as one GEMM with the
/// stages in its epilogue (`linear::emit_dense_chain`); the layer record
/// is the Dense's (its MACs, packed weights), writing the chain's value.
fn lower_dense_chain(
    cx: &mut XCtx<'_>,
    node: &Node,
    kinds: Vec<Kind>,
    (y, view_out): (ValueId, Option<BaseOrder>),
    covered: Vec<usize>,
    fused: &mut [bool],
    packed: &mut Option<PackedRef>,
) -> Result<Option<(LayerOp, u64, ValueId)>, LowerError> {
    let g = cx.g;
    let name = node.name.as_str();
    let Op::Dense(d) = &node.op else { unreachable!("a dense head") };
    let x = node.inputs[0];
    let a = cx.matrix(x, name)?;
    let (qx, qy) = (g.values[x].quant.expect("validated"), g.values[node.outputs[0]].quant.expect("validated"));
    let b = super::gemm_layers::dense_b(&d.weights, d.k, d.n, None);
    let sums = column_sums(&b, d.k, d.n);
    let folded: Vec<i32> = (0..d.n).map(|c| numerics::fold_zero_point(d.bias[c], qx.zero_point, sums[c])).collect();
    let scale: Vec<f32> = (0..d.n).map(|c| numerics::requant_scale(qx.scale, d.w_scale[c], qy.scale)).collect();
    let weights = cx.pack(&b, d.k, d.n);
    let w_addr = cx.mem.alloc_bytes(weights.bytes());
    let params = cx.mem.alloc_bytes(&gemm::pack_params(&folded, &scale, cx.dim));
    let ym = match view_out {
        None => cx.alloc(y).matrix().expect("contiguous"),
        Some((base, order)) => {
            let yb = cx.alloc_view(y, &base, &order);
            Mat { addr: yb.addr, rows: a.rows, cols: d.n, row_stride: d.n, col_stride: 1, esize: 1 }
        }
    };
    let job = linear::DenseChain {
        a,
        a_unsigned: g.values[x].ty == ElemType::U8,
        w: &weights,
        w_addr,
        params,
        zp: qy.zero_point,
        qmin: d.qmin,
        qmax: d.qmax,
        unsigned: g.values[node.outputs[0]].ty == ElemType::U8,
        kinds,
        y: ym,
    };
    // A layer too large for this schedule is lowered node by node.
    let Some(macs) = finish_phase(cx, linear::emit_dense_chain(&job, cx.cfg), y, &covered, fused) else {
        return Ok(None);
    };
    *packed = Some(packed_ref(cx, &weights, w_addr));
    Ok(Some((LayerOp::Dense, macs, y)))
}

/// A float activation × activation MatMul and its chain (`lower_chain`)
/// as one phase with the scores on chip (`attention::emit`); the layer
/// record is the MatMul's (its MACs), writing the chain's value. None
/// when the chain or the shapes do not fit that schedule (the caller
/// lowers the nodes one by one).
fn lower_scores_chain(
    cx: &mut XCtx<'_>,
    node: &Node,
    kinds: Vec<Kind>,
    (y, view_out): (ValueId, Option<BaseOrder>),
    (mut covered, sites): (Vec<usize>, &[Site]),
    fused: &mut [bool],
) -> Result<Option<(LayerOp, u64, ValueId)>, LowerError> {
    let g = cx.g;
    let name = node.name.as_str();
    let (a, b) = (node.inputs[0], node.inputs[1]);
    if view_out.is_some() || g.values[b].ty == ElemType::U8 {
        return Ok(None);
    }
    let (qa, qb) = (g.values[a].quant.expect("validated"), g.values[b].quant.expect("validated"));
    let ap = cx.place(a, name)?;
    let ap = if ap.batch().iter().all(Mat::rows_contiguous) { ap } else { cx.copy(a, &ap, name)? };
    let bp = cx.place(b, name)?;
    let heads: Vec<(Mat, Mat)> = ap.batch().into_iter().zip(bp.batch()).collect();
    let dim = cx.dim;
    let tk = (cx.cfg.array.rows.min(cx.cfg.array.cols)) as usize;
    let za_rows = linear::int8_parts(-qa.zero_point).iter().map(|&p| cx.mem.alloc_bytes(&vec![p as u8; dim])).collect();
    let zb_tiles =
        linear::int8_parts(-qb.zero_point).iter().map(|&p| cx.mem.alloc_bytes(&vec![p as u8; tk * dim])).collect();
    let cross = linear::Cross { za_rows, zb_tiles };
    let flat = |p: &Place, v: ValueId| {
        let n = g.values[v].shape.last().copied().unwrap_or(1).max(1);
        Mat { addr: p.addr, rows: g.values[v].elements() / n, cols: n, row_stride: n, col_stride: 1, esize: p.esize }
    };
    let mut job = super::attention::ScoresChain {
        heads,
        a_unsigned: g.values[a].ty == ElemType::U8,
        cross: &cross,
        scale: v::mul(qa.scale, qb.scale),
        kinds,
        y: Mat { addr: 0, rows: 0, cols: 0, row_stride: 0, col_stride: 1, esize: 1 },
        context: None,
        requant: None,
        fold: None,
    };
    let mm_out = node.outputs[0];
    let k = g.values[a].shape.last().copied().unwrap_or(1);
    let a_range = g.values[a].ty.range().expect("a quantized operand");
    let int_out = g.values[mm_out].quant.is_some();
    job.fold = super::attention::scores_fold(k, a_range, qa.zero_point, qb.zero_point, int_out);
    if let Some(qy) = g.values[mm_out].quant {
        let n = g.values[b].shape.last().copied().unwrap_or(1);
        let s = numerics::requant_scale(qa.scale, qb.scale, qy.scale);
        // With the fold the accumulator holds `acc + zp`: the bias takes it off.
        let bias = job.fold.map_or(0, |f| -f.zp);
        let params = cx.mem.alloc_bytes(&gemm::pack_params(&vec![bias; n], &vec![s; n], cx.dim));
        job.requant = Some((params, qy.zero_point, g.values[mm_out].ty == ElemType::U8));
    }
    // P·V on the chain's int8 probabilities, when only it reads them.
    if let Some((pv, context)) = context_of(cx, y, sites)? {
        let y2 = g.nodes[pv].outputs[0];
        job.y = flat(&cx.alloc(y2), y2);
        job.context = Some(super::attention::Context { y: job.y, ..context });
        covered.push(pv);
        if let Some(macs) = finish_phase(cx, super::attention::emit(&job, cx.cfg), y2, &covered, fused) {
            return Ok(Some((LayerOp::Attention, macs, y2)));
        }
        covered.pop();
        job.context = None;
    }
    job.y = flat(&cx.alloc(y), y);
    let done = finish_phase(cx, super::attention::emit(&job, cx.cfg), y, &covered, fused);
    Ok(done.map(|macs| (LayerOp::Attention, macs, y)))
}

/// The tail of a fused phase: when its schedule fits (`done`), the code
/// becomes the phase and the nodes it covers are marked fused (returns
/// its MACs); when not, `y` loses its buffer and the caller lowers the
/// nodes one by one.
fn finish_phase(
    cx: &mut XCtx<'_>,
    done: Option<(Vec<Instr>, u64)>,
    y: ValueId,
    covered: &[usize],
    fused: &mut [bool],
) -> Option<u64> {
    let Some((code, macs)) = done else {
        cx.places[y] = None;
        return None;
    };
    cx.code.phase(code);
    for &c in covered {
        fused[c] = true;
    }
    Some(macs)
}

/// A DenseF32 node and its chain (`lower_chain`: element-wise stages,
/// `Quantize` last at most; none when it stands alone) as one GEMM with
/// the float conversion and the stages in its epilogue
/// (`linear::emit_fused`, `Head::Float`); the layer record is the
/// DenseF32's, writing the chain's value. A layer too large for that
/// schedule is lowered node by node.
fn lower_dense_f32_chain(
    cx: &mut XCtx<'_>,
    node: &Node,
    kinds: Vec<Kind>,
    (y, view_out): (ValueId, Option<BaseOrder>),
    covered: Vec<usize>,
    fused: &mut [bool],
    packed: &mut Option<PackedRef>,
) -> Result<Option<(LayerOp, u64, ValueId)>, LowerError> {
    let g = cx.g;
    let name = node.name.as_str();
    let Op::DenseF32(d) = &node.op else { unreachable!("a float dense head") };
    let x = node.inputs[0];
    let qx = g.values[x].quant.expect("validated");
    let b = super::gemm_layers::dense_b(&d.weights, d.k, d.n, None);
    let sums = column_sums(&b, d.k, d.n);
    let folded: Vec<i32> = (0..d.n).map(|c| numerics::fold_zero_point(d.bias[c], qx.zero_point, sums[c])).collect();
    let exact: Vec<i64> = (0..d.n).map(|c| d.bias[c] as i64 - qx.zero_point as i64 * sums[c] as i64).collect();
    let a = cx.matrix(x, name)?;
    let scales: Vec<f32> = d.w_scale.iter().map(|&s| v::mul(qx.scale, s)).collect();
    let weights = cx.pack(&b, d.k, d.n);
    let w_addr = cx.mem.alloc_bytes(weights.bytes());
    let params = cx.mem.alloc_bytes(&linear::float_params(&folded, &scales, cx.dim));
    let x_range = g.values[x].ty.range().expect("a quantized input");
    let bias = if exact.iter().all(|&f| f == 0) {
        linear::FloatBias::Zero
    } else if linear::float_fold_exact(&b, d.k, d.n, &exact, qx.zero_point, x_range) {
        linear::FloatBias::Folded
    } else {
        linear::FloatBias::Loaded(cx.mem.alloc_bytes(&i32_bytes(&tile_rows(&folded, cx.dim))))
    };
    let ym = match view_out {
        None => cx.alloc(y).matrix().expect("contiguous"),
        Some((base, order)) => {
            let yb = cx.alloc_view(y, &base, &order);
            Mat { addr: yb.addr, rows: a.rows, cols: d.n, row_stride: d.n, col_stride: 1, esize: 1 }
        }
    };
    let job = linear::FusedLinear {
        a,
        a_unsigned: g.values[x].ty == ElemType::U8,
        w: &weights,
        w_addr,
        head: linear::Head::Float { params, bias },
        kinds,
        y: ym,
    };
    let Some(macs) = finish_phase(cx, linear::emit_fused(&job, cx.cfg), y, &covered, fused) else {
        return Ok(None);
    };
    *packed = Some(packed_ref(cx, &weights, w_addr));
    Ok(Some((LayerOp::DenseF32, macs, y)))
}

/// The int8-out MatMul that alone reads the probabilities `p` as its
/// first operand (P·V), and its part of `attention::Context` (`y` still
/// to place).
fn context_of(
    cx: &mut XCtx<'_>,
    p: ValueId,
    sites: &[Site],
) -> Result<Option<(usize, super::attention::Context)>, LowerError> {
    let g = cx.g;
    let Some(pv) = sole_reader(cx, p) else { return Ok(None) };
    let node = &g.nodes[pv];
    let (vid, y) = (node.inputs.get(1).copied(), node.outputs[0]);
    let fits = sites[pv] == Site::Device
        && matches!(node.op, Op::MatMul)
        && node.inputs[0] == p
        && g.values[p].quant.is_some()
        && g.values[y].quant.is_some()
        && vid.is_some_and(|v| g.values[v].ty == ElemType::I8 && cx.places[v].is_some());
    let Some(vid) = vid.filter(|_| fits) else { return Ok(None) };
    let (qp, qv, qy) = (
        g.values[p].quant.expect("checked"),
        g.values[vid].quant.expect("validated"),
        g.values[y].quant.expect("checked"),
    );
    let vp = cx.place(vid, &node.name)?;
    let v: Vec<Mat> = vp.batch();
    if !v.iter().all(Mat::rows_contiguous) {
        return Ok(None);
    }
    let (dim, tk) = (cx.dim, (cx.cfg.array.rows.min(cx.cfg.array.cols)) as usize);
    let (keys, d) = (v[0].rows, v[0].cols);
    let za_rows = linear::int8_parts(-qp.zero_point).iter().map(|&x| cx.mem.alloc_bytes(&vec![x as u8; dim])).collect();
    let zb_tiles =
        linear::int8_parts(-qv.zero_point).iter().map(|&x| cx.mem.alloc_bytes(&vec![x as u8; tk * dim])).collect();
    let p_range = g.values[p].ty.range().expect("a quantized operand");
    let fold = super::attention::context_fold(keys, p_range, qv.zero_point);
    // The bias rows start at K·z_p·z_v, plus the fold's zero point (the
    // accumulator then starts at `R − zp`).
    let kzz = (keys as i32).wrapping_mul(qp.zero_point).wrapping_mul(qv.zero_point).wrapping_add(fold.unwrap_or(0));
    let s = numerics::requant_scale(qp.scale, qv.scale, qy.scale);
    let params = cx.mem.alloc_bytes(&gemm::pack_params(&vec![kzz; d], &vec![s; d], dim));
    let context = super::attention::Context {
        v,
        cross: linear::Cross { za_rows, zb_tiles },
        params,
        zp: qy.zero_point,
        unsigned: g.values[y].ty == ElemType::U8,
        p_unsigned: g.values[p].ty == ElemType::U8,
        fold,
        y: Mat { addr: 0, rows: 0, cols: 0, row_stride: 0, col_stride: 1, esize: 1 },
    };
    Ok(Some((pv, context)))
}

fn packed_ref(cx: &XCtx<'_>, w: &PackedWeights, at: u64) -> PackedRef {
    PackedRef { format: w.format(), tile_n: cx.dataflow.tile_shape().n, offsets: vec![at], perm: None }
}

fn column_sums(b: &[i8], k: usize, n: usize) -> Vec<i32> {
    let mut sums = vec![0i32; n];
    for row in b.chunks_exact(n.max(1)).take(k) {
        sums.iter_mut().zip(row).for_each(|(s, &v)| *s = s.wrapping_add(v as i32));
    }
    sums
}

/// A float binary op. Operand a has the output's shape; operand b is a
/// constant scalar (an immediate), rows broadcast over leading dimensions
/// (a bias row, one mask for every head, or the output's shape), or
/// per-row scalars broadcast along the last axis (a mask per token, a
/// divisor). A commutative op with the broadcast operand first swaps them.
/// Returns operand a and the stage; `placed` says whether operand b may
/// be placed now (a fused chain's b must already have its buffer).
fn binary_stage(
    cx: &mut XCtx<'_>,
    node: &Node,
    op: BinaryOp,
    placed: &dyn Fn(&XCtx<'_>, ValueId) -> bool,
) -> Result<Option<(ValueId, Kind)>, LowerError> {
    let name = node.name.as_str();
    let g = cx.g;
    let out = g.values[node.outputs[0]].shape.clone();
    let total: usize = out.iter().product();
    let (mut a, mut b) = (node.inputs[0], node.inputs[1]);
    let full = |v: ValueId| g.values[v].elements() == total;
    if !full(a) && full(b) {
        if !matches!(op, BinaryOp::Add | BinaryOp::Mul | BinaryOp::Max) {
            return Err(unsupported(name, op.name(), "the broadcast operand comes first in a non-commutative op"));
        }
        std::mem::swap(&mut a, &mut b);
    }
    if !full(a) {
        return Err(unsupported(name, op.name(), "neither operand has the output's shape"));
    }
    let len = out.last().copied().unwrap_or(1);
    let bv = &g.values[b];
    // b's shape without leading ones, right-aligned against the output's.
    let lead = bv.shape.iter().take_while(|&&d| d == 1).count();
    let core = &bv.shape[lead..];
    let ends_with = |tail: &[usize]| out.len() >= tail.len() && out[out.len() - tail.len()..] == *tail;
    let scalar = cx.consts[b].as_ref().filter(|d| d.iter().all(|x| x.to_bits() == d[0].to_bits())).map(|d| d[0]);
    if scalar.is_none() && !placed(cx, b) {
        return Ok(None);
    }
    let operand = match scalar {
        Some(s) if !full(b) || bv.elements() == 1 => Operand::Imm(s),
        _ if core.last() == Some(&len) && ends_with(core) => {
            let m = cx.matrix(b, name)?;
            if m.rows == 1 {
                Operand::Vector(m.addr)
            } else {
                Operand::Rows(m)
            }
        }
        _ if core.is_empty()
            || (core.last() == Some(&1) && out.len() > 1 && {
                let (lead_out, tail) = (&out[..out.len() - 1], &core[..core.len() - 1]);
                lead_out.len() >= tail.len() && lead_out[lead_out.len() - tail.len()..] == *tail
            }) =>
        {
            let p = cx.place(b, name)?;
            let p = if p.is_contiguous() { p } else { cx.copy(b, &p, name)? };
            let rows = p.elements();
            Operand::RowScalar(Mat { addr: p.addr, rows, cols: 1, row_stride: 1, col_stride: 1, esize: 4 })
        }
        _ => {
            return Err(unsupported(
                name,
                op.name(),
                format!(
                    "operand shapes {:?} and {:?}: b must be a constant scalar, rows broadcast over leading \
                     dimensions or per-row scalars",
                    g.values[a].shape, bv.shape
                ),
            ))
        }
    };
    Ok(Some((a, Kind::Binary(vop_of(op), operand))))
}

/// A float sum over one axis: over the last by `vred`, over a leading one
/// as row adds in lane order (`vector_ops::emit_column_sums`).
fn lower_reduce_sum(cx: &mut XCtx<'_>, node: &Node, axis: usize) -> Result<(LayerOp, u64), LowerError> {
    let name = node.name.as_str();
    let (x, y) = (node.inputs[0], node.outputs[0]);
    let p = cx.place(x, name)?;
    let p = if p.is_contiguous() { p } else { cx.copy(x, &p, name)? };
    let s = p.shape.clone();
    let (outer, len) = (s[..axis].iter().product::<usize>(), s[axis]);
    let inner: usize = s[axis + 1..].iter().product();
    let yp = cx.alloc(y);
    let mat = |addr: u64, rows: usize, cols: usize| Mat { addr, rows, cols, row_stride: cols, col_stride: 1, esize: 4 };
    let code = if inner == 1 {
        vector_ops::emit_row_sums(&mat(p.addr, outer, len), &mat(yp.addr, outer, 1), cx.cfg, name)?
    } else {
        let pairs: Vec<(Mat, Mat)> = (0..outer)
            .map(|o| {
                (
                    mat(p.addr + (o * len * inner * 4) as u64, len, inner),
                    mat(yp.addr + (o * inner * 4) as u64, 1, inner),
                )
            })
            .collect();
        vector_ops::emit_column_sums(&pairs, cx.cfg, name)?
    };
    cx.code.phase(code);
    Ok((LayerOp::ReduceSum, 0))
}

/// Activation × activation MatMul, one product per leading index (head).
fn lower_matmul(cx: &mut XCtx<'_>, node: &Node) -> Result<(LayerOp, u64), LowerError> {
    let name = node.name.as_str();
    let g = cx.g;
    let (a, b, y) = (node.inputs[0], node.inputs[1], node.outputs[0]);
    let (qa, qb) = (g.values[a].quant.expect("validated"), g.values[b].quant.expect("validated"));
    if g.values[b].ty == ElemType::U8 {
        return Err(unsupported(name, "matmul", "a uint8 second operand (the array's weights are int8)"));
    }
    let ap = cx.place(a, name)?;
    let ap = if ap.batch().iter().all(Mat::rows_contiguous) { ap } else { cx.copy(a, &ap, name)? };
    let bp = cx.place(b, name)?;
    let yp = cx.alloc(y);
    let shape = &g.values[a].shape;
    let (k, n) = (shape[shape.len() - 1], g.values[b].shape[shape.len() - 1]);
    let init_value = (k as i32).wrapping_mul(qa.zero_point).wrapping_mul(qb.zero_point);
    let init = cx.mem.alloc_bytes(&i32_bytes(&vec![init_value; n.div_ceil(cx.dim) * cx.dim]));
    let tk = (cx.cfg.array.rows.min(cx.cfg.array.cols)) as usize;
    let dim = cx.dim;
    let za_rows = linear::int8_parts(-qa.zero_point).iter().map(|&p| cx.mem.alloc_bytes(&vec![p as u8; dim])).collect();
    let zb_tiles =
        linear::int8_parts(-qb.zero_point).iter().map(|&p| cx.mem.alloc_bytes(&vec![p as u8; tk * dim])).collect();
    let cross = linear::Cross { za_rows, zb_tiles };
    let act = linear::ActQuant {
        za: qa.zero_point,
        zb: qb.zero_point,
        scale: match g.values[y].quant {
            None => v::mul(qa.scale, qb.scale),
            Some(qy) => numerics::requant_scale(qa.scale, qb.scale, qy.scale),
        },
        out: g.values[y].quant.map(|qy| (qy.zero_point, g.values[y].ty == ElemType::U8)),
    };
    let post = match g.values[y].quant {
        None => linear::Post::F32(v::mul(qa.scale, qb.scale)),
        Some(qy) => {
            let s = numerics::requant_scale(qa.scale, qb.scale, qy.scale);
            let params = cx.mem.alloc_bytes(&gemm::pack_params(&vec![0; n], &vec![s; n], dim));
            linear::Post::Int8 { params, zp: qy.zero_point, unsigned: g.values[y].ty == ElemType::U8 }
        }
    };
    let products: Vec<linear::Product> = ap
        .batch()
        .into_iter()
        .zip(bp.batch())
        .zip(yp.batch())
        .map(|((am, bm), ym)| linear::Product {
            a: am,
            a_unsigned: g.values[a].ty == ElemType::U8,
            b: linear::BSource::Mat(bm),
            k,
            n,
            init,
            post,
            y: ym,
        })
        .collect();
    let (code, macs) = match linear::emit_act(&products, &cross, &act, cx.cfg) {
        Some(done) => done,
        None => linear::emit(&products, &cross, cx.cfg, name)?,
    };
    cx.code.phase(code);
    Ok((LayerOp::MatMul, macs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Quant, Value};

    fn value(name: &str, shape: &[usize], ty: ElemType) -> Value {
        let quant = (ty != ElemType::F32 && ty != ElemType::I64).then_some(Quant { scale: 0.1, zero_point: 0 });
        Value { name: name.into(), shape: shape.to_vec(), ty, quant }
    }

    /// `bias − x` (the broadcast operand first in a non-commutative op) is
    /// refused at compile time naming the node; a host op (a move into
    /// int64 ids) reading a value the device computes is refused too.
    #[test]
    fn unsupported_transformer_nodes_are_refused_by_name() {
        let cfg = HwConfig::default_16x16();
        let mut g = Graph {
            name: "t".into(),
            values: vec![
                value("x", &[1, 4, 8], ElemType::F32),
                value("bias", &[8], ElemType::F32),
                value("y", &[1, 4, 8], ElemType::F32),
            ],
            inputs: vec![0],
            outputs: vec![2],
            nodes: vec![
                Node {
                    name: "bias_const".into(),
                    op: Op::Constant { shape: vec![8], data: (0..8).map(|i| i as f32).collect() },
                    inputs: vec![],
                    outputs: vec![1],
                },
                Node { name: "odd_sub".into(), op: Op::Binary(BinaryOp::Sub), inputs: vec![1, 0], outputs: vec![2] },
            ],
        };
        let e = crate::lower::lower(&g, &cfg).err().expect("refused").to_string();
        assert!(e.contains("odd_sub") && e.contains("broadcast operand comes first"), "{e}");

        // A dequantize on the device, its result moved into int64 ids of an embedding.
        g.values = vec![
            value("x", &[1, 4], ElemType::I8),
            value("d", &[1, 4], ElemType::F32),
            value("q", &[1, 4], ElemType::I8),
            value("e", &[1, 4, 8], ElemType::I8),
        ];
        g.outputs = vec![3];
        g.nodes = vec![
            Node { name: "dq".into(), op: Op::Dequantize, inputs: vec![0], outputs: vec![1] },
            Node { name: "q".into(), op: Op::Quantize, inputs: vec![1], outputs: vec![2] },
        ];
        g.values[2].ty = ElemType::I64;
        g.values[2].quant = None;
        g.nodes[1].op = Op::Reshape { shape: vec![1, 4] };
        g.nodes.push(Node {
            name: "lookup".into(),
            op: Op::Embedding(crate::ir::EmbeddingParams { table: vec![1; 80], rows: 10, cols: 8 }),
            inputs: vec![2],
            outputs: vec![3],
        });
        let e = sites(&g).expect_err("refused").to_string();
        assert!(e.contains("`q`") && e.contains("input `d` is computed on the device"), "{e}");
    }
}
