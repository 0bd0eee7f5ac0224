//! Reading the inputs every command shares: the hardware configuration,
//! the energy table and `.sbin` programs, with errors that name the file.

use super::error::Result;
use isa::program::Program;
use isa::HwConfig;
use sim::energy::EnergyTable;
use std::path::Path;

/// Reads and validates a hardware configuration: a TOML file, or a
/// shipped one by name (`systole::flow::hw::config`).
pub fn config(path: &Path) -> Result<HwConfig> {
    Ok(systole::flow::hw::config(path)?)
}

/// Reads and validates an energy table (TOML), or the default table.
pub fn energy_table(path: Option<&Path>) -> Result<EnergyTable> {
    Ok(systole::flow::hw::energy_table(path)?)
}

/// Reads and validates a `.sbin` program; returns it with the file's bytes.
pub fn program(path: &Path) -> Result<(Program, Vec<u8>)> {
    Ok(systole::flow::compile::read_program(path)?)
}
