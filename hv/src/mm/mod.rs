//! Machine memory: the frame allocator, the heap, and raw frame access.
//!
//! Invariant: a frame is either free in the allocator, or owned by exactly one
//! party (hv itself, hv's heap, or a domain through the frame table).

#[expect(unsafe_code, reason = "the one raw-frame module of mm")]
pub mod frame_access;
pub mod ldt;
pub mod m2p;
pub mod page_table;

use crate::sync::{Level, Ordered};
use hv::frames::FrameBitmap;

use crate::bootinfo::BootInfo;
pub use frame_access::PAGE_SIZE;

/// Frames the bitmap can describe: all the direct map covers.
const BITMAP_WORDS: usize = 64 * (1 << 30) / 4096 / 64;
const _: () = assert!(BITMAP_WORDS as u64 * 64 * PAGE_SIZE == frame_access::DIRECT_MAP_SIZE);

static FRAMES: Ordered<FrameBitmap<BITMAP_WORDS>> =
    Ordered::new(Level::FrameAllocator, FrameBitmap::new());

/// A machine frame number.
pub type Mfn = u64;

/// Memory hv cannot hand out: below 1 MiB (firmware, loader data), its own
/// image, and the boot modules.
pub fn init(bi: &BootInfo, hv_phys: (u64, u64)) -> MemoryStats {
    E820.call_once(|| bi.e820.clone());
    let mut f = FRAMES.lock();
    let top = bi.ram.iter().map(|r| r.1).max().unwrap_or(0);
    // The direct map's extent bounds what hv manages (it is completed by
    // `page_table::build_direct_map` before anything above 4 GiB is handed
    // out).
    let limit = top.min(frame_access::DIRECT_MAP_SIZE);
    f.reset(limit / PAGE_SIZE);
    for &(start, end) in &bi.ram {
        f.mark_free(start.div_ceil(PAGE_SIZE), end.min(limit) / PAGE_SIZE);
    }
    f.mark_used(0, 0x10_0000 / PAGE_SIZE);
    f.mark_used(hv_phys.0 / PAGE_SIZE, hv_phys.1.div_ceil(PAGE_SIZE));
    for m in &bi.modules {
        let end = m.paddr.saturating_add(m.len);
        f.mark_used(m.paddr / PAGE_SIZE, end.div_ceil(PAGE_SIZE));
        // Only modules wholly in RAM the allocator covers are readable.
        let inside = end <= limit && bi.ram.iter().any(|&(s, e)| s <= m.paddr && end <= e);
        if inside {
            frame_access::reserve_boot_module(m.paddr, end);
        }
    }
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
        free_frames: f.free_frames(),
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

/// Takes one free frame (contents undefined).
pub fn alloc_frame() -> Option<Mfn> {
    FRAMES.lock().alloc()
}

/// Takes one free frame and zeroes it.
pub fn alloc_zeroed_frame() -> Option<Mfn> {
    let mfn = alloc_frame()?;
    frame_access::zero(mfn * PAGE_SIZE, PAGE_SIZE).ok()?;
    Some(mfn)
}

/// Takes `count` contiguous frames aligned to `align` frames.
pub fn alloc_contiguous(count: u64, align: u64) -> Option<Mfn> {
    FRAMES.lock().alloc_contiguous(count, align)
}

/// Returns a frame to the allocator.
pub fn free_frame(mfn: Mfn) {
    if let Err(e) = FRAMES.lock().free(mfn) {
        crate::hvlog!(error, "freeing frame {mfn:#x}: {e:?}");
    }
}

/// Machine frames the allocator covers: one past the highest RAM frame hv
/// uses.
pub fn nr_frames() -> u64 {
    FRAMES.lock().nframes()
}

pub fn free_frames() -> u64 {
    FRAMES.lock().free_frames()
}

/// Gives the heap `bytes` of contiguous memory.
pub fn init_heap(bytes: u64) -> Result<(), &'static str> {
    let frames = bytes / PAGE_SIZE;
    let mfn = alloc_contiguous(frames, 512).ok_or("no contiguous memory for the heap")?;
    frame_access::init_heap(mfn * PAGE_SIZE, frames * PAGE_SIZE)
        .map_err(|_| "heap outside the direct map")
}

use alloc::vec::Vec;
use hv::page_info::{FrameTable, PageInfo};

/// The frame table: one `PageInfo` per machine frame, in hv's heap (which
/// `main` sizes to hold it, see [`frame_table_bytes`]).
pub type Frames = FrameTable<Vec<PageInfo>>;

static FRAME_TABLE: Ordered<Option<Frames>> = Ordered::new(Level::FrameTable, None);

/// Heap bytes the frame table needs: one entry per frame the allocator
/// covers.
pub fn frame_table_bytes() -> u64 {
    FRAMES.lock().nframes() * core::mem::size_of::<PageInfo>() as u64
}

/// Creates the frame table, one entry per frame the allocator covers.
pub fn init_frame_table() -> Result<(), &'static str> {
    let n = usize::try_from(FRAMES.lock().nframes()).map_err(|_| "frame count")?;
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| "no heap for the frame table")?;
    v.resize(n, PageInfo::default());
    *FRAME_TABLE.lock() = Some(FrameTable::new(v));
    Ok(())
}

/// Runs `f` on the frame table.
pub fn with_frame_table<R>(f: impl FnOnce(&mut Frames) -> R) -> Option<R> {
    FRAME_TABLE.lock().as_mut().map(f)
}

/// Guest page-table frames read and written through the direct map.
pub struct DirectMapTables;

impl hv::pt::TableMemory for DirectMapTables {
    fn read(&self, mfn: u64, index: usize) -> u64 {
        frame_access::read_u64(mfn * PAGE_SIZE + index as u64 * 8).unwrap_or(0)
    }
    fn write(&mut self, mfn: u64, index: usize, value: u64) {
        let _ = frame_access::write_u64(mfn * PAGE_SIZE + index as u64 * 8, value);
    }
}

/// Runs `f` with the page-table rules engine for `domain` (`io_caps`: the
/// domain has I/O rights, as the hardware domain does).
pub fn with_page_tables<R>(
    domain: u16,
    io_caps: bool,
    f: impl FnOnce(&mut hv::pt::PageTables<'_, Vec<PageInfo>, DirectMapTables>) -> R,
) -> Option<R> {
    let mut guard = FRAME_TABLE.lock();
    let frames = guard.as_mut()?;
    let mut mem = DirectMapTables;
    let mut pt = hv::pt::PageTables {
        frames,
        mem: &mut mem,
        domain,
        io_caps,
    };
    Some(f(&mut pt))
}

/// One past the highest machine frame hv manages (Xen's `max_page`).
pub fn max_page() -> u64 {
    FRAMES.lock().nframes()
}
