#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, end-to-end tests with real peers.
# End-to-end tests put themselves in private network namespaces (needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fanout/target}"
export CARGO_TERM_COLOR=never

# Every cargo command below selects the whole workspace, so cargo resolves one feature set and
# builds each crate once. (`-p X` or `--exclude X` resolves features for a subset, which here
# rebuilt 116 crates, about ten minutes, and a second copy of them on disk.) Test binaries are
# picked by name instead: the end-to-end ones are tests/tests/*.rs, the rest are every other
# package's tests/*.rs, so a test file's name must be unique across the workspace.
dups=$(for f in */tests/*.rs */*/tests/*.rs; do basename "$f"; done | sort | uniq -d)
[[ -z "$dups" ]] || { echo "test file names used twice in the workspace: $dups" >&2; exit 1; }
e2e_tests=() other_tests=()
for f in tests/tests/*.rs; do e2e_tests+=(--test "$(basename "$f" .rs)"); done
for f in */tests/*.rs */*/tests/*.rs; do
  [[ "$f" == tests/tests/* ]] || other_tests+=(--test "$(basename "$f" .rs)")
done

# When the disk is short (under 20 GB free; the debug build takes many GB), drop cargo's
# incremental caches first (they only speed up rebuilds) rather than fail half-way through.
mkdir -p "$CARGO_TARGET_DIR"
free_kb=$(df -Pk "$CARGO_TARGET_DIR" | awk 'NR == 2 { print $4 }')
if (( free_kb < 20 * 1024 * 1024 )) && [[ -d "$CARGO_TARGET_DIR/debug/incremental" ]]; then
  echo "only $((free_kb / 1024 / 1024)) GB free: removing $CARGO_TARGET_DIR/debug/incremental"
  rm -rf "$CARGO_TARGET_DIR/debug/incremental"
fi

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

echo "== build"
cargo build --workspace --all-targets

echo "== unit and integration tests"
cargo test --workspace --no-fail-fast --lib --bins "${other_tests[@]}" "$@"
cargo test --workspace --doc "$@"

echo "== web unit tests"
(cd web && node --test test/*.test.mjs)

echo "== end-to-end tests (real peers, one at a time: they share 2 cores)"
# Every test file runs even when an earlier one fails, so one run reports every failure.
cargo test --workspace --no-fail-fast "${e2e_tests[@]}" "$@" -- --test-threads=1
