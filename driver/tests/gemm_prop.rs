//! Differential property tests: random quantized GEMMs lowered by the
//! compiler and run on the cycle model through the driver must write exactly
//! what `compiler::gemm::reference_gemm` computes, on several array
//! configurations (square and non-square: taller, wider, 5x12), and the run report must satisfy its invariants (MAC count,
//! a cycle lower bound, a well-formed trace, determinism). A program timed
//! under a different memory system (same fingerprint) must give the same
//! results.
//!
//! Case counts (chosen so the file runs well under a minute in release mode
//! on two shared cores): `gemm_matches_reference` runs 256 cases (each case
//! runs its program three times: once on a fresh device, once again on the
//! same device, once on another fresh device); `timing_config_changes_only_timing`
//! runs 128 cases (two runs each). Shapes are 1..=80 per dimension, with about
//! one dimension in eight drawn from 81..=200.

use compiler::gemm::{lower_gemm, reference_gemm, GemmOutput, GemmSpec, TileShape, INPUT, OUTPUT};
use driver::{Driver, Outcome, RunReport};
use isa::program::Program;
use isa::{Counter, HwConfig};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CONFIGS: [&str; 6] = ["tiny_4x4", "default_16x16", "large_32x32", "tall_8x4", "wide_4x8", "odd_5x12"];

fn config(i: usize) -> HwConfig {
    match i {
        0 => HwConfig::tiny_4x4(),
        1 => HwConfig::default_16x16(),
        2 => HwConfig::large_32x32(),
        _ => nonsquare(CONFIGS[i]),
    }
}

/// The tiny config reshaped (buffers resized to whole rows): `tall_8x4`
/// has more rows than a scratchpad row holds values, `wide_4x8` fewer.
fn nonsquare(name: &str) -> HwConfig {
    let (rows, cols) = match name {
        "tall_8x4" => (8, 4),
        "wide_4x8" => (4, 8),
        _ => (5, 12),
    };
    HwConfig { name: name.into(), ..HwConfig::tiny_shaped(rows, cols) }
}

/// The weight tile: K at most a scratchpad row (`cols` values) and the
/// array's rows, N the array's columns.
fn tile(cfg: &HwConfig) -> TileShape {
    TileShape { k: cfg.array.rows.min(cfg.array.cols) as usize, n: cfg.array.cols as usize }
}

/// Which kind of output a case asks for; the bulk values (weights, inputs,
/// bias, scales) come from a seeded RNG so cases stay small to shrink.
#[derive(Clone, Debug)]
enum OutKind {
    Int32,
    /// zero point, qmin, qmax (already legal: qmin <= qmax, all in i8 range).
    Int8 {
        zp: i32,
        qmin: i32,
        qmax: i32,
    },
}

fn dim() -> impl Strategy<Value = usize> {
    prop_oneof![7 => 1usize..=80, 1 => 81usize..=200]
}

fn out_kind() -> impl Strategy<Value = OutKind> {
    prop_oneof![
        1 => Just(OutKind::Int32),
        // Arbitrary clamp range.
        1 => (-128i32..=127, -128i32..=127, -128i32..=127).prop_map(|(zp, a, b)| OutKind::Int8 {
            zp,
            qmin: a.min(b),
            qmax: a.max(b),
        }),
        // Full range.
        1 => (-128i32..=127).prop_map(|zp| OutKind::Int8 { zp, qmin: -128, qmax: 127 }),
        // Fused ReLU: the clamp starts at the zero point.
        1 => (-128i32..=127, 0i32..=255).prop_map(|(zp, up)| OutKind::Int8 { zp, qmin: zp, qmax: (zp + up).min(127) }),
    ]
}

#[derive(Clone, Debug)]
struct Case {
    cfg: usize,
    m: usize,
    k: usize,
    n: usize,
    unsigned: bool,
    out: OutKind,
    seed: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (0usize..CONFIGS.len(), dim(), dim(), dim(), any::<bool>(), out_kind(), any::<u64>())
        .prop_map(|(cfg, m, k, n, unsigned, out, seed)| Case { cfg, m, k, n, unsigned, out, seed })
}

/// The GEMM and its input A for a case.
fn build(c: &Case) -> (GemmSpec, Vec<u8>) {
    let mut rng = StdRng::seed_from_u64(c.seed);
    let weights: Vec<i8> = (0..c.k * c.n).map(|_| rng.gen()).collect();
    let a: Vec<u8> = (0..c.m * c.k).map(|_| rng.gen()).collect();
    let output = match c.out {
        OutKind::Int32 => GemmOutput::Int32,
        OutKind::Int8 { zp, qmin, qmax } => GemmOutput::Int8 {
            // Bias of the order of the accumulators (|acc| < k * 255 * 128).
            bias: (0..c.n).map(|_| rng.gen_range(-200_000..=200_000)).collect(),
            // Log-uniform in [1e-5, 1e-1].
            scale: (0..c.n).map(|_| 10f32.powf(rng.gen_range(-5.0f32..=-1.0))).collect(),
            zero_point: zp,
            qmin,
            qmax,
        },
    };
    (GemmSpec { m: c.m, k: c.k, n: c.n, weights, input_unsigned: c.unsigned, output }, a)
}

fn decode_output(spec: &GemmSpec, bytes: &[u8]) -> Vec<i32> {
    match spec.output {
        GemmOutput::Int32 => bytes.chunks(4).map(|c| i32::from_le_bytes(c.try_into().unwrap())).collect(),
        GemmOutput::Int8 { .. } => bytes.iter().map(|&b| b as i8 as i32).collect(),
    }
}

/// Writes A, runs, and reads C back.
fn run_loaded(d: &mut Driver<sim::Model>, prog: &Program, spec: &GemmSpec, a: &[u8]) -> (Vec<i32>, RunReport) {
    d.write_tensor(prog.tensor(INPUT).unwrap(), a).unwrap();
    let rep = d.run().unwrap();
    let out_t = prog.tensor(OUTPUT).unwrap().clone();
    let out = decode_output(spec, &d.read_tensor(&out_t).unwrap());
    (out, rep)
}

fn fresh(cfg: &HwConfig, prog: &Program) -> Driver<sim::Model> {
    let mut d = Driver::new(sim::Model::new(cfg).unwrap());
    d.load(prog).unwrap();
    d
}

/// Index of the first differing element, for a readable failure.
fn first_diff(a: &[i32], b: &[i32]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y).or((a.len() != b.len()).then(|| a.len().min(b.len())))
}

fn check_outputs(what: &str, c: &Case, out: &[i32], want: &[i32]) -> Result<(), TestCaseError> {
    if let Some(i) = first_diff(out, want) {
        let (row, col) = (i / c.n, i % c.n);
        return Err(TestCaseError::fail(format!(
            "{what}: {} {}x{}x{}: first mismatch at C[{row}][{col}]: device {:?}, reference {:?} ({} of {} differ)",
            CONFIGS[c.cfg],
            c.m,
            c.k,
            c.n,
            out.get(i),
            want.get(i),
            out.iter().zip(want).filter(|(x, y)| x != y).count(),
            want.len()
        )));
    }
    Ok(())
}

/// The MACs the array performs: m x k x n, less the all-zero weight tiles
/// the compiler skips (a column of tiles keeps at least one).
fn streamed_macs(cfg: &HwConfig, c: &Case) -> u64 {
    let (spec, _) = build(c);
    let t = tile(cfg);
    let nz = compiler::gemm::nonzero_tiles(&spec.weights, c.k, c.n, t);
    let (kt, nt) = (c.k.div_ceil(t.k), c.n.div_ceil(t.n));
    let mut macs = 0;
    for j in 0..nt {
        let n_j = t.n.min(c.n - j * t.n);
        let live: Vec<usize> = (0..kt).filter(|&i| nz[i * nt + j]).collect();
        let live = if live.is_empty() { vec![0] } else { live };
        macs += live.iter().map(|&i| t.k.min(c.k - i * t.k) * n_j).sum::<usize>();
    }
    (c.m * macs) as u64
}

/// The report invariants of a completed GEMM run.
fn check_report(cfg: &HwConfig, prog: &Program, c: &Case, rep: &RunReport) -> Result<(), TestCaseError> {
    prop_assert_eq!(rep.outcome, Outcome::Done, "{} {}x{}x{}", CONFIGS[c.cfg], c.m, c.k, c.n);
    let mkn = streamed_macs(cfg, c);
    prop_assert_eq!(rep.counters.get(Counter::Macs), mkn, "MACs counter");
    let peak = cfg.peak_macs_per_cycle();
    prop_assert!(
        rep.cycles() >= mkn.div_ceil(peak),
        "{} cycles for {} MACs on a {}-MAC/cycle array",
        rep.cycles(),
        mkn,
        peak
    );
    prop_assert_eq!(rep.counters.get(Counter::Instructions), prog.code.len() as u64, "every instruction dispatched");
    prop_assert_eq!(rep.trace.len(), prog.code.len());
    for (i, t) in rep.trace.iter().enumerate() {
        prop_assert_eq!(t.index as usize, i);
        prop_assert!(t.finish > t.start, "instruction {} ({:?}): trace {:?}", i, prog.code[i].mnemonic(), t);
        prop_assert!(
            t.finish <= rep.cycles(),
            "instruction {} finishes at {} after the run's {} cycles",
            i,
            t.finish,
            rep.cycles()
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Model output equals the reference bit for bit; the report is sane and
    /// deterministic (same device re-run, and a fresh device).
    #[test]
    fn gemm_matches_reference(c in case()) {
        let cfg = config(c.cfg);
        let (spec, a) = build(&c);
        let prog = lower_gemm(&spec, &cfg).map_err(|e| TestCaseError::fail(format!("lowering failed: {e}")))?;
        let want = reference_gemm(&spec, &a);

        let mut d = fresh(&cfg, &prog);
        let (out, rep) = run_loaded(&mut d, &prog, &spec, &a);
        check_report(&cfg, &prog, &c, &rep)?;
        check_outputs("first run", &c, &out, &want)?;

        // The same program again on the same device (state left by a run
        // must not leak into the next one).
        let (out2, rep2) = run_loaded(&mut d, &prog, &spec, &a);
        check_outputs("second run, same device", &c, &out2, &want)?;
        prop_assert_eq!(&rep2.counters, &rep.counters, "counters differ between runs on the same device");
        prop_assert_eq!(&rep2.trace, &rep.trace, "trace differs between runs on the same device");

        // And on a fresh device.
        let mut d3 = fresh(&cfg, &prog);
        let (out3, rep3) = run_loaded(&mut d3, &prog, &spec, &a);
        check_outputs("fresh device", &c, &out3, &want)?;
        prop_assert_eq!(&rep3.counters, &rep.counters, "counters differ between devices");
        prop_assert_eq!(&rep3.trace, &rep.trace, "trace differs between devices");
    }
}

/// A memory system that differs only in timing: latency, bus width and
/// outstanding requests (none of which the fingerprint covers).
#[derive(Clone, Debug)]
struct Timing {
    latency: u32,
    bytes_log2: u32,
    outstanding: u32,
}

fn timing() -> impl Strategy<Value = Timing> {
    (prop_oneof![1u32..=20, 21u32..=300, Just(1024u32)], 0u32..=6, 1u32..=64)
        .prop_map(|(latency, bytes_log2, outstanding)| Timing { latency, bytes_log2, outstanding })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// One binary, two memory systems: identical outputs and MACs, a
    /// possibly different cycle count, never a fault.
    #[test]
    fn timing_config_changes_only_timing(c in case(), t in timing(), latency_only in any::<bool>()) {
        let cfg = config(c.cfg);
        let mut cfg2 = cfg.clone();
        cfg2.dram.latency_cycles = t.latency;
        if !latency_only {
            // Bus width: a power of two no wider than the array's rows of bytes.
            cfg2.dram.bytes_per_cycle = 1 << t.bytes_log2.min(cfg.array.cols.trailing_zeros());
            cfg2.dram.max_outstanding = t.outstanding;
        }
        cfg2.validate().map_err(|e| TestCaseError::fail(format!("timing variant invalid: {e}")))?;
        prop_assert_eq!(cfg.fingerprint(), cfg2.fingerprint());

        let (spec, a) = build(&c);
        let prog = lower_gemm(&spec, &cfg).map_err(|e| TestCaseError::fail(format!("lowering failed: {e}")))?;
        let want = reference_gemm(&spec, &a);

        let mut d1 = fresh(&cfg, &prog);
        let (out1, rep1) = run_loaded(&mut d1, &prog, &spec, &a);
        check_report(&cfg, &prog, &c, &rep1)?;
        check_outputs("original timing", &c, &out1, &want)?;

        let mut d2 = fresh(&cfg2, &prog);
        let (out2, rep2) = run_loaded(&mut d2, &prog, &spec, &a);
        check_report(&cfg2, &prog, &c, &rep2)?;
        check_outputs("other timing", &c, &out2, &want)?;
        prop_assert_eq!(rep2.counters.get(Counter::Macs), rep1.counters.get(Counter::Macs));
        prop_assert_eq!(rep2.counters.get(Counter::Instructions), rep1.counters.get(Counter::Instructions));
        // No assertion on the cycle counts: they may differ, or not.
    }
}

/// A few fixed shapes at the edges of the tiling (one element, exact tiles,
/// one past a tile) on every config, as plain tests.
#[test]
fn tile_edge_shapes_match_reference() {
    for cfg_i in 0..CONFIGS.len() {
        let cfg = config(cfg_i);
        let (tk, d) = (tile(&cfg).k, cfg.array.cols as usize);
        let edge = [1, tk - 1, tk, tk + 1, 2 * tk + 1];
        let mut seed = 1u64;
        for &m in &[1, d + 1] {
            for &k in &edge {
                for &n in &[1, d, d + 1] {
                    for out in [OutKind::Int32, OutKind::Int8 { zp: 3, qmin: 3, qmax: 127 }] {
                        seed += 1;
                        let c = Case { cfg: cfg_i, m, k, n, unsigned: seed.is_multiple_of(2), out, seed };
                        let (spec, a) = build(&c);
                        let prog = lower_gemm(&spec, &cfg).unwrap();
                        let mut drv = fresh(&cfg, &prog);
                        let (out, rep) = run_loaded(&mut drv, &prog, &spec, &a);
                        check_report(&cfg, &prog, &c, &rep).unwrap();
                        check_outputs("edge shape", &c, &out, &reference_gemm(&spec, &a)).unwrap();
                    }
                }
            }
        }
    }
}

/// Regression for the first bug these properties found: when M is not a
/// multiple of the m-block `mt` and K needs more than one k-tile, the last
/// (shorter) A block is stored with a column-block stride of its own row
/// count, but the MATMULs address k-tile `i` at `a_buf + i * mt`
/// (then compiler/src/gemm.rs, `a: p.a_buf[mb % 2] + (i * p.mt) as u16`), so
/// every k-tile after the first reads the wrong scratchpad rows.
#[test]
fn short_last_m_block_with_several_k_tiles() {
    // tiny_4x4: 127 rows are blocks of 64 and 63, K = 5 is two k-tiles;
    // 73 x 101: blocks of 37 and 36. default_16x16 and large_32x32: 601 rows
    // are blocks of 201 and a last one of 199.
    let mut failures = Vec::new();
    for (cfg_i, m, k, n) in [(0, 127, 5, 1), (0, 73, 101, 2), (1, 601, 40, 20), (2, 601, 70, 33)] {
        for out in [OutKind::Int32, OutKind::Int8 { zp: -5, qmin: -128, qmax: 127 }] {
            let c = Case { cfg: cfg_i, m, k, n, unsigned: false, out, seed: 7 };
            let cfg = config(cfg_i);
            let (spec, a) = build(&c);
            let prog = lower_gemm(&spec, &cfg).unwrap();
            let dataflow = compiler::gemm::Dataflow::for_config(&cfg).unwrap();
            let weights = compiler::gemm::PackedWeights::dense_i8(&spec.weights, k, n, dataflow.tile_shape());
            let mt = dataflow.block_rows(m, &weights, &cfg).unwrap();
            assert!(m % mt != 0 && k > cfg.array.rows as usize, "{m}x{k}: mt = {mt} must leave a short last block");
            let mut drv = fresh(&cfg, &prog);
            let (out, rep) = run_loaded(&mut drv, &prog, &spec, &a);
            check_report(&cfg, &prog, &c, &rep).unwrap();
            if let Err(e) = check_outputs("short last m-block", &c, &out, &reference_gemm(&spec, &a)) {
                failures.push(format!("{e} ({:?} output, mt = {mt})", c.out));
            }
        }
    }
    assert!(failures.is_empty(), "{} of 8 cases wrong:\n{}", failures.len(), failures.join("\n"));
}
