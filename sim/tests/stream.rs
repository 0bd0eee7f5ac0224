//! The compressed `load` (`zfmt = mask`, ISA.md §3 `load`) through the
//! model: it fills the scratchpad exactly as a plain load of the expanded
//! rows would (padding, column blocking, unaligned streams), reads only the
//! stream's bytes, a malformed stream faults with `BadStream` and its row
//! when its bad record is examined, and its timing follows ISA.md §4.

use isa::instr::{self as ins, Instr};
use isa::regs::{self, Counter, ErrorCode};
use isa::{Device, HwConfig, INSTR_BYTES};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const STREAM: u64 = 0x4000;
const PLAIN: u64 = 0x10000;
mod common;
use common::{load_then_dump, run, OUT};

/// The compressed stream of `rows` (each `cols` bytes): per row its mask,
/// then its non-zero bytes.
fn compress(rows: &[Vec<u8>]) -> Vec<u8> {
    let mut s = Vec::new();
    for row in rows {
        let at = s.len();
        s.resize(at + row.len().div_ceil(8), 0);
        for (x, &v) in row.iter().enumerate() {
            if v != 0 {
                s[at + x / 8] |= 1 << (x % 8);
            }
        }
        s.extend(row.iter().filter(|&&v| v != 0));
    }
    s
}

#[test]
fn a_stream_fills_the_scratchpad_as_a_load_of_the_expanded_rows() {
    let mut rng = StdRng::seed_from_u64(12);
    for cfg in [HwConfig::tiny_4x4(), HwConfig::tiny_shaped(5, 12), HwConfig::default_16x16()] {
        let dim = cfg.array.cols as u16;
        for case in 0..40 {
            let (rows, cols) = (rng.gen_range(1..12u16), rng.gen_range(1..3 * dim));
            let density = [0.0, 0.3, 0.5, 1.0][case % 4];
            let expanded: Vec<Vec<u8>> = (0..rows)
                .map(|_| (0..cols).map(|_| if rng.gen_bool(density) { rng.gen_range(1..=255) } else { 0 }).collect())
                .collect();
            let stream = compress(&expanded);
            let plain = ins::Load {
                dram: PLAIN as u32,
                stride: cols as u32,
                rows,
                cols,
                pad_top: rng.gen_range(0..3),
                pad_bottom: rng.gen_range(0..3),
                pad_left: rng.gen_range(0..3),
                pad_right: rng.gen_range(0..3),
                pad_value: rng.gen(),
                col: rng.gen_range(0..dim),
                ..Default::default()
            };
            let at = STREAM + rng.gen_range(0..32);
            let compressed = ins::Load { dram: at as u32, stride: stream.len() as u32, zfmt: ins::ZFMT_MASK, ..plain };
            let local_rows = isa::legal::DmaBlock::of_load(&plain).local_end(dim as u64) as u16;
            let data = vec![(at, stream.clone()), (PLAIN, expanded.concat())];
            let dump = |l: ins::Load| {
                let (mut m, status) = run(&cfg, &load_then_dump(l, local_rows, dim), &data);
                assert_eq!(status, regs::STATUS_DONE, "{}: case {case}: {:?}", cfg.name, m.error());
                let rows_written = m.counters().get(Counter::SpadWriteRows);
                (m.read_mem(OUT, local_rows as usize * dim as usize).unwrap(), rows_written)
            };
            assert_eq!(dump(compressed), dump(plain), "{}: case {case}: {}", cfg.name, Instr::Load(compressed));
        }
    }
}

/// 4 rows of 16 bytes, half of them non-zero: 4 records of 2 + 8 bytes, 40
/// bytes, 3 beats from an aligned address; each row is written the cycle
/// after the beat holding its record's end arrives plus the expander's
/// cycle, and only the stream's beats are read.
#[test]
fn timing_and_counters_follow_the_records() {
    let cfg = HwConfig::default_16x16();
    let (w, l) = (cfg.dram.bytes_per_cycle as u64, cfg.dram.latency_cycles as u64);
    assert_eq!((w, l), (16, 100));
    let rows: Vec<Vec<u8>> =
        (0..4).map(|r| (0..16).map(|x| if x % 2 == r % 2 { 1 + x } else { 0 }).collect()).collect();
    let stream = compress(&rows);
    assert_eq!(stream.len(), 40);
    let load =
        ins::Load { dram: STREAM as u32, stride: 40, rows: 4, cols: 16, zfmt: ins::ZFMT_MASK, ..Default::default() };
    let (m, status) = run(&cfg, &[Instr::Load(load)], &[(STREAM, stream.clone())]);
    assert_eq!(status, regs::STATUS_DONE, "{:?}", m.error());
    let t = m.trace()[0];
    // One burst of 3 beats requested at s + 1, arriving at s + 1 + L + {0, 1, 2}.
    // Records end at bytes 10, 20, 30, 40: in beats 0, 1, 1, 2. Row q is
    // written at max(w_{q-1} + 1, beat arrival + 1 + 1): s+L+3, +4, +5, +6.
    let s = t.start;
    assert_eq!(t.finish, s + l + 7, "{t:?}");
    let fetch = (2 * INSTR_BYTES as u64).div_ceil(w) * w;
    let c = m.counters();
    assert_eq!(c.get(Counter::DramReadBytes), fetch + 3 * w, "the compressed bytes cross the bus");
    assert_eq!(c.get(Counter::DramRequests), 1 + 1);
    assert_eq!(c.get(Counter::SpadWriteRows), 4);
    // ISA.md §4's example of a malformed stream: its last byte left out,
    // record 3 is cut; its extent ends in beat 2 (s + L + 3) and row 2 is
    // written at s + L + 5, so the load faults at s + L + 6.
    let cut = ins::Load { stride: 39, ..load };
    let (mut m, status) = run(&cfg, &[Instr::Load(cut)], &[(STREAM, stream)]);
    assert_eq!((status, m.error()), (regs::STATUS_FAULT, (ErrorCode::BadStream, 0)));
    assert_eq!(m.read_reg(regs::ERROR_INFO).unwrap(), 3);
    assert_eq!(m.counters().get(Counter::Cycles), s + l + 6 + 1);
    // The same rows plain: 4 beats, rows written one cycle earlier each.
    let plain = ins::Load { dram: PLAIN as u32, stride: 16, rows: 4, cols: 16, ..Default::default() };
    let (m, _) = run(&cfg, &[Instr::Load(plain)], &[(PLAIN, rows.concat())]);
    assert_eq!(m.trace()[0].finish - m.trace()[0].start, l + 6);
}

/// A malformed stream faults when the LOAD unit examines its bad record:
/// in the cycle that record's row would be written, once the stream bytes
/// of its extent (its mask and a byte per bit set, cut at the stream's
/// end) are in (ISA.md §4, compressed `load`). Rows before it are written,
/// nothing after it, and the STORE behind it never runs.
#[test]
fn a_malformed_stream_faults_when_its_bad_record_is_examined() {
    let cfg = HwConfig::tiny_4x4();
    let (w, l) = (cfg.dram.bytes_per_cycle as u64, cfg.dram.latency_cycles as u64);
    assert_eq!((w, l), (4, 20));
    let rows: Vec<Vec<u8>> = vec![vec![1, 0, 0, 2], vec![0, 0, 0, 0], vec![3, 3, 3, 3]];
    let good = compress(&rows);
    assert_eq!(good.len(), 3 + 1 + 5);
    let load =
        ins::Load { dram: STREAM as u32, stride: 9, rows: 3, cols: 4, zfmt: ins::ZFMT_MASK, ..Default::default() };
    let (mut m, status) = run(&cfg, &load_then_dump(load, 3, 4), &[(STREAM, good.clone())]);
    assert_eq!(status, regs::STATUS_DONE, "{:?}", m.error());
    assert_eq!(m.read_mem(OUT, 12).unwrap(), rows.concat());
    // One burst: beat i (bytes 4i..4i+3) arrives at d + i (after the
    // program's fetch beats). The records end in beats 0, 0, 2: rows
    // written at d + 2, d + 3, d + 4; the load finishes at d + 5.
    let d = m.trace()[0].finish - 5;
    assert!(d > m.trace()[0].start + l);
    let mut extra_bit = good.clone();
    extra_bit[3] |= 0x10; // row 1's mask marks element 4 of a 4-element row
    let mut more = good.clone();
    more[3] = 0b111; // row 1 claims 3 stored bytes: row 2's record runs past the end
    for (what, bytes, stride, info, at) in [
        // Record 1's extent is its mask and one byte (bytes 3..5, beat 1):
        // examined at max(d + 2 + 1, d + 1 + 2).
        ("a mask bit past the row", extra_bit, 9, 1u32, d + 3),
        // Record 1 (bytes 3..7, beat 1) is written at d + 3; record 2 (mask
        // 0b11 at byte 7) is cut at byte 9, whose beat 2 arrives at d + 2.
        ("a record past the stream", more, 9, 2, d + 4),
        // Record 2 (bytes 4..9) is cut at 8 (beat 1), but row 1 is written
        // at d + 3.
        ("the last record past the stream", good.clone(), 8, 2, d + 4),
        // The last record is whole (beat 2) and a byte is left after it.
        ("a byte after the last record", good.clone(), 10, 3, d + 4),
    ] {
        let l = ins::Load { stride, ..load };
        let (mut m, status) = run(&cfg, &load_then_dump(l, 3, 4), &[(STREAM, bytes), (OUT, vec![0xee; 12])]);
        assert_eq!(status, regs::STATUS_FAULT, "{what}");
        assert_eq!(m.error(), (ErrorCode::BadStream, 0), "{what}");
        assert_eq!(m.read_reg(regs::ERROR_INFO).unwrap(), info, "{what}");
        assert_eq!(m.counters().get(Counter::Cycles), at + 1, "{what}: the fault cycle");
        assert_eq!(m.read_mem(OUT, 12).unwrap(), vec![0xee; 12], "{what}: the store never ran");
        // Behind it the same load again, or a plain one: the first faults
        // alike (the second's chunks wait behind its bad record).
        let bytes = m.read_mem(STREAM, 10).unwrap();
        let plain = ins::Load { dram: PLAIN as u32, stride: 4, rows: 1, cols: 4, addr: 8, ..Default::default() };
        let cycles: Vec<u64> = [ins::Load { addr: 8, ..l }, plain]
            .into_iter()
            .map(|second| {
                let (m2, _) = run(&cfg, &[Instr::Load(l), Instr::Load(second)], &[(STREAM, bytes.clone())]);
                assert_eq!(m2.error(), (ErrorCode::BadStream, 0), "{what}: then {}", Instr::Load(second));
                m2.counters().get(Counter::Cycles)
            })
            .collect();
        assert_eq!(cycles[0], cycles[1], "{what}");
    }
}

#[test]
fn stream_fields_are_checked_at_dispatch() {
    let text = "load dram=0x1000 stride=9 rows=3 cols=4 zfmt=mask";
    let code = isa::asm::parse_program(text).unwrap();
    assert_eq!(Instr::decode(&code[0].encode()).unwrap(), code[0]);
    assert_eq!(isa::asm::parse_program(&code[0].to_string()).unwrap(), code);
    let Instr::Load(l) = code[0] else { panic!() };
    // Into the accumulator, or indexed: no such stream.
    for (bad, field) in
        [(ins::Load { buf: ins::BUF_ACC, ..l }, "buf"), (ins::Load { idx: ins::IDX_I64, limit: 1, ..l }, "idx")]
    {
        let e = Instr::decode(&Instr::Load(bad).encode()).unwrap_err();
        assert!(e.to_string().contains(field), "{e}");
    }
    // A stride shorter than the masks or longer than every byte stored.
    let cfg = HwConfig::tiny_4x4();
    for stride in [2, 16] {
        let e = isa::legal::check(&Instr::Load(ins::Load { stride, ..l }), &cfg).unwrap_err();
        assert_eq!(e.code, ErrorCode::IllegalInstruction);
        assert!(e.message.contains("3..=15"), "{e}");
    }
    // The window covers exactly the stream's bytes.
    assert!(isa::legal::check_window(&code[0], 0x1000, 0x1009).is_ok());
    assert!(isa::legal::check_window(&code[0], 0x1000, 0x1008).is_err());
    // zfmt = 2, 3 name no format.
    let mut bytes = code[0].encode();
    bytes[252 / 8] |= 0b10 << (252 % 8);
    assert!(Instr::decode(&bytes).is_err());
}
