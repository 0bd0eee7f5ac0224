//! Pooling: max pooling with `vmax` on the post-processor; windowed
//! average pooling on the vector unit in binary32, in ONNX Runtime's order
//! (`lower_avgpool_float`); global average pooling, which ORT computes on
//! integers, on the array (an identity tile or a row of ones through the
//! window as weights) — all in bands of output rows when the feature map
//! exceeds the scratchpad.

use super::memory::{rows_view, Buffer};
use super::movement::{load_feature, store_feature};
use super::vector_ops::{vop, Pat, B};
use super::{check_elem, input_buffer, out_buffer, unsupported, Ctx};
use crate::gemm::{self, LowerError};
use crate::ir::{ElemType, PoolParams, ValueId};
use isa::instr::{self as ins, Deps, Instr};
use isa::layout::Layout;

/// The output positions `o` whose window element `k` (kernel offset) falls
/// inside `[0, size)`: `o * stride + k - pad` in range, a contiguous range.
pub fn valid_outputs(out: usize, size: usize, stride: usize, k: usize, pad: usize) -> std::ops::Range<usize> {
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
pub fn pool_bands(
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

pub fn lower_maxpool(
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
    let init = padded.then(|| cx.mem.alloc(oh * ow * cb * dim, if unsigned { 0u8 } else { 0x80 }));
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
        cx.code.phase(v);
    }
    Ok(0)
}

/// How many window positions of output `o` fall inside `[0, size)` along one axis.
fn inside(o: usize, size: usize, stride: usize, k: usize, pad: usize) -> usize {
    let start = (o * stride) as isize - pad as isize;
    ((start + k as isize).min(size as isize) - start.max(0)).max(0) as usize
}

/// Whether summing the windows through an identity tile (one MATMUL per
/// output row and window position, streaming the row's outputs) takes fewer
/// cycles than window rows as weights under a row of ones (one LDW and
/// MATMUL per output pixel and window row): estimated per channel block as
/// streamed rows plus ~8 cycles per instruction, which matches the model
/// within ~1.5x both ways (3x3/1 over 56x56: 177k vs 558k cycles measured;
/// global 7x7: 32k vs 13k).
fn identity_is_faster(p: &PoolParams, (h, w): (usize, usize), (oh, ow): (usize, usize), tile_k: usize) -> bool {
    const PER_INSTR: usize = 8;
    let [kh, kw] = p.kernel;
    let [sh, sw] = p.strides;
    let (pt, pl) = (p.pads[0], p.pads[1]);
    let rows_inside = |oy: usize| inside(oy, h, sh, kh, pt);
    let identity_row: usize =
        (0..kw).map(|j| valid_outputs(ow, w, sw, j, pl).len()).filter(|&n| n > 0).map(|n| n + PER_INSTR).sum();
    let zeroing = if p.pads != [0; 4] { ow + PER_INSTR } else { 0 };
    let identity: usize = (0..oh).map(|oy| zeroing + rows_inside(oy) * identity_row).sum();
    let ones_row: usize = (0..ow)
        .map(|ox| {
            let (lo, hi) = (pl.saturating_sub(ox * sw), (w + pl - ox * sw).min(kw));
            (lo..hi).step_by(tile_k).map(|j0| tile_k.min(hi - j0) + 2 * PER_INSTR).sum::<usize>()
        })
        .sum();
    let ones: usize = (0..oh).map(|oy| rows_inside(oy) * ones_row).sum();
    identity <= ones
}

/// Global average pooling (`interp::avgpool_is_global`: ONNX Runtime's
/// integer definition) on the array, in two steps per band of output rows:
///
/// 1. Window sums into the accumulator, exactly, in one of two ways. The
///    weights are an identity tile and each window position streams the
///    input pixels it covers (one MATMUL per output row and window
///    position, the row pattern stepping by the stride): int8 and uint8
///    alike, but only where the array has at least as many rows as columns
///    (else an identity tile cannot reach every channel). Or a window row's
///    pixels are the weights and a row of ones streams through them: int8
///    only (weights are int8), faster for large windows over few outputs
///    (global pooling; `identity_is_faster` picks).
/// 2. `requant` per run of outputs whose windows have the same number of
///    positions inside the input (`inside`; they differ only at padded
///    borders): bias `-inside * zx` and scale `s_x / (s_y count)` with
///    `count` = the kernel size under `count_include_pad`, else `inside` —
///    the interpreter's integer semantics (`interp::avgpool_scale`).
pub fn lower_avgpool(
    cx: &mut Ctx<'_>,
    x: ValueId,
    y: ValueId,
    p: &PoolParams,
    out_halo: usize,
    node: &str,
) -> Result<u64, LowerError> {
    check_elem(cx, y, node, "avgpool")?;
    let unsigned_in = cx.g.values[x].ty == ElemType::U8;
    let (inb, h, w, c) = pool_input(cx, x, node, "avgpool")?;
    if !crate::interp::avgpool_is_global(p, h, w) {
        return lower_avgpool_float(cx, x, y, p, out_halo, node);
    }
    let shape = cx.g.values[y].shape.clone();
    let (oh, ow) = (shape[2], shape[3]);
    let tile_k = cx.dataflow.tile_shape().k;
    let identity =
        cx.cfg.array.rows as usize >= cx.dim && (unsigned_in || identity_is_faster(p, (h, w), (oh, ow), tile_k));
    if unsigned_in && !identity {
        return Err(unsupported(
            node,
            "avgpool",
            "uint8 global average pooling needs an array with at least as many rows as columns",
        ));
    }
    let (out_type, qmin, qmax) = quant_type(cx.g.values[y].ty);
    let dim = cx.dim;
    let cb = c.div_ceil(dim);
    let [kh, kw] = p.kernel;
    let [sh, sw] = p.strides;
    let (pt, pl) = (p.pads[0], p.pads[1]);
    if sw > u8::MAX as usize {
        return Err(unsupported(node, "avgpool", format!("stride {sw} wider than 255")));
    }
    let padded = p.pads != [0; 4];
    let (qx, qy) = (cx.quant(x), cx.quant(y));

    // One pair of parameter rows per distinct (inside, count).
    let key = |oy: usize, ox: usize| {
        let n = inside(oy, h, sh, kh, pt) * inside(ox, w, sw, kw, pl);
        (n, if p.count_include_pad { kh * kw } else { n })
    };
    let mut groups: Vec<(usize, usize)> = Vec::new();
    for oy in 0..oh {
        for ox in 0..ow {
            if !groups.contains(&key(oy, ox)) {
                groups.push(key(oy, ox));
            }
        }
    }
    let mut packed = Vec::new();
    for &(n, count) in &groups {
        let bias = -(n as i32).wrapping_mul(qx.zero_point);
        let scale = crate::interp::avgpool_scale(qx.scale, qy.scale, count);
        packed.extend(gemm::pack_params(&vec![bias; dim], &vec![scale; dim], dim));
    }
    let params = cx.mem.alloc_bytes(&packed);
    // Constant scratchpad rows: the identity tile and a zero row (to clear a
    // padded row's sums), or the row of ones.
    let consts = if identity {
        let mut t = vec![0u8; dim * dim + dim];
        (0..dim).for_each(|r| t[r * dim + r] = 1);
        t
    } else {
        vec![1u8; dim]
    };
    let const_rows = consts.len() / dim;
    let consts_addr = cx.mem.alloc_bytes(&consts);
    let outb = out_buffer(cx, y, out_halo)?;

    let spad_budget = (cx.cfg.spad_rows() as usize).min(65535);
    let acc_rows = cx.cfg.acc_rows() as usize;
    let param_rows = 2 * groups.len();
    // What the array performs (k x n per streamed row), as the model counts it.
    let mut macs = 0u64;
    let rows = |ir: usize, or: usize| {
        if cb * or * ow + param_rows > acc_rows {
            usize::MAX
        } else {
            cb * ir * w + const_rows + cb * or * ow
        }
    };
    for (o0, o1, i0, i1) in pool_bands((oh, h, kh, sh, pt), rows, spad_budget, node, "avgpool")? {
        let (hb, outs) = (i1 - i0, (o1 - o0) * ow);
        let (in_base, const_row, out_base) = (0usize, cb * hb * w, cb * hb * w + const_rows);
        let param_row = cb * outs;
        let mut v = load_feature(&rows_view(&inb, i0, i1), in_base as u16, dim, Deps::NONE);
        v.extend([
            Instr::from(ins::Load {
                dram: consts_addr as u32,
                stride: dim as u32,
                rows: const_rows as u16,
                cols: dim as u16,
                addr: const_row as u16,
                ..Default::default()
            }),
            Instr::from(gemm::load_params(
                params,
                param_rows as u16,
                dim,
                param_row as u16,
                Deps { push_next: true, ..Deps::NONE },
            )),
        ]);
        let mut ops: Vec<Instr> = Vec::new();
        for blk in 0..cb {
            let n = dim.min(c - blk * dim);
            let src = |iy: usize, ix: usize| in_base + blk * hb * w + (iy - i0) * w + ix;
            let acc = |oy: usize, ox: usize| blk * outs + (oy - o0) * ow + ox;
            if identity {
                ops.push(Instr::from(ins::Ldw {
                    addr: const_row as u16,
                    k: n as u16,
                    n: n as u16,
                    ..Default::default()
                }));
                let mut swap = true;
                let in_type = if unsigned_in { ins::ELEM_U8 } else { ins::ELEM_I8 };
                for oy in o0..o1 {
                    // Unpadded, the first window position covers every output.
                    let mut first = !padded;
                    if padded {
                        ops.push(Instr::from(ins::Matmul {
                            a: (const_row + dim) as u16,
                            m: ow as u16,
                            acc: acc(oy, 0) as u16,
                            swap: swap as u8,
                            in_type,
                            a_group: 1,
                            a_gstride: 0,
                            ..Default::default()
                        }));
                        macs += (ow * n * n) as u64;
                        swap = false;
                    }
                    for i in 0..kh {
                        let Some(iy) = (oy * sh + i).checked_sub(pt).filter(|&iy| iy < h) else { continue };
                        for j in 0..kw {
                            let r = valid_outputs(ow, w, sw, j, pl);
                            if r.is_empty() {
                                continue;
                            }
                            ops.push(Instr::from(ins::Matmul {
                                a: src(iy, r.start * sw + j - pl) as u16,
                                m: r.len() as u16,
                                a_stride: sw as u8,
                                acc: acc(oy, r.start) as u16,
                                accumulate: (!first) as u8,
                                swap: swap as u8,
                                in_type,
                                ..Default::default()
                            }));
                            macs += (r.len() * n * n) as u64;
                            first = false;
                            swap = false;
                        }
                    }
                }
            } else {
                for oy in o0..o1 {
                    for ox in 0..ow {
                        let mut first = true;
                        for i in 0..kh {
                            let Some(iy) = (oy * sh + i).checked_sub(pt).filter(|&iy| iy < h) else { continue };
                            // The window row's columns inside the input.
                            let (j_lo, j_hi) = (pl.saturating_sub(ox * sw), (w + pl - ox * sw).min(kw));
                            for j0 in (j_lo..j_hi).step_by(tile_k) {
                                let k = tile_k.min(j_hi - j0);
                                ops.push(Instr::from(ins::Ldw {
                                    addr: src(iy, ox * sw + j0 - pl) as u16,
                                    k: k as u16,
                                    n: n as u16,
                                    ..Default::default()
                                }));
                                ops.push(Instr::from(ins::Matmul {
                                    a: const_row as u16,
                                    m: 1,
                                    acc: acc(oy, ox) as u16,
                                    accumulate: (!first) as u8,
                                    swap: 1,
                                    ..Default::default()
                                }));
                                macs += (k * n) as u64;
                                first = false;
                            }
                        }
                    }
                }
            }
        }
        *ops[0].deps_mut() = Deps { pop_prev: true, ..Deps::NONE };
        let mut requants = Vec::new();
        for blk in 0..cb {
            let acc0 = blk * outs;
            if groups.len() == 1 {
                requants.push((acc0, outs, 0));
                continue;
            }
            for oy in o0..o1 {
                let mut ox = 0;
                while ox < ow {
                    let g = groups.iter().position(|&k| k == key(oy, ox)).expect("every key has a group");
                    let run = (ox..ow).take_while(|&e| key(oy, e) == groups[g]).count();
                    requants.push((acc0 + (oy - o0) * ow + ox, run, g));
                    ox += run;
                }
            }
        }
        let last = requants.len() - 1;
        for (i, (a, n, g)) in requants.into_iter().enumerate() {
            ops.push(Instr::from(ins::Requant {
                deps: Deps { push_next: i == last, ..Deps::NONE },
                acc: a as u16,
                rows: n as u16,
                dst: (out_base + a) as u16,
                params: (param_row + 2 * g) as u16,
                out_type,
                zp: qy.zero_point as i16,
                qmin,
                qmax,
            }));
        }
        v.extend(ops);
        v.extend(store_feature(&rows_view(&outb, o0, o1), out_base as u16, dim, Deps { pop_prev: true, ..Deps::NONE }));
        cx.code.phase(v);
    }
    Ok(macs)
}

/// Windowed average pooling on the vector unit, exactly as ONNX Runtime's
/// QLinearAveragePool computes it (`interp`'s AvgPool): per band of output
/// rows and channel block,
///
/// 1. `vdeq` the band's input pixels to float32 accumulator rows
///    (`f32(x − zx) · s_x`, one row per pixel);
/// 2. sum each output row's windows with `vop add`, one per window
///    position, over the outputs whose window holds it (`valid_outputs`),
///    in row-major window order — ORT's order — from `+0` (a padded band
///    starts from zeroed rows; else the first position is added to the
///    immediate 0);
/// 3. `vop div` by the count (per run of equal counts; `vop mul` by its
///    exact inverse when a power of two), `vop div` by `s_y`,
///    `vop add` `f32(zy)`, and `vquant` with scale 1 (round half to even,
///    clamp) into the output's scratchpad rows — or, when `zy = 0`, `vquant`
///    with scale `s_y` alone.
fn lower_avgpool_float(
    cx: &mut Ctx<'_>,
    x: ValueId,
    y: ValueId,
    p: &PoolParams,
    out_halo: usize,
    node: &str,
) -> Result<u64, LowerError> {
    let (inb, h, w, c) = pool_input(cx, x, node, "avgpool")?;
    let (qx, qy) = (cx.quant(x), cx.quant(y));
    crate::interp::check_avgpool_range(qx.scale, qy.scale).map_err(|why| unsupported(node, "avgpool", why))?;
    let shape = cx.g.values[y].shape.clone();
    let (oh, ow) = (shape[2], shape[3]);
    let dim = cx.dim;
    let cb = c.div_ceil(dim);
    let [kh, kw] = p.kernel;
    let [sh, sw] = p.strides;
    let (pt, pl) = (p.pads[0], p.pads[1]);
    if sw > u16::MAX as usize {
        return Err(unsupported(node, "avgpool", format!("stride {sw} wider than 65535")));
    }
    let padded = p.pads != [0; 4];
    let (in_type, _, _) = quant_type(cx.g.values[x].ty);
    let (out_type, qmin, qmax) = quant_type(cx.g.values[y].ty);
    let count = |oy: usize, ox: usize| {
        if p.count_include_pad {
            kh * kw
        } else {
            inside(oy, h, sh, kh, pt) * inside(ox, w, sw, kw, pl)
        }
    };
    // A zero row to clear a padded band's sums.
    let zero_row = padded.then(|| cx.mem.alloc(dim, 0));
    let const_rows = usize::from(padded);
    let outb = out_buffer(cx, y, out_halo)?;
    let spad_budget = (cx.cfg.spad_rows() as usize).min(65535);
    let acc_budget = (cx.cfg.acc_rows() as usize).min(65535);
    // Scratchpad: the band's input and output bytes (every channel block)
    // and the zero row. Accumulator: one block's sums, after its float32
    // input (dequantized once) where that fits, else after one row of
    // float32 window positions (dequantized per position: twice the
    // vector beats).
    let bands_with = |acc_in: &dyn Fn(usize) -> usize| {
        let rows = |ir: usize, or: usize| {
            if acc_in(ir) + or * ow > acc_budget {
                usize::MAX
            } else {
                cb * ir * w + const_rows + cb * or * ow
            }
        };
        pool_bands((oh, h, kh, sh, pt), rows, spad_budget, node, "avgpool")
    };
    let (per_position, bands) = match bands_with(&|ir| ir * w) {
        Ok(bands) => (false, bands),
        Err(_) => (true, bands_with(&|_| ow)?),
    };
    for (o0, o1, i0, i1) in bands {
        let (hb, outs) = (i1 - i0, (o1 - o0) * ow);
        let (in_base, const_row, out_base) = (0usize, cb * hb * w, cb * hb * w + const_rows);
        // Accumulator: the dequantized block (or one position's row) at 0,
        // the block's sums after it.
        let (deq, sums) = (0usize, if per_position { ow } else { hb * w });
        let mut v = load_feature(&rows_view(&inb, i0, i1), in_base as u16, dim, Deps::NONE);
        if let Some(zero) = zero_row {
            v.push(Instr::from(ins::Load {
                dram: zero as u32,
                stride: dim as u32,
                rows: 1,
                cols: dim as u16,
                addr: const_row as u16,
                ..Default::default()
            }));
        }
        v.last_mut().expect("a load").deps_mut().push_next = true;
        let mut ops: Vec<Instr> = Vec::new();
        let row = |base: usize| Pat { base: base as u16, step: 1, bstride: 0 };
        for blk in 0..cb {
            let n = dim.min(c - blk * dim);
            let deq_vdeq = |src: usize, src_step: u16, dst: usize, rows: usize, zp: i32, scale: f32| {
                Instr::from(ins::Vdeq {
                    src_buf: ins::BUF_SPAD,
                    in_type,
                    src: src as u16,
                    src_step,
                    dst: dst as u16,
                    dst_step: 1,
                    rows: rows as u16,
                    len: n as u16,
                    zp: zp as i16,
                    scale_imm: 1,
                    imm: scale.to_bits(),
                    ..Default::default()
                })
            };
            if !per_position {
                ops.push(deq_vdeq(in_base + blk * hb * w, 1, deq, hb * w, qx.zero_point, qx.scale));
            }
            if padded {
                // `f32(0 - 0) * 1 = +0`, ORT's starting sum, in every output.
                ops.push(deq_vdeq(const_row, 0, sums, outs, 0, 1.0));
            }
            let px = |iy: usize, ix: usize| deq + (iy - i0) * w + ix;
            let out = |oy: usize, ox: usize| sums + (oy - o0) * ow + ox;
            for oy in o0..o1 {
                let mut first = !padded;
                for i in 0..kh {
                    let Some(iy) = (oy * sh + i).checked_sub(pt).filter(|&iy| iy < h) else { continue };
                    for j in 0..kw {
                        let r = valid_outputs(ow, w, sw, j, pl);
                        if r.is_empty() {
                            continue;
                        }
                        let ix = r.start * sw + j - pl;
                        let a = if per_position {
                            let src = in_base + blk * hb * w + (iy - i0) * w + ix;
                            ops.push(deq_vdeq(src, sw as u16, deq, r.len(), qx.zero_point, qx.scale));
                            row(deq)
                        } else {
                            Pat { base: px(iy, ix) as u16, step: sw as u16, bstride: 0 }
                        };
                        let dst = row(out(oy, r.start));
                        // Unpadded, the first window position covers every
                        // output: `0 + x` starts the sums.
                        let b = if first { B::Imm(0.0) } else { B::Pat(dst) };
                        ops.push(vop(ins::VOP_ADD, dst, a, b, r.len(), n));
                        first = false;
                    }
                }
            }
            // Divide by the count, per run of outputs with the same count
            // (the outputs are consecutive rows, row after row).
            let mut o = 0;
            while o < outs {
                let k = count(o0 + o / ow, o % ow);
                let run = (o..outs).take_while(|&e| count(o0 + e / ow, e % ow) == k).count();
                // `x / 2^e` and `x * 2^-e` are the same correctly rounded
                // real, so a power-of-two count multiplies (1 cycle a beat,
                // not 4); a count of 1 changes nothing.
                if k.is_power_of_two() && k > 1 {
                    ops.push(vop(ins::VOP_MUL, row(sums + o), row(sums + o), B::Imm(1.0 / k as f32), run, n));
                } else if k != 1 {
                    ops.push(vop(ins::VOP_DIV, row(sums + o), row(sums + o), B::Imm(k as f32), run, n));
                }
                o += run;
            }
            // ORT rounds `v / s_y + zy` in float. With `zy = 0` the add
            // changes no value (`p + 0 = p`, `-0 + 0 = +0` rounds alike), so
            // `vquant` divides by `s_y` itself; else divide, add, then
            // `vquant` with scale 1 (`x / 1 = x`) only rounds and clamps.
            let out_scale = if qy.zero_point == 0 {
                qy.scale
            } else {
                ops.push(vop(ins::VOP_DIV, row(sums), row(sums), B::Imm(qy.scale), outs, n));
                ops.push(vop(ins::VOP_ADD, row(sums), row(sums), B::Imm(qy.zero_point as f32), outs, n));
                1.0
            };
            ops.push(Instr::from(ins::Vquant {
                out_type,
                src: sums as u16,
                src_step: 1,
                dst: (out_base + blk * outs) as u16,
                dst_step: 1,
                rows: outs as u16,
                len: n as u16,
                qmin,
                qmax,
                scale: out_scale.to_bits(),
                ..Default::default()
            }));
        }
        let last = ops.len() - 1;
        ops[0].deps_mut().pop_prev = true;
        ops[last].deps_mut().push_next = true;
        v.extend(ops);
        v.extend(store_feature(&rows_view(&outb, o0, o1), out_base as u16, dim, Deps { pop_prev: true, ..Deps::NONE }));
        cx.code.phase(v);
    }
    Ok(0)
}

/// A pooled value's ISA element type and integer range (int8 unless uint8:
/// the lowering only sees quantized pooling).
fn quant_type(ty: ElemType) -> (u8, i16, i16) {
    let (qmin, qmax) = ty.range().unwrap_or((-128, 127));
    (if ty == ElemType::U8 { ins::ELEM_U8 } else { ins::ELEM_I8 }, qmin as i16, qmax as i16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_outputs_are_the_windows_inside_the_map() {
        // 5 wide, kernel offset 0 with padding 1, stride 2: o * 2 - 1 in 0..5.
        assert_eq!(valid_outputs(3, 5, 2, 0, 1), 1..3);
        // Offset 2: o * 2 + 1 in 0..5 for o = 0, 1 (o = 2 reads column 5).
        assert_eq!(valid_outputs(3, 5, 2, 2, 1), 0..2);
        assert!(valid_outputs(1, 1, 1, 2, 1).is_empty());
    }

    /// Bands cover every output row once, in order, each within budget,
    /// reading the input rows its windows need.
    #[test]
    fn bands_cover_the_output_within_the_budget() {
        let (oh, h, kh, sh, pt) = (9, 18, 3, 2, 1);
        let rows = |ir: usize, or: usize| 4 * ir + or;
        let bands = pool_bands((oh, h, kh, sh, pt), rows, 40, "p", "maxpool").unwrap();
        assert!(bands.len() > 1);
        let mut next = 0;
        for &(o0, o1, i0, i1) in &bands {
            assert_eq!(o0, next);
            assert!(rows(i1 - i0, o1 - o0) <= 40);
            assert_eq!((i0, i1), ((o0 * sh).saturating_sub(pt), ((o1 - 1) * sh + kh - pt).min(h)));
            next = o1;
        }
        assert_eq!(next, oh);
        let err = pool_bands((oh, h, kh, sh, pt), rows, 5, "p", "maxpool").unwrap_err().to_string();
        assert!(err.contains("does not fit the scratchpad"), "{err}");
    }
}
