//! TLB and page-table-base primitives for the MMU hypercalls, and each
//! CPU's TLB debt.
//!
//! The debt (issue #11): when the page-table rules report that an
//! operation removed or changed a translation this CPU may have cached
//! (`hv::pt::PageTables::flush_owed`), `mm::with_page_tables` records it
//! here with [`owe_flush`]. [`settle`] pays it (one full flush) and runs
//! before every access through a guest's mappings (`uaccess`: hv's reads
//! and stores on the guest's behalf, whoever makes them), before a frame
//! goes back to the allocator, and before a hypercall that may owe
//! returns to the guest (a debug build checks every hypercall's return).
//! So no access ever uses a translation the frame table no longer
//! allows, whichever order of batches, preemptions and multicall entries
//! brought it about. Any full flush pays the debt.
//!
//! Invariant: a CPU owes a flush only between the operation that created
//! the debt and its next access through guest mappings or return to the
//! guest; only that CPU's own TLB is in question (one CPU runs a domain
//! for now; the SMP issue extends the debt to every CPU the domain ran
//! on, with a shootdown).

use core::sync::atomic::{AtomicU32, Ordering};

use super::cpu::{read_cr3, read_cr4, write_cr3, write_cr4};
use super::percpu;

const CR4_PGE: u64 = 1 << 7;

/// How many CPUs owe a flush: the one word [`settle`] reads on every
/// access (each CPU's own debt is in its block).
pub(super) static CPUS_OWING: AtomicU32 = AtomicU32::new(0);

/// Records that this CPU owes a TLB flush before its next access through
/// a guest's mappings.
pub fn owe_flush() {
    if percpu::this_cpu().owe_tlb_flush() {
        CPUS_OWING.fetch_add(1, Ordering::Relaxed);
    }
}

/// Pays this CPU's TLB debt, if it has one.
#[inline(always)]
pub fn settle() {
    if CPUS_OWING.load(Ordering::Relaxed) != 0 {
        settle_owed();
    }
}

#[cold]
#[inline(never)]
fn settle_owed() {
    if percpu::this_cpu().tlb_flush_owed() {
        flush_tlb_all_local();
    }
}

/// Whether this CPU owes a TLB flush.
pub fn owes_flush() -> bool {
    CPUS_OWING.load(Ordering::Relaxed) != 0 && percpu::this_cpu().tlb_flush_owed()
}

/// Flushes every TLB entry of this CPU, global ones included (guest user
/// pages are global, as on Xen), and so pays its debt.
#[inline]
pub fn flush_tlb_all_local() {
    let cr4 = read_cr4();
    // SAFETY: toggling PGE off and on again only flushes the TLB; paging
    // and the tables in use are unchanged.
    unsafe {
        write_cr4(cr4 & !CR4_PGE);
        write_cr4(cr4);
    }
    if CPUS_OWING.load(Ordering::Relaxed) != 0 {
        paid();
    }
}

#[cold]
#[inline(never)]
fn paid() {
    if percpu::this_cpu().pay_tlb_flush() {
        CPUS_OWING.fetch_sub(1, Ordering::Relaxed);
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
