//! Every tile kernel this host runs gives the portable scalar kernel's bits:
//! on random tiles of every shape (extremes -128, 127 and 255 drawn often),
//! and end to end, where a lowered GEMM's output, counters and trace must not
//! depend on the kernel.

use compiler::gemm::{lower_gemm, GemmOutput, GemmSpec, INPUT};
use isa::regs::{self, Counter};
use isa::{Device, HwConfig, INSTR_BYTES};
use proptest::prelude::*;
use sim::array::{matmul, WeightTile};
use sim::kernels::Kernel;

/// A byte, with the values at the ends of int8 and uint8 drawn often.
fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![Just(0x80u8), Just(0x7f), Just(0xff), Just(0), Just(1), any::<u8>(), any::<u8>()]
}

#[derive(Debug, Clone)]
struct Case {
    rows: usize,
    cols: usize,
    k: usize,
    n: usize,
    m: usize,
    /// The weight tile's scratchpad rows, `k x cols`.
    w: Vec<u8>,
    /// The input rows, `m x cols`.
    x: Vec<u8>,
    /// The accumulator before the MATMUL, `m x cols`.
    acc: Vec<i32>,
    unsigned: bool,
    accumulate: bool,
}

fn case() -> impl Strategy<Value = Case> {
    let shape = prop_oneof![Just(16usize), Just(32), Just(4), Just(8), 2usize..=40];
    (shape.clone(), shape, 0usize..=13)
        .prop_flat_map(|(rows, cols, m)| {
            (
                Just((rows, cols, m)),
                0..=rows,
                0..=cols,
                prop::collection::vec(byte(), rows * cols),
                prop::collection::vec(byte(), m * cols),
                prop::collection::vec(any::<i32>(), m * cols),
                any::<bool>(),
                any::<bool>(),
            )
        })
        .prop_map(|((rows, cols, m), k, n, w, x, acc, unsigned, accumulate)| Case {
            rows,
            cols,
            k,
            n,
            m,
            w,
            x,
            acc,
            unsigned,
            accumulate,
        })
}

fn run(kernel: Kernel, c: &Case) -> Vec<i32> {
    let mut tile = WeightTile::zero_with(c.rows, c.cols, kernel);
    tile.load(&c.w, 0, c.k, c.n, c.cols, isa::instr::WFMT_I8);
    let mut acc = c.acc.clone();
    matmul(&tile, c.rows, c.cols, &c.x, 0, c.m, c.unsigned, &mut acc, 0, c.accumulate);
    acc
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn every_kernel_gives_the_scalar_bits(c in case()) {
        let want = run(Kernel::Scalar, &c);
        for kernel in Kernel::available_all() {
            prop_assert_eq!(&run(kernel, &c), &want, "{} kernel", kernel);
        }
    }
}

#[test]
fn extreme_tiles_agree_and_wrap() {
    // All -128 weights against all-255 (uint8) or all -128 (int8) inputs, on
    // the largest array, accumulating onto values near the int32 limits.
    for (unsigned, xb) in [(true, 0xffu8), (false, 0x80), (false, 0x7f)] {
        let (rows, cols, m) = (256, 256, 5);
        let c = Case {
            rows,
            cols,
            k: rows,
            n: cols,
            m,
            w: vec![0x80; rows * cols],
            x: vec![xb; m * cols],
            acc: (0..m * cols).map(|i| if i % 2 == 0 { i32::MAX - 7 } else { i32::MIN + 3 }).collect(),
            unsigned,
            accumulate: true,
        };
        let want = run(Kernel::Scalar, &c);
        let x = if unsigned { xb as i64 } else { xb as i8 as i64 };
        let sum = 256 * x * -128;
        assert_eq!(want[0], ((i32::MAX - 7) as i64 + sum) as i32, "the scalar kernel wraps");
        for kernel in Kernel::available_all() {
            assert_eq!(run(kernel, &c), want, "{kernel} kernel, unsigned {unsigned}");
        }
    }
}

#[test]
fn unavailable_kernels_are_refused() {
    for kernel in Kernel::ALL {
        let made = sim::Model::with_kernel(&HwConfig::tiny_4x4(), kernel);
        assert_eq!(made.is_ok(), kernel.available(), "{kernel}");
    }
    assert!(Kernel::best().available());
}

/// Runs `prog` on a model with `kernel`; returns its memory, counters
/// and trace.
fn gemm_on(
    kernel: Kernel,
    cfg: &HwConfig,
    prog: &isa::program::Program,
    a: &[u8],
) -> (Vec<u8>, Vec<u64>, Vec<isa::InstrTrace>) {
    let mut m = sim::Model::with_kernel(cfg, kernel).unwrap();
    let code: Vec<u8> = prog.code.iter().flat_map(|i| i.encode()).collect();
    m.write_mem(prog.code_addr, &code).unwrap();
    m.write_mem(prog.data_addr, &prog.data).unwrap();
    m.write_mem(prog.tensor(INPUT).unwrap().addr, a).unwrap();
    m.write_reg(regs::PROG_ADDR, prog.code_addr as u32).unwrap();
    m.write_reg(regs::PROG_LEN, (code.len() / INSTR_BYTES) as u32).unwrap();
    m.write_reg(regs::WIN_LIMIT, prog.mem_bytes as u32).unwrap();
    m.write_reg(regs::CTRL, regs::CTRL_START).unwrap();
    assert_eq!(m.advance(u64::MAX / 2).unwrap(), regs::STATUS_DONE);
    // The whole window: the output and everything else the program wrote.
    let mem = m.read_mem(0, prog.mem_bytes as usize).unwrap();
    (mem, m.counters().0.to_vec(), m.trace())
}

#[test]
fn a_lowered_gemm_does_not_depend_on_the_kernel() {
    for (cfg, unsigned) in
        [(HwConfig::default_16x16(), false), (HwConfig::tiny_shaped(6, 10), true), (HwConfig::tiny_4x4(), false)]
    {
        let (m, k, n) = (37, 45, 29);
        let spec = GemmSpec {
            m,
            k,
            n,
            weights: (0..k * n).map(|i| (i * 29 % 251) as i8).collect(),
            input_unsigned: unsigned,
            output: GemmOutput::Int32,
        };
        let a: Vec<u8> = (0..m * k).map(|i| (i * 7 % 256) as u8).collect();
        let prog = lower_gemm(&spec, &cfg).unwrap();
        let want = gemm_on(Kernel::Scalar, &cfg, &prog, &a);
        assert!(want.1[Counter::Macs as usize] > 0);
        for kernel in Kernel::available_all() {
            assert!(gemm_on(kernel, &cfg, &prog, &a) == want, "{kernel} on {}", cfg.name);
        }
    }
}

/// A 2:4 tile (ISA.md §3) on random kept values, positions (repeats
/// included) and two input blocks: every kernel gives the PE definition
/// `sum_r v[r][c] * x[4 (r / 2) + p[r][c]]`, with `x[j]` for `j >= cols`
/// from the second block (`a_bstride`) and zero from `2 cols` on.
#[derive(Debug, Clone)]
struct SparseCase {
    rows: usize,
    cols: usize,
    k: usize,
    n: usize,
    m: usize,
    /// Kept rows, then the position rows, `cols` bytes each.
    spad: Vec<u8>,
    a_bstride: u16,
    unsigned: bool,
    accumulate: bool,
    acc: Vec<i32>,
}

fn sparse_case() -> impl Strategy<Value = SparseCase> {
    let shape = prop_oneof![Just(16usize), Just(4), Just(8), 2usize..=20];
    (shape.clone(), shape, 1usize..=9)
        .prop_flat_map(|(rows, cols, m)| {
            // Kept rows, position rows, then inputs (m rows, then m more).
            let spad_rows = rows + rows.div_ceil(4) + 2 * m + 3;
            (
                Just((rows, cols, m)),
                0..=rows,
                0..=cols,
                prop::collection::vec(byte(), spad_rows * cols),
                prop_oneof![Just(0u16), Just(m as u16), 1..=(m as u16 + 3)],
                any::<bool>(),
                any::<bool>(),
                prop::collection::vec(any::<i32>(), m * cols),
            )
        })
        .prop_map(|((rows, cols, m), k, n, spad, a_bstride, unsigned, accumulate, acc)| SparseCase {
            rows,
            cols,
            k,
            n,
            m,
            spad,
            a_bstride,
            unsigned,
            accumulate,
            acc,
        })
}

impl SparseCase {
    fn meta(&self) -> usize {
        self.rows
    }
    fn a(&self) -> usize {
        self.rows + self.rows.div_ceil(4)
    }

    fn run(&self, kernel: Kernel) -> Vec<i32> {
        let mut tile = WeightTile::zero_with(self.rows, self.cols, kernel);
        tile.load_sparse24(&self.spad, (0, self.meta()), self.k, self.n, self.cols);
        let mm = isa::instr::Matmul {
            a: self.a() as u16,
            m: self.m as u16,
            accumulate: self.accumulate as u8,
            in_type: self.unsigned as u8,
            a_bstride: self.a_bstride,
            ..Default::default()
        };
        let mut acc = self.acc.clone();
        sim::array::matmul_pattern(&tile, self.rows, self.cols, &self.spad, &mm, &mut acc, 0);
        acc
    }

    /// The PEs one by one.
    fn reference(&self) -> Vec<i32> {
        let cols = self.cols;
        let byte = |r: usize, c: usize| self.spad[r * cols + c];
        let input = |i: usize, j: usize| -> i32 {
            let (row, col) = match j / cols {
                0 => (self.a() + i, j),
                1 if self.a_bstride != 0 => (self.a() + i + self.a_bstride as usize, j - cols),
                _ => return 0,
            };
            let b = byte(row, col);
            if self.unsigned {
                b as i32
            } else {
                b as i8 as i32
            }
        };
        let mut out = self.acc.clone();
        for i in 0..self.m {
            for c in 0..cols {
                let mut sum = 0i32;
                if c < self.n {
                    for r in 0..self.k.min(cols) {
                        let p = (byte(self.meta() + r / 4, c) >> (2 * (r % 4))) & 3;
                        sum = sum.wrapping_add(byte(r, c) as i8 as i32 * input(i, 4 * (r / 2) + p as usize));
                    }
                }
                let o = &mut out[i * cols + c];
                *o = if self.accumulate { o.wrapping_add(sum) } else { sum };
            }
        }
        out
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn every_kernel_runs_2_4_tiles_as_the_pes_do(c in sparse_case()) {
        let want = c.reference();
        for kernel in Kernel::available_all() {
            prop_assert_eq!(&c.run(kernel), &want, "{} kernel", kernel);
        }
    }
}

/// An i4 tile (rows `2r`, `2r + 1` in the nibbles of row `r`) streams as
/// the int8 tile of its sign-extended values on every kernel.
#[test]
fn int4_tiles_stream_as_their_int8_values() {
    let (rows, cols, m) = (8, 8, 5);
    for k in [1usize, 7, 8] {
        let n = 6;
        let w8: Vec<u8> = (0..k * cols).map(|i| ((i * 7) % 16) as i8 - 8).map(|v| v as u8).collect();
        let mut w4 = vec![0u8; k.div_ceil(2) * cols];
        for r in 0..k {
            for c in 0..cols {
                let v = w8[r * cols + c] as i8;
                let b = &mut w4[(r / 2) * cols + c];
                *b = if r % 2 == 0 {
                    isa::numerics::int4_pack(v, isa::numerics::int4_high(*b))
                } else {
                    isa::numerics::int4_pack(isa::numerics::int4_low(*b), v)
                };
            }
        }
        let x: Vec<u8> = (0..m * cols).map(|i| (i * 37 % 256) as u8).collect();
        for kernel in Kernel::available_all() {
            let stream = |w: &[u8], wfmt: u8| {
                let mut tile = WeightTile::zero_with(rows, cols, kernel);
                tile.load(w, 0, k, n, cols, wfmt);
                let mut acc = vec![0i32; m * cols];
                matmul(&tile, rows, cols, &x, 0, m, false, &mut acc, 0, false);
                acc
            };
            assert_eq!(stream(&w4, isa::instr::WFMT_I4), stream(&w8, isa::instr::WFMT_I8), "k = {k}, {kernel}");
        }
    }
}
