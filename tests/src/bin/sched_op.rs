//! `sched_op` (hypercall 29): the commands a lone PV dom0 can call and come
//! back from, as Xen 4.17 answers them.
//!
//! `SCHEDOP_yield` returns 0, every time. An unknown command is `-ENOSYS`
//! (the command is a C `int`, so 0xffffffff is -1, also unknown).
//! `SCHEDOP_shutdown` and `SCHEDOP_shutdown_code` first copy in their
//! `struct sched_shutdown`, so with a pointer the guest could not read
//! itself they return `-EFAULT` and the domain keeps running, with no code
//! latched (the `shutdown` test checks what a latched code does). The
//! shutdowns themselves are in the `shutdown` test.
//!
//! `SCHEDOP_remote_shutdown` copies in its `struct sched_remote_shutdown`
//! (`-EFAULT` otherwise), then looks the domain up by id: a domain that
//! does not exist, and every special id (`DOMID_SELF` included), is
//! `-ESRCH`. Shutting dom0 down through it is in the `shutdown` test.
//!
//! @covers: sched_op.yield sched_op.shutdown sched_op.shutdown_code sched_op.remote_shutdown
#![no_std]
#![no_main]

use guest_abi::errno;
use guest_abi::hypercall::{hypercall2, sched_op_yield, SCHED_OP};
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::sched::{
    SchedRemoteShutdown, SCHEDOP_REMOTE_SHUTDOWN, SCHEDOP_SHUTDOWN, SCHEDOP_SHUTDOWN_CODE,
};
use guest_abi::xen::{DOMID_COW, DOMID_INVALID, DOMID_IO, DOMID_SELF, DOMID_XEN};
use tests::check;
use tests::expect::BAD_POINTERS;

guest_abi::pv_guest!(main, name = "sched_op");

/// Commands Xen 4.17 does not define (7 is `pin_override`, the last one).
const UNKNOWN_CMDS: &[u32] = &[8, 9, 100, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff];

/// `sched_op(cmd, arg)` with `arg` a bare address.
fn raw(cmd: u32, arg: u64) -> i64 {
    // SAFETY: callers pass commands that return to the guest (unknown
    // ones, or a shutdown whose argument cannot be read), with an address
    // no Rust object lives at.
    unsafe { hypercall2(SCHED_OP, u64::from(cmd), arg) }
}

fn main(_si: StartInfoRef) -> ! {
    let mut r = Report::new("sched_op");

    for i in 1..=5 {
        check!(r, "SCHEDOP_yield #{i}", sched_op_yield() => 0);
    }

    for &cmd in UNKNOWN_CMDS {
        check!(r, "sched_op cmd {cmd:#x}", raw(cmd, 0) => -errno::ENOSYS);
    }

    for (name, cmd) in [
        ("SCHEDOP_shutdown", SCHEDOP_SHUTDOWN),
        ("SCHEDOP_shutdown_code", SCHEDOP_SHUTDOWN_CODE),
        ("SCHEDOP_remote_shutdown", SCHEDOP_REMOTE_SHUTDOWN),
    ] {
        for &(what, addr) in BAD_POINTERS {
            check!(r, "{name} with {what} pointer {addr:#x}", raw(cmd, addr) => -errno::EFAULT);
        }
    }
    for domain_id in [
        1,
        2,
        0x7fef,
        DOMID_SELF,
        DOMID_IO,
        DOMID_XEN,
        DOMID_COW,
        DOMID_INVALID,
        0xffff,
    ] {
        let arg = SchedRemoteShutdown {
            domain_id,
            _pad: 0,
            reason: 0,
        };
        let rc = raw(SCHEDOP_REMOTE_SHUTDOWN, core::ptr::addr_of!(arg) as u64);
        check!(r, "SCHEDOP_remote_shutdown of domain {domain_id:#x}", rc => -errno::ESRCH);
    }
    r.check("the domain is still running after the bad shutdowns", true);
    check!(r, "SCHEDOP_yield after them", sched_op_yield() => 0);

    // Powering off now also shows that no shutdown code was latched by the
    // failed calls: a latched code would replace poweroff.
    r.finish()
}
