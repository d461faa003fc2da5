//! A fault the guest kernel cannot handle crashes the domain, and the
//! hypervisor says so.
//!
//! At start of day no trap table is registered, so an exception in the
//! guest kernel has nowhere to be bounced. Xen 4.17 logs `d0v0 Unhandled:
//! vec N, #XX[error code]`, crashes the domain with a register dump and,
//! as it is dom0, the machine ("Hardware Dom0 crashed: rebooting machine
//! in 5 seconds."); hv logs `CPU0: domain 0 crashed: #XX (vector N) ...`
//! and leaves with its crash status.
//!
//! The command line picks the fault:
//! - `fault=ud2`: #UD.
//! - `fault=int3`: #BP.
//! - `fault=hlt`, `fault=cli`: privileged instructions in ring 3, #GP(0).
//!   Xen's privileged-op emulator does not handle `hlt`, and emulates
//!   `cli` only for a vCPU with virtual IOPL, which dom0 lacks at start of
//!   day.
//! - `fault=rofault`: a write to the bootstrap L4 at `start_info.pt_base`,
//!   which the domain builder maps read-only: #PF with cr2 = that address
//!   (the guest prints it just before; Xen prints the page walk from it).
//!   Xen shows the error code it would give the guest, 3 = present |
//!   write: it clears the hardware's user bit (7) because the fault is in
//!   guest kernel mode. The value written is the one already there, so a
//!   hypervisor that wrongly let the write through would change nothing.
//!
//! The guest prints its checks and never reaches its result line; if the
//! instruction does not fault it reports FAILURE and powers off, which
//! fails the run on both counts.
//!
//! @cmdline: fault=ud2
//! @expect-result: none
//! @expect-exit: crash
//! @expect-line: about to fault: ud2
//! @expect-line: (hv) ERROR: CPU0: domain 0 crashed: #UD (vector 6)
//! @expect-line: (XEN) d0v0 Unhandled: vec 6, #UD[ffffffff]
//! @expect-line: (XEN) Hardware Dom0 crashed: rebooting machine in 5 seconds.
//! @variant: int3 cmdline=fault=int3 expect-line="about to fault: int3" expect-line="(hv) ERROR: CPU0: domain 0 crashed: #BP (vector 3)" expect-line="(XEN) d0v0 Unhandled: vec 3, #BP[ffffffff]" expect-line="(XEN) Hardware Dom0 crashed: rebooting machine in 5 seconds."
//! @variant: hlt cmdline=fault=hlt expect-line="about to fault: hlt" expect-line="(hv) ERROR: CPU0: domain 0 crashed: #GP (vector 13)" expect-line="(XEN) d0v0 Unhandled: vec 13, #GP[0000]" expect-line="(XEN) Hardware Dom0 crashed: rebooting machine in 5 seconds."
//! @variant: cli cmdline=fault=cli expect-line="about to fault: cli" expect-line="(hv) ERROR: CPU0: domain 0 crashed: #GP (vector 13)" expect-line="(XEN) d0v0 Unhandled: vec 13, #GP[0000]" expect-line="(XEN) Hardware Dom0 crashed: rebooting machine in 5 seconds."
//! @variant: rofault cmdline=fault=rofault expect-line="about to fault: rofault" expect-line="(hv) ERROR: CPU0: domain 0 crashed: #PF (vector 14)" expect-line="(XEN) Pagetable walk from ffffffff8" expect-line="(XEN) d0v0 Unhandled: vec 14, #PF[0003]" expect-line="(XEN) Hardware Dom0 crashed: rebooting machine in 5 seconds."
#![no_std]
#![no_main]

use core::arch::asm;

use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::{StartInfoRef, VIRT_BASE};
use tests::expect;

guest_abi::pv_guest!(main, name = "guest_fault");

/// The faults this guest can take, by their command-line name.
#[derive(Clone, Copy, Debug)]
enum Fault {
    Ud2,
    Int3,
    Hlt,
    Cli,
    ReadOnlyWrite,
}

impl Fault {
    fn from_cmdline(cmdline: &str) -> Option<Self> {
        let name = cmdline.split(' ').find_map(|w| w.strip_prefix("fault="))?;
        Some(match name {
            "ud2" => Fault::Ud2,
            "int3" => Fault::Int3,
            "hlt" => Fault::Hlt,
            "cli" => Fault::Cli,
            "rofault" => Fault::ReadOnlyWrite,
            _ => return None,
        })
    }
}

/// Writes the first L4 entry back to itself through the read-only mapping
/// at `pt_base`.
fn write_read_only(pt_base: u64) {
    let l4 = pt_base as *mut u64;
    // SAFETY: `pt_base` is the bootstrap L4, page-aligned and mapped
    // (read-only) in the initial mapping, so the read is valid; the write
    // stores the value just read, so even a hypervisor that let it through
    // would leave the page table unchanged. The expected outcome is a #PF.
    unsafe {
        let entry = l4.read_volatile();
        l4.write_volatile(entry);
    }
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("guest_fault");
    let cmdline = expect::text(si.cmd_line_bytes());
    let Some(fault) = Fault::from_cmdline(cmdline) else {
        r.error(format_args!(
            "command line {cmdline:?} needs fault=ud2|int3|hlt|cli|rofault"
        ));
        r.finish()
    };
    r.check(
        format_args!("fault {fault:?} chosen by the command line"),
        true,
    );
    let in_image = (VIRT_BASE..VIRT_BASE + (4 << 20)).contains(&si.pt_base);
    r.check(
        format_args!(
            "pt_base {:#x} is page-aligned, in the initial 4 MiB mapping",
            si.pt_base
        ),
        si.pt_base.is_multiple_of(4096) && in_image,
    );
    if r.verdict() != guest_abi::verdict::Verdict::Success {
        r.finish()
    }

    let name = cmdline
        .split(' ')
        .find_map(|w| w.strip_prefix("fault="))
        .unwrap_or("");
    if let Fault::ReadOnlyWrite = fault {
        println!("about to fault: {name} (write to {:#x})", si.pt_base);
    } else {
        println!("about to fault: {name}");
    }
    match fault {
        // SAFETY: ud2 raises #UD; nothing in memory changes.
        Fault::Ud2 => unsafe { asm!("ud2", options(nomem, nostack)) },
        // SAFETY: int3 raises #BP; nothing in memory changes.
        Fault::Int3 => unsafe { asm!("int3", options(nomem, nostack)) },
        // SAFETY: hlt in ring 3 raises #GP; were it emulated, it would
        // only wait for an interrupt.
        Fault::Hlt => unsafe { asm!("hlt", options(nomem, nostack)) },
        // SAFETY: cli in ring 3 without IOPL raises #GP; were it allowed,
        // it would only mask (virtual) interrupts, which are masked anyway.
        Fault::Cli => unsafe { asm!("cli", options(nomem, nostack)) },
        Fault::ReadOnlyWrite => write_read_only(si.pt_base),
    }
    r.check(format_args!("{name} faulted instead of returning"), false);
    r.finish()
}
