#!/usr/bin/env bash
# C workloads under LD_PRELOAD (issue: C ABI), side by side: glibc, Debian's
# libjemalloc2 and libmimalloc2.0 preloaded, and ours (libpool_alloc.so,
# release; plus its hardened build when HARDENED=1). Interleaved rounds, one
# process per run, medians; ratios to glibc.
#
#   benches/c_bench.sh                  # 5 rounds
#   ROUNDS=9 HARDENED=1 benches/c_bench.sh
#
# Workloads (benches/c/, written here, in the style of the classic
# allocator benchmarks): larson (server-like churn, slots handed to new
# threads), xmalloc (producers allocate, consumers free), cache-scratch
# (false sharing between threads' objects). Needs cc; Debian's peers come
# from `apt-get install libjemalloc2 libmimalloc2.0`, which the script runs
# when they are missing (one that still is is left out). Writes benches/results/c_bench.md (override with OUT=...).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
ROUNDS=${ROUNDS:-5}
OUT=${OUT:-$here/results/c_bench.md}
work=${CARGO_TARGET_DIR:-$root/target-bench}/c-bench
mkdir -p "$work"
(cd "$root" && CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target-bench} cargo build --quiet --release -p alloc-preload)
cp -f "${CARGO_TARGET_DIR:-$root/target-bench}/release/libpool_alloc.so" "$work/libpool_alloc.so"
# Debian's peers, installed when missing (as steady.sh installs strace).
if [ ! -e /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 ] || [ ! -e /usr/lib/x86_64-linux-gnu/libmimalloc.so.2.0 ]; then
    if command -v apt-get >/dev/null; then
        (apt-get update -qq && apt-get install -y -qq libjemalloc2 libmimalloc2.0) >&2 || true
    fi
fi
peers=(glibc)
declare -A lib=([glibc]="")
for p in jemalloc:/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 mimalloc:/usr/lib/x86_64-linux-gnu/libmimalloc.so.2.0; do
    if [ -e "${p#*:}" ]; then peers+=("${p%%:*}"); lib[${p%%:*}]=${p#*:}; else echo "note: ${p#*:} missing; ${p%%:*} left out" >&2; fi
done
peers+=(ours); lib[ours]=$work/libpool_alloc.so
if [ "${HARDENED:-0}" = 1 ]; then
    (cd "$root" && CARGO_TARGET_DIR=$work/hardened-target cargo build --quiet --release -p alloc-preload --features hardened)
    cp -f "$work/hardened-target/release/libpool_alloc.so" "$work/libpool_alloc-hardened.so"
    peers+=(ours-hardened); lib[ours-hardened]=$work/libpool_alloc-hardened.so
fi
for w in larson xmalloc cache-scratch; do
    cc -O2 -pthread -o "$work/$w" "$here/c/$w.c"
done
# workload name, then its arguments
cases=("larson 2 2" "larson 4 2" "xmalloc 1 4000000" "xmalloc 2 2000000" "cache-scratch 2 20000")
declare -A res shared
for r in $(seq 1 "$ROUNDS"); do
    for c in "${cases[@]}"; do
        read -r w args <<<"$c"
        for p in "${peers[@]}"; do
            env=()
            [ -n "${lib[$p]}" ] && env=(LD_PRELOAD="${lib[$p]}")
            [ "$p" = ours-hardened ] && env+=(POOL_ALLOC_HARDENED=1)
            out=$(env "${env[@]}" "$work/$w" $args)
            v=$(sed -n 's/^RESULT ops_per_s=//p' <<<"$out")
            res["$c|$p"]+="$v "
            s=$(sed -n 's/^SHARED_LINES=//p' <<<"$out")
            if [ -n "$s" ]; then shared["$c|$p"]+="$s "; fi
        done
    done
    echo "round $r done" >&2
done
commit=$(git -C "$root" rev-parse --short HEAD)
{
    echo "# C workloads under LD_PRELOAD"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), ours at $commit, $(nproc) CPUs, $ROUNDS interleaved rounds,"
    echo "median ops/s (ratio to glibc; higher is better). \`benches/c_bench.sh\`."
    echo
    printf '| workload (args) |'; for p in "${peers[@]}"; do printf ' %s |' "$p"; done; echo
    printf '| --- |'; for p in "${peers[@]}"; do printf ' --- |'; done; echo
    for c in "${cases[@]}"; do
        printf '| %s |' "$c"
        base=$(printf '%s\n' ${res["$c|glibc"]} | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
        for p in "${peers[@]}"; do
            med=$(printf '%s\n' ${res["$c|$p"]} | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
            awk -v m="$med" -v b="$base" 'BEGIN { printf " %.2f M (%.2fx) |", m / 1e6, m / b }'
        done
        echo
    done
    for c in "${cases[@]}"; do
        [ -n "${shared["$c|glibc"]:-}" ] || continue
        echo
        printf 'False sharing in `%s`: cache lines that held objects of two threads, most in any round:' "$c"
        for p in "${peers[@]}"; do
            printf ' %s %s;' "$p" "$(printf '%s\n' ${shared["$c|$p"]} | sort -g | tail -n 1)"
        done
        echo
    done
} | tee "$OUT"
