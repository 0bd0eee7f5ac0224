//! End-to-end tests of `systole compile` and `systole run`: ONNX digits
//! models and text models compiled, run in batches with `--check`, outputs
//! compared with ONNX Runtime's bit for bit; the JSON report; errors (exit 2,
//! a message, no output file); a corrupted weight caught by `--check`
//! (exit 1, naming the layer).

mod common;
use common::*;
use std::fs;
use std::path::{Path, PathBuf};

use isa::instr::{Instr, BUF_SPAD};
use isa::program::Program;
use serde_json::Value;

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hw/tiny.toml");
const DEFAULT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hw/default.toml");

fn digits() -> PathBuf {
    root().join("compiler/tests/data/digits")
}

fn read_npy_f32(path: &Path) -> (Vec<u64>, Vec<f32>) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let f = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = f.shape().to_vec();
    (shape, f.into_vec::<f32>().unwrap())
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

/// The 32 reference images (`ref_x_f32.npy`, [32, 64]) reshaped for a model
/// input of `shape`, as a batch: `[32] + shape`.
fn write_reference_batch(path: &Path, shape: &[u64]) {
    let (s, x) = read_npy_f32(&digits().join("ref_x_f32.npy"));
    assert_eq!(s, vec![32, 64]);
    let mut batch = vec![32];
    batch.extend_from_slice(shape);
    write_npy(path, &batch, &x);
}

/// Compiles a digits model, runs the 32 reference images as one batch with
/// `--check`, and requires the logits to equal ONNX Runtime's bit for bit.
/// Returns the temp dir (with `model.sbin`, `x.npy`, `out/`, `report.json`)
/// and the run's stdout.
fn digits_end_to_end(model: &str, form: &str, input_shape: &[u64]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let onnx = digits().join(model).join(format!("int8_{form}.onnx"));
    let o = systole(d, &["compile", onnx.to_str().unwrap(), "--hw", DEFAULT, "-o", "model.sbin"]);
    assert_ok(&o);
    let text = stdout(&o);
    for needle in ["systole compile", "default-16x16", "MACs", "instructions", "compile time", "total"] {
        assert!(text.contains(needle), "{model} {form}: `{needle}` not in the summary:\n{text}");
    }
    write_reference_batch(&d.join("x.npy"), input_shape);
    let o = systole(d, &["run", "model.sbin", "--input", "x.npy", "--out", "out", "--check", "--json", "report.json"]);
    assert_ok(&o);
    let report = stdout(&o);
    assert!(report.contains("agree with the reference interpreter bit for bit"), "{report}");
    assert!(report.contains("x 32 runs"), "{report}");
    let (shape, got) = read_npy_f32(&d.join("out/logits.npy"));
    let (want_shape, want) = read_npy_f32(&digits().join(model).join(format!("ref_int8_{form}/logits.npy")));
    assert_eq!(shape, vec![32, 1, want_shape[1]], "{model} {form}: batch of [1, classes]");
    assert_eq!(bits(&got), bits(&want), "{model} {form}: logits differ from ONNX Runtime's");
    assert_no_temp_files(d);
    (dir, report)
}

#[test]
fn cnn_qop_compiles_runs_a_batch_and_checks_bit_exact() {
    let (dir, report) = digits_end_to_end("cnn_dense", "qop", &[1, 1, 8, 8]);
    // The per-layer table names the layers and their ops.
    for needle in ["per layer", "/conv1/Conv_quant", "/conv2/Conv_quant", "maxpool", "dense", "bandwidth"] {
        assert!(report.contains(needle), "`{needle}` not in:\n{report}");
    }
    let r = read_json(&dir.path().join("report.json"));
    assert_eq!(r["check"]["passed"], true);
    assert_eq!(r["check"]["runs"], 32);
    // conv1, conv2, maxpool, fc; the flatten is a view of the pool's buffer.
    assert_eq!(r["check"]["layers"], 4);
    assert_eq!(r["check"]["views_skipped"], 1);
}

#[test]
fn cnn_qdq_compiles_runs_a_batch_and_checks_bit_exact() {
    digits_end_to_end("cnn_dense", "qdq", &[1, 1, 8, 8]);
}

#[test]
fn mlp_qop_and_qdq_compile_run_and_check_bit_exact() {
    digits_end_to_end("mlp_dense", "qop", &[1, 64]);
    digits_end_to_end("mlp_dense", "qdq", &[1, 64]);
}

#[test]
fn json_report_has_totals_and_consistent_layers() {
    let (dir, _) = digits_end_to_end("mlp_dense", "qop", &[1, 64]);
    let r = read_json(&dir.path().join("report.json"));
    for key in [
        "total_cycles",
        "macs",
        "mac_utilization",
        "schema_version",
        "dram_bus_bytes",
        "energy_pj",
        "energy_breakdown",
        "layers",
        "per_inference",
        "layer_energy_attribution",
        "counters",
        "config",
    ] {
        assert!(r.get(key).is_some(), "report.json lacks `{key}`");
    }
    let per = &r["per_inference"];
    assert_eq!(per["inferences"], 32);
    assert_eq!(r["backend"], "sim");
    let cycles = r["total_cycles"].as_u64().unwrap();
    let mean = per["cycles_mean"].as_f64().unwrap();
    assert!((mean * 32.0 - cycles as f64).abs() < 1e-6, "{mean} x 32 vs {cycles}");
    // Latency at the clock, its inverse, energy per inference, 2 ops per MAC per pJ.
    let mhz = r["clock_mhz"].as_f64().unwrap();
    let latency = per["latency_us"].as_f64().unwrap();
    assert!((latency - mean / mhz).abs() < 1e-9 * latency, "{per}");
    assert!((per["inferences_per_s"].as_f64().unwrap() - 1e6 / latency).abs() < 1e-6, "{per}");
    let energy_uj = r["energy_uj"].as_f64().unwrap();
    assert!((per["energy_uj"].as_f64().unwrap() * 32.0 - energy_uj).abs() < 1e-9 * energy_uj, "{per}");
    let tops_w = 2.0 * r["macs"].as_f64().unwrap() / r["energy_pj"].as_f64().unwrap();
    assert!((per["tops_per_w"].as_f64().unwrap() - tops_w).abs() < 1e-12, "{per}");
    // The layers, then what no layer accounts for: together they add up
    // to the totals.
    let mut layers = r["layers"].as_array().unwrap().clone();
    assert_eq!(r["other"]["name"], "(other)");
    layers.push(r["other"].clone());
    let names: Vec<&str> = layers.iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    for (name, want) in names.iter().zip(["/fc1/Gemm", "/fc2/Gemm", "/fc3/Gemm", "(other)"]) {
        assert!(name.starts_with(want), "{names:?}");
    }
    for l in &layers {
        for key in [
            "name",
            "op",
            "cycles",
            "macs",
            "mac_utilization",
            "dram_data_bytes",
            "dram_bus_bytes",
            "bound",
            "energy_pj",
        ] {
            assert!(l.get(key).is_some(), "layer lacks `{key}`: {l}");
        }
        let (c, m) = (l["cycles"].as_u64().unwrap(), l["macs"].as_u64().unwrap());
        if c > 0 {
            let util = l["mac_utilization"].as_f64().unwrap();
            assert!((util - m as f64 / (c as f64 * 256.0)).abs() < 1e-12, "{l}");
        }
        assert!(l["bound"].is_null() || ["compute", "bandwidth"].contains(&l["bound"].as_str().unwrap()), "{l}");
    }
    let sum_u64 = |k: &str| layers.iter().map(|l| l[k].as_u64().unwrap()).sum::<u64>();
    // 1x64x128 + 1x128x64 + 1x64x10 MACs per image.
    assert_eq!(r["macs"].as_u64(), Some(32 * (64 * 128 + 128 * 64 + 64 * 10)));
    assert_eq!(sum_u64("macs"), r["macs"].as_u64().unwrap());
    assert_eq!(sum_u64("cycles"), cycles, "layer cycles and (other) add up to the total");
    assert_eq!(sum_u64("dram_bus_bytes"), r["dram_bus_bytes"].as_u64().unwrap());
    let energy: f64 = layers.iter().map(|l| l["energy_pj"].as_f64().unwrap()).sum();
    let total = r["energy_pj"].as_f64().unwrap();
    assert!(total > 0.0 && (energy - total).abs() <= 1e-9 * total, "{energy} vs {total}");
    // Every layer's attributed energy is positive; (other) is small.
    for l in &layers[..3] {
        assert!(l["energy_pj"].as_f64().unwrap() > 0.0, "{l}");
    }
    assert!(layers[3]["energy_pj"].as_f64().unwrap() < 0.05 * total);
}

/// A text model whose weights come from a .npy file next to it: a dense
/// layer 8 -> 4 on a float input.
const FILE_MODEL: &str = "\
model from_files

input x: f32[1, 8]
quantize q x -> xq: i8[1, 8] scale=0.0078125 zp=0
dense fc xq -> yq: i8[1, 4] scale=0.05 zp=-3 relu
    weights = file(\"w.npy\")
    w_scale = [0.01, 0.02, 0.015, 0.005]
    bias = [10, -20, 30, -40]
dequantize dq yq -> y
output y
";

#[test]
fn text_models_compile_and_run_single_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The example models, if present (another engineer writes them).
    let examples = root().join("examples/models");
    for (name, shape) in [("tiny_mlp", vec![1u64, 16]), ("tiny_cnn", vec![1, 1, 6, 6])] {
        let stm = examples.join(format!("{name}.stm"));
        if !stm.exists() {
            continue;
        }
        let sbin = format!("{name}.sbin");
        let o = systole(d, &["compile", stm.to_str().unwrap(), "--hw", TINY, "-o", &sbin]);
        assert_ok(&o);
        assert!(stdout(&o).contains(&format!("model `{name}`")), "{}", stdout(&o));
        let n: u64 = shape.iter().product();
        let x: Vec<f32> = (0..n).map(|i| (i * 7 % 11) as f32 / 10.0).collect();
        let input = format!("{name}_x.npy");
        write_npy(&d.join(&input), &shape, &x);
        let out = format!("{name}_out");
        let o = systole(d, &["run", &sbin, "--input", &input, "--out", &out, "--check"]);
        assert_ok(&o);
        assert!(stdout(&o).contains("x 1 run agree"), "{}", stdout(&o));
        // One inference: the output has the tensor's own shape.
        let files: Vec<_> = fs::read_dir(d.join(&out)).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let (oshape, _) = read_npy_f32(&files[0]);
        assert_eq!(oshape.len(), 2, "{oshape:?}");
        assert_eq!(oshape[0], 1);
    }

    // A model with a file reference, compiled from another directory: the
    // reference resolves next to the model.
    let m = d.join("model");
    fs::create_dir(&m).unwrap();
    fs::write(m.join("net.stm"), FILE_MODEL).unwrap();
    let w: Vec<i8> = (0..32).map(|i| ((i * 37) % 255 - 127) as i8).collect();
    write_npy(&m.join("w.npy"), &[4, 8], &w);
    let o = systole(d, &["compile", "model/net.stm", "--hw", TINY, "-o", "net.sbin"]);
    assert_ok(&o);
    write_npy(&d.join("x8.npy"), &[1, 8], &[0.1f32, -0.2, 0.3, 0.5, -0.9, 0.0, 0.7, -0.4]);
    let o = systole(d, &["run", "net.sbin", "--input", "x8.npy", "--out", "o", "--check", "--json", "o/r.json"]);
    assert_ok(&o);
    let (shape, y) = read_npy_f32(&d.join("o/y.npy"));
    assert_eq!(shape, vec![1, 4]);
    // The interpreter agrees (the check passed); outputs are ReLU'd.
    assert!(y.iter().all(|&v| v >= 0.0), "{y:?}");
    assert_eq!(read_json(&d.join("o/r.json"))["per_inference"]["inferences"], 1);

    // Missing referenced file: exit 2, names the file, no output.
    fs::remove_file(m.join("w.npy")).unwrap();
    let o = systole(d, &["compile", "model/net.stm", "--hw", TINY, "-o", "net2.sbin"]);
    assert_fails(&o, 2, &["net.stm:", "w.npy"], d, &["net2.sbin"]);
}

/// A model whose output is a Flatten of a convolution's NCHW output: the
/// output tensor lies in the conv's NHWC buffer with its columns permuted.
const CONV_FLATTEN: &str = "\
model conv_flatten

input x: f32[1, 1, 4, 4]
quantize q x -> xq: i8[1, 1, 4, 4] scale=0.0078125 zp=0
conv c1 xq -> f: i8[1, 3, 4, 4] scale=0.03 zp=-5
    pads=1
    weights: i8[3, 1, 3, 3] = [
        1, 2, 3, 4, 5, 6, 7, 8, 9,
        -9, 8, -7, 6, -5, 4, -3, 2, -1,
        0, 0, 0, 0, 127, 0, 0, 0, 0,
    ]
    w_scale = [0.01, 0.02, 0.004]
    bias = [5, -7, 0]
flatten flat f -> flat_out: i8[1, 48] axis=1
dequantize dq flat_out -> y
output y
";

/// Defect: a Flatten output compiled, but `run` exited 2 with "unknown
/// layout `row-major, columns in nhwc order`" (layouts were strings).
#[test]
fn flatten_output_runs_and_matches_the_interpreter() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("net.stm"), CONV_FLATTEN).unwrap();
    let o = systole(d, &["compile", "net.stm", "--hw", TINY, "-o", "net.sbin"]);
    assert_ok(&o);
    let x: Vec<f32> = (0..16).map(|i| (i as f32 - 7.5) / 9.0).collect();
    write_npy(&d.join("x.npy"), &[1, 1, 4, 4], &x);
    let o = systole(d, &["run", "net.sbin", "--input", "x.npy", "--out", "o", "--check"]);
    assert_ok(&o);
    let (shape, y) = read_npy_f32(&d.join("o/y.npy"));
    assert_eq!(shape, vec![1, 48]);
    // disasm shows the typed layouts, the config and the graph as text.
    let o = systole(d, &["disasm", "net.sbin"]);
    assert_ok(&o);
    let text = stdout(&o);
    for needle in [
        "row-major, columns in nhwc order (1 x 48)",
        "nhwc-halo1 (h 4, w 4, c 1)",
        "; layers:",
        "; config:",
        "name = \"tiny-4x4\"",
        "; graph (",
        ";   flatten flat f -> flat_out: i8[1, 48]",
        "; producer: systole compiler; source: conv_flatten",
    ] {
        assert!(text.contains(needle), "disasm lacks `{needle}`:\n{text}");
    }

    // Without the graph the file is smaller and still runs, but cannot be checked.
    let o = systole(d, &["compile", "net.stm", "--hw", TINY, "-o", "lean.sbin", "--no-graph"]);
    assert_ok(&o);
    assert!(fs::metadata(d.join("lean.sbin")).unwrap().len() < fs::metadata(d.join("net.sbin")).unwrap().len());
    assert_ok(&systole(d, &["run", "lean.sbin", "--input", "x.npy", "--out", "lean"]));
    assert_eq!(read_npy_f32(&d.join("lean/y.npy")).1, y);
    let o = systole(d, &["run", "lean.sbin", "--input", "x.npy", "--out", "lean2", "--check"]);
    assert_fails(&o, 2, &["records no graph", "--no-graph"], d, &["lean2"]);

    let g = compiler::text::parse(CONV_FLATTEN).unwrap();
    let input = compiler::interp::Tensor::float(vec![1, 1, 4, 4], x);
    let values = compiler::interp::run(&g, &[input]).unwrap();
    let compiler::interp::TensorData::Float(want) = &values[g.outputs[0]].data else { panic!("a float output") };
    assert_eq!(bits(&y), bits(want), "device {y:?}\ninterpreter {want:?}");
    assert!(want.iter().any(|&v| v != want[0]), "a constant output would not show a permutation");
}

#[test]
fn compile_errors_exit_2_without_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A truncated ONNX model.
    let bytes = fs::read(digits().join("cnn_dense/int8_qop.onnx")).unwrap();
    fs::write(d.join("cut.onnx"), &bytes[..bytes.len() / 3]).unwrap();
    let o = systole(d, &["compile", "cut.onnx", "--hw", DEFAULT, "-o", "cut.sbin"]);
    assert_fails(&o, 2, &["cut.onnx", "not an ONNX model"], d, &["cut.sbin"]);

    // Not a model format.
    fs::write(d.join("model.txt"), "hello").unwrap();
    let o = systole(d, &["compile", "model.txt", "--hw", DEFAULT, "-o", "m.sbin"]);
    assert_fails(&o, 2, &["model.txt", "unknown model format", ".onnx", ".stm"], d, &["m.sbin"]);

    // A syntax error in a text model: file, line and column.
    fs::write(d.join("bad.stm"), "model bad\ninput x: f32[1, 4]\nfrobnicate f x -> y\n").unwrap();
    let o = systole(d, &["compile", "bad.stm", "--hw", TINY, "-o", "bad.sbin"]);
    assert_fails(&o, 2, &["bad.stm:3:1", "unknown op"], d, &["bad.sbin"]);

    // A valid graph the accelerator does not run (yet): the lowering error
    // names the node. A transpose needs data movement the lowering lacks.
    let tr = "model tr\ninput x: i8[1, 2, 3, 4] scale=0.1 zp=0\ntranspose swap x -> y perm=(0, 1, 3, 2)\noutput y\n";
    fs::write(d.join("tr.stm"), tr).unwrap();
    let o = systole(d, &["compile", "tr.stm", "--hw", TINY, "-o", "tr.sbin"]);
    assert_fails(&o, 2, &["tr.stm", "cannot compile for config `tiny-4x4`", "swap", "transpose"], d, &["tr.sbin"]);

    // A missing model file and a missing output directory.
    let o = systole(d, &["compile", "nope.onnx", "--hw", DEFAULT, "-o", "n.sbin"]);
    assert_fails(&o, 2, &["nope.onnx", "no such file"], d, &["n.sbin"]);
    let o = systole(d, &["compile", "tr.stm", "--hw", TINY, "-o", "no/such/dir/tr.sbin"]);
    assert_fails(&o, 2, &["does not exist"], d, &[]);
}

/// A temp dir with the CNN digits model compiled to `model.sbin`.
fn compiled_cnn() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let onnx = digits().join("cnn_dense/int8_qop.onnx");
    assert_ok(&systole(dir.path(), &["compile", onnx.to_str().unwrap(), "--hw", DEFAULT, "-o", "model.sbin"]));
    dir
}

#[test]
fn run_usage_errors_exit_2() {
    let dir = compiled_cnn();
    let d = dir.path();
    // The flat [32, 64] array is neither [1, 1, 8, 8] nor N x [1, 1, 8, 8].
    let flat = digits().join("ref_x_f32.npy");
    let o = systole(d, &["run", "model.sbin", "--input", flat.to_str().unwrap(), "--out", "out"]);
    assert_fails(&o, 2, &["32x64", "1x1x8x8", "batch"], d, &["out"]);

    // Wrong dtype: int32 (the model takes float32, or int8 already quantized).
    write_npy(&d.join("q32.npy"), &[2, 1, 1, 8, 8], &[0i32; 128]);
    let o = systole(d, &["run", "model.sbin", "--input", "q32.npy", "--out", "out"]);
    assert_fails(&o, 2, &["q32.npy", "i32", "float32", "i8"], d, &["out"]);
    // An int8 batch is taken as already quantized.
    write_npy(&d.join("q8.npy"), &[2, 1, 1, 8, 8], &[-128i8; 128]);
    let o = systole(d, &["run", "model.sbin", "--input", "q8.npy", "--out", "q8", "--check"]);
    assert_ok(&o);
    assert_eq!(read_npy_f32(&d.join("q8/logits.npy")).0, vec![2, 1, 10]);

    // Without the `rtl` feature the RTL backends say how to get them.
    write_reference_batch(&d.join("x.npy"), &[1, 1, 8, 8]);
    #[cfg(not(feature = "rtl"))]
    for backend in ["rtl", "both"] {
        let o = systole(d, &["run", "model.sbin", "--input", "x.npy", "--out", "out", "--backend", backend]);
        assert_fails(&o, 2, &["built without the RTL", "--features rtl", "apt-get install -y verilator"], d, &["out"]);
    }
    // A configuration of another fingerprint.
    let o = systole(d, &["run", "model.sbin", "--input", "x.npy", "--out", "out", "--hw", TINY]);
    assert_fails(&o, 2, &["model.sbin", "default-16x16", "tiny-4x4", "recompile"], d, &["out"]);
    // Not a program; --out is a file.
    fs::write(d.join("junk.sbin"), b"junk").unwrap();
    let o = systole(d, &["run", "junk.sbin", "--input", "x.npy", "--out", "out"]);
    assert_fails(&o, 2, &["junk.sbin", "not a valid systole program"], d, &["out"]);
    fs::write(d.join("file"), b"").unwrap();
    let o = systole(d, &["run", "model.sbin", "--input", "x.npy", "--out", "file"]);
    assert_fails(&o, 2, &["--out file", "not a directory"], d, &[]);
}

#[test]
fn hw_override_changes_timing_only() {
    let dir = compiled_cnn();
    let d = dir.path();
    write_reference_batch(&d.join("x.npy"), &[1, 1, 8, 8]);
    let o = systole(d, &["run", "model.sbin", "--input", "x.npy", "--out", "a", "--json", "a.json"]);
    assert_ok(&o);
    // The same device with a slower DRAM: same fingerprint, more cycles,
    // the same outputs.
    let slow = fs::read_to_string(DEFAULT).unwrap();
    let slow = slow
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("latency_cycles") {
                "latency_cycles = 400".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    fs::write(d.join("slow.toml"), slow).unwrap();
    let o =
        systole(d, &["run", "model.sbin", "--input", "x.npy", "--out", "b", "--hw", "slow.toml", "--json", "b.json"]);
    assert_ok(&o);
    let (a, b) = (read_json(&d.join("a.json")), read_json(&d.join("b.json")));
    assert!(b["total_cycles"].as_u64() > a["total_cycles"].as_u64(), "{} vs {}", b["total_cycles"], a["total_cycles"]);
    assert_eq!(read_npy_f32(&d.join("a/logits.npy")), read_npy_f32(&d.join("b/logits.npy")));
}

/// The data-section offset of a byte of the first layer's weights: the
/// first scratchpad load of the layer that reads neither the model input
/// nor a buffer the layer itself writes (the im2col matrix), and is not
/// the parameters (those go to the accumulator).
fn first_layer_weight_offset(prog: &Program) -> usize {
    let layer = &prog.meta.layers[0];
    let code = &prog.code[layer.first..layer.last];
    let input = prog.inputs().next().unwrap();
    let bytes = input.layout.bytes() as u64;
    let mut written = vec![(input.addr, input.addr + bytes)];
    for i in code {
        if let Instr::Store(s) = i {
            let end = s.dram as u64 + (s.rows as u64 - 1) * s.stride as u64 + s.cols as u64;
            written.push((s.dram as u64, end));
        }
    }
    for i in code {
        if let Instr::Load(l) = i {
            let a = l.dram as u64;
            if l.buf == BUF_SPAD && !written.iter().any(|&(lo, hi)| (lo..hi).contains(&a)) {
                return (a - prog.data_addr) as usize;
            }
        }
    }
    panic!("no weight load in the first layer");
}

#[test]
fn check_catches_a_corrupted_weight_and_names_the_layer() {
    let dir = compiled_cnn();
    let d = dir.path();
    let mut prog = Program::from_bytes(&fs::read(d.join("model.sbin")).unwrap()).unwrap();
    // The device computes with a wrong weight while the reference keeps the
    // model's: the graph refers to the packed weights, so it is recorded
    // raw first (as if loading had corrupted the device's copy).
    let model = compiler::ir_codec::decode_with_data(&prog.meta.graph, &prog.data).unwrap();
    prog.meta.graph = compiler::ir_codec::encode(&model);
    let off = first_layer_weight_offset(&prog);
    prog.data[off] ^= 0x80;
    fs::write(d.join("bad.sbin"), prog.to_bytes()).unwrap();
    write_reference_batch(&d.join("x.npy"), &[1, 1, 8, 8]);

    // Without --check the corrupted model runs (and is wrong).
    assert_ok(&systole(d, &["run", "bad.sbin", "--input", "x.npy", "--out", "unchecked"]));
    // With --check: exit 1 at the first layer, on the first image.
    let o = systole(d, &["run", "bad.sbin", "--input", "x.npy", "--out", "out", "--check", "--json", "r.json"]);
    println!("{}", stderr(&o));
    assert_fails(
        &o,
        1,
        &[
            "check failed",
            "run 1 of 32,",
            "layer `/conv1/Conv_quant` (conv",
            "element",
            "[c=",
            "n-tile",
            "device",
            "reference",
        ],
        d,
        &["out", "r.json"],
    );
    // The intact model passes.
    assert_ok(&systole(d, &["run", "model.sbin", "--input", "x.npy", "--out", "out", "--check"]));
}

#[test]
fn help_lists_the_model_commands() {
    let o = systole(&root(), &["--help"]);
    assert_ok(&o);
    let h = stdout(&o);
    assert!(h.contains("compile") && h.contains("run"), "{h}");
    let o = systole(&root(), &["run", "--help"]);
    assert_ok(&o);
    for needle in ["--input", "--out", "--backend", "--check", "--json", "--hw"] {
        assert!(stdout(&o).contains(needle), "{}", stdout(&o));
    }
}

/// A program whose graph an older systole encoded (before weights were
/// references into the data) still runs; `--check` says to rebuild it.
#[test]
fn check_of_an_old_graph_encoding_says_rebuild_it() {
    let dir = compiled_cnn();
    let d = dir.path();
    let mut prog = Program::from_bytes(&fs::read(d.join("model.sbin")).unwrap()).unwrap();
    let version = compiler::ir_codec::MAGIC.len();
    prog.meta.graph[version..version + 4].copy_from_slice(&1u32.to_le_bytes());
    fs::write(d.join("old.sbin"), prog.to_bytes()).unwrap();
    write_reference_batch(&d.join("x.npy"), &[1, 1, 8, 8]);
    assert_ok(&systole(d, &["run", "old.sbin", "--input", "x.npy", "--out", "unchecked"]));
    let o = systole(d, &["run", "old.sbin", "--input", "x.npy", "--out", "out", "--check"]);
    assert_fails(
        &o,
        2,
        &["old.sbin", "made by another systole version (graph encoding version 1", "rebuild it with `systole compile`"],
        d,
        &["out"],
    );
}
