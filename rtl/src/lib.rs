//! The systole accelerator in Verilog, and the crate that builds it with
//! Verilator and drives it from Rust through cxx (docs/DESIGN.md §1, §6).
//!
//! What is here:
//! - `verilog/`: the synthesizable sources, in the SystemVerilog subset that
//!   both Verilator 5.006 (lint-clean under `-Wall`) and yosys 0.23 accept.
//!   Today: `requant.sv`, the requantizer, bit-exact with
//!   `isa::numerics::requantize`; `array.sv`, the weight-stationary
//!   systolic array with double-buffered weights, bit-exact with
//!   `sim::array::matmul` (latency `ROWS + COLS - 1`); `vec_lane.sv`, one
//!   lane of the vector unit on binary32 units (`fp32_*.sv`), bit-exact
//!   with `isa::numerics::vector`.
//! - `include/systole_isa.vh`: the ISA's constants as `` `define``s,
//!   generated from the `isa` crate by `isa::verilog::header()` and checked
//!   by a test there (`UPDATE_EXPECT=1 cargo test -p isa --lib verilog`
//!   rewrites it). The RTL's only source of opcodes, field positions,
//!   register addresses and timing constants; pass `-I rtl/include`.
//! - `cpp/`: the C++ harnesses that own the verilated models; `src/ffi.rs`:
//!   their cxx bridge; `requant`, `qadd`, `array` and `vector`: the safe
//!   Rust APIs.
//!
//! What is built with which feature:
//! - default (no feature): [`VERILOG_DIR`] / [`INCLUDE_DIR`], [`sources`]
//!   (the sources compiled in, their parameters for a configuration) and
//!   [`area`] (area and FPGA resources from a yosys synthesis, `systole
//!   area`; needs yosys at run time, not Verilator). No Verilator is needed,
//!   so `cargo test --workspace` runs everywhere; the Rust model (`sim`) is
//!   the backend.
//! - `verilator`: `build.rs` verilates every configuration (`verilator --cc`,
//!   each with its own `--prefix`, into a freshly cleared folder under
//!   `OUT_DIR`), compiles the generated C++ with Verilator's runtime and the
//!   harness at `-Os` (`-pthread`, linked with `atomic`), and this crate
//!   gains `requant`, `qadd`, `array` and `vector`. If `verilator` is not on `PATH` the build fails and
//!   says how to install it (`apt-get install -y verilator`): never a silent
//!   skip. The tests `tests/requant.rs` (10^6+ cases against
//!   `isa::numerics::requantize`), `tests/array.rs` (compiler-like
//!   weight-load / stream sequences against `sim::array`), `tests/vector.rs`
//!   (10^6+ cases per op against `isa::numerics::vector`) and `tests/hdl_lint.rs` (every source
//!   through `verilator --lint-only -Wall` and yosys `synth`) need it:
//!   `cargo test -p rtl --features verilator --release`.

/// The Verilog sources (`rtl/verilog`).
pub const VERILOG_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/verilog");

/// The include folder holding the generated `systole_isa.vh`.
pub const INCLUDE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/include");

pub mod sources;

pub mod abi;

pub mod area;

pub mod waves;

#[cfg(feature = "verilator")]
mod ffi;

#[cfg(feature = "verilator")]
pub mod requant;

#[cfg(feature = "verilator")]
pub mod qadd;

#[cfg(feature = "verilator")]
pub mod array;

#[cfg(feature = "verilator")]
pub mod vector;

#[cfg(feature = "verilator")]
pub mod verilate;

#[cfg(feature = "verilator")]
pub mod device;

#[cfg(feature = "verilator")]
pub use device::{RtlDevice, RtlError};
