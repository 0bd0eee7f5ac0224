//! `systole compile --batch N`: the digits MLP compiled for 32 inferences
//! in one program, run through the CLI, against 32 single runs of the
//! unbatched program: outputs identical, cycles per inference at most a
//! fifth; a model with convolutions refused by name.

mod common;
use common::*;
use std::path::Path;

fn digits(rel: &str) -> String {
    root().join("compiler/tests/data/digits").join(rel).display().to_string()
}

fn npy_f32(path: &Path) -> (Vec<u64>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let f = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = f.shape().to_vec();
    (shape, f.into_vec::<f32>().unwrap())
}

fn total_cycles(dir: &Path, json: &str) -> u64 {
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join(json)).unwrap()).unwrap();
    r["total_cycles"].as_u64().expect("total_cycles")
}

#[test]
fn digits_mlp_at_batch_32_matches_32_single_runs_in_a_fifth_of_the_cycles() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hw = root().join("examples/hw/default.toml").display().to_string();
    let model = digits("mlp_dense/int8_qop.onnx");
    let (_, x) = npy_f32(Path::new(&digits("ref_x_f32.npy")));
    assert_eq!(x.len(), 32 * 64);
    // The same 32 images: [32, 1, 64] (32 runs of [1, 64]) and [32, 64] (one run).
    write_npy(&d.join("singles.npy"), &[32, 1, 64], &x);
    write_npy(&d.join("batch.npy"), &[32, 64], &x);

    assert_ok(&systole(d, &["compile", &model, "--hw", &hw, "-o", "one.sbin"]));
    let o = systole(d, &["compile", &model, "--hw", &hw, "--batch", "32", "-o", "b32.sbin"]);
    assert_ok(&o);
    assert!(stdout(&o).contains("[32, 64]"), "the input shape is shown:\n{}", stdout(&o));

    let run = |prog: &str, input: &str, out: &str| {
        let args = ["run", prog, "--input", input, "--out", out, "--check", "--json", &format!("{out}.json")];
        let o = systole(d, &args);
        assert_ok(&o);
    };
    run("one.sbin", "singles.npy", "singles");
    run("b32.sbin", "batch.npy", "batched");
    let (s_shape, singles) = npy_f32(&d.join("singles/logits.npy"));
    let (b_shape, batched) = npy_f32(&d.join("batched/logits.npy"));
    assert_eq!((s_shape, b_shape), (vec![32, 1, 10], vec![32, 10]));
    assert_eq!(singles, batched, "batched logits differ from single runs");

    let (single, batch) = (total_cycles(d, "singles.json"), total_cycles(d, "batched.json"));
    println!(
        "digits MLP: 32 single runs {single} cycles, one batch of 32 {batch} cycles ({:.1}x)",
        single as f64 / batch as f64
    );
    assert!(5 * batch <= single, "batch of 32: {batch} cycles, 32 single runs: {single}");

    // Two runs of the batched program: [2, 32, 64].
    let mut two = x.clone();
    two.extend_from_slice(&x);
    write_npy(&d.join("two.npy"), &[2, 32, 64], &two);
    run("b32.sbin", "two.npy", "two");
    let (t_shape, t) = npy_f32(&d.join("two/logits.npy"));
    assert_eq!(t_shape, vec![2, 32, 10]);
    assert_eq!(&t[..320], &batched[..]);
    assert_eq!(&t[320..], &batched[..]);
}

#[test]
fn batching_a_cnn_is_refused_by_node() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hw = root().join("examples/hw/default.toml").display().to_string();
    let model = digits("cnn_dense/int8_qop.onnx");
    let o = systole(d, &["compile", &model, "--hw", &hw, "--batch", "4", "-o", "cnn.sbin"]);
    assert_fails(&o, 2, &["cannot compile a batch of 4", "dense layers only", "(conv)"], d, &["cnn.sbin"]);
    let o = systole(d, &["compile", &model, "--hw", &hw, "--batch", "0", "-o", "cnn.sbin"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn a_batch_spread_over_threads_gives_the_one_thread_results() {
    // 32 inferences of the digits CNN, checked layer by layer, on 1 and on 3
    // threads (in two directories, so that every path in the report is the
    // same): the outputs and the JSON reports, per-inference figures and
    // per-layer table included, must be byte-identical.
    let hw = root().join("examples/hw/default.toml").display().to_string();
    let model = digits("cnn_dense/int8_qop.onnx");
    let (_, x) = npy_f32(Path::new(&digits("ref_x_f32.npy")));
    let run = |threads: &str| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_npy(&d.join("x.npy"), &[32, 1, 1, 8, 8], &x);
        assert_ok(&systole(d, &["compile", &model, "--hw", &hw, "-o", "cnn.sbin"]));
        let args = ["run", "cnn.sbin", "--input", "x.npy", "--out", "out", "--check", "--json", "r.json"];
        let o = systole(d, &[&args[..], &["--threads", threads]].concat());
        assert_ok(&o);
        let read = |f: &str| std::fs::read(d.join(f)).unwrap();
        (read("out/logits.npy"), read("r.json"), stdout(&o))
    };
    let one = run("1");
    let three = run("3");
    assert!(one.0 == three.0, "the outputs differ");
    assert_eq!(String::from_utf8_lossy(&one.1), String::from_utf8_lossy(&three.1), "the reports differ");
    assert_eq!(one.2, three.2, "the printed reports differ");
    let r: serde_json::Value = serde_json::from_slice(&one.1).unwrap();
    assert_eq!(r["per_inference"]["inferences"].as_u64(), Some(32), "{r}");
}
