//! `systole area`: the chip area and FPGA resources of a configuration from
//! its RTL, synthesized with yosys (`rtl::area`), next to the model's
//! analytical estimate. The synthesized area is the one reported as the
//! area; the analytical one is shown for comparison, with their ratio.

use super::error::{CliError, Result};
use super::files::{check_destinations, print_stdout, write_atomic};
use super::load;
use super::progress::Progress;
use super::table::{cells, group, table, Align};
use clap::{Args, ValueEnum};
use rtl::area::{self, Fpga, Memory, Options, PeArea, RtlArea};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct AreaArgs {
    /// Hardware configuration to synthesize (TOML).
    #[arg(long, value_name = "HW.toml")]
    pub hw: PathBuf,
    /// Also write the report as JSON.
    #[arg(long, value_name = "REPORT.json")]
    pub json: Option<PathBuf>,
    /// FPGA family to report LUT/FF/DSP/BRAM use for (`none`: only the
    /// generic synthesis, about half the time).
    #[arg(long, value_enum, default_value_t = FpgaArg::Xilinx)]
    pub fpga: FpgaArg,
    /// Energy and area table (TOML) [default: the built-in 45 nm table,
    /// examples/energy/default-45nm.toml].
    #[arg(long, value_name = "TABLE.toml")]
    pub energy_table: Option<PathBuf>,
    /// Synthesize again even if a cached result exists.
    #[arg(long)]
    pub no_cache: bool,
    /// Report the processing element instead: the array module of the
    /// int8, int4 and 2:4-sparse PEs synthesized alone (a 4x4 array,
    /// seconds), per PE and against the int8 one.
    #[arg(long)]
    pub pe: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FpgaArg {
    /// Xilinx 7-series (yosys `synth_xilinx -family xc7`).
    Xilinx,
    /// No FPGA synthesis.
    None,
}

/// Kept memories, identical copies of a generate loop on one row.
fn memory_rows(memories: &[Memory]) -> Vec<Vec<String>> {
    let mut groups: Vec<(String, &Memory, u64, f64)> = Vec::new();
    for m in memories {
        let name = area::family_name(&m.name);
        let same = |g: &(String, &Memory, u64, f64)| {
            g.0 == name
                && g.1.module == m.module
                && (g.1.words, g.1.width_bits, g.1.read_ports, g.1.write_ports)
                    == (m.words, m.width_bits, m.read_ports, m.write_ports)
        };
        match groups.iter_mut().find(|g| same(g)) {
            Some(g) => {
                g.2 += m.instances;
                g.3 += m.area_mm2;
            }
            None => groups.push((name, m, m.instances, m.area_mm2)),
        }
    }
    groups
        .into_iter()
        .map(|(name, m, n, area)| {
            vec![
                m.module.clone(),
                name,
                n.to_string(),
                format!("{} x {}", m.words, m.width_bits),
                format!("{}/{}", m.read_ports, m.write_ports),
                format!("{area:.4}"),
                if n > 1 && !m.costed_as.contains("model") { format!("{n} SRAM macros") } else { m.costed_as.clone() },
            ]
        })
        .collect()
}

fn report_text(args: &AreaArgs, cfg: &isa::HwConfig, r: &RtlArea) -> String {
    let mut out = String::new();
    let g = &r.generic;
    let when = |seconds: f64, cached: bool| {
        if cached {
            format!("cached; synthesized in {seconds:.1} s")
        } else {
            format!("{seconds:.1} s")
        }
    };
    let _ = writeln!(
        out,
        "systole area: configuration `{}` ({}), {}x{} array, {} nm, table `{}`",
        r.config,
        args.hw.display(),
        cfg.array.rows,
        cfg.array.cols,
        r.node_nm,
        r.table
    );
    let _ = writeln!(out, "yosys         {}", r.yosys);
    out.push('\n');
    let _ = writeln!(
        out,
        "generic cells (yosys `synth`; memories of >= {} Kbit, generate-loop banks together, kept as memories; {})",
        r.keep_min_bits / 1024,
        when(g.seconds, g.cached)
    );
    let mut rows = vec![cells(&["module", "instances", "cells", "flip-flops", "NAND2 eq.", "area mm²"])];
    for m in &g.modules {
        let name = if m.module == rtl::sources::TOP { format!("{} (top)", m.module) } else { m.module.clone() };
        rows.push(vec![
            name,
            m.instances.to_string(),
            group(m.cells),
            group(m.flip_flops),
            group(m.nand2_equivalents.round() as u64),
            format!("{:.4}", m.area_mm2),
        ]);
    }
    rows.push(vec![
        "total".into(),
        String::new(),
        group(g.cells),
        group(g.flip_flops),
        group(g.nand2_equivalents.round() as u64),
        format!("{:.4}", r.logic_mm2),
    ]);
    let right = [Align::Left, Align::Right, Align::Right, Align::Right, Align::Right, Align::Right];
    out.push_str(&table("  ", &rows, &right));
    if !g.uncosted.is_empty() {
        let _ = writeln!(out, "  (cell types with no known cost, counted as one NAND2: {})", g.uncosted.join(", "));
    }
    out.push('\n');
    let _ = writeln!(out, "memories kept as memories (costed as SRAM)");
    let mut rows = vec![cells(&["module", "memory", "copies", "words x bits", "ports r/w", "area mm²", "costed as"])];
    rows.extend(memory_rows(&g.memories));
    let align = [Align::Left, Align::Left, Align::Right, Align::Right, Align::Right, Align::Right, Align::Left];
    out.push_str(&table("  ", &rows, &align));

    if let Some(f) = &r.fpga {
        out.push('\n');
        let _ = writeln!(
            out,
            "{} (yosys `synth_xilinx -family {}`, out of context; {})",
            Fpga::Xilinx.description(),
            f.family,
            when(f.seconds, f.cached)
        );
        let rows = vec![
            vec![
                "LUT".into(),
                group(f.luts + f.lutram_luts + f.srl_luts),
                format!(
                    "{} logic, {} distributed RAM, {} shift registers; {} CARRY4",
                    group(f.luts),
                    group(f.lutram_luts),
                    group(f.srl_luts),
                    group(f.carry4)
                ),
            ],
            vec!["FF".into(), group(f.ffs), String::new()],
            vec!["DSP48E1".into(), group(f.dsps), String::new()],
            vec!["BRAM".into(), format!("{}", f.bram), format!("RAMB36 equivalents: {}", f.bram_method)],
        ];
        out.push_str(&table("  ", &rows, &[Align::Left, Align::Right, Align::Left]));
        let to = |what: &str| f.memory_mapping.iter().filter(|m| m.mapped_to.starts_with(what)).count();
        let _ = writeln!(
            out,
            "  memories: {} to distributed RAM, {} to block RAM, {} to flip-flops by yosys; {} counted as block RAM:",
            to("distributed"),
            to("block"),
            to("flip-flops"),
            f.counted_rams.len()
        );
        for c in &f.counted_rams {
            let _ = writeln!(
                out,
                "    {}.{}: {} x {} bits, {}/{} ports -> {} RAMB36 ({})",
                c.module, c.name, c.words, c.width_bits, c.read_ports, c.write_ports, c.ramb36, c.shape
            );
        }
    }

    out.push('\n');
    let (s, a) = (&r.synthesized, &r.analytical);
    let _ = writeln!(out, "area at {} nm, mm²", r.node_nm);
    let mut rows = vec![cells(&["", "RTL (yosys)", "model", "RTL / model"])];
    let ratio = |x: f64, y: f64| if y > 0.0 { format!("{:.2}", x / y) } else { "-".into() };
    for (name, x, y) in [
        ("PE array", s.pe_array, a.pe_array),
        ("scratchpad", s.scratchpad, a.scratchpad),
        ("accumulator", s.accumulator, a.accumulator),
        ("vector unit", s.vector, a.vector),
        ("other logic and buffers", s.logic, a.logic),
        ("total", s.total, a.total),
    ] {
        rows.push(vec![name.into(), format!("{x:.4}"), format!("{y:.4}"), ratio(x, y)]);
    }
    out.push_str(&table("  ", &rows, &[Align::Left, Align::Right, Align::Right, Align::Right]));
    let _ = writeln!(
        out,
        "area          {:.4} mm² from the RTL (replaces the model's analytical {:.4} mm²; ratio {:.2})",
        s.total, a.total, r.ratio
    );
    let _ = writeln!(
        out,
        "costs         logic {:.3} µm² per NAND2 equivalent (NanGate FreePDK45 cell areas); SRAM from table `{}`",
        r.gate_area_um2, r.table
    );
    out
}

/// The PE variants' table (`--pe`).
fn pe_text(args: &AreaArgs, r: &PeArea) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "systole area --pe: configuration `{}` ({}), {} nm, table `{}`",
        r.config,
        args.hw.display(),
        r.node_nm,
        r.table
    );
    let _ = writeln!(out, "yosys         {}", r.yosys);
    let _ = writeln!(
        out,
        "\nthe array module alone, {}x{} PEs (generic cells; per PE: the array over its PEs, edge skew registers shared out)",
        r.rows, r.cols
    );
    let mut rows = vec![cells(&["PE", "config", "cells", "flip-flops", "NAND2 eq.", "µm²", "vs int8"])];
    for v in &r.variants {
        rows.push(vec![
            v.name.clone(),
            if v.in_config { "yes" } else { "-" }.into(),
            format!("{:.0}", v.per_pe_cells),
            format!("{:.0}", v.per_pe_flip_flops),
            format!("{:.0}", v.per_pe_nand2),
            format!("{:.0}", v.per_pe_um2),
            format!("{:+.1}%", 100.0 * v.overhead),
        ]);
    }
    let right = [Align::Left, Align::Left, Align::Right, Align::Right, Align::Right, Align::Right, Align::Right];
    out.push_str(&table("  ", &rows, &right));
    for v in &r.variants {
        let _ = writeln!(out, "  {:<9} {}", v.name, v.note);
    }
    let _ = writeln!(
        out,
        "model         analytical PE {:.0} µm² (table `pe_area_um2` at {} nm: MAC, registers and wiring)",
        r.analytical_pe_um2, r.node_nm
    );
    let _ = writeln!(
        out,
        "costs         logic {:.3} µm² per NAND2 equivalent (NanGate FreePDK45 cell areas)",
        r.gate_area_um2
    );
    out
}

/// `--pe`: synthesizes and reports the PE variants.
fn run_pe(args: &AreaArgs, cfg: &isa::HwConfig, table: &sim::energy::EnergyTable, opts: &Options) -> Result<()> {
    let mut progress: Option<Progress> = None;
    let result = area::pe_area(cfg, table, opts, &mut |pass| {
        let message = format!("yosys {pass}");
        match &mut progress {
            Some(p) => p.set_message(&message),
            None => progress = Some(Progress::spinner(&format!("systole area --pe: `{}`", cfg.name), &message)),
        }
    });
    if let Some(p) = progress {
        p.finish("synthesis");
    }
    let r = result.map_err(CliError::input)?;
    let mut out = pe_text(args, &r);
    if let Some(path) = &args.json {
        let mut v = serde_json::to_value(&r).map_err(|e| CliError::input(format!("cannot encode the report: {e}")))?;
        if let Value::Object(m) = &mut v {
            m.insert("hw".into(), Value::from(args.hw.display().to_string()));
        }
        let mut text = serde_json::to_string_pretty(&v).unwrap_or_default();
        text.push('\n');
        write_atomic(path, text.into_bytes())?;
        let _ = writeln!(out, "wrote json    {}", path.display());
    }
    print_stdout(&out)
}

pub fn run(args: &AreaArgs) -> Result<()> {
    if let Some(p) = &args.json {
        check_destinations([(p.as_path(), "--json")])?;
    }
    let cfg = load::config(&args.hw)?;
    let table = load::energy_table(args.energy_table.as_deref())?;
    let opts = Options {
        fpga: match args.fpga {
            FpgaArg::Xilinx => Some(Fpga::Xilinx),
            FpgaArg::None => None,
        },
        cache: !args.no_cache,
    };
    if args.pe {
        return run_pe(args, &cfg, &table, &opts);
    }
    // Created on the first pass: a cached result reports none and shows nothing.
    let mut progress: Option<Progress> = None;
    let result = area::area(&cfg, &table, &opts, &mut |pass| {
        let message = format!("yosys {pass}");
        match &mut progress {
            Some(p) => p.set_message(&message),
            None => progress = Some(Progress::spinner(&format!("systole area: `{}`", cfg.name), &message)),
        }
    });
    if let Some(p) = progress {
        p.finish("synthesis");
    }
    let r = result.map_err(CliError::input)?;

    let mut out = report_text(args, &cfg, &r);
    if let Some(path) = &args.json {
        let mut v = serde_json::to_value(&r).map_err(|e| CliError::input(format!("cannot encode the report: {e}")))?;
        if let Value::Object(m) = &mut v {
            m.insert("hw".into(), Value::from(args.hw.display().to_string()));
            m.insert("area_mm2".into(), Value::from(r.synthesized.total));
            m.insert("area_source".into(), Value::from("rtl"));
        }
        let mut text = serde_json::to_string_pretty(&v).unwrap_or_default();
        text.push('\n');
        write_atomic(path, text.into_bytes())?;
        let _ = writeln!(out, "wrote json    {}", path.display());
    }
    print_stdout(&out)
}
