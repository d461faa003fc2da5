//! Split-driver building blocks shared by dom0's backends and guests' frontends.
//!
//! Empty for now: the console, block and network drivers arrive with their
//! issues. The crate exists so the dependency graph of DESIGN.md holds from the
//! first commit.
#![no_std]
#![forbid(unsafe_code)]
