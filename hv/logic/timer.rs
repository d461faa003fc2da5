//! Timers: a CPU's queue of deadlines, and the arithmetic of Xen 4.17's
//! guest timer calls.
//!
//! [`TimerQueue`] is one CPU's timers, taken earliest deadline first
//! (equal deadlines in the order they were set), each named by a key
//! that appears at most once: setting a key again moves it, as Xen's
//! `set_timer` moves a timer that is already pending. Capacity is fixed
//! (no allocation in the interrupt path); the kernel sizes it for what
//! one CPU can hold (its vCPUs' three timers each, the domains' watchdogs
//! and its own housekeeping). Deadlines are system time in ns.
//!
//! The rest are Xen's rules as pure functions, so they are tested here:
//! `set_timer_op`'s zero, negative and huge timeouts ([`set_timer_op`]),
//! `VCPUOP_set_singleshot_timer`'s past timeouts ([`singleshot`]), the periodic timer's period checks and its catch-up
//! step ([`periodic_period`], [`periodic_step`]).

use guest_abi::errno::Errno;

/// A due timer: its key and deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<K> {
    pub key: K,
    pub deadline: u64,
}

/// An armed timer: its key, deadline and when it was set (ties on the
/// deadline go to the earlier).
#[derive(Clone, Copy, Debug)]
struct Slot<K> {
    key: K,
    deadline: u64,
    seq: u64,
}

/// The queue is full: the timer was not set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

/// Up to `N` timers. Kept unordered (the first `len` slots, each key
/// once): a CPU holds a handful, so arming one is a scan for its key and
/// a store, with nothing moved, and finding the earliest is a scan too.
/// The slots past `len` hold a filler key and mean nothing: no slot is
/// an `Option`, so the scan for a key compares keys only.
#[derive(Debug)]
pub struct TimerQueue<K, const N: usize> {
    slots: [Slot<K>; N],
    len: usize,
    seq: u64,
}

impl<K: Copy + Eq + Default, const N: usize> Default for TimerQueue<K, N> {
    fn default() -> Self {
        Self::new(K::default())
    }
}

impl<K: Copy + Eq, const N: usize> TimerQueue<K, N> {
    /// An empty queue; `filler` only fills the unused slots.
    pub const fn new(filler: K) -> Self {
        Self {
            slots: [Slot {
                key: filler,
                deadline: 0,
                seq: 0,
            }; N],
            len: 0,
            seq: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The armed timers' slots.
    #[inline(always)]
    fn armed(&self) -> &[Slot<K>] {
        self.slots.get(..self.len).unwrap_or(&[])
    }

    #[inline(always)]
    fn position(&self, key: K) -> Option<usize> {
        self.armed().iter().position(|s| s.key == key)
    }

    /// The earliest timer's slot.
    fn earliest(&self) -> Option<(usize, Slot<K>)> {
        self.armed()
            .iter()
            .copied()
            .enumerate()
            .min_by_key(|(_, s)| (s.deadline, s.seq))
    }

    /// Takes slot `i` (armed) out: the last armed slot moves into it.
    fn remove_at(&mut self, i: usize) {
        let Some(last) = self.len.checked_sub(1) else {
            return;
        };
        if i <= last {
            self.slots.swap(i, last);
            self.len = last;
        }
    }

    /// Arms `key` for `deadline` (moving it if it was armed). `Full` when
    /// the key is new and the queue has no room: nothing changes then.
    pub fn set(&mut self, key: K, deadline: u64) -> Result<(), Full> {
        let i = match self.position(key) {
            Some(i) => i,
            None if self.len < N => {
                self.len += 1;
                self.len - 1
            }
            None => return Err(Full),
        };
        self.seq = self.seq.wrapping_add(1);
        if let Some(slot) = self.slots.get_mut(i) {
            *slot = Slot {
                key,
                deadline,
                seq: self.seq,
            };
        }
        Ok(())
    }

    /// Disarms `key`; whether it was armed.
    pub fn cancel(&mut self, key: K) -> bool {
        match self.position(key) {
            Some(i) => {
                self.remove_at(i);
                true
            }
            None => false,
        }
    }

    /// Disarms every key `gone` says; how many were armed.
    pub fn cancel_where(&mut self, gone: impl Fn(K) -> bool) -> usize {
        let mut n = 0;
        let mut i = 0;
        while let Some(s) = self.armed().get(i) {
            if gone(s.key) {
                // The last armed slot moves into `i`: look at it next.
                self.remove_at(i);
                n += 1;
            } else {
                i += 1;
            }
        }
        n
    }

    /// `key`'s deadline, if armed.
    pub fn deadline(&self, key: K) -> Option<u64> {
        self.armed()
            .iter()
            .find(|s| s.key == key)
            .map(|s| s.deadline)
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<u64> {
        self.earliest().map(|(_, s)| s.deadline)
    }

    /// Takes the earliest timer if it is due at `now` (deadline <= now);
    /// of several due at the same deadline, the one set first.
    pub fn pop_due(&mut self, now: u64) -> Option<Entry<K>> {
        let (i, s) = self.earliest().filter(|(_, s)| s.deadline <= now)?;
        self.remove_at(i);
        Some(Entry {
            key: s.key,
            deadline: s.deadline,
        })
    }
}

/// Xen's `MILLISECS(100)`: where `set_timer_op` puts a huge timeout.
pub const HUGE_TIMEOUT_DELAY_NS: u64 = 100_000_000;

/// What `set_timer_op(timeout)` does at system time `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerOp {
    /// 0: stop the single-shot timer.
    Stop,
    /// Arm the single-shot timer for this deadline (in the past: it fires
    /// at once).
    At(u64),
}

/// Xen 4.17's `do_set_timer_op`: 0 stops the single-shot timer; a
/// timeout that is negative as an `s_time_t`, or more than 2^50 ns
/// (about 13 days) ahead, is Linux's wrapped jiffies and becomes
/// `now + 100 ms`; anything else (the past included) is the deadline.
pub fn set_timer_op(timeout: u64, now: u64) -> TimerOp {
    if timeout == 0 {
        return TimerOp::Stop;
    }
    let signed = timeout.cast_signed();
    let offset = signed.wrapping_sub(now.cast_signed());
    // Xen tests `(uint32_t)(offset >> 50)`: bits 50-81 of the offset.
    let above_2_50 = (offset >> 50) & 0xffff_ffff != 0;
    if signed < 0 || (offset > 0 && above_2_50) {
        return TimerOp::At(now.saturating_add(HUGE_TIMEOUT_DELAY_NS));
    }
    TimerOp::At(timeout)
}

/// `VCPU_SSHOTTMR_future`: asked a timeout in the past to fail with
/// `-ETIME` in Xen 4.17.0; the 4.17 stable releases (4.17.7, the oracle)
/// ignore it (Xen's "vcpu: fix handling of past singleshot timeouts").
pub const SSHOTTMR_FUTURE: u32 = 1;

/// What `VCPUOP_set_singleshot_timer` does at system time `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Singleshot {
    /// The timeout has passed: stop the timer and send the event now.
    FireNow,
    /// Arm the timer for this deadline.
    At(u64),
}

/// Xen 4.17.7's `VCPUOP_set_singleshot_timer` at system time `now`: a
/// timeout before `now` sends the event at once (whatever the flags);
/// else the timer is armed. The timeout is unsigned (the comparison
/// is), but Xen's timers keep `s_time_t`: one of 2^63 or more is a
/// negative expiry, due at once (deadline 0).
pub fn singleshot(timeout_abs_ns: u64, now: u64) -> Singleshot {
    if timeout_abs_ns < now {
        return Singleshot::FireNow;
    }
    Singleshot::At(if timeout_abs_ns.cast_signed() < 0 {
        0
    } else {
        timeout_abs_ns
    })
}

/// Xen's `MILLISECS(1)`: the shortest period `VCPUOP_set_periodic_timer`
/// takes.
pub const MIN_PERIOD_NS: u64 = 1_000_000;
/// Xen's `STIME_DELTA_MAX`: the longest.
pub const MAX_PERIOD_NS: u64 = i64::MAX.cast_unsigned();
/// PV vCPUs start with a 100 Hz periodic timer, as on Xen.
pub const DEFAULT_PERIOD_NS: u64 = 10_000_000;

/// A vCPU's periodic timer: its period (0: stopped) and when it last
/// fired (system time; 0 before it ever did).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Periodic {
    pub period: u64,
    pub last: u64,
}

impl Default for Periodic {
    /// Xen's start: 100 Hz, never fired.
    fn default() -> Self {
        Self {
            period: DEFAULT_PERIOD_NS,
            last: 0,
        }
    }
}

/// `VCPUOP_set_periodic_timer`'s checks: `-EINVAL` below 1 ms or beyond
/// `STIME_DELTA_MAX`.
pub fn periodic_period(period_ns: u64) -> Result<u64, Errno> {
    if !(MIN_PERIOD_NS..=MAX_PERIOD_NS).contains(&period_ns) {
        return Err(Errno::EINVAL);
    }
    Ok(period_ns)
}

/// One step of Xen's `vcpu_periodic_timer_work` at `now`, for a period
/// last fired at `last`: `(fire, last, next deadline)`. It fires (and
/// restarts the period from `now`) when a period has passed since
/// `last`; either way the timer is armed for the period's end. A vCPU
/// scheduled in after a period passed (blocked, descheduled, or just
/// given a period) gets one event at once, not one per missed period.
pub fn periodic_step(last: u64, period: u64, now: u64) -> (bool, u64, u64) {
    let next = last.saturating_add(period);
    if now >= next {
        (true, now, now.saturating_add(period))
    } else {
        (false, last, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_orders_moves_and_cancels() {
        let mut q: TimerQueue<u8, 4> = TimerQueue::new(0);
        assert!(q.is_empty());
        assert_eq!(q.next_deadline(), None);
        q.set(1, 300).unwrap();
        q.set(2, 100).unwrap();
        q.set(3, 200).unwrap();
        assert_eq!(q.next_deadline(), Some(100));
        // Moving a key keeps one entry.
        q.set(2, 400).unwrap();
        assert_eq!(q.len(), 3);
        assert_eq!(q.deadline(2), Some(400));
        assert_eq!(q.next_deadline(), Some(200));
        assert!(q.cancel(3));
        assert!(!q.cancel(3));
        assert_eq!(q.pop_due(299), None);
        assert_eq!(
            q.pop_due(300),
            Some(Entry {
                key: 1,
                deadline: 300
            })
        );
        assert_eq!(
            q.pop_due(1000),
            Some(Entry {
                key: 2,
                deadline: 400
            })
        );
        assert_eq!(q.pop_due(u64::MAX), None);
        assert!(q.is_empty());
    }

    #[test]
    fn cancel_where_takes_every_matching_key_and_keeps_the_rest() {
        let mut q: TimerQueue<u8, 8> = TimerQueue::new(0);
        for (k, d) in [(10, 5), (21, 1), (12, 7), (13, 3), (24, 2)] {
            q.set(k, d).unwrap();
        }
        // The tens (including the last slot, moved into a taken one).
        assert_eq!(q.cancel_where(|k| k / 10 == 1), 3);
        assert_eq!(q.len(), 2);
        assert_eq!(q.cancel_where(|k| k / 10 == 1), 0);
        let order: Vec<u8> = core::iter::from_fn(|| q.pop_due(100).map(|e| e.key)).collect();
        assert_eq!(order, [21, 24]);
        // Room again for new keys.
        for k in 30..38 {
            q.set(k, 1).unwrap();
        }
        assert_eq!(q.cancel_where(|_| true), 8);
        assert!(q.is_empty());
    }

    #[test]
    fn equal_deadlines_fire_in_the_order_set() {
        let mut q: TimerQueue<u8, 8> = TimerQueue::new(0);
        for k in [5, 1, 7, 3] {
            q.set(k, 50).unwrap();
        }
        q.set(9, 10).unwrap();
        let order: Vec<u8> = core::iter::from_fn(|| q.pop_due(50).map(|e| e.key)).collect();
        assert_eq!(order, [9, 5, 1, 7, 3]);
    }

    #[test]
    fn a_full_queue_refuses_new_keys_but_moves_old_ones() {
        let mut q: TimerQueue<u8, 2> = TimerQueue::new(0);
        q.set(1, 10).unwrap();
        q.set(2, 20).unwrap();
        assert_eq!(q.set(3, 5), Err(Full));
        assert_eq!(q.deadline(3), None);
        q.set(2, 1).unwrap();
        assert_eq!(q.next_deadline(), Some(1));
    }

    #[test]
    fn queue_matches_a_model() {
        // A sorted Vec as the model, over a pseudo-random sequence.
        let mut q: TimerQueue<u8, 16> = TimerQueue::new(0);
        let mut model: Vec<(u64, u64, u8)> = Vec::new(); // (deadline, seq, key)
        let mut seed = 0x1234_5678_9abc_def1u64;
        let mut seq = 0;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let key = (seed % 20) as u8;
            let deadline = (seed >> 8) % 1000;
            match (seed >> 40) % 3 {
                0 => {
                    let had = model.iter().any(|e| e.2 == key);
                    let r = q.set(key, deadline);
                    if had || model.len() < 16 {
                        r.unwrap();
                        model.retain(|e| e.2 != key);
                        seq += 1;
                        model.push((deadline, seq, key));
                        model.sort();
                    } else {
                        assert_eq!(r, Err(Full));
                    }
                }
                1 => {
                    let had = model.iter().any(|e| e.2 == key);
                    model.retain(|e| e.2 != key);
                    assert_eq!(q.cancel(key), had);
                }
                _ => {
                    let now = deadline;
                    let want = model.first().filter(|e| e.0 <= now).copied();
                    let got = q.pop_due(now);
                    assert_eq!(got.map(|e| (e.deadline, e.key)), want.map(|e| (e.0, e.2)));
                    if want.is_some() {
                        model.remove(0);
                    }
                }
            }
            assert_eq!(q.len(), model.len());
            assert_eq!(q.next_deadline(), model.first().map(|e| e.0));
        }
    }

    #[test]
    fn set_timer_op_as_xen() {
        let now = 5_000_000_000;
        assert_eq!(set_timer_op(0, now), TimerOp::Stop);
        // The past fires at once: the deadline stands.
        assert_eq!(set_timer_op(1, now), TimerOp::At(1));
        assert_eq!(set_timer_op(now + 10, now), TimerOp::At(now + 10));
        // Up to 2^50 ns ahead is taken as is; beyond, 100 ms from now.
        let limit = now + (1 << 50) - 1;
        assert_eq!(set_timer_op(limit, now), TimerOp::At(limit));
        assert_eq!(
            set_timer_op(now + (1 << 50), now),
            TimerOp::At(now + HUGE_TIMEOUT_DELAY_NS)
        );
        // Negative as an s_time_t.
        for t in [1 << 63, u64::MAX] {
            assert_eq!(
                set_timer_op(t, now),
                TimerOp::At(now + HUGE_TIMEOUT_DELAY_NS)
            );
        }
        // Beyond 2^50 but the >> 50 truncated to 32 bits is 0: Xen's cast.
        let wraps = now + (1 << 62);
        assert_eq!(
            set_timer_op(wraps, now),
            TimerOp::At(now + HUGE_TIMEOUT_DELAY_NS)
        );
    }

    #[test]
    fn singleshot_as_xen() {
        let now = 1_000;
        assert_eq!(singleshot(999, now), Singleshot::FireNow);
        assert_eq!(singleshot(0, now), Singleshot::FireNow);
        assert_eq!(singleshot(1_000, now), Singleshot::At(1_000));
        // 2^63 and above: not in the past to the check, due at once.
        assert_eq!(singleshot(1 << 63, now), Singleshot::At(0));
        assert_eq!(singleshot(u64::MAX, now), Singleshot::At(0));
    }

    #[test]
    fn periodic_as_xen() {
        assert_eq!(periodic_period(0), Err(Errno::EINVAL));
        assert_eq!(periodic_period(MIN_PERIOD_NS - 1), Err(Errno::EINVAL));
        assert_eq!(periodic_period(MIN_PERIOD_NS), Ok(MIN_PERIOD_NS));
        assert_eq!(periodic_period(MAX_PERIOD_NS), Ok(MAX_PERIOD_NS));
        assert_eq!(periodic_period(MAX_PERIOD_NS + 1), Err(Errno::EINVAL));
        // Fresh vCPU (last 0): fires at once, then every period.
        assert_eq!(periodic_step(0, 10, 25), (true, 25, 35));
        assert_eq!(periodic_step(25, 10, 30), (false, 25, 35));
        assert_eq!(periodic_step(25, 10, 35), (true, 35, 45));
        // Missed periods make one event.
        assert_eq!(periodic_step(35, 10, 1000), (true, 1000, 1010));
    }
}
