//! Copying to and from guest virtual memory through the guest's own page
//! tables, the way Xen does: `rep movsq`/`rep movsb` under STAC/CLAC, with the
//! faulting instruction listed so that the #PF handler resumes at a fixup
//! label instead of treating the fault as an hv bug.
//!
//! Only addresses a guest may own reach this code: the caller
//! (`guest_mem`) refuses non-canonical ranges and anything touching the
//! hypervisor's slots, and every guest mapping is user-accessible (the
//! page-table rules force the user bit), so supervisor access here grants
//! nothing the guest kernel lacks. CR0.WP makes read-only guest pages fault
//! on write, as they would for the guest.

use core::arch::global_asm;
use core::sync::atomic::{AtomicBool, Ordering};

/// Whether SMAP is on (then STAC/CLAC exist and are needed).
static SMAP: AtomicBool = AtomicBool::new(false);

pub fn set_smap(on: bool) {
    SMAP.store(on, Ordering::Relaxed);
}

global_asm!(
    r#"
    .section .text.hv_uaccess, "ax"
    .balign 16
    .global hv_uaccess_start
hv_uaccess_start:
    /* rdi = destination, rsi = source, rdx = length, rcx = smap flag */
hv_uaccess_copy:
    test %ecx, %ecx
    jz 1f
    stac
1:
    /* Quadwords first, then the bytes left: under QEMU each iteration of a
       string instruction counts as one instruction. */
    mov %rdx, %rcx
    shr $3, %rcx
    and $7, %edx
    .global hv_uaccess_insn
hv_uaccess_insn:
    rep movsq
    mov %rdx, %rcx
    rep movsb
    .global hv_uaccess_end
hv_uaccess_end:
    xor %eax, %eax
    jmp 2f
    .global hv_uaccess_fixup
hv_uaccess_fixup:
    mov $1, %eax
2:
    test %r8d, %r8d
    jz 3f
    clac
3:
    ret
"#,
    options(att_syntax)
);

unsafe extern "C" {
    static hv_uaccess_insn: u8;
    static hv_uaccess_end: u8;
    static hv_uaccess_fixup: u8;
}

/// Where the #PF handler resumes if `rip` is one of the copy instructions
/// (from the `rep movsq` up to and including the `rep movsb`).
pub fn fixup_for(rip: u64) -> Option<u64> {
    let insn = core::ptr::addr_of!(hv_uaccess_insn) as u64;
    let end = core::ptr::addr_of!(hv_uaccess_end) as u64;
    let fixup = core::ptr::addr_of!(hv_uaccess_fixup) as u64;
    (insn..end).contains(&rip).then_some(fixup)
}

/// A fault during the copy (the guest address was not accessible).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault;

fn copy(dst: *mut u8, src: *const u8, len: usize) -> Result<(), Fault> {
    let smap = u64::from(SMAP.load(Ordering::Relaxed));
    let failed: u64;
    // SAFETY: (1) one side is hv memory the caller owns (a slice), the
    // other a guest address the caller checked to be canonical and outside
    // hv's range, so the copy can only touch that buffer and guest memory;
    // (2) a fault at the `rep movsb` is resumed at the fixup label by the
    // #PF handler (`fixup_for`), which reports it here; (3) rcx/rdi/rsi and
    // the flags are declared clobbered, and AC is cleared again.
    unsafe {
        core::arch::asm!(
            "call hv_uaccess_start",
            inout("rdi") dst => _,
            inout("rsi") src => _,
            inout("rdx") len => _,
            inout("rcx") smap => _,
            in("r8") smap,
            lateout("rax") failed,
        );
    }
    if failed == 0 {
        Ok(())
    } else {
        Err(Fault)
    }
}

/// Copies `out.len()` bytes from guest address `va` (already range-checked).
pub fn read_guest(va: u64, out: &mut [u8]) -> Result<(), Fault> {
    copy(out.as_mut_ptr(), va as *const u8, out.len())
}

/// Copies `data` to guest address `va` (already range-checked).
pub fn write_guest(va: u64, data: &[u8]) -> Result<(), Fault> {
    copy(va as *mut u8, data.as_ptr(), data.len())
}
