//! `systole disasm`: a `.sbin` program as re-assemblable text, with its
//! container layout, tensor map and typed metadata as `;` comments (the
//! config as TOML, the graph in the `.stm` text format).

use super::error::Result;
use super::files::print_stdout;
use super::load;
use super::spec::shape_text;
use super::table::{cells, table, Align};
use clap::Args;
use isa::program::{Program, Section, FORMAT_VERSION};
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct DisasmArgs {
    /// Program to disassemble.
    #[arg(value_name = "PROG.sbin")]
    pub program: PathBuf,
}

/// The header comment block.
pub fn header(name: &str, prog: &Program, sections: &[Section]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "; systole program {name}");
    let _ = writeln!(s, "; container format version {FORMAT_VERSION}, ISA version {}", isa::ISA_VERSION);
    let _ = writeln!(s, "; config `{}`, fingerprint {:#018x}", prog.config_name, prog.fingerprint);
    let _ =
        writeln!(s, "; code: {} instructions ({} bytes) at {:#x}", prog.code.len(), prog.code_bytes(), prog.code_addr);
    let _ = writeln!(s, "; data: {} bytes at {:#x}", prog.data.len(), prog.data_addr);
    let _ = writeln!(
        s,
        "; mem_bytes: {} ({:#x}): the program uses device memory [0, {:#x})",
        prog.mem_bytes, prog.mem_bytes, prog.mem_bytes
    );
    let _ = writeln!(s, ";");
    let _ = writeln!(s, "; sections:");
    let mut rows = vec![cells(&["#", "kind", "offset", "length"])];
    for sec in sections {
        rows.push(vec![
            sec.index.to_string(),
            sec.kind.to_string(),
            format!("{:#x}", sec.offset),
            sec.length.to_string(),
        ]);
    }
    s.push_str(&table(";   ", &rows, &[Align::Right, Align::Left, Align::Right, Align::Right]));
    let _ = writeln!(s, ";");
    if prog.tensors.is_empty() {
        let _ = writeln!(s, "; tensors: none");
    } else {
        let _ = writeln!(s, "; tensors:");
        let mut rows = vec![cells(&["name", "role", "dtype", "shape", "addr", "layout", "scale", "zero_point"])];
        for t in &prog.tensors {
            rows.push(vec![
                t.name.clone(),
                t.role.to_string(),
                t.dtype.to_string(),
                shape_text(&t.shape),
                format!("{:#x}", t.addr),
                t.layout.to_string(),
                t.scale.map_or_else(|| "-".to_string(), |v| v.to_string()),
                t.zero_point.map_or_else(|| "-".to_string(), |v| v.to_string()),
            ]);
        }
        s.push_str(&table(";   ", &rows, &[]));
    }
    let _ = writeln!(s, ";");
    s.push_str(&meta_text(prog));
    s
}

/// The typed metadata: producer, per-layer facts, and the config and the
/// graph as text blocks (TOML, and the `.stm` text format).
fn meta_text(prog: &Program) -> String {
    let mut s = String::new();
    let m = &prog.meta;
    let _ = writeln!(s, "; producer: {}; source: {}", or_dash(&m.producer), or_dash(&m.source));
    if !m.layers.is_empty() {
        let _ = writeln!(s, ";");
        let _ = writeln!(s, "; layers:");
        let mut rows = vec![cells(&[
            "name",
            "op",
            "instructions",
            "MACs",
            "output",
            "shape",
            "dtype",
            "addr",
            "layout",
            "scale",
            "zero_point",
        ])];
        for l in &m.layers {
            rows.push(vec![
                l.name.clone(),
                l.op.to_string(),
                format!("{}..{}", l.first, l.last),
                l.macs.to_string(),
                l.value.clone(),
                shape_text(&l.shape),
                l.dtype.to_string(),
                format!("{:#x}", l.addr),
                l.layout.to_string(),
                l.scale.to_string(),
                l.zero_point.to_string(),
            ]);
        }
        s.push_str(&table(";   ", &rows, &[]));
    }
    if let Some(cfg) = &m.config {
        let _ = writeln!(s, ";");
        let _ = writeln!(s, "; config:");
        for line in cfg.to_toml().lines() {
            let _ = writeln!(s, "{}", format!(";   {line}").trim_end());
        }
    }
    if !m.graph.is_empty() {
        let _ = writeln!(s, ";");
        match compiler::ir_codec::decode_with_data(&m.graph, &prog.data) {
            Ok(g) => {
                let _ = writeln!(s, "; graph ({} bytes encoded):", m.graph.len());
                for line in compiler::text::print(&g).lines() {
                    let _ = writeln!(s, "{}", format!(";   {line}").trim_end());
                }
            }
            Err(e) => {
                let _ = writeln!(s, "; graph ({} bytes encoded): does not decode: {e}", m.graph.len());
            }
        }
    }
    s
}

fn or_dash(text: &str) -> &str {
    if text.is_empty() {
        "-"
    } else {
        text
    }
}

/// The code as assembly, one instruction per line with its index aligned
/// after it as a comment.
pub fn code_text(prog: &Program) -> String {
    let texts: Vec<String> = prog.code.iter().map(ToString::to_string).collect();
    let width = texts.iter().map(String::len).max().unwrap_or(0);
    let mut s = String::new();
    for (i, t) in texts.iter().enumerate() {
        let _ = writeln!(s, "{t:<width$}  ; [{i}]");
    }
    s
}

pub fn run(args: &DisasmArgs) -> Result<()> {
    let (prog, bytes) = load::program(&args.program)?;
    // `from_bytes` succeeded, so the framing is valid.
    let sections = Program::sections(&bytes).unwrap_or_default();
    let name = args.program.display().to_string();
    let mut out = header(&name, &prog, &sections);
    out.push('\n');
    out.push_str(&code_text(&prog));
    print_stdout(&out)
}
