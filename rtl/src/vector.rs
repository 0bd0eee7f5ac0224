//! The verilated vector lane (`verilog/vec_lane.sv`): every element function
//! of [`isa::numerics::vector`] in binary32 integer logic, with the step
//! counts of [`isa::timing::VOP_CYCLES`]. A [`VecLane`] owns one model in
//! its own Verilator context and is driven from the thread that made it.

use crate::ffi::bridge;
use isa::instr as ins;
use isa::numerics::vector as v;

pub use crate::ffi::bridge::VecCase;

/// The lane's op codes past the `vop` ones (`instr::VOP_NAMES`).
pub const OP_FMA: u8 = 11;
pub const OP_SQRT: u8 = 12;
pub const OP_DEQUANTIZE: u8 = 13;
pub const OP_QUANTIZE: u8 = 14;

/// Every op code the lane runs, with a name for reports.
pub const OPS: &[(u8, &str)] = &[
    (ins::VOP_ADD, "add"),
    (ins::VOP_SUB, "sub"),
    (ins::VOP_MUL, "mul"),
    (ins::VOP_DIV, "div"),
    (ins::VOP_MAX, "max"),
    (ins::VOP_MIN, "min"),
    (ins::VOP_EXP, "exp"),
    (ins::VOP_ERF, "erf"),
    (ins::VOP_TANH, "tanh"),
    (ins::VOP_RECIP, "recip"),
    (ins::VOP_RSQRT, "rsqrt"),
    (OP_FMA, "fma"),
    (OP_SQRT, "sqrt"),
    (OP_DEQUANTIZE, "dequantize"),
    (OP_QUANTIZE, "quantize"),
];

impl VecCase {
    /// A float op on float32 bits (`c` only read by fma).
    pub fn float(op: u8, a: u32, b: u32, c: u32) -> VecCase {
        VecCase { op, a, b, c, qmin: 0, qmax: 0 }
    }

    /// `dequantize(q, scale, zp)`.
    pub fn dequantize(q: i32, scale: f32, zp: i32) -> VecCase {
        VecCase { op: OP_DEQUANTIZE, a: q as u32, b: scale.to_bits(), c: zp as u32, qmin: 0, qmax: 0 }
    }

    /// `quantize(x, scale, zp, qmin, qmax)`.
    pub fn quantize(x: f32, scale: f32, zp: i32, qmin: i32, qmax: i32) -> VecCase {
        VecCase {
            op: OP_QUANTIZE,
            a: x.to_bits(),
            b: scale.to_bits(),
            c: zp as u32,
            qmin: qmin as u32,
            qmax: qmax as u32,
        }
    }

    /// What [`isa::numerics::vector`] gives for this case (float32 bits, or
    /// the int32 of quantize).
    ///
    /// # Panics
    /// On an op code the lane does not have.
    pub fn expected(&self) -> u32 {
        let f = f32::from_bits;
        let (a, b, c) = (f(self.a), f(self.b), f(self.c));
        let r = match self.op {
            OP_FMA => v::fma(a, b, c),
            OP_SQRT => v::canonical(a.sqrt()),
            OP_DEQUANTIZE => v::dequantize(self.a as i32, b, self.c as i32),
            OP_QUANTIZE => return v::quantize(a, b, self.c as i32, self.qmin as i32, self.qmax as i32) as u32,
            ins::VOP_ADD => v::add(a, b),
            ins::VOP_SUB => v::sub(a, b),
            ins::VOP_MUL => v::mul(a, b),
            ins::VOP_DIV => v::div(a, b),
            ins::VOP_MAX => v::max(a, b),
            ins::VOP_MIN => v::min(a, b),
            ins::VOP_EXP => v::exp(a),
            ins::VOP_ERF => v::erf(a),
            ins::VOP_TANH => v::tanh(a),
            ins::VOP_RECIP => v::recip(a),
            ins::VOP_RSQRT => v::rsqrt(a),
            op => panic!("the vector lane has no op {op}"),
        };
        r.to_bits()
    }
}

/// One verilated `vec_lane`.
pub struct VecLane {
    model: cxx::UniquePtr<bridge::VecLaneModel>,
}

impl Default for VecLane {
    fn default() -> Self {
        VecLane::new()
    }
}

impl VecLane {
    pub fn new() -> VecLane {
        VecLane { model: bridge::new_vec_lane_model() }
    }

    /// Runs `cases` one after another, writing each result to `out` and the
    /// cycles from its start to its result to `cycles`.
    ///
    /// # Panics
    /// If the lengths differ, or the lane never finishes an op.
    pub fn run(&mut self, cases: &[VecCase], out: &mut [u32], cycles: &mut [u32]) {
        assert!(out.len() == cases.len() && cycles.len() == cases.len(), "vec_lane run: one output per case");
        if let Err(e) = self.model.pin_mut().run(cases, out, cycles) {
            panic!("{e}");
        }
    }
}
