//! The allocator's own counters against ground truth: `Counting` (global
//! atomic counters around every call) wraps `PoolAlloc` as the global
//! allocator; several threads allocate in every band and free across
//! threads; at rest, live blocks and live bytes by the snapshot equal the
//! wrapper's.

use pool_alloc::stats::Counting;
use pool_alloc::PoolAlloc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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

/// Per class (live blocks, live requested bytes): ours, then the
/// wrapper's, which classes each request by the same table (the blocks
/// here are never resized across a class boundary in place, so the two
/// agree block by block).
fn per_class() -> Vec<[(i64, i64); 2]> {
    // Ours twice: the first snapshot's own blocks (its class table, its
    // components) are allocated while it reads; the second reuses them
    // and counts them live, as the wrapper does.
    let mut o = pool_alloc::snapshot();
    pool_alloc::snapshot_into(&mut o);
    let t = GLOBAL.snapshot();
    o.classes
        .iter()
        .zip(&t.classes)
        .map(|(o, t)| {
            let live = |c: &pool_alloc::stats::ClassStats| {
                (
                    c.allocs as i64 - c.frees as i64,
                    c.live_requested_bytes as i64,
                )
            };
            [live(o), live(t)]
        })
        .collect()
}

/// `after` less `before`, per class.
fn changes(before: &[[(i64, i64); 2]], after: &[[(i64, i64); 2]]) -> Vec<[(i64, i64); 2]> {
    before
        .iter()
        .zip(after)
        .map(|(b, a)| [0, 1].map(|k| (a[k].0 - b[k].0, a[k].1 - b[k].1)))
        .collect()
}

#[test]
fn counters_equal_ground_truth_at_rest() {
    // Compare differences from a baseline (the test harness has live
    // blocks of its own); each snapshot's class table is freed before the
    // next count.
    let (o0, t0) = (ours(), truth());
    let c0 = per_class();
    // The hand-over is a plain locked queue, not `mpsc`: the channel's
    // own blocks are over-aligned (`CachePadded`), which this allocator
    // serves from a larger class than their size, so they would count in
    // different classes here and in the wrapper.
    let queue: Arc<Mutex<Vec<Vec<u8>>>> = Arc::new(Mutex::new(Vec::with_capacity(8192)));
    let running = Arc::new(AtomicUsize::new(4));
    let consumer = {
        let (queue, running) = (queue.clone(), running.clone());
        std::thread::spawn(move || {
            let (mut kept, mut i) = (Vec::with_capacity(1024), 0usize);
            loop {
                let done = running.load(Ordering::Acquire) == 0;
                let got = std::mem::take(&mut *queue.lock().unwrap());
                if got.is_empty() && done {
                    break;
                }
                // Freed here, on another thread than the one that
                // allocated it; every tenth is kept to the end.
                for v in got {
                    if i % 10 == 0 {
                        kept.push(v);
                    }
                    i += 1;
                }
                std::thread::yield_now();
            }
            kept
        })
    };
    let producers: Vec<_> = (0..4u64)
        .map(|t| {
            let (queue, running) = (queue.clone(), running.clone());
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
                        queue.lock().unwrap().push(v);
                    } else if i % 5 == 0 {
                        mine.push(v);
                    }
                }
                mine.truncate(mine.len() / 2);
                running.fetch_sub(1, Ordering::Release);
                mine
            })
        })
        .collect();
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
    // Class by class too (the allocation fast path counts in its class's
    // tally, folded on slow paths: read whole by the snapshot).
    let c1 = per_class();
    for (i, [o, t]) in changes(&c0, &c1).into_iter().enumerate() {
        assert_eq!(
            o, t,
            "class {i}: (live blocks, live bytes), ours vs ground truth"
        );
    }
    drop(held);
    drop(kept);
    let (o2, t2) = (ours(), truth());
    assert_eq!(
        (o2.0 as i64 - o0.0 as i64, o2.1 as i64 - o0.1 as i64),
        (t2.0 as i64 - t0.0 as i64, t2.1 as i64 - t0.1 as i64),
        "after freeing everything"
    );
}
