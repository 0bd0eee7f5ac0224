//! Per-layer facts of a compiled model: the layers a program records
//! (written by the compiler; read here and nowhere else), what the
//! program's code says about each layer (DRAM traffic, weight rows), the
//! cycles of a layer in a run, and the per-layer figures of a report with
//! an attribution of the measured energy.
//!
//! # Energy attribution
//!
//! The energy model charges a whole run (counters in, energy out); it has
//! no per-layer counters. The per-layer energy is therefore an
//! *attribution* of the measured total, class by class:
//! - `mac` and `pe_registers` by the layer's share of the MACs;
//! - `weight_load` by its share of the weight rows loaded into the array
//!   (the `k` of its `ldw` and preloading `matmul` instructions);
//! - `dram` by its share of the DRAM bus bytes, as the device counts them:
//!   its `load`s and `store`s in whole beats of `dram.bytes_per_cycle`,
//!   plus fetching its instructions;
//! - everything else (scratchpad and accumulator accesses, the
//!   post-processor, static leakage) by its share of the cycles.
//!
//! What no layer accounts for (cycles outside every layer's instruction
//! range, fetching the final `finish`) is reported as `(other)`, so the
//! column adds up to the measured total.
//!
//! A layer's *data* bytes are rows x cols x element bytes of its `load`s
//! and `store`s; its *bus* bytes what the bus carried for it (the data
//! rounded out to whole beats, plus instruction fetch), which is what the
//! device's counters and the energy model count. A layer is compute-bound
//! when its MACs at peak rate (MACs / (rows x cols)) take at least as long
//! as its data at peak bandwidth (data bytes / bytes_per_cycle),
//! bandwidth-bound otherwise.

use super::report::{fraction, Bound, LayerFigures, Saved};
use super::Compiled;
use compiler::ir_codec::StoredWeights;
use isa::instr::{Instr, BUF_ACC, INSTR_BYTES};
use isa::legal::DmaBlock;
use isa::program::Program;
use isa::{Counter, Counters, HwConfig, InstrTrace};
use sim::dma::BurstPlan;
use sim::energy::EnergyReport;

/// How the per-layer energy is attributed (for the report and the JSON).
pub const ATTRIBUTION: &str = "an attribution of the measured total: mac and pe_registers energy by the layer's \
     share of the MACs, weight_load by its share of the weight rows, dram by its share of the DRAM bus bytes, \
     the rest (scratchpad, accumulator, ppu, static) by its share of the cycles";

/// Energy classes attributed by MACs and by weight rows; `dram` by bytes;
/// every other class (and static energy) by cycles.
const BY_MACS: [&str; 2] = ["mac", "pe_registers"];
const BY_WEIGHT_ROWS: &str = "weight_load";
const BY_BYTES: &str = "dram";

/// One layer as the compiler recorded it.
pub use isa::program::LayerMeta;

/// The program's per-layer facts (none when it records no layers, as for
/// a program from `systole asm`); `Program::from_bytes` checked them
/// against the code and the window.
pub fn from_program(prog: &Program) -> Vec<LayerMeta> {
    prog.meta.layers.clone()
}

/// The layer an instruction belongs to.
pub fn layer_of(layers: &[LayerMeta], pc: usize) -> Option<&LayerMeta> {
    layers.iter().find(|l| (l.first..l.last).contains(&pc))
}

/// What the code says about a layer: the data bytes its `load`s and
/// `store`s move (rows x cols x element bytes); the bytes the DRAM bus
/// carries for it, as the device counts them (its DMAs in whole beats of
/// `dram.bytes_per_cycle`, plus fetching its instructions); and the weight
/// rows loaded into the array (its `ldw`s and preloading `matmul`s).
#[derive(Clone, Copy, Debug, Default)]
pub struct CodeFacts {
    pub data_bytes: u64,
    pub bus_bytes: u64,
    pub weight_rows: u64,
}

/// The bytes the DRAM bus carries for one `load` (read) or `store`
/// (write): its bursts in whole beats of `dram.bytes_per_cycle`. Zero for
/// every other instruction.
pub fn dma_bus_bytes(i: &Instr, cfg: &HwConfig) -> u64 {
    let w = cfg.dram.bytes_per_cycle as u64;
    let beats = |b: &DmaBlock| BurstPlan::of(b, w).total_beats() * w;
    match i {
        // A gather's rows depend on the ids: counted as if every id were 0,
        // exact when the table's row pitch is a whole number of beats.
        Instr::Load(x) if x.idx != isa::instr::IDX_NONE => {
            let (b, ix) = (DmaBlock::of_load(x), isa::legal::IndexList::of_load(x).expect("indexed"));
            let gather = sim::dma::Gather { id_bytes: ix.span(b.rows), ids: vec![0; b.rows as usize] };
            BurstPlan::of_gather(&b, &gather, w).total_beats() * w
        }
        Instr::Load(x) => beats(&DmaBlock::of_load(x)),
        Instr::Store(x) => beats(&DmaBlock::of_store(x)),
        _ => 0,
    }
}

pub fn code_facts(prog: &Program, l: &LayerMeta, cfg: &HwConfig) -> CodeFacts {
    let mut f = CodeFacts::default();
    let elem = |buf: u8| if buf == BUF_ACC { 4 } else { 1 };
    f.bus_bytes = ((l.last - l.first) * INSTR_BYTES) as u64;
    for i in &prog.code[l.first..l.last] {
        f.bus_bytes += dma_bus_bytes(i, cfg);
        match i {
            Instr::Load(x) => f.data_bytes += x.rows as u64 * x.cols as u64 * elem(x.buf),
            Instr::Store(x) => f.data_bytes += x.rows as u64 * x.cols as u64 * elem(x.buf),
            Instr::Ldw(x) => f.weight_rows += x.k as u64,
            Instr::Matmul(x) if x.preload != 0 => f.weight_rows += x.k as u64,
            _ => {}
        }
    }
    f
}

/// The weight format of the tiles instructions `[first, last)` load into
/// the array: `i8s24` if any is 2:4-sparse, else `i4` if any is int4, `i8`
/// otherwise; `None` when they load none.
pub fn weight_format(prog: &Program, first: usize, last: usize) -> Option<&'static str> {
    let mut found = None;
    for i in prog.code.get(first..last).unwrap_or_default() {
        let wfmt = match i {
            Instr::Ldw(x) => x.wfmt,
            Instr::Matmul(x) if x.preload != 0 => x.wfmt,
            _ => continue,
        };
        match wfmt {
            isa::instr::WFMT_I8_S24 => return Some("i8s24"),
            isa::instr::WFMT_I4 => found = Some("i4"),
            _ => found = found.or(Some("i8")),
        }
    }
    found
}

/// A layer's weight format as reports give it, one fact: precision and
/// compression, not layout — `i8`, `i4`, `i8s24` (2:4-sparse) or `i8-mask`
/// (the compressed stream: per row a bitmask, then the non-zero bytes) —
/// from its stored weights where the program records them, else from the
/// tiles it loads (`tiles`, [`weight_format`]).
pub fn reported_format(
    stored: Option<compiler::gemm::WeightFormat>,
    tiles: Option<&'static str>,
) -> Option<&'static str> {
    use compiler::gemm::WeightFormat;
    match stored {
        Some(WeightFormat::StreamSparseI8) => Some("i8-mask"),
        Some(f) => Some(match f.wfmt() {
            isa::instr::WFMT_I4 => "i4",
            isa::instr::WFMT_I8_S24 => "i8s24",
            _ => "i8",
        }),
        None => tiles,
    }
}

/// The DRAM bytes a layer's `n` weights take in the format its tiles have
/// ([`weight_format`]): int4 two a byte; 2:4 the kept half plus 2-bit
/// positions (5/8); int8 one a byte.
pub fn stored_weight_bytes(format: Option<&str>, n: u64) -> u64 {
    match format {
        Some("i4") => n.div_ceil(2),
        Some("i8s24") => (5 * n).div_ceil(8),
        _ => n,
    }
}

/// Fills `saved_vs_dense` of the rows of layers on 2:4 tiles: the same
/// layer's figures in `dense` (the rows of the model compiled with
/// `--weights dense` and run on the same inputs) minus its own, by name.
pub fn fill_savings(rows: &mut [LayerFigures], dense: &[LayerFigures]) {
    for r in rows.iter_mut().filter(|r| r.weight_format == Some("i8s24")) {
        if let Some(d) = dense.iter().find(|d| d.name == r.name) {
            r.saved_vs_dense = Some(Saved {
                cycles: d.cycles as i64 - r.cycles as i64,
                dram_bus_bytes: d.dram_bus_bytes as i64 - r.dram_bus_bytes as i64,
                energy_pj: d.energy_pj - r.energy_pj,
            });
        }
    }
}

/// Each layer's weights as the program stores them (format and bytes in
/// its data), read from the graph it records (`compiler::ir_codec`):
/// `None` for a layer without packed weights, and for every layer of a
/// program without a graph.
pub fn stored_weights(prog: &Program, layers: &[LayerMeta]) -> Vec<Option<StoredWeights>> {
    let nodes = compiler::ir_codec::stored_weights(&prog.meta.graph, &prog.data).unwrap_or_default();
    let by_node: std::collections::HashMap<String, StoredWeights> =
        nodes.into_iter().filter_map(|(name, w)| Some((name, w?))).collect();
    layers.iter().map(|l| by_node.get(&l.name).copied()).collect()
}

/// Cycles each layer took in one run: from the first start to the last
/// finish of its instructions (one pass over the trace).
pub fn layer_cycles(trace: &[InstrTrace], layers: &[LayerMeta]) -> Vec<u64> {
    let mut spans: Vec<Option<(u64, u64)>> = vec![None; layers.len()];
    // Layers are in program order with disjoint ranges: find by binary search.
    let ordered = layers.windows(2).all(|w| w[0].last <= w[1].first);
    for t in trace {
        let pc = t.index as usize;
        let k = if ordered {
            let k = layers.partition_point(|l| l.last <= pc);
            (k < layers.len() && (layers[k].first..layers[k].last).contains(&pc)).then_some(k)
        } else {
            layers.iter().position(|l| (l.first..l.last).contains(&pc))
        };
        if let Some(k) = k {
            spans[k] = Some(match spans[k] {
                None => (t.start, t.finish),
                Some((s, f)) => (s.min(t.start), f.max(t.finish)),
            });
        }
    }
    spans.into_iter().map(|s| s.map_or(0, |(s, f)| f.saturating_sub(s))).collect()
}

/// Whether a layer's MACs or its DRAM data take longer at peak rate.
fn bound(cfg: &HwConfig, macs: u64, bytes: u64) -> Option<Bound> {
    if macs == 0 && bytes == 0 {
        return None;
    }
    let compute = macs as f64 / cfg.peak_macs_per_cycle() as f64;
    let transfer = bytes as f64 / cfg.dram.bytes_per_cycle as f64;
    Some(if compute >= transfer { Bound::Compute } else { Bound::Bandwidth })
}

/// The per-layer figures of `runs` runs of `model`: `cycles[k]` is layer
/// `k`'s cycles summed over the runs, `counters` and `energy` the runs'
/// totals. Returns the layers' figures and the `(other)` row (what no
/// layer accounts for).
pub fn attribute(
    model: Compiled<'_>,
    cycles: &[u64],
    runs: u64,
    counters: &Counters,
    energy: &EnergyReport,
) -> (Vec<LayerFigures>, LayerFigures) {
    let Compiled { prog, layers, cfg } = model;
    let total_cycles = counters.get(Counter::Cycles) as f64;
    let total_macs = counters.get(Counter::Macs) as f64;
    let total_bus = (counters.get(Counter::DramReadBytes) + counters.get(Counter::DramWriteBytes)) as f64;
    let total_wrows = counters.get(Counter::WeightRows) as f64;
    // Energy pools by what they are attributed by.
    let mut by_macs = 0.0;
    let mut by_wrows = 0.0;
    let mut by_bytes = 0.0;
    let mut by_cycles = energy.static_pj;
    for (class, pj) in &energy.dynamic_pj {
        match class.as_str() {
            c if BY_MACS.contains(&c) => by_macs += pj,
            BY_WEIGHT_ROWS => by_wrows += pj,
            BY_BYTES => by_bytes += pj,
            _ => by_cycles += pj,
        }
    }
    let peak = cfg.peak_macs_per_cycle() as f64;
    let per_run = |v: u64| fraction(v as f64, runs as f64);
    let stored = stored_weights(prog, layers);
    let mut out = Vec::with_capacity(layers.len());
    for ((l, &cyc), stored) in layers.iter().zip(cycles).zip(stored) {
        let facts = code_facts(prog, l, cfg);
        let macs = l.macs * runs;
        let bus = facts.bus_bytes * runs;
        let wrows = facts.weight_rows * runs;
        let energy_pj = by_macs * fraction(macs as f64, total_macs)
            + by_wrows * fraction(wrows as f64, total_wrows)
            + by_bytes * fraction(bus as f64, total_bus)
            + by_cycles * fraction(cyc as f64, total_cycles);
        let range = l.first < l.last;
        out.push(LayerFigures {
            name: l.name.clone(),
            op: Some(l.op.to_string()),
            instr_first: range.then_some(l.first),
            instr_end_exclusive: range.then_some(l.last),
            cycles: cyc,
            cycles_per_inference: per_run(cyc),
            macs,
            mac_utilization: fraction(macs as f64, cyc as f64 * peak),
            dram_data_bytes: facts.data_bytes * runs,
            dram_bus_bytes: bus,
            weight_rows: wrows,
            weight_bytes: stored.map_or(0, |w| w.bytes),
            weight_format: reported_format(stored.map(|w| w.format), weight_format(prog, l.first, l.last)),
            bound: bound(cfg, l.macs, facts.data_bytes),
            energy_pj,
            saved_vs_dense: None,
        });
    }
    let sum = |f: fn(&LayerFigures) -> u64| out.iter().map(f).sum::<u64>();
    let other_cycles = counters.get(Counter::Cycles).saturating_sub(sum(|r| r.cycles));
    let other_macs = counters.get(Counter::Macs).saturating_sub(sum(|r| r.macs));
    let other = LayerFigures {
        name: "(other)".into(),
        op: None,
        instr_first: None,
        instr_end_exclusive: None,
        cycles: other_cycles,
        cycles_per_inference: per_run(other_cycles),
        macs: other_macs,
        mac_utilization: fraction(other_macs as f64, other_cycles as f64 * peak),
        dram_data_bytes: 0,
        dram_bus_bytes: (total_bus as u64).saturating_sub(sum(|r| r.dram_bus_bytes)),
        weight_rows: (total_wrows as u64).saturating_sub(sum(|r| r.weight_rows)),
        weight_bytes: 0,
        weight_format: None,
        bound: None,
        energy_pj: energy.total_pj - out.iter().map(|r| r.energy_pj).sum::<f64>(),
        saved_vs_dense: None,
    };
    (out, other)
}

#[cfg(test)]
mod tests {
    use super::reported_format;
    use compiler::gemm::WeightFormat as F;

    #[test]
    fn one_weight_format_names_precision_and_compression_not_layout() {
        for (stored, want) in [
            (F::DenseI8, "i8"),
            (F::StreamI8, "i8"),
            (F::BandI8, "i8"),
            (F::BandRowsI8, "i8"),
            (F::DenseI4, "i4"),
            (F::BandI4, "i4"),
            (F::BandRowsI4, "i4"),
            (F::Sparse24I8, "i8s24"),
            (F::StreamSparseI8, "i8-mask"),
        ] {
            assert_eq!(reported_format(Some(stored), Some("i8")), Some(want), "{stored:?}");
        }
        // Without stored weights, the tiles say it.
        assert_eq!(reported_format(None, Some("i8s24")), Some("i8s24"));
        assert_eq!(reported_format(None, None), None);
    }
}
