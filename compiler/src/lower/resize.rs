//! Linear (bilinear) Resize on the vector unit, bit for bit ONNX Runtime's
//! (`crate::resize`). Per output image row `oy` (source rows `y1`, `y2`,
//! distances `dy1`, `dy2`) and tile of `P` output pixels, one step of
//! `steps::chain`:
//! - LOAD: the four neighbour tiles X11 (y1, x1), X21 (y1, x2), X12 (y2,
//!   x1), X22 (y2, x2) gathered into the scratchpad, one LOAD per run of
//!   output pixels whose source column repeats (stride 0) or advances by
//!   one (stride `c`); and the pixels' column distances `dx1`, `dx2` as
//!   per-row scalars (a float32 table, every column of a row the same
//!   value) into the accumulator;
//! - COMPUTE: `vdeq` of each neighbour (the integers exactly, or ORT's
//!   DequantizeLinear), the weights `f32(dx·dy)` (`vop mul` of the scalars
//!   by the row's `dy` immediate), `v = w11·X11 + w21·X21 + w12·X12 +
//!   w22·X22` (4 `mul`, 3 `add`, left to right), then for a QOperator
//!   resize [`trunc`] and `vquant` with scale 1 (exact on integers), for a
//!   QDQ one `vquant` into the output's quantization;
//! - STORE: the output tile.
//!
//! No instruction is added for it: every step is an existing vector op.

use super::memory::Buffer;
use super::movement::row_pitch;
use super::steps::{self, Step};
use super::vector_ops::{self, vop, Kind, Pat, Scratch, B};
use super::{input_buffer, out_buffer, unsupported, Ctx};
use crate::gemm::LowerError;
use crate::ir::{ElemType, ValueId};
use crate::resize::{LinearResize, LinearRounding, Tap};
use isa::instr::{self as ins, Instr};
use isa::layout::Layout;

/// `1.5 · 2^23`: `(v + C) − C` rounds `|v| < 2^22` to an integer, ties to
/// even (the vector unit's own trick, `numerics::vector::exp`).
const ROUND_C: f32 = 12_582_912.0;

/// `trunc(v)` (toward zero) of every element of tile `a`, in place, by
/// `vop`s only, for `|v| < 2^22`; `t`, `u` are scratch tiles. With
/// `r = rint(v)` and `d = r − v` (exact: Sterbenz), `s = clamp(d·2^24, −1,
/// 1)` is `sign(d)` wherever `r ≠ 0` (then `|v| > 1/2`, so a nonzero `d` is
/// at least one ulp of `v`, ≥ 2^−24), and `u = r − s` is the integer on
/// `v`'s other side: `{r, u} = {floor v, ceil v}` (or `u` within (−1, 1)
/// of the same sign as `v` when `r = 0`). Toward zero is the one of the
/// two nearer zero: `max(min(r, u), min(max(r, u), 0))`; for `v ≥ 0`
/// (`unsigned`: interpolating non-negative values) just `min(r, u)`.
fn trunc(a: Pat, t: Pat, u: Pat, (rows, len): (usize, usize), unsigned: bool) -> Vec<Instr> {
    let mut c = vec![
        vop(ins::VOP_ADD, t, a, B::Imm(ROUND_C), rows, len),
        vop(ins::VOP_SUB, t, t, B::Imm(ROUND_C), rows, len),
        vop(ins::VOP_SUB, u, t, B::Pat(a), rows, len),
        vop(ins::VOP_MUL, u, u, B::Imm(16_777_216.0), rows, len),
        vop(ins::VOP_MAX, u, u, B::Imm(-1.0), rows, len),
        vop(ins::VOP_MIN, u, u, B::Imm(1.0), rows, len),
        vop(ins::VOP_SUB, u, t, B::Pat(u), rows, len),
        vop(ins::VOP_MIN, a, t, B::Pat(u), rows, len),
    ];
    if !unsigned {
        c.push(vop(ins::VOP_MAX, t, t, B::Pat(u), rows, len));
        c.push(vop(ins::VOP_MIN, t, t, B::Imm(0.0), rows, len));
        c.push(vop(ins::VOP_MAX, a, a, B::Pat(t), rows, len));
    }
    c
}

/// A float32 table of per-row scalars: row `i` is `dim` copies of `v[i]`.
fn scalar_rows(v: impl Iterator<Item = f32>, dim: usize) -> Vec<u8> {
    v.flat_map(|x| std::iter::repeat_n(x.to_le_bytes(), dim).flatten()).collect()
}

/// LOADs of output pixels `o0..o0 + rr` of one neighbour (source row
/// `row`, source columns `cols[o]`) into a tile at `base` column-blocked by
/// `rr` rows: one per run of pixels whose source column stays or steps by one.
fn gather(
    inb: &Buffer,
    (c, dim): (usize, usize),
    row: usize,
    cols: &[usize],
    (o0, rr): (usize, usize),
    base: u16,
) -> Vec<Instr> {
    let (pitch, first) = row_pitch(inb);
    let mut out = Vec::new();
    let mut r = 0;
    while r < rr {
        let x0 = cols[o0 + r];
        let step = match cols.get(o0 + r + 1) {
            Some(&x1) if r + 1 < rr && (x1 == x0 || x1 == x0 + 1) => x1 - x0,
            _ => 0,
        };
        let mut n = 1;
        while r + n < rr && cols[o0 + r + n] == x0 + n * step {
            n += 1;
        }
        let at = inb.addr + (first + row * pitch + x0 * c) as u64;
        for (j, c0) in (0..c).step_by(dim).enumerate() {
            out.push(Instr::from(ins::Load {
                dram: (at + c0 as u64) as u32,
                stride: (step * c) as u32,
                rows: n as u16,
                cols: dim.min(c - c0) as u16,
                addr: base + (j * rr + r) as u16,
                ..Default::default()
            }));
        }
        r += n;
    }
    out
}

/// Rows one tile of `p` pixels (`nb` column blocks) takes: scratchpad (two
/// sets of four neighbour tiles and an output tile) and accumulator (two
/// sets of two scalar rows per pixel; four float tiles and a weight row per
/// pixel shared by the steps, which COMPUTE runs one after another).
fn fits(p: usize, nb: usize, spad: usize, acc: usize) -> bool {
    2 * 5 * p * nb <= spad && 4 * p * nb + 5 * p <= acc && p * nb <= u16::MAX as usize
}

pub fn lower_resize_linear(
    cx: &mut Ctx<'_>,
    x: ValueId,
    y: ValueId,
    r: &LinearResize,
    out_halo: usize,
    node: &str,
) -> Result<u64, LowerError> {
    let err = |why: String| unsupported(node, "resize_linear", why);
    let (vx, vy) = (&cx.g.values[x], &cx.g.values[y]);
    let (tx, ty_) = (vx.ty, vy.ty);
    let (qx, qy) = (cx.quant(x), cx.quant(y));
    if r.rounding == LinearRounding::Trunc && (tx != ty_ || qx != qy) {
        return Err(err("a truncating linear resize keeps its input's type and quantization".into()));
    }
    let inb = input_buffer(cx, x, node)?.clone();
    let outb = out_buffer(cx, y, out_halo)?;
    let (Layout::Nhwc { h, w, c, .. }, Layout::Nhwc { .. }) = (&inb.layout, &outb.layout) else {
        return Err(err("only NCHW feature maps are resized".into()));
    };
    let (h, w, c) = (*h, *w, *c);
    let [rows, cols]: [Vec<Tap>; 2] = r.taps([h, w]);
    let (oh, ow) = (rows.len(), cols.len());
    let dim = cx.dim;
    let nb = c.div_ceil(dim);
    let (spad, acc) = (cx.cfg.spad_rows() as usize, cx.cfg.acc_rows() as usize);
    let mut p = ow;
    while p > 0 && !fits(p, nb, spad, acc) {
        p = p.div_ceil(2).min(p - 1);
    }
    if p == 0 {
        return Err(err(format!(
            "a pixel of {c} channels does not fit the scratchpad and accumulator with its temporaries"
        )));
    }
    let p = ow.div_ceil(ow.div_ceil(p));
    let dx1 = cx.mem.alloc_bytes(&scalar_rows(cols.iter().map(|t| t.d1), dim));
    let dx2 = cx.mem.alloc_bytes(&scalar_rows(cols.iter().map(|t| t.d2), dim));
    let (x1, x2): (Vec<usize>, Vec<usize>) = cols.iter().map(|t| (t.i1, t.i2)).unzip();
    let tile = p * nb;
    // Scratchpad: per set, neighbours k at nbr(set, k), the output at 4.
    let spad_at = |set: usize, k: usize| ((set * 5 + k) * tile) as u16;
    // Accumulator: the shared float tiles 0..4 and weights, then per set
    // the dx1, dx2 scalar rows.
    let float_at = |k: usize| (k * tile) as u16;
    let weight = (4 * tile) as u16;
    let dx_at = |set: usize, k: usize| (4 * tile + p + (set * 2 + k) * p) as u16;
    let (unsigned_in, unsigned_out) = (tx == ElemType::U8, ty_ == ElemType::U8);
    let (deq, quant) = match r.rounding {
        LinearRounding::Trunc => (
            Kind::Dequantize { scale: 1.0, zp: 0, unsigned: unsigned_in },
            Kind::Quantize { scale: 1.0, zp: 0, unsigned: unsigned_out },
        ),
        LinearRounding::Requantize => (
            Kind::Dequantize { scale: qx.scale, zp: qx.zero_point, unsigned: unsigned_in },
            Kind::Quantize { scale: qy.scale, zp: qy.zero_point, unsigned: unsigned_out },
        ),
    };
    let (out_pitch, out_first) = row_pitch(&outb);
    let no_scratch = Scratch { temp: Pat::tile(0, 1), s1: 0, s2: 0 };
    let mut list = Vec::new();
    for (oy, ry) in rows.iter().enumerate() {
        for o0 in (0..ow).step_by(p) {
            let rr = p.min(ow - o0);
            let set = list.len() % 2;
            let mut st = Step::default();
            let nbrs = [(ry.i1, &x1), (ry.i1, &x2), (ry.i2, &x1), (ry.i2, &x2)];
            for (k, (row, src_cols)) in nbrs.into_iter().enumerate() {
                st.load.extend(gather(&inb, (c, dim), row, src_cols, (o0, rr), spad_at(set, k)));
            }
            for (k, table) in [dx1, dx2].into_iter().enumerate() {
                st.load.push(Instr::from(ins::Load {
                    buf: ins::BUF_ACC,
                    dram: (table + (o0 * dim * 4) as u64) as u32,
                    stride: (dim * 4) as u32,
                    rows: rr as u16,
                    cols: dim as u16,
                    addr: dx_at(set, k),
                    ..Default::default()
                }));
            }
            let f = |k: usize| Pat::tile(float_at(k), rr);
            let wt = Pat::scalars(weight);
            for k in 0..4 {
                let src = Pat::tile(spad_at(set, k), rr);
                st.compute.extend(vector_ops::stage(&deq, (src, f(k)), 0, no_scratch, (rr, c, dim)));
            }
            // (dx, dy) of X11, X21, X12, X22: the weights in ORT's order.
            let (dx1s, dx2s) = (Pat::scalars(dx_at(set, 0)), Pat::scalars(dx_at(set, 1)));
            let wts = [(dx2s, ry.d2), (dx1s, ry.d2), (dx2s, ry.d1), (dx1s, ry.d1)];
            for (k, (dx, dy)) in wts.into_iter().enumerate() {
                st.compute.push(vop(ins::VOP_MUL, wt, dx, B::Imm(dy), rr, dim));
                st.compute.push(vop(ins::VOP_MUL, f(k), f(k), B::Pat(wt), rr, c));
                if k > 0 {
                    st.compute.push(vop(ins::VOP_ADD, f(0), f(0), B::Pat(f(k)), rr, c));
                }
            }
            if r.rounding == LinearRounding::Trunc {
                st.compute.extend(trunc(f(0), f(1), f(2), (rr, c), unsigned_in));
            }
            let out_tile = Pat::tile(spad_at(set, 4), rr);
            st.compute.extend(vector_ops::stage(&quant, (f(0), out_tile), 0, no_scratch, (rr, c, dim)));
            st.store.push(Instr::from(ins::Store {
                buf: ins::BUF_SPAD,
                dram: (outb.addr + (out_first + oy * out_pitch + o0 * c) as u64) as u32,
                stride: c as u32,
                rows: rr as u16,
                cols: c as u16,
                addr: spad_at(set, 4),
                ..Default::default()
            }));
            list.push(st);
        }
    }
    let _ = oh;
    cx.code.phase(steps::chain(list));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use isa::numerics::vector as v;

    /// [`super::trunc`]'s sequence on one value, with the vector unit's
    /// functions.
    fn trunc_by_vops(a: f32, unsigned: bool) -> f32 {
        let t = v::sub(v::add(a, super::ROUND_C), super::ROUND_C);
        let u = v::min(v::max(v::mul(v::sub(t, a), 16_777_216.0), -1.0), 1.0);
        let u = v::sub(t, u);
        let lo = v::min(t, u);
        if unsigned {
            return lo;
        }
        v::max(lo, v::min(v::max(t, u), 0.0))
    }

    #[test]
    fn the_vop_sequence_truncates_every_float_in_range() {
        // Every binary32 value of magnitude below 512 (all exponents, every
        // mantissa of a stride that covers integers, halves and neighbours).
        let mut checked = 0u64;
        for bits in
            (0u32..0x4400_0000).step_by(7).chain((0x3F00_0000..0x4400_0000).step_by(1 << 10).flat_map(|b| b - 3..b + 4))
        {
            for x in [f32::from_bits(bits), -f32::from_bits(bits)] {
                let want = x.trunc();
                assert_eq!(trunc_by_vops(x, false), want, "{x:e}");
                if x >= 0.0 {
                    assert_eq!(trunc_by_vops(x, true), want, "{x:e}");
                }
                checked += 1;
            }
        }
        assert!(checked > 300_000_000, "{checked}");
    }
}
