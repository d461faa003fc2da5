//! What a privileged test guest does to other domains (and to its own
//! grant table) the way a toolstack does: a domctl, populating memory,
//! growing a grant table, idling while the hypervisor catches up.

use guest_abi::domctl::XenDomctl;
use guest_abi::grant_table::{GnttabSetupTable, GNTTABOP_SETUP_TABLE};
use guest_abi::hypercall::{hypercall2, typed, SCHED_OP};
use guest_abi::memory::{XenMemoryReservation, XENMEM_POPULATE_PHYSMAP};
use guest_abi::sched::{SchedPoll, SCHEDOP_POLL};
use guest_abi::sysctl::{
    XenSysctl, XenSysctlPhysinfo, XenSysctlSchedId, XEN_SYSCTL_PHYSINFO, XEN_SYSCTL_SCHED_ID,
};
use guest_abi::version::{XenChangesetInfo, XENVER_CHANGESET};

/// `domctl(op)`: the result (the struct is written back).
pub fn domctl(op: &mut XenDomctl) -> i64 {
    // SAFETY: `op` is a live, writable xen_domctl.
    unsafe { typed::domctl(op) }
}

/// `XENMEM_populate_physmap` of `order`-page extents at the pfns in
/// `list` for domain `dom` (the machine frames come back in `list` for a
/// PV domain): the extents done.
pub fn populate(dom: u16, list: &mut [u64], order: u32) -> i64 {
    let res = XenMemoryReservation {
        extent_start: list.as_mut_ptr() as u64,
        nr_extents: list.len() as u64,
        extent_order: order,
        domid: dom,
        ..Default::default()
    };
    // SAFETY: `res` and the list it names are live; the hypervisor writes
    // the list.
    unsafe {
        typed::memory_op(
            u64::from(XENMEM_POPULATE_PHYSMAP),
            core::ptr::from_ref(&res).cast_mut().cast(),
        )
    }
}

/// `GNTTABOP_setup_table` of `dom`'s grant table to `frames.len()`
/// frames, listed in `frames`: the result and the status.
pub fn setup_table(dom: u16, frames: &mut [u64]) -> (i64, i16) {
    let mut setup = GnttabSetupTable {
        dom,
        nr_frames: u32::try_from(frames.len()).unwrap_or(u32::MAX),
        frame_list: frames.as_mut_ptr() as u64,
        ..Default::default()
    };
    // SAFETY: `setup` and its list are live; the hypervisor writes both.
    let rc = unsafe {
        typed::grant_table_op(
            GNTTABOP_SETUP_TABLE,
            core::ptr::from_mut(&mut setup).cast(),
            1,
        )
    };
    (rc, setup.status)
}

/// Blocks for 10 ms polling `port` (one nothing sends on), so the CPU goes
/// idle: Xen frees a destroyed domain's structures after an RCU grace
/// period, which needs that. `shared` is the mapped shared-info page.
pub fn idle_10ms(shared: u64, port: u32) {
    let ports = [port];
    let p = SchedPoll {
        ports: ports.as_ptr() as u64,
        nr_ports: 1,
        _pad: 0,
        timeout: crate::clock::now(shared) + 10_000_000,
    };
    // SAFETY: `p` and the port list are live.
    unsafe {
        hypercall2(
            SCHED_OP,
            u64::from(SCHEDOP_POLL),
            core::ptr::from_ref(&p) as u64,
        )
    };
}

/// A domctl by value: the result and the domain it names afterwards
/// (the new one, for `createdomain`).
pub fn domctl_on(mut op: XenDomctl) -> (i64, u16) {
    let rc = domctl(&mut op);
    (rc, op.domain)
}

/// The host's free pages (`physinfo`).
pub fn free_pages() -> u64 {
    let mut op = XenSysctl::new(XEN_SYSCTL_PHYSINFO, &XenSysctlPhysinfo::default());
    // SAFETY: `op` is a live xen_sysctl.
    let rc = unsafe { typed::sysctl(&mut op) };
    assert_eq!(rc, 0, "physinfo");
    op.u.get::<XenSysctlPhysinfo>().free_pages
}

/// The host's scheduler (`sysctl sched_id`), 0 if it will not say.
pub fn sched_id() -> u32 {
    let mut op = XenSysctl::new(XEN_SYSCTL_SCHED_ID, &XenSysctlSchedId::default());
    // SAFETY: `op` is a live xen_sysctl.
    let rc = unsafe { typed::sysctl(&mut op) };
    if rc == 0 {
        op.u.get::<XenSysctlSchedId>().sched_id
    } else {
        0
    }
}

/// Whether this is hv (its `XENVER_changeset` is "hv").
pub fn on_hv() -> bool {
    let mut info: XenChangesetInfo = [0; 64];
    // SAFETY: `info` is a live buffer of the command's size.
    let rc = unsafe { typed::xen_version(XENVER_CHANGESET, core::ptr::from_mut(&mut info).cast()) };
    rc == 0 && info.starts_with(b"hv\0")
}

/// Free pages once back at `want` (or after 5 s): Xen frees a dead
/// domain's structures after an RCU grace period; polling `port`, which
/// nothing sends on, lets the CPU go idle meanwhile.
pub fn settle(shared: u64, port: u32, want: u64) -> u64 {
    for _ in 0..500 {
        let free = free_pages();
        if free >= want {
            return free;
        }
        idle_10ms(shared, port);
    }
    free_pages()
}

/// Pages Xen may keep after destroying a domain or a few (freed after an
/// RCU grace period; see `domain_cycles`).
pub const XEN_SLACK: u64 = 10;

/// Checks that the free pages came back to `base` (waiting for them as
/// [`settle`] does): exactly on hv, within `xen_slack` on Xen.
pub fn check_free_back(
    r: &mut guest_abi::rt::report::Report,
    shared: u64,
    port: u32,
    base: u64,
    xen_slack: u64,
) {
    let after = settle(shared, port, base);
    guest_abi::println!("free pages: {base:#x} before, {after:#x} after");
    if on_hv() {
        crate::check!(r, "hv's free pages exactly back", after => base);
    } else {
        r.check(
            "Xen's free pages back within its slack",
            after + xen_slack >= base,
        );
    }
}
