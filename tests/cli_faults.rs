//! Fault messages say what happened: a program that stores over its own
//! code faults on bytes that are not the instruction in the file.

mod common;
use common::*;
use std::fs;

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hw/tiny.toml");

#[test]
fn self_overwriting_program_is_explained() {
    let g = tempfile::tempdir().unwrap();
    // Instruction 0 stores 32 zero bytes over instruction 41 (at 41 x 32 =
    // 0x520); the loads keep the fetch unit from reaching it first.
    let mut s = String::from("store dram=0x520 stride=32 rows=1 cols=32 addr=0\n");
    s += &"load dram=0x100000 stride=4 rows=4 cols=4 addr=4\n".repeat(40);
    s += "finish\nfinish\n";
    fs::write(g.path().join("ow.s"), s).unwrap();
    assert_ok(&systole(g.path(), &["asm", "ow.s", "--hw", TINY, "-o", "ow.sbin"]));
    let o = systole(g.path(), &["sim", "ow.sbin", "--hw", TINY]);
    assert_one_line_error(
        &o,
        2,
        &[
            "faulted at instruction 41 (`finish`): illegal instruction",
            "the program overwrote its own code: the STORE of instruction 0 (started at cycle",
            "wrote over instruction 41 at 0x520, so the device fetched 0x0 (no instruction) there instead of `finish`",
        ],
    );
}
