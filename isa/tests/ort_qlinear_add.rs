//! `isa::numerics::qadd` is ONNX Runtime's QLinearAdd, bit for bit.
//!
//! Fixture: `tests/data/qlinear_add.bin`, made by
//! `tools/ort-fixtures/qlinear_add.py` (its docstring gives the format and
//! the parameter sets: equal scales, exact ties, log-uniform ratios, sets on
//! which the order of the fixed part's float operations matters, sums beyond
//! the int32 range). Every set holds ORT's output for all 65,536 operand
//! pairs. `cargo test -p isa --test ort_qlinear_add -- --nocapture` prints
//! the counts.

use std::path::Path;

use isa::numerics::{qadd, qadd_params, I8_RANGE, U8_RANGE};

const PAIRS: usize = 1 << 16;

struct Set {
    unsigned: bool,
    scales: [f32; 3],
    zps: [i32; 3],
    out: Vec<u8>,
}

fn le32(b: &[u8], at: usize) -> [u8; 4] {
    b[at..at + 4].try_into().unwrap()
}

fn load() -> Vec<Set> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/qlinear_add.bin");
    let b = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&b[..4], b"QADD", "{}: bad magic", path.display());
    assert_eq!(u32::from_le_bytes(le32(&b, 4)), 1, "{}: version", path.display());
    let sets = u32::from_le_bytes(le32(&b, 8)) as usize;
    let rec = 28 + PAIRS;
    assert_eq!(b.len(), 12 + sets * rec, "{}: length", path.display());
    (0..sets)
        .map(|i| {
            let r = &b[12 + i * rec..][..rec];
            Set {
                unsigned: r[0] == 1,
                scales: [4, 8, 12].map(|o| f32::from_le_bytes(le32(r, o))),
                zps: [16, 20, 24].map(|o| i32::from_le_bytes(le32(r, o))),
                out: r[28..].to_vec(),
            }
        })
        .collect()
}

/// The operand value of byte `x` in the set's type.
fn operand(x: usize, unsigned: bool) -> i32 {
    if unsigned {
        x as i32
    } else {
        x as u8 as i8 as i32
    }
}

#[test]
fn qadd_equals_ort_qlinear_add() {
    let sets = load();
    let (mut cases, mut mismatches) = (0usize, 0usize);
    for (i, s) in sets.iter().enumerate() {
        let [sa, sb, sc] = s.scales;
        let [za, zb, zc] = s.zps;
        let p = qadd_params(sa, sb, sc, za, zb, zc);
        let (qmin, qmax) = if s.unsigned { U8_RANGE } else { I8_RANGE };
        let mut bad = 0usize;
        let mut first = None;
        for (e, &want) in s.out.iter().enumerate() {
            let (a, b) = (operand(e >> 8, s.unsigned), operand(e & 255, s.unsigned));
            let got = qadd(a, b, p, qmin, qmax);
            if got != operand(want as usize, s.unsigned) {
                bad += 1;
                first.get_or_insert((a, b, got, operand(want as usize, s.unsigned)));
            }
        }
        println!(
            "set {i:2} ({}) scales {:?} zero points {:?}: {bad} of {PAIRS} differ{}",
            if s.unsigned { "u8" } else { "i8" },
            s.scales,
            s.zps,
            first.map_or(String::new(), |(a, b, g, w)| format!(" (first: a={a} b={b} qadd={g} ORT={w})")),
        );
        cases += s.out.len();
        mismatches += bad;
    }
    println!("qadd vs ORT QLinearAdd: {mismatches} mismatches in {cases} cases");
    assert!(cases >= 1_000_000, "the fixture must hold at least 1 M cases, has {cases}");
    assert_eq!(mismatches, 0);
}
