//! The `sync` shim: std atomics normally, loom's under `--cfg loom`.
//!
//! Every lock-free structure in this crate takes its atomics from here, so
//! `RUSTFLAGS="--cfg loom"` model-checks the same code that ships.

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering};

#[cfg(loom)]
#[allow(unused_imports)] // the models use a subset
pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering};

/// Spin-wait hint for the rare waits on slow paths (a remote freeer finishing
/// its hand-off). Never used on a fast path.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(not(loom))]
    core::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}
