//! The CPUID view of a 64-bit PV guest, following Xen 4.17's default PV
//! policy.
//!
//! A PV guest's `cpuid` runs natively unless the CPU faults it; the answer
//! computed here is what the guest gets through the forced-emulation prefix
//! (`ud2; .ascii "xen"; cpuid`) or a faulted `cpuid`. It is the host's
//! answer filtered as Xen filters it:
//!
//! - feature words keep only the features Xen's public `cpufeatureset.h`
//!   marks `A` (on by default for every guest), plus `HYPERVISOR`; hv also
//!   hides IBRSB/STIBP/SSBD/IBRS because it does not virtualise
//!   `MSR_SPEC_CTRL` for PV guests (Xen does the same when it cannot);
//! - leaves Xen empties for guests are empty (5 MONITOR, 6 power, 8, 0xa
//!   PMU, 0xb and 0xc topology, 0x80000007 bar its feature word,
//!   0x8000000a SVM), and out-of-range leaves read as zeros;
//! - leaf 1 hides the APIC id (`ebx[31:24]`) and the processor type;
//!   `OSXSAVE` follows the guest's (virtual) CR4, or, for the guest
//!   kernel's forced-emulation path, the CR4 of the hypervisor itself; the
//!   hardware domain's kernel additionally sees `EIST` and `MTRR` (and
//!   `MONITOR`, leaf 5, on a faulted `cpuid`) when the host has them;
//! - leaf 0xd offers the XCR0 components of [`xcr0_max`] (x87, SSE, and
//!   AVX / AVX-512 when offered; never MPX, PKRU or AMX), and its subleaf 0
//!   `ebx` (and subleaf 1 `ebx` with XSAVEC) is the area size for the
//!   vCPU's own XCR0, as on Xen (576 with x87|SSE, 832 once AVX is on);
//! - 0x40000000–0x40000005 are Xen's leaves ("XenVMMXenVMM", version 4.17,
//!   one hypercall page with MSR base 0x40000000, the PV feature
//!   `MMU_PT_UPDATE_PRESERVE_AD`, time leaf, machine address width).
//!
//! Pure logic: the host CPUID comes in as a function, so the host unit
//! tests run it against synthetic CPUs.

use crate::xcr0;

/// Host CPUID: `(leaf, subleaf) -> [eax, ebx, ecx, edx]`.
pub type HostCpuid<'a> = &'a dyn Fn(u32, u32) -> [u32; 4];

/// Per-call facts about the vCPU that change the answer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context {
    /// The domain is the hardware domain (dom0).
    pub hardware_domain: bool,
    /// The guest kernel (not guest user mode) executed the `cpuid`.
    pub kernel_mode: bool,
    /// The `cpuid` came through the forced-emulation prefix (#UD) rather
    /// than CPUID faulting (#GP).
    pub forced: bool,
    /// CR4 as the guest sees it.
    pub guest_cr4: u64,
    /// The hypervisor's own CR4.OSXSAVE.
    pub host_osxsave: bool,
    /// Leaf 0x40000003 subleaf 2: the TSC frequency in kHz.
    pub tsc_khz: u32,
    /// The host has RDTSCP (leaf 0x40000003 subleaf 0 bit 2).
    pub host_rdtscp: bool,
    /// Leaf 0x40000005 ebx: bits of the highest machine address.
    pub machine_address_bits: u32,
    /// The vCPU's XCR0 (leaf 0xd reports the area size it needs).
    pub xcr0: u64,
}

/// Xen's hypervisor leaves start here.
pub const XEN_LEAF_BASE: u32 = 0x4000_0000;
/// `XEN_CPUID_MAX_NUM_LEAVES` in Xen 4.17's `arch-x86/cpuid.h`.
pub const XEN_MAX_LEAF_INDEX: u32 = 5;
/// `XEN_CPUID_FEAT1_MMU_PT_UPDATE_PRESERVE_AD`.
pub const XEN_FEAT1_MMU_PT_UPDATE_PRESERVE_AD: u32 = 1;
/// The Xen version the leaves report: 4.17.
pub const XEN_VERSION: u32 = (4 << 16) | 17;

// Feature words: the `A` (default for every guest) bits of Xen 4.17's
// cpufeatureset.h, by word.
const W0_1D: u32 = 0x1fc9_cbf5;
const W1_1C: u32 = 0xf6d8_3203;
const W2_E1D: u32 = 0xea50_0800;
const W3_E1C: u32 = 0x0421_09e3;
const W4_XSAVE: u32 = 0x0000_0007;
const W5_7B0: u32 = 0xfdaf_0b29;
const W6_7C0: u32 = 0x0240_5f43;
const W8_E8B: u32 = 0x6400_1005;
const W9_7D0: u32 = 0xac00_441c;
const W10_7A1: u32 = 0x0000_1c30;
const W11_E21A: u32 = 0x7800_0064;
const W13_7D2: u32 = 0x0000_0021;

/// Word 9 bits hidden because hv does not virtualise MSR_SPEC_CTRL for PV:
/// IBRSB (26), STIBP (27), SSBD (31).
const W9_SPEC_CTRL: u32 = (1 << 26) | (1 << 27) | (1 << 31);
/// Word 8 bit hidden for the same reason: IBRS (14).
const W8_SPEC_CTRL: u32 = 1 << 14;

const F1C_EIST: u32 = 1 << 7;
const F1C_MONITOR: u32 = 1 << 3;
const F1C_XSAVE: u32 = 1 << 26;
const F1C_OSXSAVE: u32 = 1 << 27;
const F1C_HYPERVISOR: u32 = 1 << 31;
const F1D_MTRR: u32 = 1 << 12;
const F1D_SEP: u32 = 1 << 11;
const F7C0_OSPKE: u32 = 1 << 4;
const F7B0_AVX512F: u32 = 1 << 16;
const F1C_AVX: u32 = 1 << 28;

/// Feature bits 0x80000001.edx shares with 1.edx on AMD.
const COMMON_1D: u32 = 0x0183_f3ff;

const CR4_OSXSAVE: u64 = 1 << 18;
const CR4_PKE: u64 = 1 << 22;

/// The highest basic leaf Xen 4.17 gives guests.
const MAX_BASIC: u32 = 0xd;
/// The highest extended leaf Xen 4.17 gives guests.
const MAX_EXTD: u32 = 0x8000_0021;
/// Highest leaf-7 subleaf.
const MAX_FEAT_SUBLEAF: u32 = 2;

/// XCR0 components a PV guest may use: x87, SSE, and AVX / AVX-512 when
/// those features are offered (MPX and PKRU are not offered to PV).
fn allowed_xstates(f1c: u32, f7b0: u32) -> u64 {
    let mut x = xcr0::X87 | xcr0::SSE;
    if f1c & F1C_AVX != 0 {
        x |= xcr0::YMM;
    }
    if f7b0 & F7B0_AVX512F != 0 {
        x |= xcr0::AVX512;
    }
    x
}

/// The XCR0 components the PV policy offers on this host (leaf 0xd
/// subleaf 0, `edx:eax`): what a guest's `xsetbv` may enable, and what hv
/// enables for itself so that it can save and restore them. 0 without
/// XSAVE.
pub fn xcr0_max(host: HostCpuid<'_>) -> u64 {
    let (f1c, f7b0) = policy_features(host);
    if f1c & F1C_XSAVE == 0 || host(0, 0)[0] < 0xd {
        return 0;
    }
    let [ha, _, _, hd] = host(0xd, 0);
    (u64::from(ha) | (u64::from(hd) << 32)) & allowed_xstates(f1c, f7b0)
}

fn is_intel(host: HostCpuid<'_>) -> bool {
    let [_, b, c, d] = host(0, 0);
    (b, d, c) == (0x756e_6547, 0x4965_6e69, 0x6c65_746e)
}

/// The PV guest's CPUID answer for `(leaf, subleaf)`.
pub fn pv_cpuid(leaf: u32, subleaf: u32, host: HostCpuid<'_>, ctx: &Context) -> [u32; 4] {
    match leaf {
        0..=MAX_BASIC => basic(leaf, subleaf, host, ctx),
        0x4000_0000..=0x4000_01ff => xen_leaf(leaf, subleaf, ctx),
        0x8000_0000..=MAX_EXTD => extended(leaf, host, ctx),
        _ => [0; 4],
    }
}

/// The guest's leaf 1 ecx/edx and leaf 7.0 ebx after the policy (used for
/// the xstate leaf).
fn policy_features(host: HostCpuid<'_>) -> (u32, u32) {
    let [_, _, c1, _] = host(1, 0);
    let max = host(0, 0)[0];
    let b7 = if max >= 7 { host(7, 0)[1] & W5_7B0 } else { 0 };
    (c1 & W1_1C, b7)
}

fn basic(leaf: u32, subleaf: u32, host: HostCpuid<'_>, ctx: &Context) -> [u32; 4] {
    let host_max = host(0, 0)[0];
    if leaf > host_max.min(MAX_BASIC) {
        return [0; 4];
    }
    let [a, b, c, d] = host(leaf, subleaf);
    match leaf {
        0 => [host_max.min(MAX_BASIC), b, c, d],
        1 => {
            let mut c = (c & W1_1C) | F1C_HYPERVISOR;
            let mut d = d & W0_1D;
            if ctx.guest_cr4 & CR4_OSXSAVE != 0
                || (c & F1C_XSAVE != 0 && ctx.forced && ctx.kernel_mode && ctx.host_osxsave)
            {
                c |= F1C_OSXSAVE;
            }
            if !is_intel(host) {
                // No SYSENTER in long mode outside Intel: Xen drops SEP.
                d &= !F1D_SEP;
            }
            if ctx.hardware_domain && ctx.kernel_mode {
                let [_, _, hc, hd] = host(1, 0);
                if hc & F1C_MONITOR != 0 && !ctx.forced {
                    c |= F1C_MONITOR;
                }
                c |= hc & F1C_EIST;
                d |= hd & F1D_MTRR;
            }
            [a & 0x0fff_0fff, b & 0x00ff_ffff, c, d]
        }
        5 => {
            let [_, _, hc, _] = host(1, 0);
            if ctx.hardware_domain && ctx.kernel_mode && !ctx.forced && hc & F1C_MONITOR != 0 {
                [a, b, c, d]
            } else {
                [0; 4]
            }
        }
        6 | 8 | 0xa | 0xb | 0xc => [0; 4],
        7 => match subleaf {
            0 => {
                let mut c = c & W6_7C0;
                if ctx.guest_cr4 & CR4_PKE != 0 {
                    c |= F7C0_OSPKE;
                }
                [
                    a.min(MAX_FEAT_SUBLEAF),
                    b & W5_7B0,
                    c,
                    d & W9_7D0 & !W9_SPEC_CTRL,
                ]
            }
            1 => [a & W10_7A1, 0, 0, 0],
            2 => [0, 0, 0, d & W13_7D2],
            _ => [0; 4],
        },
        0xd => xstate(subleaf, host, ctx),
        _ => [a, b, c, d],
    }
}

fn xstate(subleaf: u32, host: HostCpuid<'_>, ctx: &Context) -> [u32; 4] {
    let xstates = xcr0_max(host);
    if xstates == 0 {
        return [0; 4];
    }
    // The vCPU's XCR0 is within the policy (hv's `xsetbv` checks it).
    let xcr0 = ctx.xcr0 & xstates;
    match subleaf {
        0 => {
            // ebx: size for the vCPU's XCR0 (x87|SSE until its first
            // `xsetbv`); ecx: size for every component the policy allows.
            let lo = (xstates & 0xffff_ffff) as u32;
            let hi = (xstates >> 32) as u32;
            [
                lo,
                xcr0::area_size(xcr0, host),
                xcr0::area_size(xstates, host),
                hi,
            ]
        }
        1 => {
            let [a, _, _, _] = host(0xd, 1);
            let a = a & W4_XSAVE;
            // XSAVEC's compacted size for the vCPU's XCR0 and no XSS.
            let b = if a & 2 != 0 {
                xcr0::compacted_size(xcr0, host)
            } else {
                0
            };
            [a, b, 0, 0]
        }
        2..=62 if xstates & (1 << subleaf) != 0 => host(0xd, subleaf),
        _ => [0; 4],
    }
}

fn extended(leaf: u32, host: HostCpuid<'_>, ctx: &Context) -> [u32; 4] {
    let host_max = host(0x8000_0000, 0)[0];
    let intel = is_intel(host);
    let max = host_max.min(if intel { 0x8000_0008 } else { MAX_EXTD });
    if leaf > max {
        return [0; 4];
    }
    let [a, b, c, d] = host(leaf, 0);
    match leaf {
        0x8000_0000 if intel => [max, 0, 0, 0],
        0x8000_0000 => [max, b, c, d],
        0x8000_0001 => {
            let mut d = d & W2_E1D & !COMMON_1D;
            if !intel {
                d |= basic(1, 0, host, ctx)[3] & COMMON_1D;
            }
            let (a, b) = if intel { (0, 0) } else { (a, b) };
            [a, b, c & W3_E1C, d]
        }
        0x8000_0002..=0x8000_0004 => [a, b, c, d],
        0x8000_0005 if intel => [0; 4],
        0x8000_0005 => [a, b, c, d],
        0x8000_0006 if intel => [0, 0, c, 0],
        0x8000_0006 => [a, b, c, d],
        // Only the feature word (ITSC and friends, none of them default).
        0x8000_0007 => [0; 4],
        0x8000_0008 if intel => [a & 0xffff, b & W8_E8B & !W8_SPEC_CTRL, 0, 0],
        0x8000_0008 => [a, b & W8_E8B & !W8_SPEC_CTRL, c, 0],
        0x8000_0021 => [a & W11_E21A, 0, 0, 0],
        _ => [0; 4],
    }
}

fn xen_leaf(leaf: u32, subleaf: u32, ctx: &Context) -> [u32; 4] {
    let idx = leaf - XEN_LEAF_BASE;
    if idx > XEN_MAX_LEAF_INDEX {
        return [0; 4];
    }
    match idx {
        0 => [
            XEN_LEAF_BASE + XEN_MAX_LEAF_INDEX,
            0x566e_6558, // "XenV"
            0x6558_4d4d, // "MMXe"
            0x4d4d_566e, // "nVMM"
        ],
        1 => [XEN_VERSION, 0, 0, 0],
        2 => [1, XEN_LEAF_BASE, XEN_FEAT1_MMU_PT_UPDATE_PRESERVE_AD, 0],
        3 => match subleaf {
            // Native TSC (no vtsc) and RDTSCP if the host has it; tsc_mode
            // 0; the domain's TSC kHz reads 0 for dom0 on Xen, and the
            // incarnation 0. The "TSC is safe" bit is not claimed.
            0 => [if ctx.host_rdtscp { 4 } else { 0 }, 0, 0, 0],
            2 => [ctx.tsc_khz, 0, 0, 0],
            _ => [0; 4],
        },
        5 if subleaf == 0 => [0, ctx.machine_address_bits, 0, 0],
        _ => [0; 4],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small Intel-like CPU: max basic leaf 0x16, VMX, MONITOR, PCID,
    /// x2APIC, XSAVE, AVX; leaf 7 with FSGSBASE, SMEP, INVPCID.
    fn intel(leaf: u32, sub: u32) -> [u32; 4] {
        match (leaf, sub) {
            (0, _) => [0x16, 0x756e_6547, 0x6c65_746e, 0x4965_6e69],
            (1, _) => [0x000a_0655, 0x0310_0800, 0x7ffa_fbff, 0xbfeb_fbff],
            (5, _) => [0x40, 0x40, 3, 0x1120],
            (6, _) => [0x77, 2, 9, 0],
            (7, 0) => [0, (1 << 0) | (1 << 7) | (1 << 10) | (1 << 5), 0, 0],
            (0xd, 0) => [0x7, 0x340, 0x340, 0],
            (0xd, 1) => [0xf, 0, 0, 0],
            (0xd, 2) => [256, 576, 0, 0],
            (0x8000_0000, _) => [0x8000_0008, 0, 0, 0],
            (0x8000_0001, _) => [0, 0, 0x121, 0x2c10_0800],
            (0x8000_0008, _) => [0x3027, 0, 0, 0],
            _ => [0; 4],
        }
    }

    fn ctx() -> Context {
        Context {
            hardware_domain: true,
            kernel_mode: true,
            forced: true,
            guest_cr4: 0,
            host_osxsave: false,
            tsc_khz: 2_000_000,
            host_rdtscp: true,
            machine_address_bits: 29,
            xcr0: xcr0::PV_INITIAL,
        }
    }

    #[test]
    fn xen_leaves() {
        let c = ctx();
        let sig = pv_cpuid(0x4000_0000, 0, &intel, &c);
        assert_eq!(sig[0], 0x4000_0005);
        let mut name = [0u8; 12];
        name[..4].copy_from_slice(&sig[1].to_le_bytes());
        name[4..8].copy_from_slice(&sig[2].to_le_bytes());
        name[8..].copy_from_slice(&sig[3].to_le_bytes());
        assert_eq!(&name, b"XenVMMXenVMM");
        assert_eq!(pv_cpuid(0x4000_0001, 0, &intel, &c), [0x4_0011, 0, 0, 0]);
        assert_eq!(pv_cpuid(0x4000_0002, 0, &intel, &c), [1, 0x4000_0000, 1, 0]);
        assert_eq!(pv_cpuid(0x4000_0004, 0, &intel, &c), [0; 4]);
        assert_eq!(pv_cpuid(0x4000_0005, 0, &intel, &c), [0, 29, 0, 0]);
        assert_eq!(pv_cpuid(0x4000_0006, 0, &intel, &c), [0; 4]);
        assert_eq!(pv_cpuid(0x4000_0100, 0, &intel, &c), [0; 4]);
    }

    #[test]
    fn leaf1_policy() {
        let c = ctx();
        let [a, b, ecx, edx] = pv_cpuid(1, 0, &intel, &c);
        assert_eq!(a, 0x000a_0655 & 0x0fff_0fff);
        assert_eq!(b >> 24, 0, "APIC id hidden");
        assert_ne!(ecx & F1C_HYPERVISOR, 0);
        assert_eq!(ecx & (1 << 5), 0, "VMX hidden");
        assert_eq!(ecx & F1C_MONITOR, 0, "MONITOR hidden on the forced path");
        assert_eq!(ecx & (1 << 17), 0, "PCID hidden");
        assert_eq!(ecx & (1 << 21), 0, "x2APIC hidden");
        assert_eq!(ecx & F1C_OSXSAVE, 0);
        assert_ne!(ecx & F1C_XSAVE, 0);
        assert_ne!(
            ecx & F1C_EIST,
            0,
            "EIST leaks to the hardware domain's kernel"
        );
        assert_ne!(
            edx & F1D_MTRR,
            0,
            "MTRR leaks to the hardware domain's kernel"
        );
        assert_eq!(edx & (1 << 3), 0, "PSE hidden");
        assert_eq!(edx & (1 << 13), 0, "PGE hidden");
        // A domU, or guest user mode, sees neither leak.
        let user = Context {
            kernel_mode: false,
            ..c
        };
        let [_, _, ecx, edx] = pv_cpuid(1, 0, &intel, &user);
        assert_eq!(ecx & F1C_EIST, 0);
        assert_eq!(edx & F1D_MTRR, 0);
        // A faulted cpuid in the hardware domain's kernel sees MONITOR.
        let faulted = Context { forced: false, ..c };
        assert_ne!(pv_cpuid(1, 0, &intel, &faulted)[2] & F1C_MONITOR, 0);
        assert_eq!(pv_cpuid(5, 0, &intel, &c), [0; 4]);
        assert_eq!(pv_cpuid(5, 0, &intel, &faulted), intel(5, 0));
        // OSXSAVE follows the guest's CR4, or hv's on the forced path.
        let osx = Context {
            guest_cr4: CR4_OSXSAVE,
            ..c
        };
        assert_ne!(pv_cpuid(1, 0, &intel, &osx)[2] & F1C_OSXSAVE, 0);
        let host = Context {
            host_osxsave: true,
            ..c
        };
        assert_ne!(pv_cpuid(1, 0, &intel, &host)[2] & F1C_OSXSAVE, 0);
    }

    #[test]
    fn clamps_and_empties() {
        let c = ctx();
        assert_eq!(pv_cpuid(0, 0, &intel, &c)[0], 0xd);
        assert_eq!(pv_cpuid(0xe, 0, &intel, &c), [0; 4]);
        assert_eq!(pv_cpuid(6, 0, &intel, &c), [0; 4]);
        let [a, b, _, _] = pv_cpuid(7, 0, &intel, &c);
        assert_eq!(a, 0);
        assert_eq!(
            b,
            (1 << 0) | (1 << 5),
            "FSGSBASE, AVX2 stay; SMEP, INVPCID go"
        );
        assert_eq!(pv_cpuid(0x8000_0000, 0, &intel, &c), [0x8000_0008, 0, 0, 0]);
        assert_eq!(pv_cpuid(0x8000_0009, 0, &intel, &c), [0; 4]);
        let [_, _, _, e1d] = pv_cpuid(0x8000_0001, 0, &intel, &c);
        assert_ne!(e1d & (1 << 29), 0, "LM");
        assert_eq!(e1d & (1 << 26), 0, "1GB pages hidden");
        assert_eq!(pv_cpuid(0x5000_0000, 0, &intel, &c), [0; 4]);
    }

    #[test]
    fn xstate_leaf() {
        let c = ctx();
        assert_eq!(pv_cpuid(0xd, 0, &intel, &c), [0x7, 576, 832, 0]);
        // ebx follows the vCPU's XCR0, as on Xen (576 -> 832 after
        // `xsetbv(0, 7)` under QEMU `-cpu max`).
        let avx = Context { xcr0: 7, ..c };
        assert_eq!(pv_cpuid(0xd, 0, &intel, &avx), [0x7, 832, 832, 0]);
        assert_eq!(pv_cpuid(0xd, 1, &intel, &avx), [0x7, 832, 0, 0]);
        assert_eq!(xcr0_max(&intel), 7);
        assert_eq!(pv_cpuid(0xd, 1, &intel, &c), [0x7, 576, 0, 0]);
        assert_eq!(pv_cpuid(0xd, 2, &intel, &c), [256, 576, 0, 0]);
        assert_eq!(pv_cpuid(0xd, 3, &intel, &c), [0; 4]);
    }
}
