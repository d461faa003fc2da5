//! Guest page tables under direct paging: the rules that decide which
//! page-table entries a PV guest may have, and the reference counting that
//! keeps every frame's type honest (Xen 4.17's `get_page_type` /
//! `get_page_from_lNe` family, as plain logic).
//!
//! A frame becomes an Ln table when something first takes an Ln type
//! reference on it (a pin, a parent entry, a CR3 load): every present entry
//! is then validated and takes its own reference on what it points at —
//! a general reference (plus a writable type reference when it maps RW) for
//! an L1 entry, an L(n-1) type reference for higher levels, which validates
//! the child in turn. When the last type reference goes, every entry's
//! reference is dropped again. An update of one entry takes the new entry's
//! reference before dropping the old one, so a failed update changes
//! nothing.
//!
//! Invariants (checked by the property tests below): a frame typed as a page
//! table is never mapped writable by any validated L1; every reference held
//! by an entry of a validated table is counted on its target exactly once;
//! a frame's counts return to zero when nothing refers to it.
//!
//! The hypervisor's own L4 slots (256–271) are not the guest's: they are
//! skipped when an L4 is validated (hv writes its own entries there) and
//! updates to them are refused.
//!
//! TLB coherence (issue #11). The counts speak of the tables in memory,
//! but the CPU also caches translations (leaf entries, and the
//! paging-structure entries of the upper levels), and a cached one
//! outlives the entry it came from until a flush. So an operation that
//! replaces a present entry, or drops a table's last type reference (its
//! entries stop holding references), reports it in
//! [`PageTables::flush_owed`]: from then on a cached translation may reach
//! a frame the counts let change type or leave the domain. The kernel
//! records the report per CPU and flushes before the next access through
//! the guest's mappings. Adding an entry over a not-present one owes
//! nothing (the CPU never caches those), nor does validating a table
//! (nothing was walked through it in its new life). The TLB model in the
//! tests (`tests/tlb_model.rs`) checks that this report, with that rule,
//! never leaves a cached writable translation to a typed frame, or any
//! translation to a frame the domain no longer owns, at an access.

use crate::page_info::{FrameSlot, FrameTable, PageError, PageType, PutType};
use guest_abi::errno::Errno;

pub const PTE_P: u64 = 1 << 0;
pub const PTE_RW: u64 = 1 << 1;
pub const PTE_US: u64 = 1 << 2;
pub const PTE_PWT: u64 = 1 << 3;
pub const PTE_PCD: u64 = 1 << 4;
pub const PTE_A: u64 = 1 << 5;
pub const PTE_D: u64 = 1 << 6;
/// PSE in L2/L3 entries, PAT in L1 entries.
pub const PTE_PSE: u64 = 1 << 7;
pub const PTE_G: u64 = 1 << 8;
pub const PTE_NX: u64 = 1 << 63;
/// Physical-address bits of an entry (52-bit physical addresses).
pub const PTE_ADDR: u64 = 0x000f_ffff_ffff_f000;

/// First and one-past-last hypervisor L4 slot.
pub const HV_L4_FIRST: usize = 256;
pub const HV_L4_END: usize = 272;

/// Xen's "guest kernel page" software bit (bit 52), set on L1 entries of
/// pages the guest mapped without the user bit.
pub const PTE_GUEST_KERNEL: u64 = 1 << 52;

/// Flags a guest may not set in L2–L4 entries (Xen 4.17's base mask for
/// 64-bit PV): no cache attributes, no superpages, no global bit. Bits 9–11
/// and 52–62 are the guest's, NX is allowed.
const UPPER_DISALLOW: u64 = PTE_PWT | PTE_PCD | PTE_PSE | PTE_G;
/// Flags an update may change on a present entry without re-taking its
/// reference (Xen's fast path): NX, the guest's available bits, global,
/// dirty, accessed and user. Not RW (writable mappings hold a type
/// reference) and not the cache attributes (checked against the frame).
const FAST_PATH_FLAGS: u64 =
    PTE_NX | 0x7ff0_0000_0000_0000 | 0xe00 | PTE_G | PTE_D | PTE_A | PTE_US;

/// L1 entries of a domain without I/O rights may not choose caching either.
const L1_DISALLOW_NO_IO: u64 = PTE_PWT | PTE_PCD | PTE_PSE;

/// Why a page-table operation was refused. Every refusal leaves all counts
/// as they were, and every entry too, with one exception Xen shares: when
/// a table's validation fails after one of its child tables validated, the
/// child's entries keep the bits Xen's adjustment added (the user bit on
/// upper entries). The `pt` fuzz target checks exactly this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PtError {
    /// A reserved or unsupported flag is set in an entry.
    BadFlags { level: u8, entry: u64 },
    /// An L1 entry names a frame that is not memory (Xen: I/O memory the
    /// domain has no permission for).
    NotMemory { mfn: u64 },
    /// An L1 entry names memory the domain does not own, or maps a frame
    /// writable that is in use as a page table or descriptor table.
    Busy { mfn: u64 },
    /// A frame's bookkeeping refused (owner, type conflict, counts) where
    /// Xen answers -EINVAL.
    Page { mfn: u64, error: PageError },
    /// The table being updated is not a validated page table of the
    /// domain, or not of the level the request implies.
    NotPageTable { mfn: u64 },
    /// The entry index is one of the hypervisor's L4 slots.
    HypervisorSlot { index: usize },
    /// Index outside a table.
    BadIndex,
    /// A page hv shares with the domain mapped with a cache attribute
    /// other than write-back.
    CacheAttributes { mfn: u64 },
    /// The entry does not map the frame a grant mapping was made of.
    NotMapping { mfn: u64 },
}

impl PtError {
    /// The errno Xen 4.17 answers for the same refusal.
    pub fn errno(self) -> Errno {
        match self {
            Self::NotMemory { mfn } if mfn == (PTE_ADDR >> 12) => Errno::EINVAL,
            Self::NotMemory { .. } => Errno::EPERM,
            Self::Busy { .. } => Errno::EBUSY,
            Self::CacheAttributes { .. } => Errno::EACCES,
            Self::BadFlags { .. }
            | Self::Page { .. }
            | Self::NotPageTable { .. }
            | Self::HypervisorSlot { .. }
            | Self::NotMapping { .. }
            | Self::BadIndex => Errno::EINVAL,
        }
    }
}

/// What Xen stores for a present entry the guest wrote: 64-bit PV kernels
/// run in ring 3, so every level is user-accessible; L1 pages the guest
/// mapped for its kernel (no user bit) are marked with the guest-kernel bit,
/// and its user pages are made global.
pub fn adjust_entry(level: u8, entry: u64) -> u64 {
    if entry & PTE_P == 0 {
        return entry;
    }
    match level {
        1 => {
            let e = if entry & PTE_US == 0 {
                entry | PTE_US | PTE_GUEST_KERNEL
            } else {
                entry
            };
            if e & PTE_GUEST_KERNEL == 0 {
                e | PTE_G | PTE_US
            } else {
                e
            }
        }
        4 => entry | PTE_US | PTE_A,
        _ => entry | PTE_US,
    }
}

/// Machine memory that is not RAM (Xen 4.17's `dom_io` frames and the
/// frames past its frame table): what an L1 entry may map without taking
/// a reference, if the domain has I/O rights (the hardware domain, whose
/// `iomem` permission Xen sets to everything but what Xen keeps).
///
/// A frame is RAM when it lies wholly inside a RAM range of the firmware's
/// map; every other frame is I/O memory (ROM, MMIO, holes, and the
/// partial pages at a RAM range's edges, as Xen counts them), except the
/// `denied` frames the hypervisor keeps (its local APIC and I/O APIC
/// pages) and the frames past the CPU's physical address width, which no
/// domain may map. Unlike Xen, hv keeps the RAM of the
/// first MiB as RAM (it holds the firmware's data and hv's own trampoline),
/// where Xen lets the hardware domain map all of the first MiB.
#[derive(Clone, Copy, Debug, Default)]
pub struct IoMemory<'m> {
    /// The firmware's map: (address, size, E820 type); type 1 is RAM.
    pub e820: &'m [(u64, u64, u32)],
    /// Frames no domain may map: (first mfn, last mfn), inclusive.
    pub denied: &'m [(u64, u64)],
    /// I/O frames the hardware domain may map read-only only (Xen's
    /// `mmio_ro_ranges`: the I/O APICs' pages): a writable entry is stored
    /// without RW, as Xen forces it.
    pub read_only: &'m [(u64, u64)],
    /// One past the last frame the CPU can address (`1 << (MAXPHYADDR -
    /// 12)`): Xen permits the hardware domain I/O memory below it only.
    pub end_mfn: u64,
}

/// What [`IoMemory::classify`] makes of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    Ram,
    Io,
    /// I/O memory mapped read-only whatever the entry asks.
    IoReadOnly,
    Denied,
}

/// E820 type of RAM.
const E820_RAM: u32 = 1;

impl IoMemory<'_> {
    pub fn classify(&self, mfn: u64) -> FrameKind {
        if mfn >= self.end_mfn || self.denied.iter().any(|&(a, b)| (a..=b).contains(&mfn)) {
            return FrameKind::Denied;
        }
        let Some(start) = mfn.checked_mul(4096) else {
            return FrameKind::Io;
        };
        let end = start.saturating_add(4096);
        let ram = self.e820.iter().any(|&(addr, size, ty)| {
            ty == E820_RAM && addr <= start && end <= addr.saturating_add(size)
        });
        if ram {
            FrameKind::Ram
        } else if self.read_only.iter().any(|&(a, b)| (a..=b).contains(&mfn)) {
            FrameKind::IoReadOnly
        } else {
            FrameKind::Io
        }
    }
}

/// Access to the contents of page-table frames.
pub trait TableMemory {
    fn read(&self, mfn: u64, index: usize) -> u64;
    fn write(&mut self, mfn: u64, index: usize, value: u64);
}

fn level_type(level: u8) -> PageType {
    match level {
        1 => PageType::L1,
        2 => PageType::L2,
        3 => PageType::L3,
        _ => PageType::L4,
    }
}

/// The level of a page-table type.
pub fn type_level(ty: PageType) -> Option<u8> {
    match ty {
        PageType::L1 => Some(1),
        PageType::L2 => Some(2),
        PageType::L3 => Some(3),
        PageType::L4 => Some(4),
        _ => None,
    }
}

fn entry_mfn(entry: u64) -> u64 {
    (entry & PTE_ADDR) >> 12
}

/// The indices of the bits set in `words` (bit `i % 64` of word `i / 64`),
/// in order: a step per set bit.
fn set_bits(words: &[u64; 8]) -> SetBits {
    SetBits { words: *words }
}

struct SetBits {
    words: [u64; 8],
}

impl Iterator for SetBits {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        let (w, bits) = self.words.iter_mut().enumerate().find(|(_, b)| **b != 0)?;
        let bit = bits.trailing_zeros() as usize;
        *bits &= *bits - 1;
        Some(w * 64 + bit)
    }
}

impl DoubleEndedIterator for SetBits {
    fn next_back(&mut self) -> Option<usize> {
        let (w, bits) = self
            .words
            .iter_mut()
            .enumerate()
            .rev()
            .find(|(_, b)| **b != 0)?;
        let bit = 63 - bits.leading_zeros() as usize;
        *bits &= !(1 << bit);
        Some(w * 64 + bit)
    }
}

#[inline]
fn is_guest_slot(level: u8, index: usize) -> bool {
    level != 4 || !(HV_L4_FIRST..HV_L4_END).contains(&index)
}

/// The rules engine for one domain's page tables.
pub struct PageTables<'a, S, M>
where
    S: AsRef<[FrameSlot]>,
    M: TableMemory,
{
    pub frames: &'a FrameTable<S>,
    /// The tables' contents: private, so only the engine's own checks
    /// decide what is written (the kernel's memory writes any frame).
    mem: &'a mut M,
    pub domain: u16,
    /// Whose frames an L1 entry updated directly may map (Xen's
    /// `pg_owner`): the domain itself, or, for a privileged caller's
    /// `mmu_update` with a `foreigndom`, the domain named there. A table
    /// validated on the way is checked against its own domain.
    pub pg_owner: u16,
    /// The domain has I/O rights (the hardware domain): its L1 entries may
    /// choose cache attributes and map I/O memory.
    pub io_caps: bool,
    /// Which frames are I/O memory (`None`: every frame counts as RAM).
    /// A function, asked only when a frame no domain owns is mapped, so
    /// the common operations do not pay for fetching the description.
    pub io_memory: fn() -> Option<&'static IoMemory<'static>>,
    /// The TLB obligation the operations so far created (see the module
    /// documentation's "TLB coherence"): set when a translation the CPU
    /// may have cached was removed or changed. Never cleared here; the
    /// caller reads it once its operations are done.
    pub flush_owed: bool,
    /// Keep a table locked from one update to the next of the same table
    /// (a batch of `mmu_update` requests mostly writes one table): the
    /// caller then calls [`unlock`](Self::unlock) when it is done with
    /// the engine. Anything else the engine does for its caller lets go
    /// of the table first.
    pub keep_locked: bool,
    /// The table this engine holds locked, and its type.
    locked: Option<(u64, PageType)>,
}

impl<'a, S, M> PageTables<'a, S, M>
where
    S: AsRef<[FrameSlot]>,
    M: TableMemory,
{
    pub fn new(frames: &'a FrameTable<S>, mem: &'a mut M, domain: u16, io_caps: bool) -> Self {
        Self {
            frames,
            mem,
            domain,
            pg_owner: domain,
            io_caps,
            io_memory: || None,
            flush_owed: false,
            keep_locked: false,
            locked: None,
        }
    }

    /// Puts a grant mapping into entry `index` of the domain's L1 `table`
    /// (Xen's `create_grant_pv_mapping`): `new` names a frame, maybe
    /// another domain's, whose references (a general one, and the
    /// writable type if `new` is writable) the caller took for it. From
    /// here on they are the entry's, and go as any L1 entry's do when it is
    /// replaced, whoever replaces it (as on Xen, where a grant mapping's
    /// references belong to its PTE). The old entry's go. On an error
    /// nothing changed and the caller still holds its references.
    pub fn install_granted(&mut self, table: u64, index: usize, new: u64) -> Result<u64, PtError> {
        self.with_l1_locked(table, index, |pt| {
            if new & PTE_P == 0 || new & pt.disallowed(1) != 0 {
                return Err(PtError::BadFlags {
                    level: 1,
                    entry: new,
                });
            }
            let old = pt.mem.read(table, index);
            pt.mem.write(table, index, adjust_entry(1, new));
            pt.put_entry(1, table, old);
            pt.flush_owed |= old & PTE_P != 0;
            Ok(old)
        })
    }

    /// Takes a grant mapping out of entry `index` of the domain's L1
    /// `table` (Xen's `replace_grant_pv_mapping` with nothing to put
    /// back): only if the entry maps `mfn`, writable exactly if
    /// `writable` (`PtError::NotMapping` otherwise, and nothing changes);
    /// its references go with it.
    pub fn remove_granted(
        &mut self,
        table: u64,
        index: usize,
        mfn: u64,
        writable: bool,
    ) -> Result<u64, PtError> {
        self.replace_granted(table, index, mfn, writable, 0)
    }

    /// [`remove_granted`](Self::remove_granted) putting `new` in the
    /// entry's place: an entry [`steal_l1_entry`](Self::steal_l1_entry)
    /// took out of one of the domain's L1s, whose references it carries
    /// (Xen's `replace_grant_pv_mapping` with a `new_addr`). On an error
    /// nothing changed and `new` is still the caller's.
    pub fn replace_granted(
        &mut self,
        table: u64,
        index: usize,
        mfn: u64,
        writable: bool,
        new: u64,
    ) -> Result<u64, PtError> {
        self.with_l1_locked(table, index, |pt| {
            let old = pt.mem.read(table, index);
            if old & PTE_P == 0 || entry_mfn(old) != mfn || (old & PTE_RW != 0) != writable {
                return Err(PtError::NotMapping { mfn });
            }
            pt.mem.write(table, index, new);
            pt.put_entry(1, table, old);
            pt.flush_owed = true;
            Ok(old)
        })
    }

    /// Takes entry `index` out of the domain's L1 `table`, leaving it
    /// empty, and hands it to the caller with the references it holds:
    /// the caller puts it into another L1 entry
    /// ([`replace_granted`](Self::replace_granted)) or drops it
    /// ([`drop_l1_entry`](Self::drop_l1_entry)).
    pub fn steal_l1_entry(&mut self, table: u64, index: usize) -> Result<u64, PtError> {
        self.with_l1_locked(table, index, |pt| {
            let old = pt.mem.read(table, index);
            pt.mem.write(table, index, 0);
            pt.flush_owed |= old & PTE_P != 0;
            Ok(old)
        })
    }

    /// Drops the references of an L1 entry [`steal_l1_entry`](Self::steal_l1_entry)
    /// took out.
    pub fn drop_l1_entry(&mut self, entry: u64) {
        self.unlock();
        self.put_entry(1, 0, entry);
    }

    /// Runs `f` with L1 `table` locked (`NotPageTable` if it is not one of
    /// the domain's validated L1s) for a change of entry `index`.
    fn with_l1_locked(
        &mut self,
        table: u64,
        index: usize,
        f: impl FnOnce(&mut Self) -> Result<u64, PtError>,
    ) -> Result<u64, PtError> {
        let ty = self.lock_for(table, index)?;
        let r = if ty == PageType::L1 {
            f(self)
        } else {
            Err(PtError::NotPageTable { mfn: table })
        };
        self.unlock_unless_kept();
        r
    }

    /// Locks `table` (kept from the last update if it is the same) for a
    /// change of entry `index`: its type.
    #[inline(always)]
    fn lock_for(&mut self, table: u64, index: usize) -> Result<PageType, PtError> {
        if index >= 512 {
            return Err(PtError::BadIndex);
        }
        match self.locked {
            Some((held, ty)) if held == table => Ok(ty),
            _ => self.lock(table),
        }
    }

    /// Lets the table go after an update, unless the batch keeps it.
    #[inline(always)]
    fn unlock_unless_kept(&mut self) {
        if !self.keep_locked {
            self.unlock();
        }
    }

    /// Lets go of the table kept locked, if any.
    #[inline]
    pub fn unlock(&mut self) {
        if let Some((table, _)) = self.locked.take() {
            self.frames.unlock_table(table);
        }
    }

    fn page_err(mfn: u64) -> impl Fn(PageError) -> PtError {
        move |error| PtError::Page { mfn, error }
    }

    /// Takes a type reference of `ty` on `mfn`, validating its contents if
    /// the type is new. On failure nothing changes.
    pub fn get_type(&mut self, mfn: u64, ty: PageType) -> Result<(), PtError> {
        self.unlock();
        self.take_type(mfn, ty)
    }

    /// Drops a type reference; when it is the last one of a page-table
    /// type, first drops every reference the table's entries hold.
    pub fn put_type(&mut self, mfn: u64) -> Result<(), PtError> {
        self.unlock();
        self.drop_type(mfn)
    }

    /// [`get_type`](Self::get_type) inside an operation (a table may be
    /// locked: this never waits for a lock).
    fn take_type(&mut self, mfn: u64, ty: PageType) -> Result<(), PtError> {
        let fresh = self
            .frames
            .get_page_and_type(mfn, self.domain, ty)
            .map_err(Self::page_err(mfn))?;
        self.after_get_type(mfn, ty, fresh)
    }

    fn after_get_type(&mut self, mfn: u64, ty: PageType, fresh: bool) -> Result<(), PtError> {
        if fresh {
            if let Some(level) = type_level(ty) {
                if let Err(e) = self.validate(mfn, level) {
                    // Undo the reference taken above; the frame is typeless
                    // again (never validated, so no entry holds anything).
                    let _ = self.frames.put_page_and_type(mfn);
                    return Err(e);
                }
            }
            // A fresh page-table type is usable now; so is any other type
            // that validates elsewhere (a descriptor frame: the engine
            // does not check descriptors, so its caller must have).
            if ty.validates() {
                self.frames.set_validated(mfn);
            }
        }
        Ok(())
    }

    /// [`put_type`](Self::put_type) inside an operation: when it is the
    /// last reference of a page-table type, first drops every reference
    /// the table's entries hold (while the count still keeps the frame,
    /// unvalidated so nobody else takes the type meanwhile: the put may
    /// free it). The last reference of a table locked by another CPU
    /// waits for its lock; never one this engine holds (an update's
    /// entries never hold a reference to their own table).
    fn drop_type(&mut self, mfn: u64) -> Result<(), PtError> {
        let err = Self::page_err(mfn);
        if let PutType::Last(ty) = self.frames.put_type_begin(mfn).map_err(&err)? {
            if let Some(level) = type_level(ty) {
                // The table's entries stop holding their references: any
                // translation cached through it may now reach a frame
                // that changes type or leaves the domain.
                self.flush_owed = true;
                self.devalidate(mfn, level);
            }
            self.frames.put_type_end(mfn).map_err(&err)?;
        }
        self.frames.put_page(mfn).map_err(err)
    }

    /// Validates every present entry of a table of `level`; on a bad entry
    /// drops the references already taken and reports it.
    fn validate(&mut self, mfn: u64, level: u8) -> Result<(), PtError> {
        // One read of each entry: the present ones (the only ones that
        // take references or get adjusted) are remembered, so a sparse
        // table costs a load and a test per entry.
        let mut present = [0u64; 8];
        let mark = |present: &mut [u64; 8], i: usize| {
            if let Some(w) = present.get_mut(i / 64) {
                *w |= 1 << (i % 64);
            }
        };
        for index in 0..512 {
            let entry = self.mem.read(mfn, index);
            if entry & PTE_P == 0 || !is_guest_slot(level, index) {
                continue;
            }
            if let Err(e) = self.get_entry(level, mfn, entry, self.domain) {
                for undo in set_bits(&present).rev() {
                    let old = self.mem.read(mfn, undo);
                    self.put_entry(level, mfn, old);
                }
                return Err(e);
            }
            mark(&mut present, index);
        }
        // Validation succeeded: store the entries as Xen adjusts them.
        for index in set_bits(&present) {
            let entry = self.mem.read(mfn, index);
            let adjusted = adjust_entry(level, self.force_read_only(level, entry));
            if adjusted != entry {
                self.mem.write(mfn, index, adjusted);
            }
        }
        Ok(())
    }

    fn devalidate(&mut self, mfn: u64, level: u8) {
        for index in 0..512 {
            if is_guest_slot(level, index) {
                let entry = self.mem.read(mfn, index);
                self.put_entry(level, mfn, entry);
            }
        }
    }

    /// Checks one entry of table `table` (of `level`) and takes the
    /// reference it holds on its target.
    /// Takes what `entry` of `table` (of `level`) needs; an L1 entry's
    /// frame must be `owner`'s (the domain's own, or, for an update the
    /// caller makes with a foreign `pg_owner`, that domain's).
    fn get_entry(&mut self, level: u8, table: u64, entry: u64, owner: u16) -> Result<(), PtError> {
        if entry & PTE_P == 0 {
            return Ok(());
        }
        if entry & self.disallowed(level) != 0 {
            return Err(PtError::BadFlags { level, entry });
        }
        let target = entry_mfn(entry);
        if level == 1 {
            return self.get_l1_target(target, entry, owner);
        }
        match self.take_type(target, level_type(level - 1)) {
            // Only a conflict on the target itself (not one found while
            // validating it) can make a linear entry.
            Err(PtError::Page {
                mfn,
                error: PageError::TypeConflict { current },
            }) if mfn == target && current == level_type(level) => {
                self.get_linear(level, table, target, entry)
            }
            other => other,
        }
    }

    fn get_l1_target(&mut self, target: u64, entry: u64, owner: u16) -> Result<(), PtError> {
        // Xen's I/O path: a mapping of I/O memory holds no reference (and
        // `put_entry` drops none: the frame has no owner).
        let found = self.frames.get(target);
        // Only a frame no domain owns can be I/O memory.
        if found.is_none_or(|p| p.owner.is_none()) {
            match (self.io_memory)().map(|io| io.classify(target)) {
                None | Some(FrameKind::Ram) => {}
                Some(FrameKind::Io | FrameKind::IoReadOnly) if self.io_caps => return Ok(()),
                Some(FrameKind::Io | FrameKind::IoReadOnly | FrameKind::Denied) => {
                    return Err(PtError::NotMemory { mfn: target })
                }
            }
        }
        let writable = entry & PTE_RW != 0;
        let Some(info) = found else {
            return Err(PtError::NotMemory { mfn: target });
        };
        if info.owner != Some(owner) {
            return Err(PtError::Busy { mfn: target });
        }
        if info.special && entry & (PTE_PWT | PTE_PCD | PTE_PSE) != 0 {
            return Err(PtError::CacheAttributes { mfn: target });
        }
        let r = if writable {
            self.frames
                .get_page_and_type(target, owner, PageType::Writable)
                .map(|_| ())
        } else {
            self.frames.get_page(target, owner)
        };
        r.map_err(|_| PtError::Busy { mfn: target })
    }

    /// A linear (same-level) entry, as Xen 4.17 allows them: read-only, and
    /// either pointing at its own table (no reference) or at another
    /// validated table of the same level (a type reference). Anything else
    /// keeps the original type conflict.
    fn get_linear(
        &mut self,
        level: u8,
        table: u64,
        target: u64,
        entry: u64,
    ) -> Result<(), PtError> {
        let conflict = PtError::Page {
            mfn: target,
            error: PageError::TypeConflict {
                current: level_type(level),
            },
        };
        if entry & PTE_RW != 0 {
            return Err(conflict);
        }
        if target == table {
            return Ok(());
        }
        // Xen's sign rule, one swap per frame: the table holds linear
        // entries, the target is pointed at by them, never both.
        if !self.frames.linear_step(table, true) {
            return Err(conflict);
        }
        if !self.frames.linear_step(target, false) {
            self.frames.linear_unstep(table, true);
            return Err(conflict);
        }
        // The target must already be a validated table of this level.
        if self
            .frames
            .get_page_and_existing_type(target, self.domain, level_type(level))
            .is_err()
        {
            self.frames.linear_unstep(target, false);
            self.frames.linear_unstep(table, true);
            return Err(conflict);
        }
        Ok(())
    }

    /// Drops the reference an entry of table `table` (of `level`) held.
    fn put_entry(&mut self, level: u8, table: u64, entry: u64) {
        if entry & PTE_P == 0 {
            return;
        }
        let target = entry_mfn(entry);
        if level == 1 {
            // I/O memory (no owner) was mapped without a reference. Any
            // other frame holds one: the domain's own, or another
            // domain's the entry got through a grant.
            if self.frames.get(target).is_none_or(|p| p.owner.is_none()) {
                return;
            }
            if entry & PTE_RW != 0 {
                let _ = self.frames.put_page_and_type(target);
            } else {
                let _ = self.frames.put_page(target);
            }
        } else if target == table {
            // A self-referencing linear entry holds nothing.
        } else {
            if self
                .frames
                .get(target)
                .is_some_and(|p| p.ty == level_type(level))
            {
                // A linear entry: undo the sign-rule counts.
                self.frames.linear_unstep(table, true);
                self.frames.linear_unstep(target, false);
            }
            let _ = self.drop_type(target);
        }
    }

    /// Replaces entry `index` of the validated table `table` (which must be
    /// a page table of the domain) with `new`. Returns the old entry.
    pub fn update_entry(&mut self, table: u64, index: usize, new: u64) -> Result<u64, PtError> {
        self.update_entry_of(table, None, index, new)
    }

    /// [`update_entry`](Self::update_entry) of a table that must be an L1
    /// (`update_va_mapping`), checked with the table locked.
    #[inline]
    pub fn update_l1_entry(&mut self, table: u64, index: usize, new: u64) -> Result<u64, PtError> {
        self.update_entry_of(table, Some(PageType::L1), index, new)
    }

    #[inline(always)]
    fn update_entry_of(
        &mut self,
        table: u64,
        want: Option<PageType>,
        index: usize,
        new: u64,
    ) -> Result<u64, PtError> {
        let ty = self.lock_for(table, index)?;
        let r = match type_level(ty) {
            Some(level) if want.is_none_or(|w| w == ty) => {
                self.update_locked(table, level, index, new)
            }
            _ => Err(PtError::NotPageTable { mfn: table }),
        };
        self.unlock_unless_kept();
        r
    }

    /// Locks `table` for updates (letting go of the one held before).
    #[inline(always)]
    fn lock(&mut self, table: u64) -> Result<PageType, PtError> {
        self.unlock();
        let ty = self
            .frames
            .lock_table(table, self.domain)
            .map_err(|_| PtError::NotPageTable { mfn: table })?;
        self.locked = Some((table, ty));
        Ok(ty)
    }

    /// [`update_entry`](Self::update_entry) with the table locked.
    #[inline(always)]
    fn update_locked(
        &mut self,
        table: u64,
        level: u8,
        index: usize,
        new: u64,
    ) -> Result<u64, PtError> {
        if !is_guest_slot(level, index) {
            return Err(PtError::HypervisorSlot { index });
        }
        let old = self.mem.read(table, index);
        // Xen's fast path: the same frame, and only flags that carry no
        // reference changed (the reference the old entry holds is exactly
        // the one the new entry needs), so only the flags are checked.
        if old & new & PTE_P != 0 && (old ^ new) & !FAST_PATH_FLAGS == 0 {
            if new & self.disallowed(level) != 0 {
                return Err(PtError::BadFlags { level, entry: new });
            }
            let stored = adjust_entry(level, new);
            if stored != old {
                self.mem.write(table, index, stored);
                // Only flags changed and no reference moved: the rules
                // need no flush (the TLB model finds nothing without
                // this), but a stale copy of the old flags could fault
                // where the new ones allow (hv does not filter spurious
                // faults), so it is owed too.
                self.flush_owed = true;
            }
            return Ok(old);
        }
        // Not on the fast path: an entry forced read-only differs from
        // the writable one asked for in RW, which the fast path excludes.
        let new = self.force_read_only(level, new);
        // Only the entry updated directly maps the foreign owner's frames
        // (tables validated on the way hold their own domain's).
        self.get_entry(level, table, new, self.pg_owner)?;
        self.mem.write(table, index, adjust_entry(level, new));
        self.put_entry(level, table, old);
        // A present entry replaced: the CPU may hold the old translation
        // (a leaf, or a paging-structure entry), which no reference backs
        // any more. A not-present entry is never cached.
        self.flush_owed |= old & PTE_P != 0;
        Ok(old)
    }

    /// `entry` as stored: an L1 entry mapping read-only I/O memory loses
    /// RW (Xen's "Forcing read-only access to MFN").
    fn force_read_only(&self, level: u8, entry: u64) -> u64 {
        // Cheapest tests first: mapping RAM the domain owns, the common
        // case, never scans the firmware map.
        let ro = level == 1
            && entry & (PTE_P | PTE_RW) == PTE_P | PTE_RW
            && self.io_caps
            && self
                .frames
                .get(entry_mfn(entry))
                .is_none_or(|p| p.owner.is_none())
            && (self.io_memory)()
                .is_some_and(|io| io.classify(entry_mfn(entry)) == FrameKind::IoReadOnly);
        if ro {
            entry & !PTE_RW
        } else {
            entry
        }
    }

    fn disallowed(&self, level: u8) -> u64 {
        match level {
            1 if self.io_caps => 0,
            1 => L1_DISALLOW_NO_IO,
            _ => UPPER_DISALLOW,
        }
    }

    /// Pins `mfn` as a table of `level` (one more type reference, held until
    /// unpinned).
    pub fn pin(&mut self, mfn: u64, level: u8) -> Result<(), PtError> {
        self.unlock();
        let already = PtError::Page {
            mfn,
            error: PageError::AlreadyOwned,
        };
        let info = self.frames.get(mfn).ok_or(PtError::Page {
            mfn,
            error: PageError::NoSuchFrame,
        })?;
        if info.pinned {
            return Err(already);
        }
        self.take_type(mfn, level_type(level))?;
        // Pinned by another CPU meanwhile: one pin only, as Xen.
        if !self.frames.set_pinned(mfn) {
            let _ = self.drop_type(mfn);
            return Err(already);
        }
        Ok(())
    }

    /// Drops a pin.
    pub fn unpin(&mut self, mfn: u64) -> Result<(), PtError> {
        self.unlock();
        let refused = PtError::NotPageTable { mfn };
        // A general reference first: the frame is the domain's and stays
        // so while its pin bit is looked at.
        self.frames
            .get_page(mfn, self.domain)
            .map_err(|_| refused)?;
        let r = if self.frames.clear_pinned(mfn) {
            self.drop_type(mfn)
        } else {
            Err(refused)
        };
        let _ = self.frames.put_page(mfn);
        r
    }
}

#[cfg(test)]
#[expect(
    clippy::cast_possible_truncation,
    reason = "test frame numbers and indices are tiny; the casts keep the property tests readable"
)]
mod tests;
