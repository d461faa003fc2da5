//! The machine-to-physical table (M2P): for every machine frame, the
//! pseudo-physical frame number its owner knows it by, or all ones (Xen's
//! `INVALID_M2P_ENTRY`) for frames no guest owns.
//!
//! hv writes it through the direct map; every guest reads it through a
//! read-only, user-accessible mapping at `MACH2PHYS_VIRT_START` (L4 slot 256),
//! exactly where Xen puts it, so PV kernels can translate machine frames
//! (from page-table entries, say) back to their own pfns.

use super::frame_access::{HvTable, OwnedFrames};
use super::page_table::{PTE_P, PTE_PS, PTE_US};
use super::PAGE_SIZE;
use hv::pt::PTE_NX;

/// Where guests see the table (`MACH2PHYS_VIRT_START`, L4 slot 256).
const VIRT_START: u64 = 0xffff_8000_0000_0000;
const _: () = assert!(VIRT_START >> 39 & 511 == 256);

const TWO_MIB: u64 = 2 << 20;

/// The table's frames, hv's for good.
static TABLE: spin::Once<OwnedFrames> = spin::Once::new();

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
    let frames = super::alloc_contiguous(bytes / PAGE_SIZE, TWO_MIB / PAGE_SIZE)
        .ok_or("no memory for the M2P")?;
    frames
        .fill(0xff)
        .map_err(|_| "M2P outside the direct map")?;
    let base = frames.first() * PAGE_SIZE;
    TABLE.call_once(|| frames);

    // Slot 256 → L3 (allocated by page_table::init) → one L2 of 2 MiB pages.
    let idle = HvTable::idle();
    let l3 = idle.child(256).ok_or("idle L4 has no M2P L3")?;
    let l2 = super::alloc_zeroed_frame().ok_or("no memory for the M2P L2")?;
    let l2 = HvTable::adopt(l2, 2);
    for (index, at) in (base..base + bytes).step_by(2 << 20).enumerate() {
        l2.set_entry(index, at | PTE_P | PTE_US | PTE_PS | PTE_NX)
            .map_err(|_| "M2P L2")?;
    }
    l3.set_entry(0, l2.paddr() | PTE_P | PTE_US)
        .map_err(|_| "M2P L3")?;
    // Read-only at the top: no guest (and no hv code) writes through it.
    idle.set_entry(256, l3.paddr() | PTE_P | PTE_US)
        .map_err(|_| "idle L4")?;
    Ok(())
}

/// Records that machine frame `mfn` is its owner's frame `pfn`.
pub fn set(mfn: u64, pfn: u64) {
    if let (Some(t), Some(offset)) = (TABLE.get(), mfn.checked_mul(8)) {
        let _ = t.write_u64(offset, pfn);
    }
}

/// Machine frames holding the table, one per 2 MiB chunk
/// (`XENMEM_machphys_mfn_list`): the first frame of each chunk.
pub fn chunk_mfns() -> impl Iterator<Item = u64> {
    let (base, frames) = TABLE.get().map_or((0, 0), |t| (t.first(), t.count()));
    let chunks = (frames * PAGE_SIZE).div_ceil(TWO_MIB);
    (0..chunks).map(move |i| base + i * (TWO_MIB / PAGE_SIZE))
}
