#!/usr/bin/env bash
# Fuzz smoke test: build every cargo-fuzz target, then run each one for a
# bounded time starting from its committed seeds (fuzz/seeds/TARGET, copied
# into a temporary corpus so the repository stays clean) with the shared
# dictionary. Fails on any crash, failed assertion, leak report,
# out-of-memory or timeout, and prints the executions per target.
#
#   bash .ci/fuzz-smoke.sh                 # 60 s per target
#   FUZZ_SECONDS=20 bash .ci/fuzz-smoke.sh # shorter
#   FUZZ_JOBS=1 bash .ci/fuzz-smoke.sh     # one target at a time
#   bash .ci/fuzz-smoke.sh connection differential   # only these targets
#
# Needs cargo-fuzz (installed here if missing) and a C++ compiler for
# libFuzzer; no nightly toolchain (`-s none`: no sanitizer). See
# docs/fuzzing.md for long runs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
NPROC=$(nproc 2>/dev/null || echo 1)
FUZZ_JOBS=${FUZZ_JOBS:-$(( NPROC < 2 ? 1 : 2 ))}
# Per-input limits: a single input running 10 s, or the process holding
# 2 GiB (a single allocation that large, too), is a finding.
LIBFUZZER_LIMITS=(-timeout=10 -rss_limit_mb=2048)

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz
fi

cd "$ROOT/fuzz"
echo "fuzz-smoke: building all targets (cargo fuzz build -s none)"
cargo fuzz build -s none
HOST=$(rustc -vV | sed -n 's/^host: //p')
BIN_DIR="$ROOT/fuzz/target/$HOST/release"

if [ $# -gt 0 ]; then
  TARGETS=("$@")
else
  mapfile -t TARGETS < <(cargo fuzz list)
fi
[ ${#TARGETS[@]} -gt 0 ] || { echo "fuzz-smoke: no targets"; exit 1; }

WORK=$(mktemp -d /tmp/wsproto-fuzz-smoke.XXXXXX)
KEEP_WORK=0
cleanup() { [ "$KEEP_WORK" -eq 1 ] || rm -rf "$WORK"; }
trap cleanup EXIT

run_target() { # TARGET -> writes $WORK/TARGET.log and $WORK/TARGET.rc
  local t=$1 corpus="$WORK/corpus/$t" art="$WORK/artifacts/$t/"
  mkdir -p "$corpus" "$art"
  if [ -d "$ROOT/fuzz/seeds/$t" ]; then
    cp -R "$ROOT/fuzz/seeds/$t/." "$corpus/"
  fi
  local rc=0
  "$BIN_DIR/$t" "$corpus" \
    -dict="$ROOT/fuzz/ws.dict" \
    -max_total_time="$FUZZ_SECONDS" \
    "${LIBFUZZER_LIMITS[@]}" \
    -print_final_stats=1 \
    -artifact_prefix="$art" \
    > "$WORK/$t.log" 2>&1 || rc=$?
  echo "$rc" > "$WORK/$t.rc"
}

echo "fuzz-smoke: ${#TARGETS[@]} targets, ${FUZZ_SECONDS}s each, $FUZZ_JOBS at a time"
T0=$(date +%s)
running=()
for t in "${TARGETS[@]}"; do
  [ -x "$BIN_DIR/$t" ] || { echo "fuzz-smoke: no binary for target $t"; exit 1; }
  run_target "$t" &
  running+=($!)
  if [ ${#running[@]} -ge "$FUZZ_JOBS" ]; then
    wait "${running[0]}"
    running=("${running[@]:1}")
  fi
done
for pid in "${running[@]}"; do wait "$pid"; done

failed=()
printf '\n%-22s %14s %8s %s\n' target executions exec/s result
for t in "${TARGETS[@]}"; do
  log="$WORK/$t.log"
  rc=$(cat "$WORK/$t.rc" 2>/dev/null || echo missing)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  execs=${execs:-0}
  result=ok
  if [ "$rc" != 0 ]; then
    result="FAILED (exit $rc)"
  elif grep -qE 'ERROR: (libFuzzer|LeakSanitizer|AddressSanitizer)|^SUMMARY: |panicked at' "$log"; then
    result="FAILED (error report)"
  elif ls "$WORK/artifacts/$t/" 2>/dev/null | grep -q .; then
    result="FAILED (artifact written)"
  elif [ "$execs" -eq 0 ]; then
    result="FAILED (no executions)"
  fi
  printf '%-22s %14s %8s %s\n' "$t" "$execs" "$(( execs / (FUZZ_SECONDS > 0 ? FUZZ_SECONDS : 1) ))" "$result"
  [ "$result" = ok ] || failed+=("$t")
done
echo "fuzz-smoke: $(( $(date +%s) - T0 ))s of fuzzing"

if [ ${#failed[@]} -gt 0 ]; then
  KEEP_WORK=1
  for t in "${failed[@]}"; do
    echo
    echo "=== $t: last lines of the libFuzzer log ($WORK/$t.log)"
    tail -n 40 "$WORK/$t.log"
    for a in "$WORK/artifacts/$t/"*; do
      [ -f "$a" ] || continue
      echo "--- reproducer $a (base64):"
      base64 -w0 "$a"; echo
      echo "    replay: cd fuzz && cargo fuzz run -s none $t $a"
    done
  done
  echo
  echo "fuzz-smoke: FAILED: ${failed[*]} (inputs kept in $WORK)"
  exit 1
fi
echo "fuzz-smoke: all ${#TARGETS[@]} targets ran clean"
