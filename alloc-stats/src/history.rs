//! A bounded ring of recent snapshots: the history the leak-risk model
//! reads.
//!
//! Its capacity is fixed when it is made and every slot is made then too;
//! [`History::record_with`] refills the oldest slot in place, so once each
//! slot has held one snapshot, sampling allocates nothing (a snapshot's
//! class table is reused, see `pool_alloc::snapshot_into`).

use crate::Snapshot;

/// The last `capacity` snapshots, oldest first.
///
/// ```
/// use alloc_stats::{History, Snapshot};
///
/// let mut h = History::with_capacity(3);
/// for t in 0..5u64 {
///     h.record_with(|s| {
///         s.taken_at_ms = t * 1000;
///         s.live_bytes = t;
///     });
/// }
/// assert_eq!(h.len(), 3);
/// let times: Vec<u64> = h.iter().map(|s| s.taken_at_ms).collect();
/// assert_eq!(times, [2000, 3000, 4000]);
/// assert_eq!(h.latest().unwrap().live_bytes, 4);
/// ```
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct History {
    slots: Vec<Snapshot>,
    /// Index of the oldest snapshot.
    head: usize,
    len: usize,
}

impl History {
    /// An empty history of `capacity` snapshots (at least 2), every slot
    /// made now with room for a class table of 64 rows.
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(2);
        let slots = (0..capacity)
            .map(|_| Snapshot {
                classes: Vec::with_capacity(64),
                ..Snapshot::default()
            })
            .collect();
        History {
            slots,
            head: 0,
            len: 0,
        }
    }

    /// Snapshots it holds at most.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Snapshots it holds now.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Refill the next slot (the oldest once full) in place with `fill`,
    /// which gets the slot's previous contents to overwrite.
    pub fn record_with(&mut self, fill: impl FnOnce(&mut Snapshot)) {
        let cap = self.slots.len();
        let i = if self.len < cap {
            self.len += 1;
            (self.head + self.len - 1) % cap
        } else {
            let i = self.head;
            self.head = (self.head + 1) % cap;
            i
        };
        fill(&mut self.slots[i]);
    }

    /// Add a snapshot made elsewhere (the oldest falls out when full).
    pub fn record(&mut self, s: Snapshot) {
        self.record_with(|slot| *slot = s);
    }

    /// The snapshots, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Snapshot> + ExactSizeIterator {
        let cap = self.slots.len();
        (0..self.len).map(move |k| &self.slots[(self.head + k) % cap])
    }

    /// The newest snapshot.
    pub fn latest(&self) -> Option<&Snapshot> {
        self.iter().next_back()
    }

    /// Milliseconds from the last snapshot in which class `class` had
    /// allocated more than in the one before it, to the newest snapshot:
    /// how long the class has not allocated, at the sampling resolution.
    /// None when it allocated in no window held.
    pub fn since_last_alloc_ms(&self, class: usize) -> Option<u64> {
        let newest = self.latest()?.taken_at_ms;
        let snaps: Vec<&Snapshot> = self.iter().collect();
        snaps.windows(2).rev().find_map(|w| {
            let (a, b) = (w[0].classes.get(class)?, w[1].classes.get(class)?);
            (b.allocs > a.allocs).then(|| newest.saturating_sub(w[1].taken_at_ms))
        })
    }

    /// Forget every snapshot (the slots are kept).
    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest_in_order_and_reuses_slots() {
        let mut h = History::with_capacity(4);
        assert!(h.is_empty() && h.latest().is_none());
        for t in 0..10u64 {
            h.record_with(|s| {
                s.taken_at_ms = t;
                s.classes.clear();
                s.classes.push(Default::default());
            });
        }
        assert_eq!(h.len(), 4);
        let t: Vec<u64> = h.iter().map(|s| s.taken_at_ms).collect();
        assert_eq!(t, [6, 7, 8, 9]);
        // The class tables were reused: still the capacity made up front.
        assert!(h.iter().all(|s| s.classes.capacity() == 64));
        h.clear();
        assert!(h.is_empty());
    }

    #[test]
    fn time_since_a_class_last_allocated() {
        let mut h = History::with_capacity(8);
        for (t, allocs) in [(0u64, 1u64), (1000, 5), (2000, 9), (3000, 9), (4000, 9)] {
            h.record_with(|s| {
                s.taken_at_ms = t;
                s.classes.clear();
                s.classes.push(crate::ClassStats {
                    allocs,
                    ..Default::default()
                });
            });
        }
        assert_eq!(h.since_last_alloc_ms(0), Some(2000));
        assert_eq!(h.since_last_alloc_ms(1), None);
    }
}
