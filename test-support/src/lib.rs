//! Helpers shared by the integration tests (`tests/`) and the fuzz harness
//! (`fuzz/`), so each exists once:
//!
//! * [`pattern`]: fill a block with a seeded pattern and check it later,
//!   probing a bounded set of offsets so large blocks are not scanned whole.
//! * [`ranges`]: the live blocks as a `BTreeMap` of address ranges, so a new
//!   block is checked for overlap in O(log n).
//! * [`child`]: re-run the current test binary as a child process running
//!   one test with an environment variable set.
//! * [`rng`]: the seeded pseudo-random generator the tests draw from.

#![warn(missing_docs)]
#![warn(unsafe_op_in_unsafe_fn)]

pub mod child;
pub mod pattern;
pub mod ranges;
pub mod rng;
