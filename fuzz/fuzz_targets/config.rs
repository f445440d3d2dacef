#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pool_alloc_fuzz::config(data));
