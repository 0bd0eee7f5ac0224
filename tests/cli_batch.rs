//! `systole compile --batch N`: the digits MLP compiled for 32 inferences
//! in one program, run through the CLI, against 32 single runs of the
//! unbatched program: outputs identical, cycles per inference at most a
//! fifth; the digits CNN at batch 3, 8 and 32 likewise.

mod common;
use common::*;
use std::path::Path;

fn digits(rel: &str) -> String {
    root().join("compiler/tests/data/digits").join(rel).display().to_string()
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

/// The digits CNN compiled for 3, 8 and 32 inferences: checked layer by
/// layer against the interpreter, outputs equal to single runs, the report
/// per inference (a run of the batched program is N inferences), and fewer
/// cycles per inference than single runs.
#[test]
fn digits_cnn_batches_like_single_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hw = root().join("examples/hw/default.toml").display().to_string();
    let model = digits("cnn_dense/int8_qop.onnx");
    let (_, x) = npy_f32(Path::new(&digits("ref_x_f32.npy")));
    assert_eq!(x.len(), 32 * 64);
    let json = |f: &str| -> serde_json::Value { serde_json::from_slice(&std::fs::read(d.join(f)).unwrap()).unwrap() };
    write_npy(&d.join("singles.npy"), &[32, 1, 1, 8, 8], &x);
    assert_ok(&systole(d, &["compile", &model, "--hw", &hw, "-o", "one.sbin"]));
    let args = ["run", "one.sbin", "--input", "singles.npy", "--out", "singles", "--json", "singles.json"];
    assert_ok(&systole(d, &args));
    let (_, singles) = npy_f32(&d.join("singles/logits.npy"));
    let single = json("singles.json")["per_inference"]["cycles_mean"].as_f64().unwrap();
    let mut per_inference = vec![single];
    for n in [3usize, 8, 32] {
        let prog = format!("b{n}.sbin");
        let o = systole(d, &["compile", &model, "--hw", &hw, "--batch", &n.to_string(), "-o", &prog]);
        assert_ok(&o);
        assert!(stdout(&o).contains(&format!("[{n}, 1, 8, 8]")), "the input shape is shown:\n{}", stdout(&o));
        write_npy(&d.join("batch.npy"), &[n as u64, 1, 8, 8], &x[..n * 64]);
        let (out, rep) = (format!("out{n}"), format!("b{n}.json"));
        let o = systole(d, &["run", &prog, "--input", "batch.npy", "--out", &out, "--check", "--json", &rep]);
        assert_ok(&o);
        assert!(stdout(&o).contains(&format!("{n} inferences (1 run of {n})")), "{}", stdout(&o));
        let (shape, batched) = npy_f32(&d.join(&out).join("logits.npy"));
        assert_eq!(shape, vec![n as u64, 10]);
        assert_eq!(batched, singles[..n * 10], "batch of {n}: logits differ from single runs");
        let r = json(&rep);
        let per = &r["per_inference"];
        assert_eq!(per["inferences"].as_u64(), Some(n as u64), "{r}");
        let total = r["total_cycles"].as_u64().unwrap() as f64;
        assert_eq!(per["cycles_mean"].as_f64(), Some(total / n as f64), "{r}");
        let energy = r["energy_uj"].as_f64().unwrap();
        assert!((per["energy_uj"].as_f64().unwrap() - energy / n as f64).abs() <= 1e-9 * energy, "{r}");
        per_inference.push(per["cycles_mean"].as_f64().unwrap());
    }
    println!("digits CNN cycles per inference at batch 1, 3, 8, 32: {per_inference:?}");
    assert!(per_inference.windows(2).all(|w| w[1] < w[0]), "{per_inference:?}");
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
