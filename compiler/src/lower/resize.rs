//! Linear (bilinear) Resize on the vector unit, bit for bit ONNX Runtime's
//! (`crate::resize`). Per output image row `oy` (source rows `y1`, `y2`,
//! distances `dy1`, `dy2`) and tile of `P` output pixels, one step of
//! `steps::chain`. A tile's pixels are one residue class of the output
//! columns modulo a period ([`pixel_order`]; 2 for a x2 upsample), so that
//! their source columns advance by a constant step:
//! - LOAD: the four neighbour tiles X11 (y1, x1), X21 (y1, x2), X12 (y2,
//!   x1), X22 (y2, x2) gathered into the scratchpad, one LOAD per run of
//!   the tile's pixels whose source column advances by a constant step
//!   (stride `step · c`, 0 included); and the pixels' column distances `dx1`, `dx2` as
//!   per-row scalars (a float32 table, every column of a row the same
//!   value) into the accumulator;
//! - COMPUTE: `vdeq` of each neighbour (the integers exactly, or ORT's
//!   DequantizeLinear), the weights `f32(dx·dy)` (`vop mul` of the scalars
//!   by the row's `dy` immediate), `v = w11·X11 + w21·X21 + w12·X12 +
//!   w22·X22` (4 `mul`, 3 `add`, left to right), then for a QOperator
//!   resize [`trunc`] and `vquant` with scale 1 (exact on integers), for a
//!   QDQ one `vquant` into the output's quantization;
//! - STORE: the output tile (a stride of the period's pixels).
//!
//! ORT's channels-last integer meaning (`LinearRounding::NhwcInteger`)
//! loads the same tiles with the integer weights in the scalar tables and
//! computes the int32 sum and its division by 2^20 toward zero exactly in
//! binary32 ([`interpolate_integer`]: the sum split so that every
//! intermediate is an integer below 2^24), then `vquant` with scale 1.
//!
//! No instruction is added for it: every step is an existing vector op.

use super::memory::Buffer;
use super::movement::row_pitch;
use super::steps::{self, Step};
use super::vector_ops::{self, vop, Kind, Pat, Scratch, B};
use super::{input_buffer, out_buffer, unsupported, Ctx};
use crate::gemm::LowerError;
use crate::ir::{ElemType, ValueId};
use crate::resize::{integer_weights, LinearResize, LinearRounding, Tap};
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

/// LOADs of the tile's pixels `o0..o0 + rr` of one neighbour (source row
/// `row`, source columns `cols[o]`, in the tile order of [`pixel_order`])
/// into a tile at `base` column-blocked by `rr` rows: one per run of pixels
/// whose source columns advance by a constant step (0 included).
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
            Some(&x1) if r + 1 < rr && x1 >= x0 => x1 - x0,
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

/// LOADs [`gather`] issues for source columns `cols` (one neighbour) in
/// tiles of at most `p` pixels cut from `classes`.
fn gather_runs(cols: &[usize], classes: &[std::ops::Range<usize>], p: usize) -> usize {
    let mut loads = 0;
    for class in classes {
        for o0 in class.clone().step_by(p) {
            let rr = p.min(class.end - o0);
            let mut r = 0;
            while r < rr {
                let x0 = cols[o0 + r];
                let step = if r + 1 < rr && cols[o0 + r + 1] >= x0 { cols[o0 + r + 1] - x0 } else { 0 };
                let mut n = 1;
                while r + n < rr && cols[o0 + r + n] == x0 + n * step {
                    n += 1;
                }
                loads += 1;
                r += n;
            }
        }
    }
    loads
}

/// The output columns in tile order: by residue modulo `period` (columns
/// `r, r + period, …` — where the scale is about `period` over an integer,
/// each class's source columns advance by a constant step, one LOAD for
/// many pixels instead of one per two or three), and the classes as
/// ranges of that order. Each class stores with a stride of `period` pixels.
fn pixel_order(ow: usize, period: usize) -> (Vec<usize>, Vec<std::ops::Range<usize>>) {
    let mut order = Vec::with_capacity(ow);
    let mut classes = Vec::new();
    for r in 0..period.min(ow) {
        let start = order.len();
        order.extend((r..ow).step_by(period));
        classes.push(start..order.len());
    }
    (order, classes)
}

/// Rows one tile of `p` pixels (`nb` column blocks) takes: scratchpad (two
/// sets of four neighbour tiles and an output tile) and accumulator (two
/// sets of two scalar rows per pixel; four float tiles and a weight row per
/// pixel shared by the steps, which COMPUTE runs one after another).
fn fits(p: usize, nb: usize, nf: usize, spad: usize, acc: usize) -> bool {
    2 * 5 * p * nb <= spad && nf * p * nb + 5 * p <= acc && p * nb <= u16::MAX as usize
}

/// `floor(v)` of tile `v` into `dst` for `|v| < 2^22` whose fraction is a
/// multiple of 2^−20 (`t` a scratch tile): `r = rint(v)` (the `ROUND_C`
/// trick), `s = clamp((r − v)·2^24, 0, 1)` — `r − v` is exact (as in
/// [`trunc`]) and, when positive, at least 2^−20, so `s` is 1 exactly when
/// `r > v` — and `floor = r − s`.
fn floor(dst: Pat, v: Pat, t: Pat, (rows, len): (usize, usize)) -> Vec<Instr> {
    vec![
        vop(ins::VOP_ADD, dst, v, B::Imm(ROUND_C), rows, len),
        vop(ins::VOP_SUB, dst, dst, B::Imm(ROUND_C), rows, len),
        vop(ins::VOP_SUB, t, dst, B::Pat(v), rows, len),
        vop(ins::VOP_MUL, t, t, B::Imm(16_777_216.0), rows, len),
        vop(ins::VOP_MAX, t, t, B::Imm(0.0), rows, len),
        vop(ins::VOP_MIN, t, t, B::Imm(1.0), rows, len),
        vop(ins::VOP_SUB, dst, dst, B::Pat(t), rows, len),
    ]
}

/// ORT's channels-last integer interpolation (`crate::resize::
/// interpolate_integer`) by float `vop`s, exactly. In: the neighbours X11,
/// X21, X12, X22 as floats in `f[0..4]` (integers), the per-row integer
/// weights `dx1`, `dx2` (0..=1024) as scalar patterns, the row's `dy1`,
/// `dy2`; out: the result in `f[3]`; `f[4]` is scratch. With `dy = 16·h +
/// l` (`l < 16`, split at compile time), the sum `S = dy2·Ht + dy1·Hb`
/// (`Ht = dx2·X11 + dx1·X21`, `Hb` likewise, `|Ht| ≤ 1024·255 < 2^18`) is
/// `16·U + L` with `U = h2·Ht + h1·Hb` (`h1 + h2 ≤ 64`: `|U| < 2^24`) and
/// `L = l2·Ht + l1·Hb` (`|L| ≤ 30·2^18 < 2^23`) — every product and sum an
/// integer below 2^24, exact in binary32. Then `U = 2^16·Uh + Ul` (`Uh =
/// floor(U/2^16)`, `0 ≤ Ul < 2^16`), `R = 16·Ul + L` (exact, `|R| < 2^24`),
/// `S = 2^20·Uh + R`, so `F = floor(S/2^20) = Uh + floor(R/2^20)` and `R −
/// 2^20·floor(R/2^20)` is `S mod 2^20`. Toward zero adds 1 where `F < 0`
/// (`S < 0`) and that remainder is not 0 (not needed for `unsigned` input:
/// `S ≥ 0`).
fn interpolate_integer(
    f: [Pat; 5],
    (dx1, dx2): (Pat, Pat),
    (dy1, dy2): (i32, i32),
    (rows, c): (usize, usize),
    unsigned: bool,
) -> Vec<Instr> {
    let [t0, t1, t2, t3, t4] = f;
    let op = |o: u8, d: Pat, a: Pat, b: B| vop(o, d, a, b, rows, c);
    let imm = |v: i32| B::Imm(v as f32);
    let mut v = vec![
        // Ht in t0, Hb in t2.
        op(ins::VOP_MUL, t0, t0, B::Pat(dx2)),
        op(ins::VOP_MUL, t1, t1, B::Pat(dx1)),
        op(ins::VOP_ADD, t0, t0, B::Pat(t1)),
        op(ins::VOP_MUL, t2, t2, B::Pat(dx2)),
        op(ins::VOP_MUL, t3, t3, B::Pat(dx1)),
        op(ins::VOP_ADD, t2, t2, B::Pat(t3)),
        // U in t1, L in t0.
        op(ins::VOP_MUL, t1, t0, imm(dy2 / 16)),
        op(ins::VOP_MUL, t3, t2, imm(dy1 / 16)),
        op(ins::VOP_ADD, t1, t1, B::Pat(t3)),
        op(ins::VOP_MUL, t0, t0, imm(dy2 % 16)),
        op(ins::VOP_MUL, t2, t2, imm(dy1 % 16)),
        op(ins::VOP_ADD, t0, t0, B::Pat(t2)),
        // Uh in t3, Ul in t1, R in t0.
        op(ins::VOP_MUL, t2, t1, B::Imm(1.0 / 65_536.0)),
    ];
    v.extend(floor(t3, t2, t4, (rows, c)));
    v.extend([
        op(ins::VOP_MUL, t4, t3, B::Imm(65_536.0)),
        op(ins::VOP_SUB, t1, t1, B::Pat(t4)),
        op(ins::VOP_MUL, t1, t1, B::Imm(16.0)),
        op(ins::VOP_ADD, t0, t0, B::Pat(t1)),
        // floor(R / 2^20) in t1; F in t3.
        op(ins::VOP_MUL, t2, t0, B::Imm(1.0 / 1_048_576.0)),
    ]);
    v.extend(floor(t1, t2, t4, (rows, c)));
    v.push(op(ins::VOP_ADD, t3, t3, B::Pat(t1)));
    if !unsigned {
        v.extend([
            // The remainder's "not 0" in t0, "F < 0" in t2, both 0 or 1.
            op(ins::VOP_MUL, t4, t1, B::Imm(1_048_576.0)),
            op(ins::VOP_SUB, t0, t0, B::Pat(t4)),
            op(ins::VOP_MIN, t0, t0, B::Imm(1.0)),
            op(ins::VOP_MUL, t2, t3, B::Imm(-1.0)),
            op(ins::VOP_MAX, t2, t2, B::Imm(0.0)),
            op(ins::VOP_MIN, t2, t2, B::Imm(1.0)),
            op(ins::VOP_MUL, t0, t0, B::Pat(t2)),
            op(ins::VOP_ADD, t3, t3, B::Pat(t0)),
        ]);
    }
    v
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
    if r.rounding != LinearRounding::Requantize && (tx != ty_ || qx != qy) {
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
    let integer = r.rounding == LinearRounding::NhwcInteger;
    // Float tiles: the four neighbours, and a fifth for the integer path.
    let nf = if integer { 5 } else { 4 };
    let mut p = ow;
    while p > 0 && !fits(p, nb, nf, spad, acc) {
        p = p.div_ceil(2).min(p - 1);
    }
    if p == 0 {
        return Err(err(format!(
            "a pixel of {c} channels does not fit the scratchpad and accumulator with its temporaries"
        )));
    }
    let p = ow.div_ceil(ow.div_ceil(p));
    // The tile order of the output columns with the fewest gather LOADs.
    let (order, classes) = (1..=8.min(ow))
        .map(|period| pixel_order(ow, period))
        .min_by_key(|(order, classes)| {
            let src = |f: fn(&Tap) -> usize| order.iter().map(|&o| f(&cols[o])).collect::<Vec<_>>();
            gather_runs(&src(|t| t.i1), classes, p) + gather_runs(&src(|t| t.i2), classes, p)
        })
        .expect("a period");
    let period = classes.len().max(1);
    let cols: Vec<Tap> = order.iter().map(|&o| cols[o]).collect();
    // The column distances: ORT's binary32 ones, or its 2^10-scaled integers.
    let dist = |t: &Tap| if integer { integer_weights(*t).0 as f32 } else { t.d1 };
    let dx1 = cx.mem.alloc_bytes(&scalar_rows(cols.iter().map(dist), dim));
    let dist = |t: &Tap| if integer { integer_weights(*t).1 as f32 } else { t.d2 };
    let dx2 = cx.mem.alloc_bytes(&scalar_rows(cols.iter().map(dist), dim));
    let (x1, x2): (Vec<usize>, Vec<usize>) = cols.iter().map(|t| (t.i1, t.i2)).unzip();
    let tile = p * nb;
    // Scratchpad: per set, neighbours k at nbr(set, k), the output at 4.
    let spad_at = |set: usize, k: usize| ((set * 5 + k) * tile) as u16;
    // Accumulator: the shared float tiles 0..4 and weights, then per set
    // the dx1, dx2 scalar rows.
    let float_at = |k: usize| (k * tile) as u16;
    let weight = (nf * tile) as u16;
    let dx_at = |set: usize, k: usize| (nf * tile + p + (set * 2 + k) * p) as u16;
    let (unsigned_in, unsigned_out) = (tx == ElemType::U8, ty_ == ElemType::U8);
    let (deq, quant) = match r.rounding {
        LinearRounding::Trunc | LinearRounding::NhwcInteger => (
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
    // The output tile of output row `oy`, the order's pixels `o0..o0 + rr`
    // (one class: `period` pixels apart).
    let store = |set: usize, oy: usize, o0: usize, rr: usize| {
        Instr::from(ins::Store {
            buf: ins::BUF_SPAD,
            dram: (outb.addr + (out_first + oy * out_pitch + order[o0] * c) as u64) as u32,
            stride: (period * c) as u32,
            rows: rr as u16,
            cols: c as u16,
            addr: spad_at(set, 4),
            ..Default::default()
        })
    };
    let mut list = Vec::new();
    for (oy, ry) in rows.iter().enumerate() {
        for (o0, rr) in classes.iter().flat_map(|cl| cl.clone().step_by(p).map(move |o0| (o0, p.min(cl.end - o0)))) {
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
            let (dx1s, dx2s) = (Pat::scalars(dx_at(set, 0)), Pat::scalars(dx_at(set, 1)));
            let out_tile = Pat::tile(spad_at(set, 4), rr);
            if integer {
                let tiles = [f(0), f(1), f(2), f(3), f(4)];
                let dy = integer_weights(*ry);
                st.compute.extend(interpolate_integer(tiles, (dx1s, dx2s), dy, (rr, c), unsigned_in));
                st.compute.extend(vector_ops::stage(&quant, (f(3), out_tile), 0, no_scratch, (rr, c, dim)));
                st.store.push(store(set, oy, o0, rr));
                list.push(st);
                continue;
            }
            // (dx, dy) of X11, X21, X12, X22: the weights in ORT's order.
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
            st.compute.extend(vector_ops::stage(&quant, (f(0), out_tile), 0, no_scratch, (rr, c, dim)));
            st.store.push(store(set, oy, o0, rr));
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

    fn floor_by_vops(x: f32) -> f32 {
        let r = v::sub(v::add(x, super::ROUND_C), super::ROUND_C);
        let s = v::min(v::max(v::mul(v::sub(r, x), 16_777_216.0), 0.0), 1.0);
        v::sub(r, s)
    }

    /// [`super::interpolate_integer`]'s sequence on one output, with the
    /// vector unit's functions, in the same order.
    fn integer_by_vops(x: [i32; 4], (dx1, dx2): (i32, i32), (dy1, dy2): (i32, i32), unsigned: bool) -> f32 {
        let [x11, x21, x12, x22] = x.map(|q| q as f32);
        let (dx1, dx2) = (dx1 as f32, dx2 as f32);
        let ht = v::add(v::mul(x11, dx2), v::mul(x21, dx1));
        let hb = v::add(v::mul(x12, dx2), v::mul(x22, dx1));
        let u = v::add(v::mul(ht, (dy2 / 16) as f32), v::mul(hb, (dy1 / 16) as f32));
        let l = v::add(v::mul(ht, (dy2 % 16) as f32), v::mul(hb, (dy1 % 16) as f32));
        let uh = floor_by_vops(v::mul(u, 1.0 / 65_536.0));
        let ul = v::mul(v::sub(u, v::mul(uh, 65_536.0)), 16.0);
        let r = v::add(l, ul);
        let c = floor_by_vops(v::mul(r, 1.0 / 1_048_576.0));
        let f = v::add(uh, c);
        if unsigned {
            return f;
        }
        let nz = v::min(v::sub(r, v::mul(c, 1_048_576.0)), 1.0);
        let neg = v::min(v::max(v::mul(f, -1.0), 0.0), 1.0);
        v::add(f, v::mul(nz, neg))
    }

    #[test]
    fn the_integer_vop_sequence_is_orts_integer_interpolation() {
        use crate::resize::{interpolate_integer, Tap};
        // Every pair of row weights (and the edge's 512, 512), columns'
        // in steps, neighbours at the extremes and pseudo-random.
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let tap = |d1: i32, d2: i32| {
            if d1 == 512 && d2 == 512 {
                Tap { i1: 1, i2: 1, d1: 0.5, d2: 0.5 }
            } else {
                Tap { i1: 0, i2: 1, d1: d1 as f32 / 1024.0, d2: 1.0 - d1 as f32 / 1024.0 }
            }
        };
        let weights = (0..=1024).map(|d| (d, 1024 - d)).chain([(512, 512)]);
        let mut checked = 0u64;
        for (dy1, dy2) in weights {
            for (dx1, dx2) in (0..=1024).step_by(13).map(|d| (d, 1024 - d)).chain([(512, 512), (1, 1023), (1023, 1)]) {
                for unsigned in [false, true] {
                    let (lo, hi) = if unsigned { (0, 255) } else { (-128, 127) };
                    let mut xs = vec![[hi; 4], [lo; 4], [lo, hi, lo, hi], [hi, lo, lo, hi], [lo + 1, lo, lo, lo]];
                    xs.extend((0..4).map(|_| [0; 4].map(|_| lo + (next() % 256) as i32)));
                    for x in xs {
                        let want = interpolate_integer(x, tap(dy1, dy2), tap(dx1, dx2));
                        let got = integer_by_vops(x, (dx1, dx2), (dy1, dy2), unsigned);
                        assert_eq!(got, want as f32, "x {x:?} dx ({dx1}, {dx2}) dy ({dy1}, {dy2})");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 1_000_000, "{checked}");
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
