//! Element-wise unary ops on quantized values as 256-entry tables
//! (docs/DESIGN.md §2: exact by construction). A table maps every input
//! byte to the output byte ONNX Runtime computes for it: dequantize in
//! binary32, the op in binary32 exactly as ORT's CPU kernels compute it,
//! quantize as MLAS does. The same table serves ORT's QLinear lookup ops
//! (`com.microsoft` QLinearSigmoid, QLinearLeakyRelu, which build it the
//! same way: `QlinearBuildLookupTable` over all 256 inputs), the QDQ and
//! QOperator forms DQ -> op -> Q that ORT runs in float, and the
//! requantization between scales of QLinearConcat (the identity).
//!
//! Every function here is per element: ORT's kernels for these ops
//! (MLAS's AVX2/FMA3 logistic and tanh, the masked tail included, and
//! Eigen's element-wise expressions) compute each lane with the same
//! operations, so a result never depends on an element's position
//! (`tools/ort-fixtures/lut_ops.py` checks all 256 inputs of each table in
//! one buffer against ORT; `compiler/tests/lut_ort.rs` pins them).

use crate::ir::{ElemType, Quant};
use isa::numerics;

/// A float function applied between dequantization and quantization.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryFn {
    /// Requantization only (QLinearConcat, Resize between scales).
    Identity,
    /// `Sigmoid`: MLAS `MlasComputeLogistic` (FMA3 kernel).
    Sigmoid,
    /// `Tanh`: MLAS `MlasComputeTanh` (FMA3 kernel).
    Tanh,
    /// `HardSigmoid`: `min(max(alpha * x + beta, 0), 1)`, no fused multiply-add.
    HardSigmoid { alpha: f32, beta: f32 },
    /// `HardSwish`: `x * HardSigmoid(x)` with alpha = 1/6, beta = 0.5.
    HardSwish,
    /// `LeakyRelu`: `x >= 0 ? x : alpha * x`.
    LeakyRelu { alpha: f32 },
    /// `Clip` (`Relu` is `Clip(0, +inf)`): `min(max(x, min), max)`.
    Clip { min: f32, max: f32 },
}

impl UnaryFn {
    pub fn name(&self) -> &'static str {
        match self {
            UnaryFn::Identity => "requantize",
            UnaryFn::Sigmoid => "sigmoid",
            UnaryFn::Tanh => "tanh",
            UnaryFn::HardSigmoid { .. } => "hardsigmoid",
            UnaryFn::HardSwish => "hardswish",
            UnaryFn::LeakyRelu { .. } => "leakyrelu",
            UnaryFn::Clip { .. } => "clip",
        }
    }

    /// The function on one binary32 value, as ORT's CPU kernel computes it.
    pub fn apply(&self, x: f32) -> f32 {
        match *self {
            UnaryFn::Identity => x,
            UnaryFn::Sigmoid => logistic(x),
            UnaryFn::Tanh => tanh(x),
            UnaryFn::HardSigmoid { alpha, beta } => hard_sigmoid(x, alpha, beta),
            UnaryFn::HardSwish => x * hard_sigmoid(x, 1.0 / 6.0, 0.5),
            UnaryFn::LeakyRelu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    alpha * x
                }
            }
            UnaryFn::Clip { min, max } => x.max(min).min(max),
        }
    }
}

/// Eigen's `(alpha * x + beta).cwiseMin(1).cwiseMax(0)`: a separate multiply
/// and add (ORT's Eigen code is not built with FMA).
#[allow(clippy::manual_clamp)] // Eigen's order: min with 1, then max with 0
fn hard_sigmoid(x: f32, alpha: f32, beta: f32) -> f32 {
    let v: f32 = alpha * x + beta;
    v.min(1.0).max(0.0)
}

/// MLAS `MlasComputeLogisticF32KernelFma3` on one lane: clamp to
/// [-18, 18], the Eigen rational p(x)/q(x) by fused multiply-adds, `+ 0.5`,
/// then `max(., 0)` (the FMA3 kernel clamps below only).
#[allow(clippy::excessive_precision)] // the C source's literals
pub fn logistic(x: f32) -> f32 {
    const LO: f32 = -18.0;
    const HI: f32 = 18.0;
    const A9: f32 = 4.37031012579801e-11;
    const A7: f32 = 1.15627324459942e-07;
    const A5: f32 = 6.08574864600143e-05;
    const A3: f32 = 8.51377133304701e-03;
    const A1: f32 = 2.48287947061529e-01;
    const B10: f32 = 6.10247389755681e-13;
    const B8: f32 = 5.76102136993427e-09;
    const B6: f32 = 6.29106785017040e-06;
    const B4: f32 = 1.70198817374094e-03;
    const B2: f32 = 1.16817656904453e-01;
    const B0: f32 = 9.93151921023180e-01;
    // vmaxps(lo, x) then vminps(hi, .): a NaN input takes the bound.
    let v = max_ps(LO, x);
    let v = min_ps(HI, v);
    let x2 = v * v;
    let mut p = x2.mul_add(A9, A7);
    p = x2.mul_add(p, A5);
    p = x2.mul_add(p, A3);
    p = x2.mul_add(p, A1);
    p *= v;
    let mut q = x2.mul_add(B10, B8);
    q = x2.mul_add(q, B6);
    q = x2.mul_add(q, B4);
    q = x2.mul_add(q, B2);
    q = x2.mul_add(q, B0);
    let r: f32 = p / q + 0.5;
    max_ps(0.0, r)
}

/// MLAS `MlasComputeTanhF32KernelFma3` on one lane: clamp to [-9, 9], the
/// Eigen rational p(x)/q(x) by fused multiply-adds.
#[allow(clippy::excessive_precision)]
pub fn tanh(x: f32) -> f32 {
    const LO: f32 = -9.0;
    const HI: f32 = 9.0;
    const A13: f32 = -2.76076847742355e-16;
    const A11: f32 = 2.00018790482477e-13;
    const A9: f32 = -8.60467152213735e-11;
    const A7: f32 = 5.12229709037114e-08;
    const A5: f32 = 1.48572235717979e-05;
    const A3: f32 = 6.37261928875436e-04;
    const A1: f32 = 4.89352455891786e-03;
    const B6: f32 = 1.19825839466702e-06;
    const B4: f32 = 1.18534705686654e-04;
    const B2: f32 = 2.26843463243900e-03;
    const B0: f32 = 4.89352518554385e-03;
    let v = min_ps(HI, max_ps(LO, x));
    let x2 = v * v;
    let mut p = x2.mul_add(A13, A11);
    for a in [A9, A7, A5, A3, A1] {
        p = p.mul_add(x2, a);
    }
    p *= v;
    let mut q = x2.mul_add(B6, B4);
    for b in [B2, B0] {
        q = q.mul_add(x2, b);
    }
    p / q
}

/// x86 `maxps(a, b)`: `a > b ? a : b` (the second operand when unordered).
fn max_ps(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

/// x86 `minps(a, b)`: `a < b ? a : b`.
fn min_ps(a: f32, b: f32) -> f32 {
    if a < b {
        a
    } else {
        b
    }
}

/// The quantized value a byte holds in type `ty` (the table's index is the
/// raw byte: an int8 value `v` is entry `v & 0xff`, ISA.md §3 `vlut`).
pub fn byte_value(ty: ElemType, b: u8) -> i32 {
    match ty {
        ElemType::I8 => b as i8 as i32,
        _ => b as i32,
    }
}

/// The 256-entry table of `f` from `(in_ty, qi)` to `(out_ty, qo)`: entry
/// `e` is `quantize(f(dequantize(value of byte e)))`, as a byte.
///
/// # Panics
/// If either type is not a quantized type (the graph validates that).
pub fn table(f: &UnaryFn, in_ty: ElemType, qi: Quant, out_ty: ElemType, qo: Quant) -> [u8; 256] {
    assert!(in_ty.range().is_some(), "lut input is quantized");
    let (qmin, qmax) = out_ty.range().expect("lut output is quantized");
    let mut t = [0u8; 256];
    for (e, out) in t.iter_mut().enumerate() {
        let x = numerics::dequantize(byte_value(in_ty, e as u8), qi.scale, qi.zero_point);
        *out = numerics::quantize(f.apply(x), qo.scale, qo.zero_point, qmin, qmax) as u8;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_between_equal_quantizations_is_the_identity() {
        let q = Quant { scale: 0.037, zero_point: -5 };
        let t = table(&UnaryFn::Identity, ElemType::I8, q, ElemType::I8, q);
        assert!(t.iter().enumerate().all(|(e, &b)| b == e as u8));
    }

    #[test]
    fn functions_are_close_to_their_definitions() {
        for i in -400..=400 {
            let x = i as f32 / 40.0;
            assert!((logistic(x) - 1.0 / (1.0 + (-x).exp())).abs() < 1e-6, "sigmoid({x})");
            assert!((tanh(x) - x.tanh()).abs() < 1e-6, "tanh({x})");
        }
    }
}
