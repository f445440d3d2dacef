//! Leak risk from a [`History`] of snapshots.
//!
//! A leak is live memory that keeps growing, for a long time, and is still
//! growing now. A cache filling up to its bound grows too, but stops; a
//! working set being built grows too, but briefly, and is then freed; a
//! steady workload with churn goes up and down. The model scores each
//! class's live bytes over the history with four factors, each in [0, 1]:
//!
//! * **trend**: the Mann-Kendall statistic of the series (the sign of every
//!   later-minus-earlier pair, normalised): random churn gives |Z| around 1,
//!   a steady climb Z above 4. `trend = (Z - 1.5) / 2.5`, clamped.
//! * **magnitude**: net growth over the window against the larger of
//!   1 MiB and a tenth of the class's live bytes: small wobbles of big
//!   classes are not leaks.
//! * **persistence**: growth over the last 5 windows against the window's
//!   average rate: a cache that levelled off scores 0 here within 5 windows.
//! * **duration**: how long it has been growing: the windows since the
//!   window's lowest point, less 5, over 15. Ten windows of growth score a
//!   third here, so a working set built for ten seconds and then freed is
//!   at most medium; twenty windows score fully.
//!
//! The score is their product; the level is low below 0.3, medium below
//! 0.6, high below 0.85, critical above. The report names the classes, says
//! in words what they did (growth, over how long, in how many windows,
//! allocations against frees) and what to look at.

use crate::{human_bytes, History, Snapshot};
use std::fmt;

/// How worried to be: the level of [`LeakReport::score`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LeakLevel {
    /// Below 0.3: live memory is flat, oscillating, or levelled off.
    Low,
    /// From 0.3: growth, but not yet steady, long or large enough.
    Medium,
    /// From 0.6: steady, significant growth that is still going on.
    High,
    /// From 0.85: all of the above, strongly.
    Critical,
}

impl LeakLevel {
    /// The level of a score in [0, 1].
    pub fn of(score: f64) -> LeakLevel {
        if score >= 0.85 {
            LeakLevel::Critical
        } else if score >= 0.6 {
            LeakLevel::High
        } else if score >= 0.3 {
            LeakLevel::Medium
        } else {
            LeakLevel::Low
        }
    }
}

/// One class behind the score, in [`LeakReport::suspects`].
#[derive(Clone, Debug, PartialEq)]
pub struct Suspect {
    /// Block size of the class (0 for the large band).
    pub block_size: usize,
    /// The class's score in [0, 1].
    pub score: f64,
    /// Live requested bytes at the start and end of the window.
    pub live_from: u64,
    /// See `live_from`.
    pub live_to: u64,
    /// Windows (of `windows`) in which live bytes grew.
    pub growing_windows: usize,
    /// Windows observed.
    pub windows: usize,
    /// Milliseconds the window spans.
    pub span_ms: u64,
    /// Allocations and frees of the class over the window.
    pub allocs: u64,
    /// See `allocs`.
    pub frees: u64,
    /// The factors of the score: trend, magnitude, persistence, duration.
    pub factors: [f64; 4],
}

impl Suspect {
    /// The class's name as the table prints it.
    pub fn class_name(&self) -> String {
        if self.block_size == 0 {
            "large".to_string()
        } else {
            human_bytes(self.block_size as u64)
        }
    }

    /// What the class did, in words a user can act on.
    pub fn reason(&self) -> String {
        let grew = self.live_to.saturating_sub(self.live_from);
        let secs = self.span_ms as f64 / 1000.0;
        let mut r = format!(
            "class {} grew {} over {:.0} s ({} -> {}) in {} of {} windows",
            self.class_name(),
            human_bytes(grew),
            secs,
            human_bytes(self.live_from),
            human_bytes(self.live_to),
            self.growing_windows,
            self.windows
        );
        if self.frees == 0 {
            r.push_str(", and freed nothing");
        } else {
            let kept = self.allocs.saturating_sub(self.frees);
            r.push_str(&format!(
                ", allocating {} blocks and freeing {}: {} kept ({:.0}/s)",
                self.allocs,
                self.frees,
                kept,
                kept as f64 / secs.max(0.001)
            ));
        }
        if self.factors[2] >= 0.8 {
            r.push_str("; it is still growing");
        }
        r
    }
}

/// The leak-risk verdict, from [`LeakDetector::report`] or [`assess`].
/// `Display` prints it as a few lines of text.
#[derive(Clone, Debug, PartialEq)]
pub struct LeakReport {
    /// Overall score in [0, 1]: the worst class's.
    pub score: f64,
    /// Level of the score.
    pub level: LeakLevel,
    /// Classes with a score from 0.1, worst first.
    pub suspects: Vec<Suspect>,
    /// What to do about it.
    pub recommendations: Vec<String>,
}

/// Score the snapshots of `history` (oldest first).
pub fn assess(history: &History) -> LeakReport {
    let snaps: Vec<&Snapshot> = history.iter().collect();
    let mut suspects = Vec::new();
    if snaps.len() >= 4 {
        let ncls = snaps[snaps.len() - 1].classes.len();
        for c in 0..ncls {
            let series: Vec<Point> = snaps
                .iter()
                .map(|s| {
                    s.classes.get(c).map_or(Point::at(s), |x| Point {
                        t: s.taken_at_ms,
                        live: x.live_requested_bytes,
                        allocs: x.allocs,
                        frees: x.frees,
                    })
                })
                .collect();
            if let Some(mut s) = score_series(&series) {
                s.block_size = snaps[snaps.len() - 1].classes[c].block_size;
                suspects.push(s);
            }
        }
        let large: Vec<Point> = snaps
            .iter()
            .map(|s| Point {
                t: s.taken_at_ms,
                live: s.large.live_bytes,
                allocs: s.large.allocs,
                frees: s.large.frees,
            })
            .collect();
        if let Some(s) = score_series(&large) {
            suspects.push(s);
        }
    }
    suspects.retain(|s| s.score >= 0.1);
    suspects.sort_by(|a, b| b.score.total_cmp(&a.score));
    let score = suspects.first().map_or(0.0, |s| s.score);
    let level = LeakLevel::of(score);
    let mut recommendations = Vec::new();
    if level >= LeakLevel::Medium {
        let top = &suspects[0];
        recommendations.push(format!(
            "look for what allocates {} blocks and keeps them: a map or Vec that \
             only grows, a cache without a bound, a channel nobody drains, Rc cycles",
            top.class_name()
        ));
        recommendations.push(
            "if it is a cache, give it a bound: the risk falls back to low \
             within 5 windows once growth stops"
                .to_string(),
        );
    }
    LeakReport {
        score,
        level,
        suspects,
        recommendations,
    }
}

#[derive(Clone, Copy)]
struct Point {
    t: u64,
    live: u64,
    allocs: u64,
    frees: u64,
}

impl Point {
    fn at(s: &Snapshot) -> Point {
        Point {
            t: s.taken_at_ms,
            live: 0,
            allocs: 0,
            frees: 0,
        }
    }
}

/// Windows of growth the model asks for before the duration factor is
/// full: a grace of 5 windows plus 15.
pub const WINDOWS_FOR_HIGH: usize = GROWTH_GRACE + 15;
/// Windows of growth that count for nothing.
const GROWTH_GRACE: usize = 5;
/// Recent windows that must still grow.
const RECENT: usize = 5;

/// The Mann-Kendall Z of `v` (0 for a flat or too short series).
fn mann_kendall_z(v: &[u64]) -> f64 {
    let n = v.len();
    let mut s: i64 = 0;
    for i in 0..n {
        for j in i + 1..n {
            s += (v[j] > v[i]) as i64 - (v[j] < v[i]) as i64;
        }
    }
    let nf = n as f64;
    let var = nf * (nf - 1.0) * (2.0 * nf + 5.0) / 18.0;
    if var <= 0.0 || s == 0 {
        return 0.0;
    }
    let s = s as f64;
    (s - s.signum()) / var.sqrt()
}

/// Score one series (oldest first); None when it did not grow.
fn score_series(p: &[Point]) -> Option<Suspect> {
    let n = p.len();
    let windows = n - 1;
    let (from, to) = (p[0].live, p[windows].live);
    if to <= from {
        return None;
    }
    let live: Vec<u64> = p.iter().map(|x| x.live).collect();
    let net = (to - from) as f64;
    let z = mann_kendall_z(&live);
    let trend = ((z - 1.5) / 2.5).clamp(0.0, 1.0);
    let max_live = live.iter().copied().max().unwrap_or(0) as f64;
    let magnitude = (net / (1024.0 * 1024.0f64).max(max_live / 10.0)).clamp(0.0, 1.0);
    let r = RECENT.min(windows);
    let recent = live[windows] as f64 - live[windows - r] as f64;
    let persistence = (recent / (r as f64 * net / windows as f64)).clamp(0.0, 1.0);
    // Growing since the window's lowest point (its last occurrence).
    let low = live
        .iter()
        .enumerate()
        .rev()
        .min_by_key(|&(_, v)| *v)
        .map_or(0, |(i, _)| i);
    let growing_for = windows - low;
    let duration = (growing_for.saturating_sub(GROWTH_GRACE) as f64
        / (WINDOWS_FOR_HIGH - GROWTH_GRACE) as f64)
        .clamp(0.0, 1.0);
    let score = trend * magnitude * persistence * duration;
    Some(Suspect {
        block_size: 0,
        score,
        live_from: from,
        live_to: to,
        growing_windows: live.windows(2).filter(|w| w[1] > w[0]).count(),
        windows,
        span_ms: p[windows].t.saturating_sub(p[0].t),
        allocs: p[windows].allocs.saturating_sub(p[0].allocs),
        frees: p[windows].frees.saturating_sub(p[0].frees),
        factors: [trend, magnitude, persistence, duration],
    })
}

/// Keeps a [`History`] and scores it: record a snapshot now and then (every
/// second or few in a service, e.g. `detector.record(pool_alloc::snapshot())`,
/// or let `pool_alloc::Sampler` do it) and ask for a report.
///
/// ```
/// use alloc_stats::{ClassStats, LeakDetector, LeakLevel, Snapshot};
///
/// // The 64-byte class grows by 200 KB a second and frees nothing.
/// let snap = |t: u64, live: u64| Snapshot {
///     taken_at_ms: t * 1000,
///     classes: vec![ClassStats {
///         block_size: 64,
///         live_requested_bytes: live,
///         ..Default::default()
///     }],
///     ..Default::default()
/// };
/// let mut detector = LeakDetector::new();
/// for t in 0..20 {
///     detector.record(snap(t, 1_000_000 + t * 200_000));
/// }
/// let report = detector.report();
/// assert!(report.level >= LeakLevel::High);
/// assert_eq!(report.suspects[0].block_size, 64);
/// println!("{report}"); // the score, the class, why, and what to look at
///
/// // A class that goes up and down is no suspect.
/// let mut detector = LeakDetector::new();
/// for t in 0..20 {
///     detector.record(snap(t, 1_000_000 + (t % 2) * 50_000));
/// }
/// assert_eq!(detector.report().level, LeakLevel::Low);
/// ```
#[derive(Clone, Debug)]
pub struct LeakDetector {
    history: History,
}

impl Default for LeakDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl LeakDetector {
    /// Snapshots kept by [`LeakDetector::new`].
    pub const CAPACITY: usize = 32;

    /// A detector over the last [`Self::CAPACITY`] snapshots.
    pub fn new() -> Self {
        Self::with_capacity(Self::CAPACITY)
    }

    /// A detector over the last `capacity` snapshots.
    pub fn with_capacity(capacity: usize) -> Self {
        LeakDetector {
            history: History::with_capacity(capacity),
        }
    }

    /// Add a snapshot (the oldest falls out when full).
    pub fn record(&mut self, s: Snapshot) {
        self.history.record(s);
    }

    /// Refill the oldest slot in place (no allocation once every slot was
    /// used), e.g. `d.record_with(pool_alloc::snapshot_into)`.
    pub fn record_with(&mut self, fill: impl FnOnce(&mut Snapshot)) {
        self.history.record_with(fill);
    }

    /// The snapshots held.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// Score the snapshots held.
    pub fn report(&self) -> LeakReport {
        assess(&self.history)
    }
}

impl fmt::Display for LeakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "leak risk: {:.2} ({:?})", self.score, self.level)?;
        if self.suspects.is_empty() {
            return write!(f, "  no class grew steadily in the recent windows");
        }
        for s in self.suspects.iter().take(5) {
            writeln!(f, "  {:.2}  {}", s.score, s.reason())?;
        }
        for r in &self.recommendations {
            writeln!(f, "  -> {r}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The model on simulated workloads: one snapshot per simulated second,
    //! a churning background of classes, and the class under test.
    use super::*;
    use crate::ClassStats;
    use test_support::rng::XorShift;

    const MIB: f64 = 1024.0 * 1024.0;

    /// A simulated process: 8 churning classes around steady levels, and
    /// class 9 whose live bytes follow `target(second)`.
    struct Sim {
        rng: XorShift,
        t: u64,
        classes: Vec<ClassStats>,
    }

    impl Sim {
        fn new(seed: u64) -> Self {
            let classes = (0..10)
                .map(|c| ClassStats {
                    class: c,
                    block_size: 16 << c,
                    ..Default::default()
                })
                .collect();
            Sim {
                rng: XorShift(seed | 1),
                t: 0,
                classes,
            }
        }

        /// One second: churn everywhere (about 8 MiB live per class,
        /// +-3 %), and class 9 moved to `target` bytes.
        fn second(&mut self, target: f64) -> Snapshot {
            self.t += 1;
            for c in 0..9 {
                let k = &mut self.classes[c];
                let level = 8.0 * MIB * (1.0 + 0.03 * (2.0 * self.rng.unit() - 1.0));
                let blocks = 1000 + (self.rng.unit() * 1000.0) as u64;
                k.allocs += blocks;
                k.frees += blocks;
                k.live_requested_bytes = level as u64;
            }
            let k = &mut self.classes[9];
            let churn = 2000;
            let now = k.live_requested_bytes as f64;
            let noise = 64.0 * 1024.0 * (2.0 * self.rng.unit() - 1.0);
            let next = (target + noise).max(0.0);
            let delta_blocks = ((next - now) / k.block_size as f64) as i64;
            k.allocs += churn + delta_blocks.max(0) as u64;
            k.frees += churn + (-delta_blocks).max(0) as u64;
            k.live_requested_bytes = next as u64;
            Snapshot {
                taken_at_ms: self.t * 1000,
                classes: self.classes.clone(),
                ..Default::default()
            }
        }
    }

    #[test]
    fn a_leak_inside_churn_reaches_high_within_30_seconds_and_names_its_class() {
        let mut sim = Sim::new(7);
        let mut d = LeakDetector::new();
        let mut reached = None;
        for s in 0..30u64 {
            // 1 MiB/s on top of 4 MiB.
            d.record(sim.second(4.0 * MIB + s as f64 * MIB));
            if d.report().level >= LeakLevel::High {
                reached = Some(s);
                break;
            }
        }
        let r = d.report();
        assert!(reached.is_some(), "high within 30 s: {r}");
        assert_eq!(r.suspects[0].block_size, 16 << 9, "{r}");
        assert!(r.to_string().contains("still growing"), "{r}");
        assert!(!r.recommendations.is_empty());
    }

    #[test]
    fn steady_churn_for_ten_minutes_stays_low() {
        let mut sim = Sim::new(11);
        let mut d = LeakDetector::new();
        for _ in 0..600 {
            d.record(sim.second(6.0 * MIB));
            let r = d.report();
            assert_eq!(r.level, LeakLevel::Low, "{r}");
        }
    }

    #[test]
    fn a_cache_that_levels_off_is_back_to_low_within_5_windows() {
        let mut sim = Sim::new(13);
        let mut d = LeakDetector::new();
        // Fills from 0 to 60 MiB over 60 s, then holds.
        for s in 0..60u64 {
            d.record(sim.second(s as f64 * MIB));
        }
        for w in 1..=5 {
            d.record(sim.second(60.0 * MIB));
            if w == 5 {
                let r = d.report();
                assert_eq!(
                    r.level,
                    LeakLevel::Low,
                    "5 windows after levelling off: {r}"
                );
            }
        }
        for _ in 0..60 {
            d.record(sim.second(60.0 * MIB));
            assert_eq!(d.report().level, LeakLevel::Low);
        }
    }

    #[test]
    fn growing_then_freeing_everything_never_goes_above_medium() {
        let mut sim = Sim::new(17);
        let mut d = LeakDetector::new();
        // Steady, then a working set built over 10 s, then all freed.
        let plan = (0..30)
            .map(|_| 2.0 * MIB)
            .chain((1..=10).map(|s| 2.0 * MIB + s as f64 * 3.0 * MIB))
            .chain((0..40).map(|_| 0.0));
        for target in plan {
            d.record(sim.second(target));
            let r = d.report();
            assert!(r.level <= LeakLevel::Medium, "{r}");
        }
    }

    #[test]
    fn the_history_is_bounded() {
        let mut d = LeakDetector::with_capacity(8);
        let mut sim = Sim::new(3);
        for _ in 0..100 {
            d.record(sim.second(MIB));
        }
        assert_eq!(d.history().len(), 8);
    }
}
