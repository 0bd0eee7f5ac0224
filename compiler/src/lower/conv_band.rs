//! Convolutions from feature-map bands: a band of output rows reads a band
//! of padded input rows, which one LOAD brings into the scratchpad in long
//! contiguous bursts (the DRAM buffer already holds the zero-point halo, so
//! the band's padding comes with it). The array's input rows are then
//! formed on chip by the `matmul` input-row pattern: for kernel tap
//! `(ky, kx)` and input channel block `cb`, output pixel `(oy, ox)` of the
//! band reads band pixel `(oy·sh + ky·dh, ox·sw + kx·dw)`'s block `cb` —
//! one group per output row (`a_group` = output width, `a_stride` = sw,
//! `a_gstride` = sh × padded width). Every tap and channel block of an
//! output tile accumulates in the accumulator before one `requant`.
//!
//! Each input byte crosses the bus once per band (plus the halo rows two
//! bands share), instead of up to kh·kw times in small im2col gathers.
//!
//! Weights are *terms*: per output tile `j` (its `cols` channels), a list
//! of (tap, input block) with a `k × n` tile each. Ordinary and aligned
//! grouped convolutions use all blocks of the tile's group; a depthwise
//! convolution (one input and one output channel per group) maps channels
//! across the array: tile `j` reads input block `j` only, with the tap's
//! weights on the diagonal, so each array row carries one channel.
//!
//! A batch (`compile --batch`) under streamed weights passes each band in
//! groups of images (`Plan::group`: a band buffer, accumulator tile and
//! output buffer each), so a weight chunk loads once per band for the group
//! rather than once per image, where the scratchpad holds the group.
//!
//! Scratchpad: two band buffers, the weight stream (resident when it fits,
//! else double-buffered chunks reloaded per band), two output buffers;
//! accumulator: the parameters, two output tiles. Tokens follow the
//! in-order completion of each DMA queue: COMPUTE pops LOAD tokens up to
//! the last item an instruction needs (a `sync` per extra token), and every
//! buffer release is pushed by the instruction that last reads it.

use super::memory::Buffer;
use super::Ctx;
use crate::gemm::{self, LowerError, WeightFormat};
use crate::ir::{ConvParams, ElemType, ValueId};
use crate::ir_codec::PackedRef;
use isa::instr::{self as ins, Deps, Instr, Queue};
use isa::layout::Layout;
use isa::numerics;

/// Output tiles (array columns) a band conv computes and what each reads.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Mapping {
    /// Tile `j` reads every input block of its group (`blocks_per_group`
    /// blocks from `j · cols / out_per_group · blocks_per_group`).
    Dense { blocks_per_group: usize, out_per_group: usize },
    /// Tile `j` reads input block `j`, weights on the diagonal.
    Depthwise,
    /// One group, the kernel row's taps packed into the scratchpad row
    /// (see [`Geometry::packed`]): tile `j` reads every packed block.
    Packed,
}

/// A convolution's geometry on the band path.
#[derive(Clone, Debug)]
struct Geometry {
    /// Padded input: width, channels, where the conv's padded row 0 / column 0 start.
    wp: usize,
    cin: usize,
    off: [usize; 2],
    kernel: [usize; 2],
    strides: [usize; 2],
    dilations: [usize; 2],
    oh: usize,
    ow: usize,
    cout: usize,
    /// Array columns (= a scratchpad row's values = a tile's k).
    dim: usize,
    /// Few input channels: a band row holds, per output column, the `kw · cin`
    /// bytes of its kernel row's window (one DRAM request each), so a tile
    /// reduces over taps and channels at once (a 7x7 stem on 3 channels
    /// streams 7 × 2 tiles per output tile rather than 49 three-row ones).
    packed: bool,
}

impl Geometry {
    /// Channel blocks of a band element (a padded pixel, or a packed window row).
    fn in_blocks(&self) -> usize {
        if self.packed {
            (self.kernel[1] * self.cin).div_ceil(self.dim)
        } else {
            self.cin.div_ceil(self.dim)
        }
    }
    /// Band elements per input row.
    fn row_elems(&self) -> usize {
        if self.packed {
            self.ow
        } else {
            self.wp
        }
    }
    /// The first scratchpad row (from the band's start) term `(tap, block)`
    /// reads for output pixel (0, 0), in a band of `nin` input rows.
    fn term_row(&self, tap: [usize; 2], block: usize, nin: usize) -> usize {
        if self.packed {
            (tap[0] * self.dilations[0] * self.in_blocks() + block) * self.ow
        } else {
            block * nin * self.wp + tap[0] * self.dilations[0] * self.wp + tap[1] * self.dilations[1] + self.off[1]
        }
    }
    /// The matmul pattern's row step and group step.
    fn steps(&self) -> (usize, usize) {
        if self.packed {
            (1, self.strides[0] * self.in_blocks() * self.ow)
        } else {
            (self.strides[1], self.strides[0] * self.wp)
        }
    }
    fn out_tiles(&self) -> usize {
        self.cout.div_ceil(self.dim)
    }
    /// Padded input rows a band of `rows` output rows reads.
    fn band_in_rows(&self, rows: usize) -> usize {
        (rows - 1) * self.strides[0] + (self.kernel[0] - 1) * self.dilations[0] + 1
    }
    /// Scratchpad rows of such a band: every element, every block.
    fn band_spad_rows(&self, rows: usize) -> usize {
        self.band_in_rows(rows) * self.row_elems() * self.in_blocks()
    }
    /// Bytes of such a band's LOADs that wait in the DMA's staging buffer at
    /// most (`staging::pile_up`): one LOAD of whole padded input rows, or
    /// one per input row of `ow` window rows when packed.
    fn band_staging(&self, rows: usize, dma: super::staging::Dma) -> usize {
        let nin = self.band_in_rows(rows);
        let (loads, load) = if self.packed {
            let cols = self.kernel[1] * self.cin;
            let l = ins::Load {
                rows: self.ow as u16,
                cols: cols as u16,
                stride: (self.strides[1] * self.cin) as u32,
                ..Default::default()
            };
            (nin, l)
        } else {
            let l = ins::Load {
                rows: (nin * self.wp).min(u16::MAX as usize) as u16,
                cols: self.cin as u16,
                stride: self.cin as u32,
                ..Default::default()
            };
            (1, l)
        };
        loads * super::staging::pile_up(&load, dma) as usize
    }
}

/// A band whose LOADs pile up more than `staging::BUDGET` bytes in the
/// DMA's staging buffer would be cut into slow per-block pieces: take
/// fewer rows instead.
const STAGING_BUDGET: usize = super::staging::BUDGET as usize;

/// One weight tile of the stream: output tile `j`, which input block at
/// which tap, its shape, and whether it holds a non-zero weight.
#[derive(Clone, Debug)]
struct Term {
    j: usize,
    tap: [usize; 2],
    block: usize,
    k: usize,
    n: usize,
    live: bool,
    /// A 2:4-sparse tile (`i8s24`) of two terms: the second's (tap, block,
    /// reduction rows), its inputs `dim..` of the array's input (read at
    /// `a_bstride` rows from the first's).
    second: Option<([usize; 2], usize, usize)>,
    /// Rows of the tile in the array: `k`, or a 2:4 tile's kept rows.
    rows: usize,
}

/// The mapping a band conv of these weights uses (`packed`: the kernel
/// row's taps in the scratchpad row), or `None` when none applies.
fn mapping_of(w_shape: [usize; 4], groups: usize, dim: usize, packed: bool) -> Option<Mapping> {
    let [m_out, cg, _, _] = w_shape;
    let mg = m_out / groups.max(1);
    let cin = cg * groups;
    Some(if groups == 1 && packed {
        Mapping::Packed
    } else if groups == 1 {
        Mapping::Dense { blocks_per_group: cin.div_ceil(dim), out_per_group: m_out.div_ceil(dim) * dim }
    } else if cg == 1 && mg == 1 {
        Mapping::Depthwise
    } else if cg.is_multiple_of(dim) && mg.is_multiple_of(dim) {
        Mapping::Dense { blocks_per_group: cg / dim, out_per_group: mg }
    } else {
        return None;
    })
}

/// Every weight tile in stream order (output tile, kernel row, tap, block),
/// with the index into the weights `[m, cg, kh, kw]` of each tile element
/// `(r, col)` (`None`: a zero the packing adds). Depends on shapes only, so
/// the program's recorded graph can unpack the weights from the stream.
struct TileMap {
    w_shape: [usize; 4],
    dim: usize,
    map: Mapping,
    /// int4 weights two per byte (`wfmt = i4`): a tile's rows `2r`, `2r + 1`
    /// share row `r` (low, high nibble), so a tile takes `dim / 2` rows.
    int4: bool,
}

impl TileMap {
    /// Scratchpad (and image) rows of one tile.
    fn tile_rows(&self) -> usize {
        if self.int4 {
            self.dim.div_ceil(2)
        } else {
            self.dim
        }
    }

    /// The bytes of the stream image of `terms` tiles.
    fn image_len(&self, terms: usize) -> usize {
        terms.div_ceil(WIDE) * self.tile_rows() * (WIDE + 1) * self.dim
    }

    /// Byte of tile `t`'s element `(r, col)` in the stream image, and
    /// whether it is the high nibble (int4, odd `r`).
    fn image_at(&self, t: usize, r: usize, col: usize) -> (usize, bool) {
        let (sb, b) = (t / WIDE, t % WIDE);
        let (row, high) = if self.int4 { (r / 2, r % 2 == 1) } else { (r, false) };
        ((sb * self.tile_rows() + row) * (WIDE + 1) * self.dim + b * self.dim + col, high)
    }

    fn cin(&self) -> usize {
        match self.map {
            Mapping::Depthwise => self.w_shape[0],
            Mapping::Dense { blocks_per_group, out_per_group } => {
                if out_per_group >= self.w_shape[0] {
                    self.w_shape[1]
                } else {
                    blocks_per_group * self.dim * (self.w_shape[0] / out_per_group)
                }
            }
            Mapping::Packed => self.w_shape[1],
        }
    }

    fn terms(&self) -> Vec<Term> {
        let [m_out, _, kh, kw] = self.w_shape;
        let dim = self.dim;
        let width = if self.map == Mapping::Packed { kw * self.cin() } else { self.cin() };
        let mut v = Vec::new();
        for j in 0..m_out.div_ceil(dim) {
            let n = dim.min(m_out - j * dim);
            for ky in 0..kh {
                for kx in 0..kw {
                    let blocks: Vec<usize> = match self.map {
                        Mapping::Dense { blocks_per_group, out_per_group } => {
                            let grp = j * dim / out_per_group;
                            (grp * blocks_per_group..(grp + 1) * blocks_per_group).collect()
                        }
                        Mapping::Depthwise => vec![j],
                        // The row's taps are inside the packed blocks.
                        Mapping::Packed if kx > 0 => continue,
                        Mapping::Packed => (0..width.div_ceil(dim)).collect(),
                    };
                    for block in blocks {
                        let k = dim.min(width - block * dim);
                        v.push(Term { j, tap: [ky, kx], block, k, n, live: true, second: None, rows: k });
                    }
                }
            }
        }
        v
    }

    /// The weight at element `(r, col)` of tile `t`.
    fn source(&self, t: &Term, r: usize, col: usize) -> Option<usize> {
        let [_, cg, kh, kw] = self.w_shape;
        if r >= t.k || col >= t.n {
            return None;
        }
        let o = t.j * self.dim + col;
        let (ci, ky, kx) = match self.map {
            Mapping::Dense { out_per_group, .. } => {
                (t.block * self.dim + r - (o / out_per_group) * cg, t.tap[0], t.tap[1])
            }
            Mapping::Depthwise if r == col => (0, t.tap[0], t.tap[1]),
            Mapping::Depthwise => return None,
            Mapping::Packed => {
                let i = t.block * self.dim + r;
                (i % cg, t.tap[0], i / cg)
            }
        };
        Some(((o * cg + ci) * kh + ky) * kw + kx)
    }

    /// The stream's DRAM image: tiles of `dim` rows (zero padded), WIDE
    /// tiles a *superblock* whose DRAM row `y` holds row `y` of each of its
    /// tiles, then one row's `dim` bytes of gap — what a LOAD of `WIDE ·
    /// dim` columns, column-blocked, writes back as the tiles' rows in order.
    fn pack(&self, terms: &[Term], weights: &[i8]) -> Vec<u8> {
        let mut out = vec![0u8; self.image_len(terms.len())];
        for (t, term) in terms.iter().enumerate() {
            for r in 0..term.k {
                for col in 0..term.n {
                    if let Some(i) = self.source(term, r, col) {
                        let (at, high) = self.image_at(t, r, col);
                        out[at] = match (self.int4, high) {
                            (false, _) => weights[i] as u8,
                            (true, false) => numerics::int4_pack(weights[i], numerics::int4_high(out[at])),
                            (true, true) => numerics::int4_pack(numerics::int4_low(out[at]), weights[i]),
                        };
                    }
                }
            }
        }
        out
    }

    /// The weights back from [`TileMap::pack`]'s image (`None`: wrong length).
    fn unpack(&self, image: &[u8]) -> Option<Vec<i8>> {
        let terms = self.terms();
        if image.len() != self.image_len(terms.len()) {
            return None;
        }
        let mut w = vec![0i8; self.w_shape.iter().product()];
        for (t, term) in terms.iter().enumerate() {
            for r in 0..term.k {
                for col in 0..term.n {
                    if let Some(i) = self.source(term, r, col) {
                        let (at, high) = self.image_at(t, r, col);
                        w[i] = match (self.int4, high) {
                            (false, _) => image[at] as i8,
                            (true, false) => numerics::int4_low(image[at]),
                            (true, true) => numerics::int4_high(image[at]),
                        };
                    }
                }
            }
        }
        Some(w)
    }
}

/// Byte of tile `t`'s element `(r, col)` in a stream image of tiles of
/// `pitch` rows (2:4 tiles: kept and position rows).
fn image_at_pitch(t: usize, r: usize, col: usize, dim: usize, pitch: usize) -> usize {
    let (sb, b) = (t / WIDE, t % WIDE);
    (sb * pitch + r) * (WIDE + 1) * dim + b * dim + col
}

/// Scratchpad rows of a 2:4 tile in the stream: `dim` kept rows, then
/// their positions.
fn sparse_pitch(dim: usize) -> usize {
    dim + isa::legal::sparse24_meta_rows(dim as u64) as usize
}

impl TileMap {
    /// Term `t`'s weights as the array's dense-equivalent input rows:
    /// element `(r, col)` for `r < 2 dim` (the second term from `dim` on).
    fn dense_rows(&self, t: &Term, weights: &[i8], r: usize, col: usize) -> i8 {
        let dim = self.dim;
        let src = match t.second {
            Some((tap, block, k)) if r >= dim => {
                let half = Term { tap, block, k, second: None, ..t.clone() };
                self.source(&half, r - dim, col)
            }
            _ if r >= dim => None,
            _ => self.source(&Term { second: None, ..t.clone() }, r, col),
        };
        src.map_or(0, |i| weights[i])
    }

    /// Whether every single term's tile is 2:4 along its input channels.
    fn all_2_4(&self, terms: &[Term], weights: &[i8]) -> bool {
        terms.iter().all(|t| {
            (0..t.n).all(|col| {
                (0..t.k.div_ceil(4))
                    .all(|g| (0..4).filter(|&x| self.dense_rows(t, weights, 4 * g + x, col) != 0).count() <= 2)
            })
        })
    }

    /// The 2:4 stream image: like [`TileMap::pack`], tiles of
    /// [`sparse_pitch`] rows: kept values, then position bytes.
    fn pack_sparse(&self, terms: &[Term], weights: &[i8]) -> Vec<u8> {
        let (dim, pitch) = (self.dim, sparse_pitch(self.dim));
        let sbs = terms.len().div_ceil(WIDE);
        let mut out = vec![0u8; sbs * pitch * (WIDE + 1) * dim];
        let mut positions = vec![0u8; dim];
        for (t, term) in terms.iter().enumerate() {
            for col in 0..term.n {
                for g in 0..dim / 2 {
                    let v = |x: usize| self.dense_rows(term, weights, 4 * g + x, col);
                    let kept = gemm::compress_group([v(0), v(1), v(2), v(3)]).expect("checked 2:4");
                    for (h, (value, p)) in kept.into_iter().enumerate() {
                        out[image_at_pitch(t, 2 * g + h, col, dim, pitch)] = value as u8;
                        positions[2 * g + h] = p;
                    }
                }
                for (q, rows) in positions.chunks(4).enumerate() {
                    out[image_at_pitch(t, dim + q, col, dim, pitch)] = gemm::position_byte(rows);
                }
            }
        }
        out
    }
}

/// Pairs a tile's terms into 2:4 tiles, in order: within each input block
/// consecutive taps, then the blocks' leftover last taps block by block,
/// so the second of a pair always lies after the first in the band
/// (`a_bstride` > 0 for every band height).
fn pair_terms(terms: Vec<Term>, dim: usize) -> Vec<Term> {
    let mut out = Vec::new();
    let mut rest = terms;
    while let Some(j) = rest.first().map(|t| t.j) {
        let split = rest.iter().position(|t| t.j != j).unwrap_or(rest.len());
        let tile: Vec<Term> = rest.drain(..split).collect();
        let mut blocks: Vec<usize> = tile.iter().map(|t| t.block).collect();
        blocks.sort_unstable();
        blocks.dedup();
        let mut leftovers = Vec::new();
        for &b in &blocks {
            let of_block: Vec<&Term> = tile.iter().filter(|t| t.block == b).collect();
            for pair in of_block.chunks(2) {
                match pair {
                    [a, b2] => out.push(Term { second: Some((b2.tap, b2.block, b2.k)), ..(*a).clone() }),
                    [a] => leftovers.push((*a).clone()),
                    _ => unreachable!("chunks of 2"),
                }
            }
        }
        for pair in leftovers.chunks(2) {
            match pair {
                [a, b2] => out.push(Term { second: Some((b2.tap, b2.block, b2.k)), ..a.clone() }),
                [a] => out.push(a.clone()),
                _ => unreachable!("chunks of 2"),
            }
        }
    }
    // Kept rows: two per group of 4 inputs the pair covers.
    for t in &mut out {
        let inputs = match t.second {
            Some((_, _, k2)) => dim + k2,
            None => t.k,
        };
        t.rows = 2 * inputs.div_ceil(4);
    }
    out
}

/// A band conv's weights `[m, cg, kh, kw]` from the start of `image`, its
/// stream image (what the program's recorded graph references), or `None`
/// if the shapes have no band mapping or `image` is shorter than theirs.
pub(crate) fn unpack_weights(
    image: &[u8],
    w_shape: [usize; 4],
    groups: usize,
    dim: usize,
    packed: bool,
    int4: bool,
) -> Option<Vec<i8>> {
    if dim == 0 || groups == 0 || !w_shape[0].is_multiple_of(groups) {
        return None;
    }
    let volume = w_shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
    // An image holds every weight at least once (int4: two a byte).
    if volume.div_ceil(if int4 { 2 } else { 1 }) > image.len() {
        return None;
    }
    let map = mapping_of(w_shape, groups, dim, packed)?;
    let tiles = TileMap { w_shape, dim, map, int4 };
    let len = tiles.image_len(tiles.terms().len());
    tiles.unpack(image.get(..len)?)
}

/// The bytes of a band conv's weight stream image (what
/// [`unpack_weights`] reads), or `None` if the shapes have no band mapping.
pub(crate) fn image_len(w_shape: [usize; 4], groups: usize, dim: usize, packed: bool, int4: bool) -> Option<usize> {
    if dim == 0 || groups == 0 || !w_shape[0].is_multiple_of(groups) {
        return None;
    }
    let map = mapping_of(w_shape, groups, dim, packed)?;
    let tiles = TileMap { w_shape, dim, map, int4 };
    Some(tiles.image_len(tiles.terms().len()))
}

/// Scratchpad rows per DRAM row of a weight chunk: each LOAD burst is one
/// DRAM row (WIDE × cols bytes, rows apart by one more beat), so a chunk
/// never holds the memory queue with 4 KiB bursts and instruction fetch
/// gets through between them (a contiguous chunk starved small-M layers).
const WIDE: usize = 16;

/// The largest resident chunk (a LOAD moves at most 65535 DRAM rows, and
/// scratchpad rows are 16-bit).
const RESIDENT_CHUNK: usize = 32768;

/// Superblocks per chunk of resident weights (each chunk is one token).
const RESIDENT_STEP: usize = 4;

/// Where everything lives and how the output rows are cut into bands.
#[derive(Clone, Debug)]
struct Plan {
    /// Output rows per band (the last band may be shorter).
    rows: usize,
    bands: usize,
    band_buf: [u16; 2],
    out_buf: [u16; 2],
    /// Weight area and, when streaming, the rows of one chunk buffer.
    w_base: u16,
    chunk_rows: Option<usize>,
    acc_buf: [u16; 2],
    params: u16,
    /// Images of a batch that pass each band together (`group` bands, one
    /// per image, `band_rows` scratchpad rows apart; their outputs
    /// `out_rows` apart; their accumulator tiles `m` rows apart), so that a
    /// streamed weight chunk loads once for all of them.
    group: usize,
    band_rows: usize,
    out_rows: usize,
}

/// The band plan: for one image at a time ([`plan_group`] with a group of
/// 1), or — where the weights stream, so that each band reloads them — the
/// group of images that share each loaded weight chunk (`compile --batch`)
/// that moves the fewest DRAM bytes (weights per band group, input bands
/// with their halo rows).
fn plan(
    g: &Geometry,
    images: usize,
    weight_rows: usize,
    sb_rows: usize,
    spad: usize,
    accr: usize,
    dma: super::staging::Dma,
) -> Option<Plan> {
    let single = plan_group(g, images, 1, weight_rows, sb_rows, spad, accr, dma)?;
    if single.chunk_rows.is_none() || images == 1 {
        return Some(single);
    }
    let bytes = |p: &Plan| {
        let groups = images.div_ceil(p.group) * p.bands;
        let weights = if p.chunk_rows.is_some() { groups } else { 1 } * weight_rows * g.dim;
        weights + images * p.bands * g.band_spad_rows(p.rows) * g.dim
    };
    (2..=images)
        .filter_map(|group| plan_group(g, images, group, weight_rows, sb_rows, spad, accr, dma))
        .chain([single])
        .min_by_key(bytes)
}

/// The largest band that fits `group` images' at once, or `None` when even
/// one output row does not (`images`: a batch's images pass group after
/// group, band by band).
#[allow(clippy::too_many_arguments)]
fn plan_group(
    g: &Geometry,
    images: usize,
    group: usize,
    weight_rows: usize,
    sb_rows: usize,
    spad: usize,
    accr: usize,
    dma: super::staging::Dma,
) -> Option<Plan> {
    let nt = g.out_tiles();
    let acc_tile = accr.checked_sub(2 * nt)? / 2;
    let max_rows = (acc_tile / (g.ow * group)).min(g.oh).min(u16::MAX as usize / g.ow.max(1));
    for rows in (1..=max_rows).rev() {
        let bands = g.oh.div_ceil(rows);
        let rows = g.oh.div_ceil(bands);
        if group * g.band_staging(rows, dma) > STAGING_BUDGET {
            continue;
        }
        let several = bands * images.div_ceil(group) > 1;
        let slots = if several { 2 } else { 1 };
        let (band_rows, out_rows) = (g.band_spad_rows(rows), rows * g.ow * nt);
        let (band, out) = (group * band_rows, group * out_rows);
        let fixed = slots * (band + out);
        let Some(left) = spad.checked_sub(fixed) else { continue };
        let slot = left / 2 / sb_rows * sb_rows;
        let chunk_rows = if weight_rows <= left && weight_rows <= RESIDENT_CHUNK {
            None
        } else if slot >= 2 * sb_rows || (rows == 1 && slot >= sb_rows) {
            Some(slot)
        } else {
            continue;
        };
        let r = |x: usize| x as u16;
        let b1 = if several { band } else { 0 };
        let o0 = band + b1;
        let o1 = o0 + if several { out } else { 0 };
        return Some(Plan {
            rows,
            bands,
            band_buf: [0, r(b1)],
            out_buf: [r(o0), r(o1)],
            w_base: r(o1 + out),
            chunk_rows,
            acc_buf: [r(2 * nt), r(2 * nt + acc_tile)],
            params: 0,
            group,
            band_rows,
            out_rows,
        });
    }
    None
}

/// Whether packing the kernel row's taps (`Geometry::packed`) beats plain
/// pixels: fewer matmul rows, unless the one-request-per-window loads
/// (`latency / outstanding` cycles each at best) take longer still.
fn packing_pays(g: &Geometry, cfg: &isa::HwConfig) -> bool {
    let [kh, kw] = g.kernel;
    if g.dilations[1] != 1 || kw == 1 {
        return false;
    }
    let plain_blocks = kw * g.cin.div_ceil(g.dim);
    let packed_blocks = (kw * g.cin).div_ceil(g.dim);
    if packed_blocks >= plain_blocks {
        return false;
    }
    let (m, nt) = ((g.oh * g.ow) as f64, g.out_tiles() as f64);
    let w = cfg.dram.bytes_per_cycle as f64;
    let per_request =
        (cfg.dram.latency_cycles as f64 + (kw * g.cin) as f64 / w + 1.0) / cfg.dram.max_outstanding as f64;
    // Each output row reads about `kh` window rows (bands share few).
    let requests = (g.oh * g.ow) as f64 * (g.strides[0].max(1) as f64).max(kh as f64 / 2.0);
    let packed = (m * nt * (kh * packed_blocks) as f64).max(requests * per_request);
    let in_bytes = (g.oh * g.strides[0] * g.wp * g.cin) as f64;
    let plain = (m * nt * (kh * plain_blocks) as f64).max(in_bytes / w);
    packed < plain
}

/// Lowers `c` on the band path, or returns `None` when it does not apply
/// (the caller then uses the im2col GEMM): arrays with fewer rows than
/// columns (a tile's reduction is shorter than a scratchpad row), groups
/// that neither are depthwise nor split channels in whole array-width
/// blocks, and bands that do not fit the scratchpad or the accumulator
/// even one output row high.
pub(super) fn lower(
    cx: &mut Ctx<'_>,
    (x, y): (ValueId, ValueId),
    c: &ConvParams,
    inb: &Buffer,
    outb: &Buffer,
) -> Result<Option<u64>, LowerError> {
    let dim = cx.dim;
    if cx.dataflow.tile_shape().k != dim {
        return Ok(None);
    }
    let Layout::Nhwc { n: images, w, c: cin, halo, .. } = inb.layout else { return Ok(None) };
    let Layout::Nhwc { h: oh, w: ow, c: cout, halo: out_halo, .. } = outb.layout else { return Ok(None) };
    let [m_out, cg, kh, kw] = c.w_shape;
    let groups = c.groups;
    let mg = m_out / groups;
    let map = if groups == 1 {
        Mapping::Dense { blocks_per_group: cin.div_ceil(dim), out_per_group: m_out.div_ceil(dim) * dim }
    } else if cg == 1 && mg == 1 {
        Mapping::Depthwise
    } else if cg.is_multiple_of(dim) && mg.is_multiple_of(dim) {
        Mapping::Dense { blocks_per_group: cg / dim, out_per_group: mg }
    } else {
        return Ok(None);
    };
    let [pt, pl, _, _] = c.pads;
    let mut g = Geometry {
        wp: w + 2 * halo,
        cin,
        off: [halo - pt, halo - pl],
        kernel: [kh, kw],
        strides: c.strides,
        dilations: c.dilations,
        oh,
        ow,
        cout,
        dim,
        packed: false,
    };
    // The layer's groups of 4 consecutive reductions (channels innermost)
    // must be groups of one tap's channels: 4 divides the channels.
    // int4 weights stay two per byte on this path too (an even `dim`).
    let int4 = super::gemm_layers::weight_format(cx, c.w_type) == WeightFormat::DenseI4;
    let may_sparse = cx.weights.sparse24(cx.cfg)
        && !int4
        && matches!(map, Mapping::Dense { .. })
        && dim.is_multiple_of(4)
        && cg.is_multiple_of(4)
        && {
            let tiles = TileMap { w_shape: c.w_shape, dim, map: map.clone(), int4: false };
            let terms = tiles.terms();
            terms.len() > 1 && tiles.all_2_4(&terms, &c.weights)
        };
    // 2:4 tiles halve the passes: better than packing the kernel row.
    let map = if map
        == (Mapping::Dense { blocks_per_group: cin.div_ceil(dim), out_per_group: m_out.div_ceil(dim) * dim })
        && groups == 1
        && !may_sparse
        && packing_pays(&g, cx.cfg)
    {
        g.packed = true;
        Mapping::Packed
    } else {
        map
    };
    if g.strides[1] > u8::MAX as usize || g.steps().1 > u16::MAX as usize {
        return Ok(None);
    }
    // 2:4 tiles pair two terms' inputs (ISA.md §3): when allowed and every
    // term's weights are 2:4 along the input channels.
    let sparse = may_sparse && !g.packed;
    let tiles = TileMap { w_shape: c.w_shape, dim, map, int4 };
    let mut terms = tiles.terms();
    if sparse {
        terms = pair_terms(terms, dim);
    }
    let pitch = if sparse { sparse_pitch(dim) } else { tiles.tile_rows() };
    let sb_rows = WIDE * pitch;
    let weight_rows = terms.len().div_ceil(WIDE) * sb_rows;
    let spad = (cx.cfg.spad_rows() as usize).min(u16::MAX as usize + 1);
    let accr = (cx.cfg.acc_rows() as usize).min(u16::MAX as usize + 1);
    let Some(p) = plan(&g, images, weight_rows, sb_rows, spad, accr, super::staging::Dma::of(cx.cfg)) else {
        return Ok(None);
    };

    // Parameters: the input zero point folded into the bias with the
    // column sums of the weights, the per-column requantization scale.
    let (qx, qy) = (cx.quant(x), cx.quant(y));
    let per_out = cg * kh * kw;
    let folded: Vec<i32> = (0..cout)
        .map(|o| {
            let sum = c.weights[o * per_out..(o + 1) * per_out].iter().fold(0i32, |s, &v| s.wrapping_add(v as i32));
            numerics::fold_zero_point(c.bias[o], qx.zero_point, sum)
        })
        .collect();
    let scale: Vec<f32> = (0..cout).map(|o| numerics::requant_scale(qx.scale, c.w_scale[o], qy.scale)).collect();
    let params_addr = cx.mem.alloc_bytes(&gemm::pack_params(&folded, &scale, dim));
    let image = if sparse { tiles.pack_sparse(&terms, &c.weights) } else { tiles.pack(&terms, &c.weights) };
    let weights_addr = cx.mem.alloc_bytes(&image);
    // Resident weights load in chunks too, so the first matmul waits for
    // its own chunk only, not for all the weights.
    let chunks = chunk_terms(terms.len(), p.chunk_rows.map_or(RESIDENT_STEP, |r| r / sb_rows));
    // All-zero tiles are stored (the image depends on shapes only) but not
    // streamed; each output tile and each chunk keeps one (so the tile is
    // written and the chunk's tokens flow).
    for t in &mut terms {
        t.live = (0..2 * dim).any(|r| (0..t.n).any(|col| tiles.dense_rows(t, &c.weights, r, col) != 0));
    }
    for i in 0..terms.len() {
        let first_of_tile = i == 0 || terms[i - 1].j != terms[i].j;
        let first_of_chunk = chunks.iter().any(|ch| ch.t0 == i);
        let tile_dead = terms.iter().filter(|t| t.j == terms[i].j).all(|t| !t.live);
        let chunk = chunks.iter().find(|ch| (ch.t0..ch.t1).contains(&i)).expect("chunked");
        let chunk_dead = terms[chunk.t0..chunk.t1].iter().all(|t| !t.live);
        if (first_of_tile && tile_dead) || (first_of_chunk && chunk_dead) {
            terms[i].live = true;
        }
    }
    // The recorded graph references a dense image; a 2:4 one keeps its
    // weights raw.
    cx.packed_weights = (!sparse).then(|| PackedRef {
        format: match (g.packed, int4) {
            (true, false) => WeightFormat::BandRowsI8,
            (false, false) => WeightFormat::BandI8,
            (true, true) => WeightFormat::BandRowsI4,
            (false, true) => WeightFormat::BandI4,
        },
        tile_n: dim,
        offsets: vec![weights_addr],
        perm: None,
    });

    let job = Job {
        g: &g,
        p: &p,
        terms: &terms,
        chunks: &chunks,
        in_addr: inb.addr,
        images,
        in_image: inb.layout.bytes() / images,
        out: OutTarget { addr: outb.addr, wp: ow + 2 * out_halo, halo: out_halo, image: outb.layout.bytes() / images },
        params_addr,
        weights_addr,
        wfmt: if sparse {
            ins::WFMT_I8_S24
        } else if int4 {
            ins::WFMT_I4
        } else {
            ins::WFMT_I8
        },
        a_unsigned: cx.g.values[x].ty == ElemType::U8,
        requant: Requant { zp: qy.zero_point, qmin: c.qmin, qmax: c.qmax, unsigned: cx.g.values[y].ty == ElemType::U8 },
        bus_bytes: cx.cfg.dram.bytes_per_cycle as usize,
        pitch,
    };
    let (code, macs) = job.emit();
    cx.code.phase(code);
    Ok(Some(macs))
}

#[derive(Clone, Copy)]
struct OutTarget {
    addr: u64,
    wp: usize,
    halo: usize,
    /// Bytes from one image of a batch to the next.
    image: usize,
}

#[derive(Clone, Copy)]
struct Requant {
    zp: i32,
    qmin: i32,
    qmax: i32,
    unsigned: bool,
}

struct Job<'a> {
    g: &'a Geometry,
    p: &'a Plan,
    terms: &'a [Term],
    chunks: &'a [Chunk],
    in_addr: u64,
    /// A batch's images (`compile --batch`), `in_image` bytes apart: the
    /// bands run image after image under the same weights, so resident
    /// weights load once for the batch.
    images: usize,
    in_image: usize,
    out: OutTarget,
    params_addr: u64,
    weights_addr: u64,
    /// The weight tiles' `wfmt` (i8, i8s24 or i4).
    wfmt: u8,
    a_unsigned: bool,
    requant: Requant,
    /// DRAM bytes per cycle (paces the weight LOADs).
    bus_bytes: usize,
    /// Scratchpad rows per weight tile: `dim`, `dim / 2` for int4, or
    /// [`sparse_pitch`] for 2:4.
    pitch: usize,
}

/// A weight chunk: superblocks `[sb0, sb0 + sbs)`, which hold terms `[t0, t1)`.
#[derive(Clone, Copy, Debug)]
struct Chunk {
    t0: usize,
    t1: usize,
    sb0: usize,
    sbs: usize,
}

/// `terms` tiles cut into chunks of at most `cap` superblocks.
fn chunk_terms(terms: usize, cap: usize) -> Vec<Chunk> {
    let sbs = terms.div_ceil(WIDE);
    let cap = cap.max(1);
    (0..sbs)
        .step_by(cap)
        .map(|sb0| {
            let n = cap.min(sbs - sb0);
            Chunk { t0: sb0 * WIDE, t1: ((sb0 + n) * WIDE).min(terms), sb0, sbs: n }
        })
        .collect()
}

/// The three queues' streams being built, with the token bookkeeping.
#[derive(Default)]
struct Streams {
    program: Vec<Instr>,
    /// LOADs not yet placed in the program, with their item: they are
    /// dripped one per matmul, so a chunk of many LOADs never fills the
    /// LOAD queue and holds dispatch while COMPUTE runs dry.
    pending: std::collections::VecDeque<(Instr, usize)>,
    /// LOAD items so far (each item's last LOAD pushes one token on completion).
    loads: usize,
    /// LOAD tokens COMPUTE has popped.
    popped: usize,
    macs: u64,
}

impl Streams {
    /// A LOAD that signals COMPUTE when done; returns its item index.
    fn load(&mut self, l: ins::Load, wait_release: bool) -> usize {
        self.load_group(vec![l], wait_release)
    }

    /// LOADs that make one item: the first waits for the release, the last
    /// signals (LOADs finish in order). They wait in `pending`.
    fn load_group(&mut self, mut ls: Vec<ins::Load>, wait_release: bool) -> usize {
        let n = ls.len();
        for (i, l) in ls.iter_mut().enumerate() {
            l.deps = Deps { push_next: i + 1 == n, pop_next: wait_release && i == 0, ..Deps::NONE };
        }
        let item = self.loads;
        self.pending.extend(ls.into_iter().map(|l| (Instr::from(l), item)));
        self.loads += 1;
        item
    }

    /// Places up to `n` pending LOADs in the program.
    fn drip(&mut self, n: usize) {
        for _ in 0..n {
            match self.pending.pop_front() {
                Some((l, _)) => self.program.push(l),
                None => break,
            }
        }
    }

    /// Places the pending LOADs of items up to `item`.
    fn flush(&mut self, item: usize) {
        while self.pending.front().is_some_and(|&(_, i)| i <= item) {
            self.drip(1);
        }
    }

    /// Pops LOAD tokens until item `item` is known loaded (LOADs finish in
    /// order): the instruction about to be pushed (`deps`) takes one, a
    /// `sync` before it each further one.
    fn need(&mut self, item: usize, deps: &mut Deps) {
        debug_assert!(item < self.loads, "item {item} needed before its LOAD");
        self.flush(item);
        while self.popped < item + 1 {
            if !deps.pop_prev && self.popped + 1 == item + 1 {
                deps.pop_prev = true;
            } else {
                self.program.push(Instr::from(ins::Sync {
                    deps: Deps { pop_prev: true, ..Deps::NONE },
                    queue: Queue::Compute as u8,
                }));
            }
            self.popped += 1;
        }
    }
}

impl Job<'_> {
    fn emit(&self) -> (Vec<Instr>, u64) {
        let (g, p) = (self.g, self.p);
        let dim = g.dim;
        let nt = g.out_tiles();
        let terms = self.terms;
        let chunks = self.chunks;
        let streaming = p.chunk_rows.is_some();
        let nch = chunks.len();
        let pitch = self.pitch;
        let sb_rows = WIDE * pitch;
        let mut s = Streams::default();
        // Bands of every group of images, group after group: band `b` is
        // band `b % bands` of the `group` images from `(b / bands)·group`
        // (each its own band buffer, accumulator tile and output buffer,
        // all under the same weights).
        let nb = self.images.div_ceil(p.group) * p.bands;
        let local = |b: usize| b % p.bands;
        let images_of = |b: usize| {
            let first = b / p.bands * p.group;
            first..(first + p.group).min(self.images)
        };

        // Scratchpad rows of chunk `q` for band `b` (a slot, or resident).
        let chunk_of = |t: usize| chunks.iter().position(|c| t < c.t1).expect("term in a chunk");
        let chunk_base = |b: usize, q: usize| -> usize {
            if streaming {
                ((b * nch + q) % 2) * p.chunk_rows.unwrap()
            } else {
                chunks[q].sb0 * sb_rows
            }
        };
        let w_row = |b: usize, t: usize| -> u16 {
            let q = chunk_of(t);
            p.w_base + (chunk_base(b, q) + (t - chunks[q].t0) * pitch) as u16
        };
        // One LOAD per superblock: DRAM rows of WIDE tile rows.
        let chunk_load = |b: usize, q: usize| -> Vec<ins::Load> {
            let c = chunks[q];
            (0..c.sbs)
                .map(|i| ins::Load {
                    buf: ins::BUF_SPAD,
                    dram: (self.weights_addr + ((c.sb0 + i) * pitch * (WIDE + 1) * dim) as u64) as u32,
                    stride: ((WIDE + 1) * dim) as u32,
                    rows: pitch as u16,
                    cols: (WIDE * dim) as u16,
                    addr: p.w_base + (chunk_base(b, q) + i * sb_rows) as u16,
                    ..Default::default()
                })
                .collect()
        };
        let band_rows = |b: usize| p.rows.min(g.oh - local(b) * p.rows);
        // Image `i`'s band buffer (`i` counted within its group).
        let band_at = |b: usize, i: usize| p.band_buf[b % 2] as usize + i * p.band_rows;
        let band_load = |b: usize| -> Vec<ins::Load> {
            let r0 = g.off[0] + local(b) * p.rows * g.strides[0];
            let nin = g.band_in_rows(band_rows(b));
            let mut loads = Vec::new();
            for (i, image) in images_of(b).enumerate() {
                let in_addr = self.in_addr + (image * self.in_image) as u64;
                if g.packed {
                    // One LOAD per input row: output column x's window row.
                    let kb = g.in_blocks();
                    loads.extend((0..nin).map(|r| ins::Load {
                        buf: ins::BUF_SPAD,
                        dram: (in_addr + (((r0 + r) * g.wp + g.off[1]) * g.cin) as u64) as u32,
                        stride: (g.strides[1] * g.cin) as u32,
                        rows: g.ow as u16,
                        cols: (g.kernel[1] * g.cin) as u16,
                        addr: (band_at(b, i) + r * kb * g.ow) as u16,
                        ..Default::default()
                    }));
                    continue;
                }
                loads.push(ins::Load {
                    buf: ins::BUF_SPAD,
                    dram: (in_addr + (r0 * g.wp * g.cin) as u64) as u32,
                    stride: g.cin as u32,
                    rows: (nin * g.wp) as u16,
                    cols: g.cin as u16,
                    addr: band_at(b, i) as u16,
                    ..Default::default()
                });
            }
            loads
        };

        // Item indices: LOAD items in program order.
        let mut band_item = vec![usize::MAX; nb];
        let mut chunk_item = vec![vec![usize::MAX; nch]; if streaming { nb } else { 1 }];
        let params = ins::Load {
            buf: ins::BUF_ACC,
            dram: self.params_addr as u32,
            stride: (dim * 4) as u32,
            rows: (2 * nt) as u16,
            cols: dim as u16,
            addr: p.params,
            ..Default::default()
        };
        s.load(params, false);
        band_item[0] = s.load_group(band_load(0), false);
        if streaming {
            // Chunk (b, q) is global chunk b·nch + q; the first two need no release.
            for gq in 0..2.min(nb * nch) {
                chunk_item[gq / nch][gq % nch] = s.load_group(chunk_load(gq / nch, gq % nch), false);
            }
        } else {
            for (q, item) in chunk_item[0].iter_mut().enumerate() {
                *item = s.load_group(chunk_load(0, q), false);
            }
        }
        if nb > 1 {
            band_item[1] = s.load_group(band_load(1), false);
        }
        let item_of_term = |chunk_item: &Vec<Vec<usize>>, b: usize, t: usize| {
            if streaming {
                chunk_item[b][chunk_of(t)]
            } else {
                chunk_item[0][chunk_of(t)]
            }
        };

        let rq = self.requant;
        let mut tile_count = 0usize;
        // A band's STOREs follow the next band's first matmul in program
        // order, so the dispatcher never waits on them with COMPUTE idle.
        let mut pending_stores: Vec<Instr> = Vec::new();
        // The streamed terms (all-zero tiles skipped), each chunk's last.
        let live: Vec<usize> = (0..terms.len()).filter(|&t| terms[t].live).collect();
        let chunk_last: Vec<usize> =
            chunks.iter().map(|c| *live.iter().rfind(|&&t| t < c.t1).expect("a live term per chunk")).collect();
        // The first tile goes in with an ldw.
        {
            let mut deps = Deps::NONE;
            s.need(item_of_term(&chunk_item, 0, live[0]), &mut deps);
            let t = &terms[live[0]];
            let (wfmt, meta) = self.format(w_row(0, live[0]));
            s.program.push(Instr::from(ins::Ldw {
                deps,
                addr: w_row(0, live[0]),
                k: t.rows as u16,
                n: t.n as u16,
                wfmt,
                meta,
                trans: 0,
            }));
        }
        for b in 0..nb {
            let rows = band_rows(b);
            let m = rows * g.ow;
            let nin = g.band_in_rows(rows);
            let mut li = 0usize;
            let drip_every = (WIDE * pitch * dim / self.bus_bytes.max(1)).div_ceil(m).max(1);
            let mut since_drip = 0;
            for j in 0..nt {
                let acc = p.acc_buf[tile_count % 2];
                tile_count += 1;
                let mut idx = 0;
                while li < live.len() && terms[live[li]].j == j {
                    let t = live[li];
                    let term = &terms[t];
                    let row = g.term_row(term.tap, term.block, nin);
                    // A 2:4 pair's second term: rows a_bstride further on.
                    let a_bstride = term.second.map_or(0, |(tap, block, _)| g.term_row(tap, block, nin) - row);
                    let (step, gstep) = g.steps();
                    let mm_of = |i: usize| ins::Matmul {
                        a: (band_at(b, i) + row) as u16,
                        m: m as u16,
                        acc: acc + (i * m) as u16,
                        accumulate: (idx > 0) as u8,
                        // The group's first swaps the tile in; the rest reuse it.
                        swap: (i == 0) as u8,
                        in_type: self.a_unsigned as u8,
                        a_stride: step as u8,
                        a_group: g.ow as u16,
                        a_gstride: gstep as u16,
                        a_bstride: a_bstride as u16,
                        ..Default::default()
                    };
                    // All but the group's last image: the same weights, no
                    // preload, no release.
                    let group = images_of(b).len();
                    for i in 0..group - 1 {
                        let mut deps = Deps::NONE;
                        s.need(band_item[b], &mut deps);
                        let mut mm = mm_of(i);
                        mm.deps = deps;
                        s.macs += (m * term.rows * term.n) as u64;
                        s.program.push(Instr::from(mm));
                    }
                    let mut mm = mm_of(group - 1);
                    let mut deps = Deps::NONE;
                    s.need(band_item[b], &mut deps);
                    // Preload the next tile (this band's or the next band's first).
                    let next = if li + 1 < live.len() {
                        Some((b, live[li + 1]))
                    } else if b + 1 < nb {
                        Some((b + 1, live[0]))
                    } else {
                        None
                    };
                    if let Some((nb, t1)) = next {
                        let term1 = &terms[t1];
                        s.need(item_of_term(&chunk_item, nb, t1), &mut deps);
                        let (wfmt, meta) = self.format(w_row(nb, t1));
                        (mm.preload, mm.w, mm.k, mm.n, mm.wfmt, mm.meta) =
                            (1, w_row(nb, t1), term1.rows as u16, term1.n as u16, wfmt, meta);
                    }
                    // Releases: this matmul is the last reader of a chunk (and,
                    // at the band's end, of the band).
                    let q = chunk_of(t);
                    let last_of_chunk = t == chunk_last[q];
                    let last_of_band = li + 1 == live.len();
                    let mut release_load = Vec::new();
                    if streaming && last_of_chunk {
                        let gq = b * nch + q;
                        if gq + 2 < nb * nch {
                            deps.push_prev = true;
                            release_load.push(((gq + 2) / nch, (gq + 2) % nch));
                        }
                    } else if !streaming && last_of_band && b + 2 < nb {
                        deps.push_prev = true;
                    }
                    mm.deps = deps;
                    s.macs += (m * term.rows * term.n) as u64;
                    s.program.push(Instr::from(mm));
                    // One LOAD per matmuls that take as long as its bus time:
                    // faster would fill the LOAD queue and stall dispatch.
                    since_drip += 1;
                    if since_drip >= drip_every {
                        s.drip(1);
                        since_drip = 0;
                    }
                    if li == 0 {
                        s.program.append(&mut pending_stores);
                    }
                    // Refill the freed buffers right behind their release.
                    for (b2, q2) in release_load {
                        chunk_item[b2][q2] = s.load_group(chunk_load(b2, q2), true);
                        if last_of_band && b + 2 < nb {
                            // Ordered after the chunk's wait: band b is free too.
                            band_item[b + 2] = s.load_group(band_load(b + 2), false);
                        }
                    }
                    if !streaming && last_of_band && b + 2 < nb {
                        band_item[b + 2] = s.load_group(band_load(b + 2), true);
                    }
                    li += 1;
                    idx += 1;
                }
                // Requantize tile j of every output row of the band.
                let segs = self.segments(rows);
                let last_tile = j + 1 == nt;
                let group = images_of(b).len();
                for (i, (si, &(px0, len))) in
                    (0..group).flat_map(|i| segs.iter().enumerate().map(move |seg| (i, seg))).collect::<Vec<_>>()
                {
                    let first = j == 0 && si == 0 && i == 0;
                    let last = last_tile && si + 1 == segs.len() && i + 1 == group;
                    s.program.push(Instr::from(ins::Requant {
                        deps: Deps { pop_next: first && b >= 2, push_next: last, ..Deps::NONE },
                        acc: acc + (i * m + px0) as u16,
                        rows: len as u16,
                        dst: p.out_buf[b % 2] + (i * p.out_rows + px0 * nt + j * len) as u16,
                        params: p.params + (2 * j) as u16,
                        out_type: if rq.unsigned { ins::ELEM_U8 } else { ins::ELEM_I8 },
                        zp: rq.zp as i16,
                        qmin: rq.qmin as i16,
                        qmax: rq.qmax as i16,
                    }));
                }
            }
            // Store the band: one contiguous DRAM run per segment.
            let segs = self.segments(rows);
            let group = images_of(b).len();
            for (i, image) in images_of(b).enumerate() {
                for (si, &(px0, len)) in segs.iter().enumerate() {
                    let (oy, ox) = (local(b) * p.rows + px0 / g.ow, px0 % g.ow);
                    let o = self.out;
                    let dram = o.addr + (image * o.image + ((oy + o.halo) * o.wp + o.halo + ox) * g.cout) as u64;
                    let (first, last) = (i == 0 && si == 0, i + 1 == group && si + 1 == segs.len());
                    pending_stores.push(Instr::from(ins::Store {
                        deps: Deps { pop_prev: first, push_prev: last && b + 2 < nb, ..Deps::NONE },
                        buf: ins::BUF_SPAD,
                        dram: dram as u32,
                        stride: g.cout as u32,
                        rows: len as u16,
                        cols: g.cout as u16,
                        addr: p.out_buf[b % 2] + (i * p.out_rows + px0 * nt) as u16,
                        col: 0,
                    }));
                }
            }
        }
        s.flush(usize::MAX);
        s.program.append(&mut pending_stores);
        // Every LOAD token is popped (the last item is needed by a matmul).
        debug_assert_eq!(s.popped, s.loads, "LOAD tokens left over");
        (s.program, s.macs)
    }

    /// The `wfmt` and `meta` of the weight tile at scratchpad row `row`.
    fn format(&self, row: u16) -> (u8, u16) {
        match self.wfmt {
            ins::WFMT_I8_S24 => (ins::WFMT_I8_S24, row + self.g.dim as u16),
            wfmt => (wfmt, 0),
        }
    }

    /// A band's output pixels as runs contiguous in DRAM: `(first pixel, count)`.
    fn segments(&self, rows: usize) -> Vec<(usize, usize)> {
        let ow = self.g.ow;
        if self.out.halo == 0 {
            return vec![(0, rows * ow)];
        }
        (0..rows).map(|r| (r * ow, ow)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::step_tests::{configs, run_step};
    use isa::HwConfig;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// A conv case: input `[1, cin, h, w]`, `cout` outputs, kernel, strides,
    /// pads `[t, l, b, r]`, dilations, groups, uint8 input / output.
    #[derive(Clone, Copy, Debug)]
    struct Case {
        cin: usize,
        cout: usize,
        hw: [usize; 2],
        kernel: [usize; 2],
        strides: [usize; 2],
        pads: [usize; 4],
        dil: [usize; 2],
        groups: usize,
        u8_in: bool,
        u8_out: bool,
        /// Weights pruned 2:4: in every group of 4 input channels at a
        /// kernel position, two zeros.
        pruned: bool,
        /// Images (`compile --batch`).
        batch: usize,
    }

    impl Case {
        fn out_hw(&self) -> [usize; 2] {
            let o = |i: usize| {
                (self.hw[i] + self.pads[i] + self.pads[i + 2] - self.dil[i] * (self.kernel[i] - 1) - 1)
                    / self.strides[i]
                    + 1
            };
            [o(0), o(1)]
        }

        fn text(&self, seed: u64) -> String {
            let mut s = StdRng::seed_from_u64(seed);
            let cg = self.cin / self.groups;
            let n = self.cout * cg * self.kernel[0] * self.kernel[1];
            // Small weights keep the output from saturating.
            let taps = self.kernel[0] * self.kernel[1];
            let weights: Vec<String> = (0..n)
                .map(|i| {
                    let (ci, tap) = (i / taps % cg, i % taps);
                    let v = s.gen_range(-15..=15);
                    // Keep channels 4q + {tap % 4, (tap + 1) % 4}: two of each 4.
                    let kept = (ci % 4 == tap % 4) || (ci % 4 == (tap + 1) % 4);
                    if self.pruned && !kept {
                        "0".to_string()
                    } else {
                        v.to_string()
                    }
                })
                .collect();
            let bias: Vec<String> = (0..self.cout).map(|_| s.gen_range(-1000..=1000).to_string()).collect();
            let ty = |u: bool| if u { "u8" } else { "i8" };
            let (zin, zout) = (if self.u8_in { 128 } else { 3 }, if self.u8_out { 120 } else { -5 });
            let [oh, ow] = self.out_hw();
            let [pt, pl, pb, pr] = self.pads;
            let batch = self.batch;
            format!(
                "model t\ninput x: {}[{batch}, {}, {}, {}] scale=0.05 zp={zin}\n\
                 conv c x -> y: {}[{batch}, {}, {oh}, {ow}] scale={} zp={zout} strides=({}, {}) pads=({pt}, {pl}, {pb}, {pr}) \
                 dilations=({}, {}) groups={}\n    weights: i8[{}, {cg}, {}, {}] = [{}]\n    w_scale = 0.01\n    \
                 bias = [{}]\noutput y\n",
                ty(self.u8_in),
                self.cin,
                self.hw[0],
                self.hw[1],
                ty(self.u8_out),
                self.cout,
                0.05 * (cg * self.kernel[0] * self.kernel[1]) as f32 / 4.0,
                self.strides[0],
                self.strides[1],
                self.dil[0],
                self.dil[1],
                self.groups,
                self.cout,
                self.kernel[0],
                self.kernel[1],
                weights.join(", "),
                bias.join(", "),
            )
        }
    }

    fn case(
        cin: usize,
        cout: usize,
        hw: [usize; 2],
        kernel: [usize; 2],
        strides: [usize; 2],
        pads: [usize; 4],
    ) -> Case {
        Case {
            cin,
            cout,
            hw,
            kernel,
            strides,
            pads,
            dil: [1, 1],
            groups: 1,
            u8_in: false,
            u8_out: false,
            pruned: false,
            batch: 1,
        }
    }

    fn band_configs() -> Vec<HwConfig> {
        let mut v = configs();
        v.push(HwConfig::default_16x16());
        v
    }

    /// Runs `c` on every config; on arrays whose tile reduction is a whole
    /// scratchpad row, asserts the band path took it (`banded`).
    fn check(c: Case, seed: u64, banded: impl Fn(&HwConfig) -> bool) {
        let text = c.text(seed);
        for cfg in band_configs() {
            let (macs, counted, code) = run_step(&text, &cfg);
            assert_eq!(macs, counted, "{}: {c:?}", cfg.name);
            let patterned = code.iter().any(|i| matches!(i, isa::instr::Instr::Matmul(m) if m.a_group != 0));
            let band_cfg = cfg.array.rows >= cfg.array.cols;
            assert_eq!(patterned, band_cfg && banded(&cfg), "{}: band path taken? {c:?}", cfg.name);
        }
    }

    #[test]
    fn plain_strided_and_asymmetric_convs() {
        let cases = [
            case(5, 7, [6, 6], [3, 3], [1, 1], [1; 4]),
            Case { u8_in: true, ..case(20, 18, [9, 11], [3, 3], [2, 2], [1; 4]) },
            case(6, 5, [5, 9], [1, 7], [1, 1], [0, 3, 0, 3]),
            Case { u8_out: true, ..case(4, 6, [9, 4], [7, 1], [1, 1], [2, 0, 4, 0]) },
            case(9, 10, [8, 7], [3, 3], [2, 1], [1, 0, 2, 1]),
            case(3, 8, [20, 20], [7, 7], [2, 2], [3; 4]),
            Case { dil: [2, 2], ..case(6, 6, [9, 9], [3, 3], [1, 1], [2; 4]) },
            case(17, 9, [5, 6], [1, 1], [1, 1], [0; 4]),
            case(17, 9, [7, 6], [1, 1], [2, 2], [0; 4]),
        ];
        for (i, c) in cases.into_iter().enumerate() {
            check(c, i as u64 + 1, |_| true);
        }
    }

    #[test]
    fn depthwise_and_grouped_convs() {
        let dw = |ch: usize, s: usize| Case { groups: ch, ..case(ch, ch, [9, 10], [3, 3], [s, s], [1; 4]) };
        check(dw(20, 1), 1, |_| true);
        check(Case { u8_in: true, u8_out: true, ..dw(7, 2) }, 2, |_| true);
        // Two groups of 8 channels: whole blocks on 4- and 8-wide arrays only.
        let grouped = Case { groups: 2, ..case(16, 16, [6, 7], [3, 3], [1, 1], [1; 4]) };
        check(grouped, 3, |cfg| 8 % cfg.array.cols == 0);
        // Channel multiplier 2: not depthwise, not aligned: the im2col GEMM.
        check(Case { groups: 3, ..case(3, 6, [5, 5], [3, 3], [1, 1], [1; 4]) }, 4, |_| false);
    }

    /// Few input channels: the kernel row's windows are packed (overlapping
    /// LOAD rows, stride < row), and the result is still exact.
    #[test]
    fn few_channel_convs_pack_the_kernel_row() {
        for (i, c) in [
            case(3, 20, [23, 21], [7, 7], [2, 2], [3; 4]),
            Case { u8_in: true, ..case(3, 40, [17, 16], [3, 3], [2, 2], [1, 0, 1, 1]) },
            case(1, 5, [9, 8], [3, 5], [1, 1], [1, 2, 1, 2]),
        ]
        .into_iter()
        .enumerate()
        {
            check(c, 30 + i as u64, |_| true);
            let cfg = HwConfig::default_16x16();
            let (_, _, code) = run_step(&c.text(30 + i as u64), &cfg);
            let packed = code.iter().any(|i| matches!(i, isa::instr::Instr::Load(l) if l.stride < l.cols as u32));
            assert!(packed, "{c:?}: windows not packed");
        }
    }

    /// Maps wider than one band and weights that stream in chunks (the 4x4's
    /// scratchpad is 4096 rows, its accumulator 256).
    #[test]
    fn several_bands_and_streamed_weights() {
        check(case(24, 20, [40, 30], [3, 3], [1, 1], [1; 4]), 5, |_| true);
        check(case(40, 36, [12, 12], [5, 5], [1, 1], [2; 4]), 6, |_| true);
        check(Case { groups: 40, ..case(40, 40, [33, 20], [3, 3], [1, 1], [1; 4]) }, 7, |_| true);
    }

    /// DRAM bytes of a program's weight-chunk LOADs (superblock rows: a
    /// stride wider than the row, unlike band and window loads) and of the
    /// distinct weight rows among them.
    fn weight_bytes(code: &[isa::instr::Instr]) -> (usize, usize) {
        let mut rows = std::collections::BTreeSet::new();
        let mut bytes = 0;
        for i in code {
            if let isa::instr::Instr::Load(l) = i {
                if l.buf == isa::instr::BUF_SPAD && l.stride > l.cols as u32 {
                    bytes += l.rows as usize * l.cols as usize;
                    rows.extend((0..l.rows as u32).map(|r| l.dram + r * l.stride));
                }
            }
        }
        let cols = code.iter().find_map(|i| match i {
            isa::instr::Instr::Load(l) if l.buf == isa::instr::BUF_SPAD && l.stride > l.cols as u32 => Some(l.cols),
            _ => None,
        });
        (bytes, rows.len() * cols.unwrap_or(0) as usize)
    }

    /// A batch under streamed weights (`compile --batch`): the images pass
    /// each band together, so each weight chunk loads once per band for the
    /// whole batch — the batch's weight DRAM bytes are a single image's —
    /// and every image's output is exact (`run_step` checks the batch
    /// against the interpreter).
    #[test]
    fn a_batch_loads_streamed_weights_once_per_band() {
        // 36 KiB of weights through the 4x4's 16 KiB scratchpad; 576 KiB
        // (ResNet-18's 256-channel 3x3 at 7x7) through the 16x16's 256 KiB.
        for (cfg, c) in [
            (HwConfig::tiny_4x4(), case(64, 64, [4, 4], [3, 3], [1, 1], [1; 4])),
            (HwConfig::default_16x16(), case(256, 256, [7, 7], [3, 3], [1, 1], [1; 4])),
        ] {
            let (_, _, one) = run_step(&c.text(41), &cfg);
            let (single, image) = weight_bytes(&one);
            let spad_bytes = cfg.spad_rows() as usize * cfg.array.cols as usize;
            assert!(image > spad_bytes && single == image, "{single} bytes loaded of a {image}-byte image");
            for batch in [2, 3, 4] {
                let (macs, counted, code) = run_step(&Case { batch, ..c }.text(41), &cfg);
                assert_eq!(macs, counted);
                let (bytes, _) = weight_bytes(&code);
                // Before the images shared a band: `batch` times as many.
                assert_eq!(bytes, single, "{}: batch {batch}: weight bytes", cfg.name);
            }
        }
    }

    /// 65,536 output pixels and more: each band is its own `matmul` M, so
    /// the GEMM's 16-bit M is no wall (where an output row is wider than
    /// half the accumulator, the im2col GEMM runs in pieces of whole rows).
    #[test]
    fn feature_maps_of_65536_pixels_and_more() {
        let fits = |cfg: &HwConfig| (cfg.acc_rows() as usize - 2 * 6usize.div_ceil(cfg.array.cols as usize)) / 2 >= 257;
        check(case(5, 6, [256, 257], [3, 3], [1, 1], [1; 4]), 8, fits);
    }

    /// The stream image unpacks to the weights for every mapping (what the
    /// program's recorded graph relies on), and refuses a wrong length.
    #[test]
    fn stream_images_unpack_to_the_weights() {
        use super::{unpack_weights, Mapping, TileMap};
        for (w_shape, groups, dim, packed) in [
            ([7, 5, 3, 3], 1, 4, false),
            ([20, 3, 7, 7], 1, 16, true),
            ([20, 1, 3, 3], 20, 16, false),
            ([16, 8, 3, 3], 2, 4, false),
            ([3, 17, 1, 1], 1, 16, false),
        ] {
            let n: usize = w_shape.iter().product();
            let w: Vec<i8> = (0..n).map(|i| (i as i32 * 37 % 255 - 127) as i8).collect();
            let map = super::mapping_of(w_shape, groups, dim, packed).unwrap();
            assert_eq!(map == Mapping::Packed, packed);
            let tiles = TileMap { w_shape, dim, map, int4: false };
            let image = tiles.pack(&tiles.terms(), &w);
            assert_eq!(unpack_weights(&image, w_shape, groups, dim, packed, false), Some(w.clone()), "{w_shape:?}");
            assert_eq!(unpack_weights(&image[1..], w_shape, groups, dim, packed, false), None);
            // int4 (values -8..=7): half the image rows, two weights a byte.
            let w4: Vec<i8> = w.iter().map(|v| v >> 4).collect();
            let tiles = TileMap { int4: true, ..tiles };
            let image4 = tiles.pack(&tiles.terms(), &w4);
            assert_eq!(2 * image4.len(), image.len(), "{w_shape:?}");
            assert_eq!(unpack_weights(&image4, w_shape, groups, dim, packed, true), Some(w4), "{w_shape:?}");
        }
    }

    /// Random convolutions: kernels 1..=7, strides 1..=2, any pads below the
    /// kernel, channels not multiples of the array, depthwise, uint8.
    /// 2:4-pruned convs on arrays with 2:4-sparse PEs: the band path pairs
    /// taps into i8s24 tiles (one or several channel blocks, a partial
    /// last block, strides, an odd tap left over), exact against the
    /// interpreter, fewer MACs than the dense tiles.
    #[test]
    fn pruned_convs_run_on_2_4_tiles() {
        let cases = [
            case(16, 20, [8, 8], [3, 3], [1, 1], [1; 4]),
            case(32, 16, [6, 7], [3, 3], [2, 1], [1, 0, 1, 1]),
            Case { u8_in: true, ..case(24, 9, [5, 5], [3, 3], [1, 1], [1; 4]) },
            case(8, 8, [6, 6], [1, 2], [1, 1], [0; 4]),
            case(12, 5, [9, 9], [5, 5], [2, 2], [2; 4]),
        ];
        for (i, c) in cases.into_iter().enumerate() {
            let c = Case { pruned: true, ..c };
            let text = c.text(200 + i as u64);
            for mut cfg in [HwConfig::tiny_4x4(), HwConfig::default_16x16()] {
                let (dense_macs, _, _) = run_step(&text, &cfg);
                cfg.array.sparsity_2_4 = true;
                let (macs, counted, code) = run_step(&text, &cfg);
                assert_eq!(macs, counted, "{}: {c:?}", cfg.name);
                let sparse = code.iter().any(|i| matches!(i, isa::instr::Instr::Matmul(m) if m.a_bstride != 0));
                assert!(sparse, "{}: 2:4 tiles for {c:?}", cfg.name);
                assert!(macs < dense_macs, "{}: {macs} of {dense_macs} MACs", cfg.name);
            }
        }
    }

    #[test]
    fn random_convs() {
        let mut s = StdRng::seed_from_u64(12345);
        for i in 0..12 {
            let mut r = |n: usize| s.gen_range(0..n);
            let kernel = [1 + r(7), 1 + r(7)];
            let strides = [1 + r(2), 1 + r(2)];
            let pads = [r(kernel[0]), r(kernel[1]), r(kernel[0]), r(kernel[1])];
            let hw = [kernel[0] + r(9), kernel[1] + r(9)];
            let depthwise = r(4) == 0;
            let cin = 1 + r(24);
            let cout = if depthwise { cin } else { 1 + r(24) };
            let c = Case {
                groups: if depthwise { cin } else { 1 },
                u8_in: r(2) == 0,
                u8_out: r(2) == 0,
                ..case(cin, cout, hw, kernel, strides, pads)
            };
            check(c, 100 + i, |_| true);
        }
    }
}
