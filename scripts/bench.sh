#!/usr/bin/env bash
# Benchmarks of the SFU, each printing its table (docs/benchmarks.md explains them).
#
#   scripts/bench.sh g2g      [seconds]      WHIP -> WHEP glass to glass in Chromium, p50/p95
#   scripts/bench.sh ttff     [joins]        WHEP time to first decoded frame, p50/p95
#   scripts/bench.sh fanout   [N ...]        1 publisher -> N subscribers (str0m load generator)
#   scripts/bench.sh hls-g2g  [seconds] [hls_play.mjs options]
#                                            LL-HLS glass to glass: test pattern -> hls.js in Chromium
#   scripts/bench.sh live-g2g [seconds]      WHIP -> LL-HLS glass to glass (the bridge), with the same
#                                            run's WHIP -> WHEP figure beside it
#   scripts/bench.sh bridge-cost [ladder ...]
#                                            CPU and memory of bridging one 720p30 room per ladder
#                                            (default: 720,480,360 720,360 720 480,360)
#   scripts/bench.sh bridge-streams [N]      1..N bridged 720p30 rooms at once: real time or not
#   scripts/bench.sh hls-start [starts]      time from a publish to playable LL-HLS, p50/p95
#   scripts/bench.sh overload [N] [seconds] [busy loops]
#                                            N viewers of a 720p room on a saturated machine: delivered
#                                            vs written, age at send, memory, media after the publisher stops
#   scripts/bench.sh versus-janus [N ...]    server CPU per delivered packet, Fanout and Janus side by side,
#                                            pinned, with the floor of a bare UDP fan-out (default: 10 25 50
#                                            100 200 500; needs the janus package)
#   scripts/bench.sh ingest-g2g [seconds]   RTMP -> WHEP and SRT -> WHEP glass to glass (fanout-push-test ->
#                                            Chromium), without and with B-frames, beside the encoder's floor
#   scripts/bench.sh ingest-cost [N ...]     server CPU per ingested 720p30 2.5 Mb/s RTMP stream (passthrough and
#                                            re-encoded), then N passthrough ingests with one WHEP viewer each:
#                                            loss (default N: 10 20 30 40 50; needs ffmpeg)
#   scripts/bench.sh ingest-bridge-cost [N ...]  server CPU of the LL-HLS bridge of N RTMP rooms, the source's
#                                            H.264 copied as the top rung against every rung encoded (default
#                                            N: 1 2; needs ffmpeg)
#   scripts/bench.sh ingest-residence [seconds]  the server's own time for ingested video: frame in the ingest
#                                            sink -> packet sent to a WHEP viewer (RTMP, SRT; video only)
#   scripts/bench.sh session-cost [N ...]   what N WHEP offers that never connect cost the server (CPU per offer,
#                                            memory per session) and how long until the connect timeout has
#                                            closed them all (default N: 200 1000 2000)
#   scripts/bench.sh all
#
# Everything runs inside a private network namespace on loopback, against a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fanout/target}"

if [[ -z "${FANOUT_BENCH_IN_NETNS:-}" ]]; then
  # Always --workspace: one feature set for every release build (`./fanout.sh run` too), so
  # no build undoes another's.
  case "${1:-all}" in
    hls-g2g | live-g2g) cargo build --release --workspace --bin fanout ;; # no load generator
    ingest-g2g) cargo build --release --workspace --bin fanout --bin fanout-push-test ;;
    ingest-cost) cargo build --release --workspace --bin fanout --bin fanout-loadgen ;;
    ingest-bridge-cost | session-cost) cargo build --release --workspace --bin fanout ;;
    ingest-residence) cargo build --release --workspace --bin fanout --bin fanout-push-test --bin fanout-loadgen ;;
    versus-janus) cargo build --release --workspace --bin fanout --bin fanout-loadgen --bin fanout-publish \
      --bin fanout-udp-floor ;;
    *) cargo build --release --workspace --bin fanout --bin fanout-loadgen --bin fanout-publish ;;
  esac
  exec unshare -n env FANOUT_BENCH_IN_NETNS=1 bash -c 'ip link set lo up && exec "$0" "$@"' "$0" "$@"
fi

BIN="$CARGO_TARGET_DIR/release"
DATA=$(mktemp -d)
ADMIN=bench-admin
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$DATA"' EXIT

# Stops the ingest pushers and the server.
ingest_stop() {
  kill "${INGEST_PUSHERS[@]}" 2>/dev/null || true
  wait "${INGEST_PUSHERS[@]}" 2>/dev/null || true
  stop_server
}

start_server() {
  # FANOUT_BENCH_SERVER=path: another server build (a before/after comparison).
  # No session caps: the benches open hundreds of sessions from one address at once.
  FANOUT_MAX_CONNECTING_PER_CLIENT=0 FANOUT_MAX_SESSIONS=0 \
  "${FANOUT_BENCH_SERVER:-$BIN/fanout}" serve --http-addr 127.0.0.1:8080 --udp-port 8189 --ice-loopback \
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
  # The SFU alone: a transcoder per room would share the cores it is measured on.
  start_server --no-hls-bridge
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
  start_server --no-hls-bridge
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
    start_server --api-rate-limit 0 --no-hls-bridge
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

# CPU seconds the process has used (user + system), from /proc.
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}

rss_mib() { awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

# A webrtc-rs publisher of the 720p30 test pattern (VP8 2.5 Mb/s + Opus) on a new stream; sets
# STREAM and PUBLISHER.
publish_720p() {
  local s; s=$(new_stream)
  STREAM=$(echo "$s" | field id)
  "$BIN/fanout-publish" --whip-url "http://127.0.0.1:8080/whip/$STREAM" --key "$(echo "$s" | field streamKey)" \
    --size 1280x720 --seconds 0 >"$DATA/publish-$STREAM.log" 2>&1 &
  PUBLISHER=$!
}

bench_live_g2g() {
  local seconds=${1:-30}
  start_server
  local s; s=$(new_stream)
  local id; id=$(echo "$s" | field id)
  echo "## WHIP -> LL-HLS glass to glass (Chromium 1280x720 simulcast -> bridge, default ladder -> hls.js, ${seconds} s)"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
  # The publisher and a WHEP viewer for the whole run: the WHEP figure of the same run.
  (cd web && node test/g2g.mjs --base http://127.0.0.1:8080 --stream "$id" --key "$(echo "$s" | field streamKey)" \
    --seconds "$((seconds + 25))" >"$DATA/g2g.json" 2>"$DATA/g2g.txt") &
  local g2g=$!
  python3 scripts/hls_watch.py ready http://127.0.0.1:8080 "$id" --timeout 60 >/dev/null
  sleep 5 # join a running stream, as viewers do
  (cd web && node test/hls_play.mjs --base http://127.0.0.1:8080 --stream "$id" --seconds "$seconds" --markdown \
    2>&1 >"$DATA/hls_play.json" | grep -v '^\[hls\]')
  wait "$g2g" || true
  echo "## The same run's WHIP -> WHEP glass to glass"
  cat "$DATA/g2g.txt"
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  stop_server
}

# One ladder: the server's CPU and memory with a 720p30 room bridged, minus the same without
# the bridge; real time when the newest media listed stays within about a part of the clock.
bridge_cost_row() {
  local ladder=$1 warm=10 window=20
  local args=(--hls-ladder "$ladder")
  [[ "$ladder" == none ]] && args=(--no-hls-bridge)
  start_server "${args[@]}"
  publish_720p
  sleep "$warm"
  local rss0; rss0=$(rss_mib "$SERVER_PID")
  local c0; c0=$(cpu_seconds "$SERVER_PID")
  local lag='{}'
  if [[ "$ladder" == none ]]; then
    sleep "$window"
  else
    local top; top="$(echo "$ladder" | cut -d, -f1)p"
    lag=$(python3 scripts/hls_watch.py lag http://127.0.0.1:8080 "$STREAM" "$top" "$window" || echo '{}')
  fi
  local c1; c1=$(cpu_seconds "$SERVER_PID")
  local rss1; rss1=$(rss_mib "$SERVER_PID")
  kill "$PUBLISHER" 2>/dev/null || true
  stop_server
  python3 - "$ladder" "$c0" "$c1" "$window" "$rss1" "$lag" "${BASE_CPU:-}" "${BASE_RSS:-}" <<'PY'
import json, sys
ladder, c0, c1, window, rss, lag, base_cpu, base_rss = sys.argv[1:]
cpu = (float(c1) - float(c0)) / float(window) * 100
lag = json.loads(lag)
extra = f"{cpu - float(base_cpu):.0f} %" if base_cpu else "-"
extra_rss = f"{int(rss) - int(base_rss)} MiB" if base_rss else "-"
real = "-" if not lag else ("yes" if (lag.get("p95Ms") or 1e9) < 1500 else "no")
print(f"| {ladder} | {cpu:.0f} % | {extra} | {rss} MiB | {extra_rss} | {lag.get('p50Ms', '-')} / {lag.get('p95Ms', '-')} ms | {real} |")
PY
  LAST_CPU=$(awk -v a="$c0" -v b="$c1" -v w="$window" 'BEGIN { print (b - a) / w * 100 }')
  LAST_RSS=$rss1
}

bench_bridge_cost() {
  local ladders=("$@")
  ((${#ladders[@]})) || ladders=(720,480,360 720,360 720 480,360)
  echo "## Bridge cost: one 720p30 VP8 room (webrtc-rs publisher, 2.5 Mb/s + Opus), x264 ultrafast"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
  echo "| ladder | server CPU (of one core) | the bridge's share | server RSS | the bridge's share | newest media behind the clock p50 / p95 | real time |"
  echo "|---|---|---|---|---|---|---|"
  BASE_CPU='' BASE_RSS='' bridge_cost_row none
  BASE_CPU=$LAST_CPU BASE_RSS=$LAST_RSS
  for ladder in "${ladders[@]}"; do bridge_cost_row "$ladder"; done
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
}

bench_bridge_streams() {
  local max=${1:-3}
  echo "## Bridged 720p30 rooms at once (default ladder, x264 ultrafast)"
  echo "| rooms | server CPU (of one core) | newest media behind the clock, per room: p50 / p95 | real time |"
  echo "|---|---|---|---|"
  for n in $(seq 1 "$max"); do
    start_server
    local streams=() publishers=()
    for _ in $(seq "$n"); do publish_720p; streams+=("$STREAM"); publishers+=("$PUBLISHER"); done
    sleep 10
    local c0; c0=$(cpu_seconds "$SERVER_PID")
    local lags=()
    for id in "${streams[@]}"; do
      python3 scripts/hls_watch.py lag http://127.0.0.1:8080 "$id" 720p 20 >"$DATA/lag-$id.json" &
      lags+=($!)
    done
    wait "${lags[@]}" || true
    local c1; c1=$(cpu_seconds "$SERVER_PID")
    local cells="" real=yes
    for id in "${streams[@]}"; do
      local l; l=$(cat "$DATA/lag-$id.json" 2>/dev/null || echo '{}')
      local p50 p95; p50=$(echo "$l" | python3 -c 'import sys,json; print(json.load(sys.stdin).get("p50Ms"))')
      p95=$(echo "$l" | python3 -c 'import sys,json; print(json.load(sys.stdin).get("p95Ms"))')
      cells+="$p50 / $p95 ms; "
      [[ "$p95" != None ]] && ((p95 < 1500)) || real=no
    done
    echo "| $n | $(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.0f %%", (b - a) / 20 * 100 }') | ${cells%; } | $real |"
    kill "${publishers[@]}" 2>/dev/null || true
    stop_server
  done
}

bench_hls_start() {
  local starts=${1:-10}
  start_server
  echo "## Time from a publish (webrtc-rs, 720p30 VP8 + Opus; its first packet is a keyframe) to playable LL-HLS"
  local times=()
  for i in $(seq "$starts"); do
    publish_720p
    # The publisher prints its resource once connected: its first keyframe goes out then.
    for _ in $(seq 200); do grep -q '^location' "$DATA/publish-$STREAM.log" 2>/dev/null && break; sleep 0.05; done
    local t; t=$(python3 scripts/hls_watch.py ready http://127.0.0.1:8080 "$STREAM" --timeout 30 || echo timeout)
    times+=("$t")
    echo "start $i: $t s"
    kill "$PUBLISHER" 2>/dev/null || true
    wait "$PUBLISHER" 2>/dev/null || true
  done
  printf '%s\n' "${times[@]}" | python3 -c '
import sys
t = sorted(float(x) for x in sys.stdin if x.strip() and x.strip() != "timeout")
pick = lambda p: t[min(len(t) - 1, int(p / 100 * len(t)))]
print(f"| starts | p50 | p95 | max |\n|---|---|---|---|\n| {len(t)} | {pick(50):.2f} s | {pick(95):.2f} s | {t[-1]:.2f} s |")'
  stop_server
}

# One 720p30 VP8 publisher (webrtc-rs, one layer), N subscribers from the load generator, and
# busy loops that keep both cores saturated for the whole run; then the publisher stops
# abruptly (SIGKILL) and the load generator shows how long media still reached subscribers.
bench_overload() {
  local n=${1:-50} seconds=${2:-60} hogs=${3:-2}
  local url=http://127.0.0.1:8080/metrics
  start_server --api-rate-limit 0 --no-hls-bridge
  publish_720p
  sleep 5
  echo "## Overload: 1 publisher (720p30 VP8 2.5 Mb/s, one layer) -> $n subscribers, $hogs busy loops, ${seconds} s"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
  local hog_pids=()
  for _ in $(seq "$hogs"); do
    (while :; do :; done) &
    hog_pids+=($!)
  done
  local c0; c0=$(python3 scripts/sfu_watch.py counters "$url")
  "$BIN/fanout-loadgen" --whep-url "http://127.0.0.1:8080/whep/$STREAM" --subscribers "$n" \
    --seconds "$((seconds + 20))" --server-pid "$SERVER_PID" --metrics-url "$url" --json >"$DATA/load.json" &
  local load=$!
  sleep 5 # ramp and settle
  python3 scripts/sfu_watch.py memory "$SERVER_PID" "$seconds" 10 >"$DATA/memory.json"
  python3 scripts/sfu_watch.py stop "$PUBLISHER" >"$DATA/stop.json"
  wait "$load" || true
  local c1; c1=$(python3 scripts/sfu_watch.py counters "$url")
  kill "${hog_pids[@]}" 2>/dev/null || true
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  python3 - "$c0" "$c1" "$DATA/load.json" "$DATA/memory.json" "$DATA/stop.json" <<'PY'
import json, sys
c0, c1 = json.loads(sys.argv[1]), json.loads(sys.argv[2])
load = json.load(open(sys.argv[3]))
memory = json.load(open(sys.argv[4]))
stopped = json.load(open(sys.argv[5]))["stoppedUnixMs"]
after = (load.get("last_media_unix_ms") or stopped) - stopped
d = {k: c1[k] - c0[k] for k in c0 if k != "at"}
written, delivered = d["packets_out"], load["packets"]
delay = load.get("server_forward_delay") or {}
print("| subscribers connected | written | delivered | delivered / written | late drops | send-buffer drops | loss max | age at send p50 / p99 | worst video lag at a subscriber | server RSS every 10 s | media after the publisher stopped |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
print(f"| {load['connected']} / {load['requested']} | {written:,.0f} | {delivered:,} | {delivered / max(written, 1) * 100:.1f} % "
      f"| {d['late_drops']:,.0f} | {d['send_drops']:,.0f} | {load['loss_pct_max']:.2f} % "
      f"| {delay.get('p50_ms', float('nan')):.2f} / {delay.get('p99_ms', float('nan')):.1f} ms "
      f"| {load['video_max_lag_ms']:.0f} ms | {' '.join(str(m) for m in memory)} MiB | {after:.0f} ms |")
PY
  stop_server
}

# Runs a command with this shell pinned to one core: what it starts keeps that core.
pinned() {
  local core=$1 mask; shift
  mask=$(taskset -p "$BASHPID" | awk '{ print $NF }')
  taskset -cp "$core" "$BASHPID" >/dev/null
  "$@"
  taskset -p "$mask" "$BASHPID" >/dev/null
}

# The load generator against server PID $1 with $2 subscribers, pinned to core 1; the other
# arguments say what to watch. Prints its JSON report.
versus_load() {
  local pid=$1 n=$2; shift 2
  taskset -c 1 "$BIN/fanout-loadgen" "$@" --subscribers "$n" --server-pid "$pid" --json \
    --settle-seconds "$VERSUS_WARM" --steady-seconds "$VERSUS_WINDOW" \
    --seconds "$((n / 100 + 15 + VERSUS_WARM + VERSUS_WINDOW))" 2>>"$DATA/loadgen.log" || echo '{}'
}

# Fanout on core 0 (one media worker), fed the 720p30 VP8 + Opus test pattern over WHIP.
versus_fanout() {
  local n=$1
  pinned 0 start_server --no-hls-bridge --api-rate-limit 0 --workers 1
  pinned 1 publish_720p
  for _ in $(seq 200); do grep -q '^location' "$DATA/publish-$STREAM.log" 2>/dev/null && break; sleep 0.05; done
  sleep 2
  versus_load "$SERVER_PID" "$n" --whep-url "http://127.0.0.1:8080/whep/$STREAM"
  kill "$PUBLISHER" 2>/dev/null || true
  wait "$PUBLISHER" 2>/dev/null || true
  stop_server
}

# Janus on core 0 (scripts/janus: the HTTP API and the streaming plugin only), fed the same
# test pattern, packetized the same way, as plain RTP to its mountpoint. Janus never gathers
# ICE candidates on lo, so it gets 127.0.0.2 on an interface of its own (a veth pair inside
# this namespace; the packets still only cross loopback), and the subscribers bind to that
# address too: Janus sends only through the interface of its candidate.
# VERSUS_JANUS_EVENT_LOOPS=0 gives each handle a thread of its own (Janus's default) instead of
# the one shared event loop of scripts/janus.
versus_janus() {
  local n=$1 conf=$PWD/scripts/janus
  if [[ -n "${VERSUS_JANUS_EVENT_LOOPS:-}" ]]; then
    conf=$DATA/janus-conf
    rm -rf "$conf" && cp -r scripts/janus "$conf"
    sed -i "s/^\tevent_loops = .*/\tevent_loops = $VERSUS_JANUS_EVENT_LOOPS/" "$conf/janus.jcfg"
  fi
  ip link add fjanus0 type veth peer name fjanus1
  ip addr add 127.0.0.2/32 dev fjanus0
  ip link set fjanus0 up
  ip link set fjanus1 up
  taskset -c 0 janus -F "$conf" --disable-colors >"$DATA/janus.log" 2>&1 &
  local janus=$!
  for _ in $(seq 100); do
    curl -sf -X POST http://127.0.0.1:8088/janus -d '{"janus":"info","transaction":"up"}' >/dev/null && break
    sleep 0.1
  done
  taskset -c 1 "$BIN/fanout-publish" --rtp-to 127.0.0.1:5004,127.0.0.1:5002 --size 1280x720 --seconds 0 \
    >"$DATA/publish-rtp.log" 2>&1 &
  local publisher=$!
  sleep 2
  versus_load "$janus" "$n" --janus-url http://127.0.0.1:8088/janus --janus-mountpoint 1 --bind-ip 127.0.0.2
  kill "$publisher" "$janus" 2>/dev/null || true
  wait "$publisher" "$janus" 2>/dev/null || true
  ip link del fjanus0
}

# The floor on core 0: fanout-udp-floor copies each datagram of the same RTP feed to N sockets
# (sendmmsg, nothing else), which its sink on core 1 counts over the same warm-up and window
# as the servers', sampling the forwarder's CPU at the window's edges. Prints the sink's JSON.
versus_floor() {
  local n=$1
  taskset -c 0 "$BIN/fanout-udp-floor" forward --listen 127.0.0.1:5004,127.0.0.1:5002 \
    --to-base 127.0.0.1:20000 --n "$n" 2>>"$DATA/floor.log" &
  local forward=$!
  taskset -c 1 "$BIN/fanout-publish" --rtp-to 127.0.0.1:5004,127.0.0.1:5002 --size 1280x720 --seconds 0 \
    >"$DATA/publish-floor.log" 2>&1 &
  local publisher=$!
  sleep 2
  taskset -c 1 "$BIN/fanout-udp-floor" sink --base 127.0.0.1:20000 --n "$n" --warm-seconds "$VERSUS_WARM" \
    --seconds "$VERSUS_WINDOW" --forward-pid "$forward" 2>>"$DATA/floor.log" || echo '{}'
  kill "$publisher" "$forward" 2>/dev/null || true
  wait "$publisher" "$forward" 2>/dev/null || true
}

bench_versus_janus() {
  local counts=("$@")
  ((${#counts[@]})) || counts=(10 25 50 100 200 500)
  command -v janus >/dev/null || { echo "versus-janus needs Janus (Debian: apt-get install janus)" >&2; exit 1; }
  (($(nproc) >= 2)) || { echo "versus-janus needs two cores: the server on one, the load on the other" >&2; exit 1; }
  VERSUS_WARM=${VERSUS_WARM:-10} VERSUS_WINDOW=${VERSUS_WINDOW:-20}
  echo "## Fan-out versus Janus: 1 publisher (720p30 VP8 + Opus test pattern) -> N str0m subscribers"
  echo "Server pinned to core 0, publisher and load generator to core 1; ${VERSUS_WARM} s after all joined, then ${VERSUS_WINDOW} s measured."
  echo "Floor: fanout-udp-floor forward (sendmmsg of every datagram to N sockets, nothing else) on core 0, its sink and the same RTP feed on core 1."
  echo "Fanout $(git rev-parse --short HEAD 2>/dev/null || echo '?') (1 media worker), Janus $(janus --help 2>&1 | sed -n 's/^Janus version: [0-9]* (\(.*\))/\1/p') (event loops: ${VERSUS_JANUS_EVENT_LOOPS:-1})."
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
  echo
  echo "| N | Fanout µs/packet | Janus µs/packet | Janus ÷ Fanout | floor µs/packet | Fanout ÷ floor | packets/s Fanout / Janus | loss max Fanout / Janus | server core Fanout / Janus |"
  echo "|---|---|---|---|---|---|---|---|---|"
  local i
  for i in "${!counts[@]}"; do
    local n=${counts[$i]}
    versus_fanout "$n" >"$DATA/versus-fanout-$n.json"
    versus_janus "$n" >"$DATA/versus-janus-$n.json"
    versus_floor "$n" >"$DATA/versus-floor-$n.json"
    if ! python3 scripts/janus/versus_row.py "$n" "$DATA/versus-fanout-$n.json" "$DATA/versus-janus-$n.json" \
      "$DATA/versus-floor-$n.json" "${VERSUS_MAX_LOSS_PCT:-1}"; then
      local rest=("${counts[@]:$((i + 1))}")
      ((${#rest[@]})) && echo "Not run: N = ${rest[*]}."
      break
    fi
  done
  echo
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# RTMP and SRT on loopback only (the namespace has nothing else, but say so).
INGEST_ADDRS=(--rtmp-addr 127.0.0.1:1935 --srt-addr 127.0.0.1:8890)

# One ingest path: fanout-push-test pushes the clock-stamped pattern ($1: rtmp|srt, $2: B-frames)
# into a new stream, and g2g.mjs watches it over WHEP in Chromium; writes $DATA/ingest-$1-$2.json.
ingest_g2g_case() {
  local proto=$1 bframes=$2 seconds=$3
  local s; s=$(new_stream)
  local id key url; id=$(echo "$s" | field id); key=$(echo "$s" | field streamKey)
  case "$proto" in
    rtmp) url=(--rtmp-url "rtmp://127.0.0.1:1935/live/$key") ;;
    srt) url=(--srt-url "srt://127.0.0.1:8890?streamid=publish:$key") ;;
  esac
  # INGEST_NO_AUDIO=1: video only. With audio the pusher's muxer holds each video frame until
  # the AAC encoder (~2 frames of delay) has caught up with it: the pusher's latency, not the server's.
  local audio=(); [[ -n "${INGEST_NO_AUDIO:-}" ]] && audio=(--no-audio)
  "$BIN/fanout-push-test" "${url[@]}" --b-frames "$bframes" "${audio[@]}" >"$DATA/push-$proto-$bframes.log" 2>&1 &
  local push=$!
  sleep 3 # the room exists once the first keyframe is in
  # Watch a running stream, as viewers do; the warm-up skips the first seconds of playback.
  (cd web && node test/g2g.mjs --base http://127.0.0.1:8080 --stream "$id" --no-publish --warmup 3 \
    --seconds "$seconds" --label "$proto, $bframes B-frames" >"$DATA/ingest-$proto-$bframes.json" \
    2>>"$DATA/ingest-g2g.txt") || echo "$proto with $bframes B-frames: the viewer failed (see below)" >&2
  kill "$push" 2>/dev/null || true
  wait "$push" 2>/dev/null || true
  grep -v '^pushing\|"mode":"sent"' "$DATA/push-$proto-$bframes.log" >&2 || true
}

bench_ingest_g2g() {
  local seconds=${1:-30}
  # SRT delivers each packet its latency after it was sent (room for retransmissions): the
  # larger of the server's and the caller's (20 ms) applies. INGEST_SRT_LATENCY_MS sets the server's.
  local srt_latency=${INGEST_SRT_LATENCY_MS:-120}
  start_server --no-hls-bridge "${INGEST_ADDRS[@]}" --srt-latency-ms "$srt_latency"
  echo "## RTMP / SRT -> WHEP glass to glass (fanout-push-test 1280x720p30 x264 veryfast 2.5 Mb/s -> Chromium, ${seconds} s each)"
  echo "SRT latency (server): ${srt_latency} ms; audio: $([[ -n "${INGEST_NO_AUDIO:-}" ]] && echo none || echo 'AAC 128 kb/s')"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
  local proto b
  for b in 0 2; do
    "$BIN/fanout-push-test" --floor --b-frames "$b" --seconds "$seconds" --json >"$DATA/floor-$b.json" \
      2>/dev/null || echo '{}' >"$DATA/floor-$b.json"
    for proto in rtmp srt; do ingest_g2g_case "$proto" "$b" "$seconds"; done
  done
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  stop_server
  python3 - "$DATA" <<'PY'
import json, sys
data = sys.argv[1]
def load(name):
    try:
        return json.loads(open(f"{data}/{name}").read().strip().splitlines()[-1])
    except Exception:
        return {}
def sent(name):
    # fanout-push-test's last '"mode":"sent"' line (RTMP only).
    try:
        lines = [l for l in open(f"{data}/{name}").read().splitlines() if '"mode":"sent"' in l]
        return json.loads(lines[-1]) if lines else {}
    except Exception:
        return {}
print()
print("| path | B-frames | the server | glass to glass p50 / p95 | floor: encode + decode, no server p50 / p95 | server-added p50 / p95 | Chromium jitter buffer (mean) | goal (p95) | verdict |")
print("|---|---|---|---|---|---|---|---|---|")
rows = []
for b, does, goal in ((0, "passes through", 30), (2, "re-encodes once", 150)):
    floor = load(f"floor-{b}.json")
    for proto in ("rtmp", "srt"):
        r = load(f"ingest-{proto}-{b}.json")
        if not r.get("p95Ms"):
            print(f"| {proto.upper()} -> WHEP | {b} | {does} | failed: {r.get('error', 'no samples')} | | | | {goal} ms | - |")
            continue
        f50, f95 = floor.get("p50Ms"), floor.get("p95Ms")
        added = (r["p50Ms"] - f50, r["p95Ms"] - f95) if f95 is not None else None
        verdict = "-" if added is None else ("met" if added[1] <= goal else "missed")
        print(f"| {proto.upper()} -> WHEP | {b} | {does} | {r['p50Ms']:.0f} / {r['p95Ms']:.0f} ms "
              f"({r['samples']} frames, {r['decodeFailures']} unreadable) "
              f"| {f50:.0f} / {f95:.0f} ms | {added[0]:.0f} / {added[1]:.0f} ms | {r.get('jitterBufferMs') or '-'} ms | {goal} ms | {verdict} |"
              if added else f"| {proto.upper()} -> WHEP | {b} | {does} | {r['p50Ms']} / {r['p95Ms']} ms | - | - | - | {goal} ms | - |")
        s = sent(f"push-{proto}-{b}.log")
        if s.get("p95Ms") is not None and f95 is not None:
            rows.append(f"| {proto.upper()} -> WHEP | {b} | {s['p50Ms']:.0f} / {s['p95Ms']:.0f} ms ({s['samples']} frames) "
                        f"| {r['p50Ms'] - s['p50Ms']:.0f} / {r['p95Ms'] - s['p95Ms']:.0f} ms |")
if rows:
    print()
    print("Where the time goes (RTMP): a frame's age when the pusher's FLV muxer hands it to the socket")
    print("(encode, and the muxer holding video until the AAC encoder's output of the same instant is")
    print("there), and what comes after it (TCP, the server, Chromium's decode, jitter buffer and render):")
    print()
    print("| path | B-frames | age leaving the pusher p50 / p95 | after the pusher p50 / p95 |")
    print("|---|---|---|---|")
    print("\n".join(rows))
PY
  echo
  cat "$DATA/ingest-g2g.txt"
}

# A 720p30 2.5 Mb/s H.264 (main, 2 s GOP) + AAC test file, $1 B-frames, encoded once and kept in
# ~/.cache/fanout/bench-media; prints its path.
ingest_file() {
  local bframes=$1 dir="$HOME/.cache/fanout/bench-media"
  local file="$dir/testsrc2-720p30-2500k-bf$bframes.mp4"
  if [[ ! -s "$file" ]]; then
    mkdir -p "$dir"
    ffmpeg -loglevel error -y -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=1000:sample_rate=48000 \
      -t 20 -c:v libx264 -preset veryfast -profile:v main -pix_fmt yuv420p -b:v 2500k -maxrate 2500k -bufsize 2500k \
      -g 60 -keyint_min 60 -sc_threshold 0 -bf "$bframes" -c:a aac -b:a 128k -ac 2 "$file.part.mp4" >&2
    mv "$file.part.mp4" "$file"
  fi
  echo "$file"
}

# Starts N ffmpeg pushers of file $2 (-re, looped, -c copy) into N new streams; sets
# INGEST_IDS and INGEST_PUSHERS.
ingest_push() {
  local n=$1 file=$2
  INGEST_IDS=() INGEST_PUSHERS=()
  for _ in $(seq "$n"); do
    local s; s=$(new_stream)
    INGEST_IDS+=("$(echo "$s" | field id)")
    ffmpeg -loglevel error -nostdin -re -stream_loop -1 -i "$file" -c copy -f flv \
      "rtmp://127.0.0.1:1935/live/$(echo "$s" | field streamKey)" 2>>"$DATA/ffmpeg.log" &
    INGEST_PUSHERS+=($!)
  done
}

# CPU seconds of a list of processes together.
cpu_seconds_of() {
  local total=0 pid
  for pid in "$@"; do total=$(awk -v t="$total" -v c="$(cpu_seconds "$pid" 2>/dev/null || echo 0)" 'BEGIN { print t + c }'); done
  echo "$total"
}

bench_ingest_cost() {
  local counts=("$@")
  ((${#counts[@]})) || counts=(10 20 30 40 50)
  command -v ffmpeg >/dev/null || { echo "ingest-cost needs ffmpeg" >&2; exit 1; }
  local warm=8 window=20
  local pass re; pass=$(ingest_file 0); re=$(ingest_file 2)
  echo "## Ingest cost: N RTMP pushes of a 720p30 2.5 Mb/s H.264 (main) + AAC file (ffmpeg -re -stream_loop -1 -c copy), no viewers"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores; ${warm} s after the pushes start, then ${window} s measured"
  echo
  echo "| source | N | server CPU (of one core) | server CPU-s per s per stream | pushers (ffmpeg) CPU-s per s per stream |"
  echo "|---|---|---|---|---|"
  local row
  for row in "0 passes through:$pass:1 2 4" "2 re-encoded:$re:1 2"; do
    local label=${row%%:*} rest=${row#*:}
    local file=${rest%%:*} ns=${rest#*:}
    local n
    for n in $ns; do
      start_server --no-hls-bridge --api-rate-limit 0 "${INGEST_ADDRS[@]}"
      ingest_push "$n" "$file"
      sleep "$warm"
      local s0 p0 s1 p1
      s0=$(cpu_seconds "$SERVER_PID"); p0=$(cpu_seconds_of "${INGEST_PUSHERS[@]}")
      sleep "$window"
      s1=$(cpu_seconds "$SERVER_PID"); p1=$(cpu_seconds_of "${INGEST_PUSHERS[@]}")
      awk -v l="B-frames: $label" -v n="$n" -v s0="$s0" -v s1="$s1" -v p0="$p0" -v p1="$p1" -v w="$window" 'BEGIN {
        printf "| %s | %d | %.0f %% | %.3f | %.3f |\n", l, n, (s1 - s0) / w * 100, (s1 - s0) / w / n, (p1 - p0) / w / n }'
      ingest_stop
    done
  done
  echo
  echo "## N passthrough RTMP ingests (the same file, 0 B-frames), one str0m WHEP viewer each (fanout-loadgen)"
  echo "| N | viewers connected | server CPU (of one core) | server CPU-s per s per stream | pushers per stream | load generator per viewer | packets/s delivered | loss max | 0 loss |"
  echo "|---|---|---|---|---|---|---|---|---|"
  local n
  for n in "${counts[@]}"; do
    start_server --no-hls-bridge --api-rate-limit 0 "${INGEST_ADDRS[@]}"
    ingest_push "$n" "$pass"
    sleep "$warm"
    local urls=() id
    for id in "${INGEST_IDS[@]:1}"; do urls+=(--more-whep-url "http://127.0.0.1:8080/whep/$id"); done
    local p0; p0=$(cpu_seconds_of "${INGEST_PUSHERS[@]}")
    "$BIN/fanout-loadgen" --whep-url "http://127.0.0.1:8080/whep/${INGEST_IDS[0]}" "${urls[@]}" --subscribers "$n" \
      --settle-seconds 3 --steady-seconds "$window" --seconds "$((n / 10 + 15 + window))" \
      --server-pid "$SERVER_PID" --json >"$DATA/ingest-load-$n.json" 2>>"$DATA/loadgen.log" || echo '{}' >"$DATA/ingest-load-$n.json"
    local p1; p1=$(cpu_seconds_of "${INGEST_PUSHERS[@]}")
    python3 - "$n" "$DATA/ingest-load-$n.json" "$p0" "$p1" <<'PY'
import json, sys
n, path, p0, p1 = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
r = json.load(open(path))
w = r.get("steady") or r.get("run") or {}
sec = w.get("seconds") or float("nan")
server = w.get("server_cpu_s")
run = r.get("run") or {}
pushers = (p1 - p0) / (run.get("seconds") or float("nan")) / n
loss = r.get("loss_pct_max")
ok = "yes" if r.get("connected") == n and loss == 0 else "no"
fmt = lambda x, f: "-" if x is None else f.format(x)
print(f"| {n} | {r.get('connected', 0)} / {n} | {fmt(server and server / sec * 100, '{:.0f} %')} "
      f"| {fmt(server and server / sec / n, '{:.3f}')} | {pushers:.3f} | {fmt(w.get('loadgen_cpu_s') and w['loadgen_cpu_s'] / sec / n, '{:.3f}')} "
      f"| {fmt(w.get('packets') and w['packets'] / sec, '{:,.0f}')} | {fmt(loss, '{:.2f} %')} | {ok} |")
PY
    ingest_stop
  done
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# The server's own time for ingested video: from the moment the ingest sink gets a frame (RTMP
# and FLV, or SRT and MPEG-TS, parsed) to the moment its packets leave for a WHEP viewer. For
# ingest rooms the SFU's forwarding-delay histogram starts at that moment; one fanout-loadgen
# viewer reads it over its steady window. Video only (no AAC -> Opus in the figure).
bench_ingest_residence() {
  local seconds=${1:-20}
  start_server --no-hls-bridge "${INGEST_ADDRS[@]}" --srt-latency-ms 20
  echo "## Server residence of ingested video (fanout-push-test 1280x720p30 2.5 Mb/s, no audio, passed through; one WHEP viewer; ${seconds} s)"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
  echo
  echo "| path | packets measured | frame in the sink -> packet sent p50 | p99 |"
  echo "|---|---|---|---|"
  local proto
  for proto in rtmp srt; do
    local s id key url
    s=$(new_stream); id=$(echo "$s" | field id); key=$(echo "$s" | field streamKey)
    case "$proto" in
      rtmp) url=(--rtmp-url "rtmp://127.0.0.1:1935/live/$key") ;;
      srt) url=(--srt-url "srt://127.0.0.1:8890?streamid=publish:$key") ;;
    esac
    "$BIN/fanout-push-test" "${url[@]}" --no-audio >"$DATA/residence-push-$proto.log" 2>&1 &
    local push=$!
    sleep 3
    "$BIN/fanout-loadgen" --whep-url "http://127.0.0.1:8080/whep/$id" --subscribers 1 --settle-seconds 3 \
      --steady-seconds "$seconds" --seconds "$((seconds + 8))" --metrics-url http://127.0.0.1:8080/metrics \
      --json >"$DATA/residence-$proto.json" 2>>"$DATA/loadgen.log" || echo '{}' >"$DATA/residence-$proto.json"
    kill "$push" 2>/dev/null || true
    wait "$push" 2>/dev/null || true
    python3 - "$proto" "$DATA/residence-$proto.json" <<'PY'
import json, sys
proto, path = sys.argv[1], sys.argv[2]
d = (json.load(open(path)).get("server_forward_delay") or {})
fmt = lambda v: "-" if v is None else f"{v:.2f} ms"
print(f"| {proto.upper()} -> WHEP | {d.get('count', 0):,} | {fmt(d.get('p50_ms'))} | {fmt(d.get('p99_ms'))} |")
PY
  done
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  stop_server
}

# The LL-HLS bridge of RTMP rooms: the source's H.264 copied as the top rung, against every rung
# encoded (--no-hls-source-copy), for the default ladder (720p copied or encoded, 480p, 360p).
bench_ingest_bridge_cost() {
  local counts=("$@")
  ((${#counts[@]})) || counts=(1 2)
  command -v ffmpeg >/dev/null || { echo "ingest-bridge-cost needs ffmpeg" >&2; exit 1; }
  local warm=12 window=20
  local pass; pass=$(ingest_file 0)
  echo "## LL-HLS bridge of N RTMP rooms (720p30 2.5 Mb/s H.264 main, 2 s GOP, AAC), no viewers; ladder 720 = the source's size only"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores; ${warm} s after the pushes start, then ${window} s measured"
  echo
  echo "| top rung | ladder | N | top rung copied | server CPU (of one core) | server CPU-s per s per room |"
  echo "|---|---|---|---|---|---|"
  local mode ladder n
  for mode in copy encode; do
    for ladder in 720,480,360 720; do
    for n in "${counts[@]}"; do
      local flags=(--api-rate-limit 0 --hls-ladder "$ladder" "${INGEST_ADDRS[@]}")
      [[ $mode == encode ]] && flags+=(--no-hls-source-copy)
      start_server "${flags[@]}"
      ingest_push "$n" "$pass"
      sleep "$warm"
      local copied; copied=$(curl -s -H "Authorization: Bearer $ADMIN" "http://127.0.0.1:8080/api/v1/streams/${INGEST_IDS[0]}" |
        python3 -c 'import json,sys; print(json.load(sys.stdin).get("hls", {}).get("topRungCopied"))')
      local s0 s1
      s0=$(cpu_seconds "$SERVER_PID")
      sleep "$window"
      s1=$(cpu_seconds "$SERVER_PID")
      awk -v m="$mode" -v l="$ladder" -v c="$copied" -v n="$n" -v s0="$s0" -v s1="$s1" -v w="$window" 'BEGIN {
        printf "| %s | %s | %d | %s | %.0f %% | %.3f |\n", m, l, n, c, (s1 - s0) / w * 100, (s1 - s0) / w / n }'
      ingest_stop
    done
    done
  done
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# Resident memory (KiB) and CPU time (clock ticks, user + system) of a process.
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

bench_session_cost() {
  local counts=("$@")
  [[ ${#counts[@]} -gt 0 ]] || counts=(200 1000 2000)
  local timeout=30 offer tick
  offer=$(cat tests/fixtures/whep-offer.sdp)
  tick=$(getconf CLK_TCK)
  echo "## WHEP offers that never connect (no STUN): cost, and the connect timeout (${timeout} s) closing them"
  echo "| offers | server CPU per offer | RSS before | RSS holding them | per session | all closed, from the first offer | RSS after | RSS holding as many again |"
  echo "|---|---|---|---|---|---|---|---|"
  for n in "${counts[@]}"; do
    start_server --no-hls-bridge --api-rate-limit 0 --connect-timeout-secs "$timeout"
    local id rss0 cpu0 t0 rss1 cpu1 rss2 rss3 connecting waited
    id=$(new_stream | field id)
    sleep 1
    rss0=$(rss_kib "$SERVER_PID"); cpu0=$(cpu_ticks "$SERVER_PID")
    t0=$(date +%s.%N)
    seq "$n" | xargs -P 4 -I{} curl -s -o /dev/null -X POST "http://127.0.0.1:8080/whep/$id" \
      -H 'Content-Type: application/sdp' --data-binary "$offer"
    rss1=$(rss_kib "$SERVER_PID"); cpu1=$(cpu_ticks "$SERVER_PID")
    connecting=$(curl -s http://127.0.0.1:8080/metrics | awk '/^fanout_sfu_sessions_connecting / {print $2}')
    [[ "$connecting" == "$n" ]] || echo "warning: $connecting of $n offers held"
    while [[ "$(curl -s http://127.0.0.1:8080/metrics | awk '/^fanout_sfu_sessions_connecting / {print $2}')" != 0 ]]; do
      sleep 0.2
    done
    waited=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')
    sleep 1
    rss2=$(rss_kib "$SERVER_PID")
    # The same again: memory the first round's sessions held is reused, not grown.
    seq "$n" | xargs -P 4 -I{} curl -s -o /dev/null -X POST "http://127.0.0.1:8080/whep/$id" \
      -H 'Content-Type: application/sdp' --data-binary "$offer"
    rss3=$(rss_kib "$SERVER_PID")
    awk -v n="$n" -v c0="$cpu0" -v c1="$cpu1" -v tick="$tick" -v r0="$rss0" -v r1="$rss1" -v r2="$rss2" \
      -v r3="$rss3" -v w="$waited" -v t="$timeout" 'BEGIN {
        printf "| %d | %.2f ms | %d MiB | %d MiB | %.0f KiB | %.1f s (timeout %d s) | %d MiB | %d MiB |\n",
          n, (c1 - c0) * 1000 / tick / n, r0 / 1024, r1 / 1024, (r1 - r0) / n, w, t, r2 / 1024, r3 / 1024 }'
    stop_server
  done
}

case "${1:-all}" in
  session-cost) shift; bench_session_cost "$@" ;;
  ingest-g2g) shift; bench_ingest_g2g "$@" ;;
  ingest-cost) shift; bench_ingest_cost "$@" ;;
  ingest-bridge-cost) shift; bench_ingest_bridge_cost "$@" ;;
  ingest-residence) shift; bench_ingest_residence "$@" ;;
  g2g) shift; bench_g2g "$@" ;;
  ttff) shift; bench_ttff "$@" ;;
  fanout) shift; bench_fanout "$@" ;;
  hls-g2g) shift; bench_hls_g2g "$@" ;;
  live-g2g) shift; bench_live_g2g "$@" ;;
  bridge-cost) shift; bench_bridge_cost "$@" ;;
  bridge-streams) shift; bench_bridge_streams "$@" ;;
  hls-start) shift; bench_hls_start "$@" ;;
  overload) shift; bench_overload "$@" ;;
  versus-janus) shift; bench_versus_janus "$@" ;;
  all) bench_g2g; bench_ttff; bench_fanout ;;
  *) echo "usage: $0 session-cost|g2g|ttff|fanout|hls-g2g|live-g2g|bridge-cost|bridge-streams|hls-start|overload|versus-janus|ingest-g2g|ingest-cost|ingest-bridge-cost|ingest-residence|all" >&2; exit 2 ;;
esac
