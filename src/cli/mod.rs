//! The `systole` command line (DESIGN §7): argument definitions and
//! dispatch. Each command lives in its own module; errors are one type,
//! [`CliError`], carrying the message and the exit code.

mod asm;
mod disasm;
mod error;
mod files;
mod load;
mod npy;
mod report;
mod sim;
mod spec;
mod table;
mod trace;

pub use error::CliError;

use clap::{Parser, Subcommand};

const AFTER_HELP: &str = "\
Exit codes: 0 ok, 1 a check failed, 2 bad input or usage.

Examples:
  systole asm gemm.s --hw examples/hw/tiny.toml -o gemm.sbin
  systole disasm gemm.sbin
  systole sim gemm.sbin --hw examples/hw/tiny.toml --load 0x1000=a.npy --dump 0x2000:i32:4x4=c.npy --json report.json";

#[derive(Parser, Debug)]
#[command(
    name = "systole",
    version,
    about = "Systolic-array accelerator co-design: assemble, inspect and simulate programs",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Assemble a program for a hardware configuration into a .sbin file
    #[command(
        long_about = "Assemble a program for a hardware configuration into a .sbin file.\n\n\
            Every instruction is checked against the configuration (buffer ranges, tile \
            shapes); errors name the source line and column. The program records the \
            configuration's fingerprint and may only run on a matching device.",
        after_help = "Examples:\n  \
            systole asm gemm.s --hw examples/hw/tiny.toml -o gemm.sbin\n  \
            systole asm gemm.s --hw examples/hw/tiny.toml -o gemm.sbin --code-addr 0x100000 --mem-bytes 0x200000"
    )]
    Asm(asm::AsmArgs),
    /// Print a .sbin program as assembly, with its layout as comments
    #[command(
        long_about = "Print a .sbin program as assembly text.\n\n\
            A comment block shows the container (versions, fingerprint, sections), the \
            memory layout, the tensor map and the metadata; each instruction is followed \
            by its index. The output re-assembles with `systole asm` to the same code.",
        after_help = "Examples:\n  \
            systole disasm gemm.sbin\n  \
            systole disasm gemm.sbin > gemm.s && systole asm gemm.s --hw examples/hw/tiny.toml -o again.sbin"
    )]
    Disasm(disasm::DisasmArgs),
    /// Run a program on the cycle-accurate model and report performance and energy
    #[command(
        long_about = "Run a .sbin program on the cycle-accurate model through the driver, as a host \
            program runs it on hardware.\n\n\
            Arrays go in with --load (at an address) or --input (into a program tensor) and \
            come out with --dump or --output, as NumPy .npy files. The report gives cycles \
            and time, per-unit busy and stall cycles, MAC utilization, DRAM traffic and \
            bandwidth, buffer accesses, energy by class and area by part. A device fault \
            is an error (exit 2) and writes no output file.",
        after_help = "Examples:\n  \
            systole sim gemm.sbin --hw examples/hw/tiny.toml \\\n      \
            --load 0x1000=a.npy --load 0x1010=w.npy --dump 0x2000:i32:4x4=c.npy\n  \
            systole sim model.sbin --hw examples/hw/default.toml --input a=x.npy --output c=y.npy \\\n      \
            --json report.json --trace trace.json --energy-table my-table.toml"
    )]
    Sim(sim::SimArgs),
}

/// Runs a parsed command.
pub fn run(cli: &Cli) -> Result<(), CliError> {
    match &cli.command {
        Command::Asm(a) => asm::run(a),
        Command::Disasm(a) => disasm::run(a),
        Command::Sim(a) => sim::run(a),
    }
}
