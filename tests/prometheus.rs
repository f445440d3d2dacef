//! The Prometheus text of a real snapshot, read back by a parser written
//! elsewhere (the `prometheus-parse` crate): every series has HELP and
//! TYPE, `_total` series are counters and the rest gauges, per-class
//! series carry a `class` label, and the values are the snapshot's.

use pool_alloc::PoolAlloc;
use prometheus_parse::{Scrape, Value};

#[global_allocator]
static GLOBAL: PoolAlloc = PoolAlloc::new();

#[test]
fn the_text_format_parses_with_the_right_types_labels_and_values() {
    let keep: Vec<Vec<u8>> = (0..200).map(|i| vec![i as u8; 100 + i * 50]).collect();
    let snap = pool_alloc::snapshot();
    let text = snap.to_prometheus();
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parses");
    assert!(
        scrape.samples.len() > 20,
        "{} samples",
        scrape.samples.len()
    );
    for s in &scrape.samples {
        assert!(
            scrape.docs.contains_key(&s.metric),
            "{} has a HELP line",
            s.metric
        );
        assert!(s.metric.starts_with("pool_alloc_"), "{}", s.metric);
        match (&s.value, s.metric.ends_with("_total")) {
            (Value::Counter(v), true) | (Value::Gauge(v), false) => {
                assert!(v.is_finite() && *v >= 0.0, "{} = {v}", s.metric)
            }
            (v, _) => panic!("{} has the wrong type: {v:?}", s.metric),
        }
        if s.metric.starts_with("pool_alloc_class_") {
            let class: usize = s
                .labels
                .get("class")
                .expect("a class label")
                .parse()
                .unwrap();
            assert!(snap.classes.iter().any(|c| c.block_size == class));
        }
    }
    let value = |metric: &str, class: Option<&str>| -> f64 {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == metric && class.is_none_or(|c| s.labels.get("class") == Some(c)))
            .map(|s| match s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
                _ => f64::NAN,
            })
            .unwrap_or_else(|| panic!("{metric} is there"))
    };
    assert_eq!(value("pool_alloc_live_bytes", None), snap.live_bytes as f64);
    let c = snap.classes.iter().find(|c| c.live_blocks > 0).unwrap();
    let label = c.block_size.to_string();
    assert_eq!(
        value("pool_alloc_class_allocs_total", Some(&label)),
        c.allocs as f64
    );
    assert_eq!(
        value("pool_alloc_class_live_blocks", Some(&label)),
        c.live_blocks as f64
    );
    assert_eq!(
        value("pool_alloc_reclaim_runs_total", None),
        snap.reclaim.runs[0] as f64
    );
    drop(keep);
}

/// The `prometheus` example serves /metrics; scrape it over loopback.
#[test]
fn the_example_serves_metrics_over_loopback() {
    use std::io::{BufRead, BufReader, Read, Write};
    // Cargo builds the examples before the tests; find ours next to this
    // test binary (target/<profile>/examples/prometheus).
    let exe = std::env::current_exe().unwrap();
    let example = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("examples").join("prometheus"))
        .expect("the target directory");
    if !example.exists() {
        // Run alone (`cargo test --test prometheus`), cargo did not build
        // the examples: build this one.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "--example", "prometheus"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo");
        assert!(status.success());
    }
    assert!(example.exists(), "built: {}", example.display());
    let mut child = std::process::Command::new(&example)
        .env("PORT", "0")
        .env("REQUESTS", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the example");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("serving http://")
        .and_then(|a| a.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("the address: {line}"))
        .to_string();
    assert!(addr.starts_with("127.0.0.1:"), "loopback only: {addr}");
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    write!(conn, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut body = String::new();
    conn.read_to_string(&mut body).unwrap();
    assert!(child.wait().unwrap().success());
    let (head, text) = body.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(
        head.starts_with("HTTP/1.") && head.contains(" 200 "),
        "{head}"
    );
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    assert!(scrape
        .samples
        .iter()
        .any(|s| s.metric == "pool_alloc_class_allocs_total"));
}
