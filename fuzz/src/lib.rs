//! Fuzz targets over the allocator, shared by `cargo fuzz` (libFuzzer, the
//! binaries in `fuzz_targets/`) and the plain `cargo test` replay in
//! `tests/replay.rs` (committed corpus plus seeded random inputs).
//!
//! The input bytes are read as a program: each operation takes a few bytes
//! (an opcode, then its arguments). Running out of bytes, or [`MAX_OPS`]
//! operations, ends the program. Blocks are filled and checked with the
//! shared `test_support` patterns (a bounded number of probes per block) and
//! their ranges kept in a `BTreeMap` for O(log n) overlap checks.

#![allow(clippy::undocumented_unsafe_blocks)] // see the SAFETY note per fn

use pool_alloc::PoolAlloc;
use std::alloc::{GlobalAlloc, Layout};
use std::panic::AssertUnwindSafe;
use std::sync::{mpsc, Mutex, OnceLock};
use test_support::pattern::{self, Probes};
use test_support::ranges::LiveRanges;

/// The allocator under test, called directly (the fuzzing process keeps the
/// system allocator as its global one, so the harness never disturbs it).
pub static A: PoolAlloc = PoolAlloc::new();

/// Bytes of pooled and large blocks (sizes above the small band) one input
/// may ask for, per thread: past it, sizes fall back to the small band. Big
/// blocks cost page faults, zeroing and copying whatever the probes do, and
/// the fuzzer's corpus favours inputs that reach them, so without a budget
/// a few inputs full of big blocks set the pace.
pub const BIG_BYTES: usize = 8 << 20;

/// Reads little-endian integers from the input, and keeps its budget of
/// big-block bytes.
pub struct Input<'a> {
    data: &'a [u8],
    big_left: usize,
}

impl<'a> Input<'a> {
    /// Wrap the bytes.
    pub fn new(data: &'a [u8]) -> Self {
        Input {
            data,
            big_left: BIG_BYTES,
        }
    }
    /// One byte, or `None` at the end.
    pub fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }
    /// Two bytes.
    pub fn u16(&mut self) -> Option<u16> {
        Some(u16::from(self.u8()?) | (u16::from(self.u8()?) << 8))
    }
    /// Four bytes.
    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from(self.u16()?) | (u32::from(self.u16()?) << 16))
    }
}

/// Operations one input may run (per thread in `threads`): bounds the time
/// of one execution whatever the input's length.
pub const MAX_OPS: usize = 256;

/// Blocks one `ops` input keeps live at most (the oldest is freed past it).
const MAX_LIVE: usize = 64;

/// Offsets written and checked per block: a bounded number (head, tail and
/// an address-anchored stride, see `test_support::pattern`), so a 4 MiB
/// block costs a few dozen page touches rather than a scan.
const PROBES: Probes = Probes::Sparse;

/// Whether `FUZZ_TRACE` is set (read once: `env::var_os` locks and
/// allocates, too slow to call per operation).
fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("FUZZ_TRACE").is_some())
}

/// A size drawn from all three bands: mostly small (1 in 4 at most 64 B),
/// pooled 1 in 16, large (above 1 MiB, a mapping each) 1 in 64. Big blocks
/// are what cost time (mappings, page faults), so they are rare but always
/// reachable, within the input's [`BIG_BYTES`] budget.
fn size(inp: &mut Input) -> Option<usize> {
    let band = inp.u8()?;
    let r = inp.u32()? as usize;
    let size = match band % 64 {
        0 => (1 << 20) + 1 + r % (3 << 20),
        1..=4 => 3585 + r % ((1 << 20) - 3584),
        5..=20 => 1 + r % 64,
        _ => 1 + r % 3584,
    };
    if size <= 3584 {
        Some(size)
    } else if size <= inp.big_left {
        inp.big_left -= size;
        Some(size)
    } else {
        Some(1 + r % 3584)
    }
}

/// An alignment: mostly 1..16 B, 1 in 8 up to 4 KiB, 1 in 32 up to 4 MiB
/// (the exponent then comes from its own byte, so every power is reachable).
fn align(inp: &mut Input) -> Option<usize> {
    let a = inp.u8()?;
    Some(match a % 32 {
        0 => 1 << (inp.u8()? % 23),
        1..=4 => 1 << (a / 32 + 5), // 32 B .. 4 KiB
        _ => 1 << (a % 5),
    })
}

/// A live block: where, its layout, and the seed of its pattern.
struct Live {
    p: usize,
    layout: Layout,
    seed: u64,
}

impl Live {
    /// A new block at `p`, filled with the pattern of `seed`.
    fn filled(p: *mut u8, layout: Layout, seed: u64) -> Live {
        let b = Live {
            p: p as usize,
            layout,
            seed,
        };
        b.fill();
        b
    }

    /// Write the block's pattern.
    fn fill(&self) {
        // SAFETY: a live block we own, `layout.size()` bytes.
        unsafe { pattern::fill(self.p as *mut u8, self.layout.size(), self.seed, PROBES) };
    }

    /// Check the block's pattern.
    fn check(&self) {
        // SAFETY: a live block we own, `layout.size()` bytes.
        unsafe { pattern::check(self.p as *const u8, self.layout.size(), self.seed, PROBES) };
    }
}

/// Check a block's contents, then free it.
fn release(b: Live) {
    b.check();
    // SAFETY: a live block of `A` with its layout, owned by the caller.
    unsafe { A.dealloc(b.p as *mut u8, b.layout) };
}

/// A new block is not null and aligned; `live` records it (panicking if it
/// overlaps a live block).
fn check_new(live: &mut LiveRanges, p: *mut u8, layout: Layout) {
    assert!(!p.is_null(), "null for {layout:?}");
    assert_eq!(p as usize % layout.align(), 0, "misaligned for {layout:?}");
    live.insert(p as usize, layout.size());
}

/// Target `ops`: alloc / alloc_zeroed / realloc / dealloc sequences with
/// sizes across all bands and alignments up to 4 MiB, against a model:
/// contents, alignment, zeroing and non-overlap are checked. At most
/// [`MAX_OPS`] operations per input.
pub fn ops(data: &[u8]) {
    let mut inp = Input::new(data);
    let mut live: Vec<Live> = Vec::new();
    let mut ranges = LiveRanges::new();
    let mut seed = 0u64;
    let mut ops = 0;
    while let Some(op) = inp.u8() {
        ops += 1;
        if ops > MAX_OPS {
            break;
        }
        match op % 6 {
            0..=2 => {
                let (Some(size), Some(align)) = (size(&mut inp), align(&mut inp)) else {
                    break;
                };
                let layout = Layout::from_size_align(size, align).unwrap();
                let zeroed = op % 6 == 2;
                if trace() {
                    eprintln!("alloc {layout:?} zeroed={zeroed}");
                }
                // SAFETY: a valid non-zero layout.
                let p = unsafe {
                    if zeroed {
                        A.alloc_zeroed(layout)
                    } else {
                        A.alloc(layout)
                    }
                };
                check_new(&mut ranges, p, layout);
                if zeroed {
                    // SAFETY: the new block, `size` bytes.
                    unsafe { pattern::check_zeroed(p, size, PROBES) };
                }
                seed += 1;
                live.push(Live::filled(p, layout, seed));
                if live.len() > MAX_LIVE {
                    let b = live.swap_remove(0);
                    ranges.remove(b.p);
                    release(b);
                }
            }
            3 | 4 if !live.is_empty() => {
                let Some(i) = inp.u8() else { break };
                let Some(new_size) = size(&mut inp) else {
                    break;
                };
                let b = live.swap_remove(i as usize % live.len());
                if trace() {
                    eprintln!("realloc {:#x} {:?} -> {new_size}", b.p, b.layout);
                }
                b.check();
                ranges.remove(b.p);
                // SAFETY: live block, its layout, a non-zero new size.
                let p = unsafe { A.realloc(b.p as *mut u8, b.layout, new_size) };
                let layout = Layout::from_size_align(new_size, b.layout.align()).unwrap();
                check_new(&mut ranges, p, layout);
                // The kept prefix still holds the old block's probes (their
                // positions anchored where the old block was filled).
                // SAFETY: the new block holds `new_size` bytes.
                unsafe { pattern::check_moved(p, b.p, b.layout.size(), new_size, b.seed, PROBES) };
                let moved = Live {
                    p: p as usize,
                    layout,
                    seed: b.seed,
                };
                moved.fill();
                live.push(moved);
            }
            _ if !live.is_empty() => {
                let Some(i) = inp.u8() else { break };
                let b = live.swap_remove(i as usize % live.len());
                if trace() {
                    eprintln!("free {:#x} {:?}", b.p, b.layout);
                }
                ranges.remove(b.p);
                release(b);
            }
            _ => {}
        }
    }
    for b in live {
        ranges.remove(b.p);
        release(b);
    }
    assert!(ranges.is_empty(), "every block accounted for");
}

/// One side of the `threads` target: run the input `d` on this thread,
/// sending about half the blocks to the peer through `tx` and checking and
/// freeing what arrives on `rx`. Returns `rx` (the peer may still send
/// after this side is done) and the blocks this side allocated and freed.
fn threads_side(
    d: &[u8],
    tx: mpsc::Sender<Live>,
    rx: mpsc::Receiver<Live>,
) -> (mpsc::Receiver<Live>, usize, usize) {
    let mut inp = Input::new(d);
    let mut mine: Vec<Live> = Vec::new();
    let (mut allocated, mut released) = (0, 0);
    let mut seed = 0u64;
    let mut ops = 0;
    while let Some(op) = inp.u8() {
        ops += 1;
        if ops > MAX_OPS {
            break;
        }
        for b in rx.try_iter() {
            release(b);
            released += 1;
        }
        let (Some(sz), Some(align)) = (size(&mut inp), align(&mut inp)) else {
            break;
        };
        let layout = Layout::from_size_align(sz, align).unwrap();
        // SAFETY: a valid non-zero layout.
        let p = unsafe { A.alloc(layout) };
        assert!(!p.is_null(), "null for {layout:?}");
        assert_eq!(p as usize % align, 0, "misaligned for {layout:?}");
        allocated += 1;
        seed += 1;
        let b = Live::filled(p, layout, seed);
        if op % 2 == 0 {
            tx.send(b).expect("the peer's receiver outlives both sides");
        } else {
            mine.push(b);
        }
        if mine.len() > 32 {
            release(mine.swap_remove(op as usize % mine.len()));
            released += 1;
        }
    }
    drop(tx);
    for b in mine {
        release(b);
        released += 1;
    }
    (rx, allocated, released)
}

/// One side's input and channel ends, for a worker.
struct SideJob {
    d: Vec<u8>,
    tx: mpsc::Sender<Live>,
    rx: mpsc::Receiver<Live>,
}

/// What a side returns, or its panic.
type SideResult = std::thread::Result<(mpsc::Receiver<Live>, usize, usize)>;

/// A long-lived worker thread: where to send it a side, where its result
/// comes back.
type Worker = (mpsc::SyncSender<SideJob>, mpsc::Receiver<SideResult>);

/// Long-lived worker thread `k` (0 or 1), started on first use. Spawning
/// two threads per input (with ASan's per-thread set-up and the allocator's
/// release of each exited heap) costs more than the input's work. Both
/// channels are bounded: their buffers are allocated once, so an input
/// frees every byte it allocates (libFuzzer re-runs and leak-checks inputs
/// that do not).
fn worker(k: usize) -> &'static Mutex<Worker> {
    static WORKERS: OnceLock<[Mutex<Worker>; 2]> = OnceLock::new();
    &WORKERS.get_or_init(|| {
        std::array::from_fn(|k| {
            let (job_tx, job_rx) = mpsc::sync_channel::<SideJob>(1);
            let (done_tx, done_rx) = mpsc::sync_channel::<SideResult>(1);
            std::thread::Builder::new()
                .name(format!("fuzz-worker-{k}"))
                .spawn(move || {
                    for SideJob { d, tx, rx } in job_rx {
                        // `d` is dropped inside, before the result goes back.
                        let r = std::panic::catch_unwind(AssertUnwindSafe(move || {
                            threads_side(&d, tx, rx)
                        }));
                        if done_tx.send(r).is_err() {
                            break;
                        }
                    }
                })
                .expect("spawn a fuzz worker");
            Mutex::new((job_tx, done_rx))
        })
    })[k]
}

/// Target `threads`: two threads allocate (sizes and alignments as in
/// `ops`); about half the blocks cross to the other thread, which checks
/// and frees them (remote frees), as the input says. Every block is checked
/// once and freed once: none is lost. At most [`MAX_OPS`] operations per
/// thread.
///
/// The sides run on two long-lived worker threads, except that in 1 input
/// in 16 (by its first byte) the first side runs on a fresh thread that
/// exits at its end: its heap is abandoned, its blocks still in flight are
/// freed remotely, and the next fresh thread adopts a heap. Fresh threads
/// are kept rare because each costs more than an input's work (spawning,
/// ASan's per-thread set-up, the release of the exited heap), and the
/// fuzzer's corpus favours them.
pub fn threads(data: &[u8]) {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let half = data.len() / 2;
    let (d0, d1) = data.split_at(half);
    let (tx0, rx0) = mpsc::channel::<Live>();
    let (tx1, rx1) = mpsc::channel::<Live>();
    // Hand one side to worker `k`; its guard keeps the worker ours until
    // its result is read.
    let start = |k, d: &[u8], tx, rx| {
        let w = worker(k).lock().unwrap_or_else(|e| e.into_inner());
        w.0.send(SideJob {
            d: d.to_vec(),
            tx,
            rx,
        })
        .expect("fuzz workers live as long as the process");
        w
    };
    let w1 = start(1, d1, tx0, rx1);
    let a = if mode % 16 == 0 {
        std::thread::scope(|s| s.spawn(move || threads_side(d0, tx1, rx0)).join())
    } else {
        let w0 = start(0, d0, tx1, rx0);
        w0.1.recv().expect("a fuzz worker's result")
    };
    let b = w1.1.recv().expect("a fuzz worker's result");
    drop(w1);
    let sides = [a, b].map(|r| r.unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
    let (mut allocated, mut released) = (0, 0);
    for (rx, a, r) in sides {
        allocated += a;
        released += r;
        for b in rx.try_iter() {
            release(b);
            released += 1;
        }
    }
    assert_eq!(
        allocated, released,
        "every block allocated was checked and freed once"
    );
}

// A `Live` crossing threads is a uniquely owned allocation.
// SAFETY: no aliasing: the sender gives it up.
unsafe impl Send for Live {}

/// Target `size_class`: the class of any size is the smallest that fits,
/// and `usable_size` covers the request.
pub fn size_class(data: &[u8]) {
    let mut inp = Input::new(data);
    while let Some(r) = inp.u32() {
        let size = 1 + (r as usize % (2 << 20));
        match pool_alloc::size_class::class_for_size(size) {
            Some(c) => {
                let bs = pool_alloc::size_class::class_block_size(c).unwrap();
                assert!(bs >= size, "class {c} ({bs} B) too small for {size}");
                if c > 0 {
                    let prev = pool_alloc::size_class::class_block_size(c - 1).unwrap();
                    assert!(prev < size, "class {c} not the smallest for {size}");
                }
            }
            None => assert!(size > pool_alloc::POOLED_MAX),
        }
    }
}

/// What `apply_env_reporting` must make of every variable set to a value
/// that parses as `parsed` (`None`: not a number), restated from the
/// documented ranges (README, "Configuration") with the builder methods.
fn expected_config(parsed: Option<u64>) -> pool_alloc::Config {
    let mut c = pool_alloc::Config::new();
    let Some(n) = parsed else { return c };
    let mb = |n: u64| (n as usize) << 20;
    let in_range = |lo: u64, hi: u64| (lo..=hi).contains(&n);
    if in_range(0, 86_400_000) {
        c = c.max_idle_ms(n);
    }
    if in_range(0, 1 << 20) {
        c = c.retain_bytes(mb(n));
    }
    if in_range(0, 10_000) {
        c = c.retain_pct(n as u16);
    }
    if in_range(0, 1 << 30) {
        c = c.limit_bytes(mb(n)).pool_budget_bytes(mb(n));
    }
    if in_range(0, 1) {
        c = c.hard_limit(n == 1).hardened(n == 1).zero_on_free(n == 1);
    }
    if in_range(1, 100) {
        c = c.soft_limit_pct(n as u8).threshold_pct(n as u8);
    }
    if in_range(0, pool_alloc::config::LARGE_CACHE_SLOTS as u64) {
        c = c.large_cache_entries(n as usize);
    }
    if in_range(0, 65_536) {
        c = c.large_cache_bytes(mb(n));
    }
    if in_range(0, 64) {
        c = c.segment_cache(n as usize);
    }
    if in_range(0, 256) {
        c = c.trim_pages(n as usize);
    }
    if in_range(0, 1 << 40) {
        c = c.profile_interval(n);
    }
    if in_range(0, 2) {
        c = c.huge_pages(n == 1).huge_page_runs(n >= 1);
    }
    c
}

/// Target `config`: any bytes as environment values never panic, leave a
/// configuration within bounds, and produce warnings that are one line of
/// printable text.
pub fn config(data: &[u8]) {
    let leaked: &'static [u8] = Box::leak(data.to_vec().into_boxed_slice());
    let mut lines = 0;
    let cfg = pool_alloc::config::apply_env_reporting(
        pool_alloc::Config::new(),
        |_| Some(leaked),
        |parts| {
            let msg: Vec<u8> = parts.concat();
            assert!(msg.ends_with(b"\n"), "a warning is one whole line");
            assert!(
                msg[..msg.len() - 1]
                    .iter()
                    .all(|&b| b.is_ascii_graphic() || b == b' '),
                "a warning is printable text: {msg:?}"
            );
            lines += 1;
        },
    );
    let parsed = pool_alloc::config::parse_u64(leaked);
    let vars = pool_alloc::config::ENV_VARS.len();
    assert!(lines <= vars, "at most one warning per variable");
    if parsed == Some(1) {
        // 1 is in range for every numeric variable; the two that take
        // words or a list (`POOL_ALLOC_DECOMMIT`, `POOL_ALLOC_PRESSURE_PCT`)
        // reject it, and `POOL_ALLOC_HARDENED=1` in a build without the
        // `hardened` feature gets a note.
        let expected = 2 + usize::from(!pool_alloc::config::HARDENED_BUILT);
        assert_eq!(lines, expected, "1 is accepted by every numeric variable");
    }
    // Within bounds, and nothing else: the same bytes went to every
    // variable, so each numeric one took the number where it is in the
    // variable's range and kept its default where not (a word or a list
    // is never a number, and a number never a word or a list).
    let words = matches!(leaked.trim_ascii(), b"free" | b"dontneed") || leaked.contains(&b',');
    if !words {
        assert_eq!(cfg, expected_config(parsed), "bytes {leaked:?}");
    }
    // SAFETY: reclaim the leaked copy (no reference to it survives).
    drop(unsafe { Box::from_raw(leaked as *const [u8] as *mut [u8]) });
}
