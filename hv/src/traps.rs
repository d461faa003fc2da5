//! Exceptions and interrupts.
//!
//! A fault in a guest that the guest cannot handle yet (there are no trap
//! tables until a later issue) crashes that domain with a report; a fault in
//! hv itself is fatal and reported with registers and a backtrace. Nothing a
//! guest does reaches the second case: the only ring-0 fault a guest can
//! provoke, `iretq` to a non-canonical address, is recognised and charged to
//! the guest.

use crate::arch::x86_64::entry::{self, GuestRegs, ENTRY_SYSCALL32};
use crate::arch::x86_64::{apic, cpu};
use crate::{domain, shutdown};

const NAMES: [&str; 32] = [
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#MF(9)", "#TS", "#NP", "#SS",
    "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "#22", "#23", "#24", "#25",
    "#26", "#27", "#HV", "#VC", "#SX", "#31",
];

pub fn vector_name(v: u32) -> &'static str {
    usize::try_from(v)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("interrupt")
}

/// Entry from the IDT stubs (and from `syscall` in 32-bit mode).
pub fn handle(regs: &mut GuestRegs) {
    let v = regs.entry_vector;
    match v {
        apic::TIMER_VECTOR => {
            apic::tick();
            apic::eoi();
        }
        apic::SPURIOUS_VECTOR => {}
        ENTRY_SYSCALL32 => guest_fault(regs, "syscall from 32-bit mode (not supported)", 0),
        0..=31 => {
            let cr2 = if v == 14 { cpu::read_cr2() } else { 0 };
            if regs.is_guest_context() {
                guest_fault(regs, vector_name(v), cr2);
            } else if v == 13 && regs.rip == entry::iretq_address() {
                // The guest frame being returned to was refused by iretq;
                // report it (it sits where rsp pointed) as the guest's fault.
                let bad = entry::frame_at(regs.rsp);
                guest_fault(&bad, "#GP on return (non-canonical rip)", 0);
            } else {
                hv_fault(regs, cr2);
            }
        }
        _ => {
            crate::hvlog!(warn, "CPU0: unexpected interrupt vector {v:#x}");
            apic::eoi();
        }
    }
}

/// Crashes the current domain for a fault it cannot handle.
fn guest_fault(regs: &GuestRegs, what: &str, cr2: u64) -> ! {
    let id = domain::current_id();
    crate::hvlog!(
        error,
        "CPU0: domain {id} crashed: {what} (vector {}) at rip {:#018x}, error code {:#x}, cr2 {:#x}",
        regs.entry_vector,
        regs.rip,
        regs.error_code,
        cr2
    );
    dump_regs(regs);
    shutdown::domain_shutdown(id, 3)
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
    crate::console::emergency(format_args!(
        "\n(hv) FATAL: CPU0: {} (vector {}) in hv at rip {:#018x}, error code {:#x}, cr2 {:#x}, current domain {}\n",
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
