//! `systole compile`: a quantized model (ONNX, or the `.stm` text format)
//! to a `.sbin` program for one hardware configuration.
//!
//! The program's typed metadata carries what `systole run` needs without the
//! model file: the per-layer facts, the configuration and the graph (in
//! binary, for the reference interpreter of `run --check`; its weights refer
//! to the packed ones in the data; `--no-graph` leaves it out).

use super::error::Result;
use super::files::{check_destination, print_stdout, write_atomic};
use super::load;
use super::table::{cells, group, table, Align};
use clap::Args;
use compiler::gemm::WeightChoice;
use compiler::ir::{ElemType, Graph};
use isa::program::TensorRole;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args, Debug)]
pub struct CompileArgs {
    /// Model to compile: a statically quantized ONNX model (.onnx, QOperator
    /// or QDQ form) or a text model (.stm, see compiler/src/text.rs).
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
    /// Hardware configuration to compile for (TOML).
    #[arg(long, value_name = "HW.toml")]
    pub hw: PathBuf,
    /// Program file to write.
    #[arg(short = 'o', long = "output", value_name = "MODEL.sbin")]
    pub output: PathBuf,
    /// Leave the model graph out of the program (its structure, biases and
    /// scales: its weights refer to the packed ones); `run --check` then
    /// has no reference to compare with.
    #[arg(long)]
    pub no_graph: bool,
    /// Compile N inferences into one program: the model's input gets a
    /// leading dimension N (`[N, ...]` in place of `[1, ...]`); every
    /// dense layer is one GEMM over the N rows and every convolution passes
    /// all N images under its weights, each weight tile loaded once for the
    /// whole batch when it stays resident.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=65535))]
    pub batch: u32,
    /// Weight formats the layers may use: `auto` runs every conv and dense
    /// layer whose weights are exactly 2:4 along the reduction (in every
    /// group of 4 consecutive input channels at least 2 zeros) on
    /// 2:4-sparse tiles, when the configuration has `array.sparsity_2_4 =
    /// true`; `dense` keeps every layer's weights int8 dense.
    #[arg(long, value_name = "dense|auto", default_value = "auto", value_parser = ["dense", "auto"])]
    pub weights: String,
}

/// Reads and imports a model into the quantized IR (also used by `sweep`).
pub(crate) fn import(path: &Path) -> Result<Graph> {
    Ok(systole::flow::compile::import(path)?)
}

fn shape_text<T: std::fmt::Display>(shape: &[T]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(", "))
}

fn ms(d: std::time::Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

pub fn run(args: &CompileArgs) -> Result<()> {
    check_destination(&args.output, "output")?;
    systole::flow::compile::format_of(&args.model)?;
    let cfg = load::config(&args.hw)?;
    let model = args.model.display().to_string();

    let t0 = Instant::now();
    let graph = import(&args.model)?;
    let t1 = Instant::now();
    let weights = WeightChoice::parse(&args.weights).expect("clap checked dense|auto");
    let lowered = systole::flow::compile::lower_with(&graph, &cfg, args.batch, !args.no_graph, &model, weights)?;
    let t2 = Instant::now();
    let prog = &lowered.program;
    write_atomic(&args.output, prog.to_bytes())?;

    let mut out = String::new();
    let name = if graph.name.is_empty() { "(unnamed)" } else { graph.name.as_str() };
    let _ = writeln!(
        out,
        "systole compile: model `{name}` ({model}) for config `{}` ({}x{} array, fingerprint {:#018x})",
        cfg.name, cfg.array.rows, cfg.array.cols, prog.fingerprint
    );
    for t in &prog.tensors {
        let dims: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
        let host_float = graph.value(&t.name).is_some_and(|v| graph.values[v].ty == ElemType::F32);
        let quant = match (t.scale, t.zero_point) {
            (Some(s), Some(z)) => format!("{} (scale {s}, zero point {z})", t.dtype),
            _ => t.dtype.to_string(),
        };
        let what = match (t.role, host_float) {
            (TensorRole::Input, true) => format!("f32, quantized on the host to {quant}"),
            (TensorRole::Output, true) => format!("{quant}, dequantized on the host to f32"),
            _ => quant,
        };
        let _ = writeln!(
            out,
            "{:<13} `{}` {} {what}; device layout {} at {:#x}",
            t.role.name(),
            t.name,
            shape_text(&dims),
            t.layout,
            t.addr
        );
    }
    out.push('\n');
    let mut rows = vec![cells(&["layer", "op", "output", "shape", "weights", "MACs", "instructions"])];
    let mut macs = 0u64;
    for l in &lowered.layers {
        macs += l.macs;
        let instrs = if l.first == l.last { "- (a view)".to_string() } else { format!("{}..{}", l.first, l.last) };
        let format = systole::flow::layers::weight_format(prog, l.first, l.last).unwrap_or("-");
        rows.push(vec![
            l.name.clone(),
            l.op.to_string(),
            l.value.clone(),
            shape_text(&l.shape),
            format.to_string(),
            group(l.macs),
            instrs,
        ]);
    }
    rows.push(vec![
        "total".into(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        group(macs),
        String::new(),
    ]);
    let align = [Align::Left, Align::Left, Align::Left, Align::Left, Align::Left, Align::Right, Align::Left];
    out.push_str(&table("  ", &rows, &align));
    out.push('\n');
    let _ = writeln!(
        out,
        "instructions  {} ({} B of code at {:#x})",
        group(prog.code.len() as u64),
        group(prog.code_bytes()),
        prog.code_addr
    );
    let _ = writeln!(
        out,
        "data          {} B at {:#x} (weights, parameters, activation buffers)",
        group(prog.data.len() as u64),
        prog.data_addr
    );
    let _ =
        writeln!(out, "memory        {} B of device memory (window [0, {:#x}))", group(prog.mem_bytes), prog.mem_bytes);
    let _ = writeln!(out, "compile time  {} (import {}, lower {})", ms(t2 - t0), ms(t1 - t0), ms(t2 - t1));
    let _ = writeln!(out, "wrote         {}", args.output.display());
    print_stdout(&out)
}
