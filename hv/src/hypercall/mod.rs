//! The hypercall dispatcher: one table from hypercall number to handler.
//!
//! Arguments arrive in rdi, rsi, rdx, r10, r8 (Xen's x86_64 convention) and
//! the result goes back in rax; every other guest register is preserved (the
//! entry path saved them all). Handlers take the argument widths Xen's
//! prototypes declare: where Xen takes an `int`/`unsigned int`, the upper 32
//! bits of the register are ignored, as on Xen. Every number without a
//! handler, and every number ≥ 64, returns `-ENOSYS`.

mod console_io;
mod sched_op;
mod vm_assist;
mod xen_version;

use core::sync::atomic::{AtomicU64, Ordering};

use guest_abi::errno;
use guest_abi::hypercall as nr;

use crate::arch::x86_64::entry::GuestRegs;

/// A handler's result: a value for rax, or a negative Xen errno.
pub type HcResult = Result<u64, i64>;

/// A preemptible handler's request to be called again with new first
/// arguments (Xen's hypercall continuation): the guest's `rip` is moved back
/// onto its `syscall` and `rax` keeps the hypercall number, so the call
/// resumes after hv has had the chance to take interrupts.
#[derive(Default)]
pub struct Continuation {
    args: Option<[u64; 3]>,
}

impl Continuation {
    pub fn resume(&mut self, args: [u64; 3]) {
        self.args = Some(args);
    }
}

/// Length of the `syscall` instruction.
const SYSCALL_LEN: u64 = 2;

/// Low 32 bits of an argument register, for handlers whose Xen prototype
/// takes an `int` or `unsigned int`.
pub fn arg32(reg: u64) -> u32 {
    (reg & 0xffff_ffff) as u32
}

/// Entry from `syscall` in guest kernel mode.
pub fn dispatch(regs: &mut GuestRegs) {
    let (a1, a2, a3) = (regs.rdi, regs.rsi, regs.rdx);
    let mut cont = Continuation::default();
    let result = match regs.rax {
        nr::CONSOLE_IO => console_io::console_io(arg32(a1), arg32(a2), a3, &mut cont),
        nr::XEN_VERSION => xen_version::xen_version(arg32(a1), a2),
        nr::SCHED_OP => sched_op::sched_op(arg32(a1), a2),
        nr::SCHED_OP_COMPAT => sched_op::sched_op_compat(arg32(a1), a2),
        nr::VM_ASSIST => vm_assist::vm_assist(arg32(a1), arg32(a2)),
        _ => Err(-errno::ENOSYS),
    };
    if let Some([c1, c2, c3]) = cont.args {
        CONTINUATIONS.fetch_add(1, Ordering::Relaxed);
        regs.rdi = c1;
        regs.rsi = c2;
        regs.rdx = c3;
        regs.rip = regs.rip.wrapping_sub(SYSCALL_LEN);
        return;
    }
    regs.rax = match result {
        Ok(v) => v,
        Err(e) => e.cast_unsigned(),
    };
}

/// Hypercalls preempted and resumed so far (for the log and benchmarks).
static CONTINUATIONS: AtomicU64 = AtomicU64::new(0);

/// Copies a plain value's bytes from the current guest.
pub fn copy_in(va: u64, out: &mut [u8]) -> Result<(), i64> {
    let cr3 = crate::domain::with_current(|d| d.vcpu.cr3);
    crate::guest_mem::copy_from_guest(cr3, va, out).map_err(|_| -errno::EFAULT)
}

/// Copies bytes to the current guest (all or nothing).
pub fn copy_out(va: u64, data: &[u8]) -> Result<(), i64> {
    let cr3 = crate::domain::with_current(|d| d.vcpu.cr3);
    crate::guest_mem::copy_to_guest(cr3, va, data).map_err(|_| -errno::EFAULT)
}
