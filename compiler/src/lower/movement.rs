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

/// Copies 2-D blocks DRAM -> scratchpad -> DRAM. `COPY_BUFFERS` scratchpad buffers
/// rotate, so several blocks' LOADs and STOREs are in flight at once (each
/// pays the DRAM latency); COMPUTE `sync`s forward "loaded" to STORE and
/// "stored" back to LOAD.
pub fn copy_phase(blocks: &[CopyBlock], dim: usize, spad_rows: usize) -> Vec<Instr> {
    const COPY_BUFFERS: usize = 4;
    let n = blocks.len();
    let buf_rows = blocks.iter().map(|b| b.rows * b.cols.div_ceil(dim)).max().unwrap_or(0);
    // At least two buffers: a release must never wait behind its own forward.
    let nb = COPY_BUFFERS.min(spad_rows / buf_rows.max(1)).max(2);
    let buf = |i: usize| ((i % nb) * buf_rows) as u16;
    let load = |i: usize| {
        let b = blocks[i];
        Instr::from(ins::Load {
            deps: Deps { pop_next: i >= nb, push_next: true, ..Deps::NONE },
            dram: b.src as u32,
            stride: b.src_stride as u32,
            rows: b.rows as u16,
            cols: b.cols as u16,
            addr: buf(i),
            ..Default::default()
        })
    };
    let forward = Instr::from(ins::Sync {
        deps: Deps { pop_prev: true, push_next: true, ..Deps::NONE },
        queue: Queue::Compute as u8,
    });
    let release = Instr::from(ins::Sync {
        deps: Deps { pop_next: true, push_prev: true, ..Deps::NONE },
        queue: Queue::Compute as u8,
    });
    let store = |i: usize| {
        let b = blocks[i];
        Instr::from(ins::Store {
            deps: Deps { pop_prev: true, push_prev: i + nb < n, ..Deps::NONE },
            dram: b.dst as u32,
            stride: b.dst_stride as u32,
            rows: b.rows as u16,
            cols: b.cols as u16,
            addr: buf(i),
            ..Default::default()
        })
    };
    // Order (two buffers): L0 L1 F0 S0 | F1 S1 R0 L2 | F2 S2 R1 L3 | ...:
    // the release of block i follows the forward of block i + 1, so COMPUTE
    // never holds a forward behind a store in flight.
    let mut v = Vec::new();
    for i in 0..n.min(nb) {
        v.push(load(i));
    }
    for i in 0..n {
        v.push(forward);
        v.push(store(i));
        if i >= 1 && i - 1 + nb < n {
            v.push(release);
            v.push(load(i - 1 + nb));
        }
    }
    v
}

/// Concatenation along channels (NCHW axis 1, or the columns of a 2-D
/// value): each input's rows are copied into their column slice of the
/// output with the DMA copy phase. All operands share one quantization.
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
    let qy = cx.quant(y);
    if ins_.iter().any(|&i| cx.quant(i) != qy || cx.g.values[i].ty != cx.g.values[y].ty) {
        return Err(unsupported(
            node,
            "concat",
            "inputs quantized differently from the output need requantizing, which is not lowered yet",
        ));
    }
    let outb = out_buffer(cx, y, out_halo)?;
    let (rows, per_row) = row_shape(&outb.layout);
    let (_, c_out) =
        feature_rows(&outb.layout).ok_or_else(|| unsupported(node, "concat", "output layout not supported"))?;
    let row_pitch = |b: &Buffer| match b.layout {
        Layout::Nhwc { w, c, halo, .. } => ((w + 2 * halo) * c, ((halo * (w + 2 * halo)) + halo) * c),
        Layout::Flat { cols, .. } => (cols, 0),
    };
    let (out_pitch, out_first) = row_pitch(&outb);
    let mut blocks = Vec::new();
    let mut c0 = 0;
    for &i in ins_ {
        let b = input_buffer(cx, i, node)?.clone();
        let (_, ci) =
            feature_rows(&b.layout).ok_or_else(|| unsupported(node, "concat", "input layout not supported"))?;
        let (in_pitch, in_first) = row_pitch(&b);
        // One block per image row: `per_row` pixels of `ci` channels.
        for r in 0..rows {
            let src = b.addr + (in_first + r * in_pitch) as u64;
            let dst = outb.addr + (out_first + r * out_pitch + c0) as u64;
            blocks.push(CopyBlock {
                src,
                src_stride: ci as u64,
                rows: per_row,
                cols: ci,
                dst,
                dst_stride: c_out as u64,
            });
        }
        c0 += ci;
    }
    cx.code.phase(copy_phase(&blocks, cx.dim, cx.cfg.spad_rows() as usize));
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
        Layout::Nhwc { h, w, c, halo: 0 } if rows == 1 => {
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
        Layout::Nhwc { h, w, c, halo } if *halo > 0 => {
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
        let code = copy_phase(&blocks, 4, cfg.spad_rows() as usize);
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
