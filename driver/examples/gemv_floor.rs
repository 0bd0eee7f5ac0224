//! Decode-shaped GEMVs (1 x K x N, batch 1) on the 16x16 default against
//! the DRAM floor: the weights' bytes over the bus's bytes per cycle.
//! `cargo run --release -p driver --example gemv_floor`
//!
//! 8192 x 8192 int8 weights are the default's whole 64 MiB of device
//! memory, so that shape runs with 128 MiB (same timing: the DRAM size is
//! not a timing parameter).
use compiler::gemm::{lower_gemm, reference_gemm, GemmOutput, GemmSpec, INPUT, OUTPUT};
use driver::{Driver, Outcome};
use isa::HwConfig;

fn main() {
    let default = HwConfig::default_16x16();
    println!(
        "{:>16} {:>10} {:>10} {:>7} {:>7} {:>11} {:>13}",
        "GEMV 1xKxN", "cycles", "floor", "ratio", "instrs", "array busy", "bus B / wts B"
    );
    for &(k, n) in &[(2048, 2048), (2048, 8192), (8192, 2048), (8192, 8192)] {
        let m = 1;
        let mut cfg = default.clone();
        if k * n >= 64 << 20 {
            cfg.dram.size_mib = 128;
            cfg.validate().expect("a valid config");
        }
        let spec = GemmSpec {
            m,
            k,
            n,
            weights: (0..k * n).map(|i| (i.wrapping_mul(2654435761) >> 7) as i8).collect(),
            input_unsigned: false,
            output: GemmOutput::Int32,
        };
        let prog = lower_gemm(&spec, &cfg).expect("lowers");
        let mut d = Driver::new(sim::Model::new(&cfg).expect("model"));
        d.load(&prog).expect("loads");
        let a: Vec<u8> = (0..m * k).map(|i| (i * 73 % 251) as u8).collect();
        d.write_tensor(prog.tensor(INPUT).expect("a"), &a).expect("writes a");
        let rep = d.run().expect("runs");
        assert_eq!(rep.outcome, Outcome::Done, "{:?}", rep.outcome);
        let c: Vec<i32> = d
            .read_tensor(prog.tensor(OUTPUT).expect("c"))
            .expect("reads c")
            .chunks(4)
            .map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect();
        assert_eq!(c, reference_gemm(&spec, &a), "1x{k}x{n} differs from the reference");
        let floor = (k * n) as f64 / cfg.dram.bytes_per_cycle as f64;
        let busy = rep.counters.get(isa::Counter::ArrayBusy) as f64 / rep.cycles() as f64;
        let bus =
            (rep.counters.get(isa::Counter::DramReadBytes) + rep.counters.get(isa::Counter::DramWriteBytes)) as f64;
        println!(
            "{:>16} {:>10} {:>10} {:>7.3} {:>7} {:>10.1}% {:>13.4}",
            format!("1x{k}x{n}"),
            rep.cycles(),
            floor as u64,
            rep.cycles() as f64 / floor,
            prog.code.len(),
            100.0 * busy,
            bus / (k * n) as f64
        );
    }
}
