//! Lowering of a quantized graph (`ir::Graph`) to a program for the
//! accelerator, in named steps (one module each):
//! - `memory`: the memory plan — buffers, layouts, halos, aligned offsets;
//! - `gemm_layers`: conv and dense as one `gemm::GemmJob` each (per group);
//! - `pool`: max and average pooling; `elementwise`: add and clamp;
//! - `movement`: DMA copies (concat), reshapes, feature-map moves, im2col;
//! - `package`: phases joined by barriers, code and data placed, tensor
//!   map and per-layer facts (`LayerInfo`).
//!
//! The program computes the graph's quantized core, between the input's
//! QuantizeLinear and the outputs' DequantizeLinear, which the host does
//! (`layout::quantize_input`, `layout::dequantize_output`). Each layer is
//! one or more phases (`package::Code`); buffers, weights and parameters
//! are the program's constant data, so halos start filled with the zero
//! point and stay so.
//! - Conv: a GEMM per group whose A blocks are gathered im2col-style
//!   straight from the feature map (1x1 stride-1 convs read it as is), with
//!   the input zero point folded into the bias. Reduction order (kh, kw, cin).
//! - Dense: a GEMM; after a Flatten of NCHW data the weights are permuted
//!   to the NHWC order the data has in memory.
//! - MaxPool: the feature map into the scratchpad, `vmax` over the window
//!   rows, back to memory. Add and Clamp: `vadd`.

mod elementwise;
mod gemm_layers;
mod memory;
mod movement;
mod package;
mod pool;

pub use package::{LayerInfo, Lowered};

use crate::gemm::{Dataflow, LowerError};
use crate::ir::{ElemType, Graph, Op, Quant, ValueId};
use isa::layout::Layout;
use isa::HwConfig;
use memory::{layout_of, plan_halos, Buffer, MemoryPlan};
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
}

impl<'a> Ctx<'a> {
    fn new(g: &'a Graph, cfg: &'a HwConfig) -> Result<Ctx<'a>, LowerError> {
        Ok(Ctx {
            g,
            cfg,
            dataflow: Dataflow::for_config(cfg)?,
            dim: cfg.array.cols as usize,
            mem: MemoryPlan::new(g.values.len()),
            code: Code::default(),
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
    g.validate().map_err(|e| unsupported(&e.node, e.op, e.why))?;
    let halos = plan_halos(g)?;
    let mut cx = Ctx::new(g, cfg)?;

    // The device input: the quantized graph input (after the host's Quantize).
    let (dev_in, host_quantize) = device_input(g)?;
    let in_layout = layout_of(g, dev_in, halos[dev_in])?;
    let fill = cx.zp_byte(dev_in);
    let addr = cx.mem.alloc(in_layout.bytes(), fill);
    cx.mem.set_buffer(dev_in, Buffer { addr, layout: in_layout });

    let mut layers = Vec::new();
    for node in &g.nodes {
        if node.inputs.first() == Some(&g.inputs[0]) && host_quantize && matches!(node.op, Op::Quantize) {
            continue;
        }
        let first = cx.code.next_index();
        let macs = match &node.op {
            Op::Dequantize => {
                if !g.outputs.contains(&node.outputs[0]) {
                    return Err(unsupported(
                        &node.name,
                        "dequantize",
                        "dequantizing inside the graph (float ops) is not supported",
                    ));
                }
                continue;
            }
            Op::Quantize => {
                return Err(unsupported(
                    &node.name,
                    "quantize",
                    "quantizing inside the graph (float ops) is not supported",
                ))
            }
            Op::Conv(c) => gemm_layers::lower_conv(
                &mut cx,
                node.inputs[0],
                node.outputs[0],
                c,
                halos[node.outputs[0]],
                &node.name,
            )?,
            Op::Dense(d) => gemm_layers::lower_dense(
                &mut cx,
                node.inputs[0],
                node.outputs[0],
                d,
                halos[node.outputs[0]],
                &node.name,
            )?,
            Op::MaxPool(p) => {
                pool::lower_maxpool(&mut cx, node.inputs[0], node.outputs[0], p, halos[node.outputs[0]], &node.name)?
            }
            Op::AvgPool(p) => {
                pool::lower_avgpool(&mut cx, node.inputs[0], node.outputs[0], p, halos[node.outputs[0]], &node.name)?
            }
            Op::Flatten { .. } | Op::Reshape { .. } => {
                movement::lower_reshape(&mut cx, node.inputs[0], node.outputs[0], &node.name, node.op.name())?
            }
            Op::Add { qmin, qmax } => elementwise::lower_vadd(&mut cx, node, (*qmin, *qmax), halos[node.outputs[0]])?,
            Op::Concat { axis } => movement::lower_concat(
                &mut cx,
                &node.inputs,
                node.outputs[0],
                *axis,
                halos[node.outputs[0]],
                &node.name,
            )?,
            Op::Clamp { qmin, qmax } => elementwise::lower_vadd(&mut cx, node, (*qmin, *qmax), halos[node.outputs[0]])?,
            other => return Err(unsupported(&node.name, other.name(), "not lowered to the accelerator yet")),
        };
        let out = node.outputs[0];
        let v = &g.values[out];
        let b = cx.mem.buffer(out).expect("layer wrote its output");
        let q = cx.quant(out);
        layers.push(LayerInfo {
            name: node.name.clone(),
            op: node.op.name().into(),
            first,
            last: cx.code.next_index(),
            macs,
            value: v.name.clone(),
            addr: b.addr,
            layout: b.layout.describe(),
            shape: v.shape.iter().map(|&d| d as u64).collect(),
            elem: v.ty.name().into(),
            scale: q.scale,
            zero_point: q.zero_point,
            view: matches!(b.layout, Layout::Flat { perm: Some(_), .. }),
        });
    }
    package::package((g, cfg), cx.code, cx.mem, dev_in, layers)
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
