//! GEMVs and few-row GEMMs on the model against the plain reference: the
//! streaming schedule (int8 A, int32 output, K split over many accumulator
//! passes, several accumulator blocks) and the weight-stationary fallback
//! (uint8 A, int8 output), on the 4x4 and the 16x16 configs.

use compiler::gemm::{
    lower_gemm, reference_gemm, Dataflow, GemmOutput, GemmSpec, GemmUse, WeightFormat, INPUT, OUTPUT,
};
use driver::{Driver, Outcome};
use isa::HwConfig;
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Seeded `rand` draws, so failures reproduce.
trait Draw {
    fn below(&mut self, n: usize) -> usize;
    fn bytes(&mut self, n: usize) -> Vec<u8>;
}
impl Draw for StdRng {
    fn below(&mut self, n: usize) -> usize {
        self.gen_range(0..n)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.gen()).collect()
    }
}

fn run(cfg: &HwConfig, spec: &GemmSpec, a: &[u8]) -> Vec<i32> {
    run_counting(cfg, spec, a).0
}

/// The output and the MACs the array performed.
fn run_counting(cfg: &HwConfig, spec: &GemmSpec, a: &[u8]) -> (Vec<i32>, u64) {
    let prog = lower_gemm(spec, cfg).unwrap_or_else(|e| panic!("{}: {e}", cfg.name));
    let mut d = Driver::new(sim::Model::new(cfg).unwrap());
    d.load(&prog).unwrap();
    d.write_tensor(prog.tensor(INPUT).unwrap(), a).unwrap();
    let rep = d.run().unwrap();
    assert_eq!(rep.outcome, Outcome::Done, "{}: {:?}", cfg.name, rep.outcome);
    let bytes = d.read_tensor(prog.tensor(OUTPUT).unwrap()).unwrap();
    let out = match spec.output {
        GemmOutput::Int32 => bytes.chunks(4).map(|c| i32::from_le_bytes(c.try_into().unwrap())).collect(),
        GemmOutput::Int8 { .. } => bytes.iter().map(|&b| b as i8 as i32).collect(),
    };
    (out, rep.counters.get(isa::Counter::Macs))
}

fn format_of(cfg: &HwConfig, spec: &GemmSpec) -> WeightFormat {
    let usage =
        GemmUse { m: spec.m, a_unsigned: spec.input_unsigned, int32_out: matches!(spec.output, GemmOutput::Int32) };
    Dataflow::for_config(cfg).unwrap().pack(&spec.weights, spec.k, spec.n, usage, cfg).format()
}

/// Arrays with more rows than a scratchpad row holds (8x4), fewer (4x8),
/// and neither square nor a power of two (5x12).
fn nonsquare() -> Vec<HwConfig> {
    [(8, 4), (4, 8), (5, 12)].into_iter().map(|(rows, cols)| HwConfig::tiny_shaped(rows, cols)).collect()
}

#[test]
fn random_gemvs_match_the_reference() {
    let mut rng = StdRng::seed_from_u64(0x9e3779b97f4a7c15);
    let mut streamed = 0;
    for cfg in [HwConfig::tiny_4x4(), HwConfig::default_16x16()].into_iter().chain(nonsquare()) {
        let cols = cfg.array.cols as usize;
        for case in 0..12 {
            // M up to the array's columns; K up to many k-tiles (not a
            // multiple of the tile); N long enough to stream, over several
            // accumulator blocks.
            let m = 1 + rng.below(cols);
            let k = 1 + rng.below(if cfg.array.cols == 16 { 1500 } else { 300 });
            let n = 64 * m + rng.below(2500);
            let (unsigned, int8) = match case % 4 {
                0 | 1 => (false, false),
                2 => (true, false),
                _ => (false, true),
            };
            let output = if int8 {
                GemmOutput::Int8 {
                    bias: (0..n).map(|_| rng.below(2001) as i32 - 1000).collect(),
                    scale: (0..n).map(|_| 0.0001 + rng.below(100) as f32 * 1e-5).collect(),
                    zero_point: 3,
                    qmin: -128,
                    qmax: 127,
                }
            } else {
                GemmOutput::Int32
            };
            let spec = GemmSpec {
                m,
                k,
                n,
                weights: rng.bytes(k * n).into_iter().map(|b| b as i8).collect(),
                input_unsigned: unsigned,
                output,
            };
            let a = rng.bytes(m * k);
            let format = format_of(&cfg, &spec);
            let expect_stream = !unsigned && !int8 && 10 * m * k <= k * n / cfg.dram.bytes_per_cycle as usize;
            // K rows of A^T and three weight buffers of at least `rows` rows.
            let fits = k + 3 * cfg.array.rows as usize <= cfg.spad_rows() as usize;
            let expect_stream = expect_stream && fits;
            // A short K pads each streamed row with zeros, which the
            // compressed stream does not store.
            assert_eq!(format.is_streamed(), expect_stream, "{} {m}x{k}x{n}", cfg.name);
            streamed += expect_stream as usize;
            assert_eq!(run(&cfg, &spec, &a), reference_gemm(&spec, &a), "{} {m}x{k}x{n} {format:?}", cfg.name);
        }
    }
    assert!(streamed >= 15, "only {streamed} cases streamed");
}

/// The decode shape that did not compile before (two 8192-row weight
/// stripes exceed the scratchpad): K split across accumulator passes.
#[test]
fn a_long_k_gemv_compiles_and_is_exact() {
    let cfg = HwConfig::default_16x16();
    let mut rng = StdRng::seed_from_u64(7);
    let (k, n) = (8192, 1040);
    let spec = GemmSpec {
        m: 1,
        k,
        n,
        weights: rng.bytes(k * n).into_iter().map(|b| b as i8).collect(),
        input_unsigned: false,
        output: GemmOutput::Int32,
    };
    assert_eq!(format_of(&cfg, &spec), WeightFormat::StreamI8);
    let a = rng.bytes(k);
    assert_eq!(run(&cfg, &spec, &a), reference_gemm(&spec, &a));
}

/// Weight-stationary GEMMs whose two weight stripes do not fit beside A
/// (more rows than the streaming schedule takes, uint8 A, int8 output):
/// K split into stripe pieces across accumulator passes, K above 65,535
/// included.
#[test]
fn k_split_weight_stationary_gemms_match_the_reference() {
    let mut rng = StdRng::seed_from_u64(0x51ab1e);
    let cases = [
        (HwConfig::tiny_4x4(), 9, 3000, 10, true, true),
        (HwConfig::tiny_4x4(), 6, 2500, 7, false, false),
        (HwConfig::default_16x16(), 40, 9000, 40, false, true),
        (HwConfig::default_16x16(), 2, 70_000, 20, true, true),
    ];
    for (cfg, m, k, n, unsigned, int8) in cases {
        let output = if int8 {
            GemmOutput::Int8 {
                bias: (0..n).map(|_| rng.below(20001) as i32 - 10000).collect(),
                scale: (0..n).map(|_| 0.00002 + rng.below(100) as f32 * 1e-6).collect(),
                zero_point: -2,
                qmin: -128,
                qmax: 127,
            }
        } else {
            GemmOutput::Int32
        };
        let spec = GemmSpec {
            m,
            k,
            n,
            weights: rng.bytes(k * n).into_iter().map(|b| b as i8).collect(),
            input_unsigned: unsigned,
            output,
        };
        assert_eq!(format_of(&cfg, &spec), WeightFormat::DenseI8, "{} {m}x{k}x{n}", cfg.name);
        let a = rng.bytes(m * k);
        assert_eq!(run(&cfg, &spec, &a), reference_gemm(&spec, &a), "{} {m}x{k}x{n}", cfg.name);
    }
}

/// A split K whose first pieces hold only zero weights: those pieces are
/// never loaded nor streamed, and the MACs are the packing's.
#[test]
fn all_zero_pieces_of_a_split_k_are_skipped() {
    let cfg = HwConfig::tiny_4x4();
    let mut rng = StdRng::seed_from_u64(99);
    let (m, k, n) = (8, 3000, 6);
    let weights: Vec<i8> =
        rng.bytes(k * n).into_iter().enumerate().map(|(x, b)| if x / n < 1700 { 0 } else { b as i8 }).collect();
    let spec = GemmSpec { m, k, n, weights, input_unsigned: true, output: GemmOutput::Int32 };
    let a = rng.bytes(m * k);
    let (out, macs) = run_counting(&cfg, &spec, &a);
    assert_eq!(out, reference_gemm(&spec, &a));
    let usage = GemmUse { m, a_unsigned: true, int32_out: true };
    let packed = Dataflow::for_config(&cfg).unwrap().pack(&spec.weights, k, n, usage, &cfg);
    assert_eq!(macs, packed.macs(m));
    assert!(macs < (m * k * n) as u64 / 2, "{macs} MACs: the zero rows were streamed");
}

/// Unstructured sparse weights stream compressed (`--weights auto`: a
/// bitmask and the non-zeros per row, expanded by the LOAD unit) with the
/// same outputs and MACs as dense, fewer DRAM bytes in proportion, and
/// dense weights stay `StreamI8` (the threshold).
#[test]
fn sparse_gemvs_stream_compressed_and_match_dense() {
    use compiler::gemm::{lower_gemm_with, WeightChoice};
    let mut rng = StdRng::seed_from_u64(0x5a4e);
    for cfg in [HwConfig::tiny_4x4(), HwConfig::default_16x16(), HwConfig::tiny_shaped(5, 12)] {
        for (case, density) in [0.05, 0.3, 0.5, 0.7, 1.0].into_iter().enumerate() {
            let (m, k, n) = (1 + case % 2, 64 + rng.below(400), 1200 + rng.below(800));
            let weights: Vec<i8> =
                (0..k * n).map(|_| if rng.gen_bool(density) { rng.gen_range(1..=255u8) as i8 } else { 0 }).collect();
            let spec = GemmSpec { m, k, n, weights, input_unsigned: false, output: GemmOutput::Int32 };
            let a = rng.bytes(m * k);
            let format = format_of(&cfg, &spec);
            let tile = (cfg.array.rows.min(cfg.array.cols)) as usize;
            let rows = k.div_ceil(tile) * n;
            let (mask, width) =
                (isa::legal::stream_mask_bytes(cfg.array.cols as u64) as usize, cfg.array.cols as usize);
            let nz = spec.weights.iter().filter(|&&v| v != 0).count();
            let pays = (rows * mask + nz) as f64 <= compiler::gemm::SPARSE_STREAM_MAX_BYTES * (rows * width) as f64;
            let want = if pays { WeightFormat::StreamSparseI8 } else { WeightFormat::StreamI8 };
            assert_eq!(format, want, "{} {m}x{k}x{n} at {density}", cfg.name);
            let mut results = Vec::new();
            for choice in [WeightChoice::Auto, WeightChoice::Dense] {
                let prog = lower_gemm_with(&spec, &cfg, choice).unwrap();
                let mut d = Driver::new(sim::Model::new(&cfg).unwrap());
                d.load(&prog).unwrap();
                d.write_tensor(prog.tensor(INPUT).unwrap(), &a).unwrap();
                let rep = d.run().unwrap();
                assert_eq!(rep.outcome, Outcome::Done, "{}: {:?}", cfg.name, rep.outcome);
                let out: Vec<i32> = d
                    .read_tensor(prog.tensor(OUTPUT).unwrap())
                    .unwrap()
                    .chunks(4)
                    .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
                    .collect();
                let c = &rep.counters;
                results.push((out, c.get(isa::Counter::Macs), c.get(isa::Counter::DramReadBytes)));
            }
            let (sparse, dense) = (&results[0], &results[1]);
            assert_eq!(sparse.0, reference_gemm(&spec, &a), "{} {m}x{k}x{n} at {density}", cfg.name);
            assert_eq!(sparse.0, dense.0);
            assert_eq!(sparse.1, dense.1, "the array multiplies the expanded rows");
            if pays {
                // The reads fall by the bytes the stream leaves out (up to
                // a partial beat per chunk).
                let saved = dense.2 as f64 - sparse.2 as f64;
                let expect = (rows * width - rows * mask - nz) as f64;
                let slack = 0.02 * (rows * width) as f64;
                assert!((saved - expect).abs() <= slack, "{} at {density}: saved {saved}, expected {expect}", cfg.name);
            } else {
                assert_eq!(sparse.2, dense.2);
            }
        }
    }
}
