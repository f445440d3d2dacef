//! Who holds what:
//! * [`HeapState`], heap ownership hand-over: the state word that passes a
//!   whole heap (its slabs, queues and counters, all plain memory) from an
//!   exiting thread to the thread that adopts it, or to a thread sweeping it;
//! * [`SetLock`]: who may change a heap's segment set right now (its
//!   thread, or the background reclaimer).
//!
//! ```text
//! IN_USE --abandon (Release)--> ABANDONED --try_claim (Acquire CAS)--> IN_USE
//! ```
//!
//! The Release store publishes everything the holder wrote; the Acquire CAS
//! of the next holder sees it; the CAS lets exactly one claimant win. The
//! loom model in `loom_tests.rs` checks this with the heap's contents in a
//! loom cell, and its seeded-bug twin (a Relaxed abandon) is caught.

use crate::sync::{AtomicBool, AtomicU8, Backoff, Ordering};

const IN_USE: u8 = 1;
const ABANDONED: u8 = 2;

/// The hand-over state of one heap.
pub(crate) struct HeapState(AtomicU8);

impl HeapState {
    /// A heap held by its creator.
    #[cfg(loom)]
    pub(crate) fn new_in_use() -> Self {
        HeapState(AtomicU8::new(IN_USE))
    }

    /// Mark a freshly mapped (zeroed) heap as held by its creator, before
    /// it is published on the registry.
    pub(crate) fn init_in_use(&self) {
        self.0.store(IN_USE, Ordering::Relaxed);
    }

    /// The holder gives the heap up: every write it made becomes visible to
    /// the next holder.
    pub(crate) fn abandon(&self) {
        self.0.store(ABANDONED, Ordering::Release);
    }

    /// Try to become the heap's holder. True for exactly one claimant per
    /// `abandon`.
    pub(crate) fn try_claim(&self) -> bool {
        self.0.load(Ordering::Relaxed) == ABANDONED
            && self
                .0
                .compare_exchange(ABANDONED, IN_USE, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    /// Whether the heap waits for adoption (a statistic; may be stale).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn is_abandoned(&self) -> bool {
        self.0.load(Ordering::Relaxed) == ABANDONED
    }
}

/// Who may change a heap's segment set (`segment::SegmentSet`): its heap's
/// thread (or a claimant of an abandoned heap) on slow paths, or the
/// background reclaimer. A spin lock held for bounded work; the reclaimer
/// only ever tries it. The Acquire of a successful lock sees every change
/// the last holder made before its Release unlock (loom model in
/// `loom_tests.rs`, with a Relaxed seeded-bug twin).
pub(crate) struct SetLock(AtomicBool);

impl SetLock {
    /// An unlocked lock (heaps get theirs zeroed from a fresh mapping).
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        SetLock(AtomicBool::new(false))
    }

    /// Take the lock, waiting for a reclaimer that holds it (it holds it
    /// for at most one bounded pass).
    pub(crate) fn lock(&self) {
        let backoff = Backoff::new();
        while !self.try_lock() {
            backoff.snooze();
        }
    }

    /// Take the lock if it is free.
    pub(crate) fn try_lock(&self) -> bool {
        !self.0.load(Ordering::Relaxed)
            && self
                .0
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    pub(crate) fn unlock(&self) {
        self.0.store(false, Ordering::Release);
    }
}
