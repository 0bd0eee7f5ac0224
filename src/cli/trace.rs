//! Per-instruction timing as a Chrome / Perfetto trace (JSON object
//! format): one complete event per instruction, in microseconds at the
//! configured clock with the cycles in the event's arguments.
//!
//! The format requires the slices of one track to be disjoint or properly
//! nested (viewers drop the others), and a queue overlaps its instructions
//! (a DMA starts before the previous one has finished). So each queue
//! (load, compute, store; and `finish`) gets as many tracks as it has
//! instructions in flight at once: an instruction goes on the queue's first
//! track that is free at its start (`load`, `load 2`, ...).

use isa::program::Program;
use isa::{HwConfig, InstrTrace, Queue};
use serde_json::{json, Value};

const QUEUES: [&str; 4] = ["load", "compute", "store", "finish"];

fn queue_index(q: Option<Queue>) -> usize {
    match q {
        Some(Queue::Load) => 0,
        Some(Queue::Compute) => 1,
        Some(Queue::Store) => 2,
        None => 3,
    }
}

/// Assigns each slice `(start, finish)` a lane such that the slices of a
/// lane are disjoint: the first lane free at the slice's start, in order of
/// start. Returns each slice's lane.
fn lanes(slices: &[(u64, u64)]) -> Vec<usize> {
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
    lane
}

pub fn chrome_trace(prog: &Program, trace: &[InstrTrace], cfg: &HwConfig, name: &str) -> Value {
    let us = |cycles: u64| cycles as f64 / cfg.clock.mhz;
    let known: Vec<(&InstrTrace, &isa::instr::Instr)> =
        trace.iter().filter_map(|t| Some((t, prog.code.get(t.index as usize)?))).collect();
    // Lanes per queue, then one track id per (queue, lane) in queue order.
    let mut lane = vec![0; known.len()];
    let mut tracks: Vec<(usize, usize)> = Vec::new();
    for q in 0..QUEUES.len() {
        let members: Vec<usize> = (0..known.len()).filter(|&i| queue_index(known[i].1.queue()) == q).collect();
        let slices: Vec<(u64, u64)> =
            members.iter().map(|&i| (known[i].0.start, known[i].0.finish.max(known[i].0.start))).collect();
        let l = lanes(&slices);
        for (&i, &k) in members.iter().zip(&l) {
            lane[i] = k;
        }
        let n = l.iter().max().map_or(if q == 3 { 0 } else { 1 }, |m| m + 1);
        tracks.extend((0..n).map(|k| (q, k)));
    }
    let tid = |q: usize, k: usize| tracks.iter().position(|&t| t == (q, k)).expect("every lane has a track");
    let mut events = vec![json!({
        "name": "process_name", "ph": "M", "pid": 1,
        "args": { "name": format!("systole {name} on {}", cfg.name) },
    })];
    for (id, &(q, k)) in tracks.iter().enumerate() {
        let track = if k == 0 { QUEUES[q].to_string() } else { format!("{} {}", QUEUES[q], k + 1) };
        events.push(json!({ "name": "thread_name", "ph": "M", "pid": 1, "tid": id, "args": { "name": track } }));
        events
            .push(json!({ "name": "thread_sort_index", "ph": "M", "pid": 1, "tid": id, "args": { "sort_index": id } }));
    }
    for (i, (t, instr)) in known.iter().enumerate() {
        let q = queue_index(instr.queue());
        events.push(json!({
            "name": instr.mnemonic(),
            "cat": QUEUES[q],
            "ph": "X",
            "pid": 1,
            "tid": tid(q, lane[i]),
            "ts": us(t.start),
            "dur": us(t.finish.saturating_sub(t.start)),
            "args": {
                "index": t.index,
                "instr": instr.to_string(),
                "start_cycle": t.start,
                "finish_cycle": t.finish,
            },
        }));
    }
    json!({
        "traceEvents": events,
        "displayTimeUnit": "ns",
        "otherData": { "program": name, "config": cfg.name, "clock_mhz": cfg.clock.mhz },
    })
}

#[cfg(test)]
mod tests {
    use super::lanes;

    #[test]
    fn overlapping_slices_get_separate_lanes_and_touching_ones_share() {
        // (0,10) and (5,12) overlap; (10,20) starts when the first ends.
        let l = lanes(&[(0, 10), (5, 12), (10, 20), (12, 13), (11, 30)]);
        assert_eq!(l, vec![0, 1, 0, 1, 2]);
    }
}
