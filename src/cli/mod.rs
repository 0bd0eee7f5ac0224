//! The `systole` command line (docs/DESIGN.md §7): argument definitions and
//! dispatch. Each command lives in its own module; errors are one type,
//! [`CliError`], carrying the message and the exit code.

mod area;
mod asm;
mod compare;
mod compile;
mod disasm;
mod error;
mod files;
mod layers;
mod load;
mod merge;
mod npy;
mod plot;
pub mod progress;
mod regress;
mod report;
mod run;
mod sim;
mod spec;
mod sweep;
mod table;
mod trace;

pub use error::{usage_line, CliError, EXIT_INPUT};

/// The flow's errors keep their exit codes: bad input 2, a failed check 1.
impl From<systole::flow::FlowError> for CliError {
    fn from(e: systole::flow::FlowError) -> CliError {
        match e {
            systole::flow::FlowError::Input(m) => CliError::input(m),
            systole::flow::FlowError::Check(m) => CliError::check(m),
        }
    }
}

use clap::{Parser, Subcommand};

const AFTER_HELP: &str = "\
Exit codes: 0 ok, 1 a check failed, 2 bad input or usage.

Examples:
  systole compile model.onnx --hw examples/hw/default.toml -o model.sbin
  systole run model.sbin --input x.npy --out out/ --check --json report.json
  systole asm gemm.s --hw examples/hw/tiny.toml -o gemm.sbin
  systole disasm gemm.sbin
  systole sim gemm.sbin --hw examples/hw/tiny.toml --load 0x1000=a.npy --dump 0x2000:i32:4x4=c.npy --json report.json
  systole sweep model.onnx --hw examples/hw/default.toml --input x.npy --set array=16,32 --set dram.latency_cycles=50,200
  systole area --hw examples/hw/tiny.toml --json area.json
  systole compare fp32.onnx int8.onnx --hw examples/hw/default.toml --input x.npy --labels y.npy";

#[derive(Parser, Debug)]
#[command(
    name = "systole",
    version,
    about = "Systolic-array accelerator co-design: compile models, assemble, inspect, run and simulate programs",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Show no progress on stderr (otherwise shown for anything that takes
    /// more than a second: a bar on a terminal, a line per 10 % or 5 s when not).
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Compile a quantized model (.onnx or .stm) for a hardware configuration into a .sbin file
    #[command(
        long_about = "Compile a statically quantized model for a hardware configuration into a .sbin file.\n\n\
            MODEL is an ONNX model (.onnx, QOperator or QDQ form, as ONNX Runtime's quantizer \
            writes them) or a text model (.stm, see compiler/src/text.rs; `file(\"w.npy\")` \
            tensors are read relative to the model's directory). The program records the \
            configuration, the per-layer facts and the graph, so `systole run` needs nothing \
            else. An unsupported operator or pattern is an error (exit 2) that names the node.\n\n\
            --batch N compiles N inferences into one program: its input is [N, ...] (the model's \
            [1, ...] with N rows or N images); each dense layer is one GEMM over the N rows and \
            each convolution passes every image under its weights, so a weight tile that stays \
            resident is loaded once per batch; `systole run` then takes an [N, ...] array as one run \
            (or [R, N, ...] for R runs), writes [N, ...] outputs and reports per inference.",
        after_help = "Examples:\n  \
            systole compile digits.onnx --hw examples/hw/default.toml -o digits.sbin\n  \
            systole compile examples/models/tiny_mlp.stm --hw examples/hw/tiny.toml -o mlp.sbin\n  \
            systole compile mlp.onnx --hw examples/hw/default.toml --batch 32 -o mlp32.sbin"
    )]
    Compile(compile::CompileArgs),
    /// Run a compiled model on float inputs (.npy) and report cycles, energy and per-layer figures
    #[command(
        long_about = "Run a compiled model on the cycle-accurate model through the driver, as a host \
            program runs it on hardware.\n\n\
            The input is a float32 .npy of the model input's shape (one inference) or with one more \
            leading dimension (a batch of independent inferences); the host quantizes it with the \
            model's input parameters. The output goes to DIR/<output name>.npy as float32 (stacked \
            for a batch). The report gives totals over the run (cycles, MAC utilization, DRAM \
            traffic, energy by class) and a per-layer table (cycles, MACs, utilization, DRAM bytes, \
            compute- or bandwidth-bound, attributed energy). --check compares every layer's \
            output buffer with the reference interpreter after each inference and fails (exit 1) at \
            the first difference, naming the run, layer, element and tile.\n\n\
            Without --input, one inference runs on generated inputs (seeded: the same everywhere), for \
            performance measurements. --write-baseline records cycles, energy, DRAM bytes and the output's \
            SHA-256; --baseline compares with one and fails (exit 1) naming every metric that regressed \
            beyond --tolerance; --junit writes the comparison for CI.",
        after_help = "Examples:\n  \
            systole run digits.sbin --input x.npy --out out/\n  \
            systole run digits.sbin --input batch.npy --out out/ --check --json report.json\n  \
            systole run digits.sbin --input x.npy --out out/ --hw slow-dram.toml\n  \
            systole run digits.sbin --baseline base.json --tolerance 1% --junit junit.xml"
    )]
    Run(run::RunArgs),
    /// Assemble a program for a hardware configuration into a .sbin file
    #[command(
        long_about = "Assemble a program for a hardware configuration into a .sbin file.\n\n\
            Every instruction is checked against the configuration (buffer ranges, tile \
            shapes); errors name the source line and column. The program records the \
            configuration's fingerprint and may only run on a matching device.",
        after_help = "Examples:\n  \
            systole asm gemm.s --hw examples/hw/tiny.toml -o gemm.sbin\n  \
            systole asm gemm.s --hw examples/hw/tiny.toml -o gemm.sbin --code-addr 0x100000 --mem-bytes 0x200000"
    )]
    Asm(asm::AsmArgs),
    /// Print a .sbin program as assembly, with its layout as comments
    #[command(
        long_about = "Print a .sbin program as assembly text.\n\n\
            A comment block shows the container (versions, fingerprint, sections), the \
            memory layout, the tensor map and the metadata; each instruction is followed \
            by its index. The output re-assembles with `systole asm` to the same code.",
        after_help = "Examples:\n  \
            systole disasm gemm.sbin\n  \
            systole disasm gemm.sbin > gemm.s && systole asm gemm.s --hw examples/hw/tiny.toml -o again.sbin"
    )]
    Disasm(disasm::DisasmArgs),
    /// Run a program on the cycle-accurate model and report performance and energy
    #[command(
        long_about = "Run a .sbin program on the cycle-accurate model through the driver, as a host \
            program runs it on hardware.\n\n\
            Arrays go in with --load (at an address) or --input (into a program tensor) and \
            come out with --dump or --output, as NumPy .npy files. The report gives cycles \
            and time, per-unit busy and stall cycles, MAC utilization, DRAM traffic and \
            bandwidth, buffer accesses, energy by class and area by part. A device fault \
            is an error (exit 2) and writes no output file.",
        after_help = "Examples:\n  \
            systole sim gemm.sbin --hw examples/hw/tiny.toml \\\n      \
            --load 0x1000=a.npy --load 0x1010=w.npy --dump 0x2000:i32:4x4=c.npy\n  \
            systole sim model.sbin --hw examples/hw/default.toml --input a=x.npy --output c=y.npy \\\n      \
            --json report.json --trace trace.json --energy-table my-table.toml"
    )]
    Sim(sim::SimArgs),
    /// Sweep hardware parameters: run a model at every point of a design space and compare cycles, energy and area
    #[command(
        long_about = "A design-space sweep: compile a model for every point of the cartesian product of the \
            --set lists, run the first inference of the input on each through the driver, and compare.\n\n\
            --set KEY=V1,V2,... takes a dotted key of the hardware configuration (e.g. \
            dram.latency_cycles, dram.bytes_per_cycle, scratchpad.bytes, tech.node_nm, clock.mhz; `array` \
            sets array.rows and array.cols together) and the values to sweep it over; repeat it for more \
            keys (the first varies slowest, at most 256 points). Each point is the base configuration with \
            those fields changed; an invalid combination is reported as a row with its validation error. \
            For each point the table gives total cycles, time at the clock, MAC utilization, DRAM bytes, \
            energy (µJ and pJ/MAC) and analytical area, marks the fastest and the lowest-energy point, and \
            checks that the output equals the first point's bit for bit (quantized results do not depend \
            on the hardware). An unknown key is a usage error (exit 2).\n\n\
            Points run --jobs at a time (default: every core) with the same results whatever the count. \
            --shard I/N runs only the points whose number modulo N is I (one job of a CI matrix or array \
            job each); `systole merge` joins the shards' --json files into the unsharded sweep. --resume \
            keeps the points the --json file already holds and keeps it up to date as points finish. \
            The Pareto column marks the points no other beats in cycles, energy and area at once; \
            --area rtl takes each point's area from yosys synthesis (as `systole area`, cached).",
        after_help = "Examples:\n  \
            systole sweep digits.onnx --hw examples/hw/default.toml --input x.npy \\\n      \
            --set array=8,16,32 --set dram.bytes_per_cycle=8 --set dram.latency_cycles=50,100,200\n  \
            systole sweep digits.onnx --hw examples/hw/default.toml --input x.npy \\\n      \
            --set scratchpad.bytes=65536,262144 --set tech.node_nm=45,22 --json sweep.json --csv sweep.csv"
    )]
    Sweep(sweep::SweepArgs),
    /// Synthesize a configuration's RTL with yosys: cells per module, FPGA resources, area in mm² vs the model's
    #[command(
        long_about = "Synthesize the accelerator's RTL for a hardware configuration with yosys and report its \
            area and FPGA resources.\n\n\
            A generic synthesis (yosys `synth`; memories of at least 16 Kbit kept as memories: the \
            scratchpad, the accumulator, the DMA staging buffers) gives the cells and flip-flops per module (array, requant, compute, dma_load, dma_store, check, the top); \
            `synth_xilinx` (--fpga xilinx, the default) gives LUT, FF, DSP and block RAM use. The area in \
            mm² costs the logic in NAND2 equivalents and the memories with the energy table's SRAM figures, \
            at the configuration's node; it replaces the model's analytical estimate, which is printed next \
            to it with their ratio. Synthesis takes minutes (a 16x16 array longer than a 4x4); results are \
            cached per configuration and source ($SYSTOLE_RTL_CACHE, else ~/.cache/systole/rtl). Needs \
            yosys (`apt-get install -y yosys`; $SYSTOLE_YOSYS names another binary): without it, exit 2.\n\n\
            --pe reports the processing element instead: the array module synthesized alone (4x4, seconds) \
            with int8, int4 and 2:4-sparse PEs, per PE in cells, flip-flops, NAND2 equivalents and µm², and \
            each against the int8 PE (the cost of the 2:4 input select, positions and input lanes).",
        after_help = "Examples:\n  \
            systole area --hw examples/hw/tiny.toml\n  \
            systole area --hw examples/hw/default.toml --json area.json\n  \
            systole area --hw examples/hw/default.toml --fpga none --energy-table my-table.toml\n  \
            systole area --hw examples/hw/sparse24.toml --pe --json pe.json"
    )]
    Area(area::AreaArgs),
    /// Join the --json files of a sweep's shards into the whole sweep (table, JSON, CSV)
    #[command(
        long_about = "Join the --json files of the shards of one sweep (`systole sweep --shard I/N`) into the \
            whole sweep: the table, JSON and CSV the unsharded run gives, byte for byte. Files of different \
            sweeps, a point in two files or a point in none are errors (exit 2).",
        after_help = "Examples:\n  \
            systole sweep digits.onnx --hw examples/hw/default.toml --input x.npy --set array=8,16 \\\n      \
            --shard 0/2 --json s0.json   # and --shard 1/2 --json s1.json, elsewhere\n  \
            systole merge s0.json s1.json --json sweep.json --csv sweep.csv"
    )]
    Merge(merge::MergeArgs),
    /// Draw a run or sweep report (--json) as SVG: per-layer bars and a roofline, or the Pareto scatter
    #[command(
        long_about = "Draw a report as SVG.\n\n\
            A `systole run --json` report gives DIR/layers.svg (cycles and energy per layer, as bars) and \
            DIR/roofline.svg (every layer with MACs at its operational intensity, MACs per DRAM data byte, \
            and its achieved MACs per cycle, under the configuration's compute peak and DRAM bandwidth). \
            A `systole sweep --json` report gives DIR/pareto.svg (cycles against energy per point, area as \
            colour, the Pareto-optimal points in cycles, energy and area ringed).",
        after_help = "Examples:\n  \
            systole run digits.sbin --json report.json && systole plot report.json -o plots/\n  \
            systole sweep digits.onnx --hw examples/hw/default.toml --input x.npy --set array=8,16 --json s.json && systole plot s.json"
    )]
    Plot(plot::PlotArgs),
    /// Compare a model with its variants (quantized, pruned, distilled) on the same inputs: accuracy, size, cycles, energy
    #[command(
        long_about = "Compare a base model with its variants on the same inputs.\n\n\
            Every quantized model (.onnx in QOperator or QDQ form, or .stm) is compiled for --hw and runs on the \
            cycle-accurate model, as `systole run` runs it; a float32 .onnx runs on the host's float reference \
            interpreter (its row has accuracy and weight bytes, and `host` for the hardware figures), typically \
            as the base. The variants need not share the base's architecture (a distilled student against its \
            teacher), only the shape of its output.\n\n\
            --input is a float32 array [N, ...]: N samples, each reshaped to every model's input shape, which must \
            hold as many elements (a CNN's [1,1,8,8] and an MLP's [1,64] both take [N,64]); otherwise, or when a \
            model's output shape differs from the base's, the error names the model (exit 2). Per model the table \
            gives top-1 accuracy against --labels (integer class indices [N]), agreement with the base (the \
            fraction of samples with the base's top-1 class, and the mean cosine of the outputs), weight bytes (and \
            their ratio to the base's), the device memory the program uses, and per inference the cycles, \
            latency, energy and DRAM bytes. Every model is compiled before any runs: one that fails names its file \
            (exit 2) and nothing is written.",
        after_help = "Examples:\n  \
            systole compare cnn/fp32.onnx cnn/int8_qdq.onnx cnn/int8_qop.onnx --hw examples/hw/default.toml \\\n      \
            --input test_x.npy --labels test_y.npy --json compare.json --csv compare.csv\n  \
            systole compare cnn/int8_qop.onnx mlp/int8_qop.onnx --hw default --input test_x.npy   # student vs teacher"
    )]
    Compare(compare::CompareArgs),
}

/// Runs a parsed command.
pub fn run(cli: &Cli) -> Result<(), CliError> {
    progress::set_quiet(cli.quiet);
    #[cfg(feature = "rtl")]
    progress::observe_rtl_builds();
    match &cli.command {
        Command::Compile(a) => compile::run(a),
        Command::Run(a) => run::run(a),
        Command::Asm(a) => asm::run(a),
        Command::Disasm(a) => disasm::run(a),
        Command::Sim(a) => sim::run(a),
        Command::Sweep(a) => sweep::run(a),
        Command::Area(a) => area::run(a),
        Command::Merge(a) => merge::run(a),
        Command::Plot(a) => plot::run(a),
        Command::Compare(a) => compare::run(a),
    }
}
