//! A deliberate leak inside a busy workload: the leak risk rises, the
//! report names the leaking class and says why, and the leak investigator's
//! sampled profile names the function that leaks, how old its memory is,
//! and the component it was allocated in.
//!
//! Run: `cargo run --release --example leak_hunt`

use pool_alloc::profile::{self, Profile};
use pool_alloc::stats::LeakLevel;
use pool_alloc::{PoolAlloc, Sampler};
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: PoolAlloc = PoolAlloc::new();

/// Something that looks like a request handler: strings and maps that come
/// and go, and a registry that forgets to drop its entries.
// NB: boxed on purpose: each record is its own 320-byte allocation, the
// class the leak shows up in.
#[allow(clippy::vec_box)]
fn handle(i: u64, scratch: &mut HashMap<u64, String>, registry: &mut Vec<Box<[u64; 40]>>) {
    let key = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % 10_000;
    scratch.insert(key, format!("request {i} for key {key}"));
    if scratch.len() > 5_000 {
        scratch.clear();
    }
    // The leak: a 320-byte record per request, registered and never removed.
    if i.is_multiple_of(20) {
        register(registry, i);
    }
}

/// Where the leak is allocated (not inlined, so the profile can name it).
#[inline(never)]
#[allow(clippy::vec_box)]
fn register(registry: &mut Vec<Box<[u64; 40]>>, i: u64) {
    registry.push(Box::new([i; 40]));
}

fn main() {
    // One snapshot every 100 ms into a history of 40.
    let sampler = Sampler::start(Duration::from_millis(100), 40);
    let mut scratch = HashMap::new();
    let mut registry = Vec::new();
    // Requests run inside the "handler" component.
    let handler = profile::component("handler");
    let start = Instant::now();
    let mut level = LeakLevel::Low;
    let mut i = 0u64;
    while start.elapsed() < Duration::from_secs(6) {
        {
            let _in_handler = handler.enter();
            for _ in 0..2_000 {
                handle(i, &mut scratch, &mut registry);
                i += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
        let now = sampler.report().level;
        if now != level {
            println!(
                "{:>5.1} s: leak risk {:?} -> {:?}",
                start.elapsed().as_secs_f64(),
                level,
                now
            );
            level = now;
        }
    }
    let report = sampler.report();
    println!("\n{report}");
    if let Some(top) = report.suspects.first() {
        println!("the leaking class: {} ({})", top.class_name(), top.reason());
    }
    // The sampled live heap: where the suspects' memory was allocated.
    let live = Profile::capture();
    println!("\n{live}");
    println!(
        "what the profile says about the suspects:\n{}",
        live.explain(&report)
    );
    if let Some(top) = report.suspects.first() {
        if let Some(site) = live.by_site_in_class(top.block_size).first() {
            println!("the leak's call site: {}", site.site);
        }
    }
    println!(
        "(the registry holds {} records of 320 bytes: {} KiB)",
        registry.len(),
        registry.len() * 320 / 1024
    );
    sampler.stop();
}
