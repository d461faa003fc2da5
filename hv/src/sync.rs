//! hv's locks: spin locks that know their place in the lock order.
//!
//! [`Ordered`] is a `spin::Mutex` with a [`Level`]. In debug builds every
//! acquisition is checked against the levels this CPU already holds
//! (`hv::lock_levels`, host-tested) and an out-of-order one is an hv bug
//! reported with both levels; release builds compile the check away.
//! The order itself is written at the top of `domain` (the module that
//! owns most of the locks) and in `hv::lock_levels`. A CPU spinning on a
//! lock answers the function calls other CPUs make on it by IPI
//! (`arch::x86_64::ipi`), so holding a lock across such a call cannot
//! deadlock on a CPU that waits for that lock.

use core::ops::{Deref, DerefMut};

pub use hv::lock_levels::Level;

/// A spin lock with a place in the lock order.
#[derive(Debug)]
pub struct Ordered<T> {
    level: Level,
    inner: spin::mutex::Mutex<T, ServeIpis>,
}

/// How a CPU waits for a held lock: it serves its IPI inbox between
/// tries, since the holder may be waiting for this CPU to run a function
/// (`arch::x86_64::ipi`), which it could not otherwise, hv running with
/// interrupts off. Only the contended path runs it.
pub struct ServeIpis;

impl spin::RelaxStrategy for ServeIpis {
    #[inline(always)]
    fn relax() {
        crate::arch::x86_64::ipi::relax_serving();
    }
}

/// Held lock; releases (and, in debug builds, records the release) on drop.
pub struct OrderedGuard<'a, T> {
    /// The level this guard releases (none: the second of a pair).
    #[cfg(debug_assertions)]
    level: Option<Level>,
    guard: spin::mutex::MutexGuard<'a, T>,
}

impl<T> Ordered<T> {
    pub const fn new(level: Level, value: T) -> Self {
        Self {
            level,
            inner: spin::mutex::Mutex::new(value),
        }
    }

    #[inline]
    pub fn lock(&self) -> OrderedGuard<'_, T> {
        #[cfg(debug_assertions)]
        check::acquire(self.level);
        #[cfg(not(debug_assertions))]
        let _ = self.level;
        OrderedGuard {
            #[cfg(debug_assertions)]
            level: Some(self.level),
            guard: self.inner.lock(),
        }
    }

    /// Two locks of one level taken as one place in the order: `self`,
    /// then `second` (two domains' locks: lower `DomId` first, which the
    /// caller arranges). Drop the second guard no later than the first.
    #[inline]
    pub fn lock_pair<'a>(&'a self, second: &'a Self) -> (OrderedGuard<'a, T>, OrderedGuard<'a, T>) {
        debug_assert!(self.level == second.level);
        let first = self.lock();
        let second = OrderedGuard {
            #[cfg(debug_assertions)]
            level: None,
            guard: second.inner.lock(),
        };
        (first, second)
    }
}

impl<T> Deref for OrderedGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for OrderedGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

#[cfg(debug_assertions)]
impl<T> Drop for OrderedGuard<'_, T> {
    fn drop(&mut self) {
        if let Some(level) = self.level {
            check::release(level);
        }
    }
}

#[cfg(debug_assertions)]
mod check {
    use core::sync::atomic::{AtomicU32, Ordering};

    use hv::lock_levels::{Held, Level};

    use crate::arch::x86_64::percpu::{self, MAX_CPUS};

    /// The levels each CPU holds.
    static HELD: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];

    pub fn acquire(level: Level) {
        let slot = &HELD[percpu::cpu_id()];
        match Held(slot.load(Ordering::Relaxed)).acquire(level) {
            Ok(h) => slot.store(h.0, Ordering::Relaxed),
            Err(v) => panic!(
                "lock order: taking {:?} while holding {:?}",
                v.wanted, v.held
            ),
        }
    }

    pub fn release(level: Level) {
        let slot = &HELD[percpu::cpu_id()];
        let h = Held(slot.load(Ordering::Relaxed)).release(level);
        slot.store(h.0, Ordering::Relaxed);
    }
}
