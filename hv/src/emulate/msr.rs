//! `rdmsr`/`wrmsr` from a PV guest kernel, as Xen 4.17 answers them.
//!
//! Reads:
//! - `APIC_BASE` (0x1b): the default base, enabled, BSP for vCPU 0
//!   (Linux PV kernels read it);
//! - `FS_BASE`/`GS_BASE`: the current bases; `SHADOW_GS_BASE`: the user GS
//!   base the guest last wrote;
//! - `TSC` (0x10): the TSC; `EFER`: hv's EFER minus the bits Xen hides
//!   (SVME, AIBRSE, unknown ones); `PAT` (0x277): Xen's fixed PAT;
//!   `PERF_CAPABILITIES` (0x345): 0;
//! - 0x40000000 (Xen's hypercall-page MSR): 0;
//! - Intel only: `MISC_ENABLE` (0x1a0) with PERF_AVAIL and MONITOR_ENABLE
//!   cleared and BTS/PEBS unavailable and xTPR disabled set;
//! - AMD only: the P-state / FID-VID MSRs read as 0; `NB_CFG` (0xc001001f)
//!   reads as 0 on any vendor (no vCPU is pinned);
//! - the machine-check MSRs (`MCG_*`, the banks, `P5_MC_*`): the vCPU's
//!   virtual MCE, read and written by [`hv::vmce`]'s rules.
//!
//! Writes:
//! - `FS_BASE`/`GS_BASE`/`SHADOW_GS_BASE` with a canonical value;
//! - `EFER` with exactly the value a read gives (Linux writes it back);
//! - dropped silently: `NB_CFG`; Intel `MISC_ENABLE`, `THERM_CONTROL`,
//!   `ENERGY_PERF_BIAS`; Intel/AMD `MPERF`/`APERF`; AMD P-state MSRs and
//!   `HWCR`.
//!
//! - 0x40000000 (Xen's hypercall-page MSR): fills the domain's page at that
//!   machine address with the hypercall stubs (index bits 0, a page that
//!   can be writable).
//!
//! Everything else is #GP. Xen differs in one way hv does not follow yet:
//! a guest with no #GP handler registered reads an MSR the hardware has
//! as 0 ("faking RDMSR").

use crate::arch::x86_64::entry::GuestRegs;
use crate::arch::x86_64::{cpu, guest_state};
use crate::domain::Cur;
use hv::vmce::McaVendor;

const MSR_TSC: u32 = 0x10;
const MSR_APIC_BASE: u32 = 0x1b;
const MSR_MPERF: u32 = 0xe7;
const MSR_APERF: u32 = 0xe8;
const MSR_THERM_CONTROL: u32 = 0x19a;
const MSR_MISC_ENABLE: u32 = 0x1a0;
const MSR_ENERGY_PERF_BIAS: u32 = 0x1b0;
const MSR_PAT: u32 = 0x277;
const MSR_PERF_CAPABILITIES: u32 = 0x345;
const MSR_XEN_HYPERCALL_PAGE: u32 = 0x4000_0000;
const MSR_K8_HWCR: u32 = 0xc001_0015;
const MSR_AMD64_NB_CFG: u32 = 0xc001_001f;
/// FID/VID control and status, P-state limit/control/status, P-states 0-7.
const AMD_PSTATE_MSRS: [u32; 13] = [
    0xc001_0041,
    0xc001_0042,
    0xc001_0061,
    0xc001_0062,
    0xc001_0063,
    0xc001_0064,
    0xc001_0065,
    0xc001_0066,
    0xc001_0067,
    0xc001_0068,
    0xc001_0069,
    0xc001_006a,
    0xc001_006b,
];

/// Xen's PAT: WB, WT, UC-, UC, WC, WP, UC, UC.
const XEN_MSR_PAT: u64 = 0x0000_0501_0007_0406;
/// EFER bits Xen knows (SCE, LME, LMA, NXE, LMSLE, FFXSE) minus SVME and
/// AIBRSE, which it hides.
const EFER_GUEST_MASK: u64 = (1 << 0) | (1 << 8) | (1 << 10) | (1 << 11) | (1 << 13) | (1 << 14);

const APIC_BASE_BSP: u64 = 1 << 8;
const APIC_BASE_ENABLE: u64 = 1 << 11;
const APIC_DEFAULT_PHYS_BASE: u64 = 0xfee0_0000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Vendor {
    Intel,
    Amd,
    Other,
}

fn vendor() -> Vendor {
    match cpu::cpuid(0, 0) {
        [_, 0x756e_6547, 0x6c65_746e, 0x4965_6e69] => Vendor::Intel,
        [_, 0x6874_7541, 0x444d_4163, 0x6974_6e65] => Vendor::Amd,
        // Hygon counts as AMD for these MSRs.
        [_, 0x6f67_7948, 0x656e_6975, 0x6e65_476e] => Vendor::Amd,
        _ => Vendor::Other,
    }
}

fn guest_efer() -> u64 {
    cpu::rdmsr(cpu::MSR_EFER) & EFER_GUEST_MASK
}

fn guest_misc_enable(v: u64) -> u64 {
    let clear = (1 << 7) | (1 << 18);
    let set = (1 << 11) | (1 << 12) | (1 << 23);
    (v & !clear) | set
}

fn mca_vendor() -> McaVendor {
    match vendor() {
        Vendor::Intel => McaVendor::Intel,
        Vendor::Amd | Vendor::Other => McaVendor::Other,
    }
}

fn read(d: &Cur<'_>, msr: u32) -> Option<u64> {
    if let Some(got) = d.vcpu.vmce.read(mca_vendor(), msr) {
        return got.ok();
    }
    let v = match msr {
        MSR_APIC_BASE => APIC_DEFAULT_PHYS_BASE | APIC_BASE_ENABLE | APIC_BASE_BSP,
        cpu::MSR_FS_BASE => cpu::rdmsr(cpu::MSR_FS_BASE),
        cpu::MSR_GS_BASE => cpu::rdmsr(cpu::MSR_GS_BASE),
        // The inactive base (the user one: only the guest kernel reads
        // MSRs), which a user-mode `wrgsbase` may have changed.
        cpu::MSR_SHADOW_GS_BASE => cpu::rdmsr(cpu::MSR_SHADOW_GS_BASE),
        MSR_TSC => cpu::rdtsc(),
        cpu::MSR_EFER => guest_efer(),
        MSR_PAT => XEN_MSR_PAT,
        MSR_PERF_CAPABILITIES => 0,
        MSR_XEN_HYPERCALL_PAGE => 0,
        MSR_AMD64_NB_CFG => 0,
        MSR_MISC_ENABLE if vendor() == Vendor::Intel => guest_misc_enable(cpu::rdmsr(msr)),
        m if AMD_PSTATE_MSRS.contains(&m) && vendor() == Vendor::Amd => 0,
        _ => return None,
    };
    Some(v)
}

fn write(d: &mut Cur<'_>, msr: u32, v: u64) -> bool {
    if let Some(done) = d.vcpu.vmce.write(mca_vendor(), msr, v) {
        return done.is_ok();
    }
    let vendor = vendor();
    match msr {
        // The kernel runs, so the live GS base is the kernel's and the
        // inactive one the user's.
        cpu::MSR_FS_BASE => {
            let ok = guest_state::write_fs_base(v).is_ok();
            if ok {
                d.vcpu.traps.fs_base = v;
            }
            ok
        }
        cpu::MSR_GS_BASE => {
            let ok = guest_state::write_gs_base(v).is_ok();
            if ok {
                d.vcpu.traps.gs_base_kernel = v;
            }
            ok
        }
        cpu::MSR_SHADOW_GS_BASE => {
            let ok = guest_state::write_inactive_gs_base(v).is_ok();
            if ok {
                d.vcpu.traps.gs_base_user = v;
            }
            ok
        }
        cpu::MSR_EFER => v == guest_efer(),
        MSR_XEN_HYPERCALL_PAGE => write_hypercall_page(d, v),
        MSR_AMD64_NB_CFG => true,
        MSR_MISC_ENABLE | MSR_THERM_CONTROL | MSR_ENERGY_PERF_BIAS => vendor == Vendor::Intel,
        MSR_MPERF | MSR_APERF => vendor != Vendor::Other,
        MSR_K8_HWCR => vendor == Vendor::Amd,
        m if AMD_PSTATE_MSRS.contains(&m) => vendor == Vendor::Amd,
        _ => false,
    }
}

/// Xen's hypercall-page MSR: `v` is the machine address of a page of the
/// domain (index bits must be 0) that can be writable; hv fills it with the
/// hypercall stubs, holding a writable type reference meanwhile so it
/// cannot be a page table or descriptor table.
fn write_hypercall_page(d: &Cur<'_>, v: u64) -> bool {
    use crate::mm::FrameWrite;
    let (mfn, idx) = (v >> 12, v & 0xfff);
    if idx != 0 {
        return false;
    }
    let Ok(frame) = crate::mm::WritableRef::take(mfn, d.dom.id.get()) else {
        return false;
    };
    frame
        .write(0, &crate::domain::builder::hypercall_page())
        .is_ok()
}

fn msr_index(regs: &GuestRegs) -> u32 {
    crate::hypercall::arg32(regs.rcx)
}

/// `rdmsr`: false means #GP.
pub fn rdmsr(d: &Cur<'_>, regs: &mut GuestRegs) -> bool {
    let msr = msr_index(regs);
    match read(d, msr) {
        Some(v) => {
            regs.rax = v & 0xffff_ffff;
            regs.rdx = v >> 32;
            true
        }
        None => {
            crate::guestlog!(
                d.dom.id,
                debug,
                "d{}: RDMSR {msr:#010x} unimplemented",
                d.dom.id
            );
            false
        }
    }
}

/// `wrmsr`: false means #GP.
pub fn wrmsr(d: &mut Cur<'_>, regs: &GuestRegs) -> bool {
    let msr = msr_index(regs);
    let v = (regs.rdx << 32) | (regs.rax & 0xffff_ffff);
    let ok = write(d, msr, v);
    if !ok {
        crate::guestlog!(
            d.dom.id,
            debug,
            "d{}: WRMSR {msr:#010x} value {v:#x} refused",
            d.dom.id
        );
    }
    ok
}
