//! The instruction set: one table per instruction, from which the binary
//! encoding, the assembly syntax, the docs' field tables and the Verilog
//! header are all derived (the single source of truth, docs/DESIGN.md §3).
//!
//! Every instruction is 256 bits (32 bytes, little-endian). Bits 0..8 hold
//! the opcode, bits 8..12 the dependency flags, bits 12..16 are reserved
//! (zero), and the instruction's fields follow from bit 16 upward, packed in
//! table order. Bits past the last field are reserved and must be zero.

use std::fmt;

/// Bytes per encoded instruction.
pub const INSTR_BYTES: usize = 32;
/// First bit of an instruction's own fields.
pub const FIELDS_LO: u32 = 16;

/// The three instruction queues, in pipeline order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Queue {
    Load = 0,
    Compute = 1,
    Store = 2,
}

impl Queue {
    pub const ALL: [Queue; 3] = [Queue::Load, Queue::Compute, Queue::Store];

    pub fn name(self) -> &'static str {
        match self {
            Queue::Load => "load",
            Queue::Compute => "compute",
            Queue::Store => "store",
        }
    }

    /// The queue before this one in the pipeline (its `prev` token partner).
    pub fn prev(self) -> Option<Queue> {
        match self {
            Queue::Load => None,
            Queue::Compute => Some(Queue::Load),
            Queue::Store => Some(Queue::Compute),
        }
    }

    /// The queue after this one (its `next` token partner).
    pub fn next(self) -> Option<Queue> {
        match self {
            Queue::Load => Some(Queue::Compute),
            Queue::Compute => Some(Queue::Store),
            Queue::Store => None,
        }
    }
}

/// Dependency-token flags (bits 8..12). `pop_*` waits for and takes a token
/// from the neighbouring queue before the instruction starts; `push_*` gives
/// one to it when the instruction is done with the shared buffers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Deps {
    pub pop_prev: bool,
    pub pop_next: bool,
    pub push_prev: bool,
    pub push_next: bool,
}

impl Deps {
    pub const NONE: Deps = Deps { pop_prev: false, pop_next: false, push_prev: false, push_next: false };

    pub fn bits(self) -> u64 {
        self.pop_prev as u64 | (self.pop_next as u64) << 1 | (self.push_prev as u64) << 2 | (self.push_next as u64) << 3
    }

    pub fn from_bits(b: u64) -> Deps {
        Deps { pop_prev: b & 1 != 0, pop_next: b & 2 != 0, push_prev: b & 4 != 0, push_next: b & 8 != 0 }
    }

    pub fn is_empty(self) -> bool {
        self.bits() == 0
    }
}

/// How a field's raw bits are read and written in assembly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// Unsigned integer.
    Unsigned,
    /// Two's-complement signed integer of the field's width.
    Signed,
    /// An enumeration: the raw value indexes the names; other values are illegal.
    Enum(&'static [&'static str]),
}

/// One field of an instruction's table.
#[derive(Clone, Copy, Debug)]
pub struct FieldSpec {
    pub name: &'static str,
    pub width: u32,
    pub kind: FieldKind,
    pub doc: &'static str,
}

impl FieldSpec {
    /// Smallest and largest legal value as an i64 (enum: 0..names-1).
    pub fn range(&self) -> (i64, i64) {
        match self.kind {
            FieldKind::Unsigned => (0, ((1u128 << self.width) - 1) as i64),
            FieldKind::Signed => (-(1i64 << (self.width - 1)), (1i64 << (self.width - 1)) - 1),
            FieldKind::Enum(names) => (0, names.len() as i64 - 1),
        }
    }

    /// Raw bits of a value (assumed in range).
    pub fn to_raw(&self, v: i64) -> u64 {
        (v as u64) & mask(self.width)
    }

    /// Value of raw bits (sign-extended for signed fields).
    pub fn from_raw(&self, raw: u64) -> i64 {
        raw_to_value(self.kind, raw, self.width)
    }
}

fn raw_to_value(kind: FieldKind, raw: u64, width: u32) -> i64 {
    match kind {
        FieldKind::Signed => {
            let shift = 64 - width;
            ((raw << shift) as i64) >> shift
        }
        _ => raw as i64,
    }
}

fn mask(width: u32) -> u64 {
    if width >= 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    }
}

/// Why 32 bytes are not an instruction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown opcode 0x{0:02x}")]
    UnknownOpcode(u8),
    #[error("{mnemonic}: reserved bits {lo}..{hi} are not zero")]
    ReservedBits { mnemonic: &'static str, lo: u32, hi: u32 },
    #[error("{mnemonic}: field `{field}` = {value} is not a legal value ({legal})")]
    IllegalField { mnemonic: &'static str, field: &'static str, value: i64, legal: String },
    #[error("{mnemonic}: dependency flag `{flag}` names a queue that {queue} does not have")]
    IllegalDeps { mnemonic: &'static str, flag: &'static str, queue: &'static str },
    #[error("expected {expected} bytes, got {got}")]
    Length { expected: usize, got: usize },
}

struct BitWriter {
    words: [u64; 4],
    pos: u32,
}

impl BitWriter {
    fn put(&mut self, value: u64, width: u32) {
        let v = value & mask(width);
        let (w, b) = ((self.pos / 64) as usize, self.pos % 64);
        self.words[w] |= v << b;
        if b + width > 64 {
            self.words[w + 1] |= v >> (64 - b);
        }
        self.pos += width;
    }
}

struct BitReader<'a> {
    words: &'a [u64; 4],
    pos: u32,
}

impl BitReader<'_> {
    fn get(&mut self, width: u32) -> u64 {
        let (w, b) = ((self.pos / 64) as usize, self.pos % 64);
        let mut v = self.words[w] >> b;
        if b + width > 64 {
            v |= self.words[w + 1] << (64 - b);
        }
        self.pos += width;
        v & mask(width)
    }
}

const BUF: FieldKind = FieldKind::Enum(&["spad", "acc"]);
const ELEM: FieldKind = FieldKind::Enum(&["i8", "u8"]);
const WFMT: FieldKind = FieldKind::Enum(&["i8", "i8s24", "i4", "i4s24"]);
const QUEUE: FieldKind = FieldKind::Enum(&["load", "compute", "store"]);
const VOP: FieldKind = FieldKind::Enum(VOP_NAMES);
const VRED: FieldKind = FieldKind::Enum(&["sum", "max"]);
const IDX: FieldKind = FieldKind::Enum(&["none", "i64", "i32"]);
const ZFMT: FieldKind = FieldKind::Enum(&["none", "mask"]);
const U: FieldKind = FieldKind::Unsigned;
const S: FieldKind = FieldKind::Signed;

/// Local-memory selector of LOAD and STORE.
pub const BUF_SPAD: u8 = 0;
pub const BUF_ACC: u8 = 1;
/// Element type selector (activations).
pub const ELEM_I8: u8 = 0;
pub const ELEM_U8: u8 = 1;
/// Weight formats: `WFMT_I8` (one int8 per weight), `WFMT_I8_S24`
/// (2:4-sparse int8) and `WFMT_I4` (int4 packed two per byte), ISA.md §3
/// `ldw`; `WFMT_I4_S24` reserves an encoding.
pub const WFMT_I8: u8 = 0;
pub const WFMT_I8_S24: u8 = 1;
pub const WFMT_I4: u8 = 2;
pub const WFMT_I4_S24: u8 = 3;

/// Scratchpad rows a `k`-row weight tile of format `wfmt` occupies (what
/// `ldw` and a `matmul` preload read): `k` for int8, `ceil(k / 2)` for int4,
/// whose row `r` holds the tile's rows `2r` and `2r + 1` (ISA.md §3 `ldw`).
pub fn weight_tile_spad_rows(k: u16, wfmt: u8) -> u64 {
    match wfmt {
        WFMT_I4 => (k as u64).div_ceil(2),
        _ => k as u64,
    }
}

/// `vop` operations, in encoding order: binary ops first, then unary.
pub const VOP_NAMES: &[&str] = &["add", "sub", "mul", "div", "max", "min", "exp", "erf", "tanh", "recip", "rsqrt"];
/// `vop` operations that take operand b (the rest are unary).
pub const VOP_BINARY: u8 = 6;
/// `vop` op codes (`VOP_NAMES` order).
pub const VOP_ADD: u8 = 0;
pub const VOP_SUB: u8 = 1;
pub const VOP_MUL: u8 = 2;
pub const VOP_DIV: u8 = 3;
pub const VOP_MAX: u8 = 4;
pub const VOP_MIN: u8 = 5;
pub const VOP_EXP: u8 = 6;
pub const VOP_ERF: u8 = 7;
pub const VOP_TANH: u8 = 8;
pub const VOP_RECIP: u8 = 9;
pub const VOP_RSQRT: u8 = 10;
/// `load` index modes (`idx`): a plain 2-D block, or DRAM row `y` at
/// `dram + id[y] * stride` with the ids int64 or int32 little-endian.
pub const IDX_NONE: u8 = 0;
pub const IDX_I64: u8 = 1;
pub const IDX_I32: u8 = 2;
/// `load` stream formats (`zfmt`): DRAM rows as stored, or a compressed
/// stream the LOAD unit expands (ISA.md §3 `load`: per row a bitmask, then
/// the row's stored bytes).
pub const ZFMT_NONE: u8 = 0;
pub const ZFMT_MASK: u8 = 1;
/// `vred` operations.
pub const VRED_SUM: u8 = 0;
pub const VRED_MAX: u8 = 1;

macro_rules! instructions {
    ($(
        $(#[doc = $idoc:literal])*
        $name:ident = $opc:literal, $mnem:literal, $queue:expr, {
            $( $field:ident : $ty:ty = $width:literal $kind:ident $fdoc:literal ),* $(,)?
        }
    )*) => {
        $(
            $(#[doc = $idoc])*
            #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
            pub struct $name {
                pub deps: Deps,
                $( #[doc = $fdoc] pub $field: $ty, )*
            }

            impl $name {
                pub const OPCODE: u8 = $opc;
                pub const MNEMONIC: &'static str = $mnem;
                pub const FIELDS: &'static [FieldSpec] = &[
                    $( FieldSpec { name: stringify!($field), width: $width, kind: $kind, doc: $fdoc }, )*
                ];

                #[allow(unused_variables)]
                fn put_fields(&self, w: &mut BitWriter) {
                    $( w.put(self.$field as u64, $width); )*
                }

                #[allow(unused_variables)]
                fn get_fields(r: &mut BitReader<'_>, deps: Deps) -> Self {
                    $name { deps, $( $field: raw_to_value($kind, r.get($width), $width) as $ty, )* }
                }

                /// Field values in table order (signed fields sign-extended).
                pub fn values(&self) -> Vec<i64> {
                    vec![$( self.$field as i64 ),*]
                }

                /// Builds the instruction from values in table order (must be in range).
                #[allow(unused_variables, unused_mut)]
                pub fn from_values(deps: Deps, values: &[i64]) -> Self {
                    let mut it = Self::FIELDS.iter().zip(values.iter());
                    $name { deps, $( $field: { let (_f, v) = it.next().expect("one value per field"); *v as $ty }, )* }
                }
            }
        )*

        /// One decoded instruction.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Instr {
            $( $name($name), )*
        }

        /// Static description of one instruction kind.
        #[derive(Clone, Copy, Debug)]
        pub struct InstrSpec {
            pub opcode: u8,
            pub mnemonic: &'static str,
            pub fields: &'static [FieldSpec],
            pub doc: &'static str,
        }

        /// Every instruction kind, in opcode order.
        pub const INSTR_SPECS: &[InstrSpec] = &[
            $( InstrSpec { opcode: $opc, mnemonic: $mnem, fields: $name::FIELDS, doc: concat!($($idoc, "\n"),*) }, )*
        ];

        impl Instr {
            pub fn opcode(&self) -> u8 {
                match self { $( Instr::$name(_) => $opc, )* }
            }

            pub fn mnemonic(&self) -> &'static str {
                match self { $( Instr::$name(_) => $mnem, )* }
            }

            pub fn spec(&self) -> &'static InstrSpec {
                INSTR_SPECS.iter().find(|s| s.opcode == self.opcode()).expect("every opcode has a spec")
            }

            pub fn deps(&self) -> Deps {
                match self { $( Instr::$name(i) => i.deps, )* }
            }

            pub fn deps_mut(&mut self) -> &mut Deps {
                match self { $( Instr::$name(i) => &mut i.deps, )* }
            }

            /// Field values in table order.
            pub fn values(&self) -> Vec<i64> {
                match self { $( Instr::$name(i) => i.values(), )* }
            }

            /// Builds an instruction of the given mnemonic from table-order values.
            pub fn from_values(mnemonic: &str, deps: Deps, values: &[i64]) -> Option<Instr> {
                match mnemonic {
                    $( $mnem => Some(Instr::$name($name::from_values(deps, values))), )*
                    _ => None,
                }
            }

            /// The queue this instruction is dispatched to (None: FINISH,
            /// which the dispatcher handles itself).
            pub fn queue(&self) -> Option<Queue> {
                match self { $( Instr::$name(_i) => { let q: fn(&Instr) -> Option<Queue> = $queue; q(self) } )* }
            }

            /// The 32-byte encoding.
            pub fn encode(&self) -> [u8; INSTR_BYTES] {
                let mut w = BitWriter { words: [0; 4], pos: 0 };
                w.put(self.opcode() as u64, 8);
                w.put(self.deps().bits(), 4);
                w.put(0, 4);
                match self { $( Instr::$name(i) => i.put_fields(&mut w), )* }
                let mut out = [0u8; INSTR_BYTES];
                for (k, word) in w.words.iter().enumerate() {
                    out[k * 8..k * 8 + 8].copy_from_slice(&word.to_le_bytes());
                }
                out
            }

            /// Decodes 32 bytes; never panics.
            pub fn decode(bytes: &[u8]) -> Result<Instr, DecodeError> {
                if bytes.len() != INSTR_BYTES {
                    return Err(DecodeError::Length { expected: INSTR_BYTES, got: bytes.len() });
                }
                let mut words = [0u64; 4];
                for (k, word) in words.iter_mut().enumerate() {
                    *word = u64::from_le_bytes(bytes[k * 8..k * 8 + 8].try_into().expect("8 bytes"));
                }
                let mut r = BitReader { words: &words, pos: 0 };
                let opcode = r.get(8) as u8;
                let deps = Deps::from_bits(r.get(4));
                let reserved = r.get(4);
                let instr = match opcode {
                    $( $opc => Instr::$name($name::get_fields(&mut r, deps)), )*
                    other => return Err(DecodeError::UnknownOpcode(other)),
                };
                let mnemonic = instr.mnemonic();
                if reserved != 0 {
                    return Err(DecodeError::ReservedBits { mnemonic, lo: 12, hi: 16 });
                }
                let end = r.pos;
                for bit in end..256 {
                    if words[(bit / 64) as usize] >> (bit % 64) & 1 != 0 {
                        return Err(DecodeError::ReservedBits { mnemonic, lo: end, hi: 256 });
                    }
                }
                instr.check_fields()?;
                Ok(instr)
            }
        }

        $( impl From<$name> for Instr { fn from(i: $name) -> Instr { Instr::$name(i) } } )*
    };
}

instructions! {
    /// DMA a 2-D block from DRAM into the scratchpad or the accumulator,
    /// surrounded by padding filled with `pad_value`; with `idx`, DRAM row
    /// `y` is the table row the `y`-th id in DRAM selects (embeddings).
    Load = 0x01, "load", |_| Some(Queue::Load), {
        buf: u8 = 2 BUF "destination: spad (int8 elements) or acc (int32 elements)",
        dram: u32 = 32 U "byte address of the block's first element in DRAM",
        stride: u32 = 32 U "bytes between consecutive DRAM rows",
        rows: u16 = 16 U "DRAM rows to read (>= 1)",
        cols: u16 = 16 U "elements per DRAM row (>= 1)",
        pad_top: u8 = 8 U "padding rows above the data",
        pad_bottom: u8 = 8 U "padding rows below the data",
        pad_left: u8 = 8 U "padding elements before each row",
        pad_right: u8 = 8 U "padding elements after each row",
        pad_value: i8 = 8 S "value of padding elements (sign-extended into acc)",
        addr: u16 = 16 U "first local row of the block",
        col: u16 = 16 U "local column of the padded block's first element",
        idx: u8 = 2 IDX "none: DRAM row y at dram + y * stride; i64 / i32: at dram + id_y * stride, id_y the y-th id at idx_addr (gather)",
        idx_addr: u32 = 32 U "indexed: byte address of the ids in DRAM (rows ids, 8 or 4 bytes each, little-endian)",
        limit: u32 = 32 U "indexed: table rows; an id outside 0..limit faults with IndexOutOfRange (>= 1)",
        zfmt: u8 = 2 ZFMT "none: rows as stored; mask: a compressed stream of `stride` bytes, per row a bitmask then its stored bytes, expanded into the scratchpad (ISA.md §3)",
    }
    /// DMA a 2-D block from the scratchpad or the accumulator to DRAM.
    Store = 0x02, "store", |_| Some(Queue::Store), {
        buf: u8 = 2 BUF "source: spad (int8 elements) or acc (int32 elements)",
        dram: u32 = 32 U "byte address of the block's first element in DRAM",
        stride: u32 = 32 U "bytes between consecutive DRAM rows",
        rows: u16 = 16 U "DRAM rows to write (>= 1)",
        cols: u16 = 16 U "elements per DRAM row (>= 1)",
        addr: u16 = 16 U "first local row of the block",
        col: u16 = 16 U "local column of the block's first element",
    }
    /// Load a k x n weight tile from scratchpad rows into the array's shadow
    /// weight buffer (the rest of the shadow buffer becomes zero).
    Ldw = 0x03, "ldw", |_| Some(Queue::Compute), {
        addr: u16 = 16 U "first scratchpad row of the tile (i8: row i = reduction index i; i4: row i = indices 2i, 2i+1)",
        k: u16 = 16 U "tile rows, 1..=array.rows",
        n: u16 = 16 U "tile columns, 1..=array.cols",
        wfmt: u8 = 2 WFMT "weight format: i8; i8s24 (2:4-sparse: k kept rows for 2k reductions; needs array.sparsity_2_4); i4 (two per byte; needs int4 in array.weight_precisions); i4s24 reserved",
        meta: u16 = 16 U "i8s24: first scratchpad row of the tile's 2-bit positions (ISA.md §3); otherwise 0",
        trans: u8 = 1 U "1: transposed: weight (r, c) is scratchpad row addr + c, column r (k <= array.cols; i8 only)",
    }
    /// Stream `m` scratchpad rows through the array into accumulator rows,
    /// optionally swapping in the shadow weights first and preloading the
    /// next tile's weights while streaming.
    Matmul = 0x04, "matmul", |_| Some(Queue::Compute), {
        a: u16 = 16 U "first scratchpad row of the input block",
        m: u16 = 16 U "input rows to stream (>= 1)",
        acc: u16 = 16 U "first accumulator row of the result",
        accumulate: u8 = 1 U "1: add to the accumulator; 0: overwrite it",
        swap: u8 = 1 U "1: make the shadow weights active before streaming",
        in_type: u8 = 1 ELEM "input element type: i8 or u8",
        preload: u8 = 1 U "1: load the tile (w, k, n) into the shadow buffer while streaming",
        w: u16 = 16 U "preload: first scratchpad row of the next weight tile",
        k: u16 = 16 U "preload: tile rows, 1..=array.rows",
        n: u16 = 16 U "preload: tile columns, 1..=array.cols",
        wfmt: u8 = 2 WFMT "preload: weight format (i8, i8s24 or i4, as for ldw; i4s24 reserved)",
        meta: u16 = 16 U "preload: i8s24 position rows (as `ldw`'s meta); otherwise 0",
        a_stride: u8 = 8 U "row step between consecutive input rows of a group (0 means 1)",
        a_group: u16 = 16 U "input rows per group (0: all m rows are one group)",
        a_gstride: u16 = 16 U "row step between the first input rows of consecutive groups",
        a_bstride: u16 = 16 U "i8s24: rows from an input's first `cols` values to its next `cols` (0: those are 0; needs array.sparsity_2_4)",
        trans: u8 = 1 U "preload: transposed, as `ldw`'s trans",
    }
    /// Post-process accumulator rows into scratchpad rows: add the per-column
    /// bias, requantize with the per-column float32 scale (ORT-exact), add the
    /// zero point, clamp.
    Requant = 0x05, "requant", |_| Some(Queue::Compute), {
        acc: u16 = 16 U "first accumulator row to read",
        rows: u16 = 16 U "rows to process (>= 1)",
        dst: u16 = 16 U "first scratchpad row to write",
        params: u16 = 16 U "accumulator row of per-column bias; params+1 holds the float32 scale bits",
        out_type: u8 = 1 ELEM "output element type: i8 or u8",
        zp: i16 = 9 S "output zero point (in the output type's range)",
        qmin: i16 = 9 S "clamp lower bound (fused ReLU: the zero point)",
        qmax: i16 = 9 S "clamp upper bound",
    }
    /// Element-wise maximum of two strided sets of scratchpad rows (max pooling).
    Vmax = 0x06, "vmax", |_| Some(Queue::Compute), {
        a: u16 = 16 U "first row of operand a",
        a_stride: u16 = 16 U "row step of operand a",
        b: u16 = 16 U "first row of operand b",
        b_stride: u16 = 16 U "row step of operand b",
        dst: u16 = 16 U "first destination row",
        dst_stride: u16 = 16 U "row step of the destination",
        n: u16 = 16 U "rows to process (>= 1)",
        elem: u8 = 1 ELEM "element type: i8 or u8",
    }
    /// Element-wise quantized add of two sets of scratchpad rows (residuals),
    /// ONNX Runtime's QLinearAdd bit for bit: `clamp(cvt_rne(fma(a, ra[c],
    /// fma(b, rb[c], k[c]))))` in binary32 (`numerics::qadd`; ra, rb, k as
    /// float32 bits in accumulator rows params..+3).
    Vadd = 0x07, "vadd", |_| Some(Queue::Compute), {
        a: u16 = 16 U "first row of operand a",
        b: u16 = 16 U "first row of operand b",
        dst: u16 = 16 U "first destination row",
        n: u16 = 16 U "rows to process (>= 1)",
        params: u16 = 16 U "accumulator row of per-column float32 bits of ra; +1 rb; +2 k (zero points folded in)",
        in_type: u8 = 1 ELEM "operand element type: i8 or u8",
        out_type: u8 = 1 ELEM "output element type: i8 or u8",
        qmin: i16 = 9 S "clamp lower bound",
        qmax: i16 = 9 S "clamp upper bound",
    }
    /// Map every byte of scratchpad rows through a 256-entry table held in
    /// scratchpad rows (element-wise unary ops, requantization between scales).
    Vlut = 0x0a, "vlut", |_| Some(Queue::Compute), {
        src: u16 = 16 U "first row of the input",
        dst: u16 = 16 U "first destination row",
        n: u16 = 16 U "rows to process (>= 1)",
        table: u16 = 16 U "first scratchpad row of the table: entry e at row table + e / cols, column e % cols",
    }
    /// Vector unit: dequantize rows of int32 (accumulator) or int8/uint8
    /// (scratchpad) to float32 accumulator rows:
    /// `y = f32(q − zp) · scale` (`numerics::vector::dequantize`), `scale`
    /// per column (float32 bits in accumulator rows `scale + e / cols`) or
    /// the immediate. Row pattern: ISA.md §3 "vector rows".
    Vdeq = 0x0b, "vdeq", |_| Some(Queue::Compute), {
        src_buf: u8 = 2 BUF "source: spad (int8/uint8) or acc (int32)",
        in_type: u8 = 1 ELEM "spad element type: i8 or u8 (acc: i8, meaning int32)",
        src: u16 = 16 U "first row of the source pattern",
        src_step: u16 = 16 U "rows between consecutive logical source rows",
        src_bstride: u16 = 16 U "rows between consecutive column blocks of a source row",
        dst: u16 = 16 U "first accumulator row of the float32 result",
        dst_step: u16 = 16 U "rows between consecutive logical result rows",
        dst_bstride: u16 = 16 U "rows between consecutive column blocks of a result row",
        rows: u16 = 16 U "logical rows (>= 1)",
        len: u16 = 16 U "elements per logical row (>= 1)",
        zp: i16 = 16 S "zero point subtracted from every element",
        scale_imm: u8 = 1 U "1: the scale is `imm`; 0: per column, from accumulator rows scale..",
        scale: u16 = 16 U "first accumulator row of the per-column float32 scales (block j at scale + j)",
        imm: u32 = 32 U "float32 bits of the scale when scale_imm = 1",
    }
    /// Vector unit: quantize float32 accumulator rows to int8/uint8
    /// scratchpad rows, ONNX QuantizeLinear:
    /// `clamp(round_half_even(x ÷ scale) + zp, qmin, qmax)`
    /// (`numerics::vector::quantize`; NaN → qmin).
    Vquant = 0x0c, "vquant", |_| Some(Queue::Compute), {
        out_type: u8 = 1 ELEM "output element type: i8 or u8",
        src: u16 = 16 U "first accumulator row of the float32 source pattern",
        src_step: u16 = 16 U "rows between consecutive logical source rows",
        src_bstride: u16 = 16 U "rows between consecutive column blocks of a source row",
        dst: u16 = 16 U "first scratchpad row of the result pattern",
        dst_step: u16 = 16 U "rows between consecutive logical result rows",
        dst_bstride: u16 = 16 U "rows between consecutive column blocks of a result row",
        rows: u16 = 16 U "logical rows (>= 1)",
        len: u16 = 16 U "elements per logical row (>= 1)",
        zp: i16 = 9 S "output zero point (in the output type's range)",
        qmin: i16 = 9 S "clamp lower bound",
        qmax: i16 = 9 S "clamp upper bound",
        scale: u32 = 32 U "float32 bits of the quantization scale",
    }
    /// Vector unit: element-wise float32 operation on accumulator rows,
    /// `dst = op(a, b)` or `dst = op(a)` (`numerics::vector`); `b` is a row
    /// pattern (a full row, a broadcast row such as gamma or a bias, a
    /// per-row scalar from `vred`) or the immediate.
    Vop = 0x0d, "vop", |_| Some(Queue::Compute), {
        op: u8 = 4 VOP "add | sub | mul | div | max | min (binary); exp | erf | tanh | recip | rsqrt (unary)",
        dst: u16 = 16 U "first accumulator row of the result pattern",
        dst_step: u16 = 16 U "rows between consecutive logical result rows",
        dst_bstride: u16 = 16 U "rows between consecutive column blocks of a result row",
        a: u16 = 16 U "first accumulator row of operand a",
        a_step: u16 = 16 U "rows between consecutive logical rows of a",
        a_bstride: u16 = 16 U "rows between consecutive column blocks of a",
        b: u16 = 16 U "first accumulator row of operand b (binary ops, b_imm = 0)",
        b_step: u16 = 16 U "rows between consecutive logical rows of b (0: one row broadcast to all)",
        b_bstride: u16 = 16 U "rows between column blocks of b (0: one row's column c for every block)",
        b_imm: u8 = 1 U "1: operand b is the float32 `imm` (binary ops)",
        imm: u32 = 32 U "float32 bits of operand b when b_imm = 1",
        rows: u16 = 16 U "logical rows (>= 1)",
        len: u16 = 16 U "elements per logical row (>= 1)",
    }
    /// Vector unit: reduce each logical row of float32 accumulator rows to
    /// one value (`numerics::vector::sum_row` / `max_row`, in lane order)
    /// and write it to every column of one accumulator row.
    Vred = 0x0e, "vred", |_| Some(Queue::Compute), {
        op: u8 = 1 VRED "sum | max",
        a: u16 = 16 U "first accumulator row of the input pattern",
        a_step: u16 = 16 U "rows between consecutive logical input rows",
        a_bstride: u16 = 16 U "rows between consecutive column blocks of an input row",
        dst: u16 = 16 U "accumulator row of the first result (all columns)",
        dst_step: u16 = 16 U "rows between consecutive results",
        rows: u16 = 16 U "logical rows (>= 1)",
        len: u16 = 16 U "elements per logical row (>= 1)",
    }
    /// Vector unit: causal mask, in place: element `e` of logical row `r`
    /// becomes the float32 `imm` where `e > r + diag` (ONNX `Where` with a
    /// triangular condition, as GPT-2 exports it).
    Vmask = 0x0f, "vmask", |_| Some(Queue::Compute), {
        dst: u16 = 16 U "first accumulator row of the pattern (read and written)",
        dst_step: u16 = 16 U "rows between consecutive logical rows",
        dst_bstride: u16 = 16 U "rows between consecutive column blocks of a row",
        rows: u16 = 16 U "logical rows (>= 1)",
        len: u16 = 16 U "elements per logical row (>= 1)",
        diag: i16 = 16 S "element e of row r is replaced where e > r + diag",
        imm: u32 = 32 U "float32 bits of the fill value",
    }
    /// Move dependency tokens only: runs in the named queue for one cycle.
    Sync = 0x08, "sync", |i| match i { Instr::Sync(s) => match s.queue { 0 => Some(Queue::Load), 1 => Some(Queue::Compute), 2 => Some(Queue::Store), _ => None }, _ => None }, {
        queue: u8 = 2 QUEUE "queue the instruction runs in",
    }
    /// End of program: completes when every queue and unit is idle.
    Finish = 0x09, "finish", |_| None, {
    }
}

impl Ldw {
    /// Scratchpad rows the tile reads: `k` (one per reduction index; int4:
    /// `ceil(k / 2)`), or `n` when transposed (one per output column).
    pub fn weight_rows(&self) -> u64 {
        if self.trans != 0 {
            self.n as u64
        } else {
            weight_tile_spad_rows(self.k, self.wfmt)
        }
    }
}

impl Matmul {
    /// Scratchpad rows the preloaded tile reads (see [`Ldw::weight_rows`]).
    pub fn preload_rows(&self) -> u64 {
        if self.trans != 0 {
            self.n as u64
        } else {
            weight_tile_spad_rows(self.k, self.wfmt)
        }
    }

    /// Rows per group of the input-row pattern (ISA.md §3 `matmul`).
    pub fn group_rows(&self) -> u64 {
        if self.a_group == 0 {
            self.m as u64
        } else {
            self.a_group as u64
        }
    }

    /// Row step inside a group (`a_stride`, 0 meaning 1).
    pub fn row_step(&self) -> u64 {
        (self.a_stride as u64).max(1)
    }

    /// Scratchpad row of input row `i`: `a + (i / g) * a_gstride + (i % g) * s`.
    pub fn input_row(&self, i: u64) -> u64 {
        let g = self.group_rows();
        self.a as u64 + (i / g) * self.a_gstride as u64 + (i % g) * self.row_step()
    }

    /// The input rows' span `[a, a_last + a_bstride]` as `(first, one
    /// past the last)`: the range the legality check and the post-processor
    /// interlock use (with `a_bstride`, the second blocks of 2:4 inputs).
    pub fn input_span(&self) -> (u64, u64) {
        let (m, g) = (self.m as u64, self.group_rows());
        if m == 0 {
            return (self.a as u64, self.a as u64);
        }
        let last = self.a as u64 + ((m - 1) / g) * self.a_gstride as u64 + (g.min(m) - 1) * self.row_step();
        (self.a as u64, last + 1 + self.a_bstride as u64)
    }

    /// True when the input rows are `a, a + 1, ..., a + m - 1`.
    pub fn input_contiguous(&self) -> bool {
        let g = self.group_rows();
        self.row_step() == 1 && (g >= self.m as u64 || self.a_gstride as u64 == g)
    }
}

/// A vector instruction's row pattern (ISA.md §3 "vector rows"): element
/// `e` of logical row `r` is at row `base + r·step + (e / cols)·bstride`,
/// column `e % cols`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowPattern {
    pub base: u64,
    pub step: u64,
    pub bstride: u64,
}

impl RowPattern {
    pub fn new(base: u16, step: u16, bstride: u16) -> RowPattern {
        RowPattern { base: base as u64, step: step as u64, bstride: bstride as u64 }
    }

    /// The local row holding column block `block` of logical row `r`.
    pub fn row(&self, r: u64, block: u64) -> u64 {
        self.base + r * self.step + block * self.bstride
    }

    /// `[first, one past the last)` row that `rows` logical rows of
    /// `blocks` column blocks touch (`rows, blocks >= 1`).
    pub fn span(&self, rows: u64, blocks: u64) -> (u64, u64) {
        (self.base, self.row(rows - 1, blocks - 1) + 1)
    }
}

/// Column blocks of a vector instruction's logical row: `ceil(len / cols)`.
pub fn vector_blocks(len: u16, cols: u32) -> u64 {
    (len as u64).div_ceil(cols as u64)
}

impl Instr {
    /// Fields that must be zero in this instruction's canonical encoding
    /// because its other fields leave them unused: `(name, value, why)`.
    fn unused_fields(&self) -> Vec<(&'static str, i64, &'static str)> {
        match self {
            Instr::Vop(v) if v.op >= VOP_BINARY => {
                let why = "unused by a unary op";
                vec![("b", v.b as i64, why), ("b_step", v.b_step as i64, why), ("b_bstride", v.b_bstride as i64, why)]
                    .into_iter()
                    .chain([("b_imm", v.b_imm as i64, why), ("imm", v.imm as i64, why)])
                    .collect()
            }
            Instr::Vop(v) if v.b_imm != 0 => {
                let why = "operand b is the immediate";
                vec![("b", v.b as i64, why), ("b_step", v.b_step as i64, why), ("b_bstride", v.b_bstride as i64, why)]
            }
            Instr::Vop(v) => vec![("imm", v.imm as i64, "operand b is a row pattern")],
            Instr::Load(l) if l.idx == IDX_NONE => {
                let why = "the load is not indexed";
                let mut u = vec![("idx_addr", l.idx_addr as i64, why), ("limit", l.limit as i64, why)];
                if l.zfmt != ZFMT_NONE {
                    u.push(("buf", l.buf as i64, "a compressed stream expands into the scratchpad"));
                }
                u
            }
            Instr::Load(l) if l.zfmt != ZFMT_NONE => {
                vec![("idx", l.idx as i64, "a compressed stream is not indexed")]
            }
            Instr::Vdeq(d) => {
                let mut u = vec![];
                if d.src_buf == BUF_ACC {
                    u.push(("in_type", d.in_type as i64, "an accumulator source is int32"));
                }
                if d.scale_imm != 0 {
                    u.push(("scale", d.scale as i64, "the scale is the immediate"));
                } else {
                    u.push(("imm", d.imm as i64, "the scale is per column"));
                }
                u
            }
            _ => vec![],
        }
    }

    /// True for the vector unit's instructions (`vdeq`, `vquant`, `vop`,
    /// `vred`, `vmask`).
    pub fn is_vector(&self) -> bool {
        matches!(self, Instr::Vdeq(_) | Instr::Vquant(_) | Instr::Vop(_) | Instr::Vred(_) | Instr::Vmask(_))
    }

    /// True for a `load` with an index mode (a gather).
    pub fn is_indexed_load(&self) -> bool {
        matches!(self, Instr::Load(l) if l.idx != IDX_NONE)
    }

    /// True for a `load` of a compressed stream (`zfmt = mask`), which the
    /// LOAD unit expands on the way in.
    pub fn is_compressed_load(&self) -> bool {
        matches!(self, Instr::Load(l) if l.zfmt != ZFMT_NONE)
    }

    /// Checks config-independent legality: enum fields name a value, counts
    /// are non-zero, dependency flags name queues that exist.
    pub fn check_fields(&self) -> Result<(), DecodeError> {
        let spec = self.spec();
        let mnemonic = spec.mnemonic;
        let values = self.values();
        for (f, &v) in spec.fields.iter().zip(&values) {
            let (lo, hi) = f.range();
            if v < lo || v > hi {
                let legal = match f.kind {
                    FieldKind::Enum(names) => names.join(" | "),
                    _ => format!("{lo}..={hi}"),
                };
                return Err(DecodeError::IllegalField { mnemonic, field: f.name, value: v, legal });
            }
        }
        let nonzero: &[&str] = match self {
            Instr::Load(l) if l.idx != IDX_NONE => &["rows", "cols", "limit"],
            Instr::Load(_) | Instr::Store(_) => &["rows", "cols"],
            Instr::Ldw(_) => &["k", "n"],
            Instr::Matmul(m) if m.preload != 0 => &["m", "k", "n"],
            Instr::Matmul(_) => &["m"],
            Instr::Requant(_) => &["rows"],
            Instr::Vmax(_) | Instr::Vadd(_) | Instr::Vlut(_) => &["n"],
            Instr::Vdeq(_) | Instr::Vquant(_) | Instr::Vop(_) | Instr::Vred(_) | Instr::Vmask(_) => &["rows", "len"],
            _ => &[],
        };
        for (f, &v) in spec.fields.iter().zip(&values) {
            if v == 0 && nonzero.contains(&f.name) {
                return Err(DecodeError::IllegalField {
                    mnemonic,
                    field: f.name,
                    value: 0,
                    legal: "at least 1".into(),
                });
            }
        }
        for (field, value, why) in self.unused_fields() {
            if value != 0 {
                return Err(DecodeError::IllegalField { mnemonic, field, value, legal: format!("0 ({why})") });
            }
        }
        let deps = self.deps();
        let queue = self.queue();
        let has_prev = queue.and_then(|q| q.prev()).is_some();
        let has_next = queue.and_then(|q| q.next()).is_some();
        let qname = queue.map(|q| q.name()).unwrap_or("finish");
        for (flag, set, ok) in [
            ("pop_prev", deps.pop_prev, has_prev),
            ("push_prev", deps.push_prev, has_prev),
            ("pop_next", deps.pop_next, has_next),
            ("push_next", deps.push_next, has_next),
        ] {
            if set && !ok {
                return Err(DecodeError::IllegalDeps { mnemonic, flag, queue: qname });
            }
        }
        Ok(())
    }
}

impl fmt::Display for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_instruction_fits_256_bits() {
        for s in INSTR_SPECS {
            let bits: u32 = FIELDS_LO + s.fields.iter().map(|f| f.width).sum::<u32>();
            assert!(bits <= 256, "{} uses {bits} bits", s.mnemonic);
        }
    }

    #[test]
    fn opcodes_are_unique_and_nonzero() {
        let mut seen = std::collections::HashSet::new();
        for s in INSTR_SPECS {
            assert!(s.opcode != 0);
            assert!(seen.insert(s.opcode));
        }
    }

    #[test]
    fn signed_fields_round_trip() {
        let r = Requant { zp: -128, qmin: -128, qmax: 127, rows: 1, ..Default::default() };
        let i = Instr::from(r);
        assert_eq!(Instr::decode(&i.encode()).unwrap(), i);
    }

    #[test]
    fn zero_bytes_are_illegal() {
        assert_eq!(Instr::decode(&[0u8; 32]), Err(DecodeError::UnknownOpcode(0)));
    }
}
