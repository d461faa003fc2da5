//! hv's own page tables: the idle L4 the boot stub built, the hypervisor slots
//! every guest L4 shares, and cache attributes for device memory.
//!
//! Invariant: each of L4 slots 256–271 in the idle table points at an L3 that
//! never changes for the life of hv, so copying those 16 entries into a guest
//! L4 once gives the guest every later hv mapping too. For the same reason
//! the tables under slot 260 (Xen's per-domain slot) are allocated at boot
//! down to L2; there each vCPU gets an area of its own ([`VcpuArea`]): 16
//! pages for its GDT (the guest's frames from `set_gdt`, the zero frame
//! read-only elsewhere, and the running CPU's two reserved GDT pages with
//! hv's selectors and TSS at the end) and 16 for its LDT (guest pages
//! mapped on demand). Only L2 entries (a new L1 for 16 more areas) and L1
//! entries change later, so every address space sees every area.

use core::sync::atomic::{AtomicU64, Ordering};

use super::frame_access::{self as phys, HvTable};
use super::PAGE_SIZE;

// The entry bits are the page-table rules engine's (`hv::pt`).
pub use hv::pt::{
    PTE_ADDR as PTE_ADDR_MASK, PTE_G, PTE_P, PTE_PCD, PTE_PSE as PTE_PS, PTE_PWT, PTE_RW, PTE_US,
};

/// First and one-past-last L4 slot reserved for the hypervisor.
pub const HV_SLOT_FIRST: usize = 256;
pub const HV_SLOT_END: usize = 272;

/// L4 slot of hv's direct map of machine memory.
pub const DIRECT_MAP_SLOT: usize = 262;
/// L4 slot of the per-domain area (Xen's `PERDOMAIN_VIRT_START` slot).
const PERDOMAIN_SLOT: usize = 260;
/// Start of the per-vCPU areas: the per-domain slot.
const AREAS_BASE: u64 = 0xffff_0000_0000_0000 | (PERDOMAIN_SLOT as u64) << 39;
/// Pages of a vCPU's GDT window (8192 descriptors) and of its LDT window
/// (the largest LDT), both supervisor-only.
pub const GDT_PAGES: usize = 16;
pub const LDT_PAGES: usize = 16;
const AREA_PAGES: usize = GDT_PAGES + LDT_PAGES;
/// Most vCPU areas (all of them fit under one L2: 16 per L1).
pub const MAX_AREAS: usize = 256;
const AREAS_PER_L1: usize = 512 / AREA_PAGES;
const _: () = assert!(MAX_AREAS.div_ceil(AREAS_PER_L1) <= 512);

/// The L2 under which the areas' L1s hang.
static AREAS_L2: spin::Once<HvTable> = spin::Once::new();
/// Bit n of word n/64: area n is in use.
static AREAS_USED: [AtomicU64; MAX_AREAS / 64] = [const { AtomicU64::new(0) }; MAX_AREAS / 64];
/// The shared zero frame (hv's own, never written), mapped read-only where
/// a GDT window has no guest frame.
static ZERO_FRAME: AtomicU64 = AtomicU64::new(0);

fn fresh_table(level: u8, what: &'static str) -> Result<HvTable, &'static str> {
    let frame = super::alloc_zeroed_frame().ok_or(what)?;
    Ok(HvTable::adopt(frame, level))
}

/// Whether `va` lies in some vCPU's descriptor-table window (any vCPU's:
/// one compare, for the entry path's light #PF test; [`VcpuArea`] and
/// `domain::ldt` decide which).
#[inline(always)]
pub fn in_vcpu_areas(va: u64) -> bool {
    va.wrapping_sub(AREAS_BASE) < (MAX_AREAS * AREA_PAGES) as u64 * super::PAGE_SIZE
}

/// Whether `va` lies in the GDT part of some vCPU's window, which is
/// always mapped (guest frames, the zero frame or a CPU's pages).
pub fn in_gdt_windows(va: u64) -> bool {
    in_vcpu_areas(va) && ((va - AREAS_BASE) / PAGE_SIZE) as usize % AREA_PAGES < GDT_PAGES
}

/// One vCPU's window of descriptor tables (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VcpuArea(usize);

impl VcpuArea {
    /// Address of the GDT window (the base `lgdt` gets).
    pub fn gdt(self) -> u64 {
        AREAS_BASE + (self.0 * AREA_PAGES) as u64 * PAGE_SIZE
    }

    /// Address of the LDT window.
    pub fn ldt(self) -> u64 {
        self.gdt() + GDT_PAGES as u64 * PAGE_SIZE
    }

    /// The L1 of the area and the index of its first entry there.
    fn l1(self) -> Option<(HvTable, usize)> {
        let l1 = AREAS_L2.get()?.child(self.0 / AREAS_PER_L1)?;
        Some((l1, (self.0 % AREAS_PER_L1) * AREA_PAGES))
    }

    /// Sets the entry of page `page` and drops its old translation.
    fn set(self, page: usize, pte: u64) -> Result<(), phys::OutOfRange> {
        if page >= AREA_PAGES {
            return Err(phys::OutOfRange);
        }
        let (l1, first) = self.l1().ok_or(phys::OutOfRange)?;
        l1.set_entry(first + page, pte)?;
        crate::arch::x86_64::mm::invlpg(self.gdt() + page as u64 * PAGE_SIZE);
        Ok(())
    }

    fn frame(self, page: usize) -> Option<u64> {
        if page >= AREA_PAGES {
            return None;
        }
        let (l1, first) = self.l1()?;
        let e = l1.entry(first + page).ok()?;
        (e & PTE_P != 0).then_some((e & PTE_ADDR_MASK) / PAGE_SIZE)
    }

    /// Maps guest frame `mfn` (or the zero frame, read-only) at page `page`
    /// (below 14) of the GDT window. The caller holds a SegDesc type count
    /// on `mfn` for as long as it is mapped (the vCPU's `gdt_frames`). The
    /// CPU may write it (accessed bits), never ring 3.
    pub fn set_gdt_page(self, page: usize, mfn: Option<u64>) -> Result<(), phys::OutOfRange> {
        if page >= hv::segdesc::GDT_FRAMES {
            return Err(phys::OutOfRange);
        }
        self.set(page, mfn.map_or_else(zero_pte, rw_pte))
    }

    /// Maps the CPU's two reserved GDT pages (hv's selectors, its TSS and
    /// LDT descriptors: hv's own frames) at the end of the GDT window, if
    /// they are not there already.
    pub fn set_cpu_pages(self, frames: [u64; 2]) -> Result<(), phys::OutOfRange> {
        for (i, mfn) in frames.into_iter().enumerate() {
            let page = hv::segdesc::GDT_FRAMES + i;
            if self.frame(page) != Some(mfn) {
                self.set(page, rw_pte(mfn))?;
            }
        }
        Ok(())
    }

    /// Maps the descriptor frame `frame` (or nothing) at page `page` of the
    /// LDT window, read-write for the CPU (it sets descriptors' accessed
    /// bits), never user-accessible, and drops the old translation. The
    /// caller keeps the frame's reference for as long as it is mapped.
    pub fn set_ldt_page(
        self,
        page: usize,
        frame: Option<&super::SegDescRef>,
    ) -> Result<(), phys::OutOfRange> {
        if page >= LDT_PAGES {
            return Err(phys::OutOfRange);
        }
        self.set(GDT_PAGES + page, frame.map_or(0, |f| rw_pte(f.mfn())))
    }

    /// The frame mapped at page `page` of the LDT window, if any.
    pub fn ldt_page(self, page: usize) -> Option<u64> {
        (page < LDT_PAGES)
            .then(|| self.frame(GDT_PAGES + page))
            .flatten()
    }
}

const PTE_A: u64 = 1 << 5;
const PTE_D: u64 = 1 << 6;

fn rw_pte(mfn: u64) -> u64 {
    (mfn * PAGE_SIZE) | PTE_P | PTE_RW | PTE_A | PTE_D
}

fn zero_pte() -> u64 {
    ZERO_FRAME.load(Ordering::Relaxed) | PTE_P | PTE_A
}

/// A new vCPU area: GDT window all zero frames (the CPU pages come when the
/// vCPU is loaded), LDT window empty. `None` when all are taken or no
/// memory is left for its page table.
pub fn alloc_vcpu_area() -> Option<VcpuArea> {
    let n = (0..MAX_AREAS).find(|&n| {
        let word = &AREAS_USED[n / 64];
        let bit = 1u64 << (n % 64);
        word.fetch_or(bit, Ordering::AcqRel) & bit == 0
    })?;
    let area = VcpuArea(n);
    let ready = (|| {
        let l2 = AREAS_L2.get()?;
        let i = n / AREAS_PER_L1;
        if l2.entry(i).ok()? & PTE_P == 0 {
            let l1 = fresh_table(1, "").ok()?;
            l2.set_entry(i, l1.paddr() | PTE_P | PTE_RW).ok()?;
        }
        for page in 0..AREA_PAGES {
            let pte = if page < hv::segdesc::GDT_FRAMES {
                zero_pte()
            } else {
                0
            };
            area.set(page, pte).ok()?;
        }
        Some(())
    })();
    if ready.is_none() {
        free_vcpu_area(area);
        return None;
    }
    Some(area)
}

/// Returns an area whose LDT pages the caller has unmapped.
pub fn free_vcpu_area(area: VcpuArea) {
    for page in 0..AREA_PAGES {
        let _ = area.set(page, 0);
    }
    AREAS_USED[area.0 / 64].fetch_and(!(1u64 << (area.0 % 64)), Ordering::AcqRel);
}

/// Completes the direct map to [`phys::DIRECT_MAP_SIZE`]: L4 slot 262
/// gets an L3 of its own (the boot stub's is shared with the identity map
/// and covers 4 GiB) and one L2 of 2 MiB global pages per further GiB (60
/// frames). Like the boot map it covers RAM and holes alike; what hv may
/// touch is decided by the allocator and the frame table, which cover RAM
/// only. Runs before [`init`] fixes the hypervisor slots, with frames from
/// below 4 GiB, which the boot map already covers.
pub fn build_direct_map() -> Result<(), &'static str> {
    const GIB: u64 = 1 << 30;
    const TWO_MIB: u64 = 2 << 20;
    const BOOT_MAPPED: u64 = 4 * GIB;
    const NO_MEMORY: &str = "no memory for the direct map";
    let idle = HvTable::idle();
    let old_l3 = idle
        .child(DIRECT_MAP_SLOT)
        .ok_or("idle L4 has no direct map")?;
    let l3 = fresh_table(3, NO_MEMORY)?;
    const BOOT_GIBS: usize = (BOOT_MAPPED / GIB) as usize;
    const GIBS: usize = (phys::DIRECT_MAP_SIZE / GIB) as usize;
    for i in 0..BOOT_GIBS {
        let e = old_l3.entry(i).map_err(|_| "boot L3")?;
        l3.set_entry(i, e).map_err(|_| "direct map L3")?;
    }
    for gib in BOOT_GIBS..GIBS {
        let l2 = fresh_table(2, NO_MEMORY)?;
        for j in 0..512 {
            let pa = gib as u64 * GIB + j as u64 * TWO_MIB;
            l2.set_entry(j, pa | PTE_P | PTE_RW | PTE_PS | PTE_G)
                .map_err(|_| "direct map L2")?;
        }
        l3.set_entry(gib, l2.paddr() | PTE_P | PTE_RW)
            .map_err(|_| "direct map L3")?;
    }
    let flags = idle
        .entry(DIRECT_MAP_SLOT)
        .map_err(|_| "idle L4 unreadable")?
        & !PTE_ADDR_MASK;
    idle.set_entry(DIRECT_MAP_SLOT, l3.paddr() | flags)
        .map_err(|_| "idle L4 unwritable")?;
    crate::arch::x86_64::mm::flush_tlb_all_local();
    Ok(())
}

/// Gives every empty hypervisor slot of the idle L4 its own L3, so that
/// the slots are fixed from now on.
pub fn init() -> Result<(), &'static str> {
    let idle = HvTable::idle();
    for slot in HV_SLOT_FIRST..HV_SLOT_END {
        if idle.entry(slot).map_err(|_| "idle L4 unreadable")? & PTE_P == 0 {
            let l3 = fresh_table(3, "no memory for hypervisor L3s")?;
            idle.set_entry(slot, l3.paddr() | PTE_P | PTE_RW)
                .map_err(|_| "idle L4 unwritable")?;
        }
    }
    init_vcpu_areas(idle)
}

/// Builds the L2 under the per-domain slot's L3 that holds the vCPU
/// areas' L1s, and the zero frame.
fn init_vcpu_areas(idle: HvTable) -> Result<(), &'static str> {
    let l3 = idle.child(PERDOMAIN_SLOT).ok_or("no per-domain L3")?;
    let i = l3_index(AREAS_BASE);
    if l3.entry(i).map_err(|_| "per-domain table unreadable")? & PTE_P != 0 {
        return Err("per-domain slot already in use");
    }
    let l2 = fresh_table(2, "no memory for the vCPU areas")?;
    l3.set_entry(i, l2.paddr() | PTE_P | PTE_RW)
        .map_err(|_| "per-domain table unwritable")?;
    AREAS_L2.call_once(|| l2);
    let zero = super::alloc_zeroed_frame().ok_or("no memory for the zero frame")?;
    ZERO_FRAME.store(zero.leak() * PAGE_SIZE, Ordering::Relaxed);
    Ok(())
}

/// Physical address of the idle L4.
pub fn idle_l4() -> u64 {
    HvTable::idle().paddr()
}

const fn entry_paddr(table: u64, index: usize) -> u64 {
    table + (index as u64) * 8
}

/// Copies the hypervisor slots of the idle L4 into the L4 `l4` (which the
/// frame table must know as an L4 in use: a domain's base table, pinned
/// or referenced table).
///
/// Slot 256, the guests' read-only view of the M2P, is filled only when
/// `with_m2p` (as Xen fills it when a table becomes a vCPU's kernel base
/// table, and leaves it empty in tables that are merely pinned); hv itself
/// never uses it.
pub fn install_hv_slots(l4: u64, with_m2p: bool) -> Result<(), phys::OutOfRange> {
    let idle = HvTable::idle();
    super::with_frame_table(|ft| {
        let slots = phys::HvSlots::of(ft, l4).ok_or(phys::OutOfRange)?;
        for slot in HV_SLOT_FIRST + 1..HV_SLOT_END {
            slots.set(slot, idle.entry(slot)?)?;
        }
        let m2p = if with_m2p {
            idle.entry(HV_SLOT_FIRST)?
        } else {
            0
        };
        slots.set(HV_SLOT_FIRST, m2p)
    })
    .unwrap_or(Err(phys::OutOfRange))
}

/// Whether the L4 at `l4_paddr` carries exactly the idle table's
/// hypervisor slots (slot 256, the guests' M2P view, aside).
pub fn hv_slots_installed(l4_paddr: u64) -> bool {
    let idle = idle_l4();
    (HV_SLOT_FIRST + 1..HV_SLOT_END).all(|slot| {
        matches!(
            (phys::read_u64(entry_paddr(idle, slot)), phys::read_u64(entry_paddr(l4_paddr, slot))),
            (Ok(a), Ok(b)) if a == b
        )
    })
}

/// Makes the direct-map 2 MiB page holding `paddr` uncacheable (device
/// registers such as the local APIC's). Returns the virtual address to
/// invalidate.
pub fn make_uncacheable(paddr: u64) -> Result<u64, &'static str> {
    let va = phys::virt_of(paddr).map_err(|_| "outside the direct map")?;
    let not_2m = "direct map is not built from 2 MiB pages there";
    let l3 = HvTable::idle().child(l4_index(va)).ok_or("bad L4")?;
    let l2 = l3.child(l3_index(va)).ok_or(not_2m)?;
    let v = l2.entry(l2_index(va)).map_err(|_| "bad L2")?;
    if v & PTE_PS == 0 {
        return Err(not_2m);
    }
    l2.set_entry(l2_index(va), v | PTE_PCD | PTE_PWT)
        .map_err(|_| "bad L2")?;
    Ok(va & !0x1f_ffff)
}

pub const fn l4_index(va: u64) -> usize {
    ((va >> 39) & 511) as usize
}
pub const fn l3_index(va: u64) -> usize {
    ((va >> 30) & 511) as usize
}
pub const fn l2_index(va: u64) -> usize {
    ((va >> 21) & 511) as usize
}
