//! Contexts for the secondary vCPUs a guest brings up (`VCPUOP_initialise`).

use guest_abi::arch::{pfn_to_cr3, FLAT_KERNEL_CS, FLAT_KERNEL_SS64, VGCF_IN_KERNEL};
use guest_abi::xen::VcpuGuestContext;

/// A context starting in guest kernel mode at `rip` with the stack
/// pointer `rsp` (also the kernel stack), flat kernel selectors, events
/// as Xen sets them (IF) and page table `l4_mfn`; the rest zero.
pub fn kernel_context(rip: u64, rsp: u64, l4_mfn: u64) -> VcpuGuestContext {
    let mut c = VcpuGuestContext::zeroed();
    c.flags = VGCF_IN_KERNEL;
    c.user_regs.rip = rip;
    c.user_regs.rsp = rsp;
    c.user_regs.cs = FLAT_KERNEL_CS;
    c.user_regs.ss = FLAT_KERNEL_SS64;
    c.user_regs.rflags = 0x202;
    c.kernel_ss = u64::from(FLAT_KERNEL_SS64);
    c.kernel_sp = rsp;
    c.ctrlreg[3] = pfn_to_cr3(l4_mfn);
    c
}
