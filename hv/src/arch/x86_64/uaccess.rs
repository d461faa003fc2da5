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
    .global hv_uaccess_copy
hv_uaccess_copy:
    /* rdi = destination, rsi = source, rcx = quadwords, rdx = bytes after
       them (under QEMU each iteration of a string instruction counts as
       one instruction). The smap flag is read here, so a caller sets up
       four registers and tests one. */
    cmpb $0, {smap}(%rip)
    je 1f
    stac
1:
    .global hv_uaccess_insn
hv_uaccess_insn:
    rep movsq
    mov %rdx, %rcx
    rep movsb
    .global hv_uaccess_end
hv_uaccess_end:
    xor %eax, %eax
2:
    cmpb $0, {smap}(%rip)
    je 3f
    clac
3:
    ret
    .global hv_uaccess_fixup
hv_uaccess_fixup:
    mov $1, %eax
    jmp 2b
"#,
    smap = sym SMAP,
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

/// Copies `words` quadwords and then `bytes` bytes from `src` to `dst`.
///
/// # Safety
/// One side is that much hv memory the caller owns, the other a guest
/// range the caller checked to be canonical and outside hv's range.
#[inline(always)]
unsafe fn copy(dst: *mut u8, src: *const u8, words: usize, bytes: usize) -> Result<(), Fault> {
    let failed: u32;
    // SAFETY: (1) by the caller's guarantee the copy touches only the hv
    // buffer and guest memory; (2) a fault at the `rep movsq` or `rep
    // movsb` resumes at the fixup label (`fixup_for`), which reports it
    // here; (3) the routine changes only rcx/rdx/rdi/rsi/rax and the flags,
    // declared here, and leaves AC clear.
    unsafe {
        core::arch::asm!(
            "call hv_uaccess_copy",
            inout("rdi") dst => _,
            inout("rsi") src => _,
            inout("rcx") words => _,
            inout("rdx") bytes => _,
            lateout("eax") failed,
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
    // SAFETY: `out` is hv memory of that length; the caller checked `va`.
    unsafe {
        copy(
            out.as_mut_ptr(),
            va as *const u8,
            out.len() / 8,
            out.len() % 8,
        )
    }
}

/// Copies one `T` from guest address `va` (already range-checked) straight
/// into the value returned, without filling it first.
#[inline(always)]
pub fn read_guest_value<T: zerocopy::FromBytes>(va: u64) -> Result<T, Fault> {
    let mut v = core::mem::MaybeUninit::<T>::uninit();
    let n = size_of::<T>();
    // SAFETY: `v` is hv memory of `n` bytes; the caller checked `va`.
    unsafe { copy(v.as_mut_ptr().cast::<u8>(), va as *const u8, n / 8, n % 8)? };
    // SAFETY: the copy completed, so all `n` bytes of `v` are written, and
    // `T: FromBytes` is valid for any bytes.
    Ok(unsafe { v.assume_init() })
}

/// Copies `data` to guest address `va` (already range-checked).
pub fn write_guest(va: u64, data: &[u8]) -> Result<(), Fault> {
    // SAFETY: `data` is hv memory of that length; the caller checked `va`.
    unsafe { copy(va as *mut u8, data.as_ptr(), data.len() / 8, data.len() % 8) }
}

/// Writes `words` to guest address `va` (already range-checked).
#[inline(always)]
pub fn write_guest_words(va: u64, words: &[u64]) -> Result<(), Fault> {
    // SAFETY: `words` is hv memory of `words.len()` words; the caller
    // checked `va`.
    unsafe { copy(va as *mut u8, words.as_ptr().cast::<u8>(), words.len(), 0) }
}
