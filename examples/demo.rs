//! The main demo: install the allocator, run a small "service" workload
//! (collections, strings, threads, buffers in every size band, one slow
//! leak), and print what the allocator reports.
//!
//! Run: `cargo run --release --example demo`

use pool_alloc::stats::{human_bytes, LeakDetector};
use pool_alloc::{PoolAlloc, Reclaimer};
use std::collections::HashMap;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

#[global_allocator]
static GLOBAL: PoolAlloc = PoolAlloc::new();

/// A tiny deterministic PRNG (no dependency).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One "request": parse, build a response, touch a cache, use a buffer.
fn handle(rng: &mut Rng, cache: &mut HashMap<u64, String>) -> usize {
    let key = rng.below(5000);
    let body: String = (0..rng.below(40) + 1)
        .map(|i| format!("field{i}={};", rng.below(1_000_000)))
        .collect();
    let mut fields: Vec<&str> = body.split(';').filter(|s| !s.is_empty()).collect();
    fields.sort_unstable();
    let response = fields.join("&");
    cache.insert(key, response.clone());
    if cache.len() > 2000 {
        let k = *cache.keys().next().unwrap();
        cache.remove(&k);
    }
    // A pooled-band buffer: 4 KiB .. 1 MiB, every page touched.
    let n = 4096 + rng.below((1 << 20) - 4096) as usize;
    let mut buf = vec![0u8; n];
    for i in (0..buf.len()).step_by(4096) {
        buf[i] = i as u8;
    }
    // Now and then a large one (above 1 MiB: mapped directly).
    if rng.below(200) == 0 {
        let big = vec![7u8; (2 << 20) + rng.below(6 << 20) as usize];
        return response.len() + big.len() / 1024;
    }
    response.len() + buf.len() / 4096
}

/// Rounds of work; the leak detector records a snapshot after each (it
/// wants about 20 windows of steady growth before it says high).
const ROUNDS: u64 = 30;
/// Requests per worker thread per round.
const REQUESTS: u64 = 1200;

fn main() {
    // The background reclaimer gives idle memory back (and samples memory
    // pressure) without the program asking. The allocator never starts it
    // by itself.
    let reclaimer = Reclaimer::start();
    // The leak investigator is on by default at one sample per MiB; this
    // run is short and its leak small (~7 MiB), so sample finer.
    pool_alloc::profile::start(64 << 10);
    let start = Instant::now();
    let leaked: Arc<Mutex<Vec<Box<[u8; 200]>>>> = Arc::default();
    let mut detector = LeakDetector::new();
    let (tx, rx) = mpsc::channel::<Vec<u8>>();

    // A consumer thread frees what the workers send it (cross-thread frees).
    let consumer = std::thread::spawn(move || rx.into_iter().map(|v| v.len()).sum::<usize>());

    for round in 0..ROUNDS {
        let workers: Vec<_> = (0..4u64)
            .map(|t| {
                let tx = tx.clone();
                let leaked = Arc::clone(&leaked);
                std::thread::spawn(move || {
                    let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ (round * 4 + t + 1));
                    let mut cache = HashMap::new();
                    let mut out = 0;
                    for i in 0..REQUESTS {
                        out += handle(&mut rng, &mut cache);
                        if i % 10 == 0 {
                            tx.send(vec![1u8; 64 + rng.below(8000) as usize]).unwrap();
                        }
                        // The bug: a "session log" nobody ever trims.
                        if i % 4 == 0 {
                            leaked.lock().unwrap().push(Box::new([round as u8; 200]));
                        }
                    }
                    out
                })
            })
            .collect();
        let work: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
        let snap = GLOBAL.snapshot();
        eprintln!(
            "round {round:>2}: {work} units, live {}, resident {}",
            human_bytes(snap.live_bytes),
            human_bytes(snap.resident_bytes)
        );
        detector.record(snap);
    }
    drop(tx);
    let consumed = consumer.join().unwrap();

    let snap = GLOBAL.snapshot();
    println!(
        "pool-alloc demo: {ROUNDS} rounds x 4 threads x {REQUESTS} requests in {:.2?}",
        start.elapsed()
    );
    println!(
        "consumer thread freed {} of buffers sent to it\n",
        human_bytes(consumed as u64)
    );
    println!("{snap}\n");
    let report = detector.report();
    println!("{report}");
    // The leak investigator (on by default): where live memory was
    // allocated, from about one sampled allocation per MiB.
    let live = pool_alloc::profile::Profile::capture();
    println!("where live memory was allocated (sampled; top 5 call sites):");
    for s in live.by_site().iter().take(5) {
        println!("  {:>10}  {}", human_bytes(s.bytes as u64), s.site);
    }
    println!("\n{}", live.explain(&report));
    // The workload is over. Nothing is called by hand: idle memory goes
    // back as it passes max_idle (1 s by default), through the reclaimer.
    let max_idle = pool_alloc::config::current().get_max_idle_ms();
    for step in 0..3 {
        std::thread::sleep(std::time::Duration::from_millis(max_idle / 2 + 100));
        let now = GLOBAL.snapshot();
        println!(
            "{:>5} ms after the work: resident {} (was {}), returned to the OS so far {}",
            (step + 1) * (max_idle / 2 + 100),
            human_bytes(now.resident_bytes),
            human_bytes(snap.resident_bytes),
            human_bytes(now.returned_bytes),
        );
    }
    reclaimer.stop();
    let leaked_bytes = leaked.lock().unwrap().len() * 200;
    println!(
        "(the demo leaks on purpose: {} in 200-byte session records)",
        human_bytes(leaked_bytes as u64)
    );
}
