//! Two devices as one (ISA.md §5's "one machine" rule, checked): every
//! write goes to both; reads answer from the first; when a run stops on
//! both, they are compared with [`crate::compare`]: outcome, total cycles,
//! every counter, each instruction's start and finish cycle, and the whole
//! device memory. The first difference is kept ([`Lockstep::difference`])
//! and the run returns an error naming it. The CLI's `--backend both` is
//! the Rust model and the verilated RTL in lockstep.

use crate::compare::{compare_memory, compare_runs, Difference};
use crate::read_report;
use isa::regs;
use isa::{Device, DeviceError, HwConfig, InstrTrace};
use std::cell::RefCell;
use std::rc::Rc;

/// Extra cycles the slower device may take after the other has stopped
/// before the comparison gives up on it.
const STRAGGLER_CYCLES: u64 = 1 << 24;

/// Where a lockstep records its first difference; shared, so a caller can
/// keep it after handing the device to a driver.
pub type DifferenceSlot = Rc<RefCell<Option<Difference>>>;

pub struct Lockstep<A: Device, B: Device> {
    a: A,
    b: B,
    /// How the two are named in the message ("the model and the RTL").
    names: (String, String),
    difference: DifferenceSlot,
}

impl<A: Device, B: Device> Lockstep<A, B> {
    /// `a` answers reads; `names` say what `a` and `b` are in messages.
    pub fn new(a: A, b: B, names: (&str, &str)) -> Lockstep<A, B> {
        Lockstep { a, b, names: (names.0.to_string(), names.1.to_string()), difference: Rc::default() }
    }

    /// Where the first difference of a run is recorded.
    pub fn difference(&self) -> DifferenceSlot {
        self.difference.clone()
    }

    pub fn devices(&mut self) -> (&mut A, &mut B) {
        (&mut self.a, &mut self.b)
    }

    fn compare(&mut self) -> Result<(), DeviceError> {
        let ra = read_report(&mut self.a)?;
        let rb = read_report(&mut self.b)?;
        let mut diff = compare_runs(&ra, &rb).err();
        // Memory in slices, so a large device (say 4 GiB of which a program
        // touches little) costs two slices of host memory, not two copies.
        const SLICE: u64 = 1 << 20;
        let size = self.a.config().dram_bytes();
        let mut addr = 0;
        while diff.is_none() && addr < size {
            let len = SLICE.min(size - addr) as usize;
            let ma = self.a.read_mem(addr, len)?;
            let mb = self.b.read_mem(addr, len)?;
            diff = compare_memory(addr, &ma, &mb).err();
            addr += len as u64;
        }
        match diff {
            Some(d) => {
                let msg = format!("{} and {} differ: {d} ({} first)", self.names.0, self.names.1, self.names.0);
                *self.difference.borrow_mut() = Some(d);
                Err(DeviceError::Backend(msg))
            }
            None => Ok(()),
        }
    }
}

impl<A: Device, B: Device> Device for Lockstep<A, B> {
    fn config(&self) -> &HwConfig {
        self.a.config()
    }

    fn read_reg(&mut self, addr: u32) -> Result<u32, DeviceError> {
        self.a.read_reg(addr)
    }

    fn write_reg(&mut self, addr: u32, value: u32) -> Result<(), DeviceError> {
        self.a.write_reg(addr, value)?;
        self.b.write_reg(addr, value)
    }

    fn read_mem(&mut self, addr: u64, len: usize) -> Result<Vec<u8>, DeviceError> {
        self.a.read_mem(addr, len)
    }

    fn write_mem(&mut self, addr: u64, data: &[u8]) -> Result<(), DeviceError> {
        self.a.write_mem(addr, data)?;
        self.b.write_mem(addr, data)
    }

    fn advance(&mut self, max_cycles: u64) -> Result<u32, DeviceError> {
        let mut sa = self.a.advance(max_cycles)?;
        let mut sb = self.b.advance(max_cycles)?;
        if sa == regs::STATUS_RUNNING && sb == regs::STATUS_RUNNING {
            return Ok(sa);
        }
        // One has stopped: let the other finish, then compare.
        let mut spent = 0;
        while (sa == regs::STATUS_RUNNING || sb == regs::STATUS_RUNNING) && spent < STRAGGLER_CYCLES {
            sa = self.a.advance(1 << 16)?;
            sb = self.b.advance(1 << 16)?;
            spent += 1 << 16;
        }
        self.compare()?;
        Ok(sa)
    }

    fn trace(&self) -> Vec<InstrTrace> {
        self.a.trace()
    }
}
