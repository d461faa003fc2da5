//! The guest words event delivery reads and writes.
//!
//! The guest writes these words concurrently from its own vCPUs, so they
//! are reached only as atomics (never as plain references to guest-owned
//! data), and every update is one atomic read-modify-write, as Xen's
//! `guest_test_and_set_bit` and `cmpxchg` are. The kernel implements
//! [`EventMemory`] over the frames it holds writable references on; the
//! host tests and the fuzz target use [`VecMemory`].

use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, Ordering};

use alloc::boxed::Box;
use alloc::vec::Vec;

use guest_abi::event_channel::EVTCHN_FIFO_MAX_QUEUES;

use super::FIFO_WORDS_PER_PAGE;

/// A domain's event words. The table only asks for what exists: a word
/// index below 64, a vCPU below the domain's count, a port below the
/// registered event-array pages.
pub trait EventMemory {
    /// `shared_info.evtchn_pending[word]`.
    fn evtchn_pending(&self, word: usize) -> &AtomicU64;
    /// `shared_info.evtchn_mask[word]`.
    fn evtchn_mask(&self, word: usize) -> &AtomicU64;
    /// `evtchn_pending_sel` of `vcpu`'s `vcpu_info` (wherever the guest
    /// placed it).
    fn evtchn_pending_sel(&self, vcpu: u32) -> &AtomicU64;
    /// The first 16 bits of `vcpu`'s `vcpu_info`: `evtchn_upcall_pending`
    /// (low byte) and `evtchn_upcall_mask` (high byte). Only bit 0 is
    /// ever changed, by one atomic bit operation, as Xen's
    /// `test_and_set_bit` changes it (a 16-bit `lock bts`, where a byte
    /// would take a compare-exchange loop).
    fn evtchn_upcall_pending(&self, vcpu: u32) -> &AtomicU16;
    /// FIFO: the event word of `port`, if its event-array page has been
    /// added.
    fn event_word(&self, port: u32) -> Option<&AtomicU32>;
    /// FIFO: `ready` of `vcpu`'s control block, if registered.
    fn control_ready(&self, vcpu: u32) -> Option<&AtomicU32>;
    /// FIFO: `head[queue]` of `vcpu`'s control block, if registered.
    fn control_head(&self, vcpu: u32, queue: usize) -> Option<&AtomicU32>;
}

/// Sets bit `bit` of a word, returning whether it was set before.
#[inline]
pub(super) fn test_and_set64(word: &AtomicU64, bit: u32) -> bool {
    let m = 1u64 << (bit % 64);
    word.fetch_or(m, Ordering::SeqCst) & m != 0
}

/// Clears bit `bit`, returning whether it was set before.
#[inline]
pub(super) fn test_and_clear64(word: &AtomicU64, bit: u32) -> bool {
    let m = 1u64 << (bit % 64);
    word.fetch_and(!m, Ordering::SeqCst) & m != 0
}

#[inline]
pub(super) fn test64(word: &AtomicU64, bit: u32) -> bool {
    word.load(Ordering::SeqCst) & (1u64 << (bit % 64)) != 0
}

#[inline]
pub(super) fn test_and_set32(word: &AtomicU32, bit: u32) -> bool {
    let m = 1u32 << (bit % 32);
    word.fetch_or(m, Ordering::SeqCst) & m != 0
}

#[inline]
pub(super) fn clear32(word: &AtomicU32, bit: u32) {
    word.fetch_and(!(1u32 << (bit % 32)), Ordering::SeqCst);
}

#[inline]
pub(super) fn test32(word: &AtomicU32, bit: u32) -> bool {
    word.load(Ordering::SeqCst) & (1u32 << (bit % 32)) != 0
}

/// One FIFO control block: `ready`, `_rsvd`, `head[16]`.
type ControlBlock = [AtomicU32; 2 + EVTCHN_FIFO_MAX_QUEUES];
type EventPage = [AtomicU32; FIFO_WORDS_PER_PAGE as usize];

/// Event words in host memory, for tests and fuzzing. The `pub` fields
/// and methods play the guest's side (masking, clearing, reading queues)
/// and the kernel glue's (registering FIFO frames).
pub struct VecMemory {
    pub pending: [AtomicU64; 64],
    pub mask: [AtomicU64; 64],
    pub pending_sel: Vec<AtomicU64>,
    pub upcall_pending: Vec<AtomicU16>,
    event_pages: Vec<Box<EventPage>>,
    control: Vec<Option<Box<ControlBlock>>>,
}

impl VecMemory {
    /// Zeroed words for `nr_vcpus` vCPUs, no FIFO frames.
    pub fn new(nr_vcpus: u32) -> Self {
        let n = usize::try_from(nr_vcpus).unwrap_or(0);
        Self {
            pending: [const { AtomicU64::new(0) }; 64],
            mask: [const { AtomicU64::new(0) }; 64],
            pending_sel: (0..n).map(|_| AtomicU64::new(0)).collect(),
            upcall_pending: (0..n).map(|_| AtomicU16::new(0)).collect(),
            event_pages: Vec::new(),
            control: (0..n).map(|_| None).collect(),
        }
    }

    /// Registers `vcpu`'s control block (what the glue does between
    /// [`super::EventTable::fifo_init_control_check`] and `_commit`).
    pub fn map_control_block(&mut self, vcpu: u32) {
        if let Some(slot) = self.control.get_mut(vcpu as usize) {
            *slot = Some(Box::new(
                [const { AtomicU32::new(0) }; 2 + EVTCHN_FIFO_MAX_QUEUES],
            ));
        }
    }

    /// Adds the next event-array page, zeroed (what the glue does between
    /// [`super::EventTable::fifo_expand_check`] and `_commit`).
    pub fn add_event_page(&mut self) {
        self.event_pages.push(Box::new(
            [const { AtomicU32::new(0) }; FIFO_WORDS_PER_PAGE as usize],
        ));
    }

    /// Drops every FIFO frame (after a reset that released them).
    pub fn release_fifo(&mut self) {
        self.event_pages.clear();
        self.control.iter_mut().for_each(|c| *c = None);
    }

    /// Event-array pages registered.
    pub fn event_pages(&self) -> usize {
        self.event_pages.len()
    }

    /// Sets or clears a port's 2-level mask bit, as the guest does.
    pub fn set_mask(&self, port: u32, masked: bool) {
        if let Some(w) = self.mask.get((port / 64) as usize) {
            let m = 1u64 << (port % 64);
            if masked {
                w.fetch_or(m, Ordering::SeqCst);
            } else {
                w.fetch_and(!m, Ordering::SeqCst);
            }
        }
    }

    /// Whether a port's 2-level pending bit is set.
    pub fn is_pending_2l(&self, port: u32) -> bool {
        self.pending
            .get((port / 64) as usize)
            .is_some_and(|w| test64(w, port % 64))
    }

    /// A port's FIFO event word, if its page exists.
    pub fn word(&self, port: u32) -> Option<u32> {
        self.event_word(port).map(|w| w.load(Ordering::SeqCst))
    }
}

impl EventMemory for VecMemory {
    fn evtchn_pending(&self, word: usize) -> &AtomicU64 {
        &self.pending[word % 64]
    }
    fn evtchn_mask(&self, word: usize) -> &AtomicU64 {
        &self.mask[word % 64]
    }
    fn evtchn_pending_sel(&self, vcpu: u32) -> &AtomicU64 {
        &self.pending_sel[vcpu as usize]
    }
    fn evtchn_upcall_pending(&self, vcpu: u32) -> &AtomicU16 {
        &self.upcall_pending[vcpu as usize]
    }
    fn event_word(&self, port: u32) -> Option<&AtomicU32> {
        let page = self
            .event_pages
            .get((port / FIFO_WORDS_PER_PAGE) as usize)?;
        page.get((port % FIFO_WORDS_PER_PAGE) as usize)
    }
    fn control_ready(&self, vcpu: u32) -> Option<&AtomicU32> {
        self.control.get(vcpu as usize)?.as_ref().map(|c| &c[0])
    }
    fn control_head(&self, vcpu: u32, queue: usize) -> Option<&AtomicU32> {
        let c = self.control.get(vcpu as usize)?.as_ref()?;
        c.get(2 + queue).filter(|_| queue < EVTCHN_FIFO_MAX_QUEUES)
    }
}
