//! Vector-unit phases: a float (or, for QuantizeLinear / DequantizeLinear,
//! int8) matrix `[rows, len]` tiled over rows, each tile loaded into the
//! accumulator column-blocked (`load buf=acc`, a logical row's column block
//! `j` at `base + i + j * r` for a tile of `r` rows), run through the
//! vector unit with the exact operation sequence of
//! `isa::numerics::vector`'s functions (ISA.md §3 "The vector unit"), and
//! stored. Tiles are steps over two buffer sets (`steps::chain`): a tile's
//! LOADs overlap the previous tile's compute and store.

use super::place::Mat;
use super::steps::{self, Step};
use super::unsupported;
use crate::gemm::LowerError;
use isa::instr::{self as ins, Instr};
use isa::numerics::vector as v;
use isa::HwConfig;

/// An accumulator row pattern (ISA.md §3 "Vector rows").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pat {
    pub base: u16,
    pub step: u16,
    pub bstride: u16,
}

impl Pat {
    /// A tile of rows loaded column-blocked (`rows` rows a block).
    pub fn tile(base: u16, rows: usize) -> Pat {
        Pat { base, step: 1, bstride: rows as u16 }
    }

    /// Per-row scalars (a `vred` result in every column).
    pub fn scalars(base: u16) -> Pat {
        Pat { base, step: 1, bstride: 0 }
    }

    /// One row broadcast to every row (gamma, beta, a bias, a mask row).
    pub fn vector(base: u16) -> Pat {
        Pat { base, step: 0, bstride: 1 }
    }
}

/// Operand b of a `vop`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum B {
    None,
    Pat(Pat),
    Imm(f32),
}

/// `dst = op(a, b)` over `rows` logical rows of `len`.
pub(crate) fn vop(op: u8, dst: Pat, a: Pat, b: B, rows: usize, len: usize) -> Instr {
    let mut i = ins::Vop {
        op,
        dst: dst.base,
        dst_step: dst.step,
        dst_bstride: dst.bstride,
        a: a.base,
        a_step: a.step,
        a_bstride: a.bstride,
        rows: rows as u16,
        len: len as u16,
        ..Default::default()
    };
    match b {
        B::None => {}
        B::Pat(p) => (i.b, i.b_step, i.b_bstride) = (p.base, p.step, p.bstride),
        B::Imm(x) => (i.b_imm, i.imm) = (1, x.to_bits()),
    }
    Instr::from(i)
}

fn vred(op: u8, a: Pat, dst: u16, rows: usize, len: usize) -> Instr {
    Instr::from(ins::Vred {
        op,
        a: a.base,
        a_step: a.step,
        a_bstride: a.bstride,
        dst,
        dst_step: 1,
        rows: rows as u16,
        len: len as u16,
        ..Default::default()
    })
}

/// What a phase computes per element or row.
#[derive(Clone, Debug)]
pub(crate) enum Kind {
    /// `vop` binary op with operand b.
    Binary(u8, Operand),
    /// `vop` unary op.
    Unary(u8),
    GeluErf,
    GeluTanh,
    /// Gamma and beta: float32 vectors of `len` at these data offsets.
    LayerNorm {
        gamma: u64,
        beta: u64,
        eps: f32,
    },
    Softmax,
    /// float32 → int8/uint8.
    Quantize {
        scale: f32,
        zp: i32,
        unsigned: bool,
    },
    /// int8/uint8 → float32.
    Dequantize {
        scale: f32,
        zp: i32,
        unsigned: bool,
    },
}

/// Operand b of a binary phase.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Operand {
    /// A matrix of `len` columns and `m` rows: output row `r` reads row
    /// `r % m` (the output's shape, or broadcast over leading dimensions,
    /// e.g. one `[seq, seq]` mask for every head).
    Rows(Mat),
    /// A float32 row of `len` at this data offset, broadcast to every row.
    Vector(u64),
    /// A matrix of one column and `m` rows: output row `r` is combined with
    /// the scalar in row `r % m` (a per-token mask, a per-row divisor).
    RowScalar(Mat),
    Imm(f32),
}

/// The LOADs bringing rows of `m` (output row `r` reads row `r % m.rows`)
/// for output rows `[r0, r0 + rr)` into a tile at `base` column-blocked by
/// `rr` rows; `spread` fills every column with a one-column matrix's value
/// (a per-row scalar).
fn broadcast_rows(m: &Mat, (r0, rr): (usize, usize), base: u16, dim: usize, spread: bool) -> Vec<Instr> {
    let mut out = Vec::new();
    let mut r = r0;
    while r < r0 + rr {
        let src = r % m.rows;
        let k = (m.rows - src).min(r0 + rr - r);
        let off = (r - r0) as u16;
        let piece = |c0: usize, cols: usize, at: u16, col: u16| {
            Instr::from(ins::Load {
                buf: ins::BUF_ACC,
                dram: m.at(src, c0) as u32,
                stride: m.row_bytes() as u32,
                rows: k as u16,
                cols: cols as u16,
                addr: at,
                col,
                ..Default::default()
            })
        };
        if spread {
            out.extend((0..dim).map(|c| piece(0, 1, base + off, c as u16)));
        } else if k == rr {
            out.push(piece(0, m.cols, base, 0));
        } else {
            // Column block j of these rows at base + j rr + off.
            for (j, c0) in (0..m.cols).step_by(dim).enumerate() {
                out.push(piece(c0, dim.min(m.cols - c0), base + (j * rr) as u16 + off, 0));
            }
        }
        r += k;
    }
    out
}

/// A vector phase: `x` (float32, or int8 when the first stage is
/// Dequantize) to `y` (float32, or int8 when the last is Quantize), both
/// `[rows, len]`, through `kinds` in order: a chain of graph nodes fused
/// on chip (each stage works in place on the tile in the accumulator, the
/// last writes the output region), so only `x` and `y` cross DRAM.
#[derive(Clone, Debug)]
pub(crate) struct Job {
    pub x: Mat,
    pub y: Mat,
    pub kinds: Vec<Kind>,
}

/// Accumulator rows of a tile of `r` rows (`nb` column blocks): the
/// working tile and the output twice (LOADs write the one, STOREs read
/// the other, so both alternate between steps), a temporary, two rows of
/// per-row scalars per row, and per stage what its operand needs twice
/// (a tile of rows, or `nb` rows per broadcast vector).
struct Regions {
    a: [u16; 2],
    out: [u16; 2],
    temp: u16,
    s1: u16,
    s2: u16,
    /// Per stage: its operand regions, set 0 then set 1.
    operand: Vec<[u16; 2]>,
    total: usize,
}

impl Regions {
    fn new(r: usize, nb: usize, kinds: &[Kind]) -> Regions {
        let tile = r * nb;
        let mut at = 0usize;
        let mut take = |n: usize| {
            let x = at;
            at += n;
            x as u16
        };
        let a = [take(tile), take(tile)];
        let out = [take(tile), take(tile)];
        let needs_temp = kinds.iter().any(|k| matches!(k, Kind::GeluErf | Kind::GeluTanh | Kind::LayerNorm { .. }));
        let temp = if needs_temp { take(tile) } else { 0 };
        let (s1, s2) = (take(r), take(r));
        let operand = kinds
            .iter()
            .map(|k| {
                let n = match k {
                    Kind::Binary(_, Operand::Rows(_) | Operand::RowScalar(_)) => tile,
                    Kind::Binary(_, Operand::Vector(_)) => nb,
                    Kind::LayerNorm { .. } => 2 * nb,
                    _ => 0,
                };
                [take(n), take(n)]
            })
            .collect();
        Regions { a, out, temp, s1, s2, operand, total: at }
    }
}

/// Rows a tile takes: as many as the accumulator (and, for int8 sides,
/// the scratchpad, same offsets) holds.
fn tile_rows(rows: usize, nb: usize, kinds: &[Kind], cfg: &HwConfig) -> Option<usize> {
    let cap = (cfg.acc_rows() as usize).min(cfg.spad_rows() as usize).min(65535);
    let fits = |r: usize| Regions::new(r, nb, kinds).total <= cap;
    if !fits(1) {
        return None;
    }
    let mut r = rows.clamp(1, 65535 / nb.max(1));
    while !fits(r) {
        r = r.div_ceil(2).min(r - 1);
    }
    // Even tiles.
    let tiles = rows.div_ceil(r);
    Some(rows.div_ceil(tiles))
}

fn load(buf: u8, m: &Mat, r0: usize, rows: usize, addr: u16) -> Instr {
    Instr::from(ins::Load {
        buf,
        dram: m.at(r0, 0) as u32,
        stride: m.row_bytes() as u32,
        rows: rows as u16,
        cols: m.cols as u16,
        addr,
        ..Default::default()
    })
}

fn vector_load(at: u64, len: usize, addr: u16) -> Instr {
    Instr::from(ins::Load {
        buf: ins::BUF_ACC,
        dram: at as u32,
        stride: (len * 4) as u32,
        rows: 1,
        cols: len as u16,
        addr,
        ..Default::default()
    })
}

/// An element-wise job whose rows are too wide for the accumulator, as
/// the same elements in `f` times as many rows of `len / f` (contiguous
/// operands only; a broadcast row becomes `f` rows read modulo `f`).
fn narrowed(job: &Job, cfg: &HwConfig) -> Option<Job> {
    let (rows, len) = (job.x.rows, job.x.cols);
    let dim = cfg.array.cols as usize;
    let dense = |m: &Mat| m.col_stride == 1 && m.row_stride == m.cols;
    let rowwise = |k: &Kind| matches!(k, Kind::LayerNorm { .. } | Kind::Softmax);
    if job.kinds.iter().any(rowwise) || !dense(&job.x) || !dense(&job.y) {
        return None;
    }
    let fits = |f: usize| tile_rows(rows * f, (len / f).div_ceil(dim), &job.kinds, cfg).is_some();
    let f = (2..=len).find(|&f| len % f == 0 && fits(f))?;
    let w = len / f;
    let fold = |m: &Mat| Mat { rows: m.rows * f, cols: w, row_stride: w, ..*m };
    let mut kinds = Vec::with_capacity(job.kinds.len());
    for k in &job.kinds {
        kinds.push(match k {
            Kind::Binary(op, b) => Kind::Binary(
                *op,
                match b {
                    Operand::Rows(m) if dense(m) => Operand::Rows(fold(m)),
                    Operand::Vector(at) => {
                        Operand::Rows(Mat { addr: *at, rows: f, cols: w, row_stride: w, col_stride: 1, esize: 4 })
                    }
                    Operand::Imm(x) => Operand::Imm(*x),
                    _ => return None,
                },
            ),
            other => other.clone(),
        });
    }
    Some(Job { x: fold(&job.x), y: fold(&job.y), kinds })
}

/// What a stage needs before it runs: the LOADs of its operand, for
/// output rows `[r0, r0 + rr)` into `at` (the step's operand region).
pub(crate) fn operand_loads_at(
    kind: &Kind,
    (r0, rr): (usize, usize),
    at: u16,
    (len, dim): (usize, usize),
) -> Vec<Instr> {
    match kind {
        Kind::Binary(_, Operand::Rows(m)) => broadcast_rows(m, (r0, rr), at, dim, false),
        Kind::Binary(_, Operand::RowScalar(m)) => broadcast_rows(m, (r0, rr), at, dim, true),
        Kind::Binary(_, Operand::Vector(v)) => vec![vector_load(*v, len, at)],
        Kind::LayerNorm { gamma, beta, .. } => {
            vec![vector_load(*gamma, len, at), vector_load(*beta, len, at + len.div_ceil(dim) as u16)]
        }
        _ => Vec::new(),
    }
}

/// Scratch rows a stage may use besides its own tile: a temporary tile
/// and two rows of per-row scalars per row.
#[derive(Clone, Copy)]
pub(crate) struct Scratch {
    pub temp: Pat,
    pub s1: u16,
    pub s2: u16,
}

/// One stage on logical rows `rows` of `len` at `a` (read, and written in
/// place by multi-step stages), the result at `dst` (accumulator; the
/// scratchpad for Quantize; a Dequantize reads `a` in the scratchpad);
/// `operand` is where `operand_loads` put the stage's operand. The exact
/// operation sequences of `isa::numerics::vector`.
pub(crate) fn stage(
    kind: &Kind,
    (a, dst): (Pat, Pat),
    operand: u16,
    sc: Scratch,
    (rows, len, dim): (usize, usize, usize),
) -> Vec<Instr> {
    let (rr, t) = (rows, sc.temp);
    let (s1, s2) = (Pat::scalars(sc.s1), Pat::scalars(sc.s2));
    let nb = len.div_ceil(dim);
    let mut c = Vec::new();
    match kind {
        Kind::Binary(op, b) => {
            let b = match b {
                Operand::Rows(_) => B::Pat(Pat { base: operand, step: 1, bstride: a.bstride }),
                Operand::RowScalar(_) => B::Pat(Pat::scalars(operand)),
                Operand::Vector(_) => B::Pat(Pat::vector(operand)),
                Operand::Imm(x) => B::Imm(*x),
            };
            c.push(vop(*op, dst, a, b, rr, len));
        }
        Kind::Unary(op) => c.push(vop(*op, dst, a, B::None, rr, len)),
        Kind::GeluErf => {
            c.push(vop(ins::VOP_DIV, t, a, B::Imm(v::GELU_SQRT2), rr, len));
            c.push(vop(ins::VOP_ERF, t, t, B::None, rr, len));
            c.push(vop(ins::VOP_ADD, t, t, B::Imm(1.0), rr, len));
            c.push(vop(ins::VOP_MUL, t, a, B::Pat(t), rr, len));
            c.push(vop(ins::VOP_MUL, dst, t, B::Imm(0.5), rr, len));
        }
        Kind::GeluTanh => {
            c.push(vop(ins::VOP_MUL, t, a, B::Pat(a), rr, len));
            c.push(vop(ins::VOP_MUL, t, t, B::Pat(a), rr, len));
            c.push(vop(ins::VOP_MUL, t, t, B::Imm(v::GELU_CUBIC), rr, len));
            c.push(vop(ins::VOP_ADD, t, a, B::Pat(t), rr, len));
            c.push(vop(ins::VOP_MUL, t, t, B::Imm(v::GELU_SQRT_2_OVER_PI), rr, len));
            c.push(vop(ins::VOP_TANH, t, t, B::None, rr, len));
            c.push(vop(ins::VOP_ADD, t, t, B::Imm(1.0), rr, len));
            c.push(vop(ins::VOP_MUL, dst, a, B::Imm(0.5), rr, len));
            c.push(vop(ins::VOP_MUL, dst, dst, B::Pat(t), rr, len));
        }
        Kind::LayerNorm { eps, .. } => {
            let inv_n = v::recip(len as f32);
            let (gamma, beta) = (Pat::vector(operand), Pat::vector(operand + nb as u16));
            // Per-row scalars are transformed over a whole row (every column).
            c.push(vred(ins::VRED_SUM, a, sc.s1, rr, len));
            c.push(vop(ins::VOP_MUL, s1, s1, B::Imm(inv_n), rr, dim));
            c.push(vop(ins::VOP_SUB, a, a, B::Pat(s1), rr, len));
            c.push(vop(ins::VOP_MUL, t, a, B::Pat(a), rr, len));
            c.push(vred(ins::VRED_SUM, t, sc.s2, rr, len));
            c.push(vop(ins::VOP_MUL, s2, s2, B::Imm(inv_n), rr, dim));
            c.push(vop(ins::VOP_ADD, s2, s2, B::Imm(*eps), rr, dim));
            c.push(vop(ins::VOP_RSQRT, s2, s2, B::None, rr, dim));
            c.push(vop(ins::VOP_MUL, a, a, B::Pat(s2), rr, len));
            c.push(vop(ins::VOP_MUL, a, a, B::Pat(gamma), rr, len));
            c.push(vop(ins::VOP_ADD, dst, a, B::Pat(beta), rr, len));
        }
        Kind::Softmax => {
            c.push(vred(ins::VRED_MAX, a, sc.s1, rr, len));
            c.push(vop(ins::VOP_SUB, a, a, B::Pat(s1), rr, len));
            c.push(vop(ins::VOP_EXP, a, a, B::None, rr, len));
            c.push(vred(ins::VRED_SUM, a, sc.s2, rr, len));
            c.push(vop(ins::VOP_RECIP, s2, s2, B::None, rr, dim));
            c.push(vop(ins::VOP_MUL, dst, a, B::Pat(s2), rr, len));
        }
        Kind::Quantize { scale, zp, unsigned } => {
            let (qmin, qmax) = if *unsigned { (0, 255) } else { (-128, 127) };
            c.push(Instr::from(ins::Vquant {
                out_type: *unsigned as u8,
                src: a.base,
                src_step: a.step,
                src_bstride: a.bstride,
                dst: dst.base,
                dst_step: dst.step,
                dst_bstride: dst.bstride,
                rows: rr as u16,
                len: len as u16,
                zp: *zp as i16,
                qmin,
                qmax,
                scale: scale.to_bits(),
                ..Default::default()
            }));
        }
        Kind::Dequantize { scale, zp, unsigned } => {
            c.push(Instr::from(ins::Vdeq {
                src_buf: ins::BUF_SPAD,
                in_type: *unsigned as u8,
                src: a.base,
                src_step: a.step,
                src_bstride: a.bstride,
                dst: dst.base,
                dst_step: dst.step,
                dst_bstride: dst.bstride,
                rows: rr as u16,
                len: len as u16,
                zp: *zp as i16,
                scale_imm: 1,
                imm: scale.to_bits(),
                ..Default::default()
            }));
        }
    }
    c
}

/// Whether a chain of stages is well formed: Dequantize only first,
/// Quantize only last.
pub(crate) fn chain_ok(kinds: &[Kind]) -> bool {
    let n = kinds.len();
    n > 0
        && kinds.iter().enumerate().all(|(i, k)| match k {
            Kind::Dequantize { .. } => i == 0,
            Kind::Quantize { .. } => i + 1 == n,
            _ => true,
        })
}

/// The phase's instructions (one `steps::chain`); `node` names errors.
pub(crate) fn emit(job: &Job, cfg: &HwConfig, node: &str) -> Result<Vec<Instr>, LowerError> {
    let (rows, len) = (job.x.rows, job.x.cols);
    let dim = cfg.array.cols as usize;
    let err = |why: String| unsupported(node, "vector", why);
    if job.y.rows != rows || job.y.cols != len || !job.x.rows_contiguous() || !job.y.rows_contiguous() {
        return Err(err(format!("operands [{rows}, {len}] are not row-contiguous matrices of one shape")));
    }
    if !chain_ok(&job.kinds) {
        return Err(err("a fused chain dequantizes only first and quantizes only last".into()));
    }
    if len > 65535 {
        return Err(err(format!("rows of {len} elements (at most 65535)")));
    }
    let nb = len.div_ceil(dim);
    if tile_rows(rows, nb, &job.kinds, cfg).is_none() {
        if let Some(narrow) = narrowed(job, cfg) {
            return emit(&narrow, cfg, node);
        }
    }
    let r = tile_rows(rows, nb, &job.kinds, cfg)
        .ok_or_else(|| err(format!("a row of {len} elements does not fit the accumulator with its temporaries")))?;
    let reg = Regions::new(r, nb, &job.kinds);
    let x_buf = if matches!(job.kinds[0], Kind::Dequantize { .. }) { ins::BUF_SPAD } else { ins::BUF_ACC };
    let y_buf = if matches!(job.kinds.last(), Some(Kind::Quantize { .. })) { ins::BUF_SPAD } else { ins::BUF_ACC };
    for k in &job.kinds {
        match k {
            Kind::Binary(_, Operand::Rows(m)) if !m.rows_contiguous() || m.cols != len || m.rows == 0 => {
                return Err(err("operand b is not a row-contiguous matrix of the output's width".into()))
            }
            Kind::Binary(_, Operand::RowScalar(m)) if m.cols != 1 || m.rows == 0 => {
                return Err(err("a per-row operand has one column".into()))
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (s, r0) in (0..rows).step_by(r).enumerate() {
        let rr = r.min(rows - r0);
        let p = s % 2;
        let (a, o) = (Pat::tile(reg.a[p], rr), Pat::tile(reg.out[p], rr));
        let sc = Scratch { temp: Pat::tile(reg.temp, rr), s1: reg.s1, s2: reg.s2 };
        let mut st = Step { load: vec![load(x_buf, &job.x, r0, rr, reg.a[p])], ..Step::default() };
        let n = job.kinds.len();
        for (i, kind) in job.kinds.iter().enumerate() {
            st.load.extend(operand_loads_at(kind, (r0, rr), reg.operand[i][p], (len, dim)));
            // Every stage works in place; the last writes the output.
            let dst = if i + 1 == n { o } else { a };
            st.compute.extend(stage(kind, (a, dst), reg.operand[i][p], sc, (rr, len, dim)));
        }
        st.store.push(Instr::from(ins::Store {
            buf: y_buf,
            dram: job.y.at(r0, 0) as u32,
            stride: job.y.row_bytes() as u32,
            rows: rr as u16,
            cols: len as u16,
            addr: reg.out[p],
            ..Default::default()
        }));
        out.push(st);
    }
    Ok(steps::chain(out))
}

/// Float sums over the rows of matrices (ReduceSum over a leading axis):
/// for each `(x [len, inner], y [1, inner])`, `y[c] = sum_row(x[.., c])`
/// in the vector unit's lane order (ISA.md §3 `vred`): `L` lane partial
/// rows, lane `i` folding rows `i, i + L, ...` into `−0`, then combined
/// pairwise level by level, all as `vop add` on whole rows; an absent lane
/// (fewer rows than lanes) is the exact identity `−0`, so it is skipped.
pub(crate) fn emit_column_sums(pairs: &[(Mat, Mat)], cfg: &HwConfig, node: &str) -> Result<Vec<Instr>, LowerError> {
    let dim = cfg.array.cols as usize;
    let lanes = cfg.vector_lanes() as usize;
    let err = |why: String| unsupported(node, "reduce_sum", why);
    let Some((x0, _)) = pairs.first() else { return Ok(Vec::new()) };
    let (len, inner) = (x0.rows, x0.cols);
    let nb = inner.div_ceil(dim);
    let acc = cfg.acc_rows() as usize;
    let t = (acc / nb.max(1)).saturating_sub(lanes + 2) / 2;
    let t = t.min(len).min(65535 / nb.max(1));
    if t == 0 || inner > 65535 {
        return Err(err(format!("rows of {inner} elements and {lanes} lane rows do not fit the accumulator")));
    }
    let x_at = |p: usize| (p * t * nb) as u16;
    let lane = |i: usize| Pat { base: (2 * t * nb + i) as u16, step: 0, bstride: lanes as u16 };
    let o_at = |p: usize| ((2 * t + lanes) * nb + p * nb) as u16;
    let mut st_all = Vec::new();
    for (x, y) in pairs {
        if x.rows != len || x.cols != inner || y.cols != inner || !x.rows_contiguous() || !y.rows_contiguous() {
            return Err(err("the matrices of one phase must share their shape".into()));
        }
        for r0 in (0..len).step_by(t) {
            let rr = t.min(len - r0);
            let p = st_all.len() % 2;
            let mut st = Step { load: vec![load(ins::BUF_ACC, x, r0, rr, x_at(p))], ..Step::default() };
            for i in 0..rr {
                let g = r0 + i;
                let row = Pat { base: x_at(p) + i as u16, step: 0, bstride: rr as u16 };
                let b = if g < lanes { B::Imm(-0.0) } else { B::Pat(lane(g % lanes)) };
                st.compute.push(vop(ins::VOP_ADD, lane(g % lanes), row, b, 1, inner));
            }
            if r0 + rr == len {
                // The pairwise tree over all `lanes` entries, absent ones skipped.
                let mut present: Vec<bool> = (0..lanes).map(|i| i < len).collect();
                while present.len() > 1 {
                    let mut next = Vec::with_capacity(present.len().div_ceil(2));
                    for k in 0..present.len().div_ceil(2) {
                        let (a, b) = (present[2 * k], present.get(2 * k + 1).copied().unwrap_or(false));
                        match (a, b) {
                            (true, true) => st.compute.push(vop(
                                ins::VOP_ADD,
                                lane(k),
                                lane(2 * k),
                                B::Pat(lane(2 * k + 1)),
                                1,
                                inner,
                            )),
                            (true, false) if k != 2 * k => {
                                st.compute.push(vop(ins::VOP_ADD, lane(k), lane(2 * k), B::Imm(-0.0), 1, inner))
                            }
                            (false, true) => {
                                st.compute.push(vop(ins::VOP_ADD, lane(k), lane(2 * k + 1), B::Imm(-0.0), 1, inner))
                            }
                            _ => {}
                        }
                        next.push(a || b);
                    }
                    present = next;
                }
                let o = Pat { base: o_at(p), step: 0, bstride: 1 };
                st.compute.push(vop(ins::VOP_ADD, o, lane(0), B::Imm(-0.0), 1, inner));
                st.store.push(Instr::from(ins::Store {
                    buf: ins::BUF_ACC,
                    dram: y.at(0, 0) as u32,
                    stride: y.row_bytes() as u32,
                    rows: 1,
                    cols: inner as u16,
                    addr: o_at(p),
                    ..Default::default()
                }));
            }
            st_all.push(st);
        }
    }
    Ok(steps::chain(st_all))
}

/// Float sums over the last axis: `y [rows, 1]` of `x [rows, len]` by `vred sum`.
pub(crate) fn emit_row_sums(x: &Mat, y: &Mat, cfg: &HwConfig, node: &str) -> Result<Vec<Instr>, LowerError> {
    let dim = cfg.array.cols as usize;
    let (rows, len) = (x.rows, x.cols);
    let nb = len.div_ceil(dim);
    let acc = cfg.acc_rows() as usize;
    let r = (acc / (2 * nb + 2)).min(rows).min(65535 / nb.max(1));
    if r == 0 || len > 65535 || y.rows != rows || y.cols != 1 {
        return Err(unsupported(node, "reduce_sum", format!("rows of {len} elements do not fit the accumulator")));
    }
    let mut st_all = Vec::new();
    for r0 in (0..rows).step_by(r) {
        let rr = r.min(rows - r0);
        let p = st_all.len() % 2;
        let (xa, sa) = ((p * r * nb) as u16, (2 * r * nb + p * r) as u16);
        let mut st = Step { load: vec![load(ins::BUF_ACC, x, r0, rr, xa)], ..Step::default() };
        st.compute.push(vred(ins::VRED_SUM, Pat::tile(xa, rr), sa, rr, len));
        st.store.push(Instr::from(ins::Store {
            buf: ins::BUF_ACC,
            dram: y.at(r0, 0) as u32,
            stride: y.row_bytes() as u32,
            rows: rr as u16,
            cols: 1,
            addr: sa,
            ..Default::default()
        }));
        st_all.push(st);
    }
    Ok(steps::chain(st_all))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lower::place::Place;

    fn f32s(b: &[u8]) -> Vec<f32> {
        b.chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
    }

    fn bytes(x: &[f32]) -> Vec<u8> {
        x.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// LayerNorm, Softmax, both GELUs and a broadcast add over 37 rows of 21
    /// (several tiles, a partial last one, rows wider than the array) on
    /// the model, bit for bit against `numerics::vector`.
    #[test]
    fn composites_equal_the_numerics_on_the_model() {
        let cfg = HwConfig::tiny_4x4();
        let lanes = cfg.vector_lanes() as usize;
        let (rows, len) = (37usize, 21usize);
        let x: Vec<f32> = (0..rows * len).map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 97.0).collect();
        let gamma: Vec<f32> = (0..len).map(|i| 1.0 + i as f32 / 50.0).collect();
        let beta: Vec<f32> = (0..len).map(|i| i as f32 / 30.0 - 0.3).collect();
        let (xa, ga, ba, ya) = (0u64, 4096u64, 4352u64, 8192u64);
        let mut data = vec![0u8; ya as usize + rows * len * 4];
        data[..rows * len * 4].copy_from_slice(&bytes(&x));
        data[ga as usize..ga as usize + len * 4].copy_from_slice(&bytes(&gamma));
        data[ba as usize..ba as usize + len * 4].copy_from_slice(&bytes(&beta));
        let xm = Place::contiguous(xa, &[rows, len], 4).matrix().unwrap();
        let ym = Place::contiguous(ya, &[rows, len], 4).matrix().unwrap();
        type Want = Box<dyn Fn(&[f32]) -> Vec<f32>>;
        let cases: Vec<(Kind, Want)> = vec![
            (
                Kind::LayerNorm { gamma: ga, beta: ba, eps: 1e-5 },
                Box::new(move |r: &[f32]| v::layer_norm_row(r, &gamma, &beta, 1e-5, lanes)),
            ),
            (Kind::Softmax, Box::new(move |r: &[f32]| v::softmax_row(r, lanes))),
            (Kind::GeluErf, Box::new(|r: &[f32]| r.iter().map(|&a| v::gelu_erf(a)).collect())),
            (Kind::GeluTanh, Box::new(|r: &[f32]| r.iter().map(|&a| v::gelu_tanh(a)).collect())),
        ];
        for (kind, want) in cases {
            let job = Job { x: xm, y: ym, kinds: vec![kind.clone()] };
            let code = emit(&job, &cfg, "t").unwrap();
            let (mut d, _, base) = crate::test_run::run_alone(&cfg, code, data.clone());
            let got = f32s(&d.read_mem(base + ya, rows * len * 4).unwrap());
            let want: Vec<f32> = x.chunks(len).flat_map(want).collect();
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(g.to_bits(), w.to_bits(), "{kind:?}: element {i}: {g} vs {w}");
            }
        }
        // Binary with a broadcast row: y = x - gamma.
        let job = Job { x: xm, y: ym, kinds: vec![Kind::Binary(ins::VOP_SUB, Operand::Vector(ga))] };
        let (mut d, _, base) = crate::test_run::run_alone(&cfg, emit(&job, &cfg, "t").unwrap(), data.clone());
        let got = f32s(&d.read_mem(base + ya, rows * len * 4).unwrap());
        let g2: Vec<f32> = (0..len).map(|i| 1.0 + i as f32 / 50.0).collect();
        for (i, g) in got.iter().enumerate() {
            assert_eq!(g.to_bits(), v::sub(x[i], g2[i % len]).to_bits(), "sub element {i}");
        }
    }

    /// Column sums (rows fewer and more than the lanes, several tiles on the
    /// 4x4's small accumulator) and row sums against `sum_row`; a
    /// broadcast mask `[3, 21]` over `[37 = 12·3 + 1, 21]` rows and a
    /// per-row scalar divisor.
    #[test]
    fn sums_and_broadcasts_equal_the_numerics() {
        let cfg = HwConfig::tiny_4x4();
        let lanes = cfg.vector_lanes() as usize;
        for (len, inner) in [(3usize, 5usize), (70, 9)] {
            let x: Vec<f32> = (0..len * inner).map(|i| ((i * 7919 % 997) as f32 - 498.0) / 13.0).collect();
            let mut data = bytes(&x);
            let ya = data.len().div_ceil(64) as u64 * 64;
            data.resize(ya as usize + inner * 4 + len * 4 + 64, 0);
            let xm = Place::contiguous(0, &[len, inner], 4).matrix().unwrap();
            let ym = Place::contiguous(ya, &[1, inner], 4).matrix().unwrap();
            let code = emit_column_sums(&[(xm, ym)], &cfg, "sum").unwrap();
            let (mut d, _, base) = crate::test_run::run_alone(&cfg, code, data.clone());
            let got = f32s(&d.read_mem(base + ya, inner * 4).unwrap());
            for c in 0..inner {
                let col: Vec<f32> = (0..len).map(|r| x[r * inner + c]).collect();
                assert_eq!(got[c].to_bits(), v::sum_row(&col, lanes).to_bits(), "[{len}, {inner}] column {c}");
            }
            let ra = ya + (inner * 4) as u64;
            let rm = Place::contiguous(ra, &[len, 1], 4).matrix().unwrap();
            let code = emit_row_sums(&xm, &rm, &cfg, "rows").unwrap();
            let (mut d, _, base) = crate::test_run::run_alone(&cfg, code, data);
            let got = f32s(&d.read_mem(base + ra, len * 4).unwrap());
            for r in 0..len {
                assert_eq!(got[r].to_bits(), v::sum_row(&x[r * inner..(r + 1) * inner], lanes).to_bits(), "row {r}");
            }
        }
        let (rows, len) = (37usize, 21usize);
        let x: Vec<f32> = (0..rows * len).map(|i| (i % 13) as f32 - 6.5).collect();
        let mask: Vec<f32> = (0..3 * len).map(|i| if i % 5 == 0 { -1e9 } else { i as f32 / 8.0 }).collect();
        let div: Vec<f32> = (0..rows).map(|i| 1.0 + i as f32).collect();
        let mut data = bytes(&x);
        let (ma, da, ya) = (4096u64, 5120u64, 6144u64);
        data.resize(ya as usize + rows * len * 4, 0);
        data[ma as usize..ma as usize + mask.len() * 4].copy_from_slice(&bytes(&mask));
        data[da as usize..da as usize + rows * 4].copy_from_slice(&bytes(&div));
        let xm = Place::contiguous(0, &[rows, len], 4).matrix().unwrap();
        let ym = Place::contiguous(ya, &[rows, len], 4).matrix().unwrap();
        let mm = Place::contiguous(ma, &[3, len], 4).matrix().unwrap();
        let dm = Place::contiguous(da, &[rows, 1], 4).matrix().unwrap();
        let add = Job { x: xm, y: ym, kinds: vec![Kind::Binary(ins::VOP_ADD, Operand::Rows(mm))] };
        let (mut d, _, base) = crate::test_run::run_alone(&cfg, emit(&add, &cfg, "t").unwrap(), data.clone());
        let got = f32s(&d.read_mem(base + ya, rows * len * 4).unwrap());
        for (i, g) in got.iter().enumerate() {
            let want = v::add(x[i], mask[(i / len % 3) * len + i % len]);
            assert_eq!(g.to_bits(), want.to_bits(), "masked element {i}");
        }
        let div_job = Job { x: xm, y: ym, kinds: vec![Kind::Binary(ins::VOP_DIV, Operand::RowScalar(dm))] };
        let (mut d, _, base) = crate::test_run::run_alone(&cfg, emit(&div_job, &cfg, "t").unwrap(), data);
        let got = f32s(&d.read_mem(base + ya, rows * len * 4).unwrap());
        for (i, g) in got.iter().enumerate() {
            assert_eq!(g.to_bits(), v::div(x[i], div[i / len]).to_bits(), "divided element {i}");
        }
    }

    /// A fused chain (dequantize, add a bias row, GELU, quantize) in one
    /// phase over 9 rows of 6 equals the stages one after the other.
    #[test]
    fn fused_chain_equals_its_stages() {
        let cfg = HwConfig::tiny_4x4();
        let (rows, len) = (9usize, 6usize);
        let q: Vec<u8> = (0..rows * len).map(|i| (i * 37 % 251) as u8).collect();
        let bias: Vec<f32> = (0..len).map(|i| i as f32 * 0.3 - 0.7).collect();
        let mut data = q.clone();
        data.resize(1024, 0);
        data[1024 - 64..1024 - 64 + len * 4].copy_from_slice(&bytes(&bias));
        let xm = Place::contiguous(0, &[rows, len], 1).matrix().unwrap();
        let ym = Place::contiguous(512, &[rows, len], 1).matrix().unwrap();
        let kinds = vec![
            Kind::Dequantize { scale: 0.02, zp: 3, unsigned: false },
            Kind::Binary(ins::VOP_ADD, Operand::Vector(1024 - 64)),
            Kind::GeluErf,
            Kind::Quantize { scale: 0.01, zp: -5, unsigned: false },
        ];
        let code = emit(&Job { x: xm, y: ym, kinds }, &cfg, "chain").unwrap();
        let (mut d, _, base) = crate::test_run::run_alone(&cfg, code, data);
        let got = d.read_mem(base + 512, rows * len).unwrap();
        for i in 0..rows * len {
            let x = v::add(isa::numerics::dequantize(q[i] as i8 as i32, 0.02, 3), bias[i % len]);
            let want = isa::numerics::quantize(v::gelu_erf(x), 0.01, -5, -128, 127);
            assert_eq!(got[i] as i8 as i32, want, "element {i}");
        }
    }

    /// Quantize then dequantize through the scratchpad, uint8 and int8.
    #[test]
    fn quantize_and_dequantize() {
        let cfg = HwConfig::tiny_4x4();
        let (rows, len) = (9usize, 6usize);
        let x: Vec<f32> = (0..rows * len).map(|i| i as f32 * 0.37 - 9.0).collect();
        let mut data = bytes(&x);
        data.resize(4096, 0);
        let xm = Place::contiguous(0, &[rows, len], 4).matrix().unwrap();
        let qm = Place::contiguous(2048, &[rows, len], 1).matrix().unwrap();
        let ym = Place::contiguous(3072, &[rows, len], 4).matrix().unwrap();
        for (unsigned, zp) in [(false, -3), (true, 130)] {
            let (scale, qmin, qmax) = (0.05f32, if unsigned { 0 } else { -128 }, if unsigned { 255 } else { 127 });
            // The two phases meet in memory: a barrier between them.
            let mut code = crate::lower::package::Code::default();
            code.phase(
                emit(&Job { x: xm, y: qm, kinds: vec![Kind::Quantize { scale, zp, unsigned }] }, &cfg, "q").unwrap(),
            );
            code.phase(
                emit(&Job { x: qm, y: ym, kinds: vec![Kind::Dequantize { scale, zp, unsigned }] }, &cfg, "d").unwrap(),
            );
            let (mut d, _, base) = crate::test_run::run_alone(&cfg, code.into_instrs(), data.clone());
            let q = d.read_mem(base + 2048, rows * len).unwrap();
            let y = f32s(&d.read_mem(base + 3072, rows * len * 4).unwrap());
            for i in 0..rows * len {
                let want = isa::numerics::quantize(x[i], scale, zp, qmin, qmax);
                let got = if unsigned { q[i] as i32 } else { q[i] as i8 as i32 };
                assert_eq!(got, want, "quantize element {i}");
                assert_eq!(y[i].to_bits(), isa::numerics::dequantize(want, scale, zp).to_bits(), "element {i}");
            }
        }
    }
}
