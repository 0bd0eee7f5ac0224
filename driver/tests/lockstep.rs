//! `Lockstep` of two devices: two equal models agree; models whose DRAM
//! timing differs are told apart, naming what differs first.

use compiler::gemm::{lower_gemm, GemmOutput, GemmSpec, INPUT};
use driver::compare::Difference;
use driver::{Driver, DriverError, Lockstep};
use isa::HwConfig;

fn gemm(cfg: &HwConfig) -> isa::program::Program {
    let (m, k, n) = (9, 12, 7);
    let weights: Vec<i8> = (0..k * n).map(|i| ((i * 37 + 11) % 255) as i8).collect();
    lower_gemm(&GemmSpec { m, k, n, weights, input_unsigned: false, output: GemmOutput::Int32 }, cfg).unwrap()
}

fn run_both(a: &HwConfig, b: &HwConfig) -> (Result<driver::RunReport, DriverError>, Option<Difference>) {
    let prog = gemm(a);
    let both = Lockstep::new(sim::Model::new(a).unwrap(), sim::Model::new(b).unwrap(), ("model a", "model b"));
    let slot = both.difference();
    let mut d = Driver::new(both);
    d.load(&prog).unwrap();
    let input: Vec<u8> = (0..prog.tensor(INPUT).unwrap().byte_len()).map(|i| (i * 53 + 7) as u8).collect();
    d.write_tensor(prog.tensor(INPUT).unwrap(), &input).unwrap();
    let r = d.run();
    let diff = slot.borrow().clone();
    (r, diff)
}

#[test]
fn equal_devices_agree() {
    let cfg = HwConfig::tiny_4x4();
    let (r, diff) = run_both(&cfg, &cfg);
    assert!(r.is_ok(), "{:?}", r.err());
    assert_eq!(diff, None);
}

#[test]
fn a_timing_difference_is_named() {
    let a = HwConfig::tiny_4x4();
    let mut b = a.clone();
    b.dram.latency_cycles += 7;
    b.validate().unwrap();
    assert_eq!(a.fingerprint(), b.fingerprint(), "timing is not part of the fingerprint");
    let (r, diff) = run_both(&a, &b);
    let e = r.unwrap_err().to_string();
    assert!(e.contains("model a and model b differ") && e.contains("(model a first)"), "{e}");
    // Total cycles are compared first (then each instruction, then the counters).
    match diff {
        Some(Difference::Counter { counter: isa::Counter::Cycles, a, b }) => {
            assert!(b > a, "slower DRAM, more cycles: {a} vs {b}");
            assert!(e.contains(&format!("counter `cycles` differs: {a} vs {b}")), "{e}");
        }
        other => panic!("expected the total cycles to differ, got {other:?}"),
    }
}
