//! The verilated quantized add (`verilog/qadd.sv`: two exact binary32 fused
//! multiply-adds, the conversion to int32 and the clamp) against the ISA's
//! definition, `isa::numerics::qadd` (ONNX Runtime's QLinearAdd): more than
//! 10^6 random cases and the edge cases, bit for bit. Needs the `verilator`
//! feature: `cargo test -p rtl --features verilator --release --test qadd`.

use isa::numerics::{qadd_params, QaddParams, I8_RANGE, U8_RANGE};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rtl::qadd::{QaddCase, QaddUnit};

/// A float32 with a random sign and significand and an exponent field in `exp`.
fn float_in(rng: &mut StdRng, exp: std::ops::RangeInclusive<u32>) -> f32 {
    f32::from_bits(rng.gen_range(0..2u32) << 31 | rng.gen_range(exp) << 23 | rng.gen_range(0..1u32 << 23))
}

/// Parameters: as the compiler makes them (random scales and zero points),
/// ties (power-of-two ratios), and raw float32 bits of every kind
/// (subnormal, huge, inf, NaN).
fn params(rng: &mut StdRng, unsigned: bool) -> QaddParams {
    let (lo, hi) = if unsigned { U8_RANGE } else { I8_RANGE };
    let zp = |rng: &mut StdRng| rng.gen_range(lo..=hi);
    match rng.gen_range(0..6) {
        0 | 1 => {
            let sc = 2f32.powf(rng.gen_range(-12.0..2.0));
            let sa = sc * 2f32.powf(rng.gen_range(-14.0..8.0));
            let sb = sc * 2f32.powf(rng.gen_range(-14.0..8.0));
            qadd_params(sa, sb, sc, zp(rng), zp(rng), zp(rng))
        }
        2 => {
            let pow = |rng: &mut StdRng| 2f32.powi(rng.gen_range(-3..3));
            qadd_params(pow(rng), pow(rng), pow(rng), zp(rng), zp(rng), zp(rng))
        }
        3 => QaddParams { ra: float_in(rng, 100..=140), rb: float_in(rng, 100..=140), k: float_in(rng, 100..=140) },
        4 => QaddParams { ra: float_in(rng, 0..=12), rb: float_in(rng, 0..=12), k: float_in(rng, 0..=12) },
        _ => QaddParams { ra: f32::from_bits(rng.gen()), rb: f32::from_bits(rng.gen()), k: f32::from_bits(rng.gen()) },
    }
}

fn bounds(rng: &mut StdRng, unsigned: bool, zo: i32) -> (i32, i32) {
    let (lo, hi) = if unsigned { U8_RANGE } else { I8_RANGE };
    match rng.gen_range(0..4) {
        0 => (zo.clamp(lo, hi), hi), // fused ReLU
        1 => (rng.gen_range(-256..=255), rng.gen_range(-256..=255)),
        _ => (lo, hi),
    }
}

fn check(unit: &mut QaddUnit, what: &str, cases: &[QaddCase]) -> usize {
    let mut out = vec![0; cases.len()];
    unit.run(cases, &mut out);
    let mut bad = 0;
    for (c, &got) in cases.iter().zip(&out) {
        if got != c.expected() {
            if bad < 10 {
                eprintln!("{what}: {c:?}: RTL {got}, numerics::qadd {}", c.expected());
            }
            bad += 1;
        }
    }
    println!("{what}: {bad} of {} differ", cases.len());
    bad
}

#[test]
fn qadd_matches_numerics() {
    let mut unit = QaddUnit::new();
    let mut rng = StdRng::seed_from_u64(9);
    let mut bad = 0;

    // Random: 16 operand pairs per parameter set.
    let mut cases = Vec::new();
    while cases.len() < 1_200_000 {
        let unsigned = rng.gen();
        let p = params(&mut rng, unsigned);
        let zo = rng.gen_range(-128..=255);
        let (qmin, qmax) = bounds(&mut rng, unsigned, zo);
        for _ in 0..16 {
            cases.push(QaddCase::new(rng.gen(), rng.gen(), unsigned, p, qmin, qmax));
        }
    }
    bad += check(&mut unit, "random", &cases);

    // Every operand pair on exact ties (ratios 1/2, 1/4, 3/4, 3/2) and equal scales.
    let mut ties = Vec::new();
    for (sa, sb, sc, z) in [(0.1f32, 0.1, 0.2, (0, 1, 0)), (0.25, 0.75, 1.0, (10, 3, 7)), (1.5, 0.5, 1.0, (-3, 2, 5))] {
        for unsigned in [false, true] {
            let (lo, hi) = if unsigned { U8_RANGE } else { I8_RANGE };
            let p = qadd_params(sa, sb, sc, z.0.clamp(lo, hi), z.1.clamp(lo, hi), z.2.clamp(lo, hi));
            for e in 0..1usize << 16 {
                ties.push(QaddCase::new((e >> 8) as u8, e as u8, unsigned, p, lo, hi));
            }
        }
    }
    bad += check(&mut unit, "ties", &ties);

    // Extremes: sums beyond int32 (INT_MIN, hence qmin), inf, NaN, zeros,
    // subnormals, the largest finite values.
    let specials = [
        0.0f32,
        -0.0,
        1.0,
        0.5,
        -0.5,
        1e9,
        -1e9,
        3e38,
        f32::MAX,
        f32::MIN_POSITIVE,
        f32::from_bits(1),
        f32::from_bits(0x807f_ffff),
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        2_147_483_520.0,
        -2_147_483_648.0,
        127.5,
        -128.5,
    ];
    let mut ext = Vec::new();
    for &ra in &specials {
        for &rb in &specials {
            for &k in &specials {
                let p = QaddParams { ra, rb, k };
                for (a, b) in [(0u8, 0u8), (1, 255), (128, 127), (255, 1), (3, 200)] {
                    for unsigned in [false, true] {
                        ext.push(QaddCase::new(a, b, unsigned, p, -128, 255));
                    }
                }
            }
        }
    }
    bad += check(&mut unit, "extremes", &ext);
    assert_eq!(bad, 0);
}
