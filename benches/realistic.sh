#!/usr/bin/env bash
# The realistic workloads (benches/src/realistic.rs): programs built from
# serde_json, regex, std maps, flate2, rayon and channels, each run with
# every allocator installed (one process per run), rounds interleaved.
# Reports per workload the median time as a ratio to glibc's (above 1:
# faster), the median peak RSS, their geometric means, and checks that every
# allocator computed the same checksum.
#
#   benches/realistic.sh                     # 5 rounds, every peer built
#   ROUNDS=3 PEERS="system ours" benches/realistic.sh
#
# Writes benches/results/realistic.csv and benches/results/realistic.md
# (override the directory with OUT=...).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bins=$("$here/build.sh" | tail -n 1)
ROUNDS=${ROUNDS:-5}
PEERS=${PEERS:-system mimalloc-v3 mimalloc-v2 jemalloc rpmalloc ours}
WORKLOADS=${WORKLOADS:-real-json real-regex real-maps real-flate real-rayon real-pipeline}
OUT=${OUT:-$here/results}
mkdir -p "$OUT"
csv=$OUT/realistic.csv
echo "workload,peer,round,seconds,peak_rss_mib,checksum" > "$csv"
for round in $(seq 1 "$ROUNDS"); do
    for w in $WORKLOADS; do
        for peer in $PEERS; do
            bin=$bins/bench-$peer
            [ -x "$bin" ] || continue
            line=$("$bin" worker "$w" --ops 1 | grep '^RESULT') || {
                echo "FAILED $w $peer" >&2
                continue
            }
            secs=$(sed -n 's/.* seconds=\([^ ]*\).*/\1/p' <<<"$line")
            rss=$(sed -n 's/.* peak_rss_mib=\([^ ]*\).*/\1/p' <<<"$line")
            sum=$(sed -n 's/.* checksum=\([^ ]*\).*/\1/p' <<<"$line")
            echo "$w,$peer,$round,$secs,$rss,$sum" >> "$csv"
            printf '%s round %s/%s %-12s %8.3f s %8.1f MiB\n' "$w" "$round" "$ROUNDS" "$peer" "$secs" "$rss" >&2
        done
    done
done
commit=$(cat "$bins/commit.txt" 2>/dev/null || git -C "$here" rev-parse --short HEAD)
python3 - "$csv" "$commit" "$ROUNDS" > "$OUT/realistic.md" <<'EOF'
import csv, math, statistics, sys, datetime
path, commit, rounds = sys.argv[1], sys.argv[2], sys.argv[3]
rows = list(csv.DictReader(open(path)))
peers = list(dict.fromkeys(r["peer"] for r in rows))
works = list(dict.fromkeys(r["workload"] for r in rows))
def med(w, p, k):
    v = [float(r[k]) for r in rows if r["workload"] == w and r["peer"] == p]
    return statistics.median(v) if v else None
bad = []
for w in works:
    sums = {r["checksum"] for r in rows if r["workload"] == w}
    if len(sums) != 1:
        bad.append(f"{w}: checksums differ {sorted(sums)}")
print(f"# Realistic workloads\n")
print(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, our allocator at {commit}, "
      f"{rounds} interleaved rounds, one process per run, medians. "
      "Time ratio = glibc's median time / the peer's (above 1: faster than glibc). "
      "Every allocator computed the same checksum per workload"
      + ("." if not bad else f" EXCEPT: {'; '.join(bad)}") + "\n")
print("| workload | " + " | ".join(peers) + " |")
print("| --- |" + " --- |" * len(peers))
geo_t = {p: [] for p in peers}
geo_r = {p: [] for p in peers}
for w in works:
    base = med(w, "system", "seconds")
    cells = []
    for p in peers:
        t, rss = med(w, p, "seconds"), med(w, p, "peak_rss_mib")
        if t is None:
            cells.append("-")
            continue
        ratio = base / t if base else float("nan")
        geo_t[p].append(ratio)
        geo_r[p].append(rss)
        cells.append(f"{ratio:.2f}x, {rss:.0f} MiB")
    print(f"| {w} | " + " | ".join(cells) + " |")
def geo(v):
    return math.exp(sum(math.log(x) for x in v) / len(v)) if v else float("nan")
print("| geometric mean | " + " | ".join(
    f"{geo(geo_t[p]):.2f}x, {geo(geo_r[p]):.0f} MiB" for p in peers) + " |")
if bad:
    sys.exit("checksums differ: " + "; ".join(bad))
EOF
cat "$OUT/realistic.md"
