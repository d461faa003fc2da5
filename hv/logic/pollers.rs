//! A domain's vCPUs in `SCHEDOP_poll`, as Xen 4.17 keeps them
//! (`poll_mask` and each vCPU's `poll_evtchn`), and who an event wakes:
//! a port becoming pending wakes each vCPU polling it alone, and each
//! polling several ports (any port then: Xen's `evtchn_check_pollers`);
//! an upcall made pending wakes its vCPU's poll (Xen's `vcpu_kick`), and
//! so does its poll timer. Atomics only: the event paths test the mask
//! with the event lock held, the waiting vCPU with none.
//!
//! Each vCPU's poll timer is remembered as possibly armed from the poll
//! that sets it until the next poll takes it down, so a poll without a
//! timeout after one without (the common case) has no timer to stop.

use core::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Most vCPUs a domain's poll state covers (hv's limit on a domain's
/// vCPUs, the `shared_info` legacy array).
const MAX_POLLERS: usize = 64;

/// A domain's polling vCPUs (Xen's `poll_mask` and each vCPU's
/// `poll_evtchn`): bit n of the mask while vCPU n polls; its port when it
/// polls one, -1 while it polls several (any port wakes it), 0 once done.
#[derive(Debug)]
pub struct Pollers {
    mask: AtomicU64,
    port: [AtomicI64; MAX_POLLERS],
    /// Bit n: vCPU n's poll timer may be armed (set, and not stopped by
    /// a later poll; it may have fired since).
    timers: AtomicU64,
}

impl Default for Pollers {
    fn default() -> Self {
        Self {
            mask: AtomicU64::new(0),
            port: [const { AtomicI64::new(0) }; MAX_POLLERS],
            timers: AtomicU64::new(0),
        }
    }
}

impl Pollers {
    /// Whether any vCPU polls: the one test the event paths make.
    #[inline(always)]
    pub fn any(&self) -> bool {
        self.mask.load(Ordering::Relaxed) != 0
    }

    fn bit(vcpu: u32) -> u64 {
        1u64.checked_shl(vcpu).unwrap_or(0)
    }

    /// vCPU `vcpu` starts polling (any port, until [`Self::set_port`]).
    pub fn start(&self, vcpu: u32) {
        if let Some(p) = self.port.get(vcpu as usize) {
            p.store(-1, Ordering::Relaxed);
        }
        self.mask.fetch_or(Self::bit(vcpu), Ordering::SeqCst);
    }

    /// vCPU `vcpu` polls `port` alone.
    pub fn set_port(&self, vcpu: u32, port: u32) {
        if let Some(p) = self.port.get(vcpu as usize) {
            p.store(i64::from(port), Ordering::Relaxed);
        }
    }

    /// Whether vCPU `vcpu` still polls.
    pub fn polling(&self, vcpu: u32) -> bool {
        self.mask.load(Ordering::SeqCst) & Self::bit(vcpu) != 0
    }

    /// Ends vCPU `vcpu`'s poll (woken, timed out or done); whether it
    /// was polling.
    pub fn stop(&self, vcpu: u32) -> bool {
        let was = self.mask.fetch_and(!Self::bit(vcpu), Ordering::SeqCst) & Self::bit(vcpu) != 0;
        if let Some(p) = self.port.get(vcpu as usize) {
            p.store(0, Ordering::Relaxed);
        }
        was
    }

    /// vCPU `vcpu` arms its poll timer.
    pub fn timer_set(&self, vcpu: u32) {
        self.timers.fetch_or(Self::bit(vcpu), Ordering::Relaxed);
    }

    /// Whether vCPU `vcpu`'s poll timer may be armed, which it then
    /// forgets (the caller stops the timer): always yes beyond 64 vCPUs,
    /// which have no bit. Only the vCPU itself arms and takes its bit.
    #[inline(always)]
    pub fn take_timer(&self, vcpu: u32) -> bool {
        let bit = Self::bit(vcpu);
        bit == 0
            || (self.timers.load(Ordering::Relaxed) & bit != 0
                && self.timers.fetch_and(!bit, Ordering::Relaxed) & bit != 0)
    }

    /// Port `port` became pending: ends the poll of every vCPU polling it
    /// alone or polling several ports (Xen's `evtchn_check_pollers`), and
    /// returns them (to be woken).
    pub fn port_raised(&self, port: u32) -> Woken {
        self.woken_by(|p| p == port)
    }

    /// Ends the poll of every vCPU polling several ports, or one port for
    /// which `pending` says yes, and returns them (a send that raised an
    /// unknown port: the vCPUs with a reason to look again).
    pub fn woken_by(&self, pending: impl Fn(u32) -> bool) -> Woken {
        let mut woken = 0u64;
        let mut m = self.mask.load(Ordering::SeqCst);
        while m != 0 {
            let v = m.trailing_zeros();
            m &= m - 1;
            let polled = self
                .port
                .get(v as usize)
                .map_or(0, |p| p.load(Ordering::Relaxed));
            let wake = match u32::try_from(polled) {
                Ok(port) => pending(port),
                Err(_) => true,
            };
            if wake && self.stop(v) {
                woken |= 1 << v;
            }
        }
        Woken(woken)
    }
}

/// vCPUs whose poll ended, to wake (an iterator over their ids).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Woken(u64);

impl Iterator for Woken {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        if self.0 == 0 {
            return None;
        }
        let v = self.0.trailing_zeros();
        self.0 &= self.0 - 1;
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_wakes_its_pollers_and_those_of_several_ports() {
        let p = Pollers::default();
        assert!(!p.any());
        p.start(0);
        p.set_port(0, 5);
        p.start(1);
        p.set_port(1, 6);
        p.start(2); // several ports: any wakes it
        assert!(p.any());
        assert_eq!(p.port_raised(5).collect::<Vec<_>>(), [0, 2]);
        assert!(!p.polling(0) && p.polling(1) && !p.polling(2));
        assert_eq!(p.port_raised(7).count(), 0);
        assert!(p.polling(1), "another port leaves a one-port poller");
        p.start(3);
        let woken: Vec<u32> = p.woken_by(|port| port == 6).collect();
        assert_eq!(woken, [1, 3]);
        assert!(!p.polling(1) && !p.any());
    }

    #[test]
    fn stop_says_whether_it_polled_and_bad_ids_are_harmless() {
        let p = Pollers::default();
        p.start(3);
        assert!(p.stop(3));
        assert!(!p.stop(3));
        p.start(200);
        p.set_port(200, 1);
        assert!(
            !p.polling(200) && !p.any(),
            "beyond 64 vCPUs nothing is recorded"
        );
        assert_eq!(p.port_raised(1).count(), 0);
    }

    #[test]
    fn a_poll_timer_is_taken_down_once_after_it_was_set() {
        let p = Pollers::default();
        assert!(!p.take_timer(2), "never set: nothing to stop");
        p.timer_set(2);
        p.timer_set(5);
        assert!(p.take_timer(2));
        assert!(!p.take_timer(2), "taken down already");
        assert!(p.take_timer(5), "another vCPU's stays");
        assert!(p.take_timer(64) && p.take_timer(64), "no bit: always stop");
    }
}
