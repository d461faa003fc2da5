//! The split-driver protocols of `io/`: the shared-ring convention
//! ([`ring`]), xenstore's wire format ([`xs_wire`]), the console ring
//! ([`console`]), the block and network rings ([`blkif`], [`netif`]), and
//! the xenbus state machine ([`xenbus`]).
//!
//! These pages are written by a frontend and a backend in different
//! domains, both of which may be hostile to the other. The types describe
//! the bytes; code reaching a live page copies entries in and out with
//! volatile accesses and validates indices with [`ring`]'s pure helpers.

pub mod blkif;
pub mod console;
pub mod netif;
pub mod ring;
pub mod xenbus;
pub mod xs_wire;
