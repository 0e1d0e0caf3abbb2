#!/usr/bin/env bash
# Interop tests: wsproto's tokio echo server against real clients (Python
# `websockets`, Node `ws`, headless Chromium) and wsproto's tokio client
# against real servers (`websockets`, `ws`), each with permessage-deflate on
# (the peer's defaults), with 10-bit windows, and off. Installs what it
# needs, prints check x run tables, exits non-zero if anything failed. See
# interop/README.md.
#
#   bash interop/run.sh              # the matrix
#   bash interop/run.sh --controls   # plus peer-vs-peer control runs
#   bash interop/run.sh --keep       # keep the logs directory
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
cd "$ROOT"
export CARGO_TERM_COLOR=never
T0=$(date +%s)
step() { printf '\n=== interop [%4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }

CONTROLS=0
KEEP=0
for arg in "$@"; do
  case "$arg" in
    --controls) CONTROLS=1 ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

# Checks that fail because of a known, reported wsproto bug, as
# "CLIENT->SERVER:CHECK" (e.g. "wsproto->ws:keepalive"). They show as XFAIL
# and do not fail the run; once fixed they show as XPASS: then delete the
# line.
KNOWN_FAILURES=()

RUN_TIMEOUT=${INTEROP_RUN_TIMEOUT:-120} # one client run (all its checks)
SERVER_START_TIMEOUT=10

# shellcheck source-path=SCRIPTDIR source=../.ci/lib.sh
source "$ROOT/.ci/lib.sh"

OUT=$(mktemp -d /tmp/wsproto-interop.XXXXXX)
PIDS=()
# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  if [ "$KEEP" -eq 1 ] || [ "$rc" -ne 0 ]; then
    echo "interop logs: $OUT"
  else
    rm -rf "$OUT"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ install

step "install peers"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt_install nodejs npm
fi
CHROMIUM=${CHROMIUM:-}
if [ -z "$CHROMIUM" ]; then
  if [ -x /usr/bin/chromium ]; then CHROMIUM=/usr/bin/chromium; else apt_install chromium; CHROMIUM=/usr/bin/chromium; fi
fi
PY=python3
VENV="$HERE/.venv"
want=$(sed -n 's/^websockets==//p' "$HERE/python/requirements.txt")
have=$("$VENV/bin/python" -c 'import websockets; print(websockets.__version__)' 2>/dev/null || true)
if [ "$have" != "$want" ]; then
  if ! "$VENV/bin/python" -c '' 2>/dev/null; then
    rm -rf "$VENV"
    "$PY" -m venv "$VENV" 2>/dev/null || { apt_install python3-venv; rm -rf "$VENV"; "$PY" -m venv "$VENV"; }
  fi
  timeout 300 "$VENV/bin/pip" install -q --disable-pip-version-check -r "$HERE/python/requirements.txt"
fi
(cd "$HERE/node" && timeout 300 npm ci --no-audit --no-fund --loglevel=error >/dev/null)

step "build release examples"
timeout 1500 cargo build --release --all-features --example tokio_echo_server --example interop_client
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples"

WEBSOCKETS_VERSION=$("$VENV/bin/python" -c 'import websockets; print(websockets.__version__)')
WS_VERSION=$(node -p "require('$HERE/node/node_modules/ws/package.json').version")
CHROMIUM_VERSION=$(timeout 30 "$CHROMIUM" --version 2>/dev/null | head -1 || echo "unknown")
echo "rustc:      $(rustc --version)"
echo "websockets: $WEBSOCKETS_VERSION (Python $("$VENV/bin/python" -c 'import platform; print(platform.python_version())'))"
echo "ws:         $WS_VERSION (node $(node --version))"
echo "chromium:   $CHROMIUM_VERSION"

# --------------------------------------------------------------------- runs

# start_server NAME CMD...: start an echo server on a free port; sets
# SERVER_PID and SERVER_URL.
start_server() {
  local name=$1
  shift
  start_listening "$OUT/$name.server.log" 's/.*listening on \(ws:\/\/[0-9.]*:[0-9]*\).*/\1/p' \
    "$SERVER_START_TIMEOUT" "$@" || return 1
  SERVER_PID=$LISTEN_PID
  SERVER_URL=$LISTEN_URL
  PIDS+=("$SERVER_PID")
}

# A peer is NAME or NAME:MODE, MODE being its permessage-deflate setting,
# passed as INTEROP_DEFLATE: `on` (the default: the peer's own defaults),
# `w10` (10-bit windows both ways; ws also raises its compression threshold
# to 4096 bytes), `off`. wsproto's tokio_echo_server always accepts
# permessage-deflate (built with --all-features); wsproto's interop_client
# offers it (INTEROP_DEFLATE).
peer_name() { echo "${1%%:*}"; }
peer_mode() { case "$1" in *:*) echo "${1#*:}" ;; *) echo on ;; esac; }

# The echo servers (port 0: a free one) and the clients (given the URL).
server_cmd() {
  local mode
  mode=$(peer_mode "$1")
  case "$(peer_name "$1")" in
    wsproto) CMD=("$BIN/tokio_echo_server" 127.0.0.1:0) ;;
    websockets) CMD=(env INTEROP_DEFLATE="$mode" "$VENV/bin/python" "$HERE/python/server.py" 127.0.0.1 0) ;;
    ws) CMD=(env INTEROP_DEFLATE="$mode" node "$HERE/node/server.js" 127.0.0.1 0) ;;
  esac
}
client_cmd() {
  local mode
  mode=$(peer_mode "$1")
  case "$(peer_name "$1")" in
    wsproto) CMD=(env INTEROP_DEFLATE="$mode" INTEROP_DEFLATE_EXPECT="$2" "$BIN/interop_client") ;;
    websockets) CMD=(env INTEROP_DEFLATE="$mode" "$VENV/bin/python" "$HERE/python/client.py") ;;
    ws) CMD=(env INTEROP_DEFLATE="$mode" node "$HERE/node/client.js") ;;
    chromium) CMD=(node "$HERE/node/chromium.js") ;;
  esac
}
server_label() {
  local mode
  mode=$(peer_mode "$1")
  case "$(peer_name "$1")" in
    wsproto) echo "wsproto tokio_echo_server (permessage-deflate accepted)" ;;
    websockets) echo "python-websockets $WEBSOCKETS_VERSION (interop/python/server.py, permessage-deflate $mode)" ;;
    ws) echo "node-ws $WS_VERSION (interop/node/server.js, permessage-deflate $mode)" ;;
  esac
}
# What a server agrees to when wsproto's client offers
# DeflateConfig::default() ("permessage-deflate; client_max_window_bits"),
# as SERVER_BITS/CLIENT_BITS/SERVER_NO_CONTEXT_TAKEOVER/CLIENT_NO_CONTEXT_TAKEOVER
# (INTEROP_DEFLATE_EXPECT for interop_client); empty when it declines.
expect_params() {
  case "$1" in
    *:off) echo "" ;;
    websockets) echo "12/12/0/0" ;;     # websockets' default server factory
    websockets:w10) echo "10/10/0/1" ;; # and requires client_no_context_takeover
    ws:w10) echo "10/10/1/0" ;;         # ws keeps no context of its own
    *) echo "15/15/0/0" ;;
  esac
}

# run CLIENT SERVER: one column of the table
run() {
  local client=$1 server=$2
  local name="$client->$server"
  local file="$OUT/$client-$server"
  step "$name"
  echo "$client-$server" >>"$OUT/runs"
  server_label "$server" >"$file.server"
  server_cmd "$server"
  if ! start_server "$client-$server" "${CMD[@]}"; then
    echo "RESULT server-alive FAIL the $server echo server did not start" >"$file.out"
    echo 1 >"$file.rc"
    return 0
  fi
  local rc=0
  client_cmd "$client" "$(expect_params "$server")"
  # INTEROP_SERVER: the clients check wsproto's own compression policy only
  # against wsproto's server
  INTEROP_SERVER=$(peer_name "$server") CHROMIUM="$CHROMIUM" timeout -k 5 "$RUN_TIMEOUT" "${CMD[@]}" "$SERVER_URL" \
    >"$file.out" 2>"$file.err" </dev/null || rc=$?
  echo "$rc" >"$file.rc"
  if [ "$(peer_name "$client")" = wsproto ] && ! grep -q '^RESULT deflate-window-8 ' "$file.out"; then
    echo "RESULT deflate-window-8 N/A checked by the ws and websockets clients" >>"$file.out"
  fi
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "RESULT server-alive PASS" >>"$file.out"
  else
    echo "RESULT server-alive FAIL the $server echo server exited during the run (log: $OUT/$client-$server.server.log)" >>"$file.out"
  fi
  stop_pid "$SERVER_PID"
  sed 's/^/  /' "$file.out"
  if [ "$rc" -ne 0 ]; then
    echo "  (exit status $rc$([ "$rc" -eq 124 ] && echo ": timed out after ${RUN_TIMEOUT}s"))"
    sed 's/^/  stderr: /' "$file.err" | tail -20
  fi
}

: >"$OUT/runs"
printf '%s\n' ${KNOWN_FAILURES[@]+"${KNOWN_FAILURES[@]}"} | sed 's/->/-/' >"$OUT/known-failures"

# peers as clients of wsproto's tokio echo server (which accepts
# permessage-deflate): compression on, with 10-bit windows, and off
run websockets wsproto
run websockets:w10 wsproto
run websockets:off wsproto
run ws wsproto
run ws:w10 wsproto
run ws:off wsproto
run chromium wsproto
# wsproto's tokio client against the peers' echo servers: compression
# offered and accepted (the servers' defaults, 10-bit windows), and offered
# but declined (`:off`)
run wsproto websockets
run wsproto websockets:w10
run wsproto websockets:off
run wsproto ws
run wsproto ws:w10
run wsproto ws:off
# baseline: wsproto against itself
run wsproto wsproto
if [ "$CONTROLS" -eq 1 ]; then
  # the checks against the other peers' servers: tells a wsproto problem
  # from a problem of the checks themselves
  run websockets ws
  run websockets:off ws:off
  run ws websockets
  run ws:w10 websockets:w10
  run chromium websockets
  run chromium ws
fi

step "results (client-server; websockets $WEBSOCKETS_VERSION, ws $WS_VERSION, $CHROMIUM_VERSION)"
rc=0
python3 "$HERE/report.py" "$OUT" || rc=$?
echo "interop runtime: $(( $(date +%s) - T0 ))s"
exit "$rc"
