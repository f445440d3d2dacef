//! Large blocks (above 1 MiB, or over-aligned): each a mapping of its own
//! that starts with a segment header, so `dealloc` finds it like any slab.
//!
//! ```text
//! | header (Segment) | ... | user block (at large_offset) ............ |
//! ^ segment-aligned  ^ HEADER_SIZE, or the requested alignment
//! ```
//!
//! Freed mappings go to a small bounded cache (a few entries, a byte cap);
//! `realloc` grows in place with `mremap`, or moves the pages (not the
//! bytes) to a new aligned place.

use crate::cache::SlotCache;
use crate::config;
use crate::counters::GLOBAL;
use crate::os::{self, PAGE_SIZE};
use crate::segment::{Segment, HEADER_SIZE, SEG_KIND_LARGE, SEG_MASK, SEG_SIZE};
use crate::slab::{descriptor_of, Owner, KIND_LARGE};
use crate::sync::{AtomicU64, Ordering};
use core::ptr;
use core::sync::atomic::AtomicI64;

/// The owner a large block's descriptor names: never a real heap (heaps are
/// page-aligned mappings), so a large free always takes the non-local path
/// of `heap::free`, which hands it to [`free`].
pub(crate) const LARGE_OWNER: Owner = ptr::without_provenance_mut(8);

/// Freed large mappings: value = address | length in pages (the address is
/// segment-aligned, so 22 low bits are free: lengths below 16 GiB).
static LARGE_CACHE: SlotCache<{ config::LARGE_CACHE_SLOTS }> = SlotCache::new();
const PAGES_MASK: usize = SEG_MASK;

fn round_page(n: usize) -> Option<usize> {
    n.checked_add(PAGE_SIZE - 1).map(|v| v & !(PAGE_SIZE - 1))
}

/// Offset of the user block for alignment `align` (a power of two): the
/// header size rounded up to the alignment.
#[inline]
fn offset_for(align: usize) -> usize {
    HEADER_SIZE.next_multiple_of(align)
}

/// The header of the large block at `p` allocated with alignment `align`.
#[inline]
pub(crate) fn header_of(p: *mut u8, align: usize) -> *mut Segment {
    if align >= SEG_SIZE {
        (p as usize - align) as *mut Segment
    } else {
        ((p as usize) & !SEG_MASK) as *mut Segment
    }
}

/// Allocate `size` bytes aligned to `align` as a mapping of its own.
/// Returns the block and whether it is known zeroed.
pub(crate) fn alloc(size: usize, align: usize, cfg: &config::Config) -> (*mut u8, bool) {
    config::offer(cfg);
    config::ensure_init();
    let off = offset_for(align);
    let Some(total) = off.checked_add(size).and_then(round_page) else {
        return (ptr::null_mut(), false);
    };
    let mut zeroed = false;
    let mut seg: *mut Segment = ptr::null_mut();
    if off == HEADER_SIZE {
        let want_pages = total / PAGE_SIZE;
        let v = LARGE_CACHE.take(|v| {
            let pages = v & PAGES_MASK;
            pages >= want_pages && pages <= 2 * want_pages
        });
        if v != 0 {
            seg = (v & !PAGES_MASK) as *mut Segment;
            GLOBAL.large_cached_bytes.sub((v & PAGES_MASK) * PAGE_SIZE);
        }
    }
    if seg.is_null() {
        if crate::limits::would_pass_hard_limit(total) {
            // The caller reclaims and asks again, once (`pool.rs`).
            return (ptr::null_mut(), false);
        }
        let map_align = if align > SEG_SIZE { align } else { SEG_SIZE };
        seg = os::map_aligned(total, map_align).cast();
        if seg.is_null() {
            return (ptr::null_mut(), false);
        }
        GLOBAL.large_mapped_bytes.add(total);
        zeroed = true;
        // SAFETY: a fresh mapping of `total >= HEADER_SIZE` bytes.
        unsafe { (*seg).large_len = total };
    }
    // SAFETY: `seg` is a mapping we own of at least `total` bytes
    // (a cached one is at least as long), starting with room for the header.
    unsafe {
        let p = (seg as *mut u8).add(off);
        (*seg).kind = SEG_KIND_LARGE;
        (*seg).large_offset = off;
        (*seg).large_size = size;
        (*seg).large_sample = if cfg!(feature = "profile") {
            sample_large(size, seg as u64)
        } else {
            0
        };
        init_descriptors(seg);
        crate::hardening::mark_segment(seg as usize, true);
        GLOBAL.large_allocs.add(1);
        GLOBAL.large_live_bytes.add(size);
        (p, zeroed)
    }
}

/// Requested bytes to go before the next sampled large block: one
/// countdown for the whole process (large blocks are mapped one by one, on
/// a path that takes a system call anyway), redrawn when the interval
/// changes.
static LARGE_LEFT: AtomicI64 = AtomicI64::new(0);
static LARGE_EPOCH: AtomicU64 = AtomicU64::new(0);

/// The leak investigator's sampling of a large block of `size` bytes
/// (`seed` varies per block): its record slot, or 0 when not sampled.
fn sample_large(size: usize, seed: u64) -> u32 {
    let mean = crate::profile::interval();
    let epoch = crate::profile::epoch();
    let mut rng = seed ^ os::now_ms().rotate_left(29) ^ size as u64;
    if LARGE_EPOCH.swap(epoch, Ordering::Relaxed) != epoch {
        let gap = crate::profile::next_gap(&mut rng, mean).min(i64::MAX as u64);
        LARGE_LEFT.store(gap as i64, Ordering::Relaxed);
    }
    let left = LARGE_LEFT.fetch_sub(size as i64, Ordering::Relaxed) - size as i64;
    if left >= 0 || mean == 0 {
        return 0;
    }
    let gap = crate::profile::next_gap(&mut rng, mean).min(i64::MAX as u64);
    LARGE_LEFT.store(gap as i64, Ordering::Relaxed);
    crate::profile::record(size, crate::profile::LARGE_CLASS, mean, None).0
}

/// Make slice 0's descriptor a large-block descriptor. The other
/// descriptors of a large mapping are never written, so their `first` is
/// 0 and `slab_of` of any address in the mapping's first segment finds
/// slice 0's.
///
/// # Safety
/// * `seg` is the mapped header of a large block the caller owns.
unsafe fn init_descriptors(seg: *mut Segment) {
    let head = descriptor_of(seg, 0);
    // SAFETY: caller contract: the header is mapped and ours; descriptors
    // are inside it.
    unsafe {
        (*head).kind = KIND_LARGE;
        (*head).owner = LARGE_OWNER;
        (*head).first = 0;
        (*head).class = 0;
        (*head).block_size = 0;
    }
}

/// Free the large block whose header is `seg`.
///
/// # Safety
/// * `seg` is the header of a live large block, given up by the caller.
pub(crate) unsafe fn free(seg: *mut Segment) {
    // SAFETY: caller contract: the block is given up, so the whole mapping
    // is ours to cache or unmap.
    unsafe {
        crate::hardening::mark_segment(seg as usize, false);
        let len = (*seg).large_len;
        if (*seg).large_sample != 0 {
            crate::profile::remove((*seg).large_sample);
            (*seg).large_sample = 0;
        }
        GLOBAL.large_frees.add(1);
        GLOBAL.large_live_bytes.sub((*seg).large_size);
        let cacheable = (*seg).large_offset == HEADER_SIZE
            && len <= config::large_cache_block_max()
            && GLOBAL.large_cached_bytes.get() + len <= config::get().large_cache_bytes;
        if cacheable {
            GLOBAL.large_cached_bytes.add(len);
            if LARGE_CACHE.put(
                seg as usize | (len / PAGE_SIZE),
                config::get().large_cache_entries,
            ) {
                LAST_PUT_MS.store(os::now_ms(), Ordering::Relaxed);
                return;
            }
            GLOBAL.large_cached_bytes.sub(len);
        }
        os::unmap(seg.cast(), len);
        GLOBAL.large_mapped_bytes.sub(len);
        GLOBAL.unmapped_bytes.add(len);
    }
}

/// When a mapping last went into the cache (coarse ms).
static LAST_PUT_MS: AtomicU64 = AtomicU64::new(0);

/// Give back the cached large mappings if they have all been idle for at
/// least `max_idle_ms` (the newest went in that long ago). Returns the bytes
/// unmapped.
pub(crate) fn expire_cache(now: u64, max_idle_ms: u64) -> usize {
    let last = LAST_PUT_MS.load(Ordering::Relaxed);
    if GLOBAL.large_cached_bytes.get() == 0 || now.saturating_sub(last) < max_idle_ms {
        return 0;
    }
    flush_cache()
}

/// Give back every cached large mapping. Returns the bytes unmapped.
pub(crate) fn flush_cache() -> usize {
    let mut freed = 0;
    loop {
        let v = LARGE_CACHE.take(|_| true);
        if v == 0 {
            return freed;
        }
        let len = (v & PAGES_MASK) * PAGE_SIZE;
        GLOBAL.large_cached_bytes.sub(len);
        // SAFETY: the slot's CAS made the cached mapping ours; it holds no
        // live block.
        unsafe { os::unmap((v & !PAGES_MASK) as *mut u8, len) };
        GLOBAL.large_mapped_bytes.sub(len);
        GLOBAL.unmapped_bytes.add(len);
        freed += len;
    }
}

/// Resize the large block at `p` (alignment `align`) to `new_size` bytes
/// (> 1 MiB) in place or by moving its pages. Null when that is not
/// possible; the block is then untouched.
///
/// # Safety
/// * `p` is a live large block allocated with alignment `align`.
pub(crate) unsafe fn realloc(p: *mut u8, align: usize, new_size: usize) -> *mut u8 {
    let seg = header_of(p, align);
    // SAFETY: caller contract: the header of a live large block the caller
    // holds; the tail unmapped lies past the new size, and `mremap` moves
    // or resizes the caller's own whole mapping.
    unsafe {
        let len = (*seg).large_len;
        let off = (*seg).large_offset;
        let old_size = (*seg).large_size;
        let Some(new_len) = off.checked_add(new_size).and_then(round_page) else {
            return ptr::null_mut();
        };
        let done = |seg: *mut Segment| {
            (*seg).large_size = new_size;
            if (*seg).large_sample != 0 {
                let _ = crate::profile::resize(
                    (*seg).large_sample,
                    new_size,
                    crate::profile::LARGE_CLASS,
                );
            }
            GLOBAL.large_live_bytes.add(new_size);
            GLOBAL.large_live_bytes.sub(old_size);
        };
        if new_len <= len {
            // Shrink: give back the tail if it is worth a system call.
            if len - new_len >= 16 * PAGE_SIZE {
                os::unmap((seg as *mut u8).add(new_len), len - new_len);
                (*seg).large_len = new_len;
                GLOBAL.large_mapped_bytes.sub(len - new_len);
                GLOBAL.unmapped_bytes.add(len - new_len);
            }
            done(seg);
            return p;
        }
        if os::remap_in_place(seg.cast(), len, new_len) {
            (*seg).large_len = new_len;
            GLOBAL.large_mapped_bytes.add(new_len - len);
            done(seg);
            return p;
        }
        if align >= SEG_SIZE {
            return ptr::null_mut();
        }
        let moved = os::remap_aligned(seg.cast(), len, new_len, SEG_SIZE).cast::<Segment>();
        if moved.is_null() {
            return ptr::null_mut();
        }
        (*moved).large_len = new_len;
        crate::hardening::mark_segment(seg as usize, false);
        crate::hardening::mark_segment(moved as usize, true);
        GLOBAL.large_mapped_bytes.add(new_len - len);
        done(moved);
        (moved as *mut u8).add(off)
    }
}

/// A large block served as a page run was resized in place from `old` to
/// `new` bytes (both above `POOLED_MAX`): count it.
pub(crate) fn note_resize(old: usize, new: usize) {
    GLOBAL.large_live_bytes.add(new);
    GLOBAL.large_live_bytes.sub(old);
}

/// Usable size of the large block at `p`.
///
/// # Safety
/// * `p` is a live large block allocated with alignment `align`.
pub(crate) unsafe fn usable_size(p: *mut u8, align: usize) -> usize {
    let seg = header_of(p, align);
    // SAFETY: caller contract: the header of a live large block is mapped.
    unsafe { (*seg).large_len - (*seg).large_offset }
}
