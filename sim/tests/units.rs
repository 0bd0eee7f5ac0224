//! The model's `vlut` and `matmul` input-row patterns (ISA.md §3) against
//! a direct computation of their definitions, with their timing.

use isa::instr::{self as ins, Deps, Instr};
use isa::regs::{self, Counter};
use isa::timing::{lut_rows, VLUT_OVERHEAD};
use isa::{Device, HwConfig, InstrTrace};
use rand::{Rng, SeedableRng};

const DATA: u64 = 0x1000;
const OUT: u64 = 0x8000;
const CODE: u64 = 0x10000;

/// Runs `code` (a FINISH is appended) with `data` at `DATA`; returns the
/// model after the run.
fn run(cfg: &HwConfig, code: &[Instr], data: &[u8]) -> sim::Model {
    let mut m = sim::Model::new(cfg).unwrap();
    let mut code = code.to_vec();
    code.push(Instr::Finish(ins::Finish::default()));
    let bytes: Vec<u8> = code.iter().flat_map(|i| i.encode()).collect();
    m.write_mem(CODE, &bytes).unwrap();
    m.write_mem(DATA, data).unwrap();
    m.write_reg(regs::PROG_ADDR, CODE as u32).unwrap();
    m.write_reg(regs::PROG_LEN, code.len() as u32).unwrap();
    m.write_reg(regs::WIN_LIMIT, 0x20000).unwrap();
    m.write_reg(regs::CTRL, regs::CTRL_START).unwrap();
    assert_eq!(m.advance(u64::MAX / 2).unwrap(), regs::STATUS_DONE, "error {:?}", m.error());
    m
}

fn signal(mut i: Instr, next: bool) -> Instr {
    let d = i.deps_mut();
    if next {
        d.push_next = true;
    } else {
        d.pop_prev = true;
    }
    i
}

fn load_spad(dram: u64, rows: u16, addr: u16, cols: u16) -> Instr {
    Instr::Load(ins::Load {
        buf: ins::BUF_SPAD,
        dram: dram as u32,
        stride: cols as u32,
        rows,
        cols,
        addr,
        ..Default::default()
    })
}

fn store(buf: u8, addr: u16, rows: u16, cols: u16, elem: u32) -> Instr {
    let deps = Deps { pop_prev: true, ..Deps::NONE };
    Instr::Store(ins::Store { deps, buf, dram: OUT as u32, stride: cols as u32 * elem, rows, cols, addr, col: 0 })
}

#[test]
fn vlut_maps_every_byte_through_its_table() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    for cfg in [HwConfig::tiny_4x4(), HwConfig::default_16x16()] {
        let cols = cfg.array.cols as usize;
        let t = lut_rows(cfg.array.cols) as u16;
        let n = 37u16;
        let table: Vec<u8> = (0..256).map(|_| rng.gen()).collect();
        let input: Vec<u8> = (0..n as usize * cols).map(|_| rng.gen()).collect();
        let mut data = table.clone();
        data.extend_from_slice(&input);
        let (src, dst) = (t + 3, t + 3 + n);
        let code = [
            load_spad(DATA, t, 0, cols as u16),
            signal(load_spad(DATA + 256, n, src, cols as u16), true),
            signal(Instr::Vlut(ins::Vlut { src, dst, n, table: 0, ..Default::default() }), false),
            Instr::Sync(ins::Sync { queue: 1, deps: Deps { push_next: true, ..Deps::NONE } }),
            store(ins::BUF_SPAD, dst, n, cols as u16, 1),
        ];
        // The same rows in place: a row is read before it is written.
        let mut m = run(&cfg, &code, &data);
        let want: Vec<u8> = input.iter().map(|&x| table[x as usize]).collect();
        assert_eq!(m.read_mem(OUT, want.len()).unwrap(), want, "{cols} columns");
        let InstrTrace { start, finish, .. } = m.trace()[2];
        assert_eq!(finish - start, t as u64 + n as u64 + VLUT_OVERHEAD);
        assert_eq!(m.counters().get(Counter::PpuElements), n as u64 * cols as u64);

        let mut in_place = code;
        in_place[2] = signal(Instr::Vlut(ins::Vlut { src, dst: src, n, table: 0, ..Default::default() }), false);
        in_place[4] = store(ins::BUF_SPAD, src, n, cols as u16, 1);
        let mut m = run(&cfg, &in_place, &data);
        assert_eq!(m.read_mem(OUT, want.len()).unwrap(), want, "{cols} columns, in place");
    }
}

#[test]
fn vlut_table_past_the_scratchpad_is_out_of_range() {
    let cfg = HwConfig::tiny_4x4();
    let last = cfg.spad_rows() as u16 - lut_rows(4) as u16;
    let ok = Instr::Vlut(ins::Vlut { src: 0, dst: 0, n: 1, table: last, ..Default::default() });
    assert!(isa::legal::check(&ok, &cfg).is_ok());
    let bad = Instr::Vlut(ins::Vlut {
        table: last + 1,
        ..match ok {
            Instr::Vlut(v) => v,
            _ => unreachable!(),
        }
    });
    let e = isa::legal::check(&bad, &cfg).unwrap_err();
    assert_eq!(e.code, regs::ErrorCode::BufferOutOfRange);
    assert!(e.message.contains("vlut table"), "{e}");
}

/// `out[i] = sum_r x[row(i)][r] * w[r][c]` with the pattern's rows.
fn reference(spad_rows: &[Vec<i8>], w: &[Vec<i8>], mm: &ins::Matmul, cols: usize) -> Vec<i32> {
    let mut out = Vec::new();
    for i in 0..mm.m as u64 {
        let x = &spad_rows[mm.input_row(i) as usize];
        for c in 0..cols {
            out.push((0..w.len()).map(|r| x[r] as i32 * w[r][c] as i32).sum());
        }
    }
    out
}

#[test]
fn matmul_streams_its_input_row_pattern() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    for cfg in [HwConfig::tiny_4x4(), HwConfig::default_16x16()] {
        let (cols, k) = (cfg.array.cols as usize, cfg.array.rows as usize);
        let rows_in = 200usize;
        let x: Vec<Vec<i8>> = (0..rows_in).map(|_| (0..cols).map(|_| rng.gen()).collect()).collect();
        let w: Vec<Vec<i8>> = (0..k).map(|_| (0..cols).map(|_| rng.gen()).collect()).collect();
        let mut data: Vec<u8> = w.iter().flatten().map(|&v| v as u8).collect();
        data.extend(x.iter().flatten().map(|&v| v as u8));
        // (m, a, a_stride, a_group, a_gstride): contiguous, strided, grouped
        // (an output row of a stride-2 convolution), overlapping groups.
        for (m, a, a_stride, a_group, a_gstride) in
            [(20, 3, 0, 0, 0), (20, 3, 2, 0, 0), (24, 1, 2, 6, 30), (15, 0, 1, 5, 2), (9, 7, 3, 1, 5)]
        {
            let mm =
                ins::Matmul { a: k as u16 + a, m, acc: 0, swap: 1, a_stride, a_group, a_gstride, ..Default::default() };
            let code = [
                load_spad(DATA, k as u16, 0, cols as u16),
                signal(load_spad(DATA + (k * cols) as u64, rows_in as u16, k as u16, cols as u16), true),
                signal(Instr::Ldw(ins::Ldw { addr: 0, k: k as u16, n: cols as u16, ..Default::default() }), false),
                Instr::Matmul(ins::Matmul { deps: Deps { push_next: true, ..Deps::NONE }, ..mm }),
                store(ins::BUF_ACC, 0, m, cols as u16, 4),
            ];
            let mut model = run(&cfg, &code, &data);
            let mut spad_rows = vec![vec![0i8; cols]; k];
            spad_rows.extend(x.iter().cloned());
            let want = reference(&spad_rows, &w, &mm, cols);
            let got: Vec<i32> = model
                .read_mem(OUT, want.len() * 4)
                .unwrap()
                .chunks_exact(4)
                .map(|b| i32::from_le_bytes(b.try_into().unwrap()))
                .collect();
            assert_eq!(got, want, "{cols} columns, pattern {:?}", (m, a, a_stride, a_group, a_gstride));
            let InstrTrace { start, finish, .. } = model.trace()[3];
            assert_eq!(finish - start, m as u64 + isa::timing::array_latency(cfg.array.rows, cfg.array.cols));
        }
    }
}

#[test]
fn matmul_pattern_span_bounds_the_scratchpad() {
    let cfg = HwConfig::tiny_4x4();
    let spad = cfg.spad_rows() as u64;
    // Rows a + (i / 4) * 100 + (i % 4) * 3 for i < 10: the last group has 2 rows.
    let mm = ins::Matmul { a: 0, m: 10, a_stride: 3, a_group: 4, a_gstride: 100, ..Default::default() };
    assert_eq!(mm.input_span(), (0, 200 + 9 + 1));
    assert_eq!((0..10).map(|i| mm.input_row(i)).max(), Some(203));
    let at = |a: u64| Instr::Matmul(ins::Matmul { a: a as u16, ..mm });
    assert!(isa::legal::check(&at(spad - 210), &cfg).is_ok());
    let e = isa::legal::check(&at(spad - 209), &cfg).unwrap_err();
    assert_eq!(e.code, regs::ErrorCode::BufferOutOfRange);
}
