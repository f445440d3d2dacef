//! Snapshots: the allocator's figures gathered into an `alloc_stats`
//! value on demand.
//!
//! What is counted, and how, is `counters.rs`: per heap and class,
//! single-writer counters; process-wide gauges. A snapshot walks the heap
//! registry (heaps are never unmapped) and sums; it takes no lock and never
//! blocks an allocating thread.

use crate::counters::GLOBAL;
use crate::heap::{heap_counts, registry_first};
use crate::size_class::{class_size, CLASSES};
use crate::sync::{AtomicU64, Ordering::Relaxed};
use alloc_stats::{ClassStats, LargeStats, ReclaimStats, Snapshot};

/// Add one counter set's reading (allocations, frees, requested bytes
/// allocated and freed) to `c`.
fn add_counts((allocs, frees, req_alloc, req_free): (u64, u64, u64, u64), c: &mut ClassStats) {
    c.allocs = c.allocs.wrapping_add(allocs);
    c.frees = c.frees.wrapping_add(frees);
    c.live_requested_bytes = c
        .live_requested_bytes
        .wrapping_add(req_alloc)
        .wrapping_sub(req_free);
}

/// Highest live requested bytes per class seen by a snapshot.
static PEAK: [AtomicU64; CLASSES] = [const { AtomicU64::new(0) }; CLASSES];

/// Take a snapshot of the whole allocator. Lock-free; allocates only the
/// returned value (outside any allocator path).
pub fn snapshot() -> Snapshot {
    let mut s = Snapshot::default();
    snapshot_into(&mut s);
    s
}

/// Fill `s` with a snapshot of the whole allocator, reusing its class
/// table: once `s` has held one snapshot this allocates nothing. Lock-free.
///
/// ```
/// let mut s = alloc_core::snapshot();
/// alloc_core::snapshot_into(&mut s); // refreshed in place
/// assert_eq!(s.classes.len(), alloc_core::CLASSES);
/// ```
pub fn snapshot_into(s: &mut Snapshot) {
    let classes = &mut s.classes;
    classes.clear();
    classes.extend((0..CLASSES).map(|c| ClassStats {
        class: c,
        block_size: class_size(c),
        ..ClassStats::default()
    }));
    for (c, cs) in classes.iter_mut().enumerate() {
        add_counts(GLOBAL.frees_without_heap[c].read(), cs);
        cs.returned_bytes = GLOBAL.returned_by_tag[c].get() as u64;
    }
    let mut oldest_kept = [u64::MAX; CLASSES];
    let mut h = registry_first();
    while !h.is_null() {
        // SAFETY: registry heaps are mapped forever; we read atomics only.
        unsafe {
            for (c, cs) in classes.iter_mut().enumerate() {
                add_counts((*h).tally.read(c, &(*h).counters), cs);
                cs.slabs = cs.slabs.wrapping_add((*h).slabs[c].load(Relaxed));
                cs.slabs_released = cs
                    .slabs_released
                    .wrapping_add((*h).slabs_released[c].load(Relaxed));
                cs.slabs_kept = cs.slabs_kept.wrapping_add((*h).slabs_kept[c].load(Relaxed));
                let since = (*h).kept_since[c].load(Relaxed);
                if since != 0 {
                    oldest_kept[c] = oldest_kept[c].min(since);
                }
                cs.carved = cs.carved.wrapping_add((*h).carved[c].load(Relaxed));
            }
            h = (*h).all_next;
        }
    }
    let now = crate::os::now_ms();
    let mut live = 0u64;
    for cs in classes.iter_mut() {
        if oldest_kept[cs.class] != u64::MAX {
            cs.oldest_kept_idle_ms = now.saturating_sub(oldest_kept[cs.class]);
        }
        cs.live_blocks = cs.allocs.saturating_sub(cs.frees);
        cs.live_rounded_bytes = cs.live_blocks * cs.block_size as u64;
        // Counters are read one by one while threads run: clamp transient
        // wrap-arounds of the difference.
        if cs.live_requested_bytes > cs.live_rounded_bytes {
            cs.live_requested_bytes = cs.live_rounded_bytes;
        }
        live += cs.live_requested_bytes;
        let peak = &PEAK[cs.class];
        cs.peak_live_bytes = peak
            .fetch_max(cs.live_requested_bytes, Relaxed)
            .max(cs.live_requested_bytes);
    }
    let large = LargeStats {
        allocs: GLOBAL.large_allocs.get() as u64,
        frees: GLOBAL.large_frees.get() as u64,
        live_bytes: GLOBAL.large_live_bytes.get() as u64,
        mapped_bytes: GLOBAL.large_mapped_bytes.get() as u64,
        cached_bytes: GLOBAL.large_cached_bytes.get() as u64,
    };
    let (threads_live, heaps_abandoned) = heap_counts();
    let classes = core::mem::take(&mut s.classes);
    let mut components = core::mem::take(&mut s.components);
    fill_components(&mut components, &crate::heap::pending_profile());
    *s = Snapshot {
        taken_at_ms: now,
        live_bytes: live + large.live_bytes,
        mapped_bytes: (GLOBAL.mapped_bytes.get() + GLOBAL.meta_bytes.get()) as u64
            + large.mapped_bytes,
        resident_bytes: crate::os::resident_bytes(),
        cached_bytes: (GLOBAL.cached_segments_bytes.get() as u64) + large.cached_bytes,
        returned_bytes: (GLOBAL.decommitted_bytes.get() + GLOBAL.unmapped_bytes.get()) as u64,
        threads_live: threads_live as u64,
        heaps_abandoned: heaps_abandoned as u64,
        classes,
        large,
        reclaim: reclaim_stats(),
        components,
        reuse_unknown: false,
    };
}

/// The leak investigator's counters (`profile::counters`), every heap's
/// batched counts included.
pub fn profile_counters() -> crate::profile::ProfileCounters {
    crate::profile::counters(&crate::heap::pending_profile())
}

/// Live memory per component from the leak investigator's running totals
/// (`profile::components_live`), most first, reusing `v`'s strings.
fn fill_components(v: &mut Vec<alloc_stats::ComponentStats>, pending: &crate::profile::Pending) {
    let mut n = 0;
    crate::profile::components_live(pending, |name, bytes, samples| {
        if n == v.len() {
            v.push(alloc_stats::ComponentStats::default());
        }
        let c = &mut v[n];
        c.name.clear();
        c.name.push_str(name);
        c.live_bytes_estimated = bytes;
        c.samples_live = samples;
        n += 1;
    });
    v.truncate(n);
    // Unstable: it sorts in place, never allocating.
    v.sort_unstable_by_key(|c| core::cmp::Reverse(c.live_bytes_estimated));
}

fn reclaim_stats() -> ReclaimStats {
    let used = GLOBAL.used_bytes.get() as u64;
    let idle = GLOBAL.idle_bytes.get() as u64;
    let budget = crate::limits::pool_budget() as u64;
    let mut r = ReclaimStats {
        in_use_bytes: used,
        idle_bytes: idle,
        limit_bytes: crate::limits::limit() as u64,
        pool_budget_bytes: budget,
        utilisation: (used + idle) as f64 / budget.max(1) as f64,
        pressure_level: crate::reclaim::current_level() as u8,
        ..ReclaimStats::default()
    };
    for i in 0..4 {
        r.runs[i] = GLOBAL.reclaim_runs[i].get() as u64;
        r.bytes[i] = GLOBAL.reclaim_bytes[i].get() as u64;
        r.pressure_events[i] = GLOBAL.pressure_events[i].get() as u64;
    }
    r
}
