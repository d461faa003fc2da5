//! The table's invariants, checked on demand (the host tests and the
//! fuzz target run it after every operation).

use super::super::{virq_is_global, FIFO_PORTS, PORTS_PER_BUCKET};
use super::{port_of, EventTable, PortState};

impl EventTable {
    /// Checks the table's invariants (see the module doc), naming the
    /// first one broken. For tests and fuzzing.
    pub fn audit(&self) -> Result<(), &'static str> {
        let ports = self.channels.len();
        if !ports.is_multiple_of(PORTS_PER_BUCKET as usize) || ports == 0 {
            return Err("port table is not whole buckets");
        }
        if ports > FIFO_PORTS as usize {
            return Err("port table beyond the FIFO limit");
        }
        if self.channels[0].state != PortState::Reserved {
            return Err("port 0 is not reserved");
        }
        let mut active = 0u32;
        let mut virqs = 0usize;
        for (i, c) in self.channels.iter().enumerate() {
            if c.state == PortState::Free && i < self.free_hint as usize {
                return Err("a free port lies below the search hint");
            }
            if i > 0 && c.state == PortState::Reserved {
                return Err("a port other than 0 is reserved");
            }
            if c.state.is_bound() {
                active += 1;
                if i > self.max_port as usize {
                    return Err("a port beyond max_evtchn_port is bound");
                }
                if c.notify >= self.nr_vcpus {
                    return Err("a port notifies a vCPU the domain does not have");
                }
            }
            match c.state {
                PortState::Virq { virq } => {
                    virqs += 1;
                    let owner = if virq_is_global(virq) { 0 } else { c.notify };
                    if self.virq_port(owner, virq) != Some(port_of(i).get()) {
                        return Err("a VIRQ port is missing from its vCPU's table");
                    }
                }
                PortState::Interdomain { remote, port } if remote == self.domid => {
                    let back = PortState::Interdomain {
                        remote: self.domid,
                        port: port_of(i),
                    };
                    if self.state(port.get()) != Some(back) {
                        return Err("a loopback channel's ends do not name each other");
                    }
                }
                _ => {}
            }
        }
        if active != self.active {
            return Err("active count disagrees with the ports");
        }
        let listed = self.virqs.iter().flatten().filter(|&&p| p != 0).count();
        if listed != virqs {
            return Err("the VIRQ tables list a port that is not a VIRQ");
        }
        if let Some(f) = &self.fifo {
            for (_, _, tail) in f.tails() {
                if tail != 0 && tail >= f.nr_words() {
                    return Err("a FIFO tail has no event word");
                }
            }
        }
        Ok(())
    }
}
