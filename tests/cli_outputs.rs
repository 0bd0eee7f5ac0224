//! A run's outputs are replaced all together or not at all: concurrent
//! runs into one `--out` never mix their files, a killed run and a failed
//! write leave the previous outputs whole, and nothing a run staged is
//! left behind.

mod common;
use common::*;
use serde_json::Value;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const DEFAULT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hw/default.toml");
const DIGITS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/models/digits_cnn_nm24.onnx");
const DIGITS_X: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/models/digits_x.npy");

/// `dir/cnn.sbin`, and `dir/xN.npy`: batches of the first N digits images
/// (N in `sizes`), repeated to `N` images when N > 32.
fn setup(dir: &Path, sizes: &[u64]) {
    assert_ok(&systole(dir, &["compile", DIGITS, "--hw", DEFAULT, "-o", "cnn.sbin"]));
    let x = compiler::npy::decode(&fs::read(DIGITS_X).unwrap()).unwrap();
    let image = 64 * 4;
    for &n in sizes {
        let data: Vec<f32> = x.data.chunks(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        let batch: Vec<f32> = (0..n as usize).flat_map(|i| data[(i % 32) * 64..(i % 32) * 64 + 64].to_vec()).collect();
        assert_eq!(batch.len() * 4, n as usize * image);
        write_npy(&dir.join(format!("x{n}.npy")), &[n, 1, 1, 8, 8], &batch);
    }
}

fn run_args(n: u64) -> Vec<String> {
    let input = format!("x{n}.npy");
    ["run", "cnn.sbin", "--input", &input, "--out", "out", "--json", "out/report.json"].map(String::from).to_vec()
}

/// The outputs in `out`: the batch size of logits.npy and the input the report names.
fn outputs(dir: &Path) -> (u64, String) {
    let logits = compiler::npy::decode(&fs::read(dir.join("out/logits.npy")).unwrap()).unwrap();
    let report: Value = serde_json::from_str(&fs::read_to_string(dir.join("out/report.json")).unwrap()).unwrap();
    (logits.shape[0], report["input"]["file"].as_str().unwrap().to_string())
}

/// Everything in `dir` and below, hidden files included, with contents.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
                out.push((rel + "/", Vec::new()));
            } else {
                out.push((rel, fs::read(e.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn concurrent_runs_into_one_out_never_mix() {
    let g = tempfile::tempdir().unwrap();
    let dir = g.path();
    let sizes = [1, 2, 3, 4];
    setup(dir, &sizes);
    for _round in 0..4 {
        let children: Vec<_> = sizes
            .iter()
            .map(|&n| {
                Command::new(env!("CARGO_BIN_EXE_systole"))
                    .current_dir(dir)
                    .args(run_args(n))
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let o = c.wait_with_output().unwrap();
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        }
        let (batch, input) = outputs(dir);
        assert_eq!(input, format!("x{batch}.npy"), "logits of one run, report of another");
        let names: Vec<String> = snapshot(dir).into_iter().map(|(n, _)| n).filter(|n| n.starts_with('.')).collect();
        assert!(names.is_empty(), "left behind: {names:?}");
    }
}

#[test]
fn a_killed_run_leaves_the_previous_outputs() {
    let g = tempfile::tempdir().unwrap();
    let dir = g.path();
    setup(dir, &[2, 20000]);
    assert_ok(&systole(dir, &run_args(2).iter().map(String::as_str).collect::<Vec<_>>()));
    // Something of the user's in --out is kept by every run.
    fs::write(dir.join("out/notes.txt"), "mine").unwrap();
    // What a run killed while committing would leave: removed by the next commit.
    fs::create_dir(dir.join(".out.systole-staging")).unwrap();
    fs::write(dir.join(".out.systole-staging/logits.npy"), "half").unwrap();
    fs::write(dir.join("out/.report.json.systole-tmp"), "half").unwrap();
    assert_ok(&systole(dir, &run_args(2).iter().map(String::as_str).collect::<Vec<_>>()));
    assert!(!dir.join(".out.systole-staging").exists());
    let before = snapshot(dir);
    assert!(before.iter().any(|(n, c)| n == "out/notes.txt" && c == b"mine"));
    for (signal, after_ms) in [(libc::SIGKILL, 300), (libc::SIGTERM, 600), (libc::SIGINT, 100)] {
        let child = Command::new(env!("CARGO_BIN_EXE_systole"))
            .current_dir(dir)
            .args(run_args(20000))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(after_ms));
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, signal) };
        let o = child.wait_with_output().unwrap();
        assert_ne!(o.status.code(), Some(0), "the run finished before the signal: make it longer");
        assert_eq!(snapshot(dir), before, "signal {signal}");
    }
}

#[test]
fn a_failed_write_leaves_the_previous_outputs() {
    let g = tempfile::tempdir().unwrap();
    let dir = g.path();
    setup(dir, &[1, 2]);
    // Writes past 0 bytes fail (EFBIG) instead of raising SIGXFSZ.
    let failing = |args: Vec<String>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_systole"));
        cmd.current_dir(dir).args(args);
        // SAFETY: signal and setrlimit are async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &zero) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.output().unwrap()
    };
    let o = failing(run_args(1));
    assert_one_line_error(&o, 2, &["cannot write", "out"]);
    assert!(!dir.join("out").exists(), "a failed first run created --out");
    assert_ok(&systole(dir, &run_args(2).iter().map(String::as_str).collect::<Vec<_>>()));
    let before = snapshot(dir);
    let o = failing(run_args(1));
    assert_one_line_error(&o, 2, &["cannot write"]);
    assert_eq!(snapshot(dir), before);
    assert_eq!(outputs(dir), (2, "x2.npy".to_string()));
}
