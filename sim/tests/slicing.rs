//! The model may be advanced in slices of any size (as a driver polling a
//! device does): the result must not depend on where it pauses.

use compiler::gemm::{lower_gemm, GemmOutput, GemmSpec, INPUT, OUTPUT};
use isa::regs::{self, Counter};
use isa::{Device, HwConfig, INSTR_BYTES};

fn loaded(cfg: &HwConfig, prog: &isa::program::Program, a: &[u8]) -> sim::Model {
    let mut m = sim::Model::new(cfg).unwrap();
    let code: Vec<u8> = prog.code.iter().flat_map(|i| i.encode()).collect();
    m.write_mem(prog.code_addr, &code).unwrap();
    m.write_mem(prog.data_addr, &prog.data).unwrap();
    m.write_mem(prog.tensor(INPUT).unwrap().addr, a).unwrap();
    m.write_reg(regs::PROG_ADDR, prog.code_addr as u32).unwrap();
    m.write_reg(regs::PROG_LEN, (code.len() / INSTR_BYTES) as u32).unwrap();
    m.write_reg(regs::WIN_LIMIT, prog.mem_bytes as u32).unwrap();
    m.write_reg(regs::CTRL, regs::CTRL_START).unwrap();
    m
}

#[test]
fn results_do_not_depend_on_advance_slices() {
    let cfg = HwConfig::tiny_4x4();
    let (m, k, n) = (23, 17, 10);
    let spec = GemmSpec {
        m,
        k,
        n,
        weights: (0..k * n).map(|i| (i * 29 % 251) as i8).collect(),
        input_unsigned: false,
        output: GemmOutput::Int8 { bias: vec![3; n], scale: vec![0.002; n], zero_point: 1, qmin: -128, qmax: 127 },
    };
    let a: Vec<u8> = (0..m * k).map(|i| (i * 7 % 256) as u8).collect();
    let prog = lower_gemm(&spec, &cfg).unwrap();
    let mut whole = loaded(&cfg, &prog, &a);
    assert_eq!(whole.advance(u64::MAX / 2).unwrap(), regs::STATUS_DONE);
    let c = prog.tensor(OUTPUT).unwrap().clone();
    for slice in [1, 7, 64, 1000] {
        let mut sliced = loaded(&cfg, &prog, &a);
        let mut polls = 0u64;
        while sliced.advance(slice).unwrap() == regs::STATUS_RUNNING {
            polls += 1;
        }
        assert_eq!(sliced.read_reg(regs::STATUS).unwrap(), regs::STATUS_DONE);
        assert_eq!(sliced.counters(), whole.counters(), "slice {slice}");
        assert_eq!(sliced.trace(), whole.trace(), "slice {slice}");
        assert_eq!(sliced.read_mem(c.addr, m * n).unwrap(), whole.read_mem(c.addr, m * n).unwrap());
        assert!(polls >= whole.counters().get(Counter::Cycles) / slice / 2, "slice {slice}: only {polls} polls");
    }
}
