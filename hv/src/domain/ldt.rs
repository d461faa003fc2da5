//! The guest's LDT, as Xen 4.17 provides it to 64-bit PV guests.
//!
//! `MMUEXT_SET_LDT` only records a linear address and an entry count and
//! loads an LDT register that points at the vCPU's LDT window (see
//! `page_table::VcpuArea`), with the limit the count gives. Nothing is
//! mapped there yet. The first time the CPU reads a descriptor from a page
//! of the area it faults (#PF in hv's range, from guest context or from
//! hv's `iretq`, always an implicit supervisor access: no user or
//! reserved bit in the error code; any other fault there is the guest's
//! own, delivered with its address as on Xen); [`handle_fault`] then looks up the guest's page through
//! the guest kernel's page table, takes a general and a SegDesc type
//! reference on it (the domain's own frame, every descriptor passing
//! Xen's checks, not mapped writable anywhere) and maps it there, and the
//! access is retried. If any of that fails, the guest gets the #PF at its
//! own LDT address instead, as on Xen (or #GP with the selector, were that
//! address non-canonical).
//!
//! Invariant: a page mapped in the LDT area holds exactly one SegDesc type
//! reference (and its general reference), recorded in [`Ldt`];
//! [`destroy`] drops both, so a page that is no longer the LDT can be
//! mapped writable again. Xen tears the mappings down whenever the LDT
//! changes and when the kernel page table is replaced.

use crate::arch::x86_64::gdt;
use crate::arch::x86_64::guest_state::is_canonical;
use crate::arch::x86_64::mm as tlb;
use crate::domain::{self, Cur};
use crate::mm::{self, frame_access as phys, page_table, PAGE_SIZE};

use page_table::{VcpuArea, LDT_PAGES};

use crate::arch::x86_64::percpu;

/// A vCPU's LDT (Xen's `ldt_base`, `ldt_ents` and shadow mappings), kept
/// small: the frames mapped are in the LDT area's own page table.
#[derive(Debug, Clone, Copy)]
pub struct Ldt {
    /// Guest linear address (page-aligned; 0 when there are no entries).
    pub base: u64,
    /// Descriptors (0: no LDT; at most 8192).
    pub ents: u32,
    /// Bit n: page n of the LDT window is mapped (and holds references).
    mapped: u16,
    /// The vCPU's window.
    pub area: VcpuArea,
}

impl Ldt {
    /// No LDT, in `area`'s window.
    pub fn new(area: VcpuArea) -> Self {
        Self {
            base: 0,
            ents: 0,
            mapped: 0,
            area,
        }
    }
}

const _: () = assert!(LDT_PAGES <= 16);

/// `MMUEXT_SET_LDT` with checked arguments: a new LDT replaces the old
/// one's mappings; the same LDT again changes nothing.
#[inline(never)]
pub fn set(d: &mut Cur<'_>, base: u64, ents: u32) {
    let base = if ents == 0 { 0 } else { base };
    let l = &mut d.vcpu.ldt;
    if l.base == base && l.ents == ents {
        return;
    }
    destroy(l);
    l.base = base;
    l.ents = ents;
    gdt::load_ldt(l.area.ldt(), u64::from(ents));
}

/// Unmaps every LDT page and drops its references.
#[inline(never)]
pub fn destroy(l: &mut Ldt) {
    for page in 0..LDT_PAGES {
        if l.mapped & (1 << page) == 0 {
            continue;
        }
        let mfn = l.area.ldt_page(page);
        let _ = l.area.set_ldt_page(page, None);
        if let Some(mfn) = mfn {
            mm::with_frame_table(|ft| ft.put_page_and_type(mfn));
        }
    }
    l.mapped = 0;
}

/// What a #PF at an address in the LDT area came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LdtFault {
    /// The page is mapped now: retry the access.
    Mapped,
    /// The guest's page cannot be its LDT: the fault goes to the guest at
    /// this linear address of its own LDT.
    Refused(u64),
    /// As `Refused`, but that address is not canonical: #GP with this
    /// error code (the selector's index, TI set) instead.
    RefusedNonCanonical(u32),
}

/// Whether `cr2` is an address of the running vCPU's LDT window.
#[inline]
pub fn in_area(cr2: u64) -> bool {
    let w = percpu::this_cpu().ldt_window();
    w != 0 && cr2.wrapping_sub(w) < LDT_PAGES as u64 * PAGE_SIZE
}

/// Maps the guest LDT page that a fault at `cr2` (in the LDT area) needs.
pub fn handle_fault(cr2: u64) -> LdtFault {
    domain::with_current(|d| {
        let offset = cr2.wrapping_sub(d.vcpu.ldt.area.ldt());
        let page = usize::try_from(offset / PAGE_SIZE).unwrap_or(LDT_PAGES);
        let (base, kernel_cr3, id) = (d.vcpu.ldt.base, d.vcpu.kernel_cr3, d.dom.id.get());
        let refused = || {
            let linear = base.wrapping_add(offset);
            if is_canonical(linear) {
                LdtFault::Refused(linear)
            } else {
                LdtFault::RefusedNonCanonical(u32::try_from((offset & 0xfffc) | 4).unwrap_or(4))
            }
        };
        let l = &mut d.vcpu.ldt;
        if page >= LDT_PAGES || offset >= u64::from(l.ents) * 8 {
            return refused();
        }
        if l.mapped & (1 << page) != 0 {
            // Mapped meanwhile (a stale translation): retry.
            tlb::invlpg(cr2);
            return LdtFault::Mapped;
        }
        let linear = base.wrapping_add(page as u64 * PAGE_SIZE);
        let Some(mfn) = kernel_frame_of(kernel_cr3, linear) else {
            return refused();
        };
        let Some(frame) = crate::mm::segdesc::take_segdesc(mfn, id) else {
            return refused();
        };
        if l.area.set_ldt_page(page, Some(&frame)).is_err() {
            return refused();
        }
        // Mapped: the reference is the mapped bit's from now on.
        let _ = frame.into_counted();
        l.mapped |= 1 << page;
        LdtFault::Mapped
    })
}

/// The frame the guest kernel's page table maps at `va` (Xen reads the
/// LDT through the kernel's tables whichever guest mode faulted), if the
/// page is present and mapped by an L1 entry.
///
/// The walk refuses addresses outside guest space; `va` is within 64 KiB
/// of a base `set_ldt` accepted (or wrapped past the top to just above 0),
/// where that is exactly the non-canonical ones.
fn kernel_frame_of(cr3: u64, va: u64) -> Option<u64> {
    if cr3 == 0 {
        return None;
    }
    match hv::pt_walk::translate(cr3, va, hv::pt_walk::PRESENT, |pa| phys::read_u64(pa).ok()) {
        Ok(leaf) if leaf.level == 1 => Some(leaf.paddr / PAGE_SIZE),
        _ => None,
    }
}
