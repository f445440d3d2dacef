//! Memory pressure levels and the callbacks the application registers.
//!
//! The level is committed memory against the limit (`limits.rs`): low,
//! medium, high, critical at the configured percentages (80 / 90 / 95 % by
//! default). Callbacks never run inside an allocation: only on the
//! background reclaimer's thread or in an explicit `poll()`.
//!
//! Firing rules ([`PressureState::should_fire`]): a callback round runs when
//! a sample finds medium or above, at most once per cooldown per level (so
//! rising to a higher level fires at once). Two samplers may race (the reclaimer and a `poll()`): a CAS on
//! the level's last-fired time lets exactly one of them fire per cooldown.
//! The loom model in `loom_tests.rs` checks that, with a seeded-bug twin
//! (load then store) that fires twice.

use crate::sync::{AtomicU64, AtomicU8, AtomicUsize, Ordering};

/// A memory pressure level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PressureLevel {
    /// Below the medium threshold.
    Low = 0,
    /// At or above the medium threshold (80 % of the limit by default).
    Medium = 1,
    /// At or above the high threshold (90 %).
    High = 2,
    /// At or above the critical threshold (95 %).
    Critical = 3,
}

impl PressureLevel {
    /// The level of `used` bytes against `limit`, with the medium, high
    /// and critical thresholds in percent.
    pub fn of(used: usize, limit: usize, pct: [u8; 3]) -> PressureLevel {
        let share = (used as u128 * 100) / (limit.max(1) as u128);
        if share >= pct[2] as u128 {
            PressureLevel::Critical
        } else if share >= pct[1] as u128 {
            PressureLevel::High
        } else if share >= pct[0] as u128 {
            PressureLevel::Medium
        } else {
            PressureLevel::Low
        }
    }

    pub(crate) fn from_u8(v: u8) -> PressureLevel {
        match v {
            0 => PressureLevel::Low,
            1 => PressureLevel::Medium,
            2 => PressureLevel::High,
            _ => PressureLevel::Critical,
        }
    }

    /// The level's name, as the stats print it.
    pub fn name(self) -> &'static str {
        alloc_stats::PRESSURE_LEVELS[self as usize]
    }
}

/// The sampled level and, per level, when callbacks last fired for it.
pub(crate) struct PressureState {
    level: AtomicU8,
    last_fired: [AtomicU64; 4],
}

impl PressureState {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        PressureState {
            level: AtomicU8::new(0),
            last_fired: [const { AtomicU64::new(0) }; 4],
        }
    }

    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        PressureState {
            level: AtomicU8::new(0),
            last_fired: core::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// The last sampled level.
    pub(crate) fn level(&self) -> PressureLevel {
        PressureLevel::from_u8(self.level.load(Ordering::Relaxed))
    }

    /// Record a sample of `level` at `now` (ms, never 0) and say whether
    /// this caller must run the callbacks for it: the level is medium or
    /// above and its callbacks never fired, or last fired at least
    /// `cooldown` ago (each level has its own cooldown, so rising to a
    /// higher level fires at once). Exactly one of racing callers wins a
    /// firing.
    pub(crate) fn should_fire(&self, level: PressureLevel, now: u64, cooldown: u64) -> bool {
        self.level.store(level as u8, Ordering::Relaxed);
        if level == PressureLevel::Low {
            return false;
        }
        let slot = &self.last_fired[level as usize];
        let last = slot.load(Ordering::Acquire);
        if last != 0 && now.saturating_sub(last) < cooldown {
            return false;
        }
        slot.compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }
}

/// A registered callback: called with the level when pressure calls for
/// it. It runs on the reclaimer's thread or in `poll()`, never inside an
/// allocation, so it may allocate, log and take locks.
pub type PressureCallback = fn(PressureLevel);

/// Registered callbacks: function pointers in fixed slots (0: empty), so
/// registering never allocates.
pub(crate) struct Callbacks {
    slots: [AtomicUsize; 16],
}

impl Callbacks {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        Callbacks {
            slots: [const { AtomicUsize::new(0) }; 16],
        }
    }

    /// Put `f` in a free slot; its index, or None when all are taken.
    pub(crate) fn register(&self, f: PressureCallback) -> Option<usize> {
        let v = f as usize;
        self.slots.iter().position(|s| {
            s.compare_exchange(0, v, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })
    }

    /// Empty slot `i`.
    pub(crate) fn unregister(&self, i: usize) {
        if let Some(s) = self.slots.get(i) {
            s.store(0, Ordering::Release);
        }
    }

    /// Call every registered callback with `level`. Returns how many ran.
    pub(crate) fn run(&self, level: PressureLevel) -> usize {
        let mut n = 0;
        for s in &self.slots {
            let v = s.load(Ordering::Acquire);
            if v != 0 {
                // SAFETY: only `register` stores non-zero values, and it
                // stores a `PressureCallback` cast to usize; function
                // pointers and usize have the same size on every target
                // this crate builds for.
                let f: PressureCallback =
                    unsafe { core::mem::transmute::<usize, PressureCallback>(v) };
                f(level);
                n += 1;
            }
        }
        n
    }
}
