//! Helpers shared by the CLI test files: run the built binary, read its
//! output, and check the CLI's conventions (exit codes, `error:` messages,
//! no panic, no output or temporary file left behind on failure).
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `systole` with `args` in `dir`.
pub fn systole(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_systole")).current_dir(dir).args(args).output().expect("the binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
pub fn assert_ok(o: &Output) {
    assert_eq!(o.status.code(), Some(0), "stdout:\n{}\nstderr:\n{}", stdout(o), stderr(o));
    assert!(!stderr(o).contains("panicked"), "{}", stderr(o));
}

/// Exit code `code`, `error:` with every needle in the message, no panic,
/// none of `absent` (relative to `dir`) exists, no temporary file left.
#[track_caller]
pub fn assert_fails(o: &Output, code: i32, needles: &[&str], dir: &Path, absent: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stdout:\n{}\nstderr:\n{err}", stdout(o));
    assert!(err.starts_with("error: ") || err.contains("\nerror: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "expected `{n}` in:\n{err}");
    }
    for f in absent {
        assert!(!dir.join(f).exists(), "{f} was created; stderr:\n{err}");
    }
    assert_no_temp_files(dir);
}

/// No temporary file of an atomic write is left behind (recursively).
#[track_caller]
pub fn assert_no_temp_files(dir: &Path) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".tmp"), "temporary file {name} left in {}", dir.display());
        if e.file_type().unwrap().is_dir() {
            assert_no_temp_files(&e.path());
        }
    }
}

/// Writes a C-order .npy file.
pub fn write_npy<T: npyz::AutoSerialize + Copy>(path: &Path, shape: &[u64], data: &[T]) {
    use npyz::WriterBuilder;
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(fs::File::create(path).unwrap())
        .begin_nd()
        .unwrap();
    w.extend(data.iter().copied()).unwrap();
    w.finish().unwrap();
}

pub mod schema;

/// Runs `systole` with `args` in `dir`, killed (and the test failed) if it
/// takes longer than `secs` seconds: a hang is a bug.
pub fn systole_within(dir: &Path, args: &[&str], secs: u64) -> Output {
    systole_limited(dir, args, secs, None)
}

/// Like [`systole_within`], with the address space limited to
/// `memory_bytes` (RLIMIT_AS): an allocation past it fails.
pub fn systole_limited(dir: &Path, args: &[&str], secs: u64, memory_bytes: Option<u64>) -> Output {
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_systole"));
    if let Some(limit) = memory_bytes {
        let rlim = libc::rlimit { rlim_cur: limit, rlim_max: limit };
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setrlimit(libc::RLIMIT_AS, &rlim) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
    let mut child = cmd
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(secs) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("systole {args:?} hung (killed after {secs} s)");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// Exit code `code` and exactly one line on stderr, `error: ...` with every needle.
#[track_caller]
pub fn assert_one_line_error(o: &Output, code: i32, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stdout:\n{}\nstderr:\n{err}", stdout(o));
    assert!(err.starts_with("error: ") && err.ends_with('\n') && err.lines().count() == 1, "not one line:\n{err}");
    for n in needles {
        assert!(err.contains(n), "expected `{n}` in:\n{err}");
    }
}

/// A float32 `.npy` file's shape and elements.
pub fn npy_f32(path: &Path) -> (Vec<u64>, Vec<f32>) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let f = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = f.shape().to_vec();
    (shape, f.into_vec::<f32>().unwrap())
}

/// An int64 `.npy` file's elements (labels).
pub fn npy_i64(path: &Path) -> Vec<i64> {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    npyz::NpyFile::new(&bytes[..]).unwrap().into_vec::<i64>().unwrap()
}

/// The index of the largest element, the first on a tie (top-1).
pub fn argmax(v: &[f32]) -> usize {
    (0..v.len()).fold(0, |best, i| if v[i] > v[best] { i } else { best })
}
