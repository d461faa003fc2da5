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
use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::DOMID_SELF;
use tests::check;
use tests::control::{domctl_on as domctl, free_pages, on_hv, populate, settle, setup_table};
use tests::evtchn::{alloc_unbound, bind_interdomain, close, status};
use tests::fixup::SharedInfo;

guest_abi::pv_guest!(main, name = "domain_cycles");

const CYCLES: u32 = 1000;
/// Pages Xen may keep per destroyed domain, and in all (see `domctl`).
const SLACK: u64 = 8;
const SLACK_PER_DOMAIN: u64 = 2;

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
