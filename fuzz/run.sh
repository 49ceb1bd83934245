#!/usr/bin/env bash
# Runs every fuzz target for N seconds (default 30) on stable via RUSTC_BOOTSTRAP.
# Usage: fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-30}"; shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(RUSTC_BOOTSTRAP=1 cargo fuzz list)
fi
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  work=$(mktemp -d)
  echo "== $t: ${secs}s"
  # Seeds stay read-only in corpus/<target>; new inputs go to a scratch dir.
  cargo fuzz run -O "$t" "$work" "corpus/$t" -- -max_total_time="$secs" -max_len=65536 -print_final_stats=1 2>&1 \
    | grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|stat::peak_rss_mb)|Done|ERROR|panicked|SUMMARY' || true
  rm -rf "$work"
  if ls "artifacts/$t"/crash-* >/dev/null 2>&1; then
    echo "crash in $t: see fuzz/artifacts/$t"; exit 1
  fi
done
