//! `cpuid` as a PV guest kernel can issue it: plain (the CPU answers, as
//! neither Xen nor hv fault it here) or through Xen's forced-emulation
//! prefix (`ud2; .ascii "xen"; cpuid`, answered by the hypervisor's PV
//! CPUID policy).

use core::arch::asm;

/// `cpuid` through Xen's forced-emulation prefix, with all 64 bits of
/// rax/rcx as given (the hypervisor must look at the low halves only).
pub fn forced(leaf: u64, subleaf: u64) -> [u64; 4] {
    let (a, b, c, d): (u64, u64, u64, u64);
    // SAFETY: the prefix traps to the hypervisor, which emulates cpuid and
    // skips the 7 bytes; rbx is saved and restored around it.
    unsafe {
        asm!(
            "mov {t}, rbx",
            "ud2",
            ".ascii \"xen\"",
            "cpuid",
            "xchg {t}, rbx",
            t = out(reg) b,
            inout("rax") leaf => a,
            inout("rcx") subleaf => c,
            out("rdx") d,
            options(nostack),
        );
    }
    [a, b, c, d]
}

/// The plain `cpuid` instruction.
pub fn native(leaf: u32, subleaf: u32) -> [u32; 4] {
    let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
    [r.eax, r.ebx, r.ecx, r.edx]
}
