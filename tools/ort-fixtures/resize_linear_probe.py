#!/usr/bin/env python3
"""How ONNX Runtime (CPU) computes linear Resize on int8/uint8: a probe, not a fixture.

Linear Resize is not lowered yet (issue 9). This pins the definition a lowering
must follow, against the installed ORT, on random images, scales and the four
coordinate modes ORT supports for linear (half_pixel, pytorch_half_pixel,
align_corners, asymmetric):

  - Resize on int8/uint8 (what the QOperator quantizer leaves): per axis,
    `o = original coordinate` (f32, the mode's formula), clamped to
    `[0, len - 1]`, `i1 = int(o)`, `i2 = min(i1 + 1, len - 1)`,
    `d1 = |o - i1|`, `d2 = |o - i2|` (both 0.5 where `i1 == i2`); then
    `y = trunc(f32(dx2·dy2)·X11 + f32(dx1·dy2)·X21 + f32(dx2·dy1)·X12 +
    f32(dx1·dy1)·X22)`, summed left to right in f32 and truncated toward
    zero (a C++ cast, not rounding).
  - DQ -> Resize -> Q (QDQ): the same interpolation on the dequantized floats,
    then QuantizeLinear (round half to even) — so a QDQ import and its
    QOperator twin differ (truncation vs rounding), even with equal scales.

ORT 1.32: 0 of 12,492 integer outputs and 0 of 11,457 QDQ outputs differ.
(Newer ORT sources compute the NCHW path separably, `dy2·(dx2·X11 + dx1·X21)
+ dy1·(...)`, which differs at ~0.2 %; and ORT's NHWC transformer may move a
uint8 Resize inside a QLinearConv chain to an integer path with weights
scaled by 2^10. A fixture generator must record which path ran.)

    python3 tools/ort-fixtures/resize_linear_probe.py
"""

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

f32 = np.float32
MODES = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"]


def original(mode, o, scale, lout, lin):
    o, scale = f32(o), f32(scale)
    if mode == "asymmetric":
        return o / scale
    if mode == "half_pixel":
        return (o + f32(0.5)) / scale - f32(0.5)
    if mode == "pytorch_half_pixel":
        return (o + f32(0.5)) / scale - f32(0.5) if lout > 1 else f32(0)
    return f32(0) if lout == 1 else o * f32(lin - 1) / f32(lout - 1)  # align_corners


def axis(mode, lin, lout, scale):
    out = []
    for o in range(lout):
        v = f32(max(f32(0), min(original(mode, o, scale, lout, lin), f32(lin - 1))))
        i1 = min(int(v), lin - 1)
        i2 = min(i1 + 1, lin - 1)
        d1, d2 = (f32(0.5), f32(0.5)) if i1 == i2 else (f32(abs(v - f32(i1))), f32(abs(v - f32(i2))))
        out.append((i1, i2, d1, d2))
    return out


def interpolate(xf, mode, scales, oh, ow):
    py, px = axis(mode, xf.shape[2], oh, scales[0]), axis(mode, xf.shape[3], ow, scales[1])
    out = np.zeros(xf.shape[:2] + (oh, ow), f32)
    for yy, (y1, y2, dy1, dy2) in enumerate(py):
        for xx, (x1, x2, dx1, dx2) in enumerate(px):
            out[:, :, yy, xx] = (f32(dx2 * dy2) * xf[:, :, y1, x1] + f32(dx1 * dy2) * xf[:, :, y1, x2]
                                 + f32(dx2 * dy1) * xf[:, :, y2, x1] + f32(dx1 * dy1) * xf[:, :, y2, x2])
    return out


def session(dt, shape, scales, mode, q):
    x = helper.make_tensor_value_info("x", dt, shape)
    y = helper.make_tensor_value_info("y", dt, None)
    inits = [helper.make_tensor("sc", TensorProto.FLOAT, [4], [1, 1] + scales),
             helper.make_tensor("roi", TensorProto.FLOAT, [0], [])]
    resize = lambda i, o: helper.make_node("Resize", [i, "roi", "sc"], [o], mode="linear",
                                           coordinate_transformation_mode=mode)
    if q is None:
        nodes = [resize("x", "y")]
    else:
        (s, z), (s2, z2) = q
        inits += [helper.make_tensor("s", TensorProto.FLOAT, [], [s]), helper.make_tensor("z", dt, [], [z]),
                  helper.make_tensor("s2", TensorProto.FLOAT, [], [s2]), helper.make_tensor("z2", dt, [], [z2])]
        nodes = [helper.make_node("DequantizeLinear", ["x", "s", "z"], ["xf"]), resize("xf", "yf"),
                 helper.make_node("QuantizeLinear", ["yf", "s2", "z2"], ["y"])]
    g = helper.make_graph(nodes, "r", [x], [y], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)])
    return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])


def main():
    rng = np.random.default_rng(1)
    stats = {"int": [0, 0], "qdq": [0, 0]}
    for case in range(160):
        dt, npdt = [(TensorProto.UINT8, np.uint8), (TensorProto.INT8, np.int8)][case % 2]
        lo, hi = np.iinfo(npdt).min, np.iinfo(npdt).max
        mode = MODES[case % 4]
        h, w = (int(v) for v in rng.integers(1, 9, 2))
        scales = [float(f32(rng.choice([0.5, 0.75, 1.25, 1.5, 2, 2.7, 3]))) for _ in range(2)]
        x = rng.integers(lo, hi + 1, (1, 3, h, w)).astype(npdt)
        kind = "qdq" if case % 8 >= 4 else "int"
        if kind == "int":
            y = session(dt, [1, 3, h, w], scales, mode, None).run(None, {"x": x})[0].astype(np.int64)
            want = np.trunc(interpolate(x.astype(f32), mode, scales, *y.shape[2:])).astype(np.int64)
        else:
            q = [(float(f32(rng.uniform(0.01, 0.1))), int(rng.integers(lo // 2, hi // 2))) for _ in range(2)]
            y = session(dt, [1, 3, h, w], scales, mode, q).run(None, {"x": x})[0].astype(np.int64)
            xf = ((x.astype(np.int64) - q[0][1]).astype(f32) * f32(q[0][0])).astype(f32)
            v = interpolate(xf, mode, scales, *y.shape[2:])
            want = np.clip(np.rint((v / f32(q[1][0])).astype(f32)).astype(np.int64) + q[1][1], lo, hi)
        stats[kind][0] += y.size
        stats[kind][1] += int((want != y).sum())
    print(f"onnxruntime {ort.__version__}: integer Resize {stats['int'][0]} outputs, {stats['int'][1]} differ; "
          f"QDQ {stats['qdq'][0]} outputs, {stats['qdq'][1]} differ")


if __name__ == "__main__":
    main()
