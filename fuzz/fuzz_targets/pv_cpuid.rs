//! libFuzzer entry point of the `pv_cpuid` target (see `hv_fuzz::targets::pv_cpuid`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hv_fuzz::targets::pv_cpuid(data));
