//! `evtchn`: one domain's event channels driven by a sequence of
//! operations read from the input (every `EVTCHNOP`, VIRQ sends, FIFO
//! set-up, resets) interleaved with a guest's actions (masking, unmasking
//! as Linux does, draining its upcalls). After every step: the table's
//! audit and the checks of the guest's view (`hv::evtchn::guest`): FIFO
//! queues without loops or shared ports, pending bits only on bound
//! ports. A guest that kept Linux's rules must have seen every event
//! left pending and unmasked at the end.

use core::sync::atomic::Ordering::SeqCst;

use crate::input::Input;
use hv::evtchn::guest::{self, FifoGuest};
use hv::evtchn::{
    AbiKind, Access, EventTable, Peers, PortState, ResetProgress, Sent, VecMemory,
    MAX_PORT_UNLIMITED, XL_DEFAULT_MAX_PORT,
};

use guest_abi::event_channel::EVTCHN_FIFO_MASKED;
use guest_abi::types::DomId;

const MAX_PAGES: u32 = 3;

pub fn evtchn(data: &[u8]) {
    let mut input = Input::new(data);
    let nr_vcpus = 1 + u32::from(input.below(4));
    let max_port = input.pick(&[XL_DEFAULT_MAX_PORT, 70, 5, MAX_PORT_UNLIMITED]);
    let domid = DomId::try_new(1).unwrap();
    let mut t = EventTable::new(domid, nr_vcpus, max_port).unwrap();
    let mut m = VecMemory::new(nr_vcpus);
    let mut g = FifoGuest::new(nr_vcpus);
    // Only Linux-like unmasking and rebinding: every event must arrive.
    let rules = input.bool();
    let mut steps = 0;
    while !input.is_empty() && steps < 400 {
        steps += 1;
        let port = match input.below(4) {
            0 => input.u32(),
            _ => u32::from(input.u8()),
        };
        let vcpu = u32::from(input.below(5));
        match input.below(18) {
            0 => {
                let access = if input.below(8) == 0 {
                    Access::Denied
                } else {
                    Access::Allowed
                };
                let remote = u16::from(input.below(3));
                if let Ok(p) = t.alloc_unbound(remote, access, &m) {
                    assert_eq!(t.state(p.get()), Some(PortState::Unbound { remote }));
                }
            }
            1 => drop(EventTable::bind_interdomain(Peers::same(&mut t), port, &m)),
            2 => drop(t.bind_virq(u32::from(input.below(26)), vcpu, &m)),
            3 => drop(t.bind_ipi(vcpu, &m)),
            4 => {
                let before = t.state(port);
                let r = t.close_local(port, &m);
                assert_eq!(r.is_ok(), before.is_some_and(PortState::is_bound));
            }
            5 => {
                if let Ok(Sent::Raised(r)) = t.send(port, &m) {
                    if let Some(x) = r.newly_pending {
                        if !t.is_masked(x, &m) {
                            let got = guest::drain_all(&t, &m, &mut g).unwrap();
                            assert!(got.contains(&x), "raised port {x} not delivered");
                        }
                    }
                }
            }
            6 => drop(t.send(port, &m)),
            7 => {
                let st = t.status(port, Access::Allowed);
                assert_eq!(st.ok().map(|s| s.state), t.state(port));
            }
            8 => {
                if rules && t.abi() == AbiKind::TwoLevel {
                    let was = t.is_masked(port, &m);
                    m.set_mask(port, true);
                    let _ = t.bind_vcpu(port, vcpu);
                    if !was {
                        let _ = t.unmask(port, &m);
                    }
                } else {
                    let _ = t.bind_vcpu(port, vcpu);
                }
            }
            9 => drop(t.unmask(port, &m)),
            10 => guest_mask(&mut t, &m, port, input.below(3), rules),
            11 => match t.abi() {
                AbiKind::TwoLevel => drop(guest::drain_2l(&t, &m, vcpu)),
                AbiKind::Fifo => drop(g.drain(&m, vcpu).unwrap()),
            },
            12 => {
                if t.abi() == AbiKind::TwoLevel {
                    m.pending.iter().for_each(|w| w.store(0, SeqCst));
                }
                let offset = if input.bool() {
                    u32::from(input.u16())
                } else {
                    0
                };
                if let Ok(token) = t.fifo_init_control_check(vcpu, offset) {
                    m.map_control_block(token.vcpu());
                    assert_eq!(t.fifo_init_control_commit(token, &m), Ok(17));
                }
            }
            13 => {
                if t.fifo_pages() < MAX_PAGES {
                    if let Ok(token) = t.fifo_expand_check() {
                        m.add_event_page();
                        t.fifo_expand_commit(token, &m, drop);
                    }
                }
            }
            14 => drop(t.fifo_set_priority(port, u32::from(input.below(18)))),
            15 => {
                let mut resuming = false;
                loop {
                    match t.reset(resuming, &m, || input.below(4) == 0) {
                        Ok(ResetProgress::Preempted) => resuming = true,
                        Ok(ResetProgress::Done { fifo_released }) => {
                            if fifo_released {
                                m.release_fifo();
                                g = FifoGuest::new(nr_vcpus);
                            }
                            break;
                        }
                        other => panic!("reset: {other:?}"),
                    }
                    t.audit().unwrap();
                }
                assert_eq!(t.active(), 0);
            }
            16 => drop(t.send_vcpu_virq(vcpu, u32::from(input.below(25)), &m)),
            _ => drop(t.send_global_virq(u32::from(input.below(25)), &m)),
        }
        t.audit().unwrap();
        guest::check_memory(&t, &m, &g).unwrap();
    }
    guest::drain_all(&t, &m, &mut g).unwrap();
    if rules {
        guest::check_delivered(&t, &m).unwrap();
    }
}

/// The guest masks a port or unmasks it: as Linux does when `rules`
/// (2-level: the hypercall with the mask still set; FIFO: clear MASKED,
/// then the hypercall if pending), otherwise also by just clearing it.
fn guest_mask(t: &mut EventTable, m: &VecMemory, port: u32, action: u8, rules: bool) {
    let fifo_mask = 1 << EVTCHN_FIFO_MASKED;
    match (t.abi(), action) {
        (AbiKind::TwoLevel, 0) => m.set_mask(port, true),
        (AbiKind::TwoLevel, 1) if !rules => m.set_mask(port, false),
        (AbiKind::TwoLevel, _) => drop(t.unmask(port, m)),
        (AbiKind::Fifo, _) => {
            let Some(w) = hv::evtchn::EventMemory::event_word(m, port) else {
                return;
            };
            if action == 0 {
                w.fetch_or(fifo_mask, SeqCst);
            } else {
                w.fetch_and(!fifo_mask, SeqCst);
                if (rules || action == 2) && t.is_pending(port, m) {
                    let _ = t.unmask(port, m);
                }
            }
        }
    }
}
