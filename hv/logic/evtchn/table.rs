//! One domain's port table and the `event_channel_op` operations on it.
//!
//! Each operation checks in Xen's order and returns Xen's errno for the
//! first check that fails; what it changes it changes only once every
//! check passed, except what Xen also changes on the way: finding a free
//! port grows the table by a bucket even if the operation then fails, so
//! a later `status` of a port in that bucket answers "closed" where it
//! answered `-EINVAL` before (as on Xen).
//!
//! Operations that touch two domains (binding to another domain's
//! unbound port, closing an interdomain channel) take [`Peers`]: both
//! tables, which the glue locks in [`lock_order`]. Within one domain
//! (loopback) they take [`Peers::same`].

use alloc::vec::Vec;

use guest_abi::errno::Errno;
use guest_abi::event_channel::EVTCHN_FIFO_PRIORITY_DEFAULT;
use guest_abi::types::{DomId, EvtchnPort};
use guest_abi::xen::NR_VIRQS;

use super::fifo::FifoState;
use super::memory::EventMemory;
use super::{
    two_level, virq_is_global, AbiKind, Access, Raised, FIFO_PORTS, PORTS_PER_BUCKET,
    TWO_LEVEL_PORTS,
};
use crate::nospec;

mod answers;
mod audit;
mod fifo_ops;

pub use answers::{
    lock_order, Bound, ExpandArray, InitControl, Peers, PortStatus, ResetProgress, Sent,
};

const PAGE_SIZE: u32 = 4096;
const NR_VIRQS_USIZE: usize = NR_VIRQS as usize;
/// `EVTCHN_FIFO_PRIORITY_DEFAULT`, as a channel stores it.
const DEFAULT_PRIORITY: u8 = 7;
const _: () = assert!(DEFAULT_PRIORITY as u32 == EVTCHN_FIFO_PRIORITY_DEFAULT);

/// What a port is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortState {
    /// Not in use.
    Free,
    /// Never usable (port 0).
    Reserved,
    /// Allocated, waiting for `remote` (any domid the allocator named,
    /// unchecked, as on Xen) to bind to it.
    Unbound { remote: u16 },
    /// Connected to `port` of `remote` (this domain itself for loopback).
    Interdomain { remote: DomId, port: EvtchnPort },
    /// Bound to a VIRQ.
    Virq { virq: u32 },
    /// Bound for inter-vCPU notification.
    Ipi,
}

impl PortState {
    /// Whether events can be raised on the port (Xen's `evtchn_usable`).
    #[inline]
    pub fn is_bound(self) -> bool {
        !matches!(self, Self::Free | Self::Reserved)
    }
}

/// One port.
#[derive(Clone, Copy, Debug)]
pub(super) struct Channel {
    pub(super) state: PortState,
    /// The vCPU notified of events on this port.
    pub(super) notify: u32,
    /// FIFO priority (0 highest, 15 lowest).
    pub(super) priority: u8,
    /// FIFO: the queue it was last linked on (vCPU, priority).
    pub(super) last_vcpu: u32,
    pub(super) last_priority: u8,
    /// FIFO: raised while its event-array page was missing.
    pub(super) fifo_pending: bool,
}

impl Channel {
    const FREE: Self = Self {
        state: PortState::Free,
        notify: 0,
        priority: 0,
        last_vcpu: 0,
        last_priority: 0,
        fifo_pending: false,
    };
}

/// The event channels of one domain.
pub struct EventTable {
    domid: DomId,
    /// Highest port the domain may allocate (`max_evtchn_port`).
    max_port: u32,
    nr_vcpus: u32,
    /// Valid ports (`valid_evtchns`): whole buckets.
    channels: Vec<Channel>,
    /// Ports neither free nor reserved.
    active: u32,
    /// Every port below this one is in use: the search for the lowest
    /// free port starts here (it finds what Xen's search from 0 finds).
    free_hint: u32,
    /// Per vCPU, the port bound to each VIRQ (0: none). A global VIRQ's
    /// entry is on vCPU 0 wherever `bind_vcpu` moved its notifications.
    virqs: Vec<[u32; NR_VIRQS_USIZE]>,
    fifo: Option<FifoState>,
    /// Where an interrupted reset resumes (0: none in progress).
    reset_next: u32,
    dying: bool,
}

impl EventTable {
    /// A fresh table: 2-level ABI, the first bucket valid, port 0
    /// reserved (Xen's `evtchn_init`). `max_port` is the domain's
    /// `max_evtchn_port` ([`super::MAX_PORT_UNLIMITED`] for dom0).
    pub fn new(domid: DomId, nr_vcpus: u32, max_port: u32) -> Result<Self, Errno> {
        if nr_vcpus == 0 || nr_vcpus > u32::from(u16::MAX) + 1 {
            return Err(Errno::EINVAL);
        }
        let mut channels = Vec::new();
        channels
            .try_reserve_exact(PORTS_PER_BUCKET as usize)
            .map_err(|_| Errno::ENOMEM)?;
        channels.resize(PORTS_PER_BUCKET as usize, Channel::FREE);
        channels[0].state = PortState::Reserved;
        let mut virqs = Vec::new();
        virqs
            .try_reserve_exact(nr_vcpus as usize)
            .map_err(|_| Errno::ENOMEM)?;
        virqs.resize(nr_vcpus as usize, [0; NR_VIRQS_USIZE]);
        Ok(Self {
            domid,
            max_port: max_port.min(super::MAX_PORT_UNLIMITED),
            nr_vcpus,
            channels,
            active: 0,
            free_hint: 0,
            virqs,
            fifo: None,
            reset_next: 0,
            dying: false,
        })
    }

    pub fn domid(&self) -> DomId {
        self.domid
    }

    pub fn nr_vcpus(&self) -> u32 {
        self.nr_vcpus
    }

    pub fn max_port(&self) -> u32 {
        self.max_port
    }

    /// Ports an operation may name without `-EINVAL` (`valid_evtchns`).
    pub fn valid_ports(&self) -> u32 {
        u32::try_from(self.channels.len()).unwrap_or(u32::MAX)
    }

    /// Channels in use (neither free nor reserved).
    pub fn active(&self) -> u32 {
        self.active
    }

    pub fn abi(&self) -> AbiKind {
        if self.fifo.is_some() {
            AbiKind::Fifo
        } else {
            AbiKind::TwoLevel
        }
    }

    /// FIFO event-array pages added (0 on 2-level).
    pub fn fifo_pages(&self) -> u32 {
        self.fifo.as_ref().map_or(0, FifoState::pages)
    }

    /// Ports the current ABI can address (`max_evtchns`).
    pub fn abi_ports(&self) -> u32 {
        if self.fifo.is_some() {
            FIFO_PORTS
        } else {
            TWO_LEVEL_PORTS
        }
    }

    /// No new port from now on (Xen's `is_dying`: allocation answers
    /// `-EINVAL`).
    pub fn set_dying(&mut self) {
        self.dying = true;
    }

    /// The state of `port`, if valid.
    pub fn state(&self, port: u32) -> Option<PortState> {
        self.slot(port).map(|i| self.channels[i].state)
    }

    /// The vCPU `port` notifies, if valid.
    pub fn notify_vcpu(&self, port: u32) -> Option<u32> {
        self.slot(port).map(|i| self.channels[i].notify)
    }

    /// A guest-given port's index, clamped against speculation.
    #[inline]
    fn slot(&self, port: u32) -> Option<usize> {
        nospec::index(port as usize, self.channels.len())
    }

    fn vcpu_ok(&self, vcpu: u32) -> bool {
        vcpu < self.nr_vcpus
    }

    // ---- allocation --------------------------------------------------

    fn is_busy<M: EventMemory + ?Sized>(&self, port: u32, mem: &M) -> bool {
        self.fifo.as_ref().is_some_and(|f| f.is_busy(port, mem))
    }

    /// Xen's `evtchn_allocate_port` minus the count: `-ENOSPC` beyond the
    /// limits, `-EBUSY` for a port in use (or still on a FIFO queue),
    /// otherwise the buckets up to `port` exist afterwards.
    fn claim<M: EventMemory + ?Sized>(&mut self, port: u32, mem: &M) -> Result<usize, Errno> {
        if port > self.max_port || port >= self.abi_ports() {
            return Err(Errno::ENOSPC);
        }
        if let Some(i) = self.slot(port) {
            if self.channels[i].state != PortState::Free || self.is_busy(port, mem) {
                return Err(Errno::EBUSY);
            }
            return Ok(i);
        }
        let want = (port / PORTS_PER_BUCKET + 1) * PORTS_PER_BUCKET;
        let grow = want as usize - self.channels.len();
        self.channels
            .try_reserve_exact(grow)
            .map_err(|_| Errno::ENOMEM)?;
        self.channels.resize(want as usize, Channel::FREE);
        Ok(port as usize)
    }

    /// The lowest free port (Xen's `get_free_port`), its bucket grown;
    /// still free until the caller binds it.
    fn free_port<M: EventMemory + ?Sized>(&mut self, mem: &M) -> Result<usize, Errno> {
        if self.dying {
            return Err(Errno::EINVAL);
        }
        // The first free port met, even one still busy on a FIFO queue:
        // the hint may not pass it.
        let mut first_free = None;
        for port in self.free_hint..=self.max_port {
            match self.claim(port, mem) {
                Ok(i) => {
                    self.free_hint = first_free.unwrap_or(port);
                    return Ok(i);
                }
                Err(e) if e != Errno::EBUSY => return Err(e),
                Err(_) => {
                    if first_free.is_none() && self.state(port) == Some(PortState::Free) {
                        first_free = Some(port);
                    }
                }
            }
        }
        Err(Errno::ENOSPC)
    }

    /// Binds a claimed free port (Xen's state change plus
    /// `evtchn_port_init`, which gives a FIFO port the default priority).
    fn bind(&mut self, i: usize, state: PortState, notify: u32) -> EvtchnPort {
        let c = &mut self.channels[i];
        c.state = state;
        c.notify = notify;
        if self.fifo.is_some() {
            c.priority = DEFAULT_PRIORITY;
        }
        self.active += 1;
        port_of(i)
    }

    /// Frees a bound port: pending cleared, notify vCPU back to 0.
    fn free<M: EventMemory + ?Sized>(&mut self, i: usize, mem: &M) {
        let port = port_of(i).get();
        match &self.fifo {
            Some(f) => f.clear_pending(port, mem),
            None => two_level::clear_pending(port, mem),
        }
        let c = &mut self.channels[i];
        c.state = PortState::Free;
        c.notify = 0;
        c.fifo_pending = false;
        self.active -= 1;
        self.free_hint = self.free_hint.min(port);
    }

    // ---- delivery ----------------------------------------------------

    /// Raises the event on a bound port for `vcpu`.
    #[inline]
    fn raise<M: EventMemory + ?Sized>(&mut self, i: usize, vcpu: u32, mem: &M) -> Raised {
        let port = port_of(i).get();
        let c = &mut self.channels[i];
        if !c.state.is_bound() {
            return Raised::NONE;
        }
        match &mut self.fifo {
            Some(f) => f.set_pending(c, port, vcpu, mem),
            None => two_level::set_pending(port, vcpu, mem),
        }
    }

    /// Whether `port` is pending, for `SCHEDOP_poll`: `-EINVAL` for a
    /// port that is invalid or not bound (Xen's `evtchn_port_poll`).
    pub fn poll<M: EventMemory + ?Sized>(&self, port: u32, mem: &M) -> Result<bool, Errno> {
        let i = self.slot(port).ok_or(Errno::EINVAL)?;
        if !self.channels[i].state.is_bound() {
            return Err(Errno::EINVAL);
        }
        Ok(self.is_pending(port, mem))
    }

    /// Whether a port's event is pending in the current ABI.
    pub fn is_pending<M: EventMemory + ?Sized>(&self, port: u32, mem: &M) -> bool {
        match &self.fifo {
            Some(f) => f.is_pending(port, mem),
            None => two_level::is_pending(port, mem),
        }
    }

    /// Whether a port is masked in the current ABI.
    pub fn is_masked<M: EventMemory + ?Sized>(&self, port: u32, mem: &M) -> bool {
        match &self.fifo {
            Some(f) => f.is_masked(port, mem),
            None => two_level::is_masked(port, mem),
        }
    }

    /// Raises `port` for a send from `from_port` of domain `from`, if it
    /// is still that port's other end (it may have been closed or
    /// rebound since the sender looked).
    pub fn raise_from_peer<M: EventMemory + ?Sized>(
        &mut self,
        port: EvtchnPort,
        from: DomId,
        from_port: EvtchnPort,
        mem: &M,
    ) -> Raised {
        let Some(i) = self.slot(port.get()) else {
            return Raised::NONE;
        };
        let c = self.channels[i];
        if c.state
            != (PortState::Interdomain {
                remote: from,
                port: from_port,
            })
        {
            return Raised::NONE;
        }
        self.raise(i, c.notify, mem)
    }

    /// Raises a per-vCPU VIRQ (TIMER, DEBUG...) on `vcpu`, if bound there
    /// (Xen's `send_guest_vcpu_virq`).
    pub fn send_vcpu_virq<M: EventMemory + ?Sized>(
        &mut self,
        vcpu: u32,
        virq: u32,
        mem: &M,
    ) -> Raised {
        if virq_is_global(virq) {
            return Raised::NONE;
        }
        match self.virq_port(vcpu, virq).and_then(|p| self.slot(p)) {
            Some(i) => self.raise(i, vcpu, mem),
            None => Raised::NONE,
        }
    }

    /// Raises a global VIRQ (CONSOLE, DOM_EXC...) on the vCPU its port
    /// notifies, if bound (Xen's `send_guest_global_virq`).
    pub fn send_global_virq<M: EventMemory + ?Sized>(&mut self, virq: u32, mem: &M) -> Raised {
        if !virq_is_global(virq) {
            return Raised::NONE;
        }
        match self.virq_port(0, virq).and_then(|p| self.slot(p)) {
            Some(i) => {
                let vcpu = self.channels[i].notify;
                self.raise(i, vcpu, mem)
            }
            None => Raised::NONE,
        }
    }

    /// The port bound to `virq` in `vcpu`'s table, if any.
    pub fn virq_port(&self, vcpu: u32, virq: u32) -> Option<u32> {
        let v = self
            .virqs
            .get(nospec::index(vcpu as usize, self.virqs.len())?)?;
        let p = *v.get(nospec::index(virq as usize, NR_VIRQS_USIZE)?)?;
        (p != 0).then_some(p)
    }

    // ---- EVTCHNOP_* --------------------------------------------------

    /// `alloc_unbound`: a port that domain `remote` (already resolved
    /// from `DOMID_SELF` to the caller) may bind to. `access` is checked
    /// after the port search, as Xen's XSM hook is.
    pub fn alloc_unbound<M: EventMemory + ?Sized>(
        &mut self,
        remote: u16,
        access: Access,
        mem: &M,
    ) -> Result<EvtchnPort, Errno> {
        let i = self.free_port(mem)?;
        if access == Access::Denied {
            return Err(Errno::EPERM);
        }
        Ok(self.bind(i, PortState::Unbound { remote }, 0))
    }

    /// `bind_virq`: `-EINVAL` for a VIRQ beyond `NR_VIRQS` or a global
    /// VIRQ on a vCPU other than 0, `-ENOENT` for a vCPU the domain does
    /// not have, `-EEXIST` if the VIRQ is bound on that vCPU already.
    pub fn bind_virq<M: EventMemory + ?Sized>(
        &mut self,
        virq: u32,
        vcpu: u32,
        mem: &M,
    ) -> Result<EvtchnPort, Errno> {
        let v = nospec::index(virq as usize, NR_VIRQS_USIZE).ok_or(Errno::EINVAL)?;
        if virq_is_global(virq) && vcpu != 0 {
            return Err(Errno::EINVAL);
        }
        let vi = nospec::index(vcpu as usize, self.virqs.len()).ok_or(Errno::ENOENT)?;
        if self.virqs[vi][v] != 0 {
            return Err(Errno::EEXIST);
        }
        let i = self.free_port(mem)?;
        let port = self.bind(i, PortState::Virq { virq }, vcpu);
        self.virqs[vi][v] = port.get();
        Ok(port)
    }

    /// `bind_ipi`: `-ENOENT` for a vCPU the domain does not have.
    pub fn bind_ipi<M: EventMemory + ?Sized>(
        &mut self,
        vcpu: u32,
        mem: &M,
    ) -> Result<EvtchnPort, Errno> {
        if !self.vcpu_ok(vcpu) {
            return Err(Errno::ENOENT);
        }
        let i = self.free_port(mem)?;
        Ok(self.bind(i, PortState::Ipi, vcpu))
    }

    /// `bind_pirq`: hv passes no physical IRQ to any domain, so every
    /// PIRQ is refused as Xen refuses one outside the domain's
    /// `irq_caps`: `-EINVAL` at or beyond `nr_pirqs`, else `-EPERM`.
    pub fn bind_pirq(&self, pirq: u32, nr_pirqs: u32) -> Result<EvtchnPort, Errno> {
        Err(if pirq >= nr_pirqs {
            Errno::EINVAL
        } else {
            Errno::EPERM
        })
    }

    /// `bind_interdomain`: binds a new port of `peers`' local table to
    /// `remote_port` of the remote one, which must be unbound and
    /// allocated for this domain (`-EINVAL` otherwise, after the local
    /// port search). Raises the new local port, as Xen does, in case the
    /// remote end signalled before the bind.
    pub fn bind_interdomain<M: EventMemory + ?Sized>(
        peers: Peers<'_>,
        remote_port: u32,
        mem: &M,
    ) -> Result<Bound, Errno> {
        let Peers { local, remote } = peers;
        let li = local.free_port(mem)?;
        let ldom = local.domid;
        let lport = port_of(li);
        let want = PortState::Unbound { remote: ldom.get() };
        let (rdom, rport) = match remote {
            None => {
                let ri = local.slot(remote_port).ok_or(Errno::EINVAL)?;
                if local.channels[ri].state != want {
                    return Err(Errno::EINVAL);
                }
                local.channels[ri].state = PortState::Interdomain {
                    remote: ldom,
                    port: lport,
                };
                (ldom, port_of(ri))
            }
            Some(r) => {
                let ri = r.slot(remote_port).ok_or(Errno::EINVAL)?;
                if r.channels[ri].state != want {
                    return Err(Errno::EINVAL);
                }
                r.channels[ri].state = PortState::Interdomain {
                    remote: ldom,
                    port: lport,
                };
                (r.domid, port_of(ri))
            }
        };
        let port = local.bind(
            li,
            PortState::Interdomain {
                remote: rdom,
                port: rport,
            },
            0,
        );
        let vcpu = local.channels[li].notify;
        let raised = local.raise(li, vcpu, mem);
        Ok(Bound { port, raised })
    }

    /// The other domain whose table a close of `port` must also hold.
    pub fn close_needs(&self, port: u32) -> Option<DomId> {
        match self.state(port)? {
            PortState::Interdomain { remote, .. } if remote != self.domid => Some(remote),
            _ => None,
        }
    }

    /// `close`: `-EINVAL` for an invalid, free or reserved port. An
    /// interdomain port's other end goes back to unbound (for this
    /// domain). If that other end is in a domain `peers` does not hold
    /// (it changed since [`close_needs`](Self::close_needs)), `-EINVAL`,
    /// as Xen answers when it finds the channel rebound after relocking.
    pub fn close<M: EventMemory + ?Sized>(
        peers: Peers<'_>,
        port: u32,
        mem: &M,
    ) -> Result<(), Errno> {
        let Peers { local, remote } = peers;
        let i = local.slot(port).ok_or(Errno::EINVAL)?;
        match local.channels[i].state {
            PortState::Free | PortState::Reserved => return Err(Errno::EINVAL),
            PortState::Unbound { .. } | PortState::Ipi => {}
            PortState::Virq { virq } => {
                let owner = if virq_is_global(virq) {
                    0
                } else {
                    local.channels[i].notify
                };
                if let Some(slot) = local
                    .virqs
                    .get_mut(owner as usize)
                    .and_then(|t| t.get_mut(virq as usize))
                {
                    *slot = 0;
                }
            }
            PortState::Interdomain {
                remote: rdom,
                port: rport,
            } => {
                let back = PortState::Unbound {
                    remote: local.domid.get(),
                };
                let peer = if rdom == local.domid {
                    Some(&mut *local)
                } else {
                    remote.filter(|r| r.domid == rdom)
                };
                let Some(peer) = peer else {
                    return Err(Errno::EINVAL);
                };
                if let Some(ri) = peer.slot(rport.get()) {
                    peer.channels[ri].state = back;
                }
            }
        }
        local.free(i, mem);
        Ok(())
    }

    /// `close` of a port whose other end, if any, is in this domain.
    pub fn close_local<M: EventMemory + ?Sized>(
        &mut self,
        port: u32,
        mem: &M,
    ) -> Result<(), Errno> {
        Self::close(Peers::same(self), port, mem)
    }

    /// `send`: raises the other end of an interdomain port or the vCPU of
    /// an IPI port; an unbound port drops the event; `-EINVAL` for any
    /// other port.
    #[inline]
    pub fn send<M: EventMemory + ?Sized>(&mut self, port: u32, mem: &M) -> Result<Sent, Errno> {
        let i = self.slot(port).ok_or(Errno::EINVAL)?;
        let c = self.channels[i];
        match c.state {
            PortState::Interdomain {
                remote,
                port: rport,
            } if remote == self.domid => {
                let Some(ri) = self.slot(rport.get()) else {
                    return Ok(Sent::Dropped);
                };
                let vcpu = self.channels[ri].notify;
                Ok(Sent::Raised(self.raise(ri, vcpu, mem)))
            }
            PortState::Interdomain {
                remote,
                port: rport,
            } => Ok(Sent::Foreign {
                dom: remote,
                port: rport,
            }),
            PortState::Ipi => Ok(Sent::Raised(self.raise(i, c.notify, mem))),
            PortState::Unbound { .. } => Ok(Sent::Dropped),
            PortState::Free | PortState::Reserved | PortState::Virq { .. } => Err(Errno::EINVAL),
        }
    }

    /// `status`: `-EINVAL` for an invalid port, then `access`; a free or
    /// reserved port is closed.
    pub fn status(&self, port: u32, access: Access) -> Result<PortStatus, Errno> {
        let i = self.slot(port).ok_or(Errno::EINVAL)?;
        if access == Access::Denied {
            return Err(Errno::EPERM);
        }
        let c = &self.channels[i];
        Ok(PortStatus {
            state: c.state,
            vcpu: c.notify,
        })
    }

    /// `bind_vcpu`: `-ENOENT` for a vCPU the domain does not have (checked
    /// first), `-EINVAL` for an invalid port or one that cannot move:
    /// only unbound, interdomain and global-VIRQ ports can.
    pub fn bind_vcpu(&mut self, port: u32, vcpu: u32) -> Result<(), Errno> {
        if !self.vcpu_ok(vcpu) {
            return Err(Errno::ENOENT);
        }
        let i = self.slot(port).ok_or(Errno::EINVAL)?;
        let c = &mut self.channels[i];
        match c.state {
            PortState::Virq { virq } if virq_is_global(virq) => c.notify = vcpu,
            PortState::Unbound { .. } | PortState::Interdomain { .. } => c.notify = vcpu,
            _ => return Err(Errno::EINVAL),
        }
        Ok(())
    }

    /// `unmask`: `-EINVAL` for an invalid port; a bound port is unmasked
    /// and, if pending, delivered to its vCPU now.
    #[inline]
    pub fn unmask<M: EventMemory + ?Sized>(&mut self, port: u32, mem: &M) -> Result<Raised, Errno> {
        let i = self.slot(port).ok_or(Errno::EINVAL)?;
        let c = &mut self.channels[i];
        if !c.state.is_bound() {
            return Ok(Raised::NONE);
        }
        let p = port_of(i).get();
        Ok(match &mut self.fifo {
            Some(f) => f.unmask(c, p, mem),
            None => two_level::unmask(p, c.notify, mem),
        })
    }

    /// `reset` / `reset_cont`: closes every port, then, if the domain
    /// used FIFO, returns it to 2-level. `-EBUSY` for a reset while one is
    /// in progress, or a `reset_cont` with none; `-EAGAIN` if a port
    /// stayed open. `preempt` is asked every 64 ports.
    pub fn reset<M: EventMemory + ?Sized>(
        &mut self,
        resuming: bool,
        mem: &M,
        mut preempt: impl FnMut() -> bool,
    ) -> Result<ResetProgress, Errno> {
        let start = if resuming {
            self.reset_next
        } else {
            u32::from(self.reset_next == 0)
        };
        if start == 0 {
            return Err(Errno::EBUSY);
        }
        self.reset_next = self.reset_next.max(start);
        let mut port = start;
        while port < self.valid_ports() && self.active > 0 {
            if let Some(dom) = self.close_needs(port) {
                self.reset_next = port;
                return Ok(ResetProgress::ForeignPeer {
                    port: EvtchnPort::new(port),
                    dom,
                });
            }
            // A port that is not open answers -EINVAL: skipped, as Xen.
            let _ = self.close_local(port, mem);
            // Xen resumes at the port it stopped after (closing it again
            // is a no-op); resuming after it instead means every call
            // progresses, however often the glue is asked to preempt.
            if port.is_multiple_of(64) && preempt() {
                self.reset_next = port + 1;
                return Ok(ResetProgress::Preempted);
            }
            port += 1;
        }
        self.reset_next = 0;
        if self.active > 0 {
            return Err(Errno::EAGAIN);
        }
        let fifo_released = self.fifo.take().is_some();
        Ok(ResetProgress::Done { fifo_released })
    }
}

/// The port number of a table index (the table never exceeds 2^17).
#[inline]
fn port_of(i: usize) -> EvtchnPort {
    EvtchnPort::new(u32::try_from(i).unwrap_or(u32::MAX))
}
