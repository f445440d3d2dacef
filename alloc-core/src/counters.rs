//! Counters written by one thread, read by any: the fast path's only
//! bookkeeping.
//!
//! Each counter is an atomic written only by its owner thread with
//! `store(load + n, Relaxed)`: a plain load, add and store in machine code
//! (no locked instruction), yet a data-race-free read for a snapshot taken
//! on another thread. Single-writer is what makes this correct; the loom
//! model in `loom_tests.rs` shows a count is never lost at quiescence, and
//! its seeded-bug twin shows two writers would lose counts.

use crate::sync::{AtomicU64, Ordering::Relaxed};

/// Add `n` to a counter only this thread writes (wrapping; `u64::MAX`
/// subtracts one).
#[inline(always)]
pub(crate) fn bump(a: &AtomicU64, n: u64) {
    a.store(a.load(Relaxed).wrapping_add(n), Relaxed);
}

/// A class's counters in one heap.
#[repr(C)]
pub(crate) struct ClassCounters {
    allocs: AtomicU64,
    frees: AtomicU64,
    req_alloc: AtomicU64,
    req_free: AtomicU64,
}

impl ClassCounters {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        ClassCounters {
            allocs: AtomicU64::new(0),
            frees: AtomicU64::new(0),
            req_alloc: AtomicU64::new(0),
            req_free: AtomicU64::new(0),
        }
    }

    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        ClassCounters {
            allocs: AtomicU64::new(0),
            frees: AtomicU64::new(0),
            req_alloc: AtomicU64::new(0),
            req_free: AtomicU64::new(0),
        }
    }

    /// Owner thread: one allocation of `req` bytes.
    #[inline(always)]
    pub(crate) fn on_alloc(&self, req: usize) {
        if cfg!(feature = "stats") {
            bump(&self.allocs, 1);
            bump(&self.req_alloc, req as u64);
        }
    }

    /// Owner thread: one free of `req` bytes.
    #[inline(always)]
    pub(crate) fn on_free(&self, req: usize) {
        if cfg!(feature = "stats") {
            bump(&self.frees, 1);
            bump(&self.req_free, req as u64);
        }
    }

    /// Owner thread: a block resized in place.
    pub(crate) fn on_resize(&self, old: usize, new: usize) {
        bump(&self.req_free, old as u64);
        bump(&self.req_alloc, new as u64);
    }

    /// Any thread (counters shared by threads without a heap).
    pub(crate) fn on_free_shared(&self, req: usize) {
        if cfg!(feature = "stats") {
            self.frees.fetch_add(1, Relaxed);
            self.req_free.fetch_add(req as u64, Relaxed);
        }
    }

    /// Read the counters (any thread): allocations, frees, requested bytes
    /// allocated, requested bytes freed.
    pub(crate) fn read(&self) -> (u64, u64, u64, u64) {
        (
            self.allocs.load(Relaxed),
            self.frees.load(Relaxed),
            self.req_alloc.load(Relaxed),
            self.req_free.load(Relaxed),
        )
    }
}
