//! The workloads of BENCH.md, written once and generic over `GlobalAlloc`.
//!
//! Each workload takes `a: &'static A` and calls only `a`; the one-process
//! mode passes each peer in turn, the installed mode passes
//! [`crate::peers::Installed`]. Setup (filling the working set) and teardown
//! (freeing it) are outside the timed region.

use std::alloc::{handle_alloc_error, GlobalAlloc, Layout};
use std::collections::HashMap;
use std::hint::{black_box, spin_loop};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::rng::Rng;
use crate::sys;

/// Alignment of every block the workloads request (a typical `Box<struct>`).
pub const ALIGN: usize = 8;
const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

/// Workload knobs; the driver passes them explicitly to every child process.
#[derive(Clone, Debug)]
pub struct Params {
    /// Operations (or threads, for `churn`) per run.
    pub ops: u64,
    /// Working-set size (live blocks) per thread.
    pub ws: usize,
    /// Threads for `threads` (also given as `threads-N`).
    pub threads: usize,
    /// PRNG seed; the same for every peer.
    pub seed: u64,
    /// Bytes to allocate in `burst`, in MiB.
    pub total_mib: usize,
    /// Seconds after the free in `burst` at which RSS is read.
    pub delays: Vec<f64>,
    /// Whether process-wide RSS means anything (installed mode only).
    pub measure_rss: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            ops: 100_000,
            ws: 10_000,
            threads: 2,
            seed: 42,
            total_mib: 1024,
            delays: vec![0.0, 1.0, 10.0, 20.0],
            measure_rss: false,
        }
    }
}

/// Named results of one run, e.g. `("ops_per_s", 1.2e7)`.
pub type Metrics = Vec<(String, f64)>;

/// The workload names, in report order.
pub const WORKLOADS: [&str; 13] = [
    "pooled",
    "pooled-limit",
    "small",
    "mixed",
    "xthread",
    "threads-2",
    "threads-4",
    "threads-8",
    "churn",
    "burst",
    "latency-small",
    "latency-pooled",
    "footprint",
];

/// Workloads that need the allocator installed (std collections, thread
/// exit, process-wide RSS): they are skipped in one-process mode.
pub fn needs_installed(workload: &str) -> bool {
    matches!(
        workload,
        "mixed" | "churn" | "burst" | "footprint" | "sampling-ab-mixed"
    ) || workload.starts_with("real-")
}

/// Runs one workload once against `a`.
pub fn run<A: GlobalAlloc + Sync>(
    a: &'static A,
    workload: &str,
    p: &Params,
) -> Result<Metrics, String> {
    match workload {
        "small" => Ok(small(a, p)),
        "pooled" | "footprint" => Ok(pooled(a, p)),
        "pooled-limit" => Ok(pooled_limit(a, p)),
        "xthread" => Ok(xthread(a, p)),
        "threads" => Ok(threads(a, p, p.threads)),
        w if w.starts_with("threads-") => {
            let n = w["threads-".len()..]
                .parse()
                .map_err(|_| format!("bad thread count in {w}"))?;
            Ok(threads(a, p, n))
        }
        "churn" => Ok(churn(a, p)),
        "snapshot" => Ok(snapshot_latency(a, p)),
        w if w.starts_with("mtmixed-") => {
            let kib: usize = w["mtmixed-".len()..]
                .parse()
                .map_err(|_| format!("bad cap in {w}"))?;
            Ok(mtmixed(a, p, kib * KIB))
        }
        "burst" => Ok(burst(a, p)),
        "latency-small" => Ok(latency(a, p, Band::Small)),
        "latency-pooled" => Ok(latency(a, p, Band::Pooled)),
        "sampling-ab-small" => Ok(sampling_ab(a, p, Band::Small)),
        "sampling-ab-pooled" => Ok(sampling_ab(a, p, Band::Pooled)),
        // Installed only, like `mixed`.
        "sampling-ab-mixed" => Ok(sampling_ab_mixed(p)),
        // NB: `mixed` uses std collections, so it always measures the
        // installed allocator whatever `a` is; the driver runs it installed only.
        "mixed" => Ok(mixed(p)),
        // Realistic programs (`realistic.rs`): installed only, like `mixed`.
        w if w.starts_with("real-") => {
            crate::realistic::run(w, p).ok_or(format!("unknown workload {w}"))
        }
        w => Err(format!("unknown workload {w}")),
    }
}

#[inline(always)]
fn layout(size: usize) -> Layout {
    debug_assert!(
        size > 0 && size <= isize::MAX as usize / 2,
        "bad size {size}"
    );
    // SAFETY: ALIGN is a non-zero power of two and every size the workloads
    // use is at most a few MiB, far from overflowing isize when rounded up.
    unsafe { Layout::from_size_align_unchecked(size, ALIGN) }
}

/// Allocates `size` bytes from `a`, aborting on failure.
///
/// # Safety
///
/// * `size` must be non-zero.
#[inline(always)]
unsafe fn alloc_or_die<A: GlobalAlloc>(a: &A, size: usize) -> *mut u8 {
    let l = layout(size);
    // SAFETY: `l` has non-zero size (caller's contract).
    let p = unsafe { a.alloc(l) };
    if p.is_null() {
        handle_alloc_error(l)
    }
    p
}

/// How much of a new block a workload writes.
#[derive(Clone, Copy, Debug)]
enum Touch {
    /// One byte: the block is used, its pages mostly are not.
    First,
    /// One byte in every page the block spans, as a real user of a big
    /// buffer would: this makes page faults and reuse of warm pages count.
    Pages,
}

/// Writes into a fresh block as `how` says.
///
/// # Safety
///
/// * `p` must be valid for writes of `size > 0` bytes.
#[inline(always)]
unsafe fn touch(p: *mut u8, size: usize, how: Touch, page: usize) {
    match how {
        // SAFETY: `size > 0`, so `p` is writable.
        Touch::First => unsafe { p.write_volatile(size as u8) },
        Touch::Pages => {
            let mut off = 0;
            while off < size {
                // SAFETY: `off < size`.
                unsafe { p.add(off).write_volatile(1) };
                off += page;
            }
            // SAFETY: the last byte, so that the block's last page is touched
            // even when the block does not start on a page boundary.
            unsafe { p.add(size - 1).write_volatile(1) };
        }
    }
}

/// Size band of a churn workload.
#[derive(Clone, Copy, Debug)]
enum Band {
    /// 8–512 B, working set 10 000, first byte touched.
    Small,
    /// 4 KiB–1 MiB, working set 1 000, every page touched.
    Pooled,
    /// A service-like mix up to a cap (bytes), log-uniform within each
    /// part: 90 % 8–512 B, 9 % 512 B–256 KiB, 1 % 256 KiB–cap; every page
    /// touched.
    Mixed(usize),
}

impl Band {
    fn sizes(self) -> (usize, usize, Touch) {
        match self {
            Band::Small => (8, 512, Touch::First),
            Band::Pooled => (4 * KIB, MIB, Touch::Pages),
            Band::Mixed(cap) => (8, cap, Touch::Pages),
        }
    }
}

/// A size log-uniform in `lo..=hi` (the same arithmetic for every peer).
fn log_uniform(rng: &mut Rng, lo: usize, hi: usize) -> usize {
    let u = (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
    let x = (lo as f64) * ((hi as f64) / (lo as f64)).powf(u);
    (x as usize).clamp(lo, hi)
}

/// A size of [`Band::Mixed`] with the given cap. Out of line, so that the
/// small and pooled loops stay the code they were before it existed.
#[cold]
#[inline(never)]
fn mixed_band_size(rng: &mut Rng, cap: usize) -> usize {
    let r = rng.below(100);
    if r < 90 {
        log_uniform(rng, 8, 512)
    } else if r < 99 {
        log_uniform(rng, 512, 256 * KIB)
    } else {
        log_uniform(rng, 256 * KIB, cap.max(256 * KIB))
    }
}

/// A working set of live blocks; each step frees a random one and
/// allocates a replacement of random size. Counts live requested bytes.
///
/// `MIXED` (a constant, so the small and pooled loops compile to exactly
/// the code they had before the mixed band existed) draws sizes from
/// [`Band::Mixed`] up to `max` instead of uniformly in `min..=max`.
struct Churn<'a, A: GlobalAlloc, const MIXED: bool = false> {
    a: &'a A,
    rng: Rng,
    slots: Vec<(*mut u8, usize)>,
    min: usize,
    max: usize,
    how: Touch,
    page: usize,
    live: usize,
    peak_live: usize,
}

impl<'a, A: GlobalAlloc, const MIXED: bool> Churn<'a, A, MIXED> {
    fn new(a: &'a A, seed: u64, ws: usize, band: Band) -> Self {
        let (min, max, how) = band.sizes();
        debug_assert_eq!(MIXED, matches!(band, Band::Mixed(_)));
        let mut c = Churn {
            a,
            rng: Rng::new(seed),
            slots: Vec::with_capacity(ws),
            min,
            max,
            how,
            page: sys::page_size(),
            live: 0,
            peak_live: 0,
        };
        for _ in 0..ws.max(1) {
            let size = c.draw();
            // SAFETY: min > 0.
            let p = unsafe { alloc_or_die(a, size) };
            // SAFETY: `p` is a fresh block of `size` bytes.
            unsafe { touch(p, size, how, c.page) };
            c.slots.push((p, size));
            c.live += size;
        }
        c.peak_live = c.live;
        c
    }

    /// Untimed steps (2 × the working set, so ~86 % of the blocks have been
    /// replaced) to measure the steady state, not the first turnover.
    fn warm_up(&mut self) {
        for _ in 0..2 * self.slots.len() {
            self.step();
        }
    }

    /// The size of the next block.
    #[inline(always)]
    fn draw(&mut self) -> usize {
        if MIXED {
            mixed_band_size(&mut self.rng, self.max)
        } else {
            self.rng.range(self.min, self.max)
        }
    }

    /// Frees one random block and allocates its replacement.
    #[inline(always)]
    fn step(&mut self) {
        let i = self.rng.below(self.slots.len() as u64) as usize;
        let size = self.draw();
        let (old, old_size) = self.slots[i];
        // SAFETY: `old` was allocated by `self.a` with `layout(old_size)`.
        unsafe { self.a.dealloc(old, layout(old_size)) };
        // SAFETY: size >= min > 0.
        let p = unsafe { alloc_or_die(self.a, size) };
        // SAFETY: fresh block of `size` bytes.
        unsafe { touch(p, size, self.how, self.page) };
        self.slots[i] = (p, size);
        self.live = self.live - old_size + size;
        self.peak_live = self.peak_live.max(self.live);
    }

    /// Like [`Churn::step`], recording the nanoseconds spent in the free and
    /// the allocation (not the touch) into `h`.
    #[inline(always)]
    fn step_timed(&mut self, h: &mut Histogram<u64>) {
        let i = self.rng.below(self.slots.len() as u64) as usize;
        let size = self.draw();
        let (old, old_size) = self.slots[i];
        let t = Instant::now();
        // SAFETY: as in `step`.
        unsafe { self.a.dealloc(old, layout(old_size)) };
        // SAFETY: size > 0.
        let p = unsafe { alloc_or_die(self.a, size) };
        h.saturating_record(t.elapsed().as_nanos() as u64);
        // SAFETY: fresh block of `size` bytes.
        unsafe { touch(p, size, self.how, self.page) };
        self.slots[i] = (p, size);
    }
}

impl<A: GlobalAlloc, const MIXED: bool> Drop for Churn<'_, A, MIXED> {
    fn drop(&mut self) {
        for &(p, size) in &self.slots {
            // SAFETY: every slot holds a live block allocated with `layout(size)`.
            unsafe { self.a.dealloc(p, layout(size)) };
        }
    }
}

fn per_s(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

fn m(name: &str, v: f64) -> (String, f64) {
    (name.to_string(), v)
}

/// `small`: one thread, 8–512 B, working set 10 000, replace one per op
/// (after an untimed warm-up, as in every churn workload).
pub fn small<A: GlobalAlloc>(a: &A, p: &Params) -> Metrics {
    let mut c = Churn::<A>::new(a, p.seed, p.ws, Band::Small);
    c.warm_up();
    let t = Instant::now();
    for _ in 0..p.ops {
        c.step();
    }
    vec![m("ops_per_s", per_s(p.ops, t.elapsed()))]
}

/// `sampling-ab-small` / `sampling-ab-pooled`: the leak investigator's
/// sampling cost in one run, `small` or `pooled` churn alternating between
/// sampling at its current interval (A) and sampling off (B) in slices of
/// `ops / 200` timed steps, 100 pairs ordered ABBA so a drift cancels
/// (one slice varies by about 10 % on this machine: many pairs). Each
/// slice starts with a working set's worth of untimed steps, so the frees
/// of blocks sampled in an A slice are not timed in the next B slice.
/// Reports `sampling_ratio`, the median over pairs of A's rate over B's
/// (1.000 = free), and `ops_per_s`, A's median rate. Only ours samples:
/// for any other allocator both halves are the same.
fn sampling_ab<A: GlobalAlloc>(a: &A, p: &Params, band: Band) -> Metrics {
    let mut c = Churn::<A>::new(a, p.seed, p.ws, band);
    c.warm_up();
    // No restart of its random numbers: on small churn a slice that
    // redoes the last one's operations ran 20 % slower whatever its order
    // (not understood); its slices vary little anyway.
    sampling_slices(p, |reseed| {
        if reseed.is_none() {
            c.step();
        }
    })
}

/// `sampling-ab-mixed`: as `sampling_ab`, on the `mixed` workload.
fn sampling_ab_mixed(p: &Params) -> Metrics {
    let mut rng = Rng::new(p.seed);
    let mut objs: Vec<Obj> = (0..p.ws.max(1)).map(|_| Obj::Empty).collect();
    let mut map = HashMap::new();
    for _ in 0..p.ws {
        mixed_step(&mut rng, &mut objs, &mut map);
    }
    let out = sampling_slices(p, |reseed| match reseed {
        Some(seed) => rng = Rng::new(seed),
        None => mixed_step(&mut rng, &mut objs, &mut map),
    });
    black_box(&objs);
    out
}

/// The slices of `sampling_ab`, each of `step(None)`s. `step(Some(seed))`
/// may restart the workload's random numbers, so both slices of a pair
/// draw the same operations and compare the same work: on `mixed`, whose
/// few multi-MiB operations make one slice's time vary by 2x, that is
/// what makes 100 pairs enough.
fn sampling_slices(p: &Params, mut step: impl FnMut(Option<u64>)) -> Metrics {
    const PAIRS: u64 = 100;
    let on = profile_interval();
    let steps = (p.ops / (2 * PAIRS)).max(1);
    let mut slice = |sampling: bool, seed: u64| {
        set_profile_interval(if sampling { on } else { 0 });
        for _ in 0..p.ws {
            step(None);
        }
        step(Some(seed));
        let t = Instant::now();
        for _ in 0..steps {
            step(None);
        }
        per_s(steps, t.elapsed())
    };
    let (mut ratios, mut rates) = (Vec::new(), Vec::new());
    for i in 0..PAIRS {
        let seed = p.seed ^ (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let (x, y) = if i % 2 == 0 {
            let x = slice(true, seed);
            (x, slice(false, seed))
        } else {
            let y = slice(false, seed);
            (slice(true, seed), y)
        };
        ratios.push(x / y);
        rates.push(x);
    }
    set_profile_interval(on);
    vec![
        m("ops_per_s", crate::report::median(&rates)),
        // The geometric mean: a pair's second slice may run faster (it
        // redoes the first one's operations on warm memory), and ABBA
        // order makes that cancel exactly in the mean of the logarithms,
        // not in the median.
        m(
            "sampling_ratio",
            (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp(),
        ),
    ]
}

/// The leak investigator's interval when ours is installed with it (0
/// otherwise: nothing to switch).
fn profile_interval() -> u64 {
    #[cfg(feature = "ours-stats")]
    return pool_alloc::profile::interval();
    #[cfg(not(feature = "ours-stats"))]
    0
}

fn set_profile_interval(bytes: u64) {
    #[cfg(feature = "ours-stats")]
    if bytes == 0 {
        pool_alloc::profile::stop();
    } else {
        pool_alloc::profile::start(bytes);
    }
    #[cfg(not(feature = "ours-stats"))]
    let _ = bytes;
}

/// `pooled`: one thread, 4 KiB–1 MiB, working set 1 000, every page of each
/// new block touched. In installed mode also reports the footprint: peak RSS
/// over peak live requested bytes.
pub fn pooled<A: GlobalAlloc>(a: &A, p: &Params) -> Metrics {
    let mut c = Churn::<A>::new(a, p.seed, p.ws, Band::Pooled);
    c.warm_up();
    let t = Instant::now();
    for _ in 0..p.ops {
        c.step();
    }
    let mut out = vec![m("ops_per_s", per_s(p.ops, t.elapsed()))];
    if p.measure_rss {
        let peak_rss = sys::peak_rss_bytes();
        out.push(m("peak_rss_mib", sys::mib(peak_rss)));
        out.push(m("peak_live_mib", sys::mib(c.peak_live as u64)));
        out.push(m("footprint", peak_rss as f64 / c.peak_live.max(1) as f64));
    }
    out
}

/// `pooled-limit`: the `pooled` loop with the allocator taken out, the
/// ceiling the `pooled` row is read against. Each slot holds a 1 MiB block
/// allocated and touched once; each op draws a slot and a size exactly as
/// `pooled` does and writes every page of that size in place (no free, no
/// allocation, no page fault).
pub fn pooled_limit<A: GlobalAlloc>(a: &A, p: &Params) -> Metrics {
    let page = sys::page_size();
    let (min, max, how) = Band::Pooled.sizes();
    let slots: Vec<*mut u8> = (0..p.ws.max(1))
        .map(|_| {
            // SAFETY: a non-zero size; the block is then fully ours.
            let q = unsafe { alloc_or_die(a, max) };
            // SAFETY: `q` is a fresh block of `max` bytes.
            unsafe { touch(q, max, how, page) };
            q
        })
        .collect();
    let mut rng = Rng::new(p.seed);
    limit_steps(&mut rng, &slots, min, max, page, 2 * slots.len() as u64);
    let t = Instant::now();
    limit_steps(&mut rng, &slots, min, max, page, p.ops);
    let out = vec![m("ops_per_s", per_s(p.ops, t.elapsed()))];
    for q in slots {
        // SAFETY: allocated above with `layout(max)`.
        unsafe { a.dealloc(q, layout(max)) };
    }
    out
}

/// The `pooled-limit` loop (kept out of line, so it is compiled the same
/// way whatever the allocator).
#[inline(never)]
fn limit_steps(rng: &mut Rng, slots: &[*mut u8], min: usize, max: usize, page: usize, n: u64) {
    for _ in 0..n {
        let i = rng.below(slots.len() as u64) as usize;
        let size = rng.range(min, max);
        // SAFETY: every slot is a block of `max >= size` bytes.
        unsafe { touch(slots[i], size, Touch::Pages, page) };
    }
}

#[repr(align(128))]
struct Padded(AtomicUsize);

/// A bounded single-producer single-consumer queue of words that allocates
/// only when built, so that handing blocks over costs the same for all.
pub struct Ring {
    slots: Box<[AtomicUsize]>,
    mask: usize,
    head: Padded,
    tail: Padded,
}

#[inline(always)]
fn backoff(spins: &mut u32) {
    if *spins < 64 {
        *spins += 1;
        spin_loop();
    } else {
        thread::yield_now();
    }
}

impl Ring {
    /// A queue of `cap` (rounded up to a power of two) words.
    pub fn new(cap: usize) -> Self {
        let cap = cap.next_power_of_two();
        Ring {
            slots: (0..cap).map(|_| AtomicUsize::new(0)).collect(),
            mask: cap - 1,
            head: Padded(AtomicUsize::new(0)),
            tail: Padded(AtomicUsize::new(0)),
        }
    }

    /// Producer side: waits while full.
    #[inline]
    pub fn push(&self, v: usize) {
        let t = self.tail.0.load(Ordering::Relaxed);
        let mut spins = 0;
        while t - self.head.0.load(Ordering::Acquire) > self.mask {
            backoff(&mut spins);
        }
        self.slots[t & self.mask].store(v, Ordering::Relaxed);
        self.tail.0.store(t + 1, Ordering::Release);
    }

    /// Consumer side: waits while empty.
    #[inline]
    pub fn pop(&self) -> usize {
        let h = self.head.0.load(Ordering::Relaxed);
        let mut spins = 0;
        while self.tail.0.load(Ordering::Acquire) == h {
            backoff(&mut spins);
        }
        let v = self.slots[h & self.mask].load(Ordering::Relaxed);
        self.head.0.store(h + 1, Ordering::Release);
        v
    }
}

/// Producer allocates `n` blocks of `min..=max` bytes and writes each size
/// into its first word; a consumer thread frees them (cross-thread free).
/// Returns the time from both threads ready to the last free.
pub fn xthread_transfer<A: GlobalAlloc + Sync>(
    a: &A,
    n: u64,
    min: usize,
    max: usize,
    seed: u64,
) -> Duration {
    assert!(
        min >= std::mem::size_of::<usize>(),
        "blocks carry their size"
    );
    let ring = Ring::new(1024);
    let ready = Barrier::new(2);
    thread::scope(|s| {
        let consumer = s.spawn(|| {
            ready.wait();
            for _ in 0..n {
                let p = ring.pop() as *mut u8;
                // SAFETY: the producer wrote the block's size into its first
                // (aligned) word before handing it over.
                let size = unsafe { (p as *const usize).read() };
                // SAFETY: `p` was allocated by `a` with `layout(size)`.
                unsafe { a.dealloc(p, layout(size)) };
            }
            Instant::now()
        });
        let mut rng = Rng::new(seed);
        ready.wait();
        let t = Instant::now();
        for _ in 0..n {
            let size = rng.range(min, max);
            // SAFETY: size >= min > 0.
            let p = unsafe { alloc_or_die(a, size) };
            // SAFETY: the block holds at least one aligned word.
            unsafe { (p as *mut usize).write(size) };
            ring.push(p as usize);
        }
        // NB: an explicit join (pthread_join) also waits for the consumer's
        // thread-local destructors, where allocators free their thread
        // caches; the scope alone would not, and a crash there would then be
        // blamed on whichever peer runs next.
        let end = consumer.join().expect("consumer panicked");
        end - t
    })
}

/// `xthread`: producer → consumer, 64 B–64 KiB.
pub fn xthread<A: GlobalAlloc + Sync>(a: &A, p: &Params) -> Metrics {
    let d = xthread_transfer(a, p.ops, 64, 64 * KIB, p.seed);
    vec![m("ops_per_s", per_s(p.ops, d))]
}

/// `threads-N`: N threads each churning its own small working set.
pub fn threads<A: GlobalAlloc + Sync>(a: &A, p: &Params, n: usize) -> Metrics {
    threads_band::<A, false>(a, p, n, Band::Small)
}

/// `mtmixed-CAP`: `p.threads` threads each churning its own working set of
/// `p.ws` blocks of `Band::Mixed` sizes up to CAP KiB, every page
/// touched (pooled and large blocks under several threads).
pub fn mtmixed<A: GlobalAlloc + Sync>(a: &A, p: &Params, cap: usize) -> Metrics {
    let mut out = threads_band::<A, true>(a, p, p.threads, Band::Mixed(cap));
    if p.measure_rss {
        out.push(m("rss_after_mib", sys::mib(sys::rss_bytes())));
        out.push(m("peak_rss_mib", sys::mib(sys::peak_rss_bytes())));
    }
    out
}

fn threads_band<A: GlobalAlloc + Sync, const MIXED: bool>(
    a: &A,
    p: &Params,
    n: usize,
    band: Band,
) -> Metrics {
    let n = n.max(1);
    let start = Barrier::new(n);
    // Each thread's live and peak live bytes, published every
    // `PUBLISH_EVERY` steps for the live watch (`live_watch`).
    let published: Vec<(AtomicUsize, AtomicUsize)> = (0..n)
        .map(|_| (AtomicUsize::new(0), AtomicUsize::new(0)))
        .collect();
    let done = AtomicBool::new(false);
    // NB: each thread reads its own clock: with more threads than cores a
    // coordinating main thread may be scheduled late and see nothing of the
    // run, so the span is first start to last end.
    let spans: Vec<(Instant, Instant)> = thread::scope(|s| {
        if let Some(every) = live_watch_interval() {
            let (published, done) = (&published, &done);
            s.spawn(move || live_watch(published, done, every));
        }
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (start, slot) = (&start, &published[i]);
                s.spawn(move || {
                    let mut c = Churn::<A, MIXED>::new(a, p.seed + i as u64, p.ws, band);
                    c.warm_up();
                    start.wait();
                    let t0 = Instant::now();
                    let mut left = p.ops;
                    while left > 0 {
                        let k = left.min(PUBLISH_EVERY);
                        for _ in 0..k {
                            c.step();
                        }
                        left -= k;
                        slot.0.store(c.live, Ordering::Relaxed);
                        slot.1.store(c.peak_live, Ordering::Relaxed);
                    }
                    (t0, Instant::now())
                })
            })
            .collect();
        let spans = handles
            .into_iter()
            .map(|h| h.join().expect("thread panicked"))
            .collect();
        done.store(true, Ordering::Relaxed);
        spans
    });
    let first = spans
        .iter()
        .map(|s| s.0)
        .min()
        .expect("one thread at least");
    let last = spans
        .iter()
        .map(|s| s.1)
        .max()
        .expect("one thread at least");
    let d = last - first;
    vec![
        m("ops_per_s_per_thread", per_s(p.ops, d)),
        m("ops_per_s", per_s(p.ops * n as u64, d)),
    ]
}

/// Steps between two publications of a churning thread's live bytes.
const PUBLISH_EVERY: u64 = 1 << 14;

/// `POOL_ALLOC_BENCH_LIVE_EVERY=SECS`: the churn threads' live bytes are
/// printed to stderr every SECS seconds (for the steady-state check: how
/// much the working set's own peak grows, whatever the allocator).
fn live_watch_interval() -> Option<Duration> {
    let v = std::env::var("POOL_ALLOC_BENCH_LIVE_EVERY").ok()?;
    match v.parse::<f64>() {
        Ok(s) if s > 0.0 && s.is_finite() => Some(Duration::from_secs_f64(s)),
        _ => {
            eprintln!(
                "POOL_ALLOC_BENCH_LIVE_EVERY={v}: not a positive number of seconds; no live watch"
            );
            None
        }
    }
}

/// Print, every `every` until `done`, the seconds since the start, the
/// sum of the threads' live bytes, and the sum of their peaks so far: the
/// memory an allocator that keeps what each thread once needed must hold.
fn live_watch(published: &[(AtomicUsize, AtomicUsize)], done: &AtomicBool, every: Duration) {
    let t0 = Instant::now();
    let mut next = every;
    while !done.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_millis(50));
        if t0.elapsed() < next {
            continue;
        }
        next += every;
        let live: usize = published.iter().map(|p| p.0.load(Ordering::Relaxed)).sum();
        let peaks: usize = published.iter().map(|p| p.1.load(Ordering::Relaxed)).sum();
        eprintln!(
            "LIVE t={:.0} live_kib={} peak_sum_kib={}",
            t0.elapsed().as_secs_f64(),
            live / KIB,
            peaks / KIB
        );
    }
}

/// `snapshot`: `p.threads` threads churn small blocks on `a` while this
/// thread takes `p.ops` full snapshots of pool-alloc (refilled in place),
/// each timed into an HDR histogram. Meaningful with `--peers ours`.
pub fn snapshot_latency<A: GlobalAlloc + Sync>(a: &A, p: &Params) -> Metrics {
    let stop = AtomicBool::new(false);
    let started = Barrier::new(p.threads.max(1) + 1);
    let mut h =
        Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).expect("histogram bounds");
    thread::scope(|s| {
        for i in 0..p.threads.max(1) {
            let (stop, started) = (&stop, &started);
            s.spawn(move || {
                let mut c = Churn::<A>::new(a, p.seed + i as u64, p.ws, Band::Small);
                started.wait();
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..256 {
                        c.step();
                    }
                }
            });
        }
        started.wait();
        let mut snap = pool_alloc::snapshot();
        for _ in 0..p.ops {
            let t = Instant::now();
            pool_alloc::snapshot_into(&mut snap);
            h.saturating_record(t.elapsed().as_nanos() as u64);
            black_box(&snap);
        }
        stop.store(true, Ordering::Relaxed);
    });
    vec![
        m("p50_us", h.value_at_quantile(0.5) as f64 / 1000.0),
        m("p99_us", h.value_at_quantile(0.99) as f64 / 1000.0),
        m("max_us", h.max() as f64 / 1000.0),
    ]
}

/// `churn`: `p.ops` short-lived threads, 4 alive at a time; each allocates
/// 64 blocks of 8 B–4 KiB, frees 56 and hands 8 to the main thread, which
/// frees them after the thread has exited.
pub fn churn<A: GlobalAlloc + Sync>(a: &'static A, p: &Params) -> Metrics {
    const WAVE: u64 = 4;
    let t = Instant::now();
    let mut done = 0;
    while done < p.ops {
        let wave = WAVE.min(p.ops - done);
        let handles: Vec<_> = (0..wave)
            .map(|i| {
                let seed = p.seed + done + i;
                thread::spawn(move || {
                    let mut rng = Rng::new(seed);
                    let mut blocks = [(0usize, 0usize); 64];
                    for b in blocks.iter_mut() {
                        let size = rng.range(8, 4 * KIB);
                        // SAFETY: size >= 8.
                        let q = unsafe { alloc_or_die(a, size) };
                        // SAFETY: fresh block of `size` bytes.
                        unsafe { touch(q, size, Touch::First, 4096) };
                        *b = (q as usize, size);
                    }
                    for &(q, size) in &blocks[8..] {
                        // SAFETY: allocated above with `layout(size)`.
                        unsafe { a.dealloc(q as *mut u8, layout(size)) };
                    }
                    let mut kept = [(0usize, 0usize); 8];
                    kept.copy_from_slice(&blocks[..8]);
                    kept
                })
            })
            .collect();
        for h in handles {
            for (q, size) in h.join().expect("churn thread panicked") {
                // SAFETY: allocated by the exited thread with `layout(size)`.
                unsafe { a.dealloc(q as *mut u8, layout(size)) };
            }
        }
        done += wave;
    }
    let d = t.elapsed();
    let mut out = vec![
        m("threads_per_s", per_s(p.ops, d)),
        m("seconds", d.as_secs_f64()),
    ];
    if p.measure_rss {
        out.push(m("rss_after_mib", sys::mib(sys::rss_bytes())));
        out.push(m("peak_rss_mib", sys::mib(sys::peak_rss_bytes())));
    }
    out
}

/// Formats a delay for a metric name: `0`, `0.5`, `10`.
pub fn delay_label(d: f64) -> String {
    if d.fract() == 0.0 {
        format!("{d:.0}")
    } else {
        format!("{d}")
    }
}

/// `burst`: allocate `total_mib` in 4 KiB–1 MiB blocks touching every page,
/// free them all, then read RSS at each of `delays` seconds after the free.
pub fn burst<A: GlobalAlloc>(a: &A, p: &Params) -> Metrics {
    let page = sys::page_size();
    let total = p.total_mib * MIB;
    let mut rng = Rng::new(p.seed);
    let base = sys::rss_bytes();
    let mut blocks = Vec::with_capacity(total / (256 * KIB));
    let mut sum = 0;
    let t = Instant::now();
    while sum < total {
        let size = rng.range(4 * KIB, MIB);
        // SAFETY: size > 0.
        let q = unsafe { alloc_or_die(a, size) };
        // SAFETY: fresh block of `size` bytes.
        unsafe { touch(q, size, Touch::Pages, page) };
        blocks.push((q, size));
        sum += size;
    }
    let full = sys::rss_bytes();
    for &(q, size) in &blocks {
        // SAFETY: allocated above with `layout(size)`.
        unsafe { a.dealloc(q, layout(size)) };
    }
    let freed = Instant::now();
    let fill = freed - t;
    drop(blocks);
    let mut out = vec![
        m("rss_base_mib", sys::mib(base)),
        m("rss_full_mib", sys::mib(full)),
        m("seconds", fill.as_secs_f64()),
    ];
    for &d in &p.delays {
        let due = freed + Duration::from_secs_f64(d);
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
        out.push((
            format!("rss_t{}s_mib", delay_label(d)),
            sys::mib(sys::rss_bytes()),
        ));
    }
    out
}

/// `latency-*`: nanoseconds per free+alloc pair of `small` or `pooled`
/// (the page touches are outside the timed region), into an HDR histogram.
fn latency<A: GlobalAlloc>(a: &A, p: &Params, band: Band) -> Metrics {
    let mut h =
        Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).expect("histogram bounds");
    // What an empty timed region costs, to read the figures against.
    let mut timer =
        Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).expect("histogram bounds");
    for _ in 0..10_000 {
        let t = Instant::now();
        timer.saturating_record(black_box(t).elapsed().as_nanos() as u64);
    }
    let mut c = Churn::<A>::new(a, p.seed, p.ws, band);
    c.warm_up();
    for _ in 0..p.ops {
        c.step_timed(&mut h);
    }
    vec![
        m("p50_ns", h.value_at_quantile(0.5) as f64),
        m("p99_ns", h.value_at_quantile(0.99) as f64),
        m("p999_ns", h.value_at_quantile(0.999) as f64),
        m("max_ns", h.max() as f64),
        m("timer_p50_ns", timer.value_at_quantile(0.5) as f64),
    ]
}

/// An object of the `mixed` workload.
// NB: the payloads are never read; they are held to keep their memory live.
#[allow(dead_code)]
enum Obj {
    Empty,
    Bytes(Vec<u8>),
    Text(String),
    Boxed(Box<[u8]>),
}

fn mixed_size(rng: &mut Rng) -> usize {
    match rng.below(100) {
        0..=89 => rng.range(8, 256),
        90..=98 => rng.range(257, 64 * KIB),
        _ => rng.range(64 * KIB + 1, 4 * MIB),
    }
}

/// Builds one object of about `size` bytes the way programs do.
fn mixed_step(rng: &mut Rng, objs: &mut [Obj], map: &mut HashMap<u64, Vec<u8>>) {
    const WORDS: [&str; 8] = [
        "alloc", "pool", "slab", "page", "heap", "free", "thread", "arena",
    ];
    let i = rng.below(objs.len() as u64) as usize;
    let size = mixed_size(rng);
    objs[i] = match rng.below(10) {
        // Vec growth by push (amortised doubling through realloc).
        0..=3 => {
            let mut v = Vec::new();
            if size <= 4 * KIB {
                for k in 0..size {
                    v.push(k as u8);
                }
            } else {
                let chunk = [7u8; 512];
                while v.len() < size {
                    v.extend_from_slice(&chunk[..chunk.len().min(size - v.len())]);
                }
            }
            Obj::Bytes(v)
        }
        // String building.
        4..=6 => {
            let mut s = String::new();
            while s.len() < size {
                s.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
                s.push(' ');
            }
            Obj::Text(s)
        }
        // Exact-size zeroed buffers.
        7 | 8 => {
            let mut b = vec![0u8; size].into_boxed_slice();
            b[0] = 1;
            Obj::Boxed(b)
        }
        // HashMap churn: insert (replacing) and remove by random keys.
        _ => {
            map.insert(rng.below(4096), vec![1u8; size.min(4 * KIB)]);
            map.remove(&rng.below(4096));
            Obj::Empty
        }
    };
}

/// `mixed`: 90 % ≤ 256 B, 9 % ≤ 64 KiB, 1 % ≤ 4 MiB; Vec growth by push,
/// String building, exact buffers and HashMap churn, working set `p.ws`
/// objects. Uses std collections, so it measures the installed allocator.
pub fn mixed(p: &Params) -> Metrics {
    let mut rng = Rng::new(p.seed);
    let mut objs: Vec<Obj> = (0..p.ws.max(1)).map(|_| Obj::Empty).collect();
    let mut map = HashMap::new();
    for _ in 0..p.ws {
        mixed_step(&mut rng, &mut objs, &mut map);
    }
    let t = Instant::now();
    for _ in 0..p.ops {
        mixed_step(&mut rng, &mut objs, &mut map);
    }
    let d = t.elapsed();
    black_box(&objs);
    vec![m("ops_per_s", per_s(p.ops, d))]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;

    fn tiny() -> Params {
        Params {
            ops: 2_000,
            ws: 100,
            total_mib: 4,
            delays: vec![0.0],
            measure_rss: true,
            ..Params::default()
        }
    }

    #[test]
    fn every_workload_runs_and_reports() {
        for w in WORKLOADS {
            let metrics = run(&System, w, &tiny()).unwrap();
            assert!(!metrics.is_empty(), "{w} reported nothing");
            for (k, v) in &metrics {
                assert!(v.is_finite() && *v >= 0.0, "{w}: {k} = {v}");
            }
        }
    }

    #[test]
    fn ring_passes_every_word_in_order() {
        let ring = Ring::new(4);
        thread::scope(|s| {
            s.spawn(|| {
                for i in 1..=10_000 {
                    ring.push(i);
                }
            });
            for i in 1..=10_000 {
                assert_eq!(ring.pop(), i);
            }
        });
    }
}
