//! `HwConfig`: the hardware configuration, read from TOML.
//!
//! The fingerprint covers what decides whether a program is valid (array
//! shape, buffer sizes and banks, dataflow, precisions, sparsity) and not what
//! only changes timing or energy (clock, DRAM timing, technology), so one
//! binary can be timed under many memory systems (docs/DESIGN.md §3).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A validated hardware configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HwConfig {
    /// Free-form name, reported in outputs.
    #[serde(default = "default_name")]
    pub name: String,
    /// Lanes of the vector unit: float32 elements it takes per cycle
    /// (default: `array.cols`). Part of the fingerprint when it differs
    /// from the default, as it fixes the order of reductions
    /// (`numerics::vector::sum_row`) and so the results of a program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector_lanes: Option<u32>,
    pub array: ArrayConfig,
    pub scratchpad: BufferConfig,
    pub accumulator: BufferConfig,
    pub dram: DramConfig,
    #[serde(default)]
    pub clock: ClockConfig,
    #[serde(default)]
    pub tech: TechConfig,
}

fn default_name() -> String {
    "unnamed".to_string()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dataflow {
    WeightStationary,
    OutputStationary,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightPrecision {
    Int8,
    Int4,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrayConfig {
    /// PE rows: the reduction (K) dimension of one weight tile.
    pub rows: u32,
    /// PE columns: the output (N) dimension of one weight tile.
    pub cols: u32,
    #[serde(default = "default_dataflow")]
    pub dataflow: Dataflow,
    /// Weight precisions the array supports (int8 always).
    #[serde(default = "default_precisions")]
    pub weight_precisions: Vec<WeightPrecision>,
    /// 2:4 structured-sparse weights supported.
    #[serde(default)]
    pub sparsity_2_4: bool,
}

fn default_dataflow() -> Dataflow {
    Dataflow::WeightStationary
}
fn default_precisions() -> Vec<WeightPrecision> {
    vec![WeightPrecision::Int8]
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BufferConfig {
    /// Capacity in bytes.
    pub bytes: u64,
    /// Number of banks (a power of two); a bank is one SRAM macro.
    pub banks: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DramConfig {
    /// Data-bus width: bytes per cycle, one beat per cycle.
    pub bytes_per_cycle: u32,
    /// Cycles from a request's acceptance to its first data beat.
    pub latency_cycles: u32,
    /// Requests in flight at once (reads and writes together).
    pub max_outstanding: u32,
    /// Device memory size in MiB (the device's whole address space).
    #[serde(default = "default_dram_size")]
    pub size_mib: u32,
    /// Energy per bit moved, pJ (default: LPDDR4, 8 pJ/bit, docs/ENERGY.md).
    #[serde(default = "default_dram_pj")]
    pub pj_per_bit: f64,
}

fn default_dram_size() -> u32 {
    64
}
fn default_dram_pj() -> f64 {
    8.0
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockConfig {
    pub mhz: f64,
}

impl Default for ClockConfig {
    fn default() -> Self {
        ClockConfig { mhz: 1000.0 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SramCells {
    /// CACTI high-performance cells: fast, leaky (~200 mW/mm²).
    Hp,
    /// CACTI low-standby-power cells (~0.1 mW/mm²).
    Lstp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TechConfig {
    /// Technology node in nm; energy and area scale from 45 nm (docs/ENERGY.md).
    pub node_nm: u32,
    pub sram_cells: SramCells,
}

impl Default for TechConfig {
    fn default() -> Self {
        TechConfig { node_nm: 45, sram_cells: SramCells::Lstp }
    }
}

/// A configuration error: which field, what is wrong, what is legal.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Parse(String),
    #[error("{field} = {value}: {why}")]
    Invalid { field: &'static str, value: String, why: String },
}

/// A TOML error as one line, `line L, column C: reason (in `source line`)`:
/// the toml crate's message without its multi-line snippet, and a reason
/// where it gives none (a control character, even in a comment, is not
/// allowed in TOML). The source line is cut at 80 characters.
pub fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let reason = e.message().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(", ");
    let Some(span) = e.span() else {
        return reason;
    };
    let at = span.start.min(text.len());
    let at = (0..=at).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let reason = match text[at..].chars().next() {
        _ if !reason.is_empty() => reason,
        Some(c) if c.is_control() && c != '\n' => {
            format!("control character U+{:04X} is not allowed in TOML (not even in a comment)", c as u32)
        }
        Some(c) => format!("invalid TOML at `{c}`"),
        None => "unexpected end of the TOML text".to_string(),
    };
    let source = text[at - before.rsplit('\n').next().map_or(0, str::len)..].lines().next().unwrap_or("").trim();
    if source.is_empty() {
        return format!("line {line}, column {column}: {reason}");
    }
    let cut: String = source.chars().take(80).collect();
    let more = if cut.len() < source.len() { "…" } else { "" };
    format!("line {line}, column {column}: {reason} (in `{cut}{more}`)")
}

/// Technology nodes with published scaling factors (docs/ENERGY.md).
pub const SUPPORTED_NODES_NM: [u32; 9] = [45, 65, 32, 28, 22, 16, 14, 10, 7];

fn check(ok: bool, field: &'static str, value: impl fmt::Display, why: &str) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid { field, value: value.to_string(), why: why.to_string() })
    }
}

impl HwConfig {
    /// Parses and validates a TOML configuration.
    pub fn from_toml(text: &str) -> Result<HwConfig, ConfigError> {
        let cfg: HwConfig = toml::from_str(text).map_err(|e| ConfigError::Parse(toml_error(text, &e)))?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("HwConfig serializes")
    }

    /// Checks every field against its legal range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let a = &self.array;
        check((2..=256).contains(&a.rows), "array.rows", a.rows, "must be in 2..=256")?;
        check((2..=256).contains(&a.cols), "array.cols", a.cols, "must be in 2..=256")?;
        check(
            a.weight_precisions.contains(&WeightPrecision::Int8),
            "array.weight_precisions",
            format!("{:?}", a.weight_precisions),
            "must include \"int8\"",
        )?;
        for (name, b, row_bytes) in
            [("scratchpad", &self.scratchpad, a.cols as u64), ("accumulator", &self.accumulator, 4 * a.cols as u64)]
        {
            let (fb, fk) = if name == "scratchpad" {
                ("scratchpad.banks", "scratchpad.bytes")
            } else {
                ("accumulator.banks", "accumulator.bytes")
            };
            check(b.banks.is_power_of_two() && b.banks <= 64, fb, b.banks, "must be a power of two in 1..=64")?;
            let unit = row_bytes * b.banks as u64;
            check(
                b.bytes > 0 && b.bytes % unit == 0,
                fk,
                b.bytes,
                &format!("must be a positive multiple of banks x row bytes = {unit}"),
            )?;
            let rows = b.bytes / row_bytes;
            check(rows <= 65536, fk, b.bytes, &format!("holds {rows} rows; at most 65536 rows are addressable"))?;
        }
        if let Some(l) = self.vector_lanes {
            check((1..=1024).contains(&l), "vector_lanes", l, "must be in 1..=1024")?;
        }
        let d = &self.dram;
        check(
            d.bytes_per_cycle.is_power_of_two() && d.bytes_per_cycle <= 64,
            "dram.bytes_per_cycle",
            d.bytes_per_cycle,
            "must be a power of two in 1..=64",
        )?;
        check(
            d.bytes_per_cycle <= a.cols,
            "dram.bytes_per_cycle",
            d.bytes_per_cycle,
            &format!("must not exceed array.cols = {} (the DMA writes one buffer row per cycle)", a.cols),
        )?;
        check((1..=1024).contains(&d.latency_cycles), "dram.latency_cycles", d.latency_cycles, "must be in 1..=1024")?;
        check((1..=64).contains(&d.max_outstanding), "dram.max_outstanding", d.max_outstanding, "must be in 1..=64")?;
        check((1..=4096).contains(&d.size_mib), "dram.size_mib", d.size_mib, "must be in 1..=4096")?;
        check(d.pj_per_bit.is_finite() && d.pj_per_bit >= 0.0, "dram.pj_per_bit", d.pj_per_bit, "must be >= 0")?;
        check(
            self.clock.mhz.is_finite() && self.clock.mhz > 0.0 && self.clock.mhz <= 10_000.0,
            "clock.mhz",
            self.clock.mhz,
            "must be in (0, 10000]",
        )?;
        check(
            SUPPORTED_NODES_NM.contains(&self.tech.node_nm),
            "tech.node_nm",
            self.tech.node_nm,
            "must be one of 45, 65, 32, 28, 22, 16, 14, 10, 7",
        )?;
        Ok(())
    }

    /// Scratchpad rows (each `array.cols` int8 values wide).
    pub fn spad_rows(&self) -> u32 {
        (self.scratchpad.bytes / self.array.cols as u64) as u32
    }

    /// Accumulator rows (each `array.cols` int32 values wide).
    pub fn acc_rows(&self) -> u32 {
        (self.accumulator.bytes / (4 * self.array.cols as u64)) as u32
    }

    /// Lanes of the vector unit (`vector_lanes`, default `array.cols`).
    pub fn vector_lanes(&self) -> u32 {
        self.vector_lanes.unwrap_or(self.array.cols)
    }

    pub fn dram_bytes(&self) -> u64 {
        self.dram.size_mib as u64 * 1024 * 1024
    }

    pub fn peak_macs_per_cycle(&self) -> u64 {
        self.array.rows as u64 * self.array.cols as u64
    }

    /// 64-bit FNV-1a over the fields that decide program validity.
    pub fn fingerprint(&self) -> u64 {
        let a = &self.array;
        let mut precisions: Vec<&str> = a
            .weight_precisions
            .iter()
            .map(|p| match p {
                WeightPrecision::Int8 => "int8",
                WeightPrecision::Int4 => "int4",
            })
            .collect();
        precisions.sort_unstable();
        precisions.dedup();
        let canonical = format!(
            "isa={};rows={};cols={};dataflow={:?};prec={};sparse24={};spad={}/{};acc={}/{}",
            crate::ISA_VERSION,
            a.rows,
            a.cols,
            a.dataflow,
            precisions.join(","),
            a.sparsity_2_4,
            self.scratchpad.bytes,
            self.scratchpad.banks,
            self.accumulator.bytes,
            self.accumulator.banks
        );
        // Lanes fix the order of the vector unit's reductions; the default
        // (one lane per column) leaves the string, and so every existing
        // fingerprint, unchanged.
        let lanes =
            if self.vector_lanes() == a.cols { String::new() } else { format!(";vlanes={}", self.vector_lanes()) };
        fnv1a64(format!("{canonical}{lanes}").as_bytes())
    }

    /// The 16x16 Gemmini-like default (also `examples/hw/default.toml`).
    pub fn default_16x16() -> HwConfig {
        HwConfig::from_toml(include_str!("../../examples/hw/default.toml")).expect("bundled config is valid")
    }

    /// The 4x4 configuration for fast tests (also `examples/hw/tiny.toml`).
    pub fn tiny_4x4() -> HwConfig {
        HwConfig::from_toml(include_str!("../../examples/hw/tiny.toml")).expect("bundled config is valid")
    }

    /// The 4x4 configuration with a `rows x cols` array, its scratchpad and
    /// accumulator sized per column as the 4x4's (named `tiny-RxC`): the
    /// non-square arrays the tests run everything on.
    pub fn tiny_shaped(rows: u32, cols: u32) -> HwConfig {
        let mut cfg = HwConfig::tiny_4x4();
        cfg.name = format!("tiny-{rows}x{cols}");
        (cfg.array.rows, cfg.array.cols) = (rows, cols);
        cfg.scratchpad.bytes = 2048 * u64::from(cols) * u64::from(cfg.scratchpad.banks);
        cfg.accumulator.bytes = 128 * 4 * u64::from(cols) * u64::from(cfg.accumulator.banks);
        cfg.validate().expect("a shaped tiny config is valid");
        cfg
    }

    /// The 32x32 configuration (also `examples/hw/large.toml`).
    pub fn large_32x32() -> HwConfig {
        HwConfig::from_toml(include_str!("../../examples/hw/large.toml")).expect("bundled config is valid")
    }
}

pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_configs_are_valid() {
        let d = HwConfig::default_16x16();
        assert_eq!((d.array.rows, d.array.cols), (16, 16));
        assert_eq!(d.spad_rows(), 16384);
        assert_eq!(d.acc_rows(), 1024);
        assert_eq!(HwConfig::tiny_4x4().array.rows, 4);
        assert_eq!(HwConfig::large_32x32().array.cols, 32);
    }

    #[test]
    fn errors_name_field_and_range() {
        let text = include_str!("../../examples/hw/default.toml").replace("rows = 16", "rows = 1");
        let err = HwConfig::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("array.rows") && err.contains("2..=256"), "{err}");
        let text = include_str!("../../examples/hw/default.toml").replace("latency_cycles = 100", "latency_cycles = 0");
        let err = HwConfig::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("dram.latency_cycles"), "{err}");
        let err = HwConfig::from_toml("[array]\nrows = 4").unwrap_err().to_string();
        assert!(err.contains("missing field"), "{err}");
        // One line with the position and the reason, also where the toml crate gives none.
        let text = format!("{}# comment \u{1} here\n", include_str!("../../examples/hw/default.toml"));
        let err = HwConfig::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains(", column 11: control character U+0001"), "{err}");
        let err = HwConfig::from_toml("[array]\nrows = \"x\"\n").unwrap_err().to_string();
        assert_eq!(err, "line 2, column 8: invalid type: string \"x\", expected u32 (in `rows = \"x\"`)");
    }

    #[test]
    fn fingerprint_ignores_timing_but_not_shape() {
        let a = HwConfig::default_16x16();
        let mut b = a.clone();
        b.dram.latency_cycles = 300;
        b.clock.mhz = 500.0;
        b.tech.node_nm = 22;
        assert_eq!(a.fingerprint(), b.fingerprint());
        b.scratchpad.bytes /= 2;
        assert_ne!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn vector_lanes_default_to_cols_and_enter_the_fingerprint_only_when_set_otherwise() {
        let a = HwConfig::default_16x16();
        assert_eq!(a.vector_lanes(), 16);
        let mut b = a.clone();
        b.vector_lanes = Some(16);
        assert_eq!(a.fingerprint(), b.fingerprint());
        b.vector_lanes = Some(8);
        assert_ne!(a.fingerprint(), b.fingerprint());
        let text = format!("vector_lanes = 8\n{}", include_str!("../../examples/hw/default.toml"));
        assert_eq!(HwConfig::from_toml(&text).unwrap().vector_lanes(), 8);
        let text = format!("vector_lanes = 0\n{}", include_str!("../../examples/hw/default.toml"));
        let err = HwConfig::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("vector_lanes") && err.contains("1..=1024"), "{err}");
        assert_eq!(HwConfig::from_toml(&b.to_toml()).unwrap(), b);
    }
}
