//! Size classes and their O(1) lookup.
//!
//! Three bands:
//! * **small** (up to `SMALL_MAX` = 3584 B): 8-byte steps up to 64 B, then
//!   four classes per doubling (80, 96, 112, 128, 160, ...). Looked up in one
//!   table load indexed by `(size + 7) / 8`.
//! * **pooled** (above 3584 B up to 1 MiB): 4096 B, then each class 1.5x the
//!   previous rounded up to 512 B, the last class exactly 1 MiB. Looked up by
//!   a table indexed by the 4 KiB bucket plus one compare (no bucket holds
//!   more than one class boundary).
//! * **large** (above 1 MiB): no class; mapped directly (see `large.rs`).
//!
//! A leaf: sizes only. How many slices a class's slab spans is slab
//! geometry (`slab.rs`).

/// Largest size served by the small band.
pub(crate) const SMALL_MAX: usize = 3584;
/// Largest size served from slabs; above this a block is mapped directly.
pub const POOLED_MAX: usize = 1 << 20;
/// First pooled class.
pub(crate) const POOLED_MIN: usize = 4096;

const fn round_up(x: usize, a: usize) -> usize {
    x.div_ceil(a) * a
}

const fn count_small() -> usize {
    let mut n = 0;
    let mut s = 8;
    while s <= SMALL_MAX {
        n += 1;
        s = next_small(s);
    }
    n
}

const fn next_small(s: usize) -> usize {
    if s < 64 {
        s + 8
    } else {
        // four steps per doubling: step = previous power of two / 4
        let p = 1usize << (usize::BITS - 1 - s.leading_zeros());
        s + p / 4
    }
}

const fn count_pooled() -> usize {
    let mut n = 1; // the final 1 MiB class
    let mut s = POOLED_MIN;
    while s < POOLED_MAX {
        n += 1;
        s = round_up(s * 3 / 2, 512);
    }
    n
}

/// Number of small classes.
pub(crate) const SMALL_CLASSES: usize = count_small();
/// Number of pooled classes.
pub(crate) const POOLED_CLASSES: usize = count_pooled();
/// Number of classes in all.
pub const CLASSES: usize = SMALL_CLASSES + POOLED_CLASSES;

const fn build_sizes() -> [u32; CLASSES] {
    let mut out = [0u32; CLASSES];
    let mut i = 0;
    let mut s = 8;
    while s <= SMALL_MAX {
        out[i] = s as u32;
        i += 1;
        s = next_small(s);
    }
    s = POOLED_MIN;
    while s < POOLED_MAX {
        out[i] = s as u32;
        i += 1;
        s = round_up(s * 3 / 2, 512);
    }
    out[i] = POOLED_MAX as u32;
    out
}

/// Block size of each class (the one size table; a `const` so that the
/// lookup tables below and slab geometry can be built from it at compile
/// time).
pub(crate) const CLASS_SIZES: [u32; CLASSES] = build_sizes();

const SMALL_TABLE_LEN: usize = SMALL_MAX / 8 + 1;

const fn build_small_table() -> [u8; SMALL_TABLE_LEN] {
    let mut t = [0u8; SMALL_TABLE_LEN];
    let mut i = 0;
    let mut c = 0;
    while i < SMALL_TABLE_LEN {
        let size = if i == 0 { 1 } else { i * 8 };
        while (CLASS_SIZES[c] as usize) < size {
            c += 1;
        }
        t[i] = c as u8;
        i += 1;
    }
    t
}

// `const`, not `static`: each crate the lookup is inlined into gets its
// own copy, read at a PC-relative address; a `static` of this crate is
// reached through the global offset table from other crates (one more
// load before the class is known).
const SMALL_TABLE: [u8; SMALL_TABLE_LEN] = build_small_table();

const POOLED_BUCKETS: usize = POOLED_MAX / 4096;

const fn build_pooled_table() -> [u8; POOLED_BUCKETS] {
    let mut t = [0u8; POOLED_BUCKETS];
    let mut i = 0;
    let mut c = SMALL_CLASSES;
    while i < POOLED_BUCKETS {
        // smallest size in bucket i is i*4096 + 1
        let size = i * 4096 + 1;
        while (CLASS_SIZES[c] as usize) < size {
            c += 1;
        }
        t[i] = c as u8;
        i += 1;
    }
    t
}

const POOLED_TABLE: [u8; POOLED_BUCKETS] = build_pooled_table();

/// The class serving `size` bytes (`size <= POOLED_MAX`). O(1).
#[inline(always)]
pub(crate) fn class_of(size: usize) -> usize {
    if size <= SMALL_MAX {
        class_of_small(size)
    } else {
        class_of_pooled(size)
    }
}

/// The class serving `size <= SMALL_MAX` bytes: one table load.
#[inline(always)]
pub(crate) const fn class_of_small(size: usize) -> usize {
    SMALL_TABLE[small_index(size)] as usize
}

/// The small table's index for `size` (one entry per 8 bytes).
#[inline(always)]
const fn small_index(size: usize) -> usize {
    (size + 7) >> 3
}

/// [`class_of_small`] without the bounds check (the allocation fast path,
/// whose caller knows the bound but whose compiler cannot see it).
///
/// # Safety
/// * `size <= SMALL_MAX`.
#[inline(always)]
pub(crate) unsafe fn class_of_small_unchecked(size: usize) -> usize {
    debug_assert!(size <= SMALL_MAX);
    // SAFETY: caller contract: `small_index(SMALL_MAX)` is the table's
    // last index.
    unsafe { *SMALL_TABLE.get_unchecked(small_index(size)) as usize }
}

#[inline]
fn class_of_pooled(size: usize) -> usize {
    let c = POOLED_TABLE[(size - 1) >> 12] as usize;
    // One boundary at most per 4 KiB bucket: a single compare finishes it.
    if (CLASS_SIZES[c] as usize) < size {
        c + 1
    } else {
        c
    }
}

/// Block size of class `c`.
#[inline(always)]
pub(crate) fn class_size(c: usize) -> usize {
    CLASS_SIZES[c] as usize
}

/// Whether class `c` is in the pooled band (4 KiB..=1 MiB).
#[inline]
pub(crate) fn is_pooled(c: usize) -> bool {
    c >= SMALL_CLASSES
}

/// Pooled classes of blocks at least this big are served as page runs
/// sized to the request (`pages.rs`) rather than from class slabs.
pub(crate) const PAGE_RUNS_FROM: usize = 32 << 10;

/// The first class served as page runs.
pub(crate) const FIRST_PAGE_CLASS: usize = {
    let mut c = SMALL_CLASSES;
    while (CLASS_SIZES[c] as usize) < PAGE_RUNS_FROM {
        c += 1;
    }
    c
};

/// Whether class `c` is served as page runs.
#[inline(always)]
pub(crate) fn is_page_class(c: usize) -> bool {
    c >= FIRST_PAGE_CLASS
}

/// Block size of every class, in class order: the table
/// `alloc_stats::Counting::with_classes` counts by, so another allocator's
/// figures come in the same rows.
pub static CLASS_TABLE: [u32; CLASSES] = CLASS_SIZES;

/// The class serving `size` bytes (aligned to at most 16), or `None` above
/// the pooled band (a large block).
pub fn class_for_size(size: usize) -> Option<usize> {
    (size <= POOLED_MAX).then(|| class_of(size))
}

/// The public description of a class, for stats and docs.
pub fn class_block_size(c: usize) -> Option<usize> {
    CLASS_SIZES.get(c).map(|&s| s as usize)
}

/// Per class, `(2^64 - 1) / size + 1`: [`div_by_class`]'s multiplier.
static CLASS_RECIP: [u64; CLASSES] = {
    let mut r = [0u64; CLASSES];
    let mut c = 0;
    while c < CLASSES {
        r[c] = u64::MAX / CLASS_SIZES[c] as u64 + 1;
        c += 1;
    }
    r
};

/// `off / class_size(c)` by one multiplication (a division is tens of
/// cycles): with `M = (2^64 - 1) / d + 1 = (2^64 + e) / d`, `0 <= e < d`,
/// the high word of `off * M` is exact while `off * e < 2^64`, so for every
/// offset below 2^43 (a segment is 2^22 bytes, a class below 2^21).
#[inline(always)]
pub(crate) fn div_by_class(off: usize, c: usize) -> usize {
    ((off as u128 * CLASS_RECIP[c] as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    #[test]
    fn division_by_multiplication_is_exact() {
        for c in 0..CLASSES {
            let d = class_size(c);
            let mut off = 0usize;
            while off < 1 << 23 {
                for o in [off, off + d - 1, off + d] {
                    assert_eq!(div_by_class(o, c), o / d, "class {c}, offset {o}");
                }
                off += d * 7 + 13;
            }
        }
    }

    use super::*;

    #[test]
    fn every_size_maps_to_the_smallest_fitting_class() {
        for size in 1..=POOLED_MAX {
            let c = class_of(size);
            assert!(class_size(c) >= size, "size {size} class {c}");
            if c > 0 {
                assert!(
                    class_size(c - 1) < size,
                    "size {size} not smallest class {c}"
                );
            }
        }
    }

    #[test]
    fn bands_have_the_specified_shape() {
        assert_eq!(class_size(SMALL_CLASSES), 4096);
        assert_eq!(class_size(CLASSES - 1), POOLED_MAX);
        for c in SMALL_CLASSES + 1..CLASSES - 1 {
            let prev = class_size(c - 1);
            let want = (prev * 3 / 2).div_ceil(512) * 512;
            assert_eq!(class_size(c), want, "pooled class {c} is 1.5x the previous");
        }
        // small: no coarser than 4 classes per doubling above 64 B
        for c in 1..SMALL_CLASSES {
            let (a, b) = (class_size(c - 1), class_size(c));
            assert!(b - a <= a.max(64) / 4 || a < 64, "{a} -> {b}");
        }
    }
}
