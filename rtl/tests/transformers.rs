//! Transposed weight tiles (`ldw` / `matmul` preload with `trans = 1`,
//! ISA.md §3: Kᵀ in attention) and the bundled transformers on the RTL,
//! cycle for cycle against the Rust model: every run compares the outcome
//! (fault code and instruction), total cycles, every counter, each
//! instruction's start and finish and, when it finishes, the memory window.
//!
//! `cargo test -p rtl --features verilator --release --test transformers`
//! (the configurations are those `accel.rs` and `sparse24.rs` build, and
//! one more: `default-8x16`, a non-square array with buffers large enough
//! for the transformers).

use driver::compare::{compare_memory, compare_runs};
use driver::{Driver, Outcome, RunReport};
use isa::regs::{self, ErrorCode};
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

/// `tiny` with 8 reduction rows (`accel.rs`'s tall array: more rows than a
/// scratchpad row has bytes, so a transposed tile's rows past 4 are zero).
fn tall() -> HwConfig {
    let mut cfg = config("tiny");
    cfg.name = "tall-8x4".into();
    cfg.array.rows = 8;
    cfg.validate().unwrap();
    cfg
}

/// The default buffers on a non-square 8 x 16 array (the tall 8 x 4's
/// buffers are too small for the transformers).
fn short() -> HwConfig {
    let mut cfg = config("default");
    cfg.name = "default-8x16".into();
    cfg.array.rows = 8;
    cfg.validate().unwrap();
    cfg
}

/// `base` with 2:4-sparse PEs, `rows x cols` (as `sparse24.rs` builds them).
fn sparse(base: &str, rows: u32, cols: u32) -> HwConfig {
    let mut cfg = config(base);
    cfg.array.sparsity_2_4 = true;
    cfg.array.rows = rows;
    cfg.array.cols = cols;
    cfg.name = format!("{base}-sparse24-{rows}x{cols}");
    cfg.validate().unwrap();
    cfg
}

/// One RTL device per configuration for the whole test binary (built and
/// loaded once); tests take turns.
static DEVICES: Mutex<Vec<(String, RtlDevice)>> = Mutex::new(Vec::new());

fn with_rtl<R>(cfg: &HwConfig, f: impl FnOnce(&mut RtlDevice) -> R) -> R {
    let mut devs = DEVICES.lock().unwrap_or_else(|e| e.into_inner());
    if !devs.iter().any(|(n, _)| *n == cfg.name) {
        let dev = RtlDevice::new(cfg).unwrap_or_else(|e| panic!("building the RTL of `{}`: {e}", cfg.name));
        devs.push((cfg.name.clone(), dev));
    }
    f(&mut devs.iter_mut().find(|(n, _)| *n == cfg.name).unwrap().1)
}

const WINDOW: u64 = 1 << 20;

/// Runs `code` (after `data`, at 0) on `dev`: the run and the window.
fn run_on(dev: &mut dyn Device, code: &[u8], data: &[u8]) -> (RunReport, Vec<u8>) {
    let code_addr = (data.len() as u64).div_ceil(128) * 128;
    dev.write_mem(0, &vec![0; WINDOW as usize]).unwrap();
    dev.write_mem(0, data).unwrap();
    dev.write_mem(code_addr, code).unwrap();
    dev.write_reg(regs::PROG_ADDR, code_addr as u32).unwrap();
    dev.write_reg(regs::PROG_LEN, (code.len() / 32) as u32).unwrap();
    dev.write_reg(regs::WIN_BASE, 0).unwrap();
    dev.write_reg(regs::WIN_LIMIT, WINDOW as u32).unwrap();
    let report = Driver::new(&mut *dev).run().unwrap();
    let mem = dev.read_mem(0, WINDOW as usize).unwrap();
    (report, mem)
}

/// `text` on the model and the RTL over random data (seeded): equal runs
/// (and memory when it finishes), or a panic naming the first difference.
fn check_both(cfg: &HwConfig, what: &str, text: &str, seed: u64) -> RunReport {
    let code: Vec<u8> = isa::asm::parse_program(text)
        .unwrap_or_else(|e| panic!("{what}: {e}\n{text}"))
        .iter()
        .flat_map(|i| i.encode())
        .collect();
    let mut rng = StdRng::seed_from_u64(seed);
    let data: Vec<u8> = (0..0x30000).map(|_| rng.gen()).collect();
    let (a, mem_a) = run_on(&mut sim::Model::new(cfg).unwrap(), &code, &data);
    let (b, mem_b) = with_rtl(cfg, |rtl| run_on(rtl, &code, &data));
    if let Err(d) = compare_runs(&a, &b) {
        panic!("{what} on `{}`: model vs RTL: {d}\n{text}", cfg.name);
    }
    if a.outcome == Outcome::Done {
        if let Err(d) = compare_memory(0, &mem_a, &mem_b) {
            panic!("{what} on `{}`: model vs RTL: {d}\n{text}", cfg.name);
        }
    }
    a
}

/// Signals STORE once every matmul has drained (a `sync` would not wait
/// for the last results): a vector instruction waits for the drain, and
/// this vmask replaces nothing (no element past the diagonal + 100).
const DRAINED: &str = "vmask dst=0 rows=1 len=1 diag=100 imm=0 @signal(store)\n";

/// Scratchpad rows the random programs load and work in.
const SPAD: u64 = 256;
/// Accumulator rows they write.
const ACC: u64 = 64;

/// A random program of weight loads (transposed or not, and on 2:4 arrays
/// i8s24 tiles) and matmuls (swaps, preloads of either kind, accumulation,
/// int8 / uint8 inputs, 2:4 second input blocks), interleaved with vmax
/// and vlut writing rows later loads and matmuls read (the post-processor
/// interlock: a transposed tile reads its `n` rows, not `k`) but none an
/// earlier one reads (the array may still be streaming it: a race, ISA.md
/// §3 "Hazards"); the accumulator and scratchpad rows are stored back.
fn random_program(cfg: &HwConfig, rng: &mut StdRng) -> String {
    let (rows, cols) = (cfg.array.rows as u64, cfg.array.cols as u64);
    let kt = rows.min(cols); // a transposed tile's largest k
    let s24 = cfg.array.sparsity_2_4;
    let mut text = format!(
        "load dram=0 stride={cols} rows={SPAD} cols={cols} addr=0\n\
         load buf=acc dram=0x10000 stride={s} rows={ACC} cols={cols} addr=0 @signal(compute)\n",
        s = 4 * cols
    );
    // Scratchpad rows an array instruction so far reads.
    let mut read = vec![false; SPAD as usize];
    let mark = |read: &mut [bool], lo: u64, n: u64| read[lo as usize..(lo + n) as usize].fill(true);
    // A tile's fields (w = its first row) of either kind; marks its rows.
    let tile = |rng: &mut StdRng, read: &mut [bool]| -> String {
        let n = rng.gen_range(1..=cols);
        match rng.gen_range(0..if s24 { 5 } else { 4 }) {
            0 | 1 => {
                let k = rng.gen_range(1..=kt);
                let addr = rng.gen_range(0..=SPAD - n);
                mark(read, addr, n);
                format!("w={addr} k={k} n={n} trans=1")
            }
            2 | 3 => {
                let k = rng.gen_range(1..=rows);
                let addr = rng.gen_range(0..=SPAD - k);
                mark(read, addr, k);
                format!("w={addr} k={k} n={n}")
            }
            _ => {
                let k = rng.gen_range(1..=rows);
                let addr = rng.gen_range(0..=SPAD - k);
                let meta = rng.gen_range(0..=SPAD - k.div_ceil(4));
                mark(read, addr, k);
                mark(read, meta, k.div_ceil(4));
                format!("w={addr} k={k} n={n} wfmt=i8s24 meta={meta}")
            }
        }
    };
    let mut waited = false;
    let mut wait = || if std::mem::replace(&mut waited, true) { "" } else { " @wait(load)" };
    for _ in 0..rng.gen_range(12..30) {
        match rng.gen_range(0..10) {
            0..=2 => {
                let t = tile(rng, &mut read);
                text += &format!("ldw {}{}\n", t.replacen("w=", "addr=", 1), wait());
            }
            3..=7 => {
                let m = rng.gen_range(1..=40);
                let a = rng.gen_range(0..SPAD - m - 8);
                let acc = rng.gen_range(0..=ACC - m);
                mark(&mut read, a, m);
                let mut f = format!("matmul a={a} m={m} acc={acc}");
                if rng.gen_bool(0.5) {
                    f += " accumulate=1";
                }
                if rng.gen_bool(0.6) {
                    f += " swap=1";
                }
                if rng.gen_bool(0.3) {
                    f += " in_type=u8";
                }
                if s24 && rng.gen_bool(0.3) {
                    let bs = rng.gen_range(1..8);
                    mark(&mut read, a + bs, m);
                    f += &format!(" a_bstride={bs}");
                }
                if rng.gen_bool(0.5) {
                    f += &format!(" preload=1 {}", tile(rng, &mut read));
                }
                text += &format!("{f}{}\n", wait());
            }
            op => {
                // A destination no earlier array instruction reads.
                let n = rng.gen_range(1..=8);
                let Some(dst) = (0..20)
                    .map(|_| rng.gen_range(0..SPAD - n))
                    .find(|&d| !read[d as usize..(d + n) as usize].contains(&true))
                else {
                    continue;
                };
                let src = rng.gen_range(0..SPAD - n);
                text += &if op == 8 {
                    let b = rng.gen_range(0..SPAD - n);
                    format!("vmax a={src} a_stride=1 b={b} b_stride=1 dst={dst} dst_stride=1 n={n}")
                } else {
                    let table = rng.gen_range(0..SPAD - isa::timing::lut_rows(cfg.array.cols));
                    format!("vlut src={src} dst={dst} n={n} table={table}")
                };
                text += &format!("{}\n", wait());
            }
        }
    }
    text += DRAINED;
    // 32 accumulator rows a store, each after the previous one's bytes left
    // (the RTL's store staging is finite).
    for (i, lo) in (0..ACC).step_by(32).enumerate() {
        let wait = if i == 0 { " @wait(compute)" } else { "" };
        text += &format!(
            "store buf=acc dram={} stride={s} rows=32 cols={cols} addr={lo}{wait}\nsync queue=store\n",
            0x40000 + lo * 4 * cols,
            s = 4 * cols
        );
    }
    text += &format!("store dram=0x60000 stride={cols} rows={SPAD} cols={cols} addr=0\nfinish\n");
    text
}

/// Random programs of transposed and plain tiles on square, tall and 2:4
/// arrays: loads back to back (each weight tile's columns or rows on the
/// diagonal of the previous one's), preloads under streaming matmuls, swaps,
/// and the post-processor interlock.
#[test]
fn random_transposed_tiles_match_the_model() {
    let mut rng = StdRng::seed_from_u64(0x7a25);
    let mut transposed = 0;
    for cfg in [config("tiny"), config("default"), tall(), sparse("tiny", 8, 4), sparse("default", 16, 16)] {
        let mut cycles = 0;
        for case in 0..12 {
            let text = random_program(&cfg, &mut rng);
            transposed += text.matches("trans=1").count();
            let r = check_both(&cfg, &format!("random program {case}"), &text, case);
            assert_eq!(r.outcome, Outcome::Done, "program {case} on `{}`:\n{text}", cfg.name);
            cycles += r.cycles();
        }
        println!("12 random programs on `{}`: {cycles} cycles, equal on both backends", cfg.name);
    }
    assert!(transposed > 100, "{transposed} transposed tiles");
}

/// A transposed tile's timing and interlocks by hand: `ldw trans` is busy
/// `n` cycles (not `k`), so a matmul behind it issues at `t + n`; a preload
/// of `n > m` columns holds its matmul `n` cycles; a long vmax writing the
/// row after a transposed tile's only row (a plain tile of that `k` would
/// read it) does not hold the load, one writing its last row `addr + n - 1`
/// (past `addr + k`) does.
#[test]
fn transposed_timing_and_interlocks_match_the_model() {
    for cfg in [config("tiny"), config("default"), tall()] {
        let (rows, cols) = (cfg.array.rows as u64, cfg.array.cols as u64);
        let text = format!(
            "load dram=0 stride={cols} rows={SPAD} cols={cols} addr=0 @signal(compute)\n\
             ldw addr=0 k=2 n={cols} trans=1 @wait(load)\n\
             matmul a=100 m=3 acc=0 swap=1 preload=1 w=20 k={rows} n={cols}\n\
             matmul a=100 m=1 acc=3 swap=1 preload=1 w=40 k=2 n={cols} trans=1\n\
             matmul a=104 m=5 acc=4 swap=1\n\
             vmax a=0 a_stride=1 b=1 b_stride=1 dst=81 dst_stride=1 n=20\n\
             ldw addr=80 k=2 n=1 trans=1\n\
             vmax a=0 a_stride=1 b=1 b_stride=1 dst={last} dst_stride=1 n=20\n\
             ldw addr=60 k=2 n={cols} trans=1\n\
             matmul a=110 m=2 acc=4 swap=1 accumulate=1 in_type=u8\n\
             vmask dst=0 rows=1 len=1 diag=100 imm=0 @signal(store)\n\
             store buf=acc dram=0x40000 stride={s} rows=9 cols={cols} addr=0 @wait(compute)\n\
             store dram=0x60000 stride={cols} rows={SPAD} cols={cols} addr=0\n\
             finish\n",
            last = 60 + cols - 1,
            s = 4 * cols,
        );
        let r = check_both(&cfg, "transposed timing", &text, 1);
        assert_eq!(r.outcome, Outcome::Done);
        let t = &r.trace;
        let name = &cfg.name;
        assert_eq!(t[1].finish - t[1].start, cols, "ldw trans busy n on `{name}`");
        assert_eq!(t[2].start, t[1].finish, "matmul behind ldw trans on `{name}`");
        assert_eq!(t[4].start - t[3].start, cols, "a transposed preload of n > m on `{name}`");
        assert!(t[6].start < t[5].finish, "a transposed tile reads n rows, not k, on `{name}`");
        assert!(t[8].start >= t[7].finish, "the tile's last row is written by the vmax on `{name}`");
        println!("transposed timing on `{name}`: {} cycles, equal on both backends", r.cycles());
    }
}

/// Faults of transposed tiles, each at dispatch and behind a running
/// matmul: the same code, instruction and cycle on both.
#[test]
fn transposed_faults_match_the_model() {
    use ErrorCode::{BufferOutOfRange, IllegalInstruction};
    let lead = |cols: u64| {
        format!(
            "load dram=0 stride={cols} rows=8 cols={cols} @signal(compute)\n\
             ldw addr=0 k=1 n={cols} @wait(load)\n\
             matmul a=0 m=8 acc=0 swap=1\n"
        )
    };
    for cfg in [config("tiny"), config("default"), tall(), sparse("tiny", 8, 4)] {
        let (rows, cols, spad) = (cfg.array.rows as u64, cfg.array.cols as u64, cfg.spad_rows() as u64);
        let mut cases: Vec<(String, String, Option<ErrorCode>)> = vec![
            // Reads n rows, not k: legal at the scratchpad's end...
            ("n rows at the end".into(), format!("ldw addr={} k={} n=2 trans=1", spad - 2, rows.min(cols)), None),
            // ...and one past it is out of range.
            ("n rows past the end".into(), format!("ldw addr={} k=1 n=2 trans=1", spad - 1), Some(BufferOutOfRange)),
            (
                "preload n rows past the end".into(),
                format!("matmul a=0 m=1 acc=0 preload=1 w={} k=1 n={cols} trans=1", spad - cols + 1),
                Some(BufferOutOfRange),
            ),
            ("trans without preload".into(), "matmul a=0 m=1 acc=0 trans=1".into(), Some(IllegalInstruction)),
            // The tile's shape comes first: k past the array rows is out of range.
            ("k past the rows".into(), format!("ldw addr=0 k={} n=1 trans=1", rows + 1), Some(BufferOutOfRange)),
            ("int4 transposed".into(), "ldw addr=0 k=2 n=2 wfmt=i4 trans=1".into(), Some(IllegalInstruction)),
        ];
        if rows > cols {
            // k fits the array but not a scratchpad row.
            cases.push((
                "k past a row".into(),
                format!("ldw addr=0 k={} n=1 trans=1", cols + 1),
                Some(IllegalInstruction),
            ));
            cases.push((
                "preload k past a row".into(),
                format!("matmul a=0 m=1 acc=0 preload=1 w=0 k={} n=1 trans=1", cols + 1),
                Some(IllegalInstruction),
            ));
        }
        if cfg.array.sparsity_2_4 {
            cases.push((
                "2:4 transposed".into(),
                "ldw addr=0 k=2 n=2 wfmt=i8s24 trans=1".into(),
                Some(IllegalInstruction),
            ));
        }
        for (what, instr, want) in &cases {
            for (behind, text) in
                [("", format!("{instr}\nfinish\n")), (", behind a matmul", format!("{}{instr}\nfinish\n", lead(cols)))]
            {
                let r = check_both(&cfg, &format!("{what}{behind}"), &text, 3);
                match want {
                    Some(code) => {
                        assert!(
                            matches!(r.outcome, Outcome::Fault { code: c, .. } if c == *code),
                            "{what}: {:?}",
                            r.outcome
                        )
                    }
                    None => assert_eq!(r.outcome, Outcome::Done, "{what}{behind} on `{}`", cfg.name),
                }
            }
        }
        println!("{} transposed-tile cases on `{}`: every outcome and cycle equal", cases.len(), cfg.name);
    }
}

/// The bundled transformers (`compiler/tests/data/transformers`), compiled
/// as `systole compile` does (`--weights auto`: tinybert_nm24's exactly
/// 2:4 Linear layers on i8s24 tiles where the array has 2:4 PEs), run on
/// both backends with the first reference sequence: outcome, cycles, every
/// counter, each instruction's start and finish and the whole memory
/// window equal. Returns the model's report and the RTL's cycles per second.
fn check_transformer(cfg: &HwConfig, model: &str, variant: &str) -> (RunReport, f64) {
    let dir = root().join("compiler/tests/data/transformers").join(model);
    let g = compiler::onnx::import(&std::fs::read(dir.join(format!("{variant}.onnx"))).unwrap()).unwrap();
    let prog =
        compiler::lower::lower(&g, cfg).unwrap_or_else(|e| panic!("{model} {variant} on `{}`: {e}", cfg.name)).program;
    // The fused attention schedule (Kᵀ on transposed tiles) needs a square
    // array; on another the compiler lowers attention node by node.
    let transposed = prog
        .code
        .iter()
        .any(|i| matches!(i, isa::Instr::Ldw(l) if l.trans != 0) || matches!(i, isa::Instr::Matmul(m) if m.trans != 0));
    assert_eq!(transposed, cfg.array.rows == cfg.array.cols, "{model} {variant} on `{}`: transposed tiles", cfg.name);
    // Each input's first sequence (the .npy holds 16 of them, row-major).
    let inputs: Vec<(isa::program::TensorInfo, Vec<u8>)> = prog
        .inputs()
        .map(|t| {
            let npy =
                compiler::npy::decode(&std::fs::read(dir.join("inputs").join(format!("{}.npy", t.name))).unwrap())
                    .unwrap();
            (t.clone(), npy.data[..t.byte_len() as usize].to_vec())
        })
        .collect();
    let window = prog.mem_bytes as usize;
    let run = |d: &mut Driver<&mut dyn Device>| {
        d.write_mem(0, &vec![0; window]).unwrap();
        d.load(&prog).unwrap();
        for (t, bytes) in &inputs {
            d.write_tensor(t, bytes).unwrap();
        }
        let r = d.run().unwrap();
        (r, d.read_mem(0, window).unwrap())
    };
    let what = format!("{model} {variant} on `{}`", cfg.name);
    let (a, mem_a) = run(&mut Driver::new(&mut sim::Model::new(cfg).unwrap() as &mut dyn Device));
    with_rtl(cfg, |_| ()); // built (or loaded) before the clock starts
    let t0 = std::time::Instant::now();
    let (b, mem_b) = with_rtl(cfg, |dev| run(&mut Driver::new(dev as &mut dyn Device)));
    let rate = b.cycles() as f64 / t0.elapsed().as_secs_f64();
    if let Err(d) = compare_runs(&a, &b) {
        panic!("{what}: model vs RTL: {d}");
    }
    assert_eq!(a.outcome, Outcome::Done, "{what}");
    if let Err(d) = compare_memory(0, &mem_a, &mem_b) {
        panic!("{what}: model vs RTL: {d}");
    }
    (a, rate)
}

/// The five bundled variants.
const TRANSFORMERS: [(&str, &str); 5] = [
    ("tinybert", "int8_qdq"),
    ("tinybert", "int8_qdq_float_matmul_out"),
    ("tinygpt", "int8_qdq"),
    ("tinygpt", "int8_qdq_float_matmul_out"),
    ("tinybert_nm24", "int8_qdq_float_matmul_out"),
];

/// Runs `models` on `cfg` in lockstep and prints each one's cycles and
/// the RTL's speed.
fn check_transformers(cfg: &HwConfig, models: &[(&str, &str)]) {
    for &(model, variant) in models {
        let t0 = std::time::Instant::now();
        let (r, rate) = check_transformer(cfg, model, variant);
        println!(
            "{model} {variant} on `{}`: {} cycles, equal on both backends (RTL {rate:.3e} cycles/s; {:.1} s)",
            cfg.name,
            r.cycles(),
            t0.elapsed().as_secs_f64()
        );
    }
}

/// tinybert, tinygpt (both QDQ variants each) and tinybert_nm24 on the
/// 16 x 16 default: embeddings and masks gathered, Q·Kᵀ on transposed
/// tiles, softmax, LayerNorm and GELU on the vector unit.
#[test]
fn bundled_transformers_match_the_model_16x16() {
    check_transformers(&config("default"), &TRANSFORMERS);
}

/// The same on a non-square array (8 reduction rows, 16 columns: twice the
/// passes over every reduction; attention node by node, without the fused
/// schedule's transposed tiles, which needs a square array).
#[test]
fn bundled_transformers_match_the_model_8x16() {
    check_transformers(&short(), &TRANSFORMERS);
}

/// tinybert_nm24 with `--weights auto` on the 16 x 16 with 2:4-sparse PEs
/// (`examples/hw/sparse24.toml`): its exactly 2:4 Linear layers on i8s24
/// tiles beside the transposed Kᵀ tiles.
#[test]
fn sparse_tinybert_matches_the_model() {
    let cfg = config("sparse24");
    let dir = root().join("compiler/tests/data/transformers/tinybert_nm24");
    let g = compiler::onnx::import(&std::fs::read(dir.join("int8_qdq_float_matmul_out.onnx")).unwrap()).unwrap();
    let prog = compiler::lower::lower(&g, &cfg).unwrap().program;
    assert!(
        prog.code.iter().any(|i| matches!(i, isa::Instr::Ldw(l) if l.wfmt == isa::instr::WFMT_I8_S24)
            || matches!(i, isa::Instr::Matmul(m) if m.preload != 0 && m.wfmt == isa::instr::WFMT_I8_S24)),
        "tinybert_nm24: no 2:4 tile"
    );
    check_transformers(&cfg, &[("tinybert_nm24", "int8_qdq_float_matmul_out")]);
}
