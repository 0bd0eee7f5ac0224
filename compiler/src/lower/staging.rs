//! Keeping LOADs within the DMA's staging buffer.
//!
//! A LOAD's bytes wait in a staging buffer between arriving from DRAM (at
//! the bus rate) and being written to their scratchpad or accumulator row
//! (one chunk per cycle, in program order; ISA.md §4 "LOAD and STORE"). The
//! RTL's buffer holds 4 KiB; the model's timing assumes it never fills. A
//! LOAD whose chunks are narrower than the bus (few channels per pixel, one
//! byte per row) writes slower than its bytes arrive, so they pile up, and
//! so do those of every LOAD requested behind it. [`bound`] makes every
//! phase safe: such a LOAD is cut into pieces that each pile up at most
//! [`BUDGET`] bytes, and a LOAD-queue `sync` after each piece holds the
//! next request until the piece is written.

use isa::instr::{self as ins, Deps, Instr, Queue};

/// Bytes one piece may pile up: the RTL's 4 KiB less a margin for the
/// transfers before it, which write as fast as they arrive and so leave at
/// most a beat and a chunk behind.
pub const BUDGET: u64 = 3072;

/// What the estimate needs of a configuration.
#[derive(Clone, Copy, Debug)]
pub struct Dma {
    /// Array columns: a chunk's width in elements.
    pub dim: u64,
    /// DRAM bytes per cycle.
    pub bus: u64,
    pub latency: u64,
    pub max_outstanding: u64,
}

impl Dma {
    pub fn of(cfg: &isa::HwConfig) -> Dma {
        Dma {
            dim: u64::from(cfg.array.cols),
            bus: u64::from(cfg.dram.bytes_per_cycle),
            latency: u64::from(cfg.dram.latency_cycles),
            max_outstanding: u64::from(cfg.dram.max_outstanding),
        }
    }
}

/// The bytes of `l` that can wait in the staging buffer at once, as an upper
/// estimate: they leave one chunk (one row of one `dim`-wide column block,
/// padding included) per cycle, `bytes / chunks` on average, and arrive at
/// most at the bus rate — and when each DRAM row is its own request, at
/// most `max_outstanding` rows per latency — so when they arrive faster
/// than they leave, a fraction `1 - leave / arrive` piles up.
pub fn pile_up(l: &ins::Load, d: Dma) -> u64 {
    let es = if l.buf == ins::BUF_ACC { 4 } else { 1 };
    let width = u64::from(l.pad_left) + u64::from(l.cols) + u64::from(l.pad_right);
    let col = u64::from(l.col);
    let blocks = (col + width - 1) / d.dim - col / d.dim + 1;
    let chunks = (u64::from(l.pad_top) + u64::from(l.rows) + u64::from(l.pad_bottom)) * blocks;
    let row_bytes = u64::from(l.cols) * es;
    let bytes = u64::from(l.rows) * row_bytes;
    let leave = bytes as f64 / chunks as f64;
    let contiguous = u64::from(l.stride) == row_bytes || l.rows == 1;
    let mut arrive = d.bus as f64;
    if !contiguous {
        arrive = arrive.min((d.max_outstanding * row_bytes) as f64 / d.latency.max(1) as f64);
    }
    if leave >= arrive {
        return 0;
    }
    (bytes as f64 * (1.0 - leave / arrive)).ceil() as u64
}

/// `instrs` (one phase) with every LOAD that piles up bytes followed by a
/// LOAD-queue `sync`, and cut first when it piles up more than [`BUDGET`].
pub fn bound(instrs: Vec<Instr>, d: Dma) -> Vec<Instr> {
    let mut out = Vec::with_capacity(instrs.len());
    for i in instrs {
        let Instr::Load(l) = i else {
            out.push(i);
            continue;
        };
        if pile_up(&l, d) == 0 {
            out.push(i);
            continue;
        }
        let pieces = pieces(&l, d);
        let n = pieces.len();
        for (k, mut p) in pieces.into_iter().enumerate() {
            // The first piece waits for what the LOAD waited for, the last
            // signals what it signalled.
            p.deps = Deps { pop_next: l.deps.pop_next && k == 0, push_next: l.deps.push_next && k + 1 == n, ..l.deps };
            out.push(Instr::from(p));
            out.push(Instr::from(ins::Sync { deps: Deps::NONE, queue: Queue::Load as u8 }));
        }
    }
    out
}

/// `l` cut so that each piece piles up at most [`BUDGET`] bytes where it
/// can be: by rows within one column block (a piece of block `j` is placed
/// as block 0 of rows that start where the block's rows do). A padded LOAD
/// stays whole.
fn pieces(l: &ins::Load, d: Dma) -> Vec<ins::Load> {
    let dim = d.dim;
    let padded = l.pad_top | l.pad_bottom | l.pad_left | l.pad_right != 0;
    if padded || pile_up(l, d) <= BUDGET {
        return vec![*l];
    }
    let es = if l.buf == ins::BUF_ACC { 4 } else { 1 };
    let (col, cols, rows) = (u64::from(l.col), u64::from(l.cols), u64::from(l.rows));
    let mut out = Vec::new();
    for j in col / dim..=(col + cols - 1) / dim {
        let (c0, c1) = ((j * dim).max(col), ((j + 1) * dim).min(col + cols));
        // A gather's piece starts at its first id; its rows are the table's.
        let indexed = isa::legal::IndexList::of_load(l);
        let block = |r0: u64, n: u64| ins::Load {
            dram: (u64::from(l.dram) + if indexed.is_some() { 0 } else { r0 * u64::from(l.stride) } + (c0 - col) * es)
                as u32,
            idx_addr: indexed.map_or(0, |ix| ix.addr + r0 * ix.elem_bytes) as u32,
            rows: n as u16,
            cols: (c1 - c0) as u16,
            addr: (u64::from(l.addr) + (j - col / dim) * rows + r0) as u16,
            col: (c0 % dim) as u16,
            ..*l
        };
        // Rows per piece: as many as keep the piece within the budget.
        let per_row = pile_up(&block(0, 1), d).max(1);
        let step = (BUDGET / per_row).clamp(1, rows);
        let mut r0 = 0;
        while r0 < rows {
            let n = step.min(rows - r0);
            out.push(block(r0, n));
            r0 += n;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Dma = Dma { dim: 16, bus: 16, latency: 100, max_outstanding: 16 };

    fn load(rows: u16, cols: u16, col: u16) -> ins::Load {
        ins::Load {
            buf: ins::BUF_SPAD,
            dram: 0x1000,
            stride: u32::from(cols),
            rows,
            cols,
            col,
            addr: 10,
            ..Default::default()
        }
    }

    #[test]
    fn full_width_chunks_pile_up_nothing() {
        assert_eq!(pile_up(&load(100, 16, 0), D), 0);
        assert_eq!(pile_up(&load(100, 64, 0), D), 0);
        // 24-byte pixels: chunks of 16 and 8, a quarter piles up.
        assert_eq!(pile_up(&load(100, 24, 0), D), 600);
        // One byte per row: all but one byte in sixteen.
        assert_eq!(pile_up(&load(160, 1, 0), D), 150);
    }

    #[test]
    fn narrow_loads_are_cut_and_drained() {
        let big = load(4000, 8, 0);
        let out = bound(
            vec![Instr::from(ins::Load { deps: Deps { pop_next: true, push_next: true, ..Deps::NONE }, ..big })],
            D,
        );
        let loads: Vec<ins::Load> =
            out.iter().filter_map(|i| if let Instr::Load(l) = i { Some(*l) } else { None }).collect();
        assert!(loads.len() > 1 && out.len() == 2 * loads.len());
        assert!(loads.iter().all(|p| pile_up(p, D) <= BUDGET));
        assert_eq!(loads.iter().map(|p| u32::from(p.rows)).sum::<u32>(), 4000);
        assert!(loads[0].deps.pop_next && !loads[0].deps.push_next);
        assert!(loads.last().unwrap().deps.push_next && !loads.last().unwrap().deps.pop_next);
        // Every piece lands where its rows did: row r at addr + r, DRAM row r.
        for p in &loads {
            let r0 = u32::from(p.addr) - 10;
            assert_eq!(p.dram, 0x1000 + r0 * 8);
        }
    }

    #[test]
    fn multi_block_pieces_keep_the_layout() {
        // 24-byte rows into a 16-wide buffer: block 0 at rows addr + r, block 1 at addr + rows + r.
        let l = load(1000, 24, 0);
        let ps = pieces(&l, D);
        assert!(ps.len() >= 2);
        for p in &ps {
            let off = p.dram - 0x1000;
            let (r, c) = (off / 24, off % 24);
            let block = u32::from(c >= 16);
            assert_eq!(u32::from(p.addr), 10 + block * 1000 + r, "{p:?}");
            assert_eq!(p.col, 0);
            assert_eq!(p.cols, if block == 1 { 8 } else { 16 });
        }
    }
}
