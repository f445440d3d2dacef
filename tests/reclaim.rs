//! Reclaim: levels, the utilisation threshold, `max_idle` expiry (on the
//! next allocation, and from the background reclaimer with no allocation),
//! the hard limit, pressure callbacks.
//!
//! The configuration is process-wide and read once, so each test runs in a
//! child process of its own (this binary re-run on one test) with its
//! `POOL_ALLOC_*` environment. Resident memory is read from
//! `/proc/self/statm` without allocating.

use pool_alloc::{PoolAlloc, PressureLevel, ReclaimLevel, Reclaimer};
use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: PoolAlloc = PoolAlloc::new();

const MIB: usize = 1 << 20;

/// Resident bytes, read without allocating.
fn rss() -> usize {
    let mut buf = [0u8; 128];
    // SAFETY: a NUL-terminated path; the fd is closed below.
    let fd = unsafe { libc::open(c"/proc/self/statm".as_ptr(), libc::O_RDONLY) };
    assert!(fd >= 0, "open /proc/self/statm");
    // SAFETY: `buf` is writable for its length; `fd` is open.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    // SAFETY: our fd.
    unsafe { libc::close(fd) };
    assert!(n > 0);
    let field = buf[..n as usize].split(|&b| b == b' ').nth(1).unwrap();
    let pages = field
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0usize, |a, &b| a * 10 + (b - b'0') as usize);
    pages * 4096
}

const CHILD: &str = "RECLAIM_TEST_CHILD";

/// Run test `name` in a child with `env`; the child's panics fail it.
fn in_child(name: &str, env: &[(&str, &str)], body: fn()) {
    if test_support::child::role(CHILD).is_some() {
        body();
        return;
    }
    let mut cmd = test_support::child::command(name, CHILD, "1");
    cmd.envs(env.iter().copied());
    let out = test_support::child::output(&mut cmd);
    assert!(
        out.status.success(),
        "child {name} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `n` pooled blocks of `size` bytes, every page written.
fn alloc_touched(n: usize, size: usize) -> Vec<(usize, Layout)> {
    let layout = Layout::from_size_align(size, 16).unwrap();
    (0..n)
        .map(|i| {
            // SAFETY: a valid non-zero layout.
            let p = unsafe { GLOBAL.alloc(layout) };
            assert!(!p.is_null());
            for off in (0..size).step_by(4096) {
                // SAFETY: inside the block.
                unsafe { p.add(off).write(i as u8 | 1) };
            }
            (p as usize, layout)
        })
        .collect()
}

fn free_all(blocks: &[(usize, Layout)]) {
    for &(p, l) in blocks {
        // SAFETY: allocated above with `l`, freed once.
        unsafe { GLOBAL.dealloc(p as *mut u8, l) };
    }
}

#[test]
fn each_level_gives_memory_back() {
    in_child(
        "each_level_gives_memory_back",
        &[
            ("POOL_ALLOC_MAX_IDLE_MS", "200"),
            ("POOL_ALLOC_RETAIN_MB", "4096"),
        ],
        || {
            // Gentle: idle memory older than max_idle.
            let blocks = alloc_touched(256, 256 << 10);
            free_all(&blocks);
            drop(blocks);
            std::thread::sleep(Duration::from_millis(400));
            let before = rss();
            let r = GLOBAL.reclaim(ReclaimLevel::Gentle);
            let after = rss();
            assert!(r.bytes >= 48 * MIB as u64, "gentle gave back {r:?}");
            assert!(
                before.saturating_sub(after) >= 40 * MIB,
                "gentle: rss {before} -> {after}"
            );

            // Moderate, aggressive: all idle memory, whatever its age.
            for level in [ReclaimLevel::Moderate, ReclaimLevel::Aggressive] {
                let blocks = alloc_touched(256, 256 << 10);
                free_all(&blocks);
                drop(blocks);
                let before = rss();
                let r = GLOBAL.reclaim(level);
                let after = rss();
                assert!(r.bytes >= 48 * MIB as u64, "{level:?} gave back {r:?}");
                assert!(
                    before.saturating_sub(after) >= 40 * MIB,
                    "{level:?}: rss {before} -> {after}"
                );
            }

            // Emergency: also the cache of freed large mappings.
            let big = alloc_touched(4, 6 * MIB);
            free_all(&big);
            drop(big);
            let before = rss();
            let r = GLOBAL.reclaim(ReclaimLevel::Emergency);
            let after = rss();
            assert!(r.bytes >= 20 * MIB as u64, "emergency gave back {r:?}");
            assert!(
                before.saturating_sub(after) >= 18 * MIB,
                "emergency: rss {before} -> {after}"
            );
        },
    );
}

#[test]
fn crossing_the_threshold_reclaims_without_a_timer() {
    in_child(
        "crossing_the_threshold_reclaims_without_a_timer",
        &[
            ("POOL_ALLOC_POOL_BUDGET_MB", "64"),
            ("POOL_ALLOC_THRESHOLD_PCT", "80"),
            ("POOL_ALLOC_RETAIN_MB", "4096"),
            ("POOL_ALLOC_MAX_IDLE_MS", "600000"),
        ],
        || {
            // 60 MiB in use: above 80 % of the 64 MiB budget, nothing idle.
            let blocks = alloc_touched(200, 300 << 10);
            let peak = rss();
            // Free a third: the frees themselves bring pooled memory (in
            // use + idle) back under 51.2 MiB by giving idle memory back.
            let (gone, kept) = blocks.split_at(70);
            free_all(gone);
            let after = rss();
            assert!(
                peak - after >= 8 * MIB,
                "threshold reclaimed on free: rss {peak} -> {after}"
            );
            free_all(kept);
        },
    );
}

#[test]
fn max_idle_expires_on_the_next_allocation() {
    in_child(
        "max_idle_expires_on_the_next_allocation",
        &[
            ("POOL_ALLOC_MAX_IDLE_MS", "100"),
            ("POOL_ALLOC_RETAIN_MB", "4096"),
        ],
        || {
            let blocks = alloc_touched(256, 256 << 10);
            free_all(&blocks);
            drop(blocks);
            std::thread::sleep(Duration::from_millis(300));
            let before = rss();
            // Allocations that take the slow path (a pooled block whose slab
            // empties again on free). Each pass gives back at most a bounded
            // number of runs (the pause bound), so a few passes, a quarter
            // of max_idle apart, give back all of it.
            let mut after = before;
            for _ in 0..40 {
                let one = alloc_touched(1, 700 << 10);
                free_all(&one);
                after = rss();
                if before.saturating_sub(after) >= 40 * MIB {
                    break;
                }
                std::thread::sleep(Duration::from_millis(30));
            }
            assert!(
                before.saturating_sub(after) >= 40 * MIB,
                "rss {before} -> {after}"
            );
        },
    );
}

#[test]
fn the_reclaimer_gives_idle_memory_back_with_no_allocation() {
    in_child(
        "the_reclaimer_gives_idle_memory_back_with_no_allocation",
        &[
            ("POOL_ALLOC_MAX_IDLE_MS", "100"),
            ("POOL_ALLOC_RETAIN_MB", "4096"),
        ],
        || {
            let reclaimer = Reclaimer::start();
            assert!(reclaimer.is_running());
            let blocks = alloc_touched(256, 256 << 10);
            let peak = rss();
            free_all(&blocks);
            // From here this thread only sleeps and reads /proc (no
            // allocation): the reclaimer's thread does the work.
            let mut now = rss();
            for _ in 0..200 {
                if peak.saturating_sub(now) >= 40 * MIB {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
                now = rss();
            }
            assert!(peak.saturating_sub(now) >= 40 * MIB, "rss {peak} -> {now}");
            drop(blocks);
            reclaimer.stop();
        },
    );
}

#[test]
fn the_hard_limit_returns_null_and_the_program_carries_on() {
    in_child(
        "the_hard_limit_returns_null_and_the_program_carries_on",
        &[
            ("POOL_ALLOC_LIMIT_MB", "256"),
            ("POOL_ALLOC_HARD_LIMIT", "1"),
        ],
        || {
            // A large request past the limit: an error, not an abort.
            let mut v: Vec<u8> = Vec::new();
            assert!(v.try_reserve_exact(300 * MIB).is_err());
            // Pooled blocks until the limit refuses one.
            let layout = Layout::from_size_align(256 << 10, 16).unwrap();
            let mut held = Vec::with_capacity(2048);
            let refused = loop {
                // SAFETY: a valid non-zero layout.
                let p = unsafe { GLOBAL.alloc(layout) };
                if p.is_null() {
                    break true;
                }
                held.push(p as usize);
                if held.len() == 2048 {
                    break false;
                }
            };
            assert!(refused, "the limit refused a block");
            // 256 KiB requests take the 355 KiB class: ~650 blocks fit.
            assert!(
                held.len() * (256 << 10) >= 128 * MIB,
                "{} blocks",
                held.len()
            );
            // Free half: allocating works again.
            for p in held.drain(..held.len() / 2) {
                // SAFETY: allocated above with `layout`.
                unsafe { GLOBAL.dealloc(p as *mut u8, layout) };
            }
            // SAFETY: a valid non-zero layout.
            let p = unsafe { GLOBAL.alloc(layout) };
            assert!(!p.is_null(), "allocates again after freeing");
            // SAFETY: just allocated with `layout`.
            unsafe { GLOBAL.dealloc(p, layout) };
            assert!(v.try_reserve_exact(16 * MIB).is_ok());
            for p in held {
                // SAFETY: allocated above with `layout`.
                unsafe { GLOBAL.dealloc(p as *mut u8, layout) };
            }
        },
    );
}

static FIRED: [AtomicUsize; 4] = [const { AtomicUsize::new(0) }; 4];

fn record(level: PressureLevel) {
    FIRED[level as usize].fetch_add(1, Ordering::Relaxed);
}

fn fired(level: PressureLevel) -> usize {
    FIRED[level as usize].load(Ordering::Relaxed)
}

#[test]
fn callbacks_fire_at_their_level_and_respect_the_cooldown() {
    in_child(
        "callbacks_fire_at_their_level_and_respect_the_cooldown",
        &[("POOL_ALLOC_LIMIT_MB", "256")],
        || {
            let handle = pool_alloc::on_pressure(record).expect("a free slot");
            assert_eq!(pool_alloc::poll(), PressureLevel::Low);
            assert_eq!(fired(PressureLevel::Medium), 0, "nothing fires at low");

            // About 84 % of the limit, live: medium.
            let a = alloc_touched(27, 8 * MIB);
            let t = Instant::now();
            assert_eq!(pool_alloc::poll(), PressureLevel::Medium);
            assert_eq!(fired(PressureLevel::Medium), 1);
            assert_eq!(pool_alloc::poll(), PressureLevel::Medium);
            // The second poll fires again only if a whole cooldown passed.
            if t.elapsed() < Duration::from_millis(1000) {
                assert_eq!(fired(PressureLevel::Medium), 1, "cooldown respected");
            }
            // Once the cooldown (1 s) has passed, still at medium, it fires
            // again: once more, however many polls.
            std::thread::sleep(Duration::from_millis(1100));
            let before = fired(PressureLevel::Medium);
            let t2 = Instant::now();
            assert_eq!(pool_alloc::poll(), PressureLevel::Medium);
            assert_eq!(pool_alloc::poll(), PressureLevel::Medium);
            let again = fired(PressureLevel::Medium) - before;
            assert!(again >= 1, "fires again after the cooldown");
            if t2.elapsed() < Duration::from_millis(1000) {
                assert_eq!(again, 1, "once per cooldown");
            }
            // About 97 %: critical fires at once (a level of its own).
            let b = alloc_touched(4, 8 * MIB);
            assert_eq!(pool_alloc::poll(), PressureLevel::Critical);
            assert_eq!(fired(PressureLevel::Critical), 1);
            assert_eq!(fired(PressureLevel::High), 0);
            free_all(&a);
            free_all(&b);
            GLOBAL.reclaim(ReclaimLevel::Emergency);
            assert_eq!(pool_alloc::poll(), PressureLevel::Low);
            pool_alloc::unregister_pressure_callback(handle);
        },
    );
}
