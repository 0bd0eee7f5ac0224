//! The graph's binary encoding on damaged input: every truncation, every
//! single-byte change and forged counts give an error, never a panic or a
//! huge allocation. (`decode(encode(g)) == g` on generated graphs is in
//! `text_model.rs`, beside the text format's round trip.) A compiled
//! program's graph refers to the packed weights in its data: it decodes
//! to the model, and damaged references are errors too.

use compiler::ir::{Graph, Op};
use compiler::ir_codec::{decode, decode_with_data, encode, MAGIC, VERSION};
use compiler::text::parse;
use isa::HwConfig;
use proptest::prelude::*;

fn cnn() -> Vec<u8> {
    encode(&parse(include_str!("../../examples/models/tiny_cnn.stm")).unwrap())
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = cnn();
    for len in 0..bytes.len() {
        assert!(decode(&bytes[..len]).is_err(), "a prefix of {len} bytes decoded");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(decode(&longer).unwrap_err().to_string().contains("left over"));
}

#[test]
fn magic_and_version_are_checked() {
    let mut bytes = cnn();
    bytes[0] = b'X';
    assert!(decode(&bytes).unwrap_err().to_string().contains("not an encoded graph"));
    let mut bytes = cnn();
    bytes[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(&(VERSION + 1).to_le_bytes());
    let e = decode(&bytes).unwrap_err().to_string();
    assert!(e.contains("made by another systole version") && e.contains("rebuild it with `systole compile`"), "{e}");
}

#[test]
fn forged_weight_count_does_not_allocate() {
    // The first value's name length, forged to 2^62: refused before any allocation.
    let mut bytes = cnn();
    let at = MAGIC.len() + 4 + 8 + bytes[MAGIC.len() + 4] as usize + 8;
    bytes[at..at + 8].copy_from_slice(&(1u64 << 62).to_le_bytes());
    let e = decode(&bytes).unwrap_err().to_string();
    assert!(e.contains("exceed"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn changed_bytes_never_panic(at in any::<prop::sample::Index>(), byte in any::<u8>(), at2 in any::<prop::sample::Index>()) {
        let mut bytes = cnn();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        let j = at2.index(bytes.len());
        bytes[j] = bytes[j].wrapping_add(1);
        // Decoding may succeed (a changed weight is still a graph), but never panics.
        let _ = decode(&bytes);
    }
}

fn digits_cnn() -> Graph {
    compiler::onnx::import(include_bytes!("../../examples/models/digits_cnn_nm24.onnx")).unwrap()
}

/// Square arrays and a non-square one (fewer columns than rows).
fn configs() -> Vec<HwConfig> {
    let mut narrow = HwConfig::tiny_4x4();
    narrow.name = "tiny-8x4".into();
    narrow.array.rows = 8;
    narrow.validate().unwrap();
    vec![HwConfig::tiny_4x4(), narrow, HwConfig::default_16x16()]
}

/// Lowers `g` for `cfg`: the recorded graph decodes with the program's data
/// to `g`, and every conv and dense layer's weights are a reference (read
/// against zeroed data they are zeros), so the file holds them once.
fn assert_records_the_graph_once(g: &Graph, cfg: &HwConfig) {
    let p = compiler::lower::lower(g, cfg).unwrap().program;
    let p = isa::program::Program::from_bytes(&p.to_bytes()).unwrap();
    let back = decode_with_data(&p.meta.graph, &p.data).unwrap_or_else(|e| panic!("{}: {e}", cfg.name));
    assert!(back == *g, "{} on {}: the recorded graph is not the model", g.name, cfg.name);
    let zeroed = decode_with_data(&p.meta.graph, &vec![0; p.data.len()]).unwrap();
    let mut gemms = 0;
    for n in &zeroed.nodes {
        let w = match &n.op {
            Op::Conv(c) => &c.weights,
            Op::Dense(d) => &d.weights,
            _ => continue,
        };
        gemms += 1;
        assert!(w.iter().all(|&v| v == 0), "{}: `{}` stores its weights raw", cfg.name, n.name);
    }
    assert!(gemms > 0);
}

#[test]
fn compiled_programs_record_the_model_with_weights_once() {
    let tiny = parse(include_str!("../../examples/models/tiny_cnn.stm")).unwrap();
    let digits = digits_cnn();
    for cfg in configs() {
        assert_records_the_graph_once(&tiny, &cfg);
        assert_records_the_graph_once(&digits, &cfg);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// A compiled program's graph (references into its data) with changed
    /// bytes: an error or a graph, never a panic or a huge allocation.
    #[test]
    fn changed_bytes_of_a_referencing_graph_never_panic(at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        thread_local! {
            static PROGRAM: isa::program::Program =
                compiler::lower::lower(&digits_cnn(), &HwConfig::tiny_4x4()).unwrap().program;
        }
        PROGRAM.with(|p| {
            let mut bytes = p.meta.graph.clone();
            let i = at.index(bytes.len());
            bytes[i] = byte;
            let _ = decode_with_data(&bytes, &p.data);
        });
    }
}
