//! Compile time and program size of a ResNet-18-sized model (11.7 M
//! parameters, random int8 weights, 224x224 input, 1000 classes) on the
//! 16x16 default: the lowering, the `.sbin` encoding, the file's size and
//! its ratio to the model's weight bytes plus the code bytes. Run with
//! `cargo bench --bench compile_resnet`. Not a test: nothing asserts a time.
//!
//! The file holds the weights once: packed for the device in the data, and
//! the graph that `run --check` interprets as the reference refers to them
//! (`compiler::ir_codec::PackedRef`, checked at compile time to unpack to
//! the model's weights). The bench decodes that graph once and asserts it
//! is the model; the last line gives the ratio without the graph, as
//! `systole compile --no-graph` writes it.

use compiler::ir::{ConvParams, DenseParams, ElemType, Graph, Node, Op, PoolParams, Quant, Value, ValueId, WeightType};
use isa::HwConfig;
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::time::Instant;

/// Builds the graph node by node, tracking the current value.
struct Builder {
    g: Graph,
    rng: StdRng,
}

impl Builder {
    fn value(&mut self, name: &str, shape: Vec<usize>, zero_point: i32) -> ValueId {
        let quant = Some(Quant { scale: 0.05, zero_point });
        self.g.add_value(Value { name: name.into(), shape, ty: ElemType::I8, quant })
    }

    fn node(&mut self, name: &str, op: Op, inputs: Vec<ValueId>, shape: Vec<usize>, zero_point: i32) -> ValueId {
        let y = self.value(name, shape, zero_point);
        self.g.nodes.push(Node { name: name.into(), op, inputs, outputs: vec![y] });
        y
    }

    fn shape(&self, v: ValueId) -> Vec<usize> {
        self.g.values[v].shape.clone()
    }

    /// A convolution with a fused ReLU (the output clamp starts at its zero point).
    fn conv(&mut self, name: &str, x: ValueId, out: usize, k: usize, stride: usize, relu: bool) -> ValueId {
        let [_, c, h, w] = self.shape(x)[..] else { unreachable!("4-D") };
        let weights: Vec<i8> = (0..out * c * k * k).map(|_| self.rng.gen()).collect();
        let pad = k / 2;
        let mut p = ConvParams::plain(weights, [out, c, k, k]);
        p.w_scale = vec![0.002; out];
        p.bias = (0..out).map(|_| self.rng.gen_range(-1000..1000)).collect();
        p.strides = [stride, stride];
        p.pads = [pad; 4];
        // A fused ReLU clamps at the output's zero point.
        p.qmin = if relu { -100 } else { -128 };
        let (oh, ow) = ((h + 2 * pad - k) / stride + 1, (w + 2 * pad - k) / stride + 1);
        self.node(name, Op::Conv(p), vec![x], vec![1, out, oh, ow], -100)
    }

    fn basic_block(&mut self, name: &str, x: ValueId, out: usize, stride: usize) -> ValueId {
        let a = self.conv(&format!("{name}.conv1"), x, out, 3, stride, true);
        let b = self.conv(&format!("{name}.conv2"), a, out, 3, 1, false);
        let short = if stride != 1 || self.shape(x)[1] != out {
            self.conv(&format!("{name}.downsample"), x, out, 1, stride, false)
        } else {
            x
        };
        let shape = self.shape(b);
        self.node(&format!("{name}.add"), Op::Add { qmin: -100, qmax: 127 }, vec![b, short], shape, -100)
    }
}

fn resnet18() -> Graph {
    let mut b =
        Builder { g: Graph { name: "resnet18-random".into(), ..Graph::default() }, rng: StdRng::seed_from_u64(18) };
    let x = b.value("input", vec![1, 3, 224, 224], 0);
    b.g.inputs.push(x);
    let mut v = b.conv("conv1", x, 64, 7, 2, true);
    let pool = PoolParams { kernel: [3, 3], strides: [2, 2], pads: [1; 4], count_include_pad: false };
    v = b.node("maxpool", Op::MaxPool(pool), vec![v], vec![1, 64, 56, 56], -100);
    for (stage, out, stride) in [(1, 64, 1), (2, 128, 2), (3, 256, 2), (4, 512, 2)] {
        v = b.basic_block(&format!("layer{stage}.0"), v, out, stride);
        v = b.basic_block(&format!("layer{stage}.1"), v, out, 1);
    }
    let gap = PoolParams { kernel: [7, 7], strides: [1, 1], pads: [0; 4], count_include_pad: false };
    v = b.node("avgpool", Op::AvgPool(gap), vec![v], vec![1, 512, 1, 1], -100);
    v = b.node("flatten", Op::Flatten { axis: 1 }, vec![v], vec![1, 512], -100);
    let weights: Vec<i8> = (0..1000 * 512).map(|_| b.rng.gen()).collect();
    let bias = (0..1000).map(|_| b.rng.gen_range(-1000..1000)).collect();
    let fc = DenseParams {
        weights,
        n: 1000,
        k: 512,
        w_scale: vec![0.002; 1000],
        bias,
        qmin: -128,
        qmax: 127,
        w_type: WeightType::I8,
    };
    v = b.node("fc", Op::Dense(fc), vec![v], vec![1, 1000], 0);
    b.g.outputs.push(v);
    b.g.validate().expect("the ResNet-18 graph is valid");
    b.g
}

/// Parameters and their bytes as the model stores them (int8 weights, int32 biases).
fn weight_bytes(g: &Graph) -> (usize, usize) {
    g.nodes.iter().fold((0, 0), |(params, bytes), n| match &n.op {
        Op::Conv(c) => (params + c.weights.len() + c.bias.len(), bytes + c.weights.len() + 4 * c.bias.len()),
        Op::Dense(d) => (params + d.weights.len() + d.bias.len(), bytes + d.weights.len() + 4 * d.bias.len()),
        _ => (params, bytes),
    })
}

fn main() {
    let cfg = HwConfig::default_16x16();
    let g = resnet18();
    let (params, wbytes) = weight_bytes(&g);
    let reps = 5;
    let mut times = Vec::new(); // (total, lower, encode) per compile
    let mut file = Vec::new();
    let (mut code_bytes, mut graph_bytes) = (0, 0);
    let mut program = None;
    for _ in 0..reps {
        let t0 = Instant::now();
        let lowered = compiler::lower::lower(&g, &cfg).expect("ResNet-18 lowers");
        let t1 = Instant::now();
        file = lowered.program.to_bytes();
        let t2 = Instant::now();
        times.push(((t2 - t0).as_secs_f64(), (t1 - t0).as_secs_f64(), (t2 - t1).as_secs_f64()));
        code_bytes = lowered.program.code_bytes() as usize;
        graph_bytes = lowered.program.meta.graph.len();
        program = Some(lowered.program);
    }
    let program = program.expect("compiled at least once");
    let t0 = Instant::now();
    let reference =
        compiler::ir_codec::decode_with_data(&program.meta.graph, &program.data).expect("the graph decodes");
    let decode_time = t0.elapsed().as_secs_f64();
    assert!(reference == g, "the recorded graph is not the model");
    // The fastest compile estimates the time on a quiet machine; the median
    // shows the spread on a busy one.
    times.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (best, median) = (times[0], times[times.len() / 2]);
    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    println!("ResNet-18 (random weights), {} ({}x{}), {reps} compiles", cfg.name, cfg.array.rows, cfg.array.cols);
    println!("parameters    {params} ({:.2} MiB of weights and biases)", mib(wbytes));
    println!("code          {:.2} MiB", mib(code_bytes));
    for (what, (total, lower, encode)) in [("fastest", best), ("median ", median)] {
        println!("compile time  {total:.3} s {what} (lower {lower:.3} s, encode {encode:.3} s)");
    }
    let ratio = |bytes: usize| bytes as f64 / (wbytes + code_bytes) as f64;
    println!("sbin          {:.2} MiB, {:.3}x the weight and code bytes", mib(file.len()), ratio(file.len()));
    println!(
        "  the graph    {:.2} MiB of it (the reference for run --check); without it {:.3}x",
        mib(graph_bytes),
        ratio(file.len() - graph_bytes)
    );
    println!("  decoding it  {decode_time:.3} s (weights unpacked from the data), equals the model");
}
