//! Linear (bilinear) Resize of NCHW's H and W as ONNX Runtime 1.32's CPU
//! kernel computes it, pinned by `tools/ort-fixtures/resize_linear_probe.py`
//! and `compiler/tests/ort_resize.rs`:
//!
//! - per axis, per output position `o`, the source coordinate in binary32
//!   (the `coordinate_transformation_mode`'s formula), clamped to
//!   `[0, len − 1]`; `i1 = int(x)`, `i2 = min(i1 + 1, len − 1)`,
//!   `d1 = |x − i1|`, `d2 = |x − i2|` (both `0.5` where `i1 == i2`);
//! - `v = f32(dx2·dy2)·X11 + f32(dx1·dy2)·X21 + f32(dx2·dy1)·X12 +
//!   f32(dx1·dy1)·X22`, every product and sum binary32, summed left to right
//!   (`X21` is row `y1`, column `x2`);
//! - on integers (QOperator: Resize on int8/uint8), `trunc(v)` — a C++ cast,
//!   not rounding; on dequantized values (QDQ: DQ → Resize → Q), `v` of
//!   `f32(q − zp)·s`, then QuantizeLinear (round half to even). The two
//!   differ, so they are two meanings of one op ([`LinearRounding`]);
//! - an output of the input's size is the input (then requantized), whatever
//!   the scales: ORT returns it unchanged.
//!
//! A third meaning is ORT's channels-last integer kernel
//! (`NhwcUpsampleBilinearInteger`, `upsample.h`), which runs a QOperator
//! Resize whose input ORT's NHWC transformer made channels-last (see
//! `onnx::import`'s `ort_channels_last`): per axis the same clamped `x`,
//! `i1`, `i2`, but integer weights `s = int32(x · 2^10)` (exact scaling,
//! truncated: `x ≥ 0`), `d1 = |s − i1·2^10|`, `d2 = |s − i2·2^10|` (`512`
//! each where `i1 == i2`); `w11 = dx2·dy2`, …, summing to `2^20`; the output
//! `(w11·X11 + w21·X21 + w12·X12 + w22·X22) / 2^20` in int32, toward zero
//! ([`interpolate_integer`]). Pinned by `tools/ort-fixtures/resize_fixtures.py`'s
//! `nhwc` cases (QLinearConv → Resize).
//!
//! The IR stores the mode and scales, not the taps: [`LinearResize::taps`]
//! derives them, the one definition the interpreter and the lowering share.

/// ONNX `coordinate_transformation_mode`s that ORT supports for linear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoordMode {
    HalfPixel,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
}

impl CoordMode {
    pub const ALL: [CoordMode; 4] =
        [CoordMode::HalfPixel, CoordMode::PytorchHalfPixel, CoordMode::AlignCorners, CoordMode::Asymmetric];

    pub fn name(self) -> &'static str {
        match self {
            CoordMode::HalfPixel => "half_pixel",
            CoordMode::PytorchHalfPixel => "pytorch_half_pixel",
            CoordMode::AlignCorners => "align_corners",
            CoordMode::Asymmetric => "asymmetric",
        }
    }

    pub fn parse(s: &str) -> Option<CoordMode> {
        CoordMode::ALL.into_iter().find(|m| m.name() == s)
    }

    /// The source coordinate of output position `o` (binary32, ORT's order
    /// of operations), before clamping.
    pub fn original(self, o: usize, scale: f32, out_len: usize, in_len: usize) -> f32 {
        let x = o as f32;
        match self {
            CoordMode::Asymmetric => x / scale,
            CoordMode::HalfPixel => (x + 0.5) / scale - 0.5,
            CoordMode::PytorchHalfPixel if out_len > 1 => (x + 0.5) / scale - 0.5,
            CoordMode::PytorchHalfPixel => 0.0,
            CoordMode::AlignCorners if out_len == 1 => 0.0,
            CoordMode::AlignCorners => x * (in_len - 1) as f32 / (out_len - 1) as f32,
        }
    }
}

/// How the interpolated value becomes the output integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinearRounding {
    /// On the integers, truncated toward zero; the output keeps the
    /// input's quantization (QOperator: Resize on int8/uint8).
    Trunc,
    /// On the dequantized input, then QuantizeLinear into the output's
    /// quantization (QDQ: DequantizeLinear → Resize → QuantizeLinear).
    Requantize,
    /// ORT's channels-last integer kernel: 2^10-scaled integer weights,
    /// the int32 sum divided by 2^20 toward zero; the output keeps the
    /// input's quantization (a QOperator Resize whose input ORT computes
    /// channels-last: after a QLinearConv).
    NhwcInteger,
}

impl LinearRounding {
    pub fn name(self) -> &'static str {
        match self {
            LinearRounding::Trunc => "trunc",
            LinearRounding::Requantize => "requantize",
            LinearRounding::NhwcInteger => "nhwc_integer",
        }
    }
}

/// One output position's two source indices and distances along an axis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tap {
    pub i1: usize,
    pub i2: usize,
    pub d1: f32,
    pub d2: f32,
}

/// A linear Resize of H and W to `out` (rows, columns) with the node's
/// binary32 `scales` (H, W) — as ORT has them: the `scales` input, or
/// `f32(out) / f32(in)` for a `sizes` input.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearResize {
    pub mode: CoordMode,
    pub scales: [f32; 2],
    pub out: [usize; 2],
    pub rounding: LinearRounding,
}

impl LinearResize {
    /// The taps of H and W of an input of `in_hw` rows and columns. Where
    /// the output has the input's size ORT copies the input, whatever the
    /// scales say (`upsample.cc`: equal dimensions return the input): taps
    /// of weight 1 on the pixel itself (`1·x + 0·… = x` exactly).
    pub fn taps(&self, in_hw: [usize; 2]) -> [Vec<Tap>; 2] {
        if self.out == in_hw {
            return in_hw.map(|n| (0..n).map(|o| Tap { i1: o, i2: (o + 1).min(n - 1), d1: 0.0, d2: 1.0 }).collect());
        }
        [self.axis_taps(0, in_hw[0]), self.axis_taps(1, in_hw[1])]
    }

    /// The taps of the `axis` (0: H, 1: W) of an input `in_len` long.
    fn axis_taps(&self, axis: usize, in_len: usize) -> Vec<Tap> {
        let out_len = self.out[axis];
        let top = (in_len - 1) as f32;
        (0..out_len)
            .map(|o| {
                let x = self.mode.original(o, self.scales[axis], out_len, in_len).clamp(0.0, top);
                let i1 = (x as usize).min(in_len - 1);
                let i2 = (i1 + 1).min(in_len - 1);
                let (d1, d2) = if i1 == i2 { (0.5, 0.5) } else { ((x - i1 as f32).abs(), (x - i2 as f32).abs()) };
                Tap { i1, i2, d1, d2 }
            })
            .collect()
    }
}

/// A tap's distances as ORT's integer kernel has them: `(d1, d2)` scaled
/// by 2^10 (`x` is `i1 + d1` with `x ≥ 0`, so `int32(x·2^10) − i1·2^10` is
/// `d1·2^10` truncated — the scaling is exact in binary32; `d2` is
/// `2^10 − d1`, or `512` each where `i1 == i2`).
pub fn integer_weights(t: Tap) -> (i32, i32) {
    if t.i1 == t.i2 {
        return (512, 512);
    }
    let d1 = (t.d1 * 1024.0) as i32;
    (d1, 1024 - d1)
}

/// ORT's channels-last integer interpolation of one output position: the
/// neighbours in [`interpolate`]'s order, the int32 sum divided by 2^20
/// toward zero (`|sum| ≤ 255·2^20`: no overflow).
#[inline]
pub fn interpolate_integer(x: [i32; 4], ty: Tap, tx: Tap) -> i32 {
    let ((dx1, dx2), (dy1, dy2)) = (integer_weights(tx), integer_weights(ty));
    let s = dx2 * dy2 * x[0] + dx1 * dy2 * x[1] + dx2 * dy1 * x[2] + dx1 * dy1 * x[3];
    s / (1 << 20)
}

/// `v` of the module doc for one output position: the four neighbours in
/// the order X11 (y1, x1), X21 (y1, x2), X12 (y2, x1), X22 (y2, x2).
#[inline]
pub fn interpolate(x: [f32; 4], ty: Tap, tx: Tap) -> f32 {
    let w = [tx.d2 * ty.d2, tx.d1 * ty.d2, tx.d2 * ty.d1, tx.d1 * ty.d1];
    w[0] * x[0] + w[1] * x[1] + w[2] * x[2] + w[3] * x[3]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_of_a_2x_half_pixel_upsample_follow_ort() {
        let r = LinearResize {
            mode: CoordMode::HalfPixel,
            scales: [2.0, 2.0],
            out: [4, 4],
            rounding: LinearRounding::Trunc,
        };
        let [_, t] = r.taps([3, 2]);
        // x = -0.25 clamps to 0; x = 1.25 to 1, the last column, where
        // i1 = i2 and both distances are 0.5.
        assert_eq!(t[0], Tap { i1: 0, i2: 1, d1: 0.0, d2: 1.0 });
        assert_eq!(t[1], Tap { i1: 0, i2: 1, d1: 0.25, d2: 0.75 });
        assert_eq!(t[2], Tap { i1: 0, i2: 1, d1: 0.75, d2: 0.25 });
        assert_eq!(t[3], Tap { i1: 1, i2: 1, d1: 0.5, d2: 0.5 });
    }

    #[test]
    fn an_unchanged_size_copies_whatever_the_scales() {
        let r = LinearResize {
            mode: CoordMode::Asymmetric,
            scales: [1.25, 1.16],
            out: [2, 6],
            rounding: LinearRounding::Trunc,
        };
        let [ty, tx] = r.taps([2, 6]);
        for (o, t) in ty.iter().chain(&tx).enumerate() {
            let x = [7.0, f32::MAX, -3.0, 1e-30];
            assert_eq!(interpolate(x, *t, *t), 7.0, "tap {o}: {t:?}");
        }
    }

    #[test]
    fn interpolation_sums_left_to_right_in_binary32() {
        let t = Tap { i1: 0, i2: 1, d1: 0.25, d2: 0.75 };
        // 0.5625·10 + 0.1875·20 + 0.1875·30 + 0.0625·40 = 17.5
        assert_eq!(interpolate([10.0, 20.0, 30.0, 40.0], t, t), 17.5);
    }
}
