#!/usr/bin/env python3
"""ONNX Runtime's linear Resize on random cases: the fixtures of `compiler/tests/ort_resize.rs`.

Each case is one small model run by ORT (CPU) on one random NCHW input:
  - `qop`: Resize (mode linear) directly on the int8/uint8 tensor, as the
    QOperator quantizer leaves it (ORT interpolates the integers and
    truncates);
  - `qdq`: DequantizeLinear -> Resize (linear) -> QuantizeLinear, random
    scales and zero points (a quarter with the output's equal to the
    input's), which ORT runs in float then rounds;
  - `nhwc`: QLinearConv (a 1x1 identity: its output is its input) ->
    Resize (linear) on int8/uint8. ORT's NHWC transformer makes the
    QLinearConv channels-last and its transpose optimizer pushes the
    Transpose after it through the Resize (its cost check does so for a 4-D
    8-bit linear Resize), so the Resize runs ORT's channels-last integer
    kernel (NhwcUpsampleBilinearInteger): 2^10-scaled integer weights, the
    int32 sum divided by 2^20 toward zero — `integer_interpolate` below.
    (Saving ORT's optimized model, `SessionOptions.optimized_model_filepath`,
    shows the Resize's scales permuted to [1, H, W, 1].) Not drawn: a
    channels-last Resize with H's scale exactly 1 and W changing, which
    ORT's dispatch takes for an NCHW one over W and C and runs in its float
    kernel; the compiler refuses it;
with the four coordinate modes ORT supports for linear (half_pixel,
pytorch_half_pixel, align_corners, asymmetric), random scales (down- and
upsampling, a fifth given as `sizes`), sizes and channel counts (up to 40,
wider than a 16-column array), int8 and uint8.

Stored compactly (`compiler/tests/data/ort_resize/`): `cases.json` lists
every case's parameters, input seed, ORT's output shape and the FNV-1a
64-bit hash of ORT's output bytes; `outputs.bin` holds the full output bytes
of the first `FULL` cases (to run on the model). The test computes every
output with the reference interpreter and checks the hash, so every output
is compared; there are no exceptions to store. The generator also records
how many outputs differ from `resize_linear_probe.py`'s definition
(`probe_differences`, 0 when ORT computes what that probe pins).

The inputs are not stored: both this script and the test draw them from
SplitMix64 seeded with the case's seed (byte i = low byte of the i-th draw).

    pip install onnx onnxruntime numpy
    python3 tools/ort-fixtures/resize_fixtures.py [--out compiler/tests/data/ort_resize]
"""

import argparse
import json
import os
import platform
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pool_fixtures import fnv1a64, splitmix64_bytes  # noqa: E402
from resize_linear_probe import MODES, interpolate, original  # noqa: E402

FULL = 40
f32 = np.float32


def random_case(rng, i):
    kind = "qop" if i % 2 == 0 else "qdq"
    dtype = "uint8" if (i // 2) % 2 == 0 else "int8"
    mode = MODES[(i // 4) % 4]
    c = int(rng.choice([1, 2, 3, 5, 8, 16, 17, 24, 33, 40]))
    h, w = int(rng.integers(1, 13)), int(rng.integers(1, 13))
    lo, hi = (-128, 127) if dtype == "int8" else (0, 255)
    scales = []
    for n in (h, w):
        while True:
            s = float(f32(rng.choice([0.5, 0.75, 1.25, 1.5, 2.0, 3.0, 4.0]) if rng.random() < 0.5
                          else 10 ** rng.uniform(-0.5, 0.65)))
            if 1 <= int(f32(s) * f32(n)) <= 48:
                break
        scales.append(s)
    case = {"kind": kind, "dtype": dtype, "mode": mode, "shape": [1, c, h, w], "scales": scales,
            "seed": int(rng.integers(0, 2**63))}
    if rng.random() < 0.2:
        # `sizes` instead of `scales`: ORT's scale is f32(out) / f32(in).
        case["sizes"] = [1, c, int(rng.integers(1, 33)), int(rng.integers(1, 33))]
        del case["scales"]
    if kind == "qdq":
        sx = float(f32(10 ** rng.uniform(-3, 0)))
        sy = sx if rng.random() < 0.25 else float(f32(sx * 10 ** rng.uniform(-0.5, 0.5)))
        zx, zy = int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))
        if sy == sx and rng.random() < 0.5:
            zy = zx
        case.update({"x_scale": sx, "x_zero_point": zx, "y_scale": sy, "y_zero_point": zy})
    return case


def nhwc_case(rng, i):
    """A `nhwc` case: as `random_case`'s `qop`, never H's scale exactly 1
    with W changing (see the module doc)."""
    while True:
        case = random_case(rng, 0)
        case["kind"] = "nhwc"
        case["dtype"] = "uint8" if i % 2 == 0 else "int8"
        case["mode"] = MODES[(i // 2) % 4]
        c, h, w = case["shape"][1:]
        if "sizes" in case:
            sh, ow = f32(case["sizes"][2]) / f32(h), case["sizes"][3]
        else:
            sh, ow = f32(case["scales"][0]), int(f32(case["scales"][1]) * f32(w))
        if sh != f32(1) or ow == w:
            return case


def axis_int(mode, lin, lout, scale):
    """ORT's SetupUpsampleBilinearInteger: the clamped binary32 coordinate
    `x`, `s = int32(x * 1024)`, weights `|s - i * 1024|` (512 each at the
    edge)."""
    out = []
    for o in range(lout):
        v = f32(o) if f32(scale) == f32(1) else original(mode, o, scale, lout, lin)
        v = f32(max(f32(0), min(v, f32(lin - 1))))
        s10 = int(f32(v * f32(1024)))
        i1 = min(int(v), lin - 1)
        i2 = min(i1 + 1, lin - 1)
        d1, d2 = (512, 512) if i1 == i2 else (abs(s10 - i1 * 1024), abs(s10 - i2 * 1024))
        out.append((i1, i2, d1, d2))
    return out


def integer_interpolate(x, mode, scales, oh, ow):
    """NhwcUpsampleBilinearInteger: (w11 X11 + w21 X21 + w12 X12 + w22 X22)
    / 2^20 in integers, toward zero."""
    x = x.astype(np.int64)
    py, px = axis_int(mode, x.shape[2], oh, scales[0]), axis_int(mode, x.shape[3], ow, scales[1])
    out = np.zeros(x.shape[:2] + (oh, ow), np.int64)
    for yy, (y1, y2, dy1, dy2) in enumerate(py):
        for xx, (x1, x2, dx1, dx2) in enumerate(px):
            s = (dx2 * dy2 * x[:, :, y1, x1] + dx1 * dy2 * x[:, :, y1, x2]
                 + dx2 * dy1 * x[:, :, y2, x1] + dx1 * dy1 * x[:, :, y2, x2])
            out[:, :, yy, xx] = np.sign(s) * (np.abs(s) >> 20)
    return out


def model(case):
    t = TensorProto.INT8 if case["dtype"] == "int8" else TensorProto.UINT8
    npt = np.int8 if case["dtype"] == "int8" else np.uint8
    x = helper.make_tensor_value_info("x", t, case["shape"])
    y = helper.make_tensor_value_info("y", t, None)
    inits = [numpy_helper.from_array(np.zeros(0, np.float32), "roi")]
    if "sizes" in case:
        inits.append(numpy_helper.from_array(np.array(case["sizes"], np.int64), "sizes"))
        ins = ["roi", "", "sizes"]
    else:
        inits.append(numpy_helper.from_array(np.array([1, 1] + case["scales"], np.float32), "scales"))
        ins = ["roi", "scales"]
    resize = lambda i, o: helper.make_node("Resize", [i] + ins, [o], name="resize", mode="linear",
                                           coordinate_transformation_mode=case["mode"])
    if case["kind"] == "qop":
        nodes = [resize("x", "y")]
    elif case["kind"] == "nhwc":
        c = case["shape"][1]
        inits += [
            numpy_helper.from_array(np.array(1, np.float32), "one"),
            numpy_helper.from_array(np.array(0, npt), "zero"),
            numpy_helper.from_array(np.eye(c, dtype=np.int8).reshape(c, c, 1, 1), "w"),
            numpy_helper.from_array(np.array(0, np.int8), "wz"),
        ]
        nodes = [helper.make_node("QLinearConv", ["x", "one", "zero", "w", "one", "wz", "one", "zero"], ["xc"],
                                  name="conv"), resize("xc", "y")]
    else:
        inits += [
            numpy_helper.from_array(np.array(case["x_scale"], np.float32), "xs"),
            numpy_helper.from_array(np.array(case["x_zero_point"], npt), "xz"),
            numpy_helper.from_array(np.array(case["y_scale"], np.float32), "ys"),
            numpy_helper.from_array(np.array(case["y_zero_point"], npt), "yz"),
        ]
        nodes = [helper.make_node("DequantizeLinear", ["x", "xs", "xz"], ["xf"], name="dq"), resize("xf", "yf"),
                 helper.make_node("QuantizeLinear", ["yf", "ys", "yz"], ["y"], name="q")]
    g = helper.make_graph(nodes, "resize", [x], [y], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)])
    m.ir_version = 9
    return m


def probe(case, x, oshape):
    """resize_linear_probe.py's definition, for the record, and one thing the
    probe never met: an output of the input's size is the input (ORT's
    upsample.cc returns it unchanged, whatever the scales; found by these
    fixtures: 143 outputs of 3 such cases differed from the interpolation)."""
    if tuple(oshape) == tuple(case["shape"]):
        if case["kind"] in ("qop", "nhwc"):
            return x.astype(np.int64)
        lo, hi = (-128, 127) if case["dtype"] == "int8" else (0, 255)
        xf = ((x.astype(np.int64) - case["x_zero_point"]).astype(f32) * f32(case["x_scale"])).astype(f32)
        return np.clip(np.rint((xf / f32(case["y_scale"])).astype(f32)).astype(np.int64) + case["y_zero_point"], lo, hi)
    scales = case.get("scales") or [float(f32(case["sizes"][2]) / f32(case["shape"][2])),
                                    float(f32(case["sizes"][3]) / f32(case["shape"][3]))]
    lo, hi = (-128, 127) if case["dtype"] == "int8" else (0, 255)
    if case["kind"] == "nhwc":
        return integer_interpolate(x, case["mode"], scales, *oshape[2:])
    if case["kind"] == "qop":
        return np.trunc(interpolate(x.astype(f32), case["mode"], scales, *oshape[2:])).astype(np.int64)
    xf = ((x.astype(np.int64) - case["x_zero_point"]).astype(f32) * f32(case["x_scale"])).astype(f32)
    v = interpolate(xf, case["mode"], scales, *oshape[2:])
    return np.clip(np.rint((v / f32(case["y_scale"])).astype(f32)).astype(np.int64) + case["y_zero_point"], lo, hi)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--out", default=os.path.join(root, "compiler", "tests", "data", "ort_resize"))
    ap.add_argument("--min-outputs", type=int, default=1_000_000)
    ap.add_argument("--min-nhwc-outputs", type=int, default=400_000)
    args = ap.parse_args()

    rng = np.random.default_rng(20261208)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    cases, full = [], bytearray()
    total, probe_diff = 0, 0
    # The `qop` and `qdq` cases first (the same stream as before the `nhwc`
    # kind), then the `nhwc` cases from their own.
    nhwc_rng, nhwc_total, nhwc_full = np.random.default_rng(20261209), 0, 0
    while total < args.min_outputs or nhwc_total < args.min_nhwc_outputs:
        nhwc = total >= args.min_outputs
        case = nhwc_case(nhwc_rng, len(cases)) if nhwc else random_case(rng, len(cases))
        npt = np.int8 if case["dtype"] == "int8" else np.uint8
        n = int(np.prod(case["shape"]))
        x = np.frombuffer(splitmix64_bytes(case["seed"], n), np.uint8).view(npt).reshape(case["shape"])
        sess = ort.InferenceSession(model(case).SerializeToString(), so, providers=["CPUExecutionProvider"])
        y = sess.run(None, {"x": x})[0]
        case["output_shape"] = list(y.shape)
        case["output_fnv1a64"] = f"{fnv1a64(y.tobytes()):016x}"
        d = int((probe(case, x, y.shape) != y.astype(np.int64)).sum())
        case["probe_differences"] = d
        probe_diff += d
        if len(cases) < FULL or (nhwc and nhwc_full < FULL // 2):
            case["output_offset"] = len(full)
            full += y.tobytes()
            nhwc_full += nhwc
        if nhwc:
            nhwc_total += y.size
        else:
            total += y.size
        cases.append(case)
    os.makedirs(args.out, exist_ok=True)
    meta = {
        "generator": "tools/ort-fixtures/resize_fixtures.py",
        "onnxruntime": ort.__version__, "onnx": onnx.__version__, "numpy": np.__version__,
        "machine": platform.machine(), "total_outputs": total + nhwc_total, "probe_differences": probe_diff,
        "cases": cases,
    }
    with open(os.path.join(args.out, "cases.json"), "w") as f:
        json.dump(meta, f, separators=(",", ":"))
        f.write("\n")
    with open(os.path.join(args.out, "outputs.bin"), "wb") as f:
        f.write(bytes(full))
    by = {}
    for c in cases:
        k = (c["kind"], c["dtype"])
        by[k] = by.get(k, 0) + int(np.prod(c["output_shape"]))
    print(f"onnxruntime {ort.__version__}: {len(cases)} cases, {total + nhwc_total} outputs {by}; "
          f"{probe_diff} differ from the probe's definition")


if __name__ == "__main__":
    main()
