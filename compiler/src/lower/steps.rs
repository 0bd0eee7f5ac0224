//! Steps over two buffer sets: a phase cut into steps that each LOAD their
//! inputs, COMPUTE and STORE their outputs, step `s` using buffer set
//! `s % 2`, joined by dependency tokens so that step `s + 1`'s LOADs
//! overlap step `s`'s COMPUTE and STORE (the GEMM schedule's scheme):
//! - the LOADs of step `s >= 2` wait until step `s - 2`'s COMPUTE has
//!   consumed its inputs (its last COMPUTE instruction releases them);
//! - the COMPUTE of step `s` waits for its LOADs and, for `s >= 2`, until
//!   step `s - 2`'s STOREs have read the outputs of the same set;
//! - the STOREs of step `s` wait for its COMPUTE.
//!
//! So a step must read its inputs only in COMPUTE, and write what it
//! stores to regions of its own set that no LOAD writes. The stream starts
//! and ends with every queue idle and no token left.

use isa::instr::{self as ins, Deps, Instr, Queue};

/// One step: its instructions per queue (an empty list gets a `sync`).
#[derive(Debug, Default)]
pub(crate) struct Step {
    pub load: Vec<Instr>,
    pub compute: Vec<Instr>,
    pub store: Vec<Instr>,
}

fn sync(queue: Queue) -> Instr {
    Instr::from(ins::Sync { deps: Deps::NONE, queue: queue as u8 })
}

/// The steps joined as the module says, in a program order that keeps the
/// LOAD stream up to two steps ahead.
pub(crate) fn chain(steps: Vec<Step>) -> Vec<Instr> {
    let n = steps.len();
    let mut loads = Vec::with_capacity(n);
    let mut rest = Vec::with_capacity(n);
    for (s, mut st) in steps.into_iter().enumerate() {
        for (list, q) in [(&mut st.load, Queue::Load), (&mut st.compute, Queue::Compute), (&mut st.store, Queue::Store)]
        {
            if list.is_empty() {
                list.push(sync(q));
            }
        }
        st.load[0].deps_mut().pop_next = s >= 2;
        st.load.last_mut().expect("non-empty").deps_mut().push_next = true;
        {
            let d = st.compute[0].deps_mut();
            d.pop_prev = true;
            d.pop_next = s >= 2;
        }
        {
            let d = st.compute.last_mut().expect("non-empty").deps_mut();
            d.push_prev = s + 2 < n;
            d.push_next = true;
        }
        st.store[0].deps_mut().pop_prev = true;
        st.store.last_mut().expect("non-empty").deps_mut().push_prev = s + 2 < n;
        loads.push(st.load);
        rest.push((st.compute, st.store));
    }
    let mut out = Vec::new();
    let mut loads = loads.into_iter();
    out.extend(loads.next().into_iter().flatten());
    out.extend(loads.next().into_iter().flatten());
    for (compute, store) in rest {
        out.extend(compute);
        out.extend(store);
        out.extend(loads.next().into_iter().flatten());
    }
    out
}

/// A step whose COMPUTE is array work (`main`) then a post-processing
/// epilogue (`epi`, each instruction with its estimated busy cycles).
#[derive(Debug, Default)]
pub(crate) struct PipeStep {
    pub load: Vec<Instr>,
    pub main: Vec<Instr>,
    pub epi: Vec<(Instr, u64)>,
    pub store: Vec<Instr>,
    /// The STOREs read what `main` writes (else only what `epi` writes):
    /// then `main`, not `epi`, waits for the STOREs of two steps before.
    pub store_reads_main: bool,
    /// Array work before `main` (`pre`) and post-processing between the
    /// two (`init`, with busy estimates): what `main`'s accumulator must
    /// start from when the array computes part of it (the attention's
    /// folded cross terms). `init` issues after the whole of `pre` and
    /// before any of `main`; `pre` counts as `main` for the tokens.
    pub pre: Vec<Instr>,
    pub init: Vec<(Instr, u64)>,
    /// The epilogue reads nothing the LOADs of two steps later write: the
    /// array work, not the epilogue, releases the set to them, so they
    /// run under the epilogue instead of after it.
    pub release_after_main: bool,
}

/// Array busy cycles of an instruction (0 for others).
fn array_cycles(i: &Instr) -> u64 {
    match i {
        Instr::Matmul(m) => (m.m as u64).max(if m.preload == 1 { m.k as u64 } else { 0 }),
        Instr::Ldw(l) => (if l.trans == 1 { l.n } else { l.k }) as u64,
        _ => 0,
    }
}

/// Steps as `chain` joins them, but software-pipelined in the COMPUTE
/// queue: step `s`'s epilogue is interleaved with step `s + 1`'s array
/// work, so the vector unit and the array run at once (COMPUTE issues in
/// order, and a post-processing instruction waits for the array to drain:
/// each epilogue instruction goes after enough array cycles to cover the
/// previous one's; `drain` is the array's latency, rows + cols). Tokens:
/// - the LOADs of step `s >= 2` wait for step `s - 2`'s epilogue (it
///   releases the set: its last instruction);
/// - step `s`'s array work waits for its LOADs and, for `s >= 2`, for
///   step `s - 2`'s STOREs when it rewrites what they read (else its
///   epilogue waits for them);
/// - the STOREs of step `s` wait for its epilogue.
///
/// So `main` must not write what the epilogue of the step before reads
/// unless the hardware interlocks order them (different accumulator sets
/// per step), and the epilogue's instructions must touch only the step's
/// own set (an accumulator span overlapping the next set's would stall
/// the array).
pub(crate) fn chain_pipelined(steps: Vec<PipeStep>, drain: u64) -> Vec<Instr> {
    let n = steps.len();
    let mut loads = Vec::with_capacity(n);
    let mut mains = Vec::with_capacity(n);
    let mut epis = Vec::with_capacity(n);
    let mut stores = Vec::with_capacity(n);
    let mut inits = Vec::with_capacity(n);
    for (s, mut st) in steps.into_iter().enumerate() {
        if st.load.is_empty() {
            st.load.push(sync(Queue::Load));
        }
        // `pre` then `main` as one array stream; `init` goes in after the
        // first `pre.len()` of it.
        let pre_len = st.pre.len();
        st.main.splice(0..0, std::mem::take(&mut st.pre));
        inits.push((pre_len, std::mem::take(&mut st.init)));
        if st.main.is_empty() {
            st.main.push(sync(Queue::Compute));
        }
        if st.epi.is_empty() {
            st.epi.push((sync(Queue::Compute), 1));
        }
        if st.store.is_empty() {
            st.store.push(sync(Queue::Store));
        }
        st.load[0].deps_mut().pop_next = s >= 2;
        st.load.last_mut().expect("non-empty").deps_mut().push_next = true;
        {
            let d = st.main[0].deps_mut();
            d.pop_prev = true;
            d.pop_next = s >= 2 && st.store_reads_main;
        }
        st.epi[0].0.deps_mut().pop_next = s >= 2 && !st.store_reads_main;
        {
            let d = st.epi.last_mut().expect("non-empty").0.deps_mut();
            d.push_prev = s + 2 < n && !st.release_after_main;
            d.push_next = true;
        }
        if st.release_after_main {
            st.main.last_mut().expect("non-empty").deps_mut().push_prev = s + 2 < n;
        }
        st.store[0].deps_mut().pop_prev = true;
        st.store.last_mut().expect("non-empty").deps_mut().push_prev = s + 2 < n;
        loads.push(st.load);
        mains.push(st.main);
        epis.push(st.epi);
        stores.push(st.store);
    }
    let mut out = Vec::new();
    let mut loads = loads.into_iter();
    out.extend(loads.next().into_iter().flatten());
    out.extend(loads.next().into_iter().flatten());
    let mut mains = mains.into_iter();
    let mut inits = inits.into_iter();
    if let (Some(main), Some((pre_len, init))) = (mains.next(), inits.next()) {
        let mut main = main.into_iter();
        out.extend(main.by_ref().take(pre_len));
        out.extend(init.into_iter().map(|e| e.0));
        out.extend(main);
    }
    for (epi, store) in epis.into_iter().zip(stores) {
        let next = mains.next().unwrap_or_default();
        let (mut pre_left, init) = inits.next().unwrap_or_default();
        let mut init = Some(init).filter(|i| !i.is_empty());
        let mut array_left: u64 = next.iter().map(array_cycles).sum();
        let mut next = next.into_iter().peekable();
        let last = epi.len() - 1;
        let mut vector_left: u64 = epi.iter().chain(init.iter().flatten()).map(|e| e.1).sum();
        // Estimated cycles (from the step's start) when the array and the
        // vector unit are free, and when the array has drained.
        let (mut array, mut vector, mut drained) = (0u64, 0u64, 0u64);
        // The next step's `init` as soon as its `pre` is out: it holds
        // back the rest of that step's array work.
        fn emit_init(
            init: &mut Option<Vec<(Instr, u64)>>,
            out: &mut Vec<Instr>,
            (array, vector, drained, vector_left): (&mut u64, &mut u64, &mut u64, &mut u64),
        ) {
            for (instr, cycles) in init.take().into_iter().flatten() {
                let start = (*vector).max(*drained);
                *array = (*array).max(start);
                *vector = start + cycles;
                *vector_left -= cycles;
                out.push(instr);
            }
        }
        for (k, (instr, cycles)) in epi.into_iter().enumerate() {
            // Array work of the next step while the vector unit is busy:
            // the epilogue instruction goes in when the unit frees. While
            // the epilogue has more work left than the array, only array
            // work that drains before the unit frees goes first (a vector
            // instruction waits for the drain, so an array instruction
            // running past the unit's free cycle delays the whole chain);
            // once the array has more left, it is kept busy instead.
            while let Some(i) = next.peek() {
                if pre_left == 0 && init.is_some() {
                    emit_init(&mut init, &mut out, (&mut array, &mut vector, &mut drained, &mut vector_left));
                }
                let c = array_cycles(i);
                let settle = if matches!(i, Instr::Matmul(_)) { drain } else { 0 };
                let fits = array + c + settle <= vector;
                let array_bound = array_left >= vector_left;
                if !(fits || (array_bound && array < vector)) {
                    break;
                }
                let i = next.next().expect("peeked");
                pre_left = pre_left.saturating_sub(1);
                array += c;
                array_left -= c;
                if matches!(i, Instr::Matmul(_)) {
                    drained = array + drain;
                }
                out.push(i);
            }
            vector_left -= cycles;
            let start = vector.max(drained);
            array = array.max(start);
            vector = start + cycles;
            out.push(instr);
            if k == last {
                out.extend(store.iter().cloned());
                out.extend(loads.next().into_iter().flatten());
            }
        }
        out.extend(next.by_ref().take(pre_left));
        emit_init(&mut init, &mut out, (&mut array, &mut vector, &mut drained, &mut vector_left));
        out.extend(next);
    }
    out
}

/// Moves: steps whose STOREs read what their LOADs wrote (a copy through
/// a buffer, no compute), over two buffer sets. A COMPUTE `sync` relays
/// each step's LOAD to its STORE, and another relays the STORE of step
/// `s - 1` to the LOADs of step `s + 1`, which reuse its set.
pub(crate) fn chain_moves(steps: Vec<(Vec<Instr>, Vec<Instr>)>) -> Vec<Instr> {
    let n = steps.len();
    let mut out = Vec::new();
    let relay = |deps: Deps| Instr::from(ins::Sync { deps, queue: Queue::Compute as u8 });
    let mut pending_loads: Vec<Vec<Instr>> = Vec::with_capacity(n);
    let mut stores: Vec<Vec<Instr>> = Vec::with_capacity(n);
    for (s, (mut load, mut store)) in steps.into_iter().enumerate() {
        if load.is_empty() {
            load.push(sync(Queue::Load));
        }
        if store.is_empty() {
            store.push(sync(Queue::Store));
        }
        load[0].deps_mut().pop_next = s >= 2;
        load.last_mut().expect("non-empty").deps_mut().push_next = true;
        store[0].deps_mut().pop_prev = true;
        store.last_mut().expect("non-empty").deps_mut().push_prev = s + 1 < n;
        pending_loads.push(load);
        stores.push(store);
    }
    let mut loads = pending_loads.into_iter();
    out.extend(loads.next().into_iter().flatten());
    out.extend(loads.next().into_iter().flatten());
    for (s, store) in stores.into_iter().enumerate() {
        out.push(relay(Deps { pop_prev: true, push_next: true, ..Deps::NONE }));
        out.extend(store);
        if s >= 1 {
            // Store s - 1 has read set (s + 1) % 2: the LOADs of s + 1 may go.
            out.push(relay(Deps { pop_next: true, push_prev: s + 1 < n, ..Deps::NONE }));
        }
        out.extend(loads.next().into_iter().flatten());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Five copies of 64-byte rows through two scratchpad rows: every
    /// LOAD waits for the STORE that read its row before.
    #[test]
    fn moves_reuse_a_set_only_after_its_store() {
        let cfg = isa::HwConfig::tiny_4x4();
        let n = 5usize;
        let data: Vec<u8> = (0..2 * n * 4).map(|i| if i < n * 4 { i as u8 + 1 } else { 0 }).collect();
        let steps = (0..n)
            .map(|s| {
                let at = (s % 2) as u16;
                let l = Instr::from(ins::Load {
                    dram: (s * 4) as u32,
                    stride: 4,
                    rows: 1,
                    cols: 4,
                    addr: at,
                    ..Default::default()
                });
                let st = Instr::from(ins::Store {
                    dram: (n * 4 + s * 4) as u32,
                    stride: 4,
                    rows: 1,
                    cols: 4,
                    addr: at,
                    ..Default::default()
                });
                (vec![l], vec![st])
            })
            .collect();
        let (mut d, _, base) = crate::test_run::run_alone(&cfg, chain_moves(steps), data.clone());
        assert_eq!(d.read_mem(base + (n * 4) as u64, n * 4).unwrap(), data[..n * 4]);
    }

    /// Four steps, each adding a float row to itself: loads overlap, every
    /// token is balanced (the model runs it to the end) and each step's
    /// result lands.
    #[test]
    fn chained_steps_run_and_balance_tokens() {
        let cfg = isa::HwConfig::tiny_4x4();
        let n = 4usize;
        let mut data = Vec::new();
        for s in 0..n {
            data.extend((0..4).flat_map(|c| ((s * 4 + c) as f32).to_bits().to_le_bytes()));
        }
        let out_at = data.len() as u32;
        data.resize(2 * data.len(), 0);
        let steps = (0..n)
            .map(|s| {
                let set = (s % 2) as u16;
                Step {
                    load: vec![Instr::from(ins::Load {
                        buf: ins::BUF_ACC,
                        dram: (s * 16) as u32,
                        stride: 16,
                        rows: 1,
                        cols: 4,
                        addr: set,
                        ..Default::default()
                    })],
                    compute: vec![Instr::from(ins::Vop {
                        op: ins::VOP_ADD,
                        dst: 2 + set,
                        a: set,
                        b: set,
                        b_step: 1,
                        rows: 1,
                        len: 4,
                        ..Default::default()
                    })],
                    store: vec![Instr::from(ins::Store {
                        buf: ins::BUF_ACC,
                        dram: out_at + (s * 16) as u32,
                        stride: 16,
                        rows: 1,
                        cols: 4,
                        addr: 2 + set,
                        ..Default::default()
                    })],
                }
            })
            .collect();
        let (mut d, _, base) = crate::test_run::run_alone(&cfg, chain(steps), data);
        let got = d.read_mem(base + out_at as u64, n * 16).unwrap();
        for (i, c) in got.chunks(4).enumerate() {
            assert_eq!(f32::from_le_bytes(c.try_into().unwrap()), 2.0 * i as f32, "element {i}");
        }
    }
}
