//! Hardened mode (feature `hardened`, switched on at run time by
//! `POOL_ALLOC_HARDENED=1` or `Config::hardened`): what the checks of the
//! C face (`cabi.rs`) stand on.
//!
//! * **Encoded free-list links.** A free block's link word holds
//!   `rotl(next ^ k0, r) ^ at` (`at`: the block's own address), with `k0`
//!   and `r` drawn from the kernel's random bytes at start. A heap overflow
//!   that overwrites a link cannot aim it, and a freed block is
//!   recognisable: its first word decodes to a block of its own slab (or
//!   null), which a live block's data does with odds of about 2^-40. The
//!   allocation paths clear the link word of a block they hand out, so a
//!   block freed without being written is not mistaken for a free one.
//! * **Segment map.** One bit per 4 MiB of the 47-bit address space (a
//!   4 MiB zero-initialised table, committed only where touched), set while
//!   a segment or large block of ours lives there: a pointer whose segment
//!   bit is clear was never ours (or was freed with its mapping).
//! * **Zero on free** (`POOL_ALLOC_ZERO_ON_FREE=1`): C frees clear the
//!   block first (for sensitive data).
//!
//! Without the feature every function here is a constant no-op the
//! compiler removes: links are stored plain.

// NB: core's atomics even under loom: these are keys and switches set once
// at start, not shared state a loom model explores.
#[cfg(all(feature = "hardened", not(loom)))]
use core::sync::atomic::AtomicU64;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

/// Hardened checks on.
static ON: AtomicBool = AtomicBool::new(false);
/// Clear blocks on C frees.
static ZERO: AtomicBool = AtomicBool::new(false);
/// Link key, rotation and address mask (all 0 when off: links plain).
static K0: AtomicUsize = AtomicUsize::new(0);
static ROT: AtomicUsize = AtomicUsize::new(0);
static MASK: AtomicUsize = AtomicUsize::new(0);

/// Bits of user address space the segment map covers.
#[cfg(all(feature = "hardened", not(loom)))]
const ADDRESS_BITS: u32 = 47;
/// log2 of the segment size (4 MiB).
#[cfg(all(feature = "hardened", not(loom)))]
const SEG_SHIFT: u32 = 22;
#[cfg(all(feature = "hardened", not(loom)))]
static MAP: [AtomicU64; 1 << (ADDRESS_BITS - SEG_SHIFT - 6)] =
    [const { AtomicU64::new(0) }; 1 << (ADDRESS_BITS - SEG_SHIFT - 6)];

/// Switch hardening on with keys `k0` and `k1` (random), and zero on free
/// with `zero`. Called once by `config` initialisation, before any heap
/// exists (so before any link is written).
pub(crate) fn init(on: bool, zero: bool, k0: u64, k1: u64) {
    if !cfg!(feature = "hardened") || !on {
        return;
    }
    K0.store(k0 as usize | 1, Relaxed);
    ROT.store((k1 as usize % 63) + 1, Relaxed);
    MASK.store(usize::MAX, Relaxed);
    ZERO.store(zero, Relaxed);
    ON.store(true, Relaxed);
}

/// Whether hardened checks are on.
#[inline(always)]
pub(crate) fn on() -> bool {
    cfg!(feature = "hardened") && ON.load(Relaxed)
}

/// Whether C frees clear their block.
#[inline(always)]
pub(crate) fn zero_on_free() -> bool {
    cfg!(feature = "hardened") && ZERO.load(Relaxed)
}

/// The link word stored at `at` for a link to `next`.
#[inline(always)]
pub(crate) fn encode(next: usize, at: usize) -> usize {
    if !cfg!(feature = "hardened") {
        return next;
    }
    encode_with(
        next,
        at,
        K0.load(Relaxed),
        ROT.load(Relaxed),
        MASK.load(Relaxed),
    )
}

/// The link stored as `word` at `at` (inverse of [`encode`]).
#[inline(always)]
pub(crate) fn decode(word: usize, at: usize) -> usize {
    if !cfg!(feature = "hardened") {
        return word;
    }
    decode_with(
        word,
        at,
        K0.load(Relaxed),
        ROT.load(Relaxed),
        MASK.load(Relaxed),
    )
}

#[inline(always)]
fn encode_with(next: usize, at: usize, k0: usize, rot: usize, mask: usize) -> usize {
    (next ^ k0).rotate_left(rot as u32) ^ (at & mask)
}

#[inline(always)]
fn decode_with(word: usize, at: usize, k0: usize, rot: usize, mask: usize) -> usize {
    (word ^ (at & mask)).rotate_right(rot as u32) ^ k0
}

/// Word and bit of the segment map for the segment at `base`.
#[cfg(all(feature = "hardened", not(loom)))]
fn slot(base: usize) -> Option<(&'static AtomicU64, u64)> {
    let seg = base >> SEG_SHIFT;
    MAP.get(seg >> 6).map(|w| (w, 1u64 << (seg & 63)))
}

/// A segment (or large block) of ours now lives at `base` (`live`), or
/// no longer does. No-op unless hardened.
pub(crate) fn mark_segment(base: usize, live: bool) {
    #[cfg(all(feature = "hardened", not(loom)))]
    if on() {
        if let Some((w, bit)) = slot(base) {
            if live {
                w.fetch_or(bit, Relaxed);
            } else {
                w.fetch_and(!bit, Relaxed);
            }
        }
    }
    let _ = (base, live);
}

/// Whether a segment or large block of ours lives at the 4 MiB-aligned
/// `base`. Always true unless hardened.
pub(crate) fn is_ours(base: usize) -> bool {
    #[cfg(all(feature = "hardened", not(loom)))]
    if on() {
        return slot(base).is_some_and(|(w, bit)| w.load(Relaxed) & bit != 0);
    }
    let _ = base;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_round_trip_and_hide() {
        let (k0, rot) = (0x1234_5678_9abc_def1, 29);
        for (next, at) in [
            (0usize, 0x7f00_0010_0000usize),
            (0x7f00_0010_0040, 0x7f00_0010_0000),
        ] {
            let w = encode_with(next, at, k0, rot, usize::MAX);
            assert_ne!(w, next, "stored plain");
            assert_eq!(decode_with(w, at, k0, rot, usize::MAX), next);
            // Off: keys 0, links plain.
            assert_eq!(encode_with(next, at, 0, 0, 0), next);
        }
    }

    #[cfg(feature = "hardened")]
    #[test]
    fn segment_map_bits() {
        let (w, bit) = slot(0x7f00_0040_0000).unwrap();
        let (w2, bit2) = slot(0x7f00_0080_0000).unwrap();
        assert!(!core::ptr::eq(w, w2) || bit != bit2);
        assert!(slot(1 << 47).is_none(), "beyond the user address space");
    }
}
