//! The verilated quantized add (`verilog/qadd.sv`, `LATENCY` 1 as
//! `compute.sv` uses it), bit-exact with [`isa::numerics::qadd`]. A
//! [`QaddUnit`] owns one model in its own Verilator context and is driven from
//! the thread that made it.

use crate::ffi::bridge;
use isa::numerics::{qadd, QaddParams};

pub use crate::ffi::bridge::QaddCase;

impl QaddCase {
    /// Operand bytes `a`, `b` (int8 or uint8 by `unsigned_in`), parameters,
    /// clamp bounds (9-bit two's complement, as the `vadd` fields).
    pub fn new(a: u8, b: u8, unsigned_in: bool, p: QaddParams, qmin: i32, qmax: i32) -> QaddCase {
        QaddCase { a, b, unsigned_in, ra: p.ra.to_bits(), rb: p.rb.to_bits(), k: p.k.to_bits(), qmin, qmax }
    }

    /// What [`isa::numerics::qadd`] gives for this case.
    pub fn expected(&self) -> i32 {
        let v = |x: u8| if self.unsigned_in { x as i32 } else { x as i8 as i32 };
        let p = QaddParams { ra: f32::from_bits(self.ra), rb: f32::from_bits(self.rb), k: f32::from_bits(self.k) };
        qadd(v(self.a), v(self.b), p, self.qmin, self.qmax)
    }
}

/// One verilated `qadd`.
pub struct QaddUnit {
    model: cxx::UniquePtr<bridge::QaddModel>,
}

impl Default for QaddUnit {
    fn default() -> Self {
        QaddUnit::new()
    }
}

impl QaddUnit {
    pub fn new() -> QaddUnit {
        QaddUnit { model: bridge::new_qadd_model() }
    }

    /// Streams `cases` through the RTL, one per clock cycle, writing each
    /// result to `out`.
    ///
    /// # Panics
    /// If the lengths differ, or a case's `qmin` or `qmax` lies outside the
    /// 9-bit range `-256..=255`.
    pub fn run(&mut self, cases: &[QaddCase], out: &mut [i32]) {
        assert_eq!(cases.len(), out.len(), "qadd run: one output per case");
        for c in cases {
            for (name, v) in [("qmin", c.qmin), ("qmax", c.qmax)] {
                assert!((-256..=255).contains(&v), "qadd: {name} = {v} is outside the 9-bit range -256..=255");
            }
        }
        self.model.pin_mut().run(cases, out).expect("lengths checked");
    }
}
