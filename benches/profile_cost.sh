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
        pooled) echo "worker pooled --ops 40000 --ws 1000" ;;
        mixed) echo "worker mixed --ops 200000" ;;
        *) echo "unknown workload $1" >&2; exit 1 ;;
    esac
}
for w in $WORKLOADS; do
    a=$(args "$w")
    echo "== $w, run time (A = default rate, B = POOL_ALLOC_PROFILE_INTERVAL=0)"
    "$here/interleave.sh" "$ROUNDS" "$bins/bench-ours $a" "POOL_ALLOC_PROFILE_INTERVAL=0 $bins/bench-ours $a"
    echo "== $w, compile time (A = default rate, B = bench-ours-noprofile)"
    "$here/interleave.sh" "$ROUNDS" "$bins/bench-ours $a" "$bins/bench-ours-noprofile $a"
done
