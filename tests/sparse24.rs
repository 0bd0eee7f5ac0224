//! 2:4-sparse weights (`wfmt = i8s24`, ISA.md §3) against the same layers
//! dense, on the cycle-accurate model: a compute-bound 512x512x512 GEMM with
//! random 2:4 weights, and cnn_nm24's conv2. Prints the measured ratios
//! (`cargo test --release --test sparse24 -- --nocapture`) and asserts
//! what the hardware must deliver:
//! - the GEMM in at most 0.55x the dense cycles, its weights in 0.625x the
//!   DRAM bytes (2 int8 of every 4 plus 2-bit positions: 2.5 of 4 bytes);
//! - the same outputs bit for bit, and half the MACs performed.

use compiler::gemm::{lower_gemm, Dataflow, GemmOutput, GemmSpec, GemmUse, WeightChoice, WeightFormat, INPUT, OUTPUT};
use driver::Driver;
use isa::instr::Instr;
use isa::program::Program;
use isa::{Counter, HwConfig};
use std::path::Path;
use systole::flow::layers::{dma_bus_bytes, weight_format};

fn sparse_config() -> HwConfig {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hw/sparse24.toml"));
    let cfg = HwConfig::from_toml(&text.unwrap()).unwrap();
    assert!(cfg.array.sparsity_2_4);
    cfg
}

/// Random 2:4 weights `[k, n]`: in every group of 4 reductions of a column
/// two random positions hold random non-zero values.
fn random_2_4(k: usize, n: usize, seed: u64) -> Vec<i8> {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    let mut b = vec![0i8; k * n];
    for col in 0..n {
        for g in 0..k / 4 {
            let p0 = next() % 4;
            let p1 = (p0 + 1 + next() % 3) % 4;
            for p in [p0, p1] {
                let v = (next() % 255) as i32 - 127;
                b[(4 * g + p as usize) * n + col] = if v == 0 { 1 } else { v as i8 };
            }
        }
    }
    b
}

/// Runs a lowered GEMM on A; returns C and the counters.
fn run_gemm(cfg: &HwConfig, prog: &Program, a: &[u8]) -> (Vec<u8>, isa::Counters) {
    let mut d = Driver::new(sim::Model::new(cfg).unwrap());
    d.load(prog).unwrap();
    d.write_mem(prog.tensor(INPUT).unwrap().addr, a).unwrap();
    let report = d.run().unwrap();
    let c = prog.tensor(OUTPUT).unwrap();
    let out = d.read_mem(c.addr, c.layout.bytes()).unwrap();
    (out, report.counters)
}

/// Bus bytes of the program's LOADs that read DRAM bytes `[lo, hi)`.
fn load_bytes_in(prog: &Program, cfg: &HwConfig, (lo, hi): (u64, u64)) -> u64 {
    prog.code
        .iter()
        .filter(|i| matches!(i, Instr::Load(l) if (lo..hi).contains(&(l.dram as u64))))
        .map(|i| dma_bus_bytes(i, cfg))
        .sum()
}

#[test]
fn gemm_512_on_2_4_tiles_takes_at_most_0_55_of_the_dense_cycles() {
    let (m, k, n) = (512, 512, 512);
    let spec = GemmSpec {
        m,
        k,
        n,
        weights: random_2_4(k, n, 7),
        input_unsigned: false,
        output: GemmOutput::Int8 { bias: vec![7; n], scale: vec![1e-4; n], zero_point: -128, qmin: -128, qmax: 127 },
    };
    let a: Vec<u8> = (0..m * k).map(|i| (i.wrapping_mul(40503) >> 3) as u8).collect();
    let sparse_cfg = sparse_config();
    let dense_cfg = HwConfig::default_16x16();
    let mut figures = Vec::new();
    for cfg in [&dense_cfg, &sparse_cfg] {
        let prog = lower_gemm(&spec, cfg).unwrap();
        // The weights are the first constants of the program's data.
        let usage = GemmUse { m, a_unsigned: false, int32_out: false };
        let packed = Dataflow::for_config(cfg).unwrap().pack_with(&spec.weights, k, n, usage, cfg, WeightChoice::Auto);
        let want = if cfg.array.sparsity_2_4 { WeightFormat::Sparse24I8 } else { WeightFormat::DenseI8 };
        assert_eq!(packed.format(), want);
        let weights = (prog.data_addr, prog.data_addr + packed.bytes().len() as u64);
        let (c, counters) = run_gemm(cfg, &prog, &a);
        figures.push((c, counters, load_bytes_in(&prog, cfg, weights)));
    }
    let [(c_dense, dense, w_dense), (c_sparse, sparse, w_sparse)] = &figures[..] else { unreachable!() };
    assert!(c_dense == c_sparse, "2:4 tiles give the dense output bit for bit");
    let cycles = sparse.get(Counter::Cycles) as f64 / dense.get(Counter::Cycles) as f64;
    let bytes = *w_sparse as f64 / *w_dense as f64;
    println!(
        "gemm 512x512x512: dense {} cycles, {} weight bytes; 2:4 {} cycles ({cycles:.3}x), {} weight bytes \
         ({bytes:.3}x); MACs {} -> {}",
        dense.get(Counter::Cycles),
        w_dense,
        sparse.get(Counter::Cycles),
        w_sparse,
        dense.get(Counter::Macs),
        sparse.get(Counter::Macs)
    );
    assert_eq!(sparse.get(Counter::Macs) * 2, dense.get(Counter::Macs), "the kept half of the MACs");
    assert!(cycles <= 0.55, "2:4 GEMM at {cycles:.3}x the dense cycles");
    assert!((bytes - 0.625).abs() < 0.001, "2:4 weights at {bytes:.4}x the dense bytes");
}

/// cnn_nm24 (2:4 in every group of 4 input channels at a kernel position,
/// conv1 dense): compiled for the 2:4 configuration, conv2 runs on i8s24
/// tiles (conv1 and fc stay int8: conv1 has one input channel, fc's
/// groups are in NCHW order while its input is NHWC), with the dense
/// program's output bit for bit, fewer cycles and weight bytes.
#[test]
fn cnn_nm24_conv2_on_2_4_tiles() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("compiler/tests/data/digits/cnn_nm24/int8_qop.onnx");
    let graph = compiler::onnx::import(&std::fs::read(path).unwrap()).unwrap();
    let cfg = sparse_config();
    let image: Vec<f32> = (0..64).map(|i| (i * 37 % 17) as f32 / 16.0).collect();
    let mut runs = Vec::new();
    for choice in [WeightChoice::Dense, WeightChoice::Auto] {
        let lowered = compiler::lower::lower_with(&graph, &cfg, choice).unwrap();
        let prog = lowered.program;
        let formats: Vec<_> =
            prog.meta.layers.iter().map(|l| (l.name.clone(), weight_format(&prog, l.first, l.last))).collect();
        let conv2 = prog.meta.layers.iter().find(|l| l.name.contains("conv2")).unwrap().clone();
        let mut d = Driver::new(sim::Model::new(&cfg).unwrap());
        d.load(&prog).unwrap();
        let got = d.infer(&prog, &image).unwrap();
        let cycles = systole::flow::layers::layer_cycles(&got.report.trace, std::slice::from_ref(&conv2))[0];
        // The weight superblocks: LOADs with the band stream's DRAM stride.
        let weight_bytes: u64 = prog.code[conv2.first..conv2.last]
            .iter()
            .filter(|i| matches!(i, Instr::Load(l) if l.stride == 17 * 16))
            .map(|i| dma_bus_bytes(i, &cfg))
            .sum();
        runs.push((formats, got.output, cycles, weight_bytes, conv2.macs));
    }
    let [(dense_formats, dense_out, dense_cycles, dense_w, dense_macs), (formats, out, cycles, w, macs)] = &runs[..]
    else {
        unreachable!()
    };
    assert!(dense_formats.iter().all(|(_, f)| *f != Some("i8s24")), "{dense_formats:?}");
    let want =
        [("/conv1/Conv_quant", Some("i8")), ("/conv2/Conv_quant", Some("i8s24")), ("/fc/Gemm_quant", Some("i8"))];
    for (name, format) in want {
        assert!(formats.contains(&(name.to_string(), format)), "{name}: {formats:?}");
    }
    assert_eq!(out, dense_out, "the 2:4 program gives the dense one's output");
    let ratio = *cycles as f64 / *dense_cycles as f64;
    let bytes = *w as f64 / *dense_w as f64;
    println!(
        "cnn_nm24 conv2, one inference: dense {dense_cycles} cycles, {dense_w} weight bytes; 2:4 {cycles} cycles \
         ({ratio:.3}x), {w} weight bytes ({bytes:.3}x); MACs {dense_macs} -> {macs}"
    );
    assert_eq!(macs * 2, *dense_macs);
    assert!(bytes <= 0.625 + 1e-9, "conv2 weights at {bytes:.3}x");
    assert!(ratio < 0.75, "conv2 at {ratio:.3}x the dense cycles");
}
