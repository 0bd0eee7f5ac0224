//! The ISA's arithmetic, defined once (docs/DESIGN.md §2).
//!
//! Every function here is pure (no IO, no state, no allocation) and total
//! over its argument types unless a `# Panics` section says otherwise. The
//! reference interpreter, the cycle-accurate model and the RTL oracle all
//! call (or reproduce) exactly these definitions; any difference in any
//! output bit between implementations is a bug.
//!
//! Conventions:
//! - "f32" means IEEE-754 binary32 with round-to-nearest-even on every
//!   operation (Rust's `f32` arithmetic and `i32 as f32` do exactly that).
//! - Integer sums and products named "wrapping" are computed modulo 2^32
//!   (two's complement `i32`), as the hardware's int32 accumulators do.
//! - Quantized values are carried as `i32` whatever their storage width;
//!   `qmin`/`qmax` (see [`I8_RANGE`], [`U8_RANGE`]) select the width.
//!
//! The requantization here reproduces ONNX Runtime's CPU kernels
//! (QLinearConv, `com.microsoft::QGemm`, QuantizeLinear) bit for bit; the
//! `isa/tests/ort_numerics.rs` test checks it element for element against
//! ORT's own activations of the shared digits models.

pub mod vector;

/// Range of int8 quantized values: `(qmin, qmax) = (-128, 127)`.
pub const I8_RANGE: (i32, i32) = (-128, 127);

/// Range of uint8 quantized values: `(qmin, qmax) = (0, 255)`.
pub const U8_RANGE: (i32, i32) = (0, 255);

/// Clamps `q` to `[qmin, qmax]`, computed as `min(max(q, qmin), qmax)`.
///
/// Written out (rather than `i64::clamp`) so that it never panics: if
/// `qmin > qmax` the result is `qmax`, which is also what a hardware
/// max-then-min stage produces.
#[inline]
fn clamp_i64(q: i64, qmin: i32, qmax: i32) -> i32 {
    // The result lies in [qmin, qmax] (or equals qmax), so it fits in i32.
    q.max(qmin as i64).min(qmax as i64) as i32
}

/// Rounds `p` to the nearest integer, ties to even, as an `i64`.
///
/// NaN gives 0; values beyond the `i64` range (including ±inf) saturate to
/// `i64::MIN` / `i64::MAX` (Rust's float-to-int `as` saturates).
#[inline]
fn round_half_even_i64(p: f32) -> i64 {
    if p.is_nan() {
        0
    } else {
        p.round_ties_even() as i64
    }
}

/// The combined requantization scale of a quantized Conv / MatMul / Gemm
/// output channel: `f32(f32(in_scale * w_scale) / out_scale)`.
///
/// Exactly two f32 operations, in this order: first the product
/// `in_scale * w_scale` is rounded to f32, then that is divided by
/// `out_scale` and rounded to f32. This is the order ONNX Runtime uses for
/// QLinearConv and QGemm (per output channel, with per-channel `w_scale`);
/// computing it in another order (or in f64) changes the last bit of the
/// scale for some channels and therefore some outputs.
///
/// No special-casing: zero, subnormal, infinite and NaN inputs follow
/// IEEE-754 (e.g. `out_scale == 0` gives ±inf or NaN).
#[inline]
pub fn requant_scale(in_scale: f32, w_scale: f32, out_scale: f32) -> f32 {
    let prod: f32 = in_scale * w_scale;
    prod / out_scale
}

/// Requantizes an int32 accumulator to a quantized value:
/// `clamp(round_half_even(f32(acc) * scale) + zp, qmin, qmax)`.
///
/// Step by step, exactly:
/// 1. `x = acc as f32` — int32 to f32, round-to-nearest-even (exact for
///    `|acc| <= 2^24`).
/// 2. `p = x * scale` — one f32 multiply, round-to-nearest-even.
/// 3. `r = round_half_even(p)` as an integer: if `p` is NaN, `r = 0`;
///    otherwise `r = p.round_ties_even()` converted to `i64` with saturation
///    (±inf and values beyond the `i64` range saturate to `i64::MIN/MAX`).
/// 4. `q = r + zp` in `i64`, saturating.
/// 5. result = `min(max(q, qmin), qmax)` (so `qmax` if `qmin > qmax`).
///
/// This is the contract the hardware implements in integer logic on the 32
/// bits of `scale`. For finite, non-NaN `p` it equals ONNX Runtime's MLAS
/// requantization (which clamps in float before rounding — equivalent, as
/// rounding is monotone and the bounds are integers). ORT maps a NaN product
/// to `qmin`; this contract maps it to `clamp(zp)` — irrelevant for valid
/// models, whose scales are finite and positive.
#[inline]
pub fn requantize(acc: i32, scale: f32, zp: i32, qmin: i32, qmax: i32) -> i32 {
    let p: f32 = (acc as f32) * scale;
    let r = round_half_even_i64(p);
    clamp_i64(r.saturating_add(zp as i64), qmin, qmax)
}

/// ONNX QuantizeLinear of one value:
/// `clamp(round_half_even(x / scale) + zp, qmin, qmax)`.
///
/// Exactly: `p = x / scale` (one f32 division, round-to-nearest-even — a
/// division, not a multiplication by the reciprocal, as ONNX Runtime's MLAS
/// kernel does); if `p` is NaN the result is `qmin`; otherwise
/// `r = p.round_ties_even()` as `i64` (saturating), `q = r + zp` (`i64`,
/// saturating), result `min(max(q, qmin), qmax)`.
///
/// The NaN case follows ONNX Runtime's MLAS kernels (x86 and ARM), which
/// clamp the quotient in float with a NaN-discarding `max` before rounding,
/// so NaN inputs quantize to `qmin`. Note this differs from
/// [`requantize`], whose NaN product maps to `clamp(zp)`.
#[inline]
pub fn quantize(x: f32, scale: f32, zp: i32, qmin: i32, qmax: i32) -> i32 {
    let p: f32 = x / scale;
    if p.is_nan() {
        return clamp_i64(qmin as i64, qmin, qmax);
    }
    let r = round_half_even_i64(p);
    clamp_i64(r.saturating_add(zp as i64), qmin, qmax)
}

/// ONNX DequantizeLinear of one value: `((q - zp) as f32) * scale`.
///
/// The difference `q - zp` is computed exactly (in `i64`, so it cannot
/// overflow), converted to f32 with round-to-nearest-even (exact when
/// `|q - zp| <= 2^24`, e.g. for all 8-bit values), then multiplied by
/// `scale` in one f32 multiply.
#[inline]
pub fn dequantize(q: i32, scale: f32, zp: i32) -> f32 {
    let d = (q as i64) - (zp as i64);
    (d as f32) * scale
}

/// Folds the input zero point into the bias:
/// `bias - x_zero_point * weight_sum`, all in wrapping i32.
///
/// `weight_sum` is `Σ_k w[k][c]` over the reduction dimension of output
/// channel `c` (see [`weight_sum`]). Since
/// `Σ_k (x[k] - zx)·w[k] + bias = Σ_k x[k]·w[k] + (bias - zx·Σ_k w[k])`
/// exactly in modular int32 arithmetic, the array can accumulate the raw
/// products `Σ x·w` (e.g. with [`dot_i8`]) starting from the folded bias and
/// obtain the same int32 accumulator as ONNX Runtime. Weights are symmetric
/// (zero point 0), so no weight zero-point term exists.
#[inline]
pub fn fold_zero_point(bias: i32, x_zero_point: i32, weight_sum: i32) -> i32 {
    bias.wrapping_sub(x_zero_point.wrapping_mul(weight_sum))
}

/// `Σ_k w[k]` as a wrapping i32 sum: the `weight_sum` argument of
/// [`fold_zero_point`] for one output channel's weights.
#[inline]
pub fn weight_sum(w: &[i8]) -> i32 {
    w.iter().fold(0i32, |s, &v| s.wrapping_add(v as i32))
}

/// The int4 in the low nibble of `b`, sign-extended (4-bit two's
/// complement: 0x8..0xf are -8..-1). ONNX's INT4 tensors and the i4 weight
/// format (ISA.md §3 `ldw`) pack element `2i` here.
#[inline]
pub fn int4_low(b: u8) -> i8 {
    ((b << 4) as i8) >> 4
}

/// The int4 in the high nibble of `b`, sign-extended (element `2i + 1`).
#[inline]
pub fn int4_high(b: u8) -> i8 {
    (b as i8) >> 4
}

/// Two int4 values (each in -8..=7) in one byte: `lo` in the low nibble.
#[inline]
pub fn int4_pack(lo: i8, hi: i8) -> u8 {
    debug_assert!((-8..=7).contains(&lo) && (-8..=7).contains(&hi), "int4 out of range: {lo}, {hi}");
    (lo as u8 & 0x0f) | ((hi as u8) << 4)
}

/// Dot product of int8 activations and int8 weights: `Σ_k x[k]·w[k]`.
///
/// Each product is exact (fits in i32); the sum is a wrapping i32 sum, so
/// the result does not depend on the summation order.
///
/// # Panics
/// If `x.len() != w.len()`.
#[inline]
pub fn dot_i8(x: &[i8], w: &[i8]) -> i32 {
    assert_eq!(x.len(), w.len(), "dot_i8: length mismatch");
    x.iter().zip(w).fold(0i32, |s, (&a, &b)| s.wrapping_add((a as i32) * (b as i32)))
}

/// Dot product of uint8 activations and int8 weights: `Σ_k x[k]·w[k]`.
///
/// Each product is exact (fits in i32); the sum is a wrapping i32 sum, so
/// the result does not depend on the summation order. (No intermediate
/// 16-bit saturation, unlike ORT's x86 non-VNNI u8×s8 kernels without
/// `session.x64quantprecision`; see docs/DESIGN.md §2.)
///
/// # Panics
/// If `x.len() != w.len()`.
#[inline]
pub fn dot_u8(x: &[u8], w: &[i8]) -> i32 {
    assert_eq!(x.len(), w.len(), "dot_u8: length mismatch");
    x.iter().zip(w).fold(0i32, |s, (&a, &b)| s.wrapping_add((a as i32) * (b as i32)))
}

/// The per-column parameters of [`qadd`] (the `vadd` instruction's
/// parameter rows, as f32 bit patterns): the scale ratios `ra`, `rb` and the
/// fixed part `k`, which folds in the three zero points.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QaddParams {
    /// `f32(a_scale / out_scale)`.
    pub ra: f32,
    /// `f32(b_scale / out_scale)`.
    pub rb: f32,
    /// `f32(zo − fma(ra, za, f32(rb · zb)))`.
    pub k: f32,
}

/// The parameters of [`qadd`] for an add of `a` (scale `a_scale`, zero point
/// `za`) and `b` into a tensor with scale `out_scale` and zero point `zo`,
/// exactly as ONNX Runtime's QLinearAdd (MLAS, x86 AVX2 kernel) computes them:
/// `ra = f32(a_scale / out_scale)`, `rb = f32(b_scale / out_scale)`, and
/// `k = f32(zo) − fma(ra, f32(za), f32(rb · f32(zb)))` — MLAS writes
/// `zc − (ra·za + rb·zb)` and its compiler fuses the first product into the
/// sum (pinned by `isa/tests/ort_qlinear_add.rs`, whose fixture contains
/// parameter sets on which the unfused and the other fused order differ).
///
/// Total: any scales give some f32 values (ONNX requires scales finite and
/// `> 0`; the compiler checks that).
pub fn qadd_params(a_scale: f32, b_scale: f32, out_scale: f32, za: i32, zb: i32, zo: i32) -> QaddParams {
    qadd_fold(a_scale / out_scale, b_scale / out_scale, za, zb, zo)
}

/// [`QaddParams`] from the scale ratios: `k = f32(zo) − fma(ra, za, f32(rb·zb))`.
/// With `rb = 0` this moves one operand to another scale and zero point
/// (`k = zo − f32(ra·za)`): a rescale through the same datapath.
pub fn qadd_fold(ra: f32, rb: f32, za: i32, zb: i32, zo: i32) -> QaddParams {
    let k = zo as f32 - ra.mul_add(za as f32, rb * zb as f32);
    QaddParams { ra, rb, k }
}

/// x86's `cvtps2dq` (`_mm256_cvtps_epi32`): `x` rounded to the nearest
/// integer, ties to even; NaN and values outside `[-2^31, 2^31)` give
/// `i32::MIN` (the "integer indefinite" value).
#[inline]
pub fn cvt_rne_i32(x: f32) -> i32 {
    const LIMIT: f32 = 2_147_483_648.0; // 2^31
    if x.is_nan() || !(-LIMIT..LIMIT).contains(&x) {
        i32::MIN
    } else {
        x.round_ties_even() as i32
    }
}

/// The accelerator's quantized element-wise add: ONNX Runtime's QLinearAdd
/// bit for bit (MLAS's x86 AVX2 kernel, the same for every element position).
///
/// `x = fma(f32(a), ra, fma(f32(b), rb, k))` — two fused multiply-adds in
/// binary32, each rounded once to nearest even — then
/// `clamp(cvt_rne_i32(x), qmin, qmax)` ([`cvt_rne_i32`]; MLAS then saturates
/// to int16 and to the 8-bit type, which the clamp to a range inside the type
/// subsumes: an out-of-range sum gives `i32::MIN`, hence `qmin`).
/// `a`, `b` are the raw quantized operands (zero points are folded into
/// `k`, see [`qadd_params`]).
#[inline]
pub fn qadd(a: i32, b: i32, p: QaddParams, qmin: i32, qmax: i32) -> i32 {
    let x = (a as f32).mul_add(p.ra, (b as f32).mul_add(p.rb, p.k));
    cvt_rne_i32(x).max(qmin).min(qmax)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every int4 pair packs and unpacks to itself, sign-extended.
    #[test]
    fn int4_nibbles_round_trip() {
        for lo in -8..=7i8 {
            for hi in -8..=7i8 {
                let b = int4_pack(lo, hi);
                assert_eq!((int4_low(b), int4_high(b)), (lo, hi), "{b:#04x}");
            }
        }
        assert_eq!((int4_low(0x8f), int4_high(0x8f)), (-1, -8));
    }

    const QMIN: i32 = I8_RANGE.0;
    const QMAX: i32 = I8_RANGE.1;

    fn rq(acc: i32, scale: f32) -> i32 {
        requantize(acc, scale, 0, QMIN, QMAX)
    }

    #[test]
    fn ties_round_to_even() {
        assert_eq!(rq(5, 0.5), 2); // 2.5 -> 2
        assert_eq!(rq(7, 0.5), 4); // 3.5 -> 4
        assert_eq!(rq(1, 0.5), 0); // 0.5 -> 0
        assert_eq!(rq(3, 0.5), 2); // 1.5 -> 2
        assert_eq!(rq(-5, 0.5), -2); // -2.5 -> -2
        assert_eq!(rq(-7, 0.5), -4); // -3.5 -> -4
        assert_eq!(rq(-1, 0.5), 0); // -0.5 -> -0 -> 0
        assert_eq!(rq(-3, 0.5), -2); // -1.5 -> -2
                                     // Not ties: ordinary rounding.
        assert_eq!(rq(5, 0.3), 2); // 1.5000001 (f32) -> 2
        assert_eq!(rq(10, 0.26), 3); // 2.6 -> 3
        assert_eq!(rq(10, 0.24), 2); // 2.4 -> 2
                                     // Ties after the zero point is added keep the rounding of the product.
        assert_eq!(requantize(5, 0.5, 1, QMIN, QMAX), 3);
        assert_eq!(requantize(5, 0.5, -128, QMIN, QMAX), -126);
    }

    #[test]
    fn float_conversion_of_large_accumulators_rounds_to_even() {
        // 2^24 + 1 is not representable in f32: rounds to 2^24 (even).
        let acc = (1 << 24) + 1;
        assert_eq!(requantize(acc, 1.0, 0, i32::MIN, i32::MAX), 1 << 24);
        // 2^24 + 3 rounds to 2^24 + 4.
        let acc = (1 << 24) + 3;
        assert_eq!(requantize(acc, 1.0, 0, i32::MIN, i32::MAX), (1 << 24) + 4);
        // i32::MAX converts to 2^31, which then saturates only at the clamp.
        assert_eq!(requantize(i32::MAX, 1.0, 0, i32::MIN, i32::MAX), i32::MAX);
        assert_eq!(requantize(i32::MIN, 1.0, 0, i32::MIN, i32::MAX), i32::MIN);
        assert_eq!(requantize(i32::MAX, 1.0, -1, i32::MIN, i32::MAX), i32::MAX);
    }

    #[test]
    fn saturates_at_both_ends() {
        assert_eq!(rq(1000, 1.0), 127);
        assert_eq!(rq(-1000, 1.0), -128);
        assert_eq!(rq(i32::MAX, 1.0), 127);
        assert_eq!(rq(i32::MIN, 1.0), -128);
        assert_eq!(rq(127, 1.0), 127);
        assert_eq!(rq(128, 1.0), 127);
        assert_eq!(rq(-128, 1.0), -128);
        assert_eq!(rq(-129, 1.0), -128);
        // uint8 range.
        assert_eq!(requantize(-1, 1.0, 0, U8_RANGE.0, U8_RANGE.1), 0);
        assert_eq!(requantize(300, 1.0, 0, U8_RANGE.0, U8_RANGE.1), 255);
        assert_eq!(requantize(100, 1.0, 128, U8_RANGE.0, U8_RANGE.1), 228);
        // Fused ReLU as the clamp: zero point -128 and qmin -128.
        assert_eq!(requantize(-50, 1.0, -128, QMIN, QMAX), -128);
        assert_eq!(requantize(50, 1.0, -128, QMIN, QMAX), -78);
        assert_eq!(requantize(300, 1.0, -128, QMIN, QMAX), 127);
    }

    #[test]
    fn nan_and_infinite_scales() {
        // NaN product: rounded value 0, result clamp(zp).
        assert_eq!(requantize(100, f32::NAN, 0, QMIN, QMAX), 0);
        assert_eq!(requantize(100, f32::NAN, 5, QMIN, QMAX), 5);
        assert_eq!(requantize(100, f32::NAN, -128, QMIN, QMAX), -128);
        assert_eq!(requantize(100, f32::NAN, 1000, QMIN, QMAX), 127);
        // 0 * inf = NaN.
        assert_eq!(requantize(0, f32::INFINITY, 7, QMIN, QMAX), 7);
        // ±inf saturate.
        assert_eq!(rq(1, f32::INFINITY), 127);
        assert_eq!(rq(-1, f32::INFINITY), -128);
        assert_eq!(rq(1, f32::NEG_INFINITY), -128);
        assert_eq!(rq(-1, f32::NEG_INFINITY), 127);
        // Saturation then zero point: i64::MAX + zp saturates, no wrap.
        assert_eq!(requantize(1, f32::INFINITY, 100, i32::MIN, i32::MAX), i32::MAX);
        assert_eq!(requantize(-1, f32::INFINITY, -100, i32::MIN, i32::MAX), i32::MIN);
        assert_eq!(requantize(-1, f32::INFINITY, 100, i32::MIN, i32::MAX), i32::MIN);
    }

    #[test]
    fn huge_and_subnormal_scales() {
        // Huge finite scale: product overflows to inf or stays huge; saturates.
        assert_eq!(rq(2, f32::MAX), 127);
        assert_eq!(rq(-2, f32::MAX), -128);
        assert_eq!(rq(1, 1e30), 127);
        assert_eq!(requantize(1, 1e30, 0, i32::MIN, i32::MAX), i32::MAX);
        assert_eq!(requantize(-1, 1e30, 0, i32::MIN, i32::MAX), i32::MIN);
        assert_eq!(rq(0, f32::MAX), 0);
        // Subnormal scales: products are tiny, round to 0 (or -0 -> 0).
        let sub = f32::from_bits(1); // smallest positive subnormal
        assert!(sub.is_subnormal());
        assert_eq!(rq(i32::MAX, sub), 0);
        assert_eq!(rq(i32::MIN, sub), 0);
        assert_eq!(requantize(i32::MIN, sub, -3, QMIN, QMAX), -3);
        let sub_big = f32::MIN_POSITIVE / 2.0;
        assert!(sub_big.is_subnormal());
        assert_eq!(rq(1 << 30, sub_big), 0);
        // Zero and negative zero scales.
        assert_eq!(rq(123, 0.0), 0);
        assert_eq!(rq(123, -0.0), 0);
        // Negative scale just flips the sign (IEEE), no special case.
        assert_eq!(rq(10, -1.0), -10);
    }

    #[test]
    fn zero_point_addition_saturates() {
        let full = (i32::MIN, i32::MAX);
        // r + zp beyond i32 saturates at the clamp instead of wrapping.
        assert_eq!(requantize(i32::MAX, 1.0, i32::MAX, full.0, full.1), i32::MAX);
        assert_eq!(requantize(i32::MIN, 1.0, i32::MIN, full.0, full.1), i32::MIN);
        assert_eq!(requantize(100, 1.0, i32::MAX, QMIN, QMAX), 127);
        assert_eq!(requantize(-100, 1.0, i32::MIN, QMIN, QMAX), -128);
        assert_eq!(requantize(1 << 30, 4.0, i32::MAX, full.0, full.1), i32::MAX);
        // Opposite signs cancel exactly.
        assert_eq!(requantize(i32::MIN, 1.0, i32::MAX, full.0, full.1), -1);
    }

    #[test]
    fn inverted_bounds_give_qmax() {
        assert_eq!(requantize(0, 1.0, 0, 10, -10), -10);
        assert_eq!(quantize(0.0, 1.0, 0, 10, -10), -10);
    }

    #[test]
    fn requant_scale_order() {
        // f32(f32(a*b)/c), not a*(b/c) or f64.
        let (a, b, c) = (0.003_921_569_f32, 0.011_f32, 0.037_f32);
        let s = requant_scale(a, b, c);
        assert_eq!(s.to_bits(), ((a * b) / c).to_bits());
        // Find inputs where the order matters, to pin it down.
        let mut differs = 0;
        for i in 1..200u32 {
            let b = 0.001 * i as f32 + 0.000_123;
            let s = requant_scale(a, b, c);
            if s.to_bits() != (a * (b / c)).to_bits() {
                differs += 1;
            }
            assert_eq!(s.to_bits(), ((a * b) / c).to_bits());
        }
        assert!(differs > 0, "test inputs never distinguish the orders");
        assert!(requant_scale(1.0, 1.0, 0.0).is_infinite());
        assert!(requant_scale(0.0, 1.0, 0.0).is_nan());
    }

    #[test]
    fn quantize_matches_onnx() {
        let s = 1.0f32 / 255.0;
        assert_eq!(quantize(0.0, s, -128, QMIN, QMAX), -128);
        assert_eq!(quantize(1.0, s, -128, QMIN, QMAX), 127);
        assert_eq!(quantize(2.0, s, -128, QMIN, QMAX), 127);
        assert_eq!(quantize(-1.0, s, -128, QMIN, QMAX), -128);
        // Ties to even on x / scale.
        assert_eq!(quantize(2.5, 1.0, 0, QMIN, QMAX), 2);
        assert_eq!(quantize(3.5, 1.0, 0, QMIN, QMAX), 4);
        assert_eq!(quantize(-2.5, 1.0, 0, QMIN, QMAX), -2);
        assert_eq!(quantize(0.5, 1.0, 10, U8_RANGE.0, U8_RANGE.1), 10);
        // Division, not multiplication by the reciprocal: find a value
        // where they differ and check the division wins.
        let sc = 0.1f32;
        let mut found = false;
        for i in 0..100_000u32 {
            let x = i as f32 * 0.000_05;
            let div = x / sc;
            let mul = x * (1.0 / sc);
            if div.round_ties_even() != mul.round_ties_even() {
                assert_eq!(quantize(x, sc, 0, i32::MIN, i32::MAX), div.round_ties_even() as i32);
                found = true;
                break;
            }
        }
        assert!(found);
        // NaN -> qmin (ORT MLAS); ±inf saturate.
        assert_eq!(quantize(f32::NAN, s, -128, QMIN, QMAX), -128);
        assert_eq!(quantize(f32::NAN, 1.0, 128, U8_RANGE.0, U8_RANGE.1), 0);
        assert_eq!(quantize(0.0, 0.0, 3, QMIN, QMAX), -128);
        assert_eq!(quantize(f32::INFINITY, s, 0, QMIN, QMAX), 127);
        assert_eq!(quantize(f32::NEG_INFINITY, s, 0, QMIN, QMAX), -128);
        assert_eq!(quantize(1.0, 0.0, 0, QMIN, QMAX), 127);
    }

    #[test]
    fn dequantize_basic() {
        assert_eq!(dequantize(-128, 0.5, -128), 0.0);
        assert_eq!(dequantize(127, 0.5, -128), 127.5);
        assert_eq!(dequantize(3, 0.25, 5), -0.5);
        assert_eq!(dequantize(i32::MIN, 1.0, i32::MAX), -(u32::MAX as f32));
        let s = 1.0f32 / 255.0;
        for q in -128..=127 {
            assert_eq!(dequantize(q, s, -128).to_bits(), (((q + 128) as f32) * s).to_bits());
        }
    }

    #[test]
    fn zero_point_folding_is_exact() {
        let x: [i8; 5] = [-128, -1, 0, 77, 127];
        let w: [i8; 5] = [-128, 127, 5, -3, 64];
        let bias = 1234;
        for zx in [-128, -5, 0, 3, 127] {
            let direct: i32 = bias + x.iter().zip(&w).map(|(&a, &b)| (a as i32 - zx) * b as i32).sum::<i32>();
            let folded = fold_zero_point(bias, zx, weight_sum(&w)) + dot_i8(&x, &w);
            assert_eq!(direct, folded);
        }
        // Wrapping, no panic.
        assert_eq!(fold_zero_point(i32::MIN, 1, 1), i32::MAX);
        assert_eq!(fold_zero_point(0, i32::MIN, -1), i32::MIN);
    }

    #[test]
    fn dots() {
        assert_eq!(dot_i8(&[], &[]), 0);
        assert_eq!(dot_i8(&[-128, 127], &[-128, -128]), 16384 - 16256);
        assert_eq!(dot_u8(&[255, 1], &[-128, 127]), -32640 + 127);
        // Wrapping: 2^17 products of 128*128 = 2^31 wraps to i32::MIN.
        let x = vec![-128i8; 1 << 17];
        assert_eq!(dot_i8(&x, &x), i32::MIN);
        let xu = vec![255u8; 1 << 16];
        let wu = vec![-128i8; 1 << 16];
        assert_eq!(dot_u8(&xu, &wu), -(255 * 128 * (1 << 16)));
    }

    #[test]
    #[should_panic(expected = "length mismatch")]
    fn dot_length_mismatch_panics() {
        dot_i8(&[1, 2], &[1]);
    }

    #[test]
    fn cvt_is_x86_cvtps2dq() {
        assert_eq!(cvt_rne_i32(2.5), 2);
        assert_eq!(cvt_rne_i32(3.5), 4);
        assert_eq!(cvt_rne_i32(-2.5), -2);
        assert_eq!(cvt_rne_i32(-0.5), 0);
        assert_eq!(cvt_rne_i32(2_147_483_520.0), 2_147_483_520); // largest f32 < 2^31
        assert_eq!(cvt_rne_i32(2_147_483_648.0), i32::MIN);
        assert_eq!(cvt_rne_i32(-2_147_483_648.0), i32::MIN);
        assert_eq!(cvt_rne_i32(-2_147_483_904.0), i32::MIN);
        assert_eq!(cvt_rne_i32(f32::INFINITY), i32::MIN);
        assert_eq!(cvt_rne_i32(f32::NEG_INFINITY), i32::MIN);
        assert_eq!(cvt_rne_i32(f32::NAN), i32::MIN);
    }

    #[test]
    fn qadd_params_fold_zero_points() {
        let p = qadd_params(0.1, 0.1, 0.2, 3, -5, 7);
        assert_eq!((p.ra, p.rb), (0.1f32 / 0.2, 0.1f32 / 0.2));
        assert_eq!(p.k, 7.0 - (p.ra * 3.0 + p.rb * -5.0));
        // Equal scales: ra = rb = 1 and k = zo - za - zb, so the sum is exact.
        let p = qadd_params(0.05, 0.05, 0.05, 3, -7, 1);
        assert_eq!(p, QaddParams { ra: 1.0, rb: 1.0, k: 5.0 });
        assert_eq!(qadd(10, 20, p, QMIN, QMAX), 10 - 3 + 20 + 7 + 1);
    }

    #[test]
    fn qadd_rounds_ties_to_even_and_saturates() {
        let half = qadd_params(0.1, 0.1, 0.2, 0, 0, 0);
        assert_eq!(half.ra, 0.5);
        assert_eq!(qadd(1, 2, half, QMIN, QMAX), 2); // 1.5 -> 2
        assert_eq!(qadd(2, 3, half, QMIN, QMAX), 2); // 2.5 -> 2
        assert_eq!(qadd(-2, -3, half, QMIN, QMAX), -2); // -2.5 -> -2
        assert_eq!(qadd(127, 127, half, QMIN, QMAX), 127);
        assert_eq!(qadd(127, 127, half, 0, 100), 100);
        // A sum beyond the int32 range is i32::MIN, hence qmin, as on x86.
        let huge = qadd_params(1e4, 1.0, 1e-5, 0, 0, 0); // ra = 1e9
        assert_eq!(qadd(1, 0, huge, QMIN, QMAX), QMAX);
        assert_eq!(qadd(3, 0, huge, QMIN, QMAX), QMIN);
    }

    #[test]
    fn rescale_through_qadd_is_a_copy_for_equal_quantization() {
        let p = qadd_fold(1.0, 0.0, 17, 0, 17);
        for a in QMIN..=QMAX {
            assert_eq!(qadd(a, a, p, QMIN, QMAX), a);
        }
    }
}
