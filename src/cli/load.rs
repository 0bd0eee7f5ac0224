//! Reading the inputs every command shares: the hardware configuration,
//! the energy table and `.sbin` programs, with errors that name the file.

use super::error::{CliError, Result};
use super::files::{read_input, read_input_text, InputKind};
use isa::program::{Program, ProgramError};
use isa::HwConfig;
use sim::energy::EnergyTable;
use std::path::Path;

/// Reads and validates a hardware configuration (TOML).
pub fn config(path: &Path) -> Result<HwConfig> {
    let text = read_input_text(path, InputKind::Toml)?;
    HwConfig::from_toml(&text).map_err(|e| CliError::input(toml_error(path, &e.to_string())))
}

/// A TOML file's error: the parsers' messages are one line, `line L, column C: reason`.
fn toml_error(path: &Path, message: &str) -> String {
    format!("{}: {message}", path.display())
}

/// Reads and validates an energy table (TOML), or the default table.
pub fn energy_table(path: Option<&Path>) -> Result<EnergyTable> {
    let Some(path) = path else {
        return Ok(EnergyTable::default());
    };
    let text = read_input_text(path, InputKind::Toml)?;
    EnergyTable::from_toml(&text).map_err(|e| CliError::input(toml_error(path, &e.to_string())))
}

/// Reads and validates a `.sbin` program; returns it with the file's bytes.
pub fn program(path: &Path) -> Result<(Program, Vec<u8>)> {
    let bytes = read_input(path, InputKind::Program)?;
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
