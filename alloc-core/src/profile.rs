//! The leak investigator's sample table: a record per sampled live block
//! (size, class, birth time, thread, component, call stack), in memory the
//! allocator maps for itself, and the sampling interval.
//!
//! * **Where samples come from** (`heap/alloc.rs`): sampling is by bytes
//!   allocated, per thread and class, with exponentially distributed gaps
//!   (`next_gap`) of mean [`interval`] bytes (the tcmalloc / jemalloc
//!   method: each byte is sampled with the same small probability, so
//!   scaling a sample of `size` bytes by `1 / (1 - exp(-size / mean))`
//!   estimates live memory without bias). The fast path's only cost is
//!   the sign of the class's allocation tally (`counters::ClassTally`),
//!   whose one subtraction also counts the allocation for the stats: the
//!   tally is armed for the bytes to the next sample point, and the
//!   allocation that runs it out goes to the slow path.
//! * **How a freed sample is found**: a sampled block is served as a page
//!   run whose first page's map entry holds the record's slot
//!   (`segment::set_run_sample`). Every free of a page run already leaves
//!   the fast path for the page-run branch, which reads that entry: no
//!   lookup on any other free. For a sample of a page run, the entry also
//!   holds its component and estimate (`quick`), so its free drops it
//!   (a live bit and the slot's link, both outside the record) without
//!   reading its record: that line would be a cache miss on every sampled
//!   free in a program that touches a lot of memory.
//! * **Capacity**: [`CAPACITY`] records. When every slot holds a live
//!   sample, a new sample is dropped (the block is served normally) and
//!   counted in [`ProfileCounters::dropped`]; a profile then under-counts,
//!   and says so.
//! * **Locks**: recording never allocates and takes no lock of ours; the
//!   stack comes from the system unwinder (`unwind::backtrace`;
//!   ARCHITECTURE.md says why not frame pointers). A thread that
//!   allocates while recording (the unwinder never does, but a signal
//!   handler might) is not sampled again (a per-thread guard). Readers
//!   ([`samples`]) copy records under their sequence locks and never block
//!   an allocating thread.

use crate::counters::bump;
use crate::os;
use crate::slots::{Seq, SlotStack};
use crate::sync::{AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use core::cell::Cell;
use core::ptr;

/// Frames a sample's stack keeps (innermost first).
pub const FRAMES: usize = 32;
/// Live samples the table holds.
pub const CAPACITY: usize = 8192;
/// Components that can be named ([`component`]).
pub const COMPONENTS: usize = 255;
/// The `class` of a sample in the large band (above 1 MiB): the tag the
/// allocator counts large blocks served as page runs under, so a sample's
/// class is always the class it is counted in.
pub const LARGE_CLASS: u32 = 63;

/// Frames of the recording itself skipped at the top of each stack
/// ([`record`]'s).
const SKIP: usize = 1;

/// One sample. Aligned to a cache line: its header (everything but the
/// frames) is one line. Its sequence lock and live flag are kept apart
/// ([`Table`]): a record is written with plain stores only, which never
/// wait for its (usually cold) lines, and dropped without touching it.
#[repr(C, align(64))]
struct Record {
    class: AtomicU32,
    component: AtomicU32,
    depth: AtomicU32,
    size: AtomicU64,
    interval: AtomicU64,
    birth_ms: AtomicU64,
    thread: AtomicU64,
    frames: [AtomicU64; FRAMES],
}

/// The free-slot stack's head, on a line of its own.
#[repr(C, align(64))]
struct Head(SlotStack);

#[repr(C)]
struct Table {
    free: Head,
    /// Per slot (index `slot - 1`): 1 while its record is a live sample.
    /// Written by the slot's holder only (plain stores). Kept apart from
    /// the records with the sequence locks and the free-slot links, so
    /// that dropping a sample whose free knows its component and estimate
    /// ([`remove_quick`]) never touches its record.
    live: [AtomicU8; CAPACITY],
    /// Per slot: its record's sequence lock.
    seqs: [Seq; CAPACITY],
    /// The next free slot of each free slot (`SlotStack`).
    links: [AtomicU32; CAPACITY],
    records: [Record; CAPACITY],
}

impl Table {
    /// The free-slot link of `slot` (1-based).
    fn link(&self, slot: u32) -> &AtomicU32 {
        &self.links[slot as usize - 1]
    }

    fn is_live(&self, slot: u32) -> bool {
        self.live[slot as usize - 1].load(Ordering::Acquire) != 0
    }

    fn seq(&self, slot: u32) -> &Seq {
        &self.seqs[slot as usize - 1]
    }

    /// Drop the sample of `slot` from its component's totals (`units` of
    /// 16 bytes, component index `k`) and free the slot: kept by `local`
    /// (the freeing thread's heap) if it keeps none, else onto the
    /// free-slot stack.
    fn release(&self, slot: u32, units: u64, k: usize, local: Option<&Local>) {
        self.live[slot as usize - 1].store(0, Ordering::Release);
        match local {
            Some(l) if l.spare.load(Ordering::Relaxed) == 0 => {
                l.spare.store(slot, Ordering::Relaxed);
            }
            _ => self.free.0.push(|k| self.link(k), slot),
        }
        count(local, k, units, 1u64.wrapping_neg());
    }
}

static TABLE: AtomicPtr<Table> = AtomicPtr::new(ptr::null_mut());
/// The mean interval in bytes (0: off; `u64::MAX`: not set, use the
/// configuration's).
static INTERVAL: AtomicU64 = AtomicU64::new(u64::MAX);
/// Bumped by every change of the interval: heaps redraw their sample
/// points at their next slow path when it moved.
static EPOCH: AtomicU64 = AtomicU64::new(1);
static TAKEN: AtomicU64 = AtomicU64::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// A component's running totals: estimated live bytes (16-byte units)
/// and live samples. Heaps add their changes in batches ([`Local`]), so a
/// total may be below zero for a moment (a sample freed on one heap and
/// recorded on another not yet flushed): the words wrap and are read as
/// signed, at least 0.
struct Totals {
    units: AtomicU64,
    samples: AtomicU64,
}

/// Per component (index 0: none), kept as samples come and go, so a
/// snapshot reads them without walking the table. Samples removed so far
/// are the samples taken less the live ones.
static TOTALS: [Totals; COMPONENTS + 1] = [const {
    Totals {
        units: AtomicU64::new(0),
        samples: AtomicU64::new(0),
    }
}; COMPONENTS + 1];

impl Totals {
    fn add(&self, units: u64, samples: u64) {
        self.units.fetch_add(units, Ordering::Relaxed);
        self.samples.fetch_add(samples, Ordering::Relaxed);
    }

    /// (live units, live samples) as the shared words hold them (wrapping;
    /// heaps' batches not included: [`live_of`]).
    fn raw(&self) -> (u64, u64) {
        (
            self.units.load(Ordering::Relaxed),
            self.samples.load(Ordering::Relaxed),
        )
    }
}

/// A heap's share of the sampler's bookkeeping (zeroed memory is an empty
/// one): a free record slot kept for its next sample, and changes to one
/// component's totals and to the samples-taken count not yet added to the
/// shared words. So a heap that records and drops samples uses no locked
/// instruction for either most of the time. Added to the shared words
/// when the component changes, every [`Local::BATCH`] changes and when
/// the heap's thread exits. Only the owner writes; the pending counts are
/// atomics written with plain loads and stores (`counters::bump`), so a
/// reader on any thread adds every heap's to the shared totals
/// ([`Local::add_to`], [`Pending`]): a quiet thread's last samples are
/// never missing from a snapshot. The kept slot goes back to the shared
/// stack when the heap's thread exits ([`Local::give_back`]), so an
/// abandoned heap holds none.
#[derive(Default)]
#[repr(C)]
pub(crate) struct Local {
    spare: AtomicU32,
    changes: AtomicU32,
    k: AtomicU32,
    units: AtomicU64,
    samples: AtomicU64,
    taken: AtomicU64,
}

impl Local {
    const BATCH: u32 = 32;

    /// Owner: a sample of `units` in component `k` came (`sign` 1) or went
    /// (`sign` -1 as wrapping).
    fn change(&self, k: usize, units: u64, sign: u64) {
        let changes = self.changes.load(Ordering::Relaxed);
        if self.k.load(Ordering::Relaxed) as usize != k && changes != 0 {
            self.flush();
        }
        self.k.store(k as u32, Ordering::Relaxed);
        bump(&self.units, units.wrapping_mul(sign));
        bump(&self.samples, sign);
        let changes = self.changes.load(Ordering::Relaxed) + 1;
        self.changes.store(changes, Ordering::Relaxed);
        if changes >= Self::BATCH {
            self.flush();
        }
    }

    /// Owner: add the pending changes to the shared totals. A reader
    /// adding this heap's pending counts meanwhile may count a change
    /// twice or not at all, for that one read.
    pub(crate) fn flush(&self) {
        let taken = self.taken.load(Ordering::Relaxed);
        if self.changes.load(Ordering::Relaxed) == 0 && taken == 0 {
            return;
        }
        TOTALS[self.k.load(Ordering::Relaxed) as usize].add(
            self.units.load(Ordering::Relaxed),
            self.samples.load(Ordering::Relaxed),
        );
        if taken != 0 {
            TAKEN.fetch_add(taken, Ordering::Relaxed);
        }
        self.units.store(0, Ordering::Relaxed);
        self.samples.store(0, Ordering::Relaxed);
        self.taken.store(0, Ordering::Relaxed);
        self.changes.store(0, Ordering::Relaxed);
    }

    /// Owner: flush, and put the kept free slot back on the shared stack
    /// (the heap's thread exits).
    pub(crate) fn give_back(&self) {
        self.flush();
        let slot = self.take_spare();
        if slot == 0 {
            return;
        }
        let t = TABLE.load(Ordering::Acquire);
        if !t.is_null() {
            // SAFETY: a published table is mapped for the life of the
            // process; a kept slot is one of its.
            let t = unsafe { &*t };
            t.free.0.push(|k| t.link(k), slot);
        }
    }

    /// Owner: take the kept free slot (0: none). A load and a store, not a
    /// swap: only the owner writes it, and a swap is a locked instruction.
    fn take_spare(&self) -> u32 {
        let slot = self.spare.load(Ordering::Relaxed);
        if slot != 0 {
            self.spare.store(0, Ordering::Relaxed);
        }
        slot
    }

    /// Any thread: add this heap's pending counts to `p`.
    pub(crate) fn add_to(&self, p: &mut Pending) {
        let k = (self.k.load(Ordering::Relaxed) as usize).min(COMPONENTS);
        p.units[k] = p.units[k].wrapping_add(self.units.load(Ordering::Relaxed));
        p.samples[k] = p.samples[k].wrapping_add(self.samples.load(Ordering::Relaxed));
        p.taken = p.taken.wrapping_add(self.taken.load(Ordering::Relaxed));
    }
}

/// The counts heaps hold in their batches ([`Local`]) and have not yet
/// added to the shared totals, summed by a reader over every heap
/// (`stats.rs`), per component (wrapping sums, read as signed).
pub(crate) struct Pending {
    units: [u64; COMPONENTS + 1],
    samples: [u64; COMPONENTS + 1],
    taken: u64,
}

impl Pending {
    pub(crate) const fn new() -> Self {
        Pending {
            units: [0; COMPONENTS + 1],
            samples: [0; COMPONENTS + 1],
            taken: 0,
        }
    }
}

/// Count a sample of `units` in component `k` as recorded (`sign` 1) or
/// dropped (wrapping -1): in the caller's heap's batch, or at once.
fn count(local: Option<&Local>, k: usize, units: u64, sign: u64) {
    match local {
        Some(l) => {
            if sign == 1 {
                bump(&l.taken, 1);
            }
            l.change(k, units, sign);
        }
        None => {
            TOTALS[k].add(units.wrapping_mul(sign), sign);
            if sign == 1 {
                TAKEN.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The probability that a block of `size` bytes is sampled at mean
/// interval `mean` (1 when every allocation is: `mean` 0 in a record means
/// it was taken with sampling switched off, which never happens).
fn probability(size: u64, mean: u64) -> f64 {
    if mean == 0 {
        return 1.0;
    }
    (1.0 - (-(size as f64) / mean as f64).exp()).max(f64::MIN_POSITIVE)
}

/// The live bytes a sample of `size` bytes taken at mean interval `mean`
/// stands for (`size / probability`), in units of 16 bytes, rounded: what
/// its component's total counts (so the total is exact to 16 bytes a
/// sample). Added when recorded or resized, taken off again with the same
/// arguments, or from [`quick`]'s copy of it.
fn estimate_units(size: u64, mean: u64) -> u64 {
    ((size as f64 / probability(size, mean)) as u64 + 8) >> 4
}

/// A page-run sample's component index and estimate, packed in the 32 bits
/// the page map keeps beside its slot, so its free needs no record:
/// `units << 8 | component` (0: too big to pack; the free reads the
/// record).
pub(crate) fn quick(units: u64, k: usize) -> u32 {
    if units == 0 || units >= 1 << 24 {
        return 0;
    }
    ((units as u32) << 8) | k as u32
}

thread_local! {
    // const-initialised, no destructor: plain TLS, never allocates.
    static COMPONENT: Cell<u32> = const { Cell::new(0) };
    static RECORDING: Cell<bool> = const { Cell::new(false) };
    static THREAD_ID: Cell<u64> = const { Cell::new(0) };
}

/// A sample's birth time ([`clock_ms`]): the coarse clock, read through
/// the vDSO. Not the time-stamp counter: a process may have made `rdtsc`
/// fault (`PR_SET_TSC`), and samples with no birth time at all measured
/// no faster (`benches/results/profile_cost.txt`).
fn birth_ms() -> u64 {
    os::now_ms()
}

/// The calling thread's kernel id, asked of the kernel once per thread.
fn thread_id() -> u64 {
    THREAD_ID
        .try_with(|t| {
            if t.get() == 0 {
                t.set(os::thread_id());
            }
            t.get()
        })
        .unwrap_or_else(|_| os::thread_id())
}

/// The mean sampling interval in bytes allocated (0: sampling is off).
pub fn interval() -> u64 {
    match INTERVAL.load(Ordering::Relaxed) {
        u64::MAX => crate::config::get().profile_interval,
        n => n,
    }
}

/// Set the mean sampling interval (0 turns sampling off). Threads pick it
/// up at their next allocation slow path; samples already taken stay until
/// their blocks are freed.
pub fn set_interval(bytes: u64) {
    INTERVAL.store(bytes.min(u64::MAX - 1), Ordering::Relaxed);
    EPOCH.fetch_add(1, Ordering::Release);
}

/// The interval's version (see `EPOCH`).
pub(crate) fn epoch() -> u64 {
    EPOCH.load(Ordering::Acquire)
}

/// The next gap between samples, in bytes: exponentially distributed with
/// mean `mean` (`u64::MAX` when `mean` is 0). `rng` is the caller's
/// xorshift state (any value; 0 is replaced).
pub(crate) fn next_gap(rng: &mut u64, mean: u64) -> u64 {
    if mean == 0 {
        return u64::MAX;
    }
    let mut x = if *rng == 0 {
        0x9E37_79B9_7F4A_7C15
    } else {
        *rng
    };
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *rng = x;
    // Uniform in (0, 1], from the top 53 bits.
    let u = ((x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let gap = -ln_unit(u) * mean as f64;
    (gap as u64).max(1)
}

/// The natural logarithm of `u` in (0, 1] (a normal number), to within
/// 1e-8: `ln u = e ln 2 + ln m` with `u = m 2^e`, `m` in [1/sqrt 2, sqrt 2),
/// and `ln m = 2 atanh(s)`, `s = (m - 1) / (m + 1)` below 0.18 in size, by
/// its series to `s^13`.
/// About a fifth of the instructions of the library's `ln`, once per
/// sample.
fn ln_unit(u: f64) -> f64 {
    let bits = u.to_bits();
    let mut e = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & ((1 << 52) - 1)) | (1023 << 52));
    if m > core::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let s = (m - 1.0) / (m + 1.0);
    let z = s * s;
    let series = 2.0
        + z * (2.0 / 3.0
            + z * (2.0 / 5.0
                + z * (2.0 / 7.0 + z * (2.0 / 9.0 + z * (2.0 / 11.0 + z * (2.0 / 13.0))))));
    e as f64 * core::f64::consts::LN_2 + s * series
}

/// The table, mapped on first use (null when out of memory).
fn table() -> *mut Table {
    let t = TABLE.load(Ordering::Acquire);
    if !t.is_null() {
        return t;
    }
    let size = core::mem::size_of::<Table>().div_ceil(os::PAGE_SIZE) * os::PAGE_SIZE;
    let fresh = os::map(size).cast::<Table>();
    if fresh.is_null() {
        return fresh;
    }
    // SAFETY: a fresh zeroed mapping of the table's size: all-zero atomics
    // are valid values, and nobody else sees it until it is published.
    unsafe {
        for i in (1..=CAPACITY as u32).rev() {
            (*fresh).free.0.push(|k| (*fresh).link(k), i);
        }
    }
    match TABLE.compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => fresh,
        Err(won) => {
            // SAFETY: our mapping was never published.
            unsafe { os::unmap(fresh.cast(), size) };
            won
        }
    }
}

/// Record a sample of a block of `size` requested bytes of `class`, taken
/// at mean interval `interval`: its stack, thread, birth time and the
/// thread's component. Returns its slot (`1..=CAPACITY`; 0 when none is
/// free, the table cannot be mapped, or this thread is already recording)
/// and its [`quick`] word. The slot comes from `local` (the caller's
/// heap's share, [`Local`]) when it keeps one. Slow paths only.
#[inline(never)]
pub(crate) fn record(size: usize, class: u32, interval: u64, local: Option<&Local>) -> (u32, u32) {
    let Ok(false) = RECORDING.try_with(|r| r.replace(true)) else {
        return (0, 0);
    };
    let got = record_as_owner(size, class, interval, local);
    let _ = RECORDING.try_with(|r| r.set(false));
    got
}

fn record_as_owner(size: usize, class: u32, interval: u64, local: Option<&Local>) -> (u32, u32) {
    let t = table();
    if t.is_null() {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return (0, 0);
    }
    // SAFETY: a published table is mapped for the life of the process.
    let t = unsafe { &*t };
    let kept = local.map_or(0, Local::take_spare);
    let Some(slot) = (if kept != 0 {
        Some(kept)
    } else {
        t.free.0.pop(|k| t.link(k))
    }) else {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return (0, 0);
    };
    let r = &t.records[slot as usize - 1];
    let component = COMPONENT.try_with(|c| c.get()).unwrap_or(0);
    // Counted first (in the heap's batch; a flush, or a caller without a
    // heap, makes locked adds): on x86 a locked instruction waits until
    // every store before it is written, and the record's stores below go
    // to lines that are usually cold. After them, nothing here waits for
    // those stores (a snapshot may count this sample a moment early).
    let units = estimate_units(size as u64, interval);
    let k = (component as usize).min(COMPONENTS);
    count(local, k, units, 1);
    let seq = t.seq(slot);
    seq.write_begin();
    // The stack goes straight into the record (no buffer to clear and
    // copy).
    let depth = crate::unwind::backtrace(&r.frames, SKIP);
    r.depth.store(depth as u32, Ordering::Relaxed);
    r.size.store(size as u64, Ordering::Relaxed);
    r.class.store(class, Ordering::Relaxed);
    r.interval.store(interval, Ordering::Relaxed);
    r.birth_ms.store(birth_ms(), Ordering::Relaxed);
    r.thread.store(thread_id(), Ordering::Relaxed);
    r.component.store(component, Ordering::Relaxed);
    seq.write_end();
    t.live[slot as usize - 1].store(1, Ordering::Release);
    (slot, quick(units, k))
}

/// The sampled block of `slot` was freed: drop its record. Returns the
/// class and size it was counted under.
///
/// # Panics
/// Never on a slot [`record`] returned; a bad slot is a bug (debug
/// assertion) and is ignored in release builds.
pub(crate) fn remove(slot: u32) -> (u32, usize) {
    let Some((t, r)) = record_of(slot) else {
        debug_assert!(false, "bad sample slot {slot}");
        return (0, 0);
    };
    let (class, size) = (
        r.class.load(Ordering::Relaxed),
        r.size.load(Ordering::Relaxed),
    );
    let k = (r.component.load(Ordering::Relaxed) as usize).min(COMPONENTS);
    t.release(
        slot,
        estimate_units(size, r.interval.load(Ordering::Relaxed)),
        k,
        None,
    );
    (class, size as usize)
}

/// The sampled block of `slot`, whose [`quick`] word `q` is not 0, was
/// freed: drop its record without reading it (the caller counts the free
/// by its own size), counted in `local` (see `release`).
pub(crate) fn remove_quick(slot: u32, q: u32, local: Option<&Local>) {
    let Some((t, _)) = record_of(slot) else {
        debug_assert!(false, "bad sample slot {slot}");
        return;
    };
    debug_assert!(q != 0);
    t.release(slot, u64::from(q >> 8), (q & 0xff) as usize, local);
}

/// The table and the record of `slot`, if the table exists and the slot
/// is one of its.
fn record_of(slot: u32) -> Option<(&'static Table, &'static Record)> {
    let t = TABLE.load(Ordering::Acquire);
    if t.is_null() || slot == 0 || slot as usize > CAPACITY {
        return None;
    }
    // SAFETY: a published table is mapped for the life of the process.
    let t: &'static Table = unsafe { &*t };
    Some((t, &t.records[slot as usize - 1]))
}

/// The class and size the sampled block of `slot` is counted under (its
/// holder asks).
pub(crate) fn counted(slot: u32) -> (u32, usize) {
    match record_of(slot) {
        Some((_, r)) => (
            r.class.load(Ordering::Relaxed),
            r.size.load(Ordering::Relaxed) as usize,
        ),
        None => (0, 0),
    }
}

/// The sampled block of `slot` was resized in place to `size` bytes of
/// `class`. Returns its new [`quick`] word.
pub(crate) fn resize(slot: u32, size: usize, class: u32) -> u32 {
    let Some((t, r)) = record_of(slot) else {
        return 0;
    };
    let (old, mean) = (
        r.size.load(Ordering::Relaxed),
        r.interval.load(Ordering::Relaxed),
    );
    let k = (r.component.load(Ordering::Relaxed) as usize).min(COMPONENTS);
    let units = estimate_units(size as u64, mean);
    TOTALS[k].add(units.wrapping_sub(estimate_units(old, mean)), 0);
    let seq = t.seq(slot);
    seq.write_begin();
    r.size.store(size as u64, Ordering::Relaxed);
    r.class.store(class, Ordering::Relaxed);
    seq.write_end();
    quick(units, k)
}

/// One live sample, as copied out of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Bytes the caller asked for.
    pub size: u64,
    /// Size class index ([`LARGE_CLASS`] for the large band).
    pub class: u32,
    /// Component id ([`component`]; 0: none).
    pub component: u32,
    /// The mean sampling interval in force when it was taken (bytes).
    pub interval: u64,
    /// When it was allocated, on [`clock_ms`]'s clock.
    pub birth_ms: u64,
    /// The allocating thread's kernel id.
    pub thread: u64,
    /// Frames used in `frames`.
    pub depth: usize,
    /// Return addresses, innermost first (the allocator's own frames
    /// included; a report strips them).
    pub frames: [usize; FRAMES],
}

impl Sample {
    /// The probability that a block of this size was sampled.
    pub fn probability(&self) -> f64 {
        probability(self.size, self.interval)
    }
}

/// Copy every live sample into `out` (cleared first). Never blocks an
/// allocating thread: a record being written is skipped. Allocates only
/// for `out`.
pub fn samples(out: &mut Vec<Sample>) {
    out.clear();
    let t = TABLE.load(Ordering::Acquire);
    if t.is_null() {
        return;
    }
    // SAFETY: a published table is mapped for the life of the process.
    let t = unsafe { &*t };
    for (i, r) in t.records.iter().enumerate() {
        let slot = i as u32 + 1;
        if !t.is_live(slot) {
            continue;
        }
        let seq = t.seq(slot);
        for _attempt in 0..4 {
            let Some(s) = seq.read_begin() else {
                continue;
            };
            let mut v = Sample {
                size: r.size.load(Ordering::Relaxed),
                class: r.class.load(Ordering::Relaxed),
                component: r.component.load(Ordering::Relaxed),
                interval: r.interval.load(Ordering::Relaxed),
                birth_ms: r.birth_ms.load(Ordering::Relaxed),
                thread: r.thread.load(Ordering::Relaxed),
                depth: (r.depth.load(Ordering::Relaxed) as usize).min(FRAMES),
                frames: [0; FRAMES],
            };
            for (d, f) in v.frames.iter_mut().zip(&r.frames).take(v.depth) {
                *d = f.load(Ordering::Relaxed) as usize;
            }
            // Freed meanwhile (its record may be stale): not live.
            if seq.read_valid(s) {
                if t.is_live(slot) {
                    out.push(v);
                }
                break;
            }
        }
    }
}

/// The sampler's own figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProfileCounters {
    /// Samples recorded so far.
    pub taken: u64,
    /// Samples dropped because every slot was live (or the table could not
    /// be mapped).
    pub dropped: u64,
    /// Records removed because their block was freed: the samples taken
    /// less those live now (the live ones are counted per component as
    /// samples come and go, so this is exact at rest).
    pub removed: u64,
    /// Stacks the system unwinder walked. Every sample captures a stack;
    /// the rest came from the frame cache (`unwind.rs`).
    pub stacks_unwound: u64,
}

/// The sampler's counters, with `pending` (every heap's batched counts,
/// `crate::profile_counters` sums them) added to the shared totals.
pub(crate) fn counters(pending: &Pending) -> ProfileCounters {
    let taken = TAKEN.load(Ordering::Relaxed).wrapping_add(pending.taken);
    let live: u64 = (0..=COMPONENTS).map(|k| live_of(k, pending).1).sum();
    ProfileCounters {
        taken,
        dropped: DROPPED.load(Ordering::Relaxed),
        removed: taken.saturating_sub(live),
        stacks_unwound: crate::unwind::SLOW.load(Ordering::Relaxed) as u64,
    }
}

/// Component `k`'s (estimated live bytes, live samples): its shared totals
/// plus what heaps hold back, at least 0.
fn live_of(k: usize, pending: &Pending) -> (u64, u64) {
    let (units, n) = TOTALS[k].raw();
    let units = units.wrapping_add(pending.units[k]);
    let n = n.wrapping_add(pending.samples[k]);
    (
        ((units as i64).max(0) as u64) << 4,
        (n as i64).max(0) as u64,
    )
}

/// The clock samples' birth times are on: coarse monotonic milliseconds.
pub fn clock_ms() -> u64 {
    os::now_ms()
}

/// Interned component names: slot state (0 free, 1 being written, 2 set),
/// then the name's pointer and length.
struct Names {
    state: [AtomicU32; COMPONENTS],
    ptr: [AtomicPtr<u8>; COMPONENTS],
    len: [AtomicUsize; COMPONENTS],
}

static NAMES: Names = Names {
    state: [const { AtomicU32::new(0) }; COMPONENTS],
    ptr: [const { AtomicPtr::new(ptr::null_mut()) }; COMPONENTS],
    len: [const { AtomicUsize::new(0) }; COMPONENTS],
};

/// The id of component `name` (interned once; `1..=COMPONENTS`), or 0 when
/// [`COMPONENTS`] names are taken already. Never allocates.
pub fn component(name: &'static str) -> u32 {
    let mut i = 0;
    while i < COMPONENTS {
        match NAMES.state[i].load(Ordering::Acquire) {
            2 => {
                if component_name(i as u32 + 1) == Some(name) {
                    return i as u32 + 1;
                }
                i += 1;
            }
            1 => core::hint::spin_loop(), // a name being written: look again
            _ => {
                if NAMES.state[i]
                    .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    NAMES.ptr[i].store(name.as_ptr().cast_mut(), Ordering::Relaxed);
                    NAMES.len[i].store(name.len(), Ordering::Relaxed);
                    NAMES.state[i].store(2, Ordering::Release);
                    return i as u32 + 1;
                }
            }
        }
    }
    0
}

/// The name of component `id`, if one was interned under it.
pub fn component_name(id: u32) -> Option<&'static str> {
    let i = (id as usize).checked_sub(1)?;
    if i >= COMPONENTS || NAMES.state[i].load(Ordering::Acquire) != 2 {
        return None;
    }
    let p = NAMES.ptr[i].load(Ordering::Relaxed);
    let n = NAMES.len[i].load(Ordering::Relaxed);
    // SAFETY: state 2 (seen with Acquire) says `p, n` were stored from a
    // `&'static str` and never change again.
    Some(unsafe { core::str::from_utf8_unchecked(core::slice::from_raw_parts(p, n)) })
}

/// Make `id` the calling thread's current component (0: none); returns
/// the previous one. One thread-local store.
pub fn set_component(id: u32) -> u32 {
    COMPONENT.try_with(|c| c.replace(id)).unwrap_or(0)
}

/// Live memory per component as the samples estimate it, without walking
/// the table: calls `f(name, estimated live bytes, live samples)` for each
/// component with live samples ("" for memory allocated outside any).
/// `pending`: every heap's batched counts (`stats.rs` sums them).
pub(crate) fn components_live(pending: &Pending, mut f: impl FnMut(&'static str, u64, u64)) {
    for k in 0..=COMPONENTS {
        let (bytes, n) = live_of(k, pending);
        if n == 0 {
            continue;
        }
        let name = if k == 0 {
            ""
        } else {
            component_name(k as u32).unwrap_or("")
        };
        f(name, bytes, n);
    }
}

/// The calling thread's current component.
pub fn current_component() -> u32 {
    COMPONENT.try_with(|c| c.get()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_average_to_the_mean() {
        let mut rng = 12345;
        let n = 200_000;
        let sum: f64 = (0..n).map(|_| next_gap(&mut rng, 1 << 20) as f64).sum();
        let mean = sum / n as f64;
        assert!(
            (mean / (1u64 << 20) as f64 - 1.0).abs() < 0.01,
            "mean {mean}"
        );
        assert_eq!(next_gap(&mut rng, 0), u64::MAX);
    }

    #[test]
    fn components_intern_once() {
        let a = component("profile-test-a");
        let b = component("profile-test-b");
        assert!(a != 0 && b != 0 && a != b);
        assert_eq!(component("profile-test-a"), a);
        assert_eq!(component_name(b), Some("profile-test-b"));
        assert_eq!(component_name(0), None);
        let before = set_component(a);
        assert_eq!(current_component(), a);
        set_component(before);
    }

    #[test]
    fn records_round_trip_and_free_their_slot() {
        let (slot, q) = record(4242, 7, 1 << 20, None);
        assert!(slot != 0);
        let k = current_component().min(COMPONENTS as u32);
        assert_eq!(q & 0xff, k, "the quick word names the component");
        assert_eq!(u64::from(q >> 8), estimate_units(4242, 1 << 20));
        let mut v = Vec::new();
        samples(&mut v);
        let s = v.iter().find(|s| s.size == 4242 && s.class == 7).unwrap();
        assert!(s.depth > 0, "a stack was captured");
        assert_eq!(s.thread, os::thread_id());
        let q = resize(slot, 5000, 8);
        assert_eq!(u64::from(q >> 8), estimate_units(5000, 1 << 20));
        assert_eq!(remove(slot), (8, 5000));
        samples(&mut v);
        assert!(!v.iter().any(|s| s.size == 5000 && s.class == 8));
    }

    #[test]
    fn a_quick_removal_drops_the_sample_and_its_estimate() {
        let local = Local::default();
        let (slot, q) = record(6006, 9, 1 << 20, None);
        assert!(slot != 0 && q != 0);
        let mut v = Vec::new();
        samples(&mut v);
        assert!(v.iter().any(|s| s.size == 6006 && s.class == 9));
        remove_quick(slot, q, Some(&local));
        assert_eq!(
            local.spare.load(Ordering::Relaxed),
            slot,
            "kept for the next sample"
        );
        assert_eq!(
            local.samples.load(Ordering::Relaxed),
            1u64.wrapping_neg(),
            "the drop waits in the batch"
        );
        samples(&mut v);
        assert!(!v.iter().any(|s| s.size == 6006 && s.class == 9));
        // The slot is free again: the next record may take it.
        let (again, q2) = record(6006, 9, 1 << 20, Some(&local));
        assert_eq!(
            (again, local.spare.load(Ordering::Relaxed)),
            (slot, 0),
            "the kept slot was taken"
        );
        assert_eq!(
            (
                local.samples.load(Ordering::Relaxed),
                local.taken.load(Ordering::Relaxed)
            ),
            (0, 1)
        );
        remove_quick(again, q2, None);
        let taken = TAKEN.load(Ordering::Relaxed);
        local.flush();
        assert!(TAKEN.load(Ordering::Relaxed) > taken, "flushed");
        assert_eq!(
            (
                local.samples.load(Ordering::Relaxed),
                local.taken.load(Ordering::Relaxed),
                local.changes.load(Ordering::Relaxed)
            ),
            (0, 0, 0)
        );
    }

    #[test]
    fn a_heaps_batched_samples_reach_a_reader_and_its_slot_goes_back() {
        let id = component("pending-test");
        let before = set_component(id);
        let local = Local::default();
        let (a, qa) = record(8008, 9, 1 << 20, Some(&local));
        let (b, _) = record(8008, 9, 1 << 20, Some(&local));
        set_component(before);
        assert!(a != 0 && b != 0 && qa != 0);
        remove_quick(a, qa, Some(&local));
        let live = |p: &Pending| {
            let mut got = None;
            components_live(p, |name, bytes, n| {
                if name == "pending-test" {
                    got = Some((bytes, n));
                }
            });
            got
        };
        // Not flushed (2 changes of 32): the shared totals alone miss the
        // live sample, the heap's batch added by a reader has it.
        assert_eq!(live(&Pending::new()), None);
        // Other tests record samples at once (shared counts) on parallel
        // threads: the baseline is read before the batch's reading.
        let base = counters(&Pending::new()).taken;
        let mut p = Pending::new();
        local.add_to(&mut p);
        let (bytes, n) = live(&p).expect("the batch is read");
        assert_eq!(n, 1);
        assert!(
            bytes >= 8008,
            "an estimate of {bytes} for 8008 bytes at 1 MiB"
        );
        assert!(counters(&p).taken >= base + 2);
        // The thread exits: the batch is flushed and the kept slot freed.
        assert_eq!(local.spare.load(Ordering::Relaxed), a);
        local.give_back();
        assert_eq!(local.spare.load(Ordering::Relaxed), 0);
        assert_eq!(live(&Pending::new()).map(|l| l.1), Some(1));
        remove(b);
        assert_eq!(live(&Pending::new()), None);
    }

    #[test]
    fn the_fast_logarithm_matches_the_library() {
        let mut x = 0x1234_5678_9abc_def1u64;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
            assert!((ln_unit(u) - u.ln()).abs() < 1e-8, "{u}");
        }
        for u in [1.0, 0.5, 0.25, f64::EPSILON, 1.0 / (1u64 << 53) as f64] {
            assert!((ln_unit(u) - u.ln()).abs() < 1e-8, "{u}");
        }
    }

    #[test]
    fn the_quick_word_packs_or_declines() {
        assert_eq!(quick(0, 3), 0);
        assert_eq!(quick(1 << 24, 3), 0);
        let q = quick(12345, 200);
        assert_eq!((q >> 8, q & 0xff), (12345, 200));
    }
}
#[cfg(test)]
mod timing {
    /// The cost of a capture, by the system unwinder and from the cache:
    /// `cargo test --release -p alloc-core --lib timing -- --ignored
    /// --nocapture`.
    #[test]
    #[ignore]
    fn capture_cost() {
        #[inline(never)]
        fn deep(n: usize) -> usize {
            if n > 0 {
                return core::hint::black_box(deep(n - 1)) + 1;
            }
            let buf: Vec<crate::sync::AtomicU64> =
                (0..32).map(|_| crate::sync::AtomicU64::new(0)).collect();
            let mut d = 0;
            let mut t = std::time::Instant::now();
            for i in 0..10_001 {
                if i == 1 {
                    t = std::time::Instant::now(); // the first one filled the cache
                }
                d = crate::unwind::backtrace(&buf, 0);
            }
            let cached = t.elapsed().as_nanos() / 10_000;
            let t = std::time::Instant::now();
            let mut walked = 0;
            for _ in 0..1000 {
                crate::os::walk_stack(&mut |_| {
                    walked += 1;
                    walked % 36 != 0
                });
            }
            let slow = t.elapsed().as_nanos() / 1000;
            println!("{d} frames: system unwinder {slow} ns, cached {cached} ns");
            let t = std::time::Instant::now();
            for _ in 0..10_000 {
                let (s, _) = super::record(100, 3, 1 << 20, None);
                super::remove(s);
            }
            println!("record + remove: {} ns", t.elapsed().as_nanos() / 10_000);
            0
        }
        deep(5);
        deep(20);
        deep(40);
    }
}
