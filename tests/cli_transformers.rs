//! Transformers end to end on the Rust model (issue 10): the bundled
//! ORT-quantized tinybert, tinybert_nm24 and tinygpt, both QDQ variants,
//! compiled and run with `--check` (every int8 and float32 layer and every
//! output equal to the reference interpreter bit for bit), with the host's
//! preprocessing reported; bad token ids are a run-time error naming the
//! position.

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
        assert!(out.contains("ran on the host before the device") && out.contains("(embedding)"), "{out}");
        assert!(out.contains("`last_hidden_state` 1x32x128 f32"), "{out}");
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

#[test]
fn token_id_outside_the_vocabulary_names_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let sbin = compile(dir.path(), "tinygpt", "int8_qdq");
    let mut ids = vec![5i64; 32];
    ids[7] = 1000;
    write_npy(&dir.path().join("ids.npy"), &[1, 32], &ids);
    let o = systole(dir.path(), &["run", sbin.to_str().unwrap(), "--input", "input_ids=ids.npy"]);
    assert_fails(&o, 2, &["id 1000 at position 7", "input_ids"], dir.path(), &[]);
    let o = systole(dir.path(), &["run", sbin.to_str().unwrap(), "--input", "nope=ids.npy"]);
    assert_fails(&o, 2, &["input_ids"], dir.path(), &[]);
}
