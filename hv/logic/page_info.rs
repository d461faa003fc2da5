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
//! # Concurrency: per-frame atomic words
//!
//! There is no lock over the table: every CPU works on it at once, and
//! each frame's state lives in a few atomic words ([`FrameSlot`]), changed
//! by compare-and-swap as Xen changes `count_info` and `type_info`:
//!
//! 1. The **count word** holds the owner, the general reference count, the
//!    allocation reference and the shared/freed marks: `get_page` checks
//!    the owner and counts in one swap, so a frame can never be referenced
//!    by anyone but its owner, and the swap that drops the last reference
//!    of a frame given back is the one that frees it (exactly one CPU wins
//!    the frame).
//! 2. The **type word** holds the type, its count and three bits:
//!    `VALIDATED`, `PINNED` and `LOCKED`. The type changes only in a swap
//!    that finds the count at zero. Every typed reference is also a general
//!    one, taken first and dropped last, so `type_count <= refs` always
//!    and a frame with no general reference has no type reference either.
//! 3. **Validation.** A page-table or descriptor type taken fresh (count
//!    0 to 1) is not yet `VALIDATED`: its taker checks the contents, then
//!    sets the bit ([`FrameTable::set_validated`]) or drops its reference.
//!    Anyone else who wants the same type meanwhile waits for the bit (or
//!    for the count to fall back to zero and then validates it itself);
//!    nobody relies on a table that is still being checked. Waits only go
//!    down the levels (a table's taker takes its children's types, never
//!    its parents'), and linear (same-level) references take only a type
//!    that is validated already and never wait, so waits cannot form a
//!    cycle. The last type reference of a validated table goes in two
//!    steps: `VALIDATED` is cleared with the count still 1 (so nobody
//!    takes the type meanwhile), the engine drops the entries'
//!    references, then the count goes to zero.
//! 4. **Updates** of a validated table's entries hold its `LOCKED` bit
//!    (Xen's `page_lock`), taken with a type reference, so two CPUs never
//!    update one table's entries at once and the table cannot be
//!    devalidated under an update.
//! 5. **TLB stamps** (Xen's `tlbflush_timestamp`). A translation of a frame
//!    that another CPU cached outlives the entry it came from until that
//!    CPU flushes. So when a frame's type count or general count falls to
//!    zero the frame is stamped with the time of the TLB-flush clock, and
//!    before the frame takes a *different* type (a writable page becoming a
//!    page table, a page table becoming writable) or goes back to the
//!    allocator, every CPU that has not flushed since the stamp is flushed
//!    ([`Hooks::flush_stale`]). Until that flush is done the new type is
//!    not `VALIDATED`, so nobody uses it.
//! 6. Multi-frame operations (`release_unused`, `assign_extent`) take each
//!    frame with a swap and undo the ones taken on the first refusal.
//! 7. Quota: a domain's reservation (`tot_pages` against `max_pages`) is
//!    the domain's state, not the table's: it is reserved before frames are
//!    assigned and given back if the assignment fails, so the count never
//!    goes above the quota, and the frame table never needs the domain.
//! 8. `pfn` belongs to the owner's bookkeeping; `linear` counts change by
//!    swaps that keep Xen's sign rule (see [`PageInfo::linear`]).
//!
//! The allocation reference (`allocated`, Xen's `PGC_allocated`) is the
//! domain's own hold on a frame it was given, kept apart from `refs`. A
//! frame is owned exactly while it has that reference or any other.
//! Giving a frame back (`decrease_reservation`: [`FrameTable::give_back`])
//! drops the allocation reference in one swap that also decides the
//! frame's fate: unreferenced, it is freed at once; referenced, it lives on
//! for its references (which may still be taken, as on Xen) and the put
//! that drops the last one frees it.
//!
//! # Freed frames
//!
//! A freed frame leaves its owner at once (no reference can be taken to
//! it any more) and waits on the table's list of freed frames (a stack
//! pushed by swaps, linked through the frame's `pfn` word), remembering
//! whose reservation still counts it (`freed_from`), until the kernel
//! takes the whole list ([`FrameTable::take_all_freed`]): so a put deep in
//! a page table's devalidation needs no allocator and no domain. The
//! kernel returns the collected frames to the allocator only after
//! flushing every CPU that may still cache a translation of them (their
//! stamps), so a translation cached from a mapping that is gone cannot
//! outlive the frame's ownership.

use core::marker::PhantomData;
use core::sync::atomic::{AtomicI16, AtomicU64, Ordering};

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
    /// The type's contents were checked (always, for a type that needs no
    /// check): others may rely on it.
    pub validated: bool,
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

// The count word.
const REFS: u64 = 0xffff_ffff;
const ALLOCATED: u64 = 1 << 32;
const SPECIAL: u64 = 1 << 33;
const OWNED: u64 = 1 << 34;
const FREED: u64 = 1 << 35;
const OWNER_SHIFT: u32 = 48;

// The type word.
const TYPE_COUNT: u64 = 0xffff_ffff;
const TYPE_SHIFT: u32 = 32;
const TYPE_MASK: u64 = 0x7 << TYPE_SHIFT;
const VALIDATED: u64 = 1 << 36;
const PINNED: u64 = 1 << 37;
const LOCKED: u64 = 1 << 38;
/// The type word's top bits count the references ever taken (wrapping):
/// so a swap that drops the last reference fails if anyone took and
/// dropped one since its owner read the word (the TLB stamp it wrote is
/// then read again, see [`FrameTable::stamp`]).
const GEN_ONE: u64 = 1 << 40;

impl PageType {
    const fn bits(self) -> u64 {
        (match self {
            Self::None => 0,
            Self::Writable => 1,
            Self::L1 => 2,
            Self::L2 => 3,
            Self::L3 => 4,
            Self::L4 => 5,
            Self::SegDesc => 6,
        }) << TYPE_SHIFT
    }

    const fn of(word: u64) -> Self {
        match (word & TYPE_MASK) >> TYPE_SHIFT {
            1 => Self::Writable,
            2 => Self::L1,
            3 => Self::L2,
            4 => Self::L3,
            5 => Self::L4,
            6 => Self::SegDesc,
            _ => Self::None,
        }
    }

    /// Whether a fresh reference of this type must have the frame's
    /// contents checked before anyone relies on it.
    pub fn validates(self) -> bool {
        self.is_page_table() || self == Self::SegDesc
    }
}

const fn owner_of(count: u64) -> u16 {
    (count >> OWNER_SHIFT) as u16
}

const fn owned_by(owner: u16) -> u64 {
    OWNED | (owner as u64) << OWNER_SHIFT
}

/// One frame's state, as atomic words (see the module documentation).
#[derive(Debug, Default)]
pub struct FrameSlot {
    count: AtomicU64,
    ty: AtomicU64,
    /// The owner's pseudo-physical frame; on the freed list, the next
    /// frame of the list.
    pfn: AtomicU64,
    /// The TLB-flush clock when a count last fell to zero.
    stamp: AtomicU64,
    linear: AtomicI16,
}

impl FrameSlot {
    /// `n` unowned frames.
    pub fn unowned(n: usize) -> alloc::vec::Vec<Self> {
        core::iter::repeat_with(Self::default).take(n).collect()
    }

    fn snapshot(&self) -> PageInfo {
        let c = self.count.load(Ordering::Acquire);
        let t = self.ty.load(Ordering::Acquire);
        PageInfo {
            owner: (c & OWNED != 0).then_some(owner_of(c)),
            ty: PageType::of(t),
            type_count: (t & TYPE_COUNT) as u32,
            refs: (c & REFS) as u32,
            allocated: c & ALLOCATED != 0,
            pinned: t & PINNED != 0,
            pfn: self.pfn.load(Ordering::Relaxed),
            linear: self.linear.load(Ordering::Relaxed),
            special: c & SPECIAL != 0,
            freed_from: (c & FREED != 0).then_some(owner_of(c)),
            validated: t & VALIDATED != 0,
        }
    }
}

/// What the table asks of its surroundings (the kernel's TLB clock and
/// IPIs; host tests keep the defaults).
#[derive(Clone, Copy)]
pub struct Hooks {
    /// Waits a moment for another CPU (validating a table, say); the
    /// kernel's serves IPIs meanwhile.
    pub relax: fn(),
    /// The TLB-flush clock.
    pub clock: &'static AtomicU64,
    /// Flushes every CPU that may cache a translation dropped at clock
    /// time `stamp` and has not flushed since, waiting for them.
    pub flush_stale: fn(stamp: u64),
}

impl Default for Hooks {
    fn default() -> Self {
        Self {
            relax: core::hint::spin_loop,
            clock: &NO_CLOCK,
            flush_stale: |_| {},
        }
    }
}

/// The clock of a table without one (host tests).
static NO_CLOCK: AtomicU64 = AtomicU64::new(0);

/// What dropping a page-table type reference came to
/// ([`FrameTable::put_type_begin`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutType {
    /// The count went down; nothing else to do.
    Dropped,
    /// It was the last reference of a validated table: the table is no
    /// longer validated, its count still 1. The caller drops the entries'
    /// references, then calls [`FrameTable::put_type_end`].
    Last(PageType),
}

/// The table of every machine frame.
pub struct FrameTable<S: AsRef<[FrameSlot]>> {
    frames: S,
    /// The first frame on the freed list ([`NO_FRAME`]: none).
    freed: AtomicU64,
    pub hooks: Hooks,
}

impl<S: AsRef<[FrameSlot]>> FrameTable<S> {
    pub fn new(frames: S) -> Self {
        Self {
            frames,
            freed: AtomicU64::new(NO_FRAME),
            hooks: Hooks::default(),
        }
    }

    /// A frame's state now (the words are read one after another: a
    /// consistent picture only while nobody else changes the frame).
    pub fn get(&self, mfn: u64) -> Option<PageInfo> {
        self.slot(mfn).ok().map(FrameSlot::snapshot)
    }

    /// A frame's owner now (one word read: cheaper than
    /// [`get`](Self::get) where nothing else is needed).
    #[inline(always)]
    pub fn owner_now(&self, mfn: u64) -> Option<u16> {
        let c = self.slot(mfn).ok()?.count.load(Ordering::Acquire);
        (c & OWNED != 0).then_some(owner_of(c))
    }

    /// A frame's type and type count now (one word read: cheaper than
    /// [`get`](Self::get) where nothing else is needed).
    #[inline(always)]
    pub fn type_now(&self, mfn: u64) -> Option<(PageType, u32)> {
        let x = self.slot(mfn).ok()?.ty.load(Ordering::Acquire);
        Some((PageType::of(x), (x & TYPE_COUNT) as u32))
    }

    /// The TLB-flush clock time at which the frame's type count last fell
    /// to zero (0: never).
    pub fn stamp_of(&self, mfn: u64) -> u64 {
        self.slot(mfn)
            .map_or(0, |s| s.stamp.load(Ordering::Acquire))
    }

    /// Number of frames the table covers.
    pub fn len(&self) -> usize {
        self.frames.as_ref().len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.as_ref().is_empty()
    }

    #[inline(always)]
    fn slot(&self, mfn: u64) -> Result<&FrameSlot, PageError> {
        let i = usize::try_from(mfn).map_err(|_| PageError::NoSuchFrame)?;
        self.frames.as_ref().get(i).ok_or(PageError::NoSuchFrame)
    }

    /// Records in `stamp` that the frame's type count falls to zero now:
    /// written by the CPU about to drop the last reference, before its
    /// swap, so whoever types the frame after the swap sees it. Only the
    /// holder of the last reference writes it, and its swap fails if any
    /// reference was taken since it read the word (the generation), so
    /// the stamp is never older than a translation dropped before it.
    #[inline(always)]
    fn stamp(&self, s: &FrameSlot) {
        s.stamp
            .store(self.hooks.clock.load(Ordering::Acquire), Ordering::Release);
    }

    /// The TLB-flush clock now.
    pub fn now(&self) -> u64 {
        self.hooks.clock.load(Ordering::Acquire)
    }

    /// Swaps `word` from what `f` says of its current value, retrying
    /// while others change it; `f`'s error ends it. Returns the value
    /// replaced.
    #[inline(always)]
    fn update<E>(word: &AtomicU64, mut f: impl FnMut(u64) -> Result<u64, E>) -> Result<u64, E> {
        let mut x = word.load(Ordering::Acquire);
        loop {
            let nx = f(x)?;
            match word.compare_exchange_weak(x, nx, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(x),
                Err(now) => x = now,
            }
        }
    }

    /// Records `pfn` as the pseudo-physical frame of `owner`'s frame `mfn`
    /// (`MMU_MACHPHYS_UPDATE`); refused for a frame `owner` does not own.
    pub fn set_pfn(&self, mfn: u64, owner: u16, pfn: u64) -> Result<(), PageError> {
        self.get_page(mfn, owner)?;
        self.slot(mfn)?.pfn.store(pfn, Ordering::Relaxed);
        self.put_page(mfn)
    }

    /// Marks `owner`'s frame `mfn` as a page hv shares with it
    /// (shared_info: see [`PageInfo::special`]).
    pub fn mark_special(&self, mfn: u64, owner: u16) -> Result<(), PageError> {
        let s = self.slot(mfn)?;
        Self::update(&s.count, |x| {
            if x & (OWNED | FREED) != OWNED || owner_of(x) != owner {
                return Err(PageError::NotOwner);
            }
            Ok(x | SPECIAL)
        })
        .map(|_| ())
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
    pub unsafe fn assign(&self, mfn: u64, owner: u16, pfn: u64) -> Result<(), PageError> {
        self.assign_free(mfn, owner, pfn)
    }

    /// [`FrameTable::assign`] for this crate's own tests and logic.
    pub(crate) fn assign_free(&self, mfn: u64, owner: u16, pfn: u64) -> Result<(), PageError> {
        let s = self.slot(mfn)?;
        if s.count.load(Ordering::Acquire) != 0 {
            return Err(PageError::AlreadyOwned);
        }
        // Unowned, so nobody else can reach the other words: they are
        // set before the swap that publishes the owner.
        s.ty.store(0, Ordering::Relaxed);
        s.linear.store(0, Ordering::Relaxed);
        s.pfn.store(pfn, Ordering::Relaxed);
        s.count
            .compare_exchange(
                0,
                owned_by(owner) | ALLOCATED,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .map(|_| ())
            .map_err(|_| PageError::AlreadyOwned)
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
        &self,
        first: u64,
        pages: u64,
        owner: u16,
        pfn: impl Fn(u64) -> u64,
    ) -> Result<(), PageError> {
        self.assign_extent_free(first, pages, owner, pfn)
    }

    /// [`FrameTable::assign_extent`] for this crate's own tests and logic.
    pub(crate) fn assign_extent_free(
        &self,
        first: u64,
        pages: u64,
        owner: u16,
        pfn: impl Fn(u64) -> u64,
    ) -> Result<(), PageError> {
        let end = first.checked_add(pages).ok_or(PageError::NoSuchFrame)?;
        self.slot(end.checked_sub(1).unwrap_or(first))?;
        for (j, mfn) in (first..end).enumerate() {
            if let Err(e) = self.assign_free(mfn, owner, pfn(j as u64)) {
                for undo in first..mfn {
                    let _ = self.release(undo, owner);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Takes a frame back from `owner` (it must hold no references but
    /// its allocation reference) for the caller to reuse at once.
    pub fn release(&self, mfn: u64, owner: u16) -> Result<(), PageError> {
        let s = self.slot(mfn)?;
        Self::update(&s.count, |x| Self::unused(x, owner).map(|()| 0))?;
        s.ty.store(0, Ordering::Relaxed);
        s.linear.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Whether `owner` could hand over a frame whose count word is `x`
    /// whole: its own, nothing but the allocation reference on it (so no
    /// type reference either), and not a page hv shares.
    fn unused(x: u64, owner: u16) -> Result<(), PageError> {
        if x & (OWNED | FREED) != OWNED || owner_of(x) != owner {
            return Err(PageError::NotOwner);
        }
        if x & ALLOCATED == 0 {
            return Err(PageError::GivenBack);
        }
        if x & REFS != 0 || x & SPECIAL != 0 {
            return Err(PageError::AlreadyOwned);
        }
        Ok(())
    }

    /// Takes back from `owner` every frame of the extents starting at
    /// `firsts`, `pages` frames each: either `owner` owns all of them and
    /// none holds a reference (nor was given back, nor is one hv shares
    /// with the domain), and all are released, or nothing changes. Each
    /// frame is taken by a swap that checks it; on the first refusal the
    /// frames taken are given back to `owner` as they were.
    pub fn release_unused(&self, firsts: &[u64], pages: u64, owner: u16) -> Result<(), PageError> {
        self.check_unused(firsts, pages, owner)?;
        let frames = firsts.iter().flat_map(|&f| f..f + pages);
        for (n, mfn) in frames.clone().enumerate() {
            let s = self.slot(mfn)?;
            if let Err(e) = Self::update(&s.count, |x| Self::unused(x, owner).map(|()| 0)) {
                for undo in frames.take(n) {
                    if let Ok(s) = self.slot(undo) {
                        s.count
                            .store(owned_by(owner) | ALLOCATED, Ordering::Release);
                    }
                }
                return Err(e);
            }
        }
        for mfn in frames {
            let s = self.slot(mfn)?;
            s.ty.store(0, Ordering::Relaxed);
            s.linear.store(0, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Whether [`release_unused`](Self::release_unused) would succeed now:
    /// `owner` owns every frame of the extents and none is referenced,
    /// given back or shared by hv. Only a hint: others may change the
    /// frames right after.
    pub fn check_unused(&self, firsts: &[u64], pages: u64, owner: u16) -> Result<(), PageError> {
        for &first in firsts {
            let end = first.checked_add(pages).ok_or(PageError::NoSuchFrame)?;
            for mfn in first..end {
                Self::unused(self.slot(mfn)?.count.load(Ordering::Acquire), owner)?;
            }
        }
        Ok(())
    }

    /// The count word of a frame freed from `count`: unowned, remembering
    /// whose it was.
    const fn freed_word(count: u64) -> u64 {
        FREED | (owner_of(count) as u64) << OWNER_SHIFT
    }

    /// `owner` gives frame `mfn` back (`decrease_reservation`, Xen's
    /// `guest_remove_page`): its allocation reference goes, in one swap
    /// that frees the frame if nothing else refers to it. A frame still
    /// referenced stays `owner`'s (and counted in its reservation) until
    /// the put that drops its last reference frees it. A frame given back
    /// before, or one hv shares with the domain, is left as it is.
    pub fn give_back(&self, mfn: u64, owner: u16) -> Result<GiveBack, PageError> {
        self.let_go(mfn, owner, false)
    }

    /// A dying domain `owner` lets go of frame `mfn` (Xen's
    /// `relinquish_memory`): as [`give_back`](Self::give_back), but a page
    /// hv shares with the domain (its shared_info) goes too, since the
    /// domain no longer uses it: freed now if nothing refers to it, else
    /// with its last reference (hv's own, dropped with the domain).
    pub fn relinquish(&self, mfn: u64, owner: u16) -> Result<GiveBack, PageError> {
        self.let_go(mfn, owner, true)
    }

    /// [`give_back`](Self::give_back), or with `shared_too`
    /// [`relinquish`](Self::relinquish): one swap of the frame's word.
    fn let_go(&self, mfn: u64, owner: u16, shared_too: bool) -> Result<GiveBack, PageError> {
        let s = self.slot(mfn)?;
        let mut result = GiveBack::Freed;
        Self::update(&s.count, |x| {
            if x & (OWNED | FREED) != OWNED || owner_of(x) != owner {
                return Err(PageError::NotOwner);
            }
            let x = if shared_too { x & !SPECIAL } else { x };
            if x & SPECIAL != 0 {
                result = GiveBack::Kept;
                return Ok(x);
            }
            if x & ALLOCATED == 0 {
                result = GiveBack::AlreadyGivenBack;
                return Ok(x);
            }
            if x & REFS != 0 {
                result = GiveBack::Deferred;
                return Ok(x & !ALLOCATED);
            }
            result = GiveBack::Freed;
            Ok(Self::freed_word(x))
        })?;
        if result == GiveBack::Freed {
            self.push_freed(mfn, s);
        }
        Ok(result)
    }

    /// Puts `mfn`, just freed by this CPU's swap, on the freed list.
    fn push_freed(&self, mfn: u64, s: &FrameSlot) {
        let mut head = self.freed.load(Ordering::Acquire);
        loop {
            s.pfn.store(head, Ordering::Relaxed);
            match self
                .freed
                .compare_exchange_weak(head, mfn, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }

    /// Whether freed frames wait to be collected.
    pub fn has_freed(&self) -> bool {
        self.freed.load(Ordering::Acquire) != NO_FRAME
    }

    /// Takes every freed frame off the list at once: the list is the
    /// caller's alone, walked with [`FrameTable::take_freed_frame`].
    pub fn take_all_freed(&self) -> FreedList {
        FreedList(self.freed.swap(NO_FRAME, Ordering::AcqRel))
    }

    /// The next frame of a list taken with [`take_all_freed`]: its number
    /// and the domain whose reservation counted it. The frame is then
    /// unowned and unreferenced, the caller's to return to the allocator
    /// once no CPU caches a translation of it (read-only mappings leave no
    /// stamp: every CPU that ran its owner may).
    ///
    /// [`take_all_freed`]: FrameTable::take_all_freed
    pub fn take_freed_frame(&self, list: &mut FreedList) -> Option<(u64, u16)> {
        let mfn = list.0;
        let s = self.slot(mfn).ok()?;
        let c = s.count.load(Ordering::Acquire);
        if c & FREED == 0 {
            list.0 = NO_FRAME;
            return None;
        }
        list.0 = s.pfn.load(Ordering::Relaxed);
        s.pfn.store(0, Ordering::Relaxed);
        s.ty.store(0, Ordering::Relaxed);
        s.linear.store(0, Ordering::Relaxed);
        s.count.store(0, Ordering::Release);
        Some((mfn, owner_of(c)))
    }

    /// One freed frame and its former owner, for tests: takes the whole
    /// list and puts back what it does not return.
    #[cfg(test)]
    pub fn take_freed(&self) -> Option<(u64, u16)> {
        let mut list = self.take_all_freed();
        let (mfn, owner) = self.take_freed_frame(&mut list)?;
        while let Some(s) = self
            .slot(list.0)
            .ok()
            .filter(|s| s.count.load(Ordering::Acquire) & FREED != 0)
        {
            let m = list.0;
            list.0 = s.pfn.load(Ordering::Relaxed);
            self.push_freed(m, s);
        }
        Some((mfn, owner))
    }

    /// Takes a general reference to a frame `owner` owns.
    #[inline]
    pub fn get_page(&self, mfn: u64, owner: u16) -> Result<(), PageError> {
        let s = self.slot(mfn)?;
        let want = owned_by(owner);
        Self::update(&s.count, |x| {
            if x & (OWNED | FREED | 0xffff << OWNER_SHIFT) != want {
                return Err(PageError::NotOwner);
            }
            if x & REFS == REFS {
                return Err(PageError::Overflow);
            }
            Ok(x + 1)
        })
        .map(|_| ())
    }

    /// Drops a general reference; the last one of a frame given back
    /// frees it.
    #[inline]
    pub fn put_page(&self, mfn: u64) -> Result<(), PageError> {
        let s = self.slot(mfn)?;
        let old = Self::update(&s.count, |x| {
            if x & REFS == 0 {
                return Err(PageError::Underflow);
            }
            if x & (REFS | ALLOCATED) == 1 {
                return Ok(Self::freed_word(x));
            }
            Ok(x - 1)
        })?;
        if old & (REFS | ALLOCATED) == 1 {
            self.push_freed(mfn, s);
        }
        Ok(())
    }

    /// Takes a general and a typed reference: the frame becomes (or already
    /// is) of type `ty`. Returns whether the type is new (count 0 to 1):
    /// for a type that [validates](PageType::validates), the caller must
    /// then check the contents and call [`set_validated`] (or drop the
    /// reference).
    ///
    /// [`set_validated`]: FrameTable::set_validated
    #[inline]
    pub fn get_page_and_type(&self, mfn: u64, owner: u16, ty: PageType) -> Result<bool, PageError> {
        self.get_page(mfn, owner)?;
        self.get_type(mfn, ty).inspect_err(|_| {
            let _ = self.put_page(mfn);
        })
    }

    /// The typed half of [`get_page_and_type`](Self::get_page_and_type):
    /// the caller holds a general reference.
    #[inline]
    fn get_type(&self, mfn: u64, ty: PageType) -> Result<bool, PageError> {
        let s = self.slot(mfn)?;
        loop {
            let x = s.ty.load(Ordering::Acquire);
            let current = PageType::of(x);
            let count = x & TYPE_COUNT;
            if count == 0 {
                let change = current != ty;
                let mut nx =
                    ((x & !(TYPE_COUNT | TYPE_MASK | VALIDATED | PINNED | LOCKED)) | ty.bits() | 1)
                        .wrapping_add(GEN_ONE);
                if !change && !ty.validates() {
                    nx |= VALIDATED;
                }
                if s.ty
                    .compare_exchange_weak(x, nx, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
                {
                    continue;
                }
                if change {
                    self.type_changed(s, ty);
                }
                return Ok(true);
            }
            if current != ty {
                return Err(PageError::TypeConflict { current });
            }
            if x & VALIDATED == 0 {
                // Another CPU is checking (or letting go of) this type.
                (self.hooks.relax)();
                continue;
            }
            if count == TYPE_COUNT {
                return Err(PageError::Overflow);
            }
            let nx = (x + 1).wrapping_add(GEN_ONE);
            if s.ty
                .compare_exchange_weak(x, nx, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Ok(false);
            }
        }
    }

    /// After the swap that gave the frame type `ty` in place of another:
    /// a CPU may still cache a translation of the frame in its old use,
    /// which must not survive into the new one. Until the flush is done
    /// the type is not validated, so nobody else uses it.
    #[cold]
    #[inline(never)]
    fn type_changed(&self, s: &FrameSlot, ty: PageType) {
        let stamp = s.stamp.load(Ordering::Acquire);
        if stamp != 0 {
            (self.hooks.flush_stale)(stamp);
        }
        if !ty.validates() {
            s.ty.fetch_or(VALIDATED, Ordering::AcqRel);
        }
    }

    /// Takes a general and a typed reference of `ty` only if the frame is
    /// already a validated `ty` in use: never a fresh type, never a wait
    /// (linear page-table references, and hv's checks of a frame's use).
    pub fn get_page_and_existing_type(
        &self,
        mfn: u64,
        owner: u16,
        ty: PageType,
    ) -> Result<(), PageError> {
        self.get_page(mfn, owner)?;
        let s = self.slot(mfn)?;
        Self::update(&s.ty, |x| {
            let current = PageType::of(x);
            if current != ty || x & VALIDATED == 0 || x & TYPE_COUNT == 0 {
                return Err(PageError::TypeConflict { current });
            }
            if x & TYPE_COUNT == TYPE_COUNT {
                return Err(PageError::Overflow);
            }
            Ok((x + 1).wrapping_add(GEN_ONE))
        })
        .map(|_| ())
        .inspect_err(|_| {
            let _ = self.put_page(mfn);
        })
    }

    /// Marks a fresh type as checked: others may use it from now on.
    pub fn set_validated(&self, mfn: u64) {
        if let Ok(s) = self.slot(mfn) {
            s.ty.fetch_or(VALIDATED, Ordering::AcqRel);
        }
    }

    /// Takes a general and a typed reference of a type hv built itself
    /// (the domain builder's bootstrap tables, correct by construction):
    /// a fresh type counts as validated at once.
    pub fn get_page_and_built_type(
        &self,
        mfn: u64,
        owner: u16,
        ty: PageType,
    ) -> Result<(), PageError> {
        if self.get_page_and_type(mfn, owner, ty)? {
            self.set_validated(mfn);
        }
        Ok(())
    }

    /// Drops one type reference. `last_table`: the last reference of a
    /// validated page table only loses `VALIDATED` (returned as `Some`),
    /// its count staying 1 while the caller lets its entries go. At zero
    /// the frame is stamped and loses `VALIDATED` and `PINNED`. The last
    /// reference of a locked table waits for the lock to go (an update
    /// of its entries is under way).
    #[inline(always)]
    fn drop_type(&self, s: &FrameSlot, last_table: bool) -> Result<Option<PageType>, PageError> {
        loop {
            let x = s.ty.load(Ordering::Acquire);
            let ty = PageType::of(x);
            let (nx, last) = match x & TYPE_COUNT {
                0 => return Err(PageError::Underflow),
                1 if x & LOCKED != 0 => {
                    (self.hooks.relax)();
                    continue;
                }
                1 if last_table && ty.is_page_table() && x & VALIDATED != 0 => {
                    (x & !VALIDATED, Some(ty))
                }
                1 => {
                    self.stamp(s);
                    ((x - 1) & !(VALIDATED | PINNED), None)
                }
                _ => (x - 1, None),
            };
            if s.ty
                .compare_exchange_weak(x, nx, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Ok(last);
            }
        }
    }

    /// Drops a typed reference (and its general one). The type stays
    /// recorded but may change once the count is zero; the last reference
    /// of a frame given back frees it. (A validated page table's last type
    /// reference goes through the rules engine, which drops its entries'
    /// references: see [`put_type_begin`](Self::put_type_begin).)
    #[inline]
    pub fn put_page_and_type(&self, mfn: u64) -> Result<(), PageError> {
        let s = self.slot(mfn)?;
        self.drop_type(s, false)?;
        self.put_page(mfn)
    }

    /// First step of dropping a type reference (the general one stays):
    /// the last reference of a validated page table only clears
    /// `VALIDATED` ([`PutType::Last`]), so that its entries can be let go
    /// while nobody else takes the type; [`put_type_end`] then drops it.
    ///
    /// [`put_type_end`]: FrameTable::put_type_end
    #[inline]
    pub fn put_type_begin(&self, mfn: u64) -> Result<PutType, PageError> {
        let s = self.slot(mfn)?;
        Ok(self
            .drop_type(s, true)?
            .map_or(PutType::Dropped, PutType::Last))
    }

    /// Last step after [`PutType::Last`]: the type count goes to zero.
    pub fn put_type_end(&self, mfn: u64) -> Result<(), PageError> {
        let s = self.slot(mfn)?;
        self.drop_type(s, false).map(|_| ())
    }

    /// Pins a frame hv built as page-table type `ty` (one more typed
    /// reference; the domain builder's, see
    /// [`get_page_and_built_type`](Self::get_page_and_built_type)).
    pub fn pin(&self, mfn: u64, owner: u16, ty: PageType) -> Result<(), PageError> {
        if !ty.is_page_table() {
            return Err(PageError::TypeConflict { current: ty });
        }
        self.get_page_and_built_type(mfn, owner, ty)?;
        if !self.set_pinned(mfn) {
            let _ = self.put_page_and_type(mfn);
            return Err(PageError::AlreadyOwned);
        }
        Ok(())
    }

    /// Sets the pin bit of a frame the caller holds a type reference to;
    /// false if it was set already.
    pub fn set_pinned(&self, mfn: u64) -> bool {
        self.slot(mfn)
            .is_ok_and(|s| s.ty.fetch_or(PINNED, Ordering::AcqRel) & PINNED == 0)
    }

    /// Clears the pin bit; false if it was not set.
    pub fn clear_pinned(&self, mfn: u64) -> bool {
        self.slot(mfn)
            .is_ok_and(|s| s.ty.fetch_and(!PINNED, Ordering::AcqRel) & PINNED != 0)
    }

    /// Locks `owner`'s validated page table `mfn` for an update of its
    /// entries (Xen's `page_lock`): sets its lock bit, waiting while
    /// another CPU holds it or while the table is being validated.
    /// Returns its type. The lock takes no reference: while it is held the
    /// table's last type reference cannot go (its holder waits for the
    /// lock), so the table stays typed, referenced and its owner's.
    /// Release with [`unlock_table`](Self::unlock_table).
    #[inline]
    pub fn lock_table(&self, mfn: u64, owner: u16) -> Result<PageType, PageError> {
        let s = self.slot(mfn)?;
        let mine = |c: u64| c & (OWNED | FREED | 0xffff << OWNER_SHIFT) == owned_by(owner);
        // Another domain's table is refused before its bit is touched, so
        // no domain can make another's updates wait (checked again below,
        // once locked, for a frame that changed hands meanwhile).
        if !mine(s.count.load(Ordering::Acquire)) {
            return Err(PageError::NotOwner);
        }
        let ty = loop {
            let x = s.ty.load(Ordering::Acquire);
            let ty = PageType::of(x);
            if x & TYPE_COUNT == 0 || !ty.is_page_table() {
                return Err(PageError::TypeConflict { current: ty });
            }
            if x & (LOCKED | VALIDATED) != VALIDATED {
                (self.hooks.relax)();
                continue;
            }
            if s.ty
                .compare_exchange_weak(x, x | LOCKED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                break ty;
            }
        };
        // Checked once locked: the owner cannot change from here on.
        if !mine(s.count.load(Ordering::Acquire)) {
            self.unlock_table(mfn);
            return Err(PageError::NotOwner);
        }
        Ok(ty)
    }

    /// Lets go of a table locked with [`lock_table`](Self::lock_table).
    #[inline]
    pub fn unlock_table(&self, mfn: u64) {
        if let Ok(s) = self.slot(mfn) {
            s.ty.fetch_and(!LOCKED, Ordering::Release);
        }
    }

    /// Adds one to a table's linear count if Xen's sign rule allows:
    /// `holder` (a table holding linear entries) must not be the target of
    /// any; the other way round for a target.
    pub fn linear_step(&self, mfn: u64, holder: bool) -> bool {
        let Ok(s) = self.slot(mfn) else {
            return false;
        };
        let mut x = s.linear.load(Ordering::Acquire);
        loop {
            let nx = match (holder, x) {
                (true, 0..=32766) => x + 1,
                (false, -32767..=0) => x - 1,
                _ => return false,
            };
            match s
                .linear
                .compare_exchange_weak(x, nx, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(now) => x = now,
            }
        }
    }

    /// Undoes [`linear_step`](Self::linear_step).
    pub fn linear_unstep(&self, mfn: u64, holder: bool) {
        if let Ok(s) = self.slot(mfn) {
            s.linear
                .fetch_add(if holder { -1 } else { 1 }, Ordering::AcqRel);
        }
    }
}

/// Freed frames taken off the table's list ([`FrameTable::take_all_freed`]).
#[derive(Debug)]
pub struct FreedList(u64);

/// Where handles give their references back: the one frame table they were
/// taken from, reached without a pointer (the kernel has one global table;
/// host tests use a thread-local one), so a handle is a frame number.
pub trait FrameHome: 'static {
    type Store: AsRef<[FrameSlot]>;
    /// Runs `f` on the table; `None` if there is none.
    fn with<R>(f: impl FnOnce(&FrameTable<Self::Store>) -> R) -> Option<R>;
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

    /// [`take`](Self::take) with the table at hand (it must be `H`'s).
    pub fn take_in(ft: &FrameTable<H::Store>, mfn: u64, owner: u16) -> Result<Self, PageError> {
        ft.get_page(mfn, owner)?;
        Ok(Self {
            mfn,
            home: PhantomData,
        })
    }

    pub fn mfn(&self) -> u64 {
        self.mfn
    }

    /// Gives the reference back with the table at hand.
    pub fn release_in(self, ft: &FrameTable<H::Store>) {
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

impl<H: FrameHome> TypedRef<H, Writable> {
    /// Takes a writable type reference to `mfn`, which `owner` must own:
    /// one frame-table operation (writable memory needs no validation).
    pub fn take(mfn: u64, owner: u16) -> Result<Self, PageError> {
        H::with(|ft| Self::take_in(ft, mfn, owner)).unwrap_or(Err(PageError::NoSuchFrame))
    }

    /// [`take`](Self::take) with the table at hand (it must be `H`'s).
    pub fn take_in(ft: &FrameTable<H::Store>, mfn: u64, owner: u16) -> Result<Self, PageError> {
        ft.get_page_and_type(mfn, owner, PageType::Writable)?;
        Ok(Self {
            mfn,
            home: PhantomData,
        })
    }
}

impl<H: FrameHome, T: HeldType> TypedRef<H, T> {
    /// Takes a typed reference and, if the type is new and needs it,
    /// validates the frame with `validate` before anyone else may use the
    /// type; a refused frame keeps no reference (`Ok(None)`).
    pub fn take_validated(
        mfn: u64,
        owner: u16,
        validate: impl FnOnce(&Self) -> bool,
    ) -> Result<Option<Self>, PageError> {
        H::with(|ft| Self::take_validated_in(ft, mfn, owner, validate))
            .unwrap_or(Err(PageError::NoSuchFrame))
    }

    /// [`take_validated`](Self::take_validated) with the table at hand
    /// (it must be `H`'s).
    pub fn take_validated_in(
        ft: &FrameTable<H::Store>,
        mfn: u64,
        owner: u16,
        validate: impl FnOnce(&Self) -> bool,
    ) -> Result<Option<Self>, PageError> {
        let fresh = ft.get_page_and_type(mfn, owner, T::TYPE)?;
        let r = Self {
            mfn,
            home: PhantomData,
        };
        if fresh && T::TYPE.validates() {
            if !validate(&r) {
                r.release_in(ft);
                return Ok(None);
            }
            ft.set_validated(mfn);
        }
        Ok(Some(r))
    }

    pub fn mfn(&self) -> u64 {
        self.mfn
    }

    /// Gives the references back with the table at hand.
    pub fn release_in(self, ft: &FrameTable<H::Store>) {
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
