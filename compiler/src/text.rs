//! The text model format (`.stm`): small quantized models written by hand,
//! for tests and examples. [`parse`] reads one into a [`Graph`]; [`print()`]
//! writes a graph back as text with inline tensors.
//!
//! # Example
//!
//! ```text
//! # A comment runs from `#` (or `;`) to the end of the line.
//! model tiny
//!
//! input x: f32[1, 1, 4, 4]
//!
//! quantize q x -> xq: i8[1, 1, 4, 4] scale=0.003921569 zp=-128
//! conv c1 xq -> c1_out: i8[1, 2, 4, 4] scale=0.0125 zp=-128 relu
//!     strides=1 pads=1 dilations=1 groups=1
//!     weights: i8[2, 1, 3, 3] = [
//!         1, -2, 3, -4, 5, -6, 7, -8, 9,
//!         0, 1, 0, 1, -4, 1, 0, 1, 0,
//!     ]
//!     w_scale = [0.004, 0x1.8p-8]        # per output channel
//!     bias = [100, -50]                  # int32, scale = s_in * w_scale[c]
//! maxpool p1 c1_out -> p1_out kernel=2 strides=2
//! flatten f p1_out -> flat axis=1
//! dense fc flat -> logits: i8[1, 3] scale=0.05 zp=3
//!     weights: i8[3, 8] = [
//!         1, 2, 3, 4, 5, 6, 7, 8,
//!         -1, -2, -3, -4, -5, -6, -7, -8,
//!         0, 0, 0, 0, 127, -127, 0, 0,
//!     ]
//!     w_scale = 0.01                     # one scale for every channel
//! dequantize dq logits -> y
//!
//! output y
//! ```
//!
//! # Grammar
//!
//! The text is a sequence of *statements*. A statement starts on a line
//! that begins in column 1; lines that begin with whitespace continue the
//! statement above (so long weight lists can span lines). Blank lines and
//! comments (`#` or `;` to the end of the line) are ignored anywhere.
//!
//! ```text
//! model   := "model" NAME                                  (first statement)
//! input   := "input" NAME ":" TYPE SHAPE [scale=FLOAT] [zp=INT]
//! layer   := OP NODE IN ("," IN)* "->" OUT [":" TYPE [SHAPE]] ATTR*
//! output  := "output" NAME ("," NAME)*                     (any number)
//! TYPE    := "i8" | "u8" | "f32"
//! SHAPE   := "[" [INT ("," INT)* [","]] "]"
//! ATTR    := FLAG | KEY "=" VALUE | KEY ":" TYPE SHAPE "=" VALUE
//! VALUE   := NUMBER | "(" NUMBERS ")" | "[" NUMBERS "]" | file("PATH")
//! NAME    := a word of letters, digits and `_ . / -`, or a "quoted string"
//!            (escapes \\ \" \n \t \r \u{HEX})
//! ```
//!
//! Tokens are separated by optional whitespace (`scale = 0.5` is
//! `scale=0.5`); lists take commas between items and an optional trailing
//! comma. `(..)` and `[..]` are interchangeable for lists of numbers.
//!
//! ## Values
//!
//! Every value has a static shape and an element type. An `i8` or `u8`
//! value carries its quantization, `scale` (positive, finite) and `zp`
//! (zero point, in the type's range, default 0). Names are unique; a value
//! is used only after the `input` or layer that defines it.
//!
//! A layer's output may leave out parts that follow from its inputs:
//! - the shape (inferred from the op and the input shapes; when given it is
//!   checked);
//! - the type (`f32` for `dequantize`, otherwise the first input's; a
//!   `quantize` must name it);
//! - `scale` and `zp`, which then pass through from the first input (right
//!   for `maxpool`, `flatten`, `reshape`, `transpose`, `clamp`); this needs
//!   the input to have the output's type. `zp` without `scale` is an error.
//!
//! ## Ops and attributes
//!
//! Attributes come in any order, each at most once. Every op takes the
//! output's `scale` and `zp`; besides:
//!
//! | op | inputs | attributes (default) |
//! |----|--------|----------------------|
//! | `quantize`, `dequantize` | 1 | — |
//! | `conv` | 1 | `weights`, `w_scale`, `bias` (0), `strides` (1), `pads` (0), `dilations` (1), `groups` (1), `relu` / `clamp`, `int4` (off: the weights are int4, -8..7) |
//! | `dense` | 1 | `weights`, `w_scale`, `bias` (0), `relu` / `clamp`, `int4` |
//! | `maxpool`, `avgpool` | 1 | `kernel`, `strides` (1), `pads` (0), `count_include_pad` (off; means something for `avgpool` only) |
//! | `add` | 2 | `relu` / `clamp` |
//! | `clamp` | 1 | `relu` / `clamp` |
//! | `flatten` | 1 | `axis` (1) |
//! | `reshape` | 1 | `shape` (the output's declared shape) |
//! | `transpose` | 1 | `perm` |
//! | `concat` | 1 or more | `axis` |
//! | `requantize`, `sigmoid`, `tanh`, `hardswish` | 1 | — |
//! | `hardsigmoid` | 1 | `alpha` (0.2), `beta` (0.5) |
//! | `leakyrelu` | 1 | `alpha` (0.01) |
//! | `resize` | 1 | `rows`, `cols`: the source row and column of each output row and column (nearest) |
//! | `clip` | 1 | `min` (-inf), `max` (inf): float bounds before quantizing |
//!
//! - `kernel`, `strides`, `dilations`: `N` (both dimensions) or `(H, W)`.
//! - `pads`: `P` (all four sides), `(H, W)` (top = bottom = H, left =
//!   right = W) or `(TOP, LEFT, BOTTOM, RIGHT)`.
//! - Clamp of the output, in its quantized type: `relu` is
//!   `(zp, type max)`, `clamp=(LO, HI)` is explicit; the default is the
//!   type's whole range.
//! - Flags (`relu`, `count_include_pad`) are bare words.
//! - `weights: i8[M, C/groups, KH, KW] = [..]` for `conv`,
//!   `weights: i8[N, K] = [..]` for `dense` (output-major), row-major; the
//!   number of values must match the shape. `w_scale = [..]` holds one
//!   positive scale per output channel, or `w_scale = S` one for all.
//!   `bias = [..]` holds one int32 per output channel. Type and shape may
//!   be written for `w_scale` (`f32[M]`) and `bias` (`i32[M]`) too.
//! - Any tensor can come from a NumPy file instead: `weights = file("w.npy")`
//!   (the shape is the file's; when declared, it must match). The parser
//!   does no IO: [`parse_with`] hands the path, as written, to a loader
//!   (the CLI reads it relative to the model's directory and decodes it with
//!   [`load_npy`]); [`parse`] has no loader and rejects file references.
//!
//! ## Numbers
//!
//! Integers are decimal or `0x` hex, with an optional sign. Floats are
//! decimal (`0.0125`, `1e-3`, rounded to the nearest f32) or C99 hex floats
//! (`0x1.99999ap-7`, which must be exactly representable as an f32, so they
//! read back bit for bit). [`print()`] writes the shortest decimal that reads
//! back to the same f32 (at most 9 significant digits), so printed models
//! are exact too.
//!
//! ## Errors
//!
//! Parsing stops at the first error, a [`TextError`] with the 1-based line
//! and column (in characters) of the offending token and what was expected
//! there. Graph-level checks ([`Graph::validate`]) are reported at the
//! layer they concern.
//!
//! ## Printing
//!
//! [`print()`] writes every output's type, shape and quantization and
//! every non-default attribute, tensors inline. For a valid graph whose
//! values are numbered in definition order (graph inputs and node outputs,
//! as the parser numbers them), `parse(&print(g)) == Ok(g)`. Values that
//! are neither graph inputs nor node outputs are not printed.

use std::collections::HashMap;
use std::fmt::Write as _;

use nom::branch::alt;
use nom::bytes::complete::{tag, tag_no_case};
use nom::character::complete::{char, digit0, digit1, hex_digit0, hex_digit1, one_of, satisfy};
use nom::combinator::{all_consuming, map, not, opt, recognize, value};
use nom::multi::many1;
use nom::sequence::{pair, preceded, terminated, tuple};
use nom::IResult;

use crate::ir::{
    infer_shape, ConvParams, DenseParams, ElemType, Graph, Node, Op, PoolParams, Quant, Value, ValueId, WeightType,
};
use crate::lut::UnaryFn;

/// A parse error: 1-based line and column (in characters) of the offending
/// token, and what was expected and found there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct TextError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// An array read from a `.npy` file, elements in C (row-major) order.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: NpyData,
}

/// The element types a model's tensors use.
#[derive(Clone, Debug, PartialEq)]
pub enum NpyData {
    I8(Vec<i8>),
    I32(Vec<i32>),
    F32(Vec<f32>),
}

impl NpyData {
    fn len(&self) -> usize {
        match self {
            NpyData::I8(v) => v.len(),
            NpyData::I32(v) => v.len(),
            NpyData::F32(v) => v.len(),
        }
    }

    fn dtype(&self) -> &'static str {
        match self {
            NpyData::I8(_) => "int8",
            NpyData::I32(_) => "int32",
            NpyData::F32(_) => "float32",
        }
    }
}

/// Parses a model whose tensors are all inline; a `file(..)` reference is
/// an error (use [`parse_with`]).
pub fn parse(text: &str) -> Result<Graph, TextError> {
    parse_with(text, &mut |_| Err("no loader for file references (the model must be parsed with a loader)".into()))
}

/// Parses a model, loading each `file("PATH")` tensor with `load(PATH)`.
/// A loader error is reported at the reference.
pub fn parse_with(text: &str, load: &mut dyn FnMut(&str) -> Result<NpyArray, String>) -> Result<Graph, TextError> {
    let stmts = statements(text)?;
    let mut p = Parser { g: Graph::default(), values: HashMap::new(), nodes: HashMap::new(), load };
    let mut outputs: Vec<(String, Tok<'_>)> = Vec::new();
    let Some(first) = stmts.first() else {
        return Err(TextError { line: 1, column: 1, message: "expected `model NAME`, found an empty model".into() });
    };
    if !(first[0].kind == Kind::Word && first[0].text == "model") {
        return Err(first[0].err(format!("expected `model NAME` first, found {}", found(&first[0]))));
    }
    for (k, st) in stmts.iter().enumerate() {
        let mut c = Cur { toks: st, pos: 1, next: stmts.get(k + 1).map(|n| n[0]) };
        let head = st[0];
        let word = if head.kind == Kind::Word { head.text } else { "" };
        match word {
            "model" if k == 0 => p.g.name = c.name("the model's name")?.0,
            "model" => return Err(head.err("`model` given twice (expected one `model` line, first)".into())),
            "input" => p.input(&mut c)?,
            "output" => loop {
                let (name, tok) = c.name("an output value name")?;
                outputs.push((name, tok));
                if c.eat(',').is_none() {
                    break;
                }
            },
            op if OPS.contains(&op) => p.layer(head, &mut c)?,
            _ => {
                let hint = if word.starts_with(|c: char| c.is_alphabetic()) {
                    ""
                } else {
                    "; lines that continue a statement must be indented"
                };
                return Err(head.err(format!(
                    "unknown op {} (expected model, input, output or an op: {}{hint})",
                    found(&head),
                    OPS.join(", ")
                )));
            }
        }
        if let Some(t) = c.peek() {
            let what = match word {
                "output" => "`,` or the end of the statement",
                "model" => "the end of the statement",
                _ => "an attribute or the end of the statement",
            };
            return Err(t.err(format!("expected {what}, found {}", found(&t))));
        }
    }
    for (name, tok) in outputs {
        let id = p.lookup(&name, tok)?;
        p.g.outputs.push(id);
    }
    if let Err(e) = p.g.validate() {
        let (line, column) = p.nodes.get(&e.node).copied().unwrap_or((1, 1));
        return Err(TextError { line, column, message: format!("`{}` layer `{}`: {}", e.op, e.node, e.why) });
    }
    Ok(p.g)
}

/// Decodes a `.npy` file holding int8, int32 or float32 data (either byte
/// order, C or Fortran order) with [`crate::npy::decode`].
pub fn load_npy(bytes: &[u8]) -> Result<NpyArray, String> {
    use crate::npy::Elem;
    let a = crate::npy::decode(bytes)?;
    let shape: Vec<usize> = a.shape.iter().map(|&d| d as usize).collect();
    let words = |n: usize| a.data.chunks_exact(n);
    let data = match a.elem {
        Elem::I8 => NpyData::I8(a.data.iter().map(|&b| b as i8).collect()),
        Elem::I32 => NpyData::I32(words(4).map(|w| i32::from_le_bytes(w.try_into().expect("4 bytes"))).collect()),
        Elem::F32 => NpyData::F32(words(4).map(|w| f32::from_le_bytes(w.try_into().expect("4 bytes"))).collect()),
        other => return Err(format!("unsupported dtype {} (expected int8, int32 or float32)", other.name())),
    };
    Ok(NpyArray { shape, data })
}

// ---------------------------------------------------------------------------
// Printing

/// Writes a graph as text, tensors inline (see the module docs).
pub fn print(g: &Graph) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "model {}", quote(&g.name));
    let mut inputs = g.inputs.iter().peekable();
    let mut last = "";
    let mut section = |s: &mut String, kind: &'static str| {
        if last != kind {
            s.push('\n');
            last = kind;
        }
    };
    for n in &g.nodes {
        let Some(&out) = n.outputs.first() else { continue };
        while let Some(&&i) = inputs.peek() {
            if i >= out {
                break;
            }
            section(&mut s, "input");
            print_input(&mut s, g, i);
            inputs.next();
        }
        section(&mut s, "layer");
        print_node(&mut s, g, n);
    }
    for &i in inputs {
        section(&mut s, "input");
        print_input(&mut s, g, i);
    }
    if !g.outputs.is_empty() {
        let names: Vec<String> = g.outputs.iter().map(|&o| value_name(g, o)).collect();
        let _ = writeln!(s, "\noutput {}", names.join(", "));
    }
    s
}

fn value_name(g: &Graph, id: ValueId) -> String {
    g.values.get(id).map_or_else(|| format!("\"?{id}\""), |v| quote(&v.name))
}

fn print_input(s: &mut String, g: &Graph, id: ValueId) {
    if let Some(v) = g.values.get(id) {
        let _ = writeln!(s, "input {}", value_decl(v));
    }
}

fn value_decl(v: &Value) -> String {
    let mut s = format!("{}: {}{}", quote(&v.name), v.ty.name(), dims(&v.shape));
    if let (Some(q), true) = (v.quant, v.ty != ElemType::F32) {
        let _ = write!(s, " scale={} zp={}", fmt_f32(q.scale), q.zero_point);
    }
    s
}

fn print_node(s: &mut String, g: &Graph, n: &Node) {
    let ins: Vec<String> = n.inputs.iter().map(|&i| value_name(g, i)).collect();
    let Some(y) = g.values.get(n.outputs[0]) else { return };
    let _ = write!(s, "{} {} {} -> {}", n.op.name(), quote(&n.name), ins.join(", "), value_decl(y));
    let clamp = |s: &mut String, qmin: i32, qmax: i32| {
        let zp = y.quant.map_or(0, |q| q.zero_point);
        match y.ty.range() {
            Some((lo, hi)) if (qmin, qmax) == (lo, hi) => {}
            Some((_, hi)) if (qmin, qmax) == (zp, hi) => s.push_str(" relu"),
            _ => {
                let _ = write!(s, " clamp=({qmin}, {qmax})");
            }
        }
    };
    match &n.op {
        Op::Quantize | Op::Dequantize => {}
        Op::Conv(c) => {
            if c.strides != [1, 1] {
                let _ = write!(s, " strides={}", pair_text(c.strides));
            }
            if c.pads != [0; 4] {
                let _ = write!(s, " pads={}", pads_text(c.pads));
            }
            if c.dilations != [1, 1] {
                let _ = write!(s, " dilations={}", pair_text(c.dilations));
            }
            if c.groups != 1 {
                let _ = write!(s, " groups={}", c.groups);
            }
            clamp(s, c.qmin, c.qmax);
            int4(s, c.w_type);
            print_tensors(s, &c.w_shape, &c.weights, &c.w_scale, &c.bias);
            return;
        }
        Op::Dense(d) => {
            clamp(s, d.qmin, d.qmax);
            int4(s, d.w_type);
            print_tensors(s, &[d.n, d.k], &d.weights, &d.w_scale, &d.bias);
            return;
        }
        Op::MaxPool(p) | Op::AvgPool(p) => {
            let _ = write!(s, " kernel={} strides={}", pair_text(p.kernel), pair_text(p.strides));
            if p.pads != [0; 4] {
                let _ = write!(s, " pads={}", pads_text(p.pads));
            }
            if p.count_include_pad {
                s.push_str(" count_include_pad");
            }
        }
        Op::Add { qmin, qmax } | Op::Clamp { qmin, qmax } => clamp(s, *qmin, *qmax),
        Op::Flatten { axis } | Op::Concat { axis } => {
            let _ = write!(s, " axis={axis}");
        }
        Op::Reshape { shape } => {
            if *shape != y.shape {
                let _ = write!(s, " shape={}", dims(shape));
            }
        }
        Op::Transpose { perm } => {
            let p: Vec<String> = perm.iter().map(|p| p.to_string()).collect();
            let _ = write!(s, " perm=({})", p.join(", "));
        }
        Op::Resize { rows, cols } => {
            let list = |v: &[usize]| v.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ");
            let _ = write!(s, " rows=[{}] cols=[{}]", list(rows), list(cols));
        }
        Op::ResizeLinear(r) => {
            let _ = write!(
                s,
                " mode={} scales=({}, {}) size={} round={}",
                r.mode.name(),
                fmt_f32(r.scales[0]),
                fmt_f32(r.scales[1]),
                pair_text(r.out),
                r.rounding.name()
            );
        }
        Op::Lut(f) => match *f {
            UnaryFn::HardSigmoid { alpha, beta } => {
                let _ = write!(s, " alpha={} beta={}", fmt_f32(alpha), fmt_f32(beta));
            }
            UnaryFn::LeakyRelu { alpha } => {
                let _ = write!(s, " alpha={}", fmt_f32(alpha));
            }
            UnaryFn::Clip { min, max } => {
                if min != f32::NEG_INFINITY {
                    let _ = write!(s, " min={}", fmt_f32(min));
                }
                if max != f32::INFINITY {
                    let _ = write!(s, " max={}", fmt_f32(max));
                }
            }
            _ => {}
        },
        // The transformer ops have no text syntax yet: shown for people,
        // not parsed back.
        Op::Constant { data, .. } => {
            let _ = write!(s, " # {} floats", data.len());
        }
        Op::MaskSelect { index, .. } => {
            let _ = write!(s, " # {} elements", index.len());
        }
        Op::Embedding(e) => {
            let _ = write!(s, " # table {}x{}", e.rows, e.cols);
        }
        Op::DenseF32(d) => {
            let _ = write!(s, " # {}x{}", d.n, d.k);
        }
        Op::LayerNorm { eps, .. } => {
            let _ = write!(s, " eps={}", fmt_f32(*eps));
        }
        Op::ReduceSum { axis, keepdims } => {
            let _ = write!(s, " axis={axis} keepdims={keepdims}");
        }
        Op::Slice { axis, start, end } => {
            let _ = write!(s, " axis={axis} start={start} end={end}");
        }
        Op::MatMul | Op::Binary(_) | Op::Unary(_) | Op::Gelu(_) | Op::Softmax => {}
    }
    s.push('\n');
}

/// A conv or dense layer's weight type: int4 with the `int4` flag.
fn weight_type(attrs: &Attrs<'_>) -> WeightType {
    if attrs.get("int4").is_some() {
        WeightType::I4
    } else {
        WeightType::I8
    }
}

/// The `int4` flag of a layer whose weights are int4.
fn int4(s: &mut String, w_type: WeightType) {
    if w_type == WeightType::I4 {
        s.push_str(" int4");
    }
}

/// The tensor lines of a conv or dense layer (ending the statement).
fn print_tensors(s: &mut String, shape: &[usize], weights: &[i8], w_scale: &[f32], bias: &[i32]) {
    let n = shape[0];
    let _ = write!(s, "\n    weights: i8{} = ", dims(shape));
    let row = if n > 0 && weights.len().is_multiple_of(n) { (weights.len() / n).max(1) } else { 16 };
    list(s, weights, row, 16, |v| v.to_string());
    if w_scale.len() == n && n > 0 && w_scale.iter().all(|&w| w.to_bits() == w_scale[0].to_bits()) {
        let _ = write!(s, "\n    w_scale = {}", fmt_f32(w_scale[0]));
    } else {
        s.push_str("\n    w_scale = ");
        list(s, w_scale, 8, 8, |v| fmt_f32(*v));
    }
    if !(bias.len() == n && bias.iter().all(|&b| b == 0)) {
        s.push_str("\n    bias = ");
        list(s, bias, 8, 8, |v| v.to_string());
    }
    s.push('\n');
}

/// A `[..]` list: on one line when short, else rows of `row` items split
/// into lines of at most `per_line`, indented to continue the statement.
fn list<T>(s: &mut String, items: &[T], row: usize, per_line: usize, f: impl Fn(&T) -> String) {
    let text: Vec<String> = items.iter().map(f).collect();
    if items.len() <= per_line {
        let _ = write!(s, "[{}]", text.join(", "));
        return;
    }
    s.push('[');
    for r in text.chunks(row) {
        for line in r.chunks(per_line) {
            let _ = write!(s, "\n        {},", line.join(", "));
        }
    }
    s.push_str("\n    ]");
}

fn dims(shape: &[usize]) -> String {
    let d: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", d.join(", "))
}

fn pair_text(p: [usize; 2]) -> String {
    if p[0] == p[1] {
        p[0].to_string()
    } else {
        format!("({}, {})", p[0], p[1])
    }
}

fn pads_text(p: [usize; 4]) -> String {
    if p.iter().all(|&x| x == p[0]) {
        p[0].to_string()
    } else if p[0] == p[2] && p[1] == p[3] {
        format!("({}, {})", p[0], p[1])
    } else {
        format!("({}, {}, {}, {})", p[0], p[1], p[2], p[3])
    }
}

/// The shortest decimal that reads back to the same f32.
fn fmt_f32(x: f32) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{x:?}")
    }
}

/// A name as a bare word when it is one, else as a quoted string.
fn quote(name: &str) -> String {
    let bare = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "_./-".contains(c));
    if bare {
        return name.to_string();
    }
    let mut s = String::from("\"");
    for c in name.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            '\r' => s.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(s, "\\u{{{:x}}}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

// ---------------------------------------------------------------------------
// Lexing (nom)

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A run of characters other than whitespace, punctuation, quotes and
    /// comment starts: names, keywords, numbers.
    Word,
    /// A quoted string (text includes the quotes).
    Str,
    Arrow,
    Punct(char),
}

/// A token with its 1-based line and character column.
#[derive(Clone, Copy, Debug)]
struct Tok<'a> {
    kind: Kind,
    text: &'a str,
    line: usize,
    col: usize,
}

impl Tok<'_> {
    fn err(&self, message: String) -> TextError {
        TextError { line: self.line, column: self.col, message }
    }

    /// An error `chars` characters into the token.
    fn err_at(&self, chars: usize, message: String) -> TextError {
        TextError { line: self.line, column: self.col + chars, message }
    }
}

fn is_delim(c: char) -> bool {
    c.is_whitespace() || "[](),:=\"#;".contains(c)
}

fn word(i: &str) -> IResult<&str, &str> {
    recognize(many1(alt((
        recognize(satisfy(|c| !is_delim(c) && c != '-')),
        recognize(terminated(char('-'), not(char('>')))),
    ))))(i)
}

/// A quoted string with backslash escapes (checked later); a missing
/// closing quote is a failure, not a backtrack.
fn string(i: &str) -> IResult<&str, &str> {
    let (mut rest, _) = char('"')(i)?;
    loop {
        let mut chars = rest.chars();
        match chars.next() {
            None => return Err(nom::Err::Failure(nom::error::Error::new(i, nom::error::ErrorKind::Char))),
            Some('"') => {
                rest = chars.as_str();
                break;
            }
            Some('\\') => {
                chars.next();
                rest = chars.as_str();
            }
            Some(_) => rest = chars.as_str(),
        }
    }
    Ok((rest, &i[..i.len() - rest.len()]))
}

fn token(i: &str) -> IResult<&str, Kind> {
    alt((
        value(Kind::Arrow, tag("->")),
        map(one_of("[](),:="), Kind::Punct),
        value(Kind::Str, string),
        value(Kind::Word, word),
    ))(i)
}

/// Appends the tokens of one line (up to a comment).
fn lex_line<'a>(line: &'a str, lineno: usize, out: &mut Vec<Tok<'a>>) -> Result<(), TextError> {
    let mut rest = line;
    let mut col = 1;
    loop {
        let trimmed = rest.trim_start_matches(char::is_whitespace);
        col += rest[..rest.len() - trimmed.len()].chars().count();
        rest = trimmed;
        if rest.is_empty() || rest.starts_with(['#', ';']) {
            return Ok(());
        }
        match token(rest) {
            Ok((r, kind)) => {
                let text = &rest[..rest.len() - r.len()];
                out.push(Tok { kind, text, line: lineno, col });
                col += text.chars().count();
                rest = r;
            }
            Err(_) if rest.starts_with('"') => {
                return Err(TextError {
                    line: lineno,
                    column: col,
                    message: "unterminated string (expected a closing `\"` on this line)".into(),
                })
            }
            Err(_) => {
                let c = rest.chars().next().unwrap_or(' ');
                return Err(TextError { line: lineno, column: col, message: format!("unexpected character `{c}`") });
            }
        }
    }
}

/// Splits the text into statements: a line starting in column 1 begins
/// one, indented lines continue it. Each statement has at least one token.
fn statements(text: &str) -> Result<Vec<Vec<Tok<'_>>>, TextError> {
    let mut stmts: Vec<Vec<Tok<'_>>> = Vec::new();
    let mut toks = Vec::new();
    for (k, line) in text.lines().enumerate() {
        toks.clear();
        lex_line(line, k + 1, &mut toks)?;
        let Some(first) = toks.first() else { continue };
        if first.col == 1 {
            stmts.push(toks.clone());
        } else if let Some(st) = stmts.last_mut() {
            st.extend_from_slice(&toks);
        } else {
            return Err(first.err(format!(
                "expected a statement starting in column 1, found {} on an indented line (indented lines continue the statement above)",
                found(first)
            )));
        }
    }
    Ok(stmts)
}

/// What was found, for messages.
fn found(t: &Tok<'_>) -> String {
    format!("`{}`", t.text)
}

/// The text of a quoted string, escapes resolved.
fn unescape(t: &Tok<'_>) -> Result<String, TextError> {
    let body = &t.text[1..t.text.len() - 1];
    let mut out = String::new();
    let mut it = body.char_indices().peekable();
    while let Some((k, c)) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let bad = || {
            t.err_at(
                1 + body[..k].chars().count(),
                "unknown escape (expected \\\\, \\\", \\n, \\t, \\r or \\u{HEX})".into(),
            )
        };
        match it.next().map(|(_, c)| c) {
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('u') => {
                if it.next().map(|(_, c)| c) != Some('{') {
                    return Err(bad());
                }
                let mut hex = String::new();
                loop {
                    match it.next().map(|(_, c)| c) {
                        Some('}') => break,
                        Some(c) if c.is_ascii_hexdigit() && hex.len() < 6 => hex.push(c),
                        _ => return Err(bad()),
                    }
                }
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(c) => out.push(c),
                    None => return Err(bad()),
                }
            }
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Numbers

/// Limit on dimensions, strides, pads and the like.
const MAX_DIM: usize = i32::MAX as usize;
/// Limit on the element count of a value.
const MAX_ELEMENTS: usize = 1 << 40;

fn int_lit(i: &str) -> IResult<&str, (Option<char>, u32, &str)> {
    tuple((
        opt(one_of("+-")),
        alt((map(preceded(tag_no_case("0x"), hex_digit1), |d| (16, d)), map(digit1, |d| (10, d)))),
    ))(i)
    .map(|(r, (s, (radix, d)))| (r, (s, radix, d)))
}

/// An integer in `lo..=hi`; `what` names it in messages.
fn int(t: &Tok<'_>, lo: i64, hi: i64, what: &str) -> Result<i64, TextError> {
    let Ok((_, (sign, radix, digits))) = all_consuming(int_lit)(t.text) else {
        return Err(t.err(format!("expected {what} (an integer), found {}", found(t))));
    };
    let range = || t.err(format!("expected {what} in {lo}..={hi}, found {}", t.text));
    let mut mag: i128 = 0;
    for c in digits.chars() {
        let d = c.to_digit(radix).ok_or_else(range)?;
        mag = mag.checked_mul(radix as i128).and_then(|m| m.checked_add(d as i128)).ok_or_else(range)?;
    }
    let v = if sign == Some('-') { -mag } else { mag };
    if v < lo as i128 || v > hi as i128 {
        return Err(range());
    }
    Ok(v as i64)
}

fn uint(t: &Tok<'_>, lo: usize, what: &str) -> Result<usize, TextError> {
    int(t, lo as i64, MAX_DIM as i64, what).map(|v| v as usize)
}

fn dec_float(i: &str) -> IResult<&str, &str> {
    recognize(pair(
        alt((recognize(pair(digit1, opt(pair(char('.'), digit0)))), recognize(pair(char('.'), digit1)))),
        opt(tuple((one_of("eE"), opt(one_of("+-")), digit1))),
    ))(i)
}

type HexFloat<'a> = (&'a str, Option<&'a str>, (Option<char>, &'a str));

fn hex_float(i: &str) -> IResult<&str, HexFloat<'_>> {
    preceded(
        tag_no_case("0x"),
        tuple((
            hex_digit0,
            opt(preceded(char('.'), hex_digit0)),
            preceded(one_of("pP"), pair(opt(one_of("+-")), digit1)),
        )),
    )(i)
}

/// The exact value of a hex float, None if it is not an f32.
fn hex_to_f32(int: &str, frac: &str, exp: i64) -> Option<f32> {
    let mut digits = format!("{int}{frac}");
    let mut e2 = exp.checked_sub(4 * frac.len() as i64)?;
    while digits.ends_with('0') {
        digits.pop();
        e2 = e2.checked_add(4)?;
    }
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Some(0.0);
    }
    if digits.len() > 8 {
        return None;
    }
    let mut m = u64::from_str_radix(digits, 16).ok()?;
    e2 += m.trailing_zeros() as i64;
    m >>= m.trailing_zeros();
    let bits = 64 - m.leading_zeros() as i64;
    if bits > 24 || e2 < -149 || e2 + bits - 1 > 127 {
        return None;
    }
    Some((m as f64 * f64::from_bits(((e2 + 1023) as u64) << 52)) as f32)
}

/// A float: decimal (rounded to nearest), hex (exact), `inf` or `nan`.
fn float(t: &Tok<'_>, what: &str) -> Result<f32, TextError> {
    let (neg, body) = match t.text.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t.text.strip_prefix('+').unwrap_or(t.text)),
    };
    let v = if body == "inf" {
        f32::INFINITY
    } else if body == "nan" {
        f32::NAN
    } else if let Ok((_, (int, frac, (esign, exp)))) = all_consuming(hex_float)(body) {
        let frac = frac.unwrap_or("");
        if int.is_empty() && frac.is_empty() {
            return Err(t.err(format!("expected {what} (a float), found {}", found(t))));
        }
        let exp = exp.parse::<i64>().ok().map(|e| if esign == Some('-') { -e } else { e });
        match exp.and_then(|e| hex_to_f32(int, frac, e)) {
            Some(v) => v,
            None => return Err(t.err(format!("hex float {} is not exactly representable as an f32", t.text))),
        }
    } else if all_consuming(dec_float)(body).is_ok() {
        match body.parse::<f32>() {
            Ok(v) if v.is_finite() => v,
            _ => return Err(t.err(format!("expected {what} in the f32 range, found {}", t.text))),
        }
    } else {
        return Err(t.err(format!("expected {what} (a float such as 0.0125, 1e-3 or 0x1.8p-7), found {}", found(t))));
    };
    Ok(if neg { -v } else { v })
}

/// A positive, finite scale.
fn scale(t: &Tok<'_>, what: &str) -> Result<f32, TextError> {
    let v = float(t, what)?;
    if !(v.is_finite() && v > 0.0) {
        return Err(t.err(format!("expected {what} that is positive and finite, found {}", t.text)));
    }
    Ok(v)
}

// ---------------------------------------------------------------------------
// Parsing

const OPS: [&str; 21] = [
    "quantize",
    "dequantize",
    "conv",
    "dense",
    "maxpool",
    "avgpool",
    "add",
    "clamp",
    "flatten",
    "reshape",
    "transpose",
    "concat",
    "requantize",
    "sigmoid",
    "tanh",
    "hardsigmoid",
    "hardswish",
    "leakyrelu",
    "clip",
    "resize",
    "resize_linear",
];

/// The attributes a statement takes (`input` or an op).
fn allowed_attrs(op: &str) -> &'static [&'static str] {
    match op {
        "conv" => &[
            "scale",
            "zp",
            "weights",
            "w_scale",
            "bias",
            "strides",
            "pads",
            "dilations",
            "groups",
            "relu",
            "clamp",
            "int4",
        ],
        "dense" => &["scale", "zp", "weights", "w_scale", "bias", "relu", "clamp", "int4"],
        "maxpool" | "avgpool" => &["scale", "zp", "kernel", "strides", "pads", "count_include_pad"],
        "add" | "clamp" => &["scale", "zp", "relu", "clamp"],
        "flatten" | "concat" => &["scale", "zp", "axis"],
        "reshape" => &["scale", "zp", "shape"],
        "transpose" => &["scale", "zp", "perm"],
        "hardsigmoid" => &["scale", "zp", "alpha", "beta"],
        "leakyrelu" => &["scale", "zp", "alpha"],
        "clip" => &["scale", "zp", "min", "max"],
        "resize" => &["scale", "zp", "rows", "cols"],
        "resize_linear" => &["scale", "zp", "mode", "scales", "size", "round"],
        _ => &["scale", "zp"],
    }
}

const FLAGS: [&str; 3] = ["relu", "count_include_pad", "int4"];
const TENSORS: [&str; 3] = ["weights", "w_scale", "bias"];

/// Tokens of one statement.
struct Cur<'t, 'a> {
    toks: &'t [Tok<'a>],
    pos: usize,
    /// The first token of the next statement, for hints.
    next: Option<Tok<'a>>,
}

impl<'a> Cur<'_, 'a> {
    fn peek(&self) -> Option<Tok<'a>> {
        self.toks.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<Tok<'a>> {
        let t = self.peek();
        self.pos += t.is_some() as usize;
        t
    }

    fn eat(&mut self, c: char) -> Option<Tok<'a>> {
        match self.peek() {
            Some(t) if t.kind == Kind::Punct(c) => self.bump(),
            _ => None,
        }
    }

    /// "expected `what`" at the next token, or after the last one.
    fn expected(&self, what: &str) -> TextError {
        match self.peek() {
            Some(t) => t.err(format!("expected {what}, found {}", found(&t))),
            None => {
                let t = self.toks[self.toks.len() - 1];
                let hint = match self.next {
                    Some(n)
                        if !(n.kind == Kind::Word
                            && (["model", "input", "output"].contains(&n.text) || OPS.contains(&n.text))) =>
                    {
                        format!(
                        " (line {} starts in column 1, so it begins a new statement; indent it to continue this one)",
                        n.line
                    )
                    }
                    _ => String::new(),
                };
                t.err_at(t.text.chars().count(), format!("expected {what}, found the end of the statement{hint}"))
            }
        }
    }

    fn expect(&mut self, c: char, what: &str) -> Result<Tok<'a>, TextError> {
        self.eat(c).ok_or_else(|| self.expected(what))
    }

    /// A bare or quoted name.
    fn name(&mut self, what: &str) -> Result<(String, Tok<'a>), TextError> {
        match self.peek() {
            Some(t) if t.kind == Kind::Word => {
                self.pos += 1;
                Ok((t.text.to_string(), t))
            }
            Some(t) if t.kind == Kind::Str => {
                self.pos += 1;
                Ok((unescape(&t)?, t))
            }
            _ => Err(self.expected(what)),
        }
    }

    fn elem_type(&mut self) -> Result<(ElemType, Tok<'a>), TextError> {
        let ty = match self.peek() {
            Some(t) if t.kind == Kind::Word => match t.text {
                "i8" => Some(ElemType::I8),
                "u8" => Some(ElemType::U8),
                "f32" => Some(ElemType::F32),
                _ => None,
            },
            _ => None,
        };
        match (ty, self.peek()) {
            (Some(ty), Some(t)) => {
                self.pos += 1;
                Ok((ty, t))
            }
            _ => Err(self.expected("an element type (i8, u8 or f32)")),
        }
    }

    /// `[..]` or `(..)` of words: the opening token and the items.
    fn seq(&mut self) -> Result<(Tok<'a>, Vec<Tok<'a>>), TextError> {
        let open = match self.peek() {
            Some(t) if matches!(t.kind, Kind::Punct('[') | Kind::Punct('(')) => t,
            _ => return Err(self.expected("`[` or `(`")),
        };
        self.pos += 1;
        let close = if open.kind == Kind::Punct('[') { ']' } else { ')' };
        let mut items = Vec::new();
        loop {
            if self.eat(close).is_some() {
                return Ok((open, items));
            }
            match self.peek() {
                Some(t) if t.kind == Kind::Word => items.push(t),
                _ => return Err(self.expected(&format!("a number or `{close}`"))),
            }
            self.pos += 1;
            if self.eat(',').is_some() {
                continue;
            }
            if self.eat(close).is_some() {
                return Ok((open, items));
            }
            return Err(self.expected(&format!("`,` or `{close}`")));
        }
    }

    /// `[d, ..]`, each dimension positive, the element count bounded.
    fn shape(&mut self) -> Result<(Vec<usize>, Tok<'a>), TextError> {
        if !matches!(self.peek(), Some(t) if t.kind == Kind::Punct('[')) {
            return Err(self.expected("a shape `[d0, d1, ..]`"));
        }
        let (open, items) = self.seq()?;
        let shape = items.iter().map(|t| uint(t, 1, "a dimension")).collect::<Result<Vec<_>, _>>()?;
        check_elements(&shape, &open)?;
        Ok((shape, open))
    }

    /// One attribute.
    fn attr(&mut self, allowed: &[&str], op: &str) -> Result<Attr<'a>, TextError> {
        let key = match self.peek() {
            Some(t) if t.kind == Kind::Word => t,
            _ => return Err(self.expected("an attribute (`key=value` or a flag)")),
        };
        if !allowed.contains(&key.text) {
            return Err(key.err(format!(
                "unknown attribute {} for `{op}` (expected {})",
                found(&key),
                allowed.join(", ")
            )));
        }
        self.pos += 1;
        if FLAGS.contains(&key.text) {
            if let Some(t) = self.eat('=').or_else(|| self.eat(':')) {
                return Err(t.err(format!("`{}` is a flag and takes no value", key.text)));
            }
            return Ok(Attr { key, decl: None, val: AVal::Flag });
        }
        let mut decl = None;
        if let Some(colon) = self.eat(':') {
            if !TENSORS.contains(&key.text) {
                return Err(colon.err(format!(
                    "expected `=` after `{}` (only weights, w_scale and bias take a type and shape)",
                    key.text
                )));
            }
            let ty = match self.peek() {
                Some(t) if t.kind == Kind::Word && t.text == "i32" => {
                    self.pos += 1;
                    (None, t)
                }
                _ => {
                    let (ty, t) = self.elem_type().map_err(|_| self.expected("an element type (i8, i32 or f32)"))?;
                    (Some(ty), t)
                }
            };
            let (shape, shape_tok) = self.shape()?;
            decl = Some(Decl { ty: ty.0, ty_tok: ty.1, shape, shape_tok });
        }
        self.expect('=', &format!("`=` after `{}`", key.text))?;
        let val = match self.peek() {
            Some(t)
                if t.kind == Kind::Word
                    && t.text == "file"
                    && self.toks.get(self.pos + 1).map(|n| n.kind) == Some(Kind::Punct('(')) =>
            {
                self.pos += 2;
                let path = match self.peek() {
                    Some(p) if p.kind == Kind::Str => {
                        self.pos += 1;
                        unescape(&p)?
                    }
                    _ => return Err(self.expected("a quoted path")),
                };
                self.expect(')', "`)`")?;
                AVal::File { tok: t, path }
            }
            Some(t) if t.kind == Kind::Word => {
                self.pos += 1;
                AVal::Scalar(t)
            }
            Some(t) if matches!(t.kind, Kind::Punct('[') | Kind::Punct('(')) => {
                let (open, items) = self.seq()?;
                AVal::Seq(open, items)
            }
            _ => return Err(self.expected(&format!("a value for `{}` (a number, a list or file(\"PATH\"))", key.text))),
        };
        Ok(Attr { key, decl, val })
    }

    /// Attributes up to the end of the statement.
    fn attrs(&mut self, op: Tok<'a>) -> Result<Attrs<'a>, TextError> {
        let kind = op.text;
        let allowed = allowed_attrs(kind);
        let mut list: Vec<Attr<'a>> = Vec::new();
        while self.peek().is_some() {
            let a = self.attr(allowed, kind)?;
            if let Some(prev) = list.iter().find(|p| p.key.text == a.key.text) {
                return Err(a.key.err(format!(
                    "attribute `{}` given twice (first at line {}, column {})",
                    a.key.text, prev.key.line, prev.key.col
                )));
            }
            list.push(a);
        }
        Ok(Attrs { list, op })
    }
}

fn check_elements(shape: &[usize], at: &Tok<'_>) -> Result<(), TextError> {
    match shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d).filter(|&n| n <= MAX_ELEMENTS)) {
        Some(_) => Ok(()),
        None => Err(at.err(format!("shape {shape:?} has more than {MAX_ELEMENTS} elements"))),
    }
}

/// `: TYPE SHAPE` written before a tensor's value.
struct Decl<'a> {
    /// None for i32.
    ty: Option<ElemType>,
    ty_tok: Tok<'a>,
    shape: Vec<usize>,
    shape_tok: Tok<'a>,
}

enum AVal<'a> {
    Flag,
    Scalar(Tok<'a>),
    Seq(Tok<'a>, Vec<Tok<'a>>),
    File { tok: Tok<'a>, path: String },
}

struct Attr<'a> {
    key: Tok<'a>,
    decl: Option<Decl<'a>>,
    val: AVal<'a>,
}

impl<'a> Attr<'a> {
    /// Where the value starts, for messages.
    fn val_tok(&self) -> Tok<'a> {
        match &self.val {
            AVal::Flag => self.key,
            AVal::Scalar(t) | AVal::Seq(t, _) | AVal::File { tok: t, .. } => *t,
        }
    }

    fn scalar(&self, what: &str) -> Result<Tok<'a>, TextError> {
        match &self.val {
            AVal::Scalar(t) => Ok(*t),
            _ => Err(self.val_tok().err(format!(
                "expected {what} for `{}`, found {}",
                self.key.text,
                found(&self.val_tok())
            ))),
        }
    }

    fn ints(&self, what: &str) -> Result<Vec<Tok<'a>>, TextError> {
        match &self.val {
            AVal::Scalar(t) => Ok(vec![*t]),
            AVal::Seq(_, items) => Ok(items.clone()),
            _ => Err(self.val_tok().err(format!("expected {what} for `{}`", self.key.text))),
        }
    }

    /// `N` or `(H, W)`.
    fn pair(&self, lo: usize) -> Result<[usize; 2], TextError> {
        let key = self.key.text;
        let items = self.ints(&format!("`{key}=N` or `{key}=(H, W)`"))?;
        let v = items.iter().map(|t| uint(t, lo, &format!("a `{key}` entry"))).collect::<Result<Vec<_>, _>>()?;
        match v[..] {
            [a] => Ok([a, a]),
            [h, w] => Ok([h, w]),
            _ => Err(self.val_tok().err(format!("expected `{key}=N` or `{key}=(H, W)`, found {} values", v.len()))),
        }
    }

    /// `P`, `(H, W)` or `(TOP, LEFT, BOTTOM, RIGHT)`.
    fn pads(&self) -> Result<[usize; 4], TextError> {
        let expect = "`pads=P`, `pads=(H, W)` or `pads=(TOP, LEFT, BOTTOM, RIGHT)`";
        let v = self.ints(expect)?.iter().map(|t| uint(t, 0, "a pad")).collect::<Result<Vec<_>, _>>()?;
        match v[..] {
            [p] => Ok([p; 4]),
            [h, w] => Ok([h, w, h, w]),
            [t, l, b, r] => Ok([t, l, b, r]),
            _ => Err(self.val_tok().err(format!("expected {expect}, found {} values", v.len()))),
        }
    }
}

struct Attrs<'a> {
    list: Vec<Attr<'a>>,
    op: Tok<'a>,
}

impl<'a> Attrs<'a> {
    fn get(&self, key: &str) -> Option<&Attr<'a>> {
        self.list.iter().find(|a| a.key.text == key)
    }

    fn require(&self, key: &str, layer: &str, form: &str) -> Result<&Attr<'a>, TextError> {
        self.get(key).ok_or_else(|| {
            self.op.err(format!("`{}` layer `{layer}` is missing attribute `{key}` (expected `{form}`)", self.op.text))
        })
    }
}

/// Element types of tensor attributes.
trait Elem: Copy {
    /// The declared type, as written.
    const TYPE: &'static str;
    fn declared(ty: Option<ElemType>) -> bool;
    fn from_tok(t: &Tok<'_>, what: &str) -> Result<Self, TextError>;
    fn from_npy(d: NpyData) -> Option<Vec<Self>>;
}

impl Elem for i8 {
    const TYPE: &'static str = "i8";
    fn declared(ty: Option<ElemType>) -> bool {
        ty == Some(ElemType::I8)
    }
    fn from_tok(t: &Tok<'_>, what: &str) -> Result<i8, TextError> {
        int(t, -128, 127, what).map(|v| v as i8)
    }
    fn from_npy(d: NpyData) -> Option<Vec<i8>> {
        match d {
            NpyData::I8(v) => Some(v),
            _ => None,
        }
    }
}

impl Elem for i32 {
    const TYPE: &'static str = "i32";
    fn declared(ty: Option<ElemType>) -> bool {
        ty.is_none()
    }
    fn from_tok(t: &Tok<'_>, what: &str) -> Result<i32, TextError> {
        int(t, i32::MIN as i64, i32::MAX as i64, what).map(|v| v as i32)
    }
    fn from_npy(d: NpyData) -> Option<Vec<i32>> {
        match d {
            NpyData::I32(v) => Some(v),
            _ => None,
        }
    }
}

impl Elem for f32 {
    const TYPE: &'static str = "f32";
    fn declared(ty: Option<ElemType>) -> bool {
        ty == Some(ElemType::F32)
    }
    fn from_tok(t: &Tok<'_>, what: &str) -> Result<f32, TextError> {
        scale(t, what)
    }
    fn from_npy(d: NpyData) -> Option<Vec<f32>> {
        match d {
            NpyData::F32(v) => Some(v),
            _ => None,
        }
    }
}

/// A tensor attribute's contents.
enum Tensor<T> {
    /// A single number, for every channel.
    Scalar(T),
    /// A list or a file: the shape if declared or loaded, and the data.
    Array(Option<Vec<usize>>, Vec<T>),
}

struct Parser<'l> {
    g: Graph,
    /// Value name -> id and the line defining it.
    values: HashMap<String, (ValueId, usize)>,
    /// Layer name -> line and column of its statement.
    nodes: HashMap<String, (usize, usize)>,
    load: &'l mut dyn FnMut(&str) -> Result<NpyArray, String>,
}

impl Parser<'_> {
    fn lookup(&self, name: &str, tok: Tok<'_>) -> Result<ValueId, TextError> {
        self.values.get(name).map(|&(id, _)| id).ok_or_else(|| {
            tok.err(format!(
                "undefined value `{name}` (expected a value defined earlier by `input` or as a layer's output)"
            ))
        })
    }

    fn define(&mut self, v: Value, tok: Tok<'_>) -> Result<ValueId, TextError> {
        if let Some(&(_, line)) = self.values.get(&v.name) {
            return Err(tok.err(format!("value `{}` is already defined (on line {line})", v.name)));
        }
        let name = v.name.clone();
        let id = self.g.add_value(v);
        self.values.insert(name, (id, tok.line));
        Ok(id)
    }

    /// `input NAME: TYPE SHAPE [scale=.. zp=..]`
    fn input(&mut self, c: &mut Cur<'_, '_>) -> Result<(), TextError> {
        let head = c.toks[0];
        let (name, tok) = c.name("the input's name")?;
        c.expect(':', "`:` and the input's type and shape (`x: i8[1, 16]`)")?;
        let (ty, _) = c.elem_type()?;
        let (shape, _) = c.shape()?;
        let attrs = c.attrs(head)?;
        let quant = self.quant(&attrs, ty, None, &name)?;
        let id = self.define(Value { name, shape, ty, quant }, tok)?;
        self.g.inputs.push(id);
        Ok(())
    }

    /// The output's quantization from `scale` and `zp`, or passed through
    /// from `from` (the first input) when both are left out.
    fn quant(
        &self,
        attrs: &Attrs<'_>,
        ty: ElemType,
        from: Option<&Value>,
        name: &str,
    ) -> Result<Option<Quant>, TextError> {
        let (s, zp) = (attrs.get("scale"), attrs.get("zp"));
        if ty == ElemType::F32 {
            if let Some(a) = s.or(zp) {
                return Err(a.key.err(format!(
                    "f32 value `{name}` takes no `{}` (only i8 and u8 values are quantized)",
                    a.key.text
                )));
            }
            return Ok(None);
        }
        let (lo, hi) = ty.range().unwrap_or((0, 0));
        let zero_point = match zp {
            Some(a) => {
                int(&a.scalar("an integer")?, lo as i64, hi as i64, &format!("an {} zero point", ty.name()))? as i32
            }
            None => 0,
        };
        match s {
            Some(a) => Ok(Some(Quant { scale: scale(&a.scalar("a float")?, "a scale")?, zero_point })),
            None => match from {
                Some(x) if zp.is_none() && x.ty == ty && x.quant.is_some() => Ok(x.quant),
                _ => Err(attrs.op.err(format!(
                    "`{}` `{name}` is missing attribute `scale` (the {} value's quantization: `scale=S zp=Z`)",
                    attrs.op.text,
                    ty.name()
                ))),
            },
        }
    }

    /// A tensor attribute, from a list, a number or a file.
    fn tensor<T: Elem>(&mut self, a: &Attr<'_>) -> Result<Tensor<T>, TextError> {
        let key = a.key.text;
        if let Some(d) = &a.decl {
            if !T::declared(d.ty) {
                return Err(d.ty_tok.err(format!(
                    "expected {} (the element type of `{key}`), found {}",
                    T::TYPE,
                    found(&d.ty_tok)
                )));
            }
        }
        let what = format!("a `{key}` value");
        let (shape, data) = match &a.val {
            AVal::Flag => return Err(a.key.err(format!("expected `{key}=..`"))),
            AVal::Scalar(t) => {
                if a.decl.is_some() {
                    return Err(t.err(format!("expected a `[..]` list of {key}, found {}", found(t))));
                }
                return Ok(Tensor::Scalar(T::from_tok(t, &what)?));
            }
            AVal::Seq(open, items) => {
                let data = items.iter().map(|t| T::from_tok(t, &what)).collect::<Result<Vec<T>, _>>()?;
                if let Some(d) = &a.decl {
                    let want: usize = d.shape.iter().product();
                    if want != data.len() {
                        return Err(open.err(format!(
                            "expected {want} values for `{key}` of shape {:?}, found {}",
                            d.shape,
                            data.len()
                        )));
                    }
                }
                (a.decl.as_ref().map(|d| d.shape.clone()), data)
            }
            AVal::File { tok, path } => {
                let arr = (self.load)(path).map_err(|e| tok.err(format!("cannot load \"{path}\": {e}")))?;
                let n = arr.data.len();
                let dtype = arr.data.dtype();
                if arr.shape.iter().try_fold(1usize, |p, &d| p.checked_mul(d)) != Some(n) {
                    return Err(
                        tok.err(format!("\"{path}\" has {n} elements, its shape {:?} says otherwise", arr.shape))
                    );
                }
                let Some(data) = T::from_npy(arr.data) else {
                    return Err(tok.err(format!("\"{path}\" holds {dtype} data, expected {} for `{key}`", T::TYPE)));
                };
                if let Some(d) = &a.decl {
                    if d.shape != arr.shape {
                        return Err(tok.err(format!("\"{path}\" has shape {:?}, declared {:?}", arr.shape, d.shape)));
                    }
                }
                (Some(arr.shape), data)
            }
        };
        Ok(Tensor::Array(shape, data))
    }

    /// Weights of `rank` dimensions, each positive, with their shape.
    fn weights(&mut self, attrs: &Attrs<'_>, layer: &str, form: &str) -> Result<(Vec<usize>, Vec<i8>), TextError> {
        let a = attrs.require("weights", layer, form)?;
        let rank = if attrs.op.text == "conv" { 4 } else { 2 };
        match self.tensor::<i8>(a)? {
            Tensor::Array(Some(shape), data) => {
                if shape.len() != rank || shape.iter().any(|&d| d == 0 || d > MAX_DIM) {
                    let at = a.decl.as_ref().map_or(a.val_tok(), |d| d.shape_tok);
                    return Err(
                        at.err(format!("expected `{form}` ({rank}-D, positive dimensions), found shape {shape:?}"))
                    );
                }
                Ok((shape, data))
            }
            _ => Err(a.val_tok().err(format!("expected `{form}` (the weights need their type and shape)"))),
        }
    }

    /// `w_scale` and `bias` for `n` output channels.
    fn channel_params(&mut self, attrs: &Attrs<'_>, layer: &str, n: usize) -> Result<(Vec<f32>, Vec<i32>), TextError> {
        let a = attrs.require("w_scale", layer, "w_scale = [S0, S1, ..] or w_scale = S")?;
        let w_scale = match self.tensor::<f32>(a)? {
            Tensor::Scalar(s) => vec![s; n],
            Tensor::Array(_, v) => v,
        };
        if w_scale.len() != n {
            return Err(a
                .val_tok()
                .err(format!("expected {n} weight scales (one per output channel), found {}", w_scale.len())));
        }
        let bias = match attrs.get("bias") {
            None => vec![0; n],
            Some(a) => match self.tensor::<i32>(a)? {
                Tensor::Array(_, v) if v.len() == n => v,
                Tensor::Array(_, v) => {
                    return Err(a
                        .val_tok()
                        .err(format!("expected {n} biases (one per output channel), found {}", v.len())))
                }
                Tensor::Scalar(_) => {
                    return Err(a
                        .val_tok()
                        .err(format!("expected a list of {n} biases `[b0, b1, ..]`, found a number")))
                }
            },
        };
        Ok((w_scale, bias))
    }

    /// `relu`, `clamp=(lo, hi)` or the type's whole range.
    fn clamp(
        &self,
        attrs: &Attrs<'_>,
        ty: ElemType,
        quant: Option<Quant>,
        out_tok: Tok<'_>,
    ) -> Result<(i32, i32), TextError> {
        let Some((lo, hi)) = ty.range() else {
            return Err(
                out_tok.err(format!("expected a quantized output (i8 or u8) for `{}`, found f32", attrs.op.text))
            );
        };
        match (attrs.get("relu"), attrs.get("clamp")) {
            (Some(_), Some(c)) => Err(c.key.err("`relu` and `clamp` exclude each other".into())),
            (Some(_), None) => Ok((quant.map_or(lo, |q| q.zero_point), hi)),
            (None, Some(c)) => {
                let form = "`clamp=(LO, HI)`";
                let items = c.ints(form)?;
                let v = items
                    .iter()
                    .map(|t| int(t, lo as i64, hi as i64, &format!("an {} clamp bound", ty.name())))
                    .collect::<Result<Vec<_>, _>>()?;
                match v[..] {
                    [a, b] if a <= b => Ok((a as i32, b as i32)),
                    [_, _] => Err(c.val_tok().err("expected `clamp=(LO, HI)` with LO <= HI".into())),
                    _ => Err(c.val_tok().err(format!("expected {form}, found {} values", v.len()))),
                }
            }
            (None, None) => Ok((lo, hi)),
        }
    }

    /// `OP NODE IN, .. -> OUT[: TYPE [SHAPE]] ATTRS`
    fn layer<'a>(&mut self, op_tok: Tok<'a>, c: &mut Cur<'_, 'a>) -> Result<(), TextError> {
        let kind = op_tok.text;
        let (layer, layer_tok) = c.name("the layer's name")?;
        if let Some(&(line, _)) = self.nodes.get(&layer) {
            return Err(layer_tok.err(format!("layer `{layer}` is already defined (on line {line})")));
        }
        let mut ins = Vec::new();
        loop {
            let (name, tok) = c.name("an input value name")?;
            ins.push(self.lookup(&name, tok)?);
            if c.eat(',').is_some() {
                continue;
            }
            if matches!(c.peek(), Some(t) if t.kind == Kind::Arrow) {
                c.pos += 1;
                break;
            }
            return Err(c.expected("`,` or `->`"));
        }
        let (out, out_tok) = c.name("the output value name")?;
        let (mut ty, mut shape) = (None, None);
        if c.eat(':').is_some() {
            ty = Some(c.elem_type()?.0);
            if matches!(c.peek(), Some(t) if t.kind == Kind::Punct('[')) {
                shape = Some(c.shape()?);
            }
        }
        let attrs = c.attrs(op_tok)?;
        let x = self.g.values[ins[0]].clone();
        let ty = match (ty, kind) {
            (Some(t), _) => t,
            (None, "dequantize") => ElemType::F32,
            (None, "quantize") => {
                return Err(
                    out_tok.err(format!("expected the output's type after `{out}` (`{out}: i8[..] scale=S zp=Z`)"))
                )
            }
            (None, _) => x.ty,
        };
        let quant = self.quant(&attrs, ty, Some(&x), &out)?;
        let op = match kind {
            "quantize" => Op::Quantize,
            "dequantize" => Op::Dequantize,
            "conv" => {
                let form = "weights: i8[M, C/groups, KH, KW] = [..]";
                let (w_shape, weights) = self.weights(&attrs, &layer, form)?;
                let (w_scale, bias) = self.channel_params(&attrs, &layer, w_shape[0])?;
                let (qmin, qmax) = self.clamp(&attrs, ty, quant, out_tok)?;
                Op::Conv(ConvParams {
                    weights,
                    w_shape: [w_shape[0], w_shape[1], w_shape[2], w_shape[3]],
                    w_scale,
                    bias,
                    strides: attrs.get("strides").map_or(Ok([1, 1]), |a| a.pair(1))?,
                    pads: attrs.get("pads").map_or(Ok([0; 4]), |a| a.pads())?,
                    dilations: attrs.get("dilations").map_or(Ok([1, 1]), |a| a.pair(1))?,
                    groups: match attrs.get("groups") {
                        Some(a) => uint(&a.scalar("an integer")?, 1, "a group count")?,
                        None => 1,
                    },
                    qmin,
                    qmax,
                    w_type: weight_type(&attrs),
                })
            }
            "dense" => {
                let (w_shape, weights) = self.weights(&attrs, &layer, "weights: i8[N, K] = [..]")?;
                let (w_scale, bias) = self.channel_params(&attrs, &layer, w_shape[0])?;
                let (qmin, qmax) = self.clamp(&attrs, ty, quant, out_tok)?;
                let w_type = weight_type(&attrs);
                Op::Dense(DenseParams { weights, n: w_shape[0], k: w_shape[1], w_scale, bias, qmin, qmax, w_type })
            }
            "maxpool" | "avgpool" => {
                let p = PoolParams {
                    kernel: attrs.require("kernel", &layer, "kernel=K or kernel=(KH, KW)")?.pair(1)?,
                    strides: attrs.get("strides").map_or(Ok([1, 1]), |a| a.pair(1))?,
                    pads: attrs.get("pads").map_or(Ok([0; 4]), |a| a.pads())?,
                    count_include_pad: attrs.get("count_include_pad").is_some(),
                };
                if kind == "maxpool" {
                    Op::MaxPool(p)
                } else {
                    Op::AvgPool(p)
                }
            }
            "add" | "clamp" => {
                let (qmin, qmax) = self.clamp(&attrs, ty, quant, out_tok)?;
                if kind == "add" {
                    Op::Add { qmin, qmax }
                } else {
                    Op::Clamp { qmin, qmax }
                }
            }
            "flatten" => Op::Flatten {
                axis: match attrs.get("axis") {
                    Some(a) => uint(&a.scalar("an integer")?, 0, "an axis")?,
                    None => 1,
                },
            },
            "requantize" | "sigmoid" | "tanh" | "hardsigmoid" | "hardswish" | "leakyrelu" | "clip" => {
                let num = |key: &str, default: f32| -> Result<f32, TextError> {
                    attrs.get(key).map_or(Ok(default), |a| float(&a.scalar("a float")?, key))
                };
                Op::Lut(match kind {
                    "requantize" => UnaryFn::Identity,
                    "sigmoid" => UnaryFn::Sigmoid,
                    "tanh" => UnaryFn::Tanh,
                    "hardsigmoid" => UnaryFn::HardSigmoid { alpha: num("alpha", 0.2)?, beta: num("beta", 0.5)? },
                    "hardswish" => UnaryFn::HardSwish,
                    "leakyrelu" => UnaryFn::LeakyRelu { alpha: num("alpha", 0.01)? },
                    _ => UnaryFn::Clip { min: num("min", f32::NEG_INFINITY)?, max: num("max", f32::INFINITY)? },
                })
            }
            "resize" => {
                let idx = |key: &str| -> Result<Vec<usize>, TextError> {
                    let a = attrs.require(key, &layer, &format!("{key}=[i0, i1, ..]"))?;
                    a.ints(&format!("`{key}=[i0, i1, ..]`"))?.iter().map(|t| uint(t, 0, "a source index")).collect()
                };
                Op::Resize { rows: idx("rows")?, cols: idx("cols")? }
            }
            "resize_linear" => {
                use crate::resize::{CoordMode, LinearRounding, LinearResize};
                let word = |key: &str, expect: &str| -> Result<(Tok<'_>, String), TextError> {
                    let t = attrs.require(key, &layer, expect)?.scalar(expect)?;
                    Ok((t, t.text.to_string()))
                };
                let (t, m) = word("mode", "mode=half_pixel|pytorch_half_pixel|align_corners|asymmetric")?;
                let mode = CoordMode::parse(&m).ok_or_else(|| t.err(format!("unknown linear resize mode {}", found(&t))))?;
                let (t, r) = word("round", "round=trunc|requantize|nhwc_integer")?;
                let rounding = match r.as_str() {
                    "trunc" => LinearRounding::Trunc,
                    "requantize" => LinearRounding::Requantize,
                    "nhwc_integer" => LinearRounding::NhwcInteger,
                    _ => {
                        return Err(t.err(format!(
                            "expected `trunc`, `requantize` or `nhwc_integer`, found {}",
                            found(&t)
                        )))
                    }
                };
                let sc = attrs.require("scales", &layer, "scales=(H, W)")?;
                let toks = sc.ints("`scales=(H, W)`")?;
                let [h, w] = toks[..] else {
                    return Err(sc.val_tok().err("expected `scales=(H, W)`, two floats".into()));
                };
                let scales = [float(&h, "a scale")?, float(&w, "a scale")?];
                let out = attrs.require("size", &layer, "size=(H, W)")?.pair(1)?;
                Op::ResizeLinear(LinearResize { mode, scales, out, rounding })
            }
            "concat" => Op::Concat { axis: uint(&attrs.require("axis", &layer, "axis=N")?.scalar("an integer")?, 0, "an axis")? },
            "reshape" => Op::Reshape {
                shape: match (attrs.get("shape"), &shape) {
                    (Some(a), _) => {
                        let items = a.ints("`shape=[d0, d1, ..]`")?;
                        let v = items.iter().map(|t| uint(t, 1, "a dimension")).collect::<Result<Vec<_>, _>>()?;
                        check_elements(&v, &a.val_tok())?;
                        v
                    }
                    (None, Some((s, _))) => s.clone(),
                    (None, None) => {
                        return Err(op_tok.err(format!(
                            "`reshape` layer `{layer}` is missing attribute `shape` (expected `shape=[d0, d1, ..]` or an output shape `{out}: {}[d0, d1, ..]`)",
                            ty.name()
                        )))
                    }
                },
            },
            "transpose" => Op::Transpose {
                perm: attrs
                    .require("perm", &layer, "perm=(P0, P1, ..)")?
                    .ints("`perm=(P0, P1, ..)`")?
                    .iter()
                    .map(|t| uint(t, 0, "a perm entry"))
                    .collect::<Result<Vec<_>, _>>()?,
            },
            _ => unreachable!("`{kind}` is in OPS"),
        };
        let shape = match shape {
            Some((s, _)) => s,
            None => {
                let xs: Vec<&Value> = ins.iter().map(|&i| &self.g.values[i]).collect();
                let Some(s) = infer_shape(&op, &xs) else {
                    let shapes: Vec<&Vec<usize>> = xs.iter().map(|v| &v.shape).collect();
                    return Err(op_tok.err(format!(
                        "`{kind}` layer `{layer}`: input shape(s) {shapes:?} do not fit the op (cannot infer the output shape)"
                    )));
                };
                check_elements(&s, &out_tok)?;
                s
            }
        };
        let y = self.define(Value { name: out, shape, ty, quant }, out_tok)?;
        self.nodes.insert(layer.clone(), (op_tok.line, op_tok.col));
        self.g.nodes.push(Node { name: layer, op, inputs: ins, outputs: vec![y] });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the module docs.
    fn doc_example() -> String {
        let src = include_str!("text.rs");
        let start = src.find("//! ```text\n").unwrap() + "//! ```text\n".len();
        let end = start + src[start..].find("//! ```\n").unwrap();
        src[start..end]
            .lines()
            .map(|l| l.strip_prefix("//! ").unwrap_or(l.trim_start_matches("//!")))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn doc_example_parses() {
        let g = parse(&doc_example()).unwrap();
        assert_eq!(g.name, "tiny");
        assert_eq!(g.nodes.len(), 6);
        let names: Vec<&str> = g.nodes.iter().map(|n| n.op.name()).collect();
        assert_eq!(names, ["quantize", "conv", "maxpool", "flatten", "dense", "dequantize"]);
        let Op::Conv(c) = &g.nodes[1].op else { panic!() };
        assert_eq!(c.w_scale, [0.004, 0.005859375]);
        assert_eq!((c.qmin, c.qmax), (-128, 127));
        assert_eq!(c.pads, [1; 4]);
        // Passed-through quantization and inferred shapes.
        let p = &g.values[g.nodes[2].outputs[0]];
        assert_eq!(p.shape, [1, 2, 2, 2]);
        assert_eq!(p.quant, g.values[g.nodes[1].outputs[0]].quant);
        assert_eq!(g.values[g.outputs[0]].ty, ElemType::F32);
        assert_eq!(parse(&print(&g)).unwrap(), g);
    }

    #[test]
    fn floats() {
        let t = |s: &'static str| Tok { kind: Kind::Word, text: s, line: 1, col: 1 };
        assert_eq!(float(&t("0x1.8p-3"), "x").unwrap(), 0.1875);
        assert_eq!(float(&t("-0x1p-149"), "x").unwrap(), -f32::from_bits(1));
        assert_eq!(float(&t("0x1.fffffep127"), "x").unwrap(), f32::MAX);
        assert_eq!(float(&t("0x.8p1"), "x").unwrap(), 1.0);
        assert_eq!(float(&t("0x0p0"), "x").unwrap(), 0.0);
        assert!(float(&t("0x1.fffffe8p0"), "x").is_err());
        assert!(float(&t("0x1p128"), "x").is_err());
        assert!(float(&t("0x1p-150"), "x").is_err());
        assert!(float(&t("0x1p99999999999999999999"), "x").is_err());
        assert!(float(&t("0x.p0"), "x").is_err());
        assert!(float(&t("1e39"), "x").is_err());
        assert_eq!(float(&t("0.1"), "x").unwrap(), 0.1f32);
        assert_eq!(float(&t(".5e1"), "x").unwrap(), 5.0);
        assert_eq!(float(&t("3."), "x").unwrap(), 3.0);
        for s in ["1.2.3", "e5", "0x", "1e", "--1", "inf5", ""] {
            assert!(float(&t(s), "x").is_err(), "{s}");
        }
        for bits in [1u32, 0x3b808081, 0x7f7fffff, 0x00800000, 0x3f800001, 0x0000ffff] {
            let x = f32::from_bits(bits);
            assert_eq!(float(&t(Box::leak(fmt_f32(x).into_boxed_str())), "x").unwrap().to_bits(), bits);
        }
    }

    #[test]
    fn names_quote() {
        for name in ["a", "conv1/Relu:0", "", "x y", "q\"\\\n\t\r\u{1}é#;", "->", "a-", "-"] {
            let q = quote(name);
            let toks = {
                let mut v = Vec::new();
                lex_line(&q, 1, &mut v).unwrap();
                v
            };
            assert_eq!(toks.len(), 1, "{q}");
            let mut c = Cur { toks: &toks, pos: 0, next: None };
            assert_eq!(c.name("x").unwrap().0, name);
        }
    }

    #[test]
    fn columns_count_characters() {
        let mut v = Vec::new();
        lex_line("\u{3000}é \"ü\" x->y", 1, &mut v).unwrap();
        let cols: Vec<(usize, &str)> = v.iter().map(|t| (t.col, t.text)).collect();
        assert_eq!(cols, [(2, "é"), (4, "\"ü\""), (8, "x"), (9, "->"), (11, "y")]);
    }
}
