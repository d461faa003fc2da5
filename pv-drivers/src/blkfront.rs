//! The core of a block front end for our own guests: requests onto the
//! shared ring ([`crate::ring::Front`]) with ids it tracks, responses
//! matched back to them. A back end that answers an id not in flight (or
//! twice) is ignored and counted ([`BlkFront::bogus`]): the front end
//! never completes a request it did not send.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::blkif::{
    Request, Response, Segment, MAX_SEGMENTS, OP_FLUSH_DISKCACHE, OP_READ, OP_WRITE,
    SECTORS_PER_PAGE,
};
use crate::ring::{Front, RingError, SharedRing};

/// Why a request was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// The ring has no free slot: wait for completions.
    Full,
    /// No segment, more than 11, or a segment's sectors outside its page.
    BadSegments,
}

/// A completed request: its id and the back end's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    pub id: u64,
    pub status: i16,
}

/// One page of a transfer: the grant of the page and its sectors used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub gref: u32,
    pub first_sect: u8,
    pub last_sect: u8,
}

pub struct BlkFront<'a, R: SharedRing> {
    ring: Front<'a, R, Request, Response>,
    next_id: u64,
    /// Requests in flight: id → operation.
    inflight: BTreeMap<u64, u8>,
    bogus: u64,
}

impl<'a, R: SharedRing> BlkFront<'a, R> {
    /// The front end of a ring page it initialises; `None` if no request
    /// fits.
    pub fn new(page: &'a R) -> Option<Self> {
        Some(Self {
            ring: Front::new(page)?,
            next_id: 1,
            inflight: BTreeMap::new(),
            bogus: 0,
        })
    }

    /// Requests sent and not completed.
    pub fn in_flight(&self) -> usize {
        self.inflight.len()
    }

    /// Responses ignored: ids not in flight.
    pub fn bogus(&self) -> u64 {
        self.bogus
    }

    fn queue(&mut self, operation: u8, sector: u64, pages: &[Page]) -> Result<u64, QueueError> {
        let data = operation != OP_FLUSH_DISKCACHE;
        if data && (pages.is_empty() || pages.len() > MAX_SEGMENTS) {
            return Err(QueueError::BadSegments);
        }
        if pages
            .iter()
            .any(|p| p.first_sect > p.last_sect || p.last_sect >= SECTORS_PER_PAGE)
        {
            return Err(QueueError::BadSegments);
        }
        let id = self.next_id;
        let mut req = Request {
            operation,
            nr_segments: u8::try_from(pages.len()).map_err(|_| QueueError::BadSegments)?,
            id,
            sector_number: sector,
            ..Default::default()
        };
        for (slot, p) in req.seg.iter_mut().zip(pages) {
            *slot = Segment {
                gref: p.gref,
                first_sect: p.first_sect,
                last_sect: p.last_sect,
                _pad: 0,
            };
        }
        if !self.ring.queue(&req) {
            return Err(QueueError::Full);
        }
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.inflight.insert(id, operation);
        Ok(id)
    }

    /// Queues a read of `pages` from `sector` on: the request's id.
    pub fn read(&mut self, sector: u64, pages: &[Page]) -> Result<u64, QueueError> {
        self.queue(OP_READ, sector, pages)
    }

    /// Queues a write of `pages` to `sector` on.
    pub fn write(&mut self, sector: u64, pages: &[Page]) -> Result<u64, QueueError> {
        self.queue(OP_WRITE, sector, pages)
    }

    /// Queues a cache flush.
    pub fn flush(&mut self) -> Result<u64, QueueError> {
        self.queue(OP_FLUSH_DISKCACHE, 0, &[])
    }

    /// Publishes the queued requests: whether to notify the back end.
    pub fn push(&mut self) -> bool {
        self.ring.push()
    }

    /// The completions the back end published (re-arming its event when
    /// none is left); a lying index is the ring's error.
    pub fn completions(&mut self) -> Result<Vec<Completion>, RingError> {
        let mut done = Vec::new();
        loop {
            while let Some(rsp) = self.ring.next_response()? {
                match self.inflight.remove(&rsp.id) {
                    Some(_) => done.push(Completion {
                        id: rsp.id,
                        status: rsp.status,
                    }),
                    None => self.bogus += 1,
                }
            }
            if !self.ring.final_check()? {
                return Ok(done);
            }
        }
    }
}

#[cfg(test)]
mod tests;
