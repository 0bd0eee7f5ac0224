//! Round trips between instructions, their binary encoding and their
//! assembly text, robustness of the decoder and the assembler on arbitrary
//! input, and the assembler's error messages.

use isa::asm::{parse_instr, parse_program, print_program, AsmError};
use isa::instr::{DecodeError, Deps, FieldKind, FieldSpec, Instr, Queue, INSTR_BYTES, INSTR_SPECS};
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// Strategies

/// Values of one field: often 0 (omitted in the text), small values, the
/// range's ends, values around the hex threshold 4096, anything in range.
fn field_value(f: &FieldSpec) -> BoxedStrategy<i64> {
    let (lo, hi) = f.range();
    match f.kind {
        FieldKind::Enum(_) => (lo..=hi).boxed(),
        FieldKind::Unsigned | FieldKind::Signed => prop_oneof![
            3 => Just(0),
            3 => lo.max(-5)..=hi.min(5),
            1 => Just(lo),
            1 => Just(hi),
            // Around the hex threshold where the range reaches it.
            1 => lo.max(4094).min(hi)..=hi.min(4098),
            3 => lo..=hi,
        ]
        .boxed(),
    }
}

/// The dependency bits an instruction of queue `q` may set.
fn legal_dep_bits(q: Option<Queue>) -> u64 {
    let prev = Deps { pop_prev: true, push_prev: true, ..Deps::NONE }.bits();
    let next = Deps { pop_next: true, push_next: true, ..Deps::NONE }.bits();
    let q_prev = q.and_then(Queue::prev).map_or(0, |_| prev);
    let q_next = q.and_then(Queue::next).map_or(0, |_| next);
    q_prev | q_next
}

/// Builds an instruction from in-range values and random dependency bits,
/// keeping only the legal flags and turning zero counts that `check_fields`
/// rejects into 1, so that the filter behind it (almost) never rejects.
fn build(mnemonic: &str, mut values: Vec<i64>, dep_bits: u64) -> Instr {
    let spec = INSTR_SPECS.iter().find(|s| s.mnemonic == mnemonic).expect("known mnemonic");
    loop {
        let mut i = Instr::from_values(mnemonic, Deps::NONE, &values).expect("known mnemonic");
        *i.deps_mut() = Deps::from_bits(dep_bits & legal_dep_bits(i.queue()));
        match i.check_fields() {
            Err(DecodeError::IllegalField { field, value: 0, .. }) => {
                let k = spec.fields.iter().position(|f| f.name == field).expect("field of the spec");
                if values[k] != 0 {
                    return i; // not a zero-count problem; the filter drops it
                }
                values[k] = 1;
            }
            _ => return i,
        }
    }
}

/// Random valid instructions of every kind.
fn arb_instr() -> impl Strategy<Value = Instr> {
    (0..INSTR_SPECS.len())
        .prop_flat_map(|k| {
            let spec = &INSTR_SPECS[k];
            let values: Vec<BoxedStrategy<i64>> = spec.fields.iter().map(field_value).collect();
            (Just(spec.mnemonic), values, 0u64..16)
        })
        .prop_map(|(mnemonic, values, bits)| build(mnemonic, values, bits))
        .prop_filter("valid instruction", |i| i.check_fields().is_ok())
}

fn arb_program() -> impl Strategy<Value = Vec<Instr>> {
    prop::collection::vec(arb_instr(), 0..24)
}

/// How to write one number in a non-canonical but legal way.
fn write_number(v: i64, style: u8) -> String {
    let (sign, mag) = if v < 0 { ("-", v.unsigned_abs()) } else { ("", v as u64) };
    match style % 4 {
        0 => format!("{v}"),
        1 => format!("{sign}{mag:#x}"),
        2 => format!("{sign}0X{mag:X}"),
        _ => {
            // Decimal with `_` between every digit group of 3.
            let d = mag.to_string();
            let mut out = String::new();
            for (k, c) in d.chars().enumerate() {
                if k > 0 && (d.len() - k) % 3 == 0 {
                    out.push('_');
                }
                out.push(c);
            }
            format!("{sign}{out}")
        }
    }
}

/// A non-canonical text of `i`: every field (zeros too) or only the non-zero
/// ones, in a shuffled order, numbers in assorted notations, extra blanks,
/// annotations in shuffled order and a trailing comment.
fn alternative_text(i: &Instr, order: &[u8], styles: &[u8], all_fields: bool, blanks: &str) -> String {
    let spec = i.spec();
    let values = i.values();
    let mut parts = vec![spec.mnemonic.to_string()];
    let n = spec.fields.len();
    let mut idx: Vec<usize> = (0..n).collect();
    // Shuffle by the random keys.
    idx.sort_by_key(|&k| order.get(k).copied().unwrap_or(0));
    for k in idx {
        let (f, v) = (&spec.fields[k], values[k]);
        if v == 0 && !all_fields {
            continue;
        }
        let text = match f.kind {
            FieldKind::Enum(names) => names[v as usize].to_string(),
            _ => write_number(v, styles.get(k).copied().unwrap_or(0)),
        };
        parts.push(format!("{}={text}", f.name));
    }
    let q = i.queue();
    let d = i.deps();
    let mut anns = Vec::new();
    for (set, kind, other) in [
        (d.pop_prev, "wait", q.and_then(Queue::prev)),
        (d.pop_next, "wait", q.and_then(Queue::next)),
        (d.push_prev, "signal", q.and_then(Queue::prev)),
        (d.push_next, "signal", q.and_then(Queue::next)),
    ] {
        if set {
            anns.push(format!("@{kind}({})", other.expect("legal deps").name()));
        }
    }
    anns.reverse();
    parts.extend(anns);
    format!("{blanks}{}{blanks}; trailing comment", parts.join(blanks))
}

/// Random edits of a text: delete, insert or replace characters.
fn mutate(text: &str, edits: &[(usize, u8, char)]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for &(pos, op, c) in edits {
        let at = if chars.is_empty() { 0 } else { pos % (chars.len() + 1) };
        match op % 3 {
            0 if at < chars.len() => {
                chars.remove(at);
            }
            1 => chars.insert(at, c),
            _ if at < chars.len() => chars[at] = c,
            _ => chars.push(c),
        }
    }
    chars.into_iter().collect()
}

/// Characters that matter to the assembler, and a few that do not.
fn interesting_char() -> impl Strategy<Value = char> {
    prop_oneof![
        prop::sample::select(" \t\n\r=@();#-_0123456789abcdefxXloadstrwigncmpu".chars().collect::<Vec<_>>()),
        any::<char>(),
    ]
}

/// Whatever the parser returns on arbitrary text, a successful parse gives
/// valid instructions whose canonical text parses back to them.
fn check_parse_result(text: &str) -> Result<(), TestCaseError> {
    match parse_program(text) {
        Ok(p) => {
            for i in &p {
                prop_assert!(i.check_fields().is_ok(), "{i:?} accepted from {text:?}");
            }
            prop_assert_eq!(parse_program(&print_program(&p)), Ok(p));
        }
        Err(e) => {
            let lines = text.lines().count().max(1);
            prop_assert!(e.line >= 1 && e.line <= lines, "{e} for {text:?}");
            prop_assert!(e.column >= 1, "{e}");
            prop_assert!(!e.message.is_empty());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn encode_decode_round_trip(i in arb_instr()) {
        let bytes = i.encode();
        prop_assert_eq!(Instr::decode(&bytes), Ok(i));
    }

    #[test]
    fn text_round_trip(i in arb_instr()) {
        let text = i.to_string();
        prop_assert!(!text.contains("  ") && !text.ends_with(' ') && !text.contains('\n'), "{text:?}");
        prop_assert!(text.starts_with(i.mnemonic()));
        prop_assert_eq!(parse_instr(&text), Ok(Some(i)), "text {:?}", text);
    }

    #[test]
    fn program_round_trip(p in arb_program()) {
        let text = print_program(&p);
        prop_assert_eq!(text.lines().count(), p.len());
        prop_assert!(p.is_empty() || text.ends_with('\n'));
        prop_assert_eq!(parse_program(&text), Ok(p));
    }

    #[test]
    fn non_canonical_text_parses(
        i in arb_instr(),
        order in prop::collection::vec(any::<u8>(), 12),
        styles in prop::collection::vec(any::<u8>(), 12),
        all_fields in any::<bool>(),
        blanks in prop::sample::select(vec![" ", "  ", "\t", " \t "]),
    ) {
        let text = alternative_text(&i, &order, &styles, all_fields, blanks);
        prop_assert_eq!(parse_instr(&text), Ok(Some(i)), "text {:?}", text);
    }

    #[test]
    fn decode_arbitrary_bytes(bytes in any::<[u8; INSTR_BYTES]>()) {
        if let Ok(i) = Instr::decode(&bytes) {
            prop_assert_eq!(i.encode(), bytes);
        }
    }

    #[test]
    fn decode_near_valid_bytes(
        bytes in any::<[u8; INSTR_BYTES]>(),
        opcode in 0u8..=10,
        zero_from in 2usize..=INSTR_BYTES,
    ) {
        // A plausible opcode, no reserved flags, and zeros from some byte on:
        // this reaches the field checks far more often than random bytes.
        let mut bytes = bytes;
        bytes[0] = opcode;
        bytes[1] &= 0x0f;
        for b in &mut bytes[zero_from..] {
            *b = 0;
        }
        if let Ok(i) = Instr::decode(&bytes) {
            prop_assert!(i.check_fields().is_ok());
            prop_assert_eq!(i.encode(), bytes);
        }
    }

    #[test]
    fn decode_flipped_bits(i in arb_instr(), bit in 0usize..256) {
        let mut bytes = i.encode();
        bytes[bit / 8] ^= 1 << (bit % 8);
        if let Ok(j) = Instr::decode(&bytes) {
            prop_assert_ne!(j, i);
            prop_assert_eq!(j.encode(), bytes);
        }
    }

    #[test]
    fn decode_any_length(bytes in prop::collection::vec(any::<u8>(), 0..70)) {
        match Instr::decode(&bytes) {
            Err(DecodeError::Length { expected, got }) => {
                prop_assert_eq!(expected, INSTR_BYTES);
                prop_assert_eq!(got, bytes.len());
                prop_assert_ne!(got, INSTR_BYTES);
            }
            Ok(i) => prop_assert_eq!(&i.encode()[..], &bytes[..]),
            Err(_) => prop_assert_eq!(bytes.len(), INSTR_BYTES),
        }
    }

    #[test]
    fn parse_arbitrary_strings(text in any::<String>()) {
        check_parse_result(&text)?;
    }

    #[test]
    fn parse_token_soup(
        text in "([a-z_]{0,8}|=|@|\\(|\\)|-|0x|[0-9_]{1,6}|[ \t]|\n|;|#|@wait\\(|@signal\\(|load|compute|store|rows=|queue=){0,40}"
    ) {
        check_parse_result(&text)?;
    }

    #[test]
    fn parse_mutated_programs(
        p in prop::collection::vec(arb_instr(), 1..6),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), interesting_char()), 1..6),
    ) {
        let text = mutate(&print_program(&p), &edits);
        check_parse_result(&text)?;
    }

    #[test]
    fn parse_instr_never_panics(text in any::<String>()) {
        if let Ok(Some(i)) = parse_instr(&text) {
            prop_assert!(i.check_fields().is_ok());
        }
    }
}

// ---------------------------------------------------------------------------
// Canonical text

#[test]
fn canonical_text_examples() {
    let p = parse_program(
        "load buf=acc dram=4096 stride=64 rows=4 cols=4 addr=0 pad_value=-1 @signal(compute)\n\
         matmul m=4095 a=0 acc=0 swap=1 @signal(store) @wait(load)\n\
         sync\n\
         sync queue=store @wait(compute)\n\
         finish\n",
    )
    .unwrap();
    assert_eq!(
        print_program(&p),
        "load buf=acc dram=0x1000 stride=64 rows=4 cols=4 pad_value=-1 @signal(compute)\n\
         matmul m=4095 swap=1 @wait(load) @signal(store)\n\
         sync queue=load\n\
         sync queue=store @wait(compute)\n\
         finish\n"
    );
}

#[test]
fn sync_deps_follow_its_queue() {
    let i = parse_instr("sync queue=load @wait(compute) @signal(compute)").unwrap().unwrap();
    assert_eq!(i.deps(), Deps { pop_next: true, push_next: true, ..Deps::NONE });
    let i = parse_instr("sync queue=compute @wait(store) @signal(load)").unwrap().unwrap();
    assert_eq!(i.deps(), Deps { pop_next: true, push_prev: true, ..Deps::NONE });
    // The field may follow nothing in particular: deps are resolved after it.
    let i = parse_instr("sync @wait(compute)").unwrap().unwrap();
    assert_eq!(i.deps(), Deps { pop_next: true, ..Deps::NONE });
}

#[test]
fn numbers() {
    let line = "load dram=0xdead_BEEF stride=1_000 rows=0X10 cols=-0 pad_value=-0x80 cols_x=1";
    assert_eq!(parse_instr(line).unwrap_err().column, line.find("cols_x").unwrap() + 1);
    let i = parse_instr("load dram=0xdead_BEEF stride=1_000 rows=0X10 cols=1 pad_value=-0x80").unwrap().unwrap();
    assert_eq!(i.values()[1..5], [0xdead_beef, 1000, 16, 1]);
    assert_eq!(i.values()[9], -128);
    assert_eq!(i.to_string(), "load dram=0xdeadbeef stride=1000 rows=16 cols=1 pad_value=-128");
}

#[test]
fn blank_and_comment_lines() {
    assert_eq!(parse_instr(""), Ok(None));
    assert_eq!(parse_instr("   \t "), Ok(None));
    assert_eq!(parse_instr("; load rows=1"), Ok(None));
    assert_eq!(parse_instr("  # anything @ = ("), Ok(None));
    assert_eq!(parse_instr("finish\n"), Ok(Some(parse_instr("finish").unwrap().unwrap())));
    assert_eq!(parse_instr("finish;done").unwrap().unwrap().mnemonic(), "finish");
    assert_eq!(parse_program("\n\n; nothing\r\n\n"), Ok(vec![]));
    assert_eq!(parse_program("finish\r\nfinish\r\n").unwrap().len(), 2);
}

// ---------------------------------------------------------------------------
// Errors

#[track_caller]
fn err(text: &str) -> AsmError {
    match parse_program(text) {
        Err(e) => e,
        Ok(p) => panic!("{text:?} parsed as {p:?}"),
    }
}

#[track_caller]
fn assert_err(text: &str, line: usize, column: usize, message: &str) {
    let e = err(text);
    assert_eq!((e.line, e.column, e.message.as_str()), (line, column, message), "for {text:?}");
}

#[test]
fn error_display() {
    let e = err("finish\n\n  lod rows=1\n");
    assert_eq!(
        e.to_string(),
        "line 3, column 3: unknown mnemonic `lod` (expected one of load, store, ldw, matmul, requant, vmax, vadd, vlut, vdeq, vquant, vop, vred, vmask, sync, finish)"
    );
    let dynamic: Box<dyn std::error::Error> = Box::new(e);
    assert!(dynamic.to_string().starts_with("line 3, column 3: "));
}

#[test]
fn error_unknown_mnemonic() {
    assert_err(
        "lod rows=1",
        1,
        1,
        "unknown mnemonic `lod` (expected one of load, store, ldw, matmul, requant, vmax, vadd, vlut, vdeq, vquant, vop, vred, vmask, sync, finish)",
    );
    assert_eq!(err("finish\nLOAD").line, 2);
    assert_eq!(
        err("@wait(load)").message.split(' ').take(3).collect::<Vec<_>>(),
        ["unknown", "mnemonic", "`@wait(load)`"]
    );
}

#[test]
fn error_unknown_field() {
    assert_err(
        "load rows=1 foo=1",
        1,
        13,
        "expected a field of `load` (buf, dram, stride, rows, cols, pad_top, pad_bottom, pad_left, pad_right, \
         pad_value, addr, col, idx, idx_addr, limit, zfmt), found `foo`",
    );
    assert_err("sync =1", 1, 6, "expected a field of `sync` (queue), found `=1`");
    assert_err("finish now", 1, 8, "`finish` takes no fields, found `now`");
    assert_err("ldw k=1 n=1 k-1", 1, 14, "expected `=` after field `k`, found `-1`");
    assert_err("ldw k=1 n=1 k", 1, 14, "expected `=` after field `k`, found end of line");
}

#[test]
fn error_field_given_twice() {
    assert_err("load rows=1 cols=1 rows=2", 1, 20, "field `rows` given twice");
    assert_err("\n\tsync queue=load queue=load", 2, 18, "field `queue` given twice");
}

#[test]
fn error_not_a_number() {
    assert_err("load rows=x1 cols=1", 1, 11, "expected a number, found `x1`");
    assert_err("load rows= cols=1", 1, 11, "expected a number, found end of line");
    assert_err("load rows=0x cols=1", 1, 11, "expected a number, found `0x`");
    assert_err("load rows=_1 cols=1", 1, 11, "expected a number, found `_1`");
    assert_err("load rows=--1 cols=1", 1, 11, "expected a number, found `--1`");
    assert_err("load rows=4k cols=1", 1, 11, "expected a number, found `4k`");
    assert_err("load buf=dram rows=1 cols=1", 1, 10, "expected spad or acc for field `buf`, found `dram`");
    assert_err("sync queue=1", 1, 12, "expected load, compute or store for field `queue`, found `1`");
}

#[test]
fn error_out_of_range() {
    assert_err("load rows=70000 cols=1", 1, 11, "value 70000 out of range 0..=65535 for field `rows`");
    assert_err("load rows=1 cols=-1", 1, 18, "value -1 out of range 0..=65535 for field `cols`");
    assert_err("requant rows=1 zp=-257", 1, 19, "value -257 out of range -256..=255 for field `zp`");
    assert_err("matmul m=1 swap=2", 1, 17, "value 2 out of range 0..=1 for field `swap`");
    assert_err(
        "load dram=0x1_0000_0000 rows=1 cols=1",
        1,
        11,
        "value 0x1_0000_0000 out of range 0..=4294967295 for field `dram`",
    );
    let huge = "9".repeat(60);
    assert_err(&format!("load rows={huge}"), 1, 11, &format!("value {huge} out of range 0..=65535 for field `rows`"));
}

#[test]
fn error_dependencies() {
    assert_err(
        "load rows=1 cols=1 @signal(store)",
        1,
        28,
        "load has no token path to store (`load` runs in the load queue; expected compute)",
    );
    assert_err(
        "store rows=1 cols=1 @wait(store)",
        1,
        27,
        "store has no token path to store (`store` runs in the store queue; expected compute)",
    );
    assert_err(
        "sync queue=compute @wait(compute)",
        1,
        26,
        "compute has no token path to compute (`sync` runs in the compute queue; expected load or store)",
    );
    assert_err("finish @wait(load)", 1, 14, "`finish` takes no dependency annotations, found `@wait(load)`");
    assert_err("vmax n=1 @wait(load) @wait(load)", 1, 22, "`@wait(load)` given twice");
    assert_err("vmax n=1 @wait(dram)", 1, 16, "expected a queue (load, compute or store), found `dram`");
    assert_err("vmax n=1 @wait(load", 1, 10, "expected `@wait(QUEUE)` or `@signal(QUEUE)`, found `@wait(load`");
    assert_err("vmax n=1 @push(load)", 1, 10, "expected `@wait(QUEUE)` or `@signal(QUEUE)`, found `@push(load)`");
    assert_err(
        "vmax @wait(load) n=1",
        1,
        18,
        "expected `@wait(QUEUE)` or `@signal(QUEUE)`, found `n=1` (fields come before dependency annotations such as `@wait(load)`)",
    );
}

#[test]
fn error_check_fields() {
    assert_err("load rows=0 cols=1", 1, 6, "load: field `rows` = 0 is not a legal value (at least 1)");
    assert_err(
        "  load rows=1",
        1,
        3,
        "load: field `cols` = 0 is not a legal value (at least 1) (field `cols` omitted, so 0)",
    );
    assert_err(
        "matmul m=1 preload=1 k=1",
        1,
        1,
        "matmul: field `n` = 0 is not a legal value (at least 1) (field `n` omitted, so 0)",
    );
    // Without preload, k and n may be zero.
    assert!(parse_instr("matmul m=1 k=0").unwrap().is_some());
}

#[test]
fn error_columns_count_characters() {
    // Tabs and non-ASCII characters count as one column each.
    assert_err("\t\tload rows=é", 1, 13, "expected a number, found `é`");
    let e = err("load rows=1 cols=1 pad_value=1 ééé=1 ü=1");
    assert_eq!((e.line, e.column), (1, 32));
    assert!(e.message.ends_with("found `ééé=1`"), "{e}");
    let e = err("load rows=1 cols=1 pad_value=1 @wait(ééé)");
    assert_eq!((e.column, e.message.as_str()), (32, "expected `@wait(QUEUE)` or `@signal(QUEUE)`, found `@wait(ééé)`"));
    assert_err(
        "finish\nfinish\n   ldw k=1 n=1 wfmt=i5",
        3,
        21,
        "expected i8, i8s24, i4 or i4s24 for field `wfmt`, found `i5`",
    );
}

#[test]
fn parse_instr_rejects_line_breaks() {
    let e = parse_instr("finish\nfinish").unwrap_err();
    assert_eq!((e.line, e.column), (1, 7));
    assert_eq!(e.message, "expected one instruction per line, found a line break");
    assert!(parse_instr("finish\r\n").unwrap().is_some());
}
