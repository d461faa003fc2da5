//! A domU destroyed with linear page tables in place leaves nothing
//! behind.
//!
//! dom0 builds a domU (`tests::domu`) and gives it three more frames,
//! which it pins as L4 tables on the domU's behalf (`mmuext_op` with
//! `foreigndom`). Through `mmu_update` naming the domU as the page-table
//! owner (`foreigndom`'s high half: Xen's updates of a foreign domain's
//! tables, as a toolstack makes them) it then makes linear entries in
//! them, read-only as Xen requires:
//! - L4 A maps itself; L4 A maps L4 B (A holds a linear entry, B is used
//!   as one);
//! - refused (`-EINVAL`), as Xen's rule that no table both holds linear
//!   entries and is used as one (so linear references never form a
//!   cycle): B mapping A, B mapping C (B is used as one), C mapping A (A
//!   holds one); and a writable linear entry.
//!
//! The tables stay pinned and the domU is destroyed: every frame comes
//! back (exactly, on hv). The same again with the tables unpinned first
//! (A's count goes with its pin, then B's). Refused page-table owners:
//! no such domain (`-ESRCH`), a domain with no vCPU yet (`-EINVAL`).
//!
//! @covers: mmu_update.normal_pt_update mmuext_op.pin_l4_table
#![no_std]
#![no_main]

use guest_abi::domctl::{
    XenDomctl, XenDomctlCreatedomain, XEN_DOMCTL_CREATEDOMAIN, XEN_DOMCTL_DESTROYDOMAIN,
};
use guest_abi::errno::{EINVAL, ESRCH};
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::{
    MmuUpdate, MmuextOp, DOMID_SELF, MMUEXT_PIN_L4_TABLE, MMUEXT_UNPIN_TABLE, MMU_NORMAL_PT_UPDATE,
};
use tests::check;
use tests::control::{check_free_back, domctl_on, free_pages, populate, settle, XEN_SLACK};
use tests::domu::{build, put, set_window_page, simple};
use tests::pvmm::{mmu_update_raw, mmuext_raw, Window, A, D, P, RW, US};

guest_abi::pv_guest!(main, name = "domu_linear");

/// The window page dom0 clears the new frames through.
const W_CLEAR: u64 = 20;

/// `mmuext_op` `cmd` on `mfn` for domain `d`.
fn mmuext_for(d: u16, cmd: u32, mfn: u64) -> i64 {
    let op = [MmuextOp {
        cmd,
        arg1: mfn,
        ..Default::default()
    }];
    mmuext_raw(op.as_ptr() as u64, 1, 0, u64::from(d))
}

/// Entry `slot` of L4 `table` (domain `d`'s) = `val`: `mmu_update` with
/// `d` as the page-table owner (`foreigndom`'s high half, `d + 1`) and
/// as the page owner.
fn set_entry(d: u16, table: u64, slot: u64, val: u64) -> i64 {
    let req = [MmuUpdate {
        ptr: ((table << 12) + slot * 8) | MMU_NORMAL_PT_UPDATE,
        val,
    }];
    let foreigndom = (u64::from(d) + 1) << 16 | u64::from(d);
    mmu_update_raw(req.as_ptr() as u64, 1, 0, foreigndom)
}

/// One round: build, link, maybe unpin, destroy; true if it got through.
fn round(r: &mut Report, w: &Window, unpin: bool) -> bool {
    let Some(t) = build(r, w, 1, 1, &[0xf4]) else {
        return false;
    };
    let d = t.id;
    let mut f = [7u64, 8, 9];
    check!(r, "populate three more frames for it", populate(d, &mut f, 0) => 3);
    let [a, b, c] = f;
    for (name, m) in [("A", a), ("B", b), ("C", c)] {
        check!(r, "map {name} to clear it",
            set_window_page(w, W_CLEAR, (m << 12) | P | RW | US | A | D, d) => 0);
        put(w.va(W_CLEAR), &[0; 4096]);
        check!(r, "unmap it", set_window_page(w, W_CLEAR, 0, DOMID_SELF) => 0);
        check!(r, "pin {name} as its L4", mmuext_for(d, MMUEXT_PIN_L4_TABLE, m) => 0);
    }
    let ro = |m: u64| (m << 12) | P | US | A;
    check!(r, "A[5] = A, read-only", set_entry(d, a, 5, ro(a)) => 0);
    check!(r, "A[6] = B, read-only", set_entry(d, a, 6, ro(b)) => 0);
    check!(r, "A[7] = B, writable: refused", set_entry(d, a, 7, ro(b) | RW) => -EINVAL);
    check!(r, "B[6] = A (A holds a linear entry): refused", set_entry(d, b, 6, ro(a)) => -EINVAL);
    check!(r, "B[7] = C (B is used as one): refused", set_entry(d, b, 7, ro(c)) => -EINVAL);
    check!(r, "C[6] = A (A holds one): refused", set_entry(d, c, 6, ro(a)) => -EINVAL);
    check!(r, "B[8] = B, read-only (a self-map holds nothing)", set_entry(d, b, 8, ro(b)) => 0);
    if unpin {
        check!(r, "unpin A", mmuext_for(d, MMUEXT_UNPIN_TABLE, a) => 0);
        check!(r, "unpin B", mmuext_for(d, MMUEXT_UNPIN_TABLE, b) => 0);
    }
    check!(r, "destroy it", t.destroy(w) => (0, 0));
    true
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("domu_linear");
    let Some((w, shared, port)) = tests::domu::toolstack_env(&mut r, si) else {
        r.finish()
    };
    let base = settle(shared.va, port, free_pages());
    check!(r, "page-table owner: no such domain", set_entry(0x7000, 1, 0, 0) => -ESRCH);
    let (rc, bare) = domctl_on(XenDomctl::new(
        XEN_DOMCTL_CREATEDOMAIN,
        0,
        &XenDomctlCreatedomain::pv(1, [0; 16]),
    ));
    check!(r, "create a domain, no max_vcpus", rc => 0);
    check!(r, "page-table owner: a domain with no vCPU", set_entry(bare, 1, 0, 0) => -EINVAL);
    check!(r, "destroy it", simple(XEN_DOMCTL_DESTROYDOMAIN, bare) => 0);
    if round(&mut r, &w, false) && round(&mut r, &w, true) {
        check_free_back(&mut r, shared.va, port, base, XEN_SLACK);
    }
    r.finish()
}
