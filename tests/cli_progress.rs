//! Progress on stderr (src/cli/progress.rs): when stderr is not a terminal
//! (here a pipe) it is plain lines, a few per command and a `done` line;
//! nothing for a command faster than the delay; nothing at all with
//! `--quiet`. `SYSTOLE_PROGRESS_DELAY_MS=0` makes these fast commands show
//! it.

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Output};

const DEFAULT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hw/default.toml");

/// `systole args` in `dir` with stderr piped and the progress delay `delay_ms`.
fn systole_piped(dir: &Path, args: &[&str], delay_ms: Option<u64>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_systole"));
    cmd.current_dir(dir).args(args).env_remove("SYSTOLE_PROGRESS_DELAY_MS");
    if let Some(ms) = delay_ms {
        cmd.env("SYSTOLE_PROGRESS_DELAY_MS", ms.to_string());
    }
    cmd.output().expect("the binary runs")
}

fn lines(o: &Output) -> Vec<String> {
    stderr(o).lines().map(str::to_string).collect()
}

/// The digits CNN for the default configuration and a batch of `n` images.
fn digits(d: &Path, n: u64) {
    let onnx = root().join("compiler/tests/data/digits/cnn_dense/int8_qop.onnx");
    assert_ok(&systole(d, &["compile", onnx.to_str().unwrap(), "--hw", DEFAULT, "-o", "model.sbin"]));
    let x: Vec<f32> = (0..n * 64).map(|i| ((i * 37 + 11) % 101) as f32 / 100.0).collect();
    write_npy(&d.join("x.npy"), &[n, 1, 1, 8, 8], &x);
}

#[test]
fn run_shows_a_line_per_tenth_of_a_batch_and_quiet_shows_none() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    digits(d, 20);
    let args = ["run", "model.sbin", "--input", "x.npy", "--out", "o", "--json", "r.json"];
    let o = systole_piped(d, &args, Some(0));
    assert_ok(&o);
    let l = lines(&o);
    // The first update, then every other inference (another 10 %).
    let counts: Vec<&String> =
        l.iter().filter(|s| s.starts_with("systole run: ") && s.contains(" inferences (")).collect();
    assert_eq!(counts.len(), 11, "{l:#?}");
    assert!(counts[0].starts_with("systole run: 1/20 inferences (5 %), "), "{l:#?}");
    assert!(counts[10].starts_with("systole run: 20/20 inferences (100 %), "), "{l:#?}");
    assert!(l.last().unwrap().starts_with("systole run: done, 20 inferences in "), "{l:#?}");
    assert_eq!(l.len(), 12, "nothing else on stderr: {l:#?}");
    assert!(l.iter().all(|s| !s.contains('\r') && !s.contains('\x1b')), "no terminal drawing: {l:#?}");

    for quiet in ["--quiet", "-q"] {
        let mut a = args.to_vec();
        a.push(quiet);
        let o = systole_piped(d, &a, Some(0));
        assert_ok(&o);
        assert_eq!(stderr(&o), "", "{quiet}");
    }
    // The default delay: a command this fast shows nothing.
    let o = systole_piped(d, &args, None);
    assert_ok(&o);
    assert_eq!(stderr(&o), "");
}

#[test]
fn sim_reports_its_cycles_when_done_and_quiet_works_before_the_command_too() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    digits(d, 1);
    let o = systole_piped(d, &["sim", "model.sbin", "--hw", DEFAULT, "--json", "r.json"], Some(0));
    assert_ok(&o);
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("r.json")).unwrap()).unwrap();
    let cycles = r["total_cycles"].as_u64().unwrap();
    let l = lines(&o);
    assert_eq!(l.len(), 1, "{l:#?}");
    assert!(l[0].starts_with(&format!("systole sim: done, {cycles} cycles in ")), "{l:#?}");
    // `--quiet` is global: before the subcommand as well as after it.
    let o = systole_piped(d, &["--quiet", "sim", "model.sbin", "--hw", DEFAULT], Some(0));
    assert_ok(&o);
    assert_eq!(stderr(&o), "");
}

#[test]
fn a_faulting_sim_shows_its_error_and_no_done_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tiny = root().join("examples/hw/tiny.toml");
    // Instruction 0 stores zeros over instruction 41, which then faults
    // (the program of tests/cli_faults.rs).
    let mut s = String::from("store dram=0x520 stride=32 rows=1 cols=32 addr=0\n");
    s += &"load dram=0x100000 stride=4 rows=4 cols=4 addr=4\n".repeat(40);
    s += "finish\nfinish\n";
    std::fs::write(d.join("ow.s"), s).unwrap();
    assert_ok(&systole(d, &["asm", "ow.s", "--hw", tiny.to_str().unwrap(), "-o", "ow.sbin"]));
    let o = systole_piped(d, &["sim", "ow.sbin", "--hw", tiny.to_str().unwrap()], Some(0));
    assert_one_line_error(&o, 2, &["faulted at instruction 41"]);
}
