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
//! A [`SegmentSet`] is the segments one heap owns. Freed runs stay
//! committed and *idle* (each slice remembers since when), so the workload
//! reuses them without page faults; idle memory goes back to the OS
//! (`madvise`) when it is older than `max_idle`, when the idle memory of the
//! process passes its retained budget, or when utilisation of the pool
//! budget passes the threshold: oldest segment first in each case (see
//! [`SegmentSet::after_return`]). A segment left empty and clean goes to a
//! global bounded cache (mapped, decommitted), else back to the OS. Large
//! blocks use a segment header of their own (see `large.rs`) and no set.
//!
//! The heap's thread changes its set on slow paths only, holding the set's
//! [`SetLock`]; the background reclaimer takes the same lock (try-lock,
//! never waiting) to give back an idle thread's idle memory.

use crate::cache::SlotCache;
use crate::counters::GLOBAL;
pub(crate) use crate::handoff::SetLock;
use crate::os::PAGE_SIZE;
use crate::pages::{bin_of, Node, PageMap, BINS, PAGES};
use crate::{limits, os};
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
/// Bytes of header room per slice for the layer above's descriptor (a power
/// of two, so finding a descriptor is a shift).
pub(crate) const DESCRIPTOR_SIZE: usize = 256;

/// Distinct run tags counted (`Segment::tags`).
pub(crate) const TAGS: usize = 64;

/// What a segment holds.
pub(crate) const SEG_KIND_SLABS: u8 = 1;
/// A segment that is the header of one large block.
pub(crate) const SEG_KIND_LARGE: u8 = 2;
/// A segment whose usable slices are page runs (`pages.rs`).
pub(crate) const SEG_KIND_PAGES: u8 = 3;

const PAGES_PER_SLICE: usize = SLICE_SIZE / PAGE_SIZE;
const _: () = assert!(PAGES == USABLE_SLICES * PAGES_PER_SLICE);
// A slice's idle time becomes its page group's (`grow_pages`), exactly.
const _: () = assert!(crate::pages::GROUP == PAGES_PER_SLICE);

/// Segment header, at the segment's first byte.
#[repr(C)]
pub(crate) struct Segment {
    /// One descriptor per slice, owned by the layer above. Must stay the
    /// first field: descriptors are found from the segment address.
    descriptors: [[u64; DESCRIPTOR_SIZE / 8]; SLICES],
    pub(crate) kind: u8,
    /// Advised `MADV_HUGEPAGE` (the advice outlives decommits and the
    /// segment cache): for every segment under `Config::huge_pages`, else
    /// while it serves page runs under `Config::huge_page_runs`.
    huge: bool,
    /// Bit i set: slice i is free.
    free_map: u64,
    /// Bit i set: slice i may hold non-zero bytes (touched since mapped or
    /// last decommitted).
    dirty_map: u64,
    /// Bit i set: a run in use starts at slice i.
    run_starts: u64,
    /// Bit i set: slice i may hold non-zero bytes even if decommitted
    /// (touched, and not since given back with `MADV_DONTNEED`).
    nonzero_map: u64,
    /// Oldest `idle_since` of the free dirty slices (`u64::MAX`: none).
    idle_min: u64,
    /// Per free dirty slice: when it became idle (coarse ms).
    idle_since: [u64; SLICES],
    /// Per slice: the tag of the run that last held it (the layer above
    /// passes its size class), so memory given back is counted per class.
    tags: [u8; SLICES],
    next: *mut Segment,
    prev: *mut Segment,
    /// Large: length of the whole mapping.
    pub(crate) large_len: usize,
    /// Large: offset of the user block from the segment start.
    pub(crate) large_offset: usize,
    /// Large: bytes the user asked for (for stats).
    pub(crate) large_size: usize,
    /// Large: the leak investigator's sample slot of the block (0: not
    /// sampled; `profile.rs`). Written before the block is handed out,
    /// read and cleared by whoever frees it.
    pub(crate) large_sample: u32,
    /// Page segments: their runs (`pages.rs`).
    pages: PageMap,
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

/// Address of page `i` of a page segment.
fn page_addr(seg: *mut Segment, i: usize) -> *mut u8 {
    seg.cast::<u8>().wrapping_add(SLICE_SIZE + i * PAGE_SIZE)
}

/// The page of its page segment that address `p` lies in.
fn page_index(p: *const u8) -> usize {
    ((p as usize & SEG_MASK) - SLICE_SIZE) / PAGE_SIZE
}

/// Bytes of the page run that starts at `p`.
///
/// # Safety
/// * `p` is the start of a live page run (its map entry was written before
///   the block was handed out, and does not change while it lives).
pub(crate) unsafe fn page_run_bytes(p: *const u8) -> usize {
    // SAFETY: caller contract: the header is mapped; the entry is constant.
    unsafe { (*segment_of(p)).pages.run_len(page_index(p)) * PAGE_SIZE }
}

/// The leak investigator's sample slot of the page run at `p` (0: not
/// sampled) and its quick word (`profile::quick`).
///
/// # Safety
/// * `p` is the start of a live page run held by the caller (the entry is
///   an atomic; only the run's holder changes it, and [`PageMap::take`]
///   clears it before a new run is handed out).
pub(crate) unsafe fn run_sample(p: *const u8) -> (u16, u32) {
    // SAFETY: caller contract: the header is mapped.
    unsafe { (*segment_of(p)).pages.sample(page_index(p)) }
}

/// Set the leak investigator's sample slot and quick word of the page run
/// at `p`.
///
/// # Safety
/// * As [`run_sample`].
pub(crate) unsafe fn set_run_sample(p: *const u8, slot: u16, quick: u32) {
    // SAFETY: caller contract: the header is mapped.
    unsafe {
        (*segment_of(p))
            .pages
            .set_sample(page_index(p), slot, quick)
    }
}

/// For hardened checks: at page address `p` of a page segment, the length
/// in pages of the live run starting there (0: none) and whether the page
/// is free.
///
/// # Safety
/// * `p` is a page of a mapped page segment. The read races with the
///   owner only when the caller frees a run it does not hold, the misuse
///   being diagnosed; any value read leads to a defined answer.
pub(crate) unsafe fn page_state(p: *const u8) -> (usize, bool) {
    // SAFETY: caller contract: the header is mapped.
    unsafe {
        let seg = segment_of(p);
        let i = page_index(p);
        ((*seg).pages.run_len(i), (*seg).pages.free_from(i) > 0)
    }
}

/// The bin node at page address `p` of a page segment.
///
/// # Safety
/// * `p` is a page of a page segment the caller's set holds.
unsafe fn node(p: usize) -> *mut Node {
    let seg = segment_of(p as *const u8);
    // SAFETY: caller contract: the header is mapped; a place projection.
    unsafe { ptr::addr_of_mut!((*seg).pages.nodes[page_index(p as *const u8)]) }
}

/// Unlink `seg` from the list at `head`.
///
/// # Safety
/// * `seg` is in that list, and the caller holds it.
unsafe fn unlink_from(head: &mut *mut Segment, seg: *mut Segment) {
    // SAFETY: caller contract; neighbours in the list are ours too.
    unsafe {
        let s = &mut *seg;
        if s.prev.is_null() {
            *head = s.next;
        } else {
            (*s.prev).next = s.next;
        }
        if !s.next.is_null() {
            (*s.next).prev = s.prev;
        }
        s.prev = ptr::null_mut();
        s.next = ptr::null_mut();
    }
}

/// Put `seg` (in no list) at the head of the list at `head`.
///
/// # Safety
/// * `seg` is in no list; the caller holds the list.
unsafe fn push_front(head: &mut *mut Segment, seg: *mut Segment) {
    // SAFETY: caller contract.
    unsafe {
        (*seg).prev = ptr::null_mut();
        (*seg).next = *head;
        if !head.is_null() {
            (**head).prev = seg;
        }
    }
    *head = seg;
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
    /// The run reads as zero (never touched, or given back with
    /// `MADV_DONTNEED` since).
    pub(crate) fresh: bool,
}

/// What a reclaim gave back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Reclaimed {
    /// Bytes decommitted or unmapped.
    pub(crate) bytes: usize,
    /// Segments that left their set (cached decommitted, or unmapped).
    pub(crate) segments: usize,
    /// `madvise` / `munmap` calls made.
    pub(crate) calls: usize,
}

impl Reclaimed {
    pub(crate) fn add(&mut self, o: Reclaimed) {
        self.bytes += o.bytes;
        self.segments += o.segments;
        self.calls += o.calls;
    }
}

/// Most `madvise` calls one pass makes inside an allocation or free (the
/// pause bound); the rest waits for the next pass.
pub(crate) const CALLS_PER_PASS: usize = 8;

/// The segments one heap owns, and their accounting. Zero is a valid
/// empty set (heaps get theirs from a fresh zeroed mapping).
#[repr(C)]
pub(crate) struct SegmentSet {
    /// Segments holding runs or idle slices (doubly linked).
    list: *mut Segment,
    /// Bytes of free but dirty (touched, not decommitted) slices: idle
    /// memory, reused without page faults.
    dirty_free_bytes: usize,
    /// When the last expiry pass ran (coarse ms).
    last_expiry: u64,
    /// Page segments (`pages.rs`), most recently freed into first.
    pages_list: *mut Segment,
    /// Bytes of free but committed pages of the page segments.
    page_idle_bytes: usize,
    /// Free page runs of the page segments, by size (`pages::bin_of`):
    /// per bin the first page of its first run (0: none).
    bins: [usize; BINS],
    /// Bit b set: bin b holds a run.
    bin_mask: u64,
    /// Expiry learnt from thrash: idle memory expires after `max_idle`
    /// times this (0 or 1: `max_idle` itself; at most [`MAX_STRETCH`]).
    stretch: u64,
    /// When expiry last gave memory back (coarse ms; 0: not since the
    /// last time the set had to grow again).
    last_expiry_release: u64,
    /// When the set last had to grow (new segment, or pages that were not
    /// committed) while its expiry was stretched (coarse ms).
    last_growth: u64,
    /// Page-run changes to `GLOBAL.used_bytes`, `idle_bytes` and
    /// `runs_taken` not yet added there ([`flush_gauges`](Self::flush_gauges)).
    pend_used: isize,
    pend_idle: isize,
    pend_taken: usize,
    /// Page segments in `pages_list`.
    page_segments: usize,
}

/// A set's page segments beyond this many are advised for huge pages
/// (`Config::huge_page_runs`): 32 MiB of page runs, five times what the
/// second-level TLB covers with 4 KiB pages. Below it, the 2 MiB steps of
/// resident memory cost more than the TLB misses they save (measured on
/// the realistic suite's programs, `benches/README.md`: advising every
/// page segment raised their peak RSS from 11.0 to 14.1 MiB, geometric
/// mean, at no gain in time).
const HUGE_AFTER: usize = 8;

/// Most `max_idle` is stretched for a set whose expired memory keeps being
/// needed again (about 4 minutes at the default 1 s).
pub(crate) const MAX_STRETCH: u64 = 256;

impl SegmentSet {
    /// The segments of the set, as a list to walk with [`next_in_set`].
    pub(crate) fn first(&self) -> *mut Segment {
        self.list
    }

    /// The cutoff of "idle since before `cutoff` is expired", stretched by
    /// what this set learnt: memory that expiry gave back and the set then
    /// needed again within ten times its expiry multiplies the stretch by
    /// 8; no growth for twice the stretched expiry halves it. So a heap
    /// whose working set swings keeps the memory of its swings (no
    /// `madvise` and refault every `max_idle`), while one that stops using
    /// memory still gives it back.
    pub(crate) fn stretched(&self, cutoff: u64, now: u64) -> u64 {
        let k = self.stretch.max(1);
        now.saturating_sub(now.saturating_sub(cutoff).saturating_mul(k))
    }

    /// Add the pending page-run changes to the process-wide gauges. Page
    /// runs change them on every allocation and free; with four threads
    /// doing so, those shared cache lines were the hot spot of
    /// `take_pages`. So a set batches them: flushed past 1 MiB or 32 runs,
    /// at every expiry check (a quarter of `max_idle`) and when its thread
    /// exits. The gauges (and so the budgets and a snapshot's in-use and
    /// idle figures) lag by at most that much per heap.
    pub(crate) fn flush_gauges(&mut self) {
        fn apply(g: &crate::counters::Gauge, d: isize) {
            if d > 0 {
                g.add(d as usize);
            } else if d < 0 {
                g.sub(d.unsigned_abs());
            }
        }
        apply(&GLOBAL.used_bytes, self.pend_used);
        apply(&GLOBAL.idle_bytes, self.pend_idle);
        if self.pend_taken > 0 {
            GLOBAL.runs_taken.add(self.pend_taken);
        }
        self.pend_used = 0;
        self.pend_idle = 0;
        self.pend_taken = 0;
    }

    /// Page runs changed the pending gauges: flush past the batch.
    fn gauges_changed(&mut self) {
        if self.pend_taken >= 32
            || self.pend_used.unsigned_abs() + self.pend_idle.unsigned_abs() >= 1 << 20
        {
            self.flush_gauges();
        }
    }

    /// The set had to take memory that was not committed. If expiry gave
    /// memory back shortly before, that was thrash: stretch expiry.
    fn note_growth(&mut self) {
        if self.last_expiry_release == 0 && self.stretch <= 1 {
            return;
        }
        let now = os::now_ms();
        let k = self.stretch.max(1);
        let window = crate::config::get().max_idle_ms.saturating_mul(10 * k);
        if self.last_expiry_release != 0 && now.saturating_sub(self.last_expiry_release) <= window {
            self.stretch = (k * 8).min(MAX_STRETCH);
            self.last_expiry_release = 0;
        }
        self.last_growth = now;
    }

    /// Bytes of free memory that holds touched pages (idle memory): free
    /// slices and free pages of page segments.
    pub(crate) fn dirty_free_bytes(&self) -> usize {
        self.dirty_free_bytes + self.page_idle_bytes
    }

    /// Take a run of `n` free slices: first one that is already touched (no
    /// page faults, no new resident memory), then any. None when the set
    /// must [`grow`](Self::grow) first.
    ///
    /// `tag` (below [`TAGS`]) is remembered per slice: bytes given back
    /// later are counted under it (`GLOBAL.returned_by_tag`).
    ///
    /// # Safety
    /// * The caller holds the set's lock; `1 <= n <= USABLE_SLICES`.
    pub(crate) unsafe fn take_run(&mut self, n: usize, tag: u8) -> Option<Run> {
        // SAFETY: segments in the list are mapped and owned by this set,
        // which the caller holds.
        unsafe {
            if self.dirty_free_bytes >= n * SLICE_SIZE {
                let mut seg = self.list;
                while !seg.is_null() {
                    if let Some(i) = find_run((*seg).free_map & (*seg).dirty_map, n) {
                        return Some(self.claim(seg, i, n, tag));
                    }
                    seg = (*seg).next;
                }
            }
            let mut seg = self.list;
            while !seg.is_null() {
                if let Some(i) = find_run((*seg).free_map, n) {
                    return Some(self.claim(seg, i, n, tag));
                }
                seg = (*seg).next;
            }
            None
        }
    }

    /// Add an empty segment to the set: one from the global cache, else a
    /// new mapping. False when the OS has no memory (or the hard limit
    /// would be passed: the caller reclaims and tries again, see
    /// `heap::alloc::new_slab`).
    ///
    /// # Safety
    /// * The caller holds the set's lock.
    pub(crate) unsafe fn grow(&mut self) -> bool {
        let seg = new_segment(crate::config::get().huge_pages);
        if seg.is_null() {
            return false;
        }
        self.note_growth();
        // SAFETY: the segment is ours: taken from the cache by its CAS, or
        // freshly mapped; cached segments are empty and clean.
        unsafe {
            let s = &mut *seg;
            debug_assert_eq!(s.dirty_map & ALL_USABLE, 0, "cached segment is dirty");
            s.kind = SEG_KIND_SLABS;
            s.free_map = ALL_USABLE;
            s.run_starts = 0;
            s.idle_min = u64::MAX;
            push_front(&mut self.list, seg);
        }
        true
    }

    /// Take a run of `n` pages (`1 <= n <= PAGES`) from the page segments:
    /// the most recently freed run long enough in `n`'s size bin, else the
    /// first run of the smallest bin above it (segregated fit, within 1/8
    /// of best fit); the rest of the run stays free. Returns its address
    /// and whether it reads as zero; None when the set must
    /// [`grow_pages`](Self::grow_pages) first.
    ///
    /// # Safety
    /// * The caller holds the set's lock.
    pub(crate) unsafe fn take_pages(&mut self, n: usize, tag: u8) -> Option<(*mut u8, bool)> {
        // SAFETY: runs in the bins are free runs of this set's page
        // segments, which the caller holds.
        unsafe {
            let (p, len) = self.bin_find(n)?;
            self.bin_remove(p);
            if len > n {
                self.bin_insert(p + n * PAGE_SIZE, len - n);
            }
            let seg = segment_of(p as *const u8);
            let t = (*seg).pages.take(page_index(p as *const u8), n, tag);
            self.pend_taken += 1;
            self.pages_claimed(n, &t);
            Some((p as *mut u8, t.zero))
        }
    }

    /// Grow the page run starting at `p` in place to `n` pages by taking
    /// the free pages right after it (tagged `tag`); false, with nothing
    /// changed, when they are not free.
    ///
    /// # Safety
    /// * The caller holds the set's lock; `p` starts a live run of this set.
    pub(crate) unsafe fn grow_run(&mut self, p: *mut u8, n: usize, tag: u8) -> bool {
        let seg = segment_of(p);
        let i = page_index(p);
        // SAFETY: caller contract: a page segment of this set; a free run
        // right after a run in use starts exactly there and is in a bin.
        unsafe {
            let m = &mut (*seg).pages;
            let old = m.run_len(i);
            if n <= old || i + n > PAGES {
                return n <= old;
            }
            let extra = n - old;
            let after = m.free_from(i + old);
            if after < extra {
                return false;
            }
            let q = page_addr(seg, i + old) as usize;
            self.bin_remove(q);
            if after > extra {
                self.bin_insert(q + extra * PAGE_SIZE, after - extra);
            }
            let t = (*seg).pages.extend(i, extra, tag);
            self.pages_claimed(extra, &t);
            true
        }
    }

    /// `n` free pages went into use, `t` says how many were idle: account
    /// for them (pages that were not committed are growth).
    fn pages_claimed(&mut self, n: usize, t: &crate::pages::Taken) {
        if t.dirty < n {
            self.note_growth();
        }
        self.page_idle_bytes -= t.dirty * PAGE_SIZE;
        self.pend_idle -= (t.dirty * PAGE_SIZE) as isize;
        self.pend_used += (n * PAGE_SIZE) as isize;
        self.gauges_changed();
    }

    /// A free run of at least `n` pages: `(first page, length)`.
    ///
    /// # Safety
    /// * The caller holds the set's lock.
    unsafe fn bin_find(&self, n: usize) -> Option<(usize, usize)> {
        let b = bin_of(n);
        // SAFETY: caller contract: the bins' runs are free runs of ours.
        unsafe {
            // In `n`'s own bin some runs may be shorter than `n`: look at a
            // few for one long enough.
            let mut p = self.bins[b];
            for _ in 0..8 {
                if p == 0 {
                    break;
                }
                let nd = *node(p);
                if nd.len >= n {
                    return Some((p, nd.len));
                }
                p = nd.next;
            }
            // Every run of a higher bin is long enough.
            let above = if b + 1 == BINS {
                0
            } else {
                self.bin_mask & (!0u64 << (b + 1))
            };
            if above == 0 {
                return None;
            }
            let p = self.bins[above.trailing_zeros() as usize];
            Some((p, (*node(p)).len))
        }
    }

    /// File the free run of `len` pages at `p` in its bin.
    ///
    /// # Safety
    /// * The caller holds the set's lock; `p..p+len` is a whole free run of
    ///   one of its page segments, in no bin.
    unsafe fn bin_insert(&mut self, p: usize, len: usize) {
        let b = bin_of(len);
        let head = self.bins[b];
        // SAFETY: caller contract: the nodes are in our segments' headers.
        unsafe {
            *node(p) = Node {
                next: head,
                prev: 0,
                len,
            };
            if head != 0 {
                (*node(head)).prev = p;
            }
        }
        self.bins[b] = p;
        self.bin_mask |= 1 << b;
    }

    /// Take the free run at `p` out of its bin.
    ///
    /// # Safety
    /// * The caller holds the set's lock; a run of its bins starts at `p`.
    unsafe fn bin_remove(&mut self, p: usize) {
        // SAFETY: caller contract: the nodes are in our segments' headers.
        unsafe {
            let Node { next, prev, len } = *node(p);
            let b = bin_of(len);
            if prev == 0 {
                self.bins[b] = next;
            } else {
                (*node(prev)).next = next;
            }
            if next != 0 {
                (*node(next)).prev = prev;
            }
            if self.bins[b] == 0 {
                self.bin_mask &= !(1 << b);
            }
        }
    }

    /// Add a page segment to the set: an empty slab segment of the set
    /// (its idle slices become idle pages), else one from the global cache
    /// or a new mapping. Null when the OS has no memory or the hard limit
    /// refuses. The caller gives the new segment its descriptors
    /// (`slab::init_pages`) before any run of it is handed out.
    ///
    /// # Safety
    /// * The caller holds the set's lock.
    pub(crate) unsafe fn grow_pages(&mut self) -> *mut Segment {
        let cfg = crate::config::get();
        let huge = cfg.huge_pages || (cfg.huge_page_runs && self.page_segments >= HUGE_AFTER);
        // SAFETY: segments in the lists are mapped and ours; a new one is
        // ours alone.
        unsafe {
            let mut seg = self.list;
            while !seg.is_null() && (*seg).free_map != ALL_USABLE {
                seg = (*seg).next;
            }
            if seg.is_null() {
                seg = new_segment(huge);
                if seg.is_null() {
                    return seg;
                }
                self.note_growth();
            } else {
                unlink_from(&mut self.list, seg);
                let idle = slices_bytes((*seg).dirty_map);
                self.dirty_free_bytes -= idle;
                self.page_idle_bytes += idle;
            }
            // An empty slab segment of the set becomes a page segment.
            set_huge(seg, huge);
            let s = &mut *seg;
            let (dirty, nonzero, since) = (s.dirty_map, s.nonzero_map, s.idle_since);
            let slice = |i: usize| 1 + i / PAGES_PER_SLICE;
            s.pages.init(
                |i| dirty >> slice(i) & 1 == 1,
                |i| nonzero >> slice(i) & 1 == 1,
                |i| since[slice(i)],
            );
            s.kind = SEG_KIND_PAGES;
            s.free_map = 0;
            s.run_starts = 0;
            s.dirty_map = 0;
            s.idle_min = u64::MAX;
            push_front(&mut self.pages_list, seg);
            self.page_segments += 1;
            self.bin_insert(page_addr(seg, 0) as usize, PAGES);
            seg
        }
    }

    /// Give back the page run starting at `p`, idle since `since`: it
    /// merges with the free runs around it, and the merged run goes first
    /// in its bin (reused before colder ones). The caller applies the
    /// give-back policy after ([`after_return`](Self::after_return)).
    ///
    /// # Safety
    /// * The caller holds the set's lock; `p` starts a run taken from this
    ///   set that nothing uses any more.
    pub(crate) unsafe fn return_pages(&mut self, p: *mut u8, since: u64) {
        let seg = segment_of(p);
        // SAFETY: caller contract: a page segment of this set; its free
        // neighbours are runs of the bins.
        unsafe {
            debug_assert_eq!((*seg).kind, SEG_KIND_PAGES);
            let g = (*seg).pages.give(page_index(p), since);
            let (mut start, mut len) = (p as usize, g.len);
            if g.before > 0 {
                start -= g.before * PAGE_SIZE;
                self.bin_remove(start);
                len += g.before;
            }
            if g.after > 0 {
                self.bin_remove(p as usize + g.len * PAGE_SIZE);
                len += g.after;
            }
            self.bin_insert(start, len);
            self.page_idle_bytes += g.len * PAGE_SIZE;
            self.pend_idle += (g.len * PAGE_SIZE) as isize;
            self.pend_used -= (g.len * PAGE_SIZE) as isize;
            self.gauges_changed();
        }
    }

    /// # Safety
    /// * `seg` is in the set's list and slices `i..i+n` are free.
    unsafe fn claim(&mut self, seg: *mut Segment, i: usize, n: usize, tag: u8) -> Run {
        // SAFETY: caller contract: the header is mapped and ours.
        let s = unsafe { &mut *seg };
        let mask = run_mask(i, n);
        s.tags[i..i + n].fill(tag);
        debug_assert_eq!(s.free_map & mask, mask, "slices not free");
        s.free_map &= !mask;
        s.run_starts |= 1 << i;
        let fresh = s.nonzero_map & mask == 0;
        let was_idle = slices_bytes(s.dirty_map & mask);
        if was_idle < n * SLICE_SIZE {
            self.note_growth();
        }
        self.dirty_free_bytes -= was_idle;
        GLOBAL.idle_bytes.sub(was_idle);
        GLOBAL.used_bytes.add(n * SLICE_SIZE);
        GLOBAL.runs_taken.add(1);
        s.dirty_map |= mask;
        s.nonzero_map |= mask;
        Run {
            seg,
            first: i,
            fresh,
        }
    }

    /// Return the run of `n` slices at slice `i` of `seg`; its slices are
    /// idle since `since` (coarse ms). The segment stays in the list (the
    /// caller may be walking it); the caller applies the give-back policy
    /// after ([`after_return`](Self::after_return)).
    ///
    /// # Safety
    /// * The caller holds the set's lock; the run was taken from it and
    ///   nothing in it is used any more.
    pub(crate) unsafe fn return_run(&mut self, seg: *mut Segment, i: usize, n: usize, since: u64) {
        // SAFETY: caller contract: the segment is one of ours.
        unsafe {
            let s = &mut *seg;
            let mask = run_mask(i, n);
            debug_assert_eq!(s.free_map & mask, 0, "run not in use");
            debug_assert!(s.run_starts & (1 << i) != 0, "not a run start");
            s.free_map |= mask;
            s.run_starts &= !(1 << i);
            for t in &mut s.idle_since[i..i + n] {
                *t = since;
            }
            s.idle_min = s.idle_min.min(since);
            GLOBAL.used_bytes.sub(n * SLICE_SIZE);
            self.dirty_free_bytes += n * SLICE_SIZE;
            GLOBAL.idle_bytes.add(n * SLICE_SIZE);
            // The segment now has a warm free run: put it first, where the
            // next `take_run` looks first (churn reuses it in O(1), not in a
            // walk over every segment).
            self.move_to_front(seg);
        }
    }

    /// Put `seg`, in the list, at its head.
    ///
    /// # Safety
    /// * The caller holds the set's lock; `seg` is in the list.
    unsafe fn move_to_front(&mut self, seg: *mut Segment) {
        if self.list == seg {
            return;
        }
        // SAFETY: caller contract.
        unsafe {
            unlink_from(&mut self.list, seg);
            push_front(&mut self.list, seg);
        }
    }

    /// The give-back policy, applied whenever idle memory grows, within a
    /// bounded number of system calls:
    /// * past the retained budget (process idle memory above
    ///   `retain_bytes` + `retain_pct` of the memory in use), past the
    ///   utilisation threshold, or past the soft limit: this set's idle
    ///   memory goes back, oldest segment first, until back under;
    /// * every quarter of `max_idle`: idle memory older than `max_idle`
    ///   goes back.
    ///
    /// # Safety
    /// * The caller holds the set's lock.
    pub(crate) unsafe fn after_return(&mut self) -> Reclaimed {
        let mut done = Reclaimed::default();
        let mut calls = CALLS_PER_PASS;
        while self.dirty_free_bytes() > 0 && calls > done.calls && limits::over_idle_budget() {
            // SAFETY: caller contract.
            let r = unsafe { self.decommit_oldest_segment(CALLS_PER_PASS - done.calls) };
            if r.bytes == 0 {
                break;
            }
            done.add(r);
        }
        calls -= done.calls.min(calls);
        let max_idle = crate::config::get().max_idle_ms;
        let now = os::now_ms();
        if calls > 0 && now.saturating_sub(self.last_expiry) >= max_idle / 4 {
            self.last_expiry = now;
            self.flush_gauges();
            let k = self.stretch.max(1);
            if k > 1 && now.saturating_sub(self.last_growth) > max_idle.saturating_mul(2 * k) {
                // One halving per quiet window.
                self.stretch = k / 2;
                self.last_growth = now;
            }
            let cutoff = self.stretched(now.saturating_sub(max_idle), now);
            // SAFETY: caller contract.
            done.add(unsafe { self.decommit_idle(cutoff, calls) });
        }
        done
    }

    /// Decommit the idle slices of the segment whose oldest idle slice is
    /// the oldest of the set.
    ///
    /// # Safety
    /// * The caller holds the set's lock.
    pub(crate) unsafe fn decommit_oldest_segment(&mut self, max_calls: usize) -> Reclaimed {
        let mut oldest: *mut Segment = ptr::null_mut();
        let mut oldest_at = u64::MAX;
        // SAFETY: caller contract: the set's segments are mapped and ours.
        unsafe {
            for head in [self.list, self.pages_list] {
                let mut seg = head;
                while !seg.is_null() {
                    let at = idle_min_of(seg);
                    if at < oldest_at {
                        (oldest, oldest_at) = (seg, at);
                    }
                    seg = (*seg).next;
                }
            }
            if oldest.is_null() {
                return Reclaimed::default();
            }
            self.decommit_in(oldest, u64::MAX, max_calls)
        }
    }

    /// Decommit the idle slices that became idle before `cutoff`
    /// (`u64::MAX`: all of them), with at most `max_calls` system calls;
    /// segments left empty and clean leave the set.
    ///
    /// # Safety
    /// * The caller holds the set's lock.
    pub(crate) unsafe fn decommit_idle(&mut self, cutoff: u64, max_calls: usize) -> Reclaimed {
        let mut done = Reclaimed::default();
        // SAFETY: caller contract: the set's segments are mapped and ours;
        // `decommit_in` may unlink `seg`, so its successor is read first.
        unsafe {
            for pages in [false, true] {
                let mut seg = if pages { self.pages_list } else { self.list };
                while !seg.is_null() && done.calls < max_calls {
                    let next = (*seg).next;
                    if idle_min_of(seg) < cutoff {
                        done.add(self.decommit_in(seg, cutoff, max_calls - done.calls));
                    }
                    seg = next;
                }
            }
        }
        if done.bytes > 0 && cutoff != u64::MAX {
            self.last_expiry_release = os::now_ms().max(1);
        }
        done
    }

    /// Decommit the idle slices of `seg` idle since before `cutoff`, in
    /// runs (one `madvise` each), at most `max_calls`; if `seg` is then
    /// empty and clean it leaves the set.
    ///
    /// # Safety
    /// * The caller holds the set's lock; `seg` is in its list.
    unsafe fn decommit_in(
        &mut self,
        seg: *mut Segment,
        cutoff: u64,
        max_calls: usize,
    ) -> Reclaimed {
        // SAFETY: caller contract.
        if unsafe { (*seg).kind } == SEG_KIND_PAGES {
            // SAFETY: caller contract: a page segment of the set.
            return unsafe { self.decommit_pages_in(seg, cutoff, max_calls) };
        }
        let mut done = Reclaimed::default();
        // SAFETY: caller contract; free dirty slices hold nothing in use.
        unsafe {
            let s = &mut *seg;
            let mut todo = s.free_map & s.dirty_map & ALL_USABLE;
            let mut expired = 0u64;
            while todo != 0 {
                let i = todo.trailing_zeros() as usize;
                todo &= todo - 1;
                if s.idle_since[i] < cutoff {
                    expired |= 1 << i;
                }
            }
            while expired != 0 && done.calls < max_calls {
                let lo = expired.trailing_zeros() as usize;
                let run = (!(expired >> lo)).trailing_zeros() as usize;
                let mask = run_mask(lo, run);
                expired &= !mask;
                done.calls += 1;
                let Some(lazy) = decommit(slice_addr(seg, lo), run * SLICE_SIZE) else {
                    continue; // failed: the slices stay idle and committed
                };
                for &t in &s.tags[lo..lo + run] {
                    GLOBAL.returned_by_tag[t as usize % TAGS].add(SLICE_SIZE);
                }
                s.dirty_map &= !mask;
                if !lazy {
                    s.nonzero_map &= !mask;
                }
                done.bytes += run * SLICE_SIZE;
            }
            self.dirty_free_bytes -= done.bytes;
            GLOBAL.idle_bytes.sub(done.bytes);
            GLOBAL.decommitted_bytes.add(done.bytes);
            // Recompute the segment's oldest idle slice.
            let mut min = u64::MAX;
            let mut left = s.free_map & s.dirty_map & ALL_USABLE;
            while left != 0 {
                let i = left.trailing_zeros() as usize;
                left &= left - 1;
                min = min.min(s.idle_since[i]);
            }
            s.idle_min = min;
            if s.free_map == ALL_USABLE && s.dirty_map & ALL_USABLE == 0 {
                self.unlink(seg);
                done.add(give_back(seg));
            }
        }
        done
    }

    /// Take `seg` out of the list.
    ///
    /// # Safety
    /// * `seg` is an empty, clean segment of the set's list.
    unsafe fn unlink(&mut self, seg: *mut Segment) {
        // SAFETY: caller contract.
        unsafe { unlink_from(&mut self.list, seg) }
    }

    /// Decommit the idle pages of page segment `seg` idle since before
    /// `cutoff`, in runs (one `madvise` each), at most `max_calls`; if the
    /// segment then holds no run and no committed page, it leaves the set.
    ///
    /// # Safety
    /// * The caller holds the set's lock; `seg` is in its page list.
    unsafe fn decommit_pages_in(
        &mut self,
        seg: *mut Segment,
        cutoff: u64,
        max_calls: usize,
    ) -> Reclaimed {
        let mut done = Reclaimed::default();
        // The idle bytes given back below come off `GLOBAL.idle_bytes`,
        // which must hold them already.
        self.flush_gauges();
        // SAFETY: caller contract; idle pages hold nothing in use.
        unsafe {
            let m = &mut (*seg).pages;
            let mut at = 0;
            while done.calls < max_calls {
                let Some((i, n)) = m.next_expired(at, cutoff) else {
                    break;
                };
                at = i + n;
                done.calls += 1;
                let Some(lazy) = decommit(page_addr(seg, i), n * PAGE_SIZE) else {
                    continue; // failed: the pages stay idle and committed
                };
                m.decommitted(i, n, lazy, |t| {
                    GLOBAL.returned_by_tag[t as usize % TAGS].add(PAGE_SIZE)
                });
                done.bytes += n * PAGE_SIZE;
            }
            m.refresh_idle_min();
            self.page_idle_bytes -= done.bytes;
            GLOBAL.idle_bytes.sub(done.bytes);
            GLOBAL.decommitted_bytes.add(done.bytes);
            if m.empty_and_clean() {
                let nonzero = m.nonzero_groups(PAGES_PER_SLICE);
                self.bin_remove(page_addr(seg, 0) as usize);
                unlink_from(&mut self.pages_list, seg);
                self.page_segments -= 1;
                let s = &mut *seg;
                s.kind = SEG_KIND_SLABS;
                s.free_map = ALL_USABLE;
                s.dirty_map = 0;
                s.nonzero_map = nonzero;
                done.add(give_back(seg));
            }
        }
        done
    }
}

/// The oldest idle time of `seg`'s idle memory (`u64::MAX`: none).
///
/// # Safety
/// * `seg` is in a list of a set the caller holds.
unsafe fn idle_min_of(seg: *mut Segment) -> u64 {
    // SAFETY: caller contract: the header is mapped.
    unsafe {
        if (*seg).kind == SEG_KIND_PAGES {
            (*seg).pages.idle_min
        } else {
            (*seg).idle_min
        }
    }
}

/// Advise `seg` (whole, empty: its slices hold no run) for huge pages or
/// take that back, when it is not so already.
///
/// # Safety
/// * `seg` is a mapped segment of the caller's, with no run in use.
unsafe fn set_huge(seg: *mut Segment, on: bool) {
    // SAFETY: caller contract.
    unsafe {
        if (*seg).huge != on {
            // The flag follows what the kernel took (a refusal leaves it,
            // and the pages, as they were).
            let taken = if on {
                os::advise_huge(seg.cast(), SEG_SIZE)
            } else {
                os::advise_not_huge(seg.cast(), SEG_SIZE)
            };
            if taken {
                (*seg).huge = on;
            }
        }
    }
}

/// An empty segment for a set: from the global cache (mapped,
/// decommitted), else a new mapping. Null when the OS has no memory or
/// the hard limit would be passed.
fn new_segment(huge: bool) -> *mut Segment {
    if limits::would_pass_hard_limit(SEG_SIZE) {
        return ptr::null_mut();
    }
    // A cached segment went through the mapping below; its advice outlives
    // decommits, so it is changed only if it is not what is asked.
    let mut seg = SEGMENT_CACHE.take(|_| true) as *mut Segment;
    if !seg.is_null() {
        GLOBAL.cached_segments_bytes.sub(SEG_SIZE);
        // SAFETY: a cached segment is empty, and now ours.
        unsafe { set_huge(seg, huge) };
    } else {
        seg = os::map_aligned(SEG_SIZE, SEG_SIZE).cast();
        if seg.is_null() {
            return seg;
        }
        GLOBAL.mapped_bytes.add(SEG_SIZE);
        // SAFETY: a fresh zeroed mapping, ours.
        unsafe {
            if huge {
                // Before the first touch (the header's, just below), so
                // that touch already maps a huge page; not `set_huge`,
                // whose read of the flag would be that first touch.
                // Advice only: a refusal leaves ordinary pages.
                (*seg).huge = os::advise_huge(seg.cast(), SEG_SIZE);
            }
            (*seg).dirty_map = 0;
            (*seg).nonzero_map = 0;
        }
    }
    crate::hardening::mark_segment(seg as usize, true);
    seg
}

/// Decommit with the configured advice. None when the call failed (the
/// pages stay committed); else whether the pages may keep their contents
/// (`MADV_FREE`).
///
/// # Safety
/// * As [`os::decommit`].
unsafe fn decommit(p: *mut u8, len: usize) -> Option<bool> {
    let lazy = crate::config::get().decommit_free;
    // SAFETY: caller contract.
    unsafe { os::decommit(p, len, lazy) }.then_some(lazy)
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

/// An empty, clean segment leaves its set: into the global cache (mapped,
/// decommitted), else back to the OS.
///
/// # Safety
/// * `seg` is an empty slab segment the caller owns, no set lists it, and
///   none of its slices is committed (`dirty_map` is clear).
unsafe fn give_back(seg: *mut Segment) -> Reclaimed {
    crate::hardening::mark_segment(seg as usize, false);
    let mut done = Reclaimed {
        segments: 1,
        ..Reclaimed::default()
    };
    // SAFETY: caller contract: the segment is ours and holds nothing.
    unsafe {
        debug_assert_eq!((*seg).dirty_map & ALL_USABLE, 0, "segment still dirty");
        if SEGMENT_CACHE.put(seg as usize, crate::config::get().segment_cache) {
            GLOBAL.cached_segments_bytes.add(SEG_SIZE);
        } else {
            os::unmap(seg.cast(), SEG_SIZE);
            GLOBAL.mapped_bytes.sub(SEG_SIZE);
            GLOBAL.unmapped_bytes.add(SEG_SIZE);
            done.calls = 1;
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_stretches_on_thrash_only() {
        // SAFETY: zero is a valid empty set (see `SegmentSet`).
        let mut set: SegmentSet = unsafe { core::mem::zeroed() };
        let now = os::now_ms().max(1_000_000);
        assert_eq!(set.stretched(now - 1000, now), now - 1000, "nothing learnt");
        // Growth with no release before it is not thrash.
        set.note_growth();
        assert_eq!(set.stretch, 0);
        // Expiry gave memory back, and the set grew again at once: thrash.
        set.last_expiry_release = os::now_ms().max(1);
        set.note_growth();
        assert_eq!(set.stretch, 8);
        assert_eq!(set.stretched(now - 1000, now), now - 8000);
        // Each release counts once.
        set.note_growth();
        assert_eq!(set.stretch, 8);
        for _ in 0..3 {
            set.last_expiry_release = os::now_ms().max(1);
            set.note_growth();
        }
        assert_eq!(set.stretch, MAX_STRETCH);
        // A release long before the growth is not thrash.
        // SAFETY: zero is a valid empty set.
        let mut calm: SegmentSet = unsafe { core::mem::zeroed() };
        calm.last_expiry_release = 1;
        calm.note_growth();
        assert_eq!(calm.stretch, 0);
    }

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
