//! The systole accelerator in Verilog, verilated and exposed as an
//! `isa::Device` through cxx. This crate is filled by issue 3; until then
//! it holds no code, and the CLI runs programs on the Rust model (`sim`).
