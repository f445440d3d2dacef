#!/usr/bin/env bash
# Instructions per operation of one installed build (`bench-<peer>` from
# benches/build.sh) under callgrind, the BENCH.md way: the difference of two
# runs of N1 and N2 operations over N2 - N1, so setup cancels.
#
#   benches/worker_callgrind.sh target-bench/bench-bins/bench-ours small
#   POOL_ALLOC_PROFILE_INTERVAL=0 benches/worker_callgrind.sh target-bench/bench-bins/bench-ours small
#   benches/worker_callgrind.sh target-bench/bench-bins/bench-ours pooled
#
# Environment variables reach the program (so run-time settings can be
# compared on one binary).
set -euo pipefail
bin=$1 workload=$2
case $workload in
    small) n1=100000 n2=300000 ws=10000 ;;
    pooled) n1=2000 n2=6000 ws=1000 ;;
    *) echo "unknown workload $workload (small, pooled)" >&2; exit 1 ;;
esac
ir() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" worker "$workload" \
        --ops "$1" --ws "$ws" 2>&1 >/dev/null | sed -n 's/.*Collected : \([0-9]*\).*/\1/p' | tail -n 1
}
a=$(ir "$n1")
b=$(ir "$n2")
awk -v a="$a" -v b="$b" -v n="$((n2 - n1))" -v w="$workload" -v bin="$(basename "$bin")" \
    'BEGIN { printf "%s %s: %.2f instructions/op\n", bin, w, (b - a) / n }'
