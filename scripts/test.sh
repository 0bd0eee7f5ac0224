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
#         Built once, then run as two lanes side by side (yosys is
#         single-threaded and most RTL tests take turns on one device, so
#         one lane alone leaves a core idle): the synthesis lane (area, then
#         the CLI's area tests, which read area's stored synthesis, pe_area,
#         hdl_lint) and the simulation lane (everything else). A verilated
#         configuration is built once per cache: a build in progress is
#         waited for (a lock file per library, rtl/src/verilate.rs).
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
# scripts/test.sh rust` (or `rtl`, `ort`, `python`) runs one. `bash
# scripts/test.sh setup` only installs what the tiers download (the HDL
# tools, the ORT tier's and the Python tier's packages, the ORT tier's
# models); .ci/run runs it in the background while the Rust tier builds.
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

# The ORT tier's packages (the versions the fixtures were made with) and
# models, made into target/ort-models once per version of the script that
# makes them (its hash is kept beside them).
ort_setup() {
    python3 -m pip install --quiet onnx==1.23.2 onnxruntime==1.32.0 numpy
    local made_by
    made_by=$(sha256sum tools/ort-fixtures/cnn_zoo.py)
    if [ "$(cat target/ort-models/.made-by 2>/dev/null)" != "$made_by" ]; then
        python3 tools/ort-fixtures/cnn_zoo.py --only full --full-out target/ort-models
        echo "$made_by" >target/ort-models/.made-by
    fi
}

# The Python tier's venv, with the pinned maturin and what the tests and
# the tutorial import.
venv=target/python-venv
python_setup() {
    mkdir -p target
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet maturin==1.16.0 numpy==2.4.6 pytest==8.4.2 \
        onnx==1.23.2 onnxruntime==1.32.0
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
        # the CLI's test files that never mention the feature. Every cargo
        # invocation names both packages, so all see the same features and
        # share one build.
        rtl_cargo=(cargo test --release --locked --features rtl -p rtl -p systole)
        all=()
        for f in rtl/tests/*.rs $(grep -l 'feature = "rtl"' tests/*.rs); do
            all+=("$(basename "$f" .rs)")
        done
        # The synthesis lane, in this order: area first (it synthesizes the
        # 4x4 uncached and stores it; cli_area's tests then read it).
        synth=(area cli_area pe_area hdl_lint)
        sim=()
        for t in "${all[@]}"; do
            [[ " ${synth[*]} " == *" $t "* ]] || sim+=("$t")
        done
        args=(--lib --bins)
        for t in "${all[@]}"; do args+=(--test "$t"); done
        "${rtl_cargo[@]}" "${args[@]}" --no-run
        lane() { # lane NAME TEST... : the tests one after another, output to target/rtl-lane-NAME.log
            local name=$1 t status=0
            shift
            for t in "$@"; do
                if [ "$t" = lib ]; then
                    "${rtl_cargo[@]}" --lib --bins || status=1
                else
                    "${rtl_cargo[@]}" --test "$t" || status=1
                fi
            done >"target/rtl-lane-$name.log" 2>&1
            return $status
        }
        start=$SECONDS
        lane synth "${synth[@]}" &
        synth_pid=$!
        lane sim lib "${sim[@]}" &
        sim_pid=$!
        failed=()
        wait $sim_pid || failed+=(sim)
        echo "== rtl lane sim (${sim[*]}): $((SECONDS - start)) s" >&2
        cat target/rtl-lane-sim.log
        wait $synth_pid || failed+=(synth)
        echo "== rtl lane synth (${synth[*]}): $((SECONDS - start)) s" >&2
        cat target/rtl-lane-synth.log
        if [ ${#failed[@]} -gt 0 ]; then
            echo "tier rtl: lane(s) ${failed[*]} failed (their logs are above)" >&2
            exit 1
        fi
        ;;
    ort)
        echo "== tier ort: full-size CNNs against ONNX Runtime" >&2
        ort_setup
        cargo test --release --locked --test ort_cnn -- --ignored --nocapture
        ;;
    python)
        echo "== tier python: the Python package against the command line" >&2
        cargo build --release --locked
        python_setup
        # The pinned maturin from the venv (no build isolation); --locked:
        # python/Cargo.lock as committed.
        # CARGO_TARGET_DIR: build in the root's target/, reusing the Rust
        # tier's artifacts (python/Cargo.toml has the same release profile).
        PATH="$PWD/$venv/bin:$PATH" MATURIN_PEP517_ARGS="--locked" CARGO_TARGET_DIR="$PWD/target" \
            "$venv/bin/python" -m pip install --quiet --no-build-isolation ./python
        SYSTOLE_BIN="$PWD/target/release/systole" "$venv/bin/python" -m pytest -q python/tests
        # docs/python.md's tutorial: ORT-quantized CNN, compiled, run, checked
        # against ONNX Runtime bit for bit, swept.
        "$venv/bin/python" python/examples/tutorial.py target/python-tutorial
        ;;
    setup)
        install_hdl_tools
        ort_setup
        python_setup
        ;;
    *)
        echo "usage: scripts/test.sh [rust] [rtl] [ort] [python] [setup]" >&2
        exit 2
        ;;
    esac
done
