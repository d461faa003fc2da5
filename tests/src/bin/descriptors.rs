//! `set_gdt` and `update_descriptor` as on Xen 4.17: limits and bad
//! lists, frames that cannot become descriptor tables (mapped writable,
//! not the domain's), Xen's descriptor checks (DPL raised to 3, call gates
//! rewritten, other system descriptors refused), a loaded GDT's selectors
//! usable by the guest (`lar`, `lsl`, `mov %es`), its frame refusing
//! writable mappings and raw writes until replaced, and
//! `update_descriptor` on ordinary pages and on a live GDT frame.
//!
//! @covers: set_gdt update_descriptor
#![no_std]
#![no_main]

use core::arch::asm;

use guest_abi::errno::{EBUSY, EFAULT, EINVAL};
use guest_abi::hypercall::{hypercall2, SET_GDT, UPDATE_DESCRIPTOR};
use guest_abi::rt::report::Report;
use guest_abi::rt::{StartInfoRef, VIRT_BASE};
use guest_abi::xen::MMUEXT_CLEAR_PAGE;
use tests::check;
use tests::pages::Pages;
use tests::pvmm::{
    m2p_mfn, mmuext1, pt_write, read_u64, set_gdt, Env, Window, A, D, P, PAGE, RW, US,
};

guest_abi::pv_guest!(main, name = "descriptors");

const KRW: u64 = P | RW | US | A | D;
const KRO: u64 = P | US | A;

fn update(ma: u64, desc: u64) -> i64 {
    // SAFETY: targets are this test's own pages (or deliberately bad).
    unsafe { hypercall2(UPDATE_DESCRIPTOR, ma, desc) }
}

/// `lar`: the access-rights bytes of `sel`, if the CPU can read it.
fn lar(sel: u64) -> Option<u64> {
    let (v, ok): (u64, u8);
    // SAFETY: lar never faults on a bad selector; it clears ZF.
    unsafe {
        asm!("xor {v:e}, {v:e}", "lar {v}, {s}", "setz {ok}", v = out(reg) v, s = in(reg) sel, ok = out(reg_byte) ok)
    };
    // Bits 16-19 (limit) are not architecturally defined in the result.
    (ok != 0).then_some(v & 0x00f0_ff00)
}

/// `lsl`: the segment limit of `sel`.
fn lsl(sel: u64) -> Option<u64> {
    let (v, ok): (u64, u8);
    // SAFETY: as for `lar`.
    unsafe {
        asm!("xor {v:e}, {v:e}", "lsl {v}, {s}", "setz {ok}", v = out(reg) v, s = in(reg) sel, ok = out(reg_byte) ok)
    };
    (ok != 0).then_some(v)
}

/// An ordinary (writable) page of the kernel image for `update_descriptor`.
static DESC_PAGE: Pages<1> = Pages::new();

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("descriptors");
    let Some(mut env) = Env::new(&mut r, si) else {
        r.finish()
    };
    let Some(w) = Window::new(&mut r, &mut env) else {
        r.finish()
    };

    // Limits and bad lists.
    let g = env.spare().1;
    check!(r, "MMUEXT_CLEAR_PAGE gdt frame", mmuext1(MMUEXT_CLEAR_PAGE, g, 0) => 0);
    check!(r, "set_gdt(7169 entries)", set_gdt(&[g; 15], 7169) => -EINVAL);
    // SAFETY: a bad list pointer; the hypervisor must refuse it.
    check!(r, "set_gdt(bad list, 7169)", unsafe { hypercall2(SET_GDT, 0x1000, 7169) } => -EINVAL);
    // SAFETY: as above.
    check!(r, "set_gdt(bad list, 1)", unsafe { hypercall2(SET_GDT, 0x1000, 1) } => -EFAULT);
    if let Some(m) = m2p_mfn() {
        check!(r, "set_gdt(an M2P frame)", set_gdt(&[m], 16) => -EINVAL);
    }
    let image_pfn = (DESC_PAGE.addr() - VIRT_BASE) / PAGE;
    let image_mfn = env.mfn(image_pfn);
    check!(r, "set_gdt(a frame mapped writable)", set_gdt(&[image_mfn], 16) => -EINVAL);
    check!(r, "set_gdt(the L4)", set_gdt(&[env.l4_mfn], 16) => -EINVAL);

    // A frame with a bad descriptor is refused and stays untyped.
    let bad = env.spare().1;
    check!(r, "MMUEXT_CLEAR_PAGE bad frame", mmuext1(MMUEXT_CLEAR_PAGE, bad, 0) => 0);
    check!(r, "raw write: a 64-bit TSS descriptor",
        pt_write((bad << 12) + 5 * 8, 0x0000_8900_0000_0067) => 0);
    check!(r, "set_gdt(frame with a TSS descriptor)", set_gdt(&[bad], 16) => -EINVAL);
    check!(r, "that frame can still be mapped writable", w.map(3, bad, KRW) => 0);
    check!(r, "unmap it", w.unmap(3) => 0);

    // A good GDT, written raw while the frame is untyped.
    let descs: [(u64, u64); 4] = [
        (1, 0x00cf_9300_0000_ffff), // data, DPL 0
        (2, 0x00af_bb00_0000_ffff), // 64-bit code, DPL 1
        (3, 0x0000_1234_5678_9abc), // not present
        (4, 0x0000_ec00_e033_1000), // call gate to FLAT_KERNEL_CS, DPL 3
    ];
    for &(i, d) in &descs {
        check!(r, "raw write gdt[{i}] = {d:#x}", pt_write((g << 12) + i * 8, d) => 0);
    }
    check!(r, "set_gdt([g], 32)", set_gdt(&[g], 32) => 0);
    check!(r, "map the gdt frame read-only", w.map(4, g, KRO) => 0);
    let want = [
        (1, 0x00cf_f300_0000_ffff),
        (2, 0x00af_fb00_0000_ffff),
        (3, 0x0000_1234_5678_9abc),
        (4, 0x0000_8c00_e033_1000),
    ];
    for &(i, d) in &want {
        let got = read_u64(w.va(4) + i * 8);
        check!(r, "gdt[{i}] reads back", got => d);
    }
    check!(r, "lar 0x0b: data, DPL 3", lar(0x0b) => Some(0x00c0_f300));
    check!(r, "lar 0x13: code, DPL 3", lar(0x13) => Some(0x00a0_fb00));
    check!(r, "lar 0x1b: not present", lar(0x1b) => None);
    check!(r, "lsl 0x0b: 4 GiB limit", lsl(0x0b) => Some(0xffff_ffff));
    let es: u64;
    // SAFETY: 0x0b is a present DPL-3 data segment now; %es is restored
    // to null at once.
    unsafe {
        asm!("mov es, {s:e}", "mov {e:e}, es", "xor {z:e}, {z:e}", "mov es, {z:e}", s = in(reg) 0x0bu32, e = out(reg) es, z = out(reg) _)
    };
    r.check(
        format_args!("mov %es, 0x0b loads (read back {es:#x})"),
        es & 0xffff == 0x0b,
    );

    // The frame is a descriptor table now.
    check!(r, "map the gdt frame writable", w.map(5, g, KRW) => -EBUSY);
    check!(r, "mmu_update raw write into it", pt_write((g << 12) + 8, 0) => -EINVAL);
    check!(r, "MMUEXT_CLEAR_PAGE of it", mmuext1(MMUEXT_CLEAR_PAGE, g, 0) => -EINVAL);

    // update_descriptor on the live GDT.
    check!(r, "update_descriptor(gdt[5], data limit 0xfff)",
        update((g << 12) + 5 * 8, 0x0000_9300_0000_0fff) => 0);
    let got = read_u64(w.va(4) + 5 * 8);
    check!(r, "gdt[5] reads back", got => 0x0000_f300_0000_0fff);
    check!(r, "lsl 0x2b: the new limit", lsl(0x2b) => Some(0xfff));
    check!(r, "update_descriptor(gdt[5], LDT descriptor)",
        update((g << 12) + 5 * 8, 0x0000_8200_0000_0fff) => -EINVAL);

    // update_descriptor on an ordinary page: Xen's checks one by one.
    let ma = image_mfn << 12;
    let cases: [(&str, u64, i64, u64); 13] = [
        (
            "data DPL 0",
            0x00cf_9300_0000_ffff,
            0,
            0x00cf_f300_0000_ffff,
        ),
        (
            "code DPL 1",
            0x00af_bb00_0000_ffff,
            0,
            0x00af_fb00_0000_ffff,
        ),
        (
            "conforming code DPL 0",
            0x00af_9f00_0000_ffff,
            0,
            0x00af_ff00_0000_ffff,
        ),
        (
            "not present",
            0x0000_1234_5678_9abc,
            0,
            0x0000_1234_5678_9abc,
        ),
        (
            "present type 0",
            0x0000_8000_0000_0000,
            0,
            0x0000_8000_0000_0000,
        ),
        ("64-bit TSS", 0x0000_8900_0000_0067, -EINVAL, 0),
        ("LDT", 0x0000_8200_0000_0fff, -EINVAL, 0),
        ("interrupt gate", 0x0000_ee00_e033_1000, -EINVAL, 0),
        (
            "call gate to 0xe033",
            0x0000_ec00_e033_1000,
            0,
            0x0000_8c00_e033_1000,
        ),
        (
            "call gate to GDT 0x08",
            0x0000_8c00_0008_1000,
            0,
            0x0000_8c00_000b_1000,
        ),
        (
            "call gate to LDT 0x0c",
            0x0000_8c00_000c_1000,
            0,
            0x0000_8c00_000f_1000,
        ),
        (
            "call gate to hv's 0xe008",
            0x0000_ec00_e008_1000,
            -EINVAL,
            0,
        ),
        (
            "call gate with parameter count 1",
            0x0000_ec01_e033_1000,
            -EINVAL,
            0,
        ),
    ];
    for (i, &(name, d, want, stored)) in cases.iter().enumerate() {
        let slot = i as u64 + 1;
        let before = DESC_PAGE.read_u64(i + 1);
        let got = update(ma + slot * 8, d);
        check!(r, "update_descriptor(page[{slot}], {name} {d:#x})", got => want);
        let after = DESC_PAGE.read_u64(i + 1);
        let expect = if want == 0 { stored } else { before };
        check!(r, "page[{slot}] holds", after => expect);
    }
    check!(r, "update_descriptor(misaligned)", update(ma + 4, 0) => -EINVAL);
    check!(r, "update_descriptor(in the L4)", update(env.l4_mfn << 12, 0) => -EINVAL);
    if let Some(m) = m2p_mfn() {
        check!(r, "update_descriptor(in an M2P frame)", update(m << 12, 0) => -EINVAL);
    }

    // Replace the GDT: the old frame is released.
    let g2 = env.spare().1;
    check!(r, "MMUEXT_CLEAR_PAGE second gdt frame", mmuext1(MMUEXT_CLEAR_PAGE, g2, 0) => 0);
    check!(r, "set_gdt([g2], 512)", set_gdt(&[g2], 512) => 0);
    check!(r, "lar 0x0b after the switch: null", lar(0x0b) => None);
    check!(r, "unmap the old frame's read-only view", w.unmap(4) => 0);
    check!(r, "the old gdt frame can be mapped writable again", w.map(5, g, KRW) => 0);
    check!(r, "unmap it", w.unmap(5) => 0);
    check!(r, "set_gdt([g2, g], 513): g is free again", set_gdt(&[g2, g], 513) => 0);
    check!(r, "lar 0x100b (frame 2, entry 1)", lar(0x100b) => Some(0x00c0_f300));
    check!(r, "set_gdt(none)", set_gdt(&[], 0) => 0);
    check!(r, "gdt frame writable after set_gdt(none)", w.map(5, g, KRW) => 0);
    check!(r, "unmap it", w.unmap(5) => 0);
    r.finish()
}
