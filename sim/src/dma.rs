//! The DMA engines' data movement and timing (isa/ISA.md, "LOAD" and
//! "STORE"): a block is moved as *chunks*, one local-buffer row write (or
//! read) per cycle, and its DRAM bytes as bursts.

use crate::dram::{split_bursts, Burst};
use crate::memory::Memory;
use isa::legal::DmaBlock;

/// One local-row access of a DMA block: `len` elements of padded-block row
/// `y`, from padded-block column `x0`, at local row `row`, column `lcol`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub y: u64,
    pub x0: u64,
    pub len: u64,
    pub row: u64,
    pub lcol: u64,
}

/// Visits the chunks of a block in order: padded rows top to bottom, and in
/// each row the column blocks left to right.
pub fn for_each_chunk(b: &DmaBlock, dim: u64, mut f: impl FnMut(Chunk)) {
    let ys = b.block_rows();
    let xs = b.block_cols();
    let first_cb = b.col / dim;
    let last_cb = (b.col + xs - 1) / dim;
    for y in 0..ys {
        for cb in first_cb..=last_cb {
            let c0 = (cb * dim).max(b.col);
            let c1 = ((cb + 1) * dim).min(b.col + xs);
            f(Chunk { y, x0: c0 - b.col, len: c1 - c0, row: b.addr + cb * ys + y, lcol: c0 % dim });
        }
    }
}

/// The rows an indexed `load` gathers (ISA.md §3 `load`): the ids' DRAM
/// bytes, read first as DMA range 0, and the validated ids; DRAM row `y`
/// of the block is table row `ids[y]`, its own range `1 + y` (never merged
/// with a neighbour, even when the ids are consecutive).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Gather {
    pub id_bytes: (u64, u64),
    pub ids: Vec<u64>,
}

impl Gather {
    /// Byte address of DRAM row `yd` of the block.
    fn row_addr(&self, b: &DmaBlock, yd: u64) -> u64 {
        b.dram + self.ids[yd as usize] * b.stride
    }
}

/// A compressed stream's records (ISA.md §3 `load`, `zfmt = mask`): DRAM
/// row `y` of the block is the record at bytes `[at[y], at[y + 1])` of the
/// stream: a mask of `ceil(cols / 8)` bytes (bit `x % 8` of byte `x / 8`:
/// element `x` is stored), then the stored elements in order; the rest of
/// the row is zero. A malformed stream's well-formed records come first
/// (`at` has one entry per good record plus one), then `bad`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stream {
    pub bytes: Vec<u8>,
    pub at: Vec<u64>,
    pub bad: Option<BadRecord>,
}

/// The record at which a malformed stream faults (ISA.md §4, compressed
/// `load`): the LOAD unit examines record `record` once the stream bytes up
/// to `end` are in, in the cycle its row's first data chunk would be
/// written, and faults with `BadStream`, ERROR_INFO = `info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadRecord {
    /// The record examined when the fault is raised.
    pub record: u64,
    /// ERROR_INFO: `record`, or the block's `rows` when the last record is
    /// well formed but bytes are left after it.
    pub info: u64,
    /// One past the last stream byte the examination waits for: the
    /// record's extent (its mask and one byte per bit set in the mask's
    /// bytes), cut at the stream's end.
    pub end: u64,
}

impl Stream {
    /// Splits the stream's bytes into the block's records, stopping at the
    /// first bad one: a record whose mask marks an element past the row, or
    /// whose extent runs past the stream, or the last record when bytes are
    /// left after it.
    pub fn parse(b: &DmaBlock, bytes: Vec<u8>) -> Stream {
        let mask = isa::legal::stream_mask_bytes(b.cols) as usize;
        let tail_bits = b.cols % 8;
        let len = bytes.len();
        let mut at = Vec::with_capacity(b.rows as usize + 1);
        let mut pos = 0usize;
        at.push(0);
        let mut bad = None;
        for y in 0..b.rows {
            // Every bit set in the mask's bytes claims one stored byte (a
            // bit past the row too: the extent is what the unit waits for).
            let m = &bytes[pos.min(len)..(pos + mask).min(len)];
            let extent = mask + m.iter().map(|v| v.count_ones() as usize).sum::<usize>();
            let cut = m.len() < mask || pos + extent > len;
            let marks_past = tail_bits != 0 && m.len() == mask && m[mask - 1] >> tail_bits != 0;
            if cut || marks_past {
                bad = Some(BadRecord { record: y, info: y, end: (pos + extent).min(len) as u64 });
                break;
            }
            pos += extent;
            at.push(pos as u64);
        }
        if bad.is_none() && pos != len {
            bad = Some(BadRecord { record: b.rows - 1, info: b.rows, end: pos as u64 });
        }
        Stream { bytes, at, bad }
    }

    /// Whether DRAM row `yd` is expanded (else the load faults there).
    fn good(&self, yd: u64) -> bool {
        match self.bad {
            Some(bad) => yd < bad.record,
            None => true,
        }
    }

    /// One past the last stream byte DRAM row `yd`'s examination waits for.
    fn record_end(&self, yd: u64) -> u64 {
        match self.bad {
            Some(bad) if yd == bad.record => bad.end,
            _ => self.at[yd as usize + 1],
        }
    }

    /// DRAM row `yd` expanded: its `cols` elements into `out`.
    pub fn expand(&self, b: &DmaBlock, yd: u64, out: &mut [u8]) {
        let mask = isa::legal::stream_mask_bytes(b.cols) as usize;
        let lo = self.at[yd as usize] as usize;
        let (m, mut stored) = (&self.bytes[lo..lo + mask], &self.bytes[lo + mask..self.at[yd as usize + 1] as usize]);
        for (x, o) in out.iter_mut().enumerate().take(b.cols as usize) {
            *o = if m[x / 8] >> (x % 8) & 1 != 0 {
                let v = stored[0];
                stored = &stored[1..];
                v
            } else {
                0
            };
        }
    }
}

/// The DRAM byte range `[lo, hi)` a chunk's data occupies, with the index of
/// the range it belongs to; None for a chunk of padding only.
pub fn chunk_dram(b: &DmaBlock, gather: Option<&Gather>, c: &Chunk) -> Option<(usize, u64, u64)> {
    if c.y < b.pad_top || c.y >= b.pad_top + b.rows {
        return None;
    }
    let x0 = c.x0.max(b.pad_left);
    let x1 = (c.x0 + c.len).min(b.pad_left + b.cols);
    if x0 >= x1 {
        return None;
    }
    let yd = c.y - b.pad_top;
    let es = b.elem_bytes();
    let (row, range) = match gather {
        Some(g) => (g.row_addr(b, yd), 1 + yd as usize),
        None => (b.dram + yd * b.stride, if b.contiguous() { 0 } else { yd as usize }),
    };
    Some((range, row + (x0 - b.pad_left) * es, row + (x1 - b.pad_left) * es))
}

/// The bursts of a block, and for each DRAM range the index of its first burst.
#[derive(Clone, Debug, Default)]
pub struct BurstPlan {
    pub bursts: Vec<Burst>,
    pub range_first: Vec<usize>,
}

impl BurstPlan {
    /// A contiguous block is one range; otherwise each DRAM row is one.
    pub fn of(b: &DmaBlock, bytes_per_cycle: u64) -> BurstPlan {
        let mut plan = BurstPlan::default();
        if b.stream {
            plan.range_first.push(0);
            split_bursts(b.dram, b.stride, bytes_per_cycle, &mut plan.bursts);
        } else if b.contiguous() {
            plan.range_first.push(0);
            split_bursts(b.dram, b.rows * b.row_bytes(), bytes_per_cycle, &mut plan.bursts);
        } else {
            for yd in 0..b.rows {
                plan.range_first.push(plan.bursts.len());
                split_bursts(b.dram + yd * b.stride, b.row_bytes(), bytes_per_cycle, &mut plan.bursts);
            }
        }
        plan
    }

    /// An indexed load: the ids' bytes (range 0), then one range per
    /// gathered row. Without rows (`gather.ids` empty: an id was out of
    /// range, the load faults once the ids arrive) only the ids are read.
    pub fn of_gather(b: &DmaBlock, gather: &Gather, bytes_per_cycle: u64) -> BurstPlan {
        let mut plan = BurstPlan { bursts: Vec::new(), range_first: vec![0] };
        let (lo, hi) = gather.id_bytes;
        split_bursts(lo, hi - lo, bytes_per_cycle, &mut plan.bursts);
        for yd in 0..gather.ids.len() as u64 {
            plan.range_first.push(plan.bursts.len());
            split_bursts(gather.row_addr(b, yd), b.row_bytes(), bytes_per_cycle, &mut plan.bursts);
        }
        plan
    }

    /// Bursts of the first range (an indexed load's ids).
    pub fn first_range_bursts(&self) -> usize {
        self.range_first.get(1).copied().unwrap_or(self.bursts.len())
    }

    /// Index of the burst of `range` that holds beat `beat`.
    pub fn burst_of(&self, range: usize, beat: u64) -> usize {
        let lo = self.range_first[range];
        let hi = self.range_first.get(range + 1).copied().unwrap_or(self.bursts.len());
        lo + self.bursts[lo..hi].partition_point(|bu| bu.beat0 + bu.beats <= beat)
    }

    pub fn total_beats(&self) -> u64 {
        self.bursts.iter().map(|b| b.beats).sum()
    }
}

/// LOAD timing once every burst has its data cycles: chunk `q` is written in
/// cycle `w_q = max(w_{q-1} + 1, start + 1, arrival of its last beat + 1)`
/// (padding-only chunks need no data); the LOAD finishes at `w_last + 1`.
/// Returns (finish, chunks written). (A malformed stream: see
/// [`stream_fault`].)
#[allow(clippy::too_many_arguments)]
pub fn load_finish(
    b: &DmaBlock,
    gather: Option<&Gather>,
    stream: Option<&Stream>,
    dim: u64,
    w: u64,
    start: u64,
    plan: &BurstPlan,
    data_start: &[u64],
) -> (u64, u64) {
    let (last_write, chunks, _) = chunk_writes(b, gather, stream, dim, w, start, plan, data_start);
    (last_write + 1, chunks)
}

/// A malformed stream's fault: the cycle its bad record is examined (the
/// cycle the record's first data chunk would be written, waiting for the
/// stream bytes up to [`BadRecord::end`]) and the chunks written before it.
/// Needs the data cycles of the bursts up to the one holding that byte.
pub fn stream_fault(
    b: &DmaBlock,
    stream: &Stream,
    dim: u64,
    w: u64,
    start: u64,
    plan: &BurstPlan,
    data_start: &[u64],
) -> (u64, u64) {
    let (_, chunks, fault) = chunk_writes(b, None, Some(stream), dim, w, start, plan, data_start);
    (fault.expect("a malformed stream"), chunks)
}

/// The burst holding a malformed stream's last byte its fault waits for.
pub fn stream_fault_burst(b: &DmaBlock, stream: &Stream, plan: &BurstPlan, w: u64) -> Option<usize> {
    stream.bad.map(|bad| plan.burst_of(0, (b.dram + bad.end.max(1) - 1) / w))
}

/// The chunk writes of a load: (last write cycle, chunks written, the cycle
/// a malformed stream's bad record is examined: no chunk is written from it on).
#[allow(clippy::too_many_arguments)]
fn chunk_writes(
    b: &DmaBlock,
    gather: Option<&Gather>,
    stream: Option<&Stream>,
    dim: u64,
    w: u64,
    start: u64,
    plan: &BurstPlan,
    data_start: &[u64],
) -> (u64, u64, Option<u64>) {
    let arrival = |range: usize, hi: u64| {
        let beat = (hi - 1) / w;
        let i = plan.burst_of(range, beat);
        data_start[i] + (beat - plan.bursts[i].beat0)
    };
    let mut last_write = start;
    let mut chunks = 0;
    let mut fault = None;
    for_each_chunk(b, dim, |c| {
        if fault.is_some() {
            return;
        }
        let ready = match (chunk_dram(b, gather, &c), stream) {
            // A compressed row is expanded once its whole record is in
            // (a bad record: its extent, as far as the stream goes).
            (Some(_), Some(s)) => {
                let yd = c.y - b.pad_top;
                let ready = arrival(0, b.dram + s.record_end(yd)) + 1 + isa::timing::STREAM_EXPAND_CYCLES;
                if !s.good(yd) {
                    fault = Some((last_write + 1).max(ready));
                    return;
                }
                ready
            }
            (Some((range, _lo, hi)), None) => arrival(range, hi) + 1,
            (None, _) => 0,
        };
        last_write = (last_write + 1).max(ready);
        chunks += 1;
    });
    (last_write, chunks, fault)
}

/// STORE timing: chunk `q` is read in cycle `start + 1 + q`; a burst may be
/// requested from the cycle after the last chunk holding any of its bytes has
/// been read. Returns (ready cycle per burst, chunks read).
pub fn store_ready(b: &DmaBlock, dim: u64, w: u64, start: u64, plan: &BurstPlan) -> (Vec<u64>, u64) {
    let mut ready = vec![start + 1; plan.bursts.len()];
    let mut q = 0u64;
    for_each_chunk(b, dim, |c| {
        if let Some((range, lo, hi)) = chunk_dram(b, None, &c) {
            let first = plan.burst_of(range, lo / w);
            let last = plan.burst_of(range, (hi - 1) / w);
            for r in &mut ready[first..=last] {
                *r = (*r).max(start + 2 + q);
            }
        }
        q += 1;
    });
    (ready, q)
}

/// Performs a LOAD's data movement: DRAM (`mem`) into the scratchpad
/// (`dim` bytes a row) or the accumulator (`dim` int32 a row). A chunk is
/// its padding and at most one contiguous DRAM range.
#[allow(clippy::too_many_arguments)]
pub fn load_copy(
    b: &DmaBlock,
    gather: Option<&Gather>,
    dim: u64,
    pad_value: i8,
    mem: &Memory,
    spad: &mut [u8],
    acc: &mut [i32],
) {
    let es = b.elem_bytes();
    let mut bytes = Vec::new();
    for_each_chunk(b, dim, |c| {
        let local = (c.row * dim + c.lcol) as usize;
        let len = c.len as usize;
        let data = chunk_dram(b, gather, &c).map(|(_, lo, hi)| {
            let skip = (c.x0.max(b.pad_left) - c.x0) as usize;
            (lo, skip, ((hi - lo) / es) as usize)
        });
        if b.to_acc {
            let dst = &mut acc[local..local + len];
            dst.fill(pad_value as i32);
            if let Some((lo, skip, n)) = data {
                bytes.resize(n * 4, 0);
                mem.read(lo, &mut bytes);
                for (d, w) in dst[skip..skip + n].iter_mut().zip(bytes.chunks_exact(4)) {
                    *d = i32::from_le_bytes(w.try_into().expect("4 bytes"));
                }
            }
        } else {
            let dst = &mut spad[local..local + len];
            dst.fill(pad_value as u8);
            if let Some((lo, skip, n)) = data {
                mem.read(lo, &mut dst[skip..skip + n]);
            }
        }
    });
}

/// Performs a compressed LOAD's data movement (into the scratchpad): each
/// DRAM row expanded from its record, then placed as `load_copy` places it.
pub fn stream_copy(b: &DmaBlock, stream: &Stream, dim: u64, pad_value: i8, spad: &mut [u8]) {
    let mut row = vec![0u8; b.cols as usize];
    let mut expanded = None;
    let mut faulted = false;
    for_each_chunk(b, dim, |c| {
        // A malformed stream writes the chunks before its bad record's first
        // data chunk, where it faults (ISA.md §4).
        let data = chunk_dram(b, None, &c);
        faulted |= data.is_some() && !stream.good(c.y - b.pad_top);
        if faulted {
            return;
        }
        let local = (c.row * dim + c.lcol) as usize;
        let dst = &mut spad[local..local + c.len as usize];
        dst.fill(pad_value as u8);
        if let Some((_, lo, hi)) = data {
            let yd = c.y - b.pad_top;
            if expanded != Some(yd) {
                stream.expand(b, yd, &mut row);
                expanded = Some(yd);
            }
            let skip = (c.x0.max(b.pad_left) - c.x0) as usize;
            let x0 = (lo - (b.dram + yd * b.stride)) as usize;
            let n = (hi - lo) as usize;
            dst[skip..skip + n].copy_from_slice(&row[x0..x0 + n]);
        }
    });
}

/// Performs a STORE's data movement from the scratchpad or accumulator to DRAM.
pub fn store_copy(b: &DmaBlock, dim: u64, spad: &[u8], acc: &[i32], mem: &mut Memory) {
    let es = b.elem_bytes();
    let mut bytes = Vec::new();
    for_each_chunk(b, dim, |c| {
        let base = b.dram + c.y * b.stride + c.x0 * es;
        let local = (c.row * dim + c.lcol) as usize;
        let len = c.len as usize;
        if b.to_acc {
            bytes.clear();
            bytes.extend(acc[local..local + len].iter().flat_map(|v| v.to_le_bytes()));
            mem.write(base, &bytes);
        } else {
            mem.write(base, &spad[local..local + len]);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(rows: u64, cols: u64, stride: u64) -> DmaBlock {
        DmaBlock {
            to_acc: false,
            dram: 0,
            stride,
            rows,
            cols,
            pad_top: 0,
            pad_bottom: 0,
            pad_left: 0,
            pad_right: 0,
            addr: 0,
            col: 0,
            stream: false,
        }
    }

    #[test]
    fn wide_rows_are_column_blocked() {
        let b = block(2, 40, 40);
        let mut seen = Vec::new();
        for_each_chunk(&b, 16, |c| seen.push((c.y, c.row, c.lcol, c.len)));
        assert_eq!(seen, vec![(0, 0, 0, 16), (0, 2, 0, 16), (0, 4, 0, 8), (1, 1, 0, 16), (1, 3, 0, 16), (1, 5, 0, 8)]);
    }

    #[test]
    fn padding_and_offsets_place_elements() {
        let mut b = block(2, 2, 8);
        b.pad_top = 1;
        b.pad_left = 1;
        b.col = 1;
        b.dram = 100;
        let mut mem = Memory::new(200);
        mem.write(100, &[1, 2]);
        mem.write(108, &[3, 4]);
        let mut spad = vec![9u8; 16];
        load_copy(&b, None, 4, -1, &mem, &mut spad, &mut []);
        let ff = 0xff;
        assert_eq!(spad, vec![9, ff, ff, ff, 9, ff, 1, 2, 9, ff, 3, 4, 9, 9, 9, 9]);
    }

    #[test]
    fn load_timing_follows_beats() {
        // 2 rows of 16 bytes, contiguous, 16 B beats: one burst of 2 beats.
        let b = block(2, 16, 16);
        let plan = BurstPlan::of(&b, 16);
        assert_eq!(plan.bursts.len(), 1);
        // data in cycles 110, 111 -> writes at 111, 112 -> finish 113.
        assert_eq!(load_finish(&b, None, None, 16, 16, 5, &plan, &[110]), (113, 2));
    }

    #[test]
    fn gather_reads_the_ids_then_one_range_per_row() {
        // Table rows of 16 bytes at 1000; ids (int64) at 64: rows 3, 0, 3.
        let mut b = block(3, 16, 16);
        b.dram = 1000;
        let g = Gather { id_bytes: (64, 88), ids: vec![3, 0, 3] };
        let plan = BurstPlan::of_gather(&b, &g, 16);
        // The ids are one burst of 2 beats; each unaligned row one of 2 beats.
        assert_eq!(plan.range_first, vec![0, 1, 2, 3]);
        assert_eq!(plan.first_range_bursts(), 1);
        assert_eq!(plan.total_beats(), 8);
        let mut mem = Memory::new(2000);
        for r in 0..4u8 {
            mem.write(1000 + 16 * r as u64, &[r + 1; 16]);
        }
        let mut spad = vec![0u8; 3 * 16];
        load_copy(&b, Some(&g), 16, 0, &mem, &mut spad, &mut []);
        assert_eq!(spad, [[4u8; 16], [1; 16], [4; 16]].concat());
    }
}
