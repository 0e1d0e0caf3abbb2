#!/usr/bin/env python3
"""The microbenchmark table of docs/performance.md from criterion's output.

    cargo bench --all-features --bench core -- --warm-up-time 0.5 \
        --measurement-time 1.5 --sample-size 20
    python3 perf/bench_table.py [target/criterion]

One row per group: the baseline member (memcpy, httparse or simdutf8), each
implementation's median, wsproto's throughput, and "wsproto speed x X"
(X's median / wsproto's: above 1, wsproto is faster).
"""

import json
import os
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else "target/criterion"
BASELINES = ["memcpy", "httparse", "simdutf8"]
PEERS = ["tungstenite", "fastwebsockets"]


def fmt_time(ns):
    for unit, div in (("ms", 1e6), ("µs", 1e3)):
        if ns >= div:
            return f"{ns / div:.3g} {unit}"
    return f"{ns:.3g} ns"


def median(group, member):
    path = os.path.join(ROOT, group, member, "new", "estimates.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)["median"]["point_estimate"]


def throughput(group):
    path = os.path.join(ROOT, group, "wsproto", "new", "benchmark.json")
    with open(path) as f:
        t = json.load(f).get("throughput") or {}
    return t


def main():
    groups = sorted(
        g for g in os.listdir(ROOT)
        if os.path.isdir(os.path.join(ROOT, g, "wsproto")) and not g.startswith("chat")
    )
    print("| group | baseline | wsproto | wsproto throughput | tungstenite | fastwebsockets "
          "| wsproto speed × baseline | × tungstenite | × fastwebsockets |")
    print("|---|---|---|---|---|---|---|---|---|")
    for g in groups:
        w = median(g, "wsproto")
        base = next(((b, median(g, b)) for b in BASELINES if median(g, b) is not None), None)
        t = throughput(g)
        if "Bytes" in t:
            gib = t["Bytes"] / (w / 1e9) / 2**30
            thr = f"{gib:.3g} GiB/s" if gib >= 1 else f"{gib * 1024:.3g} MiB/s"
        elif "Elements" in t:
            thr = f"{t['Elements'] / (w / 1e9) / 1e6:.3g} M/s"
        else:
            thr = "—"
        cells = [g.replace("_", "/", 1) if g.count("_") else g]
        cells[0] = fix_name(g)
        cells.append(f"{base[0]} {fmt_time(base[1])}" if base else "—")
        cells.append(fmt_time(w))
        cells.append(thr)
        peers = [median(g, p) for p in PEERS]
        cells += [fmt_time(p) if p else "—" for p in peers]
        cells.append(f"{base[1] / w:.2f}" if base else "—")
        cells += [f"{p / w:.2f}" if p else "—" for p in peers]
        print("| `" + cells[0] + "` | " + " | ".join(cells[1:]) + " |")


def fix_name(g):
    # criterion turns "decode_binary/16B" into the directory "decode_binary_16B"
    for size in ["16B", "125B", "1KiB", "16KiB", "64KiB", "1MiB"]:
        if g.endswith("_" + size):
            return g[: -len(size) - 1] + "/" + size
    return g


if __name__ == "__main__":
    main()
