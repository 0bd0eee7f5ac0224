//! The accelerator's Verilog as compiled into this crate, its parameters for
//! a configuration, and the cache folder of generated artifacts: what both
//! the Verilator build (`rtl::verilate`, feature `verilator`) and the
//! yosys synthesis ([`crate::area`], no feature) need.

use isa::HwConfig;
use std::fs::File;
use std::path::{Path, PathBuf};

/// The HDL sources of the accelerator, by file name (the header first, then
/// the Verilog files in [`VERILOG`] order).
pub const HDL: &[(&str, &str)] = &[
    ("systole_isa.vh", include_str!("../include/systole_isa.vh")),
    ("accel.sv", include_str!("../verilog/accel.sv")),
    ("check.sv", include_str!("../verilog/check.sv")),
    ("dma_load.sv", include_str!("../verilog/dma_load.sv")),
    ("dma_store.sv", include_str!("../verilog/dma_store.sv")),
    ("compute.sv", include_str!("../verilog/compute.sv")),
    ("array.sv", include_str!("../verilog/array.sv")),
    ("requant.sv", include_str!("../verilog/requant.sv")),
    ("qadd.sv", include_str!("../verilog/qadd.sv")),
    ("qadd_fma.sv", include_str!("../verilog/qadd_fma.sv")),
    ("vec_unit.sv", include_str!("../verilog/vec_unit.sv")),
    ("vec_lane.sv", include_str!("../verilog/vec_lane.sv")),
    ("fp32_fma.sv", include_str!("../verilog/fp32_fma.sv")),
    ("fp32_div.sv", include_str!("../verilog/fp32_div.sv")),
    ("fp32_sqrt.sv", include_str!("../verilog/fp32_sqrt.sv")),
    ("fp32_minmax.sv", include_str!("../verilog/fp32_minmax.sv")),
    ("fp32_round.sv", include_str!("../verilog/fp32_round.sv")),
    ("fp32_from_int.sv", include_str!("../verilog/fp32_from_int.sv")),
    ("fp32_to_quant.sv", include_str!("../verilog/fp32_to_quant.sv")),
];

/// The Verilog files, in the order the tools read them.
pub const VERILOG: &[&str] = &[
    "accel.sv",
    "check.sv",
    "dma_load.sv",
    "dma_store.sv",
    "compute.sv",
    "array.sv",
    "requant.sv",
    "qadd.sv",
    "qadd_fma.sv",
    "vec_unit.sv",
    "vec_lane.sv",
    "fp32_fma.sv",
    "fp32_div.sv",
    "fp32_sqrt.sv",
    "fp32_minmax.sv",
    "fp32_round.sv",
    "fp32_from_int.sv",
    "fp32_to_quant.sv",
];

/// The top module.
pub const TOP: &str = "accel";

/// Bytes of the DMA staging buffers (see `verilog/dma_load.sv`).
pub const LOAD_STAGE_BYTES: u32 = 4096;
pub const STORE_STAGE_BYTES: u32 = 8192;

/// The Verilog parameters of a configuration.
pub fn parameters(cfg: &HwConfig) -> Vec<(&'static str, String)> {
    vec![
        ("ROWS", cfg.array.rows.to_string()),
        ("COLS", cfg.array.cols.to_string()),
        ("SPAD_ROWS", cfg.spad_rows().to_string()),
        ("ACC_ROWS", cfg.acc_rows().to_string()),
        ("W", cfg.dram.bytes_per_cycle.to_string()),
        ("MEM_BYTES", format!("64'd{}", cfg.dram_bytes())),
        ("FINGERPRINT", format!("64'h{:016x}", cfg.fingerprint())),
        ("LOAD_STAGE_BYTES", LOAD_STAGE_BYTES.to_string()),
        ("STORE_STAGE_BYTES", STORE_STAGE_BYTES.to_string()),
        ("INT4", (cfg.array.weight_precisions.contains(&isa::config::WeightPrecision::Int4) as u8).to_string()),
        ("SPARSE", (cfg.array.sparsity_2_4 as u8).to_string()),
    ]
}

/// FNV-1a, the hash the `isa` crate's fingerprint uses.
pub fn fnv1a64(data: &[u8], mut h: u64) -> u64 {
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// FNV-1a's offset basis.
pub const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// Where built libraries and synthesis results are cached:
/// `$SYSTOLE_RTL_CACHE`, else `$XDG_CACHE_HOME/systole/rtl`, else
/// `~/.cache/systole/rtl`.
pub fn cache_root() -> PathBuf {
    if let Some(p) = std::env::var_os("SYSTOLE_RTL_CACHE") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(p).join("systole/rtl");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".cache/systole/rtl"),
        None => std::env::temp_dir().join("systole-rtl"),
    }
}

/// An exclusive lock on `<cache>/<name>.lock` (created if missing), held
/// until dropped: one build or synthesis of an artifact at a time, across
/// threads and processes (the RTL tier runs test binaries side by side, the
/// CLI's tests run `systole` processes in parallel). The second comes in
/// after the first has stored its result and finds it cached instead of
/// building it again. `waiting` is called when the lock is held elsewhere,
/// before blocking. `None` if the lock file cannot be made (a read-only
/// cache): then builds are only kept from clobbering each other by their
/// temporary folders, as before.
pub(crate) fn cache_lock(root: &Path, name: &str, waiting: impl FnOnce()) -> Option<File> {
    std::fs::create_dir_all(root).ok()?;
    let file = File::options().create(true).truncate(false).write(true).open(root.join(format!("{name}.lock"))).ok()?;
    match file.try_lock() {
        Ok(()) => Some(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            waiting();
            file.lock().ok().map(|()| file)
        }
        Err(std::fs::TryLockError::Error(_)) => None,
    }
}
