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
