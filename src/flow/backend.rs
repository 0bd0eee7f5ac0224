//! Where a program runs: the cycle-accurate Rust model, the verilated RTL,
//! or both in [`driver::Lockstep`] (every instruction's start and finish,
//! every counter and every byte compared). The RTL needs the root `rtl`
//! feature (and Verilator); a configuration is verilated on first use and
//! cached (`rtl::verilate`).

use super::{FlowError, Result};
use isa::{Device, HwConfig};
use rtl::waves::Waves;

/// Where a program runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
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

/// For `both`: where the lockstep records the first difference.
#[derive(Default)]
pub struct Comparison {
    slot: Option<driver::DifferenceSlot>,
}

impl Comparison {
    /// The lockstep comparison failed: a check failure naming the first
    /// difference; None otherwise.
    pub fn mismatch(&self) -> Option<FlowError> {
        let d = self.slot.as_ref()?.borrow().clone()?;
        Some(FlowError::check(format!("--backend both: the model and the RTL differ: {d} (model first)")))
    }
}

/// The Rust model of `cfg`.
pub fn model(cfg: &HwConfig) -> Result<sim::Model> {
    sim::Model::new(cfg).map_err(|e| FlowError::input(format!("config `{}`: {e}", cfg.name)))
}

/// Opens the device; `waves` (RTL only) receives the waveforms of the run.
pub fn open(backend: Backend, cfg: &HwConfig, waves: Option<&Waves>) -> Result<(Box<dyn Device>, Comparison)> {
    if waves.is_some() && backend == Backend::Sim {
        return Err(FlowError::input("--vcd records the RTL's waveforms: use it with --backend rtl or both"));
    }
    match backend {
        Backend::Sim => Ok((Box::new(model(cfg)?), Comparison::default())),
        #[cfg(feature = "rtl")]
        Backend::Rtl | Backend::Both => {
            let rtl = rtl::RtlDevice::with_options(cfg, waves)
                .map_err(|e| FlowError::input(format!("--backend {}: {e}", backend.name())))?;
            if backend == Backend::Rtl {
                return Ok((Box::new(rtl), Comparison::default()));
            }
            let both = driver::Lockstep::new(model(cfg)?, rtl, ("the model", "the RTL"));
            let slot = Some(both.difference());
            Ok((Box::new(both), Comparison { slot }))
        }
        #[cfg(not(feature = "rtl"))]
        Backend::Rtl | Backend::Both => Err(FlowError::input(format!(
            "--backend {}: this systole was built without the RTL; rebuild with `cargo build --release --features rtl` \
             (it needs Verilator: `apt-get install -y verilator`)",
            backend.name()
        ))),
    }
}
