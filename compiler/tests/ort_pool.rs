//! Quantized pooling against ONNX Runtime on random cases: QLinearAveragePool
//! (kernels 1-5 per axis, strides 1-3, asymmetric pads, `ceil_mode`,
//! `count_include_pad`), QLinearGlobalAveragePool and MaxPool, int8 and
//! uint8, random scales and zero points; over a million outputs in all.
//!
//! Fixtures: `tests/data/ort_pool/`, made by
//! `tools/ort-fixtures/pool_fixtures.py` (its docstring says how). Each
//! case is rebuilt here as a one-node ONNX model (so the import of the
//! attributes is under test too), its input drawn from the same SplitMix64
//! stream as the generator's, and run on the reference interpreter. ORT's
//! output is stored compactly: its hash, and the outputs where it differs
//! from the integer definition of average pooling (`integer_definition`),
//! so the test rebuilds it from that definition, checks the hash, and
//! compares every output (and in full for the first cases).
//!
//! What must hold: every output of the interpreter equals ORT's — no
//! allowance. The windowed QLinearAveragePool is ORT's float sequence
//! (dequantize, f32 sum in window order, divide, `nearbyint(v / s_y + zy)`,
//! on the vector unit), and ties of the average included (most cases where
//! the output scale equals the input's land exactly on ties). The compiled
//! program on the model equals the interpreter on the cases stored in full,
//! on square, tall and wide arrays.

use compiler::interp::{self, Tensor};
use compiler::ir::Graph;
use compiler::onnx::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, AttributeProto, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto,
};
use driver::Driver;
use isa::HwConfig;
use prost::Message;
use serde_json::Value as Json;
use std::path::{Path, PathBuf};

mod common;
use common::{fnv1a64, ints, read, splitmix64_bytes, value_info};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ort_pool")
}

fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn attr_i(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

fn scalar(name: &str, dt: DataType, raw: Vec<u8>) -> TensorProto {
    TensorProto { name: Some(name.into()), data_type: Some(dt as i32), raw_data: Some(raw), ..Default::default() }
}

/// The case as the one-node ONNX model the generator gave ORT.
fn case_model(c: &Json) -> Vec<u8> {
    let dt = if c["dtype"] == "uint8" { DataType::Uint8 } else { DataType::Int8 };
    let zp = |k: &str| vec![c[k].as_i64().unwrap() as u8];
    let sc = |k: &str| (c[k].as_f64().unwrap() as f32).to_le_bytes().to_vec();
    let kind = c["kind"].as_str().unwrap();
    let pool_attrs = || {
        vec![
            attr_ints("kernel_shape", &ints(c, "kernel")),
            attr_ints("strides", &ints(c, "strides")),
            attr_ints("pads", &ints(c, "pads")),
            attr_i("ceil_mode", c["ceil_mode"].as_i64().unwrap()),
        ]
    };
    let x_params = vec![scalar("xs", DataType::Float, sc("x_scale")), scalar("xz", dt, zp("x_zero_point"))];
    let node = |op: &str, domain: &str, input: &[&str], output: &str, attribute| NodeProto {
        op_type: Some(op.into()),
        domain: Some(domain.into()),
        name: Some(format!("{op}_{output}")),
        input: input.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute,
        ..Default::default()
    };
    let (nodes, inits) = match kind {
        // ORT ran MaxPool on the integers; its QDQ form (the scale only
        // passes through) imports to the same.
        "max" => (
            vec![
                node("DequantizeLinear", "", &["x", "xs", "xz"], "xf", vec![]),
                node("MaxPool", "", &["xf"], "yf", pool_attrs()),
                node("QuantizeLinear", "", &["yf", "xs", "xz"], "y", vec![]),
            ],
            x_params,
        ),
        _ => {
            let mut attribute = vec![attr_i("channels_last", 0)];
            if kind == "avg" {
                attribute.extend(pool_attrs());
                attribute.push(attr_i("count_include_pad", c["count_include_pad"].as_i64().unwrap()));
            }
            let op = if kind == "avg" { "QLinearAveragePool" } else { "QLinearGlobalAveragePool" };
            let mut inits = x_params;
            inits.extend([scalar("ys", DataType::Float, sc("y_scale")), scalar("yz", dt, zp("y_zero_point"))]);
            (vec![node(op, "com.microsoft", &["x", "xs", "xz", "ys", "yz"], "y", attribute)], inits)
        }
    };
    let opset = |d: &str, v| OperatorSetIdProto { domain: Some(d.into()), version: Some(v) };
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![opset("", 17), opset("com.microsoft", 1)],
        graph: Some(GraphProto {
            name: Some("pool".into()),
            node: nodes,
            initializer: inits,
            input: vec![value_info("x", dt, &ints(c, "shape"))],
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
        format!(
            "case {} ({} {} shape {} kernel {} strides {} pads {} ceil {} cip {} s_x {} s_y {})",
            self.index,
            c["kind"],
            c["dtype"],
            c["shape"],
            c["kernel"],
            c["strides"],
            c["pads"],
            c["ceil_mode"],
            c["count_include_pad"],
            c["x_scale"],
            c["y_scale"]
        )
    }

    fn ties_case(&self) -> bool {
        self.json["kind"] == "avg" && self.json["x_scale"] == self.json["y_scale"]
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
            let input = Tensor::quant(shape, input_q.clone());
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

/// The generator's integer definition of average pooling, the base the
/// stored exceptions are relative to: the exact int32 window sum,
/// `requantize(sum, f32(s_x / f32(s_y · count)), zy)` (MLAS's global
/// pooling); for the other kinds, the interpreter's output.
fn integer_definition(c: &Case, ours: &[i32]) -> Vec<i32> {
    let j = &c.json;
    if j["kind"] != "avg" {
        return ours.to_vec();
    }
    let shape: Vec<usize> = ints(j, "shape").iter().map(|&d| d as usize).collect();
    let oshape: Vec<usize> = ints(j, "output_shape").iter().map(|&d| d as usize).collect();
    let (k, s, p) = (ints(j, "kernel"), ints(j, "strides"), ints(j, "pads"));
    let (h, w, oh, ow) = (shape[2] as i64, shape[3] as i64, oshape[2], oshape[3]);
    let zx = j["x_zero_point"].as_i64().unwrap() as i32;
    let zy = j["y_zero_point"].as_i64().unwrap() as i32;
    let (sx, sy) = (j["x_scale"].as_f64().unwrap() as f32, j["y_scale"].as_f64().unwrap() as f32);
    let (lo, hi) = if j["dtype"] == "uint8" { (0, 255) } else { (-128, 127) };
    (0..ours.len())
        .map(|o| {
            let (plane, oy, ox) = (o / (oh * ow), (o / ow % oh) as i64, (o % ow) as i64);
            let (y0, x0) = (oy * s[0] - p[0], ox * s[1] - p[1]);
            let (ys, xs) = (y0.max(0)..(y0 + k[0]).min(h), x0.max(0)..(x0 + k[1]).min(w));
            let mut sum = 0i32;
            for y in ys.clone() {
                for x in xs.clone() {
                    sum += c.input_q[plane * (h * w) as usize + (y * w + x) as usize] - zx;
                }
            }
            let inside = (ys.end - ys.start).max(0) * (xs.end - xs.start).max(0);
            let count = if j["count_include_pad"] == 1 { k[0] * k[1] } else { inside };
            isa::numerics::requantize(sum, interp::avgpool_scale(sx, sy, count as usize), zy, lo, hi)
        })
        .collect()
}

#[test]
fn pooling_matches_onnx_runtime() {
    let (meta, cases) = load();
    let (mut outputs, mut off_integer, mut ties_cases) = (0usize, 0usize, 0usize);
    let mut failures = Vec::new();
    for c in &cases {
        let ours = run_interp(c);
        outputs += ours.len();
        ties_cases += usize::from(c.ties_case());
        // ORT's output: the integer definition with the generator's
        // exceptions; the hash then says whether that is ORT's output.
        let mut ort = integer_definition(c, &ours);
        for e in c.json.get("exceptions").and_then(Json::as_array).into_iter().flatten() {
            let (o, v) = (e[0].as_u64().unwrap() as usize, e[1].as_i64().unwrap() as i32);
            off_integer += 1;
            ort[o] = v;
        }
        let want = c.json["output_fnv1a64"].as_str().unwrap();
        if format!("{:016x}", fnv1a64(&as_bytes(&ort))) != want {
            failures.push(format!("{}: the stored exceptions do not rebuild ORT's output (hash)", c.what()));
            continue;
        }
        if let Some(full) = &c.ort {
            assert_eq!(&as_bytes(&ort), full, "{}: rebuilt output vs stored", c.what());
        }
        let wrong: Vec<usize> = (0..ours.len()).filter(|&o| ours[o] != ort[o]).collect();
        if let Some(&o) = wrong.first() {
            failures.push(format!(
                "{}: {} of {} outputs differ from ORT's, first {o}: ORT {}, ours {}",
                c.what(),
                wrong.len(),
                ours.len(),
                ort[o],
                ours[o]
            ));
        }
    }
    println!(
        "{} cases ({ties_cases} with equal input and output scales), {outputs} outputs: every one equal to ORT's \
         ({off_integer} of them where ORT differs from the integer definition)",
        cases.len()
    );
    assert_eq!(outputs as u64, meta["total_outputs"].as_u64().unwrap());
    assert!(outputs >= 1_000_000, "{outputs} outputs");
    assert!(off_integer > 10_000, "{off_integer}: the cases no longer exercise ties");
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

/// Whether the case is an average pooling ORT computes as global pooling
/// (on integers: the array sums it).
fn global_on_the_array(c: &Case) -> bool {
    let j = &c.json;
    let shape = ints(j, "shape");
    j["kind"] == "global"
        || (j["kind"] == "avg" && ints(j, "kernel") == shape[2..] && ints(j, "pads").iter().all(|&p| p == 0))
}

/// The compiled programs on the model equal the interpreter (and so ORT,
/// as above) on the cases stored in full, on square, tall and wide arrays.
/// A wide array (fewer rows than columns) sums int8 global windows only,
/// and says so for uint8.
#[test]
fn pooling_on_the_model_equals_the_interpreter() {
    let (_, cases) = load();
    let full: Vec<&Case> = cases.iter().filter(|c| c.ort.is_some()).collect();
    assert!(full.len() >= 48, "{} cases stored in full", full.len());
    let (mut ran, mut refused) = (0, 0);
    for cfg in
        [HwConfig::tiny_4x4(), HwConfig::default_16x16(), HwConfig::tiny_shaped(8, 4), HwConfig::tiny_shaped(4, 8)]
    {
        for c in &full {
            let want = run_interp(c);
            // uint8 global pooling sums on the array (an identity tile);
            // windowed pooling runs on the vector unit, any shape.
            let wide_u8 = cfg.array.rows < cfg.array.cols && c.json["dtype"] == "uint8" && global_on_the_array(c);
            let lowered = match compiler::lower::lower(&c.graph, &cfg) {
                Err(e) if wide_u8 && e.to_string().contains("at least as many rows as columns") => {
                    refused += 1;
                    continue;
                }
                r => r.unwrap_or_else(|e| panic!("{}: {}: {e}", cfg.name, c.what())),
            };
            assert!(!wide_u8, "{}: {}: compiled", cfg.name, c.what());
            let mut d = Driver::new(sim::Model::new(&cfg).unwrap());
            d.load(&lowered.program).unwrap();
            let got = d.infer_quantized(&lowered.program, &c.input_q).unwrap_or_else(|e| panic!("{}: {e}", c.what()));
            assert_eq!(got.output_q, want, "{}: {}: model vs interpreter", cfg.name, c.what());
            ran += 1;
        }
    }
    println!("{ran} programs equal the interpreter; {refused} uint8 global poolings refused on the wide array");
    assert!(ran >= 3 * full.len() && refused > 0, "{ran} run, {refused} refused");
}
