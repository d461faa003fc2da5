//! Exceptions and interrupts.
//!
//! An exception in a guest goes to the guest kernel's handler from its
//! virtual IDT (`set_trap_table`) through a bounce frame (see [`bounce`]),
//! after hv has had its say: #GP from `int $n` (decoded from guest memory,
//! never from the error code) becomes vector n when the entry's DPL allows
//! it, a #GP(0) in guest kernel mode may be an
//! instruction hv emulates, #NM clears the virtual CR0.TS. A `syscall`
//! from guest user mode is bounced to the guest's syscall callback. An
//! exception without a handler (or whose frame cannot be written) crashes
//! the domain with a report; a fault in hv itself is fatal and reported
//! with registers and a backtrace. The only ring-0 fault a guest can
//! provoke, `iretq` refusing the frame it returns to, is handled as Xen
//! 4.17 handles it for 64-bit PV guests: as an exception raised by the
//! guest context being returned to (#GP with the bad selector, or #GP(0)
//! for a non-canonical rip, at that rip), bounced through the guest's
//! trap table and crashing the domain only if there is no handler. Xen's
//! failsafe callback is not involved: it serves the segment reloads of a
//! context switch, which hv does not do (the guest's data segments stay
//! loaded while hv runs). A #PF at hv's LDT area maps the guest's LDT page
//! (`domain::ldt`) and retries, or becomes the guest's #PF at its own LDT
//! address. Pending events go to the guest kernel's event callback on the
//! way back to the guest ([`upcall`]), after an exception's bounce too.

pub mod bounce;
pub mod upcall;

use crate::arch::x86_64::entry::{self, GuestRegs, ENTRY_SYSCALL, ENTRY_SYSCALL32};
use crate::arch::x86_64::{apic, cpu, guest_state, ipi, percpu};
use crate::domain::ldt::{self, LdtFault};
use crate::emulate::{self, Emulated};
use crate::{domain, shutdown};

use bounce::{Bounce, BounceError};

const NAMES: [&str; 32] = [
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#MF(9)", "#TS", "#NP", "#SS",
    "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "#22", "#23", "#24", "#25",
    "#26", "#27", "#HV", "#VC", "#SX", "#31",
];

const VEC_DB: u8 = 1;
const VEC_UD: u8 = 6;
const VEC_NM: u8 = 7;
const VEC_GP: u8 = 13;
const VEC_PF: u8 = 14;

/// #GP error code bits: an external event, and a fault on an IDT gate.
const EC_EXT: u32 = 1;
const EC_IDT: u32 = 2;
/// #PF error code: the access came from user mode.
const PFEC_USER: u32 = 1 << 2;
const PFEC_RSVD: u32 = 1 << 3;

/// Length of `syscall`.
const SYSCALL_LEN: u64 = 2;

pub fn vector_name(v: u32) -> &'static str {
    usize::try_from(v)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("interrupt")
}

/// The light entry path's attempt at exception `V`: the entry code calls
/// it (through [`LIGHT`], indexed by the stub's vector) with a frame whose
/// callee-saved slots (rbx, rbp, r12–r15) are stale, those registers still
/// holding the interrupted context's values (see `arch::x86_64::entry`).
/// It completes the common cases that need no more (a plain exception or a
/// #PF outside the descriptor-table windows, raised by guest code and
/// bounced through the guest's trap table: they read and write only the
/// scratch registers and the CPU's part of the frame) and returns true.
/// Anything else, including a bounce that fails (which changes nothing),
/// returns false having changed nothing; the entry code then completes the
/// frame and calls [`handle`]. One function per vector, so the vector's
/// class and whether it has an error code are constants.
extern "C" fn handle_light<const V: u8>(regs: &mut GuestRegs) -> bool {
    if !regs.is_guest_context() {
        return false;
    }
    let bit = 1u32 << (V & 31);
    if V == VEC_DB {
        crate::hypercall::debugreg::note_guest_db();
    }
    if V < 32 && bit & PLAIN_VECTORS != 0 {
        let error_code = (entry::HAVE_ERROR_CODE & bit != 0).then_some(regs.error_code);
        return try_bounce_exception(regs, V, error_code, None).is_ok();
    }
    if V == VEC_PF {
        // A write to a present read-only page may be one to a page table,
        // which the full path emulates.
        if emulate::ptwr::may_be_ptwr(regs.error_code) {
            return false;
        }
        let cr2 = cpu::read_cr2();
        // Any descriptor-table window (an LDT miss, or a guest touching
        // hv's range there) is the full path's to sort out.
        if !crate::mm::page_table::in_vcpu_areas(cr2) {
            return try_bounce_exception(regs, VEC_PF, None, Some(cr2)).is_ok();
        }
    }
    false
}

/// Every other vector (interrupts, and exceptions with nothing light to
/// do): straight to the full path.
extern "C" fn no_light(_: &mut GuestRegs) -> bool {
    false
}

/// A light handler as the IDT entry code calls it.
pub type LightHandler = extern "C" fn(&mut GuestRegs) -> bool;

macro_rules! light_table {
    ($($v:literal)*) => {
        /// The light handler of each vector, indexed by the vector the IDT
        /// stub recorded (a constant of hv's own stubs, below 256).
        pub static LIGHT: [LightHandler; 256] = {
            let mut t: [LightHandler; 256] = [no_light; 256];
            $( t[$v] = handle_light::<$v>; )*
            t
        };
    };
}

// The vectors that can have light work: plain exceptions and #PF (not
// NMI, #DF, #MC, nor #UD, #NM, #GP, which hv inspects first).
light_table!(0 1 3 4 5 9 10 11 12 13 14 15 16 17 19 20 21 22 23 24 25 26 27 28 29 30 31);

/// The light entry path's attempt at a `syscall` from guest user mode, on
/// the terms of [`handle_light`]: the bounce to a registered syscall
/// callback, or false (no callback: the #UD is the full path's).
pub extern "C" fn handle_user_syscall_light(regs: &mut GuestRegs) -> bool {
    let current = domain::current();
    let mut d = current.lock();
    let t = &d.vcpu.traps;
    if d.vcpu.in_kernel || t.syscall_callback == 0 {
        return false;
    }
    let b = Bounce {
        handler: t.syscall_callback,
        error_code: None,
        mask_events: t.syscall_masks_events,
        clear_df: true,
    };
    bounce::create_bounce_frame(&mut d, regs, &b).is_ok()
}

/// Entry from the IDT stubs and from `syscall` in 32-bit mode (the entry
/// code calls it directly, with a full frame). An exception raised by
/// guest code, the hot case, is tested first; everything else takes
/// [`handle_other`].
///
/// Before anything else: a light path that fell back here may have left a
/// crash to report (a bounce whose event upcall could not be made, see
/// [`bounce`]). After everything, a return to the guest may owe it an
/// event upcall ([`upcall::on_exit`]).
pub extern "C" fn handle(regs: &mut GuestRegs) {
    let v = regs.entry_vector;
    if regs.is_guest_context() {
        crash_if_pending(regs);
    }
    if v < 32 && regs.is_guest_context() {
        let bit = 1u32 << v;
        let vector = (v & 31) as u8;
        if bit & PLAIN_VECTORS != 0 {
            let error_code = (entry::HAVE_ERROR_CODE & bit != 0).then_some(regs.error_code);
            bounce_exception(regs, vector, error_code, None);
            return;
        }
        if bit & SPECIAL_VECTORS != 0 {
            special_exception(regs, vector);
            upcall::on_exit(regs);
            return;
        }
    }
    handle_other(regs);
    upcall::on_exit(regs);
}

/// Entry from a 64-bit `syscall` in guest user mode (the entry code calls
/// it directly), as [`handle`].
pub extern "C" fn handle_user_syscall(regs: &mut GuestRegs) {
    crash_if_pending(regs);
    guest_syscall(regs);
}

/// Crashes the domain if a light path recorded why it must.
#[inline]
fn crash_if_pending(regs: &GuestRegs) {
    if let Some(why) = percpu::this_cpu().take_pending_crash() {
        crash_current(regs, why);
    }
}

/// Interrupts, `syscall` from 32-bit mode, NMI/#DF/#MC, and exceptions in
/// hv itself.
#[inline(never)]
fn handle_other(regs: &mut GuestRegs) {
    let v = regs.entry_vector;
    match v {
        apic::TIMER_VECTOR => crate::timer::on_interrupt(regs),
        apic::SPURIOUS_VECTOR => {}
        ipi::CALL_FUNCTION_VECTOR => ipi::on_call_function(),
        ipi::EVENT_CHECK_VECTOR => {
            ipi::on_event_check();
            // Another CPU may have paused the vCPU this CPU runs.
            crate::sched::resched_if_stopped(regs);
        }
        ENTRY_SYSCALL | ENTRY_SYSCALL32 => guest_syscall(regs),
        0..=31 => {
            if !regs.is_guest_context() && !ring0_exception(regs) {
                return;
            }
            if !matches!(v, 2 | 8 | 18) {
                guest_exception(regs);
            } else {
                guest_fault(regs, vector_name(v), 0);
            }
        }
        _ => {
            let cpu = percpu::cpu_id();
            crate::hvlog!(warn, "CPU{cpu}: unexpected interrupt vector {v:#x}");
            apic::eoi();
        }
    }
}

/// An exception in hv itself. Returns true if it is the guest's after all
/// and `regs` now holds the guest context that raised it: `iretq` refused
/// the context it was returning to (or read an LDT page not mapped yet).
/// As on Xen, that is an exception of that context itself, which the
/// caller bounces (or fixes up), returning straight to the outcome.
#[cold]
fn ring0_exception(regs: &mut GuestRegs) -> bool {
    let v = regs.entry_vector;
    if let Some(fixup) = (v == 14)
        .then(|| crate::arch::x86_64::uaccess::fixup_for(regs.rip))
        .flatten()
    {
        // A guest address that was not accessible during a copy: resume
        // at the copy's fixup, which reports -EFAULT.
        regs.rip = fixup;
        return false;
    }
    if v == u32::from(VEC_DB) {
        // A #DB in hv's own context (hv sets no breakpoints of its own): a
        // guest's data breakpoint on memory hv touched for it, or a
        // guest's single-step or breakpoint deferred by a MOV SS shadow
        // across `syscall` or `int`. It arrived on its own IST stack; hv
        // discards it and carries on, as Xen does, rather than let a
        // guest stop the machine.
        crate::hypercall::debugreg::discard_hv_db();
        return false;
    }
    if regs.rip == entry::iretq_address() && matches!(v, 11..=14) {
        if let Some(guest) = entry::returning_frame(regs) {
            *regs = guest;
            return true;
        }
    }
    let cr2 = if v == 14 { cpu::read_cr2() } else { 0 };
    hv_fault(regs, cr2)
}

/// A `syscall` that is not a hypercall: guest user mode calling its kernel.
/// Bounced to the syscall (or syscall32) callback; without one, the guest
/// gets #UD at the `syscall` instruction, as on Xen.
#[inline(always)]
fn guest_syscall(regs: &mut GuestRegs) {
    let current = domain::current();
    let mut d = current.lock();
    let result = if d.vcpu.in_kernel {
        // Only a 32-bit-mode syscall from the guest kernel gets here.
        Err((
            "syscall from 32-bit mode (not supported)",
            BounceError::NoHandler,
        ))
    } else {
        let t = &d.vcpu.traps;
        let (handler, mask) = if regs.entry_vector == ENTRY_SYSCALL32 {
            (t.syscall32_callback, t.syscall32_masks_events)
        } else {
            (t.syscall_callback, t.syscall_masks_events)
        };
        // Xen clears DF after the bounce, the #UD's too.
        let b = if handler == 0 {
            regs.rip = regs.rip.wrapping_sub(SYSCALL_LEN);
            regs.entry_vector = u32::from(VEC_UD);
            Bounce {
                clear_df: true,
                ..trap_bounce(&d, VEC_UD, None)
            }
        } else {
            Bounce {
                handler,
                error_code: None,
                mask_events: mask,
                clear_df: true,
            }
        };
        bounce::create_bounce_frame(&mut d, regs, &b).map_err(|e| ("#UD", e))
    };
    drop(d);
    drop(current);
    if let Err((what, e)) = result {
        bounce_failed(regs, what, e, 0);
    }
}

/// The bounce for `vector` as the guest's virtual IDT describes it.
fn trap_bounce(d: &domain::Cur<'_>, vector: u8, error_code: Option<u32>) -> Bounce {
    let ti = d.vcpu.traps.table[usize::from(vector)];
    Bounce {
        handler: ti.address,
        error_code,
        mask_events: ti.masks_events(),
        clear_df: false,
    }
}

/// Vectors hv looks at before bouncing them: #UD, #NM, #GP and #PF.
const SPECIAL_VECTORS: u32 = 1 << VEC_UD | 1 << VEC_NM | 1 << VEC_GP | 1 << VEC_PF;
/// NMI, #DF and #MC: never bounced.
const FATAL_VECTORS: u32 = 1 << 2 | 1 << 8 | 1 << 18;
/// Exceptions bounced to the guest as they are.
const PLAIN_VECTORS: u32 = !(SPECIAL_VECTORS | FATAL_VECTORS);

/// An exception raised by guest code (or on its behalf by hv's `iretq`).
/// Most go straight to the guest's handler; the few hv has a say in take
/// [`special_exception`].
fn guest_exception(regs: &mut GuestRegs) {
    let Ok(vector) = u8::try_from(regs.entry_vector) else {
        return;
    };
    let bit = 1u32.checked_shl(u32::from(vector)).unwrap_or(0);
    if vector == VEC_DB {
        // Done by the light path already, unless it did not run.
        crate::hypercall::debugreg::note_guest_db();
    }
    if bit & SPECIAL_VECTORS != 0 {
        special_exception(regs, vector);
        return;
    }
    let error_code = (entry::HAVE_ERROR_CODE & bit != 0).then_some(regs.error_code);
    bounce_exception(regs, vector, error_code, None);
}

/// #UD, #NM, #GP and #PF from guest code.
#[inline(never)]
fn special_exception(regs: &mut GuestRegs, vector: u8) {
    let mut error_code = None;
    match vector {
        VEC_NM => {
            // hv keeps no lazy FPU state: the hardware TS is set only for
            // the guest's virtual TS, which the #NM consumes (as Xen's
            // does). An #NM with the virtual TS already clear (the guest
            // did `clts`) just resumes.
            guest_state::set_cr0_ts(false);
            let pending =
                domain::with_current(|d| core::mem::replace(&mut d.vcpu.traps.virtual_ts, false));
            if !pending {
                return;
            }
        }
        // The forced-emulation prefix (`ud2; .ascii "xen"; cpuid`).
        VEC_UD if emulate::emulate_ud(regs) == Emulated::Done => return,
        VEC_UD => {}
        VEC_GP => {
            let ec = regs.error_code;
            error_code = Some(ec);
            if ec & (EC_IDT | EC_EXT) == EC_IDT {
                // A fault on an IDT gate: `int $n` to a gate whose DPL is
                // below 3 (hv's gates stay private, the guest's virtual
                // gate decides). The vector comes from the instruction
                // itself, decoded from guest memory, not from the error
                // code (QEMU 7.2 in long mode reports a wrong one). Bytes
                // other than exactly `cd nn` leave the #GP to the guest
                // with the hardware's error code.
                if let Some(n) = emulate::int_n_at(regs) {
                    let in_kernel = domain::with_current(|d| d.vcpu.in_kernel);
                    if software_interrupt(regs, n, in_kernel) {
                        return;
                    }
                    // Not allowed: the #GP names the gate as hardware
                    // that gets the error code right does.
                    error_code = Some(u32::from(n) << 3 | EC_IDT);
                }
            } else if ec == 0 {
                // The emulator applies Xen's rules on guest mode and IOPL.
                match emulate::emulate_gp(regs) {
                    Emulated::Done => return,
                    Emulated::Raise(v) => {
                        regs.entry_vector = u32::from(v);
                        return bounce_exception(regs, v, None, None);
                    }
                    Emulated::Declined => {}
                }
            }
        }
        VEC_PF => {
            let mut cr2 = cpu::read_cr2();
            // Only the CPU's own descriptor reads (implicit supervisor
            // accesses, so no user bit even from ring 3) are demand
            // faults of the LDT area, as on Xen. A guest's own load or
            // store there is an ordinary fault at the address it touched:
            // treating it as an LDT miss would report another cr2, or map
            // the page and retry the same protection fault for ever.
            if ldt::in_area(cr2) && regs.error_code & (PFEC_USER | PFEC_RSVD) == 0 {
                match ldt::handle_fault(cr2) {
                    LdtFault::Mapped => return,
                    // The guest's own LDT address faults instead.
                    LdtFault::Refused(linear) => cr2 = linear,
                    LdtFault::RefusedNonCanonical(ec) => {
                        regs.entry_vector = u32::from(VEC_GP);
                        error_code = Some(ec);
                        return bounce_exception_reporting(regs, VEC_GP, error_code, cr2);
                    }
                }
            }
            // MMU HOOK: faults the MMU fixes up itself (writable page
            // tables, spurious faults) return here before the bounce.
            if emulate::ptwr::emulate(regs, cr2) {
                return;
            }
            return bounce_exception(regs, VEC_PF, None, Some(cr2));
        }
        _ => {}
    }
    bounce_exception(regs, vector, error_code, None);
}

/// Bounces exception `vector` through the guest's virtual IDT; a #PF
/// (`cr2` given) also stores the faulting address in `vcpu_info` and gets
/// the error code's user bit from the guest mode that faulted (both run in
/// ring 3). Without a handler, or when the frame cannot be written, the
/// domain crashes.
#[inline(always)]
fn bounce_exception(regs: &mut GuestRegs, vector: u8, error_code: Option<u32>, cr2: Option<u64>) {
    if let Err((error_code, e)) = try_bounce_exception(regs, vector, error_code, cr2) {
        exception_not_delivered(regs, vector, error_code, e, cr2.unwrap_or(0));
    }
}

/// [`bounce_exception`] without the crash: a failure changes nothing but
/// the page-fault address in `vcpu_info` and returns the error code the
/// frame would have carried.
#[inline(always)]
fn try_bounce_exception(
    regs: &mut GuestRegs,
    vector: u8,
    error_code: Option<u32>,
    cr2: Option<u64>,
) -> Result<(), (Option<u32>, BounceError)> {
    let mut error_code = error_code;
    let current = domain::current();
    let mut d = current.lock();
    if cr2.is_some() {
        let user = if d.vcpu.in_kernel { 0 } else { PFEC_USER };
        error_code = Some(regs.error_code & !PFEC_USER | user);
    }
    let b = trap_bounce(&d, vector, error_code);
    if b.handler != 0 {
        if let Some(cr2) = cr2 {
            bounce::set_guest_cr2(&d, cr2);
        }
    }
    bounce::create_bounce_frame(&mut d, regs, &b).map_err(|e| (error_code, e))
}

/// [`bounce_exception`] for a non-#PF vector whose crash report still
/// names a page-fault address.
#[inline(never)]
fn bounce_exception_reporting(regs: &mut GuestRegs, vector: u8, error_code: Option<u32>, cr2: u64) {
    let result = domain::with_current(|d| {
        let b = trap_bounce(d, vector, error_code);
        bounce::create_bounce_frame(d, regs, &b)
    });
    if let Err(e) = result {
        exception_not_delivered(regs, vector, error_code, e, cr2);
    }
}

/// Crashes the domain for exception `vector` it could not be given.
#[cold]
#[inline(never)]
fn exception_not_delivered(
    regs: &mut GuestRegs,
    vector: u8,
    error_code: Option<u32>,
    e: BounceError,
    cr2: u64,
) -> ! {
    if let Some(ec) = error_code {
        regs.error_code = ec;
    }
    bounce_failed(regs, vector_name(u32::from(vector)), e, cr2)
}

/// `int $n` (n not 3 or 4) from the guest: delivered as vector n if the
/// guest's entry allows it from the current mode (DPL ≥ 1 from the guest
/// kernel, DPL 3 from user mode: Xen's rule). Returns false if not
/// allowed, and the #GP goes to the guest.
fn software_interrupt(regs: &mut GuestRegs, n: u8, in_kernel: bool) -> bool {
    let result = domain::with_current(|d| {
        let ti = d.vcpu.traps.table[usize::from(n)];
        let need = if in_kernel { 1 } else { 3 };
        if ti.dpl() < need {
            return Ok(false);
        }
        regs.rip = regs.rip.wrapping_add(hv::x86_decode::INT_N_LEN);
        bounce::create_bounce_frame(d, regs, &trap_bounce(d, n, None)).map(|()| true)
    });
    match result {
        Ok(done) => done,
        Err(e) => {
            regs.entry_vector = u32::from(n);
            bounce_failed(regs, "int $n", e, 0)
        }
    }
}

/// Crashes the domain for an event hv could not deliver.
fn bounce_failed(regs: &GuestRegs, what: &str, e: BounceError, cr2: u64) -> ! {
    let cpu = percpu::cpu_id();
    match e {
        BounceError::NoHandler => guest_fault(regs, what, cr2),
        BounceError::Upcall => {
            let why = percpu::this_cpu()
                .take_pending_crash()
                .unwrap_or("event upcall not delivered");
            crate::hvlog!(error, "CPU{cpu}: {what} delivered, then: {why}");
            guest_fault(regs, why, cr2)
        }
        BounceError::BadStack(sp) => crate::hvlog!(
            error,
            "CPU{cpu}: bouncing {what}: guest stack {sp:#x} is in hv's range"
        ),
        BounceError::StackFault(sp) => crate::hvlog!(
            error,
            "CPU{cpu}: bouncing {what}: guest stack {sp:#x} is not writable"
        ),
    }
    guest_fault(regs, what, cr2)
}

/// Crashes the current domain for a protocol violation found by a
/// hypercall (`what` names it in the report).
pub fn crash_current(regs: &GuestRegs, what: &str) -> ! {
    guest_fault(regs, what, 0)
}

/// Crashes the current domain for a fault it cannot handle.
fn guest_fault(regs: &GuestRegs, what: &str, cr2: u64) -> ! {
    let id = domain::current_id();
    let vcpu = percpu::this_cpu().current_vcpu();
    let cpu = percpu::cpu_id();
    crate::hvlog!(
        error,
        "CPU{cpu}: domain {id} crashed: {what} (vector {}) on vCPU {vcpu} at rip {:#018x}, error code {:#x}, cr2 {:#x}",
        regs.entry_vector,
        regs.rip,
        regs.error_code,
        cr2
    );
    dump_regs(regs);
    shutdown::domain_shutdown(id, 3);
    // Another domain runs on (a domU crashed): this CPU leaves the
    // crashed vCPU, which its domain's pause keeps from running again.
    crate::sched::leave(regs)
}

fn dump_regs(r: &GuestRegs) {
    crate::hvlog!(
        error,
        "  rip {:#018x} cs {:#06x} rflags {:#010x} rsp {:#018x} ss {:#06x}",
        r.rip,
        r.cs,
        r.rflags,
        r.rsp,
        r.ss
    );
    crate::hvlog!(
        error,
        "  rax {:#018x} rbx {:#018x} rcx {:#018x} rdx {:#018x}",
        r.rax,
        r.rbx,
        r.rcx,
        r.rdx
    );
    crate::hvlog!(
        error,
        "  rsi {:#018x} rdi {:#018x} rbp {:#018x} r8  {:#018x}",
        r.rsi,
        r.rdi,
        r.rbp,
        r.r8
    );
    crate::hvlog!(
        error,
        "  r9  {:#018x} r10 {:#018x} r11 {:#018x} r12 {:#018x}",
        r.r9,
        r.r10,
        r.r11,
        r.r12
    );
    crate::hvlog!(
        error,
        "  r13 {:#018x} r14 {:#018x} r15 {:#018x} cr3 {:#x}",
        r.r13,
        r.r14,
        r.r15,
        cpu::read_cr3()
    );
}

/// A fault inside hv: report and leave.
fn hv_fault(regs: &GuestRegs, cr2: u64) -> ! {
    let cpu = percpu::cpu_id();
    crate::console::emergency(format_args!(
        "\n(hv) FATAL: CPU{cpu}: {} (vector {}) in hv at rip {:#018x}, error code {:#x}, cr2 {:#x}, current domain {}\n",
        vector_name(regs.entry_vector),
        regs.entry_vector,
        regs.rip,
        regs.error_code,
        cr2,
        domain::current_id()
    ));
    dump_regs(regs);
    crate::backtrace(regs.rbp);
    shutdown::panic_exit()
}
