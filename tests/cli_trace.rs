//! `sim --trace` and `run --trace`: the file obeys the trace event format's
//! rules (`format_errors`: what Chrome's and Perfetto's importers need), and
//! says what the run did: one slice per executed instruction on its unit's
//! tracks, the layers with the cycles the report gives them, one flow arrow
//! per popped dependency token, the DRAM bus counter integrating to the
//! bytes the device counted, the whole span equal to the run's cycles.

mod common;
use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;

const DEFAULT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hw/default.toml");

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// Where the format's rules are broken, one message each: required fields
/// per phase, `X` slices disjoint or nested per track, flow ids paired with
/// each end inside a slice of its track, counters numeric with increasing
/// timestamps, metadata naming every track that has events.
fn format_errors(t: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let Some(events) = t["traceEvents"].as_array() else { return vec!["no traceEvents array".into()] };
    let num = |e: &Value, k: &str| e[k].as_f64().filter(|v| v.is_finite());
    let mut slices: BTreeMap<(u64, u64), Vec<(f64, f64)>> = BTreeMap::new();
    let mut named: Vec<(u64, u64)> = Vec::new();
    let mut flows: HashMap<String, Vec<&Value>> = HashMap::new();
    let mut counter_ts: HashMap<String, f64> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        let ph = e["ph"].as_str().unwrap_or("");
        let has = |k: &str| !e[k].is_null();
        let mut need = |keys: &[&str]| {
            for k in keys {
                if !has(k) {
                    errors.push(format!("event {i} ({ph}) has no `{k}`: {e}"));
                }
            }
        };
        match ph {
            "X" => need(&["name", "ts", "dur", "pid", "tid"]),
            "B" | "E" => need(&["ts", "pid", "tid"]),
            "M" => need(&["name", "pid", "args"]),
            "C" => need(&["name", "ts", "pid", "args"]),
            "s" | "t" | "f" => need(&["name", "cat", "id", "ts", "pid", "tid"]),
            other => errors.push(format!("event {i}: phase `{other}` is not one this trace uses")),
        }
        if ph != "M" && num(e, "ts").is_none() {
            errors.push(format!("event {i}: ts is not a finite number"));
        }
        let track = (e["pid"].as_u64().unwrap_or(0), e["tid"].as_u64().unwrap_or(0));
        match ph {
            "X" => {
                let (ts, dur) = (num(e, "ts").unwrap_or(0.0), num(e, "dur").unwrap_or(-1.0));
                if dur < 0.0 {
                    errors.push(format!("event {i}: dur {dur} is negative"));
                }
                slices.entry(track).or_default().push((ts, ts + dur));
            }
            "M" if e["name"] == "thread_name" => {
                if e["args"]["name"].as_str().is_none() {
                    errors.push(format!("event {i}: thread_name without args.name"));
                }
                named.push(track);
            }
            "C" => {
                let name = e["name"].as_str().unwrap_or("").to_string();
                match e["args"].as_object() {
                    Some(a) if !a.is_empty() && a.values().all(|v| v.as_f64().is_some_and(f64::is_finite)) => {}
                    _ => errors.push(format!("event {i}: counter `{name}` args are not all numbers: {}", e["args"])),
                }
                let ts = num(e, "ts").unwrap_or(0.0);
                if let Some(&prev) = counter_ts.get(&name) {
                    if ts <= prev {
                        errors.push(format!("event {i}: counter `{name}` goes back in time ({prev} then {ts})"));
                    }
                }
                counter_ts.insert(name, ts);
            }
            "s" | "t" | "f" => flows.entry(format!("{}/{}", e["cat"], e["id"])).or_default().push(e),
            _ => {}
        }
    }
    let eps = 1e-9;
    for (track, spans) in &mut slices {
        if !named.contains(track) {
            errors.push(format!("track {track:?} has slices but no thread_name"));
        }
        spans.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
        let mut open: Vec<(f64, f64)> = Vec::new();
        for &(s, f) in spans.iter() {
            while open.last().is_some_and(|&(_, end)| end <= s + eps) {
                open.pop();
            }
            if let Some(&(ps, pf)) = open.last() {
                if f > pf + eps {
                    errors.push(format!("track {track:?}: [{s}, {f}) overlaps [{ps}, {pf}) without nesting"));
                }
            }
            open.push((s, f));
        }
    }
    for (id, ends) in &flows {
        let phases: Vec<&str> = ends.iter().map(|e| e["ph"].as_str().unwrap_or("")).collect();
        if phases.first() != Some(&"s")
            || phases.last() != Some(&"f")
            || phases.iter().filter(|&&p| p == "s").count() != 1
        {
            errors.push(format!("flow {id}: phases {phases:?}, want one s, any t, one f"));
            continue;
        }
        let ts: Vec<f64> = ends.iter().map(|e| num(e, "ts").unwrap_or(0.0)).collect();
        if ts.windows(2).any(|w| w[1] < w[0]) {
            errors.push(format!("flow {id}: goes back in time {ts:?}"));
        }
        for e in ends {
            let track = (e["pid"].as_u64().unwrap_or(0), e["tid"].as_u64().unwrap_or(0));
            let t = num(e, "ts").unwrap_or(0.0);
            let inside = slices.get(&track).is_some_and(|v| v.iter().any(|&(s, f)| s - eps <= t && t <= f + eps));
            if !inside {
                errors.push(format!("flow {id}: its {} end at {t} is in no slice of track {track:?}", e["ph"]));
            }
        }
    }
    errors
}

/// The digits CNN for the default configuration and `n` images.
fn digits(d: &Path, n: u64) {
    let onnx = root().join("compiler/tests/data/digits/cnn_dense/int8_qop.onnx");
    assert_ok(&systole(d, &["compile", onnx.to_str().unwrap(), "--hw", DEFAULT, "-o", "model.sbin"]));
    let x: Vec<f32> = (0..n * 64).map(|i| ((i * 37 + 11) % 101) as f32 / 100.0).collect();
    write_npy(&d.join("x.npy"), &[n, 1, 1, 8, 8], &x);
}

fn events<'a>(t: &'a Value, ph: &str, cat: &str) -> Vec<&'a Value> {
    t["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == ph && (cat.is_empty() || e["cat"] == cat))
        .collect()
}

#[test]
fn sim_and_run_traces_follow_the_format_and_match_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    digits(d, 2);
    let o = systole(d, &["sim", "model.sbin", "--hw", DEFAULT, "--trace", "sim.json", "--json", "sim-report.json"]);
    assert_ok(&o);
    let o =
        systole(d, &["run", "model.sbin", "--input", "x.npy", "--out", "o", "--json", "r.json", "--trace", "run.json"]);
    assert_ok(&o);
    let (sim, run) = (read_json(&d.join("sim.json")), read_json(&d.join("run.json")));
    let (rs, rr) = (read_json(&d.join("sim-report.json")), read_json(&d.join("r.json")));
    for (what, t) in [("sim", &sim), ("run", &run)] {
        let errors = format_errors(t);
        assert!(errors.is_empty(), "{what} --trace breaks the format:\n{}", errors.join("\n"));
    }
    // Timing does not depend on the data: both traces hold the same events.
    assert_eq!(sim["traceEvents"], run["traceEvents"].clone());

    let t = &run;
    let mhz = rr["clock_mhz"].as_f64().unwrap();
    let cycles = rr["per_inference"]["cycles_max"].as_u64().unwrap();
    assert_eq!(rs["total_cycles"].as_u64().unwrap(), cycles);

    // One slice per executed instruction, on the unit tracks; the last
    // ends when the run does (the first starts after the first fetch).
    let mut instr: Vec<&Value> = Vec::new();
    for unit in ["load", "compute", "store", "finish"] {
        instr.extend(events(t, "X", unit));
    }
    assert_eq!(instr.len() as u64, rs["instructions"].as_u64().unwrap());
    let mut index: Vec<u64> = instr.iter().map(|e| e["args"]["index"].as_u64().unwrap()).collect();
    index.sort();
    index.dedup();
    assert_eq!(index.len(), instr.len(), "an instruction has two slices");
    let first = instr.iter().map(|e| e["args"]["start_cycle"].as_u64().unwrap()).min().unwrap();
    let last = instr.iter().map(|e| e["args"]["finish_cycle"].as_u64().unwrap()).max().unwrap();
    assert!(first > 0 && last == cycles, "instructions from cycle {first} to {last}, the run took {cycles}");
    let end_us = instr.iter().map(|e| e["ts"].as_f64().unwrap() + e["dur"].as_f64().unwrap()).fold(0.0, f64::max);
    assert!((end_us - cycles as f64 / mhz).abs() < 1e-6, "{end_us} µs vs {cycles} cycles at {mhz} MHz");

    // The layers, with the cycles the report gives them.
    let layers = events(t, "X", "layer");
    // (A view, such as a flatten of NHWC data, has no code and no slice.)
    let report_layers: Vec<&Value> = rr["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["instr_first"].as_u64() < l["instr_end_exclusive"].as_u64())
        .collect();
    assert!(report_layers.len() >= 4, "{}", rr["layers"]);
    assert_eq!(layers.len(), report_layers.len());
    for (l, r) in layers.iter().zip(report_layers) {
        assert_eq!(l["name"], r["name"]);
        let span = l["args"]["finish_cycle"].as_u64().unwrap() - l["args"]["start_cycle"].as_u64().unwrap();
        assert_eq!(span as f64, r["cycles_per_inference"].as_f64().unwrap(), "layer {}", l["name"]);
    }

    // One arrow per popped token, from an earlier (or the same-cycle) push.
    let starts = events(t, "s", "token");
    let pops: usize = instr
        .iter()
        .map(|e| {
            // One `@wait(QUEUE)` per token it pops.
            e["args"]["instr"].as_str().unwrap().matches("@wait(").count()
        })
        .sum();
    assert!(pops > 0, "the model's queues synchronise with tokens");
    assert_eq!(starts.len(), pops);
    let by_index: HashMap<u64, &Value> = instr.iter().map(|e| (e["args"]["index"].as_u64().unwrap(), *e)).collect();
    for s in &starts {
        let from = by_index[&s["args"]["from_index"].as_u64().unwrap()];
        let to = by_index[&s["args"]["to_index"].as_u64().unwrap()];
        assert!(
            from["args"]["finish_cycle"].as_u64() <= to["args"]["start_cycle"].as_u64(),
            "a token is popped before it is pushed: {from} -> {to}"
        );
    }

    // The DRAM bus counter integrates to the bytes the device counted
    // (minus instruction fetch, which no instruction slice moves).
    let window = t["otherData"]["dram_window_cycles"].as_u64().unwrap();
    let bw = events(t, "C", "dram");
    assert_eq!(bw[0]["ts"], 0.0, "the counter covers the run from its start");
    let mut bytes = 0.0;
    for (k, e) in bw.iter().enumerate() {
        let span = (cycles - (k as u64 * window).min(cycles)).min(window) as f64;
        bytes += (e["args"]["read"].as_f64().unwrap() + e["args"]["write"].as_f64().unwrap()) * span;
    }
    let counted = rs["dram_bus_bytes"].as_f64().unwrap();
    let fetch = 32.0 * rs["instructions"].as_f64().unwrap();
    assert!((bytes - (counted - fetch)).abs() < 1e-3 * counted, "{bytes} B in the counter, {counted} counted");

    // Queue counters: never negative, back to zero at the end.
    for unit in ["load", "compute", "store"] {
        let name = format!("{unit} in flight");
        let c: Vec<i64> = events(t, "C", "queue")
            .into_iter()
            .filter(|e| e["name"] == name.as_str())
            .map(|e| e["args"]["instructions"].as_i64().unwrap())
            .collect();
        assert!(c.iter().all(|&n| n >= 0) && c.last() == Some(&0), "{name}: {c:?}");
    }
}

#[test]
fn the_checker_catches_what_viewers_reject() {
    let good = serde_json::json!({ "traceEvents": [
        { "name": "thread_name", "ph": "M", "pid": 1, "tid": 0, "args": { "name": "a" } },
        { "name": "x", "ph": "X", "pid": 1, "tid": 0, "ts": 0.0, "dur": 2.0 },
        { "name": "y", "ph": "X", "pid": 1, "tid": 0, "ts": 2.0, "dur": 1.0 },
        { "name": "t", "cat": "token", "ph": "s", "id": 0, "pid": 1, "tid": 0, "ts": 1.0 },
        { "name": "t", "cat": "token", "ph": "f", "bp": "e", "id": 0, "pid": 1, "tid": 0, "ts": 2.5 },
        { "name": "c", "ph": "C", "pid": 1, "ts": 0.0, "args": { "v": 1 } },
        { "name": "c", "ph": "C", "pid": 1, "ts": 1.0, "args": { "v": 0 } },
    ]});
    assert_eq!(format_errors(&good), Vec::<String>::new());
    let broken = |f: &dyn Fn(&mut Vec<Value>), needle: &str| {
        let mut t = good.clone();
        f(t["traceEvents"].as_array_mut().unwrap());
        let errors = format_errors(&t);
        assert!(errors.iter().any(|e| e.contains(needle)), "want `{needle}` in {errors:?}");
    };
    broken(&|e| e[2]["ts"] = 1.5.into(), "overlaps");
    broken(&|e| drop(e.remove(4)), "phases");
    broken(&|e| e[4]["ts"] = 5.0.into(), "in no slice");
    broken(&|e| e[6]["ts"] = 0.0.into(), "back in time");
    broken(&|e| e[6]["args"]["v"] = "x".into(), "not all numbers");
    broken(&|e| drop(e[1].as_object_mut().unwrap().remove("dur")), "no `dur`");
    broken(&|e| drop(e.remove(0)), "no thread_name");
}
