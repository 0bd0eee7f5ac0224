//! End-to-end tests of the `systole` binary: asm, disasm and sim, their
//! outputs and their errors (exit code 2, a message naming the problem, no
//! output file left behind).

mod common;
use common::*;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Output;

use compiler::gemm::{lower_gemm, reference_gemm, GemmOutput, GemmSpec, INPUT, OUTPUT};
use isa::program::Program;
use isa::{Counter, HwConfig};

use serde_json::Value;

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hw/tiny.toml");
const DEFAULT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hw/default.toml");

/// A 4x4 int8 GEMM on the 4x4 config: C (int32, at 0x2000) = A (at 0x1000)
/// x W (at 0x1010). W is loaded first so that the first load token tells
/// `ldw` the weights are in, and the second tells `matmul` A is.
const GEMM_ASM: &str = "\
; 4x4 int8 GEMM on tiny-4x4
load dram=0x1010 stride=4 rows=4 cols=4 addr=4 @signal(compute)   ; W -> scratchpad rows 4..8
load dram=0x1000 stride=4 rows=4 cols=4 addr=0 @signal(compute)   ; A -> scratchpad rows 0..4
ldw addr=4 k=4 n=4 @wait(load)
matmul a=0 m=4 acc=0 swap=1 @wait(load) @signal(store)
store buf=acc dram=0x2000 stride=16 rows=4 cols=4 addr=0 @wait(compute)
finish
";

/// Exit code 2, `error:` with every needle in the message, no panic, and
/// none of `absent` (relative to `dir`) exists.
#[track_caller]
fn assert_bad_input(o: &Output, needles: &[&str], dir: &Path, absent: &[&str]) {
    assert_fails(o, 2, needles, dir, absent)
}

fn read_npy_i32(path: &Path) -> (Vec<u64>, Vec<i32>) {
    let f = npyz::NpyFile::new(File::open(path).unwrap()).unwrap();
    let shape = f.shape().to_vec();
    (shape, f.into_vec::<i32>().unwrap())
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

/// A temp dir holding `prog.s` (the GEMM) assembled to `prog.sbin` for
/// tiny-4x4, and the inputs `a.npy`, `w.npy`.
struct Gemm {
    dir: tempfile::TempDir,
    a: Vec<i8>,
    w: Vec<i8>,
}

impl Gemm {
    fn new() -> Gemm {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("prog.s"), GEMM_ASM).unwrap();
        assert_ok(&systole(dir.path(), &["asm", "prog.s", "--hw", TINY, "-o", "prog.sbin"]));
        let a: Vec<i8> = (0..16).map(|i| (i * 37 % 256 - 128) as i8).collect();
        let w: Vec<i8> = (0..16).map(|i| (i * 7 - 50) as i8).collect();
        write_npy(&dir.path().join("a.npy"), &[4, 4], &a);
        write_npy(&dir.path().join("w.npy"), &[4, 4], &w);
        Gemm { dir, a, w }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn expected(&self) -> Vec<i32> {
        let mut c = vec![0i32; 16];
        for i in 0..4 {
            for j in 0..4 {
                c[i * 4 + j] = (0..4).map(|k| self.a[i * 4 + k] as i32 * self.w[k * 4 + j] as i32).sum();
            }
        }
        c
    }
}

fn program(path: &Path) -> Program {
    Program::from_bytes(&fs::read(path).unwrap()).unwrap()
}

#[test]
fn asm_then_sim_computes_the_gemm_and_reports() {
    let g = Gemm::new();
    let o = systole(
        g.path(),
        &[
            "sim",
            "prog.sbin",
            "--hw",
            TINY,
            "--load",
            "0x1000=a.npy",
            "--load",
            "4112=w.npy",
            "--dump",
            "0x2000:i32:4x4=c.npy",
            "--json",
            "report.json",
            "--trace",
            "trace.json",
        ],
    );
    assert_ok(&o);
    let (shape, c) = read_npy_i32(&g.path().join("c.npy"));
    assert_eq!(shape, vec![4, 4]);
    assert_eq!(c, g.expected());

    let r = read_json(&g.path().join("report.json"));
    for key in [
        "total_cycles",
        "macs",
        "mac_utilization",
        "schema_version",
        "dram_bus_bytes",
        "per_inference",
        "energy_pj",
        "energy_breakdown",
        "counters",
        "area_mm2",
        "config",
        "energy_table",
        "outcome",
    ] {
        assert!(r.get(key).is_some(), "report.json lacks `{key}`: {r:#}");
    }
    let cycles = r["total_cycles"].as_u64().unwrap();
    assert!(cycles > 0);
    assert_eq!(r["macs"].as_u64(), Some(64));
    assert_eq!(r["outcome"], "done");
    assert_eq!(r["energy_table"], "default-45nm");
    let util = r["mac_utilization"].as_f64().unwrap();
    assert!((util - 64.0 / (cycles as f64 * 16.0)).abs() < 1e-12, "{util}");
    let counters = r["counters"].as_object().unwrap();
    for &c in Counter::ALL {
        assert!(counters.contains_key(c.name()), "counters lack {}", c.name());
    }
    assert_eq!(counters["cycles"].as_u64(), Some(cycles));
    assert_eq!(
        r["dram_bus_bytes"].as_u64().unwrap(),
        counters["dram_read_bytes"].as_u64().unwrap() + counters["dram_write_bytes"].as_u64().unwrap()
    );
    let breakdown = r["energy_breakdown"].as_object().unwrap();
    assert!(breakdown.contains_key("static") && breakdown.contains_key("mac") && breakdown.contains_key("dram"));
    let sum: f64 = breakdown.values().map(|v| v.as_f64().unwrap()).sum();
    let total = r["energy_pj"].as_f64().unwrap();
    assert!(total > 0.0 && (sum - total).abs() <= 1e-9 * total, "{sum} vs {total}");
    assert!(r["area_mm2"]["total"].as_f64().unwrap() > 0.0);
    assert_eq!(r["config"]["name"], "tiny-4x4");

    let t = read_json(&g.path().join("trace.json"));
    let events = t["traceEvents"].as_array().unwrap();
    let runs: Vec<&Value> = events.iter().filter(|e| e["ph"] == "X").collect();
    assert_eq!(runs.len(), 6);
    let tids: Vec<u64> = runs.iter().map(|e| e["tid"].as_u64().unwrap()).collect();
    // The two loads overlap, so the second goes on a second load track.
    assert_eq!(tids, vec![0, 1, 2, 2, 3, 4], "load, load, ldw, matmul, store, finish");
    let names: Vec<&str> =
        events.iter().filter(|e| e["name"] == "thread_name").map(|e| e["args"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["load", "load 2", "compute", "store", "finish"]);
    for e in &runs {
        assert!(e["args"]["finish_cycle"].as_u64() >= e["args"]["start_cycle"].as_u64());
    }

    let text = stdout(&o);
    for needle in ["tiny-4x4", "done", "cycles", "MACs", "utilization", "DRAM", "GB/s", "static", "default-45nm", "mm²"]
    {
        assert!(text.contains(needle), "report lacks `{needle}`:\n{text}");
    }
    assert_no_temp_files(g.path());
}

#[test]
fn asm_writes_program_for_the_config() {
    let g = Gemm::new();
    let p = program(&g.path().join("prog.sbin"));
    let cfg = HwConfig::tiny_4x4();
    assert_eq!(p.fingerprint, cfg.fingerprint());
    assert_eq!(p.config_name, "tiny-4x4");
    assert_eq!(p.code, isa::asm::parse_program(GEMM_ASM).unwrap());
    assert_eq!((p.code_addr, p.mem_bytes), (0, cfg.dram_bytes()));
    assert!(p.data.is_empty() && p.tensors.is_empty());
    assert_eq!(p.meta.producer, "systole asm");
    assert_eq!(p.meta.source, "prog.s");

    let o = systole(
        g.path(),
        &["asm", "prog.s", "--hw", TINY, "-o", "moved.sbin", "--code-addr", "0x100", "--mem-bytes", "65536"],
    );
    assert_ok(&o);
    let q = program(&g.path().join("moved.sbin"));
    assert_eq!((q.code_addr, q.mem_bytes, &q.code), (0x100, 65536, &p.code));

    let o = systole(g.path(), &["asm", "prog.s", "--hw", TINY, "-o", "bad.sbin", "--code-addr", "0x10"]);
    assert_bad_input(&o, &["--code-addr", "32"], g.path(), &["bad.sbin"]);
    let o = systole(g.path(), &["asm", "prog.s", "--hw", TINY, "-o", "bad.sbin", "--mem-bytes", "0x40000000"]);
    assert_bad_input(&o, &["--mem-bytes"], g.path(), &["bad.sbin"]);
}

#[test]
fn disasm_output_reassembles_to_the_same_code() {
    let g = Gemm::new();
    let o = systole(g.path(), &["disasm", "prog.sbin"]);
    assert_ok(&o);
    let text = stdout(&o);
    for needle in
        ["; config `tiny-4x4`", "fingerprint 0x", "6 instructions", "; sections:", "manifest", "systole asm", "; [5]"]
    {
        assert!(text.contains(needle), "disasm lacks `{needle}`:\n{text}");
    }
    fs::write(g.path().join("again.s"), &text).unwrap();
    assert_ok(&systole(g.path(), &["asm", "again.s", "--hw", TINY, "-o", "again.sbin"]));
    assert_eq!(program(&g.path().join("again.sbin")).code, program(&g.path().join("prog.sbin")).code);
}

/// A compiled GEMM (constants, tensor map): disasm shows the tensors and
/// re-assembles; sim moves tensors in and out by name.
#[test]
fn compiled_program_tensors_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = HwConfig::tiny_4x4();
    let (m, k, n) = (6, 5, 7);
    let spec = GemmSpec {
        m,
        k,
        n,
        weights: (0..k * n).map(|i| ((i * 37 + 11) % 255) as i8).collect(),
        input_unsigned: false,
        output: GemmOutput::Int32,
    };
    let prog = lower_gemm(&spec, &cfg).unwrap();
    fs::write(dir.path().join("gemm.sbin"), prog.to_bytes()).unwrap();
    let a: Vec<i8> = (0..m * k).map(|i| ((i * 53 + 7) % 256) as u8 as i8).collect();
    write_npy(&dir.path().join("a.npy"), &[m as u64, k as u64], &a);

    let o = systole(
        dir.path(),
        &[
            "sim",
            "gemm.sbin",
            "--hw",
            TINY,
            "--input",
            &format!("{INPUT}=a.npy"),
            "--output",
            &format!("{OUTPUT}=c.npy"),
        ],
    );
    assert_ok(&o);
    let (shape, c) = read_npy_i32(&dir.path().join("c.npy"));
    let a_bytes: Vec<u8> = a.iter().map(|&v| v as u8).collect();
    assert_eq!(shape, prog.tensor(OUTPUT).unwrap().shape);
    assert_eq!(c, reference_gemm(&spec, &a_bytes));

    let o = systole(dir.path(), &["disasm", "gemm.sbin"]);
    assert_ok(&o);
    let text = stdout(&o);
    assert!(text.contains("; tensors:") && text.contains("input") && text.contains("output"), "{text}");
    fs::write(dir.path().join("gemm.s"), &text).unwrap();
    assert_ok(&systole(dir.path(), &["asm", "gemm.s", "--hw", TINY, "-o", "again.sbin"]));
    assert_eq!(program(&dir.path().join("again.sbin")).code, prog.code);

    // Wrong dtype, wrong element count, unknown name.
    write_npy(&dir.path().join("a32.npy"), &[m as u64, k as u64], &vec![0; m * k]);
    let o = systole(dir.path(), &["sim", "gemm.sbin", "--hw", TINY, "--input", "a=a32.npy", "--output", "c=x.npy"]);
    assert_bad_input(&o, &["a32.npy", "i32", "i8"], dir.path(), &["x.npy"]);
    write_npy(&dir.path().join("short.npy"), &[3], &[1i8, 2, 3]);
    let o = systole(dir.path(), &["sim", "gemm.sbin", "--hw", TINY, "--input", "a=short.npy", "--output", "c=x.npy"]);
    assert_bad_input(&o, &["short.npy", "3 elements"], dir.path(), &["x.npy"]);
    let o = systole(dir.path(), &["sim", "gemm.sbin", "--hw", TINY, "--input", "a=a.npy", "--output", "nope=x.npy"]);
    assert_bad_input(&o, &["nope"], dir.path(), &["x.npy"]);
}

#[test]
fn asm_syntax_error_names_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("bad.s"), "; comment\nload rows=4 cols=4 stride=4\n  matmul m=4 bogus=1\nfinish\n")
        .unwrap();
    let o = systole(dir.path(), &["asm", "bad.s", "--hw", TINY, "-o", "bad.sbin"]);
    assert_bad_input(&o, &["bad.s:3:14:", "bogus"], dir.path(), &["bad.sbin"]);
}

#[test]
fn asm_rejects_instruction_illegal_for_the_config() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("big.s"),
        "load rows=4 cols=4 stride=4 @signal(compute)\nldw addr=0 k=5 n=4 @wait(load)\nfinish\n",
    )
    .unwrap();
    let o = systole(dir.path(), &["asm", "big.s", "--hw", TINY, "-o", "big.sbin"]);
    assert_bad_input(&o, &["big.s:2:", "ldw", "k=5", "5x4", "tiny-4x4"], dir.path(), &["big.sbin"]);
    // The same instruction is legal on the 16x16 config.
    assert_ok(&systole(dir.path(), &["asm", "big.s", "--hw", DEFAULT, "-o", "big.sbin"]));
}

#[test]
fn truncated_program_is_rejected() {
    let g = Gemm::new();
    let bytes = fs::read(g.path().join("prog.sbin")).unwrap();
    fs::write(g.path().join("short.sbin"), &bytes[..20]).unwrap();
    let o = systole(g.path(), &["disasm", "short.sbin"]);
    assert_bad_input(&o, &["short.sbin", "truncated"], g.path(), &[]);
    fs::write(g.path().join("cut.sbin"), &bytes[..bytes.len() - 40]).unwrap();
    let o = systole(g.path(), &["sim", "cut.sbin", "--hw", TINY, "--json", "r.json"]);
    assert_bad_input(&o, &["cut.sbin", "not a valid systole program"], g.path(), &["r.json"]);
}

#[test]
fn corrupted_program_is_rejected() {
    let g = Gemm::new();
    let mut bytes = fs::read(g.path().join("prog.sbin")).unwrap();
    bytes[120] ^= 0x10;
    fs::write(g.path().join("flip.sbin"), &bytes).unwrap();
    for cmd in [vec!["disasm", "flip.sbin"], vec!["sim", "flip.sbin", "--hw", TINY, "--json", "r.json"]] {
        let o = systole(g.path(), &cmd);
        assert_bad_input(&o, &["flip.sbin", "checksum mismatch"], g.path(), &["r.json"]);
    }
}

/// A program from the previous container format (JSON manifest): one line
/// saying to rebuild it, exit 2, for every command that reads programs.
#[test]
fn a_program_of_another_format_says_rebuild_it() {
    let dir = tempfile::tempdir().unwrap();
    let old = concat!(env!("CARGO_MANIFEST_DIR"), "/isa/tests/data/format1.sbin");
    for cmd in [vec!["disasm", old], vec!["sim", old, "--hw", TINY], vec!["run", old, "--input", "x.npy", "--out", "o"]]
    {
        let o = systole(dir.path(), &cmd);
        assert_bad_input(
            &o,
            &["format1.sbin: made by another systole version", "rebuild it with `systole compile`"],
            dir.path(),
            &["o"],
        );
        assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    }
}

#[test]
fn program_for_another_config_is_rejected() {
    let g = Gemm::new();
    let o = systole(g.path(), &["sim", "prog.sbin", "--hw", DEFAULT, "--json", "r.json"]);
    assert_bad_input(&o, &["prog.sbin", "tiny-4x4", "default-16x16", "recompile"], g.path(), &["r.json"]);
}

#[test]
fn missing_npy_is_rejected() {
    let g = Gemm::new();
    let o = systole(g.path(), &["sim", "prog.sbin", "--hw", TINY, "--load", "0x1000=nope.npy", "--json", "r.json"]);
    assert_bad_input(&o, &["nope.npy"], g.path(), &["r.json"]);
    // Not an npy file at all.
    let o = systole(g.path(), &["sim", "prog.sbin", "--hw", TINY, "--load", "0x1000=prog.s", "--json", "r.json"]);
    assert_bad_input(&o, &["prog.s", ".npy"], g.path(), &["r.json"]);
}

#[test]
fn malformed_arguments_are_usage_errors() {
    let g = Gemm::new();
    for (spec, needle) in [
        ("0x2000:i32=c.npy", "ADDR:DTYPE:SHAPE"),
        ("0x2000:f64:4x4=c.npy", "f64"),
        ("0x2000:i32:4xx4=c.npy", "4xx4"),
        ("0xzz:i32:4=c.npy", "0xzz"),
        ("0x2000:i32:4x4", "ADDR:DTYPE:SHAPE"),
    ] {
        let o = systole(g.path(), &["sim", "prog.sbin", "--hw", TINY, "--dump", spec]);
        assert_bad_input(&o, &["--dump", needle], g.path(), &["c.npy"]);
    }
    let o = systole(g.path(), &["sim", "prog.sbin", "--hw", TINY, "--load", "1k=a.npy"]);
    assert_bad_input(&o, &["--load", "1k"], g.path(), &[]);
    let o = systole(g.path(), &["sim", "prog.sbin"]);
    assert_bad_input(&o, &["--hw"], g.path(), &[]);
    let o = systole(g.path(), &["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn addresses_outside_device_memory_are_rejected() {
    let g = Gemm::new();
    // tiny-4x4 has 16 MiB of device memory.
    let o = systole(g.path(), &["sim", "prog.sbin", "--hw", TINY, "--load", "0xfffff8=a.npy", "--json", "r.json"]);
    assert_bad_input(&o, &["--load", "0xfffff8", "device memory", "tiny-4x4"], g.path(), &["r.json"]);
    let o = systole(g.path(), &["sim", "prog.sbin", "--hw", TINY, "--dump", "0x1000000:i32:4=c.npy"]);
    assert_bad_input(&o, &["--dump", "device memory"], g.path(), &["c.npy"]);
    // Over the program's own code.
    let o = systole(g.path(), &["sim", "prog.sbin", "--hw", TINY, "--load", "0x20=a.npy"]);
    assert_bad_input(&o, &["--load", "code"], g.path(), &[]);
}

#[test]
fn device_fault_is_reported_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    fs::write(p.join("fault.s"), "load dram=0x2000 stride=4 rows=4 cols=4 addr=0\nfinish\n").unwrap();
    let o = systole(p, &["asm", "fault.s", "--hw", TINY, "-o", "fault.sbin", "--mem-bytes", "0x1000"]);
    assert_ok(&o);
    assert!(stderr(&o).contains("warning"), "{}", stderr(&o));
    let o = systole(
        p,
        &["sim", "fault.sbin", "--hw", TINY, "--json", "r.json", "--trace", "t.json", "--dump", "0x0:u8:16=d.npy"],
    );
    assert_bad_input(
        &o,
        &["the device faulted at instruction 0 (`load dram=0x2000", "DMA outside the memory window"],
        p,
        &["r.json", "t.json", "d.npy"],
    );
}

#[test]
fn output_into_missing_directory_creates_nothing() {
    let g = Gemm::new();
    let o = systole(
        g.path(),
        &["sim", "prog.sbin", "--hw", TINY, "--dump", "0x2000:i32:4x4=c.npy", "--json", "nodir/r.json"],
    );
    assert_bad_input(&o, &["nodir/r.json", "does not exist"], g.path(), &["c.npy", "nodir"]);
    let o = systole(g.path(), &["asm", "prog.s", "--hw", TINY, "-o", "nodir/p.sbin"]);
    assert_bad_input(&o, &["nodir/p.sbin"], g.path(), &["nodir"]);
}

#[test]
fn bad_configuration_and_energy_table_name_the_field() {
    let g = Gemm::new();
    let tiny = fs::read_to_string(TINY).unwrap();
    let bad: PathBuf = g.path().join("bad.toml");
    fs::write(&bad, tiny.replace("rows = 4", "rows = \"four\"")).unwrap();
    let o = systole(g.path(), &["sim", "prog.sbin", "--hw", "bad.toml", "--json", "r.json"]);
    assert_bad_input(&o, &["bad.toml:", "rows"], g.path(), &["r.json"]);
    fs::write(&bad, tiny.replace("latency_cycles = 20", "latency_cycles = 0")).unwrap();
    let o = systole(g.path(), &["sim", "prog.sbin", "--hw", "bad.toml"]);
    assert_bad_input(&o, &["bad.toml", "dram.latency_cycles"], g.path(), &[]);
    let o = systole(g.path(), &["asm", "prog.s", "--hw", "missing.toml", "-o", "x.sbin"]);
    assert_bad_input(&o, &["missing.toml"], g.path(), &["x.sbin"]);
    // A value nothing implements is refused when the file is read.
    fs::write(&bad, tiny.replace("dataflow = \"weight-stationary\"", "dataflow = \"output-stationary\"")).unwrap();
    let o = systole(g.path(), &["asm", "prog.s", "--hw", "bad.toml", "-o", "x.sbin"]);
    assert_bad_input(
        &o,
        &["bad.toml", "array.dataflow = \"output-stationary\"", "not implemented"],
        g.path(),
        &["x.sbin"],
    );

    let table = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/energy/default-45nm.toml")).unwrap();
    fs::write(g.path().join("e.toml"), table.replace("int8_mul_pj = 0.2", "int8_mul_pj = -0.2")).unwrap();
    let o = systole(g.path(), &["sim", "prog.sbin", "--hw", TINY, "--energy-table", "e.toml", "--json", "r.json"]);
    assert_bad_input(&o, &["e.toml", "int8_mul_pj"], g.path(), &["r.json"]);
    // A valid custom table is reported by name.
    fs::write(g.path().join("e.toml"), table.replace("name = \"default-45nm\"", "name = \"mine\"")).unwrap();
    let o = systole(g.path(), &["sim", "prog.sbin", "--hw", TINY, "--energy-table", "e.toml", "--json", "r.json"]);
    assert_ok(&o);
    assert_eq!(read_json(&g.path().join("r.json"))["energy_table"], "mine");
}

/// An indexed `load` (a gather; on the RTL too: tests/cli_rtl.rs): on the
/// model an id outside the table is a fault naming the id's position and
/// value (here the load reads its ids from its own encoding, whose first 8
/// bytes are no row of an 8-row table).
#[test]
fn gathers_run_on_the_model_and_bad_ids_fault_naming_their_position() {
    let dir = tempfile::tempdir().unwrap();
    let gather = |ids: &str| format!("load dram=0 stride=4 rows=2 cols=4 idx=i64 idx_addr={ids} limit=8\nfinish\n");
    fs::write(dir.path().join("ok.s"), gather("0x2000")).unwrap();
    fs::write(dir.path().join("bad.s"), gather("0")).unwrap();
    for name in ["ok", "bad"] {
        assert_ok(&systole(dir.path(), &["asm", &format!("{name}.s"), "--hw", TINY, "-o", &format!("{name}.sbin")]));
    }
    assert_ok(&systole(dir.path(), &["sim", "ok.sbin", "--hw", TINY]));
    let o = systole(dir.path(), &["sim", "bad.sbin", "--hw", TINY]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("index out of range") && e.contains("id 0 of the load") && e.contains("table's 8 rows"), "{e}");
}
