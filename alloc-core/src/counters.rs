//! Counters and gauges: what the allocator counts, read by `stats.rs`.
//!
//! * [`HeapCounters`]: per heap and class, written by one thread, read by
//!   any: the fast path's only bookkeeping. [`HeaplessFrees`]: frees by
//!   threads without a heap (atomic adds).
//! * [`Gauge`] and [`GLOBAL`]: process-wide figures (mappings, caches,
//!   large blocks) changed with ordinary atomic adds on slow paths only.
//!
//! Each counter is an atomic written only by its owner thread with
//! `store(load + n, Relaxed)`: a plain load, add and store in machine code
//! (no locked instruction), yet a data-race-free read for a snapshot taken
//! on another thread. Single-writer is what makes this correct; the loom
//! model in `loom_tests.rs` shows a count is never lost at quiescence, and
//! its seeded-bug twin shows two writers would lose counts.

#[cfg(not(loom))]
use crate::size_class::CLASSES;
use crate::sync::{AtomicU64, AtomicUsize, Ordering::Relaxed};
#[cfg(not(loom))]
use crossbeam_utils::CachePadded;

/// Add `n` to a counter only this thread writes (wrapping; `u64::MAX`
/// subtracts one).
#[inline(always)]
pub(crate) fn bump(a: &AtomicU64, n: u64) {
    a.store(a.load(Relaxed).wrapping_add(n), Relaxed);
}

/// A heap's per class counters, one array per figure (so the fast path
/// indexes them by class with the same scaled index as the heap's other
/// per class arrays: one instruction a count). Written by the heap's
/// holder only ([`bump`]); read by any thread.
#[repr(C)]
pub(crate) struct HeapCounters<const N: usize> {
    allocs: [AtomicU64; N],
    frees: [AtomicU64; N],
    req_alloc: [AtomicU64; N],
    req_free: [AtomicU64; N],
}

impl<const N: usize> HeapCounters<N> {
    /// Zeroed counters (the loom model; a heap's are zero in its fresh
    /// mapping).
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        HeapCounters {
            allocs: core::array::from_fn(|_| AtomicU64::new(0)),
            frees: core::array::from_fn(|_| AtomicU64::new(0)),
            req_alloc: core::array::from_fn(|_| AtomicU64::new(0)),
            req_free: core::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Owner thread: one free of `req` bytes in class `c`.
    ///
    /// # Safety
    /// * `c < N`.
    #[inline(always)]
    pub(crate) unsafe fn on_free_unchecked(&self, c: usize, req: usize) {
        if cfg!(feature = "stats") {
            // SAFETY: caller contract.
            unsafe {
                bump(self.frees.get_unchecked(c), 1);
                bump(self.req_free.get_unchecked(c), req as u64);
            }
        }
    }

    /// Owner thread: one allocation of `req` bytes in class `c` (slow
    /// paths; the fast path's go through the class's [`ClassTally`]).
    pub(crate) fn on_alloc(&self, c: usize, req: usize) {
        if cfg!(feature = "stats") {
            bump(&self.allocs[c], 1);
            bump(&self.req_alloc[c], req as u64);
        }
    }

    /// Owner thread: take back an allocation of `req` bytes in class `c`
    /// counted (by its [`ClassTally`]) before it failed.
    pub(crate) fn undo_alloc(&self, c: usize, req: usize) {
        if cfg!(feature = "stats") {
            bump(&self.allocs[c], u64::MAX);
            bump(&self.req_alloc[c], (req as u64).wrapping_neg());
        }
    }

    /// Owner thread: one free of `req` bytes in class `c` (slow paths).
    pub(crate) fn on_free(&self, c: usize, req: usize) {
        assert!(c < N, "class {c} out of range");
        // SAFETY: just checked.
        unsafe { self.on_free_unchecked(c, req) }
    }

    /// Owner thread: take back an [`on_free`](Self::on_free) of `req`
    /// bytes counted under the wrong class `c`.
    pub(crate) fn undo_free(&self, c: usize, req: usize) {
        if cfg!(feature = "stats") {
            bump(&self.frees[c], u64::MAX);
            bump(&self.req_free[c], (req as u64).wrapping_neg());
        }
    }

    /// Owner thread: a block of class `c` resized in place.
    pub(crate) fn on_resize(&self, c: usize, old: usize, new: usize) {
        if cfg!(feature = "stats") {
            bump(&self.req_free[c], old as u64);
            bump(&self.req_alloc[c], new as u64);
        }
    }

    /// Read class `c`'s counters (any thread): allocations, frees,
    /// requested bytes allocated, requested bytes freed.
    pub(crate) fn read(&self, c: usize) -> (u64, u64, u64, u64) {
        (
            self.allocs[c].load(Relaxed),
            self.frees[c].load(Relaxed),
            self.req_alloc[c].load(Relaxed),
            self.req_free[c].load(Relaxed),
        )
    }
}

/// Bits of a [`ClassTally`] word below its requested bytes: its
/// allocation count's.
const TALLY_SHIFT: u32 = 24;
const TALLY_COUNT: u64 = (1 << TALLY_SHIFT) - 1;
/// Most requested bytes a [`ClassTally`] word is armed for at once: every
/// allocation is at least one byte, so the allocations between two folds
/// stay below `2^24` and never reach the bytes' bits.
pub(crate) const TALLY_MAX_ARM: u64 = 1 << 23;

/// A heap's per class allocation tallies: one word per class that the
/// allocation fast path takes `(req << 24) + 1` off, one subtraction
/// for three things it used to do apart:
/// * **the count and requested bytes** of the class's allocations since
///   the word was last armed: `armed - word`, whose low 24 bits are the
///   count and the rest the bytes;
/// * **the leak investigator's countdown** (`profile.rs`): the word is
///   armed with the bytes to the next sample point (at most
///   [`TALLY_MAX_ARM`]), and the allocation that takes it below zero goes
///   to the slow path;
/// * **the fold**: that slow path moves the count and bytes into the
///   heap's [`HeapCounters`] and arms the word again, so the count's bits
///   never overflow.
///
/// A fold changes four words (the two counters, `armed` and the word)
/// under the class's sequence lock; a reader ([`ClassTally::read`])
/// copies them under it, so it never sees a fold half done. Written by the
/// heap's holder only; read by any thread. Zeroed memory is a valid tally
/// (armed for nothing: a fresh heap's first allocation of a class goes to
/// the slow path, which arms it).
#[repr(C)]
pub(crate) struct ClassTally<const N: usize> {
    words: [AtomicU64; N],
    armed: [AtomicU64; N],
    seqs: [crate::slots::Seq; N],
}

impl<const N: usize> ClassTally<N> {
    /// A tally armed for nothing (the loom model; a heap's is zero in its
    /// fresh mapping).
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        ClassTally {
            words: core::array::from_fn(|_| AtomicU64::new(0)),
            armed: core::array::from_fn(|_| AtomicU64::new(0)),
            seqs: core::array::from_fn(|_| crate::slots::Seq::new()),
        }
    }

    /// Owner thread: an allocation of `req` bytes in class `c` (the fast
    /// path; `req` is at most a pooled block). True when the word ran
    /// out: the slow path must [`fold`](Self::fold) before anything else.
    /// The allocation is counted either way (a caller that then fails
    /// takes it back with [`HeapCounters::undo_alloc`]).
    ///
    /// # Safety
    /// * `c < N`.
    #[inline(always)]
    pub(crate) unsafe fn charge(&self, c: usize, req: usize) -> bool {
        let take = ((req as u64) << TALLY_SHIFT) | 1;
        #[cfg(all(target_arch = "x86_64", not(loom)))]
        {
            // One subtraction from memory and a branch on its sign: what
            // the portable code below means, which the compiler does not
            // make of it (it reads the word back to test it). The word
            // stays far from `i64::MIN` (armed for at most 2^47, each
            // allocation takes at most 2^45), so the sign flag is the
            // result's sign.
            // SAFETY: `c < N` (caller contract), so the operand is class
            // `c`'s word, this thread's (single writer): a plain
            // `sub` to memory is a relaxed load and a relaxed store of it,
            // as the portable code does; aligned, so readers see the old
            // word or the new one. Touches nothing else, no stack.
            unsafe {
                core::arch::asm!(
                    "sub qword ptr [{words} + 8 * {c}], {take}",
                    "js {ran_out}",
                    words = in(reg) self.words.as_ptr(),
                    c = in(reg) c,
                    take = in(reg) take,
                    ran_out = label { return true; },
                    options(nostack),
                );
            }
            false
        }
        #[cfg(not(all(target_arch = "x86_64", not(loom))))]
        {
            // The store's value unused here and the sign read back (from
            // the store buffer): one subtraction from memory and a
            // compare, not a load, an add and a store.
            // SAFETY: caller contract.
            let w = unsafe { self.words.get_unchecked(c) };
            w.store(w.load(Relaxed).wrapping_sub(take), Relaxed);
            (w.load(Relaxed) as i64) < 0
        }
    }

    /// Did class `c`'s word run out (any allocation since the last fold
    /// took it below zero)?
    pub(crate) fn ran_out(&self, c: usize) -> bool {
        (self.words[c].load(Relaxed) as i64) < 0
    }

    /// Owner thread: move what class `c`'s word counted into `counters`
    /// and arm it for `bytes` more (at most [`TALLY_MAX_ARM`]). Returns the
    /// requested bytes it had counted.
    pub(crate) fn fold(&self, c: usize, counters: &HeapCounters<N>, bytes: u64) -> u64 {
        let (n, b) = self.pending(c);
        let arm = bytes.min(TALLY_MAX_ARM) << TALLY_SHIFT;
        let seq = &self.seqs[c];
        seq.write_begin();
        // Without the stats the tally is kept for its sign alone (the
        // sampler's countdown): nothing is counted, as frees are not.
        if cfg!(feature = "stats") {
            bump(&counters.allocs[c], n);
            bump(&counters.req_alloc[c], b);
        }
        self.armed[c].store(arm, Relaxed);
        self.words[c].store(arm, Relaxed);
        seq.write_end();
        b
    }

    /// [`fold`](Self::fold) without its sequence lock: the seeded bug of
    /// the loom model.
    #[cfg(loom)]
    pub(crate) fn fold_unlocked(&self, c: usize, counters: &HeapCounters<N>, bytes: u64) {
        let (n, b) = self.pending(c);
        let arm = bytes.min(TALLY_MAX_ARM) << TALLY_SHIFT;
        bump(&counters.allocs[c], n);
        bump(&counters.req_alloc[c], b);
        self.armed[c].store(arm, Relaxed);
        self.words[c].store(arm, Relaxed);
    }

    /// (allocations, requested bytes) class `c`'s word has counted since
    /// it was armed, from the two words as read.
    pub(crate) fn pending(&self, c: usize) -> (u64, u64) {
        let d = self.armed[c]
            .load(Relaxed)
            .wrapping_sub(self.words[c].load(Relaxed));
        (d & TALLY_COUNT, d >> TALLY_SHIFT)
    }

    /// Read class `c`'s figures (any thread): `counters`' four
    /// ([`HeapCounters::read`]) with the allocations and bytes the word
    /// holds added. Never waits: a copy that a fold overlapped is taken
    /// again, a few times; should the holder stop inside a fold for all of
    /// them (preempted there), the counters alone are returned, short by
    /// at most one fold's allocations.
    pub(crate) fn read(&self, c: usize, counters: &HeapCounters<N>) -> (u64, u64, u64, u64) {
        if !cfg!(feature = "stats") {
            return counters.read(c);
        }
        let seq = &self.seqs[c];
        let backoff = crate::sync::Backoff::new();
        for _ in 0..16 {
            let Some(s) = seq.read_begin() else {
                backoff.spin();
                continue;
            };
            let (allocs, frees, req_alloc, req_free) = counters.read(c);
            let (n, b) = self.pending(c);
            if seq.read_valid(s) {
                return (
                    allocs.wrapping_add(n),
                    frees,
                    req_alloc.wrapping_add(b),
                    req_free,
                );
            }
        }
        counters.read(c)
    }
}

/// A class's frees by the threads without a heap, shared by them
/// (atomic adds; slow paths only). Such threads never allocate, so only
/// frees are counted here.
#[repr(C)]
#[cfg_attr(loom, allow(dead_code))]
pub(crate) struct HeaplessFrees {
    frees: AtomicU64,
    req_free: AtomicU64,
}

impl HeaplessFrees {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        HeaplessFrees {
            frees: AtomicU64::new(0),
            req_free: AtomicU64::new(0),
        }
    }

    /// Any thread (counters shared by threads without a heap).
    pub(crate) fn on_free_shared(&self, req: usize) {
        if cfg!(feature = "stats") {
            self.frees.fetch_add(1, Relaxed);
            self.req_free.fetch_add(req as u64, Relaxed);
        }
    }

    /// Read the counters (any thread) as [`HeapCounters::read`] does:
    /// allocations (none), frees, requested bytes allocated (none),
    /// requested bytes freed.
    pub(crate) fn read(&self) -> (u64, u64, u64, u64) {
        (0, self.frees.load(Relaxed), 0, self.req_free.load(Relaxed))
    }
}

/// A byte or event figure changed with atomic adds by any thread (slow
/// paths only).
pub(crate) struct Gauge(AtomicUsize);

impl Gauge {
    #[cfg(not(loom))]
    const fn new() -> Self {
        Gauge(AtomicUsize::new(0))
    }
    pub(crate) fn add(&self, n: usize) {
        self.0.fetch_add(n, Relaxed);
    }
    pub(crate) fn sub(&self, n: usize) {
        self.0.fetch_sub(n, Relaxed);
    }
    pub(crate) fn get(&self) -> usize {
        self.0.load(Relaxed)
    }
}

/// Process-wide figures. Each sits on a cache line of its own: different
/// threads change them (a segment mapped here, a large block freed there).
#[cfg(not(loom))]
pub(crate) struct GlobalCounters {
    /// Segment address space mapped now.
    pub(crate) mapped_bytes: CachePadded<Gauge>,
    /// Bytes of slices in slabs (runs in use), all heaps.
    pub(crate) used_bytes: CachePadded<Gauge>,
    /// Bytes of free slices still committed (idle memory), all heaps.
    pub(crate) idle_bytes: CachePadded<Gauge>,
    /// Runs of slices taken so far (a sign of allocation activity the
    /// reclaimer looks at).
    pub(crate) runs_taken: CachePadded<Gauge>,
    /// Bytes of empty segments in the global segment cache.
    pub(crate) cached_segments_bytes: CachePadded<Gauge>,
    /// Bytes decommitted so far (cumulative).
    pub(crate) decommitted_bytes: CachePadded<Gauge>,
    /// Bytes unmapped so far (cumulative).
    pub(crate) unmapped_bytes: CachePadded<Gauge>,
    /// Heap metadata mapped.
    pub(crate) meta_bytes: CachePadded<Gauge>,
    /// Large-block mappings (live and cached).
    pub(crate) large_mapped_bytes: CachePadded<Gauge>,
    /// Freed large mappings kept in the large cache.
    pub(crate) large_cached_bytes: CachePadded<Gauge>,
    /// Bytes requested by live large blocks.
    pub(crate) large_live_bytes: CachePadded<Gauge>,
    /// Large blocks allocated (cumulative).
    pub(crate) large_allocs: CachePadded<Gauge>,
    /// Large blocks freed (cumulative).
    pub(crate) large_frees: CachePadded<Gauge>,
    /// Frees by threads that never allocated (and so have no heap).
    pub(crate) frees_without_heap: CachePadded<[HeaplessFrees; CLASSES]>,
    /// `reclaim()` calls per level (gentle, moderate, aggressive,
    /// emergency).
    pub(crate) reclaim_runs: [Gauge; 4],
    /// Bytes those calls gave back, per level.
    pub(crate) reclaim_bytes: [Gauge; 4],
    /// Pressure callback rounds per level (low, medium, high, critical).
    pub(crate) pressure_events: [Gauge; 4],
    /// Bytes given back to the OS, by the size class whose slab last held
    /// them (`segment::TAGS` entries).
    pub(crate) returned_by_tag: [Gauge; 64],
}

/// The process-wide figures.
#[cfg(not(loom))]
pub(crate) static GLOBAL: GlobalCounters = GlobalCounters {
    mapped_bytes: CachePadded::new(Gauge::new()),
    used_bytes: CachePadded::new(Gauge::new()),
    idle_bytes: CachePadded::new(Gauge::new()),
    runs_taken: CachePadded::new(Gauge::new()),
    cached_segments_bytes: CachePadded::new(Gauge::new()),
    decommitted_bytes: CachePadded::new(Gauge::new()),
    unmapped_bytes: CachePadded::new(Gauge::new()),
    meta_bytes: CachePadded::new(Gauge::new()),
    large_mapped_bytes: CachePadded::new(Gauge::new()),
    large_cached_bytes: CachePadded::new(Gauge::new()),
    large_live_bytes: CachePadded::new(Gauge::new()),
    large_allocs: CachePadded::new(Gauge::new()),
    large_frees: CachePadded::new(Gauge::new()),
    frees_without_heap: CachePadded::new([const { HeaplessFrees::new() }; CLASSES]),
    reclaim_runs: [const { Gauge::new() }; 4],
    reclaim_bytes: [const { Gauge::new() }; 4],
    pressure_events: [const { Gauge::new() }; 4],
    returned_by_tag: [const { Gauge::new() }; 64],
};

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Zeroed counters and tally, as in a fresh heap's mapping.
    fn fresh() -> (Box<ClassTally<2>>, Box<HeapCounters<2>>) {
        // SAFETY: all-zero bytes are valid atomics (and a valid `Seq`).
        unsafe { (Box::new(core::mem::zeroed()), Box::new(core::mem::zeroed())) }
    }

    #[test]
    fn a_tally_counts_folds_and_reads_whole_with_the_stats_only() {
        let (t, h) = fresh();
        // Never armed: the first allocation runs it out.
        // SAFETY: class 1 of a two-class tally.
        assert!(unsafe { t.charge(1, 16) });
        assert_eq!(t.fold(1, &h, 100), 16, "the bytes it had counted");
        // SAFETY: class 1 < 2, the tally's classes.
        unsafe {
            assert!(!t.charge(1, 40));
            assert!(!t.charge(1, 59));
            // 100 bytes armed and taken (the count's bits borrow from
            // them): out.
            assert!(t.charge(1, 1));
        }
        let (allocs, frees, req, _) = t.read(1, &h);
        if cfg!(feature = "stats") {
            assert_eq!((allocs, frees, req), (4, 0, 116));
        } else {
            assert_eq!(
                (allocs, frees, req),
                (0, 0, 0),
                "nothing counted without the stats"
            );
        }
        assert_eq!(t.read(0, &h), (0, 0, 0, 0), "other classes untouched");
        // Arms are capped so the count never reaches the bytes' bits.
        t.fold(1, &h, u64::MAX);
        assert_eq!(t.pending(1), (0, 0));
        // SAFETY: class 1 < 2, the tally's classes.
        assert!(!unsafe { t.charge(1, (TALLY_MAX_ARM - 1) as usize) });
        // SAFETY: class 1 < 2, the tally's classes.
        assert!(unsafe { t.charge(1, 2) }, "armed for TALLY_MAX_ARM bytes");
    }
}
