//! The verilated vector lane (`verilog/vec_lane.sv`: binary32 fma, add, sub,
//! mul, div and sqrt by digit recurrence, max/min, the conversions of
//! dequantize / quantize, and exp, erf, tanh, recip, rsqrt as vector.rs's
//! sequences on those units) against the ISA's definition,
//! `isa::numerics::vector`: per operation more than 10^6 random cases plus
//! special ones (signed zeros, subnormals, infinities, NaN, ties, overflow,
//! underflow), bit for bit, and each op's cycles against
//! `isa::timing::VOP_CYCLES`. Needs the `verilator` feature:
//! `cargo test -p rtl --features verilator --release --test vector`.

use isa::instr as ins;
use isa::timing::{VEC_DIV_CYCLES, VOP_CYCLES};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rtl::vector::{VecCase, VecLane, OPS, OP_DEQUANTIZE, OP_FMA, OP_QUANTIZE, OP_SQRT};

/// Random cases per op (the specials come on top).
const RANDOM: usize = 1_000_000;

/// Float32 bits of every kind: zeros, subnormals (smallest, largest), the
/// normal boundary, ones and their neighbours, halves (ties), the largest
/// finite, infinities, NaNs (quiet, signalling, negative, with payloads).
const SPECIALS: &[u32] = &[
    0x0000_0000,
    0x8000_0000,
    0x0000_0001,
    0x8000_0001,
    0x0000_0002,
    0x007f_ffff,
    0x807f_ffff,
    0x0040_0000,
    0x0080_0000,
    0x8080_0000,
    0x0080_0001,
    0x3f80_0000,
    0xbf80_0000,
    0x3f80_0001,
    0x3f7f_ffff,
    0x3f00_0000,
    0xbf00_0000,
    0x3fc0_0000,
    0x4000_0000,
    0x4040_0000,
    0x4b40_0000,
    0x4b00_0001,
    0x7f7f_ffff,
    0xff7f_ffff,
    0x7f00_0000,
    0x0100_0000,
    0x3400_0000,
    0x3380_0000,
    0x7f80_0000,
    0xff80_0000,
    0x7fc0_0000,
    0xffc0_0000,
    0x7f80_0001,
    0x7fc1_2345,
    0xff80_1234,
    0x42b2_0000, // 89 (exp's clamp)
    0xc2d0_0000, // -104
    0x42b1_7218, // ~ln(f32::MAX)
    0xc2ce_8ed0, // ~ln(smallest subnormal)
    0x3f6c_0000, // erf's split
    0x3f6c_0001,
    0x406e_6666, // erf's clamp
    0x407b_3333, // erf's one
    0x407b_3332,
    0x4110_0000, // tanh's clamp
    0xc110_0000,
];

/// A float32 with a random sign and significand and an exponent field in `exp`.
fn bits_in(rng: &mut StdRng, exp: std::ops::RangeInclusive<u32>) -> u32 {
    rng.gen_range(0..2u32) << 31 | rng.gen_range(exp) << 23 | rng.gen_range(0..1u32 << 23)
}

/// One random operand: any bits, a special, a subnormal or near-boundary
/// exponent, or a value near 1.
fn operand(rng: &mut StdRng) -> u32 {
    match rng.gen_range(0..8) {
        0 | 1 => rng.gen(),
        2 => SPECIALS[rng.gen_range(0..SPECIALS.len())],
        3 => bits_in(rng, 0..=3),
        4 => bits_in(rng, 250..=254),
        _ => bits_in(rng, 100..=154),
    }
}

/// A second operand related to `a`: the same exponent give or take one
/// (cancellation, exact ties of add), a neighbour, or independent.
fn partner(rng: &mut StdRng, a: u32) -> u32 {
    let e = (a >> 23) & 0xff;
    match rng.gen_range(0..4) {
        0 => bits_in(rng, e.saturating_sub(1)..=(e + 1).min(254)),
        1 => (a ^ 0x8000_0000).wrapping_add(rng.gen_range(0..4)),
        2 => bits_in(rng, e.saturating_sub(30)..=(e + 30).min(254)),
        _ => operand(rng),
    }
}

/// A transcendental's argument: random bits, specials, or uniform over the
/// range where its sequence does its work.
fn argument(rng: &mut StdRng, op: u8) -> u32 {
    let (lo, hi) = match op {
        ins::VOP_EXP => (-110.0f32, 95.0f32),
        ins::VOP_ERF => (-4.5, 4.5),
        _ => (-10.0, 10.0),
    };
    match rng.gen_range(0..8) {
        0 => rng.gen(),
        1 => SPECIALS[rng.gen_range(0..SPECIALS.len())],
        2 => bits_in(rng, 90..=127), // small magnitudes, down to ~1e-11
        _ => rng.gen_range(lo..hi).to_bits(),
    }
}

fn cases_for(rng: &mut StdRng, op: u8) -> Vec<VecCase> {
    let mut cases = Vec::with_capacity(RANDOM + SPECIALS.len().pow(3));
    // Specials crossed (all triples for fma, pairs for binary ops).
    for &a in SPECIALS {
        for &b in SPECIALS {
            if op == OP_FMA {
                for &c in SPECIALS {
                    cases.push(VecCase::float(op, a, b, c));
                }
            } else if op < ins::VOP_BINARY || op == OP_QUANTIZE {
                cases.push(if op == OP_QUANTIZE {
                    VecCase::quantize(f32::from_bits(a), f32::from_bits(b), 0, -128, 127)
                } else {
                    VecCase::float(op, a, b, 0)
                });
            }
        }
        if op >= ins::VOP_BINARY && op != OP_FMA && op != OP_QUANTIZE && op != OP_DEQUANTIZE {
            cases.push(VecCase::float(op, a, 0, 0));
        }
        if op == OP_DEQUANTIZE {
            for q in [0, 1, -1, 127, -128, 255, i32::MAX, i32::MIN, 1 << 24, (1 << 24) + 1] {
                for zp in [0, 3, -128, i32::MAX, i32::MIN] {
                    cases.push(VecCase::dequantize(q, f32::from_bits(a), zp));
                }
            }
        }
    }
    for _ in 0..RANDOM {
        cases.push(match op {
            ins::VOP_EXP | ins::VOP_ERF | ins::VOP_TANH => VecCase::float(op, argument(rng, op), 0, 0),
            OP_FMA => {
                let a = operand(rng);
                let b = operand(rng);
                // c near a * b (cancellation) or independent.
                let p = f32::from_bits(a) * f32::from_bits(b);
                let c = if rng.gen() && p.is_finite() { partner(rng, (-p).to_bits()) } else { operand(rng) };
                VecCase::float(op, a, b, c)
            }
            OP_DEQUANTIZE => {
                let q = match rng.gen_range(0..3) {
                    0 => rng.gen_range(-128..=255),
                    1 => rng.gen_range(-(1 << 26)..(1 << 26)),
                    _ => rng.gen(),
                };
                let zp = if rng.gen() { rng.gen_range(-128..=255) } else { rng.gen() };
                VecCase::dequantize(q, f32::from_bits(operand(rng)), zp)
            }
            OP_QUANTIZE => {
                // x / scale around the int8 range (ties: x = (k + 1/2) * scale
                // exactly for power-of-two scales), or anything.
                let scale = if rng.gen() { 2f32.powi(rng.gen_range(-10..4)) } else { f32::from_bits(operand(rng)) };
                let x = match rng.gen_range(0..3) {
                    0 => (rng.gen_range(-600..600) as f32 + 0.5) * scale,
                    1 => rng.gen_range(-300.0f32..300.0) * scale,
                    _ => f32::from_bits(operand(rng)),
                };
                let zp = rng.gen_range(-128..=255);
                let (qmin, qmax) = match rng.gen_range(0..4) {
                    0 => (-128, 127),
                    1 => (0, 255),
                    2 => (rng.gen_range(-300..300), rng.gen_range(-300..300)),
                    _ => (i32::MIN, i32::MAX),
                };
                VecCase::quantize(x, scale, zp, qmin, qmax)
            }
            // Roots: mostly non-negative operands (a negative one is NaN).
            OP_SQRT | ins::VOP_RSQRT => {
                let a = operand(rng);
                VecCase::float(op, if rng.gen_range(0..4) == 0 { a } else { a & 0x7fff_ffff }, 0, 0)
            }
            _ => {
                let a = operand(rng);
                VecCase::float(op, a, partner(rng, a), 0)
            }
        });
    }
    cases
}

/// The cycles the lane takes for `c`: `VOP_CYCLES`, but erf's shorter paths
/// (|x| <= 0.921875: 7 steps; |x| >= 3.925: 1) and a transcendental's NaN
/// (1) finish early.
fn cycles_for(c: &VecCase) -> u32 {
    let x = f32::from_bits(c.a);
    let transcendental = matches!(c.op, ins::VOP_EXP | ins::VOP_ERF | ins::VOP_TANH);
    if transcendental && x.is_nan() {
        return 1;
    }
    (match c.op {
        OP_FMA | OP_DEQUANTIZE => 1,
        OP_SQRT | OP_QUANTIZE => VEC_DIV_CYCLES,
        ins::VOP_ERF if x.abs() <= f32::from_bits(0x3f6c_0000) => 7,
        ins::VOP_ERF if x.abs() >= f32::from_bits(0x407b_3333) => 1,
        op => VOP_CYCLES[op as usize],
    }) as u32
}

#[test]
fn vector_lane_matches_numerics() {
    let mut lane = VecLane::new();
    let mut rng = StdRng::seed_from_u64(11);
    let mut failures = Vec::new();
    for &(op, name) in OPS {
        let t0 = std::time::Instant::now();
        let cases = cases_for(&mut rng, op);
        let mut out = vec![0u32; cases.len()];
        let mut cycles = vec![0u32; cases.len()];
        lane.run(&cases, &mut out, &mut cycles);
        let (mut bad, mut bad_cycles) = (0usize, 0usize);
        // What the results were (float ops), so a run shows it reached the
        // special cases: [NaN, ±inf, ±0, subnormal].
        let mut classes = [0usize; 4];
        for ((c, &got), &n) in cases.iter().zip(&out).zip(&cycles) {
            let want = c.expected();
            let r = f32::from_bits(want);
            if c.op == OP_QUANTIZE {
                // [NaN quotient, a bound, an exact tie, inside the bounds].
                let p = f32::from_bits(c.a) / f32::from_bits(c.b);
                let q = want as i32;
                classes[0] += p.is_nan() as usize;
                classes[1] += (q == c.qmin as i32 || q == c.qmax as i32) as usize;
                classes[2] += (p.is_finite() && (p - p.trunc()).abs() == 0.5) as usize;
                classes[3] += (q != c.qmin as i32 && q != c.qmax as i32) as usize;
            } else {
                classes[0] += r.is_nan() as usize;
                classes[1] += r.is_infinite() as usize;
                classes[2] += (r == 0.0) as usize;
                classes[3] += r.is_subnormal() as usize;
            }
            if got != want {
                if bad < 8 {
                    eprintln!("{name}: {c:x?}: RTL {got:#010x}, numerics {want:#010x}");
                }
                bad += 1;
            }
            if n != cycles_for(c) {
                if bad_cycles < 4 {
                    eprintln!("{name}: {c:x?}: {n} cycles, expected {}", cycles_for(c));
                }
                bad_cycles += 1;
            }
        }
        let labels = if op == OP_QUANTIZE {
            ["NaN quotient", "at a bound", "ties", "inside"]
        } else {
            ["results NaN", "inf", "zero", "subnormal"]
        };
        println!(
            "{name:>10}: {} cases, {bad} differ, {bad_cycles} with wrong cycles ({:.1} s); {}",
            cases.len(),
            t0.elapsed().as_secs_f64(),
            labels.iter().zip(classes).map(|(l, n)| format!("{l} {n}")).collect::<Vec<_>>().join(", ")
        );
        if bad + bad_cycles > 0 {
            failures.push(name);
        }
    }
    assert!(failures.is_empty(), "the vector lane differs from isa::numerics::vector on {failures:?}");
}

/// Values known without the numerics (exp(0) = 1, erf(inf) = 1, exact
/// roots, a tie quantized to even) and their cycles: a check of the harness
/// itself.
#[test]
fn vector_lane_known_values() {
    let mut lane = VecLane::new();
    let cases = [
        VecCase::float(ins::VOP_EXP, 0f32.to_bits(), 0, 0),
        VecCase::float(ins::VOP_ERF, f32::INFINITY.to_bits(), 0, 0),
        VecCase::float(ins::VOP_RSQRT, 4f32.to_bits(), 0, 0),
        VecCase::float(OP_SQRT, 2.25f32.to_bits(), 0, 0),
        VecCase::quantize(2.5, 1.0, 0, -128, 127),
    ];
    let mut out = [0u32; 5];
    let mut cycles = [0u32; 5];
    lane.run(&cases, &mut out, &mut cycles);
    assert_eq!(out, [1f32.to_bits(), 1f32.to_bits(), 0.5f32.to_bits(), 1.5f32.to_bits(), 2]);
    assert_eq!(cycles, [12, 1, 8, 4, 4]);
}
