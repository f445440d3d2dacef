//! loom models of the lock-free structures (`--cfg loom` only).
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p alloc-core
//! --lib --release --target-dir target/loom` (see `scripts/loom.sh`).
//!
//! Every racing operation runs in a spawned thread; the main thread only
//! sets up, joins and checks (loom issue #392). Each model also runs
//! against a copy of its structure with a seeded bug, expected to fail, so
//! a model that checks nothing is caught.
//!
//! Also: heap hand-over on thread exit (abandon, then adoption or a sweep)
//! and stats aggregation (single-writer counters summed by a snapshot
//! thread: monotone while running, exact at quiescence).
//!
//! Also: the segment-set lock (a heap's thread waits, the reclaimer only
//! tries; changes under it are ordered) and pressure callbacks firing once
//! per cooldown when two samplers race.
//!
//! Covered: the remote-free stack (`ThreadFree`: many pushers, owner takes
//! all), the delayed hand-off protocol of full slabs (remote claim vs owner
//! un-full), the heap's delayed list (`DelayedList`) and the mapping cache
//! (`SlotCache`), the sample table's free-slot stack (`SlotStack`, against
//! ABA) and its records' sequence locks (`Seq`).

use crate::cache::SlotCache;
use crate::counters::HeapCounters;
use crate::handoff::{HeapState, SetLock};
use crate::pressure::{PressureLevel, PressureState};
use crate::remote::{Block, DelayedList, Pushed, ThreadFree, NO_DELAYED};
use crate::sync::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

fn new_block() -> usize {
    Box::into_raw(Box::new(Block::unlinked())) as usize
}

/// Walk a list, returning its nodes (and freeing nothing: blocks are
/// reclaimed by `free_blocks`).
fn list(mut b: *mut Block) -> Vec<usize> {
    let mut v = Vec::new();
    while !b.is_null() {
        v.push(b as usize);
        // SAFETY: nodes are live boxes made by `new_block`.
        b = unsafe { Block::next(b) };
    }
    v
}

fn free_blocks(v: &[usize]) {
    for &b in v {
        // SAFETY: each block was made by `new_block` and is freed once (the
        // caller checked there are no duplicates).
        drop(unsafe { Box::from_raw(b as *mut Block) });
    }
}

fn assert_exactly_once(seen: &mut Vec<usize>, expected: &[usize]) {
    seen.sort_unstable();
    let mut want = expected.to_vec();
    want.sort_unstable();
    assert_eq!(*seen, want, "every block exactly once");
}

/// A multi-producer, take-all list.
trait TakeAll: Send + Sync + 'static {
    fn make() -> Self;
    /// # Safety
    /// `b` is an owned block handed over.
    unsafe fn push_block(&self, b: *mut Block);
    fn take(&self) -> *mut Block;
}

impl TakeAll for ThreadFree {
    fn make() -> Self {
        ThreadFree::new()
    }
    /// # Safety
    /// * `b` is an owned block handed over.
    unsafe fn push_block(&self, b: *mut Block) {
        // SAFETY: caller contract: `b` is ours to hand over, which is all
        // `push` asks.
        let r = unsafe { self.push(b) };
        assert_eq!(r, Pushed::Done, "never full in this model");
    }
    fn take(&self) -> *mut Block {
        let (l, n) = self.take_counted();
        assert_eq!(
            n as usize,
            list(l).len(),
            "the stack word counts its blocks"
        );
        l
    }
}

impl TakeAll for DelayedList {
    fn make() -> Self {
        DelayedList::new()
    }
    /// # Safety
    /// * `b` is an owned block handed over.
    unsafe fn push_block(&self, b: *mut Block) {
        // SAFETY: caller contract: `b` is ours to hand over, which is all
        // `push` asks.
        unsafe { self.push(b) }
    }
    fn take(&self) -> *mut Block {
        self.take_all()
    }
}

/// Seeded bug: take-all as a load and a separate store (not one atomic
/// swap): a push between them is lost.
struct LoadStoreList(AtomicUsize);

impl TakeAll for LoadStoreList {
    fn make() -> Self {
        LoadStoreList(AtomicUsize::new(0))
    }
    /// # Safety
    /// * `b` is an owned block handed over.
    unsafe fn push_block(&self, b: *mut Block) {
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            // SAFETY: we own `b` until published.
            unsafe { Block::set_next(b, cur as *mut Block) };
            match self
                .0
                .compare_exchange(cur, b as usize, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(now) => cur = now,
            }
        }
    }
    fn take(&self) -> *mut Block {
        let v = self.0.load(Ordering::Acquire);
        self.0.store(0, Ordering::Release); // BUG
        v as *mut Block
    }
}

/// Two threads push, the owner takes concurrently; nothing lost or doubled.
fn model_push_take<L: TakeAll>() {
    loom::model(|| {
        let l = Arc::new(L::make());
        let blocks = [new_block(), new_block()];
        let pushers: Vec<_> = blocks
            .iter()
            .map(|&b| {
                let l = Arc::clone(&l);
                // SAFETY: each thread hands over its own block.
                thread::spawn(move || unsafe { l.push_block(b as *mut Block) })
            })
            .collect();
        let owner = {
            let l = Arc::clone(&l);
            thread::spawn(move || list(l.take()))
        };
        for p in pushers {
            p.join().unwrap();
        }
        let mut seen = owner.join().unwrap();
        seen.extend(list(l.take()));
        assert_exactly_once(&mut seen, &blocks);
        free_blocks(&blocks);
    });
}

#[test]
fn thread_free_many_pushers_owner_takes_all() {
    model_push_take::<ThreadFree>();
}

#[test]
fn delayed_list_many_pushers_owner_takes_all() {
    model_push_take::<DelayedList>();
}

#[test]
#[should_panic(expected = "every block exactly once")]
fn seeded_bug_take_all_without_swap_loses_blocks() {
    model_push_take::<LoadStoreList>();
}

/// The delayed hand-off: the owner marks the slab full while a remote
/// thread frees a block of it; then the owner leaves the full state and
/// collects. The block must end up exactly once on the slab's stack, in
/// the owner's hands, or on the heap's delayed list; the owner must never
/// leave `clear_delayed` while a hand-off is in flight.
fn model_delayed(buggy_clear: bool) {
    loom::model(move || {
        let tf = Arc::new(ThreadFree::new());
        let heap = Arc::new(DelayedList::new());
        let b = new_block();
        let remote = {
            let (tf, heap) = (Arc::clone(&tf), Arc::clone(&heap));
            thread::spawn(move || {
                let blk = b as *mut Block;
                // SAFETY: the remote thread owns `blk` and hands it over.
                unsafe {
                    if tf.push(blk) == Pushed::Delayed {
                        heap.push(blk);
                        tf.finish_delayed();
                    }
                }
            })
        };
        let owner = {
            let (tf, heap) = (Arc::clone(&tf), Arc::clone(&heap));
            thread::spawn(move || {
                let mut got = list(tf.try_mark_full().0);
                // ... later the owner learns of space and un-fulls the slab.
                got.extend(list(heap.take_all()));
                if buggy_clear {
                    // Seeded bug: no wait for an in-flight hand-off.
                    assert_ne!(
                        tf.state(),
                        crate::remote::DELAYED_FREEING,
                        "hand-off in flight"
                    );
                } else {
                    tf.clear_delayed();
                    assert_eq!(tf.state(), NO_DELAYED, "hand-off in flight");
                }
                got.extend(list(tf.take_counted().0));
                got
            })
        };
        remote.join().unwrap();
        let mut seen = owner.join().unwrap();
        seen.extend(list(heap.take_all()));
        seen.extend(list(tf.take_counted().0));
        assert_exactly_once(&mut seen, &[b]);
        free_blocks(&[b]);
    });
}

#[test]
fn delayed_handoff_never_loses_a_block() {
    model_delayed(false);
}

#[test]
#[should_panic(expected = "hand-off in flight")]
fn seeded_bug_unfull_without_waiting_sees_handoff_in_flight() {
    model_delayed(true);
}

/// A bounded cache of mappings: two threads put, one takes; every value
/// comes out exactly once.
trait Slots: Send + Sync + 'static {
    fn make() -> Self;
    fn put_v(&self, v: usize) -> bool;
    fn take_v(&self) -> usize;
}

impl Slots for SlotCache<2> {
    fn make() -> Self {
        SlotCache::new()
    }
    fn put_v(&self, v: usize) -> bool {
        self.put(v, 2)
    }
    fn take_v(&self) -> usize {
        self.take(|_| true)
    }
}

/// Seeded bug: put checks a slot is empty, then stores (no CAS).
struct RacySlots([AtomicUsize; 2]);

impl Slots for RacySlots {
    fn make() -> Self {
        RacySlots([AtomicUsize::new(0), AtomicUsize::new(0)])
    }
    fn put_v(&self, v: usize) -> bool {
        for s in &self.0 {
            if s.load(Ordering::Acquire) == 0 {
                s.store(v, Ordering::Release); // BUG
                return true;
            }
        }
        false
    }
    fn take_v(&self) -> usize {
        for s in &self.0 {
            let v = s.load(Ordering::Acquire);
            if v != 0
                && s.compare_exchange(v, 0, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                return v;
            }
        }
        0
    }
}

fn model_slots<S: Slots>() {
    loom::model(|| {
        let c = Arc::new(S::make());
        let putters: Vec<_> = [8usize, 16]
            .into_iter()
            .map(|v| {
                let c = Arc::clone(&c);
                thread::spawn(move || assert!(c.put_v(v), "two slots fit two values"))
            })
            .collect();
        let taker = {
            let c = Arc::clone(&c);
            thread::spawn(move || c.take_v())
        };
        for p in putters {
            p.join().unwrap();
        }
        let mut seen: Vec<usize> = vec![taker.join().unwrap()];
        seen.push(c.take_v());
        seen.push(c.take_v());
        seen.retain(|&v| v != 0);
        assert_exactly_once(&mut seen, &[8, 16]);
    });
}

#[test]
fn slot_cache_put_take_exactly_once() {
    model_slots::<SlotCache<2>>();
}

#[test]
#[should_panic(expected = "every block exactly once")]
fn seeded_bug_slot_put_without_cas_loses_values() {
    model_slots::<RacySlots>();
}

/// Two owner threads count into their own counters while a snapshot thread
/// sums: every snapshot is between 0 and the final total, and after the
/// joins the sum is exact (no count lost). `shared` seeds a bug: both
/// threads write the same single-writer counter.
fn model_counters(shared: bool) {
    loom::model(move || {
        let heaps = Arc::new([HeapCounters::<1>::new(), HeapCounters::<1>::new()]);
        let owners: Vec<_> = (0..2)
            .map(|t| {
                let heaps = Arc::clone(&heaps);
                thread::spawn(move || {
                    let mine = if shared { &heaps[0] } else { &heaps[t] };
                    mine.on_alloc(0, 16);
                    mine.on_free(0, 16);
                })
            })
            .collect();
        let snap = {
            let heaps = Arc::clone(&heaps);
            thread::spawn(move || {
                let allocs: u64 = heaps.iter().map(|h| h.read(0).0).sum();
                assert!(allocs <= 2, "a snapshot never overshoots");
            })
        };
        for o in owners {
            o.join().unwrap();
        }
        snap.join().unwrap();
        let (allocs, frees, req_a, req_f) =
            heaps.iter().map(|h| h.read(0)).fold((0, 0, 0, 0), |a, b| {
                (a.0 + b.0, a.1 + b.1, a.2 + b.2, a.3 + b.3)
            });
        assert_eq!((allocs, frees), (2, 2), "no count lost at quiescence");
        assert_eq!((req_a, req_f), (32, 32), "no count lost at quiescence");
    });
}

#[test]
fn stats_counters_sum_exactly_at_quiescence() {
    model_counters(false);
}

#[test]
#[should_panic(expected = "no count lost at quiescence")]
fn seeded_bug_two_writers_on_one_counter_lose_counts() {
    model_counters(true);
}

/// A class's allocation tally (`ClassTally`), armed for 20 bytes: the
/// owner charges two allocations of 16 bytes, the second running the word
/// out and folding it into the counters, while a snapshot thread reads. Every read is
/// whole (bytes are 16 per allocation, never more allocations than were
/// charged: no fold seen half done or counted twice), and at quiescence
/// the read is exact. `locked` false seeds a bug: folds without the
/// sequence lock.
fn model_tally(locked: bool) {
    use crate::counters::ClassTally;
    loom::model(move || {
        let t = Arc::new((ClassTally::<1>::new(), HeapCounters::<1>::new()));
        t.0.fold(0, &t.1, 20);
        let owner = {
            let t = Arc::clone(&t);
            thread::spawn(move || {
                let (tally, counters) = (&t.0, &t.1);
                let fold = |bytes| {
                    if locked {
                        tally.fold(0, counters, bytes);
                    } else {
                        tally.fold_unlocked(0, counters, bytes);
                    }
                };
                for _ in 0..2 {
                    // SAFETY: class 0 of a one-class tally.
                    if unsafe { tally.charge(0, 16) } {
                        fold(20);
                    }
                }
            })
        };
        let snap = {
            let t = Arc::clone(&t);
            thread::spawn(move || {
                let (allocs, _, req, _) = t.0.read(0, &t.1);
                assert!(
                    allocs <= 2 && req == 16 * allocs,
                    "a fold is never seen half done: {allocs} allocations, {req} bytes"
                );
            })
        };
        owner.join().unwrap();
        snap.join().unwrap();
        let (allocs, _, req, _) = t.0.read(0, &t.1);
        assert_eq!((allocs, req), (2, 32), "exact at quiescence");
    });
}

#[test]
fn tally_reads_are_whole_and_exact_at_quiescence() {
    model_tally(true);
}

#[test]
#[should_panic(expected = "a fold is never seen half done")]
fn seeded_bug_tally_fold_without_its_lock_is_seen_half_done() {
    model_tally(false);
}

/// A heap's hand-over: the exiting owner writes its contents and abandons
/// it; an adopting thread and a sweeping thread race to claim it. Whoever
/// claims must see the owner's writes (loom checks the cell's causality),
/// and the two claimants never hold it at once. `relaxed` seeds a bug: the
/// abandon store without Release.
fn model_handoff(relaxed: bool) {
    struct FakeHeap {
        state: HeapState,
        buggy: AtomicUsize,
        contents: loom::cell::UnsafeCell<u64>,
    }
    // SAFETY: (test) access to `contents` follows the hand-over protocol
    // under test; loom reports any access it does not order.
    unsafe impl Sync for FakeHeap {}
    loom::model(move || {
        let h = Arc::new(FakeHeap {
            state: HeapState::new_in_use(),
            buggy: AtomicUsize::new(1),
            contents: loom::cell::UnsafeCell::new(0),
        });
        let owner = {
            let h = Arc::clone(&h);
            thread::spawn(move || {
                // SAFETY: the owner holds the heap until it abandons it.
                h.contents.with_mut(|c| unsafe { *c = 42 });
                if relaxed {
                    h.buggy.store(2, Ordering::Relaxed);
                } else {
                    h.state.abandon();
                }
            })
        };
        let claim = move |h: &FakeHeap| -> bool {
            if relaxed {
                h.buggy.load(Ordering::Relaxed) == 2
                    && h.buggy
                        .compare_exchange(2, 1, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
            } else {
                h.state.try_claim()
            }
        };
        let adopter = {
            let h = Arc::clone(&h);
            thread::spawn(move || {
                if claim(&h) {
                    // SAFETY: claimed: we hold the heap (loom checks it).
                    let v = h.contents.with(|c| unsafe { *c });
                    assert!(v == 42 || v == 43, "adopter sees the owner's writes");
                }
            })
        };
        let sweeper = {
            let h = Arc::clone(&h);
            thread::spawn(move || {
                if claim(&h) {
                    // SAFETY: claimed: we hold the heap (loom checks it).
                    h.contents.with_mut(|c| unsafe { *c += 1 });
                    if relaxed {
                        h.buggy.store(2, Ordering::Relaxed);
                    } else {
                        h.state.abandon();
                    }
                }
            })
        };
        owner.join().unwrap();
        adopter.join().unwrap();
        sweeper.join().unwrap();
    });
}

#[test]
fn heap_handoff_publishes_the_heap_to_one_claimant() {
    model_handoff(false);
}

#[test]
#[should_panic(expected = "Causality violation")]
fn seeded_bug_relaxed_abandon_races_on_the_heap() {
    model_handoff(true);
}

// ---------------------------------------------------------------------------
// The segment-set lock: a heap's thread and the reclaimer change the set
// (here a counter in a loom cell) only while holding it.

trait Lock: Send + Sync + 'static {
    fn make() -> Self;
    fn lock_wait(&self);
    fn try_take(&self) -> bool;
    fn release(&self);
}

impl Lock for SetLock {
    fn make() -> Self {
        SetLock::new()
    }
    fn lock_wait(&self) {
        self.lock();
    }
    fn try_take(&self) -> bool {
        self.try_lock()
    }
    fn release(&self) {
        self.unlock();
    }
}

/// Seeded bug: the unlock is a Relaxed store, so the next holder need not
/// see the last holder's changes.
struct RelaxedLock(loom::sync::atomic::AtomicBool);

impl Lock for RelaxedLock {
    fn make() -> Self {
        RelaxedLock(loom::sync::atomic::AtomicBool::new(false))
    }
    fn lock_wait(&self) {
        while !self.try_take() {
            thread::yield_now();
        }
    }
    fn try_take(&self) -> bool {
        self.0
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }
    fn release(&self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

struct Guarded<L> {
    lock: L,
    set: loom::cell::UnsafeCell<u64>,
}

// SAFETY: (test) `set` is touched only while holding `lock`; loom reports
// any access the lock does not order.
unsafe impl<L: Lock> Sync for Guarded<L> {}

fn model_set_lock<L: Lock>() {
    loom::model(|| {
        let g = Arc::new(Guarded {
            lock: L::make(),
            set: loom::cell::UnsafeCell::new(0),
        });
        // The heap's thread: waits for the lock, changes the set.
        let owner = {
            let g = g.clone();
            thread::spawn(move || {
                g.lock.lock_wait();
                // SAFETY: (test) under the lock.
                g.set.with_mut(|v| unsafe { *v += 1 });
                g.lock.release();
            })
        };
        // The reclaimer: tries once, never waits.
        let reclaimer = {
            let g = g.clone();
            thread::spawn(move || {
                if g.lock.try_take() {
                    // SAFETY: (test) under the lock.
                    g.set.with_mut(|v| unsafe { *v += 10 });
                    g.lock.release();
                    true
                } else {
                    false
                }
            })
        };
        owner.join().unwrap();
        let took = reclaimer.join().unwrap();
        g.lock.lock_wait();
        // SAFETY: (test) under the lock, every thread joined.
        let v = g.set.with(|v| unsafe { *v });
        assert_eq!(v, if took { 11 } else { 1 }, "a change was lost");
        g.lock.release();
    });
}

#[test]
fn set_lock_orders_owner_and_reclaimer() {
    model_set_lock::<SetLock>();
}

#[test]
#[should_panic(expected = "Causality violation")]
fn seeded_bug_relaxed_unlock_races() {
    model_set_lock::<RelaxedLock>();
}

// ---------------------------------------------------------------------------
// Pressure callbacks: two samplers (the reclaimer and a poll()) racing on
// the same level fire its callbacks once per cooldown.

trait Firing: Send + Sync + 'static {
    fn make() -> Self;
    fn fire(&self, level: PressureLevel, now: u64, cooldown: u64) -> bool;
}

impl Firing for PressureState {
    fn make() -> Self {
        PressureState::new()
    }
    fn fire(&self, level: PressureLevel, now: u64, cooldown: u64) -> bool {
        self.should_fire(level, now, cooldown)
    }
}

/// Seeded bug: the last-fired time is checked with a load and set with a
/// plain store, so both samplers can fire.
struct StoreFiring(loom::sync::atomic::AtomicU64);

impl Firing for StoreFiring {
    fn make() -> Self {
        StoreFiring(loom::sync::atomic::AtomicU64::new(0))
    }
    fn fire(&self, _level: PressureLevel, now: u64, cooldown: u64) -> bool {
        let last = self.0.load(Ordering::Acquire);
        if last != 0 && now.saturating_sub(last) < cooldown {
            return false;
        }
        self.0.store(now, Ordering::Release);
        true
    }
}

fn model_pressure<F: Firing>() {
    loom::model(|| {
        let st = Arc::new(F::make());
        let fired = Arc::new(AtomicUsize::new(0));
        let samplers: Vec<_> = [100u64, 150]
            .into_iter()
            .map(|now| {
                let st = st.clone();
                let fired = fired.clone();
                thread::spawn(move || {
                    if st.fire(PressureLevel::High, now, 1000) {
                        fired.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for s in samplers {
            s.join().unwrap();
        }
        assert_eq!(fired.load(Ordering::Relaxed), 1, "fired once per cooldown");
        // After the cooldown it fires again; at low it never does.
        assert!(st.fire(PressureLevel::High, 2000, 1000));
        assert!(!st.fire(PressureLevel::Low, 3000, 1000));
    });
}

#[test]
fn pressure_fires_once_per_cooldown() {
    model_pressure::<PressureState>();
}

#[test]
#[should_panic(expected = "fired once per cooldown")]
fn seeded_bug_pressure_without_cas_fires_twice() {
    model_pressure::<StoreFiring>();
}

/// The sample table's free slots (`slots::SlotStack`), or a seeded-bug
/// copy whose head carries no tag (ABA: a pop installs a stale successor,
/// so a slot is lost from the stack or appears on it twice).
trait Stack: Send + Sync + 'static {
    fn make() -> Self;
    fn push_s(&self, next: &[loom::sync::atomic::AtomicU32], i: u32);
    fn pop_s(&self, next: &[loom::sync::atomic::AtomicU32]) -> Option<u32>;
}

impl Stack for crate::slots::SlotStack {
    fn make() -> Self {
        crate::slots::SlotStack::new()
    }
    fn push_s(&self, next: &[loom::sync::atomic::AtomicU32], i: u32) {
        self.push(|k| &next[k as usize - 1], i)
    }
    fn pop_s(&self, next: &[loom::sync::atomic::AtomicU32]) -> Option<u32> {
        self.pop(|k| &next[k as usize - 1])
    }
}

/// Seeded bug: the head is the slot alone, with no tag.
struct UntaggedStack(loom::sync::atomic::AtomicU32);

impl Stack for UntaggedStack {
    fn make() -> Self {
        UntaggedStack(loom::sync::atomic::AtomicU32::new(0))
    }
    fn push_s(&self, next: &[loom::sync::atomic::AtomicU32], i: u32) {
        let mut h = self.0.load(Ordering::Relaxed);
        loop {
            next[i as usize - 1].store(h, Ordering::Relaxed);
            match self
                .0
                .compare_exchange(h, i, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(now) => h = now,
            }
        }
    }
    fn pop_s(&self, next: &[loom::sync::atomic::AtomicU32]) -> Option<u32> {
        let mut h = self.0.load(Ordering::Acquire);
        loop {
            if h == 0 {
                return None;
            }
            let after = next[h as usize - 1].load(Ordering::Relaxed);
            match self
                .0
                .compare_exchange(h, after, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => return Some(h),
                Err(now) => h = now,
            }
        }
    }
}

/// Two slots; one thread pops one and pushes it back, the other pops two
/// and pushes them back in reverse (the ABA pattern). A slot is never held
/// by two threads at once, and at the end both are free exactly once.
fn model_slot_stack<S: Stack>() {
    use loom::sync::atomic::{AtomicBool, AtomicU32};
    loom::model(|| {
        let st = Arc::new((
            S::make(),
            [AtomicU32::new(0), AtomicU32::new(0)],
            [AtomicBool::new(false), AtomicBool::new(false)],
        ));
        st.0.push_s(&st.1, 2);
        st.0.push_s(&st.1, 1);
        let take = |st: &(S, [AtomicU32; 2], [AtomicBool; 2])| {
            let i = st.0.pop_s(&st.1)?;
            assert!(
                !st.2[i as usize - 1].swap(true, Ordering::AcqRel),
                "slot handed out twice"
            );
            Some(i)
        };
        let give = |st: &(S, [AtomicU32; 2], [AtomicBool; 2]), i: u32| {
            st.2[i as usize - 1].store(false, Ordering::Release);
            st.0.push_s(&st.1, i);
        };
        let a = {
            let st = Arc::clone(&st);
            thread::spawn(move || {
                if let Some(i) = take(&st) {
                    give(&st, i);
                }
            })
        };
        let b = {
            let st = Arc::clone(&st);
            thread::spawn(move || {
                let x = take(&st);
                let y = take(&st);
                for i in [x, y].into_iter().flatten() {
                    give(&st, i);
                }
            })
        };
        a.join().unwrap();
        b.join().unwrap();
        let mut seen: Vec<usize> = core::iter::from_fn(|| st.0.pop_s(&st.1))
            .take(4)
            .map(|i| i as usize)
            .collect();
        assert_exactly_once(&mut seen, &[1, 2]);
    });
}

#[test]
fn sample_slots_never_handed_out_twice() {
    model_slot_stack::<crate::slots::SlotStack>();
}

#[test]
#[should_panic(expected = "every block exactly once")]
fn seeded_bug_untagged_slot_stack_loses_or_repeats_a_slot() {
    model_slot_stack::<UntaggedStack>();
}

/// A record's sequence lock: the writer changes two fields that must agree;
/// a reader that keeps only validated copies never sees them disagree.
/// `validate` false seeds the bug (a reader that keeps every copy).
fn model_seq(validate: bool) {
    use loom::sync::atomic::AtomicU64;
    loom::model(move || {
        let rec = Arc::new((
            crate::slots::Seq::new(),
            AtomicU64::new(1),
            AtomicU64::new(1),
        ));
        let w = {
            let rec = Arc::clone(&rec);
            thread::spawn(move || {
                rec.0.write_begin();
                rec.1.store(2, Ordering::Relaxed);
                rec.2.store(2, Ordering::Relaxed);
                rec.0.write_end();
            })
        };
        let r = {
            let rec = Arc::clone(&rec);
            thread::spawn(move || {
                let Some(s) = rec.0.read_begin() else {
                    return;
                };
                let a = rec.1.load(Ordering::Relaxed);
                let b = rec.2.load(Ordering::Relaxed);
                if !validate || rec.0.read_valid(s) {
                    assert_eq!(a, b, "a torn record was kept");
                }
            })
        };
        w.join().unwrap();
        r.join().unwrap();
    });
}

#[test]
fn sample_records_read_whole_or_not_at_all() {
    model_seq(true);
}

#[test]
#[should_panic(expected = "a torn record was kept")]
fn seeded_bug_unvalidated_record_read_is_torn() {
    model_seq(false);
}
