//! Serve the allocator's figures at `http://127.0.0.1:9464/metrics` in the
//! Prometheus text format, for a scraper (or `curl`), while a workload runs.
//!
//! Run: `cargo run --release --example prometheus` (then
//! `curl -s 127.0.0.1:9464/metrics | head`). `PORT=0` picks a free port;
//! `REQUESTS=n` stops after serving n requests.

use pool_alloc::PoolAlloc;
use std::time::Duration;

#[global_allocator]
static GLOBAL: PoolAlloc = PoolAlloc::new();

fn main() {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(9464);
    let requests: usize = std::env::var("REQUESTS")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(usize::MAX);
    let server = tiny_http::Server::http(("127.0.0.1", port)).expect("bind 127.0.0.1");
    println!("serving http://{}/metrics", server.server_addr());
    // A workload in the background, so the figures move.
    std::thread::spawn(|| {
        let mut live: Vec<Vec<u8>> = Vec::new();
        for i in 0usize.. {
            live.push(vec![1u8; 64 + (i * 7919) % 300_000]);
            if live.len() > 500 {
                live.swap_remove((i * 31) % 500);
            }
            if i % 1000 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
    for request in server.incoming_requests().take(requests) {
        let response = if request.url() == "/metrics" {
            let header: tiny_http::Header = "Content-Type: text/plain; version=0.0.4"
                .parse()
                .expect("a valid header");
            tiny_http::Response::from_string(pool_alloc::snapshot().to_prometheus())
                .with_header(header)
        } else {
            tiny_http::Response::from_string("see /metrics").with_status_code(404)
        };
        let _ = request.respond(response);
    }
}
