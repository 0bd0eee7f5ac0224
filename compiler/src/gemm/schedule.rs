//! One GEMM job, `C[M,N] = A[M,K] x B[K,N]`, emitted as a double-buffered
//! instruction stream. The dataflow is chosen here, once
//! (`Dataflow::for_config`); the weight-stationary schedule:
//! - A is read in blocks of `mt` rows and all of K; the scratchpad holds a
//!   block column-blocked by the tile's `k`, so k-tile `i` is `mt`
//!   consecutive rows.
//! - B comes packed (`PackedWeights`) as one stripe per n-tile, one LOAD
//!   per stripe; when two stripes do not fit beside A (long K), per piece
//!   of a stripe: K is split across accumulator passes, each piece a step
//!   that accumulates into the same accumulator tile, and pieces holding
//!   only zero tiles are never loaded.
//! - A *step* is one (m-block, n-tile) pair: one MATMUL per live k-tile,
//!   each swapping in the weights the previous one preloaded and preloading
//!   the next tile's, so weight loading hides under streaming and tiles
//!   stream back to back; then a REQUANT (or, for int32 output, nothing)
//!   and a STORE.
//! - Every buffer (A block, B stripe, parameters, accumulator tile, output
//!   tile) is double-buffered and guarded by dependency tokens: the LOAD of
//!   step s+2 waits for step s's release, the REQUANT of step s waits for the
//!   STORE of step s-2.

use super::weights::{PackedWeights, TileShape, WeightChoice};
use super::LowerError;
use isa::config::Dataflow as ConfigDataflow;
use isa::instr::{self as ins, Deps, Instr};
use isa::HwConfig;

/// Gathers a block of A into the scratchpad: given the block's first row,
/// its row count and the scratchpad row of its buffer, the LOADs that
/// write A's row `r0 + i`, column `c` to scratchpad row
/// `base + (c / tile.k) * rows + i`, column `c % tile.k` (column-blocked by
/// the weight tile's reduction size).
pub type AGather<'a> = &'a dyn Fn(usize, usize, u16) -> Vec<Instr>;

/// Where A comes from.
#[derive(Clone, Copy)]
pub enum ASource<'a> {
    /// A row-major matrix: row `r` (K bytes) at `addr + r * stride`.
    Matrix { addr: u64, stride: u64 },
    /// Gathered by a closure (e.g. im2col rows of a convolution, straight
    /// from the feature map).
    Gather(AGather<'a>),
}

/// What the GEMM writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmOut {
    /// The raw int32 accumulators.
    Int32,
    /// Requantized 8-bit values (`unsigned`: uint8) with the per-column
    /// bias and scale packed by `pack_params` at `params_addr`.
    Int8 { params_addr: u64, zero_point: i32, qmin: i32, qmax: i32, unsigned: bool },
}

/// How rows of C map to DRAM: row `r` starts at
/// `addr + (r / group) * group_stride + (r % group) * row_stride`, so an
/// image stored inside a padded buffer (a group per image row) works too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutRows {
    pub addr: u64,
    pub row_stride: u64,
    pub group: usize,
    pub group_stride: u64,
}

impl OutRows {
    /// Plain row-major rows.
    pub fn dense(addr: u64, row_stride: u64) -> OutRows {
        OutRows { addr, row_stride, group: usize::MAX, group_stride: 0 }
    }

    /// Splits rows `[r0, r0 + n)` into runs that are affine in DRAM.
    fn runs(&self, r0: usize, n: usize) -> Vec<(u64, usize)> {
        let mut out = Vec::new();
        let mut r = r0;
        while r < r0 + n {
            let in_group = r % self.group;
            let len = (self.group - in_group).min(r0 + n - r);
            let g = (r / self.group) as u64;
            out.push((self.addr + g * self.group_stride + in_group as u64 * self.row_stride, len));
            r += len;
        }
        out
    }
}

/// Everything one GEMM needs, with its operands already in device memory.
#[derive(Clone, Copy)]
pub struct GemmJob<'a> {
    /// Rows of A and C.
    pub m: usize,
    pub a: ASource<'a>,
    /// A holds uint8 rather than int8 values.
    pub a_unsigned: bool,
    /// B (K and N are its), placed at `weights_addr`.
    pub weights: &'a PackedWeights,
    pub weights_addr: u64,
    pub out: GemmOut,
    pub c: OutRows,
}

/// What a GEMM's weights will be used for: enough to choose their packing
/// (and with it the schedule).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmUse {
    /// Rows of A.
    pub m: usize,
    /// A holds uint8 values.
    pub a_unsigned: bool,
    /// The output is the raw int32 accumulators.
    pub int32_out: bool,
}

/// The dataflow of a configuration: the one place a schedule is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dataflow {
    /// Weights stay in the array while A streams through (ISA.md §1).
    WeightStationary(TileShape),
}

impl Dataflow {
    pub fn for_config(cfg: &HwConfig) -> Result<Dataflow, LowerError> {
        match cfg.array.dataflow {
            // A scratchpad row holds `cols` values, so a tile's reduction is
            // at most `cols` long however many rows the array has.
            ConfigDataflow::WeightStationary => {
                let (rows, cols) = (cfg.array.rows as usize, cfg.array.cols as usize);
                Ok(Dataflow::WeightStationary(TileShape { k: rows.min(cols), n: cols }))
            }
            ConfigDataflow::OutputStationary => Err(LowerError::Dataflow(
                "the output-stationary dataflow is not implemented by the compiler (weight-stationary only)".into(),
            )),
        }
    }

    /// The weight tile the packing must produce.
    pub fn tile_shape(self) -> TileShape {
        match self {
            Dataflow::WeightStationary(t) => t,
        }
    }

    /// Packs B `[k, n]` for `usage`, choosing the schedule that will run
    /// it: streaming (`super::streaming`) when A has at most a few rows —
    /// the array then waits on weight bytes, not on MACs — and the
    /// streaming schedule can run the job; weight-stationary otherwise.
    pub fn pack(self, b: &[i8], k: usize, n: usize, usage: GemmUse, cfg: &HwConfig) -> PackedWeights {
        self.pack_with(b, k, n, usage, cfg, WeightChoice::Auto)
    }

    /// [`Self::pack`] with the formats `choice` allows: weight-stationary
    /// weights are 2:4-sparse when `choice` and the config allow it and B
    /// is exactly 2:4, dense int8 otherwise.
    pub fn pack_with(
        self,
        b: &[i8],
        k: usize,
        n: usize,
        usage: GemmUse,
        cfg: &HwConfig,
        choice: WeightChoice,
    ) -> PackedWeights {
        if Self::streams(k, n, usage, cfg) {
            let tile = super::streaming::tile_shape(cfg);
            if choice.sparse_stream() && PackedWeights::sparse_stream_pays(b, k, n, tile) {
                return PackedWeights::stream_sparse_i8(b, k, n, tile);
            }
            return PackedWeights::stream_i8(b, k, n, tile);
        }
        self.pack_stationary(b, k, n, cfg, choice)
    }

    /// Weight-stationary weights: 2:4 when allowed and exact, else dense.
    pub fn pack_stationary(self, b: &[i8], k: usize, n: usize, cfg: &HwConfig, choice: WeightChoice) -> PackedWeights {
        let sparse = || PackedWeights::sparse24(b, k, n, self.tile_shape(), cfg.array.cols as usize);
        match choice.sparse24(cfg).then(sparse).flatten() {
            Some(w) => w,
            None => PackedWeights::dense_i8(b, k, n, self.tile_shape()),
        }
    }

    /// Whether `usage` of B `[k, n]` streams. Loading A^T costs one cycle
    /// per row of A per reduction index, weights `k n / bytes_per_cycle`:
    /// stream when the former is under a tenth of the latter.
    fn streams(k: usize, n: usize, usage: GemmUse, cfg: &HwConfig) -> bool {
        let weight_cycles = (k * n) as u64 / cfg.dram.bytes_per_cycle as u64;
        !usage.a_unsigned
            && usage.int32_out
            && 10 * (usage.m * k) as u64 <= weight_cycles
            && super::streaming::StreamPlan::new(usage.m, k, n, cfg).is_ok()
    }

    /// Emits `job`. The stream starts and ends with every queue idle and
    /// every token counter back where it was; it has no FINISH.
    pub fn emit(self, job: &GemmJob<'_>, cfg: &HwConfig) -> Result<Vec<Instr>, LowerError> {
        if job.weights.format().is_streamed() {
            return super::streaming::emit(job, cfg);
        }
        match self {
            Dataflow::WeightStationary(tile) => {
                if job.weights.tile_shape() != tile {
                    return Err(job.shape_error("weights are packed for another tile shape"));
                }
                emit_weight_stationary(job, cfg)
            }
        }
    }

    /// Rows of A per block the schedule uses for `job`'s shape.
    pub fn block_rows(self, m: usize, weights: &PackedWeights, cfg: &HwConfig) -> Result<usize, LowerError> {
        Ok(Plan::new(m, weights, cfg)?.mt)
    }
}

impl GemmJob<'_> {
    fn shape_error(&self, why: &str) -> LowerError {
        LowerError::Shape { m: self.m, k: self.weights.k(), n: self.weights.n(), why: why.to_string() }
    }
}

/// Scratchpad and accumulator placement of one weight-stationary schedule.
#[derive(Clone, Copy, Debug)]
struct Plan {
    mt: usize,
    mb: usize,
    /// k-tiles per piece of a stripe: all of them, unless two stripes
    /// do not fit beside A, then K is split across accumulator passes.
    kp: usize,
    a_buf: [u16; 2],
    b_buf: [u16; 2],
    o_buf: [u16; 2],
    acc_buf: [u16; 2],
    param_buf: [u16; 2],
}

impl Plan {
    fn new(m: usize, w: &PackedWeights, cfg: &HwConfig) -> Result<Plan, LowerError> {
        let (k, n, kt) = (w.k(), w.n(), w.k_tiles());
        // Scratchpad rows of a k-tile of B and of a row of A.
        let (tile_k, ab) = (w.tile_pitch(), w.a_blocks());
        let spad = cfg.spad_rows() as usize;
        let accr = cfg.acc_rows() as usize;
        let too_large = |why: String| LowerError::TooLarge { m, k, n, why };
        // Rows: 2 A blocks (mt * kt), 2 B pieces (kp * tile_k), 2 output
        // tiles (mt). Whole stripes when they fit (one LOAD of at most
        // 65,535 rows); else the largest pieces that leave A blocks of
        // min(M, 16) rows (at least 1).
        let a_room = |mt: usize| 2 * (ab + 1) * mt;
        let kp = if 2 * kt * tile_k + a_room(1) <= spad && kt * tile_k <= 65535 {
            kt
        } else {
            let piece = |mt: usize| spad.saturating_sub(a_room(mt)) / (2 * tile_k);
            let kp = if piece(m.min(16)) > 0 { piece(m.min(16)) } else { piece(1) };
            let kp = kp.min(65535 / tile_k).min(kt);
            if kp == 0 {
                return Err(too_large(format!(
                    "an A block of one row and K = {k} ({} scratchpad rows twice) leaves no room for weights in \
                     {spad} rows",
                    ab + 1
                )));
            }
            // Even pieces.
            kt.div_ceil(kt.div_ceil(kp))
        };
        let b_rows = kp * tile_k;
        let spare = spad - 2 * b_rows;
        let mut mt = (spare / (2 * (ab + 1))).min((accr.saturating_sub(4)) / 2).min(m).min(256);
        if mt == 0 {
            return Err(too_large(format!("the accumulator's {accr} rows leave no room for a tile")));
        }
        // Keep every block the same size when M allows it.
        let mb = m.div_ceil(mt);
        mt = m.div_ceil(mb);
        let a_rows = mt * ab;
        let r = |x: usize| x as u16;
        Ok(Plan {
            mt,
            mb,
            kp,
            a_buf: [0, r(a_rows)],
            b_buf: [r(2 * a_rows), r(2 * a_rows + b_rows)],
            o_buf: [r(2 * a_rows + 2 * b_rows), r(2 * a_rows + 2 * b_rows + mt)],
            acc_buf: [0, r(mt)],
            param_buf: [r(2 * mt), r(2 * mt + 2)],
        })
    }
}

/// The LOADs of A rows `[r0, r0 + rows)` of a row-major matrix into the
/// scratchpad at `base`, column-blocked by `tile_k`: one LOAD when the
/// tile is a whole scratchpad row wide (the DMA blocks by rows; one per
/// 65,535 columns), else one per k-tile.
fn matrix_block(
    (addr, stride): (u64, u64),
    (r0, rows): (usize, usize),
    k: usize,
    tile_k: usize,
    (base, spad_width): (u16, usize),
) -> Vec<Instr> {
    let first = addr + r0 as u64 * stride;
    let piece = |c0: usize, cols: usize, at: u16| {
        Instr::from(ins::Load {
            buf: ins::BUF_SPAD,
            dram: (first + c0 as u64) as u32,
            stride: stride as u32,
            rows: rows as u16,
            cols: cols as u16,
            addr: at,
            ..Default::default()
        })
    };
    if tile_k == spad_width {
        // As few LOADs as the 16-bit column count allows, whole k-tiles each.
        let span = (65535 / tile_k) * tile_k;
        return (0..k.div_ceil(span))
            .map(|x| piece(x * span, span.min(k - x * span), base + (x * span / tile_k * rows) as u16))
            .collect();
    }
    (0..k.div_ceil(tile_k)).map(|i| piece(i * tile_k, tile_k.min(k - i * tile_k), base + (i * rows) as u16)).collect()
}

/// One step of the weight-stationary schedule: piece `piece` of stripe
/// `j` against m-block `mb`, part of pair `q`.
struct Step {
    q: usize,
    mb: usize,
    j: usize,
    piece: usize,
    /// The live k-tiles of the piece.
    tiles: Vec<usize>,
    /// The pair's first and last step.
    first: bool,
    last: bool,
}

fn emit_weight_stationary(job: &GemmJob<'_>, cfg: &HwConfig) -> Result<Vec<Instr>, LowerError> {
    let w = job.weights;
    let (m, k, n) = (job.m, w.k(), w.n());
    if m == 0 || k == 0 || n == 0 {
        return Err(job.shape_error("every dimension must be at least 1"));
    }
    // M is unbounded: A streams in blocks of at most 256 rows, each with
    // its own LOADs and STOREs; K is split into pieces of at most 65,535
    // rows when needed. N is bounded by the STORE's column count.
    if n > 65535 {
        return Err(job.shape_error("N above 65535 is not supported"));
    }
    let p = Plan::new(m, w, cfg)?;
    let nt = w.n_tiles();
    let tile_k = w.a_block();
    let spad_width = cfg.array.cols as usize;
    let int8_out = matches!(job.out, GemmOut::Int8 { .. });
    let param_addr = |params: u64, j: usize| params + (j * 2 * spad_width * 4) as u64;
    let m_rows = |mb: usize| p.mt.min(m - mb * p.mt);

    // A *pair* (m-block, n-tile) owns an accumulator tile; a *step* is one
    // piece of its stripe (the whole stripe unless K is split). Pieces
    // without a live k-tile are skipped, so the MACs are the packing's.
    let live: Vec<Vec<usize>> = (0..nt).map(|j| w.live_k_tiles(j)).collect();
    let pieces_of = |j: usize| -> Vec<usize> {
        let mut ps: Vec<usize> = live[j].iter().map(|&i| i / p.kp).collect();
        ps.dedup();
        ps
    };
    let pieces: Vec<Vec<usize>> = (0..nt).map(pieces_of).collect();
    let pairs = p.mb * nt;
    let mut steps: Vec<Step> = Vec::new();
    for q in 0..pairs {
        let (mb, j) = (q / nt, q % nt);
        let ps = &pieces[j];
        for (x, &piece) in ps.iter().enumerate() {
            let tiles = live[j].iter().copied().filter(|&i| i / p.kp == piece).collect();
            steps.push(Step { q, mb, j, piece, tiles, first: x == 0, last: x + 1 == ps.len() });
        }
    }
    let n_steps = steps.len();
    let steps_per_block = n_steps / p.mb;
    let piece_tiles = |piece: usize| piece * p.kp..((piece + 1) * p.kp).min(w.k_tiles());

    let mut load = Vec::new();
    let mut code: Vec<Instr> = Vec::new();

    // LOAD packages: package s holds what step s needs, and is released by
    // step s's end; package s >= 2 waits for step s-2's release.
    let a_load = |mb: usize| -> Vec<Instr> {
        let (r0, base) = (mb * p.mt, p.a_buf[mb % 2]);
        match job.a {
            ASource::Gather(g) => g(r0, m_rows(mb), base),
            ASource::Matrix { addr, stride } => {
                matrix_block((addr, stride), (r0, m_rows(mb)), k, tile_k, (base, spad_width))
            }
        }
    };
    // A(mb + 1) rides in the package of block mb's second step, or in
    // block mb + 1's first when a block has one step (its buffer is free
    // only after the release of block mb - 1's last step).
    let a_package = |mb: usize| {
        if steps_per_block >= 2 {
            (mb - 1) * steps_per_block + 1
        } else {
            mb * steps_per_block
        }
    };
    for (s, st) in steps.iter().enumerate() {
        let first = load.len();
        if s == 0 {
            load.extend(a_load(0).into_iter().map(|l| (l, false)));
        }
        if steps_per_block == 1 && st.mb > 0 {
            load.extend(a_load(st.mb).into_iter().map(|l| (l, false)));
        }
        let b_load = w.stripe_load(st.j, piece_tiles(st.piece), job.weights_addr, p.b_buf[s % 2]);
        load.push((Instr::from(b_load), false));
        if let (GemmOut::Int8 { params_addr, .. }, true) = (job.out, st.last) {
            load.push((
                Instr::from(super::load_params(
                    param_addr(params_addr, st.j),
                    2,
                    spad_width,
                    p.param_buf[s % 2],
                    Deps::NONE,
                )),
                false,
            ));
        }
        if s >= 2 {
            load[first].0.deps_mut().pop_next = true;
        }
        load.last_mut().expect("package").0.deps_mut().push_next = true;
        if steps_per_block >= 2 && st.mb + 1 < p.mb && s == a_package(st.mb + 1) {
            // A prefetch: follows the package's signal, guarded by its wait.
            load.extend(a_load(st.mb + 1).into_iter().map(|l| (l, true)));
        }
    }

    // COMPUTE and STORE, interleaved in program order by step. The k-tiles
    // each step streams come from the packing (all-zero tiles skipped).
    let at = |s: usize| (piece_tiles(steps[s].piece).start, p.b_buf[s % 2]);
    let mut store = Vec::new();
    for (s, st) in steps.iter().enumerate() {
        let (mb, j, q) = (st.mb, st.j, st.q);
        let rows = m_rows(mb) as u16;
        if s == 0 {
            code.push(w.tile(st.tiles[0], j, at(0)).ldw(Deps { pop_prev: true, ..Deps::NONE }));
        }
        // Int8: the REQUANT of the pair's last step releases the package
        // (it reads the parameters) and hands the tile to STORE.
        let requants = int8_out && st.last;
        for (idx, &i) in st.tiles.iter().enumerate() {
            let (a_off, a_bstride) = w.tile_input(i, rows as usize);
            let mut mm = ins::Matmul {
                a: p.a_buf[mb % 2] + a_off as u16,
                a_bstride,
                m: rows,
                acc: p.acc_buf[q % 2],
                accumulate: !(st.first && idx == 0) as u8,
                swap: 1,
                in_type: job.a_unsigned as u8,
                ..Default::default()
            };
            if let Some(&i1) = st.tiles.get(idx + 1) {
                w.tile(i1, j, at(s)).preload_into(&mut mm);
            } else if s + 1 < n_steps {
                // Preload the next step's first tile: take its package's token.
                w.tile(steps[s + 1].tiles[0], steps[s + 1].j, at(s + 1)).preload_into(&mut mm);
                mm.deps.pop_prev = true;
            }
            if !int8_out && st.first && idx == 0 && q >= 2 {
                // The STORE of pair q-2 must have read this accumulator tile.
                mm.deps.pop_next = true;
            }
            if !requants && idx + 1 == st.tiles.len() {
                // Release the package (inputs consumed); the pair's last
                // step hands the tile to STORE.
                mm.deps.push_prev = s + 2 < n_steps;
                mm.deps.push_next = st.last;
            }
            code.push(Instr::from(mm));
        }
        if !st.last {
            store.push(Vec::new());
            continue;
        }
        let (src_buf, src_addr, elem) = if let GemmOut::Int8 { zero_point, qmin, qmax, unsigned, .. } = job.out {
            code.push(Instr::from(ins::Requant {
                deps: Deps { pop_next: q >= 2, push_prev: s + 2 < n_steps, push_next: true, ..Deps::NONE },
                acc: p.acc_buf[q % 2],
                rows,
                dst: p.o_buf[q % 2],
                params: p.param_buf[s % 2],
                out_type: if unsigned { ins::ELEM_U8 } else { ins::ELEM_I8 },
                zp: zero_point as i16,
                qmin: qmin as i16,
                qmax: qmax as i16,
            }));
            (ins::BUF_SPAD, p.o_buf[q % 2], 1)
        } else {
            (ins::BUF_ACC, p.acc_buf[q % 2], 4)
        };
        let runs = job.c.runs(mb * p.mt, rows as usize);
        let last = runs.len() - 1;
        let mut step_stores = Vec::new();
        let mut offset = 0u16;
        for (r, (dram, len)) in runs.into_iter().enumerate() {
            step_stores.push(Instr::from(ins::Store {
                deps: Deps { pop_prev: r == 0, push_prev: r == last && q + 2 < pairs, ..Deps::NONE },
                buf: src_buf,
                dram: (dram + (j * w.tile_shape().n * elem) as u64) as u32,
                stride: job.c.row_stride as u32,
                rows: len as u16,
                cols: w.tile_cols(j) as u16,
                addr: src_addr + offset,
                col: 0,
            }));
            offset += len as u16;
        }
        store.push(step_stores);
    }
    // The last two steps' releases have no consumer and are not pushed, so
    // no token is left over.

    // Program order: the LOAD stream runs ahead by up to two packages; the
    // dispatcher is in order, so interleave by step to keep queues fed.
    let mut program = Vec::with_capacity(load.len() + code.len() + 2 * store.len());
    let per_step_compute = |s: usize| steps[s].tiles.len() + (int8_out && steps[s].last) as usize;
    let mut li = load.into_iter().peekable();
    let mut ci = code.into_iter();
    let mut si = store.into_iter();
    let mut loads_pushed = 0;
    for s in 0..n_steps {
        // Dispatch loads up to and including package s + 1.
        while loads_pushed < (s + 2).min(n_steps) {
            match li.next() {
                Some((l, _)) => {
                    if l.deps().push_next {
                        loads_pushed += 1;
                    }
                    program.push(l);
                }
                None => break,
            }
        }
        // An A prefetch rides right after a package's signal.
        while li.peek().is_some_and(|(_, prefetch)| *prefetch) {
            program.push(li.next().expect("peeked").0);
        }
        let n_compute = per_step_compute(s) + (s == 0) as usize;
        program.extend(ci.by_ref().take(n_compute));
        program.extend(si.next().into_iter().flatten());
    }
    program.extend(li.map(|(l, _)| l));
    program.extend(ci);
    program.extend(si.flatten());
    Ok(program)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::WeightFormat;

    /// A 3x4 GEMM job on 7x5 weights, hand-placed, on a non-square array
    /// whose tile is narrower than a scratchpad row: every instruction is
    /// legal, the int32 result is the plain product, the MACs the packing's.
    #[test]
    fn one_job_is_legal_and_correct_on_the_model() {
        let mut cfg = HwConfig::tiny_4x4();
        (cfg.array.rows, cfg.array.cols) = (2, 4);
        cfg.validate().unwrap();
        let dataflow = Dataflow::for_config(&cfg).unwrap();
        assert_eq!(dataflow.tile_shape(), TileShape { k: 2, n: 4 });
        let (m, k, n) = (3, 7, 5);
        let b: Vec<i8> = (0..k * n).map(|i| (i as i8 % 7) - 3).collect();
        let a: Vec<u8> = (0..m * k).map(|i| (i * 37 % 256) as u8).collect();
        let weights = PackedWeights::dense_i8(&b, k, n, dataflow.tile_shape());
        let (_, c) = run_int32_job(&cfg, dataflow, &weights, &a, m, k);
        for r in 0..m {
            for col in 0..n {
                let want: i32 = (0..k).map(|kk| a[r * k + kk] as i32 * b[kk * n + col] as i32).sum();
                let at = (r * n + col) * 4;
                assert_eq!(i32::from_le_bytes(c[at..at + 4].try_into().unwrap()), want, "C[{r}][{col}]");
            }
        }
    }

    /// Runs an int32-output GEMM of uint8 A `[m, k]` by `weights` on the
    /// model alone: its counters (MACs checked against the weights') and
    /// C's little-endian bytes.
    fn run_int32_job(
        cfg: &HwConfig,
        dataflow: Dataflow,
        weights: &PackedWeights,
        a: &[u8],
        m: usize,
        k: usize,
    ) -> (isa::Counters, Vec<u8>) {
        let n = weights.n();
        let (a_off, c_off) = (8192, 16384);
        let job = GemmJob {
            m,
            a: ASource::Matrix { addr: a_off, stride: k as u64 },
            a_unsigned: true,
            weights,
            weights_addr: 0,
            out: GemmOut::Int32,
            c: OutRows::dense(c_off, (n * 4) as u64),
        };
        let code = dataflow.emit(&job, cfg).unwrap();
        let mut data = weights.bytes().to_vec();
        data.resize(c_off as usize + m * n * 4, 0);
        data[a_off as usize..a_off as usize + a.len()].copy_from_slice(a);
        let (mut d, counters, data_addr) = crate::test_run::run_alone(cfg, code, data);
        assert_eq!(counters.get(isa::Counter::Macs), weights.macs(m));
        let c = d.read_mem(data_addr + c_off, m * n * 4).unwrap();
        (counters, c)
    }

    /// 2:4 weights on 2:4 tiles, on arrays whose tiles read one and two
    /// scratchpad rows per input: the int32 result is the plain product, the
    /// MACs half the dense tiles' (the kept rows), fewer cycles.
    #[test]
    fn sparse_2_4_jobs_are_correct_and_faster_on_the_model() {
        for (rows, cols) in [(4, 4), (2, 4), (4, 8)] {
            let mut cfg = HwConfig::tiny_4x4();
            (cfg.array.rows, cfg.array.cols) = (rows, cols);
            cfg.array.sparsity_2_4 = true;
            cfg.validate().unwrap();
            let dataflow = Dataflow::for_config(&cfg).unwrap();
            let (m, k, n) = (9, 38, 11);
            // Two non-zeros in each group of 4 (some groups fewer), -128 included.
            let b: Vec<i8> = (0..k * n)
                .map(|i| {
                    let (r, c) = (i / n, i % n);
                    if (r + c) % 4 < 2 && (r * 7 + c) % 5 != 0 {
                        (i as i32 * 37 % 256 - 128) as i8
                    } else {
                        0
                    }
                })
                .collect();
            let a: Vec<u8> = (0..m * k).map(|i| (i * 53 % 256) as u8).collect();
            let run = |choice: WeightChoice| {
                let usage = GemmUse { m, a_unsigned: true, int32_out: false };
                let weights = dataflow.pack_with(&b, k, n, usage, &cfg, choice);
                let (counters, c) = run_int32_job(&cfg, dataflow, &weights, &a, m, k);
                (weights.format(), counters, c)
            };
            let (format, sparse, c) = run(WeightChoice::Auto);
            assert_eq!(format, WeightFormat::Sparse24I8, "{rows}x{cols}");
            for r in 0..m {
                for col in 0..n {
                    let want: i32 = (0..k).map(|kk| a[r * k + kk] as i32 * b[kk * n + col] as i32).sum();
                    let at = (r * n + col) * 4;
                    assert_eq!(i32::from_le_bytes(c[at..at + 4].try_into().unwrap()), want, "C[{r}][{col}]");
                }
            }
            let (format, dense, c_dense) = run(WeightChoice::Dense);
            assert_eq!(format, WeightFormat::DenseI8);
            assert_eq!(c, c_dense);
            let get = |c: &isa::Counters, x| c.get(x);
            assert!(get(&sparse, isa::Counter::Macs) * 2 <= get(&dense, isa::Counter::Macs) + (m * n * 2) as u64);
            assert!(get(&sparse, isa::Counter::Cycles) < get(&dense, isa::Counter::Cycles), "{rows}x{cols}");
        }
    }

    #[test]
    fn output_stationary_is_refused_by_name() {
        let mut cfg = HwConfig::tiny_4x4();
        cfg.array.dataflow = ConfigDataflow::OutputStationary;
        let err = Dataflow::for_config(&cfg).unwrap_err().to_string();
        assert!(err.contains("output-stationary") && err.contains("not implemented"), "{err}");
    }
}
