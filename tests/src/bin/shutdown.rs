//! `SCHEDOP_shutdown` of the hardware domain, one run per reason.
//!
//! The command line says what to do: `reason=N` is the `sched_shutdown`
//! reason to shut down with after the result line, and each `latch=N`
//! first latches a code with `SCHEDOP_shutdown_code`. The guest's checks
//! are only about its own set-up; the subject is how the run ends, which
//! each variant's `expect-exit` and `expect-line`s state (`(hv)` lines are
//! checked on hv only, `(XEN)` lines on Xen only).
//!
//! What Xen 4.17 does with dom0's reason (`hwdom_shutdown()`): poweroff
//! halts the machine ("Hardware Dom0 halted"); reboot, watchdog and
//! soft_reset restart it at once; crash, suspend and any unknown reason
//! print their message and restart after 5 seconds ("rebooting machine in
//! 5 seconds."); the runner (QEMU `-no-reboot`) sees QEMU exit then and
//! reads the reason from the message. Xen has no dom0 suspend: reason 2
//! is reported as "unknown reason 2", which the runner counts as
//! `suspend` (hv ends with its suspend status). The reason is truncated
//! to 8 bits (`domain_shutdown(d, (u8)reason)`), so 256 is a poweroff and
//! 257 a reboot. The first latched code wins over later latches and over
//! the reason passed to the shutdown itself. With the word `remote` the
//! shutdown is `SCHEDOP_remote_shutdown` naming domain 0 itself, which
//! Xen treats as the same `domain_shutdown` (reason truncated, latched
//! code first).
//!
//! @covers: sched_op.shutdown sched_op.shutdown_code sched_op.remote_shutdown
//! @cmdline: reason=0
//! @expect-exit: poweroff
//! @expect-line: (hv) domain 0 shut down: poweroff (reason 0)
//! @expect-line: (XEN) Hardware Dom0 halted: halting machine
//! @variant: reboot cmdline=reason=1 expect-exit=reboot expect-line="(hv) domain 0 shut down: reboot (reason 1)" expect-line="(XEN) Hardware Dom0 shutdown: rebooting machine"
//! @variant: suspend cmdline=reason=2 expect-exit=suspend expect-line="(hv) domain 0 shut down: suspend (reason 2)" expect-line="(XEN) Hardware Dom0 shutdown (unknown reason 2): rebooting machine in 5 seconds."
//! @variant: crash cmdline=reason=3 expect-exit=crash expect-line="(hv) domain 0 shut down: crash (reason 3)" expect-line="(XEN) Hardware Dom0 crashed: rebooting machine in 5 seconds."
//! @variant: watchdog cmdline=reason=4 expect-exit=watchdog expect-line="(hv) domain 0 shut down: watchdog (reason 4)" expect-line="(XEN) Hardware Dom0 shutdown: watchdog rebooting machine"
//! @variant: soft_reset cmdline=reason=5 expect-exit=soft_reset expect-line="(hv) domain 0 shut down: soft_reset (reason 5)" expect-line="(XEN) Hardware domain 0 did unsupported soft reset, rebooting."
//! @variant: unknown6 cmdline=reason=6 expect-exit=unknown expect-line="(hv) domain 0 shut down: unknown (reason 6)" expect-line="(XEN) Hardware Dom0 shutdown (unknown reason 6): rebooting machine in 5 seconds."
//! @variant: unknown255 cmdline=reason=255 expect-exit=unknown expect-line="(hv) domain 0 shut down: unknown (reason 255)" expect-line="(XEN) Hardware Dom0 shutdown (unknown reason 255): rebooting machine in 5 seconds."
//! @variant: wrap256 cmdline=reason=256 expect-exit=poweroff expect-line="(hv) domain 0 shut down: poweroff (reason 0)" expect-line="(XEN) Hardware Dom0 halted: halting machine"
//! @variant: wrap257 cmdline=reason=257 expect-exit=reboot expect-line="(hv) domain 0 shut down: reboot (reason 1)" expect-line="(XEN) Hardware Dom0 shutdown: rebooting machine"
//! @variant: remote_poweroff "cmdline=reason=0 remote" expect-exit=poweroff expect-line="(hv) domain 0 shut down: poweroff (reason 0)" expect-line="(XEN) Hardware Dom0 halted: halting machine"
//! @variant: remote_wrap257 "cmdline=reason=257 remote" expect-exit=reboot expect-line="(hv) domain 0 shut down: reboot (reason 1)" expect-line="(XEN) Hardware Dom0 shutdown: rebooting machine"
//! @variant: remote_latched "cmdline=reason=0 latch=3 remote" expect-exit=crash expect-line="(hv) domain 0 shut down: crash (reason 3)" expect-line="(XEN) Hardware Dom0 crashed: rebooting machine in 5 seconds."
//! @variant: latched "cmdline=reason=0 latch=1 latch=3" expect-exit=reboot expect-line="(hv) domain 0 shut down: reboot (reason 1)" expect-line="(XEN) Hardware Dom0 shutdown: rebooting machine"
#![no_std]
#![no_main]

use guest_abi::hypercall::sched_op;
use guest_abi::println;
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::sched::{
    shutdown_reason_name, SchedRemoteShutdown, SchedShutdown, SCHEDOP_REMOTE_SHUTDOWN,
    SCHEDOP_SHUTDOWN_CODE,
};
use tests::check;
use tests::expect;

guest_abi::pv_guest!(main, name = "shutdown");

/// The values of the command line's `key=N` words, in order.
fn values<'a>(cmdline: &'a str, key: &'a str) -> impl Iterator<Item = Option<u32>> + 'a {
    cmdline.split(' ').filter_map(move |word| {
        let (k, v) = word.split_once('=')?;
        (k == key).then(|| v.parse().ok())
    })
}

/// `SCHEDOP_shutdown_code`: latches `reason` for a later shutdown.
fn shutdown_code(reason: u32) -> i64 {
    let mut arg = SchedShutdown { reason };
    let p: *mut SchedShutdown = &mut arg;
    // SAFETY: shutdown_code reads one SchedShutdown and returns.
    unsafe { sched_op(SCHEDOP_SHUTDOWN_CODE, p.cast()) }
}

/// Prints the result line, then `SCHEDOP_remote_shutdown` of domain 0
/// (this domain) with `reason`. Should it return, the guest crashes
/// itself, which no variant expects.
fn remote_shutdown_self(r: Report, reason: u32) -> ! {
    r.print_result();
    let mut arg = SchedRemoteShutdown {
        domain_id: 0,
        _pad: 0,
        reason,
    };
    let p: *mut SchedRemoteShutdown = &mut arg;
    // SAFETY: the call reads one SchedRemoteShutdown; it does not return
    // when it shuts this domain down.
    let rc = unsafe { sched_op(SCHEDOP_REMOTE_SHUTDOWN, p.cast()) };
    println!("SCHEDOP_remote_shutdown of domain 0 returned {rc}");
    guest_abi::rt::shutdown(3)
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("shutdown");
    let cmdline = expect::text(si.cmd_line_bytes());
    println!("command line: {cmdline:?}");

    let mut reasons = values(cmdline, "reason");
    let reason = match (reasons.next(), reasons.next()) {
        (Some(Some(reason)), None) => reason,
        _ => {
            r.error("the command line needs exactly one reason=N (decimal)");
            r.finish()
        }
    };
    r.check(format_args!("reason {reason} from the command line"), true);

    for latch in values(cmdline, "latch") {
        let Some(code) = latch else {
            r.error("latch=N needs a decimal N");
            r.finish()
        };
        let rc = shutdown_code(code);
        check!(r, "SCHEDOP_shutdown_code({code})", rc => 0);
    }

    println!(
        "shutting down with reason {reason} ({}; as u8: {})",
        shutdown_reason_name(reason),
        reason & 0xff
    );
    if cmdline.split(' ').any(|w| w == "remote") {
        remote_shutdown_self(r, reason)
    }
    r.finish_with_shutdown(reason)
}
