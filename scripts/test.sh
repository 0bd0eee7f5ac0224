#!/usr/bin/env bash
# The project's tests, in four tiers:
#   rust  everything that needs only Rust: the ISA, the compiler, the model,
#         the driver, the CLI (`cargo test --workspace`);
#   rtl   the Verilog: every file linted and synthesized, the verilated
#         accelerator checked against the model to the cycle, the CLI's
#         rtl/both backends and `systole area`. Installs Verilator and yosys
#         from Debian's packages when they are missing (as root, or with sudo).
#         With `--features rtl` it runs every test of the rtl crate and, of
#         the CLI's, the unit tests and the test files that mention the
#         feature (the others do not change with it and ran in the Rust
#         tier). It reuses the Rust tier's build but for rtl and the CLI
#         (rtl/Cargo.toml keeps the shared dependencies' features equal).
#   ort   full-size ResNet-18 and MobileNetV2 with random
#         weights, quantized by ONNX Runtime: pip-installs onnx, onnxruntime
#         and numpy (the versions the fixtures were made with), makes the
#         models into target/ort-models with tools/ort-fixtures/cnn_zoo.py,
#         and checks every layer of all eight forms bit for bit.
#   python the Python package: a venv in target/python-venv with the pinned
#         maturin, `pip install ./python` (one abi3 wheel), and
#         python/tests against the command line (same programs, outputs,
#         reports and sweeps bit for bit), and the tutorial. The wheel is
#         built in the root's target/ (CARGO_TARGET_DIR), so it reuses the
#         Rust tier's dependencies and compiles only pyo3, numpy, the crates
#         their features change and the CLI library; the package is outside
#         the root workspace, so only this tier sees it break.
# `bash scripts/test.sh` runs all four in that order; `bash
# scripts/test.sh rust` (or `rtl`, `ort`, `python`) runs one.
set -euo pipefail
cd "$(dirname "$0")/.."
tiers=("$@")
[ ${#tiers[@]} -gt 0 ] || tiers=(rust rtl ort python)

install_hdl_tools() {
    if ! command -v verilator >/dev/null || ! command -v yosys >/dev/null; then
        echo "installing verilator and yosys (apt-get)" >&2
        local sudo=""
        [ "$(id -u)" = 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        $sudo apt-get install -y -qq verilator yosys
    fi
    verilator --version
    yosys -V
}

for tier in "${tiers[@]}"; do
    case "$tier" in
    rust)
        echo "== tier rust: cargo test --workspace" >&2
        # Release: the long property tests run ~10x faster.
        cargo test --workspace --release --locked
        ;;
    rtl)
        install_hdl_tools
        echo "== tier rtl: cargo test --features rtl (the rtl crate and the CLI's RTL tests)" >&2
        # `--features rtl` turns on the RTL backend of the CLI and the rtl
        # crate's `verilator` feature with its tests; the other crates do not
        # change with it, so their tests ran in the Rust tier, and neither do
        # the CLI's test files that never mention the feature. One cargo
        # invocation for both packages, so both see the same features.
        rtl_tests=()
        for f in rtl/tests/*.rs $(grep -l 'feature = "rtl"' tests/*.rs); do
            rtl_tests+=(--test "$(basename "$f" .rs)")
        done
        cargo test --release --locked --features rtl -p rtl -p systole --lib --bins "${rtl_tests[@]}"
        ;;
    ort)
        echo "== tier ort: full-size CNNs against ONNX Runtime" >&2
        python3 -m pip install --quiet onnx==1.23.2 onnxruntime==1.32.0 numpy
        python3 tools/ort-fixtures/cnn_zoo.py --only full --full-out target/ort-models
        cargo test --release --locked --test ort_cnn -- --ignored --nocapture
        ;;
    python)
        echo "== tier python: the Python package against the command line" >&2
        cargo build --release --locked
        venv=target/python-venv
        [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet maturin==1.16.0 numpy==2.4.6 pytest==8.4.2
        # The pinned maturin from the venv (no build isolation); --locked:
        # python/Cargo.lock as committed.
        # CARGO_TARGET_DIR: build in the root's target/, reusing the Rust
        # tier's artifacts (python/Cargo.toml has the same release profile).
        PATH="$PWD/$venv/bin:$PATH" MATURIN_PEP517_ARGS="--locked" CARGO_TARGET_DIR="$PWD/target" \
            "$venv/bin/python" -m pip install --quiet --no-build-isolation ./python
        SYSTOLE_BIN="$PWD/target/release/systole" "$venv/bin/python" -m pytest -q python/tests
        # docs/python.md's tutorial: ORT-quantized CNN, compiled, run, checked
        # against ONNX Runtime bit for bit, swept.
        "$venv/bin/python" -m pip install --quiet onnx==1.23.2 onnxruntime==1.32.0
        "$venv/bin/python" python/examples/tutorial.py target/python-tutorial
        ;;
    *)
        echo "usage: scripts/test.sh [rust] [rtl] [ort] [python]" >&2
        exit 2
        ;;
    esac
done
