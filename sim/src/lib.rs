//! The cycle-accurate Rust model of the systole accelerator.
pub mod energy;
