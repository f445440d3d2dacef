#!/usr/bin/env bash
# The steady-state check of the reclaim issue: 4 threads of mixed churn up
# to 1 MiB (`worker mtmixed-1024 --threads 4 --ws 3000`) for 10.5 minutes.
# Reads VmRSS every 30 s, and counts system calls with `strace -c -f` from
# minute 2 to the end (the steady state).
#
#   benches/steady.sh target-bench/bench-bins/bench-ours  OUT
#
# Writes OUT (lines "seconds rss_kib"), OUT.strace (the strace summary) and
# OUT.live (the workload's own live bytes and the sum of the threads' peaks
# so far, every 30 s: what any allocator that keeps memory must follow).
# Any bench binary works (bench-system, bench-mimalloc-v2, ...).
# First minute = the 30 s and 60 s samples; tenth = the 540-600 s ones.
set -euo pipefail
bin=$1
out=$2
if ! command -v strace >/dev/null; then
    apt-get update -qq && apt-get install -y -qq strace
fi
POOL_ALLOC_BENCH_LIVE_EVERY=30 "$bin" worker mtmixed-1024 --threads 4 --ws 3000 --ops 100000000000 \
    >/dev/null 2>"$out.live" &
pid=$!
: >"$out"
(sleep 120; timeout -s INT 510 strace -c -f -p "$pid" >"$out.strace" 2>&1) &
tracer=$!
for i in $(seq 1 21); do
    sleep 30
    echo "$((i * 30)) $(awk '/VmRSS/ {print $2}' "/proc/$pid/status")" >>"$out"
done
kill "$pid"
wait "$tracer" || true
cat "$out"
grep '^LIVE' "$out.live" || true
tail -n 8 "$out.strace"
