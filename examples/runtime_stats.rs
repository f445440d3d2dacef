//! A workload that prints the allocator's table every second: what a
//! service would log, or serve to its dashboard.
//!
//! Run: `cargo run --release --example runtime_stats`

use pool_alloc::PoolAlloc;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: PoolAlloc = PoolAlloc::new();

fn main() {
    let start = Instant::now();
    let mut next = Duration::from_secs(1);
    let mut live: Vec<Vec<u8>> = Vec::new();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    while start.elapsed() < Duration::from_secs(3) {
        // Churn: buffers of every band come and go.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let size = match seed % 100 {
            0..=89 => 16 + (seed >> 8) as usize % 500,
            90..=98 => 4096 + (seed >> 8) as usize % (256 << 10),
            _ => (1 << 20) + (seed >> 8) as usize % (2 << 20),
        };
        live.push(vec![1u8; size]);
        if live.len() > 2_000 {
            let i = (seed >> 20) as usize % live.len();
            live.swap_remove(i);
        }
        if start.elapsed() >= next {
            next += Duration::from_secs(1);
            println!(
                "--- {:.0} s ---\n{}\n",
                start.elapsed().as_secs_f64(),
                pool_alloc::snapshot()
            );
        }
    }
}
