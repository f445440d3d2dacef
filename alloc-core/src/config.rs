//! Configuration: a `const` builder for code, environment variables for
//! operators.
//!
//! The allocator's state is process-wide, so the configuration of the first
//! `PoolAlloc` that allocates is the one in force; environment variables,
//! read once at that moment, override it. A malformed, negative,
//! overflowing, empty or impossible value is reported once on stderr (one
//! line) and the builder's value is kept: configuration never crashes the
//! process.
//!
//! | variable | meaning | default | range |
//! | --- | --- | --- | --- |
//! | `POOL_ALLOC_MAX_IDLE_MS` | free memory idle this long goes back to the OS | 1000 | 0..=86400000 |
//! | `POOL_ALLOC_RETAIN_MB` | idle memory always allowed to stay committed, besides `RETAIN_PCT` of the memory in use | 16 | 0..=1048576 |
//! | `POOL_ALLOC_RETAIN_PCT` | idle memory allowed to stay committed, in % of the memory in use | 200 | 0..=10000 |
//! | `POOL_ALLOC_DECOMMIT` | how memory goes back: `dontneed` (RSS drops at once) or `free` (`MADV_FREE`: the kernel takes it when it needs it) | dontneed | |
//! | `POOL_ALLOC_LIMIT_MB` | memory limit (0: the cgroup's `memory.max`/`memory.high`, else physical memory) | 0 | 0..=1073741824 |
//! | `POOL_ALLOC_HARD_LIMIT` | `1`: an allocation past the limit returns null (after one emergency reclaim) | 0 | 0..=1 |
//! | `POOL_ALLOC_SOFT_LIMIT_PCT` | above this share of the limit, every slow path reclaims all idle memory | 90 | 1..=100 |
//! | `POOL_ALLOC_POOL_BUDGET_MB` | pool budget (0: the memory limit) | 0 | 0..=1073741824 |
//! | `POOL_ALLOC_THRESHOLD_PCT` | utilisation (committed pooled memory / budget) past which idle memory is reclaimed at once | 80 | 1..=100 |
//! | `POOL_ALLOC_PRESSURE_PCT` | the medium, high and critical pressure levels, in % of the limit, increasing (`80,90,95`) | 80,90,95 | 1..=100 each |
//! | `POOL_ALLOC_LARGE_CACHE_ENTRIES` | freed large mappings kept for reuse | 16 | 0..=32 |
//! | `POOL_ALLOC_LARGE_CACHE_MB` | cap on the bytes those mappings hold (one mapping at most a quarter) | 64 | 0..=65536 |
//! | `POOL_ALLOC_SEGMENT_CACHE` | empty 4 MiB segments kept mapped (decommitted) | 16 | 0..=64 |
//! | `POOL_ALLOC_HARDENED` | hardened mode (built with the `hardened` feature): encoded free-list links; invalid, double and interior frees from C abort with a message | 0 | 0..=1 |
//! | `POOL_ALLOC_ZERO_ON_FREE` | in hardened mode, C frees clear the block | 0 | 0..=1 |
//! | `POOL_ALLOC_PROFILE_INTERVAL` | the leak investigator's mean sampling interval, bytes allocated (0: off) | 1048576 | 0..=2^40 |
//! | `POOL_ALLOC_TRIM_PAGES` | trim reused pooled blocks' tails (classes below 32 KiB) of at least this many pages (0: off) | 0 | 0..=256 |
//! | `POOL_ALLOC_HUGE_PAGES` | `1`: ask for transparent huge pages on the 4 MiB segments (fewer page faults and TLB misses; resident memory in 2 MiB steps); `2`: only on a heap's page segments past its eighth (big pooled working sets) | 0 | 0..=2 |

use crate::os;
use crate::sync::{AtomicU8, Backoff, Ordering};
use core::cell::UnsafeCell;

/// Most freed large mappings the cache can keep (its slots; the
/// `large_cache_entries` setting is clamped to it).
pub const LARGE_CACHE_SLOTS: usize = 32;

/// Allocator configuration, built in `const` context:
///
/// ```
/// use alloc_core::{Config, PoolAlloc};
/// static GLOBAL: PoolAlloc = PoolAlloc::with_config(
///     Config::new().max_idle_ms(2000).large_cache_entries(4).segment_cache(8),
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub(crate) max_idle_ms: u64,
    pub(crate) retain_bytes: usize,
    pub(crate) retain_pct: u16,
    pub(crate) decommit_free: bool,
    pub(crate) limit_bytes: usize,
    pub(crate) hard_limit: bool,
    pub(crate) soft_limit_pct: u8,
    pub(crate) pool_budget_bytes: usize,
    pub(crate) threshold_pct: u8,
    pub(crate) pressure_pct: [u8; 3],
    pub(crate) large_cache_entries: usize,
    pub(crate) large_cache_bytes: usize,
    pub(crate) segment_cache: usize,
    pub(crate) trim_pages: usize,
    pub(crate) hardened: bool,
    pub(crate) zero_on_free: bool,
    pub(crate) profile_interval: u64,
    pub(crate) huge_pages: bool,
    pub(crate) huge_page_runs: bool,
}

impl Config {
    /// The defaults.
    pub const fn new() -> Self {
        Config {
            max_idle_ms: 1000,
            retain_bytes: 16 << 20,
            retain_pct: 200,
            decommit_free: false,
            limit_bytes: 0,
            hard_limit: false,
            soft_limit_pct: 90,
            pool_budget_bytes: 0,
            threshold_pct: 80,
            pressure_pct: [80, 90, 95],
            large_cache_entries: 16,
            large_cache_bytes: 64 << 20,
            segment_cache: 16,
            trim_pages: 0,
            hardened: false,
            zero_on_free: false,
            profile_interval: DEFAULT_PROFILE_INTERVAL,
            huge_pages: false,
            huge_page_runs: false,
        }
    }

    /// Free memory idle for `ms` milliseconds goes back to the OS (on the
    /// next slow path of its heap, or from the background reclaimer).
    /// Default 1000: memory a workload reuses within a second stays; memory
    /// that really sits idle goes back soon.
    pub const fn max_idle_ms(mut self, ms: u64) -> Self {
        self.max_idle_ms = ms;
        self
    }

    /// Idle (free, committed) memory always allowed to stay for reuse, on
    /// top of `retain_pct` of the memory in use. Past that, idle memory
    /// goes back at once, oldest first. Default 16 MiB.
    pub const fn retain_bytes(mut self, bytes: usize) -> Self {
        self.retain_bytes = bytes;
        self
    }

    /// Idle memory allowed to stay committed for reuse, in percent of the
    /// memory in use (on top of `retain_bytes`). Default 200: fragmented
    /// churn (free slices of odd sizes between slabs) needs room, or it
    /// gives memory back and faults it in again (see ARCHITECTURE.md).
    pub const fn retain_pct(mut self, pct: u16) -> Self {
        self.retain_pct = if pct > 10_000 { 10_000 } else { pct };
        self
    }

    /// Give memory back with `MADV_FREE` (the kernel reclaims the pages
    /// lazily, when it needs them; resident memory does not drop at once)
    /// instead of `MADV_DONTNEED` (the default).
    pub const fn decommit_lazily(mut self, on: bool) -> Self {
        self.decommit_free = on;
        self
    }

    /// The memory limit in bytes; 0 (the default) takes the cgroup's
    /// `memory.max` (or `memory.high`), else physical memory.
    pub const fn limit_bytes(mut self, bytes: usize) -> Self {
        self.limit_bytes = bytes;
        self
    }

    /// Make the limit hard: an allocation that would take committed memory
    /// past it returns null (after one emergency reclaim), so
    /// `Vec::try_reserve` reports an error and the program carries on.
    pub const fn hard_limit(mut self, on: bool) -> Self {
        self.hard_limit = on;
        self
    }

    /// Soft limit, in percent of the limit (default 90): above it every
    /// slow path reclaims all idle memory, whatever its age.
    pub const fn soft_limit_pct(mut self, pct: u8) -> Self {
        self.soft_limit_pct = clamp_pct(pct);
        self
    }

    /// The pool budget in bytes; 0 (the default) uses the memory limit.
    pub const fn pool_budget_bytes(mut self, bytes: usize) -> Self {
        self.pool_budget_bytes = bytes;
        self
    }

    /// The utilisation threshold in percent (default 80): when committed
    /// pooled memory passes this share of the pool budget, idle memory is
    /// reclaimed at once, oldest first, whatever its age.
    pub const fn threshold_pct(mut self, pct: u8) -> Self {
        self.threshold_pct = clamp_pct(pct);
        self
    }

    /// The pressure levels medium, high and critical, in percent of the
    /// limit (default 80, 90, 95). Ignored unless increasing.
    pub const fn pressure_pct(mut self, medium: u8, high: u8, critical: u8) -> Self {
        if medium < high && high < critical && critical <= 100 && medium > 0 {
            self.pressure_pct = [medium, high, critical];
        }
        self
    }

    /// Trim reused pooled blocks of the classes below 32 KiB (bigger ones
    /// are page runs sized to their requests, with no tail): when a block
    /// handed out for a request has at least `pages` more touched pages
    /// (from a previous, larger occupant) than the request needs, give
    /// those back to the OS. Lower resident memory at the price of a system
    /// call and page faults on reuse. 0 (the default) turns it off.
    pub const fn trim_pages(mut self, pages: usize) -> Self {
        self.trim_pages = if pages > 256 { 256 } else { pages };
        self
    }

    /// Hardened mode (only with the `hardened` feature; off by default):
    /// encoded free-list links, and invalid or double frees on the C face
    /// abort with a message (`hardening.rs`).
    pub const fn hardened(mut self, on: bool) -> Self {
        self.hardened = on;
        self
    }

    /// In hardened mode, clear each block a C `free` gives back.
    pub const fn zero_on_free(mut self, on: bool) -> Self {
        self.zero_on_free = on;
        self
    }

    /// The leak investigator's mean sampling interval in bytes allocated
    /// (default 1 MiB; 0 turns sampling off). See `pool_alloc::profile`.
    pub const fn profile_interval(mut self, bytes: u64) -> Self {
        self.profile_interval = bytes;
        self
    }

    /// Freed large mappings kept for reuse (at most
    /// [`LARGE_CACHE_SLOTS`]; default 16).
    pub const fn large_cache_entries(mut self, n: usize) -> Self {
        self.large_cache_entries = if n > LARGE_CACHE_SLOTS {
            LARGE_CACHE_SLOTS
        } else {
            n
        };
        self
    }

    /// Cap on the bytes held by cached large mappings (default 64 MiB; one
    /// mapping at most a quarter of it). Cached mappings go back to the OS
    /// together once the newest has been idle for `max_idle_ms`.
    pub const fn large_cache_bytes(mut self, n: usize) -> Self {
        self.large_cache_bytes = n;
        self
    }

    /// Empty segments kept mapped but decommitted for reuse (at most 64).
    pub const fn segment_cache(mut self, n: usize) -> Self {
        self.segment_cache = if n > 64 { 64 } else { n };
        self
    }

    /// Ask the kernel for transparent huge pages (`MADV_HUGEPAGE`) on the
    /// 4 MiB segments that hold the small and pooled blocks, not the large
    /// mappings above 3.9 MiB (off by default). Where the kernel's THP mode
    /// is `madvise` or `always`, a first touch then maps 2 MiB at once: far
    /// fewer page faults and TLB misses for programs that touch many
    /// pooled blocks, at the price of resident memory growing in 2 MiB
    /// steps, of a 2 MiB page being split when part of it goes back, and of
    /// `khugepaged` being allowed to fold given-back pages in again.
    /// Measured on pooled churn (`benches/huge_pages.sh`,
    /// `benches/README.md`): page faults 153 k -> 0.5 k, 1.10x and 1.22x
    /// faster in two runs.
    pub const fn huge_pages(mut self, on: bool) -> Self {
        self.huge_pages = on;
        self
    }

    /// Ask for transparent huge pages only where they pay: on a heap's
    /// page segments (the pooled band's 32 KiB classes and up) past its
    /// eighth, that is once a thread's page runs pass 32 MiB, five times
    /// the second-level TLB's reach with 4 KiB pages (off by default;
    /// [`huge_pages`](Self::huge_pages) covers every segment). A program
    /// with less never sees a huge page; one with a big pooled working
    /// set gets fewer TLB misses and page faults. Measured
    /// (`benches/README.md`): pooled churn 1.19x (page faults 154 k ->
    /// 9 k), peak RSS / peak live 1.103 -> 1.113, the realistic suite's
    /// peak RSS within 0.6 MiB per program, but allocating a fresh 1 GiB
    /// burst 4x slower (the kernel zeroes, and may compact for, 2 MiB
    /// pages at each first touch), and `khugepaged` may fold given-back
    /// pages in again.
    pub const fn huge_page_runs(mut self, on: bool) -> Self {
        self.huge_page_runs = on;
        self
    }

    /// The idle time after which free memory goes back, in milliseconds.
    pub const fn get_max_idle_ms(&self) -> u64 {
        self.max_idle_ms
    }

    /// The configured memory limit in bytes (0: detected at start-up).
    pub const fn get_limit_bytes(&self) -> usize {
        self.limit_bytes
    }
}

/// The leak investigator's default mean sampling interval: 1 MiB.
pub const DEFAULT_PROFILE_INTERVAL: u64 = 1 << 20;

const fn clamp_pct(pct: u8) -> u8 {
    if pct == 0 {
        1
    } else if pct > 100 {
        100
    } else {
        pct
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

/// A `Config` written once by one thread, then read by all.
struct ConfigCell(UnsafeCell<Config>);

// SAFETY: each cell is written only by the one thread that won its state
// word's CAS, before a Release store that readers Acquire before reading.
unsafe impl Sync for ConfigCell {}

/// The configuration in force; written by `init_slow` before `STATE` = 2.
static CURRENT: ConfigCell = ConfigCell(UnsafeCell::new(Config::new()));
/// 0: not initialised; 1: being initialised; 2: ready.
static STATE: AtomicU8 = AtomicU8::new(0);
/// The configuration the first `PoolAlloc` offers, before init; written
/// by the thread that moves `PENDING_STATE` 0 -> 1, ready at 2.
static PENDING: ConfigCell = ConfigCell(UnsafeCell::new(Config::new()));
static PENDING_STATE: AtomicU8 = AtomicU8::new(0);

/// The configuration in force (after environment overrides). Initialises
/// the allocator's global state if nothing has yet.
pub fn current() -> Config {
    ensure_init();
    // SAFETY: `ensure_init` returned, so STATE is 2 (seen with Acquire) and
    // CURRENT is never written again.
    unsafe { *CURRENT.0.get() }
}

/// Offer `cfg` as the configuration (the first offer before init wins).
#[cold]
pub(crate) fn offer(cfg: &Config) {
    if STATE.load(Ordering::Acquire) == 2 || PENDING_STATE.load(Ordering::Relaxed) != 0 {
        return;
    }
    if PENDING_STATE
        .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
    {
        // SAFETY: the CAS made this thread the only writer; readers wait for
        // the Release store of 2 below.
        unsafe { *PENDING.0.get() = *cfg };
        PENDING_STATE.store(2, Ordering::Release);
    }
}

/// Initialise global state once (configuration, environment). Never
/// allocates; concurrent callers wait for the first.
#[inline]
pub(crate) fn ensure_init() {
    if STATE.load(Ordering::Acquire) != 2 {
        init_slow();
    }
}

/// The one-time initialisation behind [`ensure_init`].
///
/// NB: a hand-written state word, not a `once_cell::race` cell: a race
/// cell lets every racing thread run the initialisation and keeps one
/// result, so a bad environment variable would be reported once per racing
/// thread, and the configuration has more fields than one word holds.
/// Here one thread initialises and the others wait (init is short and
/// happens once).
#[cold]
fn init_slow() {
    let backoff = Backoff::new();
    loop {
        match STATE.compare_exchange(0, 1, Ordering::Acquire, Ordering::Acquire) {
            Ok(_) => break,
            Err(2) => return,
            Err(_) => backoff.snooze(),
        }
    }
    if !os::page_size_matches() {
        os::write_stderr(&[b"pool-alloc: the system page size is not 4 KiB; \
memory is served, but free memory cannot be given back to the OS\n"]);
    }
    let mut cfg = Config::new();
    // A thread that offered and is still writing: wait for it (short).
    while PENDING_STATE.load(Ordering::Acquire) == 1 {
        backoff.snooze();
    }
    if PENDING_STATE.load(Ordering::Acquire) == 2 {
        // SAFETY: state 2 was seen with Acquire: the offer is complete and
        // never written again.
        cfg = unsafe { *PENDING.0.get() };
    }
    cfg = apply_env(cfg, os::getenv);
    let (k0, k1) = os::random_keys();
    crate::hardening::init(cfg.hardened, cfg.zero_on_free, k0, k1);
    // SAFETY: the CAS above made this thread the only initialiser; readers
    // read CURRENT only after seeing STATE = 2 (Release below).
    unsafe { *CURRENT.0.get() = cfg };
    STATE.store(2, Ordering::Release);
}

/// The configuration in force, for the allocator's slow paths.
///
/// NB: callers run after `ensure_init` on their thread (every thread's
/// first allocation, and every public entry point, calls it), so this is a
/// plain read.
#[inline]
pub(crate) fn get() -> &'static Config {
    ensure_init();
    // SAFETY: as in `current`: after init CURRENT is never written again.
    unsafe { &*CURRENT.0.get() }
}

/// Largest single mapping the large cache keeps: a quarter of its cap.
pub(crate) fn large_cache_block_max() -> usize {
    get().large_cache_bytes / 4
}

/// Whether this build has the `hardened` feature (without it,
/// `POOL_ALLOC_HARDENED=1` gets a one-line note and is ignored).
pub const HARDENED_BUILT: bool = cfg!(feature = "hardened");

/// Every environment variable the allocator reads.
pub const ENV_VARS: [&core::ffi::CStr; 18] = [
    c"POOL_ALLOC_MAX_IDLE_MS",
    c"POOL_ALLOC_RETAIN_MB",
    c"POOL_ALLOC_RETAIN_PCT",
    c"POOL_ALLOC_DECOMMIT",
    c"POOL_ALLOC_LIMIT_MB",
    c"POOL_ALLOC_HARD_LIMIT",
    c"POOL_ALLOC_SOFT_LIMIT_PCT",
    c"POOL_ALLOC_POOL_BUDGET_MB",
    c"POOL_ALLOC_THRESHOLD_PCT",
    c"POOL_ALLOC_PRESSURE_PCT",
    c"POOL_ALLOC_LARGE_CACHE_ENTRIES",
    c"POOL_ALLOC_LARGE_CACHE_MB",
    c"POOL_ALLOC_SEGMENT_CACHE",
    c"POOL_ALLOC_TRIM_PAGES",
    c"POOL_ALLOC_HARDENED",
    c"POOL_ALLOC_ZERO_ON_FREE",
    c"POOL_ALLOC_PROFILE_INTERVAL",
    c"POOL_ALLOC_HUGE_PAGES",
];

/// Apply environment overrides to `cfg`, reporting bad values on stderr.
/// `get` reads a variable (a parameter so tests and fuzzing can drive it).
pub fn apply_env(cfg: Config, get: impl Fn(&core::ffi::CStr) -> Option<&'static [u8]>) -> Config {
    apply_env_reporting(cfg, get, os::write_stderr)
}

/// As [`apply_env`], handing each warning (as byte pieces) to `report`.
pub fn apply_env_reporting(
    mut cfg: Config,
    get: impl Fn(&core::ffi::CStr) -> Option<&'static [u8]>,
    mut report: impl FnMut(&[&[u8]]),
) -> Config {
    let mut read = |name: &core::ffi::CStr, lo: u64, hi: u64| -> Option<u64> {
        let v = get(name)?;
        let var = name.to_str().unwrap_or("?");
        parse_in(v, lo, hi, var, &mut report)
    };
    if let Some(n) = read(c"POOL_ALLOC_MAX_IDLE_MS", 0, 86_400_000) {
        cfg.max_idle_ms = n;
    }
    if let Some(n) = read(c"POOL_ALLOC_RETAIN_MB", 0, 1 << 20) {
        cfg.retain_bytes = (n as usize) << 20;
    }
    if let Some(n) = read(c"POOL_ALLOC_RETAIN_PCT", 0, 10_000) {
        cfg.retain_pct = n as u16;
    }
    if let Some(n) = read(c"POOL_ALLOC_LIMIT_MB", 0, 1 << 30) {
        cfg.limit_bytes = (n as usize) << 20;
    }
    if let Some(n) = read(c"POOL_ALLOC_HARD_LIMIT", 0, 1) {
        cfg.hard_limit = n == 1;
    }
    if let Some(n) = read(c"POOL_ALLOC_SOFT_LIMIT_PCT", 1, 100) {
        cfg.soft_limit_pct = n as u8;
    }
    if let Some(n) = read(c"POOL_ALLOC_POOL_BUDGET_MB", 0, 1 << 30) {
        cfg.pool_budget_bytes = (n as usize) << 20;
    }
    if let Some(n) = read(c"POOL_ALLOC_THRESHOLD_PCT", 1, 100) {
        cfg.threshold_pct = n as u8;
    }
    if let Some(n) = read(
        c"POOL_ALLOC_LARGE_CACHE_ENTRIES",
        0,
        LARGE_CACHE_SLOTS as u64,
    ) {
        cfg.large_cache_entries = n as usize;
    }
    if let Some(n) = read(c"POOL_ALLOC_LARGE_CACHE_MB", 0, 65536) {
        cfg.large_cache_bytes = (n as usize) << 20;
    }
    if let Some(n) = read(c"POOL_ALLOC_SEGMENT_CACHE", 0, 64) {
        cfg.segment_cache = n as usize;
    }
    if let Some(n) = read(c"POOL_ALLOC_TRIM_PAGES", 0, 256) {
        cfg.trim_pages = n as usize;
    }
    if let Some(n) = read(c"POOL_ALLOC_HARDENED", 0, 1) {
        cfg.hardened = n == 1;
    }
    if let Some(n) = read(c"POOL_ALLOC_ZERO_ON_FREE", 0, 1) {
        cfg.zero_on_free = n == 1;
    }
    if let Some(n) = read(c"POOL_ALLOC_PROFILE_INTERVAL", 0, 1 << 40) {
        cfg.profile_interval = n;
    }
    if let Some(n) = read(c"POOL_ALLOC_HUGE_PAGES", 0, 2) {
        cfg.huge_pages = n == 1;
        cfg.huge_page_runs = n >= 1;
    }
    if let Some(v) = get(c"POOL_ALLOC_DECOMMIT") {
        match v.trim_ascii() {
            b"dontneed" => cfg.decommit_free = false,
            b"free" => cfg.decommit_free = true,
            _ => warn(
                &mut report,
                "POOL_ALLOC_DECOMMIT",
                v,
                b"expected `dontneed` or `free`",
            ),
        }
    }
    if cfg.hardened && !cfg!(feature = "hardened") {
        report(&[b"pool-alloc: hardened mode asked for, but this build has no `hardened` feature; ignored\n"]);
    }
    if let Some(v) = get(c"POOL_ALLOC_PRESSURE_PCT") {
        match parse_levels(v) {
            Some(levels) => cfg.pressure_pct = levels,
            None => warn(
                &mut report,
                "POOL_ALLOC_PRESSURE_PCT",
                v,
                b"expected three increasing whole numbers from 1 to 100, like `80,90,95`",
            ),
        }
    }
    cfg
}

/// `a,b,c`: three increasing percentages.
fn parse_levels(v: &[u8]) -> Option<[u8; 3]> {
    let mut out = [0u8; 3];
    let mut parts = v.split(|&b| b == b',');
    for slot in out.iter_mut() {
        let n = parse_u64(parts.next()?)?;
        if !(1..=100).contains(&n) {
            return None;
        }
        *slot = n as u8;
    }
    if parts.next().is_some() || !(out[0] < out[1] && out[1] < out[2]) {
        return None;
    }
    Some(out)
}

fn parse_in(
    v: &[u8],
    lo: u64,
    hi: u64,
    name: &str,
    report: &mut impl FnMut(&[&[u8]]),
) -> Option<u64> {
    match parse_u64(v) {
        Some(n) if n >= lo && n <= hi => Some(n),
        _ => {
            let mut a = [0u8; 20];
            let mut b = [0u8; 20];
            let mut what = [0u8; 96];
            let mut len = 0;
            for part in [
                &b"expected a whole number from "[..],
                fmt_u64(lo, &mut a),
                b" to ",
                fmt_u64(hi, &mut b),
            ] {
                what[len..len + part.len()].copy_from_slice(part);
                len += part.len();
            }
            warn(report, name, v, &what[..len]);
            None
        }
    }
}

/// One warning line: the variable, its value (at most 64 bytes, the
/// non-printable ones as '?'), what was expected.
fn warn(report: &mut impl FnMut(&[&[u8]]), name: &str, v: &[u8], expected: &[u8]) {
    let mut shown_buf = [b'?'; 64];
    let shown = &mut shown_buf[..v.len().min(64)];
    for (d, &b) in shown.iter_mut().zip(v) {
        if b.is_ascii_graphic() || b == b' ' {
            *d = b;
        }
    }
    let shown = &*shown;
    report(&[
        b"pool-alloc: ignoring ",
        name.as_bytes(),
        b"=\"",
        shown,
        b"\": ",
        expected,
        b"; using the configured default\n",
    ]);
}

/// Parse a decimal integer (surrounding spaces allowed). No allocation.
pub fn parse_u64(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + (b - b'0') as u64;
    }
    Some(n)
}

fn fmt_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_whole_numbers_only() {
        assert_eq!(parse_u64(b"42"), Some(42));
        assert_eq!(parse_u64(b" 7 "), Some(7));
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b"12ab"), None);
        assert_eq!(parse_u64(b"99999999999999999999999"), None);
    }

    #[test]
    fn bad_environment_values_keep_the_default() {
        let cfg = apply_env(Config::new(), |name| match name.to_bytes() {
            b"POOL_ALLOC_LARGE_CACHE_ENTRIES" => Some(b"lots"),
            b"POOL_ALLOC_LARGE_CACHE_MB" => Some(b"128"),
            b"POOL_ALLOC_SEGMENT_CACHE" => Some(b"1000"),
            _ => None,
        });
        assert_eq!(cfg.large_cache_entries, 16, "malformed value ignored");
        assert_eq!(cfg.large_cache_bytes, 128 << 20, "good value applied");
        assert_eq!(cfg.segment_cache, 16, "out of range value ignored");
    }

    /// Every variable, fed malformed, negative, overflowing, empty and
    /// impossible values: each is reported in exactly one line and the
    /// default stays.
    #[test]
    fn every_variable_rejects_bad_values_with_one_line_each() {
        let bad: [&'static [u8]; 7] = [
            b"abc",
            b"-5",
            b"99999999999999999999999999",
            b"",
            b"   ",
            b"1e9",
            b"\xff\x00x",
        ];
        for var in ENV_VARS {
            for value in bad {
                let mut lines = Vec::new();
                let cfg = apply_env_reporting(
                    Config::new(),
                    |name| (name == var).then_some(value),
                    |parts: &[&[u8]]| lines.push(parts.concat()),
                );
                assert_eq!(cfg, Config::new(), "{var:?}={value:?} changed the config");
                assert_eq!(lines.len(), 1, "{var:?}={value:?}: one warning");
                let line = &lines[0];
                assert!(line.ends_with(b"\n") && !line[..line.len() - 1].contains(&b'\n'));
                assert!(line
                    .windows(var.to_bytes().len())
                    .any(|w| w == var.to_bytes()));
            }
        }
        // Impossible values of otherwise well-formed shape.
        for (var, value) in [
            (c"POOL_ALLOC_PRESSURE_PCT", &b"95,90,80"[..]),
            (c"POOL_ALLOC_PRESSURE_PCT", b"80,90"),
            (c"POOL_ALLOC_PRESSURE_PCT", b"80,90,101"),
            (c"POOL_ALLOC_THRESHOLD_PCT", b"0"),
            (c"POOL_ALLOC_THRESHOLD_PCT", b"150"),
            (c"POOL_ALLOC_HARD_LIMIT", b"2"),
            (c"POOL_ALLOC_DECOMMIT", b"never"),
        ] {
            let mut n = 0;
            let cfg = apply_env_reporting(
                Config::new(),
                |name| (name == var).then_some(value),
                |_: &[&[u8]]| n += 1,
            );
            assert_eq!(cfg, Config::new(), "{var:?}={value:?}");
            assert_eq!(n, 1, "{var:?}={value:?}: one warning");
        }
        // Good values are applied.
        let cfg = apply_env(Config::new(), |name| match name.to_bytes() {
            b"POOL_ALLOC_MAX_IDLE_MS" => Some(b"250"),
            b"POOL_ALLOC_PRESSURE_PCT" => Some(b"70,85,99"),
            b"POOL_ALLOC_DECOMMIT" => Some(b"free"),
            _ => None,
        });
        assert_eq!(cfg.max_idle_ms, 250);
        assert_eq!(cfg.pressure_pct, [70, 85, 99]);
        assert!(cfg.decommit_free);
    }
}
