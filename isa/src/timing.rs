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
