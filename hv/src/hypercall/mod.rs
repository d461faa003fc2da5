//! The hypercall dispatch table: one entry per hypercall number.
//!
//! Arguments arrive in rdi, rsi, rdx, r10, r8 (Xen's x86_64 convention) and
//! the result goes back in rax; every other guest register is preserved (the
//! entry path saved them all). Handlers take the argument widths Xen's
//! prototypes declare: where Xen takes an `int`/`unsigned int`, the upper 32
//! bits of the register are ignored, as on Xen. Every number without a
//! handler, and every number ≥ 64, returns `-ENOSYS`.
//!
//! Each handler file says which sub-operations it implements in a
//! `//! @implements: hypercall.sub_op ...` line; `cargo xtask
//! conformance-table` reads them and this table into the README.

mod callback;
mod console_io;
mod debugreg;
pub(crate) mod descriptors;
mod memory;
mod mmu;
mod multicall;
mod physdev;
mod sched_op;
mod segments;
pub mod traps;
mod vm_assist;
mod xen_version;

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

/// Makes the guest issue the same hypercall again when it resumes (Xen's
/// hypercall continuation): `rip` goes back onto its `syscall`, and `rax`
/// still holds the number; the caller has put the remaining work in the
/// argument registers.
pub fn reissue(regs: &mut GuestRegs) {
    regs.rip = regs.rip.wrapping_sub(SYSCALL_LEN);
}

/// Low 32 bits of an argument register, for handlers whose Xen prototype
/// takes an `int` or `unsigned int`.
pub fn arg32(reg: u64) -> u32 {
    (reg & 0xffff_ffff) as u32
}

/// A hypercall handler as the entry path calls it: registers in, result
/// written to `rax` (or the registers rewritten for a continuation).
pub type Handler = extern "C" fn(&mut GuestRegs);

/// Number of entries in the dispatch table (Xen's `NR_hypercalls`).
pub const TABLE_LEN: usize = 64;

/// The dispatch table, indexed by hypercall number. The `syscall` entry
/// path bounds-checks and clamps the number (so a mispredicted check cannot
/// index past the end) and calls the entry directly: no dispatcher in
/// between, which keeps a null hypercall short.
#[expect(
    clippy::cast_possible_truncation,
    reason = "hypercall numbers are below 64; const context has no try_from"
)]
pub static TABLE: [Handler; TABLE_LEN] = {
    let mut t: [Handler; TABLE_LEN] = [enosys; TABLE_LEN];
    t[nr::SCHED_OP_COMPAT as usize] = hc_sched_op_compat;
    t[nr::XEN_VERSION as usize] = hc_xen_version;
    t[nr::CONSOLE_IO as usize] = hc_console_io;
    t[nr::VM_ASSIST as usize] = hc_vm_assist;
    t[nr::SCHED_OP as usize] = hc_sched_op;
    t[nr::MMU_UPDATE as usize] = mmu::hc_mmu_update;
    t[nr::MULTICALL as usize] = multicall::hc_multicall;
    t[nr::MEMORY_OP as usize] = memory::hc_memory_op;
    t[nr::MMUEXT_OP as usize] = mmu::hc_mmuext_op;
    t[nr::UPDATE_VA_MAPPING as usize] = mmu::hc_update_va_mapping;
    t[nr::UPDATE_VA_MAPPING_OTHERDOMAIN as usize] = mmu::hc_update_va_mapping_otherdomain;
    t[nr::SET_TRAP_TABLE as usize] = traps::hc_set_trap_table;
    t[nr::STACK_SWITCH as usize] = traps::hc_stack_switch;
    t[nr::FPU_TASKSWITCH as usize] = traps::hc_fpu_taskswitch;
    t[nr::IRET as usize] = traps::hc_iret;
    t[nr::SET_CALLBACKS as usize] = callback::hc_set_callbacks;
    t[nr::CALLBACK_OP as usize] = callback::hc_callback_op;
    t[nr::NMI_OP as usize] = callback::hc_nmi_op;
    t[nr::SET_SEGMENT_BASE as usize] = segments::hc_set_segment_base;
    t[nr::SET_GDT as usize] = descriptors::hc_set_gdt;
    t[nr::UPDATE_DESCRIPTOR as usize] = descriptors::hc_update_descriptor;
    t[nr::SET_DEBUGREG as usize] = debugreg::hc_set_debugreg;
    t[nr::GET_DEBUGREG as usize] = debugreg::hc_get_debugreg;
    t[nr::PHYSDEV_OP as usize] = physdev::hc_physdev_op;
    t
};

fn finish(regs: &mut GuestRegs, result: HcResult) {
    regs.rax = match result {
        Ok(v) => v,
        Err(e) => e.cast_unsigned(),
    };
}

/// Every number without a handler, and (called by the entry path) every
/// number beyond the table.
pub extern "C" fn enosys(regs: &mut GuestRegs) {
    finish(regs, Err(-errno::ENOSYS));
}

extern "C" fn hc_xen_version(regs: &mut GuestRegs) {
    let r = xen_version::xen_version(arg32(regs.rdi), regs.rsi);
    finish(regs, r);
}

extern "C" fn hc_sched_op(regs: &mut GuestRegs) {
    let r = sched_op::sched_op(arg32(regs.rdi), regs.rsi);
    finish(regs, r);
}

extern "C" fn hc_sched_op_compat(regs: &mut GuestRegs) {
    let r = sched_op::sched_op_compat(arg32(regs.rdi), regs.rsi);
    finish(regs, r);
}

extern "C" fn hc_vm_assist(regs: &mut GuestRegs) {
    let r = vm_assist::vm_assist(arg32(regs.rdi), arg32(regs.rsi));
    finish(regs, r);
}

extern "C" fn hc_console_io(regs: &mut GuestRegs) {
    let mut cont = Continuation::default();
    let r = console_io::console_io(arg32(regs.rdi), arg32(regs.rsi), regs.rdx, &mut cont);
    if let Some([c1, c2, c3]) = cont.args {
        regs.rdi = c1;
        regs.rsi = c2;
        regs.rdx = c3;
        reissue(regs);
        return;
    }
    finish(regs, r);
}

/// `mov` to cr3 from the guest kernel, emulated as `MMUEXT_NEW_BASEPTR`
/// (Xen does the same); returns whether the switch happened.
pub fn new_baseptr_for_emulation(mfn: u64) -> bool {
    mmu::new_baseptr_current(mfn)
}

/// Copies the argument struct at `va` in from the calling guest (its page
/// tables are the loaded ones, so the CPU walks them); `-EFAULT` if it
/// cannot be read.
pub fn read_arg<T: crate::guest_mem::GuestValue>(va: u64) -> Result<T, i64> {
    use crate::guest_mem::{GuestPtr, Loaded};
    Ok(GuestPtr::<T>::new(va)?.read(&Loaded)?)
}

/// Copies a result struct out to `va` in the calling guest; `-EFAULT` if
/// it cannot be written (a fault part-way leaves the bytes before it
/// written, as on Xen).
pub fn write_arg<T: crate::guest_mem::GuestValue>(va: u64, v: &T) -> Result<(), i64> {
    use crate::guest_mem::{GuestPtr, Loaded};
    Ok(GuestPtr::<T>::new(va)?.write(&Loaded, v)?)
}
