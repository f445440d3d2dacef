//! Allocation from a thread's heap.
//!
//! * [`alloc_fast`]: the fast path. One TLS load, the current slab's
//!   free-list pop, a counter add. No lock, no atomic read-modify-write, no
//!   syscall.
//! * `alloc_slow`: everything else, in order: give the thread a heap if it
//!   has none, take frees other threads handed over, find a slab of the
//!   class with free blocks, or make a new slab (sweeping abandoned heaps
//!   before a new segment is taken from the OS).

use super::exit::{heap_acquire, sweep_abandoned};
use super::free::{process_delayed, process_delayed_keep_lock};
use super::reclaim::{reclaim_for_limit, reclaim_other_heaps, release_kept_slabs};
use super::{
    charge, count_run, count_run_resized, count_slab, current_heap, empty_slab, fast_heap,
    fold_tally, owner_tag, queue, real_heap, run_class, set_sample_gap, tally_ran_out, unkeep,
    Heap, FAST_HEAP_MAY_BE_NULL, LARGE_RUN, TALLIED,
};
use crate::config::{self, Config};
use crate::counters::bump;
use crate::profile;
use crate::remote::Block;
use crate::segment::{self, CALLS_PER_PASS, SEG_SIZE};
use crate::size_class::CLASSES;
use crate::slab::{self, Slab, FLAG_FULL};
use crate::sync::Ordering;
use crate::{large, limits, os};
use core::ptr;

/// Pop a block of class `c` from `heap` (a [`fast_heap`]: this thread's
/// heap, or the stand-in of a thread without one, whose queues are all the
/// sentinel)'s current slab, or null.
#[inline(always)]
fn pop_current(heap: *mut Heap, c: usize, req: usize) -> *mut u8 {
    if FAST_HEAP_MAY_BE_NULL && heap.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: `heap` is this thread's heap, or the stand-in: only this
    // thread touches the queues of its heap, and nobody writes the
    // stand-in's (its tally's words are atomics, written by any thread
    // without a heap and never read for a count). `current[c]` is a live
    // slab of the heap or the sentinel, whose `free` is null. A non-null
    // `free` is a block of that slab.
    unsafe {
        // Every allocation is counted in the class's tally first (count,
        // requested bytes and sample countdown in one subtraction); when
        // the tally runs out, nothing is popped and the slow path folds it
        // (and samples this allocation when its point is reached). The
        // slow path takes the count back should it fail.
        if charge(heap, c, req) {
            return ptr::null_mut();
        }
        let slab = *(*heap).current.get_unchecked(c);
        let b = (*slab).free;
        if b.is_null() {
            return ptr::null_mut();
        }
        (*slab).free = Block::unlink(b);
        (*slab).used += 1;
        b.cast()
    }
}

/// Allocate a block of class `c` for a request of `req` bytes: the fast
/// path, falling back to `alloc_slow`. The block may be a sampled one
/// (`profile.rs`): a page run, 4 KiB-aligned.
#[inline(always)]
pub(crate) fn alloc_fast(c: usize, req: usize, cfg: &Config) -> *mut u8 {
    alloc_fast_as(c, req, cfg, true)
}

/// As [`alloc_fast`]; with `sample` false, never a sampled block (for
/// callers that align inside the block or need more than 4 KiB
/// alignment, or a class slab's block).
#[inline(always)]
pub(crate) fn alloc_fast_as(c: usize, req: usize, cfg: &Config, sample: bool) -> *mut u8 {
    let heap = fast_heap();
    let b = pop_current(heap, c, req);
    if !b.is_null() {
        return b;
    }
    alloc_slow(real_heap(heap), c, req, cfg, sample).0
}

/// As [`alloc_fast_as`], also saying whether the block is known to be zero
/// (carved fresh from never-touched memory), so `alloc_zeroed` can skip the
/// memset. It does not zero anything itself.
#[inline]
pub(crate) fn alloc_with_zero_hint(
    c: usize,
    req: usize,
    cfg: &Config,
    sample: bool,
) -> (*mut u8, bool) {
    let heap = fast_heap();
    let b = pop_current(heap, c, req);
    if !b.is_null() {
        return (b, false);
    }
    alloc_slow(real_heap(heap), c, req, cfg, sample)
}

/// Most bytes a page run serves: a page segment's pages. Large blocks up
/// to this (above `POOLED_MAX`) are page runs too.
pub(crate) const PAGE_RUN_MAX: usize = crate::pages::PAGES * os::PAGE_SIZE;

/// A page run for a request of `req` bytes (of a page class,
/// `size_class::is_page_class`, or a large block up to [`PAGE_RUN_MAX`]),
/// counted under [`run_class`]: best fit from the heap's page segments,
/// else from a new one. Returns the run (null when out of memory) and
/// whether it is known zero. Remote frees of page runs wait on the heap's
/// delayed list; they are taken first, so their pages serve this request.
#[inline(never)]
pub(crate) fn alloc_pages(req: usize, cfg: &Config) -> (*mut u8, bool) {
    let c = run_class(req);
    let mut heap = current_heap();
    if heap.is_null() {
        config::offer(cfg);
        heap = heap_acquire();
        if heap.is_null() {
            return (ptr::null_mut(), false);
        }
    }
    let n = req.div_ceil(os::PAGE_SIZE);
    // SAFETY: `heap` is this thread's heap; its segment set is changed only
    // under its lock.
    unsafe {
        let Some((p, zero)) = take_run(heap, n, c) else {
            return (ptr::null_mut(), false);
        };
        if cfg!(feature = "profile") {
            sample_run(heap, p, req, c);
        }
        count_run(heap, req, true);
        if zero && c != LARGE_RUN {
            bump(&(*heap).carved[c], 1);
        }
        (p, zero)
    }
}

/// A run of `n` pages tagged `c` for `heap`: remote frees of its page runs
/// taken first (so their pages can serve it), then best fit from its page
/// segments, else from a new one. `None` when out of memory.
///
/// # Safety
/// * `heap` is the calling thread's heap.
unsafe fn take_run(heap: *mut Heap, n: usize, c: usize) -> Option<(*mut u8, bool)> {
    // SAFETY: caller contract; the segment set is changed only under its
    // lock.
    unsafe {
        // Runs handed back are returned first, and the lock that returned
        // them serves the take too.
        let held = !(*heap).delayed.is_empty() && process_delayed_keep_lock(heap);
        if !held {
            (*heap).set_lock.lock();
        }
        let got = (*heap).segments.take_pages(n, c as u8);
        (*heap).set_lock.unlock();
        got.or_else(|| new_pages(heap, n, c))
    }
}

/// Grow the page run at `p`, of `old` requested bytes, in place to `new`
/// bytes (`old < new <=` [`PAGE_RUN_MAX`]) by taking the free pages right
/// after it: for `realloc`, so a growing buffer is not copied. Only the
/// run's owner thread may (its heap's set is changed under its lock, and
/// other threads' frees of the run's neighbours wait on its delayed list).
/// Counted as a free of `old` and an allocation of `new`, each in its
/// class or the large band. False when the pages are not free.
///
/// # Safety
/// * `p` starts a live page run, of `old` requested bytes, held by the
///   caller; `slab` is its descriptor.
pub(crate) unsafe fn grow_run_in_place(
    slab: *mut Slab,
    p: *mut u8,
    old: usize,
    new: usize,
) -> bool {
    let heap = current_heap();
    // SAFETY: caller contract; `owner` is constant while a run lives, and
    // only the owner's heap (this thread's) changes its set, under its lock.
    unsafe {
        if heap.is_null() || (*slab).owner != owner_tag(heap) {
            return false;
        }
        (*heap).set_lock.lock();
        let grown = (*heap)
            .segments
            .grow_run(p, new.div_ceil(os::PAGE_SIZE), run_class(new) as u8);
        (*heap).set_lock.unlock();
        if !grown {
            return false;
        }
        count_run_resized(heap, p, old, new);
        true
    }
}

/// A run of `n` pages of class `c` from a new page segment of `heap`, with
/// the same steps as [`new_slab`] before a segment is added.
///
/// # Safety
/// * `heap` is the calling thread's heap.
#[cold]
unsafe fn new_pages(heap: *mut Heap, n: usize, c: usize) -> Option<(*mut u8, bool)> {
    let owner = owner_tag(heap);
    sweep_abandoned();
    if limits::over_idle_budget() {
        reclaim_other_heaps(heap, u64::MAX, false, CALLS_PER_PASS);
    }
    let mut got = None;
    // SAFETY: caller contract: the heap is ours; its segment set is
    // changed only under its lock, and a new page segment gets its
    // descriptors before any run of it is handed out.
    unsafe {
        for attempt in 0..2 {
            (*heap).set_lock.lock();
            let seg = (*heap).segments.grow_pages();
            if !seg.is_null() {
                slab::init_pages(seg, owner);
                got = (*heap).segments.take_pages(n, c as u8);
            }
            (*heap).set_lock.unlock();
            if got.is_some() || attempt == 1 || !limits::would_pass_hard_limit(SEG_SIZE) {
                break;
            }
            reclaim_for_limit();
        }
    }
    got
}

/// The tally's slow path for class `c`: when the leak investigator's
/// interval changed, redraw the heap's sample points (`profile.rs`); when
/// the class's tally ran out, fold it, and when this allocation reached
/// the class's sample point, serve it as a sampled page run (counted in
/// class `c`) and draw the next point. `None`: not sampled (not due,
/// every record slot live, or no memory for the run; the point is then
/// redrawn all the same), the caller serves it as usual. With `sample`
/// false (a caller that cannot take a page run) a due sample is skipped
/// and the point redrawn.
///
/// # Safety
/// * `heap` is the calling thread's heap.
#[cold]
#[inline(never)]
unsafe fn refill_tally(
    heap: *mut Heap,
    c: usize,
    req: usize,
    sample: bool,
) -> Option<(*mut u8, bool)> {
    // SAFETY: caller contract: the heap, its counters and its segment set
    // (under its lock) are ours.
    unsafe {
        if cfg!(feature = "profile") {
            redraw_if_changed(heap);
        }
        if !tally_ran_out(heap, c) || !fold_tally(heap, c) {
            return None;
        }
        let mean = profile::interval();
        let gap = profile::next_gap(&mut (*heap).sample_rng, mean);
        let slot = if sample {
            profile::record(req, c as u32, mean, Some(&(*heap).profile)).0
        } else {
            0
        };
        let got = if slot == 0 {
            None
        } else {
            sampled_run(heap, req, c, slot)
        };
        set_sample_gap(heap, c, gap);
        got
    }
}

/// A page run for a sample of `req` bytes of class `c` recorded in `slot`,
/// marked with it; `None` (and the record dropped) when out of memory.
///
/// # Safety
/// * `heap` is the calling thread's heap.
unsafe fn sampled_run(heap: *mut Heap, req: usize, c: usize, slot: u32) -> Option<(*mut u8, bool)> {
    let n = req.div_ceil(os::PAGE_SIZE).max(1);
    // SAFETY: caller contract; the run is ours until handed out, so its
    // map entry is ours to mark.
    unsafe {
        match take_run(heap, n, c) {
            Some((p, zero)) => {
                // No quick word: its free must read the record to count it
                // in its class (it is counted as one of its class's
                // blocks, not as a page run).
                segment::set_run_sample(p, slot as u16, 0);
                Some((p, zero))
            }
            None => {
                profile::remove(slot);
                None
            }
        }
    }
}

/// A page run `p` of `req` bytes, counted under `c`, was just taken by
/// `alloc_pages`: sample it when the heap's page-run sample point is
/// reached (page runs are sampled on their own slow path, all sizes on
/// one point).
///
/// # Safety
/// * `heap` is the calling thread's heap; `p` a run it is handing out.
unsafe fn sample_run(heap: *mut Heap, p: *mut u8, req: usize, c: usize) {
    // SAFETY: caller contract.
    unsafe {
        redraw_if_changed(heap);
        (*heap).run_sample_left = (*heap).run_sample_left.wrapping_sub(req as i64);
        if (*heap).run_sample_left >= 0 {
            return;
        }
        let mean = profile::interval();
        (*heap).run_sample_left = gap_left(profile::next_gap(&mut (*heap).sample_rng, mean));
        let (slot, quick) = profile::record(req, c as u32, mean, Some(&(*heap).profile));
        if slot != 0 {
            segment::set_run_sample(p, slot as u16, quick);
        }
    }
}

/// Redraw every sample point of `heap` if the interval changed since they
/// were drawn (or never were).
///
/// # Safety
/// * `heap` is the calling thread's heap.
unsafe fn redraw_if_changed(heap: *mut Heap) {
    // SAFETY: caller contract: holder-only fields and counters.
    unsafe {
        let epoch = profile::epoch();
        if (*heap).profile_epoch == epoch {
            return;
        }
        (*heap).profile_epoch = epoch;
        if (*heap).sample_rng == 0 {
            (*heap).sample_rng = (heap as u64) ^ os::now_ms().rotate_left(32) ^ os::thread_id();
        }
        let mean = profile::interval();
        for c in 0..CLASSES {
            set_sample_gap(heap, c, profile::next_gap(&mut (*heap).sample_rng, mean));
        }
        (*heap).run_sample_left = gap_left(profile::next_gap(&mut (*heap).sample_rng, mean));
    }
}

/// A gap as a countdown (from `i64::MAX` on: never).
fn gap_left(gap: u64) -> i64 {
    gap.min(i64::MAX as u64) as i64
}

/// The slow path: take pending frees, find a slab with space, or make one.
/// Returns the block (null when out of memory) and whether it is known
/// zero.
#[cold]
#[inline(never)]
fn alloc_slow(
    mut heap: *mut Heap,
    c: usize,
    req: usize,
    cfg: &Config,
    sample: bool,
) -> (*mut u8, bool) {
    // The fast path counted this allocation in the class's tally when it
    // had a heap; one acquired here has not.
    let tallied = TALLIED && !heap.is_null();
    if heap.is_null() {
        config::offer(cfg);
        heap = heap_acquire();
        if heap.is_null() {
            return (ptr::null_mut(), false);
        }
    }
    // SAFETY: `heap` is this thread's heap.
    unsafe {
        let got = serve_slow(heap, c, req, sample);
        if got.0.is_null() {
            if tallied {
                (*heap).counters.undo_alloc(c, req);
            }
        } else if !tallied {
            (*heap).counters.on_alloc(c, req);
        }
        got
    }
}

/// [`alloc_slow`]'s work, counting nothing: fold the class's tally if it
/// ran out (and sample), take pending frees, find a slab with space, or
/// make one.
///
/// # Safety
/// * `heap` is the calling thread's heap.
unsafe fn serve_slow(heap: *mut Heap, c: usize, req: usize, sample: bool) -> (*mut u8, bool) {
    // SAFETY: caller contract: every slab reached from the heap's queues is
    // a live slab it owns.
    unsafe {
        if tally_ran_out(heap, c)
            || (cfg!(feature = "profile") && (*heap).profile_epoch != profile::epoch())
        {
            if let Some(got) = refill_tally(heap, c, req, sample) {
                return got;
            }
        }
        process_delayed(heap);
        owner_pass(heap);
        let mut slab = (*heap).current[c];
        while !slab.is_null() && slab != empty_slab() {
            let next = (*slab).next;
            if slab::collect_frees(slab) {
                return (take_from(heap, slab), false);
            }
            if (*slab).reserved < (*slab).capacity {
                return take_fresh(heap, slab, c);
            }
            // No space: mark full (unless remote frees raced in) and drop it
            // from the queue; a later free brings it back.
            let (raced, n) = (*slab).thread_free.try_mark_full();
            if !raced.is_null() {
                slab::take_remote(&mut *slab, raced, n);
                slab::collect_frees(slab);
                return (take_from(heap, slab), false);
            }
            queue::remove(heap, slab);
            (*slab).owner_flags |= FLAG_FULL;
            slab = next;
        }
        let slab = new_slab(heap, c);
        if slab.is_null() {
            return (ptr::null_mut(), false);
        }
        queue::push_front(heap, slab);
        take_fresh(heap, slab, c)
    }
}

/// A new slab of class `c` for `heap`: from the free slices of its
/// segments (idle ones first), else from a new segment. Before a new
/// segment: sweep abandoned heaps (which may give segments back to the
/// cache), and past the retained budget or the threshold, reclaim other
/// heaps' idle memory. When the hard limit refuses the segment, reclaim
/// everything reclaimable once and try again. Null when out of memory.
///
/// # Safety
/// * `heap` is the calling thread's heap.
unsafe fn new_slab(heap: *mut Heap, c: usize) -> *mut Slab {
    let owner = owner_tag(heap);
    // SAFETY: caller contract: the heap is ours; its segment set is changed
    // only under its lock.
    unsafe {
        (*heap).set_lock.lock();
        let mut slab = slab::slab_new(&mut (*heap).segments, owner, c);
        (*heap).set_lock.unlock();
        if slab.is_null() {
            sweep_abandoned();
            if limits::over_idle_budget() {
                reclaim_other_heaps(heap, u64::MAX, false, CALLS_PER_PASS);
            }
            for attempt in 0..2 {
                (*heap).set_lock.lock();
                if (*heap).segments.grow() {
                    slab = slab::slab_new(&mut (*heap).segments, owner, c);
                }
                (*heap).set_lock.unlock();
                if !slab.is_null() || attempt == 1 || !limits::would_pass_hard_limit(SEG_SIZE) {
                    break;
                }
                // The hard limit refused the segment: one emergency reclaim.
                reclaim_for_limit();
            }
        }
        if !slab.is_null() {
            count_slab(heap, c, 1);
        }
        slab
    }
}

/// The owner's periodic pass, at most every quarter of `max_idle` (or when
/// a reclaim asked): kept empty slabs idle longer than `max_idle` (all of
/// them when asked) go back to the segments, and the segment set applies
/// its give-back policy (expired idle memory goes back to the OS).
///
/// # Safety
/// * `heap` is the calling thread's heap.
unsafe fn owner_pass(heap: *mut Heap) {
    // SAFETY: caller contract.
    unsafe {
        let asked = (*heap).release_requested.load(Ordering::Relaxed);
        // NB: the clock is read on one slow path in 32 only: small-class
        // churn takes this path every few hundred operations, and a clock
        // read each time showed in its instruction count.
        (*heap).slow_paths = (*heap).slow_paths.wrapping_add(1);
        if !asked && !(*heap).slow_paths.is_multiple_of(32) {
            return;
        }
        let max_idle = config::get().max_idle_ms;
        let now = os::now_ms();
        if !asked && now.saturating_sub((*heap).last_kept_check) < max_idle / 4 {
            return;
        }
        (*heap).last_kept_check = now;
        if asked {
            (*heap).release_requested.store(false, Ordering::Relaxed);
        }
        let cutoff = if asked {
            u64::MAX
        } else {
            now.saturating_sub(max_idle)
        };
        release_kept_slabs(heap, cutoff);
        (*heap).set_lock.lock();
        (*heap).segments.after_return();
        (*heap).set_lock.unlock();
        large::expire_cache(now, max_idle);
    }
}

/// Pop a block from `slab.free` and make `slab` current.
///
/// # Safety
/// * `slab` is in its class's queue of `heap`, the calling thread's heap,
///   and its `free` list is not empty.
unsafe fn take_from(heap: *mut Heap, slab: *mut Slab) -> *mut u8 {
    // SAFETY: caller contract: owner-only fields of our slab; `free` holds
    // a block.
    unsafe {
        queue::move_front(heap, slab);
        unkeep(heap, slab);
        let b = (*slab).free;
        (*slab).free = Block::unlink(b);
        (*slab).used += 1;
        b.cast()
    }
}

/// Carve from `slab` and make it current. Returns the block and whether it
/// is known zero.
///
/// # Safety
/// * `slab` is in class `c`'s queue of `heap`, the calling thread's heap,
///   with `reserved < capacity`.
unsafe fn take_fresh(heap: *mut Heap, slab: *mut Slab, c: usize) -> (*mut u8, bool) {
    // SAFETY: caller contract: owner-only fields of our slab, with blocks
    // left to carve (small classes carve onto `free`, which is then not
    // empty).
    unsafe {
        queue::move_front(heap, slab);
        unkeep(heap, slab);
        let fresh = (*slab).fresh;
        let before = (*slab).reserved;
        let direct = slab::extend(slab);
        bump(&(*heap).carved[c], u64::from((*slab).reserved - before));
        if !direct.is_null() {
            if crate::hardening::on() && !fresh {
                // A stale link from the memory's earlier use must not make
                // this block look free (hardened double-free check).
                direct.cast::<usize>().write(0);
            }
            (*slab).used += 1;
            return (direct, fresh);
        }
        (take_from(heap, slab), false)
    }
}
