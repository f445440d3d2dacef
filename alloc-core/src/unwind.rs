//! Stack capture for the leak investigator (`profile.rs`): the system
//! unwinder once, then a cache of what it found.
//!
//! The system unwinder (`os::walk_stack`) interprets DWARF call-frame
//! information: correct without frame pointers, but about 140 ns a frame,
//! 2.5–7.4 µs a stack (ARCHITECTURE.md), which at one sample per MiB is several per cent of a
//! program that allocates big blocks. What it computes for a return
//! address is almost always a constant: how far above the frame's stack
//! pointer its canonical frame address (CFA) lies. [`backtrace`] caches
//! that per address (a lock-free table of [`SLOTS`] entries) and, when
//! every address on the way is in the cache, walks the stack itself: CFA =
//! stack pointer + cached offset, return address = the word below the CFA.
//! A thread's last cached walk is kept too (`Memo`): a capture from the
//! same stack pointer that finds the same return addresses at the same
//! places replays it with no cache lookup at all (a program sampled again
//! and again at one call site: each lookup is a cache line the program's
//! own work may have evicted).
//!
//! Why a wrong entry can never crash the program: the walk reads only
//! 8-aligned words strictly above the current stack pointer and below the
//! highest CFA the system unwinder has seen on this thread (its own stack,
//! mapped), each CFA strictly above the last; and it goes on only from an
//! address the system unwinder has seen as a return address. An address
//! whose offset was seen to vary (a frame with `alloca`), a signal frame,
//! or any address not in the cache sends the capture back to the system
//! unwinder, which also fills the cache. The worst a stale entry could do
//! is give one sample a wrong stack.

use crate::os::{self, WalkedFrame};
use crate::sync::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use core::cell::Cell;

/// Return addresses the cache holds.
pub(crate) const SLOTS: usize = 8192;
const PROBES: usize = 16;
/// Value flags: the offset varies (never walk on from here) / the stack
/// ends at this frame.
const VARIABLE: u32 = 1 << 31;
const END: u32 = 1 << 30;
const OFFSET: u32 = END - 1;
/// Frames larger than this are not cached.
const MAX_FRAME: usize = 1 << 20;
/// A walk spanning more than this is not a thread's stack as we know it
/// (a coroutine's, or the stack was switched): use the system unwinder.
const MAX_SPAN: usize = 64 << 20;

/// A return address (0: a free entry) and what is known of its frame, in
/// one 16-byte entry: a walk touches one line per frame.
struct Entry {
    key: AtomicUsize,
    value: AtomicU32,
}

static CACHE: [Entry; SLOTS] = [const {
    Entry {
        key: AtomicUsize::new(0),
        value: AtomicU32::new(0),
    }
}; SLOTS];

/// Captures that needed the system unwinder.
pub(crate) static SLOW: AtomicUsize = AtomicUsize::new(0);

/// How far [`backtrace`]'s own CFA lies above the stack pointer it reads
/// on entry (0: not learnt yet).
static ENTRY: AtomicUsize = AtomicUsize::new(0);
/// Bumped each time a return address is first found [`VARIABLE`]: a
/// thread's memo of its last walk ([`Memo`]) is replayed only if no
/// address was marked since it was made (a frame it walked through may be
/// one whose size varies).
static VARIED: AtomicUsize = AtomicUsize::new(0);

/// Frames the memo of a thread's last cached walk holds (at least what
/// one capture asks for: `profile`'s frames and skipped frames).
const MEMO: usize = 40;

/// The last cached walk of a thread: the stack pointer it started from,
/// how many frames it was asked for, and per frame where its return
/// address lay and what it was. A walk from the same stack pointer that
/// finds the same return addresses at the same places is the same stack
/// (each return address fixes its frame's size, so the next frame's
/// place), so it is replayed with no cache lookup: the common case of a
/// program sampled again and again at one call site.
struct Memo {
    sp: Cell<usize>,
    want: Cell<usize>,
    n: Cell<usize>,
    /// [`VARIED`] when the walk started.
    varied: Cell<usize>,
    frames: [(Cell<usize>, Cell<usize>); MEMO],
}

thread_local! {
    // const-initialised, no destructor: plain TLS, never allocates.
    /// The highest CFA the system unwinder has seen on this thread.
    static TOP: Cell<usize> = const { Cell::new(0) };
    static LAST: Memo = const {
        Memo {
            sp: Cell::new(0),
            want: Cell::new(0),
            n: Cell::new(0),
            varied: Cell::new(0),
            frames: [const { (Cell::new(0), Cell::new(0)) }; MEMO],
        }
    };
}

#[cfg(test)]
thread_local! {
    /// Walks by the system unwinder on this thread (tests).
    static SLOW_WALKS: Cell<usize> = const { Cell::new(0) };
}

fn home(pc: usize) -> usize {
    pc.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (usize::BITS - SLOTS.trailing_zeros())
}

/// The cached value of return address `pc` (0: unknown).
fn lookup(pc: usize) -> u32 {
    let h = home(pc);
    for i in 0..PROBES {
        let j = (h + i) % SLOTS;
        match CACHE[j].key.load(Ordering::Acquire) {
            k if k == pc => return CACHE[j].value.load(Ordering::Acquire),
            0 => return 0,
            _ => {}
        }
    }
    0
}

/// Remember `value` for return address `pc`; a different value seen
/// before makes the entry [`VARIABLE`] for good.
fn learn(pc: usize, value: u32) {
    let h = home(pc);
    for i in 0..PROBES {
        let j = (h + i) % SLOTS;
        let mut k = CACHE[j].key.load(Ordering::Acquire);
        if k == 0 {
            k = match CACHE[j]
                .key
                .compare_exchange(0, pc, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    CACHE[j].value.store(value, Ordering::Release);
                    return;
                }
                Err(now) => now,
            };
        }
        if k == pc {
            let old = CACHE[j].value.load(Ordering::Acquire);
            if old != value && old != 0 && old & VARIABLE == 0 {
                CACHE[j].value.fetch_or(VARIABLE, Ordering::AcqRel);
                VARIED.fetch_add(1, Ordering::Release);
            }
            return;
        }
    }
    // Its probe run is full: the address stays unknown (system unwinder).
}

/// The return addresses of the calling thread's stack, innermost first,
/// less the first `skip`, into `out` (relaxed stores: the sample table's
/// record is written in place, under its sequence lock). The first
/// address is where the caller of `backtrace` will return to, so it lies
/// in the caller. How many were stored. Never allocates; takes no lock
/// (see the module docs).
#[inline(never)]
pub(crate) fn backtrace(out: &[AtomicU64], skip: usize) -> usize {
    // Read first, before anything that could move the stack pointer, so it
    // is the same value on the fast and the slow path of this function.
    let sp = os::stack_pointer();
    let mut put = Put { out, skip, n: 0 };
    if sp != 0 {
        if let Some(n) = walk_cached(sp, out, skip) {
            return n;
        }
    }
    // The system unwinder. Its callback sees each frame's IP and its
    // stack pointer (`_Unwind_GetCFA` there is the CFA of the frame below,
    // which is this frame's stack pointer). The first frames are the
    // unwinder's, `walk_stack`'s and this function's (stack pointers up to
    // `sp`); the first whose stack pointer lies above `sp` is our caller's,
    // and its stack pointer is this function's CFA. A frame's offset (its
    // CFA less its stack pointer) is the next frame's stack pointer less
    // its own, so it is learnt when the next frame is seen; the last frame
    // of a whole walk is marked the end of the stack.
    let mut pending: Option<WalkedFrame> = None;
    let mut index = 0;
    let mut high = 0;
    let mut full = false;
    os::walk_stack(&mut |f: WalkedFrame| {
        index += 1;
        high = high.max(f.cfa);
        match pending {
            None => {
                // Not yet our caller's frame? (No stack pointer here: the
                // fourth frame.)
                let caller = if sp != 0 { f.cfa > sp } else { index == 4 };
                if !caller {
                    return true;
                }
                if sp != 0 && f.cfa - sp < MAX_FRAME {
                    ENTRY.store(f.cfa - sp, Ordering::Relaxed);
                }
            }
            Some(p) => {
                let step = f.cfa.wrapping_sub(p.cfa);
                let value =
                    if !p.signal && !f.signal && f.cfa > p.cfa && step < MAX_FRAME && step % 8 == 0
                    {
                        step as u32
                    } else {
                        VARIABLE
                    };
                learn(p.ip, value);
            }
        }
        pending = Some(f);
        full = put.push(f.ip);
        !full
    });
    if let (Some(p), false) = (pending, full) {
        learn(p.ip, END);
    }
    let _ = TOP.try_with(|t| t.set(t.get().max(high)));
    SLOW.fetch_add(1, Ordering::Relaxed);
    #[cfg(test)]
    SLOW_WALKS.with(|c| c.set(c.get() + 1));
    put.stored()
}

/// Where a walk's return addresses go: all but the first `skip` into
/// `out`; `n` counts every one.
struct Put<'a> {
    out: &'a [AtomicU64],
    skip: usize,
    n: usize,
}

impl Put<'_> {
    /// Take the next return address; true when `out` is full.
    #[inline(always)]
    fn push(&mut self, ra: usize) -> bool {
        if self.n >= self.skip {
            self.out[self.n - self.skip].store(ra as u64, Ordering::Relaxed);
        }
        self.n += 1;
        self.n >= self.skip + self.out.len()
    }

    fn stored(&self) -> usize {
        self.n.saturating_sub(self.skip)
    }
}

/// The cached walk from stack pointer `sp` (read on entry to
/// [`backtrace`]); `None` when it cannot be done from the cache.
///
/// Every cached offset is a multiple of 8 and at least 8 (`learn` is given
/// no other: steps checked in [`backtrace`], or the flags), so from an
/// aligned start each CFA is aligned and strictly above the last: the one
/// check a frame needs is that it stays below `top`.
#[inline(always)]
fn walk_cached(sp: usize, out: &[AtomicU64], skip: usize) -> Option<usize> {
    let entry = ENTRY.load(Ordering::Relaxed);
    let top = TOP.try_with(|t| t.get()).ok()?;
    if entry == 0 || top <= sp || top - sp > MAX_SPAN || !(sp | entry).is_multiple_of(8) {
        return None;
    }
    let want = skip + out.len();
    LAST.try_with(|memo| {
        if let Some(n) = replay(memo, sp, top, out, skip) {
            return Some(n);
        }
        // Not the last stack: walk it, and remember it (valid only once
        // whole, and only until an address is marked variable).
        memo.sp.set(0);
        let varied = VARIED.load(Ordering::Acquire);
        let keep = want <= MEMO;
        let (mut cfa, mut n) = (sp + entry, 0usize);
        loop {
            if cfa > top {
                return None;
            }
            // SAFETY: `cfa - 8` is 8-aligned and at least `sp` (the CFA
            // starts above `sp` and only rises, in steps of 8 or more) and
            // below `top`: a word of this thread's stack between its stack
            // pointer and the highest CFA the system unwinder walked to, so
            // mapped.
            let ra = unsafe { os::read_stack_word(cfa - 8) };
            // The first `skip` are not kept (the index wraps: no slot).
            if let Some(o) = out.get(n.wrapping_sub(skip)) {
                o.store(ra as u64, Ordering::Relaxed);
            }
            if keep {
                memo.frames[n].0.set(cfa - 8);
                memo.frames[n].1.set(ra);
            }
            n += 1;
            let v = if n == want { END } else { lookup(ra) };
            if v == 0 || v & VARIABLE != 0 {
                return None;
            }
            if v & END != 0 {
                if keep {
                    memo.n.set(n);
                    memo.want.set(want);
                    memo.varied.set(varied);
                    memo.sp.set(sp);
                }
                return Some(n.saturating_sub(skip));
            }
            cfa += (v & OFFSET) as usize;
        }
    })
    .ok()
    .flatten()
}

/// The walk of [`walk_cached`] from its memo of this thread's last walk,
/// if it started at the same stack pointer `sp`, for as many frames, no
/// return address was marked [`VARIABLE`] since, and every return address
/// is still where it was; `None` otherwise.
///
/// The memo's places rise strictly (each CFA lies above the last, as
/// [`walk_cached`] found them) and are 8-aligned, so checking the first
/// against `sp` and the last against `top` checks them all, once per
/// replay rather than once per frame.
#[inline(always)]
fn replay(memo: &Memo, sp: usize, top: usize, out: &[AtomicU64], skip: usize) -> Option<usize> {
    let n = memo.n.get();
    if memo.sp.get() != sp
        || memo.want.get() != skip + out.len()
        || n == 0
        || n > MEMO
        || memo.varied.get() != VARIED.load(Ordering::Acquire)
    {
        return None;
    }
    let frames = &memo.frames[..n];
    let (first, last) = (frames[0].0.get(), frames[n - 1].0.get());
    // Checked again, not trusted: the words of this thread's stack between
    // its stack pointer and the highest CFA the system unwinder walked to.
    if first < sp || last >= top || !(first | last).is_multiple_of(8) {
        return None;
    }
    let same = |(at, was): &(Cell<usize>, Cell<usize>)| {
        // SAFETY: `at` lies between `first` and `last` (the places rise),
        // so it is 8-aligned (every cached step is a multiple of 8), at
        // least `sp` and below `top`: a mapped word of this thread's
        // stack.
        let ra = unsafe { os::read_stack_word(at.get()) };
        (ra == was.get()).then_some(ra)
    };
    // `n` is at most `want` (a walk stops there), so `out` holds every
    // kept frame.
    let (skipped, kept) = frames.split_at(skip.min(n));
    for f in skipped {
        same(f)?;
    }
    for (f, o) in kept.iter().zip(out) {
        o.store(same(f)? as u64, Ordering::Relaxed);
    }
    Some(kept.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stack `depth` frames deeper, then the capture: the system
    /// unwinder's the first time, the cache's after; both the same.
    #[inline(never)]
    fn at_depth(depth: usize, out: &mut Vec<Vec<usize>>) {
        if depth > 0 {
            at_depth(depth - 1, out);
            core::hint::black_box(&out);
            return;
        }
        for _ in 0..3 {
            let buf: Vec<AtomicU64> = (0..48).map(|_| AtomicU64::new(0)).collect();
            let before = SLOW_WALKS.with(|c| c.get());
            let n = backtrace(&buf, 0);
            out.push(
                buf[..n]
                    .iter()
                    .map(|a| a.load(Ordering::Relaxed) as usize)
                    .collect(),
            );
            out.push(vec![SLOW_WALKS.with(|c| c.get()) - before]);
        }
    }

    #[test]
    fn the_cached_walk_finds_what_the_system_unwinder_found() {
        for depth in [0, 3, 20, 60] {
            let mut got = Vec::new();
            at_depth(depth, &mut got);
            let (stacks, slow): (Vec<_>, Vec<_>) =
                got.chunks(2).map(|c| (c[0].clone(), c[1][0])).unzip();
            assert!(stacks[0].len() > depth.min(40), "depth {depth}");
            assert_eq!(stacks[0], stacks[1], "depth {depth}");
            assert_eq!(stacks[1], stacks[2], "depth {depth}");
            // The later captures at the same place came from the cache.
            assert_eq!(slow[1..], [0, 0], "depth {depth}");
        }
        assert_ne!(ENTRY.load(Ordering::Relaxed), 0);
    }

    #[inline(never)]
    fn capture() -> Vec<usize> {
        let buf: Vec<AtomicU64> = (0..32).map(|_| AtomicU64::new(0)).collect();
        let n = backtrace(&buf, 0);
        core::hint::black_box(&buf);
        buf[..n]
            .iter()
            .map(|a| a.load(Ordering::Relaxed) as usize)
            .collect()
    }

    #[inline(never)]
    fn via_one() -> Vec<usize> {
        core::hint::black_box(capture())
    }

    #[inline(never)]
    fn via_two() -> Vec<usize> {
        core::hint::black_box(capture())
    }

    #[test]
    fn the_memo_never_replays_another_call_path() {
        // The two paths have the same shape, so the captures start at the
        // same stack pointer; only a return address tells them apart.
        let mut seen: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
        // (A trip count the compiler cannot see: an unrolled loop would
        // call from several sites.)
        for _ in 0..core::hint::black_box(4) {
            seen.push((via_one(), via_two()));
        }
        let (one, two) = &seen[0];
        assert_ne!(one, two);
        assert_eq!(one.len(), two.len());
        for s in &seen[1..] {
            assert_eq!(&s.0, one);
            assert_eq!(&s.1, two);
        }
    }

    /// A capture and how many walks of the system unwinder it took.
    #[inline(never)]
    fn capture_counted() -> (Vec<usize>, usize) {
        let before = SLOW_WALKS.with(|c| c.get());
        let got = capture();
        (got, SLOW_WALKS.with(|c| c.get()) - before)
    }

    #[test]
    fn a_memo_is_not_replayed_through_a_frame_marked_variable_since() {
        let mut seen: Vec<(Vec<usize>, usize)> = Vec::new();
        for round in 0..core::hint::black_box(4) {
            if round == 2 {
                // Another walk found the size of the capture's own frame
                // (its first return address) varying.
                let pc = seen[0].0[0];
                let v = lookup(pc);
                assert!(v != 0 && v & VARIABLE == 0, "learnt as one size: {v:#x}");
                learn(pc, (v & OFFSET) + 8);
                assert!(lookup(pc) & VARIABLE != 0);
            }
            seen.push(capture_counted());
        }
        assert_eq!(seen[1].1, 0, "the second capture replays the first");
        assert_eq!(seen[2].1, 1, "after the mark: the system unwinder");
        assert_eq!(seen[3].1, 1, "and again: the frame stays variable");
        assert!(
            seen.iter().all(|s| s.0 == seen[0].0),
            "the same stack each time"
        );
    }

    #[test]
    fn a_frame_seen_with_two_offsets_is_never_walked_through() {
        let pc = 0x1234_5678_9abc;
        learn(pc, 48);
        assert_eq!(lookup(pc), 48);
        learn(pc, 48);
        assert_eq!(lookup(pc), 48);
        learn(pc, 64);
        assert!(lookup(pc) & VARIABLE != 0);
    }
}
