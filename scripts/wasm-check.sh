#!/usr/bin/env bash
# The wasm gate: builds zerok-core for wasm32-unknown-unknown with Debian's rustc-web and
# -Zbuild-std (docs: ../shared/recipes/wasm-toolchain.md), fails if the module imports anything
# from `env`, then runs the core's self check inside the module under Node.js.
# Native builds stay on the rustup toolchain: the wasm environment is set here only.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-22
export CARGO_TARGET_DIR=target/wasm
/usr/bin/cargo build --profile wasm-release --lib --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort \
  -p zerok-core --features wasm-selfcheck
module=target/wasm/wasm32-unknown-unknown/wasm-release/zerok_core.wasm
python3 scripts/wasm_imports.py "$module" | tail -1
out=target/wasm/selfcheck
rm -rf "$out"
wasm-bindgen --target nodejs --out-dir "$out" "$module"
python3 scripts/wasm_imports.py "$out/zerok_core_bg.wasm" | tail -1
raw=$(stat -c %s "$out/zerok_core_bg.wasm")
gz=$(gzip -9 -c "$out/zerok_core_bg.wasm" | wc -c)
echo "wasm size: $raw bytes, $gz gzipped"
result=$(node -e "console.log(require('./$out/zerok_core.js').core_self_check(7))")
echo "self check in wasm: $result"
case "$result" in ok*) ;; *) echo "FAIL: wasm self check"; exit 1 ;; esac
