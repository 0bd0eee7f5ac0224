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
/// does not implement: compressed weight streams (ISA.md §3), so `rtl` and
/// `both` name the first such instruction instead of faulting or differing
/// mid-run. (Its vector unit runs every vector instruction, with
/// `vector_lanes = array.cols`: `rtl::RtlDevice` refuses other lane counts;
/// transposed weight tiles run on its column-write bus, 2:4-sparse tiles on
/// its sparse PEs, gathers in its LOAD unit.)
pub fn check_program(backend: Backend, code: &[isa::Instr]) -> Result<()> {
    if backend == Backend::Sim {
        return Ok(());
    }
    // Nor the LOAD unit's expander of compressed weight streams.
    if let Some(at) = code.iter().position(|i| i.is_compressed_load()) {
        return Err(FlowError::input(format!(
            "--backend {}: instruction {at} (`{}`) loads a compressed weight stream (zfmt = mask), which the RTL \
             does not implement yet; run this program with --backend sim, or compile it with --weights dense",
            backend.name(),
            code[at]
        )));
    }
    Ok(())
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

    /// Transposed weight tiles (an `ldw` or a `matmul` preload with
    /// `trans = 1`) are in the RTL: no backend refuses them.
    #[test]
    fn transposed_weight_tiles_are_accepted_on_the_rtl() {
        let ldw = Instr::from(ins::Ldw { k: 4, n: 4, trans: 1, ..Default::default() });
        let mm = Instr::from(ins::Matmul { m: 1, preload: 1, k: 4, n: 4, trans: 1, ..Default::default() });
        for b in [Backend::Sim, Backend::Rtl, Backend::Both] {
            assert!(check_program(b, &[ldw, mm]).is_ok());
        }
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

    /// The RTL backends refuse a compressed weight stream by instruction.
    #[test]
    fn compressed_streams_are_refused_on_the_rtl() {
        let plain = Instr::from(ins::Load { rows: 1, cols: 16, stride: 16, ..Default::default() });
        let stream =
            Instr::from(ins::Load { rows: 1, cols: 16, stride: 2, zfmt: ins::ZFMT_MASK, ..Default::default() });
        let code = [plain, stream];
        assert!(check_program(Backend::Sim, &code).is_ok());
        for b in [Backend::Rtl, Backend::Both] {
            let e = check_program(b, &code).unwrap_err().to_string();
            assert!(e.contains("instruction 1") && e.contains("zfmt=mask") && e.contains("compressed"), "{e}");
        }
    }
}
