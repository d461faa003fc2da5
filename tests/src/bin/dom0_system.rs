//! The project's dom0 (crate `dom0`: this binary is its `main`) as the
//! boot domain, with the `hello-domu` kernel as its boot module: it
//! builds the module as a domU with the toolstack, serves its xenstore
//! (the domU reads the name the toolstack wrote, writes and reads back a
//! node of its own, and is refused dom0's), relays the domU's console
//! lines, sees it power off, destroys it and powers the machine off, as
//! `cargo xtask run` shows, on hv and on real Xen 4.17.
//!
//! @module: guest:hello-domu
//! @expect-result: none
//! @expect-line: dom0: built domain 1 from the boot module (2048 pages); running it
//! @expect-line: domU1| hello-domu: hello from a domU
//! @expect-line: domU1| hello-domu: 2048 pages (8 MiB), not the initial domain
//! @expect-line: domU1| hello-domu: xenstore: name = hello-domu
//! @expect-line: domU1| hello-domu: xenstore: data/greeting = hello from a domU
//! @expect-line: domU1| hello-domu: xenstore: /local/domain/0/name: EACCES
//! @expect-line: dom0: domain 1 shut down (poweroff) and is destroyed
//! @covers: domctl.createdomain domctl.destroydomain
#![no_std]
#![no_main]

guest_abi::pv_guest!(dom0::main, name = "dom0_system");
