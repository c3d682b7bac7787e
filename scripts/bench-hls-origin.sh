#!/usr/bin/env bash
# Benchmarks of the LL-HLS origin, each printing its table (docs/benchmarks.md explains them).
#
#   scripts/bench-hls-origin.sh held   [N]                blocking requests held at once (10000)
#   scripts/bench-hls-origin.sh parts  [conns] [seconds]  parts served per second (64, 10)
#   scripts/bench-hls-origin.sh players [N] [seconds]     hls.js-like players on the origin (500, 20)
#   scripts/bench-hls-origin.sh memory                    server RSS with and without a live stream
#   scripts/bench-hls-origin.sh all
#
# The stream is the built-in test pattern (`fanout serve --test-pattern`: 720p/480p/360p x264 +
# AAC, 200 ms parts, 2 s segments). Everything runs inside a private network namespace on
# loopback, against release builds of `fanout` and `fanout-hls-load`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fanout/target}"

if [[ -z "${FANOUT_BENCH_IN_NETNS:-}" ]]; then
  # --workspace: the feature set of every other release build (see scripts/bench.sh).
  cargo build --release --workspace --bin fanout --bin fanout-hls-load
  exec unshare -n env FANOUT_BENCH_IN_NETNS=1 bash -c 'ip link set lo up && exec "$0" "$@"' "$0" "$@"
fi

# 10,000 held requests are 10,000 sockets in each process (server, load generator): raise the
# soft limit on open files to the hard limit.
ulimit -n "$(ulimit -Hn)"

BIN="$CARGO_TARGET_DIR/release"
BASE=http://127.0.0.1:8080
DATA=$(mktemp -d)
SERVER_PID=
trap 'stop_server; rm -rf "$DATA"' EXIT

start_server() {
  "$BIN/fanout" serve --http-addr 127.0.0.1:8080 --udp-port 8189 --ice-loopback \
    --data-dir "$DATA" --admin-token bench-admin --web-dir web "$@" 2>"$DATA/server.log" >/dev/null &
  SERVER_PID=$!
  for _ in $(seq 100); do curl -sf "$BASE/healthz" >/dev/null && return; sleep 0.1; done
  echo "server did not start:"; cat "$DATA/server.log"; exit 1
}

stop_server() {
  if [[ -n "$SERVER_PID" ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}

# Waits until the test pattern has published at least N parts of 720p.
wait_for_parts() {
  local n=${1:-3}
  for _ in $(seq 300); do
    local c; c=$(curl -sf "$BASE/hls/test/720p/live.m3u8" | grep -c '^#EXT-X-PART:' || true)
    [[ "${c:-0}" -ge "$n" ]] && return
    sleep 0.1
  done
  echo "the test pattern published no parts"; exit 1
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# Server CPU (% of one core) over a few idle seconds: the test pattern's encoders alone.
idle_cpu() {
  local hz; hz=$(getconf CLK_TCK)
  local a; a=$(cpu_ticks "$SERVER_PID")
  sleep 5
  local b; b=$(cpu_ticks "$SERVER_PID")
  echo "server CPU with no clients (encoding the test pattern): $(( (b - a) * 100 / hz / 5 )) % of one core"
}

# Runs the load generator while sampling the server's RSS; prints the peak.
with_rss_peak() {
  local peak=0 before; before=$(rss_kib "$SERVER_PID")
  "$@" &
  local load=$!
  while kill -0 "$load" 2>/dev/null; do
    local now; now=$(rss_kib "$SERVER_PID" 2>/dev/null || echo 0)
    (( now > peak )) && peak=$now
    sleep 0.1
  done
  wait "$load"
  echo "server RSS: $((before / 1024)) MiB before, $((peak / 1024)) MiB peak during the run"
}

bench_held() {
  local n=${1:-10000}
  if (( $(ulimit -n) < n + 256 )); then
    echo "open files limited to $(ulimit -n): cannot hold $n requests"; exit 1
  fi
  start_server --test-pattern
  wait_for_parts 3
  echo "## $n blocking playlist requests held at once (720p, a part 8 parts ahead)"
  idle_cpu
  with_rss_peak "$BIN/fanout-hls-load" --base "$BASE" --mode held --players "$n" --rendition 720p \
    --ahead 8 --server-pid "$SERVER_PID"
  stop_server
}

bench_parts() {
  local conns=${1:-64} seconds=${2:-10}
  start_server --test-pattern
  wait_for_parts 10
  echo "## Parts served per second: $conns connections fetching published parts back to back"
  idle_cpu
  "$BIN/fanout-hls-load" --base "$BASE" --mode parts --players "$conns" --seconds "$seconds" \
    --server-pid "$SERVER_PID"
  stop_server
}

bench_players() {
  local n=${1:-500} seconds=${2:-20}
  start_server --test-pattern
  wait_for_parts 3
  echo "## $n hls.js-like players on the origin, $seconds s"
  idle_cpu
  with_rss_peak "$BIN/fanout-hls-load" --base "$BASE" --players "$n" --seconds "$seconds" \
    --server-pid "$SERVER_PID"
  stop_server
}

# Bytes of media the origin holds for one stream: every segment listed in the live window of
# every rendition (parts of the newest segments are kept besides; init segments are small).
live_window_bytes() {
  local total=0
  for r in 720p 480p 360p audio; do
    for s in $(curl -sf "$BASE/hls/test/$r/live.m3u8" | grep -E '^s[0-9]+\.m4s$'); do
      local b; b=$(curl -sf "$BASE/hls/test/$r/$s" | wc -c)
      total=$((total + b))
    done
  done
  echo "$total"
}

bench_memory() {
  echo "## Memory of one live stream"
  start_server
  sleep 3
  local without; without=$(rss_kib "$SERVER_PID")
  stop_server
  start_server --test-pattern
  wait_for_parts 3
  local early; early=$(rss_kib "$SERVER_PID")
  # The live window is 30 s: after 35 s it is full and memory should stop growing.
  sleep 35
  local full; full=$(rss_kib "$SERVER_PID")
  local bytes; bytes=$(live_window_bytes)
  sleep 10
  local later; later=$(rss_kib "$SERVER_PID")
  stop_server
  echo "| server | VmRSS MiB |"
  echo "|---|---|"
  echo "| no stream | $((without / 1024)) |"
  echo "| test pattern live, first parts | $((early / 1024)) |"
  echo "| test pattern live, 30 s window full | $((full / 1024)) |"
  echo "| 10 s later | $((later / 1024)) |"
  echo "segments in the live windows (4 renditions): $((bytes / 1024)) KiB"
  echo "RSS with the stream minus without: $(((full - without) / 1024)) MiB (includes the test pattern's GStreamer encoders)"
}

case "${1:-all}" in
  held) shift; bench_held "$@" ;;
  parts) shift; bench_parts "$@" ;;
  players) shift; bench_players "$@" ;;
  memory) bench_memory ;;
  all) bench_held; bench_parts; bench_players; bench_memory ;;
  *) echo "usage: $0 held [N] | parts [conns] [seconds] | players [N] [seconds] | memory | all"; exit 2 ;;
esac
