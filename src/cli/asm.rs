//! `systole asm`: assembly text to a `.sbin` program for one configuration.

use super::error::{CliError, Result};
use super::files::{check_destination, print_stdout, read_input_text, write_atomic, InputKind};
use super::{load, spec};
use clap::Args;
use isa::program::{Program, ProgramMeta, CODE_ALIGN};
use isa::{HwConfig, Instr};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct AsmArgs {
    /// Assembly source: one instruction per line, `;` or `#` starts a comment.
    #[arg(value_name = "PROG.s")]
    pub source: PathBuf,
    /// Hardware configuration the program is built for (TOML).
    #[arg(long, value_name = "HW.toml")]
    pub hw: PathBuf,
    /// Program file to write.
    #[arg(short = 'o', long = "output", value_name = "PROG.sbin")]
    pub output: PathBuf,
    /// Device byte address of the code (decimal or 0x hex, 32-byte aligned).
    #[arg(long, value_name = "ADDR", default_value = "0", value_parser = spec::parse_u64)]
    pub code_addr: u64,
    /// Device memory the program may use: the window [0, N) [default: the
    /// configuration's whole device memory].
    #[arg(long, value_name = "N", value_parser = spec::parse_u64)]
    pub mem_bytes: Option<u64>,
}

/// 1-based line and column of each instruction of `text`, in program order.
fn instruction_positions(text: &str) -> Vec<(usize, usize)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| matches!(isa::asm::parse_instr(line), Ok(Some(_))))
        .map(|(k, line)| (k + 1, line.chars().take_while(|c| c.is_whitespace()).count() + 1))
        .collect()
}

/// Checks every instruction against the configuration; the error names the
/// source line and the instruction.
fn check_legal(src: &str, text: &str, code: &[Instr], cfg: &HwConfig) -> Result<()> {
    let positions = instruction_positions(text);
    for (k, instr) in code.iter().enumerate() {
        if let Err(e) = isa::legal::check(instr, cfg) {
            let (line, col) = positions.get(k).copied().unwrap_or((0, 0));
            return Err(CliError::input(format!(
                "{src}:{line}:{col}: `{instr}` is not legal on config `{}`: {e}",
                cfg.name
            )));
        }
    }
    Ok(())
}

/// Warns about DMAs outside the window: not an error, the device faults at
/// run time, which may be the point of the program.
fn window_warnings(src: &str, text: &str, code: &[Instr], mem_bytes: u64) {
    let positions = instruction_positions(text);
    for (k, instr) in code.iter().enumerate() {
        if let Err(e) = isa::legal::check_window(instr, 0, mem_bytes) {
            let (line, col) = positions.get(k).copied().unwrap_or((0, 0));
            eprintln!("warning: {src}:{line}:{col}: `{instr}`: {}; the device will fault here", e.message);
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

pub fn run(args: &AsmArgs) -> Result<()> {
    check_destination(&args.output, "output")?;
    let text = read_input_text(&args.source, InputKind::Assembly)?;
    let cfg = load::config(&args.hw)?;
    let src = args.source.display().to_string();

    let code = isa::asm::parse_program(&text)
        .map_err(|e| CliError::input(format!("{src}:{}:{}: {}", e.line, e.column, e.message)))?;
    if code.is_empty() {
        return Err(CliError::input(format!("{src}: no instructions (a program ends with `finish`)")));
    }
    check_legal(&src, &text, &code, &cfg)?;

    if !args.code_addr.is_multiple_of(CODE_ALIGN) {
        return Err(CliError::input(format!(
            "--code-addr {:#x}: must be a multiple of {CODE_ALIGN} (one instruction)",
            args.code_addr
        )));
    }
    // The window limit is a 32-bit register.
    let max_window = cfg.dram_bytes().min(u32::MAX as u64);
    let mem_bytes = args.mem_bytes.unwrap_or(max_window);
    if mem_bytes > max_window {
        return Err(CliError::input(format!(
            "--mem-bytes {mem_bytes}: exceeds the {max_window} bytes of device memory config `{}` can grant",
            cfg.name
        )));
    }
    window_warnings(&src, &text, &code, mem_bytes);
    if !matches!(code.last(), Some(Instr::Finish(_))) {
        eprintln!(
            "warning: {src}: the program does not end with `finish`; the device will fault after the last instruction"
        );
    }

    let meta =
        ProgramMeta { producer: "systole asm".into(), source: file_name(&args.source), ..ProgramMeta::default() };
    let prog = Program {
        fingerprint: cfg.fingerprint(),
        config_name: cfg.name.clone(),
        code_addr: args.code_addr,
        code,
        data_addr: 0,
        data: Vec::new(),
        mem_bytes,
        tensors: Vec::new(),
        meta,
    };
    prog.validate_layout().map_err(|e| CliError::input(format!("{src}: {e} (see --code-addr and --mem-bytes)")))?;
    prog.check_config(&cfg).map_err(|e| CliError::input(format!("{src}: {e}")))?;
    write_atomic(&args.output, prog.to_bytes())?;
    print_stdout(&format!(
        "{}: {} instructions for config `{}` (fingerprint {:#018x}), code at {:#x}, window [0, {:#x})\n",
        args.output.display(),
        prog.code.len(),
        cfg.name,
        prog.fingerprint,
        prog.code_addr,
        prog.mem_bytes
    ))
}
