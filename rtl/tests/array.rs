//! The verilated systolic array (`verilog/array.sv`) against `sim::array`:
//! random instruction sequences shaped like the compiler's (an `ldw` into
//! the shadow buffer with zero fill, then streams of `m` rows with `swap` on
//! the first row while the NEXT tile preloads into the shadow buffer,
//! back-to-back streams with no gap, uint8 and int8 inputs, partial tiles
//! k < ROWS and n < COLS), issued with the ISA's COMPUTE timing (an array
//! instruction issued at `t` keeps the array busy for `[t, t + k)` (`ldw`)
//! or `[t, t + max(m, preload ? k : 0))` (`matmul`)). Every output row is
//! compared with `sim::array::matmul` on the same weights, and its valid
//! flag must rise exactly `LAT = ROWS + COLS - 1` cycles after its input
//! row entered (row `i` of a stream issued at `t` in cycle `t + i + LAT`),
//! never in any other cycle.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rtl::array::{ArrayCycle, SystolicArray, SIZES};
use sim::array::{matmul, WeightTile};

/// A `k x n` weight tile as scratchpad rows of `cols` bytes (columns >= n
/// hold garbage, as a scratchpad would: the issuer masks them).
#[derive(Clone, Debug)]
struct Tile {
    k: usize,
    n: usize,
    spad: Vec<u8>,
}

#[derive(Clone, Debug)]
enum Op {
    Ldw(Tile),
    Matmul { m: usize, unsigned: bool, swap: bool, preload: Option<Tile>, x: Vec<u8> },
}

/// The port activity of a program, cycle by cycle, and the expected
/// output rows by cycle.
struct Schedule {
    cycles: Vec<ArrayCycle>,
    x: Vec<u8>,
    w: Vec<u8>,
    /// `(cycle, op index, row, values)`.
    expected: Vec<(usize, usize, usize, Vec<i32>)>,
}

fn random_tile(rng: &mut StdRng, rows: usize, cols: usize) -> Tile {
    let k = if rng.gen_bool(0.4) { rows } else { rng.gen_range(1..=rows) };
    let n = if rng.gen_bool(0.4) { cols } else { rng.gen_range(1..=cols) };
    let spad = (0..k * cols).map(|_| rng.gen()).collect();
    Tile { k, n, spad }
}

/// A compiler-like sequence: `ldw` the first tile, then per tile a
/// `matmul swap=1` (preloading the next tile, usually), sometimes more
/// `matmul`s on the same weights, sometimes an explicit `ldw` instead of the
/// preload, rarely a `swap` with nothing loaded (the exchange brings the
/// previous tile back).
fn random_program(rng: &mut StdRng, rows: usize, cols: usize) -> Vec<Op> {
    let tiles = rng.gen_range(1..=6);
    let mut ops = Vec::new();
    let stream = |rng: &mut StdRng, swap: bool, preload: Option<Tile>| {
        let m = match rng.gen_range(0..4) {
            0 => 1,
            1 => rng.gen_range(1..=rows.max(2)),
            _ => rng.gen_range(1..=3 * rows),
        };
        // Full rows of x: elements at or past k must be ignored.
        let x = (0..m * rows).map(|_| rng.gen()).collect();
        Op::Matmul { m, unsigned: rng.gen(), swap, preload, x }
    };
    ops.push(Op::Ldw(random_tile(rng, rows, cols)));
    for t in 0..tiles {
        let last = t + 1 == tiles;
        let preload = if !last && rng.gen_bool(0.8) { Some(random_tile(rng, rows, cols)) } else { None };
        let preloaded = preload.is_some();
        ops.push(stream(rng, true, preload));
        for _ in 0..rng.gen_range(0..=2) {
            ops.push(stream(rng, false, None));
        }
        if !last && !preloaded {
            if rng.gen_bool(0.1) {
                // Swap with nothing loaded: back to the previous tile.
                ops.push(stream(rng, true, None));
            }
            ops.push(Op::Ldw(random_tile(rng, rows, cols)));
        }
    }
    ops
}

/// Issues `ops` with the ISA's COMPUTE timing (random idle gaps of 0..=4
/// cycles between instructions, mostly 0), fills idle port fields with
/// garbage, and computes the expected outputs with `sim::array`.
fn schedule(rng: &mut StdRng, ops: &[Op], rows: usize, cols: usize, lat: usize) -> Schedule {
    let mut s = Schedule { cycles: Vec::new(), x: Vec::new(), w: Vec::new(), expected: Vec::new() };
    let grow = |s: &mut Schedule, rng: &mut StdRng, upto: usize| {
        while s.cycles.len() < upto {
            s.cycles.push(ArrayCycle {
                w_row: rng.gen_range(0..rows as u32),
                in_unsigned: rng.gen(),
                ..ArrayCycle::default()
            });
            s.x.extend((0..rows).map(|_| rng.gen::<u8>()));
            s.w.extend((0..cols).map(|_| rng.gen::<u8>()));
        }
    };
    // Writes `tile` into the shadow buffer from cycle t: clear with row 0.
    let load = |s: &mut Schedule, rng: &mut StdRng, t: usize, tile: &Tile| {
        grow(s, rng, t + tile.k);
        for j in 0..tile.k {
            let c = &mut s.cycles[t + j];
            c.w_valid = true;
            c.w_row = j as u32;
            c.w_clear = j == 0;
            for col in 0..cols {
                s.w[(t + j) * cols + col] = if col < tile.n { tile.spad[j * cols + col] } else { 0 };
            }
        }
    };
    let mut active = WeightTile::zero(rows, cols);
    let mut shadow = WeightTile::zero(rows, cols);
    let mut t = rng.gen_range(0..3);
    for (idx, op) in ops.iter().enumerate() {
        let busy = match op {
            Op::Ldw(tile) => {
                load(&mut s, rng, t, tile);
                shadow.load(&tile.spad, 0, tile.k, tile.n, cols, isa::instr::WFMT_I8);
                tile.k
            }
            Op::Matmul { m, unsigned, swap, preload, x } => {
                let m = *m;
                grow(&mut s, rng, t + m);
                for i in 0..m {
                    let c = &mut s.cycles[t + i];
                    c.in_valid = true;
                    c.in_unsigned = *unsigned;
                    c.swap = *swap && i == 0;
                    s.x[(t + i) * rows..(t + i + 1) * rows].copy_from_slice(&x[i * rows..(i + 1) * rows]);
                }
                if *swap {
                    std::mem::swap(&mut active, &mut shadow);
                }
                // The reference: scratchpad rows of `cols` bytes.
                let mut spad = vec![0u8; m * cols];
                for i in 0..m {
                    let w = rows.min(cols);
                    spad[i * cols..i * cols + w].copy_from_slice(&x[i * rows..i * rows + w]);
                }
                let mut acc = vec![0i32; m * cols];
                matmul(&active, rows, cols, &spad, 0, m, *unsigned, &mut acc, 0, false);
                for i in 0..m {
                    s.expected.push((t + i + lat, idx, i, acc[i * cols..(i + 1) * cols].to_vec()));
                }
                let k = match preload {
                    Some(tile) => {
                        load(&mut s, rng, t, tile);
                        shadow.load(&tile.spad, 0, tile.k, tile.n, cols, isa::instr::WFMT_I8);
                        tile.k
                    }
                    None => 0,
                };
                m.max(k)
            }
        };
        t += busy;
        if rng.gen_bool(0.25) {
            t += rng.gen_range(1..=4);
        }
    }
    // Drain: every output row plus a few cycles that must stay invalid.
    grow(&mut s, rng, t + lat + 3);
    s
}

/// Runs `programs` random programs on a `rows x cols` model (one model,
/// reset between programs); returns (instructions, rows compared, cycles).
fn random_programs(rows: u32, cols: u32, programs: usize, seed: u64) -> (usize, usize, usize) {
    let mut model = SystolicArray::new(rows, cols).unwrap();
    let (r, c) = (rows as usize, cols as usize);
    let lat = model.latency();
    assert_eq!(lat, r + c - 1);
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut instrs, mut compared, mut cycles) = (0, 0, 0);
    for p in 0..programs {
        let ops = random_program(&mut rng, r, c);
        let s = schedule(&mut rng, &ops, r, c, lat);
        model.reset();
        let n = s.cycles.len();
        let mut valid = vec![false; n];
        let mut out = vec![0i32; n * c];
        model.run(&s.cycles, &s.x, &s.w, &mut valid, &mut out);
        let mut want = vec![None; n];
        for (cy, idx, i, v) in &s.expected {
            assert!(want[*cy].is_none(), "two rows expected in cycle {cy}");
            want[*cy] = Some((*idx, *i, v));
        }
        for cy in 0..n {
            match want[cy] {
                Some((idx, i, v)) => {
                    assert!(
                        valid[cy],
                        "{rows}x{cols} program {p}: out_valid low in cycle {cy}, where row {i} of op {idx} ({:?}) \
                         is due",
                        summary(&ops[idx])
                    );
                    assert_eq!(
                        &out[cy * c..(cy + 1) * c],
                        &v[..],
                        "{rows}x{cols} program {p}: row {i} of op {idx} ({:?}) in cycle {cy}; ops: {:?}",
                        summary(&ops[idx]),
                        ops.iter().map(summary).collect::<Vec<_>>()
                    );
                    compared += 1;
                }
                None => assert!(!valid[cy], "{rows}x{cols} program {p}: out_valid high in cycle {cy}, no row due"),
            }
        }
        instrs += ops.len();
        cycles += n;
    }
    (instrs, compared, cycles)
}

fn summary(op: &Op) -> String {
    match op {
        Op::Ldw(t) => format!("ldw k={} n={}", t.k, t.n),
        Op::Matmul { m, unsigned, swap, preload, .. } => format!(
            "matmul m={m} {} swap={} preload={}",
            if *unsigned { "u8" } else { "i8" },
            *swap as u8,
            preload.as_ref().map_or("-".to_string(), |t| format!("k={} n={}", t.k, t.n))
        ),
    }
}

#[test]
fn random_programs_4x4() {
    println!("build: {}", env!("SYSTOLE_RTL_BUILD_TIMES"));
    let (i, rows, cycles) = random_programs(4, 4, 2000, 0xa11a_0044);
    println!("4x4 (LAT 7): 2000 programs, {i} instructions, {rows} output rows compared, {cycles} cycles");
}

#[test]
fn random_programs_16x16() {
    let (i, rows, cycles) = random_programs(16, 16, 300, 0xa11a_1616);
    println!("16x16 (LAT 31): 300 programs, {i} instructions, {rows} output rows compared, {cycles} cycles");
}

/// Directed, through `step`: the first output row of a stream appears
/// exactly LAT cycles after its input row, a swap in the middle of a
/// continuous stream changes only the rows from the swap on, and a reset
/// clears the weights.
#[test]
fn latency_and_swap_mid_stream() {
    for (rows, cols) in SIZES {
        let (r, c) = (rows as usize, cols as usize);
        let mut m = SystolicArray::new(rows, cols).unwrap();
        let lat = m.latency();
        assert_eq!(lat, r + c - 1);
        let mut out = vec![0i32; c];
        let idle = ArrayCycle::default();
        let zx = vec![0u8; r];
        let zw = vec![0u8; c];
        // Shadow <- all 1 (cycle 0..r), swap; then shadow <- all 2 while
        // streaming.
        let ones = vec![1u8; c];
        let twos = vec![2u8; c];
        let xs = vec![3u8; r];
        let mut log = Vec::new(); // (cycle, valid, out[0], out[c-1])
        let mut cyc = 0;
        let mut step = |m: &mut SystolicArray, a: ArrayCycle, x: &[u8], w: &[u8], log: &mut Vec<_>| {
            let v = m.step(&a, x, w, &mut out);
            log.push((cyc, v, out[0], out[c - 1]));
            cyc += 1;
        };
        for j in 0..r {
            let a = ArrayCycle { w_valid: true, w_row: j as u32, w_clear: j == 0, ..idle };
            step(&mut m, a, &zx, &ones, &mut log);
        }
        // Stream 2r rows from cycle r: swap on the first (tile 1s), the 2s
        // preload during the first r rows, swap again at row r.
        for i in 0..2 * r {
            let mut a = ArrayCycle { in_valid: true, swap: i == 0 || i == r, ..idle };
            let w: &[u8] = if i < r {
                a.w_valid = true;
                a.w_row = i as u32;
                a.w_clear = i == 0;
                &twos
            } else {
                &zw
            };
            step(&mut m, a, &xs, w, &mut log);
        }
        for _ in 0..lat + 2 {
            step(&mut m, idle, &zx, &zw, &mut log);
        }
        for &(cy, v, first, last) in &log {
            let i = cy as isize - (r + lat) as isize;
            let due = (0..2 * r as isize).contains(&i);
            assert_eq!(v, due, "{rows}x{cols}: out_valid in cycle {cy}");
            if due {
                let want = 3 * r as i32 * if (i as usize) < r { 1 } else { 2 };
                assert_eq!((first, last), (want, want), "{rows}x{cols}: row {i} in cycle {cy}");
            }
        }
        // Reset: weights zero, nothing in flight.
        m.reset();
        let mut outv = vec![0i32; c];
        for i in 0..lat + 1 {
            let a = ArrayCycle { in_valid: i == 0, ..idle };
            let v = m.step(&a, &xs, &zw, &mut outv);
            assert_eq!(v, i == lat);
            if v {
                assert!(outv.iter().all(|&o| o == 0), "{outv:?}");
            }
        }
    }
}

#[test]
fn only_built_sizes_exist() {
    let e = SystolicArray::new(8, 8).err().expect("no 8x8 model");
    assert!(e.to_string().contains("8x8"), "{e}");
}
