//! Host tests of the FIFO ABI: set-up and its refusals, linking and
//! queue order, masking, missing pages, busy ports, priorities.

use core::sync::atomic::Ordering::SeqCst;

use super::guest::{drain_2l, FifoGuest};
use super::tests::{dom, table};
use super::*;
use guest_abi::errno::Errno;
use guest_abi::event_channel::{
    EVTCHN_FIFO_BUSY, EVTCHN_FIFO_LINKED, EVTCHN_FIFO_MASKED, EVTCHN_FIFO_PENDING,
};
use guest_abi::types::EvtchnPort;

const P: u32 = 1 << EVTCHN_FIFO_PENDING;
const MASKED: u32 = 1 << EVTCHN_FIFO_MASKED;
const LINKED: u32 = 1 << EVTCHN_FIFO_LINKED;

/// Registers `vcpu`'s control block as the glue would.
pub(super) fn init_control(t: &mut EventTable, m: &mut VecMemory, vcpu: u32) -> Result<u8, Errno> {
    let token = t.fifo_init_control_check(vcpu, 0)?;
    m.map_control_block(token.vcpu());
    t.fifo_init_control_commit(token, m)
}

/// Adds an event-array page as the glue would; returns what it raised.
pub(super) fn expand(t: &mut EventTable, m: &mut VecMemory) -> Result<Vec<Raised>, Errno> {
    let token = t.fifo_expand_check()?;
    assert_eq!(token.slot() as usize, m.event_pages());
    m.add_event_page();
    let mut raised = Vec::new();
    t.fifo_expand_commit(token, m, |r| raised.push(r));
    Ok(raised)
}

/// A FIFO table: every vCPU's control block registered, `pages` pages.
pub(super) fn fifo_table(vcpus: u32, max_port: u32, pages: u32) -> (EventTable, VecMemory) {
    let (mut t, mut m) = table(vcpus, max_port);
    for v in 0..vcpus {
        assert_eq!(init_control(&mut t, &mut m, v), Ok(FIFO_LINK_BITS));
    }
    for _ in 0..pages {
        expand(&mut t, &mut m).unwrap();
    }
    (t, m)
}

#[test]
fn init_control_refusals() {
    let (mut t, mut m) = table(2, MAX_PORT_UNLIMITED);
    assert_eq!(t.fifo_init_control_check(2, 0).err(), Some(Errno::ENOENT));
    assert_eq!(
        t.fifo_init_control_check(0, 4096 - 72 + 8).err(),
        Some(Errno::EINVAL)
    );
    assert_eq!(t.fifo_init_control_check(0, 4).err(), Some(Errno::EINVAL));
    assert_eq!(
        t.fifo_init_control_check(0, u32::MAX).err(),
        Some(Errno::EINVAL)
    );
    assert!(t.fifo_init_control_check(0, 4096 - 72).is_ok());
    // Before init_control: no expand, no priorities.
    assert_eq!(t.fifo_expand_check().err(), Some(Errno::EOPNOTSUPP));
    assert_eq!(t.fifo_set_priority(1, 0), Err(Errno::ENOSYS));
    assert_eq!(t.fifo_set_priority(64, 0), Err(Errno::EINVAL));
    assert_eq!(init_control(&mut t, &mut m, 0), Ok(17));
    assert_eq!(t.abi(), AbiKind::Fifo);
    assert_eq!(t.fifo_init_control_check(0, 0).err(), Some(Errno::EINVAL));
    assert_eq!(init_control(&mut t, &mut m, 1), Ok(17));
    t.audit().unwrap();
}

#[test]
fn expand_array_stops_at_the_abi_limit() {
    let (mut t, mut m) = fifo_table(1, MAX_PORT_UNLIMITED, 0);
    for _ in 0..FIFO_MAX_PAGES {
        expand(&mut t, &mut m).unwrap();
    }
    assert_eq!(t.fifo_pages(), 128);
    assert_eq!(t.fifo_expand_check().err(), Some(Errno::ENOSPC));
}

#[test]
fn fifo_lifts_the_port_limit_to_2_17() {
    let (mut t, m) = fifo_table(1, MAX_PORT_UNLIMITED, 0);
    for want in 1..FIFO_PORTS {
        assert_eq!(t.bind_ipi(0, &m), Ok(EvtchnPort::new(want)));
    }
    assert_eq!(t.bind_ipi(0, &m), Err(Errno::ENOSPC));
    assert_eq!(t.valid_ports(), FIFO_PORTS);
    t.audit().unwrap();
    // max_evtchn_port still applies under FIFO.
    let (mut t, m) = fifo_table(1, 5000, 0);
    for _ in 1..=5000 {
        t.bind_ipi(0, &m).unwrap();
    }
    assert_eq!(t.bind_ipi(0, &m), Err(Errno::ENOSPC));
}

#[test]
fn events_link_in_order_and_raise_ready_once() {
    let (mut t, m) = fifo_table(1, MAX_PORT_UNLIMITED, 1);
    let a = t.bind_ipi(0, &m).unwrap().get();
    let b = t.bind_ipi(0, &m).unwrap().get();
    let c = t.bind_ipi(0, &m).unwrap().get();
    assert_eq!(t.fifo_priority(a), Some(7));
    let r = t.send(a, &m).unwrap();
    assert_eq!(
        r,
        Sent::Raised(Raised {
            newly_pending: Some(a),
            upcall: Some(0)
        })
    );
    assert_eq!(m.word(a), Some(P | LINKED));
    assert_eq!(m.control_head(0, 7).unwrap().load(SeqCst), a);
    assert_eq!(m.control_ready(0).unwrap().load(SeqCst), 1 << 7);
    // The next two link behind it; ready is set already: no upcall.
    assert_eq!(
        t.send(b, &m).unwrap(),
        Sent::Raised(Raised {
            newly_pending: Some(b),
            upcall: None
        })
    );
    t.send(c, &m).unwrap();
    assert_eq!(m.word(a), Some(P | LINKED | b));
    assert_eq!(m.word(b), Some(P | LINKED | c));
    // Sending a pending port again changes nothing.
    assert_eq!(t.send(b, &m).unwrap(), Sent::Raised(Raised::NONE));
    let mut g = FifoGuest::new(1);
    assert_eq!(g.drain(&m, 0).unwrap(), vec![a, b, c]);
    assert_eq!(m.word(a), Some(0));
    // The tail (c) is unlinked now: the next event starts a new queue.
    assert_eq!(
        t.send(a, &m).unwrap(),
        Sent::Raised(Raised {
            newly_pending: Some(a),
            upcall: Some(0)
        })
    );
    assert_eq!(m.control_head(0, 7).unwrap().load(SeqCst), a);
    assert_eq!(g.drain(&m, 0).unwrap(), vec![a]);
    t.audit().unwrap();
}

#[test]
fn higher_priority_queues_are_consumed_first() {
    let (mut t, m) = fifo_table(1, MAX_PORT_UNLIMITED, 1);
    let ports: Vec<u32> = (0..6).map(|_| t.bind_ipi(0, &m).unwrap().get()).collect();
    let prio = [15, 7, 0, 15, 0, 3];
    for (&port, &pr) in ports.iter().zip(&prio) {
        t.fifo_set_priority(port, pr).unwrap();
    }
    for &port in &ports {
        t.send(port, &m).unwrap();
    }
    assert_eq!(
        m.control_ready(0).unwrap().load(SeqCst),
        (1 << 0) | (1 << 3) | (1 << 7) | (1 << 15)
    );
    let got = FifoGuest::new(1).drain(&m, 0).unwrap();
    assert_eq!(
        got,
        vec![ports[2], ports[4], ports[5], ports[1], ports[0], ports[3]]
    );
}

#[test]
fn set_priority_refusals_and_a_move_takes_effect_on_the_next_link() {
    let (mut t, m) = fifo_table(1, MAX_PORT_UNLIMITED, 1);
    assert_eq!(t.fifo_set_priority(64, 0), Err(Errno::EINVAL));
    assert_eq!(t.fifo_set_priority(3, 0), Err(Errno::EACCES));
    assert_eq!(t.fifo_set_priority(0, 0), Err(Errno::EACCES));
    let a = t.bind_ipi(0, &m).unwrap().get();
    assert_eq!(t.fifo_set_priority(a, 16), Err(Errno::EINVAL));
    t.send(a, &m).unwrap();
    t.fifo_set_priority(a, 2).unwrap();
    // Still on queue 7 until consumed.
    assert_eq!(m.control_ready(0).unwrap().load(SeqCst), 1 << 7);
    let mut g = FifoGuest::new(1);
    assert_eq!(g.drain(&m, 0).unwrap(), vec![a]);
    t.send(a, &m).unwrap();
    assert_eq!(m.control_ready(0).unwrap().load(SeqCst), 1 << 2);
    assert_eq!(g.drain(&m, 0).unwrap(), vec![a]);
    t.audit().unwrap();
}

#[test]
fn masked_events_wait_for_unmask() {
    let (mut t, m) = fifo_table(1, MAX_PORT_UNLIMITED, 1);
    let a = t.bind_ipi(0, &m).unwrap().get();
    m.event_word(a).unwrap().fetch_or(MASKED, SeqCst);
    assert_eq!(
        t.send(a, &m).unwrap(),
        Sent::Raised(Raised {
            newly_pending: Some(a),
            upcall: None
        })
    );
    assert_eq!(m.word(a), Some(P | MASKED));
    assert!(t.is_masked(a, &m));
    assert_eq!(t.poll(a, &m), Ok(true));
    assert_eq!(
        t.unmask(a, &m),
        Ok(Raised {
            newly_pending: None,
            upcall: Some(0)
        })
    );
    assert_eq!(m.word(a), Some(P | LINKED));
    assert_eq!(FifoGuest::new(1).drain(&m, 0).unwrap(), vec![a]);
    // Unmasking a port that is not pending links nothing.
    m.event_word(a).unwrap().fetch_or(MASKED, SeqCst);
    assert_eq!(t.unmask(a, &m), Ok(Raised::NONE));
    assert_eq!(m.word(a), Some(0));
}

#[test]
fn an_event_without_its_page_is_raised_when_the_page_comes() {
    let (mut t, mut m) = fifo_table(1, MAX_PORT_UNLIMITED, 1);
    let ports: Vec<u32> = (1..1100)
        .map(|_| t.bind_ipi(0, &m).unwrap().get())
        .collect();
    let far = *ports.last().unwrap();
    assert!(far >= FIFO_WORDS_PER_PAGE);
    assert_eq!(t.send(far, &m).unwrap(), Sent::Raised(Raised::NONE));
    assert!(!t.is_pending(far, &m));
    assert!(t.is_masked(far, &m));
    let raised = expand(&mut t, &mut m).unwrap();
    assert_eq!(
        raised,
        vec![Raised {
            newly_pending: Some(far),
            upcall: Some(0)
        }]
    );
    assert_eq!(FifoGuest::new(1).drain(&m, 0).unwrap(), vec![far]);
    // Closed while the page was missing: not raised later (hv's choice).
    let (mut t, mut m) = fifo_table(1, MAX_PORT_UNLIMITED, 1);
    let ports: Vec<u32> = (1..1100)
        .map(|_| t.bind_ipi(0, &m).unwrap().get())
        .collect();
    let far = *ports.last().unwrap();
    t.send(far, &m).unwrap();
    t.close_local(far, &m).unwrap();
    assert_eq!(expand(&mut t, &mut m).unwrap(), vec![]);
    assert_eq!(m.word(far), Some(0));
}

#[test]
fn two_level_pending_events_carry_over_to_fifo() {
    let (mut t, mut m) = table(1, MAX_PORT_UNLIMITED);
    let a = t.bind_ipi(0, &m).unwrap().get();
    let b = t.bind_ipi(0, &m).unwrap().get();
    t.send(a, &m).unwrap();
    assert_eq!(drain_2l(&t, &m, 0), vec![a]);
    t.send(b, &m).unwrap();
    init_control(&mut t, &mut m, 0).unwrap();
    assert_eq!(t.fifo_priority(a), Some(7));
    // No page yet: nothing pending in FIFO terms.
    assert!(!t.is_pending(b, &m));
    // The 2-level upcall for b is still pending: no second kick.
    let raised = expand(&mut t, &mut m).unwrap();
    assert_eq!(
        raised,
        vec![Raised {
            newly_pending: Some(b),
            upcall: None
        }]
    );
    assert_eq!(FifoGuest::new(1).drain(&m, 0).unwrap(), vec![b]);
}

#[test]
fn a_closed_port_still_linked_is_not_reallocated_until_unlinked() {
    let (mut t, m) = fifo_table(1, MAX_PORT_UNLIMITED, 1);
    let a = t.bind_ipi(0, &m).unwrap().get();
    let b = t.bind_ipi(0, &m).unwrap().get();
    t.send(a, &m).unwrap();
    t.close_local(a, &m).unwrap();
    assert_eq!(m.word(a), Some(LINKED));
    let c = t.bind_ipi(0, &m).unwrap().get();
    assert_eq!(c, b + 1);
    // The guest unlinks it (ignoring it: not pending); then it is free.
    assert_eq!(FifoGuest::new(1).drain(&m, 0).unwrap(), vec![]);
    assert_eq!(t.bind_ipi(0, &m).unwrap().get(), a);
    t.audit().unwrap();
}

#[test]
fn a_vcpu_without_a_control_block_drops_its_events() {
    let (mut t, mut m) = table(2, MAX_PORT_UNLIMITED);
    init_control(&mut t, &mut m, 0).unwrap();
    expand(&mut t, &mut m).unwrap();
    let a = t.bind_ipi(1, &m).unwrap().get();
    assert_eq!(t.send(a, &m).unwrap(), Sent::Raised(Raised::NONE));
    assert_eq!(m.word(a), Some(0));
    init_control(&mut t, &mut m, 1).unwrap();
    assert_eq!(
        t.send(a, &m).unwrap(),
        Sent::Raised(Raised {
            newly_pending: Some(a),
            upcall: Some(1)
        })
    );
}

#[test]
fn moving_a_port_to_another_vcpu() {
    let (mut t, m) = fifo_table(2, MAX_PORT_UNLIMITED, 1);
    let a = t.alloc_unbound(1, Access::Allowed, &m).unwrap();
    let b = EventTable::bind_interdomain(Peers::same(&mut t), a.get(), &m)
        .unwrap()
        .port
        .get();
    let mut g = FifoGuest::new(2);
    assert_eq!(g.drain(&m, 0).unwrap(), vec![b]);
    t.send(b, &m).unwrap();
    // a was the tail of vCPU 0's queue 7; moved, it links on vCPU 1.
    assert_eq!(g.drain(&m, 0).unwrap(), vec![a.get()]);
    t.bind_vcpu(a.get(), 1).unwrap();
    assert_eq!(
        t.send(b, &m).unwrap(),
        Sent::Raised(Raised {
            newly_pending: Some(a.get()),
            upcall: Some(1)
        })
    );
    assert_eq!(g.drain(&m, 0).unwrap(), vec![]);
    assert_eq!(g.drain(&m, 1).unwrap(), vec![a.get()]);
    t.audit().unwrap();
}

#[test]
fn linking_after_a_busy_tail_clears_busy() {
    let (mut t, m) = fifo_table(1, MAX_PORT_UNLIMITED, 1);
    let a = t.bind_ipi(0, &m).unwrap().get();
    let b = t.bind_ipi(0, &m).unwrap().get();
    t.send(a, &m).unwrap();
    m.event_word(a)
        .unwrap()
        .fetch_or(1 << EVTCHN_FIFO_BUSY, SeqCst);
    t.send(b, &m).unwrap();
    assert_eq!(m.word(a), Some(P | LINKED | b));
}

#[test]
fn reset_returns_a_fifo_domain_to_two_level() {
    let (mut t, mut m) = fifo_table(2, MAX_PORT_UNLIMITED, 2);
    for _ in 0..1500 {
        t.bind_ipi(1, &m).unwrap();
    }
    assert_eq!(
        t.reset(false, &m, || false),
        Ok(ResetProgress::Done {
            fifo_released: true
        })
    );
    m.release_fifo();
    assert_eq!(t.abi(), AbiKind::TwoLevel);
    assert_eq!(t.fifo_pages(), 0);
    assert_eq!(t.fifo_expand_check().err(), Some(Errno::EOPNOTSUPP));
    assert_eq!(t.bind_ipi(0, &m).unwrap().get(), 1);
    // And FIFO can be set up again.
    assert_eq!(init_control(&mut t, &mut m, 0), Ok(17));
    t.audit().unwrap();
    let _ = dom(1);
}
