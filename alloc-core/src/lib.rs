//! temporary stub
use core::alloc::{GlobalAlloc, Layout};
pub struct PoolAlloc;
impl PoolAlloc { pub const fn new() -> Self { PoolAlloc } }
impl Default for PoolAlloc { fn default() -> Self { Self::new() } }
// SAFETY: forwards to System.
unsafe impl GlobalAlloc for PoolAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 { unsafe { std::alloc::System.alloc(l) } }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) { unsafe { std::alloc::System.dealloc(p, l) } }
}
