//! Heap life cycle: a thread gets a heap, gives it up at exit, and free
//! memory is released from heaps nobody runs on.
//!
//! * `heap_acquire`: a thread's first allocation adopts an abandoned heap,
//!   else maps a new one, and registers the thread-exit destructor.
//! * `thread_exit` / `heap_abandon`: at thread exit (a `pthread_key_create`
//!   destructor: Rust's TLS destructors may allocate on registration, a
//!   pthread key does not) the heap releases its empty slabs and segments
//!   and waits, with its remaining slabs, for a new thread to adopt it.
//!   Remote frees keep arriving at its slabs meanwhile.
//! * `sweep_abandoned`: any thread about to take a new segment first claims
//!   abandoned heaps one by one and releases the slabs those remote frees
//!   emptied. So thread churn does not grow memory.
//!
//! Who holds a heap is decided by its `HeapState` (`handoff.rs`).

use super::free::{process_delayed, release_slab};
use super::{heap_new, queue, registry_first, set_current_heap, Heap, HeapsReclaimed};
use crate::config;
use crate::os;
use crate::segment::{next_in_set, run_starts, SEG_SIZE};
use crate::slab::{self, FLAG_FULL};
use crate::sync::{AtomicU64, AtomicUsize, Ordering};
use core::num::NonZeroUsize;
use core::ptr;
use crossbeam_utils::CachePadded;
use once_cell::race::OnceNonZeroUsize;

/// How many heaps wait for adoption (a hint: adoption looks only when it is
/// non-zero).
static ABANDONED_HEAPS: CachePadded<AtomicUsize> = CachePadded::new(AtomicUsize::new(0));
/// When the last sweep ran (coarse ms): sweeps run at most every 10 ms.
static LAST_SWEEP_MS: CachePadded<AtomicU64> = CachePadded::new(AtomicU64::new(0));

/// The pthread key whose destructor reports thread exit, plus one (so that
/// key 0 is representable), or `FAILED_KEY`.
static EXIT_KEY: OnceNonZeroUsize = OnceNonZeroUsize::new();
/// `EXIT_KEY` value meaning "no key could be made; threads exit unseen".
const FAILED_KEY: usize = usize::MAX;

/// The thread-exit key, made once. Racing first threads may each make a
/// key; one wins the `once_cell` race cell (which never allocates) and the
/// others delete theirs.
fn exit_key() -> Option<libc::pthread_key_t> {
    let v = match EXIT_KEY.get() {
        Some(v) => v,
        None => {
            let made = os::thread_exit_key(thread_exit);
            let v = made.map_or(FAILED_KEY, |key| key as usize + 1);
            let v = NonZeroUsize::new(v).unwrap_or(NonZeroUsize::MIN);
            if EXIT_KEY.set(v).is_ok() {
                v
            } else {
                if let Some(key) = made {
                    os::thread_exit_key_delete(key);
                }
                EXIT_KEY.get().unwrap_or(v)
            }
        }
    };
    match v.get() {
        FAILED_KEY => None,
        v => Some((v - 1) as libc::pthread_key_t),
    }
}

/// Give this thread a heap: adopt an abandoned one, else map a new one.
/// Null when out of memory.
#[cold]
pub(super) fn heap_acquire() -> *mut Heap {
    config::ensure_init();
    let mut heap = adopt_abandoned();
    if heap.is_null() {
        heap = heap_new();
        if heap.is_null() {
            return heap;
        }
    }
    set_current_heap(heap);
    if let Some(key) = exit_key() {
        os::thread_exit_key_set(key, heap.cast());
    }
    heap
}

/// Claim an abandoned heap (for adoption or a sweep): see `handoff.rs`.
///
/// # Safety
/// * `h` is a heap of the registry.
unsafe fn try_claim(h: *mut Heap) -> bool {
    // SAFETY: caller contract: registry heaps are mapped forever; `state`
    // is atomic.
    unsafe { (*h).state.try_claim() }
}

fn adopt_abandoned() -> *mut Heap {
    if ABANDONED_HEAPS.load(Ordering::Relaxed) == 0 {
        return ptr::null_mut();
    }
    let mut h = registry_first();
    while !h.is_null() {
        // SAFETY: registry heaps are mapped forever; a claimed heap is ours
        // (the claim's Acquire sees everything its last holder wrote).
        unsafe {
            if try_claim(h) {
                ABANDONED_HEAPS.fetch_sub(1, Ordering::Relaxed);
                (*h).releasing = false;
                return h;
            }
            h = (*h).all_next;
        }
    }
    ptr::null_mut()
}

/// The pthread key's destructor: the thread that held `arg` exits.
///
/// # Safety
/// * Called by the C library at thread exit with the value this thread
///   set for the key: null, or its heap, which it holds.
unsafe extern "C" fn thread_exit(arg: *mut libc::c_void) {
    let heap = arg.cast::<Heap>();
    if heap.is_null() {
        return;
    }
    set_current_heap(ptr::null_mut());
    // SAFETY: the key's value is this thread's heap, which it holds until
    // it abandons it here.
    unsafe { heap_abandon(heap) };
}

/// The thread is gone: give back what is free, leave the rest for adoption.
///
/// # Safety
/// * The calling thread holds `heap` and never touches it again.
unsafe fn heap_abandon(heap: *mut Heap) {
    // SAFETY: caller contract: the heap is ours until the state store.
    unsafe {
        (*heap).releasing = true;
        release_empty(heap);
        (*heap).profile.give_back();
        // Keep at most one segment's worth of idle memory: a short-lived
        // thread's leftovers stay warm for its successor.
        (*heap).set_lock.lock();
        (*heap).segments.flush_gauges();
        while (*heap).segments.dirty_free_bytes() > SEG_SIZE {
            if (*heap).segments.decommit_oldest_segment(usize::MAX).bytes == 0 {
                break;
            }
        }
        (*heap).set_lock.unlock();
        ABANDONED_HEAPS.fetch_add(1, Ordering::Relaxed);
        (*heap).state.abandon();
    }
}

/// Take every pending free of `heap` and release the slabs left empty,
/// kept empty slabs included. Returns how many were released.
///
/// # Safety
/// * The caller holds `heap` (its own heap, or one it claimed), with
///   `releasing` set.
unsafe fn release_empty(heap: *mut Heap) -> usize {
    let mut released = 0;
    // SAFETY: caller contract: the heap and its segments are ours; each run
    // start of a segment is the first slice of a live slab of the heap.
    // Releasing a slab returns its run and may move its segment to the
    // list's head, but never takes a segment out of the list.
    unsafe {
        debug_assert!((*heap).releasing);
        process_delayed(heap);
        let mut seg = (*heap).segments.first();
        while !seg.is_null() {
            // Read before releasing: a release moves `seg` to the list's
            // head, and the walk must go on from where it was.
            let next = next_in_set(seg);
            let mut starts = run_starts(seg);
            while starts != 0 {
                let i = starts.trailing_zeros() as usize;
                starts &= starts - 1;
                let slab = slab::descriptor_of(seg, i);
                slab::collect_frees(slab);
                if (*slab).owner_flags & FLAG_FULL != 0 && !(*slab).free.is_null() {
                    (*slab).owner_flags &= !FLAG_FULL;
                    (*slab).thread_free.clear_delayed();
                    queue::push_back(heap, slab);
                }
                if (*slab).used == 0 && (*slab).owner_flags & FLAG_FULL == 0 {
                    queue::remove(heap, slab);
                    release_slab(heap, slab, false);
                    released += 1;
                }
            }
            seg = next;
        }
    }
    released
}

/// Sweep abandoned heaps: release the slabs remote frees have emptied since
/// their threads exited, and give back their idle memory. Throttled to once
/// per 10 ms; called before a heap takes a new segment.
pub(super) fn sweep_abandoned() {
    if ABANDONED_HEAPS.load(Ordering::Relaxed) == 0 {
        return;
    }
    let now = os::now_ms();
    let last = LAST_SWEEP_MS.load(Ordering::Relaxed);
    if now.saturating_sub(last) < 10
        || LAST_SWEEP_MS
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    sweep_abandoned_now();
}

/// Sweep every abandoned heap now (see [`sweep_abandoned`]).
pub(crate) fn sweep_abandoned_now() -> HeapsReclaimed {
    let mut out = HeapsReclaimed::default();
    if ABANDONED_HEAPS.load(Ordering::Relaxed) == 0 {
        return out;
    }
    let mut h = registry_first();
    while !h.is_null() {
        let r = reclaim_abandoned(h, u64::MAX);
        out.given.add(r.given);
        out.slabs += r.slabs;
        // SAFETY: registry heaps are mapped forever; `all_next` is written
        // once, before the heap was published.
        h = unsafe { (*h).all_next };
    }
    out
}

/// If `h` is abandoned and nobody holds it: claim it, release the slabs
/// remote frees emptied, give back its idle memory idle since before
/// `cutoff`, and abandon it again.
pub(super) fn reclaim_abandoned(h: *mut Heap, cutoff: u64) -> HeapsReclaimed {
    let mut out = HeapsReclaimed::default();
    // SAFETY: registry heaps are mapped forever; we touch one only after
    // claiming it (Acquire), and hand it back with a Release store.
    unsafe {
        if try_claim(h) {
            (*h).releasing = true;
            out.slabs += release_empty(h);
            (*h).set_lock.lock();
            out.given
                .add((*h).segments.decommit_idle(cutoff, usize::MAX));
            (*h).set_lock.unlock();
            (*h).state.abandon();
        }
    }
    out
}

/// The registry head `lock_all_sets` started from: `unlock_all_sets`
/// releases exactly the heaps it locked (heaps registered in between sit
/// before it).
static FORK_HEAD: crate::sync::AtomicPtr<Heap> = crate::sync::AtomicPtr::new(ptr::null_mut());

/// Before `fork`: take every registered heap's segment-set lock (waiting
/// for holders to finish their bounded work), so that no set is mid-change
/// in the child. Locks are only ever held one at a time elsewhere, so
/// taking them in registry order cannot deadlock.
pub(crate) fn lock_all_sets() {
    let head = registry_first();
    FORK_HEAD.store(head, Ordering::Relaxed);
    let mut h = head;
    while !h.is_null() {
        // SAFETY: registry heaps are mapped forever; `set_lock` is atomic
        // and `all_next` was written before the heap was published.
        unsafe {
            (*h).set_lock.lock();
            h = (*h).all_next;
        }
    }
}

/// After `fork`, in the parent and in the child: release what
/// [`lock_all_sets`] took.
pub(crate) fn unlock_all_sets() {
    let mut h = FORK_HEAD.swap(ptr::null_mut(), Ordering::Relaxed);
    while !h.is_null() {
        // SAFETY: as in `lock_all_sets`; these are the heaps it locked.
        unsafe {
            (*h).set_lock.unlock();
            h = (*h).all_next;
        }
    }
}
