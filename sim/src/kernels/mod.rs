//! The array's tile arithmetic, `acc[i][c] (+)= sum_r x[i][r] * w[r][c]`
//! over a block of input rows, in several kernels that give the same bits:
//! the portable scalar loop (the model's original kernel, also the baseline
//! the benches compare against), AVX2 (`vpmaddwd` on int16 pairs) and
//! AVX-512 VNNI (`vpdpbusd` on uint8 x int8 quads). The best the host has is
//! chosen at run time (`Kernel::best`); all are exact because int32 addition
//! wraps and is associative, and no intermediate saturates (see each kernel).
//!
//! A weight tile is packed for its kernel once per load (`Packed`), so the
//! per-row loop only broadcasts inputs and multiplies.

mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::fmt;

/// One implementation of the tile arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Portable Rust, one input row at a time (the model's first kernel).
    Scalar,
    /// AVX2: int16 pairs through `vpmaddwd`, 8 columns per vector.
    Avx2,
    /// AVX-512 VNNI: uint8 x int8 quads through `vpdpbusd`, 16 columns per
    /// vector; int8 inputs are offset by 128 and corrected per column.
    Avx512Vnni,
}

impl Kernel {
    pub const ALL: [Kernel; 3] = [Kernel::Scalar, Kernel::Avx2, Kernel::Avx512Vnni];

    /// Whether this host can run the kernel.
    pub fn available(self) -> bool {
        match self {
            Kernel::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Vnni => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The fastest kernel this host runs.
    pub fn best() -> Kernel {
        *Kernel::ALL.iter().rev().find(|k| k.available()).expect("the scalar kernel runs anywhere")
    }

    /// The kernels this host runs, slowest first.
    pub fn available_all() -> Vec<Kernel> {
        Kernel::ALL.into_iter().filter(|k| k.available()).collect()
    }

    pub fn name(self) -> &'static str {
        match self {
            Kernel::Scalar => "scalar",
            Kernel::Avx2 => "avx2",
            Kernel::Avx512Vnni => "avx512-vnni",
        }
    }
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A weight tile in the layout of one kernel. `w` is the tile as loaded
/// (`rows x cols`, row = reduction index, int8 widened to i16); `k` is the
/// number of reduction rows that see inputs (`min(k, rows, cols)`: a
/// scratchpad row holds `cols` inputs).
#[derive(Clone, Debug, Default)]
pub struct Packed {
    /// Columns rounded up to a multiple of 16 (one AVX-512 vector).
    cpad: usize,
    /// AVX-512 VNNI: `[k / 4][cpad]` quads of int8 (reduction rows in
    /// fours, the first in the low byte).
    quads: Vec<u32>,
    /// AVX-512 VNNI: `-128 * sum_r w[r][c]`, the int8 inputs' correction.
    neg_offset: Vec<i32>,
    /// AVX2: `[k / 2][cpad][2]` int16, reduction rows in pairs.
    pairs: Vec<i16>,
    /// `cols` zero weights: the rows of a last quad past `k`.
    zero_row: Vec<i16>,
}

impl Packed {
    pub fn new(kernel: Kernel, w: &[i16], k: usize, cols: usize) -> Packed {
        let mut p = Packed::default();
        p.repack(kernel, w, k, cols);
        p
    }

    /// Packs `w` again, reusing the buffers (one repack per weight load).
    pub fn repack(&mut self, kernel: Kernel, w: &[i16], k: usize, cols: usize) {
        let cpad = cols.next_multiple_of(16);
        self.cpad = cpad;
        // Rows past `k` and columns past `cols` stay zero.
        match kernel {
            Kernel::Scalar => {}
            // Indexed loops: a tile is repacked on every weight load.
            Kernel::Avx2 => {
                zeroed(&mut self.pairs, k.div_ceil(2) * cpad * 2);
                for (r, wrow) in w.chunks_exact(cols).take(k).enumerate() {
                    let dst = &mut self.pairs[r / 2 * cpad * 2..][..cpad * 2];
                    for (c, &v) in wrow.iter().enumerate() {
                        dst[2 * c + r % 2] = v;
                    }
                }
            }
            Kernel::Avx512Vnni => {
                zeroed(&mut self.quads, k.div_ceil(4) * cpad);
                zeroed(&mut self.neg_offset, cpad);
                zeroed(&mut self.zero_row, cols);
                // Column by column over four rows at once (rows past `k` are
                // zero): a loop the compiler vectorizes.
                let row = |r: usize| if r < k { &w[r * cols..(r + 1) * cols] } else { &self.zero_row[..] };
                for (g, dst) in self.quads.chunks_exact_mut(cpad).enumerate() {
                    let (r0, r1, r2, r3) = (row(4 * g), row(4 * g + 1), row(4 * g + 2), row(4 * g + 3));
                    let cols = dst.iter_mut().zip(self.neg_offset.iter_mut()).zip(r0).zip(r1).zip(r2).zip(r3);
                    for (((((quad, off), &a), &b), &c), &d) in cols {
                        let byte = |v: i16| v as u8 as u32;
                        *quad = byte(a) | byte(b) << 8 | byte(c) << 16 | byte(d) << 24;
                        *off -= 128 * (a as i32 + b as i32 + c as i32 + d as i32);
                    }
                }
            }
        }
    }
}

fn zeroed<T: Copy + Default>(v: &mut Vec<T>, len: usize) {
    v.clear();
    v.resize(len, T::default());
}

/// The rows to stream: `m` rows of `cols` input bytes (the first `k` used),
/// int8 or uint8.
pub struct Rows<'a> {
    pub x: &'a [u8],
    pub m: usize,
    pub unsigned: bool,
}

/// `dst[i][c] = (accumulate ? dst[i][c] : 0) + sum_{r < k} x[i][r] * w[r][c]`
/// for the `m` rows, with `w` (`rows x cols`) packed for `kernel` in `p`.
/// `dst` holds `m` rows of `cols` int32.
#[allow(clippy::too_many_arguments)]
pub fn stream(
    kernel: Kernel,
    w: &[i16],
    p: &Packed,
    k: usize,
    cols: usize,
    rows: Rows<'_>,
    dst: &mut [i32],
    accumulate: bool,
) {
    assert!(rows.x.len() >= rows.m * cols && dst.len() >= rows.m * cols && k <= cols);
    match kernel {
        Kernel::Scalar => scalar::stream(w, k, cols, &rows, dst, accumulate),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => {
            assert!(kernel.available() && p.pairs.len() == k.div_ceil(2) * p.cpad * 2, "AVX2 tile");
            // SAFETY: the host has AVX2 (checked above); the kernel reads and
            // writes inside the slices whose sizes are asserted here.
            unsafe { x86::stream_avx2(&p.pairs, p.cpad, k, cols, &rows, dst, accumulate) }
        }
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512Vnni => {
            assert!(kernel.available() && p.quads.len() == k.div_ceil(4) * p.cpad, "VNNI tile");
            // SAFETY: as above, for AVX-512 F/BW/VNNI.
            unsafe { x86::stream_vnni(&p.quads, &p.neg_offset, p.cpad, k, cols, &rows, dst, accumulate) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("{kernel} is x86-only"),
    }
}
