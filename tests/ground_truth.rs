//! The allocator's own counters against ground truth: `Counting` (global
//! atomic counters around every call) wraps `PoolAlloc` as the global
//! allocator; several threads allocate in every band and free across
//! threads; at rest, live blocks and live bytes by the snapshot equal the
//! wrapper's.

use pool_alloc::stats::Counting;
use pool_alloc::PoolAlloc;
use std::sync::mpsc;

#[global_allocator]
static GLOBAL: Counting<PoolAlloc> =
    Counting::with_classes(PoolAlloc::new(), &pool_alloc::size_class::CLASS_TABLE);

/// Live blocks and bytes by the allocator's own count.
fn ours() -> (u64, u64) {
    let s = pool_alloc::snapshot();
    (
        s.live_blocks() + s.large.allocs - s.large.frees,
        s.live_bytes,
    )
}

/// Live blocks and bytes by the wrapper's count.
fn truth() -> (u64, u64) {
    let t = GLOBAL.stats();
    (t.allocs - t.frees, t.live_bytes)
}

#[test]
fn counters_equal_ground_truth_at_rest() {
    // Compare differences from a baseline (the test harness has live
    // blocks of its own); each snapshot's class table is freed before the
    // next count.
    let (o0, t0) = (ours(), truth());
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let consumer = std::thread::spawn(move || {
        let mut kept = Vec::new();
        for (i, v) in rx.into_iter().enumerate() {
            // Freed here, on another thread than the one that allocated
            // it; every tenth is kept to the end.
            if i % 10 == 0 {
                kept.push(v);
            }
        }
        kept
    });
    let producers: Vec<_> = (0..4u64)
        .map(|t| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut seed = 0x9E37_79B9_7F4A_7C15 ^ (t + 1);
                let mut mine: Vec<Vec<u8>> = Vec::new();
                for i in 0..3000u64 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let size = match seed % 100 {
                        0..=79 => 1 + (seed >> 8) as usize % 3000,
                        80..=97 => 4096 + (seed >> 8) as usize % (1 << 20),
                        _ => (1 << 20) + (seed >> 8) as usize % (3 << 20),
                    };
                    let mut v = vec![t as u8; size];
                    if i % 7 == 0 {
                        // Grow in place or move.
                        v.resize(size + (seed >> 40) as usize % 5000, 1);
                    }
                    if i % 2 == 0 {
                        tx.send(v).unwrap();
                    } else if i % 5 == 0 {
                        mine.push(v);
                    }
                }
                mine.truncate(mine.len() / 2);
                mine
            })
        })
        .collect();
    drop(tx);
    let held: Vec<Vec<Vec<u8>>> = producers.into_iter().map(|p| p.join().unwrap()).collect();
    let kept = consumer.join().unwrap();
    let (o1, t1) = (ours(), truth());
    let d_ours = (o1.0 as i64 - o0.0 as i64, o1.1 as i64 - o0.1 as i64);
    let d_truth = (t1.0 as i64 - t0.0 as i64, t1.1 as i64 - t0.1 as i64);
    assert!(d_truth.0 > 500, "the test keeps blocks live: {d_truth:?}");
    assert_eq!(
        d_ours, d_truth,
        "(live blocks, live bytes): ours vs ground truth"
    );
    drop(held);
    drop(kept);
    let (o2, t2) = (ours(), truth());
    assert_eq!(
        (o2.0 as i64 - o0.0 as i64, o2.1 as i64 - o0.1 as i64),
        (t2.0 as i64 - t0.0 as i64, t2.1 as i64 - t0.1 as i64),
        "after freeing everything"
    );
}
