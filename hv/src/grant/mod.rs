//! A domain's grant table: the frames it shares with hv for its grant
//! entries (and, version 2, the status frames), hv's active entries and
//! the domain's maptrack (the rules: `hv::grant`).
//!
//! The frames are the domain's as far as mappings go, with no pfn, as its
//! `shared_info`: hv allocates them, holds a writable type reference on
//! each for the table's life (so the domain can never give one another
//! type, exchange it or free it), and the domain maps them by the machine
//! frames `GNTTABOP_setup_table` and `get_status_frames` return. A table
//! starts with one grant frame and grows, never shrinks, up to its
//! domain's `max_grant_frames`. Status frames made for version 2 stay
//! allocated when the domain goes back to version 1 (Xen frees them; the
//! difference is memory only) and are used again if it switches back.
//! Everything goes with the domain.
//!
//! Mapping ([`map`], [`unmap`]): a grant mapped by a PV domain is an L1
//! entry of the mapper naming the granter's frame, whose references (one
//! general, and the writable type for a writable mapping) the grant code
//! takes and the entry then owns, as on Xen: they go when the entry goes,
//! by `unmap_grant_ref` or otherwise. The granter's side is its active
//! entry (pin counts, the frame) and the access bits in its shared entry;
//! the mapper's is a maptrack handle. The two tables are never locked at
//! once (the mapper's maptrack, then the granter's table, then the
//! maptrack again), so no two grant locks nest.
//!
//! Copying ([`copy`]): each end is a frame of the caller's own (by
//! machine frame) or a grant (by reference, of any domain), held for the
//! copy by a reference (the destination writable) and, for a grant, by a
//! count on its active entry, as Xen's `acquire_grant_for_copy`.
//!
//! Transferring ([`transfer`]): a frame moves from the caller to another
//! domain that offered an entry for it.
//!
//! Missing: sub-page and transitive grants in copies, device mappings' IOMMU
//! side (there is no IOMMU: a device mapping only counts), releasing a
//! dying domain's mappings of others, and preempting long batches beyond
//! 512 elements per call.

use alloc::vec::Vec;

use alloc::sync::Arc;
use guest_abi::errno::Errno;
use guest_abi::grant_table::GNTTAB_NR_RESERVED_ENTRIES;
use guest_abi::grant_table::{
    GNTMAP_APPLICATION_MAP, GNTMAP_CONTAINS_PTE, GNTMAP_DEVICE_MAP, GNTMAP_GUEST_AVAIL0,
    GNTMAP_HOST_MAP, GNTMAP_READONLY, GNTST_BAD_COPY_ARG, GNTST_BAD_DEV_ADDR, GNTST_BAD_DOMAIN,
    GNTST_BAD_GNTREF, GNTST_BAD_HANDLE, GNTST_BAD_PAGE, GNTST_EAGAIN, GNTST_GENERAL_ERROR,
    GNTST_PERMISSION_DENIED, GTF_READING, GTF_WRITING,
};
use hv::grant::{
    access_to_clear, acquire, check_pinned, needs_acquire, status_frames, Active, Mapping,
    Maptrack, Use, Version, Want, V1_PER_FRAME,
};
use hv::pt;

use crate::domain::{self, DomId, Domain};
use crate::mm::{self, FrameWrite, GrantWords, PageRef, WritableRef};
use hv::page_info::PageError;

/// A domain's grant table.
#[derive(Debug)]
pub struct Grants {
    owner: u16,
    version: Version,
    /// Highest version the domain may choose (`createdomain.grant_opts`).
    max_version: u32,
    max_frames: u32,
    /// The grant frames, in order.
    frames: Vec<WritableRef>,
    /// Status frames made so far (version 2 uses the first
    /// [`status_frames`] of the grant frames' count).
    status: Vec<WritableRef>,
    /// One per version 1 entry the frames hold (version 2 uses half).
    active: Vec<Active>,
    /// The domain's mappings of grants (its own or others').
    maptrack: Maptrack,
}

/// Why a table could not grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoRoom;

impl Grants {
    /// The table of a new domain `owner` with one grant frame.
    /// `max_maptrack_frames` bounds the mappings it makes.
    pub fn new(
        owner: u16,
        max_frames: u32,
        max_maptrack_frames: u32,
        max_version: u32,
    ) -> Result<Self, NoRoom> {
        let mut g = Self {
            owner,
            version: Version::V1,
            max_version,
            max_frames: max_frames.max(1),
            frames: Vec::new(),
            status: Vec::new(),
            active: Vec::new(),
            maptrack: Maptrack::new(max_maptrack_frames),
        };
        g.grow(1)?;
        Ok(g)
    }

    pub fn version(&self) -> Version {
        self.version
    }

    pub fn nr_frames(&self) -> u32 {
        u32::try_from(self.frames.len()).unwrap_or(u32::MAX)
    }

    pub fn max_frames(&self) -> u32 {
        self.max_frames
    }

    /// Status frames in use: none for version 1.
    pub fn nr_status_frames(&self) -> u32 {
        match self.version {
            Version::V1 => 0,
            Version::V2 => status_frames(self.nr_frames()),
        }
    }

    /// Entries the table holds now.
    pub fn nr_entries(&self) -> u32 {
        self.version.entries(self.nr_frames())
    }

    /// Entry `gref`'s shared words.
    fn words(&self, gref: u32) -> Option<GrantWords<'_>> {
        GrantWords::entry(&self.frames, &self.status, self.version, gref)
    }

    /// The frame entry `gref` names (for a PV granter, a machine frame).
    fn entry_frame(&self, gref: u32) -> u64 {
        // v1: the frame is the high half of the entry's first word; v2:
        // the whole second word.
        let (per, size, word) = match self.version {
            Version::V1 => (V1_PER_FRAME, 8, 0),
            Version::V2 => (hv::grant::V2_PER_FRAME, 16, 8),
        };
        let Some(f) = self.frames.get((gref / per) as usize) else {
            return u64::MAX;
        };
        let value = read_u64(f, u64::from(gref % per) * size + word);
        match self.version {
            Version::V1 => value >> 32,
            Version::V2 => value,
        }
    }

    /// Machine frame of grant frame `i`.
    pub fn frame(&self, i: u32) -> Option<u64> {
        self.frames.get(i as usize).map(FrameWrite::frame)
    }

    /// Machine frame of status frame `i` (in use or not).
    pub fn status_frame(&self, i: u32) -> Option<u64> {
        self.status.get(i as usize).map(FrameWrite::frame)
    }

    /// Grows the table to `nr` grant frames (and, version 2, their status
    /// frames); at most `max_frames` (the caller checks), nothing changes
    /// if hv has no memory for all of them.
    pub fn grow(&mut self, nr: u32) -> Result<(), NoRoom> {
        let nr = nr.max(1).min(self.max_frames);
        let want_status = match self.version {
            Version::V1 => 0,
            Version::V2 => status_frames(nr),
        };
        let have = self.nr_frames();
        let have_status = u32::try_from(self.status.len()).unwrap_or(u32::MAX);
        let mut frames = Vec::new();
        let mut status = Vec::new();
        for _ in have..nr {
            frames.push(shared_frame(self.owner).ok_or(NoRoom)?);
        }
        for _ in have_status..want_status {
            status.push(shared_frame(self.owner).ok_or(NoRoom)?);
        }
        let entries = (nr.max(have) * V1_PER_FRAME) as usize;
        self.active
            .try_reserve(entries.saturating_sub(self.active.len()))
            .map_err(|_| NoRoom)?;
        self.active
            .resize(entries.max(self.active.len()), Active::default());
        self.frames.extend(frames);
        self.status.extend(status);
        Ok(())
    }

    /// `GNTTABOP_set_version`: `-EINVAL` for a version that does not
    /// exist, `-ENOSYS` for 2 if the domain may not use it, `-EBUSY` if an
    /// entry beyond the reserved 8 is in use or (leaving version 2) a
    /// status frame is still mapped. The reserved entries (toolstack
    /// grants: console, xenstore) are carried over into the new layout,
    /// the rest of the table is cleared.
    pub fn set_version(&mut self, wanted: u32) -> Result<(), Errno> {
        let to = match wanted {
            1 => Version::V1,
            2 if self.max_version >= 2 => Version::V2,
            2 => return Err(Errno::ENOSYS),
            _ => return Err(Errno::EINVAL),
        };
        if to == self.version {
            return Ok(());
        }
        let reserved = GNTTAB_NR_RESERVED_ENTRIES as usize;
        if self.active.iter().skip(reserved).any(|a| !a.pin.is_free()) {
            return Err(Errno::EBUSY);
        }
        if to == Version::V1 && self.status_mapped() {
            return Err(Errno::EBUSY);
        }
        if to == Version::V2 {
            let want = status_frames(self.nr_frames()) as usize;
            while self.status.len() < want {
                let f = shared_frame(self.owner).ok_or(Errno::ENOMEM)?;
                self.status.push(f);
            }
        }
        let kept = self.reserved_entries();
        for f in &self.frames {
            f.zero().map_err(|_| Errno::EFAULT)?;
        }
        for f in &self.status {
            f.zero().map_err(|_| Errno::EFAULT)?;
        }
        self.version = to;
        self.restore_reserved(&kept).map_err(|_| Errno::EFAULT)?;
        Ok(())
    }

    /// `GNTTABOP_swap_grant_ref`: entries `a` and `b` (with, version 2,
    /// their status words) trade places: `GNTST_bad_gntref` for one past
    /// the table, `GNTST_eagain` while either is in use (pinned); an entry
    /// swapped with itself is left as it is.
    pub fn swap(&mut self, a: u32, b: u32) -> Result<(), i16> {
        let n = self.nr_entries();
        if a >= n || b >= n {
            return Err(GNTST_BAD_GNTREF);
        }
        if a == b {
            return Ok(());
        }
        let busy = |r: u32| self.active.get(r as usize).is_none_or(|x| !x.pin.is_free());
        if busy(a) || busy(b) {
            return Err(GNTST_EAGAIN);
        }
        let (per, size) = match self.version {
            Version::V1 => (V1_PER_FRAME, 8),
            Version::V2 => (hv::grant::V2_PER_FRAME, 16),
        };
        let at = |r: u32| {
            let f = self.frames.get((r / per) as usize)?;
            Some((f, u64::from(r % per) * size))
        };
        let ((fa, oa), (fb, ob)) = at(a).zip(at(b)).ok_or(GNTST_BAD_GNTREF)?;
        for word in (0..size).step_by(8) {
            let (x, y) = (read_u64(fa, oa + word), read_u64(fb, ob + word));
            let wrote = fa.write_u64(oa + word, y).and(fb.write_u64(ob + word, x));
            wrote.map_err(|_| GNTST_GENERAL_ERROR)?;
        }
        if self.version == Version::V2 {
            let per = hv::grant::STATUS_PER_FRAME;
            let status_at = |r: u32| {
                let f = self.status.get((r / per) as usize)?;
                Some((f, u64::from(r % per) * 2))
            };
            let ((sa, oa), (sb, ob)) = status_at(a).zip(status_at(b)).ok_or(GNTST_BAD_GNTREF)?;
            let half = |f: &WritableRef, o: u64| {
                let word = read_u64(f, o & !7) >> ((o & 7) * 8);
                u16::try_from(word & 0xffff).unwrap_or(0)
            };
            let (x, y) = (half(sa, oa), half(sb, ob));
            let wrote = sa
                .write(oa, &y.to_le_bytes())
                .and(sb.write(ob, &x.to_le_bytes()));
            wrote.map_err(|_| GNTST_GENERAL_ERROR)?;
        }
        Ok(())
    }

    /// Entry `gref`'s part in a transfer from domain `from`
    /// (`hv::grant::commit_transfer`): the frame number the entry holds
    /// (the receiver's pfn for it), once committed.
    fn commit_transfer(&self, gref: u32, from: u16) -> Result<u64, i16> {
        if gref >= self.nr_entries() {
            return Err(GNTST_GENERAL_ERROR);
        }
        let words = self.words(gref).ok_or(GNTST_GENERAL_ERROR)?;
        hv::grant::commit_transfer(&words, from)?;
        Ok(self.entry_frame(gref))
    }

    /// Ends the transfer entry `gref` committed to: its frame field names
    /// `mfn` (v1: the low 32 bits, as Xen's 32-bit field), then its flags
    /// say `GTF_transfer_completed`.
    fn complete_transfer(&self, gref: u32, mfn: u64) {
        let (per, size) = match self.version {
            Version::V1 => (V1_PER_FRAME, 8),
            Version::V2 => (hv::grant::V2_PER_FRAME, 16),
        };
        let Some(f) = self.frames.get((gref / per) as usize) else {
            return;
        };
        let at = u64::from(gref % per) * size;
        let _ = match self.version {
            Version::V1 => f.write(at + 4, &(mfn & 0xffff_ffff).to_le_bytes()[..4]),
            Version::V2 => f.write_u64(at + 8, mfn),
        };
        if let Some(words) = self.words(gref) {
            hv::grant::complete_transfer(&words);
        }
    }

    /// Whether something besides hv refers to a status frame (the domain
    /// still maps one).
    fn status_mapped(&self) -> bool {
        mm::with_frame_table(|ft| {
            self.status
                .iter()
                .any(|f| ft.get(f.frame()).is_none_or(|p| p.refs > 1))
        })
        .unwrap_or(true)
    }

    /// The reserved entries as (flags with access bits, domid, frame).
    fn reserved_entries(&self) -> [(u16, u16, u64); GNTTAB_NR_RESERVED_ENTRIES as usize] {
        let mut out = [(0, 0, 0); GNTTAB_NR_RESERVED_ENTRIES as usize];
        let Some(first) = self.frames.first() else {
            return out;
        };
        for (i, e) in (0u64..).zip(out.iter_mut()) {
            let (flags, domid, frame, status) = match self.version {
                Version::V1 => {
                    let word = read_u64(first, i * 8);
                    let (flags, domid) = hv::grant::split(low32(word));
                    (flags, domid, word >> 32, 0)
                }
                Version::V2 => {
                    let (flags, domid) = hv::grant::split(low32(read_u64(first, i * 16)));
                    let status = self.status.first().map_or(0, |s| {
                        let word = read_u64(s, (i / 4) * 8) >> ((i % 4) * 16);
                        u16::try_from(word & 0xffff).unwrap_or(0)
                    });
                    (flags, domid, read_u64(first, i * 16 + 8), status)
                }
            };
            // Only ordinary grants carry over (Xen clears any other kind).
            if flags & guest_abi::grant_table::GTF_TYPE_MASK
                == guest_abi::grant_table::GTF_PERMIT_ACCESS
            {
                *e = (flags | status, domid, frame);
            }
        }
        out
    }

    fn restore_reserved(
        &self,
        kept: &[(u16, u16, u64)],
    ) -> Result<(), mm::frame_access::OutOfRange> {
        use guest_abi::grant_table::{GTF_READING, GTF_WRITING};
        let Some(first) = self.frames.first() else {
            return Ok(());
        };
        for (i, &(flags, domid, frame)) in (0u64..).zip(kept) {
            let header = |f: u16| u64::from(f) | u64::from(domid) << 16;
            match self.version {
                Version::V1 => {
                    let frame32 = frame & 0xffff_ffff;
                    first.write_u64(i * 8, header(flags) | frame32 << 32)?;
                }
                Version::V2 => {
                    let access = flags & (GTF_READING | GTF_WRITING);
                    first.write_u64(i * 16, header(flags & !(GTF_READING | GTF_WRITING)))?;
                    first.write_u64(i * 16 + 8, frame)?;
                    if let Some(s) = self.status.first() {
                        s.write(i * 2, &access.to_le_bytes())?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn low32(word: u64) -> u32 {
    u32::try_from(word & 0xffff_ffff).unwrap_or(0)
}

/// The aligned 8 bytes at `offset` of a held frame.
fn read_u64(f: &WritableRef, offset: u64) -> u64 {
    mm::frame_access::read_u64(f.frame() * mm::PAGE_SIZE + offset).unwrap_or(0)
}

/// A zeroed frame of domain `owner` with no pfn, held writable by hv.
fn shared_frame(owner: u16) -> Option<WritableRef> {
    let f = mm::alloc_zeroed_frame()?;
    mm::with_frame_table(|ft| {
        let mfn = f.assign(ft, owner, u64::MAX).ok()?;
        let held = WritableRef::take_in(ft, mfn, owner).ok()?;
        ft.mark_special(mfn, owner).ok()?;
        Some(held)
    })
    .flatten()
}

/// A domain an operation names: the caller itself (no lookup, no count)
/// or another, held.
enum Dom {
    Own,
    Other(Arc<Domain>),
}

impl Dom {
    /// Domain `id` seen from `ld`; `None` if there is none.
    fn of(ld: &Domain, id: u16) -> Option<Dom> {
        if id == ld.id.get() {
            return Some(Dom::Own);
        }
        DomId::try_new(id)
            .ok()
            .and_then(domain::lookup)
            .map(Dom::Other)
    }

    fn get<'a>(&'a self, ld: &'a Domain) -> &'a Domain {
        match self {
            Dom::Own => ld,
            Dom::Other(d) => d,
        }
    }
}

/// A `GNTTABOP_map_grant_ref` element, checked for its kind.
#[derive(Debug, Clone, Copy)]
pub struct MapRequest {
    pub granter: u16,
    pub gref: u32,
    pub flags: u32,
    pub host_addr: u64,
}

/// What a mapping made.
#[derive(Debug, Clone, Copy)]
pub struct Mapped {
    pub handle: u32,
    pub mfn: u64,
}

/// Where a grant's host mapping goes: the L1 and the entry.
fn host_slot(flags: u32, host_addr: u64) -> Option<(u64, usize, Option<u64>)> {
    if flags & GNTMAP_CONTAINS_PTE != 0 {
        if !host_addr.is_multiple_of(8) {
            return None;
        }
        let index = usize::try_from((host_addr % mm::PAGE_SIZE) / 8).ok()?;
        return Some((host_addr / mm::PAGE_SIZE, index, None));
    }
    let cr3 = crate::arch::x86_64::cpu::read_cr3() & pt::PTE_ADDR;
    let read = |pa| mm::frame_access::read_u64(pa).ok();
    match hv::pt_walk::walk_upper(cr3, host_addr, hv::pt_walk::PRESENT, read) {
        Ok(hv::pt_walk::Upper::L1 { table, index, .. }) => {
            Some((table / mm::PAGE_SIZE, index, Some(host_addr)))
        }
        _ => None,
    }
}

/// The L1 entry a grant mapping of `mfn` with `flags` is (Xen's
/// `grant_to_pte_flags`: present, accessed, dirty, not executable; user
/// for an application mapping; writable unless read-only; the low three
/// map flags from `GNTMAP_guest_avail0` in the PTE's available bits 9-11).
fn grant_pte(mfn: u64, flags: u32) -> u64 {
    let avail = u64::from((flags >> GNTMAP_GUEST_AVAIL0) & 7) << 9;
    let mut pte = (mfn << 12) | pt::PTE_P | pt::PTE_A | pt::PTE_D | pt::PTE_NX | avail;
    if flags & GNTMAP_APPLICATION_MAP != 0 {
        pte |= pt::PTE_US;
    }
    if flags & GNTMAP_READONLY == 0 {
        pte |= pt::PTE_RW;
    }
    pte
}

/// The counts a mapping with `flags` adds.
fn uses(flags: u32) -> impl Iterator<Item = Use> {
    let ro = flags & GNTMAP_READONLY != 0;
    let host =
        (flags & GNTMAP_HOST_MAP != 0).then_some(if ro { Use::HostRead } else { Use::HostWrite });
    let dev = (flags & GNTMAP_DEVICE_MAP != 0).then_some(if ro {
        Use::DeviceRead
    } else {
        Use::DeviceWrite
    });
    host.into_iter().chain(dev)
}

/// `GNTTABOP_map_grant_ref` of one element by `ld`, the running domain.
pub fn map(ld: &Domain, io_caps: bool, req: MapRequest) -> Result<Mapped, i16> {
    if req.flags & (GNTMAP_DEVICE_MAP | GNTMAP_HOST_MAP) == 0 {
        return Err(GNTST_BAD_GNTREF);
    }
    let rd = Dom::of(ld, req.granter).ok_or(GNTST_BAD_DOMAIN)?;
    let mapping = Mapping {
        granter: req.granter,
        gref: req.gref,
        flags: req.flags,
        host_addr: req.host_addr,
    };
    let handle = ld.grants.lock().maptrack.insert(mapping)?;
    let r = pin_and_map(ld, rd.get(ld), io_caps, req);
    let mut lg = ld.grants.lock();
    match r {
        Ok(_) => lg.maptrack.release(handle),
        Err(_) => {
            lg.maptrack.remove(handle);
        }
    }
    drop(lg);
    r.map(|mfn| Mapped { handle, mfn })
}

fn pin_and_map(ld: &Domain, rd: &Domain, io_caps: bool, req: MapRequest) -> Result<u64, i16> {
    let me = ld.id.get();
    let readonly = req.flags & GNTMAP_READONLY != 0;
    let owner = rd.id.get();
    let mut g = rd.grants.lock();
    let want = Want {
        user: me,
        readonly,
        map: true,
    };
    let mfn = pin_grant(&mut g, owner, req.gref, want, uses(req.flags))?;
    if req.flags & GNTMAP_HOST_MAP == 0 {
        return Ok(mfn);
    }
    // The entry's references, taken here and owned by the entry.
    let took = mm::with_frame_table(|ft| {
        if readonly {
            ft.get_page(mfn, owner).is_ok()
        } else {
            ft.get_page_and_type(mfn, owner, hv::page_info::PageType::Writable)
                .is_ok()
        }
    });
    let installed = took == Some(true)
        && host_slot(req.flags, req.host_addr)
            .and_then(|(table, index, _)| {
                mm::with_page_tables(me, io_caps, |t| {
                    t.install_granted(table, index, grant_pte(mfn, req.flags))
                        .ok()
                })
                .flatten()
            })
            .is_some();
    if !installed {
        if took == Some(true) {
            mm::with_frame_table(|ft| {
                if readonly {
                    let _ = ft.put_page(mfn);
                } else {
                    let _ = ft.put_page_and_type(mfn);
                }
            });
        }
        drop_uses(&mut g, req.gref, uses(req.flags));
        return Err(GNTST_GENERAL_ERROR);
    }
    Ok(mfn)
}

/// Counts `uses` on entry `gref` of `g` (a table of domain `owner`) for
/// `want.user`, publishing the access in the shared entry when the count
/// needs it ([`needs_acquire`]): the frame the entry names (fixed at the
/// first use). On a refusal nothing changed.
fn pin_grant(
    g: &mut Grants,
    owner: u16,
    gref: u32,
    want: Want,
    uses: impl Iterator<Item = Use>,
) -> Result<u64, i16> {
    if gref >= g.nr_entries() {
        return Err(GNTST_BAD_GNTREF);
    }
    let version = g.version;
    let act = g
        .active
        .get(gref as usize)
        .copied()
        .ok_or(GNTST_BAD_GNTREF)?;
    check_pinned(&act, want.user)?;
    let pinned = !act.pin.is_free();
    let acquiring = needs_acquire(&act, want.readonly);
    // The access bits this use adds, taken back if it fails.
    let added = match (acquiring, pinned) {
        (false, _) => 0,
        (true, false) => GTF_READING | GTF_WRITING,
        (true, true) => GTF_WRITING,
    };
    let mfn = {
        let words = g.words(gref).ok_or(GNTST_BAD_GNTREF)?;
        if acquiring {
            acquire(&words, version, pinned, want)?;
        }
        let undo = |status: i16| {
            if added != 0 {
                hv::grant::SharedEntry::clear_access(&words, version, added);
            }
            status
        };
        let mfn = if pinned { act.mfn } else { g.entry_frame(gref) };
        // The frame must be the granter's (Xen: `get_paged_frame`).
        let owned = mm::with_frame_table(|ft| ft.owner_now(mfn) == Some(owner));
        if owned != Some(true) {
            return Err(undo(GNTST_BAD_PAGE));
        }
        let mut pin = act.pin;
        for u in uses {
            pin = pin.with(u).ok_or_else(|| undo(GNTST_GENERAL_ERROR))?;
        }
        if let Some(a) = g.active.get_mut(gref as usize) {
            *a = Active {
                pin,
                user: want.user,
                mfn,
            };
        }
        mfn
    };
    Ok(mfn)
}

/// Takes `uses` off entry `gref`'s counts, clearing the access bits the
/// remaining ones no longer need.
fn drop_uses(g: &mut Grants, gref: u32, uses: impl Iterator<Item = Use>) {
    let Some(act) = g.active.get(gref as usize).copied() else {
        return;
    };
    let mut pin = act.pin;
    for u in uses {
        pin = pin.without(u).unwrap_or(pin);
    }
    let clear = access_to_clear(act.pin, pin);
    if clear != 0 {
        if let Some(w) = g.words(gref) {
            hv::grant::SharedEntry::clear_access(&w, g.version, clear);
        }
    }
    if let Some(a) = g.active.get_mut(gref as usize) {
        a.pin = pin;
    }
}

/// A `GNTTABOP_unmap_grant_ref` or `unmap_and_replace` element.
#[derive(Debug, Clone, Copy)]
pub struct UnmapRequest {
    pub handle: u32,
    pub host_addr: u64,
    pub dev_bus_addr: u64,
    /// `unmap_and_replace`: the address whose L1 entry moves into the
    /// grant mapping's place (0: none, a plain unmap).
    pub new_addr: u64,
}

/// `GNTTABOP_unmap_grant_ref` / `unmap_and_replace` of one element by
/// `ld`, the running domain: the host mapping at `host_addr` (if it is
/// non-zero and the mapping has one) and the device mapping at
/// `dev_bus_addr` (likewise) go; the handle goes with the last of them.
/// Nothing asked for: nothing done, as on Xen.
///
/// With a `new_addr`, as Xen's `replace_grant_pv_mapping`: the L1 entry
/// mapping `new_addr` is taken out first (with the references it holds)
/// and put where the grant mapping was. If the grant mapping is then not
/// found as the handle says (`GNTST_general_error`), the taken entry is
/// dropped: `new_addr` stays unmapped. A mapping made with
/// `GNTMAP_contains_pte` cannot be replaced (`GNTST_general_error`,
/// nothing changes).
pub fn unmap(ld: &Domain, io_caps: bool, req: UnmapRequest) -> Result<(), i16> {
    let handle = req.handle;
    // Owned by this unmap until `finish`: a second unmap of the handle
    // meanwhile finds it busy.
    let m = ld
        .grants
        .lock()
        .maptrack
        .claim(handle)
        .ok_or(GNTST_BAD_HANDLE)?;
    let r = unmap_claimed(ld, io_caps, m, req);
    let done = r.as_ref().map_or(0, |u| u.done);
    ld.grants.lock().maptrack.finish(handle, m.flags & !done);
    if let Some(va) = r?.flush {
        let tlb = crate::arch::x86_64::mm::dirty_cpus(ld.id.get());
        crate::arch::x86_64::mm::flush_cpus(tlb, va);
    }
    Ok(())
}

/// A dying domain's mappings of grants go (Xen's
/// `gnttab_release_mappings`): each of its maptrack handles gives its
/// uses back to the granter's entry (whose access bits clear when no use
/// is left, so the granter can end the grant) and goes. The mappings'
/// PTEs go with the domain's page tables, which drop the frame references
/// they hold. A handle another operation holds is left to it. Called
/// with the domain paused, no lock held.
pub fn release_mappings(ld: &Domain) {
    let me = ld.id.get();
    let handles: alloc::vec::Vec<u32> = ld.grants.lock().maptrack.iter().map(|(h, _)| h).collect();
    for h in handles {
        let Some(m) = ld.grants.lock().maptrack.claim(h) else {
            continue;
        };
        if let Some(rd) = Dom::of(ld, m.granter) {
            let mut g = rd.get(ld).grants.lock();
            let ours = g
                .active
                .get(m.gref as usize)
                .is_some_and(|a| !a.pin.is_free() && a.user == me);
            if ours {
                let held = GNTMAP_HOST_MAP | GNTMAP_DEVICE_MAP | GNTMAP_READONLY;
                drop_uses(&mut g, m.gref, uses(m.flags & held));
            }
        }
        ld.grants.lock().maptrack.finish(h, 0);
    }
}

/// `GNTTABOP_transfer` of one element by `ld`, the running domain (Xen's
/// `gnttab_transfer`): frame `mfn` leaves `ld` for domain `domid`, into
/// the frame that domain's entry `gref` names.
///
/// - The frame must be `ld`'s with nothing but its allocation on it (no
///   mapping, no type, not a page hv shares): `GNTST_bad_page`, and
///   nothing changes. Otherwise it leaves `ld` (and its reservation) at
///   once: every refusal after this frees it, as on Xen.
/// - `domid` must name a domain (not `DOMID_SELF`): `GNTST_bad_domain`;
///   one not being destroyed, with room in its reservation, whose entry
///   `gref` accepts a transfer from `ld` (`hv::grant::commit_transfer`):
///   `GNTST_general_error`.
/// - The frame becomes the receiver's, as the pfn the entry named (its
///   M2P entry too); the entry's frame field names the frame and its
///   flags say `GTF_transfer_completed`.
pub fn transfer(ld: &Domain, mfn: u64, domid: u16, gref: u32) -> Result<(), i16> {
    let me = ld.id.get();
    let page = mm::with_frame_table(|ft| mm::steal(ft, mfn, me).ok())
        .flatten()
        .ok_or(GNTST_BAD_PAGE)?;
    ld.with_state(|s| s.tot_pages = s.tot_pages.saturating_sub(1));
    // From here on, `page` dropped goes to the allocator.
    let e = Dom::of(ld, domid).ok_or(GNTST_BAD_DOMAIN)?;
    let ed = e.get(ld);
    let to = ed.id.get();
    let reserved = ed.with_state(|s| {
        let room = !s.dying && s.tot_pages < s.max_pages;
        if room {
            s.tot_pages += 1;
        }
        room
    });
    if !reserved {
        return Err(GNTST_GENERAL_ERROR);
    }
    let unreserve = || ed.with_state(|s| s.tot_pages = s.tot_pages.saturating_sub(1));
    let g = ed.grants.lock();
    let pfn = match g.commit_transfer(gref, me) {
        Ok(pfn) => pfn,
        Err(status) => {
            drop(g);
            unreserve();
            return Err(status);
        }
    };
    let given = mm::with_frame_table(|ft| page.assign(ft, to, pfn).is_ok());
    if given != Some(true) {
        drop(g);
        unreserve();
        return Err(GNTST_GENERAL_ERROR);
    }
    mm::m2p::set(mfn, pfn);
    g.complete_transfer(gref, mfn);
    drop(g);
    // A destruction that began meanwhile may have looked past the frame:
    // it goes back at once (and out of the reservation when freed).
    if ed.with_state(|s| s.dying) {
        mm::with_frame_table(|ft| ft.relinquish(mfn, to));
    }
    Ok(())
}

/// What an unmap took away.
struct Unmapped {
    /// `GNTMAP_host_map` and `GNTMAP_device_map`, as done.
    done: u32,
    /// The TLB flush owed (an address for one page, `None` for all).
    flush: Option<Option<u64>>,
}

/// [`unmap`] of the claimed mapping `m`.
fn unmap_claimed(
    ld: &Domain,
    io_caps: bool,
    m: Mapping,
    req: UnmapRequest,
) -> Result<Unmapped, i16> {
    let UnmapRequest {
        host_addr,
        dev_bus_addr,
        new_addr,
        ..
    } = req;
    let me = ld.id.get();
    let rd = Dom::of(ld, m.granter).ok_or(GNTST_BAD_DOMAIN)?;
    let readonly = m.flags & GNTMAP_READONLY != 0;
    let mut g = rd.get(ld).grants.lock();
    let act = g
        .active
        .get(m.gref as usize)
        .copied()
        .ok_or(GNTST_BAD_GNTREF)?;
    if act.pin.is_free() || act.user != me {
        return Err(GNTST_GENERAL_ERROR);
    }
    let mut out = Unmapped {
        done: 0,
        flush: None,
    };
    if dev_bus_addr != 0 && m.flags & GNTMAP_DEVICE_MAP != 0 {
        if dev_bus_addr != act.mfn << 12 {
            return Err(GNTST_BAD_DEV_ADDR);
        }
        out.done |= GNTMAP_DEVICE_MAP;
    }
    if host_addr != 0 && m.flags & GNTMAP_HOST_MAP != 0 {
        let pte_mode = m.flags & GNTMAP_CONTAINS_PTE;
        if pte_mode != 0 && new_addr != 0 {
            return Err(GNTST_GENERAL_ERROR);
        }
        let stolen = if new_addr == 0 {
            0
        } else {
            let (table, index, _) = host_slot(0, new_addr).ok_or(GNTST_GENERAL_ERROR)?;
            mm::with_page_tables(me, io_caps, |t| t.steal_l1_entry(table, index).ok())
                .flatten()
                .ok_or(GNTST_GENERAL_ERROR)?
        };
        let replaced = host_slot(pte_mode, host_addr).and_then(|(table, index, va)| {
            mm::with_page_tables(me, io_caps, |t| {
                let r = t.replace_granted(table, index, act.mfn, !readonly, stolen);
                if r.is_err() {
                    t.drop_l1_entry(stolen);
                }
                r.ok()
            })
            .flatten()
            .map(|_| va)
        });
        let va = replaced.ok_or(GNTST_GENERAL_ERROR)?;
        out.done |= GNTMAP_HOST_MAP;
        // A moved entry's old address needs its translation gone too.
        out.flush = Some(if new_addr == 0 { va } else { None });
    }
    drop_uses(&mut g, m.gref, uses(m.flags & (out.done | GNTMAP_READONLY)));
    Ok(out)
}

/// One end of a `GNTTABOP_copy` element.
#[derive(Debug, Clone, Copy)]
pub struct CopyEnd {
    /// A grant reference (`GNTCOPY_*_gref`) or else a machine frame of the
    /// caller's.
    pub gref: Option<u32>,
    pub gmfn: u64,
    /// `DOMID_SELF` or a domain id.
    pub domid: u16,
    pub offset: u16,
}

/// An end held for the copy: the frame's reference and, for a grant, the
/// table and entry whose count holds it.
struct Held<R> {
    frame: R,
    grant: Option<(Dom, u32)>,
    offset: u64,
}

/// The domain `end` names (`DOMID_SELF` or any id: `GNTST_bad_domain` if
/// none), which must be the caller for an end by frame number
/// (`GNTST_permission_denied`), as Xen 4.17's `gnttab_copy_lock_domain`.
fn end_domain(ld: &Domain, end: CopyEnd) -> Result<Dom, i16> {
    let id = if end.domid == guest_abi::xen::DOMID_SELF {
        ld.id.get()
    } else {
        end.domid
    };
    let d = Dom::of(ld, id).ok_or(GNTST_BAD_DOMAIN)?;
    if end.gref.is_none() && matches!(d, Dom::Other(_)) {
        return Err(GNTST_PERMISSION_DENIED);
    }
    Ok(d)
}

/// Takes hold of `end` of domain `rd` for `ld` (the running domain):
/// read-only for a source, writable for a destination.
fn claim<R>(
    ld: &Domain,
    rd: Dom,
    end: CopyEnd,
    readonly: bool,
    take: impl Fn(u64, u16) -> Result<R, i16>,
) -> Result<Held<R>, i16> {
    let me = ld.id.get();
    let offset = u64::from(end.offset);
    let Some(gref) = end.gref else {
        let frame = take(end.gmfn, me)?;
        return Ok(Held {
            frame,
            grant: None,
            offset,
        });
    };
    let owner = rd.get(ld).id.get();
    let u = if readonly {
        Use::HostRead
    } else {
        Use::HostWrite
    };
    let want = Want {
        user: me,
        readonly,
        map: false,
    };
    let frame = {
        let mut g = rd.get(ld).grants.lock();
        let mfn = pin_grant(&mut g, owner, gref, want, core::iter::once(u))?;
        match take(mfn, owner) {
            Ok(frame) => frame,
            Err(status) => {
                drop_uses(&mut g, gref, core::iter::once(u));
                return Err(status);
            }
        }
    };
    Ok(Held {
        frame,
        grant: Some((rd, gref)),
        offset,
    })
}

fn release<R>(ld: &Domain, held: Held<R>, readonly: bool) {
    let u = if readonly {
        Use::HostRead
    } else {
        Use::HostWrite
    };
    drop(held.frame);
    if let Some((rd, gref)) = held.grant {
        drop_uses(&mut rd.get(ld).grants.lock(), gref, core::iter::once(u));
    }
}

/// `GNTTABOP_copy` of one element by `ld`, the running domain: `len`
/// bytes from `src` to `dst`, neither crossing its page
/// (`GNTST_bad_copy_arg`); both ends' domains are looked up before
/// either is claimed ([`end_domain`]).
pub fn copy(ld: &Domain, src: CopyEnd, dst: CopyEnd, len: u16) -> Result<(), i16> {
    let len = u64::from(len);
    if u64::from(src.offset) + len > mm::PAGE_SIZE || u64::from(dst.offset) + len > mm::PAGE_SIZE {
        return Err(GNTST_BAD_COPY_ARG);
    }
    let src_dom = end_domain(ld, src)?;
    let dst_dom = end_domain(ld, dst)?;
    // Not the owner's: a bad page; no writable type to be had (a page
    // table, say): a general error.
    let readable = |mfn, owner| PageRef::take(mfn, owner).map_err(|_| GNTST_BAD_PAGE);
    let writable = |mfn, owner| {
        WritableRef::take(mfn, owner).map_err(|e| match e {
            PageError::TypeConflict { .. } | PageError::Overflow => GNTST_GENERAL_ERROR,
            _ => GNTST_BAD_PAGE,
        })
    };
    let from = claim(ld, src_dom, src, true, readable)?;
    let to = match claim(ld, dst_dom, dst, false, writable) {
        Ok(to) => to,
        Err(status) => {
            release(ld, from, true);
            return Err(status);
        }
    };
    let copied =
        mm::frame_access::copy_between(&from.frame, from.offset, &to.frame, to.offset, len);
    release(ld, from, true);
    release(ld, to, false);
    copied.map_err(|_| GNTST_BAD_COPY_ARG)
}
