//! Out of memory: impossible requests give null / `try_reserve` errors, and
//! an `RLIMIT_AS`-limited child process fails allocations and carries on.

// SAFETY (all unsafe blocks in this file): each raw call passes a pointer
// this test got from the same allocator with the same layout, still live.
#![allow(clippy::undocumented_unsafe_blocks)]

use pool_alloc::PoolAlloc;
use test_support::child;

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
    // 256 MiB less the binary, its libraries and thread stacks leaves room
    // for well over 32 MiB of blocks: fewer means the limit hit too early.
    assert!(n >= 64, "only {n} blocks of 512 KiB before the limit");
    drop(held);
    // Memory came back: half as much fits again, every reservation succeeds.
    let mut again: Vec<Vec<u8>> = Vec::new();
    for k in 0..n / 2 {
        let mut b: Vec<u8> = Vec::new();
        assert!(
            b.try_reserve_exact(512 << 10).is_ok(),
            "block {k} of {} after freeing {n}: memory did not come back",
            n / 2
        );
        b.resize(512 << 10, 3);
        again.push(b);
    }
    assert!(again.iter().all(|b| b[0] == 3 && b[(512 << 10) - 1] == 3));
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
    if child::role(CHILD_ENV).is_some() {
        child_work();
        return;
    }
    use std::os::unix::process::CommandExt;
    let mut cmd = child::command(
        "rlimit_limited_child_gets_errors_and_carries_on",
        CHILD_ENV,
        "1",
    );
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
    let out = child::output(&mut cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("child ok"), "{stdout}");
}
