//! The graph's binary encoding on damaged input: every truncation, every
//! single-byte change and forged counts give an error, never a panic or a
//! huge allocation. (`decode(encode(g)) == g` on generated graphs is in
//! `text_model.rs`, beside the text format's round trip.)

use compiler::ir_codec::{decode, encode, MAGIC, VERSION};
use compiler::text::parse;
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
    assert!(e.contains("made by another systole version"), "{e}");
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
