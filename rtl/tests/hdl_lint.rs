//! Every Verilog source through both tools, so that a construct one of them
//! rejects is caught the day it is written (docs/DESIGN.md §6): `verilator
//! --lint-only -Wall` (no warning allowed) and yosys `synth` (no warning
//! allowed), each for the default parameters and the variants in
//! [`VARIANTS`]. Needs the `verilator` feature (and yosys:
//! `apt-get install -y yosys`); a missing tool fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Parameter overrides `(name, value)`.
type Params = &'static [(&'static str, &'static str)];

/// Parameter sets checked besides the defaults, per top module.
const VARIANTS: &[(&str, &[Params])] = &[
    ("requant", &[&[("LATENCY", "1")], &[("LATENCY", "2")], &[("QW", "16"), ("LATENCY", "2")], &[("QW", "2")]]),
    // The whole accelerator at a non-square, non-power-of-two-buffer shape.
    ("accel", &[&[("ROWS", "4"), ("COLS", "8"), ("SPAD_ROWS", "100"), ("ACC_ROWS", "24"), ("W", "8")]]),
    // The int4 weight format's unpacking and checks (off by default).
    ("compute", &[&[("INT4", "1")]]),
    ("check", &[&[("INT4", "1")]]),
    // The 2:4-sparse PEs and their checks (off by default; the array also
    // taller than wide: kept rows past the columns).
    ("array", &[&[("SPARSE", "1")], &[("ROWS", "6"), ("COLS", "4"), ("SPARSE", "1")]]),
    ("check", &[&[("SPARSE", "1")]]),
];

/// Modules yosys synthesizes only inside their parent (vec_lane holds one
/// of each binary32 unit; vec_unit, the lanes and the reduction tree, is
/// synthesized inside compute and accel): each costs 20-30 s of synthesis
/// alone on the 2-core CI machines. Verilator still lints each on its own.
const SYNTH_IN_PARENT: &[&str] =
    &["fp32_fma", "fp32_div", "fp32_sqrt", "fp32_round", "fp32_minmax", "fp32_from_int", "fp32_to_quant", "vec_unit"];

/// Parameters that keep yosys' `synth` of a module quick: it maps every
/// memory to flip-flops, so the accelerator's buffers are shrunk here
/// (`systole area` keeps them as memories instead).
fn synth_params(top: &str) -> Vec<(&'static str, &'static str)> {
    match top {
        "accel" => {
            vec![
                ("SPAD_ROWS", "64"),
                ("ACC_ROWS", "16"),
                ("LOAD_STAGE_BYTES", "64"),
                ("STORE_STAGE_BYTES", "64"),
                ("LOAD_IDS", "16"),
            ]
        }
        "dma_load" => vec![("STAGE_BYTES", "256"), ("IDS", "16")],
        "dma_store" => vec![("STAGE_BYTES", "256")],
        _ => vec![],
    }
}

/// Every `.sv` / `.v` file of `rtl/verilog`; the top module of each is
/// named after its file.
fn sources() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(rtl::VERILOG_DIR)
        .expect("rtl/verilog exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sv" || x == "v"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no Verilog sources in {}", rtl::VERILOG_DIR);
    files
}

fn top(file: &Path) -> String {
    file.file_stem().expect("file name").to_string_lossy().into_owned()
}

fn parameter_sets(top: &str) -> Vec<Vec<(&'static str, &'static str)>> {
    let mut sets = vec![vec![]];
    for (t, variants) in VARIANTS {
        if *t == top {
            sets.extend(variants.iter().map(|v| v.to_vec()));
        }
    }
    sets
}

fn run(tool: &str, cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("`{tool}` could not be run ({e}): install it with `apt-get install -y {tool}`"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn verilator_lint_is_clean() {
    let mut failures = Vec::new();
    for file in sources() {
        let top = top(&file);
        for params in parameter_sets(&top) {
            let mut cmd = Command::new("verilator");
            // `-y`: a module's submodules come from their own files.
            cmd.args(["--lint-only", "-Wall", "--top-module", &top])
                .arg(format!("-I{}", rtl::INCLUDE_DIR))
                .arg("-y")
                .arg(rtl::VERILOG_DIR);
            for (name, value) in &params {
                cmd.arg(format!("-G{name}={value}"));
            }
            let (ok, text) = run("verilator", cmd.arg(&file));
            println!(
                "verilator --lint-only -Wall {} {params:?}: {}",
                file.display(),
                if ok { "clean" } else { "FAILED" }
            );
            if !ok || !text.trim().is_empty() {
                failures.push(format!("{} {params:?}:\n{text}", file.display()));
            }
        }
    }
    assert!(failures.is_empty(), "verilator lint:\n{}", failures.join("\n"));
}

/// The cell count of yosys' last `stat` in `log`.
fn cells(log: &str) -> Option<u64> {
    log.lines()
        .filter_map(|l| l.trim().strip_prefix("Number of cells:"))
        .next_back()
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn yosys_synthesizes() {
    let mut failures = Vec::new();
    for file in sources() {
        let top = top(&file);
        if SYNTH_IN_PARENT.contains(&top.as_str()) {
            continue;
        }
        // The defaults and the deepest pipeline of each module.
        for params in parameter_sets(&top).into_iter().filter(|p| p.is_empty() || p == &[("LATENCY", "2")]) {
            let params = if params.is_empty() { synth_params(&top) } else { params };
            let chparam: String = params.iter().map(|(n, v)| format!("chparam -set {n} {v} {top}; ")).collect();
            // Every source is read: a module's submodules live in their own files.
            let all: Vec<String> = sources().iter().map(|f| f.display().to_string()).collect();
            // The whole accelerator stops before technology mapping here (its
            // full synthesis, memories kept, is `systole area`'s test); so
            // does the vector lane (its full mapping, 31.8 k cells, takes
            // ~5 minutes on the CI machines, the coarse passes 15 s), and
            // compute, which holds the vector unit and its lanes.
            let stop = if ["accel", "vec_lane", "compute"].contains(&top.as_str()) { " -run begin:fine" } else { "" };
            let script = format!(
                "read_verilog -sv -I {} {}; {chparam}synth -top {top}{stop}; stat",
                rtl::INCLUDE_DIR,
                all.join(" ")
            );
            let (ok, log) = run("yosys", Command::new("yosys").arg("-p").arg(&script));
            // "Replacing memory X with list of registers" is yosys saying a
            // small array (a queue pointer per queue, a counter per event)
            // becomes registers, which is what it is meant to be.
            let warnings: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("Warning") || l.contains("ERROR"))
                .filter(|l| !(l.contains("Replacing memory") && l.contains("with list of registers")))
                .filter(|l| !l.contains("unique messages"))
                .collect();
            let n = cells(&log);
            println!("yosys synth {} {params:?}: {} cells", file.display(), n.map_or("?".into(), |n| n.to_string()));
            if !ok || !warnings.is_empty() || n.is_none() {
                let tail: Vec<&str> = log.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect();
                failures.push(format!("{} {params:?}:\n{}\n{}", file.display(), warnings.join("\n"), tail.join("\n")));
            }
        }
    }
    assert!(failures.is_empty(), "yosys:\n{}", failures.join("\n"));
}
