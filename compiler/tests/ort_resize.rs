//! Linear Resize against ONNX Runtime on random cases: Resize on int8/uint8
//! (QOperator: ORT interpolates the integers and truncates) and DQ → Resize
//! → Q (QDQ: in float, then rounded), QLinearConv → Resize (ORT runs the
//! Resize channels-last in its integer kernel: `nhwc`), the four coordinate modes ORT
//! supports for linear, random scales (or sizes), shapes, channel counts,
//! scales and zero points; over a million outputs in all.
//!
//! Fixtures: `tests/data/ort_resize/`, made by
//! `tools/ort-fixtures/resize_fixtures.py` (its docstring says how). Each
//! case is rebuilt here as the ONNX model the generator gave ORT (so the
//! import is under test too), its input drawn from the same SplitMix64
//! stream, and run on the reference interpreter; ORT's output is stored as
//! its hash (and in full for the first cases).
//!
//! What must hold: every output of the interpreter equals ORT's, no
//! allowance; the compiled program on the model equals the interpreter on
//! every case on the 16×16 default, and on the cases stored in full on
//! square, tall and wide arrays.

use compiler::interp::{self, Tensor};
use compiler::ir::Graph;
use compiler::onnx::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, AttributeProto, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto,
};
use compiler::resize::LinearRounding;
use driver::Driver;
use isa::HwConfig;
use prost::Message;
use serde_json::Value as Json;
use std::path::{Path, PathBuf};

mod common;
use common::{fnv1a64, ints, read, splitmix64_bytes, value_info};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ort_resize")
}

fn attr_s(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(v.as_bytes().to_vec()),
        ..Default::default()
    }
}

fn tensor(name: &str, dt: DataType, dims: &[i64], raw: Vec<u8>) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        data_type: Some(dt as i32),
        dims: dims.to_vec(),
        raw_data: Some(raw),
        ..Default::default()
    }
}

/// The case as the ONNX model the generator gave ORT.
fn case_model(c: &Json) -> Vec<u8> {
    let dt = if c["dtype"] == "uint8" { DataType::Uint8 } else { DataType::Int8 };
    let zp = |k: &str| vec![c[k].as_i64().unwrap() as u8];
    let sc = |k: &str| (c[k].as_f64().unwrap() as f32).to_le_bytes().to_vec();
    let mut inits = vec![tensor("roi", DataType::Float, &[0], vec![])];
    let resize_inputs: Vec<String> = if c.get("sizes").is_some() {
        let raw = ints(c, "sizes").iter().flat_map(|v| v.to_le_bytes()).collect();
        inits.push(tensor("sizes", DataType::Int64, &[4], raw));
        vec!["roi".into(), String::new(), "sizes".into()]
    } else {
        let s: Vec<f32> = [1.0, 1.0]
            .into_iter()
            .chain(c["scales"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32))
            .collect();
        inits.push(tensor("scales", DataType::Float, &[4], s.iter().flat_map(|v| v.to_le_bytes()).collect()));
        vec!["roi".into(), "scales".into()]
    };
    let node = |op: &str, input: Vec<String>, output: &str, attribute| NodeProto {
        op_type: Some(op.into()),
        name: Some(format!("{op}_{output}")),
        input,
        output: vec![output.into()],
        attribute,
        ..Default::default()
    };
    let resize = |i: &str, o: &str| {
        let mut input = vec![i.to_string()];
        input.extend(resize_inputs.iter().cloned());
        node(
            "Resize",
            input,
            o,
            vec![attr_s("mode", "linear"), attr_s("coordinate_transformation_mode", c["mode"].as_str().unwrap())],
        )
    };
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    let nodes = if c["kind"] == "nhwc" {
        // ORT ran QLinearConv (a 1x1 identity) then Resize; the import must
        // see the QLinearConv to give the Resize ORT's channels-last meaning.
        let ch = ints(c, "shape")[1];
        let eye: Vec<u8> = (0..ch * ch).map(|i| (i / ch == i % ch) as u8).collect();
        inits.extend([
            tensor("one", DataType::Float, &[], 1f32.to_le_bytes().to_vec()),
            tensor("zero", dt, &[], vec![0]),
            tensor("w", DataType::Int8, &[ch, ch, 1, 1], eye),
            tensor("wz", DataType::Int8, &[], vec![0]),
        ]);
        vec![
            node("QuantizeLinear", names(&["xq", "one", "zero"]), "x", vec![]),
            node("QLinearConv", names(&["x", "one", "zero", "w", "one", "wz", "one", "zero"]), "xc", vec![]),
            resize("xc", "y"),
        ]
    } else if c["kind"] == "qop" {
        // ORT ran Resize on the integer input; the IR needs its tensor
        // quantized, so the float input is quantized with scale 1, zero
        // point 0 (exact on these integers) — a truncating resize does not
        // read the quantization.
        inits.extend([
            tensor("one", DataType::Float, &[], 1f32.to_le_bytes().to_vec()),
            tensor("zero", dt, &[], vec![0]),
        ]);
        vec![node("QuantizeLinear", names(&["xq", "one", "zero"]), "x", vec![]), resize("x", "y")]
    } else {
        inits.extend([
            tensor("xs", DataType::Float, &[], sc("x_scale")),
            tensor("xz", dt, &[], zp("x_zero_point")),
            tensor("ys", DataType::Float, &[], sc("y_scale")),
            tensor("yz", dt, &[], zp("y_zero_point")),
        ]);
        vec![
            node("DequantizeLinear", names(&["x", "xs", "xz"]), "xf", vec![]),
            resize("xf", "yf"),
            node("QuantizeLinear", names(&["yf", "ys", "yz"]), "y", vec![]),
        ]
    };
    ModelProto {
        ir_version: Some(9),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(19) }],
        graph: Some(GraphProto {
            name: Some("resize".into()),
            node: nodes,
            initializer: inits,
            input: vec![if c["kind"] != "qdq" {
                value_info("xq", DataType::Float, &ints(c, "shape"))
            } else {
                value_info("x", dt, &ints(c, "shape"))
            }],
            output: vec![value_info("y", dt, &ints(c, "output_shape"))],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

struct Case {
    index: usize,
    json: Json,
    graph: Graph,
    input: Tensor,
    input_q: Vec<i32>,
    /// ORT's output bytes, where stored in full.
    ort: Option<Vec<u8>>,
}

impl Case {
    fn what(&self) -> String {
        let c = &self.json;
        let size = c.get("scales").map_or_else(|| format!("sizes {}", c["sizes"]), |s| format!("scales {s}"));
        format!("case {} ({} {} {} shape {} {size})", self.index, c["kind"], c["dtype"], c["mode"], c["shape"])
    }
}

fn load() -> (Json, Vec<Case>) {
    let meta: Json = serde_json::from_slice(&read(&data().join("cases.json"))).unwrap();
    let full = read(&data().join("outputs.bin"));
    let cases = meta["cases"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(index, c)| {
            let shape: Vec<usize> = ints(c, "shape").iter().map(|&d| d as usize).collect();
            let bytes = splitmix64_bytes(c["seed"].as_u64().unwrap(), shape.iter().product());
            let unsigned = c["dtype"] == "uint8";
            let input_q: Vec<i32> = bytes.iter().map(|&b| if unsigned { b as i32 } else { b as i8 as i32 }).collect();
            let input = if c["kind"] != "qdq" {
                Tensor::float(shape, input_q.iter().map(|&q| q as f32).collect())
            } else {
                Tensor::quant(shape, input_q.clone())
            };
            let graph = compiler::onnx::import(&case_model(c)).unwrap_or_else(|e| panic!("case {index}: import: {e}"));
            let n: usize = ints(c, "output_shape").iter().product::<i64>() as usize;
            let ort = c.get("output_offset").map(|o| full[o.as_u64().unwrap() as usize..][..n].to_vec());
            Case { index, json: c.clone(), graph, input, input_q, ort }
        })
        .collect();
    (meta, cases)
}

fn as_bytes(v: &[i32]) -> Vec<u8> {
    v.iter().map(|&q| q as u8).collect()
}

fn run_interp(c: &Case) -> Vec<i32> {
    let vals = interp::run(&c.graph, std::slice::from_ref(&c.input)).unwrap_or_else(|e| panic!("{}: {e}", c.what()));
    vals[c.graph.outputs[0]].as_quant().expect("quantized output").to_vec()
}

fn run_interp_on(g: &Graph, c: &Case) -> Vec<i32> {
    let vals = interp::run(g, std::slice::from_ref(&c.input)).unwrap_or_else(|e| panic!("{}: {e}", c.what()));
    vals[g.outputs[0]].as_quant().expect("quantized output").to_vec()
}

fn run_model(c: &Case, cfg: &HwConfig) -> Vec<i32> {
    let lowered = compiler::lower::lower(&c.graph, cfg).unwrap_or_else(|e| panic!("{}: {}: {e}", cfg.name, c.what()));
    let mut d = Driver::new(sim::Model::new(cfg).unwrap());
    d.load(&lowered.program).unwrap();
    d.infer_quantized(&lowered.program, &c.input_q)
        .unwrap_or_else(|e| panic!("{}: {}: {e}", cfg.name, c.what()))
        .output_q
}

#[test]
fn linear_resize_matches_onnx_runtime() {
    let (meta, cases) = load();
    assert_eq!(meta["probe_differences"], 0, "the generator saw ORT differ from the probe's definition");
    let (mut outputs, mut qdq, mut nhwc) = (0usize, 0usize, 0usize);
    let mut failures = Vec::new();
    for c in &cases {
        let ours = as_bytes(&run_interp(c));
        outputs += ours.len();
        if c.json["kind"] == "qdq" {
            qdq += ours.len();
        }
        if c.json["kind"] == "nhwc" {
            nhwc += ours.len();
            let rounding = c.graph.nodes.iter().find_map(|n| match &n.op {
                compiler::ir::Op::ResizeLinear(r) => Some(r.rounding),
                _ => None,
            });
            assert_eq!(rounding, Some(LinearRounding::NhwcInteger), "{}: the import's meaning", c.what());
        }
        if let Some(full) = &c.ort {
            if let Some(o) = (0..ours.len()).find(|&o| ours[o] != full[o]) {
                failures.push(format!("{}: output {o}: ORT {}, ours {}", c.what(), full[o], ours[o]));
                continue;
            }
        }
        if format!("{:016x}", fnv1a64(&ours)) != c.json["output_fnv1a64"].as_str().unwrap() {
            failures.push(format!("{}: the output differs from ORT's (hash)", c.what()));
        }
    }
    println!("{} cases, {outputs} outputs ({qdq} QDQ, {nhwc} channels-last): every one equal to ORT's", cases.len());
    // The graph a program records for `run --check` keeps the op exactly,
    // and so does the text format.
    for c in &cases {
        let back = compiler::ir_codec::decode(&compiler::ir_codec::encode(&c.graph))
            .unwrap_or_else(|e| panic!("{}: {e}", c.what()));
        assert_eq!(back, c.graph, "{}: the graph encoding", c.what());
        let text = compiler::text::print(&c.graph);
        let parsed = compiler::text::parse(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", c.what()));
        assert_eq!(run_interp_on(&parsed, c), run_interp(c), "{}: the text form", c.what());
    }
    assert_eq!(outputs as u64, meta["total_outputs"].as_u64().unwrap());
    assert!(outputs >= 1_000_000 && qdq >= 400_000 && nhwc >= 400_000, "{outputs} outputs, {qdq} QDQ, {nhwc} NHWC");
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

/// Every case compiled for the 16×16 default runs on the model to ORT's
/// output (the hash), so the vector-unit sequence is checked on every
/// fixture output, not only through the interpreter.
#[test]
fn linear_resize_on_the_model_matches_onnx_runtime() {
    let (_, cases) = load();
    let cfg = HwConfig::default_16x16();
    let mut outputs = 0;
    for c in &cases {
        let got = as_bytes(&run_model(c, &cfg));
        assert_eq!(
            format!("{:016x}", fnv1a64(&got)),
            c.json["output_fnv1a64"].as_str().unwrap(),
            "{}: model vs ORT (interpreter: {:?})",
            c.what(),
            got.iter().zip(as_bytes(&run_interp(c))).position(|(a, b)| *a != b)
        );
        outputs += got.len();
    }
    println!("{} cases, {outputs} outputs on the model equal ORT's", cases.len());
    assert!(outputs >= 1_000_000);
}

/// The cases stored in full on square, tall and wide arrays: the model
/// equals the interpreter (column blocks, tiles split across steps).
#[test]
fn linear_resize_on_other_arrays_equals_the_interpreter() {
    let (_, cases) = load();
    let full: Vec<&Case> = cases.iter().filter(|c| c.ort.is_some()).collect();
    assert!(full.len() >= 40, "{} cases stored in full", full.len());
    for cfg in [HwConfig::tiny_4x4(), HwConfig::tiny_shaped(8, 4), HwConfig::tiny_shaped(4, 8)] {
        for c in &full {
            assert_eq!(run_model(c, &cfg), run_interp(c), "{}: {}: model vs interpreter", cfg.name, c.what());
        }
    }
}

/// The import gives a Resize ORT's channels-last meaning exactly where ORT
/// runs it channels-last (after a QLinearConv), the NCHW one otherwise, and
/// refuses the channels-last Resize that keeps H and changes W (ORT runs it
/// in its float kernel over W and C, see `resize_fixtures.py`).
#[test]
fn the_import_decides_the_meaning_as_ort_lays_the_resize_out() {
    let meaning = |c: &Json| {
        let g = compiler::onnx::import(&case_model(c)).unwrap();
        g.nodes.iter().find_map(|n| match &n.op {
            compiler::ir::Op::ResizeLinear(r) => Some(r.rounding),
            _ => None,
        })
    };
    let mut c = serde_json::json!({
        "kind": "nhwc", "dtype": "int8", "mode": "half_pixel", "shape": [1, 3, 4, 5],
        "scales": [2.0, 1.5], "output_shape": [1, 3, 8, 7],
    });
    assert_eq!(meaning(&c), Some(LinearRounding::NhwcInteger));
    c["kind"] = "qop".into();
    assert_eq!(meaning(&c), Some(LinearRounding::Trunc));
    c["kind"] = "qdq".into();
    for k in ["x_zero_point", "y_zero_point"] {
        c[k] = 1.into();
    }
    for k in ["x_scale", "y_scale"] {
        c[k] = 0.5.into();
    }
    assert_eq!(meaning(&c), Some(LinearRounding::Requantize));
    // W alone changes: NCHW it is the float kernel's, channels-last refused.
    c["scales"] = serde_json::json!([1.0, 1.5]);
    c["output_shape"] = serde_json::json!([1, 3, 4, 7]);
    c["kind"] = "qop".into();
    assert_eq!(meaning(&c), Some(LinearRounding::Trunc));
    c["kind"] = "nhwc".into();
    let e = compiler::onnx::import(&case_model(&c)).unwrap_err().to_string();
    assert!(e.contains("keeps H and changes W"), "{e}");
}
