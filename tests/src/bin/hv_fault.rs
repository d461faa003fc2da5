//! hv's own fatal-fault report: hv faults or panics on purpose right before
//! it enters domain 0, so this guest never runs. The report names the CPU,
//! the vector or panic message and the rip, prints a backtrace, and QEMU
//! exits with hv's panic status (65). A report that still let dom0 run
//! would print the guest's line, which must not appear.
//!
//! `selftest=` is hv's own command-line option (Xen has none like it), so
//! the runs are hv-only.
//!
//! @only: hv (hv's selftest= option does not exist on Xen)
//! @hv-cmdline-append: selftest=pagefault
//! @expect-exit: panic
//! @expect-result: none
//! @expect-line: (hv) FATAL: CPU0: #PF (vector 14) in hv at rip
//! @expect-line: (hv) backtrace:
//! @reject-line: hv_fault: domain 0 is running
//! @variant: panic hv-cmdline-append=selftest=panic expect-line="(hv) PANIC on CPU0" expect-line="selftest: panic requested on the command line" expect-line="(hv) backtrace:"
#![no_std]
#![no_main]

use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;

guest_abi::pv_guest!(main, name = "hv_fault");

fn main(_si: StartInfoRef) -> ! {
    println!("hv_fault: domain 0 is running");
    Report::new("hv_fault").finish()
}
