//! NumPy `.npy` arrays: the project's one reader (the CLI's arrays and the
//! text format's `file("w.npy")` tensors both come through [`decode`]) and
//! its writer. In memory an array is its elements' little-endian bytes in C
//! order, which is how the device holds tensors.
//!
//! The reader trusts nothing in the header: the shape's element count and
//! byte size are computed with checked arithmetic, and the data must be
//! exactly that many bytes, so a forged header can neither make the reader
//! allocate more than the file holds nor wrap around to a small shape.
//! Fortran-order arrays are reordered to C order.

use npyz::WriterBuilder;

/// Element types moved between `.npy` files and device memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem {
    I8,
    U8,
    I16,
    I32,
    F32,
    /// int64 (token ids and attention masks of transformer models).
    I64,
}

impl Elem {
    pub const NAMES: [&'static str; 6] = ["i8", "u8", "i16", "i32", "f32", "i64"];

    pub fn parse(name: &str) -> Option<Elem> {
        match name {
            "i8" => Some(Elem::I8),
            "u8" => Some(Elem::U8),
            "i16" => Some(Elem::I16),
            "i32" => Some(Elem::I32),
            "f32" => Some(Elem::F32),
            "i64" => Some(Elem::I64),
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
            Elem::I64 => "i64",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Elem::I8 | Elem::U8 => 1,
            Elem::I16 => 2,
            Elem::I32 | Elem::F32 => 4,
            Elem::I64 => 8,
        }
    }

    /// The type of a `descr` (`<f4`, `|i1`, ...) and whether it is big-endian.
    fn of_descr(descr: &str) -> Option<(Elem, bool)> {
        let (order, code) = match descr.as_bytes().first()? {
            b'<' | b'|' | b'=' => (false, &descr[1..]),
            b'>' => (true, &descr[1..]),
            _ => (false, descr),
        };
        let elem = match code {
            "i1" | "b" => Elem::I8,
            "u1" | "B" => Elem::U8,
            "i2" => Elem::I16,
            "i4" => Elem::I32,
            "f4" => Elem::F32,
            "i8" => Elem::I64,
            _ => return None,
        };
        Some((elem, order))
    }
}

/// An array read from a `.npy` file.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub elem: Elem,
    pub shape: Vec<u64>,
    /// Little-endian element bytes in C order; exactly `elements() * elem.size()`.
    pub data: Vec<u8>,
}

impl Array {
    /// The number of elements (the shape's product, which [`decode`] checked fits).
    pub fn elements(&self) -> u64 {
        (self.data.len() / self.elem.size()) as u64
    }
}

/// The header's fields.
struct Header {
    descr: String,
    fortran: bool,
    shape: Vec<u64>,
}

/// Decodes `.npy` bytes (format versions 1 to 3).
pub fn decode(bytes: &[u8]) -> Result<Array, String> {
    let (header, data) = split_header(bytes)?;
    let h = parse_header(header)?;
    let Some((elem, big_endian)) = Elem::of_descr(&h.descr) else {
        return Err(format!(
            "unsupported dtype `{}` (supported: int8, uint8, int16, int32, int64, float32)",
            h.descr.chars().take(40).collect::<String>()
        ));
    };
    let elements = h.shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d));
    let want = elements.and_then(|n| n.checked_mul(elem.size() as u64));
    match want {
        Some(b) if b == data.len() as u64 => {}
        Some(b) => {
            return Err(format!(
                "shape {} of {} needs {b} data bytes, the file has {}",
                shape_text(&h.shape),
                elem.name(),
                data.len()
            ))
        }
        None => return Err(format!("shape {} has too many elements", shape_text(&h.shape))),
    }
    let mut data = data.to_vec();
    if big_endian {
        data.chunks_mut(elem.size()).for_each(<[u8]>::reverse);
    }
    if h.fortran && h.shape.len() > 1 {
        // Every dimension fits in usize: their product is the data's length.
        let dims: Vec<usize> = h.shape.iter().map(|&d| d as usize).collect();
        data = fortran_to_c(&data, &dims, elem.size());
    }
    Ok(Array { elem, shape: h.shape, data })
}

/// Splits a file into its header text and its data bytes.
fn split_header(bytes: &[u8]) -> Result<(&str, &[u8]), String> {
    const MAGIC: &[u8] = b"\x93NUMPY";
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not a valid .npy file (no \\x93NUMPY magic)".into());
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize, 12),
        v => return Err(format!("unsupported .npy format version {v}.{}", bytes[7])),
    };
    let header = bytes
        .get(start..start.saturating_add(len))
        .ok_or_else(|| format!("truncated header: it declares {len} bytes, the file has {}", bytes.len() - start))?;
    let text = std::str::from_utf8(header).map_err(|_| "the header is not text".to_string())?;
    Ok((text, &bytes[start + len..]))
}

/// Parses the header dict `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
fn parse_header(text: &str) -> Result<Header, String> {
    let bad = |why: &str| {
        let shown: String = text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(120).collect();
        format!("bad header ({why}): {shown}")
    };
    let body = text.trim().strip_prefix('{').and_then(|t| t.strip_suffix('}')).ok_or_else(|| bad("not a dict"))?;
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    let mut rest = body.trim_start();
    while !rest.is_empty() {
        let (key, after) = quoted(rest).ok_or_else(|| bad("expected a quoted key"))?;
        let after = after.trim_start().strip_prefix(':').ok_or_else(|| bad("expected `:` after a key"))?.trim_start();
        let after = match key {
            "descr" => {
                let (v, after) = quoted(after).ok_or_else(|| bad("`descr` is not a string"))?;
                descr = Some(v.to_string());
                after
            }
            "fortran_order" => {
                let (v, after) = if let Some(a) = after.strip_prefix("True") {
                    (true, a)
                } else if let Some(a) = after.strip_prefix("False") {
                    (false, a)
                } else {
                    return Err(bad("`fortran_order` is not True or False"));
                };
                fortran = Some(v);
                after
            }
            "shape" => {
                let inner = after.strip_prefix('(').ok_or_else(|| bad("`shape` is not a tuple"))?;
                let close = inner.find(')').ok_or_else(|| bad("`shape` is not closed"))?;
                let dims = inner[..close]
                    .split(',')
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(|d| d.trim_end_matches('L').parse::<u64>().map_err(|_| bad("a dimension is not a number")))
                    .collect::<Result<Vec<u64>, String>>()?;
                shape = Some(dims);
                &inner[close + 1..]
            }
            _ => return Err(bad("unknown key")),
        };
        let after = after.trim_start();
        rest = match after.strip_prefix(',') {
            Some(r) => r.trim_start(),
            None if after.is_empty() => after,
            None => return Err(bad("expected `,` between entries")),
        };
    }
    match (descr, fortran, shape) {
        (Some(descr), Some(fortran), Some(shape)) => Ok(Header { descr, fortran, shape }),
        _ => Err(bad("it needs `descr`, `fortran_order` and `shape`")),
    }
}

/// A single- or double-quoted string at the start of `s`, and what follows.
fn quoted(s: &str) -> Option<(&str, &str)> {
    let q = s.chars().next().filter(|&c| c == '\'' || c == '"')?;
    let end = s[1..].find(q)?;
    Some((&s[1..1 + end], &s[2 + end..]))
}

fn shape_text(shape: &[u64]) -> String {
    let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
    format!("({})", dims.join(", "))
}

/// Reorders `size`-byte elements stored in Fortran order (first index
/// fastest) to C order (last index fastest). `data` holds exactly the
/// shape's product of elements.
pub fn fortran_to_c(data: &[u8], shape: &[usize], size: usize) -> Vec<u8> {
    // The Fortran offset of each C-order index: first dimension fastest.
    let mut strides = vec![1usize; shape.len()];
    for d in 1..shape.len() {
        strides[d] = strides[d - 1] * shape[d - 1];
    }
    let mut out = Vec::with_capacity(data.len());
    for f in crate::strided::strided_offsets(shape, &strides) {
        out.extend_from_slice(&data[f * size..(f + 1) * size]);
    }
    out
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
pub fn encode(elem: Elem, shape: &[u64], data: &[u8]) -> Result<Vec<u8>, String> {
    let r = match elem {
        Elem::I8 => encode_typed(shape, data, i8::from_le_bytes),
        Elem::U8 => encode_typed(shape, data, u8::from_le_bytes),
        Elem::I16 => encode_typed(shape, data, i16::from_le_bytes),
        Elem::I32 => encode_typed(shape, data, i32::from_le_bytes),
        Elem::F32 => encode_typed(shape, data, f32::from_le_bytes),
        Elem::I64 => encode_typed(shape, data, i64::from_le_bytes),
    };
    r.map_err(|e| format!("cannot encode a {} array of shape {}: {e}", elem.name(), shape_text(shape)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version-1 file with a hand-written header.
    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut h = header.to_string();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn round_trip_big_endian_and_fortran() {
        let data: Vec<u8> = (0..6i32).flat_map(|v| v.to_le_bytes()).collect();
        let a = decode(&encode(Elem::I32, &[2, 3], &data).unwrap()).unwrap();
        assert_eq!(a, Array { elem: Elem::I32, shape: vec![2, 3], data: data.clone() });
        let be: Vec<u8> = (0..6i32).flat_map(|v| v.to_be_bytes()).collect();
        let a = decode(&file("{'descr': '>i4', 'fortran_order': False, 'shape': (2, 3), }", &be)).unwrap();
        assert_eq!(a.data, data);
        // Fortran order [[0,1,2],[3,4,5]] is stored 0,3,1,4,2,5; and in 3-D.
        let a = decode(&file("{'descr': '|u1', 'fortran_order': True, 'shape': (2, 3), }", &[0, 3, 1, 4, 2, 5]));
        assert_eq!(a.unwrap().data, vec![0, 1, 2, 3, 4, 5]);
        let f: Vec<u8> = (0..24).map(|i| (i % 2 * 12 + i / 2 % 3 * 4 + i / 6) as u8).collect();
        let a = decode(&file("{'descr': '|u1', 'fortran_order': True, 'shape': (2, 3, 4), }", &f)).unwrap();
        assert_eq!(a.data, (0..24).collect::<Vec<u8>>());
    }

    #[test]
    fn forged_shapes_are_refused_not_wrapped() {
        // 2^58 * 64 elements wrap to 0; (2^52 + 1) * 4096 * 4 bytes wraps to 16 KiB.
        let e =
            decode(&file("{'descr': '<f4', 'fortran_order': False, 'shape': (288230376151711744, 1, 1, 8, 8), }", &[]));
        assert!(e.unwrap_err().contains("too many elements"));
        for order in ["False", "True"] {
            let h = format!("{{'descr': '<f4', 'fortran_order': {order}, 'shape': (4503599627370497, 4096), }}");
            let e = decode(&file(&h, &[0; 4 * 4096])).unwrap_err();
            assert!(e.contains("too many elements"), "{e}");
        }
        let e = decode(&file("{'descr': '<f4', 'fortran_order': True, 'shape': (3, 4), }", &[0; 44])).unwrap_err();
        assert!(e.contains("needs 48 data bytes, the file has 44"), "{e}");
        let e = decode(&file("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", &[0; 13])).unwrap_err();
        assert!(e.contains("needs 12 data bytes, the file has 13"), "{e}");
    }

    #[test]
    fn broken_headers_are_one_line() {
        for bad in [
            file("{'descr': garbage\n\n\n", &[]),
            file("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", &[0; 8]),
            file("{'descr': '<f4', 'fortran_order': 1, 'shape': (1,), }", &[0; 4]),
            file("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", &[0; 4]),
            b"\x93NUMPY\x01\x00\xff\xff{".to_vec(),
            b"not npy".to_vec(),
        ] {
            let e = decode(&bad).unwrap_err();
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
