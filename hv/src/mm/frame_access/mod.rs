//! Raw access to machine memory through hv's direct map: the only place in
//! hv outside `arch` that dereferences raw pointers, and the only one that
//! writes machine frames.
//!
//! Every physical address is checked against the direct map's extent before
//! use, and data is moved by copying (volatile for single words), never by
//! handing out references: a frame may belong to a guest that writes it at
//! any moment, so hv takes a copy and validates the copy. (The one
//! exception is an extent fresh from the allocator, which no guest has: see
//! [`OwnedFrames::bytes_mut`].)
//!
//! Reads are safe functions of any physical address: reading RAM or a hole
//! cannot break hv's memory safety (what is read is validated as a copy).
//! Writes are private `unsafe fn`s here, reached from safe code only
//! through something that proves the frame may be written:
//!
//! - [`OwnedFrame`] / [`OwnedFrames`]: frames fresh from the allocator (which
//!   lives here, so nothing else can mint one), hv's until given to a
//!   domain or back to the allocator on drop; an extent's bytes can also be
//!   borrowed as a slice from its handle ([`OwnedFrames::bytes_mut`]): no
//!   guest has them, so a reference is safe there, and a decompressor can
//!   unpack a boot kernel straight into them;
//! - [`WritableRef`] / [`SegDescRef`]: a domain's frame hv holds a writable
//!   (or descriptor) type reference on — never a page table; the domain's
//!   `shared_info` is one, held for the domain's life;
//! - [`VcpuInfoRef`] / [`EventWords`] (`guest_words`): the words hv shares
//!   with a guest in its own frames (a `vcpu_info`; the event bitmaps,
//!   selectors, FIFO control blocks and event arrays), each behind writable
//!   references it holds, reached as volatile bytes or as atomics;
//! - [`HvTable`]: a table of hv's own page tables (the idle L4 and tables
//!   below it, or a fresh frame made one), for building hv's mappings;
//! - [`HvSlots`]: the hypervisor slots (256–271) of a frame the frame table
//!   says is an L4 in use;
//! - [`DirectMapTables`]: the page-table rules engine's memory, made only
//!   by [`with_page_tables`], which writes only tables it holds locked
//!   (`FrameTable::lock_table`) or is validating;
//! - [`write_guest_writable`]: a software-walk copy to guest memory, which
//!   holds a writable type reference on the frame while it writes, taken
//!   only if the frame is mapped writable by its owner already (so the
//!   guest could write it itself);
//! - [`write_mmio_u32`]: device registers, an `unsafe fn` for `arch`.
//!
//! A [`Frames`] is the global frame table: its storage can only be made
//! here, so no other table can stand in as proof.

/// Virtual address where all of machine memory is mapped (L4 slot 262, as in
/// Xen 4.17).
pub const DIRECT_MAP_BASE: u64 = 0xffff_8300_0000_0000;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::sync::{Level, Ordered};

mod guest_words;
pub use guest_words::{EventWords, GrantWords, VcpuInfoRef};
use hv::frames::FrameBitmap;
use hv::page_info::{self, FrameHome, FrameSlot, FrameTable, Hooks, PageError, PageType, TypedRef};

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

/// Reads one aligned 64-bit word (a page-table entry, say) exactly once.
pub fn read_u64(paddr: u64) -> Result<u64, OutOfRange> {
    if !paddr.is_multiple_of(8) {
        return Err(OutOfRange);
    }
    let va = checked_va(paddr, 8)?;
    // SAFETY: aligned, inside the direct map (checked above).
    Ok(unsafe { core::ptr::read_volatile(va as *const u64) })
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

// ---------------------------------------------------------------------------
// Raw writes: private, each caller states why the frame may be written.

/// Copies `data` to physical `paddr`.
///
/// # Safety
/// `[paddr, paddr + data.len())` is memory hv may write: a frame one of
/// the handles of this module proves writable (never hv's image, its heap
/// or a page table outside the rules engine), or device registers.
unsafe fn raw_write(paddr: u64, data: &[u8]) -> Result<(), OutOfRange> {
    let va = checked_va(paddr, data.len() as u64)?;
    // SAFETY: inside the direct map (checked above); the caller vouches
    // that the range may be written. No reference to it is formed.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), va as *mut u8, data.len()) };
    Ok(())
}

/// Fills `len` bytes at physical `paddr` with `byte`.
///
/// # Safety
/// As for [`raw_write`].
unsafe fn raw_fill(paddr: u64, len: u64, byte: u8) -> Result<(), OutOfRange> {
    let va = checked_va(paddr, len)?;
    let len = usize::try_from(len).map_err(|_| OutOfRange)?;
    // SAFETY: inside the direct map; the caller vouches for the range.
    unsafe { core::ptr::write_bytes(va as *mut u8, byte, len) };
    Ok(())
}

/// Writes one aligned 64-bit word exactly once.
///
/// # Safety
/// As for [`raw_write`].
#[inline]
unsafe fn raw_write_u64(paddr: u64, value: u64) -> Result<(), OutOfRange> {
    if !paddr.is_multiple_of(8) {
        return Err(OutOfRange);
    }
    let va = checked_va(paddr, 8)?;
    // SAFETY: aligned, inside the direct map; the caller vouches for it.
    unsafe { core::ptr::write_volatile(va as *mut u64, value) };
    Ok(())
}

/// Writes one aligned 32-bit word exactly once.
///
/// # Safety
/// As for [`raw_write`].
unsafe fn raw_write_u32(paddr: u64, value: u32) -> Result<(), OutOfRange> {
    if !paddr.is_multiple_of(4) {
        return Err(OutOfRange);
    }
    let va = checked_va(paddr, 4)?;
    // SAFETY: aligned, inside the direct map; the caller vouches for it.
    unsafe { core::ptr::write_volatile(va as *mut u32, value) };
    Ok(())
}

/// Writes a 32-bit device register (the local APIC's, say) exactly once.
///
/// # Safety
/// `paddr` is an aligned register of a device's MMIO range, not RAM, and
/// writing `value` there cannot make the device write hv's memory.
pub unsafe fn write_mmio_u32(paddr: u64, value: u32) -> Result<(), OutOfRange> {
    // SAFETY: the caller vouches that `paddr` is a device register.
    unsafe { raw_write_u32(paddr, value) }
}

/// The boot modules' physical ranges: withheld from the frame allocator
/// for good (`mm::init` marks them used and nothing frees them), so nobody
/// writes them.
static BOOT_MODULES: Ordered<heapless::Vec<(u64, u64), 8>> =
    Ordered::new(Level::BootModules, heapless::Vec::new());

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
struct HvHeap(Ordered<linked_list_allocator::Heap>);

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
static HEAP: HvHeap = HvHeap(Ordered::new(
    Level::Heap,
    linked_list_allocator::Heap::empty(),
));

/// Hands `frames` to the heap for good. Only once.
pub fn init_heap(frames: OwnedFrames) -> Result<(), OutOfRange> {
    let (paddr, len) = (frames.first * PAGE_SIZE, frames.count * PAGE_SIZE);
    let va = checked_va(paddr, len)?;
    let len = usize::try_from(len).map_err(|_| OutOfRange)?;
    let mut heap = HEAP.0.lock();
    if heap.size() != 0 {
        return Err(OutOfRange);
    }
    let _ = frames.leak();
    // SAFETY: the range is inside the direct map, owned by the heap from now
    // on (fresh from the allocator, never freed: leaked above), and the
    // heap was empty (checked above), so it is initialised once.
    unsafe { heap.init(va as *mut u8, len) };
    Ok(())
}

// ---------------------------------------------------------------------------
// The frame allocator, and frames hv owns.

/// Frames the bitmap can describe: all the direct map covers.
const BITMAP_WORDS: usize = 64 * (1 << 30) / 4096 / 64;
const _: () = assert!(BITMAP_WORDS as u64 * 64 * PAGE_SIZE == DIRECT_MAP_SIZE);

static FRAMES: Ordered<FrameBitmap<BITMAP_WORDS>> =
    Ordered::new(Level::FrameAllocator, FrameBitmap::new());

/// Sets the allocator up from the firmware's memory map (trusted: the
/// boot loader's word is all hv has): RAM in `ram` below `limit` is free,
/// each range of `used` is not.
pub(super) fn init_allocator(ram: &[(u64, u64)], limit: u64, used: &[(u64, u64)]) -> u64 {
    let mut f = FRAMES.lock();
    if f.nframes() != 0 {
        // Once only: frames handed out already must stay handed out.
        return f.free_frames();
    }
    f.reset(limit / PAGE_SIZE);
    for &(start, end) in ram {
        f.mark_free(start.div_ceil(PAGE_SIZE), end.min(limit) / PAGE_SIZE);
    }
    for &(start, end) in used {
        f.mark_used(start / PAGE_SIZE, end.div_ceil(PAGE_SIZE));
    }
    f.free_frames()
}

/// Machine frames the allocator covers (Xen's `max_page`).
pub fn nr_frames() -> u64 {
    FRAMES.lock().nframes()
}

pub fn free_frames() -> u64 {
    FRAMES.lock().free_frames()
}

fn free_to_allocator(mfn: u64) {
    if let Err(e) = FRAMES.lock().free(mfn) {
        crate::hvlog!(error, "freeing frame {mfn:#x}: {e:?}");
    }
}

/// A frame fresh from the allocator: hv's alone until it is given to a
/// domain ([`assign`](Self::assign)), kept for good ([`leak`](Self::leak))
/// or dropped (back to the allocator).
#[derive(Debug)]
#[must_use = "dropping it frees the frame"]
pub struct OwnedFrame {
    mfn: u64,
}

/// Takes one free frame (contents undefined).
pub fn alloc_frame() -> Option<OwnedFrame> {
    FRAMES.lock().alloc().map(|mfn| OwnedFrame { mfn })
}

/// Takes one free frame and zeroes it.
pub fn alloc_zeroed_frame() -> Option<OwnedFrame> {
    let f = alloc_frame()?;
    f.zero().ok()?;
    Some(f)
}

impl OwnedFrame {
    pub fn mfn(&self) -> u64 {
        self.mfn
    }

    /// Keeps the frame for hv for good; returns its number.
    pub fn leak(self) -> u64 {
        let mfn = self.mfn;
        core::mem::forget(self);
        mfn
    }

    /// Gives the frame to `owner` as its frame `pfn` (hv can no longer
    /// write it without a reference); on refusal the frame stays hv's.
    pub fn assign(self, ft: &Frames, owner: u16, pfn: u64) -> Result<u64, PageError> {
        // SAFETY: the allocator handed this frame out to this handle alone,
        // and the handle is consumed here.
        unsafe { ft.assign(self.mfn, owner, pfn) }?;
        Ok(self.leak())
    }
}

impl Drop for OwnedFrame {
    fn drop(&mut self) {
        free_to_allocator(self.mfn);
    }
}

/// Contiguous frames fresh from the allocator, as [`OwnedFrame`].
#[derive(Debug)]
#[must_use = "dropping them frees the frames"]
pub struct OwnedFrames {
    first: u64,
    count: u64,
}

/// Takes `count` contiguous frames aligned to `align` frames (contents
/// undefined).
pub fn alloc_contiguous(count: u64, align: u64) -> Option<OwnedFrames> {
    FRAMES
        .lock()
        .alloc_contiguous(count, align)
        .map(|first| OwnedFrames { first, count })
}

impl OwnedFrames {
    pub fn first(&self) -> u64 {
        self.first
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Fills every frame with `byte`.
    pub fn fill(&self, byte: u8) -> Result<(), OutOfRange> {
        let len = self.count.checked_mul(PAGE_SIZE).ok_or(OutOfRange)?;
        // SAFETY: the frames are hv's own, fresh from the allocator.
        unsafe { raw_fill(self.first * PAGE_SIZE, len, byte) }
    }

    /// The extent's bytes, borrowed from the handle: for code that works on
    /// a large buffer of hv's own in place (a boot kernel unpacked into
    /// frames, then read by the ELF loader). Contents as the frames were.
    pub fn bytes_mut(&mut self) -> Result<&mut [u8], OutOfRange> {
        let (va, len) = self.extent()?;
        // SAFETY: (1) the range lies inside the direct map (checked by
        // `extent`), which stays mapped for hv's life; (2) the frames are
        // this handle's alone: the allocator handed them out to it, no
        // domain owns or maps them, and nothing else in hv reaches them;
        // (3) the slice borrows the handle mutably, so nothing else reaches
        // them through it, and they cannot be freed (drop) or given away
        // (`assign`, `into_frames`, `leak` take the handle) while it lives;
        // (4) every byte of RAM is a valid `u8`.
        Ok(unsafe { core::slice::from_raw_parts_mut(va as *mut u8, len) })
    }

    /// The extent's bytes, read-only (see [`Self::bytes_mut`]).
    pub fn bytes(&self) -> Result<&[u8], OutOfRange> {
        let (va, len) = self.extent()?;
        // SAFETY: as in `bytes_mut`, with a shared borrow of the handle: no
        // writer can exist while the slice lives.
        Ok(unsafe { core::slice::from_raw_parts(va as *const u8, len) })
    }

    /// Direct-map address and length of the extent.
    fn extent(&self) -> Result<(u64, usize), OutOfRange> {
        let len = self.count.checked_mul(PAGE_SIZE).ok_or(OutOfRange)?;
        let va = checked_va(self.first.checked_mul(PAGE_SIZE).ok_or(OutOfRange)?, len)?;
        Ok((va, usize::try_from(len).map_err(|_| OutOfRange)?))
    }

    /// Writes the word at byte `offset` of the extent.
    pub fn write_u64(&self, offset: u64, value: u64) -> Result<(), OutOfRange> {
        if offset >= self.count * PAGE_SIZE {
            return Err(OutOfRange);
        }
        // SAFETY: inside the extent (checked above), hv's own frames.
        unsafe { raw_write_u64(self.first * PAGE_SIZE + offset, value) }
    }

    /// One handle per frame.
    pub fn into_frames(self) -> impl Iterator<Item = OwnedFrame> {
        let (first, count) = (self.first, self.count);
        core::mem::forget(self);
        (first..first + count).map(|mfn| OwnedFrame { mfn })
    }

    /// Keeps the frames for hv for good; returns the first.
    pub fn leak(self) -> u64 {
        let first = self.first;
        core::mem::forget(self);
        first
    }

    /// Gives every frame to `owner`, frame `first + j` as its frame
    /// `pfn(j)`, all or nothing; on refusal the frames stay hv's.
    pub fn assign(
        self,
        ft: &Frames,
        owner: u16,
        pfn: impl Fn(u64) -> u64,
    ) -> Result<u64, (Self, PageError)> {
        // SAFETY: the allocator handed these frames out to this handle
        // alone, and the handle is consumed on success.
        match unsafe { ft.assign_extent(self.first, self.count, owner, pfn) } {
            Ok(()) => Ok(self.leak()),
            Err(e) => Err((self, e)),
        }
    }
}

impl Drop for OwnedFrames {
    fn drop(&mut self) {
        for mfn in self.first..self.first + self.count {
            free_to_allocator(mfn);
        }
    }
}

/// Takes back from `owner` the extents of `pages` frames at `firsts` if
/// it owns them all and none is referenced, given back or shared (all or
/// nothing, see `FrameTable::release_unused`), marks them invalid in the
/// M2P and returns them to the allocator, once no CPU may cache a
/// translation of them (their stamps, see [`collect_freed`]).
pub fn release_to_allocator(
    ft: &Frames,
    firsts: &[u64],
    pages: u64,
    owner: u16,
) -> Result<(), PageError> {
    ft.release_unused(firsts, pages, owner)?;
    let frames = || firsts.iter().flat_map(|&f| f..f + pages);
    // Read-only mappings leave no stamp: every CPU that has not flushed
    // since now may cache one.
    crate::arch::x86_64::mm::flush_stale(ft.now());
    // No translation this CPU may still cache reaches a frame that
    // leaves the domain.
    crate::arch::x86_64::mm::settle();
    for mfn in frames() {
        // Invalid in the M2P before anyone can be given the frame anew.
        super::m2p::set(mfn, u64::MAX);
        free_to_allocator(mfn);
    }
    Ok(())
}

/// Takes frame `mfn` from `owner` for hv (Xen's `steal_page`, for
/// `GNTTABOP_transfer`): only a frame `owner` owns with nothing but its
/// allocation reference on it (see `FrameTable::release_unused`). It comes
/// back invalid in the M2P and cached by no CPU's TLB, as a frame
/// [`release_to_allocator`] frees; the caller gives it to another domain
/// ([`OwnedFrame::assign`]) or drops it (to the allocator). The owner's
/// reservation is the caller's to adjust.
pub fn steal(ft: &Frames, mfn: u64, owner: u16) -> Result<OwnedFrame, PageError> {
    ft.release_unused(&[mfn], 1, owner)?;
    crate::arch::x86_64::mm::flush_stale(ft.now());
    crate::arch::x86_64::mm::settle();
    super::m2p::set(mfn, u64::MAX);
    Ok(OwnedFrame { mfn })
}

/// Returns the frames domains freed (their last reference gone after they
/// gave them back, see `hv::page_info`) to the allocator, and tells
/// `account` each frame's former owner, whose reservation still counts it.
///
/// TLB: a freed frame is in no page table, but a translation cached from
/// a mapping that is gone could survive in a TLB: no collected frame
/// reaches the allocator, where it could become hv's or another domain's,
/// before every CPU that has not flushed since the frame was freed has
/// (`arch::x86_64::mm::flush_stale`). The caller holds
/// no lock: the flush may wait for other CPUs.
pub fn collect_freed(mut account: impl FnMut(u16)) {
    let Some(ft) = frame_table() else {
        return;
    };
    if !ft.has_freed() {
        return;
    }
    let mut list = ft.take_all_freed();
    let mut taken: Vec<(u64, u16)> = Vec::new();
    while let Some((mfn, owner)) = ft.take_freed_frame(&mut list) {
        if taken.try_reserve(1).is_err() {
            // No heap for the list: this frame stays unowned and out of
            // the allocator (leaked, reported).
            crate::hvlog!(error, "collecting freed frame {mfn:#x}: no heap");
            continue;
        }
        taken.push((mfn, owner));
    }
    // Read-only mappings leave no stamp: every CPU that has not flushed
    // since now may cache one.
    crate::arch::x86_64::mm::flush_stale(ft.now());
    crate::arch::x86_64::mm::settle();
    for (mfn, owner) in taken {
        // Invalid in the M2P before anyone can be given the frame anew.
        super::m2p::set(mfn, u64::MAX);
        free_to_allocator(mfn);
        account(owner);
    }
}

// ---------------------------------------------------------------------------
// The frame table and references to domains' frames.

/// The frame table's storage: only this module makes one, so a
/// `&Frames` is always the global table.
pub struct FrameStore(Vec<FrameSlot>);

impl AsRef<[FrameSlot]> for FrameStore {
    #[inline]
    fn as_ref(&self) -> &[FrameSlot] {
        &self.0
    }
}

/// The frame table: one `FrameSlot` per machine frame, in hv's heap, read
/// and changed by every CPU at once (per-frame atomic words, see
/// `hv::page_info`).
pub type Frames = FrameTable<FrameStore>;

static FRAME_TABLE: spin::Once<Frames> = spin::Once::new();

/// Creates the frame table, one entry per frame the allocator covers.
pub fn init_frame_table() -> Result<(), &'static str> {
    let n = usize::try_from(nr_frames()).map_err(|_| "frame count")?;
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| "no heap for the frame table")?;
    v.resize_with(n, FrameSlot::default);
    FRAME_TABLE.call_once(|| {
        let mut ft = FrameTable::new(FrameStore(v));
        ft.hooks = Hooks {
            relax: crate::arch::x86_64::ipi::relax_serving,
            clock: &crate::arch::x86_64::mm::TLB_CLOCK,
            flush_stale: crate::arch::x86_64::mm::flush_stale,
        };
        ft
    });
    Ok(())
}

/// The frame table, once made.
#[inline(always)]
fn frame_table() -> Option<&'static Frames> {
    FRAME_TABLE.get()
}

/// Runs `f` on the frame table.
#[inline(always)]
pub fn with_frame_table<R>(f: impl FnOnce(&Frames) -> R) -> Option<R> {
    frame_table().map(f)
}

/// The global frame table, as the home of reference handles.
pub struct Global;

impl FrameHome for Global {
    type Store = FrameStore;
    #[inline(always)]
    fn with<R>(f: impl FnOnce(&Frames) -> R) -> Option<R> {
        with_frame_table(f)
    }
}

/// A writable type reference to a domain's frame: hv may write it.
pub type WritableRef = TypedRef<Global, page_info::Writable>;
/// A general reference to a domain's frame: it stays the domain's (and
/// memory) while held; hv may read it.
pub type PageRef = page_info::FrameRef<Global>;

/// Copies `len` bytes from byte `src_off` of `src`'s frame to byte
/// `dst_off` of `dst`'s (the same frame too: the ranges may overlap), both
/// within their frames (`OutOfRange` otherwise, nothing copied).
pub fn copy_between(
    src: &PageRef,
    src_off: u64,
    dst: &WritableRef,
    dst_off: u64,
    len: u64,
) -> Result<(), OutOfRange> {
    // Byte-aligned (`frame_va` would want a 2-, 4- or 8-byte copy aligned).
    let from = DIRECT_MAP_BASE + frame_range(src.mfn(), src_off, len)?;
    let to = DIRECT_MAP_BASE + frame_range(dst.frame(), dst_off, len)?;
    let n = usize::try_from(len).map_err(|_| OutOfRange)?;
    // SAFETY: both ranges lie inside frames of the direct map (checked),
    // each held by a reference that keeps it memory of its domain, the
    // destination writable (no page table or descriptor table); the
    // guests may touch the same bytes, so no reference to them is formed,
    // and `copy` allows the ranges to overlap.
    unsafe { core::ptr::copy(from as *const u8, to as *mut u8, n) };
    Ok(())
}
/// A descriptor-table type reference: hv may write checked descriptors.
pub type SegDescRef = TypedRef<Global, page_info::SegDesc>;

mod sealed {
    pub trait Sealed {}
}

/// Writing a frame hv holds a handle to. Offsets are within the frame
/// (and aligned to the size written); a handle's frame is inside the direct
/// map, so with a constant offset the only check left is the frame's
/// number against a constant.
pub trait FrameWrite: sealed::Sealed {
    fn frame(&self) -> u64;

    /// Copies `data` to byte `offset` of the frame.
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), OutOfRange> {
        let va = frame_va(self.frame(), offset, data.len() as u64)?;
        // SAFETY: inside a frame the handle proves writable (see the
        // implementations of `Sealed`), inside the direct map (checked);
        // no reference to the frame is formed.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), va as *mut u8, data.len()) };
        Ok(())
    }

    /// Fills the whole frame with zeros.
    fn zero(&self) -> Result<(), OutOfRange> {
        const _: () = assert!(PAGE_SIZE == 4096);
        let va = frame_va(self.frame(), 0, PAGE_SIZE)?;
        // SAFETY: as for `write`.
        unsafe { core::ptr::write_bytes(va as *mut u8, 0, 4096) };
        Ok(())
    }

    /// Writes the aligned word at byte `offset` exactly once.
    #[inline]
    fn write_u64(&self, offset: u64, value: u64) -> Result<(), OutOfRange> {
        let va = frame_va(self.frame(), offset, 8)?;
        // SAFETY: as for `write`; aligned (`frame_va`).
        unsafe { core::ptr::write_volatile(va as *mut u64, value) };
        Ok(())
    }

    /// Writes the aligned 32-bit word at byte `offset` exactly once.
    #[inline]
    fn write_u32(&self, offset: u64, value: u32) -> Result<(), OutOfRange> {
        let va = frame_va(self.frame(), offset, 4)?;
        // SAFETY: as for `write_u64`.
        unsafe { core::ptr::write_volatile(va as *mut u32, value) };
        Ok(())
    }

    /// Writes the byte at `offset` exactly once.
    #[inline]
    fn write_u8(&self, offset: u64, value: u8) -> Result<(), OutOfRange> {
        let va = frame_va(self.frame(), offset, 1)?;
        // SAFETY: as for `write`.
        unsafe { core::ptr::write_volatile(va as *mut u8, value) };
        Ok(())
    }
}

/// Physical address of `[offset, offset + len)` of frame `mfn`, which
/// must lie within the frame.
#[inline]
fn frame_range(mfn: u64, offset: u64, len: u64) -> Result<u64, OutOfRange> {
    match offset.checked_add(len) {
        Some(end) if end <= PAGE_SIZE && mfn < DIRECT_MAP_SIZE / PAGE_SIZE => {
            Ok(mfn * PAGE_SIZE + offset)
        }
        _ => Err(OutOfRange),
    }
}

/// Direct-map address of `[offset, offset + len)` of frame `mfn`: within
/// the frame, inside the direct map, and aligned to `len` when `len` is a
/// word's size (1, 2, 4 or 8), else byte-aligned.
#[inline]
fn frame_va(mfn: u64, offset: u64, len: u64) -> Result<u64, OutOfRange> {
    let align = if matches!(len, 1 | 2 | 4 | 8) { len } else { 1 };
    if !offset.is_multiple_of(align) {
        return Err(OutOfRange);
    }
    Ok(DIRECT_MAP_BASE + frame_range(mfn, offset, len)?)
}

// Fresh frames are hv's alone.
impl sealed::Sealed for OwnedFrame {}
impl FrameWrite for OwnedFrame {
    fn frame(&self) -> u64 {
        self.mfn
    }
}
// A writable type reference: the frame is ordinary memory of a domain,
// which the domain may write too; never a page table or descriptor table.
impl sealed::Sealed for WritableRef {}
impl FrameWrite for WritableRef {
    fn frame(&self) -> u64 {
        self.mfn()
    }
}
// A descriptor frame: hv writes only descriptors it checked
// (`hv::segdesc`), which is what the type promises.
impl sealed::Sealed for SegDescRef {}
impl FrameWrite for SegDescRef {
    fn frame(&self) -> u64 {
        self.mfn()
    }
}

/// Copies `data` to physical `paddr` (within one frame) for a
/// software walk of a guest's page tables (`guest_mem`), when the tables
/// are not the loaded ones and hv holds no reference to the frame. The
/// proof is a writable type reference held while the bytes are written,
/// taken only if the frame is a domain's and mapped writable already
/// (type `Writable`, counted), so the guest could write it itself; the
/// walk checked the RW bit at every level, and validated tables map a
/// frame RW only with such a reference.
pub fn write_guest_writable(paddr: u64, data: &[u8]) -> Result<(), OutOfRange> {
    let mfn = paddr / PAGE_SIZE;
    let pa = frame_range(mfn, paddr % PAGE_SIZE, data.len() as u64)?;
    let ft = frame_table().ok_or(OutOfRange)?;
    let owner = ft.get(mfn).and_then(|p| p.owner).ok_or(OutOfRange)?;
    ft.get_page_and_existing_type(mfn, owner, PageType::Writable)
        .map_err(|_| OutOfRange)?;
    // SAFETY: a domain's ordinary memory, mapped writable, and kept so by
    // the reference taken above until after the write.
    let written = unsafe { raw_write(pa, data) };
    let _ = ft.put_page_and_type(mfn);
    written
}

// ---------------------------------------------------------------------------
// Page tables: hv's own, the hypervisor slots of guests' L4s, and the rules
// engine's memory.

/// Physical-address bits of an entry.
const PTE_ADDR: u64 = hv::pt::PTE_ADDR;

/// A table of hv's own page tables: the idle L4 (the table loaded when hv
/// first asks, at boot), a table below it, or a fresh frame made one.
#[derive(Debug, Clone, Copy)]
pub struct HvTable {
    paddr: u64,
    level: u8,
}

static IDLE_L4: AtomicU64 = AtomicU64::new(0);

impl HvTable {
    /// hv's idle L4: the page table the boot stub built, recorded from CR3
    /// the first time (early in boot, before any guest table is loaded).
    pub(in crate::mm) fn idle() -> Self {
        let mut paddr = IDLE_L4.load(Ordering::Relaxed);
        if paddr == 0 {
            paddr = crate::arch::x86_64::cpu::read_cr3() & PTE_ADDR;
            IDLE_L4.store(paddr, Ordering::Relaxed);
        }
        Self { paddr, level: 4 }
    }

    /// Makes a fresh frame a table of `level` (1–4) of hv's, for good.
    pub(in crate::mm) fn adopt(frame: OwnedFrame, level: u8) -> Self {
        Self {
            paddr: frame.leak() * PAGE_SIZE,
            level: level.clamp(1, 4),
        }
    }

    pub(in crate::mm) fn paddr(&self) -> u64 {
        self.paddr
    }

    pub(in crate::mm) fn entry(&self, index: usize) -> Result<u64, OutOfRange> {
        if index >= 512 {
            return Err(OutOfRange);
        }
        read_u64(self.paddr + index as u64 * 8)
    }

    pub(in crate::mm) fn set_entry(&self, index: usize, value: u64) -> Result<(), OutOfRange> {
        if index >= 512 {
            return Err(OutOfRange);
        }
        // SAFETY: an entry of one of hv's own tables (see `HvTable`).
        unsafe { raw_write_u64(self.paddr + index as u64 * 8, value) }
    }

    /// The table entry `index` points at, if it is present and not a
    /// large page.
    pub(in crate::mm) fn child(&self, index: usize) -> Option<Self> {
        let e = self.entry(index).ok()?;
        (self.level > 1 && e & hv::pt::PTE_P != 0 && e & hv::pt::PTE_PSE == 0).then_some(Self {
            paddr: e & PTE_ADDR,
            level: self.level - 1,
        })
    }
}

/// The hypervisor slots (256–271) of an L4 in use: hv's part of a guest's
/// table, which the rules engine neither validates nor lets the guest
/// change. Holds the table locked (`FrameTable::lock_table`: it stays an
/// L4 in use) while it lives.
pub struct HvSlots {
    mfn: u64,
}

impl HvSlots {
    /// The slots of `mfn`, if it is a validated L4 of its owner.
    pub(in crate::mm) fn of(ft: &Frames, mfn: u64) -> Option<Self> {
        let owner = ft.get(mfn)?.owner?;
        match ft.lock_table(mfn, owner) {
            Ok(PageType::L4) => Some(Self { mfn }),
            Ok(_) => {
                drop(Self { mfn });
                None
            }
            Err(_) => None,
        }
    }

    pub(in crate::mm) fn set(&self, slot: usize, value: u64) -> Result<(), OutOfRange> {
        if !(hv::pt::HV_L4_FIRST..hv::pt::HV_L4_END).contains(&slot) {
            return Err(OutOfRange);
        }
        // SAFETY: a hypervisor slot of an L4 in use, locked (see `of`):
        // hv's own entry, which no guest-visible rule covers.
        unsafe { raw_write_u64(self.mfn * PAGE_SIZE + slot as u64 * 8, value) }
    }
}

impl Drop for HvSlots {
    fn drop(&mut self) {
        with_frame_table(|ft| ft.unlock_table(self.mfn));
    }
}

/// Guest page-table frames read and written through the direct map, for
/// the rules engine. Only [`with_page_tables`] makes one.
pub struct DirectMapTables(());

impl hv::pt::TableMemory for DirectMapTables {
    #[inline]
    fn read(&self, mfn: u64, index: usize) -> u64 {
        read_u64(mfn * PAGE_SIZE + index as u64 * 8).unwrap_or(0)
    }
    #[inline]
    fn write(&mut self, mfn: u64, index: usize, value: u64) {
        // SAFETY: the engine writes only a table it holds a page-table
        // type reference on: an update of a validated table it holds
        // locked (`lock_table`: no other CPU updates it, and it stays a
        // table), or the adjusted entries of one it is validating (a fresh
        // type, not validated yet: nobody else uses it).
        let _ = unsafe { raw_write_u64(mfn * PAGE_SIZE + index as u64 * 8, value) };
    }
}

/// The rules engine over the global frame table, as its domain sees it.
pub type Tables<'a> = hv::pt::PageTables<'a, FrameStore, DirectMapTables>;

/// Runs `f` with the page-table rules engine for `domain` (`io_caps`: the
/// domain has I/O rights, as the hardware domain does).
#[inline(always)]
pub fn with_page_tables<R>(
    domain: u16,
    io_caps: bool,
    f: impl FnOnce(&mut Tables<'_>) -> R,
) -> Option<R> {
    let frames = frame_table()?;
    let mut mem = DirectMapTables(());
    let mut pt = hv::pt::PageTables::new(frames, &mut mem, domain, io_caps);
    pt.io_memory = super::io_memory;
    pt.keep_locked = true;
    let r = f(&mut pt);
    pt.unlock();
    if pt.flush_owed {
        // The rules' report becomes this CPU's debt (issue #11). Other
        // CPUs are flushed when a frame whose translation they may cache
        // changes type or leaves its owner (the TLB clock).
        crate::arch::x86_64::mm::owe_flush();
    }
    Some(r)
}
