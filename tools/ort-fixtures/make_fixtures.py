#!/usr/bin/env python3
"""Make the ONNX Runtime fixtures of `compiler/tests/ort_ops.rs`.

What it makes (in `compiler/tests/data/ort_ops/`, about 230 KB):

  Three small float models (opset 17, NCHW input `x` of shape [N, 2, 6, 6],
  random weights from a fixed seed), each quantized statically by
  `onnxruntime.quantization.quantize_static` (int8 activations, int8
  per-channel weights, MinMax calibration on 16 random inputs) twice: in
  QOperator form (`qop.onnx`) and in QDQ form (`qdq.onnx`):

    residual/   x -> Conv 3x3 -> Relu ─┐
                x -> Conv 1x1 ─────────┴─ Add -> MaxPool 2x2/2 -> y
                (QOperator: QLinearConv, com.microsoft QLinearAdd, MaxPool)
    avgpool/    x -> Conv 3x3 -> Relu -> AveragePool 2x2/2 (no pads) -> y
                (QOperator: com.microsoft QLinearAveragePool)
    gap/        x -> Conv 3x3 (no pads, 16 ch) -> Relu -> GlobalAveragePool
                  -> Flatten -> Gemm 16x5 -> y
                (QOperator: com.microsoft QLinearGlobalAveragePool, QGemm)

  ONNX Runtime (CPU, session option `session.qdqisint8allowed = 1`, see
  CONFIG below) runs each quantized model on the 64 random inputs of `x_f32.npy` ([64, 2, 6, 6] float32, one batch of
  64; the models' batch dimension is symbolic). Every int8 tensor inside
  the model (every node output of the QOperator model but the final
  DequantizeLinear's; every QuantizeLinear output of the QDQ model) is read
  by adding it as an extra graph output to a copy of the model, and saved
  as `<model>/<form>/<index>.npy` ([64, ...] int8), together with the
  model's own float output(s). The extra outputs do not change the
  computation: the script checks that the float outputs of the copy equal
  those of the unmodified model bit for bit, and it records which operators
  ORT actually executed after its graph optimizations (for the QDQ form ORT
  fuses DQ -> op -> Q into the QLinear* kernels).

  `meta.json` lists, per model and form: the model file, ORT's executed
  operator types, and every saved tensor (ONNX tensor name, file, dtype,
  shape, `output` = true for the model's float outputs, and for a QDQ
  QuantizeLinear output the float tensor it quantizes as `aliases`).

How to run (from the repository root; needs Python >= 3.9):

    pip install onnx onnxruntime numpy
    python3 tools/ort-fixtures/make_fixtures.py [--out compiler/tests/data/ort_ops]

The output is deterministic for one onnxruntime version (fixed seeds).

Versions used for the committed fixtures: onnxruntime 1.32.0, onnx 1.23.2,
numpy 2.4.6, Python 3.11.7, x86-64 with AVX2 (no VNNI). `meta.json` records
the versions that made it.
"""

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)

OPSET = 17
N_TEST = 64
N_CALIB = 16
IN_SHAPE = [2, 6, 6]


def conv_init(rng, name, cout, cin, k):
    w = rng.normal(0.0, 1.0 / np.sqrt(cin * k * k), size=(cout, cin, k, k)).astype(np.float32)
    b = rng.normal(0.0, 0.2, size=(cout,)).astype(np.float32)
    return [numpy_helper.from_array(w, f"{name}.weight"), numpy_helper.from_array(b, f"{name}.bias")]


def conv(name, x, out, k, pad):
    return helper.make_node(
        "Conv", [x, f"{name}.weight", f"{name}.bias"], [out], name=name,
        kernel_shape=[k, k], pads=[pad] * 4, strides=[1, 1],
    )


def make_model(name, nodes, inits, out_shape):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"] + IN_SHAPE)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N"] + out_shape)
    g = helper.make_graph(nodes, name, [x], [y], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="make_fixtures.py")
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    return m


def residual(rng):
    inits = conv_init(rng, "conv_a", 4, 2, 3) + conv_init(rng, "conv_b", 4, 2, 1)
    nodes = [
        conv("conv_a", "x", "conv_a_out", 3, 1),
        helper.make_node("Relu", ["conv_a_out"], ["relu_a_out"], name="relu_a"),
        conv("conv_b", "x", "conv_b_out", 1, 0),
        helper.make_node("Add", ["relu_a_out", "conv_b_out"], ["add_out"], name="add"),
        helper.make_node("MaxPool", ["add_out"], ["y"], name="maxpool", kernel_shape=[2, 2], strides=[2, 2]),
    ]
    return make_model("residual", nodes, inits, [4, 3, 3])


def avgpool(rng):
    inits = conv_init(rng, "conv", 4, 2, 3)
    nodes = [
        conv("conv", "x", "conv_out", 3, 1),
        helper.make_node("Relu", ["conv_out"], ["relu_out"], name="relu"),
        helper.make_node("AveragePool", ["relu_out"], ["y"], name="avgpool", kernel_shape=[2, 2], strides=[2, 2]),
    ]
    return make_model("avgpool", nodes, inits, [4, 3, 3])


def gap(rng):
    inits = conv_init(rng, "conv", 16, 2, 3)
    w = rng.normal(0.0, 0.25, size=(5, 16)).astype(np.float32)
    b = rng.normal(0.0, 0.2, size=(5,)).astype(np.float32)
    inits += [numpy_helper.from_array(w, "fc.weight"), numpy_helper.from_array(b, "fc.bias")]
    nodes = [
        conv("conv", "x", "conv_out", 3, 0),
        helper.make_node("Relu", ["conv_out"], ["relu_out"], name="relu"),
        helper.make_node("GlobalAveragePool", ["relu_out"], ["gap_out"], name="gap"),
        helper.make_node("Flatten", ["gap_out"], ["flat_out"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat_out", "fc.weight", "fc.bias"], ["y"], name="fc", transB=1),
    ]
    return make_model("gap", nodes, inits, [5])


class Reader(CalibrationDataReader):
    def __init__(self, data):
        self.it = iter([{"x": d[None]} for d in data])

    def get_next(self):
        return next(self.it, None)


def quantize(float_path, out_path, fmt, calib):
    quantize_static(
        float_path, out_path, Reader(calib),
        quant_format=fmt, per_channel=True,
        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )


def int8_tensors(model, form):
    """Names of the int8 tensors computed inside the model, in node order."""
    outs = {o.name for o in model.graph.output}
    names = []
    for n in model.graph.node:
        if form == "qdq":
            keep = n.op_type == "QuantizeLinear"
        else:
            keep = n.op_type != "DequantizeLinear"
        names += [o for o in n.output if keep and o and o not in outs]
    return names


# ORT's QDQ transformer fuses DQ -> Conv -> Q into an int8 x int8
# QLinearConv only where int8 is "allowed"; by default, on x86 without VNNI,
# it instead rewrites int8 Q/DQ pairs to uint8, which fails where one Q feeds
# two DQs (the residual model's input) and then leaves those convolutions in
# float. This option makes the QDQ models run the same int8 kernels as their
# QOperator twins (it does nothing to QOperator models). What the default
# session runs is recorded in meta.json too.
CONFIG = {"session.qdqisint8allowed": "1"}


def session(model_bytes, config=CONFIG):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    for k, v in config.items():
        so.add_session_config_entry(k, v)
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def executed_ops(model_bytes, tmp, config=CONFIG):
    """The operators ORT runs after its graph optimizations (layout
    transformations left out: they only add Transposes and NHWC variants)."""
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = os.path.join(tmp, "optimized.onnx")
    for k, v in config.items():
        so.add_session_config_entry(k, v)
    ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    return [n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node]


def run_form(qpath, form, x, out_dir, tmp):
    model = onnx.load(qpath)
    plain_names = [o.name for o in model.graph.output]
    plain = session(model.SerializeToString()).run(None, {"x": x})
    executed = executed_ops(model.SerializeToString(), tmp)

    inner = int8_tensors(model, form)
    # In QDQ form, a QuantizeLinear's int8 output is also the value of the
    # float tensor it quantizes (e.g. a MaxPool or Flatten output between
    # DQ and Q, which an importer may name after the float tensor).
    q_input = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "QuantizeLinear"}
    tapped = onnx.ModelProto()
    tapped.CopyFrom(model)
    for name in inner:
        tapped.graph.output.append(helper.make_tensor_value_info(name, TensorProto.INT8, None))
    res = session(tapped.SerializeToString()).run(None, {"x": x})
    executed_tapped = executed_ops(tapped.SerializeToString(), tmp)
    if executed != executed_tapped:
        sys.exit(f"{qpath}: the extra outputs changed the executed ops: {executed} vs {executed_tapped}")
    for name, a, b in zip(plain_names, plain, res):
        if a.tobytes() != b.tobytes():
            sys.exit(f"{qpath}: output {name} changed when tapping intermediate tensors")

    # For the record: what a default session runs, and how many outputs differ.
    default = session(model.SerializeToString(), {}).run(None, {"x": x})
    default_ops = executed_ops(model.SerializeToString(), tmp, {})
    default_diff = int(sum(np.count_nonzero(a != b) for a, b in zip(plain, default)))

    os.makedirs(out_dir, exist_ok=True)
    tensors = []
    names = plain_names + inner
    for i, (name, arr) in enumerate(zip(names, res)):
        is_out = i < len(plain_names)
        if not is_out and arr.dtype != np.int8:
            sys.exit(f"{qpath}: tensor {name} is {arr.dtype}, expected int8")
        fname = f"{i}.npy"
        np.save(os.path.join(out_dir, fname), np.ascontiguousarray(arr))
        tensors.append({
            "name": name, "file": fname, "dtype": str(arr.dtype),
            "shape": list(arr.shape), "output": is_out,
            "aliases": [q_input[name]] if form == "qdq" and name in q_input else [],
        })
    return {
        "session_config": CONFIG,
        "executed_ops": executed,
        "default_session": {"executed_ops": default_ops, "output_elements_differing": default_diff},
        "tensors": tensors,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--out", default=os.path.join(root, "compiler", "tests", "data", "ort_ops"))
    args = ap.parse_args()

    rng = np.random.default_rng(20240617)
    calib = rng.normal(0.0, 1.0, size=[N_CALIB] + IN_SHAPE).astype(np.float32)
    x = rng.normal(0.0, 1.0, size=[N_TEST] + IN_SHAPE).astype(np.float32)

    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    os.makedirs(args.out)
    np.save(os.path.join(args.out, "x_f32.npy"), x)

    meta = {
        "generator": "tools/ort-fixtures/make_fixtures.py",
        "versions": {
            "onnxruntime": ort.__version__, "onnx": onnx.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "machine": platform.machine(),
        },
        "input": {"file": "x_f32.npy", "name": "x", "shape": list(x.shape)},
        "models": {},
    }
    builders = {"residual": (residual, 1), "avgpool": (avgpool, 2), "gap": (gap, 3)}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (build, seed) in builders.items():
            mdir = os.path.join(args.out, name)
            os.makedirs(mdir)
            fpath = os.path.join(tmp, f"{name}_f32.onnx")
            onnx.save(build(np.random.default_rng(seed)), fpath)
            entry = {}
            for form, fmt in [("qop", QuantFormat.QOperator), ("qdq", QuantFormat.QDQ)]:
                qpath = os.path.join(mdir, f"{form}.onnx")
                quantize(fpath, qpath, fmt, calib)
                info = run_form(qpath, form, x, os.path.join(mdir, form), tmp)
                info["model"] = f"{name}/{form}.onnx"
                entry[form] = info
                print(f"{name}/{form}: ORT ran {info['executed_ops']}; saved {len(info['tensors'])} tensors")
            meta["models"][name] = entry
    with open(os.path.join(args.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(args.out) for f in fs)
    print(f"wrote {args.out} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
