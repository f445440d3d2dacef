#!/usr/bin/env bash
# Run the loom models of the lock-free structures (alloc-core/src/loom_tests.rs,
# alloc-stats/src/counting.rs)
# in release with debug assertions, in a target directory of their own.
# Measured on the 2-core dev machine: first build ~25 s, models ~2 s.
set -euo pipefail
cd "$(dirname "$0")/.."
RUSTFLAGS="--cfg loom -C debug-assertions" LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}" \
  cargo test -p alloc-core -p alloc-stats --lib --release --target-dir target/loom "$@"
