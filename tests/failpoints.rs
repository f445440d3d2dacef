//! Fault injection (feature `failpoints`): the allocator's `mmap`, `mremap`
//! and `madvise` calls fail at random while op sequences and threads run.
//! Every failure must reach the caller as null (or, for `realloc`, as the
//! old block kept intact); no block is corrupted or overlaps another; and
//! the counters stay exact (live blocks and bytes return to where they
//! started once everything is freed).
//!
//! Run: `cargo test -p pool-alloc --features failpoints --test failpoints`.
//! The allocator is called directly; the test's own global allocator stays
//! the system one, so the harness itself never sees a failure.

use pool_alloc::{failpoints, PoolAlloc, ReclaimLevel};
use std::alloc::{GlobalAlloc, Layout};
use std::sync::Mutex;
use test_support::pattern::{self, Probes};
use test_support::ranges::LiveRanges;
use test_support::rng::XorShift;

static A: PoolAlloc = PoolAlloc::new();
/// The failpoint rate is process-wide: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// A size from every band, weighted to the ones that make system calls.
fn size(rng: &mut XorShift) -> usize {
    match rng.below(8) {
        0 | 1 => 1 + rng.below(3584) as usize,
        2..=5 => 4096 + rng.below((1 << 20) - 4096) as usize,
        _ => (1 << 20) + 1 + rng.below(6 << 20) as usize,
    }
}

fn align(rng: &mut XorShift) -> usize {
    match rng.below(8) {
        0..=5 => 8,
        6 => 4096,
        _ => 1 << 21,
    }
}

struct Live {
    p: usize,
    layout: Layout,
    seed: u64,
}

/// One op sequence on `A` under failpoints; returns (nulls seen, ops).
fn run_sequence(seed: u64, ops: usize) -> (usize, usize) {
    let mut rng = XorShift(seed | 1);
    let mut live: Vec<Live> = Vec::new();
    let mut ranges = LiveRanges::new();
    let mut nulls = 0;
    for op in 0..ops {
        let what = rng.below(10);
        if what < 4 || live.is_empty() {
            let layout = Layout::from_size_align(size(&mut rng), align(&mut rng)).unwrap();
            let zeroed = rng.below(4) == 0;
            // SAFETY: a valid non-zero layout.
            let p = unsafe {
                if zeroed {
                    A.alloc_zeroed(layout)
                } else {
                    A.alloc(layout)
                }
            };
            if p.is_null() {
                nulls += 1;
                continue;
            }
            assert_eq!(p as usize % layout.align(), 0, "aligned");
            if let Some(o) = ranges.overlapping(p as usize, layout.size()) {
                panic!("new block {p:?} overlaps live {o:?}");
            }
            if zeroed {
                // SAFETY: a live block of `layout.size()` bytes.
                unsafe { pattern::check_zeroed(p, layout.size(), Probes::Sparse) };
            }
            let s = seed ^ op as u64;
            // SAFETY: as above.
            unsafe { pattern::fill(p, layout.size(), s, Probes::Sparse) };
            ranges.insert(p as usize, layout.size());
            live.push(Live {
                p: p as usize,
                layout,
                seed: s,
            });
        } else if what < 7 {
            let i = rng.below(live.len() as u64) as usize;
            let b = live.swap_remove(i);
            // SAFETY: a live block of ours, filled with `b.seed`.
            unsafe {
                pattern::check(b.p as *const u8, b.layout.size(), b.seed, Probes::Sparse);
                A.dealloc(b.p as *mut u8, b.layout);
            }
            ranges.remove(b.p);
        } else {
            let i = rng.below(live.len() as u64) as usize;
            let new_size = size(&mut rng);
            let b = &mut live[i];
            // SAFETY: a live block of ours; `new_size` is non-zero and small.
            let q = unsafe { A.realloc(b.p as *mut u8, b.layout, new_size) };
            if q.is_null() {
                nulls += 1;
                // The old block is kept, untouched.
                // SAFETY: still live.
                unsafe {
                    pattern::check(b.p as *const u8, b.layout.size(), b.seed, Probes::Sparse)
                };
                continue;
            }
            // SAFETY: `q` holds the old contents up to the smaller size.
            unsafe {
                pattern::check_moved(
                    q,
                    b.p,
                    b.layout.size(),
                    new_size.min(b.layout.size()),
                    b.seed,
                    Probes::Sparse,
                )
            };
            ranges.remove(b.p);
            assert_eq!(q as usize % b.layout.align(), 0, "realloc keeps alignment");
            if let Some(o) = ranges.overlapping(q as usize, new_size) {
                panic!("realloc'd block {q:?} overlaps live {o:?}");
            }
            b.layout = Layout::from_size_align(new_size, b.layout.align()).unwrap();
            b.seed = seed ^ (op as u64) << 20;
            b.p = q as usize;
            // SAFETY: a live block of `new_size` bytes.
            unsafe { pattern::fill(q, new_size, b.seed, Probes::Sparse) };
            ranges.insert(q as usize, new_size);
        }
    }
    for b in live {
        // SAFETY: live blocks of ours.
        unsafe {
            pattern::check(b.p as *const u8, b.layout.size(), b.seed, Probes::Sparse);
            A.dealloc(b.p as *mut u8, b.layout);
        }
    }
    (nulls, ops)
}

/// Live blocks and bytes of the allocator by its own count.
fn live_counts() -> (u64, u64) {
    let s = A.snapshot();
    (
        s.live_blocks() + s.large.allocs - s.large.frees,
        s.live_bytes,
    )
}

#[test]
fn op_sequences_survive_failing_system_calls() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = live_counts();
    let failed_before = failpoints::failed();
    // Empty the caches first, so the sequences need new mappings.
    A.reclaim(ReclaimLevel::Emergency);
    failpoints::set(4, 0xFA11);
    let mut nulls = 0;
    for seed in 1..=12u64 {
        nulls += run_sequence(seed * 7919, 400).0;
        // Reclaim passes run into failing madvise calls too.
        A.reclaim(ReclaimLevel::Emergency);
    }
    failpoints::set(0, 0);
    assert!(
        failpoints::failed() > failed_before,
        "failures were injected"
    );
    assert!(nulls > 0, "some failures reached the caller as null");
    // Everything was freed: the counters are exact.
    assert_eq!(
        live_counts(),
        before,
        "live blocks and bytes back to the start"
    );
    // And the allocator works normally again.
    assert_eq!(run_sequence(99, 400).0, 0, "no nulls without failpoints");
}

#[test]
fn threads_survive_failing_system_calls() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = live_counts();
    A.reclaim(ReclaimLevel::Emergency);
    failpoints::set(6, 0xBEEF);
    let handles: Vec<_> = (0..4u64)
        .map(|t| std::thread::spawn(move || run_sequence(1000 + t, 300)))
        .collect();
    for h in handles {
        h.join().expect("a thread's checks passed");
    }
    // Cross-thread frees under failures: blocks made here, freed there.
    let layout = Layout::from_size_align(300 << 10, 16).unwrap();
    let blocks: Vec<usize> = (0..64)
        // SAFETY: a valid non-zero layout.
        .map(|_| unsafe { A.alloc(layout) } as usize)
        .filter(|&p| p != 0)
        .collect();
    std::thread::spawn(move || {
        for p in blocks {
            // SAFETY: allocated above with `layout`, freed once.
            unsafe { A.dealloc(p as *mut u8, layout) };
        }
    })
    .join()
    .unwrap();
    failpoints::set(0, 0);
    A.reclaim(ReclaimLevel::Emergency);
    assert_eq!(
        live_counts(),
        before,
        "live blocks and bytes back to the start"
    );
}
