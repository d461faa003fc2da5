//! Writes to a read-only L1 page table from the guest kernel, which Xen
//! 4.17 emulates as checked updates of the entry ("ptwr"): a plain `mov`
//! of 8 bytes, an `xchg` (Linux's `ptep_get_and_clear`) of 8 bytes or of
//! a 32-bit half, the register getting the entry's old value, a byte
//! `and`/`or` (Linux's `clear_bit`/`set_bit` of a flag) with its flags,
//! and a new
//! entry the page-table rules refuse (a writable mapping of the L1 itself),
//! which leaves the entry as it was and gives the guest the #PF. The
//! entry stored is the one written with G set, as Xen adjusts a 64-bit
//! PV guest's user-accessible L1 entries.
#![no_std]
#![no_main]

use core::arch::global_asm;

use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use tests::check;
use tests::fixup::catch;
use tests::pvmm::{self, A, G, P, RW, US};

guest_abi::pv_guest!(main, name = "ptwr");

global_asm!(
    r#"
    .pushsection .text.ptwr, "ax"
    .globl ptwr_xchg64
ptwr_xchg64:
    xchg [rdi], rsi
    mov rax, rsi
    ret
    .globl ptwr_xchg32
ptwr_xchg32:
    xchg [rdi], esi
    mov eax, esi
    ret
    .globl ptwr_andb
ptwr_andb:
    and byte ptr ds:[rdi], 0xfd
    pushfq
    pop rax
    and eax, 0xc5
    ret
    .globl ptwr_orb
ptwr_orb:
    lock or byte ptr [rdi], 2
    pushfq
    pop rax
    and eax, 0xc5
    ret
    .globl ptwr_mov64
ptwr_mov64:
    mov [rdi], rsi
    xor eax, eax
    ret
    .popsection
"#
);

// SAFETY: assembly routines above following the C ABI, usable as
// `fixup::catch` bodies.
unsafe extern "C" {
    fn ptwr_xchg64(va: u64, v: u64, _: u64, _: u64) -> u64;
    fn ptwr_xchg32(va: u64, v: u64, _: u64, _: u64) -> u64;
    fn ptwr_mov64(va: u64, v: u64, _: u64, _: u64) -> u64;
    fn ptwr_andb(va: u64, _: u64, _: u64, _: u64) -> u64;
    fn ptwr_orb(va: u64, _: u64, _: u64, _: u64) -> u64;
}

type Body = unsafe extern "C" fn(u64, u64, u64, u64) -> u64;

/// Runs a body writing `v` at `va`: what it returns, or minus the fault's
/// vector.
fn run(body: Body, va: u64, v: u64) -> Result<u64, i64> {
    // SAFETY: `va` is an entry of the test's own L1 (read-only: the write
    // faults and the hypervisor emulates or refuses it); the entries it
    // writes map only the test's spare frame.
    unsafe { catch(body, [va, v, 0, 0]) }.map_err(|f| -f.vector.cast_signed())
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("ptwr");
    let Some((mut env, w)) = pvmm::env_window_catching(&mut r, si) else {
        r.finish()
    };
    let (_, mfn) = env.spare();
    check!(r, "map a spare frame at window page 1, writable", w.map(1, mfn, P | RW | US | A) => 0);
    // The entry of page 1, through the L1's read-only mapping at page 0.
    let entry = w.base + 8;
    let before = w.pte(1);
    let ro = (mfn << 12) | P | US | A;
    check!(r, "xchg (8 bytes): the old entry comes back", run(ptwr_xchg64, entry, ro) => Ok(before));
    check!(r, "the entry is the read-only one", w.pte(1) => ro | G);

    let rw = (mfn << 12) | P | RW | US | A;
    check!(r, "mov (8 bytes) of the writable entry", run(ptwr_mov64, entry, rw) => Ok(0));
    check!(r, "the entry is the writable one", w.pte(1) => rw | G);

    // Linux's ptep_set_wrprotect (clear_bit of RW: `andb $0xfd`) and
    // set_bit (`lock orb`); the flags are the byte's (CF, PF, ZF, SF): low
    // byte 0x25 has odd parity, 0x27 even.
    check!(r, "andb $0xfd (clear RW): CF PF ZF SF clear", run(ptwr_andb, entry, 0) => Ok(0));
    check!(r, "the entry lost RW", w.pte(1) => ro | G);
    check!(r, "lock orb $2 (set RW): PF set", run(ptwr_orb, entry, 0) => Ok(0x4));
    check!(r, "the entry has RW again", w.pte(1) => rw | G);

    // The low half: flags and the frame's low bits.
    let low = ro & 0xffff_ffff;
    check!(r, "xchg (low 4 bytes): the old low half comes back", run(ptwr_xchg32, entry, low) => Ok((rw | G) & 0xffff_ffff));
    check!(r, "the entry is read-only again", w.pte(1) => ro | G);

    // A writable mapping of the L1 itself: refused, the #PF reaches the
    // guest and the entry stays.
    let bad = (w.l1_mfn << 12) | P | RW | US | A;
    check!(r, "xchg of a writable mapping of the L1: #PF", run(ptwr_xchg64, entry, bad) => Err(-14));
    check!(r, "the entry is unchanged", w.pte(1) => ro | G);

    // Linux's ptep_get_and_clear.
    check!(r, "xchg of 0: the old entry comes back", run(ptwr_xchg64, entry, 0) => Ok(ro | G));
    check!(r, "the entry is clear", w.pte(1) => 0);
    r.finish()
}
