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

/// Statistics: snapshots, reports, the leak detector, and [`Counting`]
/// (a counting wrapper for any other `GlobalAlloc`).
///
/// [`Counting`]: alloc_stats::Counting
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

pub use alloc_stats as stats;

/// The stats history: record snapshots with [`tick`] or the [`Sampler`]
/// thread, and read the leak-risk report from them.
///
/// ```
/// #[global_allocator]
/// static GLOBAL: pool_alloc::PoolAlloc = pool_alloc::PoolAlloc::new();
///
/// fn main() {
///     let mut history = pool_alloc::stats_history(30);
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
pub use alloc_core::{snapshot_into, stats_history, tick, Sampler};

/// A point-in-time view of the allocator, from [`snapshot`].
#[doc(inline)]
pub use alloc_stats::Snapshot;

/// Test-only fault injection (feature `failpoints`): make the allocator's
/// `mmap`, `mremap` and `madvise` calls fail at random.
#[cfg(feature = "failpoints")]
pub use alloc_core::failpoints;
