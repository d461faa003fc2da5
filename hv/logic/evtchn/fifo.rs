//! FIFO delivery: an event word per port in guest event-array pages
//! (PENDING, MASKED, LINKED, BUSY and a 17-bit LINK), and per vCPU a
//! control block with a `ready` bit and a `head` per priority queue.
//!
//! hv keeps what the guest must not be trusted with: each queue's tail,
//! each port's priority and the queue it was last linked on, and which
//! vCPUs registered a control block. The guest consumes a queue from its
//! head, clearing LINKED as it goes, so a tail hv remembers may already
//! be unlinked: linking after such a tail fails, the queue counts as
//! empty and the new port becomes the head (Xen's `evtchn_fifo_set_link`
//! and `set_pending`, followed here step for step).
//!
//! The guest may only set or clear MASKED, clear PENDING and clear LINKED
//! (with LINK) on a linked word. While hv links after a tail it sets BUSY
//! on that word, which a guest must wait on before unmasking, so its
//! compare-exchange can lose at most a few times.

use core::sync::atomic::{AtomicU32, Ordering};

use alloc::vec::Vec;

use guest_abi::errno::Errno;
use guest_abi::event_channel::{
    EVTCHN_FIFO_BUSY, EVTCHN_FIFO_LINKED, EVTCHN_FIFO_LINK_MASK, EVTCHN_FIFO_MASKED,
    EVTCHN_FIFO_MAX_QUEUES, EVTCHN_FIFO_PENDING,
};

use super::memory::{clear32, test32, test_and_set32, EventMemory};
use super::table::Channel;
use super::two_level::mark_events_pending;
use super::{Raised, FIFO_WORDS_PER_PAGE};

/// One vCPU's FIFO state that hv keeps.
#[derive(Clone, Debug, Default)]
struct FifoVcpu {
    /// The guest registered its control block (`init_control`).
    control_block: bool,
    /// The last port linked on each queue (0: none).
    tail: [u32; EVTCHN_FIFO_MAX_QUEUES],
}

/// A domain's FIFO state, present from its first `init_control` until a
/// reset returns it to 2-level.
#[derive(Clone, Debug)]
pub(super) struct FifoState {
    /// Event-array pages added so far.
    pages: u32,
    vcpus: Vec<FifoVcpu>,
}

impl FifoState {
    /// Queues for every vCPU, no control block, no event page.
    pub(super) fn new(nr_vcpus: u32) -> Result<Self, Errno> {
        let n = nr_vcpus as usize;
        let mut vcpus = Vec::new();
        vcpus.try_reserve_exact(n).map_err(|_| Errno::ENOMEM)?;
        vcpus.resize(n, FifoVcpu::default());
        Ok(Self { pages: 0, vcpus })
    }

    pub(super) fn pages(&self) -> u32 {
        self.pages
    }

    pub(super) fn add_page(&mut self) {
        self.pages += 1;
    }

    /// Ports that have an event word.
    pub(super) fn nr_words(&self) -> u32 {
        self.pages * FIFO_WORDS_PER_PAGE
    }

    pub(super) fn has_control_block(&self, vcpu: u32) -> bool {
        self.vcpus
            .get(vcpu as usize)
            .is_some_and(|v| v.control_block)
    }

    pub(super) fn set_control_block(&mut self, vcpu: u32) {
        if let Some(v) = self.vcpus.get_mut(vcpu as usize) {
            v.control_block = true;
        }
    }

    /// Each vCPU's queue tails, for the audit.
    pub(super) fn tails(&self) -> impl Iterator<Item = (u32, usize, u32)> + '_ {
        self.vcpus
            .iter()
            .zip(0u32..)
            .flat_map(|(v, id)| v.tail.iter().enumerate().map(move |(q, &t)| (id, q, t)))
    }

    fn word<'m, M: EventMemory + ?Sized>(&self, port: u32, mem: &'m M) -> Option<&'m AtomicU32> {
        if port < self.nr_words() {
            mem.event_word(port)
        } else {
            None
        }
    }

    pub(super) fn is_pending<M: EventMemory + ?Sized>(&self, port: u32, mem: &M) -> bool {
        self.word(port, mem)
            .is_some_and(|w| test32(w, EVTCHN_FIFO_PENDING))
    }

    pub(super) fn is_masked<M: EventMemory + ?Sized>(&self, port: u32, mem: &M) -> bool {
        self.word(port, mem)
            .is_none_or(|w| test32(w, EVTCHN_FIFO_MASKED))
    }

    /// Still on a queue after being closed: the port cannot be allocated
    /// again until the guest unlinks it.
    pub(super) fn is_busy<M: EventMemory + ?Sized>(&self, port: u32, mem: &M) -> bool {
        self.word(port, mem)
            .is_some_and(|w| test32(w, EVTCHN_FIFO_LINKED))
    }

    /// Clears PENDING only: the guest unlinks (and ignores) a port that
    /// is no longer pending.
    pub(super) fn clear_pending<M: EventMemory + ?Sized>(&self, port: u32, mem: &M) {
        if let Some(w) = self.word(port, mem) {
            clear32(w, EVTCHN_FIFO_PENDING);
        }
    }

    /// Clears MASKED and links the port again if it is pending.
    pub(super) fn unmask<M: EventMemory + ?Sized>(
        &mut self,
        chan: &mut Channel,
        port: u32,
        mem: &M,
    ) -> Raised {
        let Some(w) = self.word(port, mem) else {
            return Raised::NONE;
        };
        clear32(w, EVTCHN_FIFO_MASKED);
        if test32(w, EVTCHN_FIFO_PENDING) {
            self.set_pending(chan, port, chan.notify, mem)
        } else {
            Raised::NONE
        }
    }

    /// Marks `port` pending and, unless masked or already linked, links
    /// it on `vcpu`'s queue of the port's priority.
    pub(super) fn set_pending<M: EventMemory + ?Sized>(
        &mut self,
        chan: &mut Channel,
        port: u32,
        vcpu: u32,
        mem: &M,
    ) -> Raised {
        let Some(word) = self.word(port, mem) else {
            // No event word yet: remembered, raised when the page comes.
            chan.fifo_pending = true;
            return Raised::NONE;
        };
        let prio = usize::from(chan.priority) % EVTCHN_FIFO_MAX_QUEUES;
        let prio_bit = u32::from(chan.priority) % 16;
        // No control block on the target vCPU: the guest cannot have
        // unmasked anything there yet, so the event is dropped (as Xen).
        if !self.has_control_block(vcpu) {
            return Raised::NONE;
        }
        let newly = !test_and_set32(word, EVTCHN_FIFO_PENDING);
        let mut linked = true;
        if !test32(word, EVTCHN_FIFO_MASKED) && !test_and_set32(word, EVTCHN_FIFO_LINKED) {
            // The queue it was last linked on: if it was that queue's
            // tail, that queue is empty now.
            let old = (
                chan.last_vcpu,
                usize::from(chan.last_priority) % EVTCHN_FIFO_MAX_QUEUES,
            );
            if let Some(v) = self.vcpus.get_mut(old.0 as usize) {
                if v.tail[old.1] == port {
                    v.tail[old.1] = 0;
                }
            }
            if old != (vcpu, prio) {
                chan.last_vcpu = vcpu;
                chan.last_priority = chan.priority;
            }
            let tail = self.vcpus.get(vcpu as usize).map_or(0, |v| v.tail[prio]);
            linked = tail != 0 && self.word(tail, mem).is_some_and(|t| set_link(t, port));
            if !linked {
                if let Some(head) = mem.control_head(vcpu, prio) {
                    head.store(port, Ordering::SeqCst);
                }
            }
            if let Some(v) = self.vcpus.get_mut(vcpu as usize) {
                v.tail[prio] = port;
            }
        }
        let mut upcall = None;
        if !linked {
            if let Some(ready) = mem.control_ready(vcpu) {
                if !test_and_set32(ready, prio_bit) {
                    upcall = mark_events_pending(vcpu, mem);
                }
            }
        }
        Raised {
            newly_pending: newly.then_some(port),
            upcall,
        }
    }
}

/// One attempt to point a linked word's LINK at `link` (clearing BUSY):
/// `Some(false)` if the word is not linked (the queue is empty), `None`
/// if the guest changed the word meanwhile.
fn try_set_link(word: &AtomicU32, seen: &mut u32, link: u32) -> Option<bool> {
    if *seen & (1 << EVTCHN_FIFO_LINKED) == 0 {
        return Some(false);
    }
    let new = (*seen & !((1 << EVTCHN_FIFO_BUSY) | EVTCHN_FIFO_LINK_MASK)) | link;
    match word.compare_exchange(*seen, new, Ordering::SeqCst, Ordering::SeqCst) {
        Ok(_) => Some(true),
        Err(now) => {
            *seen = now;
            None
        }
    }
}

/// Links `link` after the tail word, iff the tail is still linked.
/// Returns whether it was linked. After a failed first try the word is
/// marked BUSY so the guest cannot unmask it under us; after four more
/// lost races the link is given up as done (Xen's choice: the guest is
/// misbehaving).
fn set_link(word: &AtomicU32, link: u32) -> bool {
    let mut seen = word.load(Ordering::SeqCst);
    if let Some(done) = try_set_link(word, &mut seen, link) {
        return done;
    }
    word.fetch_or(1 << EVTCHN_FIFO_BUSY, Ordering::SeqCst);
    seen = word.load(Ordering::SeqCst);
    for _ in 0..4 {
        if let Some(done) = try_set_link(word, &mut seen, link) {
            if !done {
                clear32(word, EVTCHN_FIFO_BUSY);
            }
            return done;
        }
    }
    clear32(word, EVTCHN_FIFO_BUSY);
    true
}

#[cfg(test)]
mod link_tests {
    use super::*;

    #[test]
    fn link_after_a_linked_tail_keeps_its_flags_and_clears_busy() {
        let w = AtomicU32::new(
            (1 << EVTCHN_FIFO_LINKED) | (1 << EVTCHN_FIFO_BUSY) | (1 << EVTCHN_FIFO_PENDING) | 5,
        );
        assert!(set_link(&w, 9));
        assert_eq!(
            w.load(Ordering::SeqCst),
            (1 << EVTCHN_FIFO_LINKED) | (1 << EVTCHN_FIFO_PENDING) | 9
        );
    }

    #[test]
    fn an_unlinked_tail_is_an_empty_queue() {
        let w = AtomicU32::new(1 << EVTCHN_FIFO_PENDING);
        assert!(!set_link(&w, 9));
        assert_eq!(w.load(Ordering::SeqCst), 1 << EVTCHN_FIFO_PENDING);
    }
}
