#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, end-to-end tests with real peers.
# End-to-end tests put themselves in private network namespaces (needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fanout/target}"
export CARGO_TERM_COLOR=never

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

echo "== build"
cargo build --workspace --all-targets

echo "== unit and integration tests"
cargo test --workspace --exclude fanout-tests "$@"

echo "== web unit tests"
(cd web && node --test test/*.test.mjs)

echo "== end-to-end tests (real peers, one at a time: they share 2 cores)"
# Every test file runs even when an earlier one fails, so one run reports every failure.
cargo test -p fanout-tests --no-fail-fast "$@" -- --test-threads=1
