pub use alloc_core::*;
pub use alloc_stats as stats;
