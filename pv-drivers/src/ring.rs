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
//! The peer is hostile: its index is read once per look and checked (a
//! back end never takes more requests than the ring holds or it has
//! response slots for; a front end never more responses than it has
//! requests outstanding) and a lying index is [`RingError::Overflow`]:
//! the caller stops serving the ring. Every message is copied once into
//! private memory ([`Back::next_request`], [`Front::next_response`])
//! and only that copy is looked at afterwards.

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
pub const HEADER: usize = 64;

/// What a look at the peer's index found wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingError {
    /// The peer's producer index claims more than it can have produced:
    /// `(its index, our consumer index)`.
    Overflow { prod: u32, cons: u32 },
}

/// Slots of `slot_size` bytes a shared area of `bytes` holds
/// (`__RING_SIZE`): a power of two, 0 if not even one fits.
pub fn ring_size(bytes: usize, slot_size: usize) -> u32 {
    if slot_size == 0 || bytes <= HEADER {
        return 0;
    }
    let n = (bytes - HEADER) / slot_size;
    if n == 0 {
        return 0;
    }
    let p = 1usize << (usize::BITS - 1 - n.leading_zeros());
    u32::try_from(p).unwrap_or(1 << 31)
}

/// `SHARED_RING_INIT`: no message, both events at 1, padding zero.
pub fn init(ring: &impl SharedRing) {
    ring.write(0, &[0; HEADER]);
    ring.store(REQ_EVENT, 1);
    ring.store(RSP_EVENT, 1);
    ring.fence();
}

/// The geometry both ends compute alike.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    size: u32,
    slot: usize,
}

impl Geometry {
    fn new<Req, Rsp>(bytes: usize) -> Self {
        let slot = core::mem::size_of::<Req>().max(core::mem::size_of::<Rsp>());
        Self {
            size: ring_size(bytes, slot),
            slot,
        }
    }

    /// Byte offset of the slot of index `i`.
    fn offset(&self, i: u32) -> usize {
        HEADER + (i & (self.size.wrapping_sub(1))) as usize * self.slot
    }
}

/// `(new - event) < (new - old)`: the peer asked to hear of an index in
/// `(old, new]`.
fn must_notify(old: u32, new: u32, event: u32) -> bool {
    new.wrapping_sub(event) < new.wrapping_sub(old)
}

/// Publishes producer index `new` at `prod` (messages first, then the
/// index, as `RING_PUSH_*`): whether the peer asked, at `event`, to be
/// notified of one of the messages.
fn publish(ring: &impl SharedRing, prod: usize, event: usize, new: u32) -> bool {
    let old = ring.load(prod);
    ring.fence();
    ring.store(prod, new);
    ring.fence();
    must_notify(old, new, ring.load(event))
}

/// `RING_FINAL_CHECK_FOR_*`: whether messages wait (`unconsumed`); if
/// none, asks at `event` to be notified of the one after `cons`, and
/// looks again (one may have come meanwhile).
fn final_check(
    ring: &impl SharedRing,
    event: usize,
    cons: u32,
    unconsumed: impl Fn() -> Result<u32, RingError>,
) -> Result<bool, RingError> {
    if unconsumed()? > 0 {
        return Ok(true);
    }
    ring.store(event, cons.wrapping_add(1));
    ring.fence();
    Ok(unconsumed()? > 0)
}

/// The front end: requests out, responses in.
pub struct Front<'a, R: SharedRing, Req, Rsp> {
    ring: &'a R,
    g: Geometry,
    req_prod_pvt: u32,
    rsp_cons: u32,
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
        let g = Geometry::new::<Req, Rsp>(ring.size());
        if g.size == 0 {
            return None;
        }
        init(ring);
        Some(Self {
            ring,
            g,
            req_prod_pvt: 0,
            rsp_cons: 0,
            _types: core::marker::PhantomData,
        })
    }

    /// Slots in the ring.
    pub fn size(&self) -> u32 {
        self.g.size
    }

    /// Requests produced and not yet answered (`RING_FREE_REQUESTS`' other
    /// side): the front end may queue `size() - outstanding()` more.
    pub fn outstanding(&self) -> u32 {
        self.req_prod_pvt.wrapping_sub(self.rsp_cons)
    }

    /// Queues `req` in the next slot (private until [`push`](Self::push));
    /// false if the ring is full (`RING_FULL`).
    pub fn queue(&mut self, req: &Req) -> bool {
        if self.outstanding() >= self.g.size {
            return false;
        }
        self.ring
            .write(self.g.offset(self.req_prod_pvt), req.as_bytes());
        self.req_prod_pvt = self.req_prod_pvt.wrapping_add(1);
        true
    }

    /// Publishes the queued requests (`RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`):
    /// whether the back end must be notified.
    pub fn push(&mut self) -> bool {
        publish(self.ring, REQ_PROD, REQ_EVENT, self.req_prod_pvt)
    }

    /// Responses published and not consumed, checked against the requests
    /// outstanding.
    fn unconsumed(&self) -> Result<u32, RingError> {
        let prod = self.ring.load(RSP_PROD);
        let n = prod.wrapping_sub(self.rsp_cons);
        if n > self.outstanding() {
            return Err(RingError::Overflow {
                prod,
                cons: self.rsp_cons,
            });
        }
        Ok(n)
    }

    /// The next response, copied out of the ring, if one is there.
    pub fn next_response(&mut self) -> Result<Option<Rsp>, RingError> {
        if self.unconsumed()? == 0 {
            return Ok(None);
        }
        self.ring.fence();
        let mut rsp = Rsp::new_zeroed();
        self.ring
            .read(self.g.offset(self.rsp_cons), rsp.as_mut_bytes());
        self.rsp_cons = self.rsp_cons.wrapping_add(1);
        Ok(Some(rsp))
    }

    /// `RING_FINAL_CHECK_FOR_RESPONSES`: whether responses are waiting;
    /// if none, asks to be notified of the next one first.
    pub fn final_check(&mut self) -> Result<bool, RingError> {
        final_check(self.ring, RSP_EVENT, self.rsp_cons, || self.unconsumed())
    }
}

/// The back end: requests in, responses out.
pub struct Back<'a, R: SharedRing, Req, Rsp> {
    ring: &'a R,
    g: Geometry,
    rsp_prod_pvt: u32,
    req_cons: u32,
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
        let g = Geometry::new::<Req, Rsp>(ring.size());
        (g.size != 0).then_some(Self {
            ring,
            g,
            rsp_prod_pvt: 0,
            req_cons: 0,
            _types: core::marker::PhantomData,
        })
    }

    pub fn size(&self) -> u32 {
        self.g.size
    }

    /// Requests published and not consumed (`RING_HAS_UNCONSUMED_REQUESTS`),
    /// checked: more than the ring holds is a lying front end.
    fn unconsumed(&self) -> Result<u32, RingError> {
        let prod = self.ring.load(REQ_PROD);
        let n = prod.wrapping_sub(self.req_cons);
        if n > self.g.size {
            return Err(RingError::Overflow {
                prod,
                cons: self.req_cons,
            });
        }
        // Never more than there are response slots for
        // (`RING_REQUEST_CONS_OVERFLOW`).
        let room = self
            .g
            .size
            .wrapping_sub(self.req_cons.wrapping_sub(self.rsp_prod_pvt));
        Ok(n.min(room))
    }

    /// The next request, copied once into private memory, if one is there.
    pub fn next_request(&mut self) -> Result<Option<Req>, RingError> {
        if self.unconsumed()? == 0 {
            return Ok(None);
        }
        self.ring.fence();
        let mut req = Req::new_zeroed();
        self.ring
            .read(self.g.offset(self.req_cons), req.as_mut_bytes());
        self.req_cons = self.req_cons.wrapping_add(1);
        Ok(Some(req))
    }

    /// Queues a response in the next response slot (private until
    /// [`push`](Self::push)); false if every consumed request has its
    /// response already.
    pub fn queue(&mut self, rsp: &Rsp) -> bool {
        if self.rsp_prod_pvt == self.req_cons {
            return false;
        }
        self.ring
            .write(self.g.offset(self.rsp_prod_pvt), rsp.as_bytes());
        self.rsp_prod_pvt = self.rsp_prod_pvt.wrapping_add(1);
        true
    }

    /// Publishes the queued responses (`RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`):
    /// whether the front end must be notified.
    pub fn push(&mut self) -> bool {
        publish(self.ring, RSP_PROD, RSP_EVENT, self.rsp_prod_pvt)
    }

    /// `RING_FINAL_CHECK_FOR_REQUESTS`: whether requests are waiting; if
    /// none, asks to be notified of the next one first.
    pub fn final_check(&mut self) -> Result<bool, RingError> {
        final_check(self.ring, REQ_EVENT, self.req_cons, || self.unconsumed())
    }
}

#[cfg(test)]
mod tests;
