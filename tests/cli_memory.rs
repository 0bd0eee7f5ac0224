//! Device memory costs what a program touches: the largest legal device
//! (`dram.size_mib = 4096`) runs under an address-space limit of 1 GiB.

mod common;
use common::*;
use std::fs;

const DEFAULT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hw/default.toml");
const DIGITS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/models/digits_cnn_nm24.onnx");
const DIGITS_X: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/models/digits_x.npy");

#[test]
fn a_4_gib_device_runs_in_1_gib() {
    let g = tempfile::tempdir().unwrap();
    let dir = g.path();
    let hw = fs::read_to_string(DEFAULT).unwrap();
    assert!(hw.contains("size_mib = 64"), "the default config changed: {hw}");
    fs::write(dir.join("big.toml"), hw.replace("size_mib = 64", "size_mib = 4096")).unwrap();
    assert_ok(&systole(dir, &["compile", DIGITS, "--hw", "big.toml", "-o", "cnn.sbin"]));
    let limit = Some(1 << 30);
    let o = systole_limited(dir, &["run", "cnn.sbin", "--input", DIGITS_X, "--out", "out", "--check"], 120, limit);
    assert_ok(&o);
    assert!(dir.join("out/logits.npy").is_file());
    // The same run on the 256 MiB default gives the same logits.
    assert_ok(&systole(dir, &["compile", DIGITS, "--hw", DEFAULT, "-o", "small.sbin"]));
    assert_ok(&systole(dir, &["run", "small.sbin", "--input", DIGITS_X, "--out", "small"]));
    assert_eq!(fs::read(dir.join("out/logits.npy")).unwrap(), fs::read(dir.join("small/logits.npy")).unwrap());
}
