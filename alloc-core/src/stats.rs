//! Counting: per-thread counters on the fast path, aggregation on demand.
//!
//! Each heap's counters are atomics written only by the heap's thread with
//! `store(load + n)`: a plain add in machine code, yet legal to read from a
//! snapshot thread. A snapshot walks the heap registry (heaps are never
//! unmapped) and sums; it takes no lock and never blocks an allocating
//! thread. Process-wide figures (mappings, large blocks) change on slow
//! paths only and use ordinary atomic adds.

pub(crate) use crate::counters::{bump, ClassCounters};
use crate::heap::{heap_counts, HEAPS};
use crate::size_class::{class_size, CLASSES};
use crate::sync::{AtomicUsize, Ordering::Relaxed};
use alloc_stats::{ClassStats, LargeStats, Snapshot};

fn add_counts(k: &ClassCounters, c: &mut ClassStats) {
    let (allocs, frees, req_alloc, req_free) = k.read();
    c.allocs = c.allocs.wrapping_add(allocs);
    c.frees = c.frees.wrapping_add(frees);
    c.live_requested_bytes = c
        .live_requested_bytes
        .wrapping_add(req_alloc)
        .wrapping_sub(req_free);
}

/// A byte or event gauge changed with atomic adds (slow paths only).
pub(crate) struct Gauge(AtomicUsize);

impl Gauge {
    #[cfg(not(loom))]
    const fn new() -> Self {
        Gauge(AtomicUsize::new(0))
    }
    pub(crate) fn fetch_add(&self, n: usize) {
        self.0.fetch_add(n, Relaxed);
    }
    pub(crate) fn fetch_sub(&self, n: usize) {
        self.0.fetch_sub(n, Relaxed);
    }
    pub(crate) fn get(&self) -> usize {
        self.0.load(Relaxed)
    }
}

/// Process-wide figures.
pub(crate) struct GlobalCounters {
    /// Segment address space mapped now.
    pub(crate) mapped_bytes: Gauge,
    /// Bytes of empty segments in the global cache.
    pub(crate) cached_segments_bytes: Gauge,
    /// Bytes decommitted so far (cumulative).
    pub(crate) decommitted_bytes: Gauge,
    /// Bytes unmapped so far (cumulative).
    pub(crate) unmapped_bytes: Gauge,
    /// Heap metadata mapped.
    pub(crate) meta_bytes: Gauge,
    pub(crate) large_mapped_bytes: Gauge,
    pub(crate) large_cached_bytes: Gauge,
    pub(crate) large_live_bytes: Gauge,
    pub(crate) large_allocs: Gauge,
    pub(crate) large_frees: Gauge,
    /// Frees by threads that never allocated (and so have no heap).
    pub(crate) remote_frees_without_heap: [ClassCounters; CLASSES],
}

#[cfg(not(loom))]
pub(crate) static GLOBAL: GlobalCounters = GlobalCounters {
    mapped_bytes: Gauge::new(),
    cached_segments_bytes: Gauge::new(),
    decommitted_bytes: Gauge::new(),
    unmapped_bytes: Gauge::new(),
    meta_bytes: Gauge::new(),
    large_mapped_bytes: Gauge::new(),
    large_cached_bytes: Gauge::new(),
    large_live_bytes: Gauge::new(),
    large_allocs: Gauge::new(),
    large_frees: Gauge::new(),
    remote_frees_without_heap: [const { ClassCounters::new() }; CLASSES],
};

/// Resident set size of the process, from `/proc/self/statm`, read without
/// allocating.
pub(crate) fn resident_bytes() -> u64 {
    let mut buf = [0u8; 128];
    // SAFETY: a NUL-terminated path; the fd is closed below.
    let fd = unsafe { libc::open(c"/proc/self/statm".as_ptr(), libc::O_RDONLY) };
    if fd < 0 {
        return 0;
    }
    // SAFETY: `buf` is writable for its length.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    // SAFETY: our fd.
    unsafe { libc::close(fd) };
    if n <= 0 {
        return 0;
    }
    let text = &buf[..n as usize];
    let mut fields = text.split(|&b| b == b' ');
    fields.next();
    let pages = fields
        .next()
        .and_then(crate::config::parse_u64)
        .unwrap_or(0);
    pages * crate::os::PAGE_SIZE as u64
}

/// Take a snapshot of the whole allocator. Lock-free; allocates only the
/// returned value (outside any allocator path).
pub fn snapshot() -> Snapshot {
    let mut classes: Vec<ClassStats> = (0..CLASSES)
        .map(|c| ClassStats {
            class: c,
            block_size: class_size(c),
            ..ClassStats::default()
        })
        .collect();
    for (c, cs) in classes.iter_mut().enumerate() {
        add_counts(&GLOBAL.remote_frees_without_heap[c], cs);
    }
    let mut h = HEAPS.load(crate::sync::Ordering::Acquire);
    while !h.is_null() {
        // SAFETY: registry heaps are mapped forever; we read atomics only.
        unsafe {
            for (c, cs) in classes.iter_mut().enumerate() {
                add_counts(&(*h).counters[c], cs);
                cs.slabs = cs.slabs.wrapping_add((*h).slabs[c].load(Relaxed));
            }
            h = (*h).all_next;
        }
    }
    let mut live = 0u64;
    for cs in classes.iter_mut() {
        cs.live_blocks = cs.allocs.saturating_sub(cs.frees);
        cs.live_rounded_bytes = cs.live_blocks * cs.block_size as u64;
        // Counters are read one by one while threads run: clamp transient
        // wrap-arounds of the difference.
        if cs.live_requested_bytes > cs.live_rounded_bytes {
            cs.live_requested_bytes = cs.live_rounded_bytes;
        }
        live += cs.live_requested_bytes;
    }
    let large = LargeStats {
        allocs: GLOBAL.large_allocs.get() as u64,
        frees: GLOBAL.large_frees.get() as u64,
        live_bytes: GLOBAL.large_live_bytes.get() as u64,
        mapped_bytes: GLOBAL.large_mapped_bytes.get() as u64,
        cached_bytes: GLOBAL.large_cached_bytes.get() as u64,
    };
    let (threads_live, heaps_abandoned) = heap_counts();
    Snapshot {
        taken_at_ms: crate::os::now_ms(),
        live_bytes: live + large.live_bytes,
        mapped_bytes: (GLOBAL.mapped_bytes.get() + GLOBAL.meta_bytes.get()) as u64
            + large.mapped_bytes,
        resident_bytes: resident_bytes(),
        cached_bytes: (GLOBAL.cached_segments_bytes.get() as u64) + large.cached_bytes,
        returned_bytes: (GLOBAL.decommitted_bytes.get() + GLOBAL.unmapped_bytes.get()) as u64,
        threads_live: threads_live as u64,
        heaps_abandoned: heaps_abandoned as u64,
        classes,
        large,
    }
}
