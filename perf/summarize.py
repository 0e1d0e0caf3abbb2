#!/usr/bin/env python3
"""Markdown tables from the RESULT lines that perf/loadgen.sh collects.

    python3 perf/summarize.py perf/results/loadgen-STAMP.txt

Load mode: per workload, per-server medians over rounds and the ratio of each
median to wsproto's; then the per-round ratios to wsproto (same round, so a
background job that slows one round shows up in all servers of that round).
Idle mode: KiB per connection after the handshake and after one echo.
"""

import statistics
import sys
from collections import defaultdict

BASE = "wsproto"


def parse(path):
    rows = []
    with open(path) as f:
        for line in f:
            if not line.startswith("RESULT "):
                continue
            kv = dict(tok.split("=", 1) for tok in line.split()[1:] if "=" in tok)
            rows.append(kv)
    return rows


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, prec=1):
    if v is None:
        return "n/a"
    if prec == 0:
        return f"{v:,.0f}"
    return f"{v:.{prec}f}"


def ratio(v, base):
    if v is None or base in (None, 0):
        return "n/a"
    return f"{v / base:.2f}"


def size_label(size):
    size = int(size)
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} B"


def server_order(rows):
    seen = []
    for r in rows:
        if r["server"] not in seen:
            seen.append(r["server"])
    if BASE in seen:
        seen.remove(BASE)
        seen.insert(0, BASE)
    return seen


def load_tables(rows):
    out = []
    loads = [r for r in rows if r.get("mode") == "load"]
    workloads = []
    for r in loads:
        w = (r["conns"], r["size"], r["kind"])
        if w not in workloads:
            workloads.append(w)
    servers = server_order(loads)
    metrics = [
        ("msgs_per_s", "msgs/s", 0),
        ("p50_us", "p50 µs", 0),
        ("p99_us", "p99 µs", 0),
        ("cpu_us_per_msg", "server CPU µs/msg", 2),
    ]
    for conns, size, kind in workloads:
        wl = [r for r in loads if (r["conns"], r["size"], r["kind"]) == (conns, size, kind)]
        by_server = defaultdict(list)
        for r in wl:
            by_server[r["server"]].append(r)
        rounds = sorted({int(r["round"]) for r in wl})
        out.append(f"### {conns} connections × {size_label(size)} {kind} "
                   f"(medians of {len(rounds)} rounds)\n")
        out.append("| server | " + " | ".join(m[1] for m in metrics)
                   + " | server cores | loadgen cores | "
                   + " | ".join(f"{m[1]} ×wsproto" for m in metrics) + " |")
        out.append("|---" * (1 + 2 * len(metrics) + 2) + "|")
        medians = {
            s: {m: med(num(r.get(m)) for r in by_server[s]) for m, _, _ in metrics}
            for s in servers
        }
        base = medians.get(BASE, {})
        for s in servers:
            if not by_server[s]:
                continue
            m = medians[s]
            cores = med(num(r.get("server_cpu_cores")) for r in by_server[s])
            lcores = med(num(r.get("loadgen_cpu_cores")) for r in by_server[s])
            cells = [fmt(m[k], p) for k, _, p in metrics]
            cells += [fmt(cores, 2), fmt(lcores, 2)]
            cells += [ratio(m[k], base.get(k)) for k, _, _ in metrics]
            out.append(f"| {s} | " + " | ".join(cells) + " |")
        out.append("")

        # per-round ratios against wsproto in the same round
        others = [s for s in servers if s != BASE and by_server[s]]
        if BASE not in by_server or not others:
            continue
        out.append(f"Per round, {conns} × {size_label(size)}: wsproto's values and "
                   "the others' ratios to wsproto in the same round.\n")
        head = ["round", "wsproto msgs/s", "wsproto CPU µs/msg"]
        for s in others:
            head += [f"{s} msgs/s ×", f"{s} CPU ×"]
        out.append("| " + " | ".join(head) + " |")
        out.append("|---" * len(head) + "|")
        for rd in rounds:
            at = {r["server"]: r for r in wl if int(r["round"]) == rd}
            b = at.get(BASE)
            if b is None:
                continue
            bm, bc = num(b.get("msgs_per_s")), num(b.get("cpu_us_per_msg"))
            cells = [str(rd), fmt(bm, 0), fmt(bc, 2)]
            for s in others:
                o = at.get(s)
                cells += [ratio(num(o.get("msgs_per_s")) if o else None, bm),
                          ratio(num(o.get("cpu_us_per_msg")) if o else None, bc)]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return out


def idle_table(rows):
    idle = [r for r in rows if r.get("mode") == "idle"]
    if not idle:
        return []
    servers = server_order(idle)
    by_server = defaultdict(list)
    for r in idle:
        by_server[r["server"]].append(r)
    conns = sorted({r["conns"] for r in idle})
    size = size_label(idle[0].get("msg_size", "16384"))
    out = [f"### Idle memory: {', '.join(conns)} connections, server RSS "
           f"(median of {max(len(v) for v in by_server.values())})\n",
           f"| server | KiB/conn after handshake | KiB/conn after one {size} echo "
           "| RSS base → handshake → echo (KiB) | ×wsproto (handshake) | ×wsproto (echo) |",
           "|---|---|---|---|---|---|"]
    med_of = {
        s: (med(num(r["kib_per_conn_handshake"]) for r in by_server[s]),
            med(num(r["kib_per_conn_echo"]) for r in by_server[s]))
        for s in servers
    }
    base = med_of.get(BASE, (None, None))
    for s in servers:
        hs, echo = med_of[s]
        last = by_server[s][-1]
        rss = f"{last['rss_base_kib']} → {last['rss_handshake_kib']} → {last['rss_echo_kib']}"
        out.append(f"| {s} | {fmt(hs, 2)} | {fmt(echo, 2)} | {rss} | "
                   f"{ratio(hs, base[0])} | {ratio(echo, base[1])} |")
    out.append("")
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    rows = parse(sys.argv[1])
    if not rows:
        sys.exit("no RESULT lines")
    print("\n".join(load_tables(rows) + idle_table(rows)))


if __name__ == "__main__":
    main()
