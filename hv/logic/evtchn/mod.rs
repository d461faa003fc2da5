//! Event channels: one domain's port table, the operations of
//! `event_channel_op` on it, and delivery through the two ABIs Xen 4.17
//! offers (2-level bitmaps in `shared_info`, FIFO queues in guest frames).
//!
//! Pure logic: the guest's words are reached through [`EventMemory`], which
//! the kernel implements over the frames it holds (shared_info, vcpu_info,
//! FIFO control blocks and event-array pages) and the host tests over
//! plain atomics ([`VecMemory`]). Every word the guest can write is read
//! and changed only with atomic operations, as Xen does, because the guest
//! changes them on other CPUs at any time.
//!
//! What the kernel glue does around it, in Xen's order: copy the argument
//! in, resolve `DOMID_SELF` and look the domain up (`-ESRCH`), take the
//! event lock of one domain (or of two in [`DomId`] order, see
//! [`lock_order`] and [`Peers`]), call the operation here, then kick the
//! vCPU named in the returned [`Raised`] and wake pollers of the port it
//! names. Privilege is the glue's: it passes [`Access`] where Xen's XSM
//! check sits in the middle of an operation. In the kernel that glue is
//! `event` (each domain's table and words behind its event lock, the FIFO
//! frames), `hypercall::event_channel` (decoding, the domain named, the
//! copies) and `traps::upcall` (delivery on the way back to the guest,
//! with [`upcall_due`]).
//!
//! Invariants (checked by [`EventTable::audit`], which the tests and the
//! fuzz target run after every operation): port 0 is reserved; the count
//! of active channels equals the ports neither free nor reserved; a VIRQ
//! is bound at most once per vCPU and the per-vCPU VIRQ table and the
//! ports agree; a loopback interdomain channel's two ends name each other;
//! the port table grows in buckets of [`PORTS_PER_BUCKET`] and never past
//! the ABI's limit.
//!
//! Deliberate differences from Xen 4.17, each invisible to a guest that
//! follows the ABI: no Xen-attached ("consumer") channels and no physical
//! IRQs (`bind_pirq` is refused as Xen refuses a domain without the IRQ in
//! its capabilities); the FIFO "pending while its array page was missing"
//! flag is dropped when the port is closed, so a closed port is never
//! raised when a page is added later (Xen would set PENDING on the closed
//! port's word).

mod fifo;
pub mod guest;
mod memory;
mod table;
mod two_level;

pub use memory::{EventMemory, VecMemory};
pub use table::{
    lock_order, Bound, EventTable, ExpandArray, InitControl, Peers, PortState, PortStatus,
    ResetProgress, Sent,
};

use guest_abi::event_channel::{EVTCHN_2L_NR_CHANNELS, EVTCHN_FIFO_NR_CHANNELS};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fifo;
#[cfg(test)]
mod tests_prop;

/// Ports a 64-bit guest can use with the 2-level ABI (64 words of 64
/// bits; Xen's `BITS_PER_EVTCHN_WORD(d)` squared).
pub const TWO_LEVEL_PORTS: u32 = EVTCHN_2L_NR_CHANNELS;
/// Ports the FIFO ABI can address (a 17-bit LINK field).
pub const FIFO_PORTS: u32 = EVTCHN_FIFO_NR_CHANNELS;
/// Bits in one word of the 2-level bitmaps and of `evtchn_pending_sel`.
pub const TWO_LEVEL_WORD_BITS: u32 = 64;

/// Ports per bucket of the port table. Xen allocates `struct evtchn` a
/// page at a time (`EVTCHNS_PER_BUCKET = PAGE_SIZE /
/// next_power_of_2(sizeof(struct evtchn))`, the struct being
/// `aligned(64)` and under 64 bytes in 4.17), and a port is valid (an
/// operation on it gets past `-EINVAL`) once its bucket exists: a fresh
/// domain's ports 0..63 are valid (closed), port 64 is not until some
/// allocation reaches it.
pub const PORTS_PER_BUCKET: u32 = 64;

/// `max_evtchn_port` with no limit: Xen's dom0 is created with
/// `max_evtchn_port = -1`, which `evtchn_init` clamps to `INT_MAX`, so
/// only the ABI's own limit applies.
pub const MAX_PORT_UNLIMITED: u32 = 0x7fff_ffff;
/// `max_evtchn_port` of a domain that xl/libxl builds without a
/// `max_event_channels` setting (libxl's default `event_channels = 1023`).
pub const XL_DEFAULT_MAX_PORT: u32 = 1023;

/// Event words in one FIFO event-array page (4 KiB of `u32`).
pub const FIFO_WORDS_PER_PAGE: u32 = 1024;
/// Event-array pages a domain may add (`EVTCHN_FIFO_NR_CHANNELS /
/// EVTCHN_FIFO_EVENT_WORDS_PER_PAGE`).
pub const FIFO_MAX_PAGES: u32 = FIFO_PORTS / FIFO_WORDS_PER_PAGE;
/// Size of `evtchn_fifo_control_block`; `init_control` refuses an offset
/// that would make it cross its page.
pub const FIFO_CONTROL_BLOCK_SIZE: u32 = 72;
/// `init_control`'s answer in `link_bits`.
pub const FIFO_LINK_BITS: u8 = 17;

/// Whether a vCPU's `evtchn_upcall_pending` and `evtchn_upcall_mask`
/// bytes, read together as a little-endian `u16` (pending the low byte),
/// ask for an event upcall: Xen's exit test, pending non-zero (any value,
/// not only 1) and mask zero.
#[inline(always)]
pub const fn upcall_due(word: u16) -> bool {
    word.wrapping_sub(1) < 0xff
}

/// Whether a VIRQ is global (bound on vCPU 0, retargetable with
/// `bind_vcpu`) rather than per-vCPU. On x86 only TIMER, DEBUG, XENOPROF
/// and XENPMU are per-vCPU; the architectural VIRQs are global
/// (`arch_virq_is_global` is true on x86).
pub fn virq_is_global(virq: u32) -> bool {
    use guest_abi::xen::{VIRQ_DEBUG, VIRQ_TIMER, VIRQ_XENOPROF, VIRQ_XENPMU};
    !matches!(virq, VIRQ_TIMER | VIRQ_DEBUG | VIRQ_XENOPROF | VIRQ_XENPMU)
}

/// Whether the caller may act on the table an operation names (Xen's
/// XSM_TARGET check in `alloc_unbound` and `status`: the domain itself,
/// or one privileged over it). The glue decides; the table places the
/// refusal where Xen does, after the checks that come before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Allowed,
    Denied,
}

/// What raising an event asks of the glue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Raised {
    /// The port became pending now (it was not before): vCPUs polling it
    /// (`SCHEDOP_poll`) are to be woken (Xen's `evtchn_check_pollers`).
    pub newly_pending: Option<u32>,
    /// This vCPU's `evtchn_upcall_pending` went from clear to set: kick it
    /// (Xen's `vcpu_mark_events_pending` then `vcpu_kick`).
    pub upcall: Option<u32>,
}

impl Raised {
    /// Nothing to do.
    pub const NONE: Self = Self {
        newly_pending: None,
        upcall: None,
    };
}

/// Which ABI a domain's events use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbiKind {
    TwoLevel,
    Fifo,
}
