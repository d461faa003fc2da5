//! A privileged domain's view of another domain's memory, as a domain
//! builder and Linux's privcmd use it: `mmu_update` with a `foreigndom`
//! maps the other domain's frames in dom0's own page tables (writable and
//! read-only; the other domain's frames only, and dom0's not with it) and
//! sets their M2P entries; `mmuext_op` with a `foreigndom` pins and unpins
//! the other domain's tables (and nothing else: a flush on its behalf is
//! `-EPERM`). A frame dom0 maps outlives its domain's destruction until
//! dom0 unmaps it. Naming no domain, or dom0 itself by number, is `-ESRCH`.
//!
//! @covers: mmu_update.normal_pt_update mmu_update.machphys_update
//! @covers: mmuext_op.pin_l1_table mmuext_op.unpin_table
#![no_std]
#![no_main]

use guest_abi::domctl::*;
use guest_abi::errno::*;
use guest_abi::hypercall::typed;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::{
    MmuUpdate, MmuextOp, DOMID_SELF, MMUEXT_PIN_L1_TABLE, MMUEXT_TLB_FLUSH_LOCAL,
    MMUEXT_UNPIN_TABLE, MMU_MACHPHYS_UPDATE, MMU_NORMAL_PT_UPDATE,
};
use tests::check;
use tests::control::populate;
use tests::pvmm::{
    env_window_catching, mmu_update_raw, mmuext_raw, read_u64, write_u64, A, M2P, P, RW, US,
};

guest_abi::pv_guest!(main, name = "foreign_map");

const NO_DOMAIN: u16 = 0x7000;
const PATTERN: u64 = 0x666f_7265_6967_6e21;

fn domctl(mut op: XenDomctl) -> (i64, u16) {
    // SAFETY: `op` is a live xen_domctl.
    let rc = unsafe { typed::domctl(&mut op) };
    (rc, op.domain)
}

/// One `mmu_update` request with `foreigndom`.
fn update(ptr: u64, val: u64, foreigndom: u16) -> i64 {
    let req = [MmuUpdate { ptr, val }];
    mmu_update_raw(req.as_ptr() as u64, 1, 0, u64::from(foreigndom))
}

/// One `mmuext_op` with `foreigndom`.
fn ext(cmd: u32, arg1: u64, foreigndom: u16) -> i64 {
    let op = [MmuextOp {
        cmd,
        arg1,
        ..Default::default()
    }];
    mmuext_raw(op.as_ptr() as u64, 1, 0, u64::from(foreigndom))
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("foreign_map");
    let Some((mut env, w)) = env_window_catching(&mut r, si) else {
        r.finish()
    };
    let (rc, d) = domctl(XenDomctl::new(
        XEN_DOMCTL_CREATEDOMAIN,
        0,
        &XenDomctlCreatedomain::pv(1, [0; 16]),
    ));
    if !check!(r, "create a domain", rc => 0) {
        r.finish()
    }
    check!(r, "max_mem 1 MiB", domctl(XenDomctl::new(XEN_DOMCTL_MAX_MEM, d, &XenDomctlMaxMem { max_memkb: 1024 })).0 => 0);
    let mut frames = [0u64, 1, 2, 3];
    if !check!(r, "populate 4 pages of it", populate(d, &mut frames, 0) => 4) {
        r.finish()
    }
    let [m0, m1, _, _] = frames;
    let (_, mine) = env.spare();
    let pte = |mfn: u64, flags: u64| (mfn << 12) | flags;
    let at = |i: u64| w.pte_ma(i) | MMU_NORMAL_PT_UPDATE;

    check!(r, "map its frame writable", update(at(1), pte(m0, P | RW | US | A), d) => 0);
    write_u64(w.va(1), PATTERN);
    check!(r, "map it again read-only", update(at(2), pte(m0, P | US | A), d) => 0);
    check!(r, "the second mapping reads the write", read_u64(w.va(2)) => PATTERN);
    let busy_self = update(at(3), pte(m0, P | US | A), DOMID_SELF);
    check!(r, "its frame as our own", busy_self => -EBUSY);
    check!(r, "our frame as its", update(at(3), pte(mine, P | US | A), d) => -EBUSY);

    check!(r, "its frame's M2P entry", update((m0 << 12) | MMU_MACHPHYS_UPDATE, 7, d) => 0);
    check!(r, "reads back", read_u64(M2P + m0 * 8) => 7);
    check!(r, "our frame's M2P entry as its",
        update((mine << 12) | MMU_MACHPHYS_UPDATE, 7, d) => -EINVAL);

    // A table of its, built through a mapping, pinned on its behalf.
    check!(r, "map its second frame", update(at(3), pte(m1, P | RW | US | A), d) => 0);
    for i in 0..512 {
        write_u64(w.va(3) + i * 8, 0);
    }
    write_u64(w.va(3), pte(frames[2], P | US | A));
    check!(r, "pin it while we map it writable", ext(MMUEXT_PIN_L1_TABLE, m1, d) => -EINVAL);
    check!(r, "unmap it", update(at(3), 0, DOMID_SELF) => 0);
    check!(r, "pin it as an L1 on its behalf", ext(MMUEXT_PIN_L1_TABLE, m1, d) => 0);
    check!(r, "map the pinned table writable", update(at(3), pte(m1, P | RW | US | A), d) => -EBUSY);
    check!(r, "map it read-only", update(at(3), pte(m1, P | US | A), d) => 0);
    // (Both hypervisors add the global bit to a user-accessible entry.)
    check!(r, "it holds what we wrote",
        read_u64(w.va(3)) & !(1 << 8) => pte(frames[2], P | US | A));
    check!(r, "unmap it again", update(at(3), 0, DOMID_SELF) => 0);
    check!(r, "pin our own frame on its behalf", ext(MMUEXT_PIN_L1_TABLE, mine, d) => -EINVAL);
    check!(r, "a flush on its behalf", ext(MMUEXT_TLB_FLUSH_LOCAL, 0, d) => -EPERM);
    check!(r, "unpin it on its behalf", ext(MMUEXT_UNPIN_TABLE, m1, d) => 0);

    check!(r, "foreigndom: no domain", update(at(4), pte(m0, P | US | A), NO_DOMAIN) => -ESRCH);
    check!(r, "foreigndom: ourselves by number", update(at(4), pte(mine, P | US | A), 0) => -ESRCH);
    check!(r, "mmuext foreigndom: no domain", ext(MMUEXT_UNPIN_TABLE, m1, NO_DOMAIN) => -ESRCH);

    // Destroyed while we map its frame: the frame stays until we let go.
    check!(r, "destroy it", domctl(XenDomctl::new(XEN_DOMCTL_DESTROYDOMAIN, d, &0u64)).0 => 0);
    check!(r, "our mapping still reads its frame", read_u64(w.va(2)) => PATTERN);
    check!(r, "unmap the writable mapping", update(at(1), 0, DOMID_SELF) => 0);
    check!(r, "unmap the read-only one", update(at(2), 0, DOMID_SELF) => 0);
    check!(r, "mapping its frame again: no domain", update(at(1), pte(m0, P | US | A), d) => -ESRCH);
    r.finish()
}
