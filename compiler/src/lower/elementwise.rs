//! Element-wise ops on the post-processor: Add (`vadd` of two tensors,
//! ONNX Runtime's QLinearAdd bit for bit) and Clamp (`vadd` of one with the
//! second operand's ratio 0: a copy through the clamp), in bands of rows when
//! the operands exceed the scratchpad.

use super::memory::{feature_rows, row_shape, rows_view};
use super::movement::{load_feature, store_feature};
use super::{check_elem, input_buffer, out_buffer, unsupported, Ctx};
use crate::gemm::LowerError;
use crate::ir::{ElemType, Node};
use isa::instr::{self as ins, Deps, Instr};
use isa::numerics;

/// `vadd` of two tensors (Add) or of one copied through the clamp (Clamp).
pub fn lower_vadd(cx: &mut Ctx<'_>, n: &Node, (qmin, qmax): (i32, i32), out_halo: usize) -> Result<u64, LowerError> {
    let (a, b, y, node) = (n.inputs[0], n.inputs.get(1).copied(), n.outputs[0], n.name.as_str());
    check_elem(cx, y, node, "add")?;
    let ab = input_buffer(cx, a, node)?.clone();
    let (pixels, c) =
        feature_rows(&ab.layout).ok_or_else(|| unsupported(node, "add", "operand layout not supported"))?;
    let (qa, qy) = (cx.quant(a), cx.quant(y));
    let (bb, p) = match b {
        Some(b) => {
            let bb = input_buffer(cx, b, node)?.clone();
            if feature_rows(&bb.layout) != Some((pixels, c)) {
                return Err(unsupported(node, "add", "operands must have the same shape"));
            }
            let qb = cx.quant(b);
            let (za, zb, zo) = (qa.zero_point, qb.zero_point, qy.zero_point);
            (bb, numerics::qadd_params(qa.scale, qb.scale, qy.scale, za, zb, zo))
        }
        // fma(a, 1, fma(a, 0, 0)) = a exactly: a copy through the clamp.
        None if qa == qy => (ab.clone(), numerics::qadd_fold(1.0, 0.0, 0, 0, 0)),
        None => return Err(unsupported(node, "clamp", "a clamp that changes quantization is not lowered")),
    };
    let unsigned_in = cx.g.values[a].ty == ElemType::U8;
    if b.is_some_and(|b| (cx.g.values[b].ty == ElemType::U8) != unsigned_in) {
        return Err(unsupported(node, "add", "operands of different types (int8 and uint8) are not lowered"));
    }
    let unsigned_out = cx.g.values[y].ty == ElemType::U8;
    let dim = cx.dim;
    let cb = c.div_ceil(dim);
    let (rows, per_row) = row_shape(&ab.layout);
    let budget = (cx.cfg.spad_rows() as usize).min(65535);
    let band = budget / (3 * cb * per_row);
    if band == 0 || cx.cfg.acc_rows() < 3 {
        return Err(unsupported(node, "add", "one row of the operands does not fit the scratchpad"));
    }
    // Parameters (the same for every column): rows ra, rb, k as f32 bits.
    let mut params = Vec::new();
    for v in [p.ra, p.rb, p.k].map(f32::to_bits) {
        params.extend((0..dim).flat_map(|_| v.to_le_bytes()));
    }
    let p_addr = cx.mem.alloc_bytes(&params);
    let outb = out_buffer(cx, y, out_halo)?;
    // Bands of rows when the operands exceed the scratchpad.
    for r0 in (0..rows).step_by(band) {
        let r1 = (r0 + band).min(rows);
        let px = (r1 - r0) * per_row;
        let (a_base, b_base, o_base) = (0, cb * px, 2 * cb * px);
        let mut v = load_feature(&rows_view(&ab, r0, r1), a_base as u16, dim, Deps::NONE);
        v.extend(load_feature(&rows_view(&bb, r0, r1), b_base as u16, dim, Deps::NONE));
        v.push(Instr::from(crate::gemm::load_params(p_addr, 3, dim, 0, Deps { push_next: true, ..Deps::NONE })));
        for blk in 0..cb {
            v.push(Instr::from(ins::Vadd {
                deps: Deps { pop_prev: blk == 0, push_next: blk + 1 == cb, ..Deps::NONE },
                a: (a_base + blk * px) as u16,
                b: (b_base + blk * px) as u16,
                dst: (o_base + blk * px) as u16,
                n: px as u16,
                params: 0,
                qmin: qmin as i16,
                qmax: qmax as i16,
                in_type: unsigned_in as u8,
                out_type: unsigned_out as u8,
            }));
        }
        v.extend(store_feature(&rows_view(&outb, r0, r1), o_base as u16, dim, Deps { pop_prev: true, ..Deps::NONE }));
        cx.code.phase(v);
    }
    Ok(0)
}
