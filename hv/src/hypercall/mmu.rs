//! The PV MMU hypercalls: `mmu_update`, `mmuext_op`, `update_va_mapping`.
//!
//! Guests never write their page tables directly (the frames are mapped
//! read-only); every change comes here, is validated by the page-table rules
//! engine (`hv::pt`), and either happens completely or not at all. Batches
//! stop at the first bad element and report how many were done through
//! `pdone`, and are preempted every [`BATCH`] elements with Xen's encoding
//! (the count re-issued with `MMU_UPDATE_PREEMPTED`, progress accumulated in
//! `*pdone`), so a guest-given count never holds the CPU unboundedly.
//!
//! TLB coherence (issue #11): no access through the guest's mappings, by
//! hv on the guest's behalf or by the guest, may use a translation the
//! frame table no longer allows: a cached writable translation to a frame
//! that has since become a page table (the frame's last writable mapping
//! removed, then the frame typed, maybe in the same batch), or any
//! translation to a frame the domain gave back. Where the flush obligation
//! is recorded decides which orders are safe, and it is recorded *per
//! CPU*:
//!
//! - the page-table rules report what each operation owes
//!   (`hv::pt::PageTables::flush_owed`: a present entry replaced, a
//!   table's last type reference dropped), and `mm::with_page_tables`
//!   makes it this CPU's debt (`arch::x86_64::mm::owe_flush`) whichever
//!   hypercall ran the operation;
//! - the debt is paid by one full flush before the CPU's next access
//!   through guest mappings (`uaccess`, under every guest copy), before a
//!   frame goes back to the allocator, and on the way back to the guest
//!   from the calls that may owe ([`may_owe_flush`]; a debug build checks
//!   at every other hypercall's return that nothing is owed).
//!
//! So a store of `*pdone` at a preemption point or at the end of a batch
//! (guests `tlb_pdone`, `tlb_preempt`), a multicall's result store or a
//! later entry's output (`tlb_multicall`), a bounce frame or any future
//! caller's store comes after the flushes the preceding work owes, without
//! each of them knowing what came before, and so does hv's reading of a
//! batch's next requests (which a per-batch flag, flushed only before the
//! batch's stores, left open: a cached upper-level entry could lead the
//! read through a table the batch had just released and rewritten; QEMU
//! caches no such entries, so the host TLB model shows it, not a guest).
//! The per-CPU debt covers this CPU. Other CPUs that ran the domain may
//! cache the old translations too: for them hv keeps Xen's per-frame
//! TLB-flush timestamp (`hv::page_info`, `arch::x86_64::mm`), checked
//! when the frame changes type or goes back to the allocator, so no page
//! table update waits for another CPU. The debt flushes more often than
//! Xen (after any removed or changed present translation, where Xen
//! waits until a frame changes type), but only then: an entry written
//! over a not-present one, or with its own value, owes nothing. The
//! host-tested TLB model (`hv/logic/pt/tests/tlb_model.rs`) checks this
//! rule against random operation sequences.
//!
//! No lock covers the frame table: the operations work on each frame's
//! atomic words, and an update holds only the updated table's lock bit
//! (`hv::page_info`), so vCPUs of a domain on several CPUs update their
//! page tables at once.
//!
//! hv flushes where the guest asks (`UVMF_TLB_FLUSH`, `UVMF_INVLPG`, the
//! `MMUEXT_*` flushes) and on a new base table, as Xen does.
//!
//! `MMUEXT_SET_LDT` records the LDT and maps nothing: its pages are typed
//! and mapped when the CPU first reads them (see `domain::ldt`), so the call
//! succeeds whatever the pages hold, as on Xen.

use guest_abi::errno::Errno;
use guest_abi::xen::{MmuUpdate, MmuextOp};
use hv::page_info::PageType;
use hv::pt::{self, PtError};
use hv::pt_walk;
use hv::smp::CpuMask;

use guest_abi::hypercall::{MMUEXT_OP, MMU_UPDATE};

use super::{refused, HcResult, Outcome, Privileged};
use crate::arch::x86_64::mm as tlb;
use crate::domain;
use crate::guest_mem::{addr_ok, GuestPtr, GuestSlice, GuestValue, Loaded};
use crate::mm::{
    self, frame_access as phys, page_table, FrameWrite, Tables, WritableRef, PAGE_SIZE,
};

/// Elements handled per call before the batch is preempted and resumed.
const BATCH: u64 = 256;
/// Bit of `count` marking a resumed batch.
const PREEMPTED: u64 = 0x8000_0000;
use guest_abi::xen::DOMID_SELF;

/// What the running domain is, for the checks below.
struct Current {
    /// The domain's id as the frame table records owners.
    id: u16,
    privileged: Option<Privileged>,
    /// Whose frames the batch's L1 entries map and whose tables it pins
    /// (`foreigndom`): the domain itself unless a privileged caller names
    /// another.
    pg_owner: u16,
}

impl Current {
    /// Whether the domain may map I/O memory (hv's privileged domain).
    fn io_caps(&self) -> bool {
        self.privileged.is_some()
    }
}

/// The domain's fixed fields, through the current-domain loan: no vCPU
/// lock for what never changes.
#[inline(always)]
fn current() -> Current {
    let cur = domain::current();
    let d = cur.domain();
    Current {
        id: d.id.get(),
        privileged: Privileged::of(d),
        pg_owner: d.id.get(),
    }
}

fn err(e: PtError) -> Errno {
    e.errno()
}

/// `foreigndom`'s low half (Xen's `get_pg_owner`, then its XSM check):
/// `DOMID_SELF` is the caller; its own id, a domain that does not exist,
/// `DOMID_IO` and `DOMID_XEN` are `-ESRCH` (hv gives no domain I/O or Xen
/// pages to map this way); another domain is the page owner for a
/// privileged caller (`-EPERM` otherwise).
fn check_pg_owner(pg: u16) -> Result<Option<u16>, Errno> {
    if pg == DOMID_SELF {
        return Ok(None);
    }
    if pg == domain::current_id().get() {
        return Err(Errno::ESRCH);
    }
    let other = domain::DomId::try_new(pg)
        .ok()
        .and_then(domain::lookup)
        .ok_or(Errno::ESRCH)?;
    if Privileged::check().is_none() {
        return Err(Errno::EPERM);
    }
    Ok(Some(other.id.get()))
}

/// `mmu_update`'s `foreigndom`: the page-table owner in the high half (0
/// or the caller's id + 1: the caller; another domain's id + 1: that
/// domain's tables, for a privileged caller, as Xen's "PFD" updates a
/// toolstack makes to a domain it builds: `-ESRCH` if there is no such
/// domain, `-EINVAL` if it has no vCPU 0, `-EPERM` unprivileged), then
/// the page owner in the low half ([`check_pg_owner`]).
fn check_foreigndom(foreigndom: u32) -> Result<Foreign, Errno> {
    if foreigndom == u32::from(DOMID_SELF) {
        // The common case, decided first.
        return Ok(Foreign::default());
    }
    let pt = foreigndom >> 16;
    let me = domain::current_id().get();
    let pt_owner = if pt == 0 || pt == u32::from(me) + 1 {
        None
    } else {
        let id = u16::try_from(pt - 1).map_err(|_| Errno::ESRCH)?;
        let d = domain::DomId::try_new(id)
            .ok()
            .and_then(domain::lookup)
            .ok_or(Errno::ESRCH)?;
        if d.max_vcpus() == 0 {
            return Err(Errno::EINVAL);
        }
        if Privileged::check().is_none() {
            return Err(Errno::EPERM);
        }
        Some(id)
    };
    let pg_owner = check_pg_owner(u16::try_from(foreigndom & 0xffff).unwrap_or(DOMID_SELF))?;
    Ok(Foreign { pg_owner, pt_owner })
}

/// The foreign domains a batch names (`None`: the caller). Not held: if
/// one dies meanwhile, the frame table refuses frames it no longer owns
/// and tables it no longer has, and a frame mapped before stays until
/// unmapped, as any.
#[derive(Debug, Clone, Copy, Default)]
struct Foreign {
    /// Whose frames the L1 entries map, whose tables are pinned.
    pg_owner: Option<u16>,
    /// Whose page tables `mmu_update` changes.
    pt_owner: Option<u16>,
}

/// Progress of a batch: elements done (including earlier calls of a
/// preempted batch), written back to `*pdone`.
struct Batch {
    done: u64,
    pdone: u64,
}

impl Batch {
    #[inline(always)]
    fn start(count: &mut u64, pdone: u64) -> Self {
        let mut done = 0;
        if *count & PREEMPTED != 0 {
            *count &= !PREEMPTED;
            done = resumed_progress(pdone);
        }
        Self { done, pdone }
    }

    /// Starts a batch call: progress so far, then Xen's argument checks
    /// (the foreign domain, and that the list is guest address space).
    #[inline(always)]
    fn open<T: GuestValue>(
        count: &mut u64,
        pdone: u64,
        foreign: impl FnOnce() -> Result<Foreign, Errno>,
        list: u64,
    ) -> Result<(Self, GuestSlice<T>, Foreign), Errno> {
        let batch = Self::start(count, pdone);
        let foreign = foreign()?;
        let list = GuestSlice::new(list, *count)?;
        Ok((batch, list, foreign))
    }

    /// Stores the progress. Through `Loaded`, which pays this CPU's TLB
    /// debt first: the batch's own updates may have left a stale
    /// translation to `pdone` (see the module documentation). Always
    /// inline, like `open` and `start`: out of line (LLVM's choice once
    /// the kernel grew) it cost `mmu_update_64` 34 instructions and the
    /// local flush 7.
    #[inline(always)]
    fn finish(&self) {
        if self.pdone != 0 {
            // `pdone` is an unsigned int; a fault here is the guest's loss.
            let done = (self.done & 0xffff_ffff) as u32;
            let _ = GuestPtr::<u32>::new(self.pdone).and_then(|p| p.write(&Loaded, &done));
        }
    }
}

/// The progress a resumed batch left in `*pdone` (0 if there is none to
/// read).
#[cold]
#[inline(never)]
fn resumed_progress(pdone: u64) -> u64 {
    if pdone == 0 {
        return 0;
    }
    GuestPtr::<u32>::new(pdone)
        .and_then(|p| p.read(&Loaded))
        .map_or(0, u64::from)
}

/// The batch hypercall again, with the elements from `next` on (Xen's
/// encoding: the count marked [`PREEMPTED`], progress in `*pdone`).
fn continue_batch<T: GuestValue>(list: GuestSlice<T>, next: u64) -> Outcome {
    // `next` is inside a list whose ends were checked: it cannot wrap.
    let rest = list.skip(next).unwrap_or(list);
    Outcome::again([rest.addr(), rest.len() | PREEMPTED])
}

/// Whether hypercall `nr` may leave this CPU a TLB debt: the calls here,
/// and `multicall`, which runs them (its table entry pays it before the
/// guest runs again; inside a multicall the next access pays it).
pub const fn may_owe_flush(number: u64) -> bool {
    use guest_abi::hypercall as nr;
    matches!(
        number,
        nr::MMU_UPDATE
            | nr::MMUEXT_OP
            | nr::UPDATE_VA_MAPPING
            | nr::UPDATE_VA_MAPPING_OTHERDOMAIN
            | nr::MULTICALL
    )
}

// ---------------------------------------------------------------------------
// mmu_update

#[inline(always)]
pub fn mmu_update(reqs: u64, count: u32, pdone: u64, foreigndom: u32) -> Outcome {
    let mut count = u64::from(count);
    update_batch(reqs, &mut count, pdone, foreigndom)
}

/// Requests copied in at a time: one guest page walk per chunk.
const CHUNK: usize = 16;

#[inline(always)]
fn update_batch(reqs: u64, count: &mut u64, pdone: u64, foreigndom: u32) -> Outcome {
    let checked = || check_foreigndom(foreigndom);
    let (mut batch, reqs, foreign) = match Batch::open::<MmuUpdate>(count, pdone, checked, reqs) {
        Ok(b) => b,
        Err(e) => return Outcome::Err(e),
    };
    let mut cur = current();
    if let Some(f) = foreign.pg_owner {
        cur.pg_owner = f;
    }
    let pt_owner = foreign.pt_owner.unwrap_or(cur.id);
    let mut rc = Ok(0);
    let mut buf = [MmuUpdate::default(); CHUNK];
    let mut i = 0u64;
    'outer: while i < *count {
        if i >= BATCH {
            batch.finish();
            return continue_batch(reqs, i);
        }
        let n = usize::try_from((*count - i).min(CHUNK as u64)).unwrap_or(CHUNK);
        if let Err(e) = reqs.read_into(&Loaded, i, &mut buf[..n]) {
            // Xen copies one request at a time: the ones before the bad
            // page still count.
            for j in 0..n as u64 {
                let one = match reqs.get(&Loaded, i + j) {
                    Ok(one) => one,
                    Err(e) => {
                        rc = Err(e.into());
                        break 'outer;
                    }
                };
                match mm::with_page_tables(pt_owner, cur.io_caps(), |t| {
                    t.pg_owner = cur.pg_owner;
                    one_update(t, &cur, &one)
                }) {
                    Some(Ok(())) => {}
                    Some(Err(e)) => {
                        rc = Err(e);
                        break 'outer;
                    }
                    None => {
                        rc = Err(Errno::EINVAL);
                        break 'outer;
                    }
                }
                batch.done += 1;
            }
            rc = Err(e.into());
            break;
        }
        let result = mm::with_page_tables(pt_owner, cur.io_caps(), |t| {
            t.pg_owner = cur.pg_owner;
            for req in &buf[..n] {
                one_update(t, &cur, req)?;
                batch.done += 1;
            }
            Ok(())
        });
        match result {
            Some(Ok(())) => i += n as u64,
            Some(Err(e)) => {
                rc = Err(e);
                break;
            }
            None => {
                rc = Err(Errno::EINVAL);
                break;
            }
        }
    }
    batch.finish();
    rc.into()
}

/// One `mmu_update` request (what it owes the TLB, the rules report).
fn one_update(t: &mut Tables<'_>, cur: &Current, req: &MmuUpdate) -> Result<(), Errno> {
    let MmuUpdate { ptr, val } = *req;
    let cmd = super::arg32(ptr & 7);
    let mfn = ptr >> 12;
    let index = usize::try_from((ptr & 0xff8) >> 3).unwrap_or(0);
    if refused::<MMU_UPDATE>(cmd) {
        return Err(Errno::ENOSYS);
    }
    match cmd {
        // NORMAL_PT_UPDATE, PT_UPDATE_PRESERVE_AD, PT_UPDATE_NO_TRANSLATE
        // (the last is the normal update for a PV domain).
        0 | 2 | 3 => normal_update(t, mfn, index, val, cmd == 2),
        // MACHPHYS_UPDATE: the M2P entry of one of the domain's frames.
        1 => {
            if t.frames.set_pfn(mfn, cur.pg_owner, val).is_err() {
                return Err(Errno::EINVAL);
            }
            mm::m2p::set(mfn, val);
            Ok(())
        }
        _ => Err(Errno::ENOSYS),
    }
}

fn normal_update(
    t: &mut Tables<'_>,
    mfn: u64,
    index: usize,
    val: u64,
    preserve_ad: bool,
) -> Result<(), Errno> {
    // A hint: the update itself checks the owner and the type again, on
    // the locked table or under the writable reference it takes.
    let (ty, type_count) = t.frames.type_now(mfn).ok_or(Errno::EINVAL)?;
    let entry_addr = mfn * PAGE_SIZE + index as u64 * 8;
    match (type_count, ty) {
        (n, ty) if n > 0 && ty.is_page_table() => {
            let new = if preserve_ad {
                let old = phys::read_u64(entry_addr).map_err(|_| Errno::EINVAL)?;
                val | (old & (pt::PTE_A | pt::PTE_D))
            } else {
                val
            };
            t.update_entry(mfn, index, new).map_err(err)?;
            Ok(())
        }
        // An ordinary page of the domain (in use as writable memory, or
        // untyped): Xen writes the 8 bytes as they are.
        (n, PageType::Writable) if n > 0 => plain_write(t, mfn, index, val),
        (0, _) => plain_write(t, mfn, index, val),
        // Descriptor tables and other typed uses.
        _ => Err(Errno::EINVAL),
    }
}

/// Writes entry `index` of an ordinary page of the table owner under a
/// writable type reference taken and dropped around the write (Xen's
/// `get_page_type(PGT_writable_page)`), in the same frame-table step.
/// Kept out of line: the page-table path is the hot one.
#[inline(never)]
fn plain_write(t: &mut Tables<'_>, mfn: u64, index: usize, val: u64) -> Result<(), Errno> {
    // The page is the table owner's (the caller's, or the domain a
    // privileged caller names as the page-table owner).
    let frame = WritableRef::take_in(t.frames, mfn, t.domain).map_err(|_| Errno::EINVAL)?;
    let written = frame.write_u64(index as u64 * 8, val);
    frame.release_in(t.frames);
    written.map_err(|_| Errno::EINVAL)
}

// ---------------------------------------------------------------------------
// update_va_mapping

#[inline(always)]
pub fn update_va_mapping(va: u64, val: u64, flags: u64) -> Outcome {
    update_l1e(va, val, flags, None).into()
}

/// `update_va_mapping_otherdomain(va, val, flags, domid)`: as
/// `update_va_mapping`, the new entry mapping a frame of `domid` (looked
/// up as `foreigndom`: [`check_pg_owner`]; a privileged caller's, as a
/// toolstack maps the frames of a domain it builds).
pub fn update_va_mapping_otherdomain(va: u64, val: u64, flags: u64, domid: u16) -> Outcome {
    match check_pg_owner(domid) {
        Ok(pg_owner) => update_l1e(va, val, flags, pg_owner).into(),
        Err(e) => Outcome::Err(e),
    }
}

/// The L1 frame (machine frame number) that maps `va` in the page table at
/// `cr3`, and the entry's index; whether it is one of the domain's
/// validated L1s is checked with the table locked by the caller.
/// Only presence counts on the way; a large page or an address outside
/// guest space is -EINVAL.
fn l1_of(cr3: u64, va: u64) -> Result<(u64, usize), Errno> {
    match pt_walk::walk_upper(cr3, va, pt_walk::PRESENT, |pa| phys::read_u64(pa).ok()) {
        Ok(pt_walk::Upper::L1 { table, index, .. }) => Ok((table / PAGE_SIZE, index)),
        _ => Err(Errno::EINVAL),
    }
}

#[inline(never)]
fn update_l1e(va: u64, val: u64, flags: u64, pg_owner: Option<u16>) -> HcResult {
    // No vCPU lock: the domain's fixed fields, and the running vCPU's page
    // table is the one loaded (a hypercall comes from guest kernel mode).
    let Current { id, privileged, .. } = current();
    let io_caps = privileged.is_some();
    let cr3 = crate::arch::x86_64::cpu::read_cr3() & pt::PTE_ADDR;
    let (l1, index) = l1_of(cr3, va)?;
    mm::with_page_tables(id, io_caps, |t| {
        if let Some(owner) = pg_owner {
            t.pg_owner = owner;
        }
        t.update_l1_entry(l1, index, val).map_err(err)
    })
    .ok_or(Errno::EINVAL)??;
    // Flushes as asked (UVMF_TLB_FLUSH / UVMF_INVLPG), on this CPU
    // (UVMF_LOCAL), the domain's CPUs (UVMF_ALL) or those of the vCPUs a
    // bitmap names, read after the update (as on Xen). A present
    // translation that changed is also this CPU's debt (see the module
    // documentation), paid before the next access.
    let kind = flags & 3;
    if kind == 0 {
        return Ok(0);
    }
    let one = (kind == 2).then_some(va);
    match flags & !3 {
        0 => match one {
            Some(va) => tlb::invlpg(va),
            None => tlb::flush_tlb_all_local(),
        },
        UVMF_ALL => tlb::flush_cpus(tlb::dirty_cpus(id), one),
        bitmap => tlb::flush_cpus(vcpumask_cpus(bitmap & !7)?, one),
    }
    Ok(0)
}

/// `UVMF_ALL`: every CPU the domain ran on.
const UVMF_ALL: u64 = 4;

// ---------------------------------------------------------------------------
// mmuext_op

#[inline(always)]
pub fn mmuext_op(ops: u64, count: u32, pdone: u64, foreigndom: u32) -> Outcome {
    let mut count = u64::from(count);
    ext_batch(ops, &mut count, pdone, foreigndom)
}

#[inline(always)]
fn ext_batch(ops: u64, count: &mut u64, pdone: u64, foreigndom: u32) -> Outcome {
    // Only the page owner: Xen's `do_mmuext_op` takes `foreigndom` as a
    // domid (its high half is dropped).
    let checked = || {
        let pg_owner = check_pg_owner(u16::try_from(foreigndom & 0xffff).unwrap_or(DOMID_SELF))?;
        Ok(Foreign {
            pg_owner,
            pt_owner: None,
        })
    };
    let (mut batch, ops, foreign) = match Batch::open::<MmuextOp>(count, pdone, checked, ops) {
        Ok(b) => b,
        Err(e) => return Outcome::Err(e),
    };
    let mut cur = current();
    if let Some(f) = foreign.pg_owner {
        cur.pg_owner = f;
    }
    let mut rc = Ok(0);
    for i in 0..*count {
        if i == BATCH {
            batch.finish();
            return continue_batch(ops, i);
        }
        let op = match ops.get(&Loaded, i) {
            Ok(op) => op,
            Err(e) => {
                rc = Err(e.into());
                break;
            }
        };
        let r = if cur.pg_owner == cur.id {
            one_ext_op(&cur, op.cmd, op.arg1, op.arg2)
        } else {
            foreign_ext_op(&cur, op.cmd, op.arg1, op.arg2)
        };
        if let Err(e) = r {
            rc = Err(e);
            break;
        }
        batch.done += 1;
    }
    batch.finish();
    rc.into()
}

/// The CPUs of the vCPUs a guest bitmap at `va` names (`UVMF_MULTI`,
/// `MMUEXT_*_MULTI`, Xen's `vcpumask_to_pcpumask`): as many words as the
/// domain has vCPUs, each read once; a vCPU that never ran names none.
#[cold]
#[inline(never)]
fn vcpumask_cpus(va: u64) -> Result<CpuMask, crate::guest_mem::Fault> {
    let cur = domain::current();
    let d = cur.domain();
    let n = usize::try_from(d.nr_vcpus()).unwrap_or(0);
    let mut mask = CpuMask::EMPTY;
    for w in 0..hv::smp::vcpumask_words(n) {
        let word = GuestPtr::<u64>::new(va.wrapping_add(8 * w as u64))?.read(&Loaded)?;
        let vcpus = n.saturating_sub(64 * w).min(64);
        mask = mask.union(hv::smp::cpus_of_vcpus(&[word], vcpus, |v| {
            d.vcpu_cpu(64 * w + v)
        }));
    }
    Ok(mask)
}

/// Whether the batch's page owner owns `mfn`.
fn owned(cur: &Current, mfn: u64) -> bool {
    mm::with_frame_table(|ft| ft.get(mfn).is_some_and(|p| p.owner == Some(cur.pg_owner)))
        == Some(true)
}

/// Whether domain `id` is being destroyed (or gone).
fn owner_dying(id: u16) -> bool {
    domain::DomId::try_new(id)
        .ok()
        .and_then(domain::lookup)
        .is_none_or(|d| d.with_state(|s| s.dying))
}

/// An `mmuext_op` on a foreign page owner's behalf: only pins and unpins
/// (Xen: `-EPERM` for the rest).
#[cold]
#[inline(never)]
fn foreign_ext_op(cur: &Current, cmd: u32, arg1: u64, arg2: u64) -> Result<(), Errno> {
    use guest_abi::xen::*;
    match cmd {
        MMUEXT_PIN_L1_TABLE | MMUEXT_PIN_L2_TABLE | MMUEXT_PIN_L3_TABLE | MMUEXT_PIN_L4_TABLE
        | MMUEXT_UNPIN_TABLE => one_ext_op(cur, cmd, arg1, arg2),
        _ if refused::<MMUEXT_OP>(cmd) => Err(Errno::ENOSYS),
        _ => Err(Errno::EPERM),
    }
}

fn one_ext_op(cur: &Current, cmd: u32, arg1: u64, arg2: u64) -> Result<(), Errno> {
    use guest_abi::xen::*;
    if refused::<MMUEXT_OP>(cmd) {
        return Err(Errno::ENOSYS);
    }
    // A foreign owner's tables are validated as that domain's, which has
    // no I/O rights.
    let foreign = cur.pg_owner != cur.id;
    match cmd {
        MMUEXT_PIN_L1_TABLE | MMUEXT_PIN_L2_TABLE | MMUEXT_PIN_L3_TABLE | MMUEXT_PIN_L4_TABLE => {
            if !owned(cur, arg1) {
                return Err(Errno::EINVAL);
            }
            let level = u8::try_from(cmd + 1).unwrap_or(1);
            let io_caps = cur.io_caps() && !foreign;
            mm::with_page_tables(cur.pg_owner, io_caps, |t| t.pin(arg1, level))
                .ok_or(Errno::EINVAL)?
                .map_err(|e| match e {
                    // Pinning a pinned table.
                    PtError::Page {
                        error: hv::page_info::PageError::AlreadyOwned,
                        ..
                    } => Errno::EINVAL,
                    e => err(e),
                })?;
            if level == 4 {
                // A pinned table is not (yet) anyone's base: no M2P view.
                // A table that is a base already keeps its view.
                let is_base =
                    !foreign && domain::with_current(|d| d.vcpu.kernel_cr3 == arg1 * PAGE_SIZE);
                install_slots(arg1, is_base)?;
            }
            if foreign && owner_dying(cur.pg_owner) {
                // Raced with its destruction, which may have looked past
                // this frame already: the pin goes again (success all the
                // same, as on Xen).
                let _ = mm::with_page_tables(cur.pg_owner, false, |t| t.unpin(arg1));
            }
            // Validating a table removes no translation: nothing owed.
            Ok(())
        }
        MMUEXT_UNPIN_TABLE => {
            if !owned(cur, arg1) {
                return Err(Errno::EINVAL);
            }
            // A table that loses its last type reference leaves a debt.
            let io_caps = cur.io_caps() && !foreign;
            mm::with_page_tables(cur.pg_owner, io_caps, |t| t.unpin(arg1))
                .ok_or(Errno::EINVAL)?
                .map_err(err)
        }
        MMUEXT_NEW_BASEPTR => new_baseptr(cur, arg1, false),
        MMUEXT_NEW_USER_BASEPTR => new_baseptr(cur, arg1, true),
        MMUEXT_TLB_FLUSH_LOCAL | MMUEXT_TLB_FLUSH_ALL => {
            if cmd == MMUEXT_TLB_FLUSH_LOCAL {
                tlb::flush_tlb_all_local();
            } else {
                tlb::flush_cpus(tlb::dirty_cpus(cur.id), None);
            }
            Ok(())
        }
        MMUEXT_TLB_FLUSH_MULTI | MMUEXT_INVLPG_MULTI => {
            // arg2: a guest pointer to a vCPU bitmap.
            let cpus = vcpumask_cpus(arg2).map_err(|_| Errno::EINVAL)?;
            if cmd == MMUEXT_TLB_FLUSH_MULTI {
                tlb::flush_cpus(cpus, None);
            } else if addr_ok(arg1) {
                tlb::flush_cpus(cpus, Some(arg1));
            }
            Ok(())
        }
        MMUEXT_INVLPG_LOCAL | MMUEXT_INVLPG_ALL => {
            if addr_ok(arg1) {
                if cmd == MMUEXT_INVLPG_LOCAL {
                    tlb::invlpg(arg1);
                } else {
                    tlb::flush_cpus(tlb::dirty_cpus(cur.id), Some(arg1));
                }
            }
            Ok(())
        }
        MMUEXT_FLUSH_CACHE | MMUEXT_FLUSH_CACHE_GLOBAL => match cur.privileged {
            Some(privileged) => {
                flush_cache(privileged);
                Ok(())
            }
            None if cmd == MMUEXT_FLUSH_CACHE => Err(Errno::EACCES),
            None => Err(Errno::EINVAL),
        },
        MMUEXT_SET_LDT => set_ldt(arg1, arg2),
        MMUEXT_CLEAR_PAGE => write_page(cur, arg1, None),
        MMUEXT_COPY_PAGE => {
            if !owned(cur, arg2) {
                return Err(Errno::EINVAL);
            }
            let mut page = alloc::vec![0u8; 4096];
            phys::read(arg2 * PAGE_SIZE, &mut page).map_err(|_| Errno::EINVAL)?;
            write_page(cur, arg1, Some(&page))
        }
        MMUEXT_MARK_SUPER | MMUEXT_UNMARK_SUPER => Err(Errno::EOPNOTSUPP),
        _ => Err(Errno::ENOSYS),
    }
}

/// Writes back and invalidates the CPU's caches (a domain with I/O
/// capabilities only: it stalls the whole machine).
fn flush_cache(_: Privileged) {
    crate::arch::x86_64::cpu::wbinvd();
}

/// Writes page `mfn` of the domain (zeros, or `src`) under a writable type
/// reference, which keeps it from becoming a page table or descriptor
/// table meanwhile.
#[cold]
fn write_page(cur: &Current, mfn: u64, src: Option<&[u8]>) -> Result<(), Errno> {
    let dst = WritableRef::take(mfn, cur.id).map_err(|_| Errno::EINVAL)?;
    match src {
        Some(page) => dst.write(0, page),
        None => dst.zero(),
    }
    .map_err(|_| Errno::EINVAL)
}

/// Unmaps the LDT pages on a new kernel page table: they were found
/// through the old one (Xen drops them too; they are mapped again on the
/// next access).
#[cold]
fn drop_ldt_mappings() {
    domain::with_current(|d| crate::domain::ldt::destroy(&mut d.vcpu.ldt));
}

/// `MMUEXT_SET_LDT(linear_addr, nr_ents)`.
#[cold]
fn set_ldt(linear_addr: u64, arg2: u64) -> Result<(), Errno> {
    // `nr_ents` is an unsigned int in the arg2 union.
    let nr_ents = super::arg32(arg2);
    if nr_ents > 8192 || (nr_ents != 0 && (linear_addr & 0xfff != 0 || !addr_ok(linear_addr))) {
        return Err(Errno::EINVAL);
    }
    domain::with_current(|d| crate::domain::ldt::set(d, linear_addr, nr_ents));
    Ok(())
}

fn install_slots(l4: u64, with_m2p: bool) -> Result<(), Errno> {
    page_table::install_hv_slots(l4, with_m2p).map_err(|_| Errno::EINVAL)
}

/// VMASST_TYPE_m2p_strict: the M2P is visible in kernel base tables only
/// (and not in user tables).
fn m2p_strict() -> bool {
    domain::with_current(|d| d.vm_assist & (1 << 32) != 0)
}

/// Takes the references a vCPU's page-table base holds (general and L4
/// type) on frame `mfn` of domain `id`, and writes hv's slots into it:
/// `-EINVAL` if the domain does not own the frame, and the validation's
/// errno if it cannot be an L4. Every hv slot is rewritten: nothing the
/// guest wrote there before the frame became an L4 survives. A kernel
/// base table shows the M2P; a user table too, unless `m2p_strict`
/// keeps it to kernels. Out of line: the MMU's hot paths never come here.
#[cold]
#[inline(never)]
pub(super) fn get_base_table(
    id: u16,
    io_caps: bool,
    mfn: u64,
    user: bool,
    m2p_strict: bool,
) -> Result<(), Errno> {
    let cur = Current {
        id,
        privileged: None,
        pg_owner: id,
    };
    if !owned(&cur, mfn) {
        return Err(Errno::EINVAL);
    }
    mm::with_page_tables(id, io_caps, |t| t.get_type(mfn, PageType::L4))
        .ok_or(Errno::EINVAL)?
        .map_err(err)?;
    if let Err(e) = install_slots(mfn, !user || !m2p_strict) {
        put_base_table(id, io_caps, mfn);
        return Err(e);
    }
    Ok(())
}

/// Drops what [`get_base_table`] took.
pub fn put_base_table(id: u16, io_caps: bool, mfn: u64) {
    mm::with_page_tables(id, io_caps, |t| t.put_type(mfn));
}

/// `MMUEXT_NEW_BASEPTR` / `MMUEXT_NEW_USER_BASEPTR`: take an L4 type
/// reference on the new table, drop the old table's, and load the new one
/// if it is the one the vCPU runs on.
/// `MMUEXT_NEW_BASEPTR` for the running domain, outside a batch.
pub fn new_baseptr_current(mfn: u64) -> bool {
    new_baseptr(&current(), mfn, false).is_ok()
}

fn new_baseptr(cur: &Current, mfn: u64, user: bool) -> Result<(), Errno> {
    let old = domain::with_current(|d| {
        if user {
            d.vcpu.user_cr3
        } else {
            d.vcpu.kernel_cr3
        }
    }) >> 12;
    if user && mfn == 0 {
        if old != 0 {
            mm::with_page_tables(cur.id, cur.io_caps(), |t| t.put_type(old));
        }
        domain::with_current(|d| d.vcpu.user_cr3 = 0);
        return Ok(());
    }
    if mfn == old {
        return Ok(());
    }
    get_base_table(cur.id, cur.io_caps(), mfn, user, m2p_strict())?;
    let (reload, in_kernel) = domain::with_current(|d| {
        if user {
            d.vcpu.user_cr3 = mfn * PAGE_SIZE;
        } else {
            d.vcpu.kernel_cr3 = mfn * PAGE_SIZE;
        }
        let active = if d.vcpu.in_kernel {
            d.vcpu.kernel_cr3
        } else {
            d.vcpu.user_cr3
        };
        let reload = active != 0 && active != d.vcpu.cr3;
        if reload {
            d.vcpu.cr3 = active;
        }
        (reload.then_some(active), d.vcpu.in_kernel)
    });
    let _ = in_kernel;
    if !user {
        drop_ldt_mappings();
    }
    if let Some(cr3) = reload {
        tlb::load_guest_page_table(cr3).map_err(|_| Errno::EINVAL)?;
    }
    if old != 0 {
        mm::with_page_tables(cur.id, cur.io_caps(), |t| t.put_type(old));
    }
    tlb::flush_tlb_all_local();
    Ok(())
}
