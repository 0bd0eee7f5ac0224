//! The verilated requantizer (`verilog/requant.sv`), bit-exact with
//! [`isa::numerics::requantize`] for `zp`, `qmin`, `qmax` in the
//! [`qw()`]-bit two's-complement range (`QW` = the ISA's `zp` field width, 9:
//! every int8 and uint8 bound).
//!
//! Three models are built, one per pipeline depth (`LATENCY` 0, 1, 2, see
//! the module's header comment); each [`Requantizer`] owns one in its own
//! Verilator context. A model is driven from the thread that made it
//! (`Requantizer` is neither `Send` nor `Sync`).

use crate::ffi::bridge;
use std::fmt;
use std::pin::Pin;

pub use crate::ffi::bridge::RequantCase;

/// The pipeline depths built (`LATENCY` of `requant.sv`).
pub const LATENCIES: [u32; 3] = [0, 1, 2];

/// Width of `zp`, `qmin`, `qmax` and the output: the `QW` the models were
/// verilated with (`SYS_REQUANT_ZP_W` of the generated header).
pub fn qw() -> u32 {
    bridge::requant_qw()
}

/// The range of a `QW`-bit two's-complement value.
pub fn q_range() -> (i32, i32) {
    let w = qw();
    (-(1 << (w - 1)), (1 << (w - 1)) - 1)
}

/// An error from the C++ side (a bad latency, mismatched lengths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtlError(pub String);

impl fmt::Display for RtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RtlError {}

impl From<cxx::Exception> for RtlError {
    fn from(e: cxx::Exception) -> Self {
        RtlError(e.what().to_string())
    }
}

impl RequantCase {
    pub fn new(acc: i32, scale: f32, zp: i32, qmin: i32, qmax: i32) -> RequantCase {
        RequantCase { acc, scale: scale.to_bits(), zp, qmin, qmax }
    }

    /// What [`isa::numerics::requantize`] gives for this case.
    pub fn expected(&self) -> i32 {
        isa::numerics::requantize(self.acc, f32::from_bits(self.scale), self.zp, self.qmin, self.qmax)
    }
}

/// One verilated requantizer.
pub struct Requantizer {
    model: cxx::UniquePtr<bridge::RequantModel>,
}

impl Requantizer {
    /// A fresh model of pipeline depth `latency` (one of [`LATENCIES`]).
    pub fn new(latency: u32) -> Result<Requantizer, RtlError> {
        let model = bridge::new_requant_model(latency)?;
        Ok(Requantizer { model })
    }

    pub fn latency(&self) -> u32 {
        self.model.latency()
    }

    fn pin(&mut self) -> Pin<&mut bridge::RequantModel> {
        self.model.pin_mut()
    }

    /// `requantize(acc, scale, zp, qmin, qmax)` computed by the RTL (the
    /// pipeline is clocked until the result is out).
    ///
    /// # Panics
    /// If `zp`, `qmin` or `qmax` lie outside [`q_range()`].
    pub fn requantize(&mut self, acc: i32, scale: f32, zp: i32, qmin: i32, qmax: i32) -> i32 {
        let mut out = [0];
        self.requantize_batch(&[RequantCase::new(acc, scale, zp, qmin, qmax)], &mut out);
        out[0]
    }

    /// Streams `cases` through the RTL, one per clock cycle, writing each
    /// result to `out`.
    ///
    /// # Panics
    /// If the lengths differ, or a case's `zp`, `qmin` or `qmax` lies
    /// outside [`q_range()`].
    pub fn requantize_batch(&mut self, cases: &[RequantCase], out: &mut [i32]) {
        assert_eq!(cases.len(), out.len(), "requantize_batch: one output per case");
        let (lo, hi) = q_range();
        for c in cases {
            for (name, v) in [("zp", c.zp), ("qmin", c.qmin), ("qmax", c.qmax)] {
                assert!((lo..=hi).contains(&v), "requant: {name} = {v} is outside the {}-bit range {lo}..={hi}", qw());
            }
        }
        self.pin().run(cases, out).expect("lengths checked");
    }

    // Pin-level access, for tests of the clocking itself.

    /// Drives the data inputs (no clock edge, no evaluation).
    pub fn set_inputs(&mut self, c: &RequantCase) {
        self.pin().set_inputs(c);
    }

    /// Drives the clock enable.
    pub fn set_ce(&mut self, ce: bool) {
        self.pin().set_ce(ce);
    }

    /// Settles the combinational logic.
    pub fn eval(&mut self) {
        self.pin().eval();
    }

    /// One clock cycle (rising then falling edge).
    pub fn tick(&mut self) {
        self.pin().tick();
    }

    /// The output `q`, sign-extended.
    pub fn output(&self) -> i32 {
        self.model.output()
    }
}
