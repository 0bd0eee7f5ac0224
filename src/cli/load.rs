//! Reading the inputs every command shares: the hardware configuration,
//! the energy table and `.sbin` programs, with errors that name the file.

use super::error::{CliError, Result};
use super::files::{read_bytes, read_text};
use isa::program::{Program, ProgramError};
use isa::HwConfig;
use sim::energy::EnergyTable;
use std::path::Path;

/// Reads and validates a hardware configuration (TOML).
pub fn config(path: &Path) -> Result<HwConfig> {
    let text = read_text(path)?;
    HwConfig::from_toml(&text).map_err(|e| CliError::input(toml_error(path, &e.to_string())))
}

/// One line for a TOML error: `FILE:LINE:COL: message (in `source line`)`
/// from the toml crate's multi-line snippet; other errors as `FILE: message`.
fn toml_error(path: &Path, message: &str) -> String {
    let file = path.display();
    let Some(at) = message.find("TOML parse error at line ") else {
        return format!("{file}: {}", message.trim_end());
    };
    let prefix = &message[..at];
    let mut lines = message[at..].lines();
    let head = lines.next().unwrap_or_default();
    let pos = head.trim_start_matches("TOML parse error at line ");
    let Some((line, col)) = pos.split_once(", column ") else {
        return format!("{file}: {}", message.trim_end());
    };
    // The snippet: `  |`, `5 | text`, `  | ^^^`, then the message.
    let rest: Vec<&str> = lines.collect();
    let source = rest.iter().find_map(|l| l.split_once(" | ").filter(|(n, _)| n.trim() == line).map(|(_, t)| t.trim()));
    let text: Vec<&str> =
        rest.iter().skip_while(|l| l.trim_start().starts_with('|') || l.contains(" | ")).map(|l| l.trim()).collect();
    let text = text.join(", ");
    match source {
        Some(src) if !src.is_empty() => format!("{file}:{line}:{col}: {prefix}{text} (in `{src}`)"),
        _ => format!("{file}:{line}:{col}: {prefix}{text}"),
    }
}

/// Reads and validates an energy table (TOML), or the default table.
pub fn energy_table(path: Option<&Path>) -> Result<EnergyTable> {
    let Some(path) = path else {
        return Ok(EnergyTable::default());
    };
    let text = read_text(path)?;
    EnergyTable::from_toml(&text).map_err(|e| CliError::input(toml_error(path, &e.to_string())))
}

/// Reads and validates a `.sbin` program; returns it with the file's bytes.
pub fn program(path: &Path) -> Result<(Program, Vec<u8>)> {
    let bytes = read_bytes(path)?;
    let prog = Program::from_bytes(&bytes).map_err(|e| {
        let file = path.display();
        match e {
            // A good file of another version: say so, not "invalid".
            ProgramError::UnsupportedFormat { .. } | ProgramError::IsaVersion { .. } => {
                CliError::input(format!("{file}: {e}"))
            }
            _ => CliError::input(format!("{file}: not a valid systole program: {e}")),
        }
    })?;
    Ok((prog, bytes))
}
