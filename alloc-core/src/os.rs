//! The OS layer: every system call the allocator makes goes through here
//! (memory mappings, the clock, stderr, the environment, `/proc`, the
//! pthread key that reports thread exit). Nothing here allocates.
//!
//! Memory comes from anonymous private `mmap`.

use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};
use crossbeam_utils::CachePadded;

/// Test-only fault injection (feature `failpoints`): `mmap`, `mremap` and
/// `madvise` fail at random, one call in `one_in`, so tests can show that
/// every failure reaches the caller as null (or a kept block) and nothing
/// is corrupted. Without the feature [`failpoints::hit`] is a constant
/// `false`.
pub mod failpoints {
    #[cfg(feature = "failpoints")]
    use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

    #[cfg(feature = "failpoints")]
    static ONE_IN: AtomicU32 = AtomicU32::new(0);
    #[cfg(feature = "failpoints")]
    static STATE: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    #[cfg(feature = "failpoints")]
    static FAILED: AtomicUsize = AtomicUsize::new(0);

    /// Make one system call in `one_in` fail (0: none), with a seeded
    /// pseudo-random choice.
    #[cfg(feature = "failpoints")]
    pub fn set(one_in: u32, seed: u64) {
        STATE.store(seed | 1, Ordering::Relaxed);
        ONE_IN.store(one_in, Ordering::Relaxed);
    }

    /// How many calls were made to fail so far.
    #[cfg(feature = "failpoints")]
    pub fn failed() -> usize {
        FAILED.load(Ordering::Relaxed)
    }

    /// Whether the system call about to be made must fail.
    #[inline]
    pub(crate) fn hit() -> bool {
        #[cfg(feature = "failpoints")]
        {
            let n = ONE_IN.load(Ordering::Relaxed);
            if n == 0 {
                return false;
            }
            let mut x = STATE.load(Ordering::Relaxed);
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            STATE.store(x, Ordering::Relaxed);
            if x.is_multiple_of(u64::from(n)) {
                FAILED.fetch_add(1, Ordering::Relaxed);
                return true;
            }
        }
        false
    }
}

/// The OS page size the allocator assumes. `page_size_matches` checks it
/// against the system's once, at initialisation (`config.rs`).
pub(crate) const PAGE_SIZE: usize = 4096;

/// Whether the system's page size is [`PAGE_SIZE`]. On a system with
/// larger pages every mapping is still valid (mappings are 4 MiB-aligned),
/// but `madvise` ranges are not page-aligned and fail, so memory is not
/// given back: the caller warns once.
pub(crate) fn page_size_matches() -> bool {
    // SAFETY: sysconf has no preconditions; it reads a system constant.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    n == PAGE_SIZE as libc::c_long
}

/// Map `size` bytes of fresh, zeroed, read-write memory. Null on failure.
pub(crate) fn map(size: usize) -> *mut u8 {
    if failpoints::hit() {
        return ptr::null_mut();
    }
    // SAFETY: an anonymous private mapping with a null hint touches no
    // existing memory; failure is reported as MAP_FAILED and handled.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
        p.cast()
    }
}

/// Reserve `size` bytes of address space with no access.
fn reserve(size: usize) -> *mut u8 {
    if failpoints::hit() {
        return ptr::null_mut();
    }
    // SAFETY: as in `map`; PROT_NONE so nothing is committed.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            size,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
        p.cast()
    }
}

/// Where the next aligned mapping is asked for (a hint, never forced):
/// addresses from 2 TiB up, well away from the heap and the libraries. Most
/// of the time the kernel grants the hint and one `mmap` gives an aligned
/// mapping, instead of an over-sized `mmap` and two trimming `munmap`s.
static HINT: CachePadded<AtomicUsize> = CachePadded::new(AtomicUsize::new(0));
const HINT_BASE: usize = 2 << 40;
const HINT_END: usize = 30 << 40;

fn map_at_hint(size: usize, align: usize) -> *mut u8 {
    if align > (1 << 30) {
        return ptr::null_mut();
    }
    let span = (size + align - 1) & !(align - 1);
    let mut hint = HINT.load(Ordering::Relaxed);
    loop {
        let start = if hint == 0 { HINT_BASE } else { hint };
        let start = (start + align - 1) & !(align - 1);
        let Some(end) = start.checked_add(span) else {
            return ptr::null_mut();
        };
        if end > HINT_END {
            return ptr::null_mut();
        }
        match HINT.compare_exchange_weak(hint, end, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => {
                hint = start;
                break;
            }
            Err(now) => hint = now,
        }
    }
    // SAFETY: without MAP_FIXED the address is only a hint: the kernel never
    // replaces an existing mapping, it picks another place instead.
    let p = unsafe {
        libc::mmap(
            hint as *mut libc::c_void,
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return ptr::null_mut();
    }
    if (p as usize) & (align - 1) != 0 {
        // SAFETY: the mapping was just made and is not aligned: unused.
        unsafe { unmap(p.cast(), size) };
        return ptr::null_mut();
    }
    p.cast()
}

/// Map `size` bytes (a multiple of the page size) aligned to `align`
/// (a power of two, at least a page): at the aligned hint if the kernel
/// grants it, else over-map and trim both ends.
pub(crate) fn map_aligned(size: usize, align: usize) -> *mut u8 {
    if failpoints::hit() {
        return ptr::null_mut();
    }
    let p = map_at_hint(size, align);
    if !p.is_null() {
        return p;
    }
    let Some(total) = size.checked_add(align) else {
        return ptr::null_mut();
    };
    let p = map(total);
    if p.is_null() {
        return p;
    }
    // SAFETY: a fresh mapping of `size + align` bytes.
    unsafe { trim_to_aligned(p, total, size, align) }
}

/// Reserve (PROT_NONE) `size` bytes aligned to `align`; used as the target
/// of a moving `mremap`.
fn reserve_aligned(size: usize, align: usize) -> *mut u8 {
    let Some(total) = size.checked_add(align) else {
        return ptr::null_mut();
    };
    let p = reserve(total);
    if p.is_null() {
        return p;
    }
    // SAFETY: a fresh reservation of `size + align` bytes.
    unsafe { trim_to_aligned(p, total, size, align) }
}

/// Keep the `align`-aligned `size` bytes of the mapping `p..p+total` and
/// unmap the rest.
///
/// # Safety
/// * `p..p+total` is a mapping just made by the caller, unused, with
///   `total >= size + align`.
unsafe fn trim_to_aligned(p: *mut u8, total: usize, size: usize, align: usize) -> *mut u8 {
    let addr = p as usize;
    let aligned = (addr + align - 1) & !(align - 1);
    let front = aligned - addr;
    let back = total - front - size;
    // SAFETY: caller contract; the front and back pieces lie inside the
    // mapping, outside the aligned part kept.
    unsafe {
        if front > 0 {
            unmap(p, front);
        }
        if back > 0 {
            unmap((aligned + size) as *mut u8, back);
        }
    }
    aligned as *mut u8
}

/// Give a mapping (or a page-aligned part of one) back to the OS.
///
/// # Safety
/// * `p..p+size` is page-aligned, mapped by this allocator, and nothing
///   will read or write it again.
pub(crate) unsafe fn unmap(p: *mut u8, size: usize) {
    // SAFETY: caller contract: the range is ours and unused; munmap of such
    // a range cannot affect any other memory.
    unsafe {
        libc::munmap(p.cast(), size);
    }
}

/// Decommit a page-aligned range: the address space stays, the pages go
/// back to the OS. With `MADV_DONTNEED` (`lazily` false) they read as zero
/// when touched again; with `MADV_FREE` the kernel takes them only when it
/// needs memory, and until then they may keep their contents (resident
/// memory does not drop at once). False when the call failed: the pages are
/// still there, with their contents.
///
/// # Safety
/// * `p..p+size` is page-aligned, inside a mapping of this allocator, and
///   its contents are no longer needed.
#[must_use]
pub(crate) unsafe fn decommit(p: *mut u8, size: usize, lazily: bool) -> bool {
    if size == 0 {
        return true;
    }
    if failpoints::hit() {
        return false;
    }
    let advice = if lazily {
        libc::MADV_FREE
    } else {
        libc::MADV_DONTNEED
    };
    // SAFETY: caller contract; either advice on a private anonymous mapping
    // only drops (or lets the kernel drop) the pages' contents.
    unsafe { libc::madvise(p.cast(), size, advice) == 0 }
}

/// Ask for transparent huge pages on `p..p+size` (`MADV_HUGEPAGE`). Only
/// advice: a kernel without THP support refuses it, and the mapping works
/// the same either way. Returns whether the kernel took it (callers that
/// remember it do).
///
/// # Safety
/// * `p..p+size` is page-aligned and inside a mapping of this allocator.
pub(crate) unsafe fn advise_huge(p: *mut u8, size: usize) -> bool {
    // SAFETY: caller contract; the advice changes how the kernel backs
    // the range, never its contents.
    unsafe { libc::madvise(p.cast(), size, libc::MADV_HUGEPAGE) == 0 }
}

/// Take back [`advise_huge`] on `p..p+size` (`MADV_NOHUGEPAGE`): its next
/// first touches map ordinary pages again. There is no advice back to the
/// kernel's default: under THP mode `always` this also keeps the default
/// huge pages off the range. Advice only, as there; whether it was taken.
///
/// # Safety
/// * `p..p+size` is page-aligned and inside a mapping of this allocator.
pub(crate) unsafe fn advise_not_huge(p: *mut u8, size: usize) -> bool {
    // SAFETY: caller contract; as `advise_huge`.
    unsafe { libc::madvise(p.cast(), size, libc::MADV_NOHUGEPAGE) == 0 }
}

/// Try to grow or shrink the mapping at `p` in place. True on success.
///
/// # Safety
/// * `p..p+old` is a whole mapping of this allocator, owned by the caller.
pub(crate) unsafe fn remap_in_place(p: *mut u8, old: usize, new: usize) -> bool {
    if failpoints::hit() {
        return false;
    }
    // SAFETY: caller contract; without MAYMOVE the kernel either resizes
    // the mapping where it is (growing only into unmapped space) or fails
    // and leaves it alone.
    let r = unsafe { libc::mremap(p.cast(), old, new, 0) };
    r != libc::MAP_FAILED
}

/// Move the mapping `p..p+old` to a fresh `align`-aligned place of `new`
/// bytes without copying (page tables move). Null on failure, in which case
/// the old mapping is untouched.
///
/// # Safety
/// * `p..p+old` is a whole mapping of this allocator, owned by the caller;
///   on success it is gone and the caller uses the returned address.
pub(crate) unsafe fn remap_aligned(p: *mut u8, old: usize, new: usize, align: usize) -> *mut u8 {
    if failpoints::hit() {
        return ptr::null_mut();
    }
    let target = reserve_aligned(new, align);
    if target.is_null() {
        return target;
    }
    // SAFETY: `p..p+old` is the caller's mapping (caller contract);
    // `target..target+new` is a reservation we own, which MREMAP_FIXED
    // replaces atomically.
    let r = unsafe {
        libc::mremap(
            p.cast(),
            old,
            new,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            target.cast::<libc::c_void>(),
        )
    };
    if r == libc::MAP_FAILED {
        // SAFETY: the reservation is ours and was not used.
        unsafe { unmap(target, new) };
        return ptr::null_mut();
    }
    r.cast()
}

/// A coarse monotonic clock in milliseconds. Slow paths only.
pub(crate) fn now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; CLOCK_MONOTONIC_COARSE never fails
    // on Linux.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts);
    }
    (ts.tv_sec as u64) * 1000 + (ts.tv_nsec as u64) / 1_000_000
}

/// Write bytes to stderr without allocating or locking.
pub(crate) fn write_stderr(parts: &[&[u8]]) {
    for part in parts {
        let mut rest = *part;
        while !rest.is_empty() {
            // SAFETY: `rest` is a valid readable slice.
            let n = unsafe { libc::write(2, rest.as_ptr().cast(), rest.len()) };
            if n <= 0 {
                return;
            }
            rest = &rest[n as usize..];
        }
    }
}

/// Read an environment variable without allocating: the bytes of its value.
pub(crate) fn getenv(name: &core::ffi::CStr) -> Option<&'static [u8]> {
    // SAFETY: `name` is NUL-terminated; getenv returns a pointer into the
    // environment block (valid for the process unless someone calls setenv,
    // which we read once at start-up only).
    let p = unsafe { libc::getenv(name.as_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: getenv returned a NUL-terminated C string.
    let s = unsafe { core::ffi::CStr::from_ptr(p) };
    Some(s.to_bytes())
}

/// Resident set size of the process, from `/proc/self/statm`, read without
/// allocating. 0 if it cannot be read.
pub(crate) fn resident_bytes() -> u64 {
    let mut buf = [0u8; 128];
    let Some(n) = read_small_file(c"/proc/self/statm", &mut buf) else {
        return 0;
    };
    // The second field is the resident page count.
    let pages = buf[..n]
        .split(|&b| b == b' ')
        .nth(1)
        .and_then(leading_number)
        .unwrap_or(0);
    pages * PAGE_SIZE as u64
}

/// A pthread key whose destructor is `on_exit`: run at the exit of every
/// thread that set a non-null value for it. None if the key cannot be made.
pub(crate) fn thread_exit_key(
    on_exit: unsafe extern "C" fn(*mut libc::c_void),
) -> Option<libc::pthread_key_t> {
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: `key` is a valid out-pointer; `on_exit` is an `extern "C"`
    // function, which cannot unwind into the C caller.
    let r = unsafe { libc::pthread_key_create(&mut key, Some(on_exit)) };
    (r == 0).then_some(key)
}

/// Give back a key made by [`thread_exit_key`] that lost a race to be the
/// process's one key (no thread has set a value for it).
pub(crate) fn thread_exit_key_delete(key: libc::pthread_key_t) {
    // SAFETY: a key we created and never published; deleting it runs no
    // destructor.
    unsafe { libc::pthread_key_delete(key) };
}

/// Set the calling thread's value for `key` (non-null: its destructor will
/// run at thread exit).
pub(crate) fn thread_exit_key_set(key: libc::pthread_key_t, value: *mut libc::c_void) {
    // SAFETY: `key` was created by `thread_exit_key`. For the first keys
    // glibc stores the value in the thread's static block (no allocation).
    unsafe { libc::pthread_setspecific(key, value) };
}

/// Read a small file into `buf` without allocating; the bytes read.
fn read_small_file(path: &core::ffi::CStr, buf: &mut [u8]) -> Option<usize> {
    // SAFETY: a NUL-terminated path; the fd is closed below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `buf` is writable for its whole length, and `fd` is open.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    // SAFETY: `fd` is ours and open; nothing else holds it.
    unsafe { libc::close(fd) };
    (n > 0).then_some(n as usize)
}

/// The leading decimal number of `b` (after spaces), if any.
fn leading_number(b: &[u8]) -> Option<u64> {
    let b = b.trim_ascii_start();
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    Some(
        b[..digits]
            .iter()
            .fold(0u64, |n, &c| n * 10 + u64::from(c - b'0')),
    )
}

/// The memory limit of this process's cgroup (v2): the lower of
/// `memory.max` and `memory.high`, if either is a number. Read without
/// allocating, from the cgroup named in `/proc/self/cgroup`.
pub(crate) fn cgroup_memory_limit() -> Option<u64> {
    let mut cg = [0u8; 512];
    let n = read_small_file(c"/proc/self/cgroup", &mut cg)?;
    // The v2 line is "0::/path".
    let line = cg[..n]
        .split(|&b| b == b'\n')
        .find(|l| l.starts_with(b"0::"))?;
    let rel = &line[3..];
    let mut path = [0u8; 640];
    let base = b"/sys/fs/cgroup";
    let mut best: Option<u64> = None;
    for file in [&b"/memory.max"[..], b"/memory.high"] {
        let len = base.len() + rel.len() + file.len();
        if len + 1 > path.len() {
            return None;
        }
        path[..base.len()].copy_from_slice(base);
        path[base.len()..base.len() + rel.len()].copy_from_slice(rel);
        path[base.len() + rel.len()..len].copy_from_slice(file);
        path[len] = 0;
        let cpath = core::ffi::CStr::from_bytes_until_nul(&path).ok()?;
        let mut v = [0u8; 32];
        if let Some(k) = read_small_file(cpath, &mut v) {
            if let Some(x) = leading_number(&v[..k]) {
                best = Some(best.map_or(x, |b| b.min(x)));
            }
        }
    }
    best
}

/// Physical memory of the machine in bytes (0 if unknown).
pub(crate) fn physical_memory() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
    if pages <= 0 {
        0
    } else {
        pages as u64 * PAGE_SIZE as u64
    }
}

/// Two random words for hardened mode's keys: the 16 bytes the kernel
/// gives every process at exec (`AT_RANDOM`), mixed with the clock and an
/// address; no system call, no allocation.
pub(crate) fn random_keys() -> (u64, u64) {
    // SAFETY: getauxval has no preconditions; AT_RANDOM, when present,
    // points at 16 bytes that live as long as the process.
    let (a, b) = unsafe {
        let p = libc::getauxval(libc::AT_RANDOM) as *const u64;
        if p.is_null() {
            (0, 0)
        } else {
            (p.read_unaligned(), p.add(1).read_unaligned())
        }
    };
    let here = &a as *const u64 as u64;
    let t = now_ms();
    (
        a ^ here.rotate_left(17) ^ 0x9E37_79B9_7F4A_7C15,
        b ^ t.wrapping_mul(0xBF58_476D_1CE4_E5B9),
    )
}

/// Print `parts` on stderr and abort the process (hardened mode's answer to
/// heap misuse).
pub(crate) fn abort_with(parts: &[&[u8]]) -> ! {
    write_stderr(parts);
    // SAFETY: abort has no preconditions; it does not return.
    unsafe { libc::abort() }
}

// The system unwinder (libgcc_s, which Rust's std links on Linux).
extern "C" {
    fn _Unwind_Backtrace(
        trace: extern "C" fn(*mut libc::c_void, *mut libc::c_void) -> libc::c_int,
        arg: *mut libc::c_void,
    ) -> libc::c_int;
    fn _Unwind_GetIPInfo(ctx: *mut libc::c_void, ip_before_insn: *mut libc::c_int) -> usize;
    fn _Unwind_GetCFA(ctx: *mut libc::c_void) -> usize;
}

/// One frame of [`walk_stack`]: its instruction pointer (a return address
/// except in the innermost frame and in signal frames), its canonical
/// frame address (the stack pointer of its caller at the call), and
/// whether it is a signal frame.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WalkedFrame {
    pub(crate) ip: usize,
    pub(crate) cfa: usize,
    pub(crate) signal: bool,
}

/// Walk the calling thread's stack with the system unwinder (DWARF
/// call-frame information), innermost frame (this function's) first,
/// calling `visit` for each until it returns false or the stack ends.
///
/// The system unwinder rather than frame pointers: Rust release builds and
/// Debian's libraries omit frame pointers, so a frame-pointer walk would
/// stop early or read garbage, while every frame has unwind tables. It
/// does not allocate and takes no lock an allocating thread holds (glibc
/// 2.35+ finds a frame's object with the lock-free `_dl_find_object`;
/// before, `dl_iterate_phdr`'s recursive loader lock, which no thread
/// holds while it allocates). About 140 ns per frame on the dev machine:
/// `unwind.rs` caches what it learns so later walks skip it.
#[inline(never)]
pub(crate) fn walk_stack(visit: &mut dyn FnMut(WalkedFrame) -> bool) {
    extern "C" fn step(ctx: *mut libc::c_void, arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` is the visitor passed below, alive for the whole
        // walk and reached by this callback only; `ctx` is the unwinder's
        // live context for this frame.
        unsafe {
            let visit = &mut *arg.cast::<&mut dyn FnMut(WalkedFrame) -> bool>();
            let mut before = 0;
            let ip = _Unwind_GetIPInfo(ctx, &mut before);
            let frame = WalkedFrame {
                ip,
                cfa: _Unwind_GetCFA(ctx),
                signal: before != 0,
            };
            if ip == 0 || !visit(frame) {
                return 5; // _URC_END_OF_STACK: stop the walk
            }
        }
        0 // _URC_NO_REASON: go on
    }
    let mut visit = visit;
    // SAFETY: `step` matches the unwinder's callback signature and only
    // touches `visit`, which outlives the call.
    unsafe {
        _Unwind_Backtrace(
            step,
            (&mut visit as *mut &mut dyn FnMut(WalkedFrame) -> bool).cast(),
        )
    };
}

/// The stack pointer of the caller (x86-64 Linux; 0 elsewhere, where the
/// unwind cache is off).
#[inline(always)]
pub(crate) fn stack_pointer() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let sp: usize;
        // SAFETY: reads the stack pointer register; touches no memory.
        unsafe {
            core::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags));
        }
        sp
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        0
    }
}

/// Read the word at `addr` of the calling thread's own stack.
///
/// # Safety
/// * `addr` is 8-aligned and lies between the caller's stack pointer and
///   the top of the thread's stack (mapped, readable).
#[inline(always)]
pub(crate) unsafe fn read_stack_word(addr: usize) -> usize {
    // SAFETY: caller contract. Volatile: the word belongs to a caller's
    // frame, which this code does not otherwise know of.
    unsafe { (addr as *const usize).read_volatile() }
}

/// The calling thread's kernel id (as in `/proc/self/task`).
pub(crate) fn thread_id() -> u64 {
    // SAFETY: `gettid` takes no argument and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as u64 }
}

/// Tests: run `f(arg)` on a new raw POSIX thread and wait for it to end.
/// No Rust runtime starts the thread, so nothing allocates on it before
/// `f` does. False when the thread could not be made or joined.
///
/// # Safety
/// * `f` may be called with `arg` on another thread: `arg` is valid for
///   that until this returns.
#[cfg(test)]
pub(crate) unsafe fn run_raw_thread(
    f: extern "C" fn(*mut libc::c_void) -> *mut libc::c_void,
    arg: *mut libc::c_void,
) -> bool {
    let mut t: libc::pthread_t = 0;
    // SAFETY: caller contract for `f` and `arg`; `t` is written by a
    // successful create and joined once.
    unsafe {
        libc::pthread_create(&mut t, ptr::null(), f, arg) == 0
            && libc::pthread_join(t, ptr::null_mut()) == 0
    }
}
