#!/usr/bin/env bash
# The RTL test tier: lints and synthesizes every Verilog file, and runs the
# verilated RTL against the Rust definitions (`cargo test -p rtl --features
# verilator`). Installs Verilator and yosys from Debian's packages when they
# are missing (root, or sudo).
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
cargo test -p rtl --features verilator --release --locked
