//! The indexed `load` (a gather, ISA.md §3 "Indexed `load`") through the
//! model: it fills the buffer exactly as a plain load of the rows the ids
//! select would (padding, column blocking, both buffers, int64 and int32
//! ids), an id outside `0..limit` faults with its position before any byte
//! moves, the window covers the whole table, and its timing and counters
//! follow ISA.md §4.

use isa::instr::{self as ins, Instr};
use isa::regs::{self, Counter, ErrorCode};
use isa::{Device, HwConfig, INSTR_BYTES};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TABLE: u64 = 0x4000;
const IDS: u64 = 0x2000;
const GATHERED: u64 = 0x10000;

mod common;
use common::{load_then_dump, run, OUT, WINDOW};
fn id_bytes(ids: &[i64], idx: u8) -> Vec<u8> {
    match idx {
        ins::IDX_I64 => ids.iter().flat_map(|i| i.to_le_bytes()).collect(),
        _ => ids.iter().flat_map(|&i| (i as i32).to_le_bytes()).collect(),
    }
}

#[test]
fn a_gather_fills_the_buffer_as_a_load_of_the_selected_rows() {
    let mut rng = StdRng::seed_from_u64(11);
    for cfg in [HwConfig::tiny_4x4(), HwConfig::tiny_shaped(5, 12)] {
        let dim = cfg.array.cols as u16;
        for case in 0..40 {
            let buf = if case % 3 == 2 { ins::BUF_ACC } else { ins::BUF_SPAD };
            let e = if buf == ins::BUF_ACC { 4u32 } else { 1 };
            let idx = if case % 2 == 0 { ins::IDX_I64 } else { ins::IDX_I32 };
            let (limit, cols) = (rng.gen_range(1..20u32), rng.gen_range(1..3 * dim));
            // Table rows with a gap after each (stride > row bytes).
            let stride = cols as u32 * e + rng.gen_range(0..5);
            let rows = rng.gen_range(1..12u16);
            let ids: Vec<i64> = (0..rows).map(|_| rng.gen_range(0..limit) as i64).collect();
            let table: Vec<u8> = (0..limit * stride).map(|_| rng.gen()).collect();
            // The same rows laid out one after the other, for the plain load.
            let gathered: Vec<u8> = ids
                .iter()
                .flat_map(|&id| {
                    let lo = (id as u32 * stride) as usize;
                    table[lo..lo + (cols as u32 * e) as usize].to_vec()
                })
                .collect();
            let plain = ins::Load {
                buf,
                dram: GATHERED as u32,
                stride: cols as u32 * e,
                rows,
                cols,
                pad_top: rng.gen_range(0..3),
                pad_bottom: rng.gen_range(0..3),
                pad_left: rng.gen_range(0..3),
                pad_right: rng.gen_range(0..3),
                pad_value: rng.gen(),
                addr: 0,
                col: rng.gen_range(0..dim),
                ..Default::default()
            };
            let gather = ins::Load {
                dram: TABLE as u32,
                stride,
                idx,
                idx_addr: IDS as u32 + rng.gen_range(0..8),
                limit,
                ..plain
            };
            let local_rows = isa::legal::DmaBlock::of_load(&plain).local_end(dim as u64) as u16;
            let data =
                vec![(TABLE, table.clone()), (gather.idx_addr as u64, id_bytes(&ids, idx)), (GATHERED, gathered)];
            let dump = |l: ins::Load| {
                let (mut m, status) = run(&cfg, &load_then_dump(l, local_rows, dim), &data);
                assert_eq!(status, regs::STATUS_DONE, "{}: case {case}: {:?}", cfg.name, m.error());
                m.read_mem(OUT, local_rows as usize * dim as usize * e as usize).unwrap()
            };
            let want = dump(plain);
            assert_eq!(dump(gather), want, "{}: case {case}: {}", cfg.name, Instr::Load(gather));
        }
    }
}

/// The documented example (ISA.md §4, indexed `load`): 4 int64 ids, rows
/// of 16 aligned bytes, 16 B beats, latency 100, nothing else on the bus.
#[test]
fn timing_and_counters_follow_the_documented_example() {
    let cfg = HwConfig::default_16x16();
    let (w, l) = (cfg.dram.bytes_per_cycle as u64, cfg.dram.latency_cycles as u64);
    assert_eq!((w, l), (16, 100));
    let gather = ins::Load {
        dram: TABLE as u32,
        stride: 16,
        rows: 4,
        cols: 16,
        idx: ins::IDX_I64,
        idx_addr: IDS as u32,
        limit: 8,
        ..Default::default()
    };
    let ids = id_bytes(&[7, 0, 7, 3], ins::IDX_I64);
    let table: Vec<u8> = (0..128).map(|i| i as u8).collect();
    let (m, status) = run(&cfg, &[Instr::Load(gather)], &[(TABLE, table.clone()), (IDS, ids.clone())]);
    assert_eq!(status, regs::STATUS_DONE, "{:?}", m.error());
    let t = m.trace()[0];
    // ids requested at s+1, 2 beats arriving at s+1+L and s+2+L: v = s+3+L;
    // rows requested at v..v+3, written at v+L+1..v+L+4; finish v+L+5.
    let v = t.start + 3 + l;
    assert_eq!(t.finish, v + l + 5, "{t:?}");
    let fetch = (2 * INSTR_BYTES as u64).div_ceil(w) * w;
    let c = m.counters();
    assert_eq!(c.get(Counter::DramReadBytes), fetch + 2 * w + 4 * w, "the ids count as DRAM reads");
    assert_eq!(c.get(Counter::DramRequests), 1 + 1 + 4);
    assert_eq!(c.get(Counter::SpadWriteRows), 4);
    assert_eq!(c.get(Counter::LoadBusy), t.finish - t.start);
    // The rows are table rows 7, 0, 7, 3.
    let (mut m, status) = run(&cfg, &load_then_dump(gather, 4, 16), &[(TABLE, table), (IDS, ids)]);
    assert_eq!(status, regs::STATUS_DONE);
    let want: Vec<u8> = [7u8, 0, 7, 3].iter().flat_map(|&r| (16 * r..16 * r + 16).collect::<Vec<_>>()).collect();
    assert_eq!(m.read_mem(OUT, 64).unwrap(), want);
}

#[test]
fn an_id_outside_the_table_faults_with_its_position_when_the_ids_arrive() {
    let cfg = HwConfig::default_16x16();
    let l = cfg.dram.latency_cycles as u64;
    for (idx, ids, position) in [
        (ins::IDX_I64, vec![0i64, 1, 8, 2], 2u32),
        (ins::IDX_I64, vec![0, -1, 9, 2], 1),
        (ins::IDX_I64, vec![3, 2, 1, i64::MIN], 3),
        (ins::IDX_I64, vec![1 << 40, 0, 0, 0], 0),
        (ins::IDX_I32, vec![7, 7, 7, -5], 3),
    ] {
        let gather = ins::Load {
            dram: TABLE as u32,
            stride: 16,
            rows: 4,
            cols: 16,
            idx,
            idx_addr: IDS as u32,
            limit: 8,
            ..Default::default()
        };
        let code = load_then_dump(gather, 4, 16);
        let (mut m, status) = run(&cfg, &code, &[(IDS, id_bytes(&ids, idx)), (OUT, vec![0xee; 64])]);
        assert_eq!(status, regs::STATUS_FAULT, "{ids:?}");
        assert_eq!(m.error(), (ErrorCode::IndexOutOfRange, 0), "{ids:?}");
        assert_eq!(m.read_reg(regs::ERROR_INFO).unwrap(), position, "{ids:?}");
        // The fault comes in the cycle the ids are known: s + 3 + L for
        // 32 aligned bytes of int64 ids (s + 2 + L for 16 of int32), `s`
        // as in the same program with good ids (a faulting run records no
        // trace for the abandoned load).
        let good = id_bytes(&[0, 1, 2, 3], idx);
        let (ok, status) = run(&cfg, &code, &[(IDS, good)]);
        assert_eq!(status, regs::STATUS_DONE);
        let s = ok.trace()[0].start;
        let v = s + l + if idx == ins::IDX_I64 { 3 } else { 2 };
        assert_eq!(m.counters().get(Counter::Cycles), v + 1, "{ids:?}");
        assert_eq!(m.read_mem(OUT, 64).unwrap(), vec![0xee; 64], "nothing moved");
    }
    // ERROR_INFO is cleared by the next start.
    let ok = ins::Load { stride: 16, rows: 1, cols: 16, ..Default::default() };
    let (mut m, status) = run(&cfg, &[Instr::Load(ok)], &[]);
    assert_eq!(status, regs::STATUS_DONE);
    assert_eq!(m.read_reg(regs::ERROR_INFO).unwrap(), 0);
}

#[test]
fn the_window_covers_the_ids_and_the_whole_table() {
    let cfg = HwConfig::tiny_4x4();
    let gather = |dram: u32, limit: u32, idx_addr: u32| {
        Instr::Load(ins::Load {
            dram,
            stride: 0x100,
            rows: 2,
            cols: 4,
            idx: ins::IDX_I64,
            idx_addr,
            limit,
            ..Default::default()
        })
    };
    // The table's last row is (limit - 1) * stride past dram, whatever the ids.
    let table_end = 0x1000 + 0x3ff * 0x100 + 4;
    assert!(table_end as u64 > WINDOW);
    for (i, what) in
        [(gather(0x1000, 0x400, IDS as u32), "the table's"), (gather(0x1000, 4, WINDOW as u32 - 8), "the ids'")]
    {
        let e = isa::legal::check_window(&i, 0, WINDOW).unwrap_err();
        assert_eq!(e.code, ErrorCode::DmaOutOfWindow);
        assert!(e.message.starts_with(what), "{e}");
        let (m, status) = run(&cfg, &[i], &[(IDS, vec![0; 16])]);
        assert_eq!(status, regs::STATUS_FAULT);
        assert_eq!(m.error(), (ErrorCode::DmaOutOfWindow, 0));
    }
    assert!(isa::legal::check_window(&gather(0x1000, 4, IDS as u32), 0, WINDOW).is_ok());
}

#[test]
fn index_fields_decode_only_in_their_mode() {
    let text = "load dram=0x1000 stride=4 rows=2 cols=4 idx=i64 idx_addr=0x2000 limit=9";
    let code = isa::asm::parse_program(text).unwrap();
    let Instr::Load(l) = code[0] else { panic!() };
    assert_eq!((l.idx, l.idx_addr, l.limit), (ins::IDX_I64, 0x2000, 9));
    assert_eq!(Instr::decode(&code[0].encode()).unwrap(), code[0]);
    assert_eq!(isa::asm::parse_program(&code[0].to_string()).unwrap(), code);
    let plain = ins::Load { dram: 0x1000, stride: 4, rows: 2, cols: 4, ..Default::default() };
    for (bad, field) in [
        (ins::Load { idx: ins::IDX_I64, idx_addr: 0x2000, ..plain }, "limit"),
        (ins::Load { limit: 3, ..plain }, "limit"),
        (ins::Load { idx_addr: 8, ..plain }, "idx_addr"),
    ] {
        let e = Instr::decode(&Instr::Load(bad).encode()).unwrap_err();
        assert!(e.to_string().contains(field), "{e}");
    }
    // idx = 3 names no mode.
    let mut bytes = code[0].encode();
    bytes[186 / 8] |= 0b11 << (186 % 8);
    assert!(Instr::decode(&bytes).is_err());
}
