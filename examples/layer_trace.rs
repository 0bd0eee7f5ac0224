//! Per-instruction timing of one layer of a compiled program on the
//! cycle-accurate model: each instruction of the layers whose name
//! contains PATTERN with its start and finish cycle (relative to the
//! layer's first start), for finding where a schedule's time goes.
//!
//! `cargo run --release --example layer_trace -- model.sbin PATTERN`
//!
//! Inputs are left as device memory holds them after loading (zeros):
//! the array's and vector unit's timing does not depend on the data.

use driver::Driver;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, pattern] = &args[..] else {
        eprintln!("usage: layer_trace model.sbin PATTERN");
        std::process::exit(2);
    };
    let (prog, _) = systole::flow::compile::read_program(std::path::Path::new(path)).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(2)
    });
    let cfg = prog.meta.config.clone().unwrap_or_else(|| {
        eprintln!("{path}: the program records no configuration");
        std::process::exit(2)
    });
    let mut d = Driver::new(sim::Model::new(&cfg).unwrap());
    d.load(&prog).unwrap();
    let report = d.run().unwrap();
    let mut at: Vec<Option<(u64, u64)>> = vec![None; prog.code.len()];
    for t in &report.trace {
        at[t.index as usize] = Some((t.start, t.finish));
    }
    for l in prog.meta.layers.iter().filter(|l| l.name.contains(pattern.as_str())) {
        let t0 = (l.first..l.last).filter_map(|i| at[i].map(|t| t.0)).min().unwrap_or(0);
        let t1 = (l.first..l.last).filter_map(|i| at[i].map(|t| t.1)).max().unwrap_or(0);
        println!("{} [{}..{}): {} cycles (from {t0})", l.name, l.first, l.last, t1 - t0);
        for (i, t) in at.iter().enumerate().take(l.last).skip(l.first) {
            let (s, f) = t.map_or((0, 0), |(s, f)| (s - t0, f - t0));
            println!("{i:6} {s:7} {f:7} {:5}  {}", f - s, prog.code[i]);
        }
    }
}
