//! `SCHEDOP_watchdog`: a domain has two watchdog timers, numbered 1 and 2.
//!
//! Id 0 takes the first free one and arms it; when both are taken it
//! returns -ENOSPC converted to a 32-bit unsigned value (0xffffffe4, a
//! positive result: Xen's `uint32_t` arithmetic); a taken id is re-armed with a non-zero timeout and freed with
//! timeout 0; an id above 2, or one not taken, is `-EINVAL`; an
//! unreadable argument is `-EFAULT`. The plain run checks those answers
//! and frees both timers before powering off. The `fire` run arms a
//! one-second watchdog and keeps yielding: the domain is then shut down
//! with `SHUTDOWN_watchdog`, which for dom0 restarts the machine.
//!
//! @covers: sched_op.watchdog
//! @variant: fire cmdline=fire expect-exit=watchdog expect-line="(hv) domain 0 shut down: watchdog (reason 4)" expect-line="(XEN) Watchdog timer" expect-line="(XEN) Hardware Dom0 shutdown: watchdog rebooting machine"
#![no_std]
#![no_main]

use guest_abi::errno;
use guest_abi::hypercall::{hypercall2, sched_op_yield, SCHED_OP};
use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::sched::{SchedWatchdog, SCHEDOP_WATCHDOG};
use tests::check;
use tests::expect::{self, BAD_POINTERS};

guest_abi::pv_guest!(main, name = "watchdog");

/// `SCHEDOP_watchdog(id, timeout)`.
fn watchdog(id: u32, timeout: u32) -> i64 {
    let arg = SchedWatchdog { id, timeout };
    raw(core::ptr::addr_of!(arg) as u64)
}

fn raw(arg: u64) -> i64 {
    // SAFETY: the call reads one SchedWatchdog (or faults on a bad
    // pointer) and returns; no Rust object lives at a bad address.
    unsafe { hypercall2(SCHED_OP, u64::from(SCHEDOP_WATCHDOG), arg) }
}

fn fire(mut r: Report) -> ! {
    check!(r, "arm a 1 s watchdog", watchdog(0, 1) => 1);
    println!("watchdog armed; yielding until it fires");
    r.print_result();
    loop {
        let _ = sched_op_yield();
    }
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("watchdog");
    let cmdline = expect::text(si.cmd_line_bytes());
    if cmdline.split(' ').any(|w| w == "fire") {
        fire(r)
    }
    for &(what, addr) in BAD_POINTERS {
        check!(r, "SCHEDOP_watchdog with {what} pointer {addr:#x}", raw(addr) => -errno::EFAULT);
    }
    for id in [1, 2, 3, 0x8000_0000, 0xffff_ffff] {
        check!(r, "re-arm of free id {id:#x}", watchdog(id, 100) => -errno::EINVAL);
        check!(r, "free of free id {id:#x}", watchdog(id, 0) => -errno::EINVAL);
    }
    check!(r, "allocate (100 s)", watchdog(0, 100) => 1);
    check!(r, "allocate again", watchdog(0, 200) => 2);
    check!(r, "a third: -ENOSPC as a u32", watchdog(0, 100) => 0xffff_ffe4);
    check!(r, "id 3 with both taken", watchdog(3, 100) => -errno::EINVAL);
    check!(r, "re-arm id 1 (300 s)", watchdog(1, 300) => 0);
    check!(r, "free id 1", watchdog(1, 0) => 0);
    check!(r, "free id 1 again", watchdog(1, 0) => -errno::EINVAL);
    check!(r, "allocate takes id 1 again", watchdog(0, 100) => 1);
    check!(r, "free id 2", watchdog(2, 0) => 0);
    check!(r, "free id 1", watchdog(1, 0) => 0);
    check!(r, "both free: allocate gives id 1", watchdog(0, 100) => 1);
    check!(r, "and frees it", watchdog(1, 0) => 0);
    r.finish()
}
