//! Xen's shared I/O rings (`io/ring.h`), generic over the request and
//! response types, for both ends: [`Front`] (produces requests, consumes
//! responses) and [`Back`] (the other way round).
//!
//! The shared area ([`SharedRing`], one or more pages) starts with
//! `req_prod`, `req_event`, `rsp_prod`, `rsp_event` and 48 bytes of
//! padding; slots of `max(size_of::<Req>(), size_of::<Rsp>())` bytes
//! follow, as many as fit rounded down to a power of two (`__RING_SIZE`).
//! Each end keeps its private indices (`req_prod_pvt`/`rsp_cons`,
//! `rsp_prod_pvt`/`req_cons`), publishes with the notify check of
//! `RING_PUSH_*_AND_CHECK_NOTIFY` and re-arms its event with
//! `RING_FINAL_CHECK_FOR_*`.
//!
//! The index arithmetic is `guest_abi::io::ring`'s (`FrontRing`,
//! `BackRing`); this module adds the shared memory and the messages. The
//! peer is hostile: its index is read once per look and checked (a back
//! end never takes more requests than the ring holds or it has response
//! slots for; a front end never more responses than it has requests
//! outstanding) and a lying index is [`RingError::Overflow`]: the caller
//! stops serving the ring. Every message is copied once into private
//! memory ([`Back::next_request`], [`Front::next_response`]) and only
//! that copy is looked at afterwards.

use guest_abi::io::ring::{BackRing, FrontRing, SharedIndices};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// The bytes a ring's end shares with its peer. Reads and writes of the
/// four indices are single atomic 32-bit accesses; `fence` is a full
/// barrier (`xen_mb`).
pub trait SharedRing {
    /// The shared area's size in bytes.
    fn size(&self) -> usize;
    /// The 32-bit word at byte `offset` (a multiple of 4).
    fn load(&self, offset: usize) -> u32;
    fn store(&self, offset: usize, value: u32);
    /// Copies `out.len()` bytes from `offset` (inside the area).
    fn read(&self, offset: usize, out: &mut [u8]);
    /// Copies `data` to `offset` (inside the area).
    fn write(&self, offset: usize, data: &[u8]);
    fn fence(&self);
}

const REQ_PROD: usize = 0;
const REQ_EVENT: usize = 4;
const RSP_PROD: usize = 8;
const RSP_EVENT: usize = 12;
/// Where the slots start (`offsetof(struct sring, ring)`).
pub const HEADER: usize = guest_abi::io::ring::SRING_HEADER_SIZE;

pub use guest_abi::io::ring::{ring_size, RingError};

/// `SHARED_RING_INIT`: no message, both events at 1, padding zero.
pub fn init(ring: &impl SharedRing) {
    ring.write(0, guest_abi::io::ring::SringHeader::init().as_bytes());
    ring.fence();
}

/// The shared header's indices through a [`SharedRing`], as the index
/// machines of `guest_abi::io::ring` reach them.
struct Indices<'a, R>(&'a R);

impl<R: SharedRing> SharedIndices for Indices<'_, R> {
    fn read_req_prod(&self) -> u32 {
        self.0.load(REQ_PROD)
    }
    fn read_rsp_prod(&self) -> u32 {
        self.0.load(RSP_PROD)
    }
    fn write_req_prod(&mut self, v: u32) {
        self.0.fence();
        self.0.store(REQ_PROD, v);
    }
    fn write_rsp_prod(&mut self, v: u32) {
        self.0.fence();
        self.0.store(RSP_PROD, v);
    }
    fn read_req_event(&self) -> u32 {
        self.0.load(REQ_EVENT)
    }
    fn read_rsp_event(&self) -> u32 {
        self.0.load(RSP_EVENT)
    }
    fn write_req_event(&mut self, v: u32) {
        self.0.store(REQ_EVENT, v);
    }
    fn write_rsp_event(&mut self, v: u32) {
        self.0.store(RSP_EVENT, v);
    }
    fn full_barrier(&self) {
        self.0.fence();
    }
}

/// Bytes of a slot: the larger message.
fn slot_size<Req, Rsp>() -> usize {
    core::mem::size_of::<Req>().max(core::mem::size_of::<Rsp>())
}

/// The front end: requests out, responses in.
pub struct Front<'a, R: SharedRing, Req, Rsp> {
    ring: &'a R,
    idx: FrontRing,
    slot: usize,
    _types: core::marker::PhantomData<(Req, Rsp)>,
}

impl<'a, R, Req, Rsp> Front<'a, R, Req, Rsp>
where
    R: SharedRing,
    Req: IntoBytes + Immutable,
    Rsp: FromBytes + IntoBytes,
{
    /// The front end of `ring`, which it initialises (`SHARED_RING_INIT`,
    /// `FRONT_RING_INIT`). `None` if not one slot fits.
    pub fn new(ring: &'a R) -> Option<Self> {
        let slot = slot_size::<Req, Rsp>();
        let idx = FrontRing::new(ring_size(ring.size(), slot), 0)?;
        init(ring);
        Some(Self {
            ring,
            idx,
            slot,
            _types: core::marker::PhantomData,
        })
    }

    /// A front end taken up again over the same ring with the private
    /// indices [`indices`](Self::indices) gave (the ring is not
    /// initialised again).
    pub fn resume(ring: &'a R, idx: FrontRing) -> Self {
        Self {
            ring,
            idx,
            slot: slot_size::<Req, Rsp>(),
            _types: core::marker::PhantomData,
        }
    }

    /// The private indices, for [`resume`](Self::resume).
    pub fn indices(&self) -> FrontRing {
        self.idx
    }

    /// Slots in the ring.
    pub fn size(&self) -> u32 {
        self.idx.size()
    }

    /// Requests produced and not yet answered.
    pub fn outstanding(&self) -> u32 {
        self.idx.size() - self.idx.free_requests()
    }

    /// Queues `req` in the next slot (private until [`push`](Self::push));
    /// false if the ring is full (`RING_FULL`).
    pub fn queue(&mut self, req: &Req) -> bool {
        let Some(slot) = self.idx.next_request() else {
            return false;
        };
        self.ring.write(HEADER + slot * self.slot, req.as_bytes());
        true
    }

    /// Publishes the queued requests (`RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`):
    /// whether the back end must be notified.
    pub fn push(&mut self) -> bool {
        self.idx.push_requests(&mut Indices(self.ring))
    }

    /// The next response, copied out of the ring, if one is there; a back
    /// end answering more than was asked is [`RingError::Overflow`].
    pub fn next_response(&mut self) -> Result<Option<Rsp>, RingError> {
        let Some(slot) = self.idx.next_response(self.ring.load(RSP_PROD))? else {
            return Ok(None);
        };
        self.ring.fence();
        let mut rsp = Rsp::new_zeroed();
        self.ring
            .read(HEADER + slot * self.slot, rsp.as_mut_bytes());
        Ok(Some(rsp))
    }

    /// `RING_FINAL_CHECK_FOR_RESPONSES`: whether responses are waiting;
    /// if none, asks to be notified of the next one first.
    pub fn final_check(&mut self) -> Result<bool, RingError> {
        self.idx.final_check_for_responses(&mut Indices(self.ring))
    }
}

/// The back end: requests in, responses out.
pub struct Back<'a, R: SharedRing, Req, Rsp> {
    ring: &'a R,
    idx: BackRing,
    slot: usize,
    _types: core::marker::PhantomData<(Req, Rsp)>,
}

impl<'a, R, Req, Rsp> Back<'a, R, Req, Rsp>
where
    R: SharedRing,
    Req: FromBytes + IntoBytes,
    Rsp: IntoBytes + Immutable,
{
    /// The back end of a ring its front end initialised (`BACK_RING_INIT`).
    /// `None` if not one slot fits.
    pub fn new(ring: &'a R) -> Option<Self> {
        let slot = slot_size::<Req, Rsp>();
        let idx = BackRing::new(ring_size(ring.size(), slot), 0)?;
        Some(Self {
            ring,
            idx,
            slot,
            _types: core::marker::PhantomData,
        })
    }

    /// A back end taken up again over the same ring with the private
    /// indices [`indices`](Self::indices) gave (a caller that cannot keep
    /// the borrow of the ring between passes).
    pub fn resume(ring: &'a R, idx: BackRing) -> Self {
        Self {
            ring,
            idx,
            slot: slot_size::<Req, Rsp>(),
            _types: core::marker::PhantomData,
        }
    }

    /// The private indices, for [`resume`](Self::resume).
    pub fn indices(&self) -> BackRing {
        self.idx
    }

    pub fn size(&self) -> u32 {
        self.idx.size()
    }

    /// The next request, copied once into private memory, if one is
    /// there; a front end claiming more than the ring holds is
    /// [`RingError::Overflow`] (`RING_REQUEST_PROD_OVERFLOW`), and no more
    /// is taken than there are response slots for.
    pub fn next_request(&mut self) -> Result<Option<Req>, RingError> {
        let Some(slot) = self.idx.next_request(self.ring.load(REQ_PROD))? else {
            return Ok(None);
        };
        self.ring.fence();
        let mut req = Req::new_zeroed();
        self.ring
            .read(HEADER + slot * self.slot, req.as_mut_bytes());
        Ok(Some(req))
    }

    /// Queues a response in the next response slot (private until
    /// [`push`](Self::push)); false if every consumed request has its
    /// response already.
    pub fn queue(&mut self, rsp: &Rsp) -> bool {
        let Some(slot) = self.idx.next_response() else {
            return false;
        };
        self.ring.write(HEADER + slot * self.slot, rsp.as_bytes());
        true
    }

    /// Publishes the queued responses (`RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`):
    /// whether the front end must be notified.
    pub fn push(&mut self) -> bool {
        self.idx.push_responses(&mut Indices(self.ring))
    }

    /// `RING_FINAL_CHECK_FOR_REQUESTS`: whether requests are waiting; if
    /// none, asks to be notified of the next one first.
    pub fn final_check(&mut self) -> Result<bool, RingError> {
        self.idx.final_check_for_requests(&mut Indices(self.ring))
    }
}

#[cfg(test)]
mod tests;
