#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub use alloc_core::{
    config, current_level, last_level, on_pressure, poll, reclaim, size_class, snapshot,
    unregister_pressure_callback, usable_size, Config, PoolAlloc, PressureCallback, PressureLevel,
    ReclaimLevel, Reclaimed, Reclaimer, CLASSES, POOLED_MAX,
};
pub use alloc_stats as stats;
pub use alloc_stats::Snapshot;
