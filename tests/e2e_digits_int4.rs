//! End to end on the shared int4 digits models (`digits_int4`: ONNX
//! Runtime's QDQ at opset 21, INT4 weights per output channel, and the
//! mixed variants with one int4 layer between int8 ones): import each,
//! compile it for the 16x16 default with int4 weights, run it on the
//! cycle-accurate model through the driver, and require
//! - the float logits of the 32 reference images to equal ONNX Runtime's
//!   bit for bit, and the reference interpreter's too, every layer checked
//!   against the interpreter on the way (`systole run --check`);
//! - the int4 layers, and only they, to be stored and loaded as int4 (i4
//!   tiles), their weights in half the bytes of the same model stored int8,
//!   the int8 layers unchanged;
//! - the accuracy over the 297 test images to equal ONNX Runtime's.

mod common;
use common::{argmax, npy_f32, npy_i64};
use compiler::interp::{self, Tensor};
use compiler::ir::{Op, WeightType};
use driver::Driver;
use isa::config::WeightPrecision;
use isa::HwConfig;
use std::path::{Path, PathBuf};
use systole::flow::backend::Comparison;
use systole::flow::check::Checker;
use systole::flow::infer::{run_batch, Batch, HostData};
use systole::flow::Compiled;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("compiler/tests/data")
}

/// (model, variant, its int4 layers).
const VARIANTS: [(&str, &str, &[&str]); 4] = [
    ("mlp_dense", "int4_qdq", &["/fc1/Gemm", "/fc2/Gemm", "/fc3/Gemm"]),
    ("mlp_dense", "mixed_qdq", &["/fc2/Gemm"]),
    ("cnn_dense", "int4_qdq", &["/conv1/Conv", "/conv2/Conv", "/fc/Gemm"]),
    ("cnn_dense", "mixed_qdq", &["/conv2/Conv"]),
];

fn int4_config() -> HwConfig {
    let mut cfg = HwConfig::default_16x16();
    cfg.array.weight_precisions.push(WeightPrecision::Int4);
    cfg
}

fn import(model: &str, variant: &str) -> compiler::ir::Graph {
    let path = data().join("digits_int4").join(model).join(format!("{variant}.onnx"));
    compiler::onnx::import(&std::fs::read(&path).unwrap()).unwrap_or_else(|e| panic!("{model} {variant}: {e}"))
}

/// The weight types of the graph's conv and dense layers, by node name.
fn weight_types(g: &compiler::ir::Graph) -> Vec<(String, WeightType)> {
    g.nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::Conv(c) => Some((n.name.clone(), c.w_type)),
            Op::Dense(d) => Some((n.name.clone(), d.w_type)),
            _ => None,
        })
        .collect()
}

#[test]
fn int4_layers_are_imported_as_the_model_declares_them() {
    for (model, variant, int4) in VARIANTS {
        let g = import(model, variant);
        let types = weight_types(&g);
        assert_eq!(types.len(), 3, "{model} {variant}: {types:?}");
        for (name, ty) in &types {
            let want = if int4.contains(&name.as_str()) { WeightType::I4 } else { WeightType::I8 };
            assert_eq!(*ty, want, "{model} {variant}: layer {name}");
        }
        // ORT's symmetric int4 uses the full range -8..=7.
        let all: Vec<i8> = g
            .nodes
            .iter()
            .filter_map(|n| match &n.op {
                Op::Conv(c) if c.w_type == WeightType::I4 => Some(c.weights.clone()),
                Op::Dense(d) if d.w_type == WeightType::I4 => Some(d.weights.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!((all.iter().min(), all.iter().max()), (Some(&-8), Some(&7)), "{model} {variant}");
    }
}

#[test]
fn reference_images_match_onnx_runtime_bit_for_bit() {
    let cfg = int4_config();
    let (_, x) = npy_f32(&data().join("digits/ref_x_f32.npy"));
    for (model, variant, int4) in VARIANTS {
        let g = import(model, variant);
        let lowered = compiler::lower::lower(&g, &cfg).unwrap_or_else(|e| panic!("{model} {variant}: {e}"));
        let prog = &lowered.program;
        let input_shape = g.values[g.inputs[0]].shape.clone();
        // Only the int4 layers' tiles are i4.
        let i4_layers: Vec<&str> = lowered
            .layers
            .iter()
            .filter(|l| {
                prog.code[l.first..l.last].iter().any(|i| match i {
                    isa::Instr::Ldw(w) => w.wfmt == isa::instr::WFMT_I4,
                    isa::Instr::Matmul(m) => m.preload != 0 && m.wfmt == isa::instr::WFMT_I4,
                    _ => false,
                })
            })
            .map(|l| l.name.as_str())
            .collect();
        assert_eq!(i4_layers, int4, "{model} {variant}: the layers with i4 tiles");

        let (shape, want) = npy_f32(&data().join(format!("digits_int4/{model}/ref_{variant}/logits.npy")));
        let classes = shape[1] as usize;
        let mut d = Driver::new(sim::Model::new(&cfg).unwrap());
        d.load(prog).unwrap();
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        let mut cycles = 0;
        for i in 0..32 {
            let image = &x[i * 64..(i + 1) * 64];
            let got = d.infer(prog, image).unwrap();
            cycles = got.report.cycles();
            let reference = interp::run(&g, &[Tensor::float(input_shape.clone(), image.to_vec())]).unwrap();
            let interp_out = reference[g.outputs[0]].as_float().unwrap().to_vec();
            let ort = &want[i * classes..(i + 1) * classes];
            assert_eq!(bits(&got.output), bits(ort), "{model} {variant} image {i}: accelerator vs ONNX Runtime");
            assert_eq!(bits(&interp_out), bits(ort), "{model} {variant} image {i}: interpreter vs ONNX Runtime");
        }

        // Every layer against the interpreter (the recorded graph, its
        // weights unpacked from the program's int4 bytes), as `run --check`.
        let recorded = compiler::ir_codec::decode_with_data(&prog.meta.graph, &prog.data).unwrap();
        assert!(recorded == g, "{model} {variant}: the recorded graph is not the model");
        let checker = Checker::new(recorded, "test", &lowered.layers).unwrap();
        let input = prog.tensors.iter().find(|t| t.role == isa::program::TensorRole::Input).unwrap();
        let shape: Vec<u64> = std::iter::once(4).chain(input_shape.iter().map(|&v| v as u64)).collect();
        let batch = Batch::new(&shape, HostData::F32(x[..4 * 64].to_vec()), input, "input").unwrap();
        let model_run = Compiled { prog, layers: &lowered.layers, cfg: &cfg };
        run_batch(&mut d, model_run, &batch, Some(&checker), &Comparison::default(), || {})
            .unwrap_or_else(|e| panic!("{model} {variant}: --check: {e}"));

        // The int4 layers' weights take half the bytes of int8 ones.
        let stored = systole::flow::layers::stored_weights(prog, &lowered.layers);
        let int8 = compiler::lower::lower(&g, &HwConfig::default_16x16()).unwrap();
        let stored8 = systole::flow::layers::stored_weights(&int8.program, &int8.layers);
        for (l, (s4, s8)) in lowered.layers.iter().zip(stored.iter().zip(&stored8)) {
            let (Some(s4), Some(s8)) = (s4, s8) else { continue };
            if int4.contains(&l.name.as_str()) {
                assert!(s4.format.name().starts_with("i4"), "{model} {variant} {}: {:?}", l.name, s4.format);
                assert!(2 * s4.bytes <= s8.bytes, "{model} {variant} {}: {} vs {} bytes", l.name, s4.bytes, s8.bytes);
            } else {
                assert_eq!(s4, s8, "{model} {variant} {}: an int8 layer is stored as without int4", l.name);
            }
        }
        println!("{model} {variant}: 32 images bit-identical to ORT, {cycles} cycles per inference");
    }
}

#[test]
fn test_set_accuracy_equals_onnx_runtime() {
    let cfg = int4_config();
    let (_, x) = npy_f32(&data().join("digits/test_x_f32.npy"));
    let y = npy_i64(&data().join("digits/test_y.npy"));
    for (model, variant, _) in VARIANTS {
        let g = import(model, variant);
        let prog = compiler::lower::lower(&g, &cfg).unwrap().program;
        let mut d = Driver::new(sim::Model::new(&cfg).unwrap());
        d.load(&prog).unwrap();
        let correct = (0..y.len())
            .filter(|&i| argmax(&d.infer(&prog, &x[i * 64..(i + 1) * 64]).unwrap().output) as i64 == y[i])
            .count();
        let acc = correct as f64 / y.len() as f64;
        let summary = data().join(format!("digits_int4/{model}/summary.json"));
        let s: serde_json::Value = serde_json::from_slice(&std::fs::read(summary).unwrap()).unwrap();
        let ort = s["test_accuracy_297"][format!("{variant} (optall)")].as_f64().expect("accuracy in summary.json");
        println!("{model} {variant}: accuracy {acc:.4} ({correct}/{}), ONNX Runtime {ort:.4}", y.len());
        assert!((acc - ort).abs() < 1e-9, "{model} {variant}: accuracy {acc} differs from ONNX Runtime's {ort}");
    }
}
