//! systole's hardware/software contract. This crate does no IO: it defines
//! the configuration, the instructions and their encodings, the assembly
//! text, the program container, the register map, the `Device` trait and the
//! arithmetic every implementation must reproduce.

pub mod asm;
pub mod codec;
pub mod config;
pub mod device;
pub mod docs;
pub mod instr;
pub mod layout;
pub mod legal;
pub mod numerics;
pub mod program;
pub mod regs;
pub mod timing;
pub mod verilog;

pub use config::{ConfigError, HwConfig};
pub use device::{Device, DeviceError, InstrTrace};
pub use instr::{Deps, Instr, Queue, INSTR_BYTES};
pub use regs::{Counter, Counters, ErrorCode};

/// Version of the instruction set; part of every config fingerprint.
pub const ISA_VERSION: u32 = 2;
