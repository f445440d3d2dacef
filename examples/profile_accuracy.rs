//! How close the leak investigator's estimates are: a site holds a known
//! live total (64 MiB in 1 KiB blocks) among 1 GiB of churn from another
//! site; each run estimates it from the samples. Prints each run's error
//! and their summary, per mean interval.
//!
//! Run: `cargo run --release --example profile_accuracy -- [RUNS] [INTERVAL_KIB...]`
//! (default: 20 runs at 1024 and 128 KiB).

use pool_alloc::profile::{self, Profile};
use pool_alloc::PoolAlloc;
use std::hint::black_box;

#[global_allocator]
static GLOBAL: PoolAlloc = PoolAlloc::new();

/// The site whose live total is known: `n` blocks of 1 KiB.
#[inline(never)]
#[allow(clippy::vec_box)]
fn known_site(n: usize) -> Vec<Box<[u8; 1024]>> {
    (0..n)
        .map(|i| black_box(Box::new([i as u8; 1024])))
        .collect()
}

/// Churn from another site: `total` bytes in blocks of 16 B to 64 KiB, at
/// most 256 live at a time.
#[inline(never)]
fn churn_elsewhere(total: usize, seed: u64) {
    let mut live: Vec<Vec<u8>> = Vec::with_capacity(256);
    let (mut done, mut x) = (0, seed | 1);
    while done < total {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let size = 16usize << (x % 13);
        done += size;
        if live.len() == 256 {
            live.swap_remove((x >> 20) as usize % 256);
        }
        live.push(black_box(vec![x as u8; size]));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(20);
    let mut intervals: Vec<u64> = args.iter().skip(1).filter_map(|a| a.parse().ok()).collect();
    if intervals.is_empty() {
        intervals = vec![1024, 128];
    }
    let truth = (64u64 << 20) as f64;
    for kib in intervals {
        profile::start(kib << 10);
        let mut errors = Vec::new();
        for run in 0..runs {
            let kept = known_site(64 << 10);
            churn_elsewhere(1 << 30, run as u64 + 1);
            let p = Profile::capture();
            let (est, n) = p
                .samples
                .iter()
                .filter(|s| s.site().contains("known_site"))
                .fold((0.0, 0), |(b, n), s| (b + s.estimated_bytes(), n + 1));
            let err = est / truth - 1.0;
            println!(
                "interval {kib} KiB run {run}: {n} samples, estimate {:.1} MiB, error {:+.1}%",
                est / (1 << 20) as f64,
                err * 100.0
            );
            errors.push(err.abs());
            drop(kept);
        }
        errors.sort_by(f64::total_cmp);
        let within = errors.iter().filter(|e| **e <= 0.10).count();
        println!(
            "interval {kib} KiB: |error| median {:.1}%, max {:.1}%, within 10% in {within} of {runs} runs",
            errors[errors.len() / 2] * 100.0,
            errors[errors.len() - 1] * 100.0
        );
    }
    profile::start(profile::DEFAULT_INTERVAL);
}
