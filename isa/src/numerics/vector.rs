//! The vector unit's arithmetic (docs/DESIGN.md §10): every function is a
//! fixed sequence of IEEE-754 binary32 operations, so the reference
//! interpreter, the model and the RTL agree bit for bit.
//!
//! Conventions, for every function in this module:
//! - Each `+ − × ÷ √` and each `fma` (one rounding) is binary32,
//!   round-to-nearest-even, with gradual underflow: subnormal inputs and
//!   results are kept, never flushed. No f64 anywhere at run time.
//! - NaN: any NaN result is the canonical quiet NaN [`CANONICAL_NAN`]
//!   (`0x7FC0_0000`), whatever the payloads of the inputs, so that
//!   implementations need not agree on NaN propagation. Infinities follow
//!   IEEE-754 (`∞ − ∞`, `0 × ∞` → NaN, `x / 0` → ±∞).
//! - Sequences are written as Rust on `f32`; an `fma(a, b, c)` is
//!   `a.mul_add(b, c)` (one rounding). Intermediate values of a sequence are
//!   not canonicalised; only its result is.
//! - Transcendentals: range reduction, then a polynomial in Horner form with
//!   one fma per coefficient; coefficients are f32 bit patterns (the decimal
//!   in the comment is the value they round from). Measured errors against an
//!   f64 reference are in each function's doc and asserted by
//!   `isa/tests/vector_numerics.rs`.
//!
//! Quantization: [`quantize`] is the one in [`crate::numerics`]
//! (re-exported so the vector unit's conversion is visibly the ISA's);
//! [`dequantize`] is that one with this module's one-NaN rule applied.

pub use super::quantize;

/// `f32(q − zp) · scale` ([`crate::numerics::dequantize`]), with a NaN
/// result (a NaN scale, or `0 × ∞`) made canonical like every vector-unit
/// result, so it does not depend on the host CPU's default NaN.
#[inline]
pub fn dequantize(q: i32, scale: f32, zp: i32) -> f32 {
    canonical(super::dequantize(q, scale, zp))
}

/// The one NaN the vector unit produces: quiet, positive, zero payload.
pub const CANONICAL_NAN: u32 = 0x7FC0_0000;

/// `x`, with any NaN replaced by the canonical NaN.
#[inline]
pub fn canonical(x: f32) -> f32 {
    if x.is_nan() {
        f32::from_bits(CANONICAL_NAN)
    } else {
        x
    }
}

/// Runs a sequence of `mul_add`s with the CPU's FMA instruction when it has
/// one, else through libm's `fmaf` (about 30 ns each): both compute the
/// same exactly specified fused multiply-add, so the choice changes speed,
/// never a bit.
macro_rules! with_cpu_fma {
    ($body:ident($x:expr)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "fma")]
            fn fast(x: f32) -> f32 {
                $body(x)
            }
            if std::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU has FMA (checked just above).
                return unsafe { fast($x) };
            }
        }
        $body($x)
    }};
}

/// `a + b`.
#[inline]
pub fn add(a: f32, b: f32) -> f32 {
    canonical(a + b)
}

/// `a − b`.
#[inline]
pub fn sub(a: f32, b: f32) -> f32 {
    canonical(a - b)
}

/// `a × b`.
#[inline]
pub fn mul(a: f32, b: f32) -> f32 {
    canonical(a * b)
}

/// `a ÷ b` (IEEE division, correctly rounded).
#[inline]
pub fn div(a: f32, b: f32) -> f32 {
    canonical(a / b)
}

/// `fma(a, b, c) = a × b + c` with one rounding.
#[inline]
pub fn fma(a: f32, b: f32, c: f32) -> f32 {
    canonical(a.mul_add(b, c))
}

/// The larger of `a` and `b` (IEEE-754-2019 `maximum`): NaN if either is
/// NaN; `max(−0, +0) = +0`.
#[inline]
pub fn max(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::from_bits(CANONICAL_NAN)
    } else if a > b {
        a
    } else if b > a {
        b
    } else {
        // Equal: identical bits, or ±0 — the AND of the sign bits gives +0.
        f32::from_bits(a.to_bits() & b.to_bits())
    }
}

/// The smaller of `a` and `b` (IEEE-754-2019 `minimum`): NaN if either is
/// NaN; `min(−0, +0) = −0`.
#[inline]
pub fn min(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::from_bits(CANONICAL_NAN)
    } else if a < b {
        a
    } else if b < a {
        b
    } else {
        f32::from_bits(a.to_bits() | b.to_bits())
    }
}

/// `1 ÷ x`, one correctly rounded IEEE division (0 ulp): `recip(±0) = ±∞`,
/// `recip(±∞) = ±0`.
#[inline]
pub fn recip(x: f32) -> f32 {
    div(1.0, x)
}

/// `1 ÷ √x` as two correctly rounded IEEE operations, `s = √x` then `1 ÷ s`
/// (max error 1.5 ulp: two roundings): `rsqrt(+0) = +∞`,
/// `rsqrt(−0) = −∞` (√−0 = −0), `rsqrt(+∞) = +0`, negative `x` → NaN.
/// Chosen over an estimate plus Newton steps because both operations are
/// exact IEEE ones that integer logic implements by digit recurrence.
#[inline]
pub fn rsqrt(x: f32) -> f32 {
    div(1.0, x.sqrt())
}

// exp: Cody–Waite range reduction and a degree-6 polynomial, with the
// constants of ONNX Runtime's MLAS (erf.cpp, `MlasErfConstants.Exp_*`).
const LOG2E: f32 = f32::from_bits(0x3FB8_AA3B); // 1.44269504088896341
const LN2_HI_NEG: f32 = f32::from_bits(0xBF31_7200); // -6.93145752e-1 (low 9 bits zero: n·LN2_HI exact)
const LN2_LO_NEG: f32 = f32::from_bits(0xB5BF_BE8E); // -1.42860677e-6
const ROUND_C: f32 = f32::from_bits(0x4B40_0000); // 1.5·2^23: (y + C) − C rounds y to an integer
const EXP_P: [f32; 5] = [
    f32::from_bits(0x3AB5_4C6D), // 1.38319808e-3
    f32::from_bits(0x3C09_3965), // 8.37550033e-3
    f32::from_bits(0x3D2A_AD10), // 4.16689515e-2
    f32::from_bits(0x3E2A_AA17), // 1.66664466e-1
    f32::from_bits(0x3EFF_FFFB), // 4.99999851e-1
];
/// Inputs are clamped to this range first: `exp(89)` overflows to +∞ and
/// `exp(−104)` rounds to +0, so clamping changes no result.
const EXP_CLAMP: (f32, f32) = (-104.0, 89.0);

/// `2^k` for `k` in `[−126, 127]`, built from its exponent field.
#[inline]
fn pow2(k: i32) -> f32 {
    debug_assert!((-126..=127).contains(&k));
    f32::from_bits(((k + 127) as u32) << 23)
}

/// `e^x`. Max error 1 ulp (0.86 measured on 17.8 M inputs spread over all
/// 2^32 bit patterns, `isa/tests/vector_numerics.rs`); subnormal results are correctly rounded
/// from `p · 2^n` (one rounding), `exp(+∞) = +∞`, `exp(−∞) = +0`.
///
/// Sequence:
/// 1. NaN → NaN. `x = min(max(x, −104), 89)`.
/// 2. `n = fma(x, LOG2E, C) − C` with `C = 1.5·2^23`: `x·log2 e` rounded
///    to the nearest integer, ties to even (`n` in `[−150, 128]`).
/// 3. `f = fma(n, −LN2_HI, x)`, then `f = fma(n, −LN2_LO, f)`:
///    `f ≈ x − n·ln 2` in `[−0.35, 0.35]`.
/// 4. `p = P0`; `p = fma(p, f, Pi)` for `i = 1..4`; `p = fma(p, f, 1)`;
///    `p = fma(p, f, 1)` (degree 6, `p ≈ e^f`).
/// 5. `h = n >> 1` (arithmetic); `y = (p · 2^h) · 2^(n−h)` — the first
///    product is exact, the second rounds once (overflow → +∞, underflow
///    → subnormal or +0).
pub fn exp(x: f32) -> f32 {
    with_cpu_fma!(exp_seq(x))
}

#[inline(always)]
fn exp_seq(x: f32) -> f32 {
    if x.is_nan() {
        return f32::from_bits(CANONICAL_NAN);
    }
    let x = x.clamp(EXP_CLAMP.0, EXP_CLAMP.1);
    let n = x.mul_add(LOG2E, ROUND_C) - ROUND_C;
    let f = n.mul_add(LN2_HI_NEG, x);
    let f = n.mul_add(LN2_LO_NEG, f);
    let mut p = EXP_P[0];
    for &c in &EXP_P[1..] {
        p = p.mul_add(f, c);
    }
    p = p.mul_add(f, 1.0);
    p = p.mul_add(f, 1.0);
    let n = n as i32;
    let h = n >> 1;
    (p * pow2(h)) * pow2(n - h)
}

// erf: the minimax approximations of N. Juffa ("Efficient faithfully-rounded
// implementation of erff", Stack Overflow 35148198), as carried by ONNX
// Runtime's MLAS erf.cpp (`MlasErfConstants.ErfSMALL_*`, `ErfBIG_*`).
const ERF_SPLIT: f32 = f32::from_bits(0x3F6C_0000); // 0.921875
const ERF_CLAMP: f32 = f32::from_bits(0x406E_6666); // 3.725
/// From here on erf rounds to 1 in binary32 (1 − erf(3.925) < 2^-25).
const ERF_ONE: f32 = f32::from_bits(0x407B_3333); // 3.925
const ERF_SMALL: [f32; 6] = [
    f32::from_bits(0xBA1D_0D41), // -5.99104969e-4
    f32::from_bits(0x3BA3_9FA4), // 4.99339588e-3
    f32::from_bits(0xBCDB_45E9), // -2.67667342e-2
    f32::from_bits(0x3DE7_0D23), // 1.12818025e-1
    f32::from_bits(0xBEC0_9370), // -3.76124859e-1
    f32::from_bits(0x3E03_75D3), // 1.28379151e-1 (2/√π − 1)
];
const ERF_BIG: [f32; 7] = [
    f32::from_bits(0x3791_1480), // 1.72948930e-5
    f32::from_bits(0xB9C8_E966), // -3.83208680e-4
    f32::from_bits(0x3B7E_899B), // 3.88393435e-3
    f32::from_bits(0xBCC6_B180), // -2.42545605e-2
    f32::from_bits(0x3DDA_AE58), // 1.06777847e-1
    f32::from_bits(0x3F22_8550), // 6.34846687e-1
    f32::from_bits(0x3E03_CE86), // 1.28717512e-1
];

/// The error function. Max error 2 ulp (1.52 measured, near 3.92, as for
/// [`exp`]); `erf(±0) = ±0`, `erf(±∞) = ±1`.
///
/// Sequence, with `a = |x|`:
/// - NaN → NaN.
/// - `a ≤ 0.921875`: `s = x · x`; `r = S0`; `r = fma(r, s, Si)` for
///   `i = 1..5`; result `fma(r, x, x)` (odd: `x + x·R(x²)`).
/// - `a ≥ 3.925`: ±1 with the sign of `x` (the correctly rounded value).
/// - otherwise (`a > 0.921875`): `t = min(a, 3.725)`; `r = B0`; `r = fma(r, t, Bi)` for
///   `i = 1..6`; `r = fma(r, t, t)` (`r ≈ −ln(1 − erf t)`);
///   `y = 1 − exp(−r)` with [`exp`]; result `y` with the sign bit of `x`.
pub fn erf(x: f32) -> f32 {
    with_cpu_fma!(erf_seq(x))
}

#[inline(always)]
fn erf_seq(x: f32) -> f32 {
    if x.is_nan() {
        return f32::from_bits(CANONICAL_NAN);
    }
    let a = x.abs();
    if a <= ERF_SPLIT {
        let s = x * x;
        let mut r = ERF_SMALL[0];
        for &c in &ERF_SMALL[1..] {
            r = r.mul_add(s, c);
        }
        r.mul_add(x, x)
    } else if a >= ERF_ONE {
        1f32.copysign(x)
    } else {
        let t = a.min(ERF_CLAMP);
        let mut r = ERF_BIG[0];
        for &c in &ERF_BIG[1..] {
            r = r.mul_add(t, c);
        }
        r = r.mul_add(t, t);
        let y = 1.0 - exp_seq(-r);
        y.copysign(x)
    }
}

// tanh: the rational approximation of Eigen's `ptanh_float`, as carried by
// ONNX Runtime's MLAS tanh.cpp (`MlasTanhConstants`).
const TANH_CLAMP: f32 = 9.0;
const TANH_ALPHA: [f32; 7] = [
    f32::from_bits(0xA59F_25C0), // α13 = -2.76076847742355e-16
    f32::from_bits(0x2A61_337E), // α11 = 2.00018790482477e-13
    f32::from_bits(0xAEBD_37FF), // α9 = -8.60467152213735e-11
    f32::from_bits(0x335C_0041), // α7 = 5.12229709037114e-08
    f32::from_bits(0x3779_434A), // α5 = 1.48572235717979e-05
    f32::from_bits(0x3A27_0DED), // α3 = 6.37261928875436e-04
    f32::from_bits(0x3BA0_59DC), // α1 = 4.89352455891786e-03
];
const TANH_BETA: [f32; 4] = [
    f32::from_bits(0x35A0_D3D8), // β6 = 1.19825839466702e-06
    f32::from_bits(0x38F8_95D6), // β4 = 1.18534705686654e-04
    f32::from_bits(0x3B14_AA05), // β2 = 2.26843463243900e-03
    f32::from_bits(0x3BA0_59DD), // β0 = 4.89352518554385e-03
];

/// The hyperbolic tangent. Max error 5 ulp (4.78 measured, near ±8, as for
/// [`exp`]); `tanh(±0) = ±0`; `|x| ≥ 9` gives
/// `±tanh(9)` rounded by the formula (`±0.99999994`, one ulp below 1).
///
/// Sequence: NaN → NaN; `c = min(max(x, −9), 9)`; `s = c · c`;
/// `p = fma(s, α13, α11)`, then `p = fma(p, s, α)` for α9, α7, α5, α3, α1;
/// `q = fma(s, β6, β4)`, then `q = fma(q, s, β)` for β2, β0; result
/// `(p ÷ q) · c`. (Eigen and MLAS compute `(p · c) ÷ q`; dividing first
/// keeps tiny `x` from losing bits to a subnormal `p · c`.)
pub fn tanh(x: f32) -> f32 {
    with_cpu_fma!(tanh_seq(x))
}

#[inline(always)]
fn tanh_seq(x: f32) -> f32 {
    if x.is_nan() {
        return f32::from_bits(CANONICAL_NAN);
    }
    let c = x.clamp(-TANH_CLAMP, TANH_CLAMP);
    let s = c * c;
    let mut p = s.mul_add(TANH_ALPHA[0], TANH_ALPHA[1]);
    for &a in &TANH_ALPHA[2..] {
        p = p.mul_add(s, a);
    }
    let mut q = s.mul_add(TANH_BETA[0], TANH_BETA[1]);
    for &b in &TANH_BETA[2..] {
        q = q.mul_add(s, b);
    }
    (p / q) * c
}

/// Reduces a row the way the vector unit's lanes do: lane `i` folds
/// `xs[i], xs[i + lanes], xs[i + 2·lanes], …` in order into an accumulator
/// that starts at `init`; then the lane accumulators are combined by a
/// pairwise tree, level by level — `a[k] = op(a[2k], a[2k+1])`, an odd last
/// one passing through unchanged — until one is left.
///
/// # Panics
/// If `lanes == 0`.
pub fn lane_reduce(xs: &[f32], lanes: usize, init: f32, op: fn(f32, f32) -> f32) -> f32 {
    assert!(lanes > 0, "vector reduction with zero lanes");
    let mut acc = vec![init; lanes];
    for (i, &x) in xs.iter().enumerate() {
        acc[i % lanes] = op(acc[i % lanes], x);
    }
    while acc.len() > 1 {
        let next: Vec<f32> = acc.chunks(2).map(|p| if p.len() == 2 { op(p[0], p[1]) } else { p[0] }).collect();
        acc = next;
    }
    acc[0]
}

/// `Σ xs` in the vector unit's order (lane accumulators then a pairwise
/// tree, see [`lane_reduce`]); lanes start at −0, the exact identity of `+`,
/// so an empty row sums to −0 and idle lanes change nothing.
///
/// # Panics
/// If `lanes == 0`.
pub fn sum_row(xs: &[f32], lanes: usize) -> f32 {
    canonical(lane_reduce(xs, lanes, -0.0, |a, b| a + b))
}

/// `max xs` with [`max`] in the vector unit's order; lanes start at −∞, so
/// an empty row gives −∞; a NaN anywhere gives NaN.
///
/// # Panics
/// If `lanes == 0`.
pub fn max_row(xs: &[f32], lanes: usize) -> f32 {
    lane_reduce(xs, lanes, f32::NEG_INFINITY, max)
}

/// ONNX LayerNormalization over one row (last axis), as the compiler emits
/// it for the vector unit (`n = x.len()`, all operations as defined above):
/// 1. `inv_n = recip(n)`; `mean = sum_row(x) · inv_n`;
/// 2. `d_i = x_i − mean`; `var = sum_row(d_i · d_i) · inv_n`;
/// 3. `r = rsqrt(var + eps)`;
/// 4. `y_i = (d_i · r) · gamma_i + beta_i` (a multiply then an add, not an
///    fma).
///
/// # Panics
/// If `gamma` or `beta` is shorter than `x`, or `lanes == 0`.
pub fn layer_norm_row(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, lanes: usize) -> Vec<f32> {
    assert!(gamma.len() >= x.len() && beta.len() >= x.len(), "layer_norm_row: gamma/beta shorter than the row");
    let inv_n = recip(x.len() as f32);
    let mean = mul(sum_row(x, lanes), inv_n);
    let d: Vec<f32> = x.iter().map(|&v| sub(v, mean)).collect();
    let sq: Vec<f32> = d.iter().map(|&v| mul(v, v)).collect();
    let var = mul(sum_row(&sq, lanes), inv_n);
    let r = rsqrt(add(var, eps));
    d.iter().zip(gamma).zip(beta).map(|((&v, &g), &b)| add(mul(mul(v, r), g), b)).collect()
}

/// Softmax over one row (last axis), as the compiler emits it:
/// `m = max_row(x)`; `e_i = exp(x_i − m)`; `s = sum_row(e)`; `r = recip(s)`;
/// `y_i = e_i · r` (one reciprocal per row and a multiply per element,
/// rather than a division per element). Masks are applied before, as adds
/// (padding: a broadcast row of 0 / large negative; causal: the `vmask`
/// instruction); a row that is all −∞ gives NaN.
///
/// # Panics
/// If `lanes == 0`.
pub fn softmax_row(x: &[f32], lanes: usize) -> Vec<f32> {
    let m = max_row(x, lanes);
    let e: Vec<f32> = x.iter().map(|&v| exp(sub(v, m))).collect();
    let r = recip(sum_row(&e, lanes));
    e.iter().map(|&v| mul(v, r)).collect()
}

/// `√2` as the exporter's f32 constant (0x3FB504F3).
pub const GELU_SQRT2: f32 = f32::from_bits(0x3FB5_04F3);
/// `√(2/π)` as the exporter's f32 constant (0x3F4C422A).
pub const GELU_SQRT_2_OVER_PI: f32 = f32::from_bits(0x3F4C_422A);
/// `0.044715` as the exporter's f32 constant (0x3D372713).
pub const GELU_CUBIC: f32 = f32::from_bits(0x3D37_2713);

/// GELU, Erf form, in the order PyTorch's exporter writes it (BERT):
/// `((x · (erf(x ÷ √2) + 1)) · 0.5`.
pub fn gelu_erf(x: f32) -> f32 {
    mul(mul(x, add(erf(div(x, GELU_SQRT2)), 1.0)), 0.5)
}

/// GELU, tanh form, in the order GPT-2's `NewGELU` exports:
/// `(x · 0.5) · (tanh((x + ((x·x)·x) · 0.044715) · √(2/π)) + 1)`
/// (ORT's `Pow(x, 3)` is `(x·x)·x`).
pub fn gelu_tanh(x: f32) -> f32 {
    let cube = mul(mul(x, x), x);
    let inner = mul(add(x, mul(cube, GELU_CUBIC)), GELU_SQRT_2_OVER_PI);
    mul(mul(x, 0.5), add(tanh(inner), 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_min_signed_zero_and_nan() {
        assert_eq!(max(-0.0, 0.0).to_bits(), 0);
        assert_eq!(max(0.0, -0.0).to_bits(), 0);
        assert_eq!(min(-0.0, 0.0).to_bits(), 0x8000_0000);
        assert_eq!(min(0.0, -0.0).to_bits(), 0x8000_0000);
        assert_eq!(max(f32::NAN, 1.0).to_bits(), CANONICAL_NAN);
        assert_eq!(min(1.0, -f32::NAN).to_bits(), CANONICAL_NAN);
        assert_eq!(max(1.0, 2.0), 2.0);
        assert_eq!(min(1.0, 2.0), 1.0);
        assert_eq!(max(f32::NEG_INFINITY, -3.0), -3.0);
    }

    #[test]
    fn nan_results_are_canonical() {
        let odd_nan = f32::from_bits(0xFFC0_1234);
        for v in [
            add(odd_nan, 1.0),
            mul(0.0, f32::INFINITY),
            sub(f32::INFINITY, f32::INFINITY),
            exp(odd_nan),
            erf(odd_nan),
            tanh(odd_nan),
            rsqrt(-1.0),
        ] {
            assert_eq!(v.to_bits(), CANONICAL_NAN);
        }
    }

    #[test]
    fn special_values() {
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(f32::NEG_INFINITY).to_bits(), 0);
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(89.0), f32::INFINITY);
        assert!(exp(-100.0) > 0.0 && exp(-100.0).is_subnormal());
        assert_eq!(erf(0.0).to_bits(), 0);
        assert_eq!(erf(-0.0).to_bits(), 0x8000_0000);
        assert_eq!(erf(f32::INFINITY), 1.0);
        assert_eq!(erf(f32::NEG_INFINITY), -1.0);
        assert_eq!(tanh(-0.0).to_bits(), 0x8000_0000);
        assert_eq!(tanh(f32::INFINITY), tanh(9.0));
        assert_eq!(recip(-0.0), f32::NEG_INFINITY);
        assert_eq!(rsqrt(0.0), f32::INFINITY);
        assert_eq!(rsqrt(-0.0), f32::NEG_INFINITY);
        assert_eq!(rsqrt(4.0), 0.5);
    }

    #[test]
    fn reductions_follow_the_lane_order() {
        // Lane accumulation then a pairwise tree: with 2 lanes,
        // (1e8 + 1 + -1e8 ...) orders differ from a left fold.
        let xs = [1e8f32, 1.0, -1e8, 1.0];
        // lane0: 1e8 + -1e8 = 0; lane1: 1 + 1 = 2 → 2.
        assert_eq!(sum_row(&xs, 2), 2.0);
        // 1 lane: ((1e8 + 1) − 1e8) + 1 = 0 + 1 = 1 (1e8 + 1 rounds to 1e8).
        assert_eq!(sum_row(&xs, 1), 1.0);
        // Three lanes: [1e8 + 1, 1, −1e8] → tree ((1e8+1)+1) + (−1e8) = 0.
        assert_eq!(sum_row(&xs, 3), 0.0);
        assert_eq!(sum_row(&[], 4).to_bits(), 0x8000_0000);
        assert_eq!(sum_row(&[-0.0, -0.0], 4).to_bits(), 0x8000_0000);
        assert_eq!(max_row(&[3.0, -1.0, 7.0, 2.0, 5.0], 2), 7.0);
        assert_eq!(max_row(&[], 2), f32::NEG_INFINITY);
    }

    #[test]
    fn composites_are_sane() {
        let x: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let g = vec![1.0; 37];
        let b = vec![0.0; 37];
        let y = layer_norm_row(&x, &g, &b, 1e-5, 16);
        let mean: f32 = y.iter().sum::<f32>() / 37.0;
        let var: f32 = y.iter().map(|v| v * v).sum::<f32>() / 37.0;
        assert!(mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4, "{mean} {var}");
        let p = softmax_row(&x, 16);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert!(p.iter().all(|&v| v > 0.0));
        assert!((gelu_erf(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((gelu_tanh(1.0) - 0.841_192).abs() < 1e-5);
        assert_eq!(gelu_erf(0.0), 0.0);
    }
}
