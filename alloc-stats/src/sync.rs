//! The `sync` shim: std atomics normally, loom's under `--cfg loom`, so the
//! `Counting` wrapper's counters are model-checked as they ship.

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU64, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};
