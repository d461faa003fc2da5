//! The virtual machine-check MSRs a PV guest kernel sees, as Xen 4.17's
//! vMCE presents them (Linux's `mcheck_cpu_init` reads `MCG_CAP` and
//! `MCG_STATUS` at boot and panics on a #GP):
//!
//! - `MCG_CAP` (0x179): 2 banks (Xen's `GUEST_MC_BANK_NUM`), and on Intel
//!   SER_P, TES_P and CMCI_P; never MCG_CTL_P nor LMCE_P. Writes are
//!   ignored.
//! - `MCG_STATUS` (0x17a): 0 at start; holds whatever the guest writes.
//! - `MCG_CTL` (0x17b): reads 0 (no MCG_CTL_P), writes ignored.
//! - Banks 0 and 1 (0x400 + 4 * bank): `MCi_CTL` reads all ones and
//!   ignores writes; `MCi_STATUS`/`ADDR`/`MISC` read 0 and take a write
//!   of 0 only (anything else is #GP).
//! - Banks 2 to 31 (up to 0x47f) and, on AMD, `MCi_CTL2` (0x280-0x29f):
//!   read 0, writes ignored, whatever the value.
//! - `MCG_EXT_CTL` (0x4d0): #GP (no LMCE); 0x480, past the bank range:
//!   #GP. The Pentium MSRs `P5_MC_ADDR`/`P5_MC_TYPE` (0, 1) read 0 and
//!   refuse writes (#GP); AMD's `MC4_MISC1` (0xc0000408) is #GP.
//!
//! The oracle is AMD (QEMU TCG's `-cpu max` says AuthenticAMD); the
//! Intel-only checks (`MCi_CTL2`) are taken from Xen's source and run only
//! there.
#![no_std]
#![no_main]

use core::arch::global_asm;

use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use tests::check;
use tests::fixup::{self, catch, Fault};

guest_abi::pv_guest!(main, name = "vmce");

const MCG_CAP: u32 = 0x179;
const MCG_STATUS: u32 = 0x17a;
const MCG_CTL: u32 = 0x17b;
const MC0_CTL2: u32 = 0x280;
const MC0_CTL: u32 = 0x400;
const MCG_EXT_CTL: u32 = 0x4d0;

/// MCG_CAP on Intel: SER_P (24), TES_P (11), CMCI_P (10), 2 banks.
const INTEL_MCG_CAP: u64 = (1 << 24) | (1 << 11) | (1 << 10) | 2;
const AMD_MCG_CAP: u64 = 2;

global_asm!(
    r#"
    .pushsection .text.vmce, "ax"
    .globl vmce_rdmsr
vmce_rdmsr:
    mov ecx, edi
    rdmsr
    shl rdx, 32
    mov eax, eax
    or rax, rdx
    ret
    .globl vmce_wrmsr
vmce_wrmsr:
    mov ecx, edi
    mov rax, rsi
    mov rdx, rsi
    shr rdx, 32
    wrmsr
    xor eax, eax
    ret
    .popsection
"#
);

// SAFETY: both are assembly routines above following the C ABI, usable as
// `fixup::catch` bodies.
unsafe extern "C" {
    fn vmce_rdmsr(msr: u64, _: u64, _: u64, _: u64) -> u64;
    fn vmce_wrmsr(msr: u64, v: u64, _: u64, _: u64) -> u64;
}

/// A fault as a negative number: minus the vector when the error code is
/// 0 (so #GP(0) is -13), else minus (vector << 16 | error code).
fn fault(f: Fault) -> i64 {
    let code = if f.error_code == 0 {
        f.vector
    } else {
        (f.vector << 16) | (f.error_code & 0xffff)
    };
    -code.cast_signed()
}

/// The value read, or the fault.
fn rd(msr: u32) -> Result<u64, i64> {
    // SAFETY: `rdmsr` changes nothing but rax/rdx, or faults (#GP, caught).
    unsafe { catch(vmce_rdmsr, [u64::from(msr), 0, 0, 0]) }.map_err(fault)
}

/// The write taken (`Ok(0)`), or the fault.
fn wr(msr: u32, v: u64) -> Result<u64, i64> {
    // SAFETY: the machine-check MSRs are virtual; a refused write is a
    // #GP, caught.
    unsafe { catch(vmce_wrmsr, [u64::from(msr), v, 0, 0]) }.map_err(fault)
}

/// #GP(0).
const GP: Result<u64, i64> = Err(-13);
/// A write taken.
const TAKEN: Result<u64, i64> = Ok(0);

fn is_intel() -> bool {
    matches!(
        tests::cpuid::native(0, 0),
        [_, 0x756e_6547, 0x6c65_746e, 0x4965_6e69]
    )
}

fn main(_si: StartInfoRef) -> ! {
    let mut r = Report::new("vmce");
    if !check!(r, "trap table with the #GP catcher", fixup::install() => 0) {
        r.finish()
    }
    let intel = is_intel();
    let cap = if intel { INTEL_MCG_CAP } else { AMD_MCG_CAP };

    // The global registers.
    check!(r, "rdmsr MCG_CAP", rd(MCG_CAP) => Ok(cap));
    check!(r, "wrmsr MCG_CAP 0xff: ignored", wr(MCG_CAP, 0xff) => TAKEN);
    check!(r, "MCG_CAP after the write", rd(MCG_CAP) => Ok(cap));
    check!(r, "rdmsr MCG_STATUS", rd(MCG_STATUS) => Ok(0));
    check!(r, "wrmsr MCG_STATUS 0x5", wr(MCG_STATUS, 0x5) => TAKEN);
    check!(r, "MCG_STATUS reads back 0x5", rd(MCG_STATUS) => Ok(0x5));
    check!(r, "wrmsr MCG_STATUS all ones", wr(MCG_STATUS, u64::MAX) => TAKEN);
    check!(r, "MCG_STATUS reads back all ones", rd(MCG_STATUS) => Ok(u64::MAX));
    check!(r, "wrmsr MCG_STATUS 0", wr(MCG_STATUS, 0) => TAKEN);
    check!(r, "MCG_STATUS reads back 0", rd(MCG_STATUS) => Ok(0));
    check!(r, "rdmsr MCG_CTL (no MCG_CTL_P)", rd(MCG_CTL) => Ok(0));
    check!(r, "wrmsr MCG_CTL all ones: ignored", wr(MCG_CTL, u64::MAX) => TAKEN);
    check!(r, "MCG_CTL after the write", rd(MCG_CTL) => Ok(0));
    check!(r, "rdmsr MCG_EXT_CTL (no LMCE): #GP", rd(MCG_EXT_CTL) => GP);
    check!(r, "wrmsr MCG_EXT_CTL 0: #GP", wr(MCG_EXT_CTL, 0) => GP);

    // The guest's two banks.
    for bank in 0..2u32 {
        let ctl = MC0_CTL + 4 * bank;
        check!(r, format_args!("rdmsr MC{bank}_CTL: all ones"), rd(ctl) => Ok(u64::MAX));
        check!(r, format_args!("wrmsr MC{bank}_CTL 0: ignored"), wr(ctl, 0) => TAKEN);
        check!(r, format_args!("MC{bank}_CTL after the write"), rd(ctl) => Ok(u64::MAX));
        for (off, name) in [(1, "STATUS"), (2, "ADDR"), (3, "MISC")] {
            let msr = ctl + off;
            check!(r, format_args!("rdmsr MC{bank}_{name}"), rd(msr) => Ok(0));
            check!(r, format_args!("wrmsr MC{bank}_{name} 0"), wr(msr, 0) => TAKEN);
            check!(r, format_args!("wrmsr MC{bank}_{name} 1: #GP"), wr(msr, 1) => GP);
            check!(r, format_args!("wrmsr MC{bank}_{name} bit 63: #GP"), wr(msr, 1 << 63) => GP);
            check!(r, format_args!("MC{bank}_{name} still 0"), rd(msr) => Ok(0));
        }
    }

    // Banks past the guest's last, up to the end of the range.
    for bank in [2u32, 3, 31] {
        let ctl = MC0_CTL + 4 * bank;
        for (off, name) in [(0, "CTL"), (1, "STATUS"), (2, "ADDR"), (3, "MISC")] {
            let msr = ctl + off;
            check!(r, format_args!("rdmsr MC{bank}_{name} (no such bank): 0"), rd(msr) => Ok(0));
            check!(r, format_args!("wrmsr MC{bank}_{name} 1 (no such bank): ignored"), wr(msr, 1) => TAKEN);
            check!(r, format_args!("MC{bank}_{name} still 0"), rd(msr) => Ok(0));
        }
    }
    check!(r, "rdmsr 0x480 (past the bank range): #GP", rd(0x480) => GP);
    check!(r, "wrmsr 0x480 0: #GP", wr(0x480, 0) => GP);
    check!(r, "rdmsr 0x3ff (before the bank range): #GP", rd(0x3ff) => GP);
    check!(r, "rdmsr 0x178 (before MCG_CAP): #GP", rd(0x178) => GP);

    // MCi_CTL2: Intel's CMCI control for the guest's banks; nothing on AMD.
    if intel {
        for bank in 0..2u32 {
            let msr = MC0_CTL2 + bank;
            check!(r, format_args!("rdmsr MC{bank}_CTL2"), rd(msr) => Ok(0));
        }
    } else {
        for bank in [0u32, 1, 2, 31] {
            let msr = MC0_CTL2 + bank;
            check!(r, format_args!("rdmsr MC{bank}_CTL2 (AMD): 0"), rd(msr) => Ok(0));
            check!(r, format_args!("wrmsr MC{bank}_CTL2 1 (AMD): ignored"), wr(msr, 1) => TAKEN);
            check!(r, format_args!("MC{bank}_CTL2 still 0"), rd(msr) => Ok(0));
        }
    }
    check!(r, "rdmsr 0x2a0 (past MCi_CTL2): #GP", rd(0x2a0) => GP);
    check!(r, "rdmsr P5_MC_ADDR (0)", rd(0) => Ok(0));
    check!(r, "rdmsr P5_MC_TYPE (1)", rd(1) => Ok(0));
    check!(r, "wrmsr P5_MC_ADDR 0: #GP", wr(0, 0) => GP);
    check!(r, "wrmsr P5_MC_TYPE 0: #GP", wr(1, 0) => GP);
    check!(r, "rdmsr AMD MC4_MISC1 (0xc0000408): #GP", rd(0xc000_0408) => GP);
    check!(r, "wrmsr AMD MC4_MISC1 0: #GP", wr(0xc000_0408, 0) => GP);
    r.finish()
}
