//! CPU primitives: port I/O, MSRs, control registers, CPUID, the interrupt
//! flag.
//!
//! Each function is one instruction (or a few) wrapped so that callers above
//! `arch` stay safe. Those that can break memory safety by themselves (loading
//! CR3, writing arbitrary MSRs) stay `unsafe fn` with their conditions stated.

use core::arch::asm;

use x86_64::registers::control::{Cr0, Cr2, Cr3, Cr4};

pub fn outb(port: u16, value: u8) {
    // SAFETY: port output has no effect on Rust-visible memory; the ports hv
    // touches (COM1, PIT, debug-exit, ACPI PM) are devices it owns.
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
    }
}

pub fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: as for `outb`.
    unsafe {
        asm!("in al, dx", out("al") value, in("dx") port, options(nomem, nostack, preserves_flags))
    }
    value
}

pub fn outw(port: u16, value: u16) {
    // SAFETY: as for `outb`.
    unsafe {
        asm!("out dx, ax", in("dx") port, in("ax") value, options(nomem, nostack, preserves_flags))
    }
}

pub fn outl(port: u16, value: u32) {
    // SAFETY: as for `outb`.
    unsafe {
        asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags))
    }
}

pub fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: reading an MSR has no memory effect; callers pass architectural
    // MSRs that exist on every x86_64 CPU or that CPUID reported.
    unsafe {
        asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    }
    u64::from(hi) << 32 | u64::from(lo)
}

/// Writes an MSR.
///
/// # Safety
/// The MSR and value must not break the invariants hv relies on (paging,
/// segment bases, the syscall entry point).
pub unsafe fn wrmsr(msr: u32, value: u64) {
    let lo = (value & 0xffff_ffff) as u32;
    let hi = (value >> 32) as u32;
    // SAFETY: the caller guarantees the write is sound.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") lo, in("edx") hi, options(nostack, preserves_flags))
    }
}

pub fn cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
    let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
    [r.eax, r.ebx, r.ecx, r.edx]
}

// Reads of control registers and `hlt` come from the `x86_64`
// crate, whose safe wrappers carry the (trivial) safety arguments. The
// reads are one instruction each: always inlined (the MMU hypercalls and
// the #PF bounce read cr3/cr2 on their hot paths).

#[inline(always)]
pub fn read_cr0() -> u64 {
    Cr0::read_raw()
}

#[inline(always)]
pub fn read_cr2() -> u64 {
    Cr2::read_raw()
}

#[inline(always)]
pub fn read_cr3() -> u64 {
    let (frame, low) = Cr3::read_raw();
    frame.start_address().as_u64() | u64::from(low)
}

#[inline(always)]
pub fn read_cr4() -> u64 {
    Cr4::read_raw()
}

/// Loads CR3.
///
/// # Safety
/// `value` must point at a valid L4 table that maps hv (slots 256–271 as in
/// the idle page table) and the current stack.
pub unsafe fn write_cr3(value: u64) {
    // SAFETY: the caller guarantees the new tables map everything hv uses.
    unsafe { asm!("mov cr3, {}", in(reg) value, options(nostack, preserves_flags)) }
}

/// Loads CR4.
///
/// # Safety
/// Only feature bits the CPU reported may be set, and none that invalidate
/// hv's current paging mode.
pub unsafe fn write_cr4(value: u64) {
    // SAFETY: the caller guarantees the bits are supported and consistent.
    unsafe { asm!("mov cr4, {}", in(reg) value, options(nostack, preserves_flags)) }
}

/// Loads CR0.
///
/// # Safety
/// As for `write_cr4`.
pub unsafe fn write_cr0(value: u64) {
    // SAFETY: the caller guarantees the bits are consistent.
    unsafe { asm!("mov cr0, {}", in(reg) value, options(nostack, preserves_flags)) }
}

pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc has no memory effect.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Idles until an interrupt: `sti; hlt` (the `sti` shadow covers the
/// `hlt`, so an interrupt pending already wakes it), then interrupts off
/// again, as hv runs. The interrupt's handler has run when this returns.
pub fn wait_for_interrupt() {
    x86_64::instructions::interrupts::enable_and_hlt();
    x86_64::instructions::interrupts::disable();
}

/// Stops this CPU for good.
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

/// Reads rbp (the frame pointer) of the caller, for backtraces.
pub fn frame_pointer() -> u64 {
    let v: u64;
    // SAFETY: reading rbp has no effect.
    unsafe { asm!("mov {}, rbp", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

pub const MSR_EFER: u32 = 0xc000_0080;
pub const MSR_STAR: u32 = 0xc000_0081;
pub const MSR_LSTAR: u32 = 0xc000_0082;
pub const MSR_CSTAR: u32 = 0xc000_0083;
pub const MSR_FMASK: u32 = 0xc000_0084;
pub const MSR_APIC_BASE: u32 = 0x1b;

pub const EFER_SCE: u64 = 1 << 0;
pub const EFER_NXE: u64 = 1 << 11;

pub const CR4_OSFXSR: u64 = 1 << 9;
pub const CR4_OSXMMEXCPT: u64 = 1 << 10;
pub const CR4_SMEP: u64 = 1 << 20;
pub const CR4_SMAP: u64 = 1 << 21;

/// Drops the TLB entry (global ones included) for `va`.
pub fn invlpg(va: u64) {
    // Not `x86_64::instructions::tlb::flush`: its `VirtAddr` costs a
    // canonical check on the `update_va_mapping` path.
    // SAFETY: invalidating a translation never breaks memory safety.
    unsafe { asm!("invlpg [{}]", in(reg) va, options(nostack, preserves_flags)) }
}

/// Reads an address hv never maps (the bottom of the hypervisor range), so
/// the #PF path for faults inside hv can be tested (`selftest=pagefault`).
pub fn selftest_page_fault() {
    let va = 0xffff_8400_0000_0000_u64;
    // SAFETY: the read faults before any value is produced; the #PF handler
    // reports the fault and leaves the machine, so execution never continues
    // with an invented value.
    let _ = unsafe { core::ptr::read_volatile(va as *const u64) };
}

pub fn inw(port: u16) -> u16 {
    let value: u16;
    // SAFETY: as for `outb`; callers above `arch` pass only ports the
    // port policy in `emulate` gives the hardware domain.
    unsafe {
        asm!("in ax, dx", out("ax") value, in("dx") port, options(nomem, nostack, preserves_flags))
    }
    value
}

pub fn inl(port: u16) -> u32 {
    let value: u32;
    // SAFETY: as for `inw`.
    unsafe {
        asm!("in eax, dx", out("eax") value, in("dx") port, options(nomem, nostack, preserves_flags))
    }
    value
}

/// Writes back and invalidates every cache (the hardware domain's `wbinvd`).
pub fn wbinvd() {
    // SAFETY: flushing caches never changes memory contents.
    unsafe { asm!("wbinvd", options(nostack, preserves_flags)) }
}

pub const MSR_FS_BASE: u32 = 0xc000_0100;
pub const MSR_GS_BASE: u32 = 0xc000_0101;
pub const MSR_SHADOW_GS_BASE: u32 = 0xc000_0102;
pub const MSR_TSC_AUX: u32 = 0xc000_0103;
