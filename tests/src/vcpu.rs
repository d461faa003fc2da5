//! Contexts for the secondary vCPUs a guest brings up (`VCPUOP_initialise`).

use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

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

/// Rounds run by vCPU 0 (the leader) with one other vCPU (the follower):
/// the leader publishes round `k` (numbered from 1, after storing what
/// the round needs), the follower picks it up and says it is ready, the
/// leader says go, the follower acts and says done. The follower waits
/// for go by spinning on memory only, without a hypercall, so that what
/// its CPU has cached (a TLB entry) stays until it acts.
pub struct Rounds {
    round: AtomicU64,
    ready: AtomicU64,
    go: AtomicU64,
    done: AtomicU64,
}

impl Rounds {
    pub const fn new() -> Self {
        Self {
            round: AtomicU64::new(0),
            ready: AtomicU64::new(0),
            go: AtomicU64::new(0),
            done: AtomicU64::new(0),
        }
    }

    /// Leader: publishes round `k` and waits (up to `spins`) until the
    /// follower is ready for it.
    pub fn publish(&self, k: u64, spins: u64) -> bool {
        self.round.store(k, SeqCst);
        wait_until(spins, || self.ready.load(SeqCst) == k)
    }

    /// Leader: starts round `k` and returns at once.
    pub fn go(&self, k: u64) {
        self.go.store(k, SeqCst);
    }

    /// Leader: waits (up to `spins`) until the follower is done with `k`.
    pub fn wait_done(&self, k: u64, spins: u64) -> bool {
        wait_until(spins, || self.done.load(SeqCst) == k)
    }

    /// Follower: waits for round `k` to be published.
    pub fn wait_round(&self, k: u64) {
        while self.round.load(SeqCst) < k {
            core::hint::spin_loop();
        }
    }

    /// Follower: says it is ready for round `k` and spins until go.
    pub fn ready_wait_go(&self, k: u64) {
        self.ready.store(k, SeqCst);
        while self.go.load(SeqCst) != k {
            core::hint::spin_loop();
        }
    }

    /// Follower: says it is done with round `k`.
    pub fn done(&self, k: u64) {
        self.done.store(k, SeqCst);
    }
}

impl Default for Rounds {
    fn default() -> Self {
        Self::new()
    }
}
