//! The arithmetic of the systolic array and the post-processing unit. The
//! array's timing lives in `machine`; here a tile's arithmetic is computed
//! with a fast loop, which gives the same bits as one PE at a time because
//! int32 addition wraps and is associative.

use crate::kernels::{self, Kernel, Packed};
use isa::numerics;

/// A weight tile held by the array: `rows x cols` int8 values widened to
/// i16 (row = reduction index), the valid `k x n` corner, and the same tile
/// packed for the kernel that streams rows through it. A 2:4-sparse tile
/// (`load_sparse24`) keeps `w` zero and holds its dense equivalent in
/// `sparse` instead.
#[derive(Clone, Debug)]
pub struct WeightTile {
    pub w: Vec<i16>,
    pub k: usize,
    pub n: usize,
    rows: usize,
    kernel: Kernel,
    packed: Packed,
    /// i8s24: the tile is its dense int8 parts (ISA.md §3), the live ones.
    sparse: bool,
    /// The parts of the last 2:4 tile, kept to be refilled: a tile is
    /// decompressed on every `ldw`, so it reuses its buffers.
    parts: Vec<DensePart>,
    /// Scratch of `load_sparse24`: which weights of a block's first layer
    /// are taken (a second kept row at the same position goes to layer 2).
    taken: Vec<bool>,
}

/// One dense piece of a decompressed 2:4 tile: reduction rows `[0, k)` of
/// input block `block` (0: inputs `0..cols` of row `row(i)`; 1: inputs
/// `cols..2 cols`, row `row(i) + a_bstride`). Two kept rows of a group at
/// one position go to two parts, so every part is int8 and the dense
/// kernels stay exact.
#[derive(Clone, Debug)]
struct DensePart {
    block: usize,
    k: usize,
    w: Vec<i16>,
    packed: Packed,
    /// Streams: the first part (it writes the output) or one with weights.
    live: bool,
}

impl WeightTile {
    /// A zero tile streamed by the fastest kernel the host runs.
    pub fn zero(rows: usize, cols: usize) -> WeightTile {
        WeightTile::zero_with(rows, cols, Kernel::best())
    }

    /// A zero tile streamed by `kernel` (which the host must run).
    pub fn zero_with(rows: usize, cols: usize, kernel: Kernel) -> WeightTile {
        let w = vec![0; rows * cols];
        let packed = Packed::new(kernel, &w, 0, cols);
        WeightTile { w, k: 0, n: 0, rows, kernel, packed, sparse: false, parts: Vec::new(), taken: Vec::new() }
    }

    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Loads a `k x n` tile of format `wfmt` from scratchpad rows (`cols`
    /// bytes each); the rest of the tile becomes zero. An int4 tile is
    /// unpacked here (ISA.md §3 `ldw`: row `i` holds tile rows `2i` in the
    /// low and `2i + 1` in the high nibbles), so the tile the kernels
    /// stream is sign-extended int8 whatever the format.
    pub fn load(&mut self, spad: &[u8], addr: usize, k: usize, n: usize, cols: usize, wfmt: u8) {
        self.w.iter_mut().for_each(|v| *v = 0);
        for r in 0..k {
            let (row, nibble) = if wfmt == isa::instr::WFMT_I4 { (addr + r / 2, r % 2) } else { (addr + r, 2) };
            let src = &spad[row * cols..row * cols + n];
            for (dst, &b) in self.w[r * cols..r * cols + n].iter_mut().zip(src) {
                *dst = match nibble {
                    0 => numerics::int4_low(b),
                    1 => numerics::int4_high(b),
                    _ => b as i8,
                } as i16;
            }
        }
        self.k = k;
        self.n = n;
        self.sparse = false;
        let k = self.streamed_rows(cols);
        self.packed.repack(self.kernel, &self.w, k, cols);
    }

    /// Loads a `k x n` 2:4-sparse tile (`wfmt = i8s24`, ISA.md §3): kept
    /// row `r` at scratchpad row `addr + r`, its positions in bits
    /// `2 (r % 4)..` of row `meta + r / 4`. The tile is decompressed into
    /// dense int8 parts the kernels stream: `W[4 (r / 2) + p][c] = v`.
    pub fn load_sparse24(&mut self, spad: &[u8], (addr, meta): (usize, usize), k: usize, n: usize, cols: usize) {
        self.w.iter_mut().for_each(|v| *v = 0);
        self.packed.repack(self.kernel, &self.w, 0, cols);
        self.k = k;
        self.n = n;
        // Kept rows from `cols` on see inputs past `2 cols`: zeros.
        let kept = k.min(self.rows).min(cols);
        // Parts [block][layer]: weights, reduction rows used.
        if self.parts.len() != 4 || self.parts[0].w.len() != cols * cols {
            let part =
                |block| DensePart { block, k: 0, w: vec![0; cols * cols], packed: Packed::default(), live: false };
            self.parts = vec![part(0), part(0), part(1), part(1)];
            self.taken = vec![false; 2 * cols * cols];
        }
        for part in &mut self.parts {
            part.w.iter_mut().for_each(|v| *v = 0);
            part.k = 0;
        }
        self.taken.iter_mut().for_each(|t| *t = false);
        let (parts, taken) = (&mut self.parts, &mut self.taken);
        for r in 0..kept {
            let values = &spad[(addr + r) * cols..(addr + r) * cols + n];
            let positions = &spad[(meta + r / 4) * cols..(meta + r / 4) * cols + n];
            for (c, (&v, &pbyte)) in values.iter().zip(positions).enumerate() {
                let j = 4 * (r / 2) + ((pbyte >> (2 * (r % 4))) & 3) as usize;
                let (block, row) = (j / cols, j % cols);
                if block > 1 {
                    continue; // inputs from `2 cols` on are zero
                }
                let at = row * cols + c;
                let layer = taken[block * cols * cols + at] as usize;
                let part = &mut parts[2 * block + layer];
                part.w[at] = v as i8 as i16;
                taken[block * cols * cols + at] = true;
                part.k = part.k.max(row + 1);
            }
        }
        // Block 0's first layer always streams: it writes the output.
        let kernel = self.kernel;
        for (i, part) in parts.iter_mut().enumerate() {
            part.live = i == 0 || part.k > 0;
            if part.live {
                part.packed.repack(kernel, &part.w, part.k, cols);
            }
        }
        self.sparse = true;
    }

    /// True for a 2:4-sparse tile (`load_sparse24`).
    pub fn is_sparse24(&self) -> bool {
        self.sparse
    }

    /// Loads a `k x n` tile transposed (`ldw trans = 1`): weight `(r, c)`
    /// is scratchpad row `addr + c`, column `r`; the rest becomes zero.
    pub fn load_transposed(&mut self, spad: &[u8], addr: usize, k: usize, n: usize, cols: usize) {
        self.w.iter_mut().for_each(|v| *v = 0);
        for c in 0..n {
            let src = &spad[(addr + c) * cols..(addr + c) * cols + k];
            for (r, &b) in src.iter().enumerate() {
                self.w[r * cols + c] = b as i8 as i16;
            }
        }
        self.k = k;
        self.n = n;
        self.sparse = false;
        let k = self.streamed_rows(cols);
        self.packed.repack(self.kernel, &self.w, k, cols);
    }

    /// Reduction rows that see inputs: a scratchpad row holds `cols` inputs,
    /// so on an array with more rows than columns, reduction rows past `cols`
    /// see zeros (ISA.md §3).
    fn streamed_rows(&self, cols: usize) -> usize {
        self.k.min(self.rows).min(cols)
    }
}

/// A MATMUL's input rows, following its row pattern (ISA.md §3): groups of
/// rows `row_step` apart are streamed through the weights into consecutive
/// accumulator rows from `acc_row`; a contiguous pattern is one stream.
pub fn matmul_pattern(
    wt: &WeightTile,
    rows: usize,
    cols: usize,
    spad: &[u8],
    m: &isa::instr::Matmul,
    acc: &mut [i32],
    acc_row: usize,
) {
    debug_assert_eq!(rows, wt.rows, "the tile belongs to this array");
    if !wt.sparse {
        let tile = DenseTile { kernel: wt.kernel, w: &wt.w, packed: &wt.packed, k: wt.streamed_rows(cols) };
        return stream_pattern(tile, cols, spad, m, acc, acc_row);
    }
    // 2:4-sparse, decompressed: every live part streams its input block,
    // adding to what the first wrote (int32 sums wrap: the order is
    // immaterial).
    for (x, part) in wt.parts.iter().filter(|p| p.live).enumerate() {
        let a = match part.block {
            0 => m.a,
            _ if m.a_bstride == 0 => continue,
            // Inside the scratchpad (the legal span includes it).
            _ => m.a + m.a_bstride,
        };
        let mm = isa::instr::Matmul { a, accumulate: if x == 0 { m.accumulate } else { 1 }, ..*m };
        let tile = DenseTile { kernel: wt.kernel, w: &part.w, packed: &part.packed, k: part.k };
        stream_pattern(tile, cols, spad, &mm, acc, acc_row);
    }
}

/// A dense int8 tile as a kernel streams it: `k` reduction rows of `w`
/// (`cols` wide), packed for `kernel`.
#[derive(Clone, Copy)]
struct DenseTile<'a> {
    kernel: Kernel,
    w: &'a [i16],
    packed: &'a Packed,
    k: usize,
}

fn stream_pattern(
    tile: DenseTile<'_>,
    cols: usize,
    spad: &[u8],
    m: &isa::instr::Matmul,
    acc: &mut [i32],
    acc_row: usize,
) {
    let (unsigned, accumulate) = (m.in_type == isa::instr::ELEM_U8, m.accumulate != 0);
    let total = m.m as usize;
    if m.input_contiguous() {
        return stream_block(tile, cols, (spad, m.a as usize, total, unsigned), acc, acc_row, accumulate);
    }
    let (g, step) = (m.group_rows() as usize, m.row_step() as usize);
    let mut rows_buf = Vec::new();
    let mut i = 0;
    while i < total {
        let len = g.min(total - i);
        let first = m.input_row(i as u64) as usize;
        if step == 1 {
            stream_block(tile, cols, (spad, first, len, unsigned), acc, acc_row + i, accumulate);
        } else {
            // Gather the group's rows, then stream them as one block.
            rows_buf.clear();
            for j in 0..len {
                let r = first + j * step;
                rows_buf.extend_from_slice(&spad[r * cols..(r + 1) * cols]);
            }
            stream_block(tile, cols, (&rows_buf, 0, len, unsigned), acc, acc_row + i, accumulate);
        }
        i += len;
    }
}

/// Streams `m` scratchpad rows through the weights into accumulator rows:
/// `acc[i][c] = (accumulate ? acc[i][c] : 0) + sum_r x[i][r] * w[r][c]`.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    wt: &WeightTile,
    rows: usize,
    cols: usize,
    spad: &[u8],
    a: usize,
    m: usize,
    unsigned: bool,
    acc: &mut [i32],
    acc_row: usize,
    accumulate: bool,
) {
    debug_assert_eq!(rows, wt.rows, "the tile belongs to this array");
    let tile = DenseTile { kernel: wt.kernel, w: &wt.w, packed: &wt.packed, k: wt.streamed_rows(cols) };
    stream_block(tile, cols, (spad, a, m, unsigned), acc, acc_row, accumulate);
}

fn stream_block(
    tile: DenseTile<'_>,
    cols: usize,
    (spad, a, m, unsigned): (&[u8], usize, usize, bool),
    acc: &mut [i32],
    acc_row: usize,
    accumulate: bool,
) {
    let x = &spad[a * cols..(a + m) * cols];
    let dst = &mut acc[acc_row * cols..(acc_row + m) * cols];
    kernels::stream(tile.kernel, tile.w, tile.packed, tile.k, cols, kernels::Rows { x, m, unsigned }, dst, accumulate);
}

fn elem(b: u8, unsigned: bool) -> i32 {
    if unsigned {
        b as i32
    } else {
        b as i8 as i32
    }
}

/// REQUANT: accumulator rows plus per-column bias (row `params`), scaled by
/// the per-column float32 scale (row `params + 1`), zero point, clamp:
/// `numerics::requantize` per element.
#[allow(clippy::too_many_arguments)]
pub fn requant(
    acc: &[i32],
    src: usize,
    rows: usize,
    params: usize,
    spad: &mut [u8],
    dst: usize,
    cols: usize,
    zp: i32,
    qmin: i32,
    qmax: i32,
) {
    let bias = &acc[params * cols..(params + 1) * cols];
    let scale = &acc[(params + 1) * cols..(params + 2) * cols];
    let q = Requantizer::new(zp, qmin, qmax);
    let (from, to) = (&acc[src * cols..(src + rows) * cols], &mut spad[dst * cols..(dst + rows) * cols]);
    for (xrow, out) in from.chunks_exact(cols).zip(to.chunks_exact_mut(cols)) {
        q.row(xrow, bias, scale, out);
    }
}

/// `numerics::requantize` with one zero point and clamp, bit for bit, with
/// no call to libm's `rintf` (what `round_ties_even` compiles to without
/// SSE4.1) and no branch, so that a row vectorizes: where the zero point
/// and bounds are small, the product is clamped to +-2^22 first (rounding
/// is monotone and the bounds are integers, so a product past them clamps
/// to the same bound either way); adding 1.5 * 2^23 to a float that small
/// rounds it to nearest even (the sum's unit in the last place is 1) and
/// leaves the integer in the sum's low mantissa bits.
#[derive(Clone, Copy, Debug)]
struct Requantizer {
    zp: i32,
    qmin: i32,
    qmax: i32,
    /// The zero point and bounds lie within +-2^20 (16-bit fields do).
    small: bool,
}

impl Requantizer {
    const LIMIT: f32 = 4_194_304.0; // 2^22
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23

    fn new(zp: i32, qmin: i32, qmax: i32) -> Requantizer {
        let small = [zp, qmin, qmax].iter().all(|v| v.unsigned_abs() <= 1 << 20);
        Requantizer { zp, qmin, qmax, small }
    }

    #[inline]
    fn apply(&self, acc: i32, scale: f32) -> i32 {
        if !self.small {
            return numerics::requantize(acc, scale, self.zp, self.qmin, self.qmax);
        }
        self.apply_small(acc, scale)
    }

    #[inline(always)]
    fn apply_small(&self, acc: i32, scale: f32) -> i32 {
        let p = acc as f32 * scale;
        let clamped = if p.is_nan() { 0.0 } else { p.clamp(-Self::LIMIT, Self::LIMIT) };
        let r = (clamped + Self::MAGIC).to_bits() as i32 - Self::MAGIC.to_bits() as i32;
        // max then min, as `numerics`: `qmax` when `qmin > qmax`.
        (r + self.zp).max(self.qmin).min(self.qmax)
    }

    /// One row: `out[c] = requantize(x[c] + bias[c], scale[c])` (`scale` as
    /// f32 bits).
    fn row(&self, x: &[i32], bias: &[i32], scale: &[i32], out: &mut [u8]) {
        if self.small {
            for (((o, &x), &b), &s) in out.iter_mut().zip(x).zip(bias).zip(scale) {
                *o = self.apply_small(x.wrapping_add(b), f32::from_bits(s as u32)) as u8;
            }
        } else {
            for (((o, &x), &b), &s) in out.iter_mut().zip(x).zip(bias).zip(scale) {
                *o = self.apply(x.wrapping_add(b), f32::from_bits(s as u32)) as u8;
            }
        }
    }
}

/// VMAX: element-wise maximum of two strided row sets.
#[allow(clippy::too_many_arguments)]
pub fn vmax(
    spad: &mut [u8],
    cols: usize,
    a: usize,
    sa: usize,
    b: usize,
    sb: usize,
    d: usize,
    sd: usize,
    n: usize,
    unsigned: bool,
) {
    let mut row = vec![0u8; cols];
    for i in 0..n {
        for (c, out) in row.iter_mut().enumerate() {
            let x = spad[(a + i * sa) * cols + c];
            let y = spad[(b + i * sb) * cols + c];
            *out = if elem(x, unsigned) >= elem(y, unsigned) { x } else { y };
        }
        spad[(d + i * sd) * cols..(d + i * sd + 1) * cols].copy_from_slice(&row);
    }
}

/// VLUT: every byte of rows `src..src + n` through the 256-entry table in
/// rows `table..` (entry `e` at row `table + e / cols`, column `e % cols`),
/// into rows `dst..`; row by row, so a row is read before it is written.
pub fn vlut(spad: &mut [u8], cols: usize, src: usize, dst: usize, n: usize, table: usize) {
    let entries = isa::timing::LUT_ENTRIES as usize;
    let lut: Vec<u8> = spad[table * cols..table * cols + entries].to_vec();
    let mut row = vec![0u8; cols];
    for i in 0..n {
        for (out, &x) in row.iter_mut().zip(&spad[(src + i) * cols..(src + i + 1) * cols]) {
            *out = lut[x as usize];
        }
        spad[(dst + i) * cols..(dst + i + 1) * cols].copy_from_slice(&row);
    }
}

/// Parameters of a VADD besides its rows.
pub struct VaddParams {
    pub unsigned_in: bool,
    pub qmin: i32,
    pub qmax: i32,
}

/// VADD: ONNX Runtime's QLinearAdd (`numerics::qadd`) with per-column
/// `ra`, `rb`, `k` (f32 bits) from accumulator rows `params..params + 3`.
#[allow(clippy::too_many_arguments)]
pub fn vadd(
    spad: &mut [u8],
    acc: &[i32],
    cols: usize,
    a: usize,
    b: usize,
    d: usize,
    n: usize,
    params: usize,
    p: &VaddParams,
) {
    let f = |r: usize, c: usize| f32::from_bits(acc[(params + r) * cols + c] as u32);
    let qp: Vec<numerics::QaddParams> =
        (0..cols).map(|c| numerics::QaddParams { ra: f(0, c), rb: f(1, c), k: f(2, c) }).collect();
    let mut row = vec![0u8; cols];
    for i in 0..n {
        for (c, out) in row.iter_mut().enumerate() {
            let x = elem(spad[(a + i) * cols + c], p.unsigned_in);
            let y = elem(spad[(b + i) * cols + c], p.unsigned_in);
            let q = numerics::qadd(x, y, qp[c], p.qmin, p.qmax);
            *out = q as u8;
        }
        spad[(d + i) * cols..(d + i + 1) * cols].copy_from_slice(&row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The requantizer is `numerics::requantize` on every kind of product:
    /// ties (odd accumulators by halves), products past the bounds and past
    /// i32, infinities, NaN, subnormal scales, and bounds either way round.
    #[test]
    fn requantizer_is_the_numerics_contract() {
        let mut r = rand::rngs::StdRng::seed_from_u64(13);
        let mut scales = vec![0.5f32, 1.5, 0.25, 1.0, 1e-4, 3.7e-3, -0.5, 0.0, -0.0, 1e30, f32::MAX];
        scales.extend([f32::INFINITY, f32::NEG_INFINITY, f32::NAN, f32::from_bits(1), 1e-40, 4_194_304.5]);
        scales.extend((0..200).map(|_| f32::from_bits(r.gen::<u32>())));
        scales.extend((0..200).map(|_| r.gen_range(-2.0f32..2.0)));
        let mut accs: Vec<i32> = (-3000..3000).collect();
        accs.extend([i32::MIN, i32::MAX, 1 << 24, (1 << 24) + 1, -(1 << 22) - 1, 8_388_609, -8_388_609]);
        accs.extend((0..2000).map(|_| r.gen::<i32>()));
        let bounds = [(-5, -128, 127), (-128, -128, 127), (0, 0, 255), (17, 3, 9), (0, 9, 3), (100, -32768, 32767)];
        let wide = [(1 << 21, -(1 << 30), 1 << 30), (0, i32::MIN, i32::MAX), (-(1 << 25), -(1 << 26), 1 << 26)];
        for &(zp, qmin, qmax) in bounds.iter().chain(&wide) {
            let q = Requantizer::new(zp, qmin, qmax);
            for &s in &scales {
                for &a in &accs {
                    let want = numerics::requantize(a, s, zp, qmin, qmax);
                    assert_eq!(
                        q.apply(a, s),
                        want,
                        "acc {a} scale {s:e} ({:#x}) zp {zp} [{qmin}, {qmax}]",
                        s.to_bits()
                    );
                }
            }
        }
    }
}
