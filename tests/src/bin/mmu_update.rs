//! `mmu_update` and `update_va_mapping` on a 64-bit PV dom0, as Xen 4.17
//! answers: validated writes of L1, L2 and L4 entries, the M2P update,
//! batches that stop at the first bad request with `*pdone` counting the
//! ones applied, and the refusals (page tables mapped writable, foreign and
//! absent frames, disallowed flags, the hypervisor's L4 slots, writable
//! linear page tables, a table mapping itself writable). After every
//! refusal the entry it aimed at is read back unchanged.
//!
//! Frames come from the domain's own unmapped memory (pfns from
//! `first_p2m_pfn`); a pinned L1 of the test's own, hooked into the empty L2
//! slot after the initial mapping, gives a window to map them in
//! (`tests::pvmm`). Last, the guest switches to a copy of its L4 with
//! `MMUEXT_NEW_BASEPTR` and back.
//!
//! @covers: mmu_update.normal_pt_update mmu_update.machphys_update mmu_update.pt_update_preserve_ad
//! @covers: mmu_update.pt_update_no_translate update_va_mapping update_va_mapping_otherdomain
//! @covers: mmuext_op.pin_l1_table mmuext_op.pin_l4_table mmuext_op.unpin_table mmuext_op.new_baseptr
//! @variant: smp4 smp=4
#![no_std]
#![no_main]

use guest_abi::errno::{EACCES, EBUSY, EFAULT, EINVAL, ENOSYS, EPERM, ESRCH};
use guest_abi::hypercall::{hypercall4, UPDATE_VA_MAPPING_OTHERDOMAIN};
use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::{
    MmuUpdate, DOMID_SELF, MMUEXT_CLEAR_PAGE, MMUEXT_NEW_BASEPTR, MMUEXT_PIN_L1_TABLE,
    MMUEXT_PIN_L4_TABLE, MMUEXT_UNPIN_TABLE, MMU_MACHPHYS_UPDATE, MMU_PT_UPDATE_NO_TRANSLATE,
    MMU_PT_UPDATE_PRESERVE_AD, UVMF_INVLPG,
};
use tests::check;
use tests::expect::{rc, BAD_POINTERS};
use tests::pvmm::{
    self, m2p_mfn, max_page, mfn_of, mmu_update, mmu_update_raw, mmuext1, pt_write, read_u64,
    rejected, uvm, write_u64, Env, Window, A, ALL_ONES_MFN, D, G, M2P, P, PCD, PSE, PWT, RW, US,
};

guest_abi::pv_guest!(main, name = "mmu_update");

const SELF: u64 = DOMID_SELF as u64;
/// The kernel data flags for an ordinary RW mapping.
const KRW: u64 = P | RW | US | A | D;
const KRO: u64 = P | US | A;

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("mmu_update");
    let Some(mut env) = Env::new(&mut r, si) else {
        r.finish()
    };
    let Some(w) = Window::new(&mut r, &mut env) else {
        r.finish()
    };
    let d1 = env.spare().1;
    let d2 = env.spare().1;
    let d3 = env.spare().1;
    mapping(&mut r, &w, d1);
    normal_update(&mut r, &w, d2);
    preserve_ad(&mut r, &w);
    machphys(&mut r, d1);
    refused_frames(&mut r, &env, &w);
    flags(&mut r, &env, &w, d2);
    raw_writes(&mut r, &w, d1, d3);
    commands_and_batches(&mut r, &env, &w, d1);
    linear(&mut r, &mut env, &w);
    pinning(&mut r, &mut env, &w);
    new_baseptr(&mut r, &mut env, &w);
    r.finish()
}

/// `update_va_mapping` of a data frame read-write and read-only, and its
/// `_otherdomain` form with `DOMID_SELF`.
fn mapping(r: &mut Report, w: &Window, d1: u64) {
    check!(r, "update_va_mapping page 1 = spare mfn {d1:#x} RW", w.map(1, d1, KRW) => 0);
    let e = w.pte(1);
    println!("L1 entry of page 1: {e:#x}");
    r.check(
        format_args!("L1 entry {e:#x} maps mfn {d1:#x} P|RW|US"),
        mfn_of(e) == d1 && e & (P | RW | US) == P | RW | US,
    );
    write_u64(w.va(1), 0xfeed_face_0000_0001);
    r.check(
        "a write through page 1 reads back",
        read_u64(w.va(1)) == 0xfeed_face_0000_0001,
    );
    check!(r, "update_va_mapping page 2 = the same frame read-only", w.map(2, d1, KRO) => 0);
    let e = w.pte(2);
    r.check(
        format_args!("L1 entry {e:#x} of page 2 is P|US, not RW, and reads the same data"),
        mfn_of(e) == d1 && e & (P | RW | US) == P | US && read_u64(w.va(2)) == read_u64(w.va(1)),
    );
    // SAFETY: maps a spare frame at an unused window page.
    let got = unsafe {
        hypercall4(
            UPDATE_VA_MAPPING_OTHERDOMAIN,
            w.va(3),
            (d1 << 12) | KRO,
            UVMF_INVLPG,
            SELF,
        )
    };
    check!(r, "update_va_mapping_otherdomain(DOMID_SELF) page 3 = that frame", got => 0);
    r.check(
        "page 3 reads the same data",
        read_u64(w.va(3)) == 0xfeed_face_0000_0001,
    );
    // SAFETY: as above; the domain does not exist.
    let got = unsafe {
        hypercall4(
            UPDATE_VA_MAPPING_OTHERDOMAIN,
            w.va(3),
            (d1 << 12) | KRO,
            UVMF_INVLPG,
            77,
        )
    };
    rejected(
        r,
        "update_va_mapping_otherdomain(domain 77)",
        got,
        -ESRCH,
        w.base + 3 * 8,
        w.pte(3),
    );
    check!(r, "update_va_mapping page 3 = 0 (unmap)", w.unmap(3) => 0);
    r.check(
        format_args!("L1 entry of page 3 is {:#x}", w.pte(3)),
        w.pte(3) == 0,
    );
    for (what, va) in [
        ("non-canonical", 0x8000_0000_0000u64),
        ("hypervisor range (M2P)", M2P),
        ("unmapped L2 (lower half)", 0x1000),
    ] {
        check!(r, "update_va_mapping {what} {va:#x}",
            uvm(va, (d1 << 12) | KRO, UVMF_INVLPG) => -EINVAL);
    }
}

/// `MMU_NORMAL_PT_UPDATE` and `MMU_PT_UPDATE_NO_TRANSLATE` of an L1 entry.
fn normal_update(r: &mut Report, w: &Window, d2: u64) {
    rc(
        r,
        format_args!(
            "mmu_update NORMAL L1 entry of page 4 = mfn {d2:#x} RW (ptr {:#x})",
            w.pte_ma(4)
        ),
        pt_write(w.pte_ma(4), (d2 << 12) | P | RW | US | A),
        0,
    );
    write_u64(w.va(4), 0x5eed_0000_0000_0004);
    r.check(
        format_args!("page 4 ({:#x}) is writable and reads back", w.pte(4)),
        mfn_of(w.pte(4)) == d2 && read_u64(w.va(4)) == 0x5eed_0000_0000_0004,
    );
    let got = mmu_update(
        &[MmuUpdate {
            ptr: w.pte_ma(5) | MMU_PT_UPDATE_NO_TRANSLATE,
            val: (d2 << 12) | KRO,
        }],
        None,
    );
    check!(r, "mmu_update NO_TRANSLATE L1 entry of page 5", got => 0);
    r.check(
        "page 5 reads the same frame",
        mfn_of(w.pte(5)) == d2 && read_u64(w.va(5)) == 0x5eed_0000_0000_0004,
    );
}

/// `MMU_PT_UPDATE_PRESERVE_AD` keeps the accessed and dirty bits the CPU
/// set; a NORMAL update writes them as given.
fn preserve_ad(r: &mut Report, w: &Window) {
    let e = w.pte(4);
    r.check(
        format_args!("page 4 entry {e:#x} has A|D after the write"),
        e & (A | D) == A | D,
    );
    let plain = e & ADDR | P | RW | US;
    let got = mmu_update(
        &[MmuUpdate {
            ptr: w.pte_ma(4) | MMU_PT_UPDATE_PRESERVE_AD,
            val: plain,
        }],
        None,
    );
    check!(r, "mmu_update PRESERVE_AD page 4 = {plain:#x}", got => 0);
    let e = w.pte(4);
    r.check(
        format_args!("entry {e:#x} kept A|D"),
        e & (A | D) == A | D && mfn_of(e) == mfn_of(plain),
    );
    check!(r, "mmu_update NORMAL page 4 = {plain:#x}", pt_write(w.pte_ma(4), plain) => 0);
    let e = w.pte(4);
    r.check(
        format_args!("entry {e:#x} has neither A nor D"),
        e & (A | D) == 0 && e & (P | RW) == P | RW,
    );
}

const ADDR: u64 = pvmm::ADDR_MASK;

/// `MMU_MACHPHYS_UPDATE` sets an M2P entry, readable at once.
fn machphys(r: &mut Report, d1: u64) {
    let slot = M2P + d1 * 8;
    let orig = read_u64(slot);
    let set = |v: u64| {
        mmu_update(
            &[MmuUpdate {
                ptr: (d1 << 12) | MMU_MACHPHYS_UPDATE,
                val: v,
            }],
            None,
        )
    };
    check!(r, "MMU_MACHPHYS_UPDATE M2P[{d1:#x}] = 0x12345", set(0x12345) => 0);
    r.check(
        format_args!("M2P[{d1:#x}] reads {:#x}", read_u64(slot)),
        read_u64(slot) == 0x12345,
    );
    check!(r, "MMU_MACHPHYS_UPDATE back to pfn {orig:#x}", set(orig) => 0);
    r.check("M2P entry restored", read_u64(slot) == orig);
    let got = mmu_update(
        &[MmuUpdate {
            ptr: (ALL_ONES_MFN << 12) | MMU_MACHPHYS_UPDATE,
            val: 1,
        }],
        None,
    );
    check!(r, "MMU_MACHPHYS_UPDATE of mfn all-ones", got => -EINVAL);
    if let Some(m) = m2p_mfn() {
        let before = read_u64(M2P + m * 8);
        let got = mmu_update(
            &[MmuUpdate {
                ptr: (m << 12) | MMU_MACHPHYS_UPDATE,
                val: before,
            }],
            None,
        );
        check!(r, "MMU_MACHPHYS_UPDATE of an M2P frame {m:#x} (not ours)", got => -EINVAL);
    }
}

/// Frames a mapping may not name, or not writable.
fn refused_frames(r: &mut Report, env: &Env, w: &Window) {
    let e6 = w.base + 6 * 8;
    let cases = [
        ("the window's pinned L1", w.l1_mfn, -EBUSY),
        ("the L4 in use", env.l4_mfn, -EBUSY),
        ("the bootstrap L2", env.l2_mfn, -EBUSY),
    ];
    for (what, mfn, want) in cases {
        rejected(
            r,
            format_args!("update_va_mapping page 6 = {what} {mfn:#x} RW"),
            w.map(6, mfn, KRW),
            want,
            e6,
            0,
        );
        let got = pt_write(w.pte_ma(6), (mfn << 12) | KRW);
        rejected(
            r,
            format_args!("mmu_update L1 entry = {what} RW"),
            got,
            want,
            e6,
            0,
        );
    }
    check!(r, "update_va_mapping page 6 = the L4 read-only", w.map(6, env.l4_mfn, KRO) => 0);
    r.check(
        "L4[511] read through it is the bootstrap L4's",
        read_u64(w.va(6) + 511 * 8) == read_u64(env.l4 + 511 * 8),
    );
    check!(r, "unmap page 6", w.unmap(6) => 0);
    rejected(
        r,
        "update_va_mapping page 6 = mfn all-ones",
        w.map(6, ALL_ONES_MFN, KRO),
        -EINVAL,
        e6,
        0,
    );
    rejected(
        r,
        "update_va_mapping page 6 = mfn 0xffffffffe (no RAM, no MMIO permission)",
        w.map(6, ALL_ONES_MFN - 1, KRO),
        -EPERM,
        e6,
        0,
    );
    let top = max_page();
    println!("maximum_ram_page {top:#x}");
    if let Some(m) = m2p_mfn() {
        for (what, f) in [("read-only", KRO), ("RW", KRW)] {
            rejected(
                r,
                format_args!(
                    "update_va_mapping page 6 = M2P frame {m:#x} (the hypervisor's) {what}"
                ),
                w.map(6, m, f),
                -EBUSY,
                e6,
                0,
            );
        }
    }
    let si_mfn = env.si.shared_info >> 12;
    rejected(
        r,
        format_args!("update_va_mapping page 6 = shared_info {si_mfn:#x} with PCD|PWT"),
        w.map(6, si_mfn, KRW | PCD | PWT),
        -EACCES,
        e6,
        0,
    );
    check!(r, "update_va_mapping page 6 = shared_info RW", w.map(6, si_mfn, KRW) => 0);
    check!(r, "unmap page 6", w.unmap(6) => 0);
}

/// Flags each level refuses, and the cache attributes a dom0 may use.
fn flags(r: &mut Report, env: &Env, w: &Window, d2: u64) {
    for (what, f) in [("PCD|PWT", PCD | PWT), ("PAT", PSE)] {
        check!(r, "update_va_mapping page 7 = data frame with {what} (dom0 may)",
            w.map(7, d2, KRO | f) => 0);
        let e = w.pte(7);
        r.check(
            format_args!("entry {e:#x} keeps {what}"),
            e & f == f && mfn_of(e) == d2,
        );
    }
    check!(r, "unmap page 7", w.unmap(7) => 0);
    check!(r, "update_va_mapping page 7 = data frame with G", w.map(7, d2, KRO | G) => 0);
    check!(r, "unmap page 7", w.unmap(7) => 0);

    let slot = pvmm::idx(w.base, 21) + 1;
    if slot < 512 && read_u64(env.l2 + slot * 8) == 0 {
        let ma = (env.l2_mfn << 12) + slot * 8;
        let va = env.l2 + slot * 8;
        for (what, f) in [("PSE", PSE), ("G", G), ("PCD", PCD), ("PWT", PWT)] {
            rejected(
                r,
                format_args!("mmu_update L2[{slot}] = the L1 with {what}"),
                pt_write(ma, (w.l1_mfn << 12) | P | RW | US | A | f),
                -EINVAL,
                va,
                0,
            );
        }
        rejected(
            r,
            format_args!("mmu_update L2[{slot}] = a writable-mapped data frame"),
            pt_write(ma, (d2 << 12) | P | RW | US | A),
            -EINVAL,
            va,
            0,
        );
        rejected(
            r,
            format_args!("mmu_update L2[{slot}] = mfn all-ones"),
            pt_write(ma, (ALL_ONES_MFN << 12) | P | RW | US | A),
            -EINVAL,
            va,
            0,
        );
    } else {
        r.error(format_args!("no free L2 slot after the window ({slot})"));
    }

    for slot in [256u64, 258, 260, 261, 271] {
        let va = env.l4 + slot * 8;
        let cur = read_u64(va);
        rejected(
            r,
            format_args!("mmu_update hypervisor L4[{slot}] = its own value {cur:#x}"),
            pt_write((env.l4_mfn << 12) + slot * 8, cur),
            -EINVAL,
            va,
            cur,
        );
    }
    let va = env.l4 + 511 * 8;
    let cur = read_u64(va);
    for (what, f) in [("PSE", PSE), ("G", G), ("PCD", PCD)] {
        rejected(
            r,
            format_args!("mmu_update L4[511] = itself with {what}"),
            pt_write((env.l4_mfn << 12) + 511 * 8, cur | f),
            -EINVAL,
            va,
            cur,
        );
    }
}

/// A request whose `ptr` is in a plain data page is a raw 8-byte store.
fn raw_writes(r: &mut Report, w: &Window, d1: u64, d3: u64) {
    check!(r, "mmu_update ptr into the RW-mapped data frame of page 1, +16",
        pt_write((d1 << 12) + 16, 0x1122_3344_5566_7788) => 0);
    r.check(
        "page 1 + 16 reads 0x1122334455667788",
        read_u64(w.va(1) + 16) == 0x1122_3344_5566_7788,
    );
    check!(r, "mmu_update ptr into an unmapped spare frame {d3:#x}, +8",
        pt_write((d3 << 12) + 8, 0x8877_6655_4433_2211) => 0);
    check!(r, "map it at page 8", w.map(8, d3, KRO) => 0);
    r.check(
        "it reads 0x8877665544332211 at +8",
        read_u64(w.va(8) + 8) == 0x8877_6655_4433_2211,
    );
    check!(r, "unmap page 8", w.unmap(8) => 0);
    let got = pt_write(ALL_ONES_MFN << 12, 0);
    check!(r, "mmu_update ptr in mfn all-ones", got => -EINVAL);
    if let Some(m) = m2p_mfn() {
        let before = read_u64(M2P);
        let got = pt_write(m << 12, 0x4242);
        rejected(
            r,
            format_args!("mmu_update ptr in an M2P frame {m:#x}"),
            got,
            -EINVAL,
            M2P,
            before,
        );
    }
}

/// Unknown commands, batches that stop early, bad lists and domains.
fn commands_and_batches(r: &mut Report, env: &Env, w: &Window, d1: u64) {
    let e9 = w.base + 9 * 8;
    for cmd in 4..8u64 {
        let got = mmu_update(
            &[MmuUpdate {
                ptr: w.pte_ma(9) | cmd,
                val: (d1 << 12) | KRO,
            }],
            None,
        );
        rejected(
            r,
            format_args!("mmu_update command {cmd} on the L1 entry of page 9"),
            got,
            -ENOSYS,
            e9,
            0,
        );
    }
    let l4_256 = read_u64(env.l4 + 256 * 8);
    let reqs = [
        MmuUpdate {
            ptr: w.pte_ma(9),
            val: (d1 << 12) | KRO,
        },
        MmuUpdate {
            ptr: w.pte_ma(10),
            val: (d1 << 12) | KRO,
        },
        MmuUpdate {
            ptr: (env.l4_mfn << 12) + 256 * 8,
            val: l4_256,
        },
        MmuUpdate {
            ptr: w.pte_ma(11),
            val: (d1 << 12) | KRO,
        },
    ];
    let mut done = 99u32;
    let got = mmu_update(&reqs, Some(&mut done));
    check!(r, "a batch of 4 whose 3rd is L4[256]", got => -EINVAL);
    r.check(format_args!("*pdone {done} is 2"), done == 2);
    r.check(
        format_args!(
            "the first two applied ({:#x}, {:#x}), the 4th not ({:#x})",
            w.pte(9),
            w.pte(10),
            w.pte(11)
        ),
        mfn_of(w.pte(9)) == d1 && mfn_of(w.pte(10)) == d1 && w.pte(11) == 0,
    );
    let mut done = 7u32;
    let got = mmu_update(&reqs[..2], Some(&mut done));
    check!(r, "the first two again (same values)", got => 0);
    r.check(format_args!("*pdone {done} is 2"), done == 2);
    check!(r, "a batch of 0 requests", mmu_update_raw(reqs.as_ptr() as u64, 0, 0, SELF) => 0);

    for &(what, ptr) in BAD_POINTERS {
        let mut done = 7u32;
        let got = mmu_update_raw(ptr, 1, core::ptr::from_mut(&mut done) as u64, SELF);
        check!(r, "mmu_update reqs {what}", got => -EFAULT);
        // A list Xen's access_ok() refuses fails before *pdone is written;
        // one that faults in the copy ends the loop, which writes 0.
        let want = if ptr < 0x8000_0000_0000 { 0 } else { 7 };
        r.check(format_args!("*pdone {done} is {want}"), done == want);
    }
    let got = mmu_update_raw(0x1000, 0x7fff_ffff, 0, SELF);
    check!(r, "mmu_update of 0x7fffffff requests at 0x1000", got => -EFAULT);
    let one = [MmuUpdate {
        ptr: w.pte_ma(11),
        val: (d1 << 12) | KRO,
    }];
    let e11 = w.base + 11 * 8;
    for (what, dom, want) in [
        ("page owner domain 77", 77u64, -ESRCH),
        ("page-table owner domain 77", (78 << 16) | SELF, -ESRCH),
    ] {
        let got = mmu_update_raw(one.as_ptr() as u64, 1, 0, dom);
        rejected(r, format_args!("mmu_update, {what}"), got, want, e11, 0);
    }
    let got = mmu_update_raw(one.as_ptr() as u64, 1, 0, 0);
    rejected(
        r,
        "mmu_update with foreigndom = own id 0 (not DOMID_SELF)",
        got,
        -ESRCH,
        e11,
        0,
    );
    for i in 9..12 {
        let _ = w.unmap(i);
    }
}

/// Linear page tables: a read-only L4 self-map and an L4 slot pointing at
/// another pinned L4 are allowed, writable ones are not.
fn linear(r: &mut Report, env: &mut Env, w: &Window) {
    let (s, s2) = (300u64, 301u64);
    let (l4, l4_mfn) = (env.l4, env.l4_mfn);
    let ma = |slot: u64| (l4_mfn << 12) + slot * 8;
    let va = |slot: u64| l4 + slot * 8;
    if read_u64(va(s)) != 0 || read_u64(va(s2)) != 0 || read_u64(va(302)) != 0 {
        r.error("L4 slots 300-302 are not empty");
        return;
    }
    rejected(
        r,
        format_args!("mmu_update L4[{s2}] = the L4 itself, RW"),
        pt_write(ma(s2), (env.l4_mfn << 12) | P | RW | US | A),
        -EINVAL,
        va(s2),
        0,
    );
    if check!(r, "mmu_update L4[{s}] = the L4 itself, read-only",
        pt_write(ma(s), (env.l4_mfn << 12) | P | US | A) => 0)
    {
        let e = read_u64(va(s));
        r.check(
            format_args!("L4[{s}] reads {e:#x}: the L4, not RW"),
            mfn_of(e) == env.l4_mfn && e & (P | RW) == P,
        );
        let sext = |v: u64| {
            if v & (1 << 47) != 0 {
                v | 0xffff_0000_0000_0000
            } else {
                v
            }
        };
        let lin_l4 = sext((s << 39) | (s << 30) | (s << 21) | (s << 12));
        r.check(
            format_args!("through it, L4[511] at {lin_l4:#x} reads the L4's"),
            read_u64(lin_l4 + 511 * 8) == read_u64(va(511)),
        );
        let lin_l1e = sext(s << 39) + ((w.va(1) & 0xffff_ffff_ffff) >> 12) * 8;
        r.check(
            format_args!("through it, window page 1's L1 entry at {lin_l1e:#x} reads the L1's"),
            read_u64(lin_l1e) == w.pte(1),
        );
        check!(r, "mmu_update L4[{s}] = 0", pt_write(ma(s), 0) => 0);
    }

    let other = env.spare().1;
    let ok = check!(r, "clear spare mfn {other:#x}",
        mmuext1(MMUEXT_CLEAR_PAGE, other, 0) => 0)
        && check!(r, "pin it as an L4", mmuext1(MMUEXT_PIN_L4_TABLE, other, 0) => 0);
    if !ok {
        return;
    }
    rejected(
        r,
        format_args!("mmu_update L4[{s2}] = the other L4, RW"),
        pt_write(ma(s2), (other << 12) | P | RW | US | A),
        -EINVAL,
        va(s2),
        0,
    );
    if check!(r, "mmu_update L4[302] = the other L4, read-only",
        pt_write(ma(302), (other << 12) | P | US | A) => 0)
    {
        check!(r, "mmu_update L4[302] = 0", pt_write(ma(302), 0) => 0);
    }
    check!(r, "unpin the other L4", mmuext1(MMUEXT_UNPIN_TABLE, other, 0) => 0);
}

/// Pinning: a table mapping itself writable, unpinning what is not pinned,
/// and unpinning a table that is still in use.
fn pinning(r: &mut Report, env: &mut Env, w: &Window) {
    let t = env.spare().1;
    check!(r, "clear spare mfn {t:#x}", mmuext1(MMUEXT_CLEAR_PAGE, t, 0) => 0);
    check!(r, "raw write of entry 0 = itself RW into the untyped frame",
        pt_write(t << 12, (t << 12) | P | RW | US | A) => 0);
    check!(r, "pin as L1 a frame that maps itself writable",
        mmuext1(MMUEXT_PIN_L1_TABLE, t, 0) => -EBUSY);
    check!(r, "the frame is untyped again: MMUEXT_CLEAR_PAGE",
        mmuext1(MMUEXT_CLEAR_PAGE, t, 0) => 0);
    check!(r, "raw write of entry 0 = itself read-only",
        pt_write(t << 12, (t << 12) | P | US | A) => 0);
    check!(r, "pin as L1 a frame that maps itself read-only",
        mmuext1(MMUEXT_PIN_L1_TABLE, t, 0) => 0);
    check!(r, "unpin it", mmuext1(MMUEXT_UNPIN_TABLE, t, 0) => 0);
    check!(r, "unpin it again (not pinned)", mmuext1(MMUEXT_UNPIN_TABLE, t, 0) => -EINVAL);
    check!(r, "unpin a plain data frame",
        mmuext1(MMUEXT_UNPIN_TABLE, mfn_of(w.pte(1)), 0) => -EINVAL);

    check!(r, "unpin the window's L1 (still hooked in the L2)",
        mmuext1(MMUEXT_UNPIN_TABLE, w.l1_mfn, 0) => 0);
    rejected(
        r,
        "update_va_mapping page 12 = that L1 RW (the L2 still types it)",
        w.map(12, w.l1_mfn, KRW),
        -EBUSY,
        w.base + 12 * 8,
        0,
    );
    check!(r, "MMUEXT_CLEAR_PAGE of it", mmuext1(MMUEXT_CLEAR_PAGE, w.l1_mfn, 0) => -EINVAL);
    r.check(
        "the window still works (page 1 reads back)",
        read_u64(w.va(1)) == 0xfeed_face_0000_0001,
    );
    check!(r, "pin it again", mmuext1(MMUEXT_PIN_L1_TABLE, w.l1_mfn, 0) => 0);
    check!(r, "pin it once more", mmuext1(MMUEXT_PIN_L1_TABLE, w.l1_mfn, 0) => -EINVAL);
}

/// A new L4 holding the guest's kernel slot, switched to and back.
fn new_baseptr(r: &mut Report, env: &mut Env, w: &Window) {
    check!(r, "MMUEXT_NEW_BASEPTR to an L1", mmuext1(MMUEXT_NEW_BASEPTR, w.l1_mfn, 0) => -EINVAL);
    check!(r, "MMUEXT_NEW_BASEPTR to mfn all-ones",
        mmuext1(MMUEXT_NEW_BASEPTR, ALL_ONES_MFN, 0) => -EINVAL);
    let n = env.spare().1;
    let ok = rc(
        r,
        format_args!("clear spare mfn {n:#x}"),
        mmuext1(MMUEXT_CLEAR_PAGE, n, 0),
        0,
    ) && check!(r, "pin it as an L4", mmuext1(MMUEXT_PIN_L4_TABLE, n, 0) => 0)
        && check!(r, "map it read-only at page 13", w.map(13, n, KRO) => 0);
    if !ok {
        return;
    }
    let nva = w.va(13);
    let m2p_cur = read_u64(env.l4 + 256 * 8);
    let m2p_new = read_u64(nva + 256 * 8);
    r.check(
        format_args!("the pinned L4's slot 256 (M2P) is {m2p_new:#x}: empty until it is a base"),
        m2p_new == 0,
    );
    for i in 257..272u64 {
        let (cur, new) = (read_u64(env.l4 + i * 8), read_u64(nva + i * 8));
        if cur != 0 || new != 0 {
            println!("hypervisor slot {i}: current {cur:#x}, pinned {new:#x}");
        }
    }
    let guest_empty = (0..512u64)
        .filter(|i| !(256..272).contains(i))
        .all(|i| read_u64(nva + i * 8) == 0);
    r.check("its guest slots are empty", guest_empty);
    let k = read_u64(env.l4 + 511 * 8);
    let ok = check!(r, "mmu_update new L4[511] = the kernel's {k:#x}",
        pt_write((n << 12) + 511 * 8, k) => 0)
        && check!(r, "mmu_update new L4[300] = itself read-only",
            pt_write((n << 12) + 300 * 8, (n << 12) | P | US | A) => 0);
    if !ok {
        return;
    }
    if !check!(r, "MMUEXT_NEW_BASEPTR to the new L4", mmuext1(MMUEXT_NEW_BASEPTR, n, 0) => 0) {
        return;
    }
    let lin = 0xffff_0000_0000_0000 | (300 << 39) | (300 << 30) | (300 << 21) | (300 << 12);
    let e = read_u64(lin + 300 * 8);
    r.check(
        format_args!("running on it: its self-map reads L4[300] = {e:#x}, the new L4"),
        mfn_of(e) == n,
    );
    let m2p_new = read_u64(nva + 256 * 8);
    r.check(
        format_args!(
            "its slot 256 is now the M2P, {m2p_new:#x} as pt_base's {m2p_cur:#x} (but for A)"
        ),
        (m2p_new ^ m2p_cur) & !A == 0,
    );
    check!(r, "MMUEXT_NEW_BASEPTR back to pt_base",
        mmuext1(MMUEXT_NEW_BASEPTR, env.l4_mfn, 0) => 0);
    r.check(
        "back on pt_base: page 1 reads back",
        read_u64(w.va(1)) == 0xfeed_face_0000_0001,
    );
    check!(r, "unmap page 13", w.unmap(13) => 0);
    check!(r, "unpin the new L4", mmuext1(MMUEXT_UNPIN_TABLE, n, 0) => 0);
}
