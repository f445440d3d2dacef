//! A small bounded lock-free cache of whole mappings (empty segments, freed
//! large blocks): a fixed array of slots, each empty (0) or holding one
//! mapping's address.
//!
//! Put: CAS an empty slot from 0 to the address. Take: CAS a full slot from
//! its address to 0. A thread never reads a mapping through a slot before its
//! CAS has made the mapping its own, so there is no ABA hazard and nothing to
//! free behind another thread's back.

use crate::sync::{AtomicUsize, Ordering};

pub(crate) struct SlotCache<const N: usize> {
    slots: [AtomicUsize; N],
}

impl<const N: usize> SlotCache<N> {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        #[allow(clippy::declare_interior_mutable_const)]
        const EMPTY: AtomicUsize = AtomicUsize::new(0);
        SlotCache { slots: [EMPTY; N] }
    }

    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        SlotCache {
            slots: core::array::from_fn(|_| AtomicUsize::new(0)),
        }
    }

    /// Put `addr` (non-zero) in the first free slot among the first `limit`.
    /// False when they are all taken: the caller keeps the mapping.
    pub(crate) fn put(&self, addr: usize, limit: usize) -> bool {
        debug_assert!(addr != 0);
        for slot in self.slots.iter().take(limit.min(N)) {
            if slot.load(Ordering::Relaxed) == 0
                && slot
                    .compare_exchange(0, addr, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
            {
                return true;
            }
        }
        false
    }

    /// Take the first cached value that `accept` likes. `accept` sees only
    /// the slot's value (callers encode what they match on, such as a
    /// length, in the low bits of the aligned address): it must not read
    /// through it, since until the CAS the mapping may be another thread's.
    pub(crate) fn take(&self, mut accept: impl FnMut(usize) -> bool) -> usize {
        for slot in self.slots.iter() {
            let v = slot.load(Ordering::Acquire);
            if v != 0
                && accept(v)
                && slot
                    .compare_exchange(v, 0, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return v;
            }
        }
        0
    }
}
