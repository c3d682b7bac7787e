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
cargo test -p fanout-tests "$@" -- --test-threads=1
