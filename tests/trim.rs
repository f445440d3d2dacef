//! `Config::trim_pages`: a reused pooled block's tail, touched by a larger
//! previous occupant, is given back to the OS (checked with `mincore`).

// SAFETY (all unsafe blocks in this file): raw calls pass pointers this test
// got from the same allocator with the same layout, still live; mincore gets
// a page-aligned range inside the block and a vector of the right length.
#![allow(clippy::undocumented_unsafe_blocks)]

use pool_alloc::{Config, PoolAlloc};
use std::alloc::{GlobalAlloc, Layout};

static A: PoolAlloc = PoolAlloc::with_config(Config::new().trim_pages(16));

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
    let big = Layout::from_size_align(1_000_000, 8).unwrap();
    let p = unsafe { A.alloc(big) };
    unsafe { std::ptr::write_bytes(p, 1, big.size()) };
    assert!(
        resident_pages(p, big.size()) >= 240,
        "the big occupant is resident"
    );
    unsafe { A.dealloc(p, big) };

    let small = Layout::from_size_align(820_000, 8).unwrap(); // same 1 MiB class (818176 < 820000)
    let q = unsafe { A.alloc(small) };
    assert_eq!(p, q, "LIFO reuse of the same block");
    let tail = 1_000_000 - 820_000;
    let tail_start = unsafe { q.add(820_000 + 4096) };
    let still = resident_pages(tail_start, tail - 8192);
    assert_eq!(still, 0, "tail pages given back: {still} still resident");
    // The kept part is intact and usable.
    assert_eq!(unsafe { *q.add(819_999) }, 1);
    unsafe { std::ptr::write_bytes(q, 2, small.size()) };
    unsafe { A.dealloc(q, small) };

    // Growing again within the class: nothing to trim, the block is reused.
    let r = unsafe { A.alloc(Layout::from_size_align(825_000, 8).unwrap()) };
    assert_eq!(r, q);
    assert!(resident_pages(r, 825_000) >= 200);
    unsafe { A.dealloc(r, Layout::from_size_align(825_000, 8).unwrap()) };
}
