//! End to end on the shared digits models (quantized by ONNX Runtime, one
//! of them pruned 2:4): import each model in QOperator and QDQ form,
//! compile it for the 16x16 default, run it on the cycle-accurate model
//! through the driver, and require
//! - the float logits of the 32 reference images to equal ONNX Runtime's
//!   bit for bit, and the reference interpreter's too;
//! - the accuracy over the 297 test images to equal ONNX Runtime's int8
//!   accuracy in `summary.json`.

mod common;
use common::{argmax, npy_f32, npy_i64};
use compiler::interp::{self, Tensor};
use driver::Driver;
use isa::HwConfig;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("compiler/tests/data/digits")
}

const MODELS: [&str; 3] = ["mlp_dense", "cnn_dense", "cnn_nm24"];

fn summary_accuracy(model: &str) -> f64 {
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(data().join("summary.json")).unwrap()).unwrap();
    s["models"][model]["ort_int8_qop_acc_optall"].as_f64().expect("accuracy in summary.json")
}

struct Compiled {
    graph: compiler::ir::Graph,
    program: isa::program::Program,
    input_shape: Vec<usize>,
}

fn compile(model: &str, form: &str, cfg: &HwConfig) -> Compiled {
    let path = data().join(model).join(format!("int8_{form}.onnx"));
    let bytes = std::fs::read(&path).unwrap();
    let t0 = Instant::now();
    let graph = compiler::onnx::import(&bytes).unwrap_or_else(|e| panic!("{model} {form}: {e}"));
    let lowered = compiler::lower::lower(&graph, cfg).unwrap_or_else(|e| panic!("{model} {form}: {e}"));
    println!(
        "{model} {form}: compiled in {:.1} ms, {} instructions",
        t0.elapsed().as_secs_f64() * 1e3,
        lowered.program.code.len()
    );
    let input_shape = graph.values[graph.inputs[0]].shape.clone();
    Compiled { graph, program: lowered.program, input_shape }
}

#[test]
fn reference_images_match_onnx_runtime_bit_for_bit() {
    let cfg = HwConfig::default_16x16();
    let (_, x) = npy_f32(&data().join("ref_x_f32.npy"));
    for model in MODELS {
        for form in ["qop", "qdq"] {
            let c = compile(model, form, &cfg);
            let (shape, want) = npy_f32(&data().join(model).join(format!("ref_int8_{form}/logits.npy")));
            let classes = shape[1] as usize;
            let mut d = Driver::new(sim::Model::new(&cfg).unwrap());
            d.load(&c.program).unwrap();
            let mut cycles = 0;
            for i in 0..32 {
                let image = &x[i * 64..(i + 1) * 64];
                let got = d.infer(&c.program, image).unwrap();
                cycles = got.report.cycles();
                let reference = interp::run(&c.graph, &[Tensor::float(c.input_shape.clone(), image.to_vec())]).unwrap();
                let interp_out = reference[c.graph.outputs[0]].as_float().unwrap().to_vec();
                let ort = &want[i * classes..(i + 1) * classes];
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got.output), bits(ort), "{model} {form} image {i}: accelerator vs ONNX Runtime");
                assert_eq!(bits(&interp_out), bits(ort), "{model} {form} image {i}: interpreter vs ONNX Runtime");
            }
            println!("{model} {form}: 32 images bit-identical to ORT, {cycles} cycles per inference");
        }
    }
}

/// cnn_nm24 on an array with 2:4-sparse PEs (`examples/hw/sparse24.toml`):
/// its conv2 runs on i8s24 tiles, and the logits stay ONNX Runtime's bit
/// for bit in both forms.
#[test]
fn cnn_nm24_on_2_4_tiles_matches_onnx_runtime_bit_for_bit() {
    let toml = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hw/sparse24.toml"));
    let cfg = HwConfig::from_toml(&toml.unwrap()).unwrap();
    let (_, x) = npy_f32(&data().join("ref_x_f32.npy"));
    for form in ["qop", "qdq"] {
        let c = compile("cnn_nm24", form, &cfg);
        let sparse = c
            .program
            .meta
            .layers
            .iter()
            .filter(|l| systole::flow::layers::weight_format(&c.program, l.first, l.last) == Some("i8s24"));
        let names: Vec<&str> = sparse.map(|l| l.name.as_str()).collect();
        assert!(names.len() == 1 && names[0].starts_with("/conv2/Conv"), "{form}: {names:?}");
        let (shape, want) = npy_f32(&data().join("cnn_nm24").join(format!("ref_int8_{form}/logits.npy")));
        let classes = shape[1] as usize;
        let mut d = Driver::new(sim::Model::new(&cfg).unwrap());
        d.load(&c.program).unwrap();
        for i in 0..32 {
            let got = d.infer(&c.program, &x[i * 64..(i + 1) * 64]).unwrap();
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got.output), bits(&want[i * classes..(i + 1) * classes]), "{form} image {i}");
        }
    }
}

#[test]
fn test_set_accuracy_equals_onnx_runtime() {
    let cfg = HwConfig::default_16x16();
    let (_, x) = npy_f32(&data().join("test_x_f32.npy"));
    let y = npy_i64(&data().join("test_y.npy"));
    for model in MODELS {
        let c = compile(model, "qop", &cfg);
        let mut d = Driver::new(sim::Model::new(&cfg).unwrap());
        d.load(&c.program).unwrap();
        let correct = (0..y.len())
            .filter(|&i| argmax(&d.infer(&c.program, &x[i * 64..(i + 1) * 64]).unwrap().output) as i64 == y[i])
            .count();
        let acc = correct as f64 / y.len() as f64;
        let ort = summary_accuracy(model);
        println!("{model}: accuracy {acc:.4} ({correct}/{}), ONNX Runtime int8 {ort:.4}", y.len());
        assert!((acc - ort).abs() < 1e-9, "{model}: accuracy {acc} differs from ONNX Runtime's {ort}");
    }
}
