//! GEMM layers: a convolution (per group) or a dense layer becomes one
//! `gemm::GemmJob` — weights packed for the dataflow's tile, the input zero
//! point folded into the bias, A read as a matrix or gathered im2col-style
//! from the feature map, C written into the output buffer.

use super::memory::out_rows;
use super::movement::Im2col;
use super::{check_elem, input_buffer, out_buffer, unsupported, Ctx};
use crate::gemm::{self, ASource, GemmJob, GemmOut, LowerError, OutRows, PackedWeights};
use crate::ir::{ConvParams, DenseParams, ElemType, ValueId};
use isa::layout::Layout;
use isa::numerics;

/// One GEMM layer's operands: B `[k, n]` row-major with its per-column
/// weight scales and bias, the clamp, A (`m` rows) and where C goes.
struct GemmLayer<'a> {
    x: ValueId,
    y: ValueId,
    b: &'a [i8],
    k: usize,
    n: usize,
    w_scale: &'a [f32],
    bias: &'a [i32],
    clamp: (i32, i32),
    m: usize,
    a: ASource<'a>,
    c: OutRows,
}

/// Packs weights and parameters, emits the GEMM phase; returns its MACs.
fn gemm_layer(cx: &mut Ctx<'_>, l: &GemmLayer<'_>) -> Result<u64, LowerError> {
    let (qx, qy) = (cx.quant(l.x), cx.quant(l.y));
    let (k, n, b) = (l.k, l.n, l.b);
    // Column sums of B, row by row (a column walk misses the cache).
    let mut sums = vec![0i32; n];
    for row in b.chunks_exact(n.max(1)).take(k) {
        sums.iter_mut().zip(row).for_each(|(s, &v)| *s = s.wrapping_add(v as i32));
    }
    let folded: Vec<i32> = (0..n).map(|col| numerics::fold_zero_point(l.bias[col], qx.zero_point, sums[col])).collect();
    let scale: Vec<f32> = (0..n).map(|col| numerics::requant_scale(qx.scale, l.w_scale[col], qy.scale)).collect();
    let weights = PackedWeights::dense_i8(b, k, n, cx.dataflow.tile_shape());
    let weights_addr = cx.mem.alloc_bytes(weights.bytes());
    let params_addr = cx.mem.alloc_bytes(&gemm::pack_params(&folded, &scale, cx.dim));
    let job = GemmJob {
        m: l.m,
        a: l.a,
        a_unsigned: cx.g.values[l.x].ty == ElemType::U8,
        weights: &weights,
        weights_addr,
        out: GemmOut::Int8 {
            params_addr,
            zero_point: qy.zero_point,
            qmin: l.clamp.0,
            qmax: l.clamp.1,
            unsigned: cx.g.values[l.y].ty == ElemType::U8,
        },
        c: l.c,
    };
    let instrs = cx.dataflow.emit(&job, cx.cfg)?;
    cx.code.phase(instrs);
    Ok(weights.macs(l.m))
}

pub fn lower_conv(
    cx: &mut Ctx<'_>,
    x: ValueId,
    y: ValueId,
    c: &ConvParams,
    out_halo: usize,
    node: &str,
) -> Result<u64, LowerError> {
    check_elem(cx, y, node, "conv")?;
    let inb = input_buffer(cx, x, node)?.clone();
    let Layout::Nhwc { h: _, w, c: cin, halo } = inb.layout else {
        return Err(unsupported(node, "conv", "input is not an NHWC feature map"));
    };
    let [m_out, cg, kh, kw] = c.w_shape;
    let groups = c.groups;
    let mg = m_out / groups;
    let out_shape = &cx.g.values[y].shape;
    let (oh, ow) = (out_shape[2], out_shape[3]);
    let k = kh * kw * cg;
    let outb = out_buffer(cx, y, out_halo)?;
    // Each group is its own GEMM over its slice of input and output channels.
    let mut macs = 0;
    for g in 0..groups {
        // B[(i, j, ci)][m] = w[g mg + m][ci][i][j]: where each filter tap
        // goes, computed once (index arithmetic per weight was a third of a
        // large model's compile time).
        let mut row_of = Vec::with_capacity(k);
        for ci in 0..cg {
            for i in 0..kh {
                for j in 0..kw {
                    row_of.push(((i * kw + j) * cg + ci) * mg);
                }
            }
        }
        let mut b = vec![0i8; k * mg];
        let filters = c.weights[g * mg * k..(g + 1) * mg * k].chunks_exact(k.max(1));
        for (m, filter) in filters.enumerate() {
            for (&row, &v) in row_of.iter().zip(filter) {
                b[row + m] = v;
            }
        }
        let mut rows = out_rows(&outb);
        rows.addr += (g * mg) as u64;
        let ch = g * mg..(g + 1) * mg;
        let im2col = Im2col {
            src: inb.addr,
            wp: w + 2 * halo,
            cin,
            c0: g * cg,
            cg,
            kernel: [kh, kw],
            strides: c.strides,
            dilations: c.dilations,
            off: halo - c.pads[0],
            ow,
            tile_k: cx.dataflow.tile_shape().k,
        };
        let gather = |r0: usize, nrows: usize, base: u16| im2col.loads(r0, nrows, base);
        let a = if kh == 1 && kw == 1 && c.strides == [1, 1] && halo == 0 {
            // A is the input itself: rows are pixels, this group's channels.
            ASource::Matrix { addr: inb.addr + (g * cg) as u64, stride: cin as u64 }
        } else {
            ASource::Gather(&gather)
        };
        let layer = GemmLayer {
            x,
            y,
            b: &b,
            k,
            n: mg,
            w_scale: &c.w_scale[ch.clone()],
            bias: &c.bias[ch],
            clamp: (c.qmin, c.qmax),
            m: oh * ow,
            a,
            c: rows,
        };
        macs += gemm_layer(cx, &layer)?;
    }
    Ok(macs)
}

pub fn lower_dense(
    cx: &mut Ctx<'_>,
    x: ValueId,
    y: ValueId,
    d: &DenseParams,
    out_halo: usize,
    node: &str,
) -> Result<u64, LowerError> {
    check_elem(cx, y, node, "dense")?;
    let inb = input_buffer(cx, x, node)?.clone();
    let Layout::Flat { rows, cols, perm } = inb.layout else {
        return Err(unsupported(node, "dense", "input is a feature map; flatten it first"));
    };
    if out_halo != 0 {
        return Err(unsupported(node, "dense", "a padded convolution cannot read a dense layer's output"));
    }
    let (k, n) = (d.k, d.n);
    debug_assert_eq!(cols, k);
    let mut b = vec![0i8; k * n];
    for phys in 0..k {
        let logical = perm.as_ref().map_or(phys, |p| p[phys]);
        for col in 0..n {
            b[phys * n + col] = d.weights[col * k + logical];
        }
    }
    let outb = out_buffer(cx, y, 0)?;
    let layer = GemmLayer {
        x,
        y,
        b: &b,
        k,
        n,
        w_scale: &d.w_scale,
        bias: &d.bias,
        clamp: (d.qmin, d.qmax),
        m: rows,
        a: ASource::Matrix { addr: inb.addr, stride: k as u64 },
        c: out_rows(&outb),
    };
    gemm_layer(cx, &layer)
}
