//! Raw access to machine memory through hv's direct map: the only place in
//! `mm` that dereferences raw pointers.
//!
//! Every physical address is checked against the direct map's extent before
//! use, and data is moved by copying (volatile for single words), never by
//! handing out references: a frame may belong to a guest that writes it at
//! any moment, so hv takes a copy and validates the copy.

/// Virtual address where all of machine memory is mapped (L4 slot 262, as in
/// Xen 4.17).
pub const DIRECT_MAP_BASE: u64 = 0xffff_8300_0000_0000;

pub const PAGE_SIZE: u64 = 4096;

/// Bytes of physical address space the direct map covers: all of it up to
/// 64 GiB, RAM or not (as the boot stub's first 4 GiB), from
/// `page_table::build_direct_map` on, early in boot. A constant, so every
/// access's bounds check is a compare with an immediate that the compiler
/// can fold across the accesses of one operation (a limit kept in memory
/// cost `mmu_update` about 8 instructions per entry).
pub const DIRECT_MAP_SIZE: u64 = 64 << 30;

/// Why a physical access was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfRange;

fn checked_va(paddr: u64, len: u64) -> Result<u64, OutOfRange> {
    let end = paddr.checked_add(len).ok_or(OutOfRange)?;
    if end > DIRECT_MAP_SIZE {
        return Err(OutOfRange);
    }
    Ok(DIRECT_MAP_BASE + paddr)
}

/// Direct-map virtual address of a physical address (for loading CR3 or
/// pointing hardware at a table; never dereferenced here).
pub fn virt_of(paddr: u64) -> Result<u64, OutOfRange> {
    checked_va(paddr, 0)
}

/// Copies `out.len()` bytes starting at physical `paddr`.
pub fn read(paddr: u64, out: &mut [u8]) -> Result<(), OutOfRange> {
    let va = checked_va(paddr, out.len() as u64)?;
    // SAFETY: [va, va+len) lies inside the direct map (checked above), which
    // maps RAM and MMIO holes alike readable; copying into a fresh buffer
    // forms no reference to the source.
    unsafe { core::ptr::copy_nonoverlapping(va as *const u8, out.as_mut_ptr(), out.len()) };
    Ok(())
}

/// Copies `data` to physical `paddr`.
pub fn write(paddr: u64, data: &[u8]) -> Result<(), OutOfRange> {
    let va = checked_va(paddr, data.len() as u64)?;
    // SAFETY: the range is inside the direct map (checked above); callers
    // only write frames hv allocated (hv data or a domain's memory being
    // built or updated on its behalf), never hv's own image.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), va as *mut u8, data.len()) };
    Ok(())
}

/// Fills `len` bytes at physical `paddr` with zero.
pub fn zero(paddr: u64, len: u64) -> Result<(), OutOfRange> {
    let va = checked_va(paddr, len)?;
    let len = usize::try_from(len).map_err(|_| OutOfRange)?;
    // SAFETY: as for `write`.
    unsafe { core::ptr::write_bytes(va as *mut u8, 0, len) };
    Ok(())
}

/// Reads one aligned 64-bit word (a page-table entry, say) exactly once.
pub fn read_u64(paddr: u64) -> Result<u64, OutOfRange> {
    if !paddr.is_multiple_of(8) {
        return Err(OutOfRange);
    }
    let va = checked_va(paddr, 8)?;
    // SAFETY: aligned, inside the direct map (checked above).
    Ok(unsafe { core::ptr::read_volatile(va as *const u64) })
}

/// Writes one aligned 64-bit word exactly once.
pub fn write_u64(paddr: u64, value: u64) -> Result<(), OutOfRange> {
    if !paddr.is_multiple_of(8) {
        return Err(OutOfRange);
    }
    let va = checked_va(paddr, 8)?;
    // SAFETY: aligned, inside the direct map; see `write` for who may be
    // written.
    unsafe { core::ptr::write_volatile(va as *mut u64, value) };
    Ok(())
}

/// Reads one aligned 32-bit word exactly once (MMIO registers, say).
pub fn read_u32(paddr: u64) -> Result<u32, OutOfRange> {
    if !paddr.is_multiple_of(4) {
        return Err(OutOfRange);
    }
    let va = checked_va(paddr, 4)?;
    // SAFETY: aligned, inside the direct map (checked above).
    Ok(unsafe { core::ptr::read_volatile(va as *const u32) })
}

/// Writes one aligned 32-bit word exactly once (MMIO registers, say).
pub fn write_u32(paddr: u64, value: u32) -> Result<(), OutOfRange> {
    if !paddr.is_multiple_of(4) {
        return Err(OutOfRange);
    }
    let va = checked_va(paddr, 4)?;
    // SAFETY: aligned, inside the direct map; used for hv-owned frames and
    // device registers only.
    unsafe { core::ptr::write_volatile(va as *mut u32, value) };
    Ok(())
}

/// The boot modules' physical ranges: withheld from the frame allocator
/// for good (`mm::init` marks them used and nothing frees them), so nobody
/// writes them.
static BOOT_MODULES: spin::Mutex<heapless::Vec<(u64, u64), 8>> =
    spin::Mutex::new(heapless::Vec::new());

/// Records `[paddr, end)` as a boot module. Call only for a range the frame
/// allocator will never hand out and no domain owns.
pub(super) fn reserve_boot_module(paddr: u64, end: u64) {
    let _ = BOOT_MODULES.lock().push((paddr, end));
}

/// The bytes of a boot module at `[paddr, paddr + len)`, read in place: a
/// boot kernel can be far larger than hv's heap, so it is never copied.
pub fn boot_module(paddr: u64, len: u64) -> Option<&'static [u8]> {
    let end = paddr.checked_add(len)?;
    let reserved = BOOT_MODULES
        .lock()
        .iter()
        .any(|&(s, e)| s <= paddr && end <= e);
    if !reserved {
        return None;
    }
    let va = checked_va(paddr, len).ok()?;
    let n = usize::try_from(len).ok()?;
    // SAFETY: the range lies inside the direct map (checked above), which
    // stays mapped for hv's life, and inside a recorded boot module, which
    // the frame allocator never hands out and no domain owns: nothing
    // writes it, so a shared reference to it stays valid.
    Some(unsafe { core::slice::from_raw_parts(va as *const u8, n) })
}

/// hv's heap: a linked-list allocator over one contiguous run of frames.
struct HvHeap(spin::Mutex<linked_list_allocator::Heap>);

// SAFETY: the allocator hands out disjoint blocks of the heap region, which
// belongs to the heap alone (taken from the frame allocator once), and the
// mutex serialises every operation.
unsafe impl core::alloc::GlobalAlloc for HvHeap {
    /// # Safety
    /// The trait's: `layout` has a non-zero size.
    unsafe fn alloc(&self, layout: core::alloc::Layout) -> *mut u8 {
        self.0
            .lock()
            .allocate_first_fit(layout)
            .map_or(core::ptr::null_mut(), |p| p.as_ptr())
    }

    /// # Safety
    /// The trait's: `ptr` came from `alloc` on this allocator with `layout`.
    unsafe fn dealloc(&self, ptr: *mut u8, layout: core::alloc::Layout) {
        if let Some(p) = core::ptr::NonNull::new(ptr) {
            // SAFETY: GlobalAlloc's contract: `ptr` came from `alloc` with
            // this layout.
            unsafe { self.0.lock().deallocate(p, layout) }
        }
    }
}

#[global_allocator]
static HEAP: HvHeap = HvHeap(spin::Mutex::new(linked_list_allocator::Heap::empty()));

/// Hands `[paddr, paddr+len)` to the heap. Call once, with frames taken from
/// the frame allocator for good.
pub fn init_heap(paddr: u64, len: u64) -> Result<(), OutOfRange> {
    let va = checked_va(paddr, len)?;
    let len = usize::try_from(len).map_err(|_| OutOfRange)?;
    let mut heap = HEAP.0.lock();
    if heap.size() != 0 {
        return Err(OutOfRange);
    }
    // SAFETY: the range is inside the direct map, owned by the heap from now
    // on (the caller took it from the frame allocator), and the heap was
    // empty (checked above), so it is initialised once.
    unsafe { heap.init(va as *mut u8, len) };
    Ok(())
}

/// Fills `len` bytes at physical `paddr` with `byte`.
pub fn fill(paddr: u64, len: u64, byte: u8) -> Result<(), OutOfRange> {
    let va = checked_va(paddr, len)?;
    let len = usize::try_from(len).map_err(|_| OutOfRange)?;
    // SAFETY: as for `write`.
    unsafe { core::ptr::write_bytes(va as *mut u8, byte, len) };
    Ok(())
}

/// Reads one byte exactly once.
pub fn read_u8(paddr: u64) -> Result<u8, OutOfRange> {
    let va = checked_va(paddr, 1)?;
    // SAFETY: inside the direct map (checked above).
    Ok(unsafe { core::ptr::read_volatile(va as *const u8) })
}

/// Writes one byte exactly once.
pub fn write_u8(paddr: u64, value: u8) -> Result<(), OutOfRange> {
    let va = checked_va(paddr, 1)?;
    // SAFETY: inside the direct map; see `write` for who may be written.
    unsafe { core::ptr::write_volatile(va as *mut u8, value) };
    Ok(())
}
