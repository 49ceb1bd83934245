#!/usr/bin/env python3
"""Prints the criterion results of the last `cargo bench` as a Markdown table, with each
envelope figure as a ratio to raw XChaCha20-Poly1305 on the same size in the same run."""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
rows = {}
for bench in sorted(root.glob("**/new/benchmark.json")):
    meta = json.loads(bench.read_text())
    est = json.loads((bench.parent / "estimates.json").read_text())
    median_ns = est["median"]["point_estimate"]
    rows[meta["full_id"]] = (median_ns, meta.get("throughput") or {})


def rate(median_ns, throughput):
    if "Bytes" in throughput:
        return throughput["Bytes"] / median_ns * 1e9 / 2**20, "MiB/s"
    n = throughput.get("Elements", 1)
    return n / median_ns * 1e9, "ops/s"


def fmt_time(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.2f} {unit}"
    return f"{ns:.0f} ns"


print("| benchmark | median | throughput | ratio to raw AEAD |")
print("|---|---:|---:|---:|")
for full_id, (ns, tp) in rows.items():
    r, unit = rate(ns, tp)
    ratio = ""
    parts = full_id.split("/")
    if parts[0] == "envelope" and parts[1] in ("seal", "open"):
        raw = rows.get(f"envelope/raw_xchacha_{parts[1]}/{parts[2]}")
        if raw:
            ratio = f"{raw[0] / ns:.2f}"
    print(f"| {full_id} | {fmt_time(ns)} | {r:,.1f} {unit} | {ratio} |")
