//! The per-class slab queues of a heap: doubly linked through the slabs'
//! `next`/`prev`, head in `Heap::current` (the sentinel when empty), tail in
//! `Heap::tail`. Owner-only, so plain memory. Slabs that may have free
//! blocks are in their class's queue; full slabs are in none (a remote free
//! brings them back, see `free.rs`); empty slabs kept for reuse wait at the
//! back.

use super::{empty_slab, Heap};
use crate::slab::Slab;
use core::ptr;

/// Put `slab` at the head of its class queue (it becomes current).
///
/// # Safety
/// * The caller holds `heap`; `slab` is a slab of `heap` in no queue.
pub(super) unsafe fn push_front(heap: *mut Heap, slab: *mut Slab) {
    // SAFETY: caller contract: owner-only links of slabs of a held heap.
    unsafe {
        let c = (*slab).class as usize;
        let head = (*heap).current[c];
        (*slab).prev = ptr::null_mut();
        if head == empty_slab() {
            (*slab).next = ptr::null_mut();
            (*heap).tail[c] = slab;
        } else {
            (*slab).next = head;
            (*head).prev = slab;
        }
        (*heap).current[c] = slab;
    }
}

/// Put `slab` at the back of its class queue.
///
/// # Safety
/// * The caller holds `heap`; `slab` is a slab of `heap` in no queue.
pub(super) unsafe fn push_back(heap: *mut Heap, slab: *mut Slab) {
    // SAFETY: caller contract: owner-only links of slabs of a held heap;
    // a non-empty queue has a tail slab.
    unsafe {
        let c = (*slab).class as usize;
        if (*heap).current[c] == empty_slab() {
            push_front(heap, slab);
            return;
        }
        let last = (*heap).tail[c];
        debug_assert!((*last).next.is_null(), "tail is last");
        (*last).next = slab;
        (*slab).prev = last;
        (*slab).next = ptr::null_mut();
        (*heap).tail[c] = slab;
    }
}

/// Take `slab` out of its class queue.
///
/// # Safety
/// * The caller holds `heap`; `slab` is in its class queue of `heap`.
pub(super) unsafe fn remove(heap: *mut Heap, slab: *mut Slab) {
    // SAFETY: caller contract: owner-only links; the neighbours are slabs
    // of the same queue.
    unsafe {
        let c = (*slab).class as usize;
        let (prev, next) = ((*slab).prev, (*slab).next);
        if prev.is_null() {
            debug_assert_eq!((*heap).current[c], slab, "slab not at queue head");
            (*heap).current[c] = if next.is_null() { empty_slab() } else { next };
        } else {
            (*prev).next = next;
        }
        if next.is_null() {
            debug_assert_eq!((*heap).tail[c], slab, "slab not at queue tail");
            (*heap).tail[c] = prev;
        } else {
            (*next).prev = prev;
        }
        (*slab).prev = ptr::null_mut();
        (*slab).next = ptr::null_mut();
    }
}

/// Make `slab`, already in its class queue, the current slab.
///
/// # Safety
/// * The caller holds `heap`; `slab` is in its class queue of `heap`.
pub(super) unsafe fn move_front(heap: *mut Heap, slab: *mut Slab) {
    // SAFETY: caller contract, forwarded to `remove` and `push_front`.
    unsafe {
        if (*heap).current[(*slab).class as usize] != slab {
            remove(heap, slab);
            push_front(heap, slab);
        }
    }
}

/// Whether class `c`'s queue holds fewer than `limit` empty slabs besides
/// `except` (a walk that stops at the limit).
///
/// # Safety
/// * The caller holds `heap`.
pub(super) unsafe fn empty_slabs_below(
    heap: *mut Heap,
    c: usize,
    except: *mut Slab,
    limit: usize,
) -> bool {
    // SAFETY: caller contract: the queue's slabs are live slabs of a held
    // heap.
    unsafe {
        let mut n = 0;
        let mut s = (*heap).current[c];
        while !s.is_null() && s != empty_slab() {
            if s != except && (*s).used == 0 {
                n += 1;
                if n >= limit {
                    return false;
                }
            }
            s = (*s).next;
        }
        true
    }
}
