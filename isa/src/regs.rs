//! The register map of the accelerator (docs/DESIGN.md §6–7), shared by the driver,
//! the Rust model and the RTL (through the generated Verilog header).
//! All registers are 32 bits wide at 4-byte aligned byte offsets.

/// Write 1 to bit 0 to start a run (status must not be `RUNNING`).
pub const CTRL: u32 = 0x00;
pub const CTRL_START: u32 = 1;
/// Read: one of the `STATUS_*` values.
pub const STATUS: u32 = 0x04;
/// Read: an `ErrorCode` (0 when no fault).
pub const ERROR_CODE: u32 = 0x08;
/// Read: index of the instruction that faulted (or was being dispatched).
pub const ERROR_PC: u32 = 0x0C;
/// Byte address of the first instruction (32-byte aligned).
pub const PROG_ADDR: u32 = 0x10;
/// Number of instructions in the program.
pub const PROG_LEN: u32 = 0x14;
/// The memory window the device may touch: `[WIN_BASE, WIN_LIMIT)`.
pub const WIN_BASE: u32 = 0x18;
pub const WIN_LIMIT: u32 = 0x1C;
/// Read: the configuration fingerprint, low and high word.
pub const FINGERPRINT_LO: u32 = 0x20;
pub const FINGERPRINT_HI: u32 = 0x24;
/// Read: what the fault concerns beyond its instruction: for
/// `IndexOutOfRange`, the position `y` (0-based, within the faulting
/// `load`'s rows) of the first id outside `0..limit`; 0 for other faults.
pub const ERROR_INFO: u32 = 0x28;
/// First performance counter; counter `i` is 64 bits at `COUNTERS + 8 i`
/// (low word) and `COUNTERS + 8 i + 4` (high word).
pub const COUNTERS: u32 = 0x40;

pub const STATUS_IDLE: u32 = 0;
pub const STATUS_RUNNING: u32 = 1;
pub const STATUS_DONE: u32 = 2;
pub const STATUS_FAULT: u32 = 3;

/// Every named register, for docs and the Verilog header.
pub const REGISTERS: &[(&str, u32, &str)] = &[
    ("CTRL", CTRL, "W: bit 0 starts a run"),
    ("STATUS", STATUS, "R: 0 idle, 1 running, 2 done, 3 fault"),
    ("ERROR_CODE", ERROR_CODE, "R: fault code (0 = none)"),
    ("ERROR_PC", ERROR_PC, "R: index of the faulting instruction"),
    ("PROG_ADDR", PROG_ADDR, "RW: program byte address, 32-byte aligned"),
    ("PROG_LEN", PROG_LEN, "RW: program length in instructions"),
    ("WIN_BASE", WIN_BASE, "RW: first byte the device may access"),
    ("WIN_LIMIT", WIN_LIMIT, "RW: one past the last byte the device may access"),
    ("FINGERPRINT_LO", FINGERPRINT_LO, "R: config fingerprint bits 0..32"),
    ("FINGERPRINT_HI", FINGERPRINT_HI, "R: config fingerprint bits 32..64"),
    ("ERROR_INFO", ERROR_INFO, "R: fault detail: for IndexOutOfRange, the position of the first bad id in the load; for BadStream, the first bad row"),
    ("COUNTERS", COUNTERS, "R: 64-bit performance counters, see `Counter`"),
];

/// Why a run ended in a fault (the `ERROR_CODE` register).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ErrorCode {
    None = 0,
    /// An instruction failed to decode or uses a feature this config lacks.
    IllegalInstruction = 1,
    /// A DMA block reaches outside the memory window; no byte was moved.
    DmaOutOfWindow = 2,
    /// A scratchpad, accumulator or array-tile range exceeds the buffer.
    BufferOutOfRange = 3,
    /// The watchdog saw no progress: dependency tokens can never arrive.
    Deadlock = 4,
    /// Dispatch reached the end of the program without a FINISH.
    ProgramOverrun = 5,
    /// The program range is unaligned or outside the memory window.
    BadProgram = 6,
    /// A token counter would exceed its maximum (`TOKEN_MAX`).
    TokenOverflow = 7,
    /// An indexed `load` read an id outside `0..limit` (ERROR_INFO: its
    /// position); no table byte was read.
    IndexOutOfRange = 8,
    /// A compressed `load`'s stream does not fill exactly its `stride`
    /// bytes, or a mask marks an element past the row (ERROR_INFO: the first
    /// bad row); nothing was read or written.
    BadStream = 9,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 10] = [
        ErrorCode::None,
        ErrorCode::IllegalInstruction,
        ErrorCode::DmaOutOfWindow,
        ErrorCode::BufferOutOfRange,
        ErrorCode::Deadlock,
        ErrorCode::ProgramOverrun,
        ErrorCode::BadProgram,
        ErrorCode::TokenOverflow,
        ErrorCode::IndexOutOfRange,
        ErrorCode::BadStream,
    ];

    pub fn from_u32(v: u32) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| *c as u32 == v)
    }

    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::None => "none",
            ErrorCode::IllegalInstruction => "illegal instruction",
            ErrorCode::DmaOutOfWindow => "DMA outside the memory window",
            ErrorCode::BufferOutOfRange => "buffer address out of range",
            ErrorCode::Deadlock => "deadlock (watchdog)",
            ErrorCode::ProgramOverrun => "program ended without finish",
            ErrorCode::BadProgram => "bad program address or length",
            ErrorCode::TokenOverflow => "dependency token overflow",
            ErrorCode::IndexOutOfRange => "index out of range (indexed load)",
            ErrorCode::BadStream => "malformed compressed stream (load)",
        }
    }
}

macro_rules! counters {
    ($( $name:ident $doc:literal ),* $(,)?) => {
        /// The performance counters, in register order.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Counter { $( #[doc = $doc] $name, )* }

        impl Counter {
            pub const ALL: &'static [Counter] = &[$( Counter::$name ),*];
            pub const COUNT: usize = Counter::ALL.len();

            /// snake_case name used in reports and JSON.
            pub fn name(self) -> &'static str {
                match self { $( Counter::$name => snake(stringify!($name)), )* }
            }

            pub fn doc(self) -> &'static str {
                match self { $( Counter::$name => $doc, )* }
            }

            /// Register address of the counter's low word.
            pub fn addr(self) -> u32 {
                COUNTERS + 8 * self as u32
            }
        }
    };
}

const fn snake(camel: &'static str) -> &'static str {
    // Names are spelled once in CamelCase; the snake_case forms are listed
    // here so they stay `&'static str` without allocation.
    match camel.as_bytes() {
        b"Cycles" => "cycles",
        b"Instructions" => "instructions",
        b"LoadBusy" => "load_busy",
        b"LoadStall" => "load_stall",
        b"ComputeBusy" => "compute_busy",
        b"ComputeStall" => "compute_stall",
        b"StoreBusy" => "store_busy",
        b"StoreStall" => "store_stall",
        b"ArrayBusy" => "array_busy",
        b"PpuBusy" => "ppu_busy",
        b"Macs" => "macs",
        b"WeightRows" => "weight_rows",
        b"DramReadBytes" => "dram_read_bytes",
        b"DramWriteBytes" => "dram_write_bytes",
        b"DramRequests" => "dram_requests",
        b"SpadReadRows" => "spad_read_rows",
        b"SpadWriteRows" => "spad_write_rows",
        b"AccReadRows" => "acc_read_rows",
        b"AccWriteRows" => "acc_write_rows",
        b"PpuElements" => "ppu_elements",
        b"VectorBusy" => "vector_busy",
        b"VectorElements" => "vector_elements",
        b"VectorLaneCycles" => "vector_lane_cycles",
        _ => "unknown",
    }
}

counters! {
    Cycles "cycles from start to done or fault",
    Instructions "instructions dispatched (FINISH included)",
    LoadBusy "cycles the LOAD unit executes an instruction",
    LoadStall "cycles the LOAD queue's head waits for a token",
    ComputeBusy "cycles the array or the post-processor issues work",
    ComputeStall "cycles the COMPUTE queue's head waits for a token, a busy sub-unit or the array to drain",
    StoreBusy "cycles the STORE unit executes an instruction",
    StoreStall "cycles the STORE queue's head waits for a token",
    ArrayBusy "cycles the array streams inputs or loads weights",
    PpuBusy "cycles the post-processing unit is busy",
    Macs "useful multiply-accumulates (m x k x n per matmul)",
    WeightRows "weight rows shifted into the array",
    DramReadBytes "bytes read from DRAM (whole beats)",
    DramWriteBytes "bytes written to DRAM (whole beats)",
    DramRequests "DRAM burst requests (reads and writes)",
    SpadReadRows "scratchpad row reads",
    SpadWriteRows "scratchpad row writes",
    AccReadRows "accumulator row reads (accumulate read-modify-writes included)",
    AccWriteRows "accumulator row writes",
    PpuElements "elements processed by the post-processing unit",
    VectorBusy "cycles the vector unit is busy",
    VectorElements "elements the vector unit reads and computes (rows x len per instruction)",
    VectorLaneCycles "cycles of work summed over the vector unit's lanes (elements x lane cycles per element)",
}

/// A snapshot of all counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters(pub [u64; Counter::COUNT]);

impl Counters {
    pub fn get(&self, c: Counter) -> u64 {
        self.0[c as usize]
    }
    pub fn set(&mut self, c: Counter, v: u64) {
        self.0[c as usize] = v;
    }
    pub fn add(&mut self, c: Counter, v: u64) {
        self.0[c as usize] += v;
    }
    pub fn iter(&self) -> impl Iterator<Item = (Counter, u64)> + '_ {
        Counter::ALL.iter().map(move |&c| (c, self.get(c)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_names_are_all_known() {
        for &c in Counter::ALL {
            assert_ne!(c.name(), "unknown", "{c:?}");
        }
    }
}
