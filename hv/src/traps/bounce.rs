//! Delivering an exception, a software interrupt or a `syscall` to the guest
//! kernel: Xen's "bounce frame".
//!
//! The guest kernel runs in ring 3, so hv plays the CPU's part of an
//! exception: it switches to guest kernel mode (page table, GS base, kernel
//! stack from `stack_switch`) when the guest was in user mode, writes the
//! frame a 64-bit PV kernel expects onto the guest kernel stack and resumes
//! the guest at the handler. From the new stack pointer upwards the frame is
//! `rcx, r11, [error code,] rip, cs, rflags, rsp, ss`, 16-byte aligned
//! below the interrupted stack pointer (or below `kernel_sp`). In the `cs`
//! slot, bits 0-15 are the interrupted `cs` with RPL 0 when the guest kernel
//! was interrupted (RPL 3 means user mode, which is how `iret` tells the
//! two apart) and bits 32-39 the event mask as it was; `rflags.IF` is the
//! inverse of that mask. The handler then runs with the mask set if its
//! entry asked for it.
//!
//! A frame that cannot be written (a stack in hv's range, unmapped or
//! read-only) or a handler that is missing crashes the domain, as on Xen.
//! A bounce that fails changes nothing (neither `regs` nor the vCPU's
//! mode), so the light entry path (`traps::handle_light`) can give up and
//! let the full path try again and report.
//!
//! After the frame, Xen's exit path tests for events: when the bounce left
//! events unmasked (its entry did not mask them, and they were not masked
//! when the exception came) and an upcall is pending, the event callback's
//! frame goes on top of the one just written (`traps::upcall`). The mask
//! the bounce read decides it, so a bounce with events masked pays one
//! test. If that upcall cannot be made, the exception's frame stays written
//! and the domain is to crash: the reason waits in the CPU's block
//! (`BounceError::Upcall`), where the full path finds it.

use guest_abi::xen::VMASST_TYPE_ARCHITECTURAL_IOPL;

use crate::arch::x86_64::entry::GuestRegs;
use crate::arch::x86_64::gdt::{RING3_CS64, RING3_DS};
use crate::arch::x86_64::guest_state;
use crate::arch::x86_64::percpu::CpuLocal;
use crate::domain::{Cur, Vcpu};

const RFLAGS_TF: u64 = 1 << 8;
pub const RFLAGS_IF: u64 = 1 << 9;
const RFLAGS_DF: u64 = 1 << 10;
pub const RFLAGS_IOPL: u64 = 3 << 12;
const RFLAGS_NT: u64 = 1 << 14;
const RFLAGS_RF: u64 = 1 << 16;
pub const RFLAGS_VM: u64 = 1 << 17;
const RFLAGS_AC: u64 = 1 << 18;

const HV_START: u64 = guest_abi::arch::HYPERVISOR_VIRT_START;
const HV_END: u64 = guest_abi::arch::HYPERVISOR_VIRT_END;

/// What to deliver.
#[derive(Debug, Clone, Copy)]
pub struct Bounce {
    /// Guest handler address (0: none registered).
    pub handler: u64,
    /// Error code to push, if the event has one.
    pub error_code: Option<u32>,
    /// Set `evtchn_upcall_mask` on entry (trap entry flag bit 2,
    /// `CALLBACKF_mask_events`).
    pub mask_events: bool,
    /// Clear DF for the handler, as Xen does after bouncing a `syscall`
    /// from guest user mode.
    pub clear_df: bool,
}

/// Why a bounce could not be made; the domain is crashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BounceError {
    /// No handler registered.
    NoHandler,
    /// The guest stack pointer lies in hv's range.
    BadStack(u64),
    /// The frame could not be written at this address.
    StackFault(u64),
    /// The bounce was made, then the event upcall due after it could not
    /// be: the domain crashes for the reason recorded in the CPU's block.
    Upcall,
}

#[inline]
pub fn set_upcall_mask(d: &Cur<'_>, mask: bool) {
    d.vcpu.vcpu_info.set_upcall_mask(mask);
}

/// Stores a page fault's address where the guest reads it
/// (`vcpu_info.arch.cr2`).
#[inline]
pub fn set_guest_cr2(d: &Cur<'_>, cr2: u64) {
    d.vcpu.vcpu_info.set_cr2(cr2);
}

/// Switches between guest kernel and guest user mode: page table, live GS
/// base, and the entry path's mode flag.
#[inline]
pub fn toggle_guest_mode(d: &mut Cur<'_>) {
    toggle_mode(&mut d.vcpu, d.cpu);
}

/// [`toggle_guest_mode`] on the running vCPU `v` of CPU `cpu`.
#[inline]
fn toggle_mode(v: &mut Vcpu, cpu: &CpuLocal) {
    v.in_kernel = !v.in_kernel;
    guest_state::swapgs();
    let cr3 = if v.in_kernel {
        v.kernel_cr3
    } else {
        v.user_cr3
    };
    if cr3 != 0 && cr3 != v.cr3 {
        v.cr3 = cr3;
        guest_state::load_guest_cr3(cr3);
    }
    cpu.set_guest_user_mode(!v.in_kernel);
}

/// The rflags a guest sees in a frame: the real ones with IF standing for
/// the event mask and IOPL virtualised.
fn guest_visible_rflags(v: &Vcpu, vm_assist: u64, rflags: u64, mask: u8) -> u64 {
    let mut f = rflags & !(RFLAGS_IF | RFLAGS_IOPL);
    if mask == 0 {
        f |= RFLAGS_IF;
    }
    if vm_assist & (1 << VMASST_TYPE_ARCHITECTURAL_IOPL) != 0 {
        f |= v.traps.iopl & RFLAGS_IOPL;
    }
    f
}

/// What a bounce works on: the running vCPU (locked), the domain's VM
/// assists, the CPU's block. Taken apart from [`Cur`] so that a call out
/// of line (the upcall after a bounce) passes three registers rather than
/// a `Cur` built in memory.
pub struct Running<'a> {
    pub vcpu: &'a mut Vcpu,
    pub vm_assist: u64,
    pub cpu: &'static CpuLocal,
}

impl<'a> Running<'a> {
    #[inline(always)]
    pub fn of(d: &'a mut Cur<'_>) -> Self {
        Self {
            vm_assist: d.vm_assist,
            cpu: d.cpu,
            vcpu: &mut d.vcpu,
        }
    }
}

/// Writes the bounce frame, points `regs` at the handler and, if that left
/// an event upcall due, makes it too.
#[inline(always)]
pub fn create_bounce_frame(
    d: &mut Cur<'_>,
    regs: &mut GuestRegs,
    b: &Bounce,
) -> Result<(), BounceError> {
    let mut run = Running::of(d);
    write_frame(&mut run, regs, b)?;
    // Xen's exit test, the mask first: a bounce that masked events, or
    // one that found them masked, pays one compare.
    let vi = &run.vcpu.vcpu_info;
    if vi.upcall_mask() == 0 && vi.upcall_pending() != 0 {
        return super::upcall::after_bounce(run.vcpu, regs);
    }
    Ok(())
}

/// Writes the bounce frame and points `regs` at the handler.
#[inline(always)]
pub fn write_frame(
    run: &mut Running<'_>,
    regs: &mut GuestRegs,
    b: &Bounce,
) -> Result<(), BounceError> {
    if b.handler == 0 {
        return Err(BounceError::NoHandler);
    }
    let mut cs = regs.cs & 0xffff;
    let from_user = !run.vcpu.in_kernel;
    let sp = if from_user {
        run.vcpu.traps.kernel_sp
    } else {
        // The interrupted context was the guest kernel: RPL 0 says so.
        cs &= !3;
        regs.rsp
    } & !0xf;
    // The frame would reach into hv's range (Xen allows 8 words above it):
    // HV_START < sp < HV_END + 64, in one compare.
    if sp.wrapping_sub(HV_START + 1) < HV_END + 64 - (HV_START + 1) {
        return Err(BounceError::BadStack(sp));
    }
    let saved_mask = run.vcpu.vcpu_info.upcall_mask();
    let rflags = guest_visible_rflags(run.vcpu, run.vm_assist, regs.rflags, saved_mask);
    // The frame, lowest address first: rcx, r11, [error code], rip, cs,
    // rflags, rsp, ss.
    let cs_word = cs | u64::from(saved_mask) << 32;
    let (frame, eight) = match b.error_code {
        Some(ec) => (
            [
                regs.rcx,
                regs.r11,
                u64::from(ec),
                regs.rip,
                cs_word,
                rflags,
                regs.rsp,
                regs.ss,
            ],
            true,
        ),
        None => (
            [
                regs.rcx, regs.r11, regs.rip, cs_word, rflags, regs.rsp, regs.ss, 0,
            ],
            false,
        ),
    };
    // The frame goes onto the kernel's stack through the kernel's page
    // table, loaded now (for a bounce from user mode, switched to here),
    // so the CPU walks it. A frame that cannot be written switches back:
    // a failed bounce leaves the vCPU as it found it.
    if from_user {
        toggle_mode(run.vcpu, run.cpu);
    }
    let new_sp = match crate::guest_mem::push_frame_to_loaded(sp, &frame, eight) {
        Ok(new_sp) => new_sp,
        Err(_) => {
            if from_user {
                toggle_mode(run.vcpu, run.cpu);
            }
            let n: u64 = if eight { 8 } else { 7 };
            return Err(BounceError::StackFault(sp.wrapping_sub(8 * n)));
        }
    };
    if b.mask_events {
        run.vcpu.vcpu_info.set_upcall_mask(true);
    }
    let df = if b.clear_df { RFLAGS_DF } else { 0 };
    regs.rflags &= !(RFLAGS_AC | RFLAGS_VM | RFLAGS_RF | RFLAGS_NT | RFLAGS_TF | df);
    regs.ss = u64::from(RING3_DS);
    regs.rsp = new_sp;
    regs.cs = u64::from(RING3_CS64);
    regs.rip = b.handler;
    // Xen returns to a bounced handler with sysret, which leaves the
    // handler's address in rcx and the flags in r11; do the same.
    sysret_registers(regs);
    Ok(())
}

/// The values `sysretq` leaves in rcx and r11 when Xen uses it to return
/// to the guest at `regs.rip`.
#[inline]
pub fn sysret_registers(regs: &mut GuestRegs) {
    regs.rcx = regs.rip;
    regs.r11 = (regs.rflags & !(RFLAGS_IOPL | RFLAGS_VM)) | RFLAGS_IF;
}
