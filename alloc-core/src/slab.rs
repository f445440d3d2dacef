//! Slabs: a run of slices carved into blocks of one class.
//!
//! A slab's descriptor lives in its segment's header, in the descriptor
//! room of the run's first slice; every descriptor of the run holds
//! `first`, where the first one is in the segment. So [`slab_of`] finds
//! the slab of any block address in O(1).
//!
//! A slab has three free lists (mimalloc's sharding), and a fourth:
//! * `free`: allocation pops here (owner only);
//! * `local_free`: the owner's frees push here (owner only);
//! * `thread_free`: other threads' frees ([`ThreadFree`], atomic; its word
//!   counts its blocks);
//! * `remote_taken`: blocks taken from `thread_free`, waiting (owner only).
//!
//! When `free` runs dry the owner *collects* ([`collect_frees`]): it swaps
//! in the waiting remote blocks, else `local_free`, and takes all of
//! `thread_free` at once onto `remote_taken` without reading a block (the
//! count comes with the stack); so the fast paths
//! are a pop and a push with one branch each. Blocks are carved lazily
//! (`reserved` grows) so a new slab touches only the pages it hands out.
//!
//! A slab's owner is a heap, a layer above: this file sees it as an opaque
//! [`Owner`] it stores and compares, never follows.

use crate::counters::GLOBAL;
use crate::extent::{self, Extents, MAX_POOLED_BLOCKS};
use crate::os::{self, PAGE_SIZE};
use crate::remote::{Block, ThreadFree};
use crate::segment::{
    descriptor, segment_of, slice_addr, slice_index, Segment, SegmentSet, DESCRIPTOR_SIZE,
    SLICE_SIZE, USABLE_SLICES,
};
use crate::size_class::{class_size, is_pooled, CLASSES, CLASS_SIZES, SMALL_CLASSES};
use crate::sync::{AtomicBool, Ordering};
use core::ptr;

/// The owner a descriptor names: a heap's address, opaque to this layer
/// (or a sentinel that is no heap, for large blocks).
pub(crate) type Owner = *mut u8;

/// A slab of class blocks.
pub(crate) const KIND_CLASS: u8 = 1;
/// A descriptor standing for a directly mapped large block (`large.rs`).
pub(crate) const KIND_LARGE: u8 = 2;
/// The one descriptor of a page segment: its blocks are page runs
/// (`pages.rs`), not class blocks.
pub(crate) const KIND_PAGES: u8 = 3;

/// `owner_flags`: the slab is full and in no queue of its heap.
pub(crate) const FLAG_FULL: u32 = 1;
/// `owner_flags`: a page segment's descriptor. Its owner's frees take the
/// free fast path's slow branch, which undoes the fast path's list push
/// and count (`heap::free`), so the fast path itself has no extra test.
pub(crate) const FLAG_PAGES: u32 = 2;
/// A page descriptor's `used`: the fast free path decrements it and the
/// slow branch restores it, so it never reaches 0.
const PAGES_USED: u32 = 1 << 31;

/// A slab descriptor. Lives in its segment's header, one per slice; the
/// descriptors of a slab's other slices only hold `first`.
///
/// Fields are written by the owner heap only, except `thread_free`. The
/// constant fields (`owner`, `kind`, `class`, `block_size`, `start`) are set
/// before any block of the slab exists and are read by remote frees.
#[repr(C)]
pub(crate) struct Slab {
    // -- hot, owner only
    pub(crate) free: *mut Block,
    pub(crate) used: u32,
    pub(crate) owner_flags: u32,
    pub(crate) local_free: *mut Block,
    // -- constant while the slab lives
    pub(crate) owner: Owner,
    pub(crate) block_size: u32,
    pub(crate) class: u8,
    pub(crate) kind: u8,
    pub(crate) slice_count: u16,
    /// Bytes from the segment's start to the slab's first descriptor (in
    /// every descriptor of the slab). 0 in a descriptor never given a
    /// slab: slice 0's, which holds no block (or a large block's head).
    pub(crate) first: u32,
    pub(crate) capacity: u32,
    pub(crate) start: *mut u8,
    // -- remote frees
    pub(crate) thread_free: ThreadFree,
    // -- owner only, slow paths
    pub(crate) reserved: u32,
    /// Memory past `reserved` is known to be zero (fresh from the OS).
    pub(crate) fresh: bool,
    /// Blocks taken from `thread_free` (already credited to `used`) that
    /// wait for `free` to empty: taking remote frees never has to walk a
    /// list to join it to another.
    pub(crate) remote_taken: *mut Block,
    /// Some block was handed out aligned inside itself by the C face's
    /// `memalign` (set before the block is, read by any thread's C
    /// `free`): only then must a C free look for the block's start.
    pub(crate) aligned_inside: AtomicBool,
    pub(crate) next: *mut Slab,
    pub(crate) prev: *mut Slab,
    /// Coarse time (ms) the slab became completely free; 0 while in use.
    pub(crate) idle_since: u64,
    /// Pooled slabs: per block, the pages a previous occupant may have
    /// touched (`extent.rs`).
    pub(crate) extents: Extents,
}

const _: () = assert!(core::mem::size_of::<Slab>() <= DESCRIPTOR_SIZE);
const _: () = assert!(core::mem::align_of::<Slab>() <= 8);

/// Slices per slab of class `c`: one 64 KiB slice for small classes. For
/// pooled classes, the fewest slices that hold at least one block and
/// waste at most an eighth of the run on the tail (so 1 to 16 slices: the
/// 1 MiB class takes 16 slices for one block, 363 520 B takes 6 for one,
/// 13 824 B takes 2 for nine). Small runs keep free slices reusable by
/// any class: a run of 32 slices for two blocks, as before, left segments
/// full of holes too small for the next big slab.
pub(crate) const fn slab_slices(c: usize) -> usize {
    let size = CLASS_SIZES[c] as usize;
    if c < SMALL_CLASSES {
        return 1;
    }
    let mut n = size.div_ceil(SLICE_SIZE);
    while n < USABLE_SLICES {
        let bytes = n * SLICE_SIZE;
        if (bytes % size) * 8 <= bytes {
            return n;
        }
        n += 1;
    }
    USABLE_SLICES
}

// Every class fits its slab, and pooled slabs have an extent per block;
// classes fit the segment layer's run tags.
const _: () = assert!(CLASSES <= crate::segment::TAGS);
const _: () = {
    let mut c = 0;
    while c < CLASSES {
        let blocks = slab_slices(c) * SLICE_SIZE / CLASS_SIZES[c] as usize;
        assert!(blocks >= 1);
        assert!(c < SMALL_CLASSES || blocks <= MAX_POOLED_BLOCKS);
        c += 1;
    }
};

impl Slab {
    /// A descriptor of nothing (the heap's "no slab" sentinel).
    pub(crate) const fn empty() -> Slab {
        Slab {
            free: ptr::null_mut(),
            used: 0,
            owner_flags: 0,
            local_free: ptr::null_mut(),
            owner: ptr::null_mut(),
            block_size: 0,
            class: 0,
            kind: 0,
            slice_count: 0,
            first: 0,
            capacity: 0,
            start: ptr::null_mut(),
            thread_free: ThreadFree::new(),
            reserved: 0,
            fresh: false,
            remote_taken: ptr::null_mut(),
            aligned_inside: AtomicBool::new(false),
            next: ptr::null_mut(),
            prev: ptr::null_mut(),
            idle_since: 0,
            extents: Extents::new(),
        }
    }
}

/// The descriptor of slice `i` of `seg`.
#[inline(always)]
pub(crate) fn descriptor_of(seg: *mut Segment, i: usize) -> *mut Slab {
    descriptor(seg, i).cast()
}

/// The slab descriptor responsible for address `p` (a block of a slab, or
/// the first slice's worth of a large block).
///
/// # Safety
/// * `p` points into a block this allocator handed out and that is still
///   live (its segment header is mapped and its descriptors initialised).
#[inline(always)]
pub(crate) unsafe fn slab_of(p: *mut u8) -> *mut Slab {
    let seg = segment_of(p);
    let desc = descriptor_of(seg, slice_index(p));
    // SAFETY: caller contract: the header is mapped and the descriptor of
    // `p`'s slice is initialised; `first` is the offset of the slab's
    // first descriptor within the same header (one load and an add, where
    // an offset back from `desc` took four instructions).
    unsafe { seg.cast::<u8>().add((*desc).first as usize).cast() }
}

/// The start of the block of class slab `slab` that contains `p` (an
/// address anywhere inside a block, as when aligning inside one).
///
/// # Safety
/// * `slab` is a live class slab and `p` lies inside one of its blocks.
#[inline]
pub(crate) unsafe fn block_start(slab: *mut Slab, p: *mut u8) -> *mut u8 {
    // SAFETY: caller contract: the constant fields of a live slab.
    let (start, size, c) = unsafe {
        (
            (*slab).start as usize,
            (*slab).block_size as usize,
            (*slab).class as usize,
        )
    };
    (start + crate::size_class::div_by_class(p as usize - start, c) * size) as *mut u8
}

/// Make a slab of class `c` for `owner` from free slices of `set`. Null when
/// the set has no run of free slices: the caller adds a segment
/// ([`SegmentSet::grow`]) and asks again.
///
/// # Safety
/// * The caller holds `set` and is (or acts for) `owner`.
pub(crate) unsafe fn slab_new(set: &mut SegmentSet, owner: Owner, c: usize) -> *mut Slab {
    let n = slab_slices(c);
    // SAFETY: caller contract: the set is held.
    let Some(run) = (unsafe { set.take_run(n, c as u8) }) else {
        return ptr::null_mut();
    };
    let size = class_size(c);
    let slab = descriptor_of(run.seg, run.first);
    // SAFETY: the run's descriptors are unused (its slices were free), so no
    // other thread reads them until a block of the slab exists.
    unsafe {
        let sl = &mut *slab;
        sl.free = ptr::null_mut();
        sl.used = 0;
        sl.owner_flags = 0;
        sl.local_free = ptr::null_mut();
        sl.owner = owner;
        sl.block_size = size as u32;
        sl.class = c as u8;
        sl.kind = KIND_CLASS;
        sl.slice_count = n as u16;
        sl.first = first_offset(run.first);
        sl.capacity = ((n * SLICE_SIZE) / size) as u32;
        sl.start = slice_addr(run.seg, run.first);
        sl.thread_free.reset();
        sl.reserved = 0;
        sl.fresh = run.fresh;
        sl.remote_taken = ptr::null_mut();
        sl.aligned_inside.store(false, Ordering::Relaxed);
        sl.next = ptr::null_mut();
        sl.prev = ptr::null_mut();
        sl.idle_since = 0;
        if is_pooled(c) {
            sl.extents.reset(run.fresh, size);
        }
        lead_back(run.seg, run.first, n);
        // Blocks of an earlier slab on these slices (decommitted since or
        // not) may still be marked freed for memcheck: the new slab writes
        // its free lists there. (A no-op without the `valgrind` feature.)
        crate::valgrind::make_writable(sl.start, n * SLICE_SIZE);
    }
    slab
}

/// `first` for a run whose first slice is slice `i`: the offset of its
/// descriptor from the segment's start.
fn first_offset(i: usize) -> u32 {
    (i * DESCRIPTOR_SIZE) as u32
}

/// Point the descriptors of the run's other slices, `i+1..i+n`, at its
/// first (slice `i`'s), so [`slab_of`] of any address in the run finds it.
///
/// # Safety
/// * `seg`'s header is mapped, slices `i..i+n` are in it, and the caller
///   may write their descriptors (nobody reads them yet).
unsafe fn lead_back(seg: *mut Segment, i: usize, n: usize) {
    for k in 1..n {
        // SAFETY: caller contract.
        unsafe { (*descriptor_of(seg, i + k)).first = first_offset(i) };
    }
}

/// Give page segment `seg` (just made by `SegmentSet::grow_pages`) its
/// descriptors: one of kind [`KIND_PAGES`] for `owner`, at the first
/// usable slice, which every other slice leads back to; so [`slab_of`] of
/// any page run finds it.
///
/// # Safety
/// * The caller holds the set `seg` was added to, and no run of `seg` has
///   been handed out yet.
pub(crate) unsafe fn init_pages(seg: *mut Segment, owner: Owner) {
    let d = descriptor_of(seg, 1);
    // SAFETY: caller contract: nobody reads the descriptors before a run
    // of the segment exists.
    unsafe {
        d.write(Slab::empty());
        let sl = &mut *d;
        sl.owner = owner;
        sl.kind = KIND_PAGES;
        sl.owner_flags = FLAG_PAGES;
        sl.used = PAGES_USED;
        sl.block_size = PAGE_SIZE as u32;
        sl.slice_count = USABLE_SLICES as u16;
        sl.start = slice_addr(seg, 1);
        sl.first = first_offset(1);
        lead_back(seg, 1, USABLE_SLICES);
    }
}

/// Return an empty slab's slices to `set`, idle since `since` (coarse ms).
/// The caller applies the set's give-back policy after
/// (`SegmentSet::after_return`).
///
/// # Safety
/// * The caller holds `set`'s lock; `slab` is an empty slab made from it,
///   in no queue, with no remote hand-off in progress.
pub(crate) unsafe fn slab_release(set: &mut SegmentSet, slab: *mut Slab, since: u64) {
    let seg = segment_of(slab.cast());
    // SAFETY: caller contract: the slab is ours and unused.
    unsafe {
        let i = (slab as usize - seg as usize) / DESCRIPTOR_SIZE;
        let n = (*slab).slice_count as usize;
        (*slab).kind = 0;
        set.return_run(seg, i, n, since)
    }
}

/// Owner: move `local_free`, then any remote frees, into `free`.
/// Returns whether `free` is non-empty afterwards.
///
/// # Safety
/// * `slab` is a live class slab owned by the caller.
pub(crate) unsafe fn collect_frees(slab: *mut Slab) -> bool {
    // SAFETY: owner-only fields of a live slab we own.
    unsafe {
        let s = &mut *slab;
        // Remote blocks taken last time first, so that at most one taken
        // list waits and taking more never has to join two lists.
        if s.free.is_null() {
            if !s.remote_taken.is_null() {
                s.free = s.remote_taken;
                s.remote_taken = ptr::null_mut();
            } else if !s.local_free.is_null() {
                s.free = s.local_free;
                s.local_free = ptr::null_mut();
            }
        }
        if s.thread_free.has_blocks() {
            let (list, n) = s.thread_free.take_counted();
            take_remote(s, list, n);
        }
        if s.free.is_null() && !s.remote_taken.is_null() {
            s.free = s.remote_taken;
            s.remote_taken = ptr::null_mut();
        }
        !s.free.is_null()
    }
}

/// Owner: keep a list of `n` remotely freed blocks for `free` (on
/// `remote_taken`), crediting `used`. The stack counted its blocks, so
/// nothing reads them here (each was written last by another core), unless
/// blocks taken before still wait: then the new list is walked to its tail
/// and joined to them.
///
/// # Safety
/// * `list` is a null-terminated list of `n` blocks of `s`, taken from its
///   `thread_free`.
pub(crate) unsafe fn take_remote(s: &mut Slab, list: *mut Block, n: u32) {
    if list.is_null() {
        return;
    }
    if !s.remote_taken.is_null() {
        let mut tail = list;
        // SAFETY: the list was published with Release and taken with
        // Acquire; its blocks are ours now.
        unsafe {
            while !Block::next(tail).is_null() {
                tail = Block::next(tail);
            }
            Block::set_next(tail, s.remote_taken);
        }
    }
    s.remote_taken = list;
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
        if size >= PAGE_SIZE {
            s.reserved += 1;
            return first;
        }
        let left = (s.capacity - s.reserved) as usize;
        let n = (PAGE_SIZE / size).clamp(1, left);
        let mut p = first;
        for _ in 1..n {
            let next = p.add(size);
            Block::set_next(p.cast(), next.cast());
            p = next;
        }
        Block::set_next(p.cast(), s.free);
        s.free = first.cast();
        s.reserved += n as u32;
        ptr::null_mut()
    }
}

/// Pooled block `p` is handed out for a request touching its first `touch`
/// bytes: record that, and with `Config::trim_pages` on give back the tail
/// a previous, larger occupant touched (`extent.rs`).
///
/// # Safety
/// * `p` is a block of a pooled slab owned by the caller, just allocated,
///   with `touch <=` its block size.
pub(crate) unsafe fn trim_pooled(p: *mut u8, touch: usize) {
    // SAFETY: caller contract: the slab is ours; the range given back lies
    // inside the block, beyond the bytes the caller will use.
    unsafe {
        let slab = slab_of(p);
        if (*slab).kind != KIND_CLASS {
            return; // a sampled block, served as a page run (`profile.rs`)
        }
        let (start, bs) = ((*slab).start as usize, (*slab).block_size as usize);
        let i = (p as usize - start) / bs;
        let trim = crate::config::get().trim_pages;
        let e = &mut *Extents::entry(ptr::addr_of_mut!((*slab).extents), i);
        let was = *e;
        if let Some((from, to)) = extent::on_handout(e, p as usize, bs, touch, trim) {
            if os::decommit(from as *mut u8, to - from, false) {
                GLOBAL.decommitted_bytes.add(to - from);
            } else {
                *e = was; // the tail is still touched
            }
        }
    }
}

/// A pooled block is resized in place to `touch` bytes: widen its extent.
///
/// # Safety
/// * `p` is a live block of a pooled slab, held by the caller.
pub(crate) unsafe fn widen_pooled(p: *mut u8, touch: usize) {
    // SAFETY: each block's extent entry is only written by whoever holds
    // the block: the allocating owner before handing it out, then its
    // holder.
    unsafe {
        let slab = slab_of(p);
        let i = (p as usize - (*slab).start as usize) / (*slab).block_size as usize;
        extent::widen(
            &mut *Extents::entry(ptr::addr_of_mut!((*slab).extents), i),
            touch,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_slabs_are_small_runs_with_little_waste() {
        for c in SMALL_CLASSES..CLASSES {
            let n = slab_slices(c);
            let bytes = n * SLICE_SIZE;
            let size = class_size(c);
            assert!((1..=16).contains(&n), "class {size}: {n} slices");
            assert!(bytes / size >= 1 && bytes / size <= MAX_POOLED_BLOCKS);
            assert!((bytes % size) * 8 <= bytes, "class {size}: tail waste");
        }
    }
}
