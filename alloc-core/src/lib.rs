//! The allocator core: a size-classed pooling `GlobalAlloc`.
//!
//! # Glossary
//!
//! * **OS page**: 4 KiB, the unit of `mmap`/`madvise`.
//! * **segment**: a 4 MiB mapping aligned to 4 MiB; its first slice is a
//!   header with one descriptor per slice. `addr & !(4 MiB - 1)` finds it.
//! * **slice**: 64 KiB of a segment; slabs are runs of slices.
//! * **slab**: a run of slices carved into blocks of one size class, with
//!   its own free lists; owned by one heap.
//! * **block**: what `alloc` returns.
//! * **class**: a block size. Small (<= 3584 B, fine-grained), pooled
//!   (4 KiB..=1 MiB, each 1.5x the last), or large (above 1 MiB: a mapping
//!   of its own, see `large.rs`).
//! * **heap**: a thread's allocator state: per class a queue of slabs, the
//!   segments it owns. Reached through a plain TLS load.
//! * **remote free**: a free by a thread other than the slab's owner; goes
//!   to the slab's atomic `thread_free` stack (`remote.rs`).
//! * **abandoned heap**: the heap of an exited thread, awaiting adoption.
//!
//! One concern per file: `size_class.rs`, `slab.rs`, `segment.rs`,
//! `heap.rs` (thread heaps, alloc/free paths), `remote.rs` (cross-thread
//! lists), `large.rs`, `cache.rs`, `os.rs` (every system call), `config.rs`,
//! `stats.rs`, `sync.rs` (the loom shim).

#![warn(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![cfg_attr(loom, allow(dead_code))]

// `--cfg loom` builds compile only the lock-free modules and their models
// (loom's atomics are not `const`, so the allocator's statics cannot be built
// with them).
mod cache;
mod counters;
mod handoff;
mod remote;
mod sync;

#[cfg(all(test, loom))]
mod loom_tests;

#[cfg(not(loom))]
pub mod config;
#[cfg(not(loom))]
mod heap;
#[cfg(not(loom))]
mod large;
#[cfg(not(loom))]
mod os;
#[cfg(not(loom))]
mod pool;
#[cfg(not(loom))]
mod segment;
#[cfg(not(loom))]
pub mod size_class;
#[cfg(not(loom))]
mod slab;
#[cfg(not(loom))]
mod stats;
#[cfg(not(loom))]
mod valgrind;

#[cfg(not(loom))]
pub use config::Config;
#[cfg(not(loom))]
pub use pool::{usable_size, PoolAlloc};
#[cfg(not(loom))]
pub use size_class::{CLASSES, POOLED_MAX};
#[cfg(not(loom))]
pub use stats::snapshot;
