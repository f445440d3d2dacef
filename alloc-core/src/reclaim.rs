//! Reclaim on demand: escalating levels, the background reclaimer, and
//! pressure sampling with the application's callbacks.
//!
//! Most memory goes back without anyone asking: the segment sets' policy
//! (`segment.rs`: idle past `max_idle`, past the retained budget, the
//! threshold or the soft limit) runs on every heap's slow paths. What this
//! file adds:
//!
//! * [`reclaim`]`(level)`, each level doing more than the one before:
//!   * **gentle**: idle memory older than `max_idle`, in every heap
//!     (exited threads' too), and the cached large mappings once the
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

use crate::counters::GLOBAL;
use crate::heap::current_heap;
use crate::heap::reclaim::{
    reclaim_other_heaps, reclaim_own, request_release_all, sweep_abandoned,
};
use crate::pressure::{Callbacks, PressureCallback, PressureLevel, PressureState};
use crate::{config, large, limits, os};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How hard [`reclaim`] works; each level includes the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReclaimLevel {
    /// Idle memory older than `max_idle`, in every heap.
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
        match self {
            ReclaimLevel::Gentle => "gentle",
            ReclaimLevel::Moderate => "moderate",
            ReclaimLevel::Aggressive => "aggressive",
            ReclaimLevel::Emergency => "emergency",
        }
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
    let cfg = config::get();
    let cutoff = if level == ReclaimLevel::Gentle {
        os::now_ms().saturating_sub(cfg.max_idle_ms)
    } else {
        u64::MAX
    };
    let own = reclaim_own(cutoff, level >= ReclaimLevel::Moderate);
    let mut given = own.given;
    let mut slabs = own.slabs;
    given.add(reclaim_other_heaps(current_heap(), cutoff, usize::MAX));
    if level >= ReclaimLevel::Aggressive {
        let swept = sweep_abandoned();
        given.add(swept.given);
        slabs += swept.slabs;
        request_release_all();
    }
    if level >= ReclaimLevel::Emergency {
        given.bytes += large::flush_cache();
    } else {
        given.bytes += large::expire_cache(os::now_ms(), cfg.max_idle_ms);
    }
    let out = Reclaimed {
        bytes: given.bytes as u64,
        slabs: slabs as u64,
        segments: given.segments as u64,
    };
    GLOBAL.reclaim_runs[level as usize].add(1);
    GLOBAL.reclaim_bytes[level as usize].add(given.bytes);
    if level >= ReclaimLevel::Emergency {
        CALLBACKS.run(current_level());
    }
    out
}

/// The reclaimer's pass over a quiet process: idle memory older than
/// `cutoff` (coarse ms), in every heap, and the large cache.
fn reclaim_idle_since(cutoff: u64) {
    let mut given = reclaim_own(cutoff, true).given;
    given.add(reclaim_other_heaps(current_heap(), cutoff, usize::MAX));
    let now = os::now_ms();
    given.bytes += large::expire_cache(now, now.saturating_sub(cutoff));
    GLOBAL.reclaim_runs[ReclaimLevel::Gentle as usize].add(1);
    GLOBAL.reclaim_bytes[ReclaimLevel::Gentle as usize].add(given.bytes);
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
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
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
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("pool-alloc-reclaimer".into())
            .spawn(move || {
                let tick_ms = period.as_millis().max(1) as u64;
                let mut taken = GLOBAL.runs_taken.get();
                while !flag.load(Ordering::Acquire) {
                    // A process that took no new slab memory for a whole
                    // tick is idle: its idle memory goes back after one
                    // tick, not max_idle. A busy one keeps it max_idle.
                    let now_taken = GLOBAL.runs_taken.get();
                    if now_taken == taken {
                        reclaim_idle_since(os::now_ms().saturating_sub(tick_ms));
                    } else {
                        reclaim(ReclaimLevel::Gentle);
                    }
                    taken = now_taken;
                    poll();
                    std::thread::park_timeout(period);
                }
            })
            .ok();
        Reclaimer { stop, handle }
    }

    /// Whether the thread is running (it could be started).
    pub fn is_running(&self) -> bool {
        self.handle.is_some()
    }

    /// Stop the thread and wait for it.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

impl Drop for Reclaimer {
    fn drop(&mut self) {
        self.halt();
    }
}
