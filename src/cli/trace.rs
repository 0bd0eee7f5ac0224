//! Per-instruction timing as a Chrome / Perfetto trace (JSON object
//! format): one track per queue (load, compute, store) and one for `finish`,
//! one complete event per instruction, in microseconds at the configured
//! clock with the cycles in the event's arguments.

use isa::program::Program;
use isa::{HwConfig, InstrTrace, Queue};
use serde_json::{json, Value};

const TRACKS: [&str; 4] = ["load", "compute", "store", "finish"];

fn track(q: Option<Queue>) -> usize {
    match q {
        Some(Queue::Load) => 0,
        Some(Queue::Compute) => 1,
        Some(Queue::Store) => 2,
        None => 3,
    }
}

pub fn chrome_trace(prog: &Program, trace: &[InstrTrace], cfg: &HwConfig, name: &str) -> Value {
    let us = |cycles: u64| cycles as f64 / cfg.clock.mhz;
    let mut events = vec![json!({
        "name": "process_name", "ph": "M", "pid": 1,
        "args": { "name": format!("systole {name} on {}", cfg.name) },
    })];
    for (tid, t) in TRACKS.iter().enumerate() {
        events.push(json!({ "name": "thread_name", "ph": "M", "pid": 1, "tid": tid, "args": { "name": t } }));
        events.push(
            json!({ "name": "thread_sort_index", "ph": "M", "pid": 1, "tid": tid, "args": { "sort_index": tid } }),
        );
    }
    for t in trace {
        let Some(instr) = prog.code.get(t.index as usize) else { continue };
        let tid = track(instr.queue());
        events.push(json!({
            "name": instr.mnemonic(),
            "cat": TRACKS[tid],
            "ph": "X",
            "pid": 1,
            "tid": tid,
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
