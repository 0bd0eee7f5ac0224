//! Speed of the verilated RTL (`rtl::RtlDevice`) against the cycle-accurate
//! Rust model (`sim::Model`) on the compiled 512x512x512 int8 GEMM that
//! `benches/gemm512.rs` runs, on the 16x16 default, both through
//! `driver::Driver`. Checks that the two runs are equal (outcome, cycles,
//! every counter, each instruction's start and finish) and that the output
//! tensors are bit-identical, then prints per backend the simulated cycles,
//! wall and CPU time of the run, cycles per second and simulated MACs per
//! second (both per wall second), and the model/RTL speed ratio. Building
//! (or finding in the cache) and loading the RTL happens before any timing
//! and is reported on its own line. Not a test: nothing here asserts a time.
//!
//! `cargo bench --features rtl --bench rtl_gemm` (the RTL run takes ~2.2 s of
//! CPU on one core of a shared machine, 535,322 cycles; a first build of the
//! configuration adds 1-5 min).
//!
//! - `SYSTOLE_BENCH_GEMM=MxKxN`: run that shape instead.
//! - `SYSTOLE_BENCH_HW=tiny|default|large`: the `examples/hw` configuration.

mod common;

use common::median;
use compiler::gemm::{lower_gemm, INPUT, OUTPUT};
use driver::compare::compare_runs;
use driver::{Driver, Outcome, RunReport};
use isa::{Device, HwConfig};
use rtl::RtlDevice;
use std::io::Write;
use std::time::Instant;

fn shape() -> (usize, usize, usize) {
    if let Ok(s) = std::env::var("SYSTOLE_BENCH_GEMM") {
        let d: Vec<usize> = s.split('x').map(|d| d.trim().parse().expect("SYSTOLE_BENCH_GEMM=MxKxN")).collect();
        assert_eq!(d.len(), 3, "SYSTOLE_BENCH_GEMM=MxKxN");
        return (d[0], d[1], d[2]);
    }
    (512, 512, 512)
}

fn config() -> HwConfig {
    let name = std::env::var("SYSTOLE_BENCH_HW").unwrap_or_else(|_| "default".into());
    let path = format!("{}/examples/hw/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("SYSTOLE_BENCH_HW: {path}: {e}"));
    HwConfig::from_toml(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Nanoseconds this thread has run on a CPU (Linux; `None` elsewhere): the
/// cores may be shared, so the wall time alone can overstate a backend's cost.
fn cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat").ok()?.split_whitespace().next()?.parse().ok()
}

/// Loads the program and its input on `dev`, runs it, and returns the
/// report, the wall time of the run alone and the output tensor.
fn run<D: Device>(
    dev: D,
    prog: &isa::program::Program,
    a: &[u8],
    progress: impl FnMut(u64),
) -> (RunReport, f64, Option<f64>, Vec<u8>) {
    let mut d = Driver::new(dev);
    d.load(prog).expect("load");
    d.write_tensor(prog.tensor(INPUT).expect("input"), a).expect("input");
    let (t0, c0) = (Instant::now(), cpu_ns());
    let rep = d.run_with_progress(progress).expect("run");
    let wall = t0.elapsed().as_secs_f64();
    let cpu = c0.zip(cpu_ns()).map(|(a, b)| b.saturating_sub(a) as f64 * 1e-9);
    assert_eq!(rep.outcome, Outcome::Done, "the GEMM faulted");
    let out = d.read_tensor(prog.tensor(OUTPUT).expect("output")).expect("output");
    (rep, wall, cpu, out)
}

fn main() {
    let cfg = config();
    let (m, k, n) = shape();
    let (spec, a) = common::gemm(m, k, n);
    let prog = lower_gemm(&spec, &cfg).expect("lowers");
    let macs = (m * k * n) as f64;
    println!(
        "systole RTL vs model speed: {m}x{k}x{n} GEMM on {} ({}x{}), {} instructions",
        cfg.name,
        cfg.array.rows,
        cfg.array.cols,
        prog.code.len()
    );

    // The one-time cost: verilate and compile (or find in the cache) and load.
    let t0 = Instant::now();
    let rtl = RtlDevice::new(&cfg).unwrap_or_else(|e| panic!("building the RTL of `{}`: {e}", cfg.name));
    println!("RTL build + load (not timed below): {:.1} s", t0.elapsed().as_secs_f64());

    // The model is fast: the median of a few runs.
    let model_runs: Vec<_> = (0..3).map(|_| run(sim::Model::new(&cfg).expect("model"), &prog, &a, |_| {})).collect();
    let model_wall = median(model_runs.iter().map(|r| r.1).collect());
    let model_cpu = model_runs.iter().map(|r| r.2).collect::<Option<Vec<f64>>>().map(median);
    let (model_rep, _, _, model_out) = model_runs.into_iter().next().unwrap();

    let total = model_rep.cycles();
    let (mut last, mut shown) = (Instant::now(), false);
    let (rtl_rep, rtl_wall, rtl_cpu, rtl_out) = run(rtl, &prog, &a, |c| {
        if last.elapsed().as_secs_f64() >= 5.0 {
            last = Instant::now();
            shown = true;
            eprint!("\r  RTL: {c} / {total} cycles ");
            let _ = std::io::stderr().flush();
        }
    });
    if shown {
        eprint!("\r{:60}\r", "");
    }

    if let Err(d) = compare_runs(&model_rep, &rtl_rep) {
        panic!("model vs RTL: {d}");
    }
    assert_eq!(model_rep.cycles(), rtl_rep.cycles());
    if let Some(i) = (0..model_out.len()).find(|&i| model_out[i] != rtl_out[i]) {
        panic!("output byte {i} differs: model {:#04x}, RTL {:#04x}", model_out[i], rtl_out[i]);
    }
    assert_eq!(model_out.len(), rtl_out.len());
    println!(
        "equal: {} cycles, every counter, {} instruction start/finish cycles, {} output bytes bit-identical",
        total,
        model_rep.trace.len(),
        model_out.len()
    );

    let secs = |t: Option<f64>| t.map_or("-".to_string(), |t| format!("{t:.3}"));
    println!("{:>8} {:>10} {:>10} {:>10} {:>12} {:>12}", "backend", "cycles", "wall s", "CPU s", "cycles/s", "MAC/s");
    for (name, rep, wall, cpu) in [("model", &model_rep, model_wall, model_cpu), ("RTL", &rtl_rep, rtl_wall, rtl_cpu)] {
        let cycles = rep.cycles();
        println!(
            "{:>8} {:>10} {:>10.3} {:>10} {:>12.3e} {:>12.3e}",
            name,
            cycles,
            wall,
            secs(cpu),
            cycles as f64 / wall,
            macs / wall
        );
    }
    let cpu_ratio = model_cpu.zip(rtl_cpu).map_or(String::new(), |(m, r)| format!(", {:.0}x in CPU time", r / m));
    println!("model/RTL speed ratio: {:.0}x in wall time{cpu_ratio}", rtl_wall / model_wall);
}
