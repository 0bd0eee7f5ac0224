//! The `both` backend: the Rust model and the verilated RTL as one
//! `Device`. Every write goes to both; reads answer from the model; when a
//! run stops on both, they are compared (DESIGN §5): outcome, total cycles,
//! every counter, each instruction's start and finish cycle, and the whole
//! device memory. The first difference is kept ([`Lockstep::difference`])
//! and the run returns an error naming it.

use crate::RtlDevice;
use driver::compare::{compare_memory, compare_runs, Difference};
use driver::read_report;
use isa::regs;
use isa::{Device, DeviceError, HwConfig, InstrTrace};
use std::cell::RefCell;
use std::rc::Rc;

/// Extra cycles the slower backend may take after the other has stopped
/// before the comparison gives up on it.
const STRAGGLER_CYCLES: u64 = 1 << 24;

pub struct Lockstep {
    model: sim::Model,
    rtl: RtlDevice,
    difference: Rc<RefCell<Option<Difference>>>,
}

impl Lockstep {
    pub fn new(model: sim::Model, rtl: RtlDevice) -> Lockstep {
        Lockstep { model, rtl, difference: Rc::new(RefCell::new(None)) }
    }

    /// Where the first difference of a run is recorded (shared, so a caller
    /// can keep it after handing the device to a driver).
    pub fn difference(&self) -> Rc<RefCell<Option<Difference>>> {
        self.difference.clone()
    }

    fn compare(&mut self) -> Result<(), DeviceError> {
        let a = read_report(&mut self.model)?;
        let b = read_report(&mut self.rtl)?;
        let mut diff = compare_runs(&a, &b).err();
        if diff.is_none() {
            let size = self.model.config().dram_bytes() as usize;
            let ma = self.model.read_mem(0, size)?;
            let mb = self.rtl.read_mem(0, size)?;
            diff = compare_memory(0, &ma, &mb).err();
        }
        match diff {
            Some(d) => {
                let msg = format!("the model and the RTL differ: {d} (model first)");
                *self.difference.borrow_mut() = Some(d);
                Err(DeviceError::Backend(msg))
            }
            None => Ok(()),
        }
    }
}

impl Device for Lockstep {
    fn config(&self) -> &HwConfig {
        self.model.config()
    }

    fn read_reg(&mut self, addr: u32) -> Result<u32, DeviceError> {
        self.model.read_reg(addr)
    }

    fn write_reg(&mut self, addr: u32, value: u32) -> Result<(), DeviceError> {
        self.model.write_reg(addr, value)?;
        self.rtl.write_reg(addr, value)
    }

    fn read_mem(&mut self, addr: u64, len: usize) -> Result<Vec<u8>, DeviceError> {
        self.model.read_mem(addr, len)
    }

    fn write_mem(&mut self, addr: u64, data: &[u8]) -> Result<(), DeviceError> {
        self.model.write_mem(addr, data)?;
        self.rtl.write_mem(addr, data)
    }

    fn advance(&mut self, max_cycles: u64) -> Result<u32, DeviceError> {
        let a = self.model.advance(max_cycles)?;
        let mut b = self.rtl.advance(max_cycles)?;
        if a == regs::STATUS_RUNNING && b == regs::STATUS_RUNNING {
            return Ok(a);
        }
        // One has stopped: let the other finish, then compare.
        let mut a = a;
        let mut spent = 0;
        while (a == regs::STATUS_RUNNING || b == regs::STATUS_RUNNING) && spent < STRAGGLER_CYCLES {
            a = self.model.advance(1 << 16)?;
            b = self.rtl.advance(1 << 16)?;
            spent += 1 << 16;
        }
        self.compare()?;
        Ok(a)
    }

    fn trace(&self) -> Vec<InstrTrace> {
        self.model.trace()
    }
}
