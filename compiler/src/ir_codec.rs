//! The binary encoding of a graph (`ir::Graph`), stored in a program's
//! graph section so `systole run --check` has the reference without the
//! model file.
//!
//! Little-endian, as `isa::codec` writes it: the magic `b"STMGRAPH"`, the
//! version (u32, [`VERSION`]), the name, the values, the nodes, the input
//! and output ids. Weights are raw bytes (int8), biases int32 and scales
//! the bits of their float32, so a graph reads back exactly. The text
//! format (`text.rs`) stays the one for people; this one is for machines
//! and costs a copy, not a printout.
//!
//! [`decode`] reads untrusted bytes: every count is bounded by the bytes
//! that remain, every id, size and parameter length is checked, and the
//! graph must pass [`Graph::validate`], so what it returns is safe to
//! interpret.

use crate::ir::{ConvParams, DenseParams, ElemType, Graph, Node, Op, PoolParams, Quant, Value};
use isa::codec::{DecodeError, Reader, Writer};

/// The first 8 bytes of an encoded graph.
pub const MAGIC: [u8; 8] = *b"STMGRAPH";
/// The encoding's version; [`decode`] reads only this one.
pub const VERSION: u32 = 1;

/// The largest kernel, stride, dilation, pad or group count accepted.
const MAX_PARAM: usize = 1 << 16;
/// The most elements a value may have (bounds what interpreting it allocates).
const MAX_ELEMENTS: usize = 1 << 32;

/// The graph's bytes.
pub fn encode(g: &Graph) -> Vec<u8> {
    let weights: usize = g.nodes.iter().map(|n| params_bytes(&n.op)).sum();
    let mut w = Writer { bytes: Vec::with_capacity(weights + 64 * (g.values.len() + g.nodes.len()) + 64) };
    w.bytes.extend_from_slice(&MAGIC);
    w.u32(VERSION);
    w.str(&g.name);
    w.len(g.values.len());
    for v in &g.values {
        w.str(&v.name);
        w.len(v.shape.len());
        v.shape.iter().for_each(|&d| w.len(d));
        w.u8(elem_tag(v.ty));
        w.bool(v.quant.is_some());
        if let Some(q) = v.quant {
            w.f32(q.scale);
            w.i32(q.zero_point);
        }
    }
    w.len(g.nodes.len());
    for n in &g.nodes {
        w.str(&n.name);
        encode_op(&n.op, &mut w);
        ids(&n.inputs, &mut w);
        ids(&n.outputs, &mut w);
    }
    ids(&g.inputs, &mut w);
    ids(&g.outputs, &mut w);
    w.bytes
}

/// Reads a graph [`encode`] wrote; an error says what is wrong and where.
pub fn decode(bytes: &[u8]) -> Result<Graph, DecodeError> {
    let mut r = Reader::new(bytes);
    let magic: Vec<u8> = (0..MAGIC.len()).map(|_| r.u8("graph magic")).collect::<Result<_, _>>()?;
    if magic != MAGIC {
        return Err(DecodeError { offset: 0, why: format!("not an encoded graph (magic {:02x?})", magic) });
    }
    let version = r.u32("graph version")?;
    if version != VERSION {
        return Err(r.error(format!(
            "graph encoding version {version}, this build reads {VERSION}: made by another systole version"
        )));
    }
    let name = r.str("graph name")?;
    // A value is at least a name, a rank, a type and a flag (8 + 8 + 1 + 1 bytes).
    let values = r.seq("values", 18, decode_value)?;
    let nodes = r.seq("nodes", 18, |r| {
        let name = r.str("node name")?;
        let op = decode_op(r).map_err(|e| DecodeError { why: format!("node `{name}`: {}", e.why), ..e })?;
        let inputs = decode_ids(r, "node inputs", values.len())?;
        let outputs = decode_ids(r, "node outputs", values.len())?;
        Ok(Node { name, op, inputs, outputs })
    })?;
    let inputs = decode_ids(&mut r, "graph inputs", values.len())?;
    let outputs = decode_ids(&mut r, "graph outputs", values.len())?;
    r.finish()?;
    let g = Graph { name, values, nodes, inputs, outputs };
    g.validate().map_err(|e| DecodeError { offset: bytes.len(), why: format!("the graph is inconsistent: {e}") })?;
    Ok(g)
}

fn params_bytes(op: &Op) -> usize {
    match op {
        Op::Conv(c) => c.weights.len() + 8 * c.bias.len(),
        Op::Dense(d) => d.weights.len() + 8 * d.bias.len(),
        _ => 0,
    }
}

fn elem_tag(t: ElemType) -> u8 {
    match t {
        ElemType::I8 => 0,
        ElemType::U8 => 1,
        ElemType::F32 => 2,
    }
}

fn ids(v: &[usize], w: &mut Writer) {
    w.len(v.len());
    v.iter().for_each(|&i| w.len(i));
}

fn decode_ids(r: &mut Reader<'_>, what: &str, values: usize) -> Result<Vec<usize>, DecodeError> {
    let ids = r.usizes(what)?;
    match ids.iter().find(|&&i| i >= values) {
        Some(i) => Err(r.error(format!("{what}: value {i} does not exist (the graph has {values})"))),
        None => Ok(ids),
    }
}

fn decode_value(r: &mut Reader<'_>) -> Result<Value, DecodeError> {
    let name = r.str("value name")?;
    let shape = r.usizes("value shape")?;
    let elements = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).filter(|&n| n <= MAX_ELEMENTS);
    if elements.is_none() {
        return Err(r.error(format!("value `{name}`: shape {shape:?} has more than {MAX_ELEMENTS} elements")));
    }
    let ty = [ElemType::I8, ElemType::U8, ElemType::F32][r.tag("element type", 3)? as usize];
    let quant = if r.bool("quantization present")? {
        Some(Quant { scale: r.f32("scale")?, zero_point: r.i32("zero point")? })
    } else {
        None
    };
    Ok(Value { name, shape, ty, quant })
}

fn encode_pool(p: &PoolParams, w: &mut Writer) {
    p.kernel.iter().chain(&p.strides).chain(&p.pads).for_each(|&d| w.len(d));
    w.bool(p.count_include_pad);
}

fn encode_op(op: &Op, w: &mut Writer) {
    let tag = match op {
        Op::Quantize => 0,
        Op::Dequantize => 1,
        Op::Conv(_) => 2,
        Op::Dense(_) => 3,
        Op::MaxPool(_) => 4,
        Op::AvgPool(_) => 5,
        Op::Add { .. } => 6,
        Op::Clamp { .. } => 7,
        Op::Flatten { .. } => 8,
        Op::Reshape { .. } => 9,
        Op::Transpose { .. } => 10,
        Op::Concat { .. } => 11,
    };
    w.u8(tag);
    match op {
        Op::Quantize | Op::Dequantize => {}
        Op::Conv(c) => {
            w.i8s(&c.weights);
            c.w_shape.iter().for_each(|&d| w.len(d));
            w.f32s(&c.w_scale);
            w.i32s(&c.bias);
            c.strides.iter().chain(&c.pads).chain(&c.dilations).for_each(|&d| w.len(d));
            w.len(c.groups);
            w.i32(c.qmin);
            w.i32(c.qmax);
        }
        Op::Dense(d) => {
            w.i8s(&d.weights);
            w.len(d.n);
            w.len(d.k);
            w.f32s(&d.w_scale);
            w.i32s(&d.bias);
            w.i32(d.qmin);
            w.i32(d.qmax);
        }
        Op::MaxPool(p) | Op::AvgPool(p) => encode_pool(p, w),
        Op::Add { qmin, qmax } | Op::Clamp { qmin, qmax } => {
            w.i32(*qmin);
            w.i32(*qmax);
        }
        Op::Flatten { axis } | Op::Concat { axis } => w.len(*axis),
        Op::Reshape { shape: v } | Op::Transpose { perm: v } => {
            w.len(v.len());
            v.iter().for_each(|&d| w.len(d));
        }
    }
}

/// `N` sizes, each in `lo..=MAX_PARAM`.
fn sizes<const N: usize>(r: &mut Reader<'_>, what: &str, lo: usize) -> Result<[usize; N], DecodeError> {
    let mut out = [0; N];
    for o in &mut out {
        *o = r.usize(what)?;
        if !(lo..=MAX_PARAM).contains(o) {
            return Err(r.error(format!("{what} {o} is outside {lo}..={MAX_PARAM}")));
        }
    }
    Ok(out)
}

fn check_len(r: &Reader<'_>, what: &str, len: usize, expected: usize) -> Result<(), DecodeError> {
    if len != expected {
        return Err(r.error(format!("{len} {what}, the shape needs {expected}")));
    }
    Ok(())
}

fn decode_pool(r: &mut Reader<'_>) -> Result<PoolParams, DecodeError> {
    Ok(PoolParams {
        kernel: sizes(r, "pool kernel", 1)?,
        strides: sizes(r, "pool stride", 1)?,
        pads: sizes(r, "pool pad", 0)?,
        count_include_pad: r.bool("count_include_pad")?,
    })
}

fn decode_op(r: &mut Reader<'_>) -> Result<Op, DecodeError> {
    Ok(match r.tag("op", 12)? {
        0 => Op::Quantize,
        1 => Op::Dequantize,
        2 => {
            let weights = r.i8s("conv weights")?;
            let w_shape: [usize; 4] = sizes(r, "conv weight dimension", 1)?;
            let w_scale = r.f32s("conv weight scales")?;
            let bias = r.i32s("conv bias")?;
            let [sh, sw, pt, pl, pb, pr, dh, dw] = sizes::<8>(r, "conv stride, pad or dilation", 0)?;
            if sh == 0 || sw == 0 || dh == 0 || dw == 0 {
                return Err(r.error("conv strides and dilations must be at least 1"));
            }
            let [groups] = sizes(r, "conv groups", 1)?;
            let (qmin, qmax) = (r.i32("qmin")?, r.i32("qmax")?);
            let volume = w_shape.iter().product(); // each at most 2^16, so no overflow in 64 bits
            check_len(r, "conv weights", weights.len(), volume)?;
            check_len(r, "conv weight scales", w_scale.len(), w_shape[0])?;
            check_len(r, "conv biases", bias.len(), w_shape[0])?;
            Op::Conv(ConvParams {
                weights,
                w_shape,
                w_scale,
                bias,
                strides: [sh, sw],
                pads: [pt, pl, pb, pr],
                dilations: [dh, dw],
                groups,
                qmin,
                qmax,
            })
        }
        3 => {
            let weights = r.i8s("dense weights")?;
            let [n, k] = [r.usize("dense n")?, r.usize("dense k")?];
            let w_scale = r.f32s("dense weight scales")?;
            let bias = r.i32s("dense bias")?;
            let (qmin, qmax) = (r.i32("qmin")?, r.i32("qmax")?);
            let volume = n.checked_mul(k).ok_or_else(|| r.error(format!("dense {n} x {k} overflows")))?;
            check_len(r, "dense weights", weights.len(), volume)?;
            check_len(r, "dense weight scales", w_scale.len(), n)?;
            check_len(r, "dense biases", bias.len(), n)?;
            Op::Dense(DenseParams { weights, n, k, w_scale, bias, qmin, qmax })
        }
        4 => Op::MaxPool(decode_pool(r)?),
        5 => Op::AvgPool(decode_pool(r)?),
        6 => Op::Add { qmin: r.i32("qmin")?, qmax: r.i32("qmax")? },
        7 => Op::Clamp { qmin: r.i32("qmin")?, qmax: r.i32("qmax")? },
        8 => Op::Flatten { axis: r.usize("flatten axis")? },
        9 => {
            let shape = r.usizes("reshape shape")?;
            if shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).is_none_or(|n| n > MAX_ELEMENTS) {
                return Err(r.error(format!("reshape to {shape:?}: more than {MAX_ELEMENTS} elements")));
            }
            Op::Reshape { shape }
        }
        10 => Op::Transpose { perm: r.usizes("transpose permutation")? },
        _ => Op::Concat { axis: r.usize("concat axis")? },
    })
}
