//! Constant tensors (initializers, `Constant` nodes) decoded from
//! `TensorProto`: the element types a quantized model needs, from either
//! `raw_data` (little-endian) or the typed repeated fields.

use super::proto::{tensor_proto::DataLocation, tensor_proto::DataType, TensorProto};

/// The largest tensor the importer accepts (elements): keeps shape
/// arithmetic far from overflow on hostile input.
pub(crate) const MAX_ELEMENTS: usize = 1 << 31;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Data {
    F32(Vec<f32>),
    I8(Vec<i8>),
    /// ONNX's INT4, unpacked: one sign-extended value (-8..=7) per element.
    I4(Vec<i8>),
    U8(Vec<u8>),
    I32(Vec<i32>),
    I64(Vec<i64>),
}

/// Why a `TensorProto` could not be decoded.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum TensorError {
    /// Well-formed, but outside what the importer reads.
    Unsupported(String),
    /// Contradicts itself (sizes, dims).
    Invalid(String),
}

/// The size checks of the element decoders report inconsistencies.
impl From<String> for TensorError {
    fn from(s: String) -> Self {
        TensorError::Invalid(s)
    }
}

/// A decoded constant tensor.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Tensor {
    pub dims: Vec<usize>,
    pub data: Data,
}

/// ONNX's name of a `TensorProto.DataType` code.
pub(crate) fn dtype_name(code: i32) -> String {
    match DataType::try_from(code) {
        Ok(t) => t.as_str_name().to_ascii_lowercase(),
        Err(_) => format!("data type {code}"),
    }
}

/// Product of dims, or None past `MAX_ELEMENTS`.
pub(crate) fn checked_elements(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).filter(|&n| n <= MAX_ELEMENTS)
}

impl Tensor {
    pub fn len(&self) -> usize {
        match &self.data {
            Data::F32(v) => v.len(),
            Data::I8(v) | Data::I4(v) => v.len(),
            Data::U8(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::I64(v) => v.len(),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self.data {
            Data::F32(_) => "float",
            Data::I8(_) => "int8",
            Data::I4(_) => "int4",
            Data::U8(_) => "uint8",
            Data::I32(_) => "int32",
            Data::I64(_) => "int64",
        }
    }

    /// Integer elements widened to i64 (None for float tensors).
    pub fn as_i64(&self) -> Option<Vec<i64>> {
        Some(match &self.data {
            Data::F32(_) => return None,
            Data::I8(v) | Data::I4(v) => v.iter().map(|&x| x as i64).collect(),
            Data::U8(v) => v.iter().map(|&x| x as i64).collect(),
            Data::I32(v) => v.iter().map(|&x| x as i64).collect(),
            Data::I64(v) => v.clone(),
        })
    }

    /// Decodes a `TensorProto`; the error says what is wrong with it.
    pub fn from_proto(t: &TensorProto) -> Result<Tensor, TensorError> {
        use TensorError::{Invalid, Unsupported};
        if t.segment.is_some() {
            return Err(Unsupported("segmented tensors".into()));
        }
        if t.data_location == Some(DataLocation::External as i32) || !t.external_data.is_empty() {
            return Err(Unsupported(
                "tensor data stored outside the model (external data): the importer reads one self-contained \
                 .onnx file"
                    .into(),
            ));
        }
        let mut dims = Vec::with_capacity(t.dims.len());
        for &d in &t.dims {
            dims.push(usize::try_from(d).map_err(|_| Invalid(format!("negative dimension {d}")))?);
        }
        let n = checked_elements(&dims).ok_or_else(|| Unsupported(format!("too many elements (dims {dims:?})")))?;
        let code = t.data_type();
        let raw = t.raw_data.as_deref();
        let data = match DataType::try_from(code) {
            Ok(DataType::Float) => Data::F32(match raw {
                Some(r) => le_chunks::<4>(r, n)?.map(f32::from_le_bytes).collect(),
                None => exact(t.float_data.clone(), n)?,
            }),
            Ok(DataType::Int8) => Data::I8(match raw {
                Some(r) => le_chunks::<1>(r, n)?.map(i8::from_le_bytes).collect(),
                None => narrow(&t.int32_data, n)?,
            }),
            // Packed two per byte, element 2i in the low nibble (ONNX's
            // INT4); `int32_data` holds the same bytes one per entry.
            Ok(DataType::Int4) => Data::I4(match raw {
                Some(r) => unpack_int4(r, n)?,
                None => unpack_int4(&narrow::<u8>(&t.int32_data, n.div_ceil(2))?, n)?,
            }),
            Ok(DataType::Uint8) => Data::U8(match raw {
                Some(r) => le_chunks::<1>(r, n)?.map(u8::from_le_bytes).collect(),
                None => narrow(&t.int32_data, n)?,
            }),
            Ok(DataType::Int32) => Data::I32(match raw {
                Some(r) => le_chunks::<4>(r, n)?.map(i32::from_le_bytes).collect(),
                None => exact(t.int32_data.clone(), n)?,
            }),
            Ok(DataType::Int64) => Data::I64(match raw {
                Some(r) => le_chunks::<8>(r, n)?.map(i64::from_le_bytes).collect(),
                None => exact(t.int64_data.clone(), n)?,
            }),
            _ => {
                return Err(Unsupported(format!(
                    "element type {} (only int8, int4, uint8, int32, int64 for shapes, and float)",
                    dtype_name(code)
                )))
            }
        };
        Ok(Tensor { dims, data })
    }
}

fn le_chunks<const N: usize>(raw: &[u8], n: usize) -> Result<impl Iterator<Item = [u8; N]> + '_, String> {
    if n.checked_mul(N) != Some(raw.len()) {
        return Err(format!("raw_data holds {} bytes, the dims need {n} elements of {N} bytes", raw.len()));
    }
    Ok(raw.chunks_exact(N).map(|c| {
        let mut a = [0u8; N];
        a.copy_from_slice(c);
        a
    }))
}

/// `n` int4 elements from their packed bytes (two per byte, low nibble first).
fn unpack_int4(packed: &[u8], n: usize) -> Result<Vec<i8>, String> {
    if packed.len() != n.div_ceil(2) {
        return Err(format!("holds {} bytes, the dims need {n} int4 elements ({} bytes)", packed.len(), n.div_ceil(2)));
    }
    let unpacked = packed.iter().flat_map(|&b| [isa::numerics::int4_low(b), isa::numerics::int4_high(b)]);
    Ok(unpacked.take(n).collect())
}

fn exact<T>(v: Vec<T>, n: usize) -> Result<Vec<T>, String> {
    if v.len() != n {
        return Err(format!("holds {} elements, the dims need {n}", v.len()));
    }
    Ok(v)
}

fn narrow<T: TryFrom<i32>>(v: &[i32], n: usize) -> Result<Vec<T>, String> {
    if v.len() != n {
        return Err(format!("holds {} elements, the dims need {n}", v.len()));
    }
    v.iter().map(|&x| T::try_from(x).map_err(|_| format!("element {x} is out of range for its type"))).collect()
}
