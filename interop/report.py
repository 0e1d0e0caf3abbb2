"""Print the interop results table (check x run) and decide pass/fail.

    python3 report.py RESULTS_DIR

RESULTS_DIR holds, per run (a column of the table), `NAME.out` with the
peer's `RESULT <check> PASS|FAIL|N/A [detail]` lines, `NAME.rc` with its exit
status and `NAME.server` naming the server it ran against. `runs` lists the
run names in order, `known-failures` holds `RUN:CHECK` pairs (one a line,
`#` comments) that are expected to fail because of a known wsproto bug.

A cell is PASS, FAIL, N/A (the peer cannot do it), XFAIL (a known failure
that failed), XPASS (a known failure that passed: time to remove it from the
list), or `-` (not run: the client stopped or crashed before it). The run
fails on any FAIL or `-`, and on a non-zero exit status not explained by
known failures. Exit status: 0 when the run passed, 1 otherwise.

Runs are named CLIENT-SERVER, each a peer name with an optional
`:MODE` (its permessage-deflate setting). They are printed as one table per
direction: peers as clients of wsproto's server (columns named by the
client), wsproto's client against peers' servers (named by the server), and
any other (control) runs.
"""

import os
import sys

CHECKS = [
    "deflate",
    "deflate-window-8",
    "no-deflate",
    "text-ascii",
    "text-multibyte",
    "text-emoji",
    "text-multibyte-1MiB",
    "binary-256",
    "size-0",
    "size-125",
    "size-126",
    "size-65535",
    "size-65536",
    "size-1MiB",
    "size-16MiB",
    "fragmented",
    "ping-pong",
    "keepalive",
    "burst",
    "subprotocol-chat",
    "subprotocol-none",
    "close-4000",
    "close-nocode",
    "close-busy",
    "close-me",
    "concurrent",
    "server-alive",
]


def read(path, default=""):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return default


def main(d):
    runs = [r for r in read(os.path.join(d, "runs")).split() if r]
    known = set()
    for line in read(os.path.join(d, "known-failures")).splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            known.add(line)

    cells = {}  # (run, check) -> (status, detail)
    extra = []  # checks reported that are not in CHECKS
    infos = {}
    for run in runs:
        for line in read(os.path.join(d, run + ".out")).splitlines():
            parts = line.split(" ", 3)
            if parts[0] == "INFO" and len(parts) >= 3:
                infos[run] = line[len("INFO peer ") :] if parts[1] == "peer" else line[5:]
            if parts[0] != "RESULT" or len(parts) < 3:
                continue
            check, status = parts[1], parts[2]
            detail = parts[3] if len(parts) > 3 else ""
            cells[(run, check)] = (status, detail)
            if check not in CHECKS and check not in extra:
                extra.append(check)

    rows = CHECKS + extra
    width = max(len(c) for c in rows + ["check"]) + 2
    counts = {"PASS": 0, "FAIL": 0, "N/A": 0, "XFAIL": 0, "XPASS": 0, "-": 0}
    failures = []
    notes = []

    def split(run):
        client, _, server = run.partition("-")
        return client, server

    groups = [
        ("client -> wsproto tokio_echo_server", [r for r in runs if split(r)[1] == "wsproto" and split(r)[0] != "wsproto"], 0),
        ("wsproto interop_client -> server", [r for r in runs if split(r)[0] == "wsproto"], 1),
    ]
    grouped = {r for _, g, _ in groups for r in g}
    groups.append(("controls (client-server)", [r for r in runs if r not in grouped], None))

    for title, group, label_side in groups:
        if not group:
            continue
        labels = [split(r)[label_side] if label_side is not None else r for r in group]
        colw = [max(len(lbl), 5) + 2 for lbl in labels]
        print()
        print(title)
        print("check".ljust(width) + "".join(lbl.ljust(w) for lbl, w in zip(labels, colw)))
        print("-" * (width + sum(colw)))
        for check in rows:
            line = check.ljust(width)
            for run, w in zip(group, colw):
                status, detail = cells.get((run, check), ("-", "not run"))
                is_known = f"{run}:{check}" in known
                if status == "FAIL" and is_known:
                    status = "XFAIL"
                elif status == "PASS" and is_known:
                    status = "XPASS"
                    notes.append(f"{run}:{check} passed but is listed as a known failure: remove it from KNOWN_FAILURES in interop/run.sh")
                elif status not in ("PASS", "FAIL", "N/A", "-"):
                    detail = f"unknown status {status!r}: {detail}"
                    status = "FAIL"
                counts[status] += 1
                if status in ("FAIL", "-"):
                    failures.append(f"{run}: {check}: {detail}")
                elif status == "XFAIL":
                    notes.append(f"{run}:{check} failed as known: {detail}")
                line += status.ljust(w)
            print(line)

    # runs that failed without saying why in a RESULT line
    for run in runs:
        rc = read(os.path.join(d, run + ".rc"), "?").strip()
        if rc == "0":
            continue
        run_fails = [c for c in rows if cells.get((run, c), ("-",))[0] == "FAIL"]
        if run_fails and all(f"{run}:{c}" in known for c in run_fails):
            continue  # exited non-zero because of known failures only
        if not run_fails:
            failures.append(f"{run}: exited with status {rc} ({'timed out' if rc == '124' else 'see its log'})")

    print()
    for run in runs:
        server = read(os.path.join(d, run + ".server")).strip()
        print(f"  {run}: client {infos.get(run, '?')}; server {server}")
    # what permessage-deflate looked like in each run
    for run in runs:
        status, detail = cells.get((run, "deflate"), ("-", ""))
        if status == "PASS":
            print(f"  deflate {run}: {detail}")
    for n in notes:
        print(f"  note: {n}")
    if failures:
        print()
        print("FAILURES:")
        for f in failures:
            print(f"  {f}")
    print()
    if counts["XFAIL"] or counts["XPASS"]:
        print(f"known wsproto bugs: {counts['XFAIL']} known failures, {counts['XPASS']} unexpected passes")
    print(f"interop: {counts['PASS']} passed, {counts['FAIL'] + counts['-']} failed, {counts['N/A']} skipped")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
