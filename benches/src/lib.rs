//! Benchmark harness for `pool-alloc`: see `benches/README.md`.
//!
//! * [`peers`]: the allocators compared, all reachable through `GlobalAlloc`.
//! * [`workloads`]: BENCH.md's workloads, generic over `GlobalAlloc`.
//! * [`realistic`]: programs built from well-known crates (installed only).
//! * [`driver`]: the comparison (both modes), child processes, progress.
//! * [`report`]: medians, ratios, table, CSV, JSON, SVG.
//! * [`sys`]: RSS and machine description; [`rng`]: the workloads' PRNG.
//!
//! Glossary: a *peer* is one allocator; a *round* runs every peer once
//! (A B C D); a *ratio* is a peer's value over system's in the same round.

pub mod driver;
pub mod peers;
pub mod realistic;
pub mod report;
pub mod rng;
pub mod sys;
pub mod workloads;
