//! Lock-free allocator statistics: plain snapshot values and their reports.
//!
//! This crate has no dependency on the allocator: `alloc-core` fills a
//! [`Snapshot`] from its per-thread counters when asked, and the
//! [`Counting`] wrapper produces the same kind of figures around any
//! `GlobalAlloc` (System, mimalloc, ...) so a user can compare before
//! switching.
//!
//! A [`Snapshot`] is a plain value: `Display` prints a readable table,
//! [`Snapshot::to_json`] and [`Snapshot::to_prometheus`] give machine
//! formats.
//!
//! ```
//! use alloc_stats::{human_bytes, LeakDetector, Snapshot};
//!
//! // With pool-alloc installed, `pool_alloc::snapshot()` gives these; here
//! // an empty one stands in.
//! let snap = Snapshot::default();
//! println!("live {}", human_bytes(snap.live_bytes));
//! let mut detector = LeakDetector::new();
//! detector.record(snap);
//! println!("{}", detector.report());
//! ```

#![warn(missing_docs)]

mod counting;
mod history;
mod leak;
mod report;
mod sync;
pub use report::human_bytes;

pub use counting::{Counting, CountingStats};
pub use history::History;
pub use leak::{assess, LeakDetector, LeakLevel, LeakReport, Suspect, WINDOWS_FOR_HIGH};

/// Figures for one size class.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassStats {
    /// Index of the class.
    pub class: usize,
    /// Block size of the class in bytes.
    pub block_size: usize,
    /// Allocations served so far.
    pub allocs: u64,
    /// Frees so far.
    pub frees: u64,
    /// Blocks live now (allocs - frees).
    pub live_blocks: u64,
    /// Bytes the program asked for, live now.
    pub live_requested_bytes: u64,
    /// Bytes the live blocks occupy (live blocks x block size).
    pub live_rounded_bytes: u64,
    /// Slabs of this class in use.
    pub slabs: u64,
    /// Slabs of this class released so far (emptied, their memory made
    /// idle for any class to reuse or for reclaim to give back).
    pub slabs_released: u64,
    /// Bytes given back to the OS so far from memory this class's slabs
    /// last held.
    pub returned_bytes: u64,
    /// Empty slabs kept for reuse now.
    pub slabs_kept: u64,
    /// Blocks carved fresh from slab memory so far; every other
    /// allocation reused a freed block (see [`ClassStats::reuse_rate`]).
    pub carved: u64,
    /// The highest live requested bytes any snapshot has seen.
    pub peak_live_bytes: u64,
}

impl ClassStats {
    /// Share of allocations served by reusing a freed block rather than
    /// carving fresh memory (0 when nothing was allocated).
    pub fn reuse_rate(&self) -> f64 {
        if self.allocs == 0 {
            0.0
        } else {
            1.0 - (self.carved.min(self.allocs) as f64 / self.allocs as f64)
        }
    }
}

/// Figures for blocks mapped directly (above the pooled band).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LargeStats {
    /// Large allocations so far.
    pub allocs: u64,
    /// Large frees so far.
    pub frees: u64,
    /// Bytes asked for, live now.
    pub live_bytes: u64,
    /// Bytes mapped for large blocks (live and cached).
    pub mapped_bytes: u64,
    /// Bytes held by freed mappings kept for reuse.
    pub cached_bytes: u64,
}

/// Names of the reclaim levels, in the order of [`ReclaimStats::runs`].
pub const RECLAIM_LEVELS: [&str; 4] = ["gentle", "moderate", "aggressive", "emergency"];
/// Names of the pressure levels, in the order of
/// [`ReclaimStats::pressure_events`] and the value of
/// [`ReclaimStats::pressure_level`].
pub const PRESSURE_LEVELS: [&str; 4] = ["low", "medium", "high", "critical"];

/// Memory kept idle, given back, and memory pressure.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReclaimStats {
    /// Bytes of slabs in use (slices holding blocks, or kept for them).
    pub in_use_bytes: u64,
    /// Idle memory: free slices still committed, kept for reuse until
    /// they pass their idle time or a budget.
    pub idle_bytes: u64,
    /// The memory limit in force (configured, cgroup, or physical memory).
    pub limit_bytes: u64,
    /// The pool budget (configured, else the limit).
    pub pool_budget_bytes: u64,
    /// Committed pooled memory (in use + idle) / pool budget.
    pub utilisation: f64,
    /// Pressure level now: index into [`PRESSURE_LEVELS`].
    pub pressure_level: u8,
    /// `reclaim()` calls per level ([`RECLAIM_LEVELS`]).
    pub runs: [u64; 4],
    /// Bytes those calls gave back, per level.
    pub bytes: [u64; 4],
    /// Pressure callback rounds per level ([`PRESSURE_LEVELS`]).
    pub pressure_events: [u64; 4],
}

/// A point-in-time view of the allocator.
///
/// `pool_alloc::snapshot()` fills one from the allocator's counters; it is
/// a plain value, so it can also be built by hand:
///
/// ```
/// use alloc_stats::{ClassStats, Snapshot};
///
/// let s = Snapshot {
///     classes: vec![ClassStats {
///         class: 1,
///         block_size: 16,
///         allocs: 10,
///         frees: 4,
///         live_blocks: 6,
///         live_requested_bytes: 80,
///         live_rounded_bytes: 96,
///         slabs: 1,
///         ..Default::default()
///     }],
///     live_bytes: 80,
///     resident_bytes: 160,
///     ..Default::default()
/// };
/// assert_eq!(s.live_blocks(), 6);
/// assert_eq!(s.fragmentation(), 2.0);
/// assert!(s.to_json().contains("\"live_bytes\":80"));
/// assert!(s.to_prometheus().contains("pool_alloc_live_bytes 80"));
/// let table = s.to_string(); // `Display`: one row per class in use, then totals
/// assert!(table.contains("fragmentation      2.00"));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Milliseconds of a monotonic clock when taken.
    pub taken_at_ms: u64,
    /// Per size class, in class order (classes never used included).
    pub classes: Vec<ClassStats>,
    /// Directly mapped blocks.
    pub large: LargeStats,
    /// Address space mapped from the OS (segments, large blocks, metadata).
    pub mapped_bytes: u64,
    /// Resident memory of the process (from `/proc/self/statm`).
    pub resident_bytes: u64,
    /// Bytes the program asked for, live now (all bands).
    pub live_bytes: u64,
    /// Bytes held free for reuse: empty segments kept mapped and large
    /// mappings in the cache.
    pub cached_bytes: u64,
    /// Bytes given back to the OS so far (unmapped or decommitted).
    pub returned_bytes: u64,
    /// Threads with a heap now.
    pub threads_live: u64,
    /// Heaps of exited threads waiting for reuse.
    pub heaps_abandoned: u64,
    /// Idle memory, reclaim and pressure.
    pub reclaim: ReclaimStats,
}

impl Snapshot {
    /// Resident bytes per live requested byte (1.0 is perfect; 0 when
    /// nothing is live).
    pub fn fragmentation(&self) -> f64 {
        if self.live_bytes == 0 {
            0.0
        } else {
            self.resident_bytes as f64 / self.live_bytes as f64
        }
    }

    /// Sum of live blocks over the pooled and small classes.
    pub fn live_blocks(&self) -> u64 {
        self.classes.iter().map(|c| c.live_blocks).sum()
    }
}
