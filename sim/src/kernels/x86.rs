//! The x86-64 kernels. Both stream blocks of input rows per weight vector
//! load (independent accumulator chains hide the multiply-add latency),
//! then single rows; a column block past `cols` is masked.

use super::Rows;
use std::arch::x86_64::*;

/// AVX-512 VNNI. `vpdpbusd` adds four uint8 x int8 products per int32 lane,
/// without saturation. uint8 inputs go in as they are; an int8 input `x` goes
/// in as `x ^ 0x80 = x + 128` (a copy of the rows), and the accumulator
/// starts at `-128 * sum_r w[r][c]` (`neg_offset`) to cancel the offset. Every step wraps in int32,
/// so the sum is the scalar kernel's bit for bit.
///
/// # Safety
/// The host supports AVX-512 F, BW and VNNI; `quads` is `[k/4][cpad]`,
/// `neg_offset` has `cpad` entries, `rows.x` and `dst` hold `rows.m` rows of
/// `cols` (the caller asserts this).
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn stream_vnni(
    quads: &[u32],
    neg_offset: &[i32],
    cpad: usize,
    k: usize,
    cols: usize,
    rows: &Rows<'_>,
    dst: &mut [i32],
    accumulate: bool,
) {
    let groups = k.div_ceil(4);
    let m = rows.m;
    // The inputs as the unsigned operand, so that each quad is broadcast
    // straight from memory: int8 rows are copied with the offset applied.
    // A quad read past a row's `cols` bytes would read the next row (or past
    // the slice): such rows are copied with a zero-padded stride.
    let copied: Vec<u8>;
    let flip = if rows.unsigned { 0 } else { 0x80 };
    let (x, stride) = if 4 * groups > cols {
        let s = cols.next_multiple_of(4);
        copied = (0..m * s).map(|i| if i % s < cols { rows.x[i / s * cols + i % s] ^ flip } else { 0 }).collect();
        (&copied[..], s)
    } else if rows.unsigned {
        (&rows.x[..m * cols], cols)
    } else {
        copied = rows.x[..m * cols].iter().map(|b| b ^ flip).collect();
        (&copied[..], cols)
    };
    let block = VnniBlock { x: x.as_ptr(), stride, groups, wstep: cpad * 4 };
    for c0 in (0..cols).step_by(16) {
        let live = (cols - c0).min(16);
        let mask: __mmask16 = if live == 16 { 0xffff } else { (1u16 << live) - 1 };
        let init =
            if rows.unsigned { _mm512_setzero_si512() } else { _mm512_loadu_si512(neg_offset.as_ptr().add(c0).cast()) };
        let w = quads.as_ptr().add(c0).cast::<i8>();
        let out = Out { dst: dst.as_mut_ptr().add(c0), cols, mask, accumulate };
        let mut i = 0;
        while i + 8 <= m {
            for (b, v) in block.rows::<8>(w, i, init).into_iter().enumerate() {
                out.put(i + b, v);
            }
            i += 8;
        }
        while i + 4 <= m {
            for (b, v) in block.rows::<4>(w, i, init).into_iter().enumerate() {
                out.put(i + b, v);
            }
            i += 4;
        }
        for i in i..m {
            out.put(i, block.rows::<1>(w, i, init)[0]);
        }
    }
}

struct VnniBlock {
    /// `m` rows of unsigned operands, `stride` bytes apart.
    x: *const u8,
    stride: usize,
    groups: usize,
    /// Bytes between consecutive quads of one column block.
    wstep: usize,
}

impl VnniBlock {
    /// Rows `i..i + B` against one 16-column block of weights at `w`: `B`
    /// independent accumulator chains (eight hide `vpdpbusd`'s latency).
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    unsafe fn rows<const B: usize>(&self, w: *const i8, i: usize, init: __m512i) -> [__m512i; B] {
        let mut acc = [init; B];
        for g in 0..self.groups {
            let wv = _mm512_loadu_si512(w.add(g * self.wstep).cast());
            for (b, a) in acc.iter_mut().enumerate() {
                let q = self.x.add((i + b) * self.stride + 4 * g).cast::<i32>().read_unaligned();
                *a = _mm512_dpbusd_epi32(*a, _mm512_set1_epi32(q), wv);
            }
        }
        acc
    }
}

/// Where a 16-column block of results goes.
struct Out {
    dst: *mut i32,
    cols: usize,
    mask: __mmask16,
    accumulate: bool,
}

impl Out {
    #[target_feature(enable = "avx512f,avx512bw")]
    #[inline]
    unsafe fn put(&self, i: usize, mut v: __m512i) {
        let d = self.dst.add(i * self.cols);
        if self.accumulate {
            v = _mm512_add_epi32(v, _mm512_maskz_loadu_epi32(self.mask, d));
        }
        _mm512_mask_storeu_epi32(d, self.mask, v);
    }
}

/// AVX2. `vpmaddwd` multiplies int16 pairs and adds each pair into an int32
/// lane: inputs (|x| <= 255) and weights (|w| <= 128) are widened to int16,
/// so a pair's sum (|.| <= 65280) never saturates; lanes add with wrapping.
///
/// # Safety
/// The host supports AVX2; `pairs` is `[k/2][cpad][2]`, `rows.x` and `dst`
/// hold `rows.m` rows of `cols` (the caller asserts this).
#[target_feature(enable = "avx2")]
pub(super) unsafe fn stream_avx2(
    pairs: &[i16],
    cpad: usize,
    k: usize,
    cols: usize,
    rows: &Rows<'_>,
    dst: &mut [i32],
    accumulate: bool,
) {
    let np = k.div_ceil(2);
    let elem = |b: u8| if rows.unsigned { b as i16 } else { b as i8 as i16 };
    // Each row's inputs as int16 pairs, one int32 per pair, for broadcasting.
    let xp: Vec<i32> = (0..rows.m * np)
        .map(|j| {
            let (i, p) = (j / np, j % np);
            let row = &rows.x[i * cols..];
            let lo = elem(row[2 * p]) as u16 as u32;
            let hi = if 2 * p + 1 < k { elem(row[2 * p + 1]) as u16 as u32 } else { 0 };
            (lo | hi << 16) as i32
        })
        .collect();
    let block = Avx2Block { xp: xp.as_ptr(), np, wstep: cpad * 2 };
    for c0 in (0..cols).step_by(8) {
        let live = (cols - c0).min(8);
        let w = pairs.as_ptr().add(c0 * 2);
        let mut put = |i: usize, v: __m256i| {
            let mut lanes = [0i32; 8];
            _mm256_storeu_si256(lanes.as_mut_ptr().cast(), v);
            let d = &mut dst[i * cols + c0..i * cols + c0 + live];
            if accumulate {
                d.iter_mut().zip(lanes).for_each(|(d, v)| *d = d.wrapping_add(v));
            } else {
                d.copy_from_slice(&lanes[..live]);
            }
        };
        let mut i = 0;
        while i + 4 <= rows.m {
            for (b, v) in block.rows::<4>(w, i).into_iter().enumerate() {
                put(i + b, v);
            }
            i += 4;
        }
        for i in i..rows.m {
            put(i, block.rows::<1>(w, i)[0]);
        }
    }
}

struct Avx2Block {
    xp: *const i32,
    np: usize,
    /// Int16s between consecutive pairs of one column block.
    wstep: usize,
}

impl Avx2Block {
    /// Rows `i..i + B` against one 8-column block of weights at `w`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn rows<const B: usize>(&self, w: *const i16, i: usize) -> [__m256i; B] {
        let mut acc = [_mm256_setzero_si256(); B];
        for p in 0..self.np {
            let wv = _mm256_loadu_si256(w.add(p * self.wstep).cast());
            for (b, a) in acc.iter_mut().enumerate() {
                let x = _mm256_set1_epi32(*self.xp.add((i + b) * self.np + p));
                *a = _mm256_add_epi32(*a, _mm256_madd_epi16(x, wv));
            }
        }
        acc
    }
}
