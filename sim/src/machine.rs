//! The cycle-accurate model of the whole accelerator: fetch, dispatch, the
//! LOAD / COMPUTE / STORE queues and their token counters, the DMA engines
//! against the DRAM model, the array and the post-processing unit.
//!
//! Time advances from one cycle where something can happen to the next
//! (never one PE or one idle cycle at a time). In every visited cycle the
//! phases run in a fixed order, each reading the state as it was at the
//! start of the cycle, which is what the RTL's registers do:
//! 0. token pushes due this cycle take effect;
//! 1. the memory arbiter grants at most one request (fetch, LOAD, STORE);
//! 2. dispatch moves at most one instruction into its queue (visible next cycle);
//! 3. each queue's head may start.
//!
//! Each instruction's data effect is applied when it starts: in a program
//! whose queues are ordered by tokens (isa/ISA.md, "Hazards"), nothing else
//! can observe the buffers it touches before it finishes.

use crate::array::{self, WeightTile};
use crate::dma::{self, BurstPlan};
use crate::dram::Dram;
use crate::kernels::Kernel;
use crate::memory::Memory;
use isa::instr::{self as ins, Deps, Instr, Queue, INSTR_BYTES};
use isa::legal::{self, DmaBlock};
use isa::regs::{self, Counter, Counters, ErrorCode};
use isa::timing::*;
use isa::{Device, DeviceError, HwConfig, InstrTrace};
use std::collections::VecDeque;

/// Memory requesters, in round-robin order: fetch, LOAD (1), STORE.
const FETCH: usize = 0;
const STORE: usize = 2;

/// Token counters: load->compute, compute->load, compute->store, store->compute.
fn token_counter(from: Queue, to: Queue) -> usize {
    match (from, to) {
        (Queue::Load, Queue::Compute) => 0,
        (Queue::Compute, Queue::Load) => 1,
        (Queue::Compute, Queue::Store) => 2,
        (Queue::Store, Queue::Compute) => 3,
        _ => unreachable!("no token path {from} -> {to}"),
    }
}

#[derive(Clone, Debug)]
struct Entry {
    index: u32,
    instr: Instr,
    avail: u64,
}

#[derive(Clone, Debug)]
struct Fetched {
    index: u32,
    avail: u64,
    bytes: [u8; INSTR_BYTES],
    /// The decoded instruction and its legality check, kept from the first
    /// cycle dispatch looks at it: a head waiting for room in its queue is
    /// looked at every visited cycle.
    checked: Option<Result<Instr, ErrorCode>>,
}

/// A cycle no run reaches: a LOAD unit whose chunk writes stopped at a
/// malformed stream's bad record (it faults first) finishes nothing after.
const NEVER: u64 = u64::MAX / 4;

/// A DMA instruction in flight.
#[derive(Clone, Debug)]
struct DmaJob {
    index: u32,
    deps: Deps,
    block: DmaBlock,
    start: u64,
    plan: BurstPlan,
    next: usize,
    data_start: Vec<u64>,
    /// STORE: earliest request cycle per burst.
    ready: Vec<u64>,
    last_grant: u64,
    chunks: u64,
    /// An indexed LOAD: its ids and rows (the ids are burst range 0).
    gather: Option<dma::Gather>,
    /// An indexed LOAD: the cycle its ids have arrived (row bursts wait for it).
    ids_at: u64,
    /// An indexed LOAD whose id at this position is outside `0..limit`:
    /// it reads only the ids, then faults.
    bad_id: Option<u32>,
    /// A compressed LOAD: its stream's records.
    stream: Option<dma::Stream>,
}

impl DmaJob {
    fn new(
        index: u32,
        deps: Deps,
        block: DmaBlock,
        start: u64,
        plan: BurstPlan,
        ready: Vec<u64>,
        chunks: u64,
    ) -> DmaJob {
        let data_start = Vec::with_capacity(plan.bursts.len());
        let (gather, ids_at, bad_id) = (None, 0, None);
        DmaJob {
            index,
            deps,
            block,
            start,
            plan,
            next: 0,
            data_start,
            ready,
            last_grant: 0,
            chunks,
            gather,
            ids_at,
            bad_id,
            stream: None,
        }
    }

    /// Bursts of the ids an indexed LOAD reads before its rows (0: not indexed).
    fn id_bursts(&self) -> usize {
        if self.gather.is_some() {
            self.plan.first_range_bursts()
        } else {
            0
        }
    }

    fn next_ready(&self) -> Option<u64> {
        (self.next < self.plan.bursts.len()).then(|| {
            let mut r = (self.start + 1).max(self.last_grant + 1);
            if let Some(&s) = self.ready.get(self.next) {
                r = r.max(s);
            }
            // A gathered row's address is known once the ids have arrived.
            if self.next >= self.id_bursts() && self.gather.is_some() {
                r = r.max(self.ids_at);
            }
            r
        })
    }
}

/// A DMA unit is two stages: the request stage holds one instruction
/// (`job`) until its last burst is accepted, then the next instruction may
/// start while the previous one's data still moves; the buffer side (LOAD's
/// chunk writes, STORE's chunk reads) stays in program order.
#[derive(Clone, Debug, Default)]
struct DmaUnit {
    queue: VecDeque<Entry>,
    /// The request stage: the instruction whose bursts are being requested.
    job: Option<DmaJob>,
    /// First cycle the next instruction may start (after the last grant).
    issue_free_at: u64,
    /// Cycle every started instruction has finished by.
    idle_at: u64,
    /// Last buffer-side cycle of the previous instruction (LOAD: its last
    /// chunk write; STORE: its last chunk read).
    seq_last: u64,
}

#[derive(Clone, Debug, Default)]
struct ComputeUnit {
    queue: VecDeque<Entry>,
    array_free: u64,
    ppu_free: u64,
    /// Cycle after the last accumulator write of every issued MATMUL.
    drained_at: u64,
    /// First cycle a new instruction may issue (one per cycle).
    issue_ok: u64,
    /// End of the union of issue intervals so far.
    busy_until: u64,
    /// Scratchpad rows the running PPU instruction writes, `[lo, hi)`.
    ppu_dst: (u64, u64),
    /// Accumulator rows the running REQUANT reads, or the running vector
    /// instruction reads or writes, `[lo, hi)`.
    ppu_acc: (u64, u64),
}

/// The timing state of one run.
#[derive(Clone, Debug)]
struct Run {
    now: u64,
    fetch_next: u32,
    fetched: VecDeque<Fetched>,
    dispatched: u32,
    dram: Dram,
    rr_next: usize,
    load: DmaUnit,
    store: DmaUnit,
    compute: ComputeUnit,
    tokens: [u32; 4],
    pushes: Vec<(u64, usize, u32)>,
    last_active: u64,
    /// Cycles the run has advanced through (`advance` pauses between events).
    clock: u64,
    /// An indexed LOAD's bad id, detected when its ids arrive:
    /// (cycle, instruction, position of the id).
    index_fault: Option<(u64, u32, u32)>,
    /// A compressed LOAD's bad record, examined once the stream bytes it
    /// waits for are in: (cycle, instruction, ERROR_INFO). Known from the
    /// grant of the burst holding the last of them.
    stream_fault: Option<(u64, u32, u32)>,
}

/// The cycle-accurate model; implements `Device`.
pub struct Model {
    cfg: HwConfig,
    rows: usize,
    cols: usize,
    mem: Memory,
    spad: Vec<u8>,
    acc: Vec<i32>,
    active: WeightTile,
    shadow: WeightTile,
    prog_addr: u32,
    prog_len: u32,
    win_base: u32,
    win_limit: u32,
    status: u32,
    error_code: ErrorCode,
    error_pc: u32,
    error_info: u32,
    counters: Counters,
    run: Option<Box<Run>>,
    trace: Vec<InstrTrace>,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{0}")]
    Unsupported(String),
}

impl Model {
    /// A model whose array arithmetic runs on the fastest kernel the host has.
    pub fn new(cfg: &HwConfig) -> Result<Model, ModelError> {
        Model::with_kernel(cfg, Kernel::best())
    }

    /// A model whose array arithmetic runs on `kernel` (all kernels give the
    /// same bits; the benches compare their speed).
    pub fn with_kernel(cfg: &HwConfig, kernel: Kernel) -> Result<Model, ModelError> {
        if !kernel.available() {
            return Err(ModelError::Unsupported(format!("the {kernel} kernel does not run on this host")));
        }
        if cfg.array.dataflow != isa::config::Dataflow::WeightStationary {
            return Err(ModelError::Unsupported(
                "array.dataflow = \"output-stationary\" is not implemented by the model yet; use \"weight-stationary\""
                    .into(),
            ));
        }
        let (rows, cols) = (cfg.array.rows as usize, cfg.array.cols as usize);
        Ok(Model {
            cfg: cfg.clone(),
            rows,
            cols,
            mem: Memory::new(cfg.dram_bytes()),
            spad: vec![0; cfg.spad_rows() as usize * cols],
            acc: vec![0; cfg.acc_rows() as usize * cols],
            active: WeightTile::zero_with(rows, cols, kernel),
            shadow: WeightTile::zero_with(rows, cols, kernel),
            prog_addr: 0,
            prog_len: 0,
            win_base: 0,
            win_limit: 0,
            status: regs::STATUS_IDLE,
            error_code: ErrorCode::None,
            error_pc: 0,
            error_info: 0,
            counters: Counters::default(),
            run: None,
            trace: Vec::new(),
        })
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn error(&self) -> (ErrorCode, u32) {
        (self.error_code, self.error_pc)
    }

    fn start(&mut self) {
        self.counters = Counters::default();
        self.error_code = ErrorCode::None;
        self.error_pc = 0;
        self.error_info = 0;
        self.trace = (0..self.prog_len).map(|index| InstrTrace { index, start: 0, finish: 0 }).collect();
        self.status = regs::STATUS_RUNNING;
        // CTRL.start resets the array: both weight buffers are zero.
        let kernel = self.active.kernel();
        self.active = WeightTile::zero_with(self.rows, self.cols, kernel);
        self.shadow = WeightTile::zero_with(self.rows, self.cols, kernel);
        let run = Run {
            now: 0,
            fetch_next: 0,
            fetched: VecDeque::new(),
            dispatched: 0,
            dram: Dram::from_config(&self.cfg),
            rr_next: 0,
            load: DmaUnit::default(),
            store: DmaUnit::default(),
            compute: ComputeUnit::default(),
            tokens: [0; 4],
            pushes: Vec::new(),
            last_active: 0,
            clock: 0,
            index_fault: None,
            stream_fault: None,
        };
        self.run = Some(Box::new(run));
        let (base, limit) = (self.win_base as u64, self.win_limit as u64);
        let prog = self.prog_addr as u64;
        let end = prog + self.prog_len as u64 * INSTR_BYTES as u64;
        if limit > self.mem.size()
            || base > limit
            || !prog.is_multiple_of(INSTR_BYTES as u64)
            || self.prog_len == 0
            || prog < base
            || end > limit
        {
            self.fault(0, ErrorCode::BadProgram, 0);
        }
    }

    fn fault(&mut self, t: u64, code: ErrorCode, pc: u32) {
        self.status = regs::STATUS_FAULT;
        self.error_code = code;
        self.error_pc = pc;
        self.counters.set(Counter::Cycles, t + 1);
    }

    /// Runs cycles until the run stops or the next event lies past `deadline`.
    fn run_until(&mut self, deadline: u64) {
        let mut run = match self.run.take() {
            Some(r) => r,
            None => return,
        };
        while self.status == regs::STATUS_RUNNING {
            let t = run.now;
            if t > deadline {
                // Nothing happens before `t`: the cycles up to the deadline pass.
                run.clock = run.clock.max(deadline.saturating_add(1));
                break;
            }
            let acted = self.cycle(&mut run, t);
            if self.status != regs::STATUS_RUNNING {
                break;
            }
            match self.next_event(&run, t, acted) {
                Some(next) => run.now = next,
                None => {
                    // Nothing can ever happen again: the watchdog fires
                    // WATCHDOG_CYCLES after the last active cycle (visit that
                    // cycle like an event, so `advance` can pause before it).
                    let at = run.last_active + WATCHDOG_CYCLES;
                    if t < at {
                        run.now = at;
                    } else {
                        let pc = run
                            .compute
                            .queue
                            .front()
                            .or(run.load.queue.front())
                            .or(run.store.queue.front())
                            .map(|e| e.index);
                        self.fault(at, ErrorCode::Deadlock, pc.unwrap_or(run.dispatched));
                    }
                }
            }
        }
        if self.status == regs::STATUS_RUNNING {
            self.counters.set(Counter::Cycles, run.clock);
        }
        self.run = Some(run);
    }

    /// One visited cycle; returns whether anything happened.
    fn cycle(&mut self, run: &mut Run, t: u64) -> bool {
        let mut acted = false;
        // (Both in one cycle: the stream's load is the earlier one, since a
        // load with a bad id holds the request stage until it faults.)
        if let Some((at, pc, info)) = run.stream_fault {
            if at <= t {
                self.error_info = info;
                self.fault(t, ErrorCode::BadStream, pc);
                return true;
            }
        }
        if let Some((at, pc, position)) = run.index_fault {
            if at <= t {
                self.error_info = position;
                self.fault(t, ErrorCode::IndexOutOfRange, pc);
                return true;
            }
        }
        // Phase 0: token pushes due now.
        if !run.pushes.is_empty() {
            let mut i = 0;
            while i < run.pushes.len() {
                if run.pushes[i].0 <= t {
                    let (_, counter, index) = run.pushes.swap_remove(i);
                    if run.tokens[counter] >= TOKEN_MAX {
                        self.fault(t, ErrorCode::TokenOverflow, index);
                        return true;
                    }
                    run.tokens[counter] += 1;
                } else {
                    i += 1;
                }
            }
        }
        // Phase 1: memory arbitration.
        acted |= self.arbitrate(run, t);
        // Phase 2: dispatch.
        acted |= self.dispatch(run, t);
        if self.status != regs::STATUS_RUNNING {
            return true;
        }
        // Phase 3: starts.
        acted |= self.start_dma(run, t, false);
        acted |= self.start_dma(run, t, true);
        acted |= self.issue_compute(run, t);
        if acted {
            run.last_active = run.last_active.max(t);
        }
        acted
    }

    fn fetch_block_len(&self, run: &Run) -> u32 {
        let first = self.prog_addr / INSTR_BYTES as u32 + run.fetch_next;
        (FETCH_BLOCK - first % FETCH_BLOCK).min(self.prog_len - run.fetch_next)
    }

    fn fetch_wants(&self, run: &Run) -> bool {
        run.fetch_next < self.prog_len && run.fetched.len() as u32 + self.fetch_block_len(run) <= FETCH_BUFFER
    }

    fn arbitrate(&mut self, run: &mut Run, t: u64) -> bool {
        let ready = [
            self.fetch_wants(run),
            run.load.job.as_ref().and_then(|j| j.next_ready()).is_some_and(|r| r <= t),
            run.store.job.as_ref().and_then(|j| j.next_ready()).is_some_and(|r| r <= t),
        ];
        if !ready.iter().any(|&r| r) || !run.dram.can_accept(t) {
            return false;
        }
        let who = (0..3).map(|k| (run.rr_next + k) % 3).find(|&k| ready[k]).expect("someone is ready");
        run.rr_next = (who + 1) % 3;
        let w = run.dram.bytes_per_cycle;
        self.counters.add(Counter::DramRequests, 1);
        match who {
            FETCH => {
                let n = self.fetch_block_len(run);
                let addr = self.prog_addr as u64 + run.fetch_next as u64 * INSTR_BYTES as u64;
                let bytes = n as u64 * INSTR_BYTES as u64;
                let beat0 = addr / w;
                let beats = (addr + bytes - 1) / w - beat0 + 1;
                let g = run.dram.accept(t, beats);
                self.counters.add(Counter::DramReadBytes, beats * w);
                run.last_active = run.last_active.max(g.end - 1);
                for i in 0..n {
                    let a = addr + i as u64 * INSTR_BYTES as u64;
                    let last_beat = (a + INSTR_BYTES as u64 - 1) / w;
                    let mut b = [0u8; INSTR_BYTES];
                    self.mem.read(a, &mut b);
                    run.fetched.push_back(Fetched {
                        index: run.fetch_next + i,
                        avail: g.data_start + (last_beat - beat0) + 1,
                        bytes: b,
                        checked: None,
                    });
                }
                run.fetch_next += n;
            }
            unit => {
                let is_store = unit == STORE;
                let du = if is_store { &mut run.store } else { &mut run.load };
                let job = du.job.as_mut().expect("ready unit has a job");
                let burst = job.plan.bursts[job.next];
                let g = run.dram.accept(t, burst.beats);
                job.data_start.push(g.data_start);
                job.last_grant = t;
                job.next += 1;
                // (Only the first malformed stream faults: a later one's
                // chunks wait behind its bad record forever.)
                let first_bad = run.stream_fault.is_none();
                if let Some(stream) = job.stream.as_ref().filter(|s| s.bad.is_some() && first_bad) {
                    let bad_burst = dma::stream_fault_burst(&job.block, stream, &job.plan, w);
                    if bad_burst == Some(job.next - 1) {
                        let after = job.start.max(du.seq_last);
                        let (at, _) = dma::stream_fault(
                            &job.block,
                            stream,
                            self.cols as u64,
                            w,
                            after,
                            &job.plan,
                            &job.data_start,
                        );
                        let info = stream.bad.expect("bad").info as u32;
                        run.stream_fault = Some((at, job.index, info));
                    }
                }
                if job.gather.is_some() && job.next == job.id_bursts() {
                    // The ids are usable the cycle after their last beat.
                    job.ids_at = g.end;
                    if let Some(position) = job.bad_id {
                        run.index_fault = Some((g.end, job.index, position));
                    }
                }
                let counter = if is_store { Counter::DramWriteBytes } else { Counter::DramReadBytes };
                self.counters.add(counter, burst.beats * w);
                run.last_active = run.last_active.max(g.end - 1);
                let last = job.next == job.plan.bursts.len();
                if last && job.stream.as_ref().is_some_and(|s| s.bad.is_some()) {
                    // A malformed stream frees the request stage; its chunk
                    // writes stop at the bad record, where it faults, so no
                    // later LOAD writes and the unit never becomes idle.
                    du.job = None;
                    du.issue_free_at = t + 1;
                    du.seq_last = NEVER;
                    du.idle_at = NEVER;
                    return true;
                }
                // A LOAD with a bad id keeps its request stage until it faults.
                if last && job.bad_id.is_none() {
                    let job = du.job.take().expect("job");
                    let finish = if is_store {
                        g.end
                    } else {
                        // Chunk writes follow the previous LOAD's.
                        let after = job.start.max(du.seq_last);
                        let (f, chunks) = dma::load_finish(
                            &job.block,
                            job.gather.as_ref(),
                            job.stream.as_ref(),
                            self.cols as u64,
                            w,
                            after,
                            &job.plan,
                            &job.data_start,
                        );
                        let c = if job.block.to_acc { Counter::AccWriteRows } else { Counter::SpadWriteRows };
                        self.counters.add(c, chunks);
                        du.seq_last = f - 1;
                        f
                    };
                    if is_store {
                        let c = if job.block.to_acc { Counter::AccReadRows } else { Counter::SpadReadRows };
                        self.counters.add(c, job.chunks);
                    }
                    du.issue_free_at = t + 1;
                    let busy = finish - job.start.max(du.idle_at).min(finish);
                    du.idle_at = du.idle_at.max(finish);
                    let q = if is_store { Queue::Store } else { Queue::Load };
                    self.counters.add(if is_store { Counter::StoreBusy } else { Counter::LoadBusy }, busy);
                    self.trace[job.index as usize] = InstrTrace { index: job.index, start: job.start, finish };
                    run.last_active = run.last_active.max(finish - 1);
                    schedule_pushes(run, q, job.deps, finish, finish, job.index);
                }
            }
        }
        true
    }

    fn dispatch(&mut self, run: &mut Run, t: u64) -> bool {
        let head = match run.fetched.front_mut() {
            Some(h) if h.avail <= t => h,
            Some(_) => return false,
            None => {
                if run.dispatched == self.prog_len && run.fetch_next == self.prog_len {
                    self.fault(t, ErrorCode::ProgramOverrun, self.prog_len);
                    return true;
                }
                return false;
            }
        };
        let index = head.index;
        let (cfg, window) = (&self.cfg, (self.win_base as u64, self.win_limit as u64));
        let checked = head.checked.get_or_insert_with(|| {
            let instr = Instr::decode(&head.bytes).map_err(|_| ErrorCode::IllegalInstruction)?;
            if instr.queue().is_some() {
                legal::check(&instr, cfg)
                    .and_then(|_| legal::check_window(&instr, window.0, window.1))
                    .map_err(|e| e.code)?;
            }
            Ok(instr)
        });
        let instr = match *checked {
            Ok(i) => i,
            Err(code) => {
                self.fault(t, code, index);
                return true;
            }
        };
        let queue = match instr.queue() {
            Some(q) => q,
            None => {
                // FINISH: completes when everything is idle.
                let idle = run.load.queue.is_empty()
                    && run.store.queue.is_empty()
                    && run.compute.queue.is_empty()
                    && run.load.job.is_none()
                    && run.store.job.is_none()
                    && run.load.idle_at <= t
                    && run.store.idle_at <= t
                    && run.compute.array_free <= t
                    && run.compute.ppu_free <= t
                    && run.compute.drained_at <= t
                    && run.pushes.is_empty()
                    && run.dram.outstanding(t) == 0;
                if idle {
                    run.fetched.pop_front();
                    run.dispatched += 1;
                    self.counters.add(Counter::Instructions, 1);
                    self.trace[index as usize] = InstrTrace { index, start: t, finish: t + 1 };
                    self.counters.set(Counter::Cycles, t + 1);
                    self.status = regs::STATUS_DONE;
                    return true;
                }
                return false;
            }
        };
        let q = match queue {
            Queue::Load => &mut run.load.queue,
            Queue::Compute => &mut run.compute.queue,
            Queue::Store => &mut run.store.queue,
        };
        if q.len() as u32 >= QUEUE_DEPTH {
            return false;
        }
        q.push_back(Entry { index, instr, avail: t + 1 });
        run.fetched.pop_front();
        run.dispatched += 1;
        self.counters.add(Counter::Instructions, 1);
        true
    }

    /// Whether the tokens an instruction pops are available.
    fn tokens_ready(run: &Run, q: Queue, d: Deps) -> bool {
        (!d.pop_prev || run.tokens[token_counter(q.prev().expect("checked"), q)] > 0)
            && (!d.pop_next || run.tokens[token_counter(q.next().expect("checked"), q)] > 0)
    }

    fn take_tokens(run: &mut Run, q: Queue, d: Deps) {
        if d.pop_prev {
            run.tokens[token_counter(q.prev().expect("checked"), q)] -= 1;
        }
        if d.pop_next {
            run.tokens[token_counter(q.next().expect("checked"), q)] -= 1;
        }
    }

    fn start_dma(&mut self, run: &mut Run, t: u64, is_store: bool) -> bool {
        let q = if is_store { Queue::Store } else { Queue::Load };
        let du = if is_store { &run.store } else { &run.load };
        // A `sync` waits until the unit is idle, so its push means "every
        // earlier DMA of this queue is done"; a transfer needs only the
        // request stage.
        let free_from = |h: &Entry| if matches!(h.instr, Instr::Sync(_)) { du.idle_at } else { du.issue_free_at };
        let head = match du.queue.front() {
            Some(h) if h.avail <= t && du.job.is_none() && free_from(h) <= t => h.clone(),
            _ => return false,
        };
        let free_at = free_from(&head);
        let deps = head.instr.deps();
        if !Self::tokens_ready(run, q, deps) {
            return false;
        }
        Self::take_tokens(run, q, deps);
        let du = if is_store { &mut run.store } else { &mut run.load };
        du.queue.pop_front();
        let stall = t - head.avail.max(free_at);
        self.counters.add(if is_store { Counter::StoreStall } else { Counter::LoadStall }, stall);
        let dim = self.cols as u64;
        let w = self.cfg.dram.bytes_per_cycle as u64;
        match head.instr {
            Instr::Load(l) => {
                let block = DmaBlock::of_load(&l);
                match legal::IndexList::of_load(&l) {
                    None if block.stream => {
                        // The stream as DRAM holds it when the load starts
                        // (a program orders its writer first with tokens);
                        // a malformed one faults before any byte moves.
                        // A malformed one is read like a good one and faults
                        // when its bad record is examined (ISA.md §4).
                        let bytes = self.mem.to_vec(block.dram, block.stride as usize);
                        let stream = dma::Stream::parse(&block, bytes);
                        dma::stream_copy(&block, &stream, dim, l.pad_value, &mut self.spad);
                        let plan = BurstPlan::of(&block, w);
                        let mut job = DmaJob::new(head.index, deps, block, t, plan, Vec::new(), 0);
                        job.stream = Some(stream);
                        du.job = Some(job);
                    }
                    None => {
                        dma::load_copy(&block, None, dim, l.pad_value, &self.mem, &mut self.spad, &mut self.acc);
                        du.job = Some(DmaJob::new(head.index, deps, block, t, BurstPlan::of(&block, w), Vec::new(), 0));
                    }
                    Some(ix) => {
                        // The ids as they are when the load starts (a program
                        // orders their writer before it with tokens).
                        let (lo, hi) = ix.span(block.rows);
                        let ids = ix.decode(&self.mem.to_vec(lo, (hi - lo) as usize));
                        let bad_id = ix.first_bad(&ids);
                        let ids = match bad_id {
                            Some(_) => Vec::new(),
                            None => ids.into_iter().map(|id| id as u64).collect(),
                        };
                        let gather = dma::Gather { id_bytes: (lo, hi), ids };
                        if bad_id.is_none() {
                            let (spad, acc) = (&mut self.spad, &mut self.acc);
                            dma::load_copy(&block, Some(&gather), dim, l.pad_value, &self.mem, spad, acc);
                        }
                        let plan = BurstPlan::of_gather(&block, &gather, w);
                        let mut job = DmaJob::new(head.index, deps, block, t, plan, Vec::new(), 0);
                        job.gather = Some(gather);
                        job.bad_id = bad_id.map(|y| y as u32);
                        du.job = Some(job);
                    }
                }
            }
            Instr::Store(s) => {
                let block = DmaBlock::of_store(&s);
                dma::store_copy(&block, dim, &self.spad, &self.acc, &mut self.mem);
                let plan = BurstPlan::of(&block, w);
                // Chunk reads follow the previous STORE's.
                let read_base = t.max(du.seq_last);
                let (ready, chunks) = dma::store_ready(&block, dim, w, read_base, &plan);
                du.seq_last = read_base + chunks;
                du.job = Some(DmaJob::new(head.index, deps, block, t, plan, ready, chunks));
            }
            Instr::Sync(_) => {
                du.issue_free_at = t + 1;
                du.idle_at = t + 1;
                self.counters.add(if is_store { Counter::StoreBusy } else { Counter::LoadBusy }, 1);
                self.trace[head.index as usize] = InstrTrace { index: head.index, start: t, finish: t + 1 };
                schedule_pushes(run, q, deps, t + 1, t + 1, head.index);
            }
            other => unreachable!("{other:?} in a DMA queue"),
        }
        true
    }

    /// `ldw` or a preload: the tile `(addr, k, n, wfmt, meta)` into the
    /// shadow weights, as its format says (legal: i8 or i8s24).
    fn load_shadow(&mut self, (addr, k, n, wfmt, meta, trans): (u16, u16, u16, u8, u16, u8), cols: usize) {
        let (addr, k, n) = (addr as usize, k as usize, n as usize);
        if trans != 0 {
            self.shadow.load_transposed(&self.spad, addr, k, n, cols);
        } else if wfmt == isa::instr::WFMT_I8_S24 {
            self.shadow.load_sparse24(&self.spad, (addr, meta as usize), k, n, cols);
        } else {
            self.shadow.load(&self.spad, addr, k, n, cols, wfmt);
        }
    }

    fn issue_compute(&mut self, run: &mut Run, t: u64) -> bool {
        let c = &run.compute;
        let head = match c.queue.front() {
            Some(h) if h.avail <= t && c.issue_ok <= t => h.clone(),
            _ => return false,
        };
        let ppu_running = c.ppu_free > t;
        let overlaps = |lo: u64, n: u64, r: (u64, u64)| ppu_running && lo < r.1 && r.0 < lo + n;
        let can_issue = match &head.instr {
            Instr::Ldw(l) => {
                c.array_free <= t
                    && !overlaps(l.addr as u64, l.weight_rows(), c.ppu_dst)
                    && !reads_positions(l.wfmt, l.meta, l.k, &overlaps, c.ppu_dst)
            }
            Instr::Matmul(m) => {
                // Its scratchpad reads (inputs, and the preloaded weights)
                // and its accumulator writes wait for the post-processor.
                let (lo, hi) = m.input_span();
                let reads_ppu_dst = overlaps(lo, hi - lo, c.ppu_dst)
                    || (m.preload != 0
                        && (overlaps(m.w as u64, m.preload_rows(), c.ppu_dst)
                            || reads_positions(m.wfmt, m.meta, m.k, &overlaps, c.ppu_dst)));
                c.array_free <= t && !reads_ppu_dst && !overlaps(m.acc as u64, m.m as u64, c.ppu_acc)
            }
            Instr::Requant(_) => c.ppu_free <= t && c.drained_at <= t,
            Instr::Vmax(_) | Instr::Vadd(_) | Instr::Vlut(_) => c.ppu_free <= t,
            // The vector unit reads what the array wrote: it waits for the drain.
            i if i.is_vector() => c.ppu_free <= t && c.drained_at <= t,
            Instr::Sync(_) => true,
            other => unreachable!("{other:?} in the compute queue"),
        };
        let deps = head.instr.deps();
        if !can_issue || !Self::tokens_ready(run, Queue::Compute, deps) {
            return false;
        }
        Self::take_tokens(run, Queue::Compute, deps);
        let c = &mut run.compute;
        c.queue.pop_front();
        // Stall: cycles the head waited while no sub-unit was busy.
        let wait_from = head.avail.max(c.issue_ok);
        self.counters.add(Counter::ComputeStall, t - wait_from.max(c.busy_until).min(t));
        c.issue_ok = t + 1;
        let (rows, cols) = (self.rows, self.cols);
        let latency = array_latency(self.cfg.array.rows, self.cfg.array.cols);
        // (end of issue interval, push_prev time, push_next time, finish)
        let (issue_end, prev_at, next_at, finish);
        match head.instr {
            Instr::Ldw(l) => {
                self.load_shadow((l.addr, l.k, l.n, l.wfmt, l.meta, l.trans), cols);
                // One weight row a cycle: k, or the n scratchpad rows of a
                // transposed tile.
                let busy = if l.trans != 0 { l.n as u64 } else { l.k as u64 };
                issue_end = t + busy;
                (prev_at, next_at, finish) = (issue_end, issue_end, issue_end);
                c.array_free = issue_end;
                self.counters.add(Counter::ArrayBusy, busy);
                self.counters.add(Counter::SpadReadRows, l.weight_rows() + position_rows(l.wfmt, l.k));
                self.counters.add(Counter::WeightRows, busy);
            }
            Instr::Matmul(m) => {
                if m.swap != 0 {
                    std::mem::swap(&mut self.active, &mut self.shadow);
                }
                array::matmul_pattern(&self.active, rows, cols, &self.spad, &m, &mut self.acc, m.acc as usize);
                self.counters.add(Counter::Macs, m.m as u64 * self.active.k as u64 * self.active.n as u64);
                let mut span = m.m as u64;
                if m.preload != 0 {
                    self.load_shadow((m.w, m.k, m.n, m.wfmt, m.meta, m.trans), cols);
                    let busy = if m.trans != 0 { m.n as u64 } else { m.k as u64 };
                    span = span.max(busy);
                    self.counters.add(Counter::SpadReadRows, m.preload_rows() + position_rows(m.wfmt, m.k));
                    self.counters.add(Counter::WeightRows, busy);
                }
                issue_end = t + span;
                let completion = t + m.m as u64 + latency;
                (prev_at, next_at, finish) = (issue_end, completion, completion);
                c.array_free = issue_end;
                c.drained_at = completion;
                self.counters.add(Counter::ArrayBusy, span);
                // A 2:4 input's second scratchpad row (ISA.md §3).
                let input_rows = if m.a_bstride != 0 { 2 } else { 1 };
                self.counters.add(Counter::SpadReadRows, input_rows * m.m as u64);
                self.counters.add(Counter::AccWriteRows, m.m as u64);
                if m.accumulate != 0 {
                    self.counters.add(Counter::AccReadRows, m.m as u64);
                }
            }
            Instr::Requant(r) => {
                let n = r.rows as u64;
                array::requant(
                    &self.acc,
                    r.acc as usize,
                    r.rows as usize,
                    r.params as usize,
                    &mut self.spad,
                    r.dst as usize,
                    cols,
                    r.zp as i32,
                    r.qmin as i32,
                    r.qmax as i32,
                );
                issue_end = t + n + REQUANT_OVERHEAD;
                (prev_at, next_at, finish) = (issue_end, issue_end, issue_end);
                c.ppu_free = issue_end;
                c.ppu_dst = (r.dst as u64, r.dst as u64 + n);
                c.ppu_acc = (r.acc as u64, r.acc as u64 + n);
                self.counters.add(Counter::PpuBusy, issue_end - t);
                self.counters.add(Counter::AccReadRows, n + 2);
                self.counters.add(Counter::SpadWriteRows, n);
                self.counters.add(Counter::PpuElements, n * cols as u64);
            }
            Instr::Vmax(v) => {
                let n = v.n as u64;
                array::vmax(
                    &mut self.spad,
                    cols,
                    v.a as usize,
                    v.a_stride as usize,
                    v.b as usize,
                    v.b_stride as usize,
                    v.dst as usize,
                    v.dst_stride as usize,
                    v.n as usize,
                    v.elem == ins::ELEM_U8,
                );
                issue_end = t + n + VMAX_OVERHEAD;
                (prev_at, next_at, finish) = (issue_end, issue_end, issue_end);
                c.ppu_free = issue_end;
                c.ppu_dst = (v.dst as u64, v.dst as u64 + (n - 1) * v.dst_stride as u64 + 1);
                c.ppu_acc = (0, 0);
                self.counters.add(Counter::PpuBusy, issue_end - t);
                self.counters.add(Counter::SpadReadRows, 2 * n);
                self.counters.add(Counter::SpadWriteRows, n);
                self.counters.add(Counter::PpuElements, n * cols as u64);
            }
            Instr::Vadd(v) => {
                let n = v.n as u64;
                let p = array::VaddParams {
                    unsigned_in: v.in_type == ins::ELEM_U8,
                    qmin: v.qmin as i32,
                    qmax: v.qmax as i32,
                };
                array::vadd(
                    &mut self.spad,
                    &self.acc,
                    cols,
                    v.a as usize,
                    v.b as usize,
                    v.dst as usize,
                    v.n as usize,
                    v.params as usize,
                    &p,
                );
                issue_end = t + n + VADD_OVERHEAD;
                (prev_at, next_at, finish) = (issue_end, issue_end, issue_end);
                c.ppu_free = issue_end;
                c.ppu_dst = (v.dst as u64, v.dst as u64 + n);
                c.ppu_acc = (0, 0);
                self.counters.add(Counter::PpuBusy, issue_end - t);
                self.counters.add(Counter::SpadReadRows, 2 * n);
                self.counters.add(Counter::AccReadRows, 3);
                self.counters.add(Counter::SpadWriteRows, n);
                self.counters.add(Counter::PpuElements, n * cols as u64);
            }
            Instr::Vlut(v) => {
                let n = v.n as u64;
                let table_rows = lut_rows(self.cfg.array.cols);
                array::vlut(&mut self.spad, cols, v.src as usize, v.dst as usize, v.n as usize, v.table as usize);
                issue_end = t + table_rows + n + VLUT_OVERHEAD;
                (prev_at, next_at, finish) = (issue_end, issue_end, issue_end);
                c.ppu_free = issue_end;
                c.ppu_dst = (v.dst as u64, v.dst as u64 + n);
                c.ppu_acc = (0, 0);
                self.counters.add(Counter::PpuBusy, issue_end - t);
                self.counters.add(Counter::SpadReadRows, table_rows + n);
                self.counters.add(Counter::SpadWriteRows, n);
                self.counters.add(Counter::PpuElements, n * cols as u64);
            }
            Instr::Sync(_) => {
                issue_end = t + 1;
                (prev_at, next_at, finish) = (issue_end, issue_end, issue_end);
            }
            ref i if i.is_vector() => {
                let mut bufs = crate::vector::Buffers::new(&self.cfg, &mut self.acc, &mut self.spad);
                let v = match crate::vector::execute(i, &mut bufs) {
                    Ok(v) => v,
                    Err(e) => {
                        self.fault(t, e.code, head.index);
                        return true;
                    }
                };
                issue_end = t + v.busy;
                (prev_at, next_at, finish) = (issue_end, issue_end, issue_end);
                c.ppu_free = issue_end;
                c.ppu_dst = v.spad_dst;
                c.ppu_acc = v.acc_span;
                self.counters.add(Counter::VectorBusy, v.busy);
                self.counters.add(Counter::VectorElements, v.elements);
                self.counters.add(Counter::VectorLaneCycles, v.lane_cycles);
                self.counters.add(Counter::AccReadRows, v.acc_read_rows);
                self.counters.add(Counter::AccWriteRows, v.acc_write_rows);
                self.counters.add(Counter::SpadReadRows, v.spad_read_rows);
                self.counters.add(Counter::SpadWriteRows, v.spad_write_rows);
            }
            _ => unreachable!(),
        }
        let c = &mut run.compute;
        self.counters.add(Counter::ComputeBusy, issue_end - t.max(c.busy_until).min(issue_end));
        c.busy_until = c.busy_until.max(issue_end);
        run.last_active = run.last_active.max(finish - 1);
        self.trace[head.index as usize] = InstrTrace { index: head.index, start: t, finish };
        schedule_pushes(run, Queue::Compute, deps, prev_at, next_at, head.index);
        true
    }

    /// The next cycle after `t` at which anything can happen.
    fn next_event(&self, run: &Run, t: u64, acted: bool) -> Option<u64> {
        let mut next = u64::MAX;
        let mut consider = |c: u64| {
            if c > t && c < next {
                next = c;
            }
        };
        if acted {
            consider(t + 1);
        }
        for p in &run.pushes {
            consider(p.0);
        }
        for (at, _, _) in run.index_fault.iter().chain(&run.stream_fault) {
            consider(*at);
        }
        if let Some(f) = run.fetched.front() {
            consider(f.avail);
        }
        if let Some(s) = run.dram.next_slot_free(t) {
            consider(s);
        }
        for du in [&run.load, &run.store] {
            consider(du.issue_free_at);
            consider(du.idle_at);
            if let Some(h) = du.queue.front() {
                consider(h.avail);
            }
            if let Some(r) = du.job.as_ref().and_then(|j| j.next_ready()) {
                consider(r);
            }
        }
        let c = &run.compute;
        for x in [c.array_free, c.ppu_free, c.drained_at, c.issue_ok] {
            consider(x);
        }
        if let Some(h) = c.queue.front() {
            consider(h.avail);
        }
        (next != u64::MAX).then_some(next)
    }

    fn check_mem_range(&self, addr: u64, len: usize) -> Result<(), DeviceError> {
        if self.mem.contains(addr, len as u64) {
            Ok(())
        } else {
            Err(DeviceError::MemoryRange { addr, len: len as u64, size: self.mem.size() })
        }
    }
}

/// Schedules an instruction's token pushes: to the previous queue at
/// `prev_at`, to the next at `next_at`.
/// Scratchpad rows of 2-bit positions a tile of format `wfmt` reads.
fn position_rows(wfmt: u8, k: u16) -> u64 {
    if wfmt == isa::instr::WFMT_I8_S24 {
        legal::sparse24_meta_rows(k as u64)
    } else {
        0
    }
}

/// Whether a tile's position rows overlap what the post-processor writes.
fn reads_positions(
    wfmt: u8,
    meta: u16,
    k: u16,
    overlaps: &dyn Fn(u64, u64, (u64, u64)) -> bool,
    ppu_dst: (u64, u64),
) -> bool {
    let n = position_rows(wfmt, k);
    n > 0 && overlaps(meta as u64, n, ppu_dst)
}

fn schedule_pushes(run: &mut Run, q: Queue, d: Deps, prev_at: u64, next_at: u64, index: u32) {
    if d.push_prev {
        run.pushes.push((prev_at, token_counter(q, q.prev().expect("checked")), index));
    }
    if d.push_next {
        run.pushes.push((next_at, token_counter(q, q.next().expect("checked")), index));
    }
}

impl Device for Model {
    fn config(&self) -> &HwConfig {
        &self.cfg
    }

    fn read_reg(&mut self, addr: u32) -> Result<u32, DeviceError> {
        Ok(match addr {
            regs::CTRL => 0,
            regs::STATUS => self.status,
            regs::ERROR_CODE => self.error_code as u32,
            regs::ERROR_PC => self.error_pc,
            regs::ERROR_INFO => self.error_info,
            regs::PROG_ADDR => self.prog_addr,
            regs::PROG_LEN => self.prog_len,
            regs::WIN_BASE => self.win_base,
            regs::WIN_LIMIT => self.win_limit,
            regs::FINGERPRINT_LO => self.cfg.fingerprint() as u32,
            regs::FINGERPRINT_HI => (self.cfg.fingerprint() >> 32) as u32,
            a if a >= regs::COUNTERS && a < regs::COUNTERS + 8 * Counter::COUNT as u32 && a % 4 == 0 => {
                let i = ((a - regs::COUNTERS) / 8) as usize;
                let v = self.counters.0[i];
                if (a - regs::COUNTERS).is_multiple_of(8) {
                    v as u32
                } else {
                    (v >> 32) as u32
                }
            }
            a => return Err(DeviceError::NoRegister(a)),
        })
    }

    fn write_reg(&mut self, addr: u32, value: u32) -> Result<(), DeviceError> {
        match addr {
            regs::CTRL => {
                if value & regs::CTRL_START != 0 && self.status != regs::STATUS_RUNNING {
                    self.start();
                }
            }
            regs::PROG_ADDR => self.prog_addr = value,
            regs::PROG_LEN => self.prog_len = value,
            regs::WIN_BASE => self.win_base = value,
            regs::WIN_LIMIT => self.win_limit = value,
            regs::STATUS
            | regs::ERROR_CODE
            | regs::ERROR_PC
            | regs::ERROR_INFO
            | regs::FINGERPRINT_LO
            | regs::FINGERPRINT_HI => return Err(DeviceError::ReadOnly(addr)),
            a if a >= regs::COUNTERS && a < regs::COUNTERS + 8 * Counter::COUNT as u32 => {
                return Err(DeviceError::ReadOnly(a))
            }
            a => return Err(DeviceError::NoRegister(a)),
        }
        Ok(())
    }

    fn read_mem(&mut self, addr: u64, len: usize) -> Result<Vec<u8>, DeviceError> {
        self.check_mem_range(addr, len)?;
        Ok(self.mem.to_vec(addr, len))
    }

    fn write_mem(&mut self, addr: u64, data: &[u8]) -> Result<(), DeviceError> {
        self.check_mem_range(addr, data.len())?;
        self.mem.write(addr, data);
        Ok(())
    }

    fn advance(&mut self, max_cycles: u64) -> Result<u32, DeviceError> {
        if self.status == regs::STATUS_RUNNING {
            let clock = self.run.as_ref().map_or(0, |r| r.clock);
            if max_cycles > 0 {
                self.run_until(clock.saturating_add(max_cycles - 1));
            }
        }
        Ok(self.status)
    }

    fn trace(&self) -> Vec<InstrTrace> {
        self.trace.clone()
    }
}
