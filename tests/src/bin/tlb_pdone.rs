//! A stale writable translation inside one `mmu_update` batch (issue #11,
//! the "within one batch" order).
//!
//! Frame F is mapped writable at window page 1, and the batch's `pdone`
//! points into it, at the slot of L1 entry 7. A first, harmless batch with
//! that `pdone` makes the hypervisor's own store go through the mapping,
//! so the CPU caches the translation for supervisor accesses. The attack
//! batch then (a) removes F's only writable mapping, (b) makes F an L1
//! table under an empty L2 slot (legal now: nothing maps it writable) and
//! (c–g) does five more harmless updates, so that the count of requests
//! done is 7 = P|RW|US. If the hypervisor stores `*pdone` before flushing
//! the TLB, the store lands through the stale translation in F, now a
//! live L1: entry 7 maps machine frame 0 present, writable and
//! user-accessible, and the guest reaches memory that is not its own.
//! Xen 4.17 flushes before the store (F changed type), so the store
//! faults, is dropped, and the page stays unmapped: a read of it is a #PF.
//!
//! @covers: mmu_update.normal_pt_update mmu_update.machphys_update
#![no_std]
#![no_main]

use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::{MmuUpdate, MMU_MACHPHYS_UPDATE, MMU_NORMAL_PT_UPDATE};
use tests::check;
use tests::fixup;
use tests::pvmm::{self, idx, read_u64, write_u64, Env, Window, A, P, RW, US};

guest_abi::pv_guest!(main, name = "tlb_pdone");

/// The L1 entry of F that a stale `*pdone` store would set.
const ENTRY: u64 = 7;

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("tlb_pdone");
    check!(r, "trap table for the probes", fixup::install() => 0);
    let Some(mut env) = Env::new(&mut r, si) else {
        r.finish()
    };
    let Some(w) = Window::new(&mut r, &mut env) else {
        r.finish()
    };
    let Some((f_pfn, f)) = w.map_fresh(&mut r, &mut env, "F", 1) else {
        r.finish()
    };
    let pdone_va = w.va(1) + ENTRY * 8;
    let Some(next) = w.next_slot(&mut r) else {
        r.finish()
    };
    let slot2 = idx(next.base, 21);

    let machphys = MmuUpdate {
        ptr: (f << 12) | MMU_MACHPHYS_UPDATE,
        val: f_pfn,
    };
    // Warm the hypervisor's translation of pdone: a batch that changes no
    // mapping (no flush) and stores *pdone through window page 1.
    let rc = pvmm::mmu_update_raw(
        core::ptr::from_ref(&machphys) as u64,
        1,
        pdone_va,
        u64::from(guest_abi::xen::DOMID_SELF),
    );
    check!(r, "harmless batch with pdone in F", rc => 0);
    check!(r, "its *pdone reads back", read_u64(pdone_va) => 1);
    // F must hold only valid L1 entries (zeros) to become an L1.
    write_u64(pdone_va, 0);

    let mut reqs = [machphys; 7];
    reqs[0] = MmuUpdate {
        ptr: w.pte_ma(1) | MMU_NORMAL_PT_UPDATE,
        val: 0,
    };
    reqs[1] = MmuUpdate {
        ptr: next.l2e_ma | MMU_NORMAL_PT_UPDATE,
        val: (f << 12) | P | RW | US | A,
    };
    let rc = pvmm::mmu_update_raw(
        reqs.as_ptr() as u64,
        reqs.len() as u64,
        pdone_va,
        u64::from(guest_abi::xen::DOMID_SELF),
    );
    check!(r, "attack batch: unmap F, F as L1, five more", rc => 0);
    check!(
        r,
        "L2 entry {slot2} now points at F",
        pvmm::mfn_of(read_u64(next.l2e_va)) => f
    );
    // F's entry 7 must still be empty: the page it would map is absent.
    let probe = next.base + ENTRY * 4096;
    let got = fixup::read(probe).map_or_else(|e| e.vector, |_| 0xffff);
    check!(
        r,
        "read of {probe:#x} (F's entry {ENTRY}) faults with #PF, not a stale *pdone mapping",
        got => 14u64
    );

    // Put things back: F stops being an L1, and is ours to map again.
    check!(r, "clear the L2 entry", pvmm::pt_write(next.l2e_ma, 0) => 0);
    r.finish()
}
