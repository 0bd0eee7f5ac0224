//! What the RTL backend's waveforms are: the file format, the time scale
//! and the window of run cycles dumped. Needs no Verilator (the CLI parses
//! and checks these before any build).
//!
//! Waveform time is the run's time: run cycle `t` (counted as the model
//! and `systole sim`'s trace count it, from the cycle after `CTRL.start`)
//! begins at `t` clock periods, its clock's rising edge half a period
//! later. The reset and the register writes before the run are not
//! dumped.

use std::path::{Path, PathBuf};

/// The waveform file's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WaveFormat {
    /// Value Change Dump (IEEE 1364), text; every viewer reads it.
    Vcd,
    /// GTKWave's Fast Signal Trace: compressed, much smaller; a second
    /// cached library per configuration, built on first use.
    Fst,
}

impl WaveFormat {
    /// `.fst` files are FST, everything else VCD.
    pub fn of_path(path: &Path) -> WaveFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("fst") => WaveFormat::Fst,
            _ => WaveFormat::Vcd,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            WaveFormat::Vcd => "vcd",
            WaveFormat::Fst => "fst",
        }
    }
}

/// A waveform to write: where, in which format, which run cycles
/// (`[start, end)`; None: all of them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waves {
    pub path: PathBuf,
    pub format: WaveFormat,
    pub window: Option<(u64, u64)>,
}

impl Waves {
    /// Whether run cycle `t` is dumped.
    pub fn dumps(&self, t: u64) -> bool {
        self.window.is_none_or(|(start, end)| (start..end).contains(&t))
    }
}

/// The waveform's time step and a half clock period in steps for a clock
/// of `mhz`: picoseconds when a half period is a whole number of them
/// (500 MHz: 1000 ps), else femtoseconds (rounded to the nearest one).
pub fn timescale(mhz: f64) -> (&'static str, u64) {
    let half_ps = 1e6 / (2.0 * mhz);
    if (half_ps - half_ps.round()).abs() < 1e-9 && half_ps >= 1.0 {
        ("1ps", half_ps.round() as u64)
    } else {
        ("1fs", (half_ps * 1e3).round().max(1.0) as u64)
    }
}

/// Parses `START:END` (run cycles, END exclusive and greater than START).
pub fn parse_window(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s.split_once(':').ok_or_else(|| format!("`{s}`: expected START:END in cycles, e.g. 100:500"))?;
    let num =
        |x: &str, what: &str| x.trim().parse::<u64>().map_err(|_| format!("`{s}`: {what} `{x}` is not a cycle number"));
    let (start, end) = (num(a, "START")?, num(b, "END")?);
    if end <= start {
        return Err(format!("`{s}`: END must be greater than START (the window is [START, END))"));
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_period_is_a_whole_number_of_steps() {
        assert_eq!(timescale(500.0), ("1ps", 1000));
        assert_eq!(timescale(1000.0), ("1ps", 500));
        assert_eq!(timescale(800.0), ("1ps", 625));
        // 3 ns periods are not whole picoseconds per half: femtoseconds.
        assert_eq!(timescale(333.0), ("1fs", 1_501_502));
        assert_eq!(timescale(3000.0), ("1fs", 166_667));
    }

    #[test]
    fn windows_and_formats_parse() {
        assert_eq!(parse_window("100:500"), Ok((100, 500)));
        assert!(parse_window("500:100").unwrap_err().contains("greater"));
        assert!(parse_window("5").unwrap_err().contains("START:END"));
        assert!(parse_window("a:5").unwrap_err().contains("START `a`"));
        assert_eq!(WaveFormat::of_path(Path::new("w.FST")), WaveFormat::Fst);
        assert_eq!(WaveFormat::of_path(Path::new("w.vcd")), WaveFormat::Vcd);
        let w = Waves { path: "w.vcd".into(), format: WaveFormat::Vcd, window: Some((2, 4)) };
        assert!(!w.dumps(1) && w.dumps(2) && w.dumps(3) && !w.dumps(4));
    }
}
