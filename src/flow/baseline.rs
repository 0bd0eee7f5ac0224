//! What a model's GEMM layers should cost, independent of how they are
//! lowered: per convolution or dense layer its GEMM shape, its MACs, the
//! *ideal* cycles (every PE busy: MACs / (rows × cols)), SCALE-Sim's
//! weight-stationary cycles and the minimal DRAM traffic (each input,
//! weight and output byte moved once). The yardsticks of
//! `examples/cnn_layers.rs` and of the convolution lowering's targets.
//!
//! SCALE-Sim's weight-stationary model (Samajdar et al., "SCALE-Sim",
//! arXiv:1811.02883) streams the M rows of A through each of the
//! `ceil(K / R) · ceil(N / C)` weight folds, each taking `2R + C + M − 2`
//! cycles (fill, stream, drain); it neither overlaps folds nor counts
//! memory stalls. A grouped convolution is `groups` independent GEMMs, so a
//! depthwise one is, per channel, `K = kh · kw`, `N = 1`, times channels.

use compiler::ir::{Graph, Op};
use isa::HwConfig;

/// Which kind of GEMM layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmKind {
    Conv,
    /// One input and one output channel per group.
    Depthwise,
    /// Grouped, not depthwise.
    Grouped,
    Dense,
}

impl GemmKind {
    pub fn name(self) -> &'static str {
        match self {
            GemmKind::Conv => "conv",
            GemmKind::Depthwise => "depthwise",
            GemmKind::Grouped => "grouped",
            GemmKind::Dense => "dense",
        }
    }
}

/// One GEMM layer's shape and baselines on a configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerBaseline {
    /// The graph node's name (what the program's layers record).
    pub name: String,
    pub kind: GemmKind,
    /// Per group: `C[m, n] = A[m, k] × B[k, n]`.
    pub m: u64,
    pub k: u64,
    pub n: u64,
    pub groups: u64,
    /// `groups · m · k · n`: the layer's multiply-accumulates.
    pub macs: u64,
    /// `macs / (rows · cols)`, rounded up.
    pub ideal_cycles: u64,
    /// `groups · ceil(k / R) · ceil(n / C) · (2R + C + m − 2)`.
    pub scalesim_ws_cycles: u64,
    /// Input, weights and output, each byte once (int8), plus the int32
    /// bias and float32 scale of each output channel.
    pub min_dram_bytes: u64,
}

/// SCALE-Sim's weight-stationary cycles of `groups` GEMMs `m × k × n` on
/// an `r × c` array.
pub fn scalesim_ws(m: u64, k: u64, n: u64, groups: u64, (r, c): (u64, u64)) -> u64 {
    groups * k.div_ceil(r) * n.div_ceil(c) * (2 * r + c + m - 2)
}

/// The baselines of every convolution and dense layer of `g`, in graph order.
pub fn of_graph(g: &Graph, cfg: &HwConfig) -> Vec<LayerBaseline> {
    let (r, c) = (cfg.array.rows as u64, cfg.array.cols as u64);
    let mut out = Vec::new();
    for node in &g.nodes {
        let shape = |v: usize| g.values[v].shape.iter().map(|&d| d as u64).collect::<Vec<u64>>();
        let (kind, m, k, n, groups, in_bytes, out_bytes) = match &node.op {
            Op::Conv(p) => {
                let [m_out, cg, kh, kw] = p.w_shape.map(|d| d as u64);
                let groups = p.groups as u64;
                let y = shape(node.outputs[0]);
                let x = shape(node.inputs[0]);
                let kind = match (groups, cg, m_out / groups) {
                    (1, _, _) => GemmKind::Conv,
                    (_, 1, 1) => GemmKind::Depthwise,
                    _ => GemmKind::Grouped,
                };
                let pixels = y[2] * y[3];
                (kind, pixels, cg * kh * kw, m_out / groups, groups, x.iter().product(), y.iter().product())
            }
            Op::Dense(d) => {
                let x = shape(node.inputs[0]);
                let rows = if x.len() == 2 { x[0] } else { 1 };
                (GemmKind::Dense, rows, d.k as u64, d.n as u64, 1, rows * d.k as u64, rows * d.n as u64)
            }
            _ => continue,
        };
        let macs = groups * m * k * n;
        out.push(LayerBaseline {
            name: node.name.clone(),
            kind,
            m,
            k,
            n,
            groups,
            macs,
            ideal_cycles: macs.div_ceil(r * c),
            scalesim_ws_cycles: scalesim_ws(m, k, n, groups, (r, c)),
            min_dram_bytes: in_bytes + groups * k * n + out_bytes + 8 * groups * n,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SCALE-Sim's formula on shapes worked by hand.
    #[test]
    fn scalesim_weight_stationary_cycles() {
        // ResNet-18's 3x3 64->64 at 56x56 on 16x16: 36 x 4 folds of 46 + 3136 cycles.
        assert_eq!(scalesim_ws(3136, 576, 64, 1, (16, 16)), 36 * 4 * (46 + 3136));
        // A depthwise 3x3 over 32 channels at 112x112: 32 channels x (46 + 12544).
        assert_eq!(scalesim_ws(12544, 9, 1, 32, (16, 16)), 32 * (46 + 12544));
    }
}
