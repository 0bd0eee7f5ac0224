//! ONNX importer: statically quantized ONNX models, in ONNX Runtime's
//! QOperator form or in QDQ form, become one [`Graph`] of the quantized IR.
//!
//! ```no_run
//! let bytes = std::fs::read("model.onnx").unwrap();
//! let graph = compiler::onnx::import(&bytes).unwrap();
//! println!("{graph}");
//! ```
//!
//! # What is read
//!
//! The model is decoded with `prost` types generated from ONNX's own
//! `onnx.proto` ([`proto`], see `compiler/tools/gen-onnx-proto`). Nodes are
//! read in their (topological) order.
//!
//! QOperator form: `QuantizeLinear`, `DequantizeLinear`, `QLinearConv`,
//! `QLinearMatMul`, `com.microsoft` `QGemm` (`transA = 0`, `transB` 0 or 1,
//! `alpha = 1`, quantized output), `com.microsoft` `QLinearAdd`,
//! `QLinearAveragePool`, `QLinearGlobalAveragePool`, `QLinearConcat`
//! (inputs in other quantizations are requantized, as ORT does, through a
//! table), `QLinearSigmoid` and `QLinearLeakyRelu` (`Op::Lut`), `MaxPool`, `Flatten`,
//! `Reshape`, `Transpose`, `Concat`, `Resize` (nearest or linear, opset 11+, H and W;
//! source indices and linear weights as ORT's CPU kernel computes them, `crate::resize`), `Identity` and `Constant` on quantized
//! tensors, and `Relu` / `Clip` on quantized tensors. The latter keep
//! ONNX's meaning for integer tensors: `Relu` is `max(q, 0)` on the stored
//! integers, `Clip` clamps to its integer bounds; both become the clamp of
//! the producing Conv / Dense / Add when nothing else reads the producer's
//! output, and an `Op::Clamp` otherwise.
//!
//! QDQ form: `DequantizeLinear` → float op → `QuantizeLinear` groups become
//! the quantized op, with the activations' quantization taken from the Q/DQ
//! nodes and the weights and biases from the `DequantizeLinear` of their
//! initializers: `Conv`, `Gemm`, `MatMul` (constant `[K, N]` weight,
//! transposed to the IR's `[n, k]`), `Add`, `AveragePool`,
//! `GlobalAveragePool`. A `Relu` or `Clip` between the op and its
//! `QuantizeLinear` becomes the op's clamp: `Q(relu(x)) = max(Q(x), zp)`
//! exactly because quantization is monotone (ORT usually drops the ReLU and
//! leaves only the output zero point -128). `MaxPool`, `Flatten`, `Reshape`,
//! `Transpose` and `Concat` between DQ and Q commute with dequantization
//! and are imported as the quantized data movement, which requires the
//! Q after them to repeat the DQ's scale and zero point (ORT writes them
//! so). A QDQ model and its QOperator twin import to the same IR up to
//! value and node names.
//!
//! # Constraints (each violation is an [`ImportError`] naming the node)
//!
//! - Static quantization only: `DynamicQuantizeLinear`, `MatMulInteger`,
//!   `ConvInteger` and friends give [`ImportError::DynamicQuantization`].
//! - Weights int8 with zero point 0 (symmetric), per output channel or per
//!   tensor; biases int32 with zero point 0. A QDQ bias must be in the scale
//!   `s_in * s_w[c]` (to within 2^-20 relative; ORT writes exactly that
//!   f32 product): the IR keeps the integer bias and that implied scale.
//! - Activations int8 or uint8, per-tensor scale and zero point, scales
//!   finite and positive. A change of quantization between two ops that
//!   only move data (DQ -> Q into another quantization) is an `Op::Lut` of
//!   the identity.
//! - Element-wise float ops between DQ and Q — `Sigmoid`, `Tanh`,
//!   `HardSigmoid`, `HardSwish`, `LeakyRelu`, and `Relu` / `Clip` whose
//!   Q has another quantization than the DQ — become `Op::Lut`, a 256-entry
//!   table computed as ORT computes the op (`crate::lut`); so does a
//!   `Concat` of differently quantized dequantized inputs (each input
//!   requantized into the Q's quantization). A `Relu`/`Clip` between such an
//!   op and its Q is refused.
//! - Element types int8, uint8, int32, float (and int64 for shapes).
//! - Graph inputs are float (then quantized by a `QuantizeLinear`) or
//!   int8/uint8; a quantized input takes its scale and zero point from the
//!   first QLinear op or `DequantizeLinear` that reads it.
//! - Static shapes: the graph inputs' dims must be numbers, except a
//!   symbolic (named or missing) leading batch dimension, which is taken
//!   as 1. Every other shape follows from [`crate::ir::infer_shape`].
//! - 2-D convolution and pooling on NCHW. `auto_pad` NOTSET or VALID;
//!   pooling without dilations; `ceil_mode = 1` only where it gives the
//!   same windows as `ceil_mode = 0`.
//! - Constants live inside the model (no external data).
//!
//! # Float tails
//!
//! The IR has no float arithmetic. A model that computes in float after
//! its last `DequantizeLinear` (ORT's standard-ops QOperator export adds the
//! Linear bias that way: `QLinearMatMul` → `DequantizeLinear` → float `Add`)
//! is rejected by [`import`]. [`import_with`] with [`FloatTail::Cut`]
//! imports it up to the dequantized tensors the float tail reads, makes
//! those the graph's outputs, and lists what it left out in
//! [`Imported::cut`]: the integer part is exact, the float tail is the
//! caller's to compute.

pub mod float;
mod fold;
mod gelu;
mod import;
#[allow(clippy::all, clippy::pedantic, missing_docs, rustdoc::all)]
pub mod proto;
mod tensor;
mod transformer;

use crate::ir::{Graph, GraphError};

/// Why a model could not be imported. Every variant about a node names it
/// (its ONNX name, or `<op>#<index>` when unnamed) and its operator
/// (`com.microsoft::` prefixed for contrib ops).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The bytes are not an ONNX `ModelProto`.
    #[error("not an ONNX model: protobuf decoding failed: {0}")]
    Decode(#[from] prost::DecodeError),
    /// A well-formed protobuf that holds no graph.
    #[error("the ONNX model has no graph")]
    NoGraph,
    /// The model quantizes activations at run time.
    #[error(
        "node `{node}` ({op}): the model is dynamically quantized: its activation scales are computed at run \
         time from the data, which the accelerator does not do; quantize it statically with calibration data \
         (onnxruntime.quantization.quantize_static)"
    )]
    DynamicQuantization { node: String, op: String },
    /// An operator the importer does not know.
    #[error("node `{node}`: operator {op} is not supported")]
    UnsupportedOp { node: String, op: String },
    /// A known operator used in a way the IR or the importer does not cover
    /// (an attribute value, a data type, a quantization scheme, a pattern).
    #[error("node `{node}` ({op}): unsupported: {what}")]
    Unsupported { node: String, op: String, what: String },
    /// The model contradicts itself or the ONNX specification (missing
    /// inputs, wrong tensor sizes, shapes that do not fit).
    #[error("node `{node}` ({op}): invalid model: {what}")]
    Invalid { node: String, op: String, what: String },
    /// The imported graph failed `Graph::validate` (an importer bug).
    #[error("the imported graph is inconsistent: {0}")]
    Graph(#[from] GraphError),
}

/// What to do with float arithmetic after the last dequantization.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FloatTail {
    /// Fail with [`ImportError::Unsupported`] naming the first float node.
    #[default]
    Reject,
    /// Import up to the dequantized tensors the float tail reads and make
    /// those the graph's outputs; see [`Imported::cut`].
    Cut,
}

/// Options of [`import_with`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportOptions {
    pub float_tail: FloatTail,
}

/// A float tail left out by [`FloatTail::Cut`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CutOutput {
    /// The model's output that the float tail computes.
    pub output: String,
    /// The float nodes left out, as `name (op)`, in graph order.
    pub nodes: Vec<String>,
    /// The IR graph outputs (dequantized tensors) the tail reads.
    pub replaced_by: Vec<String>,
}

/// The result of [`import_with`].
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    pub graph: Graph,
    /// Empty unless [`FloatTail::Cut`] removed a float tail.
    pub cut: Vec<CutOutput>,
}

/// Imports a statically quantized ONNX model (QOperator or QDQ form) into
/// the quantized IR; the graph has passed `Graph::validate`.
pub fn import(bytes: &[u8]) -> Result<Graph, ImportError> {
    import_with(bytes, &ImportOptions::default()).map(|i| i.graph)
}

/// [`import`] with options.
pub fn import_with(bytes: &[u8], options: &ImportOptions) -> Result<Imported, ImportError> {
    import::run(bytes, options)
}
