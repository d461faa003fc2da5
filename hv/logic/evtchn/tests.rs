//! Host tests of the port table and 2-level delivery: every operation,
//! every refusal with Xen's errno.

use super::guest::drain_2l;
use super::*;
use guest_abi::errno::Errno;
use guest_abi::event_channel::{
    EvtchnStatus, EVTCHNSTAT_CLOSED, EVTCHNSTAT_INTERDOMAIN, EVTCHNSTAT_IPI, EVTCHNSTAT_UNBOUND,
    EVTCHNSTAT_VIRQ,
};
use guest_abi::types::{DomId, EvtchnPort};
use guest_abi::xen::{NR_VIRQS, VIRQ_CONSOLE, VIRQ_DEBUG, VIRQ_DOM_EXC, VIRQ_TIMER};

pub(super) fn dom(n: u16) -> DomId {
    DomId::try_new(n).unwrap()
}

pub(super) fn table(vcpus: u32, max_port: u32) -> (EventTable, VecMemory) {
    (
        EventTable::new(dom(1), vcpus, max_port).unwrap(),
        VecMemory::new(vcpus),
    )
}

fn p(n: u32) -> EvtchnPort {
    EvtchnPort::new(n)
}

/// `evtchn_upcall_pending` (the low byte of the upcall word).
fn upcall(mem: &VecMemory, vcpu: usize) -> u8 {
    mem.upcall_pending[vcpu]
        .load(core::sync::atomic::Ordering::SeqCst)
        .to_le_bytes()[0]
}

fn sel(mem: &VecMemory, vcpu: usize) -> u64 {
    mem.pending_sel[vcpu].load(core::sync::atomic::Ordering::SeqCst)
}

#[test]
fn a_fresh_table_has_port_0_reserved_and_one_bucket_valid() {
    let (t, _) = table(1, MAX_PORT_UNLIMITED);
    assert_eq!(t.state(0), Some(PortState::Reserved));
    assert_eq!(t.valid_ports(), PORTS_PER_BUCKET);
    let closed = PortStatus {
        state: PortState::Reserved,
        vcpu: 0,
    };
    assert_eq!(t.status(0, Access::Allowed), Ok(closed));
    assert!(t.status(63, Access::Allowed).is_ok());
    assert_eq!(t.status(64, Access::Allowed), Err(Errno::EINVAL));
    assert_eq!(t.active(), 0);
    assert_eq!(t.abi(), AbiKind::TwoLevel);
    t.audit().unwrap();
}

#[test]
fn new_refuses_no_vcpus() {
    assert!(EventTable::new(dom(1), 0, 10).is_err());
}

#[test]
fn ports_are_allocated_lowest_first_and_reused() {
    let (mut t, m) = table(1, MAX_PORT_UNLIMITED);
    for want in 1..=5 {
        assert_eq!(t.bind_ipi(0, &m), Ok(p(want)));
    }
    t.close_local(2, &m).unwrap();
    t.close_local(4, &m).unwrap();
    assert_eq!(t.alloc_unbound(0, Access::Allowed, &m), Ok(p(2)));
    assert_eq!(t.alloc_unbound(0, Access::Allowed, &m), Ok(p(4)));
    assert_eq!(t.alloc_unbound(0, Access::Allowed, &m), Ok(p(6)));
    assert_eq!(t.active(), 6);
    t.audit().unwrap();
}

#[test]
fn max_evtchn_port_limits_allocation() {
    // xl's default: ports 1..=1023.
    let (mut t, m) = table(1, XL_DEFAULT_MAX_PORT);
    for want in 1..=XL_DEFAULT_MAX_PORT {
        assert_eq!(t.bind_ipi(0, &m), Ok(p(want)));
    }
    assert_eq!(t.bind_ipi(0, &m), Err(Errno::ENOSPC));
    assert_eq!(t.alloc_unbound(0, Access::Allowed, &m), Err(Errno::ENOSPC));
    assert_eq!(t.valid_ports(), 1024);
    t.audit().unwrap();
}

#[test]
fn the_2_level_abi_limits_an_unlimited_domain_to_4095_ports() {
    let (mut t, m) = table(1, MAX_PORT_UNLIMITED);
    for want in 1..TWO_LEVEL_PORTS {
        assert_eq!(t.bind_ipi(0, &m), Ok(p(want)));
    }
    assert_eq!(t.bind_ipi(0, &m), Err(Errno::ENOSPC));
    assert_eq!(t.valid_ports(), TWO_LEVEL_PORTS);
    assert_eq!(
        t.status(TWO_LEVEL_PORTS, Access::Allowed),
        Err(Errno::EINVAL)
    );
    t.audit().unwrap();
}

#[test]
fn a_failed_operation_still_grows_the_table_as_xen_does() {
    let (mut t, m) = table(1, MAX_PORT_UNLIMITED);
    for _ in 1..64 {
        t.bind_ipi(0, &m).unwrap();
    }
    assert_eq!(t.status(64, Access::Allowed), Err(Errno::EINVAL));
    // Denied after the search: port 64's bucket exists now, port 64 free.
    assert_eq!(t.alloc_unbound(0, Access::Denied, &m), Err(Errno::EPERM));
    let st = t.status(64, Access::Allowed).unwrap();
    assert_eq!(st.state, PortState::Free);
    assert_eq!(t.valid_ports(), 128);
    assert_eq!(t.active(), 63);
    t.audit().unwrap();
}

#[test]
fn a_dying_domain_gets_no_port() {
    let (mut t, m) = table(1, MAX_PORT_UNLIMITED);
    t.set_dying();
    assert_eq!(t.bind_ipi(0, &m), Err(Errno::EINVAL));
}

#[test]
fn alloc_unbound_records_the_remote_and_status_says_so() {
    let (mut t, m) = table(2, MAX_PORT_UNLIMITED);
    let port = t.alloc_unbound(7, Access::Allowed, &m).unwrap();
    let st = t.status(port.get(), Access::Allowed).unwrap();
    assert_eq!(
        st,
        PortStatus {
            state: PortState::Unbound { remote: 7 },
            vcpu: 0
        }
    );
    assert_eq!(t.status(port.get(), Access::Denied), Err(Errno::EPERM));
    // The port check comes before the privilege check.
    assert_eq!(t.status(1000, Access::Denied), Err(Errno::EINVAL));
}

#[test]
fn status_fills_only_the_fields_xen_writes() {
    let (mut t, m) = table(2, MAX_PORT_UNLIMITED);
    let guest = EvtchnStatus {
        dom: 0x7ff0,
        _pad: 0,
        port: 0,
        status: 99,
        vcpu: 99,
        u: [0xdead_beef, 0x1234_5678],
    };

    let mut out = guest;
    t.status(5, Access::Allowed).unwrap().fill(&mut out);
    assert_eq!(
        (out.status, out.vcpu, out.u),
        (EVTCHNSTAT_CLOSED, 0, guest.u)
    );

    let ipi = t.bind_ipi(1, &m).unwrap();
    let mut out = guest;
    t.status(ipi.get(), Access::Allowed).unwrap().fill(&mut out);
    assert_eq!((out.status, out.vcpu, out.u), (EVTCHNSTAT_IPI, 1, guest.u));

    let unb = t.alloc_unbound(3, Access::Allowed, &m).unwrap();
    let mut out = guest;
    t.status(unb.get(), Access::Allowed).unwrap().fill(&mut out);
    assert_eq!(
        (out.status, out.u),
        (EVTCHNSTAT_UNBOUND, [0xdead_0003, 0x1234_5678])
    );

    let virq = t.bind_virq(VIRQ_DEBUG, 1, &m).unwrap();
    let mut out = guest;
    t.status(virq.get(), Access::Allowed)
        .unwrap()
        .fill(&mut out);
    assert_eq!(
        (out.status, out.vcpu, out.u),
        (EVTCHNSTAT_VIRQ, 1, [VIRQ_DEBUG, 0x1234_5678])
    );

    let own = t.alloc_unbound(1, Access::Allowed, &m).unwrap();
    let b = EventTable::bind_interdomain(Peers::same(&mut t), own.get(), &m).unwrap();
    let mut out = guest;
    t.status(b.port.get(), Access::Allowed)
        .unwrap()
        .fill(&mut out);
    assert_eq!(
        (out.status, out.u),
        (EVTCHNSTAT_INTERDOMAIN, [0xdead_0001, own.get()])
    );
}

#[test]
fn bind_virq_refusals_in_xens_order() {
    let (mut t, m) = table(2, MAX_PORT_UNLIMITED);
    assert_eq!(t.bind_virq(NR_VIRQS, 0, &m), Err(Errno::EINVAL));
    assert_eq!(t.bind_virq(u32::MAX, 9, &m), Err(Errno::EINVAL));
    // A global VIRQ on another vCPU: -EINVAL before the vCPU check.
    assert_eq!(t.bind_virq(VIRQ_CONSOLE, 1, &m), Err(Errno::EINVAL));
    assert_eq!(t.bind_virq(VIRQ_CONSOLE, 5, &m), Err(Errno::EINVAL));
    assert_eq!(t.bind_virq(VIRQ_TIMER, 2, &m), Err(Errno::ENOENT));
    let t0 = t.bind_virq(VIRQ_TIMER, 0, &m).unwrap();
    let t1 = t.bind_virq(VIRQ_TIMER, 1, &m).unwrap();
    assert_ne!(t0, t1);
    assert_eq!(t.bind_virq(VIRQ_TIMER, 1, &m), Err(Errno::EEXIST));
    let c = t.bind_virq(VIRQ_CONSOLE, 0, &m).unwrap();
    assert_eq!(t.bind_virq(VIRQ_CONSOLE, 0, &m), Err(Errno::EEXIST));
    assert_eq!(t.virq_port(1, VIRQ_TIMER), Some(t1.get()));
    t.close_local(t1.get(), &m).unwrap();
    assert_eq!(t.virq_port(1, VIRQ_TIMER), None);
    assert_eq!(t.bind_virq(VIRQ_TIMER, 1, &m), Ok(t1));
    // A full table: -EEXIST still comes first, then -ENOSPC.
    let (mut full, fm) = table(1, 2);
    full.bind_virq(VIRQ_DOM_EXC, 0, &fm).unwrap();
    full.bind_ipi(0, &fm).unwrap();
    assert_eq!(full.bind_virq(VIRQ_DOM_EXC, 0, &fm), Err(Errno::EEXIST));
    assert_eq!(full.bind_virq(VIRQ_CONSOLE, 0, &fm), Err(Errno::ENOSPC));
    t.audit().unwrap();
    let _ = c;
}

#[test]
fn virqs_are_delivered_per_vcpu_or_to_the_global_ports_vcpu() {
    let (mut t, m) = table(2, MAX_PORT_UNLIMITED);
    let t1 = t.bind_virq(VIRQ_TIMER, 1, &m).unwrap();
    let r = t.send_vcpu_virq(1, VIRQ_TIMER, &m);
    assert_eq!(
        r,
        Raised {
            newly_pending: Some(t1.get()),
            upcall: Some(1)
        }
    );
    assert_eq!(t.send_vcpu_virq(0, VIRQ_TIMER, &m), Raised::NONE);
    // The wrong kind of VIRQ for each sender does nothing.
    assert_eq!(t.send_global_virq(VIRQ_TIMER, &m), Raised::NONE);
    let c = t.bind_virq(VIRQ_CONSOLE, 0, &m).unwrap();
    assert_eq!(t.send_vcpu_virq(0, VIRQ_CONSOLE, &m), Raised::NONE);
    t.bind_vcpu(c.get(), 1).unwrap();
    let r = t.send_global_virq(VIRQ_CONSOLE, &m);
    assert_eq!(r.newly_pending, Some(c.get()));
    assert_eq!(drain_2l(&t, &m, 1), vec![t1.get(), c.get()]);
    // Still listed on vCPU 0, and closing it there works.
    assert_eq!(t.virq_port(0, VIRQ_CONSOLE), Some(c.get()));
    t.close_local(c.get(), &m).unwrap();
    assert_eq!(t.virq_port(0, VIRQ_CONSOLE), None);
    t.audit().unwrap();
}

#[test]
fn bind_ipi_and_send() {
    let (mut t, m) = table(2, MAX_PORT_UNLIMITED);
    assert_eq!(t.bind_ipi(2, &m), Err(Errno::ENOENT));
    let ipi = t.bind_ipi(1, &m).unwrap();
    let r = t.send(ipi.get(), &m).unwrap();
    assert_eq!(
        r,
        Sent::Raised(Raised {
            newly_pending: Some(ipi.get()),
            upcall: Some(1)
        })
    );
    assert_eq!(upcall(&m, 1), 1);
    assert_eq!(sel(&m, 1), 1);
    assert_eq!(upcall(&m, 0), 0);
    // Pending already: nothing new.
    assert_eq!(t.send(ipi.get(), &m), Ok(Sent::Raised(Raised::NONE)));
    assert_eq!(drain_2l(&t, &m, 1), vec![ipi.get()]);
}

#[test]
fn bind_pirq_is_refused() {
    let (t, _) = table(1, MAX_PORT_UNLIMITED);
    assert_eq!(t.bind_pirq(5, 0), Err(Errno::EINVAL));
    assert_eq!(t.bind_pirq(5, 256), Err(Errno::EPERM));
}

#[test]
fn send_refusals() {
    let (mut t, m) = table(1, MAX_PORT_UNLIMITED);
    assert_eq!(t.send(0, &m), Err(Errno::EINVAL));
    assert_eq!(t.send(5, &m), Err(Errno::EINVAL));
    assert_eq!(t.send(64, &m), Err(Errno::EINVAL));
    assert_eq!(t.send(u32::MAX, &m), Err(Errno::EINVAL));
    let v = t.bind_virq(VIRQ_DEBUG, 0, &m).unwrap();
    assert_eq!(t.send(v.get(), &m), Err(Errno::EINVAL));
    let u = t.alloc_unbound(1, Access::Allowed, &m).unwrap();
    assert_eq!(t.send(u.get(), &m), Ok(Sent::Dropped));
    assert!(!m.is_pending_2l(u.get()));
}

#[test]
fn close_refusals_and_pending_cleared() {
    let (mut t, m) = table(1, MAX_PORT_UNLIMITED);
    assert_eq!(t.close_local(0, &m), Err(Errno::EINVAL));
    assert_eq!(t.close_local(3, &m), Err(Errno::EINVAL));
    assert_eq!(t.close_local(64, &m), Err(Errno::EINVAL));
    let ipi = t.bind_ipi(0, &m).unwrap();
    t.send(ipi.get(), &m).unwrap();
    assert!(m.is_pending_2l(ipi.get()));
    t.close_local(ipi.get(), &m).unwrap();
    assert!(!m.is_pending_2l(ipi.get()));
    assert_eq!(t.close_local(ipi.get(), &m), Err(Errno::EINVAL));
    assert_eq!(t.active(), 0);
}

#[test]
fn loopback_interdomain_bind_send_and_close() {
    let (mut t, m) = table(2, MAX_PORT_UNLIMITED);
    let a = t.alloc_unbound(1, Access::Allowed, &m).unwrap();
    t.bind_vcpu(a.get(), 1).unwrap();
    let b = EventTable::bind_interdomain(Peers::same(&mut t), a.get(), &m).unwrap();
    // The new local end is raised at once (on its vCPU, 0).
    assert_eq!(
        b.raised,
        Raised {
            newly_pending: Some(b.port.get()),
            upcall: Some(0)
        }
    );
    assert_eq!(
        t.state(a.get()),
        Some(PortState::Interdomain {
            remote: dom(1),
            port: b.port
        })
    );
    assert_eq!(
        t.state(b.port.get()),
        Some(PortState::Interdomain {
            remote: dom(1),
            port: a
        })
    );
    // a's notify vCPU (1) survives the bind.
    let r = t.send(b.port.get(), &m).unwrap();
    assert_eq!(
        r,
        Sent::Raised(Raised {
            newly_pending: Some(a.get()),
            upcall: Some(1)
        })
    );
    assert_eq!(drain_2l(&t, &m, 1), vec![a.get()]);
    assert_eq!(drain_2l(&t, &m, 0), vec![b.port.get()]);
    t.audit().unwrap();
    // Closing one end leaves the other unbound for this domain.
    t.close_local(b.port.get(), &m).unwrap();
    assert_eq!(t.state(a.get()), Some(PortState::Unbound { remote: 1 }));
    assert_eq!(t.notify_vcpu(a.get()), Some(1));
    assert_eq!(t.send(a.get(), &m), Ok(Sent::Dropped));
    t.audit().unwrap();
}

#[test]
fn bind_interdomain_refusals() {
    let (mut t, m) = table(1, MAX_PORT_UNLIMITED);
    let bind = |t: &mut EventTable, port| EventTable::bind_interdomain(Peers::same(t), port, &m);
    assert_eq!(bind(&mut t, 64), Err(Errno::EINVAL));
    assert_eq!(bind(&mut t, 0), Err(Errno::EINVAL));
    assert_eq!(bind(&mut t, 9), Err(Errno::EINVAL));
    let ipi = t.bind_ipi(0, &m).unwrap();
    assert_eq!(bind(&mut t, ipi.get()), Err(Errno::EINVAL));
    // Unbound, but for another domain.
    let other = t.alloc_unbound(2, Access::Allowed, &m).unwrap();
    assert_eq!(bind(&mut t, other.get()), Err(Errno::EINVAL));
    // The local port is searched first: a full table says -ENOSPC.
    let (mut full, fm) = table(1, 1);
    let own = full.alloc_unbound(1, Access::Allowed, &fm).unwrap();
    assert_eq!(
        EventTable::bind_interdomain(Peers::same(&mut full), own.get(), &fm),
        Err(Errno::ENOSPC)
    );
    assert_eq!(t.active(), 2);
    t.audit().unwrap();
}

#[test]
fn two_domains_bind_send_and_close() {
    let mut t1 = EventTable::new(dom(1), 1, MAX_PORT_UNLIMITED).unwrap();
    let mut t2 = EventTable::new(dom(2), 1, XL_DEFAULT_MAX_PORT).unwrap();
    let (m1, m2) = (VecMemory::new(1), VecMemory::new(1));
    assert_eq!(lock_order(dom(2), dom(1)), (dom(1), dom(2)));
    assert!(Peers::two(&mut t1, &mut EventTable::new(dom(1), 1, 9).unwrap()).is_none());

    let a = t1.alloc_unbound(2, Access::Allowed, &m1).unwrap();
    // Domain 3 may not bind to it.
    let mut t3 = EventTable::new(dom(3), 1, 9).unwrap();
    let m3 = VecMemory::new(1);
    let peers = Peers::two(&mut t3, &mut t1).unwrap();
    assert_eq!(
        EventTable::bind_interdomain(peers, a.get(), &m3),
        Err(Errno::EINVAL)
    );

    let peers = Peers::two(&mut t2, &mut t1).unwrap();
    let b = EventTable::bind_interdomain(peers, a.get(), &m2).unwrap();
    assert_eq!(
        t1.state(a.get()),
        Some(PortState::Interdomain {
            remote: dom(2),
            port: b.port
        })
    );

    // A send from 2 names 1's port; 1 raises it.
    assert_eq!(
        t2.send(b.port.get(), &m2),
        Ok(Sent::Foreign {
            dom: dom(1),
            port: a
        })
    );
    let r = t1.raise_from_peer(a, dom(2), b.port, &m1);
    assert_eq!(r.newly_pending, Some(a.get()));
    // A stale sender (wrong port) raises nothing.
    assert_eq!(t1.raise_from_peer(a, dom(2), p(99), &m1), Raised::NONE);

    // Closing needs the other table; with only one, -EINVAL.
    assert_eq!(t1.close_needs(a.get()), Some(dom(2)));
    assert_eq!(t1.close_local(a.get(), &m1), Err(Errno::EINVAL));
    let peers = Peers::two(&mut t1, &mut t3).unwrap();
    assert_eq!(EventTable::close(peers, a.get(), &m1), Err(Errno::EINVAL));
    let peers = Peers::two(&mut t1, &mut t2).unwrap();
    EventTable::close(peers, a.get(), &m1).unwrap();
    assert!(!m1.is_pending_2l(a.get()));
    assert_eq!(
        t2.state(b.port.get()),
        Some(PortState::Unbound { remote: 1 })
    );
    t1.audit().unwrap();
    t2.audit().unwrap();
}

#[test]
fn bind_vcpu_refusals_and_moves() {
    let (mut t, m) = table(2, MAX_PORT_UNLIMITED);
    // The vCPU is checked first.
    assert_eq!(t.bind_vcpu(1000, 2), Err(Errno::ENOENT));
    assert_eq!(t.bind_vcpu(1000, 1), Err(Errno::EINVAL));
    assert_eq!(t.bind_vcpu(0, 1), Err(Errno::EINVAL));
    assert_eq!(t.bind_vcpu(7, 1), Err(Errno::EINVAL));
    let ipi = t.bind_ipi(0, &m).unwrap();
    assert_eq!(t.bind_vcpu(ipi.get(), 1), Err(Errno::EINVAL));
    let timer = t.bind_virq(VIRQ_TIMER, 0, &m).unwrap();
    assert_eq!(t.bind_vcpu(timer.get(), 1), Err(Errno::EINVAL));
    let exc = t.bind_virq(VIRQ_DOM_EXC, 0, &m).unwrap();
    t.bind_vcpu(exc.get(), 1).unwrap();
    assert_eq!(t.status(exc.get(), Access::Allowed).unwrap().vcpu, 1);
    let u = t.alloc_unbound(1, Access::Allowed, &m).unwrap();
    t.bind_vcpu(u.get(), 1).unwrap();
    let b = EventTable::bind_interdomain(Peers::same(&mut t), u.get(), &m).unwrap();
    assert_eq!(drain_2l(&t, &m, 0), vec![b.port.get()]);
    t.bind_vcpu(b.port.get(), 1).unwrap();
    t.send(u.get(), &m).unwrap();
    assert_eq!(drain_2l(&t, &m, 1), vec![b.port.get()]);
    t.audit().unwrap();
}

#[test]
fn two_level_masking_and_unmask_redelivery() {
    let (mut t, m) = table(1, MAX_PORT_UNLIMITED);
    assert_eq!(t.unmask(64, &m), Err(Errno::EINVAL));
    // Unmasking a free port is a success that does nothing.
    m.set_mask(9, true);
    assert_eq!(t.unmask(9, &m), Ok(Raised::NONE));
    assert!(t.is_masked(9, &m));
    let ipi = t.bind_ipi(0, &m).unwrap();
    m.set_mask(ipi.get(), true);
    // Masked: pending, but no selector bit and no upcall.
    let r = t.send(ipi.get(), &m).unwrap();
    assert_eq!(
        r,
        Sent::Raised(Raised {
            newly_pending: Some(ipi.get()),
            upcall: None
        })
    );
    assert_eq!((sel(&m, 0), upcall(&m, 0)), (0, 0));
    assert_eq!(t.poll(ipi.get(), &m), Ok(true));
    // Unmask delivers it now.
    assert_eq!(
        t.unmask(ipi.get(), &m),
        Ok(Raised {
            newly_pending: None,
            upcall: Some(0)
        })
    );
    assert_eq!((sel(&m, 0), upcall(&m, 0)), (1, 1));
    // Unmasking again: not masked, nothing.
    assert_eq!(t.unmask(ipi.get(), &m), Ok(Raised::NONE));
    assert_eq!(drain_2l(&t, &m, 0), vec![ipi.get()]);
    assert_eq!(t.poll(ipi.get(), &m), Ok(false));
    // Unmasked and not pending: nothing to deliver.
    m.set_mask(ipi.get(), true);
    assert_eq!(t.unmask(ipi.get(), &m), Ok(Raised::NONE));
}

#[test]
fn an_upcall_already_pending_needs_no_kick() {
    let (mut t, m) = table(1, MAX_PORT_UNLIMITED);
    let a = t.bind_ipi(0, &m).unwrap();
    // A port in another selector word.
    for _ in 2..70 {
        t.bind_ipi(0, &m).unwrap();
    }
    let far = p(69);
    assert_eq!(
        t.send(a.get(), &m).unwrap(),
        Sent::Raised(Raised {
            newly_pending: Some(1),
            upcall: Some(0)
        })
    );
    let r = t.send(far.get(), &m).unwrap();
    assert_eq!(
        r,
        Sent::Raised(Raised {
            newly_pending: Some(69),
            upcall: None
        })
    );
    assert_eq!(sel(&m, 0), 0b11);
    assert_eq!(drain_2l(&t, &m, 0), vec![1, 69]);
}

#[test]
fn poll_refusals() {
    let (mut t, m) = table(1, MAX_PORT_UNLIMITED);
    assert_eq!(t.poll(64, &m), Err(Errno::EINVAL));
    assert_eq!(t.poll(0, &m), Err(Errno::EINVAL));
    assert_eq!(t.poll(3, &m), Err(Errno::EINVAL));
    let u = t.alloc_unbound(1, Access::Allowed, &m).unwrap();
    assert_eq!(t.poll(u.get(), &m), Ok(false));
}

#[test]
fn reset_closes_everything_and_can_be_preempted() {
    let (mut t, m) = table(2, MAX_PORT_UNLIMITED);
    assert_eq!(t.reset(true, &m, || false), Err(Errno::EBUSY));
    for _ in 0..200 {
        t.bind_ipi(1, &m).unwrap();
    }
    let a = t.alloc_unbound(1, Access::Allowed, &m).unwrap();
    EventTable::bind_interdomain(Peers::same(&mut t), a.get(), &m).unwrap();
    t.bind_virq(VIRQ_TIMER, 1, &m).unwrap();
    let mut asked = 0;
    let r = t.reset(false, &m, || {
        asked += 1;
        asked == 2
    });
    assert_eq!(r, Ok(ResetProgress::Preempted));
    // Another reset while this one is in progress: -EBUSY.
    assert_eq!(t.reset(false, &m, || false), Err(Errno::EBUSY));
    assert!(t.active() > 0);
    t.audit().unwrap();
    assert_eq!(
        t.reset(true, &m, || false),
        Ok(ResetProgress::Done {
            fifo_released: false
        })
    );
    assert_eq!(t.active(), 0);
    assert_eq!(t.virq_port(1, VIRQ_TIMER), None);
    assert_eq!(t.reset(true, &m, || false), Err(Errno::EBUSY));
    assert_eq!(
        t.reset(false, &m, || false),
        Ok(ResetProgress::Done {
            fifo_released: false
        })
    );
    assert_eq!(t.bind_ipi(0, &m), Ok(p(1)));
    t.audit().unwrap();
}

#[test]
fn a_reset_preempted_at_every_chance_still_finishes() {
    let (mut t, m) = table(1, MAX_PORT_UNLIMITED);
    for _ in 1..300 {
        t.bind_ipi(0, &m).unwrap();
    }
    let mut calls = 1;
    let mut r = t.reset(false, &m, || true);
    while r == Ok(ResetProgress::Preempted) {
        calls += 1;
        r = t.reset(true, &m, || true);
    }
    assert_eq!(
        r,
        Ok(ResetProgress::Done {
            fifo_released: false
        })
    );
    assert_eq!(calls, 5);
}

#[test]
fn reset_hands_foreign_channels_to_the_glue() {
    let mut t1 = EventTable::new(dom(1), 1, MAX_PORT_UNLIMITED).unwrap();
    let mut t2 = EventTable::new(dom(2), 1, MAX_PORT_UNLIMITED).unwrap();
    let (m1, m2) = (VecMemory::new(1), VecMemory::new(1));
    t1.bind_ipi(0, &m1).unwrap();
    let a = t2.alloc_unbound(1, Access::Allowed, &m2).unwrap();
    let b =
        EventTable::bind_interdomain(Peers::two(&mut t1, &mut t2).unwrap(), a.get(), &m1).unwrap();
    let r = t1.reset(false, &m1, || false).unwrap();
    assert_eq!(
        r,
        ResetProgress::ForeignPeer {
            port: b.port,
            dom: dom(2)
        }
    );
    EventTable::close(Peers::two(&mut t1, &mut t2).unwrap(), b.port.get(), &m1).unwrap();
    assert_eq!(
        t1.reset(true, &m1, || false),
        Ok(ResetProgress::Done {
            fifo_released: false
        })
    );
    assert_eq!(t2.state(a.get()), Some(PortState::Unbound { remote: 1 }));
}

#[test]
fn upcall_due_is_pending_nonzero_and_mask_zero() {
    use super::upcall_due;
    assert!(!upcall_due(0x0000));
    assert!(upcall_due(0x0001));
    assert!(upcall_due(0x00ff));
    assert!(!upcall_due(0x0100));
    assert!(!upcall_due(0x0101));
    assert!(!upcall_due(0xff01));
    assert!(!upcall_due(0xffff));
}

#[test]
fn marking_events_pending_changes_bit_0_alone() {
    // The upcall word: evtchn_upcall_pending low, evtchn_upcall_mask high.
    use core::sync::atomic::Ordering::SeqCst;
    let mem = VecMemory::new(1);
    let word = &mem.upcall_pending[0];
    word.store(0x0100, SeqCst); // masked, nothing pending
    assert_eq!(two_level::mark_events_pending(0, &mem), Some(0), "kick");
    assert_eq!(word.load(SeqCst), 0x0101, "the mask byte kept");
    assert_eq!(two_level::mark_events_pending(0, &mem), None, "set already");
    // Other bits of the pending byte (a guest may write any non-zero
    // value) stay, and only bit 0 decides the kick, as Xen's
    // test_and_set_bit(0, ...).
    word.store(0x00fe, SeqCst);
    assert_eq!(two_level::mark_events_pending(0, &mem), Some(0));
    assert_eq!(word.load(SeqCst), 0x00ff);
}
