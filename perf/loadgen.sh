#!/usr/bin/env bash
# Loopback load comparison: wsproto (examples/tokio_echo_server.rs) against
# tokio-tungstenite and fastwebsockets (examples/tungstenite_echo_server.rs,
# examples/fastwebsockets_echo_server.rs), driven by the neutral generator
# examples/loadgen.rs. Results and their write-up: docs/performance-load.md.
#
#   perf/loadgen.sh                       # defaults: about 3 minutes after the build
#   ROUNDS=5 DURATION=10 perf/loadgen.sh  # longer, less noisy
#
# 1. Throughput/CPU: for each of ROUNDS rounds, each server in turn (the order
#    rotates from round to round) is started fresh, loaded with each workload
#    (64 connections x 32 B binary, 64 x 16 KiB binary; closed loop, WARMUP s
#    unmeasured, DURATION s measured) and stopped. Table: per-server medians
#    over rounds of msgs/s, RTT p50/p99 and server CPU us/message, the ratio
#    of each to wsproto, and the per-round ratios.
# 2. Idle memory: IDLE_CONNS connections to a fresh server, server RSS KiB per
#    connection after the handshake and after one 16 KiB echo.
#
# Environment:
#   ROUNDS=3 DURATION=5 WARMUP=1 CONNS=64       load rounds and window (s)
#   SIZES="32 16384" KIND=binary                workloads (KIND binary|text)
#   IDLE_CONNS=5000 IDLE_ROUNDS=1 IDLE_WAIT=2   idle-memory measurement (0: skip)
#   SERVERS="wsproto tungstenite fastwebsockets"
#   PIN=1 SERVER_CPU=1 LOADGEN_CPU=0            taskset pinning when available
#   SKIP_BUILD=0 OUT=perf/results               build first; where logs go
#   CARGO_FLAGS="--release --all-features"
set -euo pipefail

cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CONNS=${CONNS:-64}
SIZES=${SIZES:-"32 16384"}
KIND=${KIND:-binary}
IDLE_CONNS=${IDLE_CONNS:-5000}
IDLE_ROUNDS=${IDLE_ROUNDS:-1}
IDLE_WAIT=${IDLE_WAIT:-2}
SERVERS=${SERVERS:-"wsproto tungstenite fastwebsockets"}
PIN=${PIN:-1}
SERVER_CPU=${SERVER_CPU:-1}
LOADGEN_CPU=${LOADGEN_CPU:-0}
SKIP_BUILD=${SKIP_BUILD:-0}
OUT=${OUT:-perf/results}
CARGO_FLAGS=${CARGO_FLAGS:-"--release --all-features"}

BIN=${CARGO_TARGET_DIR:-target}/release/examples

binary_of() {
    case "$1" in
        wsproto) echo tokio_echo_server ;;
        tungstenite) echo tungstenite_echo_server ;;
        fastwebsockets) echo fastwebsockets_echo_server ;;
        *) echo "unknown server $1" >&2; exit 2 ;;
    esac
}

if [ "$SKIP_BUILD" != 1 ]; then
    # shellcheck disable=SC2086
    cargo build $CARGO_FLAGS --examples
fi
for s in $SERVERS; do
    [ -x "$BIN/$(binary_of "$s")" ] || { echo "missing $BIN/$(binary_of "$s")" >&2; exit 1; }
done
[ -x "$BIN/loadgen" ] || { echo "missing $BIN/loadgen" >&2; exit 1; }

# Pin server and generator to different cores when taskset and 2+ cores exist.
PIN_SERVER=()
PIN_LOADGEN=()
if [ "$PIN" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    PIN_SERVER=(taskset -c "$SERVER_CPU")
    PIN_LOADGEN=(taskset -c "$LOADGEN_CPU")
    PINNING="server on CPU $SERVER_CPU, loadgen on CPU $LOADGEN_CPU (taskset)"
else
    PINNING="none"
fi

# Servers and generator inherit the highest file-descriptor limit we may set.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

mkdir -p "$OUT"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS="$OUT/loadgen-$STAMP.txt"
: >"$RESULTS"

info() { echo "$*" | tee -a "$RESULTS"; }

info "# perf/loadgen.sh $STAMP"
info "# date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
info "# host: $(uname -srm), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
info "# commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src 2>/dev/null || echo ' (src/ modified)')"
info "# rustc: $(rustc --version)"
info "# build: cargo build $CARGO_FLAGS --examples"
info "# pinning: $PINNING; ulimit -n $(ulimit -n)"
info "# rounds=$ROUNDS duration=${DURATION}s warmup=${WARMUP}s conns=$CONNS sizes=$SIZES kind=$KIND idle_conns=$IDLE_CONNS"
info "# loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"

SERVER_PID=
SERVER_URL=
start_server() { # name -> sets SERVER_PID, SERVER_URL
    local bin log
    bin=$(binary_of "$1")
    log="$OUT/server-$1.log"
    : >"$log"
    "${PIN_SERVER[@]}" "$BIN/$bin" 127.0.0.1:0 >"$log" 2>&1 &
    SERVER_PID=$!
    SERVER_URL=
    for _ in $(seq 100); do
        SERVER_URL=$(sed -n 's/.*listening on \(ws:\/\/[^ ]*\).*/\1/p' "$log" || true)
        [ -n "$SERVER_URL" ] && break
        sleep 0.05
    done
    if [ -z "$SERVER_URL" ]; then
        echo "server $1 did not start:" >&2
        cat "$log" >&2
        exit 1
    fi
    SERVER_URL="$SERVER_URL/"
}
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
trap stop_server EXIT

run_loadgen() { # round name args...
    local round=$1 name=$2
    shift 2
    local out
    if ! out=$("${PIN_LOADGEN[@]}" "$BIN/loadgen" "$SERVER_URL" --server-pid "$SERVER_PID" \
        --server-name "$name" "$@" 2>&1); then
        echo "$out" >&2
        echo "loadgen failed against $name (round $round)" >&2
        info "FAILED round=$round server=$name $*"
        return 0
    fi
    echo "$out" | grep -v '^RESULT ' || true
    echo "$out" | grep '^RESULT ' | sed "s/^RESULT /RESULT round=$round /" >>"$RESULTS"
}

read -r -a servers <<<"$SERVERS"
n=${#servers[@]}
for ((r = 1; r <= ROUNDS; r++)); do
    info "# round $r/$ROUNDS, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
    for ((i = 0; i < n; i++)); do
        s=${servers[$(((i + r - 1) % n))]}
        start_server "$s"
        for size in $SIZES; do
            run_loadgen "$r" "$s" --conns "$CONNS" --size "$size" "--$KIND" \
                --duration "$DURATION" --warmup "$WARMUP"
        done
        stop_server
    done
done

if [ "$IDLE_CONNS" -gt 0 ]; then
    for ((r = 1; r <= IDLE_ROUNDS; r++)); do
        info "# idle memory $r/$IDLE_ROUNDS, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
        for ((i = 0; i < n; i++)); do
            s=${servers[$(((i + r - 1) % n))]}
            start_server "$s"
            run_loadgen "$r" "$s" --idle "$IDLE_CONNS" --idle-wait "$IDLE_WAIT"
            stop_server
        done
    done
fi
info "# loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "raw results: $RESULTS"
echo
python3 perf/summarize.py "$RESULTS" | tee "${RESULTS%.txt}.md"
