//! One GEMM job, `C[M,N] = A[M,K] x B[K,N]`, emitted as a double-buffered
//! instruction stream. The dataflow is chosen here, once
//! (`Dataflow::for_config`); the weight-stationary schedule:
//! - A is read in blocks of `mt` rows and all of K; the scratchpad holds a
//!   block column-blocked by the tile's `k`, so k-tile `i` is `mt`
//!   consecutive rows.
//! - B comes packed (`PackedWeights`) as one stripe per n-tile, one LOAD
//!   per stripe.
//! - A *step* is one (m-block, n-tile) pair: one MATMUL per live k-tile,
//!   each swapping in the weights the previous one preloaded and preloading
//!   the next tile's, so weight loading hides under streaming and tiles
//!   stream back to back; then a REQUANT (or, for int32 output, nothing)
//!   and a STORE.
//! - Every buffer (A block, B stripe, parameters, accumulator tile, output
//!   tile) is double-buffered and guarded by dependency tokens: the LOAD of
//!   step s+2 waits for step s's release, the REQUANT of step s waits for the
//!   STORE of step s-2.

use super::weights::{PackedWeights, TileShape, WeightFormat};
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
        if Self::streams(k, n, usage, cfg) {
            PackedWeights::stream_i8(b, k, n, super::streaming::tile_shape(cfg))
        } else {
            PackedWeights::dense_i8(b, k, n, self.tile_shape())
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
        if job.weights.format() == WeightFormat::StreamI8 {
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
    a_buf: [u16; 2],
    b_buf: [u16; 2],
    o_buf: [u16; 2],
    acc_buf: [u16; 2],
    param_buf: [u16; 2],
}

impl Plan {
    fn new(m: usize, w: &PackedWeights, cfg: &HwConfig) -> Result<Plan, LowerError> {
        let (k, n, kt) = (w.k(), w.n(), w.k_tiles());
        let spad = cfg.spad_rows() as usize;
        let accr = cfg.acc_rows() as usize;
        let too_large = |why: String| LowerError::TooLarge { m, k, n, why };
        // Rows: 2 A blocks (mt * kt), 2 B stripes, 2 output tiles (mt).
        let b_rows = w.stripe_rows();
        let spare = spad
            .checked_sub(2 * b_rows)
            .filter(|&s| s >= 2 * (kt + 1))
            .ok_or_else(|| too_large(format!("two weight stripes need {} scratchpad rows of {spad}", 2 * b_rows)))?;
        let mut mt = (spare / (2 * (kt + 1))).min((accr.saturating_sub(4)) / 2).min(m).min(256);
        if mt == 0 {
            return Err(too_large(format!("the accumulator's {accr} rows leave no room for a tile")));
        }
        // Keep every block the same size when M allows it.
        let mb = m.div_ceil(mt);
        mt = m.div_ceil(mb);
        let a_rows = mt * kt;
        let r = |x: usize| x as u16;
        Ok(Plan {
            mt,
            mb,
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
/// tile is a whole scratchpad row wide (the DMA blocks by rows), else one
/// per k-tile.
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
        return vec![piece(0, k, base)];
    }
    (0..k.div_ceil(tile_k)).map(|i| piece(i * tile_k, tile_k.min(k - i * tile_k), base + (i * rows) as u16)).collect()
}

fn emit_weight_stationary(job: &GemmJob<'_>, cfg: &HwConfig) -> Result<Vec<Instr>, LowerError> {
    let w = job.weights;
    let (m, k, n) = (job.m, w.k(), w.n());
    if m == 0 || k == 0 || n == 0 {
        return Err(job.shape_error("every dimension must be at least 1"));
    }
    // M is unbounded: A streams in blocks of at most 256 rows, each with
    // its own LOADs and STOREs. A stripe is one LOAD of K rows.
    if k > 65535 || n > 65535 {
        return Err(job.shape_error("K or N above 65535 is not supported"));
    }
    let p = Plan::new(m, w, cfg)?;
    let nt = w.n_tiles();
    let tile_k = w.tile_shape().k;
    let spad_width = cfg.array.cols as usize;
    let int8_out = matches!(job.out, GemmOut::Int8 { .. });
    let steps = p.mb * nt;
    let param_addr = |params: u64, j: usize| params + (j * 2 * spad_width * 4) as u64;

    let mut load = Vec::new();
    let mut code: Vec<Instr> = Vec::new();
    let step_of = |s: usize| (s / nt, s % nt);
    let m_rows = |mb: usize| p.mt.min(m - mb * p.mt);

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
    // A(mb + 1) rides in package (mb, 1), or in (mb + 1, 0) when there is
    // one n-tile (its buffer is free only after step mb - 1's release).
    let a_package = |mb: usize| if nt >= 2 { (mb - 1) * nt + 1 } else { mb * nt };
    for s in 0..steps {
        let (mb, j) = step_of(s);
        let first = load.len();
        if s == 0 {
            load.extend(a_load(0).into_iter().map(|l| (l, false)));
        }
        if nt == 1 && mb > 0 {
            load.extend(a_load(mb).into_iter().map(|l| (l, false)));
        }
        load.push((Instr::from(w.stripe_load(j, job.weights_addr, p.b_buf[s % 2])), false));
        if let GemmOut::Int8 { params_addr, .. } = job.out {
            load.push((
                Instr::from(super::load_params(
                    param_addr(params_addr, j),
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
        if nt >= 2 && mb + 1 < p.mb && s == a_package(mb + 1) {
            // A prefetch: follows the package's signal, guarded by its wait.
            load.extend(a_load(mb + 1).into_iter().map(|l| (l, true)));
        }
    }

    // COMPUTE and STORE, interleaved in program order by step. The k-tiles
    // each step streams come from the packing (all-zero tiles skipped).
    let step_tiles: Vec<Vec<usize>> = (0..steps).map(|s| w.live_k_tiles(step_of(s).1)).collect();
    let mut store = Vec::new();
    for s in 0..steps {
        let (mb, j) = step_of(s);
        let rows = m_rows(mb) as u16;
        if s == 0 {
            code.push(w.tile(step_tiles[0][0], 0, p.b_buf[0]).ldw(Deps { pop_prev: true, ..Deps::NONE }));
        }
        let tiles = &step_tiles[s];
        for (idx, &i) in tiles.iter().enumerate() {
            let mut mm = ins::Matmul {
                a: p.a_buf[mb % 2] + (i * rows as usize) as u16,
                m: rows,
                acc: p.acc_buf[s % 2],
                accumulate: (idx > 0) as u8,
                swap: 1,
                in_type: job.a_unsigned as u8,
                ..Default::default()
            };
            if let Some(&i1) = tiles.get(idx + 1) {
                w.tile(i1, j, p.b_buf[s % 2]).preload_into(&mut mm);
            } else if s + 1 < steps {
                // Preload the next step's first tile: take its package's token.
                let j1 = step_of(s + 1).1;
                w.tile(step_tiles[s + 1][0], j1, p.b_buf[(s + 1) % 2]).preload_into(&mut mm);
                mm.deps.pop_prev = true;
            }
            if !int8_out && idx == 0 && s >= 2 {
                // The STORE of step s-2 must have read this accumulator tile.
                mm.deps.pop_next = true;
            }
            if !int8_out && idx + 1 == tiles.len() {
                // Release the package (inputs consumed) and hand the tile to STORE.
                mm.deps.push_prev = s + 2 < steps;
                mm.deps.push_next = true;
            }
            code.push(Instr::from(mm));
        }
        let (src_buf, src_addr, elem) = if let GemmOut::Int8 { zero_point, qmin, qmax, unsigned, .. } = job.out {
            code.push(Instr::from(ins::Requant {
                deps: Deps { pop_next: s >= 2, push_prev: s + 2 < steps, push_next: true, ..Deps::NONE },
                acc: p.acc_buf[s % 2],
                rows,
                dst: p.o_buf[s % 2],
                params: p.param_buf[s % 2],
                out_type: if unsigned { ins::ELEM_U8 } else { ins::ELEM_I8 },
                zp: zero_point as i16,
                qmin: qmin as i16,
                qmax: qmax as i16,
            }));
            (ins::BUF_SPAD, p.o_buf[s % 2], 1)
        } else {
            (ins::BUF_ACC, p.acc_buf[s % 2], 4)
        };
        let runs = job.c.runs(mb * p.mt, rows as usize);
        let last = runs.len() - 1;
        let mut step_stores = Vec::new();
        let mut offset = 0u16;
        for (r, (dram, len)) in runs.into_iter().enumerate() {
            step_stores.push(Instr::from(ins::Store {
                deps: Deps { pop_prev: r == 0, push_prev: r == last && s + 2 < steps, ..Deps::NONE },
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
    let per_step_compute = |s: usize| step_tiles[s].len() + int8_out as usize;
    let mut li = load.into_iter().peekable();
    let mut ci = code.into_iter();
    let mut si = store.into_iter();
    let mut loads_pushed = 0;
    for s in 0..steps {
        // Dispatch loads up to and including package s + 1.
        while loads_pushed < (s + 2).min(steps) {
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
        let (a_off, c_off) = (4096, 8192);
        let job = GemmJob {
            m,
            a: ASource::Matrix { addr: a_off, stride: k as u64 },
            a_unsigned: true,
            weights: &weights,
            weights_addr: 0,
            out: GemmOut::Int32,
            c: OutRows::dense(c_off, (n * 4) as u64),
        };
        let code = dataflow.emit(&job, &cfg).unwrap();
        let mut data = weights.bytes().to_vec();
        data.resize(c_off as usize + m * n * 4, 0);
        data[a_off as usize..a_off as usize + a.len()].copy_from_slice(&a);
        let (mut d, counters, data_addr) = crate::test_run::run_alone(&cfg, code, data);
        assert_eq!(counters.get(isa::Counter::Macs), weights.macs(m));
        let c = d.read_mem(data_addr + c_off, m * n * 4).unwrap();
        for r in 0..m {
            for col in 0..n {
                let want: i32 = (0..k).map(|kk| a[r * k + kk] as i32 * b[kk * n + col] as i32).sum();
                let at = (r * n + col) * 4;
                assert_eq!(i32::from_le_bytes(c[at..at + 4].try_into().unwrap()), want, "C[{r}][{col}]");
            }
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
