//! Pooled blocks' touched extents: per block of a pooled slab, how many OS
//! pages from its start may hold non-zero bytes.
//!
//! Pooled classes are 1.5x apart, so a block often serves a request much
//! smaller than a previous occupant. With `Config::trim_pages(n)` (off by
//! default) a block handed out for a request that needs at least `n` fewer
//! pages than its extent has the tail decommitted first, so resident memory
//! follows requested sizes rather than class sizes. This file is the whole
//! of that logic; `slab.rs` stores an [`Extents`] per slab and calls it.

use crate::os::PAGE_SIZE;

/// Most blocks a pooled slab holds (the 4 KiB class in one 64 KiB slice).
pub(crate) const MAX_POOLED_BLOCKS: usize = 16;

/// Touched pages per block of one pooled slab.
#[derive(Clone, Copy)]
pub(crate) struct Extents([u16; MAX_POOLED_BLOCKS]);

/// Pages a request touching `touch` bytes from the block start may dirty
/// (+1: a block need not start on a page boundary).
fn pages_for(touch: usize) -> u16 {
    (touch.div_ceil(PAGE_SIZE) + 1).min(u16::MAX as usize) as u16
}

impl Extents {
    /// No block touched.
    pub(crate) const fn new() -> Self {
        Extents([0; MAX_POOLED_BLOCKS])
    }

    /// A new slab: fresh slices are clean; reused ones may be dirty
    /// anywhere in each block of `block_size` bytes.
    pub(crate) fn reset(&mut self, fresh: bool, block_size: usize) {
        let e = if fresh {
            0
        } else {
            block_size.div_ceil(PAGE_SIZE).min(u16::MAX as usize) as u16
        };
        self.0 = [e; MAX_POOLED_BLOCKS];
    }

    /// The entry of block `i`. Each entry is written only by whoever holds
    /// its block (the allocating owner before handing it out, then the
    /// block's holder), so callers work on one entry, never the array.
    ///
    /// # Safety
    /// * `this` points to a live `Extents`; `i < MAX_POOLED_BLOCKS`.
    pub(crate) unsafe fn entry(this: *mut Extents, i: usize) -> *mut u16 {
        debug_assert!(i < MAX_POOLED_BLOCKS);
        // SAFETY: caller contract; a place projection, no reference to the
        // whole array is made.
        unsafe { core::ptr::addr_of_mut!((*this).0[i]) }
    }
}

/// A block at address `block` of `block_size` bytes, with touched extent
/// `e`, is handed out for a request touching `touch` bytes. With trimming
/// on (`trim_pages > 0`) and at least `trim_pages` more pages touched than
/// the request needs, returns the page-aligned range `(from, to)` the caller
/// must decommit; the extent then records only the request.
pub(crate) fn on_handout(
    e: &mut u16,
    block: usize,
    block_size: usize,
    touch: usize,
    trim_pages: usize,
) -> Option<(usize, usize)> {
    let need = pages_for(touch);
    if trim_pages != 0 && *e as usize >= need as usize + trim_pages {
        let from = (block + touch).next_multiple_of(PAGE_SIZE);
        let to = (block + (*e as usize) * PAGE_SIZE).min(block + block_size) & !(PAGE_SIZE - 1);
        *e = need;
        return (to > from).then_some((from, to));
    }
    if *e < need {
        *e = need;
    }
    None
}

/// The block with extent `e` grows in place to `touch` bytes.
pub(crate) fn widen(e: &mut u16, touch: usize) {
    let need = pages_for(touch);
    if *e < need {
        *e = need;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_smaller_occupant_gives_back_the_tail_only_when_trimming() {
        let mut x = Extents::new();
        x.reset(true, 64 * PAGE_SIZE);
        let b = 1 << 30;
        let bs = 64 * PAGE_SIZE;
        // SAFETY: `x` is live and 0, 1 < MAX_POOLED_BLOCKS.
        let (e0, e1) = unsafe {
            (
                &mut *Extents::entry(&mut x, 0),
                &mut *Extents::entry(&mut x, 1),
            )
        };
        // A first occupant touches 40 pages.
        assert_eq!(on_handout(e0, b, bs, 40 * PAGE_SIZE, 16), None);
        // A second one needs 4: with trimming at 16 pages the tail past
        // its request goes back, up to what was touched.
        let r = on_handout(e0, b, bs, 4 * PAGE_SIZE, 16);
        assert_eq!(r, Some((b + 4 * PAGE_SIZE, b + 41 * PAGE_SIZE)));
        // The extent now records the request: no second trim.
        assert_eq!(on_handout(e0, b, bs, 4 * PAGE_SIZE, 16), None);
        // Trimming off: nothing is given back, the extent only grows.
        widen(e1, 40 * PAGE_SIZE);
        assert_eq!(on_handout(e1, b, bs, PAGE_SIZE, 0), None);
        assert_eq!(*e1, 41);
    }

    #[test]
    fn reused_slices_count_as_dirty_everywhere() {
        let mut x = Extents::new();
        x.reset(false, 10 * PAGE_SIZE);
        // SAFETY: `x` is live and 3 < MAX_POOLED_BLOCKS.
        let e = unsafe { &mut *Extents::entry(&mut x, 3) };
        let r = on_handout(e, 0, 10 * PAGE_SIZE, PAGE_SIZE, 4);
        assert_eq!(r, Some((PAGE_SIZE, 10 * PAGE_SIZE)));
    }
}
