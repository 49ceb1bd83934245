#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh Debian 12 machine. Idempotent: a
# second run only checks. Native Rust comes from the pinned rustup toolchain
# (rust-toolchain.toml); the wasm32 build uses Debian's rustc-web (see scripts/wasm-check.sh).
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

apt_packages=(rustc-web cargo-web rust-web-src libstd-rust-web-dev lld-22
  # the Tauri plugin and the example app (WebKitGTK), and Xvfb for its smoke test
  pkg-config libgtk-3-dev libwebkit2gtk-4.1-dev libsoup-3.0-dev libjavascriptcoregtk-4.1-dev
  librsvg2-dev libxdo-dev libayatana-appindicator3-dev xvfb xauth
  # the browser build's tests: headless Chromium, and chromedriver for wasm-bindgen-test
  chromium chromium-driver)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
command -v node >/dev/null 2>&1 || missing+=(nodejs)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "setup: installing cargo-fuzz"
  cargo install cargo-fuzz --version 0.13.2 --locked --quiet
fi

# Must equal the wasm-bindgen version pinned in core/Cargo.toml. No --locked: its lockfile names
# a webpki-roots release the registry no longer serves.
if ! wasm-bindgen --version 2>/dev/null | grep -q '^wasm-bindgen 0.2.130$'; then
  echo "setup: installing wasm-bindgen-cli 0.2.130 (about 5 minutes)"
  cargo install wasm-bindgen-cli --version 0.2.130 --quiet
fi
echo "setup: ok"
