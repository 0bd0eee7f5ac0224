//! Configuration-dependent legality of an instruction: buffer ranges, tile
//! shapes, supported formats, and the DRAM byte ranges a DMA touches. The
//! device checks these when it dispatches an instruction (a failure is a
//! fault); the assembler and the compiler check them ahead of time.

use crate::config::HwConfig;
use crate::instr::*;
use crate::regs::ErrorCode;

/// An illegal instruction for a configuration: the fault it raises and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Illegal {
    pub code: ErrorCode,
    pub message: String,
}

impl std::fmt::Display for Illegal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.message)
    }
}

fn range_err(what: &str, lo: u64, hi: u64, limit: u64, unit: &str) -> Illegal {
    Illegal {
        code: ErrorCode::BufferOutOfRange,
        message: format!("{what} rows [{lo}, {hi}) exceed the {limit} {unit} rows"),
    }
}

fn illegal(message: String) -> Illegal {
    Illegal { code: ErrorCode::IllegalInstruction, message }
}

/// The geometry of a LOAD or STORE block (STORE has no padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaBlock {
    pub to_acc: bool,
    pub dram: u64,
    pub stride: u64,
    pub rows: u64,
    pub cols: u64,
    pub pad_top: u64,
    pub pad_bottom: u64,
    pub pad_left: u64,
    pub pad_right: u64,
    pub addr: u64,
    pub col: u64,
    /// A compressed stream (`load`'s `zfmt = mask`): `stride` is the
    /// stream's bytes, one DRAM range, expanded into the rows.
    pub stream: bool,
}

impl DmaBlock {
    pub fn of_load(l: &Load) -> DmaBlock {
        DmaBlock {
            to_acc: l.buf == BUF_ACC,
            dram: l.dram as u64,
            stride: l.stride as u64,
            rows: l.rows as u64,
            cols: l.cols as u64,
            pad_top: l.pad_top as u64,
            pad_bottom: l.pad_bottom as u64,
            pad_left: l.pad_left as u64,
            pad_right: l.pad_right as u64,
            addr: l.addr as u64,
            col: l.col as u64,
            stream: l.zfmt != ZFMT_NONE,
        }
    }

    pub fn of_store(s: &Store) -> DmaBlock {
        DmaBlock {
            to_acc: s.buf == BUF_ACC,
            dram: s.dram as u64,
            stride: s.stride as u64,
            rows: s.rows as u64,
            cols: s.cols as u64,
            pad_top: 0,
            pad_bottom: 0,
            pad_left: 0,
            pad_right: 0,
            addr: s.addr as u64,
            col: s.col as u64,
            stream: false,
        }
    }

    /// Bytes per element: 1 in the scratchpad, 4 in the accumulator.
    pub fn elem_bytes(&self) -> u64 {
        if self.to_acc {
            4
        } else {
            1
        }
    }

    /// Rows of the padded block.
    pub fn block_rows(&self) -> u64 {
        self.pad_top + self.rows + self.pad_bottom
    }

    /// Elements per row of the padded block.
    pub fn block_cols(&self) -> u64 {
        self.pad_left + self.cols + self.pad_right
    }

    /// Bytes of one DRAM row.
    pub fn row_bytes(&self) -> u64 {
        self.cols * self.elem_bytes()
    }

    /// True when consecutive DRAM rows are adjacent: the block is one range
    /// (a compressed stream always is).
    pub fn contiguous(&self) -> bool {
        self.stream || self.stride == self.row_bytes()
    }

    /// The DRAM byte range the block's data spans, `[lo, hi)`: a compressed
    /// stream's `stride` bytes.
    pub fn dram_span(&self) -> (u64, u64) {
        if self.stream {
            return (self.dram, self.dram + self.stride);
        }
        (self.dram, self.dram + (self.rows - 1) * self.stride + self.row_bytes())
    }

    /// One past the last local row the block touches, for `dim` columns a row.
    pub fn local_end(&self, dim: u64) -> u64 {
        let last_col = self.col + self.block_cols() - 1;
        self.addr + (last_col / dim) * self.block_rows() + self.block_rows()
    }
}

/// The index list of an indexed `load` (ISA.md §3 `load`): DRAM row `y`
/// of the block starts at `dram + id[y] * stride`, `id[y]` the `y`-th
/// little-endian integer of `elem_bytes` at `addr`; every id must lie in
/// `0..limit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexList {
    pub addr: u64,
    pub elem_bytes: u64,
    pub limit: u64,
}

impl IndexList {
    /// None for a plain load.
    pub fn of_load(l: &Load) -> Option<IndexList> {
        let elem_bytes = match l.idx {
            IDX_I64 => 8,
            IDX_I32 => 4,
            _ => return None,
        };
        Some(IndexList { addr: l.idx_addr as u64, elem_bytes, limit: l.limit as u64 })
    }

    /// The ids' DRAM bytes `[lo, hi)` for a block of `rows` rows.
    pub fn span(&self, rows: u64) -> (u64, u64) {
        (self.addr, self.addr + rows * self.elem_bytes)
    }

    /// Decodes the ids from their bytes (sign-extended to i64).
    pub fn decode(&self, bytes: &[u8]) -> Vec<i64> {
        bytes
            .chunks_exact(self.elem_bytes as usize)
            .map(|b| match b.len() {
                8 => i64::from_le_bytes(b.try_into().expect("8 bytes")),
                _ => i32::from_le_bytes(b.try_into().expect("4 bytes")) as i64,
            })
            .collect()
    }

    /// The position of the first id outside `0..limit`, if any.
    pub fn first_bad(&self, ids: &[i64]) -> Option<usize> {
        ids.iter().position(|&id| id < 0 || id as u64 >= self.limit)
    }
}

/// Checks an instruction against a configuration (everything but the
/// memory window, which belongs to a run).
pub fn check(instr: &Instr, cfg: &HwConfig) -> Result<(), Illegal> {
    let rows = cfg.array.rows as u64;
    let cols = cfg.array.cols as u64;
    let spad = cfg.spad_rows() as u64;
    let accr = cfg.acc_rows() as u64;
    let in_spad = |what: &str, lo: u64, n: u64| -> Result<(), Illegal> {
        if lo + n > spad {
            Err(range_err(what, lo, lo + n, spad, "scratchpad"))
        } else {
            Ok(())
        }
    };
    let in_acc = |what: &str, lo: u64, n: u64| -> Result<(), Illegal> {
        if lo + n > accr {
            Err(range_err(what, lo, lo + n, accr, "accumulator"))
        } else {
            Ok(())
        }
    };
    let in_spad_span = |what: &str, (lo, hi): (u64, u64)| in_spad(what, lo, hi - lo);
    let in_acc_span = |what: &str, (lo, hi): (u64, u64)| in_acc(what, lo, hi - lo);
    let sparse = cfg.array.sparsity_2_4;
    let int4 = cfg.array.weight_precisions.contains(&crate::config::WeightPrecision::Int4);
    // A transposed tile reads its reduction index from a row's columns.
    let transposed = |trans: u8, k: u16, wfmt: u8| -> Result<(), Illegal> {
        if trans != 0 && k as u64 > cfg.array.cols as u64 {
            return Err(illegal(format!(
                "a transposed weight tile of k = {k} reads {k} columns of a {}-column scratchpad row",
                cfg.array.cols
            )));
        }
        if trans != 0 && wfmt != WFMT_I8 {
            return Err(illegal("a transposed weight tile must be of weight format i8".to_string()));
        }
        Ok(())
    };
    let tile = |k: u16, n: u16, wfmt: u8, meta: u16| -> Result<(), Illegal> {
        let name = ["i8", "i8s24", "i4", "i4s24"][wfmt as usize & 3];
        match wfmt {
            WFMT_I8 | WFMT_I4 => {
                // `meta` names 2:4 positions, which dense tiles do not have.
                if meta != 0 {
                    return Err(illegal(format!(
                        "meta = {meta}: the field is reserved and must be 0 (weight format {name})"
                    )));
                }
                if wfmt == WFMT_I4 && !int4 {
                    return Err(illegal(
                        "weight format i4 needs int4 weights, which this configuration lacks \
                         (array.weight_precisions does not list \"int4\")"
                            .into(),
                    ));
                }
            }
            WFMT_I8_S24 if !sparse => {
                return Err(illegal(
                    "weight format i8s24 (2:4-sparse) needs array.sparsity_2_4 = true in the configuration".into(),
                ))
            }
            WFMT_I8_S24 => {}
            _ => {
                return Err(illegal(format!(
                    "weight format {name} is not implemented by this accelerator (only i8, i8s24 and i4)"
                )))
            }
        }
        if k as u64 > rows || n as u64 > cols {
            return Err(Illegal {
                code: ErrorCode::BufferOutOfRange,
                message: format!("weight tile {k}x{n} exceeds the {rows}x{cols} array"),
            });
        }
        if wfmt == WFMT_I8_S24 {
            in_spad("2:4 positions", meta as u64, sparse24_meta_rows(k as u64))?;
        }
        Ok(())
    };
    let strided = |what: &str, lo: u64, stride: u64, n: u64| in_spad(what, lo + (n - 1) * stride, 1);
    let type_range = |t: u8| if t == ELEM_U8 { (0i64, 255i64) } else { (-128, 127) };
    let in_type = |what: &str, v: i16, t: u8| -> Result<(), Illegal> {
        let (lo, hi) = type_range(t);
        if (v as i64) < lo || v as i64 > hi {
            return Err(illegal(format!(
                "{what} = {v} is outside the {} range {lo}..={hi}",
                ["i8", "u8"][t as usize & 1]
            )));
        }
        Ok(())
    };
    match instr {
        Instr::Load(_) | Instr::Store(_) => {
            let b = match instr {
                Instr::Load(l) => DmaBlock::of_load(l),
                Instr::Store(s) => DmaBlock::of_store(s),
                _ => unreachable!(),
            };
            let (limit, name) = if b.to_acc { (accr, "accumulator") } else { (spad, "scratchpad") };
            if b.stream {
                let (lo, hi) = stream_bytes_range(b.rows, b.cols);
                if b.stride < lo || b.stride > hi {
                    return Err(illegal(format!(
                        "stride = {}: a compressed stream of {} rows of {} elements is {lo}..={hi} bytes \
                         (the masks, and at most every element stored)",
                        b.stride, b.rows, b.cols
                    )));
                }
            }
            let end = b.local_end(cols);
            if end > limit {
                return Err(range_err("DMA block", b.addr, end, limit, name));
            }
        }
        Instr::Ldw(l) => {
            tile(l.k, l.n, l.wfmt, l.meta)?;
            transposed(l.trans, l.k, l.wfmt)?;
            in_spad("ldw weights", l.addr as u64, l.weight_rows())?;
        }
        Instr::Matmul(m) => {
            // Checked first: the RTL without 2:4-sparse PEs refuses it
            // before it looks at the input span.
            if m.a_bstride != 0 && !sparse {
                return Err(illegal(format!(
                    "a_bstride = {}: second input blocks (2:4-sparse tiles) need array.sparsity_2_4 = true in the \
                     configuration",
                    m.a_bstride
                )));
            }
            let (lo, hi) = m.input_span();
            in_spad("matmul input", lo, hi - lo)?;
            in_acc("matmul output", m.acc as u64, m.m as u64)?;
            if m.preload != 0 {
                tile(m.k, m.n, m.wfmt, m.meta)?;
                transposed(m.trans, m.k, m.wfmt)?;
                in_spad("matmul preload", m.w as u64, m.preload_rows())?;
            } else if m.trans != 0 {
                return Err(illegal("trans is a preload field; preload = 0 requires trans = 0".to_string()));
            }
        }
        Instr::Requant(r) => {
            in_acc("requant input", r.acc as u64, r.rows as u64)?;
            in_acc("requant params", r.params as u64, 2)?;
            in_spad("requant output", r.dst as u64, r.rows as u64)?;
            in_type("zp", r.zp, r.out_type)?;
            in_type("qmin", r.qmin, r.out_type)?;
            in_type("qmax", r.qmax, r.out_type)?;
            if r.qmin > r.qmax {
                return Err(illegal(format!("qmin {} > qmax {}", r.qmin, r.qmax)));
            }
        }
        Instr::Vmax(v) => {
            let n = v.n as u64;
            strided("vmax a", v.a as u64, v.a_stride as u64, n)?;
            strided("vmax b", v.b as u64, v.b_stride as u64, n)?;
            strided("vmax dst", v.dst as u64, v.dst_stride as u64, n)?;
        }
        Instr::Vadd(v) => {
            let n = v.n as u64;
            in_spad("vadd a", v.a as u64, n)?;
            in_spad("vadd b", v.b as u64, n)?;
            in_spad("vadd dst", v.dst as u64, n)?;
            in_acc("vadd params", v.params as u64, 3)?;
            in_type("qmin", v.qmin, v.out_type)?;
            in_type("qmax", v.qmax, v.out_type)?;
            if v.qmin > v.qmax {
                return Err(illegal(format!("qmin {} > qmax {}", v.qmin, v.qmax)));
            }
        }
        Instr::Vlut(v) => {
            let n = v.n as u64;
            in_spad("vlut src", v.src as u64, n)?;
            in_spad("vlut dst", v.dst as u64, n)?;
            in_spad("vlut table", v.table as u64, crate::timing::lut_rows(cfg.array.cols))?;
        }
        Instr::Vdeq(d) => {
            let blocks = vector_blocks(d.len, cfg.array.cols);
            let src = RowPattern::new(d.src, d.src_step, d.src_bstride);
            if d.src_buf == BUF_ACC {
                in_acc_span("vdeq src", src.span(d.rows as u64, blocks))?;
            } else {
                in_spad_span("vdeq src", src.span(d.rows as u64, blocks))?;
            }
            in_acc_span("vdeq dst", RowPattern::new(d.dst, d.dst_step, d.dst_bstride).span(d.rows as u64, blocks))?;
            if d.scale_imm == 0 {
                in_acc("vdeq scale", d.scale as u64, blocks)?;
            }
        }
        Instr::Vquant(q) => {
            let blocks = vector_blocks(q.len, cfg.array.cols);
            in_acc_span("vquant src", RowPattern::new(q.src, q.src_step, q.src_bstride).span(q.rows as u64, blocks))?;
            in_spad_span("vquant dst", RowPattern::new(q.dst, q.dst_step, q.dst_bstride).span(q.rows as u64, blocks))?;
            in_type("zp", q.zp, q.out_type)?;
            in_type("qmin", q.qmin, q.out_type)?;
            in_type("qmax", q.qmax, q.out_type)?;
            if q.qmin > q.qmax {
                return Err(illegal(format!("qmin {} > qmax {}", q.qmin, q.qmax)));
            }
        }
        Instr::Vop(v) => {
            let (rows, blocks) = (v.rows as u64, vector_blocks(v.len, cfg.array.cols));
            in_acc_span("vop dst", RowPattern::new(v.dst, v.dst_step, v.dst_bstride).span(rows, blocks))?;
            in_acc_span("vop a", RowPattern::new(v.a, v.a_step, v.a_bstride).span(rows, blocks))?;
            if v.op < VOP_BINARY && v.b_imm == 0 {
                in_acc_span("vop b", RowPattern::new(v.b, v.b_step, v.b_bstride).span(rows, blocks))?;
            }
        }
        Instr::Vred(v) => {
            let (rows, blocks) = (v.rows as u64, vector_blocks(v.len, cfg.array.cols));
            in_acc_span("vred a", RowPattern::new(v.a, v.a_step, v.a_bstride).span(rows, blocks))?;
            in_acc_span("vred dst", RowPattern::new(v.dst, v.dst_step, 0).span(rows, 1))?;
        }
        Instr::Vmask(v) => {
            let (rows, blocks) = (v.rows as u64, vector_blocks(v.len, cfg.array.cols));
            in_acc_span("vmask dst", RowPattern::new(v.dst, v.dst_step, v.dst_bstride).span(rows, blocks))?;
        }
        Instr::Sync(_) | Instr::Finish(_) => {}
    }
    Ok(())
}

/// Scratchpad rows holding the 2-bit positions of a `k`-row i8s24 tile:
/// four rows' positions per byte (ISA.md §3).
pub fn sparse24_meta_rows(k: u64) -> u64 {
    k.div_ceil(4)
}

/// Bytes of a compressed stream's row mask for rows of `cols` elements: one
/// bit per element (ISA.md §3 `load`, `zfmt = mask`).
pub fn stream_mask_bytes(cols: u64) -> u64 {
    cols.div_ceil(8)
}

/// The legal lengths of a compressed stream of `rows` rows of `cols`
/// elements: every mask, with none to every element stored.
pub fn stream_bytes_range(rows: u64, cols: u64) -> (u64, u64) {
    let mask = stream_mask_bytes(cols);
    (rows * mask, rows * (mask + cols))
}

/// Checks that a DMA's DRAM bytes lie inside the window `[base, limit)`.
/// An indexed `load` is checked statically over its whole table (`limit`
/// rows) and its ids, so no id inside `0..limit` can read outside.
pub fn check_window(instr: &Instr, base: u64, limit: u64) -> Result<(), Illegal> {
    let outside = |what: &str, (lo, hi): (u64, u64)| -> Result<(), Illegal> {
        if lo < base || hi > limit {
            return Err(Illegal {
                code: ErrorCode::DmaOutOfWindow,
                message: format!("{what}DRAM bytes [{lo:#x}, {hi:#x}) are outside the window [{base:#x}, {limit:#x})"),
            });
        }
        Ok(())
    };
    match instr {
        Instr::Load(l) => match IndexList::of_load(l) {
            Some(ix) => {
                let table = DmaBlock { rows: ix.limit.max(1), ..DmaBlock::of_load(l) };
                outside("the ids' ", ix.span(l.rows as u64))?;
                outside("the table's ", table.dram_span())
            }
            None => outside("", DmaBlock::of_load(l).dram_span()),
        },
        Instr::Store(s) => outside("", DmaBlock::of_store(s).dram_span()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> HwConfig {
        HwConfig::from_toml(include_str!("../../examples/hw/tiny.toml")).unwrap()
    }

    #[test]
    fn reserved_meta_is_illegal() {
        let cfg = tiny();
        let ldw = |meta| Instr::Ldw(Ldw { addr: 0, k: 1, n: 1, wfmt: WFMT_I8, meta, ..Default::default() });
        assert_eq!(check(&ldw(0), &cfg), Ok(()));
        let e = check(&ldw(1), &cfg).unwrap_err();
        assert_eq!(e.code, ErrorCode::IllegalInstruction);
        assert!(e.message.contains("meta = 1"), "{e}");
        let matmul = |preload, meta| {
            Instr::Matmul(Matmul { m: 1, preload, k: 1, n: 1, wfmt: WFMT_I8, meta, ..Default::default() })
        };
        assert_eq!(check(&matmul(1, 0), &cfg), Ok(()));
        assert_eq!(check(&matmul(1, 7), &cfg).unwrap_err().code, ErrorCode::IllegalInstruction);
    }

    #[test]
    fn sparse_tiles_need_the_config_key_and_fit_their_positions() {
        let mut cfg = tiny();
        let ldw = |k, meta| Instr::Ldw(Ldw { addr: 0, k, n: 4, wfmt: WFMT_I8_S24, meta, ..Default::default() });
        let e = check(&ldw(4, 0), &cfg).unwrap_err();
        assert_eq!(e.code, ErrorCode::IllegalInstruction);
        assert!(e.message.contains("array.sparsity_2_4 = true"), "{e}");
        let mm = Instr::Matmul(Matmul { m: 1, a_bstride: 3, ..Default::default() });
        assert!(check(&mm, &cfg).unwrap_err().message.contains("array.sparsity_2_4"));
        cfg.array.sparsity_2_4 = true;
        assert_eq!(check(&ldw(4, 5), &cfg), Ok(()));
        assert_eq!(check(&mm, &cfg), Ok(()));
        // k rows need ceil(k / 4) position rows from `meta`.
        let last = cfg.spad_rows() as u16;
        assert_eq!(check(&ldw(4, last - 1), &cfg), Ok(()));
        assert_eq!(check(&ldw(4, last), &cfg).unwrap_err().code, ErrorCode::BufferOutOfRange);
        // The second input block counts in the span.
        let far = Instr::Matmul(Matmul { m: 2, a: last - 2, a_bstride: 1, ..Default::default() });
        assert_eq!(check(&far, &cfg).unwrap_err().code, ErrorCode::BufferOutOfRange);
        // int4 needs its own key.
        let i4 = Instr::Ldw(Ldw { k: 1, n: 1, wfmt: WFMT_I4, ..Default::default() });
        assert_eq!(check(&i4, &cfg).unwrap_err().code, ErrorCode::IllegalInstruction);
    }

    /// i4 tiles are legal only where `array.weight_precisions` lists int4,
    /// and read `ceil(k / 2)` scratchpad rows.
    #[test]
    fn int4_tiles_need_the_precision_and_half_the_rows() {
        let cfg = tiny();
        let spad = cfg.spad_rows() as u16;
        let ldw = |addr, k| Instr::Ldw(Ldw { addr, k, n: 1, wfmt: WFMT_I4, ..Default::default() });
        let e = check(&ldw(0, 2), &cfg).unwrap_err();
        assert_eq!(e.code, ErrorCode::IllegalInstruction);
        assert!(e.message.contains("array.weight_precisions"), "{e}");
        let mut cfg4 = cfg.clone();
        cfg4.array.weight_precisions.push(crate::config::WeightPrecision::Int4);
        assert_eq!(check(&ldw(0, 2), &cfg4), Ok(()));
        // 3 rows of int4 weights are 2 scratchpad rows: the last two rows fit, the last one does not.
        assert_eq!(check(&ldw(spad - 2, 3), &cfg4), Ok(()));
        assert_eq!(check(&ldw(spad - 1, 3), &cfg4).unwrap_err().code, ErrorCode::BufferOutOfRange);
        assert_eq!(
            check(&Instr::Ldw(Ldw { addr: spad - 2, k: 3, n: 1, ..Default::default() }), &cfg4).unwrap_err().code,
            ErrorCode::BufferOutOfRange
        );
        let sparse = Instr::Ldw(Ldw { k: 1, n: 1, wfmt: WFMT_I8_S24, ..Default::default() });
        assert_eq!(check(&sparse, &cfg4).unwrap_err().code, ErrorCode::IllegalInstruction);
    }
}
