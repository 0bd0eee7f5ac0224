//! The program container: one `.sbin` file per compiled model (docs/DESIGN.md §4).
//!
//! A [`Program`] holds the instruction stream, the constant data (packed
//! weights, biases, scales) and the tensor map, together with the fingerprint
//! of the [`HwConfig`] it was compiled for and the device-memory window it
//! uses. [`Program::to_bytes`] writes the binary file and
//! [`Program::from_bytes`] reads and validates it: a truncated, corrupted or
//! inconsistent file is a [`ProgramError`] that says what is wrong and where,
//! never a panic or a silently wrong program.
//!
//! # Binary layout
//!
//! All integers are little-endian. Offsets are byte offsets from the start of
//! the file. The full layout, field by field, is in `isa/ISA.md` §7; in
//! short:
//!
//! **Header** (32 bytes): magic `b"SYSTOLE\0"`, the format version (u32,
//! [`FORMAT_VERSION`]), the ISA version (u32, [`crate::ISA_VERSION`]), the
//! config fingerprint (u64, [`HwConfig::fingerprint`]), the section count
//! (u32, = 4) and a reserved u32 (0).
//!
//! **Section table** (24 bytes per section): kind (u32), reserved (u32, 0),
//! offset (u64) and length (u64) of the section's bytes.
//!
//! | kind | name     | contents                                                        |
//! |-----:|----------|-----------------------------------------------------------------|
//! |    1 | code     | n x 32-byte instructions ([`Instr::encode`]), in program order  |
//! |    2 | data     | the constant bytes placed at `data_addr`, as runs (see below)   |
//! |    3 | manifest | the typed metadata: addresses, tensor map, producer, layers, config ([`crate::codec`]) |
//! |    4 | graph    | the model graph for the reference interpreter, opaque here (`compiler::ir_codec`; its weights may refer to the data section); may be empty |
//!
//! Each kind appears exactly once; sections lie between the section table
//! and the trailer and do not overlap. **Trailer** (4 bytes): CRC-32 (IEEE)
//! of every preceding byte.
//!
//! The data section is the byte count followed by runs, each a tag byte
//! and a u64 length: tag 0 = that many literal bytes follow, tag 1 = one
//! byte follows, repeated that many times. Activation buffers (zeros, or
//! their zero point around a halo) become fill runs, so they cost a few
//! bytes in the file, not their size.
//!
//! # Validation
//!
//! [`Program::from_bytes`] checks, in this order: the file length against the
//! header, the magic, the format version and the ISA version; then the
//! checksum; then the section table (reserved fields, known kinds, each kind
//! exactly once, bounds, no overlaps); then the contents (the code length is a
//! multiple of 32 and every instruction decodes, the manifest and the data
//! runs decode, every count bounded by the bytes that remain); and
//! finally [`Program::validate_layout`]. A file of another format version is
//! [`ProgramError::UnsupportedFormat`]: made by another systole version,
//! rebuild it. Whether the program fits a given hardware configuration is a
//! separate step, [`Program::check_config`].

use crate::codec::{self, Reader, Writer};
use crate::config::{
    ArrayConfig, BufferConfig, ClockConfig, Dataflow, DramConfig, HwConfig, SramCells, TechConfig, WeightPrecision,
};
use crate::instr::{DecodeError, Instr, INSTR_BYTES};
use crate::layout::Layout;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The first 8 bytes of every `.sbin` file.
pub const MAGIC: [u8; 8] = *b"SYSTOLE\0";
/// The container format version this crate reads and writes.
///
/// 2: binary typed metadata, the data as runs, the graph section (1 was a
/// JSON manifest with the graph and the config as text).
pub const FORMAT_VERSION: u32 = 2;
/// The largest device-memory window a program can use: addresses in
/// instructions are 32-bit.
pub const MAX_MEM_BYTES: u64 = 1 << 32;
/// Size of the fixed header.
pub const HEADER_BYTES: usize = 32;
/// Size of one section-table entry.
pub const SECTION_ENTRY_BYTES: usize = 24;
/// Size of the CRC-32 trailer.
pub const TRAILER_BYTES: usize = 4;
/// Alignment of `code_addr` in device memory (one instruction).
pub const CODE_ALIGN: u64 = INSTR_BYTES as u64;

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    I8,
    U8,
    I32,
    F32,
    /// Token ids and masks as ONNX gives them, read by indexed `load`s
    /// (a transformer program's int64 inputs).
    I64,
}

impl DType {
    /// Bytes per element.
    pub fn size_bytes(self) -> u64 {
        match self {
            DType::I8 | DType::U8 => 1,
            DType::I32 | DType::F32 => 4,
            DType::I64 => 8,
        }
    }

    /// The lowercase name used in the manifest ("i8", "u8", "i32", "f32").
    pub fn name(self) -> &'static str {
        match self {
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::I32 => "i32",
            DType::F32 => "f32",
            DType::I64 => "i64",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a tensor is to the caller of the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TensorRole {
    /// Written by the host before the program runs.
    Input,
    /// Read by the host after the program finishes.
    Output,
    /// Produced and consumed by the program (listed for debugging).
    Intermediate,
}

impl TensorRole {
    pub fn name(self) -> &'static str {
        match self {
            TensorRole::Input => "input",
            TensorRole::Output => "output",
            TensorRole::Intermediate => "intermediate",
        }
    }
}

impl fmt::Display for TensorRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A named tensor in device memory.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub role: TensorRole,
    pub dtype: DType,
    /// The logical shape (the model's, NCHW for feature maps).
    pub shape: Vec<u64>,
    /// Device byte address of the first element.
    pub addr: u64,
    /// Where each element lies from `addr` (in elements of `dtype`).
    pub layout: Layout,
    /// Quantization scale (real = scale * (q - zero_point)); finite and > 0.
    pub scale: Option<f32>,
    /// Quantization zero point; in the dtype's range for i8 / u8.
    pub zero_point: Option<i32>,
}

impl TensorInfo {
    /// Number of elements (1 for a scalar), `None` on overflow.
    pub fn checked_elements(&self) -> Option<u64> {
        self.shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
    }

    /// Bytes the tensor occupies, `None` on overflow.
    pub fn checked_byte_len(&self) -> Option<u64> {
        self.checked_elements()?.checked_mul(self.dtype.size_bytes())
    }

    /// Bytes the tensor occupies (saturating at `u64::MAX` for absurd shapes,
    /// which [`Program::validate_layout`] rejects).
    pub fn byte_len(&self) -> u64 {
        self.checked_byte_len().unwrap_or(u64::MAX)
    }

    /// A row-major tensor of shape `[rows, cols]`.
    pub fn row_major(name: &str, role: TensorRole, dtype: DType, rows: usize, cols: usize, addr: u64) -> TensorInfo {
        TensorInfo {
            name: name.into(),
            role,
            dtype,
            shape: vec![rows as u64, cols as u64],
            addr,
            layout: Layout::Flat { rows, cols, perm: None },
            scale: None,
            zero_point: None,
        }
    }

    /// Bytes of device memory the tensor's layout spans (halo included),
    /// `None` on overflow.
    pub fn checked_extent(&self) -> Option<u64> {
        (self.layout.checked_bytes()? as u64).checked_mul(self.dtype.size_bytes())
    }
}

/// What a layer of a compiled model is (the op of its graph node).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LayerOp {
    Conv,
    Dense,
    MaxPool,
    AvgPool,
    Add,
    Clamp,
    Flatten,
    Reshape,
    Concat,
    /// An element-wise unary op or a requantization through a 256-entry table.
    Lut,
    /// Resize: nearest-neighbour (with requantization) or linear.
    Resize,
    /// Transformer layers (float vector math on the vector unit, products
    /// of two activations): QuantizeLinear and DequantizeLinear of a float
    /// tensor, a Linear layer dequantized to float, an activation ×
    /// activation MatMul, element-wise float ops (binary, unary, GELU),
    /// LayerNormalization, Softmax, a float sum over an axis, and a copy
    /// that materializes a strided view.
    Quantize,
    Dequantize,
    DenseF32,
    MatMul,
    Elementwise,
    Gelu,
    LayerNorm,
    Softmax,
    ReduceSum,
    Copy,
    /// Rows of a table selected by ids in device memory (indexed `load`s):
    /// an embedding lookup, or a mask select from a 2-row table.
    Gather,
    /// Attention as one phase: Q·Kᵀ, the vector chain on its scores
    /// (scale, mask, Softmax, Quantize) and, when it alone reads the
    /// probabilities, P·V (the record holds the chain's or the context's
    /// value).
    Attention,
}

impl LayerOp {
    pub const ALL: [LayerOp; 23] = [
        LayerOp::Conv,
        LayerOp::Dense,
        LayerOp::MaxPool,
        LayerOp::AvgPool,
        LayerOp::Add,
        LayerOp::Clamp,
        LayerOp::Flatten,
        LayerOp::Reshape,
        LayerOp::Concat,
        LayerOp::Lut,
        LayerOp::Resize,
        LayerOp::Quantize,
        LayerOp::Dequantize,
        LayerOp::DenseF32,
        LayerOp::MatMul,
        LayerOp::Elementwise,
        LayerOp::Gelu,
        LayerOp::LayerNorm,
        LayerOp::Softmax,
        LayerOp::ReduceSum,
        LayerOp::Copy,
        LayerOp::Gather,
        LayerOp::Attention,
    ];

    /// The op's name, as the graph's text format spells it.
    pub fn name(self) -> &'static str {
        match self {
            LayerOp::Conv => "conv",
            LayerOp::Dense => "dense",
            LayerOp::MaxPool => "maxpool",
            LayerOp::AvgPool => "avgpool",
            LayerOp::Add => "add",
            LayerOp::Clamp => "clamp",
            LayerOp::Flatten => "flatten",
            LayerOp::Reshape => "reshape",
            LayerOp::Concat => "concat",
            LayerOp::Lut => "lut",
            LayerOp::Resize => "resize",
            LayerOp::Quantize => "quantize",
            LayerOp::Dequantize => "dequantize",
            LayerOp::DenseF32 => "dense_f32",
            LayerOp::MatMul => "matmul",
            LayerOp::Elementwise => "elementwise",
            LayerOp::Gelu => "gelu",
            LayerOp::LayerNorm => "layernorm",
            LayerOp::Softmax => "softmax",
            LayerOp::ReduceSum => "reduce_sum",
            LayerOp::Copy => "copy",
            LayerOp::Gather => "gather",
            LayerOp::Attention => "attention",
        }
    }
}

impl fmt::Display for LayerOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Per-layer facts the compiler records (for reports and the layer-by-layer
/// check; `systole run` reads them back).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerMeta {
    /// The graph node's name.
    pub name: String,
    pub op: LayerOp,
    /// Instruction index range `[first, last)` of the layer's phases.
    pub first: usize,
    pub last: usize,
    /// MACs the array performs (all-zero weight tiles are skipped).
    pub macs: u64,
    /// The value the layer writes, where, and how.
    pub value: String,
    pub addr: u64,
    pub layout: Layout,
    pub shape: Vec<u64>,
    pub dtype: DType,
    pub scale: f32,
    pub zero_point: i32,
}

impl LayerMeta {
    /// The layer only reinterprets its input's buffer in an order no tensor
    /// layout of its own describes (a flatten of NHWC data): there is
    /// nothing of its own to read back.
    pub fn is_view(&self) -> bool {
        matches!(self.layout, Layout::Flat { perm: Some(_), .. })
    }
}

/// What the program records about itself beyond code, data and tensors.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProgramMeta {
    /// What wrote the program ("systole compiler", "systole asm", ...).
    pub producer: String,
    /// What it was made from (the model's name, the assembly file, ...).
    pub source: String,
    /// Per-layer facts of a compiled model (empty otherwise).
    pub layers: Vec<LayerMeta>,
    /// The configuration the program was compiled for, so `systole run`
    /// needs no `--hw` (its fingerprint is the program's).
    pub config: Option<HwConfig>,
    /// The model graph for the reference interpreter of `run --check`,
    /// encoded by `compiler::ir_codec` (opaque here; its weights may be
    /// references into [`Program::data`]); empty when none.
    pub graph: Vec<u8>,
}

/// A compiled program: code, constant data, tensor map and the configuration
/// it was built for.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    /// Fingerprint of the [`HwConfig`] the program was built for.
    pub fingerprint: u64,
    /// Name of that configuration (informative).
    pub config_name: String,
    /// Device byte address where the code is placed (32-byte aligned).
    pub code_addr: u64,
    pub code: Vec<Instr>,
    /// Device byte address of the constant data.
    pub data_addr: u64,
    pub data: Vec<u8>,
    /// Device memory the program needs: it uses the window `[0, mem_bytes)`.
    pub mem_bytes: u64,
    /// Inputs and outputs (and optionally intermediates), by name.
    pub tensors: Vec<TensorInfo>,
    /// Producer, source, per-layer facts, the config and the graph.
    pub meta: ProgramMeta,
}

/// The kinds of section in a `.sbin` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SectionKind {
    Code = 1,
    Data = 2,
    Manifest = 3,
    Graph = 4,
}

impl SectionKind {
    pub const ALL: [SectionKind; 4] = [SectionKind::Code, SectionKind::Data, SectionKind::Manifest, SectionKind::Graph];

    pub fn from_u32(kind: u32) -> Option<SectionKind> {
        match kind {
            1 => Some(SectionKind::Code),
            2 => Some(SectionKind::Data),
            3 => Some(SectionKind::Manifest),
            4 => Some(SectionKind::Graph),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SectionKind::Code => "code",
            SectionKind::Data => "data",
            SectionKind::Manifest => "manifest",
            SectionKind::Graph => "graph",
        }
    }
}

impl fmt::Display for SectionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One validated section-table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Section {
    /// Position in the section table, from 0.
    pub index: u32,
    pub kind: SectionKind,
    /// Byte offset in the file.
    pub offset: u64,
    pub length: u64,
}

/// Why bytes are not a valid program, or a program does not fit a device.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    #[error("truncated: {len} bytes, {what} needs {need}")]
    Truncated { len: usize, need: usize, what: &'static str },
    #[error(
        "bad magic {found:02x?} (\"{}\"): not a systole program, which starts with \"SYSTOLE\\0\"",
        .found.escape_ascii()
    )]
    BadMagic { found: Vec<u8> },
    #[error("made by another systole version (container format {found}, this build reads format {supported}): rebuild it with `systole compile`")]
    UnsupportedFormat { found: u32, supported: u32 },
    #[error("made by another systole version (ISA version {found}, this build implements {expected}): rebuild it with `systole compile`")]
    IsaVersion { found: u32, expected: u32 },
    #[error("checksum mismatch: the trailer says 0x{stored:08x} but the {covered} bytes before it hash to 0x{computed:08x}; the file is corrupted (or truncated)")]
    Checksum { stored: u32, computed: u32, covered: usize },
    #[error("{what} at byte offset 0x{offset:x} is 0x{value:x}; it is reserved and must be 0")]
    Reserved { what: String, offset: u64, value: u64 },
    #[error("section table truncated: {count} sections need bytes [{HEADER_BYTES}, {}) but the file's {len} bytes leave [{HEADER_BYTES}, {}) before the checksum", table_end_text(*.count), .len.saturating_sub(TRAILER_BYTES))]
    SectionTableTruncated { count: u32, len: usize },
    #[error("section {index} has unknown kind {kind} (known: 1 = code, 2 = data, 3 = manifest, 4 = graph)")]
    UnknownSection { index: u32, kind: u32 },
    #[error("sections {first} and {second} are both of kind {kind}; each kind must appear exactly once")]
    DuplicateSection { kind: SectionKind, first: u32, second: u32 },
    #[error("the file has no {kind} section")]
    MissingSection { kind: SectionKind },
    #[error("section {index} ({kind}) [{offset}, {}) exceeds the file's {len} bytes: sections must lie in [{lo}, {hi}), after the section table and before the checksum", end_text(*.offset, *.length))]
    SectionOutOfBounds { index: u32, kind: SectionKind, offset: u64, length: u64, lo: u64, hi: u64, len: usize },
    #[error("sections {a} ({a_kind}) [{a_offset}, {}) and {b} ({b_kind}) [{b_offset}, {}) overlap", end_text(*.a_offset, *.a_length), end_text(*.b_offset, *.b_length))]
    SectionsOverlap {
        a: u32,
        a_kind: SectionKind,
        a_offset: u64,
        a_length: u64,
        b: u32,
        b_kind: SectionKind,
        b_offset: u64,
        b_length: u64,
    },
    #[error("code section is {length} bytes, not a multiple of the {INSTR_BYTES}-byte instruction")]
    CodeLength { length: u64 },
    #[error("instruction {index} at byte offset 0x{offset:x}: {source}")]
    Decode { index: usize, offset: u64, source: DecodeError },
    #[error("manifest (section at byte offset 0x{offset:x}) is not valid: {source}")]
    Manifest { offset: u64, source: codec::DecodeError },
    #[error("data (section at byte offset 0x{offset:x}) is not valid: {source}")]
    Data { offset: u64, source: codec::DecodeError },
    #[error("the recorded hardware configuration {why}")]
    BadConfig { why: String },
    #[error("memory window of 0x{mem_bytes:x} bytes exceeds the device's 32-bit address space (0x{MAX_MEM_BYTES:x})")]
    WindowTooLarge { mem_bytes: u64 },
    #[error("code_addr 0x{code_addr:x} is not {CODE_ALIGN}-byte aligned")]
    CodeMisaligned { code_addr: u64 },
    #[error("{what} [0x{start:x}, {}) lies outside the program's memory window [0, 0x{mem_bytes:x})", end_hex(*.start, *.length))]
    OutsideWindow { what: String, start: u64, length: u64, mem_bytes: u64 },
    #[error("{a} [0x{a_start:x}, {}) and {b} [0x{b_start:x}, {}) overlap", end_hex(*.a_start, *.a_length), end_hex(*.b_start, *.b_length))]
    LayoutOverlap { a: String, a_start: u64, a_length: u64, b: String, b_start: u64, b_length: u64 },
    #[error("tensor `{name}` appears more than once in the tensor map")]
    DuplicateTensor { name: String },
    #[error("tensor `{name}`: {why}")]
    BadTensor { name: String, why: String },
    #[error("layer `{name}`: {why}")]
    BadLayer { name: String, why: String },
    #[error("program was built for config `{built_for}` (fingerprint 0x{program:016x}) but the device's config `{config_name}` has fingerprint 0x{config:016x}; recompile the program for this config")]
    FingerprintMismatch { program: u64, built_for: String, config: u64, config_name: String },
    #[error("program needs {needs} bytes of device memory but config `{config_name}` has {has}")]
    MemoryTooSmall { needs: u64, has: u64, config_name: String },
}

fn end_text(start: u64, length: u64) -> String {
    match start.checked_add(length) {
        Some(e) => e.to_string(),
        None => format!("{start}+{length}, which overflows"),
    }
}

fn end_hex(start: u64, length: u64) -> String {
    match start.checked_add(length) {
        Some(e) => format!("0x{e:x}"),
        None => format!("0x{start:x}+0x{length:x}, which overflows"),
    }
}

fn table_end_text(count: u32) -> u64 {
    HEADER_BYTES as u64 + count as u64 * SECTION_ENTRY_BYTES as u64
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let b = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

/// `[start, start+len)` and `[s2, s2+l2)` share a byte (empty ranges share none).
fn ranges_overlap(a: u64, a_len: u64, b: u64, b_len: u64) -> bool {
    let a_end = a.saturating_add(a_len);
    let b_end = b.saturating_add(b_len);
    a_len > 0 && b_len > 0 && a < b_end && b < a_end
}

/// Runs of at least this many equal bytes (one aligned chunk) are stored
/// as a fill.
const FILL_CHUNK: usize = 64;

/// The data section: the byte count, then literal and fill runs.
fn encode_data(data: &[u8], w: &mut Writer) {
    w.len(data.len());
    let uniform = |c: &[u8]| c.len() == FILL_CHUNK && c.iter().all(|&b| b == c[0]);
    let mut literal = 0; // start of the pending literal run
    let mut at = 0;
    while at < data.len() {
        let chunk = &data[at..data.len().min(at + FILL_CHUNK)];
        if !uniform(chunk) {
            at += chunk.len();
            continue;
        }
        let byte = chunk[0];
        let end = at + data[at..].iter().position(|&b| b != byte).unwrap_or(data.len() - at);
        if literal < at {
            w.u8(0);
            w.raw(&data[literal..at]);
        }
        w.u8(1);
        w.len(end - at);
        w.u8(byte);
        (literal, at) = (end, end);
    }
    if literal < data.len() {
        w.u8(0);
        w.raw(&data[literal..]);
    }
}

/// Reads the data section; the data may not outgrow the program's window,
/// which bounds what a fill can make this allocate.
fn decode_data(bytes: &[u8], window: u64) -> Result<Vec<u8>, codec::DecodeError> {
    let mut r = Reader::new(bytes);
    let len = r.u64("data length")?;
    if len > window {
        return Err(r.error(format!("data length {len} exceeds the memory window of {window} bytes")));
    }
    let len = len as usize;
    let mut data = Vec::with_capacity(len);
    while data.len() < len {
        let room = len - data.len();
        match r.tag("data run", 2)? {
            0 => {
                let b = r.raw("literal run")?;
                if b.len() > room {
                    return Err(r.error(format!("literal run of {} bytes overruns the data's {len}", b.len())));
                }
                data.extend_from_slice(b);
            }
            _ => {
                let n = r.u64("fill run length")?;
                let byte = r.u8("fill byte")?;
                if n > room as u64 {
                    return Err(r.error(format!("fill run of {n} bytes overruns the data's {len}")));
                }
                data.resize(data.len() + n as usize, byte);
            }
        }
    }
    r.finish()?;
    Ok(data)
}

fn dtype_tag(d: DType) -> u8 {
    match d {
        DType::I8 => 0,
        DType::U8 => 1,
        DType::I32 => 2,
        DType::F32 => 3,
        DType::I64 => 4,
    }
}

fn read_dtype(r: &mut Reader<'_>) -> Result<DType, codec::DecodeError> {
    Ok([DType::I8, DType::U8, DType::I32, DType::F32, DType::I64][r.tag("dtype", 5)? as usize])
}

fn encode_tensor(t: &TensorInfo, w: &mut Writer) {
    w.str(&t.name);
    w.u8(t.role as u8);
    w.u8(dtype_tag(t.dtype));
    w.u64s(&t.shape);
    w.u64(t.addr);
    t.layout.encode(w);
    w.bool(t.scale.is_some());
    if let Some(s) = t.scale {
        w.f32(s);
    }
    w.bool(t.zero_point.is_some());
    if let Some(z) = t.zero_point {
        w.i32(z);
    }
}

fn decode_tensor(r: &mut Reader<'_>) -> Result<TensorInfo, codec::DecodeError> {
    let name = r.str("tensor name")?;
    let role = [TensorRole::Input, TensorRole::Output, TensorRole::Intermediate][r.tag("tensor role", 3)? as usize];
    let dtype = read_dtype(r)?;
    let shape = r.u64s("tensor shape")?;
    let addr = r.u64("tensor address")?;
    let layout = Layout::decode(r)?;
    let scale = if r.bool("scale present")? { Some(r.f32("scale")?) } else { None };
    let zero_point = if r.bool("zero point present")? { Some(r.i32("zero point")?) } else { None };
    Ok(TensorInfo { name, role, dtype, shape, addr, layout, scale, zero_point })
}

fn encode_layer(l: &LayerMeta, w: &mut Writer) {
    w.str(&l.name);
    w.u8(l.op as u8);
    w.len(l.first);
    w.len(l.last);
    w.u64(l.macs);
    w.str(&l.value);
    w.u64(l.addr);
    l.layout.encode(w);
    w.u64s(&l.shape);
    w.u8(dtype_tag(l.dtype));
    w.f32(l.scale);
    w.i32(l.zero_point);
}

fn decode_layer(r: &mut Reader<'_>) -> Result<LayerMeta, codec::DecodeError> {
    Ok(LayerMeta {
        name: r.str("layer name")?,
        op: LayerOp::ALL[r.tag("layer op", LayerOp::ALL.len() as u8)? as usize],
        first: r.usize("layer's first instruction")?,
        last: r.usize("layer's last instruction")?,
        macs: r.u64("layer MACs")?,
        value: r.str("layer value")?,
        addr: r.u64("layer address")?,
        layout: Layout::decode(r)?,
        shape: r.u64s("layer shape")?,
        dtype: read_dtype(r)?,
        scale: r.f32("layer scale")?,
        zero_point: r.i32("layer zero point")?,
    })
}

fn encode_config(c: &HwConfig, w: &mut Writer) {
    w.str(&c.name);
    let a = &c.array;
    w.u32(a.rows);
    w.u32(a.cols);
    w.u8(a.dataflow as u8);
    w.len(a.weight_precisions.len());
    a.weight_precisions.iter().for_each(|&p| w.u8(p as u8));
    w.bool(a.sparsity_2_4);
    for b in [&c.scratchpad, &c.accumulator] {
        w.u64(b.bytes);
        w.u32(b.banks);
    }
    let d = &c.dram;
    [d.bytes_per_cycle, d.latency_cycles, d.max_outstanding, d.size_mib].iter().for_each(|&v| w.u32(v));
    w.f64(d.pj_per_bit);
    w.f64(c.clock.mhz);
    w.u32(c.tech.node_nm);
    w.u8(c.tech.sram_cells as u8);
}

fn decode_config(r: &mut Reader<'_>) -> Result<HwConfig, codec::DecodeError> {
    let name = r.str("config name")?;
    let rows = r.u32("array rows")?;
    let cols = r.u32("array columns")?;
    let dataflow = [Dataflow::WeightStationary, Dataflow::OutputStationary][r.tag("dataflow", 2)? as usize];
    let weight_precisions = r.seq("weight precisions", 1, |r| {
        Ok([WeightPrecision::Int8, WeightPrecision::Int4][r.tag("weight precision", 2)? as usize])
    })?;
    let sparsity_2_4 = r.bool("2:4 sparsity")?;
    let mut buffer = |what: &str| -> Result<BufferConfig, codec::DecodeError> {
        Ok(BufferConfig { bytes: r.u64(what)?, banks: r.u32(what)? })
    };
    let (scratchpad, accumulator) = (buffer("scratchpad")?, buffer("accumulator")?);
    let dram = DramConfig {
        bytes_per_cycle: r.u32("DRAM bytes per cycle")?,
        latency_cycles: r.u32("DRAM latency")?,
        max_outstanding: r.u32("DRAM outstanding requests")?,
        size_mib: r.u32("DRAM size")?,
        pj_per_bit: r.f64("DRAM energy")?,
    };
    let clock = ClockConfig { mhz: r.f64("clock")? };
    let tech = TechConfig {
        node_nm: r.u32("technology node")?,
        sram_cells: [SramCells::Hp, SramCells::Lstp][r.tag("SRAM cells", 2)? as usize],
    };
    let array = ArrayConfig { rows, cols, dataflow, weight_precisions, sparsity_2_4 };
    // Format 2 does not carry `vector_lanes`: the default (one lane per column).
    Ok(HwConfig { name, vector_lanes: None, array, scratchpad, accumulator, dram, clock, tech })
}

/// The fields of the manifest section, in order.
struct Manifest {
    config_name: String,
    code_addr: u64,
    data_addr: u64,
    mem_bytes: u64,
    tensors: Vec<TensorInfo>,
    producer: String,
    source: String,
    layers: Vec<LayerMeta>,
    config: Option<HwConfig>,
}

fn encode_manifest(p: &Program) -> Vec<u8> {
    let mut w = Writer::default();
    w.str(&p.config_name);
    w.u64(p.code_addr);
    w.u64(p.data_addr);
    w.u64(p.mem_bytes);
    w.len(p.tensors.len());
    p.tensors.iter().for_each(|t| encode_tensor(t, &mut w));
    w.str(&p.meta.producer);
    w.str(&p.meta.source);
    w.len(p.meta.layers.len());
    p.meta.layers.iter().for_each(|l| encode_layer(l, &mut w));
    w.bool(p.meta.config.is_some());
    if let Some(c) = &p.meta.config {
        encode_config(c, &mut w);
    }
    w.bytes
}

/// The smallest encoding of a tensor or a layer record (a bound for counts).
const MIN_RECORD_BYTES: usize = 16;

fn decode_manifest(bytes: &[u8]) -> Result<Manifest, codec::DecodeError> {
    let mut r = Reader::new(bytes);
    let m = Manifest {
        config_name: r.str("config name")?,
        code_addr: r.u64("code address")?,
        data_addr: r.u64("data address")?,
        mem_bytes: r.u64("memory window")?,
        tensors: r.seq("tensors", MIN_RECORD_BYTES, decode_tensor)?,
        producer: r.str("producer")?,
        source: r.str("source")?,
        layers: r.seq("layers", MIN_RECORD_BYTES, decode_layer)?,
        config: if r.bool("config present")? { Some(decode_config(&mut r)?) } else { None },
    };
    r.finish()?;
    Ok(m)
}

impl Program {
    /// The tensor with this name.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The input tensors, in map order.
    pub fn inputs(&self) -> impl Iterator<Item = &TensorInfo> {
        self.tensors.iter().filter(|t| t.role == TensorRole::Input)
    }

    /// The output tensors, in map order.
    pub fn outputs(&self) -> impl Iterator<Item = &TensorInfo> {
        self.tensors.iter().filter(|t| t.role == TensorRole::Output)
    }

    /// Bytes of encoded code (32 per instruction).
    pub fn code_bytes(&self) -> u64 {
        self.code.len() as u64 * INSTR_BYTES as u64
    }

    /// The `.sbin` encoding (see the module documentation). Does not validate:
    /// call [`Program::validate_layout`] first, since [`Program::from_bytes`]
    /// rejects what it rejects.
    pub fn to_bytes(&self) -> Vec<u8> {
        let manifest = encode_manifest(self);
        // About the bytes themselves at most: a fill run is shorter than its bytes.
        let mut data = Writer { bytes: Vec::with_capacity(self.data.len() + 64) };
        encode_data(&self.data, &mut data);
        let data = data.bytes;
        let count = SectionKind::ALL.len();
        let table_end = HEADER_BYTES + count * SECTION_ENTRY_BYTES;
        let code_len = self.code.len() * INSTR_BYTES;
        let graph = &self.meta.graph;
        let total = table_end + code_len + data.len() + manifest.len() + graph.len() + TRAILER_BYTES;

        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&crate::ISA_VERSION.to_le_bytes());
        out.extend_from_slice(&self.fingerprint.to_le_bytes());
        out.extend_from_slice(&(count as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        let mut offset = table_end as u64;
        for (kind, len) in [
            (SectionKind::Code, code_len),
            (SectionKind::Data, data.len()),
            (SectionKind::Manifest, manifest.len()),
            (SectionKind::Graph, graph.len()),
        ] {
            out.extend_from_slice(&(kind as u32).to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            out.extend_from_slice(&(len as u64).to_le_bytes());
            offset += len as u64;
        }
        for i in &self.code {
            out.extend_from_slice(&i.encode());
        }
        out.extend_from_slice(&data);
        out.extend_from_slice(&manifest);
        out.extend_from_slice(graph);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        debug_assert_eq!(out.len(), total);
        out
    }

    /// Checks the container framing (header, versions, checksum, section
    /// table) and returns the sections in table order. The first steps of
    /// [`Program::from_bytes`]; `systole disasm` uses it to show the layout.
    pub fn sections(bytes: &[u8]) -> Result<Vec<Section>, ProgramError> {
        let len = bytes.len();
        // Header: length, magic, versions.
        if len < HEADER_BYTES {
            let n = len.min(MAGIC.len());
            if bytes[..n] != MAGIC[..n] {
                return Err(ProgramError::BadMagic { found: bytes[..n].to_vec() });
            }
            return Err(ProgramError::Truncated { len, need: HEADER_BYTES, what: "the header" });
        }
        if bytes[..8] != MAGIC {
            return Err(ProgramError::BadMagic { found: bytes[..8].to_vec() });
        }
        let field = |at: usize| read_u32(bytes, at).unwrap_or(0); // in the header: always present
        let format = field(8);
        if format != FORMAT_VERSION {
            return Err(ProgramError::UnsupportedFormat { found: format, supported: FORMAT_VERSION });
        }
        let isa = field(12);
        if isa != crate::ISA_VERSION {
            return Err(ProgramError::IsaVersion { found: isa, expected: crate::ISA_VERSION });
        }
        // Checksum.
        if len < HEADER_BYTES + TRAILER_BYTES {
            return Err(ProgramError::Truncated {
                len,
                need: HEADER_BYTES + TRAILER_BYTES,
                what: "the header and checksum",
            });
        }
        let body_len = len - TRAILER_BYTES;
        let stored = read_u32(bytes, body_len).unwrap_or(0);
        let computed = crc32fast::hash(&bytes[..body_len]);
        if stored != computed {
            return Err(ProgramError::Checksum { stored, computed, covered: body_len });
        }
        // Section table.
        let count = field(24);
        let reserved = field(28);
        if reserved != 0 {
            return Err(ProgramError::Reserved {
                what: "header reserved field".into(),
                offset: 28,
                value: reserved as u64,
            });
        }
        let table_end = table_end_text(count);
        if table_end > body_len as u64 {
            return Err(ProgramError::SectionTableTruncated { count, len });
        }
        let mut sections: Vec<Section> = Vec::with_capacity(count as usize);
        for index in 0..count {
            let at = HEADER_BYTES + index as usize * SECTION_ENTRY_BYTES;
            let (Some(kind), Some(reserved), Some(offset), Some(length)) =
                (read_u32(bytes, at), read_u32(bytes, at + 4), read_u64(bytes, at + 8), read_u64(bytes, at + 16))
            else {
                // Unreachable: the table was checked to lie inside the file.
                return Err(ProgramError::SectionTableTruncated { count, len });
            };
            if reserved != 0 {
                return Err(ProgramError::Reserved {
                    what: format!("section {index} reserved field"),
                    offset: at as u64 + 4,
                    value: reserved as u64,
                });
            }
            let Some(kind) = SectionKind::from_u32(kind) else {
                return Err(ProgramError::UnknownSection { index, kind });
            };
            if let Some(first) = sections.iter().find(|s| s.kind == kind) {
                return Err(ProgramError::DuplicateSection { kind, first: first.index, second: index });
            }
            sections.push(Section { index, kind, offset, length });
        }
        for kind in SectionKind::ALL {
            if !sections.iter().any(|s| s.kind == kind) {
                return Err(ProgramError::MissingSection { kind });
            }
        }
        let (lo, hi) = (table_end, body_len as u64);
        for s in &sections {
            let inside = s.offset >= lo && s.offset.checked_add(s.length).is_some_and(|end| end <= hi);
            if !inside {
                return Err(ProgramError::SectionOutOfBounds {
                    index: s.index,
                    kind: s.kind,
                    offset: s.offset,
                    length: s.length,
                    lo,
                    hi,
                    len,
                });
            }
        }
        for (i, a) in sections.iter().enumerate() {
            for b in &sections[i + 1..] {
                if ranges_overlap(a.offset, a.length, b.offset, b.length) {
                    return Err(ProgramError::SectionsOverlap {
                        a: a.index,
                        a_kind: a.kind,
                        a_offset: a.offset,
                        a_length: a.length,
                        b: b.index,
                        b_kind: b.kind,
                        b_offset: b.offset,
                        b_length: b.length,
                    });
                }
            }
        }
        Ok(sections)
    }

    /// Reads and validates a `.sbin` file (see the module documentation for
    /// the order of the checks). Never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Program, ProgramError> {
        let sections = Program::sections(bytes)?;
        let fingerprint = read_u64(bytes, 16).unwrap_or(0);
        let slice_of = |kind: SectionKind| -> (u64, &[u8]) {
            let s = sections.iter().find(|s| s.kind == kind).copied();
            // `sections` checked that every kind is present and in bounds.
            let slice = s
                .and_then(|s| {
                    let start = usize::try_from(s.offset).ok()?;
                    let end = start.checked_add(usize::try_from(s.length).ok()?)?;
                    bytes.get(start..end)
                })
                .unwrap_or(&[]);
            (s.map_or(0, |s| s.offset), slice)
        };

        let (code_offset, code_bytes) = slice_of(SectionKind::Code);
        if code_bytes.len() % INSTR_BYTES != 0 {
            return Err(ProgramError::CodeLength { length: code_bytes.len() as u64 });
        }
        let mut code = Vec::with_capacity(code_bytes.len() / INSTR_BYTES);
        for (index, chunk) in code_bytes.chunks_exact(INSTR_BYTES).enumerate() {
            let instr = Instr::decode(chunk).map_err(|source| ProgramError::Decode {
                index,
                offset: code_offset + (index * INSTR_BYTES) as u64,
                source,
            })?;
            code.push(instr);
        }

        let (manifest_offset, manifest) = slice_of(SectionKind::Manifest);
        let m =
            decode_manifest(manifest).map_err(|source| ProgramError::Manifest { offset: manifest_offset, source })?;
        if m.mem_bytes > MAX_MEM_BYTES {
            return Err(ProgramError::WindowTooLarge { mem_bytes: m.mem_bytes });
        }
        let (data_offset, data) = slice_of(SectionKind::Data);
        let data =
            decode_data(data, m.mem_bytes).map_err(|source| ProgramError::Data { offset: data_offset, source })?;
        let (_, graph) = slice_of(SectionKind::Graph);

        let program = Program {
            fingerprint,
            config_name: m.config_name,
            code_addr: m.code_addr,
            code,
            data_addr: m.data_addr,
            data,
            mem_bytes: m.mem_bytes,
            tensors: m.tensors,
            meta: ProgramMeta {
                producer: m.producer,
                source: m.source,
                layers: m.layers,
                config: m.config,
                graph: graph.to_vec(),
            },
        };
        program.validate_layout()?;
        Ok(program)
    }

    /// Checks the program's use of device memory: `code_addr` is 32-byte
    /// aligned; the code, the data and every tensor lie inside
    /// `[0, mem_bytes)`; code and data do not overlap and no tensor overlaps
    /// the code; tensor names are unique; scales are finite and positive and
    /// i8 / u8 zero points are in the type's range.
    pub fn validate_layout(&self) -> Result<(), ProgramError> {
        if !self.code_addr.is_multiple_of(CODE_ALIGN) {
            return Err(ProgramError::CodeMisaligned { code_addr: self.code_addr });
        }
        if self.mem_bytes > MAX_MEM_BYTES {
            return Err(ProgramError::WindowTooLarge { mem_bytes: self.mem_bytes });
        }
        let mem = self.mem_bytes;
        let inside = |start: u64, length: u64| start.checked_add(length).is_some_and(|end| end <= mem);
        let code_len = self.code_bytes();
        let data_len = self.data.len() as u64;
        let window_err =
            |what: String, start: u64, length: u64| ProgramError::OutsideWindow { what, start, length, mem_bytes: mem };
        if !inside(self.code_addr, code_len) {
            return Err(window_err("code".into(), self.code_addr, code_len));
        }
        if !inside(self.data_addr, data_len) {
            return Err(window_err("data".into(), self.data_addr, data_len));
        }
        if ranges_overlap(self.code_addr, code_len, self.data_addr, data_len) {
            return Err(ProgramError::LayoutOverlap {
                a: "code".into(),
                a_start: self.code_addr,
                a_length: code_len,
                b: "data".into(),
                b_start: self.data_addr,
                b_length: data_len,
            });
        }
        for (i, t) in self.tensors.iter().enumerate() {
            if self.tensors[..i].iter().any(|u| u.name == t.name) {
                return Err(ProgramError::DuplicateTensor { name: t.name.clone() });
            }
            let bad = |why: String| ProgramError::BadTensor { name: t.name.clone(), why };
            t.layout.check_shape(&t.shape).map_err(bad)?;
            let (Some(_), Some(length)) = (t.checked_byte_len(), t.checked_extent()) else {
                return Err(bad(format!("shape {:?} of {} is larger than the address space", t.shape, t.dtype)));
            };
            let what = format!("{} tensor `{}`", t.role, t.name);
            if !inside(t.addr, length) {
                return Err(window_err(what, t.addr, length));
            }
            if ranges_overlap(t.addr, length, self.code_addr, code_len) {
                return Err(ProgramError::LayoutOverlap {
                    a: what,
                    a_start: t.addr,
                    a_length: length,
                    b: "code".into(),
                    b_start: self.code_addr,
                    b_length: code_len,
                });
            }
            if let Some(s) = t.scale {
                if !(s.is_finite() && s > 0.0) {
                    return Err(bad(format!("scale {s} must be finite and > 0")));
                }
            }
            if let Some(zp) = t.zero_point {
                let range = match t.dtype {
                    DType::I8 => Some(-128..=127),
                    DType::U8 => Some(0..=255),
                    DType::I32 | DType::F32 | DType::I64 => None,
                };
                if let Some(r) = range.filter(|r| !r.contains(&zp)) {
                    return Err(bad(format!(
                        "zero point {zp} is outside the {} range {}..={}",
                        t.dtype,
                        r.start(),
                        r.end()
                    )));
                }
            }
        }
        for l in &self.meta.layers {
            let bad = |why: String| ProgramError::BadLayer { name: l.name.clone(), why };
            if l.first > l.last || l.last > self.code.len() {
                return Err(bad(format!(
                    "instruction range {}..{} lies outside the code's {} instructions",
                    l.first,
                    l.last,
                    self.code.len()
                )));
            }
            l.layout.check_shape(&l.shape).map_err(bad)?;
            let extent = l.layout.checked_bytes().unwrap_or(usize::MAX) as u64;
            if !inside(l.addr, extent) {
                return Err(window_err(format!("layer `{}`'s output", l.name), l.addr, extent));
            }
        }
        if let Some(c) = &self.meta.config {
            c.validate().map_err(|e| ProgramError::BadConfig { why: format!("is invalid: {e}") })?;
            if c.fingerprint() != self.fingerprint {
                return Err(ProgramError::BadConfig {
                    why: format!(
                        "`{}` has fingerprint 0x{:016x}, not the program's 0x{:016x}",
                        c.name,
                        c.fingerprint(),
                        self.fingerprint
                    ),
                });
            }
        }
        Ok(())
    }

    /// Checks that the program was built for this configuration (same
    /// fingerprint) and that the device memory can hold its window.
    pub fn check_config(&self, cfg: &HwConfig) -> Result<(), ProgramError> {
        let config = cfg.fingerprint();
        if config != self.fingerprint {
            return Err(ProgramError::FingerprintMismatch {
                program: self.fingerprint,
                built_for: self.config_name.clone(),
                config,
                config_name: cfg.name.clone(),
            });
        }
        if self.mem_bytes > cfg.dram_bytes() {
            return Err(ProgramError::MemoryTooSmall {
                needs: self.mem_bytes,
                has: cfg.dram_bytes(),
                config_name: cfg.name.clone(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instr::{Finish, Load, Matmul, Store};

    fn sample() -> Program {
        let cfg = HwConfig::tiny_4x4();
        let layer = LayerMeta {
            name: "fc".into(),
            op: LayerOp::Dense,
            first: 0,
            last: 3,
            macs: 64,
            value: "y".into(),
            addr: 0x2000,
            layout: Layout::Flat { rows: 4, cols: 4, perm: Some(vec![3, 1, 2, 0]) },
            shape: vec![4, 4],
            dtype: DType::U8,
            scale: 0.5,
            zero_point: 128,
        };
        let meta = ProgramMeta {
            producer: "unit test".into(),
            source: "sample".into(),
            layers: vec![layer],
            config: Some(cfg.clone()),
            graph: vec![1, 2, 3],
        };
        Program {
            fingerprint: cfg.fingerprint(),
            config_name: cfg.name.clone(),
            code_addr: 0,
            code: vec![
                Instr::from(Load { rows: 4, cols: 4, dram: 0x1000, stride: 4, ..Default::default() }),
                Instr::from(Matmul { m: 4, ..Default::default() }),
                Instr::from(Store { rows: 4, cols: 4, dram: 0x2000, stride: 4, ..Default::default() }),
                Instr::Finish(Finish::default()),
            ],
            data_addr: 0x800,
            // A literal run, a fill run and a literal tail.
            data: (0..48).chain([7; 200]).chain([1, 2]).collect(),
            mem_bytes: 0x3000,
            tensors: vec![
                TensorInfo {
                    name: "x".into(),
                    role: TensorRole::Input,
                    dtype: DType::I8,
                    shape: vec![4, 4],
                    addr: 0x1000,
                    layout: Layout::Flat { rows: 4, cols: 4, perm: None },
                    scale: Some(0.1),
                    zero_point: Some(-3),
                },
                TensorInfo {
                    name: "y".into(),
                    role: TensorRole::Output,
                    dtype: DType::I32,
                    shape: vec![4, 4],
                    addr: 0x2000,
                    layout: Layout::Flat { rows: 4, cols: 4, perm: None },
                    scale: None,
                    zero_point: None,
                },
            ],
            meta,
        }
    }

    #[test]
    fn program_round_trips() {
        let p = sample();
        p.validate_layout().unwrap();
        let bytes = p.to_bytes();
        assert_eq!(&bytes[..8], b"SYSTOLE\0");
        assert_eq!(Program::from_bytes(&bytes).unwrap(), p);
        let s = Program::sections(&bytes).unwrap();
        assert_eq!(s.iter().map(|s| s.kind).collect::<Vec<_>>(), SectionKind::ALL);
        assert_eq!(s[0].offset, (HEADER_BYTES + 4 * SECTION_ENTRY_BYTES) as u64);
        // The length, a literal up to the first uniform 64-byte chunk, the fill, the tail.
        assert_eq!(s[1].length, 8 + (1 + 8 + 64) + (1 + 8 + 1) + (1 + 8 + 2));
        assert_eq!(s[0].length, p.code_bytes());
    }

    #[test]
    fn program_sizes_and_lookup() {
        let p = sample();
        assert_eq!(p.code_bytes(), 128);
        assert_eq!(p.tensor("y").unwrap().byte_len(), 64);
        assert_eq!(p.tensor("x").unwrap().byte_len(), 16);
        assert!(p.tensor("z").is_none());
        assert_eq!(p.inputs().count(), 1);
        assert_eq!(p.outputs().next().unwrap().name, "y");
        let huge = TensorInfo { shape: vec![u64::MAX, 2], ..p.tensors[0].clone() };
        assert_eq!(huge.checked_byte_len(), None);
        assert_eq!(huge.byte_len(), u64::MAX);
    }

    #[test]
    fn program_layout_errors() {
        let mut p = sample();
        p.code_addr = 16;
        assert!(matches!(p.validate_layout(), Err(ProgramError::CodeMisaligned { code_addr: 16 })));
        let mut p = sample();
        p.data_addr = 0x40;
        let e = p.validate_layout().unwrap_err().to_string();
        assert!(e.contains("code [0x0, 0x80) and data [0x40, 0x13a) overlap"), "{e}");
        let mut p = sample();
        p.mem_bytes = 0x2020;
        let e = p.validate_layout().unwrap_err().to_string();
        assert!(e.contains("output tensor `y` [0x2000, 0x2040)") && e.contains("[0, 0x2020)"), "{e}");
        let mut p = sample();
        p.data_addr = u64::MAX;
        let e = p.validate_layout().unwrap_err().to_string();
        assert!(e.contains("overflows"), "{e}");
        let mut p = sample();
        p.tensors[1].name = "x".into();
        assert!(matches!(p.validate_layout(), Err(ProgramError::DuplicateTensor { .. })));
        let mut p = sample();
        p.tensors[0].zero_point = Some(128);
        assert!(p.validate_layout().unwrap_err().to_string().contains("-128..=127"));
        let mut p = sample();
        p.tensors[0].scale = Some(f32::NAN);
        assert!(matches!(p.validate_layout(), Err(ProgramError::BadTensor { .. })));
        let mut p = sample();
        p.tensors[0].layout = Layout::Nhwc { n: 1, h: 4, w: 4, c: 1, halo: 0 };
        assert!(p.validate_layout().unwrap_err().to_string().contains("does not hold shape [4, 4]"));
        let mut p = sample();
        p.meta.layers[0].last = 9;
        assert!(p.validate_layout().unwrap_err().to_string().contains("outside the code's 4 instructions"));
        let mut p = sample();
        p.meta.layers[0].layout = Layout::Flat { rows: 4, cols: 4, perm: Some(vec![0, 0, 1, 2]) };
        assert!(p.validate_layout().unwrap_err().to_string().contains("not a permutation"));
        let mut p = sample();
        p.meta.config = Some(HwConfig::default_16x16());
        assert!(p.validate_layout().unwrap_err().to_string().contains("not the program's"));
        let mut p = sample();
        p.tensors[0].addr = 0x60;
        assert!(matches!(p.validate_layout(), Err(ProgramError::LayoutOverlap { .. })));
    }

    #[test]
    fn program_check_config() {
        let p = sample();
        p.check_config(&HwConfig::tiny_4x4()).unwrap();
        let e = p.check_config(&HwConfig::default_16x16()).unwrap_err().to_string();
        assert!(e.contains("tiny-4x4") && e.contains(&format!("0x{:016x}", p.fingerprint)), "{e}");
        let mut p = sample();
        p.mem_bytes = 1 << 40;
        assert!(matches!(p.check_config(&HwConfig::tiny_4x4()), Err(ProgramError::MemoryTooSmall { .. })));
    }

    #[test]
    fn program_scale_is_bit_exact() {
        let mut p = sample();
        for bits in [1u32, 0x0080_0000, 0x3dcc_cccd, 0x7f7f_ffff, 0x3eaa_aaab, 0x0000_0123] {
            p.tensors[0].scale = Some(f32::from_bits(bits));
            let q = Program::from_bytes(&p.to_bytes()).unwrap();
            assert_eq!(q.tensors[0].scale.map(f32::to_bits), Some(bits));
        }
    }
}
