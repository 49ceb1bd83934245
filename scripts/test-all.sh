#!/usr/bin/env bash
# Every check and test of the project, as CI runs it. Usage: bash scripts/test-all.sh
#   FUZZ_SECONDS=N   seconds per fuzz target (default 10)
#   SIM_SEEDS=N      simulation seeds (default 1,000; see README "Development" for the long runs)
# Each step prints its wall time, and a table of them all closes the run, so every change sees
# what it costs. The browser lane (wasm-bindgen-cli, the wasm32 build, its tests in Chromium,
# then the fuzz smoke) shares no build with the native steps, so it runs beside them and fills
# the cores they leave idle (linking, build scripts, single-crate stretches, one-core fuzz
# runs); its log is printed when it is joined, before the tests run alone.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target

timings=()
step() { # step NAME COMMAND...: runs it, prints and records its wall time
  local name=$1 t0=$SECONDS
  shift
  printf '\n== %s\n' "$name"
  "$@"
  timings+=("$(printf '%6d s  %s' $((SECONDS - t0)) "$name")")
  printf '== %s: %d s\n' "$name" $((SECONDS - t0))
}

js_packages() {
  (cd tauri-plugin && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build \
    && npm test --silent) 2>&1 | tee target/guest-js-test.log
  (cd examples/tauri-app && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
  (cd bindings-wasm && npm ci --no-audit --no-fund --loglevel=error)
}

clippy() {
  cargo clippy --workspace --all-targets --quiet -- -D warnings
  # The planted-bug code lives in these three crates only: the feature changes nothing above
  # them, so they alone are linted with it (the workspace pass lints the rest).
  cargo clippy -p zerok-core -p zerok-transport-mock -p zerok-tests --all-targets --quiet \
    --features zerok-tests/planted-bugs -- -D warnings
}

# The libraries and programs as users build them: without the features dev-dependencies switch
# on (the Tauri plugin without tauri's `test` feature among them). A check suffices: the tests
# build and link everything. Every other unit is the clippy pass's (checked: cargo --unit-graph).
plain_build() {
  cargo check --workspace --lib --bins --quiet
}

browser_lane() (
  timings=()
  step "wasm-bindgen-cli (setup)" bash scripts/setup.sh wasm-bindgen
  step "browser package (wasm32 build, import check, size budget)" bash scripts/wasm-build.sh
  step "browser API and core self check in headless Chromium" \
    bash -c 'bash scripts/wasm-test.sh 2>&1 | tee target/wasm-test.log'
  # Its own workspace and target dir (sanitizer flags), and its runs take one core each.
  step "fuzz smoke: every target built once, run ${FUZZ_SECONDS:-10}s each" bash fuzz/run.sh "${FUZZ_SECONDS:-10}"
  printf '%s\n' "${timings[@]}" >target/browser-lane.times
)

run_tests() {
  # The relay store's PostgreSQL backend is tested against a real server, started here and
  # stopped however the run ends; its tests fail (not skip) without it.
  eval "$(bash scripts/test-pg.sh start)"
  trap 'bash scripts/test-pg.sh stop "$(dirname "$ZEROK_TEST_PGDATA")"' EXIT
  ZEROK_REQUIRE_PG=1 cargo test --workspace 2>&1 | tee target/test-all.log
}

browser_e2e() {
  # Uses target/debug/zerok, which `cargo test --workspace` built for the cli's tests (building
  # it alone would unify other features and recompile its dependencies: minutes).
  (cd bindings-wasm && npm test --silent) 2>&1 | tee target/browser-test.log
}

step "setup (apt packages, cargo-fuzz)" bash scripts/setup.sh system
step "JavaScript: the guest package (build, unit tests), the example app's and browser's packages" js_packages

browser_lane >target/browser-lane.log 2>&1 &
browser_pid=$!

step "format" cargo fmt --all --check
step "clippy (all targets, warnings are errors; the planted-bug crates also with the feature)" clippy
step "docs (rustdoc warnings are errors)" env RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
step "plain check (libraries and programs without dev-dependency features)" plain_build
step "planted bugs: each must be caught by the simulation within 100 seeds" \
  cargo test -p zerok-tests --features planted-bugs --test planted_bugs
step "test build (every test binary of the workspace)" cargo test --workspace --no-run --quiet

# The tests run alone: some measure time or memory, and the Tauri app's test drives a webview.
printf '\n== browser lane (ran beside the steps above)\n'
lane_t0=$SECONDS
lane_rc=0
wait "$browser_pid" || lane_rc=$?
cat target/browser-lane.log
[ "$lane_rc" -eq 0 ] || { echo "FAIL: the browser lane (exit $lane_rc)"; exit 1; }
while IFS= read -r line; do timings+=("$line  (beside)"); done <target/browser-lane.times
timings+=("$(printf '%6d s  %s' $((SECONDS - lane_t0)) "waiting for the browser lane")")

step "tests (unit, property, vectors, snapshots, simulation: SIM_SEEDS=${SIM_SEEDS:-1000}; iroh end to end on loopback)" run_tests

step "browser end to end: two Chromium contexts and a native device through a real relay" browser_e2e

printf '\n== wall time per step\n'
printf '%s\n' "${timings[@]}"
printf '%6d s  total\n' "$SECONDS"

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
