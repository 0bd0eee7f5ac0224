//! The systole compiler: lowers quantized computations to instruction
//! streams for the accelerator. Today: tiled, double-buffered GEMM (the
//! building block of dense and convolution layers); the ONNX importers, the
//! IR and the reference interpreter come with issue 4. No IO here.

pub mod gemm;
