//! The C face: `malloc`-family semantics over [`PoolAlloc`], for the
//! `alloc-preload` cdylib (`libpool_alloc.so`) and for any caller that
//! frees without a size.
//!
//! * Sizes: C frees carry no size, so a C block is counted as *requested*
//!   at the size its free will find: [`good_size`] rounds each request to
//!   the bytes the allocator serves for it (the class size, or whole pages
//!   for a page run); a mapped large block keeps its requested size in its
//!   header. Allocation and free then count the same bytes in the same
//!   class, so the stats stay exact for C programs too.
//! * Alignment: `malloc` returns blocks aligned to 16 (8 below 16 bytes,
//!   all such an object can need); [`memalign`] serves any power of two
//!   below the 4 MiB segment size (a bigger one is refused: its block could
//!   not be found again from the pointer alone).
//! * Errors are null returns; the cdylib sets `errno`.
//! * Hardened mode (`hardening.rs`): [`free_c`] and [`realloc`] check the
//!   pointer first and abort with one line naming the misuse: a pointer
//!   outside every live segment of ours (foreign, or a large block freed
//!   already), an interior pointer (not a block start; an aligned block
//!   from [`memalign`] carries a keyed tag just before it), a double free
//!   (the block's first word decodes to a free-list link of its own slab,
//!   or its page run is free). Optional zero on free.
//! * [`fork_prepare`] / [`fork_parent`] / [`fork_child`]: `pthread_atfork`
//!   handlers, so a child forked while other threads allocate can allocate.

use crate::config::Config;
use crate::heap::alloc::{alloc_fast, grow_run_in_place, PAGE_RUN_MAX};
use crate::heap::{exit, free::free_in, note_resize};
use crate::pool::PoolAlloc;
use crate::segment::{page_run_bytes, page_state, segment_of, SEG_KIND_LARGE, SEG_MASK, SEG_SIZE};
use crate::size_class::{
    class_of, class_of_small, class_size, div_by_class, is_page_class, POOLED_MAX, SMALL_MAX,
};
use crate::slab::{block_start, slab_of, Slab, KIND_CLASS, KIND_LARGE, KIND_PAGES};
use crate::sync::Ordering::Relaxed;
use crate::{hardening, large, os};
use core::alloc::{GlobalAlloc, Layout};
use core::ptr;

/// The allocator behind the C functions (configured from the environment,
/// as every `PoolAlloc` is).
static C_ALLOC: PoolAlloc = PoolAlloc::new();
/// Its configuration, for the small-block fast path.
static C_CONFIG: Config = Config::new();

/// The page size `valloc` and `pvalloc` align to.
pub const PAGE_SIZE: usize = os::PAGE_SIZE;

/// Alignments from this one up are refused ([`memalign`]).
pub const MAX_ALIGN: usize = SEG_SIZE;

/// Largest request served: leaves room for rounding and headers.
const MAX_REQUEST: usize = isize::MAX as usize - SEG_SIZE;

/// Smallest alignment `malloc` guarantees for a request of `n` bytes.
fn c_align(n: usize) -> usize {
    if n >= 16 {
        16
    } else {
        8
    }
}

/// `n` (at least 1) rounded up to the alignment `malloc` gives it.
#[inline(always)]
const fn c_rounded(n: usize) -> usize {
    if n >= 16 {
        (n + 15) & !15
    } else if n == 0 {
        8
    } else {
        (n + 7) & !7
    }
}

/// The bytes the allocator serves for a C request of `n` bytes (aligned to
/// `c_align(n)`), which is also what `malloc_usable_size` will report and
/// what its free will count. `None` when `n` is too big to serve.
pub fn good_size(n: usize) -> Option<usize> {
    if n > MAX_REQUEST {
        return None;
    }
    let r = c_rounded(n);
    Some(if r <= SMALL_MAX {
        class_size(class_of_small(r))
    } else if r <= POOLED_MAX {
        let c = class_of(r);
        if is_page_class(c) {
            r.div_ceil(os::PAGE_SIZE) * os::PAGE_SIZE
        } else {
            class_size(c)
        }
    } else if r <= PAGE_RUN_MAX {
        r.div_ceil(os::PAGE_SIZE) * os::PAGE_SIZE
    } else {
        r
    })
}

/// Requests up to this many bytes take `malloc`'s small fast path.
const C_SMALL_MAX: usize = SMALL_MAX - 16;

/// `class_of_small(c_rounded(n))` for every `n <= C_SMALL_MAX`, indexed by
/// `(n + 7) / 8`: `c_rounded(n)` depends only on that index (below 16
/// bytes it rounds to 8, from 16 up to 16, and 8-byte steps never straddle
/// a 16-byte boundary within one index).
const C_SMALL_TABLE: [u8; C_SMALL_MAX.div_ceil(8) + 1] = {
    let mut t = [0u8; C_SMALL_MAX.div_ceil(8) + 1];
    let mut i = 0;
    while i < t.len() {
        // `i * 8` is the largest request with index `i`.
        t[i] = class_of_small(c_rounded(i * 8)) as u8;
        i += 1;
    }
    t
};

/// `malloc(n)`: a block of at least `n` bytes (a unique one for 0), or
/// null when out of memory or `n` is too big.
#[inline]
pub fn malloc(n: usize) -> *mut u8 {
    if n <= C_SMALL_MAX {
        // The small band straight to the fast path: the same class and
        // count as `alloc` (`good_size`), without its layout round trip.
        let c = C_SMALL_TABLE[n.div_ceil(8)] as usize;
        return alloc_fast(c, class_size(c), &C_CONFIG);
    }
    alloc(n, false)
}

/// `calloc(n, size)`: a zeroed block of `n * size` bytes; null on overflow
/// or when out of memory.
pub fn calloc(n: usize, size: usize) -> *mut u8 {
    match n.checked_mul(size) {
        Some(total) => alloc(total, true),
        None => ptr::null_mut(),
    }
}

fn alloc(n: usize, zero: bool) -> *mut u8 {
    let Some(g) = good_size(n) else {
        return ptr::null_mut();
    };
    // `g` is a multiple of `c_align(g)` (class sizes from 16 up are
    // multiples of 16; page runs of 4096), so the layout is valid and the
    // allocator serves exactly `g` bytes for it.
    let Ok(layout) = Layout::from_size_align(g, c_align(g)) else {
        return ptr::null_mut();
    };
    // SAFETY: a valid layout of non-zero size.
    unsafe {
        if zero {
            C_ALLOC.alloc_zeroed(layout)
        } else {
            C_ALLOC.alloc(layout)
        }
    }
}

/// `memalign(align, n)` (and `posix_memalign`, `aligned_alloc`, `valloc`):
/// a block of `n` bytes aligned to `align`. Null when `align` is not a
/// power of two, is 4 MiB or more, or memory runs out.
pub fn memalign(align: usize, n: usize) -> *mut u8 {
    if !align.is_power_of_two() || align >= MAX_ALIGN {
        return ptr::null_mut();
    }
    if align <= c_align(n.max(1)) {
        return malloc(n);
    }
    let n = n.max(1);
    if n > MAX_REQUEST {
        return ptr::null_mut();
    }
    let Ok(layout) = Layout::from_size_align(n, align) else {
        return ptr::null_mut();
    };
    // SAFETY: a valid layout of non-zero size.
    let p = unsafe { C_ALLOC.alloc(layout) };
    if p.is_null() {
        return p;
    }
    // SAFETY: `p` is a live block we just allocated, so its descriptor is
    // mapped and its constant fields readable; `block_start` finds its
    // start (the slab's `aligned_inside` may not be set yet). When `p` is
    // not the start, `p - start >= 16` (both 16-aligned): the tag's 8
    // bytes lie in the block, before `p`, where no caller writes.
    unsafe {
        let slab = slab_of(p);
        if (*slab).kind == KIND_CLASS {
            if block_start(slab, p) != p {
                // Before `p` is handed out: its free must look for the start.
                (*slab).aligned_inside.store(true, Relaxed);
                if hardening::on() {
                    p.sub(8).cast::<usize>().write(aligned_tag(p));
                }
            }
            // Counted at `n`; its free will count the class size.
            note_resize((*slab).class as usize, n, (*slab).block_size as usize);
        }
    }
    p
}

/// What a C free of a pointer finds (see [`inspect`]).
#[derive(Clone, Copy)]
struct Found {
    /// The descriptor's kind (`KIND_CLASS`, `KIND_PAGES`, else a large
    /// block).
    kind: u8,
    /// The block's start.
    start: *mut u8,
    /// The size its allocation was counted at (`good_size` for blocks
    /// `malloc` made; 0 for a large block, whose header keeps it).
    counted: usize,
    /// The descriptor (`slab_of` the pointer and of `start`).
    slab: *mut Slab,
}

/// Whether `slab` is a class slab whose blocks are freed at the pointer
/// the caller holds (no aligned block inside a bigger one, `memalign`):
/// the C free's common case.
///
/// # Safety
/// * `slab` is the mapped descriptor of a live block.
#[inline(always)]
unsafe fn plain_class(slab: *mut Slab) -> bool {
    // SAFETY: caller contract.
    unsafe { (*slab).kind == KIND_CLASS && !(*slab).aligned_inside.load(Relaxed) }
}

/// What a C free of `p` finds.
///
/// # Safety
/// * `p` is a live block from this module's functions.
unsafe fn inspect(p: *mut u8) -> Found {
    // SAFETY: caller contract: the block is live, so its segment header
    // and descriptor are mapped; `kind`, `class` and `block_size` are
    // constant while it lives.
    unsafe {
        let slab = slab_of(p);
        let kind = (*slab).kind;
        let (start, counted) = match kind {
            // Only a slab that served an aligned block inside a bigger
            // one needs the division `block_start` does.
            KIND_CLASS if plain_class(slab) => (p, (*slab).block_size as usize),
            KIND_CLASS => (block_start(slab, p), (*slab).block_size as usize),
            KIND_PAGES => (p, page_run_bytes(p)),
            _ => (p, 0),
        };
        Found {
            kind,
            start,
            counted,
            slab,
        }
    }
}

/// The tag written before an aligned block that does not start its class
/// block (hardened mode).
fn aligned_tag(p: *mut u8) -> usize {
    hardening::encode(p as usize ^ 0x5a5a_a11e_d000_0000, p as usize - 8)
}

/// `p` as 16 hex digits.
fn hex(p: *mut u8) -> [u8; 18] {
    let mut out = *b"0x0000000000000000";
    let v = p as usize;
    for (i, d) in out[2..].iter_mut().enumerate() {
        *d = b"0123456789abcdef"[(v >> (60 - 4 * i)) & 15];
    }
    out
}

/// Abort on a misused pointer: one line on stderr.
fn misuse(what: &[u8], p: *mut u8) -> ! {
    os::abort_with(&[b"pool_alloc: ", what, b" of ", &hex(p), b"; aborting\n"])
}

/// Whether `v` is a block start of `slab` (or null): what a free block's
/// decoded link is.
///
/// # Safety
/// * `slab` is a mapped class slab descriptor.
unsafe fn is_link_of(slab: *mut Slab, v: usize) -> bool {
    // SAFETY: caller contract; the fields read are constant while the
    // slab is a class slab.
    unsafe {
        let start = (*slab).start as usize;
        let size = (*slab).block_size as usize;
        let end = start + (*slab).capacity as usize * size;
        v == 0
            || (v >= start
                && v < end
                && div_by_class(v - start, (*slab).class as usize) * size == v - start)
    }
}

/// [`inspect`] for a pointer a C caller frees, checked first in hardened
/// mode: aborts on a foreign, interior or already freed pointer.
///
/// # Safety
/// * Without hardening: as [`inspect`]. Hardened: `p` may be anything;
///   reading the block's first word races with another thread only when
///   the block is not the caller's (the misuse being diagnosed).
unsafe fn checked(p: *mut u8) -> Found {
    if cfg!(feature = "hardened") {
        // A free before any allocation must see the switch too.
        crate::config::ensure_init();
    }
    if !hardening::on() {
        // SAFETY: caller contract.
        return unsafe { inspect(p) };
    }
    let base = p as usize & !SEG_MASK;
    if !(p as usize).is_multiple_of(8) || !hardening::is_ours(base) {
        misuse(
            b"free of a pointer this allocator does not hold (foreign, or freed already)",
            p,
        );
    }
    // SAFETY: a live segment of ours is at `base` (the segment map), so its
    // header and descriptors are mapped.
    unsafe {
        let slab = slab_of(p);
        match (*slab).kind {
            KIND_CLASS => {
                let start = block_start(slab, p);
                if start != p && p.sub(8).cast::<usize>().read() != aligned_tag(p) {
                    misuse(b"free of an interior pointer", p);
                }
                let link = hardening::decode(start.cast::<usize>().read_volatile(), start as usize);
                if is_link_of(slab, link) {
                    misuse(b"double free", p);
                }
                Found {
                    kind: KIND_CLASS,
                    start,
                    counted: (*slab).block_size as usize,
                    slab,
                }
            }
            KIND_PAGES => {
                let (run, free) = if (p as usize).is_multiple_of(os::PAGE_SIZE)
                    && (p as usize & SEG_MASK) >= crate::segment::SLICE_SIZE
                {
                    page_state(p)
                } else {
                    (0, false)
                };
                if run == 0 {
                    misuse(
                        if free {
                            b"double free"
                        } else {
                            b"free of an interior pointer"
                        },
                        p,
                    );
                }
                Found {
                    kind: KIND_PAGES,
                    start: p,
                    counted: run * os::PAGE_SIZE,
                    slab,
                }
            }
            KIND_LARGE => {
                let seg = segment_of(p);
                if (*seg).large_offset != p as usize - seg as usize {
                    misuse(b"free of an interior pointer", p);
                }
                Found {
                    kind: KIND_LARGE,
                    start: p,
                    counted: 0,
                    slab,
                }
            }
            // Past the first slice of a large block: its slices have no
            // descriptor of their own, the segment says what it is.
            _ if (*segment_of(p)).kind == SEG_KIND_LARGE => {
                misuse(b"free of an interior pointer", p)
            }
            _ => misuse(b"free of a pointer this allocator does not hold", p),
        }
    }
}

/// `free(p)`; null is a no-op.
///
/// # Safety
/// * `p` is null or a live block from this module's functions; the caller
///   gives it up.
#[inline]
pub unsafe fn free_c(p: *mut u8) {
    if p.is_null() {
        return;
    }
    // SAFETY: caller contract: `p` is live (unchecked only when not
    // hardened), so its descriptor is mapped; a plain class block is
    // freed where it starts, with the size it was counted at.
    unsafe {
        if cfg!(feature = "hardened") {
            // A free before any allocation must see the switch too.
            crate::config::ensure_init();
        }
        if !hardening::on() {
            let slab = slab_of(p);
            if plain_class(slab) && !hardening::zero_on_free() {
                free_in(slab, p, (*slab).block_size as usize);
                return;
            }
        }
        free_c_other(p);
    }
}

/// [`free_c`] of a block that is not a plain class block, or of any block
/// when hardened: checked (when hardened), cleared (when asked), then
/// freed at its start.
///
/// # Safety
/// * As [`free_c`], and `p` is not null.
#[cold]
#[inline(never)]
unsafe fn free_c_other(p: *mut u8) {
    // SAFETY: caller contract; a class block is freed at its start with
    // the size it was counted at, a page run likewise, a large block by
    // its header (`free_in` finds it from the descriptor of its first
    // slice); the descriptor `checked` found is the start's too.
    unsafe {
        let f = checked(p);
        if hardening::zero_on_free() {
            let n = if f.kind == KIND_LARGE {
                usable_size(p)
            } else {
                f.counted
            };
            ptr::write_bytes(f.start, 0, n);
        }
        // The descriptor found is `start`'s too (an aligned block's start
        // lies in its slab), so the free does not look it up again.
        free_in(f.slab, f.start, f.counted);
    }
}

/// `malloc_usable_size(p)`: the bytes from `p` to the end of its block;
/// 0 for null.
///
/// # Safety
/// * `p` is null or a live block from this module's functions.
pub unsafe fn usable_size(p: *mut u8) -> usize {
    if p.is_null() {
        return 0;
    }
    // SAFETY: caller contract.
    unsafe {
        let f = inspect(p);
        match f.kind {
            KIND_CLASS | KIND_PAGES => f.counted - (p as usize - f.start as usize),
            _ => large::usable_size(p, 16),
        }
    }
}

/// `realloc(p, n)`: `malloc(n)` for null `p`; frees `p` and returns null
/// for `n == 0` (as glibc does); otherwise the block resized in place
/// when its size stays (or a page run can grow into the free pages after
/// it), else moved. Null when out of memory, `p` then untouched.
///
/// # Safety
/// * `p` is null or a live block from this module's functions; on a
///   non-null return the caller gives `p` up.
pub unsafe fn realloc(p: *mut u8, n: usize) -> *mut u8 {
    if p.is_null() {
        return malloc(n);
    }
    if n == 0 {
        // SAFETY: caller contract.
        unsafe { free_c(p) };
        return ptr::null_mut();
    }
    let Some(g) = good_size(n) else {
        return ptr::null_mut();
    };
    // SAFETY: caller contract: `p` is live and ours (checked when hardened).
    let found = unsafe { checked(p) };
    let Found {
        kind,
        start,
        counted,
        slab,
    } = found;
    if start == p {
        if (kind == KIND_CLASS || kind == KIND_PAGES) && g == counted {
            return p;
        }
        if kind == KIND_PAGES
            && g > counted
            && g <= PAGE_RUN_MAX
            // SAFETY: `p` starts a live page run counted at `counted`,
            // held by the caller; `slab` is its descriptor.
            && unsafe { grow_run_in_place(slab, p, counted, g) }
        {
            return p;
        }
        if kind != KIND_CLASS && kind != KIND_PAGES && g > PAGE_RUN_MAX {
            // SAFETY: a live mapped large block (`memalign` keeps
            // alignments below the segment size, which `header_of` finds
            // with any alignment below it).
            let q = unsafe { large::realloc(p, 16, g) };
            if !q.is_null() {
                return q;
            }
        }
    }
    // SAFETY: caller contract.
    let old = unsafe { usable_size(p) };
    let q = malloc(n);
    if !q.is_null() {
        // SAFETY: both blocks are live and distinct; `old` bytes are
        // readable at `p`, `n` writable at `q`.
        unsafe {
            ptr::copy_nonoverlapping(p, q, old.min(n));
            free_c(p);
        }
    }
    q
}

/// `pthread_atfork` prepare handler: take every heap's segment-set lock,
/// so no lock is held by a thread the child will not have.
pub fn fork_prepare() {
    exit::lock_all_sets();
}

/// `pthread_atfork` parent handler: release what [`fork_prepare`] took.
pub fn fork_parent() {
    exit::unlock_all_sets();
}

/// `pthread_atfork` child handler: release what [`fork_prepare`] took (the
/// child's only thread holds them all).
pub fn fork_child() {
    exit::unlock_all_sets();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_small_table_is_the_class_of_the_rounded_request() {
        for n in 0..=C_SMALL_MAX {
            let want = class_of_small(c_rounded(n));
            assert_eq!(
                C_SMALL_TABLE[n.div_ceil(8)] as usize,
                want,
                "request of {n} bytes"
            );
            // The class serves the request at the alignment C promises.
            assert!(class_size(want) >= n.max(1));
            assert!(class_size(want).is_multiple_of(c_align(n)), "{n}");
        }
    }

    #[test]
    fn c_free_finds_every_kind_of_block_and_its_size() {
        // A plain class block, an aligned block inside a bigger one, a
        // page run and a large block: each freed without its size.
        for (n, align) in [
            (24, 8),
            (100, 64),
            (1000, 512),
            (200_000, 16),
            (8 << 20, 16),
        ] {
            let p = if align <= 16 {
                malloc(n)
            } else {
                memalign(align, n)
            };
            assert!(!p.is_null());
            assert!((p as usize).is_multiple_of(align));
            // SAFETY: `p` is a live block of at least `n` bytes.
            unsafe {
                assert!(usable_size(p) >= n, "{n} bytes aligned to {align}");
                ptr::write_bytes(p, 0xA5, n);
                free_c(p);
            }
        }
    }
}
