//! The `sync` shim: std atomics normally, loom's under `--cfg loom`.
//!
//! Every lock-free structure in this crate takes its atomics from here, so
//! `RUSTFLAGS="--cfg loom"` model-checks the same code that ships.
//!
//! Spin-waits use crossbeam-utils' [`Backoff`] in normal builds. Under loom
//! a spinning thread must yield to loom's scheduler or the model never ends,
//! and `Backoff` knows nothing of loom, so the loom half has a `Backoff` of
//! its own whose every wait is `loom::thread::yield_now`.

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
#[cfg(not(loom))]
pub(crate) use crossbeam_utils::Backoff;

#[cfg(loom)]
#[allow(unused_imports)] // the models use a subset
pub(crate) use loom::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};

/// Under loom: every wait hands control to loom's scheduler.
#[cfg(loom)]
pub(crate) struct Backoff;

#[cfg(loom)]
#[allow(dead_code)] // the models use a subset
impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff
    }
    pub(crate) fn spin(&self) {
        loom::thread::yield_now();
    }
    pub(crate) fn snooze(&self) {
        loom::thread::yield_now();
    }
}
