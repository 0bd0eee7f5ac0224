//! The RTL's waveforms (`sim --backend rtl --vcd`, `--features rtl`): time
//! is the run's at the configured clock (one clock period = 1 / clock.mhz),
//! `--vcd-window` dumps only its cycles, and a `.fst` file is FST.
#![cfg(feature = "rtl")]

mod common;
use common::*;
use std::path::Path;

const TINY: &str = "examples/hw/tiny.toml";
/// tiny.toml's clock: 500 MHz, a 2000 ps period.
const PERIOD_PS: u64 = 2000;

fn asm_gemm(d: &Path) {
    let src = root().join("examples/asm/gemm_4x4.s");
    let o = systole(d, &["asm", src.to_str().unwrap(), "--hw", root().join(TINY).to_str().unwrap(), "-o", "g.sbin"]);
    assert_ok(&o);
}

fn sim_rtl(d: &Path, extra: &[&str]) -> std::process::Output {
    let hw = root().join(TINY);
    let mut args = vec!["sim", "g.sbin", "--hw", hw.to_str().unwrap(), "--backend", "rtl", "--json", "r.json"];
    args.extend_from_slice(extra);
    systole(d, &args)
}

fn cycles(d: &Path) -> u64 {
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("r.json")).unwrap()).unwrap();
    r["total_cycles"].as_u64().unwrap()
}

/// A VCD's `$timescale`, its timestamps, and the times at which `clk` rises.
fn read_vcd(text: &str) -> (String, Vec<u64>, Vec<u64>) {
    let header = text.split("$enddefinitions").next().unwrap();
    let timescale = header.split("$timescale").nth(1).unwrap().split("$end").next().unwrap().trim().to_string();
    // `$var wire 1 <id> clk $end` of the top module.
    let clk = header
        .lines()
        .map(str::split_whitespace)
        .map(|w| w.collect::<Vec<_>>())
        .find(|w| w.len() >= 5 && w[0] == "$var" && w[4] == "clk")
        .map(|w| w[3].to_string())
        .expect("a clk signal");
    let (mut times, mut rises) = (Vec::new(), Vec::new());
    let mut now = 0;
    for line in text.lines() {
        if let Some(t) = line.strip_prefix('#') {
            now = t.parse().unwrap();
            times.push(now);
        } else if line == format!("1{clk}") {
            rises.push(now);
        }
    }
    (timescale, times, rises)
}

#[test]
fn vcd_time_is_the_run_at_the_configured_clock_and_a_window_dumps_its_cycles() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    asm_gemm(d);
    let o = sim_rtl(d, &["--vcd", "all.vcd"]);
    assert_ok(&o);
    assert!(stdout(&o).contains("waves: all.vcd (VCD, all run cycles; run cycle N starts at N x 2000 ps steps)"));
    let n = cycles(d);
    let (timescale, times, rises) = read_vcd(&std::fs::read_to_string(d.join("all.vcd")).unwrap());
    assert_eq!(timescale, "1ps");
    // Run cycle 0 starts at time 0; the clock rises half a period into
    // every cycle, one period apart, through the last cycle of the run
    // (and the register reads after it).
    assert_eq!(times[0], 0);
    assert_eq!(rises[0], PERIOD_PS / 2);
    assert!(rises.windows(2).all(|w| w[1] - w[0] == PERIOD_PS), "the clock has one period");
    assert!(rises.len() as u64 > n, "{} rising edges, {n} cycles", rises.len());

    // The window: its cycles only, at the same times as in the full dump.
    let o = sim_rtl(d, &["--vcd", "win.vcd", "--vcd-window", "40:50"]);
    assert_ok(&o);
    assert!(stdout(&o).contains("VCD, run cycles [40, 50)"), "{}", stdout(&o));
    let (_, times, rises) = read_vcd(&std::fs::read_to_string(d.join("win.vcd")).unwrap());
    assert_eq!(times.first(), Some(&(40 * PERIOD_PS)));
    assert_eq!(times.last(), Some(&(49 * PERIOD_PS + PERIOD_PS / 2)));
    assert_eq!(rises.len(), 10);
    // The window needs a waveform; END after START.
    let o = sim_rtl(d, &["--vcd-window", "1:5"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = sim_rtl(d, &["--vcd", "x.vcd", "--vcd-window", "5:1"]);
    assert_fails(&o, 2, &["--vcd-window", "greater than START"], d, &["x.vcd"]);
}

#[test]
fn a_fst_file_is_fst_with_the_same_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    asm_gemm(d);
    let o = sim_rtl(d, &["--vcd", "w.fst", "--vcd-window", "10:30"]);
    assert_ok(&o);
    let b = std::fs::read(d.join("w.fst")).unwrap();
    assert!(!d.join("w.fst.partial").exists());
    // The FST header block (gtkwave's fstapi.c): tag 0 (FST_BL_HDR), its
    // length, then the first and last dumped times (big-endian), and the
    // time scale as a power of ten at byte 73.
    let be = |at: usize| u64::from_be_bytes(b[at..at + 8].try_into().unwrap());
    assert_eq!(b[0], 0, "FST header block");
    assert_eq!(be(1), 329, "FST header length");
    assert_eq!((be(9), be(17)), (10 * PERIOD_PS, 29 * PERIOD_PS + PERIOD_PS / 2));
    assert_eq!(b[73] as i8, -12, "1 ps steps");
}
