//! Configuration: a `const` builder for code, environment variables for
//! operators.
//!
//! The allocator's state is process-wide, so the configuration of the first
//! `PoolAlloc` that allocates is the one in force; environment variables,
//! read once at that moment, override it. A malformed or impossible value is
//! reported once on stderr and the builder's value is kept: configuration
//! never crashes the process.
//!
//! | variable | meaning | default | range |
//! | --- | --- | --- | --- |
//! | `POOL_ALLOC_LARGE_CACHE_ENTRIES` | freed large mappings kept for reuse | 8 | 0..=8 |
//! | `POOL_ALLOC_LARGE_CACHE_MB` | cap on the bytes those mappings hold (one mapping at most a quarter) | 32 | 0..=65536 |
//! | `POOL_ALLOC_SEGMENT_CACHE` | empty 4 MiB segments kept mapped (decommitted) | 16 | 0..=64 |
//! | `POOL_ALLOC_TRIM_PAGES` | trim reused pooled blocks' tails of at least this many pages (0: off) | 0 | 0..=256 |

use crate::os;
use crate::sync::{AtomicU8, AtomicUsize, Backoff, Ordering};

/// Allocator configuration, built in `const` context:
///
/// ```
/// use alloc_core::{Config, PoolAlloc};
/// static GLOBAL: PoolAlloc =
///     PoolAlloc::with_config(Config::new().large_cache_entries(4).segment_cache(8));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    large_cache_entries: usize,
    large_cache_bytes: usize,
    segment_cache: usize,
    trim_pages: usize,
}

impl Config {
    /// The defaults.
    pub const fn new() -> Self {
        Config {
            large_cache_entries: 8,
            large_cache_bytes: 32 << 20,
            segment_cache: 16,
            trim_pages: 0,
        }
    }

    /// Trim reused pooled blocks: when a block handed out for a request
    /// has at least `pages` more touched pages (from a previous, larger
    /// occupant) than the request needs, give those back to the OS. Lower
    /// resident memory at the price of a system call and page faults on
    /// reuse. 0 (the default) turns it off; 16 is a reasonable setting
    /// (measured on pooled churn: footprint 1.31 -> 1.16, throughput about a
    /// quarter; see ARCHITECTURE.md).
    pub const fn trim_pages(mut self, pages: usize) -> Self {
        self.trim_pages = if pages > 256 { 256 } else { pages };
        self
    }

    /// Freed large mappings kept for reuse (at most 8).
    pub const fn large_cache_entries(mut self, n: usize) -> Self {
        self.large_cache_entries = if n > 8 { 8 } else { n };
        self
    }

    /// Cap on the bytes held by cached large mappings.
    pub const fn large_cache_bytes(mut self, n: usize) -> Self {
        self.large_cache_bytes = n;
        self
    }

    /// Empty segments kept mapped but decommitted for reuse (at most 64).
    pub const fn segment_cache(mut self, n: usize) -> Self {
        self.segment_cache = if n > 64 { 64 } else { n };
        self
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

static LARGE_CACHE_ENTRIES: AtomicUsize = AtomicUsize::new(8);
static LARGE_CACHE_BYTES: AtomicUsize = AtomicUsize::new(32 << 20);
static SEGMENT_CACHE: AtomicUsize = AtomicUsize::new(16);
static TRIM_PAGES: AtomicUsize = AtomicUsize::new(0);
static STATE: AtomicU8 = AtomicU8::new(0);

pub(crate) fn large_cache_entries() -> usize {
    LARGE_CACHE_ENTRIES.load(Ordering::Relaxed)
}
pub(crate) fn large_cache_bytes() -> usize {
    LARGE_CACHE_BYTES.load(Ordering::Relaxed)
}
/// Largest single mapping the large cache keeps: a quarter of its cap.
pub(crate) fn large_cache_block_max() -> usize {
    large_cache_bytes() / 4
}
pub(crate) fn segment_cache_limit() -> usize {
    SEGMENT_CACHE.load(Ordering::Relaxed)
}
pub(crate) fn trim_pages() -> usize {
    TRIM_PAGES.load(Ordering::Relaxed)
}

/// The configuration in force (after environment overrides).
pub fn current() -> Config {
    Config {
        large_cache_entries: large_cache_entries(),
        large_cache_bytes: large_cache_bytes(),
        segment_cache: segment_cache_limit(),
        trim_pages: trim_pages(),
    }
}

static PENDING: PendingConfig = PendingConfig::new();

/// The configuration the first `PoolAlloc` asks for, before init.
struct PendingConfig {
    set: AtomicU8,
    entries: AtomicUsize,
    bytes: AtomicUsize,
    segments: AtomicUsize,
    trim: AtomicUsize,
}

impl PendingConfig {
    const fn new() -> Self {
        PendingConfig {
            set: AtomicU8::new(0),
            entries: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            segments: AtomicUsize::new(0),
            trim: AtomicUsize::new(0),
        }
    }
}

/// Offer `cfg` as the configuration (the first offer before init wins).
#[cold]
pub(crate) fn offer(cfg: &Config) {
    if STATE.load(Ordering::Acquire) == 2 || PENDING.set.load(Ordering::Relaxed) != 0 {
        return;
    }
    if PENDING
        .set
        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed)
        .is_ok()
    {
        PENDING
            .entries
            .store(cfg.large_cache_entries, Ordering::Relaxed);
        PENDING
            .bytes
            .store(cfg.large_cache_bytes, Ordering::Relaxed);
        PENDING.segments.store(cfg.segment_cache, Ordering::Relaxed);
        PENDING.trim.store(cfg.trim_pages, Ordering::Relaxed);
        PENDING.set.store(2, Ordering::Release);
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
    if PENDING.set.load(Ordering::Acquire) == 2 {
        cfg.large_cache_entries = PENDING.entries.load(Ordering::Relaxed);
        cfg.large_cache_bytes = PENDING.bytes.load(Ordering::Relaxed);
        cfg.segment_cache = PENDING.segments.load(Ordering::Relaxed);
        cfg.trim_pages = PENDING.trim.load(Ordering::Relaxed);
    }
    cfg = apply_env(cfg, os::getenv);
    LARGE_CACHE_ENTRIES.store(cfg.large_cache_entries, Ordering::Relaxed);
    LARGE_CACHE_BYTES.store(cfg.large_cache_bytes, Ordering::Relaxed);
    SEGMENT_CACHE.store(cfg.segment_cache, Ordering::Relaxed);
    TRIM_PAGES.store(cfg.trim_pages, Ordering::Relaxed);
    STATE.store(2, Ordering::Release);
}

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
    let mut read = |name: &core::ffi::CStr, hi: u64| -> Option<u64> {
        let v = get(name)?;
        let var = name.to_str().unwrap_or("?");
        parse_in(v, 0, hi, var, &mut report)
    };
    if let Some(n) = read(c"POOL_ALLOC_LARGE_CACHE_ENTRIES", 8) {
        cfg.large_cache_entries = n as usize;
    }
    if let Some(n) = read(c"POOL_ALLOC_LARGE_CACHE_MB", 65536) {
        cfg.large_cache_bytes = (n as usize) << 20;
    }
    if let Some(n) = read(c"POOL_ALLOC_SEGMENT_CACHE", 64) {
        cfg.segment_cache = n as usize;
    }
    if let Some(n) = read(c"POOL_ALLOC_TRIM_PAGES", 256) {
        cfg.trim_pages = n as usize;
    }
    cfg
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
            // Show at most 64 bytes, non-printable ones as '?'.
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
                b"\": expected a whole number from ",
                fmt_u64(lo, &mut a),
                b" to ",
                fmt_u64(hi, &mut b),
                b"; using the configured default\n",
            ]);
            None
        }
    }
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
        assert_eq!(cfg.large_cache_entries, 8, "malformed value ignored");
        assert_eq!(cfg.large_cache_bytes, 128 << 20, "good value applied");
        assert_eq!(cfg.segment_cache, 16, "out of range value ignored");
    }
}
