//! Memory pressure: levels rising as a program fills its memory limit,
//! callbacks firing on the background reclaimer's thread, and memory coming
//! back when the program lets go.
//!
//! Run: `cargo run --release --example pressure`

use pool_alloc::stats::human_bytes;
use pool_alloc::{Config, PoolAlloc, PressureLevel, Reclaimer};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A 512 MiB limit (as a container's `memory.max` would set it); memory
/// idle for 200 ms goes back.
#[global_allocator]
static GLOBAL: PoolAlloc =
    PoolAlloc::with_config(Config::new().limit_bytes(512 << 20).max_idle_ms(200));

static CALLS: AtomicUsize = AtomicUsize::new(0);

/// What a service would do: shed a cache, refuse new work, log.
fn on_pressure(level: PressureLevel) {
    CALLS.fetch_add(1, Ordering::Relaxed);
    println!("    callback: memory pressure is {}", level.name());
}

fn main() {
    let reclaimer = Reclaimer::with_period(Duration::from_millis(50));
    let handle = pool_alloc::on_pressure(on_pressure).expect("a callback slot");
    let snap = pool_alloc::snapshot();
    println!(
        "limit {}, pressure levels at 80 / 90 / 95 %",
        human_bytes(snap.reclaim.limit_bytes)
    );

    // Fill memory in 32 MiB steps of live, touched buffers (a cache
    // growing). Pressure rises; the reclaimer samples it every 50 ms.
    let mut cache: Vec<Vec<u8>> = Vec::new();
    for step in 1..=15 {
        cache.push(vec![step as u8; 32 << 20]);
        std::thread::sleep(Duration::from_millis(120));
        let s = pool_alloc::snapshot();
        println!(
            "step {step:>2}: live {:>10}, resident {:>10}, pressure {}",
            human_bytes(s.live_bytes),
            human_bytes(s.resident_bytes),
            pool_alloc::last_level().name()
        );
    }

    // Let go of the cache, as a callback would: memory comes back.
    let before = pool_alloc::snapshot().resident_bytes;
    cache.clear();
    cache.shrink_to_fit();
    std::thread::sleep(Duration::from_millis(500));
    let after = pool_alloc::snapshot();
    println!(
        "cache dropped: resident {} -> {}, pressure {}, {} callback rounds",
        human_bytes(before),
        human_bytes(after.resident_bytes),
        pool_alloc::last_level().name(),
        CALLS.load(Ordering::Relaxed)
    );
    pool_alloc::unregister_pressure_callback(handle);
    reclaimer.stop();
}
