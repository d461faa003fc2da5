//! Writes to read-only page tables, emulated as Xen 4.17 does for a PV
//! guest (`xen/arch/x86/pv/ro-page-fault.c`, "ptwr").
//!
//! A PV kernel's L1 tables are mapped read-only, yet a kernel may store to
//! one directly (Linux's `native_set_pte` while it builds its direct map):
//! the store faults, and the hypervisor carries it out as a checked update
//! of the entry. The fault qualifies when it is a write to a present page
//! (not a reserved-bit fault) from the guest kernel, the page is mapped
//! read-only and is an L1 table of this domain, and the instruction is a
//! write hv decodes ([`hv::x86_decode::decode_store`]: `mov`, `xchg`,
//! `and` or `or` of 8 bytes, or of 4 or 1 merged into the rest of the
//! entry as Xen turns a sub-word write into a full one; `xchg` gives the
//! register the old bytes, `and`/`or` set the flags), naturally aligned. The new entry then
//! goes through the same rules as `mmu_update` (`hv::pt`); if they refuse
//! it, or anything above does not hold, the #PF goes to the guest as it
//! would without emulation.
//!
//! Xen emulates any writing instruction (`cmpxchg`, `btr`, `add`, ...);
//! hv only these for now. An `and`/`or` (or a write of fewer than 8
//! bytes) reads the entry and then writes the combination: two vCPUs
//! racing on one entry may lose one change, where Xen retries with a
//! compare-and-exchange.

use hv::x86_decode::{decode_store, StoreOp, StoreSrc};

use super::{fetch, gpr_value, set_gpr, RFLAGS_RF};
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
    let operand = match store.src {
        StoreSrc::Reg(r) => gpr_value(regs, r),
        StoreSrc::Imm(v) => v.cast_unsigned(),
    };
    // The bytes written, as a mask of the 8-byte entry.
    let shift = (cr2 & 7) * 8;
    let field = if size == 8 {
        u64::MAX
    } else {
        ((1u64 << (size * 8)) - 1) << shift
    };
    let operand = (operand << shift) & field;
    // The entry as it is: what a write of fewer than 8 bytes, an `and` or
    // an `or` combines with (Xen too turns every write into a full one).
    let entry_va = cr2 & !7;
    let Ok(cur) = GuestPtr::<u64>::new(entry_va).and_then(|p| p.read(&Tables(cr3))) else {
        return false;
    };
    let new = match store.op {
        StoreOp::Mov | StoreOp::Xchg => (cur & !field) | operand,
        StoreOp::And => cur & (operand | !field),
        StoreOp::Or => cur | operand,
    };
    let index = usize::try_from((cr2 % PAGE_SIZE) / 8).unwrap_or(usize::MAX);
    // The check above was a hint: the update takes the table locked and
    // checks again that it is one of the domain's L1s.
    let Some(Ok(old)) = mm::with_page_tables(id, io_caps, |t| t.update_l1_entry(table, index, new))
    else {
        return false;
    };
    let old_field = (old & field) >> shift;
    match (store.op, store.src) {
        // The register gets the bytes as they were (zero-extended, as a
        // 32-bit register write does).
        (StoreOp::Xchg, StoreSrc::Reg(r)) => set_gpr(regs, r, old_field),
        (StoreOp::And | StoreOp::Or, _) => {
            regs.rflags = logic_flags(regs.rflags, (new & field) >> shift, size);
        }
        _ => {}
    }
    regs.rip = regs.rip.wrapping_add(store.len as u64);
    regs.rflags &= !RFLAGS_RF;
    true
}

/// rflags after an `and`/`or` whose `size`-byte result is `result`: CF and
/// OF clear, ZF, SF and PF from the result (AF, undefined, cleared).
fn logic_flags(rflags: u64, result: u64, size: u64) -> u64 {
    const CF: u64 = 1 << 0;
    const PF: u64 = 1 << 2;
    const AF: u64 = 1 << 4;
    const ZF: u64 = 1 << 6;
    const SF: u64 = 1 << 7;
    const OF: u64 = 1 << 11;
    let mut f = rflags & !(CF | PF | AF | ZF | SF | OF);
    if result == 0 {
        f |= ZF;
    }
    if (result >> (size * 8 - 1)) & 1 != 0 {
        f |= SF;
    }
    if (result & 0xff).count_ones().is_multiple_of(2) {
        f |= PF;
    }
    f
}
