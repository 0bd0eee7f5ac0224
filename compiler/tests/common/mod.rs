//! Helpers shared by the ORT fixture tests: reading stored fixtures, the
//! generators' SplitMix64 inputs and FNV-1a output hashes, and ONNX value
//! infos for the models they build.
#![allow(dead_code)]

use compiler::onnx::proto::{
    tensor_proto::DataType, tensor_shape_proto, type_proto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use serde_json::Value as Json;
use std::path::Path;

pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Byte `i` = low byte of the `i`-th SplitMix64 draw (as the generator).
pub fn splitmix64_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) as u8
        })
        .collect()
}

pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01B3))
}

pub fn ints(c: &Json, key: &str) -> Vec<i64> {
    c[key].as_array().unwrap_or_else(|| panic!("{key}")).iter().map(|v| v.as_i64().unwrap()).collect()
}

pub fn value_info(name: &str, dt: DataType, dims: &[i64]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|&d| tensor_shape_proto::Dimension {
            value: Some(tensor_shape_proto::dimension::Value::DimValue(d)),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(dt as i32),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}
