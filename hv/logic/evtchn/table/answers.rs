//! What the table's operations answer, and the two-table handle of the
//! operations that join or part two domains.

use guest_abi::event_channel::{
    EvtchnStatus, EVTCHNSTAT_CLOSED, EVTCHNSTAT_INTERDOMAIN, EVTCHNSTAT_IPI, EVTCHNSTAT_UNBOUND,
    EVTCHNSTAT_VIRQ,
};
use guest_abi::types::{DomId, EvtchnPort};

use super::super::Raised;
use super::{EventTable, PortState};

/// What `status` answers: the port's state and the vCPU it notifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortStatus {
    pub state: PortState,
    pub vcpu: u32,
}

impl PortStatus {
    /// Writes the answer into the guest's `evtchn_status`, touching only
    /// the fields Xen writes: `status`, `vcpu` and the union member of
    /// the state (a closed or IPI port leaves `u` as the guest passed it;
    /// `unbound.dom` is the union's first 16 bits only).
    pub fn fill(&self, out: &mut EvtchnStatus) {
        out.vcpu = self.vcpu;
        out.status = match self.state {
            PortState::Free | PortState::Reserved => EVTCHNSTAT_CLOSED,
            PortState::Unbound { remote } => {
                out.u[0] = (out.u[0] & 0xffff_0000) | u32::from(remote);
                EVTCHNSTAT_UNBOUND
            }
            PortState::Interdomain { remote, port } => {
                out.u[0] = (out.u[0] & 0xffff_0000) | u32::from(remote.get());
                out.u[1] = port.get();
                EVTCHNSTAT_INTERDOMAIN
            }
            PortState::Virq { virq } => {
                out.u[0] = virq;
                EVTCHNSTAT_VIRQ
            }
            PortState::Ipi => EVTCHNSTAT_IPI,
        };
    }
}

/// A new port and what binding it raised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bound {
    pub port: EvtchnPort,
    pub raised: Raised,
}

/// What `send` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// Raised in this domain (IPI, or loopback interdomain).
    Raised(Raised),
    /// The port is unbound: Xen drops the notification and succeeds.
    Dropped,
    /// The other end is `port` of domain `dom`: the glue locks that
    /// domain's table and calls [`EventTable::raise_from_peer`].
    Foreign { dom: DomId, port: EvtchnPort },
}

/// How far a reset got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetProgress {
    /// Every port closed; `fifo_released`: the domain is back on the
    /// 2-level ABI and the glue drops its FIFO frames.
    Done { fifo_released: bool },
    /// Preempted: the glue returns a continuation (`EVTCHNOP_reset_cont`)
    /// and calls again with `resuming`.
    Preempted,
    /// `port` is connected to another domain: the glue closes it with
    /// both tables ([`close`](EventTable::close) over [`Peers::two`]),
    /// then calls again with `resuming`.
    ForeignPeer { port: EvtchnPort, dom: DomId },
}

/// Proof that `init_control`'s checks passed for `vcpu`; the glue maps
/// the control block, then commits.
#[derive(Debug)]
pub struct InitControl {
    pub(super) vcpu: u32,
}

impl InitControl {
    pub fn vcpu(&self) -> u32 {
        self.vcpu
    }
}

/// Proof that `expand_array` may add page `slot`; the glue maps the
/// frame there, then commits.
#[derive(Debug)]
pub struct ExpandArray {
    pub(super) slot: u32,
}

impl ExpandArray {
    pub fn slot(&self) -> u32 {
        self.slot
    }
}

/// The domain that a cross-domain operation must lock first: the lower
/// [`DomId`] (the lock order `DESIGN.md` writes down).
pub fn lock_order(a: DomId, b: DomId) -> (DomId, DomId) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// The tables of a two-ended operation: the caller's own (`local`) and
/// the other end's, which is the same table for loopback.
pub struct Peers<'a> {
    pub(super) local: &'a mut EventTable,
    pub(super) remote: Option<&'a mut EventTable>,
}

impl<'a> Peers<'a> {
    /// Both ends in one domain.
    pub fn same(table: &'a mut EventTable) -> Self {
        Self {
            local: table,
            remote: None,
        }
    }

    /// Two domains' tables, both locked by the caller; `None` if they are
    /// the same domain's.
    pub fn two(local: &'a mut EventTable, remote: &'a mut EventTable) -> Option<Self> {
        (local.domid != remote.domid).then_some(Self {
            local,
            remote: Some(remote),
        })
    }
}
