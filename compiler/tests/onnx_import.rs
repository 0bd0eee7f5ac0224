//! The ONNX importer against ONNX Runtime's quantized digits models
//! (tests/data/digits, copied from the shared fixtures): QOperator and QDQ
//! forms, parameters against the exported initializers, QDQ == QOp up to
//! names, 2:4 sparsity, the standard-ops float tail, and bad input.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use compiler::ir::{ElemType, Graph, Op, Quant, WeightType};
use compiler::onnx::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto, AttributeProto, GraphProto,
    ModelProto, NodeProto, OperatorSetIdProto, TensorProto, ValueInfoProto,
};
use compiler::onnx::{import, import_with, FloatTail, ImportError, ImportOptions};
use prost::Message;

mod common;
use common::value_info;

const MODELS: [&str; 3] = ["mlp_dense", "cnn_dense", "cnn_nm24"];

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/digits")
}

fn model_bytes(model: &str, form: &str) -> Vec<u8> {
    let p = data_dir().join(model).join(format!("{form}.onnx"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn load(model: &str, form: &str) -> Graph {
    import(&model_bytes(model, form)).unwrap_or_else(|e| panic!("{model}/{form}: {e}"))
}

fn npy<T: npyz::Deserialize>(path: &Path) -> (Vec<u64>, Vec<T>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let f = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = f.shape().to_vec();
    (shape, f.into_vec().unwrap())
}

fn ops(g: &Graph) -> Vec<&'static str> {
    g.nodes.iter().map(|n| n.op.name()).collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn expected_ops(model: &str) -> Vec<&'static str> {
    if model.starts_with("mlp") {
        vec!["quantize", "dense", "dense", "dense", "dequantize"]
    } else {
        vec!["quantize", "conv", "conv", "maxpool", "flatten", "dense", "dequantize"]
    }
}

/// Asserts two graphs are equal up to value and node names: same inputs,
/// outputs, ops with identical parameters (f32 compared bit for bit),
/// value shapes, types and quantization, and the same wiring.
fn assert_same_up_to_names(a: &Graph, b: &Graph) {
    fn value_eq(a: &Graph, i: usize, b: &Graph, j: usize) {
        let (x, y) = (&a.values[i], &b.values[j]);
        assert_eq!((&x.shape, x.ty), (&y.shape, y.ty), "values `{}` and `{}`", x.name, y.name);
        let q = |q: Option<Quant>| q.map(|q| (q.scale.to_bits(), q.zero_point));
        assert_eq!(q(x.quant), q(y.quant), "quantization of `{}` and `{}`", x.name, y.name);
    }
    fn op_bits(op: &Op) -> Vec<u32> {
        match op {
            Op::Conv(c) => bits(&c.w_scale),
            Op::Dense(d) => bits(&d.w_scale),
            _ => vec![],
        }
    }
    let mut map: HashMap<usize, usize> = HashMap::new();
    let mut bind = |i: usize, j: usize| {
        value_eq(a, i, b, j);
        assert_eq!(*map.entry(i).or_insert(j), j, "wiring differs at `{}`", a.values[i].name);
    };
    assert_eq!(a.inputs.len(), b.inputs.len());
    for (&i, &j) in a.inputs.iter().zip(&b.inputs) {
        bind(i, j);
    }
    assert_eq!(ops(a), ops(b));
    for (x, y) in a.nodes.iter().zip(&b.nodes) {
        assert_eq!(x.op, y.op, "nodes `{}` and `{}`", x.name, y.name);
        assert_eq!(op_bits(&x.op), op_bits(&y.op), "scales of `{}` and `{}`", x.name, y.name);
        assert_eq!(x.inputs.len(), y.inputs.len());
        for (&i, &j) in x.inputs.iter().zip(&y.inputs) {
            bind(i, j);
        }
        for (&i, &j) in x.outputs.iter().zip(&y.outputs) {
            bind(i, j);
        }
    }
    assert_eq!(a.outputs.len(), b.outputs.len());
    for (&i, &j) in a.outputs.iter().zip(&b.outputs) {
        bind(i, j);
    }
}

/// The QLinearConv / QGemm nodes of `int8_qop_params/index.json` and a
/// reader of the initializers it lists.
struct Params {
    dir: PathBuf,
    files: HashMap<String, String>,
    nodes: Vec<(String, Vec<String>)>,
}

impl Params {
    fn new(model: &str) -> Params {
        let dir = data_dir().join(model).join("int8_qop_params");
        let index: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        let files = index["initializers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["tensor"].as_str().unwrap().to_string(), i["file"].as_str().unwrap().to_string()))
            .collect();
        let nodes = index["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                let ins = n["inputs"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
                (n["op"].as_str().unwrap().to_string(), ins)
            })
            .collect();
        Params { dir, files, nodes }
    }

    fn get<T: npyz::Deserialize>(&self, tensor: &str) -> (Vec<u64>, Vec<T>) {
        npy(&self.dir.join(&self.files[tensor]))
    }

    fn quant(&self, scale: &str, zp: &str) -> (u32, i32) {
        (self.get::<f32>(scale).1[0].to_bits(), self.get::<i8>(zp).1[0] as i32)
    }
}

fn out_quant(g: &Graph, node: usize) -> (u32, i32) {
    let q = g.values[g.nodes[node].outputs[0]].quant.unwrap();
    (q.scale.to_bits(), q.zero_point)
}

/// Weights, biases, scales and output quantization of every Conv and Dense
/// equal the initializers ORT wrote for the QOperator model.
fn check_params(model: &str, g: &Graph) {
    let p = Params::new(model);
    // The input quantization.
    assert_eq!(g.nodes[0].op, Op::Quantize);
    assert_eq!(out_quant(g, 0), p.quant("input_scale", "input_zero_point"));
    let layers: Vec<_> = p.nodes.iter().filter(|(op, _)| op == "QLinearConv" || op == "QGemm").collect();
    let ir: Vec<usize> = (0..g.nodes.len()).filter(|&i| matches!(g.nodes[i].op, Op::Conv(_) | Op::Dense(_))).collect();
    assert_eq!(layers.len(), ir.len(), "{model}: number of conv/dense layers");
    for ((op, ins), &i) in layers.iter().zip(&ir) {
        let (ws, w) = p.get::<i8>(&ins[3]);
        let scale = p.get::<f32>(&ins[4]).1;
        assert!(p.get::<i8>(&ins[5]).1.iter().all(|&z| z == 0));
        let (bias, ys, yz) =
            if op == "QLinearConv" { (&ins[8], &ins[6], &ins[7]) } else { (&ins[6], &ins[7], &ins[8]) };
        let bias = p.get::<i32>(bias).1;
        match &g.nodes[i].op {
            Op::Conv(c) => {
                assert_eq!(op.as_str(), "QLinearConv");
                assert_eq!(c.w_shape.map(|d| d as u64).to_vec(), ws, "{model} {}", g.nodes[i].name);
                assert_eq!(c.weights, w);
                assert_eq!(bits(&c.w_scale), bits(&scale));
                assert_eq!(c.bias, bias);
                assert_eq!((c.strides, c.pads, c.dilations, c.groups), ([1, 1], [1; 4], [1, 1], 1));
                assert_eq!((c.qmin, c.qmax), (-128, 127));
            }
            Op::Dense(d) => {
                assert_eq!(op.as_str(), "QGemm");
                // QGemm with transB = 1 stores [out, in], the IR's [n, k].
                assert_eq!(vec![d.n as u64, d.k as u64], ws, "{model} {}", g.nodes[i].name);
                assert_eq!(d.weights, w);
                assert_eq!(bits(&d.w_scale), bits(&scale));
                assert_eq!(d.bias, bias);
                assert_eq!((d.qmin, d.qmax), (-128, 127));
            }
            _ => unreachable!(),
        }
        assert_eq!(out_quant(g, i), p.quant(ys, yz), "{model} {} output quantization", g.nodes[i].name);
    }
}

#[test]
fn digits_models_import_in_both_forms() {
    for model in MODELS {
        for form in ["int8_qop", "int8_qdq"] {
            let g = load(model, form);
            g.validate().unwrap();
            assert_eq!(ops(&g), expected_ops(model), "{model}/{form}\n{g}");
            // One float input and one float output.
            assert_eq!(g.inputs.len(), 1);
            assert_eq!(g.values[g.inputs[0]].ty, ElemType::F32);
            assert_eq!(g.outputs.len(), 1);
            let out = &g.values[g.outputs[0]];
            assert_eq!((out.ty, &out.shape[..], out.name.as_str()), (ElemType::F32, &[1, 10][..], "logits"));
            check_params(model, &g);
        }
    }
}

#[test]
fn cnn_shapes_and_relu_as_zero_point() {
    for form in ["int8_qop", "int8_qdq"] {
        let g = load("cnn_dense", form);
        let shapes: Vec<Vec<usize>> = g.nodes.iter().map(|n| g.values[n.outputs[0]].shape.clone()).collect();
        let want: Vec<Vec<usize>> = vec![
            vec![1, 1, 8, 8],
            vec![1, 16, 8, 8],
            vec![1, 32, 8, 8],
            vec![1, 32, 4, 4],
            vec![1, 512],
            vec![1, 10],
            vec![1, 10],
        ];
        assert_eq!(shapes, want, "{form}");
        assert_eq!(g.values[g.inputs[0]].shape, [1, 1, 8, 8]);
        // ORT removed the ReLUs: they survive as zero point -128 of the
        // conv outputs, which MaxPool and Flatten pass through.
        for i in 1..5 {
            assert_eq!(g.values[g.nodes[i].outputs[0]].quant.unwrap().zero_point, -128, "{form} node {i}");
        }
        assert_eq!(g.values[g.nodes[5].inputs[0]].ty, ElemType::I8);
    }
}

#[test]
fn qdq_and_qop_give_the_same_graph() {
    for model in MODELS {
        let qop = load(model, "int8_qop");
        let qdq = load(model, "int8_qdq");
        assert_same_up_to_names(&qop, &qdq);
    }
}

#[test]
fn qop_value_names_are_the_tensor_names_of_the_reference_activations() {
    // The layer-by-layer references name ORT's tensors; the QOp import
    // keeps those names, so a test can look activations up by name.
    for model in MODELS {
        let g = load(model, "int8_qop");
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(data_dir().join(model).join("ref_int8_qop/meta.json")).unwrap())
                .unwrap();
        for act in meta["acts_in_graph_order"].as_array().unwrap() {
            let name = act["tensor"].as_str().unwrap();
            let v = g.value(name).unwrap_or_else(|| panic!("{model}: no value `{name}`\n{g}"));
            let (shape, _) =
                npy::<i8>(&data_dir().join(model).join("ref_int8_qop/acts").join(act["file"].as_str().unwrap()));
            // The references stack 32 batch-1 runs.
            assert_eq!(shape[1..].iter().map(|&d| d as usize).collect::<Vec<_>>(), g.values[v].shape[1..]);
        }
    }
}

fn assert_2_of_4(name: &str, w: &[i8], groups_of: impl Fn(usize) -> Vec<usize>, count: usize) {
    for gi in 0..count {
        let idx = groups_of(gi);
        let zeros = idx.iter().filter(|&&i| w[i] == 0).count();
        assert!(zeros >= 2, "{name}: group {gi} {:?} has {zeros} zeros", idx.iter().map(|&i| w[i]).collect::<Vec<_>>());
    }
}

#[test]
fn cnn_nm24_weights_are_2_of_4_sparse() {
    for form in ["int8_qop", "int8_qdq"] {
        let g = load("cnn_nm24", form);
        let Op::Conv(c2) = &g.nodes[2].op else { panic!("{form}: conv2") };
        let [m, cin, kh, kw] = c2.w_shape;
        assert_eq!(cin % 4, 0);
        // Groups of 4 consecutive input channels at one kernel position.
        let groups = m * (cin / 4) * kh * kw;
        assert_2_of_4(
            "conv2",
            &c2.weights,
            |gi| {
                let (o, rest) = (gi / ((cin / 4) * kh * kw), gi % ((cin / 4) * kh * kw));
                let (cg, pos) = (rest / (kh * kw), rest % (kh * kw));
                (0..4).map(|j| ((o * cin + cg * 4 + j) * kh * kw) + pos).collect()
            },
            groups,
        );
        let Op::Dense(fc) = &g.nodes[5].op else { panic!("{form}: fc") };
        assert_2_of_4("fc", &fc.weights, |gi| (0..4).map(|j| gi * 4 + j).collect(), fc.n * fc.k / 4);
    }
    // The test can fail: the dense CNN is not 2:4 sparse.
    let g = load("cnn_dense", "int8_qop");
    let Op::Dense(fc) = &g.nodes[5].op else { panic!() };
    assert!(fc.weights.chunks(4).any(|c| c.iter().filter(|&&w| w == 0).count() < 2));
}

#[test]
fn standard_ops_model_has_a_float_tail() {
    for model in ["cnn_dense", "cnn_nm24"] {
        let bytes = model_bytes(model, "int8_qop_std");
        // The float bias Add after DequantizeLinear is not expressible.
        match import(&bytes) {
            Err(ImportError::Unsupported { node, op, what }) => {
                assert_eq!((node.as_str(), op.as_str()), ("/fc/Gemm_Add", "Add"));
                assert!(what.contains("FloatTail::Cut"), "{what}");
            }
            other => panic!("{model}: {other:?}"),
        }
        // Cut: the integer part up to the dequantized QLinearMatMul output.
        let imp = import_with(&bytes, &ImportOptions { float_tail: FloatTail::Cut }).unwrap();
        let g = &imp.graph;
        assert_eq!(ops(g), expected_ops(model), "{g}");
        assert_eq!(imp.cut.len(), 1);
        assert_eq!(imp.cut[0].output, "logits");
        assert_eq!(imp.cut[0].nodes, ["/fc/Gemm_Add (Add)"]);
        assert_eq!(imp.cut[0].replaced_by, ["logits_matmul"]);
        assert_eq!(g.values[g.outputs[0]].name, "logits_matmul");
        assert!(g.value("logits_matmul_quantized").is_some());
        // Same convolutions and fc weights (stored [K, N], transposed) as
        // the QGemm model; the bias is the float tail's, so zero here.
        let qop = load(model, "int8_qop");
        for i in 0..5 {
            assert_eq!(g.nodes[i].op, qop.nodes[i].op);
        }
        let (Op::Dense(d), Op::Dense(dq)) = (&g.nodes[5].op, &qop.nodes[5].op) else { panic!() };
        assert_eq!((d.n, d.k, &d.weights), (dq.n, dq.k, &dq.weights));
        assert_eq!(bits(&d.w_scale), bits(&dq.w_scale));
        assert!(d.bias.iter().all(|&b| b == 0));
        // Cutting changes nothing in a model without a float tail.
        let full = import_with(&model_bytes(model, "int8_qop"), &ImportOptions { float_tail: FloatTail::Cut }).unwrap();
        assert!(full.cut.is_empty());
        assert_eq!(full.graph, qop);
    }
}

// ------------------------------------------------------------ bad input

#[test]
fn truncated_models_are_errors_not_panics() {
    let bytes = model_bytes("cnn_dense", "int8_qdq");
    match import(&bytes[..bytes.len() / 2]) {
        Err(e @ ImportError::Decode(_)) => assert!(e.to_string().contains("protobuf"), "{e}"),
        other => panic!("{other:?}"),
    }
    for cut in (0..bytes.len()).step_by(7) {
        // Every prefix: an error (or, at a field boundary, maybe a model).
        let _ = import(&bytes[..cut]);
    }
    assert!(import(&[]).is_err());
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_and_corrupted_bytes_never_panic() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for len in [1usize, 2, 5, 16, 100, 1000, 10_000] {
        for _ in 0..50 {
            let junk: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let _ = import(&junk);
        }
    }
    // Valid models with a few bytes flipped.
    for model in MODELS {
        let bytes = model_bytes(model, "int8_qdq");
        for _ in 0..300 {
            let mut b = bytes.clone();
            for _ in 0..1 + rng.next() % 4 {
                let i = (rng.next() as usize) % b.len();
                b[i] = rng.next() as u8;
            }
            let _ = import(&b);
        }
    }
}

// Small models built with the prost types.

fn attr_i(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn node(op: &str, name: &str, ins: &[&str], outs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: Some(name.into()),
        input: ins.iter().map(|s| s.to_string()).collect(),
        output: outs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

fn tensor(name: &str, dims: &[i64], dt: DataType) -> TensorProto {
    TensorProto { name: Some(name.into()), dims: dims.to_vec(), data_type: Some(dt as i32), ..Default::default() }
}

fn t_f32(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    TensorProto { float_data: v.to_vec(), ..tensor(name, dims, DataType::Float) }
}

fn t_i8(name: &str, dims: &[i64], v: &[i8]) -> TensorProto {
    TensorProto { raw_data: Some(v.iter().map(|&x| x as u8).collect()), ..tensor(name, dims, DataType::Int8) }
}

fn t_u8(name: &str, dims: &[i64], v: &[u8]) -> TensorProto {
    TensorProto { int32_data: v.iter().map(|&x| x as i32).collect(), ..tensor(name, dims, DataType::Uint8) }
}

fn t_i32(name: &str, dims: &[i64], v: &[i32]) -> TensorProto {
    TensorProto { int32_data: v.to_vec(), ..tensor(name, dims, DataType::Int32) }
}

fn model(nodes: Vec<NodeProto>, inits: Vec<TensorProto>, input: ValueInfoProto, output: &str) -> Vec<u8> {
    let opset = |d: &str, v| OperatorSetIdProto { domain: Some(d.into()), version: Some(v) };
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![opset("", 17), opset("com.microsoft", 1)],
        graph: Some(GraphProto {
            name: Some("test".into()),
            node: nodes,
            initializer: inits,
            input: vec![input],
            output: vec![value_info(output, DataType::Float, &[])],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// float x [1,4] -> Q -> QLinearMatMul (4 -> 2) -> `tail` nodes -> DQ -> y,
/// with a weight zero point of `wzp`.
fn tiny_qop(wzp: i8, tail: Vec<NodeProto>, tail_out: &str) -> Vec<u8> {
    let mut nodes = vec![
        node("QuantizeLinear", "q", &["x", "s", "z"], &["xq"], vec![]),
        node("QLinearMatMul", "mm", &["xq", "s", "z", "w", "ws", "wz", "s", "z"], &["yq"], vec![]),
    ];
    nodes.extend(tail);
    nodes.push(node("DequantizeLinear", "dq", &[tail_out, "s", "z"], &["y"], vec![]));
    let inits = vec![
        t_f32("s", &[], &[0.5]),
        t_i8("z", &[], &[-10]),
        t_i8("w", &[4, 2], &[1, 2, 3, 4, 5, 6, 7, 8]),
        t_f32("ws", &[2], &[0.25, 0.125]),
        t_i8("wz", &[2], &[0, wzp]),
        t_i8("lo", &[], &[-5]),
        t_i8("hi", &[], &[100]),
    ];
    model(nodes, inits, value_info("x", DataType::Float, &[1, 4]), "y")
}

#[test]
fn tiny_qop_model_imports() {
    let g = import(&tiny_qop(0, vec![], "yq")).unwrap();
    assert_eq!(ops(&g), ["quantize", "dense", "dequantize"]);
    let Op::Dense(d) = &g.nodes[1].op else { panic!() };
    // [K, N] = [4, 2] transposed to [n, k].
    assert_eq!((d.n, d.k), (2, 4));
    assert_eq!(d.weights, [1, 3, 5, 7, 2, 4, 6, 8]);
    assert_eq!(d.w_scale, [0.25, 0.125]);
}

#[test]
fn non_zero_weight_zero_point_is_rejected() {
    match import(&tiny_qop(3, vec![], "yq")) {
        Err(ImportError::Unsupported { node, op, what }) => {
            assert_eq!((node.as_str(), op.as_str()), ("mm", "QLinearMatMul"));
            assert!(what.contains("zero point `wz` is 3") && what.contains("symmetric"), "{what}");
        }
        other => panic!("{other:?}"),
    }
    // Same in a real model, QOperator and QDQ.
    for (form, name) in [("int8_qop", "/conv1/Conv_quant"), ("int8_qdq", "/conv1/Conv")] {
        let mut m = ModelProto::decode(&model_bytes("cnn_dense", form)[..]).unwrap();
        let g = m.graph.as_mut().unwrap();
        let zp = g.initializer.iter_mut().find(|t| t.name() == "conv1.weight_zero_point").unwrap();
        *zp = t_i8("conv1.weight_zero_point", &[16], &[1; 16]);
        let err = import(&m.encode_to_vec()).unwrap_err();
        assert!(matches!(&err, ImportError::Unsupported { node, .. } if node == name), "{err}");
        assert!(err.to_string().contains("symmetric"), "{err}");
    }
}

#[test]
fn relu_and_clip_on_quantized_tensors() {
    // Relu on int8 is max(q, 0) on the integers; it folds into the Dense.
    let g = import(&tiny_qop(0, vec![node("Relu", "relu", &["yq"], &["r"], vec![])], "r")).unwrap();
    assert_eq!(ops(&g), ["quantize", "dense", "dequantize"]);
    let Op::Dense(d) = &g.nodes[1].op else { panic!() };
    assert_eq!((d.qmin, d.qmax), (0, 127));
    // Clip with int8 bounds, also folded.
    let clip = node("Clip", "clip", &["yq", "lo", "hi"], &["c"], vec![]);
    let g = import(&tiny_qop(0, vec![clip], "c")).unwrap();
    let Op::Dense(d) = &g.nodes[1].op else { panic!() };
    assert_eq!((d.qmin, d.qmax), (-5, 100));
    // When the Dense output has another reader the clamp stays a node.
    let tail = vec![
        node("Relu", "relu", &["yq"], &["r"], vec![]),
        node("Concat", "cat", &["r", "yq"], &["c"], vec![attr_i("axis", 1)]),
    ];
    let g = import(&tiny_qop(0, tail, "c")).unwrap();
    assert_eq!(ops(&g), ["quantize", "dense", "clamp", "concat", "dequantize"]);
    assert_eq!(g.nodes[2].op, Op::Clamp { qmin: 0, qmax: 127 });
    assert_eq!(g.values[g.outputs[0]].shape, [1, 4]);
}

#[test]
fn qdq_relu_between_op_and_quantize_becomes_the_clamp() {
    // x -> Q -> DQ -> Conv(DQ w, DQ b) -> Relu -> Q -> DQ -> y
    let nodes = vec![
        node("QuantizeLinear", "qx", &["x", "s", "z"], &["xq"], vec![]),
        node("DequantizeLinear", "dqx", &["xq", "s", "z"], &["xf"], vec![]),
        node("DequantizeLinear", "dqw", &["w", "ws", "wz"], &["wf"], vec![attr_i("axis", 0)]),
        node("DequantizeLinear", "dqb", &["b", "bs", "bz"], &["bf"], vec![attr_i("axis", 0)]),
        node("Conv", "conv", &["xf", "wf", "bf"], &["c"], vec![attr_ints("pads", &[1, 1, 1, 1])]),
        node("Relu", "relu", &["c"], &["r"], vec![]),
        node("QuantizeLinear", "qy", &["r", "s2", "z2"], &["yq"], vec![]),
        node("DequantizeLinear", "dqy", &["yq", "s2", "z2"], &["y"], vec![]),
    ];
    let inits = vec![
        t_f32("s", &[], &[0.5]),
        t_u8("z", &[], &[128]),
        t_i8("w", &[2, 1, 3, 3], &[1; 18]),
        t_f32("ws", &[2], &[0.25, 0.5]),
        t_i8("wz", &[2], &[0, 0]),
        t_i32("b", &[2], &[7, -7]),
        t_f32("bs", &[2], &[0.125, 0.25]),
        t_i32("bz", &[2], &[0, 0]),
        t_f32("s2", &[], &[0.75]),
        t_u8("z2", &[], &[20]),
    ];
    let g = import(&model(nodes, inits, value_info("x", DataType::Float, &[1, 1, 5, 5]), "y")).unwrap();
    assert_eq!(ops(&g), ["quantize", "conv", "dequantize"]);
    let Op::Conv(c) = &g.nodes[1].op else { panic!() };
    assert_eq!((c.qmin, c.qmax, &c.bias[..]), (20, 255, &[7, -7][..]));
    let y = &g.values[g.nodes[1].outputs[0]];
    assert_eq!((y.ty, &y.shape[..]), (ElemType::U8, &[1, 2, 5, 5][..]));
    assert_eq!(y.quant, Some(Quant { scale: 0.75, zero_point: 20 }));
}

#[test]
fn unsupported_op_is_named() {
    let tail = vec![node("LpNormalization", "weird", &["yq"], &["n"], vec![])];
    match import(&tiny_qop(0, tail, "n")) {
        Err(ImportError::UnsupportedOp { node, op }) => {
            assert_eq!((node.as_str(), op.as_str()), ("weird", "LpNormalization"))
        }
        other => panic!("{other:?}"),
    }
    // A contrib op under its domain.
    let mut n = node("QLinearSoftmax", "sm", &["yq", "s", "z", "s", "z"], &["n"], vec![]);
    n.domain = Some("com.microsoft".into());
    let err = import(&tiny_qop(0, vec![n], "n")).unwrap_err();
    assert_eq!(err.to_string(), "node `sm`: operator com.microsoft::QLinearSoftmax is not supported");
    // QLinearSigmoid is a table op.
    let mut n = node("QLinearSigmoid", "sig", &["yq", "s", "z", "s", "z"], &["n"], vec![]);
    n.domain = Some("com.microsoft".into());
    let g = import(&tiny_qop(0, vec![n], "n")).unwrap();
    assert!(g.nodes.iter().any(|n| n.name == "sig" && n.op == Op::Lut(compiler::lut::UnaryFn::Sigmoid)));
}

#[test]
fn dynamically_quantized_model_is_explained() {
    // float x -> DynamicQuantizeLinear -> MatMulInteger(W) -> ... (ORT's quantize_dynamic)
    let nodes = vec![
        node("DynamicQuantizeLinear", "x_dq", &["x"], &["xq", "xs", "xz"], vec![]),
        node("MatMulInteger", "mm", &["xq", "w", "xz", "wz"], &["acc"], vec![]),
        node("Cast", "cast", &["acc"], &["accf"], vec![attr_i("to", 1)]),
        node("Mul", "mul", &["accf", "xs"], &["y"], vec![]),
    ];
    let inits = vec![t_u8("w", &[4, 2], &[1; 8]), t_u8("wz", &[], &[0])];
    let err = import(&model(nodes, inits, value_info("x", DataType::Float, &[1, 4]), "y")).unwrap_err();
    assert!(
        matches!(&err, ImportError::DynamicQuantization { node, op } if node == "x_dq" && op == "DynamicQuantizeLinear")
    );
    let msg = err.to_string();
    assert!(
        msg.contains("dynamically quantized") && msg.contains("run time") && msg.contains("quantize_static"),
        "{msg}"
    );
}

#[test]
fn unsupported_attributes_and_shapes_are_named() {
    let edit = |f: &dyn Fn(&mut GraphProto)| {
        let mut m = ModelProto::decode(&model_bytes("cnn_dense", "int8_qop")[..]).unwrap();
        f(m.graph.as_mut().unwrap());
        import(&m.encode_to_vec())
    };
    let set_attr = |g: &mut GraphProto, node: &str, a: AttributeProto| {
        let n = g.node.iter_mut().find(|n| n.name() == node).unwrap();
        n.attribute.retain(|x| x.name() != a.name());
        n.attribute.push(a);
    };
    let unsupported = |r: Result<Graph, ImportError>, want_node: &str, want: &str| match r {
        Err(ImportError::Unsupported { node, what, .. }) => {
            assert_eq!(node, want_node);
            assert!(what.contains(want), "{what}");
        }
        other => panic!("{other:?}"),
    };
    let auto_pad = AttributeProto {
        name: Some("auto_pad".into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(b"SAME_UPPER".to_vec()),
        ..Default::default()
    };
    unsupported(edit(&|g| set_attr(g, "/conv1/Conv_quant", auto_pad.clone())), "/conv1/Conv_quant", "SAME_UPPER");
    unsupported(edit(&|g| set_attr(g, "/pool/MaxPool", attr_ints("dilations", &[2, 2]))), "/pool/MaxPool", "dilations");
    // ceil_mode = 1 where it changes nothing (8 = 2 + 3 * 2) is accepted ...
    assert!(edit(&|g| set_attr(g, "/pool/MaxPool", attr_i("ceil_mode", 1))).is_ok());
    // ... adds the last, partial window otherwise (8 = 3 + 2 * 2 + 1: a fourth
    // window over the last input row and one row of padding) ...
    let g = edit(&|g| {
        set_attr(g, "/pool/MaxPool", attr_i("ceil_mode", 1));
        set_attr(g, "/pool/MaxPool", attr_ints("kernel_shape", &[3, 3]));
    })
    .unwrap();
    let pool = g.nodes.iter().find(|n| matches!(n.op, Op::MaxPool(_))).unwrap();
    assert_eq!(g.values[pool.outputs[0]].shape[2..], [4, 4]);
    assert!(matches!(&pool.op, Op::MaxPool(p) if p.pads == [0, 0, 1, 1]), "{:?}", pool.op);
    // ... and is rejected where that window would lie entirely in the padding.
    unsupported(
        edit(&|g| {
            set_attr(g, "/pool/MaxPool", attr_i("ceil_mode", 1));
            set_attr(g, "/pool/MaxPool", attr_ints("kernel_shape", &[1, 1]));
        }),
        "/pool/MaxPool",
        "entirely in the padding",
    );
    // Per-channel activation quantization.
    unsupported(
        edit(&|g| {
            let t = g.initializer.iter_mut().find(|t| t.name() == "input_scale").unwrap();
            *t = t_f32("input_scale", &[2], &[0.1, 0.2]);
        }),
        "input_QuantizeLinear",
        "per tensor",
    );
    // A symbolic dimension other than the batch.
    let symbolic = |axis: usize| {
        move |g: &mut GraphProto| {
            let Some(type_proto::Value::TensorType(t)) = g.input[0].r#type.as_mut().unwrap().value.as_mut() else {
                panic!()
            };
            t.shape.as_mut().unwrap().dim[axis].value =
                Some(tensor_shape_proto::dimension::Value::DimParam("N".into()));
        }
    };
    unsupported(edit(&symbolic(2)), "input", "symbolic dimension `N`");
    // A symbolic batch is taken as 1.
    assert_eq!(edit(&symbolic(0)).unwrap(), load("cnn_dense", "int8_qop"));
    // An element type outside int8/uint8/int32/float.
    unsupported(
        edit(&|g| {
            let t = g.initializer.iter_mut().find(|t| t.name() == "conv1.bias_quantized").unwrap();
            *t = TensorProto { int32_data: vec![0; 16], ..tensor("conv1.bias_quantized", &[16], DataType::Int16) };
        }),
        "/conv1/Conv_quant",
        "int16",
    );
}

fn ms(mut n: NodeProto) -> NodeProto {
    n.domain = Some("com.microsoft".into());
    n
}

fn t_i64(name: &str, dims: &[i64], v: &[i64]) -> TensorProto {
    TensorProto { int64_data: v.to_vec(), ..tensor(name, dims, DataType::Int64) }
}

#[test]
fn qoperator_ops_beyond_the_digits_models() {
    let nodes = vec![
        node("QuantizeLinear", "q", &["x", "s", "z"], &["xq"], vec![]),
        node("QLinearConv", "conv", &["xq", "s", "z", "w", "ws", "wz", "s", "z"], &["c"], vec![]),
        ms(node("QLinearAdd", "add", &["c", "s", "z", "xq", "s", "z", "s2", "z"], &["a"], vec![])),
        ms(node(
            "QLinearAveragePool",
            "pool",
            &["a", "s2", "z", "s3", "z"],
            &["p"],
            vec![attr_ints("kernel_shape", &[2, 2]), attr_ints("strides", &[2, 2]), attr_i("count_include_pad", 1)],
        )),
        ms(node("QLinearGlobalAveragePool", "gap", &["p", "s3", "z", "s3", "z"], &["gp"], vec![])),
        node("Reshape", "reshape", &["gp", "shape"], &["r"], vec![]),
        ms(node(
            "QLinearConcat",
            "cat",
            &["s3", "z", "r", "s3", "z", "r", "s3", "z"],
            &["cc"],
            vec![attr_i("axis", -1)],
        )),
        node("Transpose", "t1", &["cc"], &["t"], vec![attr_ints("perm", &[1, 0])]),
        node("Transpose", "t2", &["t"], &["tt"], vec![]),
        ms(node(
            "QGemm",
            "gemm",
            &["tt", "s3", "z", "b", "bs", "bz", "bias", "s", "z"],
            &["yq"],
            vec![attr_i("transB", 0)],
        )),
        node("DequantizeLinear", "dq", &["yq", "s", "z"], &["y"], vec![]),
    ];
    let inits = vec![
        t_f32("s", &[], &[0.5]),
        t_f32("s2", &[], &[0.75]),
        t_f32("s3", &[], &[0.25]),
        t_i8("z", &[], &[3]),
        t_i8("w", &[2, 2, 1, 1], &[1, 2, 3, 4]),
        t_f32("ws", &[], &[0.125]),
        t_i8("wz", &[], &[0]),
        t_i64("shape", &[2], &[0, -1]),
        t_i8("b", &[4, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
        t_f32("bs", &[3], &[0.5, 0.25, 0.125]),
        t_i8("bz", &[3], &[0, 0, 0]),
        t_i32("bias", &[3], &[-1, 0, 1]),
    ];
    let g = import(&model(nodes, inits, value_info("x", DataType::Float, &[1, 2, 4, 4]), "y")).unwrap();
    assert_eq!(
        ops(&g),
        [
            "quantize",
            "conv",
            "add",
            "avgpool",
            "avgpool",
            "reshape",
            "concat",
            "transpose",
            "transpose",
            "dense",
            "dequantize"
        ]
    );
    let shape = |i: usize| g.values[g.nodes[i].outputs[0]].shape.clone();
    assert_eq!(shape(3), [1, 2, 2, 2]);
    assert_eq!(shape(4), [1, 2, 1, 1]);
    assert_eq!(g.nodes[5].op, Op::Reshape { shape: vec![1, 2] });
    assert_eq!(g.nodes[6].op, Op::Concat { axis: 1 });
    assert_eq!(shape(7), [4, 1]);
    assert_eq!(g.nodes[8].op, Op::Transpose { perm: vec![1, 0] });
    let Op::AvgPool(p) = &g.nodes[3].op else { panic!() };
    assert!(p.count_include_pad);
    let Op::AvgPool(p) = &g.nodes[4].op else { panic!() };
    assert_eq!(p.kernel, [2, 2]);
    let Op::Conv(c) = &g.nodes[1].op else { panic!() };
    assert_eq!((c.w_scale.clone(), c.bias.clone()), (vec![0.125; 2], vec![0; 2]));
    let Op::Dense(d) = &g.nodes[9].op else { panic!() };
    // transB = 0: B is [K, N] = [4, 3], transposed to [n, k].
    assert_eq!((d.n, d.k, d.bias.clone()), (3, 4, vec![-1, 0, 1]));
    assert_eq!(d.weights, [1, 4, 7, 10, 2, 5, 8, 11, 3, 6, 9, 12]);
    assert_eq!(g.values[g.outputs[0]].shape, [1, 3]);
    let q = |i: usize| g.values[g.nodes[i].outputs[0]].quant.unwrap();
    assert_eq!((q(2).scale, q(3).scale, q(6).scale, q(9).scale), (0.75, 0.25, 0.25, 0.5));
}

#[test]
fn qdq_matmul_add_reshape_equal_their_qoperator_twin() {
    let qdq = vec![
        node("QuantizeLinear", "qx", &["x", "s", "z"], &["xq"], vec![]),
        node("DequantizeLinear", "dqx", &["xq", "s", "z"], &["xf"], vec![]),
        // MatMul weights [K, N], quantized per column (axis 1).
        node("DequantizeLinear", "dqw", &["w", "ws", "wz"], &["wf"], vec![attr_i("axis", 1)]),
        node("MatMul", "mm", &["xf", "wf"], &["m"], vec![]),
        node("QuantizeLinear", "qm", &["m", "s2", "z"], &["mq"], vec![]),
        node("DequantizeLinear", "dqm", &["mq", "s2", "z"], &["mf"], vec![]),
        node("Add", "add", &["mf", "xf"], &["a"], vec![]),
        node("Clip", "clip", &["a", "lo", "hi"], &["ac"], vec![]),
        node("QuantizeLinear", "qa", &["ac", "s3", "z"], &["aq"], vec![]),
        node("DequantizeLinear", "dqa", &["aq", "s3", "z"], &["af"], vec![]),
        node("Reshape", "reshape", &["af", "shape"], &["r"], vec![]),
        node("QuantizeLinear", "qr", &["r", "s3", "z"], &["rq"], vec![]),
        node("DequantizeLinear", "dqr", &["rq", "s3", "z"], &["y"], vec![]),
    ];
    let qop = vec![
        node("QuantizeLinear", "q", &["x", "s", "z"], &["xq"], vec![]),
        node("QLinearMatMul", "mm", &["xq", "s", "z", "w", "ws", "wz", "s2", "z"], &["mq"], vec![]),
        ms(node("QLinearAdd", "add", &["mq", "s2", "z", "xq", "s", "z", "s3", "z"], &["aq"], vec![])),
        // Clip on uint8 clamps the stored integers: Q(-1.0) = -4 + 3 saturates to 0, Q(2.0) = 8 + 3.
        node("Clip", "clip", &["aq", "qlo", "qhi"], &["ac"], vec![]),
        node("Reshape", "reshape", &["ac", "shape"], &["rq"], vec![]),
        node("DequantizeLinear", "dq", &["rq", "s3", "z"], &["y"], vec![]),
    ];
    let inits = || {
        vec![
            t_f32("s", &[], &[0.5]),
            t_f32("s2", &[], &[0.75]),
            t_f32("s3", &[], &[0.25]),
            t_u8("z", &[], &[3]),
            t_i8("w", &[4, 4], &[1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12, 13, -14, 15, -16]),
            t_f32("ws", &[4], &[0.5, 0.25, 0.125, 0.0625]),
            t_i8("wz", &[4], &[0; 4]),
            t_f32("lo", &[], &[-1.0]),
            t_f32("hi", &[], &[2.0]),
            t_u8("qlo", &[], &[0]),
            t_u8("qhi", &[], &[11]),
            t_i64("shape", &[3], &[1, 2, -1]),
        ]
    };
    let input = || value_info("x", DataType::Float, &[1, 4]);
    let a = import(&model(qdq, inits(), input(), "y")).unwrap();
    let b = import(&model(qop, inits(), input(), "y")).unwrap();
    assert_eq!(ops(&a), ["quantize", "dense", "add", "reshape", "dequantize"]);
    assert_same_up_to_names(&a, &b);
    assert_eq!(a.nodes[2].op, Op::Add { qmin: 0, qmax: 11 });
    let Op::Dense(d) = &a.nodes[1].op else { panic!() };
    assert_eq!(&d.weights[..4], [1, 5, 9, 13]);
    assert_eq!(a.values[a.outputs[0]].shape, [1, 2, 2]);
    assert_eq!(a.values[a.nodes[2].outputs[0]].ty, ElemType::U8);
}

/// Defect 11: a MatMul of two activations says what is unsupported.
#[test]
fn matmul_of_two_activations_is_named_as_such() {
    let nodes = vec![
        node("QuantizeLinear", "qx", &["x", "s", "z"], &["xq"], vec![]),
        node("DequantizeLinear", "dqx", &["xq", "s", "z"], &["xf"], vec![]),
        node("Transpose", "t", &["xf"], &["xt"], vec![attr_ints("perm", &[1, 0])]),
        node("QuantizeLinear", "qt", &["xt", "s", "z"], &["tq"], vec![]),
        node("DequantizeLinear", "dqt", &["tq", "s", "z"], &["tf"], vec![]),
        node("MatMul", "outer", &["tf", "xf"], &["m"], vec![]),
        node("QuantizeLinear", "qm", &["m", "s", "z"], &["mq"], vec![]),
        node("DequantizeLinear", "dqm", &["mq", "s", "z"], &["y"], vec![]),
    ];
    let inits = vec![t_f32("s", &[], &[0.5]), t_i8("z", &[], &[0])];
    let err = import(&model(nodes, inits, value_info("x", DataType::Float, &[1, 4]), "y")).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(&err, ImportError::Unsupported { node, op, .. } if node == "outer" && op == "MatMul"), "{msg}");
    assert!(msg.contains("MatMul `outer` with two activation inputs"), "{msg}");
    assert!(msg.contains("activation × activation") && msg.contains("not supported yet"), "{msg}");
    assert!(!msg.contains("outside a DequantizeLinear"), "{msg}");
}

/// Defect 10: duplicate attributes, extra inputs and a non-boolean
/// `ceil_mode` are invalid models, each named by node, op and culprit.
#[test]
fn duplicate_attributes_extra_inputs_and_bad_flags_are_rejected() {
    fn pool(g: &mut GraphProto) -> &mut NodeProto {
        g.node.iter_mut().find(|n| n.name() == "/pool/MaxPool").unwrap()
    }
    let edit = |f: &dyn Fn(&mut GraphProto)| {
        let mut m = ModelProto::decode(&model_bytes("cnn_dense", "int8_qop")[..]).unwrap();
        f(m.graph.as_mut().unwrap());
        import(&m.encode_to_vec())
    };
    let invalid = |r: Result<Graph, ImportError>, want_op: &str, want: &[&str]| match r {
        Err(e @ ImportError::Invalid { .. }) => {
            let msg = e.to_string();
            let ImportError::Invalid { node, op, .. } = &e else { unreachable!() };
            assert_eq!((node.as_str(), op.as_str()), ("/pool/MaxPool", want_op), "{msg}");
            for w in want {
                assert!(msg.contains(w), "`{w}` missing from: {msg}");
            }
        }
        other => panic!("{other:?}"),
    };
    // The same attribute twice, even with the same value.
    invalid(
        edit(&|g| {
            let n = pool(g);
            let k = n.attribute.iter().find(|a| a.name() == "kernel_shape").unwrap().clone();
            n.attribute.push(k);
        }),
        "MaxPool",
        &["attribute `kernel_shape`", "more than once"],
    );
    // An input MaxPool does not have.
    invalid(
        edit(&|g| {
            let first = pool(g).input[0].clone();
            pool(g).input.push(first);
        }),
        "MaxPool",
        &["2 inputs", "at most 1"],
    );
    // ceil_mode is a boolean.
    invalid(
        edit(&|g| {
            let n = pool(g);
            n.attribute.retain(|a| a.name() != "ceil_mode");
            n.attribute.push(attr_i("ceil_mode", 2));
        }),
        "MaxPool",
        &["attribute `ceil_mode` = 2", "0 or 1"],
    );
}

/// ONNX INT4: `n` values packed two per byte, element 2i in the low nibble.
fn t_i4(name: &str, dims: &[i64], v: &[i8]) -> TensorProto {
    let bytes = v.chunks(2).map(|p| isa::numerics::int4_pack(p[0], p.get(1).copied().unwrap_or(0))).collect();
    TensorProto { raw_data: Some(bytes), ..tensor(name, dims, DataType::Int4) }
}

/// A QDQ Gemm with INT4 weights quantized per tensor (one scale, an INT4
/// zero point 0) and a QDQ Conv with INT4 weights per channel: both import
/// as int4 layers with the weights unpacked and sign-extended (an odd
/// count leaves the last high nibble unused); an INT4 tensor whose bytes
/// do not match its dims, and an int4 activation, are errors naming them.
#[test]
fn int4_weights_per_tensor_and_per_channel() {
    let w: Vec<i8> = [-8, 7, 3, -1, 0, 5, -6, 2, 1, -3, 4, -7].to_vec();
    let gemm = |w_init: TensorProto| {
        let nodes = vec![
            node("QuantizeLinear", "qx", &["x", "s", "z"], &["xq"], vec![]),
            node("DequantizeLinear", "dqx", &["xq", "s", "z"], &["xf"], vec![]),
            node("DequantizeLinear", "dqw", &["w", "ws", "wz"], &["wf"], vec![]),
            node("Gemm", "fc", &["xf", "wf"], &["g"], vec![attr_i("transB", 1)]),
            node("QuantizeLinear", "qy", &["g", "s2", "z2"], &["yq"], vec![]),
            node("DequantizeLinear", "dqy", &["yq", "s2", "z2"], &["y"], vec![]),
        ];
        let inits = vec![
            t_f32("s", &[], &[0.5]),
            t_i8("z", &[], &[3]),
            w_init,
            t_f32("ws", &[], &[0.25]),
            t_i4("wz", &[], &[0]),
            t_f32("s2", &[], &[0.75]),
            t_i8("z2", &[], &[-4]),
        ];
        import(&model(nodes, inits, value_info("x", DataType::Float, &[1, 4]), "y"))
    };
    let g = gemm(t_i4("w", &[3, 4], &w)).unwrap();
    let Op::Dense(d) = &g.nodes[1].op else { panic!("{:?}", ops(&g)) };
    assert_eq!((d.w_type, &d.weights[..], &d.w_scale[..]), (WeightType::I4, &w[..], &[0.25; 3][..]));
    // int8 weights of the same values stay an int8 layer.
    let Op::Dense(d) = &gemm(t_i8("w", &[3, 4], &w)).unwrap().nodes[1].op else { panic!() };
    assert_eq!(d.w_type, WeightType::I8);
    let mut short = t_i4("w", &[3, 4], &w);
    short.raw_data.as_mut().unwrap().pop();
    let e = gemm(short).unwrap_err().to_string();
    assert!(e.contains("int4") && e.contains("`w`"), "{e}");

    // A conv with 9 weights per filter (an odd count per filter, 18 in all).
    let wc: Vec<i8> = (0..18).map(|i| (i % 16) as i8 - 8).collect();
    let nodes = vec![
        node("QuantizeLinear", "qx", &["x", "s", "z"], &["xq"], vec![]),
        node("DequantizeLinear", "dqx", &["xq", "s", "z"], &["xf"], vec![]),
        node("DequantizeLinear", "dqw", &["w", "ws", "wz"], &["wf"], vec![attr_i("axis", 0)]),
        node("Conv", "conv", &["xf", "wf"], &["c"], vec![attr_ints("pads", &[1, 1, 1, 1])]),
        node("QuantizeLinear", "qy", &["c", "s2", "z2"], &["yq"], vec![]),
        node("DequantizeLinear", "dqy", &["yq", "s2", "z2"], &["y"], vec![]),
    ];
    let inits = vec![
        t_f32("s", &[], &[0.5]),
        t_i8("z", &[], &[0]),
        t_i4("w", &[2, 1, 3, 3], &wc),
        t_f32("ws", &[2], &[0.25, 0.5]),
        t_i4("wz", &[2], &[0, 0]),
        t_f32("s2", &[], &[0.75]),
        t_i8("z2", &[], &[1]),
    ];
    let g = import(&model(nodes, inits, value_info("x", DataType::Float, &[1, 1, 4, 4]), "y")).unwrap();
    let Op::Conv(c) = &g.nodes[1].op else { panic!("{:?}", ops(&g)) };
    assert_eq!((c.w_type, &c.weights[..], &c.w_scale[..]), (WeightType::I4, &wc[..], &[0.25, 0.5][..]));

    // An int4 activation (QuantizeLinear to INT4) is refused by name.
    let nodes = vec![
        node("QuantizeLinear", "qx", &["x", "s", "z"], &["xq"], vec![]),
        node("DequantizeLinear", "dqx", &["xq", "s", "z"], &["y"], vec![]),
    ];
    let inits = vec![t_f32("s", &[], &[0.5]), t_i4("z", &[], &[0])];
    let e = import(&model(nodes, inits, value_info("x", DataType::Float, &[1, 4]), "y")).unwrap_err().to_string();
    assert!(e.contains("int4") && e.contains("`z`"), "{e}");
}
