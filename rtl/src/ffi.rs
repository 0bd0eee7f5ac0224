//! The cxx bridge to the C++ harnesses of the verilated models
//! (`cpp/requant_harness.{h,cc}`, `cpp/qadd_harness.{h,cc}`,
//! `cpp/array_harness.{h,cc}`, `cpp/vec_harness.{h,cc}`). Only built
//! with the `verilator` feature; the safe APIs are [`crate::requant`] and
//! [`crate::array`].

#[cxx::bridge(namespace = "systole_rtl")]
pub(crate) mod bridge {
    /// One requantization: the inputs of `isa::numerics::requantize`, with
    /// the scale as its float32 bits.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct RequantCase {
        pub acc: i32,
        pub scale: u32,
        pub zp: i32,
        pub qmin: i32,
        pub qmax: i32,
    }

    /// One quantized add: the inputs of `isa::numerics::qadd` with the
    /// operands as bytes and the parameters as float32 bits.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct QaddCase {
        pub a: u8,
        pub b: u8,
        pub unsigned_in: bool,
        pub ra: u32,
        pub rb: u32,
        pub k: u32,
        pub qmin: i32,
        pub qmax: i32,
    }

    /// The control inputs of the systolic array (`verilog/array.sv`) for one
    /// clock cycle; the data buses travel as byte slices beside it.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct ArrayCycle {
        /// Zero the shadow weight buffer.
        pub w_clear: bool,
        /// Write shadow row `w_row` with this cycle's weight bytes.
        pub w_valid: bool,
        pub w_row: u32,
        /// Stream this cycle's input row.
        pub in_valid: bool,
        /// The input row is uint8 (else int8).
        pub in_unsigned: bool,
        /// The shadow weights become active from this row on.
        pub swap: bool,
    }

    unsafe extern "C++" {
        include!("rtl/cpp/array_harness.h");

        /// A verilated `array` (one ROWS x COLS) in its own Verilator context.
        type ArrayModel;

        /// A fresh model of the given size (4x4 or 16x16), after a reset.
        fn new_array_model(rows: u32, cols: u32) -> Result<UniquePtr<ArrayModel>>;
        fn rows(self: &ArrayModel) -> u32;
        fn cols(self: &ArrayModel) -> u32;
        /// Cycles from an input row to its output row (ROWS + COLS - 1).
        fn latency(self: &ArrayModel) -> u32;
        /// One cycle with `rst` = 1 (weights zero, no valid row in flight).
        fn reset(self: Pin<&mut ArrayModel>);
        /// One clock cycle: drives `cyc`, `x` (rows bytes) and `w` (cols
        /// bytes), writes the output row present in this cycle to `out`
        /// (cols words) and returns `out_valid`; then the clock edge.
        fn step(self: Pin<&mut ArrayModel>, cyc: &ArrayCycle, x: &[u8], w: &[u8], out: &mut [i32]) -> Result<bool>;
        /// `step` for every cycle: `x` holds rows bytes per cycle, `w` and
        /// `out` cols per cycle, `out_valid` one flag (0/1) per cycle.
        fn run(
            self: Pin<&mut ArrayModel>,
            cycles: &[ArrayCycle],
            x: &[u8],
            w: &[u8],
            out_valid: &mut [u8],
            out: &mut [i32],
        ) -> Result<()>;
    }

    unsafe extern "C++" {
        include!("rtl/cpp/requant_harness.h");

        /// A verilated `requant` (one `LATENCY`) in its own Verilator context.
        type RequantModel;

        /// A fresh model of the given `LATENCY` (0, 1 or 2), inputs zero,
        /// `ce` = 1, clock low.
        fn new_requant_model(latency: u32) -> Result<UniquePtr<RequantModel>>;
        /// The `QW` the models were verilated with.
        fn requant_qw() -> u32;

        fn latency(self: &RequantModel) -> u32;
        /// Drives the data inputs (`zp`, `qmin`, `qmax` truncated to `QW` bits).
        fn set_inputs(self: Pin<&mut RequantModel>, c: &RequantCase);
        fn set_ce(self: Pin<&mut RequantModel>, ce: bool);
        /// Settles the combinational logic.
        fn eval(self: Pin<&mut RequantModel>);
        /// One clock cycle: rising edge (registers sample), then falling edge.
        fn tick(self: Pin<&mut RequantModel>);
        /// The output `q`, sign-extended.
        fn output(self: &RequantModel) -> i32;
        /// Streams `cases` through the model, one per clock cycle (with
        /// `ce` = 1), and writes each result to `out` (same length).
        fn run(self: Pin<&mut RequantModel>, cases: &[RequantCase], out: &mut [i32]) -> Result<()>;
    }

    unsafe extern "C++" {
        include!("rtl/cpp/qadd_harness.h");

        /// A verilated `qadd` (LATENCY 1) in its own Verilator context.
        type QaddModel;

        fn new_qadd_model() -> UniquePtr<QaddModel>;
        /// Streams `cases` through the model, one per clock cycle, and
        /// writes each result (sign-extended) to `out` (same length).
        fn run(self: Pin<&mut QaddModel>, cases: &[QaddCase], out: &mut [i32]) -> Result<()>;
    }

    /// One operation of the vector lane (`verilog/vec_lane.sv`): the op
    /// code (the `vop` codes, then 11 fma, 12 sqrt, 13 dequantize, 14
    /// quantize) and its operands as 32-bit words (float32 bits or int32).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct VecCase {
        pub op: u8,
        pub a: u32,
        pub b: u32,
        pub c: u32,
        pub qmin: u32,
        pub qmax: u32,
    }

    unsafe extern "C++" {
        include!("rtl/cpp/vec_harness.h");

        /// A verilated `vec_lane` in its own Verilator context.
        type VecLaneModel;

        fn new_vec_lane_model() -> UniquePtr<VecLaneModel>;
        /// Runs `cases` one after another; writes each result to `out` and
        /// the cycles from its start to its result to `cycles`.
        fn run(self: Pin<&mut VecLaneModel>, cases: &[VecCase], out: &mut [u32], cycles: &mut [u32]) -> Result<()>;
    }

    unsafe extern "C++" {
        include!("rtl/cpp/accel_loader.h");

        /// One configuration's verilated accelerator, loaded from the shared
        /// library `rtl::verilate` built for it (interface `cpp/accel_abi.h`).
        type AccelSim;

        /// dlopen()s a library built by `rtl::verilate`.
        fn accel_open(path: &str) -> Result<UniquePtr<AccelSim>>;
        /// One clock cycle: `inp` holds the inputs (SYS_IN_WORDS words),
        /// `out` receives the outputs sampled before the rising edge.
        fn cycle(self: Pin<&mut AccelSim>, inp: &[u32], out: &mut [u32]) -> Result<()>;
        /// Starts a waveform file (VCD or FST, as the library was built):
        /// time steps of `resolution` ("1ps"), `half_period` steps per
        /// half clock; false when the library has no tracing.
        fn waves_open(self: Pin<&mut AccelSim>, path: &str, half_period: u64, resolution: &str) -> bool;
        /// The next cycle is dumped as run cycle `cycle`, each later one as
        /// the next; negative: cycles are not dumped.
        fn waves_at(self: Pin<&mut AccelSim>, cycle: i64);
        /// The library's compiled-in copy of the interface table
        /// (`SYS_ABI_TABLE`), for `abi::check_table`.
        fn abi_table(self: &AccelSim) -> Vec<u32>;
    }
}

// SAFETY: an AccelSim owns its Verilator context and model and touches no
// shared state; moving it to another thread (never using it from two at
// once, which `&mut` guarantees) is sound.
unsafe impl Send for bridge::AccelSim {}
