//! Index maps of strided views of a row-major tensor: for every element of
//! a view (broadcast, transpose, slice, another memory order), the offset
//! of the element it reads. The interpreters, constant folding and the
//! `.npy` reader all gather through these.

/// Row-major strides of `dims` (last dimension fastest).
pub fn row_major_strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; dims.len()];
    for d in (0..dims.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * dims[d + 1];
    }
    s
}

/// Visits every multi-index of `dims` in row-major order.
pub fn for_each_index(dims: &[usize], mut f: impl FnMut(&[usize])) {
    let n: usize = dims.iter().product();
    let mut pos = vec![0usize; dims.len()];
    for _ in 0..n {
        f(&pos);
        for d in (0..dims.len()).rev() {
            pos[d] += 1;
            if pos[d] < dims[d] {
                break;
            }
            pos[d] = 0;
        }
    }
}

/// For every multi-index `pos` of `dims` in row-major order, the offset
/// `sum_d pos[d] * strides[d]`.
pub fn strided_offsets(dims: &[usize], strides: &[usize]) -> Vec<usize> {
    debug_assert_eq!(dims.len(), strides.len());
    let mut idx = Vec::with_capacity(dims.iter().product());
    for_each_index(dims, |pos| idx.push(pos.iter().zip(strides).map(|(p, s)| p * s).sum()));
    idx
}

/// For every element of `out` (row-major), the index into a tensor of
/// shape `shape` that broadcasts to it (numpy rules: `shape` aligned to the
/// right, its size-1 dimensions repeated).
pub fn broadcast_index(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let mut strides = vec![0usize; out.len()];
    let own = row_major_strides(shape);
    for d in 0..shape.len() {
        strides[d + out.len() - shape.len()] = if shape[d] == 1 { 0 } else { own[d] };
    }
    strided_offsets(out, &strides)
}

/// For every element of the transpose of a `shape` tensor by `perm` (output
/// dimension `d` is input dimension `perm[d]`), its source index.
pub fn transpose_index(shape: &[usize], perm: &[usize]) -> Vec<usize> {
    let own = row_major_strides(shape);
    let dims: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let strides: Vec<usize> = perm.iter().map(|&p| own[p]).collect();
    strided_offsets(&dims, &strides)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strides_and_walk_are_row_major() {
        assert_eq!(row_major_strides(&[2, 3, 4]), [12, 4, 1]);
        assert_eq!(row_major_strides(&[]), Vec::<usize>::new());
        let mut seen = Vec::new();
        for_each_index(&[2, 2], |p| seen.push(p.to_vec()));
        assert_eq!(seen, [[0, 0], [0, 1], [1, 0], [1, 1]]);
        // A scalar has one element; an empty dimension none.
        assert_eq!(strided_offsets(&[], &[]), [0]);
        assert_eq!(strided_offsets(&[3, 0], &[1, 1]), Vec::<usize>::new());
    }

    #[test]
    fn broadcast_repeats_size_one_and_missing_dimensions() {
        // A (3,) row against (2, 3): the row twice.
        assert_eq!(broadcast_index(&[3], &[2, 3]), [0, 1, 2, 0, 1, 2]);
        // A (2, 1) column against (2, 3): each element three times.
        assert_eq!(broadcast_index(&[2, 1], &[2, 3]), [0, 0, 0, 1, 1, 1]);
        // The same shape: the identity.
        assert_eq!(broadcast_index(&[2, 2], &[2, 2]), [0, 1, 2, 3]);
        // A (1,) scalar everywhere.
        assert_eq!(broadcast_index(&[1], &[2, 2]), [0; 4]);
    }

    #[test]
    fn transpose_reads_the_permuted_source() {
        // (2, 3) -> (3, 2): element [i][j] of the output is [j][i] of the input.
        assert_eq!(transpose_index(&[2, 3], &[1, 0]), [0, 3, 1, 4, 2, 5]);
        // (2, 3, 4) by (2, 0, 1): out[a][b][c] = in[b][c][a] at 12b + 4c + a.
        let idx = transpose_index(&[2, 3, 4], &[2, 0, 1]);
        assert_eq!(idx.len(), 24);
        for a in 0..4 {
            for b in 0..2 {
                for c in 0..3 {
                    assert_eq!(idx[(a * 2 + b) * 3 + c], 12 * b + 4 * c + a);
                }
            }
        }
        // The identity permutation is the identity map.
        assert_eq!(transpose_index(&[2, 2], &[0, 1]), [0, 1, 2, 3]);
    }
}
