//! The memory plan: one device buffer per value (NHWC for 4-D
//! activations, optionally inside a halo of the value's zero point so a
//! padded convolution reads plain rectangles; row-major for 2-D ones), and
//! the program's constant data (weights, parameters, buffers) laid out at
//! aligned, non-overlapping offsets. Offsets are relative to the data,
//! which packaging places after the code.

use super::unsupported;
use crate::gemm::{LowerError, OutRows};
use crate::ir::{Graph, Op, ValueId};
use isa::layout::Layout;

/// Every allocation starts on this many bytes (a DRAM beat).
pub const ALIGN: usize = 64;

/// A buffer in device memory holding one value.
#[derive(Clone, Debug, PartialEq)]
pub struct Buffer {
    pub addr: u64,
    pub layout: Layout,
}

/// The program's data image and the buffer of each value.
#[derive(Debug, Default)]
pub struct MemoryPlan {
    data: Vec<u8>,
    bufs: Vec<Option<Buffer>>,
}

impl MemoryPlan {
    pub fn new(values: usize) -> MemoryPlan {
        MemoryPlan { data: Vec::new(), bufs: vec![None; values] }
    }

    /// Reserves `bytes` (at least one) filled with `fill`; returns the offset.
    pub fn alloc(&mut self, bytes: usize, fill: u8) -> u64 {
        let at = self.data.len().div_ceil(ALIGN) * ALIGN;
        self.data.resize(at, 0);
        self.data.resize(at + bytes.max(1), fill);
        at as u64
    }

    /// Places constant bytes; returns the offset.
    pub fn alloc_bytes(&mut self, bytes: &[u8]) -> u64 {
        let at = self.alloc(bytes.len(), 0);
        self.data[at as usize..at as usize + bytes.len()].copy_from_slice(bytes);
        at
    }

    pub fn buffer(&self, v: ValueId) -> Option<&Buffer> {
        self.bufs[v].as_ref()
    }

    pub fn set_buffer(&mut self, v: ValueId, b: Buffer) {
        self.bufs[v] = Some(b);
    }

    pub fn data(&self) -> &[u8] {
        &self.data
    }

    pub fn into_data(self) -> Vec<u8> {
        self.data
    }
}

/// The zero-point halo each value needs: the largest padding (any side) of
/// a convolution that reads it. The halo is the same on every side; a
/// convolution with asymmetric padding starts its windows inside it.
pub fn plan_halos(g: &Graph) -> Result<Vec<usize>, LowerError> {
    let mut halo = vec![0; g.values.len()];
    for n in &g.nodes {
        if let Op::Conv(c) = &n.op {
            let pad = c.pads.iter().copied().max().unwrap_or(0);
            halo[n.inputs[0]] = halo[n.inputs[0]].max(pad);
        }
    }
    Ok(halo)
}

pub fn layout_of(g: &Graph, v: ValueId, halo: usize) -> Result<Layout, LowerError> {
    let val = &g.values[v];
    match val.shape[..] {
        // A batch (`compile --batch`): `n` images one after the other.
        [n, c, h, w] if n >= 1 => Ok(Layout::Nhwc { n, h, w, c, halo }),
        [rows, cols] if halo == 0 => Ok(Layout::Flat { rows, cols, perm: None }),
        [cols] if halo == 0 => Ok(Layout::Flat { rows: 1, cols, perm: None }),
        _ => Err(unsupported(&val.name, "layout", format!("value shape {:?} (rank 1, 2 or 4)", val.shape))),
    }
}

/// Image `i` of a batch of NHWC feature maps (`Layout::images`) as a
/// buffer of its own; `None` for a row-major buffer.
pub fn image_view(b: &Buffer, i: usize) -> Option<Buffer> {
    match &b.layout {
        Layout::Nhwc { n, h, w, c, halo } => {
            debug_assert!(i < *n, "image {i} of {n}");
            let image = Layout::Nhwc { n: 1, h: *h, w: *w, c: *c, halo: *halo };
            Some(Buffer { addr: b.addr + (i * image.bytes()) as u64, layout: image })
        }
        Layout::Flat { .. } => None,
    }
}

/// Rows of a GEMM output written into `b` (pixels of an NHWC buffer of one
/// image, or rows).
pub fn out_rows(b: &Buffer) -> OutRows {
    match &b.layout {
        Layout::Nhwc { w, c, halo, n, .. } => {
            debug_assert_eq!(*n, 1, "GEMM rows of one image");
            let wp = w + 2 * halo;
            OutRows {
                addr: b.addr + ((halo * wp + halo) * c) as u64,
                row_stride: *c as u64,
                group: *w,
                group_stride: (wp * c) as u64,
            }
        }
        Layout::Flat { cols, .. } => OutRows::dense(b.addr, *cols as u64),
    }
}

/// The rows `[r0, r1)` of a buffer (image rows of a feature map of one
/// image) as a buffer of its own.
pub fn rows_view(b: &Buffer, r0: usize, r1: usize) -> Buffer {
    match &b.layout {
        Layout::Nhwc { w, c, halo, n, .. } => Buffer {
            addr: b.addr + (r0 * (w + 2 * halo) * c) as u64,
            layout: Layout::Nhwc { n: *n, h: r1 - r0, w: *w, c: *c, halo: *halo },
        },
        Layout::Flat { cols, perm, .. } => Buffer {
            addr: b.addr + (r0 * cols) as u64,
            layout: Layout::Flat { rows: r1 - r0, cols: *cols, perm: perm.clone() },
        },
    }
}

/// (rows, pixels per row) of a buffer of one image, for banding by rows.
pub fn row_shape(l: &Layout) -> (usize, usize) {
    match l {
        Layout::Nhwc { h, w, n, .. } => {
            debug_assert_eq!(*n, 1, "rows of one image");
            (*h, *w)
        }
        Layout::Flat { rows, .. } => (*rows, 1),
    }
}

/// (pixels, channels) of a feature map or row-major buffer: how many
/// scratchpad rows per column block `load_feature` makes of it.
pub fn feature_rows(layout: &Layout) -> Option<(usize, usize)> {
    match layout {
        Layout::Nhwc { n: 1, h, w, c, .. } => Some((h * w, *c)),
        // A batch moves image by image (`lower::per_image`).
        Layout::Nhwc { .. } => None,
        Layout::Flat { rows, cols, perm: None } => Some((*rows, *cols)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_are_aligned_disjoint_and_filled() {
        let mut m = MemoryPlan::new(0);
        let sizes = [1usize, 0, 63, 64, 65, 200, 3];
        let mut spans = Vec::new();
        for (i, &n) in sizes.iter().enumerate() {
            let at = if i % 2 == 0 { m.alloc(n, i as u8 + 1) } else { m.alloc_bytes(&vec![0xa0 + i as u8; n]) };
            assert_eq!(at as usize % ALIGN, 0, "allocation {i} at {at}");
            spans.push((at as usize, at as usize + n.max(1), i));
        }
        for (a, b) in spans.iter().zip(&spans[1..]) {
            assert!(a.1 <= b.0, "{a:?} overlaps {b:?}");
        }
        for &(lo, hi, i) in &spans {
            let want = if i % 2 == 0 { i as u8 + 1 } else { 0xa0 + i as u8 };
            let want = if sizes[i] == 0 { 0 } else { want };
            assert!(m.data()[lo..hi].iter().all(|&b| b == want), "allocation {i}");
        }
    }

    #[test]
    fn output_rows_of_a_halo_buffer_skip_the_halo() {
        let b = Buffer { addr: 128, layout: Layout::Nhwc { n: 1, h: 3, w: 4, c: 5, halo: 1 } };
        let r = out_rows(&b);
        // Pixel (0, 0) is at padded (1, 1); image rows are 6 padded pixels apart.
        assert_eq!((r.addr, r.row_stride, r.group, r.group_stride), (128 + (6 + 1) * 5, 5, 4, 6 * 5));
        let v = rows_view(&b, 1, 3);
        assert_eq!(v.addr, 128 + 6 * 5);
        assert_eq!(v.layout, Layout::Nhwc { n: 1, h: 2, w: 4, c: 5, halo: 1 });
        // Image 2 of a batch of 3 starts two padded images (5 x 6 x 5) on.
        let batch = Buffer { addr: 128, layout: Layout::Nhwc { n: 3, h: 3, w: 4, c: 5, halo: 1 } };
        assert_eq!(batch.layout.bytes(), 3 * 150);
        let i2 = image_view(&batch, 2).unwrap();
        assert_eq!((i2.addr, i2.layout), (128 + 2 * 150, b.layout.clone()));
    }
}
