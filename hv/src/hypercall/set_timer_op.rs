//! `set_timer_op` (hypercall 15): the calling vCPU's single-shot timer,
//! as Xen 4.17's `do_set_timer_op` sets it (`hv::timer::set_timer_op`:
//! 0 stops it; a timeout in the past fires at once; one negative as an
//! `s_time_t` or more than 2^50 ns ahead, Linux's wrapped jiffies, fires
//! in 100 ms). Always 0.

use hv::timer::TimerOp;

use super::Outcome;
use crate::timer::{self, Kind};

pub fn set_timer_op(timeout: u64) -> Outcome {
    let (dom, vcpu) = current_vcpu();
    let kind = Kind::Singleshot { dom, vcpu };
    match hv::timer::set_timer_op(timeout, crate::time::now_ns()) {
        TimerOp::Stop => timer::stop(kind),
        TimerOp::At(deadline) => timer::set(kind, deadline),
    }
    Outcome::Done(0)
}

/// The running domain's id and the running vCPU's number (neither
/// locked: both are fixed while the vCPU runs here).
pub fn current_vcpu() -> (guest_abi::types::DomId, u32) {
    let current = crate::domain::current();
    (current.domain().id, current.vcpu_id())
}
