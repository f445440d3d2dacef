//! Thread churn: 2 000 threads that each allocate and exit. Exited threads'
//! heaps are reused, so mapped and live memory return near the start.

use pool_alloc::PoolAlloc;
use test_support::pattern::{self, Probes};

#[global_allocator]
static GLOBAL: PoolAlloc = PoolAlloc::new();

const BLOCKS: usize = 50;

/// Size of block `k` of thread `i`.
fn block_size(i: usize, k: usize) -> usize {
    16 + (i * 37 + k * 101) % 20_000
}

/// Pattern seed of block `k` of thread `i` (`k == BLOCKS`: the kept block).
fn seed(i: usize, k: usize) -> u64 {
    (i * (BLOCKS + 1) + k) as u64
}

/// What thread `i` does: 50 blocks, each filled with its own pattern, all
/// checked once all are live (none overlaps another or was handed out
/// twice); returns their total size and one block that outlives the thread.
fn thread_work(i: usize) -> (usize, Vec<u8>) {
    let mut v: Vec<Box<[u8]>> = Vec::new();
    for k in 0..BLOCKS {
        let mut b = vec![k as u8; block_size(i, k)].into_boxed_slice();
        pattern::fill_slice(&mut b, seed(i, k), Probes::Dense);
        v.push(b);
    }
    for (k, b) in v.iter().enumerate() {
        assert_eq!(b.len(), block_size(i, k));
        pattern::check_slice(b, seed(i, k), Probes::Dense);
    }
    let total = v.iter().map(|b| b.len()).sum();
    // One block outlives the thread: freed by the main thread later.
    let mut keep = vec![1u8; 300];
    pattern::fill_slice(&mut keep, seed(i, BLOCKS), Probes::Dense);
    (total, keep)
}

/// The main thread's check of thread `i`'s result: the total is the one
/// computed here from the sizes, and the kept block survived its thread.
fn check_result(i: usize, (total, keep): (usize, Vec<u8>)) {
    let expected: usize = (0..BLOCKS).map(|k| block_size(i, k)).sum();
    assert_eq!(total, expected, "thread {i}: total of its blocks");
    assert_eq!(keep.len(), 300);
    pattern::check_slice(&keep, seed(i, BLOCKS), Probes::Dense);
}

#[test]
fn two_thousand_short_lived_threads_do_not_grow_memory() {
    // Warm up: the harness, the first threads.
    for _ in 0..8 {
        std::thread::spawn(|| vec![0u8; 1000]).join().unwrap();
    }
    let before = pool_alloc::snapshot();
    let mut handles = Vec::new();
    let mut joined = 0;
    for i in 0..2000usize {
        handles.push((i, std::thread::spawn(move || thread_work(i))));
        if handles.len() == 8 || i == 1999 {
            for (i, h) in handles.drain(..) {
                check_result(i, h.join().unwrap());
                joined += 1;
            }
        }
    }
    assert_eq!(joined, 2000);
    GLOBAL.reclaim(pool_alloc::ReclaimLevel::Emergency);
    let after = pool_alloc::snapshot();
    let grew = after.mapped_bytes.saturating_sub(before.mapped_bytes);
    // Bound: at most 8 threads run at once; each may hold a few segments.
    // 2 000 threads without reuse would map at least 2 000 segments (8 GiB).
    assert!(
        grew <= 64 << 20,
        "mapped grew by {grew} bytes over 2 000 threads"
    );
    let live_grew = after.live_bytes.saturating_sub(before.live_bytes);
    assert!(live_grew <= 1 << 20, "live grew by {live_grew} bytes");
    assert!(
        after.heaps_abandoned + after.threads_live <= 64,
        "heaps are reused: {after:?}"
    );
}
