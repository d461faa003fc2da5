//! libFuzzer entry point of the `frames` target (see `hv_fuzz::targets::frames`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hv_fuzz::targets::frames(data));
