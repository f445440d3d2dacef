//! Segments: 4 MiB aligned mappings, the unit the allocator gets from the OS.
//!
//! ```text
//! | slice 0: header (Segment, slab descriptors) | slice 1 | ... | slice 63 |
//! ```
//!
//! A block's segment is `addr & !(SEG_SIZE - 1)`; its slice is
//! `(addr % SEG_SIZE) / SLICE_SIZE`, and the descriptor of that slice leads to
//! the slab (`slab_offset`). So `dealloc` finds the owning slab in O(1) with
//! no global map and no lock. Large blocks get a segment of their own with
//! the same header (see `large.rs`).
//!
//! A slab segment belongs to one heap; only that heap's thread allocates or
//! releases slabs in it. Empty segments become the heap's spares (up to one
//! per 16 MiB of slabs in use, at most 16), then go to a global bounded
//! cache (decommitted), then back to the OS.

use crate::cache::SlotCache;
use crate::heap::Heap;
use crate::os;
use crate::size_class::{class_size, is_pooled, slab_slices};
use crate::slab::{Slab, KIND_CLASS};
use crate::stats::GLOBAL;
use core::ptr;

pub(crate) const SEG_SHIFT: usize = 22;
/// Size and alignment of a segment.
pub(crate) const SEG_SIZE: usize = 1 << SEG_SHIFT;
pub(crate) const SEG_MASK: usize = SEG_SIZE - 1;
pub(crate) const SLICE_SHIFT: usize = 16;
/// A slice: the granule slabs are made of.
pub(crate) const SLICE_SIZE: usize = 1 << SLICE_SHIFT;
pub(crate) const SLICES: usize = SEG_SIZE / SLICE_SIZE;
/// Slices available to slabs (slice 0 holds the header).
pub(crate) const USABLE_SLICES: usize = SLICES - 1;
const ALL_USABLE: u64 = !1u64;
/// Most empty segments a heap keeps committed.
const MAX_SPARES: usize = 16;

pub(crate) const SEG_KIND_SLABS: u8 = 1;
pub(crate) const SEG_KIND_LARGE: u8 = 2;

/// Segment header, at the segment's first byte.
#[repr(C)]
pub(crate) struct Segment {
    /// One descriptor per slice; must stay the first field (the free path
    /// indexes it from the segment address).
    pub(crate) slabs: [Slab; SLICES],
    pub(crate) kind: u8,
    pub(crate) heap: *mut Heap,
    /// Bit i set: slice i is free.
    pub(crate) free_map: u64,
    /// Bit i set: slice i may hold non-zero bytes (touched since mapped or
    /// last decommitted).
    pub(crate) dirty_map: u64,
    pub(crate) next: *mut Segment,
    pub(crate) prev: *mut Segment,
    /// Large: length of the whole mapping.
    pub(crate) large_len: usize,
    /// Large: offset of the user block from the segment start.
    pub(crate) large_offset: usize,
    /// Large: bytes the user asked for (for stats).
    pub(crate) large_size: usize,
}

/// Bytes the header occupies, rounded to pages.
pub(crate) const HEADER_SIZE: usize =
    core::mem::size_of::<Segment>().div_ceil(os::PAGE_SIZE) * os::PAGE_SIZE;

const _: () = assert!(HEADER_SIZE <= SLICE_SIZE);
const _: () = {
    let mut c = crate::size_class::SMALL_CLASSES;
    while c < crate::size_class::CLASSES {
        let blocks = slab_slices(c) * SLICE_SIZE / crate::size_class::CLASS_SIZES[c] as usize;
        assert!(blocks <= crate::slab::MAX_POOLED_BLOCKS);
        c += 1;
    }
};
const _: () = assert!(core::mem::size_of::<Slab>().is_multiple_of(8));

/// Empty segments kept mapped but decommitted, for any heap to take.
pub(crate) static SEGMENT_CACHE: SlotCache<64> = SlotCache::new();

/// The slab descriptor responsible for address `p` (a block of a slab or
/// large segment).
///
/// # Safety
/// * `p` points into a block this allocator handed out and that is still
///   live (its segment header is mapped and initialised).
#[inline(always)]
pub(crate) unsafe fn slab_of(p: *mut u8) -> *mut Slab {
    let addr = p as usize;
    let seg = addr & !SEG_MASK;
    let idx = (addr & SEG_MASK) >> SLICE_SHIFT;
    // SAFETY: the header is mapped (caller contract); `idx < SLICES`, so the
    // descriptor is inside `slabs`, and `slab_offset` leads back to the
    // slab's first descriptor within the same array.
    unsafe {
        let desc = (seg as *mut Slab).add(idx);
        desc.byte_sub((*desc).slab_offset as usize)
    }
}

/// The segment holding descriptor `slab`.
#[inline]
pub(crate) fn segment_of_slab(slab: *mut Slab) -> *mut Segment {
    ((slab as usize) & !SEG_MASK) as *mut Segment
}

fn find_run(map: u64, n: usize) -> Option<usize> {
    let mut m = map;
    for k in 1..n {
        m &= map >> k;
    }
    if m == 0 {
        None
    } else {
        Some(m.trailing_zeros() as usize)
    }
}

fn run_mask(i: usize, n: usize) -> u64 {
    let ones = if n >= 64 { !0u64 } else { (1u64 << n) - 1 };
    ones << i
}

/// Allocate and initialise a slab of class `c` for `heap`.
///
/// # Safety
/// * `heap` is the calling thread's heap (or one it holds exclusively).
pub(crate) unsafe fn slab_alloc(heap: *mut Heap, c: usize) -> *mut Slab {
    let n = slab_slices(c);
    // SAFETY: the heap's segment list is ours; segments in it are mapped.
    unsafe {
        // First choice: free slices that are already touched (no page
        // faults, and no new resident memory); then any free run.
        if (*heap).dirty_free_bytes >= n * SLICE_SIZE {
            let mut seg = (*heap).segments;
            while !seg.is_null() {
                if let Some(i) = find_run((*seg).free_map & (*seg).dirty_map, n) {
                    return slab_init(seg, i, n, c);
                }
                seg = (*seg).next;
            }
        }
        let mut seg = (*heap).segments;
        while !seg.is_null() {
            if let Some(i) = find_run((*seg).free_map, n) {
                return slab_init(seg, i, n, c);
            }
            seg = (*seg).next;
        }
        let seg = segment_acquire(heap);
        if seg.is_null() {
            return ptr::null_mut();
        }
        slab_init(seg, 1, n, c)
    }
}

/// # Safety
/// * `seg` is owned by the caller's heap and slices `i..i+n` are free.
unsafe fn slab_init(seg: *mut Segment, i: usize, n: usize, c: usize) -> *mut Slab {
    // SAFETY: the segment header is mapped and ours; the descriptors
    // `i..i+n` are unused (their slices are free), so no other thread reads
    // them.
    unsafe {
        let s = &mut *seg;
        let mask = run_mask(i, n);
        debug_assert_eq!(s.free_map & mask, mask, "slices not free");
        s.free_map &= !mask;
        let fresh = s.dirty_map & mask == 0;
        (*s.heap).dirty_free_bytes -= slices_bytes(s.dirty_map & mask);
        (*s.heap).slab_bytes += n * SLICE_SIZE;
        s.dirty_map |= mask;
        let size = class_size(c);
        let slab = (seg as *mut Slab).add(i);
        let sl = &mut *slab;
        sl.free = ptr::null_mut();
        sl.used = 0;
        sl.owner_flags = 0;
        sl.local_free = ptr::null_mut();
        sl.heap = s.heap;
        sl.block_size = size as u32;
        sl.class = c as u8;
        sl.kind = KIND_CLASS;
        sl.slice_count = n as u16;
        sl.slab_offset = 0;
        sl.capacity = ((n * SLICE_SIZE) / size) as u32;
        sl.start = (seg as *mut u8).add(i * SLICE_SIZE);
        sl.thread_free.reset();
        sl.reserved = 0;
        sl.fresh = fresh;
        sl.next = ptr::null_mut();
        sl.prev = ptr::null_mut();
        sl.idle_since = 0;
        if is_pooled(c) {
            // Fresh slices are clean; reused ones may be dirty anywhere.
            let e = if fresh {
                0
            } else {
                size.div_ceil(os::PAGE_SIZE) as u16
            };
            sl.extent = [e; crate::slab::MAX_POOLED_BLOCKS];
        }
        for k in 1..n {
            (*slab.add(k)).slab_offset = (k * core::mem::size_of::<Slab>()) as u32;
        }
        crate::stats::bump(&(*s.heap).slabs[c], 1);
        slab
    }
}

/// Return an empty slab's slices to its segment. Returns true when the
/// segment became empty and was released (the caller must not touch it).
///
/// # Safety
/// * `slab` is an empty slab of a segment owned by the caller's `heap`, in
///   no queue, with no remote hand-off in progress.
pub(crate) unsafe fn slab_free(heap: *mut Heap, slab: *mut Slab) -> bool {
    // SAFETY: as above; the segment is ours.
    unsafe {
        let seg = segment_of_slab(slab);
        let i = (slab as usize - seg as usize) / core::mem::size_of::<Slab>();
        let n = (*slab).slice_count as usize;
        let c = (*slab).class as usize;
        (*slab).kind = 0;
        crate::stats::bump(&(*heap).slabs[c], u64::MAX); // -1
        let mask = run_mask(i, n);
        (*seg).free_map |= mask;
        (*heap).slab_bytes -= n * SLICE_SIZE;
        (*heap).dirty_free_bytes += n * SLICE_SIZE;
        // Free dirty memory past the budget goes back to the OS now.
        if (*heap).dirty_free_bytes > dirty_budget(heap) {
            os::decommit((seg as *mut u8).add(i * SLICE_SIZE), n * SLICE_SIZE);
            GLOBAL.decommitted_bytes.fetch_add(n * SLICE_SIZE);
            (*seg).dirty_map &= !mask;
            (*heap).dirty_free_bytes -= n * SLICE_SIZE;
        }
        if (*seg).free_map == ALL_USABLE {
            segment_release(heap, seg);
            return true;
        }
        false
    }
}

fn slices_bytes(map: u64) -> usize {
    (map & ALL_USABLE).count_ones() as usize * SLICE_SIZE
}

/// Free-but-dirty bytes a heap keeps in its segments: an eighth of its
/// slab bytes, at least 4 MiB. Past it, released slabs are decommitted.
unsafe fn dirty_budget(heap: *mut Heap) -> usize {
    // SAFETY: the caller holds the heap.
    unsafe { ((*heap).slab_bytes / 8).max(4 << 20) }
}

/// Get an empty segment for `heap`: its spare, a cached one, or a new
/// mapping. Links it into the heap's list.
unsafe fn segment_acquire(heap: *mut Heap) -> *mut Segment {
    // SAFETY: heap fields are ours; segments taken from the spare or the
    // cache are owned by us after the take.
    unsafe {
        let mut seg = (*heap).spare;
        if !seg.is_null() {
            (*heap).spare = (*seg).next;
            (*heap).spare_count -= 1;
        } else {
            crate::heap::sweep_abandoned();
            seg = SEGMENT_CACHE.take(|_| true) as *mut Segment;
            if !seg.is_null() {
                GLOBAL.cached_segments_bytes.fetch_sub(SEG_SIZE);
            } else {
                seg = os::map_aligned(SEG_SIZE, SEG_SIZE).cast();
                if seg.is_null() {
                    return seg;
                }
                GLOBAL.mapped_bytes.fetch_add(SEG_SIZE);
                (*seg).dirty_map = 0;
            }
        }
        let s = &mut *seg;
        s.kind = SEG_KIND_SLABS;
        s.heap = heap;
        s.free_map = ALL_USABLE;
        (*heap).dirty_free_bytes += slices_bytes(s.dirty_map);
        s.prev = ptr::null_mut();
        s.next = (*heap).segments;
        if !s.next.is_null() {
            (*s.next).prev = seg;
        }
        (*heap).segments = seg;
        (*heap).segment_count += 1;
        seg
    }
}

/// An empty segment leaves `heap`: kept as the spare, else decommitted into
/// the global cache, else unmapped.
unsafe fn segment_release(heap: *mut Heap, seg: *mut Segment) {
    // SAFETY: the segment is ours and empty.
    unsafe {
        let s = &mut *seg;
        if s.prev.is_null() {
            (*heap).segments = s.next;
        } else {
            (*s.prev).next = s.next;
        }
        if !s.next.is_null() {
            (*s.next).prev = s.prev;
        }
        s.next = ptr::null_mut();
        s.prev = ptr::null_mut();
        (*heap).segment_count -= 1;
        (*heap).dirty_free_bytes -= slices_bytes(s.dirty_map);
        // Keep a few empty segments committed: pooled churn empties and
        // refills segments often, and a decommitted one costs page faults.
        // The allowance follows the memory in use (a quarter of the slab
        // bytes, in segments), so when a burst is freed the spares go back
        // with it. An exiting thread's heap keeps one spare, so that the
        // thread adopting it (thread churn) starts without page faults.
        let keep = if (*heap).abandoning {
            1
        } else {
            (1 + (*heap).slab_bytes / SEG_SIZE / 4).min(MAX_SPARES)
        };
        s.next = (*heap).spare;
        (*heap).spare = seg;
        (*heap).spare_count += 1;
        spares_keep(heap, keep);
    }
}

/// Decommit the free slices of `seg` that hold touched pages. Returns the
/// bytes decommitted.
///
/// # Safety
/// * `seg` is a slab segment owned by the caller's heap.
pub(crate) unsafe fn segment_decommit_free(seg: *mut Segment) -> usize {
    // SAFETY: the segment is ours; free slices hold no live block.
    unsafe {
        let mut todo = (*seg).free_map & (*seg).dirty_map & ALL_USABLE;
        let mut total = 0;
        while todo != 0 {
            let lo = todo.trailing_zeros() as usize;
            let run = (!(todo >> lo)).trailing_zeros() as usize;
            let len = run * SLICE_SIZE;
            os::decommit((seg as *mut u8).add(lo * SLICE_SIZE), len);
            let mask = run_mask(lo, run);
            (*seg).dirty_map &= !mask;
            todo &= !mask;
            total += len;
        }
        (*(*seg).heap).dirty_free_bytes -= total;
        GLOBAL.decommitted_bytes.fetch_add(total);
        total
    }
}

/// Give back every spare segment of `heap` (decommitted into the cache).
///
/// # Safety
/// * The caller holds `heap`.
pub(crate) unsafe fn spares_give_back(heap: *mut Heap) {
    // SAFETY: forwarded.
    unsafe { spares_keep(heap, 0) }
}

/// Give back spare segments of `heap` beyond `keep`.
///
/// # Safety
/// * The caller holds `heap`.
pub(crate) unsafe fn spares_keep(heap: *mut Heap, keep: usize) {
    // SAFETY: the spares are empty segments owned by the held heap.
    unsafe {
        while (*heap).spare_count > keep {
            let seg = (*heap).spare;
            (*heap).spare = (*seg).next;
            (*heap).spare_count -= 1;
            segment_give_back(seg);
        }
    }
}

/// Decommit an empty segment and cache it, or unmap it.
///
/// # Safety
/// * `seg` is an empty segment the caller owns and no heap lists.
pub(crate) unsafe fn segment_give_back(seg: *mut Segment) {
    // SAFETY: the segment is ours; its slices hold no live block.
    unsafe {
        let dirty = (*seg).dirty_map & ALL_USABLE;
        if dirty != 0 {
            let lo = dirty.trailing_zeros() as usize;
            let hi = 64 - dirty.leading_zeros() as usize;
            let len = (hi - lo) * SLICE_SIZE;
            os::decommit((seg as *mut u8).add(lo * SLICE_SIZE), len);
            GLOBAL.decommitted_bytes.fetch_add(len);
            (*seg).dirty_map = 0;
        }
        (*seg).heap = ptr::null_mut();
        if SEGMENT_CACHE.put(seg as usize, crate::config::segment_cache_limit()) {
            GLOBAL.cached_segments_bytes.fetch_add(SEG_SIZE);
        } else {
            os::unmap(seg.cast(), SEG_SIZE);
            GLOBAL.mapped_bytes.fetch_sub(SEG_SIZE);
            GLOBAL.unmapped_bytes.fetch_add(SEG_SIZE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_found_in_the_free_map() {
        assert_eq!(find_run(ALL_USABLE, 1), Some(1));
        assert_eq!(find_run(ALL_USABLE, 63), Some(1));
        assert_eq!(find_run(ALL_USABLE, 64), None);
        let map = ALL_USABLE & !run_mask(3, 2); // 1,2 free; 3,4 used
        assert_eq!(find_run(map, 3), Some(5));
        assert_eq!(find_run(map, 2), Some(1));
        assert_eq!(run_mask(1, 63), ALL_USABLE);
    }
}
