//! The verilated systolic array (`verilog/array.sv`): ROWS x COLS
//! weight-stationary PEs with double-buffered (active / shadow) weights,
//! bit-exact with `sim::array::matmul` (wrapping int32 sums of int8 weights
//! times int8 or uint8 inputs).
//!
//! Two models are built, 4x4 and 16x16 ([`SIZES`]); each [`SystolicArray`]
//! owns one in its own Verilator context and is driven from the thread that
//! made it. Time is counted in [`SystolicArray::step`] calls: the input row
//! streamed in step `t` comes out, all columns aligned, in step
//! `t + latency()` (`latency() = ROWS + COLS - 1`), and a `swap` or a
//! weight write issued in step `s` reaches PE `(r, c)` in step `s + r + c`
//! (see the module header of `array.sv`).

use crate::ffi::bridge;
use crate::requant::RtlError;
use std::pin::Pin;

pub use crate::ffi::bridge::ArrayCycle;

/// The `(ROWS, COLS)` configurations built.
pub const SIZES: [(u32, u32); 2] = [(4, 4), (16, 16)];

/// One verilated array.
pub struct SystolicArray {
    model: cxx::UniquePtr<bridge::ArrayModel>,
    rows: usize,
    cols: usize,
}

impl SystolicArray {
    /// A fresh, reset model of `rows x cols` (one of [`SIZES`]).
    pub fn new(rows: u32, cols: u32) -> Result<SystolicArray, RtlError> {
        let model = bridge::new_array_model(rows, cols)?;
        let (rows, cols) = (model.rows() as usize, model.cols() as usize);
        Ok(SystolicArray { model, rows, cols })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Cycles from an input row to its output row: `ROWS + COLS - 1`.
    pub fn latency(&self) -> usize {
        self.model.latency() as usize
    }

    fn pin(&mut self) -> Pin<&mut bridge::ArrayModel> {
        self.model.pin_mut()
    }

    /// One cycle with the synchronous reset asserted: both weight buffers
    /// zero, no valid row in flight.
    pub fn reset(&mut self) {
        self.pin().reset();
    }

    /// One clock cycle: drives the controls `cyc`, the input row `x` (ROWS
    /// bytes) and the weight row `w` (COLS bytes); writes the output row of
    /// this cycle to `out` (COLS values) and returns whether it is valid.
    ///
    /// # Panics
    /// If a slice has the wrong length.
    pub fn step(&mut self, cyc: &ArrayCycle, x: &[u8], w: &[u8], out: &mut [i32]) -> bool {
        self.pin().step(cyc, x, w, out).unwrap_or_else(|e| panic!("{}", e.what()))
    }

    /// [`step`](Self::step) for every cycle of `cycles`: `x` holds ROWS bytes
    /// per cycle, `w` and `out` COLS per cycle; `out_valid[i]` is the valid
    /// flag of cycle `i`.
    ///
    /// # Panics
    /// If a slice has the wrong length.
    pub fn run(&mut self, cycles: &[ArrayCycle], x: &[u8], w: &[u8], out_valid: &mut [bool], out: &mut [i32]) {
        let mut v = vec![0u8; cycles.len()];
        self.pin().run(cycles, x, w, &mut v, out).unwrap_or_else(|e| panic!("{}", e.what()));
        for (o, b) in out_valid.iter_mut().zip(&v) {
            *o = *b != 0;
        }
        assert_eq!(out_valid.len(), cycles.len(), "run: one valid flag per cycle");
    }
}
