//! Every Verilog source through both tools, so that a construct one of them
//! rejects is caught the day it is written (DESIGN §6): `verilator
//! --lint-only -Wall` (no warning allowed) and yosys `synth` (no warning
//! allowed), each for the default parameters and the variants in
//! [`VARIANTS`]. Needs the `verilator` feature (and yosys:
//! `apt-get install -y yosys`); a missing tool fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Parameter overrides `(name, value)`.
type Params = &'static [(&'static str, &'static str)];

/// Parameter sets checked besides the defaults, per top module.
const VARIANTS: &[(&str, &[Params])] =
    &[("requant", &[&[("LATENCY", "1")], &[("LATENCY", "2")], &[("QW", "16"), ("LATENCY", "2")], &[("QW", "2")]])];

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
            cmd.args(["--lint-only", "-Wall", "--top-module", &top]).arg(format!("-I{}", rtl::INCLUDE_DIR));
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
        // The defaults and the deepest pipeline of each module.
        for params in parameter_sets(&top).into_iter().filter(|p| p.is_empty() || p == &[("LATENCY", "2")]) {
            let chparam: String = params.iter().map(|(n, v)| format!("chparam -set {n} {v} {top}; ")).collect();
            let script =
                format!("read_verilog -sv -I {} {}; {chparam}synth -top {top}; stat", rtl::INCLUDE_DIR, file.display());
            let (ok, log) = run("yosys", Command::new("yosys").arg("-p").arg(&script));
            let warnings: Vec<&str> = log.lines().filter(|l| l.contains("Warning") || l.contains("ERROR")).collect();
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
