//! One test per device fault (isa::ErrorCode), through the driver, on the
//! 4x4 configuration and the 16x16 default. Every faulting run must:
//! - end in `Outcome::Fault { code, pc }` with the expected code and the
//!   index of the faulting instruction (the STATUS, ERROR_CODE and ERROR_PC
//!   registers agree);
//! - report a `Cycles` counter > 0;
//! - leave every byte of device memory outside the granted window
//!   `[0, mem_bytes)` unchanged (the whole rest of the device memory is
//!   filled with a known pattern before the run and compared after);
//! - leave the device usable: a correct GEMM program loaded afterwards runs
//!   to completion with the reference result.

use compiler::gemm::{lower_gemm, reference_gemm, GemmOutput, GemmSpec, INPUT, OUTPUT};
use driver::{Driver, Outcome, RunReport};
use isa::instr::{self as ins, Instr};
use isa::program::Program;
use isa::regs;
use isa::timing::{TOKEN_MAX, WATCHDOG_CYCLES};
use isa::{Counter, Deps, Device, ErrorCode, HwConfig, INSTR_BYTES};
use sim::Model;

/// The window every test program is granted: `[0, WINDOW)`.
const WINDOW: u64 = 0x1_0000;
/// Input data the programs read, inside the window.
const DATA: u64 = 0x4000;
/// Where valid stores write, inside the window.
const OUT: u64 = 0x6000;

fn configs() -> [HwConfig; 2] {
    [HwConfig::tiny_4x4(), HwConfig::default_16x16()]
}

/// Array shape and buffer sizes of a config, as instruction field values.
#[derive(Clone, Copy, Debug)]
struct Geo {
    rows: u16,
    dim: u16,
    spad_rows: u32,
    acc_rows: u32,
}

fn geo(cfg: &HwConfig) -> Geo {
    Geo {
        rows: cfg.array.rows as u16,
        dim: cfg.array.cols as u16,
        spad_rows: cfg.spad_rows(),
        acc_rows: cfg.acc_rows(),
    }
}

fn program(cfg: &HwConfig, code: Vec<Instr>) -> Program {
    Program {
        fingerprint: cfg.fingerprint(),
        config_name: cfg.name.clone(),
        code_addr: 0,
        code,
        data_addr: 0x3000,
        data: vec![],
        mem_bytes: WINDOW,
        tensors: vec![],
        meta: Default::default(),
    }
}

fn driver(cfg: &HwConfig) -> Driver<Model> {
    Driver::new(Model::new(cfg).unwrap())
}

// ---- instruction builders ----------------------------------------------

const NO: Deps = Deps::NONE;

fn sync(queue: u8, deps: Deps) -> Instr {
    Instr::from(ins::Sync { deps, queue })
}

fn finish() -> Instr {
    Instr::Finish(ins::Finish::default())
}

/// LOAD of `rows` DRAM rows of `dim` int8 each (contiguous) into spad row `addr`.
fn load_spad(g: Geo, dram: u64, rows: u16, addr: u16, deps: Deps) -> Instr {
    Instr::from(ins::Load {
        deps,
        dram: dram as u32,
        stride: g.dim as u32,
        rows,
        cols: g.dim,
        addr,
        ..Default::default()
    })
}

/// STORE of `rows` spad rows from `addr` to contiguous DRAM at `dram`.
fn store_spad(g: Geo, dram: u64, stride: u32, rows: u16, addr: u16, deps: Deps) -> Instr {
    Instr::from(ins::Store { deps, dram: dram as u32, stride, rows, cols: g.dim, addr, ..Default::default() })
}

fn matmul(a: u16, m: u16, acc: u16, deps: Deps) -> Instr {
    Instr::from(ins::Matmul { deps, a, m, acc, ..Default::default() })
}

fn deps(f: impl FnOnce(&mut Deps)) -> Deps {
    let mut d = Deps::NONE;
    f(&mut d);
    d
}

// ---- memory guard ----------------------------------------------------------

/// The known contents of device memory outside the window.
fn pattern(i: u64) -> u8 {
    ((i ^ (i >> 9) ^ (i >> 17) ^ (i >> 25)) as u8).wrapping_mul(167).wrapping_add(13)
}

const CHUNK: u64 = 1 << 20;

/// Device memory outside `[lo, hi)` holds `pattern` and must keep it.
struct Guard {
    lo: u64,
    hi: u64,
    size: u64,
}

impl Guard {
    fn regions(&self) -> [(u64, u64); 2] {
        [(0, self.lo), (self.hi, self.size)]
    }

    fn arm(d: &mut Driver<Model>, lo: u64, hi: u64) -> Guard {
        let g = Guard { lo, hi, size: d.device().config().dram_bytes() };
        for (a, b) in g.regions() {
            let mut at = a;
            while at < b {
                let end = (at + CHUNK).min(b);
                let bytes: Vec<u8> = (at..end).map(pattern).collect();
                d.write_mem(at, &bytes).unwrap();
                at = end;
            }
        }
        g
    }

    fn check(&self, d: &mut Driver<Model>, what: &str) {
        let mut changed = 0u64;
        let mut first = None;
        for (a, b) in self.regions() {
            let mut at = a;
            while at < b {
                let end = (at + CHUNK).min(b);
                let bytes = d.read_mem(at, (end - at) as usize).unwrap();
                for (i, &v) in bytes.iter().enumerate() {
                    let addr = at + i as u64;
                    if v != pattern(addr) {
                        changed += 1;
                        first.get_or_insert((addr, v, pattern(addr)));
                    }
                }
                at = end;
            }
        }
        if let Some((addr, got, want)) = first {
            panic!(
                "{what}: {changed} bytes outside [{:#x}, {:#x}) changed; first at {addr:#x}: {got:#04x}, was {want:#04x}",
                self.lo, self.hi
            );
        }
    }
}

/// The guard itself notices a changed byte outside the window.
#[test]
#[should_panic(expected = "bytes outside")]
fn guard_detects_a_change() {
    let cfg = HwConfig::tiny_4x4();
    let mut d = driver(&cfg);
    let guard = Guard::arm(&mut d, 0, WINDOW);
    d.write_mem(cfg.dram_bytes() - 1, &[!pattern(cfg.dram_bytes() - 1)]).unwrap();
    guard.check(&mut d, "self-test");
}

// ---- running -----------------------------------------------------------------

fn reg(d: &mut Driver<Model>, r: u32) -> u32 {
    d.device_mut().read_reg(r).unwrap()
}

/// Runs the loaded program and checks that it faults as expected and that
/// the guarded memory is unchanged.
fn expect_fault(d: &mut Driver<Model>, guard: &Guard, code: ErrorCode, pc: u32, what: &str) -> RunReport {
    let rep = d.run().unwrap();
    let what = format!("{} {what}", d.device().config().name);
    assert_eq!(rep.outcome, Outcome::Fault { code, pc }, "{what}: outcome");
    assert!(rep.cycles() > 0, "{what}: cycles counter is {}", rep.cycles());
    assert_eq!(reg(d, regs::STATUS), regs::STATUS_FAULT, "{what}: STATUS");
    assert_eq!(reg(d, regs::ERROR_CODE), code as u32, "{what}: ERROR_CODE");
    assert_eq!(reg(d, regs::ERROR_PC), pc, "{what}: ERROR_PC");
    guard.check(d, &what);
    rep
}

/// After a fault, the same device runs a correct program.
fn recover(d: &mut Driver<Model>, what: &str) {
    let cfg = d.device().config().clone();
    let (m, k, n) = (6, 9, 5);
    let spec = GemmSpec {
        m,
        k,
        n,
        weights: (0..k * n).map(|i| (i as i32 * 29 - 70) as i8).collect(),
        input_unsigned: false,
        output: GemmOutput::Int8 {
            bias: (0..n as i32).map(|c| 50 * c - 100).collect(),
            scale: vec![0.01; n],
            zero_point: 2,
            qmin: -128,
            qmax: 127,
        },
    };
    let a: Vec<u8> = (0..m * k).map(|i| (i * 41 + 3) as u8).collect();
    let prog = lower_gemm(&spec, &cfg).unwrap();
    d.load(&prog).unwrap();
    d.write_tensor(prog.tensor(INPUT).unwrap(), &a).unwrap();
    let rep = d.run().unwrap();
    assert_eq!(rep.outcome, Outcome::Done, "{} {what}: recovery run", cfg.name);
    assert_eq!(rep.counters.get(Counter::Macs), (m * k * n) as u64);
    let out: Vec<i32> = d.read_tensor(prog.tensor(OUTPUT).unwrap()).unwrap().iter().map(|&b| b as i8 as i32).collect();
    assert_eq!(out, reference_gemm(&spec, &a), "{} {what}: recovery result", cfg.name);
}

/// Loads `prog`, arms the guard around `[0, WINDOW)`, expects the fault,
/// then checks recovery.
fn fault_case(cfg: &HwConfig, prog: &Program, code: ErrorCode, pc: u32, what: &str) -> RunReport {
    let mut d = driver(cfg);
    d.load(prog).unwrap();
    let guard = Guard::arm(&mut d, 0, WINDOW);
    let rep = expect_fault(&mut d, &guard, code, pc, what);
    recover(&mut d, what);
    rep
}

/// Valid work for the start of a program: load `rows` rows of DATA into
/// spad row 0 and hand them to compute, which hands them to store, which
/// writes them to OUT. Instructions 0, 1, 2.
fn prologue(g: Geo) -> Vec<Instr> {
    vec![
        load_spad(g, DATA, g.rows, 0, deps(|d| d.push_next = true)),
        sync(ins::Queue::Compute as u8, deps(|d| (d.pop_prev, d.push_next) = (true, true))),
        store_spad(g, OUT, g.dim as u32, g.rows, 0, deps(|d| d.pop_prev = true)),
    ]
}

// ---- IllegalInstruction ----------------------------------------------------------

/// Raw 32-byte words that do not decode, written over instruction 3 of a
/// program whose first three instructions are valid work.
#[test]
fn illegal_instruction_raw_bytes() {
    let sync_c = sync(ins::Queue::Compute as u8, NO).encode();
    let mut reserved_header = sync_c;
    reserved_header[1] |= 0x10; // bit 12: reserved header nibble
    let mut reserved_tail = sync_c;
    reserved_tail[25] |= 0x04; // bit 202: past SYNC's only field
    let mut finish_tail = finish().encode();
    finish_tail[31] |= 0x80; // bit 255
    let mut unknown = [0u8; INSTR_BYTES];
    unknown[0] = 0xEE;
    let mut unknown_after_last = sync_c;
    unknown_after_last[0] = ins::INSTR_SPECS.iter().map(|s| s.opcode).max().unwrap() + 1;
    let cases: [(&str, [u8; INSTR_BYTES]); 6] = [
        ("unknown opcode 0xee", unknown),
        ("opcode one past the last", unknown_after_last),
        ("all-zero word (opcode 0)", [0u8; INSTR_BYTES]),
        ("reserved header bits", reserved_header),
        ("reserved bits after the fields", reserved_tail),
        ("reserved bits of finish", finish_tail),
    ];
    for cfg in configs() {
        let g = geo(&cfg);
        for (what, raw) in cases {
            assert!(Instr::decode(&raw).is_err(), "{what} must not decode");
            let mut code = prologue(g);
            code.push(sync(ins::Queue::Load as u8, NO)); // placeholder, overwritten
            code.push(finish());
            let prog = program(&cfg, code);
            let mut d = driver(&cfg);
            d.load(&prog).unwrap();
            d.write_mem(prog.code_addr + 3 * INSTR_BYTES as u64, &raw).unwrap();
            let data: Vec<u8> = (0..g.rows as usize * g.dim as usize).map(|i| i as u8 ^ 0x5a).collect();
            d.write_mem(DATA, &data).unwrap();
            let guard = Guard::arm(&mut d, 0, WINDOW);
            expect_fault(&mut d, &guard, ErrorCode::IllegalInstruction, 3, what);
            recover(&mut d, what);
        }
    }
}

/// Encodings that decode but name something this config lacks or an enum
/// value that does not exist.
#[test]
fn illegal_instruction_unimplemented_features() {
    for cfg in configs() {
        let g = geo(&cfg);
        let cases: Vec<(&str, Instr)> = vec![
            (
                "ldw wfmt=i4",
                Instr::from(ins::Ldw { addr: 0, k: g.rows, n: g.dim, wfmt: ins::WFMT_I4, ..Default::default() }),
            ),
            (
                "ldw wfmt=i8s24",
                Instr::from(ins::Ldw { addr: 0, k: 1, n: 1, wfmt: ins::WFMT_I8_S24, ..Default::default() }),
            ),
            (
                "matmul preload wfmt=i4s24",
                Instr::from(ins::Matmul {
                    m: 1,
                    preload: 1,
                    w: 0,
                    k: 1,
                    n: 1,
                    wfmt: ins::WFMT_I4_S24,
                    ..Default::default()
                }),
            ),
            ("sync queue=3", sync(3, NO)),
            (
                "requant zp outside i8",
                Instr::from(ins::Requant { rows: 1, zp: 200, qmin: -128, qmax: 127, ..Default::default() }),
            ),
            (
                "requant qmin > qmax",
                Instr::from(ins::Requant { rows: 1, zp: 0, qmin: 5, qmax: 4, ..Default::default() }),
            ),
        ];
        for (what, bad) in cases {
            let mut code = prologue(g);
            code.push(bad);
            code.push(finish());
            fault_case(&cfg, &program(&cfg, code), ErrorCode::IllegalInstruction, 3, what);
        }
    }
}

// ---- DmaOutOfWindow ------------------------------------------------------------

/// A STORE whose DRAM range ends past the window limit, after valid work
/// that wrote inside the window. Dispatch is held back behind a full COMPUTE
/// queue of long MATMULs so the valid STORE has certainly finished first.
#[test]
fn dma_store_past_window_limit() {
    for cfg in configs() {
        let g = geo(&cfg);
        let d32 = g.dim as u64;
        let bad_stores: [(&str, u64, u32, u16); 4] = [
            ("block straddles the limit", WINDOW - d32, g.dim as u32, 2),
            ("block starts at the limit", WINDOW, g.dim as u32, 1),
            ("last strided row past the limit", 0x8000, 0x4000, 3),
            ("one byte past the limit", WINDOW - d32 + 1, g.dim as u32, 1),
        ];
        for (what, dram, stride, rows) in bad_stores {
            let mut code = prologue(g);
            // 16 MATMULs of 256 rows: the 9th COMPUTE entry dispatches only
            // after 8 have issued, thousands of cycles later.
            let fill = 16;
            for _ in 0..fill {
                code.push(matmul(0, 256, 0, NO));
            }
            let bad_pc = code.len() as u32;
            code.push(store_spad(g, dram, stride, rows, 0, NO));
            code.push(finish());
            let prog = program(&cfg, code);
            let mut d = driver(&cfg);
            d.load(&prog).unwrap();
            let data: Vec<u8> = (0..g.rows as usize * g.dim as usize).map(|i| (i * 7 + 1) as u8).collect();
            d.write_mem(DATA, &data).unwrap();
            // Guard the window's last 256 bytes too: no byte of a refused
            // DMA is moved.
            let guard = Guard::arm(&mut d, 0, WINDOW - 256);
            let rep = expect_fault(&mut d, &guard, ErrorCode::DmaOutOfWindow, bad_pc, what);
            // The valid work ran and wrote inside the window.
            let good = rep.trace[2];
            assert!(good.finish > good.start && good.finish <= rep.cycles(), "{what}: valid store {good:?}");
            assert_eq!(d.read_mem(OUT, data.len()).unwrap(), data, "{what}: valid store's data");
            recover(&mut d, what);
        }
    }
}

/// A LOAD whose DRAM range ends past the window limit.
#[test]
fn dma_load_past_window_limit() {
    for cfg in configs() {
        let g = geo(&cfg);
        let d32 = g.dim as u64;
        let cases: [(&str, Instr); 3] = [
            ("load straddles the limit", load_spad(g, WINDOW - d32 / 2, 1, 8, NO)),
            ("load starts at the limit", load_spad(g, WINDOW, 1, 8, NO)),
            (
                "padded load whose data ends past the limit",
                Instr::from(ins::Load {
                    dram: (WINDOW - d32) as u32,
                    stride: g.dim as u32,
                    rows: 2,
                    cols: g.dim,
                    pad_top: 1,
                    addr: 8,
                    ..Default::default()
                }),
            ),
        ];
        for (what, bad) in cases {
            let mut code = prologue(g);
            code.push(bad);
            code.push(finish());
            fault_case(&cfg, &program(&cfg, code), ErrorCode::DmaOutOfWindow, 3, what);
        }
    }
}

/// A LOAD (or STORE) starting below a nonzero window base.
#[test]
fn dma_below_window_base() {
    const BASE: u64 = 0x1000;
    for cfg in configs() {
        let g = geo(&cfg);
        let d32 = g.dim as u64;
        let cases: [(&str, Instr); 4] = [
            ("load straddles the base", load_spad(g, BASE - 2, 1, 8, NO)),
            ("load entirely below the base", load_spad(g, 0x800, 2, 8, NO)),
            ("load at 0", load_spad(g, 0, 1, 8, NO)),
            ("store straddles the base", store_spad(g, BASE - d32 / 2, g.dim as u32, 1, 0, NO)),
        ];
        for (what, bad) in cases {
            let mut code = prologue(g);
            code.push(bad);
            code.push(finish());
            let mut prog = program(&cfg, code);
            prog.code_addr = 0x2000; // inside [BASE, WINDOW)
            let mut d = driver(&cfg);
            d.load(&prog).unwrap();
            d.device_mut().write_reg(regs::WIN_BASE, BASE as u32).unwrap();
            let guard = Guard::arm(&mut d, BASE, WINDOW);
            expect_fault(&mut d, &guard, ErrorCode::DmaOutOfWindow, 3, what);
            recover(&mut d, what);
        }
    }
}

// ---- BufferOutOfRange ---------------------------------------------------------

#[test]
fn buffer_out_of_range() {
    for cfg in configs() {
        let g = geo(&cfg);
        let (spad, acc) = (g.spad_rows as u16, g.acc_rows as u16);
        let cases: Vec<(&str, Instr)> = vec![
            ("matmul acc + m past the accumulator", matmul(0, 4, acc - 2, NO)),
            ("matmul acc at the end", matmul(0, 1, acc, NO)),
            ("matmul input past the scratchpad", matmul(spad - 1, 2, 0, NO)),
            ("load block past the scratchpad", load_spad(g, DATA, 4, spad - 2, NO)),
            (
                "load wide block past the scratchpad",
                // Two column blocks of 4 rows each from row spad - 6: rows up to spad + 2.
                Instr::from(ins::Load {
                    dram: DATA as u32,
                    stride: 2 * g.dim as u32,
                    rows: 4,
                    cols: 2 * g.dim,
                    addr: spad - 6,
                    ..Default::default()
                }),
            ),
            (
                "load into the accumulator past its end",
                Instr::from(ins::Load {
                    buf: ins::BUF_ACC,
                    dram: DATA as u32,
                    stride: 4 * g.dim as u32,
                    rows: 2,
                    cols: g.dim,
                    addr: acc - 1,
                    ..Default::default()
                }),
            ),
            ("store from past the scratchpad", store_spad(g, OUT, g.dim as u32, 2, spad - 1, NO)),
            ("ldw k = rows + 1", Instr::from(ins::Ldw { addr: 0, k: g.rows + 1, n: 1, ..Default::default() })),
            ("ldw n = cols + 1", Instr::from(ins::Ldw { addr: 0, k: 1, n: g.dim + 1, ..Default::default() })),
            (
                "matmul preload k = rows + 1",
                Instr::from(ins::Matmul { m: 1, preload: 1, k: g.rows + 1, n: 1, ..Default::default() }),
            ),
            (
                "requant params past the accumulator",
                Instr::from(ins::Requant { rows: 1, params: acc - 1, qmin: -128, qmax: 127, ..Default::default() }),
            ),
        ];
        for (what, bad) in cases {
            let mut code = prologue(g);
            code.push(bad);
            code.push(finish());
            fault_case(&cfg, &program(&cfg, code), ErrorCode::BufferOutOfRange, 3, what);
        }
    }
}

/// `ldw k=5` on the 4x4 array, exactly as the brief states it.
#[test]
fn ldw_k5_on_4x4_is_out_of_range() {
    let cfg = HwConfig::tiny_4x4();
    let code = vec![Instr::from(ins::Ldw { addr: 0, k: 5, n: 4, ..Default::default() }), finish()];
    fault_case(&cfg, &program(&cfg, code), ErrorCode::BufferOutOfRange, 0, "ldw k=5");
}

// ---- Deadlock ---------------------------------------------------------------

/// Largest finish cycle of the executed instructions.
fn last_finish(rep: &RunReport) -> u64 {
    rep.trace.iter().map(|t| t.finish).max().unwrap_or(0)
}

/// A MATMUL waits for a LOAD token that no LOAD pushes. The LOAD's one
/// token is taken by the LDW before it; the LDW is the last activity, so
/// the watchdog fires WATCHDOG_CYCLES after its last cycle (finish - 1).
#[test]
fn deadlock_matmul_waits_for_missing_token() {
    for cfg in configs() {
        let g = geo(&cfg);
        let code = vec![
            load_spad(g, DATA, g.rows, 0, deps(|d| d.push_next = true)),
            Instr::from(ins::Ldw {
                deps: deps(|d| d.pop_prev = true),
                addr: 0,
                k: g.rows,
                n: g.dim,
                ..Default::default()
            }),
            Instr::from(ins::Matmul {
                deps: deps(|d| d.pop_prev = true),
                a: 0,
                m: 4,
                acc: 0,
                swap: 1,
                ..Default::default()
            }),
            finish(),
        ];
        let rep = fault_case(&cfg, &program(&cfg, code), ErrorCode::Deadlock, 2, "matmul waits for a load token");
        assert!(
            rep.trace[0].finish > 0 && rep.trace[1].finish > rep.trace[0].start,
            "load and ldw ran: {:?}",
            rep.trace
        );
        assert_eq!(rep.trace[2].finish, 0, "the matmul never started: {:?}", rep.trace[2]);
        let last_active = rep.trace[1].finish - 1;
        assert_eq!(last_finish(&rep), rep.trace[1].finish, "the ldw is the last instruction to finish");
        assert!(rep.cycles() >= WATCHDOG_CYCLES);
        assert_eq!(
            rep.cycles(),
            last_active + WATCHDOG_CYCLES + 1,
            "{}: watchdog timing, trace {:?}",
            cfg.name,
            rep.trace
        );
    }
}

/// Nothing ever runs: a MATMUL pops a token first thing; and a LOAD waits
/// for COMPUTE, which never pushes back.
#[test]
fn deadlock_with_no_progress_at_all() {
    for cfg in configs() {
        let g = geo(&cfg);
        let cases: [(&str, Vec<Instr>, u32); 3] = [
            (
                "store waits for compute",
                vec![store_spad(g, OUT, g.dim as u32, 1, 0, deps(|d| d.pop_prev = true)), finish()],
                0,
            ),
            ("matmul pops first", vec![matmul(0, 1, 0, deps(|d| d.pop_prev = true)), finish()], 0),
            (
                "load waits for compute",
                vec![sync(0, NO), load_spad(g, DATA, 1, 0, deps(|d| d.pop_next = true)), finish()],
                1,
            ),
        ];
        for (what, code, pc) in cases {
            let rep = fault_case(&cfg, &program(&cfg, code), ErrorCode::Deadlock, pc, what);
            assert!(rep.cycles() > WATCHDOG_CYCLES, "{what}: {} cycles", rep.cycles());
            // The last activity is fetch or dispatch, within the first few
            // hundred cycles (the fetch latency).
            let bound = last_finish(&rep) + cfg.dram.latency_cycles as u64 + 64 + WATCHDOG_CYCLES;
            assert!(rep.cycles() <= bound, "{what}: {} cycles > {bound}", rep.cycles());
        }
    }
}

/// A cycle of waits: the STORE waits for COMPUTE, COMPUTE waits for the
/// STORE. Either waiting instruction may be reported; the model reports the
/// COMPUTE queue's head.
#[test]
fn deadlock_store_compute_cycle() {
    for cfg in configs() {
        let g = geo(&cfg);
        let code = vec![
            load_spad(g, DATA, 1, 0, NO),
            matmul(0, 1, 0, deps(|d| (d.pop_next, d.push_next) = (true, true))),
            Instr::from(ins::Store {
                deps: deps(|d| (d.pop_prev, d.push_prev) = (true, true)),
                buf: ins::BUF_ACC,
                dram: OUT as u32,
                stride: 4 * g.dim as u32,
                rows: 1,
                cols: g.dim,
                ..Default::default()
            }),
            finish(),
        ];
        let prog = program(&cfg, code);
        let mut d = driver(&cfg);
        d.load(&prog).unwrap();
        let guard = Guard::arm(&mut d, 0, WINDOW);
        let rep = d.run().unwrap();
        let pc = match rep.outcome {
            Outcome::Fault { code: ErrorCode::Deadlock, pc } => pc,
            other => panic!("{}: {other:?}", cfg.name),
        };
        assert!(pc == 1 || pc == 2, "pc {pc} is one of the waiting instructions");
        assert_eq!(pc, 1, "the model reports the COMPUTE head");
        assert_eq!(rep.trace[1].finish, 0);
        assert_eq!(rep.trace[2].finish, 0);
        assert!(rep.cycles() >= last_finish(&rep) + WATCHDOG_CYCLES, "{} cycles, trace {:?}", rep.cycles(), rep.trace);
        assert!(
            rep.cycles() <= last_finish(&rep) + WATCHDOG_CYCLES + 64,
            "{} cycles, trace {:?}",
            rep.cycles(),
            rep.trace
        );
        assert_eq!(reg(&mut d, regs::STATUS), regs::STATUS_FAULT);
        guard.check(&mut d, "store/compute cycle");
        recover(&mut d, "store/compute cycle");
    }
}

// ---- ProgramOverrun -----------------------------------------------------------

#[test]
fn program_overrun_without_finish() {
    for cfg in configs() {
        let g = geo(&cfg);
        let cases: [(&str, Vec<Instr>); 3] = [
            ("valid work, no finish", prologue(g)),
            ("one sync", vec![sync(0, NO)]),
            // Five instructions: the fetch block boundary is not the end.
            ("five syncs", (0..5).map(|i| sync(i % 3, NO)).collect()),
        ];
        for (what, code) in cases {
            let len = code.len() as u32;
            fault_case(&cfg, &program(&cfg, code), ErrorCode::ProgramOverrun, len, what);
        }
    }
}

// ---- BadProgram ----------------------------------------------------------------

#[test]
fn bad_program_registers() {
    type Poke = fn(&mut Driver<Model>);
    let cases: [(&str, Poke); 7] = [
        ("PROG_ADDR not 32-byte aligned", |d| d.device_mut().write_reg(regs::PROG_ADDR, 16).unwrap()),
        ("PROG_ADDR 4-byte aligned", |d| d.device_mut().write_reg(regs::PROG_ADDR, 4).unwrap()),
        ("program straddles the window limit", |d| {
            d.device_mut().write_reg(regs::PROG_ADDR, WINDOW as u32 - 32).unwrap();
            d.device_mut().write_reg(regs::PROG_LEN, 2).unwrap();
        }),
        ("program outside the window", |d| d.device_mut().write_reg(regs::PROG_ADDR, 2 * WINDOW as u32).unwrap()),
        ("program below the window base", |d| d.device_mut().write_reg(regs::WIN_BASE, 0x1000).unwrap()),
        ("empty program", |d| d.device_mut().write_reg(regs::PROG_LEN, 0).unwrap()),
        ("window limit past device memory", |d| d.device_mut().write_reg(regs::WIN_LIMIT, u32::MAX).unwrap()),
    ];
    for cfg in configs() {
        let g = geo(&cfg);
        for (what, poke) in cases {
            let mut code = prologue(g);
            code.push(finish());
            let prog = program(&cfg, code);
            let mut d = driver(&cfg);
            d.load(&prog).unwrap();
            poke(&mut d);
            let guard = Guard::arm(&mut d, 0, WINDOW);
            let rep = expect_fault(&mut d, &guard, ErrorCode::BadProgram, 0, what);
            assert!(rep.trace.iter().all(|t| t.finish == 0), "{what}: nothing ran: {:?}", rep.trace);
            assert_eq!(d.read_mem(OUT, 16).unwrap(), vec![0; 16], "{what}: nothing was stored");
            recover(&mut d, what);
        }
    }
}

// ---- TokenOverflow ---------------------------------------------------------------

fn token_syncs(n: u32) -> Vec<Instr> {
    let mut code: Vec<Instr> = (0..n).map(|_| sync(ins::Queue::Load as u8, deps(|d| d.push_next = true))).collect();
    code.push(finish());
    code
}

/// 256 SYNCs in the LOAD queue each push a token to COMPUTE and nothing
/// pops: the 256th push exceeds TOKEN_MAX = 255.
#[test]
fn token_overflow() {
    assert_eq!(TOKEN_MAX, 255);
    for cfg in configs() {
        let prog = program(&cfg, token_syncs(TOKEN_MAX + 1));
        fault_case(&cfg, &prog, ErrorCode::TokenOverflow, TOKEN_MAX, "256 pushes");
    }
}

/// The boundary: TOKEN_MAX pushes are fine.
#[test]
fn token_max_is_not_an_overflow() {
    for cfg in configs() {
        let prog = program(&cfg, token_syncs(TOKEN_MAX));
        let mut d = driver(&cfg);
        d.load(&prog).unwrap();
        let rep = d.run().unwrap();
        assert_eq!(rep.outcome, Outcome::Done, "{}: 255 pushes", cfg.name);
    }
}

// ---- recovery across several faults ------------------------------------------

/// One device goes through a fault of every kind in a row, then runs a
/// correct program.
#[test]
fn one_device_survives_every_fault() {
    let cfg = HwConfig::tiny_4x4();
    let g = geo(&cfg);
    let mut d = driver(&cfg);
    let runs: Vec<(ErrorCode, Vec<Instr>, u32)> = vec![
        (ErrorCode::IllegalInstruction, vec![sync(3, NO), finish()], 0),
        (ErrorCode::DmaOutOfWindow, vec![store_spad(g, WINDOW, 4, 1, 0, NO), finish()], 0),
        (ErrorCode::BufferOutOfRange, vec![matmul(0, 2, g.acc_rows as u16 - 1, NO), finish()], 0),
        (ErrorCode::Deadlock, vec![matmul(0, 1, 0, deps(|d| d.pop_prev = true)), finish()], 0),
        (ErrorCode::ProgramOverrun, vec![sync(0, NO)], 1),
        (ErrorCode::TokenOverflow, token_syncs(256), 255),
    ];
    for (code, instrs, pc) in runs {
        d.load(&program(&cfg, instrs)).unwrap();
        let guard = Guard::arm(&mut d, 0, WINDOW);
        expect_fault(&mut d, &guard, code, pc, code.name());
    }
    d.load(&program(&cfg, vec![finish()])).unwrap();
    d.device_mut().write_reg(regs::PROG_ADDR, 32 + 16).unwrap();
    let guard = Guard::arm(&mut d, 0, WINDOW);
    expect_fault(&mut d, &guard, ErrorCode::BadProgram, 0, "bad program");
    recover(&mut d, "after every fault");
}
