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

/// Refuses, before anything runs, a program with instructions the backend
/// does not implement: transposed weight tiles (ISA.md §3), so `rtl` and
/// `both` name the first such instruction instead of faulting or differing
/// mid-run (compressed weight streams run on the RTL's LOAD unit,
/// `dma_load.sv`). (Its vector unit runs every
/// vector instruction, with `vector_lanes = array.cols`: `rtl::RtlDevice`
/// refuses other lane counts.)
pub fn check_program(backend: Backend, code: &[isa::Instr]) -> Result<()> {
    if backend == Backend::Sim {
        return Ok(());
    }
    check_transposed(backend, code)
}

/// 2:4-sparse weights (i8s24 tiles, second input rows) run on the RTL's
/// sparse PEs (array.sparsity_2_4) and gathers in its LOAD unit
/// (dma_load.sv); transposed weight tiles are still refused.
fn check_transposed(backend: Backend, code: &[isa::Instr]) -> Result<()> {
    match code.iter().position(uses_transposed_weights) {
        Some(at) => Err(FlowError::input(format!(
            "--backend {}: instruction {at} (`{}`) loads a transposed weight tile (trans = 1), which the RTL \
             does not implement yet; run this program with --backend sim",
            backend.name(),
            code[at]
        ))),
        None => Ok(()),
    }
}

/// An `ldw` or a `matmul` preload with `trans = 1` (not in the RTL yet).
pub fn uses_transposed_weights(i: &isa::Instr) -> bool {
    match i {
        isa::Instr::Ldw(l) => l.trans != 0,
        isa::Instr::Matmul(m) => m.trans != 0,
        _ => false,
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

#[cfg(test)]
mod tests {
    use super::*;
    use isa::instr::{self as ins, Instr};

    /// The RTL backends refuse transposed weight tiles (an `ldw` or a
    /// `matmul` preload with `trans = 1`) by instruction; the model runs them.
    #[test]
    fn transposed_weight_tiles_are_refused_on_the_rtl() {
        let ldw = Instr::from(ins::Ldw { k: 4, n: 4, trans: 1, ..Default::default() });
        let mm = Instr::from(ins::Matmul { m: 1, preload: 1, k: 4, n: 4, trans: 1, ..Default::default() });
        let plain = Instr::from(ins::Ldw { k: 4, n: 4, ..Default::default() });
        for code in [vec![plain, ldw], vec![plain, mm]] {
            assert!(check_program(Backend::Sim, &code).is_ok());
            for b in [Backend::Rtl, Backend::Both] {
                let e = check_program(b, &code).unwrap_err().to_string();
                assert!(e.contains("instruction 1") && e.contains("transposed"), "{e}");
            }
        }
        assert!(check_program(Backend::Rtl, &[plain]).is_ok());
    }

    /// Gathers (indexed loads) are in the RTL: no backend refuses them.
    #[test]
    fn gathers_are_accepted_on_the_rtl() {
        let gather = Instr::from(ins::Load {
            rows: 2,
            cols: 4,
            stride: 4,
            idx: ins::IDX_I64,
            idx_addr: 0x100,
            limit: 8,
            ..Default::default()
        });
        for b in [Backend::Sim, Backend::Rtl, Backend::Both] {
            assert!(check_program(b, &[gather]).is_ok());
        }
    }

    /// Compressed weight streams run on every backend.
    #[test]
    fn compressed_streams_are_accepted_on_the_rtl() {
        let plain = Instr::from(ins::Load { rows: 1, cols: 16, stride: 16, ..Default::default() });
        let stream =
            Instr::from(ins::Load { rows: 1, cols: 16, stride: 2, zfmt: ins::ZFMT_MASK, ..Default::default() });
        for b in [Backend::Sim, Backend::Rtl, Backend::Both] {
            assert!(check_program(b, &[plain, stream]).is_ok());
        }
    }
}
