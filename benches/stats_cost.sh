#!/usr/bin/env bash
# The cost of the fast-path counters (issue: stats on vs off <= 3 %): ours
# installed with its default `stats` feature against the same allocator
# built without it, alternated round by round (benches/interleave.sh), on
# small and pooled churn, then on the realistic workloads (REAL=0: not).
# Prints each round and the median ratio (stats on / stats off; 1.000 =
# free).
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
# The realistic workloads (benches/realistic.sh's programs), each run for
# its fixed work: the median over rounds of off's time / on's time (the
# same sense as above: below 1, stats cost). Their runs are short (0.1-
# 0.5 s), so use many rounds: ROUNDS=21. REAL=0 skips them.
if [ "${REAL:-1}" != 0 ]; then
    for w in real-json real-regex real-maps real-flate real-rayon real-pipeline; do
        rs=()
        for i in $(seq 1 "$ROUNDS"); do
            a=$("$bins/bench-ours" worker "$w" --ops 1 | sed -n 's/.* seconds=\([^ ]*\).*/\1/p')
            b=$("$bins/bench-ours-nostats" worker "$w" --ops 1 | sed -n 's/.* seconds=\([^ ]*\).*/\1/p')
            rs+=("$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b / a }')")
        done
        printf '== %s (stats on / off, by time): %s\n' "$w" "${rs[*]}"
        printf '%s\n' "${rs[@]}" | sort -n | awk '{ v[NR] = $1 } END { printf "median A/B %s\n", v[int((NR + 1) / 2)] }'
    done
fi
