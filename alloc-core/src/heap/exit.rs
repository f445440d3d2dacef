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
//! * `release_current_thread`: the explicit "give back what is free" of
//!   `PoolAlloc::release_free_memory`.
//!
//! Who holds a heap is decided by its `HeapState` (`handoff.rs`).

use super::free::{process_delayed, release_slab};
use super::{current_heap, heap_new, queue, registry_first, set_current_heap, Heap};
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
        // Decommit what is left free beyond one segment's worth: a
        // short-lived thread's leftovers stay warm for its successor.
        if (*heap).segments.dirty_free_bytes() > SEG_SIZE {
            (*heap).segments.decommit_free();
        }
        (*heap).segments.keep_spares(1);
        ABANDONED_HEAPS.fetch_add(1, Ordering::Relaxed);
        (*heap).state.abandon();
    }
}

/// Take every pending free of `heap` and release the slabs (and segments)
/// left empty, kept empty slabs included.
///
/// # Safety
/// * The caller holds `heap` (its own heap, or one it claimed), with
///   `releasing` set.
unsafe fn release_empty(heap: *mut Heap) {
    // SAFETY: caller contract: the heap and its segments are ours; each run
    // start of a segment is the first slice of a live slab of the heap.
    unsafe {
        debug_assert!((*heap).releasing);
        process_delayed(heap);
        let mut seg = (*heap).segments.first();
        while !seg.is_null() {
            let next_seg = next_in_set(seg);
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
                    if release_slab(heap, slab) {
                        break; // the segment left the heap
                    }
                }
            }
            seg = next_seg;
        }
    }
}

/// Sweep abandoned heaps: release the slabs remote frees have emptied since
/// their threads exited. Throttled to once per 10 ms; called before a heap
/// takes a new segment.
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
    let mut h = registry_first();
    while !h.is_null() {
        // SAFETY: registry heaps are mapped forever; we touch one only after
        // claiming it (Acquire), and hand it back with a Release store.
        unsafe {
            if try_claim(h) {
                (*h).releasing = true;
                release_empty(h);
                (*h).segments.decommit_free();
                (*h).state.abandon();
            }
            h = (*h).all_next;
        }
    }
}

/// Release the calling thread's free memory: its pending frees are taken,
/// its empty slabs (kept ones included) go back to its segments, free
/// slices are decommitted and every spare segment is given back; then
/// abandoned heaps are swept at once.
pub(crate) fn release_current_thread() {
    let heap = current_heap();
    if !heap.is_null() {
        // SAFETY: our own heap.
        unsafe {
            (*heap).releasing = true;
            release_empty(heap);
            (*heap).segments.decommit_free();
            (*heap).releasing = false;
            (*heap).segments.keep_spares(0);
        }
    }
    LAST_SWEEP_MS.store(0, Ordering::Relaxed);
    sweep_abandoned();
}
