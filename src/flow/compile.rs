//! Compiling a model: import (ONNX, or the `.stm` text format) into the
//! quantized IR, lower it for a configuration into a checked program, and
//! read a program back. `systole compile`, `sweep` and the Python package
//! call these.

use super::files::{read_input, read_input_text, InputKind};
use super::{FlowError, Result};
use compiler::gemm::WeightChoice;
use compiler::ir::Graph;
use compiler::lower::Lowered;
use isa::program::{Program, ProgramError};
use isa::HwConfig;
use std::path::{Path, PathBuf};

/// The model formats `compile` reads, by file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Onnx,
    Text,
}

/// The format of a model file, from its extension.
pub fn format_of(path: &Path) -> Result<Format> {
    let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
    match ext.as_deref() {
        Some("onnx") => Ok(Format::Onnx),
        Some("stm") => Ok(Format::Text),
        Some(other) => Err(FlowError::input(format!(
            "{}: unknown model format `.{other}` (expected a .onnx or a .stm file)",
            path.display()
        ))),
        None => Err(FlowError::input(format!(
            "{}: no file extension, so no model format (expected a .onnx or a .stm file)",
            path.display()
        ))),
    }
}

/// Reads and imports a model file into the quantized IR.
pub fn import(path: &Path) -> Result<Graph> {
    let name = path.display().to_string();
    match format_of(path)? {
        Format::Onnx => import_onnx(&read_input(path, InputKind::Onnx)?, &name),
        Format::Text => {
            let text = read_input_text(path, InputKind::TextModel)?;
            // `file("PATH")` references resolve relative to the model's directory.
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let mut loader = |reference: &str| -> std::result::Result<compiler::text::NpyArray, String> {
                let file = dir.join(reference);
                let bytes = read_input(&file, InputKind::Npy).map_err(|e| e.to_string())?;
                compiler::text::load_npy(&bytes).map_err(|e| format!("{}: {e}", file.display()))
            };
            compiler::text::parse_with(&text, &mut loader)
                .map_err(|e| FlowError::input(format!("{name}:{}:{}: {}", e.line, e.column, e.message)))
        }
    }
}

/// Imports an ONNX model's bytes; `name` names it in errors.
pub fn import_onnx(bytes: &[u8], name: &str) -> Result<Graph> {
    compiler::onnx::import(bytes).map_err(|e| FlowError::input(format!("{name}: {e}")))
}

/// Lowers `graph` for `cfg`, as `batch` inferences at once (`compile
/// --batch`), into a program checked against the configuration; without
/// `graph_in_program` the program leaves the graph out (`--no-graph`).
/// `model` names the model in errors.
pub fn lower(graph: &Graph, cfg: &HwConfig, batch: u32, graph_in_program: bool, model: &str) -> Result<Lowered> {
    lower_with(graph, cfg, batch, graph_in_program, model, WeightChoice::Auto)
}

/// [`lower`] with the weight formats `weights` allows (`compile --weights
/// dense|auto`): `Auto` runs the layers whose weights are exactly 2:4 on
/// 2:4-sparse tiles when `cfg` has `array.sparsity_2_4`.
pub fn lower_with(
    graph: &Graph,
    cfg: &HwConfig,
    batch: u32,
    graph_in_program: bool,
    model: &str,
    weights: WeightChoice,
) -> Result<Lowered> {
    let graph = compiler::batch::with_batch(graph, batch as usize)
        .map_err(|e| FlowError::input(format!("{model}: cannot compile a batch of {batch}: {e}")))?;
    let mut lowered = compiler::lower::lower_with(&graph, cfg, weights)
        .map_err(|e| FlowError::input(format!("{model}: cannot compile for config `{}`: {e}", cfg.name)))?;
    if !graph_in_program {
        lowered.program.meta.graph = Vec::new();
    }
    lowered
        .program
        .check_config(cfg)
        .map_err(|e| FlowError::input(format!("{model}: the compiled program is invalid: {e}")))?;
    Ok(lowered)
}

/// Decodes and validates a `.sbin` program's bytes; `name` names it in errors.
pub fn decode_program(bytes: &[u8], name: &str) -> Result<Program> {
    Program::from_bytes(bytes).map_err(|e| match e {
        // A good file of another version: say so, not "invalid".
        ProgramError::UnsupportedFormat { .. } | ProgramError::IsaVersion { .. } => {
            FlowError::input(format!("{name}: {e}"))
        }
        _ => FlowError::input(format!("{name}: not a valid systole program: {e}")),
    })
}

/// Reads and validates a `.sbin` program; returns it with the file's bytes.
pub fn read_program(path: &Path) -> Result<(Program, Vec<u8>)> {
    let bytes = read_input(path, InputKind::Program)?;
    let prog = decode_program(&bytes, &path.display().to_string())?;
    Ok((prog, bytes))
}
