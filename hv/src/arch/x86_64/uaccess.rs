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
//! on write, as they would for the guest. Every routine first pays this
//! CPU's TLB debt (`mm::settle`), so no copy goes through a translation
//! that an earlier operation made stale (issue #11).

use core::arch::global_asm;
use core::sync::atomic::{AtomicPtr, Ordering};

// The copy routines, each with and without STAC/CLAC (SMAP on or not;
// the instructions #UD without it). Each routine's guest accesses lie
// between its `_insn` and `_end` labels, and a fault there resumes at its
// `_fixup`, which reports failure (eax, or edi for `read9`, = 1). Boot
// picks the STAC/CLAC set or not (`set_smap`), and callers reach a
// routine with one indirect call: no SMAP flag is tested per copy (under
// QEMU each test and each string iteration counts as one instruction).
// The one test each routine starts with is the TLB debt's (issue #11):
// while some CPU owes a flush, `hv_uaccess_settle` (`saving_call`) pays this CPU's before
// the access.
//
// - `words`: rcx quadwords from rsi to rdi (`rep movsq`);
// - `tail`: the same, then rdx bytes (`rep movsb`);
// - `frame7`/`frame8`: rsi, rdx, rcx, r8, r9, r10, r11 (and rax) stored
//   at rdi upwards: a bounce frame written straight from registers;
// - `read9`: the nine words at rdi loaded into rax, rcx, rdx, rsi, r8,
//   r9, r10, r11, r12: an `iret` frame read straight into registers.
global_asm!(
    r#"
    .macro hv_uaccess_begin name, smap
    .balign 16
    .global \name
\name:
    /* If some CPU owes a TLB flush, pay this CPU's debt first. */
    cmpl $0, {owing}(%rip)
    je 2f
    call hv_uaccess_settle
2:
    .if \smap
    stac
    .endif
\name\()_insn:
    .endm

    /* `reg` = 0 on success, 1 from the fixup. */
    .macro hv_uaccess_end name, smap, reg
\name\()_end:
    xor \reg, \reg
1:
    .if \smap
    clac
    .endif
    ret
\name\()_fixup:
    mov $1, \reg
    jmp 1b
    .pushsection .rodata.hv_uaccess_fixups, "a"
    .quad \name\()_insn, \name\()_end, \name\()_fixup
    .popsection
    .endm

    /* rsi, rdx, rcx, r8, r9, r10, r11 to rdi upwards. */
    .macro hv_uaccess_store7
    mov %rsi, 0(%rdi)
    mov %rdx, 8(%rdi)
    mov %rcx, 16(%rdi)
    mov %r8, 24(%rdi)
    mov %r9, 32(%rdi)
    mov %r10, 40(%rdi)
    mov %r11, 48(%rdi)
    .endm

    .macro hv_uaccess_set prefix, smap
    hv_uaccess_begin \prefix\()_words, \smap
    rep movsq
    hv_uaccess_end \prefix\()_words, \smap, %eax

    hv_uaccess_begin \prefix\()_tail, \smap
    rep movsq
    mov %rdx, %rcx
    rep movsb
    hv_uaccess_end \prefix\()_tail, \smap, %eax

    hv_uaccess_begin \prefix\()_frame7, \smap
    hv_uaccess_store7
    hv_uaccess_end \prefix\()_frame7, \smap, %eax

    hv_uaccess_begin \prefix\()_frame8, \smap
    hv_uaccess_store7
    mov %rax, 56(%rdi)
    hv_uaccess_end \prefix\()_frame8, \smap, %eax

    hv_uaccess_begin \prefix\()_read9, \smap
    mov 0(%rdi), %rax
    mov 8(%rdi), %rcx
    mov 16(%rdi), %rdx
    mov 24(%rdi), %rsi
    mov 32(%rdi), %r8
    mov 40(%rdi), %r9
    mov 48(%rdi), %r10
    mov 56(%rdi), %r11
    mov 64(%rdi), %r12
    hv_uaccess_end \prefix\()_read9, \smap, %edi

    .pushsection .rodata.hv_uaccess_sets, "a"
    .global \prefix\()_set
\prefix\()_set:
    .quad \prefix\()_words, \prefix\()_tail, \prefix\()_frame7, \prefix\()_frame8, \prefix\()_read9
    .popsection
    .endm

    .pushsection .rodata.hv_uaccess_fixups, "a"
    .balign 8
    .global hv_uaccess_fixups
hv_uaccess_fixups:
    .popsection
    .section .text.hv_uaccess, "ax"

    hv_uaccess_set hv_uaccess_plain, 0
    hv_uaccess_set hv_uaccess_smap, 1
    .pushsection .rodata.hv_uaccess_fixups, "a"
    .global hv_uaccess_fixups_end
hv_uaccess_fixups_end:
    .popsection
"#,
    owing = sym super::mm::CPUS_OWING,
    options(att_syntax)
);

/// Number of routines in a set (the order of `ROUTINES`' indices below).
const N_ROUTINES: usize = 5;
const WORDS: usize = 0;
const TAIL: usize = 1;
const FRAME7: usize = 2;
const FRAME8: usize = 3;
const READ9: usize = 4;

unsafe extern "C" {
    static hv_uaccess_plain_set: [u64; N_ROUTINES];
    static hv_uaccess_smap_set: [u64; N_ROUTINES];
    static hv_uaccess_fixups: [[u64; 3]; 0];
    static hv_uaccess_fixups_end: u8;
    static hv_uaccess_plain_words: u8;
    static hv_uaccess_plain_tail: u8;
    static hv_uaccess_plain_frame7: u8;
    static hv_uaccess_plain_frame8: u8;
    static hv_uaccess_plain_read9: u8;
}

/// The routines copies call, indexed as above. Set by [`set_smap`] at
/// boot, before any guest copy; until then the forms without STAC/CLAC
/// (valid on every CPU).
static ROUTINES: [AtomicPtr<u8>; N_ROUTINES] = [
    AtomicPtr::new(core::ptr::addr_of!(hv_uaccess_plain_words).cast_mut()),
    AtomicPtr::new(core::ptr::addr_of!(hv_uaccess_plain_tail).cast_mut()),
    AtomicPtr::new(core::ptr::addr_of!(hv_uaccess_plain_frame7).cast_mut()),
    AtomicPtr::new(core::ptr::addr_of!(hv_uaccess_plain_frame8).cast_mut()),
    AtomicPtr::new(core::ptr::addr_of!(hv_uaccess_plain_read9).cast_mut()),
];

/// Chooses the copy routines: with STAC/CLAC when SMAP is on.
pub fn set_smap(on: bool) {
    // SAFETY: both sets are read-only tables of N_ROUTINES addresses.
    let set = unsafe {
        if on {
            &hv_uaccess_smap_set
        } else {
            &hv_uaccess_plain_set
        }
    };
    for (slot, &routine) in ROUTINES.iter().zip(set) {
        slot.store(routine as *mut u8, Ordering::Relaxed);
    }
}

/// Where the #PF handler resumes if `rip` is one of a copy routine's guest
/// accesses.
pub fn fixup_for(rip: u64) -> Option<u64> {
    // SAFETY: the assembler laid out whole (insn, end, fixup) triples
    // between the two labels, in read-only data.
    let fixups = unsafe {
        let first = core::ptr::addr_of!(hv_uaccess_fixups).cast::<[u64; 3]>();
        let bytes = core::ptr::addr_of!(hv_uaccess_fixups_end) as usize - first as usize;
        core::slice::from_raw_parts(first, bytes / size_of::<[u64; 3]>())
    };
    fixups
        .iter()
        .find(|&&[insn, end, _]| (insn..end).contains(&rip))
        .map(|&[_, _, fixup]| fixup)
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
    // buffer and guest memory; (2) the call goes through `ROUTINES`,
    // which holds the routines above (with STAC/CLAC only when SMAP is
    // on: `set_smap`); (3) a fault at its `rep movsq`
    // or `rep movsb` resumes at its fixup label (`fixup_for`), which
    // reports it here; (4) the routine changes only rcx/rdx/rdi/rsi/rax
    // and the flags, declared here, and leaves AC clear. A byte count
    // known to be zero (a whole number of words, the usual case) folds to
    // the routine without the tail.
    unsafe {
        if bytes == 0 {
            core::arch::asm!(
                "call qword ptr [rip + {routines} + {k}]",
                routines = sym ROUTINES,
                k = const WORDS * 8,
                inout("rdi") dst => _,
                inout("rsi") src => _,
                inout("rcx") words => _,
                lateout("eax") failed,
            );
        } else {
            core::arch::asm!(
                "call qword ptr [rip + {routines} + {k}]",
                routines = sym ROUTINES,
                k = const TAIL * 8,
                inout("rdi") dst => _,
                inout("rsi") src => _,
                inout("rcx") words => _,
                inout("rdx") bytes => _,
                lateout("eax") failed,
            );
        }
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

/// Writes a bounce frame of 7 or 8 words (`frame`; the 8th word is used
/// when `eight`) to guest address `va` (already range-checked), straight
/// from registers.
#[inline(always)]
pub fn write_guest_frame(va: u64, frame: &[u64; 8], eight: bool) -> Result<(), Fault> {
    let failed: u64;
    let [w0, w1, w2, w3, w4, w5, w6, w7] = *frame;
    // SAFETY: (1) the caller checked that [va, va + 56 or 64) is a guest
    // range; (2) the routine (from `ROUTINES`, as in `copy`) stores only
    // there, and a fault resumes at its fixup, which reports it; (3) it
    // changes only eax and the flags besides its inputs, declared here,
    // and leaves AC clear.
    unsafe {
        if eight {
            core::arch::asm!(
                "call qword ptr [rip + {routines} + {k}]",
                routines = sym ROUTINES,
                k = const FRAME8 * 8,
                in("rdi") va,
                in("rsi") w0, in("rdx") w1, in("rcx") w2, in("r8") w3,
                in("r9") w4, in("r10") w5, in("r11") w6,
                inout("rax") w7 => failed,
            );
        } else {
            core::arch::asm!(
                "call qword ptr [rip + {routines} + {k}]",
                routines = sym ROUTINES,
                k = const FRAME7 * 8,
                in("rdi") va,
                in("rsi") w0, in("rdx") w1, in("rcx") w2, in("r8") w3,
                in("r9") w4, in("r10") w5, in("r11") w6,
                lateout("rax") failed,
            );
        }
    }
    if failed & 1 == 0 {
        Ok(())
    } else {
        Err(Fault)
    }
}

/// Reads the nine words at guest address `va` (already range-checked)
/// straight into registers: an `iret` frame.
#[inline(always)]
pub fn read_guest_9(va: u64) -> Result<[u64; 9], Fault> {
    let failed_word: u64;
    let (w0, w1, w2, w3, w4, w5, w6, w7, w8): (u64, u64, u64, u64, u64, u64, u64, u64, u64);
    const _: () = assert!(size_of::<guest_abi::xen::IretContext>() == 72);
    // SAFETY: (1) the caller checked that [va, va + 72) is a guest range;
    // (2) the routine (from `ROUTINES`, as in `copy`) only loads from
    // there, and a fault resumes at its fixup, which reports it in edi;
    // (3) it changes only the registers declared here and the flags, and
    // leaves AC clear.
    unsafe {
        core::arch::asm!(
            "call qword ptr [rip + {routines} + {k}]",
            routines = sym ROUTINES,
            k = const READ9 * 8,
            inout("rdi") va => failed_word,
            lateout("rax") w0, lateout("rcx") w1, lateout("rdx") w2, lateout("rsi") w3,
            lateout("r8") w4, lateout("r9") w5, lateout("r10") w6, lateout("r11") w7,
            lateout("r12") w8,
        );
    }
    if failed_word & 1 == 0 {
        Ok([w0, w1, w2, w3, w4, w5, w6, w7, w8])
    } else {
        Err(Fault)
    }
}
