//! `systole._systole`: the Python package's native module, a thin shell
//! over `systole::flow` (docs/DESIGN.md §10 "Flow as a library"): every
//! function calls what the command line calls, so both give the same
//! programs, outputs and reports, and fail with the same messages.
//! `systole/__init__.py` re-exports it; docs/python.md is the tutorial.

use numpy::{PyArray1, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};
use std::path::PathBuf;
use systole::flow::backend::Backend;
use systole::flow::check::{recorded_graph, Checker};
use systole::flow::infer::{Batch, HostData};
use systole::flow::layers::from_program;
use systole::flow::report::TensorFile;
use systole::flow::sweep::SweepReport;
use systole::flow::{self, Compiled, FlowError};
use systole::isa::program::{Program as IsaProgram, TensorInfo, TensorRole};
use systole::isa::HwConfig;

create_exception!(
    systole,
    SystoleError,
    PyException,
    "An error of systole: bad input (a model, configuration, program or array that does not fit), a device fault, \
     or a failed check; the message is the command line's."
);
create_exception!(
    systole,
    CheckError,
    SystoleError,
    "A check failed: the device and the reference interpreter (or the model and the RTL) differ (the command line \
     exits 1)."
);

fn py_err(e: FlowError) -> PyErr {
    match e {
        FlowError::Input(m) => SystoleError::new_err(m),
        FlowError::Check(m) => CheckError::new_err(m),
    }
}

fn input_err(message: impl std::fmt::Display) -> PyErr {
    SystoleError::new_err(message.to_string())
}

/// A compiled model: a `.sbin` program with its typed metadata (tensors,
/// layers, the configuration, the graph for `check=True`).
#[pyclass(module = "systole", name = "Program", frozen)]
struct Program {
    prog: IsaProgram,
    /// The program as reports name it: the file it was loaded from, or the
    /// model it was compiled from.
    name: String,
}

fn tensor_dict<'py>(py: Python<'py>, t: &TensorInfo) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("name", &t.name)?;
    d.set_item("shape", t.shape.clone())?;
    d.set_item("dtype", t.dtype.to_string())?;
    d.set_item("scale", t.scale)?;
    d.set_item("zero_point", t.zero_point)?;
    Ok(d)
}

fn json_value<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (text,))
}

#[pymethods]
impl Program {
    /// Writes the program as a `.sbin` file (what `systole compile -o`
    /// writes): to a temporary file beside it, renamed into place once
    /// whole, so a failed save leaves no partial file.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let bytes = self.prog.to_bytes();
        let mut tmp = path.clone().into_os_string();
        tmp.push(format!(".tmp{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        py.detach(|| std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, &path))).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            input_err(format!("cannot write {}: {}", path.display(), flow::files::io_message(&e)))
        })
    }

    /// The `.sbin` file's bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.prog.to_bytes())
    }

    /// The name reports give the program (its file, or its model's).
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The configuration the program was compiled for, as a dict (the TOML's
    /// tables and keys), or None when it records none.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Some(cfg) = &self.prog.meta.config else { return Ok(None) };
        let text = serde_json::to_string(cfg).map_err(input_err)?;
        json_value(py, &text).map(Some)
    }

    /// The configuration fingerprint the program is valid for.
    #[getter]
    fn fingerprint(&self) -> u64 {
        self.prog.fingerprint
    }

    /// The model's input tensors: name, shape, dtype, scale, zero_point.
    #[getter]
    fn inputs<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.tensors(py, TensorRole::Input)
    }

    /// The model's output tensors: name, shape, dtype, scale, zero_point.
    #[getter]
    fn outputs<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.tensors(py, TensorRole::Output)
    }

    fn __repr__(&self) -> String {
        let cfg = self.prog.meta.config.as_ref().map_or_else(|| "?".to_string(), |c| c.name.clone());
        format!(
            "<systole.Program {:?}: {} instructions, config `{cfg}`, fingerprint {:#018x}>",
            self.name,
            self.prog.code.len(),
            self.prog.fingerprint
        )
    }
}

impl Program {
    fn tensors<'py>(&self, py: Python<'py>, role: TensorRole) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.prog.tensors.iter().filter(|t| t.role == role).map(|t| tensor_dict(py, t)).collect()
    }
}

/// `hw=`: a TOML file's path, a shipped preset's name (`default`, `tiny`,
/// `large`: as `--hw`), or a dict of the TOML's tables and keys.
fn hw_config(py: Python<'_>, hw: &Bound<'_, PyAny>) -> PyResult<HwConfig> {
    if hw.is_instance_of::<PyDict>() {
        let text: String = py.import("json")?.call_method1("dumps", (hw,))?.extract()?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(input_err)?;
        let cfg: HwConfig = serde_json::from_value(v).map_err(|e| input_err(format!("hw (dict): {e}")))?;
        cfg.validate().map_err(|e| input_err(format!("hw (dict): {e}")))?;
        return Ok(cfg);
    }
    let path: PathBuf = hw
        .extract()
        .map_err(|_| input_err("hw: expected a TOML file's path, a preset's name (default, tiny, large) or a dict"))?;
    py.detach(|| flow::hw::config(&path)).map_err(py_err)
}

/// A model argument: an ONNX model's bytes, or a `.onnx` / `.stm` file's path.
enum ModelSource {
    Bytes(Vec<u8>),
    Path(PathBuf),
}

impl ModelSource {
    fn of(model: &Bound<'_, PyAny>) -> PyResult<ModelSource> {
        if let Ok(b) = model.cast::<PyBytes>() {
            return Ok(ModelSource::Bytes(b.as_bytes().to_vec()));
        }
        model
            .extract::<PathBuf>()
            .map(ModelSource::Path)
            .map_err(|_| input_err("model: expected a model file's path (.onnx or .stm) or an ONNX model's bytes"))
    }

    fn name(&self) -> String {
        match self {
            ModelSource::Bytes(_) => "<ONNX bytes>".to_string(),
            ModelSource::Path(p) => p.display().to_string(),
        }
    }

    fn import(&self) -> flow::Result<systole::compiler::ir::Graph> {
        match self {
            ModelSource::Bytes(b) => flow::compile::import_onnx(b, &self.name()),
            ModelSource::Path(p) => flow::compile::import(p),
        }
    }
}

fn compile_source(src: &ModelSource, cfg: &HwConfig, batch: u32, graph: bool) -> flow::Result<Program> {
    let name = src.name();
    let g = src.import()?;
    let lowered = flow::compile::lower(&g, cfg, batch, graph, &name)?;
    Ok(Program { prog: lowered.program, name })
}

/// Compiles a quantized model (an ONNX file or its bytes, or a `.stm` text
/// model) for a hardware configuration, as `systole compile` does.
#[pyfunction]
#[pyo3(signature = (model, hw, *, batch = 1, graph = true))]
fn compile(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    hw: &Bound<'_, PyAny>,
    batch: u32,
    graph: bool,
) -> PyResult<Program> {
    let cfg = hw_config(py, hw)?;
    let src = ModelSource::of(model)?;
    if batch == 0 {
        return Err(input_err("batch: must be at least 1"));
    }
    py.detach(|| compile_source(&src, &cfg, batch, graph)).map_err(py_err)
}

/// Reads a `.sbin` program (a path, or the file's bytes).
#[pyfunction]
fn load(py: Python<'_>, path: &Bound<'_, PyAny>) -> PyResult<Program> {
    if let Ok(b) = path.cast::<PyBytes>() {
        let bytes = b.as_bytes().to_vec();
        let name = "<program bytes>".to_string();
        let prog = py.detach(|| flow::compile::decode_program(&bytes, &name)).map_err(py_err)?;
        return Ok(Program { prog, name });
    }
    let path: PathBuf = path.extract().map_err(|_| input_err("load: expected a .sbin file's path or its bytes"))?;
    let (prog, _) = py.detach(|| flow::compile::read_program(&path)).map_err(py_err)?;
    Ok(Program { prog, name: path.display().to_string() })
}

/// A numpy array's shape and elements (float32, or int8 / uint8 already
/// quantized), in C order whatever its strides.
fn host_array(a: &Bound<'_, PyAny>, what: &str) -> PyResult<(Vec<u64>, HostData)> {
    if let Ok(x) = a.extract::<PyReadonlyArrayDyn<'_, f32>>() {
        return Ok((shape_of(x.shape()), HostData::F32(x.as_array().iter().copied().collect())));
    }
    if let Ok(x) = a.extract::<PyReadonlyArrayDyn<'_, i8>>() {
        return Ok((shape_of(x.shape()), HostData::I8(x.as_array().iter().copied().collect())));
    }
    if let Ok(x) = a.extract::<PyReadonlyArrayDyn<'_, u8>>() {
        return Ok((shape_of(x.shape()), HostData::U8(x.as_array().iter().copied().collect())));
    }
    let kind = match a.getattr("dtype") {
        Ok(d) => format!("a numpy array of {}", d.str()?),
        Err(_) => format!("a {}", a.get_type().name()?),
    };
    Err(input_err(format!(
        "{what}: {kind}; the model takes a numpy array of float32 (quantized on the host; convert with \
         .astype(numpy.float32)) or, already quantized, int8 or uint8 (the model input's own type)"
    )))
}

fn shape_of(shape: &[usize]) -> Vec<u64> {
    shape.iter().map(|&d| d as u64).collect()
}

/// `inputs=`: one array, or a dict holding the model input's name.
fn input_array(inputs: &Bound<'_, PyAny>, tin: &TensorInfo) -> PyResult<(Vec<u64>, HostData, String)> {
    if let Ok(d) = inputs.cast::<PyDict>() {
        let names: Vec<String> = d.keys().iter().map(|k| k.str().map(|s| s.to_string())).collect::<PyResult<_>>()?;
        if names.len() != 1 || names[0] != tin.name {
            return Err(input_err(format!(
                "inputs: the dict's keys are [{}]; the model has one input, `{}`",
                names.join(", "),
                tin.name
            )));
        }
        let a = d.get_item(&tin.name)?.expect("the key is there");
        let what = format!("inputs[{:?}]", tin.name);
        let (shape, data) = host_array(&a, &what)?;
        return Ok((shape, data, what));
    }
    let (shape, data) = host_array(inputs, "inputs")?;
    Ok((shape, data, "inputs".to_string()))
}

fn backend_of(name: &str) -> PyResult<Backend> {
    match name {
        "sim" | "model" => Ok(Backend::Sim),
        "rtl" => Ok(Backend::Rtl),
        "both" => Ok(Backend::Both),
        other => Err(input_err(format!(
            "backend: unknown backend `{other}` (expected `sim` (the Rust model; also `model`), `rtl` or `both`)"
        ))),
    }
}

/// Runs a compiled model (a `Program`, or a model compiled here for `hw`)
/// on numpy inputs as `systole run` does; returns the outputs (name → float32
/// array, with a leading batch dimension when the input had one) and the
/// report (the JSON of `systole run --json`, parsed). The inferences of a
/// batch are spread over `threads` threads (default: every core; the
/// results are the same for any number), as `systole run --threads`.
#[pyfunction]
#[pyo3(signature = (program, inputs, *, hw = None, backend = "sim", check = false, energy_table = None, threads = None))]
#[allow(clippy::too_many_arguments)]
fn run<'py>(
    py: Python<'py>,
    program: &Bound<'py, PyAny>,
    inputs: &Bound<'py, PyAny>,
    hw: Option<&Bound<'py, PyAny>>,
    backend: &str,
    check: bool,
    energy_table: Option<PathBuf>,
    threads: Option<usize>,
) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyAny>)> {
    let backend = backend_of(backend)?;
    let how = match threads {
        None => flow::run::Execution::all_cores(),
        Some(0) => return Err(input_err("threads: must be at least 1")),
        Some(n) => flow::run::Execution { threads: n, trace: false },
    };
    let hw = hw.map(|h| hw_config(py, h)).transpose()?;
    let compiled;
    let p: &Program = match program.cast::<Program>() {
        Ok(p) => p.get(),
        Err(_) => {
            let Some(cfg) = &hw else {
                return Err(input_err("run: a model (not a compiled Program) needs hw= to compile it for"));
            };
            let src = ModelSource::of(program)?;
            compiled = py.detach(|| compile_source(&src, cfg, 1, true)).map_err(py_err)?;
            &compiled
        }
    };
    let (prog, prog_name) = (&p.prog, p.name.as_str());
    // As `run --hw`: only timing may differ; the program's own otherwise.
    let cfg = match hw {
        Some(c) => c,
        None => prog.meta.config.clone().ok_or_else(|| {
            input_err(format!("{prog_name}: the program records no hardware configuration; give one with hw="))
        })?,
    };
    let table = flow::hw::energy_table(energy_table.as_deref()).map_err(py_err)?;
    let tin = flow::run::tensor_with_role(prog, prog_name, TensorRole::Input).map_err(py_err)?.clone();
    let tout = flow::run::tensor_with_role(prog, prog_name, TensorRole::Output).map_err(py_err)?.clone();
    let (shape, data, what) = input_array(inputs, &tin)?;

    let (outputs, out_shape, report) = py
        .detach(|| -> flow::Result<_> {
            let layers = from_program(prog);
            let batch = Batch::new(&shape, data, &tin, &what)?;
            let checker = match check {
                true => Some(Checker::new(recorded_graph(prog, prog_name)?, prog_name, &layers)?),
                false => None,
            };
            let model = Compiled { prog, layers: &layers, cfg: &cfg };
            let measured =
                flow::run::execute(model, prog_name, backend, &batch, checker.as_ref(), how, || {})?.measured;
            let out_shape = flow::run::output_shape(&batch, &tout);
            let files = flow::run::RunFiles {
                input: TensorFile { file: "<array>".into(), tensor: tin.name.clone(), shape: tin.shape.clone() },
                output: TensorFile { file: "<array>".into(), tensor: tout.name.clone(), shape: out_shape.clone() },
            };
            let rep = flow::run::report(model, prog_name, backend, &table, &measured, files, checker.as_ref());
            Ok((measured.outputs, out_shape, rep.to_json()))
        })
        .map_err(py_err)?;
    let dims: Vec<usize> = out_shape.iter().map(|&d| d as usize).collect();
    let array = PyArray1::from_vec(py, outputs).reshape(dims)?;
    let out = PyDict::new(py);
    out.set_item(&tout.name, array)?;
    Ok((out, json_value(py, &report)?))
}

/// A swept value as `--set` writes it: lists joined with `+`, booleans
/// lower case.
fn set_value(v: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(b) = v.extract::<bool>() {
        return Ok(b.to_string());
    }
    if let Ok(l) = v.cast::<PyList>() {
        return Ok(l.iter().map(|x| set_value(&x)).collect::<PyResult<Vec<_>>>()?.join("+"));
    }
    Ok(v.str()?.to_string())
}

/// `set=`: a dict key → values (a list, or one value), or `KEY=V1,V2`
/// strings as `--set` takes them.
fn set_specs(set: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if let Ok(d) = set.cast::<PyDict>() {
        let mut specs = Vec::new();
        for (k, v) in d.iter() {
            // A list holds the values (a list among them is a list value);
            // anything else is the one value.
            let values = match v.cast::<PyList>() {
                Ok(l) => l.iter().map(|x| set_value(&x)).collect::<PyResult<Vec<_>>>()?,
                Err(_) => vec![set_value(&v)?],
            };
            specs.push(format!("{}={}", k.str()?, values.join(",")));
        }
        return Ok(specs);
    }
    if let Ok(s) = set.cast::<PyString>() {
        return Ok(vec![s.to_string()]);
    }
    set.extract::<Vec<String>>().map_err(|_| {
        input_err("set: expected a dict (key -> list of values) or `KEY=V1,V2,...` strings, as `systole sweep --set`")
    })
}

/// Sweeps a model over hardware configurations as `systole sweep` does:
/// the cartesian product of `set` around `hw`, each point compiled and run
/// on the (first) input. Returns the points (the `points` of `systole sweep
/// --json`, parsed).
#[pyfunction]
#[pyo3(signature = (model, hw, set, inputs, *, energy_table = None))]
fn sweep<'py>(
    py: Python<'py>,
    model: &Bound<'py, PyAny>,
    hw: &Bound<'py, PyAny>,
    set: &Bound<'py, PyAny>,
    inputs: &Bound<'py, PyAny>,
    energy_table: Option<PathBuf>,
) -> PyResult<Bound<'py, PyAny>> {
    let base = hw_config(py, hw)?;
    let table = flow::hw::energy_table(energy_table.as_deref()).map_err(py_err)?;
    let specs = set_specs(set)?;
    let src = ModelSource::of(model)?;
    let (params, total) = flow::sweep::params(&specs, &base).map_err(py_err)?;
    let graph = py.detach(|| src.import()).map_err(py_err)?;
    let (shape, data, what) = match inputs.cast::<PyDict>() {
        Ok(d) if d.len() == 1 => {
            let (k, v) = d.iter().next().expect("one item");
            let what = format!("inputs[{:?}]", k.str()?.to_string());
            let (s, x) = host_array(&v, &what)?;
            (s, x, what)
        }
        _ => {
            let (s, x) = host_array(inputs, "inputs")?;
            (s, x, "inputs".to_string())
        }
    };
    let model_bytes = match &src {
        ModelSource::Bytes(b) => b.clone(),
        ModelSource::Path(p) => std::fs::read(p).map_err(|e| input_err(format!("{}: {e}", p.display())))?,
    };
    // What identifies the input in the sweep's id: its shape and data.
    let mut input_bytes: Vec<u8> = shape.iter().flat_map(|d| d.to_le_bytes()).collect();
    match &data {
        HostData::F32(v) => input_bytes.extend(v.iter().flat_map(|x| x.to_le_bytes())),
        HostData::I8(v) => input_bytes.extend(v.iter().map(|&x| x as u8)),
        HostData::U8(v) => input_bytes.extend_from_slice(v),
    }
    let area = flow::sweep::AreaSource::Model;
    let info = flow::sweep::Info {
        model: src.name(),
        model_name: graph.name.clone(),
        hw: base.name.clone(),
        base_config: base.name.clone(),
        input: what.clone(),
        energy_table: table.name.clone(),
        area_source: area,
        sweep_id: flow::sweep::sweep_id(&model_bytes, &input_bytes, &base, &table, area, &params),
        points_total: total,
        shard: None,
    };
    let opts = flow::sweep::Options { jobs: flow::run::available_threads(), shard: None, area };
    let text = py
        .detach(|| -> flow::Result<String> {
            let job =
                flow::sweep::Job { graph: &graph, base: &base, table: &table, shape: &shape, data: &data, what: &what };
            let s = flow::sweep::run(&job, info, params, &opts, Vec::new(), &mut |_| {})?;
            Ok(SweepReport::new(&s).to_json())
        })
        .map_err(py_err)?;
    json_value(py, &text)?.get_item("points")
}

/// `labels=`: a numpy array of integer class indices, as i64.
fn label_array(a: &Bound<'_, PyAny>) -> PyResult<(Vec<u64>, Vec<i64>)> {
    macro_rules! try_int {
        ($($t:ty),*) => {$(
            if let Ok(x) = a.extract::<PyReadonlyArrayDyn<'_, $t>>() {
                return Ok((shape_of(x.shape()), x.as_array().iter().map(|&v| i64::from(v)).collect()));
            }
        )*};
    }
    try_int!(i64, i32, i16, i8, u8);
    Err(input_err("labels: expected a numpy array of integer class indices (int64, int32, ...), one per sample"))
}

/// Compares a base model with its variants on the same samples as
/// `systole compare` does: a float ONNX model on the host's float
/// reference, quantized ones compiled for `hw` and run on the
/// cycle-accurate model. `inputs` is a float32 array `[N, ...]`, each
/// sample reshaped to every model's input; `labels` (integers `[N]`) adds
/// top-1 accuracy. Returns the comparison (the JSON of `systole compare
/// --json`, parsed).
#[pyfunction]
#[pyo3(signature = (models, hw, inputs, *, labels = None, energy_table = None))]
fn compare<'py>(
    py: Python<'py>,
    models: Vec<PathBuf>,
    hw: &Bound<'py, PyAny>,
    inputs: &Bound<'py, PyAny>,
    labels: Option<&Bound<'py, PyAny>>,
    energy_table: Option<PathBuf>,
) -> PyResult<Bound<'py, PyAny>> {
    let cfg = hw_config(py, hw)?;
    let table = flow::hw::energy_table(energy_table.as_deref()).map_err(py_err)?;
    let (shape, data) = match host_array(inputs, "inputs")? {
        (shape, HostData::F32(v)) => (shape, v),
        (_, other) => {
            return Err(input_err(format!(
                "inputs: the array is {}; compare takes float32 samples (each model quantizes them with its own \
                 input parameters)",
                other.name()
            )))
        }
    };
    let labels = labels.map(label_array).transpose()?;
    let text = py
        .detach(|| -> flow::Result<String> {
            let paths: Vec<&std::path::Path> = models.iter().map(PathBuf::as_path).collect();
            let job = flow::compare::Job {
                models: &paths,
                cfg: &cfg,
                table: &table,
                samples: flow::compare::Samples { shape: &shape, data: &data, what: "inputs" },
                labels: labels.as_ref().map(|(shape, values)| flow::compare::Labels { values, shape, what: "labels" }),
            };
            Ok(flow::compare::compare(&job, &|| {})?.to_json())
        })
        .map_err(py_err)?;
    json_value(py, &text)
}

/// The shipped hardware configurations `hw=` takes by name.
#[pyfunction]
fn presets() -> Vec<&'static str> {
    flow::hw::PRESETS.iter().map(|(n, _)| *n).collect()
}

#[pymodule]
fn _systole(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("SystoleError", m.py().get_type::<SystoleError>())?;
    m.add("CheckError", m.py().get_type::<CheckError>())?;
    m.add_class::<Program>()?;
    m.add_function(wrap_pyfunction!(compile, m)?)?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(sweep, m)?)?;
    m.add_function(wrap_pyfunction!(compare, m)?)?;
    m.add_function(wrap_pyfunction!(presets, m)?)?;
    Ok(())
}
