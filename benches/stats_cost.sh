#!/usr/bin/env bash
# The cost of the fast-path counters (issue: stats on vs off <= 3 %): ours
# installed with its default `stats` feature against the same allocator
# built without it, alternated round by round (benches/interleave.sh), on
# small and pooled churn. Prints each round and the median ratio
# (stats on / stats off; 1.000 = free).
#
#   benches/stats_cost.sh            # 11 rounds each
#   ROUNDS=21 benches/stats_cost.sh
#
# Uses the binaries of benches/build.sh (bench-ours, bench-ours-nostats:
# the same allocator with only the `stats` feature left out).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bins=${BINS:-$("$here/build.sh" | tail -n 1)}
ROUNDS=${ROUNDS:-11}
echo "stats cost, $(date -u '+%Y-%m-%d %H:%M UTC'), our allocator at $(cat "$bins/commit.txt")"
echo "== small churn (A = stats on, B = stats off)"
"$here/interleave.sh" "$ROUNDS" \
    "$bins/bench-ours worker small --ops 20000000 --ws 10000" \
    "$bins/bench-ours-nostats worker small --ops 20000000 --ws 10000"
echo "== pooled churn (A = stats on, B = stats off)"
"$here/interleave.sh" "$ROUNDS" \
    "$bins/bench-ours worker pooled --ops 400000 --ws 1000" \
    "$bins/bench-ours-nostats worker pooled --ops 400000 --ws 1000"
