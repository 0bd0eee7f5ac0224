//! No size walls in the GEMM path: a GEMM with more than 65,535 rows (the
//! width of a `matmul`'s or a DMA's row count), and a network on a 260x260
//! feature map (67,600 output pixels a convolution), compile and run exact
//! against the reference (the plain GEMM; the interpreter, layer by layer,
//! through the flow's check).

use compiler::gemm::{lower_gemm, reference_gemm, GemmOutput, GemmSpec, INPUT, OUTPUT};
use compiler::ir::*;
use compiler::lower::lower;
use driver::{Driver, Outcome};
use isa::HwConfig;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use systole::flow::backend::Comparison;
use systole::flow::check::Checker;
use systole::flow::infer::{run_batch, Batch, HostData};
use systole::flow::Compiled;

#[test]
fn a_gemm_of_70000_rows_is_exact() {
    let mut r = StdRng::seed_from_u64(3);
    let cfg = HwConfig::tiny_4x4();
    let (m, k, n) = (70_000, 9, 6);
    let spec = GemmSpec {
        m,
        k,
        n,
        weights: (0..k * n).map(|_| r.gen()).collect(),
        input_unsigned: true,
        output: GemmOutput::Int8 {
            bias: (0..n).map(|_| r.gen_range(-500..500)).collect(),
            scale: (0..n).map(|_| r.gen_range(0.001..0.01)).collect(),
            zero_point: -5,
            qmin: -128,
            qmax: 127,
        },
    };
    let a: Vec<u8> = (0..m * k).map(|_| r.gen()).collect();
    let prog = lower_gemm(&spec, &cfg).expect("lowers");
    let mut d = Driver::new(sim::Model::new(&cfg).unwrap());
    d.load(&prog).unwrap();
    d.write_tensor(prog.tensor(INPUT).unwrap(), &a).unwrap();
    let rep = d.run().unwrap();
    assert_eq!(rep.outcome, Outcome::Done);
    let c: Vec<i32> = d.read_tensor(prog.tensor(OUTPUT).unwrap()).unwrap().iter().map(|&b| b as i8 as i32).collect();
    assert_eq!(c, reference_gemm(&spec, &a));
}

struct Net {
    g: Graph,
    r: StdRng,
}

impl Net {
    fn value(&mut self, name: &str, shape: Vec<usize>, quant: Option<(f32, i32)>) -> ValueId {
        let (ty, quant) = match quant {
            Some((scale, zero_point)) => (ElemType::I8, Some(Quant { scale, zero_point })),
            None => (ElemType::F32, None),
        };
        self.g.add_value(Value { name: name.into(), shape, ty, quant })
    }

    fn node(&mut self, name: &str, op: Op, x: ValueId, y: ValueId) -> ValueId {
        self.g.nodes.push(Node { name: name.into(), op, inputs: vec![x], outputs: vec![y] });
        y
    }

    /// A `k x k` convolution, stride 1, padding `k / 2`, fused ReLU.
    fn conv(&mut self, name: &str, x: ValueId, m: usize, k: usize) -> ValueId {
        let s = self.g.values[x].shape.clone();
        let y = self.value(name, vec![1, m, s[2], s[3]], Some((0.03, -128)));
        let p = ConvParams {
            weights: (0..m * s[1] * k * k).map(|_| self.r.gen()).collect(),
            w_shape: [m, s[1], k, k],
            w_scale: (0..m).map(|_| self.r.gen_range(0.002..0.006)).collect(),
            bias: (0..m).map(|_| self.r.gen_range(-2000..2000)).collect(),
            strides: [1, 1],
            pads: [k / 2; 4],
            dilations: [1, 1],
            groups: 1,
            qmin: -128,
            qmax: 127,
            w_type: WeightType::I8,
        };
        self.node(name, Op::Conv(p), x, y)
    }
}

#[test]
fn a_260x260_feature_map_network_is_exact() {
    let mut net = Net { g: Graph { name: "walls".into(), ..Default::default() }, r: StdRng::seed_from_u64(11) };
    let shape = vec![1, 3, 260, 260];
    let x = net.value("input", shape.clone(), None);
    net.g.inputs.push(x);
    let xq = net.value("input_q", shape, Some((1.0 / 255.0, -128)));
    net.node("quantize", Op::Quantize, x, xq);
    let c1 = net.conv("conv3x3", xq, 8, 3);
    let c2 = net.conv("conv1x1", c1, 16, 1);
    let p = net.value("pool", vec![1, 16, 130, 130], Some((0.03, -128)));
    let pool = PoolParams { kernel: [2, 2], strides: [2, 2], pads: [0; 4], count_include_pad: false };
    net.node("maxpool", Op::MaxPool(pool), c2, p);
    let y = net.value("output", vec![1, 16, 130, 130], None);
    net.node("dequantize", Op::Dequantize, p, y);
    net.g.outputs.push(y);
    net.g.validate().expect("valid graph");

    let cfg = HwConfig::default_16x16();
    let g = &net.g;
    let lowered = lower(g, &cfg).unwrap_or_else(|e| panic!("lowering: {e}"));
    let prog = &lowered.program;
    let input = prog.tensors.iter().find(|t| t.role == isa::program::TensorRole::Input).unwrap();
    let xs: Vec<f32> = (0..3 * 260 * 260).map(|_| net.r.gen_range(0.0..1.0)).collect();
    let batch = Batch::new(&[1, 3, 260, 260], HostData::F32(xs), input, "input").unwrap();
    let recorded = compiler::ir_codec::decode_with_data(&prog.meta.graph, &prog.data).unwrap();
    assert!(recorded == *g, "the recorded graph is not the model");
    let checker = Checker::new(recorded, "walls", &lowered.layers).unwrap();
    let mut d = Driver::new(sim::Model::new(&cfg).unwrap());
    d.load(prog).unwrap();
    let model = Compiled { prog, layers: &lowered.layers, cfg: &cfg };
    let run = run_batch(&mut d, model, &batch, Some(&checker), &Comparison::default(), || {})
        .unwrap_or_else(|e| panic!("{e}"));
    println!("260x260 network: {} cycles", run.run_cycles[0]);
}
