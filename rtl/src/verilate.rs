//! Builds the whole accelerator (`verilog/accel.sv` and its units) for one
//! `HwConfig` into a shared library, on first use, and caches it.
//!
//! The sources are compiled into this crate (`include_str!`), so a built
//! `systole` binary can verilate any configuration wherever it runs. A
//! library is keyed by everything that changes the hardware: the
//! configuration's fingerprint and the RTL parameters (array, buffers, DRAM
//! beat width, memory size), the sources, the Verilator version and the
//! waveform format it can write (none, VCD, FST: each a library of its own,
//! built on first use). It lives in `$SYSTOLE_RTL_CACHE`, else
//! `$XDG_CACHE_HOME/systole/rtl`, else `~/.cache/systole/rtl`. A build goes
//! into a temporary folder renamed into place, so a crashed or concurrent
//! build never leaves a half-written library behind, under a lock file
//! (`<key>.lock`), so that a configuration asked for by several threads or
//! processes at once is built once and the others wait for it.
//!
//! Build steps: `verilator --cc` (with `-G` parameters), then two `g++`
//! at once, each of a unity translation unit (docs/DESIGN.md §9: one unit is
//! ~6x faster to compile than the separate files): the per-cycle code with
//! the ABI wrapper (`cpp/accel_abi.cc`) at -O2, the run-once code at -O0;
//! linked `-shared` with Verilator's runtime.
//! Verilator's runtime objects are cached separately (per Verilator version
//! and tracing), since every configuration shares them.

use isa::HwConfig;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

use crate::sources::{cache_lock, cache_root, fnv1a64, FNV_START, HDL, VERILOG};
pub use crate::sources::{parameters, LOAD_STAGE_BYTES, STORE_STAGE_BYTES};
use crate::waves::WaveFormat;

/// The C++ side of the build, after the HDL in the key's hash (the order the
/// sources were hashed in before the list was split).
const CPP: &[(&str, &str)] =
    &[("accel_abi.h", include_str!("../cpp/accel_abi.h")), ("accel_abi.cc", include_str!("../cpp/accel_abi.cc"))];

fn sources() -> impl Iterator<Item = &'static (&'static str, &'static str)> {
    HDL.iter().chain(CPP)
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "the RTL backend needs Verilator to build configuration `{config}`, but `verilator` could not be run ({why}); \
         install it with `apt-get install -y verilator` (the project is tested with Verilator 5.006)"
    )]
    NoVerilator { config: String, why: String },
    #[error("{step} failed for configuration `{config}`:\n{output}")]
    Step { config: String, step: String, output: String },
    #[error("{0}")]
    Io(String),
}

fn io(what: &str, path: &Path, e: std::io::Error) -> BuildError {
    BuildError::Io(format!("{what} {}: {e}", path.display()))
}

fn run(cmd: &mut Command, step: &str, config: &str) -> Result<(), BuildError> {
    let out = cmd.output().map_err(|e| BuildError::Io(format!("running {step}: {e}")))?;
    if !out.status.success() {
        return Err(BuildError::Step {
            config: config.into(),
            step: step.into(),
            output: format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        });
    }
    Ok(())
}

fn verilator_info(config: &str) -> Result<(String, PathBuf), BuildError> {
    let no = |why: String| BuildError::NoVerilator { config: config.into(), why };
    let version = Command::new("verilator").arg("--version").output().map_err(|e| no(e.to_string()))?;
    let root =
        Command::new("verilator").args(["--getenv", "VERILATOR_ROOT"]).output().map_err(|e| no(e.to_string()))?;
    if !version.status.success() || !root.status.success() {
        return Err(no(String::from_utf8_lossy(&root.stderr).into_owned()));
    }
    Ok((
        String::from_utf8_lossy(&version.stdout).trim().to_string(),
        PathBuf::from(String::from_utf8_lossy(&root.stdout).trim()),
    ))
}

/// The C++ flags of every object (part of the cache keys), but for the
/// optimisation level: Verilator's runtime and the per-cycle code at -O2 (the
/// whole accelerator simulates ~20 % faster than at -Os; the bare array alone
/// was fastest at -Os, docs/DESIGN.md §9), the run-once code at -O0.
const CXXFLAGS: &[&str] = &[
    "-std=c++17",
    "-fPIC",
    "-pthread",
    "-faligned-new",
    "-w",
    "-DVM_COVERAGE=0",
    "-DVM_SC=0",
    "-DVL_IGNORE_UNKNOWN_ARCH",
];

/// Verilator's runtime as position-independent objects, built once per
/// Verilator version and waveform format.
fn runtime_objects(
    root: &Path,
    version: &str,
    waves: Option<WaveFormat>,
    config: &str,
) -> Result<Vec<PathBuf>, BuildError> {
    // The key of the VCD and no-waves runtimes predates FST; kept so their caches stay valid.
    let trace = match waves {
        None => "false",
        Some(WaveFormat::Vcd) => "true",
        Some(WaveFormat::Fst) => "fst",
    };
    let key = fnv1a64(format!("{version};trace={trace};{} {FAST_OPT}", CXXFLAGS.join(" ")).as_bytes(), FNV_START);
    let dir = cache_root().join(format!("runtime-{key:016x}"));
    let mut sources = vec!["verilated.cpp", "verilated_threads.cpp"];
    match waves {
        None => {}
        Some(WaveFormat::Vcd) => sources.push("verilated_vcd_c.cpp"),
        Some(WaveFormat::Fst) => sources.push("verilated_fst_c.cpp"),
    }
    let objs: Vec<PathBuf> = sources.iter().map(|s| dir.join(s.replace(".cpp", ".o"))).collect();
    if objs.iter().all(|o| o.exists()) {
        return Ok(objs);
    }
    // Configurations built at once (threads of one process share its id,
    // and so the temporary folder's name) build the runtime one at a time.
    let _lock = cache_lock(&cache_root(), &format!("runtime-{key:016x}"), || {});
    if objs.iter().all(|o| o.exists()) {
        return Ok(objs);
    }
    let tmp = cache_root().join(format!("runtime-{key:016x}.tmp-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| io("creating", &tmp, e))?;
    let mut children = Vec::new();
    for s in &sources {
        let mut cmd = Command::new("g++");
        cmd.args(CXXFLAGS)
            .arg(FAST_OPT)
            .args(trace_defines(waves))
            .arg("-I")
            .arg(root.join("include"))
            .arg("-I")
            .arg(root.join("include/vltstd"))
            .arg("-c")
            .arg(root.join("include").join(s))
            .arg("-o")
            .arg(tmp.join(s.replace(".cpp", ".o")));
        children.push((s, cmd.output()));
    }
    for (s, out) in children {
        let out = out.map_err(|e| BuildError::Io(format!("running g++: {e}")))?;
        if !out.status.success() {
            return Err(BuildError::Step {
                config: config.into(),
                step: format!("g++ {s}"),
                output: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
    }
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another build won the race; its objects are as good as ours.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(objs)
}

/// The optimisation levels of the per-cycle code and of the run-once code.
const FAST_OPT: &str = "-O2";

/// `$SYSTOLE_RTL_CXXFLAGS`: g++ flags added after [`FAST_OPT`] for the
/// per-cycle code (a library of their own in the cache), to try compiler
/// options on the simulation's speed without editing this file
/// (`SYSTOLE_RTL_CXXFLAGS="-O3 -march=native" cargo bench --features rtl
/// --bench rtl_gemm`; docs/DESIGN.md §9 has what was measured).
fn extra_fast_flags() -> Vec<String> {
    std::env::var("SYSTOLE_RTL_CXXFLAGS").unwrap_or_default().split_whitespace().map(String::from).collect()
}
const SLOW_OPT: &str = "-O0";

/// Generated C++ that runs once (Verilator's `VM_CLASSES_SLOW` and
/// `VM_SUPPORT_SLOW`: constructors, initial settling, the constant pool).
fn is_slow(file: &Path) -> bool {
    let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    stem.ends_with("__Slow") || stem.ends_with("__Syms") || stem.contains("__ConstPool")
}

/// The preprocessor's view of the waveform format: Verilator's `VM_TRACE*`
/// and the harness's `SYS_TRACE` (0 none, 1 VCD, 2 FST).
fn trace_defines(waves: Option<WaveFormat>) -> Vec<String> {
    let (vcd, fst) = (waves == Some(WaveFormat::Vcd), waves == Some(WaveFormat::Fst));
    vec![
        format!("-DVM_TRACE={}", waves.is_some() as u8),
        format!("-DVM_TRACE_VCD={}", vcd as u8),
        format!("-DVM_TRACE_FST={}", fst as u8),
        format!("-DSYS_TRACE={}", vcd as u8 + 2 * fst as u8),
    ]
}

/// What a build reports as it goes, to whoever shows progress.
#[derive(Clone, Copy, Debug)]
pub enum BuildEvent<'a> {
    /// A build of configuration `config` starts (it is not cached).
    Start { config: &'a str, rows: u32, cols: u32, cache: &'a Path },
    /// The step now running (`verilator`, `g++ ...`).
    Step(&'a str),
    /// The library is built and cached.
    Done { config: &'a str, seconds: f64 },
}

type Observer = Box<dyn FnMut(BuildEvent<'_>) + Send>;

static OBSERVER: Mutex<Option<Observer>> = Mutex::new(None);

/// Sends every later build's events to `observer` instead of the default
/// (a line on stderr when a build starts and when it ends). The CLI shows
/// them as progress, or not at all under `--quiet`.
pub fn set_build_observer(observer: impl FnMut(BuildEvent<'_>) + Send + 'static) {
    if let Ok(mut o) = OBSERVER.lock() {
        *o = Some(Box::new(observer));
    }
}

fn report(event: BuildEvent<'_>) {
    if let Ok(mut o) = OBSERVER.lock() {
        if let Some(f) = o.as_mut() {
            f(event);
            return;
        }
    }
    match event {
        BuildEvent::Start { config, rows, cols, cache } => eprintln!(
            "systole: building the RTL for configuration `{config}` ({rows}x{cols} array; first use, cached in {})",
            cache.display()
        ),
        BuildEvent::Step(_) => {}
        BuildEvent::Done { config, seconds } => eprintln!("systole: built `{config}` in {seconds:.1} s"),
    }
}

/// The library for `cfg` (built now if it is not cached). `waves` builds
/// the variant that can write waveforms in that format. Reports its steps
/// (see [`set_build_observer`]) when it builds.
pub fn library(cfg: &HwConfig, waves: Option<WaveFormat>) -> Result<PathBuf, BuildError> {
    let config = cfg.name.clone();
    let (version, root) = verilator_info(&config)?;
    let params = parameters(cfg);
    let mut h = fnv1a64(version.as_bytes(), FNV_START);
    h = fnv1a64(CXXFLAGS.join(" ").as_bytes(), h);
    h = fnv1a64(format!("fast={FAST_OPT};slow={SLOW_OPT}").as_bytes(), h);
    let extra = extra_fast_flags();
    if !extra.is_empty() {
        // Hashed only when set, so the libraries built without stay cached.
        h = fnv1a64(format!("extra={}", extra.join(" ")).as_bytes(), h);
    }
    for (name, text) in sources() {
        h = fnv1a64(name.as_bytes(), h);
        h = fnv1a64(text.as_bytes(), h);
    }
    for (k, v) in &params {
        h = fnv1a64(format!("{k}={v};").as_bytes(), h);
    }
    h = fnv1a64(
        match waves {
            None => &b"notrace"[..],
            Some(WaveFormat::Vcd) => &b"trace"[..],
            Some(WaveFormat::Fst) => &b"trace-fst"[..],
        },
        h,
    );
    let key = format!("{:016x}-{h:016x}", cfg.fingerprint());
    let dir = cache_root().join(&key);
    let lib = dir.join("libaccel.so");
    if lib.exists() {
        return Ok(lib);
    }
    let t0 = Instant::now();
    report(BuildEvent::Start { config: &config, rows: cfg.array.rows, cols: cfg.array.cols, cache: &dir });
    // One build per library at a time (threads, processes): a second asker
    // waits for the first build and loads its library.
    let _lock =
        cache_lock(&cache_root(), &key, || report(BuildEvent::Step("waiting for another build of this configuration")));
    if lib.exists() {
        report(BuildEvent::Done { config: &config, seconds: t0.elapsed().as_secs_f64() });
        return Ok(lib);
    }
    report(BuildEvent::Step("Verilator's runtime (g++)"));
    let runtime = runtime_objects(&root, &version, waves, &config)?;
    let tmp = dir.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let src = tmp.join("src");
    let obj = tmp.join("obj");
    std::fs::create_dir_all(&src).map_err(|e| io("creating", &src, e))?;
    for (name, text) in sources() {
        std::fs::write(src.join(name), text).map_err(|e| io("writing", &src.join(name), e))?;
    }
    let mut cmd = Command::new("verilator");
    cmd.args([
        "--cc",
        "--top-module",
        "accel",
        "--prefix",
        "Vaccel",
        "-O3",
        "--x-assign",
        "fast",
        "--x-initial",
        "fast",
    ])
    .args(["-Wno-fatal", "-Wno-lint", "-Wno-style"])
    .arg("--Mdir")
    .arg(&obj)
    .arg(format!("-I{}", src.display()));
    match waves {
        None => {}
        Some(WaveFormat::Vcd) => {
            cmd.arg("--trace");
        }
        Some(WaveFormat::Fst) => {
            cmd.arg("--trace-fst");
        }
    }
    for (k, v) in &params {
        cmd.arg(format!("-G{k}={v}"));
    }
    for f in VERILOG {
        cmd.arg(src.join(f));
    }
    report(BuildEvent::Step("verilator"));
    run(&mut cmd, "verilator", &config)?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&obj)
        .map_err(|e| io("listing", &obj, e))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| io("listing", &obj, e))?;
    files.retain(|p| p.extension().is_some_and(|x| x == "cpp"));
    files.sort();
    // Two units compiled at once: the per-cycle code (and the ABI wrapper)
    // at -O2, and what runs once -- constructors, initial settling, the
    // constant pool, Verilator's `__Slow` files, about half the generated
    // C++ -- at -O0, as Verilator's own makefile does (OPT_SLOW).
    let (slow, fast): (Vec<PathBuf>, Vec<PathBuf>) = files.into_iter().partition(|f| is_slow(f));
    let include = |fs: &[PathBuf]| -> String { fs.iter().map(|f| format!("#include \"{}\"\n", f.display())).collect() };
    let units = [
        ("accel_fast", format!("{}#include \"{}\"\n", include(&fast), src.join("accel_abi.cc").display()), FAST_OPT),
        ("accel_slow", include(&slow), SLOW_OPT),
    ];
    let mut children = Vec::new();
    let mut objects = Vec::new();
    report(BuildEvent::Step("g++ (the verilated accelerator)"));
    for (name, text, opt) in &units {
        let unit = tmp.join(format!("{name}.cpp"));
        std::fs::write(&unit, text).map_err(|e| io("writing", &unit, e))?;
        let object = tmp.join(format!("{name}.o"));
        let mut gxx = Command::new("g++");
        gxx.args(CXXFLAGS).arg(opt);
        if *name == "accel_fast" {
            gxx.args(&extra);
        }
        gxx.args(trace_defines(waves))
            .arg("-I")
            .arg(&obj)
            .arg("-I")
            .arg(&src)
            .arg("-I")
            .arg(root.join("include"))
            .arg("-I")
            .arg(root.join("include/vltstd"))
            .arg("-c")
            .arg(&unit)
            .arg("-o")
            .arg(&object)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let child = gxx.spawn().map_err(|e| BuildError::Io(format!("running g++: {e}")))?;
        children.push((*name, child));
        objects.push(object);
    }
    for (name, child) in children {
        let out = child.wait_with_output().map_err(|e| BuildError::Io(format!("running g++: {e}")))?;
        if !out.status.success() {
            return Err(BuildError::Step {
                config: config.clone(),
                step: format!("g++ ({name})"),
                output: format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
            });
        }
    }
    let out = tmp.join("libaccel.so");
    let mut link = Command::new("g++");
    link.args(CXXFLAGS).arg("-shared").args(&objects).args(&runtime).arg("-o").arg(&out).arg("-latomic");
    if waves == Some(WaveFormat::Fst) {
        link.arg("-lz"); // FST's compression
    }
    run(&mut link, "g++ (linking the verilated accelerator)", &config)?;
    // Keep only the library: the generated C++ is large.
    let final_tmp = tmp.with_extension("done");
    let _ = std::fs::remove_dir_all(&final_tmp);
    std::fs::create_dir_all(&final_tmp).map_err(|e| io("creating", &final_tmp, e))?;
    std::fs::rename(&out, final_tmp.join("libaccel.so")).map_err(|e| io("moving", &out, e))?;
    let _ = std::fs::remove_dir_all(&tmp);
    if std::fs::rename(&final_tmp, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&final_tmp);
    }
    report(BuildEvent::Done { config: &config, seconds: t0.elapsed().as_secs_f64() });
    if !lib.exists() {
        return Err(BuildError::Io(format!("{} is missing after the build", lib.display())));
    }
    Ok(lib)
}
