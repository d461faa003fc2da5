//! `sched_op` and the old `sched_op_compat`: yield, block, poll,
//! shutdown, watchdogs.
//!
//! Yield switches to the next vCPU waiting for this CPU (`crate::sched`),
//! and returns at once when none waits.
//! Shutdown reads `struct sched_shutdown`; as on Xen the reason is truncated
//! to 8 bits, and a code latched earlier with `SCHEDOP_shutdown_code` takes
//! precedence. The reason is reported and, when no domain is left, decides
//! how hv leaves the machine. `SCHEDOP_remote_shutdown` (Xen's order:
//! copy in, find the domain, then the privilege check) shuts down the
//! domain it names with the reason truncated to 8 bits; naming itself it is
//! the caller's own shutdown. `SCHEDOP_watchdog` keeps the domain's two
//! watchdogs (`hv::watchdog`), the earliest armed as a timer
//! ([`watchdog_timer`] shuts the domain down with `SHUTDOWN_watchdog`
//! once one expired). `SCHEDOP_block` and `SCHEDOP_poll` give the CPU up
//! until an event or a timer (`sched`).

use guest_abi::errno::Errno;
use guest_abi::sched::{
    SchedPoll, SchedRemoteShutdown, SchedShutdown, SchedWatchdog, SCHEDOP_BLOCK, SCHEDOP_POLL,
    SCHEDOP_REMOTE_SHUTDOWN, SCHEDOP_SHUTDOWN, SCHEDOP_SHUTDOWN_CODE, SCHEDOP_WATCHDOG,
    SCHEDOP_YIELD,
};
use guest_abi::types::DomId;

use super::{HcResult, Outcome};

/// The shutdown reason, truncated to 8 bits as on Xen.
fn read_reason(arg: u64) -> Result<u8, Errno> {
    let SchedShutdown { reason } = super::read_arg(arg)?;
    Ok((reason & 0xff) as u8)
}

/// The caller's own shutdown: the machine's end for the hardware domain,
/// else the domain stops and the CPU switches away ([`SWITCH`]; 0 if it
/// is ever resumed).
#[cold]
#[inline(never)]
fn shutdown(reason: u8) -> HcResult {
    let latched = crate::domain::with_current(|d| d.shutdown_code);
    let reason = latched.unwrap_or(reason);
    crate::shutdown::domain_shutdown(crate::domain::current_id(), u32::from(reason));
    Ok(SWITCH)
}

/// Inlined into its table entry: a yield is on the bench's hot list, and
/// an out-of-line call returns its `Outcome` through memory.
#[inline(always)]
pub fn sched_op(cmd: u32, arg: u64) -> Outcome {
    if cmd == SCHEDOP_YIELD {
        return yield_now();
    }
    match other(cmd, arg) {
        Ok(SWITCH) => Outcome::Switch(0),
        r => r.into(),
    }
}

/// What [`other`] answers for "0, and switch away: the vCPU blocked" (no
/// command answers it as a value). An `HcResult` comes back in two
/// registers; an `Outcome`, or a richer enum, through memory, which gives
/// the yield's table entry a stack frame (5-14 instructions).
const SWITCH: u64 = u64::MAX;

/// `SCHEDOP_yield`: to the next vCPU waiting for this CPU, if one does
/// (`crate::sched`); at once otherwise.
#[inline(always)]
fn yield_now() -> Outcome {
    if crate::sched::yield_wanted() {
        Outcome::Switch(0)
    } else {
        Outcome::Done(0)
    }
}

/// Every command but yield, out of the yield's way.
#[cold]
#[inline(never)]
fn other(cmd: u32, arg: u64) -> HcResult {
    match cmd {
        SCHEDOP_BLOCK => Ok(if crate::sched::block() { SWITCH } else { 0 }),
        SCHEDOP_POLL => poll(arg),
        SCHEDOP_SHUTDOWN => shutdown(read_reason(arg)?),
        SCHEDOP_SHUTDOWN_CODE => {
            let reason = read_reason(arg)?;
            // The first code latched wins, as on Xen.
            crate::domain::with_current(|d| {
                d.shutdown_code.get_or_insert(reason);
            });
            Ok(0)
        }
        SCHEDOP_REMOTE_SHUTDOWN => remote_shutdown(arg),
        SCHEDOP_WATCHDOG => watchdog(arg),
        _ => Err(Errno::ENOSYS),
    }
}

/// `SCHEDOP_poll`: `-EFAULT` for an unreadable `sched_poll`, then
/// `-EINVAL` for more than 128 ports, `-EFAULT` for a port list that is
/// not guest memory (Xen's `guest_handle_okay`), then `sched::poll`.
fn poll(arg: u64) -> HcResult {
    use crate::guest_mem::{GuestSlice, Loaded};
    let SchedPoll {
        ports,
        nr_ports,
        timeout,
        ..
    } = super::read_arg(arg)?;
    if nr_ports > crate::sched::MAX_POLL_PORTS {
        return Err(Errno::EINVAL);
    }
    let list = GuestSlice::<u32>::new(ports, u64::from(nr_ports))?;
    let switch = crate::sched::poll(nr_ports, |i| Ok(list.get(&Loaded, u64::from(i))?), timeout)?;
    Ok(if switch { SWITCH } else { 0 })
}

/// `SCHEDOP_remote_shutdown`: `-EFAULT` for an unreadable argument,
/// `-ESRCH` for a domain that does not exist (special ids such as
/// `DOMID_SELF` included, as Xen's lookup by id refuses them), `-EPERM`
/// for a caller without privilege over it (Xen's `XSM_DM_PRIV`: the
/// control domain; a domain naming itself is no exception).
#[cold]
#[inline(never)]
fn remote_shutdown(arg: u64) -> HcResult {
    let SchedRemoteShutdown {
        domain_id, reason, ..
    } = super::read_arg(arg)?;
    let target = DomId::try_new(domain_id)
        .ok()
        .and_then(crate::domain::lookup)
        .ok_or(Errno::ESRCH)?;
    if super::Privileged::check().is_none() {
        return Err(Errno::EPERM);
    }
    let reason = (reason & 0xff) as u8;
    if target.id == crate::domain::current_id() {
        return shutdown(reason);
    }
    // Another domain: it stops (a CPU running it is kicked away).
    crate::shutdown::domain_shutdown(target.id, u32::from(reason));
    Ok(0)
}

/// `SCHEDOP_watchdog`: `-EFAULT` for an unreadable argument, then
/// `hv::watchdog`'s answer; the earliest watchdog armed is a timer on
/// this CPU.
#[cold]
#[inline(never)]
fn watchdog(arg: u64) -> HcResult {
    let SchedWatchdog { id, timeout } = super::read_arg(arg)?;
    let now = crate::time::now_ns();
    let (r, next, dom) = crate::domain::with_current(|d| {
        let r = d.watchdogs.op(id, timeout, now);
        (r, d.watchdogs.next_deadline(), d.dom.id)
    });
    let kind = crate::timer::Kind::Watchdog { dom };
    match next {
        Some(deadline) => crate::timer::set(kind, deadline),
        None => crate::timer::stop(kind),
    }
    r.map(u64::from)
}

/// Domain `dom`'s watchdog timer ran: shuts it down with
/// `SHUTDOWN_watchdog` (or the code it latched, as Xen's
/// `domain_shutdown` does) if one of its watchdogs expired.
pub fn watchdog_timer(dom: DomId) {
    let Some(d) = crate::domain::lookup(dom) else {
        return;
    };
    let now = crate::time::now_ns();
    let fired = d.with_state(|s| {
        s.watchdogs.expired(now).then(|| {
            s.shutdown_code
                .map_or(guest_abi::sched::SHUTDOWN_WATCHDOG, u32::from)
        })
    });
    drop(d);
    if let Some(reason) = fired {
        crate::hvlog!(info, "watchdog timer fired for domain {dom}");
        crate::shutdown::domain_shutdown(dom, reason);
    }
}

/// Hypercall 6: the pre-3.0 form, with the shutdown reason passed by value.
pub fn sched_op_compat(cmd: u32, arg: u64) -> Outcome {
    match cmd {
        SCHEDOP_YIELD => yield_now(),
        SCHEDOP_BLOCK if crate::sched::block() => Outcome::Switch(0),
        SCHEDOP_BLOCK => Outcome::Done(0),
        SCHEDOP_SHUTDOWN => match shutdown((arg & 0xff) as u8) {
            Ok(SWITCH) => Outcome::Switch(0),
            r => r.into(),
        },
        _ => Outcome::Err(Errno::ENOSYS),
    }
}
