#!/usr/bin/env bash
# Fanout's two commands on a fresh Debian 12 machine:
#   ./fanout.sh run    install what is missing, build (release) and run `fanout serve`
#   ./fanout.sh test   install what is missing, build (debug) and run the whole test suite
# Anything after the command is passed on (to `fanout serve`, or to `cargo test`).
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fanout/target}"

cmd="${1:-}"
shift || true
case "$cmd" in
  run)
    scripts/setup.sh
    # --workspace: the one feature set the benchmarks build too, so they reuse this build.
    cargo build --release --workspace --bin fanout
    exec "$CARGO_TARGET_DIR/release/fanout" serve "$@"
    ;;
  test)
    scripts/setup.sh
    exec scripts/test.sh "$@"
    ;;
  *)
    echo "usage: $0 run [serve flags...] | test" >&2
    exit 2
    ;;
esac
