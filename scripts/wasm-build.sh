#!/usr/bin/env bash
# Builds the browser package: zerok-wasm for wasm32-unknown-unknown with Debian's rustc-web and
# -Zbuild-std (../shared/recipes/wasm-toolchain.md), then wasm-bindgen's JS glue into
# bindings-wasm/www/pkg. Fails if the module imports anything from `env`; prints its size.
# Native builds stay on the rustup toolchain: the wasm environment is set here only.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-22
export CARGO_TARGET_DIR=target/wasm
/usr/bin/cargo build --profile wasm-release --lib --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort -p zerok-wasm
out=bindings-wasm/www/pkg
rm -rf "$out"
wasm-bindgen --target web --out-dir "$out" target/wasm/wasm32-unknown-unknown/wasm-release/zerok_wasm.wasm
python3 scripts/wasm_imports.py "$out/zerok_wasm_bg.wasm" | tail -1
raw=$(stat -c %s "$out/zerok_wasm_bg.wasm")
gz=$(gzip -9 -c "$out/zerok_wasm_bg.wasm" | wc -c)
echo "browser package: zerok_wasm_bg.wasm $raw bytes, $gz gzipped (budget 409600)"
[ "$gz" -lt 409600 ] || { echo "FAIL: over the size budget"; exit 1; }
