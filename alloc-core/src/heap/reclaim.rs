//! Giving idle memory back across heaps.
//!
//! Each heap's thread gives back its own idle memory on its slow paths
//! (`alloc.rs` `owner_pass`, `free.rs` `release_slab`). What lies beyond a
//! thread's reach is here:
//! * [`reclaim_other_heaps`]: the idle slices of other live heaps, taken
//!   under their set lock, tried, never waited for (a thread in its slow
//!   path holds its own lock briefly and does its own work);
//! * abandoned heaps, claimed and swept (`exit.rs`);
//! * [`request_release_all`]: asks every live heap's thread to release its
//!   kept empty slabs at its next slow path (a thread's slab queues are
//!   its own: no other thread may touch them).

use super::exit::{reclaim_abandoned, sweep_abandoned_now};
use super::free::release_slab;
use super::{current_heap, empty_slab, queue, registry_first, Heap, HeapsReclaimed};
use crate::segment::Reclaimed;
use crate::size_class::SMALL_CLASSES;
use crate::sync::Ordering;
use crate::{large, os};

/// Release `heap`'s kept empty slabs that became idle before `cutoff`;
/// with `cutoff == u64::MAX` every empty slab, the current ones included.
/// Their slices become idle memory of the heap's segments. Returns how
/// many were released.
///
/// # Safety
/// * `heap` is the calling thread's heap (or one it claimed).
pub(crate) unsafe fn release_kept_slabs(heap: *mut Heap, cutoff: u64) -> usize {
    let mut n = 0;
    // SAFETY: caller contract: the queues are ours; a slab with no block
    // outstanding (`used == 0`, and so no remote free pending either) can be
    // released.
    unsafe {
        for c in 0..SMALL_CLASSES {
            let mut s = (*heap).current[c];
            while !s.is_null() && s != empty_slab() {
                let next = (*s).next;
                let current = s == (*heap).current[c];
                let expired = if cutoff == u64::MAX {
                    true
                } else {
                    !current && (*s).idle_since != 0 && (*s).idle_since < cutoff
                };
                if (*s).used == 0 && expired {
                    queue::remove(heap, s);
                    release_slab(heap, s, false);
                    n += 1;
                }
                s = next;
            }
        }
    }
    n
}

/// Give back the idle slices of every heap but `me` that became idle
/// before `cutoff` (with `stretch`, each live heap's cutoff stretched by
/// what its set learnt: `SegmentSet::stretched`), with at most `max_calls`
/// system calls per heap. A live heap whose set lock is taken is skipped;
/// an abandoned heap is claimed (skipped if someone else holds it), its
/// emptied slabs released first.
pub(crate) fn reclaim_other_heaps(
    me: *mut Heap,
    cutoff: u64,
    stretch: bool,
    max_calls: usize,
) -> Reclaimed {
    let now = os::now_ms();
    let mut done = Reclaimed::default();
    let mut h = registry_first();
    while !h.is_null() {
        // SAFETY: registry heaps are mapped forever; `set_lock` is atomic
        // and `segments` is touched only while holding it; an abandoned
        // heap is touched only after claiming it.
        unsafe {
            if h != me {
                if (*h).state.is_abandoned() {
                    done.add(reclaim_abandoned(h, cutoff).given);
                } else if (*h).set_lock.try_lock() {
                    let set = &mut (*h).segments;
                    let c = if stretch {
                        set.stretched(cutoff, now)
                    } else {
                        cutoff
                    };
                    done.add(set.decommit_idle(c, max_calls));
                    (*h).set_lock.unlock();
                }
            }
            h = (*h).all_next;
        }
    }
    done
}

/// Give back the calling thread's idle memory idle since before `cutoff`
/// (`u64::MAX`: all of it; with `stretch`, stretched as in
/// [`reclaim_other_heaps`]); with `kept`, release its kept empty slabs
/// first (all of them when `cutoff == u64::MAX`).
pub(crate) fn reclaim_own(cutoff: u64, stretch: bool, kept: bool) -> HeapsReclaimed {
    let mut out = HeapsReclaimed::default();
    let heap = current_heap();
    if heap.is_null() {
        return out;
    }
    // SAFETY: our own heap; the set under its lock.
    unsafe {
        if kept {
            out.slabs = release_kept_slabs(heap, cutoff);
        }
        (*heap).set_lock.lock();
        let set = &mut (*heap).segments;
        let c = if stretch {
            set.stretched(cutoff, os::now_ms())
        } else {
            cutoff
        };
        out.given = set.decommit_idle(c, usize::MAX);
        (*heap).set_lock.unlock();
    }
    out
}

/// Ask every live heap's thread to release its kept empty slabs at its
/// next slow path.
pub(crate) fn request_release_all() {
    let mut h = registry_first();
    while !h.is_null() {
        // SAFETY: registry heaps are mapped forever; the flag is atomic.
        unsafe {
            (*h).release_requested.store(true, Ordering::Relaxed);
            h = (*h).all_next;
        }
    }
}

/// The hard limit refused memory to the calling thread: give back
/// everything that can go, once (its kept slabs and idle memory, other
/// heaps' idle memory, abandoned heaps, cached large mappings).
pub(crate) fn reclaim_for_limit() -> HeapsReclaimed {
    let mut out = reclaim_own(u64::MAX, false, true);
    out.given.add(reclaim_other_heaps(
        current_heap(),
        u64::MAX,
        false,
        usize::MAX,
    ));
    let swept = sweep_abandoned_now();
    out.given.add(swept.given);
    out.slabs += swept.slabs;
    let flushed = large::flush_cache();
    out.given.bytes += flushed;
    out
}
