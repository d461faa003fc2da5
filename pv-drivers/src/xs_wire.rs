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

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::ring::SharedRing;

/// `xsd_sockmsg_type`.
pub mod ty {
    pub const CONTROL: u32 = 0;
    pub const DIRECTORY: u32 = 1;
    pub const READ: u32 = 2;
    pub const GET_PERMS: u32 = 3;
    pub const WATCH: u32 = 4;
    pub const UNWATCH: u32 = 5;
    pub const TRANSACTION_START: u32 = 6;
    pub const TRANSACTION_END: u32 = 7;
    pub const INTRODUCE: u32 = 8;
    pub const RELEASE: u32 = 9;
    pub const GET_DOMAIN_PATH: u32 = 10;
    pub const WRITE: u32 = 11;
    pub const MKDIR: u32 = 12;
    pub const RM: u32 = 13;
    pub const SET_PERMS: u32 = 14;
    pub const WATCH_EVENT: u32 = 15;
    pub const ERROR: u32 = 16;
    pub const IS_DOMAIN_INTRODUCED: u32 = 17;
    pub const RESUME: u32 = 18;
    pub const SET_TARGET: u32 = 19;
    pub const RESET_WATCHES: u32 = 21;
    pub const DIRECTORY_PART: u32 = 22;
}

/// `XENSTORE_PAYLOAD_MAX`.
pub const PAYLOAD_MAX: usize = 4096;
/// `XENSTORE_RING_SIZE`: each direction's ring.
pub const RING_SIZE: u32 = 1024;
/// `XENSTORE_ABS_PATH_MAX` and `XENSTORE_REL_PATH_MAX`.
pub const ABS_PATH_MAX: usize = 3072;
pub const REL_PATH_MAX: usize = 2048;

/// The error names an `XS_ERROR` reply carries (`xsd_errors`).
pub const ERRORS: [&str; 16] = [
    "EINVAL",
    "EACCES",
    "EEXIST",
    "EISDIR",
    "ENOENT",
    "ENOMEM",
    "ENOSPC",
    "EIO",
    "ENOTEMPTY",
    "ENOSYS",
    "EROFS",
    "EBUSY",
    "EAGAIN",
    "EISCONN",
    "E2BIG",
    "EPERM",
];

/// `struct xsd_sockmsg`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Header {
    pub ty: u32,
    pub req_id: u32,
    pub tx_id: u32,
    pub len: u32,
}

/// Bytes of a [`Header`].
pub const HEADER: usize = 16;

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
                ty,
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
const REQ: usize = 0;
const RSP: usize = 1024;
const REQ_CONS: usize = 2048;
const REQ_PROD: usize = 2052;
const RSP_CONS: usize = 2056;
const RSP_PROD: usize = 2060;

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
