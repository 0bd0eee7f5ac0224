//! Measures the vector unit's transcendentals against an f64 reference and
//! asserts the error bounds their docs state (`isa::numerics::vector`).
//!
//! Inputs: 2^24 (16.8 M) bit patterns spread over all 2^32 (every 256th pattern, the
//! low byte varied by a hash), plus dense sweeps of the ranges where the
//! functions switch formulas. Errors are in ulps of the f32 nearest the
//! reference (subnormal ulp 2^-149). Print the measured maxima with
//! `cargo test --release -p isa --test vector_numerics -- --nocapture`.

use isa::numerics::vector as v;

/// ulp of the binary32 format at magnitude `y` (from the exact reference).
fn ulp_at(y: f64) -> f64 {
    let a = y.abs();
    if a < f32::MIN_POSITIVE as f64 {
        return 2f64.powi(-149);
    }
    // Largest power of two ≤ a, then 23 bits down; above f32::MAX the ulp
    // of the largest binade.
    let e = a.log2().floor().min(127.0) as i32;
    2f64.powi(e - 23)
}

/// Error of `got` in ulps of the reference `want`; exact matches of
/// infinities count 0, mismatched infinities or NaNs count infinity.
fn ulps(got: f32, want: f64) -> f64 {
    if want.is_nan() || got.is_nan() {
        return if want.is_nan() && got.is_nan() { 0.0 } else { f64::INFINITY };
    }
    let want_f32 = want as f32; // the correctly rounded result
    if want_f32.is_infinite() || got.is_infinite() {
        // Overflow: both must round to the same infinity.
        return if got == want_f32 { 0.0 } else { ((got as f64) - want).abs() / ulp_at(want) };
    }
    ((got as f64) - want).abs() / ulp_at(want)
}

/// 2^24 inputs spread over all bit patterns, plus extra dense ranges.
fn inputs(dense: &[(f32, f32)]) -> Vec<f32> {
    let mut xs: Vec<f32> = (0..1u32 << 24)
        .map(|i| {
            let low = i.wrapping_mul(0x9E37_79B9) >> 24;
            f32::from_bits((i << 8) | low)
        })
        .collect();
    for &(lo, hi) in dense {
        let n = 1 << 20;
        xs.extend((0..n).map(|i| lo + (hi - lo) * (i as f32 / n as f32)));
    }
    xs
}

fn max_error(f: fn(f32) -> f32, reference: fn(f64) -> f64, dense: &[(f32, f32)]) -> (f64, f32) {
    let mut worst = (0.0f64, 0.0f32);
    for x in inputs(dense) {
        let e = ulps(f(x), reference(x as f64));
        if e > worst.0 || e.is_nan() {
            worst = (e, x);
        }
    }
    worst
}

/// erf in f64 (Abramowitz–Stegun 7.1.26 is too coarse; use the series for
/// small |x| and the continued fraction of erfc for large |x|).
fn erf64(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let a = x.abs();
    let r = if a < 2.5 {
        // Maclaurin series: 2/√π Σ (−1)^n x^(2n+1) / (n! (2n+1)).
        let mut term = a;
        let mut sum = a;
        let x2 = a * a;
        let mut n = 0.0;
        loop {
            n += 1.0;
            term *= -x2 / n;
            let t = term / (2.0 * n + 1.0);
            sum += t;
            if t.abs() <= 1e-17 * sum.abs() {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else if a > 6.0 {
        1.0
    } else {
        // erfc by Lentz's continued fraction: erfc(a) = e^{-a²}/√π · 1/(a + 1/2/(a + 1/(a + 3/2/(a + ...)))).
        let mut f = a;
        for k in (1..200).rev() {
            f = a + (k as f64 / 2.0) / f;
        }
        1.0 - (-a * a).exp() / (std::f64::consts::PI.sqrt() * f)
    };
    r.copysign(x)
}

/// Documented bounds (the functions' docs state the same numbers).
const EXP_MAX_ULP: f64 = 1.0;
const ERF_MAX_ULP: f64 = 2.0;
const TANH_MAX_ULP: f64 = 5.0;
const RSQRT_MAX_ULP: f64 = 1.5;

#[test]
fn exp_error_bound() {
    let (e, x) = max_error(v::exp, f64::exp, &[(-104.0, 89.0), (-1.0, 1.0)]);
    println!("exp: max {e:.3} ulp at {x:e}");
    assert!(e <= EXP_MAX_ULP, "exp: {e} ulp at {x:e} ({:#x})", x.to_bits());
}

#[test]
fn erf_error_bound() {
    let (e, x) = max_error(v::erf, erf64, &[(-4.0, 4.0), (0.9, 0.95)]);
    println!("erf: max {e:.3} ulp at {x:e}");
    assert!(e <= ERF_MAX_ULP, "erf: {e} ulp at {x:e} ({:#x})", x.to_bits());
}

#[test]
fn tanh_error_bound() {
    let (e, x) = max_error(v::tanh, f64::tanh, &[(-10.0, 10.0), (-0.01, 0.01)]);
    println!("tanh: max {e:.3} ulp at {x:e}");
    assert!(e <= TANH_MAX_ULP, "tanh: {e} ulp at {x:e} ({:#x})", x.to_bits());
}

#[test]
fn rsqrt_and_recip_error_bounds() {
    let (e, x) = max_error(v::rsqrt, |x| 1.0 / x.sqrt(), &[(0.0, 4.0)]);
    println!("rsqrt: max {e:.3} ulp at {x:e}");
    assert!(e <= RSQRT_MAX_ULP, "rsqrt: {e} ulp at {x:e}");
    let (e, x) = max_error(v::recip, |x| 1.0 / x, &[]);
    println!("recip: max {e:.3} ulp at {x:e}");
    assert!(e <= 0.5, "recip is correctly rounded: {e} ulp at {x:e}");
}

#[test]
fn reference_erf_is_accurate() {
    // Spot values (Abramowitz & Stegun table 7.1, 10 digits).
    for (x, want) in [(0.5, 0.520_499_877_8), (1.0, 0.842_700_792_9), (2.0, 0.995_322_265_0), (3.0, 0.999_977_909_5)] {
        assert!((erf64(x) - want).abs() < 1e-9, "erf64({x}) = {}", erf64(x));
    }
}
