//! The core of a network front end for our own guests (`io/netif.h`, the
//! types `guest_abi::io::netif`'s): frames out on the transmit ring, one
//! slot each (a frame in one granted page), and receive buffers (granted
//! pages) posted on the receive ring; the back end's responses matched to
//! the ids in flight. A response whose id is not in flight (or that comes
//! twice) is ignored and counted ([`NetFront::bogus`]): the front end never
//! completes what it did not send, nor reads a buffer it did not post.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use guest_abi::io::netif::{
    NetifRxRequest, NetifRxResponse, NetifTxRequest, NetifTxResponse, NETRXF_MORE_DATA,
    NETTXF_CSUM_BLANK, NETTXF_DATA_VALIDATED,
};

use crate::ring::{Front, RingError, SharedRing};

const PAGE: usize = 4096;

/// Why a frame or buffer was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// The ring has no free slot: wait for completions.
    Full,
    /// Empty, or not inside its page.
    BadFrame,
}

/// A frame the back end delivered into a posted buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// The buffer's grant (as posted) and where the bytes are in it.
    pub gref: u32,
    pub offset: u16,
    pub len: u16,
    /// `NETRXF_*` as the back end gave them.
    pub flags: u16,
}

pub struct NetFront<'a, R: SharedRing> {
    tx: Front<'a, R, NetifTxRequest, NetifTxResponse>,
    rx: Front<'a, R, NetifRxRequest, NetifRxResponse>,
    next_tx: u16,
    next_rx: u16,
    sending: BTreeMap<u16, ()>,
    /// Posted buffers: id → grant.
    posted: BTreeMap<u16, u32>,
    bogus: u64,
    rx_errors: u64,
}

impl<'a, R: SharedRing> NetFront<'a, R> {
    /// The front end of the rings it initialises on `tx_page` and
    /// `rx_page`; `None` if a ring holds no slot.
    pub fn new(tx_page: &'a R, rx_page: &'a R) -> Option<Self> {
        Some(Self {
            tx: Front::new(tx_page)?,
            rx: Front::new(rx_page)?,
            next_tx: 0,
            next_rx: 0,
            sending: BTreeMap::new(),
            posted: BTreeMap::new(),
            bogus: 0,
            rx_errors: 0,
        })
    }

    /// Responses ignored: ids not in flight.
    pub fn bogus(&self) -> u64 {
        self.bogus
    }

    /// Receive responses that were errors (their buffers are free again).
    pub fn rx_errors(&self) -> u64 {
        self.rx_errors
    }

    /// Frames sent and not answered.
    pub fn sending(&self) -> usize {
        self.sending.len()
    }

    /// Buffers posted and not filled.
    pub fn posted(&self) -> usize {
        self.posted.len()
    }

    /// Queues the frame of `len` bytes at `offset` in granted page `gref`
    /// (`csum_blank`: its checksum is left for the receiver, as Linux's
    /// offload sends it): its id.
    pub fn send(
        &mut self,
        gref: u32,
        offset: u16,
        len: u16,
        csum_blank: bool,
    ) -> Result<u16, QueueError> {
        if len == 0 || usize::from(offset) + usize::from(len) > PAGE {
            return Err(QueueError::BadFrame);
        }
        let id = self.next_tx;
        let flags = if csum_blank {
            NETTXF_CSUM_BLANK | NETTXF_DATA_VALIDATED
        } else {
            0
        };
        let req = NetifTxRequest {
            gref,
            offset,
            flags,
            id,
            size: len,
        };
        if self.sending.contains_key(&id) || !self.tx.queue(&req) {
            return Err(QueueError::Full);
        }
        self.sending.insert(id, ());
        self.next_tx = self.next_tx.wrapping_add(1);
        Ok(id)
    }

    /// Posts granted page `gref` as a receive buffer: its id.
    pub fn post(&mut self, gref: u32) -> Result<u16, QueueError> {
        let id = self.next_rx;
        if self.posted.contains_key(&id) || !self.rx.queue(&NetifRxRequest { id, pad: 0, gref }) {
            return Err(QueueError::Full);
        }
        self.posted.insert(id, gref);
        self.next_rx = self.next_rx.wrapping_add(1);
        Ok(id)
    }

    /// Publishes what is queued on both rings: whether to notify.
    pub fn push(&mut self) -> bool {
        let tx = self.tx.push();
        let rx = self.rx.push();
        tx || rx
    }

    /// The transmit completions: (id, status); a lying index is the
    /// ring's error.
    pub fn sent(&mut self) -> Result<Vec<(u16, i16)>, RingError> {
        let mut done = Vec::new();
        loop {
            while let Some(rsp) = self.tx.next_response()? {
                if rsp.status == guest_abi::io::netif::NETIF_RSP_NULL {
                    continue;
                }
                match self.sending.remove(&rsp.id) {
                    Some(()) => done.push((rsp.id, rsp.status)),
                    None => self.bogus += 1,
                }
            }
            if !self.tx.final_check()? {
                return Ok(done);
            }
        }
    }

    /// The frames delivered into posted buffers (each buffer is free
    /// again once returned here; one that would run past its page is
    /// counted as an error, as is an error status).
    pub fn received(&mut self) -> Result<Vec<Received>, RingError> {
        let mut got = Vec::new();
        loop {
            while let Some(rsp) = self.rx.next_response()? {
                let Some(gref) = self.posted.remove(&rsp.id) else {
                    self.bogus += 1;
                    continue;
                };
                let len = u16::try_from(rsp.status).ok().filter(|&l| l > 0);
                match len {
                    Some(len)
                        if usize::from(rsp.offset) + usize::from(len) <= PAGE
                            && rsp.flags & NETRXF_MORE_DATA == 0 =>
                    {
                        got.push(Received {
                            gref,
                            offset: rsp.offset,
                            len,
                            flags: rsp.flags,
                        });
                    }
                    _ => self.rx_errors += 1,
                }
            }
            if !self.rx.final_check()? {
                return Ok(got);
            }
        }
    }
}

#[cfg(test)]
mod tests;
