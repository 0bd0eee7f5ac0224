//! The vector unit (ISA.md §3 "The vector unit"): its arithmetic is
//! `isa::numerics::vector`, element by element, on row patterns of the
//! accumulator (float32 as the words' bits) and the scratchpad; its timing
//! and event counts are `isa::timing`'s. `machine` decides when an
//! instruction issues; this module computes what it does and how long it
//! keeps the unit busy.

use isa::instr::{self as ins, vector_blocks, Instr, RowPattern};
use isa::legal::{self, Illegal};
use isa::numerics::vector as v;
use isa::regs::ErrorCode;
use isa::timing::{vector_beats, vred_cycles, VEC_LATENCY, VEC_SIMPLE_CYCLES, VOP_CYCLES, VQUANT_CYCLES};
use isa::HwConfig;

/// What one vector instruction did, for the machine's timing and counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VectorRun {
    /// Busy cycles of the unit.
    pub busy: u64,
    /// `rows * len`.
    pub elements: u64,
    /// `elements *` lane cycles per element.
    pub lane_cycles: u64,
    /// `[lo, hi)` hull of the accumulator rows read or written.
    pub acc_span: (u64, u64),
    /// `[lo, hi)` scratchpad rows written (`vquant`), else empty.
    pub spad_dst: (u64, u64),
    pub acc_read_rows: u64,
    pub acc_write_rows: u64,
    pub spad_read_rows: u64,
    pub spad_write_rows: u64,
}

/// The accumulator and scratchpad of a configuration as the vector unit
/// sees them.
pub struct Buffers<'a> {
    cfg: &'a HwConfig,
    acc: &'a mut [i32],
    spad: &'a mut [u8],
    cols: usize,
    lanes: u32,
}

impl<'a> Buffers<'a> {
    /// The buffers of `cfg`: `acc` and `spad` hold its accumulator and
    /// scratchpad rows.
    pub fn new(cfg: &'a HwConfig, acc: &'a mut [i32], spad: &'a mut [u8]) -> Buffers<'a> {
        let cols = cfg.array.cols as usize;
        assert!(
            acc.len() == cfg.acc_rows() as usize * cols && spad.len() == cfg.spad_rows() as usize * cols,
            "the buffers are the configuration's"
        );
        Buffers { cfg, acc, spad, cols, lanes: cfg.vector_lanes() }
    }

    /// The accumulator word holding element `e` of logical row `r`.
    fn acc_at(&self, p: &RowPattern, r: usize, e: usize) -> usize {
        p.row(r as u64, (e / self.cols) as u64) as usize * self.cols + e % self.cols
    }

    fn read_f32(&self, p: &RowPattern, r: usize, len: usize) -> Vec<f32> {
        (0..len).map(|e| f32::from_bits(self.acc[self.acc_at(p, r, e)] as u32)).collect()
    }

    fn write_f32(&mut self, p: &RowPattern, r: usize, xs: &[f32]) {
        for (e, x) in xs.iter().enumerate() {
            let at = self.acc_at(p, r, e);
            self.acc[at] = x.to_bits() as i32;
        }
    }
}

fn hull(spans: &[(u64, u64)]) -> (u64, u64) {
    let lo = spans.iter().map(|s| s.0).min().unwrap_or(0);
    let hi = spans.iter().map(|s| s.1).max().unwrap_or(0);
    (lo, hi)
}

/// Executes one vector instruction. An instruction the unit cannot execute
/// on these buffers (not a vector instruction, a field decoding refuses, a
/// row out of range: what dispatch refuses) is the fault it raises, with
/// nothing written.
pub fn execute(instr: &Instr, b: &mut Buffers<'_>) -> Result<VectorRun, Illegal> {
    if !instr.is_vector() {
        return Err(Illegal {
            code: ErrorCode::IllegalInstruction,
            message: format!("`{instr}` is not a vector instruction"),
        });
    }
    // What decoding checks (an instruction may be built, not decoded), then
    // what dispatch checks.
    instr.check_fields().map_err(|e| Illegal { code: ErrorCode::IllegalInstruction, message: e.to_string() })?;
    legal::check(instr, b.cfg)?;
    let cols = b.cols as u32;
    let mut run = match instr {
        Instr::Vdeq(d) => {
            let (rows, len, blocks) = (d.rows as usize, d.len as usize, vector_blocks(d.len, cols));
            let src = RowPattern::new(d.src, d.src_step, d.src_bstride);
            let dst = RowPattern::new(d.dst, d.dst_step, d.dst_bstride);
            let scales: Vec<f32> = if d.scale_imm != 0 {
                vec![f32::from_bits(d.imm); len]
            } else {
                b.read_f32(&RowPattern::new(d.scale, 0, 1), 0, len)
            };
            for r in 0..rows {
                let out: Vec<f32> = (0..len)
                    .map(|e| {
                        let at = b.acc_at(&src, r, e);
                        let q = if d.src_buf == ins::BUF_ACC {
                            b.acc[at]
                        } else if d.in_type == ins::ELEM_U8 {
                            b.spad[at] as i32
                        } else {
                            b.spad[at] as i8 as i32
                        };
                        v::dequantize(q, scales[e], d.zp as i32)
                    })
                    .collect();
                b.write_f32(&dst, r, &out);
            }
            let (n, src_span) = (rows as u64 * blocks, src.span(rows as u64, blocks));
            let from_acc = d.src_buf == ins::BUF_ACC;
            let scale_rows = if d.scale_imm != 0 { 0 } else { blocks };
            let mut acc_spans = vec![dst.span(rows as u64, blocks)];
            if from_acc {
                acc_spans.push(src_span);
            }
            if scale_rows > 0 {
                acc_spans.push((d.scale as u64, d.scale as u64 + blocks));
            }
            VectorRun {
                busy: vector_beats(d.rows, d.len, b.lanes) * VEC_SIMPLE_CYCLES + VEC_LATENCY,
                lane_cycles: VEC_SIMPLE_CYCLES,
                acc_span: hull(&acc_spans),
                acc_read_rows: if from_acc { n } else { 0 } + scale_rows,
                acc_write_rows: n,
                spad_read_rows: if from_acc { 0 } else { n },
                ..VectorRun::default()
            }
        }
        Instr::Vquant(q) => {
            let (rows, len, blocks) = (q.rows as usize, q.len as usize, vector_blocks(q.len, cols));
            let src = RowPattern::new(q.src, q.src_step, q.src_bstride);
            let dst = RowPattern::new(q.dst, q.dst_step, q.dst_bstride);
            let scale = f32::from_bits(q.scale);
            for r in 0..rows {
                for (e, x) in b.read_f32(&src, r, len).into_iter().enumerate() {
                    let at = b.acc_at(&dst, r, e);
                    b.spad[at] = v::quantize(x, scale, q.zp as i32, q.qmin as i32, q.qmax as i32) as u8;
                }
            }
            let n = rows as u64 * blocks;
            VectorRun {
                busy: vector_beats(q.rows, q.len, b.lanes) * VQUANT_CYCLES + VEC_LATENCY,
                lane_cycles: VQUANT_CYCLES,
                acc_span: src.span(rows as u64, blocks),
                spad_dst: dst.span(rows as u64, blocks),
                acc_read_rows: n,
                spad_write_rows: n,
                ..VectorRun::default()
            }
        }
        Instr::Vop(o) => {
            let (rows, len, blocks) = (o.rows as usize, o.len as usize, vector_blocks(o.len, cols));
            let dst = RowPattern::new(o.dst, o.dst_step, o.dst_bstride);
            let a = RowPattern::new(o.a, o.a_step, o.a_bstride);
            let bp = RowPattern::new(o.b, o.b_step, o.b_bstride);
            let binary = o.op < ins::VOP_BINARY;
            let b_row = binary && o.b_imm == 0;
            for r in 0..rows {
                let xs = b.read_f32(&a, r, len);
                let ys = if b_row { b.read_f32(&bp, r, len) } else { vec![f32::from_bits(o.imm); len] };
                let out: Vec<f32> = xs.iter().zip(&ys).map(|(&x, &y)| vop(o.op, x, y)).collect();
                b.write_f32(&dst, r, &out);
            }
            let n = rows as u64 * blocks;
            let mut spans = vec![dst.span(rows as u64, blocks), a.span(rows as u64, blocks)];
            if b_row {
                spans.push(bp.span(rows as u64, blocks));
            }
            let c = VOP_CYCLES[o.op as usize];
            VectorRun {
                busy: vector_beats(o.rows, o.len, b.lanes) * c + VEC_LATENCY,
                lane_cycles: c,
                acc_span: hull(&spans),
                acc_read_rows: n * if b_row { 2 } else { 1 },
                acc_write_rows: n,
                ..VectorRun::default()
            }
        }
        Instr::Vred(red) => {
            let (rows, len, blocks) = (red.rows as usize, red.len as usize, vector_blocks(red.len, cols));
            let a = RowPattern::new(red.a, red.a_step, red.a_bstride);
            let dst = RowPattern::new(red.dst, red.dst_step, 0);
            for r in 0..rows {
                let xs = b.read_f32(&a, r, len);
                let s = if red.op == ins::VRED_SUM {
                    v::sum_row(&xs, b.lanes as usize)
                } else {
                    v::max_row(&xs, b.lanes as usize)
                };
                let row = dst.row(r as u64, 0) as usize;
                b.acc[row * b.cols..(row + 1) * b.cols].fill(s.to_bits() as i32);
            }
            VectorRun {
                busy: vred_cycles(red.rows, red.len, b.lanes),
                lane_cycles: VEC_SIMPLE_CYCLES,
                acc_span: hull(&[a.span(rows as u64, blocks), dst.span(rows as u64, 1)]),
                acc_read_rows: rows as u64 * blocks,
                acc_write_rows: rows as u64,
                ..VectorRun::default()
            }
        }
        Instr::Vmask(m) => {
            let (rows, len, blocks) = (m.rows as usize, m.len as usize, vector_blocks(m.len, cols));
            let p = RowPattern::new(m.dst, m.dst_step, m.dst_bstride);
            for r in 0..rows {
                for e in 0..len {
                    if e as i64 > r as i64 + m.diag as i64 {
                        let at = b.acc_at(&p, r, e);
                        b.acc[at] = m.imm as i32;
                    }
                }
            }
            let n = rows as u64 * blocks;
            VectorRun {
                busy: vector_beats(m.rows, m.len, b.lanes) * VEC_SIMPLE_CYCLES + VEC_LATENCY,
                lane_cycles: VEC_SIMPLE_CYCLES,
                acc_span: p.span(rows as u64, blocks),
                acc_read_rows: n,
                acc_write_rows: n,
                ..VectorRun::default()
            }
        }
        _ => unreachable!("non-vector instructions are refused above"),
    };
    let (rows, len) = match instr {
        Instr::Vdeq(d) => (d.rows, d.len),
        Instr::Vquant(q) => (q.rows, q.len),
        Instr::Vop(o) => (o.rows, o.len),
        Instr::Vred(r) => (r.rows, r.len),
        Instr::Vmask(m) => (m.rows, m.len),
        _ => unreachable!("non-vector instructions returned above"),
    };
    run.elements = rows as u64 * len as u64;
    run.lane_cycles *= run.elements;
    Ok(run)
}

/// One `vop` element: `numerics::vector`'s function for `op` (legal
/// instructions only name ops in `VOP_NAMES`).
pub fn vop(op: u8, x: f32, y: f32) -> f32 {
    match op {
        ins::VOP_ADD => v::add(x, y),
        ins::VOP_SUB => v::sub(x, y),
        ins::VOP_MUL => v::mul(x, y),
        ins::VOP_DIV => v::div(x, y),
        ins::VOP_MAX => v::max(x, y),
        ins::VOP_MIN => v::min(x, y),
        ins::VOP_EXP => v::exp(x),
        ins::VOP_ERF => v::erf(x),
        ins::VOP_TANH => v::tanh(x),
        ins::VOP_RECIP => v::recip(x),
        ins::VOP_RSQRT => v::rsqrt(x),
        other => unreachable!("vop op {other} passed decoding"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffers(cfg: &HwConfig) -> (Vec<i32>, Vec<u8>) {
        let cols = cfg.array.cols as usize;
        (vec![0; cfg.acc_rows() as usize * cols], vec![0; cfg.spad_rows() as usize * cols])
    }

    /// An instruction that reaches the unit without passing dispatch's
    /// checks is a fault, not a panic, and writes nothing.
    #[test]
    fn what_dispatch_refuses_faults_here_too() {
        let cfg = HwConfig::tiny_4x4();
        let (mut acc, mut spad) = buffers(&cfg);
        let rows = cfg.acc_rows() as u16;
        // A legal `vmask` of one row: fills elements past the diagonal.
        let fill = 1.5f32.to_bits();
        let ok = Instr::Vmask(ins::Vmask { rows: 1, len: 4, diag: -1, imm: fill, ..Default::default() });
        let run = execute(&ok, &mut Buffers::new(&cfg, &mut acc, &mut spad)).expect("legal");
        assert_eq!(run.elements, 4);
        assert_eq!(acc[..4], [fill as i32; 4]);

        // Its last row past the accumulator.
        acc.fill(0);
        let past =
            Instr::Vmask(ins::Vmask { dst: rows - 1, dst_step: 1, rows: 2, len: 4, imm: fill, ..Default::default() });
        let e = execute(&past, &mut Buffers::new(&cfg, &mut acc, &mut spad)).expect_err("out of range");
        assert_eq!(e.code, ErrorCode::BufferOutOfRange, "{e}");
        assert!(acc.iter().all(|&v| v == 0), "nothing written");

        // An op no encoding names, and a count of zero.
        let op = Instr::Vop(ins::Vop { op: 200, rows: 1, len: 4, ..Default::default() });
        let e = execute(&op, &mut Buffers::new(&cfg, &mut acc, &mut spad)).expect_err("unknown op");
        assert_eq!(e.code, ErrorCode::IllegalInstruction, "{e}");
        let empty = Instr::Vred(ins::Vred { rows: 0, len: 4, ..Default::default() });
        let e = execute(&empty, &mut Buffers::new(&cfg, &mut acc, &mut spad)).expect_err("no rows");
        assert_eq!(e.code, ErrorCode::IllegalInstruction, "{e}");

        // Not a vector instruction at all.
        let sync = Instr::Sync(ins::Sync { queue: 1, ..Default::default() });
        let e = execute(&sync, &mut Buffers::new(&cfg, &mut acc, &mut spad)).expect_err("not vector");
        assert_eq!(e.code, ErrorCode::IllegalInstruction, "{e}");
        assert!(e.message.contains("not a vector instruction"), "{e}");
    }
}
