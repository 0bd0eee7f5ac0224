"""Small CNNs with element-wise unary ops and a requantizing Concat,
quantized by ONNX Runtime, with ORT's outputs: the reference data of the
root test `tests/ort_lut.rs` (`compiler/tests/data/lut_models/`).

Models (opset 17, random He-initialised weights, 8x8 images):
- `unary`: Conv -> Sigmoid -> Conv -> Tanh -> Conv -> HardSigmoid -> Conv
  -> HardSwish -> Conv -> LeakyRelu -> Conv -> Clip(-0.4, 0.9) -> Conv;
- `inception`: a stem Conv, then four branches with their own scales
  (1x1 Conv + Relu; 1x1 -> 3x3 Conv + Sigmoid; 3x3 MaxPool -> 1x1 Conv;
  1x1 Conv + LeakyRelu), Concat on channels, a 1x1 Conv;
- `resize`: Convs with nearest Resizes between them in every coordinate
  transformation mode and nearest mode ORT's CPU kernel has (but
  half_pixel_symmetric and tf_crop_and_resize), by scales and by sizes, up
  and down, integer and fractional factors.
Each quantized by `quantize_static` in QOperator and QDQ form, int8 and
uint8 activations (per-channel int8 weights), calibrated on 16 random
inputs. ORT runs every model on 16 other inputs with the session option
`session.qdqisint8allowed = 1` (so int8 QDQ stays int8); `meta.json`
records the operators ORT executed.

Usage: python3 tools/ort-fixtures/lut_models.py   (rewrites compiler/tests/data/lut_models/)
"""

import json
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

OUT = "compiler/tests/data/lut_models"
SHAPE = [1, 3, 8, 8]
SAMPLES = 16
rng = np.random.default_rng(7)


def conv(nodes, inits, name, x, cin, cout, k, act=None, **act_attrs):
    w = (rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k))).astype(np.float32)
    b = (rng.standard_normal(cout) * 0.1).astype(np.float32)
    inits += [numpy_helper.from_array(w, name + "_w"), numpy_helper.from_array(b, name + "_b")]
    nodes.append(helper.make_node("Conv", [x, name + "_w", name + "_b"], [name], pads=[k // 2] * 4))
    if act is None:
        return name
    if act == "Clip":
        lo, hi = act_attrs.pop("bounds")
        inits += [numpy_helper.from_array(np.float32(lo), name + "_lo"), numpy_helper.from_array(np.float32(hi), name + "_hi")]
        nodes.append(helper.make_node("Clip", [name, name + "_lo", name + "_hi"], [name + "_a"]))
    else:
        nodes.append(helper.make_node(act, [name], [name + "_a"], **act_attrs))
    return name + "_a"


def unary_model():
    nodes, inits = [], []
    x = conv(nodes, inits, "c1", "x", 3, 8, 3, "Sigmoid")
    x = conv(nodes, inits, "c2", x, 8, 8, 1, "Tanh")
    x = conv(nodes, inits, "c3", x, 8, 8, 3, "HardSigmoid", alpha=0.25, beta=0.4)
    x = conv(nodes, inits, "c4", x, 8, 8, 1, "HardSwish")
    x = conv(nodes, inits, "c5", x, 8, 8, 3, "LeakyRelu", alpha=0.1)
    x = conv(nodes, inits, "c6", x, 8, 8, 1, "Clip", bounds=(-0.4, 0.9))
    y = conv(nodes, inits, "c7", x, 8, 4, 1)
    return nodes, inits, y, [1, 4, 8, 8]


def inception_model():
    nodes, inits = [], []
    s = conv(nodes, inits, "stem", "x", 3, 8, 3, "Relu")
    a = conv(nodes, inits, "a", s, 8, 4, 1, "Relu")
    b = conv(nodes, inits, "b1", s, 8, 6, 1, "Relu")
    b = conv(nodes, inits, "b2", b, 6, 6, 3, "Sigmoid")
    nodes.append(helper.make_node("MaxPool", [s], ["p"], kernel_shape=[3, 3], pads=[1] * 4, strides=[1, 1]))
    c = conv(nodes, inits, "c", "p", 8, 5, 1)
    d = conv(nodes, inits, "d", s, 8, 3, 1, "LeakyRelu", alpha=0.2)
    nodes.append(helper.make_node("Concat", [a, b, c, d], ["cat"], axis=1))
    y = conv(nodes, inits, "head", "cat", 18, 6, 1)
    return nodes, inits, y, [1, 6, 8, 8]


def resize(nodes, inits, name, x, coord, nearest, scales=None, sizes=None):
    ins = [x, ""]
    if scales is not None:
        inits.append(numpy_helper.from_array(np.array(scales, np.float32), name + "_scales"))
        ins.append(name + "_scales")
    else:
        inits.append(numpy_helper.from_array(np.array(sizes, np.int64), name + "_sizes"))
        ins += ["", name + "_sizes"]
    nodes.append(
        helper.make_node(
            "Resize", ins, [name], mode="nearest", coordinate_transformation_mode=coord, nearest_mode=nearest
        )
    )
    return name


def resize_model():
    nodes, inits = [], []
    x = conv(nodes, inits, "c1", "x", 3, 6, 3, "Relu")
    x = resize(nodes, inits, "r1", x, "asymmetric", "floor", scales=[1, 1, 2, 2])
    x = conv(nodes, inits, "c2", x, 6, 6, 3, "Relu")
    x = resize(nodes, inits, "r2", x, "half_pixel", "round_prefer_floor", sizes=[1, 6, 11, 7])
    x = conv(nodes, inits, "c3", x, 6, 6, 1)
    x = resize(nodes, inits, "r3", x, "align_corners", "round_prefer_ceil", sizes=[1, 6, 6, 9])
    x = conv(nodes, inits, "c4", x, 6, 6, 1, "Sigmoid")
    x = resize(nodes, inits, "r4", x, "pytorch_half_pixel", "ceil", scales=[1, 1, 1.5, 0.75])
    x = conv(nodes, inits, "c5", x, 6, 6, 1)
    x = resize(nodes, inits, "r5", x, "tf_half_pixel_for_nn", "round_prefer_floor", scales=[1, 1, 1.7, 1.3])
    y = conv(nodes, inits, "c6", x, 6, 4, 1)
    return nodes, inits, y, [1, 4, 15, 7]


class Reader(CalibrationDataReader):
    def __init__(self, xs):
        self.it = iter([{"x": x} for x in xs])

    def get_next(self):
        return next(self.it, None)


def session(path):
    so = ort.SessionOptions()
    so.add_session_config_entry("session.qdqisint8allowed", "1")
    so.log_severity_level = 3
    so.optimized_model_filepath = path + ".opt.onnx"
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    ops = sorted({n.op_type for n in onnx.load(path + ".opt.onnx").graph.node})
    os.remove(path + ".opt.onnx")
    return s, ops


def main():
    os.makedirs(OUT, exist_ok=True)
    calib = [rng.standard_normal(SHAPE).astype(np.float32) for _ in range(16)]
    xs = rng.standard_normal([SAMPLES] + SHAPE[1:]).astype(np.float32)
    np.save(os.path.join(OUT, "x.npy"), xs)
    meta = {"versions": {"onnxruntime": ort.__version__, "onnx": onnx.__version__, "numpy": np.__version__}, "models": {}}
    for name, build in [("unary", unary_model), ("inception", inception_model), ("resize", resize_model)]:
        nodes, inits, y, yshape = build()
        graph = helper.make_graph(
            nodes,
            name,
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
            [helper.make_tensor_value_info(y, TensorProto.FLOAT, yshape)],
            inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        fp = os.path.join(OUT, f"{name}_f32.onnx")
        onnx.save(model, fp)
        for act in ("i8", "u8"):
            for form in ("qop", "qdq"):
                path = os.path.join(OUT, f"{name}_{act}_{form}.onnx")
                quantize_static(
                    fp,
                    path,
                    Reader(calib),
                    quant_format=QuantFormat.QOperator if form == "qop" else QuantFormat.QDQ,
                    activation_type=QuantType.QInt8 if act == "i8" else QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    per_channel=True,
                )
                s, ops = session(path)
                out = np.concatenate([s.run(None, {"x": xs[i : i + 1]})[0] for i in range(SAMPLES)])
                np.save(os.path.join(OUT, f"{name}_{act}_{form}_y.npy"), out)
                meta["models"][f"{name}_{act}_{form}"] = {"executed_ops": ops}
                print(name, act, form, ops)
        os.remove(fp)
    with open(os.path.join(OUT, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)


if __name__ == "__main__":
    main()
