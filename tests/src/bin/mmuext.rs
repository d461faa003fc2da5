//! `mmuext_op` and `multicall` on a 64-bit PV dom0, as Xen 4.17 answers:
//! each command's happy path and refusals (pinning every level, pinning
//! twice or what is not ours, `SET_LDT` limits, superpage marks, unknown
//! commands, `CLEAR_PAGE`/`COPY_PAGE` on page tables, TLB and cache
//! flushes, `NEW_USER_BASEPTR`), batches that stop at the first bad op with
//! `*pdone`, a batch resumed by the guest itself with the preempted bit (the
//! count accumulates in `*pdone`), and a multicall whose entries each get
//! their own result.
//!
//! Frames come from the domain's own unmapped memory and are looked at
//! through a window of the test's own (`tests::pvmm`).
//!
//! @covers: mmuext_op.pin_l1_table mmuext_op.pin_l2_table mmuext_op.pin_l3_table mmuext_op.pin_l4_table
//! @covers: mmuext_op.unpin_table mmuext_op.new_user_baseptr mmuext_op.tlb_flush_local mmuext_op.invlpg_local
//! @covers: mmuext_op.tlb_flush_multi mmuext_op.invlpg_multi mmuext_op.tlb_flush_all mmuext_op.invlpg_all
//! @covers: mmuext_op.flush_cache mmuext_op.flush_cache_global mmuext_op.set_ldt mmuext_op.clear_page
//! @covers: mmuext_op.copy_page mmuext_op.mark_super mmuext_op.unmark_super multicall
//! @variant: smp4 smp=4
#![no_std]
#![no_main]

use guest_abi::errno::{EFAULT, EINVAL, ENOSYS, EOPNOTSUPP, ESRCH};
use guest_abi::hypercall::{
    hypercall2, MEMORY_OP, MMUEXT_OP, MMU_UPDATE, MULTICALL, UPDATE_VA_MAPPING, XEN_VERSION,
};
use guest_abi::memory::XENMEM_MAXIMUM_RAM_PAGE;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::{
    MmuUpdate, MmuextOp, MulticallEntry, DOMID_SELF, MMUEXT_CLEAR_PAGE, MMUEXT_COPY_PAGE,
    MMUEXT_FLUSH_CACHE, MMUEXT_FLUSH_CACHE_GLOBAL, MMUEXT_INVLPG_ALL, MMUEXT_INVLPG_LOCAL,
    MMUEXT_INVLPG_MULTI, MMUEXT_MARK_SUPER, MMUEXT_NEW_USER_BASEPTR, MMUEXT_PIN_L1_TABLE,
    MMUEXT_PIN_L2_TABLE, MMUEXT_PIN_L3_TABLE, MMUEXT_PIN_L4_TABLE, MMUEXT_SET_LDT,
    MMUEXT_TLB_FLUSH_ALL, MMUEXT_TLB_FLUSH_LOCAL, MMUEXT_TLB_FLUSH_MULTI, MMUEXT_UNMARK_SUPER,
    MMUEXT_UNPIN_TABLE, UVMF_INVLPG,
};
use tests::check;
use tests::expect::BAD_POINTERS;
use tests::pvmm::{
    m2p_mfn, max_page, mfn_of, mmu_update_raw, mmuext, mmuext1, mmuext_raw, op, read_u64,
    write_u64, Env, Window, A, ALL_ONES_MFN, D, P, RW, US,
};

guest_abi::pv_guest!(main, name = "mmuext");

const SELF: u64 = DOMID_SELF as u64;
const KRW: u64 = P | RW | US | A | D;
const KRO: u64 = P | US | A;
const PREEMPTED: u64 = 0x8000_0000;

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("mmuext");
    let Some(mut env) = Env::new(&mut r, si) else {
        r.finish()
    };
    let Some(w) = Window::new(&mut r, &mut env) else {
        r.finish()
    };
    pins(&mut r, &mut env, &w);
    ldt_and_unknown(&mut r, &w);
    clear_and_copy(&mut r, &mut env, &w);
    flushes(&mut r, &w);
    user_baseptr(&mut r, &mut env, &w);
    batches(&mut r, &mut env, &w);
    multicall(&mut r, &mut env, &w);
    unpinning_the_live_l4_keeps_it_typed(&mut r, &env);
    r.finish()
}

/// Regression (found by hypercall_fuzz): the vCPU's base pointer holds its
/// own type reference on the live L4, so unpinning dom0's initial table
/// (which the builder leaves pinned, as Xen does) must not turn it into an
/// ordinary page that COPY_PAGE or CLEAR_PAGE could overwrite.
fn unpinning_the_live_l4_keeps_it_typed(r: &mut Report, env: &Env) {
    check!(r, "unpin the live L4 (pt_base)", mmuext1(MMUEXT_UNPIN_TABLE, env.l4_mfn, 0) => 0);
    check!(r, "COPY_PAGE onto the live, unpinned L4 (still an L4: -EINVAL)",
        mmuext1(MMUEXT_COPY_PAGE, env.l4_mfn, env.l4_mfn) => -EINVAL);
    check!(r, "CLEAR_PAGE of it (-EINVAL)", mmuext1(MMUEXT_CLEAR_PAGE, env.l4_mfn, 0) => -EINVAL);
    check!(r, "pin it again", mmuext1(MMUEXT_PIN_L4_TABLE, env.l4_mfn, 0) => 0);
}

/// A cleared spare frame.
fn cleared(r: &mut Report, env: &mut Env) -> u64 {
    let m = env.spare().1;
    check!(r, "MMUEXT_CLEAR_PAGE spare mfn {m:#x}", mmuext1(MMUEXT_CLEAR_PAGE, m, 0) => 0);
    m
}

fn pins(r: &mut Report, env: &mut Env, w: &Window) {
    let levels = [
        ("L1", MMUEXT_PIN_L1_TABLE),
        ("L2", MMUEXT_PIN_L2_TABLE),
        ("L3", MMUEXT_PIN_L3_TABLE),
        ("L4", MMUEXT_PIN_L4_TABLE),
    ];
    for (name, cmd) in levels {
        let m = cleared(r, env);
        check!(r, "PIN_{name}_TABLE of it", mmuext1(cmd, m, 0) => 0);
        check!(r, "PIN_{name}_TABLE again", mmuext1(cmd, m, 0) => -EINVAL);
        let other = if cmd == MMUEXT_PIN_L1_TABLE {
            MMUEXT_PIN_L2_TABLE
        } else {
            MMUEXT_PIN_L1_TABLE
        };
        check!(r, "pin the pinned {name} as another level", mmuext1(other, m, 0) => -EINVAL);
        check!(r, "MMUEXT_UNPIN_TABLE the {name}", mmuext1(MMUEXT_UNPIN_TABLE, m, 0) => 0);
        check!(r, "MMUEXT_UNPIN_TABLE the {name} again",
            mmuext1(MMUEXT_UNPIN_TABLE, m, 0) => -EINVAL);
        check!(r, "PIN_{name}_TABLE of mfn all-ones", mmuext1(cmd, ALL_ONES_MFN, 0) => -EINVAL);
        if let Some(m2p) = m2p_mfn() {
            check!(r, "PIN_{name}_TABLE of an M2P frame {m2p:#x} (the hypervisor's)",
                mmuext1(cmd, m2p, 0) => -EINVAL);
        }
    }
    let d = env.spare().1;
    check!(r, "map a spare frame RW at page 1", w.map(1, d, KRW) => 0);
    check!(r, "PIN_L1_TABLE of that writable-mapped frame",
        mmuext1(MMUEXT_PIN_L1_TABLE, d, 0) => -EINVAL);
    check!(r, "unmap page 1", w.unmap(1) => 0);
    check!(r, "UNPIN_TABLE of mfn all-ones",
        mmuext1(MMUEXT_UNPIN_TABLE, ALL_ONES_MFN, 0) => -EINVAL);
}

fn ldt_and_unknown(r: &mut Report, w: &Window) {
    let va = w.va(32);
    for (what, addr, n, want) in [
        ("8193 entries", va, 8193u64, -EINVAL),
        ("0xffffffff entries", va, 0xffff_ffff, -EINVAL),
        ("an unaligned base", va + 8, 1, -EINVAL),
        ("a non-canonical base", 0x8000_0000_0000, 1, -EINVAL),
        (
            "a base in the hypervisor range",
            0xffff_8000_0000_0000,
            1,
            -EINVAL,
        ),
        ("8192 entries at an aligned base", va, 8192, 0),
        ("16 entries", va, 16, 0),
        ("0 entries and a non-canonical base", 0x8000_0000_0001, 0, 0),
        ("0 entries", 0, 0, 0),
    ] {
        check!(r, "MMUEXT_SET_LDT {what} ({addr:#x}, {n})",
            mmuext1(MMUEXT_SET_LDT, addr, n) => want);
    }
    check!(r, "MMUEXT_SET_LDT: only the low 32 bits of nr_ents count (1<<32 | 0)",
        mmuext1(MMUEXT_SET_LDT, 0x8000_0000_0000, 1 << 32) => 0);
    for (name, cmd) in [
        ("MARK_SUPER", MMUEXT_MARK_SUPER),
        ("UNMARK_SUPER", MMUEXT_UNMARK_SUPER),
    ] {
        check!(r, "MMUEXT_{name} of the window's L1", mmuext1(cmd, w.l1_mfn, 0) => -EOPNOTSUPP);
    }
    for cmd in [14u32, 21, 22, 0x100, 0xffff_ffff] {
        check!(r, "mmuext_op command {cmd}", mmuext1(cmd, 0, 0) => -ENOSYS);
    }
}

fn clear_and_copy(r: &mut Report, env: &mut Env, w: &Window) {
    let (src, dst) = (env.spare().1, env.spare().1);
    let ok = check!(r, "map a source frame RW at page 2", w.map(2, src, KRW) => 0)
        && check!(r, "map a destination frame RO at page 3", w.map(3, dst, KRO) => 0);
    if !ok {
        return;
    }
    for i in 0..512 {
        write_u64(w.va(2) + i * 8, 0xc0de_0000_0000_0000 | i);
    }
    check!(r, "MMUEXT_COPY_PAGE source -> destination", mmuext1(MMUEXT_COPY_PAGE, dst, src) => 0);
    let same = (0..512).all(|i| read_u64(w.va(3) + i * 8) == 0xc0de_0000_0000_0000 | i);
    r.check("the destination reads the source's 512 words", same);
    check!(r, "MMUEXT_CLEAR_PAGE the destination (mapped read-only)",
        mmuext1(MMUEXT_CLEAR_PAGE, dst, 0) => 0);
    r.check(
        "it reads all zero",
        (0..512).all(|i| read_u64(w.va(3) + i * 8) == 0),
    );
    check!(r, "MMUEXT_CLEAR_PAGE the source (mapped RW)", mmuext1(MMUEXT_CLEAR_PAGE, src, 0) => 0);
    r.check(
        "it reads all zero",
        (0..512).all(|i| read_u64(w.va(2) + i * 8) == 0),
    );
    check!(r, "MMUEXT_COPY_PAGE from the window's L1 (any type may be a source)",
        mmuext1(MMUEXT_COPY_PAGE, dst, w.l1_mfn) => 0);
    r.check(
        "the destination reads the L1's entries",
        (0..512).all(|i| read_u64(w.va(3) + i * 8) == w.pte(i)),
    );
    let l1_before = w.pte(2);
    let l1_pte = w.base + 2 * 8;
    for (what, cmd, a1, a2) in [
        (
            "COPY_PAGE into the pinned L1",
            MMUEXT_COPY_PAGE,
            w.l1_mfn,
            src,
        ),
        (
            "CLEAR_PAGE of the pinned L1",
            MMUEXT_CLEAR_PAGE,
            w.l1_mfn,
            0,
        ),
    ] {
        let got = mmuext1(cmd, a1, a2);
        tests::pvmm::rejected(
            r,
            format_args!("MMUEXT_{what}"),
            got,
            -EINVAL,
            l1_pte,
            l1_before,
        );
    }
    let mut bad = [
        (
            "COPY_PAGE into mfn all-ones",
            MMUEXT_COPY_PAGE,
            ALL_ONES_MFN,
            src,
        ),
        (
            "COPY_PAGE from mfn all-ones",
            MMUEXT_COPY_PAGE,
            dst,
            ALL_ONES_MFN,
        ),
        (
            "CLEAR_PAGE of mfn all-ones",
            MMUEXT_CLEAR_PAGE,
            ALL_ONES_MFN,
            0,
        ),
        ("CLEAR_PAGE of an M2P frame", MMUEXT_CLEAR_PAGE, 0, 0),
        ("COPY_PAGE into an M2P frame", MMUEXT_COPY_PAGE, 0, src),
        ("COPY_PAGE from an M2P frame", MMUEXT_COPY_PAGE, dst, 0),
    ];
    let m2p = m2p_mfn().unwrap_or(ALL_ONES_MFN);
    for b in &mut bad[3..] {
        if b.2 == 0 {
            b.2 = m2p;
        } else {
            b.3 = m2p;
        }
    }
    for (what, cmd, a1, a2) in bad {
        check!(r, "MMUEXT_{what}", mmuext1(cmd, a1, a2) => -EINVAL);
    }
    let _ = w.unmap(2);
    let _ = w.unmap(3);
}

fn flushes(r: &mut Report, w: &Window) {
    let mask: u64 = 1;
    let pmask = core::ptr::from_ref(&mask) as u64;
    for (what, cmd, a1, a2, want) in [
        ("TLB_FLUSH_LOCAL", MMUEXT_TLB_FLUSH_LOCAL, 0, 0, 0),
        ("TLB_FLUSH_ALL", MMUEXT_TLB_FLUSH_ALL, 0, 0, 0),
        (
            "INVLPG_LOCAL of a window page",
            MMUEXT_INVLPG_LOCAL,
            w.va(0),
            0,
            0,
        ),
        (
            "INVLPG_LOCAL non-canonical",
            MMUEXT_INVLPG_LOCAL,
            0x8000_0000_0000,
            0,
            0,
        ),
        (
            "INVLPG_ALL of a window page",
            MMUEXT_INVLPG_ALL,
            w.va(0),
            0,
            0,
        ),
        (
            "INVLPG_ALL non-canonical",
            MMUEXT_INVLPG_ALL,
            0x8000_0000_0000,
            0,
            0,
        ),
        (
            "INVLPG_ALL in the hypervisor range",
            MMUEXT_INVLPG_ALL,
            0xffff_8000_0000_0000,
            0,
            0,
        ),
        (
            "TLB_FLUSH_MULTI vCPU 0",
            MMUEXT_TLB_FLUSH_MULTI,
            0,
            pmask,
            0,
        ),
        (
            "INVLPG_MULTI vCPU 0",
            MMUEXT_INVLPG_MULTI,
            w.va(0),
            pmask,
            0,
        ),
        (
            "TLB_FLUSH_MULTI, mask at 0x1000 (unmapped)",
            MMUEXT_TLB_FLUSH_MULTI,
            0,
            0x1000,
            -EINVAL,
        ),
        (
            "INVLPG_MULTI, mask non-canonical",
            MMUEXT_INVLPG_MULTI,
            w.va(0),
            0x8000_0000_0000,
            -EINVAL,
        ),
        ("FLUSH_CACHE (dom0 may)", MMUEXT_FLUSH_CACHE, 0, 0, 0),
        (
            "FLUSH_CACHE_GLOBAL (dom0 may)",
            MMUEXT_FLUSH_CACHE_GLOBAL,
            0,
            0,
            0,
        ),
    ] {
        check!(r, "MMUEXT_{what}", mmuext1(cmd, a1, a2) => want);
    }
}

fn user_baseptr(r: &mut Report, env: &mut Env, w: &Window) {
    check!(r, "MMUEXT_NEW_USER_BASEPTR 0 (none, as at start of day)",
        mmuext1(MMUEXT_NEW_USER_BASEPTR, 0, 0) => 0);
    let u = cleared(r, env);
    check!(r, "pin it as an L4", mmuext1(MMUEXT_PIN_L4_TABLE, u, 0) => 0);
    check!(r, "MMUEXT_NEW_USER_BASEPTR to it", mmuext1(MMUEXT_NEW_USER_BASEPTR, u, 0) => 0);
    check!(r, "MMUEXT_NEW_USER_BASEPTR to it again", mmuext1(MMUEXT_NEW_USER_BASEPTR, u, 0) => 0);
    check!(r, "MMUEXT_NEW_USER_BASEPTR to an L1",
        mmuext1(MMUEXT_NEW_USER_BASEPTR, w.l1_mfn, 0) => -EINVAL);
    check!(r, "MMUEXT_NEW_USER_BASEPTR to mfn all-ones",
        mmuext1(MMUEXT_NEW_USER_BASEPTR, ALL_ONES_MFN, 0) => -EINVAL);
    check!(r, "MMUEXT_NEW_USER_BASEPTR 0", mmuext1(MMUEXT_NEW_USER_BASEPTR, 0, 0) => 0);
    check!(r, "unpin the L4", mmuext1(MMUEXT_UNPIN_TABLE, u, 0) => 0);
}

fn batches(r: &mut Report, env: &mut Env, w: &Window) {
    let (a, b, c) = (cleared(r, env), cleared(r, env), cleared(r, env));
    let ops = [
        op(MMUEXT_PIN_L1_TABLE, a, 0),
        op(MMUEXT_PIN_L1_TABLE, b, 0),
        op(14, 0, 0),
        op(MMUEXT_PIN_L1_TABLE, c, 0),
    ];
    let mut done = 99u32;
    check!(r, "a batch of 4 whose 3rd is command 14", mmuext(&ops, Some(&mut done)) => -ENOSYS);
    r.check(format_args!("*pdone {done} is 2"), done == 2);
    check!(r, "the 1st was applied: unpin it", mmuext1(MMUEXT_UNPIN_TABLE, a, 0) => 0);
    check!(r, "the 2nd was applied: unpin it", mmuext1(MMUEXT_UNPIN_TABLE, b, 0) => 0);
    check!(r, "the 4th was not: unpin it", mmuext1(MMUEXT_UNPIN_TABLE, c, 0) => -EINVAL);

    let flush = [
        op(MMUEXT_TLB_FLUSH_LOCAL, 0, 0),
        op(MMUEXT_TLB_FLUSH_LOCAL, 0, 0),
    ];
    let mut done = 5u32;
    let got = mmuext_raw(
        flush.as_ptr() as u64,
        2 | PREEMPTED,
        core::ptr::from_mut(&mut done) as u64,
        SELF,
    );
    check!(r, "mmuext_op of 2 flushes with count|PREEMPTED, *pdone 5", got => 0);
    r.check(format_args!("*pdone {done} is 7 (accumulated)"), done == 7);
    let got = mmuext_raw(flush.as_ptr() as u64, 2 | PREEMPTED, 0, SELF);
    check!(r, "the same with no pdone", got => 0);
    let mut done = 5u32;
    let got = mmuext_raw(
        flush.as_ptr() as u64,
        PREEMPTED,
        core::ptr::from_mut(&mut done) as u64,
        SELF,
    );
    check!(r, "mmuext_op count 0|PREEMPTED, *pdone 5", got => 0);
    r.check(format_args!("*pdone {done} is 5"), done == 5);

    let d = env.spare().1;
    let reqs = [
        MmuUpdate {
            ptr: w.pte_ma(4),
            val: (d << 12) | KRO,
        },
        MmuUpdate {
            ptr: w.pte_ma(5),
            val: (d << 12) | KRO,
        },
    ];
    let mut done = 5u32;
    let got = mmu_update_raw(
        reqs.as_ptr() as u64,
        2 | PREEMPTED,
        core::ptr::from_mut(&mut done) as u64,
        SELF,
    );
    check!(r, "mmu_update of 2 with count|PREEMPTED, *pdone 5", got => 0);
    r.check(
        format_args!("*pdone {done} is 7, both applied"),
        done == 7 && mfn_of(w.pte(4)) == d && mfn_of(w.pte(5)) == d,
    );
    let _ = w.unmap(4);
    let _ = w.unmap(5);

    for &(what, ptr) in BAD_POINTERS {
        check!(r, "mmuext_op ops {what}", mmuext_raw(ptr, 1, 0, SELF) => -EFAULT);
    }
    check!(r, "mmuext_op for domain 77", mmuext_raw(flush.as_ptr() as u64, 1, 0, 77) => -ESRCH);
    check!(r, "mmuext_op of 0 ops", mmuext_raw(flush.as_ptr() as u64, 0, 0, SELF) => 0);
}

fn multicall(r: &mut Report, env: &mut Env, w: &Window) {
    let d = env.spare().1;
    let flush = [op(MMUEXT_TLB_FLUSH_LOCAL, 0, 0)];
    let l4_256 = read_u64(env.l4 + 256 * 8);
    let bad_req = [MmuUpdate {
        ptr: (env.l4_mfn << 12) + 256 * 8,
        val: l4_256,
    }];
    let mut inner = [entry(XEN_VERSION, [0; 5])];
    let calls_ptr = inner.as_mut_ptr() as u64;
    let mut calls = [
        entry(XEN_VERSION, [0; 5]),
        entry(MMUEXT_OP, [flush.as_ptr() as u64, 1, 0, SELF, 0]),
        entry(11, [0; 5]),
        entry(99, [0; 5]),
        entry(MULTICALL, [calls_ptr, 1, 0, 0, 0]),
        entry(MEMORY_OP, [u64::from(XENMEM_MAXIMUM_RAM_PAGE), 0, 0, 0, 0]),
        entry(
            UPDATE_VA_MAPPING,
            [w.va(6), (d << 12) | KRO, UVMF_INVLPG, 0, 0],
        ),
        entry(
            UPDATE_VA_MAPPING,
            [0x8000_0000_0000, (d << 12) | KRO, 0, 0, 0],
        ),
        entry(MMU_UPDATE, [bad_req.as_ptr() as u64, 1, 0, SELF, 0]),
        entry(XEN_VERSION, [0; 5]),
    ];
    for c in &mut calls {
        c.result = 0xdead;
    }
    let want: [(&str, i64); 10] = [
        ("xen_version", 0x40011),
        ("mmuext_op flush", 0),
        ("hypercall 11 (none)", -ENOSYS),
        ("hypercall 99", -ENOSYS),
        ("a nested multicall", -EINVAL),
        ("memory_op maximum_ram_page", max_page()),
        ("update_va_mapping page 6", 0),
        ("update_va_mapping non-canonical", -EINVAL),
        ("mmu_update of L4[256]", -EINVAL),
        ("xen_version after the failures", 0x40011),
    ];
    // SAFETY: every entry's buffers live on this stack frame; the one
    // mapping change is to a window page.
    let got = unsafe { hypercall2(MULTICALL, calls.as_mut_ptr() as u64, calls.len() as u64) };
    check!(r, "multicall of 10 entries", got => 0);
    for (i, (c, (what, want))) in calls.iter().zip(want).enumerate() {
        check!(r, "entry {i}: {what}", c.result.cast_signed() => want);
    }
    r.check(
        format_args!(
            "the nested multicall's entry was not run (result {:#x})",
            inner[0].result
        ),
        inner[0].result == 0,
    );
    r.check(
        format_args!("page 6 maps the frame ({:#x})", w.pte(6)),
        mfn_of(w.pte(6)) == d,
    );
    let _ = w.unmap(6);
    // SAFETY: no entries are read.
    let got = unsafe { hypercall2(MULTICALL, calls.as_mut_ptr() as u64, 0) };
    check!(r, "multicall of 0 entries", got => 0);
    for &(what, ptr) in BAD_POINTERS {
        // SAFETY: the hypervisor refuses the list.
        let got = unsafe { hypercall2(MULTICALL, ptr, 1) };
        check!(r, "multicall list {what}", got => -EFAULT);
    }
}

fn entry(op: u64, a: [u64; 5]) -> MulticallEntry {
    MulticallEntry {
        op,
        result: 0,
        args: [a[0], a[1], a[2], a[3], a[4], 0],
    }
}

const _: () = assert!(core::mem::size_of::<MmuextOp>() == 24);
