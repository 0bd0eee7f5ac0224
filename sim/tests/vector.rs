//! The vector unit through the model: every instruction's results equal
//! `isa::numerics::vector` element for element on random rows, its busy
//! cycles equal ISA.md's formulas, illegal encodings and ranges are refused,
//! and hand-written LayerNorm and Softmax programs equal the composites.

use isa::instr::{self as ins, Instr};
use isa::numerics::vector as v;
use isa::regs::{self, Counter, ErrorCode};
use isa::{Device, HwConfig, INSTR_BYTES};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// DRAM addresses of the test data: X (3 x 10 float32), B (3 x 10), a
/// per-column vector G (1 x 10), a second one H, and the results.
const X: u64 = 0x1000;
const B: u64 = 0x1100;
const G: u64 = 0x1200;
const H: u64 = 0x1240;
const OUT: u64 = 0x2000;
const ROWS: usize = 3;
const LEN: usize = 10;

/// Loads X to accumulator rows 0.. (column-blocked: block j at 3j), B to
/// 16..25, G to 40.. and H to 44.. (one row: block j at 40 + j; results go
/// to rows 28.. in the tests), runs `body`
/// (COMPUTE instructions between a sync that waits for the loads and one
/// that signals the STORE queue), then `store` (whose first instruction
/// waits for that signal) and returns the model.
fn run(cfg: &HwConfig, data: &[(u64, Vec<u8>)], body: &str, store: &str) -> sim::Model {
    let text = format!(
        "load buf=acc dram={X:#x} stride=40 rows=3 cols=10 addr=0\n\
         load buf=acc dram={B:#x} stride=40 rows=3 cols=10 addr=16\n\
         load buf=acc dram={G:#x} stride=40 rows=1 cols=10 addr=40\n\
         load buf=acc dram={H:#x} stride=40 rows=1 cols=10 addr=44 @signal(compute)\n\
         sync queue=compute @wait(load)\n\
         {body}\n\
         sync queue=compute @signal(store)\n\
         {store}\n\
         finish"
    );
    let code = isa::asm::parse_program(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mut m = sim::Model::new(cfg).unwrap();
    let bytes: Vec<u8> = code.iter().flat_map(|i| i.encode()).collect();
    m.write_mem(0, &bytes).unwrap();
    for (addr, d) in data {
        m.write_mem(*addr, d).unwrap();
    }
    m.write_reg(regs::PROG_ADDR, 0).unwrap();
    m.write_reg(regs::PROG_LEN, (bytes.len() / INSTR_BYTES) as u32).unwrap();
    m.write_reg(regs::WIN_LIMIT, 1 << 20).unwrap();
    m.write_reg(regs::CTRL, regs::CTRL_START).unwrap();
    assert_eq!(m.advance(1 << 30).unwrap(), regs::STATUS_DONE, "{text}\n{:?}", m.error());
    m
}

fn f32_bytes(xs: &[f32]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect()
}

fn read_f32(m: &mut sim::Model, addr: u64, n: usize) -> Vec<f32> {
    m.read_mem(addr, 4 * n)
        .unwrap()
        .chunks(4)
        .map(|c| f32::from_bits(u32::from_le_bytes(c.try_into().unwrap())))
        .collect()
}

/// Random float32: mostly moderate values, sometimes huge, tiny, subnormal,
/// zero of either sign, infinite or NaN.
fn value(rng: &mut StdRng) -> f32 {
    match rng.gen_range(0..40) {
        0 => f32::NAN,
        1 => f32::INFINITY,
        2 => f32::NEG_INFINITY,
        3 => -0.0,
        4 => 0.0,
        5 => f32::from_bits(rng.gen_range(1..0x0080_0000)),
        6 => f32::from_bits(rng.gen()),
        _ => rng.gen_range(-12.0f32..12.0) * 2f32.powi(rng.gen_range(-3..4)),
    }
}

fn random_rows(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| value(rng)).collect()
}

fn same_bits(got: &[f32], want: &[f32], what: &str) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.to_bits(), w.to_bits(), "{what}: element {i}: model {g:e}, numerics {w:e}");
    }
}

const STORE_RESULT: &str = "store buf=acc dram=0x2000 stride=40 rows=3 cols=10 addr=28 @wait(compute)";
const PATTERN_OUT: &str = "dst=28 dst_step=1 dst_bstride=3";
const PATTERN_X: &str = "a=0 a_step=1 a_bstride=3";

#[test]
fn every_vop_matches_numerics() {
    let cfg = HwConfig::tiny_4x4();
    let mut rng = StdRng::seed_from_u64(1);
    for (op, name) in ins::VOP_NAMES.iter().enumerate() {
        for seed in 0..4 {
            let (x, b, g) =
                (random_rows(&mut rng, ROWS * LEN), random_rows(&mut rng, ROWS * LEN), random_rows(&mut rng, LEN));
            let imm = value(&mut rng);
            let data = [(X, f32_bytes(&x)), (B, f32_bytes(&b)), (G, f32_bytes(&g)), (H, f32_bytes(&g))];
            let binary = (op as u8) < ins::VOP_BINARY;
            // b: a full row, a per-column broadcast, the immediate.
            let variants: Vec<(&str, String)> = if binary {
                vec![
                    ("rows", "b=16 b_step=1 b_bstride=3".to_string()),
                    ("broadcast", "b=40 b_step=0 b_bstride=1".to_string()),
                    ("imm", format!("b_imm=1 imm={:#x}", imm.to_bits())),
                ]
            } else {
                vec![("unary", String::new())]
            };
            for (kind, bspec) in variants {
                let body = format!("vop op={name} {PATTERN_OUT} {PATTERN_X} {bspec} rows=3 len=10");
                let mut m = run(&cfg, &data, &body, STORE_RESULT);
                let got = read_f32(&mut m, OUT, ROWS * LEN);
                let want: Vec<f32> = (0..ROWS * LEN)
                    .map(|i| {
                        let y = match kind {
                            "rows" => b[i],
                            "broadcast" => g[i % LEN],
                            _ => imm,
                        };
                        reference(name, x[i], y)
                    })
                    .collect();
                same_bits(&got, &want, &format!("vop {name} ({kind}, seed {seed})"));
                let beats = (ROWS * LEN.div_ceil(4)) as u64;
                assert_eq!(
                    m.counters().get(Counter::VectorBusy),
                    beats * isa::timing::VOP_CYCLES[op] + isa::timing::VEC_LATENCY,
                    "vop {name} busy"
                );
                assert_eq!(m.counters().get(Counter::VectorElements), (ROWS * LEN) as u64);
            }
        }
    }
}

/// `numerics::vector`'s function of the op named `name` (by name, apart
/// from the model's op-code mapping).
fn reference(name: &str, x: f32, y: f32) -> f32 {
    let f: fn(f32, f32) -> f32 = match name {
        "add" => v::add,
        "sub" => v::sub,
        "mul" => v::mul,
        "div" => v::div,
        "max" => v::max,
        "min" => v::min,
        "exp" => |x, _| v::exp(x),
        "erf" => |x, _| v::erf(x),
        "tanh" => |x, _| v::tanh(x),
        "recip" => |x, _| v::recip(x),
        "rsqrt" => |x, _| v::rsqrt(x),
        other => panic!("no reference for vop {other}"),
    };
    f(x, y)
}

#[test]
fn reductions_follow_the_lane_order() {
    let mut rng = StdRng::seed_from_u64(2);
    for lanes in [None, Some(3), Some(1), Some(16)] {
        let mut cfg = HwConfig::tiny_4x4();
        cfg.vector_lanes = lanes;
        cfg.validate().unwrap();
        for op in ["sum", "max"] {
            // Large and small magnitudes so the summation order shows.
            let x: Vec<f32> =
                (0..ROWS * LEN).map(|_| rng.gen_range(-1.0f32..1.0) * 2f32.powi(rng.gen_range(-20..20))).collect();
            let body = format!("vred op={op} {PATTERN_X} dst=24 dst_step=3 rows=3 len=10");
            let store = "store buf=acc dram=0x2000 stride=16 rows=9 cols=4 addr=24 @wait(compute)";
            let mut m = run(&cfg, &[(X, f32_bytes(&x))], &body, store);
            let got = read_f32(&mut m, OUT, 9 * 4);
            for r in 0..ROWS {
                let row = &x[r * LEN..(r + 1) * LEN];
                let l = cfg.vector_lanes() as usize;
                let want = if op == "sum" { v::sum_row(row, l) } else { v::max_row(row, l) };
                // Every column of the result row holds the value.
                same_bits(&got[r * 12..r * 12 + 4], &[want; 4], &format!("vred {op}, {l} lanes, row {r}"));
            }
            let l = cfg.vector_lanes();
            assert_eq!(m.counters().get(Counter::VectorBusy), isa::timing::vred_cycles(3, 10, l), "{op} {l}");
        }
    }
}

#[test]
fn conversions_and_mask_match_numerics() {
    let cfg = HwConfig::tiny_4x4();
    let mut rng = StdRng::seed_from_u64(3);
    for seed in 0..8 {
        // vdeq of int32 accumulator words with a per-column scale.
        let q: Vec<i32> = (0..ROWS * LEN).map(|_| rng.gen_range(-100_000..100_000)).collect();
        let scales: Vec<f32> = (0..LEN).map(|_| rng.gen_range(1e-4f32..1e-2)).collect();
        let qb: Vec<u8> = q.iter().flat_map(|v| v.to_le_bytes()).collect();
        let body =
            format!("vdeq src_buf=acc src=0 src_step=1 src_bstride=3 {PATTERN_OUT} rows=3 len=10 zp=-7 scale=40");
        let mut m = run(&cfg, &[(X, qb), (G, f32_bytes(&scales))], &body, STORE_RESULT);
        let want: Vec<f32> = (0..ROWS * LEN).map(|i| v::dequantize(q[i], scales[i % LEN], -7)).collect();
        same_bits(&read_f32(&mut m, OUT, ROWS * LEN), &want, &format!("vdeq acc, seed {seed}"));

        // vquant to uint8 scratchpad rows, then vdeq of those bytes back.
        let x = random_rows(&mut rng, ROWS * LEN);
        let scale = rng.gen_range(0.01f32..0.5);
        let body = format!(
            "vquant out_type=u8 src=0 src_step=1 src_bstride=3 dst=100 dst_step=1 dst_bstride=3 rows=3 len=10 \
             zp=128 qmin=0 qmax=255 scale={:#x}\n\
             vdeq src_buf=spad in_type=u8 src=100 src_step=1 src_bstride=3 {PATTERN_OUT} rows=3 len=10 zp=128 \
             scale_imm=1 imm={:#x}",
            scale.to_bits(),
            scale.to_bits()
        );
        let store = format!("{STORE_RESULT}\nstore dram=0x3000 stride=10 rows=3 cols=10 addr=100");
        let mut m2 = run(&cfg, &[(X, f32_bytes(&x))], &body, &store);
        let bytes = m2.read_mem(0x3000, ROWS * LEN).unwrap();
        let wantq: Vec<u8> = x.iter().map(|&e| v::quantize(e, scale, 128, 0, 255) as u8).collect();
        assert_eq!(bytes, wantq, "vquant, seed {seed}");
        let back: Vec<f32> = wantq.iter().map(|&b| v::dequantize(b as i32, scale, 128)).collect();
        same_bits(&read_f32(&mut m2, OUT, ROWS * LEN), &back, &format!("vdeq spad, seed {seed}"));

        // vmask: the elements past the diagonal become the fill.
        let diag = rng.gen_range(-3i16..6);
        let fill = f32::MIN;
        let body = format!(
            "vop op=add {PATTERN_OUT} {PATTERN_X} b_imm=1 imm=0x80000000 rows=3 len=10\n\
                            vmask {PATTERN_OUT} rows=3 len=10 diag={diag} imm={:#x}",
            fill.to_bits()
        );
        let mut m = run(&cfg, &[(X, f32_bytes(&x))], &body, STORE_RESULT);
        let want: Vec<f32> = (0..ROWS * LEN)
            .map(|i| if (i % LEN) as i64 > (i / LEN) as i64 + diag as i64 { fill } else { v::add(x[i], -0.0) })
            .collect();
        same_bits(&read_f32(&mut m, OUT, ROWS * LEN), &want, &format!("vmask diag {diag}"));
    }
}

/// LayerNorm and (causal) Softmax of three rows of ten, as the compiler
/// will emit them, against `layer_norm_row` / `softmax_row`.
#[test]
fn layer_norm_and_softmax_programs_equal_the_composites() {
    let mut rng = StdRng::seed_from_u64(4);
    for lanes in [None, Some(3)] {
        let mut cfg = HwConfig::tiny_4x4();
        cfg.vector_lanes = lanes;
        let l = cfg.vector_lanes() as usize;
        for seed in 0..4 {
            let x: Vec<f32> = (0..ROWS * LEN).map(|_| rng.gen_range(-4.0f32..4.0)).collect();
            let gamma: Vec<f32> = (0..LEN).map(|_| rng.gen_range(0.5f32..1.5)).collect();
            let beta: Vec<f32> = (0..LEN).map(|_| rng.gen_range(-0.5f32..0.5)).collect();
            let data = [(X, f32_bytes(&x)), (G, f32_bytes(&gamma)), (H, f32_bytes(&beta))];
            let eps = 1e-5f32;
            let inv_n = v::recip(LEN as f32);
            // Per-row scalars live in rows 50..53 and 53..56 (every column).
            let s = "dst=50 dst_step=1 dst_bstride=0 a=50 a_step=1 a_bstride=0";
            let t = "dst=53 dst_step=1 dst_bstride=0 a=53 a_step=1 a_bstride=0";
            let xp = "dst=0 dst_step=1 dst_bstride=3 a=0 a_step=1 a_bstride=3";
            let layer_norm = format!(
                "vred op=sum a=0 a_step=1 a_bstride=3 dst=50 dst_step=1 rows=3 len=10\n\
                 vop op=mul {s} b_imm=1 imm={inv:#x} rows=3 len=4\n\
                 vop op=sub {xp} b=50 b_step=1 b_bstride=0 rows=3 len=10\n\
                 vop op=mul dst=24 dst_step=1 dst_bstride=3 a=0 a_step=1 a_bstride=3 b=0 b_step=1 b_bstride=3 rows=3 len=10\n\
                 vred op=sum a=24 a_step=1 a_bstride=3 dst=53 dst_step=1 rows=3 len=10\n\
                 vop op=mul {t} b_imm=1 imm={inv:#x} rows=3 len=4\n\
                 vop op=add {t} b_imm=1 imm={eps:#x} rows=3 len=4\n\
                 vop op=rsqrt {t} rows=3 len=4\n\
                 vop op=mul {xp} b=53 b_step=1 b_bstride=0 rows=3 len=10\n\
                 vop op=mul {xp} b=40 b_step=0 b_bstride=1 rows=3 len=10\n\
                 vop op=add {xp} b=44 b_step=0 b_bstride=1 rows=3 len=10",
                inv = inv_n.to_bits(),
                eps = eps.to_bits()
            );
            let store_x = "store buf=acc dram=0x2000 stride=40 rows=3 cols=10 addr=0 @wait(compute)";
            let mut m = run(&cfg, &data, &layer_norm, store_x);
            let want: Vec<f32> = x.chunks(LEN).flat_map(|row| v::layer_norm_row(row, &gamma, &beta, eps, l)).collect();
            same_bits(&read_f32(&mut m, OUT, ROWS * LEN), &want, &format!("LayerNorm, {l} lanes, seed {seed}"));

            for causal in [false, true] {
                let mask = if causal {
                    format!("vmask dst=0 dst_step=1 dst_bstride=3 rows=3 len=10 diag=2 imm={:#x}\n", f32::MIN.to_bits())
                } else {
                    String::new()
                };
                let softmax = format!(
                    "{mask}vred op=max a=0 a_step=1 a_bstride=3 dst=50 dst_step=1 rows=3 len=10\n\
                     vop op=sub {xp} b=50 b_step=1 b_bstride=0 rows=3 len=10\n\
                     vop op=exp {xp} rows=3 len=10\n\
                     vred op=sum a=0 a_step=1 a_bstride=3 dst=53 dst_step=1 rows=3 len=10\n\
                     vop op=recip {t} rows=3 len=4\n\
                     vop op=mul {xp} b=53 b_step=1 b_bstride=0 rows=3 len=10"
                );
                let mut m = run(&cfg, &data, &softmax, store_x);
                let want: Vec<f32> = x
                    .chunks(LEN)
                    .enumerate()
                    .flat_map(|(r, row)| {
                        let masked: Vec<f32> = row
                            .iter()
                            .enumerate()
                            .map(|(e, &v)| if causal && e > r + 2 { f32::MIN } else { v })
                            .collect();
                        v::softmax_row(&masked, l)
                    })
                    .collect();
                same_bits(
                    &read_f32(&mut m, OUT, ROWS * LEN),
                    &want,
                    &format!("Softmax (causal {causal}), {l} lanes, seed {seed}"),
                );
            }
        }
    }
}

#[test]
fn assembly_round_trips_and_illegal_encodings_are_refused() {
    let text = "vdeq src_buf=spad in_type=u8 src=1 src_step=2 src_bstride=3 dst=4 dst_step=5 dst_bstride=6 rows=7 len=8 zp=-9 scale_imm=1 imm=0x3f800000\n\
                vquant out_type=u8 src=1 src_step=1 src_bstride=2 dst=3 dst_step=1 dst_bstride=4 rows=2 len=33 zp=128 qmin=0 qmax=255 scale=0x3c23d70a\n\
                vop op=max dst=1 dst_step=1 dst_bstride=2 a=3 a_step=1 a_bstride=2 b=9 b_step=0 b_bstride=1 rows=2 len=5\n\
                vop op=div dst=1 a=1 b_imm=1 imm=0x3fb504f3 rows=1 len=1\n\
                vop op=erf dst=1 a=1 rows=1 len=1\n\
                vred op=max a=0 a_step=1 a_bstride=4 dst=9 dst_step=2 rows=4 len=16\n\
                vmask dst=0 dst_step=1 dst_bstride=4 rows=4 len=16 diag=-3 imm=0xff7fffff\n";
    let code = isa::asm::parse_program(text).unwrap();
    assert!(code.iter().all(Instr::is_vector));
    for i in &code {
        assert_eq!(Instr::decode(&i.encode()).unwrap(), *i);
        let printed = i.to_string();
        assert_eq!(isa::asm::parse_program(&printed).unwrap(), vec![*i], "{printed}");
    }
    // Canonical encodings: unused fields must be zero.
    for bad in [
        "vop op=exp dst=1 a=1 b=3 rows=1 len=1",
        "vop op=exp dst=1 a=1 b_imm=1 rows=1 len=1",
        "vop op=add dst=1 a=1 b=2 imm=5 rows=1 len=1",
        "vop op=add dst=1 a=1 b=2 b_imm=1 rows=1 len=1",
        "vdeq src_buf=acc in_type=u8 dst=1 rows=1 len=1",
        "vdeq dst=1 rows=1 len=1 scale_imm=1 scale=3",
        "vred a=0 dst=1 rows=0 len=1",
        "vmask dst=1 rows=1 len=0",
    ] {
        assert!(isa::asm::parse_program(bad).is_err(), "{bad} was accepted");
    }
    // An op code past the enumeration does not decode.
    let mut word = Instr::from(ins::Vop { op: ins::VOP_RSQRT, rows: 1, len: 1, ..Default::default() }).encode();
    word[2] = (word[2] & 0xf0) | 11;
    assert!(
        matches!(Instr::decode(&word), Err(ins::DecodeError::IllegalField { field: "op", .. })),
        "{:?}",
        Instr::decode(&word)
    );
}

#[test]
fn out_of_range_rows_fault_at_dispatch() {
    let cfg = HwConfig::tiny_4x4();
    let acc_rows = cfg.acc_rows();
    for (body, what) in [
        (format!("vop op=add dst=0 a=0 b={} rows=1 len=4", acc_rows), "vop b"),
        (format!("vred a=0 a_step=1 a_bstride={acc_rows} dst=0 rows=1 len=5"), "vred a"),
        (
            "vquant src=0 dst=0 dst_step=40000 rows=2 len=1 qmin=-128 qmax=127 scale=0x3f800000".to_string(),
            "vquant dst",
        ),
        ("vdeq dst=0 rows=1 len=4 scale=65535".to_string(), "vdeq scale"),
    ] {
        let code = isa::asm::parse_program(&format!("{body}\nfinish")).unwrap();
        let e = isa::legal::check(&code[0], &cfg).unwrap_err();
        assert_eq!(e.code, ErrorCode::BufferOutOfRange, "{body}");
        assert!(e.message.contains(what), "{e}");
        let mut m = sim::Model::new(&cfg).unwrap();
        let bytes: Vec<u8> = code.iter().flat_map(|i| i.encode()).collect();
        m.write_mem(0, &bytes).unwrap();
        m.write_reg(regs::PROG_LEN, 2).unwrap();
        m.write_reg(regs::WIN_LIMIT, 1 << 20).unwrap();
        m.write_reg(regs::CTRL, regs::CTRL_START).unwrap();
        assert_eq!(m.advance(1 << 20).unwrap(), regs::STATUS_FAULT);
        assert_eq!(m.error(), (ErrorCode::BufferOutOfRange, 0), "{body}");
    }
}

/// A MATMUL's int32 results dequantized by the vector unit straight from
/// the accumulator: `vdeq` waits for the array to drain (ISA.md §3
/// hazards), so no token orders them.
#[test]
fn vdeq_waits_for_the_array_to_drain() {
    let cfg = HwConfig::tiny_4x4();
    let a: Vec<i8> = (0..16).map(|i| (i * 37 % 256 - 128) as i8).collect();
    let w: Vec<i8> = (0..16).map(|i| (i * 7 - 50) as i8).collect();
    let scale = 0.0123f32;
    let text = format!(
        "load dram=0x1000 stride=4 rows=8 cols=4 addr=0 @signal(compute)\n\
         ldw addr=4 k=4 n=4 @wait(load)\n\
         matmul a=0 m=4 acc=0 swap=1\n\
         vdeq src_buf=acc src=0 src_step=1 dst=8 dst_step=1 rows=4 len=4 scale_imm=1 imm={:#x} @signal(store)\n\
         store buf=acc dram=0x2000 stride=16 rows=4 cols=4 addr=8 @wait(compute)\n\
         finish",
        scale.to_bits()
    );
    let code = isa::asm::parse_program(&text).unwrap();
    let mut m = sim::Model::new(&cfg).unwrap();
    let bytes: Vec<u8> = code.iter().flat_map(|i| i.encode()).collect();
    m.write_mem(0, &bytes).unwrap();
    let data: Vec<u8> = a.iter().chain(&w).map(|&v| v as u8).collect();
    m.write_mem(0x1000, &data).unwrap();
    m.write_reg(regs::PROG_LEN, code.len() as u32).unwrap();
    m.write_reg(regs::WIN_LIMIT, 1 << 20).unwrap();
    m.write_reg(regs::CTRL, regs::CTRL_START).unwrap();
    assert_eq!(m.advance(1 << 20).unwrap(), regs::STATUS_DONE);
    let got = read_f32(&mut m, 0x2000, 16);
    let want: Vec<f32> = (0..16)
        .map(|k| {
            let (i, j) = (k / 4, k % 4);
            let acc: i32 = (0..4).map(|r| a[i * 4 + r] as i32 * w[r * 4 + j] as i32).sum();
            v::dequantize(acc, scale, 0)
        })
        .collect();
    same_bits(&got, &want, "matmul then vdeq");
    let trace = m.trace();
    assert!(trace[3].start >= trace[2].finish, "vdeq {:?} before the drain of matmul {:?}", trace[3], trace[2]);
}
