//! Where a transformer value lies in device memory: row-major over its
//! logical shape (int8/uint8 one byte an element, float32 four), or a
//! *view* of another value's buffer with permuted strides (a Reshape of a
//! contiguous buffer, a Transpose, a Slice) that no copy materializes.
//! Consumers read a view as matrices `[rows, cols]` with one DMA stride per
//! direction.

/// A value's elements in device memory: element `idx` (a multi-index over
/// `shape`) at byte `addr + esize * Σ idx[d] * strides[d]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Place {
    pub addr: u64,
    pub shape: Vec<usize>,
    /// In elements.
    pub strides: Vec<usize>,
    pub esize: usize,
}

/// A matrix of a place: `rows x cols`, element `(r, c)` at byte
/// `addr + esize * (r * row_stride + c * col_stride)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mat {
    pub addr: u64,
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
    pub esize: usize,
}

impl Mat {
    /// Rows are contiguous runs of `cols` elements (one DMA row each).
    pub fn rows_contiguous(&self) -> bool {
        self.col_stride == 1 || self.cols == 1
    }

    /// Byte address of element `(r, c)`.
    pub fn at(&self, r: usize, c: usize) -> u64 {
        self.addr + (self.esize * (r * self.row_stride + c * self.col_stride)) as u64
    }

    /// Bytes between rows.
    pub fn row_bytes(&self) -> u64 {
        (self.row_stride * self.esize) as u64
    }
}

fn row_major(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    strides
}

impl Place {
    pub fn contiguous(addr: u64, shape: &[usize], esize: usize) -> Place {
        Place { addr, shape: shape.to_vec(), strides: row_major(shape), esize }
    }

    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// Dimensions of size 1 do not constrain the layout.
    pub fn is_contiguous(&self) -> bool {
        let want = row_major(&self.shape);
        self.shape.iter().zip(self.strides.iter().zip(&want)).all(|(&n, (s, w))| n == 1 || s == w)
    }

    /// The same bytes under another shape: only a contiguous place.
    pub fn reshaped(&self, shape: &[usize]) -> Option<Place> {
        self.is_contiguous().then(|| Place::contiguous(self.addr, shape, self.esize))
    }

    pub fn transposed(&self, perm: &[usize]) -> Place {
        Place {
            addr: self.addr,
            shape: perm.iter().map(|&p| self.shape[p]).collect(),
            strides: perm.iter().map(|&p| self.strides[p]).collect(),
            esize: self.esize,
        }
    }

    pub fn sliced(&self, axis: usize, start: usize, end: usize) -> Place {
        let mut p = self.clone();
        p.addr += (start * p.strides[axis] * p.esize) as u64;
        p.shape[axis] = end - start;
        p
    }

    /// The contiguous buffer a permuted view reads, and the order of the
    /// view's dimensions in it (`base.shape[i] = shape[order[i]]`); None
    /// when the view is not a permutation of a contiguous buffer.
    pub fn unpermuted(&self) -> Option<(Place, Vec<usize>)> {
        let mut order: Vec<usize> = (0..self.shape.len()).collect();
        // Outer dimensions first; a size-1 dimension keeps its place.
        order.sort_by_key(|&d| (std::cmp::Reverse(if self.shape[d] == 1 { usize::MAX } else { self.strides[d] }), d));
        let base = Place {
            addr: self.addr,
            shape: order.iter().map(|&d| self.shape[d]).collect(),
            strides: order.iter().map(|&d| self.strides[d]).collect(),
            esize: self.esize,
        };
        base.is_contiguous().then_some((Place::contiguous(self.addr, &base.shape, self.esize), order))
    }

    /// The place as one matrix: the last dimension as columns, every other
    /// one folded into rows, when the leading dimensions collapse into one
    /// stride.
    pub fn matrix(&self) -> Option<Mat> {
        let r = self.shape.len();
        let (cols, col_stride) = match r {
            0 => (1, 1),
            _ => (self.shape[r - 1], self.strides[r - 1]),
        };
        let lead: Vec<(usize, usize)> =
            (0..r.saturating_sub(1)).map(|d| (self.shape[d], self.strides[d])).filter(|&(n, _)| n > 1).collect();
        let rows = lead.iter().map(|&(n, _)| n).product::<usize>();
        let row_stride = lead.last().map_or(cols * col_stride, |&(_, s)| s);
        // Collapsible: each outer dimension steps over the whole inner one.
        let ok = lead.windows(2).all(|w| w[0].1 == w[1].0 * w[1].1);
        ok.then_some(Mat { addr: self.addr, rows, cols, row_stride, col_stride, esize: self.esize })
    }

    /// The matrices of a batched `[.., M, N]` place, one per leading index
    /// (row-major over the leading dimensions).
    pub fn batch(&self) -> Vec<Mat> {
        let r = self.shape.len();
        let (m, n) = (self.shape[r - 2], self.shape[r - 1]);
        let lead = &self.shape[..r - 2];
        let count: usize = lead.iter().product();
        (0..count)
            .map(|mut i| {
                let mut off = 0;
                for d in (0..lead.len()).rev() {
                    off += (i % lead[d]) * self.strides[d];
                    i /= lead[d];
                }
                Mat {
                    addr: self.addr + (off * self.esize) as u64,
                    rows: m,
                    cols: n,
                    row_stride: self.strides[r - 2],
                    col_stride: self.strides[r - 1],
                    esize: self.esize,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Q of a `[1, 32, 128]` projection as heads: `[1, 32, 4, 32]` then
    /// `[0, 2, 1, 3]` (a view, no copy): head h is rows of 32 at stride 128
    /// from column 32 h; `[0, 2, 3, 1]` (K transposed) has column stride 128.
    #[test]
    fn heads_are_strided_views() {
        let p = Place::contiguous(1000, &[1, 32, 128], 1).reshaped(&[1, 32, 4, 32]).unwrap();
        let q = p.transposed(&[0, 2, 1, 3]);
        assert!(!q.is_contiguous());
        assert!(q.matrix().is_none());
        let heads = q.batch();
        assert_eq!(heads.len(), 4);
        assert_eq!(heads[2], Mat { addr: 1064, rows: 32, cols: 32, row_stride: 128, col_stride: 1, esize: 1 });
        let kt = p.transposed(&[0, 2, 3, 1]).batch();
        assert_eq!((kt[1].addr, kt[1].row_stride, kt[1].col_stride), (1032, 1, 128));
        assert!(!kt[1].rows_contiguous());
        // A slice of the last axis keeps the row stride.
        let s = Place::contiguous(0, &[1, 32, 384], 4).sliced(2, 128, 256);
        assert_eq!(
            s.matrix().unwrap(),
            Mat { addr: 512, rows: 32, cols: 128, row_stride: 384, col_stride: 1, esize: 4 }
        );
        assert_eq!(Place::contiguous(0, &[1, 1, 1, 32], 4).matrix().unwrap().rows, 1);
        // Kᵀ's view is a permutation of K's buffer: [1, 32, 4, 32] in order.
        let (base, order) = p.transposed(&[0, 2, 3, 1]).unpermuted().unwrap();
        assert_eq!((base.addr, base.shape.clone()), (1000, vec![1, 32, 4, 32]));
        assert_eq!(order, vec![0, 3, 1, 2]);
        assert_eq!(base.transposed(&[0, 2, 3, 1]).strides, p.transposed(&[0, 2, 3, 1]).strides);
    }
}
