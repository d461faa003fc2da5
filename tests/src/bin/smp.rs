//! hv's SMP boot self-test: with `selftest=smp` on a 4-CPU machine, hv
//! brings up the three application processors, runs a function on every
//! CPU by a call-function IPI (each must answer with the APIC id it
//! reported at bring-up, and no other CPU may answer), sends each other
//! CPU an event-check IPI, and shoots down a translation each other CPU
//! cached (it must then read the new frame). A failed check stops hv with
//! a report naming it; a passed run logs the lines below and enters
//! domain 0 as usual, which then runs on the boot CPU as on one CPU.
//!
//! @only: hv (selftest= is hv's own option)
//! @smp: 4
//! @hv-cmdline-append: selftest=smp
//! @expect-line: (hv) SMP: 4 CPUs up (CPU, APIC id: [(0, 0), (1, 1), (2, 2), (3, 3)])
//! @expect-line: (hv) selftest: SMP: 4 CPUs answered a call-function IPI with their own APIC ids, the others took an event check and answered while spinning on a held lock; a shootdown reached each of the 3 others
//! @variant: smp2 smp=2 expect-line="(hv) SMP: 2 CPUs up (CPU, APIC id: [(0, 0), (1, 1)])" expect-line="(hv) selftest: SMP: 2 CPUs answered a call-function IPI with their own APIC ids, the others took an event check and answered while spinning on a held lock; a shootdown reached each of the 1 others"
//! @variant: smp1 smp=1 expect-line="(hv) SMP: 1 CPUs up (CPU, APIC id: [(0, 0)])" expect-line="(hv) selftest: SMP: 1 CPUs answered a call-function IPI with their own APIC ids, the others took an event check and answered while spinning on a held lock; a shootdown reached each of the 0 others"
#![no_std]
#![no_main]

use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::{MMUEXT_TLB_FLUSH_ALL, MMUEXT_TLB_FLUSH_MULTI};
use tests::check;
use tests::pvmm::mmuext1;

guest_abi::pv_guest!(main, name = "smp");

fn main(_si: StartInfoRef) -> ! {
    let mut r = Report::new("smp");
    println!("smp: domain 0 runs after the SMP self-test");
    // Flushes of every CPU the domain ran on, and of vCPU 0's: the boot
    // CPU only, so nothing is sent; the guest goes on as on one CPU.
    let mask: u64 = 1;
    let pmask = core::ptr::from_ref(&mask) as u64;
    check!(r, "MMUEXT_TLB_FLUSH_ALL", mmuext1(MMUEXT_TLB_FLUSH_ALL, 0, 0) => 0);
    check!(r, "MMUEXT_TLB_FLUSH_MULTI vCPU 0", mmuext1(MMUEXT_TLB_FLUSH_MULTI, 0, pmask) => 0);
    r.finish()
}
