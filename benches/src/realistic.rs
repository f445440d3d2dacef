//! Realistic workloads: small programs built from well-known crates, run
//! with the allocator installed (`worker real-NAME`), so every allocation
//! of the crates goes through it. Each reports its time, the process's
//! peak RSS, and a checksum of what it computed: equal for every allocator
//! (the same work was done), which `benches/realistic.sh` checks.
//!
//! | workload | what it does |
//! | --- | --- |
//! | `real-json` | serde_json: build documents as `Value`s, print them, parse them back |
//! | `real-regex` | regex: compile a set of patterns again and again, match them over text |
//! | `real-maps` | `BTreeMap<String, Vec<u64>>` and `HashMap<String, String>` churn |
//! | `real-flate` | flate2: compress and decompress buffers of text-like data |
//! | `real-rayon` | rayon: parallel sort of a large `Vec`, then a map/reduce over strings |
//! | `real-pipeline` | three threads joined by channels, passing owned buffers (cross-thread frees) |
//!
//! `--ops N` (1 to 100; `benches/realistic.sh` passes 1) scales each
//! workload: at 1, about a second on glibc.

use crate::rng::Rng;
use crate::workloads::{Metrics, Params};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::time::Instant;

/// The realistic workloads, in report order.
pub const REALISTIC: [&str; 6] = [
    "real-json",
    "real-regex",
    "real-maps",
    "real-flate",
    "real-rayon",
    "real-pipeline",
];

/// Runs realistic workload `w` once (None: not one of them).
pub fn run(w: &str, p: &Params) -> Option<Metrics> {
    let scale = p.ops.clamp(1, 100);
    let t = Instant::now();
    let sum = match w {
        "real-json" => json(scale, p.seed),
        "real-regex" => regex(scale, p.seed),
        "real-maps" => maps(scale, p.seed),
        "real-flate" => flate(scale, p.seed),
        "real-rayon" => rayon(scale, p.seed),
        "real-pipeline" => pipeline(scale, p.seed),
        _ => return None,
    };
    let secs = t.elapsed().as_secs_f64();
    Some(vec![
        ("seconds".to_string(), secs),
        (
            "peak_rss_mib".to_string(),
            crate::sys::mib(crate::sys::peak_rss_bytes()),
        ),
        // Exact in an f64 (below 2^53), so the script can compare it.
        ("checksum".to_string(), (sum % (1 << 52)) as f64),
    ])
}

/// A word of `len` letters.
fn word(r: &mut Rng, len: usize) -> String {
    (0..len)
        .map(|_| (b'a' + r.below(26) as u8) as char)
        .collect()
}

/// A line of text: words, numbers, an e-mail address now and then.
fn line(r: &mut Rng) -> String {
    let mut s = String::new();
    for i in 0..(4 + r.below(12)) {
        if i > 0 {
            s.push(' ');
        }
        match r.below(10) {
            0 => s.push_str(&format!("{}", r.below(100_000))),
            1 => s.push_str(&format!("{}@{}.com", word(r, 5), word(r, 4))),
            2 => s.push_str(&format!(
                "2026-{:02}-{:02}",
                1 + r.below(12),
                1 + r.below(28)
            )),
            _ => {
                let n = 2 + r.below(9) as usize;
                s.push_str(&word(r, n))
            }
        }
    }
    s
}

fn json(scale: u64, seed: u64) -> u64 {
    use serde_json::{json, Value};
    let mut r = Rng::new(seed);
    let mut sum = 0u64;
    for _ in 0..(300 * scale) {
        let docs: Vec<Value> = (0..200)
            .map(|i| {
                json!({
                    "id": i,
                    "name": word(&mut r, 8),
                    "email": format!("{}@example.com", word(&mut r, 6)),
                    "active": r.below(2) == 1,
                    "score": r.below(1000) as f64 / 7.0,
                    "tags": (0..r.below(8)).map(|_| word(&mut r, 5)).collect::<Vec<_>>(),
                    "address": {"street": line(&mut r), "zip": r.below(99_999)},
                    "history": (0..r.below(20)).map(|k| json!({"at": k, "what": word(&mut r, 7)})).collect::<Vec<_>>(),
                })
            })
            .collect();
        let text = serde_json::to_string(&Value::Array(docs)).unwrap();
        let back: Value = serde_json::from_str(&text).unwrap();
        let pretty = serde_json::to_string_pretty(&back).unwrap();
        sum = sum.wrapping_add(text.len() as u64 + pretty.len() as u64);
        if let Value::Array(items) = back {
            for it in items {
                sum = sum.wrapping_add(it["tags"].as_array().map_or(0, |t| t.len() as u64));
            }
        }
    }
    sum
}

fn regex(scale: u64, seed: u64) -> u64 {
    let mut r = Rng::new(seed);
    let text: Vec<String> = (0..2_000).map(|_| line(&mut r)).collect();
    let patterns = [
        r"[a-z]+@[a-z]+\.com",
        r"\b\d{4}-\d{2}-\d{2}\b",
        r"\b[a-z]{8,}\b",
        r"(?i)\b(error|warn|fail)\w*",
        r"\b\d{5}\b",
        r"^[a-z]+ [a-z]+",
        r"\b[aeiou][a-z]*[aeiou]\b",
        r"\b(?:qu|th|sh)[a-z]*\b",
    ];
    let mut sum = 0u64;
    for round in 0..(300 * scale) {
        // Compiling allocates a lot (parsers, NFAs, caches): do it often.
        let set: Vec<regex::Regex> = patterns
            .iter()
            .map(|p| regex::Regex::new(p).unwrap())
            .collect();
        for (i, l) in text.iter().enumerate() {
            if !(i as u64 + round).is_multiple_of(4) {
                continue;
            }
            for re in &set {
                sum = sum.wrapping_add(re.find_iter(l).count() as u64);
            }
            if let Some(c) = set[1].captures(l) {
                sum = sum.wrapping_add(c.get(0).map_or(0, |m| m.len()) as u64);
            }
        }
    }
    sum
}

fn maps(scale: u64, seed: u64) -> u64 {
    let mut r = Rng::new(seed);
    let mut ordered: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut hashed: HashMap<String, String> = HashMap::new();
    let mut sum = 0u64;
    for i in 0..(600_000 * scale) {
        let k = format!("key-{}", r.below(50_000));
        match r.below(4) {
            0 | 1 => {
                ordered.entry(k.clone()).or_default().push(i);
                hashed.insert(k, line(&mut r));
            }
            2 => {
                if let Some(v) = ordered.remove(&k) {
                    sum = sum.wrapping_add(v.len() as u64);
                }
                if let Some(v) = hashed.remove(&k) {
                    sum = sum.wrapping_add(v.len() as u64);
                }
            }
            _ => {
                let lo = format!("key-{}", r.below(50_000));
                sum = sum.wrapping_add(
                    ordered
                        .range(lo..)
                        .take(8)
                        .map(|(_, v)| v.len() as u64)
                        .sum(),
                );
                sum = sum.wrapping_add(hashed.get(&k).map_or(0, |v| v.len() as u64));
            }
        }
    }
    sum.wrapping_add(ordered.len() as u64 + hashed.len() as u64)
}

fn flate(scale: u64, seed: u64) -> u64 {
    use flate2::{read::GzDecoder, write::GzEncoder, Compression};
    let mut r = Rng::new(seed);
    let mut sum = 0u64;
    for _ in 0..(30 * scale) {
        let mut data = String::new();
        while data.len() < (256 << 10) + r.below(512 << 10) as usize {
            data.push_str(&line(&mut r));
            data.push('\n');
        }
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(data.as_bytes()).unwrap();
        let packed = enc.finish().unwrap();
        let mut out = Vec::new();
        GzDecoder::new(&packed[..]).read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), data.len());
        sum = sum.wrapping_add(packed.len() as u64);
    }
    sum
}

fn rayon(scale: u64, seed: u64) -> u64 {
    use rayon::prelude::*;
    let mut r = Rng::new(seed);
    let mut sum = 0u64;
    for _ in 0..(3 * scale) {
        let mut v: Vec<u64> = (0..2_000_000).map(|_| r.next_u64()).collect();
        v.par_sort_unstable();
        sum = sum.wrapping_add(v[v.len() / 2] >> 32);
        let words: Vec<String> = (0..200_000).map(|_| line(&mut r)).collect();
        let counted: HashMap<usize, usize> = words
            .par_iter()
            .map(|l| l.split(' ').map(|w| w.to_uppercase()).collect::<Vec<_>>())
            .fold(HashMap::new, |mut m, ws| {
                for w in ws {
                    *m.entry(w.len()).or_insert(0) += 1;
                }
                m
            })
            .reduce(HashMap::new, |mut a, b| {
                for (k, n) in b {
                    *a.entry(k).or_insert(0) += n;
                }
                a
            });
        sum = sum.wrapping_add(counted.values().map(|&n| n as u64).sum::<u64>());
    }
    sum
}

fn pipeline(scale: u64, seed: u64) -> u64 {
    use std::sync::mpsc::sync_channel;
    let (tx1, rx1) = sync_channel::<Vec<u8>>(64);
    let (tx2, rx2) = sync_channel::<String>(64);
    let n = 200_000 * scale;
    let producer = std::thread::spawn(move || {
        let mut r = Rng::new(seed);
        for _ in 0..n {
            let len = 16 + r.below(4096) as usize;
            let buf: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31)).collect();
            tx1.send(buf).unwrap();
        }
    });
    let middle = std::thread::spawn(move || {
        // Frees the producer's buffers, allocates strings freed downstream.
        for buf in rx1 {
            let s = format!(
                "{}:{:x}",
                buf.len(),
                buf.iter().map(|&b| b as u64).sum::<u64>()
            );
            tx2.send(s).unwrap();
        }
    });
    let mut sum = 0u64;
    for s in rx2 {
        sum = sum.wrapping_add(s.len() as u64);
    }
    producer.join().unwrap();
    middle.join().unwrap();
    sum
}
