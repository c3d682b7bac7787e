#!/usr/bin/env bash
# Installs what Fanout and its tests need, only when something is missing: Debian packages
# (as root), and the npm packages of web/ (hls.js, the browser-test driver).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  chromium            # browser peer for tests and benchmarks
  ffmpeg              # media fixtures, RTMP/SRT pushes, HLS reads
  iproute2 iptables   # network namespaces, veth, shaping and loss for tests
  util-linux          # unshare
  redis-server        # chat fan-out tests
  nginx-light         # caching edge in front of the LL-HLS origin (tests)
  coturn              # TURN relay (tests; turn-config/ runs it for development)
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev   # the bridge's pipelines
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools
  gstreamer1.0-x      # textoverlay (pango), which burns the clock into the test pattern
  gstreamer1.0-nice python3-gi gir1.2-gst-plugins-bad-1.0  # webrtcbin peers (tests/gst/)
  gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0
  gir1.2-gst-rtsp-server-1.0   # the RTSP camera of the ingest tests (bridge/ingest/tests/)
  curl ca-certificates
  pkg-config cmake clang nasm  # C parts of the crypto and SQLite crates
  libssl-dev          # OpenSSL: the SFU's DTLS handshakes (RSA and ECDSA client certificates)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node may come from Debian or from another package that bundles npm: only the commands matter.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  echo "cargo not found: install the Rust toolchain (rustup) first" >&2
  exit 1
fi

if [[ ! -d web/node_modules ]] || [[ web/package-lock.json -nt web/node_modules ]]; then
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
fi
