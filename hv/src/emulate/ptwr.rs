//! Writes to read-only page tables, emulated as Xen 4.17 does for a PV
//! guest (`xen/arch/x86/pv/ro-page-fault.c`, "ptwr").
//!
//! A PV kernel's L1 tables are mapped read-only, yet a kernel may store to
//! one directly (Linux's `native_set_pte` while it builds its direct map):
//! the store faults, and the hypervisor carries it out as a checked update
//! of the entry. The fault qualifies when it is a write to a present page
//! (not a reserved-bit fault) from the guest kernel, the page is mapped
//! read-only and is an L1 table of this domain, and the instruction is a
//! plain store hv decodes ([`hv::x86_decode::decode_store`]: `mov` of 8
//! bytes, or 4 bytes merged into the entry's other half as Xen turns a
//! sub-word write into a full one), naturally aligned. The new entry then
//! goes through the same rules as `mmu_update` (`hv::pt`); if they refuse
//! it, or anything above does not hold, the #PF goes to the guest as it
//! would without emulation.
//!
//! Xen emulates any writing instruction (`xchg`, `cmpxchg`, ...); hv only
//! these stores for now.

use hv::x86_decode::{decode_store, StoreSrc};

use super::{fetch, gpr_value, RFLAGS_RF};
use crate::arch::x86_64::entry::GuestRegs;
use crate::guest_mem::{GuestPtr, Tables};
use crate::mm::{self, PAGE_SIZE};

const PFEC_PRESENT: u32 = 1 << 0;
const PFEC_WRITE: u32 = 1 << 1;
const PFEC_RSVD: u32 = 1 << 3;

/// Whether a #PF with this error code could be a write to a read-only
/// page table (the light path leaves those to the full one).
pub fn may_be_ptwr(error_code: u32) -> bool {
    error_code & (PFEC_PRESENT | PFEC_WRITE | PFEC_RSVD) == PFEC_PRESENT | PFEC_WRITE
}

/// Emulates the faulting store at `regs.rip` to `cr2` if it is a write to
/// one of the domain's L1 tables; true when done (rip moved past it).
pub fn emulate(regs: &mut GuestRegs, cr2: u64) -> bool {
    if !regs.is_guest_context() || !may_be_ptwr(regs.error_code) {
        return false;
    }
    let (in_kernel, cr3, id, io_caps) = crate::domain::with_current(|d| {
        (
            d.vcpu.in_kernel,
            d.vcpu.cr3,
            d.dom.id.get(),
            d.dom.privileged,
        )
    });
    if !in_kernel {
        return false;
    }
    // The mapping at cr2: a read-only 4 KiB page.
    let Ok(leaf) = hv::pt_walk::translate(cr3, cr2, hv::pt_walk::PRESENT, |pa| {
        crate::mm::frame_access::read_u64(pa).ok()
    }) else {
        return false;
    };
    if leaf.level != 1 || leaf.entry & hv::pt::PTE_RW != 0 {
        return false;
    }
    let table = leaf.paddr / PAGE_SIZE;
    let is_l1 = mm::with_frame_table(|ft| {
        ft.get(table).is_some_and(|p| {
            p.owner == Some(id) && p.ty == hv::page_info::PageType::L1 && p.type_count > 0
        })
    });
    if is_l1 != Some(true) {
        return false;
    }
    let (bytes, n) = fetch(cr3, regs.rip);
    let Some(store) = decode_store(bytes.get(..n).unwrap_or(&[])) else {
        return false;
    };
    let size = u64::from(store.size);
    if !cr2.is_multiple_of(size) {
        return false;
    }
    let value = match store.src {
        StoreSrc::Reg(r) => gpr_value(regs, r),
        StoreSrc::Imm(v) => v.cast_unsigned(),
    };
    let entry_va = cr2 & !7;
    let new = if size == 8 {
        value
    } else {
        // A 32-bit half: merged with the entry's other half, read now.
        let Ok(old) = GuestPtr::<u64>::new(entry_va).and_then(|p| p.read(&Tables(cr3))) else {
            return false;
        };
        let shift = (cr2 & 4) * 8;
        (old & !(0xffff_ffff << shift)) | ((value & 0xffff_ffff) << shift)
    };
    let index = usize::try_from((cr2 % PAGE_SIZE) / 8).unwrap_or(usize::MAX);
    let done = mm::with_page_tables(id, io_caps, |t| t.update_entry(table, index, new).is_ok());
    if done != Some(true) {
        return false;
    }
    regs.rip = regs.rip.wrapping_add(store.len as u64);
    regs.rflags &= !RFLAGS_RF;
    true
}
