//! The `.sbin` container: round trips, and every malformed file is an error
//! that names the problem, never a panic (docs/DESIGN.md §4).

use isa::instr::{Finish, Load, Matmul, Requant, Store, Sync};
use isa::layout::Layout;
use isa::program::{
    DType, LayerMeta, LayerOp, Program, ProgramError, ProgramMeta, SectionKind, TensorInfo, TensorRole, FORMAT_VERSION,
    HEADER_BYTES,
};
use isa::{Deps, HwConfig, Instr};
use proptest::prelude::*;

/// A row-major tensor of shape `[cols]` or `[rows, cols]`.
fn tensor(name: &str, role: TensorRole, dtype: DType, shape: &[u64], addr: u64) -> TensorInfo {
    let (rows, cols) = match shape {
        [c] => (1, *c as usize),
        [r, c] => (*r as usize, *c as usize),
        _ => panic!("row-major tensors are 1-D or 2-D"),
    };
    TensorInfo {
        name: name.into(),
        role,
        dtype,
        shape: shape.to_vec(),
        addr,
        layout: Layout::Flat { rows, cols, perm: None },
        scale: None,
        zero_point: None,
    }
}

fn layer(name: &str, op: LayerOp, first: usize, last: usize, addr: u64, layout: Layout, shape: &[u64]) -> LayerMeta {
    LayerMeta {
        name: name.into(),
        op,
        first,
        last,
        macs: 64,
        value: format!("{name}_out"),
        addr,
        layout,
        shape: shape.to_vec(),
        dtype: DType::U8,
        scale: 0.25,
        zero_point: 3,
    }
}

/// A program with several kinds of instruction, constant data, three tensors
/// and every kind of metadata.
fn sample() -> Program {
    let cfg = HwConfig::tiny_4x4();
    let meta = ProgramMeta {
        producer: "program_container test".into(),
        source: "sample".into(),
        layers: vec![
            layer(
                "conv1",
                LayerOp::Conv,
                0,
                4,
                0x2000,
                Layout::Nhwc { n: 1, h: 2, w: 2, c: 4, halo: 1 },
                &[1, 4, 2, 2],
            ),
            layer(
                "flat",
                LayerOp::Flatten,
                4,
                4,
                0x2000,
                Layout::Flat { rows: 1, cols: 3, perm: Some(vec![2, 0, 1]) },
                &[1, 3],
            ),
            layer("fc1", LayerOp::Dense, 4, 7, 0x2100, Layout::Flat { rows: 1, cols: 16, perm: None }, &[1, 16]),
        ],
        config: Some(cfg.clone()),
        graph: b"an encoded graph, opaque to the container".to_vec(),
    };
    let push_next = Deps { push_next: true, ..Deps::NONE };
    let pop_prev = Deps { pop_prev: true, ..Deps::NONE };
    let mut x = tensor("x", TensorRole::Input, DType::I8, &[4, 4], 0x1000);
    x.scale = Some(0.0078125);
    x.zero_point = Some(-1);
    let mut y = tensor("y", TensorRole::Output, DType::U8, &[4, 4], 0x2000);
    y.scale = Some(0.1);
    y.zero_point = Some(0);
    Program {
        fingerprint: cfg.fingerprint(),
        config_name: cfg.name.clone(),
        code_addr: 0x100,
        code: vec![
            Instr::from(Load { rows: 4, cols: 4, dram: 0x1000, stride: 4, deps: push_next, ..Default::default() }),
            Instr::from(Load { buf: 0, rows: 4, cols: 4, dram: 0x800, stride: 4, addr: 4, ..Default::default() }),
            Instr::from(Matmul { m: 4, swap: 1, deps: pop_prev, ..Default::default() }),
            Instr::from(Requant { rows: 4, dst: 8, out_type: 1, qmin: 0, qmax: 255, ..Default::default() }),
            Instr::from(Sync { queue: 1, deps: push_next }),
            Instr::from(Store {
                rows: 4,
                cols: 4,
                dram: 0x2000,
                stride: 4,
                addr: 8,
                deps: pop_prev,
                ..Default::default()
            }),
            Instr::Finish(Finish::default()),
        ],
        data_addr: 0x800,
        data: (0u8..=255).cycle().take(300).collect(),
        mem_bytes: 0x3000,
        tensors: vec![x, y, tensor("acc", TensorRole::Intermediate, DType::I32, &[4, 4], 0x2800)],
        meta,
    }
}

/// A small program, for exhaustive truncation and corruption tests.
fn small() -> Program {
    Program {
        fingerprint: 0x0123_4567_89ab_cdef,
        config_name: "t".into(),
        code_addr: 0,
        code: vec![Instr::from(Load { rows: 1, cols: 1, ..Default::default() }), Instr::Finish(Default::default())],
        data_addr: 64,
        data: vec![1, 2, 3],
        mem_bytes: 128,
        tensors: vec![tensor("o", TensorRole::Output, DType::I8, &[2], 96)],
        meta: ProgramMeta::default(),
    }
}

/// Replaces the trailer of a file with the CRC-32 of everything before it.
fn reseal(bytes: &mut [u8]) {
    let n = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[..n]);
    bytes[n..].copy_from_slice(&crc.to_le_bytes());
}

/// Byte offset of section-table entry `index`'s `field` (0 kind, 4 reserved, 8 offset, 16 length).
fn entry(index: usize, field: usize) -> usize {
    HEADER_BYTES + 24 * index + field
}

fn put_u64(bytes: &mut [u8], at: usize, v: u64) {
    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(bytes: &mut [u8], at: usize, v: u32) {
    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn section(bytes: &[u8], kind: SectionKind) -> (usize, usize) {
    let s = Program::sections(bytes).unwrap().into_iter().find(|s| s.kind == kind).unwrap();
    (s.offset as usize, s.length as usize)
}

fn err(bytes: &[u8]) -> ProgramError {
    Program::from_bytes(bytes).expect_err("the file must be rejected")
}

#[test]
fn round_trip() {
    let p = sample();
    p.validate_layout().unwrap();
    p.check_config(&HwConfig::tiny_4x4()).unwrap();
    let bytes = p.to_bytes();
    let q = Program::from_bytes(&bytes).unwrap();
    assert_eq!(q, p);
    assert_eq!(q.to_bytes(), bytes, "writing is deterministic");
    assert_eq!(q.tensor("y").unwrap().byte_len(), 16);
    assert_eq!(q.tensor("acc").unwrap().byte_len(), 64);
    assert_eq!(q.code_bytes(), 7 * 32);
}

#[test]
fn round_trip_empty_program() {
    let p = Program {
        fingerprint: 0,
        config_name: String::new(),
        code_addr: 0,
        code: vec![],
        data_addr: 0,
        data: vec![],
        mem_bytes: 0,
        tensors: vec![],
        meta: ProgramMeta::default(),
    };
    assert_eq!(Program::from_bytes(&p.to_bytes()).unwrap(), p);
}

#[test]
fn header_layout() {
    let p = sample();
    let b = p.to_bytes();
    assert_eq!(&b[0..8], b"SYSTOLE\0");
    assert_eq!(u32::from_le_bytes(b[8..12].try_into().unwrap()), FORMAT_VERSION);
    assert_eq!(FORMAT_VERSION, 2);
    assert_eq!(u32::from_le_bytes(b[12..16].try_into().unwrap()), isa::ISA_VERSION);
    assert_eq!(u64::from_le_bytes(b[16..24].try_into().unwrap()), p.fingerprint);
    assert_eq!(u32::from_le_bytes(b[24..28].try_into().unwrap()), 4);
    assert_eq!(u32::from_le_bytes(b[28..32].try_into().unwrap()), 0);
    let n = b.len();
    assert_eq!(u32::from_le_bytes(b[n - 4..].try_into().unwrap()), crc32fast::hash(&b[..n - 4]));
    let (off, len) = section(&b, SectionKind::Code);
    assert_eq!((off, len), (32 + 4 * 24, 7 * 32));
    for (k, i) in p.code.iter().enumerate() {
        assert_eq!(&b[off + 32 * k..off + 32 * k + 32], &i.encode());
    }
    // The data: its length, then one literal run (tag 0, length, bytes).
    let (off, len) = section(&b, SectionKind::Data);
    assert_eq!(len, 8 + 1 + 8 + 300);
    assert_eq!(u64::from_le_bytes(b[off..off + 8].try_into().unwrap()), 300);
    assert_eq!(b[off + 8], 0);
    assert_eq!(&b[off + 17..off + len], &p.data[..]);
    // The manifest starts with the config name (u64 length, UTF-8).
    let (off, _) = section(&b, SectionKind::Manifest);
    assert_eq!(u64::from_le_bytes(b[off..off + 8].try_into().unwrap()), 8);
    assert_eq!(&b[off + 8..off + 16], b"tiny-4x4");
    let (off, len) = section(&b, SectionKind::Graph);
    assert_eq!(&b[off..off + len], &p.meta.graph[..]);
    assert_eq!(off + len, n - 4, "the graph is the last section");
}

/// Activation buffers (long runs of one byte) cost a few bytes in the file.
#[test]
fn fill_runs_are_compact_and_exact() {
    let mut p = small();
    p.mem_bytes = 1 << 20;
    p.data = [vec![9u8; 100_000], vec![1, 2, 3], vec![0x80; 5000], vec![4; 63]].concat();
    let b = p.to_bytes();
    let (_, len) = section(&b, SectionKind::Data);
    assert!(len < 200, "{len} bytes of data section for 105 KB of runs");
    assert_eq!(Program::from_bytes(&b).unwrap(), p);
}

#[test]
fn every_truncation_is_an_error() {
    for p in [small(), sample()] {
        let b = p.to_bytes();
        for n in 0..b.len() {
            assert!(Program::from_bytes(&b[..n]).is_err(), "prefix of {n} of {} bytes accepted", b.len());
        }
    }
    let b = small().to_bytes();
    assert_eq!(err(&b[..12]).to_string(), "truncated: 12 bytes, the header needs 32");
    assert_eq!(err(&[]).to_string(), "truncated: 0 bytes, the header needs 32");
    assert!(err(&b[..34]).to_string().starts_with("truncated: 34 bytes"), "{}", err(&b[..34]));
    let e = err(&b[..b.len() - 1]).to_string();
    assert!(e.contains("checksum mismatch") && e.contains("corrupted"), "{e}");
}

#[test]
fn every_single_byte_flip_is_an_error() {
    let b = small().to_bytes();
    for pos in 0..b.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut c = b.clone();
            c[pos] ^= mask;
            assert!(Program::from_bytes(&c).is_err(), "flip 0x{mask:02x} at byte {pos} accepted");
        }
    }
    // Past the header's identity fields, a flip is caught by the checksum.
    let mut c = b.clone();
    c[40] ^= 1;
    match err(&c) {
        ProgramError::Checksum { stored, computed, covered } => {
            assert_ne!(stored, computed);
            assert_eq!(covered, b.len() - 4);
        }
        e => panic!("expected a checksum error, got {e}"),
    }
}

#[test]
fn header_errors() {
    let b = small().to_bytes();
    let mut c = b.clone();
    c[..8].copy_from_slice(b"\x7fELF\x02\x01\x01\x00");
    let e = err(&c).to_string();
    assert!(e.starts_with("bad magic [7f, 45, 4c, 46, 02, 01, 01, 00]") && e.contains("ELF"), "{e}");
    assert!(matches!(err(b"PK\x03\x04"), ProgramError::BadMagic { .. }));

    let mut c = b.clone();
    put_u32(&mut c, 8, 3);
    assert!(matches!(err(&c), ProgramError::UnsupportedFormat { found: 3, supported: 2 }));
    let e = err(&c).to_string();
    assert!(e.contains("made by another systole version") && e.contains("rebuild it with `systole compile`"), "{e}");

    let mut c = b.clone();
    put_u32(&mut c, 12, isa::ISA_VERSION + 1);
    let e = err(&c);
    assert!(matches!(e, ProgramError::IsaVersion { .. }), "{e}");
    assert!(e.to_string().contains("ISA version") && e.to_string().contains("rebuild it"), "{e}");

    let mut c = b.clone();
    put_u32(&mut c, 28, 7);
    reseal(&mut c);
    assert!(matches!(err(&c), ProgramError::Reserved { offset: 28, value: 7, .. }));

    let mut c = b.clone();
    put_u32(&mut c, entry(1, 4), 1);
    reseal(&mut c);
    assert!(err(&c).to_string().contains("section 1 reserved field"), "{}", err(&c));
}

/// A file of the previous container format (JSON manifest, version 1), as
/// `systole compile` wrote it before: refused with "rebuild it".
#[test]
fn a_format_1_file_says_rebuild_it() {
    let old = include_bytes!("data/format1.sbin");
    assert_eq!(u32::from_le_bytes(old[8..12].try_into().unwrap()), 1);
    let e = err(old);
    assert!(matches!(e, ProgramError::UnsupportedFormat { found: 1, supported: FORMAT_VERSION }), "{e}");
    assert_eq!(
        e.to_string(),
        "made by another systole version (container format 1, this build reads format 2): rebuild it with `systole compile`"
    );
}

#[test]
fn section_table_errors() {
    let b = small().to_bytes();

    let mut c = b.clone();
    put_u32(&mut c, 24, 1000);
    reseal(&mut c);
    let e = err(&c);
    assert!(matches!(e, ProgramError::SectionTableTruncated { count: 1000, .. }), "{e}");
    assert!(e.to_string().contains("[32, 24032)"), "{e}");

    let mut c = b.clone();
    put_u32(&mut c, 24, u32::MAX);
    reseal(&mut c);
    assert!(matches!(err(&c), ProgramError::SectionTableTruncated { .. }));

    let mut c = b.clone();
    put_u32(&mut c, entry(2, 0), 9);
    reseal(&mut c);
    let e = err(&c);
    assert!(matches!(e, ProgramError::UnknownSection { index: 2, kind: 9 }), "{e}");

    let mut c = b.clone();
    put_u32(&mut c, entry(2, 0), 1);
    reseal(&mut c);
    let e = err(&c);
    assert!(matches!(e, ProgramError::DuplicateSection { kind: SectionKind::Code, first: 0, second: 2 }), "{e}");

    let mut c = b.clone();
    put_u32(&mut c, 24, 2);
    reseal(&mut c);
    let e = err(&c);
    assert!(matches!(e, ProgramError::MissingSection { kind: SectionKind::Manifest }), "{e}");
    assert_eq!(e.to_string(), "the file has no manifest section");
}

#[test]
fn section_bounds_errors() {
    let b = small().to_bytes();
    let n = b.len();

    let mut c = b.clone();
    put_u64(&mut c, entry(1, 16), 10_000);
    reseal(&mut c);
    let e = err(&c);
    let (data_off, _) = section(&b, SectionKind::Data);
    assert!(matches!(e, ProgramError::SectionOutOfBounds { index: 1, kind: SectionKind::Data, .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains(&format!("section 1 (data) [{data_off}, {})", data_off + 10_000)), "{msg}");
    assert!(msg.contains(&format!("exceeds the file's {n} bytes")), "{msg}");

    // offset + length overflows u64
    let mut c = b.clone();
    put_u64(&mut c, entry(0, 8), u64::MAX - 3);
    put_u64(&mut c, entry(0, 16), 64);
    reseal(&mut c);
    let e = err(&c);
    assert!(matches!(e, ProgramError::SectionOutOfBounds { index: 0, .. }), "{e}");
    assert!(e.to_string().contains("overflows"), "{e}");

    // inside the header / section table
    let mut c = b.clone();
    put_u64(&mut c, entry(1, 8), 8);
    reseal(&mut c);
    assert!(matches!(err(&c), ProgramError::SectionOutOfBounds { index: 1, .. }));

    // covering the trailer
    let mut c = b.clone();
    let (graph_off, graph_len) = section(&b, SectionKind::Graph);
    put_u64(&mut c, entry(3, 16), (graph_len + 1) as u64);
    reseal(&mut c);
    assert!(matches!(err(&c), ProgramError::SectionOutOfBounds { index: 3, .. }));
    assert_eq!(graph_off + graph_len, n - 4);

    // data moved onto the code
    let mut c = b.clone();
    let (code_off, _) = section(&b, SectionKind::Code);
    put_u64(&mut c, entry(1, 8), code_off as u64 + 8);
    reseal(&mut c);
    let e = err(&c);
    assert!(
        matches!(
            e,
            ProgramError::SectionsOverlap { a: 0, a_kind: SectionKind::Code, b: 1, b_kind: SectionKind::Data, .. }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("overlap"));
}

#[test]
fn code_content_errors() {
    let b = sample().to_bytes();
    let (code_off, _) = section(&b, SectionKind::Code);

    // an unknown opcode in instruction 5
    let mut c = b.clone();
    c[code_off + 5 * 32] = 0xee;
    reseal(&mut c);
    let e = err(&c);
    let at = code_off + 5 * 32;
    assert!(matches!(e, ProgramError::Decode { index: 5, offset, .. } if offset == at as u64), "{e}");
    assert_eq!(e.to_string(), format!("instruction 5 at byte offset 0x{at:x}: unknown opcode 0xee"));

    // a reserved bit set in instruction 0
    let mut c = b.clone();
    c[code_off + 31] = 0x80;
    reseal(&mut c);
    let e = err(&c).to_string();
    assert!(e.starts_with("instruction 0 at byte offset") && e.contains("reserved bits"), "{e}");

    // code length not a multiple of 32: shrink code by 1 byte, widen the gap
    let mut c = b.clone();
    put_u64(&mut c, entry(0, 16), 7 * 32 - 1);
    reseal(&mut c);
    let e = err(&c);
    assert!(matches!(e, ProgramError::CodeLength { length: 223 }), "{e}");
    assert!(e.to_string().contains("not a multiple of the 32-byte instruction"), "{e}");
}

/// The position of `needle` in `hay` (once).
fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).position(|w| w == needle).expect("present")
}

/// A length-prefixed string as the codec writes it.
fn encoded_str(s: &str) -> Vec<u8> {
    [&(s.len() as u64).to_le_bytes()[..], s.as_bytes()].concat()
}

#[test]
fn manifest_errors() {
    let b = sample().to_bytes();
    let (off, len) = section(&b, SectionKind::Manifest);
    let edit = |at: usize, bytes: &[u8]| {
        let mut c = b.clone();
        c[at..at + bytes.len()].copy_from_slice(bytes);
        reseal(&mut c);
        let e = err(&c);
        assert!(matches!(e, ProgramError::Manifest { .. }), "{e}");
        assert!(e.to_string().contains(&format!("section at byte offset 0x{off:x}")), "{e}");
        e.to_string()
    };
    // Tensor `x`: name, role, then the dtype tag.
    let x = off + find(&b[off..off + len], &encoded_str("x"));
    let e = edit(x + 9 + 1, &[9]);
    assert!(e.contains("unknown dtype tag 9 (known: 0..5)"), "{e}");
    let e = edit(x + 9, &[3]);
    assert!(e.contains("unknown tensor role tag 3"), "{e}");
    // The layer `fc1`'s op.
    let fc1 = off + find(&b[off..off + len], &encoded_str("fc1"));
    let e = edit(fc1 + 11, &[200]);
    assert!(e.contains("unknown layer op tag 200"), "{e}");
    // A forged count: the tensor count is after the name and three u64s.
    let count = off + 8 + "tiny-4x4".len() + 24;
    assert_eq!(u64::from_le_bytes(b[count..count + 8].try_into().unwrap()), 3);
    let e = edit(count, &u64::MAX.to_le_bytes());
    assert!(e.contains("tensors") && e.contains("exceed"), "{e}");
    // The name's length beyond the manifest.
    let e = edit(off, &(1u64 << 40).to_le_bytes());
    assert!(e.contains("config name"), "{e}");
    // The config's array is a u32 row count: zero rows is an invalid config.
    let cfg = off + find(&b[off..off + len], &[&[1u8][..], &encoded_str("tiny-4x4")].concat()[..]) + 1 + 16;
    let mut c = b.clone();
    c[cfg..cfg + 4].copy_from_slice(&0u32.to_le_bytes());
    reseal(&mut c);
    let e = err(&c).to_string();
    assert!(e.contains("the recorded hardware configuration is invalid") && e.contains("array.rows"), "{e}");
    // One byte short: the last field cannot be read.
    let mut c = b.clone();
    put_u64(&mut c, entry(2, 16), (len - 1) as u64);
    reseal(&mut c);
    assert!(err(&c).to_string().contains("remain"), "{}", err(&c));
}

#[test]
fn data_errors() {
    let mut p = small();
    p.data = vec![5; 64];
    let b = p.to_bytes();
    let (off, len) = section(&b, SectionKind::Data);
    assert_eq!(len, 8 + 1 + 8 + 1, "one fill run");
    let edit = |at: usize, bytes: &[u8]| {
        let mut c = b.clone();
        c[off + at..off + at + bytes.len()].copy_from_slice(bytes);
        reseal(&mut c);
        let e = err(&c);
        assert!(matches!(e, ProgramError::Data { .. }), "{e}");
        e.to_string()
    };
    // A data length beyond the window cannot make the reader allocate it.
    let e = edit(0, &u64::MAX.to_le_bytes());
    assert!(e.contains("exceeds the memory window of 128 bytes"), "{e}");
    let e = edit(9, &65u64.to_le_bytes());
    assert!(e.contains("fill run of 65 bytes overruns the data's 64"), "{e}");
    let e = edit(9, &63u64.to_le_bytes());
    assert!(e.contains("data run"), "{e}");
    let e = edit(8, &[2]);
    assert!(e.contains("unknown data run tag 2"), "{e}");
}

#[test]
fn layout_is_validated_on_load() {
    let mut p = small();
    p.code_addr = 8;
    let e = err(&p.to_bytes());
    assert!(matches!(e, ProgramError::CodeMisaligned { code_addr: 8 }), "{e}");
    assert_eq!(p.validate_layout().unwrap_err().to_string(), e.to_string());

    let mut p = small();
    p.mem_bytes = 97;
    let e = err(&p.to_bytes()).to_string();
    assert!(e.contains("output tensor `o` [0x60, 0x62) lies outside the program's memory window [0, 0x61)"), "{e}");

    let mut p = small();
    p.data_addr = 32;
    let e = err(&p.to_bytes()).to_string();
    assert!(e.contains("code [0x0, 0x40) and data [0x20, 0x23) overlap"), "{e}");

    let mut p = small();
    p.data_addr = 126;
    assert!(matches!(err(&p.to_bytes()), ProgramError::OutsideWindow { .. }));

    let mut p = small();
    p.tensors.push(p.tensors[0].clone());
    assert!(matches!(err(&p.to_bytes()), ProgramError::DuplicateTensor { .. }));

    let mut p = small();
    p.tensors[0].dtype = DType::U8;
    p.tensors[0].zero_point = Some(-1);
    let e = err(&p.to_bytes()).to_string();
    assert!(e.contains("tensor `o`: zero point -1 is outside the u8 range 0..=255"), "{e}");
}

#[test]
fn fingerprint_mismatch_names_both_configs() {
    let p = sample();
    let tiny = HwConfig::tiny_4x4();
    let big = HwConfig::default_16x16();
    p.check_config(&tiny).unwrap();
    let e = p.check_config(&big).unwrap_err();
    assert!(matches!(e, ProgramError::FingerprintMismatch { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains(&format!("0x{:016x}", tiny.fingerprint())), "{msg}");
    assert!(msg.contains(&format!("0x{:016x}", big.fingerprint())), "{msg}");
    assert!(msg.contains(&format!("`{}`", tiny.name)) && msg.contains(&format!("`{}`", big.name)), "{msg}");
    assert!(msg.contains("recompile"), "{msg}");

    // Timing-only differences keep the fingerprint, so the program still runs.
    let mut slow = tiny.clone();
    slow.dram.latency_cycles = 500;
    p.check_config(&slow).unwrap();

    // The fingerprint survives the file.
    let q = Program::from_bytes(&p.to_bytes()).unwrap();
    assert!(q.check_config(&big).is_err());

    let mut p = sample();
    p.mem_bytes = tiny.dram_bytes() + 1;
    let msg = p.check_config(&tiny).unwrap_err().to_string();
    assert!(msg.contains("device memory") && msg.contains(&tiny.dram_bytes().to_string()), "{msg}");
}

fn arb_layout() -> impl Strategy<Value = (Layout, Vec<u64>)> {
    prop_oneof![
        // One image (tag 0) or a batch (tag 2).
        (1usize..4, 1usize..8, 1usize..8, 1usize..8, 0usize..3).prop_map(|(n, h, w, c, halo)| (
            Layout::Nhwc { n, h, w, c, halo },
            vec![n as u64, c as u64, h as u64, w as u64]
        )),
        (1usize..8, 1usize..8, any::<bool>(), any::<u64>()).prop_map(|(rows, cols, permuted, seed)| {
            // A rotation of the columns stands for a permutation.
            let perm = permuted.then(|| (0..cols).map(|i| (i + seed as usize % cols) % cols).collect());
            (Layout::Flat { rows, cols, perm }, vec![rows as u64, cols as u64])
        }),
    ]
}

fn arb_tensor(i: usize) -> impl Strategy<Value = TensorInfo> {
    (
        prop_oneof![Just(DType::I8), Just(DType::U8), Just(DType::I32), Just(DType::F32)],
        prop_oneof![Just(TensorRole::Input), Just(TensorRole::Output), Just(TensorRole::Intermediate)],
        arb_layout(),
        0u64..0x400,
        proptest::option::of(proptest::num::f32::POSITIVE | proptest::num::f32::NORMAL | proptest::num::f32::SUBNORMAL),
        proptest::option::of(0i32..=127),
    )
        .prop_map(move |(dtype, role, (layout, shape), addr, scale, zero_point)| TensorInfo {
            name: format!("t{i}"),
            role,
            dtype,
            shape,
            addr: 0x1000 + addr,
            layout,
            scale: scale.map(f32::abs).filter(|s| *s > 0.0),
            zero_point,
        })
}

fn arb_layer(code_len: usize) -> impl Strategy<Value = LayerMeta> {
    (".{0,8}", 0usize..LayerOp::ALL.len(), 0..=code_len, 0..=code_len, arb_layout(), 0u64..0x400, any::<u64>())
        .prop_map(|(name, op, a, b, (layout, shape), addr, macs)| LayerMeta {
            name: name.clone(),
            op: LayerOp::ALL[op],
            first: a.min(b),
            last: a.max(b),
            macs,
            value: name,
            addr: 0x1000 + addr,
            layout,
            shape,
            dtype: DType::I8,
            scale: 0.5,
            zero_point: -1,
        })
}

fn arb_program() -> impl Strategy<Value = Program> {
    (
        any::<u64>(),
        ".{0,10}",
        0u64..8,
        proptest::collection::vec((1u16..100, 1u16..100, any::<u32>()), 0..6),
        proptest::collection::vec(prop_oneof![any::<u8>(), Just(0u8)], 0..400),
        proptest::collection::vec(arb_tensor(0), 0..2),
        proptest::collection::vec(arb_tensor(1), 0..2),
        (
            ".{0,10}",
            proptest::collection::vec(arb_layer(1), 0..3),
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..50),
        ),
    )
        .prop_map(
            |(fingerprint, config_name, code_slot, loads, data, t0, t1, (producer, layers, config, graph))| {
                let mut code: Vec<Instr> = loads
                    .into_iter()
                    .map(|(rows, cols, dram)| Instr::from(Load { rows, cols, dram, ..Default::default() }))
                    .collect();
                code.push(Instr::Finish(Default::default()));
                let config = config.then(HwConfig::tiny_4x4);
                Program {
                    // A recorded config's fingerprint is the program's.
                    fingerprint: config.as_ref().map_or(fingerprint, HwConfig::fingerprint),
                    config_name,
                    code_addr: code_slot * 32,
                    code,
                    data_addr: 0x800,
                    data,
                    // Room for the largest generated tensor: three i32
                    // 7x7x7 maps with a halo of 2 (10,164 B) at 0x1000 + 0x3ff.
                    mem_bytes: 0x4000,
                    tensors: t0.into_iter().chain(t1).collect(),
                    meta: ProgramMeta { producer, source: String::new(), layers, config, graph },
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_programs_round_trip(p in arb_program()) {
        p.validate_layout().unwrap();
        let q = Program::from_bytes(&p.to_bytes()).unwrap();
        prop_assert_eq!(q, p);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let _ = Program::from_bytes(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_header_never_panic(
        tail in proptest::collection::vec(any::<u8>(), 0..1024),
        count in 0u32..6,
        seal in any::<bool>(),
    ) {
        let mut bytes = small().to_bytes()[..HEADER_BYTES].to_vec();
        bytes[24..28].copy_from_slice(&count.to_le_bytes());
        bytes.extend_from_slice(&tail);
        if seal && bytes.len() >= HEADER_BYTES + 4 {
            reseal(&mut bytes);
        }
        let _ = Program::from_bytes(&bytes);
    }

    #[test]
    fn resealed_corruptions_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        table_edits in proptest::collection::vec((0usize..72, any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = sample().to_bytes();
        for (at, v) in edits {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        for (at, v) in table_edits {
            bytes[HEADER_BYTES + at] = v;
        }
        if truncate {
            let n = cut.index(bytes.len()).max(HEADER_BYTES + 4);
            bytes.truncate(n);
        }
        reseal(&mut bytes);
        if let Err(e) = Program::from_bytes(&bytes) {
            prop_assert!(!e.to_string().is_empty());
        }
    }
}
