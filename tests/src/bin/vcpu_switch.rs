//! The vCPU context switch, exercised by hv's boot-time self-test: with
//! `selftest=vcpu-switch` hv gives domain 0 a second vCPU and, before
//! domain 0 first runs, switches the boot CPU from vCPU 0 to vCPU 1 and
//! back with its real save/load code, checking that general registers,
//! FPU/SSE state (XMM0), AVX state (YMM0's upper half) and XCR0 (vCPU 0
//! runs with AVX enabled, vCPU 1 starts with x87|SSE and enables it), FS
//! and both GS bases and CR0.TS come back and do not leak between the two. A failed check stops hv with a report naming
//! it (the guest line and the summary line would then be missing); a
//! passed run logs the line below and then enters vCPU 0 as if nothing had
//! happened, which this guest confirms by running normally and finding
//! SSE usable (CR0.TS left clear, MXCSR at its reset value).
//!
//! @only: hv (selftest= is hv's own option)
//! @hv-cmdline-append: selftest=vcpu-switch
//! @expect-line: (hv) selftest: vCPU switch 0 -> 1 -> 0 kept registers, FPU/SSE/AVX state, XCR0, FS/GS bases and CR0.TS
#![no_std]
#![no_main]

use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;

guest_abi::pv_guest!(main, name = "vcpu_switch");

fn mxcsr() -> u32 {
    let mut v: u32 = 0;
    // SAFETY: stmxcsr writes the 4-byte local; SSE is enabled for guests.
    unsafe { core::arch::asm!("stmxcsr [{}]", in(reg) &mut v, options(nostack)) };
    v
}

fn main(_si: StartInfoRef) -> ! {
    let mut r = Report::new("vcpu_switch");
    println!("vcpu_switch: domain 0 runs on vCPU 0 after the switch test");
    let m = mxcsr();
    r.check(
        format_args!("MXCSR after the switch test is 0x1f80 (got {m:#x})"),
        m == 0x1f80,
    );
    r.finish()
}
