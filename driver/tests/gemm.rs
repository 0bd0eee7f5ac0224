use compiler::gemm::{lower_gemm, reference_gemm, GemmOutput, GemmSpec, INPUT, OUTPUT};
use driver::{Driver, Outcome};
use isa::HwConfig;

fn run_gemm(cfg: &HwConfig, spec: &GemmSpec, a: &[u8]) -> (Vec<i32>, driver::RunReport) {
    let prog = lower_gemm(spec, cfg).expect("lowers");
    let mut d = Driver::new(sim::Model::new(cfg).unwrap());
    d.load(&prog).unwrap();
    d.write_tensor(prog.tensor(INPUT).unwrap(), a).unwrap();
    let rep = d.run().unwrap();
    assert_eq!(rep.outcome, Outcome::Done, "{:?}", rep.outcome);
    let out_t = prog.tensor(OUTPUT).unwrap().clone();
    let bytes = d.read_tensor(&out_t).unwrap();
    let out = match spec.output {
        GemmOutput::Int32 => bytes.chunks(4).map(|c| i32::from_le_bytes(c.try_into().unwrap())).collect(),
        _ => bytes.iter().map(|&b| b as i8 as i32).collect(),
    };
    (out, rep)
}

#[test]
fn small_gemms_match_reference() {
    for cfg in [HwConfig::tiny_4x4(), HwConfig::default_16x16()] {
        for &(m, k, n) in &[(4, 4, 4), (5, 7, 9), (33, 20, 18), (64, 64, 64)] {
            for int8 in [false, true] {
                let weights: Vec<i8> = (0..k * n).map(|i| ((i * 37 + 11) % 255) as i8).collect();
                let a: Vec<u8> = (0..m * k).map(|i| ((i * 53 + 7) % 256) as u8).collect();
                let output = if int8 {
                    GemmOutput::Int8 {
                        bias: (0..n).map(|c| c as i32 * 100 - 300).collect(),
                        scale: (0..n).map(|c| 0.0007 + c as f32 * 0.0001).collect(),
                        zero_point: -3,
                        qmin: -128,
                        qmax: 127,
                    }
                } else {
                    GemmOutput::Int32
                };
                let spec = GemmSpec { m, k, n, weights, input_unsigned: false, output };
                let (out, rep) = run_gemm(&cfg, &spec, &a);
                assert_eq!(out, reference_gemm(&spec, &a), "{} {m}x{k}x{n} int8={int8}", cfg.name);
                println!("{} {m}x{k}x{n} int8={int8}: {} cycles", cfg.name, rep.cycles());
            }
        }
    }
}

#[test]
fn zero_weight_tiles_are_skipped() {
    // Block-structured pruning: every other 16x16 weight tile is zero (and
    // one whole n-tile column), so those tiles are never streamed.
    let cfg = HwConfig::default_16x16();
    let (m, k, n) = (40, 96, 64);
    let weights: Vec<i8> = (0..k * n)
        .map(|i| {
            let (r, c) = (i / n, i % n);
            let zero = (r / 16 + c / 16) % 2 == 1 || c / 16 == 2;
            if zero {
                0
            } else {
                ((i * 37 + 11) % 255) as i8
            }
        })
        .collect();
    let a: Vec<u8> = (0..m * k).map(|i| ((i * 53 + 7) % 256) as u8).collect();
    for output in [
        GemmOutput::Int32,
        GemmOutput::Int8 { bias: (0..n as i32).collect(), scale: vec![0.001; n], zero_point: 5, qmin: -128, qmax: 127 },
    ] {
        let spec = GemmSpec { m, k, n, weights: weights.clone(), input_unsigned: false, output };
        let (out, rep) = run_gemm(&cfg, &spec, &a);
        assert_eq!(out, reference_gemm(&spec, &a));
        let macs = rep.counters.get(isa::Counter::Macs);
        assert!(macs < (m * k * n) as u64 / 2, "{macs} MACs: zero tiles were streamed");
    }
}
