//! `multicall`: several hypercalls for the price of one entry.
//!
//! Each `multicall_entry` {op, result, args[6]} runs through the same
//! dispatch table with the entry's arguments, and its result is written back
//! into the entry; a failing call does not stop the batch, and the multicall
//! itself returns 0 (Xen 4.17). A nested multicall gets -EINVAL. `iret`
//! changes the guest's real context, so it runs on the real registers and
//! ends the batch there (XSA-213: no call may run after it). A call that
//! wants to be preempted writes its continuation arguments back into its
//! entry and the multicall resumes from that entry; the multicall itself is
//! preempted every [`BATCH`] entries. Each entry goes through the same
//! decode and checks as a direct call ([`super::dispatch`]); a call that
//! crashes the domain crashes it from inside the multicall too.

use guest_abi::errno::Errno;
use guest_abi::hypercall as nr;
use guest_abi::xen::MulticallEntry;

use super::{dispatch, Outcome};
use crate::arch::x86_64::entry::GuestRegs;
use crate::guest_mem::{guest_field, GuestSlice, Loaded};

const BATCH: u64 = 64;

pub fn multicall(regs: &mut GuestRegs, calls: u64, count: u32) -> Outcome {
    // No up-front check of the list, as on Xen: each entry faults alone.
    let list = GuestSlice::<MulticallEntry>::per_element(calls, u64::from(count));
    let count = list.len();
    let mut switch = false;
    for i in 0..count {
        // An entry past the top of the address space is unreadable.
        let Ok(at) = list.element_addr(i) else {
            return Outcome::Err(Errno::EFAULT);
        };
        if i == BATCH {
            return Outcome::again([at, count - i]);
        }
        let (ptr, call) = match list.at(i).and_then(|p| Ok((p, p.read(&Loaded)?))) {
            Ok(e) => e,
            Err(e) => return Outcome::Err(e.into()),
        };
        let op = call.op;
        if !super::traps::allowed_in_multicall(op) {
            // Runs on the real context and ends the batch.
            return dispatch(regs, op, [0; 5]);
        }
        let result = if op == nr::MULTICALL {
            Errno::EINVAL.to_ret()
        } else {
            let [a0, a1, a2, a3, a4, _] = call.args;
            match dispatch(regs, op, [a0, a1, a2, a3, a4]) {
                Outcome::Done(v) => v,
                Outcome::Err(e) => e.to_ret(),
                Outcome::Continue(new) => {
                    // The call asked to be continued: keep its new
                    // arguments in its entry and resume the multicall
                    // from it.
                    let slots = guest_field!(ptr, MulticallEntry, args).as_slice();
                    if let Err(e) = slots.write_from(&Loaded, 0, new.values()) {
                        return Outcome::Err(e.into());
                    }
                    return Outcome::again([at, count - i]);
                }
                crash @ Outcome::Crash(_) => return crash,
                // The switch waits for the batch's end.
                Outcome::Switch(v) => {
                    switch = true;
                    v
                }
            }
        };
        if let Err(e) = guest_field!(ptr, MulticallEntry, result).write(&Loaded, &result) {
            return Outcome::Err(e.into());
        }
    }
    if switch {
        Outcome::Switch(0)
    } else {
        Outcome::Done(0)
    }
}
