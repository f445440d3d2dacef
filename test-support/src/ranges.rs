//! The live blocks as address ranges in a `BTreeMap` (start -> end), so a
//! new block is checked against every live one in O(log n): ranges in the
//! map are disjoint, so only the last one starting below the new block's
//! end can overlap it.

use std::collections::BTreeMap;

/// Disjoint, non-empty address ranges of live blocks.
#[derive(Debug, Default)]
pub struct LiveRanges {
    ends: BTreeMap<usize, usize>,
}

impl LiveRanges {
    /// No live ranges.
    pub fn new() -> Self {
        Self::default()
    }

    /// The live range `[start, end)` that overlaps `[start, start + len)`,
    /// if any.
    pub fn overlapping(&self, start: usize, len: usize) -> Option<(usize, usize)> {
        let end = start + len;
        let (&s, &e) = self.ends.range(..end).next_back()?;
        (e > start).then_some((s, e))
    }

    /// Record a new live block `[start, start + len)`. Panics if `len` is 0
    /// or the block overlaps a live one.
    #[track_caller]
    pub fn insert(&mut self, start: usize, len: usize) {
        assert!(len > 0, "empty range at {start:#x}");
        if let Some((s, e)) = self.overlapping(start, len) {
            panic!(
                "block {start:#x}..{:#x} overlaps the live block {s:#x}..{e:#x}",
                start + len
            );
        }
        self.ends.insert(start, start + len);
    }

    /// Forget the live block starting at `start`; returns its length.
    /// Panics if no live block starts there.
    #[track_caller]
    pub fn remove(&mut self, start: usize) -> usize {
        let end = self
            .ends
            .remove(&start)
            .unwrap_or_else(|| panic!("no live block starts at {start:#x}"));
        end - start
    }

    /// Live ranges held.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether no range is held.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_kind_of_overlap() {
        let mut r = LiveRanges::new();
        r.insert(100, 50); // 100..150
        r.insert(200, 10); // 200..210
        r.insert(150, 50); // touching both: fine
        assert_eq!(r.overlapping(90, 10), None);
        assert_eq!(r.overlapping(90, 11), Some((100, 150)));
        assert_eq!(r.overlapping(149, 1), Some((100, 150)));
        assert_eq!(r.overlapping(120, 200), Some((200, 210)));
        assert_eq!(r.overlapping(210, 5), None);
        assert_eq!(r.overlapping(205, 1), Some((200, 210)));
        assert_eq!(r.remove(150), 50);
        assert_eq!(r.overlapping(150, 50), None);
        assert_eq!(r.len(), 2);
        let dup = std::panic::catch_unwind(move || r.insert(100, 1));
        assert!(dup.is_err(), "same start overlaps");
    }
}
