//! The portable kernel: one input row at a time, every weight row scaled by
//! the row's input and added up in int32.

use super::Rows;

pub(super) fn stream(w: &[i16], k: usize, cols: usize, rows: &Rows<'_>, dst: &mut [i32], accumulate: bool) {
    let (x, dst) = (&rows.x[..rows.m * cols], &mut dst[..rows.m * cols]);
    // Fixed widths let the compiler unroll and vectorize the row update.
    match cols {
        4 => fixed::<4>(w, k, x, rows.unsigned, dst, accumulate),
        8 => fixed::<8>(w, k, x, rows.unsigned, dst, accumulate),
        16 => fixed::<16>(w, k, x, rows.unsigned, dst, accumulate),
        32 => fixed::<32>(w, k, x, rows.unsigned, dst, accumulate),
        _ => any(w, k, cols, x, rows.unsigned, dst, accumulate),
    }
}

fn fixed<const C: usize>(w: &[i16], k: usize, x: &[u8], unsigned: bool, dst: &mut [i32], accumulate: bool) {
    for (xrow, drow) in x.chunks_exact(C).zip(dst.chunks_exact_mut(C)) {
        let mut out = [0i32; C];
        for (r, &xb) in xrow[..k].iter().enumerate() {
            let xv = if unsigned { xb as i16 } else { xb as i8 as i16 };
            let wrow: &[i16; C] = w[r * C..r * C + C].try_into().expect("C weights");
            // |x| <= 255 and |w| <= 128: the product fits in i16.
            for c in 0..C {
                out[c] += (xv * wrow[c]) as i32;
            }
        }
        let drow: &mut [i32; C] = drow.try_into().expect("C accumulators");
        if accumulate {
            for c in 0..C {
                drow[c] = drow[c].wrapping_add(out[c]);
            }
        } else {
            *drow = out;
        }
    }
}

fn any(w: &[i16], k: usize, cols: usize, x: &[u8], unsigned: bool, dst: &mut [i32], accumulate: bool) {
    let mut out = vec![0i32; cols];
    for (xrow, drow) in x.chunks_exact(cols).zip(dst.chunks_exact_mut(cols)) {
        out.iter_mut().for_each(|v| *v = 0);
        for (r, &xb) in xrow[..k].iter().enumerate() {
            let xv = if unsigned { xb as i16 } else { xb as i8 as i16 };
            for (o, &wv) in out.iter_mut().zip(&w[r * cols..(r + 1) * cols]) {
                *o += (xv * wv) as i32;
            }
        }
        if accumulate {
            for (d, o) in drow.iter_mut().zip(&out) {
                *d = d.wrapping_add(*o);
            }
        } else {
            drow.copy_from_slice(&out);
        }
    }
}
