#!/usr/bin/env bash
# Benchmarks of the SFU, each printing its table (docs/benchmarks.md explains them).
#
#   scripts/bench.sh g2g      [seconds]      WHIP -> WHEP glass to glass in Chromium, p50/p95
#   scripts/bench.sh ttff     [joins]        WHEP time to first decoded frame, p50/p95
#   scripts/bench.sh fanout   [N ...]        1 publisher -> N subscribers (str0m load generator)
#   scripts/bench.sh hls-g2g  [seconds] [hls_play.mjs options]
#                                            LL-HLS glass to glass: test pattern -> hls.js in Chromium
#   scripts/bench.sh all
#
# Everything runs inside a private network namespace on loopback, against a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fanout/target}"

if [[ -z "${FANOUT_BENCH_IN_NETNS:-}" ]]; then
  # Always --workspace: one feature set for every release build (`./fanout.sh run` too), so
  # no build undoes another's.
  if [[ "${1:-all}" == hls-g2g ]]; then
    cargo build --release --workspace --bin fanout # no load generator needed
  else
    cargo build --release --workspace --bin fanout --bin fanout-loadgen
  fi
  exec unshare -n env FANOUT_BENCH_IN_NETNS=1 bash -c 'ip link set lo up && exec "$0" "$@"' "$0" "$@"
fi

BIN="$CARGO_TARGET_DIR/release"
DATA=$(mktemp -d)
ADMIN=bench-admin
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$DATA"' EXIT

start_server() {
  "$BIN/fanout" serve --http-addr 127.0.0.1:8080 --udp-port 8189 --ice-loopback \
    --data-dir "$DATA" --admin-token "$ADMIN" --web-dir web "$@" 2>"$DATA/server.log" >/dev/null &
  SERVER_PID=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:8080/healthz >/dev/null && return; sleep 0.1; done
  echo "server did not start:"; cat "$DATA/server.log"; exit 1
}

stop_server() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }

new_stream() {
  curl -sf -X POST http://127.0.0.1:8080/api/v1/streams -H "Authorization: Bearer $ADMIN" -d '{"title":"bench"}'
}

field() { python3 -c "import sys,json;print(json.load(sys.stdin)['$1'])"; }

bench_g2g() {
  local seconds=${1:-30}
  start_server
  local s; s=$(new_stream)
  echo "## WHIP -> WHEP glass to glass (Chromium, 1280x720 simulcast, ${seconds} s)"
  (cd web && node test/g2g.mjs --base http://127.0.0.1:8080 --stream "$(echo "$s" | field id)" \
    --key "$(echo "$s" | field streamKey)" --seconds "$seconds" >/dev/null)
  echo "## The floor: two Chromium peers connected directly in one page (no server)"
  (cd web && node test/g2g.mjs --loopback --seconds "$seconds" >/dev/null)
  stop_server
}

bench_ttff() {
  local joins=${1:-20}
  start_server
  local s; s=$(new_stream)
  (cd web && node test/ttff.mjs --base http://127.0.0.1:8080 --stream "$(echo "$s" | field id)" \
    --key "$(echo "$s" | field streamKey)" --joins "$joins" >/dev/null)
  stop_server
}

bench_fanout() {
  local counts=("$@")
  ((${#counts[@]})) || counts=(50 200 500)
  for n in "${counts[@]}"; do
    # Every subscriber comes from 127.0.0.1: the per-client API limit would refuse most of them.
    start_server --api-rate-limit 0
    local s; s=$(new_stream)
    local id key; id=$(echo "$s" | field id); key=$(echo "$s" | field streamKey)
    (cd web && exec node test/publish.mjs --base http://127.0.0.1:8080 --stream "$id" --key "$key" --seconds 600 >/dev/null 2>&1) &
    local pub=$!
    sleep 6
    echo "## Fan-out: 1 publisher (3 layers) -> $n subscribers"
    # FANOUT_BENCH_PERF=dir: also record a CPU profile of the server (perf) for 15 s mid-run.
    if [[ -n "${FANOUT_BENCH_PERF:-}" ]]; then
      (sleep 10 && perf record -F 499 -g -p "$SERVER_PID" -o "$FANOUT_BENCH_PERF/fanout-$n.data" \
        -- sleep 15 >/dev/null 2>&1) &
    fi
    "$BIN/fanout-loadgen" --whep-url "http://127.0.0.1:8080/whep/$id" --subscribers "$n" --seconds 30 \
      --server-pid "$SERVER_PID" --metrics-url http://127.0.0.1:8080/metrics || true
    kill "$pub" 2>/dev/null || true
    stop_server
  done
}

bench_hls_g2g() {
  local seconds=${1:-30}
  shift || true
  start_server --test-pattern
  # Join a running stream, as viewers do, rather than the encoders' start-up.
  sleep 5
  echo "## LL-HLS glass to glass (test pattern 720p/480p/360p -> hls.js lowLatencyMode in Chromium, ${seconds} s)"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
  local out="$DATA/hls_play.json"
  # The page's console goes to stderr too; keep the table.
  (cd web && node test/hls_play.mjs --base http://127.0.0.1:8080 --seconds "$seconds" --markdown "$@" \
    2>&1 >"$out" | grep -v '^\[hls\]')
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  stop_server
}

case "${1:-all}" in
  g2g) shift; bench_g2g "$@" ;;
  ttff) shift; bench_ttff "$@" ;;
  fanout) shift; bench_fanout "$@" ;;
  hls-g2g) shift; bench_hls_g2g "$@" ;;
  all) bench_g2g; bench_ttff; bench_fanout ;;
  *) echo "usage: $0 g2g|ttff|fanout|hls-g2g|all" >&2; exit 2 ;;
esac
