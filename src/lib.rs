#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub use alloc_core::{
    config, size_class, snapshot, usable_size, Config, PoolAlloc, CLASSES, POOLED_MAX,
};
pub use alloc_stats as stats;
pub use alloc_stats::Snapshot;
