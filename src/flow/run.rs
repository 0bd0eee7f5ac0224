//! `run` as a library: a compiled model on host inputs through the driver,
//! on a backend, optionally checked layer by layer, and its report.
//! `systole run` and the Python package's `run` call these, so they measure
//! and report the same.

use super::backend::{self, Backend};
use super::check::Checker;
use super::infer::{run_batch, run_batch_parallel, Batch, BatchRun};
use super::layers::{attribute, ATTRIBUTION};
use super::report::{CheckSummary, ModelRun, PerInference, Report, TensorFile};
use super::{Compiled, FlowError, Result};
use driver::Driver;
use isa::program::{Program, TensorInfo, TensorRole};
use isa::{Device, InstrTrace};
use sim::energy::EnergyTable;

/// The program's tensor of a role (its input or output); `prog_name` names
/// the program in the error.
pub fn tensor_with_role<'a>(prog: &'a Program, prog_name: &str, role: TensorRole) -> Result<&'a TensorInfo> {
    prog.tensors.iter().find(|t| t.role == role).ok_or_else(|| {
        FlowError::input(format!(
            "{prog_name}: the program has no {role} tensor in its tensor map (is it a compiled model? \
             `systole compile` writes one; for programs from `systole asm` use `systole sim`)"
        ))
    })
}

/// How [`execute`] runs a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Execution {
    /// Threads the inferences are spread over (at least 1; the Rust model
    /// only, the RTL is one device). The results are the same for any number.
    pub threads: usize,
    /// Keep the instruction timeline of the last inference: a trace is of
    /// one device's timeline, so a traced batch runs on one thread.
    pub trace: bool,
}

impl Execution {
    /// One thread per core the process may use, no trace.
    pub fn all_cores() -> Execution {
        Execution { threads: available_threads(), trace: false }
    }
}

/// The threads this process may run at once (at least 1): what `run`,
/// `sweep` and the Python package use unless told otherwise.
pub fn available_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What [`execute`] measured.
pub struct Executed {
    pub measured: BatchRun,
    /// The last inference's instruction timeline, when asked for.
    pub trace: Option<Vec<InstrTrace>>,
}

/// Opens `backend` for the model's configuration, loads the program and runs
/// every input of `batch` (checked with `checker` when given), on up to
/// `how.threads` copies of the Rust model, each taking the next inference
/// (`run_batch_parallel`: the result is the one-thread result);
/// `progress` is called after each inference.
pub fn execute(
    model: Compiled<'_>,
    prog_name: &str,
    backend: Backend,
    batch: &Batch,
    checker: Option<&Checker>,
    how: Execution,
    progress: impl Fn() + Sync,
) -> Result<Executed> {
    let threads = how.threads.clamp(1, batch.runs.max(1));
    if backend == Backend::Sim && threads > 1 && !how.trace {
        let mut drivers = (0..threads)
            .map(|_| loaded(backend::model(model.cfg)?, model.prog, prog_name))
            .collect::<Result<Vec<_>>>()?;
        let measured = run_batch_parallel(&mut drivers, model, batch, checker, progress)?;
        return Ok(Executed { measured, trace: None });
    }
    let (device, comparison) = backend::open(backend, model.cfg, None)?;
    let mut drv = loaded(device, model.prog, prog_name)?;
    let measured = run_batch(&mut drv, model, batch, checker, &comparison, progress)?;
    let trace = how.trace.then(|| drv.device().trace());
    Ok(Executed { measured, trace })
}

/// A driver of `device` with `prog` loaded.
fn loaded<D: Device>(device: D, prog: &Program, prog_name: &str) -> Result<Driver<D>> {
    let mut drv = Driver::new(device);
    drv.load(prog).map_err(|e| FlowError::input(format!("{prog_name}: {e}")))?;
    Ok(drv)
}

/// The outputs' shape: the output tensor's, behind the batch dimension when
/// the input had one.
pub fn output_shape(batch: &Batch, tout: &TensorInfo) -> Vec<u64> {
    let mut shape = Vec::new();
    if batch.batched {
        shape.push(batch.runs as u64);
    }
    shape.extend_from_slice(&tout.shape);
    shape
}

/// Where a run's input came from and its output went, as the report names them.
pub struct RunFiles {
    pub input: TensorFile,
    pub output: TensorFile,
}

/// The report of `measured` (the runs of `batch` of `model` on `backend`):
/// totals, energy from `table`, per inference and per layer, and the check's
/// summary when a checker ran.
pub fn report(
    model: Compiled<'_>,
    prog_name: &str,
    backend: Backend,
    table: &EnergyTable,
    measured: &BatchRun,
    files: RunFiles,
    checker: Option<&Checker>,
) -> Report {
    let runs = measured.run_cycles.len() as u64;
    let counters = &measured.counters;
    let energy = sim::energy::energy(model.cfg, model.prog, counters, table);
    let (mut rows, mut other) = attribute(model, &measured.layer_cycles, runs, counters, &energy);
    let mut rep = Report::new("run", prog_name, backend.name(), model.cfg, counters, &energy, &measured.run_cycles);
    // A batched program makes several inferences a run.
    let per_run = inferences_per_run(model.prog);
    rep.per_inference = PerInference::of_batched(&rep.totals, &measured.run_cycles, per_run);
    for row in rows.iter_mut().chain([&mut other]) {
        row.cycles_per_inference /= per_run as f64;
    }
    rep.model = Some(ModelRun {
        input: files.input,
        output: files.output,
        layers: rows,
        other,
        layer_energy_attribution: ATTRIBUTION,
        check: checker.map(|c| CheckSummary { passed: true, layers: c.layers(), views_skipped: c.views(), runs }),
    });
    rep
}

/// The inferences one run of `prog` makes: for a compiled model (one with
/// layers), the leading (batch) dimension of its input — N for a program
/// compiled with `--batch N`, as the IR's values lead with the batch; 1
/// for an input of rank 1 and for a program without layers (a GEMM's A
/// rows are not inferences).
pub fn inferences_per_run(prog: &Program) -> u64 {
    if prog.meta.layers.is_empty() {
        return 1;
    }
    prog.tensors
        .iter()
        .find(|t| t.role == TensorRole::Input)
        .filter(|t| t.shape.len() >= 2)
        .map_or(1, |t| t.shape[0].max(1))
}

/// [`with_dense_savings`] for a program with host preprocessing (a
/// transformer, `hosted`): the dense program runs on the model with the
/// same named `inputs`.
pub fn with_dense_savings_hosted(
    model: Compiled<'_>,
    graph: &compiler::ir::Graph,
    inputs: &[(String, compiler::npy::Array)],
    table: &EnergyTable,
    rep: &mut Report,
) -> Result<()> {
    let Some(run) = rep.model.as_mut() else { return Ok(()) };
    if !run.layers.iter().any(|l| l.weight_format == Some("i8s24")) {
        return Ok(());
    }
    let dense = compiler::lower::lower_with(graph, model.cfg, compiler::gemm::WeightChoice::Dense)
        .map_err(|e| FlowError::input(format!("the program's graph does not compile with dense weights: {e}")))?;
    let layers = super::layers::from_program(&dense.program);
    let dense_model = Compiled { prog: &dense.program, layers: &layers, cfg: model.cfg };
    let (device, _) = backend::open(Backend::Sim, model.cfg, None)?;
    let mut drv = Driver::new(device);
    drv.load(&dense.program).map_err(|e| FlowError::input(format!("the dense program: {e}")))?;
    let measured = super::hosted::run(&mut drv, dense_model, graph, inputs, false)?.measured;
    let energy = sim::energy::energy(model.cfg, dense_model.prog, &measured.counters, table);
    let runs = measured.run_cycles.len() as u64;
    let (rows, _) = attribute(dense_model, &measured.layer_cycles, runs, &measured.counters, &energy);
    super::layers::fill_savings(&mut run.layers, &rows);
    Ok(())
}

/// When `rep`'s model runs layers on 2:4 tiles and its program records the
/// graph: compiles that graph again with dense weights (`--weights
/// dense`), runs `batch` on the model and fills each 2:4 layer's
/// `saved_vs_dense`. Does nothing otherwise.
pub fn with_dense_savings(model: Compiled<'_>, batch: &Batch, table: &EnergyTable, rep: &mut Report) -> Result<()> {
    let Some(run) = rep.model.as_mut() else { return Ok(()) };
    if !run.layers.iter().any(|l| l.weight_format == Some("i8s24")) || model.prog.meta.graph.is_empty() {
        return Ok(());
    }
    let graph = super::check::recorded_graph(model.prog, "the program")?;
    let dense = compiler::lower::lower_with(&graph, model.cfg, compiler::gemm::WeightChoice::Dense)
        .map_err(|e| FlowError::input(format!("the program's graph does not compile with dense weights: {e}")))?;
    let layers = super::layers::from_program(&dense.program);
    let dense_model = Compiled { prog: &dense.program, layers: &layers, cfg: model.cfg };
    let measured =
        execute(dense_model, "the dense program", Backend::Sim, batch, None, Execution::all_cores(), || {})?.measured;
    let energy = sim::energy::energy(model.cfg, dense_model.prog, &measured.counters, table);
    let runs = measured.run_cycles.len() as u64;
    let (rows, _) = attribute(dense_model, &measured.layer_cycles, runs, &measured.counters, &energy);
    super::layers::fill_savings(&mut run.layers, &rows);
    Ok(())
}
