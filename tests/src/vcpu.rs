//! Contexts for the secondary vCPUs a guest brings up (`VCPUOP_initialise`).

use guest_abi::arch::{pfn_to_cr3, FLAT_KERNEL_CS, FLAT_KERNEL_SS64, VGCF_IN_KERNEL};
use guest_abi::hypercall::{hypercall3, sched_op_yield, VCPU_OP};
use guest_abi::vcpu::{VCPUOP_INITIALISE, VCPUOP_UP};
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

/// Brings up vCPU `id` (`VCPUOP_initialise`, then `VCPUOP_up`) running
/// `entry(id)` in guest kernel mode on the stack below `stack_top`, under
/// the page table `l4_mfn`. Returns the first failing call's result, or 0.
pub fn start(id: u32, entry: extern "C" fn(u64) -> !, stack_top: u64, l4_mfn: u64) -> i64 {
    // One slot below the top, as after a call: the ABI's alignment at entry.
    let mut c = kernel_context(entry as usize as u64, stack_top - 8, l4_mfn);
    c.user_regs.rdi = u64::from(id);
    let op = |cmd: u32, arg: u64| {
        // SAFETY: `arg` is null or the context above, which names this
        // guest's own code, a stack the caller set aside and its page table.
        unsafe { hypercall3(VCPU_OP, u64::from(cmd), u64::from(id), arg) }
    };
    match op(VCPUOP_INITIALISE, core::ptr::from_ref(&c) as u64) {
        0 => op(VCPUOP_UP, 0),
        rc => rc,
    }
}

/// Spins until `ready()` holds, yielding the CPU now and then in case the
/// vCPU that makes it hold shares this one's physical CPU; false if it
/// never did within `spins` checks.
pub fn wait_until(spins: u64, ready: impl Fn() -> bool) -> bool {
    for i in 0..spins {
        if ready() {
            return true;
        }
        if i % 4096 == 4095 {
            sched_op_yield();
        }
        core::hint::spin_loop();
    }
    ready()
}
