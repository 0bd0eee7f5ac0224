//! File tests over `examples/asm/*.s` (Cranelift / Calyx style). Each program
//! states in its header the hardware config, the .npy inputs it expects at
//! which device addresses, the outputs it writes, and its cycle count:
//!
//! ```text
//! ; systole-test: hw=tiny
//! ; input: 0x1000 gemm_4x4.a.npy
//! ; output: 0x2000 i32 4x4 gemm_4x4.c.npy
//! ; expect-cycles: 170
//! ```
//!
//! The runner assembles each program, runs it on the Rust model through the
//! driver, and compares every output bit for bit with the expected .npy,
//! and the cycle count with the header. The inputs and expected outputs are
//! made here by a plain Rust reference (and the long tiled program by the
//! GEMM lowering); a second test checks the committed files are exactly
//! what this code makes. `UPDATE_EXPECT=1 cargo test --test examples`
//! rewrites the data, the generated program and the cycle counts after a
//! deliberate change, so the diff shows in review.

use compiler::gemm::{lower_gemm, reference_gemm, GemmOutput, GemmSpec, INPUT, OUTPUT};
use driver::{Driver, Outcome};
use isa::program::{DType, Program};
use isa::HwConfig;
use npyz::WriterBuilder;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/asm")
}

/// The two tests read and (when updating) write the same files.
static FILES: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn updating() -> bool {
    std::env::var_os("UPDATE_EXPECT").is_some()
}

fn config(name: &str) -> HwConfig {
    match name {
        "tiny" => HwConfig::tiny_4x4(),
        "default" => HwConfig::default_16x16(),
        "large" => HwConfig::large_32x32(),
        other => panic!("unknown hw `{other}` in a test header"),
    }
}

/// A deterministic pseudo-random stream (64-bit LCG) for example data.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
    fn i8s(&mut self, n: usize) -> Vec<i8> {
        (0..n).map(|_| self.next() as u8 as i8).collect()
    }
    fn range(&mut self, lo: i32, hi: i32) -> i32 {
        lo + (self.next() % (hi - lo + 1) as u32) as i32
    }
}

/// An .npy file's content: dtype, shape and raw little-endian bytes.
#[derive(Clone, Debug, PartialEq)]
struct Npy {
    dtype: DType,
    shape: Vec<u64>,
    bytes: Vec<u8>,
}

impl Npy {
    fn i8(shape: &[u64], v: &[i8]) -> Npy {
        Npy { dtype: DType::I8, shape: shape.to_vec(), bytes: v.iter().map(|&x| x as u8).collect() }
    }
    fn u8(shape: &[u64], v: &[u8]) -> Npy {
        Npy { dtype: DType::U8, shape: shape.to_vec(), bytes: v.to_vec() }
    }
    fn i32(shape: &[u64], v: &[i32]) -> Npy {
        Npy { dtype: DType::I32, shape: shape.to_vec(), bytes: v.iter().flat_map(|x| x.to_le_bytes()).collect() }
    }

    fn read(path: &Path) -> Npy {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let f = npyz::NpyFile::new(&bytes[..]).expect("valid npy");
        let shape = f.shape().to_vec();
        let dtype = match f.dtype().descr().trim_matches('\'') {
            "|i1" => DType::I8,
            "|u1" => DType::U8,
            "<i4" => DType::I32,
            other => panic!("{}: unexpected dtype {other}", path.display()),
        };
        let bytes = match dtype {
            DType::I8 => f.into_vec::<i8>().unwrap().iter().map(|&x| x as u8).collect(),
            DType::U8 => f.into_vec::<u8>().unwrap(),
            _ => f.into_vec::<i32>().unwrap().iter().flat_map(|x| x.to_le_bytes()).collect(),
        };
        Npy { dtype, shape, bytes }
    }

    fn write(&self, path: &Path) {
        let mut out = Vec::new();
        {
            match self.dtype {
                DType::I8 => {
                    let mut w = npyz::WriteOptions::new()
                        .default_dtype()
                        .shape(&self.shape)
                        .writer(&mut out)
                        .begin_nd()
                        .unwrap();
                    w.extend(self.bytes.iter().map(|&b| b as i8)).unwrap();
                    w.finish().unwrap();
                }
                DType::U8 => {
                    let mut w = npyz::WriteOptions::new()
                        .default_dtype()
                        .shape(&self.shape)
                        .writer(&mut out)
                        .begin_nd()
                        .unwrap();
                    w.extend(self.bytes.iter().copied()).unwrap();
                    w.finish().unwrap();
                }
                _ => {
                    let mut w = npyz::WriteOptions::new()
                        .default_dtype()
                        .shape(&self.shape)
                        .writer(&mut out)
                        .begin_nd()
                        .unwrap();
                    w.extend(self.bytes.chunks(4).map(|c| i32::from_le_bytes(c.try_into().unwrap()))).unwrap();
                    w.finish().unwrap();
                }
            }
        }
        std::fs::write(path, out).unwrap();
    }
}

/// The files an example needs, made by the plain reference: name -> content.
/// The tiled GEMM also returns its generated assembly.
fn make_example(name: &str) -> (Vec<(String, Npy)>, Option<String>) {
    match name {
        "gemm_4x4" => {
            let mut r = Lcg(4);
            let (a, w) = (r.i8s(16), r.i8s(16));
            let mut c = vec![0i32; 16];
            for i in 0..4 {
                for j in 0..4 {
                    c[i * 4 + j] = (0..4).map(|k| a[i * 4 + k] as i32 * w[k * 4 + j] as i32).sum();
                }
            }
            let files = vec![
                ("gemm_4x4.a.npy".into(), Npy::i8(&[4, 4], &a)),
                ("gemm_4x4.w.npy".into(), Npy::i8(&[4, 4], &w)),
                ("gemm_4x4.c.npy".into(), Npy::i32(&[4, 4], &c)),
            ];
            (files, None)
        }
        "layer_16x16" => {
            let mut r = Lcg(16);
            let (x, w) = (r.i8s(256), r.i8s(256));
            let bias: Vec<i32> = (0..16).map(|_| r.range(-4000, 4000)).collect();
            let scale: Vec<f32> = (0..16).map(|_| r.range(200, 900) as f32 * 1e-5).collect();
            let mut params = bias.clone();
            params.extend(scale.iter().map(|s| s.to_bits() as i32));
            let mut y = vec![0i8; 256];
            for i in 0..16 {
                for j in 0..16 {
                    let acc: i32 = (0..16).map(|k| x[i * 16 + k] as i32 * w[k * 16 + j] as i32).sum();
                    y[i * 16 + j] = isa::numerics::requantize(acc + bias[j], scale[j], -128, -128, 127) as i8;
                }
            }
            let files = vec![
                ("layer_16x16.x.npy".into(), Npy::i8(&[16, 16], &x)),
                ("layer_16x16.w.npy".into(), Npy::i8(&[16, 16], &w)),
                ("layer_16x16.params.npy".into(), Npy::i32(&[2, 16], &params)),
                ("layer_16x16.y.npy".into(), Npy::i8(&[16, 16], &y)),
            ];
            (files, None)
        }
        "gemm_64_tiled" => {
            let (spec, a) = tiled_spec();
            let prog = lower_gemm(&spec, &HwConfig::default_16x16()).expect("lowers");
            let c: Vec<i8> = reference_gemm(&spec, &a).iter().map(|&v| v as i8).collect();
            let files = vec![
                ("gemm_64_tiled.a.npy".into(), Npy::i8(&[64, 64], &a.iter().map(|&x| x as i8).collect::<Vec<_>>())),
                ("gemm_64_tiled.data.npy".into(), Npy::u8(&[prog.data.len() as u64], &prog.data)),
                ("gemm_64_tiled.c.npy".into(), Npy::i8(&[64, 64], &c)),
            ];
            (files, Some(tiled_asm(&prog)))
        }
        other => panic!("no generator for example `{other}`"),
    }
}

fn tiled_spec() -> (GemmSpec, Vec<u8>) {
    let mut r = Lcg(64);
    let weights = r.i8s(64 * 64);
    let a: Vec<u8> = r.i8s(64 * 64).iter().map(|&x| x as u8).collect();
    let bias = (0..64).map(|_| r.range(-3000, 3000)).collect();
    let scale = (0..64).map(|_| r.range(100, 400) as f32 * 1e-5).collect();
    let spec = GemmSpec {
        m: 64,
        k: 64,
        n: 64,
        weights,
        input_unsigned: false,
        output: GemmOutput::Int8 { bias, scale, zero_point: -128, qmin: -128, qmax: 127 },
    };
    (spec, a)
}

/// The assembly of the tiled GEMM, with the header the runner reads.
fn tiled_asm(prog: &Program) -> String {
    let a = prog.tensor(INPUT).expect("input");
    let c = prog.tensor(OUTPUT).expect("output");
    let mut s = String::new();
    s.push_str(
        "; A 64x64x64 int8 GEMM with bias, requantization and ReLU on the 16x16 array,\n\
         ; tiled and double-buffered by `compiler::gemm` (generated by tests/examples.rs;\n\
         ; UPDATE_EXPECT=1 cargo test --test examples rewrites it).\n\
         ;\n\
         ; Schedule: one step per (block of A rows, 16-column tile of C). Each step\n\
         ; streams the A block once per 16-deep k-tile; every matmul swaps in the\n\
         ; weights the previous one preloaded and preloads the next tile's, so weight\n\
         ; loading hides under streaming. LOAD runs up to two steps ahead: a step's\n\
         ; weight stripe and parameters arrive while the previous step computes\n\
         ; (@signal(compute)), and a buffer is reused only after the step two back\n\
         ; released it (@wait(compute)). STORE drains each output tile while the\n\
         ; next one computes. The data blob holds the packed weight stripes\n\
         ; (64 rows x 16 bytes per tile column) and per-column bias and scale rows.\n\
         ;\n\
         ; systole-test: hw=default\n",
    );
    s.push_str(&format!("; input: {:#x} gemm_64_tiled.a.npy      A, int8 [64,64]\n", a.addr));
    s.push_str(&format!("; input: {:#x} gemm_64_tiled.data.npy   packed weights and parameters\n", prog.data_addr));
    s.push_str(&format!("; output: {:#x} i8 64x64 gemm_64_tiled.c.npy\n", c.addr));
    s.push_str("; expect-cycles: 0\n\n");
    s.push_str(&isa::asm::print_program(&prog.code));
    s
}

struct Header {
    hw: String,
    inputs: Vec<(u64, String)>,
    outputs: Vec<(u64, String)>,
    cycles: u64,
}

fn parse_header(text: &str, file: &str) -> Header {
    let mut h = Header { hw: String::new(), inputs: vec![], outputs: vec![], cycles: u64::MAX };
    let num = |s: &str| match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).unwrap(),
        None => s.parse().unwrap(),
    };
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("; ") else { continue };
        let words: Vec<&str> = rest.split_whitespace().collect();
        match words.first().copied() {
            Some("systole-test:") => h.hw = words[1].strip_prefix("hw=").expect("hw=").to_string(),
            Some("input:") => h.inputs.push((num(words[1]), words[2].to_string())),
            Some("output:") => h.outputs.push((num(words[1]), words[4].to_string())),
            Some("expect-cycles:") => h.cycles = words[1].parse().unwrap(),
            _ => {}
        }
    }
    assert!(!h.hw.is_empty() && h.cycles != u64::MAX, "{file}: header needs systole-test and expect-cycles");
    h
}

fn example_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".s").map(str::to_string))
        .collect();
    names.sort();
    names
}

#[test]
fn example_data_is_what_the_reference_makes() {
    let _files = FILES.lock().unwrap_or_else(|e| e.into_inner());
    for name in ["gemm_4x4", "layer_16x16", "gemm_64_tiled"] {
        let (files, asm) = make_example(name);
        for (file, npy) in files {
            let path = dir().join(&file);
            if updating() {
                npy.write(&path);
            }
            assert_eq!(Npy::read(&path), npy, "{file} is stale: UPDATE_EXPECT=1 cargo test --test examples");
        }
        if name == "gemm_64_tiled" {
            // The same program compiled, with its constants and tensor map:
            // the README's bundled example.
            let (spec, _) = tiled_spec();
            let fresh = lower_gemm(&spec, &HwConfig::default_16x16()).expect("lowers").to_bytes();
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/gemm64.sbin");
            if updating() {
                std::fs::write(&path, &fresh).unwrap();
            }
            let committed = std::fs::read(&path).unwrap_or_default();
            assert!(committed == fresh, "examples/gemm64.sbin is stale: UPDATE_EXPECT=1 cargo test --test examples");
        }
        if let Some(fresh) = asm {
            let path = dir().join(format!("{name}.s"));
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            // The cycle count is checked by the other test; compare the rest.
            let strip =
                |s: &str| s.lines().filter(|l| !l.starts_with("; expect-cycles:")).collect::<Vec<_>>().join("\n");
            if strip(&committed) != strip(&fresh) {
                assert!(updating(), "{name}.s is stale: UPDATE_EXPECT=1 cargo test --test examples");
                std::fs::write(&path, fresh).unwrap();
            }
        }
    }
}

#[test]
fn examples_run_bit_exact_with_expected_cycles() {
    let _files = FILES.lock().unwrap_or_else(|e| e.into_inner());
    let names = example_names();
    assert!(names.len() >= 3, "examples/asm has {names:?}");
    for name in names {
        let path = dir().join(format!("{name}.s"));
        let text = std::fs::read_to_string(&path).unwrap();
        let h = parse_header(&text, &name);
        let cfg = config(&h.hw);
        let code = isa::asm::parse_program(&text).unwrap_or_else(|e| panic!("{name}.s: {e}"));
        for (i, instr) in code.iter().enumerate() {
            isa::legal::check(instr, &cfg).unwrap_or_else(|e| panic!("{name}.s instruction {i}: {e}"));
        }
        let prog = Program {
            fingerprint: cfg.fingerprint(),
            config_name: cfg.name.clone(),
            code_addr: 0,
            code,
            data_addr: 0,
            data: vec![],
            mem_bytes: cfg.dram_bytes(),
            tensors: vec![],
            meta: Default::default(),
        };
        let mut d = Driver::new(sim::Model::new(&cfg).unwrap());
        d.load(&prog).unwrap();
        for (addr, file) in &h.inputs {
            d.write_mem(*addr, &Npy::read(&dir().join(file)).bytes).unwrap();
        }
        let rep = d.run().unwrap();
        assert_eq!(rep.outcome, Outcome::Done, "{name}");
        for (addr, file) in &h.outputs {
            let want = Npy::read(&dir().join(file));
            let got = d.read_mem(*addr, want.bytes.len()).unwrap();
            assert!(got == want.bytes, "{name}: output {file} differs from the reference");
        }
        if rep.cycles() != h.cycles {
            assert!(updating(), "{name}.s: {} cycles, the header expects {}", rep.cycles(), h.cycles);
            let fixed =
                text.replace(&format!("; expect-cycles: {}", h.cycles), &format!("; expect-cycles: {}", rep.cycles()));
            std::fs::write(&path, fixed).unwrap();
        }
        println!("{name}: {} cycles, {} MACs", rep.cycles(), rep.counters.get(isa::Counter::Macs));
    }
}
