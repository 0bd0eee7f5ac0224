//! The cycle-accurate Rust model of the systole accelerator (docs/DESIGN.md §5):
//! it implements `isa::Device`, counts events, and turns them into energy.
//! It never reads the clock or does IO.

pub mod array;
pub mod dma;
pub mod dram;
pub mod energy;
pub mod kernels;
pub mod machine;
pub mod memory;
pub mod vector;

pub use machine::{Model, ModelError};
