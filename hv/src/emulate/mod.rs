//! Emulation of the privileged instructions Xen 4.17 emulates for a 64-bit
//! PV guest.
//!
//! A PV kernel runs in ring 3, so its privileged instructions fault. As Xen
//! does, hv emulates a fixed set and lets every other #GP reach the guest:
//!
//! - #GP with error code 0: port I/O (`in`/`out`/`ins`/`outs`) and
//!   `cli`/`sti` when the virtual IOPL or the I/O bitmap allow it
//!   (`cli`/`sti` are then no-ops, as on Xen); and from guest kernel mode
//!   only: `mov` from cr0/cr2/cr3/cr4, `mov` to cr0 (TS only) / cr2 / cr4
//!   and `xsetbv` (see [`control`]; an `xsetbv` while the guest's
//!   CR4.OSXSAVE is clear is #UD, from either guest mode, as on Xen),
//!   `clts`, `wbinvd`, `rdmsr`/`wrmsr` (see [`msr`]), `mov` to/from
//!   DR0-DR7, and a faulted `cpuid`; `rdtsc`/`rdtscp` (which fault once
//!   the guest sets CR4.TSD) from guest kernel mode only;
//! - #UD: the forced-emulation prefix `ud2; .ascii "xen"` followed by
//!   `cpuid`, from kernel or user mode, answered from the PV CPUID policy
//!   in [`hv::pv_cpuid`].
//!
//! The instruction bytes are copied from guest memory at `rip` through the
//! guest's page tables and decoded by [`hv::x86_decode`]; the error code is
//! never trusted. Anything not recognised exactly is `Declined`, and the
//! caller delivers the original fault to the guest.
//!
//! Where hv differs from Xen (documented at each place): a fault while
//! fetching or copying guest memory gives the guest the original fault
//! rather than a #PF; `mov` to cr3 is left to the MMU work; unknown MSRs
//! #GP even when the guest has no #GP handler (Xen then reads them as 0);
//! `mov` to or from a debug register goes through `set_debugreg` /
//! `get_debugreg`'s checks, as in Xen.

mod control;
mod io;
mod msr;
pub mod ptwr;

use hv::x86_decode::{self, Cr, DecodeError, Insn, MAX_INSN_LEN};
use hv::xcr0::XsetbvError;

use crate::arch::x86_64::cpu;
use crate::arch::x86_64::entry::GuestRegs;
use crate::domain::Cur;
use crate::guest_mem::{GuestPtr, GuestSlice, Tables};
use crate::hypercall::debugreg;
use crate::mm::PAGE_SIZE;

use control::set_fpu_taskswitch;

/// The outcome of an emulation attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emulated {
    /// The instruction was carried out and `rip` moved past it (or, for a
    /// long `rep ins/outs`, left on it to continue).
    Done,
    /// Not an instruction hv emulates here: deliver the fault to the guest.
    Declined,
    /// Emulated as faulting with another vector (no error code): deliver
    /// that instead (`xsetbv` with the guest's CR4.OSXSAVE clear is #UD).
    Raise(u8),
}

/// EFLAGS.RF: cleared after an emulated instruction, as the CPU does.
const RFLAGS_RF: u64 = 1 << 16;

/// #GP from the guest: emulate what Xen emulates, advancing `regs.rip`.
pub fn emulate_gp(regs: &mut GuestRegs) -> Emulated {
    if regs.error_code != 0 || !regs.is_guest_context() {
        return Emulated::Declined;
    }
    // The instruction is fetched, and port I/O copies guest memory, with no
    // lock held: only the steps that change vCPU state take it.
    let cr3 = crate::domain::with_current(|d| d.vcpu.cr3);
    let (bytes, n) = fetch(cr3, regs.rip);
    let (step, len) = match x86_decode::decode(bytes.get(..n).unwrap_or(&[])) {
        Ok(dec) if is_port_io(dec.insn) => (io::port_insn(regs, dec.insn), dec.len),
        Ok(dec) => (
            crate::domain::with_current(|d| execute(d, regs, dec.insn)),
            dec.len,
        ),
        Err(DecodeError::Truncated | DecodeError::Unsupported) => (Step::Refuse, 0),
    };
    let step = match step {
        // As Xen: `mov` to cr3 is MMUEXT_NEW_BASEPTR; a frame that cannot
        // become the base table leaves the #GP to the guest.
        Step::NewBaseptr(mfn) if crate::hypercall::new_baseptr_for_emulation(mfn) => Step::Next,
        Step::NewBaseptr(_) => Step::Refuse,
        other => other,
    };
    match step {
        Step::Next => {
            regs.rip = regs.rip.wrapping_add(len as u64);
            regs.rflags &= !RFLAGS_RF;
            Emulated::Done
        }
        Step::Again => Emulated::Done,
        Step::Raise(vector) => Emulated::Raise(vector),
        Step::Refuse | Step::NewBaseptr(_) => Emulated::Declined,
    }
}

/// #UD from the guest: the forced-emulation prefix before `cpuid`.
pub fn emulate_ud(regs: &mut GuestRegs) -> Emulated {
    if !regs.is_guest_context() {
        return Emulated::Declined;
    }
    let cr3 = crate::domain::with_current(|d| d.vcpu.cr3);
    let sig = GuestPtr::<[u8; x86_decode::FORCED_CPUID.len()]>::new(regs.rip)
        .and_then(|p| p.read(&Tables(cr3)));
    let Ok(sig) = sig else {
        return Emulated::Declined;
    };
    if !x86_decode::is_forced_cpuid(&sig) {
        return Emulated::Declined;
    }
    crate::domain::with_current(|d| {
        control::cpuid(d, regs, true);
        regs.rip = regs.rip.wrapping_add(sig.len() as u64);
        regs.rflags &= !RFLAGS_RF;
        Emulated::Done
    })
}

/// The vector of the `int $n` at the guest's `rip`, decoded from guest
/// memory (see [`x86_decode::int_n`]); `None` if the bytes there are not
/// exactly `cd nn` or cannot be read. Used for the #GP an `int $n` to a
/// gate of lower DPL raises: its error code is not trusted (QEMU 7.2 in
/// long mode reports the wrong vector in it).
pub fn int_n_at(regs: &GuestRegs) -> Option<u8> {
    if !regs.is_guest_context() {
        return None;
    }
    let cr3 = crate::domain::with_current(|d| d.vcpu.cr3);
    let (bytes, n) = fetch(cr3, regs.rip);
    x86_decode::int_n(bytes.get(..n).unwrap_or(&[]))
}

/// What to do with `rip` after executing.
enum Step {
    /// Move past the instruction.
    Next,
    /// Leave `rip` on the instruction (a `rep` string I/O with iterations
    /// left: the guest re-executes it).
    Again,
    /// Not emulated.
    Refuse,
    /// `mov` to cr3: switch base pointer to this frame, which needs the
    /// MMU (and the domain lock released) before moving past.
    NewBaseptr(u64),
    /// Deliver this exception (no error code) instead of the #GP.
    Raise(u8),
}

/// #UD.
const VEC_UD: u8 = 6;

/// Port I/O, which [`io::port_insn`] carries out taking the vCPU lock only
/// around each port access (it copies guest memory).
fn is_port_io(insn: Insn) -> bool {
    matches!(
        insn,
        Insn::In { .. } | Insn::Out { .. } | Insn::Ins { .. } | Insn::Outs { .. }
    )
}

/// Carries out every instruction but port I/O, with the vCPU locked.
fn execute(d: &mut Cur<'_>, regs: &mut GuestRegs, insn: Insn) -> Step {
    let kernel = d.vcpu.in_kernel;
    match insn {
        Insn::In { .. } | Insn::Out { .. } | Insn::Ins { .. } | Insn::Outs { .. } => Step::Refuse,
        // With IOPL, Xen treats cli/sti as no-ops (it does not touch the
        // event mask).
        Insn::Cli | Insn::Sti => step(io::iopl_ok(d)),
        Insn::Cpuid => {
            control::cpuid(d, regs, false);
            Step::Next
        }
        // With the guest's CR4.TSD (loaded into the CPU while it runs,
        // as Xen does), `rdtsc`/`rdtscp` fault in guest user mode, where
        // the guest gets the #GP, and in guest kernel mode, which Xen
        // treats as ring 0.
        Insn::Rdtsc | Insn::Rdtscp if !kernel && control::tsd(d) => Step::Refuse,
        Insn::Rdtsc => {
            let tsc = cpu::rdtsc();
            regs.rax = tsc & 0xffff_ffff;
            regs.rdx = tsc >> 32;
            Step::Next
        }
        Insn::Rdtscp => {
            let tsc = cpu::rdtsc();
            regs.rax = tsc & 0xffff_ffff;
            regs.rdx = tsc >> 32;
            // The value a native `rdtscp` of the guest reads.
            regs.rcx = cpu::rdmsr(cpu::MSR_TSC_AUX) & 0xffff_ffff;
            Step::Next
        }
        // Checks CR4.OSXSAVE (#UD) before the guest mode, as Xen does.
        Insn::Xsetbv => match control::xsetbv(d, regs) {
            Ok(()) => Step::Next,
            Err(XsetbvError::NotEnabled) => Step::Raise(VEC_UD),
            Err(XsetbvError::Refused) => Step::Refuse,
        },
        // The rest needs ring 0, which only the guest kernel stands for.
        _ if !kernel => Step::Refuse,
        Insn::Clts => {
            set_fpu_taskswitch(d, false);
            Step::Next
        }
        Insn::Wbinvd => {
            // Xen ignores wbinvd from a domain without I/O memory access.
            if d.dom.privileged {
                cpu::wbinvd();
            }
            Step::Next
        }
        Insn::Rdmsr => step(msr::rdmsr(d, regs)),
        Insn::Wrmsr => step(msr::wrmsr(d, regs)),
        Insn::MovFromCr { cr, gpr } => {
            let v = control::read_cr(d, cr);
            set_gpr(regs, gpr, v);
            Step::Next
        }
        Insn::MovToCr { cr: Cr::Cr3, gpr } => {
            // For a 64-bit PV guest cr3 holds the machine address of the
            // new L4 (xen_pfn_to_cr3 is the plain address).
            Step::NewBaseptr(gpr_value(regs, gpr) >> 12)
        }
        Insn::MovToCr { cr, gpr } => {
            let v = gpr_value(regs, gpr);
            step(control::write_cr(d, cr, v))
        }
        // As Xen's emulator: DR4/DR5 with CR4.DE set are #UD; otherwise
        // `get_debugreg`/`set_debugreg`, any error of which is #GP.
        Insn::MovFromDr { dr: 4 | 5, .. } | Insn::MovToDr { dr: 4 | 5, .. }
            if control::debug_extensions(d) =>
        {
            Step::Raise(VEC_UD)
        }
        Insn::MovFromDr { dr, gpr } => match debugreg::get_locked(d, u32::from(dr)) {
            Ok(v) => {
                set_gpr(regs, gpr, v);
                Step::Next
            }
            Err(_) => Step::Refuse,
        },
        Insn::MovToDr { dr, gpr } => {
            let v = gpr_value(regs, gpr);
            step(debugreg::set_locked(d, u32::from(dr), v).is_ok())
        }
    }
}

fn step(ok: bool) -> Step {
    if ok {
        Step::Next
    } else {
        Step::Refuse
    }
}

/// Copies up to 15 instruction bytes from `rip`: all of them if readable,
/// else those up to the end of the first page (the decoder then decides
/// whether it has enough).
fn fetch(cr3: u64, rip: u64) -> ([u8; MAX_INSN_LEN], usize) {
    let mut buf = [0u8; MAX_INSN_LEN];
    let code = GuestSlice::<u8>::per_element(rip, MAX_INSN_LEN as u64);
    let mem = Tables(cr3);
    let in_page = usize::try_from(PAGE_SIZE - rip % PAGE_SIZE).unwrap_or(MAX_INSN_LEN);
    let first = in_page.min(MAX_INSN_LEN);
    let Some(head) = buf.get_mut(..first) else {
        return (buf, 0);
    };
    if code.read_into(&mem, 0, head).is_err() {
        return (buf, 0);
    }
    if first == MAX_INSN_LEN {
        return (buf, first);
    }
    let Some(tail) = buf.get_mut(first..) else {
        return (buf, first);
    };
    if code.read_into(&mem, first as u64, tail).is_ok() {
        (buf, MAX_INSN_LEN)
    } else {
        (buf, first)
    }
}

/// A general-purpose register by its encoding number (0 = rax … 15 = r15).
fn gpr_value(regs: &GuestRegs, n: u8) -> u64 {
    match n & 15 {
        0 => regs.rax,
        1 => regs.rcx,
        2 => regs.rdx,
        3 => regs.rbx,
        4 => regs.rsp,
        5 => regs.rbp,
        6 => regs.rsi,
        7 => regs.rdi,
        8 => regs.r8,
        9 => regs.r9,
        10 => regs.r10,
        11 => regs.r11,
        12 => regs.r12,
        13 => regs.r13,
        14 => regs.r14,
        _ => regs.r15,
    }
}

fn set_gpr(regs: &mut GuestRegs, n: u8, v: u64) {
    let r = match n & 15 {
        0 => &mut regs.rax,
        1 => &mut regs.rcx,
        2 => &mut regs.rdx,
        3 => &mut regs.rbx,
        4 => &mut regs.rsp,
        5 => &mut regs.rbp,
        6 => &mut regs.rsi,
        7 => &mut regs.rdi,
        8 => &mut regs.r8,
        9 => &mut regs.r9,
        10 => &mut regs.r10,
        11 => &mut regs.r11,
        12 => &mut regs.r12,
        13 => &mut regs.r13,
        14 => &mut regs.r14,
        _ => &mut regs.r15,
    };
    *r = v;
}
