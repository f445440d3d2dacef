//! Segments: 4 MiB aligned mappings, the unit the allocator gets from the
//! OS, cut into 64 KiB slices.
//!
//! ```text
//! | slice 0: header (descriptors, maps, links) | slice 1 | ... | slice 63 |
//! ```
//!
//! A block's segment is `addr & !(SEG_SIZE - 1)` and its slice is
//! `(addr % SEG_SIZE) / SLICE_SIZE`. The header starts with room for one
//! *descriptor* per slice, which the layer above fills in (`slab.rs`: a slab
//! descriptor), so `dealloc` finds the owning slab in O(1) with no global
//! map and no lock. This file knows slices, not slabs: it hands out *runs*
//! of free slices and takes them back.
//!
//! A [`SegmentSet`] is the segments one heap owns. It keeps empty segments
//! as *spares* (committed, for reuse without a system call; how many follows
//! the memory in use, at most [`MAX_SPARES`]); beyond that, empty segments
//! are decommitted into a global bounded cache, then unmapped. Large blocks
//! use a segment header of their own (see `large.rs`) and no set.

use crate::cache::SlotCache;
use crate::counters::GLOBAL;
use crate::os;
use core::ptr;

pub(crate) const SEG_SHIFT: usize = 22;
/// Size and alignment of a segment.
pub(crate) const SEG_SIZE: usize = 1 << SEG_SHIFT;
pub(crate) const SEG_MASK: usize = SEG_SIZE - 1;
pub(crate) const SLICE_SHIFT: usize = 16;
/// A slice: the granule runs (and so slabs) are made of.
pub(crate) const SLICE_SIZE: usize = 1 << SLICE_SHIFT;
pub(crate) const SLICES: usize = SEG_SIZE / SLICE_SIZE;
/// Slices available to runs (slice 0 holds the header).
pub(crate) const USABLE_SLICES: usize = SLICES - 1;
const ALL_USABLE: u64 = !1u64;
/// Most empty segments a set keeps committed.
pub(crate) const MAX_SPARES: usize = 16;
/// Bytes of header room per slice for the layer above's descriptor (a power
/// of two, so finding a descriptor is a shift).
pub(crate) const DESCRIPTOR_SIZE: usize = 256;

/// What a segment holds.
pub(crate) const SEG_KIND_SLABS: u8 = 1;
/// A segment that is the header of one large block.
pub(crate) const SEG_KIND_LARGE: u8 = 2;

/// Segment header, at the segment's first byte.
#[repr(C)]
pub(crate) struct Segment {
    /// One descriptor per slice, owned by the layer above. Must stay the
    /// first field: descriptors are found from the segment address.
    descriptors: [[u64; DESCRIPTOR_SIZE / 8]; SLICES],
    pub(crate) kind: u8,
    /// Bit i set: slice i is free.
    free_map: u64,
    /// Bit i set: slice i may hold non-zero bytes (touched since mapped or
    /// last decommitted).
    dirty_map: u64,
    /// Bit i set: a run in use starts at slice i.
    run_starts: u64,
    next: *mut Segment,
    prev: *mut Segment,
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
const _: () = assert!(DESCRIPTOR_SIZE.is_power_of_two());

/// Empty segments kept mapped but decommitted, for any heap to take.
static SEGMENT_CACHE: SlotCache<64> = SlotCache::new();

/// The segment holding address `p` (any address inside one).
#[inline(always)]
pub(crate) fn segment_of(p: *const u8) -> *mut Segment {
    ((p as usize) & !SEG_MASK) as *mut Segment
}

/// The slice of its segment that address `p` lies in.
#[inline(always)]
pub(crate) fn slice_index(p: *const u8) -> usize {
    ((p as usize) & SEG_MASK) >> SLICE_SHIFT
}

/// The descriptor room of slice `i` of `seg` (`DESCRIPTOR_SIZE` bytes).
#[inline(always)]
pub(crate) fn descriptor(seg: *mut Segment, i: usize) -> *mut u8 {
    debug_assert!(i < SLICES);
    seg.cast::<u8>().wrapping_add(i * DESCRIPTOR_SIZE)
}

/// Address of slice `i` of `seg`.
#[inline]
pub(crate) fn slice_addr(seg: *mut Segment, i: usize) -> *mut u8 {
    seg.cast::<u8>().wrapping_add(i * SLICE_SIZE)
}

/// The lowest slice starting `n` consecutive set bits of `map`. Bit i of
/// `m` stays set while bits i..i+len of `map` are all set; `len` doubles
/// each step, so a run of 32 slices takes 5 steps, not 31.
fn find_run(map: u64, n: usize) -> Option<usize> {
    let mut m = map;
    let mut len = 1;
    while len < n {
        let step = len.min(n - len);
        m &= m >> step;
        len += step;
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

fn slices_bytes(map: u64) -> usize {
    (map & ALL_USABLE).count_ones() as usize * SLICE_SIZE
}

/// A run of slices taken from a set.
pub(crate) struct Run {
    pub(crate) seg: *mut Segment,
    /// First slice of the run.
    pub(crate) first: usize,
    /// No slice of the run was touched since it was mapped or decommitted:
    /// it reads as zero.
    pub(crate) fresh: bool,
}

/// How many empty segments a set keeps as spares when one empties.
#[derive(Clone, Copy)]
pub(crate) enum Spares {
    /// Follow the memory in use: one, plus one per 16 MiB of runs in use,
    /// at most [`MAX_SPARES`].
    FollowUse,
    /// At most this many.
    AtMost(usize),
}

/// The segments one heap owns, and their accounting. Zero is a valid
/// empty set (heaps get theirs from a fresh zeroed mapping).
#[repr(C)]
pub(crate) struct SegmentSet {
    /// Segments holding runs (doubly linked through `next`/`prev`).
    list: *mut Segment,
    count: usize,
    /// Empty segments kept committed (a stack through `next`).
    spare: *mut Segment,
    spare_count: usize,
    /// Bytes of slices in runs in use.
    used_bytes: usize,
    /// Bytes of free but dirty (touched, not decommitted) slices in `list`:
    /// reused without page faults, within [`SegmentSet::dirty_budget`].
    dirty_free_bytes: usize,
}

impl SegmentSet {
    /// The segments holding runs, as a list to walk with
    /// [`next_in_set`].
    pub(crate) fn first(&self) -> *mut Segment {
        self.list
    }

    /// Bytes of free slices that hold touched pages.
    pub(crate) fn dirty_free_bytes(&self) -> usize {
        self.dirty_free_bytes
    }

    /// Free-but-dirty bytes the set keeps: an eighth of the bytes in use,
    /// at least 4 MiB. Past it, returned runs are decommitted at once.
    fn dirty_budget(&self) -> usize {
        (self.used_bytes / 8).max(4 << 20)
    }

    /// Take a run of `n` free slices from the segments of the set: first
    /// one that is already touched (no page faults, no new resident
    /// memory), then any, then a spare segment. None when the set must
    /// [`grow`](Self::grow) first.
    ///
    /// # Safety
    /// * The caller holds the set (its heap's thread, or a claimant of an
    ///   abandoned heap); `1 <= n <= USABLE_SLICES`.
    pub(crate) unsafe fn take_run(&mut self, n: usize) -> Option<Run> {
        // SAFETY: segments in the list and the spares are mapped and owned
        // by this set, which the caller holds.
        unsafe {
            if self.dirty_free_bytes >= n * SLICE_SIZE {
                let mut seg = self.list;
                while !seg.is_null() {
                    if let Some(i) = find_run((*seg).free_map & (*seg).dirty_map, n) {
                        return Some(self.claim(seg, i, n));
                    }
                    seg = (*seg).next;
                }
            }
            let mut seg = self.list;
            while !seg.is_null() {
                if let Some(i) = find_run((*seg).free_map, n) {
                    return Some(self.claim(seg, i, n));
                }
                seg = (*seg).next;
            }
            let seg = self.spare;
            if seg.is_null() {
                return None;
            }
            self.spare = (*seg).next;
            self.spare_count -= 1;
            self.link(seg);
            Some(self.claim(seg, 1, n))
        }
    }

    /// Add an empty segment to the set: one from the global cache, else a
    /// new mapping. False when the OS has no memory.
    ///
    /// # Safety
    /// * The caller holds the set.
    pub(crate) unsafe fn grow(&mut self) -> bool {
        let mut seg = SEGMENT_CACHE.take(|_| true) as *mut Segment;
        if !seg.is_null() {
            GLOBAL.cached_segments_bytes.sub(SEG_SIZE);
        } else {
            seg = os::map_aligned(SEG_SIZE, SEG_SIZE).cast();
            if seg.is_null() {
                return false;
            }
            GLOBAL.mapped_bytes.add(SEG_SIZE);
            // SAFETY: a fresh zeroed mapping, ours.
            unsafe { (*seg).dirty_map = 0 };
        }
        // SAFETY: the segment is ours: taken from the cache by its CAS, or
        // freshly mapped.
        unsafe { self.link(seg) };
        true
    }

    /// # Safety
    /// * `seg` is an empty segment the caller's set owns, in no list.
    unsafe fn link(&mut self, seg: *mut Segment) {
        // SAFETY: caller contract: the header is mapped and ours.
        unsafe {
            let s = &mut *seg;
            s.kind = SEG_KIND_SLABS;
            s.free_map = ALL_USABLE;
            s.run_starts = 0;
            self.dirty_free_bytes += slices_bytes(s.dirty_map);
            s.prev = ptr::null_mut();
            s.next = self.list;
            if !s.next.is_null() {
                (*s.next).prev = seg;
            }
        }
        self.list = seg;
        self.count += 1;
    }

    /// # Safety
    /// * `seg` is in the set's list and slices `i..i+n` are free.
    unsafe fn claim(&mut self, seg: *mut Segment, i: usize, n: usize) -> Run {
        // SAFETY: caller contract: the header is mapped and ours.
        let s = unsafe { &mut *seg };
        let mask = run_mask(i, n);
        debug_assert_eq!(s.free_map & mask, mask, "slices not free");
        s.free_map &= !mask;
        s.run_starts |= 1 << i;
        let fresh = s.dirty_map & mask == 0;
        self.dirty_free_bytes -= slices_bytes(s.dirty_map & mask);
        self.used_bytes += n * SLICE_SIZE;
        s.dirty_map |= mask;
        Run {
            seg,
            first: i,
            fresh,
        }
    }

    /// Return the run of `n` slices at slice `i` of `seg`. Dirty free
    /// slices past the budget are decommitted at once. Returns true when
    /// the segment became empty and left the list (kept as a spare per
    /// `spares`, else decommitted into the cache or unmapped): the caller
    /// must not touch it again.
    ///
    /// # Safety
    /// * The caller holds the set; the run was taken from it and nothing in
    ///   it is used any more.
    pub(crate) unsafe fn return_run(
        &mut self,
        seg: *mut Segment,
        i: usize,
        n: usize,
        spares: Spares,
    ) -> bool {
        // SAFETY: caller contract: the segment is one of ours; the run's
        // memory is unused, so decommitting it loses nothing.
        unsafe {
            let s = &mut *seg;
            let mask = run_mask(i, n);
            debug_assert_eq!(s.free_map & mask, 0, "run not in use");
            debug_assert!(s.run_starts & (1 << i) != 0, "not a run start");
            s.free_map |= mask;
            s.run_starts &= !(1 << i);
            self.used_bytes -= n * SLICE_SIZE;
            self.dirty_free_bytes += n * SLICE_SIZE;
            if self.dirty_free_bytes > self.dirty_budget() {
                os::decommit(slice_addr(seg, i), n * SLICE_SIZE);
                GLOBAL.decommitted_bytes.add(n * SLICE_SIZE);
                s.dirty_map &= !mask;
                self.dirty_free_bytes -= n * SLICE_SIZE;
            }
            if s.free_map == ALL_USABLE {
                self.release(seg, spares);
                return true;
            }
            false
        }
    }

    /// An empty segment leaves the list: kept as a spare, else decommitted
    /// into the global cache, else unmapped.
    ///
    /// # Safety
    /// * `seg` is an empty segment of the set's list.
    unsafe fn release(&mut self, seg: *mut Segment, spares: Spares) {
        // SAFETY: caller contract; neighbours in the list are ours too.
        unsafe {
            let s = &mut *seg;
            if s.prev.is_null() {
                self.list = s.next;
            } else {
                (*s.prev).next = s.next;
            }
            if !s.next.is_null() {
                (*s.next).prev = s.prev;
            }
            s.prev = ptr::null_mut();
            self.count -= 1;
            self.dirty_free_bytes -= slices_bytes(s.dirty_map);
            // Pooled churn empties and refills segments often, and a
            // decommitted one costs page faults: keep a few committed. The
            // allowance follows the memory in use (a quarter of it, in
            // segments), so when a burst is freed the spares go back too.
            let keep = match spares {
                Spares::FollowUse => (1 + self.used_bytes / SEG_SIZE / 4).min(MAX_SPARES),
                Spares::AtMost(n) => n,
            };
            s.next = self.spare;
            self.spare = seg;
            self.spare_count += 1;
            self.keep_spares(keep);
        }
    }

    /// Decommit the free slices holding touched pages in every segment of
    /// the set. Returns the bytes decommitted.
    ///
    /// # Safety
    /// * The caller holds the set.
    pub(crate) unsafe fn decommit_free(&mut self) -> usize {
        let mut total = 0;
        let mut seg = self.list;
        while !seg.is_null() {
            // SAFETY: a segment of the held set; free slices hold nothing.
            unsafe {
                let mut todo = (*seg).free_map & (*seg).dirty_map & ALL_USABLE;
                while todo != 0 {
                    let lo = todo.trailing_zeros() as usize;
                    let run = (!(todo >> lo)).trailing_zeros() as usize;
                    os::decommit(slice_addr(seg, lo), run * SLICE_SIZE);
                    let mask = run_mask(lo, run);
                    (*seg).dirty_map &= !mask;
                    todo &= !mask;
                    total += run * SLICE_SIZE;
                }
                seg = (*seg).next;
            }
        }
        self.dirty_free_bytes -= total;
        GLOBAL.decommitted_bytes.add(total);
        total
    }

    /// Give back spare segments beyond `keep` (decommitted into the global
    /// cache, or unmapped).
    ///
    /// # Safety
    /// * The caller holds the set.
    pub(crate) unsafe fn keep_spares(&mut self, keep: usize) {
        while self.spare_count > keep {
            let seg = self.spare;
            // SAFETY: spares are empty segments of the held set, in no list
            // once popped here.
            unsafe {
                self.spare = (*seg).next;
                self.spare_count -= 1;
                give_back(seg);
            }
        }
    }
}

/// The next segment of a set's list after `seg` (null at the end).
///
/// # Safety
/// * `seg` is in the list of a set the caller holds.
pub(crate) unsafe fn next_in_set(seg: *mut Segment) -> *mut Segment {
    // SAFETY: caller contract: the header is mapped.
    unsafe { (*seg).next }
}

/// The slices where runs in use start in `seg` (bit i: slice i).
///
/// # Safety
/// * `seg` is in the list of a set the caller holds.
pub(crate) unsafe fn run_starts(seg: *mut Segment) -> u64 {
    // SAFETY: caller contract: the header is mapped.
    unsafe { (*seg).run_starts }
}

/// Decommit an empty segment and cache it, or unmap it.
///
/// # Safety
/// * `seg` is an empty slab segment the caller owns and no set lists.
unsafe fn give_back(seg: *mut Segment) {
    // SAFETY: caller contract: the segment is ours; no slice holds anything
    // in use, so its contents may go.
    unsafe {
        let dirty = (*seg).dirty_map & ALL_USABLE;
        if dirty != 0 {
            let lo = dirty.trailing_zeros() as usize;
            let hi = 64 - dirty.leading_zeros() as usize;
            let len = (hi - lo) * SLICE_SIZE;
            os::decommit(slice_addr(seg, lo), len);
            GLOBAL.decommitted_bytes.add(len);
            (*seg).dirty_map = 0;
        }
        if SEGMENT_CACHE.put(seg as usize, crate::config::segment_cache_limit()) {
            GLOBAL.cached_segments_bytes.add(SEG_SIZE);
        } else {
            os::unmap(seg.cast(), SEG_SIZE);
            GLOBAL.mapped_bytes.sub(SEG_SIZE);
            GLOBAL.unmapped_bytes.add(SEG_SIZE);
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

    #[test]
    fn find_run_matches_a_plain_scan() {
        let naive =
            |map: u64, n: usize| (0..=64 - n).find(|&i| map & run_mask(i, n) == run_mask(i, n));
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Sparse, dense and mixed maps.
            for map in [x, x | x >> 1 | x >> 2, x & x >> 3, !x] {
                for n in 1..=63 {
                    assert_eq!(find_run(map, n), naive(map, n), "map {map:#x} n {n}");
                }
            }
        }
    }
}
