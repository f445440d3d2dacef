//! With the `valgrind` feature, memcheck sees this allocator's blocks: a
//! seeded use-after-free is reported, and clean std work reports nothing.
//! Runs this binary under `valgrind --tool=memcheck` (CI installs valgrind).
//!
//! `cargo test --features valgrind --test valgrind`

use pool_alloc::PoolAlloc;
use test_support::child;

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

/// Run this test again under memcheck in `mode`: exit code, stdout, stderr.
fn run_under_memcheck(mode: &str) -> (i32, String, String) {
    let out = child::output(&mut child::command_under(
        &[
            "valgrind",
            "--tool=memcheck",
            "--error-exitcode=99",
            "--quiet",
        ],
        "memcheck_sees_the_blocks",
        CHILD,
        mode,
    ));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn memcheck_sees_the_blocks() {
    if let Some(mode) = child::role(CHILD) {
        child(&mode);
        return;
    }
    let (code, stdout, stderr) = run_under_memcheck("use-after-free");
    assert_eq!(code, 99, "memcheck reported an error:\n{stderr}");
    assert!(
        stdout.contains("after free"),
        "the seeded bug ran: {stdout}"
    );
    assert!(stderr.contains("Invalid read"), "{stderr}");
    assert!(
        stderr.contains("free'd"),
        "the block is known as freed:\n{stderr}"
    );

    let (code, stdout, stderr) = run_under_memcheck("clean");
    assert_eq!(code, 0, "no errors on clean work:\n{stderr}");
    let sum: usize = (0..50).map(|i| 5000 + i * 3000).sum();
    assert!(
        stdout.contains(&format!("clean 2000 {} {sum} 100000", 3 << 20)),
        "the clean work ran to the end: {stdout}"
    );
}
