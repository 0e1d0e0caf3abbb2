#!/usr/bin/env bash
# Scale-out on one machine: redis-server, two chat instances sharing rooms
# through it (--redis), and nginx in front (docs/deploy/nginx.conf).
#
#   bash docs/deploy/scale-out.sh        # then open http://127.0.0.1:8080/
#
# Needs redis-server and nginx (Debian/Ubuntu: apt-get install -y
# redis-server nginx); builds the chat example unless CHAT_BIN is set.
# Ctrl-C (or SIGTERM) stops everything it started. Settings (environment):
#
#   NGINX_PORT=8080  REDIS_PORT=6379  CHAT_PORTS="8081 8082"  (0 = a free port;
#                    only the instances can pick their own, give nginx and
#                    redis real ports)
#   CHAT_BIN=path    a built examples/chat binary (default: cargo build --release)
#   CHAT_ARGS="..."  extra flags for both instances (e.g. "--token s3cret")
#   WORKDIR=dir      where configs and logs go (default: a new /tmp dir)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
NGINX_PORT=${NGINX_PORT:-8080}
REDIS_PORT=${REDIS_PORT:-6379}
read -r -a CHAT_PORTS <<<"${CHAT_PORTS:-8081 8082}"
read -r -a EXTRA <<<"${CHAT_ARGS:-}"
START_TIMEOUT=${START_TIMEOUT:-20}

for tool in redis-server redis-cli nginx; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
    echo "scale-out: $tool not found (Debian/Ubuntu: apt-get install -y redis-server nginx)" >&2
    exit 1
  fi
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if [ -z "${CHAT_BIN:-}" ]; then
  echo "scale-out: building the chat example ..."
  (cd "$ROOT" && cargo build --release --features tokio --example chat)
  CHAT_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/chat"
fi

WORKDIR=${WORKDIR:-$(mktemp -d /tmp/chat-scale-out.XXXXXX)}
mkdir -p "$WORKDIR/tmp"
chmod 755 "$WORKDIR" # nginx workers run as an unprivileged user

PIDS=()
# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  echo "scale-out: stopped (logs in $WORKDIR)"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for WHAT CMD...: retry CMD until it succeeds or START_TIMEOUT passes
wait_for() {
  local what=$1
  shift
  for _ in $(seq $((START_TIMEOUT * 10))); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "scale-out: $what did not start in ${START_TIMEOUT}s" >&2
  return 1
}

# 1. redis-server: in the foreground of its own process, no persistence
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
  --dir "$WORKDIR" --logfile "$WORKDIR/redis.log" >/dev/null 2>&1 &
PIDS+=($!)
wait_for "redis-server on port $REDIS_PORT (log: $WORKDIR/redis.log)" \
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping
REDIS_URL="redis://127.0.0.1:$REDIS_PORT"

# 2. two chat instances sharing rooms through Redis; pages are served by
#    nginx's origin, so allow it
BACKENDS=()
names=(a b c d e f g h)
i=0
for port in "${CHAT_PORTS[@]}"; do
  name="chat-${names[$i]}"
  log="$WORKDIR/$name.log"
  "$CHAT_BIN" --addr "127.0.0.1:$port" --redis "$REDIS_URL" --name "$name" \
    --allowed-origin "http://127.0.0.1:$NGINX_PORT" --allowed-origin "http://localhost:$NGINX_PORT" \
    ${EXTRA[@]+"${EXTRA[@]}"} >"$log" 2>&1 &
  PIDS+=($!)
  wait_for "$name (log: $log)" grep -q 'listening on' "$log" || { cat "$log" >&2; exit 1; }
  actual=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
  BACKENDS+=("127.0.0.1:$actual")
  i=$((i + 1))
done

# 3. nginx, from docs/deploy/nginx.conf with this run's addresses
{
  sed -e "s/listen 127\.0\.0\.1:8080;/listen 127.0.0.1:$NGINX_PORT;/" \
      -e '/server 127\.0\.0\.1:808[12] /d' "$HERE/nginx.conf" |
    awk -v backends="${BACKENDS[*]}" '
      { print }
      /least_conn;/ { n = split(backends, b, " "); for (k = 1; k <= n; k++) printf "        server %s max_fails=1 fail_timeout=5s;\n", b[k] }'
} >"$WORKDIR/nginx.conf"
"$NGINX" -t -q -p "$WORKDIR/" -c "$WORKDIR/nginx.conf"
"$NGINX" -p "$WORKDIR/" -c "$WORKDIR/nginx.conf" >"$WORKDIR/nginx.stderr" 2>&1 &
PIDS+=($!)
wait_for "nginx on port $NGINX_PORT (log: $WORKDIR/error.log)" \
  bash -c "exec 3<>/dev/tcp/127.0.0.1/$NGINX_PORT"

echo "scale-out ready:"
echo "  open      http://127.0.0.1:$NGINX_PORT/   (nginx: ws://127.0.0.1:$NGINX_PORT/ws)"
i=0
for b in "${BACKENDS[@]}"; do
  echo "  backend   http://$b/   (chat-${names[$i]})"
  i=$((i + 1))
done
echo "  redis     $REDIS_URL"
echo "  logs      $WORKDIR"
echo "Ctrl-C stops everything."

# until a signal, or until one of them dies
while true; do
  for pid in "${PIDS[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "scale-out: process $pid exited; stopping" >&2
      exit 1
    fi
  done
  sleep 1 &
  wait $! || true
done
