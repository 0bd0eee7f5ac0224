//! `systole disasm`: a `.sbin` program as re-assemblable text, with its
//! container layout, tensor map and metadata as `;` comments.

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
                t.layout.clone(),
                t.scale.map_or_else(|| "-".to_string(), |v| v.to_string()),
                t.zero_point.map_or_else(|| "-".to_string(), |v| v.to_string()),
            ]);
        }
        s.push_str(&table(";   ", &rows, &[]));
    }
    let _ = writeln!(s, ";");
    // Multi-line text entries (the embedded config and graph) read best as
    // text blocks; the rest as JSON.
    let mut meta_map = prog.meta.clone();
    let texts: Vec<(String, String)> = prog
        .meta
        .iter()
        .filter_map(|(k, v)| v.as_str().filter(|t| t.contains('\n')).map(|t| (k.clone(), t.to_string())))
        .collect();
    for (k, _) in &texts {
        meta_map.remove(k);
    }
    for (k, text) in &texts {
        let _ = writeln!(s, "; {k}:");
        for line in text.lines() {
            let _ = writeln!(s, ";   {line}");
        }
        let _ = writeln!(s, ";");
    }
    let meta = serde_json::Value::Object(meta_map);
    let compact = meta.to_string();
    if compact.len() <= 100 {
        let _ = writeln!(s, "; meta: {compact}");
    } else {
        let _ = writeln!(s, "; meta:");
        let pretty = serde_json::to_string_pretty(&meta).unwrap_or(compact);
        for line in pretty.lines() {
            let _ = writeln!(s, ";   {line}");
        }
    }
    s
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
