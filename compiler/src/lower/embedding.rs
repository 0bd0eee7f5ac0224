//! Embeddings on the device: the rows of an int8 table that int64 ids in
//! device memory select, gathered by indexed `load`s (ISA.md §3 "Indexed
//! `load`") and stored row-major. The device checks every id against the
//! table's rows, so a token id outside the vocabulary is an
//! `IndexOutOfRange` fault naming its position, never a read elsewhere.
//!
//! The phase is `movement::gather_phase`'s copy pipeline (rotating
//! scratchpad buffers, LOAD -> COMPUTE forward -> STORE, release back):
//! each block is a run of ids, one gathering LOAD, one STORE.
//!
//! `MaskSelect` (the folded attention-mask subgraph) is the same gather on
//! 2-row tables of float32 bits ([`mask_runs`], [`MaskRun::gather`]): the
//! mask value selects row 0 (`if_zero`) or 1 (`if_nonzero`) bit for bit,
//! and a mask value other than 0 or 1 is a run-time `IndexOutOfRange`
//! fault naming its position rather than a wrong select.

use super::memory::{Buffer, MemoryPlan};
use super::movement::{gather_phase, GatherBlock};
use super::{input_buffer, unsupported, Ctx};
use crate::gemm::LowerError;
use crate::ir::{ElemType, EmbeddingParams, Op, ValueId};
use isa::instr::{self as ins, Instr};
use isa::layout::Layout;
use isa::HwConfig;

/// Bytes of one id (int64 little-endian, as ONNX gives token ids).
pub const ID_BYTES: u64 = 8;

/// One embedding lookup, every address a DRAM byte address: `n_ids` int64
/// ids at `ids`; the table, `table_rows` rows of `cols` int8 bytes each,
/// stored once at `table`; the output `[n_ids, cols]` row-major at `out`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmbeddingGather {
    pub ids: u64,
    pub n_ids: usize,
    pub table: u64,
    pub table_rows: usize,
    pub cols: usize,
    pub out: u64,
}

/// Lowers an `Embedding` node: its int64 ids `x` are already in a device
/// buffer (written there by the host, as the graph's input), the table
/// goes into the program's data once, and the output `y` becomes a
/// row-major buffer of one row of `cols` int8 per id. No MACs.
pub(super) fn lower_embedding(
    cx: &mut Ctx<'_>,
    x: ValueId,
    y: ValueId,
    e: &EmbeddingParams,
    name: &str,
) -> Result<u64, LowerError> {
    let (xv, yv) = (&cx.g.values[x], &cx.g.values[y]);
    if xv.ty != ElemType::I64 {
        return Err(unsupported(name, "embedding", format!("ids `{}` are {:?}, not int64", xv.name, xv.ty)));
    }
    let n_ids = xv.elements();
    if e.table.len() != e.rows * e.cols || yv.elements() != n_ids * e.cols {
        return Err(unsupported(
            name,
            "embedding",
            format!(
                "a {} x {} table of {} values gives {:?} from {n_ids} ids",
                e.rows,
                e.cols,
                e.table.len(),
                yv.shape
            ),
        ));
    }
    let ids = input_buffer(cx, x, name)?.addr;
    let fill = cx.zp_byte(y);
    let out = cx.mem.alloc(n_ids * e.cols, fill);
    cx.mem.set_buffer(y, Buffer { addr: out, layout: Layout::Flat { rows: n_ids, cols: e.cols, perm: None } });
    let phase = embedding_code(&mut cx.mem, e, (ids, n_ids), out, cx.cfg, name)?;
    cx.code.phase(phase);
    Ok(0)
}

/// Whether the device gathers for `op` (an `Embedding` or a `MaskSelect`):
/// its table fits the indexed load's fields. `transformer::sites` leaves
/// any other to the host.
pub fn on_device(op: &Op) -> bool {
    match op {
        Op::Embedding(e) => e.rows > 0 && e.cols > 0 && e.cols <= u16::MAX as usize && e.rows <= u32::MAX as usize,
        Op::MaskSelect { index, .. } => !index.is_empty(),
        _ => false,
    }
}

/// The phase of an `Embedding` whose `n_ids` int64 ids are at `ids` (a
/// program input the host writes) into the row-major int8 output at
/// `out`; the table goes into `mem`'s data once.
pub(super) fn embedding_code(
    mem: &mut MemoryPlan,
    e: &EmbeddingParams,
    (ids, n_ids): (u64, usize),
    out: u64,
    cfg: &HwConfig,
    node: &str,
) -> Result<Vec<Instr>, LowerError> {
    let table = mem.alloc_bytes(&e.table.iter().map(|&v| v as u8).collect::<Vec<_>>());
    let gather = EmbeddingGather { ids, n_ids, table, table_rows: e.rows, cols: e.cols, out };
    embedding_phase(&gather, cfg.array.cols as usize, cfg.spad_rows() as usize, node)
}

/// The phases of a `MaskSelect` whose int64 mask is at `mask` into its
/// float32 output at `out`: one gather per [`mask_runs`] run, in one
/// pipeline, each run from a 2-row table in `mem`'s data (runs with the
/// same two values share one). When the output is one run repeated (an
/// attention mask broadcast over heads and query rows), that run is
/// gathered once and copied to the others by stride-0 loads: a row of
/// DRAM bursts instead of a burst per element.
pub(super) fn mask_select_phases(
    mem: &mut MemoryPlan,
    (index, if_zero, if_nonzero): (&[usize], &[f32], &[f32]),
    mask: u64,
    out: u64,
    cfg: &HwConfig,
    node: &str,
) -> Result<Vec<Vec<Instr>>, LowerError> {
    let (dim, spad_rows) = (cfg.array.cols as usize, cfg.spad_rows() as usize);
    let runs = mask_runs(index, if_zero, if_nonzero);
    if let Some(copies) = repeats(&runs, out, dim, spad_rows) {
        let table = mem.alloc_bytes(&runs[0].table());
        let first = gathers_phase(&[runs[0].gather(mask, table, out)], dim, spad_rows, node)?;
        let copy = super::movement::mapped_copy_phase(&copies, &vec![None; copies.len()], &[], dim, spad_rows);
        return Ok(vec![first, copy]);
    }
    let mut tables: Vec<([u8; 8], u64)> = Vec::new();
    let mut gathers = Vec::new();
    for run in runs {
        let bytes = run.table();
        let table = match tables.iter().find(|(t, _)| *t == bytes) {
            Some(&(_, at)) => at,
            None => {
                let at = mem.alloc_bytes(&bytes);
                tables.push((bytes, at));
                at
            }
        };
        gathers.push(run.gather(mask, table, out));
    }
    Ok(vec![gathers_phase(&gathers, dim, spad_rows, node)?])
}

/// When `runs` are the first one repeated end to end (same mask elements,
/// same values, each run starting where the last ended, the first at 0):
/// the copies of the first run's output bytes at `out` to the others,
/// with stride-0 loads, as blocks of a quarter of the scratchpad.
fn repeats(runs: &[MaskRun], out: u64, dim: usize, spad_rows: usize) -> Option<Vec<super::movement::CopyBlock>> {
    let r0 = runs.first()?;
    let same = |r: &MaskRun| {
        (r.mask, r.len, r.if_zero.to_bits(), r.if_nonzero.to_bits())
            == (r0.mask, r0.len, r0.if_zero.to_bits(), r0.if_nonzero.to_bits())
    };
    let tiled = r0.out == 0 && runs.iter().enumerate().all(|(i, r)| same(r) && r.out == i * r0.len);
    let cols = r0.len * 4;
    let rows_per_block = (spad_rows / 4) / cols.div_ceil(dim);
    if runs.len() < 2 || !tiled || cols > u16::MAX as usize || rows_per_block == 0 {
        return None;
    }
    let rows_per_block = rows_per_block.min(u16::MAX as usize);
    let copies = (1..runs.len())
        .step_by(rows_per_block)
        .map(|k0| super::movement::CopyBlock {
            src: out,
            src_stride: 0,
            rows: rows_per_block.min(runs.len() - k0),
            cols,
            dst: out + (k0 * cols) as u64,
            dst_stride: cols as u64,
        })
        .collect();
    Some(copies)
}

/// The phase that gathers `e`'s rows into its output, for a scratchpad of
/// `spad_rows` rows of `dim` bytes. A block is a run of ids and a run of
/// columns: a quarter of the scratchpad per block (so four buffers rotate),
/// a row wider than that is cut into column runs of whole `dim` blocks.
pub fn embedding_phase(
    e: &EmbeddingGather,
    dim: usize,
    spad_rows: usize,
    node: &str,
) -> Result<Vec<Instr>, LowerError> {
    gathers_phase(std::slice::from_ref(e), dim, spad_rows, node)
}

/// [`embedding_phase`] of several lookups in one pipeline (no barrier
/// between them: the blocks of all rotate through the same buffers), as a
/// `MaskSelect` of many runs needs.
pub fn gathers_phase(
    gathers: &[EmbeddingGather],
    dim: usize,
    spad_rows: usize,
    node: &str,
) -> Result<Vec<Instr>, LowerError> {
    let err = |why: String| unsupported(node, "embedding", why);
    let buffer_rows = (spad_rows / 4).min(u16::MAX as usize);
    if buffer_rows == 0 {
        return Err(err(format!("a scratchpad of {spad_rows} rows holds no gather buffer")));
    }
    let mut blocks = Vec::new();
    // Per block: where its ids start and the table's rows.
    let mut ids = Vec::new();
    for e in gathers {
        if e.n_ids == 0 || e.cols == 0 || e.table_rows == 0 {
            return Err(err(format!("empty lookup: {} ids, table {} x {}", e.n_ids, e.table_rows, e.cols)));
        }
        if e.cols > u16::MAX as usize || e.table_rows > u32::MAX as usize {
            return Err(err(format!("a table of {} x {} exceeds the load's fields", e.table_rows, e.cols)));
        }
        // Columns per block: the whole row if its column blocks fit one buffer.
        let run_cols = e.cols.min(buffer_rows * dim);
        let ids_per_block = (buffer_rows / run_cols.div_ceil(dim)).clamp(1, u16::MAX as usize);
        for p0 in (0..e.n_ids).step_by(ids_per_block) {
            let n = ids_per_block.min(e.n_ids - p0);
            for c0 in (0..e.cols).step_by(run_cols) {
                let w = run_cols.min(e.cols - c0);
                blocks.push(GatherBlock {
                    loads: vec![(e.table + c0 as u64, e.cols as u64, n, 0)],
                    pixels: n,
                    cols: w,
                    dst: e.out + (p0 * e.cols + c0) as u64,
                    dst_stride: e.cols as u64,
                });
                ids.push((e.ids + p0 as u64 * ID_BYTES, e.table_rows as u32));
            }
        }
    }
    let mut code = gather_phase(&blocks, &vec![None; blocks.len()], &[], dim, spad_rows);
    // gather_phase emits one LOAD per block, in block order (no tables):
    // each becomes the gather of its run of ids.
    let mut next = ids.iter();
    for i in code.iter_mut() {
        if let Instr::Load(l) = i {
            let &(idx_addr, limit) = next.next().expect("one LOAD per block");
            l.idx = ins::IDX_I64;
            l.idx_addr = idx_addr as u32;
            l.limit = limit;
        }
    }
    assert!(next.next().is_none(), "one LOAD per block");
    Ok(code)
}

/// A run of a `MaskSelect` (`y[i] = if x[index[i]] == 0 { if_zero[i] }
/// else { if_nonzero[i] }`, float32 out of an int64 mask) that one gather
/// computes: `len` outputs from `out` reading mask elements from `mask`
/// on (consecutive), with the same two values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MaskRun {
    pub out: usize,
    pub mask: usize,
    pub len: usize,
    pub if_zero: f32,
    pub if_nonzero: f32,
}

impl MaskRun {
    /// The run's table: two rows of one float32 each (little-endian bits),
    /// row 0 `if_zero`, row 1 `if_nonzero`.
    pub fn table(&self) -> [u8; 8] {
        let mut t = [0u8; 8];
        t[..4].copy_from_slice(&self.if_zero.to_bits().to_le_bytes());
        t[4..].copy_from_slice(&self.if_nonzero.to_bits().to_le_bytes());
        t
    }

    /// The gather computing the run, with the mask (int64) at `mask`, the
    /// run's table at `table` and the float32 output at `out` (DRAM
    /// addresses): the mask value is the row id, so a mask of 0 or 1
    /// selects exactly, and any other value is an `IndexOutOfRange` fault
    /// naming its position (refused at run time: ONNX would take it as
    /// nonzero; attention masks are 0/1).
    pub fn gather(&self, mask: u64, table: u64, out: u64) -> EmbeddingGather {
        EmbeddingGather {
            ids: mask + self.mask as u64 * ID_BYTES,
            n_ids: self.len,
            table,
            table_rows: 2,
            cols: 4,
            out: out + self.out as u64 * 4,
        }
    }
}

/// A `MaskSelect` as gathers from 2-row tables of float32 bits: one run
/// per stretch of outputs reading consecutive mask elements with the same
/// two values (one run for an attention mask `[1, 1, 1, seq]`).
pub fn mask_runs(index: &[usize], if_zero: &[f32], if_nonzero: &[f32]) -> Vec<MaskRun> {
    let mut runs: Vec<MaskRun> = Vec::new();
    for (i, ((&k, &z), &nz)) in index.iter().zip(if_zero).zip(if_nonzero).enumerate() {
        match runs.last_mut() {
            Some(r)
                if r.mask + r.len == k
                    && r.if_zero.to_bits() == z.to_bits()
                    && r.if_nonzero.to_bits() == nz.to_bits()
                    && r.len < u16::MAX as usize =>
            {
                r.len += 1
            }
            _ => runs.push(MaskRun { out: i, mask: k, len: 1, if_zero: z, if_nonzero: nz }),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp::{self, Tensor};
    use crate::ir::{ElemType, Graph, Node, Op, Quant, Value};
    use crate::lower::memory::MemoryPlan;
    use crate::lower::package::Code;
    use driver::Outcome;
    use isa::{Device, ErrorCode, HwConfig};

    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        move || {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            s >> 33
        }
    }

    /// The one-node graph the interpreter checks against.
    fn graph(ids: usize, table: &[i8], rows: usize, cols: usize) -> Graph {
        let q = Some(Quant { scale: 0.02, zero_point: 0 });
        Graph {
            name: "emb".into(),
            values: vec![
                Value { name: "ids".into(), shape: vec![1, ids], ty: ElemType::I64, quant: None },
                Value { name: "y".into(), shape: vec![1, ids, cols], ty: ElemType::I8, quant: q },
            ],
            nodes: vec![Node {
                name: "embed".into(),
                op: Op::Embedding(EmbeddingParams { table: table.to_vec(), rows, cols }),
                inputs: vec![0],
                outputs: vec![1],
            }],
            inputs: vec![0],
            outputs: vec![1],
        }
    }

    /// Lowers a lookup of `ids` in a random table, runs it on the model and
    /// returns the run's report and the output bytes.
    fn run(cfg: &HwConfig, ids: &[i64], rows: usize, cols: usize, seed: u64) -> (Run, Vec<u8>, Vec<i8>) {
        let mut r = rng(seed);
        let table: Vec<i8> = (0..rows * cols).map(|_| r() as i8).collect();
        let mut mem = MemoryPlan::new(0);
        let table_at = mem.alloc_bytes(&table.iter().map(|&v| v as u8).collect::<Vec<_>>());
        let ids_at = mem.alloc_bytes(&ids.iter().flat_map(|id| id.to_le_bytes()).collect::<Vec<_>>());
        let out = mem.alloc(ids.len() * cols, 0x55);
        let e = EmbeddingGather { ids: ids_at, n_ids: ids.len(), table: table_at, table_rows: rows, cols, out };
        let mut code = Code::for_config(cfg);
        code.phase(embedding_phase(&e, cfg.array.cols as usize, cfg.spad_rows() as usize, "embed").unwrap());
        let (mut d, report, data_addr) = crate::test_run::run_to_end(cfg, code.into_instrs(), mem.into_data());
        let got = d.read_mem(data_addr + out, ids.len() * cols).unwrap();
        let error_info = d.device_mut().read_reg(isa::regs::ERROR_INFO).unwrap();
        (Run { outcome: report.outcome, error_info, counters: report.counters }, got, table)
    }

    struct Run {
        outcome: Outcome,
        error_info: u32,
        counters: isa::Counters,
    }

    fn interp(ids: &[i64], table: &[i8], rows: usize, cols: usize) -> Result<Vec<u8>, String> {
        let g = graph(ids.len(), table, rows, cols);
        let x = Tensor::quant(vec![1, ids.len()], ids.iter().map(|&i| i as i32).collect());
        let vals = interp::run(&g, &[x]).map_err(|e| e.to_string())?;
        Ok(vals[1].as_quant().unwrap().iter().map(|&q| q as u8).collect())
    }

    #[test]
    fn gathers_the_rows_the_interpreter_selects() {
        // Rows narrower, wider (column-blocked) and much wider than the
        // array; more ids than one buffer holds on the small configs.
        for cfg in [HwConfig::tiny_4x4(), HwConfig::tiny_shaped(5, 12), HwConfig::default_16x16()] {
            for (n, rows, cols, seed) in [(7, 13, 3, 1), (40, 50, 20, 2), (9, 30, 100, 3), (300, 64, 36, 4)] {
                let mut r = rng(seed + 100);
                let ids: Vec<i64> = (0..n).map(|_| (r() % rows as u64) as i64).collect();
                let (report, got, table) = run(&cfg, &ids, rows, cols, seed);
                assert_eq!(report.outcome, Outcome::Done, "{}", cfg.name);
                assert_eq!(got, interp(&ids, &table, rows, cols).unwrap(), "{}: {n} ids of {rows} x {cols}", cfg.name);
            }
        }
    }

    /// The node walk's step: `lower_node` on an Embedding whose ids a
    /// host placed in device memory, run and compared with the interpreter.
    #[test]
    fn lower_node_lowers_an_embedding_node() {
        for cfg in [HwConfig::tiny_4x4(), HwConfig::tiny_shaped(5, 12)] {
            let (n, rows, cols) = (23, 40, 30);
            let mut r = rng(21);
            let table: Vec<i8> = (0..rows * cols).map(|_| r() as i8).collect();
            let ids: Vec<i64> = (0..n).map(|_| (r() % rows as u64) as i64).collect();
            let g = graph(n, &table, rows, cols);
            let mut cx = Ctx::new(&g, &cfg).unwrap();
            let at = cx.mem.alloc_bytes(&ids.iter().flat_map(|id| id.to_le_bytes()).collect::<Vec<_>>());
            cx.mem.set_buffer(0, Buffer { addr: at, layout: Layout::Flat { rows: 1, cols: 8 * n, perm: None } });
            assert_eq!(crate::lower::lower_node(&mut cx, &g.nodes[0], 0).unwrap(), 0);
            let out = cx.mem.buffer(1).unwrap().clone();
            assert_eq!(out.layout, Layout::Flat { rows: n, cols, perm: None });
            let code = std::mem::take(&mut cx.code).into_instrs();
            let (mut d, report, data_addr) = crate::test_run::run_to_end(&cfg, code, cx.mem.into_data());
            assert_eq!(report.outcome, Outcome::Done);
            let got = d.read_mem(data_addr + out.addr, n * cols).unwrap();
            assert_eq!(got, interp(&ids, &table, rows, cols).unwrap(), "{}", cfg.name);
        }
    }

    /// MaskSelect as gathers of float32 bits, against the interpreter: an
    /// attention mask (one run), and per-position values with a broadcast
    /// index (many runs); a mask value of 2 faults naming its position.
    #[test]
    fn mask_select_gathers_float_bits_exactly() {
        let cfg = HwConfig::tiny_shaped(5, 12);
        let seq = 37;
        let attention =
            ((0..seq).collect::<Vec<_>>(), vec![f32::MIN; seq], vec![0.0f32; seq], vec![1, seq], vec![1, 1, 1, seq]);
        // [2, 5] outputs broadcast from a [1, 5] mask, values per column.
        let broadcast = (
            (0..10).map(|i| i % 5).collect::<Vec<_>>(),
            (0..10).map(|i| -1.5 * (i % 5) as f32).collect(),
            vec![0.25f32; 10],
            vec![1, 5],
            vec![2, 5],
        );
        // The attention mask broadcast over 3 query rows: one run repeated,
        // gathered once and copied.
        let repeated = (
            (0..3 * seq).map(|i| i % seq).collect::<Vec<_>>(),
            vec![f32::MIN; 3 * seq],
            vec![0.0f32; 3 * seq],
            vec![1, seq],
            vec![1, 1, 3, seq],
        );
        for (index, if_zero, if_nonzero, mask_shape, shape) in [attention, broadcast, repeated] {
            let runs = mask_runs(&index, &if_zero, &if_nonzero);
            let n_mask: usize = mask_shape.iter().product();
            let mut r = rng(n_mask as u64);
            let mut mask: Vec<i64> = (0..n_mask).map(|_| (r() % 2) as i64).collect();
            let g = Graph {
                name: "mask".into(),
                values: vec![
                    Value { name: "m".into(), shape: mask_shape.clone(), ty: ElemType::I64, quant: None },
                    Value { name: "y".into(), shape: shape.clone(), ty: ElemType::F32, quant: None },
                ],
                nodes: vec![Node {
                    name: "select".into(),
                    op: Op::MaskSelect {
                        shape: shape.clone(),
                        index: index.clone(),
                        if_zero: if_zero.clone(),
                        if_nonzero: if_nonzero.clone(),
                    },
                    inputs: vec![0],
                    outputs: vec![1],
                }],
                inputs: vec![0],
                outputs: vec![1],
            };
            for bad in [None, Some(3usize.min(n_mask - 1))] {
                if let Some(p) = bad {
                    mask[p] = 2;
                }
                let mut mem = MemoryPlan::new(0);
                let m = mem.alloc_bytes(&mask.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>());
                let out = mem.alloc(4 * index.len(), 0x55);
                let mut code = Code::for_config(&cfg);
                let phases =
                    mask_select_phases(&mut mem, (&index, &if_zero, &if_nonzero), m, out, &cfg, "select").unwrap();
                assert_eq!(
                    phases.len(),
                    if shape == [1, 1, 3, seq] { 2 } else { 1 },
                    "{shape:?}: copied when repeated"
                );
                phases.into_iter().for_each(|p| code.phase(p));
                let (mut d, report, data_addr) = crate::test_run::run_to_end(&cfg, code.into_instrs(), mem.into_data());
                let got = d.read_mem(data_addr + out, 4 * index.len()).unwrap();
                match bad {
                    None => {
                        assert_eq!(report.outcome, Outcome::Done);
                        let x = Tensor::quant(mask_shape.clone(), mask.iter().map(|&v| v as i32).collect());
                        let want = interp::run(&g, &[x]).unwrap()[1].as_float().unwrap().to_vec();
                        let want: Vec<u8> = want.iter().flat_map(|v| v.to_bits().to_le_bytes()).collect();
                        assert_eq!(got, want, "{} runs", runs.len());
                    }
                    Some(p) => {
                        assert!(matches!(report.outcome, Outcome::Fault { code: ErrorCode::IndexOutOfRange, .. }));
                        // The first gather reading mask element p stopped there.
                        let info = d.device_mut().read_reg(isa::regs::ERROR_INFO).unwrap() as usize;
                        let run = runs.iter().find(|r| (r.mask..r.mask + r.len).contains(&p)).unwrap();
                        assert_eq!(run.mask + info, p);
                    }
                }
            }
            assert_eq!(
                runs.len(),
                if shape == [2, 5] {
                    10
                } else if shape[2] == 3 {
                    3
                } else {
                    1
                }
            );
        }
    }

    /// `transformer::sites`: Embedding and MaskSelect (and an int64
    /// reshape only gathers read) are on the device, their ids program
    /// inputs; other int64 ops, and a table too wide for a load, are left
    /// to the host.
    #[test]
    fn gathers_are_device_sites() {
        use crate::lower::transformer::{sites, Site};
        let v = |name: &str, shape: &[usize], ty| Value {
            name: name.into(),
            shape: shape.to_vec(),
            ty,
            quant: (ty == ElemType::I8).then_some(Quant { scale: 0.1, zero_point: 0 }),
        };
        let node =
            |name: &str, op, inputs: Vec<usize>, outputs: Vec<usize>| Node { name: name.into(), op, inputs, outputs };
        let table =
            |rows: usize, cols: usize| Op::Embedding(EmbeddingParams { table: vec![1; rows * cols], rows, cols });
        let g = Graph {
            name: "sites".into(),
            values: vec![
                v("ids", &[1, 4], ElemType::I64),
                v("mask", &[1, 4], ElemType::I64),
                v("mask4", &[1, 1, 1, 4], ElemType::I64),
                v("select", &[1, 1, 4, 4], ElemType::F32),
                v("emb", &[1, 4, 8], ElemType::I8),
                v("idsT", &[4, 1], ElemType::I64),
                v("wide", &[4, 1, 70_000], ElemType::I8),
            ],
            nodes: vec![
                node("unsqueeze", Op::Reshape { shape: vec![1, 1, 1, 4] }, vec![1], vec![2]),
                node(
                    "mask_select",
                    Op::MaskSelect {
                        shape: vec![1, 1, 4, 4],
                        index: (0..16).map(|i| i % 4).collect(),
                        if_zero: vec![-1e9; 16],
                        if_nonzero: vec![0.0; 16],
                    },
                    vec![2],
                    vec![3],
                ),
                node("lookup", table(10, 8), vec![0], vec![4]),
                node("transpose", Op::Transpose { perm: vec![1, 0] }, vec![0], vec![5]),
                node("wide_lookup", table(2, 70_000), vec![5], vec![6]),
            ],
            inputs: vec![0, 1],
            outputs: vec![3, 4, 6],
        };
        use Site::{Device, Host};
        assert_eq!(sites(&g).unwrap(), [Device, Device, Device, Host, Host]);
        assert!(on_device(&g.nodes[2].op) && !on_device(&g.nodes[4].op));
    }

    #[test]
    fn narrow_rows_are_cut_for_the_staging_buffer() {
        // 3-byte rows on a 16-byte bus pile up in the DMA's staging buffer:
        // `staging::bound` cuts each gather into pieces of fewer ids, each
        // starting at its own first id.
        let cfg = HwConfig::default_16x16();
        let mut r = rng(8);
        let ids: Vec<i64> = (0..5000).map(|_| (r() % 50) as i64).collect();
        let (report, got, table) = run(&cfg, &ids, 50, 3, 9);
        assert_eq!(report.outcome, Outcome::Done);
        assert_eq!(got, interp(&ids, &table, 50, 3).unwrap());
        let e = EmbeddingGather { ids: 0, n_ids: 5000, table: 1 << 16, table_rows: 50, cols: 3, out: 1 << 17 };
        let blocks = embedding_phase(&e, 16, cfg.spad_rows() as usize, "embed").unwrap();
        let blocks = blocks.iter().filter(|i| i.is_indexed_load()).count();
        let bounded = crate::lower::staging::bound(
            embedding_phase(&e, 16, cfg.spad_rows() as usize, "embed").unwrap(),
            crate::lower::staging::Dma::of(&cfg),
        );
        let pieces: Vec<ins::Load> =
            bounded.iter().filter_map(|i| if let Instr::Load(l) = i { Some(*l) } else { None }).collect();
        assert!(pieces.len() > blocks, "{} pieces of {blocks} gathers", pieces.len());
        let mut first = 0;
        for p in &pieces {
            assert_eq!((p.idx_addr as u64, p.dram), (first * ID_BYTES, 1 << 16));
            first += p.rows as u64;
        }
        assert_eq!(first, 5000);
    }

    #[test]
    fn wide_rows_are_cut_into_column_runs() {
        // A 4x4 array with a tiny scratchpad: a 200-byte row needs 50 rows,
        // more than a quarter of it, so the blocks are column runs.
        let mut cfg = HwConfig::tiny_4x4();
        cfg.scratchpad.bytes = 4 * 64 * u64::from(cfg.scratchpad.banks);
        cfg.name = "tiny-small-spad".into();
        cfg.validate().unwrap();
        let ids = [3, 0, 3, 1];
        let e = EmbeddingGather { ids: 0, n_ids: 4, table: 64, table_rows: 4, cols: 200, out: 4096 };
        let code = embedding_phase(&e, 4, cfg.spad_rows() as usize, "embed").unwrap();
        let runs: Vec<(u16, u32)> =
            code.iter().filter_map(|i| if let Instr::Load(l) = i { Some((l.cols, l.dram)) } else { None }).collect();
        // One id per block (a run of 128 columns fills a 32-row buffer),
        // two column runs of whole 4-wide blocks per id.
        assert_eq!(runs, [(128, 64), (72, 64 + 128)].repeat(4));
        let (report, got, table) = run(&cfg, &ids, 4, 200, 5);
        assert_eq!(report.outcome, Outcome::Done);
        assert!(report.counters.get(isa::Counter::DramRequests) > 0);
        assert_eq!(got, interp(&ids, &table, 4, 200).unwrap());
    }

    #[test]
    fn an_id_outside_the_table_faults_naming_its_position() {
        let cfg = HwConfig::tiny_4x4();
        for bad in [13, 1000, -1, i64::MIN] {
            let ids = [0, 5, 12, bad, 2];
            let (report, got, table) = run(&cfg, &ids, 13, 6, 6);
            assert!(matches!(report.outcome, Outcome::Fault { code: ErrorCode::IndexOutOfRange, .. }), "{bad}");
            assert_eq!(report.error_info, 3, "position of {bad}");
            assert!(got.iter().all(|&b| b == 0x55), "{bad}: the faulting gather wrote nothing");
            // The interpreter holds ids as int32: it agrees where they fit.
            if i32::try_from(bad).is_ok() {
                let e = interp(&ids, &table, 13, 6).unwrap_err();
                assert!(e.contains("position 3"), "{e}");
            }
        }
    }
}
