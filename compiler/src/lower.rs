//! Lowering of a quantized graph (`ir::Graph`) to a program for the
//! accelerator.
//!
//! The program computes the graph's quantized core, between the input's
//! QuantizeLinear and the outputs' DequantizeLinear, which the host does
//! (`layout::quantize_input`, `layout::dequantize_output`).
//!
//! Memory: every quantized value lives in a device buffer, NHWC for 4-D
//! activations (optionally inside a halo of the value's zero point, so a
//! padded convolution reads plain rectangles) and row-major for 2-D ones.
//! Buffers, weights and parameters are the program's constant data, so
//! halos start filled with the zero point and stay so.
//!
//! Each layer is one or more *phases*; a phase starts with every queue idle
//! and leaves no token behind, and phases are separated by a barrier
//! (STORE -> COMPUTE -> LOAD `sync`s), so a layer reads its input only after
//! the previous layer's last store.
//! - Conv: an im2col copy phase (LOAD a block of receptive-field rows into
//!   the scratchpad, STORE it into an im2col matrix) when the kernel is not
//!   1x1, then a GEMM over the im2col matrix (`gemm::emit_gemm`) with the
//!   input zero point folded into the bias. Reduction order (kh, kw, cin).
//! - Dense: a GEMM; after a Flatten of NCHW data the weights are permuted
//!   to the NHWC order the data has in memory.
//! - MaxPool: the feature map into the scratchpad, `vmax` over the window
//!   rows, back to memory. Add and Clamp: `vadd`.

use crate::gemm::{self, GemmOut, GemmPlacement, LowerError, OutRows};
use crate::ir::{ConvParams, DenseParams, ElemType, Graph, Op, PoolParams, Quant, ValueId};
use isa::instr::{self as ins, Deps, Instr, Queue};
use isa::layout::Layout;
use isa::numerics;
use isa::program::{DType, Program, TensorInfo, TensorRole};
use isa::HwConfig;

/// A buffer in device memory holding one value.
#[derive(Clone, Debug)]
struct Buffer {
    addr: u64,
    layout: Layout,
}

/// Per-layer facts recorded in the program's meta `layers` (for reports
/// and checks; `systole run` reads them back).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerInfo {
    pub name: String,
    pub op: String,
    /// Instruction index range `[first, last)` of the layer's phases.
    pub first: usize,
    pub last: usize,
    /// MACs the array performs (all-zero weight tiles are skipped).
    pub macs: u64,
    /// The value the layer writes, where, and how.
    pub value: String,
    pub addr: u64,
    pub layout: String,
    pub shape: Vec<u64>,
    pub elem: String,
    pub scale: f32,
    pub zero_point: i32,
    /// The layer only reinterprets its input's buffer in an order no tensor
    /// layout describes (a flatten of NHWC data): there is nothing of its
    /// own to read back.
    #[serde(default)]
    pub view: bool,
}

impl LayerInfo {
    pub fn is_view(&self) -> bool {
        self.view
    }

    /// The device layout of the layer's output buffer.
    pub fn device_layout(&self) -> Result<Layout, String> {
        let t = TensorInfo {
            name: self.value.clone(),
            role: TensorRole::Intermediate,
            dtype: if self.elem == "u8" { DType::U8 } else { DType::I8 },
            shape: self.shape.clone(),
            addr: self.addr,
            layout: self.layout.clone(),
            scale: None,
            zero_point: None,
        };
        Layout::of_tensor(&t)
    }
}

struct Ctx<'a> {
    g: &'a Graph,
    cfg: &'a HwConfig,
    dim: usize,
    data: Vec<u8>,
    /// Data offsets are relative to `data`; the final data address is added
    /// when the program is placed (all addresses below are offsets).
    bufs: Vec<Option<Buffer>>,
    code: Vec<Instr>,
    phases: usize,
}

fn unsupported(node: &str, op: &str, why: impl Into<String>) -> LowerError {
    LowerError::Unsupported { node: node.into(), op: op.into(), why: why.into() }
}

fn align(x: usize, a: usize) -> usize {
    x.div_ceil(a) * a
}

impl Ctx<'_> {
    fn alloc(&mut self, bytes: usize, fill: u8) -> u64 {
        let at = align(self.data.len(), 64);
        self.data.resize(at, 0);
        self.data.resize(at + bytes.max(1), fill);
        at as u64
    }

    fn alloc_bytes(&mut self, bytes: &[u8]) -> u64 {
        let at = self.alloc(bytes.len(), 0);
        self.data[at as usize..at as usize + bytes.len()].copy_from_slice(bytes);
        at
    }

    fn quant(&self, v: ValueId) -> Quant {
        self.g.values[v].quant.expect("validated: quantized")
    }

    fn zp_byte(&self, v: ValueId) -> u8 {
        self.quant(v).zero_point as u8
    }

    /// Appends a phase, separated from the previous one by a barrier.
    fn phase(&mut self, instrs: Vec<Instr>) {
        if self.phases > 0 {
            let sync = |queue: Queue, deps: Deps| Instr::from(ins::Sync { deps, queue: queue as u8 });
            self.code.push(sync(Queue::Store, Deps { push_prev: true, ..Deps::NONE }));
            self.code.push(sync(Queue::Compute, Deps { pop_next: true, push_prev: true, ..Deps::NONE }));
            self.code.push(sync(Queue::Load, Deps { pop_next: true, ..Deps::NONE }));
        }
        self.code.extend(instrs);
        self.phases += 1;
    }
}

/// Copies 2-D blocks DRAM -> scratchpad -> DRAM: (src, src_stride, rows,
/// cols, dst, dst_stride), all in bytes. `COPY_BUFFERS` scratchpad buffers
/// rotate, so several blocks' LOADs and STOREs are in flight at once (each
/// pays the DRAM latency); COMPUTE `sync`s forward "loaded" to STORE and
/// "stored" back to LOAD.
fn copy_phase(blocks: &[(u64, u64, usize, usize, u64, u64)], dim: usize, spad_rows: usize) -> Vec<Instr> {
    const COPY_BUFFERS: usize = 4;
    let n = blocks.len();
    let buf_rows = blocks.iter().map(|b| b.2 * b.3.div_ceil(dim)).max().unwrap_or(0);
    // At least two buffers: a release must never wait behind its own forward.
    let nb = COPY_BUFFERS.min(spad_rows / buf_rows.max(1)).max(2);
    let buf = |i: usize| ((i % nb) * buf_rows) as u16;
    let load = |i: usize| {
        let (src, sstride, rows, cols, _, _) = blocks[i];
        Instr::from(ins::Load {
            deps: Deps { pop_next: i >= nb, push_next: true, ..Deps::NONE },
            dram: src as u32,
            stride: sstride as u32,
            rows: rows as u16,
            cols: cols as u16,
            addr: buf(i),
            ..Default::default()
        })
    };
    let forward = Instr::from(ins::Sync {
        deps: Deps { pop_prev: true, push_next: true, ..Deps::NONE },
        queue: Queue::Compute as u8,
    });
    let release = Instr::from(ins::Sync {
        deps: Deps { pop_next: true, push_prev: true, ..Deps::NONE },
        queue: Queue::Compute as u8,
    });
    let store = |i: usize| {
        let (_, _, rows, cols, dst, dstride) = blocks[i];
        Instr::from(ins::Store {
            deps: Deps { pop_prev: true, push_prev: i + nb < n, ..Deps::NONE },
            dram: dst as u32,
            stride: dstride as u32,
            rows: rows as u16,
            cols: cols as u16,
            addr: buf(i),
            ..Default::default()
        })
    };
    // Order (two buffers): L0 L1 F0 S0 | F1 S1 R0 L2 | F2 S2 R1 L3 | ...:
    // the release of block i follows the forward of block i + 1, so COMPUTE
    // never holds a forward behind a store in flight.
    let mut v = Vec::new();
    for i in 0..n.min(nb) {
        v.push(load(i));
    }
    for i in 0..n {
        v.push(forward);
        v.push(store(i));
        if i >= 1 && i - 1 + nb < n {
            v.push(release);
            v.push(load(i - 1 + nb));
        }
    }
    v
}

/// The program and its per-layer facts.
pub struct Lowered {
    pub program: Program,
    pub layers: Vec<LayerInfo>,
}

/// Lowers a validated graph for `cfg`.
pub fn lower(g: &Graph, cfg: &HwConfig) -> Result<Lowered, LowerError> {
    g.validate().map_err(|e| unsupported(&e.node, e.op, e.why))?;
    if cfg.array.rows != cfg.array.cols {
        return Err(LowerError::NonSquare { rows: cfg.array.rows, cols: cfg.array.cols });
    }
    let halos = plan_halos(g)?;
    let mut cx = Ctx {
        g,
        cfg,
        dim: cfg.array.cols as usize,
        data: Vec::new(),
        bufs: vec![None; g.values.len()],
        code: Vec::new(),
        phases: 0,
    };

    // The device input: the quantized graph input (after the host's Quantize).
    let (dev_in, host_quantize) = device_input(g)?;
    let in_layout = layout_of(g, dev_in, halos[dev_in])?;
    let fill = cx.zp_byte(dev_in);
    let addr = cx.alloc(in_layout.bytes(), fill);
    cx.bufs[dev_in] = Some(Buffer { addr, layout: in_layout });

    let mut layers = Vec::new();
    for node in &g.nodes {
        if node.inputs.first() == Some(&g.inputs[0]) && host_quantize && matches!(node.op, Op::Quantize) {
            continue;
        }
        let first = cx.code.len();
        let macs = match &node.op {
            Op::Dequantize => {
                if !g.outputs.contains(&node.outputs[0]) {
                    return Err(unsupported(
                        &node.name,
                        "dequantize",
                        "dequantizing inside the graph (float ops) is not supported",
                    ));
                }
                continue;
            }
            Op::Quantize => {
                return Err(unsupported(
                    &node.name,
                    "quantize",
                    "quantizing inside the graph (float ops) is not supported",
                ))
            }
            Op::Conv(c) => lower_conv(&mut cx, node.inputs[0], node.outputs[0], c, halos[node.outputs[0]], &node.name)?,
            Op::Dense(d) => {
                lower_dense(&mut cx, node.inputs[0], node.outputs[0], d, halos[node.outputs[0]], &node.name)?
            }
            Op::MaxPool(p) => {
                lower_maxpool(&mut cx, node.inputs[0], node.outputs[0], p, halos[node.outputs[0]], &node.name)?
            }
            Op::AvgPool(p) => {
                lower_avgpool(&mut cx, node.inputs[0], node.outputs[0], p, halos[node.outputs[0]], &node.name)?
            }
            Op::Flatten { .. } | Op::Reshape { .. } => {
                lower_reshape(&mut cx, node.inputs[0], node.outputs[0], &node.name, node.op.name())?
            }
            Op::Add { qmin, qmax } => lower_vadd(
                &mut cx,
                node.inputs[0],
                Some(node.inputs[1]),
                node.outputs[0],
                *qmin,
                *qmax,
                halos[node.outputs[0]],
                &node.name,
            )?,
            Op::Concat { axis } => {
                lower_concat(&mut cx, &node.inputs, node.outputs[0], *axis, halos[node.outputs[0]], &node.name)?
            }
            Op::Clamp { qmin, qmax } => lower_vadd(
                &mut cx,
                node.inputs[0],
                None,
                node.outputs[0],
                *qmin,
                *qmax,
                halos[node.outputs[0]],
                &node.name,
            )?,
            other => return Err(unsupported(&node.name, other.name(), "not lowered to the accelerator yet")),
        };
        let out = node.outputs[0];
        let v = &g.values[out];
        let b = cx.bufs[out].as_ref().expect("layer wrote its output");
        let q = cx.quant(out);
        layers.push(LayerInfo {
            name: node.name.clone(),
            op: node.op.name().into(),
            first,
            last: cx.code.len(),
            macs,
            value: v.name.clone(),
            addr: b.addr,
            layout: b.layout.describe(),
            shape: v.shape.iter().map(|&d| d as u64).collect(),
            elem: v.ty.name().into(),
            scale: q.scale,
            zero_point: q.zero_point,
            view: matches!(b.layout, Layout::Flat { perm: Some(_), .. }),
        });
    }
    finish_program(cx, dev_in, layers)
}

/// The graph input the device sees, and whether the host quantizes it.
fn device_input(g: &Graph) -> Result<(ValueId, bool), LowerError> {
    if g.inputs.len() != 1 {
        return Err(unsupported("(graph)", "input", format!("{} graph inputs; one is supported", g.inputs.len())));
    }
    let x = g.inputs[0];
    if g.values[x].ty != ElemType::F32 {
        return Ok((x, false));
    }
    let q = g.nodes.iter().find(|n| n.inputs == [x] && matches!(n.op, Op::Quantize));
    match q {
        Some(n) if g.nodes.iter().filter(|m| m.inputs.contains(&x)).count() == 1 => Ok((n.outputs[0], true)),
        _ => Err(unsupported("(graph)", "input", "the float input must feed exactly one QuantizeLinear")),
    }
}

/// The zero-point halo each value needs: the largest symmetric padding of a
/// convolution that reads it.
fn plan_halos(g: &Graph) -> Result<Vec<usize>, LowerError> {
    let mut halo = vec![0; g.values.len()];
    for n in &g.nodes {
        if let Op::Conv(c) = &n.op {
            let [t, l, b, r] = c.pads;
            if !(t == l && l == b && b == r) {
                return Err(unsupported(
                    &n.name,
                    "conv",
                    format!("asymmetric padding {:?} is not lowered yet", c.pads),
                ));
            }
            halo[n.inputs[0]] = halo[n.inputs[0]].max(t);
        }
    }
    Ok(halo)
}

fn layout_of(g: &Graph, v: ValueId, halo: usize) -> Result<Layout, LowerError> {
    let val = &g.values[v];
    match val.shape[..] {
        [1, c, h, w] => Ok(Layout::Nhwc { h, w, c, halo }),
        [rows, cols] if halo == 0 => Ok(Layout::Flat { rows, cols, perm: None }),
        [cols] if halo == 0 => Ok(Layout::Flat { rows: 1, cols, perm: None }),
        _ => Err(unsupported(
            &val.name,
            "layout",
            format!("value shape {:?} (batch must be 1, rank 1, 2 or 4)", val.shape),
        )),
    }
}

fn out_buffer(cx: &mut Ctx<'_>, v: ValueId, halo: usize) -> Result<Buffer, LowerError> {
    let layout = layout_of(cx.g, v, halo)?;
    let fill = cx.zp_byte(v);
    let addr = cx.alloc(layout.bytes(), fill);
    let b = Buffer { addr, layout };
    cx.bufs[v] = Some(b.clone());
    Ok(b)
}

fn input_buffer<'b>(cx: &'b Ctx<'_>, v: ValueId, node: &str) -> Result<&'b Buffer, LowerError> {
    cx.bufs[v]
        .as_ref()
        .ok_or_else(|| unsupported(node, "input", format!("value `{}` has no device buffer", cx.g.values[v].name)))
}

/// Rows of a GEMM output written into `b` (pixels of an NHWC buffer, or rows).
fn out_rows(b: &Buffer) -> OutRows {
    match &b.layout {
        Layout::Nhwc { w, c, halo, .. } => {
            let wp = w + 2 * halo;
            OutRows {
                addr: b.addr + ((halo * wp + halo) * c) as u64,
                row_stride: *c as u64,
                group: *w,
                group_stride: (wp * c) as u64,
            }
        }
        Layout::Flat { cols, .. } => OutRows::dense(b.addr, *cols as u64),
    }
}

fn gemm_out(cx: &Ctx<'_>, y: ValueId, qmin: i32, qmax: i32) -> GemmOut {
    GemmOut::Int8 { zero_point: cx.quant(y).zero_point, qmin, qmax, unsigned: cx.g.values[y].ty == ElemType::U8 }
}

fn check_elem(cx: &Ctx<'_>, y: ValueId, node: &str, op: &str) -> Result<(), LowerError> {
    if cx.g.values[y].ty == ElemType::F32 {
        return Err(unsupported(node, op, "float outputs inside the graph are not lowered"));
    }
    Ok(())
}

fn lower_conv(
    cx: &mut Ctx<'_>,
    x: ValueId,
    y: ValueId,
    c: &ConvParams,
    out_halo: usize,
    node: &str,
) -> Result<u64, LowerError> {
    check_elem(cx, y, node, "conv")?;
    let inb = input_buffer(cx, x, node)?.clone();
    let Layout::Nhwc { h: _, w, c: cin, halo } = inb.layout else {
        return Err(unsupported(node, "conv", "input is not an NHWC feature map"));
    };
    let [m_out, cg, kh, kw] = c.w_shape;
    let groups = c.groups;
    let mg = m_out / groups;
    let out_shape = &cx.g.values[y].shape;
    let (oh, ow) = (out_shape[2], out_shape[3]);
    let (sh, sw) = (c.strides[0], c.strides[1]);
    let (dh, dw) = (c.dilations[0], c.dilations[1]);
    let p = c.pads[0];
    let wp = w + 2 * halo;
    let off = halo - p;
    let k = kh * kw * cg;
    let outb = out_buffer(cx, y, out_halo)?;
    // Each group is its own GEMM over its slice of input and output channels.
    let mut macs = 0;
    for g in 0..groups {
        // B[(i, j, ci)][m] = w[g mg + m][ci][i][j].
        let mut b = vec![0i8; k * mg];
        for m in 0..mg {
            for ci in 0..cg {
                for i in 0..kh {
                    for j in 0..kw {
                        b[((i * kw + j) * cg + ci) * mg + m] = c.weights[(((g * mg + m) * cg + ci) * kh + i) * kw + j];
                    }
                }
            }
        }
        let mut rows = out_rows(&outb);
        rows.addr += (g * mg) as u64;
        let ch = g * mg..(g + 1) * mg;
        let (w_scale, bias) = (&c.w_scale[ch.clone()], &c.bias[ch]);
        if kh == 1 && kw == 1 && sh == 1 && sw == 1 && halo == 0 {
            // A is the input itself: rows are pixels, this group's channels.
            let a = (inb.addr + (g * cg) as u64, cin as u64, oh * ow);
            macs += gemm_layer(cx, x, y, &b, k, mg, w_scale, bias, c.qmin, c.qmax, a, rows, None)?;
            continue;
        }
        // im2col straight into the scratchpad: A row (oh, ow), column
        // (i, j, ci) is input pixel (oh sh + i dh, ow sw + j dw) in the halo'd
        // buffer, channel g cg + ci. Per output row and kernel row, the kw
        // pixels of consecutive outputs are rows of one strided 2-D block;
        // it is cut at column-block boundaries so each LOAD writes one block.
        let dim = cx.dim;
        let runs: Vec<(usize, usize)> =
            if dw == 1 && groups == 1 { vec![(0, kw)] } else { (0..kw).map(|j| (j, 1)).collect() };
        let gather = |r0: usize, nrows: usize, base: u16| -> Vec<Instr> {
            let mut v = Vec::new();
            let mut r = r0;
            while r < r0 + nrows {
                let (o, ow0) = (r / ow, r % ow);
                let n = (ow - ow0).min(r0 + nrows - r);
                for i in 0..kh {
                    let hp = o * sh + i * dh + off;
                    for &(j0, nj) in &runs {
                        let src = inb.addr + ((hp * wp + ow0 * sw + j0 * dw + off) * cin + g * cg) as u64;
                        let (c0, c1) = ((i * kw + j0) * cg, (i * kw + j0 + nj) * cg);
                        let mut p0 = c0;
                        while p0 < c1 {
                            let p1 = c1.min((p0 / dim + 1) * dim);
                            v.push(Instr::from(ins::Load {
                                dram: (src + (p0 - c0) as u64) as u32,
                                stride: (sw * cin) as u32,
                                rows: n as u16,
                                cols: (p1 - p0) as u16,
                                addr: base + ((p0 / dim) * nrows + (r - r0)) as u16,
                                col: (p0 % dim) as u16,
                                ..Default::default()
                            }));
                            p0 = p1;
                        }
                    }
                }
                r += n;
            }
            v
        };
        macs += gemm_layer(
            cx,
            x,
            y,
            &b,
            k,
            mg,
            w_scale,
            bias,
            c.qmin,
            c.qmax,
            (0, k as u64, oh * ow),
            rows,
            Some(&gather),
        )?;
    }
    Ok(macs)
}

/// A GEMM layer: packs weights and parameters, emits the GEMM phase.
#[allow(clippy::too_many_arguments)]
fn gemm_layer(
    cx: &mut Ctx<'_>,
    x: ValueId,
    y: ValueId,
    b: &[i8],
    k: usize,
    n: usize,
    w_scale: &[f32],
    bias: &[i32],
    qmin: i32,
    qmax: i32,
    (a_addr, a_stride, m): (u64, u64, usize),
    out: OutRows,
    gather: Option<gemm::AGather<'_>>,
) -> Result<u64, LowerError> {
    let (qx, qy) = (cx.quant(x), cx.quant(y));
    let folded: Vec<i32> = (0..n)
        .map(|col| {
            let sum = (0..k).fold(0i32, |s, r| s.wrapping_add(b[r * n + col] as i32));
            numerics::fold_zero_point(bias[col], qx.zero_point, sum)
        })
        .collect();
    let scale: Vec<f32> = (0..n).map(|col| numerics::requant_scale(qx.scale, w_scale[col], qy.scale)).collect();
    let dim = cx.dim;
    let b_addr = cx.alloc_bytes(&gemm::pack_weights(b, k, n, dim));
    let params_addr = cx.alloc_bytes(&gemm::pack_params(&folded, &scale, dim));
    let place = GemmPlacement { a_addr, a_stride, b_addr, params_addr, c: out };
    let unsigned = cx.g.values[x].ty == ElemType::U8;
    let out = gemm_out(cx, y, qmin, qmax);
    let nonzero = gemm::nonzero_tiles(b, k, n, dim);
    let instrs = gemm::emit_gemm_gather(m, k, n, unsigned, out, &place, gather, Some(&nonzero), cx.cfg)?;
    cx.phase(instrs);
    Ok(gemm::streamed_macs(m, k, n, dim, &nonzero))
}

fn lower_dense(
    cx: &mut Ctx<'_>,
    x: ValueId,
    y: ValueId,
    d: &DenseParams,
    out_halo: usize,
    node: &str,
) -> Result<u64, LowerError> {
    check_elem(cx, y, node, "dense")?;
    let inb = input_buffer(cx, x, node)?.clone();
    let Layout::Flat { rows, cols, perm } = inb.layout else {
        return Err(unsupported(node, "dense", "input is a feature map; flatten it first"));
    };
    if out_halo != 0 {
        return Err(unsupported(node, "dense", "a padded convolution cannot read a dense layer's output"));
    }
    let (k, n) = (d.k, d.n);
    debug_assert_eq!(cols, k);
    let mut b = vec![0i8; k * n];
    for phys in 0..k {
        let logical = perm.as_ref().map_or(phys, |p| p[phys]);
        for col in 0..n {
            b[phys * n + col] = d.weights[col * k + logical];
        }
    }
    let outb = out_buffer(cx, y, 0)?;
    gemm_layer(
        cx,
        x,
        y,
        &b,
        k,
        n,
        &d.w_scale,
        &d.bias,
        d.qmin,
        d.qmax,
        (inb.addr, k as u64, rows),
        out_rows(&outb),
        None,
    )
}

fn lower_reshape(cx: &mut Ctx<'_>, x: ValueId, y: ValueId, node: &str, op: &str) -> Result<u64, LowerError> {
    let inb = input_buffer(cx, x, node)?.clone();
    let shape = &cx.g.values[y].shape;
    let (rows, cols) = match shape[..] {
        [r, c] => (r, c),
        [c] => (1, c),
        _ => return Err(unsupported(node, op, format!("reshape to {shape:?} (only to 2-D) is not lowered yet"))),
    };
    let layout = match inb.layout {
        Layout::Nhwc { h, w, c, halo: 0 } if rows == 1 => {
            // Memory holds (h, w, c); the logical flatten order is (c, h, w).
            let perm = (0..h * w * c).map(|i| (i % c) * h * w + i / c).collect();
            Layout::Flat { rows, cols, perm: Some(perm) }
        }
        Layout::Flat { perm: None, .. } => Layout::Flat { rows, cols, perm: None },
        _ => return Err(unsupported(node, op, "this reshape needs data movement, which is not lowered yet")),
    };
    cx.bufs[y] = Some(Buffer { addr: inb.addr, layout });
    Ok(0)
}

/// (pixels, channels) of a feature map or row-major buffer: how many
/// scratchpad rows per column block `load_feature` makes of it.
fn feature_rows(layout: &Layout) -> Option<(usize, usize)> {
    match layout {
        Layout::Nhwc { h, w, c, .. } => Some((h * w, *c)),
        Layout::Flat { rows, cols, perm: None } => Some((*rows, *cols)),
        _ => None,
    }
}

/// Moves a buffer's `pixels x c` values between DRAM and scratchpad rows
/// column-blocked from `base` (`dim` columns a row: block `j` of pixel `p`
/// at row `base + j * pixels + p`). A halo buffer moves image row by row,
/// one column block at a time, since only those pieces are affine.
fn move_feature(b: &Buffer, base: u16, dim: usize, first: Deps, store: bool) -> Vec<Instr> {
    let piece = |dram: u64, stride: usize, rows: usize, cols: usize, addr: u16, deps: Deps| {
        let (dram, stride, rows, cols) = (dram as u32, stride as u32, rows as u16, cols as u16);
        if store {
            Instr::from(ins::Store { deps, dram, stride, rows, cols, addr, ..Default::default() })
        } else {
            Instr::from(ins::Load { deps, dram, stride, rows, cols, addr, ..Default::default() })
        }
    };
    match &b.layout {
        Layout::Nhwc { h, w, c, halo } if *halo > 0 => {
            let wp = w + 2 * halo;
            let pixels = h * w;
            let mut v = Vec::new();
            for y in 0..*h {
                for blk in 0..c.div_ceil(dim) {
                    let deps = if v.is_empty() { first } else { Deps::NONE };
                    let dram = b.addr + (((y + halo) * wp + halo) * c + blk * dim) as u64;
                    let addr = base + (blk * pixels + y * w) as u16;
                    v.push(piece(dram, *c, *w, dim.min(c - blk * dim), addr, deps));
                }
            }
            v
        }
        l => {
            let (rows, cols) = feature_rows(l).expect("plain layout");
            vec![piece(b.addr, cols, rows, cols, base, first)]
        }
    }
}

fn store_feature(b: &Buffer, base: u16, dim: usize, first: Deps) -> Vec<Instr> {
    move_feature(b, base, dim, first, true)
}

/// Loads a buffer; the last load carries `last` (e.g. the signal to COMPUTE).
fn load_feature(b: &Buffer, base: u16, dim: usize, last: Deps) -> Vec<Instr> {
    let mut v = move_feature(b, base, dim, Deps::NONE, false);
    *v.last_mut().expect("at least one load").deps_mut() = last;
    v
}

/// The output positions `o` whose window element `k` (kernel offset) falls
/// inside `[0, size)`: `o * stride + k - pad` in range, a contiguous range.
fn valid_outputs(out: usize, size: usize, stride: usize, k: usize, pad: usize) -> std::ops::Range<usize> {
    let lo = pad.saturating_sub(k).div_ceil(stride);
    let hi = (0..out).rev().find(|&o| o * stride + k < size + pad).map_or(0, |o| o + 1);
    lo..hi.max(lo)
}

fn pool_input(cx: &Ctx<'_>, x: ValueId, node: &str, op: &str) -> Result<(Buffer, usize, usize, usize), LowerError> {
    let inb = input_buffer(cx, x, node)?.clone();
    let Layout::Nhwc { h, w, c, .. } = inb.layout else {
        return Err(unsupported(node, op, "input must be an NHWC feature map"));
    };
    Ok((inb, h, w, c))
}

/// Output-row bands `(o0, o1, i0, i1)` of a pooling over `h` input rows such
/// that `rows(input rows, output rows)` scratchpad rows fit `budget`: band
/// `[o0, o1)` reads input rows `[i0, i1)`.
fn pool_bands(
    (oh, h, kh, sh, pt): (usize, usize, usize, usize, usize),
    rows: impl Fn(usize, usize) -> usize,
    budget: usize,
    node: &str,
    op: &str,
) -> Result<Vec<(usize, usize, usize, usize)>, LowerError> {
    let span = |o0: usize, o1: usize| ((o0 * sh).saturating_sub(pt), ((o1 - 1) * sh + kh).saturating_sub(pt).min(h));
    let mut bands = Vec::new();
    let mut o0 = 0;
    while o0 < oh {
        let mut o1 = o0 + 1;
        let fits = |o1: usize| {
            let (i0, i1) = span(o0, o1);
            rows(i1.saturating_sub(i0), o1 - o0) <= budget
        };
        if !fits(o1) {
            return Err(unsupported(node, op, "one output row of the feature map does not fit the scratchpad"));
        }
        while o1 < oh && fits(o1 + 1) {
            o1 += 1;
        }
        let (i0, i1) = span(o0, o1);
        bands.push((o0, o1, i0, i1));
        o0 = o1;
    }
    Ok(bands)
}

/// The rows `[r0, r1)` of a buffer (image rows of a feature map) as a
/// buffer of its own.
fn rows_view(b: &Buffer, r0: usize, r1: usize) -> Buffer {
    match &b.layout {
        Layout::Nhwc { w, c, halo, .. } => Buffer {
            addr: b.addr + (r0 * (w + 2 * halo) * c) as u64,
            layout: Layout::Nhwc { h: r1 - r0, w: *w, c: *c, halo: *halo },
        },
        Layout::Flat { cols, perm, .. } => Buffer {
            addr: b.addr + (r0 * cols) as u64,
            layout: Layout::Flat { rows: r1 - r0, cols: *cols, perm: perm.clone() },
        },
    }
}

/// (rows, pixels per row) of a buffer, for banding by rows.
fn row_shape(l: &Layout) -> (usize, usize) {
    match l {
        Layout::Nhwc { h, w, .. } => (*h, *w),
        Layout::Flat { rows, .. } => (*rows, 1),
    }
}

fn lower_maxpool(
    cx: &mut Ctx<'_>,
    x: ValueId,
    y: ValueId,
    p: &PoolParams,
    out_halo: usize,
    node: &str,
) -> Result<u64, LowerError> {
    if cx.quant(x) != cx.quant(y) || cx.g.values[x].ty != cx.g.values[y].ty {
        return Err(unsupported(node, "maxpool", "output quantization differs from the input's"));
    }
    let (inb, h, w, c) = pool_input(cx, x, node, "maxpool")?;
    let shape = cx.g.values[y].shape.clone();
    let (oh, ow) = (shape[2], shape[3]);
    let dim = cx.dim;
    let cb = c.div_ceil(dim);
    let [kh, kw] = p.kernel;
    let (sh, sw) = (p.strides[0], p.strides[1]);
    let (pt, pl) = (p.pads[0], p.pads[1]);
    let budget = (cx.cfg.spad_rows() as usize).min(65535);
    let bands = pool_bands((oh, h, kh, sh, pt), |ir, or| cb * (ir * w + or * ow), budget, node, "maxpool")?;
    let unsigned = cx.g.values[x].ty == ElemType::U8;
    let outb = out_buffer(cx, y, out_halo)?;
    let padded = p.pads != [0; 4];
    let init = padded.then(|| cx.alloc(oh * ow * cb * dim, if unsigned { 0u8 } else { 0x80 }));
    for (o0, o1, i0, i1) in bands {
        let (hb, ohb) = (i1 - i0, o1 - o0);
        let (in_base, out_base) = (0usize, cb * hb * w);
        let mut v = Vec::new();
        if let Some(init) = init {
            // Padding never wins: start every output at the type's minimum and
            // fold in each window element over the outputs where it is inside.
            let (rows, cols) = (ohb * ow, cb * dim);
            v.push(Instr::from(ins::Load {
                dram: init as u32,
                stride: cols as u32,
                rows: rows as u16,
                cols: cols as u16,
                addr: out_base as u16,
                ..Default::default()
            }));
        }
        v.extend(load_feature(&rows_view(&inb, i0, i1), in_base as u16, dim, Deps { push_next: true, ..Deps::NONE }));
        let mut ops = Vec::new();
        let vmax = |a: usize, sa: usize, b: usize, sb: usize, d: usize, n: usize| ins::Vmax {
            a: a as u16,
            a_stride: sa as u16,
            b: b as u16,
            b_stride: sb as u16,
            dst: d as u16,
            dst_stride: 1,
            n: n as u16,
            elem: unsigned as u8,
            ..Default::default()
        };
        for blk in 0..cb {
            let src_base = in_base + blk * hb * w;
            for o in o0..o1 {
                let dst_row = out_base + blk * ohb * ow + (o - o0) * ow;
                let mut first = !padded;
                let mut pending: Option<usize> = None;
                for i in 0..kh {
                    let Some(hi) = (o * sh + i).checked_sub(pt).filter(|&hi| hi < h) else { continue };
                    let hr = hi - i0;
                    for j in 0..kw {
                        let r = valid_outputs(ow, w, sw, j, pl);
                        if r.is_empty() {
                            continue;
                        }
                        let src = src_base + hr * w + r.start * sw + j - pl;
                        if first {
                            // Unpadded: every window element covers every
                            // output; the first two initialize the destination.
                            match pending.take() {
                                None => {
                                    pending = Some(src);
                                    if kh * kw == 1 {
                                        ops.push(vmax(src, sw, src, sw, dst_row, ow));
                                        first = false;
                                    }
                                }
                                Some(a) => {
                                    ops.push(vmax(a, sw, src, sw, dst_row, ow));
                                    first = false;
                                }
                            }
                            continue;
                        }
                        let d = dst_row + r.start;
                        ops.push(vmax(d, 1, src, sw, d, r.len()));
                    }
                }
            }
        }
        let last = ops.len() - 1;
        ops[0].deps.pop_prev = true;
        ops[last].deps.push_next = true;
        v.extend(ops.into_iter().map(Instr::from));
        v.extend(store_feature(&rows_view(&outb, o0, o1), out_base as u16, dim, Deps { pop_prev: true, ..Deps::NONE }));
        cx.phase(v);
    }
    Ok(0)
}

/// Average pooling on the array: each window row's pixels are loaded as a
/// weight tile (rows = pixels, columns = channels) and a row of ones streams
/// through it, so the accumulator sums the window exactly; `requant` then
/// subtracts `count * zx` (the bias) and scales by `s_x / (s_y count)` —
/// the interpreter's integer semantics (`interp::avgpool_scale`).
fn lower_avgpool(
    cx: &mut Ctx<'_>,
    x: ValueId,
    y: ValueId,
    p: &PoolParams,
    out_halo: usize,
    node: &str,
) -> Result<u64, LowerError> {
    check_elem(cx, y, node, "avgpool")?;
    if cx.g.values[y].ty != ElemType::I8 {
        return Err(unsupported(node, "avgpool", "uint8 outputs are not lowered yet"));
    }
    if p.pads != [0; 4] {
        return Err(unsupported(node, "avgpool", "padded average pooling is not lowered yet"));
    }
    if cx.g.values[x].ty != ElemType::I8 {
        return Err(unsupported(node, "avgpool", "uint8 inputs are not lowered yet"));
    }
    let (inb, h, w, c) = pool_input(cx, x, node, "avgpool")?;
    let shape = cx.g.values[y].shape.clone();
    let (oh, ow) = (shape[2], shape[3]);
    let dim = cx.dim;
    let cb = c.div_ceil(dim);
    let (kh, kw) = (p.kernel[0], p.kernel[1]);
    let (sh, sw) = (p.strides[0], p.strides[1]);
    let count = kh * kw;
    let (qx, qy) = (cx.quant(x), cx.quant(y));
    let scale = crate::interp::avgpool_scale(qx.scale, qy.scale, count);
    let bias = -(count as i32).wrapping_mul(qx.zero_point);
    let ones = cx.alloc(dim, 1);
    let params = cx.alloc_bytes(&gemm::pack_params(&vec![bias; dim], &vec![scale; dim], dim));
    let outb = out_buffer(cx, y, out_halo)?;
    // A band's scratchpad: input rows, the ones row, output rows; its
    // accumulator: one row per output pixel and block, plus two parameter rows.
    let spad_budget = (cx.cfg.spad_rows() as usize).min(65535);
    let acc_rows = cx.cfg.acc_rows() as usize;
    let rows =
        |ir: usize, or: usize| if cb * or * ow + 2 > acc_rows { usize::MAX } else { cb * ir * w + 1 + cb * or * ow };
    for (o0, o1, i0, i1) in pool_bands((oh, h, kh, sh, 0), rows, spad_budget, node, "avgpool")? {
        let (hb, outs) = (i1 - i0, (o1 - o0) * ow);
        let (in_base, ones_row, out_base) = (0usize, cb * hb * w, cb * hb * w + 1);
        let param_row = cb * outs;
        let mut v = load_feature(&rows_view(&inb, i0, i1), in_base as u16, dim, Deps::NONE);
        v.extend([
            Instr::from(ins::Load {
                dram: ones as u32,
                stride: dim as u32,
                rows: 1,
                cols: dim as u16,
                addr: ones_row as u16,
                ..Default::default()
            }),
            Instr::from(ins::Load {
                deps: Deps { push_next: true, ..Deps::NONE },
                buf: ins::BUF_ACC,
                dram: params as u32,
                stride: (dim * 4) as u32,
                rows: 2,
                cols: dim as u16,
                addr: param_row as u16,
                ..Default::default()
            }),
        ]);
        let mut ops: Vec<Instr> = Vec::new();
        for blk in 0..cb {
            let n = dim.min(c - blk * dim);
            for o in 0..outs {
                let (oy, ox) = (o0 + o / ow, o % ow);
                let mut first = true;
                for i in 0..kh {
                    for j0 in (0..kw).step_by(dim) {
                        let k = dim.min(kw - j0);
                        let row = in_base + blk * hb * w + (oy * sh + i - i0) * w + ox * sw + j0;
                        ops.push(Instr::from(ins::Ldw {
                            addr: row as u16,
                            k: k as u16,
                            n: n as u16,
                            ..Default::default()
                        }));
                        ops.push(Instr::from(ins::Matmul {
                            a: ones_row as u16,
                            m: 1,
                            acc: (blk * outs + o) as u16,
                            accumulate: (!first) as u8,
                            swap: 1,
                            ..Default::default()
                        }));
                        first = false;
                    }
                }
            }
        }
        *ops[0].deps_mut() = Deps { pop_prev: true, ..Deps::NONE };
        for blk in 0..cb {
            ops.push(Instr::from(ins::Requant {
                deps: Deps { push_next: blk + 1 == cb, ..Deps::NONE },
                acc: (blk * outs) as u16,
                rows: outs as u16,
                dst: (out_base + blk * outs) as u16,
                params: param_row as u16,
                out_type: ins::ELEM_I8,
                zp: qy.zero_point as i16,
                qmin: -128,
                qmax: 127,
            }));
        }
        v.extend(ops);
        v.extend(store_feature(&rows_view(&outb, o0, o1), out_base as u16, dim, Deps { pop_prev: true, ..Deps::NONE }));
        cx.phase(v);
    }
    Ok((oh * ow * count * c) as u64)
}

/// `vadd` of two tensors (Add) or of one with itself scaled to a copy (Clamp).
#[allow(clippy::too_many_arguments)]
fn lower_vadd(
    cx: &mut Ctx<'_>,
    a: ValueId,
    b: Option<ValueId>,
    y: ValueId,
    qmin: i32,
    qmax: i32,
    out_halo: usize,
    node: &str,
) -> Result<u64, LowerError> {
    check_elem(cx, y, node, "add")?;
    let ab = input_buffer(cx, a, node)?.clone();
    let (pixels, c) =
        feature_rows(&ab.layout).ok_or_else(|| unsupported(node, "add", "operand layout not supported"))?;
    let (qa, qy) = (cx.quant(a), cx.quant(y));
    let (bb, qb, ka, kb, scale) = match b {
        Some(b) => {
            let bb = input_buffer(cx, b, node)?.clone();
            if feature_rows(&bb.layout) != Some((pixels, c)) {
                return Err(unsupported(node, "add", "operands must have the same shape"));
            }
            let qb = cx.quant(b);
            let (ka, kb, s) = numerics::vadd_params(qa.scale, qb.scale, qy.scale);
            (bb, qb, ka, kb, s)
        }
        // a * 2^14 * 2^-14 = a exactly: a copy through the clamp.
        None if qa == qy => (ab.clone(), qa, 1 << 14, 0, 1.0 / (1 << 14) as f32),
        None => return Err(unsupported(node, "clamp", "a clamp that changes quantization is not lowered")),
    };
    let unsigned_in = cx.g.values[a].ty == ElemType::U8;
    if b.is_some_and(|b| (cx.g.values[b].ty == ElemType::U8) != unsigned_in) {
        return Err(unsupported(node, "add", "operands of different types (int8 and uint8) are not lowered"));
    }
    let unsigned_out = cx.g.values[y].ty == ElemType::U8;
    let dim = cx.dim;
    let cb = c.div_ceil(dim);
    let (rows, per_row) = row_shape(&ab.layout);
    let budget = (cx.cfg.spad_rows() as usize).min(65535);
    let band = budget / (3 * cb * per_row);
    if band == 0 || cx.cfg.acc_rows() < 3 {
        return Err(unsupported(node, "add", "one row of the operands does not fit the scratchpad"));
    }
    // Parameters (the same for every column): rows ka, kb, scale.
    let mut params = Vec::new();
    for v in [ka, kb, scale.to_bits() as i32] {
        params.extend((0..dim).flat_map(|_| v.to_le_bytes()));
    }
    let p_addr = cx.alloc_bytes(&params);
    let outb = out_buffer(cx, y, out_halo)?;
    // Bands of rows when the operands exceed the scratchpad.
    for r0 in (0..rows).step_by(band) {
        let r1 = (r0 + band).min(rows);
        let px = (r1 - r0) * per_row;
        let (a_base, b_base, o_base) = (0, cb * px, 2 * cb * px);
        let mut v = load_feature(&rows_view(&ab, r0, r1), a_base as u16, dim, Deps::NONE);
        v.extend(load_feature(&rows_view(&bb, r0, r1), b_base as u16, dim, Deps::NONE));
        v.push(Instr::from(ins::Load {
            deps: Deps { push_next: true, ..Deps::NONE },
            buf: ins::BUF_ACC,
            dram: p_addr as u32,
            stride: (dim * 4) as u32,
            rows: 3,
            cols: dim as u16,
            ..Default::default()
        }));
        for blk in 0..cb {
            v.push(Instr::from(ins::Vadd {
                deps: Deps { pop_prev: blk == 0, push_next: blk + 1 == cb, ..Deps::NONE },
                a: (a_base + blk * px) as u16,
                b: (b_base + blk * px) as u16,
                dst: (o_base + blk * px) as u16,
                n: px as u16,
                params: 0,
                za: qa.zero_point as i16,
                zb: qb.zero_point as i16,
                zo: qy.zero_point as i16,
                qmin: qmin as i16,
                qmax: qmax as i16,
                in_type: unsigned_in as u8,
                out_type: unsigned_out as u8,
            }));
        }
        v.extend(store_feature(&rows_view(&outb, r0, r1), o_base as u16, dim, Deps { pop_prev: true, ..Deps::NONE }));
        cx.phase(v);
    }
    Ok(0)
}

/// Concatenation along channels (NCHW axis 1, or the columns of a 2-D
/// value): each input's rows are copied into their column slice of the
/// output with the DMA copy phase. All operands share one quantization.
fn lower_concat(
    cx: &mut Ctx<'_>,
    ins_: &[ValueId],
    y: ValueId,
    axis: usize,
    out_halo: usize,
    node: &str,
) -> Result<u64, LowerError> {
    let rank = cx.g.values[y].shape.len();
    if axis != 1 || !(rank == 2 || rank == 4) {
        return Err(unsupported(
            node,
            "concat",
            format!("concatenation along axis {axis} of a rank-{rank} value is not lowered yet"),
        ));
    }
    let qy = cx.quant(y);
    if ins_.iter().any(|&i| cx.quant(i) != qy || cx.g.values[i].ty != cx.g.values[y].ty) {
        return Err(unsupported(
            node,
            "concat",
            "inputs quantized differently from the output need requantizing, which is not lowered yet",
        ));
    }
    let outb = out_buffer(cx, y, out_halo)?;
    let (rows, per_row) = row_shape(&outb.layout);
    let (_, c_out) =
        feature_rows(&outb.layout).ok_or_else(|| unsupported(node, "concat", "output layout not supported"))?;
    let row_pitch = |b: &Buffer| match b.layout {
        Layout::Nhwc { w, c, halo, .. } => ((w + 2 * halo) * c, ((halo * (w + 2 * halo)) + halo) * c),
        Layout::Flat { cols, .. } => (cols, 0),
    };
    let (out_pitch, out_first) = row_pitch(&outb);
    let mut blocks = Vec::new();
    let mut c0 = 0;
    for &i in ins_ {
        let b = input_buffer(cx, i, node)?.clone();
        let (_, ci) =
            feature_rows(&b.layout).ok_or_else(|| unsupported(node, "concat", "input layout not supported"))?;
        let (in_pitch, in_first) = row_pitch(&b);
        // One block per image row: `per_row` pixels of `ci` channels.
        for r in 0..rows {
            let src = b.addr + (in_first + r * in_pitch) as u64;
            let dst = outb.addr + (out_first + r * out_pitch + c0) as u64;
            blocks.push((src, ci as u64, per_row, ci, dst, c_out as u64));
        }
        c0 += ci;
    }
    cx.phase(copy_phase(&blocks, cx.dim, cx.cfg.spad_rows() as usize));
    Ok(0)
}

/// Places code and data, rebases every data address, builds the tensor map.
fn finish_program(mut cx: Ctx<'_>, dev_in: ValueId, mut layers: Vec<LayerInfo>) -> Result<Lowered, LowerError> {
    cx.code.push(Instr::Finish(ins::Finish::default()));
    let g = cx.g;
    let data_addr = (align(cx.code.len() * ins::INSTR_BYTES, 4096)) as u64;
    gemm::rebase_dram(&mut cx.code, data_addr);
    let mem_bytes = align(data_addr as usize + cx.data.len(), 4096) as u64;
    if mem_bytes > cx.cfg.dram_bytes() || mem_bytes > u32::MAX as u64 {
        return Err(unsupported(
            "(graph)",
            "memory",
            format!("needs {mem_bytes} bytes of device memory, the config has {}", cx.cfg.dram_bytes()),
        ));
    }
    for l in &mut layers {
        l.addr += data_addr;
    }
    let dev_out = match g.outputs[..] {
        [o] => g.nodes.iter().find(|n| n.outputs == [o] && matches!(n.op, Op::Dequantize)).map_or(o, |n| n.inputs[0]),
        _ => {
            return Err(unsupported(
                "(graph)",
                "output",
                format!("{} graph outputs; one is supported", g.outputs.len()),
            ))
        }
    };
    let tensor = |v: ValueId, role: TensorRole, name: &str| -> Result<TensorInfo, LowerError> {
        let val = &g.values[v];
        let b = cx.bufs[v]
            .as_ref()
            .ok_or_else(|| unsupported("(graph)", "output", "the output is not computed on the device"))?;
        Ok(TensorInfo {
            name: name.to_string(),
            role,
            dtype: if val.ty == ElemType::U8 { DType::U8 } else { DType::I8 },
            shape: val.shape.iter().map(|&d| d as u64).collect(),
            addr: b.addr + data_addr,
            layout: b.layout.describe(),
            scale: val.quant.map(|q| q.scale),
            zero_point: val.quant.map(|q| q.zero_point),
        })
    };
    let in_name = g.values[g.inputs[0]].name.clone();
    let out_name = g.values[g.outputs[0]].name.clone();
    let tensors = vec![tensor(dev_in, TensorRole::Input, &in_name)?, tensor(dev_out, TensorRole::Output, &out_name)?];
    let mut meta = serde_json::Map::new();
    meta.insert("producer".into(), "systole compiler".into());
    meta.insert("model".into(), g.name.clone().into());
    meta.insert("layers".into(), serde_json::to_value(&layers).expect("layers serialize"));
    // What `systole run` needs without the model file: the hardware to
    // simulate, and the graph for the reference interpreter (`--check`).
    meta.insert("hw".into(), cx.cfg.to_toml().into());
    meta.insert("graph".into(), crate::text::print(g).into());
    let program = Program {
        fingerprint: cx.cfg.fingerprint(),
        config_name: cx.cfg.name.clone(),
        code_addr: 0,
        code: cx.code,
        data_addr,
        data: cx.data,
        mem_bytes,
        tensors,
        meta,
    };
    program.validate_layout().map_err(|e| unsupported("(graph)", "program", e.to_string()))?;
    Ok(Lowered { program, layers })
}
