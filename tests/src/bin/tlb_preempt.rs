//! A stale writable translation across a preempted `mmu_update` batch
//! (issue #11, the "preempted batch" order).
//!
//! hv preempts a batch every 256 requests with Xen's encoding: it stores
//! the progress in `*pdone` and re-issues the call with the rest, marked
//! `MMU_UPDATE_PREEMPTED`. That store comes in the middle of the guest's
//! batch, after requests that may have removed a frame's last writable
//! mapping and made the frame a page table. This guest puts `*pdone` in
//! such a frame F, reached through the writable mapping the batch's first
//! request removes; the second request makes F an L1 under an empty L2
//! slot; 256 harmless requests follow, so the store at the preemption
//! point comes after both.
//!
//! The value of a stale store is the guest's to choose: a batch marked
//! preempted starts counting from the `*pdone` it finds (as on Xen), so
//! the store writes that value plus 256. `*pdone` is placed one byte below
//! F's entry 7, so the 256 lands on the entry's low byte: entry 7 is
//! written beforehand as a not-present entry naming F itself with
//! RW|US|A (not present, so F still validates as an L1), and a stale
//! store would add the present bit: F would map itself writable at
//! 7 pages into that slot, and the guest could write its own page table.
//! hv flushes the TLB before it stores (the batch owes a flush from its
//! first request); Xen 4.17 flushes when F changes type. Either way the
//! store faults and is dropped, entry 7 stays as written, and reading
//! that page is a #PF. (Xen preempts whenever work is pending, not every
//! 256: preempted after the first request, its store lands in F while F
//! is still ordinary memory, changing only entry 6's top byte, which this
//! guest therefore does not check.)
//!
//! @covers: mmu_update.normal_pt_update mmu_update.machphys_update
#![no_std]
#![no_main]

use guest_abi::rt::report::Report;
use guest_abi::rt::StartInfoRef;
use guest_abi::xen::{MMU_MACHPHYS_UPDATE, MMU_NORMAL_PT_UPDATE};
use tests::check;
use tests::fixup;
use tests::pages::Pages;
use tests::pvmm::{self, idx, read_u64, write_u64, Env, Window, A, P, RW, US};

guest_abi::pv_guest!(main, name = "tlb_preempt");

/// The L1 entry of F that a stale `*pdone` store would make present.
const ENTRY: u64 = 7;
/// Requests in the batch: more than one preemption interval (256).
const COUNT: u64 = 258;
/// Bit of `count` marking a resumed batch.
const PREEMPTED: u64 = 0x8000_0000;

/// The batch's requests (16 bytes each), written with volatile stores.
static REQS: Pages<2> = Pages::new();

fn set_req(i: u64, ptr: u64, val: u64) {
    write_u64(REQS.addr() + i * 16, ptr);
    write_u64(REQS.addr() + i * 16 + 8, val);
}

fn main(si: StartInfoRef) -> ! {
    let mut r = Report::new("tlb_preempt");
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
    let entry_va = w.va(1) + ENTRY * 8;
    // The u32 at pdone: entry 6's top byte, then entry 7's low three bytes.
    let pdone_va = entry_va - 1;
    let Some(next) = w.next_slot(&mut r) else {
        r.finish()
    };

    let machphys = (f << 12) | MMU_MACHPHYS_UPDATE;
    set_req(0, machphys, f_pfn);
    // Warm the hypervisor's translation of pdone: a batch that changes no
    // mapping and stores *pdone through window page 1.
    let rc = pvmm::mmu_update_raw(
        REQS.addr(),
        1,
        pdone_va,
        u64::from(guest_abi::xen::DOMID_SELF),
    );
    check!(r, "harmless batch with pdone in F", rc => 0);
    check!(r, "its *pdone reads back in entry 6's top byte", read_u64(entry_va - 8) >> 56 => 1);

    // Entry 7 not present, naming F with RW|US|A: +0x100 at pdone sets P.
    let crafted = (f << 12) | RW | US | A;
    write_u64(entry_va - 8, 0);
    write_u64(entry_va, crafted);
    // *pdone now reads (crafted << 8) as a u32: + 256 is crafted | P.
    check!(r, "entry {ENTRY} crafted: not present, naming F, RW|US|A", read_u64(entry_va) => crafted);

    // Unmap F, make it an L1, then 256 harmless requests: the batch is
    // preempted after request 255, with F already an L1.
    set_req(0, w.pte_ma(1) | MMU_NORMAL_PT_UPDATE, 0);
    set_req(
        1,
        next.l2e_ma | MMU_NORMAL_PT_UPDATE,
        (f << 12) | P | RW | US | A,
    );
    for i in 2..COUNT {
        set_req(i, machphys, f_pfn);
    }
    let rc = pvmm::mmu_update_raw(
        REQS.addr(),
        COUNT | PREEMPTED,
        pdone_va,
        u64::from(guest_abi::xen::DOMID_SELF),
    );
    check!(r, "attack batch of {COUNT} (marked preempted, *pdone preset): unmap F, F as L1, 256 more", rc => 0);
    let slot2 = idx(next.base, 21);
    check!(r, "L2 entry {slot2} now points at F", pvmm::mfn_of(read_u64(next.l2e_va)) => f);

    let probe = next.base + ENTRY * 4096;
    let got = fixup::read(probe).map_or_else(|e| e.vector, |_| 0xffff);
    check!(
        r,
        "read of {probe:#x} (F's entry {ENTRY}) faults with #PF: no stale *pdone made F map itself",
        got => 14u64
    );
    // F read back through a read-only mapping (an L1 may be mapped so).
    check!(r, "map F read-only at window page 2", w.map(2, f, P | US | A) => 0);
    check!(r, "F's entry {ENTRY} is still the crafted, not-present entry", read_u64(w.va(2) + ENTRY * 8) => crafted);

    // Put things back: F stops being an L1.
    check!(r, "unmap window page 2", w.unmap(2) => 0);
    check!(r, "clear the L2 entry", pvmm::pt_write(next.l2e_ma, 0) => 0);
    r.finish()
}
