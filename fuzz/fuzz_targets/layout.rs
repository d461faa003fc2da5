//! libFuzzer entry point of the `layout` target (see `hv_fuzz::targets::layout`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hv_fuzz::targets::layout(data));
