//! Page maps: page-granular runs inside a *page segment* (`segment.rs`).
//!
//! Big pooled blocks (`size_class::FIRST_PAGE_CLASS` and up) do not live
//! in class slabs. Each one is a run of 4 KiB pages sized to its request,
//! taken best-fit from the free pages of its heap's page segments, which
//! any class can use; freed runs coalesce with their free neighbours. So a
//! block holds no class-rounding tail, a freed block's pages serve the next
//! request of any size, and idle memory is given back page by page, aged
//! per 64 KiB group ([`GROUP`]). The block's class stays its accounting
//! unit in the stats.
//!
//! A [`PageMap`] is plain bookkeeping over the usable pages of one segment:
//! which pages are free, which may be committed (`dirty`), which may read
//! non-zero, each run's length at its first page, and since when the free
//! pages of each 64 KiB group have been idle ([`GROUP`]); and, at the first
//! page of each free run, a [`Node`]
//! of the size bins that `segment.rs` keeps across a set's page segments
//! (segregated fit: [`bin_of`]). It makes no system call and knows no
//! segment; the caller (`segment.rs`) holds the set's lock, links the bins
//! and does the `madvise`.

use core::sync::atomic::{AtomicU16, AtomicU32, Ordering};

/// Pages a page segment's map covers (the usable slices of a segment).
pub(crate) const PAGES: usize = 1008;
const WORDS: usize = PAGES.div_ceil(64);
/// Pages that share one idle time: a 64 KiB group (a segment slice). A
/// free stamps the groups its run covers, so a group's idle pages count as
/// idle since the group's newest free: expiry never takes a page sooner
/// than per page times would, and may keep it longer. A group that keeps
/// getting frees at least once per `max_idle` keeps its other idle pages
/// (at most 15, 60 KiB) from expiring by age at all; the retained budget,
/// the limits and explicit reclaim still take them. That is the price of
/// the speed: per page, a free of a 128-page run wrote
/// 1 KiB of times (16 cache lines, 2 % of pooled churn's time and the
/// store-buffer drain of the next locked instruction); per group, one line.
pub(crate) const GROUP: usize = 16;
const GROUPS: usize = PAGES / GROUP;
const _: () = assert!(PAGES.is_multiple_of(GROUP));

/// Set bits `i..i+n` of `map`.
fn set_range(map: &mut [u64; WORDS], i: usize, n: usize) {
    for_words(i, n, |w, m| map[w] |= m);
}

/// Clear bits `i..i+n` of `map`.
fn clear_range(map: &mut [u64; WORDS], i: usize, n: usize) {
    for_words(i, n, |w, m| map[w] &= !m);
}

/// Set bits among `i..i+n` of `map`.
fn count_range(map: &[u64; WORDS], i: usize, n: usize) -> usize {
    let mut k = 0;
    for_words(i, n, |w, m| k += (map[w] & m).count_ones() as usize);
    k
}

/// Call `f(word, mask)` for each word bits `i..i+n` touch.
#[inline(always)]
fn for_words(i: usize, n: usize, mut f: impl FnMut(usize, u64)) {
    let (mut i, end) = (i, i + n);
    while i < end {
        let b = i % 64;
        let len = (64 - b).min(end - i);
        let m = if len == 64 {
            !0
        } else {
            ((1u64 << len) - 1) << b
        };
        f(i / 64, m);
        i += len;
    }
}

/// The first set bit of `map` at or after `i`.
#[cfg(test)]
fn next_set(map: &[u64; WORDS], i: usize) -> Option<usize> {
    let mut w = i / 64;
    if w >= WORDS {
        return None;
    }
    let mut x = map[w] & (!0u64 << (i % 64));
    loop {
        if x != 0 {
            let j = w * 64 + x.trailing_zeros() as usize;
            return (j < PAGES).then_some(j);
        }
        w += 1;
        if w == WORDS {
            return None;
        }
        x = map[w];
    }
}

/// Consecutive set bits of `map` from `i` on.
fn ones_from(map: &[u64; WORDS], i: usize) -> usize {
    let mut j = i;
    while j < PAGES {
        let b = j % 64;
        let t = (!(map[j / 64] >> b)).trailing_zeros() as usize;
        let t = t.min(64 - b);
        j += t;
        if t < 64 - b {
            break;
        }
    }
    j.min(PAGES) - i
}

/// Consecutive set bits of `map` ending just before `i`.
fn ones_before(map: &[u64; WORDS], i: usize) -> usize {
    let mut j = i;
    while j > 0 {
        let b = (j - 1) % 64;
        let x = map[(j - 1) / 64] << (63 - b);
        let t = (!x).leading_zeros() as usize;
        let t = t.min(b + 1);
        j -= t;
        if t < b + 1 {
            break;
        }
    }
    i - j
}

/// Size bins of free runs: one per length up to 16 pages, then eight per
/// doubling (a bin's lengths are within 1/8 of each other).
pub(crate) const BINS: usize = 64;

/// The bin of free runs of `len` pages (`1 <= len <= PAGES`).
pub(crate) fn bin_of(len: usize) -> usize {
    debug_assert!((1..=PAGES).contains(&len));
    if len <= 16 {
        return len - 1;
    }
    let lg = (usize::BITS - 1 - len.leading_zeros()) as usize; // >= 4
    let sub = (len >> (lg - 3)) & 7;
    (16 + (lg - 4) * 8 + sub).min(BINS - 1)
}

/// A free run's place in its bin (at the run's first page): the first
/// pages of the neighbouring free runs in the bin (addresses; 0: none),
/// and the run's length.
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct Node {
    pub(crate) next: usize,
    pub(crate) prev: usize,
    pub(crate) len: usize,
}

/// What giving back a run found: its length, and the lengths of the free
/// runs just before and after it, which it now merges with.
pub(crate) struct Given {
    pub(crate) len: usize,
    pub(crate) before: usize,
    pub(crate) after: usize,
}

/// What taking a run found there.
pub(crate) struct Taken {
    /// Pages of the run that were idle committed memory.
    pub(crate) dirty: usize,
    /// Every page of the run reads as zero.
    pub(crate) zero: bool,
}

/// A run's length, sample slot and the sample's quick word
/// (`profile::quick`: what its free needs, so it never reads the record)
/// (`PageMap::runs`).
#[repr(C)]
struct RunEntry {
    len: u16,
    sample: AtomicU16,
    quick: AtomicU32,
}

/// The page bookkeeping of one page segment. Zeroed memory is not a valid
/// map: [`PageMap::init`] it first.
#[repr(C)]
pub(crate) struct PageMap {
    /// Bit i set: page i is free.
    free: [u64; WORDS],
    /// Bit i set: page i may be committed and touched.
    dirty: [u64; WORDS],
    /// Bit i set: page i may read non-zero.
    nonzero: [u64; WORDS],
    /// At a run's first page: its length in pages (0 elsewhere), and the
    /// leak investigator's sample slot of the run (0: not sampled;
    /// `profile.rs`), side by side so a free reads both from one line.
    runs: [RunEntry; PAGES],
    /// Per page: the tag (size class) of the run that last held it, so
    /// memory given back is counted per class.
    tags: [u8; PAGES],
    /// Per group of [`GROUP`] pages: when its newest free run became idle
    /// (coarse ms); its free pages count as idle since then.
    idle_since: [u64; GROUPS],
    /// At each free run's first page: its bin node (`segment.rs`).
    pub(crate) nodes: [Node; PAGES],
    /// Runs in use.
    pub(crate) live_runs: u32,
    /// Free pages.
    pub(crate) free_pages: u32,
    /// Free pages that may be committed (idle memory).
    pub(crate) idle_pages: u32,
    /// At most the oldest time of the groups holding idle pages
    /// (`u64::MAX`: none): `give` may leave it lower, exact after
    /// [`refresh_idle_min`](Self::refresh_idle_min).
    pub(crate) idle_min: u64,
}

impl PageMap {
    /// Every page free. `dirty(i)` / `nonzero(i)` say whether page i may be
    /// committed / non-zero (what the segment's slices were); dirty pages
    /// count as idle since the newest `since(i)` of their group (the
    /// caller's slices are groups: one time each).
    pub(crate) fn init(
        &mut self,
        dirty: impl Fn(usize) -> bool,
        nonzero: impl Fn(usize) -> bool,
        since: impl Fn(usize) -> u64,
    ) {
        self.free = [0; WORDS];
        set_range(&mut self.free, 0, PAGES);
        self.dirty = [0; WORDS];
        self.nonzero = [0; WORDS];
        for r in &mut self.runs {
            r.len = 0;
            r.sample.store(0, Ordering::Relaxed);
        }
        self.tags = [0; PAGES];
        self.idle_since = [0; GROUPS];
        self.idle_min = u64::MAX;
        let mut idle = 0;
        for i in 0..PAGES {
            if nonzero(i) {
                set_range(&mut self.nonzero, i, 1);
            }
            if dirty(i) {
                set_range(&mut self.dirty, i, 1);
                self.stamp(i, 1, since(i));
                idle += 1;
            }
        }
        self.refresh_idle_min();
        self.live_runs = 0;
        self.free_pages = PAGES as u32;
        self.idle_pages = idle;
    }

    /// Take pages `i..i+n` (free) as a run tagged `tag`.
    pub(crate) fn take(&mut self, i: usize, n: usize, tag: u8) -> Taken {
        let t = self.claim(i, n, tag);
        self.runs[i].sample.store(0, Ordering::Relaxed);
        self.runs[i].len = n as u16;
        self.live_runs += 1;
        t
    }

    /// Mark free pages `i..i+n` in use (by a new run or a growing one),
    /// tagged `tag`.
    fn claim(&mut self, i: usize, n: usize, tag: u8) -> Taken {
        debug_assert!(n >= 1 && i + n <= PAGES);
        debug_assert_eq!(count_range(&self.free, i, n), n, "pages not free");
        // One pass over the three maps' words (five passes, one per map
        // and question, made this the band's costliest function in
        // instructions: ~520 a run of 128 pages).
        let (mut dirty, mut nonzero) = (0, 0);
        for_words(i, n, |w, m| {
            self.free[w] &= !m;
            dirty += (self.dirty[w] & m).count_ones() as usize;
            nonzero |= self.nonzero[w] & m;
            self.dirty[w] |= m;
            self.nonzero[w] |= m;
        });
        let zero = nonzero == 0;
        self.tags[i..i + n].fill(tag);
        self.free_pages -= n as u32;
        self.idle_pages -= dirty as u32;
        Taken { dirty, zero }
    }

    /// Length of the free run starting at page `i` (0: page `i` is in use).
    pub(crate) fn free_from(&self, i: usize) -> usize {
        ones_from(&self.free, i)
    }

    /// Grow the run starting at page `i` by the `extra` free pages right
    /// after it, tagged `tag`.
    pub(crate) fn extend(&mut self, i: usize, extra: usize, tag: u8) -> Taken {
        let old = self.runs[i].len as usize;
        debug_assert!(old >= 1);
        let t = self.claim(i + old, extra, tag);
        self.runs[i].len = (old + extra) as u16;
        t
    }

    /// The sample slot of the run starting at page `i` (0: none) and, when
    /// it has one, its quick word (`profile::quick`).
    pub(crate) fn sample(&self, i: usize) -> (u16, u32) {
        let slot = self.runs[i].sample.load(Ordering::Acquire);
        if slot == 0 {
            return (0, 0);
        }
        (slot, self.runs[i].quick.load(Ordering::Relaxed))
    }

    /// Set the sample slot and quick word of the run starting at page `i`.
    /// Only the run's holder does (its allocating thread before handing it
    /// out, then whoever frees it), so plain stores: no locked instruction.
    pub(crate) fn set_sample(&self, i: usize, slot: u16, quick: u32) {
        self.runs[i].quick.store(quick, Ordering::Relaxed);
        self.runs[i].sample.store(slot, Ordering::Release);
    }

    /// Length of the run in use starting at page `i` (0: none starts there).
    pub(crate) fn run_len(&self, i: usize) -> usize {
        self.runs[i].len as usize
    }

    /// Give back the run starting at page `i`, idle since `since`. Its
    /// pages count as idle committed memory.
    pub(crate) fn give(&mut self, i: usize, since: u64) -> Given {
        let n = self.runs[i].len as usize;
        debug_assert!(n >= 1, "no run starts at page {i}");
        debug_assert_eq!(count_range(&self.free, i, n), 0, "run already free");
        self.runs[i].len = 0;
        let before = ones_before(&self.free, i);
        let after = ones_from(&self.free, i + n);
        set_range(&mut self.free, i, n);
        self.stamp(i, n, since);
        self.idle_min = self.idle_min.min(since);
        self.live_runs -= 1;
        self.free_pages += n as u32;
        self.idle_pages += n as u32;
        Given {
            len: n,
            before,
            after,
        }
    }

    /// Pages `i..i+n` became idle at `since`: their groups count as idle
    /// since it, unless a newer free stamped them already.
    fn stamp(&mut self, i: usize, n: usize, since: u64) {
        for g in &mut self.idle_since[i / GROUP..=(i + n - 1) / GROUP] {
            *g = (*g).max(since);
        }
    }

    /// Whether every page is free and none is committed.
    pub(crate) fn empty_and_clean(&self) -> bool {
        self.live_runs == 0 && self.idle_pages == 0
    }

    /// The next run, at or after page `from`, of idle pages that became
    /// idle before `cutoff` (by their group's time): `(first, len)`.
    pub(crate) fn next_expired(&self, from: usize, cutoff: u64) -> Option<(usize, usize)> {
        let mut i = from;
        while i < PAGES {
            let w = i / 64;
            let x = (self.free[w] & self.dirty[w]) >> (i % 64);
            if x == 0 {
                i = (w + 1) * 64;
                continue;
            }
            i += x.trailing_zeros() as usize;
            if self.idle_since[i / GROUP] < cutoff {
                let mut e = i + 1;
                while e < PAGES
                    && self.free[e / 64] & self.dirty[e / 64] & (1 << (e % 64)) != 0
                    && self.idle_since[e / GROUP] < cutoff
                {
                    e += 1;
                }
                return Some((i, e - i));
            }
            // The rest of this group is as young.
            i = (i / GROUP + 1) * GROUP;
        }
        None
    }

    /// Pages `i..i+n`, idle, were given back to the OS (`lazy`: with
    /// `MADV_FREE`, so they may still read non-zero). Calls `per_tag` with
    /// the tag of each page.
    pub(crate) fn decommitted(&mut self, i: usize, n: usize, lazy: bool, per_tag: impl Fn(u8)) {
        debug_assert_eq!(count_range(&self.free, i, n), n, "decommit of pages in use");
        debug_assert_eq!(count_range(&self.dirty, i, n), n, "decommit of clean pages");
        clear_range(&mut self.dirty, i, n);
        if !lazy {
            clear_range(&mut self.nonzero, i, n);
        }
        for &t in &self.tags[i..i + n] {
            per_tag(t);
        }
        self.idle_pages -= n as u32;
    }

    /// Which groups of `per_group` pages hold a page that may read
    /// non-zero: bit `1 + k` for group k (the segment's slices, counted
    /// from its first usable one).
    pub(crate) fn nonzero_groups(&self, per_group: usize) -> u64 {
        let mut out = 0;
        for k in 0..PAGES / per_group {
            if count_range(&self.nonzero, k * per_group, per_group) != 0 {
                out |= 1 << (1 + k);
            }
        }
        out
    }

    /// Recompute [`idle_min`](Self::idle_min) exactly.
    pub(crate) fn refresh_idle_min(&mut self) {
        let mut min = u64::MAX;
        for w in 0..WORDS {
            let mut x = self.free[w] & self.dirty[w];
            while x != 0 {
                let i = w * 64 + x.trailing_zeros() as usize;
                x &= x - 1;
                min = min.min(self.idle_since[i / GROUP]);
            }
        }
        self.idle_min = min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_map() -> Box<PageMap> {
        // SAFETY: PageMap is plain integers; any bit pattern is a value,
        // and `init` sets every field it relies on.
        let mut m: Box<PageMap> = unsafe { Box::new_zeroed().assume_init() };
        m.init(|_| false, |_| false, |_| 0);
        m
    }

    #[test]
    fn bit_helpers_agree_with_a_plain_scan() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..2_000 {
            let mut map = [0u64; WORDS];
            for w in &mut map {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *w = x | x >> 1; // runs of ones
            }
            map[WORDS - 1] &= (1u64 << (PAGES % 64)) - 1;
            let bit = |i: usize| i < PAGES && map[i / 64] >> (i % 64) & 1 == 1;
            let i = (x % PAGES as u64) as usize;
            let plain_from = (i..=PAGES).find(|&j| !bit(j)).unwrap() - i;
            assert_eq!(ones_from(&map, i), plain_from);
            let plain_before = (0..i).rev().take_while(|&j| bit(j)).count();
            assert_eq!(ones_before(&map, i), plain_before);
            assert_eq!(next_set(&map, i), (i..PAGES).find(|&j| bit(j)));
            let n = ((x >> 20) % 200) as usize;
            let n = n.min(PAGES - i);
            assert_eq!(
                count_range(&map, i, n),
                (i..i + n).filter(|&j| bit(j)).count()
            );
        }
    }

    #[test]
    fn bins_are_ordered_and_tight() {
        let mut last = 0;
        for len in 1..=PAGES {
            let b = bin_of(len);
            assert!(b >= last && b < BINS, "bin of {len}");
            last = b;
        }
        assert_eq!(bin_of(16), 15);
        assert_eq!(bin_of(17), 16);
        // Past 16 pages, a bin's lengths are within 1/8 of each other.
        for len in 17..PAGES {
            let same = (len..=PAGES)
                .take_while(|&l| bin_of(l) == bin_of(len))
                .count();
            assert!(same <= len / 8 + 1, "bin of {len} spans {same}");
        }
    }

    #[test]
    fn giving_back_reports_the_free_neighbours() {
        let mut m = new_map();
        m.take(0, 10, 1);
        m.take(10, 5, 1);
        m.take(15, 20, 1);
        let g = m.give(0, 1);
        assert_eq!((g.len, g.before, g.after), (10, 0, 0));
        let g = m.give(15, 1);
        assert_eq!((g.len, g.before, g.after), (20, 0, PAGES - 35));
        let g = m.give(10, 2);
        assert_eq!((g.len, g.before, g.after), (5, 10, PAGES - 15));
        assert_eq!(m.live_runs, 0);
        assert_eq!(m.free_pages as usize, PAGES);
        assert_eq!(m.idle_pages, 35, "pages once taken are idle memory");
    }

    #[test]
    fn a_run_grows_into_the_free_pages_after_it() {
        let mut m = new_map();
        m.take(0, 4, 1);
        m.take(10, 2, 1);
        assert_eq!(m.free_from(4), 6);
        assert_eq!(m.free_from(10), 0);
        let t = m.extend(0, 6, 2);
        assert!(t.zero && t.dirty == 0);
        assert_eq!(m.run_len(0), 10);
        assert_eq!(m.free_from(10), 0);
        assert_eq!(m.live_runs, 2);
        assert_eq!(m.free_pages as usize, PAGES - 12);
        let g = m.give(0, 1);
        assert_eq!((g.len, g.before, g.after), (10, 0, 0));
    }

    #[test]
    fn taking_reports_dirty_and_zero_pages() {
        let mut m = new_map();
        let t = m.take(0, 4, 3);
        assert!(t.zero && t.dirty == 0, "fresh pages are zero and clean");
        m.give(0, 5);
        let t = m.take(2, 4, 3);
        assert_eq!(t.dirty, 2, "pages 2 and 3 were idle");
        assert!(!t.zero);
        assert_eq!(m.idle_pages, 2);
    }

    #[test]
    fn expiry_finds_idle_runs_by_age_and_decommit_clears_them() {
        let mut m = new_map();
        // One run in each of three groups.
        for i in [0, GROUP, 2 * GROUP] {
            m.take(i, 4, 7);
        }
        m.give(0, 10);
        m.give(GROUP, 20);
        m.give(2 * GROUP, 30);
        assert_eq!(m.next_expired(0, 25), Some((0, 4)));
        assert_eq!(m.next_expired(4, 25), Some((GROUP, 4)));
        assert_eq!(m.next_expired(GROUP + 4, 25), None);
        let tagged = core::cell::Cell::new(0);
        for i in [0, GROUP] {
            m.decommitted(i, 4, false, |t| {
                assert_eq!(t, 7);
                tagged.set(tagged.get() + 1)
            });
        }
        assert_eq!(tagged.get(), 8);
        assert_eq!(m.idle_pages, 4);
        m.refresh_idle_min();
        assert_eq!(m.idle_min, 30);
        assert_eq!(m.next_expired(0, u64::MAX), Some((2 * GROUP, 4)));
        // Pages given back with DONTNEED read as zero again.
        assert!(m.take(0, 4, 1).zero);
    }

    #[test]
    fn a_group_ages_from_its_newest_free() {
        let mut m = new_map();
        m.take(0, 4, 7);
        m.take(4, 4, 7);
        m.take(GROUP - 1, 2, 7); // spans groups 0 and 1
        m.give(0, 10);
        assert_eq!(m.next_expired(0, 15), Some((0, 4)));
        // A younger free in the same group: the older pages wait for it.
        m.give(4, 20);
        assert_eq!(m.next_expired(0, 15), None);
        assert_eq!(m.next_expired(0, 25), Some((0, 8)));
        // A run across a group boundary stamps both groups.
        m.give(GROUP - 1, 40);
        assert_eq!(m.next_expired(0, 25), None);
        assert_eq!(m.next_expired(0, 45), Some((0, 8)));
        assert_eq!(m.next_expired(8, 45), Some((GROUP - 1, 2)));
        m.refresh_idle_min();
        assert_eq!(m.idle_min, 40);
    }

    #[test]
    fn idle_min_stays_a_lower_bound_until_refreshed() {
        let mut m = new_map();
        m.take(0, 4, 7);
        m.take(4, 4, 7);
        m.give(0, 10);
        m.give(4, 20);
        // Group 0 now counts as idle since 20; 10 is still below it.
        assert!(m.idle_min <= 20);
        assert_eq!(m.next_expired(0, 20), None);
        m.refresh_idle_min();
        assert_eq!(m.idle_min, 20);
    }

    #[test]
    fn the_last_group_expires_to_the_end_of_the_map() {
        let mut m = new_map();
        m.take(PAGES - GROUP, GROUP, 1);
        m.give(PAGES - GROUP, 5);
        assert_eq!(m.next_expired(PAGES - 3, 10), Some((PAGES - 3, 3)));
        assert_eq!(m.next_expired(0, 10), Some((PAGES - GROUP, GROUP)));
        assert_eq!(m.next_expired(PAGES - 1, 5), None);
        assert_eq!(m.next_expired(PAGES, 10), None);
    }
}
