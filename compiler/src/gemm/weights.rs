//! Packed weights: the one place that knows how a GEMM's B `[K, N]` is
//! stored in device memory and fed to the array. Schedules ask a
//! `PackedWeights` for what they need (stripe sizes, the LOAD of a stripe,
//! a tile's `ldw` fields, which tiles are all zero, MAC counts) and never
//! look at the bytes, so a new `WeightFormat` (2:4-sparse, int4) changes
//! this file and not the schedules.

use isa::instr::{self as ins, Deps, Instr};

/// How weights are encoded. The sparse and int4 formats of the ISA's
/// `wfmt` field are reserved.
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
}

impl WeightFormat {
    /// The ISA's `wfmt` field for tiles of this format.
    pub fn wfmt(self) -> u8 {
        match self {
            WeightFormat::DenseI8 | WeightFormat::StreamI8 | WeightFormat::BandI8 | WeightFormat::BandRowsI8 => {
                ins::WFMT_I8
            }
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
        PackedWeights { format: WeightFormat::DenseI8, k, n, tile, bytes, nonzero }
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
        PackedWeights { format: WeightFormat::StreamI8, k, n, tile, bytes, nonzero }
    }

    /// Streaming format: the LOAD bringing columns `[c0, c0 + cols)` of
    /// k-tile `i` of weights placed at `base` into scratchpad rows from
    /// `row` (one row per column, one contiguous DRAM range).
    pub fn stream_chunk_load(&self, i: usize, (c0, cols): (usize, usize), base: u64, row: u16) -> ins::Load {
        debug_assert_eq!(self.format, WeightFormat::StreamI8);
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
        self.k.div_ceil(self.tile.k)
    }
    pub fn n_tiles(&self) -> usize {
        self.n.div_ceil(self.tile.n)
    }
    /// Output columns of n-tile `j`.
    pub fn tile_cols(&self, j: usize) -> usize {
        self.tile.n.min(self.n - j * self.tile.n)
    }
    fn tile_rows(&self, i: usize) -> usize {
        self.tile.k.min(self.k - i * self.tile.k)
    }

    /// The constant bytes to place in device memory.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Scratchpad rows a stripe occupies.
    pub fn stripe_rows(&self) -> usize {
        self.k_tiles() * self.tile.k
    }

    /// The LOAD bringing k-tiles `tiles` of stripe `j` of weights placed at
    /// `base` into scratchpad rows from `row` (the whole stripe, or a piece
    /// of it when K is split across accumulator passes).
    pub fn stripe_load(&self, j: usize, tiles: std::ops::Range<usize>, base: u64, row: u16) -> ins::Load {
        let row_bytes = self.tile.n;
        let (r0, r1) = (tiles.start * self.tile.k, (tiles.end * self.tile.k).min(self.k));
        ins::Load {
            buf: ins::BUF_SPAD,
            dram: (base + ((j * self.k + r0) * row_bytes) as u64) as u32,
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
        WeightTile {
            addr: row + ((i - i0) * self.tile.k) as u16,
            k: self.tile_rows(i) as u16,
            n: self.tile_cols(j) as u16,
            wfmt: self.format.wfmt(),
            meta: 0,
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
        if self.format == WeightFormat::StreamI8 {
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
}
