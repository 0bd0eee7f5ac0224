#!/usr/bin/env python3
"""Make the ONNX Runtime fixtures of `compiler/tests/ort_transformers.rs`.

Copies the shared transformer test models (`tinybert`, `tinybert_nm24`,
`tinygpt`, both QDQ variants: `int8_qdq_float_matmul_out.onnx` and
`int8_qdq.onnx`; see the models' README for how they were exported and
quantized) into `compiler/tests/data/transformers/<model>/`, with their 16
reference token sequences, and runs each in ONNX Runtime twice: with the
default optimizations (the reference) and with `ORT_DISABLE_ALL` (QDQ
executed literally), writing

  <model>/<variant>.last_hidden_state.npy        [16, 32, 128] float32, optimized
  <model>/<variant>.last_hidden_state_noopt.npy  the same, ORT_DISABLE_ALL
  <model>/inputs/<input>.npy                      [16, 32] int64 per model input
  meta.json                                       per model and variant: ORT's own
      spread (optimized vs unoptimized, per real token: mean and min cosine,
      max abs difference), the versions used

The script checks that the outputs it computes equal the ones shipped with
the shared models (the same ORT version gives the same numbers).

    python3 tools/ort-fixtures/transformers.py [--models /work/shared/models]
    cargo test --release -p compiler --test ort_transformers -- --nocapture

Made with onnxruntime 1.32.0, onnx 1.23.2, numpy 2.x (Python 3.11).
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np
import onnx
import onnxruntime as ort

MODELS = {
    "tinybert": ["int8_qdq_float_matmul_out", "int8_qdq"],
    "tinybert_nm24": ["int8_qdq_float_matmul_out"],
    "tinygpt": ["int8_qdq_float_matmul_out", "int8_qdq"],
}
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "compiler", "tests", "data", "transformers")


def run(path, feeds, level):
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    outs = []
    for k in range(len(next(iter(feeds.values())))):
        r = s.run(["last_hidden_state"], {n: v[k : k + 1] for n, v in feeds.items()})
        outs.append(r[0][0])
    return np.stack(outs).astype(np.float32)


def spread(a, b, real):
    a, b = a[real], b[real]
    cos = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return {"mean_cosine": float(cos.mean()), "min_cosine": float(cos.min()), "max_abs": float(np.abs(a - b).max())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="/work/shared/models")
    args = ap.parse_args()
    meta = {"onnxruntime": ort.__version__, "onnx": onnx.__version__, "numpy": np.__version__, "models": {}}
    for model, variants in MODELS.items():
        src = os.path.join(args.models, model)
        dst = os.path.join(OUT, model)
        os.makedirs(os.path.join(dst, "inputs"), exist_ok=True)
        names = [i.name for i in onnx.load(os.path.join(src, variants[0] + ".onnx")).graph.input]
        feeds = {n: np.load(os.path.join(src, f"ref_{n}.npy")) for n in names}
        for n, v in feeds.items():
            np.save(os.path.join(dst, "inputs", n + ".npy"), v)
        real = feeds["attention_mask"].astype(bool) if "attention_mask" in feeds else np.ones(feeds["input_ids"].shape, bool)
        meta["models"][model] = {"inputs": names, "real_tokens": int(real.sum()), "variants": {}}
        for var in variants:
            shutil.copyfile(os.path.join(src, var + ".onnx"), os.path.join(dst, var + ".onnx"))
            p = os.path.join(dst, var + ".onnx")
            opt = run(p, feeds, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
            noopt = run(p, feeds, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
            for arr, suffix in ((opt, ""), (noopt, "_noopt")):
                shipped = np.load(os.path.join(src, f"ref_{var}_last_hidden_state{suffix}.npy"))
                if not np.array_equal(arr, shipped):
                    print(f"{model} {var}{suffix}: differs from the shared reference by {np.abs(arr - shipped).max()}",
                          file=sys.stderr)
                np.save(os.path.join(dst, f"{var}.last_hidden_state{suffix}.npy"), arr)
            meta["models"][model]["variants"][var] = {"ort_opt_vs_noopt": spread(opt, noopt, real)}
            print(model, var, meta["models"][model]["variants"][var])
    with open(os.path.join(OUT, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
