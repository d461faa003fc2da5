//! The parts of a PV vCPU's state that live in CPU registers while it runs:
//! its page-table base, its FS/GS bases, and CR0.TS (its FPU/SSE/AVX
//! state and XCR0 are `xstate`'s).
//!
//! hv itself never uses FS or GS, so their bases belong to the guest for as
//! long as it runs. GS_BASE holds the base of the guest mode that runs now
//! and KERNEL_GS_BASE the other one; changing guest mode is one `swapgs`,
//! which keeps Xen's arrangement (the guest kernel's GS base is live while
//! the kernel runs, the user one while user mode runs).

use core::arch::asm;

use super::cpu::wrmsr;
use super::gdt;

const MSR_FS_BASE: u32 = 0xc000_0100;
const MSR_GS_BASE: u32 = 0xc000_0101;
const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;

const CR0_TS: u64 = 1 << 3;

/// A segment base the CPU would refuse (a non-canonical address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonCanonical;

pub fn is_canonical(va: u64) -> bool {
    let top = va >> 47;
    top == 0 || top == 0x1_ffff
}

/// Loads a guest page table.
///
/// Callers pass only a vCPU's `kernel_cr3` or `user_cr3`: L4 tables the
/// domain builder or the MMU validated, which carry hv's own slots (so hv's
/// code, data and stacks stay mapped across the switch).
pub fn load_guest_cr3(cr3: u64) {
    // SAFETY: see above: the table maps hv exactly as the current one does,
    // so execution continues unaffected; guest mappings are not used by hv
    // except through the software walk in guest_mem.
    unsafe { super::cpu::write_cr3(cr3) }
}

/// Exchanges the live and the inactive GS base (a guest mode change).
pub fn swapgs() {
    // SAFETY: hv never uses GS; both bases belong to the running guest.
    unsafe { asm!("swapgs", options(nomem, nostack, preserves_flags)) }
}

fn write_base(msr: u32, base: u64) -> Result<(), NonCanonical> {
    if !is_canonical(base) {
        return Err(NonCanonical);
    }
    // SAFETY: a canonical base cannot fault, and hv never uses FS or GS,
    // so only the guest sees the change.
    unsafe { wrmsr(msr, base) };
    Ok(())
}

/// Sets the live FS base.
pub fn write_fs_base(base: u64) -> Result<(), NonCanonical> {
    write_base(MSR_FS_BASE, base)
}

/// Sets the live GS base (the running guest mode's).
pub fn write_gs_base(base: u64) -> Result<(), NonCanonical> {
    write_base(MSR_GS_BASE, base)
}

/// Sets the inactive GS base (the other guest mode's).
pub fn write_inactive_gs_base(base: u64) -> Result<(), NonCanonical> {
    write_base(MSR_KERNEL_GS_BASE, base)
}

/// Loads `sel` into GS on behalf of the inactive guest mode (guest user
/// mode, while the guest kernel runs) and returns the base it gave.
///
/// A selector the CPU would refuse is replaced by the null selector first
/// (Xen loads null when the load faults); a null selector leaves base 0 on
/// every vendor, because the flat data selector is loaded before it (AMD
/// keeps the old base on a null load).
pub fn load_inactive_gs_selector(sel: u16) -> (u16, u64) {
    let sel = if gdt::loadable_by_guest(sel) { sel } else { 0 };
    let flat = gdt::RING3_DS;
    let base: u64;
    // SAFETY: (1) hv never uses GS, so swapping it in and out and
    // reloading it affects only the guest; (2) both selectors loaded are
    // null or checked above to be present, ring-3 accessible data or
    // readable code segments in the GDT, so the loads cannot fault; (3) the
    // second swapgs restores the live base.
    unsafe {
        asm!(
            "swapgs",
            "mov gs, {flat:e}",
            "mov gs, {sel:e}",
            "mov ecx, 0xc0000101",
            "rdmsr",
            "shl rdx, 32",
            "or rax, rdx",
            "swapgs",
            flat = in(reg) u32::from(flat),
            sel = in(reg) u32::from(sel),
            out("rax") base,
            out("rcx") _,
            out("rdx") _,
            options(nomem, nostack, preserves_flags),
        );
    }
    (sel, base)
}

/// Sets or clears CR0.TS (the guest's `fpu_taskswitch`): with it set, the
/// guest's next FPU/SSE instruction raises #NM. hv uses no FPU state.
pub fn set_cr0_ts(on: bool) {
    let cr0 = super::cpu::read_cr0();
    let new = if on { cr0 | CR0_TS } else { cr0 & !CR0_TS };
    if new != cr0 {
        // SAFETY: TS only changes when FPU instructions trap, and hv
        // executes none.
        unsafe { super::cpu::write_cr0(new) };
    }
}

/// The live FS base, GS base and inactive GS base.
pub fn read_bases() -> (u64, u64, u64) {
    (
        super::cpu::rdmsr(MSR_FS_BASE),
        super::cpu::rdmsr(MSR_GS_BASE),
        super::cpu::rdmsr(MSR_KERNEL_GS_BASE),
    )
}

/// Whether CR0.TS is set (the running vCPU's virtual TS).
pub fn cr0_ts() -> bool {
    super::cpu::read_cr0() & CR0_TS != 0
}

const CR4_TSD: u64 = 1 << 2;
const CR4_FSGSBASE: u64 = 1 << 16;
/// The CR4 bits a vCPU's own setting decides while it runs (Xen's
/// `pv_make_cr4`): TSD (`rdtsc` faults outside ring 0) and FSGSBASE
/// (`{rd,wr}{fs,gs}base` usable), both off while hv runs no vCPU that set
/// them.
pub const CR4_PER_VCPU: u64 = CR4_TSD | CR4_FSGSBASE;

/// Makes the CPU's TSD and FSGSBASE those of the vCPU's CR4 (`guest_cr4`,
/// its guest-controlled bits). Only writes CR4 when they change.
pub fn set_cr4_per_vcpu(guest_cr4: u64) {
    let cr4 = super::cpu::read_cr4();
    let new = (cr4 & !CR4_PER_VCPU) | (guest_cr4 & CR4_PER_VCPU);
    if new != cr4 {
        // SAFETY: TSD only makes `rdtsc` fault outside ring 0, and
        // FSGSBASE lets ring 3 change the FS/GS bases, which belong to the
        // guest (hv never uses FS or GS); the caller only sets bits the CPU
        // reports (the PV CPUID policy offers no others).
        unsafe { super::cpu::write_cr4(new) };
    }
}

/// The debug registers the CPU has (DR4/DR5 are aliases hv never uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dr {
    Dr0,
    Dr1,
    Dr2,
    Dr3,
    Dr6,
    Dr7,
}

impl Dr {
    /// DR0-DR3 by number.
    pub fn breakpoint(n: usize) -> Option<Self> {
        [Self::Dr0, Self::Dr1, Self::Dr2, Self::Dr3].get(n).copied()
    }
}

/// Reads a debug register.
pub fn read_dr(dr: Dr) -> u64 {
    let v: u64;
    // SAFETY: reading a debug register has no side effect (DR7.GD is never
    // set: hv refuses it to guests and sets it nowhere).
    unsafe {
        match dr {
            Dr::Dr0 => asm!("mov {}, dr0", out(reg) v, options(nomem, nostack, preserves_flags)),
            Dr::Dr1 => asm!("mov {}, dr1", out(reg) v, options(nomem, nostack, preserves_flags)),
            Dr::Dr2 => asm!("mov {}, dr2", out(reg) v, options(nomem, nostack, preserves_flags)),
            Dr::Dr3 => asm!("mov {}, dr3", out(reg) v, options(nomem, nostack, preserves_flags)),
            Dr::Dr6 => asm!("mov {}, dr6", out(reg) v, options(nomem, nostack, preserves_flags)),
            Dr::Dr7 => asm!("mov {}, dr7", out(reg) v, options(nomem, nostack, preserves_flags)),
        }
    }
    v
}

/// Writes a debug register with a value hv's checks passed
/// (`hypercall::debugreg`): breakpoint addresses inside the guest's part
/// of the address space, DR6/DR7 within 32 bits, DR7 without GD and
/// without I/O breakpoints enabled.
pub fn write_dr(dr: Dr, v: u64) {
    // SAFETY: a guest breakpoint can fire in hv only on a data access to
    // the guest's own addresses (hv never executes guest code); that #DB
    // arrives on its IST stack and hv ignores it (`traps`), the CPU having
    // recorded it in DR6 for the guest. Writing DR6 changes only the
    // status the guest reads.
    unsafe {
        match dr {
            Dr::Dr0 => asm!("mov dr0, {}", in(reg) v, options(nomem, nostack, preserves_flags)),
            Dr::Dr1 => asm!("mov dr1, {}", in(reg) v, options(nomem, nostack, preserves_flags)),
            Dr::Dr2 => asm!("mov dr2, {}", in(reg) v, options(nomem, nostack, preserves_flags)),
            Dr::Dr3 => asm!("mov dr3, {}", in(reg) v, options(nomem, nostack, preserves_flags)),
            Dr::Dr6 => asm!("mov dr6, {}", in(reg) v, options(nomem, nostack, preserves_flags)),
            Dr::Dr7 => asm!("mov dr7, {}", in(reg) v, options(nomem, nostack, preserves_flags)),
        }
    }
}
