//! End-to-end tests of `systole sweep`: a design-space sweep of the digits
//! CNN over array size and DRAM latency (JSON and CSV, identical outputs,
//! monotone timing and area), invalid points as rows, usage errors (exit 2).

mod common;
use common::*;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn model() -> String {
    root().join("examples/models/digits_cnn_nm24.onnx").display().to_string()
}

fn input() -> String {
    root().join("examples/models/digits_x.npy").display().to_string()
}

fn hw() -> String {
    root().join("examples/hw/default.toml").display().to_string()
}

/// `systole sweep MODEL --hw default.toml --input X.npy ARGS...` in `dir`.
fn sweep(dir: &Path, args: &[&str]) -> Output {
    let (m, h, x) = (model(), hw(), input());
    let mut all = vec!["sweep", m.as_str(), "--hw", h.as_str(), "--input", x.as_str()];
    all.extend_from_slice(args);
    Command::new(env!("CARGO_BIN_EXE_systole")).current_dir(dir).args(&all).output().expect("the binary runs")
}

#[track_caller]
fn assert_usage_error(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stdout:\n{}\nstderr:\n{err}", stdout(o));
    assert!(err.contains("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "expected `{n}` in:\n{err}");
    }
}

/// The points of a sweep's JSON.
fn read_json(path: &Path) -> Vec<Value> {
    let v: Value = serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(v["schema_version"], 1, "{v}");
    assert_eq!(v["command"], "sweep", "{v}");
    v["points"].as_array().expect("a JSON array of points").clone()
}

fn no_temp_files(dir: &Path) {
    for e in fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".tmp"), "temporary file {name} left behind");
    }
}

/// Table lines of the points: indented, starting with the point index.
fn table_rows(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with("  ") && l.trim_start().split(' ').next().is_some_and(|w| w.parse::<usize>().is_ok()))
        .collect()
}

#[test]
fn array_by_latency_sweep_runs_every_point_with_identical_outputs() {
    let dir = tempfile::tempdir().unwrap();
    // The default config moves 16 B/cycle, more than an 8-column array can
    // take (validate: dram.bytes_per_cycle <= array.cols), so narrow the bus.
    let o = sweep(
        dir.path(),
        &[
            "--set",
            "array=8,16",
            "--set",
            "dram.bytes_per_cycle=8",
            "--set",
            "dram.latency_cycles=50,200",
            "--json",
            "sweep.json",
            "--csv",
            "sweep.csv",
        ],
    );
    assert_ok(&o);
    let text = stdout(&o);
    assert_eq!(table_rows(&text).len(), 4, "{text}");
    assert!(text.contains("fastest") && text.contains("lowest energy"), "{text}");
    assert!(text.contains("bit for bit") && !text.contains("WARNING"), "{text}");

    let points = read_json(&dir.path().join("sweep.json"));
    assert_eq!(points.len(), 4);
    let get = |p: &Value, k: &str| p[k].as_f64().unwrap_or_else(|| panic!("{k} in {p}"));
    let param = |p: &Value, k: &str| p["params"][k].as_u64().unwrap_or_else(|| panic!("params.{k} in {p}"));
    // Sweep order: the first key varies slowest.
    let order: Vec<(u64, u64)> = points.iter().map(|p| (param(p, "array"), param(p, "dram.latency_cycles"))).collect();
    assert_eq!(order, [(8, 50), (8, 200), (16, 50), (16, 200)]);
    for p in &points {
        assert_eq!(p["status"], "ok", "{p}");
        assert_eq!(p["output_identical"], true, "{p}");
        assert_eq!(param(p, "dram.bytes_per_cycle"), 8);
        assert!(get(p, "cycles") > 0.0 && get(p, "time_us") > 0.0, "{p}");
        let util = get(p, "mac_utilization");
        assert!(util > 0.0 && util <= 1.0, "{p}");
        assert!(
            get(p, "dram_bus_bytes") > 0.0 && get(p, "energy_uj") > 0.0 && get(p, "energy_per_mac_pj") > 0.0,
            "{p}"
        );
        assert!(get(p, "area_mm2") > 0.0, "{p}");
    }
    // Higher latency never gives fewer cycles at the same array size.
    for pair in points.chunks(2) {
        assert!(get(&pair[1], "cycles") >= get(&pair[0], "cycles"), "{} vs {}", pair[0], pair[1]);
        // Area does not depend on latency.
        assert_eq!(get(&pair[0], "area_mm2"), get(&pair[1], "area_mm2"));
    }
    // A bigger array has more area.
    assert!(get(&points[2], "area_mm2") > get(&points[0], "area_mm2"));
    // Exactly one fastest and one lowest-energy point, and they are the minima.
    for (flag, key) in [("fastest", "time_us"), ("lowest_energy", "energy_pj")] {
        let marked: Vec<&Value> = points.iter().filter(|p| p[flag] == true).collect();
        assert_eq!(marked.len(), 1, "{flag}");
        let min = points.iter().map(|p| get(p, key)).fold(f64::INFINITY, f64::min);
        assert_eq!(get(marked[0], key), min, "{flag}");
    }

    let csv = fs::read_to_string(dir.path().join("sweep.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(lines[0].starts_with("point,array,dram.bytes_per_cycle,dram.latency_cycles,status,cycles"), "{csv}");
    assert!(lines[1].starts_with("0,8,8,50,ok,"), "{csv}");
    no_temp_files(dir.path());
}

#[test]
fn invalid_points_are_rows_not_failures() {
    let dir = tempfile::tempdir().unwrap();
    let o = sweep(dir.path(), &["--set", "array.rows=1,16", "--json", "sweep.json"]);
    assert_ok(&o);
    let text = stdout(&o);
    assert_eq!(table_rows(&text).len(), 2, "{text}");
    assert!(text.contains("invalid: array.rows = 1: must be in 2..=256"), "{text}");
    let points = read_json(&dir.path().join("sweep.json"));
    assert_eq!(points.len(), 2);
    assert_eq!(points[0]["status"], "invalid");
    assert!(points[0]["error"].as_str().unwrap().contains("array.rows"), "{}", points[0]);
    assert!(points[0]["cycles"].is_null() && points[0]["output_identical"].is_null(), "{}", points[0]);
    assert_eq!(points[1]["status"], "ok");
    assert_eq!(points[1]["output_identical"], true);
    assert_eq!(points[1]["fastest"], true);

    // The default 16 B/cycle bus is too wide for an 8-column array: those
    // points are invalid rows naming the constraint; the 16-column ones run.
    let o = sweep(dir.path(), &["--set", "array=8,16", "--set", "dram.latency_cycles=50,200", "--json", "b.json"]);
    assert_ok(&o);
    let points = read_json(&dir.path().join("b.json"));
    assert_eq!(points.len(), 4);
    let status: Vec<&str> = points.iter().map(|p| p["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["invalid", "invalid", "ok", "ok"]);
    assert!(points[0]["error"].as_str().unwrap().contains("dram.bytes_per_cycle"), "{}", points[0]);

    // A value of the wrong kind for an enum field is an invalid row naming the key.
    let o = sweep(dir.path(), &["--set", "tech.sram_cells=hp,nope"]);
    assert_ok(&o);
    assert!(stdout(&o).contains("invalid: tech.sram_cells = nope"), "{}", stdout(&o));
    no_temp_files(dir.path());
}

#[test]
fn usage_errors_exit_2_without_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = sweep(d, &["--set", "dram.latency=50,100", "--json", "s.json"]);
    assert_usage_error(&o, &["unknown configuration key `dram.latency`", "dram.latency_cycles"]);
    assert!(!d.join("s.json").exists());

    assert_usage_error(&sweep(d, &["--set", "dram=5"]), &["`dram` is a table"]);
    assert_usage_error(&sweep(d, &["--set", "array.rows=abc"]), &["array.rows", "takes a number"]);
    assert_usage_error(&sweep(d, &["--set", "array.rows"]), &["KEY=V1,V2"]);
    assert_usage_error(&sweep(d, &["--set", "array.rows=4,,8"]), &["empty value"]);
    assert_usage_error(&sweep(d, &["--set", "array=8", "--set", "array.cols=8"]), &["already set"]);
    let many: Vec<String> = (1..=20).map(|v| v.to_string()).collect();
    let a = format!("dram.latency_cycles={}", many.join(","));
    let b = format!("dram.max_outstanding={}", many.join(","));
    assert_usage_error(&sweep(d, &["--set", &a, "--set", &b]), &["400 points", "256"]);
    // --set is required.
    assert_eq!(sweep(d, &[]).status.code(), Some(2));
    no_temp_files(d);
}
