//! The hardware configuration a command runs on: a TOML file, or one of
//! the configurations shipped in `examples/hw/` by name (`default`, `tiny`,
//! `large`), and the energy table. `--hw` and the Python package's `hw=`
//! resolve through here, so both accept the same configurations.

use super::files::{read_input_text, InputKind};
use super::{FlowError, Result};
use isa::HwConfig;
use sim::energy::EnergyTable;
use std::path::Path;

/// The shipped configurations, by name: `examples/hw/NAME.toml`.
pub const PRESETS: [(&str, &str); 3] = [
    ("default", include_str!("../../examples/hw/default.toml")),
    ("tiny", include_str!("../../examples/hw/tiny.toml")),
    ("large", include_str!("../../examples/hw/large.toml")),
];

/// A shipped configuration's TOML text, by name.
pub fn preset(name: &str) -> Option<&'static str> {
    PRESETS.iter().find(|(n, _)| *n == name).map(|(_, text)| *text)
}

/// The configuration `--hw ARG` names: the TOML file ARG, or, when no such
/// file exists and ARG is a preset's name, that preset.
pub fn config(arg: &Path) -> Result<HwConfig> {
    if !arg.exists() {
        if let Some(text) = arg.to_str().and_then(preset) {
            return parse(text, &format!("preset `{}`", arg.display()));
        }
    }
    let text = read_input_text(arg, InputKind::Toml)?;
    parse(&text, &arg.display().to_string())
}

/// Parses and validates a configuration's TOML text; errors start with `what`.
pub fn parse(text: &str, what: &str) -> Result<HwConfig> {
    // The parsers' messages are one line, `line L, column C: reason`.
    HwConfig::from_toml(text).map_err(|e| FlowError::input(format!("{what}: {e}")))
}

/// Reads and validates an energy table (TOML), or the default table.
pub fn energy_table(path: Option<&Path>) -> Result<EnergyTable> {
    let Some(path) = path else {
        return Ok(EnergyTable::default());
    };
    let text = read_input_text(path, InputKind::Toml)?;
    EnergyTable::from_toml(&text).map_err(|e| FlowError::input(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_the_shipped_files_and_valid() {
        assert_eq!(config(Path::new("default")).unwrap(), HwConfig::default_16x16());
        assert_eq!(config(Path::new("tiny")).unwrap(), HwConfig::tiny_4x4());
        assert!(config(Path::new("large")).unwrap().array.rows > 16);
        let e = config(Path::new("no-such-preset")).unwrap_err().to_string();
        assert!(e.contains("cannot read no-such-preset: no such file or directory"), "{e}");
    }
}
