//! The run flow as a library: what `systole run`, `sim` and `sweep` do,
//! callable without the command line.
//!
//! - [`files`]: reading input files (bounded, regular files only);
//!   [`hw`]: the hardware configuration (a TOML file or a shipped preset)
//!   and the energy table; [`compile`]: model import, lowering, programs.
//! - [`backend`]: where a program runs (the Rust model, the verilated RTL,
//!   or both in [`driver::Lockstep`]).
//! - [`layers`]: the per-layer facts a compiled program records, what its
//!   code says about each layer, and the per-layer energy attribution.
//! - [`infer`]: a batch of inferences through the driver, with the totals
//!   and per-layer cycles a report needs, checked as it goes.
//! - [`check`]: every layer's output buffer against the reference
//!   interpreter, naming the first differing run, layer, element and tile.
//! - [`report`]: the typed report (totals, units, energy, per inference,
//!   per layer), serialized as the JSON of `docs/schema/report.schema.json`.
//! - [`hosted`]: a program with named inputs (a transformer's: int64 token
//!   ids and masks by name, gathered on the device; host preprocessing for
//!   what the device cannot run), run and checked.
//! - [`run`]: a compiled model on host inputs, on a backend, and its report
//!   (what `systole run` does, without the files).
//! - [`sweep`]: the design-space sweep engine (`docs/schema/sweep.schema.json`).
//! - [`regression`]: regression baselines (cycles, energy, DRAM bytes,
//!   output hash per point) and their comparison, as text and JUnit.
//! - [`pareto`]: the Pareto front of design points.
//! - [`reference`](mod@reference): a model with several named inputs (int64 token ids,
//!   masks) run in the reference interpreter, outputs by name.
//! - [`compare`](mod@compare): a base model and its variants (quantized,
//!   pruned, distilled; a float model on the host's float reference) on the
//!   same inputs: accuracy, weight bytes, memory, cycles, energy, DRAM
//!   traffic (`docs/schema/compare.schema.json`).
//! - [`baseline`]: per GEMM layer its shape, ideal cycles, SCALE-Sim's
//!   weight-stationary cycles and minimal DRAM bytes (the yardsticks).
//!
//! Errors are [`FlowError`]: bad input, or a check that failed.

pub mod backend;
pub mod baseline;
pub mod check;
pub mod compare;
pub mod compile;
pub mod files;
pub mod hosted;
pub mod hw;
pub mod infer;
pub mod layers;
pub mod pareto;
pub mod reference;
pub mod regression;
pub mod report;
pub mod run;
pub mod sweep;

/// A compiled model as the flow runs it: the program, the layers it
/// records ([`layers::from_program`]) and the configuration it runs on.
#[derive(Clone, Copy)]
pub struct Compiled<'a> {
    pub prog: &'a isa::program::Program,
    pub layers: &'a [layers::LayerMeta],
    pub cfg: &'a isa::HwConfig,
}

/// What went wrong in the flow, said for a user in one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// Bad input: a program, configuration or array that does not fit, a
    /// device fault (the command line exits 2).
    #[error("{0}")]
    Input(String),
    /// A check failed: the device and the reference (or two backends)
    /// differ (the command line exits 1).
    #[error("{0}")]
    Check(String),
}

impl FlowError {
    pub fn input(message: impl std::fmt::Display) -> FlowError {
        FlowError::Input(message.to_string())
    }

    pub fn check(message: impl std::fmt::Display) -> FlowError {
        FlowError::Check(message.to_string())
    }
}

pub type Result<T> = std::result::Result<T, FlowError>;

/// A shape as messages write it: `1x16x8x8`, or `scalar`.
pub fn shape_text(shape: &[u64]) -> String {
    if shape.is_empty() {
        "scalar".to_string()
    } else {
        shape.iter().map(u64::to_string).collect::<Vec<_>>().join("x")
    }
}

/// Which of a batch's runs a message is about, counted from 1 as a user
/// counts them ("run 3 of 32"); a single run is "the run".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunNumber {
    /// Index from 0.
    pub index: usize,
    pub of: usize,
}

impl std::fmt::Display for RunNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.of == 1 {
            write!(f, "the run")
        } else {
            write!(f, "run {} of {}", self.index + 1, self.of)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RunNumber;

    #[test]
    fn runs_are_counted_from_one() {
        assert_eq!(RunNumber { index: 0, of: 1 }.to_string(), "the run");
        assert_eq!(RunNumber { index: 2, of: 32 }.to_string(), "run 3 of 32");
        assert_eq!(RunNumber { index: 31, of: 32 }.to_string(), "run 32 of 32");
    }
}
