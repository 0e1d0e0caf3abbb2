# shellcheck shell=bash
# Shell helpers shared by .ci/run, interop/run.sh and chat-tests/run.sh
# (sourced; bash, `set -euo pipefail` in the caller).

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
APT_UPDATED=0

# apt_install PKG...: install the Debian packages that are missing
apt_install() {
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$APT_UPDATED" -eq 0 ]; then timeout 600 $SUDO apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive timeout 900 $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
}

# stop_pid PID: TERM, up to 5 s to exit, then KILL; reaps it
stop_pid() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# start_listening LOG SED_EXPR SECONDS CMD...: start CMD in the background
# (output in LOG) and wait until `sed -n SED_EXPR` finds its address in LOG.
# Sets LISTEN_PID and LISTEN_URL; fails (printing LOG) if CMD exits or does
# not print its address in time.
start_listening() {
  local log=$1 expr=$2 secs=$3
  shift 3
  "$@" >"$log" 2>&1 &
  LISTEN_PID=$!
  LISTEN_URL=""
  for _ in $(seq $((secs * 10))); do
    LISTEN_URL=$(sed -n "$expr" "$log" | head -1)
    [ -n "$LISTEN_URL" ] && return 0
    kill -0 "$LISTEN_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "$* did not start:" >&2
  cat "$log" >&2
  return 1
}
