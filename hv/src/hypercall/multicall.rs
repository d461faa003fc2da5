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
//! preempted every [`BATCH`] entries.
//!
//! @implements: multicall

use guest_abi::errno;
use guest_abi::hypercall as nr;
use guest_abi::xen::MulticallEntry;

use super::{finish, TABLE};
use crate::arch::x86_64::entry::GuestRegs;
use crate::guest_mem::{guest_field, GuestSlice, Loaded};

const BATCH: u64 = 64;

pub extern "C" fn hc_multicall(regs: &mut GuestRegs) {
    // No up-front check of the list, as on Xen: each entry faults alone.
    let list =
        GuestSlice::<MulticallEntry>::per_element(regs.rdi, u64::from(super::arg32(regs.rsi)));
    let count = list.len();
    for i in 0..count {
        // An entry past the top of the address space is unreadable.
        let Ok(at) = list.element_addr(i) else {
            finish(regs, Err(-errno::EFAULT));
            return;
        };
        if i == BATCH {
            regs.rdi = at;
            regs.rsi = count - i;
            super::reissue(regs);
            return;
        }
        let entry = match list.at(i).and_then(|p| Ok((p, p.read(&Loaded)?))) {
            Ok(e) => e,
            Err(e) => {
                finish(regs, Err(e.into()));
                return;
            }
        };
        let (ptr, call) = entry;
        let op = call.op;
        if !super::traps::allowed_in_multicall(op) {
            // Runs on the real context and ends the batch.
            let iret = TABLE[usize::try_from(nr::IRET).unwrap_or(0)];
            iret(regs);
            return;
        }
        let result = if op == nr::MULTICALL {
            (-errno::EINVAL).cast_unsigned()
        } else {
            let [a0, a1, a2, a3, a4, _] = call.args;
            let mut sub = GuestRegs {
                rax: op,
                rdi: a0,
                rsi: a1,
                rdx: a2,
                r10: a3,
                r8: a4,
                ..*regs
            };
            let handler = usize::try_from(op)
                .ok()
                .and_then(|n| TABLE.get(n))
                .copied()
                .unwrap_or(super::enosys);
            handler(&mut sub);
            if sub.rip != regs.rip {
                // The call asked to be continued: keep its new arguments in
                // its entry (the five a hypercall takes) and resume the
                // multicall from it.
                let args = [sub.rdi, sub.rsi, sub.rdx, sub.r10, sub.r8];
                let slots = guest_field!(ptr, MulticallEntry, args).as_slice();
                if let Err(e) = slots.write_from(&Loaded, 0, &args) {
                    finish(regs, Err(e.into()));
                    return;
                }
                regs.rdi = at;
                regs.rsi = count - i;
                super::reissue(regs);
                return;
            }
            sub.rax
        };
        if let Err(e) = guest_field!(ptr, MulticallEntry, result).write(&Loaded, &result) {
            finish(regs, Err(e.into()));
            return;
        }
    }
    finish(regs, Ok(0));
}
