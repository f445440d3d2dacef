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
mod fields;
mod history;
mod leak;
mod report;
mod sync;
pub use report::human_bytes;

pub use counting::{Counting, CountingStats, MAX_CLASSES};
use fields::stat_struct;
pub use fields::{Field, Figure, Kind};
pub use history::History;
pub use leak::{assess, LeakDetector, LeakLevel, LeakReport, Suspect, WINDOWS_FOR_HIGH};

stat_struct! {
    /// Figures for one size class. The list of figures is written once
    /// (`fields.rs`): struct, merge, JSON and Prometheus come from it.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub struct ClassStats {
        (class: usize, Label, "", "Index of the class."),
        (block_size: usize, Label, "bytes", "Block size of the class in bytes."),
        (allocs: u64, Counter, "", "Allocations served so far."),
        (frees: u64, Counter, "", "Frees so far."),
        (live_blocks: u64, Gauge, "blocks", "Blocks live now (allocs - frees)."),
        (live_requested_bytes: u64, Gauge, "bytes", "Bytes the program asked for, live now."),
        (live_rounded_bytes: u64, Gauge, "bytes", "Bytes the live blocks occupy (live blocks x block size)."),
        (peak_live_bytes: u64, Peak, "bytes", "The highest live requested bytes any snapshot has seen."),
        (carved: u64, Counter, "blocks", "Blocks carved fresh from slab memory so far; every other allocation reused a freed block (see `ClassStats::reuse_rate`)."),
        (slabs: u64, Gauge, "slabs", "Slabs of this class in use."),
        (slabs_kept: u64, Gauge, "slabs", "Empty slabs kept for reuse now."),
        (oldest_kept_idle_ms: u64, Level, "ms", "Idle age of the oldest kept empty slab (approximately: since the class's kept slabs last went from none to some); 0 when none is kept."),
        (slabs_released: u64, Counter, "slabs", "Slabs released so far (emptied, their memory made idle for any class to reuse or for reclaim to give back)."),
        (returned_bytes: u64, Counter, "bytes", "Bytes given back to the OS so far from memory this class's slabs last held."),
    }
    extra {}
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

stat_struct! {
    /// Figures for blocks mapped directly (above the pooled band).
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub struct LargeStats {
        (allocs: u64, Counter, "", "Large allocations so far."),
        (frees: u64, Counter, "", "Large frees so far."),
        (live_bytes: u64, Gauge, "bytes", "Bytes asked for, live now."),
        (mapped_bytes: u64, Gauge, "bytes", "Bytes mapped for large blocks (live and cached)."),
        (cached_bytes: u64, Gauge, "bytes", "Bytes held by freed mappings kept for reuse."),
    }
    extra {}
}

/// Milliseconds of a monotonic clock since this process first asked.
pub(crate) fn now_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

/// Names of the reclaim levels, in the order of [`ReclaimStats::runs`].
pub const RECLAIM_LEVELS: [&str; 4] = ["gentle", "moderate", "aggressive", "emergency"];
/// Names of the pressure levels, in the order of
/// [`ReclaimStats::pressure_events`] and the value of
/// [`ReclaimStats::pressure_level`].
pub const PRESSURE_LEVELS: [&str; 4] = ["low", "medium", "high", "critical"];

stat_struct! {
    /// Memory kept idle, given back, and memory pressure.
    #[derive(Clone, Debug, Default, PartialEq)]
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub struct ReclaimStats {
        (in_use_bytes: u64, Gauge, "bytes", "Bytes of slabs in use (slices holding blocks, or kept for them)."),
        (idle_bytes: u64, Gauge, "bytes", "Idle memory: free slices still committed, kept for reuse until they pass their idle time or a budget."),
        (limit_bytes: u64, Level, "bytes", "The memory limit in force (configured, cgroup, or physical memory)."),
        (pool_budget_bytes: u64, Level, "bytes", "The pool budget (configured, else the limit)."),
        (utilisation: f64, Level, "ratio", "Committed pooled memory (in use + idle) / pool budget."),
        (pressure_level: u8, Level, "", "Pressure level now: 0 low, 1 medium, 2 high, 3 critical (`PRESSURE_LEVELS`)."),
    }
    extra {
        /// `reclaim()` calls per level ([`RECLAIM_LEVELS`]).
        runs: [u64; 4],
        /// Bytes those calls gave back, per level.
        bytes: [u64; 4],
        /// Pressure callback rounds per level ([`PRESSURE_LEVELS`]).
        pressure_events: [u64; 4],
    }
}

stat_struct! {
/// Live memory allocated inside one component (a name a thread sets with
/// `pool_alloc::profile::component`), estimated from the leak
/// investigator's samples.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ComponentStats {
        (live_bytes_estimated: u64, Gauge, "bytes", "Live bytes allocated inside the component, estimated from the leak investigator's samples."),
        (samples_live: u64, Gauge, "samples", "Live sampled blocks allocated inside the component."),
    }
    extra {
        /// The component's name ("" for memory allocated outside any).
        name: String,
    }
}

stat_struct! {
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
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Snapshot {
        (taken_at_ms: u64, Level, "ms", "Milliseconds of a monotonic clock when taken."),
        (mapped_bytes: u64, Gauge, "bytes", "Address space mapped from the OS (segments, large blocks, metadata)."),
        (resident_bytes: u64, Gauge, "bytes", "Resident memory of the process (from `/proc/self/statm`)."),
        (live_bytes: u64, Gauge, "bytes", "Bytes the program asked for, live now (all bands)."),
        (cached_bytes: u64, Gauge, "bytes", "Bytes held free for reuse: empty segments kept mapped and large mappings in the cache."),
        (returned_bytes: u64, Counter, "bytes", "Bytes given back to the OS so far (unmapped or decommitted)."),
        (threads_live: u64, Gauge, "", "Threads with a heap now."),
        (heaps_abandoned: u64, Gauge, "", "Heaps of exited threads waiting for reuse."),
    }
    extra {
        /// Per size class, in class order (classes never used included).
        classes: Vec<ClassStats>,
        /// Directly mapped blocks.
        large: LargeStats,
        /// Idle memory, reclaim and pressure.
        reclaim: ReclaimStats,
        /// Live memory per component, from the leak investigator's samples
        /// (components with live samples only, most first).
        components: Vec<ComponentStats>,
        /// True when the classes' `carved` was not measured, so their reuse
        /// is unknown: a [`Counting`] wrapper sees sizes, not the wrapped
        /// allocator's free lists. The table then prints `-` for reuse, JSON
        /// `null`, and Prometheus leaves out `carved`.
        #[cfg_attr(feature = "serde", serde(default))]
        reuse_unknown: bool,
    }
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

    /// Merge `other` into `self` (say, two processes' snapshots, or a
    /// snapshot and a `Counting` wrapper's): every figure as its kind says
    /// (`fields.rs`), the class tables row by row.
    pub fn merge(&mut self, other: &Snapshot) {
        self.merge_figures(other);
        self.reuse_unknown |= other.reuse_unknown;
        self.large.merge_figures(&other.large);
        self.reclaim.merge_figures(&other.reclaim);
        for i in 0..4 {
            self.reclaim.runs[i] += other.reclaim.runs[i];
            self.reclaim.bytes[i] += other.reclaim.bytes[i];
            self.reclaim.pressure_events[i] += other.reclaim.pressure_events[i];
        }
        if self.classes.len() < other.classes.len() {
            self.classes
                .resize(other.classes.len(), ClassStats::default());
        }
        for (mine, theirs) in self.classes.iter_mut().zip(&other.classes) {
            if mine.block_size == 0 {
                mine.class = theirs.class;
                mine.block_size = theirs.block_size;
            }
            mine.merge_figures(theirs);
        }
        for theirs in &other.components {
            match self.components.iter_mut().find(|c| c.name == theirs.name) {
                Some(mine) => mine.merge_figures(theirs),
                None => self.components.push(theirs.clone()),
            }
        }
    }

    /// Sum of live blocks over the pooled and small classes.
    pub fn live_blocks(&self) -> u64 {
        self.classes.iter().map(|c| c.live_blocks).sum()
    }
}
