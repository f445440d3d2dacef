//! With the `valgrind` feature, memcheck sees this allocator's blocks: a
//! seeded use-after-free is reported, and clean std work reports nothing.
//! Runs this binary under `valgrind --tool=memcheck` (CI installs valgrind).
//!
//! `cargo test --features valgrind --test valgrind`

use pool_alloc::PoolAlloc;
use std::process::Command;

#[global_allocator]
static GLOBAL: PoolAlloc = PoolAlloc::new();

const CHILD: &str = "POOL_ALLOC_VALGRIND_CHILD";

fn child(mode: &str) {
    match mode {
        "use-after-free" => {
            let layout = std::alloc::Layout::from_size_align(100, 8).unwrap();
            // SAFETY: a fresh allocation, written then freed.
            let p = unsafe { std::alloc::alloc(layout) };
            // SAFETY: `p` is a live 100-byte block.
            unsafe { p.write_bytes(7, 100) };
            // SAFETY: allocated above with `layout`.
            unsafe { std::alloc::dealloc(p, layout) };
            // The seeded bug: read the block after freeing it.
            // SAFETY: not sound: this is the use-after-free memcheck must see.
            let x = unsafe { std::ptr::read_volatile(p.add(50)) };
            println!("read {x} after free");
        }
        _ => {
            // Clean work across the bands and threads: no report expected.
            let mut v: Vec<String> = (0..2000).map(|i| format!("item {i}")).collect();
            v.sort();
            let big = vec![1u8; 3 << 20];
            let pooled: Vec<Vec<u8>> = (0..50).map(|i| vec![i as u8; 5000 + i * 3000]).collect();
            let t = std::thread::spawn(move || pooled.iter().map(|b| b.len()).sum::<usize>());
            let sum = t.join().unwrap();
            let mut grow = Vec::new();
            for i in 0..100_000u32 {
                grow.push(i);
            }
            println!("clean {} {} {} {}", v.len(), big.len(), sum, grow.len());
        }
    }
}

fn run_under_memcheck(mode: &str) -> (i32, String) {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("valgrind")
        .args(["--tool=memcheck", "--error-exitcode=99", "--quiet"])
        .arg(exe)
        .args([
            "--exact",
            "memcheck_sees_the_blocks",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, mode)
        .output()
        .expect("valgrind must be installed (CI installs it)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn memcheck_sees_the_blocks() {
    if let Ok(mode) = std::env::var(CHILD) {
        child(&mode);
        return;
    }
    let (code, stderr) = run_under_memcheck("use-after-free");
    assert_eq!(code, 99, "memcheck reported an error:\n{stderr}");
    assert!(stderr.contains("Invalid read"), "{stderr}");
    assert!(
        stderr.contains("free'd"),
        "the block is known as freed:\n{stderr}"
    );

    let (code, stderr) = run_under_memcheck("clean");
    assert_eq!(code, 0, "no errors on clean work:\n{stderr}");
}
