//! `memory_op` for PV domains: reservation queries and changes, the M2P's
//! location.
//!
//! Reservation changes are per extent and report how many extents were
//! done (Xen's convention: the result is a count, not an errno, once the
//! arguments were readable). A PV domain names machine frames directly:
//! `increase_reservation` and `populate_physmap` hand back MFNs (and
//! `populate_physmap` records the guest's pfn in the M2P), and
//! `decrease_reservation` takes MFNs. Giving a frame back drops the
//! domain's allocation reference, as Xen's `guest_remove_page` does: a
//! frame still in use (mapped, pinned, a descriptor page, held by hv)
//! stays the domain's, and in its reservation, until its last reference
//! goes; pins are left alone (XSA-252). The first frame the domain does
//! not own ends the call (an extent's earlier frames stay given back, and
//! the extent is not counted). `exchange` swaps frames for others with
//! Xen's hardened checks (XSA-212): every argument is validated before
//! anything changes, progress is kept in `nr_exchanged`, and input frames
//! must be unused and not given back. Calls that concern translated
//! guests (`add_to_physmap`) are refused as Xen refuses them for PV
//! (-EACCES). Reservation calls may name another domain when the caller
//! is privileged (a toolstack giving a domain it builds its memory, as
//! Xen's `XSM_TARGET` allows); the queries still answer for the caller
//! only (-ESRCH for any other). A preempted call keeps its restart point in the bits
//! of `cmd` above [`MEMOP_EXTENT_SHIFT`] (reservations) or in the guest's
//! `nr_exchanged` (`exchange`).
//!
//! Frames freed since (by whichever put dropped a last reference: an
//! unmap, an unpin, a new LDT or GDT) are collected at the start of every
//! `memory_op` and after a decrease ([`collect_freed`]): back to the
//! allocator after a TLB flush, out of their domains' reservations. So a
//! domain sees its reservation lowered by the time it can ask, and an
//! increase finds the frames free again; until then they are no one's and
//! cannot be referenced.

use guest_abi::errno::Errno;
use guest_abi::memory::*;

use super::{read_arg as read, write_arg as write, HcResult, Outcome, Privileged};
use crate::domain;
use crate::guest_mem::{guest_field, GuestPtr, GuestSlice, Loaded};
use crate::mm::{self, PAGE_SIZE};

use guest_abi::xen::DOMID_SELF;
/// Largest extent a domain may ask for at once: 2^12 pages for the
/// hardware domain, 2^9 for others (Xen 4.17's limits).
const MAX_ORDER_HWDOM: u32 = 12;
const MAX_ORDER_DOMU: u32 = 9;
/// `XENMEM_machphys_mapping` for a 64-bit PV guest.
const MACH2PHYS_VIRT_START: u64 = 0xffff_8000_0000_0000;
const MACH2PHYS_VIRT_END: u64 = 0xffff_8040_0000_0000;
/// Extents handled per call before the call is continued.
const BATCH: u64 = 256;
/// Offset of `arch.max_pfn` in `shared_info`.
const SHARED_INFO_MAX_PFN: u64 = core::mem::offset_of!(guest_abi::xen::SharedInfo, arch) as u64;

/// `cmd` is a C `unsigned long`: the restart point above
/// [`MEMOP_EXTENT_SHIFT`] uses the whole register, as on Xen.
pub fn memory_op(cmd: u64, arg: u64) -> Outcome {
    collect_freed();
    let op = crate::hypercall::arg32(cmd) & MEMOP_CMD_MASK;
    let start_extent = cmd >> MEMOP_EXTENT_SHIFT;
    let r = match op {
        XENMEM_INCREASE_RESERVATION | XENMEM_DECREASE_RESERVATION | XENMEM_POPULATE_PHYSMAP => {
            match reservation(op, start_extent, arg) {
                Ok(Progress::Done(n)) => Ok(n),
                Ok(Progress::Continue(next)) => {
                    return Outcome::again([(next << MEMOP_EXTENT_SHIFT) | u64::from(op)]);
                }
                Err(e) => Err(e),
            }
        }
        XENMEM_MAXIMUM_RAM_PAGE if start_extent != 0 => Err(Errno::EINVAL),
        XENMEM_MAXIMUM_RAM_PAGE => Ok(mm::max_page()),
        XENMEM_CURRENT_RESERVATION | XENMEM_MAXIMUM_RESERVATION | XENMEM_MAXIMUM_GPFN => {
            query(op, arg)
        }
        XENMEM_MACHPHYS_MFN_LIST => machphys_mfn_list(arg),
        XENMEM_MACHINE_MEMORY_MAP => match Privileged::check() {
            Some(privileged) => machine_memory_map(privileged, arg),
            None => Err(Errno::EPERM),
        },
        XENMEM_ADD_TO_PHYSMAP => {
            // struct xen_add_to_physmap: read, domain looked up, then refused
            // because a PV domain has no physmap to add to.
            read::<XenAddToPhysmap>(arg)
                .and_then(|a| check_self(a.domid))
                .and(Err(Errno::EACCES))
        }
        XENMEM_EXCHANGE => match exchange(arg) {
            Some(r) => r,
            // Progress is in the guest's `nr_exchanged`: re-issue as is.
            None => return Outcome::again([cmd]),
        },
        XENMEM_MACHPHYS_MAPPING => {
            // The hardware domain sees the real extent of machine memory.
            let initial = domain::with_current(|d| d.dom.initial);
            let max_mfn = if initial {
                mm::max_page().saturating_sub(1)
            } else {
                (256 << 30) / 8 - 1
            };
            let out = XenMachphysMapping {
                v_start: MACH2PHYS_VIRT_START,
                v_end: MACH2PHYS_VIRT_END,
                max_mfn,
            };
            write(arg, &out).map(|()| 0)
        }
        _ => Err(Errno::ENOSYS),
    };
    r.into()
}

/// The domain an argument names: only the caller itself, for now.
fn check_self(domid: u16) -> Result<(), Errno> {
    if domid == DOMID_SELF || domid == domain::current_id().get() {
        Ok(())
    } else {
        Err(Errno::ESRCH)
    }
}

fn query(op: u32, arg: u64) -> HcResult {
    check_self(read::<XenMemoryDomain>(arg)?.domid)?;
    Ok(domain::with_current(|d| match op {
        XENMEM_CURRENT_RESERVATION => d.tot_pages,
        XENMEM_MAXIMUM_RESERVATION => d.max_pages,
        // A PV guest's pseudo-physical extent is what it says it is, in
        // shared_info.arch.max_pfn (0 counts as 1), as on Xen.
        _ => {
            let at = d.dom.shared_info.mfn() * PAGE_SIZE + SHARED_INFO_MAX_PFN;
            mm::frame_access::read_u64(at).unwrap_or(0).max(1) - 1
        }
    }))
}

fn machphys_mfn_list(arg: u64) -> HcResult {
    let p = GuestPtr::<XenMachphysMfnList>::new(arg)?;
    let req = p.read(&Loaded)?;
    let list = GuestSlice::<u64>::per_element(req.extent_start, u64::from(req.max_extents));
    let mut n = 0u64;
    for mfn in mm::m2p::chunk_mfns().take(usize::try_from(req.max_extents).unwrap_or(usize::MAX)) {
        list.set(&Loaded, n, &mfn)?;
        n += 1;
    }
    let nr = (n & 0xffff_ffff) as u32;
    guest_field!(p, XenMachphysMfnList, nr_extents).write(&Loaded, &nr)?;
    Ok(0)
}

enum Progress {
    Done(u64),
    Continue(u64),
}

/// As on Xen, a reservation call answers with the number of extents done:
/// an unreadable argument, an unknown domain or a bad extent list end the
/// call with what was done so far, not with an errno.
fn reservation(op: u32, start: u64, arg: u64) -> Result<Progress, Errno> {
    let progress = reservation_inner(op, start, arg).unwrap_or(Progress::Done(start));
    if op == XENMEM_DECREASE_RESERVATION {
        collect_freed();
    }
    Ok(progress)
}

/// Returns the frames domains freed to the allocator and lowers their
/// reservations (`mm::collect_freed`). Called with no lock held.
fn collect_freed() {
    mm::collect_freed(domain::frame_freed);
}

fn reservation_inner(op: u32, start: u64, arg: u64) -> Result<Progress, Errno> {
    let XenMemoryReservation {
        extent_start,
        nr_extents: nr,
        extent_order: order,
        mem_flags: flags,
        domid,
        ..
    } = read(arg)?;
    let target = Target::of(domid)?;
    // Checked element by element, as the extents are reached.
    let list = GuestSlice::<u64>::per_element(extent_start, nr);
    // Continuations keep the extent index in the upper bits of cmd.
    if nr > (u64::MAX >> 6) || start > nr {
        return Ok(Progress::Done(start));
    }
    // Address-width and NUMA hints are accepted and ignored; other flags
    // are refused as Xen refuses unknown ones.
    if flags & !0x0000_ffff != 0 {
        return Ok(Progress::Done(start));
    }
    let initial = domain::with_current(|d| d.dom.initial);
    let id = target.id();
    let max_order = if initial {
        MAX_ORDER_HWDOM
    } else {
        MAX_ORDER_DOMU
    };
    if order > max_order {
        return Ok(Progress::Done(start));
    }
    let pages = 1u64 << order;
    let mut i = start;
    while i < nr {
        if i - start == BATCH {
            return Ok(Progress::Continue(i));
        }
        // An extent past the top of the address space is unreadable.
        let Ok(slot) = list.at(i) else {
            break;
        };
        let ok = match op {
            XENMEM_DECREASE_RESERVATION => slot
                .read(&Loaded)
                .is_ok_and(|mfn| give_back(id, mfn, pages)),
            _ => {
                let gpfn = if op == XENMEM_POPULATE_PHYSMAP {
                    match slot.read(&Loaded) {
                        Ok(g) => Some(g),
                        Err(_) => break,
                    }
                } else {
                    None
                };
                // The slot must be writable before a frame is handed out.
                let cr3 = domain::with_current(|d| d.vcpu.cr3);
                if crate::guest_mem::check_writable(cr3, slot.addr(), size_of::<u64>()).is_err() {
                    break;
                }
                match take(&target, pages, gpfn) {
                    Some(mfn) => slot.write(&Loaded, &mfn).is_ok(),
                    None => false,
                }
            }
        };
        if !ok {
            break;
        }
        i += 1;
    }
    Ok(Progress::Done(i))
}

/// The domain a reservation call works on: the caller, or another domain
/// when a privileged caller names it (Xen's `XSM_TARGET` check; a
/// toolstack gives a domain it builds its memory so). Anything else ends
/// the call with nothing done, as on Xen.
enum Target {
    Caller(u16),
    Other(alloc::sync::Arc<domain::Domain>),
}

impl Target {
    fn of(domid: u16) -> Result<Self, Errno> {
        let me = domain::current_id();
        if domid == DOMID_SELF || domid == me.get() {
            return Ok(Self::Caller(me.get()));
        }
        let other = domain::DomId::try_new(domid)
            .ok()
            .and_then(domain::lookup)
            .ok_or(Errno::ESRCH)?;
        Privileged::check().ok_or(Errno::EPERM)?;
        Ok(Self::Other(other))
    }

    fn id(&self) -> u16 {
        match self {
            Self::Caller(id) => *id,
            Self::Other(d) => d.id.get(),
        }
    }

    /// Runs `f` on the domain's state, locked.
    fn with_state<R>(&self, f: impl FnOnce(&mut domain::DomainState) -> R) -> R {
        match self {
            Self::Caller(_) => domain::with_current(|d| f(d)),
            Self::Other(d) => d.with_state(f),
        }
    }
}

/// Allocates `pages` contiguous zeroed frames to `target` (within its
/// maximum, and not while it is being destroyed); returns the first MFN.
fn take(target: &Target, pages: u64, gpfn: Option<u64>) -> Option<u64> {
    let id = target.id();
    // The quota check and the count's increase are one step, undone below
    // if no frames come of it.
    let unreserve = || target.with_state(|d| d.tot_pages = d.tot_pages.saturating_sub(pages));
    let reserved = target.with_state(|d| {
        if d.dying || pages > d.max_pages.saturating_sub(d.tot_pages) {
            return false;
        }
        d.tot_pages += pages;
        true
    });
    if !reserved {
        return None;
    }
    // Xen's `gpfn + j` (unsigned long: a guest's wrap is its own).
    let pfn = |j: u64| gpfn.map_or(u64::MAX, |g| g.wrapping_add(j));
    // Zeroed while hv's, then given in one frame-table step; refused, the
    // frames go back to the allocator as the handle drops.
    let assigned = mm::alloc_contiguous(pages, pages)
        .filter(|frames| frames.fill(0).is_ok())
        .and_then(|frames| mm::with_frame_table(|ft| frames.assign(ft, id, pfn).ok()))
        .flatten();
    let Some(first) = assigned else {
        unreserve();
        return None;
    };
    for j in 0..pages {
        mm::m2p::set(first + j, pfn(j));
    }
    // A destruction that began meanwhile may have looked past these
    // frames: they go back at once.
    if target.with_state(|d| d.dying) {
        mm::with_frame_table(|ft| {
            for j in 0..pages {
                let _ = ft.relinquish(first + j, id);
            }
        });
        return None;
    }
    Some(first)
}

/// Gives back the `pages` frames from `mfn` on, one frame-table step
/// each (Xen's `guest_remove_page`), as long as the domain owns them;
/// whether it owned them all. A frame in use is freed with its last
/// reference; a page hv shares with the domain (shared_info) stays where
/// it is (as on Xen, handing it back succeeds and changes nothing: it was
/// never counted in the reservation, and hv keeps writing it).
fn give_back(id: u16, mfn: u64, pages: u64) -> bool {
    mm::with_frame_table(|ft| {
        (0..pages).all(|j| {
            mfn.checked_add(j)
                .is_some_and(|m| ft.give_back(m, id).is_ok())
        })
    }) == Some(true)
}

/// `XENMEM_machine_memory_map` (the hardware domain): the firmware's map.
fn machine_memory_map(_: Privileged, arg: u64) -> HcResult {
    let p = GuestPtr::<XenMemoryMap>::new(arg)?;
    let map = p.read(&Loaded)?;
    let buffer = GuestSlice::<E820Entry>::per_element(map.buffer, u64::from(map.nr_entries));
    let mut n = 0u64;
    for &(addr, size, ty) in mm::e820()
        .iter()
        .take(usize::try_from(map.nr_entries).unwrap_or(usize::MAX))
    {
        buffer.set(&Loaded, n, &E820Entry::new(addr, size, ty))?;
        n += 1;
    }
    let nr = (n & 0xffff_ffff) as u32;
    guest_field!(p, XenMemoryMap, nr_entries).write(&Loaded, &nr)?;
    Ok(0)
}

/// `XENMEM_exchange`: gives the domain fresh frames for frames it hands
/// back, in chunks of the larger of the two extent orders. All checks come
/// first (XSA-212); then each chunk is done completely or not at all.
/// Returns `None` when the call is to be re-issued (progress written back
/// to `nr_exchanged`), every [`BATCH`] chunks.
fn exchange(arg: u64) -> Option<HcResult> {
    match exchange_inner(arg) {
        Ok(Progress::Done(r)) => Some(Ok(r)),
        Ok(Progress::Continue(_)) => None,
        Err(e) => Some(Err(e)),
    }
}

fn exchange_inner(arg: u64) -> Result<Progress, Errno> {
    let p = GuestPtr::<XenMemoryExchange>::new(arg)?;
    let XenMemoryExchange {
        in_: inp,
        out,
        nr_exchanged: mut done,
    } = p.read(&Loaded)?;
    let nr_exchanged = guest_field!(p, XenMemoryExchange, nr_exchanged);
    let (id, initial) = domain::with_current(|d| (d.dom.id.get(), d.dom.initial));
    let max_order = if initial {
        MAX_ORDER_HWDOM
    } else {
        MAX_ORDER_DOMU
    };
    if inp.extent_order > max_order || out.extent_order > max_order {
        return Err(Errno::EPERM);
    }
    if done > inp.nr_extents || inp.domid != out.domid {
        return Err(Errno::EINVAL);
    }
    check_self(inp.domid)?;
    // Total sizes must match and must not overflow.
    let pages = |r: &XenMemoryReservation| {
        r.nr_extents
            .checked_shl(r.extent_order)
            .filter(|v| v >> r.extent_order == r.nr_extents)
    };
    match (pages(&inp), pages(&out)) {
        (Some(a), Some(b)) if a == b => {}
        _ => return Err(Errno::EINVAL),
    }
    let chunk_order = inp.extent_order.max(out.extent_order);
    let in_per_chunk = 1u64 << (chunk_order - inp.extent_order);
    let out_per_chunk = 1u64 << (chunk_order - out.extent_order);
    // Progress counts whole chunks, as on Xen (which rounds it down).
    done -= done % in_per_chunk;
    // Both lists must be ranges of guest addresses (Xen's
    // guest_handle_okay: an address check; faults come per element).
    let in_list = GuestSlice::<u64>::new(inp.extent_start, inp.nr_extents)?;
    let out_list = GuestSlice::<u64>::new(out.extent_start, out.nr_extents)?;
    let mut result = Ok(0);
    let mut chunks = 0u64;
    while done < inp.nr_extents {
        if chunks == BATCH {
            nr_exchanged.write(&Loaded, &done)?;
            return Ok(Progress::Continue(done));
        }
        chunks += 1;
        // Read and check the chunk's input extents.
        let mut mfns = alloc::vec::Vec::new();
        for k in 0..in_per_chunk {
            match in_list.get(&Loaded, done + k) {
                Ok(mfn) => mfns.push(mfn),
                Err(e) => {
                    // Progress so far still goes back to the guest, below.
                    result = Err(e.into());
                    break;
                }
            }
        }
        if result.is_err() {
            break;
        }
        let pages_in = 1u64 << inp.extent_order;
        // No frame may be handed back twice (repeated or overlapping
        // extents in one chunk).
        let mut sorted = mfns.clone();
        sorted.sort_unstable();
        let disjoint = sorted
            .windows(2)
            .all(|w| matches!(w, [a, b] if b - a >= pages_in));
        // Refused input is -EINVAL before any allocation can fail, as on
        // Xen; the binding check is the release below.
        let usable = mm::with_frame_table(|ft| ft.check_unused(&mfns, pages_in, id).is_ok());
        if !disjoint || usable != Some(true) {
            result = Err(Errno::EINVAL);
            break;
        }
        // Allocate the chunk's output extents before giving anything back.
        let pages_out = 1u64 << out.extent_order;
        let mut fresh = alloc::vec::Vec::new();
        for _ in 0..out_per_chunk {
            match mm::alloc_contiguous(pages_out, pages_out) {
                Some(frames) => fresh.push(frames),
                None => break,
            }
        }
        // Refused from here on, the fresh frames go back to the allocator
        // as their handles drop.
        if fresh.len() as u64 != out_per_chunk {
            result = Err(Errno::ENOMEM);
            break;
        }
        // The input extents are checked (owned, unreferenced) and taken
        // back in one frame-table operation, all or none.
        let released = mm::with_frame_table(|ft| {
            mm::frame_access::release_to_allocator(ft, &mfns, pages_in, id).is_ok()
        });
        if released != Some(true) {
            result = Err(Errno::EINVAL);
            break;
        }
        let base = done / in_per_chunk * out_per_chunk;
        for (k, frames) in fresh.into_iter().enumerate() {
            let first = frames.first();
            let _ = frames.fill(0);
            // Fresh frames are nobody's: the assignment cannot be refused
            // (were it, the frames would go back to the allocator).
            let _ = mm::with_frame_table(|ft| frames.assign(ft, id, |_| u64::MAX).is_ok());
            // The frames are the domain's now whatever happens: a list the
            // guest cannot receive them in is its -EFAULT, and the chunk
            // still counts in nr_exchanged.
            if let Err(e) = out_list.set(&Loaded, base + k as u64, &first) {
                result = Err(e.into());
            }
        }
        done += in_per_chunk;
        if result.is_err() {
            break;
        }
    }
    nr_exchanged.write(&Loaded, &done)?;
    result.map(Progress::Done)
}
