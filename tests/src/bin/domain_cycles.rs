//! 1000 domains made and unmade, each holding what a domain holds: vCPUs
//! (1 to 4), 16 pages of memory, a grant table grown to 4 frames, and an
//! event channel bound to dom0. Each is destroyed while all of it is in
//! place (dom0's end of the channel goes back to unbound and is closed).
//! hv's free memory must then be back exactly where it was before the
//! cycles (by `XENVER_changeset` "hv"); Xen's comes back within a few
//! pages per domain, after an RCU grace period (README: known
//! differences).
//!
//! @smp: 2
//! @vcpus: 2
//! @timeout: 300
//! @covers: domctl.createdomain domctl.destroydomain
#![no_std]
#![no_main]

use guest_abi::domctl::*;
use guest_abi::event_channel::EVTCHNSTAT_UNBOUND;
use guest_abi::grant_table::GNTST_OKAY;
use guest_abi::hypercall::typed;
use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::sysctl::*;
use guest_abi::version::{XenChangesetInfo, XENVER_CHANGESET};
use guest_abi::xen::DOMID_SELF;
use tests::check;
use tests::control::{populate, setup_table};
use tests::evtchn::{alloc_unbound, bind_interdomain, close, status};
use tests::fixup::SharedInfo;

guest_abi::pv_guest!(main, name = "domain_cycles");

const CYCLES: u32 = 1000;
/// Pages Xen may keep per destroyed domain, and in all (see `domctl`).
const SLACK: u64 = 8;
const SLACK_PER_DOMAIN: u64 = 2;

fn domctl(mut op: XenDomctl) -> (i64, u16) {
    // SAFETY: `op` is a live xen_domctl.
    let rc = unsafe { typed::domctl(&mut op) };
    (rc, op.domain)
}

fn free_pages() -> u64 {
    let mut op = XenSysctl::new(XEN_SYSCTL_PHYSINFO, &XenSysctlPhysinfo::default());
    // SAFETY: `op` is a live xen_sysctl.
    let rc = unsafe { typed::sysctl(&mut op) };
    assert_eq!(rc, 0, "physinfo");
    op.u.get::<XenSysctlPhysinfo>().free_pages
}

/// Whether this is hv (its `XENVER_changeset` is "hv").
fn on_hv() -> bool {
    let mut info: XenChangesetInfo = [0; 64];
    // SAFETY: `info` is a live buffer of the command's size.
    let rc = unsafe { typed::xen_version(XENVER_CHANGESET, core::ptr::from_mut(&mut info).cast()) };
    rc == 0 && info.starts_with(b"hv\0")
}

/// Free pages once back at `want` (or after 5 s): Xen frees a dead
/// domain's structures after an RCU grace period; polling a port nothing
/// sends on lets the CPU go idle meanwhile.
fn settle(shared: u64, port: u32, want: u64) -> u64 {
    for _ in 0..500 {
        let free = free_pages();
        if free >= want {
            return free;
        }
        tests::control::idle_10ms(shared, port);
    }
    free_pages()
}

/// One domain made, filled and destroyed; what failed, if anything.
fn cycle(i: u32) -> Result<(), &'static str> {
    let vcpus = 1 + i % 4;
    let (rc, d) = domctl(XenDomctl::new(
        XEN_DOMCTL_CREATEDOMAIN,
        0,
        &XenDomctlCreatedomain::pv(vcpus, [0; 16]),
    ));
    if rc != 0 {
        return Err("createdomain");
    }
    let steps = (|| {
        if domctl(XenDomctl::new(
            XEN_DOMCTL_MAX_VCPUS,
            d,
            &XenDomctlMaxVcpus { max: vcpus },
        ))
        .0 != 0
        {
            return Err("max_vcpus");
        }
        if domctl(XenDomctl::new(
            XEN_DOMCTL_MAX_MEM,
            d,
            &XenDomctlMaxMem { max_memkb: 256 },
        ))
        .0 != 0
        {
            return Err("max_mem");
        }
        let mut pfns: [u64; 16] = core::array::from_fn(|k| k as u64);
        if populate(d, &mut pfns, 0) != 16 {
            return Err("populate_physmap");
        }
        let mut frames = [0u64; 4];
        if setup_table(d, &mut frames) != (0, GNTST_OKAY) {
            return Err("grant setup_table");
        }
        let theirs = alloc_unbound(d, 0).map_err(|_| "alloc_unbound")?;
        bind_interdomain(d, theirs).map_err(|_| "bind_interdomain")
    })();
    let destroyed = domctl(XenDomctl::new(XEN_DOMCTL_DESTROYDOMAIN, d, &0u64)).0;
    let mine = steps?;
    if destroyed != 0 {
        return Err("destroydomain");
    }
    match status(DOMID_SELF, mine) {
        Ok(s) if s.status == EVTCHNSTAT_UNBOUND => {}
        _ => return Err("our end unbound after the destroy"),
    }
    if close(mine) != 0 {
        return Err("close");
    }
    Ok(())
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("domain_cycles");
    let Some(shared) = SharedInfo::map(si) else {
        r.check("map shared_info", false);
        r.finish()
    };
    let Ok(port) = alloc_unbound(DOMID_SELF, DOMID_SELF) else {
        r.check("a port to poll", false);
        r.finish()
    };
    // A first round: both hypervisors grow tables of their own the first
    // time a domain has so many vCPUs, and keep them.
    for i in 0..4 {
        let _ = cycle(i);
    }
    let base = settle(shared.va, port, free_pages());
    let mut done = 0;
    let mut failed = None;
    for i in 0..CYCLES {
        if let Err(what) = cycle(i) {
            failed = Some((i, what));
            break;
        }
        done += 1;
    }
    if let Some((i, what)) = failed {
        println!("cycle {i} failed at {what}");
    }
    check!(r, "create / fill / destroy cycles", done => CYCLES);
    let after = settle(shared.va, port, base);
    let hv = on_hv();
    println!(
        "free pages: {base:#x} before, {after:#x} after ({} fewer); on {}",
        base.cast_signed() - after.cast_signed(),
        if hv { "hv" } else { "Xen" }
    );
    if hv {
        check!(r, "hv's free pages exactly back", after => base);
    } else {
        r.check(
            "Xen's free pages back within its slack",
            after + SLACK + u64::from(CYCLES) * SLACK_PER_DOMAIN >= base,
        );
    }
    r.finish()
}
