#!/usr/bin/env bash
# Every check and test of the project, as CI runs it. Usage: bash scripts/test-all.sh
#   FUZZ_SECONDS=N  seconds per fuzz target (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

step() { printf '\n== %s\n' "$*"; }

mkdir -p target
step "JavaScript: the guest package (build, unit tests) and the example app's frontend"
(cd tauri-plugin && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build \
  && npm test --silent) 2>&1 | tee target/guest-js-test.log
(cd examples/tauri-app && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
(cd bindings-wasm && npm ci --no-audit --no-fund --loglevel=error)

step "format"
cargo fmt --all --check

step "clippy (all targets, warnings are errors; also with the planted-bug feature)"
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo clippy --workspace --all-targets --quiet --features zerok-tests/planted-bugs -- -D warnings

step "docs (rustdoc warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "plain library build (no dev-dependency features; the Tauri crates are built by the tests)"
cargo build --workspace --lib --quiet --exclude tauri-plugin-sync --exclude zerok-notes

step "wasm gate"
bash scripts/wasm-check.sh

step "browser package (wasm32 build, size budget) and its API tests in headless Chromium"
bash scripts/wasm-build.sh
bash scripts/wasm-test.sh 2>&1 | tee target/wasm-test.log

step "fuzz smoke: every target for ${FUZZ_SECONDS:-10}s"
bash fuzz/run.sh "${FUZZ_SECONDS:-10}"

step "planted bugs: each must be caught by the simulation within 100 seeds"
cargo test -p zerok-tests --features planted-bugs --test planted_bugs

step "tests (unit, property, vectors, snapshots, simulation: SIM_SEEDS=${SIM_SEEDS:-1000} x SIM_STEPS=${SIM_STEPS:-3000}; iroh end to end on loopback)"
cargo test --workspace 2>&1 | tee target/test-all.log

step "browser end to end: two Chromium contexts and a native device through a real relay"
# Uses target/debug/zerok, which `cargo test --workspace` built for the cli's tests (building it
# alone would unify other features and recompile its dependencies: minutes).
(cd bindings-wasm && npm test --silent) 2>&1 | tee target/browser-test.log

# One closing line with the totals of every test run: cargo's (Rust and wasm in Chromium) and
# node:test's (cargo's own last line is often a doc-test run with nothing in it).
python3 - target/test-all.log target/wasm-test.log target/guest-js-test.log target/browser-test.log <<'PY'
import re, sys
passed = failed = 0
for path in sys.argv[1:]:
    text = open(path).read()
    for m in re.finditer(r"test result: \w+\. (\d+) passed; (\d+) failed", text):
        passed += int(m.group(1)); failed += int(m.group(2))
    for m in re.finditer(r"^# (pass|fail) (\d+)$", text, re.M):
        if m.group(1) == "pass": passed += int(m.group(2))
        else: failed += int(m.group(2))
print(f"{passed} passed, {failed} failed")
PY
