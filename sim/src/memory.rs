//! Device memory (DRAM contents), paged: a configuration may declare up to
//! 4 GiB (`dram.size_mib = 4096`), and a program touches a small part of
//! it, so memory costs what is written. Pages of `PAGE_BYTES` are allocated
//! on the first write that is not all zeros; reading an untouched page
//! gives zeros, as the device's memory holds at start. Shared by the model
//! and the RTL harness (`rtl::RtlDevice` answers the AXI port from it).

/// Bytes per page.
pub const PAGE_BYTES: usize = 1 << 16;

/// Device memory of a fixed size, zero until written.
#[derive(Clone, Debug)]
pub struct Memory {
    size: u64,
    pages: Vec<Option<Box<[u8]>>>,
}

impl Memory {
    /// `size` bytes, all zero; nothing is allocated but the page table.
    pub fn new(size: u64) -> Memory {
        let pages = size.div_ceil(PAGE_BYTES as u64) as usize;
        Memory { size, pages: vec![None; pages] }
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether `[addr, addr + len)` lies in the memory.
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        addr.checked_add(len).is_some_and(|end| end <= self.size)
    }

    /// Bytes of the pages allocated so far.
    pub fn allocated_bytes(&self) -> u64 {
        self.pages.iter().filter(|p| p.is_some()).count() as u64 * PAGE_BYTES as u64
    }

    /// The pieces of `[addr, addr + len)` by page: (page, offset in it, offset in the range, length).
    fn pieces(addr: u64, len: usize) -> impl Iterator<Item = (usize, usize, usize, usize)> {
        let mut done = 0usize;
        std::iter::from_fn(move || {
            if done >= len {
                return None;
            }
            let a = addr + done as u64;
            let (page, off) = ((a / PAGE_BYTES as u64) as usize, (a % PAGE_BYTES as u64) as usize);
            let n = (PAGE_BYTES - off).min(len - done);
            let piece = (page, off, done, n);
            done += n;
            Some(piece)
        })
    }

    /// Copies `[addr, addr + out.len())` into `out`. The range must lie in
    /// the memory (callers check with [`Memory::contains`]).
    pub fn read(&self, addr: u64, out: &mut [u8]) {
        assert!(self.contains(addr, out.len() as u64), "read outside device memory");
        for (page, off, at, n) in Self::pieces(addr, out.len()) {
            match &self.pages[page] {
                Some(p) => out[at..at + n].copy_from_slice(&p[off..off + n]),
                None => out[at..at + n].fill(0),
            }
        }
    }

    /// The bytes `[addr, addr + len)`.
    pub fn to_vec(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut out = vec![0; len];
        self.read(addr, &mut out);
        out
    }

    /// Writes `data` at `addr`. The range must lie in the memory.
    pub fn write(&mut self, addr: u64, data: &[u8]) {
        assert!(self.contains(addr, data.len() as u64), "write outside device memory");
        for (page, off, at, n) in Self::pieces(addr, data.len()) {
            let src = &data[at..at + n];
            match &mut self.pages[page] {
                Some(p) => p[off..off + n].copy_from_slice(src),
                // Zeros over an untouched page change nothing.
                slot @ None if src.iter().any(|&b| b != 0) => {
                    let mut p = vec![0u8; PAGE_BYTES].into_boxed_slice();
                    p[off..off + n].copy_from_slice(src);
                    *slot = Some(p);
                }
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_gib_costs_what_is_written() {
        let mut m = Memory::new(4 << 30);
        assert_eq!(m.allocated_bytes(), 0);
        assert_eq!(m.to_vec((4 << 30) - 8, 8), vec![0; 8]);
        // A write across a page boundary allocates the two pages it touches.
        let at = 3 * PAGE_BYTES as u64 - 2;
        m.write(at, &[1, 2, 3, 4]);
        assert_eq!(m.allocated_bytes(), 2 * PAGE_BYTES as u64);
        assert_eq!(m.to_vec(at - 1, 6), vec![0, 1, 2, 3, 4, 0]);
        // Zeros over untouched pages allocate nothing; over touched ones they write.
        m.write(0, &vec![0; 3 * PAGE_BYTES]);
        assert_eq!(m.allocated_bytes(), 2 * PAGE_BYTES as u64);
        assert_eq!(m.to_vec(at, 4), vec![0, 0, 3, 4]);
        m.write((4 << 30) - 1, &[9]);
        assert_eq!(m.to_vec((4 << 30) - 2, 2), vec![0, 9]);
        assert!(m.contains((4 << 30) - 1, 1) && !m.contains(4 << 30, 1) && !m.contains(u64::MAX, 2));
    }
}
