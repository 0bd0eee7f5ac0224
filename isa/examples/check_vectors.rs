//! Test vectors for the RTL's dispatch check (`rtl/verilog/check.sv`): random
//! instructions near and past every legality boundary, with the fault the
//! model raises at dispatch (`Instr::decode`, then `legal::check`, then
//! `legal::check_window`, as `sim::machine` does).
//!
//! `cargo run -p isa --example check_vectors -- CONFIG.toml COUNT SEED OUT`
//!
//! OUT gets one line per case: the instruction as 64 hex digits (bit 255
//! first), WIN_BASE and WIN_LIMIT (hex), the expected code, is_finish, and the
//! queue of a legal non-finish (`-` otherwise). A summary of the codes per
//! opcode goes to stderr.

use isa::instr::{FieldKind, FieldSpec, InstrSpec, INSTR_SPECS};
use isa::legal::{self, DmaBlock};
use isa::verilog::field_positions;
use isa::{HwConfig, Instr};
use std::collections::BTreeMap;
use std::io::Write;

/// splitmix64: small, seedable, good enough for test vectors.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
    /// -1, 0 or +1.
    fn delta(&mut self) -> i64 {
        self.below(3) as i64 - 1
    }
}

/// One of `xs` (the values first, so they may draw from `rng` too).
fn choose<T: Copy>(xs: &[T], rng: &mut Rng) -> T {
    xs[rng.below(xs.len() as u64) as usize]
}

type Words = [u64; 4];

fn mask(w: u32) -> u64 {
    if w >= 64 {
        u64::MAX
    } else {
        (1 << w) - 1
    }
}

fn get_bits(words: &Words, lo: u32, w: u32) -> u64 {
    (0..w).fold(0, |v, i| v | ((words[((lo + i) / 64) as usize] >> ((lo + i) % 64)) & 1) << i)
}

fn set_bits(words: &mut Words, lo: u32, w: u32, v: u64) {
    for i in 0..w {
        let b = lo + i;
        let (k, s) = ((b / 64) as usize, b % 64);
        words[k] = (words[k] & !(1 << s)) | ((v >> i) & 1) << s;
    }
}

fn to_bytes(words: &Words) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (k, w) in words.iter().enumerate() {
        out[k * 8..k * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    out
}

fn from_bytes(bytes: &[u8; 32]) -> Words {
    let mut w = [0u64; 4];
    for (k, x) in w.iter_mut().enumerate() {
        *x = u64::from_le_bytes(bytes[k * 8..k * 8 + 8].try_into().expect("8 bytes"));
    }
    w
}

struct Limits {
    rows: u64,
    cols: u64,
    spad: u64,
    acc: u64,
}

/// A value for a field, biased toward the boundaries that matter for it.
fn field_value(rng: &mut Rng, lim: &Limits, win: (u64, u64), f: &FieldSpec) -> u64 {
    let m = mask(f.width);
    if rng.chance(1, 3) {
        // Small, mostly legal values: the other checks get their turn.
        let v: i64 = match (f.kind, f.name) {
            (FieldKind::Signed, _) => rng.below(200) as i64 - 100,
            (FieldKind::Enum(_), _) => 0,
            (_, "rows" | "m" | "n") => rng.below(2 * lim.rows) as i64 + 1,
            (_, "cols") => rng.below(3 * lim.cols) as i64 + 1,
            (_, "k") => rng.below(lim.rows) as i64 + 1,
            (_, "dram") => (win.0 + rng.below(256)) as i64,
            (_, "stride") => choose(&[lim.cols as i64, 4 * lim.cols as i64, rng.below(8 * lim.cols) as i64], rng),
            (_, name) if name.starts_with("pad_") => rng.below(3) as i64,
            (_, "col") => rng.below(2 * lim.cols) as i64,
            _ if f.width == 1 => rng.below(2) as i64,
            (_, name) if name.ends_with("stride") => rng.below(4) as i64,
            _ => rng.below(lim.acc / 2) as i64,
        };
        return (v as u64) & m;
    }
    if rng.chance(1, 10) {
        // Anything, including the extremes.
        return choose(&[0, 1, m, m - 1, m >> 1, (m >> 1) + 1, rng.next()], rng) & m;
    }
    let v: i64 = match (f.kind, f.name) {
        (FieldKind::Enum(names), _) => {
            let extra = rng.below(2);
            rng.below(names.len() as u64 + extra) as i64
        }
        (FieldKind::Signed, _) => choose(
            &[
                -256,
                -129,
                -128,
                -127,
                -1,
                0,
                1,
                126,
                127,
                128,
                254,
                255,
                rng.below(512) as i64 - 256,
                rng.below(256) as i64 - 128,
                rng.below(256) as i64,
            ],
            rng,
        ),
        (_, "rows" | "cols" | "k" | "n" | "m") => {
            let (r, c) = (lim.rows as i64, lim.cols as i64);
            choose(
                &[
                    1,
                    1,
                    2,
                    r,
                    r - 1,
                    r + 1,
                    c,
                    c - 1,
                    c + 1,
                    rng.below(4 * lim.cols) as i64 + 1,
                    rng.below(64) as i64 + 1,
                    rng.below(lim.acc + 2) as i64,
                    rng.below(lim.spad + 2) as i64,
                    0,
                ],
                rng,
            )
        }
        (_, "dram") => choose(
            &[
                win.0 as i64,
                win.0 as i64 - 1,
                win.0 as i64 + rng.below(4096) as i64,
                win.1 as i64 - rng.below(4096) as i64,
                rng.below(win.1.max(1)) as i64,
                rng.below(1 << 32) as i64,
            ],
            rng,
        ),
        (_, "stride") => choose(
            &[
                0,
                1,
                lim.cols as i64,
                4 * lim.cols as i64,
                rng.below(256) as i64,
                rng.below(1 << 20) as i64,
                rng.below(1 << 32) as i64,
            ],
            rng,
        ),
        (_, "a_stride" | "b_stride" | "dst_stride") => {
            choose(&[0, 1, 2, rng.below(16) as i64, rng.below(lim.spad) as i64, rng.below(1 << 16) as i64], rng)
        }
        (_, name) if name.starts_with("pad_") => {
            choose(&[0, 0, 1, 255, rng.below(8) as i64, rng.below(256) as i64], rng)
        }
        _ if f.width == 1 => rng.below(2) as i64,
        _ => {
            // Buffer rows and columns.
            let (s, a) = (lim.spad as i64, lim.acc as i64);
            choose(
                &[
                    0,
                    1,
                    s - 1,
                    s,
                    s - rng.below(64) as i64,
                    a - 1,
                    a,
                    a - rng.below(64) as i64,
                    rng.below(lim.spad) as i64,
                    rng.below(lim.acc) as i64,
                    rng.below(1 << 16) as i64,
                    65535,
                ],
                rng,
            )
        }
    };
    (v as u64) & m
}

/// Dependency flags: mostly ones the instruction's queue has, sometimes any.
fn deps_value(rng: &mut Rng, mnemonic: &str, sync_queue: u64) -> u64 {
    if rng.chance(1, 4) {
        return rng.below(16);
    }
    let (prev, next) = match (mnemonic, sync_queue) {
        ("load", _) | ("sync", 0) => (false, true),
        ("store", _) | ("sync", 2) => (true, false),
        ("finish", _) | ("sync", _) => (false, false),
        _ => (true, true),
    };
    let allowed = (if prev { 0b0101 } else { 0 }) | (if next { 0b1010 } else { 0 });
    rng.below(16) & allowed
}

fn build(rng: &mut Rng, lim: &Limits, win: (u64, u64), spec: &InstrSpec) -> Words {
    let mut w = [0u64; 4];
    set_bits(&mut w, 0, 8, spec.opcode as u64);
    let mut sync_queue = 0;
    for (f, lo) in field_positions(spec.fields) {
        let v = field_value(rng, lim, win, f);
        if f.name == "queue" {
            sync_queue = v;
        }
        set_bits(&mut w, lo, f.width, v);
    }
    set_bits(&mut w, 8, 4, deps_value(rng, spec.mnemonic, sync_queue));
    w
}

fn clamp16(v: i64) -> Option<u16> {
    u16::try_from(v).ok()
}

fn adjust(v: &mut u16, target: i64) {
    if let Some(x) = clamp16(target) {
        *v = x;
    }
}

/// A 9-bit value at or next to a bound of the element type `t` (0 = i8,
/// 1 = u8), or of the other type.
fn type_edge(rng: &mut Rng, t: u8) -> i16 {
    let (lo, hi) = if rng.chance(3, 4) == (t == 1) { (0, 255) } else { (-128, 127) };
    (choose(&[lo, hi], rng) + rng.delta() as i16).clamp(-256, 255)
}

/// Moves a decodable instruction's operands onto the edges of the checks
/// (each edge with probability 1/2, so every check gets to fail first).
fn edge(rng: &mut Rng, lim: &Limits, win: (u64, u64), mut instr: Instr) -> Instr {
    let (s, a) = (lim.spad as i64, lim.acc as i64);
    match &mut instr {
        Instr::Load(_) | Instr::Store(_) => {
            let b = match &instr {
                Instr::Load(l) => DmaBlock::of_load(l),
                Instr::Store(st) => DmaBlock::of_store(st),
                _ => unreachable!(),
            };
            let limit = if b.to_acc { a } else { s };
            let span = (b.local_end(lim.cols) - b.addr) as i64;
            let addr = if rng.chance(1, 2) { clamp16(limit - span + rng.delta()) } else { None };
            let bytes = ((b.rows - 1) * b.stride + b.row_bytes()) as i64;
            let dram = match rng.below(3) {
                0 => u32::try_from(win.1 as i64 - bytes + rng.delta()).ok(),
                1 => u32::try_from(win.0 as i64 + rng.delta()).ok(),
                _ => None,
            };
            match &mut instr {
                Instr::Load(l) => {
                    l.addr = addr.unwrap_or(l.addr);
                    l.dram = dram.unwrap_or(l.dram);
                }
                Instr::Store(st) => {
                    st.addr = addr.unwrap_or(st.addr);
                    st.dram = dram.unwrap_or(st.dram);
                }
                _ => unreachable!(),
            }
        }
        Instr::Ldw(l) => {
            if rng.chance(1, 2) {
                adjust(&mut l.k, lim.rows as i64 + rng.delta());
            }
            if rng.chance(1, 2) {
                adjust(&mut l.n, lim.cols as i64 + rng.delta());
            }
            if rng.chance(1, 2) {
                adjust(&mut l.addr, s - l.k as i64 + rng.delta());
            }
        }
        Instr::Matmul(m) => {
            if rng.chance(1, 2) {
                adjust(&mut m.a, s - m.m as i64 + rng.delta());
            }
            if rng.chance(1, 2) {
                adjust(&mut m.acc, a - m.m as i64 + rng.delta());
            }
            if rng.chance(1, 2) {
                adjust(&mut m.k, lim.rows as i64 + rng.delta());
            }
            if rng.chance(1, 2) {
                adjust(&mut m.n, lim.cols as i64 + rng.delta());
            }
            if rng.chance(1, 2) {
                adjust(&mut m.w, s - m.k as i64 + rng.delta());
            }
        }
        Instr::Requant(r) => {
            if rng.chance(1, 2) {
                adjust(&mut r.acc, a - r.rows as i64 + rng.delta());
            }
            if rng.chance(1, 2) {
                adjust(&mut r.params, a - 2 + rng.delta());
            }
            if rng.chance(1, 2) {
                adjust(&mut r.dst, s - r.rows as i64 + rng.delta());
            }
            let t = r.out_type;
            for v in [&mut r.zp, &mut r.qmin, &mut r.qmax] {
                if rng.chance(1, 2) {
                    *v = type_edge(rng, t);
                }
            }
            if rng.chance(1, 3) {
                r.qmax = (r.qmin + rng.delta() as i16).clamp(-256, 255);
            }
        }
        Instr::Vmax(v) => {
            let n1 = v.n as i64 - 1;
            for (lo, st) in [(&mut v.a, v.a_stride), (&mut v.b, v.b_stride), (&mut v.dst, v.dst_stride)] {
                if rng.chance(1, 2) {
                    adjust(lo, s - 1 - n1 * st as i64 + rng.delta());
                }
            }
        }
        Instr::Vadd(v) => {
            let n = v.n as i64;
            for lo in [&mut v.a, &mut v.b, &mut v.dst] {
                if rng.chance(1, 2) {
                    adjust(lo, s - n + rng.delta());
                }
            }
            if rng.chance(1, 2) {
                adjust(&mut v.params, a - 3 + rng.delta());
            }
            let (ti, to) = (v.in_type, v.out_type);
            for (x, t) in [(&mut v.za, ti), (&mut v.zb, ti), (&mut v.zo, to), (&mut v.qmin, to), (&mut v.qmax, to)] {
                if rng.chance(1, 2) {
                    *x = type_edge(rng, t);
                }
            }
            if rng.chance(1, 3) {
                v.qmax = (v.qmin + rng.delta() as i16).clamp(-256, 255);
            }
        }
        Instr::Sync(_) | Instr::Finish(_) => {}
    }
    instr
}

/// Breaks an encoding in one of several ways.
fn mutate(rng: &mut Rng, lim: &Limits, win: (u64, u64), w: &mut Words) {
    let spec = INSTR_SPECS.iter().find(|s| s.opcode as u64 == get_bits(w, 0, 8));
    let end = spec.map_or(16, |s| 16 + s.fields.iter().map(|f| f.width).sum::<u32>());
    match rng.below(8) {
        0 | 1 => {
            for _ in 0..=rng.below(3) {
                let b = rng.below(256) as u32;
                w[(b / 64) as usize] ^= 1 << (b % 64);
            }
        }
        2 => {
            // A bit just past the last field, the last bit, or anywhere past the fields.
            let b = choose(&[end, 255, end + rng.below((256 - end).max(1) as u64) as u32], rng);
            if b < 256 {
                w[(b / 64) as usize] ^= 1 << (b % 64);
            }
        }
        3 => set_bits(w, 12, 4, 1 << rng.below(4)),
        4 => set_bits(w, 8, 4, rng.below(16)),
        5 => set_bits(w, 0, 8, choose(&[0, 10, 11, 0x81, 0xff, rng.below(256), rng.below(12)], rng)),
        _ => {
            if let Some(s) = spec {
                if !s.fields.is_empty() {
                    let fields = field_positions(s.fields);
                    let (f, lo) = fields[rng.below(fields.len() as u64) as usize];
                    let v = field_value(rng, lim, win, f);
                    set_bits(w, lo, f.width, v);
                }
            }
        }
    }
}

fn window(rng: &mut Rng) -> (u64, u64) {
    match rng.below(10) {
        0 => (rng.below(1 << 32), rng.below(1 << 32)),
        1 => (0, u32::MAX as u64),
        2 => (rng.below(1 << 20), (1 << 20) + rng.below(1 << 24)),
        _ => (0x1000, 0x10_0000),
    }
}

/// The model's dispatch verdict: (code, is_finish, queue).
fn expect(cfg: &HwConfig, bytes: &[u8; 32], win: (u64, u64)) -> (u8, bool, Option<u8>) {
    let instr = match Instr::decode(bytes) {
        Ok(i) => i,
        Err(_) => return (1, false, None),
    };
    let Some(queue) = instr.queue() else {
        return (0, true, None);
    };
    match legal::check(&instr, cfg).and_then(|_| legal::check_window(&instr, win.0, win.1)) {
        Ok(()) => (0, false, Some(queue as u8)),
        Err(e) => (e.code as u8, false, None),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: check_vectors CONFIG.toml COUNT SEED OUT");
        std::process::exit(2);
    }
    let cfg = HwConfig::from_toml(&std::fs::read_to_string(&args[1]).expect("config readable")).expect("valid config");
    let count: u64 = args[2].parse().expect("COUNT");
    let mut rng = Rng(args[3].parse().expect("SEED"));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&args[4]).expect("OUT writable"));
    let lim = Limits {
        rows: cfg.array.rows as u64,
        cols: cfg.array.cols as u64,
        spad: cfg.spad_rows() as u64,
        acc: cfg.acc_rows() as u64,
    };
    let mut hist: BTreeMap<(String, u8), u64> = BTreeMap::new();
    for _ in 0..count {
        let win = window(&mut rng);
        let mut w: Words = if rng.chance(1, 20) {
            [rng.next(), rng.next(), rng.next(), rng.next()]
        } else {
            let spec = &INSTR_SPECS[rng.below(INSTR_SPECS.len() as u64) as usize];
            let mut w = build(&mut rng, &lim, win, spec);
            if rng.chance(2, 3) {
                if let Ok(i) = Instr::decode(&to_bytes(&w)) {
                    w = from_bytes(&edge(&mut rng, &lim, win, i).encode());
                }
            }
            if rng.chance(1, 3) {
                mutate(&mut rng, &lim, win, &mut w);
            }
            w
        };
        if rng.chance(1, 50) {
            // Clean the reserved bits of a random word so its fields are judged.
            set_bits(&mut w, 12, 4, 0);
        }
        let bytes = to_bytes(&w);
        let (code, fin, queue) = expect(&cfg, &bytes, win);
        let name = INSTR_SPECS
            .iter()
            .find(|s| s.opcode as u64 == w[0] & 0xff)
            .map_or("(bad opcode)".to_string(), |s| s.mnemonic.to_string());
        *hist.entry((name, code)).or_default() += 1;
        writeln!(
            out,
            "{:016x}{:016x}{:016x}{:016x} {:x} {:x} {} {} {}",
            w[3],
            w[2],
            w[1],
            w[0],
            win.0,
            win.1,
            code,
            fin as u8,
            queue.map_or("-".to_string(), |q| q.to_string())
        )
        .expect("write");
    }
    for ((name, code), n) in &hist {
        eprintln!("{name:>12} code {code}: {n}");
    }
}
