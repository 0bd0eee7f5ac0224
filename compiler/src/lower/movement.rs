//! Data movement: DMA copy phases (concat), reshapes (views of a buffer),
//! moving feature maps between DRAM and the scratchpad, and the im2col
//! gather a convolution's GEMM reads its A blocks with.

use super::memory::{feature_rows, row_shape, Buffer};
use super::{input_buffer, out_buffer, unsupported, Ctx};
use crate::gemm::LowerError;
use crate::ir::ValueId;
use isa::instr::{self as ins, Deps, Instr, Queue};
use isa::layout::Layout;

/// One 2-D copy: `rows` rows of `cols` bytes from `src` (rows `src_stride`
/// apart) to `dst` (rows `dst_stride` apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyBlock {
    pub src: u64,
    pub src_stride: u64,
    pub rows: usize,
    pub cols: usize,
    pub dst: u64,
    pub dst_stride: u64,
}

/// Copies 2-D blocks DRAM -> scratchpad -> DRAM. `COPY_BUFFERS` scratchpad
/// buffers rotate, so several blocks' LOADs and STOREs are in flight at
/// once (each pays the DRAM latency); COMPUTE forwards "loaded" to STORE
/// and `sync`s "stored" back to LOAD. Block `i` goes through table
/// `luts[i]` (an index into `tables`, the tables' DRAM addresses) on its
/// way: then the COMPUTE step that forwards it is a `vlut` in place (a
/// plain copy forwards with a `sync`). The tables are loaded first, into
/// the scratchpad rows before the copy buffers.
pub fn mapped_copy_phase(
    blocks: &[CopyBlock],
    luts: &[Option<usize>],
    tables: &[u64],
    dim: usize,
    spad_rows: usize,
) -> Vec<Instr> {
    let gathers: Vec<GatherBlock> = blocks
        .iter()
        .map(|b| GatherBlock {
            loads: vec![(b.src, b.src_stride, b.rows, 0)],
            pixels: b.rows,
            cols: b.cols,
            dst: b.dst,
            dst_stride: b.dst_stride,
        })
        .collect();
    gather_phase(&gathers, luts, tables, dim, spad_rows)
}

/// A block of `pixels` rows of `cols` bytes gathered by several LOADs
/// `(dram, dram stride, rows, first row in the block)`, stored as one.
pub struct GatherBlock {
    pub loads: Vec<(u64, u64, usize, usize)>,
    pub pixels: usize,
    pub cols: usize,
    pub dst: u64,
    pub dst_stride: u64,
}

/// `mapped_copy_phase` of blocks each gathered by several LOADs.
pub fn gather_phase(
    blocks: &[GatherBlock],
    luts: &[Option<usize>],
    tables: &[u64],
    dim: usize,
    spad_rows: usize,
) -> Vec<Instr> {
    const COPY_BUFFERS: usize = 4;
    let n = blocks.len();
    let t_rows = isa::timing::lut_rows(dim as u32) as usize;
    let base = tables.len() * t_rows;
    let block_rows = |b: &GatherBlock| b.pixels * b.cols.div_ceil(dim);
    let buf_rows = blocks.iter().map(block_rows).max().unwrap_or(0);
    // At least two buffers: a release must never wait behind its own forward.
    let nb = COPY_BUFFERS.min(spad_rows.saturating_sub(base) / buf_rows.max(1)).max(2);
    let buf = |i: usize| (base + (i % nb) * buf_rows) as u16;
    // A LOAD of rows `r0..r0 + rows` of a block lands column-blocked like
    // the block's own rows: column block j at `buf + j * pixels + r0`,
    // which a LOAD of `rows` rows writes as `j * rows` — so split per column
    // block when a gather has several LOADs and the row is wider than dim.
    let load = |i: usize| {
        let b = &blocks[i];
        let whole = b.loads.len() == 1 || b.cols <= dim;
        let mut v = Vec::new();
        for &(dram, stride, rows, r0) in &b.loads {
            let pieces: Vec<(usize, usize)> = if whole {
                vec![(0, b.cols)]
            } else {
                (0..b.cols).step_by(dim).map(|c0| (c0, dim.min(b.cols - c0))).collect()
            };
            for (c0, w) in pieces {
                v.push(ins::Load {
                    deps: Deps::NONE,
                    dram: (dram + c0 as u64) as u32,
                    stride: stride as u32,
                    rows: rows as u16,
                    cols: w as u16,
                    addr: buf(i) + ((c0 / dim) * b.pixels + r0) as u16,
                    ..Default::default()
                });
            }
        }
        v[0].deps.pop_next = i >= nb;
        v.last_mut().expect("a load").deps.push_next = true;
        v.into_iter().map(Instr::from)
    };
    let forward = |i: usize| {
        let deps = Deps { pop_prev: true, push_next: true, ..Deps::NONE };
        match luts[i] {
            Some(t) => Instr::from(ins::Vlut {
                deps,
                src: buf(i),
                dst: buf(i),
                n: block_rows(&blocks[i]) as u16,
                table: (t * t_rows) as u16,
            }),
            None => Instr::from(ins::Sync { deps, queue: Queue::Compute as u8 }),
        }
    };
    let release = Instr::from(ins::Sync {
        deps: Deps { pop_next: true, push_prev: true, ..Deps::NONE },
        queue: Queue::Compute as u8,
    });
    let store = |i: usize| {
        let b = &blocks[i];
        Instr::from(ins::Store {
            deps: Deps { pop_prev: true, push_prev: i + nb < n, ..Deps::NONE },
            dram: b.dst as u32,
            stride: b.dst_stride as u32,
            rows: b.pixels as u16,
            cols: b.cols as u16,
            addr: buf(i),
            ..Default::default()
        })
    };
    let mut v = Vec::new();
    // Tables first; loads finish in order, so one token says all are in.
    for (k, &dram) in tables.iter().enumerate() {
        v.push(Instr::from(ins::Load {
            deps: Deps { push_next: k + 1 == tables.len(), ..Deps::NONE },
            dram: dram as u32,
            stride: dim as u32,
            rows: t_rows as u16,
            cols: dim as u16,
            addr: (k * t_rows) as u16,
            ..Default::default()
        }));
    }
    if !tables.is_empty() {
        v.push(Instr::from(ins::Sync { deps: Deps { pop_prev: true, ..Deps::NONE }, queue: Queue::Compute as u8 }));
    }
    // Order (two buffers): L0 L1 F0 S0 | F1 S1 R0 L2 | F2 S2 R1 L3 | ...:
    // the release of block i follows the forward of block i + 1, so COMPUTE
    // never holds a forward behind a store in flight.
    for i in 0..n.min(nb) {
        v.extend(load(i));
    }
    for i in 0..n {
        v.push(forward(i));
        v.push(store(i));
        if i >= 1 && i - 1 + nb < n {
            v.push(release);
            v.extend(load(i - 1 + nb));
        }
    }
    v
}

/// A table's bytes as scratchpad rows of `dim` (entry `e` at row `e / dim`,
/// column `e % dim`), zero-padded to whole rows.
pub fn table_rows(table: &[u8; 256], dim: usize) -> Vec<u8> {
    let mut v = table.to_vec();
    v.resize(isa::timing::lut_rows(dim as u32) as usize * dim, 0);
    v
}

/// (row pitch, offset of pixel (0, 0)) of a buffer, in bytes.
pub(super) fn row_pitch(b: &Buffer) -> (usize, usize) {
    match b.layout {
        Layout::Nhwc { w, c, halo, .. } => ((w + 2 * halo) * c, ((halo * (w + 2 * halo)) + halo) * c),
        Layout::Flat { cols, .. } => (cols, 0),
    }
}

/// Copy blocks moving all of `src`'s pixels (`ci` channels each) to
/// channels `c0..c0 + ci` of `dst`'s pixels: one block per image row, or,
/// when neither side has gaps between rows, runs of up to `max_pixels`
/// pixels.
pub fn feature_blocks(src: &Buffer, dst: &Buffer, c0: usize, max_pixels: usize) -> Option<Vec<CopyBlock>> {
    let (rows, per_row) = row_shape(&dst.layout);
    let (_, c_out) = feature_rows(&dst.layout)?;
    let (_, ci) = feature_rows(&src.layout)?;
    let ((in_pitch, in_first), (out_pitch, out_first)) = (row_pitch(src), row_pitch(dst));
    let mut blocks = Vec::new();
    if in_pitch == per_row * ci && out_pitch == per_row * c_out {
        let pixels = rows * per_row;
        let step = max_pixels.clamp(1, u16::MAX as usize);
        for p0 in (0..pixels).step_by(step) {
            blocks.push(CopyBlock {
                src: src.addr + (in_first + p0 * ci) as u64,
                src_stride: ci as u64,
                rows: step.min(pixels - p0),
                cols: ci,
                dst: dst.addr + (out_first + p0 * c_out + c0) as u64,
                dst_stride: c_out as u64,
            });
        }
        return Some(blocks);
    }
    if per_row > max_pixels {
        return None;
    }
    // One block per image row: `per_row` pixels of `ci` channels.
    for r in 0..rows {
        blocks.push(CopyBlock {
            src: src.addr + (in_first + r * in_pitch) as u64,
            src_stride: ci as u64,
            rows: per_row,
            cols: ci,
            dst: dst.addr + (out_first + r * out_pitch + c0) as u64,
            dst_stride: c_out as u64,
        });
    }
    Some(blocks)
}

/// Pixels of `channels` values a copy buffer holds: a quarter of the
/// scratchpad left after `tables` tables (so four buffers rotate).
pub fn max_block_pixels(cx: &Ctx<'_>, channels: usize, tables: usize) -> usize {
    let t_rows = isa::timing::lut_rows(cx.dim as u32) as usize;
    let avail = (cx.cfg.spad_rows() as usize).min(65536).saturating_sub(tables * t_rows);
    (avail / 4 / channels.div_ceil(cx.dim)).min(u16::MAX as usize)
}

/// Concatenation along channels (NCHW axis 1, or the columns of a 2-D
/// value): each input's rows are copied into their column slice of the
/// output with the DMA copy phase; an input quantized differently from the
/// output goes through its identity table on the way (a `vlut`), which is
/// how ONNX Runtime's QLinearConcat requantizes.
pub fn lower_concat(
    cx: &mut Ctx<'_>,
    ins_: &[ValueId],
    y: ValueId,
    axis: usize,
    out_halo: usize,
    node: &str,
) -> Result<u64, LowerError> {
    let rank = cx.g.values[y].shape.len();
    if axis != 1 || !(rank == 2 || rank == 4) {
        return Err(unsupported(
            node,
            "concat",
            format!("concatenation along axis {axis} of a rank-{rank} value is not lowered yet"),
        ));
    }
    let (qy, ty) = (cx.quant(y), cx.g.values[y].ty);
    let mut tables = Vec::new();
    let mut table_of = Vec::new();
    for &i in ins_ {
        let (qi, ti) = (cx.quant(i), cx.g.values[i].ty);
        if qi == qy && ti == ty {
            table_of.push(None);
        } else {
            let t = crate::lut::table(&crate::lut::UnaryFn::Identity, ti, qi, ty, qy);
            tables.push(cx.mem.alloc_bytes(&table_rows(&t, cx.dim)));
            table_of.push(Some(tables.len() - 1));
        }
    }
    let outb = out_buffer(cx, y, out_halo)?;
    let mut blocks = Vec::new();
    let mut luts = Vec::new();
    let mut c0 = 0;
    for (k, &i) in ins_.iter().enumerate() {
        let b = input_buffer(cx, i, node)?.clone();
        let (_, ci) =
            feature_rows(&b.layout).ok_or_else(|| unsupported(node, "concat", "input layout not supported"))?;
        let max = max_block_pixels(cx, ci, tables.len());
        let bl = feature_blocks(&b, &outb, c0, max)
            .ok_or_else(|| unsupported(node, "concat", "one image row of an input does not fit the scratchpad"))?;
        luts.extend(std::iter::repeat_n(table_of[k], bl.len()));
        blocks.extend(bl);
        c0 += ci;
    }
    cx.code.phase(mapped_copy_phase(&blocks, &luts, &tables, cx.dim, cx.cfg.spad_rows() as usize));
    Ok(0)
}

/// An element-wise unary op (`Op::Lut`): the feature map through its table
/// on the way DRAM -> scratchpad -> DRAM, blocks pipelined as in a copy.
pub fn lower_lut(
    cx: &mut Ctx<'_>,
    x: ValueId,
    y: ValueId,
    f: &crate::lut::UnaryFn,
    out_halo: usize,
    node: &str,
) -> Result<u64, LowerError> {
    let (vx, vy) = (&cx.g.values[x], &cx.g.values[y]);
    let t = crate::lut::table(f, vx.ty, cx.quant(x), vy.ty, cx.quant(y));
    let table = cx.mem.alloc_bytes(&table_rows(&t, cx.dim));
    let inb = input_buffer(cx, x, node)?.clone();
    let outb = out_buffer(cx, y, out_halo)?;
    let (_, c) = feature_rows(&inb.layout).ok_or_else(|| unsupported(node, f.name(), "input layout not supported"))?;
    let max = max_block_pixels(cx, c, 1);
    let blocks = feature_blocks(&inb, &outb, 0, max)
        .ok_or_else(|| unsupported(node, f.name(), "one image row does not fit the scratchpad"))?;
    let luts = vec![Some(0); blocks.len()];
    cx.code.phase(mapped_copy_phase(&blocks, &luts, &[table], cx.dim, cx.cfg.spad_rows() as usize));
    Ok(0)
}

/// Nearest-neighbour resize: each output row is gathered from its source
/// row by LOADs of runs of output pixels that repeat one source pixel (DRAM
/// stride 0), through the identity's table when the output is quantized
/// differently, then stored; rows pipelined as in a copy.
pub fn lower_resize(
    cx: &mut Ctx<'_>,
    x: ValueId,
    y: ValueId,
    (rows, cols): (&[usize], &[usize]),
    out_halo: usize,
    node: &str,
) -> Result<u64, LowerError> {
    let (vx, vy) = (&cx.g.values[x], &cx.g.values[y]);
    let (qx, qy) = (cx.quant(x), cx.quant(y));
    let mut tables = Vec::new();
    if qx != qy || vx.ty != vy.ty {
        let t = crate::lut::table(&crate::lut::UnaryFn::Identity, vx.ty, qx, vy.ty, qy);
        tables.push(cx.mem.alloc_bytes(&table_rows(&t, cx.dim)));
    }
    let inb = input_buffer(cx, x, node)?.clone();
    let outb = out_buffer(cx, y, out_halo)?;
    let (Layout::Nhwc { c, .. }, Layout::Nhwc { .. }) = (&inb.layout, &outb.layout) else {
        return Err(unsupported(node, "resize", "only NCHW feature maps are resized"));
    };
    let c = *c;
    let (in_pitch, in_first) = row_pitch(&inb);
    let (out_pitch, out_first) = row_pitch(&outb);
    if cols.len() > max_block_pixels(cx, c, tables.len()) {
        return Err(unsupported(node, "resize", "one output row does not fit the scratchpad"));
    }
    // Runs of output columns that read the same source column.
    let mut runs = Vec::new();
    let mut o0 = 0;
    for o in 1..=cols.len() {
        if o == cols.len() || cols[o] != cols[o0] {
            runs.push((o0, o - o0, cols[o0]));
            o0 = o;
        }
    }
    let blocks: Vec<GatherBlock> = rows
        .iter()
        .enumerate()
        .map(|(oy, &iy)| GatherBlock {
            loads: runs
                .iter()
                .map(|&(o0, n, ix)| (inb.addr + (in_first + iy * in_pitch + ix * c) as u64, 0, n, o0))
                .collect(),
            pixels: cols.len(),
            cols: c,
            dst: outb.addr + (out_first + oy * out_pitch) as u64,
            dst_stride: c as u64,
        })
        .collect();
    let luts = vec![(!tables.is_empty()).then_some(0); blocks.len()];
    cx.code.phase(gather_phase(&blocks, &luts, &tables, cx.dim, cx.cfg.spad_rows() as usize));
    Ok(0)
}

pub fn lower_reshape(cx: &mut Ctx<'_>, x: ValueId, y: ValueId, node: &str, op: &str) -> Result<u64, LowerError> {
    let inb = input_buffer(cx, x, node)?.clone();
    let shape = &cx.g.values[y].shape;
    let (rows, cols) = match shape[..] {
        [r, c] => (r, c),
        [c] => (1, c),
        _ => return Err(unsupported(node, op, format!("reshape to {shape:?} (only to 2-D) is not lowered yet"))),
    };
    let layout = match inb.layout {
        // One row per image (a batch's images are consecutive rows).
        Layout::Nhwc { n, h, w, c, halo: 0 } if rows == n => {
            // Memory holds (h, w, c); the logical flatten order is (c, h, w).
            let perm = (0..h * w * c).map(|i| (i % c) * h * w + i / c).collect();
            Layout::Flat { rows, cols, perm: Some(perm) }
        }
        Layout::Flat { perm: None, .. } => Layout::Flat { rows, cols, perm: None },
        _ => return Err(unsupported(node, op, "this reshape needs data movement, which is not lowered yet")),
    };
    cx.mem.set_buffer(y, Buffer { addr: inb.addr, layout });
    Ok(0)
}

/// Moves a buffer's `pixels x c` values between DRAM and scratchpad rows
/// column-blocked from `base` (`dim` columns a row: block `j` of pixel `p`
/// at row `base + j * pixels + p`). A halo buffer moves image row by row,
/// one column block at a time, since only those pieces are affine.
fn move_feature(b: &Buffer, base: u16, dim: usize, first: Deps, store: bool) -> Vec<Instr> {
    let piece = |dram: u64, stride: usize, rows: usize, cols: usize, addr: u16, deps: Deps| {
        let (dram, stride, rows, cols) = (dram as u32, stride as u32, rows as u16, cols as u16);
        if store {
            Instr::from(ins::Store { deps, dram, stride, rows, cols, addr, ..Default::default() })
        } else {
            Instr::from(ins::Load { deps, dram, stride, rows, cols, addr, ..Default::default() })
        }
    };
    match &b.layout {
        Layout::Nhwc { h, w, c, halo, .. } if *halo > 0 => {
            let wp = w + 2 * halo;
            let pixels = h * w;
            let mut v = Vec::new();
            for y in 0..*h {
                for blk in 0..c.div_ceil(dim) {
                    let deps = if v.is_empty() { first } else { Deps::NONE };
                    let dram = b.addr + (((y + halo) * wp + halo) * c + blk * dim) as u64;
                    let addr = base + (blk * pixels + y * w) as u16;
                    v.push(piece(dram, *c, *w, dim.min(c - blk * dim), addr, deps));
                }
            }
            v
        }
        l => {
            let (rows, cols) = feature_rows(l).expect("plain layout");
            vec![piece(b.addr, cols, rows, cols, base, first)]
        }
    }
}

pub fn store_feature(b: &Buffer, base: u16, dim: usize, first: Deps) -> Vec<Instr> {
    move_feature(b, base, dim, first, true)
}

/// Loads a buffer; the last load carries `last` (e.g. the signal to COMPUTE).
pub fn load_feature(b: &Buffer, base: u16, dim: usize, last: Deps) -> Vec<Instr> {
    let mut v = move_feature(b, base, dim, Deps::NONE, false);
    *v.last_mut().expect("at least one load").deps_mut() = last;
    v
}

/// The im2col view of a feature map for one convolution group: A row
/// `(oy, ox)`, column `(i, j, ci)` is input pixel `(oy sh + i dh, ox sw + j dw)`
/// of the halo'd buffer, channel `c0 + ci`. Per output row and kernel row,
/// the pixels of consecutive outputs are rows of one strided 2-D block;
/// blocks are cut at `tile_k` column boundaries so each LOAD writes one
/// column block (`gemm::AGather`'s contract).
pub struct Im2col {
    /// Address of padded pixel (0, 0), channel 0.
    pub src: u64,
    /// Padded row width in pixels, channels per pixel.
    pub wp: usize,
    pub cin: usize,
    /// This group's first channel and channel count.
    pub c0: usize,
    pub cg: usize,
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    pub dilations: [usize; 2],
    /// Halo minus the convolution's leading padding (rows, columns): where
    /// the padded image's row 0 and column 0 start.
    pub off: [usize; 2],
    /// Output width.
    pub ow: usize,
    pub tile_k: usize,
}

impl Im2col {
    /// The LOADs writing A rows `[r0, r0 + nrows)` column-blocked at `base`.
    pub fn loads(&self, r0: usize, nrows: usize, base: u16) -> Vec<Instr> {
        let [kh, kw] = self.kernel;
        let [sh, sw] = self.strides;
        let [dh, dw] = self.dilations;
        let (cg, ow, tk) = (self.cg, self.ow, self.tile_k);
        // A kernel row's kw pixels are one run of contiguous A columns when
        // they are adjacent in memory (no dilation, all channels).
        let runs: Vec<(usize, usize)> =
            if dw == 1 && cg == self.cin { vec![(0, kw)] } else { (0..kw).map(|j| (j, 1)).collect() };
        let mut v = Vec::new();
        let mut r = r0;
        while r < r0 + nrows {
            let (o, ow0) = (r / ow, r % ow);
            let n = (ow - ow0).min(r0 + nrows - r);
            for i in 0..kh {
                let hp = o * sh + i * dh + self.off[0];
                for &(j0, nj) in &runs {
                    let src =
                        self.src + ((hp * self.wp + ow0 * sw + j0 * dw + self.off[1]) * self.cin + self.c0) as u64;
                    let (c0, c1) = ((i * kw + j0) * cg, (i * kw + j0 + nj) * cg);
                    let mut p0 = c0;
                    while p0 < c1 {
                        let p1 = c1.min((p0 / tk + 1) * tk);
                        v.push(Instr::from(ins::Load {
                            dram: (src + (p0 - c0) as u64) as u32,
                            stride: (sw * self.cin) as u32,
                            rows: n as u16,
                            cols: (p1 - p0) as u16,
                            addr: base + ((p0 / tk) * nrows + (r - r0)) as u16,
                            col: (p0 % tk) as u16,
                            ..Default::default()
                        }));
                        p0 = p1;
                    }
                }
            }
            r += n;
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isa::HwConfig;

    /// A copy phase of more blocks than buffers, strided on both sides, run
    /// alone on the model: every block lands where asked, nothing else moves.
    #[test]
    fn copy_phase_moves_every_block() {
        let cfg = HwConfig::tiny_4x4();
        let (src, dst) = (0u64, 4096u64);
        let blocks: Vec<CopyBlock> = (0..7)
            .map(|i| CopyBlock {
                src: src + i * 64,
                src_stride: 10,
                rows: 3,
                cols: 6,
                dst: dst + i * 100,
                dst_stride: 7,
            })
            .collect();
        let code = mapped_copy_phase(&blocks, &[None; 7], &[], 4, cfg.spad_rows() as usize);
        let data: Vec<u8> = (0..8192u32).map(|i| if i < 4096 { (i * 7 % 251) as u8 } else { 0 }).collect();
        let (mut d, _, data_addr) = crate::test_run::run_alone(&cfg, code, data.clone());
        let out = d.read_mem(data_addr + dst, 4096).unwrap();
        let mut want = vec![0u8; 4096];
        for b in &blocks {
            for r in 0..b.rows {
                for c in 0..b.cols {
                    let from = (b.src + r as u64 * b.src_stride) as usize + c;
                    want[(b.dst - dst) as usize + r * b.dst_stride as usize + c] = data[from];
                }
            }
        }
        assert_eq!(out, want);
    }
}
