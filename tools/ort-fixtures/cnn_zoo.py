#!/usr/bin/env python3
"""Build CNNs with onnx.helper, quantize them with ONNX Runtime, save ORT's outputs.

The models (opset 17, NCHW float input `x`, random He-initialized weights
with a BatchNorm of random statistics folded into every convolution, fixed
seeds):

  small, 16x16 inputs, a few channels (the test fixtures of tests/ort_cnn.rs):
    resnet_block     stem conv 3x3, a basic block with identity shortcut, a
                     basic block of stride 2 with a 1x1 projection, global
                     average pooling, Gemm
    mobilenet_block  stem conv 3x3 + ReLU6, an inverted residual (expand 1x1,
                     depthwise 3x3, project 1x1, residual Add), one of stride 2
                     without residual, 1x1 conv, global average pooling, Gemm
    inception_block  stem conv, parallel 1x1 / 1x1-3x3 / 1x1-5x5 /
                     maxpool 3x3-1x1 branches, Concat, 1x1 conv, maxpool
    vgg_stack        two conv-conv-maxpool stages, Flatten, Gemm
    pool_block       padded AveragePool (count_include_pad 0), MaxPool with
                     asymmetric pads and ceil_mode, AveragePool with ceil_mode,
                     asymmetric pads and count_include_pad 1, global pooling
    upsample_block   an FPN-style top-down path: stem conv, stride-2 conv, 1x1
                     conv, linear Resize x2 (half_pixel), Add with the stem,
                     conv, linear Resize x0.75 (align_corners), global
                     pooling, Gemm
  full size, 224x224 (for measurements; not committed):
    resnet18         ResNet-18 (torchvision's topology), 1000 logits
    mobilenetv2      MobileNetV2 (width 1.0), 1000 logits

Each is quantized by `quantize_static` (MinMax calibration on seeded random
inputs, per-channel symmetric int8 weights) into four forms:
`qop_int8`, `qop_uint8` (QOperator) and `qdq_int8`, `qdq_uint8` (QDQ), the
suffix naming the activation type. ORT (CPU, session option
`session.qdqisint8allowed = 1`) runs each on seeded inputs.

A QDQ form usually holds the same integer model as its QOperator twin: the
script checks whether every quantized weight and bias the QDQ model stores
is stored, equal, under the same name in the QOperator model, with equal
scales and zero points, and records in `meta.json` how many of ORT's
outputs for the QDQ model differ from those for the twin (ORT runs parts of
a QDQ model in float). Where it is the same, the twin's output is the
reference for the QDQ import (`reference` in meta.json) and the QDQ form
saves no output of its own. Where it is not (ORT's QDQ quantizer gives an
AveragePool its input's scale and zero point, the QOperator quantizer
calibrates the output's), the QDQ form is its own reference and saves its
QuantizeLinear outputs.

Output layout:
  <small-out>/<model>/<form>.onnx          the quantized models
  <small-out>/<model>/x.npy                [N, 3, 16, 16] float32 inputs
  <small-out>/<model>/<form>/<i>.npy       ORT's tensors for each form that is
                                           its own reference: its float output,
                                           then every integer tensor inside
  <small-out>/meta.json                    tensors, executed ops, comparisons
  <full-out>/...                           the same for the full-size models
                                           (input.npy: [1, 3, 224, 224]), and
  <full-out>/<model>/<form>.output.npy     the reference's float logits
  <full-out>/<model>/<form>.output_q.npy   the same logits as integers

How to run (from the repository root):
    pip install onnx onnxruntime numpy
    python3 tools/ort-fixtures/cnn_zoo.py [--small-out tests/data/ort_cnn]
        [--full-out target/ort-models] [--only small|full]

Deterministic for one onnxruntime version (fixed seeds). Versions are
recorded in meta.json.
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
FORMS = {
    "qop_int8": (QuantFormat.QOperator, QuantType.QInt8),
    "qop_uint8": (QuantFormat.QOperator, QuantType.QUInt8),
    "qdq_int8": (QuantFormat.QDQ, QuantType.QInt8),
    "qdq_uint8": (QuantFormat.QDQ, QuantType.QUInt8),
}
# See tools/ort-fixtures/README.md: makes ORT fuse int8 QDQ into the same
# kernels as the QOperator twin instead of rewriting it to uint8.
CONFIG = {"session.qdqisint8allowed": "1"}


class Net:
    """A float graph under construction: convolutions carry a folded BatchNorm."""

    def __init__(self, name, seed, in_shape):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.in_shape = in_shape
        self.nodes, self.inits = [], []
        self.n = 0

    def fresh(self, kind):
        self.n += 1
        return f"{kind}{self.n}"

    def conv(self, x, cin, cout, k, stride=1, pad=None, groups=1, act=None):
        name = self.fresh("conv")
        kh, kw = (k, k) if isinstance(k, int) else k
        if pad is None:
            pad = [kh // 2, kw // 2, kh // 2, kw // 2]
        elif isinstance(pad, int):
            pad = [pad] * 4
        fan_in = cin // groups * kh * kw
        w = self.rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(cout, cin // groups, kh, kw))
        # BatchNorm with random statistics, folded: w' = w*g/sqrt(v+eps), b' = beta - m*g/sqrt(v+eps).
        gamma = self.rng.uniform(0.5, 1.5, cout)
        beta = self.rng.normal(0.0, 0.1, cout)
        mean = self.rng.normal(0.0, 0.1, cout)
        var = self.rng.uniform(0.5, 1.5, cout)
        f = gamma / np.sqrt(var + 1e-5)
        w = (w * f[:, None, None, None]).astype(np.float32)
        b = (beta - mean * f).astype(np.float32)
        self.inits += [numpy_helper.from_array(w, f"{name}.weight"), numpy_helper.from_array(b, f"{name}.bias")]
        out = f"{name}_out"
        self.nodes.append(helper.make_node(
            "Conv", [x, f"{name}.weight", f"{name}.bias"], [out], name=name,
            kernel_shape=[kh, kw], pads=pad, strides=[stride, stride], group=groups,
        ))
        return self.act(out, act)

    def act(self, x, act):
        if act is None:
            return x
        name = self.fresh(act)
        out = f"{name}_out"
        if act == "relu":
            self.nodes.append(helper.make_node("Relu", [x], [out], name=name))
        elif act == "relu6":
            if not any(i.name == "six" for i in self.inits):
                self.inits += [numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
                               numpy_helper.from_array(np.array(6.0, np.float32), "six")]
            self.nodes.append(helper.make_node("Clip", [x, "zero", "six"], [out], name=name))
        else:
            raise ValueError(act)
        return out

    def op(self, kind, inputs, **attrs):
        name = self.fresh(kind.lower())
        out = f"{name}_out"
        self.nodes.append(helper.make_node(kind, inputs, [out], name=name, **attrs))
        return out

    def gemm(self, x, cin, cout):
        name = self.fresh("fc")
        w = self.rng.normal(0.0, np.sqrt(1.0 / cin), size=(cout, cin)).astype(np.float32)
        b = self.rng.normal(0.0, 0.1, cout).astype(np.float32)
        self.inits += [numpy_helper.from_array(w, f"{name}.weight"), numpy_helper.from_array(b, f"{name}.bias")]
        out = f"{name}_out"
        self.nodes.append(helper.make_node("Gemm", [x, f"{name}.weight", f"{name}.bias"], [out], name=name, transB=1))
        return out

    def model(self, y):
        # Rename the last tensor to `y`.
        for n in self.nodes:
            n.output[:] = ["y" if o == y else o for o in n.output]
        xi = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"] + self.in_shape)
        yi = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
        g = helper.make_graph(self.nodes, self.name, [xi], [yi], initializer=self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="cnn_zoo.py")
        m.ir_version = 8
        m = onnx.shape_inference.infer_shapes(m)
        onnx.checker.check_model(m, full_check=True)
        return m


def basic_block(net, x, cin, cout, stride):
    h = net.conv(x, cin, cout, 3, stride, act="relu")
    h = net.conv(h, cout, cout, 3, 1)
    short = x if stride == 1 and cin == cout else net.conv(x, cin, cout, 1, stride, pad=0)
    return net.act(net.op("Add", [h, short]), "relu")


def inverted_residual(net, x, cin, cout, stride, expand):
    mid = cin * expand
    h = net.conv(x, cin, mid, 1, act="relu6") if expand != 1 else x
    h = net.conv(h, mid, mid, 3, stride, groups=mid, act="relu6")
    h = net.conv(h, mid, cout, 1)
    return net.op("Add", [h, x]) if stride == 1 and cin == cout else h


def head(net, x, c, classes):
    g = net.op("GlobalAveragePool", [x])
    f = net.op("Flatten", [g], axis=1)
    return net.gemm(f, c, classes)


def resnet_block():
    net = Net("resnet_block", 11, [3, 16, 16])
    h = net.conv("x", 3, 8, 3, act="relu")
    h = basic_block(net, h, 8, 8, 1)
    h = basic_block(net, h, 8, 16, 2)
    return net.model(head(net, h, 16, 10))


def mobilenet_block():
    net = Net("mobilenet_block", 12, [3, 16, 16])
    h = net.conv("x", 3, 8, 3, act="relu6")
    h = inverted_residual(net, h, 8, 8, 1, 3)
    h = inverted_residual(net, h, 8, 12, 2, 3)
    h = net.conv(h, 12, 24, 1, act="relu6")
    return net.model(head(net, h, 24, 10))


def inception_block():
    net = Net("inception_block", 13, [3, 16, 16])
    h = net.conv("x", 3, 8, 3, act="relu")
    b1 = net.conv(h, 8, 4, 1, act="relu")
    b3 = net.conv(net.conv(h, 8, 4, 1, act="relu"), 4, 6, 3, act="relu")
    b5 = net.conv(net.conv(h, 8, 2, 1, act="relu"), 2, 4, 5, act="relu")
    bp = net.conv(net.op("MaxPool", [h], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]), 8, 4, 1, act="relu")
    cat = net.op("Concat", [b1, b3, b5, bp], axis=1)
    h = net.conv(cat, 18, 16, 1, act="relu")
    return net.model(net.op("MaxPool", [h], kernel_shape=[2, 2], strides=[2, 2]))


def vgg_stack():
    net = Net("vgg_stack", 14, [3, 16, 16])
    h = net.conv("x", 3, 8, 3, act="relu")
    h = net.conv(h, 8, 8, 3, act="relu")
    h = net.op("MaxPool", [h], kernel_shape=[2, 2], strides=[2, 2])
    h = net.conv(h, 8, 16, 3, act="relu")
    h = net.conv(h, 16, 16, 3, act="relu")
    h = net.op("MaxPool", [h], kernel_shape=[2, 2], strides=[2, 2])
    f = net.op("Flatten", [h], axis=1)
    return net.model(net.gemm(f, 16 * 4 * 4, 10))


def pool_block():
    net = Net("pool_block", 15, [3, 16, 16])
    h = net.conv("x", 3, 8, 3, act="relu")
    h = net.op("AveragePool", [h], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], count_include_pad=0)
    h = net.conv(h, 8, 8, 3, act="relu")
    h = net.op("MaxPool", [h], kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1], ceil_mode=1)
    h = net.conv(h, 8, 16, 1, act="relu")
    h = net.op("AveragePool", [h], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 0, 0], ceil_mode=1,
               count_include_pad=1)
    return net.model(head(net, h, 16, 10))


def upsample_block():
    net = Net("upsample_block", 16, [3, 16, 16])
    stem = net.conv("x", 3, 8, 3, act="relu")
    d = net.conv(stem, 8, 16, 3, 2, act="relu")
    d = net.conv(d, 16, 8, 1)
    net.inits += [numpy_helper.from_array(np.zeros(0, np.float32), "roi"),
                  numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "up2"),
                  numpy_helper.from_array(np.array([1, 1, 0.75, 0.75], np.float32), "down075")]
    u = net.op("Resize", [d, "roi", "up2"], mode="linear", coordinate_transformation_mode="half_pixel")
    h = net.act(net.op("Add", [u, stem]), "relu")
    h = net.conv(h, 8, 8, 3, act="relu")
    h = net.op("Resize", [h, "roi", "down075"], mode="linear", coordinate_transformation_mode="align_corners")
    return net.model(head(net, h, 8, 10))


def resnet18():
    net = Net("resnet18", 21, [3, 224, 224])
    h = net.conv("x", 3, 64, 7, 2, pad=3, act="relu")
    h = net.op("MaxPool", [h], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    c = 64
    for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        h = basic_block(net, h, c, cout, stride)
        h = basic_block(net, h, cout, cout, 1)
        c = cout
    return net.model(head(net, h, 512, 1000))


def mobilenetv2():
    net = Net("mobilenetv2", 22, [3, 224, 224])
    h = net.conv("x", 3, 32, 3, 2, act="relu6")
    c = 32
    for t, cout, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                          (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            h = inverted_residual(net, h, c, cout, s if i == 0 else 1, t)
            c = cout
    h = net.conv(h, 320, 1280, 1, act="relu6")
    return net.model(head(net, h, 1280, 1000))


SMALL = {"resnet_block": resnet_block, "mobilenet_block": mobilenet_block,
         "inception_block": inception_block, "vgg_stack": vgg_stack, "pool_block": pool_block,
         "upsample_block": upsample_block}
FULL = {"resnet18": resnet18, "mobilenetv2": mobilenetv2}


class Reader(CalibrationDataReader):
    def __init__(self, data):
        self.it = iter([{"x": d[None]} for d in data])

    def get_next(self):
        return next(self.it, None)


def quantize(float_path, out_path, form, calib):
    fmt, act = FORMS[form]
    quantize_static(
        float_path, out_path, Reader(calib),
        quant_format=fmt, per_channel=True,
        activation_type=act, weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )


def session(model_bytes, tmp=None):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    for k, v in CONFIG.items():
        so.add_session_config_entry(k, v)
    if tmp:
        so.optimized_model_filepath = os.path.join(tmp, "optimized.onnx")
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def executed_ops(model_bytes, tmp):
    session(model_bytes, tmp)
    return [n.op_type for n in onnx.load(os.path.join(tmp, "optimized.onnx")).graph.node]


def quantized_initializers(model):
    """The integer model's constants: quantized weights and biases, scales, zero points."""
    keep = ("_quantized", "_scale", "_zero_point")
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer if i.name.endswith(keep)}


def same_integer_model(qop, qdq):
    """Every constant of the QDQ model's integer arithmetic, equal in the QOperator twin.

    Quantized weights and biases must be equal under the same name. An
    activation's scale and zero point can be named differently (the QOperator
    form names a Conv -> Relu output after the Conv, the QDQ form after the
    Relu it removed), so those must be equal as a multiset of values. The QDQ
    form's bias scales (input scale x weight scale, implied in QOperator form)
    are left out."""
    a, b = quantized_initializers(qop), quantized_initializers(qdq)
    b = {n: v for n, v in b.items() if not n.endswith(("bias_quantized_scale", "bias_quantized_zero_point"))}
    key = lambda v: (str(v.dtype), v.shape, v.tobytes())
    weights = [n for n in b if n.endswith("_quantized")]
    missing = sorted(n for n in weights if n not in a)
    differ = sorted(n for n in weights if n in a and key(a[n]) != key(b[n]))
    params_a = sorted(key(v) for n, v in a.items() if not n.endswith("_quantized"))
    params_b = sorted(key(v) for n, v in b.items() if not n.endswith("_quantized"))
    return {"qdq_constants": len(b), "qop_constants": len(a), "missing_in_qop": missing, "differing": differ,
            "scales_and_zero_points_equal": params_a == params_b}


def integer_tensors(model, qdq):
    """Integer tensors computed inside a model: every node output but a DequantizeLinear's in
    QOperator form, every QuantizeLinear output in QDQ form."""
    outs = {o.name for o in model.graph.output}
    keep = (lambda n: n.op_type == "QuantizeLinear") if qdq else (lambda n: n.op_type != "DequantizeLinear")
    return [o for n in model.graph.node if keep(n) for o in n.output if o and o not in outs]


def final_integer(model):
    """The integer tensor the model's float output dequantizes."""
    y = model.graph.output[0].name
    for n in model.graph.node:
        if y in n.output and n.op_type == "DequantizeLinear":
            return n.input[0]
    sys.exit(f"{model.graph.name}: output {y} is not a DequantizeLinear")


def run_tapped(model, x, names, elem):
    tapped = onnx.ModelProto()
    tapped.CopyFrom(model)
    for name in names:
        tapped.graph.output.append(helper.make_tensor_value_info(name, elem, None))
    plain = session(model.SerializeToString()).run(None, {"x": x})
    res = session(tapped.SerializeToString()).run(None, {"x": x})
    for a, b in zip(plain, res):
        if a.tobytes() != b.tobytes():
            sys.exit(f"{model.graph.name}: output changed when tapping intermediate tensors")
    return res


def build_forms(name, fmodel, calib, x, mdir, tmp):
    """Quantize into the four forms, run ORT, return (per-form info, per-form outputs)."""
    fpath = os.path.join(tmp, f"{name}_f32.onnx")
    onnx.save(fmodel, fpath)
    models, info, outs = {}, {}, {}
    for form in FORMS:
        qpath = os.path.join(mdir, f"{form}.onnx")
        quantize(fpath, qpath, form, calib)
        models[form] = onnx.load(qpath)
    # A QDQ form whose integer model is not its twin's (ORT's QDQ quantizer
    # gives AveragePool its input's scale, the QOperator one calibrates it)
    # is its own reference.
    reference = {form: form for form in FORMS}
    # A linear Resize means one thing in QOperator form (ORT interpolates
    # the integers and truncates) and another in QDQ form (in float, then
    # QuantizeLinear rounds): such a QDQ form is its own reference.
    linear_resize = any(n.op_type == "Resize" and any(a.name == "mode" and a.s == b"linear" for a in n.attribute)
                        for n in fmodel.graph.node)
    for act in ("int8", "uint8"):
        qop, qdq = f"qop_{act}", f"qdq_{act}"
        same = same_integer_model(models[qop], models[qdq])
        info[qdq] = {"comparison": same}
        if not (same["missing_in_qop"] or same["differing"] or not same["scales_and_zero_points_equal"]
                or linear_resize):
            reference[qdq] = qop
    for form, m in models.items():
        act = "int8" if form.endswith("_int8") else "uint8"
        elem = TensorProto.INT8 if act == "int8" else TensorProto.UINT8
        names = integer_tensors(m, form.startswith("qdq")) if reference[form] == form else [final_integer(m)]
        res = run_tapped(m, x, names, elem)
        info.setdefault(form, {}).update({
            "model": f"{name}/{form}.onnx",
            "executed_ops": executed_ops(m.SerializeToString(), tmp),
            "reference": reference[form],
        })
        outs[form] = (["y"] + names, res)
    for act in ("int8", "uint8"):
        qop, qdq = f"qop_{act}", f"qdq_{act}"
        same = info[qdq]["comparison"]
        y_qop, y_qdq = outs[qop][1][0], outs[qdq][1][0]
        same["ort_output_elements"] = int(y_qop.size)
        same["ort_output_elements_differing_from_qop"] = int(np.count_nonzero(y_qop != y_qdq))
        if reference[qdq] == qop:
            print(f"{name}/{qdq}: same integer model as {qop} ({same['qdq_constants']} constants); ORT's outputs "
                  f"differ in {same['ort_output_elements_differing_from_qop']} of {y_qop.size} elements")
        else:
            print(f"{name}/{qdq}: NOT the integer model of {qop} ({same}); compared with its own ORT outputs")
    return info, outs


def versions():
    return {"onnxruntime": ort.__version__, "onnx": onnx.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "machine": platform.machine()}


def save_tensors(mdir, name, info, outs):
    """Each form that is its own reference: ORT's float output, then its integer tensors."""
    for form in FORMS:
        if info[form]["reference"] != form:
            continue
        os.makedirs(os.path.join(mdir, form))
        tensors = []
        for i, (tname, arr) in enumerate(zip(*outs[form])):
            np.save(os.path.join(mdir, form, f"{i}.npy"), np.ascontiguousarray(arr))
            tensors.append({"name": tname, "file": f"{form}/{i}.npy", "dtype": str(arr.dtype),
                            "shape": list(arr.shape), "output": i == 0})
        info[form]["tensors"] = tensors


def write_meta(out, models):
    meta = {"generator": "tools/ort-fixtures/cnn_zoo.py", "versions": versions(),
            "session_config": CONFIG, "models": models}
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


def make_full(out_root, tmp):
    """Full-size models, each in <out_root>/<model>/ with its tensors (as the
    small ones), plus input.npy and <form>.output.npy / .output_q.npy (the
    reference's float and integer logits) for other tools."""
    os.makedirs(out_root, exist_ok=True)
    models = {}
    for name, build in FULL.items():
        rng = np.random.default_rng({"resnet18": 31, "mobilenetv2": 32}[name])
        calib = rng.normal(0.0, 1.0, size=[8, 3, 224, 224]).astype(np.float32)
        x = rng.normal(0.0, 1.0, size=[1, 3, 224, 224]).astype(np.float32)
        final = os.path.join(out_root, name)
        mdir = final + ".partial"
        shutil.rmtree(mdir, ignore_errors=True)
        os.makedirs(mdir)
        np.save(os.path.join(mdir, "input.npy"), x)
        info, outs = build_forms(name, build(), calib, x, mdir, tmp)
        for form in FORMS:
            ref = info[form]["reference"]
            np.save(os.path.join(mdir, f"{form}.output.npy"), outs[ref][1][0])
            names, values = outs[ref]
            yq = values[names.index(final_integer(onnx.load(os.path.join(mdir, f"{ref}.onnx"))))]
            np.save(os.path.join(mdir, f"{form}.output_q.npy"), yq)
        save_tensors(mdir, name, info, outs)
        shutil.rmtree(final, ignore_errors=True)
        os.rename(mdir, final)
        models[name] = {"input": f"{name}/input.npy", "forms": info}
        print(f"wrote {final}")
    write_meta(out_root, models)


def make_small(out, tmp):
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    models = {}
    for seed, (name, build) in enumerate(SMALL.items()):
        rng = np.random.default_rng(100 + seed)
        calib = rng.normal(0.0, 1.0, size=[16, 3, 16, 16]).astype(np.float32)
        x = rng.normal(0.0, 1.0, size=[4, 3, 16, 16]).astype(np.float32)
        mdir = os.path.join(out, name)
        os.makedirs(mdir)
        np.save(os.path.join(mdir, "x.npy"), x)
        info, outs = build_forms(name, build(), calib, x, mdir, tmp)
        save_tensors(mdir, name, info, outs)
        models[name] = {"input": f"{name}/x.npy", "forms": info}
    write_meta(out, models)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
    print(f"wrote {out} ({total / 1024:.0f} KiB)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--small-out", default=os.path.join(root, "tests", "data", "ort_cnn"))
    ap.add_argument("--full-out", default=os.path.join(root, "target", "ort-models"))
    ap.add_argument("--only", choices=["small", "full"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.only != "small":
            make_full(args.full_out, tmp)
        if args.only != "full":
            make_small(args.small_out, tmp)


if __name__ == "__main__":
    main()
