//! A xenstore client over a domain's store page, for our front ends and
//! back ends: requests go out with a fresh `req_id`, the reply to it is
//! matched (watch events met meanwhile are kept for [`XsClient::events`]),
//! and an `XS_ERROR` reply is the error's name.
//!
//! The caller supplies how to tell the store there is something to read
//! (`notify`: an event-channel send) and what to do while waiting
//! (`idle`: yield, or poll the channel); a reply that never comes ends the
//! wait after `patience` idles ([`XsError::NoReply`]).

use alloc::vec::Vec;

use crate::ring::SharedRing;
use crate::xs_wire::{ty, Assembler, Direction, Message, StoreRing, WireError};

/// Why a request got no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XsError {
    /// The store's `XS_ERROR` reply: the error's name.
    Store(alloc::string::String),
    /// The store page's indices are wrong.
    Wire(WireError),
    /// A payload over the protocol's maximum.
    TooLong,
    /// No reply within the caller's patience.
    NoReply,
}

/// A client over one store page.
pub struct XsClient<'a, R: SharedRing, N: FnMut(), I: FnMut()> {
    ring: StoreRing<'a, R>,
    input: Assembler,
    next: u32,
    notify: N,
    idle: I,
    patience: u32,
    events: Vec<Message>,
}

impl<'a, R: SharedRing, N: FnMut(), I: FnMut()> XsClient<'a, R, N, I> {
    pub fn new(page: &'a R, notify: N, idle: I, patience: u32) -> Self {
        Self {
            ring: StoreRing::new(page),
            input: Assembler::default(),
            next: 1,
            notify,
            idle,
            patience,
            events: Vec::new(),
        }
    }

    /// Sends request `kind` with `payload` in transaction `tx` (0: none)
    /// and waits for its reply.
    pub fn request(&mut self, kind: u32, tx: u32, payload: &[u8]) -> Result<Message, XsError> {
        let id = self.next;
        self.next = self.next.wrapping_add(1).max(1);
        let bytes = Message::new(kind, id, tx, payload)
            .ok_or(XsError::TooLong)?
            .to_bytes();
        let mut sent = 0;
        let mut waited = 0;
        loop {
            if sent < bytes.len() {
                let rest = bytes.get(sent..).unwrap_or(&[]);
                sent += self
                    .ring
                    .write(Direction::Requests, rest)
                    .map_err(XsError::Wire)?;
                (self.notify)();
            }
            match self
                .input
                .pull(&self.ring, Direction::Responses)
                .map_err(XsError::Wire)?
            {
                Some(m) if m.header.type_ == ty::WATCH_EVENT => self.events.push(m),
                Some(m) if m.header.req_id == id => {
                    if m.header.type_ == ty::ERROR {
                        let name = m.payload.split(|&b| b == 0).next().unwrap_or(&[]);
                        let name = core::str::from_utf8(name).unwrap_or("EINVAL");
                        return Err(XsError::Store(name.into()));
                    }
                    return Ok(m);
                }
                // A reply to nothing we asked: dropped.
                Some(_) => {}
                None => {
                    if waited == self.patience {
                        return Err(XsError::NoReply);
                    }
                    waited += 1;
                    (self.idle)();
                }
            }
        }
    }

    /// `XS_READ` of `path`: its value.
    pub fn read(&mut self, path: &str) -> Result<Vec<u8>, XsError> {
        self.request(ty::READ, 0, &nul_terminated(path))
            .map(|m| m.payload)
    }

    /// `XS_WRITE` of `value` at `path`.
    pub fn write(&mut self, path: &str, value: &[u8]) -> Result<(), XsError> {
        let mut p = nul_terminated(path);
        p.extend_from_slice(value);
        self.request(ty::WRITE, 0, &p).map(|_| ())
    }

    /// `XS_RM` of `path` (and what is under it).
    pub fn rm(&mut self, path: &str) -> Result<(), XsError> {
        self.request(ty::RM, 0, &nul_terminated(path)).map(|_| ())
    }

    /// `XS_DIRECTORY` of `path`: its children's names.
    pub fn directory(&mut self, path: &str) -> Result<Vec<alloc::string::String>, XsError> {
        let m = self.request(ty::DIRECTORY, 0, &nul_terminated(path))?;
        Ok(m.payload
            .split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| alloc::string::String::from_utf8_lossy(s).into_owned())
            .collect())
    }

    /// `XS_WATCH` of `path` with `token`.
    pub fn watch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        let mut p = nul_terminated(path);
        p.extend_from_slice(&nul_terminated(token));
        self.request(ty::WATCH, 0, &p).map(|_| ())
    }

    /// The watch events received so far, those waiting on the ring
    /// included: (path, token).
    pub fn events(&mut self) -> Vec<(alloc::string::String, alloc::string::String)> {
        while let Ok(Some(m)) = self.input.pull(&self.ring, Direction::Responses) {
            if m.header.type_ == ty::WATCH_EVENT {
                self.events.push(m);
            }
        }
        core::mem::take(&mut self.events)
            .into_iter()
            .map(|m| {
                let mut parts = m.payload.split(|&b| b == 0);
                let mut next = || {
                    alloc::string::String::from_utf8_lossy(parts.next().unwrap_or(&[])).into_owned()
                };
                (next(), next())
            })
            .collect()
    }
}

fn nul_terminated(s: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend_from_slice(s.as_bytes());
    v.push(0);
    v
}

#[cfg(test)]
mod tests;
