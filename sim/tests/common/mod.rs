//! What the DMA tests share: a model that runs a short program, and a
//! program that loads and then stores the loaded rows for inspection.

use isa::instr::{self as ins, Deps, Instr};
use isa::regs;
use isa::{Device, HwConfig};

pub const OUT: u64 = 0x20000;
pub const CODE: u64 = 0x30000;
pub const WINDOW: u64 = 0x40000;

/// Runs `code` (FINISH appended) on a model holding `data`; returns the
/// model and its final status.
pub fn run(cfg: &HwConfig, code: &[Instr], data: &[(u64, Vec<u8>)]) -> (sim::Model, u32) {
    let mut m = sim::Model::new(cfg).unwrap();
    let mut code = code.to_vec();
    code.push(Instr::Finish(ins::Finish::default()));
    let bytes: Vec<u8> = code.iter().flat_map(|i| i.encode()).collect();
    m.write_mem(CODE, &bytes).unwrap();
    for (addr, d) in data {
        m.write_mem(*addr, d).unwrap();
    }
    m.write_reg(regs::PROG_ADDR, CODE as u32).unwrap();
    m.write_reg(regs::PROG_LEN, code.len() as u32).unwrap();
    m.write_reg(regs::WIN_LIMIT, WINDOW as u32).unwrap();
    m.write_reg(regs::CTRL, regs::CTRL_START).unwrap();
    let status = m.advance(1 << 30).unwrap();
    (m, status)
}

/// `load` (signalling COMPUTE), a COMPUTE `sync` forwarding to STORE, and a
/// STORE of the local rows `0..rows` (every column) to OUT.
pub fn load_then_dump(load: ins::Load, rows: u16, cols: u16) -> Vec<Instr> {
    let e = if load.buf == ins::BUF_ACC { 4 } else { 1 };
    vec![
        Instr::Load(ins::Load { deps: Deps { push_next: true, ..Deps::NONE }, ..load }),
        Instr::Sync(ins::Sync { deps: Deps { pop_prev: true, push_next: true, ..Deps::NONE }, queue: 1 }),
        Instr::Store(ins::Store {
            deps: Deps { pop_prev: true, ..Deps::NONE },
            buf: load.buf,
            dram: OUT as u32,
            stride: cols as u32 * e,
            rows,
            cols,
            addr: 0,
            col: 0,
        }),
    ]
}
