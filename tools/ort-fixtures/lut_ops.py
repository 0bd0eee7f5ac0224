"""ONNX Runtime's outputs for element-wise unary ops on quantized tensors,
every one of the 256 input bytes, for many random quantizations and
attributes: the reference data of `compiler/tests/lut_ort.rs`
(`compiler/tests/data/lut_ops.bin`).

Forms, each for int8 and uint8:
- ORT's QLinear lookup ops (com.microsoft QLinearSigmoid, QLinearLeakyRelu)
  and QLinearConcat of one input (requantization only);
- DequantizeLinear -> op -> QuantizeLinear for Sigmoid, Tanh, HardSigmoid,
  HardSwish, LeakyRelu, Clip, Relu and Concat (identity), run once with
  ORT's default graph optimizations (ORT may fuse the pattern into a QLinear
  op) and once with optimizations disabled (the float kernels).

Each table's 256 inputs run in one tensor of 261 elements: the bytes 0..255
followed by 5 repeated ones that land in the kernels' masked tail (261 is
not a multiple of 8 or 16); the script fails if a repeated input's output
differs from its first occurrence (a result depending on an element's
position).

File format (little-endian), one record per table:
  u8 op, u8 form, u8 in_type, u8 out_type (0 int8, 1 uint8),
  f32 in_scale, i32 in_zp, f32 out_scale, i32 out_zp, f32 attr0, f32 attr1,
  u32 reserved (0), then 256 output bytes (entry e: input byte e).
ops: 0 identity (concat), 1 sigmoid, 2 tanh, 3 hardsigmoid (attr0 alpha,
attr1 beta), 4 hardswish, 5 leakyrelu (attr0 alpha), 6 clip (attr0 min,
attr1 max; +-inf when absent), 7 relu.
forms: 0 QLinear op, 1 QDQ with ORT's default optimizations, 2 QDQ with
optimizations disabled.

Usage: python3 tools/ort-fixtures/lut_ops.py [out.bin]
"""

import struct
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

TABLES_PER_COMBO = 112
BRANCHES = 28
EXTRA = 5
OUT = sys.argv[1] if len(sys.argv) > 1 else "compiler/tests/data/lut_ops.bin"

OPS = {"identity": 0, "sigmoid": 1, "tanh": 2, "hardsigmoid": 3, "hardswish": 4, "leakyrelu": 5, "clip": 6, "relu": 7}
QLINEAR = ["sigmoid", "leakyrelu", "identity"]
QDQ = ["sigmoid", "tanh", "hardsigmoid", "hardswish", "leakyrelu", "clip", "relu", "identity"]

rng = np.random.default_rng(20261207)


def onnx_type(u8):
    return TensorProto.UINT8 if u8 else TensorProto.INT8


def np_type(u8):
    return np.uint8 if u8 else np.int8


def rand_scale():
    return float(np.float32(10 ** rng.uniform(-3.3, 0.3)))


def rand_zp(u8):
    return int(rng.integers(0, 256)) if u8 else int(rng.integers(-128, 128))


def rand_case(op, u8):
    """(in_scale, in_zp, out_scale, out_zp, attr0, attr1)."""
    si, zi, so, zo = rand_scale(), rand_zp(u8), rand_scale(), rand_zp(u8)
    r = rng.random()
    if r < 0.15:
        # Scale ratios that are powers of two (many exact ties in the rounding).
        so = float(np.float32(si * 2.0 ** int(rng.integers(-3, 4))))
    elif r < 0.25 and op in ("sigmoid", "hardsigmoid"):
        so, zo = float(np.float32(1 / 256)), (0 if u8 else -128)
    elif r < 0.35 and op in ("tanh",):
        so, zo = float(np.float32(1 / 128)), (128 if u8 else 0)
    a0 = a1 = 0.0
    if op == "hardsigmoid":
        a0, a1 = (0.2, 0.5) if rng.random() < 0.2 else (rng.uniform(0.02, 2.0), rng.uniform(-1.5, 1.5))
    elif op == "leakyrelu":
        a0 = float(rng.choice([0.01, 0.1, 0.2, 0.3333])) if rng.random() < 0.3 else rng.uniform(0.0005, 0.9)
    elif op == "clip":
        lo_span = 128 * si
        k = rng.random()
        if k < 0.2:
            a0, a1 = 0.0, 6.0
        elif k < 0.35:
            a0, a1 = float(rng.uniform(-lo_span, lo_span)), float("inf")
        elif k < 0.5:
            a0, a1 = float("-inf"), float(rng.uniform(-lo_span, lo_span))
        else:
            a0, a1 = sorted(rng.uniform(-lo_span, lo_span, 2))
    return si, zi, so, zo, float(np.float32(a0)), float(np.float32(a1))


def scalar(name, value, ty):
    return helper.make_tensor(name, ty, [], [value])


def branch(i, op, form, u8, case):
    """Nodes and initializers computing output `y{i}` from input `x`."""
    si, zi, so, zo, a0, a1 = case
    t = onnx_type(u8)
    p = f"b{i}_"
    inits = [
        scalar(p + "si", si, TensorProto.FLOAT),
        scalar(p + "zi", zi, t),
        scalar(p + "so", so, TensorProto.FLOAT),
        scalar(p + "zo", zo, t),
    ]
    y = f"y{i}"
    if form == 0:
        ins = ["x", p + "si", p + "zi", p + "so", p + "zo"]
        if op == "sigmoid":
            nodes = [helper.make_node("QLinearSigmoid", ins, [y], domain="com.microsoft")]
        elif op == "leakyrelu":
            nodes = [helper.make_node("QLinearLeakyRelu", ins, [y], domain="com.microsoft", alpha=a0)]
        else:
            cat = [p + "so", p + "zo", "x", p + "si", p + "zi"]
            nodes = [helper.make_node("QLinearConcat", cat, [y], domain="com.microsoft", axis=0)]
        return nodes, inits
    nodes = [helper.make_node("DequantizeLinear", ["x", p + "si", p + "zi"], [p + "f"])]
    f = p + "f"
    g = p + "g"
    if op == "sigmoid":
        nodes.append(helper.make_node("Sigmoid", [f], [g]))
    elif op == "tanh":
        nodes.append(helper.make_node("Tanh", [f], [g]))
    elif op == "hardsigmoid":
        nodes.append(helper.make_node("HardSigmoid", [f], [g], alpha=a0, beta=a1))
    elif op == "hardswish":
        nodes.append(helper.make_node("HardSwish", [f], [g]))
    elif op == "leakyrelu":
        nodes.append(helper.make_node("LeakyRelu", [f], [g], alpha=a0))
    elif op == "relu":
        nodes.append(helper.make_node("Relu", [f], [g]))
    elif op == "clip":
        cins = [f]
        if np.isfinite(a0) or np.isfinite(a1):
            cins.append(p + "lo" if np.isfinite(a0) else "")
            if np.isfinite(a0):
                inits.append(scalar(p + "lo", a0, TensorProto.FLOAT))
            if np.isfinite(a1):
                cins.append(p + "hi")
                inits.append(scalar(p + "hi", a1, TensorProto.FLOAT))
        nodes.append(helper.make_node("Clip", cins, [g]))
    else:
        nodes.append(helper.make_node("Concat", [f], [g], axis=0))
    nodes.append(helper.make_node("QuantizeLinear", [g, p + "so", p + "zo"], [y]))
    return nodes, inits


def run_batch(op, form, u8, cases, x):
    nodes, inits, outs = [], [], []
    n = len(x)
    for i, c in enumerate(cases):
        bn, bi = branch(i, op, form, u8, c)
        nodes += bn
        inits += bi
        outs.append(helper.make_tensor_value_info(f"y{i}", onnx_type(u8), [n]))
    graph = helper.make_graph(nodes, "lut", [helper.make_tensor_value_info("x", onnx_type(u8), [n])], outs, inits)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    onnx.checker.check_model(model)
    so = ort.SessionOptions()
    so.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_DISABLE_ALL if form == 2 else ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    )
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})


def main():
    records = []
    combos = [(op, 0) for op in QLINEAR] + [(op, f) for op in QDQ for f in (1, 2)]
    for u8 in (False, True):
        for op, form in combos:
            done = 0
            while done < TABLES_PER_COMBO:
                k = min(BRANCHES, TABLES_PER_COMBO - done)
                cases = [rand_case(op, u8) for _ in range(k)]
                extra = (np.arange(EXTRA) * 37 + done) % 256
                idx = np.concatenate([np.arange(256), extra])
                x = idx.astype(np.uint8).view(np_type(u8))
                ys = run_batch(op, form, u8, cases, x)
                for c, y in zip(cases, ys):
                    yb = y.view(np.uint8)
                    if not np.array_equal(yb[256:], yb[extra]):
                        raise SystemExit(f"{op} form {form}: an output depends on the element's position")
                    head = struct.pack("<BBBBfififfI", OPS[op], form, int(u8), int(u8), *c, 0)
                    records.append(head + yb[:256].tobytes())
                done += k
            print(f"{'u8' if u8 else 'i8'} {op:12s} form {form}: {done} tables")
    with open(OUT, "wb") as f:
        for r in records:
            f.write(r)
    print(f"{len(records)} tables, {len(records) * 256} cases -> {OUT}")
    print(f"onnxruntime {ort.__version__}, onnx {onnx.__version__}, numpy {np.__version__}")


if __name__ == "__main__":
    main()
