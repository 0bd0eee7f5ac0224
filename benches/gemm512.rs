//! Speed of the cycle-accurate model (issue: ≥ 1e9 simulated MACs per second
//! on one core). Runs int8 GEMMs lowered by the compiler on the 16x16
//! default, and as a baseline in the same run the plain reference GEMM
//! (three nested loops, no timing model). Prints a table; run with
//! `cargo bench --bench gemm512`. Not a test: nothing here asserts a time.

mod common;

use common::median;
use compiler::gemm::{lower_gemm, reference_gemm, INPUT};
use driver::Driver;
use isa::{Counter, HwConfig};
use std::time::Instant;

fn main() {
    let cfg = HwConfig::default_16x16();
    let reps = 5;
    println!("systole model speed, {} ({}x{}), median of {reps} runs", cfg.name, cfg.array.rows, cfg.array.cols);
    println!(
        "{:>16} {:>10} {:>7} {:>9} {:>12} {:>12} {:>14} {:>9}",
        "gemm", "cycles", "util", "wall ms", "cycles/s", "MAC/s", "reference MAC/s", "ratio"
    );
    for &(m, k, n) in &[(512, 512, 512), (128, 384, 1536)] {
        let (spec, a) = common::gemm(m, k, n);
        let prog = lower_gemm(&spec, &cfg).expect("lowers");
        let macs = (m * k * n) as f64;
        let mut walls = Vec::new();
        let mut cycles = 0;
        for _ in 0..reps {
            let mut d = Driver::new(sim::Model::new(&cfg).expect("model"));
            d.load(&prog).expect("load");
            d.write_tensor(prog.tensor(INPUT).expect("input"), &a).expect("input");
            let t0 = Instant::now();
            let rep = d.run().expect("run");
            walls.push(t0.elapsed().as_secs_f64());
            cycles = rep.counters.get(Counter::Cycles);
        }
        let wall = median(walls);
        let mut ref_walls = Vec::new();
        for _ in 0..3 {
            let t0 = Instant::now();
            std::hint::black_box(reference_gemm(&spec, &a));
            ref_walls.push(t0.elapsed().as_secs_f64());
        }
        let ref_rate = macs / median(ref_walls);
        let rate = macs / wall;
        println!(
            "{:>16} {:>10} {:>6.2}% {:>9.1} {:>12.3e} {:>12.3e} {:>14.3e} {:>8.2}x",
            format!("{m}x{k}x{n}"),
            cycles,
            100.0 * macs / (cycles as f64 * cfg.peak_macs_per_cycle() as f64),
            wall * 1e3,
            cycles as f64 / wall,
            rate,
            ref_rate,
            rate / ref_rate
        );
    }
}
