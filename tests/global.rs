//! The allocator installed as `#[global_allocator]` under std-heavy work.

use pool_alloc::PoolAlloc;
use std::collections::{BTreeMap, HashMap, VecDeque};

#[global_allocator]
static GLOBAL: PoolAlloc = PoolAlloc::new();

#[test]
fn collections_strings_sorting() {
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

#[test]
fn stats_snapshot_sees_the_work() {
    let before = pool_alloc::snapshot();
    let keep: Vec<Vec<u8>> = (0..1000).map(|i| vec![1u8; 5000 + i]).collect();
    let after = pool_alloc::snapshot();
    assert!(after.live_bytes >= before.live_bytes.saturating_sub(1 << 20));
    let pooled: u64 = after
        .classes
        .iter()
        .filter(|c| c.block_size >= 4096)
        .map(|c| c.allocs)
        .sum();
    assert!(pooled >= 1000, "pooled allocations counted: {pooled}");
    assert!(after.to_json().contains("\"classes\""));
    assert!(after.to_prometheus().contains("pool_alloc_live_bytes"));
    assert!(format!("{after}").contains("fragmentation"));
    drop(keep);
}
