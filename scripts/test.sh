#!/usr/bin/env bash
# The project's tests, all of them: the Rust model, the compiler, the CLI,
# and the RTL (every Verilog file linted and synthesized; the verilated
# accelerator checked against the model to the cycle; the CLI's rtl/both
# backends). Installs Verilator and yosys from Debian's packages when they
# are missing (as root, or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v verilator >/dev/null || ! command -v yosys >/dev/null; then
    echo "installing verilator and yosys (apt-get)" >&2
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq verilator yosys
fi
verilator --version
yosys -V
# Release: the verilated models and the long property tests run ~10x
# faster; `--features rtl` turns on the RTL backend (and the rtl crate's
# `verilator` feature with its tests).
cargo test --workspace --release --locked --features rtl
