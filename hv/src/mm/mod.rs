//! Machine memory: the frame allocator, the heap, and raw frame access.
//!
//! Invariant: a frame is either free in the allocator, or owned by exactly one
//! party (hv itself, hv's heap, or a domain through the frame table), or
//! freed by its domain and waiting in the frame table to be collected
//! ([`collect_freed`]): unowned and unreferenced, not yet reusable.
//!
//! Raw frame access, the allocator, the frame table and the handles that
//! prove a frame may be written live in [`frame_access`]; see there for
//! which handle covers what.

#[expect(unsafe_code, reason = "the one raw-frame module of mm")]
pub mod frame_access;
pub mod m2p;
pub mod page_table;
pub mod segdesc;

use crate::bootinfo::BootInfo;
pub use frame_access::{
    alloc_contiguous, alloc_frame, alloc_zeroed_frame, collect_freed, free_frames,
    init_frame_table, steal, with_frame_table, with_page_tables, EventWords, FrameWrite, Frames,
    GrantWords, OwnedFrame, OwnedFrames, PageRef, SegDescRef, Tables, VcpuInfoRef, WritableRef,
    PAGE_SIZE,
};

/// A machine frame number.
pub type Mfn = u64;

/// Memory hv cannot hand out: below 1 MiB (firmware, loader data), its own
/// image, and the boot modules.
pub fn init(bi: &BootInfo, hv_phys: (u64, u64)) -> MemoryStats {
    E820.call_once(|| bi.e820.clone());
    let top = bi.ram.iter().map(|r| r.1).max().unwrap_or(0);
    // The direct map's extent bounds what hv manages (it is completed by
    // `page_table::build_direct_map` before anything above 4 GiB is handed
    // out).
    let limit = top.min(frame_access::DIRECT_MAP_SIZE);
    let mut used: heapless::Vec<(u64, u64), 10> = heapless::Vec::new();
    let _ = used.push((0, 0x10_0000));
    let _ = used.push(hv_phys);
    for m in &bi.modules {
        let end = m.paddr.saturating_add(m.len);
        // Withheld from the allocator, or not trusted as a module.
        if used.push((m.paddr, end)).is_err() {
            continue;
        }
        // Only modules wholly in RAM the allocator covers are readable.
        let inside = end <= limit && bi.ram.iter().any(|&(s, e)| s <= m.paddr && end <= e);
        if inside {
            frame_access::reserve_boot_module(m.paddr, end);
        }
    }
    let free_frames = frame_access::init_allocator(&bi.ram, limit, &used);
    let ram = bi.ram.iter().map(|&(s, e)| e.saturating_sub(s)).sum();
    let usable = bi
        .ram
        .iter()
        .map(|&(s, e)| e.min(limit).saturating_sub(s.min(limit)))
        .sum();
    MemoryStats {
        ram,
        usable,
        usable_limit: limit,
        free_frames,
    }
}

/// What `init` found, for the boot log.
pub struct MemoryStats {
    /// Bytes of RAM in the firmware's map.
    pub ram: u64,
    /// Bytes of it hv manages (below the bitmap's capacity).
    pub usable: u64,
    pub usable_limit: u64,
    pub free_frames: u64,
}

/// The firmware's memory map, kept for `XENMEM_machine_memory_map`.
static E820: spin::Once<heapless::Vec<(u64, u64, u32), 128>> = spin::Once::new();

/// The firmware's memory map: (address, size, E820 type).
pub fn e820() -> &'static [(u64, u64, u32)] {
    E820.get().map_or(&[], |v| v.as_slice())
}

/// MMIO frames hv keeps from every domain (its local APIC page): (first mfn, last mfn), inclusive. Set once at boot, before any
/// domain runs.
static IO_DENIED: spin::Once<heapless::Vec<(u64, u64), 16>> = spin::Once::new();

/// I/O APIC pages: the hardware domain maps them read-only (Xen's
/// `mmio_ro_ranges`).
static IO_READ_ONLY: spin::Once<heapless::Vec<(u64, u64), 8>> = spin::Once::new();

/// Records the local APIC page as hv's own and the I/O APICs' pages as
/// readable only (physical addresses).
pub fn set_io_denied(lapic: u64, io_apics: &[u64]) {
    IO_DENIED.call_once(|| core::iter::once((lapic >> 12, lapic >> 12)).collect());
    IO_READ_ONLY.call_once(|| {
        io_apics
            .iter()
            .map(|&a| (a >> 12, a >> 12))
            .take(8)
            .collect()
    });
    END_MFN.call_once(|| 1u64 << (paddr_bits() - 12));
    IO_MEMORY.call_once(|| hv::pt::IoMemory {
        e820: e820(),
        denied: IO_DENIED.get().map_or(&[], |v| v.as_slice()),
        read_only: IO_READ_ONLY.get().map_or(&[], |v| v.as_slice()),
        end_mfn: *END_MFN.get().unwrap_or(&0),
    });
}

/// The CPU's physical address width (CPUID 0x80000008, 36 without it),
/// between 32 and 52 (Xen's `paddr_bits`).
pub fn paddr_bits() -> u32 {
    let ext = crate::arch::x86_64::cpu::cpuid(0x8000_0000, 0)[0];
    let bits = if ext >= 0x8000_0008 {
        crate::arch::x86_64::cpu::cpuid(0x8000_0008, 0)[0] & 0xff
    } else {
        36
    };
    bits.clamp(32, 52)
}

/// What [`hv::pt`] needs to tell I/O memory from RAM, built once by
/// [`set_io_denied`] (before it, every frame counts as RAM).
static IO_MEMORY: spin::Once<hv::pt::IoMemory<'static>> = spin::Once::new();

/// The description of I/O memory, for the page-table rules (one load on
/// every page-table operation).
#[inline]
pub fn io_memory() -> Option<&'static hv::pt::IoMemory<'static>> {
    IO_MEMORY.get()
}

/// `1 << (MAXPHYADDR - 12)`, from CPUID leaf 0x80000008 (36 bits without it).
static END_MFN: spin::Once<u64> = spin::Once::new();

/// Machine frames the allocator covers: one past the highest RAM frame hv
/// uses.
pub fn nr_frames() -> u64 {
    frame_access::nr_frames()
}

/// Gives the heap `bytes` of contiguous memory.
pub fn init_heap(bytes: u64) -> Result<(), &'static str> {
    let frames = bytes / PAGE_SIZE;
    let run = alloc_contiguous(frames, 512).ok_or("no contiguous memory for the heap")?;
    frame_access::init_heap(run).map_err(|_| "heap outside the direct map")
}

/// Heap bytes the frame table needs: one entry per frame the allocator
/// covers.
pub fn frame_table_bytes() -> u64 {
    nr_frames() * core::mem::size_of::<hv::page_info::FrameSlot>() as u64
}

/// One past the highest machine frame hv manages (Xen's `max_page`).
pub fn max_page() -> u64 {
    nr_frames()
}
