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
        let times = layer_times(&prog, &cfg);
        let t = times.iter().find(|t| t.name == conv2.name).unwrap();
        runs.push((formats, got.output, cycles, weight_bytes, conv2.macs, t.array));
    }
    let [(dense_formats, dense_out, dense_cycles, dense_w, dense_macs, dense_array), (formats, out, cycles, w, macs, array)] =
        &runs[..]
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
    // The array's bound: per output tile, 9 taps of 16 channels (K = 144)
    // take 9 dense passes and ceil(144 / 32) = 5 2:4 ones of the same
    // length (a pass streams the 64 output pixels; two taps share a 2:4
    // tile, the ninth has one alone), so 5/9 = 0.556x of the array's busy
    // cycles, above 0.55 before any DMA or requantization time.
    let array_ratio = *array as f64 / *dense_array as f64;
    println!(
        "cnn_nm24 conv2 array busy: dense {dense_array} cycles, 2:4 {array} ({array_ratio:.3}x; 5 passes of 9: {:.3}x)",
        5.0 / 9.0
    );
    assert!((5.0 / 9.0 - 0.01..=5.0 / 9.0 + 0.02).contains(&array_ratio), "{array_ratio:.3}");
    assert_eq!(macs * 2, *dense_macs);
    assert!(bytes <= 0.625 + 1e-9, "conv2 weights at {bytes:.3}x");
    assert!(ratio < 0.75, "conv2 at {ratio:.3}x the dense cycles");
}

/// Per layer of a program run alone on the model (inputs as loading left
/// them: the array's, vector unit's and DMA's timing does not depend on
/// the data): its cycles (first start to last finish), the array's busy
/// cycles (`max(m, preload k)` per `matmul`, `k` per `ldw`), the post-
/// processor's (vector and `requant` instructions, issue to finish) and
/// its bus bytes: its LOADs' and STOREs' and its instructions' own (the
/// fetch unit reads them over the same bus, 32 bytes each).
struct LayerTime {
    name: String,
    cycles: u64,
    array: u64,
    vector: u64,
    bus: u64,
}

fn layer_times(prog: &Program, cfg: &HwConfig) -> Vec<LayerTime> {
    let mut d = Driver::new(sim::Model::new(cfg).unwrap());
    d.load(prog).unwrap();
    let report = d.run().unwrap();
    let mut at = vec![(0u64, 0u64); prog.code.len()];
    for t in &report.trace {
        at[t.index as usize] = (t.start, t.finish);
    }
    let layers = &prog.meta.layers;
    let cycles = systole::flow::layers::layer_cycles(&report.trace, layers);
    layers
        .iter()
        .zip(cycles)
        .map(|(l, cycles)| {
            let (mut array, mut vector) = (0, 0);
            let mut bus = ((l.last - l.first) * isa::instr::INSTR_BYTES) as u64;
            for (i, instr) in prog.code.iter().enumerate().take(l.last).skip(l.first) {
                match instr {
                    Instr::Matmul(m) => array += (m.m as u64).max(if m.preload == 1 { m.k as u64 } else { 0 }),
                    Instr::Ldw(w) => array += w.k as u64,
                    Instr::Load(_) | Instr::Store(_) => bus += dma_bus_bytes(instr, cfg),
                    Instr::Vdeq(_) | Instr::Vop(_) | Instr::Vquant(_) | Instr::Vred(_) | Instr::Requant(_) => {
                        vector += at[i].1 - at[i].0
                    }
                    _ => {}
                }
            }
            LayerTime { name: l.name.clone(), cycles, array, vector, bus }
        })
        .collect()
}

/// tinybert_nm24's 12 Linear layers (K = 128 or 512, M = 32 tokens),
/// compiled for the 2:4 configuration with `--weights dense` and `auto`,
/// per layer: cycles dense and 2:4, and what bounds the 2:4 layer — the
/// array's busy cycles, the post-processor's (the fused epilogue: float
/// conversion, bias, scale, GELU, quantize) and the bus (its bytes at
/// `dram.bytes_per_cycle`). None of them is compute-bound on 2:4 tiles:
/// the FFN output projection (K = 512) moves 81.8 kB (A 16 kB, weights
/// 40 kB, its float32 output 16 kB, 6.5 kB of instructions), 5.1 k bus
/// cycles against 4.2 k array cycles, so against the dense layer's 8.3 k
/// array cycles it cannot go below 0.61x; Q, K, V and the attention
/// output (K = 128) are bound by the
/// bus and the vector unit, the FFN input projection (GELU) by the vector
/// unit. Asserts the figures reached (regression bounds) and prints them
/// (`cargo test --release --test sparse24 tinybert -- --nocapture`).
#[test]
fn tinybert_nm24_linear_layers_dense_vs_2_4() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("compiler/tests/data/transformers/tinybert_nm24/int8_qdq_float_matmul_out.onnx");
    let graph = compiler::onnx::import(&std::fs::read(path).unwrap()).unwrap();
    let cfg = sparse_config();
    let [dense, sparse] = [WeightChoice::Dense, WeightChoice::Auto].map(|choice| {
        let prog = compiler::lower::lower_with(&graph, &cfg, choice).unwrap().program;
        layer_times(&prog, &cfg)
    });
    let bw = cfg.dram.bytes_per_cycle as u64;
    println!("tinybert_nm24 Linear layers, dense -> 2:4 (16x16, 2:4 PEs); 2:4 array / vector / bus cycles");
    let mut linear = 0;
    for (d, s) in
        dense.iter().zip(&sparse).filter(|(d, _)| d.name.ends_with("dense/MatMul") || d.name.contains("self/"))
    {
        if !s.name.ends_with("MatMul") || s.name.ends_with("self/MatMul") || s.name.ends_with("MatMul_1") {
            continue;
        }
        assert_eq!(d.name, s.name);
        linear += 1;
        let ratio = s.cycles as f64 / d.cycles as f64;
        let bus = s.bus.div_ceil(bw);
        let bound = if s.vector >= bus.max(s.array) {
            "vector"
        } else if bus >= s.array {
            "bus"
        } else {
            "array"
        };
        println!(
            "  {:48} {:6} -> {:6} ({ratio:.3}x)  array {:5} -> {:5}  vector {:6}  bus {:5}  bound: {bound}",
            s.name.trim_start_matches("/bert/encoder/"),
            d.cycles,
            s.cycles,
            d.array,
            s.array,
            s.vector,
            bus
        );
        // Half the passes (plus each step's first `ldw`), never slower.
        assert!(s.array * 100 <= d.array * 55 && s.cycles < d.cycles, "{}", s.name);
        assert_ne!(bound, "array", "{}: a 2:4 Linear layer of tinybert_nm24 is not compute-bound", s.name);
        let limit = if s.name.ends_with("output/dense/MatMul") && !s.name.contains("attention") {
            0.63 // FFN2: measured 0.622x (its bus floor: 0.614x of the dense array cycles)
        } else if s.name.contains("intermediate") {
            1.0 // FFN1: GELU on the vector unit, 0.995x
        } else {
            0.86 // Q, K, V 0.74-0.77x; attention output 0.82-0.84x
        };
        assert!(ratio <= limit, "{}: {ratio:.3}x the dense cycles (bound {limit})", s.name);
    }
    assert_eq!(linear, 12);
}
