//! The Verilog header generated from the ISA's tables: the RTL's only source
//! of opcodes, field positions, enum values, register addresses, fault codes,
//! counter indices and timing constants (docs/DESIGN.md §3, §6).
//!
//! [`header()`] returns the text of `rtl/include/systole_isa.vh`: plain
//! `` `define``s inside an include guard, because yosys 0.23 rejects SV
//! packages (docs/DESIGN.md §6) and a `` `define`` is accepted by every tool. Every
//! value is computed from the tables (`INSTR_SPECS`, `REGISTERS`,
//! `ErrorCode::ALL`, `Counter::ALL`) or names a Rust constant through
//! `stringify!`, so nothing is typed twice. A test compares the committed
//! file with [`header()`]; `UPDATE_EXPECT=1 cargo test -p isa --lib verilog`
//! rewrites it.
//!
//! Names (all prefixed `SYS_`):
//! - `SYS_OP_<MNEMONIC>`: opcodes; `SYS_OPCODE_LO/_W`, `SYS_DEPS_LO/_W`,
//!   `SYS_DEP_<FLAG>` (bit position of each dependency flag in the
//!   instruction word), `SYS_FIELDS_LO`, `SYS_INSTR_BITS`, `SYS_INSTR_BYTES`;
//! - `SYS_<MNEMONIC>_<FIELD>_LO`, `_W`, `_HI` (inclusive), so a field is
//!   `` instr[`SYS_LOAD_DRAM_HI:`SYS_LOAD_DRAM_LO] `` or
//!   `` instr[`SYS_LOAD_DRAM_LO +: `SYS_LOAD_DRAM_W] ``; `_SIGNED` is 1 for
//!   two's-complement fields; `SYS_<MNEMONIC>_END` is the first reserved bit;
//! - `SYS_<ENUM>_<VALUE>` and `SYS_<ENUM>_W` for the enumerations
//!   (`BUF`, `ELEM`, `WFMT`, `QUEUE`, `VOP`, `VRED`);
//! - `SYS_REG_<NAME>` (byte offsets), `SYS_CTRL_START`, `SYS_STATUS_<S>`;
//! - `SYS_ERR_<CODE>`, `SYS_ERR_W`; `SYS_CNT_<COUNTER>`, `SYS_CNT_COUNT`;
//! - the constants of [`crate::timing`] under their own names, and
//!   `` `SYS_ARRAY_LATENCY(rows, cols) `` for [`timing::array_latency`];
//! - the quantized ranges of [`crate::numerics`].
//!
//! Values are unsized Verilog integers (32-bit), which Verilator's `-Wall`
//! accepts against narrower operands without width warnings; negative values
//! are parenthesised.

use crate::instr::{Deps, FieldKind, FieldSpec, Finish, Instr, FIELDS_LO, INSTR_BYTES, INSTR_SPECS};
use crate::regs::{Counter, ErrorCode, REGISTERS};
use crate::{numerics, regs, timing, ISA_VERSION};
use std::fmt::Write;

/// Where the committed header lives, relative to the `isa` crate.
pub const HEADER_PATH: &str = "../rtl/include/systole_isa.vh";

/// The enumerations, each named after its Rust constants' prefix and given
/// by one field that uses it (`(enum, mnemonic, field)`). A test checks that
/// every enum field of every instruction uses one of these.
const ENUMS: &[(&str, &str, &str)] = &[
    ("BUF", "load", "buf"),
    ("ELEM", "matmul", "in_type"),
    ("WFMT", "ldw", "wfmt"),
    ("QUEUE", "sync", "queue"),
    ("VOP", "vop", "op"),
    ("VRED", "vred", "op"),
    ("IDX", "load", "idx"),
    ("ZFMT", "load", "zfmt"),
];

/// `(name, value)` pairs of Rust constants, named by `stringify!`.
macro_rules! named {
    ($($path:ident :: $name:ident),* $(,)?) => {
        [$( (stringify!($name), $path::$name as i64) ),*]
    };
}

/// Bit position of every set bit of an encoded instruction.
fn set_bits(bytes: &[u8; INSTR_BYTES]) -> Vec<u32> {
    (0..8 * INSTR_BYTES as u32).filter(|&b| bytes[(b / 8) as usize] >> (b % 8) & 1 != 0).collect()
}

/// The dependency flags, with their bit position in the instruction word
/// (found by encoding a FINISH that carries only that flag).
fn dep_flags() -> Vec<(&'static str, u32)> {
    let flags = [
        ("POP_PREV", Deps { pop_prev: true, ..Deps::NONE }),
        ("POP_NEXT", Deps { pop_next: true, ..Deps::NONE }),
        ("PUSH_PREV", Deps { push_prev: true, ..Deps::NONE }),
        ("PUSH_NEXT", Deps { push_next: true, ..Deps::NONE }),
    ];
    let plain = set_bits(&Instr::Finish(Finish { deps: Deps::NONE }).encode());
    flags
        .iter()
        .map(|&(name, deps)| {
            let bits: Vec<u32> =
                set_bits(&Instr::Finish(Finish { deps }).encode()).into_iter().filter(|b| !plain.contains(b)).collect();
            assert_eq!(bits.len(), 1, "dependency flag {name} sets one bit");
            (name, bits[0])
        })
        .collect()
}

/// Each field of an instruction with its lowest bit, in table order.
pub fn field_positions(fields: &'static [FieldSpec]) -> Vec<(&'static FieldSpec, u32)> {
    let mut lo = FIELDS_LO;
    fields
        .iter()
        .map(|f| {
            let at = lo;
            lo += f.width;
            (f, at)
        })
        .collect()
}

fn enum_names(mnemonic: &str, field: &str) -> (&'static [&'static str], u32) {
    let spec = INSTR_SPECS.iter().find(|s| s.mnemonic == mnemonic).expect("ENUMS names an instruction");
    let f = spec.fields.iter().find(|f| f.name == field).expect("ENUMS names a field");
    match f.kind {
        FieldKind::Enum(names) => (names, f.width),
        _ => panic!("{mnemonic}.{field} is not an enum field"),
    }
}

/// `CamelCase` to `UPPER_SNAKE`.
fn upper_snake(camel: &str) -> String {
    let mut s = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            s.push('_');
        }
        s.push(c.to_ascii_uppercase());
    }
    s
}

/// A Verilog integer literal (negative values parenthesised).
fn lit(v: i64) -> String {
    if v < 0 {
        format!("({v})")
    } else {
        v.to_string()
    }
}

struct Out {
    text: String,
}

impl Out {
    fn section(&mut self, title: &str) {
        write!(self.text, "\n// {title}\n").unwrap();
    }

    fn define(&mut self, name: &str, value: impl AsRef<str>) {
        writeln!(self.text, "`define SYS_{name} {}", value.as_ref()).unwrap();
    }

    fn int(&mut self, name: &str, v: i64) {
        self.define(name, lit(v));
    }

    fn hex(&mut self, name: &str, v: u32) {
        self.define(name, format!("'h{v:02x}"));
    }
}

/// The text of `rtl/include/systole_isa.vh`.
pub fn header() -> String {
    let mut o = Out { text: String::new() };
    o.text.push_str(
        "// systole ISA constants for the RTL. GENERATED by `isa::verilog::header()`\n\
         // from the tables of the `isa` crate: do not edit. After changing the ISA,\n\
         // run `UPDATE_EXPECT=1 cargo test -p isa --lib verilog` and commit this file.\n\
         `ifndef SYSTOLE_ISA_VH\n\
         `define SYSTOLE_ISA_VH\n",
    );
    o.section("ISA version");
    o.int("ISA_VERSION", ISA_VERSION as i64);

    o.section("Encoding: opcode in bits 0..8, dependency flags, fields from SYS_FIELDS_LO up");
    o.int("INSTR_BYTES", INSTR_BYTES as i64);
    o.int("INSTR_BITS", 8 * INSTR_BYTES as i64);
    o.int("OPCODE_LO", 0);
    o.int("OPCODE_W", u8::BITS as i64);
    let deps = dep_flags();
    let deps_lo = deps.iter().map(|d| d.1).min().expect("flags");
    let deps_hi = deps.iter().map(|d| d.1).max().expect("flags");
    o.int("DEPS_LO", deps_lo as i64);
    o.int("DEPS_W", (deps_hi - deps_lo + 1) as i64);
    for (name, bit) in &deps {
        o.int(&format!("DEP_{name}"), *bit as i64);
    }
    o.int("FIELDS_LO", FIELDS_LO as i64);

    o.section("Opcodes");
    for s in INSTR_SPECS {
        o.define(&format!("OP_{}", s.mnemonic.to_uppercase()), format!("'h{:02x}", s.opcode));
    }

    for s in INSTR_SPECS {
        let m = s.mnemonic.to_uppercase();
        o.section(&format!("{} fields: _LO lowest bit, _W width, _HI highest bit", s.mnemonic));
        let mut end = FIELDS_LO;
        for (f, lo) in field_positions(s.fields) {
            let n = format!("{m}_{}", f.name.to_uppercase());
            o.int(&format!("{n}_LO"), lo as i64);
            o.int(&format!("{n}_W"), f.width as i64);
            o.int(&format!("{n}_HI"), (lo + f.width - 1) as i64);
            if f.kind == FieldKind::Signed {
                o.int(&format!("{n}_SIGNED"), 1);
            }
            end = lo + f.width;
        }
        o.int(&format!("{m}_END"), end as i64);
    }

    o.section("Enumerations");
    for &(name, mnemonic, field) in ENUMS {
        let (names, width) = enum_names(mnemonic, field);
        o.int(&format!("{name}_W"), width as i64);
        for (v, n) in names.iter().enumerate() {
            o.int(&format!("{name}_{}", n.to_uppercase()), v as i64);
        }
    }

    o.section("Registers: byte offsets of the AXI4-Lite slave; 32-bit registers");
    for &(name, addr, _) in REGISTERS {
        o.hex(&format!("REG_{name}"), addr);
    }
    for (name, v) in
        named!(regs::CTRL_START, regs::STATUS_IDLE, regs::STATUS_RUNNING, regs::STATUS_DONE, regs::STATUS_FAULT)
    {
        o.int(name, v);
    }

    o.section("Fault codes (ERROR_CODE)");
    let max_code = ErrorCode::ALL.iter().map(|&c| c as u32).max().expect("codes");
    o.int("ERR_W", (u32::BITS - max_code.leading_zeros()) as i64);
    for c in ErrorCode::ALL {
        o.int(&format!("ERR_{}", upper_snake(&format!("{c:?}"))), c as i64);
    }

    o.section("Performance counters: counter i is 64 bits at SYS_REG_COUNTERS + 8 i");
    o.int("CNT_COUNT", Counter::COUNT as i64);
    for &c in Counter::ALL {
        o.int(&format!("CNT_{}", c.name().to_uppercase()), c as i64);
    }

    o.section("Timing (isa::timing)");
    for (name, v) in named!(
        timing::QUEUE_DEPTH,
        timing::TOKEN_MAX,
        timing::FETCH_BUFFER,
        timing::FETCH_BLOCK,
        timing::BURST_MAX_BEATS,
        timing::BURST_BOUNDARY,
        timing::WATCHDOG_CYCLES,
        timing::REQUANT_OVERHEAD,
        timing::VMAX_OVERHEAD,
        timing::VADD_OVERHEAD,
        timing::VLUT_OVERHEAD,
        timing::LUT_ENTRIES,
        timing::VEC_LATENCY,
        timing::VEC_ADD_LATENCY,
        timing::VEC_SIMPLE_CYCLES,
        timing::VQUANT_CYCLES,
    ) {
        o.int(name, v);
    }
    // The vector unit's lane cycles per element of each `vop` op.
    for (name, c) in crate::instr::VOP_NAMES.iter().zip(timing::VOP_CYCLES) {
        o.int(&format!("VOP_CYCLES_{}", name.to_uppercase()), c as i64);
    }
    let (c0, cr, cc) = array_latency_coefficients();
    o.define("ARRAY_LATENCY(rows, cols)", format!("({} * (rows) + {} * (cols) + {})", lit(cr), lit(cc), lit(c0)));

    o.section("Numerics (isa::numerics)");
    o.int("I8_MIN", numerics::I8_RANGE.0 as i64);
    o.int("I8_MAX", numerics::I8_RANGE.1 as i64);
    o.int("U8_MIN", numerics::U8_RANGE.0 as i64);
    o.int("U8_MAX", numerics::U8_RANGE.1 as i64);

    o.text.push_str("\n`endif // SYSTOLE_ISA_VH\n");
    o.text
}

/// `timing::array_latency` is affine in (rows, cols): its coefficients
/// `(constant, per row, per column)`, read off the function (a test checks
/// the function is affine).
fn array_latency_coefficients() -> (i64, i64, i64) {
    let at = |r, c| timing::array_latency(r, c) as i64;
    let c0 = at(0, 0);
    (c0, at(1, 0) - c0, at(0, 1) - c0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_header_is_up_to_date() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(HEADER_PATH);
        let fresh = header();
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != fresh {
            if std::env::var_os("UPDATE_EXPECT").is_some() {
                std::fs::write(&path, &fresh).expect("write rtl/include/systole_isa.vh");
            } else {
                panic!(
                    "rtl/include/systole_isa.vh is stale: run `UPDATE_EXPECT=1 cargo test -p isa --lib verilog` and commit it"
                );
            }
        }
    }

    fn defines() -> Vec<(String, String)> {
        header()
            .lines()
            .filter_map(|l| l.strip_prefix("`define "))
            .map(|l| {
                let (name, value) = l.split_once(' ').unwrap_or((l, ""));
                (name.to_string(), value.to_string())
            })
            .collect()
    }

    fn value(name: &str) -> i64 {
        let v = defines().into_iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{name} defined")).1;
        let v = v.trim_start_matches('(').trim_end_matches(')');
        match v.strip_prefix("'h") {
            Some(h) => i64::from_str_radix(h, 16).unwrap(),
            None => v.parse().unwrap(),
        }
    }

    #[test]
    fn names_are_unique_and_prefixed() {
        let mut seen = std::collections::HashSet::new();
        for (n, _) in defines() {
            assert!(n.starts_with("SYS_") || n == "SYSTOLE_ISA_VH", "{n}");
            assert!(seen.insert(n.clone()), "{n} defined twice");
        }
    }

    /// The field positions agree with the encoder: setting one field to a
    /// value with its lowest and highest legal bits set touches exactly
    /// those bits of the encoding.
    #[test]
    fn field_positions_match_the_encoder() {
        for s in INSTR_SPECS {
            let m = s.mnemonic.to_uppercase();
            let base = Instr::from_values(s.mnemonic, Deps::NONE, &vec![0; s.fields.len()]).unwrap();
            assert_eq!(base.encode()[0], s.opcode);
            assert_eq!(value(&format!("SYS_OP_{m}")), s.opcode as i64);
            let plain = set_bits(&base.encode());
            for (i, f) in s.fields.iter().enumerate() {
                let n = format!("SYS_{m}_{}", f.name.to_uppercase());
                let (lo, w) = (value(&format!("{n}_LO")) as u32, value(&format!("{n}_W")) as u32);
                assert_eq!(value(&format!("{n}_HI")) as u32, lo + w - 1);
                let raw: u64 = match f.kind {
                    FieldKind::Enum(names) => names.len() as u64 - 1,
                    _ => 1 | 1 << (w - 1),
                };
                let mut values = vec![0i64; s.fields.len()];
                values[i] = f.from_raw(raw);
                let bits: Vec<u32> = set_bits(&Instr::from_values(s.mnemonic, Deps::NONE, &values).unwrap().encode())
                    .into_iter()
                    .filter(|b| !plain.contains(b))
                    .collect();
                let expect: Vec<u32> = (0..w).filter(|b| raw >> b & 1 != 0).map(|b| lo + b).collect();
                assert_eq!(bits, expect, "{n}");
            }
        }
    }

    #[test]
    fn dependency_flags_follow_the_opcode() {
        assert_eq!(value("SYS_DEPS_LO"), value("SYS_OPCODE_W"));
        assert_eq!(value("SYS_DEPS_W"), 4);
        assert_eq!(value("SYS_DEP_POP_PREV"), 8);
        assert_eq!(value("SYS_DEP_PUSH_NEXT"), 11);
        assert!(value("SYS_DEPS_LO") + value("SYS_DEPS_W") <= value("SYS_FIELDS_LO"));
    }

    #[test]
    fn every_enum_field_is_covered() {
        for s in INSTR_SPECS {
            for f in s.fields {
                if let FieldKind::Enum(names) = f.kind {
                    assert!(
                        ENUMS.iter().any(|&(_, m, n)| enum_names(m, n) == (names, f.width)),
                        "{}.{} uses an enumeration missing from ENUMS",
                        s.mnemonic,
                        f.name
                    );
                }
            }
        }
        use crate::instr::*;
        assert_eq!(value("SYS_BUF_SPAD"), BUF_SPAD as i64);
        assert_eq!(value("SYS_BUF_ACC"), BUF_ACC as i64);
        assert_eq!(value("SYS_ELEM_I8"), ELEM_I8 as i64);
        assert_eq!(value("SYS_ELEM_U8"), ELEM_U8 as i64);
        assert_eq!(value("SYS_IDX_NONE"), IDX_NONE as i64);
        assert_eq!(value("SYS_IDX_I64"), IDX_I64 as i64);
        assert_eq!(value("SYS_WFMT_I8"), WFMT_I8 as i64);
        assert_eq!(value("SYS_WFMT_I8S24"), WFMT_I8_S24 as i64);
        assert_eq!(value("SYS_WFMT_I4"), WFMT_I4 as i64);
        assert_eq!(value("SYS_WFMT_I4S24"), WFMT_I4_S24 as i64);
        for q in Queue::ALL {
            assert_eq!(value(&format!("SYS_QUEUE_{}", q.name().to_uppercase())), q as i64);
        }
    }

    #[test]
    fn registers_codes_counters() {
        for &(name, addr, _) in REGISTERS {
            assert_eq!(value(&format!("SYS_REG_{name}")), addr as i64);
        }
        assert_eq!(value("SYS_ERR_DMA_OUT_OF_WINDOW"), ErrorCode::DmaOutOfWindow as i64);
        assert_eq!(value("SYS_ERR_TOKEN_OVERFLOW"), ErrorCode::TokenOverflow as i64);
        for c in ErrorCode::ALL {
            assert!((c as i64) < 1 << value("SYS_ERR_W"));
        }
        assert_eq!(value("SYS_CNT_COUNT"), Counter::COUNT as i64);
        assert_eq!(value("SYS_CNT_DRAM_READ_BYTES"), Counter::DramReadBytes as i64);
        assert_eq!(value("SYS_STATUS_FAULT"), regs::STATUS_FAULT as i64);
        assert_eq!(value("SYS_WATCHDOG_CYCLES"), timing::WATCHDOG_CYCLES as i64);
        assert_eq!(value("SYS_I8_MIN"), -128);
    }

    #[test]
    fn array_latency_is_affine() {
        let (c0, cr, cc) = array_latency_coefficients();
        for r in 0..=64u32 {
            for c in 0..=64u32 {
                assert_eq!(timing::array_latency(r, c) as i64, c0 + cr * r as i64 + cc * c as i64);
            }
        }
    }

    #[test]
    fn upper_snake_case() {
        assert_eq!(upper_snake("DmaOutOfWindow"), "DMA_OUT_OF_WINDOW");
        assert_eq!(upper_snake("None"), "NONE");
    }
}
