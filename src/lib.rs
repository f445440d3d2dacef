#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

/// The allocator: install it as `#[global_allocator]` (see the crate
/// docs), or call it through `GlobalAlloc` directly. Every `PoolAlloc`
/// shares the same process-wide pools.
///
/// ```
/// use pool_alloc::PoolAlloc;
/// use std::alloc::{GlobalAlloc, Layout};
///
/// static A: PoolAlloc = PoolAlloc::new();
///
/// let layout = Layout::from_size_align(5000, 64).unwrap();
/// // SAFETY: a non-zero layout; the block is freed with the same layout.
/// unsafe {
///     let p = A.alloc(layout);
///     assert!(!p.is_null() && p as usize % 64 == 0);
///     assert!(pool_alloc::usable_size(p, layout) >= 5000);
///     A.dealloc(p, layout);
/// }
/// // Give back memory that sits idle, as hard as the level says.
/// let freed = A.reclaim(pool_alloc::ReclaimLevel::Moderate);
/// println!("{} bytes back to the OS", freed.bytes);
/// ```
#[doc(inline)]
pub use alloc_core::PoolAlloc;

/// Configuration for [`PoolAlloc::with_config`], a `const` builder;
/// environment variables (see [`config`]) override it at start-up.
///
/// ```
/// use pool_alloc::{Config, PoolAlloc};
///
/// #[global_allocator]
/// static GLOBAL: PoolAlloc = PoolAlloc::with_config(Config::new().trim_pages(16));
///
/// fn main() {
///     let v = vec![1u8; 100_000];
///     assert_eq!(v.iter().map(|&b| b as usize).sum::<usize>(), 100_000);
/// }
/// ```
#[doc(inline)]
pub use alloc_core::Config;

/// A [`Snapshot`] of the whole allocator's statistics (the same as
/// [`PoolAlloc::snapshot`]).
///
/// ```
/// #[global_allocator]
/// static GLOBAL: pool_alloc::PoolAlloc = pool_alloc::PoolAlloc::new();
///
/// fn main() {
///     let before = pool_alloc::snapshot();
///     let v = vec![7u8; 100_000];
///     let after = pool_alloc::snapshot();
///     assert!(after.live_bytes >= before.live_bytes + 90_000);
///     println!("{after}"); // per-class table, then totals
///     drop(v);
/// }
/// ```
#[doc(inline)]
pub use alloc_core::snapshot;

/// For blocks of every band from [`PoolAlloc`] (small, pooled, large):
#[doc(inline)]
pub use alloc_core::usable_size;

/// The length of [`Snapshot::classes`] (small and pooled classes):
#[doc(inline)]
pub use alloc_core::CLASSES;

/// 1 MiB, the end of the pooled band:
#[doc(inline)]
pub use alloc_core::POOLED_MAX;

/// Configuration: the builder and the environment variables.
pub use alloc_core::config;

/// Size classes: which class serves a size, and its block size.
pub use alloc_core::size_class;

/// Reclaim and memory pressure: escalating reclaim levels, the background
/// [`Reclaimer`], pressure levels and their callbacks (see `alloc-core`'s
/// `reclaim` docs).
///
/// ```
/// #[global_allocator]
/// static GLOBAL: pool_alloc::PoolAlloc = pool_alloc::PoolAlloc::new();
///
/// fn warn(level: pool_alloc::PressureLevel) {
///     eprintln!("memory pressure: {}", level.name());
/// }
///
/// fn main() {
///     let reclaimer = pool_alloc::Reclaimer::start();
///     let cb = pool_alloc::on_pressure(warn).unwrap();
///     let v = vec![1u8; 1 << 20];
///     drop(v);
///     let level = pool_alloc::poll();
///     assert_eq!(level, pool_alloc::PressureLevel::Low);
///     pool_alloc::unregister_pressure_callback(cb);
///     reclaimer.stop();
/// }
/// ```
#[doc(inline)]
pub use alloc_core::{
    current_level, last_level, on_pressure, poll, reclaim, unregister_pressure_callback,
    PressureCallback, PressureLevel, ReclaimLevel, Reclaimed, Reclaimer,
};

/// Statistics: snapshots, reports, the leak detector, and [`Counting`]
/// (a counting wrapper for any other `GlobalAlloc`).
///
/// [`Counting`]: alloc_stats::Counting
pub use alloc_stats as stats;

pub mod profile;

/// The stats history: record snapshots with [`tick`] or the [`Sampler`]
/// thread, and read the leak-risk report from them.
///
/// ```
/// #[global_allocator]
/// static GLOBAL: pool_alloc::PoolAlloc = pool_alloc::PoolAlloc::new();
///
/// fn main() {
///     let mut history = pool_alloc::stats::LeakDetector::with_capacity(30);
///     for _ in 0..5 {
///         let _v = vec![0u8; 10_000];
///         pool_alloc::tick(&mut history);
///     }
///     let report = history.report();
///     println!("{report}");
///     assert_eq!(report.level, pool_alloc::stats::LeakLevel::Low);
/// }
/// ```
#[doc(inline)]
pub use alloc_core::{snapshot_into, tick, Sampler};

/// A point-in-time view of the allocator, from [`snapshot`].
#[doc(inline)]
pub use alloc_stats::Snapshot;

/// Test-only fault injection (feature `failpoints`): make the allocator's
/// `mmap`, `mremap` and `madvise` calls fail at random.
#[cfg(feature = "failpoints")]
pub use alloc_core::failpoints;

/// Test support for programs that use the allocator: measure what a piece
/// of code allocates, and assert that an operation does not leak.
pub mod testing {
    use alloc_stats::Snapshot;

    /// What changed between two points, process-wide (every thread's
    /// allocations count, so measure on a quiet process).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Change {
        /// Allocations made (small, pooled and large).
        pub allocs: u64,
        /// Frees made.
        pub frees: u64,
        /// Live requested bytes now minus at the start (negative: freed).
        pub live_bytes: i64,
    }

    /// A measuring point: [`Region::change`] says what happened since.
    ///
    /// ```
    /// #[global_allocator]
    /// static GLOBAL: pool_alloc::PoolAlloc = pool_alloc::PoolAlloc::new();
    ///
    /// fn main() {
    ///     let mut r = pool_alloc::testing::Region::new();
    ///     let v: Vec<Vec<u8>> = (0..10).map(|_| vec![0u8; 1000]).collect();
    ///     let c = r.change();
    ///     assert!(c.allocs >= 11 && c.live_bytes >= 10_000);
    ///     drop(v);
    /// }
    /// ```
    pub struct Region {
        start: Snapshot,
        now: Snapshot,
    }

    fn totals(s: &Snapshot) -> (u64, u64) {
        let allocs = s.classes.iter().map(|c| c.allocs).sum::<u64>() + s.large.allocs;
        let frees = s.classes.iter().map(|c| c.frees).sum::<u64>() + s.large.frees;
        (allocs, frees)
    }

    impl Region {
        /// Start measuring now. Both snapshots are made first and then
        /// refilled in place, so measuring allocates nothing itself.
        pub fn new() -> Region {
            let mut r = Region {
                start: crate::snapshot(),
                now: crate::snapshot(),
            };
            crate::snapshot_into(&mut r.start);
            r
        }

        /// What changed since [`Region::new`].
        pub fn change(&mut self) -> Change {
            crate::snapshot_into(&mut self.now);
            let (a0, f0) = totals(&self.start);
            let (a1, f1) = totals(&self.now);
            Change {
                allocs: a1.saturating_sub(a0),
                frees: f1.saturating_sub(f0),
                live_bytes: self.now.live_bytes as i64 - self.start.live_bytes as i64,
            }
        }
    }

    impl Default for Region {
        fn default() -> Self {
            Self::new()
        }
    }

    /// Run `op` `warmup` times, then `iterations` more times, and panic if
    /// live memory grew by more than `slack` bytes over the measured
    /// iterations, naming the size class that grew the most.
    ///
    /// ```
    /// #[global_allocator]
    /// static GLOBAL: pool_alloc::PoolAlloc = pool_alloc::PoolAlloc::new();
    ///
    /// fn main() {
    ///     let mut cache = std::collections::HashMap::new();
    ///     // A bounded cache: no leak.
    ///     pool_alloc::testing::assert_no_leak(100, 1000, 4096, || {
    ///         cache.insert(cache.len() % 50, vec![0u8; 64]);
    ///     });
    /// }
    /// ```
    #[track_caller]
    pub fn assert_no_leak(warmup: usize, iterations: usize, slack: u64, mut op: impl FnMut()) {
        for _ in 0..warmup {
            op();
        }
        // Both snapshots are made before measuring and refilled in place:
        // measuring allocates nothing itself.
        let mut before = crate::snapshot();
        let mut after = crate::snapshot();
        crate::snapshot_into(&mut before);
        for _ in 0..iterations {
            op();
        }
        crate::snapshot_into(&mut after);
        let grew = after.live_bytes as i64 - before.live_bytes as i64;
        if grew > slack as i64 {
            let worst = before
                .classes
                .iter()
                .zip(&after.classes)
                .max_by_key(|(b, a)| a.live_requested_bytes as i64 - b.live_requested_bytes as i64)
                .map(|(b, a)| {
                    format!(
                        "class {} grew {} bytes",
                        alloc_stats::human_bytes(a.block_size as u64),
                        a.live_requested_bytes as i64 - b.live_requested_bytes as i64
                    )
                })
                .unwrap_or_default();
            panic!(
                "live memory grew by {grew} bytes over {iterations} iterations \
                 (more than {slack}); {worst}"
            );
        }
    }
}
