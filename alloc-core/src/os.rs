//! The OS layer: every system call the allocator makes goes through here.
//!
//! Memory comes from anonymous private `mmap`; nothing here allocates.

use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

/// The OS page size the allocator assumes (checked once at start-up).
pub(crate) const PAGE_SIZE: usize = 4096;

/// Map `size` bytes of fresh, zeroed, read-write memory. Null on failure.
pub(crate) fn map(size: usize) -> *mut u8 {
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
static HINT: AtomicUsize = AtomicUsize::new(0);
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
        unmap(p.cast(), size);
        return ptr::null_mut();
    }
    p.cast()
}

/// Map `size` bytes (a multiple of the page size) aligned to `align`
/// (a power of two, at least a page): at the aligned hint if the kernel
/// grants it, else over-map and trim both ends.
pub(crate) fn map_aligned(size: usize, align: usize) -> *mut u8 {
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
    trim_to_aligned(p, total, size, align)
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
    trim_to_aligned(p, total, size, align)
}

fn trim_to_aligned(p: *mut u8, total: usize, size: usize, align: usize) -> *mut u8 {
    let addr = p as usize;
    let aligned = (addr + align - 1) & !(align - 1);
    let front = aligned - addr;
    let back = total - front - size;
    if front > 0 {
        unmap(p, front);
    }
    if back > 0 {
        unmap((aligned + size) as *mut u8, back);
    }
    aligned as *mut u8
}

/// Give a mapping (or a page-aligned part of one) back to the OS.
pub(crate) fn unmap(p: *mut u8, size: usize) {
    // SAFETY: callers pass a page-aligned range they own and no longer use.
    unsafe {
        libc::munmap(p.cast(), size);
    }
}

/// Decommit a page-aligned range: the address space stays, the pages go back
/// to the OS and read as zero when touched again.
pub(crate) fn decommit(p: *mut u8, size: usize) {
    if size == 0 {
        return;
    }
    // SAFETY: callers pass a page-aligned range of their own mapping whose
    // contents they no longer need.
    unsafe {
        libc::madvise(p.cast(), size, libc::MADV_DONTNEED);
    }
}

/// Try to grow or shrink the mapping at `p` in place. True on success.
pub(crate) fn remap_in_place(p: *mut u8, old: usize, new: usize) -> bool {
    // SAFETY: `p..p+old` is a mapping the caller owns; without MAYMOVE the
    // kernel either resizes it where it is or fails and leaves it alone.
    let r = unsafe { libc::mremap(p.cast(), old, new, 0) };
    r != libc::MAP_FAILED
}

/// Move the mapping `p..p+old` to a fresh `align`-aligned place of `new`
/// bytes without copying (page tables move). Null on failure, in which case
/// the old mapping is untouched.
pub(crate) fn remap_aligned(p: *mut u8, old: usize, new: usize, align: usize) -> *mut u8 {
    let target = reserve_aligned(new, align);
    if target.is_null() {
        return target;
    }
    // SAFETY: `p..p+old` is the caller's mapping; `target..target+new` is a
    // reservation we own, which MREMAP_FIXED replaces atomically.
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
        unmap(target, new);
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
