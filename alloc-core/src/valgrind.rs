//! Memcheck client requests (feature `valgrind`): blocks are announced as
//! `malloc`-like and `free`-like, so a program running on this allocator
//! under `valgrind --tool=memcheck` still gets use-after-free and
//! out-of-bounds reports. Without the feature (or off x86-64) every call is
//! an empty inline function.
//!
//! The request is valgrind's documented "special instruction" sequence
//! (`valgrind.h`, `VALGRIND_DO_CLIENT_REQUEST_EXPR`, amd64): four rotations
//! of `rdi` that cancel out, then `xchg rbx, rbx`. Natively it does nothing
//! and returns the default; under valgrind the core intercepts it. Written
//! by hand so the feature needs no C toolchain or headers.
//!
//! The allocator keeps using the first word of a freed block (its free-list
//! link): that word is marked defined right after the free, so memcheck
//! reports accesses to the rest of a freed block.

#[cfg(all(feature = "valgrind", target_arch = "x86_64"))]
mod imp {
    const MALLOCLIKE_BLOCK: usize = 0x1301;
    const FREELIKE_BLOCK: usize = 0x1302;
    const RESIZEINPLACE_BLOCK: usize = 0x130b;
    /// `VG_USERREQ_TOOL_BASE('M','C') + 1`.
    const MAKE_MEM_UNDEFINED: usize = ((b'M' as usize) << 24 | (b'C' as usize) << 16) + 1;
    /// `VG_USERREQ_TOOL_BASE('M','C') + 2`.
    const MAKE_MEM_DEFINED: usize = ((b'M' as usize) << 24 | (b'C' as usize) << 16) + 2;

    #[inline(always)]
    fn request(req: usize, a1: usize, a2: usize, a3: usize, a4: usize) {
        let args: [usize; 6] = [req, a1, a2, a3, a4, 0];
        let mut result: usize = 0;
        // SAFETY: the sequence leaves every register as it was (the four
        // rotations of rdi add up to 128 bits) except rdx, declared as the
        // output; it reads `args` (memory) and may be seen by valgrind,
        // which only inspects the pointed-to words.
        unsafe {
            core::arch::asm!(
                "rol rdi, 3",
                "rol rdi, 13",
                "rol rdi, 61",
                "rol rdi, 51",
                "xchg rbx, rbx",
                inout("rdx") result,
                in("rax") args.as_ptr(),
                options(nostack),
            );
        }
        let _ = result;
    }

    #[inline(always)]
    pub(crate) fn malloclike(p: *mut u8, size: usize, zeroed: bool) {
        request(MALLOCLIKE_BLOCK, p as usize, size, 0, zeroed as usize);
    }

    #[inline(always)]
    pub(crate) fn freelike(p: *mut u8) {
        request(FREELIKE_BLOCK, p as usize, 0, 0, 0);
    }

    #[inline(always)]
    pub(crate) fn resize_in_place(p: *mut u8, old: usize, new: usize) {
        request(RESIZEINPLACE_BLOCK, p as usize, old, new, 0);
    }

    /// Bytes of a freed block the allocator is about to write (zeroing).
    #[inline(always)]
    pub(crate) fn make_writable(p: *mut u8, n: usize) {
        request(MAKE_MEM_UNDEFINED, p as usize, n, 0, 0);
    }

    /// The allocator's own link word in a freed block.
    #[inline(always)]
    pub(crate) fn link_word(p: *mut u8) {
        request(MAKE_MEM_DEFINED, p as usize, 8, 0, 0);
    }
}

#[cfg(not(all(feature = "valgrind", target_arch = "x86_64")))]
mod imp {
    #[inline(always)]
    pub(crate) fn malloclike(_p: *mut u8, _size: usize, _zeroed: bool) {}
    #[inline(always)]
    pub(crate) fn freelike(_p: *mut u8) {}
    #[inline(always)]
    pub(crate) fn resize_in_place(_p: *mut u8, _old: usize, _new: usize) {}
    #[inline(always)]
    pub(crate) fn make_writable(_p: *mut u8, _n: usize) {}
    #[inline(always)]
    pub(crate) fn link_word(_p: *mut u8) {}
}

pub(crate) use imp::*;
