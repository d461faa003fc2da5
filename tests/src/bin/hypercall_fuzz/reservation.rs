//! The reservation check: after every top-level call the guest checks that
//! hv answered with
//! its reservation intact: `XENMEM_current_reservation` is what the guest
//! believes (it changes only by what an increase/decrease/populate call
//! reported done, or through a multicall, another memory_op or a grant
//! transfer, and stays within `XENMEM_maximum_reservation`), but for the
//! deferred frees: a frame given back while still in use (mapped, pinned,
//! a descriptor page) leaves the reservation only when its last use goes,
//! which may be any later call. The guest keeps a bound on such frames
//! (those a decrease reported done that did not leave at once; after a
//! call it cannot predict, every frame that has been in the spare pool,
//! the only frames both named in a mapping, a pin or a descriptor table
//! and given back) and lets any call lower the reservation by no more
//! than the bound, which that lowers in turn.
//!
//! The spare pool (the frames the guest may clobber, map, pin and give
//! back) is kept stocked: a frame a predicted decrease reported given back
//! frees its slot, and frames a predicted increase or populate handed out
//! fill free slots.

use guest_abi::hypercall as hc;
use guest_abi::memory::XENMEM_CURRENT_RESERVATION;
use guest_abi::println;
use guest_abi::xen::DOMID_SELF;
use tests::pvmm::{self, read_u64};

use crate::{Call, Fuzz};

/// What a reservation call asked for, read before it runs (the call may
/// write extents over its own arguments).
#[derive(Clone, Copy)]
pub(crate) struct ResvArgs {
    /// +1 for increase/populate, -1 for decrease.
    sign: i64,
    order: u32,
}

impl Fuzz {
    /// For a reservation call whose effect the guest can predict: its
    /// direction and extent order. `None` for any other call.
    pub(crate) fn resv_args(&self, c: &Call, multicall: bool) -> Option<ResvArgs> {
        if multicall || c.nr != hc::MEMORY_OP {
            return None;
        }
        let sign = match c.a[0] {
            0 | 6 => 1,
            1 => -1,
            _ => return None,
        };
        let p = c.a[1];
        if !(self.blob..self.blob_end.saturating_sub(32)).contains(&p) {
            return None;
        }
        // struct xen_memory_reservation: extent_order at 16, domid at 24.
        let order = read_u64(p + 16) & 0xffff_ffff;
        let domid = read_u64(p + 24) & 0xffff;
        let ours = domid == u64::from(DOMID_SELF) || domid == 0;
        let order = u32::try_from(order).ok().filter(|&o| o < 32 && ours)?;
        Some(ResvArgs { sign, order })
    }

    /// Keeps the spare pool stocked: a frame a predicted decrease reported
    /// given back frees its slot (the frame may go any time), and frames a
    /// predicted increase or populate reported handed out (fresh, unused)
    /// fill free slots.
    pub(crate) fn track_pool(&mut self, c: &Call, resv: Option<ResvArgs>, rc: i64) {
        let Some(a) = resv else {
            return;
        };
        let p = c.a[1];
        let (list, n) = (read_u64(p), read_u64(p + 8));
        let done = u64::try_from(rc).unwrap_or(0).min(n).min(512);
        let in_blobs = list >= self.blob
            && list
                .checked_add(8 * done)
                .is_some_and(|end| end <= self.blob_end);
        if !in_blobs {
            return;
        }
        for k in 0..done {
            let first = read_u64(list + 8 * k);
            for m in (0..1u64 << a.order).map(|j| first.wrapping_add(j)) {
                if a.sign < 0 {
                    for (slot, _) in self.pool.iter().enumerate().filter(|&(_, &f)| f == m) {
                        self.pool_given |= 1 << slot;
                    }
                } else if self.pool_given != 0 {
                    let slot = self.pool_given.trailing_zeros();
                    self.pool[slot as usize] = m;
                    self.pool_given &= !(1 << slot);
                    self.ever_pooled += 1;
                }
            }
        }
    }

    /// The reservation is what the guest believes after call `nr` (`resv`
    /// its arguments if it was a predictable reservation call, `rc` its
    /// result): what the call reported received or given back, less up to
    /// [`Fuzz::given_back`] frames freed late.
    pub(crate) fn check_reservation(
        &mut self,
        (nr, resv, rc): (u64, Option<ResvArgs>, i64),
    ) -> Result<(), &'static str> {
        let now = pvmm::reservation(XENMEM_CURRENT_RESERVATION);
        // Frames received and frames given back, as the call reported.
        let (got, gave) = match resv {
            Some(a) => {
                let done = rc.max(0) << a.order;
                if a.sign > 0 {
                    (done, 0)
                } else {
                    (0, done)
                }
            }
            // A multicall may hold reservation calls; a memory_op with
            // another layout (a start extent, an argument outside the
            // blobs, exchange) and a grant-table op (GNTTABOP_transfer
            // gives a page away on Xen) are not predicted: their change is
            // only bounded, and any frame that has been in the pool may
            // have been given back.
            None if matches!(nr, hc::MULTICALL | hc::MEMORY_OP | hc::GRANT_TABLE_OP) => {
                self.given_back = self.ever_pooled;
                self.reserved = now;
                return self.check_bounds(now);
            }
            None => (0, 0),
        };
        let prev = self.reserved;
        self.reserved = now;
        self.check_bounds(now)?;
        // Frames that left: given back by this call, or freed late.
        let left = prev + got - now;
        let may_leave = self.given_back + gave;
        if !(0..=may_leave).contains(&left) {
            println!(
                "  reservation {prev} -> {now}: {got} received, {left} left, at most {may_leave} may"
            );
            return Err("reservation changed other than the call reported");
        }
        // Only frames in use can leave late, and those have been spare
        // frames (which the guest may give back more than once).
        self.given_back = (may_leave - left).min(self.ever_pooled);
        self.late_frees += (left - gave).max(0);
        Ok(())
    }

    fn check_bounds(&self, now: i64) -> Result<(), &'static str> {
        if now <= 0 || now > self.max_reserved {
            println!("  reservation {now}, maximum {}", self.max_reserved);
            return Err("reservation out of bounds");
        }
        Ok(())
    }
}
