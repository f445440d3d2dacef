//! `libpool_alloc.so`: the allocator behind the C `malloc` family, for any
//! program, with `LD_PRELOAD=…/libpool_alloc.so program` or linked
//! directly (`-lpool_alloc`).
//!
//! Every function follows its C (and glibc) contract: `errno` is `ENOMEM`
//! on failure (`EINVAL` for a bad alignment), `free(NULL)` does nothing,
//! `realloc(NULL, n)` is `malloc(n)`, `realloc(p, 0)` frees and returns
//! null, `calloc` and `reallocarray` refuse overflowing products,
//! `posix_memalign` returns its error instead of setting `errno`. The
//! semantics (sizes found from the pointer, alignment) are
//! `alloc_core::cabi`; this crate only adapts the calling convention and
//! `errno`, and registers the fork handlers when the library is loaded.
//!
//! Stats for programs that cannot call Rust (`report.rs`):
//! `POOL_ALLOC_STATS_AT_EXIT=1` prints the stats table and the leak report
//! to stderr at exit; `POOL_ALLOC_STATS_FILE=path` appends the snapshot
//! as one JSON line every `POOL_ALLOC_STATS_INTERVAL_MS` (default 1000).
//!
//! The allocation paths here never allocate through Rust's global
//! allocator (which, in this library, is the system `malloc`: these very
//! functions once preloaded). The stats reporting (`report.rs`: the
//! table, the JSON lines, its thread) does, outside any allocation path.

mod report;

use alloc_core::cabi;
use core::ffi::{c_int, c_void};
use core::ptr;

/// Set `errno` to `e`.
fn set_errno(e: c_int) {
    // SAFETY: `__errno_location` returns this thread's errno slot, valid
    // for the thread's life.
    unsafe { *libc::__errno_location() = e };
}

/// `p`, setting `errno` to `ENOMEM` when it is null.
fn or_enomem(p: *mut u8) -> *mut c_void {
    if p.is_null() {
        set_errno(libc::ENOMEM);
    }
    p.cast()
}

/// Allocate `size` bytes (C `malloc`).
#[no_mangle]
pub extern "C" fn malloc(size: usize) -> *mut c_void {
    or_enomem(cabi::malloc(size))
}

/// Allocate `n * size` zeroed bytes (C `calloc`); null with `ENOMEM` on
/// overflow.
#[no_mangle]
pub extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    or_enomem(cabi::calloc(n, size))
}

/// Free `p` (C `free`).
///
/// # Safety
/// * `p` is null or a live block from this library; the caller gives it
///   up.
#[no_mangle]
pub unsafe extern "C" fn free(p: *mut c_void) {
    // SAFETY: caller contract.
    unsafe { cabi::free_c(p.cast()) }
}

/// Free `p` (`cfree`, an old glibc alias).
///
/// # Safety
/// * As [`free`].
#[no_mangle]
pub unsafe extern "C" fn cfree(p: *mut c_void) {
    // SAFETY: caller contract.
    unsafe { cabi::free_c(p.cast()) }
}

/// Resize `p` to `size` bytes (C `realloc`).
///
/// # Safety
/// * `p` is null or a live block from this library; on a non-null return
///   (or with `size == 0`) the caller gives `p` up.
#[no_mangle]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: caller contract.
    let q = unsafe { cabi::realloc(p.cast(), size) };
    if q.is_null() && size != 0 {
        set_errno(libc::ENOMEM);
    }
    q.cast()
}

/// Resize `p` to `n * size` bytes (`reallocarray`); null with `ENOMEM` on
/// overflow, `p` then untouched.
///
/// # Safety
/// * As [`realloc`].
#[no_mangle]
pub unsafe extern "C" fn reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void {
    match n.checked_mul(size) {
        // SAFETY: caller contract.
        Some(total) => unsafe { realloc(p, total) },
        None => {
            set_errno(libc::ENOMEM);
            ptr::null_mut()
        }
    }
}

/// An alignment `posix_memalign` accepts: a power of two multiple of the
/// pointer size.
fn valid_posix_align(align: usize) -> bool {
    align.is_power_of_two() && align.is_multiple_of(core::mem::size_of::<*mut c_void>())
}

/// Store a block of `size` bytes aligned to `align` at `*out` (POSIX
/// `posix_memalign`): 0, `EINVAL` for a bad alignment, `ENOMEM`; `*out`
/// and `errno` untouched on error.
///
/// # Safety
/// * `out` is valid for a pointer write.
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    if !valid_posix_align(align) || align >= cabi::MAX_ALIGN {
        return libc::EINVAL;
    }
    let p = cabi::memalign(align, size);
    if p.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: caller contract.
    unsafe { *out = p.cast() };
    0
}

/// A block of `size` bytes aligned to `align` (C11 `aligned_alloc`), as
/// [`memalign`] (glibc does the same).
#[no_mangle]
pub extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    memalign(align, size)
}

/// A block of `size` bytes aligned to `align` (`memalign`). An alignment
/// that is not a power of two is rounded up to one, as glibc does; one of
/// 4 MiB or more gets `EINVAL`.
#[no_mangle]
pub extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    let align = align
        .max(1)
        .checked_next_power_of_two()
        .unwrap_or(usize::MAX);
    if align >= cabi::MAX_ALIGN {
        set_errno(libc::EINVAL);
        return ptr::null_mut();
    }
    or_enomem(cabi::memalign(align, size))
}

/// A page-aligned block of `size` bytes (`valloc`).
#[no_mangle]
pub extern "C" fn valloc(size: usize) -> *mut c_void {
    or_enomem(cabi::memalign(page_size(), size))
}

/// A page-aligned block of `size` bytes rounded up to whole pages
/// (`pvalloc`; 0 gives one page).
#[no_mangle]
pub extern "C" fn pvalloc(size: usize) -> *mut c_void {
    let page = page_size();
    match size.max(1).checked_next_multiple_of(page) {
        Some(n) => or_enomem(cabi::memalign(page, n)),
        None => or_enomem(ptr::null_mut()),
    }
}

/// The usable bytes of `p` (`malloc_usable_size`); 0 for null.
///
/// # Safety
/// * `p` is null or a live block from this library.
#[no_mangle]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    // SAFETY: caller contract.
    unsafe { cabi::usable_size(p.cast()) }
}

fn page_size() -> usize {
    cabi::PAGE_SIZE
}

extern "C" fn fork_prepare() {
    cabi::fork_prepare();
}

extern "C" fn fork_parent() {
    cabi::fork_parent();
}

extern "C" fn fork_child() {
    cabi::fork_child();
}

/// Runs when the library is loaded: registers the fork handlers, and
/// starts the stats reporting the environment asks for (`report.rs`).
extern "C" fn on_load() {
    // SAFETY: three handlers with the signature pthread_atfork expects;
    // they take and release the allocator's locks only.
    unsafe {
        libc::pthread_atfork(Some(fork_prepare), Some(fork_parent), Some(fork_child));
    }
    report::start_from_env();
}

#[used]
#[link_section = ".init_array"]
static ON_LOAD: extern "C" fn() = on_load;
