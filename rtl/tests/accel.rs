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
    let mut model = sim::Model::new(cfg).unwrap();
    let (a, mem_a) = run_on(&mut model, img);
    let (b, mem_b) = with_rtl(cfg, |dev| run_on(dev, img));
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
    a
}

fn image(code: &[Instr], data: Vec<u8>, window: u64) -> Image {
    let code_addr = (data.len() as u64 + 127) / 128 * 128;
    let code: Vec<u8> = code.iter().flat_map(|i| i.encode()).collect();
    Image { code_addr, code, data, window }
}

fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut r = StdRng::seed_from_u64(seed);
    (0..n).map(|_| r.gen()).collect()
}

/// The `examples/asm` programs, on their own configurations and on the
/// other size, with random data under their inputs.
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
        let hw = if text.contains("hw=tiny") { "tiny" } else { "default" };
        let cfg = config(hw);
        let window = 1 << 20;
        let img = image(&code, random_bytes(256 << 10, name.len() as u64), window);
        let r = check_both(&cfg, &name, &img);
        assert_eq!(r.outcome, Outcome::Done, "{name}");
        println!("{name} on {hw}: {} cycles, equal on both backends", r.cycles());
    }
}

/// Runs a compiled program (code and constants placed by the driver) with
/// random bytes in its input tensors on both backends and compares.
fn check_program(cfg: &HwConfig, what: &str, prog: &isa::program::Program, seed: u64) -> RunReport {
    let mut rng = StdRng::seed_from_u64(seed);
    let inputs: Vec<(isa::program::TensorInfo, Vec<u8>)> =
        prog.inputs().map(|t| (t.clone(), (0..t.byte_len()).map(|_| rng.gen()).collect())).collect();
    let window = prog.mem_bytes as usize;
    let run = |d: &mut Driver<&mut dyn Device>| {
        d.write_mem(0, &vec![0; window]).unwrap();
        d.load(prog).unwrap();
        for (t, bytes) in &inputs {
            d.write_tensor(t, bytes).unwrap();
        }
        let r = d.run().unwrap();
        (r, d.read_mem(0, window).unwrap())
    };
    let mut model = sim::Model::new(cfg).unwrap();
    let (a, mem_a) = run(&mut Driver::new(&mut model as &mut dyn Device));
    let (b, mem_b) = with_rtl(cfg, |dev| run(&mut Driver::new(dev as &mut dyn Device)));
    if let Err(d) = compare_runs(&a, &b).and_then(|_| compare_memory(0, &mem_a, &mem_b)) {
        panic!("{what} on `{}`: model vs RTL: {d}", cfg.name);
    }
    a
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
