#!/usr/bin/env bash
# End-to-end tests of the chat example (examples/chat): installs what they
# need (Chromium, redis-server, nginx, Node packages), builds the example,
# runs every suite against real processes on 127.0.0.1, prints a table and
# exits non-zero if anything failed. See docs/chat.md.
#
#   bash chat-tests/run.sh          # all suites
#   bash chat-tests/run.sh --keep   # keep the logs directory
#
# Suites: (a) browser: headless Chromium, two pages, one room
# (screenshots in chat-tests/artifacts/); (b) redis: two instances share
# rooms, nothing leaks across rooms; (c) nginx: docs/deploy/scale-out.sh,
# clients (Node ws, then two Chromium pages) through nginx land on both
# instances and talk; (d) tls: wss://
# with a self-signed certificate, wsproto's tokio client (the example's
# --client mode) and Node ws; (e) auth: 401 / 403 / 400 before the
# upgrade; (f) protocol: invalid input gets error events, limits,
# keepalive drops dead peers. Ports are free ones (0 where possible), every
# step has a timeout, every process started is stopped on exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
cd "$ROOT"
export CARGO_TERM_COLOR=never
T0=$(date +%s)
step() { printf '\n=== chat-tests [%4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }

KEEP=0
for arg in "$@"; do
  case "$arg" in
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

SUITE_TIMEOUT=${CHAT_SUITE_TIMEOUT:-120} # one suite (all its checks)
START_TIMEOUT=20                         # a server to print its address

# shellcheck source-path=SCRIPTDIR source=../.ci/lib.sh
source "$ROOT/.ci/lib.sh"

OUT=$(mktemp -d /tmp/wsproto-chat-tests.XXXXXX)
ARTIFACTS="$HERE/artifacts"
RESULTS="$OUT/results"
: >"$RESULTS"
PIDS=()   # processes to stop on exit
GROUPS_=() # process groups (setsid) to stop on exit

stop_group() {
  local pgid=$1
  kill -TERM -- "-$pgid" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pgid" 2>/dev/null || true
}
# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
  local rc=$?
  for g in ${GROUPS_[@]+"${GROUPS_[@]}"}; do stop_group "$g"; done
  for p in ${PIDS[@]+"${PIDS[@]}"}; do stop_pid "$p"; done
  mkdir -p "$ARTIFACTS/logs"
  cp "$OUT"/*.log "$OUT"/*.out "$ARTIFACTS/logs/" 2>/dev/null || true
  if [ "$KEEP" -eq 1 ] || [ "$rc" -ne 0 ]; then
    echo "chat-tests logs: $OUT (copied to $ARTIFACTS/logs)"
  else
    rm -rf "$OUT"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# result NAME PASS|FAIL DETAIL: a check run by this script itself
result() {
  echo "RESULT $1 $2${3:+ $3}" | tee -a "$RESULTS"
}

# suite NAME CMD...: run a checker (it prints RESULT lines) with a timeout
suite() {
  local name=$1 rc=0
  shift
  timeout -k 10 "$SUITE_TIMEOUT" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" </dev/null || rc=$?
  grep '^RESULT ' "$OUT/$name.out" | tee -a "$RESULTS" || true
  if [ "$rc" -ne 0 ] && ! grep -q '^RESULT .* FAIL' "$OUT/$name.out"; then
    result "$name-suite" FAIL "exit status $rc$([ "$rc" -eq 124 ] && echo ": timed out after ${SUITE_TIMEOUT}s")"
  fi
  if [ "$rc" -ne 0 ]; then sed 's/^/  stderr: /' "$OUT/$name.err" | tail -20; fi
}

# start_chat NAME ARGS...: start a chat server on a free port; sets CHAT_URL
# (http:// or https://) and CHAT_PID
start_chat() {
  local name=$1
  shift
  start_listening "$OUT/$name.log" 's/^chat listening on \(https\{0,1\}:\/\/[0-9.]*:[0-9]*\).*/\1/p' \
    "$START_TIMEOUT" "$BIN" --addr 127.0.0.1:0 "$@" || return 1
  CHAT_PID=$LISTEN_PID
  CHAT_URL=$LISTEN_URL
  PIDS+=("$CHAT_PID")
}

# alive NAME PID: the server survived its suite
alive() {
  if kill -0 "$2" 2>/dev/null; then result "$1-server-alive" PASS; else result "$1-server-alive" FAIL "exited (log: $1.log)"; fi
}

# ------------------------------------------------------------------ install

step "install: Chromium, redis-server, nginx, Node packages"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt_install nodejs npm
fi
CHROMIUM=${CHROMIUM:-}
if [ -z "$CHROMIUM" ]; then
  [ -x /usr/bin/chromium ] || apt_install chromium
  CHROMIUM=/usr/bin/chromium
fi
command -v redis-server >/dev/null 2>&1 || apt_install redis-server
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || apt_install nginx
(cd "$HERE" && timeout 300 npm ci --no-audit --no-fund --loglevel=error >/dev/null)
echo "node:     $(node --version)"
echo "chromium: $(timeout 30 "$CHROMIUM" --version 2>/dev/null | head -1 || echo unknown)"
echo "redis:    $(redis-server --version | head -1)"
echo "nginx:    $({ nginx -v 2>&1 || /usr/sbin/nginx -v 2>&1; } | head -1)"

step "build the chat example (release)"
timeout 1500 cargo build --release --all-features --example chat
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/chat"

rm -rf "$ARTIFACTS"
mkdir -p "$ARTIFACTS"

# ------------------------------------------------------------------- suites

step "(a) browser: headless Chromium, two pages in one room"
suite browser node "$HERE/browser.js" "$BIN" "$ARTIFACTS" "$CHROMIUM"
[ -f "$ARTIFACTS/chat.png" ] && echo "  screenshot: $ARTIFACTS/chat.png"

step "(b)+(c) redis + nginx: docs/deploy/scale-out.sh with two instances"
NGINX_PORT=$(free_port)
REDIS_PORT=$(free_port)
SCALE_LOG="$OUT/scale-out.log"
: >"$SCALE_LOG"
NGINX_PORT=$NGINX_PORT REDIS_PORT=$REDIS_PORT CHAT_PORTS="0 0" CHAT_BIN="$BIN" WORKDIR="$OUT/scale-out" \
  setsid bash "$ROOT/docs/deploy/scale-out.sh" >"$SCALE_LOG" 2>&1 </dev/null &
SCALE_PID=$!
GROUPS_+=("$SCALE_PID")
for _ in $(seq $((START_TIMEOUT * 10))); do
  grep -q '^scale-out ready' "$SCALE_LOG" && break
  kill -0 "$SCALE_PID" 2>/dev/null || break
  sleep 0.1
done
if grep -q '^scale-out ready' "$SCALE_LOG"; then
  sed 's/^/  /' "$SCALE_LOG"
  mapfile -t BACKENDS < <(sed -n 's/^  backend   http:\/\/\([0-9.:]*\)\/.*/\1/p' "$SCALE_LOG")
  suite scale node "$HERE/checks.js" scale "ws://${BACKENDS[0]}/ws" "ws://${BACKENDS[1]}/ws" "ws://127.0.0.1:$NGINX_PORT/ws"
  suite browser-nginx node "$HERE/browser.js" --via "http://127.0.0.1:$NGINX_PORT" "$ARTIFACTS" "$CHROMIUM"
  # the script stops everything it started on SIGTERM
  kill -TERM "$SCALE_PID" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 -- "-$SCALE_PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 -- "-$SCALE_PID" 2>/dev/null; then
    result scale-out-stops FAIL "processes left after SIGTERM: $(pgrep -g "$SCALE_PID" | tr '\n' ' ')"
  else
    result scale-out-stops PASS "SIGTERM stopped redis-server, both instances and nginx"
  fi
  cp "$OUT/scale-out/"*.log "$OUT/" 2>/dev/null || true
else
  sed 's/^/  /' "$SCALE_LOG"
  result scale-out-starts FAIL "docs/deploy/scale-out.sh did not get ready in ${START_TIMEOUT}s"
fi

step "(d) tls: https + wss with a self-signed certificate"
timeout 30 "$BIN" --gen-cert "$OUT/tls" >/dev/null
timeout 30 "$BIN" --gen-cert "$OUT/tls-other" >/dev/null
start_chat tls --tls-cert "$OUT/tls/cert.pem" --tls-key "$OUT/tls/key.pem"
WSS_URL="${CHAT_URL/https:/wss:}/ws"
echo "  $CHAT_URL"
if timeout 30 "$BIN" --client "$WSS_URL" --ca "$OUT/tls/cert.pem" --room tls --user rusty \
     --say "hello over wss" --say "and again" >"$OUT/tls-client.out" 2>&1 \
   && grep -q 'rusty: hello over wss' "$OUT/tls-client.out" && grep -q 'rusty: and again' "$OUT/tls-client.out"; then
  result tls-wsproto-client PASS "wsproto tokio client over tokio-rustls: joined, 2 messages echoed by the room, closed 1000"
else
  result tls-wsproto-client FAIL "$(tr '\n' ' ' <"$OUT/tls-client.out")"
fi
if timeout 30 "$BIN" --client "$WSS_URL" --ca "$OUT/tls-other/cert.pem" --say x >"$OUT/tls-client-untrusted.out" 2>&1; then
  result tls-wsproto-client-untrusted FAIL "connected with a CA that did not sign the server's certificate"
else
  result tls-wsproto-client-untrusted PASS "$(grep -o 'TLS handshake.*' "$OUT/tls-client-untrusted.out" | head -1)"
fi
suite tls node "$HERE/checks.js" tls "$WSS_URL" "$OUT/tls/cert.pem"
alive tls "$CHAT_PID"

step "(e) auth and Origin: statuses before the upgrade"
TOKEN="t0ken-$RANDOM$RANDOM"
start_chat auth --token "$TOKEN"
echo "  $CHAT_URL"
suite auth node "$HERE/checks.js" auth "${CHAT_URL/http:/ws:}/ws" "$TOKEN"
alive auth "$CHAT_PID"

step "(f) protocol: error events, limits, keepalive"
start_chat protocol --keepalive 1 --keepalive-timeout 1 --max-text 100 --max-message 4096
echo "  $CHAT_URL"
suite protocol node "$HERE/checks.js" protocol "${CHAT_URL/http:/ws:}/ws"
alive protocol "$CHAT_PID"

# ------------------------------------------------------------------ summary

step "results"
pass=$(grep -c '^RESULT [^ ]* PASS' "$RESULTS" || true)
fail=$(grep -c '^RESULT [^ ]* FAIL' "$RESULTS" || true)
awk '{ printf "  %-4s %s\n", $3, $2 }' "$RESULTS"
echo "chat-tests runtime: $(( $(date +%s) - T0 ))s; screenshots in $ARTIFACTS"
echo "chat-tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
