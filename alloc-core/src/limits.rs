//! The memory limit, the pool budget and the retained budget: the figures
//! the give-back policy (`segment.rs`) and the pressure levels compare
//! committed memory with.
//!
//! * **limit**: `Config::limit_bytes`, else the cgroup's `memory.max` /
//!   `memory.high` (the lower), else physical memory. Read once.
//! * **committed**: what the allocator holds resident by its own count:
//!   slices in slabs (used), free slices not yet given back (idle), large
//!   mappings (live and cached) and heap metadata.
//! * **pool budget**: `Config::pool_budget_bytes`, else the limit.
//!   **Utilisation** = pooled committed (used + idle) / pool budget; past
//!   `threshold_pct` idle memory goes back at once.
//! * **retained budget**: idle memory kept for reuse is at most
//!   `retain_bytes` + `retain_pct` (default 200 %) of the memory in use;
//!   past it, idle memory goes back at once, oldest first. (Measured on 4
//!   threads of mixed churn up to 1 MiB, `worker mtmixed-1024 --threads 4
//!   --ws 3000`: with 50 %, 12-13 M ops/s and ~1 800 `madvise` calls a
//!   second; with 100 %, 30-32 M ops/s and ~500 a second, peak RSS 277-281
//!   MiB; with 200 %, no call from the budget in the steady state (only
//!   `max_idle` expiry, 5-15 a second), peak RSS 292 MiB; glibc 13-14 M
//!   ops/s at 202-206 MiB.)
//! * **soft limit**: past `soft_limit_pct` of the limit, idle memory goes
//!   back at once too. **Hard limit** (`Config::hard_limit`): a new mapping
//!   that would take committed memory past the limit is refused (the
//!   allocation reclaims once, then returns null).

use crate::config;
use crate::counters::GLOBAL;
use crate::os;
use crate::sync::{AtomicUsize, Ordering};

/// The limit in force, in bytes (0: not yet read).
static LIMIT: AtomicUsize = AtomicUsize::new(0);

/// The memory limit in force, in bytes.
pub(crate) fn limit() -> usize {
    let v = LIMIT.load(Ordering::Relaxed);
    if v != 0 {
        return v;
    }
    let cfg = config::get();
    let detected = if cfg.limit_bytes != 0 {
        cfg.limit_bytes as u64
    } else {
        let phys = os::physical_memory();
        match os::cgroup_memory_limit() {
            Some(cg) if phys == 0 || cg < phys => cg,
            _ => phys,
        }
    };
    let v = usize::try_from(detected).unwrap_or(usize::MAX).max(1);
    LIMIT.store(v, Ordering::Relaxed);
    v
}

/// The pool budget in bytes.
pub(crate) fn pool_budget() -> usize {
    match config::get().pool_budget_bytes {
        0 => limit(),
        b => b,
    }
}

/// Committed bytes by the allocator's own count.
pub(crate) fn committed_bytes() -> usize {
    GLOBAL.used_bytes.get()
        + GLOBAL.idle_bytes.get()
        + GLOBAL.large_mapped_bytes.get()
        + GLOBAL.meta_bytes.get()
}

fn pct_of(total: usize, pct: u8) -> usize {
    (total / 100).saturating_mul(pct as usize)
}

/// The two fixed caps [`over_idle_budget`] compares with, in bytes
/// (0: not yet worked out, as for [`LIMIT`]): pooled committed memory at
/// the utilisation threshold, and committed memory at the soft limit. The
/// configuration never changes after init and the limit is read once, so
/// they are worked out once (racing threads work out the same values).
static POOLED_CAP: AtomicUsize = AtomicUsize::new(0);
static SOFT_CAP: AtomicUsize = AtomicUsize::new(0);

/// (pooled cap, soft cap); see [`POOLED_CAP`].
fn caps() -> (usize, usize) {
    let (pooled, soft) = (
        POOLED_CAP.load(Ordering::Relaxed),
        SOFT_CAP.load(Ordering::Relaxed),
    );
    if pooled != 0 && soft != 0 {
        return (pooled, soft);
    }
    let cfg = config::get();
    let pooled = pct_of(pool_budget(), cfg.threshold_pct);
    let soft = pct_of(limit(), cfg.soft_limit_pct);
    POOLED_CAP.store(pooled, Ordering::Relaxed);
    SOFT_CAP.store(soft, Ordering::Relaxed);
    (pooled, soft)
}

/// Whether idle memory must go back now: past the retained budget, the
/// utilisation threshold or the soft limit. Called on every page-run free
/// that leaves idle memory (`SegmentSet::after_return`), so the fixed caps
/// are read, not worked out again.
pub(crate) fn over_idle_budget() -> bool {
    let cfg = config::get();
    let idle = GLOBAL.idle_bytes.get();
    let used = GLOBAL.used_bytes.get();
    let (pooled_cap, soft_cap) = caps();
    idle > cfg
        .retain_bytes
        .saturating_add(used / 100 * cfg.retain_pct as usize)
        || used + idle > pooled_cap
        || committed_bytes() > soft_cap
}

/// Whether mapping `extra` more bytes would pass a hard limit.
pub(crate) fn would_pass_hard_limit(extra: usize) -> bool {
    config::get().hard_limit && committed_bytes().saturating_add(extra) > limit()
}
