//! The `Device` trait: how a host reaches an accelerator (docs/DESIGN.md §7). The
//! Rust model, the verilated RTL and a future FPGA board implement it; only
//! the driver calls it.

use crate::config::HwConfig;

/// A host-side access the device refused (not a device fault: those are
/// reported through the STATUS and ERROR_CODE registers).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("host memory access [{addr:#x}, {addr:#x}+{len}) is outside device memory of {size} bytes")]
    MemoryRange { addr: u64, len: u64, size: u64 },
    #[error("no register at {0:#x}")]
    NoRegister(u32),
    #[error("register {0:#x} is read-only")]
    ReadOnly(u32),
    #[error("{0}")]
    Backend(String),
}

/// Start and finish cycle of one executed instruction (docs/DESIGN.md §5): start is
/// the cycle it leaves its queue; finish the cycle after its last effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstrTrace {
    pub index: u32,
    pub start: u64,
    pub finish: u64,
}

pub trait Device {
    fn config(&self) -> &HwConfig;
    fn read_reg(&mut self, addr: u32) -> Result<u32, DeviceError>;
    fn write_reg(&mut self, addr: u32, value: u32) -> Result<(), DeviceError>;
    fn read_mem(&mut self, addr: u64, len: usize) -> Result<Vec<u8>, DeviceError>;
    fn write_mem(&mut self, addr: u64, data: &[u8]) -> Result<(), DeviceError>;
    /// Advances a started run by at most `max_cycles` cycles, or until it is
    /// done or faults; returns the STATUS register.
    fn advance(&mut self, max_cycles: u64) -> Result<u32, DeviceError>;
    /// Per-instruction timing of the last run, in program order.
    fn trace(&self) -> Vec<InstrTrace>;
}

/// A borrowed or boxed device is a device: a driver can work on a device it
/// does not own, and a backend can be chosen at run time.
macro_rules! forward_device {
    ($($ty:ty),*) => {$(
        impl<D: Device + ?Sized> Device for $ty {
            fn config(&self) -> &HwConfig {
                (**self).config()
            }
            fn read_reg(&mut self, addr: u32) -> Result<u32, DeviceError> {
                (**self).read_reg(addr)
            }
            fn write_reg(&mut self, addr: u32, value: u32) -> Result<(), DeviceError> {
                (**self).write_reg(addr, value)
            }
            fn read_mem(&mut self, addr: u64, len: usize) -> Result<Vec<u8>, DeviceError> {
                (**self).read_mem(addr, len)
            }
            fn write_mem(&mut self, addr: u64, data: &[u8]) -> Result<(), DeviceError> {
                (**self).write_mem(addr, data)
            }
            fn advance(&mut self, max_cycles: u64) -> Result<u32, DeviceError> {
                (**self).advance(max_cycles)
            }
            fn trace(&self) -> Vec<InstrTrace> {
                (**self).trace()
            }
        }
    )*};
}

forward_device!(&mut D, Box<D>);
