//! The daemon around the [`Store`]: one connection per domain over its
//! store page (`xs_wire`'s byte rings), requests in, replies and watch
//! events out, with the limits a hostile client meets.
//!
//! - A connection takes a request only while it has fewer than
//!   [`OUT_LIMIT`] bytes of output waiting (a domain that stops reading
//!   stops being served, it does not grow dom0's memory), and at most
//!   [`REQUESTS_PER_SERVICE`] per call (one domain cannot starve the
//!   others).
//! - Watch events for a domain whose output is full are dropped and
//!   counted ([`Daemon::dropped`]), as Xen 4.17 drops them past its
//!   per-domain memory quota.
//! - A lying ring index ends the connection ([`Daemon::service`] reports
//!   it; the caller releases the domain).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use super::{Conn, Store};
use crate::ring::SharedRing;
use crate::xs_wire::{Assembler, Direction, Message, StoreRing, WireError, HEADER, PAYLOAD_MAX};

/// Output a connection may have waiting: four of the longest messages.
pub const OUT_LIMIT: usize = 4 * (HEADER + PAYLOAD_MAX);
/// Requests one call of [`Daemon::service`] takes from one domain.
pub const REQUESTS_PER_SERVICE: usize = 20;

/// One domain's connection.
#[derive(Debug)]
struct Connection {
    conn: Conn,
    input: Assembler,
    output: VecDeque<u8>,
    dropped: u64,
}

impl Connection {
    fn queue(&mut self, m: &Message) -> bool {
        let bytes = m.to_bytes();
        if self.output.len() + bytes.len() > OUT_LIMIT {
            self.dropped += 1;
            return false;
        }
        self.output.extend(bytes);
        true
    }

    /// Writes what fits of the waiting output; whether anything went.
    fn flush<R: SharedRing>(&mut self, page: &StoreRing<'_, R>) -> Result<bool, WireError> {
        let (a, b) = self.output.as_slices();
        let first = page.write(Direction::Responses, a)?;
        let second = if first == a.len() {
            page.write(Direction::Responses, b)?
        } else {
            0
        };
        let n = first + second;
        self.output.drain(..n);
        Ok(n > 0)
    }
}

/// The store and its connections.
#[derive(Debug, Default)]
pub struct Daemon {
    pub store: Store,
    conns: BTreeMap<u16, Connection>,
}

impl Daemon {
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens domain `domid`'s connection (dom0's is `privileged`).
    pub fn connect(&mut self, domid: u16, privileged: bool) {
        self.conns.insert(
            domid,
            Connection {
                conn: Conn { domid, privileged },
                input: Assembler::default(),
                output: VecDeque::new(),
                dropped: 0,
            },
        );
    }

    /// Closes it (its store state goes with [`Store::forget`]).
    pub fn disconnect(&mut self, domid: u16) {
        self.conns.remove(&domid);
        self.store.forget(domid);
    }

    /// Watch events dropped for `domid` because its output was full.
    pub fn dropped(&self, domid: u16) -> u64 {
        self.conns.get(&domid).map_or(0, |c| c.dropped)
    }

    /// Bytes waiting for `domid`.
    pub fn waiting(&self, domid: u16) -> usize {
        self.conns.get(&domid).map_or(0, |c| c.output.len())
    }

    /// Serves domain `domid` over its store page: flushes its waiting
    /// output, takes and answers requests as its limits allow, and
    /// flushes again. The watch events the requests caused are queued
    /// for their domains (deliver them with [`flush`](Self::flush)).
    /// Whether anything moved on its page (the caller then notifies the
    /// domain).
    pub fn service<R: SharedRing>(
        &mut self,
        domid: u16,
        page: &StoreRing<'_, R>,
    ) -> Result<bool, WireError> {
        let Some(c) = self.conns.get_mut(&domid) else {
            return Ok(false);
        };
        let mut moved = c.flush(page)?;
        for _ in 0..REQUESTS_PER_SERVICE {
            let Some(c) = self.conns.get_mut(&domid) else {
                break;
            };
            if c.output.len() >= OUT_LIMIT - (HEADER + PAYLOAD_MAX) {
                break;
            }
            let before = page.available(Direction::Requests)?;
            let Some(req) = c.input.pull(page, Direction::Requests)? else {
                moved |= before > 0;
                break;
            };
            moved = true;
            let conn = c.conn;
            let reply = self.store.handle(conn, &req);
            if let Some(c) = self.conns.get_mut(&domid) {
                c.queue(&reply);
            }
            for (to, event) in self.store.take_events() {
                if let Some(target) = self.conns.get_mut(&to) {
                    target.queue(&event);
                }
            }
        }
        if let Some(c) = self.conns.get_mut(&domid) {
            moved |= c.flush(page)?;
        }
        Ok(moved)
    }

    /// Queues the watch events that the store's in-process callers (dom0's
    /// toolstack and back ends, which use [`Store`] directly) caused, for
    /// the domains watching; deliver them with [`flush`](Self::flush).
    pub fn route_events(&mut self) {
        for (to, event) in self.store.take_events() {
            if let Some(target) = self.conns.get_mut(&to) {
                target.queue(&event);
            }
        }
    }

    /// Writes what `domid` has waiting (events from others' requests) to
    /// its page; whether anything went.
    pub fn flush<R: SharedRing>(
        &mut self,
        domid: u16,
        page: &StoreRing<'_, R>,
    ) -> Result<bool, WireError> {
        match self.conns.get_mut(&domid) {
            Some(c) => c.flush(page),
            None => Ok(false),
        }
    }

    /// The domains with a connection.
    pub fn domains(&self) -> Vec<u16> {
        self.conns.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests;
