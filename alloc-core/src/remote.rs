//! Cross-thread frees: the lock-free lists other threads push onto.
//!
//! * [`ThreadFree`]: one word per slab, an atomic stack of blocks freed by
//!   threads that do not own the slab, plus a two-bit *delayed* state in the
//!   low bits. The owner takes the whole stack with one CAS.
//! * [`DelayedList`]: one per heap; when a slab is *full* (not in any of the
//!   heap's queues), the first remote free of it pushes its block here
//!   instead, so that the owner learns the slab has space again without
//!   scanning full slabs.
//!
//! The delayed protocol (after mimalloc's `delayed free`):
//!
//! ```text
//! owner marks slab full:     NO_DELAYED  -> USE_DELAYED       (only if the stack is empty)
//! first remote free:         USE_DELAYED -> DELAYED_FREEING   (claims the hand-off)
//!                            push block on heap's DelayedList
//!                            DELAYED_FREEING -> NO_DELAYED
//! owner un-fulls / retires:  waits while DELAYED_FREEING, then NO_DELAYED
//! ```
//!
//! A slab is only released by its owner when it has no block outstanding;
//! the wait on `DELAYED_FREEING` covers the one remote thread that may still
//! be touching the slab's word after its block was handed over.

use crate::sync::{AtomicUsize, Backoff, Ordering};
use core::ptr;

/// A free block: its first word links it into a list (encoded against a
/// per-process key in hardened mode, `hardening.rs`).
#[repr(C)]
pub(crate) struct Block {
    link: usize,
}

impl Block {
    /// A block whose link is null (loom models build lists of these).
    #[cfg(loom)]
    pub(crate) fn unlinked() -> Block {
        Block {
            link: crate::hardening::encode(0, 0),
        }
    }

    /// The block after `b` in its list.
    ///
    /// # Safety
    /// * `b` is a free block in a list the caller may read.
    #[inline(always)]
    pub(crate) unsafe fn next(b: *mut Block) -> *mut Block {
        // SAFETY: caller contract.
        crate::hardening::decode(unsafe { (*b).link }, b as usize) as *mut Block
    }

    /// Link `b` to `next`.
    ///
    /// # Safety
    /// * `b` is a free block the caller owns (not yet published).
    #[inline(always)]
    pub(crate) unsafe fn set_next(b: *mut Block, next: *mut Block) {
        // SAFETY: caller contract.
        unsafe { (*b).link = crate::hardening::encode(next as usize, b as usize) };
    }

    /// The block after `b`, which is being handed out: in hardened mode its
    /// link word is cleared, so a block freed before it was written is not
    /// taken for a free one.
    ///
    /// # Safety
    /// * `b` is the head of a list the caller owns and is taking off.
    #[inline(always)]
    pub(crate) unsafe fn unlink(b: *mut Block) -> *mut Block {
        // SAFETY: caller contract.
        unsafe {
            let next = Block::next(b);
            if crate::hardening::on() {
                (*b).link = 0;
            }
            next
        }
    }
}

const STATE_MASK: usize = 3;
/// The stack word's top 16 bits count the blocks on it (user addresses
/// fit 48 bits; a slab has at most 8 192 blocks), so the owner takes them
/// without walking the list to count them: the walk was one cache miss per
/// block, each freed on another core.
const COUNT_SHIFT: u32 = 48;
/// The head pointer's bits of the stack word.
const PTR_MASK: usize = ((1 << COUNT_SHIFT) - 1) & !STATE_MASK;
const _: () = assert!(
    usize::BITS == 64,
    "the stack word packs a count above 48 address bits"
);
/// Remote frees push onto the slab's own stack.
pub(crate) const NO_DELAYED: usize = 0;
/// The slab is full: the next remote free notifies the owner heap.
pub(crate) const USE_DELAYED: usize = 1;
/// A remote thread is handing a block to the owner heap right now.
pub(crate) const DELAYED_FREEING: usize = 2;

/// What a remote push asks of its caller.
#[derive(PartialEq, Eq, Debug)]
pub(crate) enum Pushed {
    /// The block is on the slab's stack; nothing more to do.
    Done,
    /// The caller claimed the hand-off: push the block on the owner heap's
    /// [`DelayedList`], then call [`ThreadFree::finish_delayed`].
    Delayed,
}

/// The per-slab remote-free stack and delayed state.
pub(crate) struct ThreadFree(AtomicUsize);

impl ThreadFree {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        ThreadFree(AtomicUsize::new(0))
    }

    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        ThreadFree(AtomicUsize::new(0))
    }

    /// Reset to empty, `NO_DELAYED` (the slab is being (re)initialised by its
    /// owner and no block of it is outstanding).
    pub(crate) fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }

    /// Push `block` (freed by a thread that does not own the slab).
    ///
    /// # Safety
    /// * `block` is a block of this slab, outstanding, and given up by the
    ///   caller: nobody else reads or writes it until the owner takes it.
    #[inline]
    pub(crate) unsafe fn push(&self, block: *mut Block) -> Pushed {
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            let state = cur & STATE_MASK;
            let (new, claimed) = if state == USE_DELAYED {
                ((cur & !STATE_MASK) | DELAYED_FREEING, true)
            } else {
                // SAFETY: the caller owns `block` until the CAS publishes it.
                unsafe { Block::set_next(block, (cur & PTR_MASK) as *mut Block) };
                debug_assert_eq!(block as usize & !PTR_MASK, 0, "block above 48 bits");
                let count = (cur >> COUNT_SHIFT) + 1;
                (block as usize | state | (count << COUNT_SHIFT), false)
            };
            match self
                .0
                .compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    return if claimed {
                        Pushed::Delayed
                    } else {
                        Pushed::Done
                    }
                }
                Err(now) => cur = now,
            }
        }
    }

    /// End a claimed hand-off: `DELAYED_FREEING -> NO_DELAYED`, keeping the
    /// stack. Called by the remote thread after its block is on the heap's
    /// delayed list.
    pub(crate) fn finish_delayed(&self) {
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            debug_assert_eq!(cur & STATE_MASK, DELAYED_FREEING, "finish without claim");
            let new = (cur & !STATE_MASK) | NO_DELAYED;
            match self
                .0
                .compare_exchange_weak(cur, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(now) => cur = now,
            }
        }
    }

    /// Owner: whether any block is waiting on the stack (a hint).
    #[inline]
    pub(crate) fn has_blocks(&self) -> bool {
        self.0.load(Ordering::Relaxed) & PTR_MASK != 0
    }

    /// Owner: take every block on the stack, keeping the state bits, with
    /// how many there are.
    pub(crate) fn take_counted(&self) -> (*mut Block, u32) {
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            if cur & PTR_MASK == 0 {
                return (ptr::null_mut(), 0);
            }
            match self.0.compare_exchange_weak(
                cur,
                cur & STATE_MASK,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return ((cur & PTR_MASK) as *mut Block, (cur >> COUNT_SHIFT) as u32),
                Err(now) => cur = now,
            }
        }
    }

    /// Owner: mark the slab full (`USE_DELAYED`) if no block is waiting.
    /// Returns null when marked; otherwise the waiting blocks, taken, and the
    /// slab is not full.
    pub(crate) fn try_mark_full(&self) -> (*mut Block, u32) {
        loop {
            let waiting = self.take_counted();
            if !waiting.0.is_null() {
                return waiting;
            }
            // Empty now: one CAS from empty/NO_DELAYED marks it full, or a
            // remote push got in first and we take that instead. (A slab in
            // its heap's queue is always NO_DELAYED: un-fulling waits out a
            // hand-off and resets the state.)
            debug_assert_ne!(self.state(), USE_DELAYED, "marking full twice");
            if self
                .0
                .compare_exchange(NO_DELAYED, USE_DELAYED, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return (ptr::null_mut(), 0);
            }
        }
    }

    /// Owner: leave the full state (the slab has space again or is being
    /// released): wait out a remote hand-off in progress, then `NO_DELAYED`.
    pub(crate) fn clear_delayed(&self) {
        let backoff = Backoff::new();
        let mut cur = self.0.load(Ordering::Acquire);
        loop {
            match cur & STATE_MASK {
                NO_DELAYED => return,
                DELAYED_FREEING => {
                    // The remote thread is between its push on the heap's
                    // delayed list and its `finish_delayed`: spin a little,
                    // then yield in case it was preempted there.
                    backoff.snooze();
                    cur = self.0.load(Ordering::Acquire);
                }
                _ => match self.0.compare_exchange_weak(
                    cur,
                    cur & !STATE_MASK,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => return,
                    Err(now) => cur = now,
                },
            }
        }
    }

    /// The raw state bits (tests and debug checks).
    pub(crate) fn state(&self) -> usize {
        self.0.load(Ordering::Acquire) & STATE_MASK
    }
}

/// A heap's list of blocks handed over by remote frees of its full slabs:
/// many pushers, the owner takes all. Push-only plus take-all has no ABA.
pub(crate) struct DelayedList(AtomicUsize);

impl DelayedList {
    /// An empty list (heaps get theirs zeroed from a fresh mapping).
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        DelayedList(AtomicUsize::new(0))
    }

    /// # Safety
    /// * `block` is owned by the caller and handed over with this call.
    pub(crate) unsafe fn push(&self, block: *mut Block) {
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            // SAFETY: the caller owns `block` until the CAS publishes it.
            unsafe { Block::set_next(block, cur as *mut Block) };
            match self.0.compare_exchange_weak(
                cur,
                block as usize,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(now) => cur = now,
            }
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.load(Ordering::Relaxed) == 0
    }

    /// Owner: take every block.
    pub(crate) fn take_all(&self) -> *mut Block {
        if self.is_empty() {
            return ptr::null_mut();
        }
        self.0.swap(0, Ordering::Acquire) as *mut Block
    }
}
