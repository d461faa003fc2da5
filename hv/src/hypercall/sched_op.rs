//! `sched_op`: yield and shutdown.
//!
//! With one vCPU and no other runnable domain, yield returns at once.
//! Shutdown reads `struct sched_shutdown`; its reason is reported and, when
//! no domain is left, decides how hv leaves the machine.

use guest_abi::errno;
use guest_abi::sched::{SCHEDOP_SHUTDOWN, SCHEDOP_YIELD};

use super::HcResult;

pub fn sched_op(cmd: u32, arg: u64) -> HcResult {
    match cmd {
        SCHEDOP_YIELD => Ok(0),
        SCHEDOP_SHUTDOWN => {
            let mut raw = [0u8; 4];
            super::copy_in(arg, &mut raw)?;
            let reason = u32::from_le_bytes(raw);
            crate::shutdown::domain_shutdown(crate::domain::current_id(), reason)
        }
        _ => Err(-errno::ENOSYS),
    }
}
