//! `PoolAlloc` and its `GlobalAlloc` impl, the allocator's face: which
//! band serves a request (small and pooled classes from the thread heap,
//! large blocks mapped directly), alignment, `realloc` in place, and the
//! pooled blocks' touched extents (`slab::trim_pooled`).

use crate::config::Config;
use crate::heap::alloc::{
    alloc_fast, alloc_fast_as, alloc_pages, alloc_with_zero_hint, grow_run_in_place, PAGE_RUN_MAX,
};
use crate::heap::free::free;
use crate::heap::reclaim::reclaim_for_limit;
use crate::heap::{note_resize, note_run_resize};
use crate::reclaim::{reclaim, ReclaimLevel, Reclaimed};
use crate::segment::{page_run_bytes, SEG_SIZE, SLICE_SIZE};
use crate::size_class::{
    class_of, class_of_small_unchecked, class_size, is_page_class, is_pooled, POOLED_MAX, SMALL_MAX,
};
use crate::slab::{
    block_start, slab_of, trim_pooled, widen_pooled, KIND_CLASS, KIND_LARGE, KIND_PAGES,
};
use crate::{large, limits, stats, valgrind};
use core::alloc::{GlobalAlloc, Layout};
use core::ptr;

/// Alignment every class block has at least, when the size is rounded to it.
const MIN_ALIGN: usize = 16;
// `alloc` relies on it: a size up to `SMALL_MAX` rounded up to an alignment
// up to `MIN_ALIGN` stays at most `SMALL_MAX` (see there).
const _: () = assert!(SMALL_MAX.is_multiple_of(MIN_ALIGN));

/// The allocator. Install it with
///
/// ```
/// use alloc_core::PoolAlloc;
/// #[global_allocator]
/// static GLOBAL: PoolAlloc = PoolAlloc::new();
/// # fn main() { let v = vec![1u8; 10]; assert_eq!(v.len(), 10); }
/// ```
///
/// It can also be called directly through `GlobalAlloc`; every `PoolAlloc`
/// value shares the same process-wide pools.
pub struct PoolAlloc {
    config: Config,
}

impl PoolAlloc {
    /// The allocator with the default configuration.
    pub const fn new() -> Self {
        PoolAlloc {
            config: Config::new(),
        }
    }

    /// The allocator with `config` (used if this is the first `PoolAlloc`
    /// to allocate in the process; environment variables override it).
    pub const fn with_config(config: Config) -> Self {
        PoolAlloc { config }
    }

    /// A snapshot of the allocator's statistics (the same as
    /// [`snapshot`](crate::snapshot)).
    ///
    /// ```
    /// use alloc_core::PoolAlloc;
    /// let a = PoolAlloc::new();
    /// let s = a.snapshot();
    /// assert!(s.classes.len() > 40);
    /// ```
    pub fn snapshot(&self) -> alloc_stats::Snapshot {
        stats::snapshot()
    }

    /// Give memory back to the OS now, as hard as `level` says (the same
    /// as [`reclaim`](crate::reclaim)).
    ///
    /// ```
    /// use alloc_core::{PoolAlloc, ReclaimLevel};
    /// use std::alloc::{GlobalAlloc, Layout};
    /// static A: PoolAlloc = PoolAlloc::new();
    /// let layout = Layout::from_size_align(300 << 10, 16).unwrap();
    /// // SAFETY: a valid non-zero layout; the block is freed with it.
    /// unsafe { A.dealloc(A.alloc(layout), layout) };
    /// let freed = A.reclaim(ReclaimLevel::Aggressive);
    /// assert!(freed.bytes > 0);
    /// ```
    pub fn reclaim(&self, level: ReclaimLevel) -> Reclaimed {
        reclaim(level)
    }

    #[cold]
    #[inline(never)]
    fn alloc_general(&self, size: usize, align: usize, zero: bool) -> *mut u8 {
        if size <= POOLED_MAX && align <= SLICE_SIZE {
            let rounded = (size + align - 1) & !(align - 1);
            if rounded <= POOLED_MAX {
                let c = class_of(rounded);
                if class_size(c).is_multiple_of(align) {
                    return self.alloc_class(c, size, zero, false);
                }
            }
        }
        if let Some(need) = size.checked_add(align) {
            if need <= POOLED_MAX {
                // Over-allocate and align inside the block; dealloc finds the
                // block start from the slab (the Layout says to look).
                let c = class_of(need);
                let p = if is_pooled(c) {
                    self.alloc_pooled(c, size, need, false, false)
                } else {
                    self.alloc_class(c, size, false, false)
                };
                if p.is_null() {
                    return p;
                }
                let q = ((p as usize + align - 1) & !(align - 1)) as *mut u8;
                if zero {
                    // SAFETY: `q..q+size` lies inside the block `p..p+need`.
                    unsafe { zero_block(q, size) };
                }
                return q;
            }
        }
        if align <= MIN_ALIGN && size <= PAGE_RUN_MAX {
            // Large blocks that fit a page segment are page runs too: their
            // pages come from (and go back to) the same bins as the pooled
            // band's, with no `mmap`/`munmap` per block.
            return self.alloc_run(size, zero);
        }
        let (mut p, mut zeroed) = large::alloc(size, align, &self.config);
        if p.is_null() && limits::would_pass_hard_limit(size) {
            // The hard limit refused the mapping: reclaim once, ask again.
            reclaim_for_limit();
            (p, zeroed) = large::alloc(size, align, &self.config);
        }
        if zero && !zeroed && !p.is_null() {
            // SAFETY: the block has at least `size` bytes.
            unsafe { zero_block(p, size) };
        }
        p
    }

    /// A block of class `c` for `size` bytes; with `runs`, a page class
    /// may be served as a page run, and the block may be sampled (a page
    /// run too): 4 KiB-aligned, so not for a bigger alignment.
    #[inline]
    fn alloc_class(&self, c: usize, size: usize, zero: bool, runs: bool) -> *mut u8 {
        if is_pooled(c) {
            return self.alloc_pooled(c, size, size, zero, runs);
        }
        let p = alloc_fast_as(c, size, &self.config, runs);
        if zero && !p.is_null() {
            // SAFETY: the block has at least `size` bytes.
            unsafe { zero_block(p, size) };
        }
        p
    }

    /// A page run for `req` bytes (zeroed with `zero`), counted under the
    /// request's class (or the large band), as its free will be.
    fn alloc_run(&self, req: usize, zero: bool) -> *mut u8 {
        let (p, zeroed) = alloc_pages(req, &self.config);
        if zero && !zeroed && !p.is_null() {
            // SAFETY: the run has at least `req` bytes.
            unsafe { zero_block(p, req) };
        }
        p
    }

    /// A pooled-band block for `req` bytes of which the caller will touch
    /// the first `touch` (more than `req` when aligning inside the block).
    /// Page classes are served as page runs sized to `req` when `runs`
    /// allows and nothing is aligned inside the block.
    #[inline(never)]
    fn alloc_pooled(&self, c: usize, req: usize, touch: usize, zero: bool, runs: bool) -> *mut u8 {
        if runs && touch == req && is_page_class(c) {
            return self.alloc_run(req, zero);
        }
        let (p, zeroed) = if zero {
            alloc_with_zero_hint(c, req, &self.config, runs)
        } else {
            (alloc_fast_as(c, req, &self.config, runs), false)
        };
        if p.is_null() {
            return p;
        }
        // SAFETY: `p` was just allocated by this thread from a pooled slab
        // of its heap, and `touch` fits the block.
        unsafe { trim_pooled(p, touch) };
        if zero && !zeroed {
            // SAFETY: the block has at least `touch >= req` bytes.
            unsafe { zero_block(p, req) };
        }
        p
    }

    /// Free a block allocated with alignment above `MIN_ALIGN`: it may be
    /// aligned inside a larger class block, or be a large block placed past
    /// its header at the alignment.
    ///
    /// # Safety
    /// * `p` is a live block allocated by this allocator with a layout of
    ///   `size` bytes and alignment `align`; the caller gives it up.
    #[cold]
    #[inline(never)]
    unsafe fn dealloc_general(&self, p: *mut u8, size: usize, align: usize) {
        if align >= SEG_SIZE {
            // SAFETY: caller contract: a large block with this alignment,
            // whose header sits `align` bytes before it.
            unsafe { large::free(large::header_of(p, align)) };
            return;
        }
        // SAFETY: caller contract: `p` is live, so its slab descriptor is
        // valid; in a class slab `p` may point inside an over-allocated
        // block, whose start `block_start` finds.
        unsafe {
            let slab = slab_of(p);
            let block = if (*slab).kind == KIND_CLASS {
                block_start(slab, p)
            } else {
                p
            };
            free(block, size);
        }
    }

    /// [`GlobalAlloc::alloc`] for all but small requests aligned to 8 or
    /// less.
    #[inline(never)]
    fn alloc_other(&self, size: usize, align: usize) -> *mut u8 {
        if align <= MIN_ALIGN {
            if size <= SMALL_MAX {
                let rounded = (size + align - 1) & !(align - 1);
                // SAFETY: `SMALL_MAX` is a multiple of every alignment up
                // to `MIN_ALIGN`, so rounding `size <= SMALL_MAX` up to
                // one stays at most `SMALL_MAX`.
                alloc_fast(
                    unsafe { class_of_small_unchecked(rounded) },
                    size,
                    &self.config,
                )
            } else if size <= POOLED_MAX {
                self.alloc_pooled(class_of(size), size, size, false, true)
            } else {
                self.alloc_general(size, align, false)
            }
        } else {
            self.alloc_general(size, align, false)
        }
    }
}

/// Zero `n` bytes at `p` (a block being handed out).
///
/// # Safety
/// * `p..p+n` lies in a block the caller is about to hand out.
#[inline]
unsafe fn zero_block(p: *mut u8, n: usize) {
    // The block may still be marked freed for memcheck: open it first.
    valgrind::make_writable(p, n);
    // SAFETY: caller contract.
    unsafe { ptr::write_bytes(p, 0, n) };
}

impl Default for PoolAlloc {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every block handed out is exclusively the caller's until freed,
// at least `layout.size()` bytes long and aligned to `layout.align()`
// (class blocks: slabs start 64 KiB-aligned and the size is rounded to the
// alignment, or the block is over-allocated and aligned inside; large
// blocks: the mapping is placed at the alignment). Failures return null.
unsafe impl GlobalAlloc for PoolAlloc {
    // NB: always inlined: the small-band path is a few instructions, and
    // with the sampling countdown LLVM stopped inlining it into callers
    // that call it directly (5 instructions per call in the bench harness).
    // With thin LTO, `__rust_alloc` (this, inlined) is now small enough to
    // be inlined into its callers in turn.
    /// # Safety
    /// * As [`GlobalAlloc::alloc`]: `layout` has a non-zero size.
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let size = layout.size();
        let align = layout.align();
        // Small classes step by 8 bytes, so their blocks are 8-aligned and
        // the table's index rounds the size up to 8 itself: up to that
        // alignment a small request is a shift and a load away from its
        // class. Everything else (16-byte alignment, pooled, large) is
        // `alloc_other`, out of line.
        let p = if align <= 8 && size <= SMALL_MAX {
            // SAFETY: `size <= SMALL_MAX`.
            alloc_fast(
                unsafe { class_of_small_unchecked(size) },
                size,
                &self.config,
            )
        } else {
            self.alloc_other(size, align)
        };
        if cfg!(feature = "valgrind") && !p.is_null() {
            valgrind::malloclike(p, size, false);
        }
        p
    }

    /// # Safety
    /// * As [`GlobalAlloc::alloc_zeroed`]: `layout` has a non-zero size.
    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let size = layout.size();
        let align = layout.align();
        let p = if size <= POOLED_MAX && align <= MIN_ALIGN {
            let rounded = (size + align - 1) & !(align - 1);
            self.alloc_class(class_of(rounded), size, true, true)
        } else {
            self.alloc_general(size, align, true)
        };
        if cfg!(feature = "valgrind") && !p.is_null() {
            valgrind::malloclike(p, size, true);
        }
        p
    }

    /// # Safety
    /// * As [`GlobalAlloc::dealloc`]: `ptr` was allocated by this allocator
    ///   with `layout` and is live; the caller gives it up.
    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        valgrind::freelike(ptr);
        if layout.align() <= MIN_ALIGN {
            // SAFETY: caller contract: `ptr` is a live block of ours, and with
            // this alignment it is the block start.
            unsafe { free(ptr, layout.size()) }
        } else {
            // SAFETY: caller contract: `ptr` is a live block of ours
            // allocated with this layout, which is what `dealloc_general`
            // asks.
            unsafe { self.dealloc_general(ptr, layout.size(), layout.align()) }
        }
    }

    /// # Safety
    /// * As [`GlobalAlloc::realloc`]: `ptr` is a live block of this
    ///   allocator allocated with `layout`; `new_size` is non-zero and,
    ///   rounded up to `layout.align()`, does not overflow `isize`.
    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let align = layout.align();
        if align <= MIN_ALIGN {
            // SAFETY: `ptr` is live (caller contract), so its descriptor is
            // valid and its constant fields can be read by any thread.
            unsafe {
                let slab = slab_of(ptr);
                let kind = (*slab).kind;
                if kind == KIND_CLASS {
                    let c = (*slab).class as usize;
                    let rounded = (new_size + align - 1) & !(align - 1);
                    if rounded <= class_size(c) && (c == 0 || rounded > class_size(c - 1)) {
                        if is_pooled(c) && new_size > layout.size() {
                            widen_pooled(ptr, new_size);
                        }
                        note_resize(c, layout.size(), new_size);
                        valgrind::resize_in_place(ptr, layout.size(), new_size);
                        return ptr;
                    }
                } else if kind == KIND_PAGES && new_size <= page_run_bytes(ptr) {
                    // A page run stays if the new size fits its pages and is
                    // of the same class (its accounting unit) or, for a
                    // large block, still large.
                    let old = layout.size();
                    if old > POOLED_MAX && new_size > POOLED_MAX {
                        large::note_resize(old, new_size);
                        note_run_resize(ptr, new_size);
                        valgrind::resize_in_place(ptr, old, new_size);
                        return ptr;
                    }
                    if old <= POOLED_MAX
                        && new_size <= POOLED_MAX
                        && class_of(new_size) == class_of(old)
                    {
                        note_resize(class_of(old), old, new_size);
                        note_run_resize(ptr, new_size);
                        valgrind::resize_in_place(ptr, old, new_size);
                        return ptr;
                    }
                } else if kind == KIND_PAGES
                    && new_size <= PAGE_RUN_MAX
                    && grow_run_in_place(slab, ptr, layout.size(), new_size)
                {
                    // Grown into the free pages after it: no copy.
                    valgrind::resize_in_place(ptr, layout.size(), new_size);
                    return ptr;
                } else if kind == KIND_LARGE && new_size > POOLED_MAX {
                    let q = large::realloc(ptr, align, new_size);
                    if !q.is_null() {
                        if q == ptr {
                            valgrind::resize_in_place(ptr, layout.size(), new_size);
                        } else {
                            // The pages moved with their contents: defined.
                            valgrind::freelike(ptr);
                            valgrind::malloclike(q, new_size, true);
                        }
                        return q;
                    }
                }
            }
        }
        // SAFETY: caller contract: `new_size` rounded to `align` fits isize.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, align) };
        // SAFETY: a valid non-zero layout (caller contract).
        let q = unsafe { self.alloc(new_layout) };
        if !q.is_null() {
            // SAFETY: both blocks are live and distinct; copy the smaller size.
            unsafe {
                ptr::copy_nonoverlapping(ptr, q, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        q
    }
}

/// Usable bytes of the block at `ptr` allocated with `layout` (at least
/// `layout.size()`).
///
/// # Safety
/// * `ptr` is a live block allocated by `PoolAlloc` with `layout`.
pub unsafe fn usable_size(ptr: *mut u8, layout: Layout) -> usize {
    // SAFETY: caller contract.
    unsafe {
        if layout.align() >= SEG_SIZE {
            return large::usable_size(ptr, layout.align());
        }
        let slab = slab_of(ptr);
        if (*slab).kind == KIND_LARGE {
            large::usable_size(ptr, layout.align())
        } else if (*slab).kind == KIND_PAGES {
            page_run_bytes(ptr)
        } else if layout.align() <= MIN_ALIGN {
            (*slab).block_size as usize
        } else {
            layout.size()
        }
    }
}
