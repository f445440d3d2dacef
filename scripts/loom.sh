#!/usr/bin/env bash
# Run the loom models of the lock-free structures (alloc-core/src/loom_tests.rs,
# alloc-stats/src/counting.rs)
# in release with debug assertions, in a target directory of their own.
# Measured on the 2-core dev machine (2026-11-24): 1 min 7 s in all, of which
# alloc-core's 21 tests (models and their seeded-bug twins) ~26 s and alloc-stats' 2 ~40 s; the rest is the build.
set -euo pipefail
cd "$(dirname "$0")/.."
RUSTFLAGS="--cfg loom -C debug-assertions" LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}" \
  cargo test -p alloc-core -p alloc-stats --lib --release --target-dir target/loom "$@"
