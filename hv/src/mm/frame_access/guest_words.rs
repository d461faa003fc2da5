//! Words hv shares with a guest inside the guest's own frames: a vCPU's
//! `vcpu_info` ([`VcpuInfoRef`]) and a domain's event words
//! ([`EventWords`]: the 2-level bitmaps in `shared_info`, each vCPU's
//! selector and upcall flag, the FIFO control blocks and event-array
//! pages).
//!
//! Each handle holds a writable type reference on every frame it reaches
//! (so none can become a page table or descriptor table, or be freed,
//! while hv uses it) and checks each address once, when it is made: the
//! word lies inside the held frame, aligned to its size. The guest writes
//! the same words from its own vCPUs at any time, so hv never forms a
//! plain reference to them: the entry paths use volatile loads and stores
//! of the `vcpu_info` bytes they need, and the event logic (`hv::evtchn`)
//! gets the event words as atomics borrowed from the handle, changed only
//! by atomic read-modify-writes, as Xen's `guest_test_and_set_bit` and
//! `cmpxchg` change them.

use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU64};

use alloc::vec::Vec;

use guest_abi::event_channel::EvtchnFifoControlBlock;
use guest_abi::xen::{SharedInfo, VcpuInfo, VcpuTimeInfo, XEN_LEGACY_MAX_VCPUS};
use hv::evtchn::{EventMemory, FIFO_MAX_PAGES, FIFO_WORDS_PER_PAGE};

use super::{frame_va, FrameWrite, OutOfRange, WritableRef};

/// A vCPU's `vcpu_info`: 64 bytes inside a frame hv holds a writable type
/// reference on (so the frame can never become a page table or descriptor
/// table, nor be freed or exchanged, while hv writes it), its place checked
/// once when made. The fields the entry paths touch (upcall mask, cr2) are
/// then single loads and stores through the direct map. The guest may
/// write the same bytes at any time: every access is volatile and no Rust
/// reference to them is formed.
#[derive(Debug)]
pub struct VcpuInfoRef {
    /// Held for as long as hv may write the `vcpu_info`.
    _frame: WritableRef,
    /// Direct-map address of the `vcpu_info`.
    va: u64,
}

const VCPU_INFO_SIZE: u64 = size_of::<guest_abi::xen::VcpuInfo>() as u64;
const UPCALL_PENDING: u64 =
    core::mem::offset_of!(guest_abi::xen::VcpuInfo, evtchn_upcall_pending) as u64;
const UPCALL_MASK: u64 = core::mem::offset_of!(guest_abi::xen::VcpuInfo, evtchn_upcall_mask) as u64;
const ARCH_CR2: u64 = core::mem::offset_of!(guest_abi::xen::VcpuInfo, arch) as u64
    + core::mem::offset_of!(guest_abi::xen::ArchVcpuInfo, cr2) as u64;

impl VcpuInfoRef {
    /// The `vcpu_info` at `offset` in the frame `frame` holds: 8-byte
    /// aligned and wholly inside the frame (as Xen requires of a
    /// registered one), else `OutOfRange`.
    pub fn new(frame: WritableRef, offset: u64) -> Result<Self, OutOfRange> {
        if !offset.is_multiple_of(8) {
            return Err(OutOfRange);
        }
        let va = frame_va(frame.frame(), offset, VCPU_INFO_SIZE)?;
        Ok(Self { _frame: frame, va })
    }

    /// `evtchn_upcall_mask`.
    #[inline(always)]
    pub fn upcall_mask(&self) -> u8 {
        // SAFETY: `va` was checked (`new`) to address VCPU_INFO_SIZE bytes
        // of the held frame in the direct map, which stays mapped and is
        // ordinary memory of the domain for as long as `self` holds it.
        unsafe { core::ptr::read_volatile((self.va + UPCALL_MASK) as *const u8) }
    }

    #[inline(always)]
    pub fn set_upcall_mask(&self, mask: bool) {
        // SAFETY: as in `upcall_mask`; the writable type reference makes
        // the frame plain memory, never a table hv validated.
        unsafe { core::ptr::write_volatile((self.va + UPCALL_MASK) as *mut u8, u8::from(mask)) };
    }

    /// `arch.cr2`, where the guest reads a page fault's address.
    #[inline(always)]
    pub fn cr2(&self) -> u64 {
        // SAFETY: as in `upcall_mask`; the field is 8-byte aligned because
        // `va` is (`new`).
        unsafe { core::ptr::read_volatile((self.va + ARCH_CR2) as *const u64) }
    }

    #[inline(always)]
    pub fn set_cr2(&self, cr2: u64) {
        // SAFETY: as in `cr2` and `set_upcall_mask`.
        unsafe { core::ptr::write_volatile((self.va + ARCH_CR2) as *mut u64, cr2) };
    }
    /// Direct-map address of the `vcpu_info`: the per-CPU block keeps a
    /// copy for the exit paths' event check (`arch::x86_64::entry`).
    #[inline(always)]
    pub fn va(&self) -> u64 {
        self.va
    }

    /// `evtchn_upcall_pending`.
    #[inline(always)]
    pub fn upcall_pending(&self) -> u8 {
        // SAFETY: as in `upcall_mask`.
        unsafe { core::ptr::read_volatile((self.va + UPCALL_PENDING) as *const u8) }
    }

    /// `evtchn_upcall_pending` (low byte) and `evtchn_upcall_mask` (high
    /// byte), read together.
    #[inline(always)]
    pub fn upcall_word(&self) -> u16 {
        // SAFETY: as in `upcall_mask`; the two bytes are the first two of
        // the 8-byte aligned `vcpu_info`.
        unsafe { core::ptr::read_volatile((self.va + UPCALL_PENDING) as *const u16) }
    }

    /// Copies `other`'s 64 bytes here (a `vcpu_info` moving:
    /// `VCPUOP_register_vcpu_info`), eight bytes at a time.
    pub fn copy_from(&self, other: &VcpuInfoRef) {
        for off in (0..VCPU_INFO_SIZE).step_by(8) {
            // SAFETY: both addresses were checked (`new`) to address
            // VCPU_INFO_SIZE bytes, 8-byte aligned, of frames their
            // handles hold writable; volatile, as the guest may write
            // them meanwhile.
            unsafe {
                let v = core::ptr::read_volatile((other.va + off) as *const u64);
                core::ptr::write_volatile((self.va + off) as *mut u64, v);
            }
        }
    }

    /// Marks every event as possibly pending (`evtchn_upcall_pending` and
    /// the whole selector set), as Xen does after moving a `vcpu_info`
    /// so that nothing raised meanwhile is lost.
    pub fn mark_all_pending(&self) {
        // SAFETY: as in `set_upcall_mask`; the selector is the 8-byte
        // aligned word at its offset inside the checked range.
        unsafe {
            core::ptr::write_volatile((self.va + UPCALL_PENDING) as *mut u8, 1);
            core::ptr::write_volatile((self.va + PENDING_SEL) as *mut u64, u64::MAX);
        }
    }

    /// Whether an event upcall is due (see [`hv::evtchn::upcall_due`]).
    #[inline(always)]
    pub fn upcall_due(&self) -> bool {
        hv::evtchn::upcall_due(self.upcall_word())
    }
}

const TIME: u64 = core::mem::offset_of!(VcpuInfo, time) as u64;

impl crate::time::TimeArea for VcpuInfoRef {
    fn read_time(&self) -> VcpuTimeInfo {
        // SAFETY: as in `upcall_mask`; `time` is 8-byte aligned inside the
        // checked `vcpu_info` (offset 32 of an 8-byte aligned place).
        unsafe { core::ptr::read_volatile((self.va + TIME) as *const VcpuTimeInfo) }
    }

    fn write_time_version(&self, version: u32) {
        // SAFETY: as in `read_time`.
        unsafe { core::ptr::write_volatile((self.va + TIME) as *mut u32, version) };
    }

    fn write_time_body(&self, t: &VcpuTimeInfo) {
        let base = self.va + TIME;
        let tail = u64::from(t.tsc_to_system_mul)
            | u64::from(t.tsc_shift.cast_unsigned()) << 32
            | u64::from(t.flags) << 40;
        // SAFETY: as in `read_time`: three aligned words of the `time`
        // field (bytes 8..32), the version (0..4) left to the caller.
        unsafe {
            core::ptr::write_volatile((base + 8) as *mut u64, t.tsc_timestamp);
            core::ptr::write_volatile((base + 16) as *mut u64, t.system_time);
            core::ptr::write_volatile((base + 24) as *mut u64, tail);
        }
    }
}

/// An aligned word of type `A` at direct-map address `va`, borrowed for as
/// long as the handle that checked it.
///
/// # Safety
/// `va` is aligned to `A` and lies, whole, inside a frame of the direct
/// map that a handle borrowed for `'a` holds a writable type reference on
/// (so the memory stays mapped, is never a page table, and is never
/// freed while the borrow lasts). Everyone else reaches the word only
/// atomically or volatilely (hv) or through the guest's own mappings.
#[inline(always)]
unsafe fn word_at<'a, A>(va: u64) -> &'a A {
    // SAFETY: the caller's guarantees; `A` is one of the atomic types,
    // whose shared references allow concurrent atomic changes.
    unsafe { &*(va as *const A) }
}

/// Where a word goes that does not exist (a vCPU the domain does not
/// have): the event logic only asks for words that exist, so nothing but
/// an hv bug writes these, and then harmlessly.
static NO_WORD64: AtomicU64 = AtomicU64::new(0);
static NO_WORD16: AtomicU16 = AtomicU16::new(0);

/// One guest frame held for its words, and the direct-map address of the
/// first word hv uses in it.
#[derive(Debug)]
struct HeldWords {
    _frame: WritableRef,
    va: u64,
}

impl HeldWords {
    /// `len` bytes at `offset` of `frame`, aligned to `align`.
    fn new(frame: WritableRef, offset: u64, len: u64, align: u64) -> Result<Self, OutOfRange> {
        if !offset.is_multiple_of(align) {
            return Err(OutOfRange);
        }
        let va = frame_va(frame.frame(), offset, len)?;
        Ok(Self { _frame: frame, va })
    }
}

const PENDING: u64 = core::mem::offset_of!(SharedInfo, evtchn_pending) as u64;
const MASK: u64 = core::mem::offset_of!(SharedInfo, evtchn_mask) as u64;
const VCPU_INFO: u64 = core::mem::offset_of!(SharedInfo, vcpu_info) as u64;
const PENDING_SEL: u64 = core::mem::offset_of!(VcpuInfo, evtchn_pending_sel) as u64;
const CONTROL_SIZE: u64 = size_of::<EvtchnFifoControlBlock>() as u64;
const CONTROL_HEAD: u64 = core::mem::offset_of!(EvtchnFifoControlBlock, head) as u64;
const _: () = assert!(PENDING.is_multiple_of(8) && MASK.is_multiple_of(8));
const _: () = assert!(PENDING_SEL.is_multiple_of(8) && CONTROL_HEAD.is_multiple_of(4));

/// A domain's event words, as [`hv::evtchn::EventMemory`]: the pending
/// and mask bitmaps of its `shared_info`, each vCPU's `evtchn_pending_sel`
/// and `evtchn_upcall_pending`, and, once it switched to FIFO, each vCPU's
/// control block and the event-array pages in order.
///
/// A vCPU's `vcpu_info` is its slot in `shared_info` (the first
/// `XEN_LEGACY_MAX_VCPUS` have one), where each `Vcpu`'s [`VcpuInfoRef`]
/// points too, until `VCPUOP_register_vcpu_info` moves both
/// ([`EventWords::move_vcpu_info`]): the words then name a frame the
/// vCPU's `VcpuInfoRef` holds, which lives as long as the domain's vCPUs,
/// and so as long as these words (a `Domain` drops its events first).
#[derive(Debug)]
pub struct EventWords {
    shared: HeldWords,
    /// Direct-map address of each vCPU's `vcpu_info`, all inside `shared`.
    vcpu_info: Vec<u64>,
    /// Each vCPU's FIFO control block, once registered.
    control: Vec<Option<HeldWords>>,
    /// The FIFO event-array pages, in port order.
    array: Vec<HeldWords>,
}

impl EventWords {
    /// The words of a domain of `nr_vcpus` vCPUs whose `shared_info` is
    /// `shared` (a writable reference of the caller's, now the handle's).
    pub fn new(shared: WritableRef, nr_vcpus: u32) -> Result<Self, OutOfRange> {
        let n = usize::try_from(nr_vcpus).map_err(|_| OutOfRange)?;
        if n > XEN_LEGACY_MAX_VCPUS {
            return Err(OutOfRange);
        }
        let shared = HeldWords::new(shared, 0, size_of::<SharedInfo>() as u64, 8)?;
        let size = size_of::<VcpuInfo>() as u64;
        let vcpu_info = (0..n as u64)
            .map(|i| shared.va + VCPU_INFO + i * size)
            .collect();
        let control = (0..n).map(|_| None).collect();
        Ok(Self {
            shared,
            vcpu_info,
            control,
            array: Vec::new(),
        })
    }

    /// Registers `vcpu`'s FIFO control block at byte `offset` of `frame`;
    /// `OutOfRange` (the frame is dropped) if the block would not lie
    /// inside the frame, 8-byte aligned, or the vCPU does not exist.
    pub fn set_control_block(
        &mut self,
        vcpu: u32,
        frame: WritableRef,
        offset: u32,
    ) -> Result<(), OutOfRange> {
        let slot = self
            .control
            .get_mut(usize::try_from(vcpu).map_err(|_| OutOfRange)?)
            .ok_or(OutOfRange)?;
        *slot = Some(HeldWords::new(frame, u64::from(offset), CONTROL_SIZE, 8)?);
        Ok(())
    }

    /// Adds `frame` as the next event-array page; `OutOfRange` (the frame
    /// is dropped) past the ABI's last page or without heap for it.
    pub fn add_event_page(&mut self, frame: WritableRef) -> Result<(), OutOfRange> {
        if self.array.len() >= FIFO_MAX_PAGES as usize {
            return Err(OutOfRange);
        }
        self.array.try_reserve(1).map_err(|_| OutOfRange)?;
        self.array.push(HeldWords::new(frame, 0, 4096, 8)?);
        Ok(())
    }

    /// `vcpu`'s `vcpu_info` is now at `info` (whose handle the vCPU
    /// keeps, see the type's docs); false if there is no such vCPU.
    pub fn move_vcpu_info(&mut self, vcpu: u32, info: &VcpuInfoRef) -> bool {
        let slot = usize::try_from(vcpu)
            .ok()
            .and_then(|i| self.vcpu_info.get_mut(i));
        match slot {
            Some(va) => {
                *va = info.va;
                true
            }
            None => false,
        }
    }

    /// Event-array pages registered.
    pub fn event_pages(&self) -> usize {
        self.array.len()
    }

    /// Lets every FIFO frame go (a reset returned the domain to 2-level).
    pub fn release_fifo(&mut self) {
        self.array.clear();
        self.control.iter_mut().for_each(|c| *c = None);
    }

    fn vcpu_info(&self, vcpu: u32) -> Option<u64> {
        self.vcpu_info.get(usize::try_from(vcpu).ok()?).copied()
    }
}

impl EventMemory for EventWords {
    #[inline]
    fn evtchn_pending(&self, word: usize) -> &AtomicU64 {
        let va = self.shared.va + PENDING + (word % 64) as u64 * 8;
        // SAFETY: one of the 64 aligned words of `evtchn_pending`, inside
        // the held shared_info frame (checked in `new`).
        unsafe { word_at(va) }
    }

    #[inline]
    fn evtchn_mask(&self, word: usize) -> &AtomicU64 {
        let va = self.shared.va + MASK + (word % 64) as u64 * 8;
        // SAFETY: as in `evtchn_pending`, for `evtchn_mask`.
        unsafe { word_at(va) }
    }

    #[inline]
    fn evtchn_pending_sel(&self, vcpu: u32) -> &AtomicU64 {
        match self.vcpu_info(vcpu) {
            // SAFETY: a `vcpu_info` slot of the held shared_info frame
            // (`new`), whose selector is 8-byte aligned.
            Some(va) => unsafe { word_at(va + PENDING_SEL) },
            None => &NO_WORD64,
        }
    }

    #[inline]
    fn evtchn_upcall_pending(&self, vcpu: u32) -> &AtomicU16 {
        match self.vcpu_info(vcpu) {
            // SAFETY: as in `evtchn_pending_sel`, the slot's first two
            // bytes (8-byte aligned).
            Some(va) => unsafe { word_at(va) },
            None => &NO_WORD16,
        }
    }

    #[inline]
    fn event_word(&self, port: u32) -> Option<&AtomicU32> {
        let page = self.array.get((port / FIFO_WORDS_PER_PAGE) as usize)?;
        let va = page.va + u64::from(port % FIFO_WORDS_PER_PAGE) * 4;
        // SAFETY: word `port % 1024` of a held event-array page (checked
        // whole and aligned in `add_event_page`).
        Some(unsafe { word_at(va) })
    }

    #[inline]
    fn control_ready(&self, vcpu: u32) -> Option<&AtomicU32> {
        let block = self.control.get(usize::try_from(vcpu).ok()?)?.as_ref()?;
        // SAFETY: `ready`, the first word of a control block checked to
        // lie inside its held frame, 8-byte aligned (`set_control_block`).
        Some(unsafe { word_at(block.va) })
    }

    #[inline]
    fn control_head(&self, vcpu: u32, queue: usize) -> Option<&AtomicU32> {
        if queue >= guest_abi::event_channel::EVTCHN_FIFO_MAX_QUEUES {
            return None;
        }
        let block = self.control.get(usize::try_from(vcpu).ok()?)?.as_ref()?;
        // SAFETY: `head[queue]` (queue below 16, checked above) of a
        // control block checked as in `control_ready`.
        Some(unsafe { word_at(block.va + CONTROL_HEAD + queue as u64 * 4) })
    }
}

/// A domain's grant-table entries and (version 2) status words, in the
/// grant frames and status frames hv shares with it (held writable for
/// the table's life): [`hv::grant::SharedEntry`] for each entry, reached
/// only atomically, since the domain rewrites its entries at any time.
#[derive(Debug)]
pub struct GrantWords<'a> {
    /// Direct-map address of the entry's first word (flags, domid).
    header: &'a AtomicU32,
    /// Its status word (v2) or, v1, the same word's flags half.
    status: Option<&'a AtomicU16>,
}

impl GrantWords<'_> {
    /// Entry `gref` of a table of `frames` (grant frames) and `status`
    /// (status frames), `None` if the frames do not hold it.
    pub fn entry<'a>(
        frames: &'a [WritableRef],
        status: &'a [WritableRef],
        version: hv::grant::Version,
        gref: u32,
    ) -> Option<GrantWords<'a>> {
        use hv::grant::{Version, STATUS_PER_FRAME, V1_PER_FRAME, V2_PER_FRAME};
        let (per, size) = match version {
            Version::V1 => (V1_PER_FRAME, 8),
            Version::V2 => (V2_PER_FRAME, 16),
        };
        let frame = frames.get((gref / per) as usize)?;
        let va = frame_va(frame.frame(), u64::from(gref % per) * size, 4).ok()?;
        // SAFETY: aligned (frame_va) and inside a frame `frames` holds
        // writable for `'a`; the domain and hv reach it only atomically.
        let header = unsafe { word_at::<AtomicU32>(va) };
        let status = match version {
            Version::V1 => None,
            Version::V2 => {
                let frame = status.get((gref / STATUS_PER_FRAME) as usize)?;
                let va = frame_va(frame.frame(), u64::from(gref % STATUS_PER_FRAME) * 2, 2).ok()?;
                // SAFETY: as for `header`.
                Some(unsafe { word_at::<AtomicU16>(va) })
            }
        };
        Some(GrantWords { header, status })
    }
}

impl hv::grant::SharedEntry for GrantWords<'_> {
    fn header(&self) -> u32 {
        self.header.load(core::sync::atomic::Ordering::SeqCst)
    }

    fn cmpxchg_header(&self, old: u32, new: u32) -> u32 {
        use core::sync::atomic::Ordering::SeqCst;
        match self.header.compare_exchange(old, new, SeqCst, SeqCst) {
            Ok(v) | Err(v) => v,
        }
    }

    fn set_access(&self, _: hv::grant::Version, bits: u16) {
        use core::sync::atomic::Ordering::SeqCst;
        match self.status {
            Some(s) => {
                s.fetch_or(bits, SeqCst);
            }
            None => {
                self.header.fetch_or(u32::from(bits), SeqCst);
            }
        }
    }

    fn set_flags(&self, bits: u16) {
        use core::sync::atomic::Ordering::SeqCst;
        self.header.fetch_or(u32::from(bits), SeqCst);
    }

    fn clear_access(&self, _: hv::grant::Version, bits: u16) {
        use core::sync::atomic::Ordering::SeqCst;
        match self.status {
            Some(s) => {
                s.fetch_and(!bits, SeqCst);
            }
            None => {
                self.header.fetch_and(!u32::from(bits), SeqCst);
            }
        }
    }
}
