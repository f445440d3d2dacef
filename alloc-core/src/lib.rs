//! The allocator core: a size-classed pooling `GlobalAlloc`.
//!
//! # Glossary
//!
//! * **OS page**: 4 KiB, the unit of `mmap`/`madvise`.
//! * **segment**: a 4 MiB mapping aligned to 4 MiB; its first slice is a
//!   header with one descriptor per slice. `addr & !(4 MiB - 1)` finds it.
//! * **slice**: 64 KiB of a segment. A **run** is a range of free slices
//!   handed out together; slabs are made of runs.
//! * **slab**: a run carved into blocks of one size class, with its own
//!   free lists; owned by one heap.
//! * **block**: what `alloc` returns.
//! * **class**: a block size. Small (<= 3584 B, fine-grained), pooled
//!   (4 KiB..=1 MiB, each 1.5x the last), or large (above 1 MiB: a mapping
//!   of its own, see `large.rs`).
//! * **heap**: a thread's allocator state: per class a queue of slabs, the
//!   segments it owns. Reached through a plain TLS load.
//! * **collect** (a slab's frees): move its `local_free` and remote frees
//!   onto its `free` list. Nothing else is called "collect".
//! * **release**: give free memory back: slabs to their segments, segments
//!   to the cache or the OS.
//! * **decommit**: `madvise` pages away; the address space stays.
//! * **remote free**: a free by a thread other than the slab's owner; goes
//!   to the slab's atomic `thread_free` stack (`remote.rs`).
//! * **abandoned heap**: the heap of an exited thread, awaiting adoption.
//!
//! # Modules, top to bottom
//!
//! Dependencies point down only (`scripts/check_arch.py`, run by CI,
//! fails on an edge that points up, and so on any cycle):
//!
//! | layer | module | what it owns |
//! | --- | --- | --- |
//! | C face | `cabi.rs` | `malloc`-family semantics (no size on free), fork handlers, for `alloc-preload` |
//! | face | `pool.rs` | `PoolAlloc`, `GlobalAlloc`: band dispatch, alignment, realloc |
//! | | `stats.rs` | `snapshot()`: sums the counters into an `alloc_stats` value |
//! | | `reclaim.rs` | reclaim levels, the background `Reclaimer`, pressure sampling and callbacks |
//! | | `sampler.rs` | the stats history: `tick()` and the `Sampler` thread |
//! | | `background.rs` | the periodic thread both of those run on |
//! | heap | `heap/mod.rs` | the `Heap` type, TLS slot, registry |
//! | | `heap/alloc.rs` | **the allocation fast path** `alloc_fast`, and the slow path |
//! | | `heap/free.rs` | **the free fast path** `free`, remote frees, emptied slabs |
//! | | `heap/queue.rs` | per-class slab queues |
//! | | `heap/exit.rs` | thread exit, adoption, sweeping abandoned heaps |
//! | | `heap/reclaim.rs` | idle memory back across heaps (other threads', abandoned) |
//! | large | `large.rs` | blocks above 1 MiB (and over-aligned ones) |
//! | slab | `slab.rs` | the slab descriptor, `slab_of`, free lists, carving |
//! | segment | `segment.rs` | 4 MiB segments, runs of slices, idle ages, the segment cache |
//! | limits | `limits.rs` | the memory limit, pool budget, retained budget, hard limit |
//! | os | `os.rs` | every system call |
//! | leaves | `size_class.rs` | classes and their O(1) lookup |
//! | | `extent.rs` | pooled blocks' touched extents (tail trimming) |
//! | | `profile.rs` | the leak investigator's sample table, sampling interval, components |
//! | | `unwind.rs` | stack capture: the system unwinder, then a cache of frame offsets |
//! | | `slots.rs` | the sample table's lock-free free-slot stack and record sequence locks |
//! | | `pages.rs` | page runs of big pooled blocks: best fit, coalescing, idle pages |
//! | | `remote.rs` | the remote-free stack and delayed hand-off |
//! | | `cache.rs` | a bounded lock-free cache of whole mappings |
//! | | `hardening.rs` | hardened mode: encoded free-list links, the segment map |
//! | | `handoff.rs` | the heap hand-over state (abandon / claim) |
//! | | `pressure.rs` | pressure levels, their firing state, the callback slots |
//! | | `counters.rs` | single-writer counters, process-wide gauges |
//! | | `config.rs` | `Config`, environment variables, one-time init |
//! | | `valgrind.rs` | memcheck client requests (feature `valgrind`) |
//! | | `sync.rs` | atomics and `Backoff`: std normally, loom under `--cfg loom` |
//! | | `loom_tests.rs` | loom models of the lock-free leaves |

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![cfg_attr(loom, allow(dead_code))]

// `--cfg loom` builds compile only the lock-free modules and their models
// (loom's atomics are not `const`, so the allocator's statics cannot be built
// with them).
#[cfg(not(loom))]
mod background;
mod cache;
mod counters;
mod handoff;
mod hardening;
mod remote;
mod slots;
mod sync;

#[cfg(all(test, loom))]
mod loom_tests;

#[cfg(not(loom))]
pub mod cabi;
#[cfg(not(loom))]
pub mod config;
#[cfg(not(loom))]
mod extent;
#[cfg(not(loom))]
mod heap;
#[cfg(not(loom))]
mod large;
#[cfg(not(loom))]
mod limits;
#[cfg(not(loom))]
mod os;
#[cfg(not(loom))]
mod pages;
#[cfg(not(loom))]
mod pool;
mod pressure;
#[cfg(not(loom))]
pub mod profile;
#[cfg(not(loom))]
mod reclaim;
#[cfg(not(loom))]
mod sampler;
#[cfg(not(loom))]
mod segment;
#[cfg(not(loom))]
pub mod size_class;
#[cfg(not(loom))]
mod slab;
#[cfg(not(loom))]
mod stats;
#[cfg(not(loom))]
mod unwind;
#[cfg(not(loom))]
mod valgrind;

#[cfg(not(loom))]
pub use config::Config;
#[cfg(all(not(loom), feature = "failpoints"))]
pub use os::failpoints;
#[cfg(not(loom))]
pub use pool::{usable_size, PoolAlloc};
#[cfg(not(loom))]
pub use pressure::{PressureCallback, PressureLevel};
#[cfg(not(loom))]
pub use reclaim::{
    current_level, last_level, on_pressure, poll, reclaim, unregister_pressure_callback,
    ReclaimLevel, Reclaimed, Reclaimer,
};
#[cfg(all(not(loom), feature = "metrics"))]
pub use sampler::publish;
#[cfg(not(loom))]
pub use sampler::{tick, Sampler};
#[cfg(not(loom))]
pub use size_class::{CLASSES, POOLED_MAX};
#[cfg(not(loom))]
pub use stats::{profile_counters, snapshot, snapshot_into};
