//! The off-chip memory timing model (docs/DESIGN.md §5), shared by the Rust model
//! and the RTL harness so both see the same memory.
//!
//! One data bus moves `bytes_per_cycle` bytes (one beat) per cycle for reads
//! and writes alike. A request for `n` beats accepted at cycle `t` occupies
//! the bus for the `n` cycles starting at `max(t + latency, bus_free)`, in
//! acceptance order. It holds one of `max_outstanding` request slots from
//! `t` until its last beat's cycle has passed. At most one request is
//! accepted per cycle.

use isa::timing::{BURST_BOUNDARY, BURST_MAX_BEATS};

/// A burst: `beats` beats from beat address `beat0` (byte `beat0 * W`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Burst {
    pub beat0: u64,
    pub beats: u64,
}

/// An accepted request: its data moves in cycles `[data_start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    pub accepted: u64,
    pub data_start: u64,
    pub end: u64,
}

#[derive(Clone, Debug)]
pub struct Dram {
    pub bytes_per_cycle: u64,
    pub latency: u64,
    pub max_outstanding: usize,
    bus_free: u64,
    /// End cycles of requests that may still hold a slot.
    in_flight: Vec<u64>,
}

impl Dram {
    pub fn new(bytes_per_cycle: u32, latency: u32, max_outstanding: u32) -> Dram {
        Dram {
            bytes_per_cycle: bytes_per_cycle as u64,
            latency: latency as u64,
            max_outstanding: max_outstanding as usize,
            bus_free: 0,
            in_flight: Vec::new(),
        }
    }

    pub fn from_config(cfg: &isa::HwConfig) -> Dram {
        Dram::new(cfg.dram.bytes_per_cycle, cfg.dram.latency_cycles, cfg.dram.max_outstanding)
    }

    /// Requests holding a slot during cycle `t`.
    pub fn outstanding(&mut self, t: u64) -> usize {
        self.in_flight.retain(|&end| end > t);
        self.in_flight.len()
    }

    /// Whether a request can be accepted in cycle `t`.
    pub fn can_accept(&mut self, t: u64) -> bool {
        self.outstanding(t) < self.max_outstanding
    }

    /// Accepts a request of `beats` beats in cycle `t` (caller checked `can_accept`).
    pub fn accept(&mut self, t: u64, beats: u64) -> Grant {
        let data_start = (t + self.latency).max(self.bus_free);
        let end = data_start + beats;
        self.bus_free = end;
        self.in_flight.push(end);
        Grant { accepted: t, data_start, end }
    }

    /// The earliest cycle after `t` at which a slot frees, if any is held.
    pub fn next_slot_free(&self, t: u64) -> Option<u64> {
        self.in_flight.iter().copied().filter(|&e| e > t).min()
    }

    /// The last cycle any accepted request still moves data, plus one.
    pub fn quiet_after(&self) -> u64 {
        self.in_flight.iter().copied().max().unwrap_or(0)
    }
}

/// Splits the byte range `[addr, addr + len)` into beat-aligned bursts of at
/// most 256 beats that never cross a 4 KiB boundary, appending to `out`.
pub fn split_bursts(addr: u64, len: u64, bytes_per_cycle: u64, out: &mut Vec<Burst>) {
    debug_assert!(len > 0);
    let w = bytes_per_cycle;
    let first = addr / w;
    let last = (addr + len - 1) / w;
    let mut beat = first;
    while beat <= last {
        let boundary_beat = (beat * w / BURST_BOUNDARY + 1) * BURST_BOUNDARY / w;
        let end = (last + 1).min(beat + BURST_MAX_BEATS as u64).min(boundary_beat);
        out.push(Burst { beat0: beat, beats: end - beat });
        beat = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_respect_4k_and_256_beats() {
        let mut v = Vec::new();
        split_bursts(4096 - 16, 64, 16, &mut v);
        assert_eq!(v, vec![Burst { beat0: 255, beats: 1 }, Burst { beat0: 256, beats: 3 }]);
        v.clear();
        split_bursts(0, 8192, 16, &mut v);
        assert_eq!(v, vec![Burst { beat0: 0, beats: 256 }, Burst { beat0: 256, beats: 256 }]);
        v.clear();
        split_bursts(0, 2048, 4, &mut v);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].beats, 256);
        v.clear();
        split_bursts(5, 3, 4, &mut v);
        assert_eq!(v, vec![Burst { beat0: 1, beats: 1 }]);
        v.clear();
        split_bursts(3, 3, 4, &mut v);
        assert_eq!(v, vec![Burst { beat0: 0, beats: 2 }]);
    }

    #[test]
    fn requests_queue_behind_latency_and_bus() {
        let mut d = Dram::new(16, 10, 2);
        let a = d.accept(0, 4);
        assert_eq!((a.data_start, a.end), (10, 14));
        let b = d.accept(1, 4);
        assert_eq!((b.data_start, b.end), (14, 18));
        assert!(!d.can_accept(2));
        assert_eq!(d.next_slot_free(2), Some(14));
        assert!(d.can_accept(14));
    }
}
