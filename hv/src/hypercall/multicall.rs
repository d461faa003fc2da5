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

use super::{copy_in, copy_out, finish, TABLE};
use crate::arch::x86_64::entry::GuestRegs;

const ENTRY_SIZE: u64 = 64;
const BATCH: u64 = 64;

pub extern "C" fn hc_multicall(regs: &mut GuestRegs) {
    let list = regs.rdi;
    let count = u64::from(super::arg32(regs.rsi));
    for i in 0..count {
        // An entry past the top of the address space is unreadable.
        let Some(at) = list.checked_add(i * ENTRY_SIZE) else {
            finish(regs, Err(-errno::EFAULT));
            return;
        };
        if i == BATCH {
            regs.rdi = at;
            regs.rsi = count - i;
            super::reissue(regs);
            return;
        }
        let mut raw = [0u8; 64];
        if let Err(e) = copy_in(at, &mut raw) {
            finish(regs, Err(e));
            return;
        }
        let word =
            |k: usize| u64::from_le_bytes(raw[k * 8..k * 8 + 8].try_into().unwrap_or_default());
        let op = word(0);
        if !super::traps::allowed_in_multicall(op) {
            // Runs on the real context and ends the batch.
            let iret = TABLE[usize::try_from(nr::IRET).unwrap_or(0)];
            iret(regs);
            return;
        }
        let result = if op == nr::MULTICALL {
            (-errno::EINVAL).cast_unsigned()
        } else {
            let mut sub = GuestRegs {
                rax: op,
                rdi: word(2),
                rsi: word(3),
                rdx: word(4),
                r10: word(5),
                r8: word(6),
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
                // its entry and resume the multicall from it.
                let args = [sub.rdi, sub.rsi, sub.rdx, sub.r10, sub.r8];
                let mut bytes = [0u8; 40];
                for (chunk, a) in bytes.chunks_exact_mut(8).zip(args) {
                    chunk.copy_from_slice(&a.to_le_bytes());
                }
                if let Err(e) = copy_out(at + 16, &bytes) {
                    finish(regs, Err(e));
                    return;
                }
                regs.rdi = at;
                regs.rsi = count - i;
                super::reissue(regs);
                return;
            }
            sub.rax
        };
        if let Err(e) = copy_out(at + 8, &result.to_le_bytes()) {
            finish(regs, Err(e));
            return;
        }
    }
    finish(regs, Ok(0));
}
