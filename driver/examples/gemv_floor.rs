//! Decode-shaped GEMVs (1 x K x N, batch 1) on the 16x16 default against
//! the DRAM floor: the weights' bytes over the bus's bytes per cycle; then
//! 1 x 2048 x 2048 with unstructured sparse weights as a compressed stream
//! (`WeightFormat::StreamSparseI8`, ISA.md §3 `load` `zfmt = mask`) against
//! the same weights dense, on the default and on a configuration with half
//! its DRAM bandwidth (8 B/cycle, where the bus and not the array bounds).
//! `cargo run --release -p driver --example gemv_floor`
//!
//! 8192 x 8192 int8 weights are the default's whole 64 MiB of device
//! memory, so that shape runs with 128 MiB (same timing: the DRAM size is
//! not a timing parameter).
use compiler::gemm::{lower_gemm_with, reference_gemm, GemmOutput, GemmSpec, WeightChoice, INPUT, OUTPUT};
use driver::{Driver, Outcome};
use isa::{Counter, HwConfig};

/// One run: cycles, DRAM read bytes, instructions, array busy, and energy
/// per MAC in pJ (the default table, docs/ENERGY.md); outputs checked
/// against the reference.
fn run(spec: &GemmSpec, cfg: &HwConfig, choice: WeightChoice) -> (u64, u64, usize, f64, f64) {
    let prog = lower_gemm_with(spec, cfg, choice).expect("lowers");
    let mut d = Driver::new(sim::Model::new(cfg).expect("model"));
    d.load(&prog).expect("loads");
    let a: Vec<u8> = (0..spec.m * spec.k).map(|i| (i * 73 % 251) as u8).collect();
    d.write_tensor(prog.tensor(INPUT).expect("a"), &a).expect("writes a");
    let rep = d.run().expect("runs");
    assert_eq!(rep.outcome, Outcome::Done, "{:?}", rep.outcome);
    let c: Vec<i32> = d
        .read_tensor(prog.tensor(OUTPUT).expect("c"))
        .expect("reads c")
        .chunks(4)
        .map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect();
    assert_eq!(c, reference_gemm(spec, &a), "1x{}x{} differs from the reference", spec.k, spec.n);
    let busy = rep.counters.get(Counter::ArrayBusy) as f64 / rep.cycles() as f64;
    let energy = sim::energy::energy(cfg, &prog, &rep.counters, &sim::energy::EnergyTable::default());
    let pj_per_mac = energy.total_pj / (spec.m * spec.k * spec.n) as f64;
    (rep.cycles(), rep.counters.get(Counter::DramReadBytes), prog.code.len(), busy, pj_per_mac)
}

/// Pseudo-random int8 weights, a `density` fraction of them non-zero
/// (unstructured: each weight kept or zeroed by its own hash).
fn weights(k: usize, n: usize, density: f64) -> Vec<i8> {
    (0..k * n)
        .map(|i| {
            let h = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let keep = ((h >> 40) as f64 / (1u64 << 24) as f64) < density;
            let v = (i.wrapping_mul(2654435761) >> 7) as i8;
            if !keep {
                0
            } else if v == 0 {
                1
            } else {
                v
            }
        })
        .collect()
}

fn main() {
    let default = HwConfig::default_16x16();
    println!(
        "{:>16} {:>10} {:>10} {:>7} {:>7} {:>11} {:>13}",
        "GEMV 1xKxN", "cycles", "floor", "ratio", "instrs", "array busy", "bus B / wts B"
    );
    for &(k, n) in &[(2048, 2048), (2048, 8192), (8192, 2048), (8192, 8192)] {
        let mut cfg = default.clone();
        if k * n >= 64 << 20 {
            cfg.dram.size_mib = 128;
            cfg.validate().expect("a valid config");
        }
        let spec = GemmSpec {
            m: 1,
            k,
            n,
            weights: (0..k * n).map(|i| (i.wrapping_mul(2654435761) >> 7) as i8).collect(),
            input_unsigned: false,
            output: GemmOutput::Int32,
        };
        let (cycles, read, instrs, busy, _) = run(&spec, &cfg, WeightChoice::Dense);
        let floor = (k * n) as f64 / cfg.dram.bytes_per_cycle as f64;
        println!(
            "{:>16} {:>10} {:>10} {:>7.3} {:>7} {:>10.1}% {:>13.4}",
            format!("1x{k}x{n}"),
            cycles,
            floor as u64,
            cycles as f64 / floor,
            instrs,
            100.0 * busy,
            read as f64 / (k * n) as f64
        );
    }

    // Unstructured sparsity: the same weights dense (`--weights dense`) and
    // as a compressed stream (`auto`), outputs checked against the reference.
    println!();
    println!(
        "{:>22} {:>8} {:>10} {:>10} {:>7} {:>12} {:>12} {:>7} {:>13}",
        "1x2048x2048 sparse",
        "density",
        "dense cyc",
        "stream cyc",
        "ratio",
        "dense rd B",
        "stream rd B",
        "ratio",
        "pJ/MAC d / s"
    );
    let mut slow = default.clone();
    slow.dram.bytes_per_cycle = 8;
    slow.validate().expect("a valid config");
    for (name, cfg) in [("default (16 B/cycle)", &default), ("8 B/cycle DRAM", &slow)] {
        for density in [0.25, 0.5, 0.75, 0.875] {
            let (k, n) = (2048, 2048);
            let spec = GemmSpec {
                m: 1,
                k,
                n,
                weights: weights(k, n, density),
                input_unsigned: false,
                output: GemmOutput::Int32,
            };
            let (dc, dr, _, _, de) = run(&spec, cfg, WeightChoice::Dense);
            let (sc, sr, _, _, se) = run(&spec, cfg, WeightChoice::Auto);
            println!(
                "{:>22} {:>8.3} {:>10} {:>10} {:>7.3} {:>12} {:>12} {:>7.3} {:>6.2} / {:>4.2}",
                name,
                density,
                dc,
                sc,
                sc as f64 / dc as f64,
                dr,
                sr,
                sr as f64 / dr as f64,
                de,
                se
            );
        }
    }
}
