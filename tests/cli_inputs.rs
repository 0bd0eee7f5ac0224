//! The CLI's inputs, whatever they hold: forged `.npy` shapes and Fortran
//! order, files that never end (`/dev/zero`) or never start (a FIFO with no
//! writer), and messages that quote hostile text — always exit 2 with one
//! escaped line, never a panic, a hang or memory exhaustion.

mod common;
use common::*;
use std::fs;
use std::path::Path;

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hw/tiny.toml");
const DEFAULT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hw/default.toml");
const DIGITS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/models/digits_cnn_nm24.onnx");
const DIGITS_X: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/models/digits_x.npy");
const GEMM_S: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/asm/gemm_4x4.s");
const MLP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/models/tiny_mlp.stm");

/// A version-1 `.npy` file with a hand-written header (shape and order as
/// given, whatever the data).
fn npy_file(path: &Path, descr: &str, fortran: bool, shape: &[u64], data: &[u8]) {
    let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
    let comma = if shape.len() == 1 { "," } else { "" };
    let order = if fortran { "True" } else { "False" };
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': ({}{comma}), }}", dims.join(", "));
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(h.len() as u16).to_le_bytes());
    bytes.extend_from_slice(h.as_bytes());
    bytes.extend_from_slice(data);
    fs::write(path, bytes).unwrap();
}

/// The digits CNN compiled into `dir/cnn.sbin`.
fn digits(dir: &Path) {
    assert_ok(&systole(dir, &["compile", DIGITS, "--hw", DEFAULT, "-o", "cnn.sbin"]));
}

#[test]
fn forged_npy_shapes_are_refused() {
    let g = tempfile::tempdir().unwrap();
    digits(g.path());
    // The element count overflows u64 (it wrapped to 0: "capacity overflow").
    npy_file(&g.path().join("overflow.npy"), "<f4", false, &[1 << 58, 1, 1, 8, 8], &[]);
    // (2^52 + 1) x 4096 wrapped to 4096 elements: a 64x64 tensor.
    npy_file(&g.path().join("wrap.npy"), "<f4", false, &[(1 << 52) + 1, 4096], &[0; 4 * 4096]);
    npy_file(&g.path().join("wrap_f.npy"), "<f4", true, &[(1 << 52) + 1, 4096], &[0; 4 * 4096]);
    for f in ["overflow.npy", "wrap.npy", "wrap_f.npy"] {
        let o = systole(g.path(), &["run", "cnn.sbin", "--input", f, "--out", "out"]);
        assert_one_line_error(&o, 2, &[f, "too many elements"]);
        assert!(!g.path().join("out").exists());
    }
    // The same through the text model's file() tensors.
    let model = fs::read_to_string(MLP).unwrap();
    let start = model.find("    weights: i8[8, 16] = [").unwrap();
    let end = start + model[start..].find("    ]\n").unwrap() + 6;
    let forged = format!("{}    weights = file(\"w.npy\")\n{}", &model[..start], &model[end..]);
    fs::write(g.path().join("m.stm"), forged).unwrap();
    npy_file(&g.path().join("w.npy"), "|i1", true, &[(1 << 62) + 8, 4], &[0; 32]);
    let o = systole(g.path(), &["compile", "m.stm", "--hw", TINY, "-o", "m.sbin"]);
    assert_one_line_error(&o, 2, &["w.npy", "too many elements"]);
}

#[test]
fn fortran_order_inputs_read_as_their_c_order() {
    let g = tempfile::tempdir().unwrap();
    digits(g.path());
    let x = compiler::npy::decode(&fs::read(DIGITS_X).unwrap()).unwrap();
    let (n, per) = (4usize, 64usize);
    let c = &x.data[..n * per * 4];
    // Fortran order of [n, 1, 1, 8, 8]: the first index fastest.
    let mut f = vec![0u8; c.len()];
    for (i, chunk) in c.chunks(4).enumerate() {
        let (b, rest) = (i / per, i % per);
        let (y, xx) = (rest / 8, rest % 8);
        let fi = b + n * (y + 8 * xx);
        f[fi * 4..fi * 4 + 4].copy_from_slice(chunk);
    }
    npy_file(&g.path().join("c.npy"), "<f4", false, &[n as u64, 1, 1, 8, 8], c);
    npy_file(&g.path().join("f.npy"), "<f4", true, &[n as u64, 1, 1, 8, 8], &f);
    assert_ok(&systole(g.path(), &["run", "cnn.sbin", "--input", "c.npy", "--out", "c"]));
    assert_ok(&systole(g.path(), &["run", "cnn.sbin", "--input", "f.npy", "--out", "f"]));
    let (yc, yf) = (fs::read(g.path().join("c/logits.npy")).unwrap(), fs::read(g.path().join("f/logits.npy")).unwrap());
    assert_eq!(yc, yf);
}

/// Every input kind, given `/dev/zero` or a FIFO nobody writes to: one
/// line naming the file and what it is, at once.
#[test]
fn endless_and_blocking_inputs_are_refused() {
    let g = tempfile::tempdir().unwrap();
    let dir = g.path();
    digits(dir);
    assert_ok(&systole(dir, &["asm", GEMM_S, "--hw", TINY, "-o", "g.sbin"]));
    let status = std::process::Command::new("mkfifo").arg(dir.join("fifo")).status().unwrap();
    assert!(status.success());
    for (input, what) in [("/dev/zero", "a character device"), ("fifo", "a FIFO")] {
        let load = format!("0x1000={input}");
        let cases: Vec<Vec<&str>> = vec![
            vec!["compile", input, "--hw", TINY, "-o", "m.sbin"],
            vec!["asm", input, "--hw", TINY, "-o", "m.sbin"],
            vec!["asm", GEMM_S, "--hw", input, "-o", "m.sbin"],
            vec!["disasm", input],
            vec!["run", input, "--input", DIGITS_X, "--out", "out"],
            vec!["run", "cnn.sbin", "--input", input, "--out", "out"],
            vec!["run", "cnn.sbin", "--input", DIGITS_X, "--out", "out", "--energy-table", input],
            vec!["sim", "g.sbin", "--hw", TINY, "--load", &load],
        ];
        for mut args in cases {
            // `compile` decides the format by extension: give the FIFO one.
            let model;
            if args[0] == "compile" {
                model = format!("{input}.stm");
                if input == "fifo" {
                    let _ = std::process::Command::new("mkfifo").arg(dir.join(&model)).status();
                } else {
                    args[1] = "/dev/zero";
                    let o = systole_within(dir, &args, 20);
                    assert_one_line_error(&o, 2, &["/dev/zero"]);
                    continue;
                }
                args[1] = &model;
            }
            let o = systole_within(dir, &args, 20);
            assert_one_line_error(&o, 2, &[what, "not a regular file"]);
            assert!(!dir.join("m.sbin").exists() && !dir.join("out").exists());
        }
    }
}

#[test]
fn messages_are_one_escaped_line() {
    let g = tempfile::tempdir().unwrap();
    let dir = g.path();
    // A 20,000-character token and control characters in the assembly.
    let long = "x".repeat(20_000);
    fs::write(dir.join("long.s"), format!("ldw {long}=1\n")).unwrap();
    let o = systole(dir, &["asm", "long.s", "--hw", TINY, "-o", "p.sbin"]);
    assert_one_line_error(&o, 2, &["long.s", "more characters]"]);
    assert!(stderr(&o).len() < 1000, "{}", stderr(&o));
    fs::write(dir.join("ctl.s"), "ldw\u{1b}[31m\rk=1\n").unwrap();
    let o = systole(dir, &["asm", "ctl.s", "--hw", TINY, "-o", "p.sbin"]);
    assert_one_line_error(&o, 2, &["ctl.s"]);
    assert!(!stderr(&o).contains('\u{1b}') && !stderr(&o).contains('\r'), "{}", stderr(&o));
    // A control character in a TOML comment: the reason, not an empty message.
    let hw = fs::read_to_string(TINY).unwrap() + "# a comment \u{1} here\n";
    fs::write(dir.join("hw.toml"), hw).unwrap();
    let o = systole(dir, &["asm", GEMM_S, "--hw", "hw.toml", "-o", "p.sbin"]);
    assert_one_line_error(&o, 2, &["hw.toml: line", "control character U+0001", "\\x01"]);
    // A broken .npy header with line breaks in it.
    let mut npy = b"\x93NUMPY\x01\x00\x30\x00{'descr': garbage\n\n\n\n".to_vec();
    npy.resize(10 + 0x30, b' ');
    fs::write(dir.join("bad.npy"), npy).unwrap();
    assert_ok(&systole(dir, &["asm", GEMM_S, "--hw", TINY, "-o", "g.sbin"]));
    let o = systole(dir, &["sim", "g.sbin", "--hw", TINY, "--load", "0x1000=bad.npy"]);
    assert_one_line_error(&o, 2, &["bad.npy", "bad header"]);
    // A usage error.
    let o = systole(dir, &["run", "--bogus"]);
    assert_one_line_error(&o, 2, &["--bogus", "usage: systole run"]);
}

#[test]
fn reserved_meta_is_rejected_by_the_assembler() {
    let g = tempfile::tempdir().unwrap();
    fs::write(g.path().join("m.s"), "ldw addr=0 k=1 n=1 meta=1\nfinish\n").unwrap();
    let o = systole(g.path(), &["asm", "m.s", "--hw", TINY, "-o", "m.sbin"]);
    assert_one_line_error(&o, 2, &["m.s", "meta = 1", "reserved"]);
    assert!(!g.path().join("m.sbin").exists());
}

/// `--input NAME=FILE` names the model input; a compiled program has one,
/// so a wrong name or a second array is refused naming it (exit 2), and
/// the plain `--input FILE` form is unchanged.
#[test]
fn named_inputs_must_name_the_programs_input() {
    let g = tempfile::tempdir().unwrap();
    digits(g.path());
    let named = format!("input={DIGITS_X}");
    assert_ok(&systole(g.path(), &["run", "cnn.sbin", "--input", &named, "--out", "named"]));
    assert_ok(&systole(g.path(), &["run", "cnn.sbin", "--input", DIGITS_X, "--out", "plain"]));
    assert_eq!(
        fs::read(g.path().join("named/logits.npy")).unwrap(),
        fs::read(g.path().join("plain/logits.npy")).unwrap()
    );
    let wrong = format!("pixels={DIGITS_X}");
    let o = systole(g.path(), &["run", "cnn.sbin", "--input", &wrong, "--out", "o"]);
    assert_one_line_error(&o, 2, &["pixels", "no input"]);
    let o = systole(g.path(), &["run", "cnn.sbin", "--input", DIGITS_X, "--input", &named, "--out", "o"]);
    assert_one_line_error(&o, 2, &["2 --input arrays", "one input"]);
    assert!(!g.path().join("o").exists());
}
