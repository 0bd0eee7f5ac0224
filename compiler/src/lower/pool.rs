//! Pooling: max pooling with `vmax` on the post-processor, average
//! pooling on the array (a row of ones through the window as weights), in
//! bands of output rows when the feature map exceeds the scratchpad.

use super::memory::{rows_view, Buffer};
use super::movement::{load_feature, store_feature};
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

/// Average pooling on the array: each window row's pixels are loaded as a
/// weight tile (rows = pixels, columns = channels) and a row of ones streams
/// through it, so the accumulator sums the window exactly; `requant` then
/// subtracts `count * zx` (the bias) and scales by `s_x / (s_y count)` —
/// the interpreter's integer semantics (`interp::avgpool_scale`).
pub fn lower_avgpool(
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
    // A window row is cut into tiles of at most the array's reduction.
    let tile_k = cx.dataflow.tile_shape().k;
    let ones = cx.mem.alloc(dim, 1);
    let params = cx.mem.alloc_bytes(&gemm::pack_params(&vec![bias; dim], &vec![scale; dim], dim));
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
            Instr::from(gemm::load_params(params, 2, dim, param_row as u16, Deps { push_next: true, ..Deps::NONE })),
        ]);
        let mut ops: Vec<Instr> = Vec::new();
        for blk in 0..cb {
            let n = dim.min(c - blk * dim);
            for o in 0..outs {
                let (oy, ox) = (o0 + o / ow, o % ow);
                let mut first = true;
                for i in 0..kh {
                    for j0 in (0..kw).step_by(tile_k) {
                        let k = tile_k.min(kw - j0);
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
        cx.code.phase(v);
    }
    Ok((oh * ow * count * c) as u64)
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
