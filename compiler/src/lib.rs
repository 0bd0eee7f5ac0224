//! The systole compiler: lowers quantized computations to instruction
//! streams for the accelerator. Importers (ONNX QOperator and QDQ, the text
//! model format) meet in one quantized graph IR (`ir`); the reference
//! interpreter defines what a graph computes; `gemm` lowers the GEMMs that
//! dense and convolution layers become. No IO here: importers take bytes
//! or text.

pub mod batch;
pub mod gemm;
pub mod interp;
mod interp_vector;
pub mod ir;
pub mod ir_codec;
pub mod lower;
pub mod lut;
pub mod npy;
pub mod onnx;
pub mod resize;
mod strided;
pub mod text;

#[cfg(test)]
mod test_run;
