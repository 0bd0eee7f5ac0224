//! The reference interpreter, op by op, against independent brute-force
//! computations written here: exact integer equality where the contract is
//! exact (conv, dense, maxpool, data movement, ORT's global average pool,
//! the accelerator's VADD), and against f64 references (≤ 1 LSB) where the
//! contract only approximates real arithmetic (requantization near ties,
//! average pooling, add, rescaling). The shared digits CNN (fixtures in
//! `isa/tests/data/cnn_dense`) is run layer by layer against ONNX Runtime's
//! own activations, and timed.

use std::path::{Path, PathBuf};

use compiler::interp::{avgpool_scale, rescale_params, run, run_named, InterpError, Tensor};
use compiler::ir::{ConvParams, DenseParams, ElemType, Graph, Node, Op, PoolParams, Quant, Value, ValueId, WeightType};
use isa::numerics::{dequantize, qadd, qadd_params, quantize, requant_scale, requantize};
use proptest::prelude::*;

// ---------------------------------------------------------------- helpers

/// A deterministic generator (splitmix64) for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    fn int(&mut self, lo: i32, hi: i32) -> i32 {
        lo + (self.next() % (hi - lo + 1) as u64) as i32
    }
    /// Uniform in `[lo, hi)`.
    fn float(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next() >> 40) as f32 / (1u64 << 24) as f32)
    }
    fn ints(&mut self, n: usize, lo: i32, hi: i32) -> Vec<i32> {
        (0..n).map(|_| self.int(lo, hi)).collect()
    }
    fn weights(&mut self, n: usize) -> Vec<i8> {
        (0..n).map(|_| self.int(-128, 127) as i8).collect()
    }
}

fn range(ty: ElemType) -> (i32, i32) {
    ty.range().unwrap()
}

fn qval(g: &mut Graph, name: &str, shape: &[usize], ty: ElemType, scale: f32, zp: i32) -> ValueId {
    g.add_value(Value { name: name.into(), shape: shape.to_vec(), ty, quant: Some(Quant { scale, zero_point: zp }) })
}

fn fval(g: &mut Graph, name: &str, shape: &[usize]) -> ValueId {
    g.add_value(Value { name: name.into(), shape: shape.to_vec(), ty: ElemType::F32, quant: None })
}

fn node(g: &mut Graph, name: &str, op: Op, inputs: &[ValueId], output: ValueId) {
    g.nodes.push(Node { name: name.into(), op, inputs: inputs.to_vec(), outputs: vec![output] });
}

/// Quantization of one value in a test: type, scale, zero point.
#[derive(Clone, Copy, Debug)]
struct Qp {
    ty: ElemType,
    scale: f32,
    zp: i32,
}

impl Qp {
    fn random(rng: &mut Rng, ty: ElemType) -> Qp {
        let (lo, hi) = range(ty);
        Qp { ty, scale: rng.float(0.002, 0.1), zp: rng.int(lo, hi) }
    }
    fn lo(&self) -> i32 {
        range(self.ty).0
    }
    fn hi(&self) -> i32 {
        range(self.ty).1
    }
}

/// A graph of one node `x -> y` (plus extra inputs), returning y's data.
fn run_unary(op: Op, x: &[i32], xshape: &[usize], xq: Qp, yshape: &[usize], yq: Qp) -> Vec<i32> {
    let mut g = Graph::default();
    let xi = qval(&mut g, "x", xshape, xq.ty, xq.scale, xq.zp);
    let yi = qval(&mut g, "y", yshape, yq.ty, yq.scale, yq.zp);
    node(&mut g, "op", op, &[xi], yi);
    g.inputs = vec![xi];
    g.outputs = vec![yi];
    let vals = run(&g, &[Tensor::quant(xshape.to_vec(), x.to_vec())]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(vals[yi].shape, yshape);
    vals[yi].as_quant().unwrap().to_vec()
}

/// `clamp(round_half_even(y) + zp)` of a real value.
fn round_ref(y: f64, zp: i32, lo: i32, hi: i32) -> i32 {
    ((y.round_ties_even() as i64) + zp as i64).clamp(lo as i64, hi as i64) as i32
}

// ------------------------------------------------------------ convolution

#[derive(Clone, Debug)]
struct ConvCase {
    n: usize,
    cin: usize,
    h: usize,
    w: usize,
    m: usize,
    groups: usize,
    k: [usize; 2],
    strides: [usize; 2],
    pads: [usize; 4],
    dilations: [usize; 2],
    x_ty: ElemType,
    /// Output clamp, relative to the type (ReLU: `qmin = zy`).
    relu: bool,
}

fn conv_out(size: usize, k: usize, s: usize, pad: usize, d: usize) -> Option<usize> {
    let eff = d * (k - 1) + 1;
    (size + pad >= eff).then(|| (size + pad - eff) / s + 1)
}

/// Runs a conv case through the interpreter and checks it against a direct
/// computation: `bias + Σ (x − zx)·w` over the unpadded input in i64, in
/// (cin, kh, kw) order, requantized with `numerics` — exactly; and against
/// the real-valued convolution in f64 — within 1 LSB.
fn check_conv(c: &ConvCase, seed: u64) {
    let mut rng = Rng(seed);
    let cg = c.cin / c.groups;
    let mg = c.m / c.groups;
    let [kh, kw] = c.k;
    let oh = conv_out(c.h, kh, c.strides[0], c.pads[0] + c.pads[2], c.dilations[0]).unwrap();
    let ow = conv_out(c.w, kw, c.strides[1], c.pads[1] + c.pads[3], c.dilations[1]).unwrap();
    let xq = Qp::random(&mut rng, c.x_ty);
    let yq = Qp::random(&mut rng, ElemType::I8);
    let x = rng.ints(c.n * c.cin * c.h * c.w, xq.lo(), xq.hi());
    let weights = rng.weights(c.m * cg * kh * kw);
    let w_scale: Vec<f32> = (0..c.m).map(|_| rng.float(0.001, 0.05)).collect();
    let bias = rng.ints(c.m, -5000, 5000);
    let (qmin, qmax) = if c.relu { (yq.zp, 127) } else { (-128, 127) };
    let p = ConvParams {
        weights: weights.clone(),
        w_shape: [c.m, cg, kh, kw],
        w_scale: w_scale.clone(),
        bias: bias.clone(),
        strides: c.strides,
        pads: c.pads,
        dilations: c.dilations,
        groups: c.groups,
        qmin,
        qmax,
        w_type: WeightType::I8,
    };
    let got = run_unary(Op::Conv(p), &x, &[c.n, c.cin, c.h, c.w], xq, &[c.n, c.m, oh, ow], yq);

    let mut i = 0;
    for b in 0..c.n {
        for o in 0..c.m {
            let g = o / mg;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = bias[o] as i64;
                    for ci in 0..cg {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * c.strides[0] + ky * c.dilations[0]) as isize - c.pads[0] as isize;
                                let ix = (ox * c.strides[1] + kx * c.dilations[1]) as isize - c.pads[1] as isize;
                                if iy < 0 || ix < 0 || iy >= c.h as isize || ix >= c.w as isize {
                                    continue;
                                }
                                let xv = x[((b * c.cin + g * cg + ci) * c.h + iy as usize) * c.w + ix as usize];
                                let wv = weights[((o * cg + ci) * kh + ky) * kw + kx];
                                acc += (xv - xq.zp) as i64 * wv as i64;
                            }
                        }
                    }
                    let acc = i32::try_from(acc).unwrap();
                    let want = requantize(acc, requant_scale(xq.scale, w_scale[o], yq.scale), yq.zp, qmin, qmax);
                    assert_eq!(got[i], want, "{c:?} seed {seed}: output ({b}, {o}, {oy}, {ox})");
                    let real = acc as f64 * xq.scale as f64 * w_scale[o] as f64 / yq.scale as f64;
                    let r = round_ref(real, yq.zp, qmin, qmax);
                    assert!((got[i] - r).abs() <= 1, "{c:?}: {} vs real {real} -> {r}", got[i]);
                    i += 1;
                }
            }
        }
    }
    assert_eq!(i, got.len());
}

fn base_conv() -> ConvCase {
    ConvCase {
        n: 1,
        cin: 3,
        h: 7,
        w: 6,
        m: 4,
        groups: 1,
        k: [3, 3],
        strides: [1, 1],
        pads: [0; 4],
        dilations: [1, 1],
        x_ty: ElemType::I8,
        relu: false,
    }
}

#[test]
fn conv_plain() {
    check_conv(&base_conv(), 1);
    check_conv(&ConvCase { pads: [1; 4], relu: true, ..base_conv() }, 2);
}

#[test]
fn conv_stride_2() {
    check_conv(&ConvCase { strides: [2, 2], pads: [1; 4], ..base_conv() }, 3);
    check_conv(&ConvCase { strides: [2, 3], h: 9, w: 10, ..base_conv() }, 4);
}

#[test]
fn conv_asymmetric_padding() {
    check_conv(&ConvCase { pads: [2, 0, 1, 2], ..base_conv() }, 5);
    check_conv(&ConvCase { pads: [0, 2, 2, 0], strides: [2, 1], k: [3, 2], ..base_conv() }, 6);
}

#[test]
fn conv_dilation_2() {
    check_conv(&ConvCase { dilations: [2, 2], h: 8, w: 8, ..base_conv() }, 7);
    check_conv(&ConvCase { dilations: [2, 1], pads: [2, 1, 2, 1], strides: [2, 2], ..base_conv() }, 8);
}

#[test]
fn conv_groups_and_depthwise() {
    check_conv(&ConvCase { cin: 4, m: 6, groups: 2, pads: [1; 4], ..base_conv() }, 9);
    // Depthwise: one group per channel, with a channel multiplier of 2.
    check_conv(&ConvCase { cin: 5, m: 5, groups: 5, pads: [1; 4], ..base_conv() }, 10);
    check_conv(&ConvCase { cin: 3, m: 6, groups: 3, pads: [1, 0, 1, 0], strides: [2, 2], ..base_conv() }, 11);
}

#[test]
fn conv_uint8_activations() {
    check_conv(&ConvCase { x_ty: ElemType::U8, pads: [1, 2, 0, 1], ..base_conv() }, 12);
    check_conv(
        &ConvCase { x_ty: ElemType::U8, n: 2, cin: 4, m: 4, groups: 4, dilations: [2, 2], pads: [2; 4], ..base_conv() },
        13,
    );
}

#[test]
fn conv_batch_and_1x1() {
    check_conv(&ConvCase { n: 3, k: [1, 1], ..base_conv() }, 14);
    check_conv(&ConvCase { n: 2, k: [1, 1], strides: [2, 2], pads: [1, 1, 0, 0], ..base_conv() }, 15);
}

fn conv_case_strategy() -> impl Strategy<Value = (ConvCase, u64)> {
    (
        (1usize..=2, 1usize..=3, 1usize..=4, 1usize..=3, 1usize..=7, 1usize..=7),
        (1usize..=3, 1usize..=3, 1usize..=3, 1usize..=3, 1usize..=2, 1usize..=2),
        (prop::array::uniform4(0usize..=2), any::<bool>(), any::<bool>(), any::<u64>()),
    )
        .prop_map(|((n, groups, cg, mg, h, w), (kh, kw, sh, sw, dh, dw), (pads, unsigned, relu, seed))| {
            let c = ConvCase {
                n,
                cin: cg * groups,
                h,
                w,
                m: mg * groups,
                groups,
                k: [kh, kw],
                strides: [sh, sw],
                pads,
                dilations: [dh, dw],
                x_ty: if unsigned { ElemType::U8 } else { ElemType::I8 },
                relu,
            };
            (c, seed)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random conv shapes against the direct computation.
    #[test]
    fn conv_random_shapes((c, seed) in conv_case_strategy()) {
        prop_assume!(conv_out(c.h, c.k[0], c.strides[0], c.pads[0] + c.pads[2], c.dilations[0]).is_some());
        prop_assume!(conv_out(c.w, c.k[1], c.strides[1], c.pads[1] + c.pads[3], c.dilations[1]).is_some());
        check_conv(&c, seed);
    }
}

// ------------------------------------------------------------------ dense

#[test]
fn dense_with_leading_batch_dims() {
    for (seed, x_ty, lead) in
        [(20, ElemType::U8, vec![2, 3]), (21, ElemType::I8, vec![4]), (22, ElemType::I8, vec![2, 1, 2])]
    {
        let mut rng = Rng(seed);
        let (k, n) = (37, 11);
        let xq = Qp::random(&mut rng, x_ty);
        let yq = Qp::random(&mut rng, ElemType::I8);
        let rows: usize = lead.iter().product();
        let x = rng.ints(rows * k, xq.lo(), xq.hi());
        let w = rng.weights(n * k);
        let w_scale: Vec<f32> = (0..n).map(|_| rng.float(0.001, 0.02)).collect();
        let bias = rng.ints(n, -3000, 3000);
        let d = DenseParams {
            weights: w.clone(),
            n,
            k,
            w_scale: w_scale.clone(),
            bias: bias.clone(),
            qmin: -100,
            qmax: 120,
            w_type: WeightType::I8,
        };
        let xshape: Vec<usize> = lead.iter().copied().chain([k]).collect();
        let yshape: Vec<usize> = lead.iter().copied().chain([n]).collect();
        let got = run_unary(Op::Dense(d), &x, &xshape, xq, &yshape, yq);
        for r in 0..rows {
            for j in 0..n {
                let acc: i64 = bias[j] as i64
                    + (0..k).map(|kk| (x[r * k + kk] - xq.zp) as i64 * w[j * k + kk] as i64).sum::<i64>();
                let want = requantize(acc as i32, requant_scale(xq.scale, w_scale[j], yq.scale), yq.zp, -100, 120);
                assert_eq!(got[r * n + j], want, "row {r} col {j}");
                let real = acc as f64 * xq.scale as f64 * w_scale[j] as f64 / yq.scale as f64;
                assert!((got[r * n + j] - round_ref(real, yq.zp, -100, 120)).abs() <= 1);
            }
        }
    }
}

// ---------------------------------------------------------------- pooling

#[derive(Clone, Copy, Debug)]
struct PoolCase {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    k: [usize; 2],
    s: [usize; 2],
    pads: [usize; 4],
    include_pad: bool,
}

impl PoolCase {
    fn params(&self) -> PoolParams {
        PoolParams { kernel: self.k, strides: self.s, pads: self.pads, count_include_pad: self.include_pad }
    }
    fn out(&self) -> [usize; 4] {
        [
            self.n,
            self.c,
            conv_out(self.h, self.k[0], self.s[0], self.pads[0] + self.pads[2], 1).unwrap(),
            conv_out(self.w, self.k[1], self.s[1], self.pads[1] + self.pads[3], 1).unwrap(),
        ]
    }
    fn xshape(&self) -> [usize; 4] {
        [self.n, self.c, self.h, self.w]
    }
    /// The input values inside the window of output `(plane, oy, ox)`.
    fn window(&self, x: &[i32], plane: usize, oy: usize, ox: usize) -> Vec<i32> {
        let mut v = Vec::new();
        for ky in 0..self.k[0] {
            for kx in 0..self.k[1] {
                let iy = (oy * self.s[0] + ky) as isize - self.pads[0] as isize;
                let ix = (ox * self.s[1] + kx) as isize - self.pads[1] as isize;
                if iy >= 0 && ix >= 0 && (iy as usize) < self.h && (ix as usize) < self.w {
                    v.push(x[(plane * self.h + iy as usize) * self.w + ix as usize]);
                }
            }
        }
        v
    }
}

const POOL_CASES: [PoolCase; 6] = [
    PoolCase { n: 1, c: 3, h: 8, w: 8, k: [2, 2], s: [2, 2], pads: [0; 4], include_pad: false },
    PoolCase { n: 2, c: 2, h: 7, w: 5, k: [3, 3], s: [2, 2], pads: [1; 4], include_pad: false },
    PoolCase { n: 1, c: 2, h: 6, w: 7, k: [3, 2], s: [1, 2], pads: [2, 0, 1, 1], include_pad: true },
    PoolCase { n: 1, c: 4, h: 5, w: 5, k: [3, 3], s: [1, 1], pads: [1, 2, 0, 1], include_pad: false },
    PoolCase { n: 1, c: 1, h: 9, w: 4, k: [4, 2], s: [3, 1], pads: [3, 1, 2, 0], include_pad: true },
    // Global pooling.
    PoolCase { n: 2, c: 5, h: 6, w: 7, k: [6, 7], s: [1, 1], pads: [0; 4], include_pad: false },
];

#[test]
fn maxpool_with_padding_matches_direct_max() {
    for (i, pc) in POOL_CASES.iter().enumerate() {
        for x_ty in [ElemType::I8, ElemType::U8] {
            let mut rng = Rng(100 + i as u64);
            let xq = Qp::random(&mut rng, x_ty);
            // Mostly values below the zero point: padding with zx would win.
            let x = rng.ints(pc.xshape().iter().product(), xq.lo(), xq.zp.max(xq.lo() + 1));
            let o = pc.out();
            let got = run_unary(Op::MaxPool(pc.params()), &x, &pc.xshape(), xq, &o, xq);
            // Different output quantization: the maximum, rescaled.
            let yq = Qp::random(&mut rng, ElemType::I8);
            let got_r = run_unary(Op::MaxPool(pc.params()), &x, &pc.xshape(), xq, &o, yq);
            let rp = rescale_params(xq.scale, yq.scale, xq.zp, yq.zp);
            let mut idx = 0;
            for plane in 0..o[0] * o[1] {
                for oy in 0..o[2] {
                    for ox in 0..o[3] {
                        let win = pc.window(&x, plane, oy, ox);
                        let max = *win.iter().max().unwrap();
                        assert_eq!(got[idx], max, "{pc:?} plane {plane} ({oy}, {ox})");
                        let want = qadd(max, 0, rp, -128, 127);
                        assert_eq!(got_r[idx], want);
                        let real = (max - xq.zp) as f64 * xq.scale as f64 / yq.scale as f64;
                        assert!((got_r[idx] - round_ref(real, yq.zp, -128, 127)).abs() <= 1);
                        idx += 1;
                    }
                }
            }
        }
    }
}

/// ORT's QLinearAveragePool (CPU, float path): dequantize, f32 sum in
/// window order, divide by the count, `nearbyint(v / s_y + zy)`, clamp.
fn ort_qlinear_avgpool(win: &[i32], count: usize, xq: Qp, yq: Qp) -> i32 {
    let mut sum = 0f32;
    for &v in win {
        sum += xq.scale * (v - xq.zp) as f32;
    }
    sum /= count as f32;
    ((sum / yq.scale + yq.zp as f32).round_ties_even() as i32).clamp(yq.lo(), yq.hi())
}

/// MLAS's QLinearGlobalAveragePool (x86 and portable paths): int32 sum
/// biased by `-zx·N`, f32 scale `s_x / (s_y · N)`, `acc·scale` clamped in
/// float to `[qmin − zy, qmax − zy]`, rounded to nearest even, `+ zy`.
fn ort_global_avgpool(win: &[i32], xq: Qp, yq: Qp) -> i32 {
    let n = win.len();
    let acc: i32 = win.iter().sum::<i32>() - xq.zp * n as i32;
    let scale = xq.scale / (yq.scale * n as f32);
    let v = (acc as f32 * scale).clamp((yq.lo() - yq.zp) as f32, (yq.hi() - yq.zp) as f32);
    v.round_ties_even() as i32 + yq.zp
}

#[test]
fn avgpool_against_float_and_ort() {
    let (mut total, mut off_by_one_float) = (0usize, 0usize);
    for (i, pc) in POOL_CASES.iter().enumerate() {
        for include_pad in [false, true] {
            let pc = PoolCase { include_pad, ..*pc };
            for rep in 0..20u64 {
                let mut rng = Rng(1000 * i as u64 + rep);
                let x_ty = if rep % 2 == 0 { ElemType::I8 } else { ElemType::U8 };
                let xq = Qp::random(&mut rng, x_ty);
                let yq =
                    Qp { ty: x_ty, scale: xq.scale * rng.float(0.3, 1.5), zp: rng.int(range(x_ty).0, range(x_ty).1) };
                let x = rng.ints(pc.xshape().iter().product(), xq.lo(), xq.hi());
                let o = pc.out();
                let got = run_unary(Op::AvgPool(pc.params()), &x, &pc.xshape(), xq, &o, yq);
                let global = pc.k == [pc.h, pc.w] && pc.pads == [0; 4];
                let mut idx = 0;
                for plane in 0..o[0] * o[1] {
                    for oy in 0..o[2] {
                        for ox in 0..o[3] {
                            let win = pc.window(&x, plane, oy, ox);
                            let count = if include_pad { pc.k[0] * pc.k[1] } else { win.len() };
                            let s: i32 = win.iter().map(|v| v - xq.zp).sum();
                            if global {
                                // The integer definition (MLAS's global pooling).
                                let scale = avgpool_scale(xq.scale, yq.scale, count);
                                assert_eq!(got[idx], requantize(s, scale, yq.zp, yq.lo(), yq.hi()));
                                assert_eq!(got[idx], ort_global_avgpool(&win, xq, yq), "{pc:?} global");
                            } else {
                                assert_eq!(got[idx], ort_qlinear_avgpool(&win, count, xq, yq), "{pc:?}: vs ORT");
                            }
                            // Real average.
                            let real = s as f64 * xq.scale as f64 / (yq.scale as f64 * count as f64);
                            let d = (got[idx] - round_ref(real, yq.zp, yq.lo(), yq.hi())).abs();
                            assert!(d <= 1, "{pc:?}: {} vs real {real}", got[idx]);
                            off_by_one_float += d as usize;
                            total += 1;
                            idx += 1;
                        }
                    }
                }
            }
        }
    }
    println!("avgpool: {total} outputs equal ORT's; 1 LSB from the exactly rounded average: {off_by_one_float}");
    assert!(off_by_one_float * 100 <= total, "more than 1% off by one from the real average");
}

/// Scales that put many averages exactly on a rounding tie (`s_y = s_x`,
/// windows of 2 and 4): ORT's float path lands on either side of the tie,
/// and ours with it, bit for bit; the exactly rounded average differs from
/// both by one step there.
#[test]
fn avgpool_on_ties_equal_to_ort() {
    let (mut total, mut off) = (0usize, 0usize);
    for (k, seed) in [([1, 2], 1u64), ([2, 2], 2), ([2, 1], 3)] {
        let pc = PoolCase { n: 1, c: 8, h: 8, w: 8, k, s: k, pads: [0; 4], include_pad: false };
        for scale in [0.1f32, 0.0123, 1.0 / 255.0, 0.5] {
            let mut rng = Rng(seed);
            let xq = Qp { ty: ElemType::I8, scale, zp: rng.int(-20, 20) };
            let yq = Qp { zp: rng.int(-20, 20), ..xq };
            let x = rng.ints(pc.xshape().iter().product(), -128, 127);
            let o = pc.out();
            let got = run_unary(Op::AvgPool(pc.params()), &x, &pc.xshape(), xq, &o, yq);
            let mut idx = 0;
            for plane in 0..o[1] {
                for oy in 0..o[2] {
                    for ox in 0..o[3] {
                        let win = pc.window(&x, plane, oy, ox);
                        assert_eq!(got[idx], ort_qlinear_avgpool(&win, win.len(), xq, yq));
                        // The real average is s / count exactly, a multiple of 1/count.
                        let s: i32 = win.iter().map(|v| v - xq.zp).sum();
                        let d = (got[idx] - round_ref(s as f64 / win.len() as f64, yq.zp, -128, 127)).abs();
                        assert!(d <= 1);
                        off += d as usize;
                        total += 1;
                        idx += 1;
                    }
                }
            }
        }
    }
    println!("avgpool on ties: {total} outputs equal ORT's, {off} one step from the exactly rounded average");
    assert!(off > 0, "no tie broken the float way");
}

// -------------------------------------------------------------------- add

#[test]
fn add_matches_qadd_and_float() {
    let mut off = 0usize;
    let mut total = 0usize;
    for seed in 0..40u64 {
        let mut rng = Rng(7000 + seed);
        let ty = if seed % 3 == 0 { ElemType::U8 } else { ElemType::I8 };
        let (a, b, y) = (Qp::random(&mut rng, ty), Qp::random(&mut rng, ty), Qp::random(&mut rng, ty));
        let b = if seed % 4 == 0 { Qp { scale: a.scale, ..b } } else { b };
        let (qmin, qmax) = if seed % 5 == 0 { (y.zp, y.hi()) } else { (y.lo(), y.hi()) };
        let shape = [2, 3, 4, 5];
        let len = shape.iter().product();
        let (xa, xb) = (rng.ints(len, a.lo(), a.hi()), rng.ints(len, b.lo(), b.hi()));
        let mut g = Graph::default();
        let ia = qval(&mut g, "a", &shape, a.ty, a.scale, a.zp);
        let ib = qval(&mut g, "b", &shape, b.ty, b.scale, b.zp);
        let iy = qval(&mut g, "y", &shape, y.ty, y.scale, y.zp);
        node(&mut g, "add", Op::Add { qmin, qmax }, &[ia, ib], iy);
        g.inputs = vec![ia, ib];
        g.outputs = vec![iy];
        let vals = run_named(
            &g,
            &[("b", Tensor::quant(shape.to_vec(), xb.clone())), ("a", Tensor::quant(shape.to_vec(), xa.clone()))],
        )
        .unwrap();
        let got = vals[iy].as_quant().unwrap();
        let p = qadd_params(a.scale, b.scale, y.scale, a.zp, b.zp, y.zp);
        for i in 0..len {
            assert_eq!(got[i], qadd(xa[i], xb[i], p, qmin, qmax));
            let real =
                ((xa[i] - a.zp) as f64 * a.scale as f64 + (xb[i] - b.zp) as f64 * b.scale as f64) / y.scale as f64;
            let d = (got[i] - round_ref(real, y.zp, qmin, qmax)).abs();
            assert!(d <= 1, "seed {seed} element {i}: {} vs real {real}", got[i]);
            off += d as usize;
            total += 1;
        }
    }
    println!("add: {total} outputs, {off} one LSB from the exactly rounded real sum");
    assert!(off * 100 <= total);
}

// ----------------------------------------------------------- data movement

#[test]
fn transpose_matches_index_permutation() {
    let shape = [2, 3, 4, 5];
    let x: Vec<i32> = (0..120).map(|v| v - 60).collect();
    let q = Qp { ty: ElemType::I8, scale: 0.1, zp: 3 };
    for perm in [[0, 1, 2, 3], [3, 2, 1, 0], [0, 2, 3, 1], [1, 0, 3, 2], [2, 3, 0, 1]] {
        let oshape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
        let got = run_unary(Op::Transpose { perm: perm.to_vec() }, &x, &shape, q, &oshape, q);
        let mut i = 0;
        for a in 0..oshape[0] {
            for b in 0..oshape[1] {
                for c in 0..oshape[2] {
                    for d in 0..oshape[3] {
                        let mut src = [0; 4];
                        for (o, &p) in perm.iter().enumerate() {
                            src[p] = [a, b, c, d][o];
                        }
                        let off = ((src[0] * shape[1] + src[1]) * shape[2] + src[2]) * shape[3] + src[3];
                        assert_eq!(got[i], x[off], "perm {perm:?}");
                        i += 1;
                    }
                }
            }
        }
    }
}

#[test]
fn reshape_and_flatten_keep_row_major_data() {
    let x: Vec<i32> = (0..24).map(|v| v * 5 - 60).collect();
    let q = Qp { ty: ElemType::I8, scale: 0.05, zp: -2 };
    assert_eq!(run_unary(Op::Reshape { shape: vec![4, 6] }, &x, &[2, 3, 4], q, &[4, 6], q), x);
    assert_eq!(run_unary(Op::Flatten { axis: 1 }, &x, &[2, 3, 4], q, &[2, 12], q), x);
    assert_eq!(run_unary(Op::Flatten { axis: 2 }, &x, &[2, 3, 4], q, &[6, 4], q), x);
    assert_eq!(run_unary(Op::Flatten { axis: 0 }, &x, &[2, 3, 4], q, &[1, 24], q), x);
    // Another zero point, same scale: an exact shift (with saturation).
    let q2 = Qp { zp: 10, ..q };
    let want: Vec<i32> = x.iter().map(|v| (v + 12).clamp(-128, 127)).collect();
    assert_eq!(run_unary(Op::Reshape { shape: vec![24] }, &x, &[2, 3, 4], q, &[24], q2), want);
}

#[test]
fn concat_along_each_axis() {
    let mut rng = Rng(55);
    let yq = Qp { ty: ElemType::I8, scale: 0.04, zp: -5 };
    let quants = [yq, Qp { ty: ElemType::I8, scale: 0.013, zp: 20 }, Qp { ty: ElemType::U8, scale: 0.09, zp: 128 }];
    for axis in 0..4 {
        let base = [2, 3, 2, 4];
        let sizes = [1, 3, 2];
        let shapes: Vec<Vec<usize>> = sizes
            .iter()
            .map(|&s| {
                let mut sh = base.to_vec();
                sh[axis] = s;
                sh
            })
            .collect();
        let datas: Vec<Vec<i32>> =
            shapes.iter().zip(&quants).map(|(sh, q)| rng.ints(sh.iter().product(), q.lo(), q.hi())).collect();
        let mut oshape = base.to_vec();
        oshape[axis] = sizes.iter().sum();
        let mut g = Graph::default();
        let ins: Vec<ValueId> = (0..3)
            .map(|i| qval(&mut g, &format!("x{i}"), &shapes[i], quants[i].ty, quants[i].scale, quants[i].zp))
            .collect();
        let y = qval(&mut g, "y", &oshape, yq.ty, yq.scale, yq.zp);
        node(&mut g, "concat", Op::Concat { axis }, &ins, y);
        g.inputs = ins.clone();
        g.outputs = vec![y];
        let tensors: Vec<Tensor> = (0..3).map(|i| Tensor::quant(shapes[i].clone(), datas[i].clone())).collect();
        let vals = run(&g, &tensors).unwrap();
        let got = vals[y].as_quant().unwrap();
        // Expected: element by element, from the input whose slab holds it.
        let ostride: Vec<usize> = (0..4).map(|d| oshape[d + 1..].iter().product()).collect();
        for (i, &v) in got.iter().enumerate() {
            let mut idx: Vec<usize> = (0..4).map(|d| i / ostride[d] % oshape[d]).collect();
            let mut part = 0;
            while idx[axis] >= sizes[part] {
                idx[axis] -= sizes[part];
                part += 1;
            }
            let sh = &shapes[part];
            let off = ((idx[0] * sh[1] + idx[1]) * sh[2] + idx[2]) * sh[3] + idx[3];
            let src = datas[part][off];
            let q = quants[part];
            if part == 0 {
                assert_eq!(v, src, "axis {axis}: pass-through");
            } else {
                // QLinearConcat's requantization: dequantize, quantize (binary32).
                let want =
                    isa::numerics::quantize(isa::numerics::dequantize(src, q.scale, q.zp), yq.scale, yq.zp, -128, 127);
                assert_eq!(v, want, "axis {axis}");
                let real = (src - q.zp) as f64 * q.scale as f64 / yq.scale as f64;
                assert!((v - round_ref(real, yq.zp, -128, 127)).abs() <= 1);
            }
        }
    }
}

#[test]
fn clamp_rescales_then_clamps() {
    let x: Vec<i32> = (-128..=127).collect();
    let q = Qp { ty: ElemType::I8, scale: 0.1, zp: -20 };
    let got = run_unary(Op::Clamp { qmin: -20, qmax: 100 }, &x, &[256], q, &[256], q);
    assert_eq!(got, x.iter().map(|v| (*v).clamp(-20, 100)).collect::<Vec<_>>());
    // ReLU into another quantization: relu(real) requantized.
    let y = Qp { ty: ElemType::U8, scale: 0.07, zp: 0 };
    let got = run_unary(Op::Clamp { qmin: 0, qmax: 255 }, &x, &[256], q, &[256], y);
    for (v, g) in x.iter().zip(&got) {
        let real = ((v - q.zp) as f64 * 0.1f32 as f64 / 0.07f32 as f64).max(0.0);
        assert!((g - round_ref(real, 0, 0, 255)).abs() <= 1);
    }
}

// ----------------------------------------------------- quantize/dequantize

#[test]
fn quantize_dequantize_round_trips() {
    for (ty, scale, zp) in [(ElemType::I8, 0.017f32, -7), (ElemType::U8, 0.3, 128), (ElemType::I8, 1.0 / 255.0, -128)] {
        let (lo, hi) = range(ty);
        let n = (hi - lo + 1) as usize;
        // quantized -> float -> quantized is the identity.
        let mut g = Graph::default();
        let q0 = qval(&mut g, "q0", &[n], ty, scale, zp);
        let f = fval(&mut g, "f", &[n]);
        let q1 = qval(&mut g, "q1", &[n], ty, scale, zp);
        node(&mut g, "dq", Op::Dequantize, &[q0], f);
        node(&mut g, "q", Op::Quantize, &[f], q1);
        g.inputs = vec![q0];
        g.outputs = vec![q1];
        let all: Vec<i32> = (lo..=hi).collect();
        let vals = run(&g, &[Tensor::quant(vec![n], all.clone())]).unwrap();
        assert_eq!(vals[q1].as_quant().unwrap(), &all[..]);
        let fs = vals[f].as_float().unwrap();
        for (&q, &x) in all.iter().zip(fs) {
            assert_eq!(x.to_bits(), dequantize(q, scale, zp).to_bits());
            assert!((x as f64 - (q - zp) as f64 * scale as f64).abs() <= 1e-6 * x.abs() as f64);
        }
        // float -> quantized -> float is within half a step inside the range.
        let mut g = Graph::default();
        let f0 = fval(&mut g, "f0", &[1000]);
        let q = qval(&mut g, "q", &[1000], ty, scale, zp);
        let f1 = fval(&mut g, "f1", &[1000]);
        node(&mut g, "q", Op::Quantize, &[f0], q);
        node(&mut g, "dq", Op::Dequantize, &[q], f1);
        g.inputs = vec![f0];
        g.outputs = vec![f1];
        let mut rng = Rng(9);
        let (rlo, rhi) = ((lo - zp) as f32 * scale, (hi - zp) as f32 * scale);
        let xs: Vec<f32> = (0..1000).map(|_| rng.float(rlo * 1.2, rhi * 1.2)).collect();
        let vals = run(&g, &[Tensor::float(vec![1000], xs.clone())]).unwrap();
        let (qs, back) = (vals[q].as_quant().unwrap(), vals[f1].as_float().unwrap());
        for i in 0..1000 {
            assert_eq!(qs[i], quantize(xs[i], scale, zp, lo, hi));
            if xs[i] >= rlo && xs[i] <= rhi {
                assert!((back[i] - xs[i]).abs() <= scale * 0.5001, "{} -> {} -> {}", xs[i], qs[i], back[i]);
            } else {
                assert!(qs[i] == lo || qs[i] == hi);
            }
        }
    }
}

// ----------------------------------------------------------------- errors

#[test]
fn errors_name_node_and_problem() {
    // Input of the wrong kind and out-of-range values.
    let mut g = Graph::default();
    let x = qval(&mut g, "img", &[1, 1, 2, 2], ElemType::U8, 0.1, 0);
    let y = qval(&mut g, "out", &[1, 1, 1, 1], ElemType::U8, 0.1, 0);
    let p = PoolParams { kernel: [2, 2], strides: [1, 1], pads: [0; 4], count_include_pad: false };
    node(&mut g, "pool1", Op::AvgPool(p), &[x], y);
    g.inputs = vec![x];
    g.outputs = vec![y];
    let e = run(&g, &[Tensor::quant(vec![1, 1, 2, 2], vec![0, 1, -1, 2])]).unwrap_err();
    assert!(e.to_string().contains("img") && e.to_string().contains("-1"), "{e}");
    // A wrong output shape is the graph's error, naming the node.
    g.values[y].shape = vec![1, 1, 2, 2];
    let e = run(&g, &[Tensor::quant(vec![1, 1, 2, 2], vec![0; 4])]).unwrap_err();
    assert!(matches!(&e, InterpError::Graph(ge) if ge.node == "pool1"), "{e}");
    // Dense weights that do not fit.
    let mut g = Graph::default();
    let x = qval(&mut g, "x", &[1, 4], ElemType::I8, 0.1, 0);
    let y = qval(&mut g, "y", &[1, 2], ElemType::I8, 0.1, 0);
    let d = DenseParams {
        weights: vec![0; 7],
        n: 2,
        k: 4,
        w_scale: vec![0.1; 2],
        bias: vec![0; 2],
        qmin: -128,
        qmax: 127,
        w_type: WeightType::I8,
    };
    node(&mut g, "fc", Op::Dense(d), &[x], y);
    g.inputs = vec![x];
    g.outputs = vec![y];
    let e = run(&g, &[Tensor::quant(vec![1, 4], vec![0; 4])]).unwrap_err();
    assert!(
        matches!(&e, InterpError::Node { node, op: "dense", why } if node == "fc" && why.contains("weights")),
        "{e}"
    );
}

// ------------------------------------------- the digits CNN, against ORT

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../isa/tests/data")
}

/// A minimal .npy reader (little-endian `|i1`, `<i4`, `<f4`, C order).
fn npy(path: &Path) -> (Vec<usize>, String, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{}", path.display());
    let (hlen, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize, 12)
    };
    let header = std::str::from_utf8(&bytes[start..start + hlen]).unwrap();
    assert!(header.contains("'fortran_order': False"), "{header}");
    let descr = header.split("'descr': '").nth(1).unwrap().split('\'').next().unwrap().to_string();
    let shape_txt = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
    let shape: Vec<usize> =
        shape_txt.split(',').filter(|s| !s.trim().is_empty()).map(|s| s.trim().parse().unwrap()).collect();
    (shape, descr, bytes[start + hlen..].to_vec())
}

fn npy_i8(path: &Path) -> (Vec<usize>, Vec<i8>) {
    let (shape, descr, data) = npy(path);
    assert_eq!(descr, "|i1");
    (shape, data.iter().map(|&b| b as i8).collect())
}

fn npy_i32(path: &Path) -> Vec<i32> {
    let (_, descr, data) = npy(path);
    assert_eq!(descr, "<i4");
    data.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap())).collect()
}

fn npy_f32(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let (shape, descr, data) = npy(path);
    assert_eq!(descr, "<f4");
    (shape, data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
}

/// The cnn_dense QOperator model, built by hand from its initializers:
/// float input -> Quantize -> conv1 (3x3, pad 1) -> conv2 (3x3, pad 1) ->
/// MaxPool 2x2 -> Flatten -> Dense 512->10 -> Dequantize, for a batch of
/// `n` images. Returns the graph and the ids of the tensors ORT recorded.
fn digits_cnn(n: usize) -> (Graph, Vec<(&'static str, ValueId)>) {
    let dir = data_dir().join("cnn_dense/params");
    let p = |f: &str| dir.join(f);
    let s = |f: &str| npy_f32(&p(f)).1[0];
    let z = |f: &str| npy_i8(&p(f)).1[0] as i32;
    let conv = |name: &str| {
        let (shape, w) = npy_i8(&p(&format!("{name}.weight_quantized.npy")));
        assert!(npy_i8(&p(&format!("{name}.weight_zero_point.npy"))).1.iter().all(|&v| v == 0));
        ConvParams {
            w_scale: npy_f32(&p(&format!("{name}.weight_scale.npy"))).1,
            bias: npy_i32(&p(&format!("{name}.bias_quantized.npy"))),
            pads: [1; 4],
            ..ConvParams::plain(w, [shape[0], shape[1], shape[2], shape[3]])
        }
    };
    let (fc_shape, fc_w) = npy_i8(&p("fc.weight_quantized.npy"));
    let fc = DenseParams {
        weights: fc_w,
        n: fc_shape[0],
        k: fc_shape[1],
        w_scale: npy_f32(&p("fc.weight_scale.npy")).1,
        bias: npy_i32(&p("fc.bias_quantized.npy")),
        qmin: -128,
        qmax: 127,
        w_type: WeightType::I8,
    };
    let i8 = ElemType::I8;
    let mut g = Graph { name: "cnn_dense".into(), ..Graph::default() };
    let input = fval(&mut g, "input", &[n, 1, 8, 8]);
    let xq = qval(&mut g, "input_quantized", &[n, 1, 8, 8], i8, s("input_scale.npy"), z("input_zero_point.npy"));
    let (s1, z1) = (s("conv1_Conv_output_0_scale.npy"), z("conv1_Conv_output_0_zero_point.npy"));
    let (s2, z2) = (s("conv2_Conv_output_0_scale.npy"), z("conv2_Conv_output_0_zero_point.npy"));
    let c1 = qval(&mut g, "/conv1/Conv_output_0_quantized", &[n, 16, 8, 8], i8, s1, z1);
    let c2 = qval(&mut g, "/conv2/Conv_output_0_quantized", &[n, 32, 8, 8], i8, s2, z2);
    let mp = qval(&mut g, "/pool/MaxPool_output_0_quantized", &[n, 32, 4, 4], i8, s2, z2);
    let fl = qval(&mut g, "/Flatten_output_0_quantized", &[n, 512], i8, s2, z2);
    let lq = qval(&mut g, "logits_quantized", &[n, 10], i8, s("logits_scale.npy"), z("logits_zero_point.npy"));
    let logits = fval(&mut g, "logits", &[n, 10]);
    node(&mut g, "quant", Op::Quantize, &[input], xq);
    node(&mut g, "conv1", Op::Conv(conv("conv1")), &[xq], c1);
    node(&mut g, "conv2", Op::Conv(conv("conv2")), &[c1], c2);
    let pool = PoolParams { kernel: [2, 2], strides: [2, 2], pads: [0; 4], count_include_pad: false };
    node(&mut g, "pool", Op::MaxPool(pool), &[c2], mp);
    node(&mut g, "flatten", Op::Flatten { axis: 1 }, &[mp], fl);
    node(&mut g, "fc", Op::Dense(fc), &[fl], lq);
    node(&mut g, "dequant", Op::Dequantize, &[lq], logits);
    g.inputs = vec![input];
    g.outputs = vec![logits];
    g.validate().unwrap();
    let acts = vec![
        ("00_input_quantized.npy", xq),
        ("01__conv1_Conv_output_0_quantized.npy", c1),
        ("02__conv2_Conv_output_0_quantized.npy", c2),
        ("03__pool_MaxPool_output_0_quantized.npy", mp),
        ("04__Flatten_output_0_quantized.npy", fl),
        ("05_logits_quantized.npy", lq),
    ];
    (g, acts)
}

/// Every int8 activation of the digits CNN equals ONNX Runtime's, for the
/// 32 reference images, run one by one (as ORT ran them) and as one batch;
/// the float logits equal ORT's bit for bit.
#[test]
fn digits_cnn_matches_ort_layer_by_layer() {
    let (_, images) = npy_f32(&data_dir().join("ref_x_f32.npy"));
    let (_, ort_logits) = npy_f32(&data_dir().join("cnn_dense/logits.npy"));
    let acts_dir = data_dir().join("cnn_dense/acts");
    let (g1, acts) = digits_cnn(1);
    let ort: Vec<Vec<i8>> = acts.iter().map(|(f, _)| npy_i8(&acts_dir.join(f)).1).collect();
    let per_image = |a: usize| ort[a].len() / 32;
    let mut compared = 0;
    for img in 0..32 {
        let x = Tensor::float(vec![1, 1, 8, 8], images[img * 64..][..64].to_vec());
        let vals = run(&g1, &[x]).unwrap();
        for (a, (file, id)) in acts.iter().enumerate() {
            let want: Vec<i32> = ort[a][img * per_image(a)..][..per_image(a)].iter().map(|&v| v as i32).collect();
            assert_eq!(vals[*id].as_quant().unwrap(), &want[..], "image {img}, {file}");
            compared += want.len();
        }
        let logits = vals[g1.outputs[0]].as_float().unwrap();
        for (j, l) in logits.iter().enumerate() {
            assert_eq!(l.to_bits(), ort_logits[img * 10 + j].to_bits(), "image {img} logit {j}");
        }
    }
    // The same as one batch of 32.
    let (g32, acts32) = digits_cnn(32);
    let vals = run_named(&g32, &[("input", Tensor::float(vec![32, 1, 8, 8], images[..32 * 64].to_vec()))]).unwrap();
    for (a, (file, id)) in acts32.iter().enumerate() {
        let want: Vec<i32> = ort[a].iter().map(|&v| v as i32).collect();
        assert_eq!(vals[*id].as_quant().unwrap(), &want[..], "batch of 32, {file}");
    }
    println!("digits CNN: {compared} int8 activations equal ORT's");
}
