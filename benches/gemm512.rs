//! Speed of the cycle-accurate model (issue 13: >= 1e10 simulated MACs per
//! second on one core). Runs int8 GEMMs lowered by the compiler on the 16x16
//! default under every tile kernel this host runs (`sim::kernels`: the
//! portable scalar kernel, the model's first, then the SIMD ones), and as a
//! baseline in the same run the plain reference GEMM (three nested loops, no
//! timing model). Prints a table with each kernel's ratio to the reference
//! and to the scalar kernel; run with `cargo bench --bench gemm512`. Not a
//! test: nothing here asserts a time (it does check that every kernel gives
//! the same cycles and output).

mod common;

use common::median;
use compiler::gemm::{lower_gemm, reference_gemm, INPUT, OUTPUT};
use driver::Driver;
use isa::{Counter, HwConfig};
use sim::kernels::Kernel;
use std::time::Instant;

fn main() {
    let cfg = HwConfig::default_16x16();
    let reps = 5;
    let kernels = Kernel::available_all();
    println!(
        "systole model speed, {} ({}x{}), median of {reps} runs; kernels on this host: {} (best: {})",
        cfg.name,
        cfg.array.rows,
        cfg.array.cols,
        kernels.iter().map(|k| k.name()).collect::<Vec<_>>().join(", "),
        Kernel::best()
    );
    println!(
        "{:>14} {:>12} {:>10} {:>7} {:>9} {:>12} {:>12} {:>10} {:>10}",
        "gemm", "kernel", "cycles", "util", "wall ms", "cycles/s", "MAC/s", "vs ref", "vs scalar"
    );
    for &(m, k, n) in &[(512, 512, 512), (128, 384, 1536)] {
        let (spec, a) = common::gemm(m, k, n);
        let prog = lower_gemm(&spec, &cfg).expect("lowers");
        let macs = (m * k * n) as f64;
        let name = format!("{m}x{k}x{n}");
        println!("{name:>14}: {} instructions", prog.code.len());
        // The plain reference GEMM (three nested loops, no timing model).
        let mut ref_walls = Vec::new();
        for _ in 0..3 {
            let t0 = Instant::now();
            std::hint::black_box(reference_gemm(&spec, &a));
            ref_walls.push(t0.elapsed().as_secs_f64());
        }
        let ref_rate = macs / median(ref_walls);
        println!(
            "{name:>14} {:>12} {:>10} {:>7} {:>9.1} {:>12} {:>12.3e} {:>9.2}x {:>10}",
            "reference",
            "-",
            "-",
            macs / ref_rate * 1e3,
            "-",
            ref_rate,
            1.0,
            "-"
        );
        let mut scalar_rate = None;
        let mut outputs = Vec::new();
        for &kernel in &kernels {
            let mut walls = Vec::new();
            let mut cycles = 0;
            for _ in 0..reps {
                let mut d = Driver::new(sim::Model::with_kernel(&cfg, kernel).expect("model"));
                d.load(&prog).expect("load");
                d.write_tensor(prog.tensor(INPUT).expect("input"), &a).expect("input");
                let t0 = Instant::now();
                let rep = d.run().expect("run");
                walls.push(t0.elapsed().as_secs_f64());
                cycles = rep.counters.get(Counter::Cycles);
                if walls.len() == 1 {
                    outputs.push((
                        kernel,
                        cycles,
                        d.read_tensor(prog.tensor(OUTPUT).expect("output")).expect("output"),
                    ));
                }
            }
            let wall = median(walls);
            let rate = macs / wall;
            let scalar = *scalar_rate.get_or_insert(rate);
            println!(
                "{name:>14} {:>12} {:>10} {:>6.2}% {:>9.1} {:>12.3e} {:>12.3e} {:>9.2}x {:>9.2}x",
                kernel.name(),
                cycles,
                100.0 * macs / (cycles as f64 * cfg.peak_macs_per_cycle() as f64),
                wall * 1e3,
                cycles as f64 / wall,
                rate,
                rate / ref_rate,
                rate / scalar
            );
        }
        // A speed figure is only worth printing for the same result.
        for (kernel, cycles, out) in &outputs[1..] {
            assert!(
                (cycles, out) == (&outputs[0].1, &outputs[0].2),
                "{kernel} differs from the scalar kernel on {name}"
            );
        }
    }
}
