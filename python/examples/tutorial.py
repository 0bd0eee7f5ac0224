"""docs/python.md, runnable: a small CNN built with onnx.helper (the
stand-in for a PyTorch export), quantized by ONNX Runtime's quantize_static,
compiled and run by systole from Python, and checked against ORT.

    pip install ./python onnx==1.23.2 onnxruntime==1.32.0
    python python/examples/tutorial.py [OUT_DIR]
"""

import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

import systole

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)

# 1. A float model: conv 3x3 (1 -> 8 channels) -> relu -> 2x2 max pool ->
#    flatten -> dense (128 -> 10), on 1x1x8x8 images. With PyTorch this is
#    `torch.onnx.export(net, torch.randn(1, 1, 8, 8), "cnn.onnx", ...)`.
def init(name, a):
    return numpy_helper.from_array(a.astype(np.float32), name)

graph = helper.make_graph(
    [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p1"], ["f1"], axis=1),
        helper.make_node("Gemm", ["f1", "w2", "b2"], ["logits"], transB=1),
    ],
    "tutorial_cnn",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
    [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
    [
        init("w1", rng.normal(0, 0.5, (8, 1, 3, 3))),
        init("b1", rng.normal(0, 0.1, 8)),
        init("w2", rng.normal(0, 0.1, (10, 128))),
        init("b2", rng.normal(0, 0.1, 10)),
    ],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, out / "cnn_f32.onnx")

# 2. Static quantization with ONNX Runtime: per-tensor activations, int8
#    per-channel weights, MinMax calibration on sample inputs.
calib = rng.random((16, 1, 1, 8, 8), dtype=np.float32)


class Reader(CalibrationDataReader):
    def __init__(self):
        self.items = iter({"x": x} for x in calib)

    def get_next(self):
        return next(self.items, None)


quantize_static(
    out / "cnn_f32.onnx", out / "cnn_int8.onnx", Reader(),
    quant_format=QuantFormat.QOperator, per_channel=True,
    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
    calibrate_method=CalibrationMethod.MinMax,
)

# 3. Compile for a hardware configuration (a preset, a TOML file or a dict)
#    and run a batch of inputs on the cycle-accurate model, every layer
#    checked against the reference interpreter.
prog = systole.compile(out / "cnn_int8.onnx", hw="tiny")
prog.save(out / "cnn.sbin")
x = rng.random((8, 1, 1, 8, 8), dtype=np.float32)
outputs, report = systole.run(prog, x, check=True)
logits = outputs["logits"]
per = report["per_inference"]
print(f"{logits.shape[0]} inferences, {per['cycles_mean']:.0f} cycles and {per['energy_uj']:.4f} µJ each "
      f"on `{report['config']['name']}`; check: {report['check']['layers']} layers bit for bit")

# 4. The same inputs through ONNX Runtime: the quantized model's outputs.
so = ort.SessionOptions()
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
sess = ort.InferenceSession(str(out / "cnn_int8.onnx"), so, providers=["CPUExecutionProvider"])
expected = np.stack([sess.run(None, {"x": xi})[0] for xi in x])
same = np.array_equal(logits.view(np.uint32), expected.view(np.uint32))
print(f"ONNX Runtime: {'equal bit for bit' if same else 'DIFFERENT'}; max |diff| {np.abs(logits - expected).max()}")

# 5. Weigh hardware choices: a sweep over array sizes and DRAM latency.
points = systole.sweep(out / "cnn_int8.onnx", "tiny", {"array": [4, 8], "dram.latency_cycles": [50, 200]}, x[0])
for p in points:
    print(p["params"], p["status"], p["cycles"], "cycles", f"{p['energy_uj']:.4f} µJ", f"{p['area_mm2']:.3f} mm²")
assert same and all(p["output_identical"] for p in points)
