//! libFuzzer entry point of the `segdesc` target (see `hv_fuzz::targets::segdesc`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hv_fuzz::targets::segdesc(data));
