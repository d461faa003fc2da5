//! Split-driver building blocks shared by dom0's backends and guests' frontends.
//!
//! - [`ring`]: Xen's shared I/O rings (`io/ring.h`) for both ends, with a
//!   hostile peer in mind.
//!
//! The xenbus client and the console, block and network drivers arrive
//! with their issues.
#![no_std]
#![forbid(unsafe_code)]

pub mod ring;
