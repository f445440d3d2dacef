#!/usr/bin/env bash
# Run two benchmark commands alternately, ROUNDS times each (A B A B ...),
# and print each round's ops/s, the A/B ratio, and the median ratio: the
# BENCH.md way to compare two builds or two settings in one session.
#
#   benches/interleave.sh 5 \
#     'target-bench/bench-bins/bench-ours worker small --ops 3000000 --ws 10000' \
#     'POOL_ALLOC_MAX_IDLE_MS=86400000 target-bench/bench-bins/bench-ours worker small --ops 3000000 --ws 10000'
#
# Each command must print a RESULT line with ops_per_s= (every workload of
# the harness that reports throughput does).
set -euo pipefail
rounds=$1 a=$2 b=$3
ops() { bash -c "$1" 2>&1 | sed -n 's/.* ops_per_s=\([0-9.e+]*\).*/\1/p' | head -n 1; }
ratios=()
for i in $(seq 1 "$rounds"); do
    x=$(ops "$a"); y=$(ops "$b")
    r=$(awk -v x="$x" -v y="$y" 'BEGIN { printf "%.3f", x / y }')
    ratios+=("$r")
    printf 'round %d: A %s  B %s  A/B %s\n' "$i" "$x" "$y" "$r"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { printf "median A/B %s\n", v[int((NR + 1) / 2)] }'
