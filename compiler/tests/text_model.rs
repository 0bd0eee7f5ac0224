//! The text model format: the bundled examples, print/parse round trips on
//! generated graphs (and the binary encoding's, `decode(encode(g)) == g`), file references, one test per error kind, and no
//! panics on arbitrary text.

use std::collections::HashMap;

use compiler::ir::{ConvParams, DenseParams, ElemType, Graph, Node, Op, PoolParams, Quant, Value, ValueId, WeightType};
use compiler::text::{load_npy, parse, parse_with, print, NpyArray, NpyData, TextError};
use npyz::WriterBuilder;
use proptest::prelude::*;

const MLP: &str = include_str!("../../examples/models/tiny_mlp.stm");
const CNN: &str = include_str!("../../examples/models/tiny_cnn.stm");

fn ops(g: &Graph) -> Vec<&'static str> {
    g.nodes.iter().map(|n| n.op.name()).collect()
}

fn value<'g>(g: &'g Graph, name: &str) -> &'g Value {
    &g.values[g.value(name).unwrap_or_else(|| panic!("no value `{name}`"))]
}

/// `parse(print(g)) == g`, and printing is a fixed point; the binary
/// encoding (`ir_codec`) round-trips too.
fn assert_round_trip(g: &Graph) {
    let text = print(g);
    let back = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(&back, g, "\n{text}");
    assert_eq!(print(&back), text);
    let bytes = compiler::ir_codec::encode(g);
    assert_eq!(&compiler::ir_codec::decode(&bytes).unwrap_or_else(|e| panic!("{e}\n{text}")), g);
}

// ---------------------------------------------------------------------------
// Examples

#[test]
fn tiny_mlp_parses_and_validates() {
    let g = parse(MLP).unwrap();
    g.validate().unwrap();
    assert_eq!(g.name, "tiny_mlp");
    assert_eq!(ops(&g), ["quantize", "dense", "dense", "dequantize"]);
    assert_eq!(g.inputs, [g.value("x").unwrap()]);
    assert_eq!(g.outputs, [g.value("y").unwrap()]);
    assert_eq!(value(&g, "x").shape, [1, 16]);
    assert_eq!(value(&g, "xq").quant, Some(Quant { scale: 1.0 / 255.0, zero_point: -128 }));
    let Op::Dense(fc1) = &g.nodes[1].op else { panic!("fc1 is not dense") };
    assert_eq!((fc1.n, fc1.k, fc1.weights.len(), fc1.w_scale.len(), fc1.bias.len()), (8, 16, 128, 8, 8));
    // `relu`: clamp at the output's zero point.
    assert_eq!((fc1.qmin, fc1.qmax), (-128, 127));
    let Op::Dense(fc2) = &g.nodes[2].op else { panic!("fc2 is not dense") };
    assert_eq!((fc2.n, fc2.k, fc2.qmin, fc2.qmax), (4, 8, -128, 127));
    assert_eq!(value(&g, "y").ty, ElemType::F32);
    assert_eq!(value(&g, "y").shape, [1, 4]);
}

#[test]
fn tiny_cnn_parses_and_validates() {
    let g = parse(CNN).unwrap();
    g.validate().unwrap();
    assert_eq!(g.name, "tiny_cnn");
    assert_eq!(ops(&g), ["conv", "maxpool", "flatten", "dense"]);
    let Op::Conv(c) = &g.nodes[0].op else { panic!("conv1 is not conv") };
    assert_eq!(c.w_shape, [4, 1, 3, 3]);
    assert_eq!((c.strides, c.pads, c.dilations, c.groups), ([1, 1], [1; 4], [1, 1], 1));
    assert_eq!(&c.weights[..9], [-64, 0, 64, -127, 0, 127, -64, 0, 64]);
    let Op::MaxPool(p) = &g.nodes[1].op else { panic!("pool1 is not maxpool") };
    assert_eq!((p.kernel, p.strides, p.pads), ([2, 2], [2, 2], [0; 4]));
    // The pool's output shape is inferred, its quantization passed through.
    assert_eq!(value(&g, "pooled").shape, [1, 4, 3, 3]);
    assert_eq!(value(&g, "pooled").quant, value(&g, "features").quant);
    assert_eq!(value(&g, "flat_out").shape, [1, 36]);
    assert_eq!(value(&g, "logits").shape, [1, 3]);
    assert_eq!(g.outputs, [g.value("logits").unwrap()]);
}

#[test]
fn examples_round_trip() {
    for text in [MLP, CNN] {
        assert_round_trip(&parse(text).unwrap());
    }
}

// ---------------------------------------------------------------------------
// Formatting details

#[test]
fn whitespace_lists_and_defaults() {
    let text = "
model \"my model\"   # quoted name
input x:i8[1,2,3,3]scale = 0.5 zp=-3
clamp c x->y clamp=[-10,20,]
conv k y -> z
    weights : i8[2, 1, 1, 1] = (1, -1)
    w_scale = 0x1p-4
    pads=(1, 2) strides = (2, 1) dilations=2 groups=2
; a comment line between statements
avgpool a z -> w kernel=(1,2) pads=(0, 0, 0, 1) count_include_pad
output w, \"y\"
";
    let g = parse(text).unwrap();
    assert_eq!(g.name, "my model");
    assert_eq!(value(&g, "x").quant, Some(Quant { scale: 0.5, zero_point: -3 }));
    assert_eq!(g.nodes[0].op, Op::Clamp { qmin: -10, qmax: 20 });
    // Quantization passes through when left out.
    assert_eq!(value(&g, "y").quant, value(&g, "x").quant);
    let Op::Conv(c) = &g.nodes[1].op else { panic!() };
    assert_eq!((c.w_scale.clone(), c.bias.clone()), (vec![0.0625; 2], vec![0; 2]));
    assert_eq!((c.pads, c.strides, c.dilations, c.groups), ([1, 2, 1, 2], [2, 1], [2, 2], 2));
    assert_eq!(value(&g, "z").shape, [1, 2, 3, 7]);
    let Op::AvgPool(p) = &g.nodes[2].op else { panic!() };
    assert_eq!((p.kernel, p.pads, p.strides, p.count_include_pad), ([1, 2], [0, 0, 0, 1], [1, 1], true));
    assert_eq!(g.outputs, [g.value("w").unwrap(), g.value("y").unwrap()]);
    assert_round_trip(&g);
}

#[test]
fn other_ops_and_relu() {
    let text = "model m
input a: u8[1, 2, 2, 3] scale=0.25 zp=10
input b: u8[1, 2, 2, 3] scale=0.5 zp=20
add s a, b -> c: u8[1, 2, 2, 3] scale=1 zp=7 relu
transpose t c -> d perm=(0, 3, 1, 2)
reshape r d -> e: u8[3, 4]
reshape r2 e -> f shape=[12]
concat cat a, b, a -> g axis=3
flatten fl g -> h axis=0
dequantize dq h -> out
quantize q out -> back: i8 scale=0x1.8p-3
output back, f
";
    let g = parse(text).unwrap();
    assert_eq!(g.nodes[0].op, Op::Add { qmin: 7, qmax: 255 });
    assert_eq!(value(&g, "d").shape, [1, 3, 2, 2]);
    assert_eq!(g.nodes[2].op, Op::Reshape { shape: vec![3, 4] });
    assert_eq!(value(&g, "f").shape, [12]);
    assert_eq!(value(&g, "g").shape, [1, 2, 2, 9]);
    assert_eq!(value(&g, "h").shape, [1, 36]);
    assert_eq!((value(&g, "out").ty, value(&g, "out").quant), (ElemType::F32, None));
    assert_eq!(value(&g, "back").quant, Some(Quant { scale: 0.1875, zero_point: 0 }));
    assert_round_trip(&g);
}

#[test]
fn floats_are_exact() {
    // Decimal rounds to nearest; hex floats and printed decimals are exact.
    for (written, bits) in [
        ("0.003921569", (1.0f32 / 255.0).to_bits()),
        ("0x1.010102p-8", (1.0f32 / 255.0).to_bits()),
        ("1e-45", 1),
        ("0x1p-149", 1),
        ("3.4028235e38", f32::MAX.to_bits()),
        ("0.1000000015", 0.1f32.to_bits()),
    ] {
        let g = parse(&format!("model m\ninput x: i8[1] scale={written}\n")).unwrap();
        assert_eq!(g.values[0].quant.unwrap().scale.to_bits(), bits, "{written}");
    }
}

#[test]
fn printer_interleaves_inputs_by_id() {
    let mut g = parse("model m\ninput a: i8[2] scale=1\nclamp c a -> b relu\n").unwrap();
    let late = g.add_value(Value { name: "late".into(), shape: vec![2], ty: ElemType::F32, quant: None });
    g.inputs.push(late);
    g.nodes.push(Node { name: "d".into(), op: Op::Dequantize, inputs: vec![1], outputs: vec![late + 1] });
    g.add_value(Value { name: "out".into(), shape: vec![2], ty: ElemType::F32, quant: None });
    g.outputs = vec![late, late + 1];
    g.validate().unwrap();
    let text = print(&g);
    assert!(text.contains("relu\n\ninput late: f32[2]\n\ndequantize d b -> out"), "{text}");
    assert_round_trip(&g);
}

// ---------------------------------------------------------------------------
// File references and .npy

fn npy<T: npyz::AutoSerialize + Copy>(shape: &[u64], data: &[T], order: npyz::Order) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w =
        npyz::WriteOptions::<T>::new().default_dtype().shape(shape).order(order).writer(&mut out).begin_nd().unwrap();
    w.extend(data.iter().copied()).unwrap();
    w.finish().unwrap();
    out
}

#[test]
fn load_npy_types_and_orders() {
    let a = load_npy(&npy(&[2, 3], &[1i8, 2, 3, 4, 5, -6], npyz::Order::C)).unwrap();
    assert_eq!(a, NpyArray { shape: vec![2, 3], data: NpyData::I8(vec![1, 2, 3, 4, 5, -6]) });
    let a = load_npy(&npy(&[3], &[7i32, -8, 1 << 30], npyz::Order::C)).unwrap();
    assert_eq!(a.data, NpyData::I32(vec![7, -8, 1 << 30]));
    let a = load_npy(&npy(&[2], &[0.5f32, 1e-3], npyz::Order::C)).unwrap();
    assert_eq!(a.data, NpyData::F32(vec![0.5, 1e-3]));
    // Fortran order [[0, 1, 2], [3, 4, 5]] is stored 0, 3, 1, 4, 2, 5.
    let a = load_npy(&npy(&[2, 3], &[0i8, 3, 1, 4, 2, 5], npyz::Order::Fortran)).unwrap();
    assert_eq!(a.data, NpyData::I8(vec![0, 1, 2, 3, 4, 5]));
    assert!(load_npy(b"not npy").unwrap_err().contains("not a valid .npy"));
    let e = load_npy(&npy(&[2], &[1i16, 2], npyz::Order::C)).unwrap_err();
    assert!(e.contains("unsupported dtype"), "{e}");
    let mut truncated = npy(&[4], &[1i32, 2, 3, 4], npyz::Order::C);
    truncated.truncate(truncated.len() - 4);
    assert!(load_npy(&truncated).is_err());
}

const FILE_MODEL: &str = "model m
input x: i8[1, 4] scale=0.5
dense fc x -> y: i8[1, 2] scale=0.25 relu
    weights = file(\"fc/w.npy\")
    w_scale: f32[2] = file(\"fc/s.npy\")
    bias = file(\"fc/b.npy\")
output y
";

const INLINE_MODEL: &str = "model m
input x: i8[1, 4] scale=0.5
dense fc x -> y: i8[1, 2] scale=0.25 relu
    weights: i8[2, 4] = [1, 2, 3, 4, -5, -6, -7, -8]
    w_scale = [0.125, 0.0625]
    bias = [100, -100]
output y
";

fn files() -> HashMap<&'static str, Vec<u8>> {
    HashMap::from([
        ("fc/w.npy", npy(&[2, 4], &[1i8, 2, 3, 4, -5, -6, -7, -8], npyz::Order::C)),
        ("fc/s.npy", npy(&[2], &[0.125f32, 0.0625], npyz::Order::C)),
        ("fc/b.npy", npy(&[2], &[100i32, -100], npyz::Order::C)),
        ("wrong_type.npy", npy(&[2], &[1i8, 2], npyz::Order::C)),
    ])
}

#[test]
fn file_references_resolve_through_the_loader() {
    let files = files();
    let mut asked = Vec::new();
    let g = parse_with(FILE_MODEL, &mut |path| {
        asked.push(path.to_string());
        load_npy(files.get(path).ok_or("no such file")?)
    })
    .unwrap();
    assert_eq!(asked, ["fc/w.npy", "fc/s.npy", "fc/b.npy"]);
    assert_eq!(g, parse(INLINE_MODEL).unwrap());
}

#[test]
fn file_reference_errors() {
    let files = files();
    let mut load = |path: &str| load_npy(files.get(path).ok_or("no such file")?);
    // Without a loader.
    err_at(&parse(FILE_MODEL).unwrap_err(), 4, 15, "cannot load \"fc/w.npy\": no loader");
    // The loader fails.
    let text = FILE_MODEL.replace("fc/b.npy", "missing.npy");
    err_at(&parse_with(&text, &mut load).unwrap_err(), 6, 12, "cannot load \"missing.npy\": no such file");
    // Wrong element type.
    let text = FILE_MODEL.replace("fc/b.npy", "wrong_type.npy");
    err_at(&parse_with(&text, &mut load).unwrap_err(), 6, 12, "holds int8 data, expected i32 for `bias`");
    // Declared shape differs from the file's.
    let text = FILE_MODEL.replace("w_scale: f32[2]", "w_scale: f32[1, 2]");
    err_at(&parse_with(&text, &mut load).unwrap_err(), 5, 26, "has shape [2], declared [1, 2]");
    // Weights of the wrong rank.
    let text = FILE_MODEL.replace("fc/w.npy", "fc/s.npy");
    err_at(&parse_with(&text, &mut load).unwrap_err(), 4, 15, "holds float32 data, expected i8");
    let text = FILE_MODEL.replace("fc/w.npy", "wrong_type.npy");
    err_at(&parse_with(&text, &mut load).unwrap_err(), 4, 15, "expected `weights: i8[N, K] = [..]` (2-D");
}

// ---------------------------------------------------------------------------
// Errors: one per kind, with line, column and message

fn err_at(e: &TextError, line: usize, column: usize, message: &str) {
    assert!(
        (e.line, e.column) == (line, column) && e.message.contains(message),
        "expected line {line}, column {column}: …{message}…\n     got {e}"
    );
    assert_eq!(e.to_string(), format!("line {line}, column {column}: {}", e.message));
}

fn parse_err(text: &str) -> TextError {
    match parse(text) {
        Ok(g) => panic!("parsed:\n{g}"),
        Err(e) => e,
    }
}

const HEAD: &str = "model m\ninput x: i8[1, 4] scale=0.5 zp=-1\n";

fn with_head(rest: &str) -> String {
    format!("{HEAD}{rest}")
}

#[test]
fn error_unknown_op() {
    let e = parse_err(&with_head("convolution c x -> y\n"));
    err_at(&e, 3, 1, "unknown op `convolution` (expected model, input, output or an op: quantize, dequantize, conv");
}

#[test]
fn error_missing_attribute() {
    let e =
        parse_err(&with_head("dense fc x -> y: i8[1, 2] scale=1\n    weights: i8[2, 4] = [1, 2, 3, 4, 5, 6, 7, 8]\n"));
    err_at(
        &e,
        3,
        1,
        "`dense` layer `fc` is missing attribute `w_scale` (expected `w_scale = [S0, S1, ..] or w_scale = S`)",
    );
    let e = parse_err(&with_head("input p: i8[1, 1, 4, 4] scale=1\nmaxpool mp p -> q strides=2\n"));
    err_at(&e, 4, 1, "missing attribute `kernel`");
    // Types differ, so the quantization does not pass through.
    let e = parse_err(&with_head("clamp c x -> y: u8 relu\n"));
    err_at(&e, 3, 1, "`clamp` `y` is missing attribute `scale`");
    let e = parse_err(&with_head("clamp c x -> y: i8 zp=3\n"));
    err_at(&e, 3, 1, "`clamp` `y` is missing attribute `scale`");
    let e = parse_err(&with_head("quantize q x -> y scale=1\n"));
    err_at(&e, 3, 17, "expected the output's type after `y`");
}

#[test]
fn error_wrong_weight_count() {
    let e = parse_err(&with_head("dense fc x -> y: i8[1, 2] scale=1\n    weights: i8[2, 4] = [\n        1, 2, 3, 4,\n        5, 6, 7,\n    ]\n    w_scale = 1\n"));
    err_at(&e, 4, 25, "expected 8 values for `weights` of shape [2, 4], found 7");
    let e = parse_err(&with_head(
        "dense fc x -> y scale=1 w_scale=[1, 2, 3]\n    weights: i8[2, 4] = [1, 2, 3, 4, 5, 6, 7, 8]\n",
    ));
    err_at(&e, 3, 33, "expected 2 weight scales (one per output channel), found 3");
    let e = parse_err(&with_head(
        "dense fc x -> y scale=1 w_scale=1 bias=[1]\n    weights: i8[2, 4] = [1, 2, 3, 4, 5, 6, 7, 8]\n",
    ));
    err_at(&e, 3, 40, "expected 2 biases (one per output channel), found 1");
    let e = parse_err(&with_head("dense fc x -> y scale=1 w_scale=1 weights=[1, 2]\n"));
    err_at(&e, 3, 43, "the weights need their type and shape");
}

#[test]
fn error_undefined_input() {
    let e = parse_err(&with_head("add a x, z -> y\n"));
    err_at(&e, 3, 10, "undefined value `z` (expected a value defined earlier");
    let e = parse_err(&with_head("output x, nope\n"));
    err_at(&e, 3, 11, "undefined value `nope`");
}

#[test]
fn error_duplicate_names() {
    let e = parse_err(&with_head("clamp c x -> x relu\n"));
    err_at(&e, 3, 14, "value `x` is already defined (on line 2)");
    let e = parse_err(&with_head("input x: f32[2]\n"));
    err_at(&e, 3, 7, "value `x` is already defined (on line 2)");
    let e = parse_err(&with_head("clamp c x -> y relu\nclamp c y -> z relu\n"));
    err_at(&e, 4, 7, "layer `c` is already defined (on line 3)");
    let e = parse_err(&with_head("clamp c x -> y relu relu\n"));
    err_at(&e, 3, 21, "attribute `relu` given twice (first at line 3, column 16)");
}

#[test]
fn error_bad_number() {
    let e = parse_err("model m\ninput x: i8[1, 4] scale=0.5.1\n");
    err_at(&e, 2, 25, "expected a scale (a float such as 0.0125, 1e-3 or 0x1.8p-7), found `0.5.1`");
    let e = parse_err("model m\ninput x: i8[1, 4] scale=0.5 zp=12a\n");
    err_at(&e, 2, 32, "expected an i8 zero point (an integer), found `12a`");
    let e = parse_err("model m\ninput x: i8[1, 4] scale=0.5 zp=200\n");
    err_at(&e, 2, 32, "expected an i8 zero point in -128..=127, found 200");
    let e = parse_err("model m\ninput x: i8[1, 0] scale=1\n");
    err_at(&e, 2, 16, "expected a dimension in 1..=2147483647, found 0");
    let e = parse_err(&with_head("dense fc x -> y scale=1 w_scale=1\n    weights: i8[1, 4] = [1, 2, 300, 4]\n"));
    err_at(&e, 4, 32, "expected a `weights` value in -128..=127, found 300");
    let e = parse_err("model m\ninput x: i8[1] scale=0x1.0000001p0\n");
    err_at(&e, 2, 22, "hex float 0x1.0000001p0 is not exactly representable as an f32");
    let e = parse_err("model m\ninput x: i8[1] scale=-2\n");
    err_at(&e, 2, 22, "expected a scale that is positive and finite, found -2");
    let e = parse_err("model m\ninput x: i8[1] scale=1e40\n");
    err_at(&e, 2, 22, "expected a scale in the f32 range, found 1e40");
}

#[test]
fn error_shape_mismatch() {
    // A declared output shape the op does not give: Graph::validate, at the layer.
    let e = parse_err(&with_head(
        "dense fc x -> y: i8[1, 3] scale=1 w_scale=1\n    weights: i8[2, 4] = [1, 2, 3, 4, 5, 6, 7, 8]\n",
    ));
    err_at(&e, 3, 1, "`dense` layer `fc`: output shape is [1, 3], the op gives [1, 2]");
    // Without a declared shape, the inference fails.
    let e = parse_err(&with_head("dense fc x -> y scale=1 w_scale=1\n    weights: i8[2, 3] = [1, 2, 3, 4, 5, 6]\n"));
    err_at(&e, 3, 1, "`dense` layer `fc`: input shape(s) [[1, 4]] do not fit the op");
    // Other validation errors map to their layer too.
    let e = parse_err(&with_head("input f: f32[1, 4]\nclamp c x -> y relu\nadd a y, f -> z: i8[1, 4] scale=1\n"));
    err_at(&e, 5, 1, "`add` layer `a`: operates on quantized tensors only");
    let e = parse_err(&with_head("transpose t x -> y perm=(0, 0)\n"));
    err_at(&e, 3, 1, "do not fit the op");
}

#[test]
fn error_syntax() {
    let e = parse_err("");
    err_at(&e, 1, 1, "expected `model NAME`, found an empty model");
    let e = parse_err("# only a comment\ninput x: i8[1] scale=1\n");
    err_at(&e, 2, 1, "expected `model NAME` first, found `input`");
    let e = parse_err(
        "model m\ninput x: i8[1, 2] scale=1\ndense d x -> y scale=1 w_scale=1\n    weights: i8[1, 2] = [\n1, 2]\n",
    );
    err_at(&e, 4, 26, "expected a number or `]`, found the end of the statement (line 5 starts in column 1, so it begins a new statement; indent it to continue this one)");
    let e = parse_err(
        "model m\ninput x: i8[1, 2] scale=1\ndense d x -> y scale=1 w_scale=1\n    weights: i8[1, 2] = [1, 2]\n3\n",
    );
    err_at(&e, 5, 1, "unknown op `3` (expected model, input, output or an op: quantize");
    assert!(e.message.ends_with("; lines that continue a statement must be indented)"), "{e}");
    let e = parse_err("model m\nmodel n\n");
    err_at(&e, 2, 1, "`model` given twice");
    let e = parse_err("  model m\n");
    err_at(&e, 1, 3, "expected a statement starting in column 1, found `model` on an indented line");
    let e = parse_err("model \"m\n");
    err_at(&e, 1, 7, "unterminated string");
    let e = parse_err("model \"a\\qb\"\n");
    err_at(&e, 1, 9, "unknown escape");
    let e = parse_err("model m extra\n");
    err_at(&e, 1, 9, "expected the end of the statement, found `extra`");
    let e = parse_err("model m\ninput x: i9[1] scale=1\n");
    err_at(&e, 2, 10, "expected an element type (i8, u8 or f32), found `i9`");
    let e = parse_err("model m\ninput x: i8 scale=1\n");
    err_at(&e, 2, 13, "expected a shape `[d0, d1, ..]`, found `scale`");
    let e = parse_err("model m\ninput x: i8[1, 2\n");
    err_at(&e, 2, 17, "expected `,` or `]`, found the end of the statement");
    let e = parse_err(&with_head("clamp c x y\n"));
    err_at(&e, 3, 11, "expected `,` or `->`, found `y`");
    let e = parse_err(&with_head("clamp c x -> y axis=1\n"));
    err_at(&e, 3, 16, "unknown attribute `axis` for `clamp` (expected scale, zp, relu, clamp)");
    let e = parse_err(&with_head("clamp c x -> y relu=1\n"));
    err_at(&e, 3, 20, "`relu` is a flag and takes no value");
    let e = parse_err(&with_head("clamp c x -> y relu clamp=(0, 1)\n"));
    err_at(&e, 3, 21, "`relu` and `clamp` exclude each other");
    let e = parse_err(&with_head("clamp c x -> y clamp=(5, 1)\n"));
    err_at(&e, 3, 22, "with LO <= HI");
    let e = parse_err(&with_head("dequantize d x -> y scale=1\n"));
    err_at(&e, 3, 21, "f32 value `y` takes no `scale`");
    let e = parse_err(&with_head("input p: i8[1, 1, 4, 4] scale=1\nmaxpool m p -> q kernel=(1, 2, 3)\n"));
    err_at(&e, 4, 25, "expected `kernel=N` or `kernel=(H, W)`, found 3 values");
    let e = parse_err(&with_head("clamp c x -> y strides: i8[1] = [1]\n"));
    err_at(&e, 3, 16, "unknown attribute `strides`");
}

// ---------------------------------------------------------------------------
// Generated graphs

/// splitmix64: the generated graphs follow from one proptest seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

struct Gen {
    g: Graph,
    rng: Rng,
}

const BASES: [&str; 8] = ["x", "conv1/Relu_output_0", "a.b-c", "out:0", "two words", "q\"uo\\te", "é#;", ""];

impl Gen {
    /// Distinct names: a random base, then `_` and a fresh number.
    fn name(&mut self) -> String {
        let base = BASES[self.rng.below(BASES.len())];
        format!("{base}_{}", self.g.values.len() + self.g.nodes.len())
    }

    fn scale(&mut self) -> f32 {
        match self.rng.below(3) {
            0 => f32::from_bits(self.rng.int(1, 0x7f7f_ffff) as u32),
            1 => f32::from_bits(self.rng.int(0x3a00_0000, 0x3e00_0000) as u32),
            _ => 1.0 / self.rng.int(1, 255) as f32,
        }
    }

    fn quantized(&mut self, shape: Vec<usize>) -> Value {
        let ty = if self.rng.chance(50) { ElemType::I8 } else { ElemType::U8 };
        let (lo, hi) = ty.range().unwrap();
        let quant = Some(Quant { scale: self.scale(), zero_point: self.rng.int(lo as i64, hi as i64) as i32 });
        Value { name: self.name(), shape, ty, quant }
    }

    fn clamp(&mut self, y: &Value) -> (i32, i32) {
        let (lo, hi) = y.ty.range().unwrap();
        match self.rng.below(3) {
            0 => (lo, hi),
            1 => (y.quant.unwrap().zero_point, hi),
            _ => {
                let a = self.rng.int(lo as i64, hi as i64) as i32;
                (a, self.rng.int(a as i64, hi as i64) as i32)
            }
        }
    }

    /// Adds a node whose output is `y` with the op's shape.
    fn push(&mut self, op: Op, inputs: Vec<ValueId>, mut y: Value) -> ValueId {
        let xs: Vec<&Value> = inputs.iter().map(|&i| &self.g.values[i]).collect();
        y.shape = compiler::ir::infer_shape(&op, &xs).expect("generated op fits");
        let id = self.g.add_value(y);
        let name = self.name();
        self.g.nodes.push(Node { name, op, inputs, outputs: vec![id] });
        id
    }

    fn weights(&mut self, n: usize) -> Vec<i8> {
        (0..n).map(|_| self.rng.int(-128, 127) as i8).collect()
    }

    fn channel_params(&mut self, m: usize) -> (Vec<f32>, Vec<i32>) {
        let w_scale = if self.rng.chance(30) { vec![self.scale(); m] } else { (0..m).map(|_| self.scale()).collect() };
        let bias = if self.rng.chance(30) {
            vec![0; m]
        } else {
            (0..m).map(|_| self.rng.int(i32::MIN as i64, i32::MAX as i64) as i32).collect()
        };
        (w_scale, bias)
    }

    fn dense(&mut self, x: ValueId) -> ValueId {
        let k = *self.g.values[x].shape.last().unwrap();
        let n = self.rng.int(1, 6) as usize;
        let weights = self.weights(n * k);
        let (w_scale, bias) = self.channel_params(n);
        let y = self.quantized(vec![]);
        let (qmin, qmax) = self.clamp(&y);
        self.push(
            Op::Dense(DenseParams { weights, n, k, w_scale, bias, qmin, qmax, w_type: WeightType::I8 }),
            vec![x],
            y,
        )
    }

    fn conv(&mut self, x: ValueId) -> ValueId {
        let c = self.g.values[x].shape[1];
        let divisors: Vec<usize> = (1..=c).filter(|g| c.is_multiple_of(*g)).collect();
        let groups = divisors[self.rng.below(divisors.len())];
        let m = groups * self.rng.int(1, 3) as usize;
        let mut p = ConvParams {
            weights: vec![],
            w_shape: [m, c / groups, self.rng.int(1, 3) as usize, self.rng.int(1, 3) as usize],
            w_scale: vec![],
            bias: vec![],
            strides: [self.rng.int(1, 3) as usize, self.rng.int(1, 2) as usize],
            pads: [0; 4].map(|_| self.rng.int(0, 2) as usize),
            dilations: [self.rng.int(1, 2) as usize, self.rng.int(1, 2) as usize],
            groups,
            qmin: 0,
            qmax: 0,
            w_type: WeightType::I8,
        };
        if compiler::ir::infer_shape(&Op::Conv(p.clone()), &[&self.g.values[x]]).is_none() {
            (p.w_shape[2], p.w_shape[3], p.strides, p.dilations) = (1, 1, [1, 1], [1, 1]);
        }
        p.weights = self.weights(p.w_shape.iter().product());
        (p.w_scale, p.bias) = self.channel_params(m);
        let y = self.quantized(vec![]);
        (p.qmin, p.qmax) = self.clamp(&y);
        self.push(Op::Conv(p), vec![x], y)
    }

    fn pool(&mut self, x: ValueId) -> ValueId {
        let mut p = PoolParams {
            kernel: [self.rng.int(1, 3) as usize, self.rng.int(1, 3) as usize],
            strides: [self.rng.int(1, 2) as usize, self.rng.int(1, 2) as usize],
            pads: [0; 4].map(|_| self.rng.int(0, 1) as usize),
            count_include_pad: self.rng.chance(50),
        };
        let max = self.rng.chance(50);
        let op = |p: &PoolParams| if max { Op::MaxPool(p.clone()) } else { Op::AvgPool(p.clone()) };
        if compiler::ir::infer_shape(&op(&p), &[&self.g.values[x]]).is_none() {
            p.kernel = [1, 1];
        }
        let y = self.quantized(vec![]);
        self.push(op(&p), vec![x], y)
    }

    /// A shape-preserving or shape-moving op on a quantized value.
    fn misc(&mut self, x: ValueId) -> ValueId {
        let rank = self.g.values[x].shape.len();
        let y = self.quantized(vec![]);
        let op = match self.rng.below(6) {
            0 => {
                let (qmin, qmax) = self.clamp(&y);
                Op::Clamp { qmin, qmax }
            }
            1 => {
                let (qmin, qmax) = self.clamp(&y);
                return self.push(Op::Add { qmin, qmax }, vec![x, x], y);
            }
            2 => {
                let mut perm: Vec<usize> = (0..rank).collect();
                for i in (1..rank).rev() {
                    perm.swap(i, self.rng.below(i + 1));
                }
                Op::Transpose { perm }
            }
            3 => {
                let axis = self.rng.below(rank);
                let copies = self.rng.int(1, 3) as usize;
                return self.push(Op::Concat { axis }, vec![x; copies], y);
            }
            4 => Op::Reshape { shape: vec![self.g.values[x].elements(), 1] },
            _ => Op::Flatten { axis: self.rng.below(rank + 1) },
        };
        self.push(op, vec![x], y)
    }

    fn input(&mut self, v: Value) -> ValueId {
        let id = self.g.add_value(v);
        self.g.inputs.push(id);
        id
    }

    /// A quantized graph input of `shape`, or a float one and a quantize.
    fn start(&mut self, shape: Vec<usize>) -> ValueId {
        if self.rng.chance(50) {
            let v = self.quantized(shape);
            return self.input(v);
        }
        let name = self.name();
        let x = self.input(Value { name, shape, ty: ElemType::F32, quant: None });
        let y = self.quantized(vec![]);
        self.push(Op::Quantize, vec![x], y)
    }

    fn finish(mut self, last: ValueId) -> Graph {
        let mut out = last;
        if self.rng.chance(50) {
            let name = self.name();
            out = self.push(Op::Dequantize, vec![last], Value { name, shape: vec![], ty: ElemType::F32, quant: None });
        }
        self.g.outputs.push(out);
        if self.rng.chance(30) {
            // A graph input declared after the layers, also an output.
            let name = self.name();
            let late = self.input(Value { name, shape: vec![2, 3], ty: ElemType::F32, quant: None });
            self.g.outputs.push(late);
        }
        if self.rng.chance(30) {
            self.g.outputs.push(self.g.inputs[0]);
        }
        self.g
    }
}

fn gen(seed: u64) -> Gen {
    let mut gen = Gen { g: Graph::default(), rng: Rng(seed) };
    gen.g.name = gen.name().to_string();
    gen
}

/// Dense layers (and misc ops) on `[batch.., k]` inputs.
fn dense_stack(seed: u64) -> Graph {
    let mut g = gen(seed);
    let rank = g.rng.int(1, 3) as usize;
    let shape = (0..rank).map(|_| g.rng.int(1, 5) as usize).collect();
    let mut x = g.start(shape);
    for _ in 0..g.rng.int(1, 4) {
        x = if g.rng.chance(75) { g.dense(x) } else { g.misc(x) };
    }
    g.finish(x)
}

/// Convolutions and pools on NCHW inputs, then flatten and dense.
fn conv_stack(seed: u64) -> Graph {
    let mut g = gen(seed);
    let shape =
        vec![g.rng.int(1, 2) as usize, g.rng.int(1, 4) as usize, g.rng.int(1, 7) as usize, g.rng.int(1, 7) as usize];
    let mut x = g.start(shape);
    for _ in 0..g.rng.int(1, 4) {
        x = match g.rng.below(4) {
            0 | 1 => g.conv(x),
            2 => g.pool(x),
            _ => g.misc(x),
        };
        if g.g.values[x].shape.len() != 4 {
            break;
        }
    }
    if g.rng.chance(70) {
        let y = g.quantized(vec![]);
        x = g.push(Op::Flatten { axis: 1.min(g.g.values[x].shape.len()) }, vec![x], y);
        x = g.dense(x);
    }
    g.finish(x)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn dense_stacks_round_trip(seed in any::<u64>()) {
        let g = dense_stack(seed);
        g.validate().unwrap();
        assert_round_trip(&g);
    }

    #[test]
    fn conv_stacks_round_trip(seed in any::<u64>()) {
        let g = conv_stack(seed);
        g.validate().unwrap();
        assert_round_trip(&g);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC*") {
        check_error_position(&text);
    }

    #[test]
    fn token_soup_never_panics(toks in prop::collection::vec(prop::sample::select(&SOUP[..]), 0..60)) {
        check_error_position(&format!("model m\n{}", toks.concat()));
    }

    #[test]
    fn mutated_examples_never_panic(
        which in any::<bool>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0usize..4, prop::sample::select(&SOUP[..])), 1..4),
    ) {
        let mut chars: Vec<char> = if which { MLP } else { CNN }.chars().collect();
        for (at, delete, insert) in edits {
            let i = at.index(chars.len() + 1);
            let end = (i + delete).min(chars.len());
            chars.splice(i..end, insert.chars());
        }
        check_error_position(&chars.into_iter().collect::<String>());
    }
}

const SOUP: [&str; 44] = [
    " ",
    "\n",
    "\n    ",
    ",",
    "[",
    "]",
    "(",
    ")",
    ":",
    "=",
    "->",
    "\"",
    "\"s\"",
    "#",
    ";",
    "-",
    "model",
    "input",
    "output",
    "conv",
    "dense",
    "maxpool",
    "flatten",
    "reshape",
    "concat",
    "transpose",
    "add",
    "x",
    "y",
    "i8",
    "u8",
    "f32",
    "i32",
    "relu",
    "scale",
    "zp",
    "weights",
    "w_scale",
    "bias",
    "file(",
    "0x1p-3",
    "-129",
    "99999999999999999999",
    "1e-3",
];

/// Parsing returns (never panics), and errors point into the text.
fn check_error_position(text: &str) {
    if let Err(e) = parse(text) {
        let lines: Vec<&str> = text.lines().collect();
        assert!(e.line >= 1 && e.column >= 1, "{e}");
        if let Some(line) = lines.get(e.line - 1) {
            assert!(e.column <= line.chars().count() + 1, "{e}\n{line}");
        } else {
            assert!(lines.is_empty() && e.line == 1, "{e}");
        }
    }
}

#[test]
fn table_ops_round_trip() {
    let g = parse(
        "model t\ninput x: i8[1, 3, 2, 2] scale=0.05 zp=3\n\
         sigmoid a x -> a: i8[1, 3, 2, 2] scale=0.0039 zp=-128\n\
         tanh b a -> b: u8[1, 3, 2, 2] scale=0.0078 zp=128\n\
         hardsigmoid c b -> c: i8[1, 3, 2, 2] scale=0.004 zp=-128 alpha=0.3 beta=0.4\n\
         hardswish d c -> d: i8[1, 3, 2, 2] scale=0.03 zp=-100\n\
         leakyrelu e d -> e: i8[1, 3, 2, 2] scale=0.05 zp=20 alpha=0.1\n\
         clip f e -> f: i8[1, 3, 2, 2] scale=0.02 zp=-128 min=0 max=2.51\n\
         clip g f -> g: i8[1, 3, 2, 2] scale=0.02 zp=-128 max=1.5\n\
         requantize h g -> h: u8[1, 3, 2, 2] scale=0.07 zp=128\n\
         output h\n",
    )
    .unwrap();
    g.validate().unwrap();
    assert_eq!(ops(&g), ["sigmoid", "tanh", "hardsigmoid", "hardswish", "leakyrelu", "clip", "clip", "requantize"]);
    assert_round_trip(&g);
}
