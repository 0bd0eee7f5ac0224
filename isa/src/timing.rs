//! Micro-architectural constants that decide cycle counts. `isa/ISA.md`
//! explains each; the RTL takes them from the generated header.

/// Instructions each of the LOAD, COMPUTE and STORE queues holds.
pub const QUEUE_DEPTH: u32 = 8;
/// Largest value of a dependency-token counter; a push beyond it faults.
pub const TOKEN_MAX: u32 = 255;
/// Instructions the fetch buffer holds.
pub const FETCH_BUFFER: u32 = 16;
/// Instructions per fetch request (one burst, aligned to its own size).
pub const FETCH_BLOCK: u32 = 4;
/// AXI: at most 256 beats per burst.
pub const BURST_MAX_BEATS: u32 = 256;
/// AXI: no burst crosses a 4 KiB boundary.
pub const BURST_BOUNDARY: u64 = 4096;
/// Consecutive cycles without progress after which the watchdog faults.
pub const WATCHDOG_CYCLES: u64 = 4096;
/// Cycles the LOAD unit's expander adds to a compressed stream's row
/// (`load` `zfmt = mask`): it routes the row's stored bytes to their
/// columns by the prefix sums of its mask, one row per cycle.
pub const STREAM_EXPAND_CYCLES: u64 = 1;
/// Cycles a REQUANT spends beyond one per row (two parameter-row reads, one
/// pipeline stage).
pub const REQUANT_OVERHEAD: u64 = 3;
/// Cycles a VMAX spends beyond one per row (one pipeline stage).
pub const VMAX_OVERHEAD: u64 = 1;
/// Cycles a VADD spends beyond one per row (three parameter rows, one stage).
pub const VADD_OVERHEAD: u64 = 4;
/// Cycles a VLUT spends beyond its table rows and one per row (one stage).
pub const VLUT_OVERHEAD: u64 = 1;
/// Entries of a VLUT table (one per byte value).
pub const LUT_ENTRIES: u32 = 256;

/// Scratchpad rows a VLUT table occupies, and cycles a VLUT spends reading
/// it: `ceil(256 / cols)`.
pub fn lut_rows(cols: u32) -> u64 {
    LUT_ENTRIES.div_ceil(cols) as u64
}

/// Cycles from a MATMUL's first streaming cycle to the cycle after its last
/// accumulator write beyond one per row: skew in, down the rows, skew out.
pub fn array_latency(rows: u32, cols: u32) -> u64 {
    rows as u64 + cols as u64
}

/// Cycles a vector lane spends per element of a `vop`, by `op`
/// (`instr::VOP_NAMES` order). A lane is one binary32 FMA pipeline plus a
/// divide/square-root unit that accepts an operation every
/// [`VEC_DIV_CYCLES`] cycles; an operation occupies the lane for the steps
/// of its `numerics::vector` sequence: exp 12 (2 rounding, 2 reduction,
/// 6 polynomial, 2 scaling), erf 20 (7 polynomial + exp + 1), tanh 15
/// (1 + 6 + 3 FMA steps, a division, 1 multiply), rsqrt a square root and
/// a division.
pub const VOP_CYCLES: [u64; 11] = [1, 1, 1, VEC_DIV_CYCLES, 1, 1, 12, 20, 15, VEC_DIV_CYCLES, 2 * VEC_DIV_CYCLES];
/// Cycles between operations of a lane's divide/square-root unit.
pub const VEC_DIV_CYCLES: u64 = 4;
/// Lane cycles per element of `vdeq` (int-to-float conversion and the
/// multiply, one pipeline), `vmask` (a compare and a select) and `vred`
/// (one add or max into the lane's accumulator).
pub const VEC_SIMPLE_CYCLES: u64 = 1;
/// Lane cycles per element of `vquant`: the division `x ÷ scale`, then
/// rounding and clamping in the pipeline behind it.
pub const VQUANT_CYCLES: u64 = VEC_DIV_CYCLES;
/// Pipeline latency of the vector unit: cycles from its last element's
/// issue to its last write, for every vector instruction (reductions add
/// their tree, [`vred_tree_cycles`]).
pub const VEC_LATENCY: u64 = 6;
/// Latency of one binary32 add or max stage of a reduction tree.
pub const VEC_ADD_LATENCY: u64 = 4;

/// Beats of an element-wise vector instruction: `rows · ceil(len / lanes)`
/// (the lanes take `lanes` elements of one logical row per beat).
pub fn vector_beats(rows: u16, len: u16, lanes: u32) -> u64 {
    rows as u64 * (len as u64).div_ceil(lanes as u64)
}

/// Cycles of the pairwise tree that combines `lanes` accumulators:
/// `ceil(log2 lanes)` levels of [`VEC_ADD_LATENCY`].
pub fn vred_tree_cycles(lanes: u32) -> u64 {
    (32 - (lanes.max(1) - 1).leading_zeros()) as u64 * VEC_ADD_LATENCY
}

/// Busy cycles of a `vred`: each lane adds one element per cycle into one
/// accumulator per logical row, rows interleaved, so a beat of a row
/// follows the previous beat of the same row after at least
/// [`VEC_ADD_LATENCY`] cycles: `ceil(len / lanes) · max(rows, 4)`, then the
/// tree and the pipeline.
pub fn vred_cycles(rows: u16, len: u16, lanes: u32) -> u64 {
    (len as u64).div_ceil(lanes as u64) * (rows as u64).max(VEC_ADD_LATENCY) + vred_tree_cycles(lanes) + VEC_LATENCY
}
