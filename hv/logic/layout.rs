//! The PV dom0 builder's address-space arithmetic: where the kernel, module,
//! P2M list, start_info, bootstrap page tables and boot stack go in the
//! initial mapping, and which page-table entries map it — the numbers Xen
//! 4.17's `dom0_construct_pv` (`xen/arch/x86/pv/dom0_build.c`) computes, so
//! that a kernel sees the same start of day on hv as on Xen.
//!
//! The initial mapping is `[v_start, v_end)` with `v_start = VIRT_BASE`,
//! mapped with 4 KiB pages to contiguous pseudo-physical frames from pfn 0
//! (the pfn of `va` is `(va - v_start) >> 12`). In order: the kernel image;
//! the module, page aligned, unless the kernel asked for `MOD_START_PFN`
//! (then it is left unmapped and start_info gives its first pfn); the P2M
//! list (8 bytes per page of `nr_pages`) unless the kernel gave `INIT_P2M`;
//! start_info (1168 bytes) with dom0_vga_console_info (40 bytes) after it;
//! the page tables; one page of boot stack; padding to a 4 MiB boundary with
//! at least 512 KiB to spare.
//!
//! The number of page-table frames depends on `v_end`, which depends on the
//! number of page-table frames. Xen solves this by trying 2, 3, 4, ... frames
//! until the L4 + L3s + L2s + L1s needed to map `[v_start, v_end)` fit. The
//! need only grows with the count, so jumping straight to the need (instead
//! of adding one) finds the same smallest solution in a few steps.
//!
//! Invariants of a [`Layout`]: every address below is inside
//! `[v_start, v_end)` (or equal to `v_end` for exclusive ends), the range is
//! canonical and clear of the hypervisor's L4 slots 256–271, and it fits in
//! `nr_pages`. All arithmetic is checked; absurd inputs give an error.

/// `sizeof(struct start_info)` for x86_64.
pub const START_INFO_SIZE: u64 = 1168;
/// `sizeof(struct dom0_vga_console_info)`.
pub const VGA_CONSOLE_INFO_SIZE: u64 = 40;
/// Bytes per P2M entry for a 64-bit guest.
pub const P2M_ENTRY_SIZE: u64 = 8;
/// Hypervisor-reserved virtual range (`HYPERVISOR_VIRT_START/END`, L4 slots
/// 256–271).
pub const HYPERVISOR_VIRT_START: u64 = 0xffff_8000_0000_0000;
pub const HYPERVISOR_VIRT_END: u64 = 0xffff_8800_0000_0000;

const PAGE_SIZE: u64 = 4096;
const PAGE_SHIFT: u32 = 12;
const LOWER_HALF_END: u64 = 0x0000_8000_0000_0000;
const UPPER_HALF_START: u64 = 0xffff_8000_0000_0000;
const ENTRIES: u64 = 512;

pub use crate::pt::{PTE_A, PTE_D, PTE_P, PTE_RW, PTE_US};

/// Flags of L4, L3 and L2 entries (Xen's `L{2,3,4}_PROT`).
pub const TABLE_FLAGS: u64 = PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D;
/// Flags of L1 entries mapping ordinary pages (Xen's `L1_PROT` without its
/// software `_PAGE_GUEST_KERNEL` bit).
pub const PAGE_FLAGS: u64 = PTE_P | PTE_RW | PTE_US | PTE_A;
/// Flags of L1 entries mapping the page-table frames: read-only.
pub const PAGE_TABLE_PAGE_FLAGS: u64 = PTE_P | PTE_US | PTE_A;

/// What the layout needs from the kernel (see
/// [`crate::elf::PvKernel::layout_params`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelParams {
    pub virt_base: u64,
    pub virt_kstart: u64,
    pub virt_kend: u64,
    /// `MOD_START_PFN` set: do not map the module.
    pub unmapped_initrd: bool,
    /// `INIT_P2M`: put the P2M list there, outside the initial mapping.
    pub p2m_base: Option<u64>,
    /// `HYPERCALL_PAGE`: must lie in the initial mapping.
    pub virt_hypercall: Option<u64>,
}

/// Why no layout fits. Where Xen prints a message, `Display` gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// `virt_base <= virt_kstart <= virt_kend` does not hold.
    BadKernelRange,
    /// An address computation overflowed 64 bits.
    AddressOverflow,
    /// The initial mapping (or external P2M) crosses the non-canonical hole.
    NonCanonical,
    /// The initial mapping overlaps the hypervisor's reserved range.
    OverlapsHypervisor,
    /// `nr_pages` cannot hold the initial mapping and the module.
    TooSmallForKernelImage,
    /// `INIT_P2M` range touches the initial mapping.
    P2mOverlapsInitialMapping,
    /// `nr_pages` cannot hold the P2M list given at `INIT_P2M`.
    TooSmallForP2m,
    /// The hypercall page is outside the initial mapping.
    HypercallPageOutOfMapping,
}

impl core::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::BadKernelRange => "ELF start or entries are out of bounds",
            Self::AddressOverflow => "DOM0 initial mapping overflows the address space",
            Self::NonCanonical => "DOM0 initial mapping is not canonical",
            Self::OverlapsHypervisor => "DOM0 image overlaps with Xen private area.",
            Self::TooSmallForKernelImage => "Domain 0 allocation is too small for kernel image",
            Self::P2mOverlapsInitialMapping => "DOM0 P->M table overlaps initial mapping",
            Self::TooSmallForP2m => "Dom0 allocation too small for initial P->M table",
            Self::HypercallPageOutOfMapping => "Invalid HYPERCALL_PAGE field in ELF notes.",
        })
    }
}

/// The dom0 virtual memory arrangement (Xen's "VIRTUAL MEMORY ARRANGEMENT").
/// Ranges are `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub v_start: u64,
    pub v_end: u64,
    pub vkern_start: u64,
    pub vkern_end: u64,
    /// The mapped module: `vinitrd_start..vinitrd_start + module_len`. Both 0
    /// when the module is left unmapped (`MOD_START_PFN`); equal and non-zero
    /// when mapped but empty.
    pub vinitrd_start: u64,
    pub vinitrd_end: u64,
    pub module_len: u64,
    /// The P2M list (`start_info.mfn_list` is `vphysmap_start`). Inside the
    /// initial mapping unless `p2m_external`.
    pub vphysmap_start: u64,
    pub vphysmap_end: u64,
    /// `INIT_P2M` was given: the P2M list lies outside the initial mapping and
    /// is not described by [`Layout::bootstrap_page_table_entries`].
    pub p2m_external: bool,
    /// start_info, then dom0_vga_console_info.
    pub vstartinfo_start: u64,
    pub vstartinfo_end: u64,
    /// The bootstrap page tables; `vpt_start` is the L4 (`start_info.pt_base`).
    pub vpt_start: u64,
    pub vpt_end: u64,
    pub nr_pt_frames: u64,
    pub vstack_start: u64,
    pub vstack_end: u64,
    /// The domain's size in pages (`start_info.nr_pages`).
    pub nr_pages: u64,
    /// Pages in the initial mapping: `(v_end - v_start) / 4096`.
    pub nr_pages_initial: u64,
    /// Xen allocates the initial mapping (less a mapped module, which keeps
    /// its own frames) as one power-of-two chunk of this many pages.
    pub alloc_pages: u64,
    /// First pfn of the module, when there is one.
    pub module_pfn: Option<u64>,
    /// `start_info.first_p2m_pfn`: pages the domain owns once the initial
    /// chunk and the module are in (`alloc_pages` + module pages).
    pub first_p2m_pfn: u64,
}

fn round_up(v: u64, align: u64) -> Option<u64> {
    let mask = align.checked_sub(1)?;
    Some(v.checked_add(mask)? & !mask)
}

fn pages_of(bytes: u64) -> Option<u64> {
    Some(round_up(bytes, PAGE_SIZE)? >> PAGE_SHIFT)
}

/// Xen's `NR(lo, hi, shift)`: how many `1 << shift` regions `[lo, hi)`
/// touches. Written without rounding `hi` up, which would overflow at the
/// top of the address space (Xen's version relies on the wrap-around).
fn regions(lo: u64, hi: u64, shift: u32) -> Option<u64> {
    if hi <= lo {
        return Some(0);
    }
    ((hi - 1) >> shift).checked_sub(lo >> shift)?.checked_add(1)
}

/// The page-table frames needed to map `[lo, hi)` with 4 KiB pages.
fn pt_frames_needed(lo: u64, hi: u64) -> Option<u64> {
    1u64.checked_add(regions(lo, hi, 39)?)?
        .checked_add(regions(lo, hi, 30)?)?
        .checked_add(regions(lo, hi, 21)?)
}

fn canonical(start: u64, end: u64) -> bool {
    end <= LOWER_HALF_END || start >= UPPER_HALF_START
}

/// Computes dom0's initial layout for a kernel, a domain of `nr_pages`
/// pages, and a module (initrd) of `module_len` bytes (0 for none).
pub fn dom0_layout(
    k: &KernelParams,
    nr_pages: u64,
    module_len: u64,
) -> Result<Layout, LayoutError> {
    use LayoutError::AddressOverflow as Ovf;
    if k.virt_base > k.virt_kstart || k.virt_kstart > k.virt_kend {
        return Err(LayoutError::BadKernelRange);
    }
    let v_start = k.virt_base;
    let after_kernel = round_up(k.virt_kend, PAGE_SIZE).ok_or(Ovf)?;
    let (vinitrd_start, vinitrd_end, vphysmap_start) = if k.unmapped_initrd {
        (0, 0, after_kernel)
    } else {
        let end = after_kernel.checked_add(module_len).ok_or(Ovf)?;
        (after_kernel, end, round_up(end, PAGE_SIZE).ok_or(Ovf)?)
    };
    let p2m_bytes = nr_pages.checked_mul(P2M_ENTRY_SIZE).ok_or(Ovf)?;
    let vphysmap_end = if k.p2m_base.is_some() {
        vphysmap_start
    } else {
        vphysmap_start.checked_add(p2m_bytes).ok_or(Ovf)?
    };
    let vstartinfo_start = round_up(vphysmap_end, PAGE_SIZE).ok_or(Ovf)?;
    let vpt_start = round_up(
        vstartinfo_start.checked_add(START_INFO_SIZE).ok_or(Ovf)?,
        PAGE_SIZE,
    )
    .ok_or(Ovf)?;
    let vstartinfo_end = vstartinfo_start
        .checked_add(START_INFO_SIZE + VGA_CONSOLE_INFO_SIZE)
        .ok_or(Ovf)?;

    // Everything after the page tables follows from their count.
    let tail = |nr_pt: u64| -> Option<(u64, u64, u64)> {
        let vpt_end = vpt_start.checked_add(nr_pt.checked_mul(PAGE_SIZE)?)?;
        let vstack_end = vpt_end.checked_add(PAGE_SIZE)?;
        let mut v_end = round_up(vstack_end, 1 << 22)?;
        if v_end - vstack_end < 512 << 10 {
            v_end = v_end.checked_add(1 << 22)?;
        }
        Some((vpt_end, vstack_end, v_end))
    };
    let mut nr_pt_frames = 2u64;
    let (vpt_end, vstack_end, v_end) = loop {
        let (vpt_end, vstack_end, v_end) = tail(nr_pt_frames).ok_or(Ovf)?;
        let needed = pt_frames_needed(v_start, v_end).ok_or(Ovf)?;
        if needed <= nr_pt_frames {
            break (vpt_end, vstack_end, v_end);
        }
        nr_pt_frames = needed;
    };
    let vstack_start = vpt_end;

    if !canonical(v_start, v_end) {
        return Err(LayoutError::NonCanonical);
    }
    if v_start < HYPERVISOR_VIRT_END && v_end > HYPERVISOR_VIRT_START {
        return Err(LayoutError::OverlapsHypervisor);
    }

    let nr_pages_initial = (v_end - v_start) >> PAGE_SHIFT;
    let module_pages = pages_of(module_len).ok_or(Ovf)?;
    let chunk_pages = if k.unmapped_initrd {
        nr_pages_initial
    } else {
        nr_pages_initial.saturating_sub(module_pages)
    };
    let alloc_pages = chunk_pages.checked_next_power_of_two().ok_or(Ovf)?;
    let first_p2m_pfn = alloc_pages.checked_add(module_pages).ok_or(Ovf)?;
    if first_p2m_pfn > nr_pages {
        return Err(LayoutError::TooSmallForKernelImage);
    }
    let module_pfn = (module_len > 0).then_some(if k.unmapped_initrd {
        alloc_pages
    } else {
        (vinitrd_start - v_start) >> PAGE_SHIFT
    });

    let (vphysmap_start, vphysmap_end) = match k.p2m_base {
        None => (vphysmap_start, vphysmap_end),
        Some(base) => {
            let end = base.checked_add(p2m_bytes).ok_or(Ovf)?;
            if v_start <= end && base <= v_end {
                return Err(LayoutError::P2mOverlapsInitialMapping);
            }
            if !canonical(base, end) {
                return Err(LayoutError::NonCanonical);
            }
            if base < HYPERVISOR_VIRT_END && end > HYPERVISOR_VIRT_START {
                return Err(LayoutError::OverlapsHypervisor);
            }
            let p2m_pages = round_up(end, PAGE_SIZE).ok_or(Ovf)?.saturating_sub(base) >> PAGE_SHIFT;
            let total = first_p2m_pfn
                .checked_add(p2m_pages)
                .and_then(|t| t.checked_add(3))
                .ok_or(Ovf)?;
            if total > nr_pages {
                return Err(LayoutError::TooSmallForP2m);
            }
            (base, end)
        }
    };

    if let Some(hc) = k.virt_hypercall {
        if !(v_start..v_end).contains(&hc) {
            return Err(LayoutError::HypercallPageOutOfMapping);
        }
    }

    Ok(Layout {
        v_start,
        v_end,
        vkern_start: k.virt_kstart,
        vkern_end: k.virt_kend,
        vinitrd_start,
        vinitrd_end,
        module_len,
        vphysmap_start,
        vphysmap_end,
        p2m_external: k.p2m_base.is_some(),
        vstartinfo_start,
        vstartinfo_end,
        vpt_start,
        vpt_end,
        nr_pt_frames,
        vstack_start,
        vstack_end,
        nr_pages,
        nr_pages_initial,
        alloc_pages,
        module_pfn,
        first_p2m_pfn,
    })
}

/// Page-table level of an entry's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PtLevel {
    L1,
    L2,
    L3,
    L4,
}

/// One entry of the bootstrap page tables: slot `index` of the table in
/// frame `table_pfn` points at frame `target_pfn` with `flags`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PtEntry {
    pub table_pfn: u64,
    pub index: u16,
    pub target_pfn: u64,
    pub level: PtLevel,
    pub flags: u64,
}

impl PtEntry {
    /// The entry's value for a frame at machine frame `target_mfn`.
    pub fn value(&self, target_mfn: u64) -> u64 {
        (target_mfn << PAGE_SHIFT) | self.flags
    }
}

impl Layout {
    /// The pfn of a virtual address in the initial mapping.
    pub fn pfn_of(&self, va: u64) -> Option<u64> {
        (self.v_start..self.v_end)
            .contains(&va)
            .then(|| (va - self.v_start) >> PAGE_SHIFT)
    }

    /// The pfn of the L4 table (`start_info.pt_base`'s frame).
    pub fn l4_pfn(&self) -> u64 {
        (self.vpt_start - self.v_start) >> PAGE_SHIFT
    }

    /// `start_info.mod_start`: the module's virtual address when mapped, its
    /// first pfn when not (then `SIF_MOD_START_PFN` is set); 0 without one.
    pub fn start_info_mod_start(&self) -> u64 {
        match self.module_pfn {
            None => 0,
            Some(pfn) if self.mod_start_is_pfn() => pfn,
            Some(_) => self.vinitrd_start,
        }
    }

    /// Whether start_info must carry `SIF_MOD_START_PFN`.
    pub fn mod_start_is_pfn(&self) -> bool {
        self.module_len > 0 && self.vinitrd_start == 0
    }

    /// Every entry the builder writes into the bootstrap page tables, in
    /// Xen's order. Frames are handed out from the L4's as Xen does: the
    /// L4, then for the first page an L1, an L2 and an L3 (in that order),
    /// then a new L1 at each 2 MiB boundary, preceded by a new L2 at each
    /// 1 GiB and a new L3 at each 512 GiB boundary. Each entry of an upper
    /// table is yielded before the entries of the table it points to, and
    /// each page of `[v_start, v_end)` is mapped by an L1 entry to its own
    /// pfn, read-only for the page-table frames. The hypervisor's L4 slots
    /// are not included.
    pub fn bootstrap_page_table_entries(&self) -> BootstrapEntries {
        let pt_first = self.l4_pfn();
        BootstrapEntries {
            v_start: self.v_start,
            pages: self.nr_pages_initial,
            pt_first,
            pt_end: pt_first.saturating_add(self.nr_pt_frames),
            count: 0,
            next_frame: pt_first.saturating_add(1),
            l1: (0, ENTRIES),
            l2: (0, ENTRIES),
            l3: (0, ENTRIES),
            l4_index: (self.v_start >> 39) & (ENTRIES - 1),
            pending: [None; 4],
            next_pending: 0,
        }
    }
}

/// The mapping of an external P2M list (`INIT_P2M`), which Xen's
/// `setup_pv_physmap` builds after the initial mapping: frames from
/// `first_p2m_pfn` on, handed out in the order Xen allocates them (for each
/// page of the list, a missing L3, L2 and L1 table first, then the page),
/// reusing upper tables the bootstrap tables already have (a list in the
/// initial mapping's L4 slot shares its L3). Xen maps a list of 2 MiB or
/// more with superpages where aligned; hv maps 4 KiB pages throughout (PV
/// guests get no superpages from hv), which only changes which pfns hold
/// the list for a domain of 1 GiB or more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct P2mMapping {
    /// The entries to write: each table entry before those of the table it
    /// points to.
    pub entries: alloc::vec::Vec<PtEntry>,
    /// The pfns holding the list, in address order.
    pub data_pfns: alloc::vec::Vec<u64>,
    /// Frames taken: tables and list pages (`start_info.nr_p2m_frames`).
    pub frames: u64,
}

impl Layout {
    /// How the external P2M list is mapped; `None` when the list is in the
    /// initial mapping. `TooSmallForP2m` when the frames it takes do not
    /// fit in `nr_pages`.
    pub fn p2m_mapping(&self) -> Result<Option<P2mMapping>, LayoutError> {
        use alloc::collections::BTreeMap;
        use alloc::vec::Vec;
        if !self.p2m_external {
            return Ok(None);
        }
        // The bootstrap tables' upper levels: (table, index) -> next table.
        let mut tables: BTreeMap<(u64, u64), u64> = self
            .bootstrap_page_table_entries()
            .filter(|e| e.level != PtLevel::L1)
            .map(|e| ((e.table_pfn, u64::from(e.index)), e.target_pfn))
            .collect();
        let mut next = self.first_p2m_pfn;
        let mut entries = Vec::new();
        let mut data_pfns = Vec::new();
        let end = round_up(self.vphysmap_end, PAGE_SIZE).ok_or(LayoutError::AddressOverflow)?;
        let mut va = self.vphysmap_start & !(PAGE_SIZE - 1);
        while va < end {
            let mut table = self.l4_pfn();
            for (shift, level) in [(39, PtLevel::L4), (30, PtLevel::L3), (21, PtLevel::L2)] {
                let index = (va >> shift) & (ENTRIES - 1);
                table = match tables.get(&(table, index)) {
                    Some(&t) => t,
                    None => {
                        let t = next;
                        next = next.checked_add(1).ok_or(LayoutError::AddressOverflow)?;
                        entries.push(entry(table, index, t, level, TABLE_FLAGS));
                        tables.insert((table, index), t);
                        t
                    }
                };
            }
            let page = next;
            next = next.checked_add(1).ok_or(LayoutError::AddressOverflow)?;
            let index = (va >> 12) & (ENTRIES - 1);
            entries.push(entry(table, index, page, PtLevel::L1, PAGE_FLAGS | PTE_D));
            data_pfns.push(page);
            va = va
                .checked_add(PAGE_SIZE)
                .ok_or(LayoutError::AddressOverflow)?;
        }
        if next > self.nr_pages {
            return Err(LayoutError::TooSmallForP2m);
        }
        Ok(Some(P2mMapping {
            entries,
            data_pfns,
            frames: next - self.first_p2m_pfn,
        }))
    }
}

/// Iterator of [`Layout::bootstrap_page_table_entries`].
#[derive(Clone, Debug)]
pub struct BootstrapEntries {
    v_start: u64,
    pages: u64,
    pt_first: u64,
    pt_end: u64,
    /// Pages mapped so far.
    count: u64,
    next_frame: u64,
    /// (frame, next free index) of the current L1, L2, L3; an index of 512
    /// means "full: take a new frame".
    l1: (u64, u64),
    l2: (u64, u64),
    l3: (u64, u64),
    l4_index: u64,
    pending: [Option<PtEntry>; 4],
    next_pending: usize,
}

fn entry(table_pfn: u64, index: u64, target_pfn: u64, level: PtLevel, flags: u64) -> PtEntry {
    PtEntry {
        table_pfn,
        // Indices are masked to 0..512 by construction.
        index: u16::try_from(index & (ENTRIES - 1)).unwrap_or(0),
        target_pfn,
        level,
        flags,
    }
}

impl BootstrapEntries {
    fn take_frame(&mut self) -> u64 {
        let f = self.next_frame;
        self.next_frame = self.next_frame.saturating_add(1);
        f
    }

    /// Maps page `count`, queueing the entries that takes.
    fn map_next_page(&mut self) {
        let va = self.v_start.saturating_add(self.count << PAGE_SHIFT);
        let first = self.count == 0;
        let mut queued = 0usize;
        let mut queue = |e: PtEntry, pending: &mut [Option<PtEntry>; 4]| {
            if let Some(slot) = pending.get_mut(queued) {
                *slot = Some(e);
            }
            queued += 1;
        };
        let mut pending = [None; 4];
        if self.l1.1 == ENTRIES {
            let l1 = self.take_frame();
            self.l1 = (l1, if first { (va >> 12) & (ENTRIES - 1) } else { 0 });
            if self.l2.1 == ENTRIES {
                let l2 = self.take_frame();
                self.l2 = (l2, if first { (va >> 21) & (ENTRIES - 1) } else { 0 });
                if self.l3.1 == ENTRIES {
                    let l3 = self.take_frame();
                    self.l3 = (l3, if first { (va >> 30) & (ENTRIES - 1) } else { 0 });
                    queue(
                        entry(self.pt_first, self.l4_index, l3, PtLevel::L4, TABLE_FLAGS),
                        &mut pending,
                    );
                    self.l4_index = self.l4_index.saturating_add(1);
                }
                queue(
                    entry(self.l3.0, self.l3.1, l2, PtLevel::L3, TABLE_FLAGS),
                    &mut pending,
                );
                self.l3.1 = self.l3.1.saturating_add(1);
            }
            queue(
                entry(self.l2.0, self.l2.1, l1, PtLevel::L2, TABLE_FLAGS),
                &mut pending,
            );
            self.l2.1 = self.l2.1.saturating_add(1);
        }
        let pfn = self.count;
        let flags = if (self.pt_first..self.pt_end).contains(&pfn) {
            PAGE_TABLE_PAGE_FLAGS
        } else {
            PAGE_FLAGS
        };
        queue(
            entry(self.l1.0, self.l1.1, pfn, PtLevel::L1, flags),
            &mut pending,
        );
        self.l1.1 = self.l1.1.saturating_add(1);
        self.count = self.count.saturating_add(1);
        self.pending = pending;
        self.next_pending = 0;
    }
}

impl Iterator for BootstrapEntries {
    type Item = PtEntry;

    fn next(&mut self) -> Option<PtEntry> {
        loop {
            if let Some(e) = self
                .pending
                .get_mut(self.next_pending)
                .and_then(Option::take)
            {
                self.next_pending = self.next_pending.saturating_add(1);
                return Some(e);
            }
            if self.count >= self.pages {
                return None;
            }
            self.map_next_page();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    const BASE: u64 = 0xffff_ffff_8000_0000;

    fn kernel(base: u64, len: u64) -> KernelParams {
        KernelParams {
            virt_base: base,
            virt_kstart: base,
            virt_kend: base + len,
            unmapped_initrd: false,
            p2m_base: None,
            virt_hypercall: None,
        }
    }

    /// Walks the bootstrap tables built from `entries` for `va` (hv's one
    /// walk, over frame numbers as machine frames), checking each entry's
    /// level and the upper levels' flags; returns the pfn and the L1 flags.
    fn walk(map: &HashMap<(u64, u16), PtEntry>, l4: u64, va: u64) -> Option<(u64, u64)> {
        let mut levels = [PtLevel::L4, PtLevel::L3, PtLevel::L2, PtLevel::L1].into_iter();
        let leaf = crate::pt_walk::translate(l4 << PAGE_SHIFT, va, PTE_P, |pa| {
            let index = u16::try_from((pa & 0xfff) / 8).unwrap();
            let e = map.get(&(pa >> PAGE_SHIFT, index))?;
            let level = levels.next().unwrap();
            assert_eq!(e.level, level);
            if level != PtLevel::L1 {
                assert_eq!(e.flags, TABLE_FLAGS);
            }
            Some(e.value(e.target_pfn))
        })
        .ok()?;
        assert_eq!(leaf.level, 1);
        Some((leaf.paddr >> PAGE_SHIFT, leaf.entry & !crate::pt::PTE_ADDR))
    }

    /// Checks every structural property of a layout's bootstrap tables.
    fn check_tables(l: &Layout) -> Vec<PtEntry> {
        let entries: Vec<PtEntry> = l.bootstrap_page_table_entries().collect();
        let mut map = HashMap::new();
        let mut tables = HashSet::new();
        for e in &entries {
            assert!(e.index < 512);
            assert!(
                map.insert((e.table_pfn, e.index), *e).is_none(),
                "slot written twice"
            );
            tables.insert(e.table_pfn);
        }
        // Exactly the page-table frames are used as tables.
        let pt0 = l.l4_pfn();
        let expected: HashSet<u64> = (pt0..pt0 + l.nr_pt_frames).collect();
        assert_eq!(tables, expected);
        let upper = entries.iter().filter(|e| e.level != PtLevel::L1).count() as u64;
        assert_eq!(
            upper,
            l.nr_pt_frames - 1,
            "one upper entry per non-L4 table"
        );
        assert_eq!(entries.len() as u64, l.nr_pages_initial + upper);
        for page in 0..l.nr_pages_initial {
            let va = l.v_start + page * 4096;
            let (pfn, flags) = walk(&map, pt0, va).expect("page mapped");
            assert_eq!(pfn, page);
            let is_pt = (l.vpt_start..l.vpt_end).contains(&va);
            assert_eq!(
                flags,
                if is_pt {
                    PAGE_TABLE_PAGE_FLAGS
                } else {
                    PAGE_FLAGS
                }
            );
        }
        entries
    }

    #[test]
    fn xen_facts_example() {
        let l = dom0_layout(&kernel(BASE, 0xdd000), 16384, 0).unwrap();
        assert_eq!(l.v_start, BASE);
        assert_eq!((l.vkern_start, l.vkern_end), (BASE, BASE + 0xdd000));
        assert_eq!(
            (l.vphysmap_start, l.vphysmap_end),
            (BASE + 0xdd000, BASE + 0xfd000)
        );
        assert_eq!(
            (l.vstartinfo_start, l.vstartinfo_end),
            (BASE + 0xfd000, BASE + 0xfd4b8)
        );
        assert_eq!((l.vpt_start, l.vpt_end), (BASE + 0xfe000, BASE + 0x103000));
        assert_eq!(l.nr_pt_frames, 5);
        assert_eq!(
            (l.vstack_start, l.vstack_end),
            (BASE + 0x103000, BASE + 0x104000)
        );
        assert_eq!(l.v_end, BASE + 0x40_0000);
        assert_eq!(l.nr_pages_initial, 1024);
        assert_eq!(l.alloc_pages, 1024);
        assert_eq!(l.first_p2m_pfn, 1024);
        assert_eq!(l.module_pfn, None);
        assert_eq!(l.start_info_mod_start(), 0);
        assert!(!l.mod_start_is_pfn());

        let entries = check_tables(&l);
        assert_eq!(entries.len(), 1028);
        let pt0 = 0xfe;
        // Xen's frame order: L4, then L1, L2, L3 for the first page.
        assert_eq!(
            entries[0],
            PtEntry {
                table_pfn: pt0,
                index: 511,
                target_pfn: pt0 + 3,
                level: PtLevel::L4,
                flags: 0x67
            }
        );
        assert_eq!(
            entries[1],
            PtEntry {
                table_pfn: pt0 + 3,
                index: 510,
                target_pfn: pt0 + 2,
                level: PtLevel::L3,
                flags: 0x67
            }
        );
        assert_eq!(
            entries[2],
            PtEntry {
                table_pfn: pt0 + 2,
                index: 0,
                target_pfn: pt0 + 1,
                level: PtLevel::L2,
                flags: 0x67
            }
        );
        assert_eq!(
            entries[3],
            PtEntry {
                table_pfn: pt0 + 1,
                index: 0,
                target_pfn: 0,
                level: PtLevel::L1,
                flags: 0x27
            }
        );
        // The second L1 (second 2 MiB) is the fifth frame.
        let l2_1 = entries
            .iter()
            .find(|e| e.level == PtLevel::L2 && e.index == 1)
            .unwrap();
        assert_eq!(l2_1.target_pfn, pt0 + 4);
        // Page-table frames are mapped read-only, the stack writable.
        let pt_l1 = entries
            .iter()
            .find(|e| e.level == PtLevel::L1 && e.target_pfn == pt0)
            .unwrap();
        assert_eq!(pt_l1.flags, 0x25);
        let stack = entries
            .iter()
            .find(|e| e.level == PtLevel::L1 && e.target_pfn == 0x103)
            .unwrap();
        assert_eq!(stack.flags, 0x27);
        assert_eq!(entries[0].value(0x1234), 0x1234067);
    }

    #[test]
    fn crossing_1g_and_512g() {
        // 4 MiB below 512 GiB: the mapping spans two L4 slots and two L3s.
        let base = (512u64 << 30) - (4 << 20);
        let l = dom0_layout(&kernel(base, 8 << 20), 1 << 16, 0).unwrap();
        assert_eq!(l.v_start, base);
        // 8 MiB kernel + 512 KiB P2M + start info + tables + stack -> 12 MiB.
        assert_eq!(l.v_end, base + (12 << 20));
        // L4 + 2 L3 + 2 L2 + 6 L1.
        assert_eq!(l.nr_pt_frames, 11);
        let entries = check_tables(&l);
        let l4: Vec<_> = entries
            .iter()
            .filter(|e| e.level == PtLevel::L4)
            .map(|e| e.index)
            .collect();
        assert_eq!(l4, [0, 1]);
        let l3: Vec<_> = entries
            .iter()
            .filter(|e| e.level == PtLevel::L3)
            .map(|e| e.index)
            .collect();
        assert_eq!(l3, [511, 0]);
    }

    #[test]
    fn crossing_1g_only() {
        let base = (1u64 << 30) - (2 << 20);
        let l = dom0_layout(&kernel(base, 3 << 20), 4096, 0).unwrap();
        let entries = check_tables(&l);
        let l3: Vec<_> = entries
            .iter()
            .filter(|e| e.level == PtLevel::L3)
            .map(|e| e.index)
            .collect();
        assert_eq!(l3, [0, 1]);
        assert_eq!(entries.iter().filter(|e| e.level == PtLevel::L4).count(), 1);
    }

    #[test]
    fn padding_adds_4m_when_spare_is_small() {
        // Stack ends 256 KiB below a 4 MiB boundary: add 4 MiB.
        let l = dom0_layout(&kernel(BASE, 0x3b0000), 4096, 0).unwrap();
        assert!(l.v_end - l.vstack_end >= 512 << 10);
        assert_eq!(l.v_end % (4 << 20), 0);
        assert_eq!(l.v_end, BASE + (8 << 20));
        check_tables(&l);
    }

    #[test]
    fn mapped_module() {
        let l = dom0_layout(&kernel(BASE, 0xdd000), 16384, 0x1801).unwrap();
        assert_eq!(
            (l.vinitrd_start, l.vinitrd_end),
            (BASE + 0xdd000, BASE + 0xde801)
        );
        assert_eq!(l.vphysmap_start, BASE + 0xdf000);
        assert_eq!(l.module_pfn, Some(0xdd));
        assert_eq!(l.start_info_mod_start(), BASE + 0xdd000);
        assert!(!l.mod_start_is_pfn());
        // The chunk excludes the module's two pages; they come on top.
        assert_eq!(l.alloc_pages, 1024);
        assert_eq!(l.first_p2m_pfn, 1026);
        check_tables(&l);
    }

    #[test]
    fn unmapped_module() {
        let mut k = kernel(BASE, 0xdd000);
        k.unmapped_initrd = true;
        let l = dom0_layout(&k, 16384, 0x1801).unwrap();
        assert_eq!((l.vinitrd_start, l.vinitrd_end), (0, 0));
        assert_eq!(l.vphysmap_start, BASE + 0xdd000);
        assert_eq!(l.module_pfn, Some(1024));
        assert_eq!(l.start_info_mod_start(), 1024);
        assert!(l.mod_start_is_pfn());
        assert_eq!(l.first_p2m_pfn, 1026);
    }

    #[test]
    fn external_p2m_mapping_as_xen_allocates() {
        // Debian 12's Linux: INIT_P2M at 512 GiB (L4 slot 1), 512 MiB dom0,
        // an unmapped module.
        let mut k = kernel(BASE, 0x4a0_0000);
        k.p2m_base = Some(0x80_0000_0000);
        k.unmapped_initrd = true;
        let l = dom0_layout(&k, 131_072, 1 << 20).unwrap();
        let m = l.p2m_mapping().unwrap().unwrap();
        // 1 MiB of list: 256 pages, plus one L3, one L2 and one L1.
        assert_eq!(m.data_pfns.len(), 256);
        assert_eq!(m.frames, 259);
        let first = l.first_p2m_pfn;
        assert_eq!(
            m.entries[0],
            entry(l.l4_pfn(), 1, first, PtLevel::L4, TABLE_FLAGS)
        );
        assert_eq!(
            m.entries[1],
            entry(first, 0, first + 1, PtLevel::L3, TABLE_FLAGS)
        );
        assert_eq!(
            m.entries[2],
            entry(first + 1, 0, first + 2, PtLevel::L2, TABLE_FLAGS)
        );
        assert_eq!(
            m.entries[3],
            entry(first + 2, 0, first + 3, PtLevel::L1, PAGE_FLAGS | PTE_D)
        );
        assert_eq!(m.data_pfns[255], first + 3 + 255);
        // The list's pages and tables lie past the module, inside the domain.
        assert!(first >= l.module_pfn.unwrap() + 256);
        assert!(first + m.frames <= l.nr_pages);
        // Every list page is reached through the tables, in order.
        let mut map = HashMap::new();
        for e in l
            .bootstrap_page_table_entries()
            .chain(m.entries.iter().copied())
        {
            assert!(
                map.insert((e.table_pfn, e.index), e).is_none(),
                "{e:?} twice"
            );
        }
        for (i, &pfn) in m.data_pfns.iter().enumerate() {
            let va = l.vphysmap_start + (i as u64) * 4096;
            assert_eq!(walk(&map, l.l4_pfn(), va), Some((pfn, PAGE_FLAGS | PTE_D)));
        }
        // The initial mapping is still there.
        assert_eq!(walk(&map, l.l4_pfn(), BASE).map(|w| w.0), Some(0));
    }

    #[test]
    fn external_p2m_mapping_shares_upper_tables_and_needs_room() {
        // A list in the kernel's own L4 slot (below the initial mapping)
        // reuses the bootstrap L3 and takes a new L2 only for its own GiB.
        let mut k = kernel(BASE, 0x10_0000);
        k.p2m_base = Some(BASE - (1 << 30));
        let l = dom0_layout(&k, 16384, 0).unwrap();
        let m = l.p2m_mapping().unwrap().unwrap();
        assert_eq!(m.entries[0].level, PtLevel::L3, "the L4 entry is reused");
        assert_eq!(m.frames, 2 + 32);
        // A domain just large enough for the layout's check but not for the
        // tables a list crossing 2 MiB boundaries takes.
        let mut k = kernel(BASE, 0x10_0000);
        k.p2m_base = Some(0x80_0000_0000 + (2 << 20) - 4096);
        let l = dom0_layout(&k, 1024 + 3 + 3, 0).unwrap();
        assert_eq!(l.p2m_mapping(), Err(LayoutError::TooSmallForP2m));
        // No external list, no mapping.
        let l = dom0_layout(&kernel(BASE, 0x10_0000), 16384, 0).unwrap();
        assert_eq!(l.p2m_mapping(), Ok(None));
    }

    #[test]
    fn external_p2m() {
        let mut k = kernel(BASE, 0xdd000);
        k.p2m_base = Some(0xffff_c000_0000_0000);
        let l = dom0_layout(&k, 16384, 0).unwrap();
        assert!(l.p2m_external);
        assert_eq!(
            (l.vphysmap_start, l.vphysmap_end),
            (0xffff_c000_0000_0000, 0xffff_c000_0002_0000)
        );
        assert_eq!(l.vstartinfo_start, BASE + 0xdd000);
        k.p2m_base = Some(BASE + 0x100000);
        assert_eq!(
            dom0_layout(&k, 16384, 0),
            Err(LayoutError::P2mOverlapsInitialMapping)
        );
        k.p2m_base = Some(0xffff_c000_0000_0000);
        assert_eq!(dom0_layout(&k, 1029, 0), Err(LayoutError::TooSmallForP2m));
        assert!(dom0_layout(&k, 1030, 0).is_ok());
    }

    #[test]
    fn hostile_inputs() {
        // Not enough memory for the initial mapping.
        assert_eq!(
            dom0_layout(&kernel(BASE, 0xdd000), 1023, 0),
            Err(LayoutError::TooSmallForKernelImage)
        );
        // P2M size overflows.
        assert_eq!(
            dom0_layout(&kernel(BASE, 0xdd000), u64::MAX / 4, 0),
            Err(LayoutError::AddressOverflow)
        );
        // Huge but representable P2M: the mapping runs off the top.
        assert_eq!(
            dom0_layout(&kernel(BASE, 0xdd000), 1 << 40, 0),
            Err(LayoutError::AddressOverflow)
        );
        // Module length overflows.
        assert_eq!(
            dom0_layout(&kernel(BASE, 0xdd000), 16384, u64::MAX),
            Err(LayoutError::AddressOverflow)
        );
        // Kernel at the very top: v_end would wrap.
        let top = 0xffff_ffff_ffe0_0000;
        assert_eq!(
            dom0_layout(&kernel(top, 0x1000), 16384, 0),
            Err(LayoutError::AddressOverflow)
        );
        // Crossing the non-canonical hole.
        let low = 0x0000_7fff_fffc_0000;
        assert_eq!(
            dom0_layout(&kernel(low, 0x1000), 16384, 0),
            Err(LayoutError::NonCanonical)
        );
        // Inside the hypervisor's range.
        assert_eq!(
            dom0_layout(&kernel(0xffff_8100_0000_0000, 0x1000), 16384, 0),
            Err(LayoutError::OverlapsHypervisor)
        );
        // Inconsistent kernel range.
        let mut k = kernel(BASE, 0x1000);
        k.virt_kstart = BASE - 1;
        assert_eq!(dom0_layout(&k, 16384, 0), Err(LayoutError::BadKernelRange));
        // Hypercall page outside the mapping.
        let mut k = kernel(BASE, 0x1000);
        k.virt_hypercall = Some(BASE + (4 << 20));
        assert_eq!(
            dom0_layout(&k, 16384, 0),
            Err(LayoutError::HypercallPageOutOfMapping)
        );
        k.virt_hypercall = Some(BASE);
        assert!(dom0_layout(&k, 16384, 0).is_ok());
        // Zero pages.
        assert_eq!(
            dom0_layout(&kernel(BASE, 0x1000), 0, 0),
            Err(LayoutError::TooSmallForKernelImage)
        );
    }

    #[test]
    fn pt_frame_search_matches_xen_increment() {
        // Xen tries 2, 3, 4, ...; the jump must land on the same count.
        for (base, len, pages) in [
            (BASE, 0xdd000u64, 16384u64),
            (0, 0x200000, 1 << 20),
            ((512u64 << 30) - (4 << 20), 8 << 20, 1 << 16),
            (0x40_0000, 700 << 20, 1 << 22),
        ] {
            let l = dom0_layout(&kernel(base, len), pages, 0).unwrap();
            let mut nr = 2u64;
            loop {
                let vpt_end = l.vpt_start + nr * 4096;
                let vstack_end = vpt_end + 4096;
                let mut v_end = (vstack_end + (4 << 20) - 1) & !((4 << 20) - 1);
                if v_end - vstack_end < 512 << 10 {
                    v_end += 4 << 20;
                }
                if pt_frames_needed(base, v_end).unwrap() <= nr {
                    break;
                }
                nr += 1;
            }
            assert_eq!(l.nr_pt_frames, nr);
        }
    }
}
