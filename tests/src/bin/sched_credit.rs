//! `XEN_DOMCTL_scheduler_op` under credit on both sides (Xen booted with
//! `sched=credit`, hv's only scheduler): on domain 0 itself and on a
//! created domain that never ran. Get answers the defaults (weight 256,
//! no cap); put sets what it names, and credit's "leave it" values are
//! weight 0 and cap `0xffff`; neither is bounded otherwise (weight 65534,
//! cap 5000 on a one-vCPU domain are taken as given). Another
//! scheduler's id (credit2's, even though Xen has it built in), a
//! per-vCPU command and an unknown one are `-EINVAL` and change nothing;
//! an unknown domain is `-ESRCH`.
//!
//! @xen-cmdline-append: sched=credit
//! @covers: domctl.scheduler_op
#![no_std]
#![no_main]

use guest_abi::domctl::*;
use guest_abi::errno::{EINVAL, ESRCH};
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use tests::check;
use tests::control::domctl_on;
use tests::control::sched_id;
use tests::domu::simple;

guest_abi::pv_guest!(main, name = "sched_credit");

const CREDIT: u32 = XEN_SCHEDULER_CREDIT;
const GET: u32 = XEN_DOMCTL_SCHEDOP_GETINFO;
const PUT: u32 = XEN_DOMCTL_SCHEDOP_PUTINFO;

/// `scheduler_op` on `d`: the result, and the weight and cap that came back.
fn sched_op(d: u16, sched_id: u32, cmd: u32, weight: u16, cap: u16) -> (i64, u16, u16) {
    let op = XenDomctlSchedulerOp {
        sched_id,
        cmd,
        weight,
        cap,
        ..Default::default()
    };
    let mut c = XenDomctl::new(XEN_DOMCTL_SCHEDULER_OP, d, &op);
    let rc = tests::control::domctl(&mut c);
    let got: XenDomctlSchedulerOp = c.u.get();
    (rc, got.weight, got.cap)
}

fn get(d: u16) -> (i64, u16, u16) {
    sched_op(d, CREDIT, GET, 0, 0)
}

/// The rules on domain `d`, whose parameters start as the defaults;
/// leaves them as the defaults.
fn rules(r: &mut Report, d: u16) {
    check!(r, "getinfo: the defaults", get(d) => (0, 256, 0));
    check!(r, "putinfo: weight 512, cap 30", sched_op(d, CREDIT, PUT, 512, 30).0 => 0);
    check!(r, "getinfo: 512, 30", get(d) => (0, 512, 30));
    check!(r, "putinfo: weight 0 and cap 0xffff leave them", sched_op(d, CREDIT, PUT, 0, 0xffff).0 => 0);
    check!(r, "getinfo: still 512, 30", get(d) => (0, 512, 30));
    check!(r, "putinfo: weight 0, cap 0 removes the cap", sched_op(d, CREDIT, PUT, 0, 0).0 => 0);
    check!(r, "getinfo: 512, no cap", get(d) => (0, 512, 0));
    check!(r, "putinfo: weight 65534, cap 5000", sched_op(d, CREDIT, PUT, 0xfffe, 5000).0 => 0);
    check!(r, "getinfo: 65534, 5000", get(d) => (0, 0xfffe, 5000));
    check!(r, "credit2's id", sched_op(d, XEN_SCHEDULER_CREDIT2, PUT, 1, 1).0 => -EINVAL);
    check!(r, "id 0", sched_op(d, 0, GET, 0, 0).0 => -EINVAL);
    check!(r, "putvcpuinfo", sched_op(d, CREDIT, XEN_DOMCTL_SCHEDOP_PUTVCPUINFO, 1, 1).0 => -EINVAL);
    check!(r, "getvcpuinfo", sched_op(d, CREDIT, XEN_DOMCTL_SCHEDOP_GETVCPUINFO, 0, 0).0 => -EINVAL);
    check!(r, "command 4", sched_op(d, CREDIT, 4, 1, 1).0 => -EINVAL);
    check!(r, "command 0xffffffff", sched_op(d, CREDIT, u32::MAX, 1, 1).0 => -EINVAL);
    check!(r, "the bad ones changed nothing", get(d) => (0, 0xfffe, 5000));
    check!(r, "putinfo: back to 256, no cap", sched_op(d, CREDIT, PUT, 256, 0).0 => 0);
    check!(r, "getinfo: the defaults again", get(d) => (0, 256, 0));
}

fn main(_si: StartInfoRef) -> ! {
    let mut r = Report::new("sched_credit");
    check!(r, "sysctl sched_id: credit", sched_id() => CREDIT);

    rules(&mut r, 0);

    let (rc, d) = domctl_on(XenDomctl::new(
        XEN_DOMCTL_CREATEDOMAIN,
        0,
        &XenDomctlCreatedomain::pv(2, [0; 16]),
    ));
    check!(r, "createdomain", rc => 0);
    if rc == 0 {
        check!(r, "max_vcpus 2", domctl_on(XenDomctl::new(XEN_DOMCTL_MAX_VCPUS, d, &XenDomctlMaxVcpus { max: 2 })).0 => 0);
        rules(&mut r, d);
        check!(r, "dom0's weight is its own", sched_op(d, CREDIT, PUT, 1000, 0).0 => 0);
        check!(r, "dom0 kept the default", get(0) => (0, 256, 0));
        check!(r, "destroydomain", simple(XEN_DOMCTL_DESTROYDOMAIN, d) => 0);
        check!(r, "a destroyed domain", get(d).0 => -ESRCH);
    }
    check!(r, "no such domain", get(0x7000).0 => -ESRCH);
    check!(r, "DOMID_SELF is no domain here", get(0x7ff0).0 => -ESRCH);
    r.finish()
}
