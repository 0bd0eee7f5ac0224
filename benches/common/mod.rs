//! What the benches share: the GEMM they run and how they summarise times.
#![allow(dead_code)]

use compiler::gemm::{GemmOutput, GemmSpec};

/// An `m x k x n` int8 GEMM with requantized int8 output, deterministic
/// weights, and its input A (`m x k`).
pub fn gemm(m: usize, k: usize, n: usize) -> (GemmSpec, Vec<u8>) {
    let spec = GemmSpec {
        m,
        k,
        n,
        weights: (0..k * n).map(|i| (i.wrapping_mul(2654435761) >> 7) as i8).collect(),
        input_unsigned: false,
        output: GemmOutput::Int8 { bias: vec![7; n], scale: vec![1e-4; n], zero_point: -128, qmin: -128, qmax: 127 },
    };
    let a = (0..m * k).map(|i| (i.wrapping_mul(40503) >> 3) as u8).collect();
    (spec, a)
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
