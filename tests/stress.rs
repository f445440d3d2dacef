//! Multi-thread stress: 8 threads, random sizes across all bands, about a
//! third of the blocks freed by another thread, contents checksummed.

// SAFETY (all unsafe blocks in this file): each raw call passes a pointer
// this test got from the same allocator with the same layout, still live.
#![allow(clippy::undocumented_unsafe_blocks)]

use pool_alloc::PoolAlloc;
use std::alloc::{alloc, dealloc, Layout};
use std::sync::mpsc;
use test_support::pattern::{self, Probes};
use test_support::rng::XorShift;

#[global_allocator]
static GLOBAL: PoolAlloc = PoolAlloc::new();

const THREADS: usize = 8;
const OPS: usize = 60_000;

/// A size from every band: mostly small, some pooled, a few large.
fn size(rng: &mut XorShift) -> usize {
    match rng.next_u64() % 1000 {
        0..=899 => 1 + (rng.next_u64() % 512) as usize,
        900..=989 => 513 + (rng.next_u64() % (256 << 10)) as usize,
        990..=997 => (256 << 10) + (rng.next_u64() % (768 << 10)) as usize,
        _ => (1 << 20) + (rng.next_u64() % (3 << 20)) as usize,
    }
}

struct Block {
    p: usize,
    layout: Layout,
    seed: u64,
}
// SAFETY (test): a Block is a uniquely owned allocation.
unsafe impl Send for Block {}

/// Every byte of the first and last 4 KiB, every 509th between.
const PROBES: Probes = Probes::Dense;

fn make(rng: &mut XorShift) -> Block {
    let size = size(rng);
    let align = 1usize << (rng.next_u64() % 7); // 1..64
    let layout = Layout::from_size_align(size, align).unwrap();
    let p = unsafe { alloc(layout) };
    assert!(!p.is_null());
    assert_eq!(p as usize % align, 0);
    let seed = rng.next_u64();
    unsafe { pattern::fill(p, size, seed, PROBES) };
    Block {
        p: p as usize,
        layout,
        seed,
    }
}

fn free(b: Block) {
    let p = b.p as *mut u8;
    unsafe { pattern::check(p, b.layout.size(), b.seed, PROBES) };
    unsafe { dealloc(p, b.layout) };
}

#[test]
fn eight_threads_with_cross_thread_frees() {
    let before = pool_alloc::snapshot();
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for _ in 0..THREADS {
        let (tx, rx) = mpsc::channel::<Block>();
        senders.push(tx);
        receivers.push(rx);
    }
    let handles: Vec<_> = receivers
        .into_iter()
        .enumerate()
        .map(|(t, rx)| {
            let next = senders[(t + 1) % THREADS].clone();
            std::thread::spawn(move || {
                let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ ((t as u64 + 1) * 0x1234_5678));
                let mut mine: Vec<Block> = Vec::new();
                for _ in 0..OPS {
                    while let Ok(b) = rx.try_recv() {
                        free(b);
                    }
                    if mine.len() < 200 || rng.next_u64().is_multiple_of(2) {
                        mine.push(make(&mut rng));
                    } else {
                        let i = (rng.next_u64() as usize) % mine.len();
                        let b = mine.swap_remove(i);
                        if rng.next_u64().is_multiple_of(3) {
                            let _ = next.send(b);
                        } else {
                            free(b);
                        }
                    }
                }
                for b in mine {
                    free(b);
                }
                drop(next);
                rx
            })
        })
        .collect();
    drop(senders);
    let rxs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for rx in rxs {
        while let Ok(b) = rx.try_recv() {
            free(b);
        }
    }
    // Every block the run made was freed (by its thread or another): live
    // blocks and bytes are back where they started, give or take the test
    // harness's own few (this binary has one test).
    let after = pool_alloc::snapshot();
    let blocks = after.live_blocks() as i64 - before.live_blocks() as i64;
    assert!(
        blocks.abs() <= 64,
        "live blocks changed by {blocks} over the stress run"
    );
    let bytes = after.live_bytes as i64 - before.live_bytes as i64;
    assert!(
        bytes.abs() <= 64 << 10,
        "live bytes changed by {bytes} over the stress run"
    );
}
