//! GEMM layers: a convolution (per group) or a dense layer becomes one
//! `gemm::GemmJob` — weights packed for the dataflow's tile, the input zero
//! point folded into the bias, A read as a matrix or gathered im2col-style
//! from the feature map, C written into the output buffer.

use super::memory::{image_view, out_rows};
use super::movement::Im2col;
use super::{check_elem, input_buffer, out_buffer, unsupported, Ctx};
use crate::gemm::{self, ASource, GemmJob, GemmOut, LowerError, OutRows, PackedWeights, WeightFormat};
use crate::ir::{ConvParams, DenseParams, ElemType, ValueId, WeightType};
use crate::ir_codec::PackedRef;
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
    format: WeightFormat,
}

/// The format a layer's weights are stored in: int4, two per byte
/// (`WeightFormat::DenseI4`), when the model declares them int4, the
/// configuration lists int4 in `array.weight_precisions` and the tile's
/// reduction is even (int4 k-tiles start on whole scratchpad rows); int8
/// otherwise — the same values, so the same results.
pub(super) fn weight_format(cx: &Ctx<'_>, w_type: WeightType) -> WeightFormat {
    let int4 = cx.cfg.array.weight_precisions.contains(&isa::config::WeightPrecision::Int4);
    if w_type == WeightType::I4 && int4 && cx.dataflow.tile_shape().k.is_multiple_of(2) {
        WeightFormat::DenseI4
    } else {
        WeightFormat::DenseI8
    }
}

/// A GEMM layer's packed weights and parameters, placed in the data.
struct Placed {
    weights: PackedWeights,
    weights_addr: u64,
    params_addr: u64,
}

/// Packs weights and parameters, emits the GEMM phase; returns its MACs
/// and where the packed weights are in the data.
fn gemm_layer(cx: &mut Ctx<'_>, l: &GemmLayer<'_>) -> Result<(u64, u64), LowerError> {
    let placed = place(cx, l);
    Ok((emit_gemm(cx, l, &placed)?, placed.weights_addr))
}

/// Packs `l`'s weights and parameters (the input zero point folded into
/// the bias) into the data.
fn place(cx: &mut Ctx<'_>, l: &GemmLayer<'_>) -> Placed {
    let (qx, qy) = (cx.quant(l.x), cx.quant(l.y));
    let (k, n, b) = (l.k, l.n, l.b);
    // Column sums of B, row by row (a column walk misses the cache).
    let mut sums = vec![0i32; n];
    for row in b.chunks_exact(n.max(1)).take(k) {
        sums.iter_mut().zip(row).for_each(|(s, &v)| *s = s.wrapping_add(v as i32));
    }
    let folded: Vec<i32> = (0..n).map(|col| numerics::fold_zero_point(l.bias[col], qx.zero_point, sums[col])).collect();
    let scale: Vec<f32> = (0..n).map(|col| numerics::requant_scale(qx.scale, l.w_scale[col], qy.scale)).collect();
    let mut weights = match l.format {
        WeightFormat::DenseI4 => PackedWeights::dense_i4(b, k, n, cx.dataflow.tile_shape()),
        _ => cx.dataflow.pack_stationary(b, k, n, cx.cfg, cx.weights),
    };
    if matches!(l.a, ASource::Gather(_)) && weights.a_block() != cx.dataflow.tile_shape().k {
        // The im2col gather blocks A by the dense tile's reduction.
        weights = PackedWeights::dense_i8(b, k, n, cx.dataflow.tile_shape());
    }
    let weights_addr = cx.mem.alloc_bytes(weights.bytes());
    let params_addr = cx.mem.alloc_bytes(&gemm::pack_params(&folded, &scale, cx.dim));
    Placed { weights, weights_addr, params_addr }
}

/// Emits the GEMM phase of `l` with its placed weights; returns its MACs.
fn emit_gemm(cx: &mut Ctx<'_>, l: &GemmLayer<'_>, placed: &Placed) -> Result<u64, LowerError> {
    let qy = cx.quant(l.y);
    let job = GemmJob {
        m: l.m,
        a: l.a,
        a_unsigned: cx.g.values[l.x].ty == ElemType::U8,
        weights: &placed.weights,
        weights_addr: placed.weights_addr,
        out: GemmOut::Int8 {
            params_addr: placed.params_addr,
            zero_point: qy.zero_point,
            qmin: l.clamp.0,
            qmax: l.clamp.1,
            unsigned: cx.g.values[l.y].ty == ElemType::U8,
        },
        c: l.c,
    };
    let instrs = cx.dataflow.emit(&job, cx.cfg)?;
    cx.code.phase(instrs);
    Ok(placed.weights.macs(l.m))
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
    let Layout::Nhwc { n: images, w, c: cin, halo, .. } = inb.layout else {
        return Err(unsupported(node, "conv", "input is not an NHWC feature map"));
    };
    let [m_out, cg, kh, kw] = c.w_shape;
    let groups = c.groups;
    let mg = m_out / groups;
    let out_shape = &cx.g.values[y].shape;
    let (oh, ow) = (out_shape[2], out_shape[3]);
    let k = kh * kw * cg;
    let outb = out_buffer(cx, y, out_halo)?;
    // A band of the feature map in the scratchpad when it fits (ISA.md's
    // input-row pattern forms the array's rows on chip); a batch's images
    // all pass under each weight tile there.
    if let Some(macs) = super::conv_band::lower(cx, (x, y), c, &inb, &outb)? {
        return Ok(macs);
    }
    let format = weight_format(cx, c.w_type);
    // Each group is its own GEMM over its slice of input and output
    // channels, its weights placed once; a batch runs it image by image.
    let mut macs = 0;
    let mut offsets = Vec::with_capacity(groups);
    for g in 0..groups {
        let b = conv_group_b(&c.weights, c.w_shape, groups, g);
        let ch = g * mg..(g + 1) * mg;
        // A GEMM's M is 16-bit: whole output rows, at most 65535 pixels a GEMM.
        let rows_per_gemm = (u16::MAX as usize / ow.max(1)).max(1);
        let mut placed = None;
        for oy0 in (0..oh).step_by(rows_per_gemm) {
            for image in 0..images {
                let (inb, outb) = (image_view(&inb, image).expect("NHWC"), image_view(&outb, image).expect("NHWC"));
                let mut rows = out_rows(&outb);
                rows.addr += (g * mg) as u64;
                let im2col = Im2col {
                    src: inb.addr,
                    wp: w + 2 * halo,
                    cin,
                    c0: g * cg,
                    cg,
                    kernel: [kh, kw],
                    strides: c.strides,
                    dilations: c.dilations,
                    off: [halo - c.pads[0], halo - c.pads[1]],
                    ow,
                    tile_k: cx.dataflow.tile_shape().k,
                };
                let n_rows = rows_per_gemm.min(oh - oy0);
                let p0 = oy0 * ow;
                let im2col = &im2col;
                let gather = move |r0: usize, nrows: usize, base: u16| im2col.loads(p0 + r0, nrows, base);
                let a = if kh == 1 && kw == 1 && c.strides == [1, 1] && halo == 0 {
                    // A is the input itself: rows are pixels, this group's channels.
                    ASource::Matrix { addr: inb.addr + (p0 * cin + g * cg) as u64, stride: cin as u64 }
                } else {
                    ASource::Gather(&gather)
                };
                let mut c_rows = rows;
                c_rows.addr += oy0 as u64 * rows.group_stride;
                let layer = GemmLayer {
                    x,
                    y,
                    b: &b,
                    k,
                    n: mg,
                    w_scale: &c.w_scale[ch.clone()],
                    bias: &c.bias[ch.clone()],
                    clamp: (c.qmin, c.qmax),
                    m: n_rows * ow,
                    a,
                    c: c_rows,
                    format,
                };
                let placed = placed.get_or_insert_with(|| place(cx, &layer));
                if offsets.len() == g {
                    offsets.push(placed.weights_addr);
                }
                macs += emit_gemm(cx, &layer, placed)?;
            }
        }
    }
    cx.packed_weights = Some(packed_ref(cx, format, offsets, None));
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
    let b = dense_b(&d.weights, k, n, perm.as_deref());
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
        format: weight_format(cx, d.w_type),
    };
    let (macs, at) = gemm_layer(cx, &layer)?;
    cx.packed_weights = Some(packed_ref(cx, layer.format, vec![at], perm));
    Ok(macs)
}

fn packed_ref(cx: &Ctx<'_>, format: WeightFormat, offsets: Vec<u64>, perm: Option<Vec<usize>>) -> PackedRef {
    PackedRef { format, tile_n: cx.dataflow.tile_shape().n, offsets, perm }
}

/// Group `g`'s B `[kh kw cg, mg]` of a convolution's weights `[m, cg, kh,
/// kw]`: `B[(i, j, ci)][m] = w[g mg + m][ci][i][j]`, the reduction in the
/// order im2col gathers it (tap by tap, channels innermost).
pub(crate) fn conv_group_b(weights: &[i8], w_shape: [usize; 4], groups: usize, g: usize) -> Vec<i8> {
    let (rows, k, mg) = conv_rows(w_shape, groups);
    let mut b = vec![0i8; k * mg];
    for (m, filter) in weights[g * mg * k..(g + 1) * mg * k].chunks_exact(k.max(1)).enumerate() {
        for (&row, &v) in rows.iter().zip(filter) {
            b[row + m] = v;
        }
    }
    b
}

/// The inverse of [`conv_group_b`]: writes group `g`'s filters from its B.
pub(crate) fn conv_group_from_b(b: &[i8], w_shape: [usize; 4], groups: usize, g: usize, weights: &mut [i8]) {
    let (rows, k, mg) = conv_rows(w_shape, groups);
    for (m, filter) in weights[g * mg * k..(g + 1) * mg * k].chunks_exact_mut(k.max(1)).enumerate() {
        for (&row, v) in rows.iter().zip(filter) {
            *v = b[row + m];
        }
    }
}

/// Where each filter tap `(ci, i, j)` goes in B (its row times `mg`),
/// computed once (index arithmetic per weight was a third of a large
/// model's compile time); B's rows `k` and columns `mg`.
fn conv_rows([m_out, cg, kh, kw]: [usize; 4], groups: usize) -> (Vec<usize>, usize, usize) {
    let mg = m_out / groups;
    let mut rows = Vec::with_capacity(kh * kw * cg);
    for ci in 0..cg {
        for i in 0..kh {
            for j in 0..kw {
                rows.push(((i * kw + j) * cg + ci) * mg);
            }
        }
    }
    (rows, kh * kw * cg, mg)
}

/// A dense layer's B `[k, n]` of its weights `[n, k]`, rows in the input
/// buffer's physical order (`perm[phys]` is the logical column, e.g. NHWC
/// after a Flatten of NCHW).
pub(crate) fn dense_b(weights: &[i8], k: usize, n: usize, perm: Option<&[usize]>) -> Vec<i8> {
    let mut b = vec![0i8; k * n];
    for phys in 0..k {
        let logical = perm.map_or(phys, |p| p[phys]);
        for col in 0..n {
            b[phys * n + col] = weights[col * k + logical];
        }
    }
    b
}

/// The inverse of [`dense_b`].
pub(crate) fn dense_from_b(b: &[i8], k: usize, n: usize, perm: Option<&[usize]>) -> Vec<i8> {
    let mut weights = vec![0i8; k * n];
    for phys in 0..k {
        let logical = perm.map_or(phys, |p| p[phys]);
        for col in 0..n {
            weights[col * k + logical] = b[phys * n + col];
        }
    }
    weights
}
