//! The binary encoding of a graph (`ir::Graph`), stored in a program's
//! graph section so `systole run --check` has the reference without the
//! model file.
//!
//! Little-endian, as `isa::codec` writes it: the magic `b"STMGRAPH"`, the
//! version (u32, [`VERSION`]), the name, the values, the nodes, the input
//! and output ids. Biases are int32 and scales the bits of their float32,
//! so a graph reads back exactly. A conv or dense layer's weights are
//! either raw bytes (int8) or, in a compiled program, a reference to
//! where the lowering packed them in the program's data ([`PackedRef`]):
//! the file holds the weights once, and [`decode_with_data`] unpacks them.
//! [`encode_referencing`] writes a reference only after checking that it
//! unpacks to exactly the graph's weights, so the reference interpreter
//! always has the model's weights: a packing bug still shows up under
//! `--check`. The text
//! format (`text.rs`) stays the one for people; this one is for machines
//! and costs a copy, not a printout.
//!
//! [`decode`] reads untrusted bytes: every count is bounded by the bytes
//! that remain, every id, size and parameter length is checked, and the
//! graph must pass [`Graph::validate`], so what it returns is safe to
//! interpret.

use crate::gemm::{
    dense_i4_packed_len, dense_i8_packed_len, stream_i8_packed_len, unpack_dense_i4, unpack_dense_i8, unpack_stream_i8,
    TileShape, WeightFormat,
};
use crate::ir::{
    BinaryOp, ConvParams, DenseParams, ElemType, EmbeddingParams, GeluForm, Graph, Node, Op, PoolParams, Quant,
    UnaryOp, Value, WeightType,
};
use crate::lower::gemm_layers::{conv_group_from_b, dense_from_b};
use crate::lut::UnaryFn;
use isa::codec::{DecodeError, Reader, Writer};

/// The first 8 bytes of an encoded graph.
pub const MAGIC: [u8; 8] = *b"STMGRAPH";
/// The encoding's version; [`decode`] reads only this one (2: weights may
/// be references to the program's packed data).
pub const VERSION: u32 = 2;

/// Op tag of a linear resize (the tags below it are in `op_tag`'s match).
const RESIZE_LINEAR_TAG: u8 = 26;

/// Where a conv or dense layer's weights are packed in a program's data:
/// per group (one for dense) the offset of its B `[k, n]` packed in
/// `format` on tiles `tile_n` columns wide (`gemm::PackedWeights`), and
/// for dense the order of B's rows (`perm[phys]` is the logical column,
/// NHWC after a Flatten). B's layout per op is the lowering's
/// (`conv_group_b`, `dense_b`).
#[derive(Clone, Debug, PartialEq)]
pub struct PackedRef {
    pub format: WeightFormat,
    pub tile_n: usize,
    pub offsets: Vec<u64>,
    pub perm: Option<Vec<usize>>,
}

/// The largest kernel, stride, dilation, pad or group count accepted.
const MAX_PARAM: usize = 1 << 16;
/// The most elements a value may have (bounds what interpreting it allocates).
const MAX_ELEMENTS: usize = 1 << 32;

/// The graph's bytes, weights raw.
pub fn encode(g: &Graph) -> Vec<u8> {
    encode_referencing(g, &[], &[])
}

/// The graph's bytes, the weights of node `i` as the reference `packed[i]`
/// into `data` (the program's data section) when it unpacks to exactly
/// the node's weights, raw otherwise (no reference, or a packing that does
/// not invert).
pub fn encode_referencing(g: &Graph, data: &[u8], packed: &[Option<PackedRef>]) -> Vec<u8> {
    let refs: Vec<Option<&PackedRef>> = (0..g.nodes.len())
        .map(|i| packed.get(i).and_then(Option::as_ref).filter(|p| unpacks_to(p, &g.nodes[i].op, data)))
        .collect();
    let weights: usize = g.nodes.iter().zip(&refs).map(|(n, p)| params_bytes(&n.op, p.is_some())).sum();
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
    for (n, p) in g.nodes.iter().zip(&refs) {
        w.str(&n.name);
        encode_op(&n.op, *p, &mut w);
        ids(&n.inputs, &mut w);
        ids(&n.outputs, &mut w);
    }
    ids(&g.inputs, &mut w);
    ids(&g.outputs, &mut w);
    w.bytes
}

/// Reads a graph [`encode`] wrote (weights raw); an error says what is
/// wrong and where.
pub fn decode(bytes: &[u8]) -> Result<Graph, DecodeError> {
    decode_with_data(bytes, &[])
}

/// Reads a graph [`encode_referencing`] wrote, unpacking referenced
/// weights from `data` (the program's data section).
pub fn decode_with_data(bytes: &[u8], data: &[u8]) -> Result<Graph, DecodeError> {
    decode_with_refs(bytes, data).map(|(g, _)| g)
}

/// Where a layer's weights lie in a program's data: their format and the
/// bytes they take there (the packed image, padding included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredWeights {
    pub format: WeightFormat,
    pub bytes: u64,
}

/// Per node of a graph [`encode_referencing`] wrote (in node order): its
/// name, and its weights' format and bytes in `data` when they are a
/// packed reference (conv and dense layers of a compiled program).
pub fn stored_weights(bytes: &[u8], data: &[u8]) -> Result<Vec<(String, Option<StoredWeights>)>, DecodeError> {
    let (g, refs) = decode_with_refs(bytes, data)?;
    Ok(g.nodes.into_iter().zip(refs).map(|(n, p)| (n.name, p.and_then(|p| stored_len(&p, &n.op)))).collect())
}

/// The bytes `p` takes in the data for `op`'s weights.
fn stored_len(p: &PackedRef, op: &Op) -> Option<StoredWeights> {
    let stream_tile = TileShape { k: p.tile_n, n: p.tile_n };
    let len = |k: usize, n: usize| match p.format {
        WeightFormat::DenseI8 => dense_i8_packed_len(k, n, p.tile_n),
        WeightFormat::DenseI4 => dense_i4_packed_len(k, n, p.tile_n),
        WeightFormat::StreamI8 => stream_i8_packed_len(k, n, stream_tile),
        WeightFormat::BandI8
        | WeightFormat::BandRowsI8
        | WeightFormat::BandI4
        | WeightFormat::BandRowsI4
        | WeightFormat::Sparse24I8
        | WeightFormat::StreamSparseI8 => None,
    };
    let bytes = match op {
        Op::Conv(c) if is_band(p.format) => {
            let (packed, int4) = band_kind(p.format);
            crate::lower::conv_band::image_len(c.w_shape, c.groups, p.tile_n, packed, int4)?
        }
        Op::Conv(c) => {
            let [m, cg, kh, kw] = c.w_shape;
            len(kh * kw * cg, m / c.groups.max(1))?.checked_mul(p.offsets.len())?
        }
        Op::Dense(d) => len(d.k, d.n)?,
        _ => return None,
    };
    Some(StoredWeights { format: p.format, bytes: bytes as u64 })
}

/// [`decode_with_data`], with each node's packed reference (if any).
fn decode_with_refs(bytes: &[u8], data: &[u8]) -> Result<(Graph, Vec<Option<PackedRef>>), DecodeError> {
    let mut r = Reader::new(bytes);
    let magic: Vec<u8> = (0..MAGIC.len()).map(|_| r.u8("graph magic")).collect::<Result<_, _>>()?;
    if magic != MAGIC {
        return Err(DecodeError { offset: 0, why: format!("not an encoded graph (magic {:02x?})", magic) });
    }
    let version = r.u32("graph version")?;
    if version != VERSION {
        return Err(r.error(format!(
            "made by another systole version (graph encoding version {version}, this build reads {VERSION}): \
             rebuild it with `systole compile`"
        )));
    }
    let name = r.str("graph name")?;
    // A value is at least a name, a rank, a type and a flag (8 + 8 + 1 + 1 bytes).
    let values = r.seq("values", 18, decode_value)?;
    let mut refs = Vec::new();
    let nodes = r.seq("nodes", 18, |r| {
        let name = r.str("node name")?;
        let mut packed = None;
        let op = decode_op(r, data, &mut packed)
            .map_err(|e| DecodeError { why: format!("node `{name}`: {}", e.why), ..e })?;
        refs.push(packed);
        let inputs = decode_ids(r, "node inputs", values.len())?;
        let outputs = decode_ids(r, "node outputs", values.len())?;
        Ok(Node { name, op, inputs, outputs })
    })?;
    let inputs = decode_ids(&mut r, "graph inputs", values.len())?;
    let outputs = decode_ids(&mut r, "graph outputs", values.len())?;
    r.finish()?;
    let g = Graph { name, values, nodes, inputs, outputs };
    g.validate().map_err(|e| DecodeError { offset: bytes.len(), why: format!("the graph is inconsistent: {e}") })?;
    Ok((g, refs))
}

fn params_bytes(op: &Op, referenced: bool) -> usize {
    let (weights, bias) = match op {
        Op::Conv(c) => (c.weights.len(), c.bias.len()),
        Op::Dense(d) => (d.weights.len(), d.bias.len()),
        _ => (0, 0),
    };
    if referenced {
        8 * bias
    } else {
        weights + 8 * bias
    }
}

/// Whether `p` unpacks from `data` to exactly `op`'s weights.
fn unpacks_to(p: &PackedRef, op: &Op, data: &[u8]) -> bool {
    match op {
        Op::Conv(c) => unpack_conv(p, c.w_shape, c.groups, data).is_ok_and(|w| w == c.weights),
        Op::Dense(d) => unpack_dense(p, d.n, d.k, data).is_ok_and(|w| w == d.weights),
        _ => false,
    }
}

/// The packed bytes of one B `[k, n]` at `offset` in `data`, unpacked.
fn unpack_b(p: &PackedRef, offset: u64, k: usize, n: usize, data: &[u8]) -> Result<Vec<i8>, String> {
    // A streamed row holds `tile_n` reduction values (square tiles).
    let stream_tile = TileShape { k: p.tile_n, n: p.tile_n };
    let len = match p.format {
        WeightFormat::DenseI8 => dense_i8_packed_len(k, n, p.tile_n),
        WeightFormat::DenseI4 => dense_i4_packed_len(k, n, p.tile_n),
        WeightFormat::StreamI8 => stream_i8_packed_len(k, n, stream_tile),
        WeightFormat::BandI8 | WeightFormat::BandRowsI8 | WeightFormat::BandI4 | WeightFormat::BandRowsI4 => {
            return Err(format!("{:?} does not pack a GEMM's B", p.format));
        }
        // 2:4 weights are recorded raw, never referenced.
        WeightFormat::Sparse24I8 => return Err("2:4-sparse weights are not referenced".into()),
        WeightFormat::StreamSparseI8 => return Err("compressed weight streams are not referenced".into()),
    }
    .ok_or_else(|| format!("{k} x {n} weights overflow"))?;
    let at = usize::try_from(offset).ok();
    let bytes = at.and_then(|at| data.get(at..at.checked_add(len)?)).ok_or_else(|| {
        format!("packed weights at data offset {offset} ({len} bytes) are outside the {} bytes of data", data.len())
    })?;
    let b = match p.format {
        WeightFormat::DenseI8 => unpack_dense_i8(bytes, k, n, p.tile_n),
        WeightFormat::DenseI4 => unpack_dense_i4(bytes, k, n, p.tile_n),
        WeightFormat::StreamI8 => unpack_stream_i8(bytes, k, n, stream_tile),
        WeightFormat::BandI8
        | WeightFormat::BandRowsI8
        | WeightFormat::Sparse24I8
        | WeightFormat::StreamSparseI8
        | WeightFormat::BandI4
        | WeightFormat::BandRowsI4 => unreachable!("refused above"),
    };
    Ok(b.expect("the length is the packed length"))
}

/// A convolution's weights `[m, cg, kh, kw]` from its groups' packed B.
fn unpack_conv(p: &PackedRef, w_shape: [usize; 4], groups: usize, data: &[u8]) -> Result<Vec<i8>, String> {
    if is_band(p.format) {
        return unpack_band(p, w_shape, groups, data);
    }
    let [m_out, cg, kh, kw] = w_shape;
    if groups == 0 || m_out % groups != 0 || p.offsets.len() != groups || p.perm.is_some() {
        return Err(format!(
            "{} packed groups (with a row order: {}) for {m_out} filters in {groups} groups",
            p.offsets.len(),
            p.perm.is_some()
        ));
    }
    let volume = w_shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    // Packing never shrinks weights below their bits: a larger volume is
    // forged, not allocated.
    let volume = volume
        .filter(|&v| v <= data.len().saturating_mul(per_byte(p.format)))
        .ok_or_else(|| format!("{w_shape:?} weights exceed the {} bytes of data", data.len()))?;
    let mut weights = vec![0i8; volume];
    for (g, &offset) in p.offsets.iter().enumerate() {
        let b = unpack_b(p, offset, kh * kw * cg, m_out / groups, data)?;
        conv_group_from_b(&b, w_shape, groups, g, &mut weights);
    }
    Ok(weights)
}

/// Weights per packed byte at most (int4: two).
fn per_byte(format: WeightFormat) -> usize {
    if format.wfmt() == isa::instr::WFMT_I4 {
        2
    } else {
        1
    }
}

/// A convolution's band stream (`lower::conv_band`).
fn is_band(format: WeightFormat) -> bool {
    matches!(format, WeightFormat::BandI8 | WeightFormat::BandRowsI8 | WeightFormat::BandI4 | WeightFormat::BandRowsI4)
}

/// A band stream's kind: (kernel row packed, int4).
fn band_kind(format: WeightFormat) -> (bool, bool) {
    (
        matches!(format, WeightFormat::BandRowsI8 | WeightFormat::BandRowsI4),
        matches!(format, WeightFormat::BandI4 | WeightFormat::BandRowsI4),
    )
}

/// A band convolution's weights from its stream image (one offset; the
/// image's length follows from the shapes and the tile width).
fn unpack_band(p: &PackedRef, w_shape: [usize; 4], groups: usize, data: &[u8]) -> Result<Vec<i8>, String> {
    let [offset] = p.offsets[..] else {
        return Err(format!("{} offsets for a band convolution's weights, which have one", p.offsets.len()));
    };
    let at = usize::try_from(offset).ok().filter(|&a| a <= data.len() && p.perm.is_none());
    let at =
        at.ok_or_else(|| format!("band weights at data offset {offset} are outside the {} bytes of data", data.len()))?;
    let (packed, int4) = band_kind(p.format);
    crate::lower::conv_band::unpack_weights(&data[at..], w_shape, groups, p.tile_n, packed, int4).ok_or_else(|| {
        format!("no {:?} band image of {w_shape:?} weights in {groups} groups at offset {offset}", p.format)
    })
}

/// A dense layer's weights `[n, k]` from its packed B.
fn unpack_dense(p: &PackedRef, n: usize, k: usize, data: &[u8]) -> Result<Vec<i8>, String> {
    let [offset] = p.offsets[..] else {
        return Err(format!("{} packed weight blocks for a dense layer, which has one", p.offsets.len()));
    };
    if n.checked_mul(k).is_none_or(|v| v > data.len().saturating_mul(per_byte(p.format))) {
        return Err(format!("{n} x {k} weights exceed the {} bytes of data", data.len()));
    }
    if let Some(perm) = &p.perm {
        let mut seen = vec![false; k];
        let permutes = perm.len() == k && perm.iter().all(|&i| i < k && !std::mem::replace(&mut seen[i], true));
        if !permutes {
            return Err(format!("the row order of {} entries is not a permutation of 0..{k}", perm.len()));
        }
    }
    let b = unpack_b(p, offset, k, n, data)?;
    Ok(dense_from_b(&b, k, n, p.perm.as_deref()))
}

/// Weights raw (tag 0) or as a reference (tag 1); tags 2 and 3 are the
/// same for an int4 layer (`WeightType::I4`).
fn encode_weights(weights: &[i8], w_type: WeightType, packed: Option<&PackedRef>, w: &mut Writer) {
    let int4 = if w_type == WeightType::I4 { 2 } else { 0 };
    let Some(p) = packed else {
        w.u8(int4);
        w.i8s(weights);
        return;
    };
    w.u8(1 + int4);
    w.u8(match p.format {
        WeightFormat::DenseI8 => 0,
        WeightFormat::StreamI8 => 1,
        WeightFormat::BandI8 => 2,
        WeightFormat::BandRowsI8 => 3,
        WeightFormat::Sparse24I8 | WeightFormat::StreamSparseI8 => {
            unreachable!("2:4 weights and compressed streams never unpack from a reference, so are written raw")
        }
        WeightFormat::DenseI4 => 4,
        WeightFormat::BandI4 => 5,
        WeightFormat::BandRowsI4 => 6,
    });
    w.len(p.tile_n);
    w.u64s(&p.offsets);
    w.bool(p.perm.is_some());
    if let Some(perm) = &p.perm {
        ids(perm, w);
    }
}

/// What [`encode_weights`] wrote: raw weights or a reference.
enum WeightsField {
    Raw(Vec<i8>),
    Packed(PackedRef),
}

fn decode_weights(r: &mut Reader<'_>, what: &str) -> Result<(WeightsField, WeightType), DecodeError> {
    let tag = r.tag(what, 4)?;
    let w_type = if tag >= 2 { WeightType::I4 } else { WeightType::I8 };
    if tag % 2 == 0 {
        return Ok((WeightsField::Raw(r.i8s(what)?), w_type));
    }
    let format = [
        WeightFormat::DenseI8,
        WeightFormat::StreamI8,
        WeightFormat::BandI8,
        WeightFormat::BandRowsI8,
        WeightFormat::DenseI4,
        WeightFormat::BandI4,
        WeightFormat::BandRowsI4,
    ][r.tag("weight format", 7)? as usize];
    let [tile_n] = sizes(r, "packed tile width", 1)?;
    let offsets = r.u64s("packed weight offsets")?;
    let perm = if r.bool("row order present")? { Some(r.usizes("row order")?) } else { None };
    Ok((WeightsField::Packed(PackedRef { format, tile_n, offsets, perm }), w_type))
}

/// The weights of a decoded field: raw ones must be `volume` long,
/// references are unpacked by `unpack`.
fn resolve_weights(
    r: &Reader<'_>,
    what: &str,
    field: WeightsField,
    volume: usize,
    unpack: impl FnOnce(&PackedRef) -> Result<Vec<i8>, String>,
) -> Result<Vec<i8>, DecodeError> {
    match field {
        WeightsField::Raw(w) => {
            check_len(r, what, w.len(), volume)?;
            Ok(w)
        }
        WeightsField::Packed(p) => unpack(&p).map_err(|e| r.error(format!("{what}: {e}"))),
    }
}

fn elem_tag(t: ElemType) -> u8 {
    match t {
        ElemType::I8 => 0,
        ElemType::U8 => 1,
        ElemType::F32 => 2,
        ElemType::I64 => 3,
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
    let ty = [ElemType::I8, ElemType::U8, ElemType::F32, ElemType::I64][r.tag("element type", 4)? as usize];
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

fn encode_op(op: &Op, packed: Option<&PackedRef>, w: &mut Writer) {
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
        Op::Lut(_) => 12,
        Op::Resize { .. } => 13,
        Op::ResizeLinear(_) => RESIZE_LINEAR_TAG,
        Op::Constant { .. } => 14,
        Op::MaskSelect { .. } => 15,
        Op::Embedding(_) => 16,
        Op::DenseF32(_) => 17,
        Op::MatMul => 18,
        Op::Binary(_) => 19,
        Op::Unary(_) => 20,
        Op::Gelu(_) => 21,
        Op::LayerNorm { .. } => 22,
        Op::Softmax => 23,
        Op::ReduceSum { .. } => 24,
        Op::Slice { .. } => 25,
    };
    w.u8(tag);
    match op {
        Op::Quantize | Op::Dequantize => {}
        Op::Conv(c) => {
            encode_weights(&c.weights, c.w_type, packed, w);
            c.w_shape.iter().for_each(|&d| w.len(d));
            w.f32s(&c.w_scale);
            w.i32s(&c.bias);
            c.strides.iter().chain(&c.pads).chain(&c.dilations).for_each(|&d| w.len(d));
            w.len(c.groups);
            w.i32(c.qmin);
            w.i32(c.qmax);
        }
        Op::Dense(d) => {
            encode_weights(&d.weights, d.w_type, packed, w);
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
        Op::Lut(f) => {
            let (tag, a, b) = lut_fn_parts(f);
            w.u8(tag);
            w.f32(a);
            w.f32(b);
        }
        Op::ResizeLinear(r) => {
            w.u8(crate::resize::CoordMode::ALL.iter().position(|&m| m == r.mode).unwrap_or(0) as u8);
            w.f32(r.scales[0]);
            w.f32(r.scales[1]);
            w.len(r.out[0]);
            w.len(r.out[1]);
            // 0 trunc, 1 requantize (the first two meanings' old encoding), 2 nhwc_integer.
            w.u8(match r.rounding {
                crate::resize::LinearRounding::Trunc => 0,
                crate::resize::LinearRounding::Requantize => 1,
                crate::resize::LinearRounding::NhwcInteger => 2,
            });
        }
        Op::Resize { rows, cols } => {
            for v in [rows, cols] {
                w.len(v.len());
                v.iter().for_each(|&d| w.len(d));
            }
        }
        Op::Reshape { shape: v } | Op::Transpose { perm: v } => {
            w.len(v.len());
            v.iter().for_each(|&d| w.len(d));
        }
        Op::Constant { shape, data } => {
            w.u64s(&shape.iter().map(|&d| d as u64).collect::<Vec<_>>());
            w.f32s(data);
        }
        Op::MaskSelect { shape, index, if_zero, if_nonzero } => {
            for v in [shape, index] {
                w.u64s(&v.iter().map(|&d| d as u64).collect::<Vec<_>>());
            }
            w.f32s(if_zero);
            w.f32s(if_nonzero);
        }
        Op::Embedding(e) => {
            encode_weights(&e.table, WeightType::I8, None, w);
            w.len(e.rows);
            w.len(e.cols);
        }
        Op::DenseF32(d) => {
            encode_weights(&d.weights, WeightType::I8, None, w);
            w.len(d.n);
            w.len(d.k);
            w.f32s(&d.w_scale);
            w.i32s(&d.bias);
        }
        Op::MatMul | Op::Softmax => {}
        Op::Binary(b) => w.u8(*b as u8),
        Op::Unary(u) => w.u8(*u as u8),
        Op::Gelu(g) => w.u8(*g as u8),
        Op::LayerNorm { gamma, beta, eps } => {
            w.f32s(gamma);
            w.f32s(beta);
            w.f32(*eps);
        }
        Op::ReduceSum { axis, keepdims } => {
            w.len(*axis);
            w.bool(*keepdims);
        }
        Op::Slice { axis, start, end } => {
            w.len(*axis);
            w.len(*start);
            w.len(*end);
        }
    }
}

/// A shape or index list whose element count is bounded.
fn bounded_usizes(r: &mut Reader<'_>, what: &str) -> Result<Vec<usize>, DecodeError> {
    let v = r.usizes(what)?;
    if v.iter().any(|&d| d > MAX_ELEMENTS) {
        return Err(r.error(format!("{what}: an entry above {MAX_ELEMENTS}")));
    }
    Ok(v)
}

/// Weights a transformer op keeps raw (never packed references).
fn raw_weights(r: &mut Reader<'_>, what: &str) -> Result<Vec<i8>, DecodeError> {
    match decode_weights(r, what)? {
        (WeightsField::Raw(w), WeightType::I8) => Ok(w),
        (WeightsField::Raw(_), WeightType::I4) => Err(r.error(format!("{what}: int4 where int8 values belong"))),
        (WeightsField::Packed(_), _) => Err(r.error(format!("{what}: a packed reference where raw weights belong"))),
    }
}

fn decode_transformer_op(r: &mut Reader<'_>, tag: u8) -> Result<Op, DecodeError> {
    Ok(match tag {
        14 => {
            let shape = bounded_usizes(r, "constant shape")?;
            Op::Constant { shape, data: r.f32s("constant data")? }
        }
        15 => {
            let shape = bounded_usizes(r, "mask shape")?;
            let index = bounded_usizes(r, "mask index")?;
            Op::MaskSelect { shape, index, if_zero: r.f32s("mask values")?, if_nonzero: r.f32s("mask values")? }
        }
        16 => {
            let table = raw_weights(r, "embedding table")?;
            let (rows, cols) = (r.usize("embedding rows")?, r.usize("embedding columns")?);
            if rows.checked_mul(cols) != Some(table.len()) {
                return Err(r.error(format!("embedding table of {} bytes is not {rows} x {cols}", table.len())));
            }
            Op::Embedding(EmbeddingParams { table, rows, cols })
        }
        17 => {
            let weights = raw_weights(r, "dense weights")?;
            let [n, k] = [r.usize("dense n")?, r.usize("dense k")?];
            let w_scale = r.f32s("dense weight scales")?;
            let bias = r.i32s("dense bias")?;
            check_len(r, "dense weights", weights.len(), n.saturating_mul(k))?;
            check_len(r, "dense weight scales", w_scale.len(), n)?;
            check_len(r, "dense biases", bias.len(), n)?;
            Op::DenseF32(DenseParams { weights, n, k, w_scale, bias, qmin: -128, qmax: 127, w_type: WeightType::I8 })
        }
        18 => Op::MatMul,
        19 => Op::Binary(
            [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Max]
                [r.tag("binary op", 5)? as usize],
        ),
        20 => Op::Unary([UnaryOp::Erf, UnaryOp::Tanh][r.tag("unary op", 2)? as usize]),
        21 => Op::Gelu([GeluForm::Erf, GeluForm::Tanh][r.tag("gelu form", 2)? as usize]),
        22 => Op::LayerNorm { gamma: r.f32s("gamma")?, beta: r.f32s("beta")?, eps: r.f32("epsilon")? },
        23 => Op::Softmax,
        24 => Op::ReduceSum { axis: r.usize("reduce axis")?, keepdims: r.bool("keepdims")? },
        _ => Op::Slice { axis: r.usize("slice axis")?, start: r.usize("slice start")?, end: r.usize("slice end")? },
    })
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

/// One op; `packed` receives a conv or dense layer's packed reference.
fn decode_op(r: &mut Reader<'_>, data: &[u8], packed: &mut Option<PackedRef>) -> Result<Op, DecodeError> {
    Ok(match r.tag("op", RESIZE_LINEAR_TAG + 1)? {
        0 => Op::Quantize,
        1 => Op::Dequantize,
        2 => {
            let (weights, w_type) = decode_weights(r, "conv weights")?;
            if let WeightsField::Packed(p) = &weights {
                *packed = Some(p.clone());
            }
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
            let weights =
                resolve_weights(r, "conv weights", weights, volume, |p| unpack_conv(p, w_shape, groups, data))?;
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
                w_type,
            })
        }
        3 => {
            let (weights, w_type) = decode_weights(r, "dense weights")?;
            if let WeightsField::Packed(p) = &weights {
                *packed = Some(p.clone());
            }
            let [n, k] = [r.usize("dense n")?, r.usize("dense k")?];
            let w_scale = r.f32s("dense weight scales")?;
            let bias = r.i32s("dense bias")?;
            let (qmin, qmax) = (r.i32("qmin")?, r.i32("qmax")?);
            let volume = n.checked_mul(k).ok_or_else(|| r.error(format!("dense {n} x {k} overflows")))?;
            let weights = resolve_weights(r, "dense weights", weights, volume, |p| unpack_dense(p, n, k, data))?;
            check_len(r, "dense weight scales", w_scale.len(), n)?;
            check_len(r, "dense biases", bias.len(), n)?;
            Op::Dense(DenseParams { weights, n, k, w_scale, bias, qmin, qmax, w_type })
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
        11 => Op::Concat { axis: r.usize("concat axis")? },
        13 => Op::Resize { rows: r.usizes("resize rows")?, cols: r.usizes("resize columns")? },
        RESIZE_LINEAR_TAG => {
            use crate::resize::{CoordMode, LinearResize, LinearRounding};
            let mode = CoordMode::ALL[r.tag("linear resize mode", 4)? as usize];
            let scales = [r.f32("resize scale")?, r.f32("resize scale")?];
            let out = [r.usize("resize height")?, r.usize("resize width")?];
            let rounding = [LinearRounding::Trunc, LinearRounding::Requantize, LinearRounding::NhwcInteger]
                [r.tag("resize rounding", 3)? as usize];
            Op::ResizeLinear(LinearResize { mode, scales, out, rounding })
        }
        tag @ 14.. => decode_transformer_op(r, tag)?,
        12 => {
            let tag = r.tag("unary function", 7)?;
            let (a, b) = (r.f32("unary attribute")?, r.f32("unary attribute")?);
            Op::Lut(match tag {
                0 => UnaryFn::Identity,
                1 => UnaryFn::Sigmoid,
                2 => UnaryFn::Tanh,
                3 => UnaryFn::HardSigmoid { alpha: a, beta: b },
                4 => UnaryFn::HardSwish,
                5 => UnaryFn::LeakyRelu { alpha: a },
                _ => UnaryFn::Clip { min: a, max: b },
            })
        }
    })
}

/// A unary function as (tag, attribute, attribute), unused attributes 0.
fn lut_fn_parts(f: &UnaryFn) -> (u8, f32, f32) {
    match *f {
        UnaryFn::Identity => (0, 0.0, 0.0),
        UnaryFn::Sigmoid => (1, 0.0, 0.0),
        UnaryFn::Tanh => (2, 0.0, 0.0),
        UnaryFn::HardSigmoid { alpha, beta } => (3, alpha, beta),
        UnaryFn::HardSwish => (4, 0.0, 0.0),
        UnaryFn::LeakyRelu { alpha } => (5, alpha, 0.0),
        UnaryFn::Clip { min, max } => (6, min, max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::{PackedWeights, TileShape};
    use crate::lower::gemm_layers::{conv_group_b, dense_b};

    fn weights(n: usize, seed: usize) -> Vec<i8> {
        // Every fifth weight zero, the rest spread over the int8 range.
        (0..n).map(|x| if (x + seed).is_multiple_of(5) { 0 } else { ((x * 37 + seed * 11) % 255) as i8 }).collect()
    }

    /// Packs B blocks as the lowering does, each at its own offset after
    /// some unrelated bytes; returns the data and the reference.
    fn pack(blocks: &[(Vec<i8>, usize, usize)], tile: TileShape, perm: Option<Vec<usize>>) -> (Vec<u8>, PackedRef) {
        let mut data = vec![0xee; 24];
        let mut offsets = Vec::new();
        for (b, k, n) in blocks {
            offsets.push(data.len() as u64);
            data.extend_from_slice(PackedWeights::dense_i8(b, *k, *n, tile).bytes());
            data.extend_from_slice(&[0xdd; 7]);
        }
        (data, PackedRef { format: WeightFormat::DenseI8, tile_n: tile.n, offsets, perm })
    }

    /// A dense layer's weights packed to stream (`WeightFormat::StreamI8`,
    /// format tag 1) unpack to its `[n, k]` weights; read as dense bytes
    /// they do not.
    #[test]
    fn streamed_dense_weights_round_trip_through_packing() {
        let (n, k, tile) = (9, 21, TileShape { k: 4, n: 4 });
        let w = weights(n * k, 5);
        let mut data = vec![0xee; 8];
        data.extend_from_slice(PackedWeights::stream_i8(&dense_b(&w, k, n, None), k, n, tile).bytes());
        let p = PackedRef { format: WeightFormat::StreamI8, tile_n: 4, offsets: vec![8], perm: None };
        assert_eq!(unpack_dense(&p, n, k, &data).unwrap(), w);
        let as_dense = PackedRef { format: WeightFormat::DenseI8, ..p.clone() };
        assert_ne!(unpack_dense(&as_dense, n, k, &data).ok(), Some(w.clone()));
        // The reference survives encoding (format tag 1).
        let mut wr = Writer { bytes: Vec::new() };
        encode_weights(&w, WeightType::I8, Some(&p), &mut wr);
        let mut r = Reader::new(&wr.bytes);
        match decode_weights(&mut r, "weights").unwrap() {
            (WeightsField::Packed(q), WeightType::I8) => assert_eq!(q, p),
            other => panic!("decoded {:?}", other.1),
        }
    }

    /// An int4 dense layer packed two per byte (format tag 4) unpacks to
    /// its weights and decodes as int4, raw or referenced; the stored bytes
    /// are half the int8 stripes'.
    #[test]
    fn int4_dense_weights_round_trip_through_packing() {
        let (n, k, tile) = (9, 21, TileShape { k: 4, n: 4 });
        let w: Vec<i8> = weights(n * k, 2).iter().map(|v| v >> 4).collect();
        let mut data = vec![0xee; 8];
        data.extend_from_slice(PackedWeights::dense_i4(&dense_b(&w, k, n, None), k, n, tile).bytes());
        let p = PackedRef { format: WeightFormat::DenseI4, tile_n: 4, offsets: vec![8], perm: None };
        assert_eq!(unpack_dense(&p, n, k, &data).unwrap(), w);
        let d = DenseParams {
            weights: w.clone(),
            n,
            k,
            w_scale: vec![0.5; n],
            bias: vec![1; n],
            qmin: -128,
            qmax: 127,
            w_type: WeightType::I4,
        };
        let op = Op::Dense(d);
        for packed in [None, Some(&p)] {
            let mut wr = Writer { bytes: Vec::new() };
            encode_op(&op, packed, &mut wr);
            let mut r = Reader::new(&wr.bytes);
            let mut got_ref = None;
            assert_eq!(decode_op(&mut r, &data, &mut got_ref).unwrap(), op, "packed: {}", packed.is_some());
            assert_eq!(got_ref.as_ref(), packed);
        }
        let stored = stored_len(&p, &op).unwrap();
        assert_eq!(stored, StoredWeights { format: WeightFormat::DenseI4, bytes: (3 * 11 * 4) as u64 });
    }

    /// Convolutions packed per group on square and non-square tiles unpack
    /// to their weights: groups, depthwise, 1x1 and 3x3 and 2x3 kernels.
    #[test]
    fn conv_weights_round_trip_through_packing() {
        let convs = [([8, 3, 3, 3], 1), ([8, 2, 3, 3], 2), ([6, 1, 3, 3], 6), ([5, 4, 1, 1], 1), ([12, 3, 2, 3], 4)];
        let tiles =
            [TileShape { k: 4, n: 4 }, TileShape { k: 8, n: 4 }, TileShape { k: 5, n: 12 }, TileShape { k: 16, n: 16 }];
        for (s, (w_shape, groups)) in convs.into_iter().enumerate() {
            let w = weights(w_shape.iter().product(), s);
            let [m, cg, kh, kw] = w_shape;
            for tile in tiles {
                let blocks: Vec<_> =
                    (0..groups).map(|g| (conv_group_b(&w, w_shape, groups, g), kh * kw * cg, m / groups)).collect();
                let (data, p) = pack(&blocks, tile, None);
                assert_eq!(unpack_conv(&p, w_shape, groups, &data).unwrap(), w, "{w_shape:?} / {groups} on {tile:?}");
                // A group's block read from elsewhere is not the weights.
                let mut swapped = p.clone();
                swapped.offsets.rotate_left(1);
                if groups > 1 {
                    assert_ne!(unpack_conv(&swapped, w_shape, groups, &data).unwrap(), w);
                }
            }
        }
    }

    /// A dense layer after a Flatten (rows in NHWC order), with an all-zero
    /// tile, unpacks to its `[n, k]` weights.
    #[test]
    fn dense_weights_after_a_flatten_round_trip_through_packing() {
        // Flatten of [c=3, h=2, w=2]: physical (h, w, c) holds logical c*4 + h*2 + w.
        let (n, k) = (7, 12);
        let perm: Vec<usize> = (0..k).map(|phys| (phys % 3) * 4 + phys / 3).collect();
        let mut w = weights(n * k, 3);
        // Outputs 0..4 ignore logical inputs 0..4: physical rows 0, 3 (h=0..1, c=0) ... form zero tiles.
        for (col, row) in w.chunks_mut(k).enumerate().take(4) {
            if col < 4 {
                row.iter_mut().for_each(|v| *v = 0);
            }
        }
        for tile in [TileShape { k: 4, n: 4 }, TileShape { k: 5, n: 12 }] {
            for perm in [None, Some(perm.clone())] {
                let b = dense_b(&w, k, n, perm.as_deref());
                let (data, p) = pack(&[(b, k, n)], tile, perm.clone());
                assert_eq!(unpack_dense(&p, n, k, &data).unwrap(), w, "{tile:?}, {perm:?}");
            }
        }
        let (data, mut p) = pack(&[(dense_b(&w, k, n, None), k, n)], TileShape { k: 4, n: 4 }, None);
        p.perm = Some(vec![0; k]);
        assert!(unpack_dense(&p, n, k, &data).unwrap_err().contains("not a permutation"));
        p.perm = None;
        p.offsets = vec![data.len() as u64 - 3];
        assert!(unpack_dense(&p, n, k, &data).unwrap_err().contains("outside"));
    }

    fn one_dense_graph(w: Vec<i8>, n: usize, k: usize) -> Graph {
        let q = Some(Quant { scale: 0.5, zero_point: 0 });
        let value = |name: &str, cols| Value { name: name.into(), shape: vec![1, cols], ty: ElemType::I8, quant: q };
        let op = Op::Dense(DenseParams {
            weights: w,
            n,
            k,
            w_scale: vec![0.25; n],
            bias: vec![7; n],
            qmin: -128,
            qmax: 127,
            w_type: WeightType::I8,
        });
        Graph {
            name: "dense".into(),
            values: vec![value("x", k), value("y", n)],
            nodes: vec![Node { name: "fc".into(), op, inputs: vec![0], outputs: vec![1] }],
            inputs: vec![0],
            outputs: vec![1],
        }
    }

    /// A reference is written only when it unpacks to the weights; one that
    /// does not (a packing bug) leaves them raw, so the reference the check
    /// interprets is still the model.
    #[test]
    fn a_reference_that_does_not_invert_is_stored_raw() {
        let (n, k) = (5, 6);
        let g = one_dense_graph(weights(n * k, 1), n, k);
        let Op::Dense(d) = &g.nodes[0].op else { unreachable!() };
        let (data, p) = pack(&[(dense_b(&d.weights, k, n, None), k, n)], TileShape { k: 4, n: 4 }, None);
        let referenced = encode_referencing(&g, &data, &[Some(p.clone())]);
        // The raw count and bytes become a format, a tile width, one offset (with its count) and a flag.
        assert_eq!(referenced.len(), encode(&g).len() - (8 + n * k) + (1 + 8 + 8 + 8 + 1));
        assert_eq!(decode_with_data(&referenced, &data).unwrap(), g);
        // Without the data the reference is an error, not zeros.
        assert!(decode(&referenced).unwrap_err().to_string().contains("exceed the 0 bytes of data"));

        let mut wrong = data.clone();
        wrong[p.offsets[0] as usize + 1] ^= 1;
        let raw = encode_referencing(&g, &wrong, &[Some(p)]);
        assert_eq!(raw, encode(&g));
        assert_eq!(decode_with_data(&raw, &wrong).unwrap(), g);
    }
}
