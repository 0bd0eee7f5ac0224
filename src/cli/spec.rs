//! Parsing of argument values: addresses (decimal or `0x` hex), shapes
//! (`16x16`), and the `ADDR=FILE`, `NAME=FILE` and `ADDR:DTYPE:SHAPE=FILE`
//! forms of `systole sim`. The functions return `String` errors so clap can
//! report them as usage errors naming the option.

use super::npy::Elem;
use std::path::PathBuf;

/// Parses a non-negative integer: decimal or `0x` hex, `_` separators allowed.
pub fn parse_u64(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, radix) = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => (h, 16),
        None => (t, 10),
    };
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if clean.is_empty() || !clean.chars().all(|c| c.is_digit(radix)) {
        return Err(format!("expected a decimal or 0x-hex number, found `{text}`"));
    }
    u64::from_str_radix(&clean, radix).map_err(|_| format!("`{text}` does not fit in 64 bits"))
}

/// A shape: dimensions separated by `x` (`16x16`, `64`, `1x3x32x32`).
pub fn parse_shape(text: &str) -> Result<Vec<u64>, String> {
    let mut shape = Vec::new();
    for dim in text.split(['x', 'X']) {
        let d = dim
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("bad shape `{text}`: expected dimensions like `16x16` or `64`, found `{dim}`"))?;
        if d == 0 {
            return Err(format!("bad shape `{text}`: dimensions must be at least 1"));
        }
        shape.push(d);
    }
    Ok(shape)
}

/// Prints a shape as `16x16` (`scalar` for no dimensions).
pub use systole::flow::shape_text;

/// Splits `LEFT=FILE` at the first `=`.
fn split_file<'a>(text: &'a str, form: &str) -> Result<(&'a str, PathBuf), String> {
    match text.split_once('=') {
        Some((left, file)) if !left.is_empty() && !file.is_empty() => Ok((left, PathBuf::from(file))),
        _ => Err(format!("expected {form}, found `{text}`")),
    }
}

/// `--load ADDR=FILE.npy`.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    pub addr: u64,
    pub file: PathBuf,
}

pub fn parse_load(text: &str) -> Result<LoadSpec, String> {
    let (addr, file) = split_file(text, "ADDR=FILE.npy")?;
    let addr = parse_u64(addr).map_err(|e| format!("bad address in `{text}`: {e}"))?;
    Ok(LoadSpec { addr, file })
}

/// `--input NAME=FILE.npy` and `--output NAME=FILE.npy`.
#[derive(Clone, Debug)]
pub struct NamedSpec {
    pub name: String,
    pub file: PathBuf,
}

pub fn parse_named(text: &str) -> Result<NamedSpec, String> {
    let (name, file) = split_file(text, "NAME=FILE.npy")?;
    Ok(NamedSpec { name: name.to_string(), file })
}

/// `--dump ADDR:DTYPE:SHAPE=FILE.npy`.
#[derive(Clone, Debug)]
pub struct DumpSpec {
    pub addr: u64,
    pub elem: Elem,
    pub shape: Vec<u64>,
    pub file: PathBuf,
}

impl DumpSpec {
    /// Bytes to read, `None` on overflow.
    pub fn byte_len(&self) -> Option<u64> {
        self.shape.iter().try_fold(self.elem.size() as u64, |acc, &d| acc.checked_mul(d))
    }
}

pub fn parse_dump(text: &str) -> Result<DumpSpec, String> {
    let form = "ADDR:DTYPE:SHAPE=FILE.npy (e.g. 0x2000:i32:16x16=c.npy)";
    let (left, file) = split_file(text, form)?;
    let parts: Vec<&str> = left.split(':').collect();
    let [addr, dtype, shape] = parts[..] else {
        return Err(format!("expected {form}, found `{text}`"));
    };
    let addr = parse_u64(addr).map_err(|e| format!("bad address in `{text}`: {e}"))?;
    let elem = Elem::parse(dtype)
        .ok_or_else(|| format!("bad dtype `{dtype}` in `{text}`: expected one of {}", Elem::NAMES.join(", ")))?;
    let shape = parse_shape(shape)?;
    Ok(DumpSpec { addr, elem, shape, file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_specs() {
        assert_eq!(parse_u64("0x1_000"), Ok(0x1000));
        assert_eq!(parse_u64("4096"), Ok(4096));
        assert!(parse_u64("0x").is_err() && parse_u64("12a").is_err() && parse_u64("-1").is_err());
        assert_eq!(parse_shape("16x16"), Ok(vec![16, 16]));
        assert!(parse_shape("16x").is_err() && parse_shape("0").is_err());
        let d = parse_dump("0x2000:i32:4x4=out.npy").unwrap();
        assert_eq!((d.addr, d.elem, d.shape.clone(), d.byte_len()), (0x2000, Elem::I32, vec![4, 4], Some(64)));
        assert!(parse_dump("0x2000:i32=out.npy").is_err());
        assert!(parse_dump("0x2000:f64:4=out.npy").is_err());
        assert!(parse_load("0x10").is_err());
        assert_eq!(parse_named("a=x=y.npy").unwrap().file, PathBuf::from("x=y.npy"));
    }
}
