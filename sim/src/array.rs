//! The arithmetic of the systolic array and the post-processing unit. The
//! array's timing lives in `machine`; here a tile's arithmetic is computed
//! with a fast loop, which gives the same bits as one PE at a time because
//! int32 addition wraps and is associative.

use crate::kernels::{self, Kernel, Packed};
use isa::numerics;

/// A weight tile held by the array: `rows x cols` int8 values widened to
/// i16 (row = reduction index), the valid `k x n` corner, and the same tile
/// packed for the kernel that streams rows through it.
#[derive(Clone, Debug)]
pub struct WeightTile {
    pub w: Vec<i16>,
    pub k: usize,
    pub n: usize,
    rows: usize,
    kernel: Kernel,
    packed: Packed,
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
        WeightTile { w, k: 0, n: 0, rows, kernel, packed }
    }

    pub fn kernel(&self) -> Kernel {
        self.kernel
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
        let k = self.streamed_rows(cols);
        self.packed.repack(self.kernel, &self.w, k, cols);
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
    debug_assert_eq!(rows, wt.rows, "the tile belongs to this array");
    let x = &spad[a * cols..(a + m) * cols];
    let dst = &mut acc[acc_row * cols..(acc_row + m) * cols];
    let k = wt.streamed_rows(cols);
    kernels::stream(wt.kernel, &wt.w, &wt.packed, k, cols, kernels::Rows { x, m, unsigned }, dst, accumulate);
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
