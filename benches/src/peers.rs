//! The allocators under comparison, each reachable through `GlobalAlloc`.
//!
//! In one-process mode every peer compiled into this binary is called
//! directly (`System.alloc(..)`, `MIMALLOC.alloc(..)`, ...). In
//! one-process-per-allocator mode the workloads call [`Installed`], which goes
//! through `std::alloc` to whatever this binary installed as
//! `#[global_allocator]` (chosen by a `global-*` cargo feature).

use std::alloc::{GlobalAlloc, Layout};

/// Our allocator, called directly (not installed) in one-process mode.
pub static OURS: pool_alloc::PoolAlloc = pool_alloc::PoolAlloc::new();
/// mimalloc (v3, or v2 with the `mimalloc-v2` feature).
#[cfg(feature = "mimalloc")]
pub static MIMALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
/// jemalloc (tikv-jemallocator, prefixed symbols: it does not replace malloc).
#[cfg(feature = "jemalloc")]
pub static JEMALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
/// rpmalloc (its `preload` build initialises itself; it does not replace malloc).
#[cfg(feature = "rpmalloc")]
pub static RPMALLOC: rpmalloc::RpMalloc = rpmalloc::RpMalloc;

/// The name of the mimalloc peer in this build.
pub const MIMALLOC_NAME: &str = if cfg!(feature = "mimalloc-v2") {
    "mimalloc-v2"
} else {
    "mimalloc-v3"
};

/// Every peer name, in report order.
pub const ALL_NAMES: [&str; 6] = [
    "system",
    "mimalloc-v3",
    "mimalloc-v2",
    "jemalloc",
    "rpmalloc",
    "ours",
];

/// The allocator this binary installed as `#[global_allocator]`.
///
/// NB: the precedence here must match the `cfg`s in `main.rs`; a build with
/// several `global-*` features installs the first of ours, jemalloc,
/// mimalloc, rpmalloc (so `--all-features` still compiles).
pub const fn installed_name() -> &'static str {
    if cfg!(feature = "global-ours") {
        "ours"
    } else if cfg!(feature = "global-ours-noprofile") {
        "ours-noprofile"
    } else if cfg!(feature = "global-ours-nostats") {
        "ours-nostats"
    } else if cfg!(feature = "global-jemalloc") {
        "jemalloc"
    } else if cfg!(any(
        feature = "global-mimalloc",
        feature = "global-mimalloc-v2"
    )) {
        MIMALLOC_NAME
    } else if cfg!(feature = "global-rpmalloc") {
        "rpmalloc"
    } else {
        "system"
    }
}

/// The `#[global_allocator]` of this binary, reached through `std::alloc`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Installed;

// SAFETY: every method forwards to the process's global allocator with the
// caller's arguments unchanged, so the caller's guarantees carry over.
unsafe impl GlobalAlloc for Installed {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { std::alloc::alloc(layout) }
    }
    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded; `ptr` came from `alloc` with `layout`.
        unsafe { std::alloc::dealloc(ptr, layout) }
    }
    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded; the caller upholds the contract.
        unsafe { std::alloc::alloc_zeroed(layout) }
    }
    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded; the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { std::alloc::realloc(ptr, layout, new_size) }
    }
}

/// A peer to call: one of the compiled-in allocators, or the installed one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    System,
    Mimalloc,
    Jemalloc,
    Rpmalloc,
    Ours,
    Installed,
}

impl Peer {
    /// The peer's report name.
    pub fn name(self) -> &'static str {
        match self {
            Peer::System => "system",
            Peer::Mimalloc => MIMALLOC_NAME,
            Peer::Jemalloc => "jemalloc",
            Peer::Rpmalloc => "rpmalloc",
            Peer::Ours => "ours",
            Peer::Installed => installed_name(),
        }
    }

    /// The peers that can be called directly in this build, in report order.
    pub fn compiled() -> Vec<Peer> {
        let mut v = vec![Peer::System];
        if cfg!(feature = "mimalloc") {
            v.push(Peer::Mimalloc);
        }
        if cfg!(feature = "jemalloc") {
            v.push(Peer::Jemalloc);
        }
        if cfg!(feature = "rpmalloc") {
            v.push(Peer::Rpmalloc);
        }
        v.push(Peer::Ours);
        v
    }

    /// A compiled-in peer by report name.
    pub fn by_name(name: &str) -> Option<Peer> {
        Peer::compiled().into_iter().find(|p| p.name() == name)
    }
}

/// Runs `$body` with `$a` bound to a `&'static` reference to `$peer`'s
/// allocator, monomorphised per peer (no dynamic dispatch in the hot loop).
#[macro_export]
macro_rules! with_peer {
    ($peer:expr, |$a:ident| $body:expr) => {{
        use $crate::peers::Peer;
        match $peer {
            Peer::System => {
                let $a: &'static std::alloc::System = &std::alloc::System;
                $body
            }
            #[cfg(feature = "mimalloc")]
            Peer::Mimalloc => {
                let $a = &$crate::peers::MIMALLOC;
                $body
            }
            #[cfg(feature = "jemalloc")]
            Peer::Jemalloc => {
                let $a = &$crate::peers::JEMALLOC;
                $body
            }
            #[cfg(feature = "rpmalloc")]
            Peer::Rpmalloc => {
                let $a = &$crate::peers::RPMALLOC;
                $body
            }
            Peer::Ours => {
                let $a = &$crate::peers::OURS;
                $body
            }
            Peer::Installed => {
                let $a: &'static $crate::peers::Installed = &$crate::peers::Installed;
                $body
            }
            #[allow(unreachable_patterns)]
            other => panic!("peer {} is not compiled into this binary", other.name()),
        }
    }};
}
