//! Lowering of a quantized graph (`ir::Graph`) to a program for the
//! accelerator, in named steps (one module each):
//! - `memory`: the memory plan — buffers, layouts, halos, aligned offsets;
//! - `gemm_layers`: conv and dense as one `gemm::GemmJob` each (per group);
//! - `pool`: max and average pooling; `elementwise`: add and clamp;
//! - `embedding`: table rows gathered by int64 ids (indexed `load`s);
//! - `movement`: DMA copies (concat), reshapes, feature-map moves, im2col,
//!   and the copies through a `vlut` table (unary ops, requantizing concat);
//! - `transformer`: transformer graphs (`place`: values as row-major
//!   matrices and strided views; `vector_ops`: vector-unit phases;
//!   `linear`: products with a non-zero accumulator start (float Linear
//!   layers, activation × activation MatMul); `steps`: steps over two
//!   buffer sets), and where each node runs (host preprocessing or device);
//! - `package`: phases joined by barriers, code and data placed, tensor
//!   map and per-layer facts (`LayerInfo`).
//!
//! The program computes the graph's quantized core, between the input's
//! QuantizeLinear and the outputs' DequantizeLinear, which the host does
//! (`layout::quantize_input`, `layout::dequantize_output`). Each layer is
//! one or more phases (`package::Code`); buffers, weights and parameters
//! are the program's constant data, so halos start filled with the zero
//! point and stay so.
//! - Conv: from bands of the feature map in the scratchpad (`conv_band`),
//!   or, where a band does not apply, a GEMM per group whose A blocks are
//!   gathered im2col-style straight from the feature map (1x1 stride-1
//!   convs read it as is); the input zero point folded into the bias.
//! - Dense: a GEMM; after a Flatten of NCHW data the weights are permuted
//!   to the NHWC order the data has in memory.
//! - MaxPool: the feature map into the scratchpad, `vmax` over the window
//!   rows, back to memory. Add and Clamp: `vadd`.
//! - Every phase passes `staging::bound`: LOADs that would overfill the
//!   DMA's staging buffer are cut and drained.

mod attention;
pub(crate) mod conv_band;
mod elementwise;
pub mod embedding;
pub(crate) mod gemm_layers;
mod linear;
mod memory;
mod movement;
mod package;
mod place;
mod pool;
mod resize;
pub(crate) mod staging;
mod steps;
pub mod transformer;
mod vector_ops;

pub use package::{LayerInfo, Lowered};

use crate::gemm::{Dataflow, LowerError, WeightChoice};
use crate::ir::{ElemType, Graph, Node, Op, Quant, ValueId};
use crate::ir_codec::PackedRef;
use isa::HwConfig;
use memory::{image_view, layout_of, plan_halos, Buffer, MemoryPlan};
use package::Code;

/// What every step works on: the graph and config, the memory plan and
/// the code so far.
pub(crate) struct Ctx<'a> {
    g: &'a Graph,
    cfg: &'a HwConfig,
    dataflow: Dataflow,
    /// Scratchpad row width in values (the array's columns).
    dim: usize,
    mem: MemoryPlan,
    code: Code,
    /// Where the node being lowered left its packed weights (a GEMM layer).
    packed_weights: Option<PackedRef>,
    /// The weight formats the layers may use (`--weights`).
    weights: WeightChoice,
    /// The buffer `out_buffer` hands out instead of allocating one: image
    /// `i` of the batch's output while `per_image` lowers a node image by
    /// image.
    image_out: Option<Buffer>,
}

impl<'a> Ctx<'a> {
    fn new(g: &'a Graph, cfg: &'a HwConfig) -> Result<Ctx<'a>, LowerError> {
        Ok(Ctx {
            g,
            cfg,
            dataflow: Dataflow::for_config(cfg)?,
            dim: cfg.array.cols as usize,
            mem: MemoryPlan::new(g.values.len()),
            code: Code::for_config(cfg),
            packed_weights: None,
            weights: WeightChoice::Auto,
            image_out: None,
        })
    }

    fn quant(&self, v: ValueId) -> Quant {
        self.g.values[v].quant.expect("validated: quantized")
    }

    fn zp_byte(&self, v: ValueId) -> u8 {
        self.quant(v).zero_point as u8
    }
}

fn unsupported(node: &str, op: &str, why: impl Into<String>) -> LowerError {
    LowerError::Unsupported { node: node.into(), op: op.into(), why: why.into() }
}

/// Lowers a validated graph for `cfg`.
pub fn lower(g: &Graph, cfg: &HwConfig) -> Result<Lowered, LowerError> {
    lower_with(g, cfg, WeightChoice::Auto)
}

/// [`lower`] with the weight formats `weights` allows (`--weights`): with
/// `Auto` on a configuration with `array.sparsity_2_4`, every conv and
/// dense layer whose weights are exactly 2:4 along the reduction runs on
/// 2:4-sparse tiles (`WeightFormat::Sparse24I8`).
pub fn lower_with(g: &Graph, cfg: &HwConfig, weights: WeightChoice) -> Result<Lowered, LowerError> {
    g.validate().map_err(|e| unsupported(&e.node, e.op, e.why))?;
    if transformer::is_transformer(g) {
        return transformer::lower_with(g, cfg, weights);
    }
    let halos = plan_halos(g)?;
    let mut cx = Ctx::new(g, cfg)?;
    cx.weights = weights;

    // The device input: the quantized graph input (after the host's Quantize).
    let (dev_in, host_quantize) = device_input(g)?;
    let in_layout = layout_of(g, dev_in, halos[dev_in])?;
    let fill = cx.zp_byte(dev_in);
    let addr = cx.mem.alloc(in_layout.bytes(), fill);
    cx.mem.set_buffer(dev_in, Buffer { addr, layout: in_layout });

    let mut layers = Vec::new();
    let mut packed = vec![None; g.nodes.len()];
    for (index, node) in g.nodes.iter().enumerate() {
        if node.inputs.first() == Some(&g.inputs[0]) && host_quantize && matches!(node.op, Op::Quantize) {
            continue;
        }
        if matches!(node.op, Op::Dequantize) {
            if !g.outputs.contains(&node.outputs[0]) {
                return Err(unsupported(
                    &node.name,
                    "dequantize",
                    "dequantizing inside the graph (float ops) is not supported",
                ));
            }
            continue;
        }
        let first = cx.code.next_index();
        let macs = lower_node(&mut cx, node, halos[node.outputs[0]])?;
        packed[index] = cx.packed_weights.take();
        let out = node.outputs[0];
        let v = &g.values[out];
        let b = cx.mem.buffer(out).expect("layer wrote its output");
        let q = cx.quant(out);
        layers.push(LayerInfo {
            name: node.name.clone(),
            op: package::layer_op(&node.op),
            first,
            last: cx.code.next_index(),
            macs,
            value: v.name.clone(),
            addr: b.addr,
            layout: b.layout.clone(),
            shape: v.shape.iter().map(|&d| d as u64).collect(),
            dtype: package::dtype_of(v.ty),
            scale: q.scale,
            zero_point: q.zero_point,
        });
    }
    package::package((g, cfg), cx.code, cx.mem, dev_in, layers, &packed)
}

/// Lowers one layer with the step its op belongs to; returns its MACs.
/// Its inputs have buffers; `out_halo` is the halo its output needs. A node
/// reading a batch of feature maps (`compile --batch`) is lowered by its
/// step at once where the step batches (convolutions: each weight tile
/// streamed past every image's bands; reshapes), else image by image.
fn lower_node(cx: &mut Ctx<'_>, node: &Node, out_halo: usize) -> Result<u64, LowerError> {
    let images = node.inputs.iter().filter_map(|&v| cx.mem.buffer(v)).map(|b| b.layout.images()).max().unwrap_or(1);
    let batches = matches!(node.op, Op::Conv(_) | Op::Flatten { .. } | Op::Reshape { .. });
    if images > 1 && !batches {
        return per_image(cx, node, out_halo, images);
    }
    lower_step(cx, node, out_halo)
}

/// `node` lowered image by image: its single-image step with every input
/// and the output set to image `i`'s view of the batch's buffers (the
/// ops without weights: pooling, adds, copies, tables, resizes).
fn per_image(cx: &mut Ctx<'_>, node: &Node, out_halo: usize, images: usize) -> Result<u64, LowerError> {
    let (y, name) = (node.outputs[0], node.name.as_str());
    let mut inputs = Vec::new();
    for &v in &node.inputs {
        let b = input_buffer(cx, v, name)?.clone();
        if b.layout.images() != images {
            return Err(unsupported(
                name,
                node.op.name(),
                format!(
                    "input `{}` is not a batch of {images} feature maps like the node's other inputs",
                    cx.g.values[v].name
                ),
            ));
        }
        inputs.push((v, b));
    }
    check_elem(cx, y, name, node.op.name())?;
    let outb = out_buffer(cx, y, out_halo)?;
    if outb.layout.images() != images {
        return Err(unsupported(name, node.op.name(), format!("the output is not a batch of {images} feature maps")));
    }
    let mut macs = 0;
    for i in 0..images {
        for (v, b) in &inputs {
            cx.mem.set_buffer(*v, image_view(b, i).expect("a batch of feature maps"));
        }
        cx.image_out = image_view(&outb, i);
        let step = lower_step(cx, node, out_halo);
        cx.image_out = None;
        macs += step?;
    }
    for (v, b) in inputs {
        cx.mem.set_buffer(v, b);
    }
    cx.mem.set_buffer(y, outb);
    Ok(macs)
}

/// [`lower_node`]'s step for one image (or a batch of row-major values).
fn lower_step(cx: &mut Ctx<'_>, node: &Node, out_halo: usize) -> Result<u64, LowerError> {
    let (x, y, name) = (node.inputs[0], node.outputs[0], node.name.as_str());
    match &node.op {
        Op::Conv(c) => gemm_layers::lower_conv(cx, x, y, c, out_halo, name),
        Op::Dense(d) => gemm_layers::lower_dense(cx, x, y, d, out_halo, name),
        Op::MaxPool(p) => pool::lower_maxpool(cx, x, y, p, out_halo, name),
        Op::AvgPool(p) => pool::lower_avgpool(cx, x, y, p, out_halo, name),
        Op::Flatten { .. } | Op::Reshape { .. } => movement::lower_reshape(cx, x, y, name, node.op.name()),
        Op::Concat { axis } => movement::lower_concat(cx, &node.inputs, y, *axis, out_halo, name),
        Op::Lut(f) => movement::lower_lut(cx, x, y, f, out_halo, name),
        Op::Resize { rows, cols } => movement::lower_resize(cx, x, y, (rows, cols), out_halo, name),
        Op::ResizeLinear(r) => resize::lower_resize_linear(cx, x, y, r, out_halo, name),
        Op::Add { qmin, qmax } | Op::Clamp { qmin, qmax } => {
            elementwise::lower_vadd(cx, node, (*qmin, *qmax), out_halo)
        }
        Op::Embedding(e) => embedding::lower_embedding(cx, x, y, e, name),
        Op::Quantize => Err(unsupported(name, "quantize", "quantizing inside the graph (float ops) is not supported")),
        other => Err(unsupported(name, other.name(), "not lowered to the accelerator yet")),
    }
}

/// The graph input the device sees, and whether the host quantizes it.
fn device_input(g: &Graph) -> Result<(ValueId, bool), LowerError> {
    if g.inputs.len() != 1 {
        return Err(unsupported("(graph)", "input", format!("{} graph inputs; one is supported", g.inputs.len())));
    }
    let x = g.inputs[0];
    if g.values[x].ty != ElemType::F32 {
        return Ok((x, false));
    }
    let q = g.nodes.iter().find(|n| n.inputs == [x] && matches!(n.op, Op::Quantize));
    match q {
        Some(n) if g.nodes.iter().filter(|m| m.inputs.contains(&x)).count() == 1 => Ok((n.outputs[0], true)),
        _ => Err(unsupported("(graph)", "input", "the float input must feed exactly one QuantizeLinear")),
    }
}

fn out_buffer(cx: &mut Ctx<'_>, v: ValueId, halo: usize) -> Result<Buffer, LowerError> {
    if let Some(b) = cx.image_out.take() {
        cx.mem.set_buffer(v, b.clone());
        return Ok(b);
    }
    let layout = layout_of(cx.g, v, halo)?;
    let fill = cx.zp_byte(v);
    let addr = cx.mem.alloc(layout.bytes(), fill);
    let b = Buffer { addr, layout };
    cx.mem.set_buffer(v, b.clone());
    Ok(b)
}

fn input_buffer<'b>(cx: &'b Ctx<'_>, v: ValueId, node: &str) -> Result<&'b Buffer, LowerError> {
    cx.mem
        .buffer(v)
        .ok_or_else(|| unsupported(node, "input", format!("value `{}` has no device buffer", cx.g.values[v].name)))
}

fn check_elem(cx: &Ctx<'_>, y: ValueId, node: &str, op: &str) -> Result<(), LowerError> {
    if cx.g.values[y].ty == ElemType::F32 {
        return Err(unsupported(node, op, "float outputs inside the graph are not lowered"));
    }
    Ok(())
}

/// Each step run alone: a one-layer graph whose inputs are quantized
/// values already in device buffers, lowered by that step only, the
/// stream checked instruction by instruction and run on the model, the
/// output buffer compared with the interpreter.
#[cfg(test)]
mod step_tests {
    use super::*;
    use crate::interp::{self, Tensor};

    fn bytes(n: usize, seed: u64) -> Vec<u8> {
        let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                (s >> 33) as u8
            })
            .collect()
    }

    fn list(n: usize, seed: u64) -> String {
        bytes(n, seed).iter().map(|&b| (b as i8).to_string()).collect::<Vec<_>>().join(", ")
    }

    /// Lowers the last node of the graph in `text` alone on `cfg`, runs it
    /// and compares; returns the step's MACs and the MAC counter.
    fn check_step(text: &str, cfg: &HwConfig) -> (u64, u64) {
        let (macs, counted, _) = run_step(text, cfg);
        (macs, counted)
    }

    /// [`check_step`], also returning the step's code.
    pub(in crate::lower) fn run_step(text: &str, cfg: &HwConfig) -> (u64, u64, Vec<isa::instr::Instr>) {
        let g = crate::text::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let halos = plan_halos(&g).unwrap();
        let mut cx = Ctx::new(&g, cfg).unwrap();
        let mut inputs = Vec::new();
        for (i, &v) in g.inputs.iter().enumerate() {
            let val = &g.values[v];
            let data = bytes(val.elements(), i as u64 + 7);
            let layout = layout_of(&g, v, halos[v]).unwrap();
            let addr = cx.mem.alloc_bytes(&layout.pack(&data, cx.zp_byte(v)));
            cx.mem.set_buffer(v, Buffer { addr, layout });
            inputs.push(match val.ty {
                ElemType::U8 => Tensor::from_u8(val.shape.clone(), &data),
                _ => Tensor::from_i8(val.shape.clone(), &data.iter().map(|&b| b as i8).collect::<Vec<_>>()),
            });
        }
        let node = g.nodes.last().unwrap();
        let y = node.outputs[0];
        let macs = lower_node(&mut cx, node, 0).unwrap();
        let out = cx.mem.buffer(y).unwrap().clone();
        let code = std::mem::take(&mut cx.code).into_instrs();
        let (mut d, counters, data_addr) = crate::test_run::run_alone(cfg, code.clone(), cx.mem.into_data());
        let got = out.layout.unpack(&d.read_mem(data_addr + out.addr, out.layout.bytes()).unwrap());
        let vals = interp::run(&g, &inputs).unwrap();
        let want: Vec<u8> = vals[y].as_quant().unwrap().iter().map(|&q| q as u8).collect();
        assert_eq!(got.len(), want.len());
        assert!(want.iter().any(|&b| b != want[0]), "{}: a constant output checks little", node.name);
        let diff = got.iter().zip(&want).position(|(a, b)| a != b);
        assert!(diff.is_none(), "{}: `{}` differs first at element {diff:?}", cfg.name, node.name);
        (macs, counters.get(isa::Counter::Macs), code)
    }

    /// Square and non-square (wider, taller, neither a power of two).
    pub(in crate::lower) fn configs() -> Vec<HwConfig> {
        let mut v = vec![HwConfig::tiny_4x4()];
        for (rows, cols) in [(4, 8), (8, 4), (5, 12)] {
            v.push(HwConfig::tiny_shaped(rows, cols));
        }
        v
    }

    #[test]
    fn gemm_layers_conv_and_dense() {
        let conv = format!(
            "model t\ninput x: i8[1, 5, 6, 6] scale=0.05 zp=3\n\
             conv c x -> y: i8[1, 7, 6, 6] scale=0.1 zp=-4 relu strides=1 pads=1 dilations=1 groups=1\n    \
             weights: i8[7, 5, 3, 3] = [{}]\n    w_scale = 0.01\n    bias = [5, -3, 0, 100, -100, 7, 1]\noutput y\n",
            list(7 * 5 * 9, 1)
        );
        let dense = format!(
            "model t\ninput x: u8[1, 20] scale=0.05 zp=130\n\
             dense fc x -> y: i8[1, 9] scale=0.2 zp=1\n    weights: i8[9, 20] = [{}]\n    w_scale = 0.02\noutput y\n",
            list(9 * 20, 2)
        );
        for cfg in configs() {
            for text in [&conv, &dense] {
                let (macs, counted) = check_step(text, &cfg);
                assert_eq!(macs, counted, "{}: the step's MACs are the array's", cfg.name);
            }
        }
    }

    #[test]
    fn pooling() {
        let max = "model t\ninput x: i8[1, 6, 7, 7] scale=0.05 zp=3\n\
                   maxpool p x -> y kernel=3 strides=2 pads=1\noutput y\n";
        let avg = "model t\ninput x: i8[1, 6, 7, 7] scale=0.05 zp=3\n\
                   avgpool p x -> y: i8[1, 6, 1, 1] scale=0.04 zp=-2 kernel=7 strides=1\noutput y\n";
        // Padded (asymmetric, as ceil_mode imports), both count_include_pad.
        let padded = |cip: &str| {
            format!(
                "model t\ninput x: i8[1, 6, 7, 7] scale=0.05 zp=3\n\
                 avgpool p x -> y: i8[1, 6, 4, 3] scale=0.04 zp=-2 kernel=(3, 2) strides=(2, 3) \
                 pads=(1, 0, 1, 1){cip}\noutput y\n"
            )
        };
        let uint8 = |zy: i32| {
            format!(
                "model t\ninput x: u8[1, 6, 7, 7] scale=0.05 zp=130\n\
                 avgpool p x -> y: u8[1, 6, 7, 7] scale=0.04 zp={zy} kernel=3 strides=1 pads=1\noutput y\n"
            )
        };
        // Unpadded windows over 20 channels (two blocks on the 16x16),
        // the output zero point 0 (`vquant` divides by s_y itself).
        let unpadded = "model t\ninput x: i8[1, 20, 6, 6] scale=0.05 zp=3\n\
                        avgpool p x -> y: i8[1, 20, 3, 3] scale=0.05 zp=0 kernel=2 strides=2\noutput y\n";
        let global_u8 = "model t\ninput x: u8[1, 6, 7, 7] scale=0.05 zp=130\n\
                         avgpool p x -> y: u8[1, 6, 1, 1] scale=0.04 zp=120 kernel=7 strides=1\noutput y\n";
        for cfg in configs() {
            check_step(max, &cfg);
            check_step(avg, &cfg);
            check_step(&padded(""), &cfg);
            check_step(&padded(" count_include_pad"), &cfg);
            check_step(unpadded, &cfg);
            // Windowed pooling runs on the vector unit, any array shape.
            check_step(&uint8(120), &cfg);
            check_step(&uint8(0), &cfg);
            // Global uint8 windows sum through an identity tile: arrays at
            // least as tall as wide.
            if cfg.array.rows >= cfg.array.cols {
                check_step(global_u8, &cfg);
            }
        }
    }

    #[test]
    fn elementwise_add_and_clamp() {
        let add = "model t\ninput a: i8[1, 6, 3, 5] scale=0.05 zp=3\ninput b: i8[1, 6, 3, 5] scale=0.08 zp=-7\n\
                   add s a, b -> y: i8[1, 6, 3, 5] scale=0.1 zp=2 relu\noutput y\n";
        let clamp = "model t\ninput a: u8[1, 10] scale=0.05 zp=100\n\
                     clamp c a -> y: u8[1, 10] scale=0.05 zp=100 clamp=(90, 200)\noutput y\n";
        for cfg in configs() {
            check_step(add, &cfg);
            check_step(clamp, &cfg);
        }
    }

    #[test]
    fn data_movement_concat() {
        let concat = "model t\ninput a: i8[1, 3, 4, 5] scale=0.05 zp=3\ninput b: i8[1, 9, 4, 5] scale=0.05 zp=3\n\
                      concat c a, b -> y axis=1\noutput y\n";
        for cfg in configs() {
            check_step(concat, &cfg);
        }
    }

    #[test]
    fn concat_requantizes_through_tables() {
        let concat = "model t\ninput a: i8[1, 3, 4, 5] scale=0.05 zp=3\ninput b: i8[1, 9, 4, 5] scale=0.08 zp=-7\n\
                      concat c a, b -> y: i8[1, 12, 4, 5] scale=0.07 zp=1 axis=1\noutput y\n";
        let flat = "model t\ninput a: u8[3, 7] scale=0.05 zp=3\ninput b: u8[3, 5] scale=0.05 zp=3\n\
                    concat c a, b -> y: u8[3, 12] scale=0.03 zp=128 axis=1\noutput y\n";
        for cfg in configs() {
            check_step(concat, &cfg);
            check_step(flat, &cfg);
        }
    }

    #[test]
    fn resize_nearest_gathers_and_requantizes() {
        let same = "model t\ninput x: i8[1, 6, 3, 4] scale=0.05 zp=3\n\
                    resize r x -> y: i8[1, 6, 6, 7] scale=0.05 zp=3 rows=[0, 0, 1, 1, 2, 2] cols=[0, 0, 1, 2, 2, 3, 3]\noutput y\n";
        let requant = "model t\ninput x: u8[1, 5, 4, 4] scale=0.05 zp=100\n\
                       resize r x -> y: i8[1, 5, 2, 3] scale=0.03 zp=-7 rows=[1, 3] cols=[0, 2, 3]\noutput y\n";
        for cfg in configs() {
            check_step(same, &cfg);
            check_step(requant, &cfg);
        }
    }

    /// Weight superblock LOADs of a band conv (DRAM rows `WIDE + 1` tiles apart).
    fn weight_loads(code: &[isa::instr::Instr], dim: usize) -> usize {
        code.iter().filter(|i| matches!(i, isa::instr::Instr::Load(l) if l.stride as usize == 17 * dim)).count()
    }

    /// A batch of 3 through every step (`compile --batch`): each equals the
    /// interpreter on the batch; a band conv with resident weights loads
    /// them once for the batch, as for one image.
    #[test]
    fn batched_steps() {
        let conv = |n: usize, cin: usize, cout: usize, hw: usize, k: usize, s: usize, groups: usize| {
            let (pad, oh) = (k / 2, (hw + 2 * (k / 2) - k) / s + 1);
            format!(
                "model t\ninput x: i8[{n}, {cin}, {hw}, {hw}] scale=0.05 zp=3\n\
                 conv c x -> y: i8[{n}, {cout}, {oh}, {oh}] scale=0.4 zp=-4 relu strides={s} pads={pad} dilations=1 \
                 groups={groups}\n    weights: i8[{cout}, {}, {k}, {k}] = [{}]\n    w_scale = 0.01\noutput y\n",
                cin / groups,
                list(cout * cin / groups * k * k, 5)
            )
        };
        let conv_cases = [
            (5, 7, 6, 3, 1, 1),    // plain, one band an image
            (3, 20, 23, 7, 2, 1),  // a few-channel stem (packed kernel rows)
            (20, 20, 9, 3, 2, 20), // depthwise
            (17, 9, 5, 1, 1, 1),   // 1x1
            (24, 20, 40, 3, 1, 1), // several bands an image
            (3, 6, 5, 3, 1, 3),    // groups of 1 in, 2 out: the im2col GEMM
        ];
        let steps = [
            "model t\ninput x: i8[3, 6, 7, 7] scale=0.05 zp=3\nmaxpool p x -> y kernel=3 strides=2 pads=1\noutput y\n",
            "model t\ninput x: i8[3, 6, 7, 7] scale=0.05 zp=3\n\
             avgpool p x -> y: i8[3, 6, 4, 3] scale=0.04 zp=-2 kernel=(3, 2) strides=(2, 3) pads=(1, 0, 1, 1)\noutput y\n",
            "model t\ninput a: i8[3, 6, 3, 5] scale=0.05 zp=3\ninput b: i8[3, 6, 3, 5] scale=0.08 zp=-7\n\
             add s a, b -> y: i8[3, 6, 3, 5] scale=0.1 zp=2 relu\noutput y\n",
            "model t\ninput a: i8[3, 3, 4, 5] scale=0.05 zp=3\ninput b: i8[3, 9, 4, 5] scale=0.08 zp=-7\n\
             concat c a, b -> y: i8[3, 12, 4, 5] scale=0.07 zp=1 axis=1\noutput y\n",
            "model t\ninput x: u8[3, 5, 4, 4] scale=0.05 zp=100\n\
             resize r x -> y: i8[3, 5, 2, 3] scale=0.03 zp=-7 rows=[1, 3] cols=[0, 2, 3]\noutput y\n",
            "model t\ninput x: i8[3, 6, 5, 7] scale=0.05 zp=3\nsigmoid s x -> y: i8[3, 6, 5, 7] scale=0.0039 zp=-128\noutput y\n",
        ];
        for cfg in configs().into_iter().chain([HwConfig::default_16x16()]) {
            for &(cin, cout, hw, k, s, groups) in &conv_cases {
                let (_, _, one) = run_step(&conv(1, cin, cout, hw, k, s, groups), &cfg);
                let (macs, counted, three) = run_step(&conv(3, cin, cout, hw, k, s, groups), &cfg);
                assert_eq!(macs, counted, "{}: conv {cin}->{cout} {hw}x{hw} k{k}", cfg.name);
                let dim = cfg.array.cols as usize;
                let (w1, w3) = (weight_loads(&one, dim), weight_loads(&three, dim));
                let band = one.iter().any(|i| matches!(i, isa::instr::Instr::Matmul(m) if m.a_group != 0));
                // Resident weights (the small layers) load once for the
                // batch; streamed ones reload per band, as for one image.
                assert!(w3 == w1 || w3 == 3 * w1, "{}: conv {cin}->{cout} {hw}x{hw}: {w1} and {w3}", cfg.name);
                if band && hw < 40 {
                    assert_eq!(w3, w1, "{}: conv {cin}->{cout} {hw}x{hw}", cfg.name);
                }
            }
            for text in steps {
                check_step(text, &cfg);
            }
        }
    }

    #[test]
    fn unary_ops_through_tables() {
        let ops = [
            "sigmoid s x -> y: i8[1, 6, 5, 7] scale=0.0039 zp=-128",
            "tanh s x -> y: i8[1, 6, 5, 7] scale=0.0078 zp=0",
            "hardsigmoid s x -> y: i8[1, 6, 5, 7] scale=0.004 zp=-128 alpha=0.3 beta=0.4",
            "hardswish s x -> y: i8[1, 6, 5, 7] scale=0.03 zp=-100",
            "leakyrelu s x -> y: i8[1, 6, 5, 7] scale=0.05 zp=20 alpha=0.1",
            "clip s x -> y: i8[1, 6, 5, 7] scale=0.02 zp=-128 min=0 max=2.51",
            "requantize s x -> y: u8[1, 6, 5, 7] scale=0.07 zp=128",
        ];
        for cfg in configs() {
            for op in ops {
                let text = format!("model t\ninput x: i8[1, 6, 5, 7] scale=0.05 zp=3\n{op}\noutput y\n");
                check_step(&text, &cfg);
            }
            let flat = "model t\ninput x: u8[9, 21] scale=0.1 zp=120\nsigmoid s x -> y: u8[9, 21] scale=0.0039 zp=0\noutput y\n";
            check_step(flat, &cfg);
        }
    }
}
