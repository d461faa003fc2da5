//! Control registers as a PV guest sees them, and its CPUID.
//!
//! - cr0: hv's CR0 with TS replaced by the guest's virtual TS
//!   (`fpu_taskswitch`, `clts`). A write may change TS only; any other
//!   difference is refused (#GP), as on Xen.
//! - cr2: `vcpu_info.arch.cr2` in shared_info, where a page-fault bounce
//!   puts the faulting address (Xen keeps a copy it writes together with
//!   that field); a write sets it.
//! - cr3: the guest kernel's page table as a machine address (for a 64-bit
//!   PV guest `xen_pfn_to_cr3(mfn)` is the plain address). A write switches
//!   the base pointer as `MMUEXT_NEW_BASEPTR` does (in `emulate`, after the
//!   domain lock is released).
//! - cr4: Xen's PV view, PAE, MCE (if the CPU has it), OSFXSR and
//!   OSXMMEXCPT, plus the guest-controlled bits. A write sets or clears
//!   TSD, DE, FSGSBASE and OSXSAVE, each dropped when the guest's CPUID
//!   lacks its feature, as Xen drops bits its policy lacks; the other bits
//!   of the write are ignored, as on Xen. TSD and FSGSBASE reach the CPU
//!   while the vCPU runs (Xen's `pv_make_cr4`): `rdtsc` then faults (and
//!   is emulated for the guest kernel), `{rd,wr}{fs,gs}base` work.
//! - xcr0 (`xsetbv`, see [`xsetbv`]): the guest kernel's value, checked as
//!   Xen checks it; `xgetbv` is not privileged and reads the CPU, which
//!   holds the vCPU's value while it runs.

use hv::pv_cpuid::{self, Context};
use hv::x86_decode::Cr;
use hv::xcr0::{self, XsetbvError};

use crate::arch::x86_64::entry::GuestRegs;
use crate::arch::x86_64::{apic, cpu, guest_state, xstate};
use crate::domain::Cur;

const CR0_TS: u64 = 1 << 3;
const CR4_PAE: u64 = 1 << 5;
const CR4_MCE: u64 = 1 << 6;
const CR4_OSFXSR: u64 = 1 << 9;
const CR4_OSXMMEXCPT: u64 = 1 << 10;
const CR4_OSXSAVE: u64 = 1 << 18;
const CR4_TSD: u64 = 1 << 2;
const CR4_DE: u64 = 1 << 3;
const CR4_FSGSBASE: u64 = 1 << 16;
const CPUID1D_TSC: u32 = 1 << 4;
const CPUID1D_DE: u32 = 1 << 2;
const CPUID1C_XSAVE: u32 = 1 << 26;
const CPUID7B_FSGSBASE: u32 = 1 << 0;
/// CPUID.1.EDX.MCE: Xen runs with CR4.MCE whenever the CPU has it.
const CPUID_MCE: u32 = 1 << 7;

/// The guest's view of CR0.
pub fn cr0(d: &Cur<'_>) -> u64 {
    let ts = if d.vcpu.traps.virtual_ts { CR0_TS } else { 0 };
    (cpu::read_cr0() & !CR0_TS) | ts
}

/// The guest's view of CR4.
pub fn cr4(d: &Cur<'_>) -> u64 {
    // Xen's `PV_CR4_GUEST_VISIBLE_MASK` of Xen's own CR4, which always has
    // PAE, OSFXSR and OSXMMEXCPT, and MCE when the CPU has it (whatever
    // hv's own CR4 holds).
    let mce = if cpu::cpuid(1, 0)[3] & CPUID_MCE != 0 {
        CR4_MCE
    } else {
        0
    };
    CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | mce | d.vcpu.priv_state.cr4_guest
}

pub fn read_cr(d: &Cur<'_>, cr: Cr) -> u64 {
    match cr {
        Cr::Cr0 => cr0(d),
        Cr::Cr2 => d.vcpu.vcpu_info.cr2(),
        Cr::Cr3 => d.vcpu.kernel_cr3,
        Cr::Cr4 => cr4(d),
    }
}

pub fn write_cr(d: &mut Cur<'_>, cr: Cr, v: u64) -> bool {
    match cr {
        Cr::Cr0 => {
            if (v ^ cr0(d)) & !CR0_TS != 0 {
                crate::guestlog!(
                    d.dom.id,
                    warn,
                    "d{}: attempt to change unmodifiable CR0 flags ({v:#x})",
                    d.dom.id
                );
                return false;
            }
            set_fpu_taskswitch(d, v & CR0_TS != 0);
            true
        }
        Cr::Cr2 => {
            d.vcpu.vcpu_info.set_cr2(v);
            true
        }
        // Handled by the caller (MMUEXT_NEW_BASEPTR); never reaches here.
        Cr::Cr3 => false,
        Cr::Cr4 => {
            // As Xen's `pv_fixup_guest_cr4`: of the write, only the
            // guest-controlled bits count, each dropped unless the
            // guest's CPUID offers its feature; the rest is ignored.
            let bits = v & guest_cr4_allowed(d);
            d.vcpu.priv_state.cr4_guest = bits;
            guest_state::set_cr4_per_vcpu(bits);
            true
        }
    }
}

/// The guest-controlled CR4 bits whose features the guest's CPUID offers
/// (Xen's `PV_CR4_GUEST_MASK` within its policy): TSD with TSC, DE with
/// DE, FSGSBASE with FSGSBASE, OSXSAVE with XSAVE (which hv offers only
/// when it runs with XSAVE itself).
fn guest_cr4_allowed(d: &Cur<'_>) -> u64 {
    let ctx = context(d, false);
    let [_, _, c1, d1] = pv_cpuid::pv_cpuid(1, 0, &cpu::cpuid, &ctx);
    let [_, b7, _, _] = pv_cpuid::pv_cpuid(7, 0, &cpu::cpuid, &ctx);
    let mut allowed = 0;
    if d1 & CPUID1D_TSC != 0 {
        allowed |= CR4_TSD;
    }
    if d1 & CPUID1D_DE != 0 {
        allowed |= CR4_DE;
    }
    if b7 & CPUID7B_FSGSBASE != 0 {
        allowed |= CR4_FSGSBASE;
    }
    if c1 & CPUID1C_XSAVE != 0 && xstate::enabled() {
        allowed |= CR4_OSXSAVE;
    }
    allowed
}

/// Whether the guest set CR4.TSD (`rdtsc` outside its kernel faults).
pub fn tsd(d: &Cur<'_>) -> bool {
    d.vcpu.priv_state.cr4_guest & CR4_TSD != 0
}

/// Whether the guest set CR4.DE (DR4/DR5 no longer alias DR6/DR7).
pub fn debug_extensions(d: &Cur<'_>) -> bool {
    d.vcpu.priv_state.cr4_guest & CR4_DE != 0
}

/// The guest kernel's `xsetbv` (Xen's emulation of it, in Xen's order):
/// #UD while the guest's CR4.OSXSAVE is clear, #GP(0) from guest user
/// mode or for an XCR other than 0 or a value outside the PV policy (hv's
/// XCR0 mask, which is that policy) or invalid; otherwise the vCPU's XCR0
/// changes, in the CPU too.
pub fn xsetbv(d: &mut Cur<'_>, regs: &GuestRegs) -> Result<(), XsetbvError> {
    let value = (regs.rdx << 32) | (regs.rax & 0xffff_ffff);
    let v = xcr0::decide_xsetbv(
        d.vcpu.priv_state.cr4_guest & CR4_OSXSAVE != 0,
        d.vcpu.in_kernel,
        crate::hypercall::arg32(regs.rcx),
        value,
        xstate::config().mask,
    )?;
    xstate::guest_xsetbv(&mut d.vcpu.fpu, v);
    Ok(())
}

/// Sets the guest's virtual CR0.TS and the hardware's with it, as
/// `fpu_taskswitch` does (the #NM it causes clears both).
pub fn set_fpu_taskswitch(d: &mut Cur<'_>, ts: bool) {
    d.vcpu.traps.virtual_ts = ts;
    guest_state::set_cr0_ts(ts);
}

/// Answers `cpuid` for the guest (`forced`: through the forced-emulation
/// prefix, else a faulted `cpuid`).
pub fn cpuid(d: &Cur<'_>, regs: &mut GuestRegs, forced: bool) {
    let leaf = crate::hypercall::arg32(regs.rax);
    let subleaf = crate::hypercall::arg32(regs.rcx);
    let ctx = context(d, forced);
    let [a, b, c, dx] = pv_cpuid::pv_cpuid(leaf, subleaf, &cpu::cpuid, &ctx);
    regs.rax = u64::from(a);
    regs.rbx = u64::from(b);
    regs.rcx = u64::from(c);
    regs.rdx = u64::from(dx);
}

/// What the PV CPUID policy depends on for the running vCPU.
fn context(d: &Cur<'_>, forced: bool) -> Context {
    Context {
        hardware_domain: d.dom.initial,
        kernel_mode: d.vcpu.in_kernel,
        forced,
        guest_cr4: d.vcpu.priv_state.cr4_guest,
        host_osxsave: cpu::read_cr4() & CR4_OSXSAVE != 0,
        tsc_khz: u32::try_from(apic::tsc_khz()).unwrap_or(u32::MAX),
        host_rdtscp: cpu::cpuid(0x8000_0001, 0)[3] & (1 << 27) != 0,
        machine_address_bits: machine_address_bits(),
        xcr0: d.vcpu.fpu.xcr0(),
    }
}

/// Bits needed for the highest machine address of RAM (Xen's
/// `flsl(get_upper_mfn_bound()) + PAGE_SHIFT`).
fn machine_address_bits() -> u32 {
    let top = crate::mm::nr_frames().saturating_sub(1);
    (64 - top.leading_zeros()) + 12
}
