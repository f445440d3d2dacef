#!/usr/bin/env bash
# The whole comparison: build every binary, then run both modes.
#   benches/run.sh --quick     # a few minutes, results in benches/results/quick/
#   benches/run.sh             # full run (~15 min), results in benches/results/
# Extra arguments go to the driver (`bench-inproc run --help` lists them).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bins=$("$here/build.sh" | tail -n 1)
exec "$bins/bench-inproc" run --bins "$bins" "$@"
