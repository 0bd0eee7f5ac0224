//! Analytical energy and area model (docs/DESIGN.md §6, `docs/ENERGY.md`).
//!
//! The model turns a configuration ([`HwConfig`]) and a run's performance
//! counters ([`Counters`]) into energy, and a configuration alone into area,
//! using a replaceable table of published per-action figures
//! ([`EnergyTable`]). Every result names the table it was computed with.
//!
//! # What is charged, per counter
//!
//! | class | counter | charge (at 45 nm, then × the node's energy factor) |
//! |---|---|---|
//! | `mac` | `macs`, split by [`MacFormats`] | one multiply by the weight format of the tile (int8, 2:4 and expanded streams: int8; int4: `int4_mul_pj`) + one int32 add |
//! | `pe_registers` | `macs` | the PE's 32-bit partial-sum and 8-bit input registers, written once per MAC |
//! | `weight_load` | `weight_rows` | `rows * cols * 8` register bits per weight row (upper bound, see [`weight_load_bits`]) |
//! | `spad_read` / `spad_write` | `spad_read_rows` / `spad_write_rows` | one access of a scratchpad bank, `cols * 8`-bit port |
//! | `acc_read` / `acc_write` | `acc_read_rows` / `acc_write_rows` | one access of an accumulator bank, `cols * 32`-bit port |
//! | `ppu` | `ppu_elements` | one int32 add (bias) + one fp32 multiply (scale; an estimate) |
//! | `vector` | `vector_lane_cycles` | one fp32 add + one fp32 multiply per lane cycle (an FMA step) |
//! | `dram` | `dram_read_bytes + dram_write_bytes` | `bytes * 8 * dram.pj_per_bit` (off-chip: not node-scaled) |
//!
//! Static energy is leakage power (SRAM by cell type, plus logic) times the
//! run time, `cycles / clock.mhz`.
//!
//! What is *not* charged: PE register toggles in lanes a partial tile leaves
//! unused and during array fill and drain (the counters count useful MACs;
//! the model assumes those lanes are clock-gated), the weight register's
//! reads, instruction fetch and queue logic, and on-chip wires. The PE-side
//! numbers are therefore a lower bound apart from `weight_load`, which is an
//! upper bound.
//!
//! # SRAM scaling
//!
//! A buffer of `bytes` in `banks` banks is `banks` SRAM macros of
//! `bytes / banks` each; one row access touches one bank. A bank's energy per
//! access comes from the nearest CACTI reference point ([`SramPoint`]),
//! scaled as Accelergy's CACTI wrapper does,
//! `(0.7 * width_ratio + 0.3) * depth_ratio^0.78` (see [`sram_access_scale`]);
//! area and leakage are linear in capacity. "Nearest" is the smallest
//! `|log2 width_ratio| + |log2 depth_ratio|` (depth = words = bits / width),
//! ties going to the point of nearest capacity, then to the earlier point in
//! the table. Leakage uses the nearest point that has a figure for the
//! configured cell type (only some points were run with lstp cells).
//! The reference energies and areas are CACTI runs with hp cells; they are
//! used for lstp cells too, which only change leakage here.
//!
//! # Technology node
//!
//! The table is at 45 nm. For another node, every on-chip dynamic energy is
//! multiplied by the node's energy factor and every area by its area factor
//! (Stillmaker & Baas, Integration 2017, as used by Accelergy). Leakage power
//! is taken to scale with area (constant mW/mm²): for CACTI's 22 nm runs in
//! docs/ENERGY.md this is within 3 % for hp cells (373 mW × 0.252 = 94 mW vs
//! 96 mW), and underestimates lstp leakage (0.021 vs 0.081 mW), which is
//! negligible in absolute terms. DRAM energy per bit does not scale with the
//! node.
//!
//! This module does no IO: [`EnergyTable::from_toml`] parses a string.

use isa::config::{HwConfig, SramCells, SUPPORTED_NODES_NM};
use isa::{Counter, Counters};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The default table, as a user-editable file.
pub const DEFAULT_TABLE_TOML: &str = include_str!("../../examples/energy/default-45nm.toml");

/// Bits of PE register written per MAC: the 32-bit partial sum and the 8-bit
/// input (the input is passed on to the next PE; the weight stays).
pub const PE_REGISTER_BITS_PER_MAC: u64 = 32 + 8;

/// An invalid energy table: a TOML error (which quotes the offending key) or a
/// value out of range, naming the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EnergyError {
    #[error("energy table: {0}")]
    Parse(String),
    #[error("energy table: {field} = {value}: {why}")]
    Invalid { field: String, value: String, why: String },
}

/// Per-action energy and area figures at 45 nm, with node scaling factors.
///
/// Load a user table with [`EnergyTable::from_toml`]; the default is
/// [`EnergyTable::default`], identical to `examples/energy/default-45nm.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnergyTable {
    /// Reported with every result computed from this table.
    pub name: String,
    /// int8 multiply, pJ. Horowitz, "Computing's energy problem", ISSCC 2014
    /// (45 nm, 0.9 V): 0.2 pJ.
    pub int8_mul_pj: f64,
    /// int8 × int4 multiply, pJ: half the int8 multiply, 0.1 pJ — an 8 × 4
    /// array multiplier has half the partial-product cells of the 8 × 8 one
    /// (a structural count, not a measured figure: docs/ENERGY.md "int4
    /// weights"). Absent in older tables, which get this default.
    #[serde(default = "default_int4_mul_pj")]
    pub int4_mul_pj: f64,
    /// int32 add, pJ. Horowitz ISSCC 2014: 0.1 pJ. An int8 MAC (8-bit
    /// multiply, 32-bit accumulate) is `int8_mul_pj + int32_add_pj` = 0.3 pJ.
    pub int32_add_pj: f64,
    /// fp32 multiply, pJ. Horowitz ISSCC 2014: 3.7 pJ. Charged for the PPU's
    /// per-element scale; the hardware does a fixed-point multiply in integer
    /// logic, so this is an estimate (an upper bound compared with the
    /// 3.1 pJ int32 multiply of the same source).
    pub fp32_mul_pj: f64,
    /// fp32 add, pJ. Horowitz ISSCC 2014: 0.9 pJ. With `fp32_mul_pj` it is
    /// the vector unit's charge per lane cycle (one FMA step,
    /// [`EnergyTable::vector_lane_cycle_pj`]). Absent in older tables,
    /// which get this default.
    #[serde(default = "default_fp32_add_pj")]
    pub fp32_add_pj: f64,
    /// Register energy per bit read or written, pJ. Aladdin tables (Shao et
    /// al., ISCA 2014), as used by Accelergy: 0.009 pJ.
    pub register_pj_per_bit: f64,
    /// Area of one int8 weight-stationary PE, µm². Aladdin, 40 nm: 8×8
    /// multiplier 397 µm² + 32-bit adder 278 µm² + ~56 register bits ×
    /// 5.98 µm² ≈ 1,010 µm². Used as the 45 nm figure without a 40→45 nm
    /// correction (which would add ~25 %); TPU v1 (28 nm, ≤ ~1,210 µm² per
    /// MAC with wiring) suggests it is not optimistic.
    pub pe_area_um2: f64,
    /// Area of one vector-unit lane, µm² (an estimate from the Aladdin
    /// 40 nm figures of `pe_area_um2`): a binary32 FMA — a 24×24 mantissa
    /// multiplier ≈ 9 × 397 µm² (8×8 multipliers) + 3 × 278 µm² (32-bit
    /// adders: alignment, addition, normalisation and rounding) + ~150
    /// pipeline register bits × 5.98 µm² ≈ 5,300 µm² — plus a
    /// divide/square-root recurrence (2 adders + 60 register bits ≈ 920 µm²)
    /// and 64 operand/accumulator register bits (≈ 380 µm²): ≈ 6,600 µm².
    /// Absent in older tables, which get this default.
    #[serde(default = "default_vector_lane_area_um2")]
    pub vector_lane_area_um2: f64,
    /// Control, DMA and post-processing (PPU) logic area as a fraction of the
    /// PE-array area. 0.4: in TPU v1's floorplan (Jouppi et al., ISCA 2017)
    /// the activation pipeline (6 %), control (2 %) and host interface (2 %)
    /// take ~10 % of the die against the matrix unit's 24 %. A small array
    /// has relatively more control, so this is the least certain figure of
    /// the table; the RTL's yosys cell count replaces it.
    pub logic_overhead: f64,
    /// Logic leakage, mW per mm² (at 45 nm; scales with area). Aladdin, 40 nm:
    /// ~10 mW/mm².
    pub logic_leakage_mw_per_mm2: f64,
    /// Area of one NAND2-equivalent gate, µm² (at 45 nm): what the RTL's
    /// synthesized cells are costed in (`rtl::area`, which converts each
    /// generic yosys cell to NAND2 equivalents). NanGate FreePDK45 Open Cell
    /// Library, NAND2_X1: 0.798 µm². Cell area only: no placement utilization
    /// or wiring, like the Aladdin figures behind `pe_area_um2`. Absent in
    /// tables written before it existed, which get this default.
    #[serde(default = "default_gate_area_um2")]
    pub gate_area_um2: f64,
    /// CACTI 7 reference points at 45 nm (docs/ENERGY.md), scaled to each bank.
    pub sram: Vec<SramPoint>,
    /// Scaling factors from 45 nm, one per supported node.
    pub node: Vec<NodeScale>,
}

/// Half the int8 multiply, pJ (see [`EnergyTable::int4_mul_pj`]).
fn default_int4_mul_pj() -> f64 {
    0.1
}

/// Horowitz ISSCC 2014, pJ (see [`EnergyTable::fp32_add_pj`]).
fn default_fp32_add_pj() -> f64 {
    0.9
}

/// µm² (see [`EnergyTable::vector_lane_area_um2`]).
fn default_vector_lane_area_um2() -> f64 {
    6600.0
}

/// NanGate FreePDK45 NAND2_X1, µm² (see [`EnergyTable::gate_area_um2`]).
fn default_gate_area_um2() -> f64 {
    0.798
}

/// One CACTI 7 run at 45 nm (itrs-hp cells, one bank), per access.
/// Capacities written "KB"/"MB" in the sources are taken as 1024-based.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SramPoint {
    /// Capacity in bytes.
    pub bytes: u64,
    /// Port width in bits (one access moves this many bits).
    pub width_bits: u32,
    /// Energy per read access, pJ.
    pub read_pj: f64,
    /// Energy per write access, pJ.
    pub write_pj: f64,
    /// Area, mm².
    pub area_mm2: f64,
    /// Leakage with CACTI high-performance (itrs-hp) cells, mW.
    pub leakage_hp_mw: f64,
    /// Leakage with low-standby-power (itrs-lstp) cells, mW, where published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leakage_lstp_mw: Option<f64>,
}

/// Scaling from 45 nm to `nm` (Stillmaker & Baas, Integration 2017).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeScale {
    pub nm: u32,
    /// Multiplies every on-chip dynamic energy.
    pub energy: f64,
    /// Multiplies every area (and, here, leakage power).
    pub area: f64,
}

impl Default for EnergyTable {
    /// The 45 nm table of docs/ENERGY.md; see each field for its source.
    fn default() -> Self {
        let p = |kib: u64, width_bits, read_pj, write_pj, area_mm2, leakage_hp_mw, leakage_lstp_mw| SramPoint {
            bytes: kib * 1024,
            width_bits,
            read_pj,
            write_pj,
            area_mm2,
            leakage_hp_mw,
            leakage_lstp_mw,
        };
        let n = |nm, energy, area| NodeScale { nm, energy, area };
        EnergyTable {
            name: "default-45nm".to_string(),
            int8_mul_pj: 0.2,
            int4_mul_pj: default_int4_mul_pj(),
            int32_add_pj: 0.1,
            fp32_mul_pj: 3.7,
            fp32_add_pj: default_fp32_add_pj(),
            register_pj_per_bit: 0.009,
            pe_area_um2: 1010.0,
            vector_lane_area_um2: default_vector_lane_area_um2(),
            logic_overhead: 0.4,
            logic_leakage_mw_per_mm2: 10.0,
            gate_area_um2: default_gate_area_um2(),
            // CACTI 7, 45 nm (docs/ENERGY.md, SRAM table).
            sram: vec![
                p(8, 64, 7.5, 9.2, 0.060, 13.7, None),
                p(32, 64, 21.2, 18.1, 0.213, 50.1, None),
                p(1024, 64, 113.2, 96.6, 7.02, 1493.0, None),
                p(256, 128, 84.5, 78.2, 1.92, 373.0, Some(0.083)),
                p(64, 512, 63.0, 203.0, 0.48, 101.0, Some(0.022)),
            ],
            // Stillmaker & Baas 2017 (docs/ENERGY.md, "Other nodes").
            node: vec![
                n(45, 1.0, 1.0),
                n(65, 1.241, 1.50),
                n(32, 0.659, 0.46),
                n(28, 0.513, 0.377),
                n(22, 0.294, 0.252),
                n(16, 0.174, 0.190),
                n(14, 0.139, 0.170),
                n(10, 0.118, 0.100),
                n(7, 0.094, 0.059),
            ],
        }
    }
}

fn check(ok: bool, field: impl Into<String>, value: impl fmt::Display, why: &str) -> Result<(), EnergyError> {
    if ok {
        Ok(())
    } else {
        Err(EnergyError::Invalid { field: field.into(), value: value.to_string(), why: why.to_string() })
    }
}

fn check_nonneg(field: impl Into<String>, v: f64) -> Result<(), EnergyError> {
    check(v.is_finite() && v >= 0.0, field, v, "must be a finite number >= 0")
}

impl EnergyTable {
    /// Parses and validates a table.
    pub fn from_toml(text: &str) -> Result<EnergyTable, EnergyError> {
        let table: EnergyTable =
            toml::from_str(text).map_err(|e| EnergyError::Parse(isa::config::toml_error(text, &e)))?;
        table.validate()?;
        Ok(table)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("EnergyTable serializes")
    }

    /// Checks every figure: finite and non-negative, at least one SRAM point
    /// (and one with lstp leakage), one scaling entry per supported node,
    /// 45 nm at factor 1.
    pub fn validate(&self) -> Result<(), EnergyError> {
        check(!self.name.trim().is_empty(), "name", format!("{:?}", self.name), "must not be empty")?;
        for (field, v) in [
            ("int8_mul_pj", self.int8_mul_pj),
            ("int4_mul_pj", self.int4_mul_pj),
            ("int32_add_pj", self.int32_add_pj),
            ("fp32_mul_pj", self.fp32_mul_pj),
            ("fp32_add_pj", self.fp32_add_pj),
            ("register_pj_per_bit", self.register_pj_per_bit),
            ("pe_area_um2", self.pe_area_um2),
            ("vector_lane_area_um2", self.vector_lane_area_um2),
            ("logic_overhead", self.logic_overhead),
            ("logic_leakage_mw_per_mm2", self.logic_leakage_mw_per_mm2),
            ("gate_area_um2", self.gate_area_um2),
        ] {
            check_nonneg(field, v)?;
        }
        check(!self.sram.is_empty(), "sram", "[]", "needs at least one reference point")?;
        for (i, p) in self.sram.iter().enumerate() {
            let f = |name: &str| format!("sram[{i}].{name}");
            check(p.bytes > 0, f("bytes"), p.bytes, "must be > 0")?;
            check(p.width_bits > 0, f("width_bits"), p.width_bits, "must be > 0")?;
            check(
                p.bytes * 8 >= p.width_bits as u64,
                f("width_bits"),
                p.width_bits,
                "must not exceed the capacity in bits",
            )?;
            check_nonneg(f("read_pj"), p.read_pj)?;
            check_nonneg(f("write_pj"), p.write_pj)?;
            check_nonneg(f("area_mm2"), p.area_mm2)?;
            check_nonneg(f("leakage_hp_mw"), p.leakage_hp_mw)?;
            if let Some(v) = p.leakage_lstp_mw {
                check_nonneg(f("leakage_lstp_mw"), v)?;
            }
        }
        check(
            self.sram.iter().any(|p| p.leakage_lstp_mw.is_some()),
            "sram.leakage_lstp_mw",
            "absent",
            "at least one reference point needs an lstp leakage figure",
        )?;
        for (i, n) in self.node.iter().enumerate() {
            check(n.energy.is_finite() && n.energy > 0.0, format!("node[{i}].energy"), n.energy, "must be > 0")?;
            check(n.area.is_finite() && n.area > 0.0, format!("node[{i}].area"), n.area, "must be > 0")?;
            check(self.node[..i].iter().all(|m| m.nm != n.nm), format!("node[{i}].nm"), n.nm, "appears twice")?;
        }
        for nm in SUPPORTED_NODES_NM {
            check(
                self.node.iter().any(|n| n.nm == nm),
                "node",
                format!("no entry for {nm} nm"),
                "needs one entry for each of 45, 65, 32, 28, 22, 16, 14, 10, 7",
            )?;
        }
        let base = self.node_scale(45);
        check(
            base.energy == 1.0 && base.area == 1.0,
            "node (nm = 45)",
            format!("energy = {}, area = {}", base.energy, base.area),
            "the table is at 45 nm: both factors must be 1",
        )?;
        Ok(())
    }

    /// The scaling entry for `nm`.
    ///
    /// # Panics
    /// If the table has no entry for `nm`; [`EnergyTable::validate`] (run by
    /// `from_toml`) guarantees every node `HwConfig` accepts is present.
    pub fn node_scale(&self, nm: u32) -> &NodeScale {
        self.node
            .iter()
            .find(|n| n.nm == nm)
            .unwrap_or_else(|| panic!("energy table {:?} has no scaling entry for {nm} nm", self.name))
    }

    /// An int8 MAC (8-bit multiply, 32-bit add) at 45 nm, pJ.
    pub fn mac_pj(&self) -> f64 {
        self.int8_mul_pj + self.int32_add_pj
    }

    /// One int8 × int4 MAC at 45 nm, pJ: `int4_mul_pj + int32_add_pj`.
    pub fn int4_mac_pj(&self) -> f64 {
        self.int4_mul_pj + self.int32_add_pj
    }

    /// One PPU element at 45 nm, pJ: an int32 add (bias) and an fp32
    /// multiply standing in for the integer requantization multiply.
    pub fn ppu_element_pj(&self) -> f64 {
        self.int32_add_pj + self.fp32_mul_pj
    }

    /// One lane cycle of the vector unit at 45 nm, pJ: an FMA step, charged
    /// as an fp32 multiply and an fp32 add.
    pub fn vector_lane_cycle_pj(&self) -> f64 {
        self.fp32_mul_pj + self.fp32_add_pj
    }
}

/// One SRAM bank (macro) of a given size and port width, at the configured
/// node: energy per access, area, leakage.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SramBank {
    pub read_pj: f64,
    pub write_pj: f64,
    pub area_mm2: f64,
    pub leakage_mw: f64,
}

fn depth(bytes: u64, width_bits: u32) -> f64 {
    bytes as f64 * 8.0 / width_bits as f64
}

/// Accelergy's CACTI-wrapper scaling of energy per access from a reference
/// point to `bytes` with a `width_bits` port:
/// `(0.7 * width_ratio + 0.3) * depth_ratio^0.78`.
pub fn sram_access_scale(reference: &SramPoint, bytes: u64, width_bits: u32) -> f64 {
    let width_ratio = width_bits as f64 / reference.width_bits as f64;
    let depth_ratio = depth(bytes, width_bits) / depth(reference.bytes, reference.width_bits);
    (0.7 * width_ratio + 0.3) * depth_ratio.powf(0.78)
}

/// The nearest reference point among `points` (module docs: log distance in
/// width and depth, then capacity, then table order).
fn nearest<'a>(points: impl Iterator<Item = &'a SramPoint>, bytes: u64, width_bits: u32) -> Option<&'a SramPoint> {
    let key = |p: &SramPoint| {
        let w = (width_bits as f64 / p.width_bits as f64).log2().abs();
        let d = (depth(bytes, width_bits) / depth(p.bytes, p.width_bits)).log2().abs();
        let c = (bytes as f64 / p.bytes as f64).log2().abs();
        (w + d, c)
    };
    // `min_by` keeps the last of equal elements; fold keeps the first.
    points.fold(None, |best: Option<&SramPoint>, p| match best {
        Some(b) if key(b) <= key(p) => Some(b),
        _ => Some(p),
    })
}

/// A bank of `bytes` with a `width_bits` port, with `cells`, at `node_nm`.
pub fn sram_bank(table: &EnergyTable, bytes: u64, width_bits: u32, cells: SramCells, node_nm: u32) -> SramBank {
    let scale = table.node_scale(node_nm);
    let e = nearest(table.sram.iter(), bytes, width_bits).expect("energy table has SRAM points");
    let access = sram_access_scale(e, bytes, width_bits) * scale.energy;
    let leak_of = |p: &SramPoint| match cells {
        SramCells::Hp => Some(p.leakage_hp_mw),
        SramCells::Lstp => p.leakage_lstp_mw,
    };
    let l = nearest(table.sram.iter().filter(|p| leak_of(p).is_some()), bytes, width_bits)
        .expect("energy table has an SRAM point with leakage for each cell type");
    SramBank {
        read_pj: e.read_pj * access,
        write_pj: e.write_pj * access,
        area_mm2: e.area_mm2 * bytes as f64 / e.bytes as f64 * scale.area,
        leakage_mw: leak_of(l).unwrap() * bytes as f64 / l.bytes as f64 * scale.area,
    }
}

/// One scratchpad bank: `scratchpad.bytes / banks`, a `cols * 8`-bit port.
pub fn spad_bank(cfg: &HwConfig, table: &EnergyTable) -> SramBank {
    let b = &cfg.scratchpad;
    sram_bank(table, b.bytes / b.banks as u64, cfg.array.cols * 8, cfg.tech.sram_cells, cfg.tech.node_nm)
}

/// One accumulator bank: `accumulator.bytes / banks`, a `cols * 32`-bit port.
pub fn acc_bank(cfg: &HwConfig, table: &EnergyTable) -> SramBank {
    let b = &cfg.accumulator;
    sram_bank(table, b.bytes / b.banks as u64, cfg.array.cols * 32, cfg.tech.sram_cells, cfg.tech.node_nm)
}

/// Chip area by part, mm², and the table (or tool) it came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AreaReport {
    pub table: String,
    /// `rows * cols` PEs.
    pub pe_array: f64,
    /// All scratchpad banks.
    pub scratchpad: f64,
    /// All accumulator banks.
    pub accumulator: f64,
    /// Control, DMA and PPU: `logic_overhead * pe_array`.
    pub logic: f64,
    /// The vector unit: `vector_lanes * vector_lane_area_um2`.
    pub vector: f64,
    pub total: f64,
}

/// A 2:4-sparse PE (`array.sparsity_2_4`) over an int8 one: its 4-to-1
/// input select, 2-bit positions and three more input lanes per row, as
/// yosys synthesizes the RTL's (`systole area --pe`: +17.1 % per PE). An
/// int4-capable PE is the int8 one (the weights are unpacked at the edge).
pub const SPARSE24_PE_AREA_FACTOR: f64 = 1.17;

/// Analytical area at the configured node. docs/DESIGN.md §6: the RTL's synthesized
/// area (`rtl::area::area`, `systole area`) replaces it where available; this
/// one stays for fast sweeps and configurations nobody synthesized.
pub fn area(cfg: &HwConfig, table: &EnergyTable) -> AreaReport {
    let scale = table.node_scale(cfg.tech.node_nm).area;
    let dense_pes = cfg.peak_macs_per_cycle() as f64 * table.pe_area_um2 * 1e-6 * scale;
    let pe_array = if cfg.array.sparsity_2_4 { dense_pes * SPARSE24_PE_AREA_FACTOR } else { dense_pes };
    let scratchpad = spad_bank(cfg, table).area_mm2 * cfg.scratchpad.banks as f64;
    let accumulator = acc_bank(cfg, table).area_mm2 * cfg.accumulator.banks as f64;
    let logic = table.logic_overhead * dense_pes;
    let vector = cfg.vector_lanes() as f64 * table.vector_lane_area_um2 * 1e-6 * scale;
    AreaReport {
        table: table.name.clone(),
        pe_array,
        scratchpad,
        accumulator,
        logic,
        vector,
        total: pe_array + scratchpad + accumulator + logic + vector,
    }
}

/// Leakage power, mW: every SRAM bank (by cell type) plus the logic
/// (PE array and control) of `area` at the table's logic leakage density.
pub fn leakage_mw(cfg: &HwConfig, table: &EnergyTable, area: &AreaReport) -> f64 {
    let sram = spad_bank(cfg, table).leakage_mw * cfg.scratchpad.banks as f64
        + acc_bank(cfg, table).leakage_mw * cfg.accumulator.banks as f64;
    sram + table.logic_leakage_mw_per_mm2 * (area.pe_array + area.logic + area.vector)
}

/// Register bits written to load `weight_rows` rows into the array: each row
/// is counted as writing `cols * 8` bits in every one of the `rows` PE rows it
/// may pass on its way down. An upper bound: a row bound for the top of the
/// array passes fewer rows, and a tile with fewer than `rows` weight rows
/// shifts them less far.
pub fn weight_load_bits(cfg: &HwConfig, weight_rows: u64) -> u64 {
    weight_rows * cfg.array.rows as u64 * cfg.array.cols as u64 * 8
}

/// Energy of one run, pJ, with its area and the table it came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EnergyReport {
    pub table: String,
    /// `(class, pJ)` in the order of the module docs' table.
    pub dynamic_pj: Vec<(String, f64)>,
    /// Leakage power × run time.
    pub static_pj: f64,
    /// `dynamic_total() + static_pj`.
    pub total_pj: f64,
    pub area: AreaReport,
}

impl EnergyReport {
    pub fn dynamic_total(&self) -> f64 {
        self.dynamic_pj.iter().map(|(_, v)| v).sum()
    }

    /// The dynamic energy of one class, if present.
    pub fn dynamic(&self, class: &str) -> Option<f64> {
        self.dynamic_pj.iter().find(|(c, _)| c == class).map(|(_, v)| *v)
    }
}

/// The MACs a run performed, by the weight format of the tile that
/// performed them (docs/ENERGY.md "Energy per MAC by weight format"): a
/// 2:4 tile performs its kept half only (`macs` counts `m · k · n` with `k`
/// the kept rows), an expanded compressed stream is an int8 tile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MacFormats {
    pub int8: u64,
    pub int4: u64,
    pub sparse24: u64,
}

impl MacFormats {
    /// `macs` MACs, all on int8 tiles.
    pub fn int8(macs: u64) -> MacFormats {
        MacFormats { int8: macs, ..MacFormats::default() }
    }

    pub fn total(&self) -> u64 {
        self.int8 + self.int4 + self.sparse24
    }

    /// The MACs of a run of `prog` whose `macs` counter reads
    /// `counters`, split as the program's matmuls split them: the COMPUTE
    /// queue runs in program order, so each `matmul`'s `m · k · n` and the
    /// format of its active tile (the last `ldw` or preload before its
    /// `swap`) follow from the code alone, on every backend. A run cut
    /// short (a fault) keeps the program's proportions.
    pub fn of_program(prog: &isa::program::Program, counters: &Counters) -> MacFormats {
        use isa::instr::{Instr, WFMT_I4, WFMT_I8_S24};
        let mut split = MacFormats::default();
        let (mut active, mut shadow) = ((0u8, 0u64, 0u64), (0u8, 0u64, 0u64));
        for i in &prog.code {
            match i {
                Instr::Ldw(l) => shadow = (l.wfmt, l.k as u64, l.n as u64),
                Instr::Matmul(m) => {
                    if m.swap != 0 {
                        std::mem::swap(&mut active, &mut shadow);
                    }
                    let (wfmt, k, n) = active;
                    let macs = m.m as u64 * k * n;
                    match wfmt {
                        WFMT_I4 => split.int4 += macs,
                        WFMT_I8_S24 => split.sparse24 += macs,
                        _ => split.int8 += macs,
                    }
                    if m.preload != 0 {
                        shadow = (m.wfmt, m.k as u64, m.n as u64);
                    }
                }
                _ => {}
            }
        }
        let counted = counters.get(Counter::Macs);
        let total = split.total();
        if total == counted {
            return split;
        }
        if total == 0 {
            return MacFormats::int8(counted);
        }
        let part = |x: u64| (x as u128 * counted as u128 / total as u128) as u64;
        let (int4, sparse24) = (part(split.int4), part(split.sparse24));
        MacFormats { int8: counted - int4 - sparse24, int4, sparse24 }
    }
}

/// Dynamic energy per event class, pJ, at the configured node; MACs are
/// charged by `macs`' formats (their total is the `macs` counter).
pub fn dynamic_pj(cfg: &HwConfig, counters: &Counters, macs: &MacFormats, table: &EnergyTable) -> Vec<(String, f64)> {
    let k = table.node_scale(cfg.tech.node_nm).energy;
    let n = |c: Counter| counters.get(c) as f64;
    let spad = spad_bank(cfg, table);
    let acc = acc_bank(cfg, table);
    let mac = (macs.int8 + macs.sparse24) as f64 * table.mac_pj() + macs.int4 as f64 * table.int4_mac_pj();
    let macs = n(Counter::Macs);
    let dram_bits = (n(Counter::DramReadBytes) + n(Counter::DramWriteBytes)) * 8.0;
    let weight_bits = weight_load_bits(cfg, counters.get(Counter::WeightRows)) as f64;
    [
        ("mac", mac * k),
        ("pe_registers", macs * PE_REGISTER_BITS_PER_MAC as f64 * table.register_pj_per_bit * k),
        ("weight_load", weight_bits * table.register_pj_per_bit * k),
        ("spad_read", n(Counter::SpadReadRows) * spad.read_pj),
        ("spad_write", n(Counter::SpadWriteRows) * spad.write_pj),
        ("acc_read", n(Counter::AccReadRows) * acc.read_pj),
        ("acc_write", n(Counter::AccWriteRows) * acc.write_pj),
        ("ppu", n(Counter::PpuElements) * table.ppu_element_pj() * k),
        ("vector", n(Counter::VectorLaneCycles) * table.vector_lane_cycle_pj() * k),
        ("dram", dram_bits * cfg.dram.pj_per_bit),
    ]
    .into_iter()
    .map(|(c, v)| (c.to_string(), v))
    .collect()
}

/// Static energy, pJ: `leakage_mw` for `cycles / clock.mhz` µs.
pub fn static_pj(cfg: &HwConfig, cycles: u64, leakage_mw: f64) -> f64 {
    // mW × µs = nJ = 1e3 pJ.
    leakage_mw * (cycles as f64 / cfg.clock.mhz) * 1e3
}

/// Energy of a run of `prog` from its counters, with the analytical
/// [`area`]; MACs charged by weight format ([`MacFormats::of_program`]).
pub fn energy(cfg: &HwConfig, prog: &isa::program::Program, counters: &Counters, table: &EnergyTable) -> EnergyReport {
    energy_of(cfg, &MacFormats::of_program(prog, counters), counters, table)
}

/// Energy of a run from its counters and its MACs by format.
pub fn energy_of(cfg: &HwConfig, macs: &MacFormats, counters: &Counters, table: &EnergyTable) -> EnergyReport {
    energy_with_area(cfg, macs, counters, table, area(cfg, table))
}

/// Energy of a run, with logic leakage taken from a given area (e.g. the
/// RTL's synthesized logic area in place of the analytical one).
pub fn energy_with_area(
    cfg: &HwConfig,
    macs: &MacFormats,
    counters: &Counters,
    table: &EnergyTable,
    area: AreaReport,
) -> EnergyReport {
    let dynamic_pj = dynamic_pj(cfg, counters, macs, table);
    let static_pj = static_pj(cfg, counters.get(Counter::Cycles), leakage_mw(cfg, table, &area));
    let total_pj = dynamic_pj.iter().map(|(_, v)| v).sum::<f64>() + static_pj;
    EnergyReport { table: table.name.clone(), dynamic_pj, static_pj, total_pj, area }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counters without a program: every MAC on an int8 tile.
    fn energy(cfg: &HwConfig, c: &Counters, t: &EnergyTable) -> EnergyReport {
        energy_of(cfg, &MacFormats::int8(c.get(Counter::Macs)), c, t)
    }

    fn program(code: Vec<isa::instr::Instr>) -> isa::program::Program {
        isa::program::Program {
            fingerprint: 0,
            config_name: String::new(),
            code_addr: 0,
            code,
            data_addr: 0,
            data: Vec::new(),
            mem_bytes: 0,
            tensors: Vec::new(),
            meta: isa::program::ProgramMeta::default(),
        }
    }

    #[test]
    fn macs_are_charged_by_the_format_of_their_tile() {
        use isa::instr::{self as ins, Instr};
        let prog = program(vec![
            Instr::from(ins::Ldw { k: 16, n: 16, wfmt: ins::WFMT_I4, ..Default::default() }),
            // Swaps the int4 tile in, preloads a 2:4 one (8 kept rows).
            Instr::from(ins::Matmul {
                m: 10,
                swap: 1,
                preload: 1,
                k: 8,
                n: 16,
                wfmt: ins::WFMT_I8_S24,
                ..Default::default()
            }),
            Instr::from(ins::Matmul { m: 5, swap: 1, ..Default::default() }),
            // No swap: the 2:4 tile again.
            Instr::from(ins::Matmul { m: 2, ..Default::default() }),
            Instr::from(ins::Ldw { k: 4, n: 2, wfmt: ins::WFMT_I8, ..Default::default() }),
            Instr::from(ins::Matmul { m: 3, swap: 1, ..Default::default() }),
        ]);
        let want = MacFormats { int4: 10 * 16 * 16, sparse24: 7 * 8 * 16, int8: 3 * 4 * 2 };
        let c = counters(&[(Counter::Macs, want.total())]);
        assert_eq!(MacFormats::of_program(&prog, &c), want);
        let (cfg, t) = (HwConfig::default_16x16(), EnergyTable::default());
        let by_format = super::energy(&cfg, &prog, &c, &t).dynamic("mac").unwrap();
        // int4: 0.1 + 0.1 pJ; int8 and the kept half of 2:4: 0.2 + 0.1 pJ.
        assert!(close(by_format, 2560.0 * 0.2 + (896.0 + 24.0) * 0.3), "{by_format}");
        let as_int8 = energy(&cfg, &c, &t).dynamic("mac").unwrap();
        assert!(close(as_int8 - by_format, 2560.0 * 0.1), "{as_int8} vs {by_format}");
        // The registers are written once per performed MAC, whatever the format.
        assert_eq!(
            super::energy(&cfg, &prog, &c, &t).dynamic("pe_registers"),
            energy(&cfg, &c, &t).dynamic("pe_registers")
        );
        // A run cut short keeps the program's proportions.
        let half = MacFormats::of_program(&prog, &counters(&[(Counter::Macs, want.total() / 2)]));
        assert_eq!(half, MacFormats { int4: 1280, sparse24: 448, int8: 12 });
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-12)
    }

    fn within(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs()
    }

    fn counters(pairs: &[(Counter, u64)]) -> Counters {
        let mut c = Counters::default();
        for &(k, v) in pairs {
            c.set(k, v);
        }
        c
    }

    /// A mixed run touching every charged counter.
    fn sample() -> Counters {
        counters(&[
            (Counter::Cycles, 10_000),
            (Counter::Macs, 1_000_000),
            (Counter::WeightRows, 640),
            (Counter::DramReadBytes, 40_000),
            (Counter::DramWriteBytes, 8_000),
            (Counter::SpadReadRows, 4_700),
            (Counter::SpadWriteRows, 2_500),
            (Counter::AccReadRows, 4_000),
            (Counter::AccWriteRows, 4_500),
            (Counter::PpuElements, 8_000),
            (Counter::VectorLaneCycles, 3_000),
        ])
    }

    fn scaled(c: &Counters, f: u64) -> Counters {
        Counters(c.0.map(|v| v * f))
    }

    #[test]
    fn default_file_parses_to_default_table() {
        let parsed = EnergyTable::from_toml(DEFAULT_TABLE_TOML).unwrap();
        assert_eq!(parsed, EnergyTable::default());
        EnergyTable::default().validate().unwrap();
    }

    #[test]
    fn toml_round_trip() {
        let t = EnergyTable::default();
        assert_eq!(EnergyTable::from_toml(&t.to_toml()).unwrap(), t);
    }

    #[test]
    fn errors_name_the_field() {
        let bad = DEFAULT_TABLE_TOML.replace("int8_mul_pj = 0.2", "int8_mul_pj = -0.2");
        let err = EnergyTable::from_toml(&bad).unwrap_err().to_string();
        assert!(err.contains("int8_mul_pj") && err.contains(">= 0"), "{err}");

        let bad = DEFAULT_TABLE_TOML.replace("read_pj = 84.5", "read_pj = nan");
        let err = EnergyTable::from_toml(&bad).unwrap_err().to_string();
        assert!(err.contains("sram[3].read_pj"), "{err}");

        let bad = DEFAULT_TABLE_TOML.replace("fp32_mul_pj", "fp32_mult_pj");
        let err = EnergyTable::from_toml(&bad).unwrap_err().to_string();
        assert!(err.contains("fp32_mult_pj"), "{err}");

        let bad = DEFAULT_TABLE_TOML.replace("register_pj_per_bit = 0.009", "");
        let err = EnergyTable::from_toml(&bad).unwrap_err().to_string();
        assert!(err.contains("missing field") && err.contains("register_pj_per_bit"), "{err}");

        let bad = DEFAULT_TABLE_TOML.replace("pe_area_um2 = 1010.0", "pe_area_um2 = \"big\"");
        let err = EnergyTable::from_toml(&bad).unwrap_err().to_string();
        assert!(err.contains("pe_area_um2"), "{err}");

        let mut t = EnergyTable::default();
        t.node.retain(|n| n.nm != 7);
        let err = t.validate().unwrap_err().to_string();
        assert!(err.contains("node") && err.contains("7 nm"), "{err}");

        let mut t = EnergyTable::default();
        t.node[0].energy = 0.9;
        assert!(t.validate().unwrap_err().to_string().contains("45"));

        let mut t = EnergyTable::default();
        t.sram.iter_mut().for_each(|p| p.leakage_lstp_mw = None);
        assert!(t.validate().unwrap_err().to_string().contains("leakage_lstp_mw"));
    }

    #[test]
    fn reference_point_is_reproduced_exactly() {
        let t = EnergyTable::default();
        let hp = sram_bank(&t, 256 * 1024, 128, SramCells::Hp, 45);
        assert_eq!(hp, SramBank { read_pj: 84.5, write_pj: 78.2, area_mm2: 1.92, leakage_mw: 373.0 });
        let lstp = sram_bank(&t, 256 * 1024, 128, SramCells::Lstp, 45);
        assert_eq!(lstp.leakage_mw, 0.083);
        assert_eq!(lstp.read_pj, 84.5);
    }

    #[test]
    fn default_16x16_banks_by_hand() {
        let cfg = HwConfig::default_16x16();
        let t = EnergyTable::default();
        // Scratchpad: 256 KiB / 4 banks = 64 KiB, 128-bit port, 4096 words.
        // Nearest: 32 KiB / 64-bit (4096 words): width ratio 2, depth ratio 1
        // -> (0.7 * 2 + 0.3) * 1 = 1.7.
        let s = spad_bank(&cfg, &t);
        assert!(close(s.read_pj, 21.2 * 1.7), "{s:?}");
        assert!(close(s.write_pj, 18.1 * 1.7), "{s:?}");
        assert!(close(s.area_mm2, 0.213 * 2.0), "{s:?}");
        // lstp leakage from the nearest lstp point, 256 KiB / 128-bit
        // (distance 2 vs 4 for 64 KiB / 512-bit): a quarter of 0.083 mW.
        assert!(close(s.leakage_mw, 0.083 / 4.0), "{s:?}");
        // Accumulator: 64 KiB / 2 banks = 32 KiB, 512-bit port, 512 words.
        // Nearest: 64 KiB / 512-bit (1024 words): 1.0 * 0.5^0.78.
        let a = acc_bank(&cfg, &t);
        let f = 0.5f64.powf(0.78);
        assert!(close(a.read_pj, 63.0 * f) && close(a.write_pj, 203.0 * f), "{a:?}");
        assert!(close(a.area_mm2, 0.24) && close(a.leakage_mw, 0.011), "{a:?}");
    }

    #[test]
    fn default_16x16_area_by_hand() {
        let cfg = HwConfig::default_16x16();
        let r = area(&cfg, &EnergyTable::default());
        assert_eq!(r.table, "default-45nm");
        assert!(close(r.pe_array, 256.0 * 1010e-6), "{r:?}");
        assert!(close(r.scratchpad, 4.0 * 0.426), "{r:?}");
        assert!(close(r.accumulator, 0.48), "{r:?}");
        assert!(close(r.logic, 0.4 * r.pe_array), "{r:?}");
        assert!(close(r.vector, 16.0 * 6600e-6), "{r:?}");
        assert!(close(r.total, r.pe_array + r.scratchpad + r.accumulator + r.logic + r.vector));
        // Lanes other than the columns scale the vector unit alone.
        let mut eight = cfg.clone();
        eight.vector_lanes = Some(8);
        assert!(close(area(&eight, &EnergyTable::default()).vector, r.vector / 2.0));
    }

    #[test]
    fn steady_state_energy_per_mac_by_hand() {
        // One cycle of a busy 16x16 array: 256 MACs, one scratchpad row read,
        // one accumulator read-modify-write.
        let cfg = HwConfig::default_16x16();
        let t = EnergyTable::default();
        let c = counters(&[
            (Counter::Macs, 256),
            (Counter::SpadReadRows, 1),
            (Counter::AccReadRows, 1),
            (Counter::AccWriteRows, 1),
        ]);
        let r = energy(&cfg, &c, &t);
        let f = 0.5f64.powf(0.78);
        let by_hand = 256.0 * (0.3 + 40.0 * 0.009) + 21.2 * 1.7 + (63.0 + 203.0) * f;
        assert!(close(r.dynamic_total(), by_hand), "{r:?}");
        // ~1.4 pJ per MAC, of which the MAC itself is ~0.3.
        assert!((1.3..1.5).contains(&(r.dynamic_total() / 256.0)), "{r:?}");
        assert_eq!(r.static_pj, 0.0);
    }

    #[test]
    fn energy_is_linear_in_counters() {
        let t = EnergyTable::default();
        for cfg in [HwConfig::default_16x16(), HwConfig::tiny_4x4(), HwConfig::large_32x32()] {
            let one = energy(&cfg, &sample(), &t);
            let three = energy(&cfg, &scaled(&sample(), 3), &t);
            for ((c1, v1), (c3, v3)) in one.dynamic_pj.iter().zip(&three.dynamic_pj) {
                assert_eq!(c1, c3);
                assert!(*v1 > 0.0, "{} charges nothing for {c1}", cfg.name);
                assert!(close(3.0 * v1, *v3), "{c1}: {v1} vs {v3}");
            }
            assert!(close(3.0 * one.static_pj, three.static_pj));
            assert!(close(3.0 * one.total_pj, three.total_pj));
            // Additive over counters: each counter alone sums to all together.
            let parts: f64 = sample().iter().map(|(k, v)| energy(&cfg, &counters(&[(k, v)]), &t).total_pj).sum();
            assert!(within(parts, one.total_pj, 1e-12));
            assert!(close(one.total_pj, one.dynamic_total() + one.static_pj));
            assert_eq!(energy(&cfg, &Counters::default(), &t).total_pj, 0.0);
        }
    }

    #[test]
    fn each_class_charges_its_counter() {
        let cfg = HwConfig::default_16x16();
        let t = EnergyTable::default();
        let one = |k: Counter| energy(&cfg, &counters(&[(k, 1)]), &t);
        assert!(close(one(Counter::Macs).dynamic("mac").unwrap(), 0.3));
        assert!(close(one(Counter::Macs).dynamic("pe_registers").unwrap(), 0.36));
        assert!(close(one(Counter::WeightRows).dynamic("weight_load").unwrap(), 16.0 * 16.0 * 8.0 * 0.009));
        assert!(close(one(Counter::PpuElements).dynamic("ppu").unwrap(), 3.8));
        assert!(close(one(Counter::VectorLaneCycles).dynamic("vector").unwrap(), 4.6));
        assert!(close(one(Counter::DramReadBytes).dynamic("dram").unwrap(), 64.0));
        assert!(close(one(Counter::DramWriteBytes).dynamic("dram").unwrap(), 64.0));
        // Counters the model does not charge.
        for k in [Counter::Instructions, Counter::ArrayBusy, Counter::DramRequests, Counter::ComputeStall] {
            assert_eq!(one(k).total_pj, 0.0, "{k:?}");
        }
        let names: Vec<_> = one(Counter::Macs).dynamic_pj.into_iter().map(|(c, _)| c).collect();
        assert_eq!(
            names,
            [
                "mac",
                "pe_registers",
                "weight_load",
                "spad_read",
                "spad_write",
                "acc_read",
                "acc_write",
                "ppu",
                "vector",
                "dram"
            ]
        );
    }

    #[test]
    fn static_energy_scales_with_cycles_clock_and_cells() {
        let t = EnergyTable::default();
        let mut cfg = HwConfig::default_16x16();
        let at = |cfg: &HwConfig, cycles| energy(cfg, &counters(&[(Counter::Cycles, cycles)]), &t);
        let lstp = at(&cfg, 1000);
        assert!(lstp.static_pj > 0.0 && lstp.dynamic_total() == 0.0);
        assert!(close(at(&cfg, 5000).static_pj, 5.0 * lstp.static_pj));
        // 1000 cycles at 1 GHz = 1 µs: pJ = mW × 1e3.
        let a = area(&cfg, &t);
        let mw = 0.083 / 4.0 * 4.0 + 0.011 * 2.0 + 10.0 * (a.pe_array + a.logic + a.vector);
        assert!(close(lstp.static_pj, mw * 1e3), "{lstp:?}");
        cfg.clock.mhz = 500.0;
        assert!(close(at(&cfg, 1000).static_pj, 2.0 * lstp.static_pj));
        cfg.clock.mhz = 1000.0;
        cfg.tech.sram_cells = SramCells::Hp;
        let hp = at(&cfg, 1000);
        // hp SRAM leaks thousands of times more than lstp: 4 × 0.426 mm² of
        // 32 KiB/64-bit macros at 50.1 mW each per 32 KiB, plus the accumulator.
        let hp_mw = 4.0 * 2.0 * 50.1 + 2.0 * 50.5 + 10.0 * (a.pe_array + a.logic + a.vector);
        assert!(close(hp.static_pj, hp_mw * 1e3), "{hp:?}");
        let sram_ratio =
            (hp_mw - 10.0 * (a.pe_array + a.logic + a.vector)) / (mw - 10.0 * (a.pe_array + a.logic + a.vector));
        assert!(sram_ratio > 1000.0, "{sram_ratio}");
        assert!(hp.static_pj > 50.0 * lstp.static_pj);
    }

    #[test]
    fn node_scales_logic_and_sram_but_not_dram() {
        let t = EnergyTable::default();
        let c45 = HwConfig::default_16x16();
        let mut c22 = c45.clone();
        c22.tech.node_nm = 22;
        let (e45, e22) = (energy(&c45, &sample(), &t), energy(&c22, &sample(), &t));
        for ((class, v45), (_, v22)) in e45.dynamic_pj.iter().zip(&e22.dynamic_pj) {
            let want = if class == "dram" { 1.0 } else { 0.294 };
            assert!(close(v22 / v45, want), "{class}: {v22} / {v45}");
        }
        let (a45, a22) = (area(&c45, &t), area(&c22, &t));
        for (x, y) in [
            (a45.pe_array, a22.pe_array),
            (a45.scratchpad, a22.scratchpad),
            (a45.accumulator, a22.accumulator),
            (a45.logic, a22.logic),
            (a45.vector, a22.vector),
            (a45.total, a22.total),
        ] {
            assert!(close(y / x, 0.252));
        }
        // Leakage follows area.
        assert!(close(e22.static_pj / e45.static_pj, 0.252));
        // 65 nm costs more than 45 nm.
        let mut c65 = c45.clone();
        c65.tech.node_nm = 65;
        assert!(close(energy(&c65, &sample(), &t).dynamic("mac").unwrap() / e45.dynamic("mac").unwrap(), 1.241));
    }

    #[test]
    fn scaling_to_22nm_matches_cactis_22nm_runs() {
        // docs/ENERGY.md lists CACTI at 22 nm for the two wide points; node-scaling
        // the 45 nm figures should land close to them.
        let t = EnergyTable::default();
        let b = sram_bank(&t, 256 * 1024, 128, SramCells::Hp, 22);
        assert!(within(b.read_pj, 26.0, 0.06) && within(b.write_pj, 22.3, 0.04), "{b:?}");
        assert!(within(b.area_mm2, 0.46, 0.06) && within(b.leakage_mw, 96.0, 0.03), "{b:?}");
        let b = sram_bank(&t, 64 * 1024, 512, SramCells::Hp, 22);
        assert!(within(b.read_pj, 20.0, 0.08) && within(b.write_pj, 58.2, 0.03), "{b:?}");
        assert!(within(b.area_mm2, 0.12, 0.02) && within(b.leakage_mw, 26.0, 0.03), "{b:?}");
    }

    #[test]
    fn sram_scaling_rule() {
        let t = EnergyTable::default();
        // Same width, 4x deeper than the 8 KiB point: 4^0.78. (32 KiB itself
        // is a reference point, so use 16 KiB: nearest 8 KiB and 32 KiB tie
        // at distance 1 and 1; capacity distance ties too; table order wins.)
        let b = sram_bank(&t, 16 * 1024, 64, SramCells::Hp, 45);
        assert!(close(b.read_pj, 7.5 * 2f64.powf(0.78)), "{b:?}");
        assert!(close(b.area_mm2, 0.120) && close(b.leakage_mw, 27.4), "{b:?}");
        // Width only.
        let p = &t.sram[4];
        assert!(close(sram_access_scale(p, 128 * 1024, 1024), 0.7 * 2.0 + 0.3));
        assert!(close(sram_access_scale(p, p.bytes, p.width_bits), 1.0));
        // Energy grows with capacity and with port width.
        let e = |kib: u64, w: u32| sram_bank(&t, kib * 1024, w, SramCells::Lstp, 45).read_pj;
        assert!(e(4, 64) < e(8, 64) && e(8, 64) < e(64, 64) && e(64, 64) < e(512, 64));
        // At a fixed capacity a wider port costs about the same per access
        // ((0.7 w + 0.3) / w^0.78 ~ 1 for w = 2), so less per bit.
        assert!(close(sram_access_scale(&t.sram[1], 32 * 1024, 128), 1.7 * 0.5f64.powf(0.78)));
        assert!(e(64, 64) / 64.0 > e(64, 128) / 128.0 && e(64, 128) / 128.0 > e(64, 512) / 512.0);
    }

    #[test]
    fn report_serializes_with_table_name() {
        let r = energy(&HwConfig::tiny_4x4(), &sample(), &EnergyTable::default());
        let text = toml::to_string(&r.area).unwrap();
        assert!(text.contains("default-45nm") && text.contains("pe_array"), "{text}");
        assert_eq!(r.table, "default-45nm");
        let t = EnergyTable { name: "mine".into(), ..EnergyTable::default() };
        assert_eq!(energy(&HwConfig::tiny_4x4(), &sample(), &t).table, "mine");
    }
}
