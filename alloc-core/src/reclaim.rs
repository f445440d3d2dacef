//! Reclaim on demand: escalating levels, the background reclaimer, and
//! pressure sampling with the application's callbacks.
//!
//! Most memory goes back without anyone asking: the segment sets' policy
//! (`segment.rs`: idle past `max_idle`, past the retained budget, the
//! threshold or the soft limit) runs on every heap's slow paths. What this
//! file adds:
//!
//! * [`reclaim`]`(level)`, each level doing more than the one before:
//!   * **gentle**: idle memory older than `max_idle` (stretched per heap
//!     by the expiry it learnt from thrash, `SegmentSet::stretched`), in
//!     every heap (exited threads' too), and the cached large mappings once the
//!     newest of them has been idle that long;
//!   * **moderate**: all idle memory, and the calling thread's kept empty
//!     slabs;
//!   * **aggressive**: moderate, plus abandoned heaps swept, and every
//!     other thread asked to release its kept empty slabs at its next slow
//!     path (a thread's slab queues are its own: nobody else may touch
//!     them);
//!   * **emergency**: aggressive, plus the cache of freed large mappings,
//!     plus the pressure callbacks, run at once with the current level.
//! * [`Reclaimer`]: an optional background thread the application starts
//!   and stops (the allocator never starts one itself). Every tick (a
//!   quarter of `max_idle`, from 10 ms to 1 s) it reclaims gently, samples
//!   pressure, reclaims harder at high (moderate) and critical
//!   (aggressive) pressure, and runs callbacks. When no thread took new
//!   slab memory during a whole tick, the process is quiet and idle memory
//!   older than one tick goes back (not only older than `max_idle`). With
//!   it, an idle process gives memory back without any allocator call.
//! * [`poll`]: the same sampling and callbacks, from the caller's thread.
//!
//! Callbacks never run inside an allocation.

use crate::background::Background;
use crate::counters::GLOBAL;
use crate::heap::current_heap;
use crate::heap::exit::sweep_abandoned_now;
use crate::heap::reclaim::{reclaim_other_heaps, reclaim_own, request_release_all};
use crate::pressure::{Callbacks, PressureCallback, PressureLevel, PressureState};
use crate::{config, large, limits, os};
use std::time::Duration;

/// How hard [`reclaim`] works; each level includes the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReclaimLevel {
    /// Idle memory older than `max_idle` in every heap (a heap whose
    /// expired memory kept being needed again waits longer: up to 256
    /// `max_idle`).
    Gentle = 0,
    /// All idle memory, and the calling thread's kept empty slabs.
    Moderate = 1,
    /// Moderate, abandoned heaps swept, every thread asked to release its
    /// kept empty slabs.
    Aggressive = 2,
    /// Aggressive, the large-mapping cache, and the pressure callbacks.
    Emergency = 3,
}

impl ReclaimLevel {
    /// The level's name.
    pub fn name(self) -> &'static str {
        alloc_stats::RECLAIM_LEVELS[self as usize]
    }
}

/// What a reclaim gave back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reclaimed {
    /// Bytes returned to the OS (decommitted or unmapped).
    pub bytes: u64,
    /// Empty slabs released to their segments.
    pub slabs: u64,
    /// Segments that left their heap (cached decommitted, or unmapped).
    pub segments: u64,
}

/// Give memory back now, as hard as `level` says (see the module docs).
/// Never blocks an allocating thread: other threads' memory is taken only
/// when their segment lock is free.
///
/// ```
/// use alloc_core::{reclaim, ReclaimLevel};
/// let freed = reclaim(ReclaimLevel::Moderate);
/// println!("gave back {} bytes", freed.bytes);
/// ```
pub fn reclaim(level: ReclaimLevel) -> Reclaimed {
    config::ensure_init();
    let cutoff = if level == ReclaimLevel::Gentle {
        os::now_ms().saturating_sub(config::get().max_idle_ms)
    } else {
        u64::MAX
    };
    let stretch = level == ReclaimLevel::Gentle;
    reclaim_at(level, cutoff, stretch, level >= ReclaimLevel::Moderate)
}

/// [`reclaim`] at `level` with idle memory older than `cutoff` (coarse ms;
/// `u64::MAX`: all) going back; `stretch`: each heap's cutoff stretched by
/// the expiry it learnt from thrash (`SegmentSet::stretched`);
/// `own_kept`: the calling thread's kept empty slabs too.
fn reclaim_at(level: ReclaimLevel, cutoff: u64, stretch: bool, own_kept: bool) -> Reclaimed {
    let own = reclaim_own(cutoff, stretch, own_kept);
    let mut given = own.given;
    let mut slabs = own.slabs;
    given.add(reclaim_other_heaps(
        current_heap(),
        cutoff,
        stretch,
        usize::MAX,
    ));
    if level >= ReclaimLevel::Aggressive {
        let swept = sweep_abandoned_now();
        given.add(swept.given);
        slabs += swept.slabs;
        request_release_all();
    }
    if level >= ReclaimLevel::Emergency {
        given.bytes += large::flush_cache();
    } else {
        let now = os::now_ms();
        given.bytes += large::expire_cache(now, now.saturating_sub(cutoff));
    }
    GLOBAL.reclaim_runs[level as usize].add(1);
    GLOBAL.reclaim_bytes[level as usize].add(given.bytes);
    if level >= ReclaimLevel::Emergency {
        CALLBACKS.run(current_level());
    }
    Reclaimed {
        bytes: given.bytes as u64,
        slabs: slabs as u64,
        segments: given.segments as u64,
    }
}

static PRESSURE: PressureState = PressureState::new();
static CALLBACKS: Callbacks = Callbacks::new();
/// Callbacks for one level fire at most once per this many ms.
const COOLDOWN_MS: u64 = 1000;

/// The pressure level of committed memory against the limit now.
pub fn current_level() -> PressureLevel {
    let cfg = config::get();
    PressureLevel::of(limits::committed_bytes(), limits::limit(), cfg.pressure_pct)
}

/// The level the last [`poll`] (or reclaimer tick) saw.
pub fn last_level() -> PressureLevel {
    PRESSURE.level()
}

/// Register a callback for pressure at medium or above: it runs (on the
/// reclaimer's thread or in [`poll`]) when a sample finds such a level,
/// at most once a second per level. Returns a handle for
/// [`unregister_pressure_callback`], or None when all 16 slots are taken.
pub fn on_pressure(f: PressureCallback) -> Option<usize> {
    CALLBACKS.register(f)
}

/// Remove a callback registered with [`on_pressure`].
pub fn unregister_pressure_callback(handle: usize) {
    CALLBACKS.unregister(handle);
}

/// Sample pressure now, reclaim harder when it is high, and run the
/// callbacks if they are due. Returns the level. For programs that do not
/// run the [`Reclaimer`].
pub fn poll() -> PressureLevel {
    config::ensure_init();
    let level = current_level();
    match level {
        PressureLevel::High => {
            reclaim(ReclaimLevel::Moderate);
        }
        PressureLevel::Critical => {
            reclaim(ReclaimLevel::Aggressive);
        }
        _ => {}
    }
    // The level after reclaiming is what callbacks hear about.
    let level = current_level();
    if PRESSURE.should_fire(level, os::now_ms().max(1), COOLDOWN_MS) {
        GLOBAL.pressure_events[level as usize].add(1);
        CALLBACKS.run(level);
    }
    level
}

/// The background reclaimer: a thread that gives idle memory back and
/// samples pressure, started and stopped by the application (dropping it
/// stops it too).
///
/// ```
/// use alloc_core::Reclaimer;
/// let r = Reclaimer::start();
/// // ... the program runs; idle memory goes back within about max_idle ...
/// r.stop();
/// ```
pub struct Reclaimer {
    thread: Background,
}

impl Reclaimer {
    /// Start the reclaimer with a tick of a quarter of `max_idle` (10 ms to
    /// 1 s).
    pub fn start() -> Reclaimer {
        let max_idle = config::current().get_max_idle_ms();
        Reclaimer::with_period(Duration::from_millis((max_idle / 4).clamp(10, 1000)))
    }

    /// Start the reclaimer with a tick of `period`.
    pub fn with_period(period: Duration) -> Reclaimer {
        let tick_ms = period.as_millis().max(1) as u64;
        let mut taken = GLOBAL.runs_taken.get();
        let thread = Background::spawn("pool-alloc-reclaimer", period, move || {
            // A process that took no new slab memory for a whole tick is
            // idle: its idle memory goes back after one tick, not max_idle.
            // A busy one keeps it max_idle.
            let now_taken = GLOBAL.runs_taken.get();
            if now_taken == taken {
                reclaim_at(
                    ReclaimLevel::Gentle,
                    os::now_ms().saturating_sub(tick_ms),
                    false,
                    true,
                );
            } else {
                reclaim(ReclaimLevel::Gentle);
            }
            taken = now_taken;
            poll();
        });
        Reclaimer { thread }
    }

    /// Whether the thread is running (it could be started).
    pub fn is_running(&self) -> bool {
        self.thread.is_running()
    }

    /// Stop the thread and wait for it (dropping the `Reclaimer` does too).
    pub fn stop(mut self) {
        self.thread.stop();
    }
}
