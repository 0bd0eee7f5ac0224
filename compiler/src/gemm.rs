//! Lowering of one quantized GEMM, `C[M,N] = A[M,K] x B[K,N]`, to a
//! double-buffered instruction stream for a weight-stationary array.
//!
//! The schedule (isa/ISA.md explains the instructions):
//! - A is read in blocks of `mt` rows and all of K, one contiguous DMA per
//!   block (A is row-major, so the block is one DRAM range); the scratchpad
//!   holds it column-blocked, so k-tile `i` is `mt` consecutive rows.
//! - B is packed at compile time as n-tile stripes: for each n-tile, K rows
//!   of `cols` bytes, one contiguous DMA per stripe.
//! - A *step* is one (m-block, n-tile) pair: one MATMUL per k-tile, each
//!   swapping in the weights the previous one preloaded and preloading the
//!   next tile's, so weight loading hides under streaming and tiles stream
//!   back to back; then a REQUANT (or, for int32 output, nothing) and a STORE.
//! - Every buffer (A block, B stripe, parameters, accumulator tile, output
//!   tile) is double-buffered and guarded by dependency tokens: the LOAD of
//!   step s+2 waits for step s's release, the REQUANT of step s waits for the
//!   STORE of step s-2.

use isa::instr::{self as ins, Deps, Instr};
use isa::program::{DType, Program, TensorInfo, TensorRole};
use isa::HwConfig;

/// What the GEMM writes.
#[derive(Clone, Debug, PartialEq)]
pub enum GemmOutput {
    /// The raw int32 accumulators.
    Int32,
    /// Requantized int8: per-column bias and scale, then zero point and clamp.
    Int8 { bias: Vec<i32>, scale: Vec<f32>, zero_point: i32, qmin: i32, qmax: i32 },
}

/// A GEMM to lower: weights are constants, A is the run-time input.
#[derive(Clone, Debug, PartialEq)]
pub struct GemmSpec {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    /// B, row-major `[K, N]`.
    pub weights: Vec<i8>,
    /// A holds uint8 rather than int8 values.
    pub input_unsigned: bool,
    pub output: GemmOutput,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LowerError {
    #[error("GEMM {m}x{k}x{n}: {why}")]
    Shape { m: usize, k: usize, n: usize, why: String },
    #[error("the GEMM lowering needs a square array, this one is {rows}x{cols}")]
    NonSquare { rows: u32, cols: u32 },
    #[error("GEMM {m}x{k}x{n} does not fit: {why}")]
    TooLarge { m: usize, k: usize, n: usize, why: String },
    #[error("node `{node}` ({op}): {why}")]
    Unsupported { node: String, op: String, why: String },
}

/// Names of the GEMM program's tensors.
pub const INPUT: &str = "a";
pub const OUTPUT: &str = "c";

fn align(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}

/// Scratchpad and accumulator placement of one GEMM schedule.
#[derive(Clone, Copy, Debug)]
struct Plan {
    dim: usize,
    kt: usize,
    nt: usize,
    mt: usize,
    mb: usize,
    a_buf: [u16; 2],
    b_buf: [u16; 2],
    o_buf: [u16; 2],
    acc_buf: [u16; 2],
    param_buf: [u16; 2],
}

impl Plan {
    fn new(m: usize, k: usize, n: usize, cfg: &HwConfig) -> Result<Plan, LowerError> {
        let dim = cfg.array.cols as usize;
        let kt = k.div_ceil(dim);
        let nt = n.div_ceil(dim);
        let spad = cfg.spad_rows() as usize;
        let accr = cfg.acc_rows() as usize;
        let too_large = |why: String| LowerError::TooLarge { m, k, n, why };
        // Rows: 2 A blocks (mt * kt), 2 B stripes (kt * dim), 2 output tiles (mt).
        let b_rows = kt * dim;
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
            dim,
            kt,
            nt,
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

/// Packs B `[K, N]` as n-tile stripes of K rows x `dim` bytes (zero padded).
pub fn pack_weights(w: &[i8], k: usize, n: usize, dim: usize) -> Vec<u8> {
    let nt = n.div_ceil(dim);
    let mut out = vec![0u8; nt * k * dim];
    for j in 0..nt {
        for kk in 0..k {
            for c in 0..dim.min(n - j * dim) {
                out[(j * k + kk) * dim + c] = w[kk * n + j * dim + c] as u8;
            }
        }
    }
    out
}

/// Output mode of an emitted GEMM (weights and parameters live in DRAM).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmOut {
    Int32,
    /// Requantized 8-bit values; `unsigned` selects uint8 over int8.
    Int8 {
        zero_point: i32,
        qmin: i32,
        qmax: i32,
        unsigned: bool,
    },
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

/// Where a GEMM's operands are: A rows at `a_addr + r * a_stride` (K bytes
/// each), B packed by `pack_weights` at `b_addr`, parameters packed by
/// `pack_params` at `params_addr` (Int8 output only), C as `c`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmPlacement {
    pub a_addr: u64,
    pub a_stride: u64,
    pub b_addr: u64,
    pub params_addr: u64,
    pub c: OutRows,
}

/// Packs per-column bias and scale as `pack_weights`' n-tiles expect: per
/// n-tile, one accumulator row of bias and one of float32 scale bits.
pub fn pack_params(bias: &[i32], scale: &[f32], dim: usize) -> Vec<u8> {
    let n = bias.len();
    let mut data = Vec::new();
    for j in 0..n.div_ceil(dim) {
        let mut rows = vec![0u8; 2 * dim * 4];
        for c in 0..dim.min(n - j * dim) {
            rows[c * 4..c * 4 + 4].copy_from_slice(&bias[j * dim + c].to_le_bytes());
            rows[(dim + c) * 4..(dim + c) * 4 + 4].copy_from_slice(&scale[j * dim + c].to_bits().to_le_bytes());
        }
        data.extend_from_slice(&rows);
    }
    data
}

/// Lowers a GEMM to a program for `cfg`: code, packed constants, and the
/// tensors `a` (input) and `c` (output).
pub fn lower_gemm(spec: &GemmSpec, cfg: &HwConfig) -> Result<Program, LowerError> {
    let (m, k, n) = (spec.m, spec.k, spec.n);
    check_spec(spec)?;
    let dim = cfg.array.cols as usize;
    let out = match &spec.output {
        GemmOutput::Int32 => GemmOut::Int32,
        GemmOutput::Int8 { zero_point, qmin, qmax, .. } => {
            GemmOut::Int8 { zero_point: *zero_point, qmin: *qmin, qmax: *qmax, unsigned: false }
        }
    };
    // Device memory: code, then constants (weights, parameters), A, C. The
    // stream is emitted with addresses relative to the data and rebased
    // once the code's size is known.
    let nonzero = nonzero_tiles(&spec.weights, k, n, dim);
    let mut data = pack_weights(&spec.weights, k, n, dim);
    let params_off = align(data.len() as u64, 64);
    data.resize(params_off as usize, 0);
    if let GemmOutput::Int8 { bias, scale, .. } = &spec.output {
        data.extend(pack_params(bias, scale, dim));
    }
    let a_off = align(data.len() as u64, 4096);
    let out_elem = if matches!(out, GemmOut::Int8 { .. }) { 1 } else { 4 };
    let c_off = align(a_off + (m * k) as u64, 4096);
    let place = GemmPlacement {
        a_addr: a_off,
        a_stride: k as u64,
        b_addr: 0,
        params_addr: params_off,
        c: OutRows::dense(c_off, (n * out_elem) as u64),
    };
    let mut program = emit_gemm_gather(m, k, n, spec.input_unsigned, out, &place, None, Some(&nonzero), cfg)?;
    program.push(Instr::Finish(ins::Finish::default()));
    let data_addr = align(program.len() as u64 * ins::INSTR_BYTES as u64, 4096);
    let mem_bytes = align(data_addr + c_off + (m * n * out_elem) as u64, 4096);
    if mem_bytes > cfg.dram_bytes() || mem_bytes > u32::MAX as u64 {
        return Err(LowerError::TooLarge {
            m,
            k,
            n,
            why: format!("needs {mem_bytes} bytes of device memory, the config has {}", cfg.dram_bytes()),
        });
    }
    rebase_dram(&mut program, data_addr);
    let (a_addr, c_addr) = (data_addr + a_off, data_addr + c_off);

    let (out_dtype, scale_zp) = match out {
        GemmOut::Int32 => (DType::I32, None),
        GemmOut::Int8 { zero_point, .. } => (DType::I8, Some(zero_point)),
    };
    let mut meta = serde_json::Map::new();
    meta.insert("producer".into(), "systole compiler: gemm".into());
    let mt = Plan::new(m, k, n, cfg)?.mt;
    meta.insert("gemm".into(), serde_json::json!({"m": m, "k": k, "n": n, "mt": mt}));
    Ok(Program {
        fingerprint: cfg.fingerprint(),
        config_name: cfg.name.clone(),
        code_addr: 0,
        code: program,
        data_addr,
        data,
        mem_bytes,
        tensors: vec![
            TensorInfo {
                name: INPUT.into(),
                role: TensorRole::Input,
                dtype: if spec.input_unsigned { DType::U8 } else { DType::I8 },
                shape: vec![m as u64, k as u64],
                addr: a_addr,
                layout: "row-major".into(),
                scale: None,
                zero_point: None,
            },
            TensorInfo {
                name: OUTPUT.into(),
                role: TensorRole::Output,
                dtype: out_dtype,
                shape: vec![m as u64, n as u64],
                addr: c_addr,
                layout: "row-major".into(),
                scale: None,
                zero_point: scale_zp,
            },
        ],
        meta,
    })
}

/// Moves every DRAM address of the stream's LOADs and STOREs up by `by`:
/// streams are emitted with addresses relative to their data, which is
/// placed after the code once the code's size is known.
pub fn rebase_dram(code: &mut [Instr], by: u64) {
    for i in code.iter_mut() {
        match i {
            Instr::Load(l) => l.dram = (l.dram as u64 + by) as u32,
            Instr::Store(s) => s.dram = (s.dram as u64 + by) as u32,
            _ => {}
        }
    }
}

fn check_spec(spec: &GemmSpec) -> Result<(), LowerError> {
    let (m, k, n) = (spec.m, spec.k, spec.n);
    let shape = |why: &str| LowerError::Shape { m, k, n, why: why.to_string() };
    if spec.weights.len() != k * n {
        return Err(shape(&format!("weights have {} values, K x N = {}", spec.weights.len(), k * n)));
    }
    if let GemmOutput::Int8 { bias, scale, .. } = &spec.output {
        if bias.len() != n || scale.len() != n {
            return Err(shape("bias and scale need one value per output column"));
        }
    }
    Ok(())
}

/// Emits the instructions of one GEMM whose operands are already in device
/// memory. The stream starts and ends with every queue idle and every
/// token counter back where it was (no leftover tokens); it has no FINISH.
pub fn emit_gemm(
    m: usize,
    k: usize,
    n: usize,
    input_unsigned: bool,
    out: GemmOut,
    place: &GemmPlacement,
    cfg: &HwConfig,
) -> Result<Vec<Instr>, LowerError> {
    emit_gemm_gather(m, k, n, input_unsigned, out, place, None, None, cfg)
}

/// The MACs the array performs for a GEMM whose all-zero weight tiles are
/// skipped (`nonzero` from `nonzero_tiles`; a tile column keeps one tile).
pub fn streamed_macs(m: usize, k: usize, n: usize, dim: usize, nonzero: &[bool]) -> u64 {
    let (kt, nt) = (k.div_ceil(dim), n.div_ceil(dim));
    let mut per_row = 0;
    for j in 0..nt {
        let live: Vec<usize> = (0..kt).filter(|&i| nonzero[i * nt + j]).collect();
        let live = if live.is_empty() { vec![0] } else { live };
        per_row += live.iter().map(|&i| dim.min(k - i * dim) * dim.min(n - j * dim)).sum::<usize>();
    }
    (m * per_row) as u64
}

/// Which `dim x dim` weight tiles of B `[k, n]` hold a non-zero value,
/// indexed `k_tile * n_tiles + n_tile` (for skipping zero tiles).
pub fn nonzero_tiles(b: &[i8], k: usize, n: usize, dim: usize) -> Vec<bool> {
    let (kt, nt) = (k.div_ceil(dim), n.div_ceil(dim));
    let mut nz = vec![false; kt * nt];
    for r in 0..k {
        for c in 0..n {
            if b[r * n + c] != 0 {
                nz[(r / dim) * nt + c / dim] = true;
            }
        }
    }
    nz
}

/// Gathers a block of A into the scratchpad: given the block's first row,
/// its row count and the scratchpad row of its buffer, the LOADs that
/// write A's row `r0 + i`, column `c` to scratchpad row
/// `base + (c / cols) * rows + i`, column `c % cols` (column-blocked).
pub type AGather<'a> = &'a dyn Fn(usize, usize, u16) -> Vec<Instr>;

/// `emit_gemm` whose A blocks are gathered by `gather` (e.g. im2col rows of
/// a convolution, straight from the feature map) instead of read from the
/// row-major matrix at `place.a_addr`.
#[allow(clippy::too_many_arguments)]
pub fn emit_gemm_gather(
    m: usize,
    k: usize,
    n: usize,
    input_unsigned: bool,
    out: GemmOut,
    place: &GemmPlacement,
    gather: Option<AGather<'_>>,
    nonzero: Option<&[bool]>,
    cfg: &HwConfig,
) -> Result<Vec<Instr>, LowerError> {
    let shape = |why: &str| LowerError::Shape { m, k, n, why: why.to_string() };
    if m == 0 || k == 0 || n == 0 {
        return Err(shape("every dimension must be at least 1"));
    }
    if cfg.array.rows != cfg.array.cols {
        return Err(LowerError::NonSquare { rows: cfg.array.rows, cols: cfg.array.cols });
    }
    if m > 65535 || k > 65535 || n > 65535 {
        return Err(shape("dimensions above 65535 are not supported"));
    }
    let p = Plan::new(m, k, n, cfg)?;
    let dim = p.dim;
    let int8_out = matches!(out, GemmOut::Int8 { .. });
    let steps = p.mb * p.nt;
    let b_addr = |j: usize| (place.b_addr + (j * k * dim) as u64) as u32;
    let param_addr = |j: usize| (place.params_addr + (j * 2 * dim * 4) as u64) as u32;

    let mut load = Vec::new();
    let mut code: Vec<Instr> = Vec::new();
    let step_of = |s: usize| (s / p.nt, s % p.nt);
    let m_rows = |mb: usize| p.mt.min(m - mb * p.mt);
    let n_cols = |j: usize| dim.min(n - j * dim);
    let k_rows = |i: usize| dim.min(k - i * dim);

    // LOAD packages: package s holds what step s needs, and is released by
    // step s's end; package s >= 2 waits for step s-2's release.
    let a_load = |mb: usize| -> Vec<Instr> {
        match gather {
            Some(g) => g(mb * p.mt, m_rows(mb), p.a_buf[mb % 2]),
            None => vec![Instr::from(ins::Load {
                buf: ins::BUF_SPAD,
                dram: (place.a_addr + (mb * p.mt) as u64 * place.a_stride) as u32,
                stride: place.a_stride as u32,
                rows: m_rows(mb) as u16,
                cols: k as u16,
                addr: p.a_buf[mb % 2],
                ..Default::default()
            })],
        }
    };
    // A(mb + 1) rides in package (mb, 1), or in (mb + 1, 0) when there is
    // one n-tile (its buffer is free only after step mb - 1's release).
    let a_package = |mb: usize| if p.nt >= 2 { (mb - 1) * p.nt + 1 } else { mb * p.nt };
    for s in 0..steps {
        let (mb, j) = step_of(s);
        let first = load.len();
        if s == 0 {
            load.extend(a_load(0).into_iter().map(|l| (l, false)));
        }
        if p.nt == 1 && mb > 0 {
            load.extend(a_load(mb).into_iter().map(|l| (l, false)));
        }
        load.push((
            Instr::from(ins::Load {
                buf: ins::BUF_SPAD,
                dram: b_addr(j),
                stride: dim as u32,
                rows: k as u16,
                cols: dim as u16,
                addr: p.b_buf[s % 2],
                ..Default::default()
            }),
            false,
        ));
        if int8_out {
            load.push((
                Instr::from(ins::Load {
                    buf: ins::BUF_ACC,
                    dram: param_addr(j),
                    stride: (dim * 4) as u32,
                    rows: 2,
                    cols: dim as u16,
                    addr: p.param_buf[s % 2],
                    ..Default::default()
                }),
                false,
            ));
        }
        if s >= 2 {
            load[first].0.deps_mut().pop_next = true;
        }
        load.last_mut().expect("package").0.deps_mut().push_next = true;
        if p.nt >= 2 && mb + 1 < p.mb && s == a_package(mb + 1) {
            // A prefetch: follows the package's signal, guarded by its wait.
            load.extend(a_load(mb + 1).into_iter().map(|l| (l, true)));
        }
    }

    // COMPUTE and STORE, interleaved in program order by step.
    // The k-tiles each step streams: weight tiles that are all zero add
    // nothing and are skipped (a step keeps one so its accumulator tile is
    // written).
    let step_tiles: Vec<Vec<usize>> = (0..steps)
        .map(|s| {
            let j = step_of(s).1;
            let live: Vec<usize> = (0..p.kt).filter(|&i| nonzero.is_none_or(|nz| nz[i * p.nt + j])).collect();
            if live.is_empty() {
                vec![0]
            } else {
                live
            }
        })
        .collect();
    let mut store = Vec::new();
    for s in 0..steps {
        let (mb, j) = step_of(s);
        let rows = m_rows(mb) as u16;
        let b_tile = |s: usize, i: usize| p.b_buf[s % 2] + (i * dim) as u16;
        if s == 0 {
            let i0 = step_tiles[0][0];
            code.push(Instr::from(ins::Ldw {
                deps: Deps { pop_prev: true, ..Deps::NONE },
                addr: b_tile(0, i0),
                k: k_rows(i0) as u16,
                n: n_cols(0) as u16,
                ..Default::default()
            }));
        }
        let tiles = &step_tiles[s];
        for (idx, &i) in tiles.iter().enumerate() {
            let mut mm = ins::Matmul {
                a: p.a_buf[mb % 2] + (i * rows as usize) as u16,
                m: rows,
                acc: p.acc_buf[s % 2],
                accumulate: (idx > 0) as u8,
                swap: 1,
                in_type: input_unsigned as u8,
                ..Default::default()
            };
            if let Some(&i1) = tiles.get(idx + 1) {
                (mm.preload, mm.w, mm.k, mm.n) = (1, b_tile(s, i1), k_rows(i1) as u16, n_cols(j) as u16);
            } else if s + 1 < steps {
                // Preload the next step's first tile: take its package's token.
                let (_, j1) = step_of(s + 1);
                let i1 = step_tiles[s + 1][0];
                (mm.preload, mm.w, mm.k, mm.n) = (1, b_tile(s + 1, i1), k_rows(i1) as u16, n_cols(j1) as u16);
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
        let (src_buf, src_addr, cols_out, elem) = if let GemmOut::Int8 { zero_point, qmin, qmax, unsigned } = out {
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
            (ins::BUF_SPAD, p.o_buf[s % 2], n_cols(j), 1)
        } else {
            (ins::BUF_ACC, p.acc_buf[s % 2], n_cols(j), 4)
        };
        let runs = place.c.runs(mb * p.mt, rows as usize);
        let last = runs.len() - 1;
        let mut step_stores = Vec::new();
        let mut offset = 0u16;
        for (r, (dram, len)) in runs.into_iter().enumerate() {
            step_stores.push(Instr::from(ins::Store {
                deps: Deps { pop_prev: r == 0, push_prev: r == last && s + 2 < steps, ..Deps::NONE },
                buf: src_buf,
                dram: (dram + (j * dim * elem) as u64) as u32,
                stride: place.c.row_stride as u32,
                rows: len as u16,
                cols: cols_out as u16,
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

/// The plain reference: what the GEMM program must write, as int32
/// accumulators or requantized int8 values (widened to i32).
pub fn reference_gemm(spec: &GemmSpec, a: &[u8]) -> Vec<i32> {
    let (m, k, n) = (spec.m, spec.k, spec.n);
    let mut out = vec![0i32; m * n];
    for i in 0..m {
        for c in 0..n {
            let mut acc = 0i32;
            for kk in 0..k {
                let x = if spec.input_unsigned { a[i * k + kk] as i32 } else { a[i * k + kk] as i8 as i32 };
                acc = acc.wrapping_add(x * spec.weights[kk * n + c] as i32);
            }
            out[i * n + c] = match &spec.output {
                GemmOutput::Int32 => acc,
                GemmOutput::Int8 { bias, scale, zero_point, qmin, qmax } => {
                    isa::numerics::requantize(acc.wrapping_add(bias[c]), scale[c], *zero_point, *qmin, *qmax)
                }
            };
        }
    }
    out
}
