//! libFuzzer entry point of the `bundle` target (see `hv_fuzz::targets::bundle`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hv_fuzz::targets::bundle(data));
