//! Attention scores kept on chip: the float activation × activation MatMul
//! (Q·Kᵀ per head) and the vector chain that only it feeds (the scale
//! Mul, a mask, Softmax, the Quantize of the probabilities) as one phase.
//! A step is one (head, block of query rows) with every key: the array
//! writes the block's int32 scores into the accumulator, the zero points'
//! cross terms included: folded into the accumulator's start where their
//! range allows (`ScoresFold`: the array adds only `Σ ab` per tile), else
//! `Σ (a − za)(b − zb)` as four passes per tile (A and the `−za` row
//! through B and through a tile of `−zb`, the last giving `K·za·zb`, so
//! no init row crosses DRAM; `Cross::tile_passes`), then `vdeq` with
//! `s_a · s_b` (the MatMul's float output, bit for bit) and the chain's
//! stages run in place on the block's full rows while the array computes
//! the next block (`steps::chain_pipelined`). Only the chain's result —
//! int8 probabilities, a quarter of the float scores' bytes — is stored:
//! the scores never make the round trip through DRAM.
//!
//! When the chain ends in a Quantize read only by an int8-out MatMul
//! (P·V), that product joins the phase too (`Context`, flash-attention
//! style): the block's probabilities stay in the scratchpad as the next
//! product's input rows, P·V of block `s` streams in step `s + 2`'s array
//! work (after step `s`'s epilogue has written P, while step `s + 1`'s
//! runs on the vector unit), its `requant` goes in step `s + 2`'s
//! epilogue and only the int8 context is stored; two steps without
//! scores drain the last two blocks. So the layer is one record (the
//! scores MatMul's name, the context's value) whose MatMuls run in the
//! shadow of the Softmax's vector work.

use super::linear::{self, load, Cross};
use super::place::Mat;
use super::steps;
use super::vector_ops::{operand_loads_at, stage, Kind, Operand, Pat, Scratch};
use isa::instr::{self as ins, Instr};
use isa::HwConfig;

/// Q·Kᵀ (or any float act × act product) and its chain, for `emit`.
pub(crate) struct ScoresChain<'a> {
    /// Per head: A `[m, k]` (row-contiguous) and B `[k, n]` (row-contiguous,
    /// or a transposed view of keys stored row by row).
    pub heads: Vec<(Mat, Mat)>,
    pub a_unsigned: bool,
    pub cross: &'a Cross,
    /// `s_a · s_b`: the product's float32 scale.
    pub scale: f32,
    /// The stages after the product (no Dequantize).
    pub kinds: Vec<Kind>,
    /// The chain's output, `[heads · m, n]` row-contiguous (int8 when the
    /// last stage is Quantize, else float32); unused with `context`.
    pub y: Mat,
    /// The P·V product reading the chain's int8 output, fused too.
    pub context: Option<Context>,
    /// An int8-out product (the chain starts with its Dequantize):
    /// `gemm::pack_params` rows (bias 0, or `−fold.zp` with a fold, and
    /// the requantization scale) per n-tile, the zero point and whether
    /// unsigned; `requant` writes the int8 scores, the Dequantize stage
    /// reads them back as float32.
    pub requant: Option<(u64, i32, bool)>,
    /// The cross terms folded into the accumulator's start (`scores_fold`);
    /// None: they run as array passes.
    pub fold: Option<ScoresFold>,
}

/// Q·Kᵀ's cross terms `C[c] + R[r] + K·za·zb` (`C = Σ_k (−za)·b`, `R =
/// Σ_k a·(−zb)`) without array passes over the block: C once per head
/// (the `−za` row through each B tile, one array row) and R once per block
/// (A through the `−zb` tile, once per k-tile, not per n-tile), then one
/// `vop add` writes `C + R + W` into the block's accumulator before the
/// array adds `Σ ab` to it. The trick is the int32 and float32 views of a
/// word being the same bits: a float32 `v · 2^−149` for an integer
/// `0 <= v < 2^23` is the subnormal whose bits are `v`, and adding such
/// values is exact. So `vdeq` with scale `2^−149` turns the int32 C rows
/// and R column (offset by `−c_zp`, `−r_zp`) into subnormals, their sum is
/// the int32 `C + R + W` (`W = −c_zp − r_zp` keeps it nonnegative), and
/// the epilogue's `vdeq` subtracts `zp = W − K·za·zb`: `f32(acc) · s` of
/// the true accumulator, bit for bit (a `requant` adds `−zp` as its bias).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ScoresFold {
    pub c_zp: i32,
    pub r_zp: i32,
    pub zp: i32,
}

/// The subnormal `2^−149`: `f32(v) · 2^−149` has the bits of `v` for an
/// integer `0 <= v < 2^23` (exact: no rounding).
const BITS_SCALE: u32 = 1;

fn zp16(v: i64) -> bool {
    (-32768..=32767).contains(&v)
}

/// The offsets of a `ScoresFold` for `k` reductions of A in `a_range`
/// (zero point `za`) by int8 B (zero point `zb`): every sum `C + R + W`
/// in `[0, 2^23)` for any inputs, each vdeq zero point in 16 bits (the
/// epilogue's too unless `int_out`: a `requant` bias is 32-bit). None when
/// no choice fits (the cross terms then run on the array).
pub(crate) fn scores_fold(k: usize, a_range: (i32, i32), za: i32, zb: i32, int_out: bool) -> Option<ScoresFold> {
    let (k, za, zb) = (k as i64, za as i64, zb as i64);
    let (alo, ahi) = (a_range.0 as i64, a_range.1 as i64);
    let (c_lo, c_hi) = ((-za * -128).min(-za * 127), (-za * -128).max(-za * 127));
    let (r_lo, r_hi) = ((-zb * alo).min(-zb * ahi), (-zb * alo).max(-zb * ahi));
    let (lo, hi) = (k * (c_lo + r_lo), k * (c_hi + r_hi));
    let kzz = k * za * zb;
    let w = if int_out { -lo } else { (-lo).max(kzz - 32768) };
    // W's parts: the C rows' vdeq takes what it can, the R column the rest
    // (a zero point of 0 leaves its term, and its vdeq, out).
    let part = |v: i64| v.clamp(-32767, 32768);
    let (wc, wr) = match (za != 0, zb != 0) {
        (true, true) => (part(w), w - part(w)),
        (true, false) => (w, 0),
        (false, true) => (0, w),
        (false, false) => return None,
    };
    let ok = zp16(-wc) && zp16(-wr) && (int_out || zp16(w - kzz)) && hi + w < 1 << 23 && lo + w >= 0;
    ok.then_some(ScoresFold { c_zp: -wc as i32, r_zp: -wr as i32, zp: (w - kzz) as i32 })
}

/// P·V's per-row cross term `R[r] = Σ_k p·(−z_v)` folded like the scores'
/// (`ScoresFold`): the array streams P once through the `−z_v` tile per
/// k-tile into one column, `vdeq` with scale `2^−149` and zero point `zp`
/// writes `R − zp` (nonnegative) into every block of the context's
/// accumulator, which the array then adds `Σ p·v` to; the `requant` bias
/// rows start at `K·z_p·z_v + zp`. Returns `zp` for `n` reductions of P in
/// `p_range` by V with zero point `zv`; None when `zv` is 0 (no term) or no
/// 16-bit `zp` fits.
pub(crate) fn context_fold(n: usize, p_range: (i32, i32), zv: i32) -> Option<i32> {
    let (n, zv) = (n as i64, zv as i64);
    let (lo, hi) = (
        n * (-zv * p_range.0 as i64).min(-zv * p_range.1 as i64),
        n * (-zv * p_range.0 as i64).max(-zv * p_range.1 as i64),
    );
    let zp = lo.min(32767);
    (zv != 0 && zp16(zp) && hi - zp < 1 << 23).then_some(zp as i32)
}

/// P·V per head on the probabilities the chain leaves in the scratchpad
/// (flash-attention style: P never leaves the chip). Its zero points'
/// cross terms: `Σ_k P·(−z_v)` folded into the accumulator's start
/// (`context_fold`), else on the array through a tile of `−z_v`;
/// `Σ_k (−z_p)·V + K·z_p·z_v`, one row per head and n-tile, as the
/// `requant` bias: the bias rows start at `K·z_p·z_v` and the `−z_p` row
/// streams once through each of the head's V tiles into them.
pub(crate) struct Context {
    /// Per head V `[n, d]`, row-contiguous.
    pub v: Vec<Mat>,
    /// `−z_p` rows and `−z_v` tiles.
    pub cross: Cross,
    /// `gemm::pack_params` rows (bias `K·z_p·z_v`, the requantization
    /// scale) per n-tile of `d`.
    pub params: u64,
    pub zp: i32,
    pub unsigned: bool,
    /// Whether P is uint8.
    pub p_unsigned: bool,
    /// With `context_fold`'s zero point, the `−z_v` term folded (the bias
    /// rows include it); None: it runs as array passes per n-tile.
    pub fold: Option<i32>,
    /// The context, `[heads · m, d]` row-contiguous int8.
    pub y: Mat,
}

/// The phase's instructions and the MACs the array performs (cross terms
/// included); None when the shapes do not fit this schedule (the caller
/// lowers the nodes one by one).
pub(crate) fn emit(job: &ScoresChain<'_>, cfg: &HwConfig) -> Option<(Vec<Instr>, u64)> {
    let dim = cfg.array.cols as usize;
    let tk = (cfg.array.rows.min(cfg.array.cols)) as usize;
    let lanes = cfg.vector_lanes();
    let (a0, b0) = *job.heads.first()?;
    let (m, k, n) = (a0.rows, a0.cols, b0.cols);
    // The output: the context's with a fused P·V, else the chain's.
    let y_cols = job.context.as_ref().map_or(n, |c| c.v.first().map_or(0, |v| v.cols));
    if tk != dim
        || b0.rows != k
        || job.y.rows != job.heads.len() * m
        || job.y.cols != y_cols
        || !job.y.rows_contiguous()
    {
        return None;
    }
    let dequantized = matches!(job.kinds[0], Kind::Dequantize { .. });
    if !super::vector_ops::chain_ok(&job.kinds) || dequantized != job.requant.is_some() {
        return None;
    }
    let trans = !b0.rows_contiguous();
    let shape_ok = |(a, b): &(Mat, Mat)| {
        a.rows == m
            && a.cols == k
            && a.rows_contiguous()
            && b.rows == k
            && b.cols == n
            && (if trans { b.row_stride == 1 && !b.rows_contiguous() } else { b.rows_contiguous() })
    };
    if !job.heads.iter().all(shape_ok) {
        return None;
    }
    let quantized = matches!(job.kinds.last(), Some(Kind::Quantize { .. }));
    if job.y.esize != if quantized || job.context.is_some() { 1 } else { 4 } {
        return None;
    }
    let (kt, nt) = (k.div_ceil(tk), n.div_ceil(dim));
    let (nza, nzb) = (job.cross.za_rows.len(), job.cross.zb_tiles.len());
    let temp = job.kinds.iter().any(|k| matches!(k, Kind::GeluErf | Kind::GeluTanh | Kind::LayerNorm { .. }));
    // Accumulator per set: T (nt blocks of rr rows), [temp], s1, s2, the
    // stages' operands. Every region of a step lies in its set, so the
    // epilogue never spans the rows the next step's array work writes.
    let operand_rows = |rr: usize| -> Vec<usize> {
        job.kinds
            .iter()
            .map(|k| match k {
                Kind::Binary(_, Operand::Rows(_) | Operand::RowScalar(_)) => nt * rr,
                Kind::Binary(_, Operand::Vector(_)) => nt,
                Kind::LayerNorm { .. } => 2 * nt,
                _ => 0,
            })
            .collect()
    };
    // With the context: per set its int32 tile (ntv blocks of rr rows);
    // after both sets the bias and scale rows per head parity.
    let (d, ntv) = job.context.as_ref().map_or((0, 0), |c| (c.v[0].cols, c.v[0].cols.div_ceil(dim)));
    if let Some(c) = &job.context {
        let v_ok = |v: &Mat| v.rows == n && v.cols == d && v.rows_contiguous();
        if !quantized || c.v.len() != job.heads.len() || !c.v.iter().all(v_ok) || c.y.cols != d || c.y.esize != 1 {
            return None;
        }
    }
    // With folds: after both sets the C rows per head parity; the R
    // columns of the scores and of the context use the set's per-row
    // scalar rows (s1, s2), free until the epilogue.
    let (fold, ctx_fold) = (job.fold, job.context.as_ref().and_then(|c| c.fold));
    let set_rows =
        |rr: usize| nt * rr * (1 + temp as usize) + 2 * rr + operand_rows(rr).iter().sum::<usize>() + ntv * rr;
    let c_rows = if fold.is_some() { 2 * nt } else { 0 };
    // Scratchpad: B per head parity, the cross-term rows, A and the int8
    // output per set.
    let b_rows = if trans { kt * n } else { nt * k };
    let (vza, vzb) = job.context.as_ref().map_or((0, 0), |c| (c.cross.za_rows.len(), c.cross.zb_tiles.len()));
    let fixed = 2 * b_rows + nza + nzb * tk + 2 * ntv * n + vza + vzb * tk;
    let spad_need = |rr: usize| fixed + 2 * (kt * rr + nt * rr + ntv * rr);
    // Every region within the buffers and the 16-bit row fields.
    let (accr, spad) = ((cfg.acc_rows() as usize).min(65536), (cfg.spad_rows() as usize).min(65536));
    let mut rr = m.min(256);
    // After both sets: the bias and scale rows of P·V per head parity, the
    // requantization rows of an int8-out product.
    let requant_rows = if job.requant.is_some() { 2 * nt } else { 0 };
    while rr > 0
        && (2 * set_rows(rr) + 4 * ntv + requant_rows + c_rows > accr
            || spad_need(rr) > spad
            || nt * rr > 65535
            || kt * rr > 65535)
    {
        rr -= 1;
    }
    if rr == 0 {
        return None;
    }
    rr = m.div_ceil(m.div_ceil(rr));
    let set = set_rows(rr);
    // The C rows first: the span of the `vop add` that reads them and
    // writes set 1's T then leaves set 1's other rows out, so the context's
    // matmuls into them run while it does (for set 0 they lie after T).
    let base = c_rows;
    let cc_at = |h: usize| ((h % 2) * nt) as u16;
    let t_at = |p: usize| (base + p * set) as u16;
    let temp_at = |p: usize| (base + p * set + nt * rr) as u16;
    let s1_at = |p: usize| (base + p * set + nt * rr * (1 + temp as usize)) as u16;
    let s2_at = |p: usize| s1_at(p) + rr as u16;
    let op_rows = operand_rows(rr);
    let op_at = |p: usize, i: usize| s2_at(p) + rr as u16 + op_rows[..i].iter().sum::<usize>() as u16;
    let b_at = |h: usize| ((h % 2) * b_rows) as u16;
    let za_at = (2 * b_rows) as u16;
    let zb_at = za_at + nza as u16;
    let a_at = |p: usize| zb_at + (nzb * tk) as u16 + (p * kt * rr) as u16;
    let o_at = |p: usize| a_at(2) + (p * nt * rr) as u16;
    let tv_at = |p: usize| op_at(p, job.kinds.len());
    let cv_at = |h: usize| (base + 2 * set + (h % 2) * 2 * ntv) as u16;
    let rq_at = (base + 2 * set + 4 * ntv) as u16;
    let (r_at, r2_at) = (s1_at, s2_at);
    let vb_at = |h: usize| o_at(2) + ((h % 2) * ntv * n) as u16;
    let vza_at = o_at(2) + (2 * ntv * n) as u16;
    let vzb_at = vza_at + vza as u16;
    let c8_at = |p: usize| vzb_at + (vzb * tk) as u16 + (p * ntv * rr) as u16;
    let blocks: Vec<(usize, usize)> =
        (0..job.heads.len()).flat_map(|h| (0..m).step_by(rr).map(move |r0| (h, r0))).collect();
    let total = blocks.len() + if job.context.is_some() { 2 } else { 0 };
    // The epilogue reads loaded rows only for the stages' operands and the
    // context's bias rows (per head parity: reloaded two heads on, at
    // least three steps after the last block that reads them, whose
    // epilogue then has finished); otherwise the array work releases the
    // step's set to the LOADs of two steps on.
    let release_after_main = op_rows.iter().all(|&r| r == 0) && (job.context.is_none() || m.div_ceil(rr) >= 3);
    let mut steps = Vec::new();
    let mut macs = 0u64;
    for t in 0..total {
        let p = t % 2;
        let mut st = steps::PipeStep::default();
        let mut epi = Vec::new();
        // Array work that `st.init` reads (the folds' C rows and R columns).
        let mut pre_uses: Vec<(ins::Ldw, Vec<ins::Matmul>)> = Vec::new();
        let mut init = Vec::new();
        // The context of the block two steps back (its P is complete).
        if let (Some(c), Some(&(h, r0))) = (&job.context, t.checked_sub(2).and_then(|s| blocks.get(s))) {
            let rows = rr.min(m - r0);
            if t == 2 {
                st.load.extend(c.cross.loads((vza_at, vzb_at), dim, tk));
            }
            if r0 == 0 {
                // V's n rows, column-blocked by n-tile: block j at vb + j n.
                let v = c.v[h];
                st.load.push(load(ins::BUF_SPAD, v.at(0, 0), v.row_bytes(), n, d, vb_at(h)));
                for j in 0..ntv {
                    let at = c.params + (j * 2 * dim * 4) as u64;
                    st.load.push(Instr::from(crate::gemm::load_params(
                        at,
                        2,
                        dim,
                        cv_at(h) + 2 * j as u16,
                        ins::Deps::NONE,
                    )));
                }
            }
            let src = o_at(p);
            let mut uses: Vec<(ins::Ldw, Vec<ins::Matmul>)> = Vec::new();
            if let Some(zp) = ctx_fold {
                // R − zp: P once through the `−z_v` tiles per k-tile, then
                // into every block of the accumulator as its start.
                for i in 0..nt {
                    let kk = tk.min(n - i * tk);
                    for y in 0..vzb {
                        let zt = linear::zb_tile(vzb_at, tk, y, kk, dim);
                        let r = ins::Matmul {
                            a: src + (i * rows) as u16,
                            m: rows as u16,
                            acc: r2_at(p),
                            accumulate: (i > 0 || y > 0) as u8,
                            in_type: c.p_unsigned as u8,
                            ..Default::default()
                        };
                        pre_uses.push((zt, vec![r]));
                        macs += (rows * kk * dim) as u64;
                    }
                }
                init.push(Instr::from(ins::Vdeq {
                    src_buf: ins::BUF_ACC,
                    src: r2_at(p),
                    src_step: 1,
                    dst: tv_at(p),
                    dst_step: 1,
                    dst_bstride: rows as u16,
                    rows: rows as u16,
                    len: d as u16,
                    zp: zp as i16,
                    scale_imm: 1,
                    imm: BITS_SCALE,
                    ..Default::default()
                }));
            }
            let vzb = if ctx_fold.is_some() { 0 } else { vzb };
            for j in 0..ntv {
                let nj = dim.min(d - j * dim);
                let acc = tv_at(p) + (j * rows) as u16;
                for i in 0..nt {
                    let kk = tk.min(n - i * tk);
                    let a_row = src + (i * rows) as u16;
                    let pv = |accumulate: bool| ins::Matmul {
                        a: a_row,
                        m: rows as u16,
                        acc,
                        accumulate: accumulate as u8,
                        in_type: c.p_unsigned as u8,
                        ..Default::default()
                    };
                    let tile = ins::Ldw {
                        addr: vb_at(h) + (j * n + i * tk) as u16,
                        k: kk as u16,
                        n: nj as u16,
                        ..Default::default()
                    };
                    let mut list = vec![pv(i > 0 || ctx_fold.is_some())];
                    if r0 == 0 {
                        for x in 0..vza {
                            list.push(ins::Matmul {
                                a: vza_at + x as u16,
                                m: 1,
                                acc: cv_at(h) + 2 * j as u16,
                                accumulate: 1,
                                ..Default::default()
                            });
                            macs += (kk * nj) as u64;
                        }
                    }
                    uses.push((tile, list));
                    for y in 0..vzb {
                        let zt = linear::zb_tile(vzb_at, tk, y, kk, nj);
                        uses.push((zt, vec![pv(true)]));
                    }
                    macs += ((1 + vzb) * rows * kk * nj) as u64;
                }
            }
            st.main.extend(tile_uses(&uses));
            let (qmin, qmax) = if c.unsigned { (0, 255) } else { (-128, 127) };
            for j in 0..ntv {
                epi.push(Instr::from(ins::Requant {
                    acc: tv_at(p) + (j * rows) as u16,
                    rows: rows as u16,
                    dst: c8_at(p) + (j * rows) as u16,
                    params: cv_at(h) + 2 * j as u16,
                    out_type: c.unsigned as u8,
                    zp: c.zp as i16,
                    qmin,
                    qmax,
                    ..Default::default()
                }));
            }
            st.store.push(Instr::from(ins::Store {
                buf: ins::BUF_SPAD,
                dram: c.y.at(h * m + r0, 0) as u32,
                stride: c.y.row_bytes() as u32,
                rows: rows as u16,
                cols: d as u16,
                addr: c8_at(p),
                ..Default::default()
            }));
        }
        if let Some(&(h, r0)) = blocks.get(t) {
            let (a, b) = &job.heads[h];
            let rows = rr.min(m - r0);
            if r0 == 0 {
                st.load.push(if trans {
                    // Bᵀ's n rows, column-blocked by k-tile: block i at b + i n.
                    load(ins::BUF_SPAD, b.at(0, 0), (b.col_stride * b.esize) as u64, n, k, b_at(h))
                } else {
                    // B's k rows, column-blocked by n-tile: block j at b + j k.
                    load(ins::BUF_SPAD, b.at(0, 0), b.row_bytes(), k, n, b_at(h))
                });
                if h == 0 {
                    if let Some((params, ..)) = job.requant {
                        let rows = (2 * nt) as u16;
                        st.load.push(Instr::from(crate::gemm::load_params(params, rows, dim, rq_at, ins::Deps::NONE)));
                    }
                    st.load.extend(job.cross.loads((za_at, zb_at), dim, tk));
                }
            }
            st.load.push(load(ins::BUF_SPAD, a.at(r0, 0), a.row_bytes(), rows, k, a_at(p)));
            let g0 = h * m + r0;
            for (i, kind) in job.kinds.iter().enumerate() {
                st.load.extend(operand_loads_at(kind, (g0, rows), op_at(p, i), (n, dim)));
            }
            // Weight tiles in order, each with the matmuls streaming through it.
            let mm = linear::matmul;
            let b_tiles = linear::BTiles { base: b_at(h), trans, k, n, tk, dim };
            let b_tile = |i: usize, j: usize| b_tiles.ldw(i, j);
            let zb_tile = |y: usize, kk: usize, nj: usize| linear::zb_tile(zb_at, tk, y, kk, nj);
            if let Some(f) = fold {
                // C once per head, R once per block, their sum (with W)
                // the block's start: the array then adds only Σ ab.
                let a_type = job.a_unsigned as u8;
                for (j, i) in (0..nt).flat_map(|j| (0..kt).map(move |i| (j, i))).filter(|_| r0 == 0 && nza > 0) {
                    let c =
                        (0..nza).map(|x| mm(za_at + x as u16, 1, cc_at(h) + j as u16, i > 0 || x > 0, ins::ELEM_I8));
                    let t = b_tile(i, j);
                    macs += (nza * t.k as usize * t.n as usize) as u64;
                    pre_uses.push((t, c.collect()));
                }
                for (y, i) in (0..nzb).flat_map(|y| (0..kt).map(move |i| (y, i))) {
                    let kk = tk.min(k - i * tk);
                    let r = mm(a_at(p) + (i * rows) as u16, rows, r_at(p), i > 0 || y > 0, a_type);
                    pre_uses.push((zb_tile(y, kk, dim), vec![r]));
                    macs += (rows * kk * dim) as u64;
                }
                let to_bits = |at: u16, rows: usize, zp: i32| {
                    Instr::from(ins::Vdeq {
                        src_buf: ins::BUF_ACC,
                        src: at,
                        src_step: 1,
                        dst: at,
                        dst_step: 1,
                        rows: rows as u16,
                        len: dim as u16,
                        zp: zp as i16,
                        scale_imm: 1,
                        imm: BITS_SCALE,
                        ..Default::default()
                    })
                };
                if r0 == 0 && nza > 0 {
                    init.push(to_bits(cc_at(h), nt, f.c_zp));
                }
                if nzb > 0 {
                    init.push(to_bits(r_at(p), rows, f.r_zp));
                }
                use super::vector_ops::{vop, B};
                let (a, b) = match (nza > 0, nzb > 0) {
                    (true, true) => (Pat::vector(cc_at(h)), B::Pat(Pat::scalars(r_at(p)))),
                    (true, false) => (Pat::vector(cc_at(h)), B::Imm(0.0)),
                    _ => (Pat::scalars(r_at(p)), B::Imm(0.0)),
                };
                init.push(vop(ins::VOP_ADD, Pat::tile(t_at(p), rows), a, b, rows, n));
            }
            // Without a fold the cross terms run as array passes per tile.
            let no_cross = Cross::default();
            let cross = if fold.is_some() { &no_cross } else { job.cross };
            let (nza, nzb) = (cross.za_rows.len(), cross.zb_tiles.len());
            let mut uses: Vec<(ins::Ldw, Vec<ins::Matmul>)> = Vec::new();
            for j in 0..nt {
                let nj = dim.min(n - j * dim);
                let acc = t_at(p) + (j * rows) as u16;
                for i in 0..kt {
                    let kk = tk.min(k - i * tk);
                    let a_row = a_at(p) + (i * rows) as u16;
                    let tile = b_tile(i, j);
                    let main = mm(a_row, rows, acc, i > 0 || fold.is_some(), job.a_unsigned as u8);
                    uses.extend(cross.tile_passes(tile, main, za_at, |y| zb_tile(y, kk, nj)));
                    macs += ((1 + nza) * (1 + nzb) * rows * kk * nj) as u64;
                }
            }
            st.main.extend(tile_uses(&uses));
            // The epilogue on the block's full rows.
            let x = Pat::tile(t_at(p), rows);
            match job.requant {
                // The int8 scores into the probabilities' rows (free until
                // the chain's Quantize writes them), one n-tile at a time.
                Some((_, zp, unsigned)) => {
                    let (qmin, qmax) = if unsigned { (0, 255) } else { (-128, 127) };
                    for j in 0..nt {
                        epi.push(Instr::from(ins::Requant {
                            acc: t_at(p) + (j * rows) as u16,
                            rows: rows as u16,
                            dst: o_at(p) + (j * rows) as u16,
                            params: rq_at + 2 * j as u16,
                            out_type: unsigned as u8,
                            zp: zp as i16,
                            qmin,
                            qmax,
                            ..Default::default()
                        }));
                    }
                }
                None => epi.push(Instr::from(ins::Vdeq {
                    src_buf: ins::BUF_ACC,
                    src: t_at(p),
                    src_step: 1,
                    src_bstride: rows as u16,
                    dst: t_at(p),
                    dst_step: 1,
                    dst_bstride: rows as u16,
                    rows: rows as u16,
                    len: n as u16,
                    zp: fold.map_or(0, |f| f.zp) as i16,
                    scale_imm: 1,
                    imm: job.scale.to_bits(),
                    ..Default::default()
                })),
            }
            let sc = Scratch { temp: Pat::tile(temp_at(p), rows), s1: s1_at(p), s2: s2_at(p) };
            let last = job.kinds.len() - 1;
            for (i, kind) in job.kinds.iter().enumerate() {
                let a = match kind {
                    Kind::Dequantize { .. } => Pat::tile(o_at(p), rows),
                    _ => x,
                };
                let dst = match (i == last, kind) {
                    (true, Kind::Quantize { .. }) => Pat::tile(o_at(p), rows),
                    _ => x,
                };
                epi.extend(stage(kind, (a, dst), op_at(p, i), sc, (rows, n, dim)));
            }
            if job.context.is_none() {
                st.store_reads_main = !quantized;
                let (buf, src) = if quantized { (ins::BUF_SPAD, o_at(p)) } else { (ins::BUF_ACC, t_at(p)) };
                st.store.push(Instr::from(ins::Store {
                    buf,
                    dram: job.y.at(g0, 0) as u32,
                    stride: job.y.row_bytes() as u32,
                    rows: rows as u16,
                    cols: n as u16,
                    addr: src,
                    ..Default::default()
                }));
            }
        }
        st.pre = tile_uses(&pre_uses);
        st.release_after_main = release_after_main;
        st.init = init.into_iter().map(|i| (i, linear::post_cycles(&i, lanes))).collect();
        st.epi = epi.into_iter().map(|i| (i, linear::post_cycles(&i, lanes))).collect();
        steps.push(st);
    }
    Some((steps::chain_pipelined(steps, isa::timing::array_latency(cfg.array.rows, cfg.array.cols)), macs))
}

/// Weight tiles in order, each with the matmuls streaming through it: the
/// first swaps the tile in and preloads the next.
fn tile_uses(uses: &[(ins::Ldw, Vec<ins::Matmul>)]) -> Vec<Instr> {
    let mut out = Vec::new();
    let Some(first) = uses.first() else { return out };
    out.push(Instr::from(first.0));
    for (u, (_, list)) in uses.iter().enumerate() {
        let next = uses.get(u + 1).map(|x| x.0);
        for (idx, mut mmi) in list.iter().copied().enumerate() {
            if idx == 0 {
                mmi.swap = 1;
                if let Some(t) = next {
                    (mmi.preload, mmi.w, mmi.k, mmi.n, mmi.trans) = (1, t.addr, t.k, t.n, t.trans);
                }
            }
            out.push(Instr::from(mmi));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The offsets keep `C + R + W` within `[0, 2^23)` at every corner of
    /// the inputs' box (the sums are linear, so the corners bound them),
    /// the epilogue's zero point takes `W` off again, and zero points too
    /// large for 16 bits are refused.
    #[test]
    fn fold_offsets_cover_every_input_or_refuse() {
        let (k, za, zb) = (32i64, 2i64, -3i64);
        let f = scores_fold(k as usize, (-128, 127), za as i32, zb as i32, false).unwrap();
        let w = -(f.c_zp as i64) - f.r_zp as i64;
        for (a, b) in [(-128i64, -128i64), (-128, 127), (127, -128), (127, 127)] {
            let v = k * (-za * b - zb * a) + w;
            assert!((0..1 << 23).contains(&v), "a = {a}, b = {b}: {v}");
        }
        assert_eq!(f.zp as i64, w - k * za * zb);
        // za = 2, zb = 12: float out, the epilogue's zero point would need
        // more than 16 bits; requantized, the bias takes it. tinybert's
        // first layer (zb = 17) needs W beyond the two vdeq zero points.
        assert_eq!(scores_fold(32, (-128, 127), 2, 12, false), None);
        assert!(scores_fold(32, (-128, 127), 2, 12, true).is_some());
        assert_eq!(scores_fold(32, (-128, 127), 2, 17, true), None);
        assert_eq!(scores_fold(32, (-128, 127), 0, 0, false), None);
        // P int8 with zero point −128 (any), V's zero point 1, 128 keys.
        assert_eq!(context_fold(128, (-128, 127), 1), Some(-16256));
        assert_eq!(context_fold(128, (-128, 127), 0), None);
        assert_eq!(context_fold(1024, (-128, 127), 20), None);
    }
}
