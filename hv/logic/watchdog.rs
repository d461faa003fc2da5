//! A domain's watchdogs (`SCHEDOP_watchdog`), as Xen 4.17 keeps them: two
//! timers per domain, numbered 1 and 2 to the guest. Id 0 takes the first
//! free one and arms it; a taken id is
//! re-armed with a non-zero timeout and freed with 0; an id above 2, or
//! one not taken, is `-EINVAL`. When an armed timer's deadline passes the
//! domain is shut down with `SHUTDOWN_watchdog`.
//!
//! When both are taken, id 0 returns -ENOSPC *as a 32-bit unsigned value*
//! (0xffffffe4, a positive `long`): Xen computes `id == NR ? -ENOSPC :
//! id + 1` with `id` a `uint32_t`, so the errno is converted to unsigned
//! before it is widened. hv returns the same value, so guests see what
//! they see on Xen (the `watchdog` guest checks it on both).

use guest_abi::errno::Errno;

/// Xen's `NR_DOMAIN_WATCHDOG_TIMERS`.
pub const NR_WATCHDOGS: usize = 2;

const NS_PER_SECOND: u64 = 1_000_000_000;

/// What id 0 returns when both watchdogs are taken: -ENOSPC as Xen's
/// `uint32_t` arithmetic leaves it (see the module docs).
pub const ENOSPC_AS_U32: u32 = 0u32.wrapping_sub(28);
const _: () = assert!(Errno::ENOSPC.get() == 28);

/// The deadlines (in hv's system time, ns) of the watchdogs in use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Watchdogs {
    deadline_ns: [Option<u64>; NR_WATCHDOGS],
}

impl Watchdogs {
    /// `SCHEDOP_watchdog(id, timeout)` at time `now_ns`: the id allocated
    /// (for id 0; [`ENOSPC_AS_U32`] when none is free) or 0.
    pub fn op(&mut self, id: u32, timeout_s: u32, now_ns: u64) -> Result<u32, Errno> {
        let deadline = now_ns.saturating_add(u64::from(timeout_s) * NS_PER_SECOND);
        if id == 0 {
            let free = self
                .deadline_ns
                .iter_mut()
                .zip(1u32..)
                .find(|(d, _)| d.is_none());
            let Some((slot, id)) = free else {
                return Ok(ENOSPC_AS_U32);
            };
            *slot = Some(deadline);
            return Ok(id);
        }
        let slot = usize::try_from(id - 1)
            .ok()
            .and_then(|i| self.deadline_ns.get_mut(i))
            .filter(|d| d.is_some())
            .ok_or(Errno::EINVAL)?;
        *slot = (timeout_s != 0).then_some(deadline);
        Ok(0)
    }

    /// Whether a watchdog in use has passed its deadline at `now_ns`.
    pub fn expired(&self, now_ns: u64) -> bool {
        self.deadline_ns.iter().flatten().any(|&d| d <= now_ns)
    }

    /// The earliest deadline of a watchdog in use.
    pub fn next_deadline(&self) -> Option<u64> {
        self.deadline_ns.iter().flatten().min().copied()
    }

    /// Whether any watchdog is in use.
    pub fn armed(&self) -> bool {
        self.deadline_ns.iter().any(Option::is_some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = NS_PER_SECOND;

    #[test]
    fn two_ids_then_enospc() {
        let mut w = Watchdogs::default();
        assert_eq!(w.op(0, 10, 0), Ok(1));
        assert_eq!(w.op(0, 10, 0), Ok(2));
        assert_eq!(w.op(0, 10, 0), Ok(0xffff_ffe4), "Xen's -ENOSPC as a u32");
        assert_eq!(w.op(1, 0, 0), Ok(0));
        assert_eq!(w.op(0, 10, 0), Ok(1), "the freed id is taken again");
    }

    #[test]
    fn bad_and_free_ids_are_einval() {
        let mut w = Watchdogs::default();
        for id in [1, 2, 3, 0xffff_ffff] {
            assert_eq!(w.op(id, 5, 0), Err(Errno::EINVAL), "id {id}");
        }
        assert_eq!(w.op(0, 5, 0), Ok(1));
        assert_eq!(w.op(2, 5, 0), Err(Errno::EINVAL));
        assert_eq!(w.op(3, 0, 0), Err(Errno::EINVAL));
        assert_eq!(w.op(1, 0, 0), Ok(0));
        assert_eq!(w.op(1, 0, 0), Err(Errno::EINVAL), "freed twice");
        assert!(!w.armed());
    }

    #[test]
    fn expiry_follows_the_last_arming() {
        let mut w = Watchdogs::default();
        assert_eq!(w.op(0, 2, 10 * S), Ok(1));
        assert!(!w.expired(11 * S));
        assert!(w.expired(12 * S));
        assert_eq!(w.op(1, 5, 11 * S), Ok(0), "re-armed");
        assert!(!w.expired(15 * S));
        assert!(w.expired(16 * S));
        assert_eq!(w.next_deadline(), Some(16 * S));
        assert_eq!(w.op(0, 1, 11 * S), Ok(2));
        assert_eq!(w.next_deadline(), Some(12 * S), "the earlier of two");
        assert_eq!(w.op(2, 0, 11 * S), Ok(0));
        assert_eq!(w.op(1, 0, 16 * S), Ok(0), "stopped");
        assert!(!w.expired(u64::MAX));
        assert_eq!(w.next_deadline(), None);
    }

    #[test]
    fn huge_timeouts_do_not_wrap() {
        let mut w = Watchdogs::default();
        assert_eq!(w.op(0, u32::MAX, u64::MAX - 5), Ok(1));
        assert!(w.expired(u64::MAX));
        assert!(!w.expired(u64::MAX - 6));
    }
}
