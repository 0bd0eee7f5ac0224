//! Element-wise unary ops and requantizing Concat end to end against ONNX
//! Runtime: small CNNs with Sigmoid, Tanh, HardSigmoid, HardSwish,
//! LeakyRelu and Clip, and an Inception-style block whose four branches
//! have their own scales before a Concat, quantized by ORT in QOperator and
//! QDQ form with int8 and uint8 activations
//! (`tools/ort-fixtures/lut_models.py`, data in
//! `compiler/tests/data/lut_models/`). Each is compiled for the 4x4 and
//! the 16x16 configurations and run on the cycle-accurate model; its float
//! outputs, and the reference interpreter's, must equal ORT's bit for bit.
//! A third model chains nearest Resizes in every coordinate transformation
//! and nearest mode, up and down, by scales and by sizes.

mod common;
use common::npy_f32;
use compiler::interp::{self, Tensor};
use driver::Driver;
use isa::HwConfig;
use std::path::{Path, PathBuf};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("compiler/tests/data/lut_models")
}

fn check(model: &str) {
    let (xs, x) = npy_f32(&data().join("x.npy"));
    let samples = xs[0] as usize;
    let per_in = x.len() / samples;
    for act in ["i8", "u8"] {
        for form in ["qop", "qdq"] {
            let name = format!("{model}_{act}_{form}");
            let bytes = std::fs::read(data().join(format!("{name}.onnx"))).unwrap();
            let graph = compiler::onnx::import(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            let luts = graph.nodes.iter().filter(|n| matches!(n.op, compiler::ir::Op::Lut(_))).count();
            let resizes = graph.nodes.iter().filter(|n| matches!(n.op, compiler::ir::Op::Resize { .. })).count();
            assert!(luts + resizes > 0, "{name}: no table op or resize imported");
            // Concat inputs quantized differently from the output (requantized).
            let requantized: usize = graph
                .nodes
                .iter()
                .filter(|n| matches!(n.op, compiler::ir::Op::Concat { .. }))
                .map(|n| {
                    n.inputs.iter().filter(|&&i| graph.values[i].quant != graph.values[n.outputs[0]].quant).count()
                })
                .sum();
            assert!(model != "inception" || requantized > 0, "{name}: the Concat requantizes nothing");
            let (_, want) = npy_f32(&data().join(format!("{name}_y.npy")));
            let per_out = want.len() / samples;
            let in_shape = graph.values[graph.inputs[0]].shape.clone();
            for cfg in [HwConfig::tiny_4x4(), HwConfig::default_16x16()] {
                let lowered =
                    compiler::lower::lower(&graph, &cfg).unwrap_or_else(|e| panic!("{name} {}: {e}", cfg.name));
                let mut d = Driver::new(sim::Model::new(&cfg).unwrap());
                d.load(&lowered.program).unwrap();
                let mut cycles = 0;
                for i in 0..samples {
                    let image = &x[i * per_in..(i + 1) * per_in];
                    let ort = &want[i * per_out..(i + 1) * per_out];
                    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                    let got = d.infer(&lowered.program, image).unwrap();
                    cycles = got.report.cycles();
                    assert_eq!(
                        bits(&got.output),
                        bits(ort),
                        "{name} {} sample {i}: accelerator vs ONNX Runtime",
                        cfg.name
                    );
                    let r = interp::run(&graph, &[Tensor::float(in_shape.clone(), image.to_vec())]).unwrap();
                    let interp_out = r[graph.outputs[0]].as_float().unwrap();
                    assert_eq!(bits(interp_out), bits(ort), "{name} sample {i}: interpreter vs ONNX Runtime");
                }
                println!(
                    "{name} on {}: {luts} table ops, {requantized} requantized concat inputs, {samples} samples bit-identical to ORT, {cycles} cycles",
                    cfg.name
                );
            }
        }
    }
}

#[test]
fn unary_ops_match_onnx_runtime_bit_for_bit() {
    check("unary");
}

#[test]
fn inception_block_with_requantizing_concat_matches_onnx_runtime_bit_for_bit() {
    check("inception");
}

#[test]
fn nearest_resize_in_every_mode_matches_onnx_runtime_bit_for_bit() {
    check("resize");
}
