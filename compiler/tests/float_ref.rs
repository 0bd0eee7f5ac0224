//! The float reference (`compiler::onnx::float`) against ONNX Runtime's fp32
//! logits of the digits models (tests/data/digits/*/ref_fp32_logits.npy,
//! ORT 1.32 on the 32 reference images), and its errors.
//!
//! Tolerance: |ours − ORT| ≤ 1e-5 · (1 + |ORT|) per logit. The float
//! reference sums products in f64 and rounds once; ORT sums in f32 in its
//! own blocked order, so the two differ by ORT's rounding, a few ulps of
//! the partial sums (measured: at most 1.4e-5 absolute, on cnn_dense;
//! 5.7e-6 on the MLP). Top-1 agrees on every image.

use std::path::{Path, PathBuf};

use compiler::onnx::float::{is_float_model, FloatModel};
use compiler::onnx::proto::ModelProto;
use prost::Message;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/digits")
}

fn npy_f32(path: &Path) -> (Vec<u64>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let f = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = f.shape().to_vec();
    (shape, f.into_vec::<f32>().unwrap())
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len()).fold(0, |best, i| if v[i] > v[best] { i } else { best })
}

const MODELS: [&str; 3] = ["mlp_dense", "cnn_dense", "cnn_nm24"];

#[test]
fn digits_fp32_logits_match_onnx_runtime() {
    let (xs, x) = npy_f32(&data().join("ref_x_f32.npy"));
    assert_eq!(xs, [32, 64]);
    for model in MODELS {
        let bytes = std::fs::read(data().join(model).join("fp32.onnx")).unwrap();
        assert!(is_float_model(&bytes), "{model}");
        let m = FloatModel::load(&bytes).unwrap_or_else(|e| panic!("{model}: {e}"));
        let want_in: &[usize] = if model.starts_with("cnn") { &[1, 1, 8, 8] } else { &[1, 64] };
        assert_eq!(m.input_shape(), want_in, "{model}");
        assert_eq!(m.output_shape(), [1, 10], "{model}");
        let (shape, want) = npy_f32(&data().join(model).join("ref_fp32_logits.npy"));
        assert_eq!(shape, [32, 10]);
        let mut worst = 0.0f32;
        for i in 0..32 {
            let got = m.run(&x[i * 64..(i + 1) * 64]).unwrap();
            let ort = &want[i * 10..(i + 1) * 10];
            for (g, w) in got.iter().zip(ort) {
                assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "{model} image {i}: {g} vs ORT {w}");
                worst = worst.max((g - w).abs());
            }
            assert_eq!(argmax(&got), argmax(ort), "{model} image {i}");
        }
        println!("{model}: max |float reference - ORT fp32| = {worst:e}");
    }
}

#[test]
fn parameter_bytes_count_every_float_weight() {
    // Every initializer of the digits models is a float weight or bias.
    for model in MODELS {
        let bytes = std::fs::read(data().join(model).join("fp32.onnx")).unwrap();
        let proto = ModelProto::decode(&bytes[..]).unwrap();
        let elements: i64 = proto.graph.unwrap().initializer.iter().map(|t| t.dims.iter().product::<i64>()).sum();
        assert_eq!(FloatModel::load(&bytes).unwrap().parameter_bytes(), 4 * elements as u64, "{model}");
    }
}

#[test]
fn quantized_models_are_not_float_and_unknown_ops_are_named() {
    for form in ["int8_qdq", "int8_qop"] {
        let bytes = std::fs::read(data().join("cnn_dense").join(format!("{form}.onnx"))).unwrap();
        assert!(!is_float_model(&bytes), "{form}");
        let e = FloatModel::load(&bytes).unwrap_err().to_string();
        assert!(e.contains("is not supported") || e.contains("float reference"), "{form}: {e}");
    }
    // The MLP with its first Relu renamed to an op the reference lacks.
    let bytes = std::fs::read(data().join("mlp_dense/fp32.onnx")).unwrap();
    let mut proto = ModelProto::decode(&bytes[..]).unwrap();
    let g = proto.graph.as_mut().unwrap();
    let relu = g.node.iter_mut().find(|n| n.op_type() == "Relu").unwrap();
    relu.op_type = Some("Selu".into());
    let e = FloatModel::load(&proto.encode_to_vec()).unwrap_err().to_string();
    assert_eq!(e, "node `/Relu`: operator Selu is not supported");
}
