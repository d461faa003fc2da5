//! Split-driver building blocks shared by dom0's backends and guests' frontends.
//!
//! - [`ring`]: Xen's shared I/O rings (`io/ring.h`) for both ends, with a
//!   hostile peer in mind.
//! - [`xs_wire`]: the xenstore protocol's messages and the store page's
//!   byte rings.
//! - [`xenstored`]: the store dom0's xenstored serves (its tree,
//!   permissions and requests) and the daemon around it.
//! - [`xenbus`]: the device handshake's two state machines.
//! - [`xs_client`]: a xenstore client over a store page.
//! - [`blkif`]: a block back end's checked core; [`blkfront`]: a block
//!   front end's.
//! - [`netback`]: packets from a front end's transmit requests, checked
//!   as Linux's netback checks them.
//!
//! The xenbus client and the console, block and network drivers arrive
//! with their issues.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod blkfront;
pub mod blkif;
pub mod netback;
pub mod netfront;
pub mod ring;
pub mod xenbus;
pub mod xenstored;
pub mod xs_client;
pub mod xs_wire;

#[cfg(test)]
mod testing;
