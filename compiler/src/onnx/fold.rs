//! Compile-time evaluation of a transformer graph's shape and mask
//! subgraphs (Shape, ConstantOfShape, Equal, Where, Expand, Cast,
//! Unsqueeze, Concat, Range, Slice, Gather on shapes, arithmetic on
//! constants) for the model's static shapes.
//!
//! A [`Folded`] tensor is known element by element at compile time, either
//! as a constant or as a function of *one element* of an int64 mask input
//! (an attention mask): each element holds its value for a zero and for a
//! non-zero mask element, and which mask element it reads. That is how an
//! attention-mask subgraph built from `attention_mask` folds to a
//! `MaskSelect` the device can evaluate, exactly, whatever the mask holds:
//! an element that would read two different mask elements is refused.
//!
//! Values are held as f64: int64 shape and index arithmetic is exact below
//! 2^53 (checked), float32 arithmetic is done in f32 and widened.

use crate::ir::ValueId;
use crate::strided::{broadcast_index, for_each_index, row_major_strides, transpose_index};

use super::proto::tensor_proto::DataType;
use super::proto::TensorProto;
use super::tensor::{Data, Tensor};

/// The element type of a folded tensor (ONNX's, for Cast and the op
/// semantics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FTy {
    F32,
    I64,
    Bool,
}

impl FTy {
    pub fn name(self) -> &'static str {
        match self {
            FTy::F32 => "float",
            FTy::I64 => "int64",
            FTy::Bool => "bool",
        }
    }

    /// The type an ONNX `Cast` `to` code names.
    pub fn of_code(code: i64) -> Option<FTy> {
        match DataType::try_from(code as i32).ok()? {
            DataType::Float => Some(FTy::F32),
            DataType::Int64 | DataType::Int32 => Some(FTy::I64),
            DataType::Bool => Some(FTy::Bool),
            _ => None,
        }
    }

    /// A value converted to this type (ONNX Cast semantics).
    pub fn cast(self, v: f64) -> f64 {
        match self {
            FTy::F32 => v as f32 as f64,
            FTy::I64 => v.trunc(),
            FTy::Bool => (v != 0.0) as u8 as f64,
        }
    }
}

/// A tensor known at compile time (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Folded {
    pub dims: Vec<usize>,
    pub ty: FTy,
    /// The value where the mask element is zero (or the constant).
    pub lo: Vec<f64>,
    /// The value where the mask element is non-zero.
    pub hi: Vec<f64>,
    /// The mask input and, per element, the element of it read (`None`
    /// for a constant element); `None` for a constant tensor.
    pub src: Option<(ValueId, Vec<Option<usize>>)>,
}

pub(crate) type R<T> = std::result::Result<T, String>;

const EXACT: f64 = (1u64 << 53) as f64;

fn numel(dims: &[usize]) -> usize {
    dims.iter().product()
}

impl Folded {
    pub fn constant(dims: Vec<usize>, ty: FTy, v: Vec<f64>) -> Folded {
        Folded { dims, ty, lo: v.clone(), hi: v, src: None }
    }

    /// An int64 mask input of shape `dims` as read by a Cast: 0 where it is
    /// zero, 1 where it is not.
    pub fn mask_input(id: ValueId, dims: Vec<usize>) -> Folded {
        let n = numel(&dims);
        Folded { dims, ty: FTy::I64, lo: vec![0.0; n], hi: vec![1.0; n], src: Some((id, (0..n).map(Some).collect())) }
    }

    pub fn is_const(&self) -> bool {
        self.src.is_none()
    }

    pub fn len(&self) -> usize {
        self.lo.len()
    }

    /// The constant values as integers (shapes, axes, indices).
    pub fn ints(&self, what: &str) -> R<Vec<i64>> {
        if !self.is_const() {
            return Err(format!("{what} depends on a model input"));
        }
        self.lo
            .iter()
            .map(|&v| {
                if v.fract() != 0.0 || v.abs() >= EXACT {
                    Err(format!("{what} holds {v}, not an integer"))
                } else {
                    Ok(v as i64)
                }
            })
            .collect()
    }

    pub fn floats(&self, what: &str) -> R<Vec<f32>> {
        if !self.is_const() {
            return Err(format!("{what} depends on a model input"));
        }
        Ok(self.lo.iter().map(|&v| v as f32).collect())
    }

    /// The tensor with element `i` taken from `self`'s element `idx[i]`.
    pub fn pick(&self, dims: Vec<usize>, idx: &[usize]) -> Folded {
        Folded {
            dims,
            ty: self.ty,
            lo: idx.iter().map(|&i| self.lo[i]).collect(),
            hi: idx.iter().map(|&i| self.hi[i]).collect(),
            src: self.src.as_ref().map(|(id, s)| (*id, idx.iter().map(|&i| s[i]).collect())),
        }
    }

    pub fn reshaped(&self, dims: Vec<usize>) -> R<Folded> {
        if numel(&dims) != self.len() {
            return Err(format!("cannot reshape {:?} to {dims:?}", self.dims));
        }
        Ok(Folded { dims, ..self.clone() })
    }

    pub fn cast(&self, ty: FTy) -> Folded {
        Folded {
            dims: self.dims.clone(),
            ty,
            lo: self.lo.iter().map(|&v| ty.cast(v)).collect(),
            hi: self.hi.iter().map(|&v| ty.cast(v)).collect(),
            src: self.src.clone(),
        }
    }
}

/// A constant from an initializer or `Constant` tensor (bool included).
pub(crate) fn from_proto(t: &TensorProto) -> R<Folded> {
    if t.data_type() == DataType::Bool as i32 {
        let dims: Vec<usize> = t.dims.iter().map(|&d| d.max(0) as usize).collect();
        let n = numel(&dims);
        let v: Vec<f64> = match t.raw_data.as_deref() {
            Some(r) => r.iter().map(|&b| (b != 0) as u8 as f64).collect(),
            None => t.int32_data.iter().map(|&b| (b != 0) as u8 as f64).collect(),
        };
        if v.len() != n {
            return Err(format!("bool tensor holds {} elements, its dims need {n}", v.len()));
        }
        return Ok(Folded::constant(dims, FTy::Bool, v));
    }
    let t = Tensor::from_proto(t).map_err(|e| format!("{e:?}"))?;
    from_tensor(&t)
}

/// A decoded constant as a folded one (int8/uint8/int32 as int64).
pub(crate) fn from_tensor(t: &Tensor) -> R<Folded> {
    let (ty, v) = match &t.data {
        Data::F32(v) => (FTy::F32, v.iter().map(|&x| x as f64).collect()),
        _ => (FTy::I64, t.as_i64().unwrap_or_default().into_iter().map(|x| x as f64).collect()),
    };
    Ok(Folded::constant(t.dims.clone(), ty, v))
}

// ------------------------------------------------------------ broadcasting

/// Numpy broadcast of several shapes.
pub(crate) fn broadcast_all(shapes: &[&[usize]]) -> R<Vec<usize>> {
    let mut out: Vec<usize> = Vec::new();
    for s in shapes {
        out = crate::ir::broadcast(&out, s).ok_or_else(|| format!("shapes {shapes:?} do not broadcast"))?;
    }
    Ok(out)
}

/// An element-wise op of several folded tensors with broadcasting; `f`
/// maps the inputs' values (for one mask state) to the output's.
pub(crate) fn elementwise(ins: &[&Folded], ty: FTy, f: impl Fn(&[f64]) -> f64) -> R<Folded> {
    let shapes: Vec<&[usize]> = ins.iter().map(|t| t.dims.as_slice()).collect();
    let dims = broadcast_all(&shapes)?;
    let idx: Vec<Vec<usize>> = ins.iter().map(|t| broadcast_index(&t.dims, &dims)).collect();
    let mut srcid = None;
    for t in ins {
        if let Some((id, _)) = &t.src {
            if srcid.is_some_and(|s| s != *id) {
                return Err("combines two different mask inputs".into());
            }
            srcid = Some(*id);
        }
    }
    let n = numel(&dims);
    let (mut lo, mut hi) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut src = Vec::with_capacity(n);
    let mut a = vec![0.0; ins.len()];
    let mut b = vec![0.0; ins.len()];
    #[allow(clippy::needless_range_loop)] // e indexes every input's broadcast map
    for e in 0..n {
        let mut s: Option<usize> = None;
        for (k, t) in ins.iter().enumerate() {
            let i = idx[k][e];
            a[k] = t.lo[i];
            b[k] = t.hi[i];
            if let Some(si) = t.src.as_ref().and_then(|(_, v)| v[i]) {
                if s.is_some_and(|x| x != si) {
                    return Err(format!(
                        "element {e} depends on mask elements {} and {si}: not a per-element mask",
                        s.unwrap_or_default()
                    ));
                }
                s = Some(si);
            }
        }
        lo.push(ty.cast(f(&a)));
        hi.push(ty.cast(f(&b)));
        src.push(s);
    }
    Ok(Folded { dims, ty, lo, hi, src: srcid.map(|id| (id, src)) })
}

/// f32 arithmetic on widened values.
pub(crate) fn f32op(op: &str) -> Option<fn(f32, f32) -> f32> {
    Some(match op {
        "Add" => |a, b| a + b,
        "Sub" => |a, b| a - b,
        "Mul" => |a, b| a * b,
        "Div" => |a, b| a / b,
        _ => return None,
    })
}

pub(crate) fn binary(op: &str, a: &Folded, b: &Folded) -> R<Folded> {
    if a.ty != b.ty {
        return Err(format!("{op} of {} and {}", a.ty.name(), b.ty.name()));
    }
    let ty = a.ty;
    let cmp = |f: fn(f64, f64) -> bool| elementwise(&[a, b], FTy::Bool, move |v| f(v[0], v[1]) as u8 as f64);
    match op {
        "Equal" => cmp(|x, y| x == y),
        "Less" => cmp(|x, y| x < y),
        "LessOrEqual" => cmp(|x, y| x <= y),
        "Greater" => cmp(|x, y| x > y),
        "GreaterOrEqual" => cmp(|x, y| x >= y),
        "And" => cmp(|x, y| x != 0.0 && y != 0.0),
        "Or" => cmp(|x, y| x != 0.0 || y != 0.0),
        _ if ty == FTy::F32 => {
            let f = f32op(op).ok_or_else(|| format!("{op} on floats"))?;
            elementwise(&[a, b], ty, move |v| f(v[0] as f32, v[1] as f32) as f64)
        }
        "Add" | "Sub" | "Mul" | "Div" => {
            let r = elementwise(&[a, b], ty, |v| match op {
                "Add" => v[0] + v[1],
                "Sub" => v[0] - v[1],
                "Mul" => v[0] * v[1],
                _ if v[1] == 0.0 => f64::NAN,
                _ => (v[0] / v[1]).floor(),
            })?;
            if r.lo.iter().chain(&r.hi).any(|v| v.is_nan() || v.abs() >= EXACT) {
                return Err(format!("integer {op} overflows or divides by zero"));
            }
            Ok(r)
        }
        _ => Err(format!("{op} on {}", ty.name())),
    }
}

// ------------------------------------------------------------ movement

pub(crate) fn norm_axis(axis: i64, rank: usize) -> R<usize> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    if (0..rank as i64).contains(&a) {
        Ok(a as usize)
    } else {
        Err(format!("axis {axis} is out of range for rank {rank}"))
    }
}

/// ONNX Reshape's target shape (0 copies, one -1 is inferred).
pub(crate) fn reshape_dims(from: &[usize], shape: &[i64], allowzero: bool) -> R<Vec<usize>> {
    let total = numel(from);
    let mut out = Vec::with_capacity(shape.len());
    let mut infer = None;
    for (i, &d) in shape.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(*from.get(i).ok_or("a 0 in the shape past the input's rank")?),
            d if d >= 0 => out.push(d as usize),
            _ => return Err(format!("shape {shape:?} is not a reshape target")),
        }
    }
    if let Some(i) = infer {
        let rest = numel(&out);
        if rest == 0 || !total.is_multiple_of(rest) {
            return Err(format!("cannot reshape {from:?} to {shape:?}"));
        }
        out[i] = total / rest;
    }
    if numel(&out) != total {
        return Err(format!("cannot reshape {from:?} ({total} elements) to {out:?}"));
    }
    Ok(out)
}

pub(crate) fn unsqueeze_dims(from: &[usize], axes: &[i64]) -> R<Vec<usize>> {
    let rank = from.len() + axes.len();
    let mut ax: Vec<usize> = axes.iter().map(|&a| norm_axis(a, rank)).collect::<R<_>>()?;
    ax.sort_unstable();
    let mut out = from.to_vec();
    for a in ax {
        out.insert(a, 1);
    }
    Ok(out)
}

pub(crate) fn squeeze_dims(from: &[usize], axes: Option<&[i64]>) -> R<Vec<usize>> {
    let ax: Vec<usize> = match axes {
        Some(a) => a.iter().map(|&x| norm_axis(x, from.len())).collect::<R<_>>()?,
        None => (0..from.len()).filter(|&d| from[d] == 1).collect(),
    };
    if let Some(&a) = ax.iter().find(|&&a| from[a] != 1) {
        return Err(format!("cannot squeeze axis {a} of size {}", from[a]));
    }
    Ok(from.iter().enumerate().filter(|(d, _)| !ax.contains(d)).map(|(_, &s)| s).collect())
}

pub(crate) fn transpose(x: &Folded, perm: &[usize]) -> Folded {
    let dims: Vec<usize> = perm.iter().map(|&p| x.dims[p]).collect();
    x.pick(dims, &transpose_index(&x.dims, perm))
}

pub(crate) fn expand(x: &Folded, shape: &[i64]) -> R<Folded> {
    let shape: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
    let dims = broadcast_all(&[&x.dims, &shape])?;
    let idx = broadcast_index(&x.dims, &dims);
    Ok(x.pick(dims, &idx))
}

pub(crate) fn gather(x: &Folded, indices: &[i64], idims: &[usize], axis: usize) -> R<Folded> {
    let (outer, len): (usize, usize) = (numel(&x.dims[..axis]), x.dims[axis]);
    let inner = numel(&x.dims[axis + 1..]);
    let mut dims = x.dims[..axis].to_vec();
    dims.extend_from_slice(idims);
    dims.extend_from_slice(&x.dims[axis + 1..]);
    let mut idx = Vec::with_capacity(numel(&dims));
    for o in 0..outer {
        for &k in indices {
            let k = if k < 0 { k + len as i64 } else { k };
            if !(0..len as i64).contains(&k) {
                return Err(format!("index {k} is out of range for a dimension of {len}"));
            }
            idx.extend((0..inner).map(|i| (o * len + k as usize) * inner + i));
        }
    }
    Ok(x.pick(dims, &idx))
}

pub(crate) fn concat(parts: &[&Folded], axis: usize) -> R<Folded> {
    let first = parts.first().ok_or("no inputs")?;
    let mut dims = first.dims.clone();
    dims[axis] = parts.iter().map(|p| p.dims[axis]).sum();
    // Concatenate via a stacked index into the joined element lists.
    let mut joined = Folded { dims: vec![0], ty: first.ty, lo: vec![], hi: vec![], src: None };
    let mut offsets = Vec::new();
    let mut any_src: Option<ValueId> = None;
    for p in parts {
        if let Some((id, _)) = &p.src {
            if any_src.is_some_and(|s| s != *id) {
                return Err("combines two different mask inputs".into());
            }
            any_src = Some(*id);
        }
    }
    let mut srcs = Vec::new();
    for p in parts {
        if p.ty != first.ty || p.dims.len() != dims.len() {
            return Err("concatenates tensors of different types or ranks".into());
        }
        offsets.push(joined.lo.len());
        joined.lo.extend_from_slice(&p.lo);
        joined.hi.extend_from_slice(&p.hi);
        match &p.src {
            Some((_, s)) => srcs.extend_from_slice(s),
            None => srcs.extend(std::iter::repeat_n(None, p.len())),
        }
    }
    joined.dims = vec![joined.lo.len()];
    joined.src = any_src.map(|id| (id, srcs));
    let outer = numel(&dims[..axis]);
    let mut idx = Vec::with_capacity(numel(&dims));
    for o in 0..outer {
        for (p, off) in parts.iter().zip(&offsets) {
            let chunk = numel(&p.dims[axis..]);
            idx.extend((0..chunk).map(|i| off + o * chunk + i));
        }
    }
    Ok(joined.pick(dims, &idx))
}

/// ONNX Slice (opset 13) along the given axes.
pub(crate) fn slice(x: &Folded, starts: &[i64], ends: &[i64], axes: &[usize], steps: &[i64]) -> R<Folded> {
    let mut ranges: Vec<Vec<usize>> = x.dims.iter().map(|&d| (0..d).collect()).collect();
    for (k, &a) in axes.iter().enumerate() {
        let d = x.dims[a] as i64;
        let step = steps.get(k).copied().unwrap_or(1);
        if step == 0 {
            return Err("slice step 0".into());
        }
        let clampi = |v: i64, lo: i64, hi: i64| v.max(lo).min(hi);
        let norm = |v: i64| if v < 0 { v + d } else { v };
        let (s, e) = (norm(starts[k]), norm(ends[k]));
        let mut v = Vec::new();
        if step > 0 {
            let (mut i, e) = (clampi(s, 0, d), clampi(e, 0, d));
            while i < e {
                v.push(i as usize);
                i += step;
            }
        } else {
            let (mut i, e) = (clampi(s, -1, d - 1), clampi(e, -1, d - 1));
            while i > e {
                v.push(i as usize);
                i += step;
            }
        }
        ranges[a] = v;
    }
    let dims: Vec<usize> = ranges.iter().map(Vec::len).collect();
    let st = row_major_strides(&x.dims);
    let mut idx = Vec::with_capacity(numel(&dims));
    for_each_index(&dims, |pos| idx.push(pos.iter().enumerate().map(|(d, &p)| ranges[d][p] * st[d]).sum()));
    Ok(x.pick(dims, &idx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mask_follows_its_elements_through_movement_and_where() {
        // mask [1, 4] -> bool -> unsqueeze to [1, 1, 1, 4] -> expand [1, 1, 3, 4]
        // -> where(m, 0, -inf-ish): each element reads mask[k].
        let m = Folded::mask_input(7, vec![1, 4]).cast(FTy::Bool);
        let m = m.reshaped(unsqueeze_dims(&m.dims, &[1, 2]).unwrap()).unwrap();
        let m = expand(&m, &[1, 1, 3, 4]).unwrap();
        let zero = Folded::constant(vec![], FTy::F32, vec![0.0]);
        let big = Folded::constant(vec![], FTy::F32, vec![-3.4e38]);
        let w = elementwise(&[&m, &zero, &big], FTy::F32, |v| if v[0] != 0.0 { v[1] } else { v[2] }).unwrap();
        assert_eq!(w.dims, vec![1, 1, 3, 4]);
        let (id, src) = w.src.clone().unwrap();
        assert_eq!(id, 7);
        assert_eq!(src[5], Some(1));
        assert_eq!((w.lo[5], w.hi[5]), (-3.4e38f32 as f64, 0.0));
    }

    #[test]
    fn two_mask_elements_in_one_are_refused() {
        let m = Folded::mask_input(0, vec![2]);
        let t = transpose(&m.reshaped(vec![2, 1]).unwrap(), &[1, 0]);
        let err = binary("Add", &m.reshaped(vec![2, 1]).unwrap(), &t).unwrap_err();
        assert!(err.contains("not a per-element mask"), "{err}");
    }

    #[test]
    fn shapes_fold() {
        assert_eq!(reshape_dims(&[1, 32, 128], &[1, 32, -1, 32], false).unwrap(), vec![1, 32, 4, 32]);
        assert_eq!(reshape_dims(&[1, 32, 128], &[0, -1], false).unwrap(), vec![1, 4096]);
        let r = Folded::constant(vec![5], FTy::I64, (0..5).map(|v| v as f64).collect());
        let s = slice(&r, &[-2], &[i64::MAX], &[0], &[1]).unwrap();
        assert_eq!(s.ints("s").unwrap(), vec![3, 4]);
        let g = gather(&r, &[4, 0], &[2], 0).unwrap();
        assert_eq!(g.ints("g").unwrap(), vec![4, 0]);
    }
}
