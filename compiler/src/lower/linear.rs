//! Products whose accumulator does not start at zero: a Linear layer
//! dequantized to float (`Op::DenseF32`: the accumulator starts at the
//! bias with the input zero point folded in, `vdeq` with `s_x · s_w[n]`
//! per column) and the activation × activation MatMul (`Op::MatMul`, Q·Kᵀ
//! and P·V per head: B is produced on the device and loaded into the PEs
//! from the scratchpad; the zero points' cross terms run on the array).
//!
//! `Σ_k (a − za)(b − zb) = Σ ab + Σ_k a·(−zb) + Σ_k (−za)·b + K·za·zb`
//! in wrapping int32: the accumulator starts at `K·za·zb` (a stride-0
//! LOAD of one row), the array adds `Σ ab`, then `Σ a·(−zb)` from a weight
//! tile filled with `−zb` and `Σ (−za)·b` from one scratchpad row filled
//! with `−za` streamed `m` times (input-row pattern with group 1, group
//! stride 0). A value outside int8 (`−(−128) = 128`) is split into int8
//! parts. Then `vdeq` (float out) or `requant` (int8 out) and a STORE.
//!
//! A step is one (matrix, m-block, n-tile); steps alternate buffer sets
//! (`steps::chain`). This is the general schedule; the fast ones:
//! - `emit_fused`: a Linear layer (requantized, or float: `DenseF32`) with
//!   the element-wise chain after it as its epilogue, software-pipelined
//!   (`steps::chain_pipelined`); `DenseF32` comes here unless too large;
//! - `emit_act`: act × act products with the cross terms folded.
//!
//! Packed weights may be 2:4-sparse: a k-tile then covers two of A's
//! column blocks (`PackedWeights::tile_input`, the matmul's `a_bstride`).

use super::place::Mat;
use super::steps::{self, Step};
use super::unsupported;
use crate::gemm::{LowerError, PackedWeights};
use isa::instr::{self as ins, Instr};
use isa::HwConfig;

/// Where B `[K, N]` comes from.
#[derive(Clone, Copy)]
pub(crate) enum BSource<'a> {
    /// Packed weights at a data offset.
    Packed { w: &'a PackedWeights, addr: u64 },
    /// An int8 matrix on the device, any strides (a transposed view of K
    /// is loaded a column at a time).
    Mat(Mat),
}

/// The epilogue.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Post {
    /// Float32 out: `vdeq` with per-column scales (float32 rows, one per
    /// n-tile, at this data offset) or one scale.
    F32PerColumn(u64),
    F32(f32),
    /// Requantized: `gemm::pack_params` rows (bias 0, scale) per n-tile.
    Int8 {
        params: u64,
        zp: i32,
        unsigned: bool,
    },
}

/// One product `y [M, N] = init + a [M, K] × b [K, N] (+ cross terms)`.
#[derive(Clone, Copy)]
pub(crate) struct Product<'a> {
    pub a: Mat,
    pub a_unsigned: bool,
    pub b: BSource<'a>,
    pub k: usize,
    pub n: usize,
    /// Int32 rows (one `dim` wide row per n-tile) the accumulator starts at.
    pub init: u64,
    pub post: Post,
    pub y: Mat,
}

/// The zero points' cross terms shared by a set of products: data offsets
/// of one scratchpad row per `−za` part and one weight tile (`tile.k`
/// rows) per `−zb` part.
#[derive(Clone, Debug, Default)]
pub(crate) struct Cross {
    pub za_rows: Vec<u64>,
    pub zb_tiles: Vec<u64>,
}

impl Cross {
    /// The LOADs of the operands into the scratchpad: `−za` row `x` at
    /// `za_at + x`, `−zb` tile `x` (`tk` rows) at `zb_at + x·tk`.
    pub(crate) fn loads(&self, (za_at, zb_at): (u16, u16), dim: usize, tk: usize) -> Vec<Instr> {
        let rows = self
            .za_rows
            .iter()
            .enumerate()
            .map(|(x, &row)| load(ins::BUF_SPAD, row, dim as u64, 1, dim, za_at + x as u16));
        let tiles = self
            .zb_tiles
            .iter()
            .enumerate()
            .map(|(x, &t)| load(ins::BUF_SPAD, t, dim as u64, tk, dim, zb_at + (x * tk) as u16));
        rows.chain(tiles).collect()
    }

    /// One product tile with all its cross terms as array passes,
    /// `Σ (a − za)(b − zb)` whole (no init row): `main` (A through `tile`)
    /// and each `−za` row streamed once per A row, then the same through
    /// each `−zb` tile (`zb_tile(x)`). (Tile, matmuls through it) in order.
    pub(crate) fn tile_passes(
        &self,
        tile: ins::Ldw,
        main: ins::Matmul,
        za_at: u16,
        zb_tile: impl Fn(usize) -> ins::Ldw,
    ) -> Vec<(ins::Ldw, Vec<ins::Matmul>)> {
        let with_za = |first: ins::Matmul| {
            let za = (0..self.za_rows.len()).map(|x| ins::Matmul {
                a: za_at + x as u16,
                a_group: 1,
                a_gstride: 0,
                accumulate: 1,
                in_type: ins::ELEM_I8,
                ..main
            });
            std::iter::once(first).chain(za).collect()
        };
        let zb = (0..self.zb_tiles.len()).map(|x| (zb_tile(x), with_za(ins::Matmul { accumulate: 1, ..main })));
        std::iter::once((tile, with_za(main))).chain(zb).collect()
    }
}

/// `v` as a sum of int8 values (one for most, two for 128).
pub(crate) fn int8_parts(mut v: i32) -> Vec<i8> {
    let mut parts = Vec::new();
    while v != 0 {
        let p = v.clamp(-128, 127);
        parts.push(p as i8);
        v -= p;
    }
    parts
}

struct Plan {
    mt: usize,
    /// A's column blocks (`a_block` wide) and B's k-tiles (`tk` reductions).
    na: usize,
    kt: usize,
    a: [u16; 2],
    b: [u16; 2],
    za: [u16; 2],
    zb: [u16; 2],
    out_spad: [u16; 2],
    t: [u16; 2],
    o: [u16; 2],
    p: [u16; 2],
}

impl Plan {
    fn new(m: usize, k: usize, a_block: usize, cross: &Cross, cfg: &HwConfig) -> Option<Plan> {
        let tk = (cfg.array.rows.min(cfg.array.cols)) as usize;
        let (kt, na) = (k.div_ceil(tk), k.div_ceil(a_block));
        let (spad, accr) = (cfg.spad_rows() as usize, cfg.acc_rows() as usize);
        let fixed = 2 * (kt * tk.max(cfg.array.cols as usize) + cross.za_rows.len() + cross.zb_tiles.len() * tk);
        let mt_spad = spad.checked_sub(fixed)? / (2 * (na + 1));
        let mt_acc = accr.checked_sub(4)? / 4;
        let mut mt = m.min(mt_spad).min(mt_acc).min(256);
        if mt == 0 {
            return None;
        }
        mt = m.div_ceil(m.div_ceil(mt));
        let r = |x: usize| x as u16;
        let a0 = 0;
        let b0 = 2 * na * mt;
        // A transposed B holds an n-tile's rows (at most `dim`) per k-tile.
        let b_rows = kt * tk.max(cfg.array.cols as usize);
        let za0 = b0 + 2 * b_rows;
        let zb0 = za0 + 2 * cross.za_rows.len();
        let o0 = zb0 + 2 * cross.zb_tiles.len() * tk;
        let (nza, nzb) = (cross.za_rows.len(), cross.zb_tiles.len() * tk);
        Some(Plan {
            mt,
            na,
            kt,
            a: [r(a0), r(a0 + na * mt)],
            b: [r(b0), r(b0 + b_rows)],
            za: [r(za0), r(za0 + nza)],
            zb: [r(zb0), r(zb0 + nzb)],
            out_spad: [r(o0), r(o0 + mt)],
            t: [0, r(mt)],
            o: [r(2 * mt), r(3 * mt)],
            p: [r(4 * mt), r(4 * mt + 2)],
        })
    }
}

/// A plain strided LOAD of `rows × cols` elements into `buf` at `addr`.
pub(super) fn load(buf: u8, dram: u64, stride: u64, rows: usize, cols: usize, addr: u16) -> Instr {
    Instr::from(ins::Load {
        buf,
        dram: dram as u32,
        stride: stride as u32,
        rows: rows as u16,
        cols: cols as u16,
        addr,
        ..Default::default()
    })
}

/// A `matmul` of `m` rows from `a` into the accumulator at `acc`.
pub(super) fn matmul(a: u16, m: usize, acc: u16, accumulate: bool, in_type: u8) -> ins::Matmul {
    ins::Matmul { a, m: m as u16, acc, accumulate: accumulate as u8, in_type, ..Default::default() }
}

/// The `ldw` of rows `kk × nj` of the `y`-th `−zb` tile (tiles of `tk`
/// rows from `base`, as [`Cross::loads`] places them).
pub(super) fn zb_tile(base: u16, tk: usize, y: usize, kk: usize, nj: usize) -> ins::Ldw {
    ins::Ldw { addr: base + (y * tk) as u16, k: kk as u16, n: nj as u16, ..Default::default() }
}

/// Where a product's `k × n` B operand sits in the scratchpad, at `base`:
/// Bᵀ's n rows column-blocked by k-tile (block i at base + i·n, read as
/// transposed tiles), or B's k rows column-blocked by n-tile (block j at
/// base + j·k).
#[derive(Clone, Copy)]
pub(super) struct BTiles {
    pub base: u16,
    pub trans: bool,
    pub k: usize,
    pub n: usize,
    /// Rows of a k-tile, columns of an n-tile.
    pub tk: usize,
    pub dim: usize,
}

impl BTiles {
    /// The `ldw` of k-tile `i`, n-tile `j`.
    pub fn ldw(&self, i: usize, j: usize) -> ins::Ldw {
        let (kk, nj) = (self.tk.min(self.k - i * self.tk), self.dim.min(self.n - j * self.dim));
        let (at, trans) = if self.trans { (i * self.n + j * self.dim, 1) } else { (j * self.k + i * self.tk, 0) };
        ins::Ldw { addr: self.base + at as u16, k: kk as u16, n: nj as u16, trans, ..Default::default() }
    }
}

/// The products as one phase; returns its instructions and the MACs the
/// array performs (cross terms included).
pub(crate) fn emit(
    products: &[Product<'_>],
    cross: &Cross,
    cfg: &HwConfig,
    node: &str,
) -> Result<(Vec<Instr>, u64), LowerError> {
    let dim = cfg.array.cols as usize;
    let err = |why: String| unsupported(node, "matmul", why);
    let Some(first) = products.first() else { return Ok((Vec::new(), 0)) };
    let (m, k) = (first.a.rows, first.k);
    if products.iter().any(|p| p.a.rows != m || p.k != k || p.a.cols != k || p.y.rows != m || p.y.cols != p.n) {
        return Err(err("the products of one phase must share M and K".into()));
    }
    if products.iter().any(|p| !p.a.rows_contiguous() || !p.y.rows_contiguous()) {
        return Err(err("A and the output must be row-contiguous matrices".into()));
    }
    // A in column blocks as the weights' k-tiles read them (2:4 tiles
    // span two blocks, `a_bstride` apart); products with an operand on the
    // device read `tk`-wide blocks.
    let tk = (cfg.array.rows.min(cfg.array.cols)) as usize;
    let block_of = |p: &Product<'_>| match p.b {
        BSource::Packed { w, .. } => w.a_block(),
        BSource::Mat(_) => tk,
    };
    let a_block = block_of(first);
    if products.iter().any(|p| block_of(p) != a_block) {
        return Err(err("the products of one phase must read A in one block width".into()));
    }
    let sparse = |p: &Product<'_>| matches!(p.b, BSource::Packed { w, .. } if w.format() == crate::gemm::WeightFormat::Sparse24I8);
    if products.iter().any(sparse) && (!cross.za_rows.is_empty() || !cross.zb_tiles.is_empty()) {
        return Err(err("zero-point cross terms with 2:4-sparse weights".into()));
    }
    let plan = Plan::new(m, k, a_block, cross, cfg)
        .ok_or_else(|| err(format!("M = {m}, K = {k} leave no room for a tile in the scratchpad")))?;
    let (mt, kt) = (plan.mt, plan.kt);
    let mut steps_out = Vec::new();
    let mut macs = 0u64;
    for pr in products {
        let nt = pr.n.div_ceil(dim);
        for r0 in (0..m).step_by(mt) {
            let rr = mt.min(m - r0);
            for j in 0..nt {
                let nj = dim.min(pr.n - j * dim);
                let p = steps_out.len() % 2;
                let mut st = Step::default();
                for i in 0..plan.na {
                    let kk = a_block.min(k - i * a_block);
                    let at = pr.a.at(r0, i * a_block);
                    st.load.push(load(ins::BUF_SPAD, at, pr.a.row_bytes(), rr, kk, plan.a[p] + (i * mt) as u16));
                }
                match pr.b {
                    BSource::Packed { w, addr } => {
                        st.load.push(Instr::from(w.stripe_load(j, 0..w.k_tiles(), addr, plan.b[p])))
                    }
                    BSource::Mat(b) if b.rows_contiguous() => {
                        st.load.push(load(ins::BUF_SPAD, b.at(0, j * dim), b.row_bytes(), k, nj, plan.b[p]));
                    }
                    BSource::Mat(b) if b.row_stride == 1 && tk == dim => {
                        // A transposed view (Kᵀ of keys stored row by row):
                        // the n-tile's rows of Bᵀ, column-blocked by k-tile,
                        // for transposed weight tiles (`ldw trans`).
                        st.load.push(Instr::from(ins::Load {
                            buf: ins::BUF_SPAD,
                            dram: b.at(0, j * dim) as u32,
                            stride: (b.col_stride * b.esize) as u32,
                            rows: nj as u16,
                            cols: k as u16,
                            addr: plan.b[p],
                            ..Default::default()
                        }));
                    }
                    BSource::Mat(b) => {
                        // Any other strides: column c of B (K elements at the
                        // row stride) into scratchpad column c.
                        for c in 0..nj {
                            let mut l = ins::Load {
                                buf: ins::BUF_SPAD,
                                dram: b.at(0, j * dim + c) as u32,
                                stride: b.row_bytes() as u32,
                                rows: k as u16,
                                cols: 1,
                                addr: plan.b[p],
                                col: c as u16,
                                ..Default::default()
                            };
                            l.deps = ins::Deps::NONE;
                            st.load.push(Instr::from(l));
                        }
                    }
                }
                st.load.extend(cross.loads((plan.za[p], plan.zb[p]), dim, tk));
                st.load.push(load(ins::BUF_ACC, pr.init + (j * dim * 4) as u64, 0, rr, nj, plan.t[p]));
                match pr.post {
                    Post::F32PerColumn(at) => {
                        st.load.push(load(ins::BUF_ACC, at + (j * dim * 4) as u64, (dim * 4) as u64, 1, dim, plan.p[p]))
                    }
                    Post::Int8 { params, .. } => st.load.push(Instr::from(crate::gemm::load_params(
                        params + (j * 2 * dim * 4) as u64,
                        2,
                        dim,
                        plan.p[p],
                        ins::Deps::NONE,
                    ))),
                    Post::F32(_) => {}
                }
                let c = &mut st.compute;
                let mm = |a: u16, swap: bool, in_type: u8| ins::Matmul {
                    a,
                    m: rr as u16,
                    acc: plan.t[p],
                    accumulate: 1,
                    swap: swap as u8,
                    in_type,
                    ..Default::default()
                };
                // Packed weights: their k-tiles (2:4 ones cover two of A's
                // blocks); B on the device: `tk`-row tiles.
                let k_tiles = match pr.b {
                    BSource::Packed { w, .. } => w.k_tiles(),
                    BSource::Mat(_) => kt,
                };
                for i in 0..k_tiles {
                    let (tile, a_off, a_bstride) = match pr.b {
                        BSource::Packed { w, .. } => {
                            let (a_off, a_bstride) = w.tile_input(i, mt);
                            (w.tile(i, j, (0, plan.b[p])), a_off, a_bstride)
                        }
                        BSource::Mat(_) => {
                            let tile = crate::gemm::WeightTile {
                                addr: plan.b[p] + (i * tk) as u16,
                                k: tk.min(k - i * tk) as u16,
                                n: nj as u16,
                                wfmt: 0,
                                meta: 0,
                            };
                            (tile, i * mt, 0)
                        }
                    };
                    let kk = tile.k as usize;
                    let a_row = plan.a[p] + a_off as u16;
                    match pr.b {
                        BSource::Mat(b) if !b.rows_contiguous() && b.row_stride == 1 && tk == dim => {
                            c.push(Instr::from(ins::Ldw {
                                addr: plan.b[p] + (i * nj) as u16,
                                k: kk as u16,
                                n: nj as u16,
                                trans: 1,
                                ..Default::default()
                            }));
                        }
                        _ => c.push(tile.ldw(ins::Deps::NONE)),
                    }
                    c.push(Instr::from(ins::Matmul { a_bstride, ..mm(a_row, true, pr.a_unsigned as u8) }));
                    for q in 0..cross.za_rows.len() {
                        let mut z = mm(plan.za[p] + q as u16, false, ins::ELEM_I8);
                        (z.a_group, z.a_gstride) = (1, 0);
                        c.push(Instr::from(z));
                    }
                    for q in 0..cross.zb_tiles.len() {
                        let zt = crate::gemm::WeightTile {
                            addr: plan.zb[p] + (q * tk) as u16,
                            k: kk as u16,
                            n: nj as u16,
                            wfmt: 0,
                            meta: 0,
                        };
                        c.push(zt.ldw(ins::Deps::NONE));
                        c.push(Instr::from(mm(a_row, true, pr.a_unsigned as u8)));
                    }
                    macs += ((1 + cross.za_rows.len() + cross.zb_tiles.len()) * rr * kk * nj) as u64;
                }
                let (buf, src, esize) = match pr.post {
                    Post::F32PerColumn(_) | Post::F32(_) => {
                        let (scale_imm, imm) = match pr.post {
                            Post::F32(s) => (1, s.to_bits()),
                            _ => (0, 0),
                        };
                        c.push(Instr::from(ins::Vdeq {
                            src_buf: ins::BUF_ACC,
                            src: plan.t[p],
                            src_step: 1,
                            src_bstride: rr as u16,
                            dst: plan.o[p],
                            dst_step: 1,
                            dst_bstride: rr as u16,
                            rows: rr as u16,
                            len: nj as u16,
                            scale_imm,
                            scale: if scale_imm == 1 { 0 } else { plan.p[p] },
                            imm,
                            ..Default::default()
                        }));
                        (ins::BUF_ACC, plan.o[p], 4)
                    }
                    Post::Int8 { zp, unsigned, .. } => {
                        let (qmin, qmax) = if unsigned { (0, 255) } else { (-128, 127) };
                        c.push(Instr::from(ins::Requant {
                            acc: plan.t[p],
                            rows: rr as u16,
                            dst: plan.out_spad[p],
                            params: plan.p[p],
                            out_type: unsigned as u8,
                            zp: zp as i16,
                            qmin,
                            qmax,
                            ..Default::default()
                        }));
                        (ins::BUF_SPAD, plan.out_spad[p], 1)
                    }
                };
                debug_assert_eq!(esize, pr.y.esize);
                st.store.push(Instr::from(ins::Store {
                    buf,
                    dram: pr.y.at(r0, j * dim) as u32,
                    stride: pr.y.row_bytes() as u32,
                    rows: rr as u16,
                    cols: nj as u16,
                    addr: src,
                    ..Default::default()
                }));
                steps_out.push(st);
            }
        }
    }
    Ok((steps::chain(steps_out), macs))
}

/// The zero points of an activation × activation product and its output
/// scale, for `emit_act`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ActQuant {
    pub za: i32,
    pub zb: i32,
    /// The product's float32 scale: `s_a · s_b` (float out) or the
    /// requantization scale (int8 out).
    pub scale: f32,
    /// Int8 out: zero point and whether unsigned.
    pub out: Option<(i32, bool)>,
}

/// Whether `emit_act`'s float epilogue is exact for a product of `k`
/// reductions: every partial sum of the int32 accumulator and its cross
/// terms stays below 2^24 in magnitude, so it is exact in binary32.
pub(crate) fn act_exact(k: usize, a_unsigned: bool, q: &ActQuant) -> bool {
    let amax: i64 = if a_unsigned { 255 } else { 128 };
    let (za, zb) = (q.za.unsigned_abs() as i64, q.zb.unsigned_abs() as i64);
    (k as i64) * (amax * 128 + za * 128 + zb * amax + za * zb) < 1 << 24
}

/// Estimated busy cycles of a post-processing instruction (ISA.md §4).
pub(crate) fn post_cycles(i: &Instr, lanes: u32) -> u64 {
    use isa::timing as t;
    match i {
        Instr::Vdeq(v) => t::vector_beats(v.rows, v.len, lanes) + t::VEC_LATENCY,
        Instr::Vquant(v) => t::VQUANT_CYCLES * t::vector_beats(v.rows, v.len, lanes) + t::VEC_LATENCY,
        Instr::Vop(v) => t::VOP_CYCLES[v.op as usize] * t::vector_beats(v.rows, v.len, lanes) + t::VEC_LATENCY,
        Instr::Vred(v) => t::vred_cycles(v.rows, v.len, lanes),
        Instr::Requant(r) => r.rows as u64 + t::REQUANT_OVERHEAD,
        _ => 1,
    }
}

/// Activation × activation products (`Op::MatMul`, one per head) with
/// the zero points' cross terms off the array's critical path:
/// `acc = Σ ab + C[c] + R[r]` with `C = Σ_k (−za)·b + K·za·zb` (one
/// scratchpad row of `−za` streamed once per weight tile: one array row)
/// and `R = Σ_k a·(−zb)` (A streamed once per k-tile through a tile of
/// `−zb`, every column the row's value), added in the epilogue in binary32
/// — exact, as `act_exact` checks — then scaled (`f32(acc) · s`, as
/// `vdeq`) and, for int8 out, rounded by `vquant` with scale 1 (which is
/// `requantize`). A step is one (head, block of rows) with every n-tile,
/// so a head's A is loaded once per block and its scores rows are one
/// contiguous STORE; steps are software-pipelined (`chain_pipelined`).
/// Returns None when the shapes do not fit this schedule.
pub(crate) fn emit_act(
    products: &[Product<'_>],
    cross: &Cross,
    q: &ActQuant,
    cfg: &HwConfig,
) -> Option<(Vec<Instr>, u64)> {
    let dim = cfg.array.cols as usize;
    let tk = (cfg.array.rows.min(cfg.array.cols)) as usize;
    let lanes = cfg.vector_lanes();
    let first = products.first()?;
    let (m, k, n) = (first.a.rows, first.k, first.n);
    let uniform = products
        .iter()
        .all(|p| p.a.rows == m && p.k == k && p.n == n && p.a.cols == k && p.y.rows == m && p.y.cols == n);
    if !uniform || products.iter().any(|p| !p.a.rows_contiguous() || !p.y.rows_contiguous()) || tk != dim {
        return None;
    }
    if !act_exact(k, first.a_unsigned, q) || products.iter().any(|p| p.a_unsigned != first.a_unsigned) {
        return None;
    }
    // B as a whole: row-contiguous (V) or transposed (Kᵀ: keys row by row).
    let trans = match first.b {
        BSource::Mat(b) if b.rows_contiguous() => false,
        BSource::Mat(b) if b.row_stride == 1 => true,
        _ => return None,
    };
    if products
        .iter()
        .any(|p| !matches!(p.b, BSource::Mat(b) if (if trans { b.row_stride == 1 } else { b.rows_contiguous() })))
    {
        return None;
    }
    let (kt, nt) = (k.div_ceil(tk), n.div_ceil(dim));
    let (nza, nzb) = (cross.za_rows.len(), cross.zb_tiles.len());
    let cross_terms = nza + nzb > 0;
    // Accumulator: per set, T (nt blocks of rr rows), R (rr), C (nt rows).
    let accr = cfg.acc_rows() as usize;
    let rr_acc = (accr / 2).checked_sub(nt)? / (nt + 1);
    // Scratchpad: B twice, A twice, the cross-term rows, int8 out twice.
    let b_rows = if trans { kt * n } else { nt * k };
    let fixed = 2 * b_rows + nza + nzb * tk;
    let rr_spad = (cfg.spad_rows() as usize).checked_sub(fixed)? / (2 * (kt + nt));
    let mut rr = m.min(rr_acc).min(rr_spad).min(65535 / nt.max(1)).min(65535 / kt.max(1));
    if rr == 0 {
        return None;
    }
    rr = m.div_ceil(m.div_ceil(rr));
    let set = nt * rr + rr + nt;
    let t_at = |p: usize| (p * set) as u16;
    let r_at = |p: usize| (p * set + nt * rr) as u16;
    let c_at = |p: usize| (p * set + nt * rr + rr) as u16;
    let b_at = |h: usize| ((h % 2) * b_rows) as u16;
    let za_at = (2 * b_rows) as u16;
    let zb_at = za_at + nza as u16;
    let a_at = |p: usize| zb_at + (nzb * tk) as u16 + (p * kt * rr) as u16;
    let o_at = |p: usize| a_at(2) + (p * nt * rr) as u16;
    let mut steps = Vec::new();
    let mut macs = 0u64;
    for (h, pr) in products.iter().enumerate() {
        let BSource::Mat(b) = pr.b else { return None };
        for r0 in (0..m).step_by(rr) {
            let rows = rr.min(m - r0);
            let p = steps.len() % 2;
            let mut st = steps::PipeStep::default();
            if r0 == 0 {
                st.load.push(if trans {
                    // Bᵀ's n rows, column-blocked by k-tile: block i at b + i n.
                    load(ins::BUF_SPAD, b.at(0, 0), (b.col_stride * b.esize) as u64, n, k, b_at(h))
                } else {
                    // B's k rows, column-blocked by n-tile: block j at b + j k.
                    load(ins::BUF_SPAD, b.at(0, 0), b.row_bytes(), k, n, b_at(h))
                });
                if h == 0 {
                    st.load.extend(cross.loads((za_at, zb_at), dim, tk));
                }
            }
            st.load.push(load(ins::BUF_SPAD, pr.a.at(r0, 0), pr.a.row_bytes(), rows, k, a_at(p)));
            if nza > 0 {
                // C starts at K·za·zb (the init rows, one per n-tile).
                st.load.push(load(ins::BUF_ACC, pr.init, (dim * 4) as u64, nt, dim, c_at(p)));
            }
            // Weight tiles in order, each with the matmuls that use it.
            let mut uses: Vec<(ins::Ldw, Vec<ins::Matmul>)> = Vec::new();
            let mm = matmul;
            for j in 0..nt {
                let nj = dim.min(n - j * dim);
                for i in 0..kt {
                    let kk = tk.min(k - i * tk);
                    let tile = BTiles { base: b_at(h), trans, k, n, tk, dim }.ldw(i, j);
                    let mut list = vec![mm(
                        a_at(p) + (i * rows) as u16,
                        rows,
                        t_at(p) + (j * rows) as u16,
                        i > 0,
                        pr.a_unsigned as u8,
                    )];
                    macs += (rows * kk * nj) as u64;
                    for x in 0..nza {
                        list.push(mm(za_at + x as u16, 1, c_at(p) + j as u16, true, ins::ELEM_I8));
                        macs += (kk * nj) as u64;
                    }
                    uses.push((tile, list));
                }
            }
            for x in 0..nzb {
                for i in 0..kt {
                    let kk = tk.min(k - i * tk);
                    let tile = zb_tile(zb_at, tk, x, kk, dim);
                    let first = x == 0 && i == 0;
                    uses.push((
                        tile,
                        vec![mm(a_at(p) + (i * rows) as u16, rows, r_at(p), !first, pr.a_unsigned as u8)],
                    ));
                    macs += (rows * kk * dim) as u64;
                }
            }
            st.main.push(Instr::from(uses[0].0));
            for u in 0..uses.len() {
                let next = uses.get(u + 1).map(|x| x.0);
                for (idx, mut mmi) in uses[u].1.clone().into_iter().enumerate() {
                    if idx == 0 {
                        mmi.swap = 1;
                        if let Some(t) = next {
                            (mmi.preload, mmi.w, mmi.k, mmi.n, mmi.trans) = (1, t.addr, t.k, t.n, t.trans);
                        }
                    }
                    st.main.push(Instr::from(mmi));
                }
            }
            // The epilogue, in binary32 on the step's own rows.
            let tile = super::vector_ops::Pat::tile(t_at(p), rows);
            let mut epi = vec![Instr::from(ins::Vdeq {
                src_buf: ins::BUF_ACC,
                src: t_at(p),
                src_step: 1,
                src_bstride: rows as u16,
                dst: t_at(p),
                dst_step: 1,
                dst_bstride: rows as u16,
                rows: rows as u16,
                len: n as u16,
                scale_imm: 1,
                imm: if cross_terms { 1.0f32 } else { q.scale }.to_bits(),
                ..Default::default()
            })];
            use super::vector_ops::{vop, Pat, B};
            if nza > 0 {
                let c_rows = Instr::from(ins::Vdeq {
                    src_buf: ins::BUF_ACC,
                    src: c_at(p),
                    src_step: 1,
                    dst: c_at(p),
                    dst_step: 1,
                    rows: nt as u16,
                    len: dim as u16,
                    scale_imm: 1,
                    imm: 1.0f32.to_bits(),
                    ..Default::default()
                });
                epi.push(c_rows);
                epi.push(vop(ins::VOP_ADD, tile, tile, B::Pat(Pat::vector(c_at(p))), rows, n));
            }
            if nzb > 0 {
                epi.push(Instr::from(ins::Vdeq {
                    src_buf: ins::BUF_ACC,
                    src: r_at(p),
                    src_step: 1,
                    dst: r_at(p),
                    dst_step: 1,
                    rows: rows as u16,
                    len: dim as u16,
                    scale_imm: 1,
                    imm: 1.0f32.to_bits(),
                    ..Default::default()
                }));
                epi.push(vop(ins::VOP_ADD, tile, tile, B::Pat(Pat::scalars(r_at(p))), rows, n));
            }
            if cross_terms {
                epi.push(vop(ins::VOP_MUL, tile, tile, B::Imm(q.scale), rows, n));
            }
            let (buf, src) = match q.out {
                Some((zp, unsigned)) => {
                    let (qmin, qmax) = if unsigned { (0, 255) } else { (-128, 127) };
                    epi.push(Instr::from(ins::Vquant {
                        out_type: unsigned as u8,
                        src: t_at(p),
                        src_step: 1,
                        src_bstride: rows as u16,
                        dst: o_at(p),
                        dst_step: 1,
                        dst_bstride: rows as u16,
                        rows: rows as u16,
                        len: n as u16,
                        zp: zp as i16,
                        qmin,
                        qmax,
                        scale: 1.0f32.to_bits(),
                        ..Default::default()
                    }));
                    (ins::BUF_SPAD, o_at(p))
                }
                None => (ins::BUF_ACC, t_at(p)),
            };
            st.store_reads_main = q.out.is_none();
            st.epi = epi.into_iter().map(|i| (i, post_cycles(&i, lanes))).collect();
            st.store.push(Instr::from(ins::Store {
                buf,
                dram: pr.y.at(r0, 0) as u32,
                stride: pr.y.row_bytes() as u32,
                rows: rows as u16,
                cols: n as u16,
                addr: src,
                ..Default::default()
            }));
            steps.push(st);
        }
    }
    Some((steps::chain_pipelined(steps, isa::timing::array_latency(cfg.array.rows, cfg.array.cols)), macs))
}

/// A requantized Linear layer (`Op::Dense`) and the vector stages after
/// it (`Dequantize` first, then element-wise stages, `Quantize` last at
/// most), for `emit_dense_chain`.
pub(crate) struct DenseChain<'a> {
    pub a: Mat,
    pub a_unsigned: bool,
    pub w: &'a PackedWeights,
    pub w_addr: u64,
    /// `gemm::pack_params` rows (bias, scale) per n-tile.
    pub params: u64,
    pub zp: i32,
    pub qmin: i32,
    pub qmax: i32,
    pub unsigned: bool,
    pub kinds: Vec<super::vector_ops::Kind>,
    pub y: Mat,
}

/// How a fused Linear layer's int32 accumulator tile becomes its first
/// rows on chip.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Head {
    /// `requant` to int8 with `gemm::pack_params` rows (bias, scale) per
    /// n-tile at `params`; the chain's first stage is the Dequantize that
    /// reads them.
    Requant { params: u64, zp: i32, qmin: i32, qmax: i32, unsigned: bool },
    /// Float out (`Op::DenseF32`), `dequantize(bias + Σ (x − zx) w, s[n])`
    /// bit for bit: `float_params` rows (folded bias, scale) per n-tile at
    /// `params`, and how the folded bias gets in.
    Float { params: u64, bias: FloatBias },
}

/// How `Head::Float` adds the folded bias `bias − zx Σ_k w`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum FloatBias {
    /// It is zero: one `vdeq` with per-column scales.
    Zero,
    /// The array's raw `Σ x w` is converted with scale 1, the folded
    /// bias added in binary32 and the scale applied (`vdeq`, `vop add`,
    /// `vop mul`): exact when `float_fold_exact` holds; no bytes move.
    Folded,
    /// Int32 rows (one `dim` wide per n-tile) at this data offset, copied
    /// by a stride-0 LOAD into every row of the accumulator tile before
    /// the array adds to it, then one `vdeq`: exact for any bias, but
    /// slower where `Folded` is exact (measured on tinybert's FFN1, whose
    /// LOAD's per-row DRAM ranges outweigh two vector passes: 61.2 k
    /// cycles against 53.0 k; FFN2 11.6 k against 11.4 k).
    Loaded(u64),
}

/// A Linear layer with its epilogue on chip, for `emit_fused`: the head,
/// then the vector stages (element-wise, `Quantize` last at most).
pub(crate) struct FusedLinear<'a> {
    pub a: Mat,
    pub a_unsigned: bool,
    pub w: &'a PackedWeights,
    pub w_addr: u64,
    pub head: Head,
    pub kinds: Vec<super::vector_ops::Kind>,
    pub y: Mat,
}

/// The rows `Head::Float` reads: per n-tile the folded bias (as float32,
/// exact when `float_fold_exact` holds) and the scales, `dim` wide.
pub(crate) fn float_params(folded: &[i32], scales: &[f32], dim: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(folded.len().div_ceil(dim) * 2 * dim * 4);
    for (f, s) in folded.chunks(dim).zip(scales.chunks(dim)) {
        let row = |vals: Vec<f32>| (0..dim).flat_map(move |c| vals.get(c).copied().unwrap_or(0.0).to_le_bytes());
        out.extend(row(f.iter().map(|&v| v as f32).collect()));
        out.extend(row(s.to_vec()));
    }
    out
}

/// Whether `Head::Float`'s folded epilogue is exact for B `[k, n]`, the
/// folded biases `bias − zx Σ_k w` (as exact integers) and inputs in
/// `x_range`: per column the raw sum `Σ x w`, the folded bias and their
/// sum stay within ±2^24, so each is exact in binary32, their float sum
/// is the int32 accumulator (which then does not wrap) and the scale's
/// one rounding is `dequantize`'s.
pub(crate) fn float_fold_exact(b: &[i8], k: usize, n: usize, folded: &[i64], zx: i32, x_range: (i32, i32)) -> bool {
    const EXACT: i64 = 1 << 24;
    let mut abs = vec![0i64; n];
    for row in b.chunks_exact(n.max(1)).take(k) {
        abs.iter_mut().zip(row).for_each(|(s, &v)| *s += (v as i64).abs());
    }
    let (lo, hi) = (x_range.0 as i64, x_range.1 as i64);
    let (x_abs, d_abs) = (lo.abs().max(hi.abs()), (lo - zx as i64).abs().max((hi - zx as i64).abs()));
    (0..n).all(|c| {
        let f = folded[c].abs();
        x_abs * abs[c] <= EXACT && f <= EXACT && (d_abs * abs[c] + f) <= EXACT
    })
}

/// A step's epilogue with the cycle estimates `steps::chain_pipelined`
/// places the next step's array work by. It spreads that work over the
/// epilogue, and each vector instruction then waits for the array to
/// drain: when the whole of it fits under one long instruction (GELU's
/// `erf`), the instructions before that one are given no cycles, so the
/// array work goes in after it and the vector unit never waits (tinybert's
/// FFN1: 1.5 k instead of 1.6 k cycles a step).
fn overlap_hints(epi: Vec<Instr>, main: &[Instr], lanes: u32, cfg: &HwConfig) -> Vec<(Instr, u64)> {
    let array: u64 = main
        .iter()
        .map(|i| match i {
            Instr::Matmul(m) => (m.m as u64).max(if m.preload == 1 { m.k as u64 } else { 0 }),
            Instr::Ldw(l) => l.k as u64,
            _ => 0,
        })
        .sum();
    let drain = isa::timing::array_latency(cfg.array.rows, cfg.array.cols);
    let mut est: Vec<(Instr, u64)> = epi.into_iter().map(|i| (i, post_cycles(&i, lanes))).collect();
    if let Some(long) = est.iter().position(|&(_, c)| c >= array + drain) {
        est[..long].iter_mut().for_each(|e| e.1 = 0);
    }
    est
}

/// The Linear layer with its epilogue on chip (`emit_fused`, `Head::Requant`).
pub(crate) fn emit_dense_chain(job: &DenseChain<'_>, cfg: &HwConfig) -> Option<(Vec<Instr>, u64)> {
    let head = Head::Requant { params: job.params, zp: job.zp, qmin: job.qmin, qmax: job.qmax, unsigned: job.unsigned };
    let fused = FusedLinear {
        a: job.a,
        a_unsigned: job.a_unsigned,
        w: job.w,
        w_addr: job.w_addr,
        head,
        kinds: job.kinds.clone(),
        y: job.y,
    };
    emit_fused(&fused, cfg)
}

/// The Linear layer with its epilogue on chip: per step (block of rows,
/// n-tile) the array streams A (resident for the block) past the stripe's
/// live tiles (each preloaded while the one before streams; 2:4 tiles read
/// two of A's column blocks, `a_bstride`), the head turns the tile into
/// rows (`requant` to int8, or float32), and the stages run on them in the
/// accumulator while the next step's array work runs (`chain_pipelined`);
/// only the chain's result is stored. Returns None when the layer does not
/// fit this schedule (the caller lowers its nodes one by one).
pub(crate) fn emit_fused(job: &FusedLinear<'_>, cfg: &HwConfig) -> Option<(Vec<Instr>, u64)> {
    use super::vector_ops::{operand_loads_at, stage, Kind, Operand, Pat, Scratch};
    use crate::gemm::WeightFormat;
    let dim = cfg.array.cols as usize;
    let lanes = cfg.vector_lanes();
    let w = job.w;
    let (m, k, n) = (job.a.rows, w.k(), w.n());
    if !matches!(w.format(), WeightFormat::DenseI8 | WeightFormat::Sparse24I8) || w.tile_shape().n != dim {
        return None;
    }
    if !job.a.rows_contiguous() || !job.y.rows_contiguous() || job.a.cols != k || job.y.rows != m || job.y.cols != n {
        return None;
    }
    let requant = matches!(job.head, Head::Requant { .. });
    // A requantized head feeds the chain's Dequantize; a float head feeds
    // float stages (or is the result).
    let well_formed = if requant {
        matches!(job.kinds.first(), Some(Kind::Dequantize { .. })) && super::vector_ops::chain_ok(&job.kinds)
    } else {
        job.kinds.is_empty()
            || (super::vector_ops::chain_ok(&job.kinds) && !matches!(job.kinds[0], Kind::Dequantize { .. }))
    };
    let elementwise = job.kinds.iter().all(|k| !matches!(k, Kind::LayerNorm { .. } | Kind::Softmax));
    if !well_formed || !elementwise {
        return None;
    }
    let quantized = matches!(job.kinds.last(), Some(Kind::Quantize { .. }));
    let temp = job.kinds.iter().any(|k| matches!(k, Kind::GeluErf | Kind::GeluTanh));
    let nt = w.n_tiles();
    // A's column blocks (2:4 k-tiles read two of them).
    let (a_blocks, a_block) = (w.a_blocks(), w.a_block());
    let stripe = w.stripe_rows();
    // Accumulator per set: T, X, [temp], [out], operands (a tile of rows
    // or one row each), params (2).
    let operand_rows = |rr: usize| -> Vec<usize> {
        job.kinds
            .iter()
            .map(|k| match k {
                Kind::Binary(_, Operand::Rows(_) | Operand::RowScalar(_)) => rr,
                Kind::Binary(_, Operand::Vector(_)) => 1,
                _ => 0,
            })
            .collect()
    };
    let out_rows = !quantized && !job.kinds.is_empty();
    let set_rows = |rr: usize| {
        2 * rr + (temp as usize) * rr + (out_rows as usize) * rr + operand_rows(rr).iter().sum::<usize>() + 2
    };
    let accr = cfg.acc_rows() as usize;
    let spad = cfg.spad_rows() as usize;
    let mut rr = m.min(256);
    let spad_need = |rr: usize| {
        let blocks = m.div_ceil(rr);
        (if blocks > 1 { 2 } else { 1 }) * a_blocks * rr + 2 * stripe + 4 * rr
    };
    while rr > 0 && (2 * set_rows(rr) > accr || spad_need(rr) > spad || a_blocks * rr > 65535) {
        rr -= 1;
    }
    if rr == 0 {
        return None;
    }
    rr = m.div_ceil(m.div_ceil(rr));
    let blocks = m.div_ceil(rr);
    let set = set_rows(rr);
    let t_at = |p: usize| (p * set) as u16;
    let x_at = |p: usize| (p * set + rr) as u16;
    let temp_at = |p: usize| (p * set + 2 * rr) as u16;
    let out_at = |p: usize| (p * set + (2 + temp as usize) * rr) as u16;
    let ops_base = |p: usize| p * set + (2 + temp as usize + out_rows as usize) * rr;
    let op_rows = operand_rows(rr);
    let op_at = |p: usize, i: usize| (ops_base(p) + op_rows[..i].iter().sum::<usize>()) as u16;
    let par_at = |p: usize| (p * set + set - 2) as u16;
    let a_at = |b: usize| ((if blocks > 1 { b % 2 } else { 0 }) * a_blocks * rr) as u16;
    let a_end = (if blocks > 1 { 2 } else { 1 }) * a_blocks * rr;
    // Every stripe resident when they fit: each loaded once, ahead of its
    // step (`resident_stripes`); else two stripe buffers, one per set.
    let resident = resident_stripes(nt, stripe, a_end + 4 * rr, spad);
    let w_rows = if resident { nt } else { 2 } * stripe;
    let w_at = |p: usize, j: usize| (a_end + if resident { j } else { p } * stripe) as u16;
    let q8_at = |p: usize| (a_end + w_rows + p * rr) as u16;
    let o8_at = |p: usize| (a_end + w_rows + 2 * rr + p * rr) as u16;
    // Per step, LOADs that go just before its package without its wait.
    let mut prefetch: Vec<Vec<Instr>> = Vec::new();
    let params = match job.head {
        Head::Requant { params, .. } | Head::Float { params, .. } => params,
    };
    // The folded bias of a float head: none, in binary32 (true) or loaded
    // into the accumulator (its rows).
    let (fold, init) = match job.head {
        Head::Float { bias: FloatBias::Folded, .. } => (true, None),
        Head::Float { bias: FloatBias::Loaded(rows), .. } => (false, Some(rows)),
        _ => (false, None),
    };
    let mut steps = Vec::new();
    let mut macs = 0u64;
    for b in 0..blocks {
        let r0 = b * rr;
        let rows = rr.min(m - r0);
        for j in 0..nt {
            let nj = w.tile_cols(j);
            let p = steps.len() % 2;
            let mut st = steps::PipeStep::default();
            prefetch.push(Vec::new());
            if j == 0 {
                if a_block == dim {
                    // One LOAD writes the row's column blocks `rows` apart.
                    st.load.push(load(ins::BUF_SPAD, job.a.at(r0, 0), job.a.row_bytes(), rows, k, a_at(b)));
                } else {
                    for x in 0..a_blocks {
                        let (c0, cols) = (x * a_block, a_block.min(k - x * a_block));
                        let at = a_at(b) + (x * rows) as u16;
                        st.load.push(load(ins::BUF_SPAD, job.a.at(r0, c0), job.a.row_bytes(), rows, cols, at));
                    }
                }
            }
            let stripe_load = Instr::from(w.stripe_load(j, 0..w.k_tiles(), job.w_addr, w_at(p, j)));
            match (resident, b, steps.len()) {
                (false, ..) | (true, 0, 0 | 1) => st.load.push(stripe_load),
                // Its region is its own: no need to wait for a release.
                (true, 0, s) => prefetch[s].push(stripe_load),
                (true, ..) => {}
            }
            st.load.push(Instr::from(crate::gemm::load_params(
                params + (j * 2 * dim * 4) as u64,
                2,
                dim,
                par_at(p),
                ins::Deps::NONE,
            )));
            if let Some(init) = init {
                // The folded bias in every row of the tile the array adds to.
                st.load.push(load(ins::BUF_ACC, init + (j * dim * 4) as u64, 0, rows, nj, t_at(p)));
            }
            // Operands: the n-tile's columns of each stage's operand.
            for (i, kind) in job.kinds.iter().enumerate() {
                let sliced = match kind {
                    Kind::Binary(op, Operand::Rows(mm)) => {
                        Kind::Binary(*op, Operand::Rows(Mat { addr: mm.at(0, j * dim), cols: nj, ..*mm }))
                    }
                    Kind::Binary(op, Operand::Vector(at)) => {
                        Kind::Binary(*op, Operand::Vector(at + (j * dim * 4) as u64))
                    }
                    other => other.clone(),
                };
                st.load.extend(operand_loads_at(&sliced, (r0, rows), op_at(p, i), (nj, dim)));
            }
            let live = w.live_k_tiles(j);
            let at = (0, w_at(p, j));
            st.main.push(w.tile(live[0], j, at).ldw(ins::Deps::NONE));
            for (idx, &i) in live.iter().enumerate() {
                let (a_off, a_bstride) = w.tile_input(i, rows);
                let mut mm = ins::Matmul {
                    a: a_at(b) + a_off as u16,
                    a_bstride,
                    m: rows as u16,
                    acc: t_at(p),
                    accumulate: (idx > 0 || init.is_some()) as u8,
                    swap: 1,
                    in_type: job.a_unsigned as u8,
                    ..Default::default()
                };
                if let Some(&i1) = live.get(idx + 1) {
                    w.tile(i1, j, at).preload_into(&mut mm);
                }
                st.main.push(Instr::from(mm));
                macs += (rows * w.k_tile_rows(i) * nj) as u64;
            }
            let x = Pat::tile(x_at(p), rows);
            let mut epi = Vec::new();
            match job.head {
                Head::Requant { zp, qmin, qmax, unsigned, .. } => epi.push(Instr::from(ins::Requant {
                    acc: t_at(p),
                    rows: rows as u16,
                    dst: q8_at(p),
                    params: par_at(p),
                    out_type: unsigned as u8,
                    zp: zp as i16,
                    qmin: qmin as i16,
                    qmax: qmax as i16,
                    ..Default::default()
                })),
                Head::Float { .. } => {
                    let (scale_imm, imm) = if fold { (1, 1.0f32.to_bits()) } else { (0, 0) };
                    epi.push(Instr::from(ins::Vdeq {
                        src_buf: ins::BUF_ACC,
                        src: t_at(p),
                        src_step: 1,
                        src_bstride: rows as u16,
                        dst: x.base,
                        dst_step: 1,
                        dst_bstride: rows as u16,
                        rows: rows as u16,
                        len: nj as u16,
                        scale_imm,
                        scale: if fold { 0 } else { par_at(p) + 1 },
                        imm,
                        ..Default::default()
                    }));
                    if fold {
                        use super::vector_ops::{vop, B};
                        epi.push(vop(ins::VOP_ADD, x, x, B::Pat(Pat::vector(par_at(p))), rows, nj));
                        epi.push(vop(ins::VOP_MUL, x, x, B::Pat(Pat::vector(par_at(p) + 1)), rows, nj));
                    }
                }
            }
            let sc = Scratch { temp: Pat::tile(temp_at(p), rows), s1: 0, s2: 0 };
            let last = job.kinds.len().saturating_sub(1);
            for (i, kind) in job.kinds.iter().enumerate() {
                let (a, dst) = match kind {
                    Kind::Dequantize { .. } => (Pat::tile(q8_at(p), rows), x),
                    _ => (x, x),
                };
                let dst = match (i == last, kind) {
                    (true, Kind::Quantize { .. }) => Pat::tile(o8_at(p), rows),
                    (true, _) => Pat::tile(out_at(p), rows),
                    _ => dst,
                };
                epi.extend(stage(kind, (a, dst), op_at(p, i), sc, (rows, nj, dim)));
            }
            st.epi = overlap_hints(epi, &st.main, lanes, cfg);
            let (buf, src, esize) = match (quantized, out_rows) {
                (true, _) => (ins::BUF_SPAD, o8_at(p), 1),
                (false, true) => (ins::BUF_ACC, out_at(p), 4),
                // A float head alone: its rows are the result.
                (false, false) => (ins::BUF_ACC, x.base, 4),
            };
            st.store.push(Instr::from(ins::Store {
                buf,
                dram: job.y.at(r0, j * dim) as u32,
                stride: job.y.row_bytes() as u32,
                rows: rows as u16,
                cols: nj as u16,
                addr: src,
                ..Default::default()
            }));
            debug_assert_eq!(esize, job.y.esize);
            steps.push(st);
        }
    }
    let code = steps::chain_pipelined(steps, isa::timing::array_latency(cfg.array.rows, cfg.array.cols));
    Some((insert_before_packages(code, prefetch), macs))
}

/// Whether `nt` weight stripes of `stripe` scratchpad rows fit beside
/// `other` rows in `spad`: then each stripe has its own region and its
/// LOAD needs no release, so it goes ahead of its step's package rather
/// than after the release of the step two before (the end of that step's
/// epilogue), which left the array idle while the stripe moved
/// (tinybert_nm24's FFN2 on 2:4 tiles: ~100 cycles a step).
fn resident_stripes(nt: usize, stripe: usize, other: usize, spad: usize) -> bool {
    nt > 2 && other + nt * stripe <= spad.min(65536)
}

/// `code` (a `steps::chain_pipelined` stream) with `before[s]` inserted
/// just before package `s`'s first LOAD: LOADs without tokens, which the
/// LOAD queue runs after package `s - 1` and before package `s` (whose
/// signal then covers them: a DMA queue finishes in order), as soon as
/// they are dispatched rather than once package `s`'s wait is met.
fn insert_before_packages(code: Vec<Instr>, before: Vec<Vec<Instr>>) -> Vec<Instr> {
    if before.iter().all(Vec::is_empty) {
        return code;
    }
    let mut before = before.into_iter();
    let mut out = Vec::with_capacity(code.len() + before.len());
    let mut package_open = false;
    for i in code {
        if i.queue() == Some(isa::instr::Queue::Load) {
            if !package_open {
                out.extend(before.next().into_iter().flatten());
            }
            package_open = !i.deps().push_next;
        }
        out.push(i);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lower::memory::MemoryPlan;
    use crate::lower::place::Place;
    use isa::numerics::{dequantize, requant_scale, requantize};

    fn i32_rows(v: &[i32], n: usize, dim: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for j in 0..n.div_ceil(dim) {
            for c in 0..dim {
                out.extend(v.get(j * dim + c).copied().unwrap_or(0).to_le_bytes());
            }
        }
        out
    }

    /// Two heads of `q [M, K] · kᵀ` (B a transposed view of `k [N, K]`,
    /// loaded a column at a time) with zero points -128 (split into two
    /// parts) and 5, float out; and `p [M, N] · v [N, K]` uint8 × int8,
    /// requantized; on a 4x4 array with K, N, M not multiples of 4.
    #[test]
    fn act_by_act_products_with_zero_points() {
        let cfg = HwConfig::tiny_4x4();
        let dim = 4;
        let (m, k, n, heads) = (7usize, 6usize, 9usize, 2usize);
        let mut mem = MemoryPlan::new(0);
        let q: Vec<u8> = (0..heads * m * k).map(|i| (i * 37 % 251) as u8).collect();
        let kk: Vec<u8> = (0..heads * n * k).map(|i| (i * 53 % 241) as u8).collect();
        let (za, zb) = (5i32, -128i32);
        let (sa, sb) = (0.03f32, 0.07f32);
        let qa = mem.alloc_bytes(&q);
        let ka = mem.alloc_bytes(&kk);
        let init = mem.alloc_bytes(&i32_rows(&vec![(k as i32) * za * zb; n], n, dim));
        let za_rows: Vec<u64> = int8_parts(-za).iter().map(|&v| mem.alloc_bytes(&vec![v as u8; dim])).collect();
        let zb_tiles: Vec<u64> = int8_parts(-zb).iter().map(|&v| mem.alloc_bytes(&vec![v as u8; dim * dim])).collect();
        assert_eq!(zb_tiles.len(), 2);
        let ya = mem.alloc(heads * m * n * 4, 0);
        let qp = Place::contiguous(qa, &[heads, m, k], 1);
        let kt = Place::contiguous(ka, &[heads, n, k], 1).transposed(&[0, 2, 1]);
        let yp = Place::contiguous(ya, &[heads, m, n], 4);
        let s = isa::numerics::vector::mul(sa, sb);
        let products: Vec<Product> = (0..heads)
            .map(|h| Product {
                a: qp.batch()[h],
                a_unsigned: false,
                b: BSource::Mat(kt.batch()[h]),
                k,
                n,
                init,
                post: Post::F32(s),
                y: yp.batch()[h],
            })
            .collect();
        let cross = Cross { za_rows, zb_tiles };
        let act = ActQuant { za, zb, scale: s, out: None };
        assert!(act_exact(k, false, &act));
        // Both schedules: cross terms on the array, and folded (`emit_act`).
        for (code, macs) in
            [emit(&products, &cross, &cfg, "scores").unwrap(), emit_act(&products, &cross, &act, &cfg).unwrap()]
        {
            let (mut d, counters, base) = crate::test_run::run_alone(&cfg, code, mem.data().to_vec());
            assert_eq!(counters.get(isa::Counter::Macs), macs);
            let got = d.read_mem(base + ya, heads * m * n * 4).unwrap();
            for h in 0..heads {
                for i in 0..m {
                    for c in 0..n {
                        let acc = (0..k).fold(0i32, |s, t| {
                            let a = q[(h * m + i) * k + t] as i8 as i32 - za;
                            let b = kk[(h * n + c) * k + t] as i8 as i32 - zb;
                            s.wrapping_add(a * b)
                        });
                        let at = ((h * m + i) * n + c) * 4;
                        let g = f32::from_le_bytes(got[at..at + 4].try_into().unwrap());
                        assert_eq!(g.to_bits(), dequantize(acc, s, 0).to_bits(), "head {h} [{i}, {c}]");
                    }
                }
            }
        }

        // P (uint8, zp 3) · V (int8, zp -2), requantized to int8.
        let mut mem = MemoryPlan::new(0);
        let (zp_, zv, sy, zy) = (3i32, -2i32, 0.2f32, 4i32);
        let pa = mem.alloc_bytes(&q[..m * k]);
        let va = mem.alloc_bytes(&kk[..k * n]);
        let init = mem.alloc_bytes(&i32_rows(&vec![(k as i32) * zp_ * zv; n], n, dim));
        let scale = requant_scale(sa, sb, sy);
        let params = mem.alloc_bytes(&crate::gemm::pack_params(&vec![0; n], &vec![scale; n], dim));
        let za_rows: Vec<u64> = int8_parts(-zp_).iter().map(|&v| mem.alloc_bytes(&vec![v as u8; dim])).collect();
        let zb_tiles: Vec<u64> = int8_parts(-zv).iter().map(|&v| mem.alloc_bytes(&vec![v as u8; dim * dim])).collect();
        let ya = mem.alloc(m * n, 0);
        let product = Product {
            a: Place::contiguous(pa, &[m, k], 1).matrix().unwrap(),
            a_unsigned: true,
            b: BSource::Mat(Place::contiguous(va, &[k, n], 1).matrix().unwrap()),
            k,
            n,
            init,
            post: Post::Int8 { params, zp: zy, unsigned: false },
            y: Place::contiguous(ya, &[m, n], 1).matrix().unwrap(),
        };
        let cross = Cross { za_rows, zb_tiles };
        let act = ActQuant { za: zp_, zb: zv, scale, out: Some((zy, false)) };
        for code in
            [emit(&[product], &cross, &cfg, "context").unwrap().0, emit_act(&[product], &cross, &act, &cfg).unwrap().0]
        {
            let (mut d, _, base) = crate::test_run::run_alone(&cfg, code, mem.data().to_vec());
            let got = d.read_mem(base + ya, m * n).unwrap();
            for i in 0..m {
                for c in 0..n {
                    let acc = (0..k).fold(0i32, |s, t| {
                        s.wrapping_add((q[i * k + t] as i32 - zp_) * (kk[t * n + c] as i8 as i32 - zv))
                    });
                    assert_eq!(got[i * n + c] as i8 as i32, requantize(acc, scale, zy, -128, 127), "[{i}, {c}]");
                }
            }
        }
    }

    /// Float-output Linear layers on the fused path (`emit_fused`,
    /// `Head::Float`) with a bias-add stage after them, on a 4x4 array
    /// with 2:4-sparse PEs: every way of adding the folded bias (none,
    /// in binary32, loaded into the accumulator), dense and 2:4 weights,
    /// M, K and N not multiples of the tile. The result is the
    /// interpreter's `dequantize(bias + Σ (x − zx) w, s_x s_w)` then the
    /// float add, bit for bit, and the array performs the packing's MACs
    /// (half of them on 2:4 tiles).
    #[test]
    fn float_linear_fused_with_every_bias_and_weight_format() {
        use super::super::vector_ops::{Kind, Operand};
        use crate::gemm::{PackedWeights, TileShape, WeightFormat};
        use isa::numerics::vector as v;
        let mut cfg = HwConfig::tiny_4x4();
        cfg.array.sparsity_2_4 = true;
        let dim = 4;
        let (m, k, n) = (9usize, 22usize, 10usize);
        let tile = TileShape { k: 4, n: 4 };
        // 2:4 along K: in every group of 4 reductions two values survive.
        let b: Vec<i8> = (0..k * n)
            .map(|i| {
                let (r, c) = (i / n, i % n);
                if (r + c) % 4 < 2 {
                    ((i * 37 % 255) as i32 - 127) as i8
                } else {
                    0
                }
            })
            .collect();
        assert!(crate::gemm::is_2_4(&b, k, n));
        let x: Vec<u8> = (0..m * k).map(|i| (i * 53 % 256) as u8).collect();
        let (sx, zx) = (0.02f32, 7i32);
        let w_scale: Vec<f32> = (0..n).map(|c| 0.001 * (c + 1) as f32).collect();
        let scales: Vec<f32> = w_scale.iter().map(|&s| v::mul(sx, s)).collect();
        let float_bias: Vec<f32> = (0..n).map(|c| c as f32 * 0.25 - 1.0).collect();
        let sums: Vec<i32> = (0..n).map(|c| (0..k).map(|r| b[r * n + c] as i32).sum()).collect();
        for bias_kind in 0..3 {
            // Zero: no int32 bias and zx = 0; else a bias and zx = 7.
            let (zx, bias): (i32, Vec<i32>) =
                if bias_kind == 0 { (0, vec![0; n]) } else { (zx, (0..n as i32).map(|c| 1000 * c - 3000).collect()) };
            let folded: Vec<i32> = (0..n).map(|c| bias[c] - zx * sums[c]).collect();
            for sparse in [false, true] {
                let w = match sparse {
                    true => PackedWeights::sparse24(&b, k, n, tile, dim).unwrap(),
                    false => PackedWeights::dense_i8(&b, k, n, tile),
                };
                assert_eq!(w.format() == WeightFormat::Sparse24I8, sparse);
                let mut mem = MemoryPlan::new(0);
                let xa = mem.alloc_bytes(&x);
                let wa = mem.alloc_bytes(w.bytes());
                let params = mem.alloc_bytes(&float_params(&folded, &scales, dim));
                let fb = mem.alloc_bytes(&float_bias.iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<u8>>());
                let bias_mode = match bias_kind {
                    0 => FloatBias::Zero,
                    1 => FloatBias::Folded,
                    _ => FloatBias::Loaded(mem.alloc_bytes(&i32_rows(&folded, n, dim))),
                };
                let exact: Vec<i64> = folded.iter().map(|&f| f as i64).collect();
                assert!(float_fold_exact(&b, k, n, &exact, zx, (0, 255)));
                let ya = mem.alloc(m * n * 4, 0);
                let job = FusedLinear {
                    a: Place::contiguous(xa, &[m, k], 1).matrix().unwrap(),
                    a_unsigned: true,
                    w: &w,
                    w_addr: wa,
                    head: Head::Float { params, bias: bias_mode },
                    kinds: vec![Kind::Binary(ins::VOP_ADD, Operand::Vector(fb))],
                    y: Place::contiguous(ya, &[m, n], 4).matrix().unwrap(),
                };
                let (code, macs) = emit_fused(&job, &cfg).expect("fits");
                let (mut d, counters, base) = crate::test_run::run_alone(&cfg, code, mem.data().to_vec());
                assert_eq!(counters.get(isa::Counter::Macs), macs);
                assert_eq!(macs, w.macs(m), "sparse {sparse}");
                let got = d.read_mem(base + ya, m * n * 4).unwrap();
                for i in 0..m {
                    for c in 0..n {
                        let acc = (0..k)
                            .fold(bias[c], |s, r| s.wrapping_add((x[i * k + r] as i32 - zx) * b[r * n + c] as i32));
                        let want = v::add(v::dequantize(acc, scales[c], 0), float_bias[c]);
                        let at = (i * n + c) * 4;
                        let g = f32::from_le_bytes(got[at..at + 4].try_into().unwrap());
                        assert_eq!(g.to_bits(), want.to_bits(), "bias {bias_kind} sparse {sparse} [{i}, {c}]");
                    }
                }
                if bias_kind == 2 {
                    // The unfused product (`emit`) over the same packed k-tiles.
                    let init = mem.alloc_bytes(&i32_rows(&folded, n, dim));
                    let scale_rows = mem.alloc_bytes(
                        &(0..n.div_ceil(dim) * dim)
                            .flat_map(|c| scales.get(c).copied().unwrap_or(0.0).to_le_bytes())
                            .collect::<Vec<u8>>(),
                    );
                    let product = Product {
                        a: job.a,
                        a_unsigned: true,
                        b: BSource::Packed { w: &w, addr: wa },
                        k,
                        n,
                        init,
                        post: Post::F32PerColumn(scale_rows),
                        y: job.y,
                    };
                    let (code, macs) = emit(&[product], &Cross::default(), &cfg, "fc").unwrap();
                    let (mut d, counters, base) = crate::test_run::run_alone(&cfg, code, mem.data().to_vec());
                    assert_eq!((counters.get(isa::Counter::Macs), macs), (w.macs(m), w.macs(m)));
                    let got = d.read_mem(base + ya, m * n * 4).unwrap();
                    for i in 0..m {
                        for c in 0..n {
                            let acc = (0..k)
                                .fold(bias[c], |s, r| s.wrapping_add((x[i * k + r] as i32 - zx) * b[r * n + c] as i32));
                            let at = (i * n + c) * 4;
                            let g = f32::from_le_bytes(got[at..at + 4].try_into().unwrap());
                            assert_eq!(g.to_bits(), v::dequantize(acc, scales[c], 0).to_bits(), "emit sparse {sparse}");
                        }
                    }
                }
            }
        }
        // A sum that leaves binary32's exact integers is not folded.
        let big = vec![127i8; 2048];
        assert!(!float_fold_exact(&big, 2048, 1, &[0], 0, (0, 255)));
    }
}
