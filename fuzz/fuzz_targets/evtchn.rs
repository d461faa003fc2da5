//! libFuzzer entry point of the `evtchn` target (see `hv_fuzz::targets::evtchn`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hv_fuzz::targets::evtchn(data));
