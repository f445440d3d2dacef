//! Frees.
//!
//! * [`free`]: the owner's fast path. The block goes on its slab's
//!   `local_free`; one branch sends the rare cases (the slab became empty,
//!   or was full) to `free_local_slow`.
//! * `free_remote`: a free by another thread (or of a large block): onto the
//!   slab's atomic `thread_free` stack, or handed to the owner heap's
//!   delayed list when the slab is full.
//! * [`process_delayed`]: the owner takes the blocks handed to it.
//! * `slab_emptied`: an emptied slab is kept for reuse (a few per class) or
//!   its slices go back to the heap's segments.
//! * `free_pages`: a page run (`pages.rs`) goes back to its page segment.
//!   The owner's frees of page runs reach it through the fast path's slow
//!   branch (the page descriptor's `owner_flags` is never 0); other
//!   threads' frees go to the owner's delayed list.

use super::{count_run_freed, count_slab, fast_heap, owner_tag, queue, real_heap, unkeep, Heap};
use crate::counters::{bump, GLOBAL};
use crate::remote::{Block, Pushed};
use crate::segment::Reclaimed;
use crate::size_class::is_pooled;
use crate::slab::{self, Slab, FLAG_FULL, FLAG_PAGES, KIND_CLASS, KIND_LARGE, KIND_PAGES};
use crate::sync::Ordering;
use crate::{large, os, segment, valgrind};
use core::ptr;

/// Empty slabs a small class queue keeps before releasing more.
const KEEP_EMPTY_SLABS: usize = 2;

/// Free `p`, a block start (or any address inside a large block's first
/// slice) handed out by this allocator. `req` is the size the caller asked
/// for (stats only).
///
/// # Safety
/// * `p` is live, was allocated by this allocator, and is a block start for
///   class blocks; the caller gives it up.
#[inline(always)]
pub(crate) unsafe fn free(p: *mut u8, req: usize) {
    // SAFETY: caller contract: `p` is live, so its segment header is mapped.
    unsafe { free_in(slab::slab_of(p), p, req) }
}

/// [`free`] for a caller that has found `p`'s descriptor already (the C
/// free reads it to learn the block's size).
///
/// # Safety
/// * As [`free`]; `slab` is `slab::slab_of(p)`.
#[inline(always)]
pub(crate) unsafe fn free_in(slab: *mut Slab, p: *mut u8, req: usize) {
    // This thread's heap, or a stand-in that owns no slab.
    let heap = fast_heap();
    // SAFETY: a slab whose owner is our heap is owned by this thread, so its
    // owner-only fields are ours to write; `p` is a block of it, given up by
    // the caller.
    unsafe {
        if (*slab).owner == owner_tag(heap) {
            let b = p.cast::<Block>();
            if cfg!(debug_assertions) && !cfg!(feature = "valgrind") {
                debug_fill_freed(p, (*slab).block_size as usize);
            }
            valgrind::link_word(p);
            Block::set_next(b, (*slab).local_free);
            (*slab).local_free = b;
            // Counted before the decrement, so the emptiness test can use
            // the decrement's flags (the counter stores might alias `used`
            // for the compiler).
            (*heap)
                .counters
                .on_free_unchecked((*slab).class as usize, req);
            (*slab).used -= 1;
            if (*slab).used == 0 || (*slab).owner_flags != 0 {
                free_local_slow(heap, slab, req);
            }
        } else {
            free_remote(real_heap(heap), slab, p, req);
        }
    }
}

/// Fill a freed block with a pattern in debug builds (after the link word),
/// so use-after-free reads garbage that tests notice.
#[cold]
fn debug_fill_freed(p: *mut u8, size: usize) {
    let n = size.min(4096);
    if n > 8 {
        // SAFETY: the block is `size` bytes and being freed by its owner:
        // nobody else reads it.
        unsafe { ptr::write_bytes(p.add(8), 0xDF, n - 8) };
    }
}

/// The owner freed into a slab that was full (bring it back to its queue)
/// or is now empty, or freed a page run of `req` bytes (the block the fast
/// path just pushed on the page descriptor's `local_free`).
///
/// # Safety
/// * The caller holds `heap`, which owns `slab`.
#[cold]
#[inline(never)]
unsafe fn free_local_slow(heap: *mut Heap, slab: *mut Slab, req: usize) {
    // SAFETY: caller contract: owner-only fields of a slab of a held heap.
    unsafe {
        if (*slab).owner_flags & FLAG_PAGES != 0 {
            // Undo the fast path's push, `used` and count (it counted under
            // the descriptor's class), then free the run.
            let b = (*slab).local_free;
            (*slab).local_free = Block::next(b);
            (*slab).used += 1;
            (*heap).counters.undo_free((*slab).class as usize, req);
            count_run_freed(heap, b.cast(), req);
            free_pages(heap, b.cast());
            return;
        }
        if (*slab).owner_flags & FLAG_FULL != 0 {
            (*slab).owner_flags &= !FLAG_FULL;
            (*slab).thread_free.clear_delayed();
            queue::push_back(heap, slab);
        }
        if (*slab).used == 0 {
            slab_emptied(heap, slab);
        }
    }
}

/// A slab has no block outstanding. Pooled slabs (up to 2 MiB) go back
/// to the heap's segments at once, where their slices age as idle memory
/// that any class can reuse and that the reclaimer can see. Small classes
/// keep a few empty slabs at the back of their queue (so churn at the
/// boundary neither re-carves nor faults pages in); the current slab stays
/// current. The rest go back too.
///
/// # Safety
/// * The caller holds `heap`; `slab` is an empty slab of it in its class
///   queue.
unsafe fn slab_emptied(heap: *mut Heap, slab: *mut Slab) {
    // SAFETY: caller contract.
    unsafe {
        let c = (*slab).class as usize;
        if !is_pooled(c) && !(*heap).releasing {
            // A lone alloc/free pair must not take this path's walk and
            // clock read every time.
            if (*heap).current[c] == slab {
                return;
            }
            if queue::empty_slabs_below(heap, c, slab, KEEP_EMPTY_SLABS) {
                (*slab).idle_since = os::now_ms();
                bump(&(*heap).slabs_kept[c], 1);
                if (*heap).kept_since[c].load(Ordering::Relaxed) == 0 {
                    (*heap).kept_since[c].store((*slab).idle_since, Ordering::Relaxed);
                }
                queue::remove(heap, slab);
                queue::push_back(heap, slab);
                return;
            }
        }
        queue::remove(heap, slab);
        release_slab(heap, slab, true);
    }
}

/// Give an empty slab's slices back to `heap`'s segments, idle since the
/// slab was kept empty (or now, for a slab released as it empties); with
/// `policy`, the set then gives idle memory back as its policy says
/// (`SegmentSet::after_return`).
///
/// # Safety
/// * The caller holds `heap`; `slab` is an empty slab of it in no queue.
pub(super) unsafe fn release_slab(heap: *mut Heap, slab: *mut Slab, policy: bool) -> Reclaimed {
    // SAFETY: caller contract; waiting out a hand-off in progress makes the
    // slab's remote-free word quiet before its slices are reused. The set
    // is changed only under its lock.
    unsafe {
        let since = match (*slab).idle_since {
            0 => os::now_ms(),
            kept => kept,
        };
        unkeep(heap, slab);
        (*slab).thread_free.clear_delayed();
        count_slab(heap, (*slab).class as usize, u64::MAX);
        bump(&(*heap).slabs_released[(*slab).class as usize], 1);
        (*heap).set_lock.lock();
        slab::slab_release(&mut (*heap).segments, slab, since);
        let done = if policy {
            (*heap).segments.after_return()
        } else {
            Reclaimed::default()
        };
        (*heap).set_lock.unlock();
        done
    }
}

/// Give the page run at `p` back to `heap`'s page segments, and apply the
/// give-back policy.
///
/// # Safety
/// * The caller holds `heap`; `p` starts a page run of one of its page
///   segments that nothing uses any more.
unsafe fn free_pages(heap: *mut Heap, p: *mut u8) {
    // SAFETY: caller contract; the set is changed only under its lock.
    unsafe {
        (*heap).set_lock.lock();
        (*heap).segments.return_pages(p, os::now_ms());
        (*heap).segments.after_return();
        (*heap).set_lock.unlock();
    }
}

/// A free from a thread that does not own the block's slab, or of a large
/// block.
///
/// # Safety
/// * As for [`free`]; `heap` is the calling thread's heap (or null) and
///   `slab` is `p`'s descriptor.
#[cold]
#[inline(never)]
unsafe fn free_remote(heap: *mut Heap, slab: *mut Slab, p: *mut u8, req: usize) {
    // SAFETY: `kind`, `class` and `owner` are constant while a block of the
    // slab is live; a large block's mapping is the caller's to give up.
    unsafe {
        let kind = (*slab).kind;
        if kind == KIND_LARGE {
            large::free(segment::segment_of(slab.cast()));
            return;
        }
        if kind == KIND_PAGES {
            count_run_freed(heap, p, req);
        } else {
            let c = (*slab).class as usize;
            if heap.is_null() {
                GLOBAL.frees_without_heap[c].on_free_shared(req);
            } else {
                (*heap).counters.on_free(c, req);
            }
        }
        let b = p.cast::<Block>();
        valgrind::link_word(p);
        if kind == KIND_PAGES {
            // The owner frees it at its next page allocation or slow path.
            (*(*slab).owner.cast::<Heap>()).delayed.push(b);
            return;
        }
        debug_assert_eq!(
            kind, KIND_CLASS,
            "free of a pointer this allocator does not own"
        );
        if (*slab).thread_free.push(b) == Pushed::Delayed {
            // The slab is full: hand the block to its heap, which learns the
            // slab has space again. Heaps are never unmapped, so the owner
            // pointer stays valid even if its thread has exited.
            let owner = (*slab).owner.cast::<Heap>();
            (*owner).delayed.push(b);
            (*slab).thread_free.finish_delayed();
        }
    }
}

/// Free every block remote threads handed to `heap`'s full slabs.
///
/// # Safety
/// * The caller holds `heap`.
pub(super) unsafe fn process_delayed(heap: *mut Heap) {
    // SAFETY: caller contract.
    if unsafe { process_delayed_keep_lock(heap) } {
        // SAFETY: taken by the call above, for us to release.
        unsafe { (*heap).set_lock.unlock() };
    }
}

/// As [`process_delayed`], but when it gave page runs back it returns
/// true with the set's lock still held (the caller releases it), so a
/// caller about to take pages need not take the lock again.
///
/// # Safety
/// * The caller holds `heap`.
pub(super) unsafe fn process_delayed_keep_lock(heap: *mut Heap) -> bool {
    // SAFETY: caller contract; the taken blocks are blocks of the heap's
    // slabs, given up by their freeing threads, now ours.
    unsafe {
        let mut b = (*heap).delayed.take_all();
        // Page runs go back to the segments under one hold of the set's
        // lock, idle from one reading of the clock, and the give-back
        // policy runs once for them all (not per run: a consumer thread
        // hands back runs by the hundred).
        let mut held: Option<u64> = None;
        while !b.is_null() {
            let next = Block::next(b);
            let slab = slab::slab_of(b.cast());
            debug_assert_eq!((*slab).owner, owner_tag(heap));
            if (*slab).kind == KIND_PAGES {
                let now = *held.get_or_insert_with(|| {
                    (*heap).set_lock.lock();
                    os::now_ms()
                });
                (*heap).segments.return_pages(b.cast(), now);
                b = next;
                continue;
            }
            // `free_local_slow` may take the set's lock itself.
            if held.take().is_some() {
                (*heap).segments.after_return();
                (*heap).set_lock.unlock();
            }
            Block::set_next(b, (*slab).local_free);
            (*slab).local_free = b;
            (*slab).used -= 1;
            if (*slab).used == 0 || (*slab).owner_flags != 0 {
                free_local_slow(heap, slab, 0);
            }
            b = next;
        }
        if held.is_some() {
            (*heap).segments.after_return();
        }
        held.is_some()
    }
}
