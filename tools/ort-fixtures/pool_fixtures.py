#!/usr/bin/env python3
"""ONNX Runtime's quantized pooling on random cases: the fixtures of `compiler/tests/ort_pool.rs`.

Each case is one node run by ORT (CPU) on one random NCHW input:
  - `com.microsoft::QLinearAveragePool` (random kernel 1-5 per axis, strides
    1-3, asymmetric pads < kernel, ceil_mode, count_include_pad),
  - `com.microsoft::QLinearGlobalAveragePool`,
  - `MaxPool` on the integers (ceil_mode, asymmetric pads),
with int8 or uint8 data, random scales (the output scale a random multiple
of the input's, or equal to it, where averages land on ties) and zero points.

Stored compactly (`compiler/tests/data/ort_pool/`): `cases.json` lists every
case's parameters, input seed and ORT's output shape, with the FNV-1a 64-bit
hash of ORT's output bytes, and for average pooling the `exceptions`: the
outputs (index, ORT's value) where ORT differs from the integer definition
below. The test rebuilds ORT's output from its own and the exceptions and
checks the hash, so every output is compared. `outputs.bin` holds the full
output bytes of the first `FULL` cases (to run on the model).

The inputs are not stored: both this script and the test draw them from SplitMix64 seeded with the case's seed (byte i of the
input = low byte of the i-th draw).

The integer definition of average pooling (the base of the exceptions;
`integer_definition` in the test) is the exact int32 window sum,
`requantize(sum, f32(s_x / f32(s_y * count)), zy)`: MLAS's
QLinearGlobalAveragePool exactly, and `compiler/src/interp.rs`'s for global
pooling. ORT's windowed
QLinearAveragePool instead dequantizes to float, sums in float, divides,
and rounds `y / s_y + zy`, so the two differ where the average lies within
float rounding of a tie (n + 1/2): 2 of ~520k outputs with random scales,
~14k of ~200k where the output scale equals the input's and even counts put
averages exactly on ties. The interpreter (and the vector unit) follow the
float sequence for windowed pooling, so the test requires every output equal.

    pip install onnx onnxruntime numpy
    python3 tools/ort-fixtures/pool_fixtures.py [--out compiler/tests/data/ort_pool]
"""

import argparse
import json
import os
import platform
import shutil

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

FULL = 48
MASK = (1 << 64) - 1


def splitmix64_bytes(seed, n):
    out = bytearray(n)
    s = seed & MASK
    for i in range(n):
        s = (s + 0x9E3779B97F4A7C15) & MASK
        z = s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        z ^= z >> 31
        out[i] = z & 0xFF
    return bytes(out)


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & MASK
    return h


def out_size(n, k, s, p0, p1, ceil):
    num = n + p0 + p1 - k
    return (-(-num // s) if ceil else num // s) + 1


def random_case(rng, i):
    kind = ["avg", "avg", "avg", "global", "max"][i % 5]
    dtype = "uint8" if rng.random() < 0.5 else "int8"
    c = int(rng.integers(1, 24))
    if kind == "global":
        h, w = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        k, s, pads, ceil, cip = [h, w], [1, 1], [0, 0, 0, 0], 0, 0
    else:
        while True:
            k = [int(rng.integers(1, 6)), int(rng.integers(1, 6))]
            s = [int(rng.integers(1, 4)), int(rng.integers(1, 4))]
            pads = [int(rng.integers(0, k[0])), int(rng.integers(0, k[1]))] * 2
            pads[2], pads[3] = int(rng.integers(0, k[0])), int(rng.integers(0, k[1]))
            if rng.random() < 0.3:
                pads = [0, 0, 0, 0]
            ceil = int(rng.random() < 0.4)
            cip = int(kind == "avg" and rng.random() < 0.5)
            h, w = int(rng.integers(k[0], 30)), int(rng.integers(k[1], 30))
            oh = out_size(h, k[0], s[0], pads[0], pads[2], ceil)
            ow = out_size(w, k[1], s[1], pads[1], pads[3], ceil)
            # Every window must start inside the input (or its leading padding).
            if (oh - 1) * s[0] - pads[0] < h and (ow - 1) * s[1] - pads[1] < w:
                break
    lo, hi = (-128, 127) if dtype == "int8" else (0, 255)
    sx = float(np.float32(10 ** rng.uniform(-3, 0)))
    if rng.random() < 0.25:
        sy = sx
    else:
        sy = float(np.float32(sx * 10 ** rng.uniform(-0.7, 0.7)))
    zx, zy = int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))
    return {
        "kind": kind, "dtype": dtype, "shape": [1, c, h, w], "kernel": k, "strides": s, "pads": pads,
        "ceil_mode": ceil, "count_include_pad": cip, "x_scale": sx, "x_zero_point": zx,
        "y_scale": sy, "y_zero_point": zy, "seed": int(rng.integers(0, 2**63)),
    }


def model(case):
    t = TensorProto.INT8 if case["dtype"] == "int8" else TensorProto.UINT8
    npt = np.int8 if case["dtype"] == "int8" else np.uint8
    x = helper.make_tensor_value_info("x", t, case["shape"])
    y = helper.make_tensor_value_info("y", t, None)
    inits = [
        numpy_helper.from_array(np.array(case["x_scale"], np.float32), "xs"),
        numpy_helper.from_array(np.array(case["x_zero_point"], npt), "xz"),
        numpy_helper.from_array(np.array(case["y_scale"], np.float32), "ys"),
        numpy_helper.from_array(np.array(case["y_zero_point"], npt), "yz"),
    ]
    attrs = {}
    if case["kind"] == "max":
        node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=case["kernel"], strides=case["strides"],
                                pads=case["pads"], ceil_mode=case["ceil_mode"])
        inits = []
    elif case["kind"] == "global":
        node = helper.make_node("QLinearGlobalAveragePool", ["x", "xs", "xz", "ys", "yz"], ["y"],
                                domain="com.microsoft", channels_last=0)
    else:
        attrs = dict(kernel_shape=case["kernel"], strides=case["strides"], pads=case["pads"],
                     ceil_mode=case["ceil_mode"], count_include_pad=case["count_include_pad"])
        node = helper.make_node("QLinearAveragePool", ["x", "xs", "xz", "ys", "yz"], ["y"],
                                domain="com.microsoft", **attrs)
    g = helper.make_graph([node], "pool", [x], [y], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 8
    return m


def integer_definition(case, x):
    """Average pooling as compiler/src/interp.rs defines it (for the record)."""
    _, c, h, w = case["shape"]
    (kh, kw), (sh, sw) = case["kernel"], case["strides"]
    pt, pl, pb, pr = case["pads"]
    oh = out_size(h, kh, sh, pt, pb, case["ceil_mode"])
    ow = out_size(w, kw, sw, pl, pr, case["ceil_mode"])
    lo, hi = (-128, 127) if case["dtype"] == "int8" else (0, 255)
    xq = x.reshape(c, h, w).astype(np.int64) - case["x_zero_point"]
    y = np.zeros((c, oh, ow), np.int64)
    sx, sy = np.float32(case["x_scale"]), np.float32(case["y_scale"])
    for oy in range(oh):
        y0, y1 = max(oy * sh - pt, 0), min(oy * sh - pt + kh, h)
        for ox in range(ow):
            x0, x1 = max(ox * sw - pl, 0), min(ox * sw - pl + kw, w)
            count = kh * kw if case["count_include_pad"] else (y1 - y0) * (x1 - x0)
            scale = np.float32(sx / np.float32(sy * np.float32(count)))
            s = xq[:, y0:y1, x0:x1].sum(axis=(1, 2)).astype(np.float32)
            p = (s * scale).astype(np.float32)
            y[:, oy, ox] = np.clip(np.rint(p).astype(np.int64) + case["y_zero_point"], lo, hi)
    return y.reshape(-1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--out", default=os.path.join(root, "compiler", "tests", "data", "ort_pool"))
    ap.add_argument("--min-outputs", type=int, default=1_000_000)
    args = ap.parse_args()

    rng = np.random.default_rng(20261207)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    cases, full = [], bytearray()
    total = 0
    mism = {"avg": 0, "avg_ties": 0}
    while total < args.min_outputs:
        case = random_case(rng, len(cases))
        npt = np.int8 if case["dtype"] == "int8" else np.uint8
        n = int(np.prod(case["shape"]))
        x = np.frombuffer(splitmix64_bytes(case["seed"], n), np.uint8).view(npt).reshape(case["shape"])
        sess = ort.InferenceSession(model(case).SerializeToString(), so, providers=["CPUExecutionProvider"])
        y = sess.run(None, {"x": x})[0]
        case["output_shape"] = list(y.shape)
        case["output_fnv1a64"] = f"{fnv1a64(y.tobytes()):016x}"
        if case["kind"] != "max":
            ours = integer_definition(case, x)
            yf = y.reshape(-1).astype(np.int64)
            idx = np.nonzero(ours != yf)[0]
            case["exceptions"] = [[int(i), int(yf[i])] for i in idx]
            if case["kind"] == "avg":
                mism["avg_ties" if case["x_scale"] == case["y_scale"] else "avg"] += len(idx)
        if len(cases) < FULL:
            case["output_offset"] = len(full)
            full += y.tobytes()
        cases.append(case)
        total += y.size
    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    os.makedirs(args.out)
    with open(os.path.join(args.out, "outputs.bin"), "wb") as f:
        f.write(full)
    meta = {
        "generator": "tools/ort-fixtures/pool_fixtures.py",
        "versions": {"onnxruntime": ort.__version__, "onnx": onnx.__version__, "numpy": np.__version__,
                     "python": platform.python_version(), "machine": platform.machine()},
        "input": "SplitMix64(seed): byte i = low byte of draw i (i from 0), NCHW",
        "hash": "FNV-1a 64 of ORT's output bytes",
        "full_outputs": FULL,
        "total_outputs": total,
        "cases": cases,
    }
    with open(os.path.join(args.out, "cases.json"), "w") as f:
        json.dump(meta, f, indent=0)
        f.write("\n")
    kinds = {k: sum(1 for c in cases if c["kind"] == k) for k in ("avg", "global", "max")}
    print(f"{len(cases)} cases {kinds}, {total} outputs; integer definition vs ORT: {mism}")


if __name__ == "__main__":
    main()
