//! Where a program runs (`--backend`): the cycle-accurate Rust model, the
//! verilated RTL, or both in lockstep (DESIGN §5, §7). The RTL needs the
//! `rtl` feature (and Verilator); a configuration is verilated on first
//! use and cached (`rtl::verilate`).

use super::error::{CliError, Result};
use clap::ValueEnum;
use isa::{Device, HwConfig};
use std::path::Path;

/// Where a program runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The cycle-accurate Rust model.
    Sim,
    /// The verilated RTL (build with `--features rtl`; needs Verilator).
    Rtl,
    /// Both on the same program and inputs: outputs, total cycles, every
    /// counter and each instruction's start and finish cycle must agree
    /// (exit 1 at the first difference).
    Both,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sim => "sim",
            Backend::Rtl => "rtl",
            Backend::Both => "both",
        }
    }
}

/// For `both`: where the lockstep comparison records the first difference.
#[derive(Default)]
pub struct Comparison {
    #[cfg(feature = "rtl")]
    difference: Option<std::rc::Rc<std::cell::RefCell<Option<driver::compare::Difference>>>>,
}

impl Comparison {
    /// The lockstep comparison failed: a check failure (exit 1) naming the
    /// first difference; None otherwise.
    pub fn mismatch(&self) -> Option<CliError> {
        #[cfg(not(feature = "rtl"))]
        let _ = self;
        #[cfg(feature = "rtl")]
        if let Some(d) = self.difference.as_ref().and_then(|d| d.borrow().clone()) {
            return Some(CliError::check(format!("--backend both: the model and the RTL differ: {d} (model first)")));
        }
        None
    }
}

fn model(cfg: &HwConfig) -> Result<sim::Model> {
    sim::Model::new(cfg).map_err(|e| CliError::input(format!("config `{}`: {e}", cfg.name)))
}

/// Opens the device; `vcd` (RTL only) receives the waveforms of the run.
pub fn open(backend: Backend, cfg: &HwConfig, vcd: Option<&Path>) -> Result<(Box<dyn Device>, Comparison)> {
    if vcd.is_some() && backend == Backend::Sim {
        return Err(CliError::input("--vcd records the RTL's waveforms: use it with --backend rtl or both"));
    }
    match backend {
        Backend::Sim => Ok((Box::new(model(cfg)?), Comparison::default())),
        #[cfg(feature = "rtl")]
        Backend::Rtl | Backend::Both => {
            let rtl = rtl::RtlDevice::with_options(cfg, vcd)
                .map_err(|e| CliError::input(format!("--backend {}: {e}", backend.name())))?;
            if backend == Backend::Rtl {
                return Ok((Box::new(rtl), Comparison::default()));
            }
            let both = rtl::Lockstep::new(model(cfg)?, rtl);
            let difference = Some(both.difference());
            Ok((Box::new(both), Comparison { difference }))
        }
        #[cfg(not(feature = "rtl"))]
        Backend::Rtl | Backend::Both => Err(CliError::input(format!(
            "--backend {}: this systole was built without the RTL; rebuild with `cargo build --release --features rtl` \
             (it needs Verilator: `apt-get install -y verilator`)",
            backend.name()
        ))),
    }
}
