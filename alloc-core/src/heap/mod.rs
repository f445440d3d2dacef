//! Thread heaps: one per thread, reached through a plain TLS load.
//!
//! A heap holds, per class, a queue of slabs that may have free blocks (its
//! head is the *current* slab the fast path pops from), the set of segments
//! it owns, its delayed list, and its counters. By concern:
//!
//! | file | what it owns |
//! | --- | --- |
//! | `mod.rs` | the [`Heap`] type, the TLS slot, the registry of every heap |
//! | `alloc.rs` | allocation: the fast path ([`alloc::alloc_fast`]) and the slow path |
//! | `free.rs` | frees: the owner's fast path ([`free::free`]), remote frees, emptied slabs |
//! | `queue.rs` | the per-class slab queues |
//! | `exit.rs` | thread exit, adoption and sweeping of abandoned heaps |
//! | `reclaim.rs` | giving idle memory back across heaps: this thread's, idle threads', abandoned ones |
//!
//! Heaps are never unmapped. A thread that exits *abandons* its heap (see
//! `exit.rs`); a new thread *adopts* it. So thread churn does not grow
//! memory, and a pointer to a heap stays valid for the life of the process.

pub(crate) mod alloc;
pub(crate) mod exit;
pub(crate) mod free;
mod queue;
pub(crate) mod reclaim;

use crate::counters::{bump, ClassTally, HeapCounters, GLOBAL, TALLY_MAX_ARM};
use crate::handoff::HeapState;
use crate::os;
use crate::remote::DelayedList;
use crate::segment::{Reclaimed, SegmentSet, SetLock};
use crate::size_class::CLASSES;
use crate::slab::{Owner, Slab};
use crate::sync::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
#[cfg(not(all(feature = "static-tls", target_arch = "x86_64", target_os = "linux")))]
use core::cell::Cell;
use core::ptr;
use crossbeam_utils::CachePadded;

/// A thread's heap.
#[repr(C)]
pub(crate) struct Heap {
    /// Per class: the allocation tally (`counters::ClassTally`), the fast
    /// path's one word for the count, the requested bytes and the sample
    /// countdown of its allocations. Holder writes, any thread reads.
    /// First, so its words are at the heap's address (the fast path's
    /// subtraction needs no address arithmetic).
    pub(crate) tally: ClassTally<CLASSES>,
    /// Per class: head of the queue of slabs with (possibly) free blocks;
    /// the sentinel [`empty_slab`] when the queue is empty. The fast path's
    /// only read.
    pub(crate) current: [*mut Slab; CLASSES],
    /// Per class: the last slab of the queue (null when empty).
    pub(crate) tail: [*mut Slab; CLASSES],
    /// Per class counters, written by this heap's thread only.
    pub(crate) counters: HeapCounters<CLASSES>,
    /// Per class: the leak investigator's countdown to the next sample, in
    /// requested bytes (`profile.rs`), as of the tally's last fold: the
    /// tally is armed for it (or for `TALLY_MAX_ARM` of it), and each fold
    /// takes the bytes counted off. Holder only. 0 in a new heap, whose
    /// first slow path draws it.
    pub(crate) sample_left: [i64; CLASSES],
    /// Per class slabs in use (slow paths; written by the holder only).
    pub(crate) slabs: [AtomicU64; CLASSES],
    /// Per class slabs released to the segments so far (their slices
    /// became idle memory); written by the holder only.
    pub(crate) slabs_released: [AtomicU64; CLASSES],
    /// Per class empty slabs kept in the queue for reuse; holder only.
    pub(crate) slabs_kept: [AtomicU64; CLASSES],
    /// Per class: when the kept empty slabs last went from none to some
    /// (coarse ms; 0 while none is kept): the idle age of the oldest kept
    /// slab, approximately (an older one may have been reused since).
    pub(crate) kept_since: [AtomicU64; CLASSES],
    /// Per class blocks carved fresh from a slab (the rest of the
    /// allocations reused a freed block); holder only.
    pub(crate) carved: [AtomicU64; CLASSES],
    /// The segments this heap owns. Changed only by whoever holds
    /// `set_lock` (the heap's thread on slow paths, or the reclaimer).
    pub(crate) segments: SegmentSet,
    /// Guards `segments` (see `segment::SetLock`).
    pub(crate) set_lock: SetLock,
    /// Set by a reclaim of level aggressive or above: the heap's thread
    /// releases its kept empty slabs at its next slow path.
    pub(crate) release_requested: AtomicBool,
    /// When the heap's thread last looked for expired kept slabs (ms).
    pub(crate) last_kept_check: u64,
    /// Slow paths taken (the owner's pass reads the clock on some only).
    pub(crate) slow_paths: u32,
    /// True while the heap gives up everything it can (thread exit, a
    /// sweep, an explicit release): emptied slabs are not kept.
    pub(crate) releasing: bool,
    /// Who holds the heap (its thread, or after exit a claimant).
    pub(crate) state: HeapState,
    /// The leak investigator (`profile.rs`), holder only: the random state
    /// its sample gaps are drawn from, the interval version they were
    /// drawn for, and for page runs (sampled on their own slow path, all
    /// sizes together) the requested bytes to go before the next sample.
    pub(crate) sample_rng: u64,
    pub(crate) profile_epoch: u64,
    pub(crate) run_sample_left: i64,
    /// Its share of the sampler's bookkeeping (a kept record slot, batched
    /// totals: `profile::Local`).
    pub(crate) profile: crate::profile::Local,
    /// Registry link (push-only list of every heap ever made).
    pub(crate) all_next: *mut Heap,
    /// Blocks of full slabs handed over by remote frees. Other threads
    /// write it: on a cache line of its own, away from the hot fields.
    pub(crate) delayed: CachePadded<DelayedList>,
}

struct SyncSlab(Slab);
// SAFETY: the sentinel's fields are never written: its `free` is null so the
// fast path always leaves for the slow path, which never touches it.
unsafe impl Sync for SyncSlab {}

/// The "no slab" sentinel every empty class queue points at.
static EMPTY: SyncSlab = SyncSlab(Slab::empty());

/// The sentinel slab of empty class queues (its `free` is always null).
#[inline(always)]
pub(crate) fn empty_slab() -> *mut Slab {
    ptr::addr_of!(EMPTY.0).cast_mut()
}

/// Every heap ever created (never shrinks; heaps are reused).
static HEAPS: CachePadded<AtomicPtr<Heap>> = CachePadded::new(AtomicPtr::new(ptr::null_mut()));

/// The heap of a thread that has none (yet), where the thread's heap
/// pointer is a `thread_local!` (not `static-tls`): a heap whose queues are
/// all the sentinel [`empty_slab`], so the fast paths need no null test (an
/// allocation finds no block and leaves for the slow path; a free finds
/// another owner and leaves for `free_remote`). [`current_heap`] reads it
/// as null, so no slow path ever sees it.
#[cfg(not(all(feature = "static-tls", target_arch = "x86_64", target_os = "linux")))]
struct NoHeap(Heap);
// SAFETY: the only field ever written is the tally's words (atomics), by
// the fast path's `charge` on threads without a heap; what it counts there
// is never read (their slow path counts the allocation in the heap it
// acquires). Every other field keeps its initial value.
#[cfg(not(all(feature = "static-tls", target_arch = "x86_64", target_os = "linux")))]
unsafe impl Sync for NoHeap {}

/// [`NoHeap`]'s heap: zero, as a fresh heap's mapping, with every queue at
/// `empty`.
#[cfg(not(all(feature = "static-tls", target_arch = "x86_64", target_os = "linux")))]
const fn no_heap(empty: *mut Slab) -> Heap {
    // SAFETY: zero is a valid bit pattern for every field of a heap (null
    // pointers, zero atomics and counters, an empty segment set, false), as
    // `heap_new` relies on for a fresh mapping.
    let mut heap: Heap = unsafe { core::mem::MaybeUninit::zeroed().assume_init() };
    let mut c = 0;
    while c < CLASSES {
        heap.current[c] = empty;
        c += 1;
    }
    heap
}

#[cfg(not(all(feature = "static-tls", target_arch = "x86_64", target_os = "linux")))]
static NO_HEAP: NoHeap = NoHeap(no_heap(ptr::addr_of!(EMPTY.0).cast_mut()));

/// Whether [`fast_heap`] can be null (the `static-tls` slot starts zero).
pub(crate) const FAST_HEAP_MAY_BE_NULL: bool = cfg!(all(
    feature = "static-tls",
    target_arch = "x86_64",
    target_os = "linux"
));

#[cfg(not(all(feature = "static-tls", target_arch = "x86_64", target_os = "linux")))]
thread_local! {
    // const-initialised, no destructor: a plain TLS load, no lazy state.
    static HEAP: Cell<*mut Heap> = const { Cell::new(ptr::addr_of!(NO_HEAP.0).cast_mut()) };
}

/// The calling thread's heap for the fast paths: its heap, or, if it has
/// none (yet), [`NoHeap`]'s (never null). Pass it to slow paths through
/// [`real_heap`].
#[cfg(not(all(feature = "static-tls", target_arch = "x86_64", target_os = "linux")))]
#[inline(always)]
pub(crate) fn fast_heap() -> *mut Heap {
    HEAP.with(|h| h.get())
}

/// A [`fast_heap`] as the slow paths take it: null for none.
#[cfg(not(all(feature = "static-tls", target_arch = "x86_64", target_os = "linux")))]
#[inline(always)]
pub(crate) fn real_heap(heap: *mut Heap) -> *mut Heap {
    if ptr::eq(heap, &NO_HEAP.0) {
        ptr::null_mut()
    } else {
        heap
    }
}

/// Make `heap` (or null: none) the calling thread's heap.
#[cfg(not(all(feature = "static-tls", target_arch = "x86_64", target_os = "linux")))]
fn set_current_heap(heap: *mut Heap) {
    let heap = if heap.is_null() {
        ptr::addr_of!(NO_HEAP.0).cast_mut()
    } else {
        heap
    };
    HEAP.with(|h| h.set(heap));
}

/// The calling thread's heap, or null if it has none (yet).
#[inline(always)]
pub(crate) fn current_heap() -> *mut Heap {
    real_heap(fast_heap())
}

// Feature `static-tls` (the C library, `alloc-preload`): the heap pointer
// in the initial-exec TLS model, one `%fs`-relative load, where a shared
// library's `thread_local!` costs a `__tls_get_addr` call per access (Rust
// has no stable way to choose the model). The library must then be loaded
// with the program (`LD_PRELOAD` or linked), as mimalloc's must.
#[cfg(all(feature = "static-tls", target_arch = "x86_64", target_os = "linux"))]
core::arch::global_asm!(
    ".pushsection .tbss,\"awT\",@nobits",
    ".p2align 3",
    ".globl pool_alloc_thread_heap",
    ".hidden pool_alloc_thread_heap",
    ".type pool_alloc_thread_heap,@object",
    ".size pool_alloc_thread_heap,8",
    "pool_alloc_thread_heap:",
    ".zero 8",
    ".popsection",
    options(att_syntax)
);

/// A [`fast_heap`] as the slow paths take it: null for none (here the
/// same pointer).
#[cfg(all(feature = "static-tls", target_arch = "x86_64", target_os = "linux"))]
#[inline(always)]
pub(crate) fn real_heap(heap: *mut Heap) -> *mut Heap {
    heap
}

/// The calling thread's heap for the fast paths: its heap, or null if it
/// has none (yet).
#[cfg(all(feature = "static-tls", target_arch = "x86_64", target_os = "linux"))]
#[inline(always)]
pub(crate) fn fast_heap() -> *mut Heap {
    let heap: *mut Heap;
    // SAFETY: reads this thread's 8-byte TLS slot defined above (zero, so
    // null, until set), at its initial-exec offset from the thread pointer.
    unsafe {
        core::arch::asm!(
            "movq pool_alloc_thread_heap@GOTTPOFF(%rip), {heap}",
            "movq %fs:({heap}), {heap}",
            heap = out(reg) heap,
            options(att_syntax, nostack, readonly, preserves_flags, pure)
        );
    }
    heap
}

/// Make `heap` (or null) the calling thread's heap.
#[cfg(all(feature = "static-tls", target_arch = "x86_64", target_os = "linux"))]
fn set_current_heap(heap: *mut Heap) {
    // SAFETY: writes this thread's TLS slot defined above (only this
    // thread reads or writes it).
    unsafe {
        core::arch::asm!(
            "movq pool_alloc_thread_heap@GOTTPOFF(%rip), {off}",
            "movq {heap}, %fs:({off})",
            off = out(reg) _,
            heap = in(reg) heap,
            options(att_syntax, nostack, preserves_flags)
        );
    }
}

/// The first heap of the registry; walk on with `(*h).all_next`. Heaps in
/// the registry are mapped for the life of the process.
pub(crate) fn registry_first() -> *mut Heap {
    HEAPS.load(Ordering::Acquire)
}

/// The "class" of a large block served as a page run: counted in the
/// large band, and the tag its pages carry.
pub(crate) const LARGE_RUN: usize = crate::segment::TAGS - 1;
const _: () = assert!(LARGE_RUN == crate::profile::LARGE_CLASS as usize);

/// What a page run of `req` bytes is counted under: its size class, or
/// [`LARGE_RUN`] (the large band) above the pooled band.
pub(crate) fn run_class(req: usize) -> usize {
    if req > crate::size_class::POOLED_MAX {
        LARGE_RUN
    } else {
        crate::size_class::class_of(req)
    }
}

/// Count a page run of `req` bytes allocated (`alloc`) or freed by the
/// calling thread, whose heap is `heap` (null: a thread without one, which
/// only frees).
///
/// # Safety
/// * `heap` is the calling thread's heap, or null.
pub(crate) unsafe fn count_run(heap: *mut Heap, req: usize, alloc: bool) {
    // SAFETY: caller contract.
    unsafe { count_run_as(heap, run_class(req), req, alloc) }
}

/// As [`count_run`], under class `c` (or [`LARGE_RUN`]).
///
/// # Safety
/// * `heap` is the calling thread's heap, or null.
pub(crate) unsafe fn count_run_as(heap: *mut Heap, c: usize, req: usize, alloc: bool) {
    if c == LARGE_RUN {
        if alloc {
            GLOBAL.large_allocs.add(1);
            GLOBAL.large_live_bytes.add(req);
        } else {
            GLOBAL.large_frees.add(1);
            GLOBAL.large_live_bytes.sub(req);
        }
        return;
    }
    // SAFETY: caller contract: our own heap's counters, written by this
    // thread only.
    unsafe {
        if heap.is_null() {
            debug_assert!(!alloc, "allocation without a heap");
            GLOBAL.frees_without_heap[c].on_free_shared(req);
        } else if alloc {
            (*heap).counters.on_alloc(c, req);
        } else {
            (*heap).counters.on_free(c, req);
        }
    }
}

/// Count the free of the page run at `p` of `req` requested bytes: a
/// sampled run drops its record (`profile.rs`) and is counted as its
/// record says; any other as [`count_run`].
///
/// # Safety
/// * `heap` is the calling thread's heap, or null; `p` starts a live page
///   run the caller gives up.
pub(crate) unsafe fn count_run_freed(heap: *mut Heap, p: *mut u8, req: usize) {
    // SAFETY: caller contract.
    unsafe {
        if cfg!(feature = "profile") {
            let (slot, quick) = crate::segment::run_sample(p);
            if slot != 0 {
                crate::segment::set_run_sample(p, 0, 0);
                if quick != 0 {
                    // A page-run sample: counted as any run, and its
                    // record dropped without reading it.
                    let local = if heap.is_null() {
                        None
                    } else {
                        Some(&(*heap).profile)
                    };
                    crate::profile::remove_quick(u32::from(slot), quick, local);
                } else {
                    let (class, size) = crate::profile::remove(u32::from(slot));
                    count_run_as(heap, class as usize, size, false);
                    return;
                }
            }
        }
        count_run(heap, req, false);
    }
}

/// A page run at `p` was resized in place to `req` bytes: a sampled run's
/// record follows (the counters were moved by the caller, under the
/// classes of the old and new sizes).
///
/// # Safety
/// * `p` starts a live page run held by the caller.
pub(crate) unsafe fn note_run_resize(p: *mut u8, req: usize) {
    if !cfg!(feature = "profile") {
        return;
    }
    // SAFETY: caller contract: only the run's holder changes its entry.
    unsafe {
        let (slot, _) = crate::segment::run_sample(p);
        if slot != 0 {
            let quick = crate::profile::resize(u32::from(slot), req, run_class(req) as u32);
            crate::segment::set_run_sample(p, slot, quick);
        }
    }
}

/// Count the page run at `p`, counted at `old` requested bytes, as grown
/// in place to `new`: a free of what it was counted at (for a sampled run,
/// what its record says) and an allocation of `new`; a sampled run's
/// record follows.
///
/// # Safety
/// * `heap` is the calling thread's heap; `p` starts a live page run held
///   by the caller.
pub(crate) unsafe fn count_run_resized(heap: *mut Heap, p: *mut u8, old: usize, new: usize) {
    // SAFETY: caller contract.
    unsafe {
        let slot = if cfg!(feature = "profile") {
            crate::segment::run_sample(p).0
        } else {
            0
        };
        if slot == 0 {
            count_run(heap, old, false);
        } else {
            let (class, size) = crate::profile::counted(u32::from(slot));
            count_run_as(heap, class as usize, size, false);
            let quick = crate::profile::resize(u32::from(slot), new, run_class(new) as u32);
            crate::segment::set_run_sample(p, slot, quick);
        }
        count_run(heap, new, true);
    }
}

/// Every heap's batched sample counts (`profile::Local`), for a reader on
/// any thread (`stats.rs`): heaps add theirs to the shared totals only
/// every few samples, so a quiet thread's last ones are read from its
/// heap.
pub(crate) fn pending_profile() -> crate::profile::Pending {
    let mut p = crate::profile::Pending::new();
    let mut h = registry_first();
    while !h.is_null() {
        // SAFETY: registry heaps are mapped forever; `add_to` reads
        // atomics only.
        unsafe {
            (*h).profile.add_to(&mut p);
            h = (*h).all_next;
        }
    }
    p
}

/// Whether allocations are tallied (`counters::ClassTally`): for the
/// stats, the sampler, or both.
pub(crate) const TALLIED: bool = cfg!(any(feature = "stats", feature = "profile"));

/// Owner thread, the fast path, before anything else: count an allocation
/// of `req` bytes in class `c`'s tally; true when the tally ran out (the
/// slow path folds it first, and samples this allocation when that reached
/// the sample point).
///
/// # Safety
/// * `heap` is the calling thread's (non-null) heap; `c < CLASSES`.
#[inline(always)]
pub(crate) unsafe fn charge(heap: *mut Heap, c: usize, req: usize) -> bool {
    // SAFETY: caller contract: the tally's holder-written words.
    TALLIED && unsafe { (*heap).tally.charge(c, req) }
}

/// Owner thread: did class `c`'s tally run out?
///
/// # Safety
/// * `heap` is the calling thread's heap.
pub(crate) unsafe fn tally_ran_out(heap: *mut Heap, c: usize) -> bool {
    // SAFETY: caller contract.
    TALLIED && unsafe { (*heap).tally.ran_out(c) }
}

/// Owner thread: fold class `c`'s tally into the heap's counters, take the
/// bytes it counted off the class's sample countdown, and arm it for what
/// is left. True when the countdown ran out: the allocation that ran it
/// out is sampled, and the caller draws the next point
/// ([`set_sample_gap`]).
///
/// # Safety
/// * `heap` is the calling thread's heap.
pub(crate) unsafe fn fold_tally(heap: *mut Heap, c: usize) -> bool {
    // SAFETY: caller contract: holder-only fields and the tally's
    // holder-written words.
    unsafe {
        let h = &mut *heap;
        if !cfg!(feature = "profile") {
            h.tally.fold(c, &h.counters, TALLY_MAX_ARM);
            return false;
        }
        let (_, bytes) = h.tally.pending(c);
        let left = h.sample_left[c].saturating_sub(bytes.min(i64::MAX as u64) as i64);
        h.sample_left[c] = left;
        h.tally.fold(c, &h.counters, left.max(0) as u64);
        left < 0
    }
}

/// Owner thread: class `c`'s next sample is `gap` requested bytes from now
/// (from `i64::MAX` on: never). What its tally counted is folded first.
///
/// # Safety
/// * `heap` is the calling thread's heap.
pub(crate) unsafe fn set_sample_gap(heap: *mut Heap, c: usize, gap: u64) {
    // SAFETY: caller contract.
    unsafe {
        let h = &mut *heap;
        h.sample_left[c] = gap.min(i64::MAX as u64) as i64;
        if TALLIED {
            h.tally.fold(c, &h.counters, gap);
        }
    }
}

/// The owner tag slabs of `heap` carry.
#[inline(always)]
pub(crate) fn owner_tag(heap: *mut Heap) -> Owner {
    heap.cast()
}

/// Map a new heap and publish it on the registry. Null when out of memory.
fn heap_new() -> *mut Heap {
    let size = core::mem::size_of::<Heap>().div_ceil(os::PAGE_SIZE) * os::PAGE_SIZE;
    let heap = os::map(size).cast::<Heap>();
    if heap.is_null() {
        return heap;
    }
    GLOBAL.meta_bytes.add(size);
    // SAFETY: a fresh zeroed mapping of the right size; zero is a valid bit
    // pattern for every field (null pointers, zero atomics and counters, an
    // empty segment set, false) except `current`, set to the sentinel here
    // before the heap is published.
    unsafe {
        for c in 0..CLASSES {
            (*heap).current[c] = empty_slab();
        }
        (*heap).state.init_in_use();
        let mut head = HEAPS.load(Ordering::Relaxed);
        loop {
            (*heap).all_next = head;
            match HEAPS.compare_exchange_weak(head, heap, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => head = now,
            }
        }
    }
    heap
}

/// What a reclaim across heaps did.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct HeapsReclaimed {
    /// Memory given back.
    pub(crate) given: Reclaimed,
    /// Empty slabs released to their segments.
    pub(crate) slabs: usize,
}

/// Count heaps by state: (in use, abandoned).
pub(crate) fn heap_counts() -> (usize, usize) {
    let (mut used, mut abandoned) = (0, 0);
    let mut h = registry_first();
    while !h.is_null() {
        // SAFETY: registry heaps are mapped forever; `state` is atomic and
        // `all_next` is written once, before the heap was published.
        unsafe {
            if (*h).state.is_abandoned() {
                abandoned += 1;
            } else {
                used += 1;
            }
            h = (*h).all_next;
        }
    }
    (used, abandoned)
}

/// A block of class `c` was resized in place from `old` to `new` bytes.
pub(crate) fn note_resize(c: usize, old: usize, new: usize) {
    let heap = current_heap();
    if !heap.is_null() {
        // SAFETY: our own heap; its counters are written by this thread only.
        unsafe {
            (*heap).counters.on_resize(c, old, new);
        }
    }
}

/// `slab`, empty and kept (its `idle_since` set), is taken for use or
/// released: it is no longer counted as kept.
///
/// # Safety
/// * The caller holds `heap`, which owns `slab`.
unsafe fn unkeep(heap: *mut Heap, slab: *mut Slab) {
    // SAFETY: caller contract: owner-only fields and counters.
    unsafe {
        if (*slab).idle_since != 0 {
            (*slab).idle_since = 0;
            let c = (*slab).class as usize;
            bump(&(*heap).slabs_kept[c], u64::MAX);
            if (*heap).slabs_kept[c].load(Ordering::Relaxed) == 0 {
                (*heap).kept_since[c].store(0, Ordering::Relaxed);
            }
        }
    }
}

/// Count one more (`+1`) or one fewer (`u64::MAX`, wrapping) slab of class
/// `c` in `heap`.
///
/// # Safety
/// * The caller holds `heap`.
unsafe fn count_slab(heap: *mut Heap, c: usize, delta: u64) {
    // SAFETY: caller contract: only the holder writes `slabs`.
    unsafe { bump(&(*heap).slabs[c], delta) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::size_class::class_of_small;

    /// What the raw thread of the test below saw and did.
    struct Seen {
        block: *mut u8,
        heapless_at_start: bool,
        stand_in_at_start: bool,
        frees_without_heap: u64,
        again: *mut u8,
        heap_after: bool,
    }

    /// A thread without a heap frees first (the block of another thread),
    /// then allocates: the free is counted as a heapless one and the
    /// allocation gives the thread a heap. A raw pthread, so that nothing
    /// (Rust's thread start-up included) allocates before.
    extern "C" fn heapless_thread(arg: *mut libc::c_void) -> *mut libc::c_void {
        // SAFETY: the test passes a `Seen` it keeps alive until the join.
        let seen = unsafe { &mut *arg.cast::<Seen>() };
        let c = class_of_small(24);
        seen.heapless_at_start = current_heap().is_null();
        seen.stand_in_at_start = !fast_heap().is_null() || FAST_HEAP_MAY_BE_NULL;
        let before = GLOBAL.frees_without_heap[c].read().1;
        // SAFETY: the test thread's live block of 24 bytes, given up here.
        unsafe { free::free(seen.block, 24) };
        seen.frees_without_heap = GLOBAL.frees_without_heap[c].read().1 - before;
        seen.again = alloc::alloc_fast(c, 24, crate::config::get());
        seen.heap_after = !current_heap().is_null();
        // SAFETY: the block just allocated, given up.
        unsafe { free::free(seen.again, 24) };
        ptr::null_mut()
    }

    #[test]
    fn a_thread_without_a_heap_frees_then_allocates() {
        let c = class_of_small(24);
        let block = alloc::alloc_fast(c, 24, crate::config::get());
        assert!(!block.is_null());
        let mut seen = Seen {
            block,
            heapless_at_start: false,
            stand_in_at_start: false,
            frees_without_heap: 0,
            again: ptr::null_mut(),
            heap_after: false,
        };
        // SAFETY: `seen` outlives the thread (joined before this returns).
        let ran = unsafe { os::run_raw_thread(heapless_thread, ptr::addr_of_mut!(seen).cast()) };
        assert!(ran, "no thread");
        assert!(seen.heapless_at_start, "the thread had a heap already");
        assert!(seen.stand_in_at_start, "the fast paths saw a null heap");
        // Counted where the stats are compiled in (nothing is, without).
        assert_eq!(
            seen.frees_without_heap,
            u64::from(cfg!(feature = "stats")),
            "the free went uncounted"
        );
        assert!(!seen.again.is_null() && seen.heap_after);
        // Nobody counted anything in the stand-in's counters.
        #[cfg(not(all(feature = "static-tls", target_arch = "x86_64", target_os = "linux")))]
        for c in 0..CLASSES {
            assert_eq!(NO_HEAP.0.counters.read(c), (0, 0, 0, 0), "class {c}");
            assert!(ptr::eq(NO_HEAP.0.current[c], empty_slab()));
        }
    }
}
