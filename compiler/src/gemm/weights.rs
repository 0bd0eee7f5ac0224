//! Packed weights: the one place that knows how a GEMM's B `[K, N]` is
//! stored in device memory and fed to the array. Schedules ask a
//! `PackedWeights` for what they need (stripe sizes, the LOAD of a stripe,
//! a tile's `ldw` fields, which tiles are all zero, MAC counts) and never
//! look at the bytes, so a new `WeightFormat` (2:4-sparse, int4) changes
//! this file and not the schedules.

use isa::instr::{self as ins, Deps, Instr};
use isa::numerics;

/// How weights are encoded. The sparse formats of the ISA's `wfmt` field
/// are reserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightFormat {
    /// One int8 per weight, zeros included, in stripes of `tile.n` columns
    /// that sit in the array (the weight-stationary schedule).
    DenseI8,
    /// One int8 per weight, zeros included, laid out to *stream* through
    /// the array as its input rows (the streaming schedule,
    /// `schedule::streaming`): per k-tile `i`, per output column `c`, one
    /// row of `tile.n` bytes holding `B[i tile.k + r][c]` at byte `r`
    /// (`r < tile.k`, zero padded). A k-tile of consecutive columns is
    /// contiguous in DRAM, so any run of columns is one long burst.
    StreamI8,
    /// A convolution's band stream (`lower::conv_band`): int8 tiles per
    /// (output tile, tap, input block), depthwise ones diagonal.
    BandI8,
    /// The same with a kernel row's taps packed into each tile's rows.
    BandRowsI8,
    /// 2:4-sparse int8 (`wfmt = i8s24`), in stripes like `DenseI8`: a tile
    /// of `tile.k` kept rows covers `2 tile.k` reductions (ISA.md §3); per
    /// stripe, per k-tile, its `tile.k` rows of kept values then its
    /// `ceil(tile.k / 4)` rows of 2-bit positions.
    /// int4, two per byte (`wfmt = i4`, ISA.md §3 `ldw`), in the stripes of
    /// `DenseI8` at half the rows: stripe `j` is `ceil(K / 2)` rows of
    /// `tile.n` bytes, byte `c` of row `r` holding `B[2r][c]` in its low and
    /// `B[2r + 1][c]` in its high nibble. An even `tile.k` keeps every
    /// k-tile on a row boundary (tile `i` starts at row `i tile.k / 2`).
    DenseI4,
    /// `BandI8` and `BandRowsI8` with int4 weights two per byte: a tile's
    /// rows `2r`, `2r + 1` in the low and high nibbles of row `r`.
    BandI4,
    BandRowsI4,
    Sparse24I8,
    /// `StreamI8` as a compressed stream (`load` `zfmt = mask`, ISA.md §3):
    /// each streamed row is a record of its bitmask (`tile.n / 8` bytes)
    /// then its non-zero bytes, records in `StreamI8`'s order, so a chunk
    /// of columns is still one contiguous range; the LOAD unit expands the
    /// rows into the scratchpad. DRAM bytes: `1/8 + density` of
    /// `StreamI8`'s.
    StreamSparseI8,
}

/// The largest fraction of `StreamI8`'s bytes at which `--weights auto`
/// streams compressed (`WeightFormat::StreamSparseI8`). Measured on the
/// 16x16 default (`cargo run --release -p driver --example gemv_floor`):
/// the streaming GEMV is bound by the array's one input row per cycle as
/// much as by the bus, so fewer bytes never cost cycles (0.99x–1.00x the
/// dense cycles from 100 % density down) and save DRAM energy and bytes
/// in proportion; on a configuration with less DRAM bandwidth than the
/// array consumes the cycles follow the bytes. The margin pays for the
/// expansion cycle per chunk and keeps a layer that barely compresses in
/// the plainer format.
pub const SPARSE_STREAM_MAX_BYTES: f64 = 0.9;

/// Which weight formats the compiler may choose (`systole compile
/// --weights`): `Auto` takes 2:4 for layers whose weights are exactly 2:4
/// when the configuration has `array.sparsity_2_4`, and streams sparse
/// weights of the streaming schedule compressed when that takes at most
/// [`SPARSE_STREAM_MAX_BYTES`] of their bytes; `Dense` does neither.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WeightChoice {
    Dense,
    #[default]
    Auto,
}

impl WeightChoice {
    pub fn name(self) -> &'static str {
        match self {
            WeightChoice::Dense => "dense",
            WeightChoice::Auto => "auto",
        }
    }

    /// Parses `dense` or `auto`.
    pub fn parse(s: &str) -> Option<WeightChoice> {
        match s {
            "dense" => Some(WeightChoice::Dense),
            "auto" => Some(WeightChoice::Auto),
            _ => None,
        }
    }

    /// Whether streamed weights may be a compressed stream.
    pub fn sparse_stream(self) -> bool {
        self == WeightChoice::Auto
    }

    /// Whether 2:4 tiles may be used on `cfg`.
    pub fn sparse24(self, cfg: &isa::HwConfig) -> bool {
        self == WeightChoice::Auto && cfg.array.sparsity_2_4
    }
}

/// Whether B `[k, n]` is exactly 2:4 along the reduction: in every column,
/// every group of 4 consecutive reduction indices (from index 0; a short
/// last group counts as padded with zeros) holds at most 2 non-zeros.
pub fn is_2_4(b: &[i8], k: usize, n: usize) -> bool {
    let mut count = vec![0u8; n];
    for (r, row) in b.chunks_exact(n.max(1)).take(k).enumerate() {
        if r % 4 == 0 {
            count.iter_mut().for_each(|c| *c = 0);
        }
        for (c, &v) in count.iter_mut().zip(row) {
            *c += (v != 0) as u8;
            if *c > 2 {
                return false;
            }
        }
    }
    true
}

/// One column's group of 4 reductions compressed to its 2 kept values and
/// their positions. Non-zeros first; the rest are zeros at positions no
/// kept value uses, so the two positions always differ. `None` when the
/// group has more than 2 non-zeros.
pub fn compress_group(group: [i8; 4]) -> Option<[(i8, u8); 2]> {
    let mut kept = [(0i8, 0u8); 2];
    let mut n = 0;
    for (p, &v) in group.iter().enumerate() {
        if v != 0 {
            if n == 2 {
                return None;
            }
            kept[n] = (v, p as u8);
            n += 1;
        }
    }
    // Zero values at the lowest free positions.
    let used = kept;
    let mut free = (0..4u8).filter(|p| used[..n].iter().all(|&(_, q)| q != *p));
    for slot in kept.iter_mut().skip(n) {
        *slot = (0, free.next().expect("4 positions, at most 2 used"));
    }
    Some(kept)
}

/// A 2:4 tile's position bytes: kept row `r`'s position in bits
/// `2 (r % 4)..` of position row `r / 4`, one byte per column.
pub fn position_byte(rows: &[u8]) -> u8 {
    rows.iter().enumerate().fold(0u8, |b, (r, &p)| b | (p & 3) << (2 * r))
}

impl WeightFormat {
    /// The ISA's `wfmt` field for tiles of this format.
    pub fn wfmt(self) -> u8 {
        match self {
            WeightFormat::DenseI8
            | WeightFormat::StreamI8
            | WeightFormat::StreamSparseI8
            | WeightFormat::BandI8
            | WeightFormat::BandRowsI8 => ins::WFMT_I8,
            WeightFormat::Sparse24I8 => ins::WFMT_I8_S24,
            WeightFormat::DenseI4 | WeightFormat::BandI4 | WeightFormat::BandRowsI4 => ins::WFMT_I4,
        }
    }

    /// The format's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::DenseI8 => "i8",
            WeightFormat::StreamI8 => "i8-stream",
            WeightFormat::StreamSparseI8 => "i8-stream-sparse",
            WeightFormat::BandI8 => "i8-band",
            WeightFormat::BandRowsI8 => "i8-band-rows",
            WeightFormat::Sparse24I8 => "i8s24",
            WeightFormat::DenseI4 => "i4",
            WeightFormat::BandI4 => "i4-band",
            WeightFormat::BandRowsI4 => "i4-band-rows",
        }
    }

    /// Whether tiles of this format stream through the array as its input
    /// rows (the streaming schedule).
    pub fn is_streamed(self) -> bool {
        matches!(self, WeightFormat::StreamI8 | WeightFormat::StreamSparseI8)
    }

    /// Weights per stored byte along the reduction: scratchpad rows a
    /// k-tile of `k` rows takes are `k.div_ceil(per_row())`.
    fn per_row(self) -> usize {
        if self.wfmt() == ins::WFMT_I4 {
            2
        } else {
            1
        }
    }
}

/// The weight tile of the array: `k` reduction rows by `n` output columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileShape {
    pub k: usize,
    pub n: usize,
}

/// One weight tile of a stripe in the scratchpad: the fields of an `ldw`
/// (or of a `matmul`'s preload).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeightTile {
    pub addr: u16,
    pub k: u16,
    pub n: u16,
    pub wfmt: u8,
    pub meta: u16,
}

impl WeightTile {
    pub fn ldw(self, deps: Deps) -> Instr {
        Instr::from(ins::Ldw {
            deps,
            addr: self.addr,
            k: self.k,
            n: self.n,
            wfmt: self.wfmt,
            meta: self.meta,
            trans: 0,
        })
    }

    /// Makes `mm` preload this tile while it streams.
    pub fn preload_into(self, mm: &mut ins::Matmul) {
        (mm.preload, mm.w, mm.k, mm.n, mm.wfmt, mm.meta) = (1, self.addr, self.k, self.n, self.wfmt, self.meta);
    }
}

/// B `[K, N]` packed for one tile shape: per n-tile a *stripe* that one
/// LOAD brings into the scratchpad, holding that column block's k-tiles.
#[derive(Clone, Debug, PartialEq)]
pub struct PackedWeights {
    format: WeightFormat,
    k: usize,
    n: usize,
    tile: TileShape,
    bytes: Vec<u8>,
    /// Per tile `k_tile * n_tiles + n_tile`: holds a non-zero weight.
    nonzero: Vec<bool>,
    /// `Sparse24I8`: reductions per k-tile and A's column-block width.
    sparse: Option<Sparse24Geometry>,
    /// `StreamSparseI8`: where record `i n + c` (k-tile `i`, column `c`)
    /// starts in `bytes`, and one past the last record; empty otherwise.
    records: Vec<u64>,
}

/// How a 2:4 k-tile meets A: it covers `span` reductions (twice its kept
/// rows), which A holds in `span / a_block` column blocks of `a_block`
/// values (one or two scratchpad rows per input, ISA.md §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sparse24Geometry {
    span: usize,
    a_block: usize,
}

impl PackedWeights {
    /// Dense int8: stripe `j` is K rows of `tile.n` bytes (zero padded),
    /// k-tile `i` its rows `[i tile.k, (i + 1) tile.k)`.
    pub fn dense_i8(b: &[i8], k: usize, n: usize, tile: TileShape) -> PackedWeights {
        assert_eq!(b.len(), k * n, "B is K x N");
        let nt = n.div_ceil(tile.n);
        let mut bytes = vec![0u8; nt * k * tile.n];
        // Row by row, one slice copy per (stripe, row): per-element indexing
        // made packing a tenth of a large model's compile time.
        for (kk, row) in b.chunks_exact(n.max(1)).take(k).enumerate() {
            for (j, piece) in row.chunks(tile.n).enumerate() {
                let at = (j * k + kk) * tile.n;
                bytes[at..at + piece.len()].iter_mut().zip(piece).for_each(|(o, &v)| *o = v as u8);
            }
        }
        let nonzero = nonzero_tiles(b, k, n, tile);
        PackedWeights { format: WeightFormat::DenseI8, k, n, tile, bytes, nonzero, sparse: None, records: Vec::new() }
    }

    /// Dense int4 (`WeightFormat::DenseI4`): B's values must lie in -8..=7
    /// and `tile.k` must be even (see the format).
    pub fn dense_i4(b: &[i8], k: usize, n: usize, tile: TileShape) -> PackedWeights {
        assert_eq!(b.len(), k * n, "B is K x N");
        assert!(tile.k.is_multiple_of(2), "int4 k-tiles start on whole rows");
        let (nt, rows) = (n.div_ceil(tile.n), k.div_ceil(2));
        let mut bytes = vec![0u8; nt * rows * tile.n];
        for (kk, row) in b.chunks_exact(n.max(1)).take(k).enumerate() {
            let high = kk % 2 == 1;
            for (j, piece) in row.chunks(tile.n).enumerate() {
                let at = (j * rows + kk / 2) * tile.n;
                for (o, &v) in bytes[at..at + piece.len()].iter_mut().zip(piece) {
                    *o = if high { numerics::int4_pack(numerics::int4_low(*o), v) } else { numerics::int4_pack(v, 0) };
                }
            }
        }
        let nonzero = nonzero_tiles(b, k, n, tile);
        PackedWeights { format: WeightFormat::DenseI4, k, n, tile, bytes, nonzero, sparse: None, records: Vec::new() }
    }

    /// Streaming int8 (`WeightFormat::StreamI8`): `tile.k` reduction values
    /// per row of `tile.n` bytes (a scratchpad row), k-tile major.
    pub fn stream_i8(b: &[i8], k: usize, n: usize, tile: TileShape) -> PackedWeights {
        assert_eq!(b.len(), k * n, "B is K x N");
        assert!(tile.k <= tile.n, "a streamed row holds a k-tile");
        let mut bytes = vec![0u8; k.div_ceil(tile.k) * n * tile.n];
        for (kk, row) in b.chunks_exact(n.max(1)).take(k).enumerate() {
            let (i, r) = (kk / tile.k, kk % tile.k);
            for (c, &v) in row.iter().enumerate() {
                bytes[(i * n + c) * tile.n + r] = v as u8;
            }
        }
        // Streaming never skips: every column of a k-tile is one row.
        let nonzero = vec![true; k.div_ceil(tile.k) * n.div_ceil(tile.n)];
        PackedWeights { format: WeightFormat::StreamI8, k, n, tile, bytes, nonzero, sparse: None, records: Vec::new() }
    }

    /// The compressed stream (`WeightFormat::StreamSparseI8`): `stream_i8`'s
    /// rows, each as its bitmask and its non-zero bytes.
    pub fn stream_sparse_i8(b: &[i8], k: usize, n: usize, tile: TileShape) -> PackedWeights {
        let dense = PackedWeights::stream_i8(b, k, n, tile);
        let mask = isa::legal::stream_mask_bytes(tile.n as u64) as usize;
        let nz = dense.bytes.iter().filter(|&&v| v != 0).count();
        let mut bytes = Vec::with_capacity(dense.bytes.len() / tile.n * mask + nz);
        let mut records = Vec::with_capacity(dense.bytes.len() / tile.n + 1);
        for row in dense.bytes.chunks_exact(tile.n) {
            records.push(bytes.len() as u64);
            let at = bytes.len();
            bytes.resize(at + mask, 0);
            for (x, &v) in row.iter().enumerate() {
                if v != 0 {
                    bytes[at + x / 8] |= 1 << (x % 8);
                }
            }
            bytes.extend(row.iter().filter(|&&v| v != 0));
        }
        records.push(bytes.len() as u64);
        PackedWeights { format: WeightFormat::StreamSparseI8, bytes, records, ..dense }
    }

    /// Whether B `[k, n]`'s compressed stream takes at most
    /// [`SPARSE_STREAM_MAX_BYTES`] of its plain stream's bytes on `tile`
    /// (counted without packing: a mask per streamed row, the non-zeros).
    pub fn sparse_stream_pays(b: &[i8], k: usize, n: usize, tile: TileShape) -> bool {
        let rows = k.div_ceil(tile.k) * n;
        let mask = isa::legal::stream_mask_bytes(tile.n as u64) as usize;
        let sparse = rows * mask + b.iter().filter(|&&v| v != 0).count();
        sparse as f64 <= SPARSE_STREAM_MAX_BYTES * (rows * tile.n) as f64
    }

    /// 2:4-sparse int8 (`WeightFormat::Sparse24I8`) for tiles of `tile.k`
    /// kept rows on an array `cols` wide, or `None` when B is not exactly
    /// 2:4 ([`is_2_4`]) or the tile's `2 tile.k` inputs neither fit one
    /// scratchpad row nor fill two. Stripe `j`: per k-tile `i` (reductions
    /// `[2 i tile.k, 2 (i + 1) tile.k)`), `tile.k` rows of kept values,
    /// then `ceil(tile.k / 4)` position rows, each `tile.n` bytes.
    pub fn sparse24(b: &[i8], k: usize, n: usize, tile: TileShape, cols: usize) -> Option<PackedWeights> {
        assert_eq!(b.len(), k * n, "B is K x N");
        let span = 2 * tile.k;
        let a_block = if span <= cols {
            span
        } else if tile.k == cols {
            cols
        } else {
            return None;
        };
        if !is_2_4(b, k, n) || !tile.k.is_multiple_of(2) {
            return None;
        }
        let (kt, nt) = (k.div_ceil(span), n.div_ceil(tile.n));
        let pitch = tile.k + isa::legal::sparse24_meta_rows(tile.k as u64) as usize;
        let mut bytes = vec![0u8; nt * kt * pitch * tile.n];
        let mut positions = vec![0u8; tile.k];
        for j in 0..nt {
            for i in 0..kt {
                let base = (j * kt + i) * pitch;
                for c in 0..tile.n.min(n - j * tile.n) {
                    let col = j * tile.n + c;
                    for g in 0..tile.k / 2 {
                        let at = |x: usize| {
                            let r = i * span + 4 * g + x;
                            if r < k {
                                b[r * n + col]
                            } else {
                                0
                            }
                        };
                        let kept = compress_group([at(0), at(1), at(2), at(3)]).expect("checked 2:4");
                        for (h, (v, p)) in kept.into_iter().enumerate() {
                            bytes[(base + 2 * g + h) * tile.n + c] = v as u8;
                            positions[2 * g + h] = p;
                        }
                    }
                    for (q, rows) in positions.chunks(4).enumerate() {
                        bytes[(base + tile.k + q) * tile.n + c] = position_byte(rows);
                    }
                }
            }
        }
        let nonzero = nonzero_tiles(b, k, n, TileShape { k: span, n: tile.n });
        let sparse = Some(Sparse24Geometry { span, a_block });
        Some(PackedWeights {
            format: WeightFormat::Sparse24I8,
            k,
            n,
            tile,
            bytes,
            nonzero,
            sparse,
            records: Vec::new(),
        })
    }

    /// Reductions one k-tile covers: `tile.k`, or twice that for 2:4.
    fn k_span(&self) -> usize {
        self.sparse.map_or(self.tile.k, |s| s.span)
    }

    /// Scratchpad rows of one k-tile in a stripe (2:4: kept and position rows;
    /// int4: half the rows, two weights a byte).
    pub fn tile_pitch(&self) -> usize {
        match self.sparse {
            Some(_) => self.tile.k + isa::legal::sparse24_meta_rows(self.tile.k as u64) as usize,
            None => self.tile.k / self.format.per_row(),
        }
    }

    /// The width of A's column blocks in the scratchpad: a weight-stationary
    /// schedule stores a block of A column-blocked by it.
    pub fn a_block(&self) -> usize {
        self.sparse.map_or(self.tile.k, |s| s.a_block)
    }

    /// A's column blocks: scratchpad rows per row of A.
    pub fn a_blocks(&self) -> usize {
        self.k.div_ceil(self.a_block())
    }

    /// Where k-tile `i`'s inputs are in an A block of `rows` rows stored
    /// column-blocked by [`Self::a_block`]: the first row's offset from the
    /// block and the `matmul`'s `a_bstride` (2:4 tiles reading two blocks).
    pub fn tile_input(&self, i: usize, rows: usize) -> (usize, u16) {
        let per_tile = self.k_span() / self.a_block();
        let first = i * per_tile;
        let second = per_tile == 2 && first + 1 < self.a_blocks();
        (first * rows, if second { rows as u16 } else { 0 })
    }

    /// Streaming format: the LOAD bringing columns `[c0, c0 + cols)` of
    /// k-tile `i` of weights placed at `base` into scratchpad rows from
    /// `row` (one row per column, one contiguous DRAM range).
    /// A compressed stream's chunk is the records of those rows: `stride`
    /// is their bytes (`zfmt = mask`).
    pub fn stream_chunk_load(&self, i: usize, (c0, cols): (usize, usize), base: u64, row: u16) -> ins::Load {
        debug_assert!(self.format.is_streamed());
        if self.format == WeightFormat::StreamSparseI8 {
            let (lo, hi) = (self.records[i * self.n + c0], self.records[i * self.n + c0 + cols]);
            return ins::Load {
                buf: ins::BUF_SPAD,
                dram: (base + lo) as u32,
                stride: (hi - lo) as u32,
                rows: cols as u16,
                cols: self.tile.n as u16,
                addr: row,
                zfmt: ins::ZFMT_MASK,
                ..Default::default()
            };
        }
        ins::Load {
            buf: ins::BUF_SPAD,
            dram: (base + ((i * self.n + c0) * self.tile.n) as u64) as u32,
            stride: self.tile.n as u32,
            rows: cols as u16,
            cols: self.tile.n as u16,
            addr: row,
            ..Default::default()
        }
    }

    /// Reduction rows of k-tile `i`.
    pub fn k_tile_rows(&self, i: usize) -> usize {
        self.tile_rows(i)
    }

    pub fn format(&self) -> WeightFormat {
        self.format
    }
    pub fn k(&self) -> usize {
        self.k
    }
    pub fn n(&self) -> usize {
        self.n
    }
    pub fn tile_shape(&self) -> TileShape {
        self.tile
    }
    pub fn k_tiles(&self) -> usize {
        self.k.div_ceil(self.k_span())
    }
    pub fn n_tiles(&self) -> usize {
        self.n.div_ceil(self.tile.n)
    }
    /// Output columns of n-tile `j`.
    pub fn tile_cols(&self, j: usize) -> usize {
        self.tile.n.min(self.n - j * self.tile.n)
    }
    /// Rows of k-tile `i` in the array (2:4: kept rows, two per group).
    fn tile_rows(&self, i: usize) -> usize {
        let left = self.k - i * self.k_span();
        match self.sparse {
            Some(s) => 2 * left.min(s.span).div_ceil(4),
            None => self.tile.k.min(left),
        }
    }

    /// The constant bytes to place in device memory.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Scratchpad rows a stripe occupies.
    pub fn stripe_rows(&self) -> usize {
        self.k_tiles() * self.tile_pitch()
    }

    /// The LOAD bringing k-tiles `tiles` of stripe `j` of weights placed at
    /// `base` into scratchpad rows from `row` (the whole stripe, or a piece
    /// of it when K is split across accumulator passes).
    pub fn stripe_load(&self, j: usize, tiles: std::ops::Range<usize>, base: u64, row: u16) -> ins::Load {
        let row_bytes = self.tile.n;
        // Dense stripes hold K rows (int4: packed two to a row); 2:4 ones
        // whole k-tiles.
        let stored = |r: usize| r.div_ceil(self.format.per_row());
        let (stripe, r0, r1) = match self.sparse {
            Some(_) => (self.stripe_rows(), tiles.start * self.tile_pitch(), tiles.end * self.tile_pitch()),
            None => (stored(self.k), stored(tiles.start * self.tile.k), stored((tiles.end * self.tile.k).min(self.k))),
        };
        ins::Load {
            buf: ins::BUF_SPAD,
            dram: (base + ((j * stripe + r0) * row_bytes) as u64) as u32,
            stride: row_bytes as u32,
            rows: (r1 - r0) as u16,
            cols: row_bytes as u16,
            addr: row,
            ..Default::default()
        }
    }

    /// Tile `(i, j)` of the piece of stripe `j` that starts at k-tile `i0`
    /// and was loaded at scratchpad row `row`.
    pub fn tile(&self, i: usize, j: usize, (i0, row): (usize, u16)) -> WeightTile {
        let addr = row + ((i - i0) * self.tile_pitch()) as u16;
        WeightTile {
            addr,
            k: self.tile_rows(i) as u16,
            n: self.tile_cols(j) as u16,
            wfmt: self.format.wfmt(),
            meta: if self.sparse.is_some() { addr + self.tile.k as u16 } else { 0 },
        }
    }

    /// The k-tiles of n-tile `j` the array streams: all-zero tiles add
    /// nothing and are skipped, but one is kept so the output is written.
    pub fn live_k_tiles(&self, j: usize) -> Vec<usize> {
        let nt = self.n_tiles();
        let live: Vec<usize> = (0..self.k_tiles()).filter(|&i| self.nonzero[i * nt + j]).collect();
        if live.is_empty() {
            vec![0]
        } else {
            live
        }
    }

    /// The MACs the array performs streaming `m` rows through every live tile.
    pub fn macs(&self, m: usize) -> u64 {
        if self.format.is_streamed() {
            // Every column of every k-tile streams once past `m` stationary columns.
            return (m * self.k * self.n) as u64;
        }
        let per_row: usize = (0..self.n_tiles())
            .map(|j| self.live_k_tiles(j).iter().map(|&i| self.tile_rows(i) * self.tile_cols(j)).sum::<usize>())
            .sum();
        (m * per_row) as u64
    }
}

/// The bytes [`PackedWeights::dense_i8`] packs B `[k, n]` into on tiles
/// `tile_n` columns wide (every tile stored, all-zero ones included), or
/// `None` if that overflows.
pub fn dense_i8_packed_len(k: usize, n: usize, tile_n: usize) -> Option<usize> {
    if tile_n == 0 {
        return None;
    }
    n.div_ceil(tile_n).checked_mul(tile_n)?.checked_mul(k)
}

/// B `[k, n]` back from the bytes [`PackedWeights::dense_i8`] packed it
/// into on tiles `tile_n` columns wide: what a program's graph reads
/// instead of a second copy of the weights. `None` if `packed` is not
/// [`dense_i8_packed_len`] bytes.
pub fn unpack_dense_i8(packed: &[u8], k: usize, n: usize, tile_n: usize) -> Option<Vec<i8>> {
    if dense_i8_packed_len(k, n, tile_n) != Some(packed.len()) {
        return None;
    }
    let mut b = vec![0i8; k * n];
    for (kk, row) in b.chunks_exact_mut(n.max(1)).take(k).enumerate() {
        for (j, piece) in row.chunks_mut(tile_n).enumerate() {
            let at = (j * k + kk) * tile_n;
            let len = piece.len();
            piece.iter_mut().zip(&packed[at..at + len]).for_each(|(o, &v)| *o = v as i8);
        }
    }
    Some(b)
}

/// The bytes [`PackedWeights::stream_i8`] packs B `[k, n]` into, or `None`
/// if that overflows or the tile cannot hold a k-tile per row.
pub fn stream_i8_packed_len(k: usize, n: usize, tile: TileShape) -> Option<usize> {
    if tile.k == 0 || tile.k > tile.n {
        return None;
    }
    k.div_ceil(tile.k).checked_mul(n)?.checked_mul(tile.n)
}

/// B `[k, n]` back from the bytes [`PackedWeights::stream_i8`] packed it
/// into; `None` if `packed` is not [`stream_i8_packed_len`] bytes.
pub fn unpack_stream_i8(packed: &[u8], k: usize, n: usize, tile: TileShape) -> Option<Vec<i8>> {
    if stream_i8_packed_len(k, n, tile) != Some(packed.len()) {
        return None;
    }
    let mut b = vec![0i8; k * n];
    for (kk, row) in b.chunks_exact_mut(n.max(1)).take(k).enumerate() {
        let (i, r) = (kk / tile.k, kk % tile.k);
        for (c, v) in row.iter_mut().enumerate() {
            *v = packed[(i * n + c) * tile.n + r] as i8;
        }
    }
    Some(b)
}

/// The bytes [`PackedWeights::dense_i4`] packs B `[k, n]` into on tiles
/// `tile_n` columns wide, or `None` if that overflows.
pub fn dense_i4_packed_len(k: usize, n: usize, tile_n: usize) -> Option<usize> {
    dense_i8_packed_len(k.div_ceil(2), n, tile_n)
}

/// B `[k, n]` back from the bytes [`PackedWeights::dense_i4`] packed it
/// into (sign-extended); `None` if `packed` is not [`dense_i4_packed_len`]
/// bytes.
pub fn unpack_dense_i4(packed: &[u8], k: usize, n: usize, tile_n: usize) -> Option<Vec<i8>> {
    if dense_i4_packed_len(k, n, tile_n) != Some(packed.len()) {
        return None;
    }
    let rows = k.div_ceil(2);
    let mut b = vec![0i8; k * n];
    for (kk, row) in b.chunks_exact_mut(n.max(1)).take(k).enumerate() {
        for (j, piece) in row.chunks_mut(tile_n).enumerate() {
            let at = (j * rows + kk / 2) * tile_n;
            for (o, &v) in piece.iter_mut().zip(&packed[at..]) {
                *o = if kk % 2 == 1 { numerics::int4_high(v) } else { numerics::int4_low(v) };
            }
        }
    }
    Some(b)
}

/// Which `tile.k x tile.n` tiles of B `[k, n]` hold a non-zero value,
/// indexed `k_tile * n_tiles + n_tile`.
pub fn nonzero_tiles(b: &[i8], k: usize, n: usize, tile: TileShape) -> Vec<bool> {
    let (kt, nt) = (k.div_ceil(tile.k), n.div_ceil(tile.n));
    let mut nz = vec![false; kt * nt];
    // A row's pieces at once (no division per element): this scan was a
    // fifth of a large model's compile time.
    for (r, row) in b.chunks_exact(n.max(1)).take(k).enumerate() {
        let tiles = &mut nz[(r / tile.k) * nt..(r / tile.k + 1) * nt];
        for (t, piece) in tiles.iter_mut().zip(row.chunks(tile.n)) {
            *t = *t || piece.iter().any(|&v| v != 0);
        }
    }
    nz
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 5x7 B on 2x3 tiles: stripes, tile fields, zero tiles, MACs.
    #[test]
    fn dense_i8_packing_and_tiles() {
        let (k, n, tile) = (5, 7, TileShape { k: 2, n: 3 });
        // Only rows 2..4 (k-tile 1) of columns 3..6 (n-tile 1) are non-zero.
        let b: Vec<i8> =
            (0..k * n).map(|x| if (2..4).contains(&(x / n)) && (3..6).contains(&(x % n)) { 1 } else { 0 }).collect();
        let w = PackedWeights::dense_i8(&b, k, n, tile);
        assert_eq!((w.k_tiles(), w.n_tiles(), w.stripe_rows()), (3, 3, 6));
        assert_eq!(w.bytes().len(), 3 * k * 3);
        // Stripe 1, row 2, columns 0..3 are B[2][3..6].
        assert_eq!(&w.bytes()[(k + 2) * 3..(k + 2) * 3 + 3], [1, 1, 1]);
        let l = w.stripe_load(2, 0..3, 1000, 40);
        assert_eq!((l.dram, l.stride, l.rows, l.cols, l.addr), (1000 + 2 * 5 * 3, 3, 5, 3, 40));
        // A piece: k-tiles 1..3 of stripe 2 are its rows 2..5.
        let l = w.stripe_load(2, 1..3, 1000, 40);
        assert_eq!((l.dram, l.rows), (1000 + (2 * 5 + 2) * 3, 3));
        // The last tiles are partial: 1 row (k = 5), 1 column (n = 7).
        assert_eq!(w.tile(2, 2, (0, 40)), WeightTile { addr: 44, k: 1, n: 1, wfmt: ins::WFMT_I8, meta: 0 });
        assert_eq!(w.tile(2, 2, (1, 40)).addr, 42);
        assert_eq!(w.live_k_tiles(1), [1]);
        assert_eq!(w.live_k_tiles(0), [0], "an all-zero column of tiles keeps one tile");
        // Per row: n-tile 0 streams tile (0, 0) = 2x3, n-tile 1 tile (1, 1) = 2x3, n-tile 2 tile (0, 2) = 2x1.
        assert_eq!(w.macs(4), 4 * (6 + 6 + 2));
    }

    /// Streaming packing: row `(i, c)` holds k-tile `i` of column `c`; a
    /// chunk is contiguous; unpacking inverts it.
    #[test]
    fn stream_i8_packing_and_unpacking() {
        let (k, n, tile) = (5, 3, TileShape { k: 2, n: 4 });
        let b: Vec<i8> = (0..k * n).map(|x| x as i8 - 7).collect();
        let w = PackedWeights::stream_i8(&b, k, n, tile);
        assert_eq!(w.bytes().len(), 3 * n * 4);
        // k-tile 1 (rows 2, 3), column 2: B[2][2], B[3][2], then padding.
        assert_eq!(&w.bytes()[(n + 2) * 4..(n + 3) * 4], [b[2 * n + 2] as u8, b[3 * n + 2] as u8, 0, 0]);
        let l = w.stream_chunk_load(2, (1, 2), 100, 7);
        assert_eq!((l.dram, l.stride, l.rows, l.cols, l.addr), (100 + (2 * n + 1) as u32 * 4, 4, 2, 4, 7));
        assert_eq!(w.macs(2), 2 * 15);
        assert_eq!(unpack_stream_i8(w.bytes(), k, n, tile).as_deref(), Some(&b[..]));
        assert_eq!(unpack_stream_i8(&w.bytes()[1..], k, n, tile), None);
        assert_eq!(stream_i8_packed_len(4, 4, TileShape { k: 5, n: 4 }), None);
    }

    /// The compressed stream: `stream_i8`'s rows as records (mask, then the
    /// non-zeros), a chunk's LOAD the records of its columns, and the
    /// threshold counting the zeros of a short k-tile's padding.
    #[test]
    fn stream_sparse_i8_records_and_chunks() {
        let (k, n, tile) = (5, 3, TileShape { k: 4, n: 8 });
        let b: Vec<i8> = (0..k * n).map(|x| if x % 3 == 0 { x as i8 - 6 } else { 0 }).collect();
        let dense = PackedWeights::stream_i8(&b, k, n, tile);
        let w = PackedWeights::stream_sparse_i8(&b, k, n, tile);
        assert_eq!((w.format(), w.k_tiles(), w.macs(1)), (WeightFormat::StreamSparseI8, 2, 15));
        // Expanding every record gives the plain stream back.
        let mut expanded = Vec::new();
        for r in 0..2 * n {
            let rec = &w.bytes()[w.records[r] as usize..w.records[r + 1] as usize];
            let mut stored = rec[1..].iter();
            expanded.extend((0..8).map(|x| if rec[0] >> x & 1 != 0 { *stored.next().unwrap() } else { 0 }));
            assert!(stored.next().is_none());
        }
        assert_eq!(expanded, dense.bytes());
        let l = w.stream_chunk_load(1, (1, 2), 100, 7);
        let (lo, hi) = (w.records[n + 1], w.records[n + 3]);
        assert_eq!((l.dram, l.stride, l.rows, l.cols, l.addr, l.zfmt), (100 + lo as u32, (hi - lo) as u32, 2, 8, 7, 1));
        assert!(isa::legal::stream_bytes_range(2, 8).0 <= l.stride as u64);
        // Dense values: 1/8 mask overhead does not pay; a third non-zero does.
        let full = vec![1i8; 64 * 16];
        assert!(!PackedWeights::sparse_stream_pays(&full, 64, 16, TileShape { k: 16, n: 16 }));
        assert!(PackedWeights::sparse_stream_pays(&b, k, n, tile));
    }

    /// 2:4 detection and compression: groups from reduction 0, a short last
    /// group padded with zeros; kept values with distinct positions; a
    /// tile's kept rows, position rows and where its inputs are in A.
    #[test]
    fn sparse24_detection_compression_and_tiles() {
        assert!(is_2_4(&[1, 0, 0, 2, 0, 0], 6, 1) && !is_2_4(&[1, 0, 3, 2, 0, 0], 6, 1));
        assert!(is_2_4(&[0, 0, 0, 0, 5, 6], 6, 1) && !is_2_4(&[0, 0, 0, 0, 5, 6, 7], 7, 1));
        assert_eq!(compress_group([0, 7, 0, -3]), Some([(7, 1), (-3, 3)]));
        assert_eq!(compress_group([0, 0, 9, 0]), Some([(9, 2), (0, 0)]));
        assert_eq!(compress_group([0, 0, 0, 0]), Some([(0, 0), (0, 1)]));
        assert_eq!(compress_group([1, 1, 1, 0]), None);
        assert_eq!(position_byte(&[1, 3, 0, 2]), 0b10_00_11_01);
        // K = 10 on tiles of 2 kept rows (4 reductions) on a 4-wide array:
        // 3 k-tiles, the last covering 2 reductions (one group, 2 kept rows).
        let (k, n, tile) = (10, 3, TileShape { k: 2, n: 4 });
        let b: Vec<i8> = (0..k * n).map(|i| if (i / n + i % n) % 4 < 2 { 1 + i as i8 } else { 0 }).collect();
        let w = PackedWeights::sparse24(&b, k, n, tile, 4).expect("2:4");
        assert_eq!((w.k_tiles(), w.tile_pitch(), w.a_block(), w.a_blocks()), (3, 3, 4, 3));
        assert_eq!(w.tile(2, 0, (0, 100)), WeightTile { addr: 106, k: 2, n: 3, wfmt: ins::WFMT_I8_S24, meta: 108 });
        assert_eq!(w.tile_input(1, 5), (5, 0), "one block per tile: no second input row");
        // Column 1 of k-tile 0: reductions 0..4 hold B[0][1], B[3][1]... as kept rows.
        let (v0, v1) = (w.bytes()[1] as i8, w.bytes()[4 + 1] as i8);
        let p = w.bytes()[2 * 4 + 1];
        let dense: Vec<i8> = (0..4).map(|r| b[r * n + 1]).collect();
        let mut rebuilt = [0i8; 4];
        rebuilt[(p & 3) as usize] += v0;
        rebuilt[(p >> 2 & 3) as usize] += v1;
        assert_eq!(rebuilt.to_vec(), dense);
        assert_eq!(w.macs(1), (2 + 2 + 2) * 3);
        // Not 2:4, or a tile whose inputs neither fit a row nor fill two: none.
        assert!(PackedWeights::sparse24(&[1, 1, 1, 0], 4, 1, tile, 4).is_none());
        assert!(PackedWeights::sparse24(&b, k, n, TileShape { k: 6, n: 8 }, 8).is_none());
        // Two blocks per tile (kept rows = array columns).
        let w = PackedWeights::sparse24(&b, k, n, TileShape { k: 4, n: 4 }, 4).expect("2:4");
        assert_eq!((w.k_tiles(), w.a_block(), w.tile_input(0, 5), w.tile_input(1, 5)), (2, 4, (0, 5), (10, 0)));
    }

    /// Unpacking inverts packing, partial and all-zero tiles included
    /// (every tile is stored, so zeros come back from the bytes).
    #[test]
    fn dense_i8_unpacks_to_the_original() {
        for (k, n, tile) in
            [(5, 7, TileShape { k: 2, n: 3 }), (9, 4, TileShape { k: 4, n: 4 }), (1, 1, TileShape { k: 8, n: 8 })]
        {
            let b: Vec<i8> = (0..k * n).map(|x| if x % 5 == 1 { 0 } else { (x as i32 * 37 - 128) as i8 }).collect();
            let w = PackedWeights::dense_i8(&b, k, n, tile);
            assert_eq!(dense_i8_packed_len(k, n, tile.n), Some(w.bytes().len()));
            assert_eq!(unpack_dense_i8(w.bytes(), k, n, tile.n).as_deref(), Some(&b[..]), "{k}x{n} on {tile:?}");
            assert_eq!(unpack_dense_i8(&w.bytes()[1..], k, n, tile.n), None, "short bytes");
        }
        // An all-zero tile (rows 0..2, columns 0..3 of a 4x6 B on 2x3 tiles).
        let b: Vec<i8> = (0..24).map(|x| if x / 6 < 2 && x % 6 < 3 { 0 } else { 1 + x as i8 }).collect();
        let w = PackedWeights::dense_i8(&b, 4, 6, TileShape { k: 2, n: 3 });
        assert_eq!(w.live_k_tiles(0), [1]);
        assert_eq!(unpack_dense_i8(w.bytes(), 4, 6, 3).unwrap(), b);
        assert_eq!(dense_i8_packed_len(4, 6, 0), None);
    }

    /// int4: half the rows per stripe, two reductions per byte, tiles at
    /// half the row offsets, `wfmt = i4`; unpacking inverts it.
    #[test]
    fn dense_i4_packing_and_unpacking() {
        let (k, n, tile) = (7, 5, TileShape { k: 4, n: 3 });
        let b: Vec<i8> = (0..k * n).map(|x| ((x * 5) % 16) as i8 - 8).collect();
        let w = PackedWeights::dense_i4(&b, k, n, tile);
        // 2 stripes of ceil(7 / 2) = 4 rows of 3 bytes.
        assert_eq!(w.bytes().len(), 2 * 4 * 3);
        assert_eq!(dense_i4_packed_len(k, n, tile.n), Some(w.bytes().len()));
        // Stripe 1, row 1: B[2][3..5] low, B[3][3..5] high.
        let at = (4 + 1) * 3;
        for c in 0..2 {
            let v = w.bytes()[at + c];
            assert_eq!((numerics::int4_low(v), numerics::int4_high(v)), (b[2 * n + 3 + c], b[3 * n + 3 + c]));
        }
        // The last row holds B[6] alone (high nibbles zero).
        assert_eq!(numerics::int4_high(w.bytes()[3 * 3]), 0);
        assert_eq!(w.stripe_rows(), 4);
        let l = w.stripe_load(1, 0..2, 1000, 40);
        assert_eq!((l.dram, l.rows, l.cols, l.addr), (1000 + 4 * 3, 4, 3, 40));
        let l = w.stripe_load(1, 1..2, 1000, 40);
        assert_eq!((l.dram, l.rows), (1000 + (4 + 2) * 3, 2));
        assert_eq!(w.tile(1, 1, (0, 40)), WeightTile { addr: 42, k: 3, n: 2, wfmt: ins::WFMT_I4, meta: 0 });
        assert_eq!(w.macs(2), 2 * (k * n) as u64);
        assert_eq!(unpack_dense_i4(w.bytes(), k, n, tile.n).as_deref(), Some(&b[..]));
        assert_eq!(unpack_dense_i4(&w.bytes()[1..], k, n, tile.n), None);
    }
}
