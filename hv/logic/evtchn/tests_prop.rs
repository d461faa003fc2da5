//! Randomised sequences of operations, guest actions included, checked
//! after every step: the table's own audit, the FIFO queues as the guest
//! would walk them (no loops, no port on two queues, every linked port
//! on one, hv's tails at their queues' ends), pending bits only on bound
//! ports, and every newly raised unmasked event seen by the guest's next
//! drain. Deterministic seeds, well under a second.

use core::sync::atomic::Ordering::SeqCst;

use super::guest::{self, FifoGuest};
use super::tests::dom;
use super::tests_fifo::{expand, init_control};
use super::*;
use guest_abi::event_channel::EVTCHN_FIFO_MASKED;
use guest_abi::xen::NR_VIRQS;

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u32) -> u32 {
        u32::try_from(self.next() % u64::from(n.max(1))).unwrap()
    }
}

struct World {
    t: EventTable,
    m: VecMemory,
    g: FifoGuest,
    nr_vcpus: u32,
    /// The guest may break rules Linux keeps (steps 8 and 10), so an
    /// event may be lost to it: the final delivery check is skipped.
    undisciplined: bool,
}

impl World {
    fn port(&self, rng: &mut Rng) -> u32 {
        match rng.below(8) {
            0 => rng.below(u32::MAX),
            1 => self.t.valid_ports() + rng.below(70),
            _ => rng.below(self.t.valid_ports().min(160) + 2),
        }
    }

    fn vcpu(&self, rng: &mut Rng) -> u32 {
        rng.below(self.nr_vcpus + 1)
    }

    fn drain_all(&mut self) -> Vec<u32> {
        guest::drain_all(&self.t, &self.m, &mut self.g).unwrap()
    }

    fn step(&mut self, rng: &mut Rng) {
        let m = &self.m;
        match rng.below(18) {
            0 => {
                let remote = if rng.below(2) == 0 {
                    1
                } else {
                    u16::try_from(rng.below(5)).unwrap()
                };
                let access = if rng.below(8) == 0 {
                    Access::Denied
                } else {
                    Access::Allowed
                };
                let _ = self.t.alloc_unbound(remote, access, m);
            }
            1 => {
                let port = self.port(rng);
                let _ = EventTable::bind_interdomain(Peers::same(&mut self.t), port, m);
            }
            2 => {
                let virq = rng.below(NR_VIRQS + 2);
                let vcpu = self.vcpu(rng);
                let _ = self.t.bind_virq(virq, vcpu, m);
            }
            3 => {
                let vcpu = self.vcpu(rng);
                let _ = self.t.bind_ipi(vcpu, m);
            }
            4 => {
                let port = self.port(rng);
                let _ = self.t.close_local(port, m);
            }
            5 | 6 => {
                let port = self.port(rng);
                if let Ok(Sent::Raised(r)) = self.t.send(port, m) {
                    if let Some(x) = r.newly_pending {
                        if !self.t.is_masked(x, m) && rng.below(2) == 0 {
                            let got = self.drain_all();
                            assert!(got.contains(&x), "raised port {x} not delivered");
                        }
                    }
                }
            }
            7 => {
                let port = self.port(rng);
                let st = self.t.status(port, Access::Allowed);
                assert_eq!(st.ok().map(|s| s.state), self.t.state(port));
            }
            8 => {
                let (port, vcpu) = (self.port(rng), self.vcpu(rng));
                if self.t.abi() == AbiKind::TwoLevel && (!self.undisciplined || rng.below(2) == 0) {
                    // As Linux rebinds: mask, move, unmask by hypercall
                    // (which re-raises a pending port on its new vCPU).
                    let was = self.t.is_masked(port, m);
                    m.set_mask(port, true);
                    let _ = self.t.bind_vcpu(port, vcpu);
                    if !was {
                        let _ = self.t.unmask(port, m);
                    }
                } else {
                    // A pending 2-level port moved without the unmask can
                    // be lost to the guest (as it would be to Linux).
                    let _ = self.t.bind_vcpu(port, vcpu);
                }
            }
            9 => {
                let port = self.port(rng);
                let _ = self.t.unmask(port, m);
            }
            10 => {
                // The guest masks a port in its own memory, or unmasks
                // it as Linux does (2-level: by hypercall with the mask
                // still set; FIFO: clear MASKED, then the hypercall if
                // pending), or, rarely, clears the mask without telling.
                let port = rng.below(self.t.valid_ports() + 1);
                let action = rng.below(9);
                let fifo_mask = 1 << EVTCHN_FIFO_MASKED;
                match (self.t.abi(), action) {
                    (AbiKind::TwoLevel, 0..=3) => m.set_mask(port, true),
                    (AbiKind::TwoLevel, 4..=7) => drop(self.t.unmask(port, m)),
                    (AbiKind::TwoLevel, _) if self.undisciplined => m.set_mask(port, false),
                    (AbiKind::TwoLevel, _) => {}
                    (AbiKind::Fifo, _) => {
                        if let Some(w) = m.event_word(port) {
                            if action <= 3 {
                                w.fetch_or(fifo_mask, SeqCst);
                            } else {
                                w.fetch_and(!fifo_mask, SeqCst);
                                let tell = action <= 7 || !self.undisciplined;
                                if tell && self.t.is_pending(port, m) {
                                    let _ = self.t.unmask(port, m);
                                }
                            }
                        }
                    }
                }
            }
            11 => {
                let v = rng.below(self.nr_vcpus);
                match self.t.abi() {
                    AbiKind::TwoLevel => drop(guest::drain_2l(&self.t, m, v)),
                    AbiKind::Fifo => drop(self.g.drain(m, v).unwrap()),
                }
            }
            12 => {
                let vcpu = self.vcpu(rng);
                if self.t.abi() == AbiKind::TwoLevel {
                    // The guest stops using the 2-level bitmaps.
                    self.m.pending.iter().for_each(|w| w.store(0, SeqCst));
                }
                let offset = if rng.below(4) == 0 {
                    rng.below(4100)
                } else {
                    0
                };
                if let Ok(token) = self.t.fifo_init_control_check(vcpu, offset) {
                    self.m.map_control_block(token.vcpu());
                    assert_eq!(
                        self.t.fifo_init_control_commit(token, &self.m),
                        Ok(FIFO_LINK_BITS)
                    );
                }
            }
            13 => {
                if self.t.fifo_pages() < 3 {
                    let _ = expand(&mut self.t, &mut self.m);
                }
            }
            14 => {
                let (port, prio) = (self.port(rng), rng.below(18));
                let _ = self.t.fifo_set_priority(port, prio);
            }
            15 => {
                if rng.below(4) == 0 {
                    let mut resuming = false;
                    loop {
                        let r = self.t.reset(resuming, &self.m, || rng.below(3) == 0);
                        match r {
                            Ok(ResetProgress::Preempted) => resuming = true,
                            Ok(ResetProgress::Done { fifo_released }) => {
                                if fifo_released {
                                    self.m.release_fifo();
                                    self.g = FifoGuest::new(self.nr_vcpus);
                                }
                                break;
                            }
                            other => panic!("reset: {other:?}"),
                        }
                        self.t.audit().unwrap();
                    }
                    assert_eq!(self.t.active(), 0);
                }
            }
            16 => {
                let (vcpu, virq) = (self.vcpu(rng), rng.below(NR_VIRQS + 1));
                let _ = self.t.send_vcpu_virq(vcpu, virq, m);
            }
            _ => {
                let virq = rng.below(NR_VIRQS + 1);
                let _ = self.t.send_global_virq(virq, m);
            }
        }
    }

    fn check(&self) {
        self.t.audit().unwrap();
        guest::check_memory(&self.t, &self.m, &self.g).unwrap();
    }
}

#[test]
fn random_operation_sequences_keep_every_invariant() {
    for seed in 1..=150u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let nr_vcpus = 1 + rng.below(3);
        let max_port = [XL_DEFAULT_MAX_PORT, 70, MAX_PORT_UNLIMITED][rng.below(3) as usize];
        let mut w = World {
            t: EventTable::new(dom(1), nr_vcpus, max_port).unwrap(),
            m: VecMemory::new(nr_vcpus),
            g: FifoGuest::new(nr_vcpus),
            nr_vcpus,
            undisciplined: seed % 2 == 0,
        };
        if rng.below(2) == 0 {
            for v in 0..nr_vcpus {
                init_control(&mut w.t, &mut w.m, v).unwrap();
            }
            expand(&mut w.t, &mut w.m).unwrap();
        }
        for _ in 0..300 {
            w.step(&mut rng);
            w.check();
        }
        // Whatever is pending and unmasked reaches a guest that keeps
        // Linux's rules.
        w.drain_all();
        if !w.undisciplined {
            for port in 1..w.t.valid_ports() {
                let lost = w.t.is_pending(port, &w.m) && !w.t.is_masked(port, &w.m);
                assert!(
                    !lost,
                    "seed {seed}: port {port} pending, unmasked, undelivered"
                );
            }
        }
    }
}
