//! The LDT (`MMUEXT_SET_LDT`) as Xen 4.17 provides it: the call checks its
//! arguments and records the table; the pages are only typed (SegDesc,
//! every descriptor checked) and mapped when the CPU first reads a
//! descriptor through a selector with TI set, so `SET_LDT` succeeds even
//! while the page is still mapped writable, and the first load then
//! faults. A valid LDT page gives usable segments (`mov %fs`, reads through
//! the segment's base, `lsl`, the DPL raised to 3), refuses writable
//! mappings (`-EBUSY`) and raw writes while in use, and is an ordinary
//! page again after `SET_LDT` with 0 entries. A selector past the limit,
//! or with no LDT at all, is #GP(selector); a page holding a descriptor
//! Xen refuses (a TSS) is a #PF at the guest's own LDT address.
//!
//! @covers: mmuext_op.set_ldt
#![no_std]
#![no_main]

use core::arch::asm;

use guest_abi::errno::{EBUSY, EINVAL};
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::{TrapInfo, MMUEXT_CLEAR_PAGE, MMUEXT_SET_LDT};
use tests::check;
use tests::fixup::{self, SharedInfo};
use tests::pvmm::{mmuext1, pt_write, read_u64, Env, Window, A, D, P, RW, US};

guest_abi::pv_guest!(main, name = "ldt");

const KRW: u64 = P | RW | US | A | D;
const KRO: u64 = P | US | A;

const FS: u64 = 0;
const ES: u64 = 1;

/// A segment load that may fault: `Ok(())`, or the vector and error code.
fn load(sel: u64, which: u64) -> Result<(), (u64, u64)> {
    let got = if which == FS {
        fixup::load_fs(sel)
    } else {
        fixup::load_es(sel)
    };
    got.map_err(|f| (f.vector, f.error_code))
}

fn null_segments() {
    // SAFETY: null selectors always load.
    unsafe { asm!("mov fs, {z:e}", "mov es, {z:e}", z = in(reg) 0u32) };
}

fn fs_selector() -> u64 {
    let s: u64;
    // SAFETY: reads a segment register.
    unsafe { asm!("mov {s:e}, fs", s = out(reg) s) };
    s & 0xffff
}

/// Reads 8 bytes at `off` through %fs.
fn read_fs(off: u64) -> u64 {
    let v: u64;
    // SAFETY: callers pass an offset that, with the loaded base, is the
    // address of a static of this image.
    unsafe { asm!("mov {v}, fs:[{o}]", o = in(reg) off, v = out(reg) v) };
    v
}

fn lsl(sel: u64) -> Option<u64> {
    let (v, ok): (u64, u8);
    // SAFETY: lsl never faults on a bad selector; it clears ZF.
    unsafe {
        asm!("xor {v:e}, {v:e}", "lsl {v}, {s}", "setz {ok}", v = out(reg) v, s = in(reg) sel, ok = out(reg_byte) ok)
    };
    (ok != 0).then_some(v)
}

fn set_ldt(va: u64, ents: u64) -> i64 {
    mmuext1(MMUEXT_SET_LDT, va, ents)
}

static TARGET: u64 = 0x001d_75e9_c0de_f00d;

/// A data segment, DPL 0 (Xen raises it to 3), base 0x1000, 4 GiB.
const DATA_BASE_1000: u64 = 0x00cf_9300_1000_ffff;
const DATA_BASE_1000_DPL3: u64 = 0x00cf_f300_1000_ffff;
const TSS: u64 = 0x0000_8900_0000_0067;

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("ldt");
    let Some(mut env) = Env::new(&mut r, si) else {
        r.finish()
    };
    let Some(w) = Window::new(&mut r, &mut env) else {
        r.finish()
    };
    let table = [fixup::catcher(13), fixup::catcher(14), TrapInfo::default()];
    let trc = fixup::set_trap_table(&table);
    if !check!(r, "set_trap_table(#GP, #PF)", trc => 0) {
        r.finish()
    }
    let shared = SharedInfo::map(si);
    r.check("map shared info", shared.is_some());

    // Argument checks.
    check!(r, "SET_LDT(misaligned, 1)", set_ldt(w.va(2) + 8, 1) => -EINVAL);
    check!(r, "SET_LDT(va, 8193)", set_ldt(w.va(2), 8193) => -EINVAL);
    check!(r, "SET_LDT(hypervisor range, 1)", set_ldt(0xffff_8000_0000_0000, 1) => -EINVAL);
    check!(r, "SET_LDT(non-canonical, 1)", set_ldt(0x8000_0000_0000_0000, 1) => -EINVAL);
    check!(r, "SET_LDT(misaligned, 0)", set_ldt(0x1001, 0) => 0);
    r.check(
        format_args!("no LDT: mov %fs, 0x0f is #GP(0x0c) ({:x?})", load(0x0f, FS)),
        load(0x0f, FS) == Err((13, 0x0c)),
    );

    // An LDT page with one data segment at index 1.
    let l = env.spare().1;
    check!(r, "MMUEXT_CLEAR_PAGE ldt frame", mmuext1(MMUEXT_CLEAR_PAGE, l, 0) => 0);
    check!(r, "raw write ldt[1] = data DPL 0, base 0x1000",
        pt_write((l << 12) + 8, DATA_BASE_1000) => 0);
    check!(r, "map it read-only", w.map(2, l, KRO) => 0);
    check!(r, "map it writable too", w.map(3, l, KRW) => 0);
    let va = w.va(2);
    check!(r, "SET_LDT(va, 2) while it is writable", set_ldt(va, 2) => 0);
    let got = load(0x0f, FS);
    let cr2 = shared.as_ref().map_or(0, SharedInfo::cr2);
    r.check(
        format_args!("mov %fs, 0x0f faults: #PF (got {got:x?})"),
        matches!(got, Err((14, ec)) if ec & 1 == 0),
    );
    r.check(
        format_args!(
            "cr2 is the descriptor's own address {:#x} (got {cr2:#x})",
            va + 8
        ),
        shared.is_none() || cr2 == va + 8,
    );
    check!(r, "unmap the writable view", w.unmap(3) => 0);
    let got = load(0x0f, FS);
    r.check(
        format_args!("mov %fs, 0x0f loads now ({got:x?})"),
        got.is_ok(),
    );
    check!(r, "%fs reads back", fs_selector() => 0x0f);
    let target = core::ptr::addr_of!(TARGET) as u64;
    if got.is_ok() {
        let v = read_fs(target.wrapping_sub(0x1000));
        r.check(
            format_args!("read through %fs with base 0x1000 ({v:#x})"),
            v == TARGET,
        );
    }
    r.check(
        format_args!("lsl 0x0f: 4 GiB ({:x?})", lsl(0x0f)),
        lsl(0x0f) == Some(0xffff_ffff),
    );
    let d = read_u64(va + 8);
    check!(r, "ldt[1] reads back with DPL 3", d => DATA_BASE_1000_DPL3);
    r.check(
        format_args!(
            "mov %es, 0x17 past the limit is #GP(0x14) ({:x?})",
            load(0x17, ES)
        ),
        load(0x17, ES) == Err((13, 0x14)),
    );
    check!(r, "map the LDT page writable", w.map(3, l, KRW) => -EBUSY);
    check!(r, "mmu_update raw write into it", pt_write((l << 12) + 16, 0) => -EINVAL);
    null_segments();
    check!(r, "SET_LDT(0, 0)", set_ldt(0, 0) => 0);
    check!(r, "the page can be mapped writable again", w.map(3, l, KRW) => 0);
    check!(r, "unmap it", w.unmap(3) => 0);
    r.check(
        format_args!(
            "LDT gone: mov %fs, 0x0f is #GP(0x0c) ({:x?})",
            load(0x0f, FS)
        ),
        load(0x0f, FS) == Err((13, 0x0c)),
    );

    // A page Xen cannot take as an LDT: a TSS descriptor at index 3.
    let b = env.spare().1;
    check!(r, "MMUEXT_CLEAR_PAGE bad frame", mmuext1(MMUEXT_CLEAR_PAGE, b, 0) => 0);
    check!(r, "raw write bad[1] = data", pt_write((b << 12) + 8, DATA_BASE_1000) => 0);
    check!(r, "raw write bad[3] = 64-bit TSS", pt_write((b << 12) + 24, TSS) => 0);
    check!(r, "map it read-only", w.map(4, b, KRO) => 0);
    let vb = w.va(4);
    check!(r, "SET_LDT(bad page, 4)", set_ldt(vb, 4) => 0);
    let got = load(0x0f, ES);
    let cr2 = shared.as_ref().map_or(0, SharedInfo::cr2);
    r.check(
        format_args!("mov %es, 0x0f: #PF (got {got:x?})"),
        matches!(got, Err((14, ec)) if ec & 1 == 0),
    );
    r.check(
        format_args!("cr2 {:#x}, in the guest's LDT (got {cr2:#x})", vb + 8),
        shared.is_none() || cr2 == vb + 8,
    );
    r.check(
        format_args!(
            "the faulting rip is the load's (frame rip {:#x})",
            fixup::last_frame().words[3]
        ),
        fixup::last_frame().words[3] != 0,
    );
    check!(r, "the bad page can be mapped writable", w.map(5, b, KRW) => 0);
    check!(r, "unmap it", w.unmap(5) => 0);
    check!(r, "SET_LDT(0, 0)", set_ldt(0, 0) => 0);
    null_segments();
    r.finish()
}
