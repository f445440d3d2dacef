#!/usr/bin/env bash
# Instructions per operation under valgrind's callgrind, which counts the
# same on every run of the same binary (BENCH.md "Instruction counts"):
#
#   per_op = (Ir(N2) - Ir(N1)) / (N2 - N1)
#
# so setup (process start, filling the working set, warm-up) cancels. Each
# allocator is called directly through GlobalAlloc (one-process mode, one peer
# per valgrind run). An "op" is one free + one alloc of a random size plus
# the harness's own work (PRNG, slot bookkeeping, touching the block), which
# is the same for every peer.
#
#   benches/callgrind.sh                 # small and pooled, every peer
#   WORKLOADS=small PEERS="system ours" benches/callgrind.sh
#   BENCH_REV=HEAD benches/callgrind.sh  # our allocator as committed
#
# Writes benches/results/callgrind.csv (override with OUT=...).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v valgrind >/dev/null || { echo "valgrind not found" >&2; exit 1; }
bins=$("$here/build.sh" | tail -n 1)
WORKLOADS=${WORKLOADS:-small pooled}
PEERS=${PEERS:-system mimalloc-v3 mimalloc-v2 jemalloc rpmalloc ours}
OUT=${OUT:-$here/results/callgrind.csv}
mkdir -p "$(dirname "$OUT")"

# N1/N2 per workload: small ops are ~100-500 instructions, pooled ops touch
# ~128 pages each, so fewer are needed.
counts() {
    case $1 in
        small) echo "100000 300000 10000" ;;   # N1 N2 working-set
        pooled) echo "2000 6000 1000" ;;
        *) echo "unknown workload $1" >&2; exit 1 ;;
    esac
}

ir() { # ir BIN PEER WORKLOAD OPS WS
    local log
    log=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$1" inproc "$3" --peers "$2" --rounds 1 --warmup 0 --ops "$4" --ws "$5" 2>&1 >/dev/null) || {
        echo "valgrind failed for $2 $3 $4:" >&2
        echo "$log" | tail -n 5 >&2
        return 1
    }
    echo "$log" | sed -n 's/.*Collected : \([0-9]*\).*/\1/p' | tail -n 1
}

commit=$(cat "$bins/commit.txt" 2>/dev/null || git -C "$here" rev-parse --short HEAD)
echo "callgrind, $(date -u '+%Y-%m-%d %H:%M UTC'), our allocator at $commit, $(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1))"
echo "workload,peer,n1,n2,ir_n1,ir_n2,instructions_per_op,commit" > "$OUT"
printf '%-8s %-12s %14s\n' workload peer instr/op
for w in $WORKLOADS; do
    read -r n1 n2 ws <<<"$(counts "$w")"
    for peer in $PEERS; do
        bin=$bins/bench-inproc
        [ "$peer" = mimalloc-v2 ] && bin=$bins/bench-inproc-v2
        if ! "$bin" inproc small --peers "$peer" --rounds 1 --warmup 0 --ops 1 --ws 1 >/dev/null 2>&1; then
            printf '%-8s %-12s %14s\n' "$w" "$peer" "not built"
            continue
        fi
        if a=$(ir "$bin" "$peer" "$w" "$n1" "$ws") && b=$(ir "$bin" "$peer" "$w" "$n2" "$ws") && [ -n "$a" ] && [ -n "$b" ]; then
            per=$(awk -v a="$a" -v b="$b" -v n1="$n1" -v n2="$n2" 'BEGIN { printf "%.1f", (b - a) / (n2 - n1) }')
            echo "$w,$peer,$n1,$n2,$a,$b,$per,$commit" >> "$OUT"
            printf '%-8s %-12s %14s\n' "$w" "$peer" "$per"
        else
            echo "$w,$peer,$n1,$n2,,,,$commit" >> "$OUT"
            printf '%-8s %-12s %14s\n' "$w" "$peer" "failed"
        fi
    done
done
echo "wrote $OUT" >&2
