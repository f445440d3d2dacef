//! `Config::trim_pages`: a reused pooled block's tail, touched by a larger
//! previous occupant, is given back to the OS (checked with `mincore`).
//! Only class slabs have such tails: blocks of 32 KiB classes and up are
//! page runs sized to their requests (`tests/page_runs.rs`).

// SAFETY (all unsafe blocks in this file): raw calls pass pointers this test
// got from the same allocator with the same layout, still live; mincore gets
// a page-aligned range inside the block and a vector of the right length.
#![allow(clippy::undocumented_unsafe_blocks)]

use pool_alloc::{Config, PoolAlloc};
use std::alloc::{GlobalAlloc, Layout};

static A: PoolAlloc = PoolAlloc::with_config(Config::new().trim_pages(1));

fn resident_pages(p: *mut u8, len: usize) -> usize {
    let start = (p as usize) & !4095;
    let end = (p as usize + len).next_multiple_of(4096);
    let pages = (end - start) / 4096;
    let mut vec = vec![0u8; pages];
    let r = unsafe { libc::mincore(start as *mut libc::c_void, end - start, vec.as_mut_ptr()) };
    assert_eq!(r, 0, "mincore failed");
    vec.iter().filter(|&&v| v & 1 != 0).count()
}

#[test]
fn reused_pooled_block_gives_back_the_tail_a_larger_occupant_touched() {
    // The 31 744 B class (a class slab): 20 993..=31 744 bytes.
    let big = Layout::from_size_align(31_000, 8).unwrap();
    let p = unsafe { A.alloc(big) };
    unsafe { std::ptr::write_bytes(p, 1, big.size()) };
    assert!(
        resident_pages(p, big.size()) >= 7,
        "the big occupant is resident"
    );
    unsafe { A.dealloc(p, big) };

    let small = Layout::from_size_align(21_500, 8).unwrap(); // same class
    let q = unsafe { A.alloc(small) };
    assert_eq!(p, q, "LIFO reuse of the same block");
    // Whole pages past the request up to the big occupant's last whole
    // page.
    let from = (q as usize + 21_500).next_multiple_of(4096);
    let to = (q as usize + 31_000) & !4095;
    assert!(to > from, "a tail to check");
    let still = resident_pages(from as *mut u8, to - from);
    assert_eq!(still, 0, "tail pages given back: {still} still resident");
    // The kept part is intact and usable.
    assert_eq!(unsafe { *q.add(21_499) }, 1);
    unsafe { std::ptr::write_bytes(q, 2, small.size()) };
    unsafe { A.dealloc(q, small) };

    // Growing again within the class: nothing to trim, the block is reused.
    let again = Layout::from_size_align(30_000, 8).unwrap();
    let r = unsafe { A.alloc(again) };
    assert_eq!(r, q);
    unsafe { std::ptr::write_bytes(r, 3, again.size()) };
    assert!(resident_pages(r, again.size()) >= 7);
    unsafe { A.dealloc(r, again) };
}
