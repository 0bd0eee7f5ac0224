//! Fuzzing the CLI's inputs on stable Rust: seeded mutations (bit flips,
//! truncation, byte insertion and deletion, splicing, boundary values in
//! numbers) of a valid file of each input kind — ONNX, `.stm`, TOML, `.sbin`,
//! assembly, `.npy` — each fed to the command that reads it, as the built
//! binary in a fresh directory, with a time limit and an address-space
//! limit. Every case must end with exit 0, or exit 1/2 and exactly one
//! `error:` line; never a panic, a signal or a hang, and a failed command
//! leaves no file behind.
//!
//! `SYSTOLE_FUZZ_CASES=N` runs N cases (default 1200), `SYSTOLE_FUZZ_SEED=S`
//! another seed (default 8). A failure prints the seed, the case and the
//! command, and saves the input under `target/fuzz-failures/`; a case is
//! reproduced with the same seed (the cases do not depend on each other).

mod common;
use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hw/tiny.toml");
const DEFAULT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hw/default.toml");
const DIGITS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/models/digits_cnn_nm24.onnx");
const MLP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/models/tiny_mlp.stm");
const GEMM_S: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/asm/gemm_4x4.s");

/// Seconds a case may take before it counts as a hang.
const TIMEOUT_SECS: u64 = 20;
/// Address space a case may use.
const MEMORY_LIMIT: u64 = 2 << 30;

/// An input kind: a valid seed, the file name it is written to, and the
/// command lines that read it (`{}` is the file; `ctx/` the shared files).
struct Kind {
    name: &'static str,
    file: &'static str,
    text: bool,
    /// A `.sbin`: after half of its mutations the CRC-32 trailer is made
    /// right again, so that the mutation reaches the parser behind it.
    sealed: bool,
    seed: Vec<u8>,
    commands: Vec<Vec<String>>,
}

fn cmd(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// The shared files (`ctx`): compiled programs and inputs the commands
/// need besides the mutated one. The `.sbin` seeds are built here, by the
/// binary, so they follow its format.
fn kinds(ctx: &Path) -> Vec<Kind> {
    let c = |p: &str| ctx.join(p).display().to_string();
    assert_ok(&systole(ctx, &["compile", MLP, "--hw", TINY, "-o", "mlp.sbin"]));
    assert_ok(&systole(ctx, &["asm", GEMM_S, "--hw", TINY, "-o", "gemm.sbin"]));
    let x: Vec<f32> = (0..16).map(|i| i as f32 / 16.0).collect();
    write_npy(&ctx.join("x.npy"), &[1, 16], &x);
    let a: Vec<i8> = (0..16).map(|i| i as i8 - 8).collect();
    write_npy(&ctx.join("a.npy"), &[4, 4], &a);
    let read = |p: &str| fs::read(p).unwrap();
    vec![
        Kind {
            name: "onnx",
            file: "m.onnx",
            text: false,
            sealed: false,
            seed: read(DIGITS),
            commands: vec![cmd(&["compile", "{}", "--hw", DEFAULT, "-o", "out.sbin"])],
        },
        Kind {
            name: "stm",
            file: "m.stm",
            text: true,
            sealed: false,
            seed: read(MLP),
            commands: vec![cmd(&["compile", "{}", "--hw", TINY, "-o", "out.sbin"])],
        },
        Kind {
            name: "toml",
            file: "hw.toml",
            text: true,
            sealed: false,
            seed: read(TINY),
            commands: vec![cmd(&["asm", GEMM_S, "--hw", "{}", "-o", "out.sbin"])],
        },
        Kind {
            name: "asm",
            file: "p.s",
            text: true,
            sealed: false,
            seed: read(GEMM_S),
            commands: vec![cmd(&["asm", "{}", "--hw", TINY, "-o", "out.sbin"])],
        },
        Kind {
            name: "sbin-model",
            file: "m.sbin",
            text: false,
            sealed: true,
            seed: fs::read(ctx.join("mlp.sbin")).unwrap(),
            commands: vec![
                vec![
                    "run".into(),
                    "{}".into(),
                    "--input".into(),
                    c("x.npy"),
                    "--out".into(),
                    "out".into(),
                    "--check".into(),
                ],
                cmd(&["disasm", "{}"]),
            ],
        },
        Kind {
            name: "sbin-asm",
            file: "g.sbin",
            text: false,
            sealed: true,
            seed: fs::read(ctx.join("gemm.sbin")).unwrap(),
            commands: vec![
                vec![
                    "sim".into(),
                    "{}".into(),
                    "--hw".into(),
                    TINY.into(),
                    "--load".into(),
                    format!("0x1000={}", c("a.npy")),
                    "--dump".into(),
                    "0x2000:i32:4x4=c.npy".into(),
                    "--json".into(),
                    "r.json".into(),
                ],
                cmd(&["disasm", "{}"]),
            ],
        },
        Kind {
            name: "npy",
            file: "x.npy",
            text: false,
            sealed: false,
            seed: fs::read(ctx.join("x.npy")).unwrap(),
            commands: vec![
                vec!["run".into(), c("mlp.sbin"), "--input".into(), "{}".into(), "--out".into(), "out".into()],
                vec![
                    "sim".into(),
                    c("gemm.sbin"),
                    "--hw".into(),
                    TINY.into(),
                    "--load".into(),
                    "0x1000={}".into(),
                    "--dump".into(),
                    "0x2000:i32:4x4=c.npy".into(),
                ],
            ],
        },
    ]
}

const BOUNDARY_NUMBERS: [&str; 14] = [
    "0",
    "-1",
    "1",
    "255",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "99999999999999999999999",
    "-9223372036854775808",
    "1e39",
];

/// One mutation of `data`.
fn mutate(rng: &mut StdRng, data: &mut Vec<u8>, text: bool, other: &[u8]) {
    let len = data.len();
    let at = |rng: &mut StdRng| if len == 0 { 0 } else { rng.gen_range(0..len) };
    match rng.gen_range(0..7) {
        0 => {
            for _ in 0..rng.gen_range(1..=8) {
                if !data.is_empty() {
                    let i = at(rng);
                    data[i] ^= 1 << rng.gen_range(0..8);
                }
            }
        }
        1 => data.truncate(at(rng)),
        2 => {
            let i = at(rng);
            let n = rng.gen_range(1..=16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
            data.splice(i..i, bytes);
        }
        3 => {
            let i = at(rng);
            let n = rng.gen_range(1..=64).min(len - i.min(len));
            data.drain(i..i + n);
        }
        4 => {
            // Splice a piece of this or another seed in.
            let src = if rng.gen_bool(0.5) || other.is_empty() { data.clone() } else { other.to_vec() };
            if !src.is_empty() {
                let s = rng.gen_range(0..src.len());
                let n = rng.gen_range(1..=256).min(src.len() - s);
                let i = at(rng);
                let end = (i + rng.gen_range(0..=n)).min(data.len());
                data.splice(i..end, src[s..s + n].iter().copied());
            }
        }
        5 if text => {
            // A number replaced by a boundary value.
            let s = String::from_utf8_lossy(data).into_owned();
            let starts: Vec<usize> = s
                .char_indices()
                .filter(|&(i, c)| c.is_ascii_digit() && (i == 0 || !s.as_bytes()[i - 1].is_ascii_digit()))
                .map(|(i, _)| i)
                .collect();
            if !starts.is_empty() {
                let i = starts[rng.gen_range(0..starts.len())];
                let end = s[i..].find(|c: char| !c.is_ascii_digit()).map_or(s.len(), |e| i + e);
                let v = BOUNDARY_NUMBERS[rng.gen_range(0..BOUNDARY_NUMBERS.len())];
                *data = format!("{}{v}{}", &s[..i], &s[end..]).into_bytes();
            }
        }
        _ => {
            // Boundary values over 1, 2, 4 or 8 bytes.
            let w = [1, 2, 4, 8][rng.gen_range(0..4)];
            if len >= w {
                let i = rng.gen_range(0..=len - w);
                let v: u64 =
                    [0, u64::MAX, 0x7f, 0x80, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 1 << 32][rng.gen_range(0..8)];
                data[i..i + w].copy_from_slice(&v.to_le_bytes()[..w]);
            }
        }
    }
}

/// The names in `dir` (not recursive; a command's outputs land in it).
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    v.sort();
    v
}

/// Runs one case: its exit code, or what went wrong.
fn run_case(kind: &Kind, command: &[String], input: &[u8]) -> Result<i32, String> {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(kind.file), input).unwrap();
    let before = listing(dir.path());
    let args: Vec<String> = command.iter().map(|a| a.replace("{}", kind.file)).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = std::panic::catch_unwind(|| systole_limited(dir.path(), &args, TIMEOUT_SECS, Some(MEMORY_LIMIT)))
        .map_err(|_| format!("hang: no exit within {TIMEOUT_SECS} s"))?;
    let err = stderr(&o);
    match o.status.code() {
        None => return Err(format!("killed by a signal ({:?}); stderr: {err}", o.status)),
        Some(0) => return Ok(0),
        Some(1 | 2) => {}
        Some(c) => return Err(format!("exit {c}; stderr: {err}")),
    }
    if err.contains("panicked") || !err.starts_with("error: ") || err.lines().count() != 1 {
        return Err(format!("not one error line; stderr: {err}"));
    }
    let after = listing(dir.path());
    if after != before {
        return Err(format!("failed and left {after:?} (before: {before:?}); stderr: {err}"));
    }
    Ok(o.status.code().unwrap_or(0))
}

#[test]
fn mutated_inputs_fail_cleanly() {
    let cases: usize = std::env::var("SYSTOLE_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1200);
    let seed: u64 = std::env::var("SYSTOLE_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    let ctx = tempfile::tempdir().unwrap();
    let kinds = kinds(ctx.path());
    let next = AtomicUsize::new(0);
    let exits = [AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0)];
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let save_dir = root().join("target/fuzz-failures");
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).min(8);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let case = next.fetch_add(1, Ordering::Relaxed);
                if case >= cases || failures.lock().unwrap().len() >= 5 {
                    return;
                }
                // Each case has its own generator: reproducible alone.
                let mut rng = StdRng::seed_from_u64(seed ^ (case as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                let kind = &kinds[case % kinds.len()];
                let command = &kind.commands[rng.gen_range(0..kind.commands.len())];
                let other = &kinds[rng.gen_range(0..kinds.len())].seed;
                let mut input = kind.seed.clone();
                for _ in 0..rng.gen_range(1..=3) {
                    mutate(&mut rng, &mut input, kind.text, other);
                }
                if kind.sealed && input.len() >= 4 && rng.gen_bool(0.5) {
                    let body = input.len() - 4;
                    let crc = crc32fast::hash(&input[..body]);
                    input[body..].copy_from_slice(&crc.to_le_bytes());
                }
                let outcome = run_case(kind, command, &input);
                if let Ok(code) = outcome {
                    exits[code as usize].fetch_add(1, Ordering::Relaxed);
                }
                if let Err(why) = outcome {
                    fs::create_dir_all(&save_dir).unwrap();
                    let saved: PathBuf = save_dir.join(format!("seed{seed}-case{case}-{}", kind.file));
                    fs::write(&saved, &input).unwrap();
                    let line = format!(
                        "seed {seed} case {case} ({}): systole {} with {} = {}: {why}",
                        kind.name,
                        command.join(" "),
                        kind.file,
                        saved.display()
                    );
                    eprintln!("{line}");
                    failures.lock().unwrap().push(line);
                }
            });
        }
    });
    let [ok, check, input] = exits.map(AtomicUsize::into_inner);
    eprintln!("fuzz: seed {seed}, {cases} cases: {ok} ran (exit 0), {check} failed a check (1), {input} refused (2)");
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{} failing cases:\n{}", failures.len(), failures.join("\n"));
}
