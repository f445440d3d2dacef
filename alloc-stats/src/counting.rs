//! A counting wrapper around any `GlobalAlloc`.

use crate::sync::{AtomicU64, Ordering::Relaxed};
use core::alloc::{GlobalAlloc, Layout};

/// Wraps a `GlobalAlloc` and counts what passes through it, so the same
/// figures can be read with System or mimalloc before switching.
///
/// ```
/// use alloc_stats::Counting;
/// use std::alloc::System;
/// #[global_allocator]
/// static GLOBAL: Counting<System> = Counting::new(System);
/// let before = GLOBAL.stats();
/// let v = vec![0u8; 100];
/// let during = GLOBAL.stats();
/// assert!(during.live_bytes >= before.live_bytes + 100);
/// assert!(during.allocs > before.allocs);
/// drop(v);
/// assert!(GLOBAL.stats().frees > during.frees);
/// assert!(GLOBAL.stats().peak_live_bytes >= during.live_bytes);
/// ```
pub struct Counting<A> {
    inner: A,
    allocs: AtomicU64,
    frees: AtomicU64,
    live: AtomicU64,
    peak: AtomicU64,
    /// Block sizes of the size classes to count by (empty: totals only).
    table: &'static [u32],
    /// Per class (in `table` order), then one row for sizes above it.
    per_class: [ClassCount; MAX_CLASSES + 1],
}

/// Most classes a [`Counting`] table may have.
pub const MAX_CLASSES: usize = 64;

/// One class's counts in [`Counting`].
struct ClassCount {
    allocs: AtomicU64,
    frees: AtomicU64,
    live: AtomicU64,
    /// Highest `live` seen.
    peak: AtomicU64,
}

impl ClassCount {
    #[cfg(not(loom))]
    const fn new() -> Self {
        ClassCount {
            allocs: AtomicU64::new(0),
            frees: AtomicU64::new(0),
            live: AtomicU64::new(0),
            peak: AtomicU64::new(0),
        }
    }

    #[cfg(loom)]
    fn new() -> Self {
        ClassCount {
            allocs: AtomicU64::new(0),
            frees: AtomicU64::new(0),
            live: AtomicU64::new(0),
            peak: AtomicU64::new(0),
        }
    }
}

/// What [`Counting`] has seen, from [`Counting::stats`].
///
/// ```
/// use alloc_stats::{Counting, CountingStats};
/// use std::alloc::{GlobalAlloc, Layout, System};
///
/// let counting = Counting::new(System);
/// let layout = Layout::from_size_align(64, 8).unwrap();
/// // SAFETY: a non-zero layout; the block is freed with the same layout.
/// unsafe {
///     let p = counting.alloc(layout);
///     assert!(!p.is_null());
///     counting.dealloc(p, layout);
/// }
/// let s = counting.stats();
/// assert_eq!(
///     s,
///     CountingStats { allocs: 1, frees: 1, live_bytes: 0, peak_live_bytes: 64 }
/// );
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CountingStats {
    /// Allocations (realloc counts as one free and one allocation).
    pub allocs: u64,
    /// Frees.
    pub frees: u64,
    /// Bytes requested and live.
    pub live_bytes: u64,
    /// Highest `live_bytes` seen.
    pub peak_live_bytes: u64,
}

impl<A> Counting<A> {
    /// Wrap `inner`.
    #[cfg(not(loom))]
    pub const fn new(inner: A) -> Self {
        Self::with_classes(inner, &[])
    }

    /// Wrap `inner`, counting by the size classes whose block sizes are
    /// `table` (increasing, at most [`MAX_CLASSES`]; e.g. pool-alloc's
    /// `size_class::CLASS_TABLE`), so [`Counting::snapshot`] gives the same
    /// table as pool-alloc's own snapshot, for any allocator.
    #[cfg(not(loom))]
    pub const fn with_classes(inner: A, table: &'static [u32]) -> Self {
        let table: &'static [u32] = if table.len() > MAX_CLASSES {
            &[]
        } else {
            table
        };
        Counting {
            inner,
            allocs: AtomicU64::new(0),
            frees: AtomicU64::new(0),
            live: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            table,
            per_class: [const { ClassCount::new() }; MAX_CLASSES + 1],
        }
    }

    /// Wrap `inner` (loom's atomics are not `const`).
    #[cfg(loom)]
    pub fn new(inner: A) -> Self {
        Counting {
            inner,
            allocs: AtomicU64::new(0),
            frees: AtomicU64::new(0),
            live: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            table: &[],
            per_class: core::array::from_fn(|_| ClassCount::new()),
        }
    }

    /// The counts so far.
    pub fn stats(&self) -> CountingStats {
        CountingStats {
            allocs: self.allocs.load(Relaxed),
            frees: self.frees.load(Relaxed),
            live_bytes: self.live.load(Relaxed),
            peak_live_bytes: self.peak.load(Relaxed),
        }
    }

    /// The row of `size`: its class, or the row past the table.
    fn row(&self, size: usize) -> Option<&ClassCount> {
        if self.table.is_empty() {
            return None;
        }
        let i = self.table.partition_point(|&b| (b as usize) < size);
        self.per_class.get(i.min(self.table.len()))
    }

    /// The counts as a snapshot with the class table given to
    /// [`Counting::with_classes`] (sizes above it in `large`), so the same
    /// report, JSON and leak model work for any allocator. What only the
    /// allocator itself knows is not made up: resident, mapped and returned
    /// bytes and the slab figures stay 0, and reuse is marked unknown
    /// ([`Snapshot::reuse_unknown`](crate::Snapshot::reuse_unknown)).
    /// Per-class peaks are the highest live requested bytes this wrapper
    /// has seen in the class.
    pub fn snapshot(&self) -> crate::Snapshot {
        let mut s = crate::Snapshot {
            taken_at_ms: crate::now_ms(),
            reuse_unknown: true,
            ..Default::default()
        };
        for (i, &b) in self.table.iter().enumerate() {
            let k = &self.per_class[i];
            let (allocs, frees) = (k.allocs.load(Relaxed), k.frees.load(Relaxed));
            let live_blocks = allocs.saturating_sub(frees);
            s.classes.push(crate::ClassStats {
                class: i,
                block_size: b as usize,
                allocs,
                frees,
                live_blocks,
                live_requested_bytes: k.live.load(Relaxed),
                live_rounded_bytes: live_blocks * u64::from(b),
                peak_live_bytes: k.peak.load(Relaxed),
                ..Default::default()
            });
        }
        let top = &self.per_class[self.table.len().min(MAX_CLASSES)];
        s.large.allocs = top.allocs.load(Relaxed);
        s.large.frees = top.frees.load(Relaxed);
        s.large.live_bytes = top.live.load(Relaxed);
        s.live_bytes = self.live.load(Relaxed);
        s
    }

    fn on_alloc(&self, size: usize) {
        if let Some(r) = self.row(size) {
            r.allocs.fetch_add(1, Relaxed);
            let live = r.live.fetch_add(size as u64, Relaxed) + size as u64;
            r.peak.fetch_max(live, Relaxed);
        }
        self.allocs.fetch_add(1, Relaxed);
        let live = self.live.fetch_add(size as u64, Relaxed) + size as u64;
        self.peak.fetch_max(live, Relaxed);
    }

    fn on_free(&self, size: usize) {
        if let Some(r) = self.row(size) {
            r.frees.fetch_add(1, Relaxed);
            r.live.fetch_sub(size as u64, Relaxed);
        }
        self.frees.fetch_add(1, Relaxed);
        self.live.fetch_sub(size as u64, Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `inner`, which upholds the
// `GlobalAlloc` contract; the counters only observe.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    /// # Safety
    /// * As [`GlobalAlloc::alloc`]: `layout` has a non-zero size.
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout has a non-zero size, all `inner.alloc`
        // asks.
        let p = unsafe { self.inner.alloc(layout) };
        if !p.is_null() {
            self.on_alloc(layout.size());
        }
        p
    }

    /// # Safety
    /// * As [`GlobalAlloc::alloc_zeroed`]: `layout` has a non-zero size.
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout has a non-zero size, all
        // `inner.alloc_zeroed` asks.
        let p = unsafe { self.inner.alloc_zeroed(layout) };
        if !p.is_null() {
            self.on_alloc(layout.size());
        }
        p
    }

    /// # Safety
    /// * As [`GlobalAlloc::dealloc`]: `ptr` is a live block of this
    ///   allocator (so of `inner`) allocated with `layout`.
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.on_free(layout.size());
        // SAFETY: `ptr` came from `inner` with `layout` (every block of
        // `Counting` does) and is live, as `inner.dealloc` asks.
        unsafe { self.inner.dealloc(ptr, layout) }
    }

    /// # Safety
    /// * As [`GlobalAlloc::realloc`]: `ptr` is a live block allocated with
    ///   `layout`; `new_size` is non-zero and fits `isize` when rounded.
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from `inner` with `layout`, and `new_size`
        // meets `GlobalAlloc::realloc`'s rules (caller contract).
        let p = unsafe { self.inner.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            self.on_free(layout.size());
            self.on_alloc(new_size);
        }
        p
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! loom: two threads allocate and free through one `Counting` while a
    //! third reads; at quiescence every count is exact and the peak is at
    //! least the largest live total any reader saw. The seeded-bug twin
    //! updates `live` with a load and a store (no RMW), and loses counts.

    use super::*;
    use loom::sync::Arc;
    use loom::thread;
    use std::alloc::System;

    fn model(buggy: bool) {
        loom::model(move || {
            let c = Arc::new(Counting::new(System));
            let workers: Vec<_> = (0..2)
                .map(|_| {
                    let c = Arc::clone(&c);
                    thread::spawn(move || {
                        if buggy {
                            let v = c.live.load(Relaxed);
                            c.live.store(v + 8, Relaxed);
                            c.allocs.fetch_add(1, Relaxed);
                        } else {
                            c.on_alloc(8);
                        }
                        c.on_free(8);
                    })
                })
                .collect();
            let reader = {
                let c = Arc::clone(&c);
                thread::spawn(move || {
                    let s = c.stats();
                    assert!(s.frees <= 2 && s.allocs <= 2);
                })
            };
            for w in workers {
                w.join().unwrap();
            }
            reader.join().unwrap();
            let s = c.stats();
            assert_eq!(
                (s.allocs, s.frees, s.live_bytes),
                (2, 2, 0),
                "counts exact at quiescence"
            );
        });
    }

    #[test]
    fn counting_is_exact_at_quiescence() {
        model(false);
    }

    #[test]
    #[should_panic(expected = "counts exact at quiescence")]
    fn seeded_bug_live_without_rmw_loses_counts() {
        model(true);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::alloc::System;

    static TABLE: [u32; 3] = [16, 64, 256];

    #[test]
    fn the_snapshot_counts_by_class_and_makes_up_nothing() {
        let c = Counting::with_classes(System, &TABLE);
        let l = |n| Layout::from_size_align(n, 8).unwrap();
        // SAFETY: non-zero layouts; each block is freed once with its own.
        unsafe {
            let a = c.alloc(l(40));
            let b = c.alloc(l(50));
            let big = c.alloc(l(1000));
            assert!(!a.is_null() && !b.is_null() && !big.is_null());
            c.dealloc(a, l(40));
            let d = c.alloc(l(10));
            let s = c.snapshot();
            c.dealloc(b, l(50));
            c.dealloc(d, l(10));
            c.dealloc(big, l(1000));

            let row = &s.classes[1];
            assert_eq!((row.block_size, row.allocs, row.frees), (64, 2, 1));
            assert_eq!((row.live_blocks, row.live_requested_bytes), (1, 50));
            assert_eq!(row.live_rounded_bytes, 64);
            // 40 and 50 were live together.
            assert_eq!(row.peak_live_bytes, 90);
            assert_eq!((s.classes[0].allocs, s.classes[0].peak_live_bytes), (1, 10));
            assert_eq!((s.large.allocs, s.large.live_bytes), (1, 1000));
            assert_eq!(s.live_bytes, 1060);

            // The wrapped allocator's reuse is not seen: no 100 % made up
            // from a `carved` of 0 in any format.
            assert!(s.reuse_unknown);
            let table = s.to_string();
            let row64 = table.lines().find(|l| l.trim_start().starts_with("64 B"));
            let cols: Vec<&str> = row64.expect("a row for 64 B").split_whitespace().collect();
            // class (two words), allocs, frees, live, live req (2), live
            // held (2), slabs, reuse.
            assert_eq!(cols[10], "-", "{table}");
            assert!(!table.contains("100.0%"), "{table}");
            let json = s.to_json();
            assert!(json.contains("\"reuse_rate\":null"), "{json}");
            assert!(json.contains("\"reuse_unknown\":true"), "{json}");
            let prom = s.to_prometheus();
            assert!(!prom.contains("carved"), "{prom}");
            assert!(
                prom.contains("pool_alloc_class_allocs_total{class=\"64\"} 2"),
                "{prom}"
            );

            // A measured snapshot keeps both.
            let mut m = s.clone();
            m.reuse_unknown = false;
            m.classes[1].carved = 1;
            assert!(m.to_string().contains("50.0%"));
            assert!(m
                .to_prometheus()
                .contains("pool_alloc_class_carved_total{class=\"64\"} 1"));
            // Merging with an unmeasured one makes the sum unmeasured.
            m.merge(&s);
            assert!(m.reuse_unknown);
        }
    }
}
