#!/usr/bin/env bash
# The 4-thread mixed churn rows (issue: "a multi-threaded mixed workload ...
# with the largest block at 256 KiB, 1 MiB and 4 MiB"): every peer
# installed, one process per run, peers interleaved within each round;
# prints per cap and peer the median ops/s, its ratio to glibc's median
# and the median peak RSS.
#
#   benches/mtmixed.sh                 # 3 rounds
#   ROUNDS=5 PEERS="system ours" benches/mtmixed.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bins=${BINS:-$("$here/build.sh" | tail -n 1)}
ROUNDS=${ROUNDS:-3}
PEERS=${PEERS:-system mimalloc-v3 mimalloc-v2 jemalloc rpmalloc ours}
CAPS=${CAPS:-256 1024 4096}
echo "4-thread mixed churn, $(date -u '+%Y-%m-%d %H:%M UTC'), ours at $(cat "$bins/commit.txt"), $ROUNDS rounds"
tmp=$(mktemp)
for round in $(seq 1 "$ROUNDS"); do
    for cap in $CAPS; do
        for peer in $PEERS; do
            out=$("$bins/bench-$peer" worker "mtmixed-$cap" --threads 4 --ws 3000 --ops 4000000 --rss)
            ops=$(echo "$out" | sed -n 's/.* ops_per_s=\([0-9.e+]*\).*/\1/p' | head -n 1)
            rss=$(echo "$out" | sed -n 's/.* peak_rss_mib=\([0-9.e+]*\).*/\1/p' | head -n 1)
            echo "$cap $peer $ops ${rss:-nan}" >> "$tmp"
        done
    done
done
awk '
function median(s,   n, a, i, j, t) {
    n = split(s, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{ ops[$1 " " $2] = ops[$1 " " $2] " " $3; rss[$1 " " $2] = rss[$1 " " $2] " " $4; if (!(($1 " " $2) in seen)) { seen[$1 " " $2] = 1; order[++n] = $1 " " $2 } }
END {
    printf "| cap KiB | peer | ops/s (median) | ratio to glibc | peak RSS MiB |\n| --- | --- | --- | --- | --- |\n"
    for (i = 1; i <= n; i++) {
        split(order[i], k, " ")
        base = median(ops[k[1] " system"])
        m = median(ops[order[i]])
        printf "| %s | %s | %.2f M | %.2fx | %.0f |\n", k[1], k[2], m / 1e6, (base > 0 ? m / base : 0), median(rss[order[i]])
    }
}' "$tmp"
rm -f "$tmp"
