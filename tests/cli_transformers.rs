//! Transformers end to end on the Rust model (issue 10): the bundled
//! ORT-quantized tinybert, tinybert_nm24 and tinygpt, both QDQ variants,
//! compiled and run with `--check` (every int8 and float32 layer and every
//! output equal to the reference interpreter bit for bit), embeddings and
//! masks gathered on the device (nothing runs on the host). Bad input
//! (issue 10, item 8) is a clear error, exit 2, no output file: a model
//! the device cannot run at compile time, naming node and reason; token
//! ids outside the vocabulary and mask values other than 0/1 at run time,
//! naming the input and the position (the device's `IndexOutOfRange`);
//! inputs of the wrong type, shape or name before anything runs.

mod common;

use common::*;
use std::path::PathBuf;

fn data() -> PathBuf {
    root().join("compiler/tests/data/transformers")
}

const MODELS: [(&str, &str); 5] = [
    ("tinybert", "int8_qdq"),
    ("tinybert", "int8_qdq_float_matmul_out"),
    ("tinygpt", "int8_qdq"),
    ("tinygpt", "int8_qdq_float_matmul_out"),
    ("tinybert_nm24", "int8_qdq_float_matmul_out"),
];

fn compile(dir: &std::path::Path, model: &str, variant: &str) -> PathBuf {
    let onnx = data().join(model).join(format!("{variant}.onnx"));
    let sbin = dir.join(format!("{model}_{variant}.sbin"));
    let hw = root().join("examples/hw/default.toml");
    let o =
        systole(dir, &["compile", "--hw", hw.to_str().unwrap(), onnx.to_str().unwrap(), "-o", sbin.to_str().unwrap()]);
    assert_ok(&o);
    sbin
}

/// The first `n` of the 16 reference sequences of `model`'s input `name`,
/// as a batch `[n, 1, 32]` (int64).
fn reference_inputs(dir: &std::path::Path, model: &str, name: &str, n: usize) -> PathBuf {
    let bytes = std::fs::read(data().join(model).join("inputs").join(format!("{name}.npy"))).unwrap();
    let f = npyz::NpyFile::new(&bytes[..]).unwrap();
    let seq = f.shape()[1];
    let all: Vec<i64> = f.into_vec().unwrap();
    let path = dir.join(format!("{model}_{name}.npy"));
    write_npy(&path, &[n as u64, 1, seq], &all[..n * seq as usize]);
    path
}

#[test]
fn bundled_transformers_run_with_check() {
    let dir = tempfile::tempdir().unwrap();
    for (model, variant) in MODELS {
        let sbin = compile(dir.path(), model, variant);
        let o = systole(dir.path(), &["run", sbin.to_str().unwrap(), "--check"]);
        assert_ok(&o);
        let out = stdout(&o);
        assert!(out.contains("agree with the reference interpreter bit for bit"), "{model} {variant}:\n{out}");
        assert!(out.contains("`last_hidden_state` 1x32x128 f32"), "{out}");
        // The embeddings (word, and token type for BERT; positions are
        // compile-time rows) and the masks are gathers on the device:
        // nothing runs on the host, only the int64 inputs are written.
        let inputs = if model == "tinygpt" { 1 } else { 3 };
        let written = format!("no op ran on the host: the inputs as given, {} bytes", inputs * 32 * 8);
        assert!(out.contains(&written) && !out.contains("ran on the host before"), "{model} {variant}:\n{out}");
        let gathers: Vec<&str> = out.lines().filter(|l| l.split_whitespace().nth(1) == Some("gather")).collect();
        let embeddings = gathers.iter().filter(|l| l.contains("embeddings") || l.contains("wte")).count();
        assert_eq!(embeddings, if model == "tinygpt" { 1 } else { 2 }, "{model} {variant}:\n{}", gathers.join("\n"));
        // BERT: the attention mask for the scores and for the mean pooling.
        assert_eq!(gathers.len() - embeddings, if model == "tinygpt" { 0 } else { 2 }, "{}", gathers.join("\n"));
    }
}

/// Two of the reference sequences (with padding) through tinybert, outputs
/// written by name with the batch dimension.
#[test]
fn tinybert_named_inputs_batch_and_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let sbin = compile(dir.path(), "tinybert", "int8_qdq");
    let mut args = vec!["run".to_string(), sbin.to_str().unwrap().to_string(), "--check".into()];
    for name in ["input_ids", "attention_mask", "token_type_ids"] {
        let p = reference_inputs(dir.path(), "tinybert", name, 2);
        args.push("--input".into());
        args.push(format!("{name}={}", p.display()));
    }
    args.extend(["--out".into(), "out".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = systole(dir.path(), &args);
    assert_ok(&o);
    let out = stdout(&o);
    assert!(out.contains("x 2 runs agree"), "{out}");
    for (name, shape) in [("last_hidden_state", vec![2u64, 1, 32, 128]), ("sentence_embedding", vec![2, 1, 128])] {
        let bytes = std::fs::read(dir.path().join("out").join(format!("{name}.npy"))).unwrap();
        let f = npyz::NpyFile::new(&bytes[..]).unwrap();
        assert_eq!(f.shape(), &shape[..], "{name}");
        let v: Vec<f32> = f.into_vec().unwrap();
        assert!(v.iter().all(|x| x.is_finite()) && v.iter().any(|&x| x != 0.0), "{name}");
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

/// Accuracy against ONNX Runtime on the device itself (issue 10, item 5):
/// every variant run on the model over the 16 reference sequences (as one
/// batch, `--check`: every layer equal to the interpreter), its written
/// `last_hidden_state` against ORT's int8 output (default session
/// options): per-token cosine >= 0.999 on every real token (attention
/// mask 1), and the mean at least as close to 1 as ORT's optimized and
/// unoptimized paths are to each other (`meta.json`, up to float32
/// rounding of the mean). tinybert int8_qdq is the exception for the mean
/// (`compiler/tests/ort_transformers.rs`: ORT's two paths share one float
/// MatMul -> QuantizeLinear and agree to 1e-7; the device's integer
/// requantization lands one step away on a few near-tie elements): its
/// measured mean, 0.99998566, is pinned instead, so a regression shows.
#[test]
fn device_outputs_match_ort_per_token() {
    let dir = tempfile::tempdir().unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(data().join("meta.json")).unwrap()).unwrap();
    for (model, variant) in MODELS {
        let sbin = compile(dir.path(), model, variant);
        let m = &meta["models"][model];
        let names: Vec<&str> = m["inputs"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        let mut args = vec!["run".to_string(), sbin.to_str().unwrap().to_string(), "--check".into()];
        for name in &names {
            let p = reference_inputs(dir.path(), model, name, 16);
            args.extend(["--input".into(), format!("{name}={}", p.display())]);
        }
        let out = dir.path().join(format!("out_{model}_{variant}"));
        args.extend(["--out".into(), out.display().to_string()]);
        let o = systole(dir.path(), &args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_ok(&o);
        assert!(stdout(&o).contains("x 16 runs agree"), "{}", stdout(&o));
        let read = |path: PathBuf| -> (Vec<u64>, Vec<f32>) {
            let bytes = std::fs::read(&path).unwrap();
            let f = npyz::NpyFile::new(&bytes[..]).unwrap();
            (f.shape().to_vec(), f.into_vec().unwrap())
        };
        let (shape, got) = read(out.join("last_hidden_state.npy"));
        assert_eq!(shape, [16, 1, 32, 128], "{model} {variant}");
        let (_, ort) = read(data().join(model).join(format!("{variant}.last_hidden_state.npy")));
        let mask: Option<Vec<i64>> = names.contains(&"attention_mask").then(|| {
            let bytes = std::fs::read(data().join(model).join("inputs/attention_mask.npy")).unwrap();
            npyz::NpyFile::new(&bytes[..]).unwrap().into_vec().unwrap()
        });
        let cosines: Vec<f64> = (0..16 * 32)
            .filter(|&t| mask.as_ref().is_none_or(|m| m[t] != 0))
            .map(|t| cosine(&got[t * 128..][..128], &ort[t * 128..][..128]))
            .collect();
        assert_eq!(cosines.len() as u64, m["real_tokens"].as_u64().unwrap(), "{model} {variant}");
        let min = cosines.iter().copied().fold(1.0, f64::min);
        let mean = cosines.iter().sum::<f64>() / cosines.len() as f64;
        let ort_mean = m["variants"][variant]["ort_opt_vs_noopt"]["mean_cosine"].as_f64().unwrap();
        println!("{model} {variant}: device vs ORT per-token cosine min {min:.6} mean {mean:.7} (ORT opt vs noopt {ort_mean:.7})");
        assert!(min >= 0.999, "{model} {variant}: a real token's cosine is {min}");
        let bound = if (model, variant) == ("tinybert", "int8_qdq") { 0.9999856 } else { ort_mean - 1e-6 };
        assert!(mean >= bound, "{model} {variant}: mean cosine {mean} < {bound} (ORT's own paths: {ort_mean})");
    }
}

/// Token ids outside the vocabulary (too large, negative, in the second
/// run of a batch) are the device's `IndexOutOfRange`, named by input and
/// position; no output file is written.
#[test]
fn token_id_outside_the_vocabulary_names_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let sbin = compile(dir.path(), "tinygpt", "int8_qdq");
    let sbin = sbin.to_str().unwrap();
    let mut ids = vec![5i64; 32];
    ids[7] = 1000;
    write_npy(&dir.path().join("ids.npy"), &[1, 32], &ids);
    let run = |input: &str| {
        let input = format!("input_ids={input}");
        systole(dir.path(), &["run", sbin, "--input", &input, "--out", "out", "--json", "r.json"])
    };
    let absent = ["out", "r.json"];
    let o = run("ids.npy");
    assert_fails(
        &o,
        2,
        &["id 1000 at position 7 of `input_ids`", "table's 1000 rows", "`/gpt/wte/Gather`"],
        dir.path(),
        &absent,
    );
    let mut batch = vec![5i64; 64];
    batch[32 + 9] = -3;
    write_npy(&dir.path().join("batch.npy"), &[2, 1, 32], &batch);
    let o = run("batch.npy");
    assert_fails(&o, 2, &["run 2 of 2", "id -3 at position 9 of `input_ids`"], dir.path(), &absent);
    // Beyond int32: refused on the host before anything runs, by element.
    let mut huge = vec![5i64; 32];
    huge[3] = 1 << 40;
    write_npy(&dir.path().join("huge.npy"), &[1, 32], &huge);
    assert_fails(&run("huge.npy"), 2, &["--input input_ids", "element 3 is 1099511627776"], dir.path(), &absent);
    let o = systole(dir.path(), &["run", sbin, "--input", "nope=ids.npy"]);
    assert_fails(&o, 2, &["input_ids"], dir.path(), &[]);
}

/// An attention mask holding anything but 0 and 1 is the device's
/// `IndexOutOfRange` on the mask's 2-row table, named by input and
/// position; inputs of the wrong type, shape or name, or missing, are
/// refused naming the input before anything runs. No output file.
#[test]
fn bad_masks_and_inputs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let sbin = compile(dir.path(), "tinybert", "int8_qdq");
    let sbin = sbin.to_str().unwrap();
    let p = dir.path();
    write_npy(&p.join("ids.npy"), &[1, 32], &[7i64; 32]);
    write_npy(&p.join("zeros.npy"), &[1, 32], &[0i64; 32]);
    let mut mask = vec![1i64; 32];
    mask[5] = 2;
    write_npy(&p.join("mask2.npy"), &[1, 32], &mask);
    write_npy(&p.join("float.npy"), &[1, 32], &[1f32; 32]);
    write_npy(&p.join("short.npy"), &[1, 16], &[1i64; 16]);
    let run = |ids: &str, mask: &str, types: Option<&str>| {
        let mut args = vec!["run".to_string(), sbin.to_string()];
        args.extend(["--input".into(), format!("input_ids={ids}"), "--input".into(), format!("attention_mask={mask}")]);
        if let Some(t) = types {
            args.extend(["--input".into(), format!("token_type_ids={t}")]);
        }
        args.extend(["--out".into(), "out".into(), "--json".into(), "r.json".into()]);
        systole(p, &args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let absent = ["out", "r.json"];
    let o = run("ids.npy", "mask2.npy", Some("zeros.npy"));
    assert_fails(&o, 2, &["id 2 at position 5 of `attention_mask`", "must be 0 or 1"], p, &absent);
    let o = run("float.npy", "zeros.npy", Some("zeros.npy"));
    assert_fails(&o, 2, &["--input input_ids", "the array is f32, the model's input is i64"], p, &absent);
    let o = run("ids.npy", "short.npy", Some("zeros.npy"));
    assert_fails(&o, 2, &["--input attention_mask", "1x16", "1x32"], p, &absent);
    let o = run("ids.npy", "zeros.npy", None);
    assert_fails(&o, 2, &["`token_type_ids` is given 0 times"], p, &absent);
    let o = systole(p, &["run", sbin, "--input", "ids.npy"]);
    assert_fails(&o, 2, &["the model has 3 inputs", "--input NAME=FILE.npy"], p, &[]);
    // The same inputs with a 0/1 mask run.
    assert_ok(&run("ids.npy", "zeros.npy", Some("zeros.npy")));
}

/// A transformer the device cannot run is refused at compile time naming
/// the node (or input) and the reason, exit 2, no program written: a
/// dynamic sequence length, an op the device has no form of.
#[test]
fn models_the_device_cannot_run_are_refused_at_compile_time() {
    use compiler::onnx::proto::{tensor_shape_proto::dimension::Value as Dim, type_proto, ModelProto};
    use prost::Message;
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(data().join("tinybert/int8_qdq.onnx")).unwrap();
    let model = ModelProto::decode(&bytes[..]).unwrap();
    let mut dynamic = model.clone();
    let g = dynamic.graph.as_mut().unwrap();
    let Some(type_proto::Value::TensorType(tt)) = g.input[0].r#type.as_mut().unwrap().value.as_mut() else {
        panic!("a tensor input")
    };
    tt.shape.as_mut().unwrap().dim[1].value = Some(Dim::DimParam("sequence".into()));
    std::fs::write(dir.path().join("dynamic.onnx"), dynamic.encode_to_vec()).unwrap();
    let mut unknown = model;
    let n = unknown.graph.as_mut().unwrap().node.iter_mut().find(|n| n.op_type() == "Softmax").unwrap();
    n.op_type = Some("Hardmax".into());
    let node = n.name().to_string();
    std::fs::write(dir.path().join("hardmax.onnx"), unknown.encode_to_vec()).unwrap();
    let hw = root().join("examples/hw/default.toml");
    let hw = hw.to_str().unwrap();
    for (file, needles) in
        [("dynamic.onnx", vec!["input_ids", "static shapes"]), ("hardmax.onnx", vec![&node, "Hardmax"])]
    {
        let o = systole(dir.path(), &["compile", "--hw", hw, file, "-o", "m.sbin"]);
        assert_fails(&o, 2, &needles, dir.path(), &["m.sbin"]);
    }
}

/// tinybert_nm24's 12 Linear layers are exactly 2:4 along K: on a
/// configuration with 2:4-sparse PEs they run on `i8s24` tiles (`--weights
/// auto`), bit for bit with the interpreter, each saving cycles and bus
/// bytes against the dense program the report runs beside it; the
/// FFN output projections (K = 512) take at most 0.65x the
/// dense cycles (measured 0.622x: the 2:4 layer is bound by the bus, 81.8 kB
/// in 5.1 k cycles against 4.2 k array cycles; what is left above that is
/// the layer's A prologue and the epilogue's drains at M = 32; see
/// tests/sparse24.rs), and every layer keeps at least
/// 3/8 of its dense weights' bytes off the bus (2:4 stores 2 of every 4
/// int8 plus 2-bit positions: 0.625x).
#[test]
fn tinybert_nm24_linear_layers_run_on_2_4_tiles() {
    let dir = tempfile::tempdir().unwrap();
    let onnx = data().join("tinybert_nm24/int8_qdq_float_matmul_out.onnx");
    let hw = root().join("examples/hw/sparse24.toml");
    let sbin = dir.path().join("nm24.sbin");
    let o = systole(dir.path(), &["compile", "--hw", hw.to_str().unwrap(), onnx.to_str().unwrap(), "-o", "nm24.sbin"]);
    assert_ok(&o);
    let o = systole(dir.path(), &["run", sbin.to_str().unwrap(), "--check", "--json", "r.json"]);
    assert_ok(&o);
    assert!(stdout(&o).contains("agree with the reference interpreter bit for bit"), "{}", stdout(&o));
    let rep: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("r.json")).unwrap()).unwrap();
    let layers = rep["layers"].as_array().unwrap();
    let linear: Vec<&serde_json::Value> =
        layers.iter().filter(|l| l["op"] == "dense_f32" && l["name"].as_str().unwrap().ends_with("MatMul")).collect();
    assert_eq!(linear.len(), 12);
    for l in &linear {
        let name = l["name"].as_str().unwrap();
        assert_eq!(l["weight_format"], "i8s24", "{name}");
        let saved = &l["saved_vs_dense"];
        let (cycles, saved_cycles) = (l["cycles"].as_i64().unwrap(), saved["cycles"].as_i64().unwrap());
        assert!(saved_cycles > 0 && saved["dram_bus_bytes"].as_i64().unwrap() > 0, "{name}: {saved}");
        let ffn = !name.contains("attention");
        if ffn && name.ends_with("output/dense/MatMul") {
            let ratio = cycles as f64 / (cycles + saved_cycles) as f64;
            assert!(ratio <= 0.65, "{name}: {ratio:.3} of the dense cycles");
        }
        // At least 3/8 of the dense weights' bytes stay off the bus.
        let weights = if ffn { 128 * 512 } else { 128 * 128 };
        assert!(saved["dram_bus_bytes"].as_i64().unwrap() >= weights * 3 / 8, "{name}: {saved}");
    }
}
