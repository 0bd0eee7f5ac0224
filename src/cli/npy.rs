//! `.npy` files in and out: the project's one reader and writer is
//! `compiler::npy`; this adds the files (bounded reads, errors that name
//! them) and the element type of a program tensor.

use super::error::{CliError, Result};
use super::files::{read_input, InputKind};
pub use compiler::npy::{Array, Elem};
use isa::program::DType;
use std::path::Path;

/// The element type of a program tensor.
pub fn elem_of(dtype: DType) -> Elem {
    match dtype {
        DType::I8 => Elem::I8,
        DType::U8 => Elem::U8,
        DType::I32 => Elem::I32,
        DType::F32 => Elem::F32,
        DType::I64 => Elem::I64,
    }
}

/// Reads a `.npy` file; errors name the file.
pub fn read(path: &Path) -> Result<Array> {
    let bytes = read_input(path, InputKind::Npy)?;
    compiler::npy::decode(&bytes).map_err(|e| CliError::input(format!("{}: {e}", path.display())))
}

/// Encodes little-endian element bytes (C order) as a `.npy` file.
pub fn encode(elem: Elem, shape: &[u64], data: &[u8]) -> Result<Vec<u8>> {
    compiler::npy::encode(elem, shape, data).map_err(CliError::input)
}
