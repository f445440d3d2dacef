//! Slabs: a run of slices carved into blocks of one class.
//!
//! A slab has three free lists (mimalloc's sharding):
//! * `free`: allocation pops here (owner only);
//! * `local_free`: the owner's frees push here (owner only);
//! * `thread_free`: other threads' frees ([`ThreadFree`], atomic).
//!
//! When `free` runs dry the owner swaps in `local_free`, then takes all of
//! `thread_free` at once; so the fast paths are a pop and a push with one
//! branch each. Blocks are carved lazily (`reserved` grows) so a new slab
//! touches only the pages it hands out.

use crate::heap::Heap;
use crate::remote::{Block, ThreadFree};
use core::ptr;

/// A slab of class blocks.
pub(crate) const KIND_CLASS: u8 = 1;
/// The descriptor of a directly mapped large block.
pub(crate) const KIND_LARGE: u8 = 2;

/// `owner_flags`: the slab is full and in no queue of its heap.
pub(crate) const FLAG_FULL: u32 = 1;

/// The owner a large block's descriptor names: never a real heap, so a large
/// free always takes the non-local path.
pub(crate) const LARGE_OWNER: *mut Heap = ptr::without_provenance_mut(8);

/// A slab descriptor. Lives in its segment's header, one per slice; the
/// descriptors of a slab's other slices only hold `slab_offset`.
///
/// Fields are written by the owner heap only, except `thread_free`. The
/// constant fields (`heap`, `kind`, `class`, `block_size`, `start`) are set
/// before any block of the slab exists and are read by remote frees.
#[repr(C)]
pub(crate) struct Slab {
    // -- hot, owner only
    pub(crate) free: *mut Block,
    pub(crate) used: u32,
    pub(crate) owner_flags: u32,
    pub(crate) local_free: *mut Block,
    // -- constant while the slab lives
    pub(crate) heap: *mut Heap,
    pub(crate) block_size: u32,
    pub(crate) class: u8,
    pub(crate) kind: u8,
    pub(crate) slice_count: u16,
    /// Bytes from this descriptor back to the slab's first descriptor.
    pub(crate) slab_offset: u32,
    pub(crate) capacity: u32,
    pub(crate) start: *mut u8,
    // -- remote frees
    pub(crate) thread_free: ThreadFree,
    // -- owner only, slow paths
    pub(crate) reserved: u32,
    /// Memory past `reserved` is known to be zero (fresh from the OS).
    pub(crate) fresh: bool,
    pub(crate) next: *mut Slab,
    pub(crate) prev: *mut Slab,
    /// Coarse time (ms) the slab became completely free; 0 while in use.
    pub(crate) idle_since: u64,
    /// Pooled slabs: per block, pages from the block start that may be
    /// touched (dirty). Lets the allocator give back a reused block's tail
    /// that a previous, larger occupant touched (see `trim_pooled`).
    pub(crate) extent: [u16; MAX_POOLED_BLOCKS],
}

/// Most blocks a pooled slab holds (the 4 KiB class in one 64 KiB slice).
pub(crate) const MAX_POOLED_BLOCKS: usize = 16;

impl Slab {
    #[cfg(not(loom))]
    pub(crate) const fn empty() -> Slab {
        Slab {
            free: ptr::null_mut(),
            used: 0,
            owner_flags: 0,
            local_free: ptr::null_mut(),
            heap: ptr::null_mut(),
            block_size: 0,
            class: 0,
            kind: 0,
            slice_count: 0,
            slab_offset: 0,
            capacity: 0,
            start: ptr::null_mut(),
            thread_free: ThreadFree::new(),
            reserved: 0,
            fresh: false,
            next: ptr::null_mut(),
            prev: ptr::null_mut(),
            idle_since: 0,
            extent: [0; MAX_POOLED_BLOCKS],
        }
    }
}

/// Owner: move `local_free`, then any remote frees, into `free`.
/// Returns whether `free` is non-empty afterwards.
///
/// # Safety
/// * `slab` is a live class slab owned by the calling thread's heap.
pub(crate) unsafe fn collect(slab: *mut Slab) -> bool {
    // SAFETY: owner-only fields of a live slab we own.
    unsafe {
        let s = &mut *slab;
        if s.free.is_null() && !s.local_free.is_null() {
            s.free = s.local_free;
            s.local_free = ptr::null_mut();
        }
        if s.thread_free.has_blocks() {
            let list = s.thread_free.take_all();
            append_remote(s, list);
        }
        !s.free.is_null()
    }
}

/// Owner: put a list of remotely freed blocks on `free`, crediting `used`.
///
/// # Safety
/// * `list` is a null-terminated list of blocks of `s`, taken from its
///   `thread_free`.
pub(crate) unsafe fn append_remote(s: &mut Slab, list: *mut Block) {
    if list.is_null() {
        return;
    }
    let mut n = 1u32;
    let mut tail = list;
    // SAFETY: the list was published with Release and taken with Acquire;
    // its blocks are ours now.
    unsafe {
        while !(*tail).next.is_null() {
            tail = (*tail).next;
            n += 1;
        }
        (*tail).next = s.free;
    }
    s.free = list;
    debug_assert!(s.used >= n, "remote frees exceed used blocks");
    s.used -= n;
}

/// Owner: carve fresh blocks. Small classes carve a page's worth onto
/// `free`; pooled classes (block >= 4 KiB) hand out exactly one block,
/// returned directly (not written to, so still zero when `fresh`).
/// Returns the block for pooled classes, null for small ones.
///
/// # Safety
/// * `slab` is a live class slab owned by the caller with
///   `reserved < capacity`.
pub(crate) unsafe fn extend(slab: *mut Slab) -> *mut u8 {
    // SAFETY: owner-only fields; blocks in `start..start + capacity*size`
    // lie inside the slab's slices, which the slab owns.
    unsafe {
        let s = &mut *slab;
        debug_assert!(s.reserved < s.capacity);
        let size = s.block_size as usize;
        let first = s.start.add(s.reserved as usize * size);
        if size >= crate::os::PAGE_SIZE {
            s.reserved += 1;
            return first;
        }
        let left = (s.capacity - s.reserved) as usize;
        let n = (crate::os::PAGE_SIZE / size).clamp(1, left);
        let mut p = first;
        for _ in 1..n {
            let next = p.add(size);
            (*p.cast::<Block>()).next = next.cast();
            p = next;
        }
        (*p.cast::<Block>()).next = s.free;
        s.free = first.cast();
        s.reserved += n as u32;
        ptr::null_mut()
    }
}
