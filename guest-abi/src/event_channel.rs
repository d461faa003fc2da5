//! `event_channel_op` sub-commands, their argument structs, and the FIFO
//! event-channel ABI (`event_channel.h`).
//!
//! Every argument is IN/OUT memory the guest hands to the hypervisor: the
//! hypervisor copies it in once, validates the copy, and copies the OUT
//! fields back. Ports are `u32` here (`evtchn_port_t`); wrap them in
//! [`crate::types::EvtchnPort`] once validated against the domain's table.
//!
//! `evtchn_status.u` is a C union; [`EvtchnStatus`] stores it as two words
//! and offers one accessor per view, because zerocopy cannot derive
//! `IntoBytes` for unions.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::xen::assert_layout;

/// Connect to a port another domain left unbound for us. Argument: [`EvtchnBindInterdomain`].
pub const EVTCHNOP_BIND_INTERDOMAIN: u32 = 0;
/// Bind a virtual IRQ to a new port. Argument: [`EvtchnBindVirq`].
pub const EVTCHNOP_BIND_VIRQ: u32 = 1;
/// Bind a physical IRQ to a new port (privileged). Argument: [`EvtchnBindPirq`].
pub const EVTCHNOP_BIND_PIRQ: u32 = 2;
/// Close a port. Argument: [`EvtchnClose`].
pub const EVTCHNOP_CLOSE: u32 = 3;
/// Signal the remote end of a port. Argument: [`EvtchnSend`].
pub const EVTCHNOP_SEND: u32 = 4;
/// Query a port's state. Argument: [`EvtchnStatus`].
pub const EVTCHNOP_STATUS: u32 = 5;
/// Allocate a port that a named remote domain may bind to. Argument: [`EvtchnAllocUnbound`].
pub const EVTCHNOP_ALLOC_UNBOUND: u32 = 6;
/// Bind a new port for inter-vCPU notification. Argument: [`EvtchnBindIpi`].
pub const EVTCHNOP_BIND_IPI: u32 = 7;
/// Change the vCPU a port notifies. Argument: [`EvtchnBindVcpu`].
pub const EVTCHNOP_BIND_VCPU: u32 = 8;
/// Unmask a port, re-raising it if pending. Argument: [`EvtchnUnmask`].
pub const EVTCHNOP_UNMASK: u32 = 9;
/// Close every port of a domain. Argument: [`EvtchnReset`].
pub const EVTCHNOP_RESET: u32 = 10;
/// Switch to the FIFO ABI for one vCPU. Argument: [`EvtchnInitControl`].
pub const EVTCHNOP_INIT_CONTROL: u32 = 11;
/// Add a page of FIFO event words. Argument: [`EvtchnExpandArray`].
pub const EVTCHNOP_EXPAND_ARRAY: u32 = 12;
/// Set a port's FIFO priority. Argument: [`EvtchnSetPriority`].
pub const EVTCHNOP_SET_PRIORITY: u32 = 13;
/// Continue an `EVTCHNOP_reset` that was preempted. Argument: as
/// `EVTCHNOP_reset`.
pub const EVTCHNOP_RESET_CONT: u32 = 14;

/// `evtchn_bind_pirq.flags`: the IRQ may be shared with other domains.
pub const BIND_PIRQ_WILL_SHARE: u32 = 1;

/// `evtchn_status.status`: the port is free.
pub const EVTCHNSTAT_CLOSED: u32 = 0;
/// `evtchn_status.status`: allocated, waiting for a remote domain.
pub const EVTCHNSTAT_UNBOUND: u32 = 1;
/// `evtchn_status.status`: connected to a remote domain's port.
pub const EVTCHNSTAT_INTERDOMAIN: u32 = 2;
/// `evtchn_status.status`: bound to a physical IRQ.
pub const EVTCHNSTAT_PIRQ: u32 = 3;
/// `evtchn_status.status`: bound to a virtual IRQ.
pub const EVTCHNSTAT_VIRQ: u32 = 4;
/// `evtchn_status.status`: bound for inter-vCPU notification.
pub const EVTCHNSTAT_IPI: u32 = 5;

/// Ports of the 2-level ABI on x86_64: one bit per port in a 64x64 bitmap.
pub const EVTCHN_2L_NR_CHANNELS: u32 = 64 * 64;

/// `evtchn_alloc_unbound`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnAllocUnbound {
    /// IN: the domain to allocate in (`DOMID_SELF` or, privileged, another).
    pub dom: u16,
    /// IN: the only domain allowed to bind to the port.
    pub remote_dom: u16,
    /// OUT: the new port.
    pub port: u32,
}
assert_layout!(EvtchnAllocUnbound, 8; dom = 0, remote_dom = 2, port = 4);

/// `evtchn_bind_interdomain`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnBindInterdomain {
    /// IN: the domain owning the unbound port.
    pub remote_dom: u16,
    /// Padding.
    pub _pad: u16,
    /// IN: that domain's unbound port.
    pub remote_port: u32,
    /// OUT: the new local port.
    pub local_port: u32,
}
assert_layout!(EvtchnBindInterdomain, 12; remote_dom = 0, remote_port = 4, local_port = 8);

/// `evtchn_bind_virq`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnBindVirq {
    /// IN: `VIRQ_*`.
    pub virq: u32,
    /// IN: the vCPU to notify (per-vCPU VIRQs); global VIRQs need vCPU 0.
    pub vcpu: u32,
    /// OUT: the new port.
    pub port: u32,
}
assert_layout!(EvtchnBindVirq, 12; virq = 0, vcpu = 4, port = 8);

/// `evtchn_bind_pirq`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnBindPirq {
    /// IN: the physical IRQ.
    pub pirq: u32,
    /// IN: `BIND_PIRQ_*`.
    pub flags: u32,
    /// OUT: the new port.
    pub port: u32,
}
assert_layout!(EvtchnBindPirq, 12; pirq = 0, flags = 4, port = 8);

/// `evtchn_bind_ipi`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnBindIpi {
    /// IN: the vCPU to notify.
    pub vcpu: u32,
    /// OUT: the new port.
    pub port: u32,
}
assert_layout!(EvtchnBindIpi, 8; vcpu = 0, port = 4);

/// `evtchn_close`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnClose {
    /// IN: the port.
    pub port: u32,
}
assert_layout!(EvtchnClose, 4; port = 0);

/// `evtchn_send`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnSend {
    /// IN: the local port whose remote end is signalled.
    pub port: u32,
}
assert_layout!(EvtchnSend, 4; port = 0);

/// `evtchn_status`.
///
/// `u` is the C union: `unbound.dom` (low 16 bits of word 0),
/// `interdomain.dom` (low 16 bits of word 0) and `interdomain.port` (word
/// 1), `pirq` or `virq` (word 0).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnStatus {
    /// IN: the domain to query (`DOMID_SELF` or, privileged, another).
    pub dom: u16,
    /// Padding.
    pub _pad: u16,
    /// IN: the port.
    pub port: u32,
    /// OUT: `EVTCHNSTAT_*`.
    pub status: u32,
    /// OUT: the vCPU the port notifies.
    pub vcpu: u32,
    /// OUT: the union, as two words (see the type's documentation).
    pub u: [u32; 2],
}
assert_layout!(EvtchnStatus, 24; dom = 0, port = 4, status = 8, vcpu = 12, u = 16);

impl EvtchnStatus {
    /// `u.unbound.dom` / `u.interdomain.dom`: the remote domain.
    #[expect(
        clippy::cast_possible_truncation,
        reason = "the union member is the low 16 bits"
    )]
    pub const fn remote_dom(&self) -> u16 {
        self.u[0] as u16
    }

    /// `u.interdomain.port`: the remote port.
    pub const fn remote_port(&self) -> u32 {
        self.u[1]
    }

    /// `u.pirq` or `u.virq`.
    pub const fn irq(&self) -> u32 {
        self.u[0]
    }

    /// The `unbound` / `interdomain` form of the union.
    pub const fn set_remote(&mut self, dom: u16, port: u32) {
        self.u = [dom as u32, port];
    }
}

/// `evtchn_bind_vcpu`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnBindVcpu {
    /// IN: the port.
    pub port: u32,
    /// IN: the vCPU to notify from now on.
    pub vcpu: u32,
}
assert_layout!(EvtchnBindVcpu, 8; port = 0, vcpu = 4);

/// `evtchn_unmask`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnUnmask {
    /// IN: the port.
    pub port: u32,
}
assert_layout!(EvtchnUnmask, 4; port = 0);

/// `evtchn_reset`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnReset {
    /// IN: the domain (`DOMID_SELF` or, privileged, another).
    pub dom: u16,
}
assert_layout!(EvtchnReset, 2; dom = 0);

/// `evtchn_init_control`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnInitControl {
    /// IN: the frame holding the vCPU's [`EvtchnFifoControlBlock`].
    pub control_gfn: u64,
    /// IN: the control block's offset in that frame.
    pub offset: u32,
    /// IN: the vCPU.
    pub vcpu: u32,
    /// OUT: valid bits of an event word's LINK field.
    pub link_bits: u8,
    /// Reserved (C `_pad`).
    pub _pad: [u8; 7],
}
assert_layout!(EvtchnInitControl, 24; control_gfn = 0, offset = 8, vcpu = 12, link_bits = 16,
    _pad = 17);

/// `evtchn_expand_array`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnExpandArray {
    /// IN: the next frame of event words.
    pub array_gfn: u64,
}
assert_layout!(EvtchnExpandArray, 8; array_gfn = 0);

/// `evtchn_set_priority`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnSetPriority {
    /// IN: the port.
    pub port: u32,
    /// IN: `EVTCHN_FIFO_PRIORITY_*` range.
    pub priority: u32,
}
assert_layout!(EvtchnSetPriority, 8; port = 0, priority = 4);

/// `evtchn_op`: the argument of the pre-3.0.2 `event_channel_op_compat`
/// hypercall: a command and the largest sub-op argument (24 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnOp {
    /// `EVTCHNOP_*`.
    pub cmd: u32,
    /// The union of the sub-op arguments, as raw bytes.
    pub u: [u32; 6],
}
assert_layout!(EvtchnOp, 28; cmd = 0, u = 4);

// ---------------------------------------------------------------------------
// FIFO ABI

/// Highest FIFO priority.
pub const EVTCHN_FIFO_PRIORITY_MAX: u32 = 0;
/// Priority of a newly bound port.
pub const EVTCHN_FIFO_PRIORITY_DEFAULT: u32 = 7;
/// Lowest FIFO priority.
pub const EVTCHN_FIFO_PRIORITY_MIN: u32 = 15;
/// Number of FIFO queues (one per priority).
pub const EVTCHN_FIFO_MAX_QUEUES: usize = 16;
/// Event word bit: the event is pending.
pub const EVTCHN_FIFO_PENDING: u32 = 31;
/// Event word bit: the event is masked.
pub const EVTCHN_FIFO_MASKED: u32 = 30;
/// Event word bit: the event is on a queue.
pub const EVTCHN_FIFO_LINKED: u32 = 29;
/// Event word bit: the guest is unlinking the event.
pub const EVTCHN_FIFO_BUSY: u32 = 28;
/// Width of an event word's LINK field.
pub const EVTCHN_FIFO_LINK_BITS: u32 = 17;
/// Mask of an event word's LINK field.
pub const EVTCHN_FIFO_LINK_MASK: u32 = (1 << EVTCHN_FIFO_LINK_BITS) - 1;
/// Ports the FIFO ABI can address.
pub const EVTCHN_FIFO_NR_CHANNELS: u32 = 1 << EVTCHN_FIFO_LINK_BITS;

/// `event_word_t` helpers: the flag bits and link of one FIFO event word.
pub mod event_word {
    use super::*;

    /// Whether bit `bit` (`EVTCHN_FIFO_PENDING` and friends) is set.
    pub const fn has(word: u32, bit: u32) -> bool {
        word & (1 << bit) != 0
    }

    /// The port this event is linked to (0 = end of queue).
    pub const fn link(word: u32) -> u32 {
        word & EVTCHN_FIFO_LINK_MASK
    }
}

/// `evtchn_fifo_control_block`: per-vCPU FIFO state (72 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EvtchnFifoControlBlock {
    /// One bit per queue with events ready.
    pub ready: u32,
    /// Reserved (C `_rsvd`).
    pub _rsvd: u32,
    /// The head port of each queue.
    pub head: [u32; EVTCHN_FIFO_MAX_QUEUES],
}
assert_layout!(EvtchnFifoControlBlock, 72; ready = 0, _rsvd = 4, head = 8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_union_views() {
        let mut s = EvtchnStatus::default();
        s.set_remote(3, 17);
        assert_eq!((s.remote_dom(), s.remote_port()), (3, 17));
        assert_eq!(s.as_bytes()[16..24], [3, 0, 0, 0, 17, 0, 0, 0]);
    }

    #[test]
    fn event_word_bits() {
        let w = (1 << EVTCHN_FIFO_PENDING) | (1 << EVTCHN_FIFO_LINKED) | 0x1_2345;
        assert!(event_word::has(w, EVTCHN_FIFO_PENDING));
        assert!(!event_word::has(w, EVTCHN_FIFO_MASKED));
        assert_eq!(event_word::link(w), 0x1_2345);
    }
}
