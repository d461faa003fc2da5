//! The trap hypercalls: `set_trap_table`, `stack_switch`,
//! `fpu_taskswitch` and `iret`.
//!
//! `set_trap_table` copies entries one at a time until one with address 0
//! (Xen's terminator): each entry is installed as soon as it is read, so a
//! fault part-way leaves the earlier ones in place and returns `-EFAULT`;
//! a non-canonical handler gives `-EINVAL`; the code selector gets RPL 3
//! (Xen's fixup for 64-bit PV). A null table pointer clears the whole
//! table. Long tables are preempted and resumed.
//!
//! `iret` reads Xen's `iret_context` from the guest stack and returns to
//! the frame it describes (see `arch-x86/xen-x86_64.h`); a frame that
//! cannot be read, or a return to user mode with no user page table,
//! crashes the domain as on Xen. A frame the CPU then refuses (bad
//! selectors, non-canonical rip) is the guest's exception at that frame
//! (see `traps`). With `VGCF_in_syscall` and a canonical rip Xen returns
//! with `sysret`, which never looks at the frame's cs and ss; hv returns
//! with `iretq` but loads sysret's selectors, to the same effect. It is
//! not a call that returns: `rax` is
//! the saved one. Xen refuses it inside a multicall (XSA-213), see
//! [`allowed_in_multicall`].

use guest_abi::arch::VGCF_IN_SYSCALL;
use guest_abi::errno::Errno;
use guest_abi::xen::{IretContext, TrapInfo, VMASST_TYPE_ARCHITECTURAL_IOPL};

use super::Outcome;
use crate::arch::x86_64::entry::GuestRegs;
use crate::arch::x86_64::guest_state::{self, is_canonical};
use crate::domain::{self, Cur};
use crate::guest_mem::{GuestPtr, Loaded};
use crate::traps::bounce::{self, RFLAGS_IF, RFLAGS_IOPL, RFLAGS_VM};

/// Entries installed per call before `set_trap_table` resumes itself.
const ENTRIES_PER_CALL: usize = 64;

/// Architecturally defined rflags bits (the rest are reserved, zero).
const RFLAGS_DEFINED: u64 = 0x003f_7fd5;
const RFLAGS_FIXED1: u64 = 1 << 1;

/// Whether hypercall `nr` may be issued from a multicall. `iret` may not:
/// it rewrites the frame the multicall would return through (XSA-213).
pub fn allowed_in_multicall(nr: u64) -> bool {
    nr != guest_abi::hypercall::IRET
}

/// Forces a guest selector's RPL to 3 (guest kernel RPL of a 64-bit PV
/// guest), as Xen's `fixup_guest_{code,stack}_selector`.
fn fixup_selector(sel: u64) -> u64 {
    sel | 3
}

pub fn set_trap_table(table: u64) -> Outcome {
    if table == 0 {
        domain::with_current(|d| {
            d.vcpu.traps.table = crate::domain::TrapState::new().table;
        });
        return Outcome::Done(0);
    }
    let mut va = table;
    for _ in 0..ENTRIES_PER_CALL {
        let Ok(mut ti) = GuestPtr::<TrapInfo>::new(va).and_then(|p| p.read(&Loaded)) else {
            return Outcome::Err(Errno::EFAULT);
        };
        if ti.address == 0 {
            return Outcome::Done(0);
        }
        if !is_canonical(ti.address) {
            return Outcome::Err(Errno::EINVAL);
        }
        ti.cs = u16::try_from(fixup_selector(u64::from(ti.cs))).unwrap_or(ti.cs | 3);
        domain::with_current(|d| d.vcpu.traps.table[usize::from(ti.vector)] = ti);
        va = va.wrapping_add(size_of::<TrapInfo>() as u64);
    }
    Outcome::again([va])
}

pub fn stack_switch(ss: u64, sp: u64) -> Outcome {
    let ss = fixup_selector(ss);
    domain::with_current(|d| {
        d.vcpu.traps.kernel_ss = ss;
        d.vcpu.traps.kernel_sp = sp;
    });
    Outcome::Done(0)
}

pub fn fpu_taskswitch(set: i32) -> Outcome {
    let set = set != 0;
    domain::with_current(|d| d.vcpu.traps.virtual_ts = set);
    // The hardware TS makes the guest's next FPU instruction fault; the #NM
    // handler clears it and bounces if the virtual TS is still set.
    guest_state::set_cr0_ts(set);
    Outcome::Done(0)
}

/// Why `iret` crashed the domain.
#[derive(Debug)]
enum IretError {
    Unreadable(u64),
    NoUserPageTable,
}

/// Reads the `iret_context` at the guest's stack pointer. A hypercall runs
/// on the caller's page tables: the CPU walks them.
#[inline(always)]
fn iret_context(regs: &GuestRegs) -> Result<IretContext, IretError> {
    crate::guest_mem::read_iret_context(regs.rsp).map_err(|_| IretError::Unreadable(regs.rsp))
}

#[inline(always)]
fn restore(d: &mut Cur<'_>, regs: &mut GuestRegs, ctx: &IretContext) -> Result<(), IretError> {
    if ctx.cs & 3 == 3 {
        if d.vcpu.user_cr3 == 0 {
            return Err(IretError::NoUserPageTable);
        }
        bounce::toggle_guest_mode(d);
    }
    if d.vm_assist & (1 << VMASST_TYPE_ARCHITECTURAL_IOPL) != 0 {
        d.vcpu.traps.iopl = ctx.rflags & RFLAGS_IOPL;
    }
    regs.rip = ctx.rip;
    regs.rflags =
        (ctx.rflags & RFLAGS_DEFINED & !(RFLAGS_IOPL | RFLAGS_VM)) | RFLAGS_IF | RFLAGS_FIXED1;
    regs.rsp = ctx.rsp;
    regs.cs = fixup_selector(ctx.cs);
    regs.ss = fixup_selector(ctx.ss);
    if ctx.flags & VGCF_IN_SYSCALL != 0 {
        // Xen returns with sysret: rcx and r11 become rip and rflags, and
        // cs/ss are sysret's fixed selectors whatever the frame said (for a
        // non-canonical rip Xen falls back to iret, which faults).
        bounce::sysret_registers(regs);
        if matches!(ctx.rip >> 47, 0 | 0x1_ffff) {
            regs.cs = u64::from(crate::arch::x86_64::gdt::RING3_CS64);
            regs.ss = u64::from(crate::arch::x86_64::gdt::RING3_DS);
        }
    } else {
        regs.rcx = ctx.rcx;
        regs.r11 = ctx.r11;
    }
    bounce::set_upcall_mask(d, ctx.rflags & RFLAGS_IF == 0);
    regs.rax = ctx.rax;
    Ok(())
}

/// Returns to the frame on the guest stack: the registers are rewritten
/// and rax is the frame's.
#[inline(always)]
pub fn iret(regs: &mut GuestRegs) -> Outcome {
    // The frame is copied in before the vCPU is locked: no lock is held
    // across a guest copy.
    let r = iret_context(regs).and_then(|ctx| domain::with_current(|d| restore(d, regs, &ctx)));
    if let Err(e) = r {
        let cpu = crate::arch::x86_64::percpu::cpu_id();
        match e {
            IretError::Unreadable(va) => crate::hvlog!(
                error,
                "CPU{cpu}: iret: fault while reading the iret context at {va:#x}"
            ),
            IretError::NoUserPageTable => crate::hvlog!(
                error,
                "CPU{cpu}: iret: switching to user mode with no user page table"
            ),
        }
        return Outcome::Crash("bad iret");
    }
    Outcome::Done(regs.rax)
}
