//! Documentation generated from the ISA's tables, so `isa/ISA.md` cannot
//! drift from the code: a test compares the generated blocks with the
//! committed document (`UPDATE_EXPECT=1` rewrites them).

use crate::config::KEYS;
use crate::instr::{FieldKind, FIELDS_LO, INSTR_SPECS};
use crate::regs::{Counter, ErrorCode, REGISTERS};
use std::fmt::Write;

/// One table per instruction: field, bits, legal values, meaning.
pub fn instruction_tables() -> String {
    let mut s = String::new();
    for spec in INSTR_SPECS {
        writeln!(s, "#### `{}` (opcode 0x{:02x})\n", spec.mnemonic, spec.opcode).unwrap();
        writeln!(s, "{}\n", spec.doc.split_whitespace().collect::<Vec<_>>().join(" ")).unwrap();
        if spec.fields.is_empty() {
            writeln!(s, "No fields.\n").unwrap();
            continue;
        }
        writeln!(s, "| field | bits | legal values | meaning |").unwrap();
        writeln!(s, "|---|---|---|---|").unwrap();
        let mut lo = FIELDS_LO;
        for f in spec.fields {
            let legal = match f.kind {
                FieldKind::Enum(names) => names.join(", "),
                _ => {
                    let (a, b) = f.range();
                    format!("{a}..={b}")
                }
            };
            writeln!(s, "| `{}` | {}..{} | {} | {} |", f.name, lo, lo + f.width, legal, f.doc).unwrap();
            lo += f.width;
        }
        writeln!(s, "\nBits {lo}..256 are reserved (zero).\n").unwrap();
    }
    s
}

/// The register map, the fault codes and the performance counters.
pub fn register_tables() -> String {
    let mut s = String::from("| register | offset | access and meaning |\n|---|---|---|\n");
    for (name, addr, doc) in REGISTERS {
        writeln!(s, "| `{name}` | 0x{addr:02x} | {doc} |").unwrap();
    }
    s.push_str("\n| error code | value | meaning |\n|---|---|---|\n");
    for c in ErrorCode::ALL {
        writeln!(s, "| `{:?}` | {} | {} |", c, c as u32, c.name()).unwrap();
    }
    s.push_str("\n| counter | low word at | meaning |\n|---|---|---|\n");
    for &c in Counter::ALL {
        writeln!(s, "| `{}` | 0x{:03x} | {} |", c.name(), c.addr(), c.doc()).unwrap();
    }
    s
}

/// The configuration reference (docs/CONFIG.md): every key of the
/// hardware TOML with its unit, legal values, default and what it changes.
pub fn config_table() -> String {
    let mut s =
        String::from("| key | unit | legal values | default | changes | meaning |\n|---|---|---|---|---|---|\n");
    for k in KEYS {
        let mut legal = k.legal.text();
        if !k.rule.is_empty() {
            legal = format!("{legal}; {}", k.rule);
        }
        if !k.not_implemented.is_empty() {
            let refused: Vec<String> = k.not_implemented.iter().map(|v| format!("\"{v}\"")).collect();
            legal = format!("{legal} ({} refused: not implemented)", refused.join(", "));
        }
        let default = k.default.map_or_else(|| "required".to_string(), |d| format!("`{d}`"));
        let changes: Vec<&str> = k.changes.iter().map(|e| e.name()).collect();
        let doc = k.doc.split_whitespace().collect::<Vec<_>>().join(" ");
        writeln!(s, "| `{}` | {} | {} | {} | {} | {} |", k.name, k.unit, legal, default, changes.join(", "), doc)
            .unwrap();
    }
    s
}

/// Replaces the text between `<!-- BEGIN GENERATED: name -->` and
/// `<!-- END GENERATED: name -->` in `doc`; None if the markers are missing.
pub fn splice(doc: &str, name: &str, body: &str) -> Option<String> {
    let begin = format!("<!-- BEGIN GENERATED: {name} -->\n");
    let end = format!("<!-- END GENERATED: {name} -->");
    let b = doc.find(&begin)? + begin.len();
    let e = doc[b..].find(&end)? + b;
    Some(format!("{}{}{}", &doc[..b], body, &doc[e..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isa_md_is_up_to_date() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/ISA.md");
        let doc = std::fs::read_to_string(path).expect("isa/ISA.md exists");
        let mut fresh = splice(&doc, "instructions", &instruction_tables()).expect("instructions markers");
        fresh = splice(&fresh, "registers", &register_tables()).expect("registers markers");
        if fresh != doc {
            if std::env::var_os("UPDATE_EXPECT").is_some() {
                std::fs::write(path, &fresh).expect("write ISA.md");
            } else {
                panic!("isa/ISA.md is stale: run `UPDATE_EXPECT=1 cargo test -p isa docs` and commit it");
            }
        }
    }

    #[test]
    fn config_md_is_up_to_date() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/CONFIG.md");
        let doc = std::fs::read_to_string(path).expect("docs/CONFIG.md exists");
        let fresh = splice(&doc, "keys", &config_table()).expect("keys markers");
        if fresh != doc {
            if std::env::var_os("UPDATE_EXPECT").is_some() {
                std::fs::write(path, &fresh).expect("write CONFIG.md");
            } else {
                panic!("docs/CONFIG.md is stale: run `UPDATE_EXPECT=1 cargo test -p isa docs` and commit it");
            }
        }
    }
}
