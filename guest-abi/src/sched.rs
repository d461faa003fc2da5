//! `sched_op` sub-commands, their arguments, and shutdown reasons
//! (`sched.h`).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::xen::assert_layout;

/// Give up the CPU voluntarily. No argument.
pub const SCHEDOP_YIELD: u32 = 0;
/// Block until an event is pending (clears `evtchn_upcall_mask`). No argument.
pub const SCHEDOP_BLOCK: u32 = 1;
/// Stop this domain. Argument: [`SchedShutdown`].
pub const SCHEDOP_SHUTDOWN: u32 = 2;
/// Block until one of a set of ports is pending or a timeout. Argument: [`SchedPoll`].
pub const SCHEDOP_POLL: u32 = 3;
/// Shut another domain down (privileged). Argument: [`SchedRemoteShutdown`].
pub const SCHEDOP_REMOTE_SHUTDOWN: u32 = 4;
/// Record the reason to report if the domain later crashes. Argument: [`SchedShutdown`].
pub const SCHEDOP_SHUTDOWN_CODE: u32 = 5;
/// Arm, re-arm or stop a domain watchdog. Argument: [`SchedWatchdog`].
pub const SCHEDOP_WATCHDOG: u32 = 6;
/// Temporarily pin the vCPU to a physical CPU (hardware domain only).
/// Argument: [`SchedPinOverride`].
pub const SCHEDOP_PIN_OVERRIDE: u32 = 7;

/// Shutdown reason: exited normally; clean up and destroy.
pub const SHUTDOWN_POWEROFF: u32 = 0;
/// Shutdown reason: clean up, destroy, and restart.
pub const SHUTDOWN_REBOOT: u32 = 1;
/// Shutdown reason: save state for a later resume.
pub const SHUTDOWN_SUSPEND: u32 = 2;
/// Shutdown reason: the domain crashed.
pub const SHUTDOWN_CRASH: u32 = 3;
/// Shutdown reason: the watchdog expired.
pub const SHUTDOWN_WATCHDOG: u32 = 4;
/// Shutdown reason: reset the domain to its initial state, keeping memory.
pub const SHUTDOWN_SOFT_RESET: u32 = 5;
/// The largest valid shutdown reason.
pub const SHUTDOWN_MAX: u32 = 5;

/// Xen's name for a shutdown reason (`"poweroff"`, `"crash"`, ...), or
/// `"unknown"`.
pub fn shutdown_reason_name(reason: u32) -> &'static str {
    match reason {
        SHUTDOWN_POWEROFF => "poweroff",
        SHUTDOWN_REBOOT => "reboot",
        SHUTDOWN_SUSPEND => "suspend",
        SHUTDOWN_CRASH => "crash",
        SHUTDOWN_WATCHDOG => "watchdog",
        SHUTDOWN_SOFT_RESET => "soft_reset",
        _ => "unknown",
    }
}

/// `sched_shutdown`: argument of `SCHEDOP_shutdown` and `SCHEDOP_shutdown_code`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct SchedShutdown {
    /// `SHUTDOWN_*`.
    pub reason: u32,
}
assert_layout!(SchedShutdown, 4; reason = 0);

/// `sched_poll`: argument of `SCHEDOP_poll`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct SchedPoll {
    /// Guest pointer to an array of `evtchn_port_t`.
    pub ports: u64,
    /// Number of ports in the array.
    pub nr_ports: u32,
    /// Padding.
    pub _pad: u32,
    /// Absolute system time (ns) to give up at, or 0 for none.
    pub timeout: u64,
}
assert_layout!(SchedPoll, 24; ports = 0, nr_ports = 8, timeout = 16);

/// `sched_remote_shutdown`: argument of `SCHEDOP_remote_shutdown`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct SchedRemoteShutdown {
    /// The domain to shut down.
    pub domain_id: u16,
    /// Padding.
    pub _pad: u16,
    /// `SHUTDOWN_*`.
    pub reason: u32,
}
assert_layout!(SchedRemoteShutdown, 8; domain_id = 0, reason = 4);

/// `sched_watchdog`: argument of `SCHEDOP_watchdog`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct SchedWatchdog {
    /// Watchdog id (0 allocates a new one).
    pub id: u32,
    /// Timeout in seconds (0 destroys the watchdog).
    pub timeout: u32,
}
assert_layout!(SchedWatchdog, 8; id = 0, timeout = 4);

/// `sched_pin_override`: argument of `SCHEDOP_pin_override`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct SchedPinOverride {
    /// Physical CPU to pin to, or negative to undo the override.
    pub pcpu: i32,
}
assert_layout!(SchedPinOverride, 4; pcpu = 0);
