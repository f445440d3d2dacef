#!/usr/bin/env bash
# Builds the harness binaries into $CARGO_TARGET_DIR/bench-bins/:
#   bench-inproc       all peers compiled in (mimalloc v3), nothing installed: the driver
#   bench-inproc-v2    system + mimalloc v2, for the one-process mode
#   bench-<peer>       one per allocator, installed as #[global_allocator]
# A peer that fails to build is skipped with a warning.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target-bench}
bins=$CARGO_TARGET_DIR/bench-bins
mkdir -p "$bins"
cd "$root"

# BENCH_REV=<rev>: build our allocator from that commit (a `git archive`
# snapshot under $CARGO_TARGET_DIR/snapshot), with the harness (benches/) and
# Cargo.lock of this work tree; otherwise build the work tree as it is.
if [ -n "${BENCH_REV:-}" ]; then
    rev=$(git rev-parse --short "$BENCH_REV")
    snap=$CARGO_TARGET_DIR/snapshot
    rm -rf "$snap" && mkdir -p "$snap"
    git archive "$rev" | tar -x -C "$snap"
    rm -rf "$snap/benches" && cp -r "$here" "$snap/benches" && rm -rf "$snap/benches/results"
    cp Cargo.lock "$snap/Cargo.lock"
    # NB: cargo decides freshness by mtime and its unit hashes do not depend
    # on the workspace's location. `git archive` dates files at the commit, so
    # without this a snapshot could reuse what another tree or revision
    # built: stamp every file now and build in a target dir of its own.
    find "$snap" -type f -exec touch {} +
    export CARGO_TARGET_DIR=$CARGO_TARGET_DIR/snapshot-target
    cd "$snap"
    built_from=$rev
else
    built_from=$(git rev-parse --short HEAD)
    if [ -n "$(git status --porcelain -- src alloc-core alloc-stats Cargo.toml)" ]; then
        built_from="$built_from+dirty"
    fi
fi
echo "== our allocator: $built_from" >&2

build() { # build NAME FEATURE-ARGS...
    local name=$1; shift
    echo "== building $name ($*)" >&2
    if cargo build --release -p pool-alloc-bench --bin pool-alloc-bench "$@" >&2; then
        cp -f "$CARGO_TARGET_DIR/release/pool-alloc-bench" "$bins/$name.tmp" && mv -f "$bins/$name.tmp" "$bins/$name"
    else
        echo "warning: $name failed to build; it is left out" >&2
        rm -f "$bins/$name"
        return 1
    fi
}

build bench-inproc || build bench-inproc --no-default-features --features mimalloc,jemalloc \
    || build bench-inproc --no-default-features --features ours-stats || exit 1
build bench-inproc-v2 --no-default-features --features mimalloc-v2
for peer in system mimalloc-v3 mimalloc-v2 jemalloc rpmalloc ours; do
    feature=global-${peer%-v3}
    build "bench-$peer" --no-default-features --features "$feature"
done
# The baseline of the stats cost (benches/stats_cost.sh): ours with its
# fast-path counters compiled out.
build bench-ours-nostats --no-default-features --features global-ours-nostats
# The baseline of the leak investigator's sampling cost: ours with stats on
# and sampling compiled out.
build bench-ours-noprofile --no-default-features --features global-ours-noprofile
echo "$built_from" > "$bins/commit.txt"
echo "$bins"
