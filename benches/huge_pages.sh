#!/usr/bin/env bash
# What `POOL_ALLOC_HUGE_PAGES=1` (Config::huge_pages, off by default) buys:
# ours installed with the setting on against off, alternated round by round
# (benches/interleave.sh), on pooled, small, mixed and 4-thread mixed churn;
# then page faults and peak RSS of one run each way (/usr/bin/time).
#
#   benches/huge_pages.sh            # 5 rounds each
#   ROUNDS=9 benches/huge_pages.sh
#
# Uses the binaries of benches/build.sh (bench-ours). The gain depends on
# the kernel's THP mode (/sys/kernel/mm/transparent_hugepage/enabled:
# `madvise` or `always`) and on free 2 MiB pages.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bins=${BINS:-$("$here/build.sh" | tail -n 1)}
ROUNDS=${ROUNDS:-5}
echo "huge pages on / off, $(date -u '+%Y-%m-%d %H:%M UTC'), our allocator at $(cat "$bins/commit.txt"), THP mode: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo none)"
for w in "pooled --ops 400000 --ws 1000" \
    "small --ops 20000000 --ws 10000" \
    "mixed --ops 200000 --ws 1000" \
    "mtmixed-1024 --threads 4 --ws 3000 --ops 4000000" \
    "mtmixed-4096 --threads 4 --ws 3000 --ops 4000000"; do
    echo "== $w (A = huge pages on, B = off)"
    "$here/interleave.sh" "$ROUNDS" \
        "POOL_ALLOC_HUGE_PAGES=1 $bins/bench-ours worker $w" \
        "POOL_ALLOC_HUGE_PAGES=0 $bins/bench-ours worker $w"
    for v in 1 0; do
        POOL_ALLOC_HUGE_PAGES=$v /usr/bin/time -f "huge pages $v: %R page faults, peak RSS %M KiB" \
            "$bins/bench-ours" worker $w 2>&1 >/dev/null | tail -n 1
    done
done
