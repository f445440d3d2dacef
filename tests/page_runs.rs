//! Blocks of the 32 KiB classes and up are page runs sized to their
//! requests (`alloc-core/src/pages.rs`): their pages serve any class after
//! a free, they hold no class-rounding tail, and they come back whole
//! across threads.

// SAFETY (all unsafe blocks in this file): raw calls pass pointers this test
// got from the same allocator with the same layout, still live, and write
// within the requested sizes.
#![allow(clippy::undocumented_unsafe_blocks)]

use pool_alloc::{usable_size, PoolAlloc};
use std::alloc::{GlobalAlloc, Layout};

static A: PoolAlloc = PoolAlloc::new();

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

// One test, scenarios in order, each on a thread of its own: the first
// thread to allocate from `A` gets a fresh heap (later ones adopt the
// heaps earlier ones left, with their free runs), so the first scenario
// can check exact addresses.
#[test]
fn page_runs() {
    a_run_is_sized_to_its_request_and_its_pages_serve_any_class();
    realloc_stays_in_place_within_the_run();
    zeroed_runs_read_zero_after_dirty_reuse();
    runs_freed_by_other_threads_come_back_to_their_owner();
    large_blocks_that_fit_a_page_segment_are_runs_too();
}

fn a_run_is_sized_to_its_request_and_its_pages_serve_any_class() {
    std::thread::spawn(|| {
        // 600 000 B is in the 818 176 B class; its run is 147 pages.
        let a = unsafe { A.alloc(layout(600_000)) };
        assert_eq!(unsafe { usable_size(a, layout(600_000)) }, 147 * 4096);
        // The next run starts right after it: no class-rounding tail.
        let b = unsafe { A.alloc(layout(100_000)) };
        assert_eq!(b as usize, a as usize + 147 * 4096);
        unsafe { A.dealloc(a, layout(600_000)) };
        // A request of another class (71 680 B class) reuses a's pages.
        let c = unsafe { A.alloc(layout(70_000)) };
        assert_eq!(c, a, "the freed run serves another class");
        // Growing it takes the free pages after it: no move, no copy...
        unsafe { std::ptr::write_bytes(c, 9, 70_000) };
        let c2 = unsafe { A.realloc(c, layout(70_000), 200_000) };
        assert_eq!(c2, c, "grown in place");
        assert!((0..70_000).all(|i| unsafe { *c2.add(i) } == 9));
        // ... until the run would reach b: then it moves.
        let c3 = unsafe { A.realloc(c2, layout(200_000), 147 * 4096 + 1) };
        assert_ne!(c3, c2, "b is in the way");
        assert!((0..70_000).all(|i| unsafe { *c3.add(i) } == 9));
        let c = unsafe { A.realloc(c3, layout(147 * 4096 + 1), 70_000) };
        assert_eq!(c, a, "shrunk to another class: moved back into a's pages");
        // Freed runs merge with their free neighbours: after freeing b and
        // c, one run as long as a and b together starts at a again.
        unsafe {
            A.dealloc(c, layout(70_000));
            A.dealloc(b, layout(100_000));
        }
        let d = unsafe { A.alloc(layout(147 * 4096 + 100_000)) };
        assert_eq!(d, a, "merged run reused");
        unsafe { A.dealloc(d, layout(147 * 4096 + 100_000)) };
    })
    .join()
    .unwrap();
}

fn realloc_stays_in_place_within_the_run() {
    std::thread::spawn(|| unsafe {
        let p = A.alloc(layout(50_000)); // 13 pages, class 71 680 B
        std::ptr::write_bytes(p, 7, 50_000);
        // Within the run's pages: in place.
        let q = A.realloc(p, layout(50_000), 53_000);
        assert_eq!(q, p);
        // Past the run's pages: grown in place if the pages after it are
        // free, else moved; the contents are kept either way.
        let r = A.realloc(q, layout(53_000), 60_000);
        assert!((0..50_000).all(|i| *r.add(i) == 7));
        A.dealloc(r, layout(60_000));
    })
    .join()
    .unwrap();
}

fn zeroed_runs_read_zero_after_dirty_reuse() {
    std::thread::spawn(|| unsafe {
        for round in 0..20 {
            let size = 40_000 + round * 13_000;
            let p = A.alloc(layout(size));
            std::ptr::write_bytes(p, 0xAB, size);
            A.dealloc(p, layout(size));
            let z = A.alloc_zeroed(layout(size + 5_000));
            assert!(
                (0..size + 5_000).all(|i| *z.add(i) == 0),
                "round {round}: not zero"
            );
            A.dealloc(z, layout(size + 5_000));
        }
    })
    .join()
    .unwrap();
}

fn runs_freed_by_other_threads_come_back_to_their_owner() {
    std::thread::spawn(|| {
        let sizes = [40_000usize, 90_000, 300_000, 1_000_000];
        let blocks: Vec<(usize, usize)> = (0..64)
            .map(|i| {
                let size = sizes[i % sizes.len()];
                let p = unsafe { A.alloc(layout(size)) };
                unsafe { std::ptr::write_bytes(p, i as u8, size) };
                (p as usize, size)
            })
            .collect();
        let segment = |p: usize| p & !((4 << 20) - 1);
        // Another thread frees them all (the owner's delayed list).
        let moved = blocks.clone();
        std::thread::spawn(move || {
            for (p, size) in moved {
                unsafe {
                    assert_eq!(*(p as *mut u8).add(size - 1), *(p as *mut u8));
                    A.dealloc(p as *mut u8, layout(size));
                }
            }
        })
        .join()
        .unwrap();
        // The owner's next run reuses the freed pages (of a segment the
        // blocks were in), and its segments hold nothing else: every one
        // is a free run as long as a segment's usable pages.
        let p = unsafe { A.alloc(layout(1 << 20)) };
        assert!(
            blocks
                .iter()
                .any(|&(b, _)| segment(b) == segment(p as usize)),
            "remote-freed pages reused"
        );
        unsafe { A.dealloc(p, layout(1 << 20)) };
        let q = unsafe { A.alloc(layout(1 << 20)) };
        unsafe { A.dealloc(q, layout(1 << 20)) };
        assert_eq!(q, p, "LIFO reuse of the same merged run");
        // A run of a segment's usable pages (the most one run holds) is
        // served from the first page after the header of one of those
        // segments: its freed runs merged back into one.
        let whole = 63 * 16 * 4096;
        let w = unsafe { A.alloc(layout(whole)) };
        assert!(
            blocks
                .iter()
                .any(|&(b, _)| segment(b) == segment(w as usize)),
            "a segment the blocks were in"
        );
        assert_eq!(segment(w as usize) + 65536, w as usize, "a whole segment");
        unsafe { A.dealloc(w, layout(whole)) };
    })
    .join()
    .unwrap();
}

fn large_blocks_that_fit_a_page_segment_are_runs_too() {
    std::thread::spawn(|| unsafe {
        let before = pool_alloc::snapshot().large;
        let size = 3 << 20; // 3 MiB: above the pooled band
        let p = A.alloc(layout(size));
        std::ptr::write_bytes(p, 5, size);
        assert_eq!(
            usable_size(p, layout(size)),
            size,
            "a whole number of pages"
        );
        let mid = pool_alloc::snapshot().large;
        assert_eq!(mid.allocs - before.allocs, 1);
        assert_eq!(mid.live_bytes - before.live_bytes, size as u64);
        assert_eq!(
            mid.mapped_bytes, before.mapped_bytes,
            "no mapping of its own"
        );
        // Shrinking within the run (still large) stays in place.
        let q = A.realloc(p, layout(size), 2 << 20);
        assert_eq!(q, p);
        assert_eq!(
            pool_alloc::snapshot().large.live_bytes - before.live_bytes,
            2 << 20
        );
        // Freed, its pages serve a pooled block.
        A.dealloc(q, layout(2 << 20));
        let after = pool_alloc::snapshot().large;
        assert_eq!(after.frees - before.frees, 1);
        assert_eq!(after.live_bytes, before.live_bytes);
        let r = A.alloc(layout(500_000));
        assert_eq!(r, q, "the large block's pages reused by a pooled class");
        A.dealloc(r, layout(500_000));
    })
    .join()
    .unwrap();
}
