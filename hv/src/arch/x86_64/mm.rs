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
//! guest.
//!
//! Other CPUs: the translations in question may be cached by every CPU
//! that has run the domain whose tables changed. They are not flushed
//! when the entry changes (a guest flushes its other vCPUs itself, as on
//! Xen: `mmuext_op` TLB_FLUSH_MULTI, `update_va_mapping`'s flags); what
//! keeps hv's rules safe is Xen's TLB-flush clock. Every full flush of a
//! CPU first advances the global clock ([`TLB_CLOCK`]) and, once done,
//! records the clock in the CPU's [`FLUSHED_AT`]. The frame table stamps a
//! frame with the clock when a count of it falls to zero
//! (`hv::page_info`), and before the frame takes another type or goes
//! back to the allocator, [`flush_stale`] flushes every CPU whose last
//! flush began before the stamp (by IPI, waiting for them; this CPU's
//! share is a debt, paid before it next touches a guest mapping). Waiting
//! cannot deadlock: a CPU spinning on an hv lock or a frame's bit serves
//! its IPIs (`crate::sync`, `hv::page_info::Hooks::relax`).

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use hv::smp::CpuMask;

use super::cpu::{read_cr3, read_cr4, write_cr3, write_cr4};
use super::percpu::MAX_CPUS;
use super::{ipi, percpu};

/// Each domain's dirty CPUs, by domain id (ids from
/// `DOMID_FIRST_RESERVED` on have no mask: every online CPU counts).
static DIRTY: [AtomicU64; DIRTY_DOMAINS] = [const { AtomicU64::new(0) }; DIRTY_DOMAINS];
const DIRTY_DOMAINS: usize = guest_abi::xen::DOMID_FIRST_RESERVED as usize;

/// Records that this CPU runs (and so may cache translations of) domain
/// `domid`.
pub fn note_running(domid: u16) {
    if let Some(m) = DIRTY.get(usize::from(domid)) {
        let me = CpuMask::one(percpu::cpu_id()).0;
        if m.load(Ordering::Relaxed) & me == 0 {
            m.fetch_or(me, Ordering::Relaxed);
        }
    }
}

/// The CPUs that may cache translations of domain `domid`'s page tables.
#[inline]
pub fn dirty_cpus(domid: u16) -> CpuMask {
    match DIRTY.get(usize::from(domid)) {
        Some(m) => CpuMask(m.load(Ordering::Relaxed)),
        None => super::smp::online(),
    }
}

const CR4_PGE: u64 = 1 << 7;

/// How many CPUs owe a flush: the one word [`settle`] reads on every
/// access (each CPU's own debt is in its block).
pub(super) static CPUS_OWING: AtomicU32 = AtomicU32::new(0);

/// Records that this CPU owes a TLB flush before its next access through
/// a guest's mappings (for a change to one of a domain's page tables).
#[inline]
pub fn owe_flush() {
    if percpu::this_cpu().owe_tlb_flush() {
        CPUS_OWING.fetch_add(1, Ordering::Relaxed);
    }
}

/// The TLB-flush clock: advanced as each full flush begins.
pub static TLB_CLOCK: AtomicU64 = AtomicU64::new(1);

/// Each CPU's clock time of its last full flush (when it began).
static FLUSHED_AT: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Flushes every online CPU that may still cache a translation dropped
/// at clock time `stamp`: those whose last full flush began no later.
/// The others by IPI, waited for; this CPU's flush becomes its debt
/// (paid before it next uses a guest mapping, see [`settle`]).
pub fn flush_stale(stamp: u64) {
    let me = percpu::cpu_id();
    let stale = super::smp::online()
        .iter()
        .filter(|&cpu| FLUSHED_AT[cpu].load(Ordering::Acquire) <= stamp)
        .fold(CpuMask::EMPTY, |m, cpu| m.with(cpu));
    if stale.contains(me) {
        owe_flush();
    }
    let others = stale.without(me);
    if !others.is_empty() {
        shoot_down(others);
    }
}

/// Flushes the whole TLB of every CPU in `cpus` but this one, by IPI,
/// and waits until they all have.
#[cold]
#[inline(never)]
pub fn shoot_down(cpus: CpuMask) {
    ipi::call_on(cpus.without(percpu::cpu_id()), remote_flush, 0);
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

/// What a shootdown runs on each CPU it names.
fn remote_flush(_: u64) {
    flush_tlb_all_local();
}

/// What an `invlpg` shootdown runs on each CPU it names.
fn remote_invlpg(va: u64) {
    super::cpu::invlpg(va);
}

/// Flushes the TLBs of `cpus` (this CPU's directly, the others' by IPI,
/// waiting for them): all of each, or the translation of `va` only.
/// With this CPU alone, nothing is sent. Out of line: the guest's
/// `_LOCAL` flushes, the hot ones, do not come here.
#[inline(never)]
pub fn flush_cpus(cpus: CpuMask, va: Option<u64>) {
    let me = percpu::cpu_id();
    if cpus.only(me) {
        if cpus.contains(me) {
            match va {
                Some(va) => invlpg(va),
                None => flush_tlb_all_local(),
            }
        }
        return;
    }
    match va {
        Some(va) => ipi::call_on(cpus, remote_invlpg, va),
        None => ipi::call_on(cpus, remote_flush, 0),
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
    let time = TLB_CLOCK.fetch_add(1, Ordering::AcqRel) + 1;
    let cr4 = read_cr4();
    // SAFETY: toggling PGE off and on again only flushes the TLB; paging
    // and the tables in use are unchanged.
    unsafe {
        write_cr4(cr4 & !CR4_PGE);
        write_cr4(cr4);
    }
    FLUSHED_AT[percpu::cpu_id()].store(time, Ordering::Release);
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

/// Loads hv's idle page table (a CPU with no vCPU keeps no guest's table:
/// the frame may be freed once its domain is gone).
pub fn load_idle_table() {
    let _ = load_guest_page_table(crate::mm::page_table::idle_l4());
}

/// Reads the word at `va` through this CPU's TLB (the shootdown
/// self-test's probe: what a CPU still translates). Only addresses in the
/// vCPU windows' GDT part, which are always mapped, are read; elsewhere 0.
pub fn probe_gdt_window(va: u64) -> u64 {
    if !crate::mm::page_table::in_gdt_windows(va) || !va.is_multiple_of(8) {
        return 0;
    }
    // SAFETY: the GDT part of every vCPU window is mapped in hv's slots
    // (shared by every address space) at all times, supervisor-readable;
    // an aligned word read has no effect.
    unsafe { (va as *const u64).read_volatile() }
}
