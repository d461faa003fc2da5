//! Weights and caps across domains (`XEN_DOMCTL_scheduler_op`), judged
//! by the CPU time `getdomaininfo` reports from the vCPUs' runstates.
//!
//! Two domUs that spin for ever (`tests::domu`, one vCPU each) share the
//! one CPU while dom0 sleeps in a long poll. With weights 512 and 256 the
//! first gets twice the second's time, within 10 %; capped at 25 % of a
//! CPU, a domU gets no more than that (10 % slack) although the CPU would
//! otherwise be its own for half the time. The operation itself: get
//! answers the defaults (weight 256, no cap), put sets what it names (a
//! zero weight leaves it; credit's "cap `0xffff` leaves it" is not
//! asked: credit2 refuses a cap above 100 per vCPU), and another
//! scheduler's id or an unknown command is `-EINVAL`. The test asks the
//! host which scheduler it runs (`sysctl sched_id`: hv's credit, Xen
//! 4.17's default credit2; both take the same weight and cap).
//!
//! @timeout: 120
//! @covers: domctl.scheduler_op
#![no_std]
#![no_main]

use guest_abi::domctl::*;
use guest_abi::errno::EINVAL;
use guest_abi::hypercall::typed;
use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::sched::{SchedPoll, SCHEDOP_POLL};
use tests::check;
use tests::control::sched_id;
use tests::domu::{build, context, info, simple, vcpucontext, Tiny};

guest_abi::pv_guest!(main, name = "sched_weights");

/// `jmp .`: a vCPU that only burns CPU.
const SPIN: [u8; 2] = [0xeb, 0xfe];
/// How long each share is measured.
const SPAN_NS: u64 = 3_000_000_000;

/// `XEN_DOMCTL_scheduler_op`: the result and the operation as it came back.
fn sched_op(d: u16, op: XenDomctlSchedulerOp) -> (i64, XenDomctlSchedulerOp) {
    let mut c = XenDomctl::new(XEN_DOMCTL_SCHEDULER_OP, d, &op);
    let rc = tests::control::domctl(&mut c);
    (rc, c.u.get())
}

fn op(sched_id: u32, cmd: u32, weight: u16, cap: u16) -> XenDomctlSchedulerOp {
    XenDomctlSchedulerOp {
        sched_id,
        cmd,
        weight,
        cap,
        ..Default::default()
    }
}

/// Sleeps `ns` in one poll of `port` (nothing sends on it).
fn sleep(shared: u64, port: u32, ns: u64) {
    let ports = [port];
    let p = SchedPoll {
        ports: ports.as_ptr() as u64,
        nr_ports: 1,
        _pad: 0,
        timeout: tests::clock::now(shared) + ns,
    };
    // SAFETY: `p` and the port list are live.
    unsafe { typed::sched_op(SCHEDOP_POLL, core::ptr::from_ref(&p).cast_mut().cast()) };
}

/// CPU time (ns) of each domain in `doms` over one sleep of `ns`, and
/// the wall time that passed.
fn shares(shared: u64, port: u32, doms: [u16; 2], ns: u64) -> ([u64; 2], u64) {
    let cpu = |d: u16| info(d).map_or(0, |i| i.cpu_time);
    let before = doms.map(cpu);
    let t0 = tests::clock::now(shared);
    sleep(shared, port, ns);
    let wall = tests::clock::now(shared) - t0;
    let after = doms.map(cpu);
    ([after[0] - before[0], after[1] - before[1]], wall)
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("sched_weights");
    let Some((w, shared, port)) = tests::domu::toolstack_env(&mut r, si) else {
        r.finish()
    };
    let id = sched_id();
    println!("scheduler {id}");
    check!(r, "a credit scheduler", id == XEN_SCHEDULER_CREDIT || id == XEN_SCHEDULER_CREDIT2 => true);
    let built: [Option<Tiny>; 2] = [
        build(&mut r, &w, 1, 1, &SPIN),
        build(&mut r, &w, 8, 1, &SPIN),
    ];
    let [Some(a), Some(b)] = built else {
        r.finish()
    };
    let doms = [a.id, b.id];

    // The operation.
    let (rc, got) = sched_op(a.id, op(id, XEN_DOMCTL_SCHEDOP_GETINFO, 0, 0));
    check!(r, "getinfo: the defaults", (rc, got.weight, got.cap) => (0, 256, 0));
    check!(r, "another scheduler's id", sched_op(a.id, op(id ^ 3, XEN_DOMCTL_SCHEDOP_GETINFO, 0, 0)).0 => -EINVAL);
    check!(r, "an unknown command", sched_op(a.id, op(id, 9, 0, 0)).0 => -EINVAL);
    check!(r, "no such domain", sched_op(0x7000, op(id, XEN_DOMCTL_SCHEDOP_GETINFO, 0, 0)).0 => -guest_abi::errno::ESRCH);
    check!(r, "putinfo: weight 512", sched_op(a.id, op(id, XEN_DOMCTL_SCHEDOP_PUTINFO, 512, 0)).0 => 0);
    check!(r, "putinfo: weight 0 leaves it", sched_op(a.id, op(id, XEN_DOMCTL_SCHEDOP_PUTINFO, 0, 0)).0 => 0);
    let (rc, got) = sched_op(a.id, op(id, XEN_DOMCTL_SCHEDOP_GETINFO, 0, 0));
    check!(r, "getinfo: weight 512, no cap", (rc, got.weight, got.cap) => (0, 512, 0));

    // 2:1.
    for t in [&a, &b] {
        check!(r, "setvcpucontext", vcpucontext(XEN_DOMCTL_SETVCPUCONTEXT, t.id, 0, Some(&mut context(t.l4))) => 0);
        check!(r, "unpause", simple(XEN_DOMCTL_UNPAUSEDOMAIN, t.id) => 0);
    }
    // A first while for both to be running and in debt alike.
    sleep(shared.va, port, 300_000_000);
    let ([ta, tb], wall) = shares(shared.va, port, doms, SPAN_NS);
    let ratio_x100 = ta * 100 / tb.max(1);
    println!(
        "weights 512:256: {ta} ns and {tb} ns of {wall} ns: {}.{:02}",
        ratio_x100 / 100,
        ratio_x100 % 100
    );
    r.check(
        format_args!(
            "2:1 within 10 % (got {}.{:02})",
            ratio_x100 / 100,
            ratio_x100 % 100
        ),
        (180..=220).contains(&ratio_x100),
    );
    r.check("the CPU went to them", (ta + tb) * 10 >= wall * 8);

    // A cap of 25 %, equal weights.
    check!(r, "putinfo: weight 256, cap 25", sched_op(a.id, op(id, XEN_DOMCTL_SCHEDOP_PUTINFO, 256, 25)).0 => 0);
    sleep(shared.va, port, 300_000_000);
    let ([ta, tb], wall) = shares(shared.va, port, doms, SPAN_NS);
    let pct_x10 = ta * 1000 / wall.max(1);
    println!(
        "capped at 25 %: {ta} ns of {wall} ns ({}.{} %), the other {tb} ns",
        pct_x10 / 10,
        pct_x10 % 10
    );
    r.check(
        format_args!(
            "under its cap, with 10 % slack (got {}.{} %)",
            pct_x10 / 10,
            pct_x10 % 10
        ),
        pct_x10 <= 275,
    );
    r.check("it still ran", ta > 0);
    r.check("the other took the rest", tb > ta);

    check!(r, "destroy the first", a.destroy(&w) => (0, 0));
    check!(r, "destroy the second", b.destroy(&w) => (0, 0));
    r.finish()
}
