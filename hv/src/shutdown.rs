//! How hv ends: domain shutdown, and leaving the machine when no domain is
//! left, with a distinct QEMU exit status per reason.
//!
//! | end | QEMU status |
//! | --- | --- |
//! | last domain powered off | 0 (ACPI S5) |
//! | reboot | 33 |
//! | suspend | 35 |
//! | crash | 37 |
//! | watchdog | 39 |
//! | soft_reset | 41 |
//! | unknown reason | 43 |
//! | hv panic or fatal fault | 65 |

use core::sync::atomic::{AtomicU16, Ordering};

use crate::arch::x86_64::{cpu, power};
use crate::domain::{self, DomId};

/// isa-debug-exit value for an hv panic: QEMU exits with 65.
pub const EXIT_PANIC: u32 = 0x20;

/// PM1a control port for ACPI poweroff, 0 if unknown.
static PM1A_CONTROL: AtomicU16 = AtomicU16::new(0);

pub fn set_pm1a_control(port: u16) {
    PM1A_CONTROL.store(port, Ordering::Relaxed);
}

/// The PM1a control port hv powers off through (0 if unknown); guests
/// never get it.
pub fn pm1a_control() -> u16 {
    PM1A_CONTROL.load(Ordering::Relaxed)
}

/// Name of a `SHUTDOWN_*` reason.
pub fn reason_name(reason: u32) -> &'static str {
    match reason {
        0 => "poweroff",
        1 => "reboot",
        2 => "suspend",
        3 => "crash",
        4 => "watchdog",
        5 => "soft_reset",
        _ => "unknown",
    }
}

/// A domain asked to shut down (or was crashed, or its watchdog fired).
/// The hardware domain's shutdown ends the machine (Xen's
/// `hwdom_shutdown`), as does the last running domain's. Another domain
/// stops: it is marked shut down with its reason, its vCPUs are paused
/// (a CPU running one switches away: the caller's own vCPU at the end of
/// its hypercall or trap, others when kicked), and dom0 hears of it
/// through `VIRQ_DOM_EXC`; its toolstack destroys it.
pub fn domain_shutdown(id: DomId, reason: u32) {
    crate::hvlog!(
        info,
        "domain {id} shut down: {} (reason {reason})",
        reason_name(reason)
    );
    let hardware = domain::lookup(id).is_some_and(|d| d.initial);
    let left = domain::mark_shutdown(id, reason);
    if left == 0 || hardware {
        machine_exit(reason);
    }
    // The initial domain hears of it through VIRQ_DOM_EXC, Xen's default
    // handler of global VIRQs being the hardware domain.
    if let Some(d0) = domain::lookup(DomId::DOM0).filter(|d| d.id != id) {
        crate::event::send_global_virq(&d0, guest_abi::xen::VIRQ_DOM_EXC);
    }
}

/// Leaves the machine for `reason` (a SHUTDOWN_* value).
pub fn machine_exit(reason: u32) -> ! {
    if reason == 0 {
        crate::hvlog!(
            info,
            "no domain left: powering off after {} ms",
            crate::time::now_ns() / 1_000_000
        );
        let port = PM1A_CONTROL.load(Ordering::Relaxed);
        if port != 0 {
            // QEMU's _S5 sleep type is 0 on both of its PC machines.
            power::acpi_poweroff(port, 0);
            // Give the machine time to go away before saying it did not.
            crate::arch::x86_64::apic::delay_ms(100);
        }
        crate::hvlog!(error, "ACPI poweroff did not take effect; halting");
        cpu::halt_forever();
    }
    let code = match reason {
        1..=5 => 0x0f + reason,
        _ => 0x15,
    };
    crate::hvlog!(
        info,
        "no domain left: leaving with {} (QEMU status {})",
        reason_name(reason),
        code << 1 | 1
    );
    power::debug_exit(code);
    if reason == 1 {
        power::reset();
    }
    cpu::halt_forever()
}

/// Leaves after an hv panic or fatal fault.
pub fn panic_exit() -> ! {
    power::debug_exit(EXIT_PANIC);
    cpu::halt_forever()
}
