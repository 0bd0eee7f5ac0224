//! Assembly text: one instruction per line, parsed with nom and printed by
//! `Display for Instr`.
//!
//! ```text
//! ; a comment (`#` also starts one); blank lines are allowed
//! load buf=acc dram=0x1000 stride=64 rows=4 cols=4 addr=0 @signal(compute)
//! matmul a=0 m=4 acc=0 swap=1 @wait(load) @signal(store)
//! requant acc=0 rows=4 dst=8 params=16 zp=-128 qmin=-128 qmax=127
//! sync queue=compute @wait(load) @signal(load)
//! finish
//! ```
//!
//! A line is a mnemonic, then `field=value` pairs in any order (each field
//! at most once; omitted fields are 0), then dependency annotations
//! `@wait(Q)` (pop a token from neighbour queue Q) and `@signal(Q)` (push a
//! token to it). Values are decimal or `0x` hex with an optional leading `-`
//! and `_` separators; enumeration fields take one of their names.
//!
//! The canonical text (`Display`) prints the mnemonic, every non-zero field
//! in table order (unsigned values >= 4096 in hex; `sync` always prints its
//! `queue`), then `@wait`s and `@signal`s, previous queue before next, all
//! separated by single spaces. Parsing the canonical text of a valid
//! instruction gives the instruction back.

use std::fmt;

use nom::branch::alt;
use nom::bytes::complete::{tag_no_case, take_till1, take_while, take_while1};
use nom::character::complete::{char, digit1, satisfy};
use nom::combinator::{all_consuming, eof, map, opt, recognize, rest, verify};
use nom::multi::many0;
use nom::sequence::{pair, preceded, tuple};
use nom::IResult;

use crate::instr::{DecodeError, Deps, FieldKind, FieldSpec, Instr, InstrSpec, Queue, INSTR_SPECS};

/// Unsigned values at or above this are printed in hex.
const HEX_FROM: i64 = 4096;

/// An assembly error: 1-based line and column (in characters) of the
/// offending token, and what was expected and found there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct AsmError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Parses one line. `Ok(None)` for a blank or comment-only line. Errors
/// report line 1. One trailing line break is allowed; any other is an error.
pub fn parse_instr(line: &str) -> Result<Option<Instr>, AsmError> {
    let line = match line.strip_suffix('\n') {
        Some(l) => l.strip_suffix('\r').unwrap_or(l),
        None => line,
    };
    if let Some(off) = line.find('\n') {
        return Err(AsmError {
            line: 1,
            column: column(line, off),
            message: "expected one instruction per line, found a line break".into(),
        });
    }
    parse_line(line, 1)
}

/// Parses a whole program (lines separated by `\n` or `\r\n`); stops at the
/// first error, which carries its line number.
pub fn parse_program(text: &str) -> Result<Vec<Instr>, AsmError> {
    let mut out = Vec::new();
    for (k, line) in text.lines().enumerate() {
        if let Some(i) = parse_line(line, k + 1)? {
            out.push(i);
        }
    }
    Ok(out)
}

/// The canonical text of a program: one instruction per line, each line
/// terminated by `\n`.
pub fn print_program(instrs: &[Instr]) -> String {
    let mut s = String::new();
    for i in instrs {
        s.push_str(&i.to_string());
        s.push('\n');
    }
    s
}

impl fmt::Display for Instr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let spec = self.spec();
        f.write_str(spec.mnemonic)?;
        let is_sync = matches!(self, Instr::Sync(_));
        for (field, v) in spec.fields.iter().zip(self.values()) {
            if v == 0 && !(is_sync && field.name == "queue") {
                continue;
            }
            write!(f, " {}=", field.name)?;
            match field.kind {
                FieldKind::Unsigned if v >= HEX_FROM => write!(f, "{v:#x}")?,
                FieldKind::Unsigned | FieldKind::Signed => write!(f, "{v}")?,
                FieldKind::Enum(names) => {
                    match usize::try_from(v).ok().and_then(|k| names.get(k)) {
                        Some(name) => f.write_str(name)?,
                        // Not a valid instruction; print the raw value.
                        None => write!(f, "{v}")?,
                    }
                }
            }
        }
        let deps = self.deps();
        let queue = self.queue();
        let prev = queue.and_then(Queue::prev).map_or("?", Queue::name);
        let next = queue.and_then(Queue::next).map_or("?", Queue::name);
        for (set, kind, q) in [
            (deps.pop_prev, "wait", prev),
            (deps.pop_next, "wait", next),
            (deps.push_prev, "signal", prev),
            (deps.push_next, "signal", next),
        ] {
            if set {
                write!(f, " @{kind}({q})")?;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Lexing (nom)

fn is_space(c: char) -> bool {
    c.is_whitespace()
}

fn is_comment(c: char) -> bool {
    c == ';' || c == '#'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn spaces(i: &str) -> IResult<&str, &str> {
    take_while(is_space)(i)
}

/// A whitespace-separated word, up to a comment.
fn word(i: &str) -> IResult<&str, &str> {
    take_till1(|c| is_space(c) || is_comment(c))(i)
}

/// Optional whitespace, an optional comment, the end of the line.
fn line_end(i: &str) -> IResult<&str, ()> {
    map(tuple((spaces, opt(preceded(satisfy(is_comment), rest)), eof)), |_| ())(i)
}

fn ident(i: &str) -> IResult<&str, &str> {
    take_while1(is_ident_char)(i)
}

/// A token of a line: its text and its byte offset in the line.
#[derive(Clone, Copy, Debug)]
struct Tok<'a> {
    text: &'a str,
    off: usize,
}

/// Splits a line into tokens; everything from `;` or `#` on is a comment.
fn lex(line: &str) -> Vec<Tok<'_>> {
    let token = |i| {
        let (i, _) = spaces(i)?;
        let off = line.len() - i.len();
        let (i, text) = word(i)?;
        Ok((i, Tok { text, off }))
    };
    match tuple((many0(token), line_end))(line) {
        Ok((_, (toks, ()))) => toks,
        // Cannot happen: `many0` stops at whitespace + comment or the end,
        // which `line_end` accepts. Fall back to "no tokens" rather than panic.
        Err(_) => Vec::new(),
    }
}

/// A number: sign, radix-16 or radix-10 digits (with `_` separators).
fn number(i: &str) -> IResult<&str, (bool, u32, &str)> {
    let hex = map(
        preceded(
            tag_no_case("0x"),
            verify(take_while1(|c: char| c.is_ascii_hexdigit() || c == '_'), |d: &str| {
                d.chars().any(|c| c.is_ascii_hexdigit())
            }),
        ),
        |d| (16, d),
    );
    let dec = map(recognize(pair(digit1, take_while(|c: char| c.is_ascii_digit() || c == '_'))), |d| (10, d));
    map(pair(opt(char('-')), alt((hex, dec))), |(neg, (radix, digits))| (neg.is_some(), radix, digits))(i)
}

/// `@kind(queue)`; returns the kind and the queue name with its byte offset
/// in the token.
fn annotation(tok: &str) -> IResult<&str, (&str, &str, usize)> {
    let (i, _) = char('@')(tok)?;
    let (i, kind) = ident(i)?;
    let (i, _) = char('(')(i)?;
    let qoff = tok.len() - i.len();
    let (i, q) = ident(i)?;
    let (i, _) = all_consuming(char(')'))(i)?;
    Ok((i, (kind, q, qoff)))
}

// ---------------------------------------------------------------------------
// Parsing

/// 1-based character column of byte offset `off` in `line`.
fn column(line: &str, off: usize) -> usize {
    line.get(..off).map_or(off, |s| s.chars().count()) + 1
}

fn comma_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    items.into_iter().collect::<Vec<_>>().join(", ")
}

fn or_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// What was found where a token was expected.
fn found(s: &str) -> String {
    if s.is_empty() {
        "end of line".into()
    } else {
        format!("`{s}`")
    }
}

fn queue_by_name(name: &str) -> Option<Queue> {
    Queue::ALL.into_iter().find(|q| q.name() == name)
}

struct Dep<'a> {
    signal: bool,
    queue: Queue,
    text: &'a str,
    /// Byte offset of the queue name in the line.
    off: usize,
}

/// Parses a line; `lineno` is reported in errors.
fn parse_line(line: &str, lineno: usize) -> Result<Option<Instr>, AsmError> {
    let err = |off: usize, message: String| AsmError { line: lineno, column: column(line, off), message };
    let toks = lex(line);
    let Some((first, args)) = toks.split_first() else {
        return Ok(None);
    };
    let Some(spec) = INSTR_SPECS.iter().find(|s| s.mnemonic == first.text) else {
        return Err(err(
            first.off,
            format!(
                "unknown mnemonic {} (expected one of {})",
                found(first.text),
                comma_list(INSTR_SPECS.iter().map(|s| s.mnemonic))
            ),
        ));
    };

    let mut values = vec![0i64; spec.fields.len()];
    // Byte offset of each given field's name.
    let mut given: Vec<Option<usize>> = vec![None; spec.fields.len()];
    let mut deps: Vec<Dep<'_>> = Vec::new();

    for tok in args {
        if tok.text.starts_with('@') {
            deps.push(parse_dep(tok, &deps).map_err(|(off, m)| err(off, m))?);
            continue;
        }
        if let Some(d) = deps.first() {
            return Err(err(
                tok.off,
                format!(
                    "expected `@wait(QUEUE)` or `@signal(QUEUE)`, found {} (fields come before dependency annotations such as `{}`)",
                    found(tok.text),
                    d.text
                ),
            ));
        }
        let (k, v) = parse_field(spec, tok).map_err(|(off, m)| err(off, m))?;
        if given[k].is_some() {
            return Err(err(tok.off, format!("field `{}` given twice", spec.fields[k].name)));
        }
        given[k] = Some(tok.off);
        values[k] = v;
    }

    let Some(mut instr) = Instr::from_values(spec.mnemonic, Deps::NONE, &values) else {
        return Err(err(first.off, format!("internal error: no instruction `{}`", spec.mnemonic)));
    };

    // Dependencies name neighbour queues; which neighbour depends on the
    // instruction's queue, known only now (sync's `queue` field).
    let queue = instr.queue();
    let mut flags = Deps::NONE;
    for d in &deps {
        let Some(q) = queue else {
            return Err(err(d.off, format!("`{}` takes no dependency annotations, found `{}`", spec.mnemonic, d.text)));
        };
        let flag = if Some(d.queue) == q.prev() {
            if d.signal {
                &mut flags.push_prev
            } else {
                &mut flags.pop_prev
            }
        } else if Some(d.queue) == q.next() {
            if d.signal {
                &mut flags.push_next
            } else {
                &mut flags.pop_next
            }
        } else {
            let neighbours: Vec<&str> = [q.prev(), q.next()].into_iter().flatten().map(Queue::name).collect();
            return Err(err(
                d.off,
                format!(
                    "{q} has no token path to {} (`{}` runs in the {q} queue; expected {})",
                    d.queue,
                    spec.mnemonic,
                    or_list(&neighbours)
                ),
            ));
        };
        *flag = true;
    }
    *instr.deps_mut() = flags;

    if let Err(e) = instr.check_fields() {
        let (off, message) = match &e {
            DecodeError::IllegalField { field, .. } => {
                let k = spec.fields.iter().position(|f| f.name == *field);
                match k.and_then(|k| given[k]) {
                    Some(off) => (off, e.to_string()),
                    None => (first.off, format!("{e} (field `{field}` omitted, so 0)")),
                }
            }
            _ => (first.off, e.to_string()),
        };
        return Err(err(off, message));
    }
    Ok(Some(instr))
}

/// Parses `@wait(Q)` / `@signal(Q)`; errors are (byte offset in line, message).
fn parse_dep<'a>(tok: &Tok<'a>, seen: &[Dep<'a>]) -> Result<Dep<'a>, (usize, String)> {
    let expected = "expected `@wait(QUEUE)` or `@signal(QUEUE)`";
    let Ok((_, (kind, qname, qoff))) = annotation(tok.text) else {
        return Err((tok.off, format!("{expected}, found {}", found(tok.text))));
    };
    let signal = match kind {
        "wait" => false,
        "signal" => true,
        _ => return Err((tok.off, format!("{expected}, found {}", found(tok.text)))),
    };
    let Some(queue) = queue_by_name(qname) else {
        let names: Vec<&str> = Queue::ALL.iter().map(|q| q.name()).collect();
        return Err((tok.off + qoff, format!("expected a queue ({}), found {}", or_list(&names), found(qname))));
    };
    if seen.iter().any(|d| d.signal == signal && d.queue == queue) {
        return Err((tok.off, format!("`{}` given twice", tok.text)));
    }
    // Point at the queue name, the part that can be wrong.
    Ok(Dep { signal, queue, text: tok.text, off: tok.off + qoff })
}

/// Parses `field=value`; returns the field's index and value.
fn parse_field(spec: &InstrSpec, tok: &Tok<'_>) -> Result<(usize, i64), (usize, String)> {
    let expected_field = |found_text: &str| {
        if spec.fields.is_empty() {
            format!("`{}` takes no fields, found {}", spec.mnemonic, found(found_text))
        } else {
            format!(
                "expected a field of `{}` ({}), found {}",
                spec.mnemonic,
                comma_list(spec.fields.iter().map(|f| f.name)),
                found(found_text)
            )
        }
    };
    let Ok((after, name)) = ident(tok.text) else {
        return Err((tok.off, expected_field(tok.text)));
    };
    let Some(k) = spec.fields.iter().position(|f| f.name == name) else {
        return Err((tok.off, expected_field(name)));
    };
    let Ok((value, _)) = char::<_, nom::error::Error<&str>>('=')(after) else {
        let off = tok.off + (tok.text.len() - after.len());
        return Err((off, format!("expected `=` after field `{name}`, found {}", found(after))));
    };
    let voff = tok.off + (tok.text.len() - value.len());
    let v = parse_value(&spec.fields[k], value).map_err(|m| (voff, m))?;
    Ok((k, v))
}

fn parse_value(field: &FieldSpec, text: &str) -> Result<i64, String> {
    let (lo, hi) = field.range();
    if let FieldKind::Enum(names) = field.kind {
        return match names.iter().position(|n| *n == text) {
            Some(k) => Ok(k as i64),
            None => Err(format!("expected {} for field `{}`, found {}", or_list(names), field.name, found(text))),
        };
    }
    let Ok((_, (neg, radix, digits))) = all_consuming(number)(text) else {
        return Err(format!("expected a number, found {}", found(text)));
    };
    let out_of_range = || format!("value {text} out of range {lo}..={hi} for field `{}`", field.name);
    let mut mag: i128 = 0;
    for c in digits.chars().filter(|&c| c != '_') {
        let d = c.to_digit(radix).ok_or_else(|| format!("expected a number, found {}", found(text)))?;
        mag = mag.checked_mul(radix as i128).and_then(|m| m.checked_add(d as i128)).ok_or_else(out_of_range)?;
    }
    let v = if neg { -mag } else { mag };
    if v < lo as i128 || v > hi as i128 {
        return Err(out_of_range());
    }
    Ok(v as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instr::{Load, Matmul, Requant, Sync};

    #[test]
    fn example_program() {
        let text = "\
; a comment
# another

load buf=acc dram=0x1000 stride=64 rows=4 cols=4 addr=0 @signal(compute)
matmul a=0 m=4 acc=0 swap=1 @wait(load) @signal(store)   ; trailing comment
requant acc=0 rows=4 dst=8 params=16 zp=-128 qmin=-128 qmax=127
sync queue=compute @wait(load) @signal(load)
finish
";
        let p = parse_program(text).unwrap();
        assert_eq!(p.len(), 5);
        assert_eq!(
            p[0],
            Instr::from(Load {
                buf: 1,
                dram: 0x1000,
                stride: 64,
                rows: 4,
                cols: 4,
                deps: Deps { push_next: true, ..Deps::NONE },
                ..Default::default()
            })
        );
        assert_eq!(
            p[1],
            Instr::from(Matmul {
                m: 4,
                swap: 1,
                deps: Deps { pop_prev: true, push_next: true, ..Deps::NONE },
                ..Default::default()
            })
        );
        assert_eq!(
            p[2],
            Instr::from(Requant { rows: 4, dst: 8, params: 16, zp: -128, qmin: -128, qmax: 127, ..Default::default() })
        );
        assert_eq!(p[3], Instr::from(Sync { queue: 1, deps: Deps { pop_prev: true, push_prev: true, ..Deps::NONE } }));
        assert_eq!(print_program(&p[..1]), "load buf=acc dram=0x1000 stride=64 rows=4 cols=4 @signal(compute)\n");
        assert_eq!(p[3].to_string(), "sync queue=compute @wait(load) @signal(load)");
        assert_eq!(p[4].to_string(), "finish");
        assert_eq!(parse_program(&print_program(&p)).unwrap(), p);
    }
}
