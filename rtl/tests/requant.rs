//! The verilated requantizer (`verilog/requant.sv`) against the ISA's
//! definition, `isa::numerics::requantize`: more than 10^6 cases through
//! every pipeline depth, bit for bit. Needs the `verilator` feature:
//! `cargo test -p rtl --features verilator --release`.

use isa::numerics::{requantize, I8_RANGE, U8_RANGE};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rtl::requant::{q_range, qw, RequantCase, Requantizer, LATENCIES};
use std::time::Instant;

/// Cases per category of [`random_cases`] (the first three get more: they
/// land in the output range, where the roundings decide).
const PER_CATEGORY: usize = 100_000;

/// Zero point and clamp bounds, as programs use them (and beyond).
fn bounds(rng: &mut StdRng) -> (i32, i32, i32) {
    let (lo, hi) = q_range();
    match rng.gen_range(0..8) {
        // int8 / uint8 outputs.
        0 => (rng.gen_range(I8_RANGE.0..=I8_RANGE.1), I8_RANGE.0, I8_RANGE.1),
        1 => (rng.gen_range(U8_RANGE.0..=U8_RANGE.1), U8_RANGE.0, U8_RANGE.1),
        // Fused ReLU: qmin = zp.
        2 => {
            let zp = rng.gen_range(I8_RANGE.0..=I8_RANGE.1);
            (zp, zp, I8_RANGE.1)
        }
        3 => {
            let zp = rng.gen_range(U8_RANGE.0..=U8_RANGE.1);
            (zp, zp, U8_RANGE.1)
        }
        // Fused Clip (e.g. ReLU6): zp <= qmax < type max.
        4 => {
            let zp = rng.gen_range(I8_RANGE.0..=I8_RANGE.1);
            (zp, zp, rng.gen_range(zp..=I8_RANGE.1))
        }
        5 => {
            let zp = rng.gen_range(U8_RANGE.0..=U8_RANGE.1);
            (zp, zp, rng.gen_range(zp..=U8_RANGE.1))
        }
        // The extremes of the field.
        6 => (if rng.gen() { lo } else { hi }, lo, hi),
        // Anything the field holds, qmin > qmax included.
        _ => (rng.gen_range(lo..=hi), rng.gen_range(lo..=hi), rng.gen_range(lo..=hi)),
    }
}

/// A float32 with random significand and an exponent field in `exp`.
fn float_with_exponent(rng: &mut StdRng, exp: std::ops::RangeInclusive<u32>) -> u32 {
    let sign: u32 = rng.gen_range(0..2);
    sign << 31 | rng.gen_range(exp) << 23 | rng.gen_range(0..1u32 << 23)
}

/// Where a product should land so that the result is inside the clamp
/// bounds or just beyond them: `r` in `[min - 3, max + 3] - zp`.
fn target(rng: &mut StdRng, (zp, qmin, qmax): (i32, i32, i32)) -> f64 {
    let (lo, hi) = (qmin.min(qmax) - 3 - zp, qmin.max(qmax) + 3 - zp);
    rng.gen_range(lo as f64..=hi as f64)
}

/// acc / scale pairs that land the product near the output range, where
/// both roundings decide the result.
fn targeted(rng: &mut StdRng, b: (i32, i32, i32)) -> (i32, u32) {
    let t = target(rng, b);
    if rng.gen() {
        // Scale first (typical magnitudes), acc = t / scale.
        let scale = f32::from_bits(float_with_exponent(rng, 100..=130) & 0x7fff_ffff);
        let acc = (t / scale as f64).round().clamp(i32::MIN as f64, i32::MAX as f64) as i32;
        (acc, scale.to_bits())
    } else {
        // acc first (any magnitude, so the int-to-float rounding of large
        // accumulators matters), scale = t / acc.
        let bits = rng.gen_range(0..=31);
        let acc = (rng.gen::<u32>() >> (31 - bits)) as i32 * if rng.gen() { -1 } else { 1 };
        let scale = if acc == 0 { 1.0 } else { (t / acc as f64) as f32 };
        (acc, scale.to_bits())
    }
}

/// Products that are exact ties `n + 1/2`: `scale = m 2^-e` with `m` odd,
/// `acc = (2k + 1) 2^(e-1)`, so `acc * scale = (2k + 1) m / 2`. With
/// `|acc| <= 2^24` the conversion is exact, above it the conversion may
/// round; either way the oracle decides.
fn tie(rng: &mut StdRng, b: (i32, i32, i32)) -> (i32, u32) {
    let e: u32 = rng.gen_range(1..=30);
    let m: i64 = 2 * rng.gen_range(0..16) + 1;
    // (2k + 1) m / 2 near the target, |acc| < 2^31.
    let kmax = (1i64 << 31) / (1i64 << (e - 1)) / 2 - 1;
    let k = ((target(rng, b) / m as f64 - 0.5).round() as i64).clamp(-kmax - 1, kmax);
    let acc = ((2 * k + 1) << (e - 1)).clamp(i32::MIN as i64, i32::MAX as i64) as i32;
    let scale = m as f32 * (2f32).powi(-(e as i32));
    (acc, scale.to_bits())
}

/// One to three float32 ulps either side of a tie scale (the float32
/// rounding of the product then decides which way the integer rounding
/// goes).
fn near_tie(rng: &mut StdRng, b: (i32, i32, i32)) -> (i32, u32) {
    let (acc, scale) = tie(rng, b);
    let step: i32 = if rng.gen() { 1 } else { -1 };
    (acc, scale.wrapping_add_signed(step * rng.gen_range(1..=3)))
}

/// Products exactly halfway between two float32 values, one of which is a
/// half-integer `v = k + 1/2`: the float32 rounding of the product (ties to
/// even) decides which way the integer rounding goes.
///
/// With `v` in `[2^j, 2^(j+1))`, the float32 values there are spaced
/// `2^(j-23)`; `N = v 2^(24-j) +- 1` is odd, so `N 2^(j-24)` lies exactly
/// halfway between `v` and its neighbour. `N` is split into two factors
/// below `2^24` (so the conversion of `acc` is exact): `acc * significand`.
fn f32_product_tie(rng: &mut StdRng, b: (i32, i32, i32)) -> (i32, u32) {
    loop {
        let t = target(rng, b);
        let twice: i64 = 2 * t.floor() as i64 + 1; // 2v, odd, signed
        let mag = twice.unsigned_abs() as i64;
        let j = 63 - mag.leading_zeros() as i64 - 1; // v in [2^j, 2^(j+1))
        let n = (mag << (23 - j)) + if rng.gen() { 1 } else { -1 };
        if n < 1 << 24 {
            continue; // v = 1/2 and N = 2^24 - 1: representable, no tie
        }
        let Some(d) = (3..=255i64).step_by(2).find(|d| n % d == 0) else { continue };
        let (a, sig) = if rng.gen() { (d, n / d) } else { (n / d, d) };
        // acc * 2^shift, scale * 2^-shift: the same product.
        let shift = rng.gen_range(0..=(30 - (63 - a.leading_zeros() as i64)).clamp(0, 6));
        let acc = (a << shift) as i32;
        let scale = sig as f32 * (2f32).powi((j - 24 - shift) as i32);
        // Sign of acc at random, sign of the scale so that the product has
        // the sign of v.
        let acc_negative: bool = rng.gen();
        let scale = if acc_negative != (twice < 0) { -scale } else { scale };
        return (if acc_negative { -acc } else { acc }, scale.to_bits());
    }
}

/// Accumulators above 2^24 whose int-to-float rounding (ties to even)
/// decides the result: `acc = A 2^d + rem` with `A = (2k + 1) 2^m` or
/// `A = (2k + 1) 2^m - 1` (24 bits; even, odd) and `scale = 2^-(d+m+1)`, so
/// that `(2k + 1) 2^(m+d)`, the nearest float32 to `acc` when `rem` is a
/// tie (`2^(d-1)`, for both parities of `A`), gives exactly the tie
/// `k + 1/2`, and its neighbours give just above or below it.
fn conversion_rounding(rng: &mut StdRng, b: (i32, i32, i32)) -> (i32, u32) {
    let k = (target(rng, b).abs() as i64).clamp(1, 255);
    let m = 22 - (63 - k.leading_zeros() as i64); // k in [2^(22-m), 2^(23-m))
    let a = (2 * k + 1) * (1 << m) - rng.gen_range(0..=1);
    assert!((1 << 23..1 << 24).contains(&a));
    let d = rng.gen_range(1..=7i64);
    let rem = match rng.gen_range(0..3) {
        0 => 1 << (d - 1),                        // conversion tie: to even A + 1 or A
        1 => rng.gen_range(1 << (d - 1)..1 << d), // rounds up
        _ => rng.gen_range(0..1 << (d - 1)),      // rounds down
    };
    let acc = ((a << d) + rem) as i32;
    let scale = (2f32).powi(-(d + m + 1) as i32);
    if rng.gen() {
        (-acc, scale.to_bits())
    } else {
        (acc, if rng.gen() { (-scale).to_bits() } else { scale.to_bits() })
    }
}

fn any_acc(rng: &mut StdRng) -> i32 {
    match rng.gen_range(0..4) {
        0 => rng.gen(),
        1 => rng.gen_range(-(1 << 16)..1 << 16),
        2 => {
            let bits = rng.gen_range(0..=31);
            (rng.gen::<u32>() >> (31 - bits)) as i32 * if rng.gen() { -1 } else { 1 }
        }
        // Around powers of two, where the int-to-float conversion rounds.
        _ => {
            let p: i64 = 1 << rng.gen_range(20..=31);
            let v = p + rng.gen_range(-300..=300);
            let v = if rng.gen() { -v } else { v };
            v.clamp(i32::MIN as i64, i32::MAX as i64) as i32
        }
    }
}

/// Special float32 values of the scale.
const SPECIAL_SCALES: &[u32] = &[
    0x0000_0000, // +0
    0x8000_0000, // -0
    0x0000_0001, // smallest subnormal
    0x8000_0001,
    0x007f_ffff, // largest subnormal
    0x0040_0000,
    0x0080_0000, // smallest normal
    0x3f80_0000, // 1
    0xbf80_0000, // -1
    0x3f00_0000, // 0.5
    0x3f7f_ffff, // just below 1
    0x3f80_0001, // just above 1
    0x3b80_8081, // 1/255
    0x7f7f_ffff, // largest finite
    0xff7f_ffff,
    0x7f80_0000, // +inf
    0xff80_0000, // -inf
    0x7fc0_0000, // quiet NaN
    0xffc0_0000,
    0x7f80_0001, // signalling NaN
    0x7fff_ffff,
    0x3400_0000, // 2^-23
    0x3380_0000, // 2^-24
    0x4b00_0000, // 2^23
    0x4f00_0000, // 2^31
    0x2f80_0000, // 2^-32
];

const SPECIAL_ACCS: &[i32] = &[
    0,
    1,
    -1,
    2,
    -2,
    3,
    127,
    128,
    -128,
    -129,
    255,
    256,
    i32::MAX,
    i32::MIN,
    i32::MIN + 1,
    i32::MAX - 1,
    (1 << 24) - 1,
    1 << 24,
    (1 << 24) + 1,
    (1 << 24) + 3,
    -(1 << 24) - 1,
    (1 << 25) + 2,
    (1 << 25) + 6,
    0x7fff_ff80,
    0x7fff_ff7f,
    0x7fff_ffc0,
    -0x7fff_ffc0,
];

/// The random cases, by category.
fn random_cases(seed: u64) -> Vec<(&'static str, Vec<RequantCase>)> {
    let mut rng = StdRng::seed_from_u64(seed);
    type Gen = fn(&mut StdRng, (i32, i32, i32)) -> (i32, u32);
    let categories: &[(&str, Gen)] = &[
        ("near the output range", targeted),
        ("exact ties", tie),
        ("one ulp from a tie", near_tie),
        ("float32 product ties", f32_product_tie),
        ("conversion rounding", conversion_rounding),
        ("random bits", |r, _| (any_acc(r), r.gen())),
        ("subnormal scales", |r, _| (any_acc(r), float_with_exponent(r, 0..=0))),
        ("tiny normal scales", |r, _| (any_acc(r), float_with_exponent(r, 1..=100))),
        ("huge scales", |r, _| (any_acc(r), float_with_exponent(r, 128..=254))),
        ("NaN and infinite scales", |r, _| {
            let payload = if r.gen() { 0 } else { r.gen_range(0..1u32 << 23) };
            (any_acc(r), (r.gen_range(0..2u32) << 31) | 0x7f80_0000 | payload)
        }),
        ("saturation", |r, _| {
            let scale = f32::from_bits(float_with_exponent(r, 118..=135));
            let acc = if r.gen() { r.gen_range(1 << 20..=i32::MAX) } else { r.gen_range(i32::MIN..=-(1 << 20)) };
            (acc, scale.to_bits())
        }),
        ("special values", |r, _| {
            let acc = if r.gen() { SPECIAL_ACCS[r.gen_range(0..SPECIAL_ACCS.len())] } else { any_acc(r) };
            (acc, SPECIAL_SCALES[r.gen_range(0..SPECIAL_SCALES.len())])
        }),
    ];
    categories
        .iter()
        .enumerate()
        .map(|(i, &(name, gen))| {
            let n = match i {
                0 => 4 * PER_CATEGORY,
                1..=4 => 2 * PER_CATEGORY,
                _ => PER_CATEGORY,
            };
            let cases = (0..n)
                .map(|_| {
                    let (zp, qmin, qmax) = bounds(&mut rng);
                    let (acc, scale) = gen(&mut rng, (zp, qmin, qmax));
                    RequantCase { acc, scale, zp, qmin, qmax }
                })
                .collect();
            (name, cases)
        })
        .collect()
}

fn describe(c: &RequantCase, got: i32) -> String {
    format!(
        "acc={} scale=0x{:08x} ({:e}) zp={} qmin={} qmax={}: rtl {} != requantize {}",
        c.acc,
        c.scale,
        f32::from_bits(c.scale),
        c.zp,
        c.qmin,
        c.qmax,
        got,
        c.expected()
    )
}

/// Runs `cases` through `model`; the mismatches, described.
fn mismatches(model: &mut Requantizer, cases: &[RequantCase]) -> Vec<String> {
    let mut out = vec![0; cases.len()];
    model.requantize_batch(cases, &mut out);
    cases.iter().zip(&out).filter(|(c, &got)| got != c.expected()).map(|(c, &got)| describe(c, got)).collect()
}

/// The constructed categories produce what they claim.
#[test]
fn generators_hit_their_targets() {
    let mut rng = StdRng::seed_from_u64(7);
    let b = (0, -128, 127);
    let mut conversion_ties = 0;
    for _ in 0..10_000 {
        // Exact ties: f32(acc) * scale is k + 1/2 (conversion exact below 2^24).
        let (acc, scale) = tie(&mut rng, b);
        let p = acc as f64 * f32::from_bits(scale) as f64;
        if acc.unsigned_abs() <= 1 << 24 {
            assert_eq!(p - p.floor(), 0.5, "tie acc={acc} scale={scale:08x}");
        }
        // Float32 product ties: the exact product (exact in f64) lies
        // halfway between two neighbouring float32 values.
        let (acc, scale) = f32_product_tie(&mut rng, b);
        let exact = acc as f64 * f32::from_bits(scale) as f64;
        let rounded = (acc as f32 * f32::from_bits(scale)) as f64;
        let other = if rounded.abs() > exact.abs() {
            f32::from_bits((rounded as f32).to_bits() - 1)
        } else {
            f32::from_bits((rounded as f32).to_bits() + 1)
        } as f64;
        assert!(rounded != exact && (rounded - exact) == (exact - other), "acc={acc} scale={scale:08x}");
        // Conversion rounding: f32(acc) * scale a tie, acc * scale not.
        let (acc, scale) = conversion_rounding(&mut rng, b);
        let s = f32::from_bits(scale) as f64;
        let p = (acc as f32) as f64 * s;
        let exact = acc as f64 * s;
        if p - p.floor() == 0.5 && exact - exact.floor() != 0.5 {
            conversion_ties += 1;
        }
    }
    assert!(conversion_ties > 2_500, "{conversion_ties} of 10000 conversion cases give a product tie");
}

#[test]
fn qw_is_the_isa_field_width() {
    let spec = isa::instr::INSTR_SPECS.iter().find(|s| s.mnemonic == "requant").unwrap();
    for name in ["zp", "qmin", "qmax"] {
        assert_eq!(spec.fields.iter().find(|f| f.name == name).unwrap().width, qw());
    }
    // int8 and uint8 bounds fit.
    let (lo, hi) = q_range();
    assert!(lo <= I8_RANGE.0 && U8_RANGE.1 <= hi);
}

#[test]
fn million_random_cases_match_numerics() {
    println!("build: {}", env!("SYSTOLE_RTL_BUILD_TIMES"));
    let t = Instant::now();
    let categories = random_cases(0x5157_0b1e);
    let total: usize = categories.iter().map(|(_, c)| c.len()).sum();
    let all: Vec<RequantCase> = categories.iter().flat_map(|(_, c)| c.iter().copied()).collect();
    let expected: Vec<i32> = all.iter().map(RequantCase::expected).collect();
    println!("{total} cases generated and evaluated by isa::numerics in {:.2} s", t.elapsed().as_secs_f64());
    assert!(total >= 1_000_000);

    // How much of the interesting space the cases reach.
    let (lo, hi) = q_range();
    let inside = all.iter().zip(&expected).filter(|(c, &q)| q > c.qmin.max(lo) && q < c.qmax.min(hi)).count();
    println!("{inside} results strictly inside their clamp bounds");
    assert!(inside > total / 4, "too few cases inside the clamp bounds");

    let mut failures = Vec::new();
    for latency in LATENCIES {
        let mut model = Requantizer::new(latency).unwrap();
        assert_eq!(model.latency(), latency);
        let mut out = vec![0; total];
        let t = Instant::now();
        model.requantize_batch(&all, &mut out);
        let secs = t.elapsed().as_secs_f64();
        println!("LATENCY={latency}: {total} cases in {secs:.2} s = {:.2} M cases/s", total as f64 / secs / 1e6);
        let mut start = 0;
        for (name, cases) in &categories {
            let bad: Vec<String> = (start..start + cases.len())
                .filter(|&i| out[i] != expected[i])
                .map(|i| describe(&all[i], out[i]))
                .collect();
            if !bad.is_empty() {
                failures.push(format!(
                    "LATENCY={latency}, {name}: {} of {} differ, e.g.\n  {}",
                    bad.len(),
                    cases.len(),
                    bad[..bad.len().min(5)].join("\n  ")
                ));
            }
            start += cases.len();
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every special accumulator with every special scale and every kind of
/// bounds, through every pipeline depth.
#[test]
fn special_values_grid() {
    let (lo, hi) = q_range();
    let bound_sets = [
        (0, I8_RANGE.0, I8_RANGE.1),
        (-128, -128, 127),
        (127, -128, 127),
        (5, 5, 127),
        (0, U8_RANGE.0, U8_RANGE.1),
        (128, 128, 255),
        (255, 0, 255),
        (hi, lo, hi),
        (lo, lo, hi),
        (0, 10, -10),
    ];
    let mut cases = Vec::new();
    for &acc in SPECIAL_ACCS {
        for &scale in SPECIAL_SCALES {
            for &(zp, qmin, qmax) in &bound_sets {
                cases.push(RequantCase { acc, scale, zp, qmin, qmax });
            }
        }
    }
    for latency in LATENCIES {
        let bad = mismatches(&mut Requantizer::new(latency).unwrap(), &cases);
        assert!(bad.is_empty(), "LATENCY={latency}: {} of {} differ:\n{}", bad.len(), cases.len(), bad.join("\n"));
    }
}

/// The hand-checked examples of `isa::numerics`' own tests, through the RTL.
#[test]
fn numerics_examples() {
    let sub = f32::from_bits(1);
    let examples: &[(i32, f32, i32, i32, i32)] = &[
        (5, 0.5, 0, -128, 127),
        (7, 0.5, 0, -128, 127),
        (-5, 0.5, 0, -128, 127),
        (-1, 0.5, 0, -128, 127),
        (5, 0.3, 0, -128, 127),
        (5, 0.5, 1, -128, 127),
        ((1 << 24) + 1, 1.0, 0, -256, 255),
        (-50, 1.0, -128, -128, 127),
        (300, 1.0, -128, -128, 127),
        (100, f32::NAN, 5, -128, 127),
        (0, f32::INFINITY, 7, -128, 127),
        (-1, f32::NEG_INFINITY, 0, -128, 127),
        (2, f32::MAX, 0, -128, 127),
        (i32::MIN, sub, -3, -128, 127),
        (123, -0.0, 0, -128, 127),
        (10, -1.0, 0, -128, 127),
        (0, 1.0, 0, 10, -10),
    ];
    for latency in LATENCIES {
        let mut m = Requantizer::new(latency).unwrap();
        for &(acc, scale, zp, qmin, qmax) in examples {
            assert_eq!(
                m.requantize(acc, scale, zp, qmin, qmax),
                requantize(acc, scale, zp, qmin, qmax),
                "LATENCY={latency} acc={acc} scale={scale:e} zp={zp} qmin={qmin} qmax={qmax}"
            );
        }
    }
}

/// The clocking itself: the documented latency, one result per cycle, and
/// `ce = 0` holding every stage.
#[test]
fn pipeline_timing_and_clock_enable() {
    let a = RequantCase::new(100, 0.25, 3, -128, 127); // 28
    let b = RequantCase::new(-100, 0.5, 0, -128, 127); // -50
    let c = RequantCase::new(7, 1.0, -1, -128, 127); // 6
    assert_eq!((a.expected(), b.expected(), c.expected()), (28, -50, 6));

    // LATENCY 0: the output follows the inputs without a clock.
    let mut m = Requantizer::new(0).unwrap();
    m.set_inputs(&a);
    m.eval();
    assert_eq!(m.output(), 28);
    m.set_inputs(&b);
    m.eval();
    assert_eq!(m.output(), -50);

    // LATENCY 1: result after the edge that samples the inputs.
    let mut m = Requantizer::new(1).unwrap();
    m.set_inputs(&a);
    m.eval();
    m.tick();
    assert_eq!(m.output(), 28);
    m.set_inputs(&b);
    m.eval();
    assert_eq!(m.output(), 28, "registered output changed without an edge");
    m.set_ce(false);
    m.tick();
    assert_eq!(m.output(), 28, "ce = 0 must hold the output");
    m.set_ce(true);
    m.tick();
    assert_eq!(m.output(), -50);

    // LATENCY 2: result after the second edge; a new case every cycle.
    let mut m = Requantizer::new(2).unwrap();
    m.set_inputs(&a);
    m.tick();
    m.set_inputs(&b);
    m.tick();
    assert_eq!(m.output(), 28);
    m.set_inputs(&c);
    m.tick();
    assert_eq!(m.output(), -50);
    // Stall with c in stage 1 and b's result on the output.
    m.set_ce(false);
    m.set_inputs(&a);
    for _ in 0..3 {
        m.tick();
        assert_eq!(m.output(), -50);
    }
    m.set_ce(true);
    m.tick();
    assert_eq!(m.output(), 6);
    m.tick();
    assert_eq!(m.output(), 28);
}

#[test]
fn only_built_latencies_exist() {
    let e = Requantizer::new(3).err().expect("no LATENCY 3 model");
    assert!(e.to_string().contains("LATENCY 3"), "{e}");
}

#[test]
#[should_panic(expected = "is outside the")]
fn out_of_range_bounds_are_refused() {
    Requantizer::new(0).unwrap().requantize(1, 1.0, 0, -1000, 127);
}
