//! Seeded fill patterns: write a block's probe offsets with bytes derived
//! from a seed, check them later (before a free, after a realloc), and check
//! that a zeroed block reads zero at the same offsets.
//!
//! Two probe strategies pick the offsets:
//!
//! * [`Probes::Dense`] (tests): every byte of the first and last 4 KiB, and
//!   every 509th byte between. 509 is an odd prime, so successive probes
//!   walk across page offsets, and every OS page of the block is touched.
//! * [`Probes::Sparse`] (fuzzing): at most about 75 bytes per block, so a
//!   4 MiB block costs a few dozen page touches, not a thousand page faults.
//!   The first 32 and last 8 bytes (where free lists and headers live) and
//!   the bytes whose *address* is a multiple of a power-of-two stride chosen
//!   so that at most 33 of them fall inside the block. Because the stride is
//!   a power of two and anchored to the address, two blocks that share
//!   memory probe the same addresses there: a zeroing check on a reused
//!   block meets the previous occupant's writes.

use core::iter::{Chain, StepBy};
use core::ops::Range;

/// Which offsets of a block are written and checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probes {
    /// First and last 4 KiB in full, every 509th byte between.
    Dense,
    /// A bounded number of bytes per block (head, tail, address stride).
    Sparse,
}

/// The offsets a strategy yields (one iterator type for both).
pub type Offsets = Chain<Chain<Range<usize>, StepBy<Range<usize>>>, Range<usize>>;

const DENSE_EDGE: usize = 4096;
const DENSE_STEP: usize = 509;
const SPARSE_HEAD: usize = 32;
const SPARSE_TAIL: usize = 8;
const SPARSE_MIN_STRIDE: usize = 64;
const SPARSE_PROBES: usize = 32;

impl Probes {
    /// The offsets probed in a block of `size` bytes whose probe positions
    /// are anchored at address `anchor` (the block's address when it was
    /// filled; only [`Probes::Sparse`] depends on it). Increasing, no
    /// duplicates, all below `size`.
    pub fn offsets(self, anchor: usize, size: usize) -> Offsets {
        match self {
            Probes::Dense => {
                let head = size.min(DENSE_EDGE);
                let tail = size.saturating_sub(DENSE_EDGE).max(head);
                (0..head)
                    .chain((head..tail).step_by(DENSE_STEP))
                    .chain(tail..size)
            }
            Probes::Sparse => {
                let head = size.min(SPARSE_HEAD);
                let tail = size.saturating_sub(SPARSE_TAIL).max(head);
                let stride = (size / SPARSE_PROBES)
                    .next_power_of_two()
                    .max(SPARSE_MIN_STRIDE);
                // First offset at or after `head` whose address is a
                // multiple of `stride`.
                let first = (anchor.wrapping_add(head).wrapping_add(stride - 1) & !(stride - 1))
                    .wrapping_sub(anchor);
                (0..head)
                    .chain((first.max(head)..tail).step_by(stride))
                    .chain(tail..size)
            }
        }
    }
}

/// The byte a block filled with `seed` holds at offset `i`. Cheap (the fuzz
/// harness calls it for every probe); consecutive seeds give different bytes
/// at every offset.
#[inline]
pub fn byte(seed: u64, i: usize) -> u8 {
    let s = (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8;
    s.wrapping_add((i as u8).wrapping_mul(31)) ^ (i >> 8) as u8 ^ (i >> 16) as u8
}

/// Write the pattern of `seed` at the probe offsets of the block `p..p+size`.
///
/// # Safety
///
/// `p..p + size` is writable memory owned by the caller.
pub unsafe fn fill(p: *mut u8, size: usize, seed: u64, probes: Probes) {
    for i in probes.offsets(p as usize, size) {
        // SAFETY: `i < size`; the caller owns `p..p + size`.
        unsafe { *p.add(i) = byte(seed, i) };
    }
}

/// Check that the block `p..p+size` still holds the pattern of `seed` that
/// [`fill`] wrote there. Panics naming the block and offset otherwise.
///
/// # Safety
///
/// `p..p + size` is readable memory owned by the caller.
#[track_caller]
pub unsafe fn check(p: *const u8, size: usize, seed: u64, probes: Probes) {
    // SAFETY: forwarded; the anchor is where the block was filled.
    unsafe { check_moved(p, p as usize, size, size, seed, probes) }
}

/// Check the first `upto` bytes of a block that was filled at address
/// `anchor` with `size` bytes and now lives at `p` (after a realloc that
/// moved it, shrank it or both): the probes of the original block that are
/// below `upto` must still hold the pattern.
///
/// # Safety
///
/// `p..p + upto.min(size)` is readable memory owned by the caller.
#[track_caller]
pub unsafe fn check_moved(
    p: *const u8,
    anchor: usize,
    size: usize,
    upto: usize,
    seed: u64,
    probes: Probes,
) {
    for i in probes.offsets(anchor, size).take_while(|&i| i < upto) {
        // SAFETY: `i < upto.min(size)`; the caller owns that prefix.
        let got = unsafe { *p.add(i) };
        let want = byte(seed, i);
        assert!(
            got == want,
            "block {p:?} ({size} B, seed {seed}): byte {i} is {got:#04x}, expected {want:#04x}"
        );
    }
}

/// Check that the block `p..p+size` reads zero at its probe offsets.
///
/// # Safety
///
/// `p..p + size` is readable memory owned by the caller.
#[track_caller]
pub unsafe fn check_zeroed(p: *const u8, size: usize, probes: Probes) {
    for i in probes.offsets(p as usize, size) {
        // SAFETY: `i < size`; the caller owns `p..p + size`.
        let got = unsafe { *p.add(i) };
        assert!(
            got == 0,
            "zeroed block {p:?} ({size} B): byte {i} is {got:#04x}"
        );
    }
}

/// [`fill`] on a slice.
pub fn fill_slice(block: &mut [u8], seed: u64, probes: Probes) {
    // SAFETY: the slice is ours to write for its length.
    unsafe { fill(block.as_mut_ptr(), block.len(), seed, probes) }
}

/// [`check`] on a slice.
#[track_caller]
pub fn check_slice(block: &[u8], seed: u64, probes: Probes) {
    // SAFETY: the slice is ours to read for its length.
    unsafe { check(block.as_ptr(), block.len(), seed, probes) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_covers_the_edges_and_every_page() {
        for size in [1usize, 100, 4096, 4097, 8192, 8193, 20_000, 3 << 20] {
            let v: Vec<usize> = Probes::Dense.offsets(0, size).collect();
            assert!(v.windows(2).all(|w| w[0] < w[1]), "increasing");
            assert_eq!(v[0], 0);
            assert_eq!(*v.last().unwrap(), size - 1);
            let edge = size.min(4096);
            assert!((0..edge).all(|i| v.binary_search(&i).is_ok()));
            assert!((size - edge..size).all(|i| v.binary_search(&i).is_ok()));
            let pages: std::collections::BTreeSet<usize> = v.iter().map(|i| i / 4096).collect();
            assert_eq!(pages.len(), size.div_ceil(4096), "every page of {size}");
        }
    }

    #[test]
    fn sparse_is_bounded_and_anchored_to_the_address() {
        for size in [1usize, 31, 32, 40, 64, 100, 3584, 4097, 1 << 20, 4 << 20] {
            for anchor in [0usize, 16, 4096, 0x1234_5670] {
                let v: Vec<usize> = Probes::Sparse.offsets(anchor, size).collect();
                assert!(v.windows(2).all(|w| w[0] < w[1]), "increasing");
                assert!(v.len() <= 32 + 8 + 33, "{size}: {} probes", v.len());
                assert_eq!(v[0], 0);
                assert_eq!(*v.last().unwrap(), size - 1);
            }
        }
        // A smaller block inside a larger one's memory probes every address
        // the larger one probed there (nested power-of-two strides).
        let (big, big_at) = (1usize << 20, 0x1000_0000usize);
        let (small, small_at) = (70_000usize, big_at + 12_345);
        let big_addrs: Vec<usize> = Probes::Sparse
            .offsets(big_at, big)
            .map(|i| big_at + i)
            .filter(|&a| a >= small_at + 32 && a < small_at + small - 8)
            .collect();
        let small_addrs: Vec<usize> = Probes::Sparse
            .offsets(small_at, small)
            .map(|i| small_at + i)
            .collect();
        assert!(!big_addrs.is_empty());
        assert!(big_addrs.iter().all(|a| small_addrs.contains(a)));
    }

    #[test]
    fn fill_then_check_and_a_corruption_is_caught() {
        for probes in [Probes::Dense, Probes::Sparse] {
            let mut v = vec![0u8; 50_000];
            fill_slice(&mut v, 7, probes);
            check_slice(&v, 7, probes);
            let hit = probes
                .offsets(v.as_ptr() as usize, v.len())
                .nth(40)
                .unwrap();
            v[hit] ^= 1;
            let r = std::panic::catch_unwind(|| check_slice(&v, 7, probes));
            assert!(r.is_err(), "{probes:?}: corruption at {hit} missed");
        }
    }

    #[test]
    fn consecutive_seeds_differ_everywhere() {
        for seed in 0..300u64 {
            for i in [0usize, 1, 255, 4096, 1 << 20] {
                assert_ne!(byte(seed, i), byte(seed + 1, i), "seed {seed} offset {i}");
            }
        }
    }
}
