//! Comparing two runs of one program on two backends (docs/DESIGN.md §5): the
//! outcome, every performance counter, and each instruction's start and
//! finish cycle. The first difference is named: for the trace, the first
//! instruction (in program order) whose start or finish differs.

use crate::{Outcome, RunReport};
use isa::regs::Counter;

/// The first way two runs differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Difference {
    Outcome { a: Outcome, b: Outcome },
    Counter { counter: Counter, a: u64, b: u64 },
    Instruction { index: u32, a: (u64, u64), b: (u64, u64) },
    TraceLength { a: usize, b: usize },
    Memory { addr: u64, a: u8, b: u8 },
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::Outcome { a, b } => write!(f, "outcome differs: {a:?} vs {b:?}"),
            Difference::Counter { counter, a, b } => write!(f, "counter `{}` differs: {a} vs {b}", counter.name()),
            Difference::Instruction { index, a, b } => {
                write!(f, "instruction {index} differs: start {} finish {} vs start {} finish {}", a.0, a.1, b.0, b.1)
            }
            Difference::TraceLength { a, b } => write!(f, "trace lengths differ: {a} vs {b}"),
            Difference::Memory { addr, a, b } => write!(f, "device memory differs at {addr:#x}: {a:#04x} vs {b:#04x}"),
        }
    }
}

/// Compares two reports: outcome, then the trace (the earliest cause), then
/// the counters. Counters of a faulted run are not compared: a fault
/// abandons instructions mid-way, and the model books some counters when an
/// instruction starts, the RTL as its work happens.
pub fn compare_runs(a: &RunReport, b: &RunReport) -> Result<(), Difference> {
    if a.outcome != b.outcome {
        return Err(Difference::Outcome { a: a.outcome, b: b.outcome });
    }
    if a.counters.get(Counter::Cycles) != b.counters.get(Counter::Cycles) {
        return Err(Difference::Counter {
            counter: Counter::Cycles,
            a: a.counters.get(Counter::Cycles),
            b: b.counters.get(Counter::Cycles),
        });
    }
    if a.outcome != Outcome::Done {
        return Ok(());
    }
    if a.trace.len() != b.trace.len() {
        return Err(Difference::TraceLength { a: a.trace.len(), b: b.trace.len() });
    }
    for (x, y) in a.trace.iter().zip(&b.trace) {
        if (x.start, x.finish) != (y.start, y.finish) {
            return Err(Difference::Instruction { index: x.index, a: (x.start, x.finish), b: (y.start, y.finish) });
        }
    }
    for &c in Counter::ALL {
        if a.counters.get(c) != b.counters.get(c) {
            return Err(Difference::Counter { counter: c, a: a.counters.get(c), b: b.counters.get(c) });
        }
    }
    Ok(())
}

/// The first byte at which two memory images differ (`base` is the
/// address of their first byte).
pub fn compare_memory(base: u64, a: &[u8], b: &[u8]) -> Result<(), Difference> {
    if a == b {
        return Ok(());
    }
    let i = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
    Err(Difference::Memory {
        addr: base + i as u64,
        a: a.get(i).copied().unwrap_or(0),
        b: b.get(i).copied().unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use isa::regs::{Counters, ErrorCode};
    use isa::InstrTrace;

    fn report(trace: &[(u64, u64)], cycles: u64) -> RunReport {
        let mut counters = Counters::default();
        counters.set(Counter::Cycles, cycles);
        counters.set(Counter::Macs, 64);
        let trace = trace.iter().enumerate().map(|(i, &(s, f))| InstrTrace { index: i as u32, start: s, finish: f });
        RunReport { outcome: Outcome::Done, counters, trace: trace.collect() }
    }

    #[test]
    fn names_the_first_instruction_that_differs() {
        let a = report(&[(0, 5), (1, 9), (4, 12)], 13);
        assert_eq!(compare_runs(&a, &a.clone()), Ok(()));
        let b = report(&[(0, 5), (1, 10), (4, 13)], 13);
        let d = compare_runs(&a, &b).unwrap_err();
        assert_eq!(d, Difference::Instruction { index: 1, a: (1, 9), b: (1, 10) });
        assert!(d.to_string().contains("instruction 1"), "{d}");
    }

    #[test]
    fn outcome_cycles_and_counters_are_compared() {
        let a = report(&[(0, 5)], 6);
        let mut b = a.clone();
        b.outcome = Outcome::Fault { code: ErrorCode::Deadlock, pc: 0 };
        assert!(matches!(compare_runs(&a, &b), Err(Difference::Outcome { .. })));
        let b = report(&[(0, 5)], 7);
        assert!(matches!(compare_runs(&a, &b), Err(Difference::Counter { counter: Counter::Cycles, .. })));
        let mut b = a.clone();
        b.counters.set(Counter::Macs, 65);
        assert_eq!(compare_runs(&a, &b), Err(Difference::Counter { counter: Counter::Macs, a: 64, b: 65 }));
    }

    #[test]
    fn memory_difference_is_located() {
        assert_eq!(compare_memory(0x100, &[1, 2, 3], &[1, 2, 3]), Ok(()));
        assert_eq!(compare_memory(0x100, &[1, 2, 3], &[1, 9, 3]), Err(Difference::Memory { addr: 0x101, a: 2, b: 9 }));
    }
}
