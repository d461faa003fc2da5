//! More of dom0's own memory than its initial mapping shows: a window of
//! pages mapped at [`WINDOW_VA`], for work too big for the heap (a domU
//! kernel unpacked from its bzImage, tens of MiB).
//!
//! The domain builder (hv's, as Xen's) maps only the start of day:
//! kernel, module, P2M, start_info, the bootstrap tables and some padding.
//! The rest of dom0's pseudo-physical frames are its own but unmapped.
//! The window takes frames from the top of that memory: the first ones
//! become L1 tables (zeroed through a scratch mapping, then hooked into
//! the L2 that maps the kernel's 1 GiB, by `mmu_update` as any PV kernel
//! extends its page tables), the rest the window's pages. The frames stay
//! the window's for good: dom0 has one such piece of work per boot.
//!
//! The top frame is left for [`slots`]: the L1 table of the kernel
//! region's last 2 MiB, entries with no page of ours behind them, where
//! dom0 maps grants it keeps.

use guest_abi::hypercall::{hypercall3, hypercall4, MMU_UPDATE, UPDATE_VA_MAPPING};
use guest_abi::rt::VIRT_BASE;
use guest_abi::xen::{MmuUpdate, StartInfo, DOMID_SELF, MMU_NORMAL_PT_UPDATE, UVMF_INVLPG};

/// Where the window starts: 512 MiB into the kernel's 1 GiB region (the
/// initial mapping, from [`VIRT_BASE`], is far smaller).
pub const WINDOW_VA: u64 = VIRT_BASE + (512 << 20);
/// The most the window can hold: the rest of that 1 GiB but its last
/// 2 MiB ([`SLOTS_VA`]).
pub const MAX_WINDOW_BYTES: u64 = 510 << 20;
/// The last 2 MiB of the kernel's 1 GiB: page-table entries with no page
/// behind them ([`slots`]), where dom0 maps other domains' grants it
/// keeps (a block back end's persistent grants).
pub const SLOTS_VA: u64 = VIRT_BASE + (1 << 30) - (2 << 20);
/// Pages of [`SLOTS_VA`].
pub const SLOTS: u64 = 512;
/// Frames at the top of our memory the window leaves alone: the slots'
/// L1 table.
const TOP_RESERVED: u64 = 1;

const PAGE: u64 = 4096;
/// Present, writable, user (a PV kernel runs in ring 3), accessed, dirty.
const PTE_RW: u64 = 0x1 | 0x2 | 0x4 | 0x20 | 0x40;
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
/// Frames left alone above the initial mapping's last one: Xen's builder
/// pads the mapping by at least 512 KiB and rounds it up to 4 MiB.
const SLACK_PAGES: u64 = 1024;

/// Maps `bytes` of dom0's unmapped memory at [`WINDOW_VA`] and gives it
/// out, zeroed or not (the frames are fresh from the builder: zero on
/// both hypervisors, but nothing here relies on it). `scratch_va` is a
/// page of the initial mapping's padding that nothing uses, borrowed for
/// the duration of the call. Call it once.
pub fn map(si: &StartInfo, scratch_va: u64, bytes: u64) -> Result<&'static mut [u8], &'static str> {
    if bytes > MAX_WINDOW_BYTES {
        return Err("more than the window holds");
    }
    let pages = bytes.div_ceil(PAGE);
    let l1s = pages.div_ceil(512);
    let mapped = si.pt_base.saturating_sub(VIRT_BASE) / PAGE + si.nr_pt_frames + SLACK_PAGES;
    let first = si
        .nr_pages
        .checked_sub(TOP_RESERVED + pages + l1s)
        .filter(|&f| f >= mapped)
        .ok_or("not enough memory beyond the initial mapping")?;
    let p2m = si.mfn_list as *const u64;
    // SAFETY: the builder maps the P2M list, one entry per page of ours,
    // for good; `first + i` stays below `nr_pages`.
    let mfn = |i: u64| unsafe { p2m.add(to_usize(first + i)).read_volatile() };
    let l2 = kernel_l2_maddr(si.pt_base)?;
    for k in 0..l1s {
        let l1 = mfn(k);
        zero(scratch_va, l1)?;
        let slot = ((WINDOW_VA >> 21) & 511) + k;
        update(&[MmuUpdate {
            ptr: (l2 + slot * 8) | MMU_NORMAL_PT_UPDATE,
            val: (l1 << 12) | PTE_RW,
        }])?;
    }
    let mut batch = [MmuUpdate { ptr: 0, val: 0 }; 128];
    let mut n = 0;
    for i in 0..pages {
        let l1 = mfn(i / 512);
        batch[n] = MmuUpdate {
            ptr: ((l1 << 12) + (i % 512) * 8) | MMU_NORMAL_PT_UPDATE,
            val: (mfn(l1s + i) << 12) | PTE_RW,
        };
        n += 1;
        if n == batch.len() || i + 1 == pages {
            update(&batch[..n])?;
            n = 0;
        }
    }
    // SAFETY: `[WINDOW_VA, +pages)` now maps frames of ours that nothing
    // else maps or uses, for the rest of dom0's life; this is called once.
    Ok(unsafe { core::slice::from_raw_parts_mut(WINDOW_VA as *mut u8, to_usize(pages * PAGE)) })
}

/// Makes [`SLOTS_VA`]'s [`SLOTS`] page-table entries, empty: our top
/// frame (beyond the initial mapping, left alone by [`map`]) zeroed
/// through `scratch_va` (borrowed for the call) and hooked into the L2
/// that maps the kernel's 1 GiB. Call it once; the entries are then for
/// grant mappings only.
pub fn slots(si: &StartInfo, scratch_va: u64) -> Result<(), &'static str> {
    let mapped = si.pt_base.saturating_sub(VIRT_BASE) / PAGE + si.nr_pt_frames + SLACK_PAGES;
    let top = si
        .nr_pages
        .checked_sub(TOP_RESERVED)
        .filter(|&f| f >= mapped)
        .ok_or("no frame of ours beyond the initial mapping")?;
    // SAFETY: the builder maps the P2M list, one entry per page of ours;
    // `top` is below `nr_pages`.
    let l1 = unsafe {
        (si.mfn_list as *const u64)
            .add(to_usize(top))
            .read_volatile()
    };
    let l2 = kernel_l2_maddr(si.pt_base)?;
    zero(scratch_va, l1)?;
    update(&[MmuUpdate {
        ptr: (l2 + ((SLOTS_VA >> 21) & 511) * 8) | MMU_NORMAL_PT_UPDATE,
        val: (l1 << 12) | PTE_RW,
    }])
}

fn to_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// The machine address of the L2 table that maps [`VIRT_BASE`]'s 1 GiB:
/// found through our L4 and L3, which the initial mapping shows (read
/// only) at the virtual address of their pseudo-physical frame.
fn kernel_l2_maddr(pt_base: u64) -> Result<u64, &'static str> {
    let l4 = pt_base as *const u64;
    // SAFETY: `pt_base` is our L4, mapped by the builder.
    let l4e = unsafe { l4.add(to_usize((VIRT_BASE >> 39) & 511)).read_volatile() };
    let l3 = table_va(l4e)?;
    // SAFETY: `l3` is the L3 our L4 names, in the initial mapping.
    let l3e = unsafe { l3.add(to_usize((VIRT_BASE >> 30) & 511)).read_volatile() };
    if l3e & 1 == 0 {
        return Err("no L2 for the kernel's region");
    }
    Ok(l3e & ADDR_MASK)
}

/// Where the initial mapping shows the table `entry` points at.
fn table_va(entry: u64) -> Result<*const u64, &'static str> {
    if entry & 1 == 0 {
        return Err("no L3 for the kernel's region");
    }
    let m2p = guest_abi::arch::MACH2PHYS_VIRT_START + ((entry & ADDR_MASK) >> 12) * 8;
    // SAFETY: the hypervisor maps the M2P table read-only for every PV
    // guest; the entry is one of our frames.
    let pfn = unsafe { (m2p as *const u64).read_volatile() };
    Ok((VIRT_BASE + pfn * PAGE) as *const u64)
}

/// Zeroes our frame `frame`, which nothing refers to yet, through
/// `scratch_va` (left unmapped).
fn zero(scratch_va: u64, frame: u64) -> Result<(), &'static str> {
    map_at(scratch_va, (frame << 12) | PTE_RW)?;
    // SAFETY: `scratch_va` maps `frame`, ours and referenced by nothing
    // else yet.
    unsafe { core::ptr::write_bytes(scratch_va as *mut u8, 0, to_usize(PAGE)) };
    map_at(scratch_va, 0)
}

fn map_at(va: u64, pte: u64) -> Result<(), &'static str> {
    // SAFETY: `va` is a page of our padding that nothing refers into.
    let rc = unsafe { hypercall3(UPDATE_VA_MAPPING, va, pte, UVMF_INVLPG) };
    if rc == 0 {
        Ok(())
    } else {
        Err("update_va_mapping of the scratch page failed")
    }
}

fn update(reqs: &[MmuUpdate]) -> Result<(), &'static str> {
    // SAFETY: `reqs` is live; each request names an entry of our own
    // tables and a frame of ours.
    let rc = unsafe {
        hypercall4(
            MMU_UPDATE,
            reqs.as_ptr() as u64,
            reqs.len() as u64,
            0,
            u64::from(DOMID_SELF),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err("mmu_update of the window's tables failed")
    }
}
