//! The arithmetic of the systolic array and the post-processing unit. The
//! array's timing lives in `machine`; here a tile's arithmetic is computed
//! with a fast loop, which gives the same bits as one PE at a time because
//! int32 addition wraps and is associative.

use isa::numerics;

/// A weight tile held by the array: `rows x cols` int8 values widened to
/// i16 (row = reduction index), and the valid `k x n` corner.
#[derive(Clone, Debug)]
pub struct WeightTile {
    pub w: Vec<i16>,
    pub k: usize,
    pub n: usize,
}

impl WeightTile {
    pub fn zero(rows: usize, cols: usize) -> WeightTile {
        WeightTile { w: vec![0; rows * cols], k: 0, n: 0 }
    }

    /// Loads a `k x n` tile from scratchpad rows (`cols` bytes each); the
    /// rest of the tile becomes zero.
    pub fn load(&mut self, spad: &[u8], addr: usize, k: usize, n: usize, cols: usize) {
        self.w.iter_mut().for_each(|v| *v = 0);
        for r in 0..k {
            let src = &spad[(addr + r) * cols..(addr + r) * cols + n];
            for (dst, &b) in self.w[r * cols..r * cols + n].iter_mut().zip(src) {
                *dst = b as i8 as i16;
            }
        }
        self.k = k;
        self.n = n;
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
    let (unsigned, accumulate) = (m.in_type == isa::instr::ELEM_U8, m.accumulate != 0);
    let total = m.m as usize;
    if m.input_contiguous() {
        return matmul(wt, rows, cols, spad, m.a as usize, total, unsigned, acc, acc_row, accumulate);
    }
    let (g, step) = (m.group_rows() as usize, m.row_step() as usize);
    let mut rows_buf = Vec::new();
    let mut i = 0;
    while i < total {
        let len = g.min(total - i);
        let first = m.input_row(i as u64) as usize;
        if step == 1 {
            matmul(wt, rows, cols, spad, first, len, unsigned, acc, acc_row + i, accumulate);
        } else {
            // Gather the group's rows, then stream them as one block.
            rows_buf.clear();
            for j in 0..len {
                let r = first + j * step;
                rows_buf.extend_from_slice(&spad[r * cols..(r + 1) * cols]);
            }
            matmul(wt, rows, cols, &rows_buf, 0, len, unsigned, acc, acc_row + i, accumulate);
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
    // A scratchpad row holds `cols` inputs: on an array with more rows than
    // columns, reduction rows past `cols` see zero inputs (ISA.md §3).
    let k = wt.k.min(rows).min(cols);
    let x = &spad[a * cols..(a + m) * cols];
    let dst = &mut acc[acc_row * cols..(acc_row + m) * cols];
    // Fixed widths let the compiler unroll and vectorize the row update.
    match cols {
        4 => stream::<4>(&wt.w, k, x, unsigned, dst, accumulate),
        8 => stream::<8>(&wt.w, k, x, unsigned, dst, accumulate),
        16 => stream::<16>(&wt.w, k, x, unsigned, dst, accumulate),
        32 => stream::<32>(&wt.w, k, x, unsigned, dst, accumulate),
        _ => stream_any(&wt.w, k, cols, x, unsigned, dst, accumulate),
    }
}

fn stream<const C: usize>(w: &[i16], k: usize, x: &[u8], unsigned: bool, dst: &mut [i32], accumulate: bool) {
    for (xrow, drow) in x.chunks_exact(C).zip(dst.chunks_exact_mut(C)) {
        let mut out = [0i32; C];
        for (r, &xb) in xrow[..k].iter().enumerate() {
            let xv = if unsigned { xb as i16 } else { xb as i8 as i16 };
            let wrow: &[i16; C] = w[r * C..r * C + C].try_into().expect("C weights");
            // |x| <= 255 and |w| <= 128: the product fits in i16.
            for c in 0..C {
                out[c] += (xv * wrow[c]) as i32;
            }
        }
        let drow: &mut [i32; C] = drow.try_into().expect("C accumulators");
        if accumulate {
            for c in 0..C {
                drow[c] = drow[c].wrapping_add(out[c]);
            }
        } else {
            *drow = out;
        }
    }
}

fn stream_any(w: &[i16], k: usize, cols: usize, x: &[u8], unsigned: bool, dst: &mut [i32], accumulate: bool) {
    let mut out = vec![0i32; cols];
    for (xrow, drow) in x.chunks_exact(cols).zip(dst.chunks_exact_mut(cols)) {
        out.iter_mut().for_each(|v| *v = 0);
        for (r, &xb) in xrow[..k].iter().enumerate() {
            let xv = if unsigned { xb as i16 } else { xb as i8 as i16 };
            for (o, &wv) in out.iter_mut().zip(&w[r * cols..(r + 1) * cols]) {
                *o += (xv * wv) as i32;
            }
        }
        if accumulate {
            for (d, o) in drow.iter_mut().zip(&out) {
                *d = d.wrapping_add(*o);
            }
        } else {
            drow.copy_from_slice(&out);
        }
    }
}

fn elem(b: u8, unsigned: bool) -> i32 {
    if unsigned {
        b as i32
    } else {
        b as i8 as i32
    }
}

/// REQUANT: accumulator rows plus per-column bias (row `params`), scaled by
/// the per-column float32 scale (row `params + 1`), zero point, clamp.
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
    let scale: Vec<f32> =
        acc[(params + 1) * cols..(params + 2) * cols].iter().map(|&b| f32::from_bits(b as u32)).collect();
    for i in 0..rows {
        for c in 0..cols {
            let v = acc[(src + i) * cols + c].wrapping_add(bias[c]);
            let q = numerics::requantize(v, scale[c], zp, qmin, qmax);
            spad[(dst + i) * cols + c] = q as u8;
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
