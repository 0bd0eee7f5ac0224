//! Prints cycles and MAC utilization of GEMM shapes on a config.
use compiler::gemm::{lower_gemm, GemmOutput, GemmSpec, INPUT};
use driver::Driver;
use isa::HwConfig;
use std::time::Instant;

fn main() {
    let cfg = HwConfig::default_16x16();
    for &(m, k, n) in &[(512, 512, 512), (128, 384, 1536), (64, 64, 64)] {
        let spec = GemmSpec {
            m,
            k,
            n,
            weights: (0..k * n).map(|i| (i % 251) as i8).collect(),
            input_unsigned: false,
            output: GemmOutput::Int8 { bias: vec![1; n], scale: vec![0.001; n], zero_point: 0, qmin: -128, qmax: 127 },
        };
        let prog = lower_gemm(&spec, &cfg).unwrap();
        let mut d = Driver::new(sim::Model::new(&cfg).unwrap());
        d.load(&prog).unwrap();
        let a: Vec<u8> = (0..m * k).map(|i| (i % 253) as u8).collect();
        d.write_tensor(prog.tensor(INPUT).unwrap(), &a).unwrap();
        let t0 = Instant::now();
        let rep = d.run().unwrap();
        let el = t0.elapsed().as_secs_f64();
        let macs = (m * k * n) as f64;
        println!(
            "{m}x{k}x{n}: {:?} cycles {} util {:.2}% wall {:.3}s  {:.2e} MAC/s  instrs {}",
            rep.outcome,
            rep.cycles(),
            100.0 * macs / (rep.cycles() as f64 * 256.0),
            el,
            macs / el,
            prog.code.len()
        );
        for (c, v) in rep.counters.iter() {
            print!("{}={} ", c.name(), v);
        }
        println!();
    }
}
