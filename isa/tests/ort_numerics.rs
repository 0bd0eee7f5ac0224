//! `isa::numerics` reproduces ONNX Runtime exactly.
//!
//! For the shared digits models (`mlp_dense`, `cnn_dense`, QOperator format)
//! this test reads the graph from `index.json`, computes every int8 layer with
//! only the functions of `isa::numerics` plus plain loops, and asserts exact
//! equality, element for element, with the int8 activations ONNX Runtime 1.32
//! (CPU) produced for the 32 reference images. Each layer is computed twice:
//! from ORT's own previous activation ("from ORT"), and chained from the
//! float input only ("chained").
//!
//! Conv / Gemm are computed the way the accelerator does it: the input zero
//! point is folded into the bias (`fold_zero_point`), the array accumulates
//! `Σ x·w` over raw int8 values (`dot_i8`; convolution padding holds the input
//! zero point), then `requantize(acc, requant_scale(s_x, s_w[c], s_y), zy,
//! -128, 127)`. The accumulator is also checked against the reduction in
//! docs/DESIGN.md §2's order (kh, kw, cin) and against the unfolded
//! `bias + Σ (x - zx)·w` over the unpadded input.
//!
//! Fixtures: `tests/data/` (ONNX Runtime's own outputs; `tests/data/README.md` says how they
//! were made). Run with `--nocapture` to see the
//! per-layer element counts.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use isa::numerics::{dequantize, dot_i8, fold_zero_point, quantize, requant_scale, requantize, weight_sum, I8_RANGE};
use serde_json::Value;

const QMIN: i32 = I8_RANGE.0;
const QMAX: i32 = I8_RANGE.1;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("data")
}

fn load_npy<T: npyz::Deserialize>(path: &Path) -> (Vec<usize>, Vec<T>) {
    let f = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let npy = npyz::NpyFile::new(BufReader::new(f)).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let data = npy.into_vec::<T>().unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert_eq!(data.len(), shape.iter().product::<usize>(), "{}", path.display());
    (shape, data)
}

fn load_json(path: &Path) -> Value {
    let f = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    serde_json::from_reader(BufReader::new(f)).unwrap()
}

/// An int8 tensor, row-major.
#[derive(Clone, Debug)]
struct Tensor {
    shape: Vec<usize>,
    data: Vec<i8>,
}

/// A model's fixtures: initializers (by tensor name), graph nodes, ORT's
/// activations (by tensor name).
struct Model {
    name: &'static str,
    dir: PathBuf,
    /// tensor name -> (file, dtype)
    inits: HashMap<String, (String, String)>,
    nodes: Vec<Value>,
    /// tensor name -> ORT activation
    acts: HashMap<String, Tensor>,
    /// activation tensor names in graph order
    act_order: Vec<String>,
}

impl Model {
    fn load(name: &'static str) -> Model {
        let dir = data_dir().join(name);
        let index = load_json(&dir.join("params").join("index.json"));
        let mut inits = HashMap::new();
        for i in index["initializers"].as_array().unwrap() {
            inits.insert(
                i["tensor"].as_str().unwrap().to_string(),
                (i["file"].as_str().unwrap().to_string(), i["dtype"].as_str().unwrap().to_string()),
            );
        }
        let nodes = index["nodes"].as_array().unwrap().clone();
        let meta = load_json(&dir.join("acts").join("meta.json"));
        let mut acts = HashMap::new();
        let mut act_order = Vec::new();
        for a in meta["acts_in_graph_order"].as_array().unwrap() {
            let tensor = a["tensor"].as_str().unwrap().to_string();
            let (shape, data) = load_npy::<i8>(&dir.join("acts").join(a["file"].as_str().unwrap()));
            act_order.push(tensor.clone());
            acts.insert(tensor, Tensor { shape, data });
        }
        Model { name, dir, inits, nodes, acts, act_order }
    }

    fn init_path(&self, tensor: &str, dtype: &str) -> PathBuf {
        let (file, dt) = self.inits.get(tensor).unwrap_or_else(|| panic!("{}: no initializer {tensor}", self.name));
        assert_eq!(dt, dtype, "{}: dtype of {tensor}", self.name);
        self.dir.join("params").join(file)
    }

    fn f32s(&self, tensor: &str) -> (Vec<usize>, Vec<f32>) {
        load_npy(&self.init_path(tensor, "float32"))
    }
    fn i8s(&self, tensor: &str) -> (Vec<usize>, Vec<i8>) {
        load_npy(&self.init_path(tensor, "int8"))
    }
    fn i32s(&self, tensor: &str) -> (Vec<usize>, Vec<i32>) {
        load_npy(&self.init_path(tensor, "int32"))
    }
    fn scalar_f32(&self, tensor: &str) -> f32 {
        let (shape, v) = self.f32s(tensor);
        assert!(shape.is_empty() && v.len() == 1, "{tensor} is not a scalar");
        v[0]
    }
    fn scalar_i8(&self, tensor: &str) -> i32 {
        let (shape, v) = self.i8s(tensor);
        assert!(shape.is_empty() && v.len() == 1, "{tensor} is not a scalar");
        v[0] as i32
    }
    /// Per-channel scales (length 1 is broadcast to `n`).
    fn per_channel_f32(&self, tensor: &str, n: usize) -> Vec<f32> {
        let (_, v) = self.f32s(tensor);
        match v.len() {
            1 => vec![v[0]; n],
            l if l == n => v,
            l => panic!("{tensor}: {l} scales for {n} channels"),
        }
    }
    /// Weight zero points must all be 0 (symmetric weights, docs/DESIGN.md §2).
    fn assert_zero_weight_zp(&self, tensor: &str) {
        let (_, v) = self.i8s(tensor);
        assert!(v.iter().all(|&z| z == 0), "{tensor}: non-zero weight zero point");
    }

    /// The reference float input: `ref_x_f32.npy` [32, 64], reshaped to the
    /// shape of ORT's quantized input (same memory order).
    fn float_input(&self) -> (Vec<usize>, Vec<f32>) {
        let (_, x) = load_npy::<f32>(&data_dir().join("ref_x_f32.npy"));
        let shape = self.acts["input_quantized"].shape.clone();
        assert_eq!(x.len(), shape.iter().product::<usize>());
        (shape, x)
    }
}

fn attr_ints(node: &Value, name: &str) -> Option<Vec<usize>> {
    node["attributes"].get(name).map(|v| v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect())
}
fn attr_int(node: &Value, name: &str) -> Option<i64> {
    node["attributes"].get(name).map(|v| v.as_i64().unwrap())
}
fn inputs(node: &Value) -> Vec<String> {
    node["inputs"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}
fn output(node: &Value) -> String {
    let outs = node["outputs"].as_array().unwrap();
    assert_eq!(outs.len(), 1);
    outs[0].as_str().unwrap().to_string()
}

/// Statistics of one computed layer.
#[derive(Default)]
struct Stats {
    /// Elements compared (and equal) with ORT.
    compared: usize,
    /// Outputs clamped at qmin / qmax (the clamp / fused ReLU is exercised).
    at_qmin: usize,
    at_qmax: usize,
    /// Requantizations whose pre-rounding product sits within 1e-3 of a
    /// rounding tie (`n + 0.5`): the cases where f32 details matter.
    near_tie: usize,
    /// Smallest `|frac(p) - 0.5|` seen (how close any output came to a tie).
    min_tie_dist: Option<f32>,
    /// Diagnostics (not asserted): how many outputs would differ from ORT if
    /// the scale were computed as `s_x * (s_w / s_y)`, or in f64 (`f32(f64)`).
    diff_alt_order: usize,
    diff_f64_scale: usize,
    /// ... or if `acc · s_x · s_w / s_y` were computed entirely in f64.
    diff_f64_all: usize,
    /// Outputs exactly on a tie (`f32(acc)·scale = n + 0.5`), and how many
    /// would differ from ORT with round-half-away-from-zero.
    exact_tie: usize,
    diff_round_away: usize,
    /// Conv only: outputs that would differ if padding held 0 instead of the
    /// input zero point (with the same folded bias).
    diff_zero_padding: usize,
}

/// Requantizes one accumulator and gathers diagnostics.
fn requant_with_stats(acc: i32, s_x: f32, s_w: f32, s_y: f32, zy: i32, st: &mut Stats) -> i32 {
    let scale = requant_scale(s_x, s_w, s_y);
    let q = requantize(acc, scale, zy, QMIN, QMAX);
    let p = (acc as f32) * scale;
    let dist = ((p - p.floor()) - 0.5).abs();
    st.min_tie_dist = Some(st.min_tie_dist.map_or(dist, |d| d.min(dist)));
    if dist < 1e-3 {
        st.near_tie += 1;
    }
    let p64 = acc as f64 * s_x as f64 * s_w as f64 / s_y as f64;
    if (((p64.round_ties_even() as i64) + zy as i64).clamp(QMIN as i64, QMAX as i64) as i32) != q {
        st.diff_f64_all += 1;
    }
    if p - p.floor() == 0.5 {
        st.exact_tie += 1;
    }
    if (((p.round() as i64) + zy as i64).clamp(QMIN as i64, QMAX as i64) as i32) != q {
        st.diff_round_away += 1;
    }
    if q == QMIN {
        st.at_qmin += 1;
    }
    if q == QMAX {
        st.at_qmax += 1;
    }
    if requantize(acc, s_x * (s_w / s_y), zy, QMIN, QMAX) != q {
        st.diff_alt_order += 1;
    }
    let s64 = (s_x as f64 * s_w as f64 / s_y as f64) as f32;
    if requantize(acc, s64, zy, QMIN, QMAX) != q {
        st.diff_f64_scale += 1;
    }
    q
}

/// QLinearConv, NCHW, weights [co, ci, kh, kw], group 1.
fn qlinear_conv(m: &Model, node: &Value, x: &Tensor, st: &mut Stats) -> Tensor {
    let ins = inputs(node);
    assert_eq!(ins.len(), 9, "QLinearConv with bias");
    let s_x = m.scalar_f32(&ins[1]);
    let zx = m.scalar_i8(&ins[2]);
    let (wshape, w) = m.i8s(&ins[3]);
    let (co_n, ci_n, kh_n, kw_n) = (wshape[0], wshape[1], wshape[2], wshape[3]);
    let s_w = m.per_channel_f32(&ins[4], co_n);
    m.assert_zero_weight_zp(&ins[5]);
    let s_y = m.scalar_f32(&ins[6]);
    let zy = m.scalar_i8(&ins[7]);
    let (_, bias) = m.i32s(&ins[8]);
    assert_eq!(bias.len(), co_n);

    assert_eq!(attr_int(node, "group").unwrap_or(1), 1, "grouped conv not covered");
    let kshape = attr_ints(node, "kernel_shape").unwrap_or(vec![kh_n, kw_n]);
    assert_eq!(kshape, vec![kh_n, kw_n]);
    let pads = attr_ints(node, "pads").unwrap_or(vec![0; 4]); // [top, left, bottom, right]
    let strides = attr_ints(node, "strides").unwrap_or(vec![1, 1]);
    let dil = attr_ints(node, "dilations").unwrap_or(vec![1, 1]);
    assert!(node["attributes"].get("auto_pad").is_none());

    assert_eq!(x.shape.len(), 4);
    let (n_n, xc, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
    assert_eq!(xc, ci_n);
    let oh = (h + pads[0] + pads[2] - ((kh_n - 1) * dil[0] + 1)) / strides[0] + 1;
    let ow = (wd + pads[1] + pads[3] - ((kw_n - 1) * dil[1] + 1)) / strides[1] + 1;
    let kk = ci_n * kh_n * kw_n;

    // "Compiler" side: per-channel weights in ONNX order (ci, kh, kw) and in
    // the array's order (kh, kw, ci), and the folded bias.
    let w_onnx: Vec<&[i8]> = (0..co_n).map(|c| &w[c * kk..(c + 1) * kk]).collect();
    let w_hwc: Vec<Vec<i8>> = (0..co_n)
        .map(|c| {
            let mut v = Vec::with_capacity(kk);
            for ky in 0..kh_n {
                for kx in 0..kw_n {
                    for ci in 0..ci_n {
                        v.push(w_onnx[c][(ci * kh_n + ky) * kw_n + kx]);
                    }
                }
            }
            v
        })
        .collect();
    let folded: Vec<i32> = (0..co_n)
        .map(|c| {
            let b = fold_zero_point(bias[c], zx, weight_sum(w_onnx[c]));
            assert_eq!(b, fold_zero_point(bias[c], zx, weight_sum(&w_hwc[c])));
            b
        })
        .collect();

    let xat = |n: usize, ci: usize, iy: isize, ix: isize| -> Option<i8> {
        if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
            None
        } else {
            Some(x.data[((n * xc + ci) * h + iy as usize) * wd + ix as usize])
        }
    };

    let mut out = vec![0i8; n_n * co_n * oh * ow];
    let mut patch_chw = Vec::with_capacity(kk);
    let mut patch_hwc = Vec::with_capacity(kk);
    let mut patch_zero_pad = Vec::with_capacity(kk);
    for n in 0..n_n {
        for oy in 0..oh {
            for ox in 0..ow {
                let iy0 = (oy * strides[0]) as isize - pads[0] as isize;
                let ix0 = (ox * strides[1]) as isize - pads[1] as isize;
                let pos = |ky: usize, kx: usize| (iy0 + (ky * dil[0]) as isize, ix0 + (kx * dil[1]) as isize);
                // Input patch, padding filled with the input zero point.
                patch_chw.clear();
                for ci in 0..ci_n {
                    for ky in 0..kh_n {
                        for kx in 0..kw_n {
                            let (iy, ix) = pos(ky, kx);
                            patch_chw.push(xat(n, ci, iy, ix).unwrap_or(zx as i8));
                        }
                    }
                }
                patch_zero_pad.clear();
                for ci in 0..ci_n {
                    for ky in 0..kh_n {
                        for kx in 0..kw_n {
                            let (iy, ix) = pos(ky, kx);
                            patch_zero_pad.push(xat(n, ci, iy, ix).unwrap_or(0));
                        }
                    }
                }
                patch_hwc.clear();
                for ky in 0..kh_n {
                    for kx in 0..kw_n {
                        for ci in 0..ci_n {
                            let (iy, ix) = pos(ky, kx);
                            patch_hwc.push(xat(n, ci, iy, ix).unwrap_or(zx as i8));
                        }
                    }
                }
                for c in 0..co_n {
                    let acc = folded[c].wrapping_add(dot_i8(&patch_chw, w_onnx[c]));
                    // docs/DESIGN.md §2's reduction order (kh, kw, cin).
                    let acc_hwc = folded[c].wrapping_add(dot_i8(&patch_hwc, &w_hwc[c]));
                    assert_eq!(acc, acc_hwc, "reduction order changed the sum");
                    // Unfolded: bias + Σ (x - zx)·w over the real (unpadded) input.
                    let mut direct = bias[c] as i64;
                    for ci in 0..ci_n {
                        for ky in 0..kh_n {
                            for kx in 0..kw_n {
                                let (iy, ix) = pos(ky, kx);
                                if let Some(v) = xat(n, ci, iy, ix) {
                                    direct += (v as i64 - zx as i64) * w_onnx[c][(ci * kh_n + ky) * kw_n + kx] as i64;
                                }
                            }
                        }
                    }
                    assert_eq!(acc as i64, direct, "zero-point folding changed the sum");
                    let q = requant_with_stats(acc, s_x, s_w[c], s_y, zy, st);
                    let acc0 = folded[c].wrapping_add(dot_i8(&patch_zero_pad, w_onnx[c]));
                    let scale = requant_scale(s_x, s_w[c], s_y);
                    if requantize(acc0, scale, zy, QMIN, QMAX) != q {
                        st.diff_zero_padding += 1;
                    }
                    out[((n * co_n + c) * oh + oy) * ow + ox] = q as i8;
                }
            }
        }
    }
    Tensor { shape: vec![n_n, co_n, oh, ow], data: out }
}

/// `com.microsoft::QGemm`: Y = requant(A · B' + C), A [M, K], B [N, K]
/// (transB = 1) or [K, N] (transB = 0).
fn qgemm(m: &Model, node: &Value, a: &Tensor, st: &mut Stats) -> Tensor {
    let ins = inputs(node);
    assert_eq!(ins.len(), 9, "QGemm with C and y_scale");
    assert_eq!(node["domain"].as_str().unwrap(), "com.microsoft");
    let alpha = node["attributes"].get("alpha").map(|v| v.as_f64().unwrap()).unwrap_or(1.0);
    assert_eq!(alpha, 1.0, "alpha != 1 not covered");
    assert_eq!(attr_int(node, "transA").unwrap_or(0), 0);
    let trans_b = attr_int(node, "transB").unwrap_or(0) == 1;

    let s_a = m.scalar_f32(&ins[1]);
    let za = m.scalar_i8(&ins[2]);
    let (bshape, b) = m.i8s(&ins[3]);
    let (n_out, k) = if trans_b { (bshape[0], bshape[1]) } else { (bshape[1], bshape[0]) };
    let s_b = m.per_channel_f32(&ins[4], n_out);
    m.assert_zero_weight_zp(&ins[5]);
    let (_, bias) = m.i32s(&ins[6]);
    assert_eq!(bias.len(), n_out);
    let s_y = m.scalar_f32(&ins[7]);
    let zy = m.scalar_i8(&ins[8]);

    assert_eq!(a.shape.len(), 2);
    let (m_rows, ka) = (a.shape[0], a.shape[1]);
    assert_eq!(ka, k);
    // Weight rows [n][k] (the reduction runs over k).
    let w_rows: Vec<Vec<i8>> = (0..n_out)
        .map(|j| (0..k).map(|kk| if trans_b { b[j * k + kk] } else { b[kk * n_out + j] }).collect())
        .collect();
    let folded: Vec<i32> = (0..n_out).map(|j| fold_zero_point(bias[j], za, weight_sum(&w_rows[j]))).collect();

    let mut out = vec![0i8; m_rows * n_out];
    for r in 0..m_rows {
        let row = &a.data[r * k..(r + 1) * k];
        for j in 0..n_out {
            let acc = folded[j].wrapping_add(dot_i8(row, &w_rows[j]));
            let direct: i64 = bias[j] as i64
                + row.iter().zip(&w_rows[j]).map(|(&x, &w)| (x as i64 - za as i64) * w as i64).sum::<i64>();
            assert_eq!(acc as i64, direct, "zero-point folding changed the sum");
            out[r * n_out + j] = requant_with_stats(acc, s_a, s_b[j], s_y, zy, st) as i8;
        }
    }
    Tensor { shape: vec![m_rows, n_out], data: out }
}

/// MaxPool on int8, NCHW, no padding, floor mode.
fn maxpool(node: &Value, x: &Tensor) -> Tensor {
    let k = attr_ints(node, "kernel_shape").unwrap();
    let s = attr_ints(node, "strides").unwrap_or(vec![1, 1]);
    let pads = attr_ints(node, "pads").unwrap_or(vec![0; 4]);
    let dil = attr_ints(node, "dilations").unwrap_or(vec![1, 1]);
    assert_eq!(pads, vec![0; 4], "padded MaxPool not covered");
    assert_eq!(attr_int(node, "ceil_mode").unwrap_or(0), 0);
    let (n_n, c_n, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
    let oh = (h - ((k[0] - 1) * dil[0] + 1)) / s[0] + 1;
    let ow = (w - ((k[1] - 1) * dil[1] + 1)) / s[1] + 1;
    let mut out = vec![0i8; n_n * c_n * oh * ow];
    for nc in 0..n_n * c_n {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut mx = i8::MIN;
                for ky in 0..k[0] {
                    for kx in 0..k[1] {
                        let iy = oy * s[0] + ky * dil[0];
                        let ix = ox * s[1] + kx * dil[1];
                        mx = mx.max(x.data[(nc * h + iy) * w + ix]);
                    }
                }
                out[(nc * oh + oy) * ow + ox] = mx;
            }
        }
    }
    Tensor { shape: vec![n_n, c_n, oh, ow], data: out }
}

fn flatten(node: &Value, x: &Tensor) -> Tensor {
    let axis = attr_int(node, "axis").unwrap_or(1) as usize;
    let outer: usize = x.shape[..axis].iter().product();
    let inner: usize = x.shape[axis..].iter().product();
    Tensor { shape: vec![outer, inner], data: x.data.clone() }
}

fn assert_same(model: &str, mode: &str, tensor: &str, got: &Tensor, ort: &Tensor) -> usize {
    assert_eq!(got.shape, ort.shape, "{model} {mode} {tensor}: shape");
    let diffs: Vec<usize> = (0..got.data.len()).filter(|&i| got.data[i] != ort.data[i]).collect();
    if let Some(&i) = diffs.first() {
        panic!(
            "{model} {mode} {tensor}: {} of {} elements differ from ORT; first at flat index {i}: got {} ORT {}",
            diffs.len(),
            got.data.len(),
            got.data[i],
            ort.data[i]
        );
    }
    got.data.len()
}

/// Runs the graph in one mode; returns (tensor, op, stats) per computed
/// layer. `from_ort`: every node reads ORT's activation of its input;
/// otherwise it reads our own previous output (chained from the float input).
fn run(m: &Model, from_ort: bool) -> Vec<(String, String, Stats)> {
    let mode = if from_ort { "from ORT" } else { "chained" };
    let mut ours: HashMap<String, Tensor> = HashMap::new();
    let mut report = Vec::new();
    let mut final_q: Option<(String, f32, i32)> = None;
    for node in &m.nodes {
        let op = node["op"].as_str().unwrap().to_string();
        let ins = inputs(node);
        let out_name = output(node);
        let input = |name: &str| -> Tensor {
            if from_ort {
                m.acts[name].clone()
            } else {
                ours[name].clone()
            }
        };
        let mut st = Stats::default();
        let y = match op.as_str() {
            "QuantizeLinear" => {
                assert_eq!(ins[0], "input");
                let s = m.scalar_f32(&ins[1]);
                let z = m.scalar_i8(&ins[2]);
                let (shape, x) = m.float_input();
                let data = x.iter().map(|&v| quantize(v, s, z, QMIN, QMAX) as i8).collect();
                Tensor { shape, data }
            }
            "QLinearConv" => qlinear_conv(m, node, &input(&ins[0]), &mut st),
            "QGemm" => qgemm(m, node, &input(&ins[0]), &mut st),
            "MaxPool" => maxpool(node, &input(&ins[0])),
            "Flatten" => flatten(node, &input(&ins[0])),
            "DequantizeLinear" => {
                final_q = Some((ins[0].clone(), m.scalar_f32(&ins[1]), m.scalar_i8(&ins[2])));
                continue;
            }
            other => panic!("{}: op {other} not covered", m.name),
        };
        let ort = m.acts.get(&out_name).unwrap_or_else(|| panic!("{}: no ORT activation for {out_name}", m.name));
        st.compared = assert_same(m.name, mode, &out_name, &y, ort);
        ours.insert(out_name.clone(), y);
        report.push((out_name, op, st));
    }
    // Every ORT activation was reproduced.
    for t in &m.act_order {
        assert!(ours.contains_key(t), "{}: ORT activation {t} not computed", m.name);
    }
    // The final DequantizeLinear: float logits, bit for bit.
    let (qname, s, z) = final_q.expect("graph ends with DequantizeLinear");
    let (lshape, logits) = load_npy::<f32>(&m.dir.join("logits.npy"));
    let q = &ours[&qname];
    assert_eq!(lshape, q.shape);
    for (i, (&qv, &l)) in q.data.iter().zip(&logits).enumerate() {
        let d = dequantize(qv as i32, s, z);
        assert_eq!(d.to_bits(), l.to_bits(), "{} {mode} logits[{i}]: {d} vs ORT {l}", m.name);
    }
    report.push((
        "logits (DequantizeLinear, f32 bits)".into(),
        "DequantizeLinear".into(),
        Stats { compared: logits.len(), ..Stats::default() },
    ));
    report
}

fn check_model(name: &'static str) {
    let m = Model::load(name);
    for from_ort in [true, false] {
        let mode = if from_ort { "from ORT activations" } else { "chained from the float input" };
        println!("{name}, {mode}:");
        let report = run(&m, from_ort);
        let mut total = 0;
        for (tensor, op, st) in &report {
            total += st.compared;
            println!("  {op:<16} {tensor:<36} {:>6} elements equal to ORT", st.compared);
            if op == "QLinearConv" {
                // The fixtures must be able to catch the two things the
                // integer path most easily gets wrong.
                assert!(st.diff_zero_padding > 0, "{name} {tensor}: padding with 0 would not be caught");
                assert!(st.at_qmin > 0, "{name} {tensor}: the fused-ReLU clamp is never exercised");
            }
            if op == "QLinearConv" || op == "QGemm" {
                println!(
                    "      clamped at qmin {} / qmax {}; within 1e-3 of a tie {} (closest {:e}), exact ties {}; \
                     would differ: round half away {}, scale s_x*(s_w/s_y) {}, scale in f64 {}, all in f64 {}{}",
                    st.at_qmin,
                    st.at_qmax,
                    st.near_tie,
                    st.min_tie_dist.unwrap_or(f32::NAN),
                    st.exact_tie,
                    st.diff_round_away,
                    st.diff_alt_order,
                    st.diff_f64_scale,
                    st.diff_f64_all,
                    if op == "QLinearConv" {
                        format!(", padding with 0 {}", st.diff_zero_padding)
                    } else {
                        String::new()
                    }
                );
            }
        }
        println!("  total {total} elements equal to ORT");
    }
}

#[test]
fn quantize_matches_ort_input() {
    for name in ["mlp_dense", "cnn_dense"] {
        let m = Model::load(name);
        let s = m.scalar_f32("input_scale");
        let z = m.scalar_i8("input_zero_point");
        assert_eq!(s.to_bits(), (1.0f32 / 255.0).to_bits(), "input scale is f32(1/255)");
        assert_eq!(z, -128);
        let (_, x) = m.float_input();
        let (qshape, q_ort) = load_npy::<i8>(&m.dir.join("input_q_int8.npy"));
        assert_eq!(qshape, m.acts["input_quantized"].shape);
        let mut ties = 0;
        let mut differ_with_reciprocal = 0;
        for (i, (&v, &qo)) in x.iter().zip(&q_ort).enumerate() {
            let q = quantize(v, s, z, QMIN, QMAX);
            assert_eq!(q, qo as i32, "{name}: input[{i}] = {v}: got {q}, ORT {qo}");
            let p = v / s;
            if (p - p.floor() - 0.5).abs() < 1e-4 {
                ties += 1;
            }
            if quantize(v * (1.0 / s), 1.0, z, QMIN, QMAX) != q {
                differ_with_reciprocal += 1;
            }
        }
        println!(
            "{name}: QuantizeLinear: {} elements equal to ORT ({ties} within 1e-4 of a tie; \
             {differ_with_reciprocal} would differ with x * (1/scale))",
            x.len()
        );
    }
}

#[test]
fn mlp_dense_matches_ort() {
    check_model("mlp_dense");
}

#[test]
fn cnn_dense_matches_ort() {
    check_model("cnn_dense");
}
