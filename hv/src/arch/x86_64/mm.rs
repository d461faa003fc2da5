//! TLB and page-table-base primitives for the MMU hypercalls.

use super::cpu::{read_cr3, read_cr4, write_cr3, write_cr4};

const CR4_PGE: u64 = 1 << 7;

/// Flushes every TLB entry of this CPU, global ones included (guest user
/// pages are global, as on Xen).
pub fn flush_tlb_all_local() {
    let cr4 = read_cr4();
    // SAFETY: toggling PGE off and on again only flushes the TLB; paging
    // and the tables in use are unchanged.
    unsafe {
        write_cr4(cr4 & !CR4_PGE);
        write_cr4(cr4);
    }
}

/// Drops the translation of one guest address on this CPU.
pub fn invlpg(va: u64) {
    super::cpu::invlpg(va);
}

/// Why a page table was not loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingHvSlots;

/// Loads a guest's L4 (physical address) if it is not loaded already.
///
/// Refuses a table whose hypervisor slots differ from the idle table's, so
/// hv (code, stacks, direct map) stays mapped whatever the caller passes.
/// That the rest of the table is a validated L4 of the running domain —
/// which keeps guests apart — is the MMU code's duty.
pub fn load_guest_page_table(l4: u64) -> Result<(), MissingHvSlots> {
    if read_cr3() & !0xfff == l4 {
        return Ok(());
    }
    if !crate::mm::page_table::hv_slots_installed(l4) {
        return Err(MissingHvSlots);
    }
    // SAFETY: the table's slots 256–271 equal the idle table's (checked
    // above), so hv's image, stacks and direct map stay mapped.
    unsafe { write_cr3(l4) };
    Ok(())
}
