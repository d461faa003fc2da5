//! Event channels on the 2-level ABI, within one domain (loopback), as
//! Xen 4.17 runs them for a PV dom0: every operation of
//! `event_channel_op` and of the compat hypercall, their refusals, the
//! port table's growth and limit, and delivery through the event callback.
//!
//! The port table: a fresh domain's ports 0..63 are valid (port 0
//! reserved, the rest closed), port 64 is not (`-EINVAL`) until an
//! allocation reaches it, and then 64..127 are (Xen allocates channels a
//! bucket of 64 at a time); a 64-bit guest on the 2-level ABI has ports up
//! to 4095, then `-ENOSPC`. `reset` closes every port (continuing itself
//! as `reset_cont` when it preempts).
//!
//! Delivery (vCPU 0's `vcpu_info` in the mapped shared-info page; the
//! callback in `tests::evtchn` records each upcall and takes its ports): a
//! raised port sets its pending bit, its word's selector bit and
//! `evtchn_upcall_pending`; while `evtchn_upcall_mask` is set nothing is
//! delivered. On the way back to the guest with the mask clear and an
//! upcall pending, the hypervisor bounces to the event callback with the
//! mask set, in a frame like an exception's without error code (`rcx,
//! r11, rip, cs, rflags, rsp, ss`, 16-byte aligned below the interrupted
//! rsp; cs with RPL 0 and the saved mask 0 in bits 32-39; rflags.IF set)
//! whose rip is the interrupted one: right after the `syscall` of the
//! hypercall that raised the event (`send`), that unmasked a pending port
//! (`unmask`), that a guest makes after unmasking in memory (any
//! hypercall: `xen_version` here), or the target of an `iret` whose
//! rflags.IF unmasks. Any non-zero `evtchn_upcall_pending` byte counts.
//! A port masked in `evtchn_mask` is left pending without an upcall until
//! `unmask`. An exception taken with events unmasked and an upcall
//! pending gets the upcall's frame on top of its own: the event callback
//! runs first, interrupting the exception handler's first instruction.
//! With `nocallback`, an upcall due with no event callback
//! registered crashes the domain. The report names the vector that took
//! hv in: the hypercall that unmasking makes, or an interrupt landing
//! between the unmask and that hypercall.
//!
//! @covers: event_channel_op.alloc_unbound event_channel_op.bind_interdomain event_channel_op.bind_virq event_channel_op.bind_ipi event_channel_op.bind_vcpu event_channel_op.send event_channel_op.close event_channel_op.status event_channel_op.unmask event_channel_op.reset event_channel_op.reset_cont event_channel_op.set_priority event_channel_op.expand_array
//! @covers: event_channel_op_compat callback_op.register iret
//! @variant: nocallback cmdline=nocallback expect-result=none expect-exit=crash expect-line="unmasking with an IPI pending and no event callback" expect-line="(hv) ERROR: CPU0: domain 0 crashed: event upcall (vector " expect-line="(XEN) domain_crash_sync called from entry.S" expect-line="(XEN) Hardware Dom0 crashed: rebooting machine in 5 seconds."
//! @variant: smp4 smp=4
#![no_std]
#![no_main]

use guest_abi::errno::{EBUSY, EEXIST, EFAULT, EINVAL, ENOENT, ENOSPC, ENOSYS, EOPNOTSUPP, ESRCH};
use guest_abi::event_channel::{
    EvtchnOp, EvtchnReset, EvtchnSend, EvtchnUnmask, EVTCHNOP_INIT_CONTROL, EVTCHNOP_RESET,
    EVTCHNOP_RESET_CONT, EVTCHNOP_SEND, EVTCHNOP_STATUS, EVTCHNOP_UNMASK, EVTCHNSTAT_CLOSED,
    EVTCHNSTAT_INTERDOMAIN, EVTCHNSTAT_IPI, EVTCHNSTAT_UNBOUND, EVTCHNSTAT_VIRQ,
};
use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::TrapInfo;
use guest_abi::xen::{DOMID_SELF, VIRQ_CONSOLE, VIRQ_DEBUG, VIRQ_DOM_EXC, VIRQ_TIMER};
use tests::check;
use tests::evtchn::{self as ev, Words};
use tests::expect::BAD_POINTERS;
use tests::fixup::{self, SharedInfo};

guest_abi::pv_guest!(main, name = "evtchn");

const CLOSED: i64 = EVTCHNSTAT_CLOSED as i64;
const UNBOUND: i64 = EVTCHNSTAT_UNBOUND as i64;
const VIRQ: i64 = EVTCHNSTAT_VIRQ as i64;
const IPI: i64 = EVTCHNSTAT_IPI as i64;
/// A domain id no domain has.
const NO_DOMAIN: u16 = 5;
/// The guest kernel's cs as a bounce frame shows it (RPL 0) and its ss.
const FRAME_CS: u64 = 0xe030;
const FRAME_SS: u64 = 0xe02b;
const IF: u64 = 1 << 9;

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("evtchn");

    fresh_table(&mut r);
    let Some(shared) = SharedInfo::map(si) else {
        r.check("map shared_info", false);
        r.finish()
    };
    let w = Words::new(shared.va);
    check!(r, "evtchn_upcall_mask at start of day", w.upcall_mask() => 1);
    if core::str::from_utf8(si.cmd_line_bytes()) == Ok("nocallback") {
        no_callback(w);
    }
    check!(r, "register the event callback", ev::install_callback() => 0);

    let Some(ports) = bind_all(&mut r, w) else {
        r.finish()
    };
    refusals(&mut r, w, &ports, si);
    compat(&mut r, w, &ports);
    delivery(&mut r, w, &ports);
    w.set_upcall_mask(true);
    closing(&mut r, &ports);
    limits(&mut r);
    r.finish()
}

/// An upcall due with no event callback registered crashes the domain.
fn no_callback(w: Words) -> ! {
    let ipi = ev::bind_ipi(0).unwrap_or(1);
    let _ = ev::send(ipi);
    println!("unmasking with an IPI pending and no event callback");
    w.unmask_events();
    println!("still running after an upcall with no event callback");
    guest_abi::rt::poweroff()
}

/// A fresh domain's table: one bucket.
fn fresh_table(r: &mut Report) {
    check!(r, "status of port 0 (reserved) on a fresh domain", ev::state(0) => CLOSED);
    check!(r, "status of port 1", ev::state(1) => CLOSED);
    check!(r, "status of port 63 (last of the first bucket)", ev::state(63) => CLOSED);
    check!(r, "status of port 64 (no bucket yet)", ev::state(64) => -EINVAL);
    check!(r, "status of port 4096", ev::state(4096) => -EINVAL);
    check!(r, "status of port 0xffffffff", ev::state(u32::MAX) => -EINVAL);
    let s0 = ev::status(DOMID_SELF, 0).unwrap_or_default();
    check!(r, "status of port 0: vcpu", s0.vcpu => 0);
}

/// The ports the rest works with.
struct Ports {
    /// A loopback channel: `a` allocated unbound, `b` bound to it.
    a: u32,
    b: u32,
    ipi: u32,
    /// Global and per-vCPU VIRQs.
    console: u32,
    debug: u32,
    /// Unbound for a domain that does not exist.
    foreign: u32,
}

fn bind_all(r: &mut Report, w: Words) -> Option<Ports> {
    let a = ev::alloc_unbound(DOMID_SELF, DOMID_SELF);
    check!(r, "alloc_unbound(SELF, SELF): the lowest free port", a => Ok(1));
    let a = a.ok()?;
    let s = ev::status(DOMID_SELF, a).unwrap_or_default();
    check!(r, "status(a): unbound", s.status => EVTCHNSTAT_UNBOUND);
    check!(r, "status(a): remote domain is the caller's id", s.remote_dom() => 0);
    let s = ev::status(0, a).unwrap_or_default();
    check!(r, "status by own id 0 works as SELF", s.status => EVTCHNSTAT_UNBOUND);
    check!(r, "nothing pending before the bind", w.pending(2) => false);

    let b = ev::bind_interdomain(DOMID_SELF, a);
    check!(r, "bind_interdomain(SELF, a)", b => Ok(2));
    let b = b.ok()?;
    for (name, port, other) in [("a", a, b), ("b", b, a)] {
        let s = ev::status(DOMID_SELF, port).unwrap_or_default();
        check!(r, "status({name}): interdomain", s.status => EVTCHNSTAT_INTERDOMAIN);
        check!(r, "status({name}): remote domain", s.remote_dom() => 0);
        check!(r, "status({name}): remote port", s.remote_port() => other);
    }
    // Xen conservatively raises the new local port on a bind.
    check!(r, "bind_interdomain raised the new port b", w.pending(b) => true);
    check!(r, "... and not a", w.pending(a) => false);
    check!(r, "... its word's selector bit", w.pending_sel() => 1);
    check!(r, "... and evtchn_upcall_pending", w.upcall_pending() => 1);
    check!(r, "no upcall while events are masked", ev::upcalls() => 0);
    w.clear_all();

    check!(r, "send(a)", ev::send(a) => 0);
    check!(r, "send(a) raised b", w.pending(b) => true);
    check!(r, "send(a) left a alone", w.pending(a) => false);
    check!(r, "send(a): selector", w.pending_sel() => 1);
    check!(r, "send(a): evtchn_upcall_pending", w.upcall_pending() => 1);
    w.clear_all();
    check!(r, "send(b)", ev::send(b) => 0);
    check!(r, "send(b) raised a", w.pending(a) => true);
    w.clear_all();

    let ipi = ev::bind_ipi(0);
    check!(r, "bind_ipi(vcpu 0)", ipi => Ok(3));
    let ipi = ipi.ok()?;
    check!(r, "status(ipi)", ev::state(ipi) => IPI);
    check!(r, "send(ipi)", ev::send(ipi) => 0);
    check!(r, "send(ipi) raised it", w.pending(ipi) => true);
    w.clear_all();

    let console = ev::bind_virq(VIRQ_CONSOLE, 0);
    check!(r, "bind_virq(VIRQ_CONSOLE, vcpu 0)", console => Ok(4));
    let console = console.ok()?;
    let s = ev::status(DOMID_SELF, console).unwrap_or_default();
    check!(r, "status(console): virq", s.status => EVTCHNSTAT_VIRQ);
    check!(r, "status(console): which virq", s.irq() => VIRQ_CONSOLE);
    check!(r, "bind_virq(VIRQ_CONSOLE) again", ev::bind_virq(VIRQ_CONSOLE, 0) => Err(-EEXIST));
    let debug = ev::bind_virq(VIRQ_DEBUG, 0);
    check!(r, "bind_virq(VIRQ_DEBUG, vcpu 0) (per-vCPU)", debug => Ok(5));
    let debug = debug.ok()?;
    check!(r, "bind_virq(VIRQ_DEBUG) again", ev::bind_virq(VIRQ_DEBUG, 0) => Err(-EEXIST));
    let dom_exc = ev::bind_virq(VIRQ_DOM_EXC, 0);
    check!(r, "bind_virq(VIRQ_DOM_EXC, vcpu 0)", dom_exc => Ok(6));
    // VIRQ_TIMER may fire on Xen (its default periodic timer): bound and
    // closed at once, with events masked, and only results checked.
    let timer = ev::bind_virq(VIRQ_TIMER, 0);
    check!(r, "bind_virq(VIRQ_TIMER, vcpu 0)", timer => Ok(7));
    check!(r, "bind_virq(VIRQ_TIMER) again", ev::bind_virq(VIRQ_TIMER, 0) => Err(-EEXIST));
    check!(r, "close(timer)", ev::close(timer.unwrap_or(0)) => 0);
    check!(r, "close(dom_exc)", ev::close(dom_exc.unwrap_or(0)) => 0);
    check!(r, "bind_virq(VIRQ_DOM_EXC) after its close", ev::bind_virq(VIRQ_DOM_EXC, 0) => Ok(6));
    check!(r, "close(dom_exc) again", ev::close(6) => 0);
    w.clear_all();

    // A port left unbound for a domain that does not exist: the remote
    // domain is not checked.
    let foreign = ev::alloc_unbound(DOMID_SELF, 7);
    check!(r, "alloc_unbound(SELF, 7): the lowest free port", foreign => Ok(6));
    let foreign = foreign.ok()?;
    let s = ev::status(DOMID_SELF, foreign).unwrap_or_default();
    check!(r, "status(foreign): unbound", s.status => EVTCHNSTAT_UNBOUND);
    check!(r, "status(foreign): remote domain 7", s.remote_dom() => 7);
    Some(Ports {
        a,
        b,
        ipi,
        console,
        debug,
        foreign,
    })
}

fn refusals(r: &mut Report, w: Words, p: &Ports, si: StartInfoRef) {
    // Virtual IRQs.
    check!(r, "bind_virq(VIRQ_CONSOLE, vcpu 1): global on vCPU 1", ev::bind_virq(VIRQ_CONSOLE, 1) => Err(-EINVAL));
    check!(r, "bind_virq(VIRQ_DEBUG, vcpu 1): no such vCPU", ev::bind_virq(VIRQ_DEBUG, 1) => Err(-ENOENT));
    check!(r, "bind_virq(VIRQ_DEBUG, vcpu 0xffffffff)", ev::bind_virq(VIRQ_DEBUG, u32::MAX) => Err(-ENOENT));
    check!(r, "bind_virq(24) (NR_VIRQS)", ev::bind_virq(24, 0) => Err(-EINVAL));
    check!(r, "bind_virq(0xffffffff)", ev::bind_virq(u32::MAX, 0) => Err(-EINVAL));
    check!(r, "bind_ipi(vcpu 1)", ev::bind_ipi(1) => Err(-ENOENT));

    // Sends.
    check!(r, "send(0) (reserved)", ev::send(0) => -EINVAL);
    check!(r, "send(60) (closed)", ev::send(60) => -EINVAL);
    check!(r, "send(64) (out of range)", ev::send(64) => -EINVAL);
    check!(r, "send(0xffffffff)", ev::send(u32::MAX) => -EINVAL);
    check!(r, "send(console) (a VIRQ)", ev::send(p.console) => -EINVAL);
    check!(r, "send(foreign) (unbound): dropped", ev::send(p.foreign) => 0);
    check!(r, "... nothing pending", w.pending(p.foreign) => false);
    check!(r, "... no upcall asked", w.upcall_pending() => 0);

    // Binding to ports that are not unbound for us.
    check!(r, "bind_interdomain(SELF, foreign) (unbound for dom 7)", ev::bind_interdomain(DOMID_SELF, p.foreign) => Err(-EINVAL));
    check!(r, "bind_interdomain(SELF, 60) (closed)", ev::bind_interdomain(DOMID_SELF, 60) => Err(-EINVAL));
    check!(r, "bind_interdomain(SELF, 64) (out of range)", ev::bind_interdomain(DOMID_SELF, 64) => Err(-EINVAL));
    check!(r, "bind_interdomain(SELF, ipi)", ev::bind_interdomain(DOMID_SELF, p.ipi) => Err(-EINVAL));
    check!(r, "bind_interdomain(SELF, b) (bound already)", ev::bind_interdomain(DOMID_SELF, p.b) => Err(-EINVAL));
    check!(r, "bind_interdomain(5, a) (no such domain)", ev::bind_interdomain(NO_DOMAIN, p.a) => Err(-ESRCH));
    check!(r, "alloc_unbound(5, SELF) (no such domain)", ev::alloc_unbound(NO_DOMAIN, DOMID_SELF) => Err(-ESRCH));
    check!(r, "status(5, a) (no such domain)", ev::status(NO_DOMAIN, p.a).map(|s| s.status) => Err(-ESRCH));

    // Moving notifications.
    check!(r, "bind_vcpu(a, vcpu 1)", ev::bind_vcpu(p.a, 1) => -ENOENT);
    check!(r, "bind_vcpu(64, vcpu 1): the vCPU first", ev::bind_vcpu(64, 1) => -ENOENT);
    check!(r, "bind_vcpu(a, vcpu 0)", ev::bind_vcpu(p.a, 0) => 0);
    check!(r, "bind_vcpu(foreign, vcpu 0) (unbound)", ev::bind_vcpu(p.foreign, 0) => 0);
    check!(r, "bind_vcpu(console, vcpu 0) (global VIRQ)", ev::bind_vcpu(p.console, 0) => 0);
    check!(r, "bind_vcpu(debug, vcpu 0) (per-vCPU VIRQ)", ev::bind_vcpu(p.debug, 0) => -EINVAL);
    check!(r, "bind_vcpu(ipi, vcpu 0)", ev::bind_vcpu(p.ipi, 0) => -EINVAL);
    check!(r, "bind_vcpu(60, vcpu 0) (closed)", ev::bind_vcpu(60, 0) => -EINVAL);
    check!(r, "bind_vcpu(64, vcpu 0) (out of range)", ev::bind_vcpu(64, 0) => -EINVAL);

    // Closing, unmasking, priorities, FIFO-only and unknown commands.
    check!(r, "close(0) (reserved)", ev::close(0) => -EINVAL);
    check!(r, "close(60) (closed)", ev::close(60) => -EINVAL);
    check!(r, "close(64) (out of range)", ev::close(64) => -EINVAL);
    check!(r, "unmask(64) (out of range)", ev::unmask(64) => -EINVAL);
    check!(r, "unmask(60) (closed)", ev::unmask(60) => 0);
    check!(r, "unmask(0) (reserved)", ev::unmask(0) => 0);
    check!(r, "set_priority(a, 0) on the 2-level ABI", ev::set_priority(p.a, 0) => -ENOSYS);
    check!(r, "set_priority(64, 0): the port first", ev::set_priority(64, 0) => -EINVAL);
    check!(r, "set_priority(60, 0) (closed) on the 2-level ABI", ev::set_priority(60, 0) => -ENOSYS);
    check!(r, "expand_array before init_control", ev::expand_array(0) => -EOPNOTSUPP);
    let mut reset = EvtchnReset { dom: DOMID_SELF };
    check!(r, "reset_cont with no reset under way", ev::op(EVTCHNOP_RESET_CONT, &mut reset) => -EBUSY);
    check!(r, "reset(5) (no such domain)", ev::reset(NO_DOMAIN) => -ESRCH);
    for cmd in [15u32, 16, 100, 0x7fff_ffff, 0xffff_ffff] {
        check!(r, "event_channel_op cmd {cmd:#x}", ev::op_raw(cmd, 0) => -ENOSYS);
    }

    // Arguments that cannot be read, or written back.
    for &(what, addr) in BAD_POINTERS {
        check!(r, "send with {what} argument", ev::op_raw(EVTCHNOP_SEND, addr) => -EFAULT);
        check!(r, "status with {what} argument", ev::op_raw(EVTCHNOP_STATUS, addr) => -EFAULT);
    }
    // The bootstrap L4 is mapped read-only: its first 8 bytes (the empty
    // entry 0) read as status(dom 0, port 0), which succeeds, and the
    // answer cannot be written back.
    let l4 = si.pt_base;
    check!(r, "status with a read-only argument: the copy back faults", ev::op_raw(EVTCHNOP_STATUS, l4) => -EFAULT);
}

/// The pre-3.0.2 hypercall: the command, then the union.
fn compat(r: &mut Report, w: Words, p: &Ports) {
    let mut op = EvtchnOp {
        cmd: EVTCHNOP_SEND,
        u: [p.ipi, 0, 0, 0, 0, 0],
    };
    check!(r, "compat send(ipi)", ev::compat_raw(core::ptr::from_mut(&mut op) as u64) => 0);
    check!(r, "compat send(ipi) raised it", w.pending(p.ipi) => true);
    w.clear_all();
    let mut op = EvtchnOp {
        cmd: EVTCHNOP_STATUS,
        u: [u32::from(DOMID_SELF), p.ipi, 0xaaaa, 0xbbbb, 0, 0],
    };
    check!(r, "compat status(ipi)", ev::compat_raw(core::ptr::from_mut(&mut op) as u64) => 0);
    check!(r, "compat status(ipi): the answer after the command word", op.u[2] => EVTCHNSTAT_IPI);
    check!(r, "compat status(ipi): vcpu", op.u[3] => 0);
    for cmd in [
        EVTCHNOP_RESET,
        EVTCHNOP_RESET_CONT,
        EVTCHNOP_INIT_CONTROL,
        100,
    ] {
        let mut op = EvtchnOp {
            cmd,
            u: [u32::from(DOMID_SELF), 0, 0, 0, 0, 0],
        };
        check!(r, "compat cmd {cmd} (not forwarded)", ev::compat_raw(core::ptr::from_mut(&mut op) as u64) => -ENOSYS);
    }
    let mut op = EvtchnOp {
        cmd: EVTCHNOP_UNMASK,
        u: [64, 0, 0, 0, 0, 0],
    };
    check!(r, "compat unmask(64)", ev::compat_raw(core::ptr::from_mut(&mut op) as u64) => -EINVAL);
    for &(what, addr) in BAD_POINTERS {
        check!(r, "compat with {what} argument", ev::compat_raw(addr) => -EFAULT);
    }
}

/// The frame an upcall left, checked against the interrupted context.
fn check_frame(r: &mut Report, what: &str, rip: u64, rsp: u64) {
    let u = ev::last();
    check!(r, "{what}: events masked on entry", u.mask => 1);
    check!(r, "{what}: frame rip is the interrupted one", u.frame[2] => rip);
    check!(r, "{what}: frame cs (RPL 0, saved mask 0)", u.frame[3] => FRAME_CS);
    r.check(
        format_args!("{what}: frame rflags {:#x} has IF (mask was 0)", u.frame[4]),
        u.frame[4] & IF != 0,
    );
    check!(r, "{what}: frame rsp is the interrupted one", u.frame[5] => rsp);
    check!(r, "{what}: frame ss", u.frame[6] => FRAME_SS);
    check!(r, "{what}: frame 16-byte aligned below rsp", u.frame_va => (rsp & !0xf) - 56);
}

/// The ports the last upcall took.
fn took(r: &mut Report, what: &str, want: &[u32]) {
    let u = ev::last();
    let got = &u.ports[..u.nports.min(8)];
    r.check(
        format_args!("{what}: took ports {got:?} (want {want:?})"),
        got == want,
    );
}

fn delivery(r: &mut Report, w: Words, p: &Ports) {
    w.clear_all();
    // Raised while masked; the guest unmasks and asks.
    check!(r, "send(a) while masked", ev::send(p.a) => 0);
    check!(r, "no upcall while masked", ev::upcalls() => 0);
    w.unmask_events();
    check!(r, "unmasking in memory, then a hypercall: one upcall", ev::upcalls() => 1);
    let u = ev::last();
    check!(r, "upcall: evtchn_upcall_pending on entry", u.pending => 1);
    check!(r, "upcall: selector", u.sel => 1);
    took(r, "upcall", &[p.b]);
    check!(r, "upcall: frame cs", u.frame[3] => FRAME_CS);
    check!(r, "after the callback's iret: events unmasked", w.upcall_mask() => 0);

    // Raised by the hypercall itself while unmasked.
    let send = EvtchnSend { port: p.a };
    let (rc, rip, rsp) = ev::op_at(EVTCHNOP_SEND, &send);
    check!(r, "send(a) while unmasked", rc => 0);
    check!(r, "... upcall on its way back", ev::upcalls() => 2);
    check_frame(r, "send's upcall", rip, rsp);
    took(r, "send's upcall", &[p.b]);

    let send = EvtchnSend { port: p.ipi };
    let (rc, _, _) = ev::op_at(EVTCHNOP_SEND, &send);
    check!(r, "send(ipi) while unmasked", rc => 0);
    check!(r, "... upcall", ev::upcalls() => 3);
    took(r, "ipi upcall", &[p.ipi]);

    // A port masked in evtchn_mask: pending, no upcall until unmask.
    w.set_masked(p.b, true);
    check!(r, "send(a) with b masked", ev::send(p.a) => 0);
    check!(r, "... b pending", w.pending(p.b) => true);
    check!(r, "... no upcall asked", w.upcall_pending() => 0);
    check!(r, "... none made", ev::upcalls() => 3);
    let un = EvtchnUnmask { port: p.b };
    let (rc, rip, rsp) = ev::op_at(EVTCHNOP_UNMASK, &un);
    check!(r, "unmask(b)", rc => 0);
    check!(r, "... clears the mask bit", w.masked(p.b) => false);
    check!(r, "... re-delivers b", ev::upcalls() => 4);
    check_frame(r, "unmask's upcall", rip, rsp);
    took(r, "unmask's upcall", &[p.b]);

    // Pending while masked, then an iret that unmasks.
    w.set_upcall_mask(true);
    check!(r, "send(a) with events masked", ev::send(p.a) => 0);
    check!(r, "... no upcall", ev::upcalls() => 4);
    let (at, rsp) = ev::iret_here();
    check!(r, "iret with rflags.IF: the upcall on its way back", ev::upcalls() => 5);
    check_frame(r, "iret's upcall", at, rsp);
    took(r, "iret's upcall", &[p.b]);
    check!(r, "after it: events unmasked", w.upcall_mask() => 0);

    // An iret that leaves events masked delivers nothing.
    w.set_upcall_mask(true);
    check!(r, "send(a) with events masked, again", ev::send(p.a) => 0);
    check!(r, "a hypercall with events masked: no upcall", {
        ev::force_callback();
        ev::upcalls()
    } => 5);

    // Any non-zero evtchn_upcall_pending asks for an upcall.
    w.clear_all();
    w.set_upcall_pending(2);
    w.unmask_events();
    check!(r, "evtchn_upcall_pending = 2, then unmasked: an upcall", ev::upcalls() => 6);
    check!(r, "... which saw pending 2", ev::last().pending => 2);
    check!(r, "... and took no port", ev::last().nports => 0);
    check!(r, "no upcall while nothing is pending", {
        ev::force_callback();
        ev::upcalls()
    } => 6);

    // An exception with events unmasked and an upcall pending, asked for
    // by no hypercall: the upcall's frame goes on top of the exception's,
    // so the event callback runs first, interrupting the #BP handler's
    // first instruction.
    let table = [fixup::trap(3, 3, ev::int3_handler()), TrapInfo::default()];
    check!(r, "trap table with a #BP handler", fixup::set_trap_table(&table) => 0);
    w.set_upcall_mask(true);
    w.clear_all();
    w.set_upcall_pending(1);
    w.set_upcall_mask(false);
    let after: u64;
    // SAFETY: the #BP handler returns to the next instruction with every
    // register but rcx/r11 preserved (declared clobbered).
    unsafe {
        core::arch::asm!(
            "int3",
            "2:",
            "lea {after}, [rip + 2b]",
            after = out(reg) after,
            out("rcx") _,
            out("r11") _,
        );
    }
    let (runs, before, rip) = ev::int3_seen();
    check!(r, "int3 with an upcall pending: the #BP handler ran", runs => 1);
    check!(r, "... after the upcall", before => 7);
    check!(r, "... and returned after the int3", rip => after);
    check!(r, "the upcall interrupted the #BP handler's entry", ev::last().frame[2] => ev::int3_handler() as *const () as u64);
    check!(r, "... in kernel mode (cs RPL 0)", ev::last().frame[3] => FRAME_CS);
    check!(r, "... events masked on entry", ev::last().mask => 1);
    println!("delivery: {} upcalls", ev::upcalls());
}

fn closing(r: &mut Report, p: &Ports) {
    check!(r, "close(b)", ev::close(p.b) => 0);
    check!(r, "a is unbound again", ev::state(p.a) => UNBOUND);
    let s = ev::status(DOMID_SELF, p.a).unwrap_or_default();
    check!(r, "... for the caller", s.remote_dom() => 0);
    check!(r, "b is closed", ev::state(p.b) => CLOSED);
    check!(r, "close(b) again", ev::close(p.b) => -EINVAL);
    check!(r, "bind_interdomain(SELF, a) again: port b again", ev::bind_interdomain(DOMID_SELF, p.a) => Ok(p.b));
    check!(r, "close(a): b unbound", ev::close(p.a) => 0);
    check!(r, "state of b", ev::state(p.b) => UNBOUND);
    check!(r, "close(console)", ev::close(p.console) => 0);
    check!(r, "bind_virq(VIRQ_CONSOLE) after its close", ev::bind_virq(VIRQ_CONSOLE, 0) => Ok(p.a));
    check!(r, "state of the console port", ev::state(p.a) => VIRQ);
    check!(r, "close(ipi)", ev::close(p.ipi) => 0);
    check!(r, "state of the closed ipi port", ev::state(p.ipi) => CLOSED);
    let s = ev::status(DOMID_SELF, p.foreign).unwrap_or_default();
    check!(r, "foreign unbound port untouched", (s.status, s.remote_dom()) => (EVTCHNSTAT_UNBOUND, 7));
}

/// Growth by buckets, the 2-level limit, and reset.
fn limits(r: &mut Report) {
    let mut last = 0;
    let mut n = 0u32;
    let mut at64 = None;
    let err = loop {
        match ev::alloc_unbound(DOMID_SELF, DOMID_SELF) {
            Ok(p) => {
                last = p;
                n += 1;
                if p == 64 {
                    at64 = Some((ev::state(127), ev::state(128)));
                }
            }
            Err(e) => break e,
        }
        if n > 5000 {
            break 0;
        }
    };
    check!(r, "once port 64 is allocated: 127 valid, 128 not", at64 => Some((CLOSED, -EINVAL)));
    check!(r, "alloc_unbound until it fails: -ENOSPC", err => -ENOSPC);
    check!(r, "the last port allocated (2-level: 64 x 64 ports)", last => 4095);
    println!("allocated {n} ports up to {last}");
    check!(r, "status(4095)", ev::state(4095) => UNBOUND);
    check!(r, "status(4096) (beyond the ABI)", ev::state(4096) => -EINVAL);
    check!(r, "bind_ipi with no port free", ev::bind_ipi(0) => Err(-ENOSPC));
    check!(r, "bind_interdomain with no port free: -ENOSPC first", ev::bind_interdomain(DOMID_SELF, 60) => Err(-ENOSPC));
    check!(r, "bind_virq with no port free", ev::bind_virq(VIRQ_DOM_EXC, 0) => Err(-ENOSPC));
    check!(r, "bind_virq(VIRQ_CONSOLE) bound already: -EEXIST first", ev::bind_virq(VIRQ_CONSOLE, 0) => Err(-EEXIST));

    check!(r, "reset(SELF)", ev::reset(DOMID_SELF) => 0);
    for port in [1, 2, 63, 64, 4095] {
        check!(r, "after reset: port {port} closed", ev::state(port) => CLOSED);
    }
    check!(r, "after reset: status(4096)", ev::state(4096) => -EINVAL);
    check!(r, "after reset: alloc_unbound gives port 1", ev::alloc_unbound(DOMID_SELF, DOMID_SELF) => Ok(1));
    check!(r, "after reset: bind_virq(VIRQ_CONSOLE) again", ev::bind_virq(VIRQ_CONSOLE, 0) => Ok(2));
    let mut reset = EvtchnReset { dom: DOMID_SELF };
    check!(r, "reset_cont after the reset finished", ev::op(EVTCHNOP_RESET_CONT, &mut reset) => -EBUSY);
    check!(r, "reset(0) (own id)", ev::reset(0) => 0);
    check!(r, "after it: port 1 closed", ev::state(1) => CLOSED);
}
