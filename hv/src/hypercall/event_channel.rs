//! `event_channel_op` (hypercall 32) and its pre-3.0.2 form
//! `event_channel_op_compat` (16): decoding, the domain named, and the
//! copies; the operations are the table's (`hv::evtchn`) and the FIFO
//! frames the kernel's (`crate::event`).
//!
//! As Xen 4.17 does it: the argument struct is copied in first (`-EFAULT`
//! when it cannot be read), a domain field `DOMID_SELF` is the caller, an
//! id naming no domain is `-ESRCH`, an unknown command `-ENOSYS`. Binding
//! operations, `status` and `init_control` copy the whole struct back on
//! success only (a fault there is `-EFAULT`, with the operation done, as
//! on Xen). The domain's event lock is held for the operation alone, never
//! across a copy. `EVTCHNOP_reset` preempted continues as
//! `EVTCHNOP_reset_cont` with the same argument.
//!
//! The compat form copies the 28-byte `evtchn_op` in and forwards the ten
//! commands that existed before 3.0.2 (`bind_interdomain` ... `unmask`)
//! with the argument 4 bytes in, where the union starts; every other
//! command is `-ENOSYS` there.
//!
//! Interdomain channels join two domains' tables: a bind, a close and a
//! send that reach the other domain lock both domains' event tables
//! (lower `DomId` first, as one place in the lock order: [`both`]). A
//! send names the other end's port; that domain's table is locked on its
//! own to raise it, if the channel still joins the two. `EVTCHNOP_reset`
//! closes a channel to another domain as a close does (the other end goes
//! back to unbound); a privileged caller resets another domain's table
//! while that domain's controller has it paused (`-EINVAL` otherwise).
//! `bind_pirq` is not offered (hv passes no physical IRQ to any domain):
//! `-ENOSYS`.

use guest_abi::errno::Errno;
use guest_abi::event_channel::{
    EvtchnAllocUnbound, EvtchnBindInterdomain, EvtchnBindIpi, EvtchnBindVcpu, EvtchnBindVirq,
    EvtchnClose, EvtchnExpandArray, EvtchnInitControl, EvtchnOp, EvtchnReset, EvtchnSend,
    EvtchnSetPriority, EvtchnStatus, EvtchnUnmask, EVTCHNOP_ALLOC_UNBOUND,
    EVTCHNOP_BIND_INTERDOMAIN, EVTCHNOP_BIND_IPI, EVTCHNOP_BIND_VCPU, EVTCHNOP_BIND_VIRQ,
    EVTCHNOP_CLOSE, EVTCHNOP_EXPAND_ARRAY, EVTCHNOP_INIT_CONTROL, EVTCHNOP_RESET,
    EVTCHNOP_RESET_CONT, EVTCHNOP_SEND, EVTCHNOP_SET_PRIORITY, EVTCHNOP_STATUS, EVTCHNOP_UNMASK,
};
use guest_abi::hypercall as nr;
use guest_abi::types::DomId;
use guest_abi::xen::DOMID_SELF;
use hv::evtchn::{Access, EventTable, Peers, Sent};

use super::{read_arg, write_arg, HcResult, Outcome};
use crate::domain::{self, Domain};
use crate::event::{self, Events};

/// Hypercall 32. The command was checked by the dispatcher (a command hv
/// does not offer never gets here). `send`, the hot one (IPIs, backend
/// notifications), is inlined into the table entry; the rest are a call
/// away.
#[inline(always)]
pub fn event_channel_op(cmd: u32, arg: u64) -> Outcome {
    if cmd == EVTCHNOP_SEND {
        return send(arg).into();
    }
    rest(cmd, arg)
}

#[inline(never)]
fn rest(cmd: u32, arg: u64) -> Outcome {
    match cmd {
        EVTCHNOP_RESET | EVTCHNOP_RESET_CONT => reset(cmd, arg),
        _ => other(cmd, arg).into(),
    }
}

/// Hypercall 16: `evtchn_op` is copied in, then its command runs on the
/// union that follows the command word.
pub fn event_channel_op_compat(op: u64) -> Outcome {
    let head: EvtchnOp = match read_arg(op) {
        Ok(h) => h,
        Err(e) => return Outcome::Err(e),
    };
    let forwarded = matches!(head.cmd, EVTCHNOP_BIND_INTERDOMAIN..=EVTCHNOP_UNMASK);
    if !forwarded || super::refused::<{ nr::EVENT_CHANNEL_OP }>(head.cmd) {
        return Outcome::Err(Errno::ENOSYS);
    }
    // The union starts 4 bytes in; the read above showed `op + 28` does
    // not wrap.
    event_channel_op(head.cmd, op.wrapping_add(4))
}

/// `EVTCHNOP_send`: the hot path (an IPI, or a loopback notification).
#[inline(never)]
fn send(arg: u64) -> HcResult {
    let EvtchnSend { port } = read_arg(arg)?;
    let current = domain::current();
    let sent = {
        let mut ev = current.domain().events.lock();
        let Events { table, words } = &mut *ev;
        table.send(port, words)?
    };
    if let Sent::Foreign { dom, port: to } = sent {
        raise_in(current.domain(), dom, to, port);
        return Ok(0);
    }
    if let Sent::Raised(r) = sent {
        // A target vCPU running on another CPU takes its upcall at that
        // CPU's next exit: the kick makes that now (Xen's `vcpu_kick`;
        // one load while hv runs on one CPU).
        if let Some(v) = r.upcall.filter(|_| crate::arch::x86_64::smp::several()) {
            crate::arch::x86_64::smp::kick(current.domain().vcpu_cpu(v as usize));
        }
        // The wake-up, if any, with the lock let go: a blocked or polling
        // vCPU (pollers are blocked too).
        if crate::sched::any_blocked() {
            event::wake_pending_here();
        }
    }
    // An unbound port drops the event, as on Xen.
    Ok(0)
}

/// Raises port `to` of domain `dom` for a send from port `from` of `own`,
/// if the channel still joins them (the other end may have closed it, or
/// the domain gone, since `own`'s table was let go).
#[inline(never)]
fn raise_in(own: &Domain, dom: DomId, to: guest_abi::types::EvtchnPort, from: u32) {
    let Some(other) = domain::lookup(dom) else {
        return;
    };
    let from = guest_abi::types::EvtchnPort::new(from);
    let r = {
        let mut ev = other.events.lock();
        let Events { table, words } = &mut *ev;
        table.raise_from_peer(to, own.id, from, words)
    };
    event::raised(&other, r);
}

/// `EVTCHNOP_reset` / `reset_cont`, which may continue.
fn reset(cmd: u32, arg: u64) -> Outcome {
    let r = (|| {
        let EvtchnReset { dom } = read_arg(arg)?;
        let current = domain::current();
        let own = current.domain();
        with_domain(own, dom, |d, access| {
            if access == Access::Denied {
                return Err(Errno::EPERM);
            }
            // Another domain only while its controller has it paused,
            // as Xen.
            if d.id != own.id && d.with_state(|s| s.controller_pauses == 0) {
                return Err(Errno::EINVAL);
            }
            event::reset(d, cmd == EVTCHNOP_RESET_CONT)
        })?
    })();
    match r {
        Ok(true) => Outcome::Done(0),
        Ok(false) => Outcome::again([u64::from(EVTCHNOP_RESET_CONT), arg]),
        Err(e) => Outcome::Err(e),
    }
}

/// Every other command.
fn other(cmd: u32, arg: u64) -> HcResult {
    match cmd {
        EVTCHNOP_ALLOC_UNBOUND => alloc_unbound(arg),
        EVTCHNOP_BIND_INTERDOMAIN => bind_interdomain(arg),
        EVTCHNOP_BIND_VIRQ => bind_virq(arg),
        EVTCHNOP_BIND_IPI => bind_ipi(arg),
        EVTCHNOP_CLOSE => {
            let EvtchnClose { port } = read_arg(arg)?;
            let current = domain::current();
            event::close(current.domain(), port)?;
            Ok(0)
        }
        EVTCHNOP_STATUS => status(arg),
        EVTCHNOP_BIND_VCPU => {
            let EvtchnBindVcpu { port, vcpu } = read_arg(arg)?;
            own_events(|t, _| t.bind_vcpu(port, vcpu))?;
            Ok(0)
        }
        EVTCHNOP_UNMASK => {
            let EvtchnUnmask { port } = read_arg(arg)?;
            let r = own_events(|t, w| t.unmask(port, w))?;
            event::raised(domain::current().domain(), r);
            Ok(0)
        }
        EVTCHNOP_INIT_CONTROL => init_control(arg),
        EVTCHNOP_EXPAND_ARRAY => {
            let EvtchnExpandArray { array_gfn } = read_arg(arg)?;
            let current = domain::current();
            let d = current.domain();
            d.events.lock().expand_array(d, array_gfn)?;
            Ok(0)
        }
        EVTCHNOP_SET_PRIORITY => {
            let EvtchnSetPriority { port, priority } = read_arg(arg)?;
            own_events(|t, _| t.fifo_set_priority(port, priority))?;
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// Runs `f` on the calling domain's table and words, locked.
fn own_events<R>(f: impl FnOnce(&mut EventTable, &crate::mm::EventWords) -> R) -> R {
    let current = domain::current();
    let mut ev = current.domain().events.lock();
    let Events { table, words } = &mut *ev;
    f(table, words)
}

/// Runs `f` on the domain a `dom` field names (`DOMID_SELF`: the caller)
/// with what Xen's default XSM policy lets the caller do to it (its own
/// domain, or any domain for a privileged caller: `XSM_TARGET`);
/// `-ESRCH` if no domain has that id.
fn with_domain<R>(
    own: &Domain,
    dom: u16,
    f: impl FnOnce(&Domain, Access) -> R,
) -> Result<R, Errno> {
    if dom == DOMID_SELF || dom == own.id.get() {
        return Ok(f(own, Access::Allowed));
    }
    let other = DomId::try_new(dom)
        .ok()
        .and_then(domain::lookup)
        .ok_or(Errno::ESRCH)?;
    let access = if own.privileged {
        Access::Allowed
    } else {
        Access::Denied
    };
    Ok(f(&other, access))
}

fn alloc_unbound(arg: u64) -> HcResult {
    let mut a: EvtchnAllocUnbound = read_arg(arg)?;
    let current = domain::current();
    let own = current.domain();
    let remote = if a.remote_dom == DOMID_SELF {
        own.id.get()
    } else {
        a.remote_dom
    };
    let port = with_domain(own, a.dom, |d, access| {
        let mut ev = d.events.lock();
        let Events { table, words } = &mut *ev;
        table.alloc_unbound(remote, access, words)
    })??;
    a.port = port.get();
    write_arg(arg, &a)?;
    Ok(0)
}

fn bind_interdomain(arg: u64) -> HcResult {
    let mut b: EvtchnBindInterdomain = read_arg(arg)?;
    let current = domain::current();
    let own = current.domain();
    if b.remote_dom != DOMID_SELF && b.remote_dom != own.id.get() {
        // Another domain: any may bind to a port it was allocated.
        let other = DomId::try_new(b.remote_dom)
            .ok()
            .and_then(domain::lookup)
            .ok_or(Errno::ESRCH)?;
        let bound = event::with_peers(own, &other, |peers, words| {
            EventTable::bind_interdomain(peers, b.remote_port, words)
        })?;
        event::raised(own, bound.raised);
        b.local_port = bound.port.get();
        write_arg(arg, &b)?;
        return Ok(0);
    }
    let bound = {
        let mut ev = own.events.lock();
        let Events { table, words } = &mut *ev;
        EventTable::bind_interdomain(Peers::same(table), b.remote_port, words)?
    };
    event::raised(own, bound.raised);
    b.local_port = bound.port.get();
    write_arg(arg, &b)?;
    Ok(0)
}

fn bind_virq(arg: u64) -> HcResult {
    let mut b: EvtchnBindVirq = read_arg(arg)?;
    b.port = own_events(|t, w| t.bind_virq(b.virq, b.vcpu, w))?.get();
    write_arg(arg, &b)?;
    Ok(0)
}

fn bind_ipi(arg: u64) -> HcResult {
    let mut b: EvtchnBindIpi = read_arg(arg)?;
    b.port = own_events(|t, w| t.bind_ipi(b.vcpu, w))?.get();
    write_arg(arg, &b)?;
    Ok(0)
}

fn status(arg: u64) -> HcResult {
    let mut s: EvtchnStatus = read_arg(arg)?;
    let current = domain::current();
    let answer = with_domain(current.domain(), s.dom, |d, access| {
        d.events.lock().table.status(s.port, access)
    })??;
    answer.fill(&mut s);
    write_arg(arg, &s)?;
    Ok(0)
}

fn init_control(arg: u64) -> HcResult {
    let mut c: EvtchnInitControl = read_arg(arg)?;
    let current = domain::current();
    let d = current.domain();
    c.link_bits = d
        .events
        .lock()
        .init_control(d.id, c.vcpu, c.control_gfn, c.offset)?;
    write_arg(arg, &c)?;
    Ok(0)
}
