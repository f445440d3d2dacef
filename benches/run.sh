#!/usr/bin/env bash
# The whole comparison: build every binary, then run both modes.
#   benches/run.sh --quick     # a few minutes, results in benches/results/quick/
#   benches/run.sh             # full run (~15 min), results in benches/results/
#   BENCH_REV=HEAD benches/run.sh   # our allocator as committed, not the work tree
# Extra arguments go to the driver (`bench-inproc run --help` lists them).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bins=$("$here/build.sh" | tail -n 1)
out=$here/results
for a in "$@"; do [ "$a" = --quick ] && out=$here/results/quick; done
# A later --out in "$@" wins.
exec "$bins/bench-inproc" run --bins "$bins" --out "$out" "$@"
