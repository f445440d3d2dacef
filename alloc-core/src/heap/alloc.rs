//! Allocation from a thread's heap.
//!
//! * [`alloc_fast`]: the fast path. One TLS load, the current slab's
//!   free-list pop, a counter add. No lock, no atomic read-modify-write, no
//!   syscall.
//! * `alloc_slow`: everything else, in order: give the thread a heap if it
//!   has none, take frees other threads handed over, find a slab of the
//!   class with free blocks, or make a new slab (sweeping abandoned heaps
//!   before a new segment is taken from the OS).

use super::exit::{heap_acquire, sweep_abandoned};
use super::free::process_delayed;
use super::{count_slab, current_heap, empty_slab, owner_tag, queue, Heap};
use crate::config::{self, Config};
use crate::slab::{self, Slab, FLAG_FULL};
use core::ptr;

/// Pop a block of class `c` from `heap`'s current slab, or null.
#[inline(always)]
fn pop_current(heap: *mut Heap, c: usize, req: usize) -> *mut u8 {
    if heap.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: `heap` is this thread's heap: only this thread touches its
    // queues. `current[c]` is a live slab of the heap or the sentinel, whose
    // `free` is null. A non-null `free` is a block of that slab.
    unsafe {
        let slab = *(*heap).current.get_unchecked(c);
        let b = (*slab).free;
        if b.is_null() {
            return ptr::null_mut();
        }
        (*slab).free = (*b).next;
        (*slab).used += 1;
        (*heap).counters.get_unchecked(c).on_alloc(req);
        b.cast()
    }
}

/// Allocate a block of class `c` for a request of `req` bytes: the fast
/// path, falling back to `alloc_slow`.
#[inline(always)]
pub(crate) fn alloc_fast(c: usize, req: usize, cfg: &Config) -> *mut u8 {
    let heap = current_heap();
    let b = pop_current(heap, c, req);
    if !b.is_null() {
        return b;
    }
    alloc_slow(heap, c, req, cfg).0
}

/// As [`alloc_fast`], also saying whether the block is known to be zero
/// (carved fresh from never-touched memory), so `alloc_zeroed` can skip the
/// memset. It does not zero anything itself.
#[inline]
pub(crate) fn alloc_with_zero_hint(c: usize, req: usize, cfg: &Config) -> (*mut u8, bool) {
    let heap = current_heap();
    let b = pop_current(heap, c, req);
    if !b.is_null() {
        return (b, false);
    }
    alloc_slow(heap, c, req, cfg)
}

/// The slow path: take pending frees, find a slab with space, or make one.
/// Returns the block (null when out of memory) and whether it is known
/// zero.
#[cold]
#[inline(never)]
fn alloc_slow(mut heap: *mut Heap, c: usize, req: usize, cfg: &Config) -> (*mut u8, bool) {
    if heap.is_null() {
        config::offer(cfg);
        heap = heap_acquire();
        if heap.is_null() {
            return (ptr::null_mut(), false);
        }
    }
    // SAFETY: `heap` is this thread's heap; every slab reached from its
    // queues is a live slab it owns.
    unsafe {
        process_delayed(heap);
        let mut slab = (*heap).current[c];
        while !slab.is_null() && slab != empty_slab() {
            let next = (*slab).next;
            if slab::collect_frees(slab) {
                return (take_from(heap, slab, c, req), false);
            }
            if (*slab).reserved < (*slab).capacity {
                return take_fresh(heap, slab, c, req);
            }
            // No space: mark full (unless remote frees raced in) and drop it
            // from the queue; a later free brings it back.
            let raced = (*slab).thread_free.try_mark_full();
            if !raced.is_null() {
                slab::append_remote(&mut *slab, raced);
                return (take_from(heap, slab, c, req), false);
            }
            queue::remove(heap, slab);
            (*slab).owner_flags |= FLAG_FULL;
            slab = next;
        }
        let slab = new_slab(heap, c);
        if slab.is_null() {
            return (ptr::null_mut(), false);
        }
        queue::push_front(heap, slab);
        take_fresh(heap, slab, c, req)
    }
}

/// A new slab of class `c` for `heap`: from the free slices of its
/// segments, else (after sweeping abandoned heaps, which may give segments
/// back to the cache) from a new segment. Null when out of memory.
///
/// # Safety
/// * `heap` is the calling thread's heap.
unsafe fn new_slab(heap: *mut Heap, c: usize) -> *mut Slab {
    // SAFETY: caller contract: the heap, and so its segment set, is ours.
    unsafe {
        let owner = owner_tag(heap);
        let mut slab = slab::slab_new(&mut (*heap).segments, owner, c);
        if slab.is_null() {
            sweep_abandoned();
            if !(*heap).segments.grow() {
                return ptr::null_mut();
            }
            slab = slab::slab_new(&mut (*heap).segments, owner, c);
        }
        if !slab.is_null() {
            count_slab(heap, c, 1);
        }
        slab
    }
}

/// Pop a block from `slab.free` and make `slab` current.
///
/// # Safety
/// * `slab` is in class `c`'s queue of `heap`, the calling thread's heap,
///   and its `free` list is not empty.
unsafe fn take_from(heap: *mut Heap, slab: *mut Slab, c: usize, req: usize) -> *mut u8 {
    // SAFETY: caller contract: owner-only fields of our slab; `free` holds
    // a block.
    unsafe {
        queue::move_front(heap, slab);
        (*slab).idle_since = 0;
        let b = (*slab).free;
        (*slab).free = (*b).next;
        (*slab).used += 1;
        (*heap).counters[c].on_alloc(req);
        b.cast()
    }
}

/// Carve from `slab` and make it current. Returns the block and whether it
/// is known zero.
///
/// # Safety
/// * `slab` is in class `c`'s queue of `heap`, the calling thread's heap,
///   with `reserved < capacity`.
unsafe fn take_fresh(heap: *mut Heap, slab: *mut Slab, c: usize, req: usize) -> (*mut u8, bool) {
    // SAFETY: caller contract: owner-only fields of our slab, with blocks
    // left to carve (small classes carve onto `free`, which is then not
    // empty).
    unsafe {
        queue::move_front(heap, slab);
        (*slab).idle_since = 0;
        let fresh = (*slab).fresh;
        let direct = slab::extend(slab);
        if !direct.is_null() {
            (*slab).used += 1;
            (*heap).counters[c].on_alloc(req);
            return (direct, fresh);
        }
        (take_from(heap, slab, c, req), false)
    }
}
