//! `flow::run::execute`, what `systole run` and the Python package's `run`
//! call: a batch spread over any number of threads gives the one-thread
//! result (outputs bit for bit, every counter, per-layer and per-run
//! cycles); a traced batch keeps its device's timeline.

use isa::program::TensorRole;
use isa::{Counter, HwConfig};
use systole::flow::backend::Backend;
use systole::flow::check::{recorded_graph, Checker};
use systole::flow::infer::{Batch, HostData};
use systole::flow::layers::from_program;
use systole::flow::run::{execute, Execution};
use systole::flow::{compile, Compiled};

#[test]
fn a_batch_gives_the_same_results_on_any_number_of_threads() {
    let onnx = concat!(env!("CARGO_MANIFEST_DIR"), "/compiler/tests/data/digits/cnn_dense/int8_qop.onnx");
    let cfg = HwConfig::tiny_4x4();
    let graph = compile::import(std::path::Path::new(onnx)).expect("imports");
    let prog = compile::lower(&graph, &cfg, 1, true, "cnn").expect("lowers").program;
    let layers = from_program(&prog);
    let model = Compiled { prog: &prog, layers: &layers, cfg: &cfg };
    let tin = prog.tensors.iter().find(|t| t.role == TensorRole::Input).expect("an input");
    // 7 inferences: an uneven share for every thread count below.
    let runs = 7;
    let x: Vec<f32> = (0..runs * 64).map(|i| ((i * 37 + 11) % 101) as f32 / 100.0).collect();
    let batch = Batch::new(&[runs as u64, 1, 1, 8, 8], HostData::F32(x), tin, "x").expect("a batch");
    let checker = Checker::new(recorded_graph(&prog, "cnn").expect("a graph"), "cnn", &layers).expect("checker");

    let ticks = std::sync::atomic::AtomicUsize::new(0);
    let run = |threads: usize, trace: bool| {
        ticks.store(0, std::sync::atomic::Ordering::Relaxed);
        let how = Execution { threads, trace };
        let tick = || {
            ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        };
        let done = execute(model, "cnn", Backend::Sim, &batch, Some(&checker), how, tick)
            .unwrap_or_else(|e| panic!("{threads} threads: {e}"));
        assert_eq!(ticks.load(std::sync::atomic::Ordering::Relaxed), runs, "progress once per inference");
        done
    };
    let one = run(1, false);
    assert!(one.trace.is_none(), "no trace asked for");
    let m1 = &one.measured;
    assert_eq!(m1.run_cycles.len(), runs);
    assert!(m1.counters.get(Counter::Cycles) > 0 && m1.counters.get(Counter::Macs) > 0);
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    for threads in [2, 3, 16] {
        let m = run(threads, false).measured;
        assert_eq!(bits(&m.outputs), bits(&m1.outputs), "{threads} threads: outputs");
        assert_eq!(m.counters, m1.counters, "{threads} threads: counters");
        assert_eq!(m.layer_cycles, m1.layer_cycles, "{threads} threads: layer cycles");
        assert_eq!(m.run_cycles, m1.run_cycles, "{threads} threads: run cycles");
    }
    // A trace is one device's timeline: the batch stays on one thread, and
    // the timeline is the last inference's, every instruction in it.
    let traced = run(3, true);
    assert_eq!(bits(&traced.measured.outputs), bits(&m1.outputs));
    let timeline = traced.trace.expect("a trace");
    assert_eq!(timeline.len(), prog.code.len());
    let last = timeline.iter().map(|t| t.finish).max().expect("instructions");
    assert_eq!(last, m1.run_cycles[runs - 1], "the last instruction finishes with the run");
}
