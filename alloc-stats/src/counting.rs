//! A counting wrapper around any `GlobalAlloc`.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Wraps a `GlobalAlloc` and counts what passes through it, so the same
/// figures can be read with System or mimalloc before switching.
///
/// ```
/// use alloc_stats::Counting;
/// use std::alloc::System;
/// #[global_allocator]
/// static GLOBAL: Counting<System> = Counting::new(System);
/// let v = vec![0u8; 100];
/// assert!(GLOBAL.stats().live_bytes >= 100);
/// drop(v);
/// ```
pub struct Counting<A> {
    inner: A,
    allocs: AtomicU64,
    frees: AtomicU64,
    live: AtomicU64,
    peak: AtomicU64,
}

/// What [`Counting`] has seen.
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
    pub const fn new(inner: A) -> Self {
        Counting {
            inner,
            allocs: AtomicU64::new(0),
            frees: AtomicU64::new(0),
            live: AtomicU64::new(0),
            peak: AtomicU64::new(0),
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

    fn on_alloc(&self, size: usize) {
        self.allocs.fetch_add(1, Relaxed);
        let live = self.live.fetch_add(size as u64, Relaxed) + size as u64;
        self.peak.fetch_max(live, Relaxed);
    }

    fn on_free(&self, size: usize) {
        self.frees.fetch_add(1, Relaxed);
        self.live.fetch_sub(size as u64, Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `inner`, which upholds the
// `GlobalAlloc` contract; the counters only observe.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { self.inner.alloc(layout) };
        if !p.is_null() {
            self.on_alloc(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { self.inner.alloc_zeroed(layout) };
        if !p.is_null() {
            self.on_alloc(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.on_free(layout.size());
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.inner.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { self.inner.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            self.on_free(layout.size());
            self.on_alloc(new_size);
        }
        p
    }
}
