#!/usr/bin/env python3
"""Make `isa/tests/data/qlinear_add.bin`: ONNX Runtime's QLinearAdd on every
pair of 8-bit operands, for a set of scales and zero points.

Pins `isa::numerics::qadd` (the post-processor's `vadd`) to ORT bit for bit
(`isa/tests/ort_qlinear_add.rs`).

Each parameter set is one com.microsoft QLinearAdd model (scales and zero
points as initializers) run on inputs `a`, `b` of 65,536 elements: element
`i` has operand bytes `a = i >> 8`, `b = i & 255` (read as int8 or uint8), so
all pairs are covered and the inputs need not be stored.

The parameter sets: equal scales (the sum is exact), scale ratios 1/2, 1/4,
3/4 and 3/2 (exact ties `n + 1/2` on many pairs), ratios log-uniform over
2^-12..2^6, sets where the order of the float operations of the fixed part
`k = zc - (ra·za + rb·zb)` changes its bits (they tell a fused multiply-add
apart from a plain one), and huge ratios whose sums leave the int32 range
(x86's cvtps2dq gives INT_MIN there, which saturates to the type's minimum).

File format (little endian):
  magic b"QADD", version u32 = 1, sets u32, then per set:
  dtype u8 (0 int8, 1 uint8), 3 zero bytes, sa f32, sb f32, sc f32,
  za i32, zb i32, zc i32, then 65,536 output bytes (element i as above).

It also checks that the QDQ form (DequantizeLinear x2 -> Add ->
QuantizeLinear) gives ORT's QLinearAdd result for every set and prints what
ORT executed for it.

Run (from the repository root):
    pip install onnx onnxruntime numpy
    python3 tools/ort-fixtures/qlinear_add.py [--out isa/tests/data/qlinear_add.bin]

Deterministic for one ORT version (fixed seed). The committed file was made
with onnxruntime 1.32.0, onnx 1.23.2, numpy 2.4.6, Python 3.11, x86-64
(AVX-512, i.e. MLAS's AVX2 QLinearAdd kernel).
"""

import argparse
import os
import struct
import tempfile
from fractions import Fraction

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

N = 65536
DTYPES = {0: (np.int8, TensorProto.INT8, -128, 127), 1: (np.uint8, TensorProto.UINT8, 0, 255)}


def inputs(dtype):
    i = np.arange(N, dtype=np.int64)
    a = (i >> 8).astype(np.uint8).view(dtype)
    b = (i & 255).astype(np.uint8).view(dtype)
    return a, b


def const(name, value, ty):
    return helper.make_tensor(name, ty, [], [value])


def qlinear_add_model(code, sa, sb, sc, za, zb, zc):
    _, ty, _, _ = DTYPES[code]
    node = helper.make_node(
        "QLinearAdd", ["a", "sa", "za", "b", "sb", "zb", "sc", "zc"], ["c"], domain="com.microsoft"
    )
    inits = [
        const("sa", sa, TensorProto.FLOAT), const("za", za, ty),
        const("sb", sb, TensorProto.FLOAT), const("zb", zb, ty),
        const("sc", sc, TensorProto.FLOAT), const("zc", zc, ty),
    ]
    g = helper.make_graph(
        [node], "qlinear_add",
        [helper.make_tensor_value_info("a", ty, [N]), helper.make_tensor_value_info("b", ty, [N])],
        [helper.make_tensor_value_info("c", ty, [N])], inits,
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])


def qdq_add_model(code, sa, sb, sc, za, zb, zc):
    _, ty, _, _ = DTYPES[code]
    nodes = [
        helper.make_node("DequantizeLinear", ["a", "sa", "za"], ["fa"]),
        helper.make_node("DequantizeLinear", ["b", "sb", "zb"], ["fb"]),
        helper.make_node("Add", ["fa", "fb"], ["fc"]),
        helper.make_node("QuantizeLinear", ["fc", "sc", "zc"], ["c"]),
    ]
    inits = [
        const("sa", sa, TensorProto.FLOAT), const("za", za, ty),
        const("sb", sb, TensorProto.FLOAT), const("zb", zb, ty),
        const("sc", sc, TensorProto.FLOAT), const("zc", zc, ty),
    ]
    g = helper.make_graph(
        nodes, "qdq_add",
        [helper.make_tensor_value_info("a", ty, [N]), helper.make_tensor_value_info("b", ty, [N])],
        [helper.make_tensor_value_info("c", ty, [N])], inits,
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def run(model, a, b, tmp, tag, options=None):
    path = os.path.join(tmp, f"{tag}.onnx")
    onnx.save(model, path)
    so = ort.SessionOptions()
    so.log_severity_level = 3  # quiet: the optimized model is only read for its op types
    so.optimized_model_filepath = os.path.join(tmp, f"{tag}.opt.onnx")
    for k, v in (options or {}).items():
        so.add_session_config_entry(k, v)
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    out = sess.run(None, {"a": a, "b": b})[0]
    executed = [n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node]
    return out, executed


def f32(x):
    return float(np.float32(x))


def k_variants(sa, sb, sc, za, zb, zc):
    """Bits of the fixed part under three orders of its float operations."""
    ra, rb = np.float32(sa) / np.float32(sc), np.float32(sb) / np.float32(sc)

    def fma(x, y, z):  # exact product and sum, rounded once to f32
        return f32(Fraction(float(x)) * Fraction(y) + Fraction(float(z)))

    fused_a = f32(zc - fma(ra, za, f32(float(rb) * zb)))
    fused_b = f32(zc - fma(rb, zb, f32(float(ra) * za)))
    plain = f32(zc - f32(f32(float(ra) * za) + f32(float(rb) * zb)))
    return fused_a, fused_b, plain


def param_sets(rng):
    sets = []
    # Equal scales, and an equal-scale output: exact sums.
    sets.append((0, 0.05, 0.05, 0.05, 3, -7, 1))
    sets.append((1, 0.02, 0.02, 0.02, 128, 120, 130))
    # Exact ties n + 1/2 on many pairs.
    sets.append((0, 0.1, 0.1, 0.2, 0, 1, 0))  # ra = rb = 1/2
    sets.append((1, 0.25, 0.75, 1.0, 10, 3, 7))  # 1/4, 3/4
    sets.append((0, 1.5, 0.5, 1.0, -3, 2, 5))  # 3/2, 1/2
    sets.append((1, 0.125, 0.5, 0.25, 128, 0, 128))  # 1/2, 2
    # Log-uniform ratios over 2^-12 .. 2^6, random zero points.
    for code in (0, 1, 0, 1, 0, 1):
        lo, hi = DTYPES[code][2:]
        sc = f32(2.0 ** rng.uniform(-10, 2))
        sa = f32(sc * 2.0 ** rng.uniform(-12, 6))
        sb = f32(sc * 2.0 ** rng.uniform(-12, 6))
        sets.append((code, sa, sb, sc, *(int(rng.integers(lo, hi + 1)) for _ in range(3))))
    # Sets on which k = zc - fma(ra, za, rb*zb) differs from both other
    # orders of its float operations.
    found = []
    while len(found) < 4:
        code = len(found) % 2
        lo, hi = DTYPES[code][2:]
        sc = f32(2.0 ** rng.uniform(-8, 0))
        sa = f32(sc * 2.0 ** rng.uniform(-3, 3))
        sb = f32(sc * 2.0 ** rng.uniform(-3, 3))
        z = tuple(int(rng.integers(lo, hi + 1)) for _ in range(3))
        fused_a, fused_b, plain = k_variants(sa, sb, sc, *z)
        if fused_a != fused_b and fused_a != plain:
            found.append((code, sa, sb, sc, *z))
    sets += found
    # Sums beyond the int32 range: cvtps2dq's INT_MIN, then saturation.
    sets.append((0, 1e4, 1e-3, 1e-5, 5, 0, -3))
    sets.append((1, 3e-3, 1e5, 1e-5, 0, 200, 17))
    return sets


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="isa/tests/data/qlinear_add.bin")
    args = ap.parse_args()
    rng = np.random.default_rng(20261207)
    sets = param_sets(rng)
    blob = bytearray(b"QADD" + struct.pack("<II", 1, len(sets)))
    qdq_same = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, (code, sa, sb, sc, za, zb, zc) in enumerate(sets):
            dtype = DTYPES[code][0]
            a, b = inputs(dtype)
            out, ops = run(qlinear_add_model(code, sa, sb, sc, za, zb, zc), a, b, tmp, f"q{i}")
            assert ops == ["QLinearAdd"], ops
            qdq, qdq_ops = run(qdq_add_model(code, sa, sb, sc, za, zb, zc), a, b, tmp, f"d{i}")
            diff = int(np.count_nonzero(qdq != out))
            qdq_same += diff == 0
            print(f"set {i:2}: {dtype.__name__:5} sa={sa:.6g} sb={sb:.6g} sc={sc:.6g} z=({za},{zb},{zc}) "
                  f"QDQ ran {qdq_ops}, differs from QLinearAdd in {diff} of {N}")
            blob += struct.pack("<B3xfffiii", code, sa, sb, sc, za, zb, zc)
            blob += out.astype(dtype).tobytes()
    with open(args.out, "wb") as f:
        f.write(blob)
    print(f"{args.out}: {len(sets)} sets, {len(sets) * N} cases, {len(blob)} bytes; "
          f"QDQ Add equal to QLinearAdd on {qdq_same} of {len(sets)} sets")


if __name__ == "__main__":
    main()
