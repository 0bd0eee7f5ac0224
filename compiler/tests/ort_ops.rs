//! The reference interpreter against ONNX Runtime on the ops whose integer
//! semantics the ISA defines itself (docs/DESIGN.md §2):
//! QLinearAveragePool and QLinearGlobalAveragePool (exact int32 window sum,
//! then `requantize(sum, f32(s_x / f32(s_y * count)), zp)`). Their agreement
//! with ORT is *measured* here, and must stay within 1 LSB; the ops that must
//! agree bit for bit (QuantizeLinear, QLinearConv, QGemm, MaxPool, Flatten,
//! DequantizeLinear, and QLinearAdd: `vadd` is ORT's kernel) are asserted exact.
//!
//! Fixtures: `tests/data/ort_ops/`, made by `tools/ort-fixtures/make_fixtures.py`
//! (its docstring says how, and which ORT version; `meta.json` records it):
//! three small models (a residual Add, a 2x2/2 AveragePool, a
//! GlobalAveragePool -> Flatten -> Gemm head), each quantized by ORT in
//! QOperator and QDQ form, with ORT's int8 value of every quantized tensor
//! inside the model and its float output on 64 random inputs.
//!
//! Two comparisons per node:
//! - *isolated*: the node alone, fed ORT's own int8 inputs, so that every
//!   difference is the node's;
//! - *chained*: the whole imported graph on the float input, as a user runs
//!   it (a difference upstream may propagate; an exact op downstream of only
//!   exact ops must still be exact).
//!
//! `cargo test -p compiler --test ort_ops -- --nocapture` prints the measured
//! agreement as a table.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use compiler::interp::{run, Tensor};
use compiler::ir::{Graph, Node, Op, ValueId};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ort_ops")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn npy<T: npyz::Deserialize>(path: &Path) -> (Vec<usize>, Vec<T>) {
    let bytes = read(path);
    let f = npyz::NpyFile::new(&bytes[..]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let shape = f.shape().iter().map(|&d| d as usize).collect();
    (shape, f.into_vec().unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// ORT's value of one tensor on all samples: `[samples, ...]`.
#[derive(Clone)]
enum RefData {
    I8(Vec<i8>),
    F32(Vec<f32>),
}

struct Reference {
    /// Shape of one sample (the leading batch dimension is 1).
    shape: Vec<usize>,
    data: RefData,
}

impl Reference {
    fn per_sample(&self) -> usize {
        self.shape.iter().product()
    }

    fn sample(&self, i: usize) -> Tensor {
        let n = self.per_sample();
        match &self.data {
            RefData::I8(d) => Tensor::from_i8(self.shape.clone(), &d[i * n..][..n]),
            RefData::F32(d) => Tensor::float(self.shape.clone(), d[i * n..][..n].to_vec()),
        }
    }
}

struct Fixture {
    model: String,
    form: String,
    graph: Graph,
    /// ORT's executed operators (after its graph optimizations).
    ort_ops: Vec<String>,
    refs: HashMap<String, Reference>,
    x_shape: Vec<usize>,
    x: Vec<f32>,
    samples: usize,
}

fn meta() -> serde_json::Value {
    serde_json::from_slice(&read(&data_dir().join("meta.json"))).expect("meta.json")
}

fn load(model: &str, form: &str) -> Fixture {
    let meta = meta();
    let entry = &meta["models"][model][form];
    assert!(entry.is_object(), "meta.json has no {model}/{form}");
    let bytes = read(&data_dir().join(entry["model"].as_str().unwrap()));
    let graph = compiler::onnx::import(&bytes).unwrap_or_else(|e| panic!("{model}/{form}: import failed: {e}"));
    let (xs, x) = npy::<f32>(&data_dir().join(meta["input"]["file"].as_str().unwrap()));
    let samples = xs[0];
    let mut refs = HashMap::new();
    for t in entry["tensors"].as_array().unwrap() {
        let path = data_dir().join(model).join(form).join(t["file"].as_str().unwrap());
        let (shape, data) = match t["dtype"].as_str().unwrap() {
            "int8" => {
                let (s, d) = npy::<i8>(&path);
                (s, RefData::I8(d))
            }
            "float32" => {
                let (s, d) = npy::<f32>(&path);
                (s, RefData::F32(d))
            }
            other => panic!("{}: dtype {other}", path.display()),
        };
        assert_eq!(shape[0], samples, "{}", path.display());
        let mut one = shape;
        one[0] = 1;
        // A QDQ QuantizeLinear's output is also the value of the float tensor
        // it quantizes (the importer names a MaxPool or Flatten between DQ
        // and Q after that float tensor).
        for alias in t["aliases"].as_array().unwrap() {
            let r = Reference { shape: one.clone(), data: data.clone() };
            refs.insert(alias.as_str().unwrap().to_string(), r);
        }
        refs.insert(t["name"].as_str().unwrap().to_string(), Reference { shape: one, data });
    }
    let x_shape: Vec<usize> = [1].into_iter().chain(xs[1..].iter().copied()).collect();
    let x_name = meta["input"]["name"].as_str().unwrap().to_string();
    refs.insert(x_name, Reference { shape: x_shape.clone(), data: RefData::F32(x.clone()) });
    let ort_ops = entry["executed_ops"].as_array().unwrap().iter().map(|o| o.as_str().unwrap().to_string()).collect();
    Fixture { model: model.into(), form: form.into(), graph, ort_ops, refs, x_shape, x, samples }
}

/// How closely a node must agree with ORT.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Contract {
    /// Bit for bit (integers, or f32 bits for Dequantize).
    Exact,
    /// The ISA's own integer semantics: within 1 LSB.
    WithinOneLsb,
}

fn contract(op: &Op) -> Contract {
    match op {
        Op::AvgPool(_) => Contract::WithinOneLsb,
        _ => Contract::Exact,
    }
}

/// The ORT operator that computed what an IR node computes.
fn ort_name(op: &Op, input_shape: &[usize]) -> &'static str {
    match op {
        Op::Quantize => "QuantizeLinear",
        Op::Dequantize => "DequantizeLinear",
        Op::Conv(_) => "QLinearConv",
        Op::Dense(_) => "QGemm",
        Op::MaxPool(_) => "MaxPool",
        Op::AvgPool(p) if input_shape.len() == 4 && p.kernel == [input_shape[2], input_shape[3]] => {
            "QLinearGlobalAveragePool"
        }
        Op::AvgPool(_) => "QLinearAveragePool",
        Op::Add { .. } => "QLinearAdd",
        Op::Flatten { .. } => "Flatten",
        _ => "?",
    }
}

/// Agreement of one node's output over all samples.
#[derive(Default, Clone)]
struct Stats {
    elements: usize,
    differing: usize,
    /// In LSB of the output for quantized values; absolute for floats.
    max_diff: f64,
    float: bool,
}

impl Stats {
    fn add(&mut self, ours: &Tensor, ort: &Tensor) {
        assert_eq!(ours.shape, ort.shape);
        match (ours.as_quant(), ort.as_quant()) {
            (Some(a), Some(b)) => {
                for (x, y) in a.iter().zip(b) {
                    let d = (x - y).unsigned_abs() as f64;
                    self.elements += 1;
                    self.differing += usize::from(d != 0.0);
                    self.max_diff = self.max_diff.max(d);
                }
            }
            _ => {
                let (a, b) = (ours.as_float().unwrap(), ort.as_float().unwrap());
                self.float = true;
                for (x, y) in a.iter().zip(b) {
                    self.elements += 1;
                    self.differing += usize::from(x.to_bits() != y.to_bits());
                    self.max_diff = self.max_diff.max((x - y).abs() as f64);
                }
            }
        }
    }

    fn fraction(&self) -> f64 {
        self.differing as f64 / self.elements.max(1) as f64
    }
}

/// One line of the table.
struct Row {
    node: String,
    op: &'static str,
    ort: &'static str,
    contract: Contract,
    isolated: Option<Stats>,
    chained: Stats,
    /// Every node upstream of this one (not counting itself) is `Exact`.
    exact_upstream: bool,
}

/// A graph of just `node`, its inputs made graph inputs.
fn single_node_graph(g: &Graph, node: &Node) -> Graph {
    let mut sub = Graph { name: format!("{}-alone", node.name), ..Graph::default() };
    let mut map: HashMap<ValueId, ValueId> = HashMap::new();
    let mut inputs = Vec::new();
    for &i in &node.inputs {
        map.entry(i).or_insert_with(|| {
            inputs.push(i);
            sub.add_value(g.values[i].clone())
        });
    }
    let out = sub.add_value(g.values[node.outputs[0]].clone());
    sub.nodes.push(Node {
        name: node.name.clone(),
        op: node.op.clone(),
        inputs: node.inputs.iter().map(|i| map[i]).collect(),
        outputs: vec![out],
    });
    sub.inputs = inputs.iter().map(|i| map[i]).collect();
    sub.outputs = vec![out];
    sub
}

fn measure(f: &Fixture) -> Vec<Row> {
    let g = &f.graph;
    assert_eq!(g.inputs.len(), 1, "{}/{}: {g}", f.model, f.form);
    assert_eq!(g.values[g.inputs[0]].shape, f.x_shape, "{}/{}: input shape", f.model, f.form);
    let n_in: usize = f.x_shape.iter().product();

    // Which values lie downstream of a node that is not exact.
    let mut inexact = vec![false; g.values.len()];
    for n in &g.nodes {
        let up = n.inputs.iter().any(|&i| inexact[i]) || contract(&n.op) != Contract::Exact;
        inexact[n.outputs[0]] = up;
    }

    let mut rows: Vec<Row> = g
        .nodes
        .iter()
        .map(|n| {
            let in_shape = &g.values[n.inputs[0]].shape;
            Row {
                node: g.values[n.outputs[0]].name.clone(),
                op: n.op.name(),
                ort: ort_name(&n.op, in_shape),
                contract: contract(&n.op),
                isolated: None,
                chained: Stats::default(),
                exact_upstream: !n.inputs.iter().any(|&i| inexact[i]),
            }
        })
        .collect();

    // Chained: the whole graph on the float input.
    let mut compared_any = false;
    for s in 0..f.samples {
        let x = Tensor::float(f.x_shape.clone(), f.x[s * n_in..][..n_in].to_vec());
        let vals = run(g, &[x]).unwrap_or_else(|e| panic!("{}/{}: sample {s}: {e}", f.model, f.form));
        for (n, row) in g.nodes.iter().zip(&mut rows) {
            if let Some(r) = f.refs.get(&g.values[n.outputs[0]].name) {
                row.chained.add(&vals[n.outputs[0]], &r.sample(s));
                compared_any = true;
            }
        }
    }
    assert!(compared_any, "{}/{}: no IR value is named like an ORT tensor", f.model, f.form);

    // Isolated: every node whose inputs and output ORT computed, fed ORT's inputs.
    for (n, row) in g.nodes.iter().zip(&mut rows) {
        let names = |ids: &[ValueId]| -> Option<Vec<&Reference>> {
            ids.iter().map(|&i| f.refs.get(&g.values[i].name)).collect()
        };
        let (Some(ins), Some(out)) = (names(&n.inputs), f.refs.get(&g.values[n.outputs[0]].name)) else {
            continue;
        };
        let sub = single_node_graph(g, n);
        let mut st = Stats::default();
        for s in 0..f.samples {
            // One tensor per distinct input value, in the sub-graph's input order.
            let mut seen = Vec::new();
            let mut feed = Vec::new();
            for (&i, r) in n.inputs.iter().zip(&ins) {
                if !seen.contains(&i) {
                    seen.push(i);
                    feed.push(r.sample(s));
                }
            }
            let vals = run(&sub, &feed).unwrap_or_else(|e| panic!("{}/{}: {} alone: {e}", f.model, f.form, n.name));
            st.add(&vals[sub.outputs[0]], &out.sample(s));
        }
        row.isolated = Some(st);
    }
    rows
}

fn stats_cell(s: &Stats) -> String {
    if s.elements == 0 {
        return "-".into();
    }
    let max = if s.float { format!("{:.3e}", s.max_diff) } else { format!("{}", s.max_diff) };
    format!("{:>6} {:>5} {:>6.2}% {:>9}", s.elements, s.differing, 100.0 * s.fraction(), max)
}

fn table(f: &Fixture, rows: &[Row]) -> String {
    let mut t = String::new();
    writeln!(t, "\n== {}/{} ({} samples; ORT ran: {})", f.model, f.form, f.samples, f.ort_ops.join(", ")).unwrap();
    writeln!(
        t,
        "{:<34} {:<10} {:<26} {:<7} | {:>6} {:>5} {:>7} {:>9} | {:>6} {:>5} {:>7} {:>9}",
        "value", "IR op", "ORT op", "must", "iso n", "diff", "frac", "max LSB", "chain n", "diff", "frac", "max LSB"
    )
    .unwrap();
    for r in rows {
        let must = match r.contract {
            Contract::Exact => "exact",
            Contract::WithinOneLsb => "<=1 LSB",
        };
        let iso = r.isolated.as_ref().map_or("-".to_string(), stats_cell);
        writeln!(
            t,
            "{:<34} {:<10} {:<26} {:<7} | {:>32} | {:>32}",
            r.node,
            r.op,
            r.ort,
            must,
            iso,
            stats_cell(&r.chained)
        )
        .unwrap();
    }
    t
}

fn check(f: &Fixture, rows: &[Row]) {
    let mut failures = Vec::new();
    for r in rows {
        let what = format!("{}/{}: `{}` ({} vs ORT {})", f.model, f.form, r.node, r.op, r.ort);
        if let Some(iso) = &r.isolated {
            match r.contract {
                Contract::Exact if iso.differing != 0 => failures.push(format!(
                    "{what}, isolated: {} of {} differ (max {}), must be exact",
                    iso.differing, iso.elements, iso.max_diff
                )),
                Contract::WithinOneLsb if iso.max_diff > 1.0 => failures.push(format!(
                    "{what}, isolated: max difference {} LSB ({} of {} differ), must be <= 1",
                    iso.max_diff, iso.differing, iso.elements
                )),
                _ => {}
            }
        }
        let ch = &r.chained;
        if ch.elements == 0 {
            continue;
        }
        if r.exact_upstream {
            match r.contract {
                Contract::Exact if ch.differing != 0 => failures.push(format!(
                    "{what}, chained (only exact ops upstream): {} of {} differ (max {}), must be exact",
                    ch.differing, ch.elements, ch.max_diff
                )),
                Contract::WithinOneLsb if ch.max_diff > 1.0 => {
                    failures.push(format!("{what}, chained: max difference {} LSB, must be <= 1", ch.max_diff))
                }
                _ => {}
            }
        }
    }
    assert!(failures.is_empty(), "{}\n{}", table(f, rows), failures.join("\n"));
}

/// Imports and measures `model` in both forms; `op` is the IR op under test
/// and `ort_op` the ORT kernel that must have computed the reference.
fn run_model(model: &str, op: &str, ort_op: &str) {
    let mut out = String::new();
    for form in ["qop", "qdq"] {
        let f = load(model, form);
        assert!(
            f.ort_ops.iter().any(|o| o == ort_op),
            "{model}/{form}: ORT did not run {ort_op} (it ran {:?}); regenerate the fixtures",
            f.ort_ops
        );
        let rows = measure(&f);
        let under_test: Vec<&Row> = rows.iter().filter(|r| r.op == op && r.ort == ort_op).collect();
        assert!(!under_test.is_empty(), "{model}/{form}: the imported graph has no {op} node:\n{}", f.graph);
        for r in &under_test {
            assert!(
                r.isolated.as_ref().is_some_and(|s| s.elements > 0) && r.chained.elements > 0,
                "{model}/{form}: `{}` was not compared with ORT",
                r.node
            );
        }
        check(&f, &rows);
        out.push_str(&table(&f, &rows));
    }
    println!("{out}");
}

#[test]
fn qlinear_add_residual() {
    run_model("residual", "add", "QLinearAdd");
}

#[test]
fn qlinear_average_pool_2x2() {
    run_model("avgpool", "avgpool", "QLinearAveragePool");
}

#[test]
fn qlinear_global_average_pool_then_gemm() {
    run_model("gap", "avgpool", "QLinearGlobalAveragePool");
}

/// The fixtures are what the generator says: 64 inputs, the int8 tensors
/// of the ops under test, and the versions that made them.
#[test]
fn fixtures_are_complete() {
    let meta = meta();
    assert!(meta["versions"]["onnxruntime"].is_string());
    assert_eq!(meta["input"]["shape"][0].as_u64(), Some(64));
    for model in ["residual", "avgpool", "gap"] {
        for form in ["qop", "qdq"] {
            let f = load(model, form);
            assert_eq!(f.samples, 64);
            for n in &f.graph.nodes {
                if matches!(n.op, Op::Conv(_) | Op::Dense(_) | Op::Add { .. } | Op::AvgPool(_) | Op::MaxPool(_)) {
                    let name = &f.graph.values[n.outputs[0]].name;
                    assert!(f.refs.contains_key(name), "{model}/{form}: no ORT value for `{name}` ({})", n.op.name());
                }
            }
        }
    }
}
