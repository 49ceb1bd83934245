#!/usr/bin/env bash
# The browser API's tests (bindings-wasm/tests/web.rs) in headless Chromium, with
# wasm-bindgen-test-runner and chromedriver; the wasm environment of scripts/wasm-build.sh.
set -euo pipefail
cd "$(dirname "$0")/../bindings-wasm"
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-22
export CARGO_TARGET_DIR=../target/wasm
export CHROMEDRIVER=/usr/bin/chromedriver CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
# The profile of scripts/wasm-build.sh: std and the dependencies are built once for both.
/usr/bin/cargo test --profile wasm-release --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort -p zerok-wasm --test web
