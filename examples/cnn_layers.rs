//! Per-layer cycles of a compiled CNN against its yardsticks: the ideal
//! (every PE busy, MACs / (rows × cols)) and SCALE-Sim's weight-stationary
//! figure (`systole::flow::baseline`), with totals, MAC utilization and
//! energy per inference, on the cycle-accurate model.
//!
//! `cargo run --release --example cnn_layers -- model.onnx [hw.toml]`
//! (default hardware: examples/hw/default.toml). The input is
//! deterministic pseudo-random data; the timing does not depend on it.

use std::collections::HashMap;
use systole::flow::baseline::{self, LayerBaseline};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(model) = args.first() else {
        eprintln!("usage: cnn_layers model.onnx [hw.toml]");
        std::process::exit(2);
    };
    let cfg = match args.get(1) {
        Some(p) => isa::HwConfig::from_toml(&read_text(p)).unwrap_or_else(|e| fail(&format!("{p}: {e}"))),
        None => isa::HwConfig::default_16x16(),
    };
    let bytes = std::fs::read(model).unwrap_or_else(|e| fail(&format!("{model}: {e}")));
    let graph = compiler::onnx::import(&bytes).unwrap_or_else(|e| fail(&format!("{model}: {e}")));
    let t0 = std::time::Instant::now();
    let lowered = compiler::lower::lower(&graph, &cfg).unwrap_or_else(|e| fail(&format!("{model}: {e}")));
    let compile_s = t0.elapsed().as_secs_f64();
    let prog = &lowered.program;
    let layers = systole::flow::layers::from_program(prog);
    let input_len: u64 =
        prog.tensors.iter().find(|t| t.role == isa::program::TensorRole::Input).map_or(0, |t| t.shape.iter().product());
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let input: Vec<f32> = (0..input_len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect();
    let mut drv = driver::Driver::new(sim::Model::new(&cfg).unwrap_or_else(|e| fail(&e.to_string())));
    drv.load(prog).unwrap_or_else(|e| fail(&format!("{model}: load: {e}")));
    let t1 = std::time::Instant::now();
    let inf = drv.infer(prog, &input).unwrap_or_else(|e| fail(&format!("{model}: run: {e}")));
    let run_s = t1.elapsed().as_secs_f64();
    let cycles = systole::flow::layers::layer_cycles(&inf.report.trace, &layers);
    let counters = &inf.report.counters;
    let energy = sim::energy::energy(&cfg, prog, counters, &sim::energy::EnergyTable::default());

    let base: HashMap<String, LayerBaseline> =
        baseline::of_graph(&graph, &cfg).into_iter().map(|b| (b.name.clone(), b)).collect();
    println!(
        "{model} on {} ({}x{}, {} B/cycle, {} cycles latency): {} instructions, compiled in {compile_s:.2} s, \
         simulated in {run_s:.2} s",
        cfg.name,
        cfg.array.rows,
        cfg.array.cols,
        cfg.dram.bytes_per_cycle,
        cfg.dram.latency_cycles,
        prog.code.len()
    );
    println!(
        "{:<28} {:<9} {:>22} {:>11} {:>10} {:>10} {:>7} {:>10} {:>7} {:>11} {:>6}",
        "layer",
        "kind",
        "GEMM MxKxN (xgroups)",
        "MACs",
        "cycles",
        "ideal",
        "/ideal",
        "SCALE-Sim",
        "/SS",
        "DRAM bytes",
        "/min"
    );
    let (mut tot_macs, mut tot_ideal, mut tot_ss, mut gemm_cycles) = (0u64, 0u64, 0u64, 0u64);
    let w = cfg.dram.bytes_per_cycle as u64;
    for (l, &cyc) in layers.iter().zip(&cycles) {
        let facts = systole::flow::layers::code_facts(prog, l, &cfg);
        match base.get(&l.name) {
            Some(b) => {
                tot_macs += b.macs;
                tot_ideal += b.ideal_cycles;
                tot_ss += b.scalesim_ws_cycles;
                gemm_cycles += cyc;
                let shape = if b.groups > 1 {
                    format!("{}x{}x{} x{}", b.m, b.k, b.n, b.groups)
                } else {
                    format!("{}x{}x{}", b.m, b.k, b.n)
                };
                println!(
                    "{:<28} {:<9} {:>22} {:>11} {:>10} {:>10} {:>7.2} {:>10} {:>7.2} {:>11} {:>6.2}",
                    trim(&l.name),
                    b.kind.name(),
                    shape,
                    b.macs,
                    cyc,
                    b.ideal_cycles,
                    cyc as f64 / b.ideal_cycles.max(1) as f64,
                    b.scalesim_ws_cycles,
                    cyc as f64 / b.scalesim_ws_cycles.max(1) as f64,
                    facts.bus_bytes,
                    facts.bus_bytes as f64 / b.min_dram_bytes.max(1) as f64,
                );
            }
            None => println!(
                "{:<28} {:<9} {:>22} {:>11} {:>10} {:>10} {:>7} {:>10} {:>7} {:>11} {:>6}",
                trim(&l.name),
                l.op.to_string(),
                "",
                "",
                cyc,
                "",
                "",
                "",
                "",
                facts.bus_bytes,
                ""
            ),
        }
    }
    let total = counters.get(isa::Counter::Cycles);
    let peak = cfg.peak_macs_per_cycle();
    println!(
        "GEMM layers: {gemm_cycles} cycles, ideal {tot_ideal} ({:.2}x), SCALE-Sim WS {tot_ss} ({:.2}x)",
        gemm_cycles as f64 / tot_ideal.max(1) as f64,
        gemm_cycles as f64 / tot_ss.max(1) as f64
    );
    println!(
        "total: {total} cycles per inference ({:.3} ms at {} MHz), {tot_macs} MACs, MAC utilization {:.1} % \
         (MACs / (cycles x {peak})), array MAC counter {}, DRAM {} bytes ({} beats of {w} B), energy {:.3} mJ \
         per inference",
        total as f64 / cfg.clock.mhz / 1e3,
        cfg.clock.mhz,
        100.0 * tot_macs as f64 / (total as f64 * peak as f64),
        counters.get(isa::Counter::Macs),
        counters.get(isa::Counter::DramReadBytes) + counters.get(isa::Counter::DramWriteBytes),
        (counters.get(isa::Counter::DramReadBytes) + counters.get(isa::Counter::DramWriteBytes)) / w,
        energy.total_pj / 1e9,
    );
}

fn trim(name: &str) -> String {
    if name.len() <= 28 {
        name.to_string()
    } else {
        format!("..{}", &name[name.len() - 26..])
    }
}

fn read_text(p: &str) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| fail(&format!("{p}: {e}")))
}

fn fail(msg: &str) -> ! {
    eprintln!("cnn_layers: {msg}");
    std::process::exit(2);
}
