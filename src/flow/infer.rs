//! A batch of inferences of a compiled model through the driver: each
//! input placed, run and read back as `driver::infer` does, optionally
//! checked layer by layer, with the totals a report needs (counters summed
//! over the runs, each layer's cycles, each run's cycles).

use super::backend::Comparison;
use super::check::{Checker, RunInput};
use super::layers::{self, LayerMeta};
use super::{shape_text, Compiled, FlowError, Result, RunNumber};
use driver::{Driver, DriverError, Inference};
use isa::program::{DType, Program, TensorInfo};
use isa::{Counters, Device};

/// A host array's elements, as read from a file.
#[derive(Clone, Debug)]
pub enum HostData {
    F32(Vec<f32>),
    I8(Vec<i8>),
    U8(Vec<u8>),
}

impl HostData {
    pub fn name(&self) -> &'static str {
        match self {
            HostData::F32(_) => "f32",
            HostData::I8(_) => "i8",
            HostData::U8(_) => "u8",
        }
    }
}

/// The inputs of the runs, in the input tensor's logical order.
#[derive(Clone, Debug)]
pub enum Inputs {
    Float(Vec<f32>),
    /// Already quantized (an int8 / uint8 array for a quantized model input).
    Quant(Vec<i32>),
}

/// Inputs checked against a model's input tensor: `runs` inferences of
/// `per_run` elements.
#[derive(Clone, Debug)]
pub struct Batch {
    pub inputs: Inputs,
    pub runs: usize,
    pub per_run: usize,
    /// True when the array has the extra leading (batch) dimension.
    pub batched: bool,
}

impl Batch {
    /// The array `data` of shape `shape` as inputs of tensor `t`: one
    /// inference of `t`'s shape, or a batch of them along one more leading
    /// dimension; float32, or already quantized in `t`'s own type. `what`
    /// names the array in messages.
    pub fn new(shape: &[u64], data: HostData, t: &TensorInfo, what: &str) -> Result<Batch> {
        match (&data, t.dtype) {
            (HostData::F32(_), _) | (HostData::I8(_), DType::I8) | (HostData::U8(_), DType::U8) => {}
            (d, dtype) => {
                return Err(FlowError::input(format!(
                    "{what}: the array is {}; the model takes float32 (quantized on the host) or, already \
                     quantized, {dtype}",
                    d.name()
                )))
            }
        }
        let batched = if shape == t.shape.as_slice() {
            false
        } else if shape.len() == t.shape.len() + 1 && shape[1..] == t.shape[..] {
            true
        } else {
            let mut batch = vec![32];
            batch.extend_from_slice(&t.shape);
            return Err(FlowError::input(format!(
                "{what}: the array's shape is {}, the model's input `{}` has shape {}; give an array of shape {} \
                 (one inference) or N x that, e.g. {} (a batch of N)",
                shape_text(shape),
                t.name,
                shape_text(&t.shape),
                shape_text(&t.shape),
                shape_text(&batch)
            )));
        };
        let runs = if batched { shape[0] as usize } else { 1 };
        if runs == 0 {
            return Err(FlowError::input(format!("{what}: the batch is empty (shape {})", shape_text(shape))));
        }
        let per_run = t.shape.iter().product::<u64>() as usize;
        let inputs = match data {
            HostData::F32(v) => Inputs::Float(v),
            HostData::I8(v) => Inputs::Quant(v.into_iter().map(i32::from).collect()),
            HostData::U8(v) => Inputs::Quant(v.into_iter().map(i32::from).collect()),
        };
        Ok(Batch { inputs, runs, per_run, batched })
    }

    /// Run `k`'s input as the check sees it.
    pub fn run_input(&self, k: usize) -> RunInput<'_> {
        match &self.inputs {
            Inputs::Float(v) => RunInput::Float(&v[k * self.per_run..(k + 1) * self.per_run]),
            Inputs::Quant(_) => RunInput::Quant,
        }
    }

    fn infer<D: Device>(
        &self,
        drv: &mut Driver<D>,
        prog: &Program,
        k: usize,
    ) -> std::result::Result<Inference, DriverError> {
        let range = k * self.per_run..(k + 1) * self.per_run;
        match &self.inputs {
            Inputs::Float(v) => drv.infer(prog, &v[range]),
            Inputs::Quant(v) => drv.infer_quantized(prog, &v[range]),
        }
    }

    fn number(&self, k: usize) -> RunNumber {
        RunNumber { index: k, of: self.runs }
    }
}

/// What a batch of runs measured.
#[derive(Clone, Debug, Default)]
pub struct BatchRun {
    /// The dequantized outputs of the runs, one after the other.
    pub outputs: Vec<f32>,
    /// Every counter summed over the runs.
    pub counters: Counters,
    /// Each layer's cycles summed over the runs.
    pub layer_cycles: Vec<u64>,
    /// Each run's cycles.
    pub run_cycles: Vec<u64>,
}

/// What one run of a batch measured.
struct OneRun {
    counters: Counters,
    layer_cycles: Vec<u64>,
    cycles: u64,
    output: Vec<f32>,
}

impl BatchRun {
    fn new(model: Compiled<'_>, batch: &Batch) -> BatchRun {
        let out_len = model
            .prog
            .tensors
            .iter()
            .find(|t| t.role == isa::program::TensorRole::Output)
            .map_or(0, |t| t.shape.iter().product::<u64>() as usize);
        BatchRun {
            outputs: Vec::with_capacity(batch.runs.saturating_mul(out_len)),
            layer_cycles: vec![0; model.layers.len()],
            run_cycles: Vec::with_capacity(batch.runs),
            ..BatchRun::default()
        }
    }

    /// Adds the next run's figures.
    fn push(&mut self, one: OneRun) {
        for (c, v) in one.counters.iter() {
            self.counters.add(c, v);
        }
        for (sum, c) in self.layer_cycles.iter_mut().zip(one.layer_cycles) {
            *sum += c;
        }
        self.run_cycles.push(one.cycles);
        self.outputs.extend_from_slice(&one.output);
    }
}

/// Run `k` of `batch` on `drv`, checked when there is a checker.
fn run_one<D: Device>(
    drv: &mut Driver<D>,
    model: Compiled<'_>,
    batch: &Batch,
    checker: Option<&Checker>,
    comparison: &Comparison,
    k: usize,
) -> Result<OneRun> {
    let Compiled { prog, layers, .. } = model;
    let inf = batch.infer(drv, prog, k).map_err(|e| {
        comparison.mismatch().unwrap_or_else(|| run_error(e, drv.device_mut(), prog, layers, batch.number(k)))
    })?;
    if let Some(chk) = checker {
        chk.check(drv, model, batch.run_input(k), &inf, batch.number(k))?;
    }
    let layer_cycles = layers::layer_cycles(&inf.report.trace, layers);
    Ok(OneRun { counters: inf.report.counters.clone(), layer_cycles, cycles: inf.report.cycles(), output: inf.output })
}

/// Runs every input of `batch` on the driver's (loaded) program `model`; with a
/// checker, checks each run as soon as it ends. `progress` is called after
/// each run. The first failure ends the batch: a device fault names the
/// run, the instruction and its layer; a lockstep difference of
/// `comparison` is a check failure.
pub fn run_batch<D: Device>(
    drv: &mut Driver<D>,
    model: Compiled<'_>,
    batch: &Batch,
    checker: Option<&Checker>,
    comparison: &Comparison,
    mut progress: impl FnMut(),
) -> Result<BatchRun> {
    let mut r = BatchRun::new(model, batch);
    for k in 0..batch.runs {
        r.push(run_one(drv, model, batch, checker, comparison, k)?);
        progress();
    }
    Ok(r)
}

/// `run_batch` spread over threads, one per driver (each with the program
/// loaded): each takes the next run not yet taken. The result is
/// `run_batch`'s on one driver — the same outputs and per-run figures in
/// the same order, and of several failures, the first run's — because a
/// run's result depends only on the program and its input (a run starts
/// from the state the program sets up, whatever ran on the device before).
pub fn run_batch_parallel<D: Device + Send>(
    drivers: &mut [Driver<D>],
    model: Compiled<'_>,
    batch: &Batch,
    checker: Option<&Checker>,
    progress: impl Fn() + Sync,
) -> Result<BatchRun> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let next = AtomicUsize::new(0);
    // Once a run fails, later runs need not start: the first failure wins.
    let first_failure = AtomicUsize::new(usize::MAX);
    let results: Mutex<Vec<Option<Result<OneRun>>>> = Mutex::new((0..batch.runs).map(|_| None).collect());
    std::thread::scope(|s| {
        for drv in drivers.iter_mut() {
            let (next, first_failure, results, progress) = (&next, &first_failure, &results, &progress);
            s.spawn(move || loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= batch.runs || k > first_failure.load(Ordering::Relaxed) {
                    break;
                }
                let one = run_one(drv, model, batch, checker, &Comparison::default(), k);
                if one.is_err() {
                    first_failure.fetch_min(k, Ordering::Relaxed);
                } else {
                    progress();
                }
                results.lock().expect("no run panics holding the lock")[k] = Some(one);
            });
        }
    });
    let mut r = BatchRun::new(model, batch);
    for one in results.into_inner().expect("the threads are done") {
        // Every run before the first failure ran (runs are taken in order).
        r.push(one.expect("a run before the first failure ran")?);
    }
    Ok(r)
}

/// A driver error during a run, naming the run (counted from 1, when there
/// are several), the instruction and its layer, and — read from the device
/// that faulted — what overwrote the instruction if the program wrote over
/// its own code. `run`, `sim` and `sweep` all say a fault this way.
pub fn run_error<D: Device + ?Sized>(
    e: DriverError,
    dev: &mut D,
    prog: &Program,
    layers: &[LayerMeta],
    run: RunNumber,
) -> FlowError {
    let run = if run.of > 1 { format!("{run}: ") } else { String::new() };
    match e {
        DriverError::Fault { code, pc } => {
            let instr =
                prog.code.get(pc as usize).map_or_else(|| "past the end of the code".to_string(), |i| format!("`{i}`"));
            let layer = layers::layer_of(layers, pc as usize)
                .map_or_else(String::new, |l| format!(" in layer `{}` ({})", l.name, l.op));
            let why = driver::fault::overwritten_code(dev, prog, pc)
                .or_else(|| driver::fault::index_out_of_range(dev, prog, pc))
                .map_or_else(String::new, |o| format!("; {o}"));
            FlowError::input(format!(
                "{run}the device faulted at instruction {pc} ({instr}){layer}: {}{why}",
                code.name()
            ))
        }
        other => FlowError::input(format!("{run}{other}")),
    }
}
