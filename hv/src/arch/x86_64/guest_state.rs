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
