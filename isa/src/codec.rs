//! The little-endian binary encoding of the program container's metadata
//! and of the graph the compiler stores beside it.
//!
//! Integers are fixed-width little-endian, floats their IEEE-754 bits, a
//! `bool` one byte (0 or 1), an enum one tag byte, a sequence or a string a
//! u64 count followed by its elements, byte arrays raw. The [`Reader`]
//! reads untrusted bytes: it never panics, and it checks every count
//! against the bytes that remain before allocating, so a forged count
//! cannot make it reserve more memory than the input holds.

use std::fmt;

/// Why bytes do not decode: what was being read, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset from the start of the decoded buffer.
    pub offset: usize,
    pub why: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.why)
    }
}

impl std::error::Error for DecodeError {}

/// Appends values to a byte buffer.
#[derive(Default)]
pub struct Writer {
    pub bytes: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, v: u8) {
        self.bytes.push(v);
    }
    pub fn bool(&mut self, v: bool) {
        self.bytes.push(v as u8);
    }
    pub fn u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i32(&mut self, v: i32) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    pub fn f32(&mut self, v: f32) {
        self.u32(v.to_bits());
    }
    pub fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }
    /// A count (of elements or bytes) of anything held in memory.
    pub fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }
    pub fn str(&mut self, s: &str) {
        self.len(s.len());
        self.bytes.extend_from_slice(s.as_bytes());
    }
    pub fn raw(&mut self, b: &[u8]) {
        self.len(b.len());
        self.bytes.extend_from_slice(b);
    }
    pub fn u64s(&mut self, v: &[u64]) {
        self.len(v.len());
        v.iter().for_each(|&x| self.u64(x));
    }
    pub fn i8s(&mut self, v: &[i8]) {
        self.len(v.len());
        self.bytes.extend(v.iter().map(|&x| x as u8));
    }
    pub fn i32s(&mut self, v: &[i32]) {
        self.len(v.len());
        self.bytes.reserve(4 * v.len());
        v.iter().for_each(|&x| self.i32(x));
    }
    pub fn f32s(&mut self, v: &[f32]) {
        self.len(v.len());
        self.bytes.reserve(4 * v.len());
        v.iter().for_each(|&x| self.f32(x));
    }
}

/// Reads values from untrusted bytes.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// An error at the current position.
    pub fn error(&self, why: impl Into<String>) -> DecodeError {
        DecodeError { offset: self.pos, why: why.into() }
    }

    /// Fails unless every byte was read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(self.error(format!("{n} bytes left over after the end"))),
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(self.error(format!("{what}: needs {n} bytes, {} remain", self.remaining())));
        }
        let b = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], DecodeError> {
        let b = self.take(N, what)?;
        let mut a = [0; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    pub fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }
    pub fn bool(&mut self, what: &str) -> Result<bool, DecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(self.error(format!("{what}: {b} is not a boolean (0 or 1)"))),
        }
    }
    pub fn u32(&mut self, what: &str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    pub fn u64(&mut self, what: &str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    pub fn i32(&mut self, what: &str) -> Result<i32, DecodeError> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }
    pub fn f32(&mut self, what: &str) -> Result<f32, DecodeError> {
        Ok(f32::from_bits(self.u32(what)?))
    }
    pub fn f64(&mut self, what: &str) -> Result<f64, DecodeError> {
        Ok(f64::from_bits(self.u64(what)?))
    }
    /// A u64 that must fit a `usize` (a dimension, an index).
    pub fn usize(&mut self, what: &str) -> Result<usize, DecodeError> {
        let v = self.u64(what)?;
        usize::try_from(v).map_err(|_| self.error(format!("{what}: {v} does not fit this machine's usize")))
    }

    /// An enum tag: one byte below `variants`.
    pub fn tag(&mut self, what: &str, variants: u8) -> Result<u8, DecodeError> {
        let t = self.u8(what)?;
        if t >= variants {
            return Err(self.error(format!("unknown {what} tag {t} (known: 0..{variants})")));
        }
        Ok(t)
    }

    /// A count of elements of at least `min_bytes` each, bounded by the
    /// bytes that remain (so a forged count cannot allocate).
    pub fn count(&mut self, what: &str, min_bytes: usize) -> Result<usize, DecodeError> {
        let n = self.u64(what)?;
        let fits = n.checked_mul(min_bytes.max(1) as u64).is_some_and(|b| b <= self.remaining() as u64);
        if !fits {
            return Err(self.error(format!(
                "{what}: {n} elements of {} byte(s) exceed the {} bytes that remain",
                min_bytes.max(1),
                self.remaining()
            )));
        }
        Ok(n as usize)
    }

    pub fn str(&mut self, what: &str) -> Result<String, DecodeError> {
        let n = self.count(what, 1)?;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|e| self.error(format!("{what}: not UTF-8 ({e})")))
    }
    pub fn raw(&mut self, what: &str) -> Result<&'a [u8], DecodeError> {
        let n = self.count(what, 1)?;
        self.take(n, what)
    }
    pub fn u64s(&mut self, what: &str) -> Result<Vec<u64>, DecodeError> {
        let n = self.count(what, 8)?;
        (0..n).map(|_| self.u64(what)).collect()
    }
    pub fn usizes(&mut self, what: &str) -> Result<Vec<usize>, DecodeError> {
        let n = self.count(what, 8)?;
        (0..n).map(|_| self.usize(what)).collect()
    }
    pub fn i8s(&mut self, what: &str) -> Result<Vec<i8>, DecodeError> {
        Ok(self.raw(what)?.iter().map(|&b| b as i8).collect())
    }
    pub fn i32s(&mut self, what: &str) -> Result<Vec<i32>, DecodeError> {
        let n = self.count(what, 4)?;
        let b = self.take(4 * n, what)?;
        Ok(b.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }
    pub fn f32s(&mut self, what: &str) -> Result<Vec<f32>, DecodeError> {
        let n = self.count(what, 4)?;
        let b = self.take(4 * n, what)?;
        Ok(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }
    /// A sequence of elements of at least `min_bytes` each.
    pub fn seq<T>(
        &mut self,
        what: &str,
        min_bytes: usize,
        mut item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let n = self.count(what, min_bytes)?;
        (0..n).map(|_| item(self)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        let mut w = Writer::default();
        w.u8(7);
        w.bool(true);
        w.u32(0xdead_beef);
        w.u64(u64::MAX);
        w.i32(-5);
        w.f32(f32::from_bits(0x7fc0_0001));
        w.f64(-0.0);
        w.str("héllo");
        w.u64s(&[1, 2]);
        w.i8s(&[-128, 127]);
        w.i32s(&[i32::MIN, 3]);
        w.f32s(&[0.1]);
        let mut r = Reader::new(&w.bytes);
        assert_eq!(r.u8("a").unwrap(), 7);
        assert!(r.bool("b").unwrap());
        assert_eq!(r.u32("c").unwrap(), 0xdead_beef);
        assert_eq!(r.u64("d").unwrap(), u64::MAX);
        assert_eq!(r.i32("e").unwrap(), -5);
        assert_eq!(r.f32("f").unwrap().to_bits(), 0x7fc0_0001);
        assert_eq!(r.f64("g").unwrap().to_bits(), (-0.0f64).to_bits());
        assert_eq!(r.str("h").unwrap(), "héllo");
        assert_eq!(r.u64s("i").unwrap(), [1, 2]);
        assert_eq!(r.i8s("j").unwrap(), [-128, 127]);
        assert_eq!(r.i32s("k").unwrap(), [i32::MIN, 3]);
        assert_eq!(r.f32s("l").unwrap(), [0.1]);
        r.finish().unwrap();
    }

    #[test]
    fn forged_counts_and_tags_are_errors() {
        let mut w = Writer::default();
        w.u64(u64::MAX);
        let e = Reader::new(&w.bytes).i32s("bias").unwrap_err();
        assert!(e.to_string().contains("bias") && e.to_string().contains("exceed"), "{e}");
        assert!(Reader::new(&[9]).tag("op", 3).unwrap_err().to_string().contains("unknown op tag 9"));
        assert!(Reader::new(&[2]).bool("flag").is_err());
        assert!(Reader::new(&[1, 2]).u32("x").unwrap_err().to_string().contains("needs 4 bytes, 2 remain"));
        let r = Reader::new(&[0]);
        assert!(r.finish().unwrap_err().to_string().contains("1 bytes left over"));
    }
}
