//! The unary-op tables (`compiler::lut`) against ONNX Runtime: every entry
//! of 4,256 tables (1,089,536 cases: random quantizations and attributes,
//! int8 and uint8, QLinear ops and DQ -> op -> Q with and without ORT's
//! graph optimizations), made by `tools/ort-fixtures/lut_ops.py`.

use compiler::ir::{ElemType, Quant};
use compiler::lut::{table, UnaryFn};

const DATA: &[u8] = include_bytes!("data/lut_ops.bin");
const RECORD: usize = 32 + 256;

fn f32_at(b: &[u8], at: usize) -> f32 {
    f32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn function(op: u8, a0: f32, a1: f32) -> UnaryFn {
    match op {
        0 => UnaryFn::Identity,
        1 => UnaryFn::Sigmoid,
        2 => UnaryFn::Tanh,
        3 => UnaryFn::HardSigmoid { alpha: a0, beta: a1 },
        4 => UnaryFn::HardSwish,
        5 => UnaryFn::LeakyRelu { alpha: a0 },
        6 => UnaryFn::Clip { min: a0, max: a1 },
        7 => UnaryFn::Clip { min: 0.0, max: f32::INFINITY },
        _ => panic!("unknown op code {op}"),
    }
}

#[test]
fn tables_equal_onnx_runtime() {
    assert_eq!(DATA.len() % RECORD, 0, "whole records");
    let ty = |b: u8| if b == 1 { ElemType::U8 } else { ElemType::I8 };
    // (op name, form) -> (tables, cases, mismatching cases)
    let mut counts = std::collections::BTreeMap::<(String, u8, &str), (usize, usize, usize)>::new();
    let mut first = None;
    for (i, r) in DATA.chunks(RECORD).enumerate() {
        let (op, form, ti, to) = (r[0], r[1], ty(r[2]), ty(r[3]));
        let qi = Quant { scale: f32_at(r, 4), zero_point: i32_at(r, 8) };
        let qo = Quant { scale: f32_at(r, 12), zero_point: i32_at(r, 16) };
        let f = function(op, f32_at(r, 20), f32_at(r, 24));
        let got = table(&f, ti, qi, to, qo);
        let want = &r[32..];
        let bad = got.iter().zip(want).filter(|(a, b)| a != b).count();
        if bad > 0 && first.is_none() {
            let e = got.iter().zip(want).position(|(a, b)| a != b).unwrap();
            first = Some(format!(
                "table {i} ({f:?} {ti:?} {qi:?} -> {qo:?}, form {form}): entry {e} is {} , ORT {}",
                got[e], want[e]
            ));
        }
        let c = counts.entry((f.name().to_string(), form, ti.name())).or_default();
        c.0 += 1;
        c.1 += 256;
        c.2 += bad;
    }
    let form = |f: u8| ["qlinear", "qdq", "qdq-noopt"][f as usize];
    let (mut cases, mut bad) = (0, 0);
    for ((op, f, t), (n, c, b)) in &counts {
        println!("{op:12} {:10} {t}: {n:4} tables, {c:7} cases, {b} mismatches", form(*f));
        cases += c;
        bad += b;
    }
    println!("total: {cases} cases, {bad} mismatches");
    assert!(cases >= 1_000_000);
    assert_eq!(bad, 0, "first: {}", first.unwrap_or_default());
}
