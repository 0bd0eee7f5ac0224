//! The flow's outputs end to end: every JSON report against its published
//! schema (docs/schema/), `sim` tensors in their device layout (defect 2),
//! trace tracks a viewer accepts (defect 4), runs counted from 1 in every
//! message (defect 10).

mod common;
use common::schema::validate;
use common::*;
use serde_json::Value;
use std::fs;
use std::path::Path;

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hw/tiny.toml");
const DEFAULT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hw/default.toml");

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn schema(name: &str) -> Value {
    read_json(&root().join("docs/schema").join(name))
}

#[track_caller]
fn assert_valid(schema: &Value, doc: &Value, what: &str) {
    let errors = validate(schema, doc);
    assert!(errors.is_empty(), "{what} breaks its schema:\n{}", errors.join("\n"));
}

/// The digits CNN compiled for the default configuration, and a batch of
/// `n` random images in [0, 1] as `x.npy`.
fn digits_cnn(n: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let onnx = root().join("compiler/tests/data/digits/cnn_dense/int8_qop.onnx");
    assert_ok(&systole(d, &["compile", onnx.to_str().unwrap(), "--hw", DEFAULT, "-o", "model.sbin"]));
    let x: Vec<f32> = (0..n * 64).map(|i| ((i * 37 + 11) % 101) as f32 / 100.0).collect();
    write_npy(&d.join("x.npy"), &[n, 1, 1, 8, 8], &x);
    dir
}

#[test]
fn every_json_output_matches_its_published_schema() {
    let report = schema("report.schema.json");
    let dir = digits_cnn(3);
    let d = dir.path();
    // run: a checked batch, and a single inference without --check.
    let o = systole(d, &["run", "model.sbin", "--input", "x.npy", "--out", "a", "--check", "--json", "a.json"]);
    assert_ok(&o);
    let a = read_json(&d.join("a.json"));
    assert_valid(&report, &a, "run --check --json");
    assert_eq!((a["schema_version"].as_u64(), a["command"].as_str()), (Some(1), Some("run")));
    assert_eq!(a["check"]["runs"], 3);
    let one: Vec<f32> = (0..64).map(|i| i as f32 / 64.0).collect();
    write_npy(&d.join("one.npy"), &[1, 1, 8, 8], &one);
    assert_ok(&systole(d, &["run", "model.sbin", "--input", "one.npy", "--out", "b", "--json", "b.json"]));
    let b = read_json(&d.join("b.json"));
    assert_valid(&report, &b, "run --json");
    assert!(b["check"].is_null() && b["other"]["op"].is_null() && b["other"]["instr_first"].is_null(), "{b}");
    // sim: an assembly program.
    let asm = root().join("examples/asm/gemm_4x4.s");
    assert_ok(&systole(d, &["asm", asm.to_str().unwrap(), "--hw", TINY, "-o", "gemm.sbin"]));
    assert_ok(&systole(d, &["sim", "gemm.sbin", "--hw", TINY, "--json", "s.json"]));
    let s = read_json(&d.join("s.json"));
    assert_valid(&report, &s, "sim --json");
    assert_eq!(s["command"], "sim");
    assert!(s.get("layers").is_none(), "sim reports no layers: {s}");
    // sweep: a point that does not validate and points that run.
    let model = root().join("examples/models/tiny_mlp.stm");
    write_npy(&d.join("m.npy"), &[1, 16], &[0.5f32; 16]);
    let o = systole(
        d,
        &[
            "sweep",
            model.to_str().unwrap(),
            "--hw",
            TINY,
            "--input",
            "m.npy",
            "--set",
            "array=1,4,8",
            "--json",
            "w.json",
        ],
    );
    assert_ok(&o);
    let w = read_json(&d.join("w.json"));
    assert_valid(&schema("sweep.schema.json"), &w, "sweep --json");
    let status: Vec<&str> = w["points"].as_array().unwrap().iter().map(|p| p["status"].as_str().unwrap()).collect();
    assert!(status.contains(&"invalid") && status.contains(&"ok"), "{status:?}");

    // The validator is not vacuous: an unknown key, a wrong type, a missing
    // key and a "-" where a number or null belongs are all caught.
    let mut bad = a.clone();
    bad["dram_bytes"] = Value::from(1);
    bad["total_cycles"] = Value::from("many");
    bad.as_object_mut().unwrap().remove("per_inference");
    bad["layers"][0]["bound"] = Value::from("-");
    let errors = validate(&report, &bad);
    for needle in
        ["`dram_bytes` is not in the schema", "$.total_cycles", "`per_inference` is missing", "$.layers[0].bound"]
    {
        assert!(errors.iter().any(|e| e.contains(needle)), "`{needle}` not in {errors:#?}");
    }
}

/// Defect 2: `sim --input NAME=X.npy` wrote the array in plain order over a
/// tensor whose device layout is NHWC with a halo, and `--output` read it
/// back plainly: the logits came out wrong without a warning.
#[test]
fn sim_places_tensors_in_their_device_layout() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = root().join("examples/models/tiny_cnn.stm");
    assert_ok(&systole(d, &["compile", model.to_str().unwrap(), "--hw", TINY, "-o", "cnn.sbin"]));
    let prog = isa::program::Program::from_bytes(&fs::read(d.join("cnn.sbin")).unwrap()).unwrap();
    let input = prog.inputs().next().unwrap();
    assert!(
        matches!(input.layout, isa::layout::Layout::Nhwc { halo: 1.., .. }),
        "the test needs a haloed input, got {:?}",
        input.layout
    );
    let output = prog.tensors.iter().find(|t| t.role == isa::program::TensorRole::Output).unwrap();

    let x: Vec<i8> = (0..36).map(|i| ((i * 53 + 7) % 256) as u8 as i8).collect();
    write_npy(&d.join("x.npy"), &[1, 1, 6, 6], &x);
    let o = systole(
        d,
        &[
            "sim",
            "cnn.sbin",
            "--hw",
            TINY,
            "--input",
            &format!("{}=x.npy", input.name),
            "--output",
            &format!("{}=y.npy", output.name),
        ],
    );
    assert_ok(&o);
    let bytes = fs::read(d.join("y.npy")).unwrap();
    let y: Vec<i8> = npyz::NpyFile::new(&bytes[..]).unwrap().into_vec().unwrap();

    // The reference interpreter on the same quantized image.
    let graph = compiler::text::parse(&fs::read_to_string(&model).unwrap()).unwrap();
    let vals =
        compiler::interp::run(&graph, &[compiler::interp::Tensor::from_i8(vec![1, 1, 6, 6], &x)]).expect("interpreter");
    let want: Vec<i8> = vals[graph.outputs[0]].as_quant().unwrap().iter().map(|&v| v as i8).collect();
    assert_eq!(y, want, "sim's logits differ from the interpreter's");
}

/// Defect 4: all instruction slices of a queue went on one track, where
/// 171 of 224 overlapped without nesting (the trace event format forbids
/// it; Perfetto drops them). On every track, slices must be disjoint or
/// properly nested, and every executed instruction must have its slice.
#[test]
fn trace_tracks_hold_disjoint_or_nested_slices() {
    let dir = digits_cnn(1);
    let d = dir.path();
    let o = systole(d, &["sim", "model.sbin", "--hw", DEFAULT, "--trace", "t.json", "--json", "r.json"]);
    assert_ok(&o);
    let t = read_json(&d.join("t.json"));
    let events = t["traceEvents"].as_array().unwrap();
    let slices: Vec<&Value> = events.iter().filter(|e| e["ph"] == "X").collect();
    let instr = slices.iter().filter(|e| e["cat"] != "layer").count();
    assert_eq!(instr as u64, read_json(&d.join("r.json"))["instructions"].as_u64().unwrap());
    let mut by_track: std::collections::BTreeMap<u64, Vec<(u64, u64)>> = Default::default();
    for e in &slices {
        let (s, f) = (e["args"]["start_cycle"].as_u64().unwrap(), e["args"]["finish_cycle"].as_u64().unwrap());
        by_track.entry(e["tid"].as_u64().unwrap()).or_default().push((s, f));
    }
    let names: Vec<&str> =
        events.iter().filter(|e| e["name"] == "thread_name").map(|e| e["args"]["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), by_track.len(), "one named track per tid: {names:?}");
    assert!(names.contains(&"load 2"), "this program overlaps its loads: {names:?}");
    let mut overlapping_queue = 0;
    for (tid, mut spans) in by_track {
        spans.sort_by_key(|&(s, f)| (s, std::cmp::Reverse(f)));
        // A stack of open slices: each new one must start after the top
        // ends (disjoint) or end within it (nested).
        let mut open: Vec<(u64, u64)> = Vec::new();
        for (s, f) in spans {
            while open.last().is_some_and(|&(_, end)| end <= s) {
                open.pop();
            }
            if let Some(&(ps, pf)) = open.last() {
                assert!(f <= pf, "track {tid}: [{s}, {f}) overlaps [{ps}, {pf}) without nesting");
                overlapping_queue += 1;
            }
            open.push((s, f));
        }
    }
    // Lanes make the slices of a track disjoint, so nothing even nests.
    assert_eq!(overlapping_queue, 0);
}

/// Defect 10: fault messages counted runs from 0 ("run 0") while check
/// failures counted from 1; every message now says "run K of N", from 1.
#[test]
fn runs_are_counted_from_one_in_every_message() {
    use isa::instr::Instr;
    let dir = digits_cnn(2);
    let d = dir.path();
    let mut prog = isa::program::Program::from_bytes(&fs::read(d.join("model.sbin")).unwrap()).unwrap();
    let k = prog.code.iter().position(|i| matches!(i, Instr::Load(_))).unwrap();
    if let Instr::Load(l) = &mut prog.code[k] {
        l.dram = u32::MAX - 64; // outside the memory window
    }
    fs::write(d.join("fault.sbin"), prog.to_bytes()).unwrap();
    let o = systole(d, &["run", "fault.sbin", "--input", "x.npy", "--out", "out"]);
    assert_fails(&o, 2, &["run 1 of 2: the device faulted at instruction", "in layer `"], d, &["out"]);
    assert!(!stderr(&o).contains("run 0"), "{}", stderr(&o));
}
