//! Per-frame bookkeeping: who owns a machine frame, what it is used as, and
//! how many references keep it so — Xen's page-type rules, as plain data.
//!
//! Rules (Xen's): a frame has at most one type at a time; the type may only
//! change when its type count is zero; a frame in use as a page table (L1–L4)
//! is never also writable, and a frame with writable mappings is never used
//! as a page table; references of any kind keep a frame owned. The MMU
//! hypercalls drive these operations from guest requests; the domain
//! builder uses them for the bootstrap page tables.
//!
//! # References: handles and counts
//!
//! hv's own uses of a frame are handles: [`FrameRef`] (a general
//! reference) and [`TypedRef`] (a general and a typed reference, of a type
//! named by a [`HeldType`]: writable memory or a descriptor frame). Each is
//! taken by one frame-table operation that checks and counts, and gives its
//! reference back when dropped, so a path that returns early cannot leak
//! one. Only a `TypedRef` of a type whose contents hv may write lets hv
//! write the frame (see `mm::frame_access` in the kernel).
//!
//! References whose lifetime the guest decides stay plain counts in the
//! table: an entry of a validated page table (the rules engine, `crate::pt`,
//! takes and drops them entry by entry), a pin, a vCPU's base table, a
//! mapped LDT page, a GDT frame. Their owner records them (the table's
//! entries, the pin bit, `cr3`, the LDT's mapped bits, the GDT frame list)
//! and puts them back through the same table when the guest lets go. A
//! handle can be turned into such a count ([`TypedRef::into_counted`])
//! once its holder records it.
//!
//! # Ordering rules (what one operation reads and changes together)
//!
//! Today one lock (the kernel's frame-table mutex) covers the whole table;
//! the operations are written so that per-frame atomics (Xen's cmpxchg on
//! `count_info` and `type_info`) can replace it:
//!
//! 1. A frame's `owner`, `refs`, `type_count`, `ty` and `pinned` are one
//!    word's worth of state: every operation reads them, decides, and
//!    writes them in one step (`get_page`, `get_page_and_type`,
//!    `put_page_and_type`, `assign`, `release`). Nothing is decided on a
//!    value read in an earlier step: `check_unused` is a hint only, and
//!    `release_unused` checks again as it releases.
//! 2. Taking a type: the type may change only when `type_count` is zero,
//!    and the new type, the count and the general reference are written
//!    together. A fresh page-table or descriptor type must be validated
//!    before anyone else relies on it: today the lock is held across the
//!    validation; with atomics the frame needs Xen's "validated" bit, and
//!    a second taker of a fresh type waits for it.
//! 3. Releasing: `refs` and `type_count` drop together; the type stays
//!    recorded and may change afterwards. A page table's entries are
//!    devalidated by whoever drops its last type count, before the count
//!    goes (so the frame cannot be freed under the devalidation).
//! 4. Ownership: `assign` only takes an unowned frame, and `release` only
//!    an unreferenced one that still has its allocation reference; a
//!    multi-frame release (`release_unused`,
//!    `assign_extent`) is all or nothing, which with atomics becomes "take
//!    each frame with a cmpxchg, undo the ones taken on the first refusal".
//! 5. Quota: a domain's reservation (`tot_pages` against `max_pages`) is
//!    the domain's state, not the table's: it is reserved before frames are
//!    assigned and given back if the assignment fails, so the count never
//!    goes above the quota, and the frame table never needs the domain.
//! 6. `pfn`, `linear` and `special` belong to the owner's bookkeeping and
//!    change under the same operation that checks the owner.
//!
//! 7. The allocation reference (`allocated`, Xen's `PGC_allocated`): the
//!    domain's own hold on a frame it was given, kept apart from `refs`.
//!    A frame is owned exactly while it has that reference or any other
//!    (`owner.is_some()` implies `allocated || refs > 0`). Giving a frame
//!    back (`decrease_reservation`: [`FrameTable::give_back`]) drops the
//!    allocation reference in one step that also decides the frame's
//!    fate: unreferenced, it is freed at once; referenced, it lives on
//!    for its references (which may still be taken, as on Xen) and the
//!    put that drops the last one frees it, in the same step as the
//!    decrement. With atomics that is the cmpxchg that finds the count
//!    at zero without the allocation bit: exactly one CPU wins the frame.
//!
//! # Freed frames
//!
//! A freed frame leaves its owner at once (no reference can be taken to
//! it any more) and waits on the table's list of freed frames, linked
//! through its `pfn` word and remembering whose reservation still counts
//! it (`freed_from`), until the kernel collects it
//! ([`FrameTable::take_freed`]): so a put deep in a page table's
//! devalidation needs no allocator and no domain. With atomics the CPU
//! whose cmpxchg freed the frame owns it alone and pushes it (a lock-free
//! stack through the link word, or a per-CPU list). The kernel returns the
//! collected frames to the allocator only after flushing the TLB, so a
//! translation cached from a mapping that is gone cannot outlive the
//! frame's ownership; a freed frame is never on the allocator's free list
//! while anything references it.
//!
//! Lock order in the kernel: a domain's state, then the frame table, then
//! the allocator. A handle's `Drop` takes the frame table: never drop one
//! while holding it (use the `*_in` forms there).

use core::marker::PhantomData;

/// What a frame is currently used as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PageType {
    /// No typed use.
    #[default]
    None,
    /// Mapped writable somewhere.
    Writable,
    L1,
    L2,
    L3,
    L4,
    /// Holds GDT/LDT descriptors.
    SegDesc,
}

impl PageType {
    /// Whether this is a page-table type.
    pub fn is_page_table(self) -> bool {
        matches!(self, Self::L1 | Self::L2 | Self::L3 | Self::L4)
    }
}

/// Why a reference was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageError {
    /// The frame number is beyond the table.
    NoSuchFrame,
    /// The owner gave the frame back (`decrease_reservation`): it lives on
    /// only for the references it still has.
    GivenBack,
    /// The frame is not owned by the domain that asked.
    NotOwner,
    /// The frame is already owned.
    AlreadyOwned,
    /// The frame has another type with live references.
    TypeConflict { current: PageType },
    /// A count would overflow.
    Overflow,
    /// Dropping a reference that does not exist.
    Underflow,
}

/// One frame's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PageInfo {
    /// Owning domain, if any.
    pub owner: Option<u16>,
    pub ty: PageType,
    /// References that depend on `ty`.
    pub type_count: u32,
    /// All references (mappings, pins, hv's own uses), less the
    /// allocation reference.
    pub refs: u32,
    /// The owner's allocation reference (Xen's `PGC_allocated`): set when
    /// the frame is given to a domain, dropped when the domain gives it
    /// back. An owned frame has it or some other reference.
    pub allocated: bool,
    /// Pinned by the guest (or the builder) as its type.
    pub pinned: bool,
    /// The pseudo-physical frame the owner knows it by (the M2P entry);
    /// for a frame on the freed list, the next frame of the list.
    pub pfn: u64,
    /// Linear page-table use, Xen's sign rule: > 0 counts the linear
    /// entries this table holds, < 0 counts linear entries elsewhere that
    /// point at it. A table is never both, so linear links cannot form a
    /// cycle that would keep frames alive for ever.
    pub linear: i16,
    /// A page hv shares with the domain (shared_info): mappable, but only
    /// with ordinary (write-back) caching.
    pub special: bool,
    /// For a freed frame not yet collected: the domain it was freed from,
    /// whose reservation still counts it.
    pub freed_from: Option<u16>,
}

/// What giving a frame back came to ([`FrameTable::give_back`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GiveBack {
    /// Nothing else referred to it: freed now (on the freed list).
    Freed,
    /// Still referenced: freed when its last reference goes.
    Deferred,
    /// Given back before, still referenced: nothing changes.
    AlreadyGivenBack,
    /// A page hv shares with the domain (shared_info): it stays as it is.
    Kept,
}

/// The end of the freed list.
const NO_FRAME: u64 = u64::MAX;

/// The table of every machine frame.
pub struct FrameTable<S: AsMut<[PageInfo]> + AsRef<[PageInfo]>> {
    frames: S,
    /// The first frame on the freed list ([`NO_FRAME`]: none).
    freed: u64,
}

impl<S: AsMut<[PageInfo]> + AsRef<[PageInfo]>> FrameTable<S> {
    pub fn new(frames: S) -> Self {
        Self {
            frames,
            freed: NO_FRAME,
        }
    }

    pub fn get(&self, mfn: u64) -> Option<&PageInfo> {
        self.frames.as_ref().get(usize::try_from(mfn).ok()?)
    }

    /// Mutable access for the page-table engine (pin bookkeeping). Not
    /// for the kernel: a frame's owner and counts change only through the
    /// checked operations below.
    pub(crate) fn get_mut(&mut self, mfn: u64) -> Option<&mut PageInfo> {
        self.frames.as_mut().get_mut(usize::try_from(mfn).ok()?)
    }

    /// Number of frames the table covers.
    pub fn len(&self) -> usize {
        self.frames.as_ref().len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.as_ref().is_empty()
    }

    fn entry(&mut self, mfn: u64) -> Result<&mut PageInfo, PageError> {
        let i = usize::try_from(mfn).map_err(|_| PageError::NoSuchFrame)?;
        self.frames
            .as_mut()
            .get_mut(i)
            .ok_or(PageError::NoSuchFrame)
    }

    /// Records `pfn` as the pseudo-physical frame of `owner`'s frame `mfn`
    /// (`MMU_MACHPHYS_UPDATE`); refused for a frame `owner` does not own.
    pub fn set_pfn(&mut self, mfn: u64, owner: u16, pfn: u64) -> Result<(), PageError> {
        let p = self.entry(mfn)?;
        if p.owner != Some(owner) {
            return Err(PageError::NotOwner);
        }
        p.pfn = pfn;
        Ok(())
    }

    /// Marks `owner`'s frame `mfn` as a page hv shares with it
    /// (shared_info: see [`PageInfo::special`]).
    pub fn mark_special(&mut self, mfn: u64, owner: u16) -> Result<(), PageError> {
        let p = self.entry(mfn)?;
        if p.owner != Some(owner) {
            return Err(PageError::NotOwner);
        }
        p.special = true;
        Ok(())
    }

    /// Gives an unowned frame to `owner` as its frame `pfn`.
    ///
    /// # Safety
    /// `mfn` must be a frame the caller's allocator handed out and no one
    /// else uses: the table covers hv's own memory too, and an owned frame
    /// can be mapped by its domain and written through a writable
    /// reference by hv's safe code. (The kernel calls this only from its
    /// allocator handles.)
    #[expect(
        unsafe_code,
        reason = "the precondition is the allocator's, see # Safety"
    )]
    pub unsafe fn assign(&mut self, mfn: u64, owner: u16, pfn: u64) -> Result<(), PageError> {
        self.assign_free(mfn, owner, pfn)
    }

    /// [`FrameTable::assign`] for this crate's own tests and logic.
    pub(crate) fn assign_free(&mut self, mfn: u64, owner: u16, pfn: u64) -> Result<(), PageError> {
        let p = self.entry(mfn)?;
        if p.owner.is_some() || p.freed_from.is_some() {
            return Err(PageError::AlreadyOwned);
        }
        *p = PageInfo {
            owner: Some(owner),
            allocated: true,
            pfn,
            ..PageInfo::default()
        };
        Ok(())
    }

    /// Gives the unowned frames `first..first + pages` to `owner`, frame
    /// `first + j` as its frame `pfn(j)`, all or nothing: if one is owned
    /// already, nothing changes.
    ///
    /// # Safety
    /// As for [`FrameTable::assign`], for every frame of the extent.
    #[expect(
        unsafe_code,
        reason = "the precondition is the allocator's, see # Safety"
    )]
    pub unsafe fn assign_extent(
        &mut self,
        first: u64,
        pages: u64,
        owner: u16,
        pfn: impl Fn(u64) -> u64,
    ) -> Result<(), PageError> {
        self.assign_extent_free(first, pages, owner, pfn)
    }

    /// [`FrameTable::assign_extent`] for this crate's own tests and logic.
    pub(crate) fn assign_extent_free(
        &mut self,
        first: u64,
        pages: u64,
        owner: u16,
        pfn: impl Fn(u64) -> u64,
    ) -> Result<(), PageError> {
        let end = first.checked_add(pages).ok_or(PageError::NoSuchFrame)?;
        for mfn in first..end {
            let p = self.get(mfn).ok_or(PageError::NoSuchFrame)?;
            if p.owner.is_some() || p.freed_from.is_some() {
                return Err(PageError::AlreadyOwned);
            }
        }
        for (j, mfn) in (first..end).enumerate() {
            self.assign_free(mfn, owner, pfn(j as u64))?;
        }
        Ok(())
    }

    /// Takes a frame back from `owner` (it must hold no references but
    /// its allocation reference) for the caller to reuse at once.
    pub fn release(&mut self, mfn: u64, owner: u16) -> Result<(), PageError> {
        let p = self.entry(mfn)?;
        Self::unused(p, owner)?;
        *p = PageInfo::default();
        Ok(())
    }

    /// Whether `owner` could hand `p` over whole: its own, nothing but
    /// the allocation reference on it, and not a page hv shares.
    fn unused(p: &PageInfo, owner: u16) -> Result<(), PageError> {
        if p.owner != Some(owner) {
            return Err(PageError::NotOwner);
        }
        if !p.allocated {
            return Err(PageError::GivenBack);
        }
        if p.refs != 0 || p.type_count != 0 || p.special {
            return Err(PageError::AlreadyOwned);
        }
        Ok(())
    }

    /// Takes back from `owner` every frame of the extents starting at
    /// `firsts`, `pages` frames each, in one step: either `owner` owns all
    /// of them and none holds a reference (nor was given back, nor is one
    /// hv shares with the domain), and all are released, or nothing
    /// changes. Checking and
    /// releasing in one operation leaves no window in which a reference
    /// could be taken in between.
    pub fn release_unused(
        &mut self,
        firsts: &[u64],
        pages: u64,
        owner: u16,
    ) -> Result<(), PageError> {
        self.check_unused(firsts, pages, owner)?;
        for &first in firsts {
            for mfn in first..first + pages {
                self.release(mfn, owner)?;
            }
        }
        Ok(())
    }

    /// Whether [`release_unused`](Self::release_unused) would succeed now:
    /// `owner` owns every frame of the extents and none is referenced,
    /// given back or shared by hv. Only a hint once the table's lock is
    /// dropped.
    pub fn check_unused(&self, firsts: &[u64], pages: u64, owner: u16) -> Result<(), PageError> {
        for &first in firsts {
            let end = first.checked_add(pages).ok_or(PageError::NoSuchFrame)?;
            for mfn in first..end {
                Self::unused(self.get(mfn).ok_or(PageError::NoSuchFrame)?, owner)?;
            }
        }
        Ok(())
    }

    /// `owner` gives frame `mfn` back (`decrease_reservation`, Xen's
    /// `guest_remove_page`): its allocation reference goes, in one step
    /// that frees the frame if nothing else refers to it. A frame still
    /// referenced stays `owner`'s (and counted in its reservation) until
    /// the put that drops its last reference frees it. A frame given back
    /// before, or one hv shares with the domain, is left as it is.
    pub fn give_back(&mut self, mfn: u64, owner: u16) -> Result<GiveBack, PageError> {
        let p = self.entry(mfn)?;
        if p.owner != Some(owner) {
            return Err(PageError::NotOwner);
        }
        if p.special {
            return Ok(GiveBack::Kept);
        }
        if !p.allocated {
            return Ok(GiveBack::AlreadyGivenBack);
        }
        p.allocated = false;
        if p.refs != 0 {
            return Ok(GiveBack::Deferred);
        }
        self.free(mfn);
        Ok(GiveBack::Freed)
    }

    /// Frees `mfn`, owned and now without any reference: it leaves its
    /// owner and joins the freed list. Called only by the step that found
    /// the frame so (the last put, or `give_back`).
    fn free(&mut self, mfn: u64) {
        let next = self.freed;
        if let Ok(p) = self.entry(mfn) {
            *p = PageInfo {
                freed_from: p.owner,
                pfn: next,
                ..PageInfo::default()
            };
            self.freed = mfn;
        }
    }

    /// Whether freed frames wait to be collected.
    pub fn has_freed(&self) -> bool {
        self.freed != NO_FRAME
    }

    /// Takes the next freed frame off the list: its number and the domain
    /// whose reservation counted it. The frame is then unowned and
    /// unreferenced, the caller's to return to the allocator.
    pub fn take_freed(&mut self) -> Option<(u64, u16)> {
        let mfn = self.freed;
        let p = self.entry(mfn).ok()?;
        let (next, owner) = (p.pfn, p.freed_from?);
        *p = PageInfo::default();
        self.freed = next;
        Some((mfn, owner))
    }

    /// Takes a general reference to a frame `owner` owns.
    pub fn get_page(&mut self, mfn: u64, owner: u16) -> Result<(), PageError> {
        let p = self.entry(mfn)?;
        if p.owner != Some(owner) {
            return Err(PageError::NotOwner);
        }
        p.refs = p.refs.checked_add(1).ok_or(PageError::Overflow)?;
        Ok(())
    }

    /// Drops a general reference; the last one of a frame given back
    /// frees it.
    pub fn put_page(&mut self, mfn: u64) -> Result<(), PageError> {
        let p = self.entry(mfn)?;
        p.refs = p.refs.checked_sub(1).ok_or(PageError::Underflow)?;
        if p.refs == 0 && !p.allocated {
            self.free(mfn);
        }
        Ok(())
    }

    /// Takes a general and a typed reference: the frame becomes (or already
    /// is) of type `ty`. Returns whether the type is new (the caller must
    /// then validate the contents for that type).
    pub fn get_page_and_type(
        &mut self,
        mfn: u64,
        owner: u16,
        ty: PageType,
    ) -> Result<bool, PageError> {
        let p = self.entry(mfn)?;
        if p.owner != Some(owner) {
            return Err(PageError::NotOwner);
        }
        let fresh = if p.type_count == 0 {
            true
        } else if p.ty == ty {
            false
        } else {
            return Err(PageError::TypeConflict { current: p.ty });
        };
        let refs = p.refs.checked_add(1).ok_or(PageError::Overflow)?;
        let count = p.type_count.checked_add(1).ok_or(PageError::Overflow)?;
        p.ty = ty;
        p.refs = refs;
        p.type_count = count;
        Ok(fresh)
    }

    /// Drops a typed reference (and its general one). The type stays
    /// recorded but may change once the count is zero; the last reference
    /// of a frame given back frees it.
    pub fn put_page_and_type(&mut self, mfn: u64) -> Result<(), PageError> {
        let p = self.entry(mfn)?;
        if p.type_count == 0 || p.refs == 0 {
            return Err(PageError::Underflow);
        }
        p.type_count -= 1;
        p.refs -= 1;
        if p.type_count == 0 {
            p.pinned = false;
        }
        if p.refs == 0 && !p.allocated {
            self.free(mfn);
        }
        Ok(())
    }

    /// Pins a frame as page-table type `ty` (one more typed reference).
    pub fn pin(&mut self, mfn: u64, owner: u16, ty: PageType) -> Result<(), PageError> {
        if !ty.is_page_table() {
            return Err(PageError::TypeConflict { current: ty });
        }
        self.get_page_and_type(mfn, owner, ty)?;
        self.entry(mfn)?.pinned = true;
        Ok(())
    }
}

/// Where handles give their references back: the one frame table they were
/// taken from, reached without a pointer (the kernel has one global table;
/// host tests use a thread-local one), so a handle is a frame number.
pub trait FrameHome: 'static {
    type Store: AsMut<[PageInfo]> + AsRef<[PageInfo]>;
    /// Runs `f` on the table (under its lock); `None` if there is none.
    fn with<R>(f: impl FnOnce(&mut FrameTable<Self::Store>) -> R) -> Option<R>;
}

/// A type a [`TypedRef`] can hold: one whose references hv itself takes
/// and drops (page-table types are held by the rules engine as counts,
/// since dropping the last one must devalidate the table's entries).
pub trait HeldType: 'static {
    const TYPE: PageType;
}

/// [`PageType::Writable`], as a handle's type.
#[derive(Debug)]
pub struct Writable;
impl HeldType for Writable {
    const TYPE: PageType = PageType::Writable;
}

/// [`PageType::SegDesc`], as a handle's type.
#[derive(Debug)]
pub struct SegDesc;
impl HeldType for SegDesc {
    const TYPE: PageType = PageType::SegDesc;
}

/// A general reference to a frame: while it lives the frame stays owned
/// by whoever owned it when it was taken. Dropped, it puts the reference
/// back.
#[must_use = "dropping the handle gives the reference back at once"]
pub struct FrameRef<H: FrameHome> {
    mfn: u64,
    home: PhantomData<H>,
}

impl<H: FrameHome> FrameRef<H> {
    /// Takes a general reference to `mfn`, which `owner` must own: one
    /// frame-table operation.
    pub fn take(mfn: u64, owner: u16) -> Result<Self, PageError> {
        H::with(|ft| Self::take_in(ft, mfn, owner)).unwrap_or(Err(PageError::NoSuchFrame))
    }

    /// [`take`](Self::take) with the table already held (it must be `H`'s).
    pub fn take_in(ft: &mut FrameTable<H::Store>, mfn: u64, owner: u16) -> Result<Self, PageError> {
        ft.get_page(mfn, owner)?;
        Ok(Self {
            mfn,
            home: PhantomData,
        })
    }

    pub fn mfn(&self) -> u64 {
        self.mfn
    }

    /// Gives the reference back with the table already held.
    pub fn release_in(self, ft: &mut FrameTable<H::Store>) {
        let _ = ft.put_page(self.mfn);
        core::mem::forget(self);
    }
}

impl<H: FrameHome> Drop for FrameRef<H> {
    fn drop(&mut self) {
        H::with(|ft| ft.put_page(self.mfn));
    }
}

impl<H: FrameHome> core::fmt::Debug for FrameRef<H> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "FrameRef({:#x})", self.mfn)
    }
}

/// A general and a typed reference of type `T` to a frame: while it lives
/// the frame keeps type `T` (so a [`Writable`] frame is no page table or
/// descriptor table). Dropped, it puts both back; the type may then change
/// once no other reference of it remains.
#[must_use = "dropping the handle gives the reference back at once"]
pub struct TypedRef<H: FrameHome, T: HeldType> {
    mfn: u64,
    home: PhantomData<(H, T)>,
}

impl<H: FrameHome, T: HeldType> TypedRef<H, T> {
    /// Takes a typed reference of `T` to `mfn`, which `owner` must own:
    /// one frame-table operation. Only for types whose contents need no
    /// validation (writable memory); see [`take_validated`](Self::take_validated).
    pub fn take(mfn: u64, owner: u16) -> Result<Self, PageError> {
        H::with(|ft| Self::take_in(ft, mfn, owner).map(|(r, _)| r))
            .unwrap_or(Err(PageError::NoSuchFrame))
    }

    /// Takes a typed reference and, if the type is new, validates the
    /// frame with `validate` before the table is let go; a refused frame
    /// keeps no reference (`Ok(None)`).
    pub fn take_validated(
        mfn: u64,
        owner: u16,
        validate: impl FnOnce(&Self) -> bool,
    ) -> Result<Option<Self>, PageError> {
        H::with(|ft| {
            let (r, fresh) = Self::take_in(ft, mfn, owner)?;
            if fresh && !validate(&r) {
                r.release_in(ft);
                return Ok(None);
            }
            Ok(Some(r))
        })
        .unwrap_or(Err(PageError::NoSuchFrame))
    }

    /// [`take`](Self::take) with the table already held (it must be
    /// `H`'s); also says whether the type is new, so the caller validates.
    pub fn take_in(
        ft: &mut FrameTable<H::Store>,
        mfn: u64,
        owner: u16,
    ) -> Result<(Self, bool), PageError> {
        let fresh = ft.get_page_and_type(mfn, owner, T::TYPE)?;
        Ok((
            Self {
                mfn,
                home: PhantomData,
            },
            fresh,
        ))
    }

    pub fn mfn(&self) -> u64 {
        self.mfn
    }

    /// Gives the references back with the table already held.
    pub fn release_in(self, ft: &mut FrameTable<H::Store>) {
        let _ = ft.put_page_and_type(self.mfn);
        core::mem::forget(self);
    }

    /// Leaves the references counted in the table for a holder whose
    /// lifetime the guest decides (a GDT frame, a mapped LDT page): that
    /// holder records the frame and later drops the count with
    /// `put_page_and_type`. Returns the frame.
    pub fn into_counted(self) -> u64 {
        let mfn = self.mfn;
        core::mem::forget(self);
        mfn
    }
}

impl<H: FrameHome, T: HeldType> Drop for TypedRef<H, T> {
    fn drop(&mut self) {
        H::with(|ft| ft.put_page_and_type(self.mfn));
    }
}

impl<H: FrameHome, T: HeldType> core::fmt::Debug for TypedRef<H, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "TypedRef<{:?}>({:#x})", T::TYPE, self.mfn)
    }
}

#[cfg(test)]
mod tests;
