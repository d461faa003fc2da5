//! libFuzzer entry point of the `pt` target (see `hv_fuzz::targets::pt`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hv_fuzz::targets::pt(data));
