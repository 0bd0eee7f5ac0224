//! The program container: one `.sbin` file per compiled model (DESIGN §4).
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
//! the file.
//!
//! **Header** (32 bytes):
//!
//! | offset | size | field                                              |
//! |-------:|-----:|----------------------------------------------------|
//! |      0 |    8 | magic `b"SYSTOLE\0"` (`53 59 53 54 4f 4c 45 00`)   |
//! |      8 |    4 | format version, u32 (= 1, [`FORMAT_VERSION`])      |
//! |     12 |    4 | ISA version, u32 ([`crate::ISA_VERSION`])          |
//! |     16 |    8 | config fingerprint, u64 ([`HwConfig::fingerprint`]) |
//! |     24 |    4 | section count, u32 (= 3)                           |
//! |     28 |    4 | reserved, u32, must be 0                           |
//!
//! **Section table** (immediately after the header, 24 bytes per section,
//! `section count` entries):
//!
//! | offset | size | field                                        |
//! |-------:|-----:|----------------------------------------------|
//! |      0 |    4 | kind, u32 (see below)                        |
//! |      4 |    4 | reserved, u32, must be 0                     |
//! |      8 |    8 | offset of the section's bytes in the file    |
//! |     16 |    8 | length of the section in bytes               |
//!
//! Section kinds ([`SectionKind`]):
//!
//! | kind | name     | contents                                                     |
//! |-----:|----------|--------------------------------------------------------------|
//! |    1 | code     | n x 32-byte instructions ([`Instr::encode`]), in program order |
//! |    2 | data     | raw constant bytes, placed at `data_addr` in device memory   |
//! |    3 | manifest | UTF-8 JSON object: `config_name`, `code_addr`, `data_addr`, `mem_bytes`, `tensors`, `meta` |
//!
//! Each kind appears exactly once. Sections lie after the section table and
//! before the trailer, and do not overlap (gaps are allowed; empty sections
//! are allowed). The writer places code, data and manifest back to back in
//! that order.
//!
//! **Trailer** (4 bytes): CRC-32 (IEEE, as computed by `crc32fast`) of every
//! preceding byte of the file, u32.
//!
//! The manifest's `tensors` is a list of objects
//! `{"name", "role": "input"|"output"|"intermediate", "dtype": "i8"|"u8"|"i32"|"f32",
//! "shape": [u64...], "addr", "layout", "scale"?, "zero_point"?}`; `scale` is
//! written as the exact decimal value of the float32 (read back bit-exactly),
//! and an absent `scale` / `zero_point` means none. Unknown fields are
//! rejected; `meta` is a free-form object (optional, default `{}`).
//!
//! # Validation
//!
//! [`Program::from_bytes`] checks, in this order: the file length against the
//! header, the magic, the format version and the ISA version; then the
//! checksum; then the section table (reserved fields, known kinds, each kind
//! exactly once, bounds, no overlaps); then the contents (the code length is a
//! multiple of 32 and every instruction decodes, the manifest parses); and
//! finally [`Program::validate_layout`]. Whether the program fits a given
//! hardware configuration is a separate step, [`Program::check_config`].

use crate::config::HwConfig;
use crate::instr::{DecodeError, Instr, INSTR_BYTES};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// The first 8 bytes of every `.sbin` file.
pub const MAGIC: [u8; 8] = *b"SYSTOLE\0";
/// The container format version this crate reads and writes.
pub const FORMAT_VERSION: u32 = 1;
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
}

impl DType {
    /// Bytes per element.
    pub fn size_bytes(self) -> u64 {
        match self {
            DType::I8 | DType::U8 => 1,
            DType::I32 | DType::F32 => 4,
        }
    }

    /// The lowercase name used in the manifest ("i8", "u8", "i32", "f32").
    pub fn name(self) -> &'static str {
        match self {
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::I32 => "i32",
            DType::F32 => "f32",
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorInfo {
    pub name: String,
    pub role: TensorRole,
    pub dtype: DType,
    pub shape: Vec<u64>,
    /// Device byte address of the first element.
    pub addr: u64,
    /// How the elements are laid out ("row-major", "nhwc", ...), free text
    /// documented by the producer.
    pub layout: String,
    /// Quantization scale (real = scale * (q - zero_point)); finite and > 0.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "exact_f32")]
    pub scale: Option<f32>,
    /// Quantization zero point; in the dtype's range for i8 / u8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
}

/// Writes an `f32` as the `f64` of the same value, so the JSON decimal reads
/// back bit-exactly whatever the JSON parser's float accuracy; `null` is
/// rejected on read (it would otherwise silently become "no scale").
mod exact_f32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<f32>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(x) => s.serialize_f64(*x as f64),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f32>, D::Error> {
        f64::deserialize(d).map(|x| Some(x as f32))
    }
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
    /// Free-form metadata: producer, source file, compiler version, per-layer info.
    pub meta: Map<String, Value>,
}

/// The kinds of section in a `.sbin` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SectionKind {
    Code = 1,
    Data = 2,
    Manifest = 3,
}

impl SectionKind {
    pub const ALL: [SectionKind; 3] = [SectionKind::Code, SectionKind::Data, SectionKind::Manifest];

    pub fn from_u32(kind: u32) -> Option<SectionKind> {
        match kind {
            1 => Some(SectionKind::Code),
            2 => Some(SectionKind::Data),
            3 => Some(SectionKind::Manifest),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SectionKind::Code => "code",
            SectionKind::Data => "data",
            SectionKind::Manifest => "manifest",
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
    #[error("unsupported container format version {found} (this build reads version {supported})")]
    UnsupportedFormat { found: u32, supported: u32 },
    #[error("ISA version mismatch: the program was built for ISA version {found}, this build implements version {expected}; recompile the program")]
    IsaVersion { found: u32, expected: u32 },
    #[error("checksum mismatch: the trailer says 0x{stored:08x} but the {covered} bytes before it hash to 0x{computed:08x}; the file is corrupted (or truncated)")]
    Checksum { stored: u32, computed: u32, covered: usize },
    #[error("{what} at byte offset 0x{offset:x} is 0x{value:x}; it is reserved and must be 0")]
    Reserved { what: String, offset: u64, value: u64 },
    #[error("section table truncated: {count} sections need bytes [{HEADER_BYTES}, {}) but the file's {len} bytes leave [{HEADER_BYTES}, {}) before the checksum", table_end_text(*.count), .len.saturating_sub(TRAILER_BYTES))]
    SectionTableTruncated { count: u32, len: usize },
    #[error("section {index} has unknown kind {kind} (known: 1 = code, 2 = data, 3 = manifest)")]
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
    Manifest { offset: u64, source: serde_json::Error },
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

#[derive(Serialize)]
struct ManifestOut<'a> {
    config_name: &'a str,
    code_addr: u64,
    data_addr: u64,
    mem_bytes: u64,
    tensors: &'a [TensorInfo],
    meta: &'a Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestIn {
    config_name: String,
    code_addr: u64,
    data_addr: u64,
    mem_bytes: u64,
    tensors: Vec<TensorInfo>,
    #[serde(default)]
    meta: Map<String, Value>,
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
        let manifest = ManifestOut {
            config_name: &self.config_name,
            code_addr: self.code_addr,
            data_addr: self.data_addr,
            mem_bytes: self.mem_bytes,
            tensors: &self.tensors,
            meta: &self.meta,
        };
        let manifest = serde_json::to_vec_pretty(&manifest).expect("the manifest serializes to JSON");
        let count = SectionKind::ALL.len();
        let table_end = HEADER_BYTES + count * SECTION_ENTRY_BYTES;
        let code_len = self.code.len() * INSTR_BYTES;
        let total = table_end + code_len + self.data.len() + manifest.len() + TRAILER_BYTES;

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
            (SectionKind::Data, self.data.len()),
            (SectionKind::Manifest, manifest.len()),
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
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&manifest);
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

        let (_, data) = slice_of(SectionKind::Data);
        let (manifest_offset, manifest) = slice_of(SectionKind::Manifest);
        let m: ManifestIn = serde_json::from_slice(manifest)
            .map_err(|source| ProgramError::Manifest { offset: manifest_offset, source })?;

        let program = Program {
            fingerprint,
            config_name: m.config_name,
            code_addr: m.code_addr,
            code,
            data_addr: m.data_addr,
            data: data.to_vec(),
            mem_bytes: m.mem_bytes,
            tensors: m.tensors,
            meta: m.meta,
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
        if self.code_addr % CODE_ALIGN != 0 {
            return Err(ProgramError::CodeMisaligned { code_addr: self.code_addr });
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
            let Some(length) = t.checked_byte_len() else {
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
                    DType::I32 | DType::F32 => None,
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
        let mut meta = Map::new();
        meta.insert("producer".into(), Value::from("unit test"));
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
            data: (0..48).collect(),
            mem_bytes: 0x3000,
            tensors: vec![
                TensorInfo {
                    name: "x".into(),
                    role: TensorRole::Input,
                    dtype: DType::I8,
                    shape: vec![4, 4],
                    addr: 0x1000,
                    layout: "row-major".into(),
                    scale: Some(0.1),
                    zero_point: Some(-3),
                },
                TensorInfo {
                    name: "y".into(),
                    role: TensorRole::Output,
                    dtype: DType::I32,
                    shape: vec![4, 4],
                    addr: 0x2000,
                    layout: "row-major".into(),
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
        assert_eq!(s[0].offset, (HEADER_BYTES + 3 * SECTION_ENTRY_BYTES) as u64);
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
        assert!(e.contains("code [0x0, 0x80) and data [0x40, 0x70) overlap"), "{e}");
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
