//! Event channels between two domains: dom0 creates a domain, allocates
//! an unbound port in it for itself (a privileged caller may), binds to
//! it, and both ends' status names the other; a send on the channel
//! succeeds. Closing dom0's end puts the other back to unbound for dom0;
//! binding again and then destroying the domain puts dom0's end back to
//! unbound (the dying domain's channels close). Bad binds: a port already
//! bound, a port that does not exist, a port allocated for another
//! domain, a domain that does not exist (also after the destroy).
//! `EVTCHNOP_reset` of the other domain's table, while its controller
//! pauses it, closes its ports and puts dom0's end back to unbound;
//! while it is not paused, `-EINVAL`.
//!
//! @covers: event_channel_op.alloc_unbound event_channel_op.bind_interdomain
//! @covers: event_channel_op.close event_channel_op.status event_channel_op.send
//! @covers: event_channel_op.reset
#![no_std]
#![no_main]

use guest_abi::domctl::*;
use guest_abi::errno::*;
use guest_abi::event_channel::*;
use guest_abi::hypercall::typed;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::DOMID_SELF;
use tests::check;
use tests::evtchn::{alloc_unbound, bind_interdomain, close, reset, send, status};

guest_abi::pv_guest!(main, name = "evtchn_interdomain");

/// A domain id nobody has.
const NO_DOMAIN: u16 = 0x7000;

fn domctl(cmd: u32, dom: u16) -> (i64, u16) {
    let cfg = XenDomctlCreatedomain::pv(1, [0; 16]);
    let mut op = if cmd == XEN_DOMCTL_CREATEDOMAIN {
        XenDomctl::new(cmd, dom, &cfg)
    } else {
        XenDomctl::new(cmd, dom, &0u64)
    };
    // SAFETY: `op` is a live xen_domctl.
    let rc = unsafe { typed::domctl(&mut op) };
    (rc, op.domain)
}

/// A port's status, its remote domain and remote port.
fn seen(dom: u16, port: u32) -> (u32, u16, u32) {
    match status(dom, port) {
        Ok(s) => (s.status, s.remote_dom(), s.remote_port()),
        Err(e) => (u32::MAX, 0, u32::try_from(-e).unwrap_or(0)),
    }
}

fn main(_si: StartInfoRef) -> ! {
    let mut r = Report::new("evtchn_interdomain");
    let (rc, d) = domctl(XEN_DOMCTL_CREATEDOMAIN, 0);
    if !check!(r, "create a domain", rc => 0) {
        r.finish()
    }
    check!(r, "max_vcpus 1", {
        let mut op = XenDomctl::new(XEN_DOMCTL_MAX_VCPUS, d, &XenDomctlMaxVcpus { max: 1 });
        // SAFETY: as in `domctl`.
        unsafe { typed::domctl(&mut op) }
    } => 0);

    let theirs = match alloc_unbound(d, 0) {
        Ok(p) => p,
        Err(e) => {
            check!(r, "alloc_unbound in the new domain for dom0", e => 0);
            r.finish()
        }
    };
    check!(r, "their port is unbound for dom0", seen(d, theirs) => (EVTCHNSTAT_UNBOUND, 0, 0));
    let other = alloc_unbound(d, 5).unwrap_or(0);
    r.check("a second one, for domain 5", other != 0);

    let mine = match bind_interdomain(d, theirs) {
        Ok(p) => p,
        Err(e) => {
            check!(r, "bind_interdomain to it", e => 0);
            r.finish()
        }
    };
    check!(r, "our end names theirs",
        seen(DOMID_SELF, mine) => (EVTCHNSTAT_INTERDOMAIN, d, theirs));
    check!(r, "their end names ours", seen(d, theirs) => (EVTCHNSTAT_INTERDOMAIN, 0, mine));
    check!(r, "send on it", send(mine) => 0);

    check!(r, "bind to it again", bind_interdomain(d, theirs) => Err(-EINVAL));
    check!(r, "bind to a port that does not exist", bind_interdomain(d, 999) => Err(-EINVAL));
    check!(r, "bind to a port allocated for domain 5", bind_interdomain(d, other) => Err(-EINVAL));
    check!(r, "bind to no domain", bind_interdomain(NO_DOMAIN, 1) => Err(-ESRCH));
    check!(r, "alloc_unbound in no domain", alloc_unbound(NO_DOMAIN, 0) => Err(-ESRCH));

    check!(r, "close our end", close(mine) => 0);
    check!(r, "their end is unbound for dom0 again", seen(d, theirs) => (EVTCHNSTAT_UNBOUND, 0, 0));
    check!(r, "send on the closed port", send(mine) => -EINVAL);

    let mine = match bind_interdomain(d, theirs) {
        Ok(p) => p,
        Err(e) => {
            check!(r, "bind again", e => 0);
            r.finish()
        }
    };
    check!(r, "bound again", seen(d, theirs) => (EVTCHNSTAT_INTERDOMAIN, 0, mine));

    // A reset of their table (its controller, we, still pauses it from
    // its creation) closes their end; ours goes back to unbound for them.
    check!(r, "reset their table while it is paused", reset(d) => 0);
    check!(r, "their end is closed", seen(d, theirs).0 => EVTCHNSTAT_CLOSED);
    check!(r, "so is their port for domain 5", seen(d, other).0 => EVTCHNSTAT_CLOSED);
    check!(r, "our end is unbound for them", seen(DOMID_SELF, mine) => (EVTCHNSTAT_UNBOUND, d, 0));
    check!(r, "close it", close(mine) => 0);
    let theirs = alloc_unbound(d, 0).unwrap_or(0);
    let mine = bind_interdomain(d, theirs).unwrap_or(0);
    r.check("a new channel to them", theirs != 0 && mine != 0);
    check!(r, "unpause them", domctl(XEN_DOMCTL_UNPAUSEDOMAIN, d).0 => 0);
    check!(r, "reset their table while it is not paused", reset(d) => -EINVAL);
    check!(r, "the channel stays", seen(d, theirs) => (EVTCHNSTAT_INTERDOMAIN, 0, mine));
    check!(r, "pause them", domctl(XEN_DOMCTL_PAUSEDOMAIN, d).0 => 0);
    check!(r, "reset their table again", reset(d) => 0);
    check!(r, "our end is unbound for them again", seen(DOMID_SELF, mine) => (EVTCHNSTAT_UNBOUND, d, 0));
    check!(r, "close it", close(mine) => 0);
    let theirs = alloc_unbound(d, 0).unwrap_or(0);
    let mine = bind_interdomain(d, theirs).unwrap_or(0);
    r.check("one more channel to them", theirs != 0 && mine != 0);

    check!(r, "destroy the domain", domctl(XEN_DOMCTL_DESTROYDOMAIN, d).0 => 0);
    check!(r, "our end is unbound for it", seen(DOMID_SELF, mine) => (EVTCHNSTAT_UNBOUND, d, 0));
    check!(r, "a send on it is dropped", send(mine) => 0);
    check!(r, "close it", close(mine) => 0);
    check!(r, "bind to the destroyed domain", bind_interdomain(d, theirs) => Err(-ESRCH));
    r.finish()
}
