//! libFuzzer entry point of the `x86_decode` target (see `hv_fuzz::targets::x86_decode`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hv_fuzz::targets::x86_decode(data));
