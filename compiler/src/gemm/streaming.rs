//! The streaming (activation-stationary) schedule, for GEMMs with few rows
//! of A (M <= the array's columns: a GEMV, a decode step, a small batch).
//!
//! Weight-stationary, such a GEMM reuses each weight tile for only M rows:
//! the array idles while the next tile loads, and one `matmul` per 16x16
//! tile costs 32 instruction bytes per 256 weight bytes — 12.5 % of the
//! bus before any data, and fetch waits behind each long weight stripe.
//! Here the roles swap, `C^T[N, M] = B^T[N, K] x A^T[K, M]`:
//! - A^T sits in the array: k-tile `i` of A as a `tile.k x M` weight tile,
//!   loaded from scratchpad rows that each hold one reduction index (one
//!   byte per row of A, `col` = the row of A).
//! - B streams through as the array's input rows (`WeightFormat::StreamI8`:
//!   one scratchpad row per output column and k-tile), one `matmul` of up
//!   to 512 rows per chunk, so the array consumes a full bus beat per cycle
//!   and each chunk costs two instructions (its LOAD and its `matmul`) for
//!   8 KiB of weights.
//! - K is split across accumulator passes: the chunks of one block of
//!   output columns accumulate k-tile after k-tile into the same
//!   accumulator rows, which are stored (one int32 per row) when done.
//! - Weight chunks are triple-buffered: a chunk's LOAD may start only when
//!   the `matmul` three chunks back has read its buffer, and with two
//!   chunks of work queued the DRAM latency hides (double buffering would
//!   leave the bus idle for one latency per chunk). Accumulator blocks are
//!   double-buffered against their STOREs.
//! - A^T is loaded first, in pieces of at most `AT_PIECE` one-byte rows,
//!   each followed by a LOAD-queue `sync` so the bytes waiting to be
//!   written never exceed the RTL's 4 KiB LOAD staging buffer (ISA.md §4).
//!
//! Only int8 A and int32 output: the stationary tile is int8 (uint8 A
//! would need its offset folded in), and the post-processor's per-column
//! parameters would apply per row of A here. The caller (`Dataflow::pack`)
//! picks weight-stationary otherwise.

use super::schedule::{ASource, GemmJob, GemmOut};
use super::weights::{PackedWeights, TileShape};
use super::LowerError;
use isa::instr::{self as ins, Deps, Instr};
use isa::HwConfig;

/// Rows of A^T loaded before a `sync` (bytes the RTL's staging buffer holds
/// while one-byte rows are written one per cycle).
const AT_PIECE: usize = 2048;
/// Weight rows per chunk (the `matmul`'s M): long enough that a chunk's two
/// instructions are under 1 % of its bytes.
const CHUNK_ROWS: usize = 512;
/// Weight chunk buffers in the scratchpad (see the module comment).
const W_BUFS: usize = 3;

/// Scratchpad and accumulator placement of one streaming schedule.
#[derive(Clone, Copy, Debug)]
pub(super) struct StreamPlan {
    /// Output columns per accumulator block (rows of a chunk).
    nb: usize,
    blocks: usize,
    /// First scratchpad row of each weight buffer (A^T is at row 0).
    w_buf: [u16; W_BUFS],
    acc_buf: [u16; 2],
}

impl StreamPlan {
    /// The plan for `m` rows of A against B `[k, n]`, or why the streaming
    /// schedule cannot run it on `cfg`.
    pub(super) fn new(m: usize, k: usize, n: usize, cfg: &HwConfig) -> Result<StreamPlan, String> {
        let (cols, spad, accr) = (cfg.array.cols as usize, cfg.spad_rows() as usize, cfg.acc_rows() as usize);
        if m == 0 || k == 0 || n == 0 {
            return Err("every dimension must be at least 1".into());
        }
        if m > cols {
            return Err(format!("M = {m} rows exceed the array's {cols} columns"));
        }
        let room = spad.checked_sub(k).map(|r| r / W_BUFS).unwrap_or(0);
        let nb_max = CHUNK_ROWS.min(accr / 2).min(room);
        // A chunk must be long enough to hide a weight tile's preload (k rows).
        if nb_max < cfg.array.rows as usize {
            return Err(format!("K = {k} leaves {room} scratchpad rows per weight buffer"));
        }
        let blocks = n.div_ceil(nb_max);
        let nb = n.div_ceil(blocks);
        let r = |x: usize| x as u16;
        Ok(StreamPlan { nb, blocks, w_buf: [r(k), r(k + nb), r(k + 2 * nb)], acc_buf: [0, r(nb)] })
    }

    fn block_cols(&self, b: usize, n: usize) -> (usize, usize) {
        let c0 = b * self.nb;
        (c0, self.nb.min(n - c0))
    }
}

/// The streaming tile shape on `cfg`: a streamed row (a scratchpad row of
/// `cols` bytes) holds one k-tile of one output column.
pub(super) fn tile_shape(cfg: &HwConfig) -> TileShape {
    let (rows, cols) = (cfg.array.rows as usize, cfg.array.cols as usize);
    TileShape { k: rows.min(cols), n: cols }
}

/// Emits `job` (weights packed `StreamI8`, or `StreamSparseI8`: the same
/// rows, each chunk a compressed LOAD the LOAD unit expands). Like every schedule the stream
/// starts and ends with the queues idle and the tokens balanced.
pub(super) fn emit(job: &GemmJob<'_>, cfg: &HwConfig) -> Result<Vec<Instr>, LowerError> {
    let w: &PackedWeights = job.weights;
    debug_assert!(w.format().is_streamed());
    let (m, k, n) = (job.m, w.k(), w.n());
    let shape_error = |why: String| LowerError::Shape { m, k, n, why };
    let p = StreamPlan::new(m, k, n, cfg).map_err(|why| shape_error(format!("streaming schedule: {why}")))?;
    let ASource::Matrix { addr: a_addr, stride: a_stride } = job.a else {
        return Err(shape_error("streaming schedule: A must be a matrix in memory".into()));
    };
    if job.a_unsigned || job.out != GemmOut::Int32 {
        return Err(shape_error("streaming schedule: only int8 A and int32 output".into()));
    }
    let kt = w.k_tiles();
    let tile_k = w.tile_shape().k;
    let chunks = p.blocks * kt;
    // Chunk `c` is k-tile `c % kt` of block `c / kt`.
    let chunk = |c: usize| (c / kt, c % kt);
    let at_tile = |i: usize| (i * tile_k) as u16;

    let mut load = Vec::new();
    // A^T: row `r` of the scratchpad holds A[.][r], row `mi` of A at column `mi`.
    for mi in 0..m {
        let mut r0 = 0;
        while r0 < k {
            let rows = AT_PIECE.min(k - r0);
            load.push(Instr::from(ins::Load {
                buf: ins::BUF_SPAD,
                dram: (a_addr + mi as u64 * a_stride + r0 as u64) as u32,
                stride: 1,
                rows: rows as u16,
                cols: 1,
                addr: r0 as u16,
                col: mi as u16,
                ..Default::default()
            }));
            r0 += rows;
            // Drain before more bytes arrive; the last sync also tells
            // COMPUTE that A^T is in place.
            let last = mi + 1 == m && r0 == k;
            load.push(Instr::from(ins::Sync {
                deps: Deps { push_next: last, ..Deps::NONE },
                queue: ins::Queue::Load as u8,
            }));
        }
    }
    let chunk_load = |c: usize| {
        let (b, i) = chunk(c);
        let mut l = w.stream_chunk_load(i, p.block_cols(b, n), job.weights_addr, p.w_buf[c % W_BUFS]);
        l.deps = Deps { pop_next: c >= W_BUFS, push_next: true, ..Deps::NONE };
        Instr::from(l)
    };

    let mut program = load;
    program.extend((0..chunks.min(W_BUFS)).map(chunk_load));
    let tile = |i: usize| (at_tile(i), w.k_tile_rows(i) as u16, m as u16);
    let (a0, k0, n0) = tile(0);
    program.push(Instr::from(ins::Ldw {
        deps: Deps { pop_prev: true, ..Deps::NONE },
        addr: a0,
        k: k0,
        n: n0,
        wfmt: w.format().wfmt(),
        meta: 0,
        trans: 0,
    }));
    for c in 0..chunks {
        let (b, i) = chunk(c);
        let (c0, rows) = p.block_cols(b, n);
        let mut mm = ins::Matmul {
            deps: Deps {
                pop_prev: true,
                // The STORE of block b - 2 has read this accumulator block.
                pop_next: i == 0 && b >= 2,
                push_prev: c + W_BUFS < chunks,
                push_next: i + 1 == kt,
            },
            a: p.w_buf[c % W_BUFS],
            m: rows as u16,
            acc: p.acc_buf[b % 2],
            accumulate: (i > 0) as u8,
            swap: 1,
            in_type: ins::ELEM_I8,
            ..Default::default()
        };
        if c + 1 < chunks {
            let (wa, wk, wn) = tile(chunk(c + 1).1);
            (mm.preload, mm.w, mm.k, mm.n, mm.wfmt) = (1, wa, wk, wn, w.format().wfmt());
        }
        program.push(Instr::from(mm));
        if c + W_BUFS < chunks {
            program.push(chunk_load(c + W_BUFS));
        }
        if i + 1 == kt {
            // C[mi][c0..c0 + rows] is column `mi` of the block, one int32 a row.
            for mi in 0..m {
                let row = job.c.addr
                    + (mi / job.c.group) as u64 * job.c.group_stride
                    + (mi % job.c.group) as u64 * job.c.row_stride;
                program.push(Instr::from(ins::Store {
                    deps: Deps { pop_prev: mi == 0, push_prev: mi + 1 == m && b + 2 < p.blocks, ..Deps::NONE },
                    buf: ins::BUF_ACC,
                    dram: (row + (c0 * 4) as u64) as u32,
                    stride: 4,
                    rows: rows as u16,
                    cols: 1,
                    addr: p.acc_buf[b % 2],
                    col: mi as u16,
                }));
            }
        }
    }
    Ok(program)
}
