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
use core::sync::atomic::{AtomicPtr, Ordering};

// Four copy routines: with or without STAC/CLAC (SMAP on or not; the
// instructions #UD without it), and with or without a byte tail. Each is
// `stac?; rep movsq; [mov %rdx, %rcx; rep movsb]; xor %eax, %eax; clac?;
// ret`, with its fixup after it. Boot picks the pair for this CPU
// (`set_smap`) and callers reach it with one indirect call: no flag is
// tested per copy (under QEMU each test and each string iteration counts
// as one instruction).
global_asm!(
    r#"
    .macro hv_uaccess_routine name, smap, tail
    .balign 16
    .global \name
\name:
    .if \smap
    stac
    .endif
    .global \name\()_insn
\name\()_insn:
    rep movsq
    .if \tail
    mov %rdx, %rcx
    rep movsb
    .endif
    .global \name\()_end
\name\()_end:
    xor %eax, %eax
1:
    .if \smap
    clac
    .endif
    ret
    .global \name\()_fixup
\name\()_fixup:
    mov $1, %eax
    jmp 1b
    .endm

    .section .text.hv_uaccess, "ax"
    hv_uaccess_routine hv_uaccess_plain_words, 0, 0
    hv_uaccess_routine hv_uaccess_plain_tail, 0, 1
    hv_uaccess_routine hv_uaccess_smap_words, 1, 0
    hv_uaccess_routine hv_uaccess_smap_tail, 1, 1
"#,
    options(att_syntax)
);

unsafe extern "C" {
    static hv_uaccess_plain_words: u8;
    static hv_uaccess_plain_words_insn: u8;
    static hv_uaccess_plain_words_end: u8;
    static hv_uaccess_plain_words_fixup: u8;
    static hv_uaccess_plain_tail: u8;
    static hv_uaccess_plain_tail_insn: u8;
    static hv_uaccess_plain_tail_end: u8;
    static hv_uaccess_plain_tail_fixup: u8;
    static hv_uaccess_smap_words: u8;
    static hv_uaccess_smap_words_insn: u8;
    static hv_uaccess_smap_words_end: u8;
    static hv_uaccess_smap_words_fixup: u8;
    static hv_uaccess_smap_tail: u8;
    static hv_uaccess_smap_tail_insn: u8;
    static hv_uaccess_smap_tail_end: u8;
    static hv_uaccess_smap_tail_fixup: u8;
}

/// The routines copies call: whole words, and words plus a byte tail.
/// Set by [`set_smap`] at boot, before any guest copy; until then the
/// forms without STAC/CLAC (valid on every CPU).
static COPY_WORDS: AtomicPtr<u8> =
    AtomicPtr::new(core::ptr::addr_of!(hv_uaccess_plain_words).cast_mut());
static COPY_TAIL: AtomicPtr<u8> =
    AtomicPtr::new(core::ptr::addr_of!(hv_uaccess_plain_tail).cast_mut());

fn addr(sym: &u8) -> u64 {
    core::ptr::from_ref(sym) as u64
}

/// Chooses the copy routines: with STAC/CLAC when SMAP is on.
pub fn set_smap(on: bool) {
    // SAFETY: taking the addresses of the routines' labels reads nothing.
    let (words, tail) = unsafe {
        if on {
            (addr(&hv_uaccess_smap_words), addr(&hv_uaccess_smap_tail))
        } else {
            (addr(&hv_uaccess_plain_words), addr(&hv_uaccess_plain_tail))
        }
    };
    COPY_WORDS.store(words as *mut u8, Ordering::Relaxed);
    COPY_TAIL.store(tail as *mut u8, Ordering::Relaxed);
}

/// Where the #PF handler resumes if `rip` is one of a copy routine's
/// string instructions (from the `rep movsq` up to and including the
/// `rep movsb`).
pub fn fixup_for(rip: u64) -> Option<u64> {
    // SAFETY: taking the addresses of the routines' labels reads nothing.
    let ranges = unsafe {
        [
            (
                addr(&hv_uaccess_plain_words_insn),
                addr(&hv_uaccess_plain_words_end),
                addr(&hv_uaccess_plain_words_fixup),
            ),
            (
                addr(&hv_uaccess_plain_tail_insn),
                addr(&hv_uaccess_plain_tail_end),
                addr(&hv_uaccess_plain_tail_fixup),
            ),
            (
                addr(&hv_uaccess_smap_words_insn),
                addr(&hv_uaccess_smap_words_end),
                addr(&hv_uaccess_smap_words_fixup),
            ),
            (
                addr(&hv_uaccess_smap_tail_insn),
                addr(&hv_uaccess_smap_tail_end),
                addr(&hv_uaccess_smap_tail_fixup),
            ),
        ]
    };
    ranges
        .into_iter()
        .find(|&(insn, end, _)| (insn..end).contains(&rip))
        .map(|(_, _, fixup)| fixup)
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
    // buffer and guest memory; (2) the call goes through `COPY_WORDS` or
    // `COPY_TAIL`, which hold one of the routines above (with STAC/CLAC
    // only when SMAP is on: `set_smap`); (3) a fault at its `rep movsq`
    // or `rep movsb` resumes at its fixup label (`fixup_for`), which
    // reports it here; (4) the routine changes only rcx/rdx/rdi/rsi/rax
    // and the flags, declared here, and leaves AC clear. A byte count
    // known to be zero (a whole number of words, the usual case) folds to
    // the routine without the tail.
    unsafe {
        if bytes == 0 {
            core::arch::asm!(
                "call qword ptr [rip + {routine}]",
                routine = sym COPY_WORDS,
                inout("rdi") dst => _,
                inout("rsi") src => _,
                inout("rcx") words => _,
                lateout("eax") failed,
            );
        } else {
            core::arch::asm!(
                "call qword ptr [rip + {routine}]",
                routine = sym COPY_TAIL,
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

/// Writes `words` to guest address `va` (already range-checked).
#[inline(always)]
pub fn write_guest_words(va: u64, words: &[u64]) -> Result<(), Fault> {
    // SAFETY: `words` is hv memory of `words.len()` words; the caller
    // checked `va`.
    unsafe { copy(va as *mut u8, words.as_ptr().cast::<u8>(), words.len(), 0) }
}
