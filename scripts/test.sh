#!/usr/bin/env bash
# The project's tests, in three tiers:
#   rust  everything that needs only Rust: the ISA, the compiler, the model,
#         the driver, the CLI (`cargo test --workspace`);
#   rtl   the Verilog: every file linted and synthesized, the verilated
#         accelerator checked against the model to the cycle, the CLI's
#         rtl/both backends and `systole area`. Installs Verilator and yosys
#         from Debian's packages when they are missing (as root, or with sudo).
#   ort   full-size ResNet-18 and MobileNetV2 with random
#         weights, quantized by ONNX Runtime: pip-installs onnx, onnxruntime
#         and numpy (the versions the fixtures were made with), makes the
#         models into target/ort-models with tools/ort-fixtures/cnn_zoo.py,
#         and checks every layer of all eight forms bit for bit.
# `bash scripts/test.sh` runs all three in that order; `bash scripts/test.sh
# rust` (or `rtl`, `ort`) runs one.
set -euo pipefail
cd "$(dirname "$0")/.."
tiers=("$@")
[ ${#tiers[@]} -gt 0 ] || tiers=(rust rtl ort)

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
        echo "== tier rtl: cargo test --features rtl (the rtl crate and the CLI)" >&2
        # `--features rtl` turns on the RTL backend of the CLI and the rtl
        # crate's `verilator` feature with its tests; the other crates do not
        # change with it, so their tests ran in the Rust tier.
        cargo test --release --locked --features rtl -p rtl -p systole
        ;;
    ort)
        echo "== tier ort: full-size CNNs against ONNX Runtime" >&2
        python3 -m pip install --quiet onnx==1.23.2 onnxruntime==1.32.0 numpy
        python3 tools/ort-fixtures/cnn_zoo.py --only full --full-out target/ort-models
        cargo test --release --locked --test ort_cnn -- --ignored --nocapture
        ;;
    *)
        echo "usage: scripts/test.sh [rust] [rtl] [ort]" >&2
        exit 2
        ;;
    esac
done
