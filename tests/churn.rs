//! Thread churn: 2 000 threads that each allocate and exit. Exited threads'
//! heaps are reused, so mapped and live memory return near the start.

use pool_alloc::PoolAlloc;

#[global_allocator]
static GLOBAL: PoolAlloc = PoolAlloc::new();

#[test]
fn two_thousand_short_lived_threads_do_not_grow_memory() {
    // Warm up: the harness, the first threads.
    for _ in 0..8 {
        std::thread::spawn(|| vec![0u8; 1000]).join().unwrap();
    }
    let before = pool_alloc::snapshot();
    let mut handles = Vec::new();
    for i in 0..2000usize {
        handles.push(std::thread::spawn(move || {
            let mut v: Vec<Box<[u8]>> = Vec::new();
            for k in 0..50 {
                v.push(vec![k as u8; 16 + (i * 37 + k * 101) % 20_000].into_boxed_slice());
            }
            let total: usize = v.iter().map(|b| b.len()).sum();
            // One block outlives the thread: freed by the main thread later.
            (total, vec![1u8; 300])
        }));
        if handles.len() == 8 {
            for h in handles.drain(..) {
                let (total, keep) = h.join().unwrap();
                assert!(total > 0);
                drop(keep);
            }
        }
    }
    for h in handles {
        h.join().unwrap();
    }
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
