//! libFuzzer entry point of the `elf` target (see `hv_fuzz::targets::elf`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hv_fuzz::targets::elf(data));
