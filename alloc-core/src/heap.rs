//! Thread heaps: one per thread, reached through a plain TLS load.
//!
//! A heap holds, per class, a queue of slabs that may have free blocks (its
//! head is the *current* slab the fast path pops from), the segments it
//! owns, its delayed list, and its counters.
//!
//! Heaps are never unmapped. A thread that exits *abandons* its heap: empty
//! slabs and segments go back (decommitted) at once, and the heap waits on
//! the registry, with its remaining slabs, until a new thread *adopts* it.
//! Remote frees keep arriving at an abandoned heap's slabs; any thread that
//! needs a new segment first *sweeps* abandoned heaps, releasing the slabs
//! those frees emptied. So thread churn does not grow memory.
//!
//! Thread exit is detected with a `pthread_key_create` destructor (Rust's
//! TLS destructors may allocate on registration; a pthread key does not).

use crate::config::{self, Config};
use crate::handoff::HeapState;
use crate::os;
use crate::remote::{Block, DelayedList, Pushed};
use crate::segment::{
    segment_of_slab, slab_alloc, slab_free, spares_give_back, spares_keep, Segment,
};
use crate::size_class::{is_pooled, CLASSES};
use crate::slab::{self, Slab, FLAG_FULL, KIND_CLASS, KIND_LARGE};
use crate::stats::{ClassCounters, GLOBAL};
use crate::sync::{AtomicPtr, AtomicU64, AtomicU8, Ordering};
use core::cell::Cell;
use core::ptr;

/// A thread's heap.
#[repr(C)]
pub(crate) struct Heap {
    /// Per class: head of the queue of slabs with (possibly) free blocks;
    /// `EMPTY_SLAB` when the queue is empty. The fast path's only read.
    pub(crate) current: [*mut Slab; CLASSES],
    /// Per class: the last slab of the queue (null when empty).
    pub(crate) tail: [*mut Slab; CLASSES],
    /// Per class counters, written by this heap's thread only.
    pub(crate) counters: [ClassCounters; CLASSES],
    /// Per class slabs in use (slow paths).
    pub(crate) slabs: [AtomicU64; CLASSES],
    /// Blocks of full slabs handed over by remote frees.
    pub(crate) delayed: DelayedList,
    /// Segments owned (all of them, full or not).
    pub(crate) segments: *mut Segment,
    /// Empty segments kept for reuse without a system call (a stack linked
    /// through `Segment::next`), and how many.
    pub(crate) spare: *mut Segment,
    pub(crate) spare_count: usize,
    /// Segments in `segments`.
    pub(crate) segment_count: usize,
    /// Bytes of slabs in use (slices taken by slabs) in `segments`.
    pub(crate) slab_bytes: usize,
    /// Bytes of free but dirty (touched, not decommitted) slices in
    /// `segments`: kept to be reused without page faults, within a budget.
    pub(crate) dirty_free_bytes: usize,
    pub(crate) abandoning: bool,
    pub(crate) state: HeapState,
    /// Registry link (push-only list of every heap ever made).
    pub(crate) all_next: *mut Heap,
}

struct SyncSlab(Slab);
// SAFETY: the sentinel's fields are never written: its `free` is null so the
// fast path always leaves for the slow path, which never touches it.
unsafe impl Sync for SyncSlab {}

/// The "no slab" sentinel every empty class queue points at.
static EMPTY: SyncSlab = SyncSlab(Slab::empty());

#[inline(always)]
fn empty_slab() -> *mut Slab {
    ptr::addr_of!(EMPTY.0).cast_mut()
}

/// Every heap ever created (never shrinks; heaps are reused).
pub(crate) static HEAPS: AtomicPtr<Heap> = AtomicPtr::new(ptr::null_mut());
static ABANDONED: crate::sync::AtomicUsize = crate::sync::AtomicUsize::new(0);
static LAST_SWEEP_MS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // const-initialised, no destructor: a plain TLS load, no lazy state.
    static HEAP: Cell<*mut Heap> = const { Cell::new(ptr::null_mut()) };
}

/// The calling thread's heap, or null if it has none (yet).
#[inline(always)]
pub(crate) fn current_heap() -> *mut Heap {
    HEAP.with(|h| h.get())
}

// ----------------------------------------------------------------------------
// allocation

/// Pop a block of class `c` from this thread's current slab, or null.
///
/// The fast path: one TLS load (by the caller), the current slab's
/// free-list pop, two counter adds. No lock, no atomic read-modify-write, no
/// syscall.
#[inline(always)]
fn pop_current(heap: *mut Heap, c: usize, req: usize) -> *mut u8 {
    if heap.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: `heap` is this thread's heap: only this thread touches its
    // queues. `current[c]` is a live slab of the heap or the sentinel, whose
    // `free` is null. A non-null `free` is a block of that slab.
    unsafe {
        let slab = *(*heap).current.get_unchecked(c);
        let b = (*slab).free;
        if b.is_null() {
            return ptr::null_mut();
        }
        (*slab).free = (*b).next;
        (*slab).used += 1;
        (*heap).counters.get_unchecked(c).on_alloc(req);
        b.cast()
    }
}

/// Allocate a block of class `c` for a request of `req` bytes.
#[inline(always)]
pub(crate) fn alloc_fast(c: usize, req: usize, cfg: &Config) -> *mut u8 {
    let heap = current_heap();
    let b = pop_current(heap, c, req);
    if !b.is_null() {
        return b;
    }
    alloc_slow(heap, c, req, cfg).0
}

/// As [`alloc_fast`], also reporting whether the block is known zeroed
/// (carved fresh from never-touched memory).
#[inline]
pub(crate) fn alloc_zeroed_class(c: usize, req: usize, cfg: &Config) -> (*mut u8, bool) {
    let heap = current_heap();
    let b = pop_current(heap, c, req);
    if !b.is_null() {
        return (b, false);
    }
    alloc_slow(heap, c, req, cfg)
}

/// The slow path: adopt pending frees, find a slab with space, or make one.
#[cold]
#[inline(never)]
fn alloc_slow(mut heap: *mut Heap, c: usize, req: usize, cfg: &Config) -> (*mut u8, bool) {
    if heap.is_null() {
        config::offer(cfg);
        heap = heap_acquire();
        if heap.is_null() {
            return (ptr::null_mut(), false);
        }
    }
    // SAFETY: `heap` is this thread's heap; every slab reached from its
    // queues is a live slab it owns.
    unsafe {
        process_delayed(heap);
        let mut slab = (*heap).current[c];
        while !slab.is_null() && slab != empty_slab() {
            let next = (*slab).next;
            if slab::collect(slab) {
                return (take_from(heap, slab, c, req), false);
            }
            if (*slab).reserved < (*slab).capacity {
                return take_fresh(heap, slab, c, req);
            }
            // No space: mark full (unless remote frees raced in) and drop it
            // from the queue; a later free brings it back.
            let raced = (*slab).thread_free.try_mark_full();
            if !raced.is_null() {
                slab::append_remote(&mut *slab, raced);
                return (take_from(heap, slab, c, req), false);
            }
            queue_remove(heap, slab);
            (*slab).owner_flags |= FLAG_FULL;
            slab = next;
        }
        let slab = slab_alloc(heap, c);
        if slab.is_null() {
            return (ptr::null_mut(), false);
        }
        queue_push_front(heap, slab);
        take_fresh(heap, slab, c, req)
    }
}

/// Pop a block from `slab.free` (non-empty) and make `slab` current.
unsafe fn take_from(heap: *mut Heap, slab: *mut Slab, c: usize, req: usize) -> *mut u8 {
    // SAFETY: the caller guarantees `slab` is ours with a non-empty `free`.
    unsafe {
        queue_move_front(heap, slab);
        (*slab).idle_since = 0;
        let b = (*slab).free;
        (*slab).free = (*b).next;
        (*slab).used += 1;
        (*heap).counters[c].on_alloc(req);
        b.cast()
    }
}

/// Carve from `slab` (which has unreserved blocks) and make it current.
unsafe fn take_fresh(heap: *mut Heap, slab: *mut Slab, c: usize, req: usize) -> (*mut u8, bool) {
    // SAFETY: the caller guarantees `slab` is ours with reserve left.
    unsafe {
        queue_move_front(heap, slab);
        (*slab).idle_since = 0;
        let fresh = (*slab).fresh;
        let direct = slab::extend(slab);
        if !direct.is_null() {
            (*slab).used += 1;
            (*heap).counters[c].on_alloc(req);
            return (direct, fresh);
        }
        (take_from(heap, slab, c, req), false)
    }
}

// ----------------------------------------------------------------------------
// free

/// Free `p`, a block start (or any address inside a large block's first
/// slice) handed out by this allocator. `req` is the size the caller asked
/// for (stats only).
///
/// # Safety
/// * `p` is live, was allocated by this allocator, and is a block start for
///   class blocks.
#[inline(always)]
pub(crate) unsafe fn free(p: *mut u8, req: usize) {
    // SAFETY: caller contract: `p` is live, so its segment header is mapped.
    let slab = unsafe { crate::segment::slab_of(p) };
    let heap = current_heap();
    // SAFETY: a slab whose `heap` is ours is owned by this thread; owner-only
    // fields are ours to write. `p` is a block of it, given up by the caller.
    unsafe {
        if (*slab).heap == heap {
            let b = p.cast::<Block>();
            if cfg!(debug_assertions) && !cfg!(feature = "valgrind") {
                debug_fill_freed(p, (*slab).block_size as usize);
            }
            crate::valgrind::link_word(p);
            (*b).next = (*slab).local_free;
            (*slab).local_free = b;
            (*slab).used -= 1;
            (*heap)
                .counters
                .get_unchecked((*slab).class as usize)
                .on_free(req);
            if (*slab).used == 0 || (*slab).owner_flags != 0 {
                free_local_slow(heap, slab);
            }
        } else {
            free_remote(heap, slab, p, req);
        }
    }
}

/// Fill a freed block with a pattern in debug builds (after the link word),
/// so use-after-free reads garbage that tests notice.
#[cold]
fn debug_fill_freed(p: *mut u8, size: usize) {
    let n = size.min(4096);
    if n > 8 {
        // SAFETY: the block is `size` bytes, ours (being freed).
        unsafe { ptr::write_bytes(p.add(8), 0xDF, n - 8) };
    }
}

/// Owner free found the slab full (bring it back to the queue) or empty.
#[cold]
#[inline(never)]
unsafe fn free_local_slow(heap: *mut Heap, slab: *mut Slab) {
    // SAFETY: `slab` is owned by `heap`, the calling thread's heap.
    unsafe {
        if (*slab).owner_flags & FLAG_FULL != 0 {
            (*slab).owner_flags &= !FLAG_FULL;
            (*slab).thread_free.clear_delayed();
            queue_push_back(heap, slab);
        }
        if (*slab).used == 0 {
            slab_emptied(heap, slab);
        }
    }
}

/// A slab has no block outstanding. Keep a few empty slabs per class at
/// the back of its queue (so churn at the boundary neither re-carves nor
/// faults pages in); release the rest to their segments.
unsafe fn slab_emptied(heap: *mut Heap, slab: *mut Slab) {
    // SAFETY: as in `free_local_slow`.
    unsafe {
        let c = (*slab).class as usize;
        // The current slab stays current: a lone alloc/free pair must not
        // take this path's walk and clock read every time.
        if (*heap).current[c] == slab && !(*heap).abandoning {
            return;
        }
        let keep = if is_pooled(c) {
            KEEP_EMPTY_POOLED
        } else {
            KEEP_EMPTY_SLABS
        };
        if !(*heap).abandoning && empty_slabs_below(heap, c, slab, keep) {
            (*slab).idle_since = os::now_ms();
            queue_remove(heap, slab);
            queue_push_back(heap, slab);
            return;
        }
        queue_remove(heap, slab);
        (*slab).thread_free.clear_delayed();
        slab_free(heap, slab);
    }
}

/// Empty slabs a small class queue keeps before releasing more.
const KEEP_EMPTY_SLABS: usize = 2;
/// Empty slabs a pooled class queue keeps (they are up to 2 MiB each).
const KEEP_EMPTY_POOLED: usize = 1;

/// Whether class `c`'s queue holds fewer than `limit` empty slabs besides
/// `except` (a bounded walk of the queue).
unsafe fn empty_slabs_below(heap: *mut Heap, c: usize, except: *mut Slab, limit: usize) -> bool {
    // SAFETY: the queue's slabs are live slabs of `heap`, ours.
    unsafe {
        let mut n = 0;
        let mut s = (*heap).current[c];
        while !s.is_null() && s != empty_slab() {
            if s != except && (*s).used == 0 {
                n += 1;
                if n >= limit {
                    return false;
                }
            }
            s = (*s).next;
        }
        true
    }
}

/// A free from a thread that does not own the block's slab, or of a large
/// block.
#[cold]
#[inline(never)]
unsafe fn free_remote(heap: *mut Heap, slab: *mut Slab, p: *mut u8, req: usize) {
    // SAFETY: `kind`, `class` and `heap` are constant while a block of the
    // slab is live; the large path owns the whole segment.
    unsafe {
        let kind = (*slab).kind;
        if kind == KIND_LARGE {
            crate::large::free(segment_of_slab(slab));
            return;
        }
        debug_assert_eq!(
            kind, KIND_CLASS,
            "free of a pointer this allocator does not own"
        );
        let c = (*slab).class as usize;
        if heap.is_null() {
            GLOBAL.remote_frees_without_heap[c].on_free_shared(req);
        } else {
            (*heap).counters[c].on_free(req);
        }
        let b = p.cast::<Block>();
        crate::valgrind::link_word(p);
        if (*slab).thread_free.push(b) == Pushed::Delayed {
            // The slab is full: hand the block to its heap, which learns the
            // slab has space again. Heaps are never unmapped.
            let owner = (*slab).heap;
            (*owner).delayed.push(b);
            (*slab).thread_free.finish_delayed();
        }
    }
}

/// Free every block remote threads handed to `heap`'s full slabs.
unsafe fn process_delayed(heap: *mut Heap) {
    // SAFETY: the heap is held by the caller; the taken blocks are blocks of
    // its slabs, now ours.
    unsafe {
        let mut b = (*heap).delayed.take_all();
        while !b.is_null() {
            let next = (*b).next;
            let slab = crate::segment::slab_of(b.cast());
            debug_assert_eq!((*slab).heap, heap);
            (*b).next = (*slab).local_free;
            (*slab).local_free = b;
            (*slab).used -= 1;
            if (*slab).used == 0 || (*slab).owner_flags != 0 {
                free_local_slow(heap, slab);
            }
            b = next;
        }
    }
}

// ----------------------------------------------------------------------------
// class queues (doubly linked; head in `current`)

unsafe fn queue_push_front(heap: *mut Heap, slab: *mut Slab) {
    // SAFETY: owner-only links of slabs of `heap`.
    unsafe {
        let c = (*slab).class as usize;
        let head = (*heap).current[c];
        (*slab).prev = ptr::null_mut();
        if head == empty_slab() {
            (*slab).next = ptr::null_mut();
            (*heap).tail[c] = slab;
        } else {
            (*slab).next = head;
            (*head).prev = slab;
        }
        (*heap).current[c] = slab;
    }
}

unsafe fn queue_push_back(heap: *mut Heap, slab: *mut Slab) {
    // SAFETY: owner-only links of slabs of `heap`.
    unsafe {
        let c = (*slab).class as usize;
        if (*heap).current[c] == empty_slab() {
            queue_push_front(heap, slab);
            return;
        }
        let last = (*heap).tail[c];
        debug_assert!((*last).next.is_null(), "tail is last");
        (*last).next = slab;
        (*slab).prev = last;
        (*slab).next = ptr::null_mut();
        (*heap).tail[c] = slab;
    }
}

unsafe fn queue_remove(heap: *mut Heap, slab: *mut Slab) {
    // SAFETY: owner-only links; `slab` is in its class queue.
    unsafe {
        let c = (*slab).class as usize;
        let (prev, next) = ((*slab).prev, (*slab).next);
        if prev.is_null() {
            debug_assert_eq!((*heap).current[c], slab, "slab not at queue head");
            (*heap).current[c] = if next.is_null() { empty_slab() } else { next };
        } else {
            (*prev).next = next;
        }
        if next.is_null() {
            debug_assert_eq!((*heap).tail[c], slab, "slab not at queue tail");
            (*heap).tail[c] = prev;
        } else {
            (*next).prev = prev;
        }
        (*slab).prev = ptr::null_mut();
        (*slab).next = ptr::null_mut();
    }
}

unsafe fn queue_move_front(heap: *mut Heap, slab: *mut Slab) {
    // SAFETY: as above.
    unsafe {
        if (*heap).current[(*slab).class as usize] != slab {
            queue_remove(heap, slab);
            queue_push_front(heap, slab);
        }
    }
}

// ----------------------------------------------------------------------------
// heap life cycle

static KEY_STATE: AtomicU8 = AtomicU8::new(0);
static mut EXIT_KEY: libc::pthread_key_t = 0;

fn exit_key() -> Option<libc::pthread_key_t> {
    loop {
        match KEY_STATE.load(Ordering::Acquire) {
            2 => {
                // SAFETY: written once before KEY_STATE became 2 (Release).
                return Some(unsafe { EXIT_KEY });
            }
            3 => return None,
            0 => {
                if KEY_STATE
                    .compare_exchange(0, 1, Ordering::Acquire, Ordering::Acquire)
                    .is_ok()
                {
                    let mut key: libc::pthread_key_t = 0;
                    // SAFETY: `key` is a valid out-pointer; the destructor is
                    // an `extern "C"` fn that never unwinds.
                    let r = unsafe { libc::pthread_key_create(&mut key, Some(thread_exit)) };
                    if r != 0 {
                        KEY_STATE.store(3, Ordering::Release);
                        return None;
                    }
                    // SAFETY: only the thread that won the CAS writes it.
                    unsafe { EXIT_KEY = key };
                    KEY_STATE.store(2, Ordering::Release);
                }
            }
            _ => crate::sync::spin_hint(),
        }
    }
}

/// Give this thread a heap: adopt an abandoned one, else map a new one.
#[cold]
fn heap_acquire() -> *mut Heap {
    config::ensure_init();
    let mut heap = adopt_abandoned();
    if heap.is_null() {
        heap = heap_new();
        if heap.is_null() {
            return heap;
        }
    }
    HEAP.with(|h| h.set(heap));
    if let Some(key) = exit_key() {
        // SAFETY: a key we created; the value is our heap pointer. For the
        // first keys glibc stores it in a static block (no allocation).
        unsafe { libc::pthread_setspecific(key, heap.cast()) };
    }
    heap
}

/// Claim an abandoned heap (for adoption or a sweep): see `handoff.rs`.
///
/// # Safety
/// * `h` is a heap of the registry.
unsafe fn try_claim(h: *mut Heap) -> bool {
    // SAFETY: registry heaps are mapped forever; `state` is atomic.
    unsafe { (*h).state.try_claim() }
}

fn adopt_abandoned() -> *mut Heap {
    if ABANDONED.load(Ordering::Relaxed) == 0 {
        return ptr::null_mut();
    }
    let mut h = HEAPS.load(Ordering::Acquire);
    while !h.is_null() {
        // SAFETY: heaps in the registry are mapped forever.
        unsafe {
            if try_claim(h) {
                ABANDONED.fetch_sub(1, Ordering::Relaxed);
                (*h).abandoning = false;
                return h;
            }
            h = (*h).all_next;
        }
    }
    ptr::null_mut()
}

fn heap_new() -> *mut Heap {
    let size = core::mem::size_of::<Heap>().div_ceil(os::PAGE_SIZE) * os::PAGE_SIZE;
    let heap = os::map(size).cast::<Heap>();
    if heap.is_null() {
        return heap;
    }
    GLOBAL.meta_bytes.fetch_add(size);
    // SAFETY: a fresh zeroed mapping of the right size; zero is a valid bit
    // pattern for every field (null pointers, zero atomics, false) except
    // `current`, set to the sentinel here before the heap is published.
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

extern "C" fn thread_exit(arg: *mut libc::c_void) {
    let heap = arg.cast::<Heap>();
    if heap.is_null() {
        return;
    }
    HEAP.with(|h| h.set(ptr::null_mut()));
    // SAFETY: the key's value is this thread's heap, which it holds.
    unsafe { heap_abandon(heap) };
}

/// The thread is gone: give back what is free, leave the rest for adoption.
unsafe fn heap_abandon(heap: *mut Heap) {
    // SAFETY: the exiting thread holds the heap until the state store.
    unsafe {
        (*heap).abandoning = true;
        heap_collect(heap);
        // Decommit what is left free beyond one spare segment's worth: a
        // short-lived thread's leftovers stay warm for its successor.
        if (*heap).dirty_free_bytes > crate::segment::SEG_SIZE {
            decommit_free_slices(heap);
        }
        spares_keep(heap, 1);
        ABANDONED.fetch_add(1, Ordering::Relaxed);
        (*heap).state.abandon();
    }
}

/// Collect every pending free of `heap` and release the slabs (and
/// segments) left empty.
///
/// # Safety
/// * The caller holds `heap` exclusively (its own heap, or one it claimed).
pub(crate) unsafe fn heap_collect(heap: *mut Heap) {
    // SAFETY: we hold the heap; segments in its list are mapped and ours.
    unsafe {
        process_delayed(heap);
        let mut seg = (*heap).segments;
        'segments: while !seg.is_null() {
            let next_seg = (*seg).next;
            let mut i = 1;
            while i < crate::segment::SLICES {
                if (*seg).free_map & (1u64 << i) != 0 {
                    i += 1;
                    continue;
                }
                let slab = (*seg).slabs.as_mut_ptr().add(i);
                i += (*slab).slice_count.max(1) as usize;
                slab::collect(slab);
                if (*slab).owner_flags & FLAG_FULL != 0 && !(*slab).free.is_null() {
                    (*slab).owner_flags &= !FLAG_FULL;
                    (*slab).thread_free.clear_delayed();
                    queue_push_back(heap, slab);
                }
                if (*slab).used == 0 && (*slab).owner_flags & FLAG_FULL == 0 {
                    queue_remove(heap, slab);
                    (*slab).thread_free.clear_delayed();
                    if slab_free(heap, slab) {
                        seg = next_seg;
                        continue 'segments;
                    }
                }
            }
            seg = next_seg;
        }
    }
}

/// Decommit the free slices of every segment of `heap`.
unsafe fn decommit_free_slices(heap: *mut Heap) {
    // SAFETY: the caller holds the heap; its segments are ours.
    unsafe {
        let mut seg = (*heap).segments;
        while !seg.is_null() {
            crate::segment::segment_decommit_free(seg);
            seg = (*seg).next;
        }
    }
}

/// Sweep abandoned heaps: release the slabs remote frees have emptied since
/// their threads exited. Throttled; called before mapping a new segment.
pub(crate) fn sweep_abandoned() {
    if ABANDONED.load(Ordering::Relaxed) == 0 {
        return;
    }
    let now = os::now_ms();
    let last = LAST_SWEEP_MS.load(Ordering::Relaxed);
    if now.saturating_sub(last) < 10
        || LAST_SWEEP_MS
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    let mut h = HEAPS.load(Ordering::Acquire);
    while !h.is_null() {
        // SAFETY: registry heaps are mapped forever; we touch one only after
        // claiming it with the CAS, and hand it back with a Release store.
        unsafe {
            if try_claim(h) {
                (*h).abandoning = true;
                heap_collect(h);
                decommit_free_slices(h);
                (*h).state.abandon();
            }
            h = (*h).all_next;
        }
    }
}

/// Collect the calling thread's pending frees and release its empty slabs
/// and spare segment; then sweep abandoned heaps. Returns nothing: the
/// stats snapshot shows the effect.
pub(crate) fn collect_current() {
    let heap = current_heap();
    if !heap.is_null() {
        // SAFETY: our own heap.
        unsafe {
            (*heap).abandoning = true; // release the kept slabs too
            heap_collect(heap);
            decommit_free_slices(heap);
            (*heap).abandoning = false;
            spares_give_back(heap);
        }
    }
    LAST_SWEEP_MS.store(0, Ordering::Relaxed);
    sweep_abandoned();
}

/// Count heaps by state: (in use, abandoned).
pub(crate) fn heap_counts() -> (usize, usize) {
    let (mut used, mut abandoned) = (0, 0);
    let mut h = HEAPS.load(Ordering::Acquire);
    while !h.is_null() {
        // SAFETY: registry heaps are mapped forever; `state` is atomic.
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
    if !heap.is_null() && cfg!(feature = "stats") {
        // SAFETY: our own heap; counters are ours to write.
        unsafe {
            (*heap).counters[c].on_resize(old, new);
        }
    }
}

/// Pooled block `p` is handed out for a request touching `touch` bytes from
/// its start: if trimming is on (`Config::trim_pages`) and a previous
/// occupant dirtied at least that many pages more, give them back
/// (`madvise`), so resident memory follows the requested sizes, not the
/// 1.5x class sizes. Owner thread only (called right after alloc).
///
/// # Safety
/// * `p` is a block of a pooled slab owned by the calling thread's heap,
///   just allocated, with `touch <= block size`.
pub(crate) unsafe fn trim_pooled(p: *mut u8, touch: usize) {
    // SAFETY: the slab is ours (caller contract); the range given back lies
    // inside the block, beyond the bytes the caller will use.
    unsafe {
        let slab = crate::segment::slab_of(p);
        let start = (*slab).start as usize;
        let bs = (*slab).block_size as usize;
        let i = (p as usize - start) / bs;
        let e = &mut (*slab).extent[i];
        // +1: the block need not start on a page boundary.
        let need = (touch.div_ceil(os::PAGE_SIZE) + 1).min(u16::MAX as usize) as u16;
        let trim = config::trim_pages();
        if trim != 0 && *e as usize >= need as usize + trim {
            let from = (p as usize + touch).next_multiple_of(os::PAGE_SIZE);
            let to = (p as usize + (*e as usize) * os::PAGE_SIZE).min(p as usize + bs)
                & !(os::PAGE_SIZE - 1);
            if to > from {
                os::decommit(from as *mut u8, to - from);
                GLOBAL.decommitted_bytes.fetch_add(to - from);
            }
            *e = need;
        } else if *e < need {
            *e = need;
        }
    }
}

/// A pooled block is resized in place to `touch` bytes: widen its extent.
///
/// # Safety
/// * `p` is a live block of a pooled slab, owned by the caller.
pub(crate) unsafe fn widen_pooled(p: *mut u8, touch: usize) {
    // SAFETY: each block's extent entry is only written by whoever holds the
    // block: the allocating owner before handing it out, then its holder.
    unsafe {
        let slab = crate::segment::slab_of(p);
        let i = (p as usize - (*slab).start as usize) / (*slab).block_size as usize;
        let need = (touch.div_ceil(os::PAGE_SIZE) + 1).min(u16::MAX as usize) as u16;
        if (*slab).extent[i] < need {
            (*slab).extent[i] = need;
        }
    }
}
