//! The guest's side of event delivery, as Linux does it, and the checks
//! that only the guest's view allows: for the host tests and the fuzz
//! target, which play a guest against the table.
//!
//! A 2-level guest, on an upcall of one vCPU, clears `evtchn_upcall_pending`
//! and swaps `evtchn_pending_sel` to zero, then takes each pending unmasked
//! port of the selected words that it routed to that vCPU (the table's
//! notify vCPU stands for Linux's per-CPU mask), clearing its pending bit.
//!
//! A FIFO guest swaps `ready` to zero and takes the ready queues highest
//! priority first, each from the head it kept (or the control block's once
//! it reached the end of the queue), unlinking each port (LINKED and LINK
//! cleared together) and handling it if pending and unmasked.

use core::sync::atomic::Ordering::SeqCst;

use alloc::vec;
use alloc::vec::Vec;

use guest_abi::event_channel::{
    EVTCHN_FIFO_LINKED, EVTCHN_FIFO_LINK_MASK, EVTCHN_FIFO_MASKED, EVTCHN_FIFO_MAX_QUEUES,
    EVTCHN_FIFO_PENDING,
};

use super::{AbiKind, EventMemory, EventTable, PortState, VecMemory, FIFO_WORDS_PER_PAGE};

const LINKED: u32 = 1 << EVTCHN_FIFO_LINKED;
const PENDING: u32 = 1 << EVTCHN_FIFO_PENDING;
const MASKED: u32 = 1 << EVTCHN_FIFO_MASKED;

/// Takes `vcpu`'s 2-level events; returns the ports handled.
pub fn drain_2l(t: &EventTable, mem: &VecMemory, vcpu: u32) -> Vec<u32> {
    let mut got = Vec::new();
    let (Some(up), Some(sel)) = (
        mem.upcall_pending.get(vcpu as usize),
        mem.pending_sel.get(vcpu as usize),
    ) else {
        return got;
    };
    up.store(0, SeqCst);
    let sel = sel.swap(0, SeqCst);
    for w in 0..64u32 {
        if sel & (1 << w) == 0 {
            continue;
        }
        let i = w as usize;
        let ready = mem.pending[i].load(SeqCst) & !mem.mask[i].load(SeqCst);
        for b in 0..64u32 {
            let port = w * 64 + b;
            if ready & (1 << b) != 0 && t.notify_vcpu(port) == Some(vcpu) {
                mem.pending[i].fetch_and(!(1 << b), SeqCst);
                got.push(port);
            }
        }
    }
    got
}

/// A FIFO guest: the head it keeps per vCPU and queue.
pub struct FifoGuest {
    pub heads: Vec<[u32; EVTCHN_FIFO_MAX_QUEUES]>,
}

impl FifoGuest {
    pub fn new(nr_vcpus: u32) -> Self {
        Self {
            heads: vec![[0; EVTCHN_FIFO_MAX_QUEUES]; nr_vcpus as usize],
        }
    }

    /// Takes `vcpu`'s FIFO events; returns the ports handled, or what
    /// broke (a queue that loops or names a port without a word).
    pub fn drain(&mut self, m: &VecMemory, vcpu: u32) -> Result<Vec<u32>, &'static str> {
        let mut got = Vec::new();
        let (Some(ready_word), Some(heads), Some(up)) = (
            m.control_ready(vcpu),
            self.heads.get_mut(vcpu as usize),
            m.upcall_pending.get(vcpu as usize),
        ) else {
            return Ok(got);
        };
        up.store(0, SeqCst);
        let mut ready = ready_word.swap(0, SeqCst);
        let mut steps = 0u32;
        while ready != 0 {
            steps += 1;
            if steps > 1 << 20 {
                return Err("a FIFO queue loops");
            }
            let q = ready.trailing_zeros() as usize % EVTCHN_FIFO_MAX_QUEUES;
            let mut head = heads[q];
            if head == 0 {
                head = m.control_head(vcpu, q).map_or(0, |h| h.load(SeqCst));
            }
            if head == 0 {
                ready &= !(1 << q);
                continue;
            }
            let word = m
                .event_word(head)
                .ok_or("a queued port has no event word")?;
            let old = word.fetch_and(!(LINKED | EVTCHN_FIFO_LINK_MASK), SeqCst);
            let next = old & EVTCHN_FIFO_LINK_MASK;
            if next == 0 {
                ready &= !(1 << q);
            }
            let now = word.load(SeqCst);
            if now & PENDING != 0 && now & MASKED == 0 {
                word.fetch_and(!PENDING, SeqCst);
                got.push(head);
            }
            heads[q] = next;
            ready |= ready_word.swap(0, SeqCst);
        }
        Ok(got)
    }
}

/// Takes every vCPU's events in the table's current ABI.
pub fn drain_all(
    t: &EventTable,
    m: &VecMemory,
    g: &mut FifoGuest,
) -> Result<Vec<u32>, &'static str> {
    let mut got = Vec::new();
    for v in 0..t.nr_vcpus() {
        match t.abi() {
            AbiKind::TwoLevel => got.extend(drain_2l(t, m, v)),
            AbiKind::Fifo => got.extend(g.drain(m, v)?),
        }
    }
    Ok(got)
}

/// Checks what the guest's memory must show: pending bits only on bound
/// ports and, under FIFO, the queues as the guest would walk them: no
/// loop, no port on two queues, every linked port on one, and each tail
/// hv keeps (if still linked) at the end of its queue.
pub fn check_memory(t: &EventTable, m: &VecMemory, g: &FifoGuest) -> Result<(), &'static str> {
    let bound = |port: u32| t.state(port).is_some_and(PortState::is_bound);
    if t.abi() == AbiKind::TwoLevel {
        for (w, word) in (0u32..).zip(&m.pending) {
            let bits = word.load(SeqCst);
            for b in (0..64u32).filter(|b| bits & (1 << b) != 0) {
                if !bound(w * 64 + b) {
                    return Err("a 2-level port is pending but not bound");
                }
            }
        }
        return Ok(());
    }
    let words = (t.fifo_pages() * FIFO_WORDS_PER_PAGE).min(t.valid_ports());
    let mut on_queue = vec![false; words as usize];
    for v in 0..t.nr_vcpus() {
        let Some(ready) = m.control_ready(v) else {
            continue;
        };
        let ready = ready.load(SeqCst);
        for q in 0..EVTCHN_FIFO_MAX_QUEUES {
            let private = g.heads.get(v as usize).map_or(0, |h| h[q]);
            let mut port = if private != 0 {
                private
            } else if ready & (1 << q) != 0 {
                m.control_head(v, q).map_or(0, |h| h.load(SeqCst))
            } else {
                0
            };
            let mut last = 0;
            while port != 0 {
                let w = m.word(port).ok_or("a queued port has no event word")?;
                if w & LINKED == 0 {
                    return Err("a queued port is not linked");
                }
                let seen = on_queue
                    .get_mut(port as usize)
                    .ok_or("a queued port is beyond the table")?;
                if *seen {
                    return Err("a port is on two queues (or a queue loops)");
                }
                *seen = true;
                last = port;
                port = w & EVTCHN_FIFO_LINK_MASK;
            }
            let tail = t.fifo_tail(v, q).unwrap_or(0);
            if tail != 0 && m.word(tail).is_some_and(|w| w & LINKED != 0) && last != tail {
                return Err("hv's tail is not the end of its queue");
            }
        }
    }
    for port in 0..words {
        let w = m.word(port).ok_or("an event page is missing")?;
        if w & LINKED != 0 && !on_queue[port as usize] {
            return Err("a linked port is on no queue");
        }
        if w & PENDING != 0 && !bound(port) {
            return Err("a FIFO port is pending but not bound");
        }
    }
    Ok(())
}

/// After [`drain_all`], for a guest that kept Linux's rules: no bound
/// port is left pending and unmasked (an event the guest never saw).
pub fn check_delivered(t: &EventTable, m: &VecMemory) -> Result<(), &'static str> {
    for port in 1..t.valid_ports() {
        if t.state(port).is_some_and(PortState::is_bound)
            && t.is_pending(port, m)
            && !t.is_masked(port, m)
        {
            return Err("a pending unmasked port was not delivered");
        }
    }
    Ok(())
}
