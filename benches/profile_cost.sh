#!/usr/bin/env bash
# The cost of the leak investigator's sampling (issue #12: <= 2 % at the
# default rate against sampling off, same run), on small churn, pooled
# churn and the mixed workload. Two comparisons per workload, alternated
# round by round (benches/interleave.sh); each prints its median ratio
# (1.000 = free):
#
#   run time:     bench-ours at its default rate (1 MiB) against the same
#                 binary with POOL_ALLOC_PROFILE_INTERVAL=0 (the samples'
#                 own cost: stack capture, records, page runs)
#   compile time: bench-ours against bench-ours-noprofile (sampling
#                 compiled out: adds the fast path's countdown)
#   one process:  `worker sampling-ab-X`, which
#                 alternates sampling on and off in slices of one run
#                 (workloads.rs, `sampling_ab`), so the machine's drift
#                 between processes cancels; the median of ROUNDS runs'
#                 medians. The steadiest of the three on this machine.
#                 The ratio is the geometric mean over 100 pairs; on
#                 mixed both slices of a pair redo the same operations.
#                 Then 3 runs with sampling off in both halves: the
#                 method's own bias (0.99-1.005 on all three here).
#
#   benches/profile_cost.sh            # 11 rounds each
#   ROUNDS=21 WORKLOADS=small benches/profile_cost.sh
#
# Uses the binaries of benches/build.sh (bench-ours, bench-ours-noprofile).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bins=${BINS:-$("$here/build.sh" | tail -n 1)}
ROUNDS=${ROUNDS:-11}
WORKLOADS=${WORKLOADS:-small pooled mixed}
echo "sampling cost, $(date -u '+%Y-%m-%d %H:%M UTC'), our allocator at $(cat "$bins/commit.txt")"
args() {
    case $1 in
        small) echo "worker small --ops 20000000 --ws 10000" ;;
        # 400 000 ops: the 40 000 of the other scripts time 0.1 s, too
        # short for a 2 % figure on this machine.
        pooled) echo "worker pooled --ops 400000 --ws 1000" ;;
        mixed) echo "worker mixed --ops 200000" ;;
        *) echo "unknown workload $1" >&2; exit 1 ;;
    esac
}
# Median on/off ratio of N runs of a `sampling-ab` command.
ab_runs() {
    local n=$1 cmd=$2 runs=() r
    for i in $(seq 1 "$n"); do
        r=$(bash -c "$cmd" | sed -n 's/.* sampling_ratio=\([0-9.]*\).*/\1/p' | head -n 1)
        printf 'run %d: on/off %.3f\n' "$i" "$r"
        runs+=("$r")
    done
    printf '%s\n' "${runs[@]}" | sort -n | awk '{ v[NR] = $1 } END { printf "median on/off %.3f\n", v[int((NR + 1) / 2)] }'
}
for w in $WORKLOADS; do
    a=$(args "$w")
    echo "== $w, run time (A = default rate, B = POOL_ALLOC_PROFILE_INTERVAL=0)"
    "$here/interleave.sh" "$ROUNDS" "$bins/bench-ours $a" "POOL_ALLOC_PROFILE_INTERVAL=0 $bins/bench-ours $a"
    echo "== $w, compile time (A = default rate, B = bench-ours-noprofile)"
    "$here/interleave.sh" "$ROUNDS" "$bins/bench-ours $a" "$bins/bench-ours-noprofile $a"
    case $w in
        small) ab="worker sampling-ab-small --ops 200000000 --ws 10000" ;;
        pooled) ab="worker sampling-ab-pooled --ops 4000000 --ws 1000" ;;
        mixed) ab="worker sampling-ab-mixed --ops 1000000 --ws 1000" ;;
    esac
    echo "== $w, one process (sampling on / off, alternating slices)"
    ab_runs "$ROUNDS" "$bins/bench-ours $ab"
    echo "== $w, one process, the method's null: off / off (1.000 = unbiased)"
    ab_runs 3 "POOL_ALLOC_PROFILE_INTERVAL=0 $bins/bench-ours $ab"
done
