#!/usr/bin/env bash
# Instructions per C free + malloc pair (plus the loop's own work, the same
# for all) under callgrind, for glibc, Debian's libjemalloc2 and
# libmimalloc2.0 preloaded, and ours (libpool_alloc.so, release):
#   per_op = (Ir(300 000 steps) - Ir(100 000 steps)) / 200 000
# (benches/c/churn.c; the setup cancels). Needs valgrind and cc.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target-bench}
work=$target/c-bench
mkdir -p "$work"
(cd "$root" && CARGO_TARGET_DIR=$target cargo build --quiet --release -p alloc-preload)
cp -f "$target/release/libpool_alloc.so" "$work/libpool_alloc.so"
cc -O2 -o "$work/churn" "$here/c/churn.c"
ir() { LD_PRELOAD=$1 valgrind --tool=callgrind --callgrind-out-file=/dev/null "$work/churn" "$2" 2>&1 >/dev/null |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' | tail -n 1; }
echo "C small churn, $(date -u '+%Y-%m-%d %H:%M UTC'), ours at $(git -C "$root" rev-parse --short HEAD)"
for peer in glibc: jemalloc:/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 \
    mimalloc:/usr/lib/x86_64-linux-gnu/libmimalloc.so.2.0 ours:$work/libpool_alloc.so; do
    name=${peer%%:*} lib=${peer#*:}
    if [ -n "$lib" ] && [ ! -e "$lib" ]; then echo "$name: $lib missing"; continue; fi
    a=$(ir "$lib" 100000) b=$(ir "$lib" 300000)
    awk -v n="$name" -v a="$a" -v b="$b" 'BEGIN { printf "%-10s %8.1f instructions/op\n", n, (b - a) / 200000 }'
done
