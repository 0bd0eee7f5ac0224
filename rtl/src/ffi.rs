//! The cxx bridge to the C++ harness of the verilated models
//! (`cpp/requant_harness.{h,cc}`). Only built with the `verilator` feature;
//! the safe API is [`crate::requant`].

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
}
