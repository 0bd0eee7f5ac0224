//! Differential tests of the graph lowering: hand-built quantized graphs
//! (random weights) are lowered, run on the cycle-accurate model through the
//! driver, and every layer's output in device memory is compared with the
//! reference interpreter, bit for bit, by the flow's layer check
//! (`systole::flow::check`, what `systole run --check` does).

use compiler::ir::*;
use compiler::lower::lower;
use driver::Driver;
use isa::HwConfig;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use systole::flow::backend::Comparison;
use systole::flow::check::Checker;
use systole::flow::infer::{run_batch, Batch, HostData};
use systole::flow::Compiled;

/// Seeded random test data.
struct Data(StdRng);

fn data(seed: u64) -> Data {
    Data(StdRng::seed_from_u64(seed))
}

impl Data {
    fn i8s(&mut self, n: usize) -> Vec<i8> {
        (0..n).map(|_| self.0.gen()).collect()
    }
    fn unit(&mut self) -> f32 {
        self.0.gen_range(0.0..1.0)
    }
}

struct Builder {
    g: Graph,
    r: Data,
}

impl Builder {
    fn value(&mut self, name: &str, shape: Vec<usize>, quant: Option<(f32, i32)>) -> ValueId {
        let (ty, quant) = match quant {
            Some((scale, zero_point)) => (ElemType::I8, Some(Quant { scale, zero_point })),
            None => (ElemType::F32, None),
        };
        self.g.add_value(Value { name: name.into(), shape, ty, quant })
    }

    fn node(&mut self, name: &str, op: Op, inputs: Vec<ValueId>, out: ValueId) -> ValueId {
        self.g.nodes.push(Node { name: name.into(), op, inputs, outputs: vec![out] });
        out
    }

    /// `Flatten(axis 1)` of `x` into `[1, rest]`, with `x`'s quantization.
    fn flatten(&mut self, x: ValueId) -> ValueId {
        let v = self.g.values[x].clone();
        let q = v.quant.map(|q| (q.scale, q.zero_point));
        let f = self.value("flat", vec![1, v.shape[1..].iter().product()], q);
        self.node("flatten", Op::Flatten { axis: 1 }, vec![x], f)
    }

    fn scales(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| 0.002 + 0.004 * self.r.unit()).collect()
    }

    fn bias(&mut self, n: usize) -> Vec<i32> {
        (0..n).map(|_| self.r.0.gen_range(-2000..=2000)).collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        name: &str,
        x: ValueId,
        m: usize,
        k: usize,
        pad: usize,
        stride: usize,
        relu: bool,
        out_scale: f32,
    ) -> ValueId {
        let s = self.g.values[x].shape.clone();
        let c = s[1];
        let oh = (s[2] + 2 * pad - k) / stride + 1;
        let ow = (s[3] + 2 * pad - k) / stride + 1;
        let zp = if relu { -128 } else { 3 };
        let y = self.value(name, vec![1, m, oh, ow], Some((out_scale, zp)));
        let p = ConvParams {
            weights: self.r.i8s(m * c * k * k),
            w_shape: [m, c, k, k],
            w_scale: self.scales(m),
            bias: self.bias(m),
            strides: [stride; 2],
            pads: [pad; 4],
            dilations: [1, 1],
            groups: 1,
            qmin: if relu { zp } else { -128 },
            qmax: 127,
            w_type: WeightType::I8,
        };
        self.node(name, Op::Conv(p), vec![x], y)
    }

    /// A conv with groups and dilation (symmetric padding).
    #[allow(clippy::too_many_arguments)]
    fn conv_gd(
        &mut self,
        name: &str,
        x: ValueId,
        m: usize,
        k: usize,
        pad: usize,
        groups: usize,
        dil: usize,
        out_scale: f32,
    ) -> ValueId {
        let s = self.g.values[x].shape.clone();
        let cg = s[1] / groups;
        let eff = dil * (k - 1) + 1;
        let (oh, ow) = (s[2] + 2 * pad - eff + 1, s[3] + 2 * pad - eff + 1);
        let y = self.value(name, vec![1, m, oh, ow], Some((out_scale, 1)));
        let p = ConvParams {
            weights: self.r.i8s(m * cg * k * k),
            w_shape: [m, cg, k, k],
            w_scale: self.scales(m),
            bias: self.bias(m),
            strides: [1, 1],
            pads: [pad; 4],
            dilations: [dil; 2],
            groups,
            qmin: -128,
            qmax: 127,
            w_type: WeightType::I8,
        };
        self.node(name, Op::Conv(p), vec![x], y)
    }

    fn dense(&mut self, name: &str, x: ValueId, n: usize, relu: bool, out_scale: f32) -> ValueId {
        let k = *self.g.values[x].shape.last().unwrap();
        let zp = if relu { -128 } else { -7 };
        let y = self.value(name, vec![1, n], Some((out_scale, zp)));
        let p = DenseParams {
            weights: self.r.i8s(n * k),
            n,
            k,
            w_scale: self.scales(n),
            bias: self.bias(n),
            qmin: if relu { zp } else { -128 },
            qmax: 127,
            w_type: WeightType::I8,
        };
        self.node(name, Op::Dense(p), vec![x], y)
    }
}

fn input_graph(shape: Vec<usize>, seed: u64) -> (Builder, ValueId) {
    let mut b = Builder { g: Graph { name: "test".into(), ..Default::default() }, r: data(seed) };
    let x = b.value("input", shape.clone(), None);
    b.g.inputs.push(x);
    let xq = b.value("input_q", shape, Some((1.0 / 255.0, -128)));
    b.node("quantize", Op::Quantize, vec![x], xq);
    (b, xq)
}

fn finish(mut b: Builder, y: ValueId) -> Graph {
    let shape = b.g.values[y].shape.clone();
    let out = b.value("output", shape, None);
    b.node("dequantize", Op::Dequantize, vec![y], out);
    b.g.outputs.push(out);
    b.g.validate().expect("valid graph");
    b.g
}

/// Lowers, runs and compares every layer with the interpreter.
fn check(g: &Graph, cfg: &HwConfig, seed: u64) -> u64 {
    let lowered = lower(g, cfg).unwrap_or_else(|e| panic!("lowering: {e}"));
    let prog = &lowered.program;
    let x_shape = g.values[g.inputs[0]].shape.clone();
    let mut r = data(seed);
    let x: Vec<f32> = (0..x_shape.iter().product::<usize>()).map(|_| r.unit()).collect();
    let input = prog.tensors.iter().find(|t| t.role == isa::program::TensorRole::Input).unwrap();
    let shape: Vec<u64> = x_shape.iter().map(|&d| d as u64).collect();
    let batch = Batch::new(&shape, HostData::F32(x), input, "input").unwrap();
    // The reference is the graph the program records (weights read from
    // its packed data), which must be the model.
    let recorded = compiler::ir_codec::decode_with_data(&prog.meta.graph, &prog.data).unwrap();
    assert!(recorded == *g, "{}: the recorded graph is not the model", cfg.name);
    let checker = Checker::new(recorded, "test", &lowered.layers).unwrap();
    assert_eq!(checker.layers() + checker.views(), lowered.layers.len());
    let mut d = Driver::new(sim::Model::new(cfg).unwrap());
    d.load(prog).unwrap();
    let model = Compiled { prog, layers: &lowered.layers, cfg };
    let run = run_batch(&mut d, model, &batch, Some(&checker), &Comparison::default(), || {})
        .unwrap_or_else(|e| panic!("{}: {e}", cfg.name));
    // The compiler's per-layer MACs are what the array performs.
    let layer_macs: u64 = lowered.layers.iter().map(|l| l.macs).sum();
    assert_eq!(layer_macs, run.counters.get(isa::Counter::Macs), "{}: per-layer MACs", cfg.name);
    run.run_cycles[0]
}

/// Non-square arrays: more rows than a scratchpad row holds values (8x4),
/// fewer (4x8), and neither a power of two nor square (5x12); the tiny
/// config's buffers resized to whole rows.
/// `check` on the 4x4 and 16x16 and on every non-square array.
fn check_everywhere(g: &Graph, seed: u64) {
    for cfg in [HwConfig::tiny_4x4(), HwConfig::default_16x16()].into_iter().chain(nonsquare()) {
        check(g, &cfg, seed);
    }
}

fn nonsquare() -> Vec<HwConfig> {
    [(8, 4), (4, 8), (5, 12)].into_iter().map(|(rows, cols)| HwConfig::tiny_shaped(rows, cols)).collect()
}

#[test]
fn cnn_like_the_digits_model() {
    let (mut b, x) = input_graph(vec![1, 1, 8, 8], 1);
    let c1 = b.conv("conv1", x, 16, 3, 1, 1, true, 0.02);
    let c2 = b.conv("conv2", c1, 32, 3, 1, 1, true, 0.05);
    let p = b.value("pool", vec![1, 32, 4, 4], Some((0.05, -128)));
    let pool = PoolParams { kernel: [2, 2], strides: [2, 2], pads: [0; 4], count_include_pad: false };
    b.node("pool", Op::MaxPool(pool), vec![c2], p);
    let f = b.flatten(p);
    let y = b.dense("fc", f, 10, false, 0.1);
    let g = finish(b, y);
    for cfg in [HwConfig::tiny_4x4(), HwConfig::default_16x16(), HwConfig::large_32x32()].into_iter().chain(nonsquare())
    {
        let cycles = check(&g, &cfg, 5);
        println!("{}: {cycles} cycles", cfg.name);
    }
}

#[test]
fn mlp() {
    let (mut b, x) = input_graph(vec![1, 64], 2);
    let h1 = b.dense("fc1", x, 128, true, 0.05);
    let h2 = b.dense("fc2", h1, 64, true, 0.05);
    let y = b.dense("fc3", h2, 10, false, 0.1);
    let g = finish(b, y);
    check_everywhere(&g, 9);
}

#[test]
fn strided_unpadded_and_pointwise_convs_and_residual_add() {
    let (mut b, x) = input_graph(vec![1, 3, 9, 9], 3);
    let c1 = b.conv("conv_s2", x, 8, 3, 0, 2, true, 0.03);
    let c2 = b.conv("pointwise", c1, 8, 1, 0, 1, false, 0.04);
    let sum = b.value("sum", vec![1, 8, 4, 4], Some((0.06, -5)));
    b.node("add", Op::Add { qmin: -128, qmax: 127 }, vec![c1, c2], sum);
    let c3 = b.conv("conv_pad", sum, 5, 3, 1, 1, false, 0.05);
    let f = b.flatten(c3);
    let y = b.dense("fc", f, 7, false, 0.1);
    let g = finish(b, y);
    check_everywhere(&g, 11);
}

#[test]
fn grouped_depthwise_and_dilated_convs() {
    let (mut b, x) = input_graph(vec![1, 4, 7, 7], 4);
    let c1 = b.conv_gd("grouped", x, 6, 3, 1, 2, 1, 0.03);
    let c2 = b.conv_gd("depthwise", c1, 6, 3, 1, 6, 1, 0.03);
    let c3 = b.conv_gd("dilated", c2, 5, 3, 2, 1, 2, 0.04);
    let c4 = b.conv_gd("pointwise_grouped", c3, 4, 1, 0, 1, 1, 0.04);
    let f = b.flatten(c4);
    let y = b.dense("fc", f, 3, false, 0.1);
    let g = finish(b, y);
    check_everywhere(&g, 13);
}

/// A pooling window wider than the array has rows (7 > 4 on the 4x8, > 5
/// on the 5x12): each window row is cut into tiles of the array's
/// reduction size, as the `ldw` allows.
#[test]
fn global_average_pooling_wider_than_the_array() {
    let (mut b, x) = input_graph(vec![1, 3, 7, 7], 8);
    let c1 = b.conv("conv", x, 12, 3, 1, 1, true, 0.03);
    let gp = b.value("gap", vec![1, 12, 1, 1], Some((0.02, -3)));
    let pool = PoolParams { kernel: [7, 7], strides: [1, 1], pads: [0; 4], count_include_pad: false };
    b.node("global_avgpool", Op::AvgPool(pool), vec![c1], gp);
    let f = b.flatten(gp);
    let y = b.dense("fc", f, 5, false, 0.1);
    let g = finish(b, y);
    for cfg in [HwConfig::tiny_4x4()].into_iter().chain(nonsquare()) {
        check(&g, &cfg, 19);
    }
}

#[test]
fn padded_max_pooling_and_average_pooling() {
    let (mut b, x) = input_graph(vec![1, 3, 9, 9], 6);
    let c1 = b.conv("conv", x, 20, 3, 1, 1, true, 0.03);
    let mp = b.value("maxpool", vec![1, 20, 5, 5], Some((0.03, -128)));
    let pool = PoolParams { kernel: [3, 3], strides: [2, 2], pads: [1; 4], count_include_pad: false };
    b.node("maxpool", Op::MaxPool(pool), vec![c1], mp);
    let ap = b.value("avgpool", vec![1, 20, 2, 2], Some((0.02, -3)));
    let pool = PoolParams { kernel: [2, 2], strides: [2, 2], pads: [0; 4], count_include_pad: false };
    b.node("avgpool", Op::AvgPool(pool), vec![mp], ap);
    let gp = b.value("gap", vec![1, 20, 1, 1], Some((0.015, 2)));
    let pool = PoolParams { kernel: [2, 2], strides: [1, 1], pads: [0; 4], count_include_pad: false };
    b.node("global_avgpool", Op::AvgPool(pool), vec![ap], gp);
    let f = b.flatten(gp);
    let y = b.dense("fc", f, 4, false, 0.1);
    let g = finish(b, y);
    check_everywhere(&g, 17);
}

#[test]
fn uint8_activations() {
    let mut b = Builder { g: Graph { name: "u8".into(), ..Default::default() }, r: data(21) };
    let x = b.value("input", vec![1, 2, 6, 6], None);
    b.g.inputs.push(x);
    let u8v = |b: &mut Builder, name: &str, shape: Vec<usize>, scale: f32, zp: i32| {
        b.g.add_value(Value {
            name: name.into(),
            shape,
            ty: ElemType::U8,
            quant: Some(Quant { scale, zero_point: zp }),
        })
    };
    let xq = u8v(&mut b, "input_q", vec![1, 2, 6, 6], 1.0 / 255.0, 0);
    b.node("quantize", Op::Quantize, vec![x], xq);
    let mk = |b: &mut Builder, m: usize, c: usize, relu: bool| ConvParams {
        weights: b.r.i8s(m * c * 9),
        w_shape: [m, c, 3, 3],
        w_scale: b.scales(m),
        bias: b.bias(m),
        strides: [1, 1],
        pads: [1; 4],
        dilations: [1, 1],
        groups: 1,
        qmin: 0,
        qmax: if relu { 255 } else { 200 },
        w_type: WeightType::I8,
    };
    let c1 = u8v(&mut b, "conv1", vec![1, 5, 6, 6], 0.02, 0);
    let p1 = mk(&mut b, 5, 2, true);
    b.node("conv1", Op::Conv(p1), vec![xq], c1);
    let c2 = u8v(&mut b, "conv2", vec![1, 5, 6, 6], 0.03, 128);
    let p2 = mk(&mut b, 5, 5, false);
    b.node("conv2", Op::Conv(p2), vec![c1], c2);
    let s = u8v(&mut b, "sum", vec![1, 5, 6, 6], 0.04, 100);
    b.node("add", Op::Add { qmin: 0, qmax: 255 }, vec![c1, c2], s);
    let mp = u8v(&mut b, "pool", vec![1, 5, 3, 3], 0.04, 100);
    let pool = PoolParams { kernel: [2, 2], strides: [2, 2], pads: [0; 4], count_include_pad: false };
    b.node("pool", Op::MaxPool(pool), vec![s], mp);
    let f = u8v(&mut b, "flat", vec![1, 45], 0.04, 100);
    b.node("flatten", Op::Flatten { axis: 1 }, vec![mp], f);
    let y = u8v(&mut b, "fc", vec![1, 6], 0.1, 128);
    let d = DenseParams {
        weights: b.r.i8s(6 * 45),
        n: 6,
        k: 45,
        w_scale: b.scales(6),
        bias: b.bias(6),
        qmin: 0,
        qmax: 255,
        w_type: WeightType::I8,
    };
    b.node("fc", Op::Dense(d), vec![f], y);
    let g = finish(b, y);
    check_everywhere(&g, 23);
}

#[test]
fn pooling_over_feature_maps_larger_than_the_scratchpad_runs_in_bands() {
    // A 4x4 array with a 2 KiB scratchpad (512 rows): the 16x16x12 feature
    // map needs 3 x 256 rows, so both poolings split into bands of rows.
    let mut cfg = HwConfig::tiny_4x4();
    cfg.scratchpad.bytes = 2048;
    cfg.validate().unwrap();
    let (mut b, x) = input_graph(vec![1, 2, 16, 16], 8);
    let c1 = b.conv("conv", x, 12, 3, 1, 1, true, 0.03);
    let mp = b.value("maxpool", vec![1, 12, 8, 8], Some((0.03, -128)));
    let pool = PoolParams { kernel: [3, 3], strides: [2, 2], pads: [1; 4], count_include_pad: false };
    b.node("maxpool", Op::MaxPool(pool), vec![c1], mp);
    let mp2 = b.value("maxpool2", vec![1, 12, 14, 14], Some((0.03, -128)));
    let pool = PoolParams { kernel: [3, 3], strides: [1, 1], pads: [0; 4], count_include_pad: false };
    b.node("maxpool2", Op::MaxPool(pool), vec![c1], mp2);
    let ap = b.value("avgpool", vec![1, 12, 7, 7], Some((0.02, -3)));
    let pool = PoolParams { kernel: [2, 2], strides: [2, 2], pads: [0; 4], count_include_pad: false };
    b.node("avgpool", Op::AvgPool(pool), vec![mp2], ap);
    let sum = b.value("sum", vec![1, 12, 7, 7], Some((0.03, 0)));
    let mp3 = b.value("maxpool3", vec![1, 12, 7, 7], Some((0.03, -128)));
    let pool = PoolParams { kernel: [2, 2], strides: [1, 1], pads: [0; 4], count_include_pad: false };
    b.node("maxpool3", Op::MaxPool(pool), vec![mp], mp3);
    b.node("add", Op::Add { qmin: -128, qmax: 127 }, vec![ap, mp3], sum);
    let gp = b.value("gap", vec![1, 12, 1, 1], Some((0.01, 0)));
    let pool = PoolParams { kernel: [7, 7], strides: [1, 1], pads: [0; 4], count_include_pad: false };
    b.node("gap", Op::AvgPool(pool), vec![sum], gp);
    let f = b.flatten(gp);
    let y = b.dense("fc", f, 5, false, 0.1);
    let g = finish(b, y);
    check(&g, &cfg, 29);
}

#[test]
fn residual_add_in_bands() {
    // 1 KiB of scratchpad (256 rows of 4 bytes) against operands of
    // 2 x 3 blocks x 100 pixels: the add runs in bands of image rows.
    let mut cfg = HwConfig::tiny_4x4();
    cfg.scratchpad.bytes = 1024;
    cfg.validate().unwrap();
    let (mut b, x) = input_graph(vec![1, 3, 10, 10], 31);
    let c1 = b.conv("branch1", x, 10, 1, 0, 1, true, 0.01);
    let c2 = b.conv("branch2", x, 10, 1, 0, 1, false, 0.01);
    let sum = b.value("sum", vec![1, 10, 10, 10], Some((0.02, 4)));
    b.node("add", Op::Add { qmin: 4, qmax: 127 }, vec![c1, c2], sum);
    let mp = b.value("pool", vec![1, 10, 2, 2], Some((0.02, 4)));
    let pool = PoolParams { kernel: [5, 5], strides: [5, 5], pads: [0; 4], count_include_pad: false };
    b.node("pool", Op::MaxPool(pool), vec![sum], mp);
    let f = b.flatten(mp);
    let y = b.dense("fc", f, 3, false, 0.1);
    let g = finish(b, y);
    check(&g, &cfg, 37);
}

#[test]
fn channel_concat_of_branches() {
    let (mut b, x) = input_graph(vec![1, 3, 6, 6], 41);
    let c1 = b.conv("branch1", x, 5, 3, 1, 1, true, 0.02);
    let c2 = b.conv("branch2", x, 7, 1, 0, 1, true, 0.02);
    // Same quantization as both branches (ReLU, zero point -128).
    let cat = b.value("cat", vec![1, 12, 6, 6], Some((0.02, -128)));
    b.node("concat", Op::Concat { axis: 1 }, vec![c1, c2], cat);
    let c3 = b.conv("after", cat, 4, 3, 1, 1, false, 0.03);
    let f = b.flatten(c3);
    let y = b.dense("fc", f, 3, false, 0.1);
    let g = finish(b, y);
    check_everywhere(&g, 43);
}

/// The layers named in `int4` made int4 (weights `w >> 4`, in -8..=7).
fn with_int4(mut g: Graph, int4: &[&str]) -> Graph {
    for n in g.nodes.iter_mut().filter(|n| int4.contains(&n.name.as_str())) {
        let (w, ty) = match &mut n.op {
            Op::Conv(c) => (&mut c.weights, &mut c.w_type),
            Op::Dense(d) => (&mut d.weights, &mut d.w_type),
            _ => panic!("{} has no weights", n.name),
        };
        w.iter_mut().for_each(|v| *v >>= 4);
        *ty = WeightType::I4;
    }
    g.validate().expect("valid int4 graph");
    g
}

/// A configuration that lists int4 weights.
fn int4_config(mut cfg: HwConfig) -> HwConfig {
    cfg.array.weight_precisions.push(isa::config::WeightPrecision::Int4);
    cfg.name += "+int4";
    cfg
}

/// The i4 tiles (`ldw` and `matmul` preloads) of a program.
fn i4_tiles(prog: &isa::program::Program) -> usize {
    prog.code
        .iter()
        .filter(|i| match i {
            isa::Instr::Ldw(l) => l.wfmt == isa::instr::WFMT_I4,
            isa::Instr::Matmul(m) => m.preload != 0 && m.wfmt == isa::instr::WFMT_I4,
            _ => false,
        })
        .count()
}

/// int4 and mixed int4/int8 layers (the digits CNN's and MLP's shapes):
/// every layer equals the interpreter's on every array shape. Where the
/// configuration lists int4 and the tile's reduction is even, the int4
/// layers' weights are stored two per byte (i4 tiles, half the bytes);
/// elsewhere as int8 (the 5x12 array's 5-row tiles, configurations
/// without int4), with the same results.
#[test]
fn int4_and_mixed_precision_layers() {
    let (mut b, x) = input_graph(vec![1, 1, 8, 8], 11);
    let c1 = b.conv("conv1", x, 16, 3, 1, 1, true, 0.02);
    let c2 = b.conv("conv2", c1, 32, 3, 1, 1, true, 0.05);
    let f = b.flatten(c2);
    let y = b.dense("fc", f, 10, false, 0.1);
    let cnn = finish(b, y);
    let (mut b, x) = input_graph(vec![1, 64], 12);
    let h1 = b.dense("fc1", x, 128, true, 0.05);
    let h2 = b.dense("fc2", h1, 64, true, 0.05);
    let y = b.dense("fc3", h2, 10, false, 0.1);
    let mlp = finish(b, y);
    let variants = [
        ("cnn int4", with_int4(cnn.clone(), &["conv1", "conv2", "fc"])),
        ("cnn mixed", with_int4(cnn, &["conv2"])),
        ("mlp int4", with_int4(mlp.clone(), &["fc1", "fc2", "fc3"])),
        ("mlp mixed", with_int4(mlp, &["fc2"])),
    ];
    let configs = [HwConfig::tiny_4x4(), HwConfig::default_16x16()].into_iter().chain(nonsquare());
    for base in configs {
        let even_k = base.array.rows.min(base.array.cols).is_multiple_of(2);
        for (what, g) in &variants {
            let cfg = int4_config(base.clone());
            check(g, &cfg, 13);
            check(g, &base, 13);
            let data_bytes = |cfg: &HwConfig| lower(g, cfg).unwrap().program.data.len();
            let i4 = i4_tiles(&lower(g, &cfg).unwrap().program);
            assert_eq!(i4 > 0, even_k, "{what} on {}: {i4} i4 tiles", cfg.name);
            assert_eq!(i4_tiles(&lower(g, &base).unwrap().program), 0, "{what} on {}", base.name);
            if even_k {
                assert!(data_bytes(&cfg) < data_bytes(&base), "{what} on {}: int4 weights take fewer bytes", cfg.name);
            }
        }
    }
}
