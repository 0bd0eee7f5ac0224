//! For the lowering steps' unit tests: one stretch of emitted code, with
//! DRAM addresses relative to its data, run alone on the model.

use crate::gemm::rebase_dram;
use driver::{Driver, Outcome};
use isa::instr::{self as ins, Instr};
use isa::program::Program;
use isa::HwConfig;

/// Checks every instruction against `cfg`, appends `finish`, places `data`
/// on the 4 KiB boundary after the code, rebases the DMA addresses onto
/// it, and runs the program to completion. Returns the driver (to read
/// memory back) and where the data starts.
pub fn run_alone(cfg: &HwConfig, code: Vec<Instr>, data: Vec<u8>) -> (Driver<sim::Model>, isa::Counters, u64) {
    let (d, rep, data_addr) = run_to_end(cfg, code, data);
    assert_eq!(rep.outcome, Outcome::Done, "{}", cfg.name);
    (d, rep.counters, data_addr)
}

/// As [`run_alone`], but a fault is a result, not a failure: the run's
/// report whatever its outcome.
pub fn run_to_end(cfg: &HwConfig, mut code: Vec<Instr>, data: Vec<u8>) -> (Driver<sim::Model>, driver::RunReport, u64) {
    for (i, instr) in code.iter().enumerate() {
        isa::legal::check(instr, cfg).unwrap_or_else(|e| panic!("{}: instruction {i} {instr:?}: {e}", cfg.name));
    }
    code.push(Instr::Finish(ins::Finish::default()));
    let data_addr = (code.len() * ins::INSTR_BYTES).div_ceil(4096) as u64 * 4096;
    rebase_dram(&mut code, data_addr);
    let prog = Program {
        fingerprint: cfg.fingerprint(),
        config_name: cfg.name.clone(),
        code_addr: 0,
        code,
        data_addr,
        mem_bytes: (data_addr + data.len() as u64).div_ceil(4096) * 4096,
        data,
        tensors: vec![],
        meta: Default::default(),
    };
    let mut d = Driver::new(sim::Model::new(cfg).unwrap());
    d.load(&prog).unwrap();
    let rep = d.run().unwrap();
    (d, rep, data_addr)
}
