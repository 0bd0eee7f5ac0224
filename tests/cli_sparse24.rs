//! `systole compile --weights dense|auto` and the 2:4 report end to end:
//! cnn_nm24 on the 2:4 configuration, its per-layer formats and savings
//! (text and JSON against the schema), and `--weights` refusing other
//! values.

mod common;
use common::schema::validate;
use common::*;
use serde_json::Value;
use std::fs;

const SPARSE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hw/sparse24.toml");

#[test]
fn compile_weights_auto_and_dense_and_the_savings_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let onnx = root().join("compiler/tests/data/digits/cnn_nm24/int8_qop.onnx");
    let onnx = onnx.to_str().unwrap();
    let o = systole(d, &["compile", onnx, "--hw", SPARSE, "-o", "auto.sbin"]);
    assert_ok(&o);
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let conv2 = text.lines().find(|l| l.contains("/conv2/")).unwrap();
    assert!(conv2.contains("i8s24") && conv2.contains("147,456"), "{text}");
    let o = systole(d, &["compile", onnx, "--hw", SPARSE, "--weights", "dense", "-o", "dense.sbin"]);
    assert_ok(&o);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("i8s24"));
    let o = systole(d, &["compile", onnx, "--hw", SPARSE, "--weights", "sparse", "-o", "x.sbin"]);
    assert_fails(&o, 2, &["--weights", "dense", "auto"], d, &["x.sbin"]);

    let x: Vec<f32> = (0..2 * 64).map(|i| ((i * 37 + 11) % 101) as f32 / 100.0).collect();
    write_npy(&d.join("x.npy"), &[2, 1, 1, 8, 8], &x);
    let o = systole(d, &["run", "auto.sbin", "--input", "x.npy", "--check", "--json", "r.json"]);
    assert_ok(&o);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(out.contains("saved cycles") && out.contains("i8s24"), "{out}");
    let r: Value = serde_json::from_str(&fs::read_to_string(d.join("r.json")).unwrap()).unwrap();
    let schema: Value =
        serde_json::from_str(&fs::read_to_string(root().join("docs/schema/report.schema.json")).unwrap()).unwrap();
    let errors = validate(&schema, &r);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let layers = r["layers"].as_array().unwrap();
    let conv2 = layers.iter().find(|l| l["name"].as_str().unwrap().starts_with("/conv2/")).unwrap();
    assert_eq!(conv2["weight_format"], "i8s24");
    let saved = &conv2["saved_vs_dense"];
    assert!(saved["cycles"].as_i64().unwrap() > 0 && saved["dram_bus_bytes"].as_i64().unwrap() > 0, "{saved}");
    assert!(saved["energy_pj"].as_f64().unwrap() > 0.0, "{saved}");
    let conv1 = layers.iter().find(|l| l["name"].as_str().unwrap().starts_with("/conv1/")).unwrap();
    assert!(conv1["weight_format"] == "i8" && conv1.get("saved_vs_dense").is_none(), "{conv1}");

    // The RTL runs 2:4 tiles on its sparse PEs (tests/cli_rtl.rs); a
    // binary built without it says how to get it, not that 2:4 is missing.
    let o = systole(d, &["run", "auto.sbin", "--input", "x.npy", "--backend", "rtl"]);
    if !o.status.success() {
        assert_fails(&o, 2, &["--features rtl"], d, &[]);
        assert!(!String::from_utf8_lossy(&o.stderr).contains("i8s24"));
    }
}
