//! Replays every committed corpus input of each target, then a few thousand
//! seeded random inputs, under plain `cargo test` (no fuzzer needed).

use std::path::Path;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    // Every target has a committed corpus: a missing or unreadable one must
    // fail here, not replay nothing and pass.
    let rd = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let v: Vec<Vec<u8>> = rd
        .map(|e| std::fs::read(e.expect("a corpus entry").path()).expect("a corpus file"))
        .collect();
    assert!(!v.is_empty(), "no committed corpus in {}", dir.display());
    v
}

/// wyrand: a small seeded generator.
fn random_inputs(seed: u64, n: usize, max_len: usize) -> Vec<Vec<u8>> {
    let mut s = seed;
    let mut next = move || {
        s = s.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        (t >> 64) as u64 ^ t as u64
    };
    (0..n)
        .map(|_| {
            let len = (next() as usize) % max_len;
            (0..len).map(|_| next() as u8).collect()
        })
        .collect()
}

fn replay(target: &str, f: fn(&[u8]), random: usize, max_len: usize) {
    let inputs = corpus(target);
    let committed = inputs.len();
    for input in inputs {
        f(&input);
    }
    for (k, input) in random_inputs(0x5eed ^ target.len() as u64, random, max_len)
        .into_iter()
        .enumerate()
    {
        if std::env::var("FUZZ_ONLY").is_ok_and(|v| v != k.to_string()) {
            continue;
        }
        if std::env::var_os("FUZZ_TRACE").is_some() {
            eprintln!("--- input {k}");
        }
        f(&input);
    }
    eprintln!("{target}: {committed} corpus inputs + {random} random inputs");
}

#[test]
fn ops() {
    replay("ops", pool_alloc_fuzz::ops, 2000, 512);
}

#[test]
fn threads() {
    replay("threads", pool_alloc_fuzz::threads, 300, 512);
}

#[test]
fn size_class() {
    replay("size_class", pool_alloc_fuzz::size_class, 2000, 256);
}

#[test]
fn config() {
    replay("config", pool_alloc_fuzz::config, 3000, 24);
}
