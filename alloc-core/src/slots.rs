//! The lock-free parts of the leak investigator's sample table
//! (`profile.rs`), small enough to model-check with loom:
//!
//! * [`SlotStack`]: the free record slots, a Treiber stack of 1-based
//!   indices with a 32-bit tag in the head word against ABA (a slot popped,
//!   pushed and popped again between another thread's read and its CAS).
//! * [`Seq`]: a record's sequence lock. The one thread that holds a slot
//!   writes it between `write_begin` and `write_end`; readers on any thread
//!   copy the record and keep the copy only if the sequence was even and
//!   unchanged. Readers never block the writer, and the writer (an
//!   allocating thread) never waits for a reader.

use crate::sync::{fence, AtomicU32, AtomicU64, Ordering};

/// A stack of free slots `1..=n`. The successor of each free slot (0 for
/// none) is kept where the caller says: `next(slot)` (in the sample table,
/// a compact array beside the records, so freeing a slot never touches its
/// record).
pub(crate) struct SlotStack {
    /// Low 32 bits: the top slot (0: empty); high 32 bits: a tag bumped by
    /// every change.
    head: AtomicU64,
}

impl SlotStack {
    /// An empty stack (the table itself lives in zeroed mapped memory,
    /// which is an empty stack too).
    #[cfg(any(test, loom))]
    pub(crate) fn new() -> Self {
        SlotStack {
            head: AtomicU64::new(0),
        }
    }

    /// Push slot `i` (1-based, not on the stack, held by the caller).
    pub(crate) fn push<'a>(&self, next: impl Fn(u32) -> &'a AtomicU32, i: u32) {
        debug_assert!(i >= 1);
        let mut h = self.head.load(Ordering::Relaxed);
        loop {
            next(i).store(h as u32, Ordering::Relaxed);
            let new = ((h >> 32).wrapping_add(1) << 32) | u64::from(i);
            // Release: the slot's `next` entry (and whatever the pusher
            // wrote to the slot's record) is visible to whoever pops it.
            match self
                .head
                .compare_exchange_weak(h, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(now) => h = now,
            }
        }
    }

    /// Pop a slot, or `None` when every slot is held.
    pub(crate) fn pop<'a>(&self, next: impl Fn(u32) -> &'a AtomicU32) -> Option<u32> {
        let mut h = self.head.load(Ordering::Acquire);
        loop {
            let top = h as u32;
            if top == 0 {
                return None;
            }
            // May read the entry of a slot another thread popped meanwhile:
            // the tag then makes the CAS fail.
            let after = next(top).load(Ordering::Relaxed);
            let new = ((h >> 32).wrapping_add(1) << 32) | u64::from(after);
            match self
                .head
                .compare_exchange_weak(h, new, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => return Some(top),
                Err(now) => h = now,
            }
        }
    }
}

/// A record's sequence lock: odd while its one writer changes it.
pub(crate) struct Seq(AtomicU32);

impl Seq {
    /// A sequence lock of a record never written (zeroed memory is one too).
    #[cfg(any(test, loom))]
    pub(crate) fn new() -> Self {
        Seq(AtomicU32::new(0))
    }

    /// The writer starts changing the record (only the slot's holder
    /// writes, so no other writer races).
    pub(crate) fn write_begin(&self) {
        let s = self.0.load(Ordering::Relaxed);
        self.0.store(s.wrapping_add(1), Ordering::Relaxed);
        // The odd value is ordered before the record's new contents.
        fence(Ordering::Release);
    }

    /// The writer is done: readers may keep what they copy.
    pub(crate) fn write_end(&self) {
        let s = self.0.load(Ordering::Relaxed);
        self.0.store(s.wrapping_add(1), Ordering::Release);
    }

    /// A reader starts copying: `None` while a write is in progress.
    pub(crate) fn read_begin(&self) -> Option<u32> {
        let s = self.0.load(Ordering::Acquire);
        (s & 1 == 0).then_some(s)
    }

    /// A reader is done copying: true if no write overlapped the copy.
    pub(crate) fn read_valid(&self, s: u32) -> bool {
        // The copy's loads are ordered before this second read.
        fence(Ordering::Acquire);
        self.0.load(Ordering::Relaxed) == s
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn stack_hands_out_each_slot_once() {
        let links: Vec<AtomicU32> = (0..4).map(|_| AtomicU32::new(0)).collect();
        let next = |i: u32| &links[i as usize - 1];
        let s = SlotStack::new();
        for i in 1..=4 {
            s.push(next, i);
        }
        let mut got: Vec<u32> = core::iter::from_fn(|| s.pop(next)).collect();
        got.sort_unstable();
        assert_eq!(got, [1, 2, 3, 4]);
        assert_eq!(s.pop(next), None);
        s.push(next, 3);
        assert_eq!(s.pop(next), Some(3));
    }

    #[test]
    fn seq_rejects_a_copy_overlapping_a_write() {
        let q = Seq::new();
        let s = q.read_begin().unwrap();
        assert!(q.read_valid(s));
        q.write_begin();
        assert_eq!(q.read_begin(), None);
        assert!(!q.read_valid(s));
        q.write_end();
        let t = q.read_begin().unwrap();
        assert_ne!(s, t);
        assert!(q.read_valid(t));
    }
}
