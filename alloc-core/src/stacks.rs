//! Interned stacks for the leak investigator (`profile.rs`): each distinct
//! stack is stored once, and a sample keeps its 4-byte id.
//!
//! Why: a sample's 32 frames written into its record are four cache lines
//! of stores to memory the program has not touched for a while, right
//! after the program's own stores (a big block being filled): measured on
//! pooled churn, writing them cost about 2 % of the time against 0.7 % for
//! the rest of the record (benches/README.md). A program samples the same
//! few call sites again and again, so the stack is almost always in this
//! table already: finding it only reads, and the thread's memo of its last
//! walk (`unwind.rs`) remembers the id, so a replayed walk needs no lookup
//! either.
//!
//! The table is lock-free and insert-only: open addressing on a hash of
//! the frames. An empty entry is claimed with one compare-and-swap (0 to
//! [`BUSY`]), filled, then published by storing its key (release). Readers
//! compare only published entries, which never change again. An entry
//! being filled by another thread is passed over (the stack may then be
//! stored twice, harmless). When the probe run is full, [`intern`](StackTable::intern)
//! gives 0 and the caller keeps the frames in the record itself.

use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// Frames a stack keeps (a sample's).
pub(crate) const FRAMES: usize = 32;
/// Entries probed from a stack's home before giving up.
const PROBES: usize = 32;
/// Key of an entry being filled.
const BUSY: u64 = 1;
/// Set in every published key, so none is 0 (empty) or [`BUSY`].
const PUBLISHED: u64 = 1 << 63;

struct Entry {
    /// 0: empty; [`BUSY`]: being filled; else the stack's hash with
    /// [`PUBLISHED`] set, stored last (release).
    key: AtomicU64,
    depth: AtomicU32,
    frames: [AtomicU64; FRAMES],
}

/// `N` stacks (a power of two); ids are entry indices plus one.
pub(crate) struct StackTable<const N: usize> {
    entries: [Entry; N],
}

/// The stack of the first `depth` frames of `frames` as a key.
fn key_of(frames: &[AtomicU64], depth: usize) -> u64 {
    let mut h = (depth as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for f in &frames[..depth] {
        h = (h ^ f.load(Ordering::Relaxed))
            .wrapping_mul(0xFF51_AFD7_ED55_8CCD)
            .rotate_left(29);
    }
    h | PUBLISHED
}

impl<const N: usize> StackTable<N> {
    const MASK: usize = {
        assert!(N.is_power_of_two());
        N - 1
    };

    /// An empty table (a `static`'s initialiser).
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        StackTable {
            entries: [const {
                Entry {
                    key: AtomicU64::new(0),
                    depth: AtomicU32::new(0),
                    frames: [const { AtomicU64::new(0) }; FRAMES],
                }
            }; N],
        }
    }

    /// An empty table (the loom models).
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        StackTable {
            entries: core::array::from_fn(|_| Entry {
                key: AtomicU64::new(0),
                depth: AtomicU32::new(0),
                frames: core::array::from_fn(|_| AtomicU64::new(0)),
            }),
        }
    }

    /// The id of the stack made of the first `depth` (at most [`FRAMES`])
    /// addresses of `frames`, storing it if it is new; 0 when its probe
    /// run is full. Any thread; never blocks.
    pub(crate) fn intern(&self, frames: &[AtomicU64], depth: usize) -> u32 {
        self.intern_as::<true, false>(frames, depth)
    }

    /// [`intern`](Self::intern) with the loom models' seeded bugs:
    /// `CLAIM_BY_CAS` false claims an empty entry by a plain store (two
    /// threads may fill one entry with different stacks);
    /// `TRUST_BUSY` true takes an entry another thread is still filling
    /// for the stack (its id may then be read before it is published).
    #[cfg(loom)]
    pub(crate) fn intern_seeded<const CLAIM_BY_CAS: bool, const TRUST_BUSY: bool>(
        &self,
        frames: &[AtomicU64],
        depth: usize,
    ) -> u32 {
        self.intern_as::<CLAIM_BY_CAS, TRUST_BUSY>(frames, depth)
    }

    fn intern_as<const CLAIM_BY_CAS: bool, const TRUST_BUSY: bool>(
        &self,
        frames: &[AtomicU64],
        depth: usize,
    ) -> u32 {
        let depth = depth.min(FRAMES).min(frames.len());
        let key = key_of(frames, depth);
        let home = (key >> 32) as usize;
        for i in 0..PROBES {
            let at = (home + i) & Self::MASK;
            let e = &self.entries[at];
            let mut k = e.key.load(Ordering::Acquire);
            if k == 0 {
                let claimed = if CLAIM_BY_CAS {
                    e.key
                        .compare_exchange(0, BUSY, Ordering::Acquire, Ordering::Acquire)
                } else {
                    e.key.store(BUSY, Ordering::Relaxed);
                    Ok(0)
                };
                match claimed {
                    Ok(_) => {
                        for (d, f) in e.frames.iter().zip(&frames[..depth]) {
                            d.store(f.load(Ordering::Relaxed), Ordering::Relaxed);
                        }
                        e.depth.store(depth as u32, Ordering::Relaxed);
                        e.key.store(key, Ordering::Release);
                        return at as u32 + 1;
                    }
                    Err(now) => k = now,
                }
            }
            if TRUST_BUSY && k == BUSY {
                return at as u32 + 1;
            }
            if k == key
                && e.depth.load(Ordering::Relaxed) as usize == depth
                && e.frames[..depth]
                    .iter()
                    .zip(&frames[..depth])
                    .all(|(a, b)| a.load(Ordering::Relaxed) == b.load(Ordering::Relaxed))
            {
                return at as u32 + 1;
            }
        }
        0
    }

    /// Copy stack `id`'s frames into `out`; its depth (0 for an id this
    /// table never gave).
    pub(crate) fn get(&self, id: u32, out: &mut [usize; FRAMES]) -> usize {
        let Some(e) = (id as usize)
            .checked_sub(1)
            .and_then(|i| self.entries.get(i))
        else {
            return 0;
        };
        if e.key.load(Ordering::Acquire) & PUBLISHED == 0 {
            return 0;
        }
        let depth = (e.depth.load(Ordering::Relaxed) as usize).min(FRAMES);
        for (o, f) in out.iter_mut().zip(&e.frames).take(depth) {
            *o = f.load(Ordering::Relaxed) as usize;
        }
        depth
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn stack(v: &[u64]) -> Vec<AtomicU64> {
        v.iter().map(|&x| AtomicU64::new(x)).collect()
    }

    #[test]
    fn the_same_stack_gets_the_same_id_and_reads_back() {
        let t: Box<StackTable<64>> = Box::new(StackTable::new());
        let a = stack(&[10, 20, 30]);
        let b = stack(&[10, 20, 31]);
        let ia = t.intern(&a, 3);
        let ib = t.intern(&b, 3);
        assert!(ia != 0 && ib != 0 && ia != ib);
        assert_eq!(t.intern(&a, 3), ia);
        // A shorter prefix is a different stack.
        let ic = t.intern(&a, 2);
        assert!(ic != 0 && ic != ia);
        let mut out = [0usize; FRAMES];
        assert_eq!(t.get(ia, &mut out), 3);
        assert_eq!(out[..3], [10, 20, 30]);
        assert_eq!(t.get(ic, &mut out), 2);
        assert_eq!(out[..2], [10, 20]);
        assert_eq!(t.get(0, &mut out), 0);
        assert_eq!(t.get(65, &mut out), 0);
    }

    #[test]
    fn a_full_table_gives_zero_and_keeps_what_it_has() {
        let t: Box<StackTable<8>> = Box::new(StackTable::new());
        let ids: Vec<u32> = (0..8).map(|i| t.intern(&stack(&[i, 1]), 2)).collect();
        assert!(ids.iter().all(|&i| i != 0));
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 8, "eight different entries");
        assert_eq!(t.intern(&stack(&[99, 1]), 2), 0, "no room");
        for (i, &id) in ids.iter().enumerate() {
            assert_eq!(t.intern(&stack(&[i as u64, 1]), 2), id);
        }
    }

    #[test]
    fn threads_interning_the_same_stacks_read_back_what_they_stored() {
        let t: &'static StackTable<256> = Box::leak(Box::new(StackTable::new()));
        let ids: Vec<Vec<u32>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(move || {
                        (0..100u64)
                            .map(|i| t.intern(&stack(&[i, i * 7, 3]), 3))
                            .collect::<Vec<u32>>()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut out = [0usize; FRAMES];
        for per_thread in &ids {
            for (i, &id) in per_thread.iter().enumerate() {
                assert_ne!(id, 0);
                assert_eq!(t.get(id, &mut out), 3);
                assert_eq!(out[..3], [i, i * 7, 3]);
            }
        }
    }
}
