//! What dom0's services need from the machine, `unsafe` confined here: a
//! heap for the store, and pages mapped from other domains as
//! [`SharedRing`]s.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use core::sync::atomic::{fence, AtomicU32, Ordering};

use pv_drivers::ring::SharedRing;

/// Bytes of the heap (the store of a handful of domains).
const HEAP_BYTES: usize = 1 << 20;

/// The heap's memory, handed to the allocator once.
struct Arena(core::cell::UnsafeCell<[u8; HEAP_BYTES]>);

// SAFETY: only `init_heap` takes a pointer to the arena, once (guarded by
// `spin::Once`); the allocator owns the memory after that.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(core::cell::UnsafeCell::new([0; HEAP_BYTES]));
static INIT: spin::Once<()> = spin::Once::new();

struct Heap(spin::Mutex<linked_list_allocator::Heap>);

// SAFETY: the allocator hands out disjoint blocks of the arena, under its
// lock.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        init_heap();
        self.0
            .lock()
            .allocate_first_fit(layout)
            .map_or(core::ptr::null_mut(), NonNull::as_ptr)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(ptr) {
            // SAFETY: `ptr` came from `alloc` with this layout (the
            // caller's promise).
            unsafe { self.0.lock().deallocate(p, layout) };
        }
    }
}

#[global_allocator]
static HEAP: Heap = Heap(spin::Mutex::new(linked_list_allocator::Heap::empty()));

/// Gives the arena to the allocator (the first allocation does it).
fn init_heap() {
    INIT.call_once(|| {
        // SAFETY: the arena is static, unused by anything else, and handed
        // over exactly once.
        unsafe {
            HEAP.0.lock().init(ARENA.0.get().cast::<u8>(), HEAP_BYTES);
        }
    });
}

/// A page of ours (mapped at `va`, writable) that another domain shares,
/// or several in a row ([`MappedPage::pages`]: a multi-page ring): every
/// access is a volatile or atomic one, since the other side changes it at
/// any time.
#[derive(Debug, Clone, Copy)]
pub struct MappedPage {
    va: u64,
    len: usize,
}

impl MappedPage {
    /// # Safety
    /// `va` is page aligned and stays mapped writable, to a page nothing
    /// of ours holds references into, for as long as the value is used.
    pub unsafe fn new(va: u64) -> Self {
        Self { va, len: 4096 }
    }

    /// `n` pages from `va` (at least one).
    ///
    /// # Safety
    /// As [`new`](Self::new), for each of the `n` pages.
    pub unsafe fn pages(va: u64, n: usize) -> Self {
        Self {
            va,
            len: 4096 * n.max(1),
        }
    }

    fn word(&self, offset: usize) -> &AtomicU32 {
        let at = self.va + (offset.min(self.len - 4) as u64 & !3);
        // SAFETY: aligned, inside the mapped pages (`new`'s contract).
        unsafe { &*(at as *const AtomicU32) }
    }
}

impl SharedRing for MappedPage {
    fn size(&self) -> usize {
        self.len
    }
    fn load(&self, offset: usize) -> u32 {
        self.word(offset).load(Ordering::SeqCst)
    }
    fn store(&self, offset: usize, value: u32) {
        self.word(offset).store(value, Ordering::SeqCst);
    }
    fn read(&self, offset: usize, out: &mut [u8]) {
        for (i, b) in out.iter_mut().enumerate() {
            if let Some(at) = offset.checked_add(i).filter(|&a| a < self.len) {
                // SAFETY: inside the mapped pages.
                *b = unsafe { ((self.va + at as u64) as *const u8).read_volatile() };
            }
        }
    }
    fn write(&self, offset: usize, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            if let Some(at) = offset.checked_add(i).filter(|&a| a < self.len) {
                // SAFETY: inside the mapped pages, mapped writable.
                unsafe { ((self.va + at as u64) as *mut u8).write_volatile(b) };
            }
        }
    }
    fn fence(&self) {
        fence(Ordering::SeqCst);
    }
}

/// For a domU that takes no event upcall (it has no callback): maps its
/// shared-info page at a page of its initial mapping's padding (after
/// the bootstrap tables and the boot stack page, as our toolstack lays
/// it out) and sets vCPU 0's `evtchn_upcall_mask`. The mapping's result
/// (0 or an errno).
pub fn mask_upcalls(si: &guest_abi::xen::StartInfo) -> i64 {
    let padding = si.pt_base + (si.nr_pt_frames + 2) * 4096;
    // SAFETY: replaces the mapping of a padding page nothing uses with the
    // domain's own shared-info frame.
    let rc = unsafe {
        guest_abi::hypercall::hypercall3(
            guest_abi::hypercall::UPDATE_VA_MAPPING,
            padding,
            si.shared_info | 0x67,
            guest_abi::xen::UVMF_INVLPG,
        )
    };
    if rc == 0 {
        // SAFETY: vCPU 0's `evtchn_upcall_mask`, a byte of the mapped page.
        unsafe { ((padding + 1) as *mut u8).write_volatile(1) };
    }
    rc
}

/// Where a domU built by our toolstack finds its store page: in its
/// initial mapping, at the pfn the M2P names for `store_mfn`.
pub fn store_page_va(si: &guest_abi::xen::StartInfo) -> u64 {
    own_page_va(si.store_mfn)
}

/// The same for its console ring page.
pub fn console_page_va(si: &guest_abi::xen::StartInfo) -> u64 {
    own_page_va(si.console.dom_u_mfn())
}

fn own_page_va(mfn: u64) -> u64 {
    let m2p = guest_abi::arch::MACH2PHYS_VIRT_START + mfn * 8;
    // SAFETY: the M2P is mapped read-only in every PV guest.
    let pfn = unsafe { (m2p as *const u64).read_volatile() };
    guest_abi::rt::VIRT_BASE + pfn * 4096
}
