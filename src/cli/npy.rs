//! NumPy `.npy` files in and out, through the `npyz` crate. In memory an
//! array is its elements' little-endian bytes in C order, which is how the
//! device holds tensors.

use super::error::{CliError, Result};
use super::files::read_bytes;
use isa::program::DType;
use npyz::{TypeChar, WriterBuilder};
use std::path::Path;

/// Element types the CLI moves between `.npy` files and device memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem {
    I8,
    U8,
    I16,
    I32,
    F32,
}

impl Elem {
    pub const NAMES: [&'static str; 5] = ["i8", "u8", "i16", "i32", "f32"];

    pub fn parse(name: &str) -> Option<Elem> {
        match name {
            "i8" => Some(Elem::I8),
            "u8" => Some(Elem::U8),
            "i16" => Some(Elem::I16),
            "i32" => Some(Elem::I32),
            "f32" => Some(Elem::F32),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Elem::I8 => "i8",
            Elem::U8 => "u8",
            Elem::I16 => "i16",
            Elem::I32 => "i32",
            Elem::F32 => "f32",
        }
    }

    pub fn size(self) -> u64 {
        match self {
            Elem::I8 | Elem::U8 => 1,
            Elem::I16 => 2,
            Elem::I32 | Elem::F32 => 4,
        }
    }

    /// The element type of a program tensor.
    pub fn of(dtype: DType) -> Elem {
        match dtype {
            DType::I8 => Elem::I8,
            DType::U8 => Elem::U8,
            DType::I32 => Elem::I32,
            DType::F32 => Elem::F32,
        }
    }
}

/// An array read from a `.npy` file.
#[derive(Clone, Debug)]
pub struct Array {
    pub elem: Elem,
    pub shape: Vec<u64>,
    /// Little-endian element bytes in C order.
    pub data: Vec<u8>,
}

impl Array {
    pub fn elements(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// Reads a `.npy` file; errors name the file.
pub fn read(path: &Path) -> Result<Array> {
    let bytes = read_bytes(path)?;
    decode(&bytes).map_err(|e| CliError::input(format!("{}: {e}", path.display())))
}

fn le_bytes<T: npyz::Deserialize, const N: usize>(
    file: npyz::NpyFile<&[u8]>,
    to_le: fn(T) -> [u8; N],
) -> std::io::Result<Vec<u8>> {
    Ok(file.into_vec::<T>()?.into_iter().flat_map(to_le).collect())
}

/// Decodes `.npy` bytes.
pub fn decode(bytes: &[u8]) -> std::result::Result<Array, String> {
    let file = npyz::NpyFile::new(bytes).map_err(|e| format!("not a valid .npy file: {e}"))?;
    let dtype = file.dtype();
    let elem = match &dtype {
        npyz::DType::Plain(ts) => match (ts.type_char(), ts.size_field()) {
            (TypeChar::Int, 1) => Some(Elem::I8),
            (TypeChar::Uint, 1) => Some(Elem::U8),
            (TypeChar::Int, 2) => Some(Elem::I16),
            (TypeChar::Int, 4) => Some(Elem::I32),
            (TypeChar::Float, 4) => Some(Elem::F32),
            _ => None,
        },
        _ => None,
    };
    let Some(elem) = elem else {
        return Err(format!("unsupported dtype {} (supported: int8, uint8, int16, int32, float32)", dtype.descr()));
    };
    let shape = file.shape().to_vec();
    let order = file.order();
    let n = file.len();
    // A forged header must not make us allocate more than the file holds.
    let need = n.checked_mul(elem.size()).filter(|&b| b <= bytes.len() as u64);
    if need.is_none() {
        return Err(format!(
            "truncated: shape {:?} of {} needs {} data bytes, the file has {} bytes in all",
            shape,
            elem.name(),
            n.saturating_mul(elem.size()),
            bytes.len()
        ));
    }
    let data = match elem {
        Elem::I8 => le_bytes(file, i8::to_le_bytes),
        Elem::U8 => le_bytes(file, u8::to_le_bytes),
        Elem::I16 => le_bytes(file, i16::to_le_bytes),
        Elem::I32 => le_bytes(file, i32::to_le_bytes),
        Elem::F32 => le_bytes(file, f32::to_le_bytes),
    }
    .map_err(|e| format!("cannot read the array data: {e}"))?;
    let data = match order {
        npyz::Order::Fortran if shape.len() > 1 => fortran_to_c(&data, &shape, elem.size() as usize),
        _ => data,
    };
    Ok(Array { elem, shape, data })
}

/// Reorders elements stored in Fortran order to C order, `size` bytes each.
fn fortran_to_c(data: &[u8], shape: &[u64], size: usize) -> Vec<u8> {
    let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    compiler::text::c_order(data.chunks(size).collect(), &dims, true).concat()
}

fn encode_typed<T: npyz::AutoSerialize, const N: usize>(
    shape: &[u64],
    data: &[u8],
    from_le: fn([u8; N]) -> T,
) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut w = npyz::WriteOptions::<T>::new().default_dtype().shape(shape).writer(&mut out).begin_nd()?;
    w.extend(data.chunks_exact(N).map(|c| from_le(c.try_into().expect("chunks of N bytes"))))?;
    w.finish()?;
    Ok(out)
}

/// Encodes little-endian element bytes (C order) as a `.npy` file.
pub fn encode(elem: Elem, shape: &[u64], data: &[u8]) -> Result<Vec<u8>> {
    let r = match elem {
        Elem::I8 => encode_typed(shape, data, i8::from_le_bytes),
        Elem::U8 => encode_typed(shape, data, u8::from_le_bytes),
        Elem::I16 => encode_typed(shape, data, i16::from_le_bytes),
        Elem::I32 => encode_typed(shape, data, i32::from_le_bytes),
        Elem::F32 => encode_typed(shape, data, f32::from_le_bytes),
    };
    r.map_err(|e| CliError::input(format!("cannot encode a {} array of shape {shape:?}: {e}", elem.name())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_fortran() {
        let data: Vec<u8> = (0..6i32).flat_map(|v| v.to_le_bytes()).collect();
        let bytes = encode(Elem::I32, &[2, 3], &data).unwrap();
        let a = decode(&bytes).unwrap();
        assert_eq!((a.elem, a.shape.clone(), a.data.clone()), (Elem::I32, vec![2, 3], data));
        // Fortran order [[0,1,2],[3,4,5]] is stored 0,3,1,4,2,5.
        let f: Vec<u8> = [0u8, 3, 1, 4, 2, 5].to_vec();
        assert_eq!(fortran_to_c(&f, &[2, 3], 1), vec![0, 1, 2, 3, 4, 5]);
        assert!(decode(b"not npy").is_err());
    }
}
