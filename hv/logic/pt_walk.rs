//! hv's one software walk of a guest's 4-level page tables, as plain logic.
//!
//! Three callers share it: the copies to and from guest memory when the
//! guest's tables are not the loaded ones (`guest_mem`), the LDT fault
//! handler (the frame behind a page of the guest's LDT) and
//! `update_va_mapping` (the L1 entry it replaces). The walk is generic over
//! how an entry is read — a reader `FnMut(paddr) -> Option<u64>`: hv's
//! direct map in the kernel, a map of fake frames in the tests — and reads
//! each entry exactly once, deciding on that one copy (the guest may change
//! its tables meanwhile).
//!
//! Rules, the same for every caller:
//! - Only guest address space is walked (Xen's `__addr_ok`): an address in
//!   the canonical hole or in hv's slots is refused before any read.
//! - Every level must grant the rights the caller names: present, and for
//!   the guest kernel's own accesses user (64-bit PV kernels run in ring 3)
//!   and, for a write, writable. The first level that does not grant them
//!   ends the walk.
//! - Bit 7 of an L3 or L2 entry ends the walk at a 1 GiB or 2 MiB page.
//!   Validated PV tables never hold one (Xen refuses PSE above L1), but a
//!   walk must not read a data page as a table; callers that need an L1
//!   refuse it. Bit 7 is the PAT bit in an L1 entry and reserved in an L4
//!   entry: both are ignored.
//!
//! Everything is `#[inline]` and monomorphised per reader, so the kernel's
//! walks compile to the straight-line reads they replaced
//! (`update_va_mapping` is a benchmarked hot path).

use crate::pt::{PTE_ADDR, PTE_NX, PTE_P, PTE_PSE, PTE_RW, PTE_US};

/// Rights a walk can demand of every level: the entry is present.
pub const PRESENT: u64 = PTE_P;
/// ... and the guest kernel (ring 3) may read through it.
pub const GUEST_READ: u64 = PTE_P | PTE_US;
/// ... and the guest kernel may write through it.
pub const GUEST_WRITE: u64 = PTE_P | PTE_US | PTE_RW;

/// Bits of an entry that `need` may name and that [`Leaf::rights`] reports
/// as granted by every level.
const ALL_LEVELS: u64 = PTE_P | PTE_RW | PTE_US;

const HV_END: u64 = guest_abi::arch::HYPERVISOR_VIRT_END;

/// Why a walk stopped without a translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkError {
    /// The address is not the guest's: in the canonical hole or in hv's
    /// slots. Nothing was read.
    NotGuestAddress,
    /// The reader could not read the entry of this level.
    Unreadable { level: u8 },
    /// The entry of this level does not grant the rights asked for
    /// (including a non-present entry).
    Denied { level: u8, entry: u64 },
}

/// The entry that maps an address, and what it maps it to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf {
    /// 1 for a 4 KiB page, 2 for a 2 MiB page, 3 for a 1 GiB page.
    pub level: u8,
    /// The entry as read.
    pub entry: u64,
    /// The physical address the walked address translates to.
    pub paddr: u64,
    /// The rights of the whole path: present, writable and user where
    /// every level grants them, NX where any level sets it.
    pub rights: u64,
}

/// Where a walk of the upper levels (L4 to L2) ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upper {
    /// The L1 table that maps the address, and the address's entry in it.
    L1 {
        /// Physical address of the L1 table.
        table: u64,
        /// Index of the entry that maps the address.
        index: usize,
        /// Rights of L4 to L2, as in [`Leaf::rights`].
        rights: u64,
    },
    /// A 1 GiB or 2 MiB page maps the address.
    Large(Leaf),
}

/// Whether `va` is guest address space (Xen's `__addr_ok`): the lower
/// canonical half, or the upper half above hv's slots.
#[inline]
pub fn guest_va_ok(va: u64) -> bool {
    !((1 << 47)..HV_END).contains(&va)
}

/// Index of `va`'s entry in a table of `level` (1 to 4).
#[inline]
fn index(level: u8, va: u64) -> u64 {
    (va >> (12 + 9 * u32::from(level - 1))) & 511
}

/// Bytes of address space one entry of `level` maps.
#[inline]
fn span(level: u8) -> u64 {
    1 << (12 + 9 * u32::from(level - 1))
}

/// Rights of a path extended by one entry.
#[inline]
fn combine(rights: u64, entry: u64) -> u64 {
    (rights & entry & ALL_LEVELS) | ((rights | entry) & PTE_NX)
}

/// Reads `va`'s entry in the table of `level` at physical `table`, and
/// checks that it grants `need`.
#[inline]
fn step(
    read: &mut impl FnMut(u64) -> Option<u64>,
    table: u64,
    level: u8,
    va: u64,
    need: u64,
) -> Result<u64, WalkError> {
    let entry = read(table + index(level, va) * 8).ok_or(WalkError::Unreadable { level })?;
    if entry & need != need {
        return Err(WalkError::Denied { level, entry });
    }
    Ok(entry)
}

/// A leaf entry at `level` mapping `va`.
#[inline]
fn leaf(level: u8, entry: u64, va: u64, rights: u64) -> Leaf {
    let offset = span(level) - 1;
    Leaf {
        level,
        entry,
        paddr: (entry & PTE_ADDR & !offset) | (va & offset),
        rights: combine(rights, entry),
    }
}

/// Walks the L4, L3 and L2 of the tables rooted at physical `root` (a CR3
/// value: its low flag bits are ignored) towards `va`, with every level
/// granting `need` (a mask of [`PRESENT`], [`GUEST_READ`], [`GUEST_WRITE`]).
///
/// Ends at the L1 table that maps `va` or at a large page.
#[inline]
pub fn walk_upper(
    root: u64,
    va: u64,
    need: u64,
    mut read: impl FnMut(u64) -> Option<u64>,
) -> Result<Upper, WalkError> {
    if !guest_va_ok(va) {
        return Err(WalkError::NotGuestAddress);
    }
    let mut table = root & PTE_ADDR;
    let mut rights = ALL_LEVELS;
    for level in [4u8, 3, 2] {
        let entry = step(&mut read, table, level, va, need)?;
        if level != 4 && entry & PTE_PSE != 0 {
            return Ok(Upper::Large(leaf(level, entry, va, rights)));
        }
        rights = combine(rights, entry);
        table = entry & PTE_ADDR;
    }
    Ok(Upper::L1 {
        table,
        index: usize::try_from(index(1, va)).unwrap_or(0),
        rights,
    })
}

/// Translates `va` through the tables rooted at `root`, every level
/// granting `need` (see [`walk_upper`]), to the entry that maps it: an L1
/// entry, or a large page's L3 or L2 entry.
#[inline]
pub fn translate(
    root: u64,
    va: u64,
    need: u64,
    mut read: impl FnMut(u64) -> Option<u64>,
) -> Result<Leaf, WalkError> {
    match walk_upper(root, va, need, &mut read)? {
        Upper::Large(large) => Ok(large),
        Upper::L1 { table, rights, .. } => {
            let entry = step(&mut read, table, 1, va, need)?;
            Ok(leaf(1, entry, va, rights))
        }
    }
}

#[cfg(test)]
mod tests;
