//! Out of memory: impossible requests give null / `try_reserve` errors, and
//! an `RLIMIT_AS`-limited child process fails allocations and carries on.

// SAFETY (all unsafe blocks in this file): each raw call passes a pointer
// this test got from the same allocator with the same layout, still live.
#![allow(clippy::undocumented_unsafe_blocks)]

use pool_alloc::PoolAlloc;
use std::process::Command;

#[global_allocator]
static GLOBAL: PoolAlloc = PoolAlloc::new();

const CHILD_ENV: &str = "POOL_ALLOC_OOM_CHILD";

fn child_work() {
    // 256 MiB of address space: a 1 GiB vector cannot exist.
    let mut v: Vec<u8> = Vec::new();
    assert!(
        v.try_reserve_exact(1 << 30).is_err(),
        "1 GiB under a 256 MiB limit"
    );
    // Fill pooled memory until the limit stops us, then carry on.
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut failed = false;
    for _ in 0..10_000 {
        let mut b: Vec<u8> = Vec::new();
        if b.try_reserve_exact(512 << 10).is_err() {
            failed = true;
            break;
        }
        b.resize(512 << 10, 7);
        held.push(b);
    }
    assert!(failed, "the limit was reached");
    let n = held.len();
    drop(held);
    // Memory came back: the same amount fits again.
    let again: Vec<Vec<u8>> = (0..n / 2).map(|_| vec![3u8; 512 << 10]).collect();
    assert_eq!(again.len(), n / 2);
    println!("child ok: {n} blocks before the limit");
}

#[test]
fn try_reserve_errors_in_process() {
    let mut v: Vec<u8> = Vec::new();
    assert!(v.try_reserve(usize::MAX / 2).is_err());
    assert!(v.try_reserve(1 << 47).is_err());
    v.push(1);
    assert_eq!(v, [1]);
}

#[test]
fn rlimit_limited_child_gets_errors_and_carries_on() {
    if std::env::var_os(CHILD_ENV).is_some() {
        child_work();
        return;
    }
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        "rlimit_limited_child_gets_errors_and_carries_on",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, "1");
    // SAFETY: setrlimit is async-signal-safe and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 256 << 20,
                rlim_max: 256 << 20,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("child ok"), "{stdout}");
}
