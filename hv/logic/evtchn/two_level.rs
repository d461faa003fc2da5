//! 2-level delivery: one pending and one mask bit per port in
//! `shared_info`, one selector bit per pending word in each vCPU's
//! `evtchn_pending_sel`, and `evtchn_upcall_pending` to ask for the
//! upcall.
//!
//! The order of the bit operations is Xen's (`event_2l.c`) and matters:
//! the guest clears the selector before scanning the words and the
//! pending bit before handling a port, so setting pending, then the
//! selector, then the upcall flag means a concurrent guest either sees
//! the event now or gets another upcall for it.

use super::memory::{test64, test_and_clear64, test_and_set64, EventMemory};
use super::{Raised, TWO_LEVEL_PORTS, TWO_LEVEL_WORD_BITS};

/// The word index and the bit of `port` (the word index is also the
/// port's bit in `evtchn_pending_sel`).
#[inline]
fn split(port: u32) -> (usize, u32, u32) {
    let word = port / TWO_LEVEL_WORD_BITS;
    (word as usize, word, port % TWO_LEVEL_WORD_BITS)
}

/// Sets `evtchn_upcall_pending` (bit 0, as Xen's `test_and_set_bit`);
/// the vCPU needs a kick if it was clear.
#[inline]
pub(super) fn mark_events_pending<M: EventMemory + ?Sized>(vcpu: u32, mem: &M) -> Option<u32> {
    let was = mem
        .evtchn_upcall_pending(vcpu)
        .fetch_or(1, core::sync::atomic::Ordering::SeqCst);
    (was & 1 == 0).then_some(vcpu)
}

/// Marks `port` pending for `vcpu`. An already pending port changes
/// nothing (and wakes no poller); a masked one is left for the unmask.
#[inline]
pub(super) fn set_pending<M: EventMemory + ?Sized>(port: u32, vcpu: u32, mem: &M) -> Raised {
    if port >= TWO_LEVEL_PORTS {
        return Raised::NONE;
    }
    let (word, sel, bit) = split(port);
    if test_and_set64(mem.evtchn_pending(word), bit) {
        return Raised::NONE;
    }
    let mut upcall = None;
    if !test64(mem.evtchn_mask(word), bit) && !test_and_set64(mem.evtchn_pending_sel(vcpu), sel) {
        upcall = mark_events_pending(vcpu, mem);
    }
    Raised {
        newly_pending: Some(port),
        upcall,
    }
}

#[inline]
pub(super) fn clear_pending<M: EventMemory + ?Sized>(port: u32, mem: &M) {
    if port < TWO_LEVEL_PORTS {
        let (word, _, bit) = split(port);
        test_and_clear64(mem.evtchn_pending(word), bit);
    }
}

/// Clears the mask; a port that was masked and is pending is delivered
/// now, to `vcpu` (the port's notify vCPU).
#[inline]
pub(super) fn unmask<M: EventMemory + ?Sized>(port: u32, vcpu: u32, mem: &M) -> Raised {
    if port >= TWO_LEVEL_PORTS {
        return Raised::NONE;
    }
    let (word, sel, bit) = split(port);
    let mut upcall = None;
    if test_and_clear64(mem.evtchn_mask(word), bit)
        && test64(mem.evtchn_pending(word), bit)
        && !test_and_set64(mem.evtchn_pending_sel(vcpu), sel)
    {
        upcall = mark_events_pending(vcpu, mem);
    }
    Raised {
        newly_pending: None,
        upcall,
    }
}

#[inline]
pub(super) fn is_pending<M: EventMemory + ?Sized>(port: u32, mem: &M) -> bool {
    port < TWO_LEVEL_PORTS && {
        let (word, _, bit) = split(port);
        test64(mem.evtchn_pending(word), bit)
    }
}

#[inline]
pub(super) fn is_masked<M: EventMemory + ?Sized>(port: u32, mem: &M) -> bool {
    port >= TWO_LEVEL_PORTS || {
        let (word, _, bit) = split(port);
        test64(mem.evtchn_mask(word), bit)
    }
}
