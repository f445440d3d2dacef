//! Leak risk from a bounded ring of recent snapshots.
//!
//! A class is suspect when its live bytes grew in most of the recent
//! windows, by a meaningful amount; a class that freed nothing at all in
//! that time scores a little higher than one that freed something. The
//! ring holds at most [`LeakDetector::CAPACITY`] snapshots: no unbounded
//! history.

use crate::{human_bytes, Snapshot};
use std::collections::VecDeque;
use std::fmt;

/// How worried to be: the level of [`LeakReport::score`] (`Low` below 0.4,
/// `High` from 0.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LeakLevel {
    /// Live memory is flat or oscillating.
    Low,
    /// Live memory grew in many windows.
    Medium,
    /// Live memory grew in nearly every window, by a lot.
    High,
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
}

/// The leak-risk verdict, from [`LeakDetector::report`]. `Display` prints
/// it as a few lines of text.
#[derive(Clone, Debug, PartialEq)]
pub struct LeakReport {
    /// Overall score in [0, 1]: the worst class's.
    pub score: f64,
    /// Level of the score.
    pub level: LeakLevel,
    /// Classes with a score above 0.3, worst first.
    pub suspects: Vec<Suspect>,
}

/// Keeps the recent snapshots and scores them.
///
/// Record a snapshot now and then (every few seconds in a service, e.g.
/// `detector.record(pool_alloc::snapshot())`) and ask for a report:
///
/// ```
/// use alloc_stats::{ClassStats, LeakDetector, LeakLevel, Snapshot};
///
/// // The 64-byte class grows by 200 KB between snapshots and frees nothing.
/// let snap = |live: u64| Snapshot {
///     classes: vec![ClassStats {
///         block_size: 64,
///         live_requested_bytes: live,
///         ..Default::default()
///     }],
///     ..Default::default()
/// };
/// let mut detector = LeakDetector::new();
/// for i in 0..12 {
///     detector.record(snap(1_000_000 + i * 200_000));
/// }
/// let report = detector.report();
/// assert_eq!(report.level, LeakLevel::High);
/// assert_eq!(report.suspects[0].block_size, 64);
/// println!("{report}"); // "leak risk: 1.00 (High)" and the class behind it
///
/// // A class that goes up and down is no suspect.
/// let mut detector = LeakDetector::new();
/// for i in 0..12 {
///     detector.record(snap(1_000_000 + (i % 2) * 50_000));
/// }
/// assert_eq!(detector.report().level, LeakLevel::Low);
/// ```
#[derive(Default)]
pub struct LeakDetector {
    ring: VecDeque<Snapshot>,
}

impl LeakDetector {
    /// Snapshots kept.
    pub const CAPACITY: usize = 16;

    /// An empty detector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a snapshot (the oldest falls out past `CAPACITY`).
    pub fn record(&mut self, s: Snapshot) {
        if self.ring.len() == Self::CAPACITY {
            self.ring.pop_front();
        }
        self.ring.push_back(s);
    }

    /// Score the snapshots held.
    pub fn report(&self) -> LeakReport {
        let mut suspects = Vec::new();
        if self.ring.len() >= 3 {
            let first = &self.ring[0];
            let ncls = first.classes.len();
            let series = |f: &dyn Fn(&Snapshot) -> (u64, u64)| -> Option<Suspect> {
                let vals: Vec<(u64, u64)> = self.ring.iter().map(f).collect();
                score_series(&vals)
            };
            for c in 0..ncls {
                let bs = first.classes[c].block_size;
                if let Some(mut s) = series(&|s: &Snapshot| {
                    s.classes
                        .get(c)
                        .map_or((0, 0), |x| (x.live_requested_bytes, x.frees))
                }) {
                    s.block_size = bs;
                    suspects.push(s);
                }
            }
            if let Some(s) = series(&|s: &Snapshot| (s.large.live_bytes, s.large.frees)) {
                suspects.push(s);
            }
        }
        suspects.retain(|s| s.score > 0.3);
        suspects.sort_by(|a, b| b.score.total_cmp(&a.score));
        let score = suspects.first().map_or(0.0, |s| s.score);
        let level = if score >= 0.7 {
            LeakLevel::High
        } else if score >= 0.4 {
            LeakLevel::Medium
        } else {
            LeakLevel::Low
        };
        LeakReport {
            score,
            level,
            suspects,
        }
    }
}

/// Score one class from (live bytes, frees) per snapshot.
fn score_series(vals: &[(u64, u64)]) -> Option<Suspect> {
    let windows = vals.len() - 1;
    let (from, to) = (vals[0].0, vals[windows].0);
    let growing = vals.windows(2).filter(|w| w[1].0 > w[0].0).count();
    // Growth below 64 KiB, or below 10 % of where it started, is noise.
    if to <= from || to - from < 64 << 10 || (to - from) * 10 < from {
        return None;
    }
    let steadiness = growing as f64 / windows as f64;
    // NB: any free at all in the window lowers the score by 15 %; how many
    // frees, and whether they match the growth, is not looked at.
    let frees = vals[windows].1.saturating_sub(vals[0].1);
    let magnitude = ((to - from) as f64 / (from.max(1) as f64)).min(1.0);
    let churn_discount = if frees > 0 { 0.85 } else { 1.0 };
    let score = (steadiness * (0.6 + 0.4 * magnitude) * churn_discount).clamp(0.0, 1.0);
    Some(Suspect {
        block_size: 0,
        score,
        live_from: from,
        live_to: to,
        growing_windows: growing,
        windows,
    })
}

impl fmt::Display for LeakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "leak risk: {:.2} ({:?})", self.score, self.level)?;
        if self.suspects.is_empty() {
            return write!(f, "  no class grew steadily in the recent windows");
        }
        for s in &self.suspects {
            let name = if s.block_size == 0 {
                "large".to_string()
            } else {
                human_bytes(s.block_size as u64)
            };
            writeln!(
                f,
                "  class {name}: score {:.2}: live bytes grew {} -> {} in {} of {} windows",
                s.score,
                human_bytes(s.live_from),
                human_bytes(s.live_to),
                s.growing_windows,
                s.windows
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClassStats;

    fn snap(live: u64, frees: u64) -> Snapshot {
        Snapshot {
            classes: vec![ClassStats {
                block_size: 64,
                live_requested_bytes: live,
                frees,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn rises_on_steady_growth() {
        let mut d = LeakDetector::new();
        for i in 0..12u64 {
            d.record(snap(1_000_000 + i * 200_000, 5));
        }
        let r = d.report();
        assert_eq!(r.level, LeakLevel::High, "{r}");
        assert_eq!(r.suspects[0].block_size, 64);
    }

    #[test]
    fn stays_low_on_churn() {
        let mut d = LeakDetector::new();
        for i in 0..12u64 {
            let wobble = if i % 2 == 0 { 0 } else { 50_000 };
            d.record(snap(1_000_000 + wobble, i * 10_000));
        }
        let r = d.report();
        assert_eq!(r.level, LeakLevel::Low, "{r}");
        assert!(r.suspects.is_empty());
    }

    #[test]
    fn ring_is_bounded() {
        let mut d = LeakDetector::new();
        for i in 0..100 {
            d.record(snap(i, 0));
        }
        assert_eq!(d.ring.len(), LeakDetector::CAPACITY);
    }
}
