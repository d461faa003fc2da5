//! Putting back, right after each top-level call, whatever the call may
//! have changed in how the next fault or event would be delivered: the
//! trap table, the callbacks and the NMI callback, CR0.TS, the LDT, the
//! GDT and the segment bases. A call sets the bits of what it touched
//! (`Call::undo`; a multicall the union of its entries').

use guest_abi::hypercall as hc;
use guest_abi::xen::DOMID_SELF;

use crate::{fire, poke, Call, Fuzz};

/// Calls that change how faults or events would be delivered, to undo.
pub(crate) const UNDO_TRAPS: u32 = 1;
pub(crate) const UNDO_CALLBACKS: u32 = 2;
pub(crate) const UNDO_FPU: u32 = 4;
pub(crate) const UNDO_LDT: u32 = 8;
pub(crate) const UNDO_GDT: u32 = 16;
pub(crate) const UNDO_SEG: u32 = 32;
pub(crate) const UNDO_NMI: u32 = 64;

impl Fuzz {
    pub(crate) fn undo(&mut self, undo: u32) {
        let b = self.blob;
        let fix = |bit: u32, nr: u64, a: [u64; 4]| {
            if undo & bit != 0 {
                fire(&Call {
                    nr,
                    a: [a[0], a[1], a[2], a[3], 0],
                    undo: 0,
                });
            }
        };
        fix(UNDO_TRAPS, hc::SET_TRAP_TABLE, [0; 4]);
        fix(UNDO_CALLBACKS, hc::SET_CALLBACKS, [0; 4]);
        fix(UNDO_FPU, hc::FPU_TASKSWITCH, [0; 4]);
        fix(UNDO_GDT, hc::SET_GDT, [b, 0, 0, 0]);
        fix(UNDO_NMI, hc::NMI_OP, [1, 0, 0, 0]);
        for which in 0..4 {
            fix(UNDO_SEG, hc::SET_SEGMENT_BASE, [which, 0, 0, 0]);
        }
        if undo & UNDO_LDT != 0 {
            [13, 0, 0]
                .into_iter()
                .zip(0..)
                .for_each(|(v, k)| poke(b + 8 * k, v));
            fix(UNDO_LDT, hc::MMUEXT_OP, [b, 1, 0, DOMID_SELF.into()]);
        }
        if undo & UNDO_CALLBACKS != 0 {
            for ty in [3, 5, 7] {
                poke(b, ty);
                poke(b + 8, 0);
                fire(&Call {
                    nr: hc::CALLBACK_OP,
                    a: [0, b, 0, 0, 0],
                    undo: 0,
                });
            }
        }
    }
}
