#!/usr/bin/env bash
# Deep fuzzing with libFuzzer (cargo fuzz) on stable: RUSTC_BOOTSTRAP=1 lets
# cargo fuzz pass its -Z flags (sanitizer, coverage). Runs each target for
# SECONDS_PER_TARGET (default 600) and grows fuzz/corpus/<target>.
# Usage: fuzz/run.sh [target ...]   (default: all targets)
set -euo pipefail
cd "$(dirname "$0")"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
secs="${SECONDS_PER_TARGET:-600}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(ops threads size_class config)
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "=== $t: ${secs}s"
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" --features libfuzzer "corpus/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=4096 -max_len=4096 -print_final_stats=1
done
