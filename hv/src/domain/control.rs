//! Domains the toolstack makes and unmakes: `XEN_DOMCTL_createdomain`
//! (an empty PV domain), `XEN_DOMCTL_max_vcpus` (its vCPUs) and
//! `XEN_DOMCTL_destroydomain` (everything it holds goes back).
//!
//! A created domain has a shared-info page, event channels for as many
//! vCPUs as `createdomain` allowed, no memory, and no vCPU until
//! `max_vcpus` makes them (down: nothing runs one before a context is
//! set). Its id is the one asked for, or the next free one after the last
//! given (Xen's rover, from 1 and wrapping below `DOMID_FIRST_RESERVED`).
//!
//! Destruction: the domain is marked dying and paused until none of its
//! vCPUs is on a CPU; its vCPUs let go of their base page tables; the
//! frames the frame table says it owns are let go a stretch of the table
//! per call, a pinned table losing its pin first (so its tables and the
//! frames they map follow; a frame something still refers to goes with
//! its last reference), and when the whole table is done it leaves the
//! table, the scheduler and every CPU's timer queue; its vCPUs (descriptor-table windows, XSAVE
//! areas, GDT frames), event channels and the references hv holds on its
//! shared-info page go with the last counted reference to it, and that
//! page back to the allocator with them; dom0 gets `VIRQ_DOM_EXC`, as
//! from Xen's `domain_kill`. Its channels to other domains are closed
//! before it leaves the table (their ends go back to unbound), and its
//! mappings of other domains' grants give their uses back at once (Xen's
//! `gnttab_release_mappings`: the granters may end those grants).
//! Linear page tables need no forced invalidation (Xen's
//! `relinquish_memory` has one): a table that maps itself holds nothing
//! through that entry, and since no table may both hold linear entries
//! and be used as one (`hv::pt`), their references form no cycle; hv
//! never leaves a table partly validated either.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU16, Ordering};

use guest_abi::errno::Errno;
use guest_abi::xen::DOMID_FIRST_RESERVED;

use super::{DomId, Domain, DomainConfig, DomainState, Vcpu, VcpuId, TABLE, TABLE_MAX};
use crate::mm::{self, VcpuInfoRef, WritableRef};

/// The last id `createdomain` chose by itself (Xen's `rover`).
static ROVER: AtomicU16 = AtomicU16::new(0);

/// Frames of the frame table a dying domain's are looked for in per
/// `destroydomain` call before it answers with a continuation (a load
/// each: some tens of microseconds).
const SCAN_BATCH: u64 = 32768;

/// A checked `createdomain` request.
#[derive(Debug, Clone, Copy)]
pub struct NewDomain {
    /// 1 to [`super::MAX_VCPUS`].
    pub max_vcpus: u32,
    pub max_evtchn_port: u32,
    pub max_grant_frames: u32,
    pub max_maptrack_frames: u32,
    /// Highest grant-table version (`grant_opts`).
    pub max_grant_version: u32,
    pub handle: [u8; 16],
}

/// The id `createdomain` gives: `wanted` if it is an ordinary id (but
/// not 0), `-EEXIST` if that is taken; otherwise the next free id after
/// the last one chosen so (`-ENOMEM` if none is). Chosen before the
/// request is checked, as Xen does, so a refused request still moves the
/// rover.
pub fn choose_id(wanted: u16) -> Result<DomId, Errno> {
    let table = TABLE.lock();
    let id = if wanted > 0 && wanted < DOMID_FIRST_RESERVED {
        if !is_free(&table, wanted) {
            return Err(Errno::EEXIST);
        }
        wanted
    } else {
        let id = hv::domctl::next_id(ROVER.load(Ordering::Relaxed), |id| is_free(&table, id))
            .ok_or(Errno::ENOMEM)?;
        ROVER.store(id, Ordering::Relaxed);
        id
    };
    DomId::try_new(id).map_err(|_| Errno::EINVAL)
}

fn is_free(table: &[Option<Arc<Domain>>], id: u16) -> bool {
    id != 0 && usize::from(id) < TABLE_MAX && table.get(usize::from(id)).is_none_or(Option::is_none)
}

/// Creates an empty PV domain with id `id` ([`choose_id`]; `-EEXIST` if
/// it was taken since), paused once by its controller.
pub fn create(id: DomId, new: &NewDomain) -> Result<(), Errno> {
    let shared = mm::alloc_zeroed_frame().ok_or(Errno::ENOMEM)?;
    let mut table = TABLE.lock();
    if !is_free(&table, id.get()) {
        return Err(Errno::EEXIST);
    }
    let dom = build(id, shared, new)?;
    let i = usize::from(id.get());
    if table.len() <= i {
        table.resize_with(i + 1, || None);
    }
    if let Some(slot) = table.get_mut(i) {
        *slot = Some(Arc::new(dom));
    }
    Ok(())
}

/// The domain itself: its shared-info page (held writable by hv for the
/// domain's life, as the boot builder holds dom0's), each vCPU's time in
/// it, its event channels.
fn build(id: DomId, shared: mm::OwnedFrame, new: &NewDomain) -> Result<Domain, Errno> {
    let owner = id.get();
    let shared_info = mm::with_frame_table(|ft| {
        let mfn = shared.assign(ft, owner, u64::MAX)?;
        let held = WritableRef::take_in(ft, mfn, owner)?;
        ft.mark_special(mfn, owner)?;
        Ok::<_, hv::page_info::PageError>(held)
    })
    .ok_or(Errno::ENOMEM)?
    .map_err(|_| Errno::ENOMEM)?;
    for v in 0..u64::from(new.max_vcpus) {
        crate::time::fill(&shared_info, v).map_err(|_| Errno::ENOMEM)?;
    }
    let events_shared = WritableRef::take(shared_info.mfn(), owner).map_err(|_| Errno::ENOMEM)?;
    let events = crate::event::Events::new(id, new.max_vcpus, new.max_evtchn_port, events_shared)
        .map_err(|_| Errno::ENOMEM)?;
    let config = DomainConfig {
        id,
        privileged: false,
        initial: false,
        shared_info,
        vm_assist: 0,
    };
    let mut state = DomainState::new(Vec::new(), 0, new.handle);
    state.controller_pauses = 1;
    let grants = crate::grant::Grants::new(
        owner,
        new.max_grant_frames,
        new.max_maptrack_frames,
        new.max_grant_version,
    )
    .map_err(|_| Errno::ENOMEM)?;
    Ok(Domain::without_vcpus(
        config,
        state,
        new.max_vcpus,
        events,
        grants,
    ))
}

/// Makes `d`'s vCPUs (`XEN_DOMCTL_max_vcpus`), down, each with its
/// `vcpu_info` slot in shared_info; nothing if it has them. `-ENOMEM` if
/// hv has no room for one (no descriptor-table window or XSAVE area left).
pub fn make_vcpus(d: &Domain) -> Result<(), Errno> {
    let owner = d.id.get();
    let mfn = d.shared_info.mfn();
    let made = d.make_vcpus(|id: VcpuId| -> Option<Vcpu> {
        let frame = WritableRef::take(mfn, owner).ok()?;
        let info = VcpuInfoRef::new(frame, u64::from(id.get()) * 64).ok()?;
        Vcpu::new_down(id, info)
    });
    if !made {
        return Err(Errno::ENOMEM);
    }
    // Their scheduling records, paused until the domain's pause ends.
    crate::sched::add_domain(d, true);
    super::repause(d, |_| ());
    Ok(())
}

/// Lets go of the page tables `d`'s vCPUs hold as their bases (Xen's
/// `vcpu_destroy_pagetables`); a vCPU whose bases are gone has none left
/// to let go. The domain is paused, so none runs.
fn release_vcpu_tables(d: &Domain) {
    let owner = d.id.get();
    for i in 0..d.max_vcpus() {
        let bases = d.with_vcpu(VcpuId::new(i), |v| {
            let bases = [v.kernel_cr3 >> 12, v.user_cr3 >> 12];
            (v.kernel_cr3, v.user_cr3, v.cr3) = (0, 0, 0);
            bases
        });
        for mfn in bases.into_iter().flatten().filter(|&m| m != 0) {
            crate::hypercall::put_base_table(owner, d.privileged, mfn);
        }
    }
}

/// How far a `destroydomain` got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destroy {
    /// The domain is gone from the table.
    Done,
    /// Frames are left: call again (Xen's `-ERESTART`, a continuation).
    More,
}

/// One step of destroying `d` (not the caller's own domain: `-EINVAL`).
/// Call with no lock held.
pub fn destroy(d: Arc<Domain>) -> Result<Destroy, Errno> {
    if d.id == super::current_id() {
        return Err(Errno::EINVAL);
    }
    let owner = d.id.get();
    // Stopped first, off every CPU (Xen's `domain_kill` pauses it).
    let (from, _) = super::repause(&d, |s| {
        s.dying = true;
        s.p2m.clear();
        s.relinquished_to
    });
    crate::sched::pause_sync(&d);
    // Every step: a context set while the destruction began (the domctl
    // then takes it back) holds nothing past the last one.
    release_vcpu_tables(&d);
    // Its mappings of other domains' grants give them back.
    crate::grant::release_mappings(&d);
    // Every frame it owns, however it got it (built, populated, exchanged),
    // is found by the frame table's owner, a stretch of the table per call.
    let end = mm::nr_frames();
    let to = from.saturating_add(SCAN_BATCH).min(end);
    d.with_state(|s| s.relinquished_to = to);
    let more = to < end;
    if !more {
        // Its channels close first, and no port is given out or bound to
        // it after: the other ends go back to unbound, as on Xen.
        crate::event::close_all(&d);
        // Taken out of the table first, so no new reference to it is made;
        // its shared-info page goes with hv's last reference to it.
        let mut t = TABLE.lock();
        if let Some(slot) = t.get_mut(usize::from(owner)) {
            if slot.as_ref().is_some_and(|x| Arc::ptr_eq(x, &d)) {
                *slot = None;
            }
        }
    }
    if !more {
        crate::sched::remove_domain(d.id, d.max_vcpus());
        crate::timer::forget_domain(d.id);
    }
    let shared = d.shared_info.mfn();
    // One pass over the stretch: a pinned table loses its pin first (a
    // table no one else uses then lets go of the tables and frames it
    // maps, as Xen's `relinquish_memory`), then each frame its
    // allocation reference.
    mm::with_page_tables(owner, false, |t| {
        for mfn in from..to {
            let Some(p) = t.frames.get(mfn).filter(|p| p.owner == Some(owner)) else {
                continue;
            };
            if mfn == shared {
                continue;
            }
            if p.pinned {
                let _ = t.unpin(mfn);
            }
            let _ = t.frames.relinquish(mfn, owner);
        }
        if !more {
            let _ = t.frames.relinquish(shared, owner);
        }
    });
    // The domain's vCPUs, event channels and references go here, unless
    // someone still holds it (then with their reference).
    drop(d);
    mm::collect_freed(super::frame_freed);
    if !more {
        // Dead: the hardware domain hears of it (Xen's `domain_kill`).
        if let Some(d0) = super::lookup(DomId::DOM0) {
            crate::event::send_global_virq(&d0, guest_abi::xen::VIRQ_DOM_EXC);
        }
    }
    Ok(if more { Destroy::More } else { Destroy::Done })
}
