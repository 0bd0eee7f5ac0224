//! The 2:4-sparse PEs (`array.sparsity_2_4`, `SPARSE = 1`) against the Rust
//! model, cycle for cycle: i8s24 tiles (`ldw`, preloads), 2:4 inputs with
//! and without a second block (`a_bstride`), dense tiles on the same array,
//! swaps between the two, the position rows' interlock, their faults, and
//! a compiled 2:4 GEMM. Every run compares the outcome, total cycles, every
//! counter, each instruction's start and finish and the memory window.
//!
//! `cargo test -p rtl --features verilator --release --test sparse24`

use driver::compare::{compare_memory, compare_runs};
use driver::{Driver, Outcome, RunReport};
use isa::regs;
use isa::{Device, HwConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rtl::RtlDevice;
use std::path::Path;
use std::sync::Mutex;

/// One RTL device per configuration for the whole test binary (built and
/// loaded once: concurrent builds of one configuration would race); tests
/// take turns.
static DEVICES: Mutex<Vec<(String, RtlDevice)>> = Mutex::new(Vec::new());

fn with_rtl<R>(cfg: &HwConfig, f: impl FnOnce(&mut RtlDevice) -> R) -> R {
    let mut devs = DEVICES.lock().unwrap_or_else(|e| e.into_inner());
    if !devs.iter().any(|(n, _)| *n == cfg.name) {
        let dev = RtlDevice::new(cfg).unwrap_or_else(|e| panic!("building the RTL of `{}`: {e}", cfg.name));
        devs.push((cfg.name.clone(), dev));
    }
    f(&mut devs.iter_mut().find(|(n, _)| *n == cfg.name).unwrap().1)
}

fn config(name: &str) -> HwConfig {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/hw")).join(format!("{name}.toml"));
    HwConfig::from_toml(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// `base` with 2:4-sparse PEs, `rows x cols`.
fn sparse(base: &str, rows: u32, cols: u32) -> HwConfig {
    let mut cfg = config(base);
    cfg.array.sparsity_2_4 = true;
    cfg.array.rows = rows;
    cfg.array.cols = cols;
    cfg.name = format!("{base}-sparse24-{rows}x{cols}");
    cfg.validate().unwrap();
    cfg
}

/// Runs `text` (code after `data`, at 0) on `dev`; the run and the window.
fn run_on(dev: &mut dyn Device, text: &str, data: &[u8], window: u64) -> (RunReport, Vec<u8>) {
    let code: Vec<u8> = isa::asm::parse_program(text)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .iter()
        .flat_map(|i| i.encode())
        .collect();
    let code_addr = (data.len() as u64).div_ceil(128) * 128;
    dev.write_mem(0, &vec![0; window as usize]).unwrap();
    dev.write_mem(0, data).unwrap();
    dev.write_mem(code_addr, &code).unwrap();
    dev.write_reg(regs::PROG_ADDR, code_addr as u32).unwrap();
    dev.write_reg(regs::PROG_LEN, (code.len() / 32) as u32).unwrap();
    dev.write_reg(regs::WIN_BASE, 0).unwrap();
    dev.write_reg(regs::WIN_LIMIT, window as u32).unwrap();
    let report = Driver::new(&mut *dev).run().unwrap();
    let mem = dev.read_mem(0, window as usize).unwrap();
    (report, mem)
}

/// `text` on the model and on `rtl` over random data (seeded): equal runs
/// and memory, or a panic naming the first difference.
fn check_both(cfg: &HwConfig, what: &str, text: &str, seed: u64) -> RunReport {
    let mut rng = StdRng::seed_from_u64(seed);
    let data: Vec<u8> = (0..0x30000).map(|_| rng.gen()).collect();
    let window = 1 << 20;
    let (a, mem_a) = run_on(&mut sim::Model::new(cfg).unwrap(), text, &data, window);
    let (b, mem_b) = with_rtl(cfg, |rtl| run_on(rtl, text, &data, window));
    if let Err(d) = compare_runs(&a, &b) {
        panic!("{what} on `{}`: model vs RTL: {d}", cfg.name);
    }
    if a.outcome == Outcome::Done {
        if let Err(d) = compare_memory(0, &mem_a, &mem_b) {
            panic!("{what} on `{}`: model vs RTL: {d}", cfg.name);
        }
    }
    a
}

/// Stores accumulator rows `0..acc` 32 at a time (each after the previous
/// one's bytes left: the RTL's staging buffer is finite), then scratchpad
/// rows `0..spad`.
fn store_all(acc: u64, spad: u64, c: u64) -> String {
    let mut text = "sync queue=compute @signal(store)\n".to_string();
    for (i, first) in (0..acc).step_by(32).enumerate() {
        let wait = if i == 0 { " @wait(compute)" } else { "" };
        let (rows, dram) = ((acc - first).min(32), 0x40000 + first * 4 * c);
        text += &format!(
            "store buf=acc dram={dram} stride={s} rows={rows} cols={c} addr={first}{wait}\nsync queue=store\n",
            s = 4 * c
        );
    }
    text + &format!("store dram=0x60000 stride={c} rows={spad} cols={c} addr=0\nfinish\n")
}

/// A program exercising the sparse PEs on an array of `rows x cols`.
fn sparse_program(rows: u32, cols: u32) -> (String, u64) {
    let (r, c) = (rows as u64, cols as u64);
    let mut acc = 0;
    let mut text = format!("load dram=0 stride={c} rows=600 cols={c} addr=0 @signal(compute)\n");
    let mut mm = |text: &mut String, m: u64, rest: &str| {
        *text += &format!("matmul m={m} acc={acc} {rest}\n");
        acc += m;
    };
    text += &format!("ldw addr=0 k={r} n={c} wfmt=i8s24 meta=100 @wait(load)\n");
    // Two input blocks; one (a_bstride = 0: inputs from cols on are 0).
    mm(&mut text, 20, "a=200 swap=1 a_bstride=30");
    mm(&mut text, 7, "a=210 a_stride=2");
    // Accumulating onto the first's rows (the accumulator is not reset
    // between runs), preloading a narrower sparse tile of odd k.
    let (k1, n1) = (r - 1, c - 1);
    text +=
        &format!("matmul m=10 acc=0 a=220 accumulate=1 a_bstride=5 preload=1 w=10 k={k1} n={n1} wfmt=i8s24 meta=110\n");
    // The narrow one, unsigned inputs, while a dense tile preloads.
    mm(&mut text, 9, &format!("a=230 swap=1 in_type=u8 a_bstride=3 preload=1 w=20 k={r} n={c}"));
    // The dense tile with a second block (read and ignored).
    mm(&mut text, 8, "a=240 swap=1 a_bstride=4");
    // Back to the narrow sparse tile, on a grouped pattern.
    mm(&mut text, 5, "a=250 swap=1 a_group=2 a_stride=2 a_gstride=7 a_bstride=9");
    // A one-row tile (a partial position row), one input row.
    text += "ldw addr=30 k=1 n=1 wfmt=i8s24 meta=120\n";
    mm(&mut text, 1, "a=260 swap=1 a_bstride=1");
    // The interlocks: a vmax writes the position rows of the next ldw,
    // then of the next preload.
    text += "vmax a=300 a_stride=1 b=330 b_stride=1 dst=130 dst_stride=1 n=25\n";
    text += &format!("ldw addr=400 k={r} n={c} wfmt=i8s24 meta=140\n");
    mm(&mut text, 6, "a=270 swap=1 a_bstride=2");
    text += "vmax a=300 a_stride=1 b=330 b_stride=1 dst=160 dst_stride=1 n=25\n";
    mm(&mut text, 4, &format!("a=280 preload=1 w=450 k={r} n={c} wfmt=i8s24 meta=170"));
    mm(&mut text, 12, "a=290 swap=1 a_bstride=6");
    // Back-to-back sparse loads with no wait between.
    text += &format!("ldw addr=40 k={r} n={c} wfmt=i8s24 meta=180\n");
    mm(&mut text, 3, "a=500 swap=1 a_bstride=11");
    text += &format!("ldw addr=50 k={r} n={c} wfmt=i8s24 meta=181\n");
    mm(&mut text, 2, "a=510 swap=1");
    text += &store_all(acc, 600, c);
    (text, acc)
}

/// The sparse program on 4x4 and 16x16 arrays and on a tall 8x4 one (kept
/// rows past the columns see no input), over random values and positions.
#[test]
fn sparse_tiles_match_the_model() {
    for cfg in [sparse("tiny", 4, 4), sparse("default", 16, 16), sparse("tiny", 8, 4)] {
        let (text, _) = sparse_program(cfg.array.rows, cfg.array.cols);
        for seed in 0..2 {
            let r = check_both(&cfg, "2:4 program", &text, seed);
            assert_eq!(r.outcome, Outcome::Done, "{}", cfg.name);
            println!("2:4 program on {}: {} cycles, equal on both backends", cfg.name, r.cycles());
        }
        // The dispatch check: position rows past the scratchpad, a dense
        // tile's meta, a second input block past the scratchpad.
        let spad = cfg.spad_rows() as u64;
        let (r, c) = (cfg.array.rows, cfg.array.cols);
        for (what, instr, code) in [
            (
                "positions past the scratchpad",
                format!("ldw addr=0 k={r} n={c} wfmt=i8s24 meta={}", spad + 1 - (r as u64).div_ceil(4)),
                OOR,
            ),
            ("a dense tile's meta", format!("ldw addr=0 k={r} n={c} meta=3"), ILL),
            ("preload positions", format!("matmul a=0 m=1 acc=0 preload=1 w=0 k=4 n={c} wfmt=i8s24 meta={spad}"), OOR),
            ("a second block past the scratchpad", format!("matmul a=0 m=2 acc=0 a_bstride={}", spad - 1), OOR),
            ("i4s24", format!("ldw addr=0 k={r} n={c} wfmt=i4s24"), ILL),
        ] {
            let text = format!("load dram=0 stride={c} rows=8 cols={c} addr=0\n{instr}\nfinish\n");
            let run = check_both(&cfg, what, &text, 9);
            assert!(
                matches!(run.outcome, Outcome::Fault { code: got, .. } if got == code),
                "{what} on {}: {:?}",
                cfg.name,
                run.outcome
            );
        }
    }
}

const OOR: isa::regs::ErrorCode = isa::regs::ErrorCode::BufferOutOfRange;
const ILL: isa::regs::ErrorCode = isa::regs::ErrorCode::IllegalInstruction;

/// A 2:4 GEMM lowered by the compiler (i8s24 tiles, two input blocks per
/// pass) on the 4x4 and 16x16 sparse arrays.
#[test]
fn compiled_sparse_gemm_matches_the_model() {
    use compiler::gemm::{lower_gemm, GemmOutput, GemmSpec};
    for cfg in [sparse("tiny", 4, 4), sparse("default", 16, 16)] {
        let (m, k, n) = (37, 96, 40);
        let mut rng = StdRng::seed_from_u64(5);
        let mut weights = vec![0i8; k * n];
        for col in 0..n {
            for g in 0..k / 4 {
                let p0 = rng.gen_range(0..4);
                let p1 = (p0 + rng.gen_range(1..4)) % 4;
                for p in [p0, p1] {
                    weights[(4 * g + p) * n + col] = rng.gen_range(1..=127) * if rng.gen() { 1 } else { -1 };
                }
            }
        }
        let spec = GemmSpec {
            m,
            k,
            n,
            weights,
            input_unsigned: false,
            output: GemmOutput::Int8 { bias: vec![11; n], scale: vec![3e-4; n], zero_point: 4, qmin: -128, qmax: 127 },
        };
        let prog = lower_gemm(&spec, &cfg).unwrap();
        assert!(
            prog.code.iter().any(|i| matches!(i, isa::Instr::Ldw(l) if l.wfmt == isa::instr::WFMT_I8_S24)
                || matches!(i, isa::Instr::Matmul(mm) if mm.preload != 0 && mm.wfmt == isa::instr::WFMT_I8_S24)),
            "the GEMM uses i8s24 tiles on {}",
            cfg.name
        );
        let a: Vec<u8> = (0..m * k).map(|_| rng.gen()).collect();
        let window = prog.mem_bytes as usize;
        let run = |dev: &mut dyn Device| {
            let mut d = Driver::new(dev);
            d.write_mem(0, &vec![0; window]).unwrap();
            d.load(&prog).unwrap();
            d.write_mem(prog.tensor(compiler::gemm::INPUT).unwrap().addr, &a).unwrap();
            let r = d.run().unwrap();
            (r, d.read_mem(0, window).unwrap())
        };
        let (ra, ma) = run(&mut sim::Model::new(&cfg).unwrap());
        let (rb, mb) = with_rtl(&cfg, |rtl| run(rtl));
        if let Err(d) = compare_runs(&ra, &rb).and_then(|_| compare_memory(0, &ma, &mb)) {
            panic!("2:4 GEMM on `{}`: model vs RTL: {d}", cfg.name);
        }
        assert_eq!(ra.outcome, Outcome::Done);
        println!("2:4 GEMM {m}x{k}x{n} on {}: {} cycles, equal on both backends", cfg.name, ra.cycles());
    }
}
