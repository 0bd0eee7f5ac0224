//! `systole sweep` at scale: the same table, JSON and CSV whatever the
//! thread count; shards merged by `systole merge` into exactly what the
//! unsharded run gives (and merges that cannot be right refused); `--resume`
//! keeping what a partial run left and refusing a file it cannot trust; the
//! Pareto column against its definition; `--area rtl` without yosys (with
//! yosys: `tests/cli_area.rs`, in the RTL tier); progress lines on a stderr
//! that is not a terminal, and `--quiet`.

mod common;
use common::schema::validate;
use common::*;
use serde_json::Value;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

/// 24 points of the digits CNN: array 1 (invalid: 4 rows), 8 and 16, DRAM
/// latency and clock.
const SET: [&str; 8] = [
    "--set",
    "array=1,8,16",
    "--set",
    "dram.bytes_per_cycle=8",
    "--set",
    "dram.latency_cycles=50,100,200,400",
    "--set",
    "clock.mhz=500,1000",
];
const TOTAL: usize = 24;

/// `systole sweep` of the digits CNN over [`SET`] with `args`, in `dir`.
fn sweep(dir: &Path, args: &[&str]) -> Output {
    let m = root().join("examples/models/digits_cnn_nm24.onnx");
    let h = root().join("examples/hw/default.toml");
    let x = root().join("examples/models/digits_x.npy");
    let mut all = vec!["sweep", m.to_str().unwrap(), "--hw", h.to_str().unwrap(), "--input", x.to_str().unwrap()];
    all.extend_from_slice(&SET);
    all.extend_from_slice(args);
    // Progress from the first point (it normally waits a second).
    Command::new(env!("CARGO_BIN_EXE_systole"))
        .current_dir(dir)
        .env("SYSTOLE_PROGRESS_DELAY_MS", "0")
        .args(&all)
        .output()
        .expect("the binary runs")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The table as printed, without the lines naming the files written.
fn table(o: &Output) -> String {
    stdout(o).lines().filter(|l| !l.starts_with("wrote ")).collect::<Vec<_>>().join("\n")
}

/// The file is valid against docs/schema/sweep.schema.json.
#[track_caller]
fn assert_schema(path: &Path) {
    let schema: Value = serde_json::from_str(&read(&root().join("docs/schema/sweep.schema.json"))).unwrap();
    let doc: Value = serde_json::from_str(&read(path)).unwrap();
    let errors = validate(&schema, &doc);
    assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
}

fn points(json: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(json).unwrap();
    v["points"].as_array().unwrap().clone()
}

#[test]
fn thread_counts_give_identical_tables_json_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let one = sweep(d, &["--jobs", "1", "--json", "1.json", "--csv", "1.csv"]);
    assert_ok(&one);
    let four = sweep(d, &["--jobs", "4", "--json", "4.json", "--csv", "4.csv"]);
    assert_ok(&four);
    assert_eq!(table(&one), table(&four));
    assert_eq!(read(&d.join("1.json")), read(&d.join("4.json")));
    assert_eq!(read(&d.join("1.csv")), read(&d.join("4.csv")));
    let p = points(&read(&d.join("1.json")));
    assert_eq!(p.len(), TOTAL);
    assert_eq!(p.iter().filter(|p| p["status"] == "ok").count(), 16, "array 1 is invalid, the rest run");
    assert!(p.iter().all(|p| p["status"] != "ok" || p["output_identical"] == true));
    // The table numbers points in order, each once.
    let rows: Vec<usize> =
        table(&one).lines().filter_map(|l| l.strip_prefix("  ")?.split_whitespace().next()?.parse().ok()).collect();
    assert_eq!(rows, (0..TOTAL).collect::<Vec<_>>());
    assert_fails(&sweep(d, &["--jobs", "0", "--json", "0.json"]), 2, &["--jobs"], d, &["0.json"]);
}

/// The Pareto column is what its definition says, recomputed from the
/// JSON's own figures: on the front unless another point that ran is no
/// worse in cycles, energy and area and better in one.
#[test]
fn pareto_marks_follow_the_definition() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = sweep(d, &["--json", "s.json", "--csv", "s.csv"]);
    assert_ok(&o);
    let p = points(&read(&d.join("s.json")));
    let key = |p: &Value| {
        (p["status"] == "ok")
            .then(|| [p["cycles"].as_f64().unwrap(), p["energy_pj"].as_f64().unwrap(), p["area_mm2"].as_f64().unwrap()])
    };
    let keys: Vec<_> = p.iter().map(key).collect();
    let mut on = 0;
    for (i, k) in keys.iter().enumerate() {
        let want = k.is_some_and(|k| !keys.iter().flatten().any(|o| o.iter().zip(&k).all(|(a, b)| a <= b) && *o != k));
        assert_eq!(p[i]["pareto"], want, "point {i}: {}", p[i]);
        on += want as usize;
    }
    // Faster clocks cost energy here, so the front has more than one point,
    // and not every point is on it.
    assert!(on > 1 && on < 16, "{on} points on the front");
    let text = stdout(&o);
    let marked = text.lines().filter(|l| l.contains("  *  ")).count();
    assert_eq!(marked, on, "{text}");
    assert!(text.contains(&format!("* marks the {on} points")), "{text}");
    let csv = read(&d.join("s.csv"));
    assert!(csv.lines().next().unwrap().contains(",pareto,"), "{csv}");
    assert_eq!(csv.lines().filter(|l| l.contains(",true,") || l.contains(",false,")).count(), TOTAL);
}

#[test]
fn shards_merge_into_the_unsharded_sweep_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let full = sweep(d, &["--json", "full.json", "--csv", "full.csv"]);
    assert_ok(&full);
    let mut counts = Vec::new();
    for i in 0..3 {
        let o = sweep(d, &["--shard", &format!("{i}/3"), "--json", &format!("s{i}.json"), "--jobs", "2"]);
        assert_ok(&o);
        assert!(stdout(&o).contains(&format!("shard {i}/3 (8 of them)")), "{}", stdout(&o));
        let v: Value = serde_json::from_str(&read(&d.join(format!("s{i}.json")))).unwrap();
        assert_eq!(v["shard"], serde_json::json!({"index": i, "of": 3}));
        assert_schema(&d.join(format!("s{i}.json")));
        let idx: Vec<u64> = v["points"].as_array().unwrap().iter().map(|p| p["point"].as_u64().unwrap()).collect();
        assert!(idx.iter().all(|&p| p % 3 == i), "shard {i}: {idx:?}");
        counts.push(idx.len());
    }
    assert_eq!(counts, [8, 8, 8]);
    // In any order.
    let merged = systole(d, &["merge", "s2.json", "s0.json", "s1.json", "--json", "m.json", "--csv", "m.csv"]);
    assert_ok(&merged);
    assert_eq!(table(&merged), table(&full));
    assert_eq!(read(&d.join("m.json")), read(&d.join("full.json")));
    assert_schema(&d.join("m.json"));
    assert_eq!(read(&d.join("m.csv")), read(&d.join("full.csv")));

    // Merges that cannot be right.
    let o = systole(d, &["merge", "s0.json", "s1.json", "--json", "bad.json"]);
    assert_fails(&o, 2, &["8 of the sweep's 24 points are in none of the files", "points 2, 5, 8"], d, &["bad.json"]);
    let o = systole(d, &["merge", "s0.json", "s1.json", "s2.json", "s1.json", "--json", "bad.json"]);
    assert_fails(&o, 2, &["point 1 is in both s1.json and s1.json"], d, &["bad.json"]);
    let o = systole(d, &["merge", "full.json", "s1.json"]);
    assert_fails(&o, 2, &["point 1 is in both full.json and s1.json"], d, &[]);
    // A shard of another sweep (one more latency): refused by its sweep_id.
    let m = root().join("examples/models/digits_cnn_nm24.onnx");
    let h = root().join("examples/hw/default.toml");
    let x = root().join("examples/models/digits_x.npy");
    let mut other = vec!["sweep", m.to_str().unwrap(), "--hw", h.to_str().unwrap(), "--input", x.to_str().unwrap()];
    other.extend_from_slice(&SET[..5]);
    other.extend_from_slice(&["dram.latency_cycles=50,100,200,800", "--set", "clock.mhz=500,1000"]);
    other.extend_from_slice(&["--shard", "2/3", "--json", "other.json", "-q"]);
    assert_ok(&systole(d, &other));
    let o = systole(d, &["merge", "s0.json", "s1.json", "other.json", "--json", "bad.json"]);
    assert_fails(&o, 2, &["other.json is of another sweep than s0.json", "sweep_id"], d, &["bad.json"]);
    fs::write(d.join("junk.json"), "{\"schema_version\": 1, \"points\": [").unwrap();
    let o = systole(d, &["merge", "s0.json", "junk.json"]);
    assert_fails(&o, 2, &["junk.json: not a systole sweep JSON"], d, &[]);

    // Bad shard specifications.
    assert_fails(&sweep(d, &["--shard", "3/3", "--json", "x.json"]), 2, &["--shard 3/3", "0 to 2"], d, &["x.json"]);
    assert_fails(&sweep(d, &["--shard", "0/0"]), 2, &["--shard 0/0", "at least 1"], d, &[]);
    assert_fails(&sweep(d, &["--shard", "1-3"]), 2, &["--shard 1-3", "I/N"], d, &[]);
}

#[test]
fn resume_keeps_the_points_a_partial_run_left() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_ok(&sweep(d, &["--json", "full.json", "--csv", "full.csv"]));
    let full = read(&d.join("full.json"));
    // What a run stopped after 10 points leaves: the JSON of those points.
    let mut partial: Value = serde_json::from_str(&full).unwrap();
    let kept: Vec<Value> = partial["points"].as_array().unwrap()[..10].to_vec();
    partial["points"] = Value::Array(kept);
    let partial_text = serde_json::to_string_pretty(&partial).unwrap();
    fs::write(d.join("r.json"), &partial_text).unwrap();
    let o = sweep(d, &["--resume", "--json", "r.json", "--csv", "r.csv"]);
    assert_ok(&o);
    assert!(stderr(&o).contains("systole sweep: 14/14 points"), "only the 14 missing points run:\n{}", stderr(&o));
    assert_eq!(read(&d.join("r.json")), full);
    assert_eq!(read(&d.join("r.csv")), read(&d.join("full.csv")));

    // The kept points are taken as they are, not measured again: a kept
    // point's cycles, changed in the file, stay changed.
    let mut tampered = partial.clone();
    tampered["points"][9]["cycles"] = Value::from(1u64);
    fs::write(d.join("t.json"), serde_json::to_string(&tampered).unwrap()).unwrap();
    assert_ok(&sweep(d, &["--resume", "--json", "t.json", "-q"]));
    assert_eq!(points(&read(&d.join("t.json")))[9]["cycles"], 1);
    // A complete file: nothing to run.
    let o = sweep(d, &["--resume", "--json", "r.json"]);
    assert_ok(&o);
    assert_eq!(stderr(&o), "");
    assert_eq!(read(&d.join("r.json")), full);
    // No file yet: a fresh run.
    assert_ok(&sweep(d, &["--resume", "--json", "new.json", "-q"]));
    assert_eq!(read(&d.join("new.json")), full);

    // Files it cannot trust are errors that leave them as they are.
    fs::write(d.join("cut.json"), &partial_text[..partial_text.len() / 2]).unwrap();
    let o = sweep(d, &["--resume", "--json", "cut.json"]);
    assert_fails(&o, 2, &["--resume: cut.json: not a systole sweep JSON", "remove it to start again"], d, &[]);
    assert_eq!(read(&d.join("cut.json")), partial_text[..partial_text.len() / 2]);
    let mut wrong = partial.clone();
    wrong["points"][3]["params"]["array"] = Value::from(16);
    fs::write(d.join("wrong.json"), serde_json::to_string(&wrong).unwrap()).unwrap();
    assert_fails(&sweep(d, &["--resume", "--json", "wrong.json"]), 2, &["point 3", "are not point 3's"], d, &[]);
    let o = sweep(d, &["--resume", "--json", "r.json", "--shard", "1/2"]);
    assert_fails(&o, 2, &["r.json: holds the whole sweep of this sweep, not shard 1/2"], d, &[]);
    let o = sweep(d, &["--resume", "--json", "r.json", "--energy-table", "missing.toml"]);
    assert_eq!(o.status.code(), Some(2));
    let mut other = partial.clone();
    other["sweep_id"] = Value::from("0123456789abcdef");
    fs::write(d.join("other.json"), serde_json::to_string(&other).unwrap()).unwrap();
    assert_fails(&sweep(d, &["--resume", "--json", "other.json"]), 2, &["holds another sweep"], d, &[]);
    assert_fails(&sweep(d, &["--resume"]), 2, &["--json"], d, &[]);
}

#[test]
fn progress_is_line_based_off_a_terminal_and_quiet_silences_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = sweep(d, &["--jobs", "2"]);
    assert_ok(&o);
    let err = stderr(&o);
    let line = |l: &str| l.starts_with("systole sweep: ") && (l.contains(" points (") || l.contains(": done, "));
    assert!(err.lines().all(line), "{err}");
    assert!(err.contains(&format!("systole sweep: {TOTAL}/{TOTAL} points")), "{err}");
    let o = sweep(d, &["--quiet"]);
    assert_ok(&o);
    assert_eq!(stderr(&o), "");
}

/// `x.npy`: an input of `examples/models/tiny_mlp.stm`.
fn write_tiny_input(d: &Path) {
    let bytes: Vec<u8> = std::iter::repeat_n(0.5f32.to_le_bytes(), 16).flatten().collect();
    let npy = compiler::npy::encode(compiler::npy::Elem::F32, &[1, 16], &bytes).unwrap();
    fs::write(d.join("x.npy"), npy).unwrap();
}

#[test]
fn area_from_rtl_without_yosys_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = root().join("examples/models/tiny_mlp.stm");
    let hw = root().join("examples/hw/tiny.toml");
    write_tiny_input(d);
    let o = Command::new(env!("CARGO_BIN_EXE_systole"))
        .current_dir(d)
        .env("SYSTOLE_YOSYS", d.join("no-such-yosys"))
        .args(["sweep", model.to_str().unwrap(), "--hw", hw.to_str().unwrap(), "--input", "x.npy"])
        .args(["--set", "dram.latency_cycles=10,20", "--area", "rtl", "--json", "none.json"])
        .output()
        .unwrap();
    assert_fails(&o, 2, &["--area rtl", "needs yosys", "apt-get install -y yosys"], d, &["none.json"]);
}
