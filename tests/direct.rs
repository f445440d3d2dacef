//! The allocator called directly through `GlobalAlloc` (the global
//! allocator of this test binary is the system one): every size band and
//! alignment, realloc chains, zeroing.

// SAFETY (all unsafe blocks in this file): each raw call passes a pointer
// this test got from the same allocator with the same layout, still live.
#![allow(clippy::undocumented_unsafe_blocks)]

use pool_alloc::PoolAlloc;
use std::alloc::{GlobalAlloc, Layout};
use test_support::pattern::{self, Probes};
use test_support::ranges::LiveRanges;

static A: PoolAlloc = PoolAlloc::new();

/// Every byte of a block's first and last 4 KiB and every 509th between:
/// covers every page without making the grid slow.
const PROBES: Probes = Probes::Dense;

fn fill(p: *mut u8, size: usize, seed: u64) {
    unsafe { pattern::fill(p, size, seed, PROBES) };
}

fn check(p: *mut u8, size: usize, seed: u64) {
    unsafe { pattern::check(p, size, seed, PROBES) };
}

fn grid_sizes() -> Vec<usize> {
    let mut v: Vec<usize> = (1..=64).collect();
    let mut s = 65usize;
    while s <= 3 << 20 {
        v.extend([s - 1, s, s + 1]);
        s = s * 5 / 4 + 3;
    }
    v.extend([
        3584,
        3585,
        4096,
        4097,
        1 << 20,
        (1 << 20) + 1,
        2 << 20,
        (2 << 20) + 7,
    ]);
    v
}

#[test]
fn every_size_and_alignment_is_served_writable_aligned_and_disjoint() {
    let sizes = grid_sizes();
    let aligns: Vec<usize> = (0..=21).map(|k| 1usize << k).collect(); // 1 B .. 2 MiB
    let mut live: Vec<(usize, usize, Layout, u64)> = Vec::new();
    // Every new block is checked against every live one as it arrives.
    let mut ranges = LiveRanges::new();
    let mut seed = 0;
    for &align in &aligns {
        // Fewer sizes for huge alignments: each is a mapping of its own.
        let step = if align >= 1 << 16 { 17 } else { 1 };
        for &size in sizes.iter().step_by(step) {
            let layout = Layout::from_size_align(size, align).unwrap();
            let p = unsafe { A.alloc(layout) };
            assert!(!p.is_null(), "null for size {size} align {align}");
            assert_eq!(
                p as usize % align,
                0,
                "misaligned: size {size} align {align}"
            );
            ranges.insert(p as usize, size);
            seed += 1;
            fill(p, size, seed);
            live.push((p as usize, size, layout, seed));
            if live.len() > 300 {
                let (p, size, layout, seed) = live.swap_remove(live.len() / 3);
                check(p as *mut u8, size, seed);
                ranges.remove(p);
                unsafe { A.dealloc(p as *mut u8, layout) };
            }
        }
    }
    for (p, size, layout, seed) in live {
        check(p as *mut u8, size, seed);
        ranges.remove(p);
        unsafe { A.dealloc(p as *mut u8, layout) };
    }
    assert!(ranges.is_empty());
}

#[test]
fn realloc_chains_keep_contents_across_all_bands() {
    for align in [1usize, 8, 16, 64, 4096] {
        let mut size = 1usize;
        let layout = Layout::from_size_align(size, align).unwrap();
        let mut p = unsafe { A.alloc(layout) };
        unsafe { *p = 0xAB };
        let mut written = 1usize;
        // grow 1 B -> 6 MiB
        while size < 6 << 20 {
            let new = size * 2 + 3;
            let old_layout = Layout::from_size_align(size, align).unwrap();
            p = unsafe { A.realloc(p, old_layout, new) };
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0);
            for i in 0..written.min(new) {
                assert_eq!(
                    unsafe { *p.add(i) },
                    (i % 253) as u8 ^ 0xAB,
                    "grow to {new}"
                );
            }
            for i in written..new {
                unsafe { *p.add(i) = (i % 253) as u8 ^ 0xAB };
            }
            written = new;
            size = new;
        }
        // shrink back down
        while size > 1 {
            let new = size / 3;
            let new = new.max(1);
            let old_layout = Layout::from_size_align(size, align).unwrap();
            p = unsafe { A.realloc(p, old_layout, new) };
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0);
            for i in (0..new).step_by(97) {
                assert_eq!(
                    unsafe { *p.add(i) },
                    (i % 253) as u8 ^ 0xAB,
                    "shrink to {new}"
                );
            }
            size = new;
        }
        unsafe { A.dealloc(p, Layout::from_size_align(size, align).unwrap()) };
    }
}

#[test]
fn realloc_within_a_class_stays_in_place() {
    let l = Layout::from_size_align(100, 8).unwrap(); // class 112
    let p = unsafe { A.alloc(l) };
    let q = unsafe { A.realloc(p, l, 110) };
    assert_eq!(p, q, "same class: in place");
    let l2 = Layout::from_size_align(110, 8).unwrap();
    let big = Layout::from_size_align(3 << 20, 8).unwrap();
    unsafe { A.dealloc(q, l2) };
    let p = unsafe { A.alloc(big) };
    unsafe { *p.add((3 << 20) - 1) = 9 };
    unsafe { *p.add(1000) = 7 };
    let q = unsafe { A.realloc(p, big, (3 << 20) - 100_000) };
    assert_eq!(p, q, "large shrink: in place");
    assert_eq!(unsafe { *q.add(1000) }, 7);
    unsafe { A.dealloc(q, Layout::from_size_align((3 << 20) - 100_000, 8).unwrap()) };
}

#[test]
fn alloc_zeroed_returns_zeros_also_on_reused_blocks() {
    for size in [
        1usize,
        8,
        24,
        100,
        1000,
        3584,
        4096,
        5000,
        70_000,
        1 << 20,
        3 << 20,
    ] {
        let l = Layout::from_size_align(size, 8).unwrap();
        for round in 0..4 {
            let p = unsafe { A.alloc_zeroed(l) };
            assert!(!p.is_null());
            for i in (0..size).step_by(if size > 100_000 { 4093 } else { 1 }) {
                assert_eq!(
                    unsafe { *p.add(i) },
                    0,
                    "size {size} round {round} byte {i}"
                );
            }
            assert_eq!(unsafe { *p.add(size - 1) }, 0);
            unsafe { std::ptr::write_bytes(p, 0xEE, size) };
            unsafe { A.dealloc(p, l) };
        }
    }
}

#[test]
fn impossible_requests_return_null() {
    let l = Layout::from_size_align(isize::MAX as usize - 4095, 4096).unwrap();
    assert!(unsafe { A.alloc(l) }.is_null());
    let l = Layout::from_size_align(1 << 47, 8).unwrap(); // 128 TiB: more than the address space
    assert!(unsafe { A.alloc(l) }.is_null());
    let ok = Layout::from_size_align(64, 8).unwrap();
    let p = unsafe { A.alloc(ok) };
    assert!(!p.is_null(), "the allocator carries on after a failure");
    unsafe { A.dealloc(p, ok) };
}
