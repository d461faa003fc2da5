//! The shared-ring convention of `io/ring.h`, as pure index arithmetic.
//!
//! A shared ring is a page that starts with a 64-byte header ([`SringHeader`])
//! followed by a power-of-two array of slots, each a union of one request
//! and one response. The frontend produces requests and consumes responses;
//! the backend the reverse. All four indices are free-running `u32`s: they
//! are never reduced modulo the ring size, only masked when a slot is
//! addressed, and all differences are taken with wrapping subtraction, so
//! the protocol survives the indices wrapping past `u32::MAX`.
//!
//! Nothing here touches shared memory. [`FrontRing`] and [`BackRing`] hold
//! each side's private indices; the shared header is reached through the
//! [`SharedIndices`] trait, which a driver implements with volatile or
//! atomic accesses to the live page (and a test with a plain struct).
//! The "final check" functions do Xen's lost-wakeup dance: set the event
//! index, issue a full barrier (through the trait), and look again.
//!
//! A peer may write any value into the shared indices. The helpers here
//! never index with a peer's value and report an overrun
//! ([`RingError::Overflow`]) rather than trusting it.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::xen::assert_layout;

/// `RING_IDX`: a free-running ring index.
pub type RingIdx = u32;

/// The shared ring's header (the fields of `struct X_sring` before `ring`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SringHeader {
    /// Requests produced by the frontend.
    pub req_prod: u32,
    /// The backend wants an event when `req_prod` passes this.
    pub req_event: u32,
    /// Responses produced by the backend.
    pub rsp_prod: u32,
    /// The frontend wants an event when `rsp_prod` passes this.
    pub rsp_event: u32,
    /// Protocol-private bytes (the C union `pvt`, e.g. netif's
    /// `smartpoll_active`).
    pub pvt: [u8; 4],
    /// Reserved (C `__pad`), zeroed at initialisation.
    pub _pad: [u8; 44],
}
assert_layout!(SringHeader, 64; req_prod = 0, req_event = 4, rsp_prod = 8, rsp_event = 12,
    pvt = 16, _pad = 20);

/// Bytes before the first slot of a shared ring.
pub const SRING_HEADER_SIZE: usize = core::mem::size_of::<SringHeader>();

impl SringHeader {
    /// `SHARED_RING_INIT`: producers at 0, events requested at 1.
    pub const fn init() -> Self {
        Self {
            req_prod: 0,
            req_event: 1,
            rsp_prod: 0,
            rsp_event: 1,
            pvt: [0; 4],
            _pad: [0; 44],
        }
    }
}

/// `__CONST_RING_SIZE`: the slots of `slot_size` bytes that fit after the
/// header in `area` bytes, rounded down to a power of two (0 if none fit).
pub const fn ring_size(area: usize, slot_size: usize) -> u32 {
    if slot_size == 0 || area <= SRING_HEADER_SIZE {
        return 0;
    }
    let n = (area - SRING_HEADER_SIZE) / slot_size;
    if n == 0 {
        return 0;
    }
    let log2 = usize::BITS - 1 - n.leading_zeros();
    if log2 >= 31 {
        1 << 31
    } else {
        1 << log2
    }
}

/// Whether a side that moved its producer from `old` to `new` must notify
/// the peer, which asked to be woken at `event` (`RING_PUSH_*_AND_CHECK_NOTIFY`):
/// true iff `event` is in `(old, new]`, modulo 2^32.
pub const fn need_notify(old: RingIdx, new: RingIdx, event: RingIdx) -> bool {
    new.wrapping_sub(event) < new.wrapping_sub(old)
}

/// A peer's index that cannot be right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// The peer claims to have produced more than the ring can hold, or
    /// more responses than there were requests.
    Overflow,
}

/// Access to the live shared header, implemented by whoever has the page
/// mapped. Each `read_*` must be a single load from shared memory
/// (volatile or atomic), each `write_*` a single store.
pub trait SharedIndices {
    /// Loads `req_prod`.
    fn read_req_prod(&self) -> RingIdx;
    /// Loads `rsp_prod`.
    fn read_rsp_prod(&self) -> RingIdx;
    /// Stores `req_prod` (frontend), after a write barrier.
    fn write_req_prod(&mut self, v: RingIdx);
    /// Stores `rsp_prod` (backend), after a write barrier.
    fn write_rsp_prod(&mut self, v: RingIdx);
    /// Loads `req_event`.
    fn read_req_event(&self) -> RingIdx;
    /// Loads `rsp_event`.
    fn read_rsp_event(&self) -> RingIdx;
    /// Stores `req_event` (backend).
    fn write_req_event(&mut self, v: RingIdx);
    /// Stores `rsp_event` (frontend).
    fn write_rsp_event(&mut self, v: RingIdx);
    /// A full memory barrier (`xen_mb`).
    fn full_barrier(&self);
}

/// The frontend's private state (`X_front_ring` without the pointer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrontRing {
    /// Requests written (not necessarily published).
    pub req_prod_pvt: RingIdx,
    /// Responses consumed.
    pub rsp_cons: RingIdx,
    /// Slots (a power of two).
    size: u32,
}

impl FrontRing {
    /// `FRONT_RING_ATTACH` at index `start` over `size` slots; `None` unless
    /// `size` is a non-zero power of two.
    pub const fn new(size: u32, start: RingIdx) -> Option<Self> {
        if !size.is_power_of_two() {
            return None;
        }
        Some(Self {
            req_prod_pvt: start,
            rsp_cons: start,
            size,
        })
    }

    /// Slots in the ring.
    pub const fn size(&self) -> u32 {
        self.size
    }

    /// The slot an index addresses.
    pub const fn slot(&self, idx: RingIdx) -> usize {
        (idx & (self.size - 1)) as usize
    }

    /// `RING_FREE_REQUESTS`: slots free for new requests.
    pub const fn free_requests(&self) -> u32 {
        self.size
            .wrapping_sub(self.req_prod_pvt.wrapping_sub(self.rsp_cons))
    }

    /// `RING_FULL`.
    pub const fn is_full(&self) -> bool {
        self.free_requests() == 0
    }

    /// Takes the next request slot, or `None` if the ring is full. The
    /// caller writes the request into the returned slot, then publishes.
    pub fn next_request(&mut self) -> Option<usize> {
        if self.is_full() {
            return None;
        }
        let slot = self.slot(self.req_prod_pvt);
        self.req_prod_pvt = self.req_prod_pvt.wrapping_add(1);
        Some(slot)
    }

    /// Responses published but not consumed, given the peer's `rsp_prod`;
    /// an error if that exceeds the requests outstanding
    /// (`RING_RESPONSE_PROD_OVERFLOW`).
    pub const fn unconsumed_responses(&self, rsp_prod: RingIdx) -> Result<u32, RingError> {
        let n = rsp_prod.wrapping_sub(self.rsp_cons);
        if n > self.req_prod_pvt.wrapping_sub(self.rsp_cons) {
            Err(RingError::Overflow)
        } else {
            Ok(n)
        }
    }

    /// Consumes one response, returning its slot, if `rsp_prod` shows one.
    pub fn next_response(&mut self, rsp_prod: RingIdx) -> Result<Option<usize>, RingError> {
        if self.unconsumed_responses(rsp_prod)? == 0 {
            return Ok(None);
        }
        let slot = self.slot(self.rsp_cons);
        self.rsp_cons = self.rsp_cons.wrapping_add(1);
        Ok(Some(slot))
    }

    /// `RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`: publishes `req_prod_pvt` and
    /// says whether the backend must be notified.
    pub fn push_requests<S: SharedIndices>(&self, s: &mut S) -> bool {
        let old = s.read_req_prod();
        let new = self.req_prod_pvt;
        s.write_req_prod(new);
        s.full_barrier();
        need_notify(old, new, s.read_req_event())
    }

    /// `RING_FINAL_CHECK_FOR_RESPONSES`: whether responses are waiting;
    /// if none, asks for an event on the next one and checks again, so a
    /// response published meanwhile is not missed.
    pub fn final_check_for_responses<S: SharedIndices>(
        &self,
        s: &mut S,
    ) -> Result<bool, RingError> {
        if self.unconsumed_responses(s.read_rsp_prod())? > 0 {
            return Ok(true);
        }
        s.write_rsp_event(self.rsp_cons.wrapping_add(1));
        s.full_barrier();
        Ok(self.unconsumed_responses(s.read_rsp_prod())? > 0)
    }
}

/// The backend's private state (`X_back_ring` without the pointer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackRing {
    /// Responses written (not necessarily published).
    pub rsp_prod_pvt: RingIdx,
    /// Requests consumed.
    pub req_cons: RingIdx,
    /// Slots (a power of two).
    size: u32,
}

impl BackRing {
    /// `BACK_RING_ATTACH` at index `start` over `size` slots; `None` unless
    /// `size` is a non-zero power of two.
    pub const fn new(size: u32, start: RingIdx) -> Option<Self> {
        if !size.is_power_of_two() {
            return None;
        }
        Some(Self {
            rsp_prod_pvt: start,
            req_cons: start,
            size,
        })
    }

    /// Slots in the ring.
    pub const fn size(&self) -> u32 {
        self.size
    }

    /// The slot an index addresses.
    pub const fn slot(&self, idx: RingIdx) -> usize {
        (idx & (self.size - 1)) as usize
    }

    /// `RING_HAS_UNCONSUMED_REQUESTS` given the frontend's `req_prod`: the
    /// requests published and not consumed, capped by the slots not
    /// holding an unpublished response (so a frontend claiming more cannot
    /// make the backend overwrite its own responses).
    pub const fn unconsumed_requests(&self, req_prod: RingIdx) -> u32 {
        let req = req_prod.wrapping_sub(self.req_cons);
        let room = self
            .size
            .wrapping_sub(self.req_cons.wrapping_sub(self.rsp_prod_pvt));
        if req < room {
            req
        } else {
            room
        }
    }

    /// `RING_REQUEST_PROD_OVERFLOW`: whether the frontend's `req_prod` is
    /// more than a ring ahead of the responses (a protocol violation).
    pub const fn request_prod_overflow(&self, req_prod: RingIdx) -> bool {
        req_prod.wrapping_sub(self.rsp_prod_pvt) > self.size
    }

    /// Consumes one request, returning its slot, if `req_prod` shows one.
    pub fn next_request(&mut self, req_prod: RingIdx) -> Result<Option<usize>, RingError> {
        if self.request_prod_overflow(req_prod) {
            return Err(RingError::Overflow);
        }
        if self.unconsumed_requests(req_prod) == 0 {
            return Ok(None);
        }
        let slot = self.slot(self.req_cons);
        self.req_cons = self.req_cons.wrapping_add(1);
        Ok(Some(slot))
    }

    /// Takes the slot for the next response (always the slot of a consumed
    /// request), or `None` if no consumed request awaits a response.
    pub fn next_response(&mut self) -> Option<usize> {
        if self.req_cons == self.rsp_prod_pvt {
            return None;
        }
        let slot = self.slot(self.rsp_prod_pvt);
        self.rsp_prod_pvt = self.rsp_prod_pvt.wrapping_add(1);
        Some(slot)
    }

    /// `RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`: publishes `rsp_prod_pvt` and
    /// says whether the frontend must be notified.
    pub fn push_responses<S: SharedIndices>(&self, s: &mut S) -> bool {
        let old = s.read_rsp_prod();
        let new = self.rsp_prod_pvt;
        s.write_rsp_prod(new);
        s.full_barrier();
        need_notify(old, new, s.read_rsp_event())
    }

    /// `RING_FINAL_CHECK_FOR_REQUESTS`: whether requests are waiting; if
    /// none, asks for an event on the next one and checks again.
    pub fn final_check_for_requests<S: SharedIndices>(&self, s: &mut S) -> Result<bool, RingError> {
        let prod = s.read_req_prod();
        if self.request_prod_overflow(prod) {
            return Err(RingError::Overflow);
        }
        if self.unconsumed_requests(prod) > 0 {
            return Ok(true);
        }
        s.write_req_event(self.req_cons.wrapping_add(1));
        s.full_barrier();
        let prod = s.read_req_prod();
        if self.request_prod_overflow(prod) {
            return Err(RingError::Overflow);
        }
        Ok(self.unconsumed_requests(prod) > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header in ordinary memory; `mb` counts barriers.
    struct Plain {
        h: SringHeader,
        mb: core::cell::Cell<u32>,
    }

    impl SharedIndices for Plain {
        fn read_req_prod(&self) -> RingIdx {
            self.h.req_prod
        }
        fn read_rsp_prod(&self) -> RingIdx {
            self.h.rsp_prod
        }
        fn write_req_prod(&mut self, v: RingIdx) {
            self.h.req_prod = v;
        }
        fn write_rsp_prod(&mut self, v: RingIdx) {
            self.h.rsp_prod = v;
        }
        fn read_req_event(&self) -> RingIdx {
            self.h.req_event
        }
        fn read_rsp_event(&self) -> RingIdx {
            self.h.rsp_event
        }
        fn write_req_event(&mut self, v: RingIdx) {
            self.h.req_event = v;
        }
        fn write_rsp_event(&mut self, v: RingIdx) {
            self.h.rsp_event = v;
        }
        fn full_barrier(&self) {
            self.mb.set(self.mb.get() + 1);
        }
    }

    fn shared_at(start: RingIdx) -> Plain {
        let mut p = Plain {
            h: SringHeader::init(),
            mb: core::cell::Cell::new(0),
        };
        p.h.req_prod = start;
        p.h.rsp_prod = start;
        p.h.req_event = start.wrapping_add(1);
        p.h.rsp_event = start.wrapping_add(1);
        p
    }

    #[test]
    fn sizes_round_down_to_powers_of_two() {
        assert_eq!(ring_size(4096, 112), 32); // blkif
        assert_eq!(ring_size(4096, 12), 256); // netif tx
        assert_eq!(ring_size(4096, 8), 256); // netif rx
        assert_eq!(ring_size(4096, 4096), 0);
        assert_eq!(ring_size(64, 1), 0);
        assert_eq!(ring_size(65, 1), 1);
        assert_eq!(ring_size(100, 0), 0);
        assert!(FrontRing::new(24, 0).is_none() && BackRing::new(0, 0).is_none());
    }

    #[test]
    fn notify_window_wraps() {
        assert!(need_notify(0, 1, 1));
        assert!(!need_notify(1, 2, 1));
        assert!(need_notify(u32::MAX - 1, 2, 0)); // event inside a wrapped window
        assert!(need_notify(u32::MAX, 0, 0));
        assert!(!need_notify(u32::MAX, 0, 1));
        assert!(!need_notify(5, 5, 5)); // nothing pushed
    }

    /// Runs a full exchange of `n` requests starting at index `start`,
    /// checking every step, on a ring of 4 slots.
    fn exchange(start: RingIdx, n: u32) {
        let mut s = shared_at(start);
        let mut f = FrontRing::new(4, start).unwrap();
        let mut b = BackRing::new(4, start).unwrap();
        let mut sent = 0;
        let mut done = 0;
        while done < n {
            while sent < n && !f.is_full() {
                let slot = f.next_request().unwrap();
                assert_eq!(slot, (start.wrapping_add(sent) & 3) as usize);
                sent += 1;
            }
            assert!(f.free_requests() <= 4);
            f.push_requests(&mut s);
            assert!(b.final_check_for_requests(&mut s).unwrap());
            while let Some(slot) = b.next_request(s.read_req_prod()).unwrap() {
                let rsp = b.next_response().unwrap();
                assert_eq!(slot, rsp);
            }
            assert!(!b.final_check_for_requests(&mut s).unwrap());
            b.push_responses(&mut s);
            while f.next_response(s.read_rsp_prod()).unwrap().is_some() {
                done += 1;
            }
            assert!(!f.final_check_for_responses(&mut s).unwrap());
        }
        assert_eq!(f.req_prod_pvt, start.wrapping_add(n));
        assert_eq!(b.rsp_prod_pvt, start.wrapping_add(n));
    }

    #[test]
    fn exchange_from_zero() {
        exchange(0, 11);
    }

    #[test]
    fn exchange_across_the_u32_wrap() {
        exchange(u32::MAX - 5, 13);
        exchange(u32::MAX, 4);
    }

    #[test]
    fn full_ring_at_wrap() {
        let mut f = FrontRing::new(4, u32::MAX - 1).unwrap();
        for _ in 0..4 {
            assert!(f.next_request().is_some());
        }
        assert!(f.is_full() && f.next_request().is_none());
        assert_eq!(f.req_prod_pvt, 2);
        assert_eq!(f.unconsumed_responses(1), Ok(3));
        assert_eq!(f.unconsumed_responses(3), Err(RingError::Overflow));
    }

    #[test]
    fn hostile_producers_are_caught() {
        let b = BackRing::new(4, u32::MAX - 1).unwrap();
        // Claims 5 requests on a 4-slot ring.
        assert!(b.request_prod_overflow(3));
        assert!(!b.request_prod_overflow(2));
        let mut b2 = b;
        assert_eq!(b2.next_request(3), Err(RingError::Overflow));
        // Claims "negative" progress: huge wrapping difference.
        assert_eq!(b2.next_request(u32::MAX - 3), Err(RingError::Overflow));
        // Capped by responses not yet produced.
        let mut b3 = BackRing::new(4, 0).unwrap();
        for _ in 0..4 {
            b3.next_request(4).unwrap().unwrap();
        }
        assert_eq!(b3.unconsumed_requests(4), 0);
        assert_eq!(b3.next_request(4), Ok(None));
        let f = FrontRing::new(4, 0).unwrap();
        assert_eq!(f.unconsumed_responses(1), Err(RingError::Overflow));
        assert_eq!(f.unconsumed_responses(u32::MAX), Err(RingError::Overflow));
    }

    #[test]
    fn final_check_sets_event_and_barriers() {
        let mut s = shared_at(u32::MAX);
        let f = FrontRing::new(8, u32::MAX).unwrap();
        assert!(!f.final_check_for_responses(&mut s).unwrap());
        assert_eq!(s.h.rsp_event, 0);
        assert_eq!(s.mb.get(), 1);
        let b = BackRing::new(8, u32::MAX).unwrap();
        assert!(!b.final_check_for_requests(&mut s).unwrap());
        assert_eq!(s.h.req_event, 0);
        // A request published between the two looks is seen by the second.
        s.h.req_prod = 0;
        assert!(b.final_check_for_requests(&mut s).unwrap());
    }
}
