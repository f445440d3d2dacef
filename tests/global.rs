//! The allocator installed as `#[global_allocator]` under std-heavy work.

use pool_alloc::PoolAlloc;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

#[global_allocator]
static GLOBAL: PoolAlloc = PoolAlloc::new();

/// The tests of this binary run one at a time: `stats_snapshot_sees_the_work`
/// measures the process's live bytes, which another test running beside it
/// would move by megabytes.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[test]
fn collections_strings_sorting() {
    let _serial = serial();
    let mut words: Vec<String> = (0..20_000)
        .map(|i| format!("word-{}-{}", i * 7919 % 10007, i))
        .collect();
    words.sort();
    assert!(words.windows(2).all(|w| w[0] <= w[1]));
    let mut counts: HashMap<String, usize> = HashMap::new();
    for w in &words {
        *counts
            .entry(w.split('-').nth(1).unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(counts.values().sum::<usize>(), 20_000);
    let tree: BTreeMap<usize, Vec<u8>> = (0..5000).map(|i| (i, vec![i as u8; i % 300])).collect();
    assert_eq!(tree[&299].len(), 299);
    let mut q: VecDeque<Box<[u64]>> = VecDeque::new();
    for i in 0..10_000usize {
        q.push_back(vec![i as u64; i % 50 + 1].into_boxed_slice());
        if q.len() > 100 {
            let b = q.pop_front().unwrap();
            assert!(b.iter().all(|&x| x == b[0]));
        }
    }
    let mut s = String::new();
    for i in 0..100_000 {
        s.push_str(&i.to_string());
    }
    assert!(s.len() > 400_000);
    let big: Vec<u64> = (0..1_000_000).rev().collect();
    let mut sorted = big.clone();
    sorted.sort_unstable();
    assert_eq!(sorted[0], 0);
    assert_eq!(sorted[999_999], 999_999);
}

#[test]
fn threads_share_and_free_each_others_data() {
    let _serial = serial();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<String>>();
    let producers: Vec<_> = (0..4)
        .map(|t| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..2000 {
                    tx.send((0..10).map(|k| format!("{t}:{i}:{k}")).collect())
                        .unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let consumer = std::thread::spawn(move || {
        let mut n = 0;
        for v in rx {
            assert_eq!(v.len(), 10);
            assert!(v[3].ends_with(":3"));
            n += 1;
        }
        n
    });
    for p in producers {
        p.join().unwrap();
    }
    assert_eq!(consumer.join().unwrap(), 8000);
}

/// Allocations so far in the pooled classes (blocks of 4 KiB and more).
fn pooled_allocs(s: &pool_alloc::Snapshot) -> u64 {
    s.classes
        .iter()
        .filter(|c| c.block_size >= 4096)
        .map(|c| c.allocs)
        .sum()
}

#[test]
fn stats_snapshot_sees_the_work() {
    let _serial = serial();
    const N: usize = 1000;
    // 5000 + i bytes for i < 1000: 5 499 500 bytes, all in pooled classes.
    let kept = (N * 5000 + N * (N - 1) / 2) as u64;
    // What else may move live bytes meanwhile: the outer vector (24 KB), a
    // snapshot's class table, the test harness's own small allocations.
    let slack = 256 << 10;
    let before = pool_alloc::snapshot();
    let keep: Vec<Vec<u8>> = (0..N).map(|i| vec![1u8; 5000 + i]).collect();
    let during = pool_alloc::snapshot();
    let grew = during.live_bytes as i64 - before.live_bytes as i64;
    assert!(
        grew >= (kept - slack) as i64 && grew <= (kept + slack) as i64,
        "live bytes grew by {grew}, expected about {kept}"
    );
    let pooled = pooled_allocs(&during) - pooled_allocs(&before);
    assert!(pooled >= N as u64, "pooled allocations counted: {pooled}");
    assert!(during.to_json().contains("\"classes\""));
    assert!(during.to_prometheus().contains("pool_alloc_live_bytes"));
    assert!(format!("{during}").contains("fragmentation"));
    assert_eq!(keep.iter().map(|v| v.len() as u64).sum::<u64>(), kept);
    drop(keep);
    let after = pool_alloc::snapshot();
    let left = after.live_bytes as i64 - before.live_bytes as i64;
    assert!(
        left.unsigned_abs() <= slack,
        "live bytes fall back after the drop: {left} bytes above where they started"
    );
}

#[test]
fn the_leak_assertion_catches_a_leak_and_passes_a_bounded_cache() {
    let _g = serial();
    let mut bounded = std::collections::HashMap::new();
    pool_alloc::testing::assert_no_leak(200, 2000, 4096, || {
        bounded.insert(bounded.len() % 100, vec![0u8; 200]);
    });
    let mut leaky: Vec<Vec<u8>> = Vec::new();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool_alloc::testing::assert_no_leak(10, 2000, 4096, || leaky.push(vec![0u8; 200]));
    }));
    let msg = *caught
        .expect_err("the leak is caught")
        .downcast::<String>()
        .unwrap();
    assert!(msg.contains("class 224 B"), "{msg}");
    let mut region = pool_alloc::testing::Region::new();
    let v: Vec<Vec<u8>> = (0..10).map(|_| vec![1u8; 1000]).collect();
    let c = region.change();
    assert!(c.allocs >= 11 && c.live_bytes >= 10_000, "{c:?}");
    drop(v);
}
