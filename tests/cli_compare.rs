//! `systole compare` end to end on the digits models: the float CNN (on the
//! host's float reference) against its int8 forms, the 2:4-pruned CNN and
//! the MLP (a student of another architecture), on the 297 test digits
//! with labels; accuracies against ONNX Runtime's (summary.json) and
//! against what `systole run` gives; agreement rows consistent; the JSON
//! against its schema, the CSV; and bad input: a missing or broken model
//! (nothing written), samples or outputs of the wrong shape, bad labels.

mod common;
use common::schema::validate;
use common::*;
use serde_json::Value;
use std::path::Path;

fn digits(rel: &str) -> String {
    root().join("compiler/tests/data/digits").join(rel).display().to_string()
}

fn summary(model: &str, key: &str) -> f64 {
    let s: Value = serde_json::from_slice(&std::fs::read(digits("summary.json")).unwrap()).unwrap();
    s["models"][model][key].as_f64().unwrap_or_else(|| panic!("{model}.{key} in summary.json"))
}

fn labels() -> Vec<i64> {
    let bytes = std::fs::read(digits("test_y.npy")).unwrap();
    npyz::NpyFile::new(&bytes[..]).unwrap().into_vec::<i64>().unwrap()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn digits_fp32_against_int8_pruned_and_a_student() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hw = root().join("examples/hw/default.toml").display().to_string();
    let models = [
        digits("cnn_dense/fp32.onnx"),
        digits("cnn_dense/int8_qdq.onnx"),
        digits("cnn_dense/int8_qop.onnx"),
        digits("cnn_nm24/int8_qop.onnx"),
        digits("mlp_dense/int8_qop.onnx"),
    ];
    let (x, y) = (digits("test_x_f32.npy"), digits("test_y.npy"));
    let mut args = vec!["compare"];
    args.extend(models.iter().map(String::as_str));
    args.extend(["--hw", &hw, "--input", &x, "--labels", &y, "--json", "c.json", "--csv", "c.csv"]);
    let o = systole(d, &args);
    assert_ok(&o);
    let text = stdout(&o);
    println!("{text}");

    let c = read_json(&d.join("c.json"));
    let errors = validate(&read_json(&root().join("docs/schema/compare.schema.json")), &c);
    assert!(errors.is_empty(), "compare --json breaks its schema:\n{}", errors.join("\n"));
    assert_eq!(c["samples"], 297);
    let rows = c["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    let (fp32, qdq, qop, nm24, mlp) = (&rows[0], &rows[1], &rows[2], &rows[3], &rows[4]);

    // The float base on the host: ORT's fp32 accuracy, no device figures.
    assert_eq!((fp32["base"].as_bool(), fp32["runs_on"].as_str()), (Some(true), Some("host")));
    assert!(fp32["device"].is_null());
    assert_eq!(f(&fp32["top1_accuracy"]), summary("cnn_dense", "ort_fp32_acc"));
    assert_eq!(f(&fp32["top1_agreement"]), 1.0);
    assert!((f(&fp32["cosine_mean"]) - 1.0).abs() < 1e-12);
    // 9,930 float parameters: conv1 16x1x3x3+16, conv2 32x16x3x3+32, fc 10x512+10.
    assert_eq!(fp32["weight_bytes"], 4 * 9930);

    // int8 (bit-exact with ORT): ORT's int8 accuracy and agreement with fp32.
    for (row, model) in [(qdq, "cnn_dense"), (qop, "cnn_dense"), (nm24, "cnn_nm24")] {
        assert_eq!(row["runs_on"], "accelerator");
        assert_eq!(f(&row["top1_accuracy"]), summary(model, "ort_int8_qop_acc_optall"), "{model}");
        // int8 weights 1 byte, int32 biases 4: 9,872 + 4 x 58.
        assert_eq!(row["weight_bytes"], 9872 + 4 * 58, "{model}");
        let dev = &row["device"];
        assert!(f(&dev["cycles_per_inference"]) > 1000.0 && f(&dev["energy_uj_per_inference"]) > 0.0, "{dev}");
        assert!(dev["peak_memory_bytes"].as_u64().unwrap() >= dev["program_data_bytes"].as_u64().unwrap());
        assert!(f(&row["cosine_mean"]) > 0.99, "{model}: {}", row["cosine_mean"]);
    }
    assert_eq!(f(&qop["top1_agreement"]), summary("cnn_dense", "ort_int8_qop_argmax_agrees_with_fp32"));
    // The QDQ and QOperator forms import to one graph: one program, one row.
    for key in ["top1_accuracy", "top1_agreement", "cosine_mean", "weight_bytes", "device"] {
        assert_eq!(qdq[key], qop[key], "{key}");
    }
    // The student: the MLP's own (ORT) accuracy, agreeing with the teacher on most digits.
    assert_eq!(f(&mlp["top1_accuracy"]), summary("mlp_dense", "ort_int8_qop_acc_optall"));
    assert_eq!(mlp["input_shape"], serde_json::json!([1, 64]));
    let agree = f(&mlp["top1_agreement"]);
    assert!((0.85..1.0).contains(&agree), "{agree}");

    // The int8 CNN's top-1 is what `systole run` computes on the same digits.
    let (shape, data) = npy_f32(Path::new(&x));
    write_npy(&d.join("batch.npy"), &[shape[0], 1, 1, 8, 8], &data);
    assert_ok(&systole(d, &["compile", &models[2], "--hw", &hw, "-o", "cnn.sbin"]));
    assert_ok(&systole(d, &["run", "cnn.sbin", "--input", "batch.npy", "--out", "out", "--json", "r.json"]));
    let (_, logits) = npy_f32(&d.join("out/logits.npy"));
    let y = labels();
    let hits = (0..297).filter(|&i| argmax(&logits[i * 10..(i + 1) * 10]) as i64 == y[i]).count();
    assert_eq!(f(&qop["top1_accuracy"]), hits as f64 / 297.0);
    let run = read_json(&d.join("r.json"));
    assert_eq!(f(&qop["device"]["cycles_per_inference"]), f(&run["per_inference"]["cycles_mean"]));
    assert_eq!(f(&qop["device"]["energy_uj_per_inference"]), f(&run["per_inference"]["energy_uj"]));

    // The table: every model, `host` for the float row's hardware columns.
    for m in &models {
        assert!(text.contains(m.as_str()), "{m} missing:\n{text}");
    }
    let base_line = text.lines().find(|l| l.contains("(base)")).unwrap();
    assert!(base_line.contains("93.60%") && base_line.matches("host").count() == 6, "{base_line}");
    // The CSV: a header and a line per model, the host row's device fields empty.
    let csv = std::fs::read_to_string(d.join("c.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 6);
    assert!(lines[0].starts_with("model,base,runs_on,top1_accuracy,"));
    assert!(lines[1].ends_with(",,,,,,,,") && lines[1].contains(",true,host,"), "{}", lines[1]);
}

/// Weight bytes as the compiled program stores them, on a configuration
/// with 2:4 PEs and int4 weights (the README's trade-off table): int8 one
/// byte a weight, int4 a half, a 2:4 layer five eighths (kept values and
/// positions); biases 4 bytes. The dense, 2:4 and int4 digits CNNs.
#[test]
fn weight_bytes_follow_the_stored_format() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let int4 = root().join("compiler/tests/data/digits_int4/cnn_dense/int4_qdq.onnx").display().to_string();
    let hw = root().join("examples/hw/compressed.toml").display().to_string();
    let (dense, nm24, x) =
        (digits("cnn_dense/int8_qop.onnx"), digits("cnn_nm24/int8_qop.onnx"), digits("ref_x_f32.npy"));
    let o = systole(d, &["compare", &dense, &nm24, &int4, "--hw", &hw, "--input", &x, "--json", "c.json"]);
    assert_ok(&o);
    let c = read_json(&d.join("c.json"));
    let rows = c["rows"].as_array().unwrap();
    let bytes: Vec<u64> = rows.iter().map(|r| r["weight_bytes"].as_u64().unwrap()).collect();
    // conv1 144 weights, conv2 4,608, fc 5,120; 58 biases. The pruned
    // CNN's conv2 runs on 2:4 tiles, its conv1 and fc on int8 ones.
    let biases = 4 * 58;
    assert_eq!(bytes, [9872 + biases, 144 + 4608 * 5 / 8 + 5120 + biases, (144 + 4608 + 5120) / 2 + biases]);
}

#[test]
fn without_labels_accuracy_is_agreement_with_the_base() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The 32 reference digits as [32, 1, 1, 8, 8]: the MLP takes them as [1, 64].
    let (_, x) = npy_f32(Path::new(&digits("ref_x_f32.npy")));
    write_npy(&d.join("x.npy"), &[32, 1, 1, 8, 8], &x);
    let (cnn, mlp) = (digits("cnn_dense/int8_qop.onnx"), digits("mlp_dense/int8_qdq.onnx"));
    let o = systole(d, &["compare", &cnn, &mlp, "--hw", "tiny", "--input", "x.npy", "--json", "c.json"]);
    assert_ok(&o);
    let text = stdout(&o);
    assert!(!text.contains("top-1") && text.contains("agree"), "{text}");
    let c = read_json(&d.join("c.json"));
    assert!(c["labels"].is_null());
    let rows = c["rows"].as_array().unwrap();
    for r in rows {
        assert!(r["top1_accuracy"].is_null());
        assert_eq!(r["runs_on"], "accelerator");
    }
    // The base agrees with itself; the student with the teacher on most.
    assert_eq!((f(&rows[0]["top1_agreement"]), f(&rows[0]["cosine_mean"])), (1.0, 1.0));
    let (agree, cosine) = (f(&rows[1]["top1_agreement"]), f(&rows[1]["cosine_mean"]));
    assert!((0.8..=1.0).contains(&agree) && (0.5..1.0).contains(&cosine), "{agree} {cosine}");
    assert_eq!(c["config"], "tiny-4x4");
}

#[test]
fn bad_models_samples_and_labels_are_errors_that_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (base, x, y) = (digits("cnn_dense/int8_qop.onnx"), digits("ref_x_f32.npy"), digits("ref_y.npy"));
    let outs = ["--json", "c.json", "--csv", "c.csv"];
    let compare = |models: &[&str], rest: &[&str]| {
        let mut args = vec!["compare"];
        args.extend_from_slice(models);
        args.extend(["--hw", "tiny", "--input"]);
        args.extend_from_slice(rest);
        args.extend(outs);
        systole(d, &args)
    };
    let absent = ["c.json", "c.csv"];

    // A missing variant, and one that does not compile: named, nothing written.
    let o = compare(&[&base, "missing.onnx"], &[&x]);
    assert_fails(&o, 2, &["missing.onnx", "no such file"], d, &absent);
    std::fs::write(d.join("broken.onnx"), b"not a model").unwrap();
    let o = compare(&[&base, "broken.onnx"], &[&x]);
    assert_fails(&o, 2, &["broken.onnx: not an ONNX model"], d, &absent);

    // Samples of another size than the model's input, named by model.
    write_npy(&d.join("x32.npy"), &[4, 32], &[0.0f32; 128]);
    let o = compare(&[&base], &["x32.npy"]);
    assert_fails(
        &o,
        2,
        &[&format!("{base}: its input has shape 1x1x8x8 (64 elements a sample)"), "32 elements"],
        d,
        &absent,
    );
    let mut nan = vec![0.0f32; 128];
    nan[70] = f32::NAN;
    write_npy(&d.join("nan.npy"), &[2, 64], &nan);
    let o = compare(&[&base], &["nan.npy"]);
    assert_fails(&o, 2, &["--input nan.npy: sample 1 element 6 is NaN (samples must be finite)"], d, &absent);
    // Quantized samples: compare quantizes per model.
    write_npy(&d.join("xi8.npy"), &[2, 64], &[0i8; 128]);
    let o = compare(&[&base], &["xi8.npy"]);
    assert_fails(&o, 2, &["xi8.npy: the array is i8", "float32"], d, &absent);

    // A variant whose output has another shape than the base's.
    let mut stm = String::from(
        "model four\ninput x: f32[1, 64]\nquantize q x -> xq: i8[1, 64] scale=0.0625 zp=-128\n\
         dense fc xq -> yq: i8[1, 4] scale=0.1 zp=0\n    weights: i8[4, 64] = [",
    );
    stm.push_str(&vec!["1"; 256].join(", "));
    stm.push_str("]\n    w_scale = [0.01, 0.01, 0.01, 0.01]\n    bias = [0, 0, 0, 0]\n");
    stm.push_str("dequantize dq yq -> y: f32[1, 4]\noutput y\n");
    std::fs::write(d.join("four.stm"), stm).unwrap();
    let o = compare(&[&base, "four.stm"], &[&x]);
    assert_fails(&o, 2, &["four.stm: its output has shape 1x4", "1x10", "the base's shape"], d, &absent);

    // Labels: too few, out of range, not integers.
    write_npy(&d.join("y5.npy"), &[5], &[0i64; 5]);
    let o = compare(&[&base], &[&x, "--labels", "y5.npy"]);
    assert_fails(&o, 2, &["--labels y5.npy: labels of shape 5", "32 samples"], d, &absent);
    write_npy(&d.join("y10.npy"), &[32], &[10i64; 32]);
    let o = compare(&[&base], &[&x, "--labels", "y10.npy"]);
    assert_fails(
        &o,
        2,
        &["--labels y10.npy: label 10 of sample 0 is not a class of the models' 10 outputs"],
        d,
        &absent,
    );
    write_npy(&d.join("yf.npy"), &[32], &[0.0f32; 32]);
    let o = compare(&[&base], &[&x, "--labels", "yf.npy"]);
    assert_fails(&o, 2, &["yf.npy: the array is f32", "integer class indices"], d, &absent);
    // The good labels pass.
    assert_ok(&compare(&[&base], &[&x, "--labels", &y]));
}
