//! libFuzzer entry point of the `bzimage` target (see `hv_fuzz::targets::bzimage`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hv_fuzz::targets::bzimage(data));
