//! GEMMs: `C[M,N] = A[M,K] x B[K,N]` with constant weights.
//!
//! - `weights`: `PackedWeights`, the one place that knows a weight format
//!   (`WeightFormat`) and how its tiles reach the array.
//! - `schedule`: a `GemmJob` (operands in device memory) emitted as a
//!   double-buffered instruction stream by the `Dataflow` the config asks
//!   for; `Dataflow::pack` picks the weights' format and with it the
//!   schedule: weight-stationary, or `streaming` for GEMMs of a few rows.
//! - this file: the standalone GEMM program (`lower_gemm`, tensors `a` and
//!   `c`) and its plain reference (`reference_gemm`).

mod schedule;
mod streaming;
mod weights;

pub use schedule::{AGather, ASource, Dataflow, GemmJob, GemmOut, GemmUse, OutRows};
pub use weights::{compress_group, dense_i4_packed_len, is_2_4, position_byte, unpack_dense_i4, WeightChoice};
pub use weights::{
    dense_i8_packed_len, nonzero_tiles, stream_i8_packed_len, unpack_dense_i8, unpack_stream_i8, PackedWeights,
    TileShape, WeightFormat, WeightTile, SPARSE_STREAM_MAX_BYTES,
};

use isa::instr::{self as ins, Instr};
use isa::program::{DType, Program, ProgramMeta, TensorInfo, TensorRole};
use isa::HwConfig;

/// What the GEMM writes.
#[derive(Clone, Debug, PartialEq)]
pub enum GemmOutput {
    /// The raw int32 accumulators.
    Int32,
    /// Requantized int8: per-column bias and scale, then zero point and clamp.
    Int8 { bias: Vec<i32>, scale: Vec<f32>, zero_point: i32, qmin: i32, qmax: i32 },
}

/// A GEMM to lower: weights are constants, A is the run-time input.
#[derive(Clone, Debug, PartialEq)]
pub struct GemmSpec {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    /// B, row-major `[K, N]`.
    pub weights: Vec<i8>,
    /// A holds uint8 rather than int8 values.
    pub input_unsigned: bool,
    pub output: GemmOutput,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LowerError {
    #[error("GEMM {m}x{k}x{n}: {why}")]
    Shape { m: usize, k: usize, n: usize, why: String },
    #[error("{0}")]
    Dataflow(String),
    #[error("GEMM {m}x{k}x{n} does not fit: {why}")]
    TooLarge { m: usize, k: usize, n: usize, why: String },
    #[error("node `{node}` ({op}): {why}")]
    Unsupported { node: String, op: String, why: String },
}

/// Names of the GEMM program's tensors.
pub const INPUT: &str = "a";
pub const OUTPUT: &str = "c";

fn align(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}

/// Packs per-column bias and scale as a `GemmOut::Int8` schedule loads
/// them: per `dim` columns (an accumulator row), one row of bias and one
/// of float32 scale bits.
pub fn pack_params(bias: &[i32], scale: &[f32], dim: usize) -> Vec<u8> {
    let n = bias.len();
    let mut data = Vec::new();
    for j in 0..n.div_ceil(dim) {
        let mut rows = vec![0u8; 2 * dim * 4];
        for c in 0..dim.min(n - j * dim) {
            rows[c * 4..c * 4 + 4].copy_from_slice(&bias[j * dim + c].to_le_bytes());
            rows[(dim + c) * 4..(dim + c) * 4 + 4].copy_from_slice(&scale[j * dim + c].to_bits().to_le_bytes());
        }
        data.extend_from_slice(&rows);
    }
    data
}

/// Lowers a GEMM to a program for `cfg`: code, packed constants, and the
/// tensors `a` (input) and `c` (output).
pub fn lower_gemm(spec: &GemmSpec, cfg: &HwConfig) -> Result<Program, LowerError> {
    lower_gemm_with(spec, cfg, WeightChoice::Auto)
}

/// [`lower_gemm`] with the weight formats `choice` allows (`Dense`: never
/// 2:4 tiles or a compressed stream).
pub fn lower_gemm_with(spec: &GemmSpec, cfg: &HwConfig, choice: WeightChoice) -> Result<Program, LowerError> {
    let (m, k, n) = (spec.m, spec.k, spec.n);
    check_spec(spec)?;
    let dataflow = Dataflow::for_config(cfg)?;
    let usage = GemmUse { m, a_unsigned: spec.input_unsigned, int32_out: matches!(spec.output, GemmOutput::Int32) };
    let weights = dataflow.pack_with(&spec.weights, k, n, usage, cfg, choice);
    // Device memory: code, then constants (weights, parameters), A, C. The
    // stream is emitted with addresses relative to the data and rebased
    // once the code's size is known.
    let mut data = weights.bytes().to_vec();
    let params_addr = align(data.len() as u64, 64);
    data.resize(params_addr as usize, 0);
    let out = match &spec.output {
        GemmOutput::Int32 => GemmOut::Int32,
        GemmOutput::Int8 { bias, scale, zero_point, qmin, qmax } => {
            data.extend(pack_params(bias, scale, cfg.array.cols as usize));
            GemmOut::Int8 { params_addr, zero_point: *zero_point, qmin: *qmin, qmax: *qmax, unsigned: false }
        }
    };
    let a_off = align(data.len() as u64, 4096);
    let out_elem = if matches!(out, GemmOut::Int8 { .. }) { 1 } else { 4 };
    let c_off = align(a_off + (m * k) as u64, 4096);
    let job = GemmJob {
        m,
        a: ASource::Matrix { addr: a_off, stride: k as u64 },
        a_unsigned: spec.input_unsigned,
        weights: &weights,
        weights_addr: 0,
        out,
        c: OutRows::dense(c_off, (n * out_elem) as u64),
    };
    let mut program = dataflow.emit(&job, cfg)?;
    program.push(Instr::Finish(ins::Finish::default()));
    let data_addr = align(program.len() as u64 * ins::INSTR_BYTES as u64, 4096);
    let mem_bytes = align(data_addr + c_off + (m * n * out_elem) as u64, 4096);
    if mem_bytes > cfg.dram_bytes() || mem_bytes > u32::MAX as u64 {
        return Err(LowerError::TooLarge {
            m,
            k,
            n,
            why: format!("needs {mem_bytes} bytes of device memory, the config has {}", cfg.dram_bytes()),
        });
    }
    rebase_dram(&mut program, data_addr);
    let (a_addr, c_addr) = (data_addr + a_off, data_addr + c_off);

    let (out_dtype, scale_zp) = match out {
        GemmOut::Int32 => (DType::I32, None),
        GemmOut::Int8 { zero_point, .. } => (DType::I8, Some(zero_point)),
    };
    let meta = ProgramMeta {
        producer: "systole compiler: gemm".into(),
        source: format!("gemm {m}x{k}x{n}"),
        ..ProgramMeta::default()
    };
    Ok(Program {
        fingerprint: cfg.fingerprint(),
        config_name: cfg.name.clone(),
        code_addr: 0,
        code: program,
        data_addr,
        data,
        mem_bytes,
        tensors: vec![
            TensorInfo::row_major(
                INPUT,
                TensorRole::Input,
                if spec.input_unsigned { DType::U8 } else { DType::I8 },
                m,
                k,
                a_addr,
            ),
            TensorInfo {
                zero_point: scale_zp,
                ..TensorInfo::row_major(OUTPUT, TensorRole::Output, out_dtype, m, n, c_addr)
            },
        ],
        meta,
    })
}

/// Moves every DRAM address of the stream's LOADs and STOREs up by `by`:
/// streams are emitted with addresses relative to their data, which is
/// placed after the code once the code's size is known.
/// A LOAD of `rows` post-processor parameter rows (int32, `width` a row,
/// contiguous in DRAM at `dram`) into the accumulator at row `acc_row`.
pub fn load_params(dram: u64, rows: u16, width: usize, acc_row: u16, deps: ins::Deps) -> ins::Load {
    ins::Load {
        deps,
        buf: ins::BUF_ACC,
        dram: dram as u32,
        stride: (width * 4) as u32,
        rows,
        cols: width as u16,
        addr: acc_row,
        ..Default::default()
    }
}

pub fn rebase_dram(code: &mut [Instr], by: u64) {
    for i in code.iter_mut() {
        match i {
            Instr::Load(l) => {
                l.dram = (l.dram as u64 + by) as u32;
                // A gather's ids live in the data too.
                if l.idx != isa::instr::IDX_NONE {
                    l.idx_addr = (l.idx_addr as u64 + by) as u32;
                }
            }
            Instr::Store(s) => s.dram = (s.dram as u64 + by) as u32,
            _ => {}
        }
    }
}

fn check_spec(spec: &GemmSpec) -> Result<(), LowerError> {
    let (m, k, n) = (spec.m, spec.k, spec.n);
    let shape = |why: &str| LowerError::Shape { m, k, n, why: why.to_string() };
    if spec.weights.len() != k * n {
        return Err(shape(&format!("weights have {} values, K x N = {}", spec.weights.len(), k * n)));
    }
    if let GemmOutput::Int8 { bias, scale, .. } = &spec.output {
        if bias.len() != n || scale.len() != n {
            return Err(shape("bias and scale need one value per output column"));
        }
    }
    Ok(())
}

/// The plain reference: what the GEMM program must write, as int32
/// accumulators or requantized int8 values (widened to i32).
pub fn reference_gemm(spec: &GemmSpec, a: &[u8]) -> Vec<i32> {
    let (m, k, n) = (spec.m, spec.k, spec.n);
    let mut out = vec![0i32; m * n];
    for i in 0..m {
        for c in 0..n {
            let mut acc = 0i32;
            for kk in 0..k {
                let x = if spec.input_unsigned { a[i * k + kk] as i32 } else { a[i * k + kk] as i8 as i32 };
                acc = acc.wrapping_add(x * spec.weights[kk * n + c] as i32);
            }
            out[i * n + c] = match &spec.output {
                GemmOutput::Int32 => acc,
                GemmOutput::Int8 { bias, scale, zero_point, qmin, qmax } => {
                    isa::numerics::requantize(acc.wrapping_add(bias[c]), scale[c], *zero_point, *qmin, *qmax)
                }
            };
        }
    }
    out
}
