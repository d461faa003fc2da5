//! The xenstore wire protocol (`io/xs_wire.h`): messages (a 16-byte
//! header, then at most 4096 bytes of payload) over a domain's store
//! page, which holds two 1 KiB byte rings (requests to the store,
//! responses and watch events back) and their indices.
//!
//! Either end may be hostile. [`StoreRing`] checks the peer's index on
//! every look (a producer more than the ring's size ahead of its consumer,
//! or behind it, is [`WireError::BadIndex`]: xenstored's `check_indexes`)
//! and copies bytes out once. [`Assembler`] gathers a message from any
//! number of reads (a message straddles the ring's wrap, and a 4 KiB
//! payload streams through the 1 KiB ring) and refuses a header whose
//! length is over the protocol's maximum ([`WireError::TooLong`]) before
//! buffering any of it.

use alloc::vec::Vec;

use zerocopy::{FromBytes, IntoBytes};

use crate::ring::SharedRing;

/// `xsd_sockmsg_type` (`guest_abi::io::xs_wire::XsType`) as the header's
/// `type_` holds it.
pub mod ty {
    use guest_abi::io::xs_wire::XsType;

    pub const CONTROL: u32 = XsType::CONTROL.0;
    pub const DIRECTORY: u32 = XsType::DIRECTORY.0;
    pub const READ: u32 = XsType::READ.0;
    pub const GET_PERMS: u32 = XsType::GET_PERMS.0;
    pub const WATCH: u32 = XsType::WATCH.0;
    pub const UNWATCH: u32 = XsType::UNWATCH.0;
    pub const TRANSACTION_START: u32 = XsType::TRANSACTION_START.0;
    pub const TRANSACTION_END: u32 = XsType::TRANSACTION_END.0;
    pub const INTRODUCE: u32 = XsType::INTRODUCE.0;
    pub const RELEASE: u32 = XsType::RELEASE.0;
    pub const GET_DOMAIN_PATH: u32 = XsType::GET_DOMAIN_PATH.0;
    pub const WRITE: u32 = XsType::WRITE.0;
    pub const MKDIR: u32 = XsType::MKDIR.0;
    pub const RM: u32 = XsType::RM.0;
    pub const SET_PERMS: u32 = XsType::SET_PERMS.0;
    pub const WATCH_EVENT: u32 = XsType::WATCH_EVENT.0;
    pub const ERROR: u32 = XsType::ERROR.0;
    pub const IS_DOMAIN_INTRODUCED: u32 = XsType::IS_DOMAIN_INTRODUCED.0;
    pub const RESUME: u32 = XsType::RESUME.0;
    pub const SET_TARGET: u32 = XsType::SET_TARGET.0;
    pub const RESET_WATCHES: u32 = XsType::RESET_WATCHES.0;
    pub const DIRECTORY_PART: u32 = XsType::DIRECTORY_PART.0;
}

use guest_abi::io::xs_wire::{XenstoreDomainInterface, XENSTORE_RING_SIZE};
pub use guest_abi::io::xs_wire::{
    XsdSockmsg as Header, XENSTORE_ABS_PATH_MAX as ABS_PATH_MAX,
    XENSTORE_PAYLOAD_MAX as PAYLOAD_MAX, XENSTORE_REL_PATH_MAX as REL_PATH_MAX,
};

/// `XENSTORE_RING_SIZE`, as the ring indices count.
pub const RING_SIZE: u32 = 1024;
const _: () = assert!(RING_SIZE as usize == XENSTORE_RING_SIZE);

/// Bytes of a [`Header`].
pub const HEADER: usize = core::mem::size_of::<Header>();

/// A whole message, its payload in private memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub payload: Vec<u8>,
}

impl Message {
    /// A message of `ty` for request `req_id` in transaction `tx_id`;
    /// `None` if the payload is over [`PAYLOAD_MAX`].
    pub fn new(ty: u32, req_id: u32, tx_id: u32, payload: &[u8]) -> Option<Self> {
        if payload.len() > PAYLOAD_MAX {
            return None;
        }
        Some(Self {
            header: Header {
                type_: ty,
                req_id,
                tx_id,
                len: u32::try_from(payload.len()).ok()?,
            },
            payload: payload.to_vec(),
        })
    }

    /// The header and payload as they go on the ring.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.payload.len());
        out.extend_from_slice(self.header.as_bytes());
        out.extend_from_slice(&self.payload);
        out
    }
}

/// What the peer did wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// A producer index more than the ring's size ahead of its consumer,
    /// or behind it: `(prod, cons)`.
    BadIndex { prod: u32, cons: u32 },
    /// A header announcing more than [`PAYLOAD_MAX`] bytes.
    TooLong(u32),
}

/// Offsets in the store page (`struct xenstore_domain_interface`).
const REQ: usize = core::mem::offset_of!(XenstoreDomainInterface, req);
const RSP: usize = core::mem::offset_of!(XenstoreDomainInterface, rsp);
const REQ_CONS: usize = core::mem::offset_of!(XenstoreDomainInterface, req_cons);
const REQ_PROD: usize = core::mem::offset_of!(XenstoreDomainInterface, req_prod);
const RSP_CONS: usize = core::mem::offset_of!(XenstoreDomainInterface, rsp_cons);
const RSP_PROD: usize = core::mem::offset_of!(XenstoreDomainInterface, rsp_prod);

/// One direction of a store page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Requests, written by the domain, read by the store.
    Requests,
    /// Responses and watch events, written by the store.
    Responses,
}

impl Direction {
    /// (data offset, consumer index offset, producer index offset).
    const fn layout(self) -> (usize, usize, usize) {
        match self {
            Self::Requests => (REQ, REQ_CONS, REQ_PROD),
            Self::Responses => (RSP, RSP_CONS, RSP_PROD),
        }
    }
}

/// A store page seen from one end.
pub struct StoreRing<'a, R: SharedRing> {
    page: &'a R,
}

impl<'a, R: SharedRing> StoreRing<'a, R> {
    pub fn new(page: &'a R) -> Self {
        Self { page }
    }

    /// The direction's indices, checked: `(cons, prod)`.
    fn indices(&self, d: Direction) -> Result<(u32, u32), WireError> {
        let (_, c, p) = d.layout();
        let (cons, prod) = (self.page.load(c), self.page.load(p));
        if prod.wrapping_sub(cons) > RING_SIZE {
            return Err(WireError::BadIndex { prod, cons });
        }
        Ok((cons, prod))
    }

    /// Bytes waiting in direction `d`.
    pub fn available(&self, d: Direction) -> Result<u32, WireError> {
        self.indices(d).map(|(c, p)| p.wrapping_sub(c))
    }

    /// Writes as much of `data` as fits into direction `d` (its producer's
    /// side) and publishes it; how many bytes went in.
    pub fn write(&self, d: Direction, data: &[u8]) -> Result<usize, WireError> {
        let (cons, prod) = self.indices(d)?;
        let free = RING_SIZE - prod.wrapping_sub(cons);
        let n = data.len().min(free as usize);
        let (base, _, p) = d.layout();
        let mut at = prod;
        let mut left = data.get(..n).unwrap_or(&[]);
        while !left.is_empty() {
            let off = (at % RING_SIZE) as usize;
            let chunk = left.len().min(RING_SIZE as usize - off);
            let (now, rest) = left.split_at(chunk);
            self.page.write(base + off, now);
            left = rest;
            at = at.wrapping_add(u32::try_from(chunk).unwrap_or(0));
        }
        self.page.fence();
        self.page.store(p, at);
        Ok(n)
    }

    /// Reads up to `out.len()` bytes from direction `d` (its consumer's
    /// side) into private memory and consumes them; how many were read.
    pub fn read(&self, d: Direction, out: &mut [u8]) -> Result<usize, WireError> {
        let (cons, prod) = self.indices(d)?;
        let n = out.len().min(prod.wrapping_sub(cons) as usize);
        self.page.fence();
        let (base, c, _) = d.layout();
        let mut at = cons;
        let mut done = 0;
        while done < n {
            let off = (at % RING_SIZE) as usize;
            let chunk = (n - done).min(RING_SIZE as usize - off);
            if let Some(dst) = out.get_mut(done..done + chunk) {
                self.page.read(base + off, dst);
            }
            done += chunk;
            at = at.wrapping_add(u32::try_from(chunk).unwrap_or(0));
        }
        self.page.fence();
        self.page.store(c, at);
        Ok(n)
    }
}

/// Gathers messages from a byte stream read in pieces.
#[derive(Debug, Default)]
pub struct Assembler {
    buf: Vec<u8>,
}

impl Assembler {
    /// Bytes the next message still needs (at least one, for a header not
    /// yet whole); `Err` once a header announces too long a payload.
    pub fn wanted(&self) -> Result<usize, WireError> {
        if self.buf.len() < HEADER {
            return Ok(HEADER - self.buf.len());
        }
        let len = self.len()?;
        Ok(HEADER + len - self.buf.len())
    }

    fn len(&self) -> Result<usize, WireError> {
        let h = Header::read_from_bytes(self.buf.get(..HEADER).unwrap_or(&[]))
            .map_err(|_| WireError::TooLong(u32::MAX))?;
        let len = h.len as usize;
        if len > PAYLOAD_MAX {
            return Err(WireError::TooLong(h.len));
        }
        Ok(len)
    }

    /// Reads what the next message needs from `d` of `ring` (never past
    /// it: the rest stays on the ring for the next call); the message once
    /// whole.
    pub fn pull<R: SharedRing>(
        &mut self,
        ring: &StoreRing<'_, R>,
        d: Direction,
    ) -> Result<Option<Message>, WireError> {
        loop {
            let want = self.wanted()?;
            let mut chunk = [0u8; RING_SIZE as usize];
            let take = want.min(chunk.len());
            let n = ring.read(d, chunk.get_mut(..take).unwrap_or(&mut []))?;
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
            if self.buf.len() >= HEADER && self.wanted()? == 0 {
                let header = Header::read_from_bytes(self.buf.get(..HEADER).unwrap_or(&[]))
                    .map_err(|_| WireError::TooLong(u32::MAX))?;
                let payload = self.buf.split_off(HEADER);
                self.buf.clear();
                return Ok(Some(Message { header, payload }));
            }
        }
    }
}

#[cfg(test)]
mod tests;
