//! The project's dom0 (its `main`) with a hostile domU as its boot module
//! (`xs_hostile`): the domU sends a xenstore header announcing more than
//! the protocol's 4096 bytes, then a request-ring producer index far past
//! its consumer. dom0 stops serving that domain's store and says why,
//! still relays its console, sees it power off, destroys it and powers
//! off itself, on hv and on real Xen 4.17.
//!
//! @module: guest:xs_hostile
//! @expect-result: none
//! @expect-line: domU1| xs_hostile: sent a header announcing 5000 bytes
//! @expect-line: dom0: xenstore: domain 1: TooLong(5000); not served any more
//! @expect-line: dom0: domain 1 shut down (poweroff) and is destroyed
//! @reject-line: panicked
#![no_std]
#![no_main]

guest_abi::pv_guest!(dom0::main, name = "dom0_hostile_store");
