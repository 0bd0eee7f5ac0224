//! CNN blocks built with onnx.helper and quantized by ONNX Runtime, compiled
//! and run bit for bit against ORT's outputs.
//!
//! Fixtures: `tests/data/ort_cnn/`, made by `tools/ort-fixtures/cnn_zoo.py`
//! (its docstring says how; `meta.json` records the versions): four small
//! models (ResNet, MobileNet and Inception-style blocks, a VGG stack; 16x16
//! inputs), each in four forms (QOperator / QDQ x int8 / uint8 activations,
//! per-channel int8 weights), with ORT's float output and every integer
//! tensor on 4 random inputs. A QDQ form mostly holds the same integer model
//! as its QOperator twin (the generator checks it), and ORT runs parts of a
//! QDQ model in float, so a QDQ import is compared with the twin's output;
//! where the integer models differ (ORT's QDQ quantizer gives AveragePool
//! its input's scale: `pool_block`) the QDQ form is its own reference
//! (`reference` in meta.json).
//!
//! Every (model, form) compiles for the 4x4 and 16x16 configurations and
//! runs on the cycle-accurate model and on the reference interpreter; both
//! must equal ORT's float output bit for bit, and every value of the
//! interpreter named like one of ORT's integer tensors must equal it. `PENDING` lists the cases
//! that other work has yet to make exact, with the reason; the test checks
//! the list exactly: a pending case that passes fails the test, so that it
//! is removed from the list.
//!
//! `cargo test --release --test ort_cnn -- --nocapture` prints, per case,
//! the layers whose values differ from ORT's.
//!
//! The full-size ResNet-18 and MobileNetV2 (224x224) are not committed: the
//! `ort` tier of `scripts/test.sh` generates them into `target/ort-models`
//! and runs `full_size_models_match_onnx_runtime` (ignored by default).

use compiler::interp::{self, Tensor};
use driver::Driver;
use isa::HwConfig;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const MODELS: [&str; 6] =
    ["resnet_block", "mobilenet_block", "inception_block", "vgg_stack", "pool_block", "upsample_block"];
const FORMS: [&str; 4] = ["qop_int8", "qop_uint8", "qdq_int8", "qdq_uint8"];

/// Cases not exact: (model, form, what the failure must show, why).
/// Checked exactly: a pending case that passes, or fails otherwise, fails
/// the test.
const PENDING: &[(&str, &str, &str, &str)] = &[];

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ort_cnn")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An npy file as its shape and values widened to f64 (float32, int8, uint8).
fn npy(path: &Path) -> (Vec<usize>, Vec<f64>) {
    let bytes = read(path);
    let f = npyz::NpyFile::new(&bytes[..]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let shape: Vec<usize> = f.shape().iter().map(|&d| d as usize).collect();
    let descr = f.dtype().descr();
    let v = match descr.trim_matches('\'') {
        "<f4" => f.into_vec::<f32>().unwrap().into_iter().map(f64::from).collect(),
        "|i1" => f.into_vec::<i8>().unwrap().into_iter().map(f64::from).collect(),
        "|u1" => f.into_vec::<u8>().unwrap().into_iter().map(f64::from).collect(),
        other => panic!("{}: dtype {other}", path.display()),
    };
    (shape, v)
}

/// ORT's value of one tensor, one sample per leading index.
struct Reference {
    per_sample: usize,
    data: Vec<f64>,
}

struct Case {
    graph: compiler::ir::Graph,
    input_shape: Vec<usize>,
    samples: usize,
    x: Vec<f32>,
    /// ORT's float output (of the form's reference: the QOperator twin's for
    /// most QDQ forms).
    y: Reference,
    /// ORT's integer tensors of the reference, by name.
    inner: HashMap<String, Reference>,
}

/// One model in one form from a fixture tree as `cnn_zoo.py` writes it.
fn load(root: &Path, model: &str, form: &str) -> Result<Case, String> {
    let meta: serde_json::Value = serde_json::from_slice(&read(&root.join("meta.json"))).unwrap();
    let entry = &meta["models"][model];
    let twin = entry["forms"][form]["reference"].as_str().expect("meta.json: reference").to_string();
    let bytes = read(&root.join(model).join(format!("{form}.onnx")));
    let graph = compiler::onnx::import(&bytes).map_err(|e| format!("import: {e}"))?;
    let (xs, x) = npy(&root.join(entry["input"].as_str().unwrap()));
    let samples = xs[0];
    let mut y = None;
    let mut inner = HashMap::new();
    for t in entry["forms"][&twin]["tensors"].as_array().unwrap() {
        let (s, d) = npy(&root.join(model).join(t["file"].as_str().unwrap()));
        assert_eq!(s[0], samples);
        let r = Reference { per_sample: s[1..].iter().product(), data: d };
        if t["output"].as_bool().unwrap() {
            y = Some(r);
        } else {
            inner.insert(t["name"].as_str().unwrap().to_string(), r);
        }
    }
    let input_shape = graph.values[graph.inputs[0]].shape.clone();
    let x = x.into_iter().map(|v| v as f32).collect();
    Ok(Case { graph, input_shape, samples, x, y: y.expect("meta.json: no output tensor"), inner })
}

/// A tensor's name without the quantizer's suffixes, so that a QDQ import's
/// values meet the QOperator twin's tensors of the same float tensor.
fn base_name(name: &str) -> &str {
    name.trim_end_matches("_QuantizeLinear_Output").trim_end_matches("_quantized")
}

/// Every IR value named like one of ORT's integer tensors whose value
/// differs, in node order, as "name (op): n of m differ".
fn differing_layers(c: &Case, vals: &[Vec<Tensor>]) -> (usize, Vec<String>) {
    let by_base: HashMap<&str, &Reference> = c.inner.iter().map(|(k, v)| (base_name(k), v)).collect();
    let (mut compared, mut out) = (0, Vec::new());
    for n in &c.graph.nodes {
        let v = n.outputs[0];
        let Some(r) = by_base.get(base_name(&c.graph.values[v].name)) else { continue };
        let mut differ = 0;
        for (s, val) in vals.iter().enumerate() {
            let Some(q) = val[v].as_quant() else { break };
            if q.len() != r.per_sample {
                break;
            }
            let want = &r.data[s * r.per_sample..][..r.per_sample];
            differ += q.iter().zip(want).filter(|(a, b)| **a as f64 != **b).count();
            compared += q.len();
        }
        if differ > 0 {
            out.push(format!("`{}` ({}): {differ} of {} differ", c.graph.values[v].name, n.op.name(), r.data.len()));
        }
    }
    (compared, out)
}

/// Compiles and runs one case on one configuration: the cycles of one
/// inference, or why it is not exact.
fn run_case(c: &Case, cfg: &HwConfig) -> Result<u64, String> {
    let lowered = compiler::lower::lower(&c.graph, cfg).map_err(|e| format!("{}: lower: {e}", cfg.name))?;
    let prog = lowered.program;
    let mut d = Driver::new(sim::Model::new(cfg).unwrap());
    d.load(&prog).map_err(|e| format!("{}: load: {e}", cfg.name))?;
    let n_in: usize = c.input_shape.iter().product();
    let per = c.y.per_sample;
    let (mut problems, mut vals, mut cycles) = (Vec::new(), Vec::new(), 0);
    for s in 0..c.samples {
        let x = &c.x[s * n_in..][..n_in];
        let want: Vec<u32> = c.y.data[s * per..][..per].iter().map(|&v| (v as f32).to_bits()).collect();
        let got = d.infer(&prog, x).map_err(|e| format!("{}: sample {s}: run: {e}", cfg.name))?;
        cycles = got.report.cycles();
        let sim: Vec<u32> = got.output.iter().map(|f| f.to_bits()).collect();
        let v = interp::run(&c.graph, &[Tensor::float(c.input_shape.clone(), x.to_vec())])
            .map_err(|e| format!("interpreter: {e}"))?;
        let it: Vec<u32> = v[c.graph.outputs[0]].as_float().unwrap().iter().map(|f| f.to_bits()).collect();
        let count = |a: &[u32]| a.iter().zip(&want).filter(|(x, y)| x != y).count();
        if sim != it {
            problems.push(format!("{}: sample {s}: model and interpreter differ", cfg.name));
        }
        if count(&it) > 0 {
            problems.push(format!("{}: sample {s}: {} of {per} outputs differ from ORT", cfg.name, count(&it)));
        }
        vals.push(v);
    }
    let (compared, layers) = differing_layers(c, &vals);
    if compared == 0 {
        problems.push("no IR value is named like an ORT tensor".into());
    }
    if !layers.is_empty() {
        problems.push(format!("layers that differ from ORT: {}", layers.join(", ")));
    }
    if problems.is_empty() {
        return Ok(cycles);
    }
    Err(problems.join("; "))
}

type Pending = (&'static str, &'static str, &'static str, &'static str);

/// Runs every (model, form) of the tree on `configs` and checks the
/// outcomes against `pending` exactly.
fn check_suite(root: &Path, models: &[&str], configs: &[HwConfig], pending: &[Pending]) {
    let mut failures = Vec::new();
    for &model in models {
        for form in FORMS {
            let outcome: Result<Vec<u64>, String> =
                load(root, model, form).and_then(|c| configs.iter().map(|cfg| run_case(&c, cfg)).collect());
            let p = pending.iter().find(|p| p.0 == model && p.1 == form);
            match (&outcome, p) {
                (Ok(cycles), None) => {
                    let names: Vec<&str> = configs.iter().map(|c| c.name.as_str()).collect();
                    println!("{model}/{form}: exact on {names:?}, {cycles:?} cycles per inference")
                }
                (Ok(_), Some(p)) => {
                    failures.push(format!("{model}/{form} now matches ORT: remove it from the pending list ({})", p.3))
                }
                (Err(e), Some(p)) if e.contains(p.2) => println!("{model}/{form}: PENDING ({}): {e}", p.3),
                (Err(e), Some(p)) => {
                    failures.push(format!("{model}/{form}: pending for `{}`, but fails otherwise: {e}", p.2))
                }
                (Err(e), None) => failures.push(format!("{model}/{form}: {e}")),
            }
        }
    }
    for p in pending {
        assert!(models.contains(&p.0) && FORMS.contains(&p.1), "the pending list names no case: {p:?}");
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn cnn_blocks_match_onnx_runtime_bit_for_bit() {
    check_suite(&data(), &MODELS, &[HwConfig::tiny_4x4(), HwConfig::default_16x16()], PENDING);
}

/// `compile --batch N` of every block: one program of N inferences equals N
/// single runs of the unbatched program bit for bit (and the interpreter
/// on the batched graph), N = 1, 3, 8 (the fixture's samples repeated).
#[test]
fn cnn_blocks_batch_like_single_runs() {
    for model in MODELS {
        for form in FORMS {
            let c = load(&data(), model, form).unwrap();
            for cfg in [HwConfig::tiny_4x4(), HwConfig::default_16x16()] {
                let single = compiler::lower::lower(&c.graph, &cfg).unwrap().program;
                let mut d = Driver::new(sim::Model::new(&cfg).unwrap());
                d.load(&single).unwrap();
                let n_in: usize = c.input_shape.iter().product();
                let sample = |s: usize| &c.x[(s % c.samples) * n_in..][..n_in];
                let singles: Vec<Vec<u32>> = (0..8)
                    .map(|s| d.infer(&single, sample(s)).unwrap().output.iter().map(|f| f.to_bits()).collect())
                    .collect();
                let mut cycles = Vec::new();
                for n in [1, 3, 8] {
                    let what = format!("{model}/{form} on {} at batch {n}", cfg.name);
                    let g = compiler::batch::with_batch(&c.graph, n).unwrap();
                    let prog = compiler::lower::lower(&g, &cfg).unwrap_or_else(|e| panic!("{what}: {e}")).program;
                    let mut d = Driver::new(sim::Model::new(&cfg).unwrap());
                    d.load(&prog).unwrap();
                    let x: Vec<f32> = (0..n).flat_map(|s| sample(s).to_vec()).collect();
                    let got = d.infer(&prog, &x).unwrap_or_else(|e| panic!("{what}: {e}"));
                    cycles.push(got.report.cycles() / n as u64);
                    let bits: Vec<u32> = got.output.iter().map(|f| f.to_bits()).collect();
                    assert_eq!(bits, singles[..n].concat(), "{what}: the batch differs from single runs");
                    let mut shape = c.input_shape.clone();
                    shape[0] = n;
                    let v = interp::run(&g, &[Tensor::float(shape, x)]).unwrap();
                    let it: Vec<u32> = v[g.outputs[0]].as_float().unwrap().iter().map(|f| f.to_bits()).collect();
                    assert_eq!(it, bits, "{what}: the interpreter differs from the model");
                }
                println!("{model}/{form} on {}: cycles per inference at batch 1, 3, 8: {cycles:?}", cfg.name);
            }
        }
    }
}

/// Full-size cases not exact, as `PENDING`.
const FULL_PENDING: &[Pending] = &[];

/// ResNet-18 and MobileNetV2 at 224x224 with random weights, made by
/// `bash scripts/test.sh ort` into `target/ort-models` (or
/// `$SYSTOLE_ORT_MODELS`): as the blocks, on the 16x16 default.
#[test]
#[ignore = "needs target/ort-models (bash scripts/test.sh ort)"]
fn full_size_models_match_onnx_runtime() {
    let root = std::env::var_os("SYSTOLE_ORT_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ort-models"));
    assert!(
        root.join("meta.json").exists(),
        "no full-size models under {} (run `bash scripts/test.sh ort`)",
        root.display()
    );
    check_suite(&root, &["resnet18", "mobilenetv2"], &[HwConfig::default_16x16()], FULL_PENDING);
}
