//! AFL++ entry point (`cargo afl`): one binary for every target, chosen by
//! `POOL_ALLOC_FUZZ_TARGET` (ops, threads, size_class, config; default ops).

fn main() {
    let target = std::env::var("POOL_ALLOC_FUZZ_TARGET").unwrap_or_else(|_| "ops".into());
    let run: fn(&[u8]) = match target.as_str() {
        "threads" => pool_alloc_fuzz::threads,
        "size_class" => pool_alloc_fuzz::size_class,
        "config" => pool_alloc_fuzz::config,
        _ => pool_alloc_fuzz::ops,
    };
    afl::fuzz!(|data: &[u8]| run(data));
}
