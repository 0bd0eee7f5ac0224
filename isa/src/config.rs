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
    /// Declared, not implemented: `HwConfig::validate` refuses it.
    OutputStationary,
}

impl Dataflow {
    /// The name in TOML.
    pub fn name(self) -> &'static str {
        match self {
            Dataflow::WeightStationary => "weight-stationary",
            Dataflow::OutputStationary => "output-stationary",
        }
    }
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

/// What changing a configuration key changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// The fingerprint: a program compiled for one value is refused under
    /// another (the compiler's tiling and the legality checks depend on it).
    Fingerprint,
    /// Cycle counts of the same program.
    Timing,
    /// The energy estimate (dynamic or static).
    Energy,
    /// The area estimate.
    Area,
    /// Which programs fit: checked when one is compiled and loaded.
    Capacity,
    /// What reports print (names, times in µs), not cycles.
    Report,
    /// Nothing yet: declared and fingerprinted for instructions to come.
    Nothing,
}

impl Effect {
    pub fn name(self) -> &'static str {
        match self {
            Effect::Fingerprint => "program validity (fingerprint)",
            Effect::Timing => "timing",
            Effect::Energy => "energy",
            Effect::Area => "area",
            Effect::Capacity => "what fits (checked at compile and load)",
            Effect::Report => "reported names and times",
            Effect::Nothing => "nothing yet",
        }
    }
}

/// The legal values of a key; `HwConfig::validate` checks them and the
/// reference (docs/CONFIG.md) prints them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Legal {
    /// An integer in `lo..=hi`.
    Int(u64, u64),
    /// A power of two in `lo..=hi`.
    PowerOfTwo(u64, u64),
    /// A finite real in `lo..=hi`; `lo` itself excluded when `open`.
    Real { lo: f64, open: bool, hi: f64 },
    /// One of these integers.
    IntOf(&'static [u64]),
    /// One of these names (a list key: a list of them).
    Names(&'static [&'static str]),
    /// Any text.
    Text,
    /// True or false.
    Bool,
}

impl Legal {
    /// The legal values as a message says them after `must be`.
    pub fn text(&self) -> String {
        match *self {
            Legal::Int(lo, u64::MAX) => format!(">= {lo}"),
            Legal::Int(lo, hi) => format!("in {lo}..={hi}"),
            Legal::PowerOfTwo(lo, hi) => format!("a power of two in {lo}..={hi}"),
            Legal::Real { lo, open: true, hi } => format!("in ({lo}, {hi}]"),
            Legal::Real { lo, open: false, hi } if hi == f64::INFINITY => format!(">= {lo}"),
            Legal::Real { lo, open: false, hi } => format!("in [{lo}, {hi}]"),
            Legal::IntOf(v) => format!("one of {}", v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")),
            Legal::Names(v) => {
                format!("one of {}", v.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", "))
            }
            Legal::Text => "any text".into(),
            Legal::Bool => "true, false".into(),
        }
    }
}

/// One key of the TOML configuration: the single description that
/// validation and the reference (docs/CONFIG.md) both use.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    /// Dotted TOML path.
    pub name: &'static str,
    pub unit: &'static str,
    pub legal: Legal,
    /// Further rules, involving other keys (checked by `validate`).
    pub rule: &'static str,
    /// The default as TOML; None: the key is required.
    pub default: Option<&'static str>,
    pub changes: &'static [Effect],
    /// Values the type accepts that nothing implements yet: `validate`
    /// refuses them, naming the key and the value.
    pub not_implemented: &'static [&'static str],
    pub doc: &'static str,
}

use Effect::*;

/// Every key of `HwConfig`, in file order.
pub const KEYS: &[Key] = &[
    Key {
        name: "name",
        unit: "",
        legal: Legal::Text,
        rule: "",
        default: Some("\"unnamed\""),
        changes: &[Report],
        not_implemented: &[],
        doc: "Free-form name, printed in reports.",
    },
    Key {
        name: "array.rows",
        unit: "PEs",
        legal: Legal::Int(2, 256),
        rule: "",
        default: None,
        changes: &[Fingerprint, Timing, Energy, Area],
        not_implemented: &[],
        doc: "PE rows: the reduction (K) depth of a weight tile (at most `array.cols` of them see inputs, a \
              scratchpad row being `cols` wide); the array's latency is `rows + cols - 1` cycles.",
    },
    Key {
        name: "array.cols",
        unit: "PEs",
        legal: Legal::Int(2, 256),
        rule: "",
        default: None,
        changes: &[Fingerprint, Timing, Energy, Area],
        not_implemented: &[],
        doc: "PE columns: the output (N) width of a weight tile, and the width of a scratchpad row (int8) and \
              an accumulator row (int32).",
    },
    Key {
        name: "array.dataflow",
        unit: "",
        legal: Legal::Names(&["weight-stationary", "output-stationary"]),
        rule: "",
        default: Some("\"weight-stationary\""),
        changes: &[Fingerprint],
        not_implemented: &["output-stationary"],
        doc: "What stays in the PEs: the weights (`weight-stationary`, the only dataflow the compiler, the \
              model and the RTL implement) or the outputs.",
    },
    Key {
        name: "array.weight_precisions",
        unit: "",
        legal: Legal::Names(&["int8", "int4"]),
        rule: "a list; must include \"int8\"",
        default: Some("[\"int8\"]"),
        changes: &[Fingerprint, Timing, Energy],
        not_implemented: &[],
        doc: "Weight precisions the array supports. With `int4` listed, LDW and MATMUL accept the i4 weight \
              format (two int4 weights per scratchpad byte, sign-extended into the PEs; ISA.md §3 `ldw`) and the \
              compiler stores the weights of a model's int4 layers that way: half the weight bytes in DRAM and \
              in the scratchpad. Without it the i4 format is refused by the legality check and int4 layers run \
              with their weights stored as int8 (the same results).",
    },
    Key {
        name: "array.sparsity_2_4",
        unit: "",
        legal: Legal::Bool,
        rule: "",
        default: Some("false"),
        changes: &[Fingerprint],
        not_implemented: &[],
        doc: "2:4 structured-sparse weights supported: `true` makes the `i8s24` weight format of LDW and MATMUL \
              legal (the PEs select their inputs by 2-bit position, so a pass of an R x C array covers 2R \
              reductions, ISA.md §3) and lets the compiler use it for layers whose weights are 2:4 \
              (`systole compile --weights auto`, the default). With `false`, i8s24 tiles and MATMUL's \
              `a_bstride` are refused by the legality check.",
    },
    Key {
        name: "scratchpad.bytes",
        unit: "bytes",
        legal: Legal::Int(1, u64::MAX),
        rule: "a multiple of banks x array.cols; at most 65536 rows of array.cols bytes",
        default: None,
        changes: &[Fingerprint, Energy, Area],
        not_implemented: &[],
        doc: "Scratchpad capacity (int8 rows of `array.cols` bytes): inputs, weights and outputs of the tiles.",
    },
    Key {
        name: "scratchpad.banks",
        unit: "",
        legal: Legal::PowerOfTwo(1, 64),
        rule: "",
        default: None,
        changes: &[Fingerprint, Energy, Area],
        not_implemented: &[],
        doc: "Scratchpad banks, one SRAM macro each (sizes each macro for energy and area).",
    },
    Key {
        name: "accumulator.bytes",
        unit: "bytes",
        legal: Legal::Int(1, u64::MAX),
        rule: "a multiple of banks x 4 x array.cols; at most 65536 rows of array.cols int32",
        default: None,
        changes: &[Fingerprint, Energy, Area],
        not_implemented: &[],
        doc: "Accumulator capacity (int32 rows of `array.cols` values): the partial sums of the tiles.",
    },
    Key {
        name: "accumulator.banks",
        unit: "",
        legal: Legal::PowerOfTwo(1, 64),
        rule: "",
        default: None,
        changes: &[Fingerprint, Energy, Area],
        not_implemented: &[],
        doc: "Accumulator banks, one SRAM macro each.",
    },
    Key {
        name: "dram.bytes_per_cycle",
        unit: "bytes/cycle",
        legal: Legal::PowerOfTwo(1, 64),
        rule: "at most array.cols (the DMA writes one buffer row per cycle)",
        default: None,
        changes: &[Timing, Energy],
        not_implemented: &[],
        doc: "DRAM data-bus width, one beat per cycle. Energy: the bus moves whole beats.",
    },
    Key {
        name: "dram.latency_cycles",
        unit: "cycles",
        legal: Legal::Int(1, 1024),
        rule: "",
        default: None,
        changes: &[Timing],
        not_implemented: &[],
        doc: "Cycles from a request's acceptance to its first data beat.",
    },
    Key {
        name: "dram.max_outstanding",
        unit: "requests",
        legal: Legal::Int(1, 64),
        rule: "",
        default: None,
        changes: &[Timing],
        not_implemented: &[],
        doc: "DRAM requests in flight at once (reads and writes together).",
    },
    Key {
        name: "dram.size_mib",
        unit: "MiB",
        legal: Legal::Int(1, 4096),
        rule: "",
        default: Some("64"),
        changes: &[Capacity],
        not_implemented: &[],
        doc: "Device memory size: the device's whole address space (program, weights, activations).",
    },
    Key {
        name: "dram.pj_per_bit",
        unit: "pJ/bit",
        legal: Legal::Real { lo: 0.0, open: false, hi: f64::INFINITY },
        rule: "",
        default: Some("8.0"),
        changes: &[Energy],
        not_implemented: &[],
        doc: "Energy per bit moved over the DRAM bus (8: LPDDR4, docs/ENERGY.md).",
    },
    Key {
        name: "clock.mhz",
        unit: "MHz",
        legal: Legal::Real { lo: 0.0, open: true, hi: 10_000.0 },
        rule: "",
        default: Some("1000.0"),
        changes: &[Energy, Report],
        not_implemented: &[],
        doc: "Clock frequency: turns cycles into time (latency in µs, inferences/s) and leakage power into \
              static energy. Cycle counts do not change.",
    },
    Key {
        name: "tech.node_nm",
        unit: "nm",
        legal: Legal::IntOf(&SUPPORTED_NODES_NM_U64),
        rule: "",
        default: Some("45"),
        changes: &[Energy, Area],
        not_implemented: &[],
        doc: "Technology node: energy and area scale from 45 nm by published factors (docs/ENERGY.md).",
    },
    Key {
        name: "tech.sram_cells",
        unit: "",
        legal: Legal::Names(&["hp", "lstp"]),
        rule: "",
        default: Some("\"lstp\""),
        changes: &[Energy],
        not_implemented: &[],
        doc: "SRAM cells: CACTI high-performance (`hp`, fast and leaky) or low-standby-power (`lstp`): the \
              buffers' leakage.",
    },
];

/// The description of key `name` (one of `KEYS`).
pub fn key(name: &str) -> &'static Key {
    KEYS.iter().find(|k| k.name == name).unwrap_or_else(|| panic!("`{name}` is in KEYS"))
}

impl Key {
    fn invalid(&self, value: impl fmt::Display, why: String) -> ConfigError {
        ConfigError::Invalid { field: self.name, value: value.to_string(), why }
    }

    /// An integer value against `legal`.
    fn check_int(&self, v: u64) -> Result<(), ConfigError> {
        let ok = match self.legal {
            Legal::Int(lo, hi) => (lo..=hi).contains(&v),
            Legal::PowerOfTwo(lo, hi) => v.is_power_of_two() && (lo..=hi).contains(&v),
            Legal::IntOf(values) => values.contains(&v),
            other => unreachable!("{}: {other:?} is not an integer rule", self.name),
        };
        match ok {
            true => Ok(()),
            false => Err(self.invalid(v, format!("must be {}", self.legal.text()))),
        }
    }

    /// A real value against `legal`.
    fn check_real(&self, v: f64) -> Result<(), ConfigError> {
        let Legal::Real { lo, open, hi } = self.legal else { unreachable!("{}: not a real", self.name) };
        let above = if open { v > lo } else { v >= lo };
        match v.is_finite() && above && v <= hi {
            true => Ok(()),
            false => Err(self.invalid(v, format!("must be {}", self.legal.text()))),
        }
    }

    /// A name the type accepts, refused when nothing implements it yet.
    fn check_implemented(&self, v: &str) -> Result<(), ConfigError> {
        match self.not_implemented.contains(&v) {
            false => Ok(()),
            true => {
                let usable: Vec<String> = match self.legal {
                    Legal::Names(all) => {
                        all.iter().filter(|n| !self.not_implemented.contains(n)).map(|n| format!("\"{n}\"")).collect()
                    }
                    _ => Vec::new(),
                };
                Err(self.invalid(
                    format!("\"{v}\""),
                    format!(
                        "is not implemented yet (by the compiler, the model or the RTL); use {}",
                        usable.join(" or ")
                    ),
                ))
            }
        }
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
const SUPPORTED_NODES_NM_U64: [u64; 9] = {
    let mut v = [0; 9];
    let mut i = 0;
    while i < 9 {
        v[i] = SUPPORTED_NODES_NM[i] as u64;
        i += 1;
    }
    v
};

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

    /// Checks every field against its legal range (`KEYS`), and refuses
    /// values nothing implements yet.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let a = &self.array;
        key("array.rows").check_int(a.rows.into())?;
        key("array.cols").check_int(a.cols.into())?;
        key("array.dataflow").check_implemented(a.dataflow.name())?;
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
            key(fb).check_int(b.banks.into())?;
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
        key("dram.bytes_per_cycle").check_int(d.bytes_per_cycle.into())?;
        check(
            d.bytes_per_cycle <= a.cols,
            "dram.bytes_per_cycle",
            d.bytes_per_cycle,
            &format!("must not exceed array.cols = {} (the DMA writes one buffer row per cycle)", a.cols),
        )?;
        key("dram.latency_cycles").check_int(d.latency_cycles.into())?;
        key("dram.max_outstanding").check_int(d.max_outstanding.into())?;
        key("dram.size_mib").check_int(d.size_mib.into())?;
        key("dram.pj_per_bit").check_real(d.pj_per_bit)?;
        key("clock.mhz").check_real(self.clock.mhz)?;
        key("tech.node_nm").check_int(self.tech.node_nm.into())?;
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

    /// `v` as dotted keys to leaf values (a list is a leaf).
    fn flatten(prefix: &str, v: &toml::Value, out: &mut Vec<(String, toml::Value)>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let name = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    flatten(&name, v, out);
                }
            }
            leaf => out.push((prefix.to_string(), leaf.clone())),
        }
    }

    fn keys_of(cfg: &HwConfig) -> Vec<(String, toml::Value)> {
        let mut out = Vec::new();
        flatten("", &toml::Value::try_from(cfg).unwrap(), &mut out);
        out
    }

    #[test]
    fn keys_lists_every_key_with_its_default() {
        let full = keys_of(&HwConfig::default_16x16());
        let mut listed: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        let mut have: Vec<&str> = full.iter().map(|(k, _)| k.as_str()).collect();
        listed.sort_unstable();
        have.sort_unstable();
        assert_eq!(listed, have, "KEYS and HwConfig's fields differ");
        // Only the required keys: the rest take the defaults KEYS states.
        let mut minimal = toml::Table::new();
        for (name, v) in &full {
            if key(name).default.is_none() {
                let (table, leaf) = name.split_once('.').unwrap();
                let t = minimal.entry(table).or_insert_with(|| toml::Value::Table(Default::default()));
                t.as_table_mut().unwrap().insert(leaf.to_string(), v.clone());
            }
        }
        let cfg = HwConfig::from_toml(&toml::to_string(&minimal).unwrap()).unwrap();
        for (name, v) in keys_of(&cfg) {
            let k = key(&name);
            let Some(default) = k.default else { continue };
            let want: toml::Value = toml::from_str::<toml::Table>(&format!("x = {default}")).unwrap()["x"].clone();
            assert_eq!(v, want, "{name}: KEYS says the default is {default}");
        }
    }

    /// The default 16x16 with `name` set to `value` (TOML).
    fn with(name: &str, value: &str) -> Result<HwConfig, ConfigError> {
        let mut t: toml::Table = toml::Value::try_from(HwConfig::default_16x16()).unwrap().try_into().unwrap();
        let (table, leaf) = name.split_once('.').unwrap();
        let v: toml::Value = toml::from_str::<toml::Table>(&format!("x = {value}")).unwrap()["x"].clone();
        t[table].as_table_mut().unwrap().insert(leaf.to_string(), v);
        HwConfig::from_toml(&toml::to_string(&t).unwrap())
    }

    #[test]
    fn validation_checks_the_ranges_keys_states() {
        for k in KEYS {
            let (bad, good): (Vec<String>, Vec<String>) = match k.legal {
                Legal::Int(lo, hi) if hi < u32::MAX as u64 => {
                    (vec![(lo - 1).to_string(), (hi + 1).to_string()], vec![lo.to_string(), hi.to_string()])
                }
                Legal::PowerOfTwo(lo, hi) => (vec![(hi * 2).to_string(), "3".into()], vec![lo.to_string()]),
                Legal::IntOf(v) => (vec!["44".into()], v.iter().map(u64::to_string).collect()),
                Legal::Real { lo, open, hi } => {
                    let below = if open { lo } else { lo - 1.0 };
                    let mut bad = vec![format!("{below:.1}"), "nan".into()];
                    if hi.is_finite() {
                        bad.push(format!("{:.1}", hi + 1.0));
                    }
                    (bad, vec![format!("{hi:.1}").replace("inf", "1e9")])
                }
                _ => continue,
            };
            for v in bad {
                let err = with(k.name, &v).unwrap_err().to_string();
                assert!(err.starts_with(&format!("{} = ", k.name)) && err.contains(&k.legal.text()), "{v}: {err}");
            }
            for v in good {
                // A legal value may still break a rule with other keys.
                if let Err(ConfigError::Invalid { field, why, .. }) = with(k.name, &v) {
                    assert!(field != k.name || !why.contains(&k.legal.text()), "{} = {v}: {why}", k.name);
                }
            }
        }
    }

    #[test]
    fn unimplemented_values_are_refused_naming_key_and_value() {
        let err = with("array.dataflow", "\"output-stationary\"").unwrap_err().to_string();
        assert_eq!(
            err,
            "array.dataflow = \"output-stationary\": is not implemented yet (by the compiler, the model or the \
             RTL); use \"weight-stationary\""
        );
        // Declared but not acted on: accepted, and only the fingerprint moves.
        let int4 = with("array.weight_precisions", "[\"int8\", \"int4\"]").unwrap();
        let sparse = with("array.sparsity_2_4", "true").unwrap();
        let base = HwConfig::default_16x16();
        assert_ne!(int4.fingerprint(), base.fingerprint());
        assert_ne!(sparse.fingerprint(), base.fingerprint());
        for k in KEYS {
            assert!(!k.changes.contains(&Effect::Nothing), "{}", k.name);
        }
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
