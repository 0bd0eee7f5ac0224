//! The vector unit of the verilated accelerator (`verilog/vec_unit.sv`)
//! against the Rust model: programs of vdeq, vquant, every vop, vred and
//! vmask (the shapes of `sim/tests/vector.rs`, the LayerNorm and Softmax
//! sequences, a vdeq behind a matmul's drain, a matmul beside a running
//! vector instruction) and the faults of illegal vector instructions, on
//! the 4x4 and the 16x16: outcome, fault code and instruction, total
//! cycles, every counter, each instruction's start and finish and the whole
//! memory window must be equal.
//!
//! `cargo test -p rtl --features verilator --release --test vector_accel`

use driver::compare::{compare_memory, compare_runs};
use driver::{Driver, Outcome, RunReport};
use isa::regs::{self, ErrorCode};
use isa::{Device, HwConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rtl::RtlDevice;
use std::path::Path;
use std::sync::Mutex;

fn config(name: &str) -> HwConfig {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/hw")).join(format!("{name}.toml"));
    HwConfig::from_toml(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// One RTL device per configuration for the whole test binary.
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

/// DRAM addresses: X (3 x 10 float32), B (3 x 10), per-column vectors G
/// and H, results from OUT; the code at CODE; a window of WINDOW bytes.
const X: u64 = 0x1000;
const B: u64 = 0x1100;
const G: u64 = 0x1200;
const H: u64 = 0x1240;
const CODE: u64 = 0x8000;
const ZEROS: u64 = 0x7000;
const WINDOW: u64 = 1 << 16;

/// Loads X to accumulator rows 0.. (column-blocked by 3 rows: block j at
/// 3j), B to 16.., G to 40.., H to 44.., runs `body` after a sync that
/// waits for the loads, then `store`. The STORE queue waits for a token from
/// a vmask that changes nothing: a vector instruction issues after every
/// earlier vector or post-processing instruction and the array's drain, and
/// pushes at the end of its busy, so the stores read every result. (A
/// `sync`'s push at its issue would race the running vector instruction,
/// whose results the RTL writes during its busy cycles: ISA.md §3
/// "Hazards" leaves that to the program.)
fn program(body: &str, store: &str) -> String {
    format!(
        "load buf=acc dram={X:#x} stride=40 rows=3 cols=10 addr=0\n\
         load buf=acc dram={B:#x} stride=40 rows=3 cols=10 addr=16\n\
         load buf=acc dram={G:#x} stride=40 rows=1 cols=10 addr=40\n\
         load buf=acc dram={H:#x} stride=40 rows=1 cols=10 addr=44 @signal(compute)\n\
         sync queue=compute @wait(load)\n\
         {body}\n\
         vmask dst=27 rows=1 len=1 diag=100 imm=0 @signal(store)\n\
         {store}\n\
         finish"
    )
}

/// `text` after two loads that zero every accumulator row and the first
/// 300 scratchpad rows (from DRAM that holds zeros, stride 0): the RTL
/// device is reused across programs and its buffers keep their contents,
/// the model is new each time.
fn zeroed(cfg: &HwConfig, text: &str) -> String {
    let (c, acc) = (cfg.array.cols, cfg.acc_rows());
    format!(
        "load buf=acc dram={ZEROS:#x} stride=0 rows={acc} cols={c} addr=0\n\
         load dram={ZEROS:#x} stride=0 rows=300 cols={c} addr=0\n{text}"
    )
}

/// The instructions `zeroed` puts first.
const ZEROING: u32 = 2;

fn run_on<D: Device>(dev: &mut D, code: &[u8], data: &[(u64, Vec<u8>)]) -> (RunReport, Vec<u8>) {
    dev.write_mem(0, &vec![0; WINDOW as usize]).unwrap();
    for (addr, d) in data {
        dev.write_mem(*addr, d).unwrap();
    }
    dev.write_mem(CODE, code).unwrap();
    dev.write_reg(regs::PROG_ADDR, CODE as u32).unwrap();
    dev.write_reg(regs::PROG_LEN, (code.len() / 32) as u32).unwrap();
    dev.write_reg(regs::WIN_BASE, 0).unwrap();
    dev.write_reg(regs::WIN_LIMIT, WINDOW as u32).unwrap();
    let report = Driver::new(&mut *dev).run().unwrap();
    let mem = dev.read_mem(0, WINDOW as usize).unwrap();
    (report, mem)
}

/// Runs the program on the model and the RTL; panics naming the first
/// difference; returns the model's report.
fn check(cfg: &HwConfig, what: &str, text: &str, data: &[(u64, Vec<u8>)]) -> RunReport {
    let text = &zeroed(cfg, text);
    let code: Vec<u8> = isa::asm::parse_program(text)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .iter()
        .flat_map(|i| i.encode())
        .collect();
    let mut model = sim::Model::new(cfg).unwrap();
    let (a, mem_a) = run_on(&mut model, &code, data);
    let (b, mem_b) = with_rtl(cfg, |dev| run_on(dev, &code, data));
    if let Err(d) = compare_runs(&a, &b).and_then(|_| compare_memory(0, &mem_a, &mem_b)) {
        let words = |m: &[u8]| -> Vec<String> {
            m[0x2000..0x2078].chunks(4).map(|c| format!("{:08x}", u32::from_le_bytes(c.try_into().unwrap()))).collect()
        };
        panic!(
            "{what} on `{}`: model vs RTL: {d}\n{text}\nmodel {:?}\nrtl   {:?}",
            cfg.name,
            words(&mem_a),
            words(&mem_b)
        );
    }
    a
}

fn f32_bytes(xs: &[f32]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect()
}

/// Random float32: mostly moderate values, sometimes huge, tiny,
/// subnormal, zero of either sign, infinite or NaN.
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

fn random_data(rng: &mut StdRng) -> Vec<(u64, Vec<u8>)> {
    let mut rows = |n: usize| f32_bytes(&(0..n).map(|_| value(rng)).collect::<Vec<_>>());
    vec![(X, rows(30)), (B, rows(30)), (G, rows(10)), (H, rows(10))]
}

const STORE_RESULT: &str = "store buf=acc dram=0x2000 stride=40 rows=3 cols=10 addr=28 @wait(compute)";
const OUT: &str = "dst=28 dst_step=1 dst_bstride=3";
const XA: &str = "a=0 a_step=1 a_bstride=3";

/// Every vop with every kind of operand b, vred, vdeq / vquant / vmask on
/// random rows with special values.
#[test]
fn vector_instructions_match_the_model() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut cases = 0;
    for hw in ["tiny", "default"] {
        let cfg = config(hw);
        let mut bodies = vec![];
        for op in isa::instr::VOP_NAMES.iter().take(isa::instr::VOP_BINARY as usize) {
            bodies.push(format!("vop op={op} {OUT} {XA} b=16 b_step=1 b_bstride=3 rows=3 len=10"));
            bodies.push(format!("vop op={op} {OUT} {XA} b=40 b_step=0 b_bstride=1 rows=3 len=10"));
            bodies.push(format!("vop op={op} {OUT} {XA} b=16 b_step=1 b_bstride=0 rows=3 len=10"));
            bodies.push(format!("vop op={op} {OUT} {XA} b_imm=1 imm={:#x} rows=3 len=10", value(&mut rng).to_bits()));
        }
        for op in isa::instr::VOP_NAMES.iter().skip(isa::instr::VOP_BINARY as usize) {
            bodies.push(format!("vop op={op} {OUT} {XA} rows=3 len=10"));
            // In place.
            bodies.push(format!(
                "vop op={op} dst=0 dst_step=1 dst_bstride=3 {XA} rows=3 len=10\n\
                                 vop op=add {OUT} {XA} b_imm=1 imm=0x80000000 rows=3 len=10"
            ));
        }
        for op in ["sum", "max"] {
            bodies.push(format!("vred op={op} {XA} dst=28 dst_step=3 rows=3 len=10"));
            bodies.push(format!("vred op={op} a=16 a_step=3 a_bstride=1 dst=28 dst_step=1 rows=2 len=7"));
        }
        bodies.push(format!("vdeq src_buf=acc src=0 src_step=1 src_bstride=3 {OUT} rows=3 len=10 zp=-7 scale=40"));
        bodies.push(format!(
            "vquant out_type=u8 src=0 src_step=1 src_bstride=3 dst=100 dst_step=1 dst_bstride=3 rows=3 len=10 \
             zp=128 qmin=0 qmax=255 scale=0x3e000000\n\
             vdeq src_buf=spad in_type=u8 src=100 src_step=1 src_bstride=3 {OUT} rows=3 len=10 zp=128 \
             scale_imm=1 imm=0x3e000000"
        ));
        bodies.push(format!(
            "vquant src=16 src_step=1 src_bstride=3 dst=100 dst_step=1 dst_bstride=3 rows=3 len=10 \
             zp=-3 qmin=-100 qmax=90 scale=0x3f400000\n\
             vdeq src_buf=spad src=100 src_step=1 src_bstride=3 {OUT} rows=3 len=10 zp=5 scale=44"
        ));
        for diag in [-3, 0, 2, 9] {
            bodies.push(format!(
                "vop op=add {OUT} {XA} b_imm=1 imm=0x80000000 rows=3 len=10\n\
                 vmask {OUT} rows=3 len=10 diag={diag} imm={:#x}",
                f32::MIN.to_bits()
            ));
        }
        let store = format!("{STORE_RESULT}\nstore dram=0x3000 stride=10 rows=9 cols=10 addr=100");
        for body in &bodies {
            let data = random_data(&mut rng);
            let r = check(&cfg, body, &program(body, &store), &data);
            assert_eq!(r.outcome, Outcome::Done, "{body}");
            cases += 1;
        }
    }
    println!("{cases} vector programs equal on both backends");
}

/// LayerNorm and (causal) Softmax of three rows of ten, as the compiler
/// emits them (`sim/tests/vector.rs`).
#[test]
fn layer_norm_and_softmax_match_the_model() {
    let mut rng = StdRng::seed_from_u64(4);
    let s = "dst=50 dst_step=1 dst_bstride=0 a=50 a_step=1 a_bstride=0";
    let t = "dst=53 dst_step=1 dst_bstride=0 a=53 a_step=1 a_bstride=0";
    let xp = "dst=0 dst_step=1 dst_bstride=3 a=0 a_step=1 a_bstride=3";
    for hw in ["tiny", "default"] {
        let cfg = config(hw);
        let cols = cfg.array.cols;
        let inv = isa::numerics::vector::recip(10.0).to_bits();
        let eps = 1e-5f32.to_bits();
        let layer_norm = format!(
            "vred op=sum a=0 a_step=1 a_bstride=3 dst=50 dst_step=1 rows=3 len=10\n\
             vop op=mul {s} b_imm=1 imm={inv:#x} rows=3 len={cols}\n\
             vop op=sub {xp} b=50 b_step=1 b_bstride=0 rows=3 len=10\n\
             vop op=mul dst=24 dst_step=1 dst_bstride=3 a=0 a_step=1 a_bstride=3 b=0 b_step=1 b_bstride=3 rows=3 len=10\n\
             vred op=sum a=24 a_step=1 a_bstride=3 dst=53 dst_step=1 rows=3 len=10\n\
             vop op=mul {t} b_imm=1 imm={inv:#x} rows=3 len={cols}\n\
             vop op=add {t} b_imm=1 imm={eps:#x} rows=3 len={cols}\n\
             vop op=rsqrt {t} rows=3 len={cols}\n\
             vop op=mul {xp} b=53 b_step=1 b_bstride=0 rows=3 len=10\n\
             vop op=mul {xp} b=40 b_step=0 b_bstride=1 rows=3 len=10\n\
             vop op=add {xp} b=44 b_step=0 b_bstride=1 rows=3 len=10"
        );
        let softmax = |mask: &str| {
            format!(
                "{mask}vred op=max a=0 a_step=1 a_bstride=3 dst=50 dst_step=1 rows=3 len=10\n\
                 vop op=sub {xp} b=50 b_step=1 b_bstride=0 rows=3 len=10\n\
                 vop op=exp {xp} rows=3 len=10\n\
                 vred op=sum a=0 a_step=1 a_bstride=3 dst=53 dst_step=1 rows=3 len=10\n\
                 vop op=recip {t} rows=3 len={cols}\n\
                 vop op=mul {xp} b=53 b_step=1 b_bstride=0 rows=3 len=10"
            )
        };
        let causal =
            format!("vmask dst=0 dst_step=1 dst_bstride=3 rows=3 len=10 diag=2 imm={:#x}\n", f32::MIN.to_bits());
        let store = "store buf=acc dram=0x2000 stride=40 rows=3 cols=10 addr=0 @wait(compute)";
        for (what, body) in [("LayerNorm", layer_norm), ("Softmax", softmax("")), ("causal Softmax", softmax(&causal))]
        {
            for _ in 0..2 {
                let x: Vec<f32> = (0..30).map(|_| rng.gen_range(-4.0f32..4.0)).collect();
                let g: Vec<f32> = (0..10).map(|_| rng.gen_range(0.5f32..1.5)).collect();
                let h: Vec<f32> = (0..10).map(|_| rng.gen_range(-0.5f32..0.5)).collect();
                let data = [(X, f32_bytes(&x)), (G, f32_bytes(&g)), (H, f32_bytes(&h))];
                let r = check(&cfg, what, &program(&body, store), &data);
                assert_eq!(r.outcome, Outcome::Done, "{what}");
            }
        }
    }
}

/// The interlocks (ISA.md §3 "Hazards"): a vdeq waits for the array to drain (no token orders it
/// after the matmul), and a matmul beside a running vector instruction
/// waits only if it writes accumulator rows the vector instruction touches
/// or reads scratchpad rows a vquant writes.
#[test]
fn vector_interlocks_match_the_model() {
    for hw in ["tiny", "default"] {
        let cfg = config(hw);
        let c = cfg.array.cols;
        let k = cfg.array.rows.min(c);
        for (what, body) in [
            (
                "vdeq behind a matmul",
                format!(
                    "ldw addr=200 k={k} n={c}\nmatmul a=210 m=6 acc=60 swap=1\n\
                  vdeq src_buf=acc src=60 src_step=1 {OUT} rows=3 len={c} scale_imm=1 imm=0x3c000000"
                ),
            ),
            (
                "matmul beside vop, disjoint",
                format!(
                    "ldw addr=200 k={k} n={c}\n\
                  vop op=exp {OUT} {XA} rows=3 len=10\nmatmul a=210 m=6 acc=60 swap=1"
                ),
            ),
            (
                "matmul beside vop, overlapping",
                format!(
                    "ldw addr=200 k={k} n={c}\n\
                  vop op=exp {OUT} {XA} rows=3 len=10\nmatmul a=210 m=6 acc=29 swap=1"
                ),
            ),
            (
                "matmul reading vquant's rows",
                format!(
                    "ldw addr=200 k={k} n={c}\n\
                  vquant src=0 src_step=1 src_bstride=3 dst=220 dst_step=1 dst_bstride=3 rows=3 len=10 \
                  qmin=-128 qmax=127 scale=0x3f000000\nmatmul a=220 m=6 acc=60 swap=1\n\
                  vdeq src_buf=acc src=60 src_step=1 {OUT} rows=3 len={c} scale_imm=1 imm=0x3c000000"
                ),
            ),
            (
                "requant behind vred",
                "vred op=max a=0 a_step=1 a_bstride=3 dst=28 dst_step=3 rows=3 len=10\n\
                  requant acc=16 rows=3 dst=220 params=40 zp=0 qmin=-128 qmax=127"
                    .to_string(),
            ),
        ] {
            let mut rng = StdRng::seed_from_u64(9);
            let mut data = random_data(&mut rng);
            // int8 weights and inputs in DRAM, loaded to scratchpad rows 200..
            let w: Vec<u8> = (0..32 * c as usize).map(|i| (i * 37 % 251) as u8).collect();
            data.push((0x4000, w));
            let load = format!(
                "load dram=0x4000 stride={c} rows=32 cols={c} addr=200 @signal(compute)\n\
                                sync queue=compute @wait(load)\n"
            );
            let store = format!("{STORE_RESULT}\nstore buf=acc dram=0x5000 stride={} rows=6 cols={c} addr=60", 4 * c);
            let r = check(&cfg, what, &program(&format!("{load}{body}"), &store), &data);
            assert_eq!(r.outcome, Outcome::Done, "{what}");
        }
    }
}

/// Illegal vector instructions fault at dispatch with the model's code,
/// instruction and cycle (and counters), after the instructions before
/// them ran.
#[test]
fn vector_faults_match_the_model() {
    let mut rng = StdRng::seed_from_u64(5);
    for hw in ["tiny", "default"] {
        let cfg = config(hw);
        let acc = cfg.acc_rows();
        let spad = cfg.spad_rows();
        let faults: Vec<(String, ErrorCode)> = vec![
            (format!("vop op=add dst=0 a=0 b={acc} rows=1 len=4"), ErrorCode::BufferOutOfRange),
            (format!("vop op=mul dst=0 a=0 b=1 b_step={acc} rows=2 len=4"), ErrorCode::BufferOutOfRange),
            (format!("vred a=0 a_step=1 a_bstride={acc} dst=0 rows=1 len=40"), ErrorCode::BufferOutOfRange),
            (format!("vred a=0 dst={} dst_step=1 rows=2 len=4", acc - 1), ErrorCode::BufferOutOfRange),
            (
                format!("vquant src=0 dst={} rows=1 len=4 qmin=-128 qmax=127 scale=0x3f800000", spad),
                ErrorCode::BufferOutOfRange,
            ),
            ("vquant src=0 dst=0 rows=1 len=4 qmin=5 qmax=4 scale=0x3f800000".into(), ErrorCode::IllegalInstruction),
            (
                "vquant out_type=u8 src=0 dst=0 rows=1 len=4 zp=-1 qmin=0 qmax=4 scale=0x3f800000".into(),
                ErrorCode::IllegalInstruction,
            ),
            (format!("vdeq dst=0 rows=1 len=4 scale={}", acc - 1 + 1), ErrorCode::BufferOutOfRange),
            (
                format!("vdeq src_buf=spad src={} dst=0 rows=1 len=4 scale_imm=1 imm=1", spad - 1 + 1),
                ErrorCode::BufferOutOfRange,
            ),
            (format!("vmask dst={} dst_step=1 rows=2 len=4 imm=1", acc - 1), ErrorCode::BufferOutOfRange),
        ];
        // Encodings the assembler refuses: built as words and patched.
        use isa::instr::{self as ins, Instr};
        let mut words = vec![];
        let mut bad_op = Instr::from(ins::Vop { op: ins::VOP_RSQRT, rows: 1, len: 1, ..Default::default() }).encode();
        bad_op[2] = (bad_op[2] & 0xf0) | 11;
        words.push(("vop op=11", bad_op));
        for (what, i) in [
            (
                "unary vop with b",
                Instr::from(ins::Vop { op: ins::VOP_EXP, b: 3, rows: 1, len: 1, ..Default::default() }),
            ),
            (
                "vop b row with imm",
                Instr::from(ins::Vop { op: ins::VOP_ADD, b: 2, imm: 5, rows: 1, len: 1, ..Default::default() }),
            ),
            (
                "vdeq acc with in_type",
                Instr::from(ins::Vdeq { src_buf: ins::BUF_ACC, in_type: 1, rows: 1, len: 1, ..Default::default() }),
            ),
            (
                "vdeq imm scale with scale",
                Instr::from(ins::Vdeq { scale_imm: 1, scale: 3, rows: 1, len: 1, ..Default::default() }),
            ),
            ("vred rows 0", Instr::from(ins::Vred { rows: 0, len: 1, ..Default::default() })),
            ("vmask len 0", Instr::from(ins::Vmask { rows: 1, len: 0, ..Default::default() })),
        ] {
            words.push((what, i.encode()));
        }
        let mut dq = Instr::from(ins::Vdeq { rows: 1, len: 1, ..Default::default() }).encode();
        dq[2] |= 3; // src_buf = 3
        words.push(("vdeq src_buf 3", dq));
        // A vop running when the fault comes, so the fault lands mid-busy.
        let before = format!("vop op=exp {OUT} {XA} rows=3 len=10");
        for (body, code) in &faults {
            let text = program(&format!("{before}\n{body}"), STORE_RESULT);
            let data = random_data(&mut rng);
            let r = check(&cfg, body, &text, &data);
            assert_eq!(r.outcome, Outcome::Fault { code: *code, pc: ZEROING + 6 }, "{body}");
        }
        for (what, word) in words {
            let mut code: Vec<u8> = isa::asm::parse_program(&zeroed(&cfg, &program(&before, STORE_RESULT)))
                .unwrap()
                .iter()
                .flat_map(|i| i.encode())
                .collect();
            // The faulting word right after the vop.
            let at = (ZEROING as usize + 6) * 32;
            code.splice(at..at, word);
            let data = random_data(&mut rng);
            let mut model = sim::Model::new(&cfg).unwrap();
            let (a, mem_a) = run_on(&mut model, &code, &data);
            let (b, mem_b) = with_rtl(&cfg, |dev| run_on(dev, &code, &data));
            if let Err(d) = compare_runs(&a, &b).and_then(|_| compare_memory(0, &mem_a, &mem_b)) {
                panic!("{what} on `{hw}`: model vs RTL: {d}");
            }
            assert_eq!(a.outcome, Outcome::Fault { code: ErrorCode::IllegalInstruction, pc: ZEROING + 6 }, "{what}");
        }
    }
}
