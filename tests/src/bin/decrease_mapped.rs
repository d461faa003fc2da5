//! `decrease_reservation` of frames that are still in use, as Xen 4.17
//! answers it (`guest_remove_page`): the call drops the domain's
//! allocation reference and succeeds; the frame stays the domain's, and
//! counted in its reservation, until its last reference goes. Checked for
//! a frame mapped writable, one mapped read-only, a pinned page table, an
//! LDT page and a GDT frame: the call answers 1, `current_reservation`
//! does not move, the existing mappings keep working, the frame can be
//! mapped (and pinned) again, `MMU_MACHPHYS_UPDATE` still takes it, a
//! second decrease succeeds without effect, and `exchange` refuses it;
//! when the last use goes (unmap, unpin, `SET_LDT` or `set_gdt` elsewhere)
//! the reservation drops by one and the frame is no longer the domain's
//! (`MMUEXT_CLEAR_PAGE` and `MMU_MACHPHYS_UPDATE` refuse it, a mapping is
//! `-EBUSY`, its M2P entry is invalid). Pins are not dropped by the call
//! (XSA-252). A loaded LDT keeps its page (and the page keeps working)
//! after the guest's own mapping of it goes, until `SET_LDT` moves on. An
//! extent whose second page is no longer the domain's gives back the
//! first page and is not counted done.
//!
//! @covers: memory_op.decrease_reservation memory_op.exchange
#![no_std]
#![no_main]

use guest_abi::errno::{EBUSY, EINVAL};
use guest_abi::memory::XENMEM_CURRENT_RESERVATION;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::{
    MmuUpdate, MMUEXT_CLEAR_PAGE, MMUEXT_PIN_L1_TABLE, MMUEXT_SET_LDT, MMUEXT_UNPIN_TABLE,
    MMU_MACHPHYS_UPDATE,
};
use tests::check;
use tests::fixup;
use tests::pvmm::{
    self, decrease, exchange1, mmu_update, mmuext1, pt_write, read_u64, set_gdt, write_u64, Env,
    Window, A, D, M2P, P, RW, US,
};

guest_abi::pv_guest!(main, name = "decrease_mapped");

const KRW: u64 = P | RW | US | A | D;
const KRO: u64 = P | US | A;
/// A data segment, DPL 0 (Xen raises it to 3), base 0x1000, 4 GiB.
const DATA_BASE_1000: u64 = 0x00cf_9300_1000_ffff;

fn cur() -> i64 {
    pvmm::reservation(XENMEM_CURRENT_RESERVATION)
}

/// `MMU_MACHPHYS_UPDATE` of `mfn` to the value it has: succeeds exactly
/// while the frame is the domain's (Xen takes a reference to it). Needs
/// the trap table (the M2P entry is read through `fixup`).
fn still_ours(mfn: u64) -> i64 {
    let pfn = fixup::read(M2P + mfn * 8).unwrap_or(u64::MAX);
    mmu_update(
        &[MmuUpdate {
            ptr: (mfn << 12) | MMU_MACHPHYS_UPDATE,
            val: pfn,
        }],
        None,
    )
}

fn null_fs() {
    // SAFETY: a null selector always loads; nothing uses %fs.
    unsafe { core::arch::asm!("mov fs, {z:e}", z = in(reg) 0u32) };
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("decrease_mapped");
    let Some((mut env, w)) = pvmm::env_window_catching(&mut r, si) else {
        r.finish()
    };
    writable(&mut r, &mut env, &w);
    read_only(&mut r, &mut env, &w);
    pinned(&mut r, &mut env);
    ldt(&mut r, &mut env, &w);
    gdt(&mut r, &mut env, &w);
    partial_extent(&mut r, &mut env);
    r.finish()
}

/// A frame mapped writable: decreased, still usable, mapped again,
/// decreased again, refused by exchange; freed with its last mapping.
fn writable(r: &mut Report, env: &mut Env, w: &Window) {
    let (pfn, m) = env.spare();
    check!(r, "CLEAR_PAGE spare mfn {m:#x}", mmuext1(MMUEXT_CLEAR_PAGE, m, 0) => 0);
    check!(r, "map it writable at window page 8", w.map(8, m, KRW) => 0);
    write_u64(w.va(8), 0x1234_5678);
    let start = cur();
    check!(r, "M2P[{m:#x}] is its pfn", read_u64(M2P + m * 8) => pfn);
    check!(r, "decrease_reservation of it while mapped writable", decrease(m, 0) => 1);
    check!(r, "current_reservation unchanged", cur() => start);
    check!(r, "M2P entry unchanged", read_u64(M2P + m * 8) => pfn);
    check!(r, "the mapping still reads", read_u64(w.va(8)) => 0x1234_5678);
    write_u64(w.va(8), 0x9abc_def0);
    check!(r, "and writes", read_u64(w.va(8)) => 0x9abc_def0);
    check!(r, "MMU_MACHPHYS_UPDATE still takes it", still_ours(m) => 0);
    check!(r, "decrease_reservation of it again", decrease(m, 0) => 1);
    check!(r, "current_reservation unchanged", cur() => start);
    check!(r, "map it again, writable, at page 9", w.map(9, m, KRW) => 0);
    check!(r, "page 9 reads the same frame", read_u64(w.va(9)) => 0x9abc_def0);
    check!(r, "CLEAR_PAGE of it", mmuext1(MMUEXT_CLEAR_PAGE, m, 0) => 0);
    check!(r, "page 8 reads the cleared frame", read_u64(w.va(8)) => 0);
    let (rc, done) = exchange1(m);
    check!(r, "exchange of it", rc => -EINVAL);
    check!(r, "nothing exchanged", done => 0);
    check!(r, "unmap page 9", w.unmap(9) => 0);
    check!(r, "current_reservation unchanged (page 8 maps it)", cur() => start);
    check!(r, "unmap page 8: its last mapping", w.unmap(8) => 0);
    check!(r, "current_reservation one lower", cur() => start - 1);
    check!(r, "MMU_MACHPHYS_UPDATE refuses it now", still_ours(m) => -EINVAL);
    check!(r, "CLEAR_PAGE refuses it", mmuext1(MMUEXT_CLEAR_PAGE, m, 0) => -EINVAL);
    check!(r, "mapping it is refused", w.map(8, m, KRO) => -EBUSY);
    check!(r, "decrease_reservation of it once more", decrease(m, 0) => 0);
    check!(r, "M2P[{m:#x}] is invalid", read_u64(M2P + m * 8) => u64::MAX);
}

/// A frame mapped read-only: decreased, then pinned (the pin keeps it
/// after the mapping goes), freed by the unpin.
fn read_only(r: &mut Report, env: &mut Env, w: &Window) {
    let (_, m) = env.spare();
    check!(r, "CLEAR_PAGE spare mfn {m:#x}", mmuext1(MMUEXT_CLEAR_PAGE, m, 0) => 0);
    check!(r, "map it read-only at page 10", w.map(10, m, KRO) => 0);
    let start = cur();
    check!(r, "decrease_reservation of it while mapped read-only", decrease(m, 0) => 1);
    check!(r, "current_reservation unchanged", cur() => start);
    check!(r, "the mapping still reads", read_u64(w.va(10)) => 0);
    check!(r, "map it writable at page 11", w.map(11, m, KRW) => 0);
    check!(r, "unmap page 11", w.unmap(11) => 0);
    check!(r, "pin it as an L1 table", mmuext1(MMUEXT_PIN_L1_TABLE, m, 0) => 0);
    check!(r, "unmap page 10", w.unmap(10) => 0);
    check!(r, "current_reservation unchanged (the pin keeps it)", cur() => start);
    check!(r, "MMU_MACHPHYS_UPDATE takes it", still_ours(m) => 0);
    check!(r, "unpin it: its last use", mmuext1(MMUEXT_UNPIN_TABLE, m, 0) => 0);
    check!(r, "current_reservation one lower", cur() => start - 1);
    check!(r, "MMU_MACHPHYS_UPDATE refuses it now", still_ours(m) => -EINVAL);
}

/// A pinned page table, not mapped: the decrease leaves the pin.
fn pinned(r: &mut Report, env: &mut Env) {
    let (_, m) = env.spare();
    check!(r, "CLEAR_PAGE spare mfn {m:#x}", mmuext1(MMUEXT_CLEAR_PAGE, m, 0) => 0);
    check!(r, "pin it as an L1 table", mmuext1(MMUEXT_PIN_L1_TABLE, m, 0) => 0);
    let start = cur();
    check!(r, "decrease_reservation of the pinned table", decrease(m, 0) => 1);
    check!(r, "current_reservation unchanged", cur() => start);
    check!(r, "MMU_MACHPHYS_UPDATE takes it", still_ours(m) => 0);
    check!(r, "it is still an L1: CLEAR_PAGE refused", mmuext1(MMUEXT_CLEAR_PAGE, m, 0) => -EINVAL);
    check!(r, "unpin it (the decrease left the pin)", mmuext1(MMUEXT_UNPIN_TABLE, m, 0) => 0);
    check!(r, "current_reservation one lower", cur() => start - 1);
    check!(r, "MMU_MACHPHYS_UPDATE refuses it now", still_ours(m) => -EINVAL);
    check!(r, "unpin it again", mmuext1(MMUEXT_UNPIN_TABLE, m, 0) => -EINVAL);
}

/// A spare frame made the LDT (a data segment at index 1), mapped
/// read-only at window page 12 and loaded through %fs (so hv or Xen maps
/// it in its LDT area); `None` after a failed check.
fn loaded_ldt_page(r: &mut Report, env: &mut Env, w: &Window) -> Option<u64> {
    let (_, m) = env.spare();
    let ok = check!(r, "CLEAR_PAGE spare mfn {m:#x}", mmuext1(MMUEXT_CLEAR_PAGE, m, 0) => 0)
        && check!(r, "raw write ldt[1] = data segment",
            pt_write((m << 12) + 8, DATA_BASE_1000) => 0)
        && check!(r, "map it read-only at page 12", w.map(12, m, KRO) => 0)
        && check!(r, "SET_LDT(page 12, 2)", mmuext1(MMUEXT_SET_LDT, w.va(12), 2) => 0);
    let got = fixup::load_fs(0x0f);
    let ok = ok && r.check(format_args!("mov %fs, 0x0f loads ({got:x?})"), got.is_ok());
    null_fs();
    ok.then_some(m)
}

/// A page in use as the LDT, decreased: the LDT keeps it until `SET_LDT`
/// moves on, and so does the guest's own mapping, whichever goes first.
fn ldt(r: &mut Report, env: &mut Env, w: &Window) {
    let Some(m) = loaded_ldt_page(r, env, w) else {
        return;
    };
    let start = cur();
    check!(r, "decrease_reservation of the LDT page", decrease(m, 0) => 1);
    check!(r, "current_reservation unchanged", cur() => start);
    let got = fixup::load_fs(0x0f);
    r.check(
        format_args!("mov %fs, 0x0f still loads ({got:x?})"),
        got.is_ok(),
    );
    null_fs();
    check!(r, "SET_LDT(0, 0)", mmuext1(MMUEXT_SET_LDT, 0, 0) => 0);
    check!(r, "current_reservation unchanged (page 12 maps it)", cur() => start);
    check!(r, "MMU_MACHPHYS_UPDATE takes it", still_ours(m) => 0);
    check!(r, "unmap page 12: its last use", w.unmap(12) => 0);
    check!(r, "current_reservation one lower", cur() => start - 1);
    check!(r, "MMU_MACHPHYS_UPDATE refuses it now", still_ours(m) => -EINVAL);

    // The other order: the guest's mapping goes first, the LDT loaded.
    let Some(m) = loaded_ldt_page(r, env, w) else {
        return;
    };
    let start = cur();
    check!(r, "decrease_reservation of the LDT page", decrease(m, 0) => 1);
    check!(r, "unmap page 12 while the LDT is loaded", w.unmap(12) => 0);
    check!(r, "current_reservation unchanged (the LDT keeps it)", cur() => start);
    check!(r, "MMU_MACHPHYS_UPDATE takes it", still_ours(m) => 0);
    let got = fixup::load_fs(0x0f);
    r.check(
        format_args!("mov %fs, 0x0f still loads ({got:x?})"),
        got.is_ok(),
    );
    null_fs();
    check!(r, "SET_LDT(0, 0): its last use", mmuext1(MMUEXT_SET_LDT, 0, 0) => 0);
    check!(r, "current_reservation one lower", cur() => start - 1);
    check!(r, "MMU_MACHPHYS_UPDATE refuses it now", still_ours(m) => -EINVAL);
}

/// A GDT frame: decreased; the GDT keeps it after the guest's mapping
/// goes, until `set_gdt` replaces it.
fn gdt(r: &mut Report, env: &mut Env, w: &Window) {
    let (_, m) = env.spare();
    check!(r, "CLEAR_PAGE spare mfn {m:#x}", mmuext1(MMUEXT_CLEAR_PAGE, m, 0) => 0);
    check!(r, "map it read-only at page 13", w.map(13, m, KRO) => 0);
    check!(r, "set_gdt([it], 16)", set_gdt(&[m], 16) => 0);
    let start = cur();
    check!(r, "decrease_reservation of the GDT frame", decrease(m, 0) => 1);
    check!(r, "current_reservation unchanged", cur() => start);
    check!(r, "unmap page 13", w.unmap(13) => 0);
    check!(r, "current_reservation unchanged (the GDT keeps it)", cur() => start);
    check!(r, "MMU_MACHPHYS_UPDATE takes it", still_ours(m) => 0);
    check!(r, "set_gdt([], 0): its last use", set_gdt(&[], 0) => 0);
    check!(r, "current_reservation one lower", cur() => start - 1);
    check!(r, "MMU_MACHPHYS_UPDATE refuses it now", still_ours(m) => -EINVAL);
}

/// An extent of two frames whose second is no longer the domain's: the
/// first is given back, the extent is not counted.
fn partial_extent(r: &mut Report, env: &mut Env) {
    let (mut m, mut next) = (env.spare().1, env.spare().1);
    for _ in 0..64 {
        if next == m + 1 {
            break;
        }
        (m, next) = (next, env.spare().1);
    }
    if !r.check(
        format_args!("two spare frames in a row: {m:#x}, {next:#x}"),
        next == m + 1,
    ) {
        return;
    }
    let start = cur();
    check!(r, "decrease_reservation of {next:#x}", decrease(next, 0) => 1);
    check!(r, "current_reservation one lower", cur() => start - 1);
    check!(r, "decrease_reservation of {m:#x}, order 1", decrease(m, 1) => 0);
    check!(r, "current_reservation one lower again", cur() => start - 2);
    check!(r, "the first frame is given back", still_ours(m) => -EINVAL);
}
