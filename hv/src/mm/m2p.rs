//! The machine-to-physical table (M2P): for every machine frame, the
//! pseudo-physical frame number its owner knows it by, or all ones (Xen's
//! `INVALID_M2P_ENTRY`) for frames no guest owns.
//!
//! hv writes it through the direct map; every guest reads it through a
//! read-only, user-accessible mapping at `MACH2PHYS_VIRT_START` (L4 slot 256),
//! exactly where Xen puts it, so PV kernels can translate machine frames
//! (from page-table entries, say) back to their own pfns.

use core::sync::atomic::{AtomicU64, Ordering};

use super::frame_access as phys;
use super::page_table::{self, PTE_P, PTE_PS, PTE_US};
use super::PAGE_SIZE;
use hv::pt::PTE_NX;

/// Where guests see the table (`MACH2PHYS_VIRT_START`, L4 slot 256).
const VIRT_START: u64 = 0xffff_8000_0000_0000;
const _: () = assert!(VIRT_START >> 39 & 511 == 256);

const TWO_MIB: u64 = 2 << 20;

static BASE: AtomicU64 = AtomicU64::new(0);
static ENTRIES: AtomicU64 = AtomicU64::new(0);

/// Allocates the table for `nframes` frames, marks every entry invalid and
/// maps it read-only for guests.
pub fn init(nframes: u64) -> Result<(), &'static str> {
    let bytes = nframes
        .checked_mul(8)
        .ok_or("M2P size")?
        .next_multiple_of(TWO_MIB);
    // One L2 maps 1 GiB of table: 128 Mi frames, 512 GiB of RAM.
    if bytes > (1 << 30) {
        return Err("M2P larger than one L2 can map");
    }
    let first = super::alloc_contiguous(bytes / PAGE_SIZE, TWO_MIB / PAGE_SIZE)
        .ok_or("no memory for the M2P")?;
    let base = first * PAGE_SIZE;
    phys::fill(base, bytes, 0xff).map_err(|_| "M2P outside the direct map")?;
    BASE.store(base, Ordering::Relaxed);
    ENTRIES.store(bytes / 8, Ordering::Relaxed);

    // Slot 256 → L3 (allocated by page_table::init) → one L2 of 2 MiB pages.
    let l4e_addr = page_table::idle_l4() + 256 * 8;
    let l3 = phys::read_u64(l4e_addr).map_err(|_| "idle L4")? & page_table::PTE_ADDR_MASK;
    let l2 = super::alloc_zeroed_frame().ok_or("no memory for the M2P L2")? * PAGE_SIZE;
    for i in 0..bytes / TWO_MIB {
        phys::write_u64(
            l2 + i * 8,
            (base + i * TWO_MIB) | PTE_P | PTE_US | PTE_PS | PTE_NX,
        )
        .map_err(|_| "M2P L2")?;
    }
    phys::write_u64(l3, l2 | PTE_P | PTE_US).map_err(|_| "M2P L3")?;
    // Read-only at the top: no guest (and no hv code) writes through it.
    phys::write_u64(l4e_addr, l3 | PTE_P | PTE_US).map_err(|_| "idle L4")?;
    Ok(())
}

/// Records that machine frame `mfn` is its owner's frame `pfn`.
pub fn set(mfn: u64, pfn: u64) {
    if mfn < ENTRIES.load(Ordering::Relaxed) {
        let _ = phys::write_u64(BASE.load(Ordering::Relaxed) + mfn * 8, pfn);
    }
}

/// Machine frames holding the table, one per 2 MiB chunk
/// (`XENMEM_machphys_mfn_list`): the first frame of each chunk.
pub fn chunk_mfns() -> impl Iterator<Item = u64> {
    let base = BASE.load(Ordering::Relaxed) / PAGE_SIZE;
    let chunks = (ENTRIES.load(Ordering::Relaxed) * 8).div_ceil(TWO_MIB);
    (0..chunks).map(move |i| base + i * (TWO_MIB / PAGE_SIZE))
}
