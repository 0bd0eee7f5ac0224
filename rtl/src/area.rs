//! Area and FPGA resources from the RTL itself (docs/DESIGN.md §6): the accelerator
//! of one configuration synthesized with yosys (tested with 0.23), costed
//! with the energy table the model uses, next to the model's analytical
//! estimate ([`sim::energy::area`]).
//!
//! Three yosys runs, one at a time, each from the sources compiled into
//! this crate (written to a temporary folder) with the configuration's
//! parameters ([`crate::sources::parameters`]):
//!
//! 1. **elaboration** (`hierarchy; proc; memory_collect`, seconds): the
//!    list of memories. A memory, or the banks of one generate loop together
//!    (the DMA staging buffers are 16 to 128 byte-wide banks), of at least
//!    [`KEEP_MIN_BITS`] stays a memory: the scratchpad, the accumulator and
//!    the staging buffers. Mapping them to flip-flops would cost hours and
//!    gigabytes (the default scratchpad alone is 2 Mbit), and a chip builds
//!    them as SRAM macros. Smaller memories (instruction queues, job and
//!    descriptor tables: register files) become flip-flops, as a chip would
//!    build them.
//! 2. **generic**: yosys' `synth` with only the small memories mapped, and
//!    without the gate-level `opt -fast` before `abc` (abc optimizes the
//!    logic itself: 0.6 % more cells on the 4x4, and that pass alone took a
//!    third of the 16x16's time). The result is a count of generic gates
//!    and flip-flops per module, not flattened.
//! 3. **FPGA** (`synth_xilinx -family xc7`, out of context: `-noiopad
//!    -noclkbuf`): LUT, FF, DSP48E1 and block RAM use. yosys maps every
//!    memory it can to block or distributed RAM (`memory_libmap`); the kept
//!    memories it would build from flip-flops (the multi-ported scratchpad
//!    and accumulator) are counted as RAMB36 equivalents from their shape
//!    ([`ramb36_equivalents`]) instead.
//!
//! Costing (at the configuration's node, the table's area factor):
//! - logic: each generic cell in NAND2 equivalents ([`nand2_equivalents`],
//!   the NanGate FreePDK45 cell areas relative to NAND2_X1) times the
//!   table's `gate_area_um2`;
//! - memories: the SRAM costing of `sim::energy` itself. The scratchpad and
//!   the accumulator are costed exactly as the model costs them (its banks,
//!   [`sim::energy::spad_bank`] / [`sim::energy::acc_bank`]): the RTL builds
//!   each as one memory with a port per client, and the configuration's
//!   banks are what size the macros (ARCHITECTURE.md). Every other kept
//!   memory is one macro ([`sim::energy::sram_bank`]).
//!
//! The result, [`RtlArea`], holds both estimates: the synthesized one (also
//! in the model's parts, [`RtlArea::synthesized`], to use in place of the
//! analytical one, e.g. with [`sim::energy::energy_with_area`]) and the
//! analytical one, with their ratio.
//!
//! Results are cached per synthesis (keyed by the yosys version, the
//! sources and the script, which holds the parameters) under
//! [`crate::sources::cache_root`], so asking again is instant.
//! `$SYSTOLE_YOSYS` names the yosys binary (default: `yosys` on `PATH`).

use crate::sources::{cache_lock, cache_root, fnv1a64, parameters, FNV_START, HDL, TOP, VERILOG};
use isa::HwConfig;
use serde::Serialize;
use sim::energy::{self, AreaReport, EnergyTable};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

/// A memory, or the banks of one generate loop together, of at least this
/// many bits stays a memory (SRAM macros, or block RAM on an FPGA); smaller
/// ones become flip-flops. 16 Kbit (2 KiB) keeps the scratchpad, the
/// accumulator (of any configuration the examples hold) and the DMA staging
/// buffers (4 and 8 KiB); the largest memory it turns into flip-flops is the
/// 8 Kbit instruction queue (32 entries of 256 bits, three read ports).
pub const KEEP_MIN_BITS: u64 = 16384;

/// An FPGA family to report resources for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fpga {
    /// Xilinx 7-series (`synth_xilinx -family xc7`).
    Xilinx,
}

impl Fpga {
    pub fn family(self) -> &'static str {
        match self {
            Fpga::Xilinx => "xc7",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Fpga::Xilinx => "Xilinx 7-series",
        }
    }
}

/// What to synthesize and how.
#[derive(Clone, Debug)]
pub struct Options {
    /// Also synthesize for this FPGA family.
    pub fpga: Option<Fpga>,
    /// Take results from the cache when they are there (they are always
    /// stored, when the cache folder can be written).
    pub cache: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { fpga: Some(Fpga::Xilinx), cache: true }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AreaError {
    #[error(
        "synthesizing configuration `{config}` needs yosys, but `{program}` could not be run ({why}); \
         install it with `apt-get install -y yosys` (the project is tested with yosys 0.23)"
    )]
    NoYosys { config: String, program: String, why: String },
    #[error("yosys ({step}) failed for configuration `{config}`:\n{output}")]
    Yosys { config: String, step: String, output: String },
    #[error("cannot read yosys' {step} report for configuration `{config}`: {why}")]
    Report { config: String, step: String, why: String },
    #[error("{0}")]
    Io(String),
}

fn io(what: &str, path: &Path, e: std::io::Error) -> AreaError {
    AreaError::Io(format!("{what} {}: {e}", path.display()))
}

/// Logic cells of one module (all its instances), excluding memories and
/// submodules.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModuleCells {
    /// The module's name in the Verilog (`accel` is the top).
    pub module: String,
    pub instances: u64,
    /// Generic cells, all instances.
    pub cells: u64,
    /// Of which flip-flops (and latches).
    pub flip_flops: u64,
    pub nand2_equivalents: f64,
    pub area_mm2: f64,
}

/// One memory kept as a memory by the generic synthesis.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Memory {
    pub module: String,
    pub name: String,
    pub instances: u64,
    pub words: u64,
    pub width_bits: u64,
    pub read_ports: u64,
    pub write_ports: u64,
    /// How its area was costed.
    pub costed_as: String,
    /// All instances.
    pub area_mm2: f64,
}

/// The generic synthesis.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Generic {
    /// Wall time of the synthesis (when it ran, not when cached).
    pub seconds: f64,
    pub cached: bool,
    /// Generic logic cells (gates and flip-flops), all modules.
    pub cells: u64,
    pub flip_flops: u64,
    pub nand2_equivalents: f64,
    /// Per module, in hierarchy order (the top last).
    pub modules: Vec<ModuleCells>,
    /// Kept memories.
    pub memories: Vec<Memory>,
    /// Every cell type of the whole design and its count (memories
    /// included as `$mem_v2`).
    pub cell_types: BTreeMap<String, u64>,
    /// Cell types with no known cost (counted as one NAND2 each).
    pub uncosted: Vec<String>,
}

/// A memory yosys would have built from flip-flops on the FPGA, counted as
/// block RAM from its shape instead.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CountedRam {
    pub module: String,
    pub name: String,
    pub instances: u64,
    pub words: u64,
    pub width_bits: u64,
    pub read_ports: u64,
    pub write_ports: u64,
    /// RAMB36 equivalents, all instances (a RAMB18 is one half).
    pub ramb36: f64,
    /// The block RAM shape used, e.g. `RAMB36 1Kx36 x 4`.
    pub shape: String,
}

/// FPGA resources.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FpgaResources {
    pub family: String,
    pub seconds: f64,
    pub cached: bool,
    /// LUTs used as logic (LUT1..LUT6).
    pub luts: u64,
    /// LUTs used as distributed RAM (LUT equivalents of the RAM* cells).
    pub lutram_luts: u64,
    /// LUTs used as shift registers.
    pub srl_luts: u64,
    /// Flip-flops (FDRE, FDSE, FDCE, FDPE; latches).
    pub ffs: u64,
    pub carry4: u64,
    pub dsps: u64,
    /// Block RAM mapped by yosys, RAMB36 equivalents.
    pub bram_mapped: f64,
    /// Block RAM counted from the shape of the memories yosys would have
    /// built from flip-flops, RAMB36 equivalents.
    pub bram_counted: f64,
    /// `bram_mapped + bram_counted`.
    pub bram: f64,
    /// How the block RAM was found, in words.
    pub bram_method: String,
    pub counted_rams: Vec<CountedRam>,
    /// How yosys mapped each memory.
    pub memory_mapping: Vec<MemoryMapping>,
    pub cell_types: BTreeMap<String, u64>,
}

/// Where one memory went on the FPGA.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MemoryMapping {
    /// `module.memory`.
    pub memory: String,
    pub mapped_to: String,
}

/// The area of a configuration from its RTL, with the model's estimate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RtlArea {
    pub config: String,
    /// `yosys -V`.
    pub yosys: String,
    pub node_nm: u32,
    /// Energy/area table the costs came from.
    pub table: String,
    /// One NAND2 equivalent at the node, µm².
    pub gate_area_um2: f64,
    /// [`KEEP_MIN_BITS`].
    pub keep_min_bits: u64,
    pub generic: Generic,
    pub fpga: Option<FpgaResources>,
    /// Logic cells, mm².
    pub logic_mm2: f64,
    /// Kept memories, mm².
    pub sram_mm2: f64,
    /// The synthesized area in the model's parts: `pe_array` = the `array`
    /// module; `scratchpad` and `accumulator` as the model costs them;
    /// `logic` = every other module plus the other kept memories (the DMA
    /// staging buffers). Its `total` is the chip's area from the RTL.
    pub synthesized: AreaReport,
    /// The model's analytical estimate ([`sim::energy::area`]).
    pub analytical: AreaReport,
    /// `synthesized.total / analytical.total`.
    pub ratio: f64,
}

// ------------------------------------------------------------------ costs

/// NanGate FreePDK45 Open Cell Library (typical), X1 cell areas, µm².
mod nangate45 {
    pub const INV: f64 = 0.532;
    pub const NAND2: f64 = 0.798;
    pub const AND2: f64 = 1.064;
    pub const AOI21: f64 = 1.064;
    pub const AOI22: f64 = 1.330;
    pub const XOR2: f64 = 1.596;
    pub const MUX2: f64 = 1.862;
    pub const DLH: f64 = 2.394;
    pub const DFF: f64 = 4.522;
    pub const DFFR: f64 = 5.320;
    pub const DFFRS: f64 = 6.384;
}

/// Whether a generic cell type holds state.
pub fn is_flip_flop(cell: &str) -> bool {
    let kind = cell_kind(cell).map_or("", |(k, _)| k);
    ["DFF", "SDFF", "ALDFF", "DLATCH"].iter().any(|p| kind.starts_with(p)) || kind == "SR"
}

/// `$_SDFFE_PP0P_` -> (`SDFFE`, `PP0P`).
fn cell_kind(cell: &str) -> Option<(&str, &str)> {
    let name = cell.strip_prefix("$_")?.strip_suffix('_')?;
    Some(name.split_once('_').unwrap_or((name, "")))
}

/// The area of one generic yosys gate-level cell in NAND2 equivalents: the
/// NanGate FreePDK45 X1 cell of the same function over NAND2_X1. yosys'
/// two-input gates with an inverted input (`ANDNOT`, `ORNOT`) are costed as
/// AND2; a flip-flop with an enable as a flip-flop and a MUX2, with a
/// synchronous reset as one and an AND2, with an asynchronous reset as
/// DFFR_X1. `None` for a cell that is not a generic gate.
pub fn nand2_equivalents(cell: &str) -> Option<f64> {
    use nangate45::*;
    let (kind, pol) = cell_kind(cell)?;
    // Flip-flop types carry the reset polarity and value in their suffix:
    // `$_DFF_P_` (none) vs `$_DFF_PN0_` (asynchronous reset).
    let area = match kind {
        "BUF" => NAND2,
        "NOT" => INV,
        "NAND" | "NOR" => NAND2,
        "AND" | "OR" | "ANDNOT" | "ORNOT" => AND2,
        "XOR" | "XNOR" => XOR2,
        "MUX" | "NMUX" => MUX2,
        "MUX4" => 3.0 * MUX2,
        "MUX8" => 7.0 * MUX2,
        "MUX16" => 15.0 * MUX2,
        "AOI3" | "OAI3" => AOI21,
        "AOI4" | "OAI4" => AOI22,
        "DFF" if pol.len() == 3 => DFFR,
        "DFF" => DFF,
        "DFFE" if pol.len() == 4 => DFFR + MUX2,
        "DFFE" => DFF + MUX2,
        "SDFF" => DFF + AND2,
        "SDFFE" | "SDFFCE" => DFF + AND2 + MUX2,
        "DFFSR" | "ALDFF" => DFFRS,
        "DFFSRE" | "ALDFFE" => DFFRS + MUX2,
        "DLATCH" if pol.len() == 3 => DLH + AND2,
        "DLATCH" => DLH,
        "DLATCHSR" => DLH + 2.0 * AND2,
        "SR" => 2.0 * NAND2,
        _ => return None,
    };
    Some(area / NAND2)
}

/// 7-series block RAM shapes (UG473): (words, bits, RAMB36 units); the
/// RAMB18 ones count one half.
const BRAM_SHAPES: &[(u64, u64, f64, &str)] = &[
    (32768, 1, 1.0, "RAMB36 32Kx1"),
    (16384, 2, 1.0, "RAMB36 16Kx2"),
    (8192, 4, 1.0, "RAMB36 8Kx4"),
    (4096, 9, 1.0, "RAMB36 4Kx9"),
    (2048, 18, 1.0, "RAMB36 2Kx18"),
    (1024, 36, 1.0, "RAMB36 1Kx36"),
    (512, 72, 1.0, "RAMB36 512x72"),
    (16384, 1, 0.5, "RAMB18 16Kx1"),
    (8192, 2, 0.5, "RAMB18 8Kx2"),
    (4096, 4, 0.5, "RAMB18 4Kx4"),
    (2048, 9, 0.5, "RAMB18 2Kx9"),
    (1024, 18, 0.5, "RAMB18 1Kx18"),
    (512, 36, 0.5, "RAMB18 512x36"),
];

/// The fewest RAMB36 equivalents that hold one copy of a `words x width`
/// memory (tiled from one shape), and that shape. Port replication for more
/// than two ports is not counted.
pub fn ramb36_equivalents(words: u64, width_bits: u64) -> (f64, String) {
    let mut best = (f64::INFINITY, String::new());
    for &(w, b, units, name) in BRAM_SHAPES {
        let n = words.div_ceil(w) * width_bits.div_ceil(b);
        let cost = n as f64 * units;
        if cost < best.0 {
            best = (cost, format!("{name} x {n}"));
        }
    }
    best
}

/// LUTs of a distributed-RAM or shift-register cell (7-series, UG474).
fn lutram_luts(cell: &str) -> Option<u64> {
    Some(match cell {
        "RAM16X1S" | "RAM32X1S" | "RAM64X1S" | "SRL16E" | "SRLC16E" | "SRLC32E" => 1,
        "RAM16X1D" | "RAM32X1D" | "RAM64X1D" | "RAM128X1S" => 2,
        "RAM128X1D" | "RAM256X1S" | "RAM32M" | "RAM64M" => 4,
        _ => return None,
    })
}

// ------------------------------------------------------------- yosys runs

/// The yosys binary: `$SYSTOLE_YOSYS`, else `yosys`.
pub fn yosys_program() -> String {
    std::env::var("SYSTOLE_YOSYS").unwrap_or_else(|_| "yosys".to_string())
}

/// `yosys -V`, or why yosys cannot be run.
pub fn yosys_version(config: &str) -> Result<String, AreaError> {
    let program = yosys_program();
    let no = |why: String| AreaError::NoYosys { config: config.into(), program: program.clone(), why };
    let out = Command::new(&program).arg("-V").output().map_err(|e| no(e.to_string()))?;
    if !out.status.success() {
        return Err(no(format!("`{program} -V` exited with {}", out.status)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The script's start: read the sources, set the parameters.
fn read_script(cfg: &HwConfig) -> String {
    let sets: Vec<String> = parameters(cfg).iter().map(|(k, v)| format!("-set {k} {v}")).collect();
    format!("read_verilog -sv -I . {}\nchparam {} {TOP}\n", VERILOG.join(" "), sets.join(" "))
}

/// What every synthesis reports: its `stat` and its remaining memories.
/// (`dump -m`: with the module's name even when only one module has memories.)
const REPORT: &str = "tee -q -o stat.txt stat\ntee -q -o mem.txt dump -m t:$mem_v2\n";

/// The memories as elaborated, before any optimization.
fn elaborate_script(cfg: &HwConfig) -> String {
    format!("{}hierarchy -check -top {TOP}\nproc\nmemory_collect\n{REPORT}", read_script(cfg))
}

/// `g_bank[12].mem` -> `g_bank[*].mem`: the banks of a generate loop.
pub fn family_name(memory: &str) -> String {
    let mut out = String::new();
    let mut index = false;
    for c in memory.chars() {
        match c {
            '[' => {
                index = true;
                out.push_str("[*");
            }
            ']' => {
                index = false;
                out.push(']');
            }
            _ if !index => out.push(c),
            _ => {}
        }
    }
    out
}

/// `memory_map` of the memories (generate-loop families together) smaller
/// than [`KEEP_MIN_BITS`], by name (`*dma_load/g_bank?*?.mem`: `?` stands
/// for the brackets, which yosys' patterns would read as a character
/// class), or nothing if there are none.
fn map_small(memories: &[DumpedMemory]) -> String {
    let mut families: BTreeMap<(String, String), u64> = BTreeMap::new();
    for m in memories {
        let key = (base_name(&m.module).to_string(), family_name(&m.name));
        *families.entry(key).or_default() += m.words * m.width;
    }
    let small: Vec<String> = families
        .into_iter()
        .filter(|(_, bits)| *bits < KEEP_MIN_BITS)
        .map(|((module, name), _)| format!("*{module}/{}", name.replace(['[', ']'], "?")))
        .collect();
    if small.is_empty() {
        String::new()
    } else {
        format!("memory_map {}\n", small.join(" "))
    }
}

/// yosys' `synth` with only the small memories mapped. Its `fine` label is
/// `opt -fast -full; memory_map; opt -full; techmap; opt -fast; abc -fast;
/// opt -fast`; the `opt -fast` before `abc` is left out (module docs).
fn generic_script(cfg: &HwConfig, map_small: &str) -> String {
    format!(
        "{}synth -top {TOP} -run :fine\nopt -fast -full\n{map_small}opt -full\ntechmap\nabc -fast\nopt -fast\n{REPORT}",
        read_script(cfg)
    )
}

/// `synth_xilinx` with its `map_ffram` label (`opt -fast -full;
/// memory_map`) mapping only the small memories.
fn fpga_script(cfg: &HwConfig, fpga: Fpga, map_small: &str) -> String {
    let synth = format!("synth_xilinx -top {TOP} -family {} -noiopad -noclkbuf", fpga.family());
    format!("{}{synth} -run :map_ffram\nopt -fast -full\n{map_small}{synth} -run fine:\n{REPORT}", read_script(cfg))
}

/// What one synthesis leaves: its `stat` and memory dump, the lines where
/// yosys said how it mapped memories, and its wall time.
struct Run {
    stat: String,
    mem: String,
    mapping: String,
    seconds: f64,
    cached: bool,
}

static TEMP_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(parent: &Path, what: &str) -> Result<TempDir, AreaError> {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = parent.join(format!("{what}.tmp-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| io("creating", &dir, e))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const CACHE_FILES: [&str; 4] = ["stat.txt", "mem.txt", "mapping.txt", "seconds.txt"];

fn read_cached(dir: &Path) -> Option<Run> {
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
    Some(Run {
        stat: read("stat.txt")?,
        mem: read("mem.txt")?,
        mapping: read("mapping.txt")?,
        seconds: read("seconds.txt")?.trim().parse().ok()?,
        cached: true,
    })
}

/// Stores a result in the cache, best effort (a read-only cache only costs
/// time): into a folder of its own, renamed into place, never half-written.
fn store(root: &Path, cached: &Path, h: u64, run: &Run) {
    let Ok(done) = TempDir::new(root, &format!("yosys-{h:016x}-done")) else { return };
    let texts = [&run.stat, &run.mem, &run.mapping, &format!("{}\n", run.seconds)];
    for (f, text) in CACHE_FILES.iter().zip(texts) {
        if std::fs::write(done.0.join(f), text).is_err() {
            return;
        }
    }
    let _ = std::fs::remove_dir_all(cached);
    // A concurrent run may win the race; its result is as good.
    let _ = std::fs::rename(&done.0, cached);
}

/// "9.14. Executing OPT pass (...)." -> "OPT".
fn executing(line: &str) -> Option<&str> {
    let (num, rest) = line.split_once(' ')?;
    if !num.ends_with('.') || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let rest = rest.strip_prefix("Executing ")?;
    Some(rest.split_once(" pass").map_or(rest, |(p, _)| p).trim_end_matches('.'))
}

/// Runs one synthesis script (or takes it from the cache).
fn synthesize(
    config: &str,
    version: &str,
    step: &str,
    script: &str,
    opts: &Options,
    progress: &mut dyn FnMut(&str),
) -> Result<Run, AreaError> {
    let mut h = fnv1a64(version.as_bytes(), FNV_START);
    for (name, text) in HDL {
        h = fnv1a64(name.as_bytes(), h);
        h = fnv1a64(text.as_bytes(), h);
    }
    h = fnv1a64(script.as_bytes(), h);
    let root = cache_root();
    let cached = root.join(format!("yosys-{h:016x}"));
    if opts.cache {
        if let Some(run) = read_cached(&cached) {
            return Ok(run);
        }
    }
    // One synthesis of a script at a time (a sweep's points of the same
    // hardware, tests side by side): a second asker waits for the first
    // and, if it may, takes its result from the cache.
    let _lock = cache_lock(&root, &format!("yosys-{h:016x}"), || {
        progress(&format!("{step}: waiting for another yosys run of the same synthesis"))
    });
    if opts.cache {
        if let Some(run) = read_cached(&cached) {
            return Ok(run);
        }
    }
    let _ = std::fs::create_dir_all(&root);
    // The sources and yosys' outputs go to a folder of the system's.
    let work = TempDir::new(&std::env::temp_dir(), &format!("systole-yosys-{h:016x}"))?;
    for (name, text) in HDL {
        std::fs::write(work.0.join(name), text).map_err(|e| io("writing", &work.0.join(name), e))?;
    }
    let script_path = work.0.join("synth.ys");
    std::fs::write(&script_path, script).map_err(|e| io("writing", &script_path, e))?;
    let stderr_path = work.0.join("stderr.txt");
    let stderr = std::fs::File::create(&stderr_path).map_err(|e| io("creating", &stderr_path, e))?;

    let t0 = Instant::now();
    let program = yosys_program();
    let mut child = Command::new(&program)
        .args(["-Q", "-s", "synth.ys"])
        .current_dir(&work.0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| AreaError::NoYosys { config: config.into(), program: program.clone(), why: e.to_string() })?;
    // Follow the log for progress, the memory mapping and the error context.
    let mut tail: VecDeque<String> = VecDeque::new();
    let mut mapping = String::new();
    let mut reader = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end();
        if let Some(pass) = executing(line) {
            progress(&format!("{step}: {pass}"));
        }
        if line.starts_with("mapping memory ") || line.starts_with("using FF mapping for memory ") {
            mapping.push_str(line);
            mapping.push('\n');
        }
        if tail.len() == 40 {
            tail.pop_front();
        }
        tail.push_back(line.to_string());
    }
    let status = child.wait().map_err(|e| AreaError::Io(format!("waiting for yosys: {e}")))?;
    let seconds = t0.elapsed().as_secs_f64();
    if !status.success() {
        let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        let tail: Vec<String> = tail.into_iter().collect();
        return Err(AreaError::Yosys {
            config: config.into(),
            step: step.into(),
            output: format!("{}\n{}", tail.join("\n"), err.trim_end()),
        });
    }
    let read = |f: &str| std::fs::read_to_string(work.0.join(f)).map_err(|e| io("reading", &work.0.join(f), e));
    let run = Run { stat: read("stat.txt")?, mem: read("mem.txt")?, mapping, seconds, cached: false };
    store(&root, &cached, h, &run);
    Ok(run)
}

// ---------------------------------------------------------------- reports

/// One module's section of `stat`: cell types and counts (submodule
/// instances included, by module name).
#[derive(Debug, Default)]
struct StatModule {
    cells: BTreeMap<String, u64>,
}

/// `stat`'s sections by module name, and the design total (the `design
/// hierarchy` section, or the only module's).
type Stat = (BTreeMap<String, StatModule>, BTreeMap<String, u64>);

fn parse_stat(text: &str) -> Result<Stat, String> {
    let mut modules: BTreeMap<String, StatModule> = BTreeMap::new();
    let mut hierarchy: Option<BTreeMap<String, u64>> = None;
    let mut current: Option<String> = None;
    let mut in_cells = false;
    let mut types = BTreeMap::new();
    let mut flush = |name: &Option<String>, types: &mut BTreeMap<String, u64>| {
        let t = std::mem::take(types);
        match name.as_deref() {
            Some("design hierarchy") => hierarchy = Some(t),
            Some(n) => {
                modules.insert(n.to_string(), StatModule { cells: t });
            }
            None => {}
        }
    };
    for line in text.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("=== ").and_then(|r| r.strip_suffix(" ===")) {
            flush(&current, &mut types);
            current = Some(name.to_string());
            in_cells = false;
        } else if t.starts_with("Number of cells:") {
            in_cells = true;
        } else if in_cells {
            let mut parts = t.split_whitespace();
            match (parts.next(), parts.next().and_then(|n| n.parse::<u64>().ok()), parts.next()) {
                (Some(ty), Some(n), None) => {
                    types.insert(ty.to_string(), n);
                }
                _ => in_cells = false,
            }
        }
    }
    flush(&current, &mut types);
    if modules.is_empty() {
        return Err("no module in `stat`'s output".into());
    }
    let total = match hierarchy {
        Some(t) => t,
        None if modules.len() == 1 => modules.values().next().expect("one module").cells.clone(),
        None => return Err("several modules but no `design hierarchy` section".into()),
    };
    Ok((modules, total))
}

/// The module's name in the Verilog: `$paramod$<hash>\dma_load` ->
/// `dma_load`, `$paramod\vec_unit\COLS=s32'..100` -> `vec_unit` (yosys
/// spells out short parameter lists after the name).
fn base_name(module: &str) -> &str {
    match module.strip_prefix("$paramod") {
        Some(rest) => rest.split('\\').nth(1).unwrap_or(module),
        None => module.trim_start_matches('\\'),
    }
}

/// How many times each module is instantiated, from the top down.
fn instances(modules: &BTreeMap<String, StatModule>) -> Result<BTreeMap<String, u64>, String> {
    let top = modules
        .keys()
        .find(|m| base_name(m) == TOP)
        .ok_or_else(|| format!("no module `{TOP}` in `stat`'s output"))?
        .clone();
    let mut count: BTreeMap<String, u64> = BTreeMap::new();
    // Depth-first, multiplying counts along the path (the hierarchy is a DAG).
    fn visit(m: &str, k: u64, modules: &BTreeMap<String, StatModule>, count: &mut BTreeMap<String, u64>, depth: u32) {
        *count.entry(m.to_string()).or_default() += k;
        if depth > 64 {
            return;
        }
        if let Some(sm) = modules.get(m) {
            for (ty, n) in &sm.cells {
                if modules.contains_key(ty) {
                    visit(ty, k * n, modules, count, depth + 1);
                }
            }
        }
    }
    visit(&top, 1, modules, &mut count, 0);
    Ok(count)
}

/// One `$mem_v2` cell of a `dump`.
#[derive(Debug, Default, Clone)]
struct DumpedMemory {
    module: String,
    name: String,
    words: u64,
    width: u64,
    read_ports: u64,
    write_ports: u64,
}

fn parse_memories(text: &str) -> Vec<DumpedMemory> {
    let mut out = Vec::new();
    let mut module = String::new();
    let mut cur: Option<DumpedMemory> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(m) = t.strip_prefix("module ") {
            module = m.to_string();
        } else if let Some(rest) = t.strip_prefix("cell $mem_v2 ") {
            cur = Some(DumpedMemory { module: module.clone(), name: rest.to_string(), ..Default::default() });
        } else if let (Some(m), Some(p)) = (cur.as_mut(), t.strip_prefix("parameter \\")) {
            let (k, v) = p.split_once(' ').unwrap_or((p, ""));
            let n = v.trim().parse().unwrap_or(0);
            match k {
                "SIZE" => m.words = n,
                "WIDTH" => m.width = n,
                "RD_PORTS" => m.read_ports = n,
                "WR_PORTS" => m.write_ports = n,
                "MEMID" => m.name = v.trim().trim_matches('"').trim_start_matches('\\').to_string(),
                _ => {}
            }
        } else if t == "end" {
            if let Some(m) = cur.take() {
                out.push(m);
            }
        }
    }
    out
}

fn report_error(config: &str, step: &str) -> impl Fn(String) -> AreaError {
    let (config, step) = (config.to_string(), step.to_string());
    move |why| AreaError::Report { config: config.clone(), step: step.clone(), why }
}

/// Module order of the report: the datapath first, the top last.
const MODULE_ORDER: &[&str] = &["array", "requant", "compute", "dma_load", "dma_store", "check", TOP];

fn generic_report(cfg: &HwConfig, table: &EnergyTable, run: &Run) -> Result<(Generic, f64), AreaError> {
    let err = report_error(&cfg.name, "generic synthesis");
    let (modules, total) = parse_stat(&run.stat).map_err(&err)?;
    let count = instances(&modules).map_err(&err)?;
    let gate_mm2 = table.gate_area_um2 * table.node_scale(cfg.tech.node_nm).area * 1e-6;
    let mut uncosted = Vec::new();
    let mut rows = Vec::new();
    for (name, sm) in &modules {
        let k = count.get(name).copied().unwrap_or(0);
        if k == 0 {
            continue;
        }
        let (mut cells, mut ffs, mut ge) = (0, 0, 0.0);
        for (ty, &n) in &sm.cells {
            if modules.contains_key(ty) || ty.starts_with("$mem") {
                continue;
            }
            cells += n;
            if is_flip_flop(ty) {
                ffs += n;
            }
            ge += n as f64
                * nand2_equivalents(ty).unwrap_or_else(|| {
                    if !uncosted.contains(ty) {
                        uncosted.push(ty.clone());
                    }
                    1.0
                });
        }
        let module = base_name(name).to_string();
        rows.push(ModuleCells {
            module,
            instances: k,
            cells: cells * k,
            flip_flops: ffs * k,
            nand2_equivalents: ge * k as f64,
            area_mm2: ge * k as f64 * gate_mm2,
        });
    }
    let rank = |m: &str| MODULE_ORDER.iter().position(|x| *x == m).unwrap_or(MODULE_ORDER.len() - 1);
    rows.sort_by(|a, b| rank(&a.module).cmp(&rank(&b.module)).then(a.module.cmp(&b.module)));
    // Sanity: the per-module sums equal yosys' own design total.
    let cells: u64 = rows.iter().map(|r| r.cells).sum();
    let design_cells: u64 = total.iter().filter(|(t, _)| !t.starts_with("$mem")).map(|(_, n)| n).sum();
    if cells != design_cells {
        return Err(err(format!("the modules' cells sum to {cells}, the design's total is {design_cells}")));
    }

    let mut memories = Vec::new();
    for m in parse_memories(&run.mem) {
        let k = count.get(&m.module).copied().unwrap_or(1);
        let module = base_name(&m.module).to_string();
        let bits = m.words * m.width;
        let (area, how) = if module == TOP && m.name == "spad" && bits == cfg.scratchpad.bytes * 8 {
            let b = &cfg.scratchpad;
            (
                energy::spad_bank(cfg, table).area_mm2 * b.banks as f64,
                format!(
                    "the scratchpad, as the model: {} x {} B, {}-bit port",
                    b.banks,
                    b.bytes / b.banks as u64,
                    m.width
                ),
            )
        } else if module == TOP && m.name == "acc" && bits == cfg.accumulator.bytes * 8 {
            let b = &cfg.accumulator;
            (
                energy::acc_bank(cfg, table).area_mm2 * b.banks as f64,
                format!(
                    "the accumulator, as the model: {} x {} B, {}-bit port",
                    b.banks,
                    b.bytes / b.banks as u64,
                    m.width
                ),
            )
        } else {
            let bank =
                energy::sram_bank(table, bits.div_ceil(8), m.width as u32, cfg.tech.sram_cells, cfg.tech.node_nm);
            (bank.area_mm2 * k as f64, format!("{k} SRAM macro{}", if k == 1 { "" } else { "s" }))
        };
        memories.push(Memory {
            module,
            name: m.name,
            instances: k,
            words: m.words,
            width_bits: m.width,
            read_ports: m.read_ports,
            write_ports: m.write_ports,
            costed_as: how,
            area_mm2: area,
        });
    }
    let n_mem: u64 = total.iter().filter(|(t, _)| t.starts_with("$mem")).map(|(_, n)| n).sum();
    let dumped: u64 = memories.iter().map(|m| m.instances).sum();
    if n_mem != dumped {
        return Err(err(format!("`stat` counts {n_mem} memories, the dump holds {dumped}")));
    }
    let generic = Generic {
        seconds: run.seconds,
        cached: run.cached,
        cells,
        flip_flops: rows.iter().map(|r| r.flip_flops).sum(),
        nand2_equivalents: rows.iter().map(|r| r.nand2_equivalents).sum(),
        modules: rows,
        memories,
        cell_types: total,
        uncosted,
    };
    Ok((generic, gate_mm2))
}

fn fpga_report(cfg: &HwConfig, fpga: Fpga, run: &Run) -> Result<FpgaResources, AreaError> {
    let err = report_error(&cfg.name, "FPGA synthesis");
    let (modules, total) = parse_stat(&run.stat).map_err(&err)?;
    let count = instances(&modules).map_err(&err)?;
    let n = |pred: &dyn Fn(&str) -> bool| total.iter().filter(|(t, _)| pred(t)).map(|(_, n)| n).sum::<u64>();
    let luts = n(&|t| t.len() == 4 && t.starts_with("LUT"));
    let ffs = n(&|t| matches!(t, "FDRE" | "FDSE" | "FDCE" | "FDPE" | "LDCE" | "LDPE"));
    let srl_luts = n(&|t| t.starts_with("SRL"));
    let lutram_luts: u64 = total
        .iter()
        .filter(|(t, _)| t.starts_with("RAM") && !t.starts_with("RAMB"))
        .map(|(t, n)| n * lutram_luts(t).unwrap_or(1))
        .sum();
    let bram_mapped = n(&|t| t.starts_with("RAMB36")) as f64 + 0.5 * n(&|t| t.starts_with("RAMB18")) as f64;
    let mut counted_rams = Vec::new();
    for m in parse_memories(&run.mem) {
        let k = count.get(&m.module).copied().unwrap_or(1);
        let (units, shape) = ramb36_equivalents(m.words, m.width);
        counted_rams.push(CountedRam {
            module: base_name(&m.module).to_string(),
            name: m.name,
            instances: k,
            words: m.words,
            width_bits: m.width,
            read_ports: m.read_ports,
            write_ports: m.write_ports,
            ramb36: units * k as f64,
            shape,
        });
    }
    let bram_counted: f64 = counted_rams.iter().map(|r| r.ramb36).sum();
    let memory_mapping = run
        .mapping
        .lines()
        .filter_map(|l| {
            if let Some(r) = l.strip_prefix("mapping memory ") {
                let (mem, via) = r.split_once(" via ")?;
                let via = via.trim().trim_start_matches("$__XILINX_").trim_end_matches('_');
                let kind = if via.starts_with("LUTRAM") { "distributed RAM" } else { "block RAM" };
                Some(MemoryMapping { memory: short_memory(mem), mapped_to: format!("{kind} ({via})") })
            } else {
                let mem = l.strip_prefix("using FF mapping for memory ")?;
                let name = short_memory(mem);
                let kept = counted_rams.iter().any(|r| format!("{}.{}", r.module, r.name) == name);
                let to = if kept { "kept, counted as block RAM" } else { "flip-flops" };
                Some(MemoryMapping { memory: name, mapped_to: to.to_string() })
            }
        })
        .collect();
    let bram_method = if counted_rams.is_empty() {
        "mapped by yosys (memory_libmap)".to_string()
    } else {
        format!(
            "{bram_mapped} mapped by yosys (memory_libmap) + {bram_counted} counted from the shape of the {} \
             memor{} yosys would have built from flip-flops (one copy each: more than two ports would need \
             replication, not counted)",
            counted_rams.len(),
            if counted_rams.len() == 1 { "y" } else { "ies" }
        )
    };
    Ok(FpgaResources {
        family: fpga.family().to_string(),
        seconds: run.seconds,
        cached: run.cached,
        luts,
        lutram_luts,
        srl_luts,
        ffs,
        carry4: n(&|t| t == "CARRY4"),
        dsps: n(&|t| t.starts_with("DSP48")),
        bram_mapped,
        bram_counted,
        bram: bram_mapped + bram_counted,
        bram_method,
        counted_rams,
        memory_mapping,
        cell_types: total,
    })
}

/// `$paramod$<hash>\dma_store.d_pc` -> `dma_store.d_pc`.
fn short_memory(mem: &str) -> String {
    let mem = mem.trim().trim_end_matches(':');
    mem.rsplit_once('\\').map_or(mem, |(_, m)| m).to_string()
}

/// Synthesizes `cfg` and costs it with `table`; `progress` hears each yosys
/// pass as it starts (`"generic: OPT"`; the FPGA synthesis runs at the same
/// time, its passes are heard once the generic one is done).
pub fn area(
    cfg: &HwConfig,
    table: &EnergyTable,
    opts: &Options,
    progress: &mut dyn FnMut(&str),
) -> Result<RtlArea, AreaError> {
    let version = yosys_version(&cfg.name)?;
    let run = synthesize(&cfg.name, &version, "elaborate", &elaborate_script(cfg), opts, progress)?;
    let map_small = map_small(&parse_memories(&run.mem));
    // The generic and the FPGA syntheses are independent: run at once (each
    // yosys is single-threaded, so on two cores the pair takes the longer
    // one's time, not the sum), the FPGA one on a thread whose passes reach
    // `progress` through a channel.
    let (generic_run, fpga_run) = std::thread::scope(|scope| {
        let (pass_tx, pass_rx) = std::sync::mpsc::channel::<String>();
        let fpga = opts.fpga.map(|f| {
            let script = fpga_script(cfg, f, &map_small);
            let (name, version) = (&cfg.name, &version);
            scope.spawn(move || {
                let mut heard = |pass: &str| {
                    let _ = pass_tx.send(pass.to_string());
                };
                (f, synthesize(name, version, f.family(), &script, opts, &mut heard))
            })
        });
        let generic = synthesize(&cfg.name, &version, "generic", &generic_script(cfg, &map_small), opts, progress);
        // The FPGA passes heard so far, then the rest as they come (the
        // channel closes when that thread ends).
        for pass in pass_rx {
            progress(&pass);
        }
        let fpga = fpga.map(|h| h.join().expect("the FPGA synthesis thread panicked"));
        (generic, fpga)
    });
    let (generic, gate_mm2) = generic_report(cfg, table, &generic_run?)?;
    let fpga = match fpga_run {
        Some((f, run)) => Some(fpga_report(cfg, f, &run?)?),
        None => None,
    };

    let logic_mm2: f64 = generic.modules.iter().map(|m| m.area_mm2).sum();
    let sram_mm2: f64 = generic.memories.iter().map(|m| m.area_mm2).sum();
    let part = |module: &str| generic.modules.iter().filter(|m| m.module == module).map(|m| m.area_mm2).sum::<f64>();
    let mem = |name: &str| {
        generic.memories.iter().filter(|m| m.module == TOP && m.name == name).map(|m| m.area_mm2).sum::<f64>()
    };
    let (pe_array, scratchpad, accumulator) = (part("array"), mem("spad"), mem("acc"));
    // The vector unit: its sequencer and reduction tree, its lanes and their
    // binary32 units (used nowhere else).
    let vector = part("vec_unit")
        + part("vec_lane")
        + generic.modules.iter().filter(|m| m.module.starts_with("fp32_")).map(|m| m.area_mm2).sum::<f64>();
    let total = logic_mm2 + sram_mm2;
    let synthesized = AreaReport {
        table: format!("yosys cells + {}", table.name),
        pe_array,
        scratchpad,
        accumulator,
        logic: total - pe_array - scratchpad - accumulator - vector,
        vector,
        total,
    };
    let analytical = energy::area(cfg, table);
    let ratio = total / analytical.total;
    Ok(RtlArea {
        config: cfg.name.clone(),
        yosys: version,
        node_nm: cfg.tech.node_nm,
        table: table.name.clone(),
        gate_area_um2: gate_mm2 * 1e6,
        keep_min_bits: KEEP_MIN_BITS,
        generic,
        fpga,
        logic_mm2,
        sram_mm2,
        synthesized,
        analytical,
        ratio,
    })
}

// ------------------------------------------------------------ PE variants

/// The array size the PE variants are synthesized at: small enough for a
/// few seconds of yosys, large enough that every PE kind (first row and
/// column, inner, last) is there.
pub const PE_SHAPE: (u32, u32) = (4, 4);

/// One PE variant: the `array` module synthesized alone at [`PE_SHAPE`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeVariant {
    /// `int8`, `int4`, `2:4 int8`.
    pub name: String,
    /// The configuration has this variant (int4 in `array.weight_precisions`,
    /// `array.sparsity_2_4`; int8 always).
    pub in_config: bool,
    /// `array` parameters synthesized (`SPARSE`).
    pub sparse: bool,
    /// The whole array module: generic cells, flip-flops, NAND2 equivalents.
    pub cells: u64,
    pub flip_flops: u64,
    pub nand2_equivalents: f64,
    /// Per PE: the array's cells over its PEs (the edge skew registers
    /// shared out), NAND2 equivalents and µm² at the configuration's node.
    pub per_pe_cells: f64,
    pub per_pe_flip_flops: f64,
    pub per_pe_nand2: f64,
    pub per_pe_um2: f64,
    /// `per_pe_um2` over the int8 PE's, minus 1.
    pub overhead: f64,
    /// What the variant adds, in words.
    pub note: String,
    pub seconds: f64,
    pub cached: bool,
}

/// The PE of the dense int8, int4 and 2:4-sparse arrays from yosys, next to
/// the model's analytical PE (`pe_area_um2`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeArea {
    pub config: String,
    pub yosys: String,
    pub node_nm: u32,
    pub table: String,
    pub gate_area_um2: f64,
    /// The array synthesized, [`PE_SHAPE`].
    pub rows: u32,
    pub cols: u32,
    /// The model's analytical PE (MAC, registers, wiring) at the node, µm².
    pub analytical_pe_um2: f64,
    pub variants: Vec<PeVariant>,
}

/// The `array` module alone with `SPARSE = sparse`, through the generic
/// synthesis of [`generic_script`].
fn pe_script(sparse: bool) -> String {
    let (rows, cols) = PE_SHAPE;
    format!(
        "read_verilog -sv array.sv\nchparam -set ROWS {rows} -set COLS {cols} -set SPARSE {} array\n\
         synth -top array -run :fine\nopt -fast -full\nopt -full\ntechmap\nabc -fast\nopt -fast\n{REPORT}",
        sparse as u8
    )
}

/// Synthesizes the array's PE for the int8, int4 and 2:4 formats
/// (two yosys runs of a [`PE_SHAPE`] array, seconds each, cached) and costs
/// them with `table` at `cfg`'s node. The int4 PE is the int8 one: int4
/// weights are sign-extended at the array's edge (`compute.sv`, one nibble
/// select per column), so the array itself does not change.
pub fn pe_area(
    cfg: &HwConfig,
    table: &EnergyTable,
    opts: &Options,
    progress: &mut dyn FnMut(&str),
) -> Result<PeArea, AreaError> {
    let version = yosys_version(&cfg.name)?;
    let gate_um2 = table.gate_area_um2 * table.node_scale(cfg.tech.node_nm).area;
    let (rows, cols) = PE_SHAPE;
    let pes = (rows * cols) as f64;
    let int4 = cfg.array.weight_precisions.contains(&isa::config::WeightPrecision::Int4);
    let mut synthesized = Vec::new();
    for sparse in [false, true] {
        let step = if sparse { "PE 2:4" } else { "PE int8" };
        let run = synthesize(&cfg.name, &version, step, &pe_script(sparse), opts, progress)?;
        let (_, total) = parse_stat(&run.stat).map_err(report_error(&cfg.name, step))?;
        let (mut cells, mut ffs, mut ge) = (0, 0, 0.0);
        for (ty, &n) in &total {
            cells += n;
            if is_flip_flop(ty) {
                ffs += n;
            }
            ge += n as f64 * nand2_equivalents(ty).unwrap_or(1.0);
        }
        synthesized.push((sparse, cells, ffs, ge, run.seconds, run.cached));
    }
    let dense_um2 = synthesized[0].3 / pes * gate_um2;
    let variant = |name: &str,
                   in_config: bool,
                   (sparse, cells, ffs, ge, seconds, cached): (bool, u64, u64, f64, f64, bool),
                   note: &str| {
        let per_pe_um2 = ge / pes * gate_um2;
        PeVariant {
            name: name.into(),
            in_config,
            sparse,
            cells,
            flip_flops: ffs,
            nand2_equivalents: ge,
            per_pe_cells: cells as f64 / pes,
            per_pe_flip_flops: ffs as f64 / pes,
            per_pe_nand2: ge / pes,
            per_pe_um2,
            overhead: per_pe_um2 / dense_um2 - 1.0,
            note: note.into(),
            seconds,
            cached,
        }
    };
    let variants = vec![
        variant("int8", true, synthesized[0], "8x9-bit multiplier, 32-bit adder, active and shadow weights"),
        variant(
            "int4",
            int4,
            synthesized[0],
            "the int8 PE: int4 weights are sign-extended at the array's edge (one nibble select per column)",
        ),
        variant(
            "2:4 int8",
            cfg.array.sparsity_2_4,
            synthesized[1],
            "4-to-1 input select, 2-bit position (active and shadow), four 9-bit input lanes per row",
        ),
    ];
    Ok(PeArea {
        config: cfg.name.clone(),
        yosys: version,
        node_nm: cfg.tech.node_nm,
        table: table.name.clone(),
        gate_area_um2: gate_um2,
        rows,
        cols,
        analytical_pe_um2: table.pe_area_um2 * table.node_scale(cfg.tech.node_nm).area,
        variants,
    })
}

impl fmt::Display for Fpga {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fpga::Xilinx => "xilinx",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_costs() {
        assert_eq!(nand2_equivalents("$_NAND_"), Some(1.0));
        assert_eq!(nand2_equivalents("$_NOT_"), Some(0.532 / 0.798));
        assert_eq!(nand2_equivalents("$_DFF_P_"), Some(4.522 / 0.798));
        assert_eq!(nand2_equivalents("$_DFF_PN0_"), Some(5.32 / 0.798));
        assert_eq!(nand2_equivalents("$_DFFE_PP_"), Some((4.522 + 1.862) / 0.798));
        assert_eq!(nand2_equivalents("$_DFFE_PN0P_"), Some((5.32 + 1.862) / 0.798));
        assert_eq!(nand2_equivalents("$_SDFFCE_PN0P_"), Some((4.522 + 1.064 + 1.862) / 0.798));
        assert_eq!(nand2_equivalents("$mem_v2"), None);
        assert_eq!(nand2_equivalents("$paramod$abc\\array"), None);
        assert!(is_flip_flop("$_SDFFE_PP0P_") && is_flip_flop("$_DFF_P_") && is_flip_flop("$_DLATCH_P_"));
        assert!(!is_flip_flop("$_MUX_") && !is_flip_flop("$_ANDNOT_"));
    }

    #[test]
    fn module_names_without_yosys_parameter_spellings() {
        assert_eq!(base_name("$paramod$4be94b\\accel"), "accel");
        assert_eq!(base_name("$paramod\\vec_unit\\COLS=s32'00000000000000000000000000000100"), "vec_unit");
        assert_eq!(base_name("$paramod\\qadd\\LATENCY=s32'00000000000000000000000000000001"), "qadd");
        assert_eq!(base_name("vec_lane"), "vec_lane");
        assert_eq!(base_name("\\fp32_fma"), "fp32_fma");
    }

    #[test]
    fn block_ram_shapes() {
        // The default scratchpad, 16384 x 128: 4 x 15 RAMB36 4Kx9 (the
        // parity bits hold data; 2 Mbit / 36 Kbit = 57).
        assert_eq!(ramb36_equivalents(16384, 128), (60.0, "RAMB36 4Kx9 x 60".to_string()));
        // The default accumulator, 1024 x 512: 29 RAMB18 1Kx18 (15 RAMB36
        // 1Kx36 would waste more).
        assert_eq!(ramb36_equivalents(1024, 512), (14.5, "RAMB18 1Kx18 x 29".to_string()));
        // A 512 x 8 staging bank fits one RAMB18.
        assert_eq!(ramb36_equivalents(512, 8).0, 0.5);
    }

    #[test]
    fn stat_and_dump_parse() {
        let stat = "
=== $paramod$aa\\compute ===

   Number of wires:                 10
   Number of cells:                 12
     $_AND_                          3
     $_DFF_P_                        2
     $paramod$bb\\requant             4
     $mem_v2                         1

=== $paramod$bb\\requant ===

   Number of cells:                  5
     $_XOR_                          5

=== $paramod$cc\\accel ===

   Number of cells:                  2
     $_NOT_                          1
     $paramod$aa\\compute             1

=== design hierarchy ===

   $paramod$cc\\accel      1
     $paramod$aa\\compute      1

   Number of cells:                 27
     $_AND_                          3
     $_DFF_P_                        2
     $_NOT_                          1
     $_XOR_                         20
     $mem_v2                         1
";
        let (modules, total) = parse_stat(stat).unwrap();
        assert_eq!(modules.len(), 3);
        assert_eq!(total["$_XOR_"], 20);
        let count = instances(&modules).unwrap();
        assert_eq!(count["$paramod$bb\\requant"], 4);
        assert_eq!(base_name("$paramod$bb\\requant"), "requant");
        let dump = "
module $paramod$aa\\compute
  cell $mem_v2 \\f_pc
    parameter \\MEMID \"\\\\f_pc\"
    parameter \\RD_PORTS 1
    parameter \\SIZE 8
    parameter \\WIDTH 32
    parameter \\WR_PORTS 2
    connect \\RD_DATA \\x
  end
end
";
        let m = parse_memories(dump);
        assert_eq!(m.len(), 1);
        assert_eq!(
            (m[0].name.as_str(), m[0].words, m[0].width, m[0].read_ports, m[0].write_ports),
            ("f_pc", 8, 32, 1, 2)
        );
        assert_eq!(executing("9.14. Executing OPT pass (performing simple optimizations)."), Some("OPT"));
        assert_eq!(executing("Executing OPT pass"), None);
        assert_eq!(short_memory("$paramod$9e\\dma_store.g_bank[0].mem"), "dma_store.g_bank[0].mem");
    }

    #[test]
    fn small_memories_are_mapped_by_family() {
        assert_eq!(family_name("g_bank[12].mem"), "g_bank[*].mem");
        assert_eq!(family_name("spad"), "spad");
        let mem = |module: &str, name: &str, words, width| DumpedMemory {
            module: format!("$paramod$00\\{module}"),
            name: name.into(),
            words,
            width,
            read_ports: 1,
            write_ports: 1,
        };
        // 64 banks of 64 x 8 bits are one 32 Kbit buffer: kept; an 8 Kbit queue is not.
        let mut mems: Vec<DumpedMemory> =
            (0..64).map(|i| mem("dma_load", &format!("g_bank[{i}].mem"), 64, 8)).collect();
        mems.push(mem("accel", "q_instr", 32, 256));
        mems.push(mem("accel", "spad", 16384, 128));
        assert_eq!(map_small(&mems), "memory_map *accel/q_instr\n");
        mems.truncate(16);
        assert_eq!(map_small(&mems), "memory_map *dma_load/g_bank?*?.mem\n");
        assert_eq!(map_small(&mems[..0]), "");
    }
}
