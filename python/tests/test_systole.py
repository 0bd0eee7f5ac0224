"""The Python package against the command line: the same program, outputs,
report and sweep, bit for bit, and the same error messages.

Needs the package installed (`pip install ./python`) and the command line
built (`cargo build --release`); SYSTOLE_BIN names it (default
target/release/systole). `bash scripts/test.sh python` does all three.
"""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import systole

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "examples" / "models"
DIGITS = MODELS / "digits_cnn_nm24.onnx"
X = MODELS / "digits_x.npy"
BIN = Path(os.environ.get("SYSTOLE_BIN", ROOT / "target" / "release" / "systole"))


def cli(*args, check=True):
    r = subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"systole {' '.join(map(str, args))} exited {r.returncode}: {r.stderr}")
    return r


def cli_error(*args):
    """The message of the command line's `error: ...` line."""
    r = cli(*args, check=False)
    assert r.returncode == 2, r
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("error: "), line
    return line[len("error: "):]


def without_files(report):
    """A run report less what names files (the CLI's are paths, Python's arrays)."""
    r = json.loads(json.dumps(report))
    del r["program"]
    for side in ("input", "output"):
        del r[side]["file"]
    return r


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """The digits CNN compiled and run (checked) by the command line."""
    d = tmp_path_factory.mktemp("cli")
    cli("compile", DIGITS, "--hw", ROOT / "examples/hw/tiny.toml", "-o", d / "cnn.sbin")
    cli("run", d / "cnn.sbin", "--input", X, "--out", d / "out", "--check", "--json", d / "report.json")
    (out,) = list((d / "out").glob("*.npy"))
    return {
        "sbin": d / "cnn.sbin",
        "output": np.load(out),
        "output_name": out.stem,
        "report": json.loads((d / "report.json").read_text()),
    }


def test_compile_gives_the_cli_program(cli_run, tmp_path):
    prog = systole.compile(str(DIGITS), hw=ROOT / "examples/hw/tiny.toml")
    assert prog.to_bytes() == cli_run["sbin"].read_bytes()
    # The preset, a dict and the model's bytes compile the same program.
    assert systole.compile(DIGITS, hw="tiny").to_bytes() == prog.to_bytes()
    assert systole.compile(DIGITS.read_bytes(), hw=prog.config).to_bytes() == prog.to_bytes()
    prog.save(tmp_path / "p.sbin")
    again = systole.load(tmp_path / "p.sbin")
    assert again.to_bytes() == prog.to_bytes() and again.name == str(tmp_path / "p.sbin")
    assert systole.load(prog.to_bytes()).fingerprint == prog.fingerprint
    (tin,) = prog.inputs
    assert tin["shape"] == [1, 1, 8, 8]
    assert prog.config["array"]["rows"] == 4


def test_run_equals_cli_bit_for_bit(cli_run):
    prog = systole.load(cli_run["sbin"])
    x = np.load(X)
    outputs, report = systole.run(prog, x, check=True)
    (name,) = outputs
    y = outputs[name]
    assert y.dtype == np.float32 and y.shape == cli_run["output"].shape == (32, 1, 10)
    assert np.array_equal(y.view(np.uint32), cli_run["output"].view(np.uint32))
    cli_report = cli_run["report"]
    assert report["total_cycles"] == cli_report["total_cycles"] > 0
    assert report["check"]["passed"] and report["check"]["runs"] == 32
    # The whole report is the CLI's, but for the file names.
    assert without_files(report) == without_files(cli_report)
    assert report["program"] == str(cli_run["sbin"])


def test_run_spreads_a_batch_over_threads_with_the_same_results(cli_run):
    prog = systole.load(cli_run["sbin"])
    x = np.load(X)
    out1, rep1 = systole.run(prog, x, threads=1)
    out3, rep3 = systole.run(prog, x, threads=3)
    (y1,), (y3,) = out1.values(), out3.values()
    assert np.array_equal(y1.view(np.uint32), cli_run["output"].view(np.uint32))
    assert np.array_equal(y3.view(np.uint32), y1.view(np.uint32))
    assert rep3 == rep1 and rep1["total_cycles"] == cli_run["report"]["total_cycles"]
    with pytest.raises(systole.SystoleError, match="threads: must be at least 1"):
        systole.run(prog, x, threads=0)


def test_run_takes_a_dict_a_model_and_quantized_inputs(cli_run):
    prog = systole.load(cli_run["sbin"])
    (tin,) = prog.inputs
    x = np.load(X)
    # One inference, named, from a non-contiguous view: the first of the batch.
    strided = np.ascontiguousarray(x[:2])[::2]
    out1, rep1 = systole.run(prog, {tin["name"]: strided[0]})
    (y1,) = out1.values()
    assert np.array_equal(y1.view(np.uint32), cli_run["output"][0].view(np.uint32))
    # A model (compiled here for hw) runs as its program does.
    out2, rep2 = systole.run(DIGITS, x[0], hw="tiny")
    assert rep2["total_cycles"] == rep1["total_cycles"]
    assert np.array_equal(next(iter(out2.values())), y1)
    # Inputs already quantized in the input's type.
    q = np.clip(np.round(x[0] / tin["scale"]) + tin["zero_point"], -128, 127).astype(np.int8)
    if tin["dtype"] == "u8":
        q = np.clip(np.round(x[0] / tin["scale"]) + tin["zero_point"], 0, 255).astype(np.uint8)
    outq, _ = systole.run(prog, q)
    assert np.array_equal(next(iter(outq.values())), y1)


def test_errors_carry_the_cli_messages(cli_run, tmp_path):
    missing = tmp_path / "missing.toml"
    with pytest.raises(systole.SystoleError) as e:
        systole.compile(DIGITS, hw=missing)
    assert str(e.value) == cli_error("compile", DIGITS, "--hw", missing, "-o", tmp_path / "o.sbin")
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[array]\nrows = 1\n')
    with pytest.raises(systole.SystoleError) as e:
        systole.compile(DIGITS, hw=bad)
    assert str(e.value) == cli_error("compile", DIGITS, "--hw", bad, "-o", tmp_path / "o.sbin")
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((3, 3), np.float32))
    with pytest.raises(systole.SystoleError) as e:
        systole.run(systole.load(cli_run["sbin"]), np.zeros((3, 3), np.float32))
    assert str(e.value) == cli_error("run", cli_run["sbin"], "--input", wrong, "--out", tmp_path / "o").replace(
        f"--input {wrong}", "inputs"
    )
    with pytest.raises(systole.SystoleError, match="float64"):
        systole.run(systole.load(cli_run["sbin"]), np.zeros((1, 1, 8, 8)))
    with pytest.raises(systole.SystoleError, match="unknown backend"):
        systole.run(systole.load(cli_run["sbin"]), np.load(X)[0], backend="fpga")
    assert issubclass(systole.CheckError, systole.SystoleError)
    nowhere = tmp_path / "no-such-dir" / "p.sbin"
    with pytest.raises(systole.SystoleError, match="cannot write .*no-such-dir/p.sbin: no such file or directory"):
        systole.load(cli_run["sbin"]).save(nowhere)
    assert not nowhere.parent.exists()


def test_sweep_equals_cli(tmp_path):
    cli(
        "sweep", DIGITS, "--hw", "tiny", "--set", "array=4,8", "--set", "dram.latency_cycles=50,200",
        "--input", X, "--json", tmp_path / "s.json",
    )
    cli_points = json.loads((tmp_path / "s.json").read_text())["points"]
    x = np.load(X)
    points = systole.sweep(DIGITS, "tiny", {"array": [4, 8], "dram.latency_cycles": [50, 200]}, x)
    assert points == cli_points
    assert [p["status"] for p in points] == ["ok"] * 4
    assert all(p["output_identical"] for p in points)
    assert systole.sweep(DIGITS, "tiny", ["array=4,8", "dram.latency_cycles=50,200"], x) == cli_points
    assert "tiny" in systole.presets()
    # A list value (`a+b` on the command line) and a single value.
    cli(
        "sweep", DIGITS, "--hw", "tiny", "--set", "array.weight_precisions=int8,int8+int4",
        "--set", "dram.latency_cycles=100", "--input", X, "--json", tmp_path / "l.json",
    )
    listed = json.loads((tmp_path / "l.json").read_text())["points"]
    assert [p["params"]["array.weight_precisions"] for p in listed] == [["int8"], ["int8", "int4"]]
    grid = {"array.weight_precisions": [["int8"], ["int8", "int4"]], "dram.latency_cycles": 100}
    assert systole.sweep(DIGITS, "tiny", grid, {"x": x}) == listed


def test_compare_equals_cli(tmp_path):
    digits = ROOT / "compiler" / "tests" / "data" / "digits"
    models = [digits / "cnn_dense" / "fp32.onnx", digits / "cnn_dense" / "int8_qop.onnx", digits / "mlp_dense" / "int8_qdq.onnx"]
    x, y = digits / "ref_x_f32.npy", digits / "ref_y.npy"
    cli("compare", *models, "--hw", "tiny", "--input", x, "--labels", y, "--json", tmp_path / "c.json")
    want = json.loads((tmp_path / "c.json").read_text())
    got = systole.compare([str(m) for m in models], "tiny", np.load(x), labels=np.load(y))
    # The CLI names its files (`--input PATH`), Python its arguments.
    assert (got.pop("input"), got.pop("labels")) == ("inputs", "labels")
    del want["input"], want["labels"]
    assert got == want
    rows = got["rows"]
    assert [r["runs_on"] for r in rows] == ["host", "accelerator", "accelerator"]
    assert rows[0]["device"] is None and rows[1]["device"]["cycles_per_inference"] > 0
    # Without labels: agreement only; errors carry the CLI's messages.
    bare = systole.compare([str(m) for m in models[1:]], "tiny", np.load(x))
    assert [r["top1_accuracy"] for r in bare["rows"]] == [None, None]
    assert bare["rows"][0]["top1_agreement"] == 1.0
    with pytest.raises(systole.SystoleError, match="compare takes float32 samples"):
        systole.compare([str(models[1])], "tiny", np.load(x).astype(np.int8))
    with pytest.raises(systole.SystoleError, match="labels of shape 3"):
        systole.compare([str(models[1])], "tiny", np.load(x), labels=np.zeros(3, dtype=np.int64))
