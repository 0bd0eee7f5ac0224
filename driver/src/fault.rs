//! Explaining a fault from what the host can read: a program that stores
//! over its own code makes the device fetch bytes that are not the
//! instruction in the program file, and the fault names the wrong culprit.
//! The host compares the program's instruction at ERROR_PC with device
//! memory there and names the STORE that wrote it (the device itself
//! keeps no record; the model and the RTL fault identically).

use isa::instr::Instr;
use isa::legal::DmaBlock;
use isa::program::Program;
use isa::{Device, InstrTrace, INSTR_BYTES};

/// When the fault at instruction `pc` is on code the program overwrote:
/// what device memory holds there and which STORE wrote it, as a sentence.
pub fn overwritten_code<D: Device + ?Sized>(dev: &mut D, prog: &Program, pc: u32) -> Option<String> {
    let original = prog.code.get(pc as usize)?;
    let addr = prog.code_addr + pc as u64 * INSTR_BYTES as u64;
    let word = dev.read_mem(addr, INSTR_BYTES).ok()?;
    if word == original.encode() {
        return None;
    }
    let found = match Instr::decode(&word) {
        Ok(i) => format!("`{i}`"),
        Err(_) => format!("{} (no instruction)", hex(&word)),
    };
    let trace = dev.trace();
    let writer = last_store_over(prog, &trace, addr)
        .map(|(i, start)| format!("the STORE of instruction {i} (started at cycle {start})"))
        .unwrap_or_else(|| "a STORE of the program".to_string());
    Some(format!(
        "the program overwrote its own code: {writer} wrote over instruction {pc} at {addr:#x}, so the device \
         fetched {found} there instead of `{original}`"
    ))
}

/// When the fault at instruction `pc` is an indexed `load`'s id outside
/// its table (`IndexOutOfRange`): which id, read from ERROR_INFO and
/// device memory, as a sentence naming its position — in the program's
/// tensor holding it when there is one (token ids outside the vocabulary).
pub fn index_out_of_range<D: Device + ?Sized>(dev: &mut D, prog: &Program, pc: u32) -> Option<String> {
    let Some(Instr::Load(l)) = prog.code.get(pc as usize) else { return None };
    let ix = isa::legal::IndexList::of_load(l)?;
    let j = dev.read_reg(isa::regs::ERROR_INFO).ok()? as u64;
    let at = ix.addr + j * ix.elem_bytes;
    let id = ix.decode(&dev.read_mem(at, ix.elem_bytes as usize).ok()?)[0];
    let rows = ix.limit;
    Some(match prog.tensors.iter().find(|t| (t.addr..t.addr + t.byte_len()).contains(&at)) {
        Some(t) => {
            let p = (at - t.addr) / ix.elem_bytes;
            format!("id {id} at position {p} of `{}` is outside the table's {rows} rows", t.name)
        }
        None => format!("id {j} of the load (at {at:#x}) is {id}, outside the table's {rows} rows"),
    })
}

/// The STORE that started last among those whose DRAM bytes cover `addr`.
fn last_store_over(prog: &Program, trace: &[InstrTrace], addr: u64) -> Option<(usize, u64)> {
    let end = addr + INSTR_BYTES as u64;
    prog.code
        .iter()
        .enumerate()
        .filter_map(|(i, instr)| match instr {
            Instr::Store(s) => {
                let b = DmaBlock::of_store(s);
                let overlaps = (0..b.rows).any(|r| {
                    let lo = b.dram + r * b.stride;
                    lo < end && addr < lo + b.row_bytes()
                });
                let t = trace.get(i)?;
                (overlaps && t.finish > 0).then_some((i, t.start))
            }
            _ => None,
        })
        .max_by_key(|&(_, start)| start)
}

/// A little-endian word as one hexadecimal number.
fn hex(bytes: &[u8]) -> String {
    let digits: String = bytes.iter().rev().map(|b| format!("{b:02x}")).collect();
    format!(
        "0x{}",
        match digits.trim_start_matches('0') {
            "" => "0",
            d => d,
        }
    )
}
