//! A run's timing as a Chrome / Perfetto trace (the trace event format's
//! JSON object form), for `systole sim --trace` and `systole run --trace`.
//! Timestamps are microseconds at the configured clock; every event also
//! carries its cycles in its arguments.
//!
//! What it holds:
//! - one complete (`X`) slice per executed instruction, on its unit's
//!   track. The format requires the slices of a track to be disjoint or
//!   properly nested (viewers drop the others), and a queue overlaps its
//!   instructions (a DMA starts before the previous one has finished), so
//!   each unit (load, compute, store; and `finish`) gets as many tracks as
//!   it has instructions in flight at once: an instruction goes on the
//!   unit's first track free at its start (`load`, `load 2`, ...);
//! - one slice per layer the program records (`LayerMeta`), first start to
//!   last finish of its instructions, on `layers` tracks laid out the same
//!   way (a layer's loads may start before the previous layer ends);
//! - a flow arrow (`s` → `f`) per dependency token, from the instruction
//!   that pushed it to the one that popped it. Tokens of one direction are
//!   counted, not named, so the k-th token to become available feeds the
//!   k-th pop. Each end sits at its slice's middle, inside the slice it
//!   binds to (`bp: "e"`: the enclosing slice);
//! - counters (`C`): the DRAM bus's bytes per cycle (reads, writes) over
//!   windows of the run, each DMA's bus bytes spread evenly over its
//!   duration; and per unit the instructions in flight (started, not
//!   finished).

use isa::instr::{Instr, Queue};
use isa::program::Program;
use isa::{HwConfig, InstrTrace};
use serde_json::{json, Value};
use systole::flow::layers::{dma_bus_bytes, LayerMeta};

const UNITS: [&str; 4] = ["load", "compute", "store", "finish"];
const LAYERS: &str = "layers";
/// The bandwidth counter has about this many windows over the run.
const WINDOWS: u64 = 400;

fn unit_index(q: Option<Queue>) -> usize {
    match q {
        Some(Queue::Load) => 0,
        Some(Queue::Compute) => 1,
        Some(Queue::Store) => 2,
        None => 3,
    }
}

/// Assigns each slice `(start, finish)` a lane such that the slices of a
/// lane are disjoint: the first lane free at the slice's start, in order of
/// start. Returns each slice's lane and the number of lanes.
fn lanes(slices: &[(u64, u64)]) -> (Vec<usize>, usize) {
    let mut order: Vec<usize> = (0..slices.len()).collect();
    order.sort_by_key(|&i| slices[i]);
    let mut busy_until: Vec<u64> = Vec::new();
    let mut lane = vec![0; slices.len()];
    for i in order {
        let (s, f) = slices[i];
        let k = busy_until.iter().position(|&b| b <= s).unwrap_or(busy_until.len());
        if k == busy_until.len() {
            busy_until.push(f);
        } else {
            busy_until[k] = f;
        }
        lane[i] = k;
    }
    (lane, busy_until.len())
}

/// One executed instruction.
struct Slice<'a> {
    t: &'a InstrTrace,
    instr: &'a Instr,
    unit: usize,
    /// Its track id.
    tid: usize,
}

impl Slice<'_> {
    fn finish(&self) -> u64 {
        self.t.finish.max(self.t.start)
    }
}

/// A token counter: (producer queue, consumer queue).
type Direction = (Queue, Queue);

/// The token counters an instruction pushes to and pops from.
fn token_moves(instr: &Instr) -> (Vec<Direction>, Vec<Direction>) {
    let (mut push, mut pop) = (Vec::new(), Vec::new());
    let Some(q) = instr.queue() else { return (push, pop) };
    let d = instr.deps();
    if let Some(p) = q.prev() {
        if d.push_prev {
            push.push((q, p));
        }
        if d.pop_prev {
            pop.push((p, q));
        }
    }
    if let Some(n) = q.next() {
        if d.push_next {
            push.push((q, n));
        }
        if d.pop_next {
            pop.push((n, q));
        }
    }
    (push, pop)
}

/// Pairs each token pop with the push that made its token available: per
/// direction, pushes in order of taking effect (finish) and pops in order of
/// start, k-th with k-th. Returns (producer, consumer) slice indices.
fn token_flows(slices: &[Slice]) -> Vec<(usize, usize)> {
    let mut flows = Vec::new();
    let dirs = [
        (Queue::Load, Queue::Compute),
        (Queue::Compute, Queue::Load),
        (Queue::Compute, Queue::Store),
        (Queue::Store, Queue::Compute),
    ];
    for dir in dirs {
        let mut pushes: Vec<usize> = Vec::new();
        let mut pops: Vec<usize> = Vec::new();
        for (i, s) in slices.iter().enumerate() {
            let (push, pop) = token_moves(s.instr);
            if push.contains(&dir) {
                pushes.push(i);
            }
            if pop.contains(&dir) {
                pops.push(i);
            }
        }
        pushes.sort_by_key(|&i| (slices[i].finish(), slices[i].t.index));
        pops.sort_by_key(|&i| (slices[i].t.start, slices[i].t.index));
        flows.extend(pushes.into_iter().zip(pops));
    }
    flows.sort_by_key(|&(p, c)| (slices[c].t.start, slices[p].t.index, slices[c].t.index));
    flows
}

/// The DRAM bus's (read, write) bytes per window of `window` cycles, each
/// DMA's bus bytes spread evenly over its cycles.
fn bandwidth(slices: &[Slice], cfg: &HwConfig, window: u64, windows: usize) -> Vec<(f64, f64)> {
    let mut bins = vec![(0.0f64, 0.0f64); windows];
    for s in slices {
        let bytes = dma_bus_bytes(s.instr, cfg) as f64;
        if bytes == 0.0 {
            continue;
        }
        let add = |bins: &mut Vec<(f64, f64)>, k: usize, b: f64| {
            let k = k.min(windows - 1);
            match s.instr {
                Instr::Store(_) => bins[k].1 += b,
                _ => bins[k].0 += b,
            }
        };
        let (start, finish) = (s.t.start, s.finish());
        if finish == start {
            add(&mut bins, (start / window) as usize, bytes);
            continue;
        }
        let per_cycle = bytes / (finish - start) as f64;
        let mut c = start;
        while c < finish {
            let end = ((c / window + 1) * window).min(finish);
            add(&mut bins, (c / window) as usize, per_cycle * (end - c) as f64);
            c = end;
        }
    }
    bins
}

/// Per unit, `(cycle, instructions in flight)` at every change.
fn in_flight(slices: &[Slice], unit: usize) -> Vec<(u64, i64)> {
    let mut edges: Vec<(u64, i64)> = Vec::new();
    for s in slices.iter().filter(|s| s.unit == unit) {
        edges.push((s.t.start, 1));
        edges.push((s.finish(), -1));
    }
    edges.sort();
    let mut out: Vec<(u64, i64)> = Vec::new();
    let mut level = 0;
    for (cycle, d) in edges {
        level += d;
        match out.last_mut() {
            Some(last) if last.0 == cycle => last.1 = level,
            _ => out.push((cycle, level)),
        }
    }
    out
}

pub fn chrome_trace(prog: &Program, trace: &[InstrTrace], cfg: &HwConfig, name: &str) -> Value {
    let us = |cycles: f64| cycles / cfg.clock.mhz;
    let mut slices: Vec<Slice> = trace
        .iter()
        .filter_map(|t| {
            let instr = prog.code.get(t.index as usize)?;
            Some(Slice { t, instr, unit: unit_index(instr.queue()), tid: 0 })
        })
        .collect();
    let end = slices.iter().map(Slice::finish).max().unwrap_or(0);

    // Tracks: per unit its lanes, then the layers' lanes, in that order.
    let mut tracks: Vec<String> = Vec::new();
    let lane_name = |base: &str, k: usize| if k == 0 { base.to_string() } else { format!("{base} {}", k + 1) };
    for (unit, &unit_name) in UNITS.iter().enumerate() {
        let members: Vec<usize> = (0..slices.len()).filter(|&i| slices[i].unit == unit).collect();
        let spans: Vec<(u64, u64)> = members.iter().map(|&i| (slices[i].t.start, slices[i].finish())).collect();
        let (lane, n) = lanes(&spans);
        for (&i, &k) in members.iter().zip(&lane) {
            slices[i].tid = tracks.len() + k;
        }
        // Every queue has its track even when idle; `finish` only if it ran.
        let n = if unit == 3 { n } else { n.max(1) };
        tracks.extend((0..n).map(|k| lane_name(unit_name, k)));
    }
    let layers: Vec<(&LayerMeta, u64, u64)> = layer_spans(&prog.meta.layers, &slices);
    let (layer_lane, n) = lanes(&layers.iter().map(|&(_, s, f)| (s, f)).collect::<Vec<_>>());
    let first_layer_track = tracks.len();
    tracks.extend((0..n).map(|k| lane_name(LAYERS, k)));

    let mut events = vec![json!({
        "name": "process_name", "ph": "M", "pid": 1,
        "args": { "name": format!("systole {name} on {}", cfg.name) },
    })];
    for (id, track) in tracks.iter().enumerate() {
        events.push(json!({ "name": "thread_name", "ph": "M", "pid": 1, "tid": id, "args": { "name": track } }));
        events
            .push(json!({ "name": "thread_sort_index", "ph": "M", "pid": 1, "tid": id, "args": { "sort_index": id } }));
    }
    for s in &slices {
        events.push(json!({
            "name": s.instr.mnemonic(),
            "cat": UNITS[s.unit],
            "ph": "X",
            "pid": 1,
            "tid": s.tid,
            "ts": us(s.t.start as f64),
            "dur": us((s.finish() - s.t.start) as f64),
            "args": {
                "index": s.t.index,
                "instr": s.instr.to_string(),
                "start_cycle": s.t.start,
                "finish_cycle": s.t.finish,
            },
        }));
    }
    for (&(l, start, finish), &k) in layers.iter().zip(&layer_lane) {
        events.push(json!({
            "name": l.name,
            "cat": "layer",
            "ph": "X",
            "pid": 1,
            "tid": first_layer_track + k,
            "ts": us(start as f64),
            "dur": us((finish - start) as f64),
            "args": {
                "op": l.op.to_string(),
                "instr_first": l.first,
                "instr_end_exclusive": l.last,
                "macs": l.macs,
                "start_cycle": start,
                "finish_cycle": finish,
            },
        }));
    }
    // Flow ends in the middle of their slices, so each binds to its own.
    let mid = |s: &Slice| us((s.t.start + s.finish()) as f64 / 2.0);
    for (id, &(p, c)) in token_flows(&slices).iter().enumerate() {
        let (p, c) = (&slices[p], &slices[c]);
        let name = format!("token {}→{}", UNITS[p.unit], UNITS[c.unit]);
        events.push(json!({
            "name": name, "cat": "token", "ph": "s", "id": id, "pid": 1, "tid": p.tid, "ts": mid(p),
            "args": { "from_index": p.t.index, "to_index": c.t.index },
        }));
        events.push(json!({
            "name": name, "cat": "token", "ph": "f", "bp": "e", "id": id, "pid": 1, "tid": c.tid, "ts": mid(c),
        }));
    }
    if end > 0 {
        let window = end.div_ceil(WINDOWS).max(1);
        let bins = bandwidth(&slices, cfg, window, end.div_ceil(window) as usize);
        for (k, &(read, write)) in bins.iter().enumerate() {
            let span = window.min(end - k as u64 * window) as f64;
            events.push(json!({
                "name": "DRAM bus B/cycle", "cat": "dram", "ph": "C", "pid": 1, "ts": us((k as u64 * window) as f64),
                "args": { "read": read / span, "write": write / span },
            }));
        }
        events.push(json!({
            "name": "DRAM bus B/cycle", "cat": "dram", "ph": "C", "pid": 1, "ts": us(end as f64),
            "args": { "read": 0.0, "write": 0.0 },
        }));
    }
    for (unit, &unit_name) in UNITS.iter().enumerate().take(3) {
        for (cycle, n) in in_flight(&slices, unit) {
            events.push(json!({
                "name": format!("{unit_name} in flight"), "cat": "queue", "ph": "C", "pid": 1,
                "ts": us(cycle as f64), "args": { "instructions": n },
            }));
        }
    }
    json!({
        "traceEvents": events,
        "displayTimeUnit": "ns",
        "otherData": {
            "program": name,
            "config": cfg.name,
            "clock_mhz": cfg.clock.mhz,
            "cycles": end,
            "dram_window_cycles": end.div_ceil(WINDOWS).max(1),
        },
    })
}

/// Each layer that ran with the first start and last finish of its
/// instructions.
fn layer_spans<'a>(layers: &'a [LayerMeta], slices: &[Slice]) -> Vec<(&'a LayerMeta, u64, u64)> {
    let mut spans: Vec<Option<(u64, u64)>> = vec![None; layers.len()];
    for s in slices {
        let pc = s.t.index as usize;
        if let Some(k) = layers.iter().position(|l| (l.first..l.last).contains(&pc)) {
            let (a, b) = spans[k].unwrap_or((s.t.start, s.finish()));
            spans[k] = Some((a.min(s.t.start), b.max(s.finish())));
        }
    }
    layers.iter().zip(spans).filter_map(|(l, s)| s.map(|(a, b)| (l, a, b))).collect()
}

#[cfg(test)]
mod tests {
    use super::lanes;

    #[test]
    fn overlapping_slices_get_separate_lanes_and_touching_ones_share() {
        // (0,10) and (5,12) overlap; (10,20) starts when the first ends.
        let (l, n) = lanes(&[(0, 10), (5, 12), (10, 20), (12, 13), (11, 30)]);
        assert_eq!((l, n), (vec![0, 1, 0, 1, 2], 3));
    }
}
