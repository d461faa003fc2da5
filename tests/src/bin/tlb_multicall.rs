//! Stale writable translations inside a multicall (issue #11, the
//! "multicall" order): hv writes each entry's result, and the calls write
//! their outputs, through the guest's mappings, after earlier entries may
//! have removed a frame's last writable mapping and given it a page-table
//! type.
//!
//! 1. The result slot. One entry, an `mmu_update` that unmaps frame F1
//!    and makes it an L1 under an empty L2 slot, is placed 8 bytes before
//!    F1's page, so its `result` field is F1's entry 0 and its arguments
//!    entries 1–6 (all even: not-present entries). Entry 0 holds a
//!    present read-only mapping of a marked page G. hv reads the entry
//!    through F1's writable mapping (caching it), runs the batch, then
//!    stores the result, 0. Through a stale translation that store would
//!    clear a live L1 entry behind the reference counts (G's reference
//!    would leak, and its mapping vanish). hv flushes before the store
//!    and Xen 4.17 flushed when F1 changed type: the store faults and the
//!    multicall answers -EFAULT (as Xen's does), and G is still mapped.
//! 2. A later entry's output. `update_va_mapping` (no flush asked), or
//!    in a second run `mmu_update` (no `pdone`), removes frame F2's only
//!    writable mapping; the next entry,
//!    `mmuext_op`, pins F2 as an L1 with its `*pdone` in F2, marked
//!    preempted with `*pdone` preset so that the stale store (preset + 1)
//!    would make entry 7, a not-present entry naming F2 with RW|US|A,
//!    present: F2 would map itself writable. The store faults on hv (the
//!    first entry left a TLB debt, paid before the multicall's result
//!    store) and on Xen (the pin flushed), and entry 7 stays as written.
//!
//! @covers: multicall update_va_mapping mmu_update.normal_pt_update mmuext_op.pin_l1_table
//! @covers: mmuext_op.unpin_table
//! @variant: smp4 smp=4
#![no_std]
#![no_main]

use guest_abi::hypercall::{hypercall2, MMUEXT_OP, MMU_UPDATE, MULTICALL, UPDATE_VA_MAPPING};
use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::{
    MmuUpdate, MulticallEntry, DOMID_SELF, MMUEXT_INVLPG_LOCAL, MMUEXT_PIN_L1_TABLE,
    MMUEXT_UNPIN_TABLE, MMU_NORMAL_PT_UPDATE,
};
use tests::check;
use tests::fixup;
use tests::pvmm::{self, mmuext1, mmuext_raw, op, read_u64, write_u64, Env, Window, A, P, RW, US};

guest_abi::pv_guest!(main, name = "tlb_multicall");

/// The L1 entry of F2 that a stale `*pdone` store would make present.
const ENTRY: u64 = 7;
/// Bit of `count` marking a resumed batch.
const PREEMPTED: u64 = 0x8000_0000;
const SELF: u64 = DOMID_SELF as u64;
const EFAULT: i64 = -14;
/// What G holds, to tell its mapping from any other.
const MARKER: u64 = 0x6d61_726b_6572_2047;

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("tlb_multicall");
    check!(r, "trap table for the probes", fixup::install() => 0);
    let Some(mut env) = Env::new(&mut r, si) else {
        r.finish()
    };
    let Some(w) = Window::new(&mut r, &mut env) else {
        r.finish()
    };
    result_slot(&mut r, &mut env, &w);
    later_output(&mut r, &mut env, &w, Remover::UpdateVaMapping);
    later_output(&mut r, &mut env, &w, Remover::MmuUpdate);
    r.finish()
}

/// Case 1: the multicall's own result store. Xen may preempt the batch
/// between its two requests (when a softirq is pending): it then rewrites
/// the entry's arguments (F1's entries 1–6) through the still-valid
/// writable translation, legitimately (F1 is plain memory until the
/// second request), and the case shows nothing; it is then run again, up
/// to 5 times, on fresh frames.
fn result_slot(r: &mut Report, env: &mut Env, w: &Window) {
    for attempt in 1..=5 {
        match result_slot_once(r, env, w) {
            Attempt::Done => return,
            Attempt::Preempted(e1) => guest_abi::println!(
                "attempt {attempt}: the batch was preempted between its requests (F1's entry 1 rewritten to {e1:#x}); again"
            ),
        }
    }
    r.check("case 1 ran once without preemption in 5 attempts", false);
}

/// How one run of case 1 went.
enum Attempt {
    /// Checked (the checks are in the report).
    Done,
    /// Preempted between its requests: F1's entry 1 as the call left it.
    Preempted(u64),
}

fn result_slot_once(r: &mut Report, env: &mut Env, w: &Window) -> Attempt {
    let (Some(_), Some((_, f1)), Some((_, g)), Some(next)) = (
        w.map_fresh(r, env, "A", 1),
        w.map_fresh(r, env, "F1", 2),
        w.map_fresh(r, env, "G", 3),
        w.next_slot(r),
    ) else {
        return Attempt::Done;
    };
    write_u64(w.va(3), MARKER);

    let reqs = [
        MmuUpdate {
            ptr: w.pte_ma(2) | MMU_NORMAL_PT_UPDATE,
            val: 0,
        },
        MmuUpdate {
            ptr: next.l2e_ma | MMU_NORMAL_PT_UPDATE,
            val: (f1 << 12) | P | RW | US | A,
        },
    ];
    let reqs_va = reqs.as_ptr() as u64;
    // The entry: op in A's last word, result = F1[0], args = F1[1..7].
    let entry_va = w.va(2) - 8;
    let g_ro = (g << 12) | P | US | A;
    let words = [MMU_UPDATE, g_ro, reqs_va, reqs.len() as u64, 0, SELF, 0, 0];
    for (i, &v) in words.iter().enumerate() {
        write_u64(entry_va + i as u64 * 8, v);
    }
    check!(r, "the list's arguments are not-present L1 entries", reqs_va & P => 0);
    // SAFETY: the entry's buffers outlive the call; the mapping changes
    // are to window pages and an empty L2 slot.
    let got = unsafe { hypercall2(MULTICALL, entry_va, 1) };
    let mapped = w.map(4, f1, P | US | A);
    let e1 = read_u64(w.va(4) + 8);
    let attempt = if mapped == 0 && e1 != reqs_va {
        Attempt::Preempted(e1)
    } else {
        check!(
            r,
            "multicall [mmu_update: unmap F1, F1 as L1] with its result in F1: the result store faults",
            got => EFAULT
        );
        check!(r, "L2 entry now points at F1", pvmm::mfn_of(read_u64(next.l2e_va)) => f1);
        let probe = next.base;
        let got = fixup::read(probe).unwrap_or(0);
        check!(
            r,
            "read of {probe:#x} (F1's entry 0) finds G's marker: no stale result store cleared it",
            got => MARKER
        );
        check!(r, "map F1 read-only at window page 4", mapped => 0);
        let e0 = read_u64(w.va(4));
        check!(r, "F1's entry 0 still maps G", pvmm::mfn_of(e0) => g);
        check!(r, "F1's entry 0 is still present", e0 & P => P);
        check!(r, "F1's entry 1 is still the list pointer", e1 => reqs_va);
        Attempt::Done
    };

    check!(r, "unmap window page 4", w.unmap(4) => 0);
    check!(r, "clear the L2 entry", pvmm::pt_write(next.l2e_ma, 0) => 0);
    check!(r, "unmap window page 1", w.unmap(1) => 0);
    check!(r, "unmap window page 3", w.unmap(3) => 0);
    attempt
}

/// The call that drops F2's writable mapping in case 2.
#[derive(Clone, Copy)]
enum Remover {
    /// `update_va_mapping`, no flush asked.
    UpdateVaMapping,
    /// `mmu_update` of the L1 entry, no `pdone`.
    MmuUpdate,
}

/// Case 2: one call drops the writable mapping, then the next entry's
/// `mmuext_op` pins the frame and stores `*pdone` into it. Each remover
/// works on its own frame and window pages.
fn later_output(r: &mut Report, env: &mut Env, w: &Window, remover: Remover) {
    let (page, what) = match remover {
        Remover::UpdateVaMapping => (5, "update_va_mapping: unmap F2 (no flush asked)"),
        Remover::MmuUpdate => (8, "mmu_update: unmap F2 (no pdone)"),
    };
    let Some((_, f2)) = w.map_fresh(r, env, "F2", page) else {
        return;
    };
    let pdone_va = w.va(page) + ENTRY * 8;

    // Warm the hypervisor's translation of pdone: an mmuext_op that maps
    // nothing and stores *pdone through F2's window page.
    let invlpg = [op(MMUEXT_INVLPG_LOCAL, w.va(100), 0)];
    let rc = mmuext_raw(invlpg.as_ptr() as u64, 1, pdone_va, SELF);
    check!(r, "harmless mmuext_op with pdone in F2", rc => 0);
    check!(r, "its *pdone reads back", read_u64(pdone_va) => 1);
    // Entry 7 not present, naming F2 with RW|US|A: + 1 at pdone sets P.
    let crafted = (f2 << 12) | RW | US | A;
    write_u64(pdone_va, crafted);

    let pin = [op(MMUEXT_PIN_L1_TABLE, f2, 0)];
    let unmap = [MmuUpdate {
        ptr: w.pte_ma(page) | MMU_NORMAL_PT_UPDATE,
        val: 0,
    }];
    let mut calls = [
        match remover {
            Remover::UpdateVaMapping => entry(UPDATE_VA_MAPPING, [w.va(page), 0, 0, 0, 0]),
            Remover::MmuUpdate => entry(MMU_UPDATE, [unmap.as_ptr() as u64, 1, 0, SELF, 0]),
        },
        entry(
            MMUEXT_OP,
            [pin.as_ptr() as u64, 1 | PREEMPTED, pdone_va, SELF, 0],
        ),
    ];
    for c in &mut calls {
        c.result = 0xdead;
    }
    // SAFETY: the entries' buffers live on this stack frame; the mapping
    // change is to a window page.
    let got = unsafe { hypercall2(MULTICALL, calls.as_mut_ptr() as u64, calls.len() as u64) };
    check!(
        r,
        "multicall [{what}; mmuext_op: pin F2 as L1, *pdone in F2]",
        got => 0
    );
    check!(r, "entry 0: {what}", calls[0].result => 0);
    check!(r, "entry 1: mmuext_op", calls[1].result => 0);
    let ro = page + 1;
    check!(r, "map F2 read-only at window page {ro}", w.map(ro, f2, P | US | A) => 0);
    check!(
        r,
        "F2's entry {ENTRY} is still the crafted, not-present entry: no stale *pdone made F2 map itself",
        read_u64(w.va(ro) + ENTRY * 8) => crafted
    );
    check!(r, "unmap window page {ro}", w.unmap(ro) => 0);
    check!(r, "unpin F2", mmuext1(MMUEXT_UNPIN_TABLE, f2, 0) => 0);
}

fn entry(op: u64, a: [u64; 5]) -> MulticallEntry {
    MulticallEntry {
        op,
        result: 0,
        args: [a[0], a[1], a[2], a[3], a[4], 0],
    }
}
