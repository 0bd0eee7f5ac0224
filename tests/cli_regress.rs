//! Regression baselines end to end: `run` and `sweep` with
//! `--write-baseline`, `--baseline`, `--tolerance` and `--junit`; the
//! performance-only mode (no `--input`, no `--out`); bad baseline files;
//! and the example CI workflow's own command lines (examples/ci/).

mod common;
use common::schema::validate;
use common::*;
use serde_json::Value;
use std::fs;
use std::path::Path;

const DEFAULT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hw/default.toml");
const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hw/tiny.toml");
const DIGITS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/models/digits_cnn_nm24.onnx");
const DIGITS_X: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/models/digits_x.npy");
const MLP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/models/tiny_mlp.stm");

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = fs::read(path).unwrap();
    npyz::NpyFile::new(&bytes[..]).unwrap().into_vec::<f32>().unwrap()
}

fn write_json(path: &Path, v: &Value) {
    fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

/// The digits CNN compiled for the default configuration, in a new directory.
fn digits() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    assert_ok(&systole(dir.path(), &["compile", DIGITS, "--hw", DEFAULT, "-o", "m.sbin"]));
    dir
}

/// A testcase of a JUnit report: classname, name, failure message.
type Case = (String, String, Option<String>);

/// A JUnit report parsed: (tests, failures) of its one testsuite, each
/// testcase's (classname, name, failure message).
fn junit(path: &Path) -> (usize, usize, Vec<Case>) {
    let text = fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{}: not XML: {e}\n{text}", path.display()));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suites: Vec<_> = root.children().filter(|n| n.has_tag_name("testsuite")).collect();
    assert_eq!(suites.len(), 1, "{text}");
    let suite = suites[0];
    let count = |a: &str| suite.attribute(a).unwrap().parse::<usize>().unwrap();
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|c| {
            let failure =
                c.children().find(|n| n.has_tag_name("failure")).map(|f| f.attribute("message").unwrap().to_string());
            (c.attribute("classname").unwrap().to_string(), c.attribute("name").unwrap().to_string(), failure)
        })
        .collect();
    assert_eq!(count("tests"), cases.len(), "{text}");
    assert_eq!(count("failures"), cases.iter().filter(|c| c.2.is_some()).count(), "{text}");
    (count("tests"), count("failures"), cases)
}

#[test]
fn a_run_compared_with_its_own_baseline_passes_and_an_edited_one_names_each_regression() {
    let dir = digits();
    let d = dir.path();
    let run = ["run", "m.sbin", "--input", DIGITS_X, "--out", "out"];
    let o = systole(d, &[&run[..], &["--write-baseline", "b.json"]].concat());
    assert_ok(&o);
    assert!(stdout(&o).contains("wrote baseline b.json"), "{}", stdout(&o));
    let b = read_json(&d.join("b.json"));
    let errors = validate(&read_json(&root().join("docs/schema/baseline.schema.json")), &b);
    assert!(errors.is_empty(), "the baseline breaks its schema:\n{}", errors.join("\n"));
    let m = &b["entries"][0]["metrics"];
    assert!(m["cycles"].as_u64().unwrap() > 0 && m["energy_pj"].as_f64().unwrap() > 0.0, "{b}");

    // The output hash is SHA-256 of the float32 data `--out` wrote.
    let bytes: Vec<u8> = read_f32(&d.join("out/logits.npy")).iter().flat_map(|v| v.to_le_bytes()).collect();
    use sha2::Digest;
    let hex: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(m["output_hash"], format!("sha256:{hex}"));

    // The same run against it: every metric the same, a JUnit report without failures.
    let o = systole(d, &[&run[..], &["--baseline", "b.json", "--junit", "j.xml"]].concat());
    assert_ok(&o);
    assert!(stdout(&o).contains("4 metrics compared, 0 regressed, 0 improved"), "{}", stdout(&o));
    let (tests, failures, cases) = junit(&d.join("j.xml"));
    assert_eq!((tests, failures), (4, 0));
    let names: Vec<&str> = cases.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(names, ["cycles", "energy_pj", "dram_bus_bytes", "output_hash"]);

    // A baseline 10% faster, with less DRAM traffic and another output:
    // this run regressed in three metrics; its energy 10% below is an improvement.
    let mut edited = b.clone();
    let em = &mut edited["entries"][0]["metrics"];
    em["cycles"] = Value::from(em["cycles"].as_u64().unwrap() * 9 / 10);
    em["dram_bus_bytes"] = Value::from(em["dram_bus_bytes"].as_u64().unwrap() * 9 / 10);
    em["energy_pj"] = Value::from(em["energy_pj"].as_f64().unwrap() * 1.1);
    em["output_hash"] = Value::from(format!("sha256:{}", "0".repeat(64)));
    write_json(&d.join("fast.json"), &edited);
    fs::remove_file(d.join("j.xml")).unwrap();
    let o = systole(d, &[&run[..], &["--baseline", "fast.json", "--tolerance", "1%", "--junit", "j.xml"]].concat());
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    for needle in ["3 metrics regressed", "fast.json", "tolerance 1%", "cycles", "dram_bus_bytes", "output_hash"] {
        assert!(err.contains(needle), "`{needle}` not in {err}");
    }
    assert!(!err.contains("energy_pj"), "{err}");
    assert!(stdout(&o).contains("improved    run: energy_pj"), "{}", stdout(&o));
    // The JUnit report is written for the failing run too: that is what CI shows.
    let (tests, failures, cases) = junit(&d.join("j.xml"));
    assert_eq!((tests, failures), (4, 3));
    assert!(cases[0].2.as_deref().unwrap().contains("(+11.1"), "{cases:?}");
    assert!(cases[1].2.is_none(), "energy improved: {cases:?}");

    // Within the tolerance: 0.5% more cycles than the baseline passes at 1%, fails at 0.
    let mut near = b.clone();
    let cycles = near["entries"][0]["metrics"]["cycles"].as_u64().unwrap();
    near["entries"][0]["metrics"]["cycles"] = Value::from(cycles - cycles / 200);
    write_json(&d.join("near.json"), &near);
    let o = systole(d, &[&run[..], &["--baseline", "near.json", "--tolerance", "1%"]].concat());
    assert_ok(&o);
    assert!(stdout(&o).contains("1 changed within the tolerance"), "{}", stdout(&o));
    let o = systole(d, &[&run[..], &["--baseline", "near.json"]].concat());
    assert_fails(&o, 1, &["1 metric regressed", "cycles", "tolerance 0%"], d, &[]);
}

#[test]
fn bad_baselines_are_refused_before_the_run_with_exit_2_and_no_output() {
    let dir = digits();
    let d = dir.path();
    assert_ok(&systole(d, &["run", "m.sbin", "--write-baseline", "b.json", "--json", "report.json"]));
    let text = fs::read_to_string(d.join("b.json")).unwrap();
    fs::write(d.join("truncated.json"), &text[..text.len() / 2]).unwrap();
    fs::write(d.join("renamed.json"), text.replace("\"dram_bus_bytes\"", "\"dram_bytes\"")).unwrap();
    fs::write(d.join("version.json"), text.replace("\"schema_version\": 1", "\"schema_version\": 7")).unwrap();
    fs::write(d.join("empty.json"), "").unwrap();
    // Another model: the MLP compiled for the tiny configuration.
    assert_ok(&systole(d, &["compile", MLP, "--hw", TINY, "-o", "mlp.sbin"]));
    assert_ok(&systole(d, &["run", "mlp.sbin", "--write-baseline", "mlp.json"]));
    // The same model on a configuration with a slower DRAM.
    let slow = fs::read_to_string(DEFAULT).unwrap().replace("latency_cycles = 100", "latency_cycles = 300");
    assert!(slow.contains("latency_cycles = 300"));
    fs::write(d.join("slow.toml"), slow).unwrap();
    // Another input.
    write_npy(&d.join("x.npy"), &[1, 1, 8, 8], &[0.25f32; 64]);
    let cases: [(&str, &[&str], &[&str]); 9] = [
        ("truncated.json", &[], &["truncated.json", "truncated"]),
        ("renamed.json", &[], &["renamed.json", "dram_bus_bytes"]),
        ("version.json", &[], &["schema_version 7", "--write-baseline"]),
        ("empty.json", &[], &["empty.json", "truncated"]),
        ("report.json", &[], &["report.json", "`systole run --json` report"]),
        ("mlp.json", &[], &["different model", "main_graph"]),
        (
            "b.json",
            &["--hw", "slow.toml"],
            &["different hardware configuration", "`dram.latency_cycles` 100 where now 300"],
        ),
        ("b.json", &["--input", "x.npy"], &["different input", "x.npy"]),
        ("missing.json", &[], &["missing.json", "no such file"]),
    ];
    for (file, extra, needles) in cases {
        let args =
            [
                &[
                    "run",
                    "m.sbin",
                    "--baseline",
                    file,
                    "--junit",
                    "j.xml",
                    "--write-baseline",
                    "new.json",
                    "--out",
                    "o",
                ][..],
                extra,
            ]
            .concat();
        let o = systole(d, &args);
        assert_fails(&o, 2, needles, d, &["j.xml", "new.json", "o"]);
    }
    // A sweep's baseline given to run, and the other way round.
    let o = systole(d, &["sweep", MLP, "--hw", TINY, "--input", "x.npy", "--set", "array=4", "--baseline", "b.json"]);
    assert_fails(&o, 2, &["b.json"], d, &[]);
    // A bad tolerance, and --junit without --baseline (usage).
    let o = systole(d, &["run", "m.sbin", "--baseline", "b.json", "--tolerance=-3%"]);
    assert_fails(&o, 2, &["--tolerance -3%", "percentage"], d, &[]);
    let o = systole(d, &["run", "m.sbin", "--junit", "j.xml"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--baseline"), "{}", stderr(&o));
}

#[test]
fn write_baseline_is_atomic_a_failed_run_leaves_the_old_file() {
    let dir = digits();
    let d = dir.path();
    fs::write(d.join("b.json"), "old").unwrap();
    write_npy(&d.join("bad.npy"), &[3, 3], &[0f32; 9]);
    let o = systole(d, &["run", "m.sbin", "--input", "bad.npy", "--write-baseline", "b.json"]);
    assert_fails(&o, 2, &["bad.npy", "shape"], d, &[]);
    assert_eq!(fs::read_to_string(d.join("b.json")).unwrap(), "old");
    let o = systole(d, &["run", "m.sbin", "--write-baseline", "nodir/b.json"]);
    assert_fails(&o, 2, &["--write-baseline nodir/b.json", "does not exist"], d, &["nodir"]);
}

#[test]
fn without_input_or_out_a_run_uses_generated_inputs_the_same_every_time() {
    let dir = digits();
    let d = dir.path();
    let o = systole(d, &["run", "m.sbin", "--check", "--json", "r.json", "--write-baseline", "a.json"]);
    assert_ok(&o);
    let text = stdout(&o);
    assert!(
        text.contains("input         (generated: uniform over the quantized input range, ChaCha8 seed 0)"),
        "{text}"
    );
    assert!(text.contains("output        (not written: no --out)"), "{text}");
    assert!(text.contains("agree with the reference interpreter"), "{text}");
    let r = read_json(&d.join("r.json"));
    assert!(r["input"]["file"].as_str().unwrap().contains("generated"), "{r}");
    let errors = validate(&read_json(&root().join("docs/schema/report.schema.json")), &r);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    // Only the named files were written.
    let mut names: Vec<String> =
        fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["a.json", "m.sbin", "r.json"]);
    // The same inputs again: the same input hash, metrics and output hash.
    assert_ok(&systole(d, &["run", "m.sbin", "--write-baseline", "b.json"]));
    let (a, b) = (read_json(&d.join("a.json")), read_json(&d.join("b.json")));
    assert_eq!(a, b);
    // The generated input is not a constant: the logits are not all one value.
    assert_ok(&systole(d, &["run", "m.sbin", "--out", "o"]));
    let logits = read_f32(&d.join("o/logits.npy"));
    assert!(logits.iter().any(|&v| v != logits[0]), "{logits:?}");
}

#[test]
fn a_sweep_is_compared_point_by_point() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_npy(&d.join("x.npy"), &[1, 16], &[0.5f32; 16]);
    let sweep =
        ["sweep", MLP, "--hw", TINY, "--input", "x.npy", "--set", "array=1,4", "--set", "dram.latency_cycles=10,50"];
    assert_ok(&systole(d, &[&sweep[..], &["--write-baseline", "b.json"]].concat()));
    let b = read_json(&d.join("b.json"));
    let errors = validate(&read_json(&root().join("docs/schema/baseline.schema.json")), &b);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let entries = b["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 4);
    // array=1 does not validate: a point without metrics.
    assert_eq!((entries[0]["status"].as_str(), entries[0]["metrics"].is_null()), (Some("invalid"), true));

    let o = systole(d, &[&sweep[..], &["--baseline", "b.json", "--junit", "j.xml"]].concat());
    assert_ok(&o);
    let (tests, failures, _) = junit(&d.join("j.xml"));
    // Two points without metrics (one `status` case each), two with four.
    assert_eq!((tests, failures), (2 + 2 * 4, 0));

    // Point 3 was faster in the baseline; point 2 used to fail and now runs.
    let mut edited = b.clone();
    let m = &mut edited["entries"][3]["metrics"];
    m["cycles"] = Value::from(m["cycles"].as_u64().unwrap() / 2);
    edited["entries"][2]["metrics"] = Value::Null;
    edited["entries"][2]["status"] = Value::from("run_error");
    write_json(&d.join("e.json"), &edited);
    let o = systole(d, &[&sweep[..], &["--baseline", "e.json", "--junit", "j.xml"]].concat());
    assert_fails(&o, 1, &["1 metric regressed", "point 3 (array=4, dram.latency_cycles=50): cycles"], d, &[]);
    assert!(
        stdout(&o).contains("improved    point 2 (array=4, dram.latency_cycles=10): status run_error -> ok"),
        "{}",
        stdout(&o)
    );
    let (_, failures, cases) = junit(&d.join("j.xml"));
    assert_eq!(failures, 1);
    let failed: Vec<_> = cases.iter().filter(|c| c.2.is_some()).map(|c| (c.0.as_str(), c.1.as_str())).collect();
    assert_eq!(failed, [("point 3 (array=4, dram.latency_cycles=50)", "cycles")]);

    // A point the baseline lacks (a baseline of another shard): exit 2, naming it.
    let mut fewer = b.clone();
    fewer["entries"].as_array_mut().unwrap().remove(3);
    write_json(&d.join("fewer.json"), &fewer);
    let o = systole(d, &[&sweep[..], &["--baseline", "fewer.json", "--junit", "k.xml"]].concat());
    assert_fails(&o, 2, &["fewer.json", "has no point 3 (array=4, dram.latency_cycles=50)"], d, &["k.xml"]);

    // Another grid is another sweep.
    let o = systole(d, &["sweep", MLP, "--hw", TINY, "--input", "x.npy", "--set", "array=4", "--baseline", "b.json"]);
    assert_fails(&o, 2, &["different sweep", "array=1,4"], d, &[]);
}

/// The example workflow's command lines: every `systole` line of
/// examples/ci/systole-regression.yml, run from a directory that sees the
/// repository's `examples/`, passes against the committed baselines and
/// writes JUnit reports without failures. `UPDATE_EXPECT=1` re-records the
/// baselines (the same lines with --write-baseline).
#[test]
fn the_example_ci_workflow_runs_against_its_committed_baselines() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let workflow = fs::read_to_string(root().join("examples/ci/systole-regression.yml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::os::unix::fs::symlink(root().join("examples"), d.join("examples")).unwrap();
    let lines: Vec<&str> = workflow
        .lines()
        .map(|l| l.trim().trim_start_matches("run: "))
        .filter(|l| l.starts_with("systole ") || l.starts_with("mkdir -p "))
        .collect();
    assert!(lines.iter().filter(|l| l.contains("--baseline")).count() >= 3, "{lines:?}");
    let mut reports = Vec::new();
    for line in lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words[0] == "mkdir" {
            fs::create_dir_all(d.join(words[2])).unwrap();
            continue;
        }
        let mut args: Vec<&str> = Vec::new();
        let mut rest = words[1..].iter();
        while let Some(&w) = rest.next() {
            match w {
                "--baseline" if update => args.push("--write-baseline"),
                "--tolerance" | "--junit" if update => {
                    rest.next();
                    continue;
                }
                "--junit" => {
                    reports.push(rest.as_slice()[0]);
                    args.push(w);
                }
                _ => args.push(w),
            }
        }
        let o = systole(d, &args);
        assert_ok(&o);
    }
    if !update {
        assert_eq!(reports.len(), 3);
        for r in reports {
            let (tests, failures, _) = junit(&d.join(r));
            assert!(tests >= 4 && failures == 0, "{r}: {tests} tests, {failures} failures");
        }
    }
}
