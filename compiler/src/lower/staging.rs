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

/// Bytes the STOREs since a STORE-queue `sync` may pile up together: the
/// RTL's 8 KiB STORE staging buffer (`dma_store.sv`) less 2 KiB for the
/// stores before them that leave as fast as they are read (latency's worth
/// each, overlapping).
pub const STORE_BUDGET: u64 = 6144;

/// The bytes of a STORE `s` that can wait in the staging buffer at once, as
/// an upper estimate (0 when its chunks are read no faster than the bus
/// takes them): it reads one chunk (one row of one `dim`-wide column block)
/// per cycle and its bytes leave at the bus rate from a latency after its
/// first request, so at the last read `bytes (1 - bus / read rate) + bus
/// (latency + 1)` wait, at most all of them.
pub fn store_pile_up(s: &ins::Store, d: Dma) -> u64 {
    let es = if s.buf == ins::BUF_ACC { 4 } else { 1 };
    let (col, cols, rows) = (u64::from(s.col), u64::from(s.cols), u64::from(s.rows));
    let blocks = (col + cols - 1) / d.dim - col / d.dim + 1;
    let bytes = rows * cols * es;
    let read = bytes as f64 / (rows * blocks) as f64;
    let bus = d.bus as f64;
    if read <= bus {
        return 0;
    }
    let est = bytes as f64 * (1.0 - bus / read) + bus * (d.latency + 1) as f64;
    (est.ceil() as u64).min(bytes)
}

/// `instrs` (one phase) with every LOAD that piles up bytes followed by a
/// LOAD-queue `sync`, and cut first when it piles up more than [`BUDGET`];
/// and a STORE-queue `sync` before a STORE whose pile-up, with those of the
/// STOREs since the last one (at a phase's start: unknown), would pass
/// [`STORE_BUDGET`], so it starts on a drained buffer.
pub fn bound(instrs: Vec<Instr>, d: Dma) -> Vec<Instr> {
    let mut out = Vec::with_capacity(instrs.len());
    let mut stored = STORE_BUDGET;
    for i in instrs {
        if let Instr::Sync(s) = i {
            if s.queue == Queue::Store as u8 {
                stored = 0;
            }
        }
        if let Instr::Store(s) = i {
            let pieces = store_pieces(&s, d);
            let n = pieces.len();
            for (k, mut p) in pieces.into_iter().enumerate() {
                let pile = store_pile_up(&p, d);
                if pile > 0 && stored + pile > STORE_BUDGET {
                    out.push(Instr::from(ins::Sync { deps: Deps::NONE, queue: Queue::Store as u8 }));
                    stored = 0;
                }
                stored += pile;
                // The first piece waits for what the STORE waited for, the
                // last signals what it signalled.
                p.deps =
                    Deps { pop_prev: s.deps.pop_prev && k == 0, push_prev: s.deps.push_prev && k + 1 == n, ..s.deps };
                out.push(Instr::from(p));
            }
            continue;
        }
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

/// `s` cut, when it alone piles up more than [`STORE_BUDGET`], into pieces
/// that each pile up at most that where they can: by rows within one column
/// block (a piece of block `j` read as block 0 of rows that start where the
/// block's rows do), as [`pieces`] cuts a LOAD.
fn store_pieces(s: &ins::Store, d: Dma) -> Vec<ins::Store> {
    if store_pile_up(s, d) <= STORE_BUDGET {
        return vec![*s];
    }
    let (dim, es) = (d.dim, if s.buf == ins::BUF_ACC { 4 } else { 1 });
    let (col, cols, rows) = (u64::from(s.col), u64::from(s.cols), u64::from(s.rows));
    let mut out = Vec::new();
    for (j, c0, c1) in column_blocks(col, cols, dim) {
        let block = |r0: u64, n: u64| ins::Store {
            dram: (u64::from(s.dram) + r0 * u64::from(s.stride) + (c0 - col) * es) as u32,
            rows: n as u16,
            cols: (c1 - c0) as u16,
            addr: (u64::from(s.addr) + (j - col / dim) * rows + r0) as u16,
            col: (c0 % dim) as u16,
            ..*s
        };
        // Rows per piece: the most that keep the piece within the budget.
        let mut step = rows;
        while step > 1 && store_pile_up(&block(0, step), d) > STORE_BUDGET {
            step -= step.div_ceil(8);
        }
        out.extend(row_runs(rows, step).map(|(r0, n)| block(r0, n)));
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
    for (j, c0, c1) in column_blocks(col, cols, dim) {
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
        out.extend(row_runs(rows, step).map(|(r0, n)| block(r0, n)));
    }
    out
}

/// The column blocks `[c0, c1)` of `dim` columns that columns
/// `col..col + cols` touch, with their block index `j`.
fn column_blocks(col: u64, cols: u64, dim: u64) -> impl Iterator<Item = (u64, u64, u64)> {
    (col / dim..=(col + cols - 1) / dim).map(move |j| (j, (j * dim).max(col), ((j + 1) * dim).min(col + cols)))
}

/// `rows` cut into runs `(first row, rows)` of at most `step` rows.
fn row_runs(rows: u64, step: u64) -> impl Iterator<Item = (u64, u64)> {
    (0..rows).step_by(step.max(1) as usize).map(move |r0| (r0, step.min(rows - r0)))
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

    fn store(rows: u16, cols: u16, buf: u8) -> ins::Store {
        ins::Store { buf, dram: 0x1000, stride: u32::from(cols) * 4, rows, cols, addr: 10, ..Default::default() }
    }

    #[test]
    fn wide_stores_start_on_a_drained_buffer() {
        // Scratchpad rows leave as fast as they are read; int32 rows (64
        // bytes a chunk) four times slower: 6144 + 16 x 101 bytes wait.
        assert_eq!(store_pile_up(&store(16, 128, ins::BUF_SPAD), D), 0);
        assert_eq!(store_pile_up(&store(16, 128, ins::BUF_ACC), D), 6144 + 1616);
        assert_eq!(store_pile_up(&store(1, 16, ins::BUF_ACC), D), 64);
        let wide = Instr::from(store(16, 128, ins::BUF_ACC));
        let small = Instr::from(store(1, 16, ins::BUF_ACC));
        let spad = Instr::from(store(300, 16, ins::BUF_SPAD));
        let out = bound(vec![spad, wide, wide, small, small, spad], D);
        // A drain before the first wide store (what came before is
        // unknown), none before the scratchpad stores; each wide store
        // (7760 bytes) is cut, and every run between drains fits.
        assert!(matches!(out[1], Instr::Sync(_)) && matches!(out[out.len() - 2], Instr::Store(_)));
        assert_eq!(out.iter().filter(|i| matches!(i, Instr::Store(s) if s.buf == ins::BUF_ACC)).count(), 2 * 8 + 2);
        assert_runs_fit(&out);
    }

    /// Every run of STOREs between STORE-queue syncs (the first: after an
    /// unknown past) piles up at most the budget.
    fn assert_runs_fit(out: &[Instr]) {
        let mut stored = STORE_BUDGET;
        for i in out {
            match i {
                Instr::Sync(s) => {
                    assert_eq!(s.queue, Queue::Store as u8);
                    stored = 0;
                }
                Instr::Store(p) => {
                    stored += store_pile_up(p, D);
                    assert!(stored <= STORE_BUDGET || store_pile_up(p, D) == 0, "{out:?}");
                }
                _ => unreachable!(),
            }
        }
    }

    #[test]
    fn wide_stores_are_cut_by_column_block() {
        // 32 rows of 128 int32: 16 KiB, more than the buffer holds.
        let s =
            ins::Store { deps: Deps { pop_prev: true, push_prev: true, ..Deps::NONE }, ..store(32, 128, ins::BUF_ACC) };
        let out = bound(vec![Instr::from(s)], D);
        let pieces: Vec<ins::Store> =
            out.iter().filter_map(|i| if let Instr::Store(p) = i { Some(*p) } else { None }).collect();
        assert_eq!(pieces.len(), 8);
        assert!(pieces[0].deps.pop_prev && !pieces[0].deps.push_prev);
        assert!(pieces[7].deps.push_prev && !pieces[7].deps.pop_prev);
        // Block j: DRAM columns 16j.., local rows addr + 32 j.., and the
        // syncs keep each run of pieces within the budget.
        for (j, p) in pieces.iter().enumerate() {
            assert_eq!(
                (p.dram, p.addr, p.col, p.cols, p.rows),
                (0x1000 + 64 * j as u32, 10 + 32 * j as u16, 0, 16, 32)
            );
        }
        assert_runs_fit(&out);
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
