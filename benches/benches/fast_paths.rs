//! Criterion micro-benchmarks of the fast paths, every peer called directly
//! through `GlobalAlloc` (nothing installed):
//!
//! * `alloc_free/{small_64B,pooled_64KiB,large_2MiB}`: one alloc+free pair;
//! * `realloc_in_place`: 40 → 48 → 40 B (two of our 8-byte-step classes);
//! * `cross_thread_free`: 64 B blocks allocated here, freed by another thread.
//!
//! `cargo bench -p pool-alloc-bench --bench fast_paths` (add `-- small` to filter).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use pool_alloc_bench::peers;
use pool_alloc_bench::workloads::xthread_transfer;

/// Calls `$bench(group, name, &allocator, extra...)` for every compiled-in
/// peer; each call is monomorphised, so no dynamic dispatch is measured.
macro_rules! each_peer {
    ($bench:ident($g:expr $(, $arg:expr)*)) => {{
        $bench($g, "system", &System $(, $arg)*);
        #[cfg(feature = "mimalloc")]
        $bench($g, peers::MIMALLOC_NAME, &peers::MIMALLOC $(, $arg)*);
        #[cfg(feature = "jemalloc")]
        $bench($g, "jemalloc", &peers::JEMALLOC $(, $arg)*);
        #[cfg(feature = "rpmalloc")]
        $bench($g, "rpmalloc", &peers::RPMALLOC $(, $arg)*);
        $bench($g, "ours", &peers::OURS $(, $arg)*);
    }};
}

type Group<'a> = BenchmarkGroup<'a, WallTime>;

fn pair<A: GlobalAlloc>(g: &mut Group<'_>, name: &str, a: &A, layout: Layout) {
    g.bench_function(name, |b| {
        b.iter(|| {
            // SAFETY: non-zero size; the block is freed with its layout.
            unsafe {
                let p = a.alloc(black_box(layout));
                assert!(!p.is_null());
                p.write_volatile(1);
                a.dealloc(black_box(p), layout);
            }
        })
    });
}

fn alloc_free(c: &mut Criterion) {
    for (band, size) in [
        ("small_64B", 64),
        ("pooled_64KiB", 64 << 10),
        ("large_2MiB", 2 << 20),
    ] {
        let mut g = c.benchmark_group(format!("alloc_free/{band}"));
        let layout = Layout::from_size_align(size, 8).expect("layout");
        each_peer!(pair(&mut g, layout));
        g.finish();
    }
}

fn grow_shrink<A: GlobalAlloc>(g: &mut Group<'_>, name: &str, a: &A) {
    let small = Layout::from_size_align(40, 8).expect("layout");
    let big = Layout::from_size_align(48, 8).expect("layout");
    g.bench_function(name, |b| {
        // SAFETY: the block lives for the whole benchmark and every realloc
        // passes the layout the block currently has.
        unsafe {
            let mut p = a.alloc(small);
            assert!(!p.is_null());
            b.iter(|| {
                p = a.realloc(black_box(p), small, 48);
                p = a.realloc(black_box(p), big, 40);
            });
            assert!(!p.is_null());
            a.dealloc(p, small);
        }
    });
}

fn realloc_in_place(c: &mut Criterion) {
    let mut g = c.benchmark_group("realloc_in_place");
    each_peer!(grow_shrink(&mut g));
    g.finish();
}

fn remote<A: GlobalAlloc + Sync>(g: &mut Group<'_>, name: &str, a: &A) {
    g.bench_function(name, |b| {
        b.iter_custom(|iters| xthread_transfer(a, iters, 64, 64, 1));
    });
}

fn cross_thread_free(c: &mut Criterion) {
    let mut g = c.benchmark_group("cross_thread_free_64B");
    each_peer!(remote(&mut g));
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = alloc_free, realloc_in_place, cross_thread_free
}
criterion_main!(benches);
