//! The event upcall: Xen's delivery of pending events to a PV guest.
//!
//! On every return to a guest Xen tests the running vCPU's `vcpu_info`:
//! when `evtchn_upcall_mask` is clear and `evtchn_upcall_pending` is set
//! (any non-zero byte), it bounces to the event callback
//! (`set_callbacks`, `CALLBACKTYPE_event`) as it would an exception
//! without an error code, with events masked on entry: the frame is
//! `rcx, r11, rip, cs, rflags, rsp, ss` ([`super::bounce`]), its `cs`
//! slot carrying the mask as it was (0) in bits 32-39 and `rflags.IF` set
//! for it. The guest clears `evtchn_upcall_pending`, handles its ports and
//! returns with `iret`, whose `rflags.IF` unmasks events again; if more
//! came meanwhile, that return delivers them at once. Without an event
//! callback, or when the frame cannot be written, Xen crashes the domain
//! (`domain_crash_synchronous`), and so does hv.
//!
//! hv tests at each exit where the test is cheapest: the hypercall exit
//! in the entry code (which then calls [`deliver_light`], or [`deliver`]
//! when the light path cannot make the frame); after a bounce, where the
//! mask the bounce read decides it ([`after_bounce`]); and at the end of
//! the full trap paths ([`on_exit`]: interrupts, emulated instructions).

use crate::arch::x86_64::entry::GuestRegs;
use crate::arch::x86_64::percpu;
use crate::domain::{self, Vcpu};

use super::bounce::{self, Bounce, BounceError, Running};

/// Bounces to the event callback with events masked, if an upcall is
/// still due.
#[inline(always)]
fn upcall(run: &mut Running<'_>, regs: &mut GuestRegs) -> Result<(), BounceError> {
    if !run.vcpu.vcpu_info.upcall_due() {
        return Ok(());
    }
    let b = Bounce {
        handler: run.vcpu.traps.event_callback,
        error_code: None,
        mask_events: true,
        clear_df: false,
    };
    bounce::write_frame(run, regs, &b)
}

/// The hypercall exit found an upcall due: makes it on the light path's
/// terms (see `arch::x86_64::entry`; it touches only the scratch registers
/// and the CPU's part of the frame). False, having changed nothing, when
/// the frame cannot be made: the entry code then calls [`deliver`].
pub extern "C" fn deliver_light(regs: &mut GuestRegs) -> bool {
    let current = domain::current();
    let mut d = current.lock();
    upcall(&mut Running::of(&mut d), regs).is_ok()
}

/// The upcall with a full frame: crashes the domain when it cannot be
/// made.
pub extern "C" fn deliver(regs: &mut GuestRegs) {
    let result = domain::with_current(|d| upcall(&mut Running::of(d), regs));
    if let Err(e) = result {
        super::bounce_failed(regs, "event upcall", e, 0);
    }
}

/// The test at the end of a full trap path: an interrupt or an emulated
/// instruction returning to the guest may find an upcall due.
#[inline]
pub fn on_exit(regs: &mut GuestRegs) {
    if regs.is_guest_context() && percpu::this_cpu().upcall_due() {
        deliver(regs);
    }
}

/// A bounce left events unmasked with an upcall pending: the upcall's
/// frame goes on top. If it cannot be made, the bounce itself stands and
/// the domain is to crash: the reason waits in the CPU's block for the
/// full path (which a light path falls back to) and the bounce answers
/// [`BounceError::Upcall`].
#[cold]
#[inline(never)]
pub fn after_bounce(vcpu: &mut Vcpu, regs: &mut GuestRegs) -> Result<(), BounceError> {
    // Found again here rather than kept live across the bounce's frame
    // write (the common path then pays for nothing but one test).
    let cpu = percpu::this_cpu();
    let vm_assist = domain::current().domain().vm_assist();
    let mut run = Running {
        vcpu,
        vm_assist,
        cpu,
    };
    upcall(&mut run, regs).map_err(|e| {
        cpu.set_pending_crash(match e {
            BounceError::NoHandler => "event upcall with no event callback registered",
            BounceError::BadStack(_) => "event upcall: guest stack in hv's range",
            BounceError::StackFault(_) | BounceError::Upcall => {
                "event upcall: guest stack not writable"
            }
        });
        BounceError::Upcall
    })
}
