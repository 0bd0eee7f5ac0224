//! The verilated accelerator against the Rust model, on the 4x4 and 16x16
//! configurations: every program runs on both with the same memory image,
//! and the outcome, total cycles, every counter, each instruction's start
//! and finish cycle and the whole memory window afterwards must be equal.
//!
//! `cargo test -p rtl --features verilator --release --test accel`
//! (the first run builds each configuration's RTL, ~1-2 min, then it is
//! cached; see `rtl::verilate`).

use driver::compare::{compare_memory, compare_runs};
use driver::{Driver, Outcome, RunReport};
use isa::instr::Instr;
use isa::regs;
use isa::{Device, HwConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rtl::RtlDevice;
use std::path::Path;
use std::sync::Mutex;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn config(name: &str) -> HwConfig {
    let path = root().join(format!("examples/hw/{name}.toml"));
    HwConfig::from_toml(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// One RTL device per configuration for the whole test binary (building and
/// loading once); tests take turns.
static DEVICES: Mutex<Vec<(String, RtlDevice)>> = Mutex::new(Vec::new());

fn with_rtl<R>(cfg: &HwConfig, f: impl FnOnce(&mut RtlDevice) -> R) -> R {
    let mut devs = DEVICES.lock().unwrap_or_else(|e| e.into_inner());
    if !devs.iter().any(|(n, _)| *n == cfg.name) {
        let dev = RtlDevice::new(cfg).unwrap_or_else(|e| panic!("building the RTL of `{}`: {e}", cfg.name));
        devs.push((cfg.name.clone(), dev));
    }
    let dev = &mut devs.iter_mut().find(|(n, _)| *n == cfg.name).unwrap().1;
    f(dev)
}

/// A memory image: code at `code_addr`, `data` at 0 (before the code).
struct Image {
    code_addr: u64,
    code: Vec<u8>,
    data: Vec<u8>,
    window: u64,
}

fn run_on<D: Device>(dev: &mut D, img: &Image) -> (RunReport, Vec<u8>) {
    // The RTL device is reused across tests: start from a clean window.
    dev.write_mem(0, &vec![0; img.window as usize]).unwrap();
    dev.write_mem(0, &img.data).unwrap();
    dev.write_mem(img.code_addr, &img.code).unwrap();
    dev.write_reg(regs::PROG_ADDR, img.code_addr as u32).unwrap();
    dev.write_reg(regs::PROG_LEN, (img.code.len() / 32) as u32).unwrap();
    dev.write_reg(regs::WIN_BASE, 0).unwrap();
    dev.write_reg(regs::WIN_LIMIT, img.window as u32).unwrap();
    let mut drv = Driver::new(&mut *dev);
    let report = drv.run().unwrap();
    let mem = dev.read_mem(0, img.window as usize).unwrap();
    (report, mem)
}

/// Runs `img` on the model and the RTL; panics naming the first difference.
fn check_both(cfg: &HwConfig, what: &str, img: &Image) -> RunReport {
    check_both_then(cfg, what, img, |_| ()).0
}

/// [`check_both`], then `after` on the RTL device under the same lock: the
/// device is shared by the tests' threads, so a second `with_rtl` could
/// see another test's run.
fn check_both_then<R>(
    cfg: &HwConfig,
    what: &str,
    img: &Image,
    after: impl FnOnce(&mut RtlDevice) -> R,
) -> (RunReport, R) {
    let mut model = sim::Model::new(cfg).unwrap();
    let (a, mem_a) = run_on(&mut model, img);
    let ((b, mem_b), then) = with_rtl(cfg, |dev| (run_on(dev, img), after(dev)));
    if let Err(d) = compare_runs(&a, &b) {
        let near: Vec<String> = match d {
            driver::compare::Difference::Instruction { index, .. } => {
                let lo = index.saturating_sub(3) as usize;
                (lo..(index as usize + 2).min(a.trace.len()))
                    .map(|i| format!("  {i}: model {:?} rtl {:?}", a.trace[i], b.trace[i]))
                    .collect()
            }
            _ => vec![],
        };
        panic!("{what} on `{}`: model vs RTL: {d}\n{}", cfg.name, near.join("\n"));
    }
    if a.outcome == Outcome::Done {
        if let Err(d) = compare_memory(0, &mem_a, &mem_b) {
            panic!("{what} on `{}`: model vs RTL: {d}", cfg.name);
        }
    }
    (a, then)
}

fn image(code: &[Instr], data: Vec<u8>, window: u64) -> Image {
    let code_addr = (data.len() as u64).div_ceil(128) * 128;
    let code: Vec<u8> = code.iter().flat_map(|i| i.encode()).collect();
    Image { code_addr, code, data, window }
}

fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut r = StdRng::seed_from_u64(seed);
    (0..n).map(|_| r.gen()).collect()
}

/// The `examples/asm` programs on the 4x4 and the 16x16 configuration
/// (on the one they were not written for they may fault: the two backends
/// must then fault alike), with random data under their inputs.
#[test]
fn examples_match_the_model() {
    let dir = root().join("examples/asm");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".s"))
        .collect();
    names.sort();
    assert!(names.len() >= 3);
    for name in names {
        let text = std::fs::read_to_string(dir.join(&name)).unwrap();
        let code = isa::asm::parse_program(&text).unwrap();
        let own = if text.contains("hw=tiny") { "tiny" } else { "default" };
        for hw in ["tiny", "default"] {
            let cfg = config(hw);
            let img = image(&code, random_bytes(256 << 10, name.len() as u64), 1 << 20);
            let r = check_both(&cfg, &name, &img);
            if hw == own {
                assert_eq!(r.outcome, Outcome::Done, "{name}");
            }
            println!("{name} on {hw}: {:?} after {} cycles, equal on both backends", r.outcome, r.cycles());
        }
    }
}

/// The RTL's DMA staging buffers are finite where the timing contract's
/// are not: a LOAD whose chunk writes fall far behind its data (a long
/// contiguous block of 1-byte rows: a beat brings W bytes, a chunk takes
/// one) overflows the LOAD staging buffer, and the harness says so instead
/// of letting the two backends silently differ.
#[test]
fn staging_overflow_is_reported() {
    let cfg = config("default");
    let code = isa::asm::parse_program("load dram=0 stride=1 rows=10000 cols=1\nfinish").unwrap();
    let img = image(&code, vec![0; 10000], 1 << 20);
    let mut model = sim::Model::new(&cfg).unwrap();
    let (a, _) = run_on(&mut model, &img);
    assert_eq!(a.outcome, Outcome::Done);
    let err = with_rtl(&cfg, |dev| {
        dev.write_mem(0, &img.data).unwrap();
        dev.write_mem(img.code_addr, &img.code).unwrap();
        for (r, v) in
            [(regs::PROG_ADDR, img.code_addr), (regs::PROG_LEN, 2), (regs::WIN_BASE, 0), (regs::WIN_LIMIT, 1 << 20)]
        {
            dev.write_reg(r, v as u32).unwrap();
        }
        let e = Driver::new(&mut *dev).run().unwrap_err();
        e.to_string()
    });
    assert!(err.contains("LOAD staging buffer") && err.contains("overflowed"), "{err}");
}

/// Runs a compiled program (code and constants placed by the driver) with
/// random bytes in its input tensors on both backends and compares.
fn check_program(cfg: &HwConfig, what: &str, prog: &isa::program::Program, seed: u64) -> RunReport {
    let mut rng = StdRng::seed_from_u64(seed);
    let inputs: Vec<(isa::program::TensorInfo, Vec<u8>)> =
        prog.inputs().map(|t| (t.clone(), (0..t.byte_len()).map(|_| rng.gen()).collect())).collect();
    check_program_on(cfg, what, prog, &inputs)
}

/// [`check_program`] with the given bytes in the program's input tensors.
fn check_program_on(
    cfg: &HwConfig,
    what: &str,
    prog: &isa::program::Program,
    inputs: &[(isa::program::TensorInfo, Vec<u8>)],
) -> RunReport {
    check_program_then(cfg, what, prog, inputs, |_| ()).0
}

/// [`check_program_on`], then `after` on the RTL's driver under the same
/// lock (the device is shared by the tests' threads).
fn check_program_then<R>(
    cfg: &HwConfig,
    what: &str,
    prog: &isa::program::Program,
    inputs: &[(isa::program::TensorInfo, Vec<u8>)],
    after: impl FnOnce(&mut Driver<&mut dyn Device>) -> R,
) -> (RunReport, R) {
    let window = prog.mem_bytes as usize;
    let run = |d: &mut Driver<&mut dyn Device>| {
        d.write_mem(0, &vec![0; window]).unwrap();
        d.load(prog).unwrap();
        for (t, bytes) in inputs {
            d.write_tensor(t, bytes).unwrap();
        }
        let r = d.run().unwrap();
        (r, d.read_mem(0, window).unwrap())
    };
    let mut model = sim::Model::new(cfg).unwrap();
    let (a, mem_a) = run(&mut Driver::new(&mut model as &mut dyn Device));
    let ((b, mem_b), then) = with_rtl(cfg, |dev| {
        let mut d = Driver::new(dev as &mut dyn Device);
        (run(&mut d), after(&mut d))
    });
    // (A fault stops the run with transfers in flight: their DRAM bytes,
    // which the model moves at start, are not compared.)
    let memory = || if a.outcome == Outcome::Done { compare_memory(0, &mem_a, &mem_b) } else { Ok(()) };
    if let Err(d) = compare_runs(&a, &b).and_then(|_| memory()) {
        panic!("{what} on `{}`: model vs RTL: {d}", cfg.name);
    }
    (a, then)
}

/// Random GEMMs (shapes, int8/uint8 inputs, int32 or requantized int8
/// outputs with random clamps) lowered by the compiler, as the model's
/// property tests draw them.
#[test]
fn random_gemms_match_the_model() {
    use compiler::gemm::{lower_gemm, GemmOutput, GemmSpec};
    let mut rng = StdRng::seed_from_u64(3);
    for (cfg_name, cases) in [("tiny", 40), ("default", 24)] {
        let cfg = config(cfg_name);
        let mut cycles = 0;
        for case in 0..cases {
            let mut dim = || if rng.gen_ratio(1, 8) { rng.gen_range(41..=100) } else { rng.gen_range(1..=40) };
            let (m, k, n) = (dim(), dim(), dim());
            let output = if rng.gen() {
                GemmOutput::Int32
            } else {
                let (a, b) = (rng.gen_range(-128..=127), rng.gen_range(-128..=127));
                GemmOutput::Int8 {
                    bias: (0..n).map(|_| rng.gen_range(-200_000..=200_000)).collect(),
                    scale: (0..n).map(|_| 10f32.powf(rng.gen_range(-5.0f32..=-1.0))).collect(),
                    zero_point: rng.gen_range(-128..=127),
                    qmin: a.min(b),
                    qmax: a.max(b),
                }
            };
            let weights: Vec<i8> = (0..k * n).map(|_| if rng.gen_ratio(1, 4) { 0 } else { rng.gen() }).collect();
            let spec = GemmSpec { m, k, n, weights, input_unsigned: rng.gen(), output };
            let prog = lower_gemm(&spec, &cfg).unwrap();
            let r = check_program(&cfg, &format!("GEMM case {case}: {m}x{k}x{n}"), &prog, case as u64);
            assert_eq!(r.outcome, Outcome::Done);
            cycles += r.cycles();
        }
        println!("{cases} random GEMMs on {cfg_name}: {cycles} cycles in all, equal on both backends");
    }
}

/// `driver::Lockstep` of the model and the RTL (the `--backend both`
/// device): a compiled GEMM agrees; against a model whose DRAM is slower,
/// the lockstep names the difference and the run fails.
#[test]
fn lockstep_of_model_and_rtl_names_a_difference() {
    use compiler::gemm::{lower_gemm, GemmOutput, GemmSpec, INPUT};
    let cfg = config("tiny");
    let (m, k, n) = (9, 12, 7);
    let weights: Vec<i8> = (0..k * n).map(|i| ((i * 37 + 11) % 255) as i8).collect();
    let prog =
        lower_gemm(&GemmSpec { m, k, n, weights, input_unsigned: false, output: GemmOutput::Int32 }, &cfg).unwrap();
    let input: Vec<u8> = (0..prog.tensor(INPUT).unwrap().byte_len()).map(|i| (i * 53 + 7) as u8).collect();
    // The lockstep compares all of device memory, and the RTL device is
    // reused across tests: clear all of it.
    let size = cfg.dram_bytes() as usize;
    let mut slow = cfg.clone();
    slow.dram.latency_cycles += 9;
    for (model_cfg, agree) in [(&cfg, true), (&slow, false)] {
        let (result, difference) = with_rtl(&cfg, |rtl| {
            let both = driver::Lockstep::new(sim::Model::new(model_cfg).unwrap(), rtl, ("the model", "the RTL"));
            let slot = both.difference();
            let mut d = Driver::new(both);
            d.write_mem(0, &vec![0; size]).unwrap();
            d.load(&prog).unwrap();
            d.write_tensor(prog.tensor(INPUT).unwrap(), &input).unwrap();
            let r = d.run().map(|r| r.cycles()).map_err(|e| e.to_string());
            let diff = slot.borrow().clone();
            (r, diff)
        });
        if agree {
            assert!(result.is_ok() && difference.is_none(), "{result:?} {difference:?}");
        } else {
            let e = result.unwrap_err();
            assert!(e.contains("the model and the RTL differ") && e.contains("cycles"), "{e}");
            assert!(difference.is_some());
        }
    }
}

/// Compiled networks: convolutions (padded im2col gathers), max pooling,
/// requantization and dense layers, on both array sizes.
#[test]
fn compiled_models_match_the_model() {
    let onnx = std::fs::read(root().join("examples/models/digits_cnn_nm24.onnx")).unwrap();
    let cnn = compiler::onnx::import(&onnx).unwrap();
    let tiny_cnn =
        compiler::text::parse(&std::fs::read_to_string(root().join("examples/models/tiny_cnn.stm")).unwrap()).unwrap();
    for (name, g) in [("digits_cnn_nm24", &cnn), ("tiny_cnn", &tiny_cnn)] {
        for hw in ["tiny", "default"] {
            let cfg = config(hw);
            let prog = compiler::lower::lower(g, &cfg).unwrap().program;
            let r = check_program(&cfg, name, &prog, 7);
            assert_eq!(r.outcome, Outcome::Done);
            println!("{name} on {hw}: {} cycles, equal on both backends", r.cycles());
        }
    }
}

/// The ONNX Runtime-quantized CNN blocks of `tests/ort_cnn.rs` and the
/// table-op models of `tests/ort_lut.rs`, compiled: convolutions from
/// feature-map bands (matmul row patterns, diagonal depthwise tiles),
/// residual adds (QLinearAdd), global average pooling through the identity
/// tile, unary ops, requantizing Concat and Resize through `vlut` — int8 and
/// uint8, on both array sizes; `pool_block`'s windowed average poolings run
/// on the vector unit (vdeq, vop add / div, vquant: ORT's float sequence).
#[test]
fn compiled_ort_cnns_match_the_model() {
    let blocks = ["resnet_block", "mobilenet_block", "inception_block", "pool_block"].into_iter().flat_map(|b| {
        ["qop_int8", "qop_uint8"].map(|f| (format!("{b}/{f}"), format!("tests/data/ort_cnn/{b}/{f}.onnx")))
    });
    let tables = ["unary", "inception", "resize"].into_iter().flat_map(|m| {
        ["i8", "u8"].map(|t| (format!("{m}_{t}"), format!("compiler/tests/data/lut_models/{m}_{t}_qop.onnx")))
    });
    for (name, path) in blocks.chain(tables) {
        let g = compiler::onnx::import(&std::fs::read(root().join(&path)).unwrap()).unwrap();
        for hw in ["tiny", "default"] {
            let cfg = config(hw);
            let prog = compiler::lower::lower(&g, &cfg).unwrap().program;
            let vector = prog.code.iter().filter(|i| i.is_vector()).count();
            assert_eq!(vector > 0, name.starts_with("pool_block"), "{name}: {vector} vector instructions");
            let r = check_program(&cfg, &name, &prog, 13);
            assert_eq!(r.outcome, Outcome::Done);
            println!("{name} on {hw}: {} cycles, equal on both backends", r.cycles());
        }
    }
}

/// CNNs compiled for a batch (`compile --batch 3`): band convolutions over
/// every image under one set of resident weights (the stem's packed rows,
/// the digits CNN's dense head), residual adds, pooling and concats image
/// by image, on the 4x4.
#[test]
fn batched_cnns_match_the_model() {
    let cnn = compiler::onnx::import(&std::fs::read(root().join("examples/models/digits_cnn_nm24.onnx")).unwrap());
    let resnet =
        compiler::onnx::import(&std::fs::read(root().join("tests/data/ort_cnn/resnet_block/qop_int8.onnx")).unwrap());
    let inception = compiler::onnx::import(
        &std::fs::read(root().join("tests/data/ort_cnn/inception_block/qop_uint8.onnx")).unwrap(),
    );
    let cfg = config("tiny");
    for (name, g) in [("digits_cnn_nm24", cnn), ("resnet_block", resnet), ("inception_block", inception)] {
        let g = compiler::batch::with_batch(&g.unwrap(), 3).unwrap();
        let prog = compiler::lower::lower(&g, &cfg).unwrap().program;
        let r = check_program(&cfg, name, &prog, 17);
        assert_eq!(r.outcome, Outcome::Done);
        println!("{name} at batch 3 on tiny: {} cycles, equal on both backends", r.cycles());
    }
}

/// Few-row GEMMs take the streaming schedule (weights through the array as
/// input rows, K split across accumulator passes when A^T does not fit).
#[test]
fn streamed_gemvs_match_the_model() {
    use compiler::gemm::{lower_gemm, GemmOutput, GemmSpec};
    let mut rng = StdRng::seed_from_u64(17);
    for (hw, shapes) in [("tiny", [(1, 300, 70), (2, 1000, 33)]), ("default", [(1, 2048, 96), (3, 700, 300)])] {
        let cfg = config(hw);
        for (m, k, n) in shapes {
            let weights: Vec<i8> = (0..k * n).map(|_| rng.gen()).collect();
            let spec = GemmSpec { m, k, n, weights, input_unsigned: rng.gen(), output: GemmOutput::Int32 };
            let prog = lower_gemm(&spec, &cfg).unwrap();
            let r = check_program(&cfg, &format!("GEMV {m}x{k}x{n}"), &prog, 5);
            assert_eq!(r.outcome, Outcome::Done);
            println!("GEMV {m}x{k}x{n} on {hw}: {} cycles, equal on both backends", r.cycles());
        }
    }
}

/// VADD (ONNX Runtime's QLinearAdd) by hand: per-column ra, rb, k from
/// random scales and zero points (and raw float32 bits: subnormal, huge, inf,
/// NaN) in the accumulator, random operand rows, int8 and uint8, fused ReLU,
/// a destination that overlaps a later operand row (forwarding).
#[test]
fn vadd_matches_the_model() {
    let mut rng = StdRng::seed_from_u64(21);
    for hw in ["tiny", "default"] {
        let cfg = config(hw);
        let cols = cfg.array.cols as usize;
        for case in 0..6 {
            let unsigned = case % 2 == 1;
            let (lo, hi) = if unsigned { (0, 255) } else { (-128, 127) };
            // Parameter rows: ra, rb, k per column, as float32 bits.
            let mut params = Vec::new();
            let ps: Vec<isa::numerics::QaddParams> = (0..cols)
                .map(|c| {
                    if case >= 4 && c % 3 == 0 {
                        let f = |r: &mut StdRng| f32::from_bits(r.gen());
                        isa::numerics::QaddParams { ra: f(&mut rng), rb: f(&mut rng), k: f(&mut rng) }
                    } else {
                        let s = |r: &mut StdRng| 2f32.powf(r.gen_range(-8.0..2.0));
                        let z = |r: &mut StdRng| r.gen_range(lo..=hi);
                        isa::numerics::qadd_params(
                            s(&mut rng),
                            s(&mut rng),
                            s(&mut rng),
                            z(&mut rng),
                            z(&mut rng),
                            z(&mut rng),
                        )
                    }
                })
                .collect();
            for r in 0..3 {
                for p in &ps {
                    let v = [p.ra, p.rb, p.k][r];
                    params.extend(v.to_bits().to_le_bytes());
                }
            }
            let n = 9;
            let (qmin, qmax) = if case % 3 == 2 { (lo + 40, hi) } else { (lo, hi) };
            let ty = if unsigned { "u8" } else { "i8" };
            let text = format!(
                "load dram=0x2000 stride={cols} rows={rows} cols={cols} addr=0\n\
                 load buf=acc dram=0x8000 stride={pstride} rows=3 cols={cols} addr=4 @signal(compute)\n\
                 vadd a=0 b={n} dst=3 n={n} params=4 in_type={ty} out_type={ty} qmin={qmin} qmax={qmax} @wait(load)\n\
                 vadd a=3 b=0 dst=18 n={n} params=4 in_type={ty} out_type={ty} qmin={qmin} qmax={qmax} @signal(store)\n\
                 store dram=0x4000 stride={cols} rows={rows2} cols={cols} addr=0 @wait(compute)\n\
                 finish",
                rows = 2 * n,
                pstride = 4 * cols,
                rows2 = 18 + n,
            );
            let code = isa::asm::parse_program(&text).unwrap();
            let mut data = random_bytes(256 << 10, 100 + case);
            data[0x8000..0x8000 + params.len()].copy_from_slice(&params);
            let img = image(&code, data, 1 << 20);
            let r = check_both(&cfg, &format!("vadd case {case}"), &img);
            assert_eq!(r.outcome, Outcome::Done, "vadd case {case} on {hw}");
        }
        println!("vadd on {hw}: 6 programs, equal on both backends");
    }
}

/// A compiled residual block (conv 3x3 + ReLU, then Add of the block's input
/// with a fused ReLU, then a second Add of different scales), int8 and uint8
/// inputs, on both array sizes.
#[test]
fn compiled_residual_add_matches_the_model() {
    let list = |n: usize, seed: u64| {
        let mut r = StdRng::seed_from_u64(seed);
        (0..n).map(|_| r.gen_range(-127..=127).to_string()).collect::<Vec<_>>().join(", ")
    };
    for (ty, zp) in [("i8", 3), ("u8", 130)] {
        let text = format!(
            "model residual\ninput x: {ty}[1, 6, 5, 5] scale=0.05 zp={zp}\n\
             conv c x -> y: {ty}[1, 6, 5, 5] scale=0.07 zp={zp} relu strides=1 pads=1 dilations=1 groups=1\n    \
             weights: i8[6, 6, 3, 3] = [{}]\n    w_scale = 0.01\n    bias = [5, -3, 0, 100, -100, 7]\n\
             add s y, x -> z: {ty}[1, 6, 5, 5] scale=0.09 zp={zp} relu\n\
             add t z, y -> o: {ty}[1, 6, 5, 5] scale=0.11 zp={zp}\n\
             output o\n",
            list(6 * 6 * 9, 5)
        );
        let g = compiler::text::parse(&text).unwrap();
        for hw in ["tiny", "default"] {
            let cfg = config(hw);
            let prog = compiler::lower::lower(&g, &cfg).unwrap().program;
            let r = check_program(&cfg, "residual", &prog, 11);
            assert_eq!(r.outcome, Outcome::Done);
            println!("residual ({ty}) on {hw}: {} cycles, equal on both backends", r.cycles());
        }
    }
}

/// A raw run: `code` (32-byte words) at `prog_addr`, window `[base, limit)`,
/// a pattern in the memory around the window. Returns the report and
/// whether memory outside the window is untouched.
fn raw_run<D: Device>(
    dev: &mut D,
    code: &[[u8; 32]],
    prog_addr: u64,
    prog_len: u32,
    base: u64,
    limit: u64,
) -> (RunReport, bool) {
    try_raw_run(dev, code, prog_addr, prog_len, base, limit).unwrap()
}

/// [`raw_run`], the run's error returned (the RTL's staging-buffer limit).
fn try_raw_run<D: Device>(
    dev: &mut D,
    code: &[[u8; 32]],
    prog_addr: u64,
    prog_len: u32,
    base: u64,
    limit: u64,
) -> Result<(RunReport, bool), String> {
    let span = 1 << 16;
    let pattern: Vec<u8> = (0..span).map(|i| (i * 7 + 3) as u8).collect();
    dev.write_mem(0, &pattern).unwrap();
    // (A window past device memory is a BadProgram case: nothing above it.)
    let above_ok = limit + span as u64 <= dev.config().dram_bytes();
    if above_ok {
        dev.write_mem(limit, &pattern).unwrap();
    }
    let bytes: Vec<u8> = code.iter().flatten().copied().collect();
    dev.write_mem(prog_addr, &bytes).unwrap();
    for (r, v) in [
        (regs::PROG_ADDR, prog_addr),
        (regs::PROG_LEN, prog_len as u64),
        (regs::WIN_BASE, base),
        (regs::WIN_LIMIT, limit),
    ] {
        dev.write_reg(r, v as u32).unwrap();
    }
    let before = dev.read_mem(0, base as usize).unwrap();
    let report = Driver::new(&mut *dev).run().map_err(|e| e.to_string())?;
    let below = dev.read_mem(0, base as usize).unwrap();
    let above = if above_ok { dev.read_mem(limit, span).unwrap() } else { pattern.clone() };
    let untouched = below == before && above == pattern;
    Ok((report, untouched))
}

/// Runs a faulting program on both backends: same fault (code and
/// instruction), same cycle, nothing written outside the window.
fn check_fault(cfg: &HwConfig, what: &str, text: &str, window: (u64, u64), want: isa::regs::ErrorCode) {
    let code: Vec<[u8; 32]> = isa::asm::parse_program(text).unwrap().iter().map(|i| i.encode()).collect();
    check_fault_raw(cfg, what, &code, 0x4000, code.len() as u32, window, Some(want));
}

fn check_fault_raw(
    cfg: &HwConfig,
    what: &str,
    code: &[[u8; 32]],
    prog_addr: u64,
    prog_len: u32,
    (base, limit): (u64, u64),
    want: Option<isa::regs::ErrorCode>,
) -> RunReport {
    let mut model = sim::Model::new(cfg).unwrap();
    let (a, _) = raw_run(&mut model, code, prog_addr, prog_len, base, limit);
    let (b, untouched) = with_rtl(cfg, |dev| raw_run(dev, code, prog_addr, prog_len, base, limit));
    if let Err(d) = compare_runs(&a, &b) {
        panic!("{what} on `{}`: model vs RTL: {d}", cfg.name);
    }
    if let Some(want) = want {
        assert!(matches!(a.outcome, Outcome::Fault { code, .. } if code == want), "{what}: {:?}", a.outcome);
    }
    assert!(untouched, "{what}: the RTL wrote outside the window");
    a
}

#[test]
fn faults_match_the_model() {
    use isa::regs::ErrorCode::*;
    for hw in ["tiny", "default"] {
        let cfg = config(hw);
        let win = (0x1000, 0x10000);
        let cases: &[(&str, &str, isa::regs::ErrorCode)] = &[
            ("store past the window", "store dram=0xfff0 stride=32 rows=1 cols=32\nfinish", DmaOutOfWindow),
            ("load below the window", "load dram=0xff0 stride=16 rows=2 cols=4\nfinish", DmaOutOfWindow),
            ("strided load past the window", "load dram=0x8000 stride=0x1000 rows=9 cols=4\nfinish", DmaOutOfWindow),
            ("ldw past the scratchpad", "ldw addr=65535 k=2 n=2\nfinish", BufferOutOfRange),
            ("matmul past the accumulator", "matmul a=0 m=4 acc=65534\nfinish", BufferOutOfRange),
            (
                "store from past the accumulator",
                "store buf=acc dram=0x2000 stride=16 rows=1 cols=4 addr=4095\nfinish",
                BufferOutOfRange,
            ),
            ("tile larger than the array", "ldw addr=0 k=17 n=2\nfinish", BufferOutOfRange),
            ("int4 weights", "ldw addr=0 k=2 n=2 wfmt=i4\nfinish", IllegalInstruction),
            (
                "requant qmin > qmax",
                "requant acc=0 rows=1 dst=0 params=2 zp=0 qmin=5 qmax=4\nfinish",
                IllegalInstruction,
            ),
            (
                "deadlock: a token never comes",
                "load dram=0x2000 stride=4 rows=1 cols=4\nmatmul a=0 m=1 acc=0 @wait(load)\nfinish",
                Deadlock,
            ),
            ("no finish", "load dram=0x2000 stride=4 rows=1 cols=4", ProgramOverrun),
        ];
        for (what, text, want) in cases {
            check_fault(&cfg, what, text, win, *want);
        }
        // 256 pushes toward COMPUTE that nothing pops.
        let overflow = "sync queue=load @signal(compute)\n".repeat(256) + "finish";
        check_fault(&cfg, "token overflow", &overflow, win, TokenOverflow);
        // Bad programs (checked at start).
        let fin = isa::asm::parse_program("finish").unwrap()[0].encode();
        check_fault_raw(&cfg, "misaligned program", &[fin], 0x4010, 1, win, Some(BadProgram));
        check_fault_raw(&cfg, "empty program", &[fin], 0x4000, 0, win, Some(BadProgram));
        check_fault_raw(&cfg, "program past the window", &[fin], 0x4000, 0x1000, win, Some(BadProgram));
        check_fault_raw(&cfg, "program below the window", &[fin], 0x800, 1, win, Some(BadProgram));
        check_fault_raw(&cfg, "window past memory", &[fin], 0x4000, 1, (0x1000, 0xffff_f000), Some(BadProgram));
        println!("faults on {hw}: every code and cycle equal");
    }
}

/// Runs `text` over `data` on both backends (everything equal, the memory
/// window too when it finishes) and returns the report and ERROR_INFO,
/// which must be equal on both.
fn check_with_info(cfg: &HwConfig, what: &str, text: &str, data: Vec<u8>) -> (RunReport, u32) {
    let code = isa::asm::parse_program(text).unwrap_or_else(|e| panic!("{what}: {e}\n{text}"));
    let img = image(&code, data, 1 << 20);
    let (r, info_rtl) = check_both_then(cfg, what, &img, |dev| dev.read_reg(regs::ERROR_INFO).unwrap());
    let mut model = sim::Model::new(cfg).unwrap();
    run_on(&mut model, &img);
    let info = model.read_reg(regs::ERROR_INFO).unwrap();
    assert_eq!(info, info_rtl, "{what} on `{}`: ERROR_INFO, model vs RTL", cfg.name);
    (r, info)
}

/// Writes `ids` at byte `at` of `data`: little-endian, 8 bytes each (i64)
/// or 4 (i32).
fn put_ids(data: &mut [u8], at: usize, ids: &[i64], i64_ids: bool) {
    for (j, &id) in ids.iter().enumerate() {
        if i64_ids {
            data[at + 8 * j..at + 8 * j + 8].copy_from_slice(&id.to_le_bytes());
        } else {
            data[at + 4 * j..at + 4 * j + 4].copy_from_slice(&(id as i32).to_le_bytes());
        }
    }
}

/// Indexed loads (gathers, ISA.md §3 `load`) on both array sizes, cycle
/// for cycle: random tables, ids (i64 and i32, at any byte alignment, with
/// repeats), padding, column offsets, both buffers, gathers back to back
/// and behind plain loads; each block stored back so the memory window
/// compares what was gathered. A quarter of the cases hold an id outside
/// 0..limit (negative, = limit, or past 32 bits): IndexOutOfRange in the
/// same cycle, at the same instruction, ERROR_INFO the same position.
#[test]
fn indexed_loads_match_the_model() {
    let mut rng = StdRng::seed_from_u64(17);
    for (hw, cases) in [("tiny", 40), ("default", 30)] {
        let cfg = config(hw);
        let c = cfg.array.cols as u64;
        let (mut done, mut faults, mut cycles) = (0, 0, 0);
        for case in 0..cases {
            let mut data = random_bytes(0x30000, 1000 + case);
            let acc = rng.gen_ratio(1, 3);
            let e = if acc { 4 } else { 1 };
            let i64_ids = rng.gen();
            let rows = rng.gen_range(1..=24u64);
            let cols = rng.gen_range(1..=2 * c);
            let limit = rng.gen_range(1..=12u64);
            // A table whose rows may cross a 4 KiB boundary (two bursts).
            let (table, stride) = if rng.gen_ratio(1, 4) {
                (0x3ff8, 0x1000)
            } else {
                (0x1000 + rng.gen_range(0..64), cols * e + rng.gen_range(0..3) * 4)
            };
            let idx_addr = 0x18000 + rng.gen_range(0..64);
            let mut ids: Vec<i64> = (0..rows).map(|_| rng.gen_range(0..limit as i64)).collect();
            let bad = rng.gen_ratio(1, 4);
            if bad {
                let j = rng.gen_range(0..rows as usize);
                ids[j] = [-1, limit as i64, -(1 << 20), if i64_ids { 1 << 40 } else { limit as i64 + 7 }]
                    [rng.gen_range(0..4)];
            }
            put_ids(&mut data, idx_addr as usize, &ids, i64_ids);
            let (pt, pb, pl, pr) =
                (rng.gen_range(0..=2u64), rng.gen_range(0..=1u64), rng.gen_range(0..=2u64), rng.gen_range(0..=1u64));
            let col = rng.gen_range(0..c);
            let (y, x) = (pt + rows + pb, pl + cols + pr);
            let local_end = ((col + x - 1) / c + 1) * y;
            let buf = if acc { "acc" } else { "spad" };
            let idx = if i64_ids { "i64" } else { "i32" };
            let gather = format!(
                "load buf={buf} dram={table:#x} stride={stride} rows={rows} cols={cols} idx={idx} \
                 idx_addr={idx_addr:#x} limit={limit} pad_top={pt} pad_bottom={pb} pad_left={pl} \
                 pad_right={pr} pad_value=-3 col={col}"
            );
            // A plain load before it and, sometimes, a second gather (its
            // ids the first's, read again) right behind it.
            let mut text = format!("load dram=0x2000 stride={c} rows=3 cols={c} addr={}\n", local_end + 40);
            text += &gather;
            let second = rng.gen();
            if second {
                text += &format!(" addr=0\n{gather} addr={local_end}");
            }
            text += " @signal(compute)\nsync queue=compute @wait(load) @signal(store)\n";
            // Stored back as blocks of the same shape: exactly the local
            // elements the gathers wrote (the others hold earlier runs' data).
            let store = |addr: u64, dram: u64| {
                format!("store buf={buf} dram={dram:#x} stride={} rows={y} cols={x} col={col} addr={addr}", x * e)
            };
            text += &format!("{} @wait(compute)\n", store(0, 0x20000));
            if second {
                text += &format!("{}\n", store(local_end, 0x24000));
            }
            text += "finish\n";
            let what = format!("gather case {case}");
            let (r, info) = check_with_info(&cfg, &what, &text, data);
            if bad {
                let j = ids.iter().position(|&id| id < 0 || id >= limit as i64).unwrap() as u32;
                let want = Outcome::Fault { code: isa::regs::ErrorCode::IndexOutOfRange, pc: 1 };
                assert_eq!((r.outcome, info), (want, j), "{what}");
                faults += 1;
            } else {
                assert_eq!(r.outcome, Outcome::Done, "{what}");
                done += 1;
            }
            cycles += r.cycles();
        }
        println!("gathers on {hw}: {done} finished, {faults} IndexOutOfRange, {cycles} cycles, equal on both");
    }
}

/// A compiled embedding lookup (an ONNX Gather on an int8 table: the
/// compiler's gathering copy pipeline, `compiler::lower::embedding`) on
/// both array sizes: 40 token ids into a 50 x 20 table (rows wider than
/// the 4-column array, column-blocked), then the same program with one id
/// past the table, which faults alike.
#[test]
fn compiled_embedding_matches_the_model() {
    use compiler::ir::{ElemType, EmbeddingParams, Graph, Node, Op, Quant, Value};
    let (n, rows, cols) = (40usize, 50usize, 20usize);
    let mut rng = StdRng::seed_from_u64(23);
    let table: Vec<i8> = (0..rows * cols).map(|_| rng.gen()).collect();
    let g = Graph {
        name: "emb".into(),
        values: vec![
            Value { name: "ids".into(), shape: vec![1, n], ty: ElemType::I64, quant: None },
            Value {
                name: "y".into(),
                shape: vec![1, n, cols],
                ty: ElemType::I8,
                quant: Some(Quant { scale: 0.02, zero_point: 0 }),
            },
        ],
        nodes: vec![Node {
            name: "embed".into(),
            op: Op::Embedding(EmbeddingParams { table, rows, cols }),
            inputs: vec![0],
            outputs: vec![1],
        }],
        inputs: vec![0],
        outputs: vec![1],
    };
    for hw in ["tiny", "default"] {
        let cfg = config(hw);
        let prog = compiler::lower::lower(&g, &cfg).unwrap().program;
        assert!(prog.code.iter().any(|i| i.is_indexed_load()), "the program gathers");
        let mut ids: Vec<i64> = (0..n).map(|_| rng.gen_range(0..rows as i64)).collect();
        let bytes = |ids: &[i64]| ids.iter().flat_map(|i| i.to_le_bytes()).collect::<Vec<u8>>();
        let input = prog.inputs().next().unwrap().clone();
        let r = check_program_on(&cfg, "embedding", &prog, &[(input.clone(), bytes(&ids))]);
        assert_eq!(r.outcome, Outcome::Done);
        println!("embedding of {n} ids on {hw}: {} cycles, equal on both backends", r.cycles());
        ids[n - 3] = rows as i64;
        let r = check_program_on(&cfg, "embedding, an id past the table", &prog, &[(input, bytes(&ids))]);
        assert!(matches!(r.outcome, Outcome::Fault { code: isa::regs::ErrorCode::IndexOutOfRange, .. }));
    }
}

/// The compressed stream of `rows` (ISA.md §3 `load`, `zfmt = mask`: per
/// row its mask, then its non-zero bytes) and where each record starts.
fn compress(rows: &[Vec<u8>]) -> (Vec<u8>, Vec<usize>) {
    let (mut s, mut at) = (Vec::new(), Vec::new());
    for row in rows {
        at.push(s.len());
        let m = s.len();
        s.resize(m + row.len().div_ceil(8), 0);
        for (x, &v) in row.iter().enumerate() {
            if v != 0 {
                s[m + x / 8] |= 1 << (x % 8);
            }
        }
        s.extend(row.iter().filter(|&&v| v != 0));
    }
    (s, at)
}

/// Compressed loads (`zfmt = mask`, ISA.md §3/§4) on both array sizes,
/// cycle for cycle: random rows of 1..=cols elements at densities 0 to
/// 100 %, streams at any byte alignment, across a 4 KiB boundary and long
/// enough for several bursts, padding and column offsets, behind a plain
/// load and back to back; each block stored back so the memory window
/// compares what was expanded. A third are malformed (a mask bit past the
/// row, a bit more inside it, the stream cut short, bytes left over):
/// BadStream in the same cycle, at the same instruction, ERROR_INFO the
/// same row.
#[test]
fn compressed_loads_match_the_model() {
    let mut rng = StdRng::seed_from_u64(29);
    for (hw, cases) in [("tiny", 48), ("default", 36)] {
        let cfg = config(hw);
        let c = cfg.array.cols as u64;
        let (mut done, mut faults, mut cycles) = (0, 0, 0);
        for case in 0..cases {
            let mut data = random_bytes(0x30000, 2000 + case);
            // Long streams (several bursts) stay within the RTL's 4 KiB
            // LOAD staging buffer: at most 200 records, loaded once.
            let rows = if rng.gen_ratio(1, 6) { rng.gen_range(100..=200u64) } else { rng.gen_range(1..=24) };
            let cols = rng.gen_range(1..=c);
            let density = [0.0, 0.1, 0.5, 0.9, 1.0, rng.gen::<f64>()][case as usize % 6];
            let expanded: Vec<Vec<u8>> = (0..rows)
                .map(|_| (0..cols).map(|_| if rng.gen_bool(density) { rng.gen_range(1..=255) } else { 0 }).collect())
                .collect();
            let (mut stream, at) = compress(&expanded);
            let mb = cols.div_ceil(8) as usize;
            let (lo, hi) = isa::legal::stream_bytes_range(rows, cols);
            // Malformed: 0 a mask bit past the row, 1 one more inside it
            // (the records after it misparse), 2 cut short, 3 bytes left over.
            let kind = if rng.gen_ratio(1, 3) { rng.gen_range(0..4) } else { 4 };
            let mut stride = stream.len() as u64;
            let mut want_info = None;
            let j = rng.gen_range(0..rows as usize);
            match kind {
                0 if cols % 8 != 0 => {
                    stream[at[j] + mb - 1] |= 1 << rng.gen_range(cols % 8..8);
                    want_info = Some(j as u32);
                }
                1 => {
                    if let Some(x) = expanded[j].iter().position(|&v| v == 0) {
                        stream[at[j] + x / 8] |= 1 << (x % 8);
                    }
                }
                2 if stride > lo => stride -= rng.gen_range(1..=(stride - lo).min(5)),
                3 if stride < hi => {
                    stride += rng.gen_range(1..=(hi - stride).min(3));
                    want_info = Some(rows as u32);
                }
                _ => {}
            }
            let dram = if rng.gen_ratio(1, 4) { 0x3ff0 - rng.gen_range(0..16) } else { 0x1000 + rng.gen_range(0..64) };
            data[dram as usize..dram as usize + stream.len()].copy_from_slice(&stream);
            let (pt, pb, pl, pr) =
                (rng.gen_range(0..=2u64), rng.gen_range(0..=1u64), rng.gen_range(0..=2u64), rng.gen_range(0..=1u64));
            let col = rng.gen_range(0..c);
            let (y, x) = (pt + rows + pb, pl + cols + pr);
            let local_end = ((col + x - 1) / c + 1) * y;
            let load = format!(
                "load dram={dram:#x} stride={stride} rows={rows} cols={cols} zfmt=mask pad_top={pt} \
                 pad_bottom={pb} pad_left={pl} pad_right={pr} pad_value=-3 col={col}"
            );
            let mut text = format!("load dram=0x2000 stride={c} rows=3 cols={c} addr={}\n", 2 * local_end + 40);
            text += &load;
            let second = rows <= 24 && rng.gen();
            if second {
                text += &format!(" addr=0\n{load} addr={local_end}");
            }
            text += " @signal(compute)\nsync queue=compute @wait(load) @signal(store)\n";
            let store = |addr: u64, dram: u64| {
                format!("store dram={dram:#x} stride={x} rows={y} cols={x} col={col} addr={addr}")
            };
            text += &format!("{} @wait(compute)\n", store(0, 0x20000));
            if second {
                text += &format!("{}\n", store(local_end, 0x28000));
            }
            text += "finish\n";
            let what = format!("compressed load case {case} ({rows}x{cols} at {density:.2}, kind {kind})");
            let (r, info) = check_with_info(&cfg, &what, &text, data);
            match r.outcome {
                Outcome::Done => {
                    assert_eq!(want_info, None, "{what}");
                    done += 1;
                }
                Outcome::Fault { code, pc } => {
                    assert_eq!((code, pc), (isa::regs::ErrorCode::BadStream, 1), "{what}");
                    assert!(kind < 4, "{what}: a well-formed stream faulted");
                    if let Some(want) = want_info {
                        assert_eq!(info, want, "{what}: ERROR_INFO");
                    }
                    faults += 1;
                }
            }
            cycles += r.cycles();
        }
        println!("compressed loads on {hw}: {done} finished, {faults} BadStream, {cycles} cycles, equal on both");
        assert!(done >= cases as u32 / 2 && faults >= cases as u32 / 6, "{done} {faults}");
    }
}

/// What the decode and the dispatch check refuse of a compressed load, the
/// RTL refuses alike (IllegalInstruction): into the accumulator, indexed,
/// `zfmt` past `mask`, a `stride` outside the stream's legal lengths; and
/// its window is exactly the stream's bytes. Rows wider than the array are
/// legal, but past the RTL expander (a row of `array.cols`): the harness
/// stops and says so instead of differing.
#[test]
fn compressed_load_checks_match_the_model() {
    use isa::instr as ins;
    use isa::regs::ErrorCode::*;
    let cfg = config("tiny");
    let fin = Instr::Finish(ins::Finish::default()).encode();
    let good = ins::Load { dram: 0x2000, stride: 9, rows: 3, cols: 4, zfmt: ins::ZFMT_MASK, ..Default::default() };
    let mut zfmt3 = Instr::Load(good).encode();
    zfmt3[252 / 8] |= 0b11 << (252 % 8);
    let cases: [(&str, [u8; 32], isa::regs::ErrorCode); 7] = [
        ("into the accumulator", Instr::Load(ins::Load { buf: ins::BUF_ACC, ..good }).encode(), IllegalInstruction),
        (
            "indexed",
            Instr::Load(ins::Load { idx: ins::IDX_I32, idx_addr: 0x3000, limit: 4, ..good }).encode(),
            IllegalInstruction,
        ),
        ("zfmt = 3", zfmt3, IllegalInstruction),
        ("stride below the masks", Instr::Load(ins::Load { stride: 2, ..good }).encode(), IllegalInstruction),
        ("stride past every byte", Instr::Load(ins::Load { stride: 16, ..good }).encode(), IllegalInstruction),
        ("stream past the window", Instr::Load(ins::Load { dram: 0xfff8, ..good }).encode(), DmaOutOfWindow),
        ("past the scratchpad", Instr::Load(ins::Load { addr: 4094, ..good }).encode(), BufferOutOfRange),
    ];
    for (what, word, want) in cases {
        check_fault_raw(&cfg, what, &[word, fin], 0x4000, 2, (0x1000, 0x10000), Some(want));
    }
    // Exactly at the window's end: legal (what the bytes there parse to,
    // both backends agree on).
    let at_end = Instr::Load(ins::Load { dram: 0xfff7, ..good }).encode();
    check_fault_raw(&cfg, "stream at the window's end", &[at_end, fin], 0x4000, 2, (0x1000, 0x10000), Option::None);
    // Rows of 5 elements on the 4-column array (three empty records): the
    // model expands them; the RTL reports its LOAD staging limit.
    let code = isa::asm::parse_program("load dram=0x2000 stride=3 rows=3 cols=5 zfmt=mask\nfinish").unwrap();
    let img = image(&code, vec![0; 0x2100], 1 << 20);
    let mut model = sim::Model::new(&cfg).unwrap();
    assert_eq!(run_on(&mut model, &img).0.outcome, Outcome::Done);
    let err = with_rtl(&cfg, |dev| {
        dev.write_mem(0, &img.data).unwrap();
        dev.write_mem(img.code_addr, &img.code).unwrap();
        for (r, v) in
            [(regs::PROG_ADDR, img.code_addr), (regs::PROG_LEN, 2), (regs::WIN_BASE, 0), (regs::WIN_LIMIT, 1 << 20)]
        {
            dev.write_reg(r, v as u32).unwrap();
        }
        Driver::new(&mut *dev).run().unwrap_err().to_string()
    });
    assert!(err.contains("LOAD staging buffer") && err.contains("overflowed"), "{err}");
}

/// GEMVs with unstructured sparse weights, compiled with `--weights auto`
/// (`WeightFormat::StreamSparseI8`: every weight chunk a compressed load,
/// `i8-mask`), on both array sizes: model and RTL equal in outputs, cycles,
/// counters and every instruction's timing, and the outputs the reference's.
#[test]
fn compiled_sparse_gemvs_match_the_model() {
    use compiler::gemm::{lower_gemm_with, reference_gemm, GemmOutput, GemmSpec, WeightChoice, INPUT, OUTPUT};
    let mut rng = StdRng::seed_from_u64(31);
    for (hw, shapes) in
        [("tiny", [(1, 300, 70, 0.3), (2, 130, 90, 0.05)]), ("default", [(1, 700, 300, 0.5), (1, 256, 200, 0.1)])]
    {
        let cfg = config(hw);
        for (m, k, n, density) in shapes {
            let weights: Vec<i8> =
                (0..k * n).map(|_| if rng.gen_bool(density) { rng.gen_range(1..=255u8) as i8 } else { 0 }).collect();
            let spec = GemmSpec { m, k, n, weights, input_unsigned: false, output: GemmOutput::Int32 };
            let prog = lower_gemm_with(&spec, &cfg, WeightChoice::Auto).unwrap();
            let streams = prog.code.iter().filter(|i| i.is_compressed_load()).count();
            assert!(streams > 0, "{m}x{k}x{n} at {density} on {hw}: no compressed loads");
            let a: Vec<u8> = (0..m * k).map(|_| rng.gen()).collect();
            let input = prog.tensor(INPUT).unwrap().clone();
            // The RTL's outputs (equal to the model's memory, compared) are
            // the reference's.
            let t = prog.tensor(OUTPUT).unwrap();
            let (r, out) =
                check_program_then(&cfg, "sparse GEMV", &prog, &[(input, a.clone())], |d| d.read_tensor(t).unwrap());
            assert_eq!(r.outcome, Outcome::Done);
            let c: Vec<i32> = out.chunks(4).map(|b| i32::from_le_bytes(b.try_into().unwrap())).collect();
            assert_eq!(c, reference_gemm(&spec, &a), "{m}x{k}x{n} at {density} on {hw}");
            println!(
                "sparse GEMV {m}x{k}x{n} at {density} on {hw}: {streams} compressed loads, {} cycles, equal on both backends",
                r.cycles()
            );
        }
    }
}

/// Random and mutated instruction words at dispatch: the RTL's decode and
/// legality check raise the model's fault (or none) for each.
#[test]
fn random_instruction_words_match_the_model() {
    let legal = isa::asm::parse_program(
        "load buf=acc dram=0x2000 stride=64 rows=2 cols=4 pad_top=1 pad_left=2 pad_value=-3 addr=3 col=1\n\
         store dram=0x3000 stride=8 rows=3 cols=5 addr=2 col=3\n\
         ldw addr=5 k=3 n=4\n\
         ldw addr=7 k=2 n=3 trans=1\n\
         vlut src=3 dst=9 n=5 table=20\n\
         matmul a=2 m=7 acc=1 a_stride=2 a_group=3 a_gstride=9\n\
         matmul a=1 m=3 acc=2 accumulate=1 swap=1 in_type=u8 preload=1 w=9 k=2 n=3\n\
         matmul a=1 m=2 acc=2 preload=1 w=9 k=3 n=2 trans=1\n\
         requant acc=1 rows=2 dst=4 params=8 out_type=u8 zp=3 qmin=3 qmax=200\n\
         vmax a=0 a_stride=2 b=1 b_stride=2 dst=10 dst_stride=1 n=4 elem=u8\n\
         vadd a=0 b=4 dst=8 n=4 params=10 in_type=i8 out_type=u8 qmin=7 qmax=255\n\
         vop op=exp dst=1 dst_step=1 dst_bstride=3 a=3 a_step=1 a_bstride=3 rows=3 len=6\n\
         vred op=sum a=2 a_step=2 a_bstride=1 dst=20 dst_step=1 rows=2 len=9\n\
         vquant out_type=u8 src=1 dst=30 dst_bstride=2 rows=2 len=5 zp=1 qmin=0 qmax=90 scale=0x3e000000\n\
         vdeq src_buf=spad src=3 src_step=1 src_bstride=2 dst=8 rows=2 len=5 zp=2 scale=10\n\
         sync queue=store @signal(compute)\n",
    )
    .unwrap();
    let fin = isa::asm::parse_program("finish").unwrap()[0].encode();
    let mut rng = StdRng::seed_from_u64(11);
    let mut faults = std::collections::BTreeMap::new();
    for hw in ["tiny", "default"] {
        let cfg = config(hw);
        for case in 0..300 {
            let mut word = legal[case % legal.len()].encode();
            match rng.gen_range(0..4) {
                0 => word = rng.gen(),
                1 => {
                    for _ in 0..rng.gen_range(1..4) {
                        let bit = rng.gen_range(0..256);
                        word[bit / 8] ^= 1 << (bit % 8);
                    }
                }
                2 => {
                    // A 16-bit field-sized lane set to an extreme value.
                    let at = rng.gen_range(2..30);
                    let v: u16 = [0, 1, 0xffff, 0x8000, rng.gen()][rng.gen_range(0..5)];
                    word[at..at + 2].copy_from_slice(&v.to_le_bytes());
                }
                _ => {
                    let bit = rng.gen_range(16..200);
                    word[bit / 8] ^= 1 << (bit % 8);
                }
            }
            // A vector instruction of more than 2048 beats (rows * blocks: a
            // random 16-bit count) would take the RTL minutes: not compared.
            let beats = |i: Instr| {
                let (rows, len) = match i {
                    Instr::Vdeq(v) => (v.rows, v.len),
                    Instr::Vquant(v) => (v.rows, v.len),
                    Instr::Vop(v) => (v.rows, v.len),
                    Instr::Vred(v) => (v.rows, v.len),
                    Instr::Vmask(v) => (v.rows, v.len),
                    _ => return 0,
                };
                rows as u64 * (len as u64).div_ceil(cfg.array.cols as u64)
            };
            if Instr::decode(&word).is_ok_and(|i| beats(i) > 2048) {
                *faults.entry("long vector instruction (not compared)".to_string()).or_insert(0) += 1;
                continue;
            }
            // A transfer the RTL's finite DMA staging cannot hold (ISA.md §4:
            // the harness stops with an error naming the buffer) is no
            // comparison: counted and shown.
            let (code, win) = ([word, fin], (0x1000, 0x10000));
            if let Err(e) = with_rtl(&cfg, |dev| try_raw_run(dev, &code, 0x4000, 2, win.0, win.1)) {
                assert!(e.contains("staging buffer") && e.contains("overflowed"), "word {case} {word:02x?}: {e}");
                println!("word {case}: {:?} overflows the RTL's staging", Instr::decode(&word));
                *faults.entry("RTL staging overflow".to_string()).or_insert(0) += 1;
                continue;
            }
            let r = check_fault_raw(&cfg, &format!("word {case} {word:02x?}"), &code, 0x4000, 2, win, None);
            *faults.entry(format!("{:?}", r.outcome).split(',').next().unwrap().to_string()).or_insert(0) += 1;
        }
    }
    // The limit is rare: nearly every word is compared.
    assert!(faults.get("RTL staging overflow").copied().unwrap_or(0) <= 6, "{faults:?}");
    println!("600 random instruction words, equal on both backends: {faults:?}");
}

/// A non-square array (8 reduction rows, 4 columns): a tile taller than a
/// scratchpad row is wide sees zero inputs past column 4, in both.
#[test]
fn tall_array_matches_the_model() {
    let mut cfg = config("tiny");
    cfg.name = "tall-8x4".into();
    cfg.array.rows = 8;
    cfg.validate().unwrap();
    let text = "load dram=0x1000 stride=4 rows=16 cols=4\n\
                load buf=acc dram=0x1100 stride=16 rows=4 cols=4 addr=0 @signal(compute)\n\
                ldw addr=0 k=8 n=4 @wait(load)\n\
                matmul a=8 m=8 acc=0 accumulate=1 swap=1 in_type=u8 preload=1 w=4 k=6 n=3\n\
                matmul a=0 m=5 acc=4 swap=1 @signal(store)\n\
                store buf=acc dram=0x2000 stride=16 rows=9 cols=4 @wait(compute)\n\
                finish";
    let code = isa::asm::parse_program(text).unwrap();
    for seed in 0..4 {
        let img = image(&code, random_bytes(0x3000, seed), 1 << 20);
        let r = check_both(&cfg, "tall array program", &img);
        assert_eq!(r.outcome, Outcome::Done);
    }
}

/// A config's shape for the program generators below: columns, the vlut
/// table's rows, scratchpad rows.
fn shape(cfg: &HwConfig) -> (u64, u64, u64) {
    let cols = cfg.array.cols as u64;
    (cols, isa::timing::lut_rows(cfg.array.cols), cfg.spad_rows() as u64)
}

/// Parses `text` and runs it on both backends over random data (seeded);
/// it must finish.
fn check_text(cfg: &HwConfig, what: &str, text: &str, seed: u64) -> RunReport {
    let code = isa::asm::parse_program(text).unwrap_or_else(|e| panic!("{what}: {e}\n{text}"));
    let img = image(&code, random_bytes(0x30000, seed), 1 << 20);
    let r = check_both(cfg, what, &img);
    assert_eq!(r.outcome, Outcome::Done, "{what} on `{}`", cfg.name);
    r
}

/// `vlut` on both array sizes: tables at the scratchpad's end, at row 0 and
/// inside the rows it rewrites (the table is a snapshot taken first), in
/// place, with the destination one row after and before the source (each
/// row is read before it is written), a long run over most of the loaded
/// rows, and back to back with vmax, ldw, matmul and requant (whose inputs
/// the vlut wrote: the interlocks) and with another vlut.
#[test]
fn vlut_matches_the_model() {
    for hw in ["tiny", "default"] {
        let cfg = config(hw);
        let (c, t, spad) = shape(&cfg);
        let (rows, k) = (cfg.array.rows, cfg.array.rows.min(cfg.array.cols));
        let end = spad - t;
        // Requant parameters at 0x20000: a bias row (small int32) and a
        // scale row (0.03125 as f32) per column.
        let text = format!(
            "load dram=0 stride={c} rows=3000 cols={c} addr=0\n\
             load dram=0x10000 stride={c} rows={t} cols={c} addr={end}\n\
             load buf=acc dram=0x20000 stride={acc_stride} rows=2 cols={c} addr=200 @signal(compute)\n\
             vlut src=0 dst=100 n=90 table={end} @wait(load)\n\
             vlut src=100 dst=100 n=90 table={end}\n\
             vlut src=10 dst=11 n=50 table=200\n\
             vlut src=12 dst=11 n=40 table=205\n\
             vlut src=300 dst=250 n=70 table=260\n\
             vmax a=100 a_stride=1 b=250 b_stride=2 dst=400 dst_stride=1 n=20\n\
             vlut src=400 dst=400 n=20 table=0\n\
             ldw addr=400 k={k} n={c}\n\
             vlut src=420 dst=430 n=3 table=1\n\
             matmul a=430 m=3 acc=0 swap=1\n\
             vlut src=600 dst=700 n=2300 table=5\n\
             matmul a=690 m=40 acc=3 in_type=u8\n\
             requant acc=0 rows=43 dst=3000 params=200 zp=3 qmin=-100 qmax=100\n\
             vlut src=3000 dst=3000 n=43 table={req_table}\n\
             vlut src=3000 dst=3043 n=43 table=2900\n\
             sync queue=compute @signal(store)\n\
             store dram=0x40000 stride={c} rows=3086 cols={c} addr=0 @wait(compute)\n\
             store dram=0x80000 stride={c} rows={t} cols={c} addr={end}\n\
             store buf=acc dram=0x90000 stride={acc_stride} rows=43 cols={c} addr=0\n\
             finish\n",
            acc_stride = 4 * c,
            // The table's last row is the requant's last: the in-place
            // vlut rewrites its own table.
            req_table = 3043 - t,
        );
        let code = isa::asm::parse_program(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        for seed in 0..2 {
            let mut data = random_bytes(0x30000, seed);
            for col in 0..c as usize {
                let bias = (data[col] as i8 as i32) * 50;
                data[0x20000 + 4 * col..][..4].copy_from_slice(&bias.to_le_bytes());
                let at = 0x20000 + 4 * c as usize + 4 * col;
                data[at..at + 4].copy_from_slice(&0.03125f32.to_bits().to_le_bytes());
            }
            let img = image(&code, data, 1 << 20);
            let r = check_both(&cfg, "vlut program", &img);
            assert_eq!(r.outcome, Outcome::Done);
            println!(
                "vlut program on {hw} ({rows}x{c}, {t} table rows): {} cycles, equal on both backends",
                r.cycles()
            );
        }
    }
}

/// `matmul` input-row patterns on both array sizes: the model's unit-test
/// patterns (contiguous, strided, grouped as a stride-2 convolution's output
/// row, overlapping groups, one-row groups), back to back (each next
/// pattern starts on the cycle the previous one's rows end), with
/// accumulation and preload; and the post-processor interlock, which takes
/// every row of the span [a, a_last] as read: a matmul waits for a vmax
/// writing a row between its strided rows, or the span's last row (past
/// the rows a partial last group reads), and not for one writing the row
/// after the span.
#[test]
fn matmul_patterns_match_the_model() {
    for hw in ["tiny", "default"] {
        let cfg = config(hw);
        let (c, _, _) = shape(&cfg);
        let k = cfg.array.rows.min(cfg.array.cols);
        let mut text = format!(
            "load dram=0 stride={c} rows=600 cols={c} addr=0 @signal(compute)\n\
             ldw addr=0 k={k} n={c} @wait(load)\n"
        );
        let patterns = [(20, 3, 0, 0, 0), (20, 3, 2, 0, 0), (24, 1, 2, 6, 30), (15, 0, 1, 5, 2), (9, 7, 3, 1, 5)];
        let mut acc = 0;
        for (i, (m, a, s, g, gs)) in patterns.iter().enumerate() {
            let swap = if i == 0 { " swap=1" } else { "" };
            text += &format!("matmul a={} m={m} acc={acc} a_stride={s} a_group={g} a_gstride={gs}{swap}\n", k + a);
            acc += m;
        }
        // Accumulating over the first pattern's rows, with a preload, then
        // swapping the preloaded tile in.
        text += &format!(
            "matmul a=50 m=20 acc=0 accumulate=1 a_stride=3 a_group=4 a_gstride=7 in_type=u8 preload=1 w=5 k={k} n={c}\n\
             matmul a=80 m=12 acc={acc} swap=1 a_stride=5 a_group=5 a_gstride=1\n"
        );
        acc += 12;
        // The interlock. Span of `a=200 m=10 a_stride=3 a_group=4
        // a_gstride=20`: rows 200..=249 (last group: 240, 243; a_last 249).
        let pattern = "a_stride=3 a_group=4 a_gstride=20";
        let vmax = |dst: u64| format!("vmax a=300 a_stride=1 b=330 b_stride=1 dst={dst} dst_stride=1 n=25\n");
        for (dst, note) in [(201, "between strided rows"), (249, "a_last"), (250, "after the span")] {
            text += &vmax(dst);
            text += &format!("matmul a=200 m=10 acc={acc} {pattern} ; {note}\n");
            acc += 10;
        }
        // A vlut's destination inside the span of a one-row-group pattern.
        text += &format!(
            "vlut src=400 dst=417 n=9 table=450\n\
             matmul a=400 m=6 acc={acc} a_group=1 a_gstride=4\n"
        );
        acc += 6;
        text += "sync queue=compute @signal(store)\n";
        // The accumulator rows 32 at a time, each store after the previous
        // one's bytes left (a STORE-queue sync waits for the unit to be
        // idle): a row of int32 is read faster than DRAM takes it, and the
        // RTL's staging buffer is finite.
        for (i, first) in (0..acc).step_by(32).enumerate() {
            let wait = if i == 0 { " @wait(compute)" } else { "" };
            let (rows, dram) = ((acc - first).min(32), 0x40000 + first * 4 * c);
            text += &format!(
                "store buf=acc dram={dram} stride={s} rows={rows} cols={c} addr={first}{wait}\nsync queue=store\n",
                s = 4 * c
            );
        }
        text += &format!("store dram=0x60000 stride={c} rows=600 cols={c} addr=0\nfinish\n");
        for seed in 0..2 {
            let r = check_text(&cfg, "matmul patterns", &text, 100 + seed);
            println!("matmul patterns on {hw}: {} cycles, equal on both backends", r.cycles());
        }
    }
}

/// The dispatch check of the new fields on both sizes: a vlut's table,
/// source or destination past the scratchpad, a zero-row vlut, and matmul
/// input spans past it (the last group partial, one-row groups far apart,
/// a long stride, a group longer than m), each faulting (or not) at the
/// same cycle with the same ERROR_PC, also behind a running instruction.
#[test]
fn pattern_and_table_faults_match_the_model() {
    use isa::regs::ErrorCode::{BufferOutOfRange, IllegalInstruction};
    for hw in ["tiny", "default"] {
        let cfg = config(hw);
        let (c, t, spad) = shape(&cfg);
        let win = (0x1000, 0x10000);
        let lead = format!(
            "load dram=0x2000 stride={c} rows=8 cols={c} @signal(compute)\nvlut src=0 dst=0 n=8 table=0 @wait(load)\n"
        );
        let bad: Vec<(String, String, isa::regs::ErrorCode)> = vec![
            (
                "vlut table past the scratchpad".into(),
                format!("vlut src=0 dst=0 n=1 table={}", spad - t + 1),
                BufferOutOfRange,
            ),
            ("vlut table at the last row".into(), format!("vlut src=0 dst=0 n=1 table={}", spad - 1), BufferOutOfRange),
            (
                "vlut source past the scratchpad".into(),
                format!("vlut src={} dst=0 n=2 table=0", spad - 1),
                BufferOutOfRange,
            ),
            (
                "vlut destination past the scratchpad".into(),
                format!("vlut src=0 dst={} n=2 table=0", spad - 1),
                BufferOutOfRange,
            ),
            (
                "matmul span past the scratchpad (partial last group)".into(),
                format!("matmul a={} m=10 a_stride=3 a_group=4 a_gstride=100", spad - 209),
                BufferOutOfRange,
            ),
            ("matmul groups far apart".into(), "matmul a=0 m=3 a_group=1 a_gstride=65535".into(), BufferOutOfRange),
            ("matmul long stride".into(), "matmul a=0 m=300 a_stride=255".into(), BufferOutOfRange),
            (
                "matmul group longer than m".into(),
                format!("matmul a={} m=5 a_stride=2 a_group=1000 a_gstride=7", spad - 8),
                BufferOutOfRange,
            ),
        ];
        for (what, instr, want) in &bad {
            check_fault(&cfg, what, &format!("{instr}\nfinish"), win, *want);
            check_fault(&cfg, &format!("{what}, behind a vlut"), &format!("{lead}{instr}\nfinish"), win, *want);
        }
        // A vlut of no rows does not decode (the assembler refuses to write it).
        let mut code: Vec<[u8; 32]> = isa::asm::parse_program(&lead).unwrap().iter().map(|i| i.encode()).collect();
        code.push(Instr::Vlut(isa::instr::Vlut { n: 0, ..Default::default() }).encode());
        code.push(isa::asm::parse_program("finish").unwrap()[0].encode());
        let r =
            check_fault_raw(&cfg, "vlut of no rows", &code, 0x4000, code.len() as u32, win, Some(IllegalInstruction));
        assert!(matches!(r.outcome, Outcome::Fault { .. }));
        // The largest legal spans and tables run.
        let ok = [
            format!("vlut src=0 dst=0 n=1 table={}", spad - t),
            format!("matmul a={} m=10 a_stride=3 a_group=4 a_gstride=100", spad - 210),
            format!("matmul a={} m=5 a_stride=2 a_group=1000 a_gstride=7", spad - 9),
        ];
        for instr in &ok {
            let code: Vec<[u8; 32]> = isa::asm::parse_program(&format!("{lead}{instr}\nfinish"))
                .unwrap()
                .iter()
                .map(|i| i.encode())
                .collect();
            let r = check_fault_raw(&cfg, instr, &code, 0x4000, code.len() as u32, win, None);
            assert_eq!(r.outcome, Outcome::Done, "{instr} on {hw}");
        }
        println!("vlut and matmul-pattern faults on {hw}: every code and cycle equal");
    }
}
